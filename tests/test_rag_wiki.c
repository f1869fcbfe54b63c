/* test_rag_wiki.c — the MediaWiki connector (rag/wiki*.c, mrag ingest-wiki)
 * against a real MediaWiki on loopback (tests/wiki_env.sh, started once):
 * full and incremental sync with English and German pages, edits, new
 * pages, moves and deletions; the index equals the wiki (URIs, titles,
 * revision ids, groups, no ghost chunks in FTS5/FAISS); a sync stopped
 * half-way and re-run equals a clean one; a private wiki with a bot
 * password. Robustness against a small fault-injecting wiki served by
 * libmicrohttpd on 127.0.0.1: 503 + Retry-After, maxlag, an oversized
 * answer, a hanging answer, malformed JSON, a persistent 500. */
#define _GNU_SOURCE
#include "tests/test.h"

#include "index/index.h"
#include "llm/llm.h"
#include "rag/rag.h"
#include "rag/wiki_internal.h"

#include <cjson/cJSON.h>
#include <arpa/inet.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ shared setup */

static char g_model[512];
static llm_model *g_m;

/* The tiny random-weight model, made and loaded once. */
static llm_model *model(void) {
    if (g_m) return g_m;
    if (!g_model[0]) {
        snprintf(g_model, sizeof g_model, "%s/wiki-model.gguf", test_tmpdir());
        test_mkmodel(g_model, "--dim 64 --layers 1 --heads 4 --kv-heads 1 --ff 128 --ctx 2048 --seed 7");
    }
    char err[512];
    llm_model_params mp = llm_model_default_params();
    REQUIRE(llm_model_load(g_model, &mp, &g_m, err, sizeof err) == LLM_OK, "%s", err);
    return g_m;
}

typedef struct {
    char base[1024];
    char api[512];
    char url[256];
    char bot_user[128];
    char bot_pass[256];
    int status;         /* 0 running, 77 not installed, else failed */
    bool tried;
    char why[1024];
} wiki_env;

static wiki_env g_pub, g_priv;

static void stop_wiki(wiki_env *w) {
    if (w->status == 0 && w->tried) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "sh tests/wiki_env.sh stop %s", test_shq(w->base));
        if (system(cmd) != 0) { /* the server may be gone already */ }
    }
}
static void stop_wikis(void) {
    stop_wiki(&g_pub);
    stop_wiki(&g_priv);
}

/* Reads VAR=value from the env file written by wiki_env.sh. */
static void env_value(const char *env, const char *var, char *out, size_t n) {
    out[0] = 0;
    size_t vl = strlen(var);
    for (const char *p = env; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > vl && strncmp(p, var, vl) == 0 && p[vl] == '=') snprintf(out, n, "%.*s", (int)(len - vl - 1), p + vl + 1);
        p = nl ? nl + 1 : p + len;
    }
}

/* Starts the wiki of this variant once per test binary; SKIPs the case when
 * MediaWiki or PHP is not installed. */
static wiki_env *wiki(bool private_wiki) {
    wiki_env *w = private_wiki ? &g_priv : &g_pub;
    if (!w->tried) {
        w->tried = true;
        static bool at;
        const char *tmp = test_tmpdir();
        if (!at) { atexit(stop_wikis); at = true; }
        snprintf(w->base, sizeof w->base, "%s/wiki-%s", tmp, private_wiki ? "private" : "public");
        char cmd[2400];
        snprintf(cmd, sizeof cmd, "sh tests/wiki_env.sh start %s %s >/dev/null 2>%s.log", test_shq(w->base),
                 private_wiki ? "private" : "public", test_shq(w->base));
        int st = system(cmd);
        w->status = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
        char path[1200];
        snprintf(path, sizeof path, "%s.log", w->base);
        char *log = test_read_file(path, NULL);
        snprintf(w->why, sizeof w->why, "%s", log ? log : "");
        free(log);
        if (w->status == 0) {
            snprintf(path, sizeof path, "%s/env", w->base);
            char *env = test_read_file(path, NULL);
            env_value(env, "WIKI_API", w->api, sizeof w->api);
            env_value(env, "WIKI_URL", w->url, sizeof w->url);
            env_value(env, "WIKI_BOT_USER", w->bot_user, sizeof w->bot_user);
            free(env);
            snprintf(path, sizeof path, "%s/botpass", w->base);
            char *pw = test_read_file(path, NULL);
            snprintf(w->bot_pass, sizeof w->bot_pass, "%s", pw ? pw : "");
            w->bot_pass[strcspn(w->bot_pass, "\r\n")] = 0;
            free(pw);
        }
    }
    if (w->status == 77) SKIP("MediaWiki or PHP is not installed (apt-get install mediawiki php-sqlite3 php-cli)");
    REQUIRE(w->status == 0, "wiki_env.sh start failed (%d): %s", w->status, w->why);
    return w;
}

/* Runs `wiki_env.sh SUB BASE [A1 [A2]]` with stdin_text on stdin (may be
 * NULL); REQUIREs success. */
static void wiki_do(wiki_env *w, const char *stdin_text, const char *sub, const char *a1, const char *a2) {
    char in[1200] = "/dev/null";
    if (stdin_text) {
        snprintf(in, sizeof in, "%s/stdin.txt", test_tmpdir());
        REQUIRE(test_write_file(in, stdin_text, strlen(stdin_text)) == 0);
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "sh tests/wiki_env.sh %s %s", sub, test_shq(w->base));
    if (a1) { strcat(cmd, " "); strcat(cmd, test_shq(a1)); }
    if (a2) { strcat(cmd, " "); strcat(cmd, test_shq(a2)); }
    strcat(cmd, " < ");
    strcat(cmd, in);
    int st = system(cmd);
    REQUIRE(st == 0, "%s failed", cmd);
}

/* Progress log of one sync. */
typedef struct {
    char path[64][512];
    char reason[64][512];
    rag_ingest_outcome o[64];
    int n;
} evlog;

static void on_event(void *user, const rag_ingest_event *ev) {
    evlog *l = user;
    if (ev->kind != RAG_ING_EV_FILE_DONE || l->n >= 64) return;
    snprintf(l->path[l->n], sizeof l->path[0], "%s", ev->path ? ev->path : "");
    snprintf(l->reason[l->n], sizeof l->reason[0], "%s", ev->reason ? ev->reason : "");
    l->o[l->n++] = ev->outcome;
}

static const char *g_hr_rules = "# test rules\nnamespace 100 hr\n";

/* Options of one sync run. */
typedef struct {
    const char *url;
    bool full;
    const char *rules;          /* access rules text, NULL = none */
    const char *user, *password;
    size_t max_pages;
    int timeout_ms, max_attempts, backoff_ms;
    size_t max_bytes;
    bool ns100;                 /* also namespace 100 */
    const char *ca_file;
    double rate;                /* requests/s, 0 = no limit */
    int parallel;               /* page fetches in flight, 0 = the default */
} sync_opts;

/* One sync of o->url into the index folder dir. Returns rag_wiki_sync's status. */
static int do_sync(const char *dir, const sync_opts *o, rag_wiki_stats *st, evlog *log, char *err, size_t errlen) {
    llm_model *m = model();
    idx_store *s = test_open_index(dir);
    rag_ingest_params ip = rag_ingest_default_params();
    ip.model = m;
    ip.n_threads = 1;
    ip.chunk_tokens = 64;
    ip.overlap_tokens = 8;
    rag_ingester *ing = NULL;
    int rc = rag_ingester_new(s, &ip, &ing, err, errlen);
    REQUIRE(rc == RAG_OK, "%s", err);
    rag_access *acc = NULL;
    if (o->rules) REQUIRE(rag_access_parse("rules", o->rules, strlen(o->rules), &acc, err, errlen) == RAG_OK, "%s", err);
    static const int ns2[] = {0, 100};
    rag_wiki_params p = rag_wiki_default_params();
    p.url = o->url;
    if (o->ns100) { p.namespaces = ns2; p.n_namespaces = 2; }
    p.access = acc;
    p.full = o->full;
    p.username = o->user;
    p.password = o->password;
    p.max_pages = o->max_pages;
    p.ca_file = o->ca_file;
    p.rate = o->rate;
    if (o->timeout_ms) p.timeout_ms = o->timeout_ms;
    if (o->max_attempts) p.max_attempts = o->max_attempts;
    p.backoff_ms = o->backoff_ms ? o->backoff_ms : 50;
    if (o->max_bytes) p.max_response_bytes = o->max_bytes;
    if (o->parallel) p.parallel = o->parallel;
    if (log) { memset(log, 0, sizeof *log); p.progress = on_event; p.user = log; }
    err[0] = 0;
    rc = rag_wiki_sync(ing, s, &p, st, err, errlen);
    rag_ingester_free(ing);
    rag_access_free(acc);
    idx_close(s);
    return rc;
}

/* ------------------------------------------------------------ checks */

static int strcmp_p(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* What the wiki itself lists (curl + cJSON, independent of the connector):
 * "URL\tTITLE\tREVID\n" lines sorted, for namespaces 0 and 100. */
static char *wiki_truth(const wiki_env *w) {
    char *all = NULL;
    size_t n_lines = 0;
    char *lines[512];
    for (int k = 0; k < 2; k++) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "curl -s -g '%s?action=query&format=json&formatversion=2&generator=allpages&gaplimit=max"
                 "&gapfilterredir=nonredirects&gapnamespace=%d&prop=info&inprop=url'",
                 w->api, k ? 100 : 0);
        int st;
        char *out = test_run_capture(cmd, &st);
        REQUIRE(out && st == 0, "%s", cmd);
        cJSON *j = cJSON_Parse(out);
        free(out);
        REQUIRE(j, "the wiki's answer is not JSON");
        cJSON *pages = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "query"), "pages");
        cJSON *p;
        cJSON_ArrayForEach(p, pages) {
            char *line = NULL;
            int k = asprintf(&line, "%s\t%s\t%lld\n", cJSON_GetObjectItem(p, "fullurl")->valuestring,
                             cJSON_GetObjectItem(p, "title")->valuestring,
                             (long long)cJSON_GetObjectItem(p, "lastrevid")->valuedouble);
            REQUIRE(k > 0);
            REQUIRE(n_lines < 512);
            lines[n_lines++] = line;
        }
        cJSON_Delete(j);
    }
    qsort(lines, n_lines, sizeof *lines, strcmp_p);
    size_t total = 1;
    for (size_t i = 0; i < n_lines; i++) total += strlen(lines[i]);
    all = calloc(1, total);
    for (size_t i = 0; i < n_lines; i++) { strcat(all, lines[i]); free(lines[i]); }
    return all;
}

/* The index's wiki documents in the same form (sorted by URI). */
static char *index_state(const char *dir, const char *prefix) {
    idx_store *s = test_open_index(dir);
    idx_doc *docs = NULL;
    size_t n = 0;
    REQUIRE(idx_doc_list(s, prefix, &docs, &n) == IDX_OK);
    size_t cap = 64;
    for (size_t i = 0; i < n; i++) cap += strlen(docs[i].uri) + strlen(docs[i].title) + 40;
    char *out = calloc(1, cap);
    char **lines = calloc(n + 1, sizeof *lines);
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_STR(docs[i].type, "wiki");
        int k = asprintf(&lines[i], "%s\t%s\t%s\n", docs[i].uri, docs[i].title, docs[i].version ? docs[i].version : "");
        REQUIRE(k > 0);
    }
    qsort(lines, n, sizeof *lines, strcmp_p);
    for (size_t i = 0; i < n; i++) { strcat(out, lines[i]); free(lines[i]); }
    free(lines);
    idx_doc_list_free(docs, n);
    idx_close(s);
    return out;
}

/* No ghosts: every chunk has one vector, one FTS5 row and one FAISS id;
 * document chunk counts add up; SQLite and FTS5 integrity checks pass. */
static void check_no_ghosts(const char *dir) {
    idx_store *s = test_open_index(dir);
    idx_counts c;
    REQUIRE(idx_get_counts(s, &c) == IDX_OK, "%s", idx_errmsg(s));
    CHECK_EQ_INT(c.vectors, c.chunks);
    CHECK_EQ_INT(c.fts_rows, c.chunks);
    CHECK_EQ_INT(c.faiss_ntotal, c.chunks);
    idx_doc *docs = NULL;
    size_t n = 0;
    REQUIRE(idx_doc_list(s, NULL, &docs, &n) == IDX_OK);
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += docs[i].n_chunks;
    CHECK_EQ_INT(sum, c.chunks);
    CHECK_EQ_INT((int64_t)n, c.documents);
    idx_doc_list_free(docs, n);
    int64_t *fa = NULL, *ve = NULL;
    size_t nf = 0, nv = 0;
    REQUIRE(idx_debug_faiss_ids(s, &fa, &nf) == IDX_OK && idx_debug_vector_ids(s, &ve, &nv) == IDX_OK);
    CHECK_EQ_INT(nf, nv);
    CHECK(nf == nv && memcmp(fa, ve, nf * sizeof *fa) == 0, "FAISS ids differ from the stored vectors");
    free(fa);
    free(ve);
    CHECK(idx_check(s) == IDX_OK, "%s", idx_errmsg(s));
    idx_close(s);
}

/* URIs of the BM25 hits for q, '\n'-joined, sorted, unique. Owned. */
static char *bm25_uris(const char *dir, const char *q) {
    idx_store *s = test_open_index(dir);
    idx_hit hits[32];
    int n = 0;
    REQUIRE(idx_search_bm25(s, q, strlen(q), 32, NULL, hits, &n) == IDX_OK, "%s", idx_errmsg(s));
    char *u[32];
    int m = 0;
    for (int i = 0; i < n; i++) {
        idx_chunk c;
        idx_doc d;
        memset(&c, 0, sizeof c);
        memset(&d, 0, sizeof d);
        REQUIRE(idx_chunk_get(s, hits[i].chunk_id, &c, &d) == IDX_OK);
        u[m++] = strdup(d.uri);
        idx_chunk_release(&c);
        idx_doc_release(&d);
    }
    qsort(u, (size_t)m, sizeof *u, strcmp_p);
    size_t cap = 1;
    for (int i = 0; i < m; i++) cap += strlen(u[i]) + 1;
    char *out = calloc(1, cap);
    for (int i = 0; i < m; i++) {
        if (i == 0 || strcmp(u[i], u[i - 1]) != 0) { strcat(out, u[i]); strcat(out, "\n"); }
    }
    for (int i = 0; i < m; i++) free(u[i]);
    idx_close(s);
    return out;
}

/* The groups stored for uri ("(absent)" when the document is not there). */
static void doc_groups(const char *dir, const char *uri, char *out, size_t n) {
    idx_store *s = test_open_index(dir);
    idx_doc d;
    memset(&d, 0, sizeof d);
    if (idx_doc_get(s, uri, &d) == IDX_OK) snprintf(out, n, "%s", d.groups ? d.groups : "");
    else snprintf(out, n, "(absent)");
    idx_doc_release(&d);
    idx_close(s);
}

static void check_index_equals_wiki(const wiki_env *w, const char *dir) {
    char *truth = wiki_truth(w);
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s/index.php/", w->url);
    char *have = index_state(dir, prefix);
    CHECK(strcmp(truth, have) == 0, "index differs from the wiki:\n--- wiki\n%s--- index\n%s", truth, have);
    free(truth);
    free(have);
    check_no_ghosts(dir);
}

static char g_idx_a[1024];      /* the index that follows the public wiki through the cases */

/* ------------------------------------------------------------ real MediaWiki */

static char *page_url(const wiki_env *w, const char *path_part) {
    static char buf[4][512];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, sizeof buf[0], "%s/index.php/%s", w->url, path_part);
    return b;
}

static bool contains_line(const char *list, const char *line) {
    size_t n = strlen(line);
    for (const char *p = list; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len == n && strncmp(p, line, n) == 0) return true;
        p = nl ? nl + 1 : p + len;
    }
    return false;
}

TEST(full_sync_mirrors_english_and_german_pages) {
    wiki_env *w = wiki(false);
    snprintf(g_idx_a, sizeof g_idx_a, "%s/idx-a", test_tmpdir());
    sync_opts o = {.url = w->api, .rules = g_hr_rules, .ns100 = true};
    rag_wiki_stats st;
    char err[1024];
    int rc = do_sync(g_idx_a, &o, &st, NULL, err, sizeof err);
    REQUIRE(rc == RAG_OK, "%s", err);
    CHECK(st.full, "the first sync is a full one");
    CHECK_EQ_INT(st.added, 6);      /* Main Page + 3 in namespace 0 + 2 in Intern */
    CHECK_EQ_INT(st.failed, 0);
    check_index_equals_wiki(w, g_idx_a);
    char *u = bm25_uris(g_idx_a, "kestrel daemon");
    CHECK(contains_line(u, page_url(w, "Apollo_project")), "kestrel -> %s", u);
    free(u);
    u = bm25_uris(g_idx_a, "Murmeltierhütte");
    char want[600];
    snprintf(want, sizeof want, "%s\n", page_url(w, "Bergwanderung"));
    CHECK_EQ_STR(u, want);
    free(u);
    char g[256];
    doc_groups(g_idx_a, page_url(w, "Intern:Salaries"), g, sizeof g);
    CHECK_EQ_STR(g, "hr");
    doc_groups(g_idx_a, page_url(w, "Intern:Onboarding"), g, sizeof g);
    CHECK_EQ_STR(g, "hr");
    doc_groups(g_idx_a, page_url(w, "Apollo_project"), g, sizeof g);
    CHECK_EQ_STR(g, "");
    /* headings survive: a chunk of the Installation section carries it */
    idx_store *s = test_open_index(g_idx_a);
    idx_hit hits[4];
    int n = 0;
    REQUIRE(idx_search_bm25(s, "kestrel", 7, 4, NULL, hits, &n) == IDX_OK && n >= 1);
    idx_chunk c;
    memset(&c, 0, sizeof c);
    REQUIRE(idx_chunk_get(s, hits[0].chunk_id, &c, NULL) == IDX_OK);
    CHECK(strstr(c.heading, "Apollo project") && strstr(c.heading, "Installation"), "heading '%s'", c.heading);
    /* cited by URL and heading: lines of the rendered HTML are not kept */
    CHECK(c.line_start == 0 && c.line_end == 0 && c.page == 0, "lines %d-%d", c.line_start, c.line_end);
    idx_chunk_release(&c);
    idx_close(s);
    /* nothing changed: an incremental run that writes nothing */
    rc = do_sync(g_idx_a, &o, &st, NULL, err, sizeof err);
    REQUIRE(rc == RAG_OK, "%s", err);
    CHECK(!st.full, "second run incremental (%s)", st.full_reason);
    CHECK_EQ_INT(st.added + st.updated + st.removed + st.moved + st.failed, 0);
    CHECK_EQ_INT(st.chunks_added, 0);
}

/* The chunks of dir in the order they were stored (URI, ordinal, id). */
static char *chunk_order(const char *dir) {
    idx_store *s = test_open_index(dir);
    sqlite3_stmt *st;
    REQUIRE(sqlite3_prepare_v2(idx_debug_db(s), "SELECT d.uri, c.ordinal, c.id FROM chunks c JOIN documents d ON d.id = c.doc_id "
                                                "ORDER BY c.id", -1, &st, NULL) == SQLITE_OK);
    char *out = calloc(1, 1);
    size_t len = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char *line = NULL;
        int k = asprintf(&line, "%s\t%d\t%lld\n", sqlite3_column_text(st, 0), sqlite3_column_int(st, 1),
                         (long long)sqlite3_column_int64(st, 2));
        REQUIRE(k > 0);
        out = realloc(out, len + (size_t)k + 1);
        memcpy(out + len, line, (size_t)k + 1);
        len += (size_t)k;
        free(line);
    }
    sqlite3_finalize(st);
    idx_close(s);
    return out;
}

static char *index_fingerprint(const char *dir);

/* Pages fetched 4 at a time (the default) give the index of a sequential
 * run: the same documents, and the same chunks stored in the same order. */
TEST(parallel_fetches_equal_a_sequential_sync) {
    wiki_env *w = wiki(false);
    char seq[1100], par[1100];
    snprintf(seq, sizeof seq, "%s/idx-fetch-seq", test_tmpdir());
    snprintf(par, sizeof par, "%s/idx-fetch-par", test_tmpdir());
    sync_opts o = {.url = w->api, .rules = g_hr_rules, .ns100 = true, .full = true, .parallel = 1};
    rag_wiki_stats st;
    evlog l1, l4;
    char err[1024];
    REQUIRE(do_sync(seq, &o, &st, &l1, err, sizeof err) == RAG_OK, "%s", err);
    CHECK(st.added >= 6 && st.failed == 0, "%zu added, %zu failed", st.added, st.failed);
    o.parallel = 4;
    REQUIRE(do_sync(par, &o, &st, &l4, err, sizeof err) == RAG_OK, "%s", err);
    CHECK(st.added >= 6 && st.failed == 0, "%zu added, %zu failed", st.added, st.failed);
    char *a = index_fingerprint(seq), *b = index_fingerprint(par);
    CHECK(strcmp(a, b) == 0, "sequential:\n%sparallel:\n%s", a, b);
    free(a);
    free(b);
    a = chunk_order(seq);
    b = chunk_order(par);
    CHECK(strcmp(a, b) == 0, "chunk order differs:\n%s---\n%s", a, b);
    free(a);
    free(b);
    /* the pages are reported in the same order */
    CHECK_EQ_INT(l4.n, l1.n);
    for (int i = 0; i < l1.n && i < l4.n; i++) CHECK_EQ_STR(l4.path[i], l1.path[i]);
    check_no_ghosts(par);
    check_index_equals_wiki(w, par);
}

TEST(incremental_sync_follows_edits_moves_and_deletions) {
    wiki_env *w = wiki(false);
    REQUIRE(g_idx_a[0], "needs the first case");
    wiki_do(w, "Apollo now flies with the osprey engine.\n\n== Usage ==\nPress the big red button.\n", "edit",
            "Apollo project", NULL);
    wiki_do(w, "Das Käsefondue wird im Caquelon serviert, mit Kirschwasser.\n", "edit", "Käsefondue", NULL);
    wiki_do(w, NULL, "move", "Office/Coffee machine", "Office/Espresso machine");
    wiki_do(w, NULL, "delete", "Bergwanderung", NULL);
    wiki_do(w, NULL, "move", "Intern:Onboarding", "Onboarding");
    sync_opts o = {.url = w->api, .rules = g_hr_rules, .ns100 = true};
    rag_wiki_stats st;
    evlog log;
    char err[1024];
    int rc = do_sync(g_idx_a, &o, &st, &log, err, sizeof err);
    REQUIRE(rc == RAG_OK, "%s", err);
    CHECK(!st.full, "incremental (%s)", st.full_reason);
    CHECK_EQ_INT(st.updated, 1);
    CHECK_EQ_INT(st.added, 1);
    CHECK_EQ_INT(st.moved, 2);
    CHECK_EQ_INT(st.removed, 1);
    CHECK_EQ_INT(st.failed, 0);
    check_index_equals_wiki(w, g_idx_a);
    /* old text gone, new text found, moved pages under their new URL only */
    char *u = bm25_uris(g_idx_a, "kestrel");
    CHECK_EQ_STR(u, "");
    free(u);
    u = bm25_uris(g_idx_a, "osprey");
    CHECK(contains_line(u, page_url(w, "Apollo_project")), "osprey -> %s", u);
    free(u);
    u = bm25_uris(g_idx_a, "Murmeltierhütte");
    CHECK_EQ_STR(u, "");
    free(u);
    u = bm25_uris(g_idx_a, "Kirschwasser Caquelon");
    const char *fondue = page_url(w, "K\xc3\xa4sefondue");
    (void)fondue;
    fondue = page_url(w, "K%C3%A4sefondue");
    CHECK(contains_line(u, fondue), "Kirschwasser -> %s", u);
    free(u);
    u = bm25_uris(g_idx_a, "quartz tablets descale");
    char want[600];
    snprintf(want, sizeof want, "%s\n", page_url(w, "Office/Espresso_machine"));
    CHECK_EQ_STR(u, want);
    free(u);
    u = bm25_uris(g_idx_a, "heron handbook");
    snprintf(want, sizeof want, "%s\n", page_url(w, "Onboarding"));
    CHECK_EQ_STR(u, want);
    free(u);
    /* moved out of Intern: public now */
    char g[256];
    doc_groups(g_idx_a, page_url(w, "Onboarding"), g, sizeof g);
    CHECK_EQ_STR(g, "");
    doc_groups(g_idx_a, page_url(w, "Intern:Onboarding"), g, sizeof g);
    CHECK_EQ_STR(g, "(absent)");
    bool saw_move = false;
    for (int i = 0; i < log.n; i++)
        if (log.o[i] == RAG_ING_RENAMED && strcmp(log.path[i], page_url(w, "Onboarding")) == 0 &&
            strstr(log.reason[i], "Intern:Onboarding"))
            saw_move = true;
    CHECK(saw_move, "a 'moved' event from Intern:Onboarding");
}

TEST(changed_access_rules_regroup_without_reembedding) {
    wiki_env *w = wiki(false);
    REQUIRE(g_idx_a[0], "needs the first case");
    sync_opts o = {.url = w->api, .rules = "category Office facilities\nnamespace 100 hr,board\n", .ns100 = true};
    rag_wiki_stats st;
    char err[1024];
    REQUIRE(do_sync(g_idx_a, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK(st.full && strstr(st.full_reason, "access"), "full because the rules changed: '%s'", st.full_reason);
    CHECK_EQ_INT(st.chunks_added, 0);
    CHECK_EQ_INT(st.added + st.updated, 0);
    CHECK_EQ_INT(st.regrouped, 2);  /* Espresso machine (category), Salaries (hr -> board,hr) */
    char g[256];
    doc_groups(g_idx_a, page_url(w, "Office/Espresso_machine"), g, sizeof g);
    CHECK_EQ_STR(g, "facilities");
    doc_groups(g_idx_a, page_url(w, "Intern:Salaries"), g, sizeof g);
    CHECK(strcmp(g, "board,hr") == 0 || strcmp(g, "hr,board") == 0, "groups '%s'", g);
    /* back to the first rules for the next cases */
    o.rules = g_hr_rules;
    REQUIRE(do_sync(g_idx_a, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    doc_groups(g_idx_a, page_url(w, "Office/Espresso_machine"), g, sizeof g);
    CHECK_EQ_STR(g, "");
    check_index_equals_wiki(w, g_idx_a);
}

TEST(full_sync_removes_a_deletion_the_changes_missed) {
    wiki_env *w = wiki(false);
    REQUIRE(g_idx_a[0], "needs the first case");
    wiki_do(w, "Short lived page about the albatross.\n", "edit", "Albatross", NULL);
    sync_opts o = {.url = w->api, .rules = g_hr_rules, .ns100 = true};
    rag_wiki_stats st;
    char err[1024];
    REQUIRE(do_sync(g_idx_a, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_EQ_INT(st.added, 1);
    wiki_do(w, NULL, "delete", "Albatross", NULL);
    /* pretend the deletion happened before the sync point (as if the change
     * log had lost it): the incremental run cannot see it */
    idx_store *s = test_open_index(g_idx_a);
    char key[700];
    snprintf(key, sizeof key, "wiki:%s:since", w->api);
    char future[32];
    time_t t = time(NULL) + 3600;
    strftime(future, sizeof future, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    REQUIRE(idx_meta_set(s, key, future) == IDX_OK);
    idx_close(s);
    REQUIRE(do_sync(g_idx_a, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK(!st.full);
    char g[256];
    doc_groups(g_idx_a, page_url(w, "Albatross"), g, sizeof g);
    CHECK_EQ_STR(g, "");            /* still there: a ghost only --full can see */
    o.full = true;
    REQUIRE(do_sync(g_idx_a, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK(st.full);
    CHECK_EQ_INT(st.removed, 1);
    doc_groups(g_idx_a, page_url(w, "Albatross"), g, sizeof g);
    CHECK_EQ_STR(g, "(absent)");
    char *u = bm25_uris(g_idx_a, "albatross");
    CHECK_EQ_STR(u, "");
    free(u);
    check_index_equals_wiki(w, g_idx_a);
    /* restored in the wiki: the next incremental run brings it back */
    wiki_do(w, NULL, "undelete", "Albatross", NULL);
    o.full = false;
    REQUIRE(do_sync(g_idx_a, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK(!st.full, "incremental (%s)", st.full_reason);
    CHECK_EQ_INT(st.added, 1);
    u = bm25_uris(g_idx_a, "albatross");
    char want[600];
    snprintf(want, sizeof want, "%s\n", page_url(w, "Albatross"));
    CHECK_EQ_STR(u, want);
    free(u);
    check_index_equals_wiki(w, g_idx_a);
}

/* The documents of dir as "URI\tversion\tn_chunks\tsha256\tgroups" lines. */
static char *index_fingerprint(const char *dir) {
    idx_store *s = test_open_index(dir);
    idx_doc *docs = NULL;
    size_t n = 0;
    REQUIRE(idx_doc_list(s, NULL, &docs, &n) == IDX_OK);
    char *out = calloc(1, 1);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        char *line = NULL;
        int k = asprintf(&line, "%s\t%s\t%lld\t%s\t%s\n", docs[i].uri, docs[i].version, (long long)docs[i].n_chunks,
                         docs[i].sha256, docs[i].groups ? docs[i].groups : "");
        REQUIRE(k > 0);
        out = realloc(out, len + (size_t)k + 1);
        memcpy(out + len, line, (size_t)k + 1);
        len += (size_t)k;
        free(line);
    }
    idx_doc_list_free(docs, n);
    idx_close(s);
    return out;
}

TEST(sync_stopped_half_way_then_rerun_equals_a_clean_sync) {
    wiki_env *w = wiki(false);
    REQUIRE(g_idx_a[0], "needs the first case");
    wiki_do(w, "Apollo lands on the second try; the osprey engine was retuned.\n", "edit", "Apollo project", NULL);
    wiki_do(w, "Die Skifreizeit beginnt im Februar in Davos.\n", "edit", "Skifreizeit", NULL);
    wiki_do(w, "Parking permits are issued by the porter on Mondays.\n", "edit", "Parking", NULL);
    wiki_do(w, NULL, "delete", "Office/Espresso machine", NULL);
    idx_store *s = test_open_index(g_idx_a);
    char key[700], *since0 = NULL, *since1 = NULL;
    snprintf(key, sizeof key, "wiki:%s:since", w->api);
    REQUIRE(idx_meta_get(s, key, &since0) == IDX_OK);
    idx_close(s);
    sync_opts o = {.url = w->api, .rules = g_hr_rules, .ns100 = true, .max_pages = 2};
    rag_wiki_stats st;
    char err[1024];
    REQUIRE(do_sync(g_idx_a, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK(st.cancelled, "stopped by max_pages");
    CHECK_EQ_INT(st.added + st.updated + st.removed + st.moved, 2);
    s = test_open_index(g_idx_a);
    REQUIRE(idx_meta_get(s, key, &since1) == IDX_OK);
    idx_close(s);
    CHECK_EQ_STR(since1, since0);   /* the sync point did not move */
    check_no_ghosts(g_idx_a);       /* consistent mid-way */
    o.max_pages = 0;
    REQUIRE(do_sync(g_idx_a, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK(!st.cancelled && !st.full, "the re-run finishes incrementally (%s)", st.full_reason);
    CHECK_EQ_INT(st.added + st.updated + st.removed + st.moved, 2);
    check_index_equals_wiki(w, g_idx_a);
    /* equal to a clean sync into a fresh index */
    char clean[1100];
    snprintf(clean, sizeof clean, "%s/idx-clean", test_tmpdir());
    REQUIRE(do_sync(clean, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    char *a = index_fingerprint(g_idx_a), *b = index_fingerprint(clean);
    CHECK(strcmp(a, b) == 0, "resumed:\n%sclean:\n%s", a, b);
    free(a);
    free(b);
    free(since0);
    free(since1);
}

TEST(cli_killed_mid_sync_then_rerun_finishes) {
    wiki_env *w = wiki(false);
    model();
    char dir[1100], cmd[4096];
    snprintf(dir, sizeof dir, "%s/idx-kill", test_tmpdir());
    /* slow (2 requests/s) so that the kill lands mid-way */
    snprintf(cmd, sizeof cmd,
             "{ %s/mrag ingest-wiki %s --index %s -m %s --namespace 0 --namespace 100 --threads 1 --rate 2 -q "
             ">/dev/null 2>&1 & pid=$!; sleep 2.5; kill -9 $pid; wait $pid; echo $?; } 2>/dev/null",
             test_build_dir(), test_shq(w->api), test_shq(dir), test_shq(g_model));
    int st;
    char *out = test_run_capture(cmd, &st);
    REQUIRE(out);
    CHECK(atoi(out) == 137, "killed by SIGKILL (status %s)", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s/mrag ingest-wiki %s --index %s -m %s --namespace 0 --namespace 100 --threads 1 --rate 0 2>&1",
             test_build_dir(), test_shq(w->api), test_shq(dir), test_shq(g_model));
    out = test_run_capture(cmd, &st);
    REQUIRE(out);
    CHECK(st == 0 && strstr(out, "done (full sync: first sync"), "re-run: status %d, %s", st, out);
    free(out);
    check_index_equals_wiki(w, dir);
}

TEST(move_leaving_a_redirect_keeps_only_the_new_title) {
    wiki_env *w = wiki(false);
    REQUIRE(g_idx_a[0], "needs the first case");
    wiki_do(w, "The lighthouse keeper logs the foghorn tests.\n", "edit", "Lighthouse", NULL);
    sync_opts o = {.url = w->api, .rules = g_hr_rules, .ns100 = true};
    rag_wiki_stats st;
    char err[1024];
    REQUIRE(do_sync(g_idx_a, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_EQ_INT(st.added, 1);
    wiki_do(w, NULL, "move-redirect", "Lighthouse", "Lighthouse keeping");
    REQUIRE(do_sync(g_idx_a, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK(!st.full);
    CHECK_EQ_INT(st.moved, 1);
    char *u = bm25_uris(g_idx_a, "foghorn");
    char want[600];
    snprintf(want, sizeof want, "%s\n", page_url(w, "Lighthouse_keeping"));
    CHECK_EQ_STR(u, want);      /* the redirect left at the old title is not a document */
    free(u);
    check_index_equals_wiki(w, g_idx_a);
}

TEST(a_run_without_rules_keeps_the_groups_pages_have) {
    wiki_env *w = wiki(false);
    REQUIRE(g_idx_a[0], "needs the first case");
    wiki_do(w, "Salary bands for 2027 are confidential: band eight starts at the quince threshold.\n", "edit",
            "Intern:Salaries", NULL);
    sync_opts o = {.url = w->api, .ns100 = true};     /* no rules, by mistake */
    rag_wiki_stats st;
    char err[1024];
    REQUIRE(do_sync(g_idx_a, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK(!st.full, "no rules is not a change of rules (%s)", st.full_reason);
    CHECK(st.rules_missing, "the caller is told that rules were used before");
    CHECK_EQ_INT(st.updated, 1);
    char g[256];
    doc_groups(g_idx_a, page_url(w, "Intern:Salaries"), g, sizeof g);
    CHECK_EQ_STR(g, "hr");          /* never public by accident */
    char *u = bm25_uris(g_idx_a, "quince threshold");
    char want[600];
    snprintf(want, sizeof want, "%s\n", page_url(w, "Intern:Salaries"));
    CHECK_EQ_STR(u, want);
    free(u);
    o.rules = g_hr_rules;           /* the recorded rules again: still incremental */
    REQUIRE(do_sync(g_idx_a, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK(!st.full, "%s", st.full_reason);
    CHECK(!st.rules_missing);
    check_index_equals_wiki(w, g_idx_a);
}

TEST(private_wiki_needs_the_bot_password) {
    wiki_env *w = wiki(true);
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/idx-private", test_tmpdir());
    rag_wiki_stats st;
    char err[1024];
    sync_opts o = {.url = w->api};
    int rc = do_sync(dir, &o, &st, NULL, err, sizeof err);
    CHECK(rc == RAG_ERR_IO && strstr(err, w->api) && strstr(err, "needs a login") && strstr(err, "--user"),
          "no credentials: %d %s", rc, err);
    o.user = w->bot_user;
    o.password = "not-the-password";
    rc = do_sync(dir, &o, &st, NULL, err, sizeof err);
    CHECK(rc == RAG_ERR_ARG && strstr(err, w->api) && strstr(err, "login as Admin@mrag failed") &&
              strstr(err, "ncorrect"),   /* MediaWiki's reason: "Incorrect username or password..." */
          "wrong password: %d %s", rc, err);
    /* the CLI: exit status 1 and the same message */
    char pwf[1200], cmd[4096];
    snprintf(pwf, sizeof pwf, "%s/wrong-pass", test_tmpdir());
    REQUIRE(test_write_file(pwf, "not-the-password\n", 17) == 0);
    chmod(pwf, 0600);
    model();
    snprintf(cmd, sizeof cmd, "%s/mrag ingest-wiki %s --index %s -m %s --user %s --password-file %s 2>&1",
             test_build_dir(), test_shq(w->api), test_shq(dir), test_shq(g_model), test_shq(w->bot_user), test_shq(pwf));
    int status;
    char *out = test_run_capture(cmd, &status);
    REQUIRE(out);
    CHECK(status == 1 && strstr(out, "login as Admin@mrag failed") && strstr(out, "ncorrect"),
          "CLI: status %d, %s", status, out);
    free(out);
    o.password = w->bot_pass;
    o.ns100 = true;
    rc = do_sync(dir, &o, &st, NULL, err, sizeof err);
    REQUIRE(rc == RAG_OK, "%s", err);
    CHECK_EQ_INT(st.added, 6);
    CHECK_EQ_INT(st.failed, 0);
    char *u = bm25_uris(dir, "marmalade threshold");
    char want[600];
    snprintf(want, sizeof want, "%s/index.php/Intern:Salaries\n", w->url);
    CHECK_EQ_STR(u, want);
    free(u);
    check_no_ghosts(dir);
}

/* ------------------------------------------------------------ a fault-injecting wiki
 * A small api.php on 127.0.0.1 (libmicrohttpd, a thread per connection)
 * serving three pages, with one fault switched on at a time. */

enum {
    FAULT_NONE = 0,
    FAULT_503_TWICE,        /* the first two requests: 503 + Retry-After: 1 */
    FAULT_MAXLAG_ONCE,      /* the first request: the maxlag error + Retry-After: 1 */
    FAULT_BIG_PAGE2,        /* page 2's HTML: a 2 MB answer */
    FAULT_HANG_PAGE3,       /* page 3's HTML: no answer for 2 s */
    FAULT_BADJSON_SITEINFO, /* siteinfo: cut-off JSON */
    FAULT_BADJSON_PAGE1,    /* page 1's HTML: cut-off JSON */
    FAULT_500_ALWAYS,
    FAULT_PARSE_503,        /* every page's HTML: 503 (the listing works) */
    FAULT_RATELIMITED_ONCE, /* the first request: MediaWiki's "ratelimited" error */
    FAULT_SESSION_ENDS,     /* a login wiki whose session ends at the 5th request */
    FAULT_SLOW_PARSE_PAGE2_500, /* every page's HTML takes 300 ms; page 2's: 500 */
};

static struct MHD_Daemon *g_fake;
static int g_fake_port;
static atomic_int g_fault, g_fake_requests, g_fake_stop;
static atomic_int g_parse_inflight, g_parse_max;  /* action=parse requests being answered, and the most at once */
static atomic_int g_fake_logins, g_fake_session, g_fake_unasserted;   /* login fake: session id in force */

static const char *fake_words[] = {"walrus", "narwhal", "pelican"};

static enum MHD_Result fake_reply(struct MHD_Connection *conn, unsigned status, const char *body, size_t len,
                                  const char *retry_after) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The JSON of page i (1..3) as a query answer element, with a category
 * (NULL: no "categories" member). */
static void fake_page_json(char *out, size_t n, int i, const char *category) {
    char cats[200] = "";
    if (category) snprintf(cats, sizeof cats, ",\"categories\":[{\"ns\":14,\"title\":\"Category:%s\"}]", category);
    snprintf(out, n,
             "{\"pageid\":%d,\"ns\":0,\"title\":\"Page %d\",\"lastrevid\":%d,\"length\":40,"
             "\"fullurl\":\"http://127.0.0.1:%d/index.php/Page_%d\",\"canonicalurl\":\"http://127.0.0.1:%d/index.php/Page_%d\","
             "\"revisions\":[{\"revid\":%d,\"parentid\":0,\"timestamp\":\"2026-01-0%dT10:00:00Z\"}]%s}",
             i, i, 10 + i, g_fake_port, i, g_fake_port, i, 10 + i, i, cats);
}

static enum MHD_Result fake_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                    const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)cls; (void)url; (void)version; (void)upload;
    static int first_call;
    bool post = strcmp(method, "POST") == 0;
    if (!*con_cls) {
        *con_cls = &first_call;
        if (post) return MHD_YES;   /* the body comes in the next calls */
    } else if (post && *upload_size) {
        *upload_size = 0;           /* the fake does not read it: any POST is a good login */
        return MHD_YES;
    }
    int n = atomic_fetch_add(&g_fake_requests, 1) + 1;
    int fault = atomic_load(&g_fault);
    if (post) {
        /* action=login: a new session, the only one in force */
        int sid = atomic_fetch_add(&g_fake_logins, 1) + 1;
        atomic_store(&g_fake_session, sid);
        char cookie[64];
        snprintf(cookie, sizeof cookie, "fakesess=%d; path=/; HttpOnly", sid);
        const char *ok = "{\"login\":{\"result\":\"Success\",\"lguserid\":1,\"lgusername\":\"Bot\"}}";
        struct MHD_Response *r = MHD_create_response_from_buffer(strlen(ok), (void *)ok, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Content-Type", "application/json");
        MHD_add_response_header(r, "Set-Cookie", cookie);
        enum MHD_Result ret = MHD_queue_response(conn, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (fault == FAULT_SESSION_ENDS) {
        const char *type = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "type");
        if (type && strcmp(type, "login") == 0) {
            const char *t = "{\"batchcomplete\":true,\"query\":{\"tokens\":{\"logintoken\":\"abc+\\\\\"}}}";
            return fake_reply(conn, 200, t, strlen(t), NULL);
        }
        if (n == 5) atomic_store(&g_fake_session, -1);     /* the session ends */
        const char *as = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "assert");
        const char *ck = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "fakesess");
        if (!as || strcmp(as, "user") != 0) atomic_fetch_add(&g_fake_unasserted, 1);
        if (!ck || atoi(ck) != atomic_load(&g_fake_session)) {
            const char *e = as ? "{\"error\":{\"code\":\"assertuserfailed\",\"info\":\"You are no longer logged in.\"}}"
                               : "{\"error\":{\"code\":\"readapidenied\",\"info\":\"You need read permission.\"}}";
            return fake_reply(conn, 200, e, strlen(e), NULL);
        }
    }
    const char *action = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "action");
    const char *meta = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "meta");
    const char *gen = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "generator");
    const char *list = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "list");
    const char *titles = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "titles");
    const char *oldid = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "oldid");
    const char *gapns = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "gapnamespace");
    if (fault == FAULT_500_ALWAYS) return fake_reply(conn, 500, "oops", 4, NULL);
    if (fault == FAULT_503_TWICE && n <= 2) return fake_reply(conn, 503, "busy", 4, "1");
    if (fault == FAULT_MAXLAG_ONCE && n == 1) {
        const char *e = "{\"error\":{\"code\":\"maxlag\",\"info\":\"Waiting for 10.0.0.7: 7 seconds lagged.\",\"lag\":7}}";
        return fake_reply(conn, 200, e, strlen(e), "1");
    }
    if (fault == FAULT_RATELIMITED_ONCE && n == 1) {
        const char *e = "{\"error\":{\"code\":\"ratelimited\",\"info\":\"You've exceeded your rate limit.\"}}";
        return fake_reply(conn, 200, e, strlen(e), NULL);
    }
    char buf[4096];
    if (!action) return fake_reply(conn, 400, "no action", 9, NULL);
    if (strcmp(action, "query") == 0 && meta && strcmp(meta, "siteinfo") == 0) {
        if (fault == FAULT_BADJSON_SITEINFO) return fake_reply(conn, 200, "{\"query\":{\"general\":{\"server\"", 30, NULL);
        snprintf(buf, sizeof buf,
                 "{\"batchcomplete\":true,\"query\":{\"general\":{\"server\":\"http://127.0.0.1:%d\","
                 "\"articlepath\":\"/index.php/$1\",\"time\":\"2026-02-01T00:00:00Z\",\"generator\":\"FakeWiki 1.0\"}}}",
                 g_fake_port);
        return fake_reply(conn, 200, buf, strlen(buf), NULL);
    }
    if (strcmp(action, "query") == 0 && gen && strcmp(gen, "allpages") == 0) {
        if (gapns && strcmp(gapns, "0") != 0) return fake_reply(conn, 200, "{\"batchcomplete\":true}", 21, NULL);
        /* as MediaWiki continues: pages 1-2 with page 2's categories split
         * over two answers (clcontinue), then page 3 (gapcontinue) */
        const char *gc = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "gapcontinue");
        const char *cc = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "clcontinue");
        char p1[900], p2[900];
        if (gc && strcmp(gc, "Page_3") == 0) {
            fake_page_json(p1, sizeof p1, 3, NULL);
            snprintf(buf, sizeof buf, "{\"batchcomplete\":true,\"query\":{\"pages\":[%s]}}", p1);
        } else if (cc && strcmp(cc, "2|Secret") == 0) {
            fake_page_json(p1, sizeof p1, 1, NULL);
            fake_page_json(p2, sizeof p2, 2, "Secret");
            snprintf(buf, sizeof buf,
                     "{\"batchcomplete\":true,\"continue\":{\"gapcontinue\":\"Page_3\",\"continue\":\"gapcontinue||\"},"
                     "\"query\":{\"pages\":[%s,%s]}}", p1, p2);
        } else {
            fake_page_json(p1, sizeof p1, 1, NULL);
            fake_page_json(p2, sizeof p2, 2, "Public notes");
            snprintf(buf, sizeof buf,
                     "{\"continue\":{\"clcontinue\":\"2|Secret\",\"continue\":\"||\"},\"query\":{\"pages\":[%s,%s]}}",
                     p1, p2);
        }
        return fake_reply(conn, 200, buf, strlen(buf), NULL);
    }
    if (strcmp(action, "query") == 0 && titles) {
        char pages[3000] = "";
        for (int i = 1; i <= 3; i++) {
            char t[32], pj[900];
            snprintf(t, sizeof t, "Page %d", i);
            if (!strstr(titles, t)) continue;
            fake_page_json(pj, sizeof pj, i, NULL);
            if (pages[0]) strcat(pages, ",");
            strcat(pages, pj);
        }
        snprintf(buf, sizeof buf, "{\"batchcomplete\":true,\"query\":{\"pages\":[%s]}}", pages);
        return fake_reply(conn, 200, buf, strlen(buf), NULL);
    }
    if (strcmp(action, "query") == 0 && list && strcmp(list, "recentchanges") == 0) {
        const char *lim = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "rclimit");
        if (lim && strcmp(lim, "1") == 0) {
            const char *e = "{\"batchcomplete\":true,\"query\":{\"recentchanges\":[{\"type\":\"new\",\"ns\":0,"
                            "\"title\":\"Page 1\",\"timestamp\":\"2026-01-01T10:00:00Z\"}]}}";
            return fake_reply(conn, 200, e, strlen(e), NULL);
        }
        const char *e = "{\"batchcomplete\":true,\"query\":{\"recentchanges\":[]}}";
        return fake_reply(conn, 200, e, strlen(e), NULL);
    }
    if (strcmp(action, "query") == 0 && list && strcmp(list, "logevents") == 0) {
        const char *e = "{\"batchcomplete\":true,\"query\":{\"logevents\":[]}}";
        return fake_reply(conn, 200, e, strlen(e), NULL);
    }
    if (strcmp(action, "parse") == 0 && oldid) {
        int rev = atoi(oldid), i = rev - 10;
        if (i < 1 || i > 3) {
            const char *e = "{\"error\":{\"code\":\"nosuchrevid\",\"info\":\"There is no revision.\"}}";
            return fake_reply(conn, 200, e, strlen(e), NULL);
        }
        if (fault == FAULT_PARSE_503) return fake_reply(conn, 503, "down", 4, NULL);
        if (fault == FAULT_SLOW_PARSE_PAGE2_500) {
            int now = atomic_fetch_add(&g_parse_inflight, 1) + 1;
            for (int m = atomic_load(&g_parse_max); now > m && !atomic_compare_exchange_weak(&g_parse_max, &m, now);) {}
            for (int k = 0; k < 30 && !atomic_load(&g_fake_stop); k++) usleep(10000);
            atomic_fetch_sub(&g_parse_inflight, 1);
            if (i == 2) return fake_reply(conn, 500, "page 2 is broken", 16, NULL);
        }
        if (fault == FAULT_BADJSON_PAGE1 && i == 1) return fake_reply(conn, 200, "{\"parse\":{\"text\":\"<p>cut", 23, NULL);
        if (fault == FAULT_HANG_PAGE3 && i == 3) {
            for (int k = 0; k < 200 && !atomic_load(&g_fake_stop); k++) usleep(10000);
        }
        if (fault == FAULT_BIG_PAGE2 && i == 2) {
            size_t big = 2u << 20;
            char *b = malloc(big + 100);
            int h = snprintf(b, 100, "{\"parse\":{\"title\":\"Page 2\",\"revid\":12,\"text\":\"");
            memset(b + h, 'x', big);
            strcpy(b + h + big, "\"}}");
            enum MHD_Result ret = fake_reply(conn, 200, b, strlen(b), NULL);
            free(b);
            return ret;
        }
        snprintf(buf, sizeof buf,
                 "{\"parse\":{\"title\":\"Page %d\",\"pageid\":%d,\"revid\":%d,\"text\":\"<div class=\\\"mw-parser-output\\\">"
                 "<p>Page %d is about the %s of the fake wiki.</p></div>\"}}",
                 i, i, rev, i, fake_words[i - 1]);
        return fake_reply(conn, 200, buf, strlen(buf), NULL);
    }
    const char *e = "{\"error\":{\"code\":\"badparams\",\"info\":\"fake wiki: unknown call\"}}";
    return fake_reply(conn, 200, e, strlen(e), NULL);
}

static void fake_stop(void) {
    if (!g_fake) return;
    atomic_store(&g_fake_stop, 1);
    MHD_stop_daemon(g_fake);
    g_fake = NULL;
}

/* Starts the fake wiki once; sets the fault; returns its api.php URL. */
static const char *fake_wiki(int fault) {
    static char api[128];
    if (!g_fake) {
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = 0;
        g_fake = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
                                  fake_handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
        REQUIRE(g_fake, "cannot start the fake wiki on 127.0.0.1");
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(g_fake, MHD_DAEMON_INFO_BIND_PORT);
        REQUIRE(di && di->port);
        g_fake_port = di->port;
        atexit(fake_stop);
    }
    snprintf(api, sizeof api, "http://127.0.0.1:%d/api.php", g_fake_port);
    atomic_store(&g_fault, fault);
    atomic_store(&g_fake_requests, 0);
    return api;
}

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *fresh_dir(const char *name) {
    static char d[1100];
    snprintf(d, sizeof d, "%s/%s", test_tmpdir(), name);
    return d;
}

static int count_docs(const char *dir) {
    idx_store *s = test_open_index(dir);
    idx_counts c;
    REQUIRE(idx_get_counts(s, &c) == IDX_OK);
    idx_close(s);
    return (int)c.documents;
}

TEST(fault_503_with_retry_after_then_success) {
    const char *api = fake_wiki(FAULT_503_TWICE);
    const char *dir = fresh_dir("idx-503");
    sync_opts o = {.url = api, .full = true};
    rag_wiki_stats st;
    char err[1024];
    double t = mono_now();
    int rc = do_sync(dir, &o, &st, NULL, err, sizeof err);
    double dt = mono_now() - t;
    REQUIRE(rc == RAG_OK, "%s", err);
    CHECK_EQ_INT(st.added, 3);
    CHECK_EQ_INT(st.retries, 2);
    CHECK(dt >= 1.9, "Retry-After: 1 was honoured twice (%.2f s)", dt);
    char *u = bm25_uris(dir, "narwhal");
    char want[200];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/index.php/Page_2\n", g_fake_port);
    CHECK_EQ_STR(u, want);
    free(u);
    check_no_ghosts(dir);
}

TEST(fault_maxlag_waits_and_retries) {
    const char *api = fake_wiki(FAULT_MAXLAG_ONCE);
    const char *dir = fresh_dir("idx-maxlag");
    sync_opts o = {.url = api, .full = true};
    rag_wiki_stats st;
    char err[1024];
    double t = mono_now();
    REQUIRE(do_sync(dir, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK(mono_now() - t >= 0.9, "waited Retry-After");
    CHECK_EQ_INT(st.retries, 1);
    CHECK_EQ_INT(st.added, 3);
    /* MediaWiki's own rate limit error: backed off and retried too */
    fake_wiki(FAULT_RATELIMITED_ONCE);
    REQUIRE(do_sync(fresh_dir("idx-ratelimited"), &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_EQ_INT(st.retries, 1);
    CHECK_EQ_INT(st.added, 3);
}

TEST(fault_oversized_answer_fails_that_page_only_and_is_retried) {
    const char *api = fake_wiki(FAULT_BIG_PAGE2);
    const char *dir = fresh_dir("idx-big");
    sync_opts o = {.url = api, .full = true, .max_bytes = 1u << 20};
    rag_wiki_stats st;
    evlog log;
    char err[1024];
    REQUIRE(do_sync(dir, &o, &st, &log, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_EQ_INT(st.added, 2);
    CHECK_EQ_INT(st.failed, 1);
    bool named = false;
    for (int i = 0; i < log.n; i++)
        if (log.o[i] == RAG_ING_FAILED && strstr(log.path[i], "Page_2") && strstr(log.reason[i], "larger than 1048576 bytes") &&
            strstr(log.reason[i], api))
            named = true;
    CHECK(named, "the failure names the wiki and the size limit");
    CHECK_EQ_INT(count_docs(dir), 2);
    check_no_ghosts(dir);
    /* the fault is gone: the next (incremental) run picks the page up */
    fake_wiki(FAULT_NONE);
    o.full = false;
    REQUIRE(do_sync(dir, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK(!st.full, "incremental (%s)", st.full_reason);
    CHECK_EQ_INT(st.added, 1);
    CHECK_EQ_INT(count_docs(dir), 3);
    check_no_ghosts(dir);
}

TEST(fault_hanging_answer_times_out_and_the_run_goes_on) {
    const char *api = fake_wiki(FAULT_HANG_PAGE3);
    const char *dir = fresh_dir("idx-hang");
    sync_opts o = {.url = api, .full = true, .timeout_ms = 300, .max_attempts = 2};
    rag_wiki_stats st;
    evlog log;
    char err[1024];
    double t = mono_now();
    REQUIRE(do_sync(dir, &o, &st, &log, err, sizeof err) == RAG_OK, "%s", err);
    CHECK(mono_now() - t < 5, "bounded by the timeout");
    CHECK_EQ_INT(st.added, 2);
    CHECK_EQ_INT(st.failed, 1);
    bool named = false;
    for (int i = 0; i < log.n; i++)
        if (log.o[i] == RAG_ING_FAILED && strstr(log.path[i], "Page_3") && strstr(log.reason[i], "timed out") &&
            strstr(log.reason[i], "2 attempts"))
            named = true;
    CHECK(named, "the failure says it timed out");
    check_no_ghosts(dir);
}

TEST(fault_malformed_json_is_a_clear_error) {
    const char *api = fake_wiki(FAULT_BADJSON_SITEINFO);
    const char *dir = fresh_dir("idx-badjson");
    sync_opts o = {.url = api, .full = true};
    rag_wiki_stats st;
    evlog log;
    char err[1024];
    int rc = do_sync(dir, &o, &st, NULL, err, sizeof err);
    CHECK(rc == RAG_ERR_FORMAT && strstr(err, api) && strstr(err, "malformed answer") && strstr(err, "not JSON"),
          "%d %s", rc, err);
    CHECK_EQ_INT(count_docs(dir), 0);
    fake_wiki(FAULT_BADJSON_PAGE1);
    REQUIRE(do_sync(dir, &o, &st, &log, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_EQ_INT(st.added, 2);
    CHECK_EQ_INT(st.failed, 1);
    CHECK(log.n >= 1 && log.o[0] == RAG_ING_FAILED && strstr(log.reason[0], "malformed answer"), "%s", log.reason[0]);
    check_no_ghosts(dir);
}

TEST(fault_persistent_500_gives_up_with_a_clear_error) {
    const char *api = fake_wiki(FAULT_500_ALWAYS);
    const char *dir = fresh_dir("idx-500");
    sync_opts o = {.url = api, .full = true, .max_attempts = 3};
    rag_wiki_stats st;
    char err[1024];
    int rc = do_sync(dir, &o, &st, NULL, err, sizeof err);
    CHECK(rc == RAG_ERR_IO && strstr(err, api) && strstr(err, "giving up after 3 attempts") &&
              strstr(err, "HTTP status 500"),
          "%d %s", rc, err);
    CHECK_EQ_INT(st.requests, 3);
}

TEST(a_wiki_that_fails_every_page_ends_the_run) {
    const char *api = fake_wiki(FAULT_PARSE_503);
    const char *dir = fresh_dir("idx-down");
    sync_opts o = {.url = api, .full = true, .max_attempts = 2};
    rag_wiki_stats st;
    char err[1024];
    int rc = do_sync(dir, &o, &st, NULL, err, sizeof err);
    CHECK(rc == RAG_ERR_IO && strstr(err, "3 pages in a row failed") && strstr(err, "HTTP status 503"), "%d %s", rc, err);
    CHECK_EQ_INT(st.failed, 3);
    /* no sync point recorded: the next run is a full one again */
    idx_store *s = test_open_index(dir);
    char key[300], *v = NULL;
    snprintf(key, sizeof key, "wiki:%s:since", api);
    CHECK(idx_meta_get(s, key, &v) == IDX_ERR_NOTFOUND, "sync point %s", v ? v : "");
    free(v);
    idx_close(s);
}

/* Several pages are fetched at once (the fake wiki sees them overlap),
 * one of them fails and is named, the others are stored; the index and
 * the reports are those of a sequential run. */
TEST(parallel_fetches_a_failing_page_is_named_and_the_rest_goes_on) {
    const char *api = fake_wiki(FAULT_SLOW_PARSE_PAGE2_500);
    char *fp[2], *order[2];
    int maxes[2];
    static const int pars[2] = {1, 3};
    for (int k = 0; k < 2; k++) {
        atomic_store(&g_parse_inflight, 0);
        atomic_store(&g_parse_max, 0);
        const char *dir = fresh_dir(k ? "idx-pfetch-3" : "idx-pfetch-1");
        sync_opts o = {.url = api, .full = true, .max_attempts = 2, .parallel = pars[k]};
        rag_wiki_stats st;
        evlog log;
        char err[1024];
        REQUIRE(do_sync(dir, &o, &st, &log, err, sizeof err) == RAG_OK, "%s", err);
        CHECK_EQ_INT(st.added, 2);
        CHECK_EQ_INT(st.failed, 1);
        /* in page order: 1 added, 2 failed (named, with the status), 3 added */
        CHECK(log.n == 3, "%d events", log.n);
        if (log.n == 3) {
            CHECK(strstr(log.path[0], "Page_1") && log.o[0] == RAG_ING_ADDED, "%s", log.path[0]);
            CHECK(strstr(log.path[1], "Page_2") && log.o[1] == RAG_ING_FAILED && strstr(log.reason[1], "HTTP status 500") &&
                      strstr(log.reason[1], api),
                  "%s: %s", log.path[1], log.reason[1]);
            CHECK(strstr(log.path[2], "Page_3") && log.o[2] == RAG_ING_ADDED, "%s", log.path[2]);
        }
        CHECK_EQ_INT(count_docs(dir), 2);
        check_no_ghosts(dir);
        fp[k] = index_fingerprint(dir);
        order[k] = chunk_order(dir);
        maxes[k] = atomic_load(&g_parse_max);
    }
    CHECK(maxes[0] == 1, "sequential: %d fetches at once", maxes[0]);
    CHECK(maxes[1] >= 2, "--fetch-parallel 3: at most %d fetch at once", maxes[1]);
    CHECK(strcmp(fp[0], fp[1]) == 0, "sequential:\n%sparallel:\n%s", fp[0], fp[1]);
    CHECK(strcmp(order[0], order[1]) == 0, "chunk order:\n%s---\n%s", order[0], order[1]);
    for (int k = 0; k < 2; k++) { free(fp[k]); free(order[k]); }
}

TEST(an_ended_login_session_is_renewed_not_read_anonymously) {
    const char *api = fake_wiki(FAULT_SESSION_ENDS);
    atomic_store(&g_fake_logins, 0);
    atomic_store(&g_fake_unasserted, 0);
    const char *dir = fresh_dir("idx-session");
    /* one connection: the counts are those of one session (the fake keeps
     * one session in force; the fetches in flight each log in) */
    sync_opts o = {.url = api, .full = true, .user = "Bot@mrag", .password = "secret", .parallel = 1};
    rag_wiki_stats st;
    char err[1024];
    REQUIRE(do_sync(dir, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_EQ_INT(st.added, 3);
    CHECK_EQ_INT(st.relogins, 1);
    CHECK_EQ_INT(atomic_load(&g_fake_logins), 2);
    CHECK_EQ_INT(atomic_load(&g_fake_unasserted), 0);   /* every read after the login said assert=user */
    check_no_ghosts(dir);
}

TEST(continuation_merges_a_page_split_over_answers) {
    const char *api = fake_wiki(FAULT_NONE);
    const char *dir = fresh_dir("idx-cont");
    sync_opts o = {.url = api, .full = true, .rules = "category Secret secret\n"};
    rag_wiki_stats st;
    char err[1024];
    REQUIRE(do_sync(dir, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_EQ_INT(st.added, 3);
    CHECK_EQ_INT(st.requests, 7);   /* siteinfo, 3 listing answers, 3 pages */
    check_no_ghosts(dir);
    /* again at 5 requests per second: nothing changed, so siteinfo and the 3
     * listing answers only, 3 gaps of 0.2 s at least */
    o.rate = 5;
    double t = mono_now();
    REQUIRE(do_sync(dir, &o, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    double dt = mono_now() - t;
    CHECK_EQ_INT(st.requests, 4);
    CHECK_EQ_INT(st.unchanged, 3);
    CHECK(dt >= 0.58, "--rate 5 spaced 4 requests over %.2f s", dt);
    char url[200], g[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/index.php/Page_2", g_fake_port);
    doc_groups(dir, url, g, sizeof g);
    CHECK_EQ_STR(g, "secret");      /* the category from the second answer counted */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/index.php/Page_1", g_fake_port);
    doc_groups(dir, url, g, sizeof g);
    CHECK_EQ_STR(g, "");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/index.php/Page_3", g_fake_port);
    doc_groups(dir, url, g, sizeof g);
    CHECK_EQ_STR(g, "");
    check_no_ghosts(dir);
}

/* Runs the CLI (stderr joined); returns its output, owned; *status the exit code. */
static char *cli(int *status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *cli(int *status, const char *fmt, ...) {
    char args[4096], cmd[4400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL -u MRAG_INDEX %s/mrag %s 2>&1", test_build_dir(), args);
    char *out = test_run_capture(cmd, status);
    REQUIRE(out, "%s", cmd);
    return out;
}

TEST(cli_usage_progress_and_summary) {
    int st;
    char *out = cli(&st, "--help");
    CHECK(st == 0 && strstr(out, "ingest-wiki"), "mrag --help lists ingest-wiki");
    free(out);
    out = cli(&st, "ingest-wiki --help");
    CHECK(st == 0 && strstr(out, "--password-file") && strstr(out, "--namespace"), "%s", out);
    free(out);
    out = cli(&st, "ingest-wiki");
    CHECK_EQ_INT(st, 2);
    free(out);
    out = cli(&st, "ingest-wiki http://127.0.0.1:9/api.php --user someone");
    CHECK(st == 2 && strstr(out, "--password-file"), "%d %s", st, out);
    free(out);
    out = cli(&st, "ingest-wiki http://127.0.0.1:9/api.php --rate fast");
    CHECK(st == 2 && strstr(out, "--rate"), "%d %s", st, out);
    free(out);
    model();
    const char *api = fake_wiki(FAULT_NONE);
    const char *dir = fresh_dir("idx-cli");
    out = cli(&st, "ingest-wiki %s --index %s -m %s --threads 1", api, test_shq(dir), test_shq(g_model));
    char line[200];
    snprintf(line, sizeof line, "added     http://127.0.0.1:%d/index.php/Page_1 (1 chunk)", g_fake_port);
    CHECK(st == 0 && strstr(out, line) && strstr(out, "done (full sync: first sync of this wiki): 3 added, 0 updated, 0 moved, 0 removed, 0 unchanged, 0 failed") &&
              strstr(out, "3 pages in") && strstr(out, "pages/s"),
          "%d %s", st, out);
    free(out);
    out = cli(&st, "ingest-wiki %s --index %s -m %s --threads 1", api, test_shq(dir), test_shq(g_model));
    CHECK(st == 0 && strstr(out, "done (incremental): 0 added, 0 updated, 0 moved, 0 removed, 0 unchanged, 0 failed"),
          "%d %s", st, out);
    free(out);
    /* an unreachable wiki: exit 1, the URL named */
    out = cli(&st, "ingest-wiki http://127.0.0.1:9/api.php --index %s -m %s --retries 1", test_shq(dir), test_shq(g_model));
    CHECK(st == 1 && strstr(out, "http://127.0.0.1:9/api.php"), "%d %s", st, out);
    free(out);
}

TEST(tls_is_verified_and_a_private_ca_is_accepted) {
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) SKIP("libmicrohttpd was built without TLS");
    fake_wiki(FAULT_NONE);
    char key[1100], cert[1100], cmd[4096];
    snprintf(key, sizeof key, "%s/tls-key.pem", test_tmpdir());
    snprintf(cert, sizeof cert, "%s/tls-cert.pem", test_tmpdir());
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             test_shq(key), test_shq(cert));
    if (system(cmd) != 0) SKIP("openssl cannot make a test certificate");
    char *k = test_read_file(key, NULL), *c = test_read_file(cert, NULL);
    REQUIRE(k && c);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_TLS,
                                            0, NULL, NULL, fake_handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                            MHD_OPTION_HTTPS_MEM_KEY, k, MHD_OPTION_HTTPS_MEM_CERT, c, MHD_OPTION_END);
    REQUIRE(d, "cannot start the TLS fake wiki");
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char api[128];
    snprintf(api, sizeof api, "https://127.0.0.1:%d/api.php", di ? di->port : 0);
    const char *dir = fresh_dir("idx-tls");
    sync_opts o = {.url = api, .full = true, .max_attempts = 1};
    rag_wiki_stats st;
    char err[1024];
    int rc = do_sync(dir, &o, &st, NULL, err, sizeof err);
    CHECK(rc == RAG_ERR_IO && strstr(err, api) && strstr(err, "certificate"), "unknown CA refused: %d %s", rc, err);
    CHECK_EQ_INT(count_docs(dir), 0);
    o.ca_file = cert;
    rc = do_sync(dir, &o, &st, NULL, err, sizeof err);
    CHECK(rc == RAG_OK, "with --ca-file: %s", err);
    CHECK_EQ_INT(st.added, 3);
    MHD_stop_daemon(d);
    free(k);
    free(c);
}

TEST(json_answers_with_too_many_values_are_refused_before_parsing) {
    size_t n = 1100000;
    char *b = malloc(3 * n + 64);
    size_t k = (size_t)sprintf(b, "{\"query\":{\"pages\":[");
    for (size_t i = 0; i < n; i++) { b[k++] = '0'; b[k++] = ','; }
    k--;
    k += (size_t)sprintf(b + k, "]}}");
    wiki_resp r;
    char err[256];
    CHECK(rag_wiki_resp_parse(b, k, &r, err, sizeof err) == RAG_ERR_FORMAT && strstr(err, "more than 1000000 JSON values"),
          "%s", err);
    /* the same number of commas inside a string is one value */
    k = (size_t)sprintf(b, "{\"parse\":{\"revid\":5,\"text\":\"");
    for (size_t i = 0; i < n; i++) { b[k++] = ','; b[k++] = '\\'; b[k++] = '"'; }
    k += (size_t)sprintf(b + k, "\"}}");
    REQUIRE(rag_wiki_resp_parse(b, k, &r, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_EQ_INT(r.parse_text_len, 2 * n);
    CHECK_EQ_INT(r.parse_revid, 5);
    rag_wiki_resp_release(&r);
    free(b);
}

TEST(bad_urls_are_refused) {
    const char *dir = fresh_dir("idx-url");
    sync_opts o = {.url = "ftp://127.0.0.1/api.php", .full = true};
    rag_wiki_stats st;
    char err[1024];
    int rc = do_sync(dir, &o, &st, NULL, err, sizeof err);
    CHECK(rc == RAG_ERR_ARG && strstr(err, "http:// or https://"), "%d %s", rc, err);
    /* https to a plain-HTTP port: a TLS error, never a silent fallback */
    const char *api = fake_wiki(FAULT_NONE);
    char https[160];
    snprintf(https, sizeof https, "https%s", api + 4);
    o.url = https;
    o.max_attempts = 1;
    rc = do_sync(dir, &o, &st, NULL, err, sizeof err);
    CHECK(rc == RAG_ERR_IO && strstr(err, https), "%d %s", rc, err);
}

/* ingest-wiki --llm-url BASE --llm-embeddings: the pages embedded by a
 * real `mrag serve` (same model) give the vectors of a local sync. */
TEST(cli_remote_embeddings_equal_local) {
    int st;
    model();
    const char *api = fake_wiki(FAULT_NONE);
    char local[1100], remote[1100], srvidx[1100], log[1100], url[64];
    snprintf(local, sizeof local, "%s", fresh_dir("idx-wiki-local"));
    snprintf(remote, sizeof remote, "%s", fresh_dir("idx-wiki-remote"));
    snprintf(srvidx, sizeof srvidx, "%s", fresh_dir("idx-wiki-srv"));
    snprintf(log, sizeof log, "%s/wiki-serve.err", test_tmpdir());
    char *out = cli(&st, "ingest-wiki %s --index %s -m %s --threads 1", api, test_shq(local), test_shq(g_model));
    CHECK(st == 0, "%d %s", st, out);
    free(out);
    /* the server needs an index of its own: the local one, copied */
    char cmd[4000];
    snprintf(cmd, sizeof cmd, "cp -r %s %s", test_shq(local), test_shq(srvidx));
    REQUIRE(system(cmd) == 0);
    const char *args[] = {"--index", srvidx, "-m", g_model, "--listen", "127.0.0.1:0", "--threads", "1", NULL};
    pid_t srv = test_serve_spawn(args, log, url, sizeof url);
    out = cli(&st, "ingest-wiki %s --index %s --llm-url %s/v1 --llm-embeddings -m %s --embed-parallel 3 --embed-batch 1", api,
              test_shq(remote), url, test_shq(g_model));
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
    CHECK(st == 0 && strstr(out, "3 added"), "%d %s", st, out);
    free(out);
    out = cli(&st, "ingest-wiki %s --index %s --llm-embeddings", api, test_shq(remote));
    CHECK(st == 2 && strstr(out, "--llm-url"), "%d %s", st, out);
    free(out);
    idx_params ip = idx_default_params();
    ip.read_only = true;
    idx_store *a = NULL, *b = NULL;
    REQUIRE(idx_open(local, &ip, &a) == IDX_OK && idx_open(remote, &ip, &b) == IDX_OK);
    idx_fingerprint fa, fb;
    REQUIRE(idx_fingerprint_get(a, &fa) == IDX_OK && idx_fingerprint_get(b, &fb) == IDX_OK);
    CHECK_EQ_STR(fa.model_sha256, fb.model_sha256);
    int64_t *ia = NULL, *ib = NULL;
    size_t na = 0, nb = 0;
    REQUIRE(idx_chunk_ids(a, false, &ia, &na) == IDX_OK && idx_chunk_ids(b, false, &ib, &nb) == IDX_OK);
    CHECK(na >= 3 && na == nb, "%zu / %zu chunks", na, nb);
    for (size_t i = 0; i < na && i < nb; i++) {
        idx_chunk ca, cb;
        idx_doc xa, xb;
        REQUIRE(idx_chunk_get(a, ia[i], &ca, &xa) == IDX_OK && idx_chunk_get(b, ib[i], &cb, &xb) == IDX_OK);
        CHECK(strcmp(xa.uri, xb.uri) == 0 && ca.ordinal == cb.ordinal && ca.text_len == cb.text_len &&
                  memcmp(ca.text, cb.text, ca.text_len) == 0, "chunk %zu differs", i);
        float va[64], vb[64];
        REQUIRE(idx_chunk_vector(a, ia[i], va, 64) == IDX_OK && idx_chunk_vector(b, ib[i], vb, 64) == IDX_OK);
        double ab = 0, aa = 0, bb = 0;
        for (int j = 0; j < 64; j++) { ab += va[j] * vb[j]; aa += va[j] * va[j]; bb += vb[j] * vb[j]; }
        CHECK(ab / sqrt(aa * bb) >= 0.9999, "%s chunk %d: cosine %f", xa.uri, ca.ordinal, ab / sqrt(aa * bb));
        idx_chunk_release(&ca);
        idx_chunk_release(&cb);
        idx_doc_release(&xa);
        idx_doc_release(&xb);
    }
    free(ia);
    free(ib);
    idx_close(a);
    idx_close(b);
}

TEST_MAIN(RUN(fault_503_with_retry_after_then_success), RUN(fault_maxlag_waits_and_retries),
          RUN(fault_oversized_answer_fails_that_page_only_and_is_retried),
          RUN(fault_hanging_answer_times_out_and_the_run_goes_on), RUN(fault_malformed_json_is_a_clear_error),
          RUN(fault_persistent_500_gives_up_with_a_clear_error), RUN(a_wiki_that_fails_every_page_ends_the_run),
          RUN(parallel_fetches_a_failing_page_is_named_and_the_rest_goes_on),
          RUN(an_ended_login_session_is_renewed_not_read_anonymously), RUN(continuation_merges_a_page_split_over_answers),
          RUN(json_answers_with_too_many_values_are_refused_before_parsing), RUN(bad_urls_are_refused),
          RUN(tls_is_verified_and_a_private_ca_is_accepted),
          RUN(cli_usage_progress_and_summary), RUN(cli_remote_embeddings_equal_local),
          RUN(full_sync_mirrors_english_and_german_pages), RUN(parallel_fetches_equal_a_sequential_sync),
          RUN(incremental_sync_follows_edits_moves_and_deletions),
          RUN(changed_access_rules_regroup_without_reembedding), RUN(full_sync_removes_a_deletion_the_changes_missed),
          RUN(sync_stopped_half_way_then_rerun_equals_a_clean_sync), RUN(cli_killed_mid_sync_then_rerun_finishes),
          RUN(move_leaving_a_redirect_keeps_only_the_new_title), RUN(a_run_without_rules_keeps_the_groups_pages_have),
          RUN(private_wiki_needs_the_bot_password))
