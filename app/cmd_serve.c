/* cmd_serve.c — `mrag serve`: the HTTP service (OpenAI-compatible chat and
 * embeddings, /api/ask, /api/search, the web page, health and metrics) over
 * one shared model; options, start-up, signals and graceful shutdown. */
#include "app/app.h"
#include "app/serve.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *serve_usage =
    "usage: mrag serve [options]\n"
    "\n"
    "Serves the index over HTTP: POST /v1/chat/completions (OpenAI-compatible,\n"
    "SSE streaming, retrieval on by default), POST /v1/embeddings, GET /v1/models,\n"
    "POST /api/ask, GET /api/search, GET /api/passage (one passage, by the\n"
    "caller's access), GET /api/collections, the web page at / (answers with\n"
    "their sources' passages, follow-up questions, Markdown export), GET /healthz\n"
    "and GET /metrics. See docs/serve.md.\n"
    "\n"
    "  --index [NAME=]DIR     index folder (default $MRAG_INDEX, else ./.mrag); repeat\n"
    "                         as --index hr=DIR --index it=DIR2 to serve collections\n"
    "                         (names of a-z 0-9 _ -; a plain DIR is \"default\");\n"
    "                         requests pick them (docs/serve.md, Collections)\n"
    "  -m FILE                model (default $MRAG_MODEL, else the ingest's model)\n"
    "  --lora FILE[:S]        apply a LoRA adapter (llama.cpp GGUF; scale S, default 1;\n"
    "                         repeatable); query embeddings too: the index must be\n"
    "                         built with the same --lora\n"
    "  --listen HOST:PORT     address (default 127.0.0.1:8080; port 0 = any free\n"
    "                         port, printed on stderr)\n"
    "  --keys FILE            API keys: `KEY NAME GROUPS` lines (docs/serve.md);\n"
    "                         without it only loopback addresses are allowed and\n"
    "                         callers see public documents only\n"
    "  --rules DIR            extra guardrail rules (repeatable)\n"
    "  --quarantine M         drop | keep (as `mrag ask`)\n"
    "  --guard-llm            the model judges a question or passage sentence that\n"
    "                         the injection detector is unsure of (as `mrag ask`;\n"
    "                         each judgement is a short generation in the request's\n"
    "                         slot; \"judged\" and \"judge_ms\" in the timings)\n"
    "  --preamble FILE        prompt preamble (default built in)\n"
    "  --max-body BYTES       request body limit (default 1048576)\n"
    "  --max-prompt-tokens N  question (or plain-chat conversation) tokens accepted\n"
    "                         (default: what the context holds, --ctx - --max-tokens)\n"
    "  --max-tokens N         answer budget; requests may ask for less (default 512)\n"
    "  --ctx N                generation context per slot (default min(model's, 4096))\n"
    "  --slots N              concurrent generations (default 1)\n"
    "  --queue N              requests waiting for a slot; beyond: 503 (default 8)\n"
    "  --search-handles N     concurrent /api/search requests (default 2)\n"
    "  --embed-slots N        concurrent /v1/embeddings requests (default 1)\n"
    "  --timeout S            per request, queueing included (default 120)\n"
    "  --grace S              on SIGTERM/SIGINT: running answers get S seconds (default 10)\n"
    "  --threads N            engine threads per slot (default: all cores)\n"
    "  -k N                   default passages per question (default 5)\n"
    "  --allowed-host NAME    answer requests for this Host name too (repeatable);\n"
    "                         loopback names (localhost, 127.0.0.1, ::1) always are;\n"
    "                         without --keys no other name is (DNS rebinding), with\n"
    "                         --keys and no --allowed-host every name is\n"
    "  --head-timeout S       a request head must arrive within S seconds (default 10)\n"
    "  --max-connections N    open connections (default 256)\n"
    "  --max-connections-per-ip N  per client address, 0 = no cap (default 32;\n"
    "                         behind a proxy on this machine, raise it)\n"
    "  --extractive           answer every question with the quoted evidence (the\n"
    "                         sentences that answer it, with citations) and never\n"
    "                         run the model; a request can ask for it alone with\n"
    "                         \"extractive\": true (/api/ask) or mrag.extractive\n"
    "  --debug-prompts        responses include the prompt given to the model (tests)\n"
    "\n"
    "Gateway mode (docs/remote.md): generation on an OpenAI-compatible server.\n"
    "  --llm-url BASE         e.g. http://gpu-host:8000/v1 (vLLM, TGI, another mrag serve)\n"
    "  --llm-key-file F       its API key (first line of F)\n"
    "  --llm-model NAME       its model id (default: the first of BASE/models)\n"
    "  --llm-embeddings       query embeddings from it too (without -m; the index must\n"
    "                         have been built with the same model)\n"
    "With -m as well, retrieval, token counts and /v1/embeddings stay local.\n";

/* Splits HOST:PORT ("[v6]:PORT" for IPv6; "localhost" = 127.0.0.1). */
static bool parse_listen(const char *s, char *host, size_t hl, int *port) {
    const char *colon = strrchr(s, ':');
    if (!colon) return false;
    long p;
    if (!app_parse_long(colon + 1, 0, 65535, &p)) return false;
    size_t n = (size_t)(colon - s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') { s++; n -= 2; }
    if (n == 0 || n >= hl) return false;
    memcpy(host, s, n);
    host[n] = 0;
    if (strcmp(host, "localhost") == 0) snprintf(host, hl, "127.0.0.1");
    *port = (int)p;
    return true;
}

static bool is_loopback(const char *host) {
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
}

/* Cancels every running and waiting job. */
static void cancel_all(app_server *s) {
    pthread_mutex_lock(&s->mu);
    app_job *queued[1024];
    size_t nq = 0;
    for (size_t i = 0; i < s->fifo_n && nq < 1024; i++) {
        app_job *j = s->fifo[(s->fifo_head + i) % s->fifo_cap];
        j->refs++;
        queued[nq++] = j;
    }
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].job) s->slots[i].job->cancel = 1;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < nq; i++) {
        app_job_cancel(s, queued[i], false);
        app_job_unref(queued[i]);
    }
}

/* Generations running or waiting. */
static int busy(app_server *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->active + (int)s->fifo_n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Requests not yet completed (their response still being sent). */
static int inflight(app_server *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->inflight;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* The defaults of app_serve_opts. */
static void serve_default_opts(app_serve_opts *o) {
    o->listen = "127.0.0.1:8080";
    o->max_body = 1u << 20;
    o->max_prompt_tokens = 0;       /* = the context less the answer budget */
    o->max_tokens = 512;
    o->slots = 1;
    o->queue = 8;
    o->search_handles = 2;
    o->embed_slots = 1;
    o->timeout_s = 120;
    o->grace_s = 10;
    o->k = 5;
    o->head_timeout_s = 10;
    o->max_conns = 256;
    o->max_conns_per_addr = 32;
}

enum { O_DEBUG_PROMPTS = 256, O_LLM_EMBEDDINGS, O_INDEX, O_LISTEN, O_KEYS, O_PREAMBLE, O_LLM_URL, O_LLM_KEY_FILE,
       O_LLM_MODEL, O_ALLOWED_HOST, O_RULES, O_QUARANTINE, O_MAX_BODY, O_MAX_PROMPT_TOKENS, O_MAX_TOKENS, O_CTX,
       O_SLOTS, O_QUEUE, O_SEARCH_HANDLES, O_EMBED_SLOTS, O_TIMEOUT, O_GRACE, O_THREADS, O_HEAD_TIMEOUT,
       O_MAX_CONNS, O_MAX_CONNS_PER_IP, O_EXTRACTIVE, O_LORA, O_GUARD_LLM };
static const app_opt serve_opts[] = {
    {"index", 0, "DIR", O_INDEX},
    {"model", 'm', "FILE", 'm'},
    {"listen", 0, "HOST:PORT", O_LISTEN},
    {"keys", 0, "FILE", O_KEYS},
    {"allowed-host", 0, "NAME", O_ALLOWED_HOST},
    {NULL, 'k', "N", 'k'},
    {"max-tokens", 0, "N", O_MAX_TOKENS},
    {"max-prompt-tokens", 0, "N", O_MAX_PROMPT_TOKENS},
    {"max-body", 0, "BYTES", O_MAX_BODY},
    {"ctx", 0, "N", O_CTX},
    {"slots", 0, "N", O_SLOTS},
    {"queue", 0, "N", O_QUEUE},
    {"search-handles", 0, "N", O_SEARCH_HANDLES},
    {"embed-slots", 0, "N", O_EMBED_SLOTS},
    {"timeout", 0, "S", O_TIMEOUT},
    {"head-timeout", 0, "S", O_HEAD_TIMEOUT},
    {"grace", 0, "S", O_GRACE},
    {"max-connections", 0, "N", O_MAX_CONNS},
    {"max-connections-per-ip", 0, "N", O_MAX_CONNS_PER_IP},
    {"threads", 0, "N", O_THREADS},
    {"rules", 0, "DIR", O_RULES},
    {"quarantine", 0, "drop|keep", O_QUARANTINE},
    {"preamble", 0, "FILE", O_PREAMBLE},
    {"llm-url", 0, "URL", O_LLM_URL},
    {"llm-key-file", 0, "FILE", O_LLM_KEY_FILE},
    {"llm-model", 0, "NAME", O_LLM_MODEL},
    {"llm-embeddings", 0, NULL, O_LLM_EMBEDDINGS},
    {"debug-prompts", 0, NULL, O_DEBUG_PROMPTS},
    {"extractive", 0, NULL, O_EXTRACTIVE},
    {"guard-llm", 0, NULL, O_GUARD_LLM},
    {"lora", 0, "FILE[:SCALE]", O_LORA},
    {0},
};
const app_opt *const app_serve_opts_tables[] = {serve_opts, NULL};

/* The command line into o; prints the usage error and returns false on a
 * bad option or value (exit 2). */
static bool serve_parse_opts(app_serve_opts *o, int argc, char **argv) {
    app_args ap;
    app_args_init(&ap, "serve", app_serve_opts_tables, argc, argv);
    const char *v;
    int id;
    long n = 0;
    while ((id = app_args_next(&ap, &v)) > 0) {
        bool ok = true;
        switch (id) {
        case O_DEBUG_PROMPTS: o->debug_prompts = true; break;
        case O_EXTRACTIVE: o->extractive = true; break;
        case O_GUARD_LLM: o->guard_llm = true; break;
        case O_LORA: ok = app_lora_add(&o->lora, "serve", (char *)v) == 0; break;
        case O_LLM_EMBEDDINGS: o->llm_embeddings = true; break;
        case O_INDEX:
            if (o->n_indexes >= APP_MAX_COLLECTIONS) ok = app_opt_bad(&ap, v, "at most 32 --index (collections)");
            else o->indexes[o->n_indexes++] = o->index = v;
            break;
        case 'm': o->model = v; break;
        case O_LISTEN: o->listen = v; break;
        case O_KEYS: o->keys_file = v; break;
        case O_PREAMBLE: o->preamble = v; break;
        case O_LLM_URL: o->llm_url = v; break;
        case O_LLM_KEY_FILE: o->llm_key_file = v; break;
        case O_LLM_MODEL: o->llm_model = v; break;
        case O_ALLOWED_HOST:
            if (o->n_allowed_hosts >= sizeof o->allowed_hosts / sizeof o->allowed_hosts[0])
                ok = app_opt_bad(&ap, v, "too many --allowed-host");
            else if (!*v || strlen(v) >= 256) ok = app_opt_bad(&ap, v, "a host name of 1 to 255 bytes");
            else o->allowed_hosts[o->n_allowed_hosts++] = v;
            break;
        case O_RULES:
            if (o->n_rules >= sizeof o->rules / sizeof o->rules[0]) ok = app_opt_bad(&ap, v, "too many --rules");
            else o->rules[o->n_rules++] = v;
            break;
        case O_QUARANTINE: {
            int c = app_opt_choice(&ap, v);
            ok = c >= 0;
            o->keep_quarantined = c == 1;
            break;
        }
        case O_MAX_BODY: if ((ok = app_opt_long(&ap, v, 1024, 1L << 30, &n))) o->max_body = (size_t)n; break;
        case O_MAX_PROMPT_TOKENS: ok = app_opt_int(&ap, v, 1, 1 << 20, &o->max_prompt_tokens); break;
        case O_MAX_TOKENS: ok = app_opt_int(&ap, v, 1, 1 << 20, &o->max_tokens); break;
        case O_CTX: ok = app_opt_int(&ap, v, 64, 1 << 20, &o->n_ctx); break;
        case O_SLOTS: ok = app_opt_int(&ap, v, 1, 64, &o->slots); break;
        case O_QUEUE: ok = app_opt_int(&ap, v, 0, 4096, &o->queue); break;
        case O_SEARCH_HANDLES: ok = app_opt_int(&ap, v, 1, 64, &o->search_handles); break;
        case O_EMBED_SLOTS: ok = app_opt_int(&ap, v, 1, 64, &o->embed_slots); break;
        case O_TIMEOUT: ok = app_opt_int(&ap, v, 1, 86400, &o->timeout_s); break;
        case O_GRACE: ok = app_opt_int(&ap, v, 0, 3600, &o->grace_s); break;
        case O_THREADS: ok = app_opt_int(&ap, v, 1, 256, &o->threads); break;
        case 'k': ok = app_opt_int(&ap, v, 1, 100, &o->k); break;
        case O_HEAD_TIMEOUT: ok = app_opt_int(&ap, v, 1, 3600, &o->head_timeout_s); break;
        case O_MAX_CONNS: ok = app_opt_int(&ap, v, 4, 4096, &o->max_conns); break;
        case O_MAX_CONNS_PER_IP: ok = app_opt_int(&ap, v, 0, 4096, &o->max_conns_per_addr); break;
        }
        if (!ok) return false;
    }
    if (id < 0) return false;
    if (ap.npos > 0) {
        app_usage_error(&ap, "unexpected argument '%s'", argv[1]);
        return false;
    }
    return true;
}

/* The collections of the --index options (NAME=DIR, or DIR = "default";
 * none: the default index as "default"), each index opened for its counts;
 * every index must hold embeddings of one model (the same fingerprint as
 * the first): the query is embedded once for all. Prints the problem
 * (naming the collection) and returns false on failure. */
static bool serve_open_collections(app_server *s) {
    app_serve_opts *o = &s->o;
    size_t n = o->n_indexes ? o->n_indexes : 1;
    for (size_t i = 0; i < n; i++) {
        app_collection *c = &s->coll[i];
        const char *v = o->n_indexes ? o->indexes[i] : NULL;
        const char *eq = v ? strchr(v, '=') : NULL;
        if (eq && app_collection_name_ok(v, (size_t)(eq - v))) {
            if (!eq[1]) { app_error("serve: --index %s: the folder is missing (NAME=DIR)", v); return false; }
            snprintf(c->name, sizeof c->name, "%.*s", (int)(eq - v), v);
            c->dir = eq + 1;
        } else {
            if (eq && eq > v && !strchr(v, '/'))
                fprintf(stderr, "mrag: warning: --index %s: '%.*s' is not a collection name (a-z 0-9 _ -, at most %d): "
                                "taken as a folder named %s\n", v, (int)(eq - v), v, APP_COLLECTION_NAME_MAX, v);
            snprintf(c->name, sizeof c->name, "default");
            c->dir = app_index_path(v);
        }
        for (int j = 0; j < s->n_coll; j++)
            if (strcmp(s->coll[j].name, c->name) == 0) {
                app_error("serve: the collection '%s' is given twice (--index NAME=DIR, one NAME each)", c->name);
                return false;
            }
        s->n_coll++;
        char who[64];
        snprintf(who, sizeof who, "collection '%s'", c->name);
        if (!(c->stat_store = app_open_index(c->dir, n > 1 ? who : NULL))) return false;
        c->docs = c->chunks = -1;
    }
    idx_fingerprint f0;
    int first = -1;
    for (int i = 0; i < s->n_coll; i++) {
        idx_fingerprint f;
        if (idx_fingerprint_get(s->coll[i].stat_store, &f) != IDX_OK) continue;     /* no vectors yet */
        if (first < 0) { f0 = f; first = i; continue; }
        if (strcmp(f.model_sha256, f0.model_sha256) != 0 || f.layer != f0.layer || f.dim != f0.dim ||
            strcmp(f.pooling, f0.pooling) != 0) {
            app_error("serve: collection '%s' (%s) was embedded by another model than collection '%s' (%s): model "
                      "%.12s layer %d dim %d vs %.12s layer %d dim %d. One server embeds questions with one model: "
                      "re-ingest it with that model (`mrag ingest --reindex -m MODEL`) or serve it separately",
                      s->coll[i].name, s->coll[i].dir, s->coll[first].name, s->coll[first].dir, f.model_sha256, f.layer,
                      f.dim, f0.model_sha256, f0.layer, f0.dim);
            return false;
        }
    }
    return true;
}

/* Opens what the server shares between requests: keys, the index (for
 * counts and the embedding layer), the model, the context sizes, the
 * guardrails with their audit log, the preamble. *recorded: the model path
 * the index recorded, when used (owned). Prints the problem and returns
 * false on failure. */
static bool serve_open(app_server *s, const char *host, char **recorded) {
    app_serve_opts *o = &s->o;
    char err[1024];
    if (o->keys_file) {
        if (app_serve_keys_load(o->keys_file, &s->keys, err, sizeof err) != 0) { app_error("%s", err); return false; }
        s->have_keys = true;
        const char *w = app_serve_keys_warning(&s->keys);
        if (w) fprintf(stderr, "mrag: warning: the keys file %s %s\n", o->keys_file, w);
        if (s->keys.n == 0)
            fprintf(stderr, "mrag: warning: the keys file %s holds no keys: every request that needs one gets 401 "
                            "until keys are added and the server gets SIGHUP\n", o->keys_file);
    } else if (!is_loopback(host)) {
        app_error("serve: without --keys the server only listens on loopback (127.0.0.1 or ::1), not %s", host);
        return false;
    }
    if (!serve_open_collections(s)) return false;
    for (size_t i = 0; s->have_keys && i < s->keys.n; i++)
        for (size_t j = 0; j < s->keys.keys[i].n_collections; j++) {
            const char *cn = s->keys.keys[i].collections[j];
            int f = -1;
            for (int c = 0; c < s->n_coll && f < 0; c++)
                if (strcmp(s->coll[c].name, cn) == 0) f = c;
            if (f < 0)
                fprintf(stderr, "mrag: warning: the key '%s' names the collection '%s', which this server does not serve\n",
                        s->keys.keys[i].name, cn);
        }
    s->index_dir = s->coll[0].dir;
    s->stat_store = s->coll[0].stat_store;
    idx_fingerprint fp;
    s->layer = idx_fingerprint_get(s->stat_store, &fp) == IDX_OK ? fp.layer : -1;
    const char *mpath = app_model_path(o->model);
    /* the ingest's model, unless the query embeddings come from the remote server */
    if (!mpath && !o->llm_embeddings && (*recorded = app_recorded_model(s->stat_store))) mpath = *recorded;
    if (!mpath && !o->llm_url) {
        app_error("serve needs a model: -m FILE or MRAG_MODEL (or a remote engine: --llm-url)");
        return false;
    }
    if (o->llm_embeddings && !o->llm_url) { app_error("serve: --llm-embeddings needs --llm-url"); return false; }
    app_warn_if_readable(o->llm_key_file, "the key file ");
    if (mpath) {
        llm_model_params mp = llm_model_default_params();
        app_lora_model_params(&o->lora, &mp);
        if (llm_model_load(mpath, &mp, &s->model, err, sizeof err) != LLM_OK) { app_error("%s", err); return false; }
        llm_model_get_info(s->model, &s->mi);
        /* what /v1/models reports as the model: base + LoRA adapters, as an
         * index fingerprint records it (the file's sha256 without adapters),
         * so that remote ingestion and query embeddings compare like with like */
        if (llm_model_fingerprint(s->model, s->model_sha) != LLM_OK) s->model_sha[0] = 0;
        const char *base = strrchr(mpath, '/');
        snprintf(s->model_name, sizeof s->model_name, "%s", base ? base + 1 : mpath);
        size_t bl = strlen(s->model_name);
        if (bl > 5 && strcmp(s->model_name + bl - 5, ".gguf") == 0) s->model_name[bl - 5] = 0;
    }
    s->can_dense = s->model || o->llm_embeddings;
    s->n_ctx = o->n_ctx > 0 ? o->n_ctx : (s->mi.n_ctx_train > 0 && s->mi.n_ctx_train < 4096 ? s->mi.n_ctx_train : 4096);
    s->embed_ctx = s->mi.n_ctx_train > 0 && s->mi.n_ctx_train < 2048 ? s->mi.n_ctx_train : 2048;
    if (o->max_tokens >= s->n_ctx) {
        app_error("serve: --max-tokens %d leaves no room for a prompt in a context of %d", o->max_tokens, s->n_ctx);
        return false;
    }
    if (o->max_prompt_tokens <= 0 || o->max_prompt_tokens > s->n_ctx - o->max_tokens)
        o->max_prompt_tokens = s->n_ctx - o->max_tokens;
    rag_guard_params gp = rag_guard_default_params();
    gp.rule_dirs = o->rules;
    gp.n_rule_dirs = o->n_rules;
    gp.quarantine = o->keep_quarantined ? RAG_GUARD_QUARANTINE_KEEP : RAG_GUARD_QUARANTINE_DROP;
    if (app_guard_load(&gp, &s->guard, err, sizeof err) != RAG_OK) { app_error("guardrails: %s", err); return false; }
    app_guard_warnings(s->guard);
    char audit[4096];
    snprintf(audit, sizeof audit, "%s/audit.jsonl", s->index_dir);
    if (!(s->audit = fopen(audit, "a")))
        fprintf(stderr, "mrag: warning: cannot write the audit log %s: %s\n", audit, strerror(errno));
    if (o->preamble && !(s->preamble = app_read_file(o->preamble, 1u << 20, NULL))) {
        app_error("cannot read the preamble file %s", o->preamble);
        return false;
    }
    if (!o->preamble && getenv("MRAG_PREAMBLE") && *getenv("MRAG_PREAMBLE")) {
        if (!(s->preamble = app_read_file(getenv("MRAG_PREAMBLE"), 1u << 20, NULL))) { app_error("cannot read $MRAG_PREAMBLE"); return false; }
    }
    return true;
}

/* Serves until SIGINT or SIGTERM (SIGHUP reloads the keys), then lets the
 * running answers finish for --grace seconds. 0, or 1 when it could not
 * start. */
static int serve_run(app_server *s, const char *host, int port) {
    app_serve_opts *o = &s->o;
    char err[1024];
    int rc = 1;
    /* signals are taken by this thread only (sigtimedwait below) */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (app_slots_start(s, err, sizeof err) != 0) { app_error("serve: %s", err); goto stop; }
    if (app_http_start(s, host, port, err, sizeof err) != 0) { app_error("serve: %s", err); goto stop; }
    fprintf(stderr, "mrag: listening on http://%s%s%s:%d/ (model %s%s, %d slot%s, queue %d%s)\n",
            strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", app_http_port(s), s->model_name,
            o->llm_url ? " via --llm-url" : "", o->slots,
            o->slots == 1 ? "" : "s", o->queue, s->have_keys ? ", API keys required" : ", no keys: public documents only");
    for (int i = 0; s->n_coll > 1 && i < s->n_coll; i++)
        fprintf(stderr, "mrag: collection %s: %s\n", s->coll[i].name, s->coll[i].dir);
    fflush(stderr);
    for (;;) {
        struct timespec ts = {1, 0};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGHUP) {
            int nk = app_serve_keys_reload(s, err, sizeof err);
            if (nk < 0) {
                pthread_mutex_lock(&s->keys_mu);
                size_t kept = s->keys.n;
                pthread_mutex_unlock(&s->keys_mu);
                fprintf(stderr, "mrag: SIGHUP: keys not reloaded: %s (keeping the %zu key%s in force)\n", err, kept,
                        kept == 1 ? "" : "s");
            } else if (nk == 0) {
                fprintf(stderr, "mrag: SIGHUP: the keys file %s is empty or gone: every key is revoked\n", o->keys_file);
            } else {
                fprintf(stderr, "mrag: SIGHUP: %d key%s loaded from %s\n", nk, nk == 1 ? "" : "s", o->keys_file);
                pthread_mutex_lock(&s->keys_mu);
                const char *w = app_serve_keys_warning(&s->keys);
                pthread_mutex_unlock(&s->keys_mu);
                if (w) fprintf(stderr, "mrag: warning: the keys file %s %s\n", o->keys_file, w);
            }
            fflush(stderr);
            continue;
        }
        if (sig == SIGINT || sig == SIGTERM) {
            fprintf(stderr, "mrag: %s: stopping (running answers get %d s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM", o->grace_s);
            break;
        }
    }
    app_http_quiesce(s);
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_mutex_unlock(&s->mu);
    double until = app_now_s() + o->grace_s;
    while (busy(s) && app_now_s() < until) usleep(50 * 1000);
    if (busy(s)) {
        fprintf(stderr, "mrag: cancelling %d unfinished request%s\n", busy(s), busy(s) == 1 ? "" : "s");
        cancel_all(s);
        until = app_now_s() + 10;
        while (busy(s) && app_now_s() < until) usleep(20 * 1000);
    }
    /* the finished answers still have to reach their clients */
    until = app_now_s() + 5;
    while (inflight(s) && app_now_s() < until) usleep(10 * 1000);
    rc = 0;
stop:
    app_http_stop(s);
    app_slots_stop(s);
    if (rc == 0) fprintf(stderr, "mrag: stopped\n");
    return rc;
}

/* Contract: exit 0 after a clean shutdown, 1 on a start-up error. */
int app_cmd_serve(int argc, char **argv) {
    if (app_wants_help(argc, argv)) { fputs(serve_usage, stdout); return 0; }
    app_server *s = calloc(1, sizeof *s);
    if (!s) return app_error("out of memory");
    serve_default_opts(&s->o);
    int rc = 1;
    char *recorded = NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->keys_mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->search_cv, NULL);
    pthread_cond_init(&s->embed_cv, NULL);
    char host[128];
    int port = 0;
    if (!serve_parse_opts(&s->o, argc, argv)) { rc = 2; goto done; }
    if (!parse_listen(s->o.listen, host, sizeof host, &port)) {
        fprintf(stderr, "mrag serve: --listen: '%s' is not HOST:PORT (e.g. 127.0.0.1:8080) (see `mrag serve --help`)\n",
                s->o.listen);
        rc = 2;
        goto done;
    }
    if (serve_open(s, host, &recorded)) rc = serve_run(s, host, port);
done:
    if (s->audit) fclose(s->audit);
    rag_guard_free(s->guard);
    llm_model_free(s->model);
    for (int i = 0; i < s->n_coll; i++) idx_close(s->coll[i].stat_store);
    app_serve_keys_free(&s->keys);
    for (size_t i = 0; i < s->n_retired_keys; i++) app_serve_keys_free(&s->retired_keys[i]);
    free(s->retired_keys);
    pthread_mutex_destroy(&s->keys_mu);
    free(s->preamble);
    free(recorded);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->search_cv);
    pthread_cond_destroy(&s->embed_cv);
    free(s);
    return rc;
}
