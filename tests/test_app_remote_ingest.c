/* test_app_remote_ingest.c — `mrag ingest --llm-url BASE --llm-embeddings`
 * against a real `mrag serve` on 127.0.0.1, directly and through a
 * loopback proxy in this test (libmicrohttpd + libcurl) that forwards to it,
 * fails after N embedding requests (HTTP 500s, or connections dropped
 * without an answer) until told to recover, or hides the server's "mrag"
 * object (a server that reports no sha256, like vLLM). Checked: vectors
 * equal a local ingest's (same chunks, cosine >= 0.9999), 1 and 4 requests
 * in flight give the same index, a run that fails mid-way leaves only
 * whole documents and a rerun completes it exactly (same rows as a clean
 * run, no duplicates), a server with another model is refused (ingest and
 * ask), the name fingerprint of a server without sha256, and the API key. */
#define _GNU_SOURCE
#include "tests/test.h"

#include "index/index.h"
#include "rag/rag.h"

#include <curl/curl.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char mrag[512], dir[400], model_a[600], model_b[600], idx_local[700], idx_b[700];
static char url_a[64], url_b[64], log_a[700], log_b[700];
static pid_t srv_a = -1, srv_b = -1;
static bool started;

static void stop_servers(void) {
    if (srv_a > 0) { kill(srv_a, SIGKILL); waitpid(srv_a, NULL, 0); srv_a = -1; }
    if (srv_b > 0) { kill(srv_b, SIGKILL); waitpid(srv_b, NULL, 0); srv_b = -1; }
}

/* Runs a shell command; its output (stdout + stderr) into *out (owned). */
static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(char **out, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[8300];
    snprintf(full, sizeof full, "env -u MRAG_MODEL -u MRAG_INDEX %s 2>&1", cmd);
    int st = -1;
    char *o = test_run_capture(full, &st);
    if (out) *out = o;
    else free(o);
    return st;
}

/* Two models of one shape (another seed: another embedding), a local
 * index of data/sample with model A, and a server for each. */
static void setup(void) {
    if (started) {
        REQUIRE(srv_a > 0 && srv_b > 0, "the servers are not running");
        return;
    }
    started = true;
    snprintf(mrag, sizeof mrag, "%s/mrag", test_build_dir());
    if (access(mrag, X_OK) != 0) SKIP("%s is missing (run make)", mrag);
    struct stat st;
    if (stat("data/sample", &st) != 0) SKIP("data/sample is missing");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(model_a, sizeof model_a, "%s/a.gguf", dir);
    snprintf(model_b, sizeof model_b, "%s/b.gguf", dir);
    test_mkmodel(model_a, "--dim 64 --layers 1 --heads 4 --kv-heads 1 --ff 128 --ctx 2048 --seed 7");
    test_mkmodel(model_b, "--dim 64 --layers 1 --heads 4 --kv-heads 1 --ff 128 --ctx 2048 --seed 8");
    snprintf(idx_local, sizeof idx_local, "%s/local", dir);
    snprintf(idx_b, sizeof idx_b, "%s/bidx", dir);
    char *o = NULL;
    int rc = run(&o, "%s ingest data/sample --index %s -m %s --threads 1", mrag, test_shq(idx_local), test_shq(model_a));
    REQUIRE(rc == 0, "local ingest: %s", o);
    free(o);
    rc = run(&o, "%s ingest data/sample/recipes --index %s -m %s --threads 1", mrag, test_shq(idx_b), test_shq(model_b));
    REQUIRE(rc == 0, "ingest b: %s", o);
    free(o);
    atexit(stop_servers);
    snprintf(log_a, sizeof log_a, "%s/a.err", dir);
    snprintf(log_b, sizeof log_b, "%s/b.err", dir);
    const char *aa[] = {"--index", idx_local, "-m", model_a, "--listen", "127.0.0.1:0", "--threads", "1", "--slots", "1", NULL};
    srv_a = test_serve_spawn(aa, log_a, url_a, sizeof url_a);
    const char *ab[] = {"--index", idx_b, "-m", model_b, "--listen", "127.0.0.1:0", "--threads", "1", "--slots", "1", NULL};
    srv_b = test_serve_spawn(ab, log_b, url_b, sizeof url_b);
}

/* ------------------------------------------------------------ the proxy */

enum { PX_PASS, PX_FAIL500, PX_DROP, PX_REFUSE_MARKED };
static struct MHD_Daemon *px;
static int px_port;
static const char *px_upstream;         /* url_a */
static atomic_int px_mode, px_fail_after, px_embeds, px_failed, px_hide_mrag;
/* A run's requests: the dimension probe ("dimension check"), the batches,
 * and after a first ingest the fusion weights' probe and pseudo-queries.
 * px_embeds counts the ingest's: up to the second probe. */
static atomic_int px_probes;
static char px_auth_seen[256];
static pthread_mutex_t px_mu = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    char *body;
    size_t len;
} px_conn;

static enum MHD_Result px_reply(struct MHD_Connection *c, unsigned code, const char *body, size_t len) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result px_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)cls;
    (void)version;
    px_conn *cs = *con_cls;
    if (!cs) {
        *con_cls = cs = calloc(1, sizeof *cs);
        return cs ? MHD_YES : MHD_NO;
    }
    if (*upload_size) {
        char *nb = realloc(cs->body, cs->len + *upload_size + 1);
        if (!nb) return MHD_NO;
        cs->body = nb;
        memcpy(cs->body + cs->len, upload, *upload_size);
        cs->len += *upload_size;
        cs->body[cs->len] = 0;
        *upload_size = 0;
        return MHD_YES;
    }
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    pthread_mutex_lock(&px_mu);
    snprintf(px_auth_seen, sizeof px_auth_seen, "%s", auth ? auth : "");
    pthread_mutex_unlock(&px_mu);
    bool embed = strstr(url, "/embeddings") != NULL;
    if (embed && cs->body && strstr(cs->body, "\"dimension check\"")) atomic_fetch_add(&px_probes, 1);
    bool tuning = atomic_load(&px_probes) >= 2;   /* the fusion weights' queries: not counted, never failed */
    if (embed && !tuning && atomic_load(&px_mode) == PX_REFUSE_MARKED) atomic_fetch_add(&px_embeds, 1);
    if (embed && atomic_load(&px_mode) == PX_REFUSE_MARKED && cs->body && strstr(cs->body, "Refusemarker")) {
        static const char e400[] = "{\"error\":{\"message\":\"input is too long for this model\",\"type\":\"invalid_request_error\"}}";
        return px_reply(c, 400, e400, strlen(e400));
    }
    if (embed && !tuning && atomic_load(&px_mode) != PX_REFUSE_MARKED) {
        int n = atomic_fetch_add(&px_embeds, 1) + 1;
        int mode = atomic_load(&px_mode);
        if (mode != PX_PASS && n > atomic_load(&px_fail_after)) {
            atomic_fetch_add(&px_failed, 1);
            if (mode == PX_DROP) return MHD_NO;        /* the connection closes without an answer */
            static const char e500[] = "{\"error\":{\"message\":\"the GPU fell off the bus\",\"type\":\"server_error\"}}";
            return px_reply(c, 500, e500, strlen(e500));
        }
    }
    /* forward */
    char up[512];
    snprintf(up, sizeof up, "%s%s", px_upstream, url);
    CURL *h = curl_easy_init();
    test_buf b = {0};
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, up);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, test_buf_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, cs->body ? cs->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)cs->len);
    }
    CURLcode cc = curl_easy_perform(h);
    long code = 502;
    if (cc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    if (!b.b) b.b = strdup("{}"), b.n = 2;
    if (atomic_load(&px_hide_mrag) && strstr(url, "/models")) {
        /* a server that says nothing about its model but its name */
        static const char plain[] = "{\"object\":\"list\",\"data\":[{\"id\":\"served-model-x\",\"object\":\"model\"}]}";
        free(b.b);
        b.b = strdup(plain);
        b.n = strlen(plain);
    }
    enum MHD_Result ret = px_reply(c, (unsigned)code, b.b, b.n);
    free(b.b);
    return ret;
}

static void px_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode tc) {
    (void)cls;
    (void)c;
    (void)tc;
    px_conn *cs = *con_cls;
    if (cs) { free(cs->body); free(cs); }
    *con_cls = NULL;
}

static void px_stop(void) {
    if (px) MHD_stop_daemon(px);
    px = NULL;
}

/* Starts the proxy in front of server A (once); resets its counters. */
static void px_start(int mode, int fail_after, bool hide_mrag) {
    atomic_store(&px_mode, mode);
    atomic_store(&px_fail_after, fail_after);
    atomic_store(&px_embeds, 0);
    atomic_store(&px_failed, 0);
    atomic_store(&px_probes, 0);
    atomic_store(&px_hide_mrag, hide_mrag);
    if (px) return;
    px_upstream = url_a;
    atexit(px_stop);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    px = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL, px_handler, NULL,
                          MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, px_done, NULL,
                          MHD_OPTION_END);
    REQUIRE(px, "cannot start the proxy");
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(px, MHD_DAEMON_INFO_BIND_PORT);
    REQUIRE(di && di->port);
    px_port = di->port;
}

/* ------------------------------------------------------------ index snapshots */

typedef struct {
    char *key;                  /* "uri\tordinal\ttext" */
    float v[64];
    bool has_vec;
} row;

typedef struct {
    row *rows;
    size_t n;
    int64_t docs;
    int64_t chunks_without_vector;
    idx_fingerprint fp;
} snap;

static void snap_free(snap *s) {
    for (size_t i = 0; i < s->n; i++) free(s->rows[i].key);
    free(s->rows);
    memset(s, 0, sizeof *s);
}

/* Every chunk of the index at d (by uri, ordinal) with its vector. */
static void take(const char *d, snap *out) {
    memset(out, 0, sizeof *out);
    idx_params ip = idx_default_params();
    ip.read_only = true;
    idx_store *s = NULL;
    REQUIRE(idx_open(d, &ip, &s) == IDX_OK, "open %s: %s", d, s ? idx_errmsg(s) : "?");
    REQUIRE(idx_fingerprint_get(s, &out->fp) == IDX_OK);
    sqlite3 *db = idx_debug_db(s);
    sqlite3_stmt *st;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT d.uri, c.ordinal, c.text, c.id FROM chunks c JOIN documents d ON d.id = c.doc_id "
                                   "ORDER BY d.uri, c.ordinal", -1, &st, NULL) == SQLITE_OK);
    size_t cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 64;
            out->rows = realloc(out->rows, cap * sizeof *out->rows);
            REQUIRE(out->rows);
        }
        row *r = &out->rows[out->n++];
        memset(r, 0, sizeof *r);
        int kl = asprintf(&r->key, "%s\t%d\t%s", sqlite3_column_text(st, 0), sqlite3_column_int(st, 1),
                          sqlite3_column_text(st, 2));
        REQUIRE(kl > 0);
        r->has_vec = out->fp.dim == 64 && idx_chunk_vector(s, sqlite3_column_int64(st, 3), r->v, 64) == IDX_OK;
    }
    sqlite3_finalize(st);
    REQUIRE(sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM documents), "
                                   "(SELECT count(*) FROM chunks WHERE id NOT IN (SELECT chunk_id FROM vectors))", -1, &st, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    out->docs = sqlite3_column_int64(st, 0);
    out->chunks_without_vector = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    idx_close(s);
}

static double cosine(const float *a, const float *b) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < 64; i++) { ab += (double)a[i] * b[i]; aa += (double)a[i] * a[i]; bb += (double)b[i] * b[i]; }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

/* The same chunks (uri, ordinal, text) with vectors whose cosine is at
 * least min_cos; returns the worst cosine. */
static double same_rows(const snap *a, const snap *b, double min_cos) {
    CHECK(a->n == b->n, "%zu chunks vs %zu", a->n, b->n);
    double worst = 1;
    for (size_t i = 0; i < a->n && i < b->n; i++) {
        if (strcmp(a->rows[i].key, b->rows[i].key) != 0) {
            CHECK(0, "row %zu differs: %.80s | %.80s", i, a->rows[i].key, b->rows[i].key);
            break;
        }
        CHECK(a->rows[i].has_vec && b->rows[i].has_vec, "row %zu without a vector", i);
        double c = cosine(a->rows[i].v, b->rows[i].v);
        if (c < worst) worst = c;
    }
    CHECK(worst >= min_cos, "worst cosine %.6f < %.6f", worst, min_cos);
    return worst;
}

/* Every document of the partial index p is whole: each of its chunks is
 * in the complete index c, with as many chunks per document. */
static void only_whole_docs(const snap *p, const snap *c) {
    CHECK_EQ_INT(p->chunks_without_vector, 0);
    size_t j = 0;
    for (size_t i = 0; i < p->n; i++) {
        while (j < c->n && strcmp(c->rows[j].key, p->rows[i].key) < 0) j++;
        CHECK(j < c->n && strcmp(c->rows[j].key, p->rows[i].key) == 0, "a chunk the complete index lacks: %.80s", p->rows[i].key);
    }
    /* per document: the chunk count of the complete one */
    for (size_t i = 0; i < p->n;) {
        const char *tab = strchr(p->rows[i].key, '\t');
        size_t ul = (size_t)(tab - p->rows[i].key);
        size_t np = 0, nc = 0;
        while (i + np < p->n && strncmp(p->rows[i + np].key, p->rows[i].key, ul + 1) == 0) np++;
        for (size_t k = 0; k < c->n; k++)
            if (strncmp(c->rows[k].key, p->rows[i].key, ul + 1) == 0) nc++;
        CHECK(np == nc, "%.*s: %zu of %zu chunks stored", (int)ul, p->rows[i].key, np, nc);
        i += np;
    }
}

/* ------------------------------------------------------------ cases */

static char idx_r1[700];

TEST(remote_vectors_equal_local) {
    setup();
    snprintf(idx_r1, sizeof idx_r1, "%s/r1", dir);
    char *o = NULL;
    int rc = run(&o, "%s ingest data/sample --index %s -m %s --llm-url %s/v1 --llm-embeddings --embed-parallel 1",
                 mrag, test_shq(idx_r1), test_shq(model_a), url_a);
    CHECK(rc == 0, "exit %d: %s", rc, o);
    CHECK(o && strstr(o, "18 added"), "%s", o);
    free(o);
    snap l, r;
    take(idx_local, &l);
    take(idx_r1, &r);
    CHECK(l.n > 50, "%zu chunks", l.n);
    double w = same_rows(&l, &r, 0.9999);
    printf("  worst cosine remote vs local: %.7f over %zu chunks\n", w, r.n);
    /* the served model's sha256 is the local model's */
    CHECK_EQ_STR(r.fp.model_sha256, l.fp.model_sha256);
    CHECK_EQ_INT(r.fp.dim, 64);
    /* a second run finds everything unchanged and sends nothing */
    rc = run(&o, "%s ingest data/sample --index %s --llm-url %s/v1 --llm-embeddings", mrag, test_shq(idx_r1), url_a);
    CHECK(rc == 0 && o && strstr(o, "18 unchanged"), "exit %d: %s", rc, o);
    free(o);
    /* asking locally with the same model works on the remote-built index */
    rc = run(&o, "%s search --index %s -m %s 'VPN setup'", mrag, test_shq(idx_r1), test_shq(model_a));
    CHECK(rc == 0, "search: exit %d: %s", rc, o);
    free(o);
    snap_free(&l);
    snap_free(&r);
}

TEST(parallel_equals_serial) {
    setup();
    REQUIRE(idx_r1[0], "needs remote_vectors_equal_local");
    char idx4[700], *o = NULL;
    snprintf(idx4, sizeof idx4, "%s/r4", dir);
    int rc = run(&o, "%s ingest data/sample --index %s -m %s --llm-url %s/v1 --llm-embeddings --embed-parallel 4 --embed-batch 3",
                 mrag, test_shq(idx4), test_shq(model_a), url_a);
    CHECK(rc == 0, "exit %d: %s", rc, o);
    free(o);
    snap a, b;
    take(idx_r1, &a);
    take(idx4, &b);
    same_rows(&a, &b, 0.999999);
    snap_free(&a);
    snap_free(&b);
}

/* Without -m the chunks are sized by the estimate; every chunk still gets
 * its vector and the fingerprint is the server's. */
TEST(no_local_model) {
    setup();
    char d[700], *o = NULL;
    snprintf(d, sizeof d, "%s/nomodel", dir);
    int rc = run(&o, "%s ingest data/sample --index %s --llm-url %s/v1 --llm-embeddings", mrag, test_shq(d), url_a);
    CHECK(rc == 0 && o && strstr(o, "18 added"), "exit %d: %s", rc, o);
    free(o);
    snap a, l;
    take(d, &a);
    take(idx_local, &l);
    CHECK(a.n >= l.n, "estimate chunks %zu, real-token chunks %zu", a.n, l.n);
    CHECK_EQ_INT(a.chunks_without_vector, 0);
    CHECK_EQ_STR(a.fp.model_sha256, l.fp.model_sha256);
    snap_free(&a);
    snap_free(&l);
    /* usage: --llm-embeddings without --llm-url, --layer with a server */
    rc = run(&o, "%s ingest data/sample --index %s --llm-embeddings", mrag, test_shq(d));
    CHECK(rc == 2, "exit %d: %s", rc, o);
    free(o);
    rc = run(&o, "%s ingest data/sample --index %s --llm-url %s/v1 --llm-embeddings --layer 0", mrag, test_shq(d), url_a);
    CHECK(rc == 2, "exit %d: %s", rc, o);
    free(o);
}

TEST(other_model_refused) {
    setup();
    REQUIRE(idx_r1[0], "needs remote_vectors_equal_local");
    char *o = NULL;
    char d[700];
    snprintf(d, sizeof d, "%s/touched", dir);
    /* a changed file must be re-embedded: with server B's model, refused */
    int rc = run(&o, "%s ingest data/sample --index %s --llm-url %s/v1 --llm-embeddings", mrag, test_shq(idx_r1), url_b);
    CHECK(rc == 1, "exit %d: %s", rc, o);
    CHECK(o && strstr(o, "--reindex"), "%s", o);
    free(o);
    rc = run(&o, "%s ask --index %s --llm-url %s/v1 --llm-embeddings 'How do I set up the VPN?'", mrag, test_shq(idx_r1), url_b);
    CHECK(rc != 0 && o && strstr(o, "not the one the index was built with"), "exit %d: %s", rc, o);
    free(o);
    /* a local model other than the served one: refused too */
    rc = run(&o, "%s ingest data/sample --index %s -m %s --threads 1", mrag, test_shq(idx_r1), test_shq(model_b));
    CHECK(rc == 1 && o && strstr(o, "--reindex"), "exit %d: %s", rc, o);
    free(o);
}

/* A server that reports no sha256: the fingerprint is its model's name
 * (and the dimension); another name is refused. */
TEST(name_fingerprint) {
    setup();
    px_start(PX_PASS, 0, true);
    char d[700], *o = NULL;
    snprintf(d, sizeof d, "%s/byname", dir);
    int rc = run(&o, "%s ingest data/sample/recipes --index %s -m %s --llm-url http://127.0.0.1:%d/v1 --llm-embeddings",
                 mrag, test_shq(d), test_shq(model_a), px_port);
    CHECK(rc == 0, "exit %d: %s", rc, o);
    free(o);
    snap a, l;
    take(d, &a);
    take(idx_local, &l);
    CHECK(strcmp(a.fp.model_sha256, l.fp.model_sha256) != 0, "a name fingerprint, not the file's sha256");
    snap_free(&a);
    snap_free(&l);
    /* the same name again: accepted (unchanged); another name: refused */
    rc = run(&o, "%s ingest data/sample/recipes --index %s --llm-url http://127.0.0.1:%d/v1 --llm-embeddings", mrag,
             test_shq(d), px_port);
    CHECK(rc == 0, "exit %d: %s", rc, o);
    free(o);
    rc = run(&o, "%s ingest data/sample/recipes --index %s --llm-url http://127.0.0.1:%d/v1 --llm-embeddings --llm-model other-model",
             mrag, test_shq(d), px_port);
    CHECK(rc == 1 && o && strstr(o, "served-model-x") && strstr(o, "by name only"), "exit %d: %s", rc, o);
    free(o);
    rc = run(&o, "%s ask --index %s --llm-url http://127.0.0.1:%d/v1 --llm-model other-model --llm-embeddings 'pasta?'", mrag,
             test_shq(d), px_port);
    CHECK(rc != 0 && o && strstr(o, "other-model") && strstr(o, "served-model-x"), "exit %d: %s", rc, o);
    free(o);
    /* a local model: its sha256 is not the name's */
    rc = run(&o, "%s search --index %s -m %s pasta", mrag, test_shq(d), test_shq(model_a));
    CHECK(rc != 0, "exit %d: %s", rc, o);
    free(o);
}

/* The server fails after a few requests (mode), then recovers: the
 * failed run leaves whole documents only, the rerun completes it exactly. */
static void fail_then_resume(int mode, const char *name) {
    setup();
    REQUIRE(idx_r1[0], "needs remote_vectors_equal_local");
    px_start(mode, 6, false);
    char d[700], *o = NULL;
    snprintf(d, sizeof d, "%s/%s", dir, name);
    int rc = run(&o, "%s ingest data/sample --index %s -m %s --llm-url http://127.0.0.1:%d/v1 --llm-embeddings "
                     "--embed-batch 2 --embed-parallel 2",
                 mrag, test_shq(d), test_shq(model_a), px_port);
    CHECK(rc == 1, "the failed run: exit %d: %s", rc, o);
    CHECK(o && strstr(o, "embedding server failed"), "%s", o);
    free(o);
    CHECK(atomic_load(&px_failed) >= 3, "%d failed requests (retried)", atomic_load(&px_failed));
    snap full, part;
    take(idx_r1, &full);
    take(d, &part);
    CHECK(part.docs > 0 && part.docs < 18, "%lld documents after the failure", (long long)part.docs);
    only_whole_docs(&part, &full);
    size_t n_before = part.n;
    snap_free(&part);
    /* the server is back: the rerun embeds only what is missing */
    px_start(PX_PASS, 0, false);
    rc = run(&o, "%s ingest data/sample --index %s -m %s --llm-url http://127.0.0.1:%d/v1 --llm-embeddings "
                 "--embed-batch 2 --embed-parallel 2",
             mrag, test_shq(d), test_shq(model_a), px_port);
    CHECK(rc == 0, "the rerun: exit %d: %s", rc, o);
    CHECK(o && strstr(o, "0 failed") && !strstr(o, " 0 unchanged"), "%s", o);
    free(o);
    size_t sent = (size_t)atomic_load(&px_embeds);
    size_t need = (full.n - n_before + 1) / 2 + 18;     /* batches of 2, at most one odd batch per document */
    CHECK(sent <= need, "the rerun sent %zu requests for %zu missing chunks", sent, full.n - n_before);
    take(d, &part);
    same_rows(&full, &part, 0.999999);
    CHECK_EQ_INT(part.docs, 18);
    CHECK_EQ_INT(part.chunks_without_vector, 0);
    snap_free(&part);
    snap_free(&full);
    /* the index is consistent (FAISS and SQLite) */
    rc = run(&o, "%s check --index %s", mrag, test_shq(d));
    CHECK(rc == 0, "check: exit %d: %s", rc, o);
    free(o);
}

TEST(server_500s_then_resume) { fail_then_resume(PX_FAIL500, "f500"); }
TEST(connections_dropped_then_resume) { fail_then_resume(PX_DROP, "fdrop"); }

/* The API key goes to the embedding server as a Bearer token. */
TEST(api_key_sent) {
    setup();
    px_start(PX_PASS, 0, false);
    char kf[700], d[700], *o = NULL;
    snprintf(kf, sizeof kf, "%s/key", dir);
    REQUIRE(test_write_file(kf, "emb-key-77aa\n", 13) == 0);
    chmod(kf, 0600);
    snprintf(d, sizeof d, "%s/withkey", dir);
    int rc = run(&o, "%s ingest data/sample/recipes --index %s --llm-url http://127.0.0.1:%d/v1 --llm-embeddings --llm-key-file %s",
                 mrag, test_shq(d), px_port, test_shq(kf));
    CHECK(rc == 0, "exit %d: %s", rc, o);
    CHECK(o && !strstr(o, "emb-key-77aa"), "the key in the output: %s", o);
    free(o);
    pthread_mutex_lock(&px_mu);
    CHECK_EQ_STR(px_auth_seen, "Bearer emb-key-77aa");
    pthread_mutex_unlock(&px_mu);
}

/* An `mrag serve --lora`: it reports base + adapter as its model (the
 * fingerprint a local ingest with the same --lora records), so remote and
 * local ingests agree, and its vectors are the adapted ones. */
TEST(served_lora_is_the_fingerprint) {
    setup();
    char adapter[700], cmd[4000], lidx[700], ridx[700], log[700], url[64], *o = NULL;
    snprintf(adapter, sizeof adapter, "%s/lora.gguf", dir);
    snprintf(cmd, sizeof cmd, "%s/mkmodel --lora-of %s --lora-rank 4 --lora-targets q,k,v,o,gate,up,down,embd --seed 5 --out %s 2>/dev/null",
             test_build_dir(), test_shq(model_a), test_shq(adapter));
    REQUIRE(system(cmd) == 0, "%s", cmd);
    snprintf(lidx, sizeof lidx, "%s/lora-local", dir);
    snprintf(ridx, sizeof ridx, "%s/lora-remote", dir);
    int rc = run(&o, "%s ingest data/sample/recipes --index %s -m %s --lora %s --threads 1", mrag, test_shq(lidx),
                 test_shq(model_a), test_shq(adapter));
    REQUIRE(rc == 0, "%s", o);
    free(o);
    snprintf(log, sizeof log, "%s/lora.err", dir);
    const char *args[] = {"--index", lidx, "-m", model_a, "--lora", adapter, "--listen", "127.0.0.1:0", "--threads", "1", NULL};
    pid_t srv = test_serve_spawn(args, log, url, sizeof url);
    rc = run(&o, "%s ingest data/sample/recipes --index %s -m %s --llm-url %s/v1 --llm-embeddings", mrag, test_shq(ridx),
             test_shq(model_a), url);
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
    CHECK(rc == 0, "exit %d: %s", rc, o);
    free(o);
    snap l, r, base;
    take(lidx, &l);
    take(ridx, &r);
    take(idx_local, &base);
    CHECK_EQ_STR(r.fp.model_sha256, l.fp.model_sha256);
    CHECK(strcmp(r.fp.model_sha256, base.fp.model_sha256) != 0, "the adapter is part of the fingerprint");
    same_rows(&l, &r, 0.9999);
    snap_free(&l);
    snap_free(&r);
    snap_free(&base);
}

/* A server that refuses one document's input (HTTP 400): that document
 * fails with the server's message, the others are stored, exit 0; an
 * older version of the refused document is removed, as for any file that
 * now fails. */
TEST(refused_input_fails_only_its_document) {
    setup();
    px_start(PX_REFUSE_MARKED, 0, false);
    char docs[700], d[700], *o = NULL;
    snprintf(docs, sizeof docs, "%s/refuse-docs", dir);
    snprintf(d, sizeof d, "%s/refuse-idx", dir);
    mkdir(docs, 0755);
    test_put_file(docs, "a.md", "# Alpha\n\nThe alpha document is fine.\n");
    test_put_file(docs, "b.md", "# Beta\n\nThe beta document is fine too.\n");
    test_put_file(docs, "c.md", "# Gamma\n\nGamma holds nothing odd yet.\n");
    int rc = run(&o, "%s ingest %s --index %s --llm-url http://127.0.0.1:%d/v1 --llm-embeddings", mrag, test_shq(docs),
                 test_shq(d), px_port);
    CHECK(rc == 0 && o && strstr(o, "3 added"), "exit %d: %s", rc, o);
    free(o);
    test_put_file(docs, "c.md", "# Gamma\n\nGamma now holds a Refusemarker the server will not take.\n");
    rc = run(&o, "%s ingest %s --index %s --llm-url http://127.0.0.1:%d/v1 --llm-embeddings", mrag, test_shq(docs),
             test_shq(d), px_port);
    CHECK(rc == 0 && o && strstr(o, "1 failed") && strstr(o, "input is too long for this model") && strstr(o, "c.md"),
          "exit %d: %s", rc, o);
    free(o);
    snap a;
    take(d, &a);
    CHECK_EQ_INT(a.docs, 2);
    for (size_t i = 0; i < a.n; i++) CHECK(!strstr(a.rows[i].key, "Gamma"), "the old version stayed: %s", a.rows[i].key);
    snap_free(&a);
}

/* ------------------------------------------------------------ many small files */

#define N_SMALL 40
static char small_docs[700], small_local[700];

/* 40 short files (one chunk each with --chunk-tokens 64), every tenth a
 * long one (several chunks), so batches hold several documents and some
 * documents span two batches; and their local index. */
static void small_setup(void) {
    if (small_docs[0]) return;
    snprintf(small_docs, sizeof small_docs, "%s/small", dir);
    snprintf(small_local, sizeof small_local, "%s/small-local", dir);
    mkdir(small_docs, 0755);
    static const char *words[] = {"router", "invoice", "kettle", "glacier", "violin", "ledger", "orchard", "compass"};
    for (int i = 0; i < N_SMALL; i++) {
        char name[32], text[4096];
        snprintf(name, sizeof name, "f%02d.md", i);
        int n = snprintf(text, sizeof text, "# Note %d\n\nThe %s note number %d says the %s is on shelf %d.\n", i,
                         words[i % 8], i, words[(i * 3) % 8], i * 7);
        if (i % 10 == 5)
            for (int k = 0; k < 12 && n < 3500; k++)
                n += snprintf(text + n, sizeof text - (size_t)n,
                              "\nParagraph %d of note %d: the %s and the %s were checked on day %d of the audit.\n", k, i,
                              words[k % 8], words[(k + i) % 8], k * 3 + i);
        test_put_file(small_docs, name, text);
    }
    char *o = NULL;
    int rc = run(&o, "%s ingest %s --index %s -m %s --threads 1 --chunk-tokens 64 --overlap 8", mrag, test_shq(small_docs),
                 test_shq(small_local), test_shq(model_a));
    REQUIRE(rc == 0, "local ingest: %s", o);
    free(o);
}

/* Batches are filled across documents: a folder of small files costs
 * ceil(chunks / batch) requests, not one per file, and gives the rows and
 * vectors of a local ingest. */
TEST(small_files_share_batches) {
    setup();
    small_setup();
    px_start(PX_PASS, 0, false);
    char d[700], *o = NULL;
    snprintf(d, sizeof d, "%s/small-remote", dir);
    int rc = run(&o, "%s ingest %s --index %s -m %s --chunk-tokens 64 --overlap 8 --llm-url http://127.0.0.1:%d/v1 "
                     "--llm-embeddings --embed-batch 16 --embed-parallel 3",
                 mrag, test_shq(small_docs), test_shq(d), test_shq(model_a), px_port);
    CHECK(rc == 0 && o && strstr(o, "40 added"), "exit %d: %s", rc, o);
    free(o);
    snap l, r;
    take(small_local, &l);
    take(d, &r);
    CHECK(l.n > N_SMALL + 8, "%zu chunks: the long files should have several", l.n);
    same_rows(&l, &r, 0.9999);
    CHECK_EQ_INT(r.docs, N_SMALL);
    int sent = atomic_load(&px_embeds);
    int want = 1 + (int)((l.n + 15) / 16);      /* the dimension probe, then full batches */
    printf("  %zu chunks of %d files in %d requests (with the probe)\n", l.n, N_SMALL, sent);
    CHECK(sent == want, "%d requests for %zu chunks in batches of 16 (want %d)", sent, l.n, want);
    snap_free(&l);
    snap_free(&r);
}

/* A snapshot key from its file name on ("f01.md\t0\ttext"). */
static const char *after_dir(const char *key) {
    const char *tab = strchr(key, '\t'), *slash = NULL;
    for (const char *p = key; p < tab; p++)
        if (*p == '/') slash = p;
    return slash ? slash + 1 : key;
}

/* The server refuses a batch holding one bad document among others: the
 * batch is split by document, only that file fails, the others are
 * stored with their vectors. */
TEST(refused_input_in_a_mixed_batch) {
    setup();
    small_setup();
    char docs[700], d[700], *o = NULL;
    snprintf(docs, sizeof docs, "%s/small-refuse", dir);
    snprintf(d, sizeof d, "%s/small-refuse-idx", dir);
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "cp -a %s %s", test_shq(small_docs), test_shq(docs));
    REQUIRE(system(cmd) == 0);
    test_put_file(docs, "f12.md", "# Note 12\n\nThis note carries a Refusemarker the server will not take.\n");
    px_start(PX_REFUSE_MARKED, 0, false);
    int rc = run(&o, "%s ingest %s --index %s -m %s --chunk-tokens 64 --overlap 8 --llm-url http://127.0.0.1:%d/v1 "
                     "--llm-embeddings --embed-batch 16 --embed-parallel 2",
                 mrag, test_shq(docs), test_shq(d), test_shq(model_a), px_port);
    CHECK(rc == 0 && o && strstr(o, "39 added") && strstr(o, "1 failed"), "exit %d: %s", rc, o ? o : "");
    CHECK(o && strstr(o, "f12.md") && strstr(o, "input is too long for this model"), "%s", o ? o : "");
    /* only f12.md is named as failed */
    for (int i = 0; i < N_SMALL && o; i++) {
        if (i == 12) continue;
        char name[32];
        snprintf(name, sizeof name, "f%02d.md", i);
        const char *at = strstr(o, name);
        const char *eol = at ? strchr(at, '\n') : NULL;
        CHECK(!at || !eol || !memmem(at, (size_t)(eol - at), "too long", 8), "%s reported refused: %s", name, o);
    }
    free(o);
    snap l, r;
    take(small_local, &l);
    take(d, &r);
    CHECK_EQ_INT(r.docs, N_SMALL - 1);
    CHECK_EQ_INT(r.chunks_without_vector, 0);
    /* every row but f12.md's equals the local one (the file names, then
     * ordinal and text: the folders differ) */
    size_t j = 0, compared = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (strstr(l.rows[i].key, "/f12.md\t")) continue;
        CHECK(j < r.n && strcmp(after_dir(l.rows[i].key), after_dir(r.rows[j].key)) == 0, "row %zu: %.60s", i,
              l.rows[i].key);
        if (j >= r.n) break;
        CHECK(cosine(l.rows[i].v, r.rows[j].v) >= 0.9999, "row %zu's vector", i);
        j++;
        compared++;
    }
    CHECK(j == r.n, "%zu extra rows", r.n - j);
    CHECK(compared + 1 <= l.n && compared > N_SMALL, "%zu rows compared", compared);
    /* the refused batch was sent again split by document: more requests
     * than batches, but fewer than files */
    int sent = atomic_load(&px_embeds);
    CHECK(sent > 1 + (int)((r.n + 1 + 15) / 16) && sent < N_SMALL, "%d requests", sent);
    snap_free(&l);
    snap_free(&r);
}

/* A server that fails mid-run (500s after the probe and 2 batches): whole documents
 * only; the rerun sends only the missing chunks, batched across files,
 * and ends with the rows of a local ingest. */
TEST(small_files_fail_then_resume) {
    setup();
    small_setup();
    px_start(PX_FAIL500, 3, false);
    char d[700], *o = NULL;
    snprintf(d, sizeof d, "%s/small-fail", dir);
    const char *opts = "--chunk-tokens 64 --overlap 8 --llm-embeddings --embed-batch 8 --embed-parallel 1";
    int rc = run(&o, "%s ingest %s --index %s -m %s --llm-url http://127.0.0.1:%d/v1 %s", mrag, test_shq(small_docs),
                 test_shq(d), test_shq(model_a), px_port, opts);
    CHECK(rc == 1 && o && strstr(o, "embedding server failed"), "the failed run: exit %d: %s", rc, o);
    free(o);
    snap full, part;
    take(small_local, &full);
    take(d, &part);
    /* two batches of 8 chunks came back: the documents they complete */
    CHECK(part.docs >= 4 && part.docs < N_SMALL, "%lld documents after the failure", (long long)part.docs);
    CHECK(part.n <= 16, "%zu chunks stored from 16 embedded", part.n);
    only_whole_docs(&part, &full);
    size_t missing = full.n - part.n;
    snap_free(&part);
    px_start(PX_PASS, 0, false);
    rc = run(&o, "%s ingest %s --index %s -m %s --llm-url http://127.0.0.1:%d/v1 %s", mrag, test_shq(small_docs),
             test_shq(d), test_shq(model_a), px_port, opts);
    CHECK(rc == 0 && o && strstr(o, "0 failed"), "the rerun: exit %d: %s", rc, o);
    free(o);
    int sent = atomic_load(&px_embeds);
    CHECK(sent == 1 + (int)((missing + 7) / 8), "the rerun sent %d requests for %zu missing chunks", sent, missing);
    take(d, &part);
    same_rows(&full, &part, 0.9999);
    CHECK_EQ_INT(part.docs, N_SMALL);
    snap_free(&part);
    snap_free(&full);
    rc = run(&o, "%s check --index %s", mrag, test_shq(d));
    CHECK(rc == 0, "check: exit %d: %s", rc, o);
    free(o);
}

/* ------------------------------------------------------------ fusion weights */

static void fusion_of(const char *d, rag_fusion *f) {
    idx_params ip = idx_default_params();
    ip.read_only = true;
    idx_store *s = NULL;
    REQUIRE(idx_open(d, &ip, &s) == IDX_OK, "open %s", d);
    int rc = rag_fusion_load(s, f);
    idx_close(s);
    REQUIRE(rc == RAG_OK, "%s holds no fusion weights", d);
}

/* Fusion weights within 0.01 (weights, gate, MRR) and from as many
 * pseudo-queries. */
static void same_fusion(const rag_fusion *a, const rag_fusion *b, const char *what) {
    printf("  %s: w_dense %.4f / %.4f, gate %.4f / %.4f, MRR@10 dense %.4f / %.4f, bm25 %.4f / %.4f, hybrid %.4f / %.4f, "
           "%d / %d queries\n", what, a->w_dense, b->w_dense, a->gate_cos, b->gate_cos, a->mrr_dense, b->mrr_dense,
           a->mrr_bm25, b->mrr_bm25, a->mrr_hybrid, b->mrr_hybrid, a->n_queries, b->n_queries);
    CHECK_EQ_STR(a->source, "pseudo");
    CHECK_EQ_STR(b->source, "pseudo");
    CHECK_EQ_INT(a->n_queries, b->n_queries);
    CHECK(fabs(a->w_dense - b->w_dense) <= 0.01 && fabs(a->w_bm25 - b->w_bm25) <= 0.01, "%s: weights %.4f/%.4f vs %.4f/%.4f",
          what, a->w_dense, a->w_bm25, b->w_dense, b->w_bm25);
    CHECK((isinf(a->gate_cos) && isinf(b->gate_cos)) || fabs(a->gate_cos - b->gate_cos) <= 0.01, "%s: gate %.4f vs %.4f",
          what, a->gate_cos, b->gate_cos);
    CHECK(fabs(a->mrr_dense - b->mrr_dense) <= 0.01 && fabs(a->mrr_bm25 - b->mrr_bm25) <= 0.01 &&
              fabs(a->mrr_hybrid - b->mrr_hybrid) <= 0.01,
          "%s: MRR %.4f/%.4f/%.4f vs %.4f/%.4f/%.4f", what, a->mrr_dense, a->mrr_bm25, a->mrr_hybrid, b->mrr_dense,
          b->mrr_bm25, b->mrr_hybrid);
}

/* A remote ingest learns the fusion weights at its end as a local ingest
 * does, embedding the pseudo-queries through the server; `mrag tune
 * --llm-url --llm-embeddings` learns them again the same way. With the
 * shared test model served by `mrag serve`, both equal the weights a
 * local ingest and a local `mrag tune` learn from the same model file. */
TEST(fusion_weights_learned_through_the_server) {
    setup();
    char shared[600];
    snprintf(shared, sizeof shared, "%s", test_require_shared("models/stories260K.gguf"));
    char lidx[700], ridx[700], log[700], url[64], *o = NULL;
    snprintf(lidx, sizeof lidx, "%s/fusion-local", dir);
    snprintf(ridx, sizeof ridx, "%s/fusion-remote", dir);
    int rc = run(&o, "%s ingest data/sample --index %s -m %s --threads 1", mrag, test_shq(lidx), test_shq(shared));
    REQUIRE(rc == 0, "local ingest: %s", o);
    free(o);
    snprintf(log, sizeof log, "%s/fusion.err", dir);
    const char *args[] = {"--index", lidx, "-m", shared, "--listen", "127.0.0.1:0", "--threads", "1", NULL};
    pid_t srv = test_serve_spawn(args, log, url, sizeof url);
    rc = run(&o, "%s ingest data/sample --index %s -m %s --llm-url %s/v1 --llm-embeddings", mrag, test_shq(ridx),
             test_shq(shared), url);
    CHECK(rc == 0 && o && !strstr(o, "not learned"), "remote ingest: exit %d: %s", rc, o ? o : "");
    free(o);
    rag_fusion fl, fr;
    fusion_of(lidx, &fl);
    fusion_of(ridx, &fr);
    same_fusion(&fl, &fr, "after ingest, local vs through the server");
    /* mrag tune: locally with the model file, and through the server */
    char *ol = NULL, *orr = NULL;
    rc = run(&ol, "%s tune --index %s -m %s --threads 1", mrag, test_shq(lidx), test_shq(shared));
    CHECK(rc == 0, "local tune: %s", ol ? ol : "");
    rc = run(&orr, "%s tune --index %s --llm-url %s/v1 --llm-embeddings", mrag, test_shq(ridx), url);
    CHECK(rc == 0 && orr && strstr(orr, "learned from"), "remote tune: exit %d: %s", rc, orr ? orr : "");
    free(ol);
    free(orr);
    fusion_of(lidx, &fl);
    fusion_of(ridx, &fr);
    same_fusion(&fl, &fr, "mrag tune, local vs through the server");
    /* a server with another model is refused, and the weights stay */
    rc = run(&o, "%s tune --index %s --llm-url %s/v1 --llm-embeddings", mrag, test_shq(ridx), url_a);
    CHECK(rc == 1 && o && strstr(o, "not the one the index was built with"), "exit %d: %s", rc, o ? o : "");
    free(o);
    rag_fusion again;
    fusion_of(ridx, &again);
    CHECK(again.w_dense == fr.w_dense && again.n_queries == fr.n_queries, "the weights changed");
    /* usage: --llm-url alone, --layer with a server */
    rc = run(&o, "%s tune --index %s --llm-url %s/v1", mrag, test_shq(ridx), url);
    CHECK(rc == 2, "exit %d: %s", rc, o ? o : "");
    free(o);
    rc = run(&o, "%s tune --index %s --llm-url %s/v1 --llm-embeddings --layer auto", mrag, test_shq(ridx), url);
    CHECK(rc == 2, "exit %d: %s", rc, o ? o : "");
    free(o);
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
}

TEST_MAIN(RUN(remote_vectors_equal_local); RUN(parallel_equals_serial); RUN(no_local_model); RUN(other_model_refused);
          RUN(name_fingerprint); RUN(server_500s_then_resume); RUN(connections_dropped_then_resume); RUN(api_key_sent); RUN(served_lora_is_the_fingerprint);
          RUN(refused_input_fails_only_its_document); RUN(small_files_share_batches); RUN(refused_input_in_a_mixed_batch);
          RUN(small_files_fail_then_resume); RUN(fusion_weights_learned_through_the_server);)
