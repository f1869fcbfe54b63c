/* answer.c — the query pipeline: input guard, retrieval, context guard
 * (quarantine), relevance gate, prompt within budget, streamed generation
 * through the output guard, cited sources and events. */
#include "rag/rag.h"

#include "index/index.h"
#include "llm/llm.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rag_answerer {
    rag_answer_params p;
    rag_retriever *ret;
    llm_context *ctx;           /* created at the first generation */
    int32_t *toks;              /* prompt tokens, grown as needed */
    size_t toks_cap;
    int n_generations;
    /* the caller's access groups (rag_answerer_set_groups) */
    bool all_groups;            /* true: no filter (the default) */
    char **groups;              /* owned */
    size_t n_groups;
    idx_filter filter;          /* points into groups */
    char err[1024];
};

rag_answer_params rag_answer_default_params(void) {
    rag_answer_params p;
    memset(&p, 0, sizeof p);
    p.layer = -1;
    p.k = 5;
    p.max_tokens = 512;
    p.temperature = 0.0f;
    p.seed = 42;
    p.min_overlap = 1;
    return p;
}

const char *rag_answer_status_str(rag_answer_status s) {
    switch (s) {
    case RAG_ANS_ANSWERED: return "answered";
    case RAG_ANS_NO_SOURCES: return "no_sources";
    case RAG_ANS_BLOCKED: return "blocked";
    case RAG_ANS_CANCELLED: return "cancelled";
    }
    return "?";
}

static void set_err(rag_answerer *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(rag_answerer *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err, sizeof a->err, fmt, ap);
    va_end(ap);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Token counter over the whole prompt: control tokens parsed as the model
 * will see them. user is the const llm_model *. */
static int count_prompt_tokens(void *user, const char *text, size_t len) {
    int32_t tmp[1];
    size_t n = 0;
    int st = llm_tokenize((const llm_model *)user, text, len, false, true, tmp, 0, &n);
    if (st != LLM_OK && st != LLM_ERR_ARG) return -1;
    return n > (size_t)0x7fffffff ? -1 : (int)n;
}

/* Contract: see rag.h. */
int rag_answerer_new(const rag_answer_params *p, rag_answerer **out, char *err, size_t errlen) {
    int rc = RAG_OK;
    rag_answerer *a = NULL;
    *out = NULL;
    if (!p || !p->store || !p->guard || (!p->model && (!p->count || !p->generate)) || p->k < 1 || p->k > 1000 ||
        p->max_tokens < 1) {
        snprintf(err, errlen, "answer: bad parameters (store, guard, and a model or count+generate are required)");
        return RAG_ERR_ARG;
    }
    if (!(a = calloc(1, sizeof *a))) { snprintf(err, errlen, "answer: out of memory"); return RAG_ERR_NOMEM; }
    a->p = *p;
    a->all_groups = true;
    if (a->p.n_ctx <= 0) {
        a->p.n_ctx = 4096;
        if (p->model) {
            llm_model_info mi;
            llm_model_get_info(p->model, &mi);
            if (mi.n_ctx_train > 0 && mi.n_ctx_train < a->p.n_ctx) a->p.n_ctx = mi.n_ctx_train;
        }
    }
    if (a->p.max_tokens >= a->p.n_ctx) {
        snprintf(err, errlen, "answer: the answer budget (%d tokens) leaves no room for a prompt in a context of %d",
                 a->p.max_tokens, a->p.n_ctx);
        rc = RAG_ERR_ARG;
        goto done;
    }
    if (!a->p.count) { a->p.count = count_prompt_tokens; a->p.count_user = p->model; }
    rag_retriever_params rp = rag_retriever_default_params();
    rp.model = p->model;
    rp.layer = p->layer;
    rp.n_threads = p->n_threads;
    rp.embed = p->embed;
    rp.embed_user = p->embed_user;
    rp.embed_dim = p->embed_dim;
    rc = rag_retriever_new(p->store, &rp, &a->ret, err, errlen);
done:
    if (rc != RAG_OK) { rag_answerer_free(a); a = NULL; }
    *out = a;
    return rc;
}

static int oom_err(rag_answerer *a) {
    set_err(a, "answer: out of memory");
    return RAG_ERR_NOMEM;
}

static void free_groups(rag_answerer *a) {
    for (size_t i = 0; i < a->n_groups; i++) free(a->groups[i]);
    free(a->groups);
    a->groups = NULL;
    a->n_groups = 0;
    memset(&a->filter, 0, sizeof a->filter);
}

/* Contract: see rag.h. On failure the answerer sees public documents only
 * (never more than before). */
int rag_answerer_set_groups(rag_answerer *a, const char *const *groups, size_t n, bool all) {
    if (!a) return RAG_ERR_ARG;
    free_groups(a);
    a->all_groups = false;
    if (all) { a->all_groups = true; return RAG_OK; }
    if (n > 64 || (n && !groups)) { set_err(a, "answer: bad group list"); return RAG_ERR_ARG; }
    if (n && !(a->groups = calloc(n, sizeof *a->groups))) return oom_err(a);
    for (size_t i = 0; i < n; i++) {
        if (!groups[i]) { free_groups(a); set_err(a, "answer: group %zu is NULL", i); return RAG_ERR_ARG; }
        if (!(a->groups[i] = strdup(groups[i]))) { free_groups(a); return oom_err(a); }
        a->n_groups++;
    }
    a->filter.groups = (const char *const *)a->groups;
    a->filter.n_groups = a->n_groups;
    return RAG_OK;
}

int rag_answerer_set_k(rag_answerer *a, int k) {
    if (!a || k < 1 || k > 1000) return RAG_ERR_ARG;
    a->p.k = k;
    return RAG_OK;
}

void rag_answerer_free(rag_answerer *a) {
    if (!a) return;
    free_groups(a);
    rag_retriever_free(a->ret);
    llm_context_free(a->ctx);
    free(a->toks);
    free(a);
}

const char *rag_answerer_errmsg(const rag_answerer *a) { return a ? a->err : "out of memory"; }
int rag_answerer_generations(const rag_answerer *a) { return a ? a->n_generations : 0; }

void rag_answer_release(rag_answer *res) {
    if (!res) return;
    for (size_t i = 0; i < res->n_sources; i++) {
        free(res->sources[i].uri);
        free(res->sources[i].label);
        free(res->sources[i].heading);
        free(res->sources[i].text);
    }
    free(res->sources);
    free(res->cited);
    free(res->events);
    free(res->answer);
    free(res->question);
    free(res->prompt);
    memset(res, 0, sizeof *res);
}

/* Appends the events of a guard result to res (stage and passage given). */
static int add_events(rag_answer *res, const rag_guard_result *g, rag_guard_stage st, int64_t chunk_id) {
    if (!g->n_events) return RAG_OK;
    rag_answer_event *e = realloc(res->events, (res->n_events + g->n_events) * sizeof *e);
    if (!e) return RAG_ERR_NOMEM;
    res->events = e;
    for (size_t i = 0; i < g->n_events; i++) {
        rag_answer_event *d = &e[res->n_events++];
        d->stage = st;
        d->kind = g->events[i].kind;
        d->action = g->events[i].action;
        d->rule_id = g->events[i].rule_id;
        d->message = g->events[i].message;
        d->chunk_id = chunk_id;
        d->start = g->events[i].start;
        d->end = g->events[i].end;
    }
    return RAG_OK;
}

static int set_answer(rag_answer *res, const char *text) {
    free(res->answer);
    res->answer_len = strlen(text);
    res->answer = strdup(text);
    return res->answer ? RAG_OK : RAG_ERR_NOMEM;
}

/* "dir/file.md:3-9", "dir/file.pdf#page=2": the last two parts of uri; a
 * web page (wiki) is labelled by its title. */
static char *make_label(const char *uri, const char *title, int l0, int l1, int page) {
    const char *s = uri, *last = NULL, *prev = NULL;
    for (const char *q = uri; *q; q++)
        if (*q == '/') { prev = last; last = q; }
    if (prev) s = prev + 1;
    else if (last && last == uri) s = uri + 1;
    if (title && *title && (strncmp(uri, "http://", 7) == 0 || strncmp(uri, "https://", 8) == 0)) s = title;
    char tail[64] = "";
    if (page > 0) snprintf(tail, sizeof tail, "#page=%d", page);
    else if (l0 > 0 && l1 > l0) snprintf(tail, sizeof tail, ":%d-%d", l0, l1);
    else if (l0 > 0) snprintf(tail, sizeof tail, ":%d", l0);
    size_t n = strlen(s) + strlen(tail) + 1;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%s%s", s, tail);
    return out;
}

/* ---------------------------------------------------------------- streaming */
typedef struct {
    rag_answer *res;
    rag_guard_stream *gs;
    rag_emit_fn emit;
    void *emit_user;
    size_t cap;
    int pieces;                 /* raw pieces received (a generator's "tokens") */
    bool blocked, stopped, oom;
} stream_state;

static void st_append(stream_state *s, const char *t, size_t n) {
    rag_answer *r = s->res;
    if (!n || s->oom) return;
    if (r->answer_len + n + 1 > s->cap) {
        size_t c = s->cap ? s->cap * 2 : 4096;
        while (c < r->answer_len + n + 1) c *= 2;
        char *q = realloc(r->answer, c);
        if (!q) { s->oom = true; return; }
        r->answer = q;
        s->cap = c;
    }
    memcpy(r->answer + r->answer_len, t, n);
    r->answer_len += n;
    r->answer[r->answer_len] = 0;
    if (s->emit && s->emit(s->emit_user, t, n)) s->stopped = true;
}

/* Raw model text in: through the output guard, then to the answer and the sink. */
static int on_piece(void *user, const char *text, size_t len) {
    stream_state *s = user;
    const char *o = NULL;
    size_t ol = 0;
    s->pieces++;
    int st = rag_guard_stream_feed(s->gs, text, len, &o, &ol);
    if (st == RAG_ERR_BLOCKED) { s->blocked = true; return 1; }
    if (st != RAG_OK) { s->oom = true; return 1; }
    st_append(s, o, ol);
    return s->stopped || s->oom;
}

/* Runs the model on the prompt. */
static int run_model(rag_answerer *a, const char *prompt, size_t plen, stream_state *ss, volatile int *cancel,
                     rag_answer *res) {
    const llm_model *m = a->p.model;
    size_t n = 0;
    int st = llm_tokenize(m, prompt, plen, false, true, a->toks, a->toks_cap, &n);
    if (st == LLM_ERR_ARG && n > a->toks_cap) {
        int32_t *t = realloc(a->toks, n * sizeof *t);
        if (!t) { set_err(a, "answer: out of memory"); return RAG_ERR_NOMEM; }
        a->toks = t;
        a->toks_cap = n;
        st = llm_tokenize(m, prompt, plen, false, true, a->toks, a->toks_cap, &n);
    }
    if (st != LLM_OK) { set_err(a, "answer: tokenizing the prompt failed: %s", llm_status_str(st)); return RAG_ERR_ARG; }
    if (!a->ctx) {
        llm_context_params cp = llm_context_default_params();
        cp.n_ctx = a->p.n_ctx;
        cp.n_threads = a->p.n_threads;
        char e[512];
        if (llm_context_new(m, &cp, &a->ctx, e, sizeof e) != LLM_OK) {
            set_err(a, "answer: %s", e);
            return RAG_ERR_NOMEM;
        }
    }
    llm_context_reset(a->ctx);
    llm_generate_params gp = llm_generate_default_params();
    gp.n_predict = a->p.max_tokens;
    gp.sampling.temperature = a->p.temperature;
    gp.sampling.seed = a->p.seed;
    gp.on_text = on_piece;
    gp.user = ss;
    gp.cancel = cancel;
    /* a model that starts another turn has finished its answer */
    static const char *const stops[] = {"[INST]", "[/INST]", "</s>"};
    gp.stop = stops;
    gp.n_stop = 3;
    llm_generate_result gr;
    a->n_generations++;
    st = llm_generate(a->ctx, a->toks, (int)n, &gp, &gr);
    res->prompt_tokens = gr.n_prompt;
    res->prefill_ms = gr.prefill_ms;
    res->decode_ms = gr.decode_ms;
    res->n_generated = gr.n_generated;
    if (st != LLM_OK && st != LLM_ERR_CANCELLED) {
        set_err(a, "answer: generation failed: %s", llm_context_error(a->ctx));
        return RAG_ERR_ARG;
    }
    return RAG_OK;
}

static int oom(rag_answerer *a) {
    set_err(a, "answer: out of memory");
    return RAG_ERR_NOMEM;
}

/* The previous question folded into the search query (chat follow-ups). */
static char *search_query(const char *q, const rag_turn *h, size_t nh) {
    const char *prev = nh && h[nh - 1].question ? h[nh - 1].question : "";
    size_t n = strlen(prev) + strlen(q) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s", prev, *prev ? " " : "", q);
    return s;
}

/* Contract: see rag.h. */
int rag_answerer_ask(rag_answerer *a, const char *question, const rag_turn *history, size_t n_history,
                     rag_emit_fn emit, void *emit_user, volatile int *cancel, rag_answer *res) {
    int rc = RAG_OK;
    rag_guard_result gr;
    bool have_gr = false;
    char *q = NULL, *sq = NULL;
    rag_hit *hits = NULL;
    rag_guard_stream *gs = NULL;
    rag_prompt pr;
    memset(&pr, 0, sizeof pr);
    memset(res, 0, sizeof *res);
    res->prompt_tokens = -1;
    if (!a || !question || (n_history && !history)) return RAG_ERR_ARG;
    a->err[0] = 0;
    size_t ql = strlen(question);

    /* 1. input guard: block, or go on with the redacted question */
    if ((rc = rag_guard_check(a->p.guard, RAG_GUARD_INPUT, question, ql, 0, &gr)) != RAG_OK) {
        set_err(a, "answer: input guard failed");
        goto done;
    }
    have_gr = true;
    if ((rc = add_events(res, &gr, RAG_GUARD_INPUT, 0)) != RAG_OK) { rc = oom(a); goto done; }
    if (gr.action == RAG_GUARD_BLOCK) {
        res->status = RAG_ANS_BLOCKED;
        res->block_stage = RAG_GUARD_INPUT;
        res->block_message = gr.message;
        rc = set_answer(res, gr.message ? gr.message : "blocked by a guardrail");
        goto done;
    }
    if (!(q = strdup(gr.text ? gr.text : question))) { rc = oom(a); goto done; }
    rag_guard_result_release(&gr);
    have_gr = false;
    if (!(res->question = strdup(q))) { rc = oom(a); goto done; }

    /* 2. retrieval (hybrid with a model, else BM25) */
    if (!(sq = search_query(q, history, n_history))) { rc = oom(a); goto done; }
    if (!(hits = calloc((size_t)a->p.k, sizeof *hits))) { rc = oom(a); goto done; }
    int nh = 0;
    double t0 = now_ms();
    rag_search_mode mode = a->p.model || a->p.embed ? RAG_SEARCH_HYBRID : RAG_SEARCH_BM25;
    if ((rc = rag_retrieve(a->ret, sq, strlen(sq), mode, a->p.k, a->all_groups ? NULL : &a->filter, hits, &nh)) != RAG_OK) {
        set_err(a, "answer: retrieval: %s", rag_retriever_errmsg(a->ret));
        goto done;
    }
    res->retrieve_ms = now_ms() - t0;
    res->n_retrieved = (size_t)nh;
    if (nh > 0 && !(res->sources = calloc((size_t)nh, sizeof *res->sources))) { rc = oom(a); goto done; }

    /* 3. context guard per passage, 4. relevance gate */
    for (int i = 0; i < nh; i++) {
        idx_chunk c;
        idx_doc d;
        memset(&c, 0, sizeof c);
        memset(&d, 0, sizeof d);
        if (idx_chunk_get(a->p.store, hits[i].chunk_id, &c, &d) != IDX_OK) {
            set_err(a, "answer: reading passage %lld: %s", (long long)hits[i].chunk_id, idx_errmsg(a->p.store));
            rc = RAG_ERR_IO;
            goto done;
        }
        int st = rag_guard_check(a->p.guard, RAG_GUARD_CONTEXT, c.text ? c.text : "", c.text_len, 0, &gr);
        if (st != RAG_OK) { idx_chunk_release(&c); idx_doc_release(&d); rc = st; set_err(a, "answer: context guard failed"); goto done; }
        have_gr = true;
        if (add_events(res, &gr, RAG_GUARD_CONTEXT, hits[i].chunk_id) != RAG_OK) { idx_chunk_release(&c); idx_doc_release(&d); { rc = oom(a); goto done; } }
        bool keep = true;
        if (gr.action == RAG_GUARD_BLOCK) { res->n_quarantined++; keep = false; }
        else if (a->p.min_overlap > 0 &&
                 rag_answer_overlap(sq, gr.text, gr.text_len) < a->p.min_overlap) {
            /* the gate looks at the heading too: it is part of what was indexed */
            bool head = c.heading && rag_answer_overlap(sq, c.heading, strlen(c.heading)) >= a->p.min_overlap;
            if (!head) { res->n_below_threshold++; keep = false; }
        }
        if (keep) {
            rag_source *s = &res->sources[res->n_sources];
            memset(s, 0, sizeof *s);
            s->number = (int)res->n_sources + 1;
            s->chunk_id = hits[i].chunk_id;
            s->uri = strdup(d.uri ? d.uri : "");
            s->label = make_label(d.uri ? d.uri : "", d.title, c.line_start, c.line_end, c.page);
            s->heading = strdup(c.heading ? c.heading : "");
            s->text = gr.text;          /* take the redacted copy */
            s->text_len = gr.text_len;
            gr.text = NULL;
            s->line_start = c.line_start;
            s->line_end = c.line_end;
            s->page = c.page;
            s->score = hits[i].score;
            s->dense_rank = hits[i].dense_rank;
            s->bm25_rank = hits[i].bm25_rank;
            s->warned = gr.quarantined;
            res->n_sources++;
            if (!s->uri || !s->label || !s->heading) { idx_chunk_release(&c); idx_doc_release(&d); { rc = oom(a); goto done; } }
        }
        rag_guard_result_release(&gr);
        have_gr = false;
        idx_chunk_release(&c);
        idx_doc_release(&d);
    }
    if (res->n_sources == 0) {
        res->status = RAG_ANS_NO_SOURCES;
        if ((rc = set_answer(res, rag_no_sources_message(q))) != RAG_OK) { rc = oom(a); goto done; }
        if (emit) emit(emit_user, res->answer, res->answer_len);
        goto done;
    }

    /* 5. the prompt within n_ctx - max_tokens */
    rag_prompt_input pi;
    memset(&pi, 0, sizeof pi);
    pi.preamble = a->p.preamble;
    pi.sources = res->sources;
    pi.n_sources = res->n_sources;
    pi.history = history;
    pi.n_history = n_history;
    pi.question = q;
    pi.budget_tokens = a->p.n_ctx - a->p.max_tokens;
    pi.count = a->p.count;
    pi.count_user = a->p.count_user;
    if ((rc = rag_prompt_build(&pi, &pr, a->err, sizeof a->err)) != RAG_OK) goto done;
    /* sources that did not fit are not "provided" */
    while (res->n_sources > pr.n_sources_used) {
        rag_source *s = &res->sources[--res->n_sources];
        free(s->uri); free(s->label); free(s->heading); free(s->text);
    }
    if (pr.trimmed && res->n_sources) {
        res->sources[res->n_sources - 1].trimmed = true;
        res->sources[res->n_sources - 1].text_len = pr.trimmed_len;
        res->sources[res->n_sources - 1].text[pr.trimmed_len] = 0;
    }
    res->prompt_tokens = pr.n_tokens;

    /* 6. generation through the output guard */
    if ((rc = rag_guard_stream_new(a->p.guard, RAG_GUARD_OUTPUT, (int)res->n_sources, &gs)) != RAG_OK) { rc = oom(a); goto done; }
    stream_state ss = {.res = res, .gs = gs, .emit = emit, .emit_user = emit_user};
    if (a->p.generate) {
        a->n_generations++;
        double g0 = now_ms();
        rc = a->p.generate(a->p.generate_user, pr.prompt, pr.prompt_len, a->p.max_tokens, on_piece, &ss, cancel);
        res->decode_ms = now_ms() - g0;
        res->n_generated = ss.pieces;   /* streamed pieces: tokens for a token-by-token stream */
        if (rc != RAG_OK) {
            const char *ge = a->p.generate_errmsg ? a->p.generate_errmsg(a->p.generate_user) : NULL;
            if (ge && *ge) set_err(a, "answer: %s", ge);
            else set_err(a, "answer: the generator failed (%d)", rc);
            goto done;
        }
    } else if ((rc = run_model(a, pr.prompt, pr.prompt_len, &ss, cancel, res)) != RAG_OK) {
        goto done;
    }
    if (!ss.blocked && !ss.oom) {
        const char *o = NULL;
        size_t ol = 0;
        int st = rag_guard_stream_finish(gs, &o, &ol);
        if (st == RAG_ERR_BLOCKED) ss.blocked = true;
        else if (st == RAG_OK) { bool was = ss.stopped; st_append(&ss, o, ol); ss.stopped = was; }
    }
    if (ss.oom) { rc = oom(a); goto done; }
    const rag_guard_result *og = rag_guard_stream_result(gs);
    if (og && add_events(res, og, RAG_GUARD_OUTPUT, 0) != RAG_OK) { rc = oom(a); goto done; }
    if (!res->answer && set_answer(res, "") != RAG_OK) { rc = oom(a); goto done; }
    if (ss.blocked) {
        res->status = RAG_ANS_BLOCKED;
        res->block_stage = RAG_GUARD_OUTPUT;
        res->block_message = og ? og->message : NULL;
    } else if (ss.stopped || (cancel && *cancel)) {
        res->status = RAG_ANS_CANCELLED;
    } else {
        res->status = RAG_ANS_ANSWERED;
    }
    if (!(res->cited = calloc(res->n_sources, sizeof *res->cited))) { rc = oom(a); goto done; }
    res->n_cited = rag_answer_citations(res->answer, res->answer_len, (int)res->n_sources, res->cited, res->n_sources);
    res->prompt = pr.prompt;
    pr.prompt = NULL;
    rc = RAG_OK;
done:
    if (have_gr) rag_guard_result_release(&gr);
    rag_guard_stream_free(gs);
    rag_prompt_release(&pr);
    free(hits);
    free(sq);
    free(q);
    return rc;
}
