/* serve_http.c — `mrag serve` HTTP layer on libmicrohttpd (a thread per
 * connection): routing, API keys, body limits, the endpoints, SSE through
 * response callbacks, one log line per request, Prometheus metrics. */
#define _GNU_SOURCE
#include "app/serve.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

extern const char app_serve_page[];
extern const size_t app_serve_page_len;
const char *app_serve_page_csp(void);

static const char *const ep_names[APP_EP_COUNT] = {
    "/", "/healthz", "/metrics", "/v1/chat/completions", "/v1/embeddings", "/v1/models", "/api/ask", "/api/search",
    "/api/passage", "/api/collections", "other",
};
static const double hist_bounds[APP_HIST_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

/* Per-request state (MHD's con_cls). */
typedef struct {
    app_server *srv;
    double t0;
    int ep;
    char method[12];
    char path[256];
    int status;
    int retry_after;            /* 503: seconds */
    char key_name[64];
    char req_id[32];
    char url_colls[128];        /* NAMES of a /c/NAMES/... path (comma-separated) */
    bool has_url_colls;
    char *body;
    size_t body_len, body_cap;
    bool too_large, responded;
    bool close_conn;            /* the response ends the connection (bad framing) */
} app_req;

/* ------------------------------------------------------------ responses */

static enum MHD_Result send_bytes(struct MHD_Connection *c, app_req *rq, int status, const char *ctype, const char *body,
                                  size_t len, bool copy) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_MUST_FREE);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "X-Request-Id", rq->req_id);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (rq->close_conn) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"mrag\"");
    if (status == 405) {
        const char *allow = rq->ep == APP_EP_CHAT || rq->ep == APP_EP_EMBED || rq->ep == APP_EP_ASK ? "POST" : "GET, HEAD";
        MHD_add_response_header(r, "Allow", allow);
    }
    if (status == 503) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", rq->retry_after > 0 ? rq->retry_after : 5);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    rq->status = status;
    rq->responded = true;
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *c, app_req *rq, int status, char *owned) {
    if (!owned) {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"code\":500}}";
        return send_bytes(c, rq, 500, "application/json", oom, sizeof oom - 1, true);
    }
    return send_bytes(c, rq, status, "application/json", owned, strlen(owned), false);
}

/* An OpenAI-style error. retry_after is used with 503. */
static enum MHD_Result send_error(struct MHD_Connection *c, app_req *rq, int status, int retry_after, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum MHD_Result send_error(struct MHD_Connection *c, app_req *rq, int status, int retry_after, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *type = status == 401 ? "authentication_error" : status == 503 ? "overloaded"
                       : status >= 500 ? (status == 504 ? "timeout" : "server_error") : "invalid_request_error";
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNumberToObject(e, "code", status);
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    rq->retry_after = retry_after;
    return send_json(c, rq, status, t);
}

/* ------------------------------------------------------------ helpers */

static int route_plain(const char *url) {
    for (int i = 0; i < APP_EP_OTHER; i++)
        if (strcmp(url, ep_names[i]) == 0) return i;
    if (strcmp(url, "/index.html") == 0) return APP_EP_PAGE;
    return APP_EP_OTHER;
}

static bool ep_needs_key(int ep);

/* The endpoint of url; /c/NAMES/REST is REST (an endpoint that takes a key)
 * for the collections NAMES, which go to rq->url_colls. */
static int route(app_req *rq, const char *url) {
    if (strncmp(url, "/c/", 3) != 0) return route_plain(url);
    const char *names = url + 3, *slash = strchr(names, '/');
    if (!slash || slash == names || (size_t)(slash - names) >= sizeof rq->url_colls) return APP_EP_OTHER;
    int ep = route_plain(slash);
    if (ep == APP_EP_OTHER || !ep_needs_key(ep)) return APP_EP_OTHER;
    snprintf(rq->url_colls, sizeof rq->url_colls, "%.*s", (int)(slash - names), names);
    rq->has_url_colls = true;
    return ep;
}

/* Splits a comma list of names (in place) into out[0..*n); at most cap. */
static size_t split_names(char *list, const char **out, size_t cap) {
    size_t n = 0;
    for (char *t = list, *save = NULL; n < cap && (t = strtok_r(t, ",", &save)); t = NULL) out[n++] = t;
    return n;
}

static bool ep_is_post(int ep) { return ep == APP_EP_CHAT || ep == APP_EP_EMBED || ep == APP_EP_ASK; }
static bool ep_needs_key(int ep) { return ep != APP_EP_PAGE && ep != APP_EP_HEALTHZ && ep != APP_EP_METRICS; }

/* True when the client closed its side of the connection. */
static bool client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
    char b;
    ssize_t n = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0;
}

/* Question tokens (no BOS, control text plain), or -1. */
static int count_tokens(app_server *s, const char *t) {
    if (!s->model) return rag_count_estimate(NULL, t, strlen(t));
    size_t n = 0;
    int32_t tmp[1];
    int st = llm_tokenize(s->model, t, strlen(t), false, false, tmp, 0, &n);
    if (st != LLM_OK && st != LLM_ERR_ARG) return -1;
    return n > 0x7fffffff ? -1 : (int)n;
}

/* ------------------------------------------------------------ generation endpoints */

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    app_job *j = cls;
    app_server *s = j->srv;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (j->deadline > 0 && app_now_s() >= j->deadline && !j->cancel && j->state != APP_JOB_DONE) {
            pthread_mutex_unlock(&s->mu);
            app_job_cancel(s, j, true);
            pthread_mutex_lock(&s->mu);
        }
        if (j->out_len > j->out_sent) {
            size_t n = j->out_len - j->out_sent;
            if (n > max) n = max;
            memcpy(buf, j->out + j->out_sent, n);
            j->out_sent += n;
            pthread_mutex_unlock(&s->mu);
            return (ssize_t)n;
        }
        if (j->state == APP_JOB_DONE) { pthread_mutex_unlock(&s->mu); return MHD_CONTENT_READER_END_OF_STREAM; }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 2;
        if (pthread_cond_timedwait(&j->cv, &s->mu, &ts) == ETIMEDOUT && j->out_len == j->out_sent &&
            j->state != APP_JOB_DONE) {
            /* a comment line: keeps proxies patient and finds a client that left */
            static const char ping[] = ": ping\n\n";
            pthread_mutex_unlock(&s->mu);
            if (max < sizeof ping - 1) return 0;
            memcpy(buf, ping, sizeof ping - 1);
            return (ssize_t)(sizeof ping - 1);
        }
    }
}

static void sse_free(void *cls) {
    app_job *j = cls;
    app_job_cancel(j->srv, j, false);   /* no-op when done */
    app_job_unref(j);
}

/* Queues the job and answers: SSE stream, or waits and sends the JSON. */
static enum MHD_Result run_generation(struct MHD_Connection *c, app_req *rq, app_job *j) {
    app_server *s = rq->srv;
    int retry = 5;
    if (app_job_submit(s, j, &retry) != 0) {
        app_job_unref(j);
        return send_error(c, rq, 503, retry, s->stopping ? "the server is shutting down" : "too many requests are waiting; retry later");
    }
    if (j->stream) {
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_read, j, sse_free);
        if (!r) { app_job_cancel(s, j, false); app_job_unref(j); return MHD_NO; }
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-store");
        MHD_add_response_header(r, "X-Accel-Buffering", "no");
        MHD_add_response_header(r, "X-Request-Id", rq->req_id);
        rq->status = 200;
        rq->responded = true;
        enum MHD_Result ok = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ok;
    }
    pthread_mutex_lock(&s->mu);
    while (j->state != APP_JOB_DONE) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&j->cv, &s->mu, &ts);
        if (j->state == APP_JOB_DONE) break;
        pthread_mutex_unlock(&s->mu);
        if (!j->cancel && app_now_s() >= j->deadline) app_job_cancel(s, j, true);
        else if (!j->cancel && client_gone(c)) app_job_cancel(s, j, false);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    enum MHD_Result ok;
    if (j->timed_out) ok = send_error(c, rq, 504, 0, "the request took longer than %d s (--timeout) and was stopped", s->o.timeout_s);
    else if (j->err)
        ok = send_error(c, rq, j->err_status ? j->err_status : 500, 0, "%s", j->errmsg[0] ? j->errmsg : "the answer failed");
    else ok = send_json(c, rq, 200, j->kind == APP_JOB_CHAT ? app_job_chat_json(j) : app_job_ask_json(j));
    app_job_unref(j);
    return ok;
}

static app_job *new_job(app_req *rq, const app_serve_key *key) {
    app_server *s = rq->srv;
    app_job *j = app_job_new(s);
    if (!j) return NULL;
    j->key = key;
    snprintf(j->key_name, sizeof j->key_name, "%s", rq->key_name);
    snprintf(j->req_id, sizeof j->req_id, "%s", rq->req_id);
    snprintf(j->chat_id, sizeof j->chat_id, "chatcmpl-%s", rq->req_id);
    j->created = (long)time(NULL);
    j->t_arrival = rq->t0;
    j->deadline = rq->t0 + s->o.timeout_s;
    j->max_tokens = s->o.max_tokens;
    j->k = s->o.k;
    j->seed = 42;
    return j;
}

/* The collections of a request: names (the body's, when has) within
 * allowed (the key's, narrowed by a /c/NAMES/ path). 0, or the status of
 * the error in err. */
static int request_collections(app_server *s, uint64_t allowed, bool has, char **names, size_t n, uint64_t *mask,
                               char *err, size_t errlen) {
    if (has) return app_collections_pick(s, allowed, (const char *const *)names, n, mask, err, errlen);
    *mask = allowed;
    if (!allowed) {
        snprintf(err, errlen, "this API key may use none of the collections served here");
        return 403;
    }
    return 0;
}

static enum MHD_Result do_ask(struct MHD_Connection *c, app_req *rq, const app_serve_key *key, uint64_t allowed) {
    app_server *s = rq->srv;
    char err[512];
    app_ask_req a;
    if (app_parse_ask(rq->body, rq->body_len, &a, err, sizeof err) != 0) return send_error(c, rq, 400, 0, "%s", err);
    uint64_t colls;
    int cst = request_collections(s, allowed, a.has_collections, a.collections, a.n_collections, &colls, err, sizeof err);
    if (cst) { app_ask_req_free(&a); return send_error(c, rq, cst, 0, "%s", err); }
    int nt = count_tokens(s, a.question);
    if (nt < 0 || nt > s->o.max_prompt_tokens) {
        app_ask_req_free(&a);
        return send_error(c, rq, 400, 0, "the question has %d tokens; this server takes at most %d (--max-prompt-tokens)", nt,
                          s->o.max_prompt_tokens);
    }
    app_job *j = new_job(rq, key);
    if (!j) { app_ask_req_free(&a); return send_error(c, rq, 500, 0, "out of memory"); }
    j->kind = APP_JOB_ASK;
    j->colls = colls;
    j->retrieval = true;
    j->stream = a.stream;
    j->extractive = a.extractive || s->o.extractive;
    if (a.max_tokens > 0 && a.max_tokens < j->max_tokens) j->max_tokens = a.max_tokens;
    if (a.k > 0) j->k = a.k;
    j->question = a.question;
    a.question = NULL;
    if (a.n_hist) {
        j->hist = calloc(a.n_hist, sizeof *j->hist);
        j->hist_own = calloc(2 * a.n_hist, sizeof *j->hist_own);
        for (size_t i = 0; j->hist && j->hist_own && i < a.n_hist; i++) {
            j->hist[i].question = j->hist_own[j->n_hist_own++] = a.hist_q[i];
            j->hist[i].answer = j->hist_own[j->n_hist_own++] = a.hist_a[i];
            a.hist_q[i] = a.hist_a[i] = NULL;
            j->n_hist++;
        }
    }
    app_ask_req_free(&a);
    return run_generation(c, rq, j);
}

static enum MHD_Result do_chat(struct MHD_Connection *c, app_req *rq, const app_serve_key *key, uint64_t allowed) {
    app_server *s = rq->srv;
    char err[512];
    app_job *j = new_job(rq, key);
    if (!j) return send_error(c, rq, 500, 0, "out of memory");
    if (app_parse_chat(rq->body, rq->body_len, &j->chat, err, sizeof err) != 0) {
        app_job_unref(j);
        return send_error(c, rq, 400, 0, "%s", err);
    }
    app_chat_req *q = &j->chat;
    int cst = request_collections(s, allowed, q->has_collections, q->collections, q->n_collections, &j->colls, err,
                                  sizeof err);
    /* plain chat searches nothing: only named collections are checked */
    if (cst && (q->retrieval || cst != 403)) {
        app_job_unref(j);
        return send_error(c, rq, cst, 0, "%s", err);
    }
    j->kind = APP_JOB_CHAT;
    j->retrieval = q->retrieval;
    j->stream = q->stream;
    j->extractive = q->extractive || s->o.extractive;
    if (q->max_tokens > 0 && q->max_tokens < j->max_tokens) j->max_tokens = q->max_tokens;
    if (q->k > 0) j->k = q->k;
    if (q->temperature >= 0) j->temperature = (float)q->temperature;
    if (q->has_seed) j->seed = q->seed;
    int nt = 0;
    if (q->retrieval) {
        /* the last user message is the question; earlier user/assistant pairs the history */
        j->question = strdup(q->msgs[q->n_msgs - 1].content);
        nt = count_tokens(s, j->question);
        j->hist = calloc(q->n_msgs, sizeof *j->hist);
        for (size_t i = 0; j->hist && i + 1 < q->n_msgs; i++) {
            const app_serve_msg *m = &q->msgs[i];
            if (strcmp(m->role, "system") == 0) { free(j->system); j->system = strdup(m->content); continue; }
            if (strcmp(m->role, "user") == 0) {
                const char *ans = i + 2 < q->n_msgs && strcmp(q->msgs[i + 1].role, "assistant") == 0 ? q->msgs[i + 1].content : NULL;
                if (ans) { j->hist[j->n_hist].question = m->content; j->hist[j->n_hist].answer = ans; j->n_hist++; i++; }
            }
        }
        if (!j->question || !j->hist) { app_job_unref(j); return send_error(c, rq, 500, 0, "out of memory"); }
        /* the system message becomes the preamble, which is not defused */
        const char *ctl = j->system ? llm_chat_find_control(j->system, strlen(j->system)) : NULL;
        if (ctl) {
            app_job_unref(j);
            return send_error(c, rq, 400, 0, "the system message holds the control string %s", ctl);
        }
    } else {
        for (size_t i = 0; i < q->n_msgs; i++) {
            int n = count_tokens(s, q->msgs[i].content);
            if (n < 0) { nt = -1; break; }
            nt += n;
        }
    }
    if (nt < 0 || nt > s->o.max_prompt_tokens) {
        app_job_unref(j);
        return send_error(c, rq, 400, 0, "the %s has %d tokens; this server takes at most %d (--max-prompt-tokens)",
                          q->retrieval ? "question" : "conversation", nt, s->o.max_prompt_tokens);
    }
    return run_generation(c, rq, j);
}

/* ------------------------------------------------------------ cheap endpoints */

/* Documents and chunks of the collections of mask (summed; -1 when one
 * cannot be counted), each counted at most every 2 s (counting scans the
 * FTS index) under a lock of its own: generations never wait. */
static void coll_counts(app_server *s, uint64_t mask, int64_t *docs, int64_t *chunks) {
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);
    *docs = *chunks = 0;
    for (int i = 0; i < s->n_coll; i++) {
        if (!(mask >> i & 1)) continue;
        app_collection *cl = &s->coll[i];
        if (app_now_s() - cl->counted_at > 2 || cl->docs < 0) {
            idx_counts k;
            idx_refresh(cl->stat_store, NULL);
            if (idx_get_counts(cl->stat_store, &k) == IDX_OK) { cl->docs = k.documents; cl->chunks = k.chunks; cl->counted_at = app_now_s(); }
        }
        if (cl->docs < 0 || *docs < 0) *docs = *chunks = -1;
        else { *docs += cl->docs; *chunks += cl->chunks; }
    }
    pthread_mutex_unlock(&mu);
}

/* Every collection's counts summed (healthz, metrics: no names). */
static void index_counts(app_server *s, int64_t *docs, int64_t *chunks) { coll_counts(s, ~0ull, docs, chunks); }

/* GET /api/collections: the collections the caller may use (within a
 * /c/NAMES/ path), with their counts; never one it may not. */
static enum MHD_Result do_collections(struct MHD_Connection *c, app_req *rq, uint64_t allowed) {
    app_server *s = rq->srv;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *d = cJSON_AddArrayToObject(o, "data");
    for (int i = 0; i < s->n_coll; i++) {
        if (!(allowed >> i & 1)) continue;
        int64_t docs, chunks;
        coll_counts(s, 1ull << i, &docs, &chunks);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", s->coll[i].name);
        cJSON_AddStringToObject(e, "object", "collection");
        cJSON_AddNumberToObject(e, "documents", (double)docs);
        cJSON_AddNumberToObject(e, "chunks", (double)chunks);
        cJSON_AddItemToArray(d, e);
    }
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return send_json(c, rq, 200, t);
}

static enum MHD_Result do_healthz(struct MHD_Connection *c, app_req *rq) {
    app_server *s = rq->srv;
    int64_t docs, chunks;
    index_counts(s, &docs, &chunks);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", s->stopping ? "stopping" : "ok");
    cJSON_AddNumberToObject(o, "documents", (double)docs);
    cJSON_AddNumberToObject(o, "chunks", (double)chunks);
    if (s->model_name[0]) cJSON_AddStringToObject(o, "model", s->model_name);
    else cJSON_AddNullToObject(o, "model");
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return send_json(c, rq, 200, t);
}

static enum MHD_Result do_models(struct MHD_Connection *c, app_req *rq) {
    app_server *s = rq->srv;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *d = cJSON_AddArrayToObject(o, "data");
    if (s->model_name[0]) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", s->model_name);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 0);
        cJSON_AddStringToObject(m, "owned_by", "mrag");
        if (s->model) {
            /* what a remote client needs to check that its index fits */
            cJSON *x = cJSON_AddObjectToObject(m, "mrag");
            cJSON_AddStringToObject(x, "sha256", s->model_sha);
            cJSON_AddNumberToObject(x, "n_embd", s->mi.n_embd);
            cJSON_AddNumberToObject(x, "n_ctx_train", s->mi.n_ctx_train);
        }
        cJSON_AddItemToArray(d, m);
    }
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return send_json(c, rq, 200, t);
}

static enum MHD_Result do_search(struct MHD_Connection *c, app_req *rq, const app_serve_key *key, uint64_t allowed) {
    app_server *s = rq->srv;
    const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "q");
    const char *cs = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "collections");
    const char *ks = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "k");
    const char *ms = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mode");
    if (!q || !*q) return send_error(c, rq, 400, 0, "the query parameter q is required");
    if (strlen(q) > 4096) return send_error(c, rq, 400, 0, "q is longer than 4096 bytes");
    int k = 10;
    if (ks) {
        char *end;
        long v = strtol(ks, &end, 10);
        if (!*ks || *end || v < 1 || v > 100) return send_error(c, rq, 400, 0, "k must be an integer from 1 to 100");
        k = (int)v;
    }
    int mode = ms ? rag_search_mode_parse(ms) : RAG_SEARCH_HYBRID;
    if (mode < 0) return send_error(c, rq, 400, 0, "mode must be hybrid, dense or bm25");
    if (mode == RAG_SEARCH_DENSE && !s->can_dense)
        return send_error(c, rq, 400, 0, "dense search needs a local model (-m) or --llm-embeddings");
    int st = 500;
    char err[512];
    uint64_t colls;
    char list[1024];
    const char *names[64];
    size_t nn = 0;
    if (cs) {
        if (strlen(cs) >= sizeof list) return send_error(c, rq, 400, 0, "collections is longer than %zu bytes", sizeof list - 1);
        snprintf(list, sizeof list, "%s", cs);
        if (!(nn = split_names(list, names, 64)))
            return send_error(c, rq, 400, 0, "collections must name 1 to 64 collections (comma-separated)");
    }
    if ((st = request_collections(s, allowed, cs != NULL, (char **)names, nn, &colls, err, sizeof err)))
        return send_error(c, rq, st, 0, "%s", err);
    st = 500;
    char *t = app_search_json(s, key, colls, q, k, mode, &st, err, sizeof err);
    if (!t) return send_error(c, rq, st, 0, "%s", err);
    return send_json(c, rq, 200, t);
}

/* GET /api/passage?id=N: one passage, with the access checks of search. */
static enum MHD_Result do_passage(struct MHD_Connection *c, app_req *rq, const app_serve_key *key, uint64_t allowed) {
    const char *ids = NULL;
    size_t idn = 0;
    if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, "id", 2, &ids, &idn) != MHD_YES || !ids || !idn)
        return send_error(c, rq, 400, 0, "the query parameter id is required");
    int64_t id;
    if (app_parse_passage_id(ids, idn, &id) != 0)   /* the decoded length: an encoded NUL counts */
        return send_error(c, rq, 400, 0, "id must be a passage id (a positive integer)");
    int st = 500;
    char err[512];
    /* the passage's collection: named (as each source and hit says), or
     * the only one the caller may use */
    app_server *s = rq->srv;
    const char *cn = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "collection");
    uint64_t m = allowed;
    if (cn) {
        if (strlen(cn) > 64 || !*cn) return send_error(c, rq, 400, 0, "collection must be one collection name");
        const char *one[1] = {cn};
        if ((st = app_collections_pick(s, allowed, one, 1, &m, err, sizeof err))) return send_error(c, rq, st, 0, "%s", err);
    } else if (!m) {
        return send_error(c, rq, 403, 0, "this API key may use none of the collections served here");
    } else if (m & (m - 1)) {
        return send_error(c, rq, 400, 0, "several collections are served: name the passage's with collection=NAME "
                                         "(each source and search hit says its collection)");
    }
    int coll = __builtin_ctzll(m);
    st = 500;
    char *t = app_passage_json(s, key, coll, id, &st, err, sizeof err);
    if (!t) return send_error(c, rq, st, 0, "%s", err);
    return send_json(c, rq, 200, t);
}

static enum MHD_Result do_embed(struct MHD_Connection *c, app_req *rq) {
    char err[512];
    app_embed_req r;
    if (app_parse_embed(rq->body, rq->body_len, &r, err, sizeof err) != 0) return send_error(c, rq, 400, 0, "%s", err);
    int st = 500;
    char *t = app_embed_json(rq->srv, &r, &st, err, sizeof err);
    app_embed_req_free(&r);
    if (!t) return send_error(c, rq, st, 0, "%s", err);
    return send_json(c, rq, 200, t);
}

/* Appends printf output to a growing buffer. */
typedef struct {
    char *b;
    size_t n, cap;
} strbuf;

static void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *sb, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(sb->b ? sb->b + sb->n : NULL, sb->b ? sb->cap - sb->n : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (sb->b && sb->n + (size_t)n < sb->cap) { sb->n += (size_t)n; return; }
        size_t c = sb->cap ? sb->cap * 2 : 8192;
        while (c < sb->n + (size_t)n + 1) c *= 2;
        char *q = realloc(sb->b, c);
        if (!q) return;
        sb->b = q;
        sb->cap = c;
    }
}

static enum MHD_Result do_metrics(struct MHD_Connection *c, app_req *rq) {
    app_server *s = rq->srv;
    strbuf sb = {0};
    pthread_mutex_lock(&s->mu);
    const app_metrics *m = &s->m;
    sb_printf(&sb, "# HELP mrag_http_requests_total HTTP requests by path and status code.\n"
                   "# TYPE mrag_http_requests_total counter\n");
    for (int e = 0; e < APP_EP_COUNT; e++)
        for (int code = 100; code < 600; code++)
            if (m->requests[e][code])
                sb_printf(&sb, "mrag_http_requests_total{path=\"%s\",code=\"%d\"} %llu\n", ep_names[e], code,
                          (unsigned long long)m->requests[e][code]);
    sb_printf(&sb, "# HELP mrag_http_request_duration_seconds Time from request to the end of the response.\n"
                   "# TYPE mrag_http_request_duration_seconds histogram\n");
    for (int e = 0; e < APP_EP_COUNT; e++) {
        if (!m->count[e]) continue;
        uint64_t cum = 0;
        for (int b = 0; b < APP_HIST_BUCKETS; b++) {
            cum += m->hist[e][b];
            sb_printf(&sb, "mrag_http_request_duration_seconds_bucket{path=\"%s\",le=\"%g\"} %llu\n", ep_names[e],
                      hist_bounds[b], (unsigned long long)cum);
        }
        sb_printf(&sb, "mrag_http_request_duration_seconds_bucket{path=\"%s\",le=\"+Inf\"} %llu\n", ep_names[e],
                  (unsigned long long)m->count[e]);
        sb_printf(&sb, "mrag_http_request_duration_seconds_sum{path=\"%s\"} %.6f\n", ep_names[e], m->sum[e]);
        sb_printf(&sb, "mrag_http_request_duration_seconds_count{path=\"%s\"} %llu\n", ep_names[e],
                  (unsigned long long)m->count[e]);
    }
    sb_printf(&sb, "# HELP mrag_generated_tokens_total Tokens generated by the model.\n"
                   "# TYPE mrag_generated_tokens_total counter\nmrag_generated_tokens_total %llu\n",
              (unsigned long long)m->generated_tokens);
    sb_printf(&sb, "# HELP mrag_generation_tokens_per_second Decode speed of the last answer.\n"
                   "# TYPE mrag_generation_tokens_per_second gauge\nmrag_generation_tokens_per_second %.3f\n",
              m->last_tps);
    sb_printf(&sb, "# HELP mrag_queue_length Generation requests waiting for a slot.\n"
                   "# TYPE mrag_queue_length gauge\nmrag_queue_length %zu\n", s->fifo_n);
    sb_printf(&sb, "# HELP mrag_generations_active Generation slots busy.\n"
                   "# TYPE mrag_generations_active gauge\nmrag_generations_active %d\n", s->active);
    pthread_mutex_unlock(&s->mu);
    if (s->have_keys) {
        pthread_mutex_lock(&s->keys_mu);
        sb_printf(&sb, "# HELP mrag_api_keys API keys in force.\n# TYPE mrag_api_keys gauge\nmrag_api_keys %zu\n", s->keys.n);
        sb_printf(&sb, "# HELP mrag_keys_reloads_total SIGHUP reloads of the keys file.\n"
                       "# TYPE mrag_keys_reloads_total counter\n"
                       "mrag_keys_reloads_total{result=\"ok\"} %llu\nmrag_keys_reloads_total{result=\"error\"} %llu\n",
                  (unsigned long long)s->keys_reloads, (unsigned long long)s->keys_reload_errors);
        sb_printf(&sb, "# HELP mrag_keys_file_error 1 when the last reload failed and older keys are in force.\n"
                       "# TYPE mrag_keys_file_error gauge\nmrag_keys_file_error %d\n", s->keys_file_error ? 1 : 0);
        pthread_mutex_unlock(&s->keys_mu);
    }
    app_conn_counters cc;
    app_conn_get_counters(s->conns, &cc);
    sb_printf(&sb, "# HELP mrag_http_connections_open Connections open.\n"
                   "# TYPE mrag_http_connections_open gauge\nmrag_http_connections_open %zu\n", cc.open);
    sb_printf(&sb, "# HELP mrag_http_connections_waiting_for_head Connections that have not sent a whole request head.\n"
                   "# TYPE mrag_http_connections_waiting_for_head gauge\nmrag_http_connections_waiting_for_head %zu\n",
              cc.waiting_for_head);
    sb_printf(&sb, "# HELP mrag_http_connections_dropped_total Connections the server closed, by reason.\n"
                   "# TYPE mrag_http_connections_dropped_total counter\n"
                   "mrag_http_connections_dropped_total{reason=\"head_timeout\"} %llu\n"
                   "mrag_http_connections_dropped_total{reason=\"body_timeout\"} %llu\n"
                   "mrag_http_connections_dropped_total{reason=\"address_cap\"} %llu\n"
                   "mrag_http_connections_dropped_total{reason=\"too_many_pending_heads\"} %llu\n"
                   "mrag_http_connections_dropped_total{reason=\"address_refused\"} %llu\n",
              (unsigned long long)cc.head_timeouts, (unsigned long long)cc.body_timeouts,
              (unsigned long long)cc.addr_evictions, (unsigned long long)cc.crowd_evictions,
              (unsigned long long)cc.addr_refusals);
    int64_t docs, chunks;
    index_counts(s, &docs, &chunks);
    sb_printf(&sb, "# HELP mrag_index_documents Documents in the index.\n"
                   "# TYPE mrag_index_documents gauge\nmrag_index_documents %lld\n", (long long)docs);
    if (!sb.b) return send_json(c, rq, 500, NULL);
    return send_bytes(c, rq, 200, "text/plain; version=0.0.4; charset=utf-8", sb.b, sb.n, false);
}

static enum MHD_Result do_page(struct MHD_Connection *c, app_req *rq) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(app_serve_page_len, (void *)app_serve_page, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
    /* the page's inline script and style allowed by their sha256 (serve_page.c) */
    MHD_add_response_header(r, "Content-Security-Policy", app_serve_page_csp());
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Request-Id", rq->req_id);
    rq->status = 200;
    rq->responded = true;
    enum MHD_Result ok = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ok;
}

/* ------------------------------------------------------------ dispatch */

/* The key for this request: *key (NULL = anonymous, public only). Returns
 * false (and sets rq->key_name) when a key is required and missing/wrong. */
static bool authenticate(app_server *s, struct MHD_Connection *c, app_req *rq, const app_serve_key **key,
                         bool *presented_bad) {
    *key = NULL;
    *presented_bad = false;
    if (!s->have_keys) { snprintf(rq->key_name, sizeof rq->key_name, "anonymous"); return true; }
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h) { snprintf(rq->key_name, sizeof rq->key_name, "-"); return false; }
    if (strncasecmp(h, "Bearer ", 7) != 0) { *presented_bad = true; snprintf(rq->key_name, sizeof rq->key_name, "-"); return false; }
    const char *t = h + 7;
    while (*t == ' ') t++;
    size_t n = strlen(t);
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t')) n--;
    pthread_mutex_lock(&s->keys_mu);
    *key = app_serve_keys_find(&s->keys, t, n);     /* stays valid: old sets are kept */
    pthread_mutex_unlock(&s->keys_mu);
    if (!*key) { *presented_bad = true; snprintf(rq->key_name, sizeof rq->key_name, "-"); return false; }
    snprintf(rq->key_name, sizeof rq->key_name, "%s", (*key)->name);
    return true;
}

/* The Content-Length and Transfer-Encoding headers of a request head. */
typedef struct {
    const char *names[16], *values[16];
    size_t n;
    bool overflow;
} framing_hdrs;

static enum MHD_Result collect_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    framing_hdrs *f = cls;
    if (!key || (strcasecmp(key, "Content-Length") != 0 && strcasecmp(key, "Transfer-Encoding") != 0)) return MHD_YES;
    if (f->n == 16) { f->overflow = true; return MHD_NO; }
    f->names[f->n] = key;
    f->values[f->n++] = value;
    return MHD_YES;
}

/* Checks a new request's head: Host (DNS rebinding) and framing. Returns
 * 0, or the status to refuse with (why says why). */
static int check_head(app_server *s, struct MHD_Connection *c, char *why, size_t whylen) {
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!app_http_host_allowed(host, !s->have_keys, s->o.allowed_hosts, s->o.n_allowed_hosts)) {
        snprintf(why, whylen, "the Host '%.100s' is not served here (%s)", host ? host : "",
                 s->have_keys ? "see --allowed-host" : "without --keys only loopback names are; see --allowed-host");
        return 403;
    }
    framing_hdrs f;
    memset(&f, 0, sizeof f);
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_framing, &f);
    if (f.overflow) {
        snprintf(why, whylen, "too many Content-Length / Transfer-Encoding headers");
        return 400;
    }
    return app_http_framing_check(f.names, f.values, f.n, why, whylen);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    app_server *s = cls;
    app_req *rq = *con_cls;
    if (!rq) {
        if (!(rq = calloc(1, sizeof *rq))) return MHD_NO;
        rq->srv = s;
        rq->t0 = app_now_s();
        rq->ep = route(rq, url);
        snprintf(rq->method, sizeof rq->method, "%s", method);
        snprintf(rq->path, sizeof rq->path, "%s", url);
        for (char *q = rq->path; *q; q++)      /* the log line stays one line */
            if ((unsigned char)*q < 0x20 || *q == 0x7f) *q = '?';
        for (char *q = rq->method; *q; q++)
            if ((unsigned char)*q < 0x20 || *q == 0x7f) *q = '?';
        pthread_mutex_lock(&s->mu);
        uint64_t id = ++s->next_id;
        s->inflight++;
        pthread_mutex_unlock(&s->mu);
        snprintf(rq->req_id, sizeof rq->req_id, "%08llx%04x", (unsigned long long)id, (unsigned)(rq->t0 * 1000) & 0xffff);
        snprintf(rq->key_name, sizeof rq->key_name, "-");
        *con_cls = rq;
        app_conn_set_state(s->conns, c, APP_CONN_BODY);
        char why[256];
        int bad = check_head(s, c, why, sizeof why);
        if (bad) {
            rq->close_conn = true;  /* what follows this head cannot be trusted */
            return send_error(c, rq, bad, 0, "%s", why);
        }
        bool is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
        bool is_post = strcmp(method, "POST") == 0;
        if (rq->ep == APP_EP_OTHER) return send_error(c, rq, 404, 0, "no such path: %s", url);
        if (ep_is_post(rq->ep) ? !is_post : !is_get)
            return send_error(c, rq, 405, 0, "%s is not allowed on %s", method, url);
        if (ep_needs_key(rq->ep)) {
            const app_serve_key *key;
            bool bad;
            if (!authenticate(s, c, rq, &key, &bad))
                return send_error(c, rq, 401, 0, bad ? "the API key is not valid" : "an API key is required (Authorization: Bearer KEY)");
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->o.max_body)
            return send_error(c, rq, 413, 0, "the body is larger than %zu bytes (--max-body)", s->o.max_body);
        return MHD_YES;
    }
    if (rq->responded) { *upload_size = 0; return MHD_YES; }
    if (*upload_size) {
        /* read incrementally; never keep more than the limit */
        if (!rq->too_large) {
            if (rq->body_len + *upload_size > s->o.max_body) {
                rq->too_large = true;
                free(rq->body);
                rq->body = NULL;
                rq->body_len = rq->body_cap = 0;
            } else {
                if (rq->body_len + *upload_size + 1 > rq->body_cap) {
                    size_t cap = rq->body_cap ? rq->body_cap * 2 : 4096;
                    while (cap < rq->body_len + *upload_size + 1) cap *= 2;
                    if (cap > s->o.max_body + 1) cap = s->o.max_body + 1;
                    char *b = realloc(rq->body, cap);
                    if (!b) return MHD_NO;
                    rq->body = b;
                    rq->body_cap = cap;
                }
                memcpy(rq->body + rq->body_len, upload, *upload_size);
                rq->body_len += *upload_size;
                rq->body[rq->body_len] = 0;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    /* the whole request is here */
    app_conn_set_state(s->conns, c, APP_CONN_BUSY);
    if (rq->too_large) return send_error(c, rq, 413, 0, "the body is larger than %zu bytes (--max-body)", s->o.max_body);
    const app_serve_key *key = NULL;
    bool bad;
    if (ep_needs_key(rq->ep)) authenticate(s, c, rq, &key, &bad);
    else snprintf(rq->key_name, sizeof rq->key_name, "-");
    if (s->stopping && ep_is_post(rq->ep)) return send_error(c, rq, 503, 5, "the server is shutting down");
    /* the collections this caller may use; a /c/NAMES/ path narrows them
     * (a name it may not use is answered as one that does not exist) */
    uint64_t allowed = app_key_collections(s, key);
    if (rq->has_url_colls) {
        const char *names[64];
        size_t nn = split_names(rq->url_colls, names, 64);
        char err[512];
        uint64_t m = 0;
        int st = nn ? app_collections_pick(s, allowed, names, nn, &m, err, sizeof err) : 404;
        if (st) return send_error(c, rq, 404, 0, "%s", nn ? err : "no such collection");
        allowed = m;
    }
    switch (rq->ep) {
    case APP_EP_PAGE: return do_page(c, rq);
    case APP_EP_HEALTHZ: return do_healthz(c, rq);
    case APP_EP_METRICS: return do_metrics(c, rq);
    case APP_EP_MODELS: return do_models(c, rq);
    case APP_EP_SEARCH: return do_search(c, rq, key, allowed);
    case APP_EP_PASSAGE: return do_passage(c, rq, key, allowed);
    case APP_EP_COLLECTIONS: return do_collections(c, rq, allowed);
    case APP_EP_EMBED: return do_embed(c, rq);
    case APP_EP_ASK: return do_ask(c, rq, key, allowed);
    case APP_EP_CHAT: return do_chat(c, rq, key, allowed);
    default: return send_error(c, rq, 404, 0, "no such path");
    }
}

/* One log line per request; metrics. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    app_server *s = cls;
    app_conn_set_state(s->conns, c, APP_CONN_HEAD);    /* waiting for the next request */
    app_req *rq = *con_cls;
    if (!rq) return;
    double dt = app_now_s() - rq->t0;
    int code = rq->status >= 100 && rq->status < 600 ? rq->status : 500;
    pthread_mutex_lock(&s->mu);
    s->m.requests[rq->ep][code]++;
    int b = 0;
    while (b < APP_HIST_BUCKETS && dt > hist_bounds[b]) b++;
    if (b < APP_HIST_BUCKETS) s->m.hist[rq->ep][b]++;
    s->m.sum[rq->ep] += dt;
    s->m.count[rq->ep]++;
    s->inflight--;
    pthread_mutex_unlock(&s->mu);
    fprintf(stderr, "mrag: %s %s %d %.0f ms key=%s id=%s%s\n", rq->method, rq->path, code, dt * 1000, rq->key_name,
            rq->req_id, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

/* Contract: see serve.h. host is a numeric IPv4 or IPv6 address. */
int app_http_start(app_server *s, const char *host, int port, char *err, size_t errlen) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "--listen: '%s' is not a numeric IPv4 or IPv6 address", host);
        return -1;
    }
    app_conn_params cp = app_conn_default_params();
    cp.max_conns = s->o.max_conns > 0 ? s->o.max_conns : cp.max_conns;
    cp.max_per_addr = s->o.max_conns_per_addr;
    cp.max_head = cp.max_conns / 2 > 0 ? cp.max_conns / 2 : 1;
    cp.head_timeout_s = s->o.head_timeout_s > 0 ? s->o.head_timeout_s : cp.head_timeout_s;
    cp.body_timeout_s = s->o.timeout_s;
    if (app_conn_guard_new(&cp, &s->conns) != 0) {
        snprintf(err, errlen, "cannot start the connection watchdog");
        return -1;
    }
    /* A thread per connection: a connection that never finishes its head
     * would hold a thread and a slot; serve_conn.c's accept policy, head
     * and body deadlines keep them from locking others out. */
    s->daemon = MHD_start_daemon(flags, (uint16_t)port, app_conn_accept, s->conns, on_request, s,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_NOTIFY_CONNECTION, app_conn_notify, s->conns,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)cp.max_conns,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(s->o.timeout_s + 60),
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
                                 MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, errno ? strerror(errno) : "libmicrohttpd refused");
        return -1;
    }
    return 0;
}

int app_http_port(app_server *s) {
    const union MHD_DaemonInfo *i = s->daemon ? MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    return i ? (int)i->port : -1;
}

void app_http_quiesce(app_server *s) {
    if (s->daemon) MHD_quiesce_daemon(s->daemon);
}

void app_http_stop(app_server *s) {
    if (s->daemon) MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    app_conn_guard_free(s->conns);
    s->conns = NULL;
}
