/* cmd_wiki.c — `mrag ingest-wiki`: sync a MediaWiki into the index (the
 * work is rag_wiki_sync; this file parses flags and prints progress and the
 * summary). */
#include "app/app.h"

#include "index/index.h"
#include "llm/llm.h"
#include "rag/rag.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *wiki_usage =
    "usage: mrag ingest-wiki URL [options]\n"
    "\n"
    "Mirrors a MediaWiki into the index: every page of the chosen namespaces,\n"
    "stored under its URL with its title and revision id. URL is the wiki's\n"
    "api.php (https://wiki.example.org/w/api.php); a URL not ending in api.php\n"
    "gets /api.php appended. Runs are incremental: only pages edited, created,\n"
    "moved or deleted since the last sync are fetched (recentchanges and\n"
    "logevents); the first run, --full, changed namespaces or access rules, or\n"
    "a sync point older than the wiki's change history do a full sync, which\n"
    "also removes pages that are gone. A run that dies half-way leaves a\n"
    "consistent index; the next run finishes the work.\n"
    "\n"
    "  --index DIR          index folder (default $MRAG_INDEX, else ./.mrag)\n"
    "  -m FILE              the model (default $MRAG_MODEL)\n"
    "  --lora FILE[:S]      embed with a LoRA adapter (scale S, default 1; repeatable;\n"
    "                       recorded in the index fingerprint)\n"
    "  --namespace N        a namespace number to sync (repeatable; default 0)\n"
    "  --user U             bot password user name (\"Name@app\", Special:BotPasswords)\n"
    "  --password-file F    file whose first line is the bot password\n"
    "  --ca-file F          verify the wiki against the CAs in F (a private CA) instead of\n"
    "                       the system's; TLS is always verified\n"
    "  --access FILE        access rules: namespace/category/prefix -> groups (docs/access.md);\n"
    "                       without it pages keep their groups and new pages are public\n"
    "  --full               enumerate every page and remove what is gone\n"
    "  --rate R             at most R requests per second (default 10; 0 = no limit),\n"
    "                       shared by the page fetches in flight\n"
    "  --fetch-parallel N   pages fetched at once while the sync stores the current one\n"
    "                       (default 4, at most 16; 1 = one after another)\n"
    "  --timeout S          seconds per request (default 60)\n"
    "  --retries N          tries per request on timeouts, 5xx and maxlag (default 5)\n"
    "  --max-response-mb N  largest API answer (default 32)\n"
    "  --threads N          engine threads (default: all cores)\n"
    "  --chunk-tokens N     tokens per chunk (default 256)\n"
    "  --max-pages N        stop after N page writes (testing; the sync point stays)\n"
    "  --llm-url BASE --llm-embeddings\n"
    "                       embed through an OpenAI-compatible server's BASE/embeddings\n"
    "                       (vLLM, llama-server, mrag serve) instead of a local model;\n"
    "                       -m then only counts tokens (without it: an estimate)\n"
    "  --llm-key-file F     the embedding server's API key (first line of F)\n"
    "  --llm-model NAME     the model to ask for (default: the first it lists)\n"
    "  --embed-batch N      chunks per request to the server (default 16)\n"
    "  --embed-parallel N   requests in flight for one page's chunks (default 4)\n"
    "  -q, --quiet          only the summary\n"
    "\n"
    "Exit status: 0 when the run completed (even with failed pages, which are\n"
    "retried next run), 1 on errors (unreachable wiki, wrong password, read\n"
    "denied), 2 on usage errors, 130 when interrupted.\n";

static volatile int g_cancel;
static void on_signal(int sig) {
    (void)sig;
    g_cancel = 1;
}

typedef struct {
    bool quiet;
    double last_line;       /* elapsed_s of the last "progress:" line */
} wiki_ui;

/* Prints each page that changed (failures on stderr), and every 10 s a
 * "progress:" line so that a long sync of unchanged pages shows life. */
static void on_progress(void *user, const rag_ingest_event *ev) {
    wiki_ui *u = user;
    if (ev->kind == RAG_ING_EV_FILE_DONE && !u->quiet && ev->elapsed_s - u->last_line >= 10) {
        u->last_line = ev->elapsed_s;
        printf("progress: %zu page%s checked, %llu chunk%s written, %.1f pages/s\n", ev->files_done,
               ev->files_done == 1 ? "" : "s", (unsigned long long)ev->chunks_done, ev->chunks_done == 1 ? "" : "s", ev->elapsed_s > 0 ? (double)ev->files_done / ev->elapsed_s : 0.0);
        fflush(stdout);
    }
    if (ev->kind != RAG_ING_EV_FILE_DONE || ev->outcome == RAG_ING_UNCHANGED) return;
    if (u->quiet && ev->outcome != RAG_ING_FAILED) return;
    const char *o = ev->outcome == RAG_ING_RENAMED ? "moved" : rag_ingest_outcome_str(ev->outcome);
    if (ev->outcome == RAG_ING_FAILED) {
        fprintf(stderr, "failed    %s: %s\n", app_esc(ev->path ? ev->path : ""), app_esc(ev->reason ? ev->reason : ""));
        return;
    }
    printf("%-9s %s", o, app_esc(ev->path ? ev->path : ""));
    if (ev->outcome == RAG_ING_ADDED || ev->outcome == RAG_ING_UPDATED || ev->outcome == RAG_ING_RENAMED)
        printf(" (%d chunk%s)", ev->n_chunks, ev->n_chunks == 1 ? "" : "s");
    if (ev->reason) printf(": %s", app_esc(ev->reason));
    putchar('\n');
    fflush(stdout);
}

/* Reads the first line of a password file into an owned string. */
static char *read_password(const char *path) {
    size_t len = 0;
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char buf[1024];
    char *line = fgets(buf, sizeof buf, f);
    fclose(f);
    if (!line) return NULL;
    len = strcspn(buf, "\r\n");
    buf[len] = 0;
    char *pw = strdup(buf);
    memset(buf, 0, sizeof buf);
    return pw;
}

/* Contract: one sync of the wiki at argv's URL into the index; exit codes
 * as in wiki_usage. */
enum { O_INDEX = 256, O_USER, O_PASSWORD_FILE, O_CA_FILE, O_ACCESS, O_FULL, O_NAMESPACE, O_RATE, O_TIMEOUT,
       O_RETRIES, O_MAX_RESPONSE_MB, O_MAX_PAGES, O_THREADS, O_CHUNK_TOKENS, O_LORA, O_FETCH_PARALLEL };
static const app_opt ingest_wiki_opts[] = {
    {"index", 0, "DIR", O_INDEX},
    {"model", 'm', "FILE", 'm'},
    {"namespace", 0, "N", O_NAMESPACE},
    {"user", 0, "NAME", O_USER},
    {"password-file", 0, "FILE", O_PASSWORD_FILE},
    {"ca-file", 0, "FILE", O_CA_FILE},
    {"access", 0, "FILE", O_ACCESS},
    {"full", 0, NULL, O_FULL},
    {"quiet", 'q', NULL, 'q'},
    {"rate", 0, "R", O_RATE},
    {"timeout", 0, "S", O_TIMEOUT},
    {"retries", 0, "N", O_RETRIES},
    {"max-response-mb", 0, "N", O_MAX_RESPONSE_MB},
    {"max-pages", 0, "N", O_MAX_PAGES},
    {"threads", 0, "N", O_THREADS},
    {"chunk-tokens", 0, "N", O_CHUNK_TOKENS},
    {"lora", 0, "FILE[:SCALE]", O_LORA},
    {"fetch-parallel", 0, "N", O_FETCH_PARALLEL},
    {0},
};
const app_opt *const app_ingest_wiki_opts[] = {ingest_wiki_opts, app_remote_opts, app_remote_batch_opts, NULL};

int app_cmd_ingest_wiki(int argc, char **argv) {
    if (app_wants_help(argc, argv)) {
        fputs(wiki_usage, stdout);
        return 0;
    }
    int rc = 1;
    const char *url = NULL, *index_flag = NULL, *mflag = NULL, *pwfile = NULL, *access_file = NULL;
    int nss[64];
    size_t n_ns = 0;
    rag_wiki_params wp = rag_wiki_default_params();
    rag_ingest_params ip = rag_ingest_default_params();
    wiki_ui u = {0};
    llm_model *m = NULL;
    idx_store *s = NULL;
    rag_ingester *ing = NULL;
    rag_access *acc = NULL;
    char *password = NULL;
    bool fresh = false;
    long v;
    double d;
    app_lora_opts lora = {0};
    rag_remote_params rp = rag_remote_default_params();
    rp.cancel = &g_cancel;
    bool remote = false;
    app_args ap;
    app_args_init(&ap, "ingest-wiki", app_ingest_wiki_opts, argc, argv);
    const char *val;
    int id;
    while ((id = app_args_next(&ap, &val)) > 0) {
        bool ok = true;
        switch (id) {
        case O_INDEX: index_flag = val; break;
        case 'm': mflag = val; break;
        case O_USER: wp.username = val; break;
        case O_PASSWORD_FILE: pwfile = val; break;
        case O_CA_FILE: wp.ca_file = val; break;
        case O_ACCESS: access_file = val; break;
        case O_FULL: wp.full = true; break;
        case O_LORA: ok = app_lora_add(&lora, "ingest-wiki", (char *)val) == 0; break;
        case 'q': u.quiet = true; break;
        case O_NAMESPACE:
            if (n_ns == sizeof nss / sizeof nss[0]) return app_usage_error(&ap, "at most 64 namespaces");
            if ((ok = app_opt_long(&ap, val, -1, 1000000000, &v))) nss[n_ns++] = (int)v;
            break;
        case O_RATE: if ((ok = app_opt_double(&ap, val, 0, 1000, &d))) wp.rate = d; break;
        case O_TIMEOUT: if ((ok = app_opt_double(&ap, val, 0.1, 3600, &d))) wp.timeout_ms = (int)(d * 1000); break;
        case O_RETRIES: ok = app_opt_int(&ap, val, 1, 100, &wp.max_attempts); break;
        case O_MAX_RESPONSE_MB:
            if ((ok = app_opt_long(&ap, val, 1, 4096, &v))) wp.max_response_bytes = (size_t)v << 20;
            break;
        case O_MAX_PAGES: if ((ok = app_opt_long(&ap, val, 1, 1L << 40, &v))) wp.max_pages = (size_t)v; break;
        case O_THREADS: ok = app_opt_int(&ap, val, 1, 256, &ip.n_threads); break;
        case O_CHUNK_TOKENS: ok = app_opt_int(&ap, val, 16, 8192, &ip.chunk_tokens); break;
        case O_FETCH_PARALLEL: ok = app_opt_int(&ap, val, 1, 16, &wp.parallel); break;
        default: ok = app_remote_apply_opt(&ap, id, val, &rp, &remote, &ip) >= 0; break;
        }
        if (!ok) return 2;
    }
    if (id < 0) return 2;
    if (ap.npos > 1) return app_usage_error(&ap, "one wiki at a time ('%s')", argv[2]);
    if (ap.npos == 0) return app_usage_error(&ap, "no API_URL (the wiki's api.php)");
    url = argv[1];
    if ((wp.username == NULL) != (pwfile == NULL)) return app_usage_error(&ap, "--user and --password-file go together");
    if (remote && !rp.base_url) return app_usage_error(&ap, "--llm-embeddings needs --llm-url BASE");
    if (rp.base_url && !remote)
        return app_usage_error(&ap, "--llm-url: ingest-wiki only embeds; add --llm-embeddings to embed on the server");
    if (remote && lora.n) return app_usage_error(&ap, "--lora needs a local model (the server applies its own)");
    const char *mpath = app_model_path(mflag);
    if (!mpath && !remote) return app_usage_error(&ap, "no model: give -m FILE or set MRAG_MODEL (or --llm-url BASE --llm-embeddings)");
    if (ip.overlap_tokens >= ip.chunk_tokens) ip.overlap_tokens = ip.chunk_tokens / 8;
    if (n_ns) { wp.namespaces = nss; wp.n_namespaces = n_ns; }
    if (pwfile) {
        if (!(password = read_password(pwfile))) { app_error("ingest-wiki: cannot read the password file %s", pwfile); goto done; }
        app_warn_if_readable(pwfile, NULL);
        wp.password = password;
    }
    char err[1024];
    if (access_file) {
        if (rag_access_load(access_file, &acc, err, sizeof err) != RAG_OK) { app_error("ingest-wiki: %s", err); goto done; }
        wp.access = acc;
    }
    const char *index_dir = app_index_path(index_flag);
    llm_model_params mp = llm_model_default_params();
    app_lora_model_params(&lora, &mp);
    mp.defer_repack = true;     /* packed at the first embedding (as ingest) */
    mp.vocab_only = remote;     /* with a server the model only counts tokens */
    if (mpath && llm_model_load(mpath, &mp, &m, err, sizeof err) != LLM_OK) { app_error("ingest-wiki: %s", err); goto done; }
    if (remote) {
        app_warn_if_readable(rp.key_file, "the key file ");
        ip.remote = &rp;
    }
    idx_params xp = idx_default_params();
    fresh = app_index_is_new(index_dir);
    int irc = idx_open(index_dir, &xp, &s);
    if (irc != IDX_OK) { app_error("ingest-wiki: %s", s ? idx_errmsg(s) : "out of memory"); goto done; }
    if (idx_notice(s)) fprintf(stderr, "mrag: %s\n", idx_notice(s));
    ip.model = m;
    if (rag_ingester_new(s, &ip, &ing, err, sizeof err) != RAG_OK) { app_error("ingest-wiki: %s", err); goto done; }
    wp.url = url;
    wp.progress = on_progress;
    wp.user = &u;
    wp.cancel = &g_cancel;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    rag_wiki_stats st;
    int grc = rag_wiki_sync(ing, s, &wp, &st, err, sizeof err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (grc != RAG_OK) {
        app_error("ingest-wiki: %s", err);
        rag_ingester_free(ing);
        ing = NULL;
        if (fresh) app_index_discard(&s, index_dir);    /* a first sync that stored nothing */
        goto done;
    }
    if (remote) app_after_ingest_remote(s, &rp, "ingest-wiki");
    else app_after_ingest(s, m, "ingest-wiki");
    size_t pages = st.added + st.updated + st.moved + st.removed + st.unchanged + st.failed;
    printf("%s (%s%s%s): %zu added, %zu updated, %zu moved, %zu removed, %zu unchanged, %zu failed\n",
           st.cancelled ? "stopped" : "done", st.full ? "full sync: " : "incremental", st.full ? st.full_reason : "",
           "", st.added, st.updated, st.moved, st.removed, st.unchanged, st.failed);
    printf("%zu page%s in %.2f s (%.1f pages/s), %llu chunk%s written, %zu request%s, %zu retr%s%s; index %s\n", pages,
           pages == 1 ? "" : "s", st.seconds, st.seconds > 0 ? (double)pages / st.seconds : 0.0,
           (unsigned long long)st.chunks_added, st.chunks_added == 1 ? "" : "s", st.requests, st.requests == 1 ? "" : "s",
           st.retries, st.retries == 1 ? "y" : "ies", st.regrouped ? " (access groups updated on some pages)" : "", index_dir);
    if (st.cancelled) printf("the sync point was not advanced: run again to finish\n");
    if (st.rules_missing)
        fprintf(stderr, "mrag: warning: earlier syncs of this wiki used access rules and this one had no --access: "
                        "pages kept their groups, but new pages were stored as public\n");
    if (st.failed) printf("%zu page%s failed (see above); they are retried on the next run\n", st.failed, st.failed == 1 ? "" : "s");
    rc = st.cancelled && g_cancel ? 130 : 0;
done:
    rag_ingester_free(ing);
    idx_close(s);
    llm_model_free(m);
    rag_access_free(acc);
    if (password) { memset(password, 0, strlen(password)); free(password); }
    return rc;
}
