/* http_internal.h — rag/'s one HTTP client over libcurl (rag/http.c), used
 * by the MediaWiki connector (wiki_http.c) and the remote engine
 * (remote.c): one handle per client (keep-alive, cookies in memory when
 * asked), TLS always verified, http(s) only, proxies never for loopback, a
 * request rate limit, bounded bodies or a streamed body, cancellable
 * transfers and waits, retries with jittered exponential backoff that
 * honours Retry-After up to one cap, libcurl initialised once. */
#ifndef MRAG_RAG_HTTP_INTERNAL_H
#define MRAG_RAG_HTTP_INTERNAL_H

#include "rag/base.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* The longest wait a Retry-After header can ask of any mrag client. */
#define RAG_HTTP_RETRY_AFTER_CAP_S 300
/* Bytes of a non-2xx answer kept for its message (the rest is dropped). */
#define RAG_HTTP_ERROR_BODY_MAX (64u << 10)

/* Seconds a Retry-After header line asks the client to wait. line[0..n) is
 * one raw header line as libcurl hands it over (not NUL-terminated, may end
 * in CRLF). Both forms of RFC 9110 are understood: delta-seconds ("120") and
 * an HTTP-date ("Fri, 27 Nov 2026 17:30:00 GMT", seconds after now; a date
 * in the past is 0). Returns -1 when the line is not a Retry-After header or
 * its value cannot be read; values are capped at RAG_HTTP_RETRY_AFTER_CAP_S. */
long rag_http_retry_after(const char *line, size_t n, time_t now);

typedef struct rag_http rag_http;

typedef struct {
    const char *user_agent;     /* default "mrag" */
    const char *ca_file;        /* a CA bundle used instead of the system's; TLS is
                                   always verified */
    int connect_timeout_ms;     /* default 10000 */
    int timeout_ms;             /* whole transfer; 0: none (streams, which use
                                   the request's progress check) */
    int max_redirects;          /* 0: redirects are not followed; else http(s) only */
    bool cookies;               /* keep cookies in memory (a login session) */
    bool compressed;            /* accept every encoding libcurl decodes (else identity) */
    double rate;                /* requests per second, <= 0: unlimited */
    int max_attempts;           /* tries per rag_http_request, default 3 (>= 1) */
    int backoff_ms;             /* first retry wait, default 500; doubles, jittered */
    int max_backoff_ms;         /* cap of the backoff step, default 30000 (a
                                   Retry-After may ask for longer, up to its cap) */
    size_t max_body;            /* largest 2xx body kept, default 32 MB */
    volatile int *cancel;       /* non-zero ends transfers and waits */
} rag_http_params;

rag_http_params rag_http_default_params(void);

/* One request. */
typedef struct {
    const char *url;
    const char *body;           /* POST body, or NULL for a GET */
    size_t body_len;
    const char *const *headers; /* extra "Name: value" lines (borrowed) */
    size_t n_headers;
    /* Streaming: a 2xx answer whose Content-Type starts with stream_type
     * (e.g. "text/event-stream") goes to on_data as it arrives and is not
     * kept; on_data returns false to end the transfer (resp->stopped). */
    const char *stream_type;
    bool (*on_data)(void *user, const char *p, size_t n);
    /* Called about once a second and with every piece of data: non-zero
     * ends the transfer (resp->aborted; the caller's own timeouts). */
    int (*on_progress)(void *user);
    void *user;
    volatile int *cancel;       /* this request's own cancel flag, besides the client's */
} rag_http_req;

/* What one attempt got. Strings borrowed from the client, valid until its
 * next request. */
typedef struct {
    long status;                /* HTTP status, 0 when no answer came */
    bool streamed;              /* the body went to on_data */
    const char *body;           /* the kept body, NUL-terminated ("" when none) */
    size_t body_len;
    bool body_cut;              /* a non-2xx body over RAG_HTTP_ERROR_BODY_MAX */
    long retry_after_s;         /* the answer's Retry-After, -1 when none */
    bool stopped;               /* on_data ended it */
    bool aborted;               /* on_progress ended it */
    bool cancelled;             /* the cancel flag ended it (or a wait) */
    int curl_code;              /* the transfer's CURLcode (0: an answer came) */
    char error[256];            /* the transport error, "" when none */
} rag_http_resp;

/* *out owned (rag_http_free); on failure NULL and err says why. */
int rag_http_new(const rag_http_params *p, rag_http **out, char *err, size_t errlen);
void rag_http_free(rag_http *h);     /* NULL is a no-op */

/* One attempt (after the rate limit's wait). Returns RAG_OK when an answer
 * came, whatever its status (also when on_data or on_progress ended it);
 * RAG_ERR_LIMIT for a 2xx body over max_body; RAG_ERR_IO for a transport
 * failure or a cancel (resp->error says which); RAG_ERR_NOMEM. */
int rag_http_perform(rag_http *h, const rag_http_req *rq, rag_http_resp *resp);
/* True when a failed attempt is worth another: a timeout, a refused or
 * dropped connection, a name that did not resolve, or the statuses 408,
 * 429 and 5xx. TLS and protocol errors are not. */
bool rag_http_transient(int rc, const rag_http_resp *resp);
/* Waits before retry number attempt (1 = the first retry): backoff_ms
 * doubling up to max_backoff_ms, jittered to [0.5, 1] of the step, and at
 * least retry_after_s (-1: none; capped at RAG_HTTP_RETRY_AFTER_CAP_S).
 * Counts a retry. False when the client's cancel flag or cancel (may be
 * NULL) ended the wait. */
bool rag_http_backoff(rag_http *h, int attempt, long retry_after_s, volatile int *cancel);
/* rag_http_perform with transient failures retried (rag_http_backoff) up
 * to max_attempts tries. The result is the last attempt's. */
int rag_http_request(rag_http *h, const rag_http_req *rq, rag_http_resp *resp);
/* Attempts made and retries waited for, over the client's life. */
void rag_http_counts(const rag_http *h, size_t *requests, size_t *retries);

#endif
