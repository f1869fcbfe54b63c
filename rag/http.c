/* http.c — rag/'s one HTTP client (http_internal.h): a libcurl handle per
 * client, bounded or streamed bodies, cancellable transfers, the rate
 * limit, Retry-After, and retries with jittered exponential backoff; used
 * by the wiki connector and the remote engine. */
#include "rag/http_internal.h"
#include "rag/util_internal.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ Retry-After */

long rag_http_retry_after(const char *line, size_t n, time_t now) {
    static const char name[] = "retry-after:";
    const size_t nl = sizeof name - 1;
    if (!line || n <= nl || strncasecmp(line, name, nl) != 0) return -1;
    const char *v = line + nl, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
    if (v == end) return -1;
    if (*v >= '0' && *v <= '9') {
        long s = 0;
        for (const char *p = v; p < end; p++) {
            if (*p < '0' || *p > '9') return -1;
            if (s < RAG_HTTP_RETRY_AFTER_CAP_S) s = s * 10 + (*p - '0');
        }
        return s > RAG_HTTP_RETRY_AFTER_CAP_S ? RAG_HTTP_RETRY_AFTER_CAP_S : s;
    }
    char date[64];
    size_t len = (size_t)(end - v);
    if (len >= sizeof date) return -1;
    memcpy(date, v, len);
    date[len] = 0;
    time_t t = curl_getdate(date, NULL);
    if (t == (time_t)-1) return -1;
    if (t <= now) return 0;
    return t - now > RAG_HTTP_RETRY_AFTER_CAP_S ? RAG_HTTP_RETRY_AFTER_CAP_S : (long)(t - now);
}

/* ------------------------------------------------------------ the client */

struct rag_http {
    rag_http_params p;
    char *user_agent, *ca_file;     /* owned copies */
    CURL *curl;
    char curl_err[CURL_ERROR_SIZE];
    /* the request in flight */
    const rag_http_req *rq;
    rag_http_resp *resp;
    bool decided;                   /* stream or keep: decided at the first byte */
    bool too_large;
    rag_buf body;                   /* the kept body */
    double next_slot;               /* monotonic time the next request may start */
    uint64_t rng;
    size_t requests, retries;
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc = CURLE_OK;
static void global_init(void) { g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static double mono_s(void) { return rag_now_ms() / 1e3; }

rag_http_params rag_http_default_params(void) {
    rag_http_params p;
    memset(&p, 0, sizeof p);
    p.connect_timeout_ms = 10000;
    p.max_attempts = 3;
    p.backoff_ms = 500;
    p.max_backoff_ms = 30000;
    p.max_body = 32u << 20;
    return p;
}

static bool cancelled(const rag_http *h, volatile int *extra) {
    return (h->p.cancel && *h->p.cancel) || (extra && *extra);
}

/* Sleeps s seconds in short steps; false when a cancel flag was raised. */
static bool sleep_s(const rag_http *h, double s, volatile int *extra) {
    double end = mono_s() + s;
    for (;;) {
        if (cancelled(h, extra)) return false;
        double left = end - mono_s();
        if (left <= 0) return true;
        if (left > 0.05) left = 0.05;
        struct timespec ts = {0, (long)(left * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static size_t on_header(char *b, size_t size, size_t nitems, void *user) {
    rag_http *h = user;
    size_t n = size * nitems;
    long v = rag_http_retry_after(b, n, time(NULL));
    if (v >= 0) h->resp->retry_after_s = v;
    return n;
}

static bool keep(rag_http *h, const char *p, size_t n) { return rag_buf_append(&h->body, p, n) == RAG_OK; }

static size_t on_write(char *p, size_t size, size_t nmemb, void *user) {
    rag_http *h = user;
    const rag_http_req *rq = h->rq;
    rag_http_resp *r = h->resp;
    size_t n = size * nmemb;
    if (!h->decided) {
        /* the status and type are known once the headers are in */
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r->status);
        char *ct = NULL;
        curl_easy_getinfo(h->curl, CURLINFO_CONTENT_TYPE, &ct);
        size_t tl = rq->stream_type ? strlen(rq->stream_type) : 0;
        r->streamed = rq->on_data && tl && r->status / 100 == 2 && ct && strncasecmp(ct, rq->stream_type, tl) == 0;
        h->decided = true;
    }
    if (r->streamed) {
        if (!rq->on_data(rq->user, p, n)) { r->stopped = true; return 0; }
        if (rq->on_progress && rq->on_progress(rq->user)) { r->aborted = true; return 0; }
        return n;
    }
    if (r->status / 100 == 2) {
        if (h->body.len + n > h->p.max_body) { h->too_large = true; return 0; }
        return keep(h, p, n) ? n : 0;
    }
    /* an error answer: its start is enough for the message */
    size_t room = RAG_HTTP_ERROR_BODY_MAX > h->body.len ? RAG_HTTP_ERROR_BODY_MAX - h->body.len : 0;
    if (n > room) r->body_cut = true;
    if (room && !keep(h, p, n < room ? n : room)) return 0;
    return n;
}

static int on_xfer(void *user, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
    (void)dt; (void)dn; (void)ut; (void)un;
    rag_http *h = user;
    if (cancelled(h, h->rq->cancel)) { h->resp->cancelled = true; return 1; }
    if (h->rq->on_progress && h->rq->on_progress(h->rq->user)) { h->resp->aborted = true; return 1; }
    return 0;
}

/* Contract: see http_internal.h. */
int rag_http_new(const rag_http_params *p, rag_http **out, char *err, size_t errlen) {
    *out = NULL;
    pthread_once(&g_once, global_init);
    if (g_init_rc != CURLE_OK) {
        snprintf(err, errlen, "libcurl: %s", curl_easy_strerror(g_init_rc));
        return RAG_ERR_IO;
    }
    rag_http *h = calloc(1, sizeof *h);
    if (!h) { snprintf(err, errlen, "out of memory"); return RAG_ERR_NOMEM; }
    h->p = p ? *p : rag_http_default_params();
    if (h->p.max_attempts < 1) h->p.max_attempts = 1;
    if (h->p.backoff_ms <= 0) h->p.backoff_ms = 500;
    if (h->p.max_backoff_ms <= 0) h->p.max_backoff_ms = 30000;
    if (h->p.max_body == 0) h->p.max_body = 32u << 20;
    if (h->p.connect_timeout_ms <= 0) h->p.connect_timeout_ms = 10000;
    h->rng = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)h;
    if (!h->rng) h->rng = 1;
    if (!(h->user_agent = strdup(h->p.user_agent ? h->p.user_agent : "mrag")) ||
        (h->p.ca_file && !(h->ca_file = strdup(h->p.ca_file))) || !(h->curl = curl_easy_init())) {
        rag_http_free(h);
        snprintf(err, errlen, "out of memory (libcurl handle)");
        return RAG_ERR_NOMEM;
    }
    h->p.user_agent = h->user_agent;
    h->p.ca_file = h->ca_file;
    CURL *c = h->curl;
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->curl_err);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, h->user_agent);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, h->p.compressed ? "" : "identity");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->p.connect_timeout_ms);
    if (h->p.timeout_ms > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->p.timeout_ms);
    /* TLS verification stays on (the defaults); a private CA is added, never
     * a switch to turn checks off */
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_file) curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    /* http(s) only, also after redirects (e.g. http -> https) */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, h->p.max_redirects > 0 ? 1L : 0L);
    if (h->p.max_redirects > 0) curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)h->p.max_redirects);
    if (h->p.cookies) curl_easy_setopt(c, CURLOPT_COOKIEFILE, "");   /* in memory only */
    /* proxies from the environment apply, but never to loopback */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xfer);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    *out = h;
    return RAG_OK;
}

void rag_http_free(rag_http *h) {
    if (!h) return;
    if (h->curl) curl_easy_cleanup(h->curl);
    rag_buf_release(&h->body);
    free(h->user_agent);
    free(h->ca_file);
    free(h);
}

void rag_http_counts(const rag_http *h, size_t *requests, size_t *retries) {
    if (requests) *requests = h ? h->requests : 0;
    if (retries) *retries = h ? h->retries : 0;
}

/* Waits for the rate limit's next slot; false when cancelled. */
static bool rate_wait(rag_http *h, volatile int *extra) {
    if (h->p.rate <= 0) return true;
    double now = mono_s();
    if (h->next_slot > now && !sleep_s(h, h->next_slot - now, extra)) return false;
    now = mono_s();
    h->next_slot = (h->next_slot > now ? h->next_slot : now) + 1.0 / h->p.rate;
    return true;
}

/* Contract: see http_internal.h. */
int rag_http_perform(rag_http *h, const rag_http_req *rq, rag_http_resp *r) {
    memset(r, 0, sizeof *r);
    r->retry_after_s = -1;
    r->body = "";
    if (!h || !rq || !rq->url) { snprintf(r->error, sizeof r->error, "bad arguments"); return RAG_ERR_ARG; }
    if (!rate_wait(h, rq->cancel) || cancelled(h, rq->cancel)) {
        r->cancelled = true;
        snprintf(r->error, sizeof r->error, "cancelled");
        return RAG_ERR_IO;
    }
    CURL *c = h->curl;
    struct curl_slist *hd = NULL, *t;
    for (size_t i = 0; i < rq->n_headers; i++) {
        if (!(t = curl_slist_append(hd, rq->headers[i]))) goto oom;
        hd = t;
    }
    if (rq->body) {
        if (!(t = curl_slist_append(hd, "Expect:"))) goto oom;     /* no 100-continue round trip */
        hd = t;
    }
    h->rq = rq;
    h->resp = r;
    h->decided = false;
    h->too_large = false;
    h->body.len = 0;
    if (h->body.data) h->body.data[0] = 0;
    h->curl_err[0] = 0;
    curl_easy_setopt(c, CURLOPT_URL, rq->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
    if (rq->body) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    h->requests++;
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    /* nothing of the request stays on the handle: the body may be wiped */
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hd);
    h->rq = NULL;
    h->resp = NULL;
    r->curl_code = (int)cc;
    r->body = h->body.data ? h->body.data : "";
    r->body_len = h->body.len;
    if (h->too_large) {
        snprintf(r->error, sizeof r->error, "the answer is larger than %zu bytes", h->p.max_body);
        return RAG_ERR_LIMIT;
    }
    if (r->cancelled) { snprintf(r->error, sizeof r->error, "cancelled"); return RAG_ERR_IO; }
    if (r->stopped) return RAG_OK;
    if (r->aborted) { snprintf(r->error, sizeof r->error, "ended by the caller"); return RAG_ERR_IO; }
    if (cc != CURLE_OK) {
        snprintf(r->error, sizeof r->error, "%s", h->curl_err[0] ? h->curl_err : curl_easy_strerror(cc));
        return cc == CURLE_OUT_OF_MEMORY ? RAG_ERR_NOMEM : RAG_ERR_IO;
    }
    return RAG_OK;
oom:
    curl_slist_free_all(hd);
    snprintf(r->error, sizeof r->error, "out of memory");
    return RAG_ERR_NOMEM;
}

/* Contract: see http_internal.h. */
bool rag_http_transient(int rc, const rag_http_resp *r) {
    if (rc == RAG_OK) return r->status == 408 || r->status == 429 || r->status >= 500;
    if (rc != RAG_ERR_IO || r->cancelled || r->aborted || r->stopped) return false;
    switch ((CURLcode)r->curl_code) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return true;
    default:
        return false;
    }
}

static uint64_t next_rand(rag_http *h) {
    h->rng ^= h->rng << 13;
    h->rng ^= h->rng >> 7;
    h->rng ^= h->rng << 17;
    return h->rng;
}

/* Contract: see http_internal.h. */
bool rag_http_backoff(rag_http *h, int attempt, long retry_after_s, volatile int *cancel) {
    double step = h->p.backoff_ms / 1000.0, cap = h->p.max_backoff_ms / 1000.0;
    for (int i = 1; i < attempt && step < cap; i++) step *= 2;
    if (step > cap) step = cap;
    /* jitter: clients that failed together do not come back together */
    double w = step * (0.5 + 0.5 * (double)(next_rand(h) >> 11) / 9007199254740992.0);
    if (retry_after_s > RAG_HTTP_RETRY_AFTER_CAP_S) retry_after_s = RAG_HTTP_RETRY_AFTER_CAP_S;
    if (retry_after_s >= 0 && (double)retry_after_s > w) w = (double)retry_after_s;
    h->retries++;
    return sleep_s(h, w, cancel);
}

/* Contract: see http_internal.h. */
int rag_http_request(rag_http *h, const rag_http_req *rq, rag_http_resp *r) {
    int rc = RAG_ERR_ARG;
    for (int a = 1; a <= (h ? h->p.max_attempts : 1); a++) {
        if (a > 1 && !rag_http_backoff(h, a - 1, r->retry_after_s, rq->cancel)) {
            r->cancelled = true;
            snprintf(r->error, sizeof r->error, "cancelled");
            return RAG_ERR_IO;
        }
        rc = rag_http_perform(h, rq, r);
        if (!rag_http_transient(rc, r)) break;
    }
    return rc;
}
