/* test_rag_http.c — rag/http.c, the one HTTP client of rag/: Retry-After
 * header lines in both forms as libcurl hands them over (not
 * NUL-terminated, CRLF at the end), capped at one limit; and the client
 * against a libmicrohttpd server on 127.0.0.1: transient failures retried
 * with jittered backoff honouring Retry-After, the rest not; bounded 2xx
 * bodies, cut error bodies; streamed bodies; the cancel flag ending a slow
 * transfer and a wait; the rate limit. */
#include "tests/test.h"
#include "rag/http_internal.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* The header as a buffer of exactly its length, followed by bytes that must
 * not be read (digits, which would change the value if they were). */
static long ra(const char *hdr, time_t now) {
    char buf[256];
    size_t n = strlen(hdr);
    memcpy(buf, hdr, n);
    memset(buf + n, '9', sizeof buf - n);
    return rag_http_retry_after(buf, n, now);
}

TEST(delta_seconds) {
    CHECK_EQ_INT(ra("Retry-After: 120\r\n", 0), 120);
    CHECK_EQ_INT(ra("retry-after:7", 0), 7);
    CHECK_EQ_INT(ra("RETRY-AFTER: \t 0 \r\n", 0), 0);
    CHECK_EQ_INT(ra("Retry-After: 99999999999999999999\r\n", 0), RAG_HTTP_RETRY_AFTER_CAP_S);   /* capped, no overflow */
    CHECK_EQ_INT(ra("Retry-After: 301\r\n", 0), 300);
}

TEST(http_date) {
    const char *when = "Fri, 27 Nov 2026 17:30:00 GMT";
    time_t t = curl_getdate(when, NULL);
    REQUIRE(t > 0);
    char hdr[128];
    snprintf(hdr, sizeof hdr, "Retry-After: %s\r\n", when);
    CHECK_EQ_INT(ra(hdr, t - 90), 90);
    CHECK_EQ_INT(ra(hdr, t + 3600), 0);                      /* already past */
    CHECK_EQ_INT(ra(hdr, t - 10 * 86400), RAG_HTTP_RETRY_AFTER_CAP_S);   /* capped */
    /* the obsolete RFC 850 form, as RFC 9110 asks recipients to accept */
    CHECK_EQ_INT(ra("Retry-After: Friday, 27-Nov-26 17:30:00 GMT\r\n", t - 5), 5);
}

TEST(other_headers_and_garbage) {
    CHECK_EQ_INT(ra("Content-Type: text/html\r\n", 0), -1);
    CHECK_EQ_INT(ra("Retry-After:\r\n", 0), -1);
    CHECK_EQ_INT(ra("Retry-After: soon\r\n", 0), -1);
    CHECK_EQ_INT(ra("Retry-After: 12abc\r\n", 0), -1);
    CHECK_EQ_INT(ra("Retry-Afte", 0), -1);
    CHECK_EQ_INT(rag_http_retry_after(NULL, 0, 0), -1);
    char big[300];
    memset(big, 'x', sizeof big);
    memcpy(big, "Retry-After: ", 13);
    CHECK_EQ_INT(rag_http_retry_after(big, sizeof big, 0), -1);  /* an over-long date */
}

/* ---------------------------------------------------------------- client */

static struct MHD_Daemon *daemon_;
static int port;
static atomic_int n_flaky, n_hits;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *ctype, const char *body, size_t len,
                             const char *retry_after) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", ctype);
    if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* /flaky: 503 + Retry-After: 1 once, then 200; /e404, /e503: always; /big:
 * 200 KB of 200; /bigerr: 200 KB of 500; /sse: an event stream; /slow: an
 * answer after 5 s. */
static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)cls; (void)method; (void)version; (void)upload; (void)upload_size;
    if (!*con_cls) { *con_cls = (void *)1; return MHD_YES; }
    atomic_fetch_add(&n_hits, 1);
    static char big[200 << 10];
    memset(big, 'x', sizeof big);
    if (strcmp(url, "/flaky") == 0) {
        if (atomic_fetch_add(&n_flaky, 1) == 0) return reply(c, 503, "text/plain", "busy", 4, "1");
        return reply(c, 200, "application/json", "{\"ok\":1}", 8, NULL);
    }
    if (strcmp(url, "/e404") == 0) return reply(c, 404, "text/plain", "no such page", 12, NULL);
    if (strcmp(url, "/e503") == 0) return reply(c, 503, "text/plain", "overloaded", 10, NULL);
    if (strcmp(url, "/big") == 0) return reply(c, 200, "text/plain", big, sizeof big, NULL);
    if (strcmp(url, "/bigerr") == 0) return reply(c, 500, "text/plain", big, sizeof big, NULL);
    if (strcmp(url, "/sse") == 0) return reply(c, 200, "text/event-stream", "data: a\n\ndata: b\n\n", 18, NULL);
    if (strcmp(url, "/slow") == 0) {
        for (int i = 0; i < 30; i++) usleep(100000);
        return reply(c, 200, "text/plain", "late", 4, NULL);
    }
    return reply(c, 200, "text/plain", "hello", 5, NULL);
}

static void stop_server(void) {
    if (daemon_) MHD_stop_daemon(daemon_);
    daemon_ = NULL;
}

static void start_server(void) {
    if (daemon_) return;
    atexit(stop_server);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL, handler, NULL,
                               MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    REQUIRE(daemon_, "cannot start the test server");
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    REQUIRE(di && di->port);
    port = di->port;
}

static const char *url(const char *path) {
    static char u[128];
    snprintf(u, sizeof u, "http://127.0.0.1:%d%s", port, path);
    return u;
}

static rag_http *client(rag_http_params *p) {
    start_server();
    rag_http *h = NULL;
    char err[256];
    REQUIRE(rag_http_new(p, &h, err, sizeof err) == RAG_OK, "%s", err);
    return h;
}

TEST(transient_failures_are_retried_honouring_retry_after) {
    rag_http_params p = rag_http_default_params();
    p.backoff_ms = 20;
    rag_http *h = client(&p);
    rag_http_req rq = {.url = url("/flaky")};
    rag_http_resp r;
    atomic_store(&n_flaky, 0);
    double t0 = now_s();
    CHECK_EQ_INT(rag_http_request(h, &rq, &r), RAG_OK);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body, "{\"ok\":1}");
    CHECK(now_s() - t0 >= 0.95, "Retry-After: 1 waited for (%.2f s)", now_s() - t0);
    size_t req = 0, ret = 0;
    rag_http_counts(h, &req, &ret);
    CHECK_EQ_INT(req, 2);
    CHECK_EQ_INT(ret, 1);
    /* a 503 every time: max_attempts tries, the last answer returned */
    rq.url = url("/e503");
    int before = atomic_load(&n_hits);
    CHECK_EQ_INT(rag_http_request(h, &rq, &r), RAG_OK);
    CHECK_EQ_INT(r.status, 503);
    CHECK_EQ_STR(r.body, "overloaded");
    CHECK_EQ_INT(atomic_load(&n_hits) - before, 3);
    /* a 404 is final: one try */
    rq.url = url("/e404");
    before = atomic_load(&n_hits);
    CHECK_EQ_INT(rag_http_request(h, &rq, &r), RAG_OK);
    CHECK_EQ_INT(r.status, 404);
    CHECK_EQ_INT(atomic_load(&n_hits) - before, 1);
    CHECK(!rag_http_transient(RAG_OK, &r));
    /* nothing listening: a transport error, transient, with libcurl's words */
    rq.url = "http://127.0.0.1:9/";
    p.max_attempts = 1;
    rag_http *one = client(&p);
    CHECK_EQ_INT(rag_http_request(one, &rq, &r), RAG_ERR_IO);
    CHECK(rag_http_transient(RAG_ERR_IO, &r) && r.error[0], "%s", r.error);
    rag_http_free(one);
    rag_http_free(h);
}

TEST(backoff_is_jittered_exponential_and_capped) {
    rag_http_params p = rag_http_default_params();
    p.backoff_ms = 100;
    p.max_backoff_ms = 150;
    rag_http *h = client(&p);
    double t0 = now_s();
    CHECK(rag_http_backoff(h, 1, -1, NULL));
    double w1 = now_s() - t0;
    CHECK(w1 >= 0.045 && w1 < 0.6, "first wait %.3f s (50..100 ms + load)", w1);
    t0 = now_s();
    CHECK(rag_http_backoff(h, 5, -1, NULL));    /* 1.6 s uncapped: capped at 150 ms */
    double w5 = now_s() - t0;
    CHECK(w5 >= 0.07 && w5 < 0.7, "capped wait %.3f s", w5);
    /* a raised cancel flag ends a wait at once, even a long Retry-After */
    volatile int cancel = 1;
    t0 = now_s();
    CHECK(!rag_http_backoff(h, 1, 300, &cancel));
    CHECK(now_s() - t0 < 0.5);
    rag_http_free(h);
}

TEST(bodies_are_bounded) {
    rag_http_params p = rag_http_default_params();
    p.max_body = 100 << 10;
    rag_http *h = client(&p);
    rag_http_req rq = {.url = url("/big")};
    rag_http_resp r;
    CHECK_EQ_INT(rag_http_perform(h, &rq, &r), RAG_ERR_LIMIT);
    CHECK(strstr(r.error, "larger than") != NULL, "%s", r.error);
    CHECK(!rag_http_transient(RAG_ERR_LIMIT, &r));
    /* an error page: its start kept, the rest dropped, the answer still read */
    rq.url = url("/bigerr");
    CHECK_EQ_INT(rag_http_perform(h, &rq, &r), RAG_OK);
    CHECK_EQ_INT(r.status, 500);
    CHECK(r.body_cut);
    CHECK_EQ_INT(r.body_len, RAG_HTTP_ERROR_BODY_MAX);
    rag_http_free(h);
}

typedef struct {
    char got[64];
    size_t n;
    int calls;
    bool stop;
} stream_sink;

static bool on_data(void *user, const char *p, size_t n) {
    stream_sink *s = user;
    if (s->n + n < sizeof s->got) { memcpy(s->got + s->n, p, n); s->n += n; }
    s->calls++;
    return !s->stop;
}

TEST(streamed_bodies_go_to_the_callback) {
    rag_http *h = client(NULL);
    stream_sink s = {0};
    rag_http_req rq = {.url = url("/sse"), .stream_type = "text/event-stream", .on_data = on_data, .user = &s};
    rag_http_resp r;
    CHECK_EQ_INT(rag_http_perform(h, &rq, &r), RAG_OK);
    CHECK(r.streamed && r.body_len == 0);
    CHECK_EQ_STR(s.got, "data: a\n\ndata: b\n\n");
    /* the callback ends the transfer: RAG_OK, stopped */
    memset(&s, 0, sizeof s);
    s.stop = true;
    CHECK_EQ_INT(rag_http_perform(h, &rq, &r), RAG_OK);
    CHECK(r.stopped && s.calls == 1);
    /* another type is kept as a body, not streamed */
    memset(&s, 0, sizeof s);
    rq.url = url("/plain");
    CHECK_EQ_INT(rag_http_perform(h, &rq, &r), RAG_OK);
    CHECK(!r.streamed && s.calls == 0);
    CHECK_EQ_STR(r.body, "hello");
    rag_http_free(h);
}

static volatile int cancel_flag;
static void *raise_later(void *arg) {
    (void)arg;
    usleep(300000);
    cancel_flag = 1;
    return NULL;
}

TEST(cancel_ends_a_slow_transfer) {
    rag_http_params p = rag_http_default_params();
    p.cancel = &cancel_flag;
    rag_http *h = client(&p);
    cancel_flag = 0;
    pthread_t th;
    pthread_create(&th, NULL, raise_later, NULL);
    rag_http_req rq = {.url = url("/slow")};
    rag_http_resp r;
    double t0 = now_s();
    CHECK_EQ_INT(rag_http_request(h, &rq, &r), RAG_ERR_IO);
    pthread_join(th, NULL);
    CHECK(r.cancelled, "%s", r.error);
    CHECK(now_s() - t0 < 2.5, "the cancel took %.2f s", now_s() - t0);
    CHECK(!rag_http_transient(RAG_ERR_IO, &r));
    /* a request's own flag, the client's clear */
    cancel_flag = 0;
    volatile int mine = 1;
    rq.url = url("/plain");
    rq.cancel = &mine;
    CHECK_EQ_INT(rag_http_perform(h, &rq, &r), RAG_ERR_IO);
    CHECK(r.cancelled);
    rag_http_free(h);
}

TEST(rate_limit_spaces_requests) {
    rag_http_params p = rag_http_default_params();
    p.rate = 10;
    rag_http *h = client(&p);
    rag_http_req rq = {.url = url("/plain")};
    rag_http_resp r;
    double t0 = now_s();
    for (int i = 0; i < 4; i++) CHECK_EQ_INT(rag_http_perform(h, &rq, &r), RAG_OK);
    CHECK(now_s() - t0 >= 0.29, "4 requests at 10/s in %.3f s", now_s() - t0);
    rag_http_free(h);
}

TEST_MAIN(RUN(delta_seconds), RUN(http_date), RUN(other_headers_and_garbage),
          RUN(transient_failures_are_retried_honouring_retry_after), RUN(backoff_is_jittered_exponential_and_capped),
          RUN(bodies_are_bounded), RUN(streamed_bodies_go_to_the_callback), RUN(cancel_ends_a_slow_transfer),
          RUN(rate_limit_spaces_requests))
