/* cmd_ask.c — `mrag ask`: one question answered from the index, streamed,
 * with the cited sources; also the answering session shared with
 * `mrag chat` (app_asker_*). */
#include "app/app.h"

#include "index/index.h"
#include "llm/llm.h"
#include "rag/rag.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *ask_usage =
    "usage: mrag ask [options] QUESTION...\n"
    "\n"
    "Answers QUESTION from the indexed documents. First the evidence: the 1-3\n"
    "sentences (table rows, list items) of the retrieved passages most likely\n"
    "to answer it, quoted with their citations (path:lines, path#page=N, a\n"
    "page's URL#section), the question's words highlighted on a terminal\n"
    "(NO_COLOR turns colour off). Then the model's answer streams, followed by\n"
    "the sources it cites and the other sources it was given. Guardrails check\n"
    "the question, every retrieved passage, the evidence and the answer\n"
    "(docs/answering.md).\n"
    "\n"
    "Without a model (none given or recorded, no --llm-url), or with a\n"
    "random-weight test model (a GGUF marked mrag.random_weights, as mkmodel\n"
    "writes), the answer is the evidence alone, labelled as quoted sentences\n"
    "(extractive mode; retrieval is BM25 when there is no model).\n"
    "\n"
    "  --index DIR       index folder (default $MRAG_INDEX, else ./.mrag); repeat to\n"
    "                    answer from several (rankings merged by rank fusion;\n"
    "                    sources name their index: NAME=DIR names it NAME)\n"
    "  -m FILE           model (default $MRAG_MODEL, else the model recorded by\n"
    "                    `mrag ingest`)\n"
    "  -k N              passages retrieved (default 5)\n"
    "  --max-tokens N    answer budget in tokens (default 512)\n"
    "  --ctx N           context size (default min(model's, 4096))\n"
    "  --threads N       engine threads (default: all cores)\n"
    "  --temp T          sampling temperature (default 0: greedy)\n"
    "  --extractive      answer with the quoted evidence alone, never the model\n"
    "  --generate        answer with the model even when it is a random-weight\n"
    "                    test model (its text means nothing)\n"
    "  --json            print one JSON object: answer, evidence, sources,\n"
    "                    guardrail events\n"
    "  --stats           print timings to stderr (retrieval, prefill, decode)\n"
    "  --show-prompt     print the exact prompt given to the model to stderr (with\n"
    "                    --json: as the \"prompt\" field)\n"
    "  --rules DIR       extra guardrail rules (repeatable)\n"
    "  --quarantine M    drop | keep: a passage with planted instructions is left\n"
    "                    out (default) or kept with the instruction removed\n"
    "  --guard-llm       the model judges a question or passage sentence that the\n"
    "                    learned injection detector is unsure of (score 0.5 to its\n"
    "                    threshold): \"yes\" blocks it (costs a short generation\n"
    "                    each; --stats shows how many and how long)\n"
    "  --preamble FILE   prompt preamble (default $MRAG_PREAMBLE, else built in);\n"
    "                    a random canary follows it ($MRAG_CANARY fixes it, empty:\n"
    "                    none): an answer that repeats it is blocked\n"
    "  --llm-url BASE    generate on an OpenAI-compatible server (vLLM, TGI,\n"
    "                    Mistral's API, `mrag serve`): BASE ends in /v1. -m is then\n"
    "                    optional (without it: BM25 retrieval, estimated token\n"
    "                    counts; docs/remote.md)\n"
    "  --llm-key-file F  the server's API key (first line of F; sent as a Bearer token)\n"
    "  --llm-model NAME  the model name for the server (default: the first it lists)\n"
    "  --llm-embeddings  embed the question on the server too (checked against the index)\n"
    "  --lora FILE[:S]   apply a LoRA adapter (llama.cpp GGUF format) at scale S\n"
    "                    (default 1); repeatable. It changes the query embeddings\n"
    "                    too: the index must have been built with the same --lora\n"
    "  --groups G,H      answer as a caller in these access groups: documents with\n"
    "                    groups are used only when they share one; '' or public =\n"
    "                    public documents only (default: everything, the index owner)\n"
    "\n"
    "Exit status: 0 answered (also quoted, or \"no relevant documents\"), 2 a guardrail\n"
    "blocked the question or the answer, 1 error, 130 interrupted.\n"
    "Guardrail events are appended to DIR/audit.jsonl.\n";

struct app_asker {
    app_ask_opts o;
    idx_store *store;           /* xs.stores[0] */
    app_index_set xs;           /* every --index */
    llm_model *model;
    rag_guard *guard;
    rag_answerer *ans;
    rag_remote *remote;             /* --llm-url, or NULL */
    rag_engine *engine;             /* its engine (the answerer's own local one otherwise) */
    char *preamble;
    char *recorded;
    rag_answer last;
    bool have_last;
    char **turn_q, **turn_a;        /* the conversation (chat) */
    size_t n_turns;
    volatile int cancel;
    bool extractive;                /* answers quote the evidence */
    bool color;                     /* highlight on stdout (a terminal, no NO_COLOR) */
    bool json;                      /* the current answer is printed as JSON */
    bool evidence_shown;            /* the current answer's evidence was printed */
};

app_ask_opts app_ask_default_opts(void) {
    app_ask_opts o;
    memset(&o, 0, sizeof o);
    o.k = 5;
    o.max_tokens = 512;
    return o;
}

const app_opt app_ask_common_opts[] = {
    {"index", 0, "DIR", APP_ASK_INDEX},
    {"model", 'm', "FILE", APP_ASK_MODEL},
    {NULL, 'k', "N", APP_ASK_K},
    {"max-tokens", 0, "N", APP_ASK_MAX_TOKENS},
    {"ctx", 0, "N", APP_ASK_CTX},
    {"threads", 0, "N", APP_ASK_THREADS},
    {"temp", 0, "T", APP_ASK_TEMP},
    {"rules", 0, "DIR", APP_ASK_RULES},
    {"quarantine", 0, "drop|keep", APP_ASK_QUARANTINE},
    {"preamble", 0, "FILE", APP_ASK_PREAMBLE},
    {"groups", 0, "G,H", APP_ASK_GROUPS},
    {"llm-url", 0, "URL", APP_ASK_LLM_URL},
    {"llm-key-file", 0, "FILE", APP_ASK_LLM_KEY_FILE},
    {"llm-model", 0, "NAME", APP_ASK_LLM_MODEL},
    {"llm-embeddings", 0, NULL, APP_ASK_LLM_EMBEDDINGS},
    {"extractive", 0, NULL, APP_ASK_EXTRACTIVE},
    {"generate", 0, NULL, APP_ASK_GENERATE},
    {"guard-llm", 0, NULL, APP_ASK_GUARD_LLM},
    {"lora", 0, "FILE[:SCALE]", APP_ASK_LORA},
    {0},
};

/* Contract: see app.h. */
int app_ask_apply_opt(app_ask_opts *o, const app_args *ap, int id, const char *v) {
    double t;
    switch (id) {
    case APP_ASK_INDEX:
        if (o->n_indexes >= sizeof o->indexes / sizeof o->indexes[0]) return app_opt_bad(ap, v, "at most 32 --index") ? 1 : -1;
        o->indexes[o->n_indexes++] = o->index = v;
        break;
    case APP_ASK_MODEL: o->model = v; break;
    case APP_ASK_K: return app_opt_int(ap, v, 1, 100, &o->k) ? 1 : -1;
    case APP_ASK_MAX_TOKENS: return app_opt_int(ap, v, 1, 1 << 20, &o->max_tokens) ? 1 : -1;
    case APP_ASK_CTX: return app_opt_int(ap, v, 64, 1 << 20, &o->n_ctx) ? 1 : -1;
    case APP_ASK_THREADS: return app_opt_int(ap, v, 1, 256, &o->threads) ? 1 : -1;
    case APP_ASK_TEMP:
        if (!app_opt_double(ap, v, 0, 10, &t)) return -1;
        o->temp = (float)t;
        break;
    case APP_ASK_RULES:
        if (o->n_rules >= sizeof o->rules / sizeof o->rules[0]) {
            app_usage_error(ap, "too many --rules (at most %zu)", sizeof o->rules / sizeof o->rules[0]);
            return -1;
        }
        o->rules[o->n_rules++] = v;
        break;
    case APP_ASK_QUARANTINE: {
        int c = app_opt_choice(ap, v);
        if (c < 0) return -1;
        o->keep_quarantined = c == 1;
        break;
    }
    case APP_ASK_PREAMBLE: o->preamble = v; break;
    case APP_ASK_GROUPS: o->groups = v; break;
    case APP_ASK_LLM_URL: o->llm_url = v; break;
    case APP_ASK_LLM_KEY_FILE: o->llm_key_file = v; break;
    case APP_ASK_LLM_MODEL: o->llm_model = v; break;
    case APP_ASK_LLM_EMBEDDINGS: o->llm_embeddings = true; break;
    case APP_ASK_EXTRACTIVE: o->extractive = true; break;
    case APP_ASK_GENERATE: o->generate = true; break;
    case APP_ASK_GUARD_LLM: o->guard_llm = true; break;
    case APP_ASK_LORA: return app_lora_add(&o->lora, ap->cmd, (char *)v) == 0 ? 1 : -1;
    default: return 0;
    }
    return 1;
}

/* Contract: see app.h. */
int app_remote_attach(const app_ask_opts *o, idx_store *store, rag_remote **remote, rag_engine **engine,
                      rag_answer_params *p) {
    char err[1024];
    *remote = NULL;
    *engine = NULL;
    app_warn_if_readable(o->llm_key_file, "the key file ");
    rag_remote_params rp = rag_remote_default_params();
    rp.base_url = o->llm_url;
    rp.key_file = o->llm_key_file;
    rp.model = o->llm_model;
    rag_remote *r = NULL;
    if (rag_remote_new(&rp, &r, err, sizeof err) != RAG_OK) return app_error("remote engine: %s", err);
    rag_engine *e = NULL;
    if (rag_engine_remote_new(r, &e) != RAG_OK) {
        rag_remote_free(r);
        return app_error("out of memory");
    }
    p->engine = e;
    if (o->llm_embeddings) {
        int dim = 0;
        if (rag_remote_check_index(r, store, &dim) != RAG_OK) {
            app_error("remote embeddings: %s", rag_remote_errmsg(r));
            rag_engine_free(e);
            rag_remote_free(r);
            return 1;
        }
        p->embed = rag_engine_embed_one;
        p->embed_user = e;
        p->embed_dim = dim;
    }
    *remote = r;
    *engine = e;
    return 0;
}

/* "path:first-last", "path#page=N", "URL#Section" for an evidence unit. */
static void cite_evidence(const rag_evidence *e, char *buf, size_t n) {
    rag_evidence_cite(e, app_display_path(e->uri), buf, n);
}

/* The name of index i when several are searched (sources and evidence say
 * which one they come from), else NULL. */
static const app_index_set *cur_indexes;
static const char *index_name(int i) {
    return cur_indexes && cur_indexes->n > 1 && i >= 0 && (size_t)i < cur_indexes->n ? cur_indexes->names[i] : NULL;
}

/* buf with "[NAME] " in front when index i has a name to show. */
static void tag_index(int i, char *buf, size_t n) {
    const char *nm = index_name(i);
    if (!nm || n < 8) return;
    size_t bl = strlen(buf), nl = strlen(nm) + 3;
    if (bl + nl + 1 > n) bl = n - nl - 1 > 0 ? n - nl - 1 : 0;
    if (nl + 1 > n) return;
    memmove(buf + nl, buf, bl);
    buf[nl + bl] = 0;
    buf[0] = '[';
    memcpy(buf + 1, nm, nl - 3);
    buf[nl - 2] = ']';
    buf[nl - 1] = ' ';
}

/* e's text with its marks in bold yellow when color is set. */
static void print_marked(FILE *f, const rag_evidence *e, bool color) {
    size_t at = 0;
    for (size_t i = 0; color && i < e->n_marks; i++) {
        const rag_span *m = &e->marks[i];
        if (m->start < at || m->end > e->text_len || m->end <= m->start) continue;
        fwrite(e->text + at, 1, m->start - at, f);
        fputs("\033[1;33m", f);
        fwrite(e->text + m->start, 1, m->end - m->start, f);
        fputs("\033[0m", f);
        at = m->end;
    }
    fwrite(e->text + at, 1, e->text_len - at, f);
}

/* The evidence block: a header (the quoted-answer label when the evidence
 * is the answer), then each unit quoted with its citation. */
static void print_evidence(FILE *f, const char *question, const rag_answer *r, bool extractive, bool color) {
    if (!r->n_evidence) return;
    const char *open, *close;
    rag_evidence_quotes(question, &open, &close);
    if (extractive) fprintf(f, "%s%s%s\n", color ? "\033[1m" : "", rag_evidence_label(question), color ? "\033[0m" : "");
    else fprintf(f, "%sEvidence%s (quoted from the documents, before the model's answer):\n", color ? "\033[1m" : "",
                 color ? "\033[0m" : "");
    char c[4200];
    for (size_t i = 0; i < r->n_evidence; i++) {
        const rag_evidence *e = &r->evidence[i];
        cite_evidence(e, c, sizeof c);
        tag_index(e->index, c, sizeof c);
        fprintf(f, "%2zu. %s", i + 1, open);
        print_marked(f, e, color);
        fprintf(f, "%s\n    %s— %s", close, color ? "\033[2m" : "", c);
        if (e->source > 0) fprintf(f, " [%d]", e->source);
        fprintf(f, "%s\n", color ? "\033[0m" : "");
    }
}

/* The answerer's evidence callback: printed at once, before the model runs. */
static void on_evidence(void *user, const rag_answer *r) {
    app_asker *a = user;
    if (a->json || !r->n_evidence) return;
    print_evidence(stdout, r->question ? r->question : "", r, a->extractive, a->color);
    if (!a->extractive) fputs("\nAnswer:\n", stdout);
    fflush(stdout);
    a->evidence_shown = true;
}

/* Contract: see app.h. */
int app_asker_open(const app_ask_opts *o, app_asker **out) {
    int rc = 1;
    char err[1024];
    app_asker *a = calloc(1, sizeof *a);
    *out = NULL;
    if (!a) return app_error("out of memory");
    a->o = *o;
    const char *one = o->index;
    if (app_index_set_open(&a->xs, o->n_indexes ? o->indexes : &one, o->n_indexes ? o->n_indexes : 1, "ask") != 0)
        goto done;
    a->store = a->xs.stores[0];
    cur_indexes = &a->xs;       /* one asker per process: what citations name */
    const char *dir = a->xs.dirs[0];
    const char *mpath = app_model_path(o->model);
    if (!mpath && (a->recorded = app_recorded_model(a->store))) mpath = a->recorded;
    if (o->extractive && o->generate) { app_error("--extractive and --generate exclude each other"); goto done; }
    a->extractive = o->extractive;
    if (!mpath && !o->llm_url) {
        if (o->generate) {
            app_error("answering with a model needs one: -m FILE or MRAG_MODEL (e.g. a Mistral-7B-Instruct GGUF), "
                      "or a server: --llm-url BASE");
            goto done;
        }
        if (!a->extractive)
            fprintf(stderr, "mrag: no model given (-m FILE, MRAG_MODEL or --llm-url): answering with quoted evidence "
                            "from the documents\n");
        a->extractive = true;
    }
    llm_model_params mp = llm_model_default_params();
    app_lora_model_params(&o->lora, &mp);
    if (o->lora.n && !mpath) { app_error("--lora needs the in-process model (-m FILE)"); goto done; }
    if (mpath && llm_model_load(mpath, &mp, &a->model, err, sizeof err) != LLM_OK) { app_error("%s", err); goto done; }
    if (a->model && !o->llm_url && !o->generate && !a->extractive) {
        llm_model_info mi;
        llm_model_get_info(a->model, &mi);
        if (mi.random_weights) {
            fprintf(stderr, "mrag: %s is a random-weight test model (its text means nothing): answering with quoted "
                            "evidence from the documents (--generate runs it anyway)\n", mpath);
            a->extractive = true;
        }
    }
    const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
    a->color = isatty(STDOUT_FILENO) && !(nc && *nc) && !(term && strcmp(term, "dumb") == 0);

    rag_guard_params gp = rag_guard_default_params();
    gp.rule_dirs = o->rules;
    gp.n_rule_dirs = o->n_rules;
    gp.quarantine = o->keep_quarantined ? RAG_GUARD_QUARANTINE_KEEP : RAG_GUARD_QUARANTINE_DROP;
    if (app_guard_load(&gp, &a->guard, err, sizeof err) != RAG_OK) { app_error("guardrails: %s", err); goto done; }
    app_guard_warnings(a->guard);
    char audit[4096];
    snprintf(audit, sizeof audit, "%s/audit.jsonl", dir);
    if (rag_guard_open_audit(a->guard, audit) != RAG_OK)
        fprintf(stderr, "mrag: warning: cannot write the audit log %s: %s\n", audit, rag_guard_errmsg(a->guard));

    const char *pre = o->preamble ? o->preamble : getenv("MRAG_PREAMBLE");
    if (pre && *pre && !(a->preamble = app_read_file(pre, 1u << 20, NULL))) {
        app_error("cannot read the preamble file %s: %s", pre, strerror(errno));
        goto done;
    }
    rag_answer_params p = rag_answer_default_params();
    p.store = a->store;
    p.more_stores = a->xs.stores + 1;
    p.n_more_stores = a->xs.n - 1;
    p.guard = a->guard;
    p.model = a->model;
    idx_fingerprint fp;
    if (idx_fingerprint_get(a->store, &fp) == IDX_OK) p.layer = fp.layer;
    p.k = o->k;
    p.n_threads = o->threads;
    p.n_ctx = o->n_ctx;
    p.max_tokens = o->max_tokens;
    p.temperature = o->temp;
    p.preamble = a->preamble;
    p.extractive = a->extractive;
    p.canary = getenv("MRAG_CANARY");       /* NULL: a random one */
    p.guard_llm = o->guard_llm;
    if (o->llm_url && app_remote_attach(o, a->store, &a->remote, &a->engine, &p) != 0) goto done;
    for (size_t i = 1; o->llm_url && o->llm_embeddings && i < a->xs.n; i++) {
        int dim = 0;
        if (rag_remote_check_index(a->remote, a->xs.stores[i], &dim) != RAG_OK) {
            app_error("remote embeddings: index %s: %s", a->xs.names[i], rag_remote_errmsg(a->remote));
            goto done;
        }
    }
    if (rag_answerer_new(&p, &a->ans, err, sizeof err) != RAG_OK) { app_error("%s", err); goto done; }
    rag_answerer_on_evidence(a->ans, on_evidence, a);
    if (o->groups && strcmp(o->groups, "*") != 0) {
        idx_filter f = {0};
        int grc = rag_groups_parse(o->groups, &f);
        if (grc == RAG_OK) grc = rag_answerer_set_groups(a->ans, f.groups, f.n_groups, false);
        rag_groups_free(&f);
        if (grc != RAG_OK) {
            app_error("bad --groups '%s' (comma-separated names of letters, digits, _ - . @ :)", o->groups);
            goto done;
        }
    }
    rc = 0;
done:
    if (rc) app_asker_close(a);
    else *out = a;
    return rc;
}

void app_asker_reset(app_asker *a) {
    for (size_t i = 0; i < a->n_turns; i++) { free(a->turn_q[i]); free(a->turn_a[i]); }
    free(a->turn_q);
    free(a->turn_a);
    a->turn_q = a->turn_a = NULL;
    a->n_turns = 0;
    if (a->have_last) rag_answer_release(&a->last);
    a->have_last = false;
}

void app_asker_close(app_asker *a) {
    if (!a) return;
    app_asker_reset(a);
    rag_answerer_free(a->ans);
    rag_engine_free(a->engine);
    rag_remote_free(a->remote);
    rag_guard_free(a->guard);
    llm_model_free(a->model);
    if (cur_indexes == &a->xs) cur_indexes = NULL;
    app_index_set_close(&a->xs);
    free(a->preamble);
    free(a->recorded);
    free(a);
}

volatile int *app_asker_cancel_flag(app_asker *a) { return &a->cancel; }
const char *app_asker_last_prompt(const app_asker *a) { return a->have_last ? a->last.prompt : NULL; }
size_t app_asker_turns(const app_asker *a) { return a->n_turns; }

static int emit_stdout(void *user, const char *t, size_t len) {
    (void)user;
    fwrite(t, 1, len, stdout);
    fflush(stdout);
    return 0;
}

/* Contract: see app.h. */
void app_citation(const char *uri, const char *type, int line_start, int line_end, int page, char *buf, size_t n) {
    char tail[64];
    rag_cite_tail(type, page, line_start, line_end, tail, sizeof tail);
    snprintf(buf, n, "%s%s", app_display_path(uri), tail);
}

/* The citation of a source. */
static void cite(const rag_source *s, char *buf, size_t n) {
    snprintf(buf, n, "%s%s", app_display_path(s->uri), s->cite);
}

static bool is_cited(const rag_answer *r, int num) {
    for (size_t i = 0; i < r->n_cited; i++)
        if (r->cited[i] == num) return true;
    return false;
}

void app_asker_print_sources(const app_asker *a, FILE *f) {
    if (!a->have_last || a->last.n_sources == 0) {
        fprintf(f, "(no sources%s)\n", a->have_last ? " were given to the model" : " yet");
        return;
    }
    const rag_answer *r = &a->last;
    char c[4200];
    if (r->n_cited) {
        fprintf(f, "Sources cited:\n");
        for (size_t i = 0; i < r->n_sources; i++)
            if (is_cited(r, r->sources[i].number)) {
                cite(&r->sources[i], c, sizeof c);
                tag_index(r->sources[i].index, c, sizeof c);
                fprintf(f, "  [%d] %s%s\n", r->sources[i].number, app_esc(c), r->sources[i].warned ? "  (instruction removed)" : "");
            }
    }
    if (r->n_cited < r->n_sources) {
        fprintf(f, "%s:\n", r->n_cited ? "Also provided" : "Sources provided (none cited)");
        for (size_t i = 0; i < r->n_sources; i++)
            if (!is_cited(r, r->sources[i].number)) {
                cite(&r->sources[i], c, sizeof c);
                tag_index(r->sources[i].index, c, sizeof c);
                fprintf(f, "  [%d] %s%s\n", r->sources[i].number, app_esc(c), r->sources[i].warned ? "  (instruction removed)" : "");
            }
    }
}

static void print_stats(const rag_answer *r) {
    double tps = r->decode_ms > 0 ? r->n_generated * 1000.0 / r->decode_ms : 0;
    fprintf(stderr, "mrag: retrieval %.1f ms, prompt %d tokens (%d reused, %d new), prefill %.1f ms, decode %d tokens "
            "in %.1f ms (%.1f tok/s)\n",
            r->retrieve_ms, r->prompt_tokens, r->reused_tokens,
            r->prompt_tokens > r->reused_tokens ? r->prompt_tokens - r->reused_tokens : 0, r->prefill_ms,
            r->n_generated, r->decode_ms, tps);
    if (r->n_judged)
        fprintf(stderr, "mrag: guard-llm: %d text%s judged (%d injection%s) in %.1f ms\n", r->n_judged,
                r->n_judged == 1 ? "" : "s", r->n_judged_injection, r->n_judged_injection == 1 ? "" : "s", r->judge_ms);
    char cos[64], gate[64];
    if (r->best_cos >= -1.0f && r->best_cos > -1.0f) snprintf(cos, sizeof cos, "%.3f", r->best_cos);
    else snprintf(cos, sizeof cos, "none (no dense search)");
    if (isinf(r->gate_cos)) snprintf(gate, sizeof gate, "off: dense not trusted on this index");
    else snprintf(gate, sizeof gate, "%.3f", r->gate_cos);
    fprintf(stderr, "mrag: relevance gate: %zu retrieved, %zu dropped (no shared content word and not similar enough), "
            "%zu kept by meaning alone, %zu quarantined; best word overlap %d, best dense similarity %s, "
            "similarity needed %s\n", r->n_retrieved, r->n_below_threshold, r->n_by_meaning, r->n_quarantined,
            r->best_overlap, cos, gate);
}

static cJSON *answer_json(const char *question, const rag_answer *r, bool with_prompt) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    char c[4200];
    cJSON_AddStringToObject(o, "question", question);
    cJSON_AddStringToObject(o, "status", rag_answer_status_str(r->status));
    cJSON_AddStringToObject(o, "answer", r->answer ? r->answer : "");
    cJSON_AddBoolToObject(o, "extractive", r->status == RAG_ANS_EXTRACTED);
    if (r->status == RAG_ANS_BLOCKED) {
        cJSON_AddStringToObject(o, "blocked_stage", rag_guard_stage_name(r->block_stage));
        cJSON_AddStringToObject(o, "blocked_message", r->block_message ? r->block_message : "");
    }
    cJSON *evi = cJSON_AddArrayToObject(o, "evidence");
    for (size_t i = 0; evi && i < r->n_evidence; i++) {
        const rag_evidence *e = &r->evidence[i];
        cJSON *x = cJSON_CreateObject();
        if (!x) continue;
        cite_evidence(e, c, sizeof c);
        app_evidence_json(x, e, c);
        if (index_name(e->index)) cJSON_AddStringToObject(x, "index", index_name(e->index));
        cJSON_AddStringToObject(x, "path", app_display_path(e->uri));
        cJSON_AddNumberToObject(x, "line_start", e->line_start);
        cJSON_AddNumberToObject(x, "line_end", e->line_end);
        cJSON_AddNumberToObject(x, "page", e->page);
        cJSON_AddNumberToObject(x, "chunk_id", (double)e->chunk_id);
        cJSON_AddItemToArray(evi, x);
    }
    cJSON *cited = cJSON_AddArrayToObject(o, "cited");
    for (size_t i = 0; cited && i < r->n_cited; i++) cJSON_AddItemToArray(cited, cJSON_CreateNumber(r->cited[i]));
    cJSON *src = cJSON_AddArrayToObject(o, "sources");
    for (size_t i = 0; src && i < r->n_sources; i++) {
        const rag_source *s = &r->sources[i];
        cJSON *e = cJSON_CreateObject();
        if (!e) continue;
        cite(s, c, sizeof c);
        cJSON_AddNumberToObject(e, "number", s->number);
        if (index_name(s->index)) cJSON_AddStringToObject(e, "index", index_name(s->index));
        cJSON_AddBoolToObject(e, "cited", is_cited(r, s->number));
        cJSON_AddStringToObject(e, "path", app_display_path(s->uri));
        cJSON_AddStringToObject(e, "citation", c);
        cJSON_AddNumberToObject(e, "line_start", s->line_start);
        cJSON_AddNumberToObject(e, "line_end", s->line_end);
        cJSON_AddNumberToObject(e, "page", s->page);
        cJSON_AddStringToObject(e, "heading", s->heading ? s->heading : "");
        cJSON_AddNumberToObject(e, "score", s->score);
        cJSON_AddNumberToObject(e, "chunk_id", (double)s->chunk_id);
        cJSON_AddBoolToObject(e, "instruction_removed", s->warned);
        cJSON_AddBoolToObject(e, "trimmed", s->trimmed);
        cJSON_AddItemToArray(src, e);
    }
    cJSON *ev = cJSON_AddArrayToObject(o, "guardrail_events");
    for (size_t i = 0; ev && i < r->n_events; i++) {
        const rag_answer_event *g = &r->events[i];
        cJSON *e = cJSON_CreateObject();
        if (!e) continue;
        cJSON_AddStringToObject(e, "stage", rag_guard_stage_name(g->stage));
        cJSON_AddStringToObject(e, "rule", g->rule_id ? g->rule_id : "");
        cJSON_AddStringToObject(e, "action", rag_guard_action_name(g->action));
        cJSON_AddStringToObject(e, "kind", g->kind == RAG_GUARD_EV_LIMIT ? "limit" : "match");
        cJSON_AddStringToObject(e, "message", g->message ? g->message : "");
        if (g->chunk_id) cJSON_AddNumberToObject(e, "chunk_id", (double)g->chunk_id);
        cJSON_AddItemToArray(ev, e);
    }
    cJSON_AddNumberToObject(o, "passages_retrieved", (double)r->n_retrieved);
    cJSON_AddNumberToObject(o, "passages_quarantined", (double)r->n_quarantined);
    cJSON_AddNumberToObject(o, "passages_below_threshold", (double)r->n_below_threshold);
    cJSON_AddNumberToObject(o, "passages_by_meaning", (double)r->n_by_meaning);
    cJSON *t = cJSON_AddObjectToObject(o, "timing");
    if (t) {
        cJSON_AddNumberToObject(t, "retrieve_ms", r->retrieve_ms);
        cJSON_AddNumberToObject(t, "evidence_ms", r->evidence_ms);
        cJSON_AddNumberToObject(t, "prompt_tokens", r->prompt_tokens);
        cJSON_AddNumberToObject(t, "reused_tokens", r->reused_tokens);
        cJSON_AddNumberToObject(t, "prefill_ms", r->prefill_ms);
        cJSON_AddNumberToObject(t, "decode_ms", r->decode_ms);
        cJSON_AddNumberToObject(t, "generated_tokens", r->n_generated);
        cJSON_AddNumberToObject(t, "judged", r->n_judged);
        cJSON_AddNumberToObject(t, "judged_injections", r->n_judged_injection);
        cJSON_AddNumberToObject(t, "judge_ms", r->judge_ms);
    }
    if (with_prompt) {
        if (r->prompt) cJSON_AddStringToObject(o, "prompt", r->prompt);
        else cJSON_AddNullToObject(o, "prompt");
    }
    return o;
}

/* Contract: see app.h. */
int app_asker_ask(app_asker *a, const char *question, bool conversation, bool json, bool stats) {
    rag_turn *turns = NULL;
    size_t nt = conversation ? a->n_turns : 0;
    if (nt && !(turns = calloc(nt, sizeof *turns))) return app_error("out of memory");
    for (size_t i = 0; i < nt; i++) { turns[i].question = a->turn_q[i]; turns[i].answer = a->turn_a[i]; }
    if (a->have_last) rag_answer_release(&a->last);
    a->have_last = false;
    a->cancel = 0;
    rag_answer *r = &a->last;
    a->json = json;
    a->evidence_shown = false;
    /* extractive: the evidence block printed by on_evidence is the answer
     * (the same units, guarded, as the answer text) */
    rag_emit_fn emit = json || a->extractive ? NULL : emit_stdout;
    int st = rag_answerer_ask(a->ans, question, turns, nt, emit, NULL, &a->cancel, r);
    free(turns);
    if (st != RAG_OK) {
        /* an embedding failure on the server: its message says why */
        const char *re = a->remote ? rag_remote_errmsg(a->remote) : "";
        if (*re && !strstr(rag_answerer_errmsg(a->ans), re)) return app_error("%s (%s)", rag_answerer_errmsg(a->ans), re);
        return app_error("%s", rag_answerer_errmsg(a->ans));
    }
    a->have_last = true;
    int rc = 0;
    if (json) {
        cJSON *o = answer_json(question, r, a->o.show_prompt);
        char *s = o ? cJSON_Print(o) : NULL;
        cJSON_Delete(o);
        if (!s) return app_error("out of memory");
        puts(s);
        free(s);
    } else {
        if (r->status == RAG_ANS_BLOCKED && r->block_stage == RAG_GUARD_INPUT) {
            /* the message was not streamed: the question never went further */
        } else if (a->extractive && r->status != RAG_ANS_EXTRACTED) {
            /* nothing to quote (a refusal), or the output guard stopped it */
            if (r->answer_len) printf("%s\n", r->answer);
        } else if (a->extractive) {
            /* printed by on_evidence */
        } else {
            if (r->answer_len && r->answer[r->answer_len - 1] != '\n') putchar('\n');
            if (r->status == RAG_ANS_CANCELLED) printf("[stopped]\n");
        }
        fflush(stdout);     /* the notes below go to stderr: keep the order */
        if (r->n_quarantined)
            fprintf(stderr, "mrag: note: %zu retrieved passage%s left out: %s instructions aimed at the assistant\n",
                    r->n_quarantined, r->n_quarantined == 1 ? " was" : "s were", r->n_quarantined == 1 ? "it contains" : "they contain");
        for (size_t i = 0; i < r->n_sources; i++)
            if (r->sources[i].warned)
                fprintf(stderr, "mrag: warning: source [%d] contained instructions aimed at the assistant; they were removed\n",
                        r->sources[i].number);
        if (r->status == RAG_ANS_BLOCKED)
            fprintf(stderr, "mrag: blocked (%s): %s\n", rag_guard_stage_name(r->block_stage),
                    r->block_message ? r->block_message : "a guardrail rule fired");
        if (r->n_sources) {
            putchar('\n');
            app_asker_print_sources(a, stdout);
        }
        fflush(stdout);
    }
    if (stats) {
        print_stats(r);
        char syn[1200];
        app_synonyms_describe(a->store, syn, sizeof syn);
        fprintf(stderr, "mrag: %s\n", syn);
    }
    if (r->status == RAG_ANS_BLOCKED) rc = 2;
    else if (r->status == RAG_ANS_CANCELLED) rc = 130;
    if (conversation && r->status == RAG_ANS_ANSWERED) {
        char **q = realloc(a->turn_q, (a->n_turns + 1) * sizeof *q);
        if (q) a->turn_q = q;
        char **an = q ? realloc(a->turn_a, (a->n_turns + 1) * sizeof *an) : NULL;
        if (an) a->turn_a = an;
        if (q && an) {
            a->turn_q[a->n_turns] = strdup(r->question ? r->question : question);   /* PII redacted */
            a->turn_a[a->n_turns] = strdup(r->answer ? r->answer : "");
            if (a->turn_q[a->n_turns] && a->turn_a[a->n_turns]) a->n_turns++;
            else { free(a->turn_q[a->n_turns]); free(a->turn_a[a->n_turns]); }
        }
    }
    return rc;
}

static app_asker *sig_asker;

static void on_sigint(int sig) {
    (void)sig;
    if (sig_asker) sig_asker->cancel = 1;
}

enum { O_JSON = 512, O_STATS, O_SHOW_PROMPT };
static const app_opt ask_own_opts[] = {
    {"json", 0, NULL, O_JSON},
    {"stats", 0, NULL, O_STATS},
    {"show-prompt", 0, NULL, O_SHOW_PROMPT},
    {0},
};
const app_opt *const app_ask_opts_tables[] = {app_ask_common_opts, ask_own_opts, NULL};

/* Contract: exit status as in the usage text. */
int app_cmd_ask(int argc, char **argv) {
    if (app_wants_help(argc, argv)) { fputs(ask_usage, stdout); return 0; }
    app_ask_opts o = app_ask_default_opts();
    bool json = false, stats = false, show_prompt = false;
    app_args ap;
    app_args_init(&ap, "ask", app_ask_opts_tables, argc, argv);
    const char *v;
    int id;
    while ((id = app_args_next(&ap, &v)) > 0) {
        if (id == O_JSON) json = true;
        else if (id == O_STATS) stats = true;
        else if (id == O_SHOW_PROMPT) show_prompt = o.show_prompt = true;
        else if (app_ask_apply_opt(&o, &ap, id, v) < 0) return 2;
    }
    if (id < 0) return 2;
    if (o.extractive && o.generate) return app_usage_error(&ap, "--extractive and --generate exclude each other");
    if (ap.npos == 0) return app_usage_error(&ap, "no QUESTION");
    int first = 1;
    argc = ap.npos + 1;
    char *q = app_join_args(argc - first, argv + first);
    if (!q) return app_error("out of memory");
    app_asker *a = NULL;
    int rc = app_asker_open(&o, &a);
    if (rc == 0) {
        sig_asker = a;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigint;
        sigaction(SIGINT, &sa, NULL);
        rc = app_asker_ask(a, q, false, json, stats);
        if (show_prompt && !json && rc != 1) {
            const char *p = app_asker_last_prompt(a);
            fprintf(stderr, "--- prompt ---\n%s\n--- end of prompt ---\n", p ? p : "(none: the model did not run)");
        }
        signal(SIGINT, SIG_DFL);
        sig_asker = NULL;
    }
    app_asker_close(a);
    free(q);
    return rc;
}
