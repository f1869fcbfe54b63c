/* serve_gen.c — `mrag serve`'s side of generation: the slot workers (each
 * with its own engine, answerer and read-only store) that hand requests to
 * the answer pipeline (rag/answer.h), the bounded wait queue, streamed
 * output as SSE bytes, the JSON results, the audit log; and the small pools
 * for /api/search and /v1/embeddings. */
#include "app/serve.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double app_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ jobs */

app_job *app_job_new(app_server *s) {
    app_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->srv = s;
    j->refs = 1;
    pthread_cond_init(&j->cv, NULL);
    j->res.prompt_tokens = -1;
    return j;
}

static void job_free(app_job *j) {
    free(j->question);
    free(j->hist);
    for (size_t i = 0; i < j->n_hist_own; i++) free(j->hist_own[i]);
    free(j->hist_own);
    free(j->system);
    app_chat_req_free(&j->chat);
    for (size_t i = 0; j->titles && i < j->n_titles; i++) free(j->titles[i]);
    free(j->titles);
    if (j->have_res) rag_answer_release(&j->res);
    free(j->sources_json);
    free(j->evidence_json);
    free(j->out);
    pthread_cond_destroy(&j->cv);
    free(j);
}

void app_job_unref(app_job *j) {
    if (!j) return;
    pthread_mutex_lock(&j->srv->mu);
    int r = --j->refs;
    pthread_mutex_unlock(&j->srv->mu);
    if (r == 0) job_free(j);
}

/* Contract: see serve.h. */
int app_job_submit(app_server *s, app_job *j, int *retry_after) {
    pthread_mutex_lock(&s->mu);
    /* waiting room: --queue places, plus slots that are free but have not
     * picked their job up yet */
    size_t room = (size_t)(s->o.queue > 0 ? s->o.queue : 0) + (size_t)(s->n_slots - s->active);
    if (room > s->fifo_cap) room = s->fifo_cap;
    if (s->stopping || s->fifo_n >= room) {
        double per = s->ewma_gen_s > 0 ? s->ewma_gen_s : 5;
        int ra = (int)ceil(per * (double)(s->fifo_n + 1) / (s->n_slots > 0 ? s->n_slots : 1));
        *retry_after = ra < 1 ? 1 : ra > 600 ? 600 : ra;
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    s->fifo[(s->fifo_head + s->fifo_n) % s->fifo_cap] = j;
    s->fifo_n++;
    j->refs++;
    j->state = APP_JOB_QUEUED;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* ------------------------------------------------------------ SSE output */

/* Appends bytes to the job's stream buffer; call with srv->mu held. */
static void out_put(app_job *j, const char *b, size_t n) {
    if (j->out_sent == j->out_len) j->out_sent = j->out_len = 0;
    if (j->out_len + n + 1 > j->out_cap) {
        size_t c = j->out_cap ? j->out_cap * 2 : 8192;
        while (c < j->out_len + n + 1) c *= 2;
        char *q = realloc(j->out, c);
        if (!q) return;     /* the client misses this piece; the final event still comes */
        j->out = q;
        j->out_cap = c;
    }
    memcpy(j->out + j->out_len, b, n);
    j->out_len += n;
}

static void out_str(app_job *j, const char *s) { out_put(j, s, strlen(s)); }

/* Appends text as a JSON string literal (with quotes). */
static void out_json_str(app_job *j, const char *t, size_t n) {
    static const char hex[] = "0123456789abcdef";
    char buf[256];
    size_t k = 0;
    buf[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (k > sizeof buf - 8) { out_put(j, buf, k); k = 0; }
        if (c == '"' || c == '\\') { buf[k++] = '\\'; buf[k++] = (char)c; }
        else if (c == '\n') { buf[k++] = '\\'; buf[k++] = 'n'; }
        else if (c == '\r') { buf[k++] = '\\'; buf[k++] = 'r'; }
        else if (c == '\t') { buf[k++] = '\\'; buf[k++] = 't'; }
        else if (c < 0x20) { memcpy(buf + k, "\\u00", 4); k += 4; buf[k++] = hex[c >> 4]; buf[k++] = hex[c & 15]; }
        else buf[k++] = (char)c;
    }
    buf[k++] = '"';
    out_put(j, buf, k);
}

static const char *finish_reason(const app_job *j) {
    if (j->res.status == RAG_ANS_ANSWERED && j->stop_reason == RAG_STOP_LENGTH && j->n_generated >= j->max_tokens)
        return "length";
    if (j->res.status == RAG_ANS_ANSWERED && j->stop_reason == RAG_STOP_CONTEXT_FULL) return "length";
    return "stop";
}

/* The chunk prefix up to "choices":[{"index":0,"delta": */
static void chat_chunk_begin(app_job *j) {
    char b[512];
    snprintf(b, sizeof b, "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"created\":%ld,\"model\":", j->chat_id,
             j->created);
    out_str(j, b);
    out_json_str(j, j->srv->model_name, strlen(j->srv->model_name));
    out_str(j, ",\"choices\":[{\"index\":0,\"delta\":");
}

/* The first chunk / sources event; call with srv->mu held, sources_json set. */
static void stream_head(app_job *j) {
    if (j->head_sent) return;
    j->head_sent = true;
    const char *src = j->sources_json ? j->sources_json : "[]";
    if (j->kind == APP_JOB_CHAT) {
        chat_chunk_begin(j);
        out_str(j, "{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]");
        if (j->retrieval) { out_str(j, ",\"sources\":"); out_str(j, src); }
        if (j->retrieval && j->evidence_json) {
            /* the extension field, as in the last chunk: the evidence comes first */
            out_str(j, ",\"mrag\":{\"evidence\":");
            out_str(j, j->evidence_json);
            out_str(j, j->extractive ? ",\"extractive\":true}" : ",\"extractive\":false}");
        }
        out_str(j, "}\n\n");
    } else {
        out_str(j, "event: sources\ndata: {\"sources\":");
        out_str(j, src);
        out_str(j, "}\n\n");
    }
}

static void stream_text(app_job *j, const char *t, size_t n) {
    if (j->kind == APP_JOB_CHAT) {
        chat_chunk_begin(j);
        out_str(j, "{\"content\":");
        out_json_str(j, t, n);
        out_str(j, "},\"finish_reason\":null}]}\n\n");
    } else {
        out_str(j, "event: token\ndata: {\"text\":");
        out_json_str(j, t, n);
        out_str(j, "}\n\n");
    }
}

/* ------------------------------------------------------------ results */

static cJSON *error_obj(const char *msg, const char *type, int code) {
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNumberToObject(e, "code", code);
    return o;
}

static bool is_http(const char *u) { return strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0; }

/* Contract: see serve.h. */
char *app_serve_display_uri(idx_store *store, const app_serve_key *key, const char *uri) {
    if (!uri) return strdup("");
    if (is_http(uri) || (key && key->full_paths) || uri[0] != '/') return strdup(uri);
    char **roots = NULL;
    size_t n = 0;
    const char *best = NULL;
    size_t best_len = 0;
    if (store && idx_meta_keys(store, "rag.root:", &roots, &n) == IDX_OK) {
        for (size_t i = 0; i < n; i++) {
            const char *r = roots[i] + strlen("rag.root:");
            size_t rl = strlen(r);
            if (strcmp(r, "/") == 0) rl = 0;
            bool under = strncmp(uri, r, rl) == 0 && (uri[rl] == '/' || uri[rl] == 0);
            /* the outermost root gives the longest relative path */
            if (under && (!best || rl < best_len)) { best = r; best_len = rl; }
        }
    }
    char *out = NULL;
    if (best) {
        const char *rslash = strrchr(best, '/');
        const char *rname = rslash && best_len ? rslash + 1 : "";
        const char *rel = uri + best_len;
        while (*rel == '/') rel++;
        /* the root's own name, then the path below it ("docs/it/vpn.md");
         * a single-file root is its name */
        if (!*rel) {
            const char *b = strrchr(uri, '/');
            out = strdup(b ? b + 1 : uri);
        } else {
            size_t on = strlen(rname) + strlen(rel) + 2;
            if ((out = malloc(on))) snprintf(out, on, "%s%s%s", rname, *rname ? "/" : "", rel);
        }
    } else {
        /* no root recorded (an index from before roots were): the last two parts */
        const char *last = strrchr(uri, '/'), *prev = NULL;
        for (const char *q = uri; last && q < last; q++)
            if (*q == '/') prev = q;
        out = strdup(prev ? prev + 1 : last ? last + 1 : uri);
    }
    idx_meta_keys_free(roots, n);
    return out;
}

/* The collection of a source or evidence unit (its answerer index). */
static const char *coll_name(const app_server *s, int index) {
    return index >= 0 && index < s->n_coll ? s->coll[index].name : "";
}

/* The store of a source's collection in slot sl. */
static idx_store *coll_store(const app_slot *sl, int index) {
    return index >= 0 && index < sl->srv->n_coll ? sl->stores[index] : sl->store;
}

/* The SOURCE array of the job's answer (titles looked up in the sources'
 * collections). */
static char *sources_json(app_job *j, const app_slot *sl) {
    const rag_answer *r = &j->res;
    if (!j->titles && r->n_sources) {
        j->titles = calloc(r->n_sources, sizeof *j->titles);
        j->n_titles = j->titles ? r->n_sources : 0;
        for (size_t i = 0; j->titles && i < r->n_sources; i++) {
            idx_doc d;
            memset(&d, 0, sizeof d);
            idx_store *store = coll_store(sl, r->sources[i].index);
            if (store && idx_doc_get(store, r->sources[i].uri, &d) == IDX_OK) j->titles[i] = strdup(d.title ? d.title : "");
            idx_doc_release(&d);
        }
    }
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < r->n_sources; i++) {
        const rag_source *s = &r->sources[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "id", s->number);
        cJSON_AddNumberToObject(e, "chunk_id", (double)s->chunk_id);
        const char *title = j->titles && j->titles[i] ? j->titles[i] : "";
        cJSON_AddStringToObject(e, "title", title);
        cJSON_AddStringToObject(e, "collection", coll_name(sl->srv, s->index));
        char *shown = app_serve_display_uri(coll_store(sl, s->index), j->key, s->uri);
        cJSON_AddStringToObject(e, "uri", shown ? shown : "");
        free(shown);
        if (is_http(s->uri)) cJSON_AddStringToObject(e, "url", s->uri);
        else cJSON_AddNullToObject(e, "url");
        cJSON_AddStringToObject(e, "label", s->label ? s->label : "");
        cJSON_AddStringToObject(e, "heading", s->heading ? s->heading : "");
        if (s->line_start > 0) {
            cJSON *l = cJSON_AddArrayToObject(e, "lines");
            cJSON_AddItemToArray(l, cJSON_CreateNumber(s->line_start));
            cJSON_AddItemToArray(l, cJSON_CreateNumber(s->line_end > s->line_start ? s->line_end : s->line_start));
        }
        if (s->page > 0) cJSON_AddNumberToObject(e, "page", s->page);
        cJSON_AddNumberToObject(e, "score", s->score);
        /* the passage as the model got it (guard-redacted, maybe trimmed) */
        char *tx = s->text ? strndup(s->text, s->text_len) : NULL;
        cJSON_AddStringToObject(e, "text", tx ? tx : "");
        free(tx);
        cJSON_AddBoolToObject(e, "trimmed", s->trimmed);
        cJSON_AddItemToArray(a, e);
    }
    char *t = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return t;
}

/* The EVIDENCE array of the job's answer: each unit's text, citation (as
 * the sources: the path shown to this caller, lines, page, URL#section),
 * source number, and the byte spans of its words that match the question. */
static char *evidence_json(app_job *j, const app_slot *sl) {
    const rag_answer *r = &j->res;
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < r->n_evidence; i++) {
        const rag_evidence *e = &r->evidence[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) continue;
        char *shown = app_serve_display_uri(coll_store(sl, e->index), j->key, e->uri);
        char cite[4400];
        rag_evidence_cite(e, shown, cite, sizeof cite);
        app_evidence_json(o, e, cite);
        cJSON_AddStringToObject(o, "collection", coll_name(sl->srv, e->index));
        /* its bytes in that source's text (SOURCE.text) */
        cJSON_AddNumberToObject(o, "offset", (double)e->offset);
        cJSON_AddNumberToObject(o, "length", (double)e->length);
        cJSON_AddStringToObject(o, "uri", shown ? shown : "");
        free(shown);
        if (is_http(e->uri)) cJSON_AddStringToObject(o, "url", e->uri);
        else cJSON_AddNullToObject(o, "url");
        if (e->line_start > 0) {
            cJSON *l = cJSON_AddArrayToObject(o, "lines");
            cJSON_AddItemToArray(l, cJSON_CreateNumber(e->line_start));
            cJSON_AddItemToArray(l, cJSON_CreateNumber(e->line_end > e->line_start ? e->line_end : e->line_start));
        }
        if (e->page > 0) cJSON_AddNumberToObject(o, "page", e->page);
        cJSON_AddItemToArray(a, o);
    }
    char *t = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return t;
}

static cJSON *events_json(const rag_answer *r) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < r->n_events; i++) {
        const rag_answer_event *g = &r->events[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "stage", rag_guard_stage_name(g->stage));
        cJSON_AddStringToObject(e, "rule", g->rule_id ? g->rule_id : "");
        cJSON_AddStringToObject(e, "action", rag_guard_action_name(g->action));
        cJSON_AddStringToObject(e, "message", g->message ? g->message : "");
        cJSON_AddItemToArray(a, e);
    }
    return a;
}

static cJSON *cited_json(const rag_answer *r) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < r->n_cited; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(r->cited[i]));
    return a;
}

static const char *job_status(const app_job *j) { return rag_answer_status_str(j->res.status); }

/* Contract: see serve.h. The /api/ask result object. */
char *app_job_ask_json(app_job *j) {
    const rag_answer *r = &j->res;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", job_status(j));
    cJSON_AddStringToObject(o, "answer", r->answer ? r->answer : "");
    if (r->status == RAG_ANS_BLOCKED) {
        cJSON_AddStringToObject(o, "blocked_stage", rag_guard_stage_name(r->block_stage));
        cJSON_AddStringToObject(o, "message", r->block_message ? r->block_message : "blocked by a guardrail");
    }
    cJSON *src = cJSON_Parse(j->sources_json ? j->sources_json : "[]");
    cJSON_AddItemToObject(o, "sources", src ? src : cJSON_CreateArray());
    cJSON *ev = cJSON_Parse(j->evidence_json ? j->evidence_json : "[]");
    cJSON_AddItemToObject(o, "evidence", ev ? ev : cJSON_CreateArray());
    cJSON_AddBoolToObject(o, "extractive", r->status == RAG_ANS_EXTRACTED);
    cJSON_AddItemToObject(o, "cited", cited_json(r));
    cJSON_AddItemToObject(o, "events", events_json(r));
    cJSON *t = cJSON_AddObjectToObject(o, "timings");
    cJSON_AddNumberToObject(t, "retrieve_ms", r->retrieve_ms);
    cJSON_AddNumberToObject(t, "evidence_ms", r->evidence_ms);
    cJSON_AddNumberToObject(t, "prefill_ms", j->prefill_ms);
    cJSON_AddNumberToObject(t, "decode_ms", j->decode_ms);
    cJSON_AddNumberToObject(t, "tokens", j->n_generated);
    cJSON_AddNumberToObject(t, "prompt_tokens", j->n_prompt);
    cJSON_AddNumberToObject(t, "reused_tokens", j->n_reused);
    if (j->srv->o.guard_llm) {
        cJSON_AddNumberToObject(t, "judged", r->n_judged);
        cJSON_AddNumberToObject(t, "judge_ms", r->judge_ms);
    }
    cJSON_AddStringToObject(o, "request_id", j->req_id);
    if (j->srv->o.debug_prompts) {
        if (j->res.prompt) cJSON_AddStringToObject(o, "prompt", j->res.prompt);
        else cJSON_AddNullToObject(o, "prompt");
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static cJSON *mrag_obj(app_job *j) {
    const rag_answer *r = &j->res;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "status", job_status(j));
    if (r->status == RAG_ANS_BLOCKED) {
        cJSON_AddStringToObject(m, "blocked_stage", rag_guard_stage_name(r->block_stage));
        cJSON_AddStringToObject(m, "message", r->block_message ? r->block_message : "blocked by a guardrail");
    }
    cJSON_AddItemToObject(m, "cited", cited_json(r));
    cJSON_AddItemToObject(m, "events", events_json(r));
    if (j->srv->o.guard_llm) {
        cJSON_AddNumberToObject(m, "judged", r->n_judged);
        cJSON_AddNumberToObject(m, "judge_ms", r->judge_ms);
    }
    if (j->retrieval) {
        cJSON *ev = cJSON_Parse(j->evidence_json ? j->evidence_json : "[]");
        cJSON_AddItemToObject(m, "evidence", ev ? ev : cJSON_CreateArray());
        cJSON_AddBoolToObject(m, "extractive", r->status == RAG_ANS_EXTRACTED);
    }
    cJSON_AddStringToObject(m, "request_id", j->req_id);
    if (j->srv->o.debug_prompts) {
        if (j->res.prompt) cJSON_AddStringToObject(m, "prompt", j->res.prompt);
        else cJSON_AddNullToObject(m, "prompt");
    }
    return m;
}

static cJSON *usage_obj(const app_job *j) {
    cJSON *u = cJSON_CreateObject();
    int np = j->n_prompt > 0 ? j->n_prompt : 0;
    cJSON_AddNumberToObject(u, "prompt_tokens", np);
    cJSON_AddNumberToObject(u, "completion_tokens", j->n_generated);
    cJSON_AddNumberToObject(u, "total_tokens", np + j->n_generated);
    /* OpenAI's field for prompt tokens served from a cache */
    cJSON *d = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    if (d) cJSON_AddNumberToObject(d, "cached_tokens", j->n_reused > 0 ? j->n_reused : 0);
    return u;
}

/* Contract: see serve.h. The chat.completion object. */
char *app_job_chat_json(app_job *j) {
    const rag_answer *r = &j->res;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->chat_id);
    cJSON_AddStringToObject(o, "object", "chat.completion");
    cJSON_AddNumberToObject(o, "created", (double)j->created);
    cJSON_AddStringToObject(o, "model", j->srv->model_name);
    cJSON *ch = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(c, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    cJSON_AddStringToObject(msg, "content", r->answer ? r->answer : "");
    cJSON_AddStringToObject(c, "finish_reason", finish_reason(j));
    cJSON_AddItemToArray(ch, c);
    cJSON_AddItemToObject(o, "usage", usage_obj(j));
    if (j->retrieval) {
        cJSON *src = cJSON_Parse(j->sources_json ? j->sources_json : "[]");
        cJSON_AddItemToObject(o, "sources", src ? src : cJSON_CreateArray());
    }
    cJSON_AddItemToObject(o, "mrag", mrag_obj(j));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* The closing events of a stream; call with srv->mu held. */
static void stream_tail(app_job *j) {
    stream_head(j);
    if (j->err || j->timed_out) {
        const char *type = j->timed_out ? "timeout" : "server_error";
        char msg[600];
        if (j->timed_out) snprintf(msg, sizeof msg, "the request took longer than %d s and was stopped", j->srv->o.timeout_s);
        else snprintf(msg, sizeof msg, "%s", j->errmsg);
        cJSON *e = error_obj(msg, type, j->timed_out ? 504 : 500);
        char *t = cJSON_PrintUnformatted(e);
        cJSON_Delete(e);
        out_str(j, j->kind == APP_JOB_CHAT ? "data: " : "event: error\ndata: ");
        if (t) out_str(j, t);
        out_str(j, "\n\n");
        free(t);
        if (j->kind == APP_JOB_CHAT) out_str(j, "data: [DONE]\n\n");
        return;
    }
    if (j->kind == APP_JOB_CHAT) {
        chat_chunk_begin(j);
        out_str(j, "{},\"finish_reason\":\"");
        out_str(j, finish_reason(j));
        out_str(j, "\"}]");
        cJSON *m = mrag_obj(j), *u = usage_obj(j);
        char *ms = cJSON_PrintUnformatted(m), *us = cJSON_PrintUnformatted(u);
        cJSON_Delete(m);
        cJSON_Delete(u);
        out_str(j, ",\"usage\":");
        out_str(j, us ? us : "null");
        out_str(j, ",\"mrag\":");
        out_str(j, ms ? ms : "null");
        out_str(j, "}\n\ndata: [DONE]\n\n");
        free(ms);
        free(us);
    } else {
        char *d = app_job_ask_json(j);
        out_str(j, "event: done\ndata: ");
        out_str(j, d ? d : "{}");
        out_str(j, "\n\n");
        free(d);
    }
}

/* Contract: see serve.h. */
bool app_job_cancel(app_server *s, app_job *j, bool timeout) {
    bool was_queued = false;
    pthread_mutex_lock(&s->mu);
    if (j->state == APP_JOB_DONE) { pthread_mutex_unlock(&s->mu); return false; }
    j->cancel = 1;
    if (timeout) j->timed_out = true;
    else j->client_gone = true;
    for (size_t i = 0; j->state == APP_JOB_QUEUED && i < s->fifo_n; i++) {
        size_t at = (s->fifo_head + i) % s->fifo_cap;
        if (s->fifo[at] != j) continue;
        for (size_t k = i; k + 1 < s->fifo_n; k++)
            s->fifo[(s->fifo_head + k) % s->fifo_cap] = s->fifo[(s->fifo_head + k + 1) % s->fifo_cap];
        s->fifo_n--;
        j->refs--;      /* the queue's reference (the caller still holds one) */
        j->have_res = true;
        j->res.status = RAG_ANS_CANCELLED;
        if (j->stream) stream_tail(j);
        j->state = APP_JOB_DONE;
        pthread_cond_broadcast(&j->cv);
        was_queued = true;
        break;
    }
    pthread_mutex_unlock(&s->mu);
    return was_queued;
}

/* ------------------------------------------------------------ audit */

/* One JSON line per guardrail event: the fields of `mrag ask`'s lines (time,
 * stage, rule, action, kind, start, len) plus request id, key name (never
 * the key) and passage. Never the matched text. */
static void audit_events(app_server *s, const app_job *j) {
    if (!s->audit || !j->have_res || !j->res.n_events) return;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    for (size_t i = 0; i < j->res.n_events; i++) {
        const rag_answer_event *g = &j->res.events[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "time", ts);
        cJSON_AddStringToObject(o, "request", j->req_id);
        cJSON_AddStringToObject(o, "key", j->key_name);
        cJSON_AddStringToObject(o, "stage", rag_guard_stage_name(g->stage));
        cJSON_AddStringToObject(o, "rule", g->rule_id ? g->rule_id : "");
        cJSON_AddStringToObject(o, "action", rag_guard_action_name(g->action));
        cJSON_AddStringToObject(o, "kind", g->kind == RAG_GUARD_EV_LIMIT ? "limit" : "match");
        cJSON_AddNumberToObject(o, "start", (double)g->start);
        cJSON_AddNumberToObject(o, "len", (double)(g->end - g->start));
        if (g->chunk_id) cJSON_AddNumberToObject(o, "chunk_id", (double)g->chunk_id);
        char *t = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (t) {
            flockfile(s->audit);
            fputs(t, s->audit);
            fputc('\n', s->audit);
            fflush(s->audit);
            funlockfile(s->audit);
            free(t);
        }
    }
}

/* ------------------------------------------------------------ generation */

/* The answer text after the output guard: to the stream, if any. */
static int job_emit(void *user, const char *text, size_t len) {
    app_slot *sl = user;
    app_job *j = sl->job;
    app_server *s = sl->srv;
    if (!j->sources_json) {
        char *sj = sources_json(j, sl);
        pthread_mutex_lock(&s->mu);
        j->sources_json = sj;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&s->mu);
    if (j->stream && len) {
        stream_head(j);
        stream_text(j, text, len);
        pthread_cond_broadcast(&j->cv);
    }
    /* the deadline is also kept here: a client that reads slowly (or not at
     * all) must not keep the slot past --timeout */
    if (!j->cancel && j->deadline > 0 && app_now_s() >= j->deadline) {
        j->cancel = 1;
        j->timed_out = true;
    }
    int stop = j->cancel != 0;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/* The evidence, as soon as it is chosen (before the model runs): kept for
 * the results, and on a stream the sources then the evidence go out at
 * once (/api/ask: an `evidence` event; the OpenAI-compatible stream: the
 * first chunk's mrag.evidence). */
static void job_evidence(void *user, const rag_answer *r) {
    app_slot *sl = user;
    app_job *j = sl->job;
    app_server *s = sl->srv;
    (void)r;
    char *sj = j->sources_json ? NULL : sources_json(j, sl);
    char *ej = evidence_json(j, sl);
    pthread_mutex_lock(&s->mu);
    if (sj) j->sources_json = sj;
    free(j->evidence_json);
    j->evidence_json = ej;
    if (j->stream) {
        stream_head(j);
        if (j->kind == APP_JOB_ASK) {
            out_str(j, "event: evidence\ndata: {\"evidence\":");
            out_str(j, ej ? ej : "[]");
            out_str(j, j->extractive ? ",\"extractive\":true}\n\n" : ",\"extractive\":false}\n\n");
        }
        pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

/* The job's messages as the engine takes them (borrowed from the request). */
static rag_msg *job_msgs(const app_job *j) {
    rag_msg *m = calloc(j->chat.n_msgs ? j->chat.n_msgs : 1, sizeof *m);
    for (size_t i = 0; m && i < j->chat.n_msgs; i++) {
        m[i].role = j->chat.msgs[i].role;
        m[i].content = j->chat.msgs[i].content;
    }
    return m;
}

/* Answers one job in slot sl: the request's settings into the answerer,
 * then the answer pipeline (retrieval, or plain chat). */
static void run_job(app_slot *sl, app_job *j) {
    app_server *s = sl->srv;
    j->t_start = app_now_s();
    j->have_res = true;
    if (j->cancel) {
        j->res.status = RAG_ANS_CANCELLED;
    } else {
        rag_sampling sp = rag_sampling_default();
        sp.max_tokens = j->max_tokens;
        sp.temperature = j->temperature;
        sp.seed = j->seed;
        sp.stop = (const char *const *)j->chat.stop;
        sp.n_stop = j->chat.n_stop;
        /* a slot reuses the KV cache of its last prompt only for the same key */
        sp.cache_scope = j->key_name;
        int st = rag_answerer_set_sampling(sl->ans, &sp);
        if (st == RAG_OK && j->kind == APP_JOB_CHAT && !j->retrieval) {
            rag_msg *m = job_msgs(j);
            st = m ? rag_answerer_chat(sl->ans, m, j->chat.n_msgs, job_emit, sl, &j->cancel, &j->res) : RAG_ERR_NOMEM;
            free(m);
            /* messages that do not fit the template are the client's mistake */
            if (st == RAG_ERR_FORMAT) j->err_status = 400;
        } else if (st == RAG_OK) {
            /* the request's collections, each seeing the latest ingest */
            for (int c = 0; c < s->n_coll; c++)
                if (j->colls >> c & 1) idx_refresh(sl->stores[c], NULL);
            st = rag_answerer_set_indexes(sl->ans, j->colls);
            /* the preamble: the request's system message, else the server's */
            if (st == RAG_OK) st = rag_answerer_set_preamble(sl->ans, j->system);
            /* the caller's groups: the key's ("*" = all), anonymous = public only */
            const app_serve_key *key = j->key;
            if (st == RAG_OK)
                st = key && key->all ? rag_answerer_set_groups(sl->ans, NULL, 0, true)
                     : rag_answerer_set_groups(sl->ans, key ? (const char *const *)key->groups : NULL,
                                               key ? key->n_groups : 0, false);
            if (st == RAG_OK) st = rag_answerer_set_k(sl->ans, j->k);
            if (st == RAG_OK) st = rag_answerer_set_extractive(sl->ans, j->extractive);
            if (st == RAG_OK)
                st = rag_answerer_ask(sl->ans, j->question, j->hist, j->n_hist, job_emit, sl, &j->cancel, &j->res);
        }
        if (st != RAG_OK) {
            j->err = 1;
            snprintf(j->errmsg, sizeof j->errmsg, "%s", rag_answerer_errmsg(sl->ans));
        }
        if (j->res.generated) {
            /* usage counts what the engine itself counted: a remote one cannot */
            j->n_prompt = j->res.engine_prompt_tokens > 0 ? j->res.engine_prompt_tokens : 0;
            j->n_reused = j->res.reused_tokens;
            j->n_generated = j->res.n_generated;
            j->prefill_ms = j->res.prefill_ms;
            j->decode_ms = j->res.decode_ms;
            j->stop_reason = j->res.stop_reason;
        }
    }
    if (!j->err) {
        /* (again: the evidence went out before the prompt was fitted, and a
         * source that did not fit is not among the final ones) */
        char *sj = sources_json(j, sl);
        pthread_mutex_lock(&s->mu);
        free(j->sources_json);
        j->sources_json = sj;
        pthread_mutex_unlock(&s->mu);
    }
    j->t_end = app_now_s();
    audit_events(s, j);
    pthread_mutex_lock(&s->mu);
    if (j->cancel && j->deadline > 0 && app_now_s() >= j->deadline) j->timed_out = true;
    if (j->stream) stream_tail(j);
    s->m.generated_tokens += (uint64_t)j->n_generated;
    if (j->n_generated > 0 && j->decode_ms > 0) s->m.last_tps = j->n_generated * 1000.0 / j->decode_ms;
    double d = j->t_end - j->t_start;
    s->ewma_gen_s = s->ewma_gen_s > 0 ? 0.7 * s->ewma_gen_s + 0.3 * d : d;
    j->state = APP_JOB_DONE;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *slot_main(void *arg) {
    app_slot *sl = arg;
    app_server *s = sl->srv;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->fifo_n && !s->stopping) pthread_cond_wait(&s->work_cv, &s->mu);
        if (!s->fifo_n) { pthread_mutex_unlock(&s->mu); break; }
        app_job *j = s->fifo[s->fifo_head];
        s->fifo_head = (s->fifo_head + 1) % s->fifo_cap;
        s->fifo_n--;
        j->state = APP_JOB_RUNNING;
        s->active++;
        sl->job = j;
        pthread_mutex_unlock(&s->mu);
        run_job(sl, j);
        pthread_mutex_lock(&s->mu);
        s->active--;
        sl->job = NULL;
        pthread_mutex_unlock(&s->mu);
        app_job_unref(j);
    }
    return NULL;
}

/* Contract: see serve.h. Opens every slot's store, context and answerer,
 * the search and embedding pools, then starts the workers. */
int app_slots_start(app_server *s, char *err, size_t errlen) {
    /* the ring holds the waiting jobs plus one per slot about to start */
    s->fifo_cap = (size_t)(s->o.queue > 0 ? s->o.queue : 0) + (size_t)s->o.slots;
    if (!(s->fifo = calloc(s->fifo_cap, sizeof *s->fifo))) { snprintf(err, errlen, "out of memory"); return -1; }
    s->n_slots = s->o.slots;
    if (!(s->slots = calloc((size_t)s->n_slots, sizeof *s->slots))) { snprintf(err, errlen, "out of memory"); return -1; }
    idx_params ip = idx_default_params();
    ip.read_only = true;
    /* the search handles first: their retrievers check each collection's
     * embeddings against the model, and a mismatch names the collection */
    s->n_search = s->o.search_handles;
    if (!(s->search = calloc((size_t)s->n_search, sizeof *s->search))) { snprintf(err, errlen, "out of memory"); return -1; }
    for (int i = 0; i < s->n_search; i++) {
        app_search_handle *h = &s->search[i];
        rag_retriever_params rp = rag_retriever_default_params();
        rp.model = s->model;
        rp.layer = s->layer;
        rp.n_threads = 1;
        if (s->o.llm_embeddings && !s->model) {
            rag_remote_params rrp = rag_remote_default_params();
            rrp.base_url = s->o.llm_url;
            rrp.key_file = s->o.llm_key_file;
            rrp.model = s->o.llm_model;
            rrp.probe = false;
            if (rag_remote_new(&rrp, &h->remote, err, errlen) != RAG_OK) return -1;
            if (rag_engine_remote_new(h->remote, &h->engine) != RAG_OK) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            if (i == 0) {
                /* every collection must fit the remote embeddings */
                for (int c = 0; c < s->n_coll; c++)
                    if (rag_remote_check_index(h->remote, s->coll[c].stat_store, &s->embed_dim) != RAG_OK) {
                        snprintf(err, errlen, "%s%s%sremote embeddings: %s", s->n_coll > 1 ? "collection '" : "",
                                 s->n_coll > 1 ? s->coll[c].name : "", s->n_coll > 1 ? "': " : "", rag_remote_errmsg(h->remote));
                        return -1;
                    }
            }
            rp.embed = rag_engine_embed_one;
            rp.embed_user = h->engine;
            rp.embed_dim = s->embed_dim;
        }
        for (int c = 0; c < s->n_coll; c++) {
            if (idx_open(s->coll[c].dir, &ip, &h->stores[c]) != IDX_OK) {
                snprintf(err, errlen, "%s", h->stores[c] ? idx_errmsg(h->stores[c]) : "out of memory");
                return -1;
            }
            char rerr[1024];
            if (rag_retriever_new(h->stores[c], &rp, &h->rets[c], rerr, sizeof rerr) != RAG_OK) {
                if (s->n_coll > 1) snprintf(err, errlen, "collection '%s' (%s): %s", s->coll[c].name, s->coll[c].dir, rerr);
                else snprintf(err, errlen, "%s", rerr);
                return -1;
            }
        }
        h->store = h->stores[0];
        h->ret = h->rets[0];
    }
    for (int i = 0; i < s->n_slots; i++) {
        app_slot *sl = &s->slots[i];
        sl->srv = s;
        sl->id = i;
        for (int c = 0; c < s->n_coll; c++)
            if (idx_open(s->coll[c].dir, &ip, &sl->stores[c]) != IDX_OK) {
                snprintf(err, errlen, "%s", sl->stores[c] ? idx_errmsg(sl->stores[c]) : "out of memory");
                return -1;
            }
        sl->store = sl->stores[0];
        if (s->o.llm_url) {
            rag_remote_params rp = rag_remote_default_params();
            rp.base_url = s->o.llm_url;
            rp.key_file = s->o.llm_key_file;
            rp.model = s->o.llm_model;
            rp.probe = i == 0;      /* one probe is enough to fail early */
            if (rag_remote_new(&rp, &sl->remote, err, errlen) != RAG_OK) return -1;
            if (i == 0 && !s->model) snprintf(s->model_name, sizeof s->model_name, "%s", rag_remote_model(sl->remote));
            if (rag_engine_remote_new(sl->remote, &sl->engine) != RAG_OK) { snprintf(err, errlen, "out of memory"); return -1; }
        } else {
            rag_local_params lp = rag_local_default_params();
            lp.n_ctx = s->n_ctx;
            lp.n_threads = s->o.threads;
            lp.lazy = false;        /* a context that cannot be made fails the start */
            if (rag_engine_local_new(s->model, &lp, &sl->engine, err, errlen) != RAG_OK) return -1;
        }
        rag_answer_params p = rag_answer_default_params();
        p.store = sl->store;
        p.more_stores = sl->stores + 1;
        p.n_more_stores = (size_t)s->n_coll - 1;
        p.guard = s->guard;
        p.model = s->model;
        p.engine = sl->engine;
        p.layer = s->layer;
        p.k = s->o.k;
        p.n_threads = s->o.threads;
        p.n_ctx = s->n_ctx;
        p.max_tokens = s->o.max_tokens;
        p.preamble = s->preamble;
        p.canary = getenv("MRAG_CANARY");   /* NULL: a random one per answerer */
        p.guard_llm = s->o.guard_llm;
        if (s->o.llm_embeddings && !s->model) {
            p.embed = rag_engine_embed_one;
            p.embed_user = sl->engine;
            p.embed_dim = s->embed_dim;
        }
        if (rag_answerer_new(&p, &sl->ans, err, errlen) != RAG_OK) return -1;
        rag_answerer_on_evidence(sl->ans, job_evidence, sl);
    }
    if (s->model) {
        s->n_embed = s->o.embed_slots;
        if (!(s->embed = calloc((size_t)s->n_embed, sizeof *s->embed))) { snprintf(err, errlen, "out of memory"); return -1; }
        for (int i = 0; i < s->n_embed; i++) {
            rag_local_params lp = rag_local_default_params();
            lp.n_ctx = s->embed_ctx;
            lp.n_threads = s->o.threads;
            lp.embd_layer = s->layer;
            lp.lazy = false;
            if (rag_engine_local_new(s->model, &lp, &s->embed[i].engine, err, errlen) != RAG_OK) return -1;
        }
    }
    for (int i = 0; i < s->n_slots; i++) {
        if (pthread_create(&s->slots[i].th, NULL, slot_main, &s->slots[i]) != 0) {
            snprintf(err, errlen, "cannot start a worker thread");
            return -1;
        }
        s->slots[i].started = true;
    }
    return 0;
}

/* Contract: see serve.h. Workers finish the queue (jobs already cancelled
 * end at once), then everything is closed. */
void app_slots_stop(app_server *s) {
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; s->slots && i < s->n_slots; i++) {
        app_slot *sl = &s->slots[i];
        if (sl->started) pthread_join(sl->th, NULL);
        rag_answerer_free(sl->ans);
        rag_engine_free(sl->engine);
        rag_remote_free(sl->remote);
        for (int c = 0; c < APP_MAX_COLLECTIONS; c++) idx_close(sl->stores[c]);
    }
    free(s->slots);
    s->slots = NULL;
    for (int i = 0; s->search && i < s->n_search; i++) {
        for (int c = 0; c < APP_MAX_COLLECTIONS; c++) rag_retriever_free(s->search[i].rets[c]);
        rag_engine_free(s->search[i].engine);
        rag_remote_free(s->search[i].remote);
        for (int c = 0; c < APP_MAX_COLLECTIONS; c++) idx_close(s->search[i].stores[c]);
    }
    free(s->search);
    s->search = NULL;
    for (int i = 0; s->embed && i < s->n_embed; i++) rag_engine_free(s->embed[i].engine);
    free(s->embed);
    s->embed = NULL;
    free(s->fifo);
    s->fifo = NULL;
}

/* ------------------------------------------------------------ search, embeddings */

/* A free search handle, waiting for one up to the request timeout; NULL
 * when none came free. Give it back with search_handle_give. */
static app_search_handle *search_handle_take(app_server *s) {
    app_search_handle *h = NULL;
    double deadline = app_now_s() + s->o.timeout_s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        for (int i = 0; i < s->n_search && !h; i++)
            if (!s->search[i].busy) h = &s->search[i];
        if (h || app_now_s() >= deadline) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->search_cv, &s->mu, &ts);
    }
    if (h) h->busy = true;
    pthread_mutex_unlock(&s->mu);
    if (h) idx_refresh(h->store, NULL);
    return h;
}

static void search_handle_give(app_server *s, app_search_handle *h) {
    pthread_mutex_lock(&s->mu);
    h->busy = false;
    pthread_cond_signal(&s->search_cv);
    pthread_mutex_unlock(&s->mu);
}

/* Contract: see serve.h. Waits for a free handle (bounded by the request
 * timeout), refreshes it, searches with the key's group filter. */
char *app_search_json(app_server *s, const app_serve_key *key, uint64_t mask, const char *q, int k, int mode,
                      int *http_status, char *err, size_t errlen) {
    char *out = NULL;
    rag_hit *hits = NULL;
    app_search_handle *h = search_handle_take(s);
    if (!h) { *http_status = 504; snprintf(err, errlen, "no search handle became free in time"); return NULL; }
    rag_retriever *use[APP_MAX_COLLECTIONS];
    int which[APP_MAX_COLLECTIONS], nu = 0;
    for (int c = 0; c < s->n_coll; c++)
        if (mask >> c & 1) {
            idx_refresh(h->stores[c], NULL);
            which[nu] = c;
            use[nu++] = h->rets[c];
        }
    if (!s->can_dense && mode != RAG_SEARCH_BM25) mode = RAG_SEARCH_BM25;
    idx_filter f = {0};
    if (key && !key->all) { f.groups = (const char *const *)key->groups; f.n_groups = key->n_groups; }
    const idx_filter *fp = key && key->all ? NULL : &f;
    int nh = 0;
    if (!(hits = calloc((size_t)k, sizeof *hits))) { *http_status = 500; snprintf(err, errlen, "out of memory"); goto done; }
    if (!nu || rag_retrieve_multi(use, (size_t)nu, q, strlen(q), (rag_search_mode)mode, k, fp, hits, &nh) != RAG_OK) {
        *http_status = 500;
        snprintf(err, errlen, "search failed: %s", nu ? rag_retriever_errmsg(use[0]) : "no collection");
        goto done;
    }
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "hits");
    for (int i = 0; i < nh; i++) {
        idx_chunk c;
        idx_doc d;
        memset(&c, 0, sizeof c);
        memset(&d, 0, sizeof d);
        int ci = which[hits[i].part];
        if (idx_chunk_get(h->stores[ci], hits[i].chunk_id, &c, &d) != IDX_OK) continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "rank", i + 1);
        cJSON_AddNumberToObject(e, "score", hits[i].score);
        cJSON_AddNumberToObject(e, "chunk_id", (double)hits[i].chunk_id);
        cJSON_AddStringToObject(e, "collection", s->coll[ci].name);
        char *shown = app_serve_display_uri(h->stores[ci], key, d.uri);
        cJSON_AddStringToObject(e, "uri", shown ? shown : "");
        free(shown);
        if (d.uri && is_http(d.uri)) cJSON_AddStringToObject(e, "url", d.uri);
        else cJSON_AddNullToObject(e, "url");
        cJSON_AddStringToObject(e, "title", d.title ? d.title : "");
        cJSON_AddStringToObject(e, "heading", c.heading ? c.heading : "");
        char label[600];
        const char *base = d.uri ? strrchr(d.uri, '/') : NULL;
        base = base ? base + 1 : d.uri ? d.uri : "";
        char tail[64];
        rag_cite_tail(d.type, c.page, c.line_start, c.line_end, tail, sizeof tail);
        snprintf(label, sizeof label, "%s%s", base, tail);
        cJSON_AddStringToObject(e, "label", label);
        cJSON *t = cJSON_CreateString("");
        if (c.text) {
            cJSON_Delete(t);
            char *tx = strndup(c.text, c.text_len);
            t = cJSON_CreateString(tx ? tx : "");
            free(tx);
        }
        cJSON_AddItemToObject(e, "text", t);
        cJSON_AddItemToArray(a, e);
        idx_chunk_release(&c);
        idx_doc_release(&d);
    }
    out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    *http_status = out ? 200 : 500;
done:
    free(hits);
    search_handle_give(s, h);
    return out;
}

/* True when a caller with key (NULL: anonymous) may read a document with
 * these groups (comma-separated, "" = public): as the search filter, a
 * public document, a `*` key, or a group in common. */
static bool key_may_read(const app_serve_key *key, const char *groups) {
    if (!groups || !*groups) return true;
    if (key && key->all) return true;
    if (!key) return false;
    for (const char *p = groups; *p;) {
        while (*p == ',' || *p == ' ') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        size_t n = (size_t)(e - p);
        while (n && p[n - 1] == ' ') n--;
        for (size_t i = 0; n && i < key->n_groups; i++)
            if (strlen(key->groups[i]) == n && memcmp(key->groups[i], p, n) == 0) return true;
        p = e;
    }
    return false;
}

/* The id of the chunk stored next to chunk c (step -1 or +1) when it is the
 * neighbouring ordinal of the same document, else 0. A document's chunks
 * are stored together, so their ids follow their ordinals. */
static int64_t neighbour_id(idx_store *st, const idx_chunk *c, int step) {
    if (c->id + step <= 0) return 0;
    idx_chunk n;
    memset(&n, 0, sizeof n);
    int64_t id = 0;
    if (idx_chunk_get(st, c->id + step, &n, NULL) == IDX_OK && n.doc_id == c->doc_id && n.ordinal == c->ordinal + step)
        id = n.id;
    idx_chunk_release(&n);
    return id;
}

/* Contract: see serve.h. */
char *app_passage_json(app_server *s, const app_serve_key *key, int coll, int64_t id, int *http_status, char *err,
                       size_t errlen) {
    if (coll < 0 || coll >= s->n_coll) { *http_status = 500; snprintf(err, errlen, "no such collection"); return NULL; }
    app_search_handle *h = search_handle_take(s);
    if (!h) { *http_status = 504; snprintf(err, errlen, "no search handle became free in time"); return NULL; }
    idx_store *st = h->stores[coll];
    if (coll) idx_refresh(st, NULL);
    char *out = NULL;
    idx_chunk c;
    idx_doc d;
    memset(&c, 0, sizeof c);
    memset(&d, 0, sizeof d);
    int rc = idx_chunk_get(st, id, &c, &d);
    if (rc == IDX_OK && (!d.uri || !key_may_read(key, d.groups))) rc = IDX_ERR_NOTFOUND;
    if (rc != IDX_OK) {
        /* absent and not readable by this caller look the same */
        *http_status = rc == IDX_ERR_NOTFOUND ? 404 : 500;
        snprintf(err, errlen, "%s", rc == IDX_ERR_NOTFOUND ? "no such passage" : "the passage could not be read");
        goto done;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)c.id);
    cJSON_AddStringToObject(o, "collection", s->coll[coll].name);
    cJSON *doc = cJSON_AddObjectToObject(o, "document");
    cJSON_AddStringToObject(doc, "title", d.title ? d.title : "");
    char *shown = app_serve_display_uri(st, key, d.uri);
    cJSON_AddStringToObject(doc, "uri", shown ? shown : "");
    free(shown);
    if (is_http(d.uri)) cJSON_AddStringToObject(doc, "url", d.uri);
    else cJSON_AddNullToObject(doc, "url");
    cJSON_AddStringToObject(doc, "type", d.type ? d.type : "");
    cJSON_AddNumberToObject(o, "ordinal", c.ordinal);
    cJSON_AddStringToObject(o, "heading", c.heading ? c.heading : "");
    if (c.line_start > 0) {
        cJSON *l = cJSON_AddArrayToObject(o, "lines");
        cJSON_AddItemToArray(l, cJSON_CreateNumber(c.line_start));
        cJSON_AddItemToArray(l, cJSON_CreateNumber(c.line_end > c.line_start ? c.line_end : c.line_start));
    }
    if (c.page > 0) cJSON_AddNumberToObject(o, "page", c.page);
    char tail[64];
    rag_cite_tail(d.type, c.page, c.line_start, c.line_end, tail, sizeof tail);
    cJSON_AddStringToObject(o, "cite", tail);
    char *tx = c.text ? strndup(c.text, c.text_len) : NULL;
    cJSON_AddStringToObject(o, "text", tx ? tx : "");
    free(tx);
    int64_t prev = neighbour_id(st, &c, -1), next = neighbour_id(st, &c, +1);
    if (prev) cJSON_AddNumberToObject(o, "prev", (double)prev);
    else cJSON_AddNullToObject(o, "prev");
    if (next) cJSON_AddNumberToObject(o, "next", (double)next);
    else cJSON_AddNullToObject(o, "next");
    out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    *http_status = out ? 200 : 500;
    if (!out) snprintf(err, errlen, "out of memory");
done:
    idx_chunk_release(&c);
    idx_doc_release(&d);
    search_handle_give(s, h);
    return out;
}

/* Contract: see serve.h. */
char *app_embed_json(app_server *s, const app_embed_req *r, int *http_status, char *err, size_t errlen) {
    if (!s->model || !s->n_embed) { *http_status = 400; snprintf(err, errlen, "embeddings need a local model (-m)"); return NULL; }
    int dim = llm_n_embd(s->model);
    size_t total_tokens = 0;
    for (size_t i = 0; i < r->n; i++) {
        size_t n = 0;
        int32_t tmp[1];
        int st = llm_tokenize(s->model, r->inputs[i], strlen(r->inputs[i]), true, false, tmp, 0, &n);
        if (st != LLM_OK && st != LLM_ERR_ARG) { *http_status = 400; snprintf(err, errlen, "input[%zu] cannot be tokenized", i); return NULL; }
        if (n > (size_t)s->embed_ctx) {
            *http_status = 400;
            snprintf(err, errlen, "input[%zu] has %zu tokens; at most %d are embedded", i, n, s->embed_ctx);
            return NULL;
        }
        total_tokens += n;
    }
    app_embed_handle *h = NULL;
    double deadline = app_now_s() + s->o.timeout_s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        for (int i = 0; i < s->n_embed && !h; i++)
            if (!s->embed[i].busy) h = &s->embed[i];
        if (h || app_now_s() >= deadline) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->embed_cv, &s->mu, &ts);
    }
    if (h) h->busy = true;
    pthread_mutex_unlock(&s->mu);
    if (!h) { *http_status = 504; snprintf(err, errlen, "no embedding context became free in time"); return NULL; }
    char *out = NULL;
    float *v = malloc((size_t)dim * sizeof *v);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    *http_status = 500;
    for (size_t i = 0; v && i < r->n; i++) {
        if (app_now_s() >= deadline) {
            *http_status = 504;
            snprintf(err, errlen, "the request took longer than %d s (--timeout) and was stopped", s->o.timeout_s);
            goto done;
        }
        if (rag_engine_embed_one(h->engine, r->inputs[i], strlen(r->inputs[i]), v, dim) != RAG_OK) {
            snprintf(err, errlen, "embedding input[%zu] failed: %s", i, rag_engine_errmsg(h->engine));
            goto done;
        }
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "object", "embedding");
        cJSON_AddNumberToObject(e, "index", (double)i);
        if (r->base64) {
            /* the bytes of the float32 vector, little-endian, in base64 */
            static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            size_t nb = (size_t)dim * 4;
            char *t = malloc((nb + 2) / 3 * 4 + 1);
            if (!t) { snprintf(err, errlen, "out of memory"); goto done; }
            const unsigned char *b = (const unsigned char *)v;    /* x86-64: little-endian */
            size_t k = 0;
            for (size_t q = 0; q < nb; q += 3) {
                unsigned x = (unsigned)b[q] << 16 | (q + 1 < nb ? (unsigned)b[q + 1] << 8 : 0) | (q + 2 < nb ? b[q + 2] : 0);
                t[k++] = b64[x >> 18 & 63];
                t[k++] = b64[x >> 12 & 63];
                t[k++] = q + 1 < nb ? b64[x >> 6 & 63] : '=';
                t[k++] = q + 2 < nb ? b64[x & 63] : '=';
            }
            t[k] = 0;
            cJSON_AddStringToObject(e, "embedding", t);
            free(t);
        } else {
            cJSON *a = cJSON_AddArrayToObject(e, "embedding");
            for (int d = 0; d < dim; d++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[d]));
        }
        cJSON_AddItemToArray(data, e);
    }
    cJSON_AddStringToObject(o, "model", s->model_name);
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)total_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", (double)total_tokens);
    if (v) out = cJSON_PrintUnformatted(o);
    if (out) *http_status = 200;
    else snprintf(err, errlen, "out of memory");
done:
    cJSON_Delete(o);
    free(v);
    pthread_mutex_lock(&s->mu);
    h->busy = false;
    pthread_cond_signal(&s->embed_cv);
    pthread_mutex_unlock(&s->mu);
    return out;
}
