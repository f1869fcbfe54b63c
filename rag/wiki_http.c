/* wiki_http.c — the MediaWiki connector's HTTP client over libcurl: one
 * handle (keep-alive, cookies in memory), a request rate limit, timeouts,
 * bounded bodies, retries with exponential backoff and jitter on transient
 * failures, Retry-After and maxlag honoured, bot-password login. */
#include "rag/http_internal.h"
#include "rag/wiki_internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct wiki_client {
    wiki_client_params p;
    char *api;                  /* owned copy of p.api */
    CURL *curl;
    rag_buf body;               /* the answer being received */
    bool too_large;
    long retry_after_s;         /* from the last answer's Retry-After, -1 = none */
    double next_slot;           /* monotonic time the next request may start */
    uint64_t rng;
    size_t requests, retries;
    char curl_err[CURL_ERROR_SIZE];
    char *user, *password;      /* owned copies after a login (password wiped on free) */
    bool logged_in;             /* send assert=user: a lost session fails loudly */
    size_t relogins;
};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc = CURLE_OK;
static void curl_init_once(void) { g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Sleeps s seconds in short steps; false when the cancel flag was raised. */
static bool sleep_s(const wiki_client *c, double s) {
    double end = mono_s() + s;
    for (;;) {
        if (c->p.cancel && *c->p.cancel) return false;
        double left = end - mono_s();
        if (left <= 0) return true;
        if (left > 0.05) left = 0.05;
        struct timespec ts = {0, (long)(left * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static uint64_t next_rand(wiki_client *c) {
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return c->rng;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user) {
    wiki_client *c = user;
    size_t n = size * nmemb;
    if (c->body.len + n > c->p.max_bytes) {
        c->too_large = true;
        return 0;   /* curl ends the transfer with CURLE_WRITE_ERROR */
    }
    if (rag_buf_append(&c->body, ptr, n) != RAG_OK) return 0;
    return n;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *user) {
    wiki_client *c = user;
    size_t n = size * nitems;
    long s = rag_http_retry_after(buf, n, time(NULL));
    if (s >= 0) c->retry_after_s = s;
    return n;
}

int wiki_client_new(const wiki_client_params *p, wiki_client **out, char *err, size_t errlen) {
    int rc = RAG_OK;
    wiki_client *c = NULL;
    *out = NULL;
    if (!p || !p->api || (strncmp(p->api, "http://", 7) != 0 && strncmp(p->api, "https://", 8) != 0)) {
        rc = rag_ing_err(err, errlen, RAG_ERR_ARG, "wiki %s: the URL must start with http:// or https://",
                         p && p->api ? p->api : "(none)");
        goto done;
    }
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK) { rc = rag_ing_err(err, errlen, RAG_ERR_IO, "libcurl: %s", curl_easy_strerror(g_curl_init_rc)); goto done; }
    if (!(c = calloc(1, sizeof *c)) || !(c->api = strdup(p->api))) { rc = rag_ing_err(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
    c->p = *p;
    c->p.api = c->api;
    if (c->p.max_attempts < 1) c->p.max_attempts = 1;
    if (c->p.max_bytes == 0) c->p.max_bytes = 32u << 20;
    c->body.limit = 0;
    c->rng = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)c;
    if (!c->rng) c->rng = 1;
    if (!(c->curl = curl_easy_init())) { rc = rag_ing_err(err, errlen, RAG_ERR_NOMEM, "libcurl: cannot create a handle"); goto done; }
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_COOKIEFILE, "");    /* cookies in memory only */
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->p.user_agent ? c->p.user_agent : "mrag-wiki/1 (MediaWiki connector)");
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(c->p.timeout_ms > 0 ? c->p.timeout_ms : 60000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->p.connect_timeout_ms > 0 ? c->p.connect_timeout_ms : 10000));
    /* TLS verification stays on (the defaults); a private CA is added, never
     * a switch to turn checks off */
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->p.ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, c->p.ca_file);
    /* http(s) only, also after redirects (e.g. http -> https) */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    *out = c;
    c = NULL;
done:
    wiki_client_free(c);
    return rc;
}

void wiki_client_free(wiki_client *c) {
    if (!c) return;
    if (c->password) memset(c->password, 0, strlen(c->password));
    free(c->password);
    free(c->user);
    if (c->curl) curl_easy_cleanup(c->curl);
    rag_buf_release(&c->body);
    free(c->api);
    free(c);
}

void wiki_client_counts(const wiki_client *c, size_t *requests, size_t *retries, size_t *relogins) {
    if (requests) *requests = c ? c->requests : 0;
    if (retries) *retries = c ? c->retries : 0;
    if (relogins) *relogins = c ? c->relogins : 0;
}

/* Waits for the rate limit's next slot. */
static bool rate_wait(wiki_client *c) {
    if (c->p.rate <= 0) return true;
    double now = mono_s();
    if (c->next_slot > now && !sleep_s(c, c->next_slot - now)) return false;
    now = mono_s();
    c->next_slot = (c->next_slot > now ? c->next_slot : now) + 1.0 / c->p.rate;
    return true;
}

/* The wait before attempt number `attempt` (1 = first retry): exponential
 * with full jitter in [0.5, 1.0] of the step, capped; at least Retry-After. */
static double backoff_s(wiki_client *c, int attempt) {
    double base = (c->p.backoff_ms > 0 ? c->p.backoff_ms : 500) / 1000.0;
    double cap = (c->p.max_backoff_ms > 0 ? c->p.max_backoff_ms : 60000) / 1000.0;
    double step = base;
    for (int i = 1; i < attempt && step < cap; i++) step *= 2;
    if (step > cap) step = cap;
    double jitter = 0.5 + 0.5 * (double)(next_rand(c) >> 11) / 9007199254740992.0;
    double w = step * jitter;
    if (c->retry_after_s >= 0) {
        double ra = (double)c->retry_after_s;
        if (ra > 300) ra = 300;     /* a server asking for more than 5 minutes: cap it */
        if (ra > w) w = ra;
    }
    return w;
}

/* One API call with retries (see wiki_client_call); assert_user adds
 * assert=user. Messages show the api.php URL and the start of the GET
 * parameters; a POST (the login, which holds the password) is shown as
 * "POST" only, and its body is wiped after the call. */
static int call_raw(wiki_client *c, const char *params, bool post, bool assert_user, wiki_resp *out, char *err,
                    size_t errlen) {
    int rc = RAG_OK;
    rag_buf q = {0};
    char last[512] = "";
    memset(out, 0, sizeof *out);
    if (!c || !params) return rag_ing_err(err, errlen, RAG_ERR_ARG, "wiki: bad arguments");
    CURL *h = c->curl;
    size_t body_off = 0;
    if (rag_buf_append(&q, c->api, strlen(c->api)) || rag_buf_append(&q, post ? "" : "?", post ? 0 : 1) ||
        (body_off = q.len, rag_buf_append(&q, "format=json&formatversion=2&maxlag=5&", 37)) ||
        rag_buf_append(&q, params, strlen(params)) || (assert_user && rag_buf_append(&q, "&assert=user", 12))) {
        rc = rag_ing_err(err, errlen, RAG_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* the action for messages: "action=query&list=..." without the noise */
    const char *what = post ? "POST" : params;
    if (post) {
        curl_easy_setopt(h, CURLOPT_URL, c->api);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q.data + body_off);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(q.len - body_off));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_URL, q.data);
    }
    for (int attempt = 0; attempt < c->p.max_attempts; attempt++) {
        if (attempt > 0) {
            c->retries++;
            if (!sleep_s(c, backoff_s(c, attempt))) { rc = rag_ing_err(err, errlen, RAG_ERR_IO, "wiki %s: cancelled", c->api); goto done; }
        }
        if (!rate_wait(c)) { rc = rag_ing_err(err, errlen, RAG_ERR_IO, "wiki %s: cancelled", c->api); goto done; }
        c->body.len = 0;
        c->too_large = false;
        c->retry_after_s = -1;
        c->curl_err[0] = 0;
        c->requests++;
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (c->too_large) {
            rc = rag_ing_err(err, errlen, RAG_ERR_LIMIT, "wiki %s (%.80s): the answer is larger than %zu bytes",
                             c->api, what, c->p.max_bytes);
            goto done;
        }
        if (cc != CURLE_OK) {
            const char *msg = c->curl_err[0] ? c->curl_err : curl_easy_strerror(cc);
            snprintf(last, sizeof last, "%s", msg);
            bool transient = cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_COULDNT_CONNECT ||
                             cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_GOT_NOTHING || cc == CURLE_RECV_ERROR ||
                             cc == CURLE_SEND_ERROR || cc == CURLE_PARTIAL_FILE;
            if (transient) continue;
            rc = rag_ing_err(err, errlen, RAG_ERR_IO, "wiki %s: %s", c->api, msg);
            goto done;
        }
        if (status >= 500 || status == 429 || status == 408) {
            snprintf(last, sizeof last, "HTTP status %ld", status);
            continue;
        }
        if (status != 200) {
            rc = rag_ing_err(err, errlen, RAG_ERR_IO, "wiki %s: HTTP status %ld (is this the URL of api.php?)",
                             c->api, status);
            goto done;
        }
        char perr[256] = "";
        if (wiki_resp_parse(c->body.data ? c->body.data : "", c->body.len, out, perr, sizeof perr) != RAG_OK) {
            rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "wiki %s (%.80s): malformed answer: %s", c->api, what, perr);
            goto done;
        }
        if (out->error_code && strcmp(out->error_code, "maxlag") == 0) {
            /* the database replicas lag: wait as told (Retry-After), then again */
            snprintf(last, sizeof last, "the wiki is lagging (maxlag): %s", out->error_info ? out->error_info : "");
            if (c->retry_after_s < 0) c->retry_after_s = 5;
            wiki_resp_release(out);
            continue;
        }
        if (out->error_code && (strcmp(out->error_code, "ratelimited") == 0 ||
                                strncmp(out->error_code, "internal_api_error_", 19) == 0)) {
            /* the wiki's own rate limit, or a transient server-side failure
             * (a database error): back off and try again */
            snprintf(last, sizeof last, "%s: %s", out->error_code, out->error_info ? out->error_info : "");
            wiki_resp_release(out);
            continue;
        }
        rc = RAG_OK;
        goto done;
    }
    rc = rag_ing_err(err, errlen, RAG_ERR_IO, "wiki %s (%.80s): giving up after %d attempts: %s", c->api, what,
                     c->p.max_attempts, last);
done:
    if (post) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
        /* wipe the login body (it holds the password) */
        if (q.data) memset(q.data, 0, q.len);
    }
    rag_buf_release(&q);
    if (c->body.data && c->body.cap) c->body.len = 0;
    if (rc != RAG_OK) wiki_resp_release(out);
    return rc;
}

/* The login itself: token, then action=login (no assert=user). */
static int login_raw(wiki_client *c, const char *user, const char *password, char *err, size_t errlen) {
    int rc = RAG_OK;
    wiki_resp r;
    rag_buf b = {0};
    memset(&r, 0, sizeof r);
    if ((rc = call_raw(c, "action=query&meta=tokens&type=login", false, false, &r, err, errlen)) != RAG_OK) goto done;
    if (r.error_code || !r.logintoken) {
        rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "wiki %s: no login token (%s%s%s)", c->api,
                         r.error_code ? r.error_code : "no token in the answer", r.error_info ? ": " : "",
                         r.error_info ? r.error_info : "");
        goto done;
    }
    if (rag_buf_append(&b, "action=login&lgname=", 20) || wiki_urlencode(&b, user, strlen(user)) ||
        rag_buf_append(&b, "&lgpassword=", 12) || wiki_urlencode(&b, password, strlen(password)) ||
        rag_buf_append(&b, "&lgtoken=", 9) || wiki_urlencode(&b, r.logintoken, strlen(r.logintoken))) {
        rc = rag_ing_err(err, errlen, RAG_ERR_NOMEM, "out of memory");
        goto done;
    }
    wiki_resp_release(&r);
    if ((rc = call_raw(c, b.data, true, false, &r, err, errlen)) != RAG_OK) goto done;
    if (r.error_code) {
        rc = rag_ing_err(err, errlen, RAG_ERR_ARG, "wiki %s: login as %s failed: %s%s%s", c->api, user, r.error_code,
                         r.error_info ? ": " : "", r.error_info ? r.error_info : "");
        goto done;
    }
    if (!r.login_result || strcmp(r.login_result, "Success") != 0) {
        char reason[512];
        snprintf(reason, sizeof reason, "%s", r.login_reason ? r.login_reason : "no reason given");
        for (char *x = reason; *x; x++)
            if (*x == '\n') *x = ' ';
        rc = rag_ing_err(err, errlen, RAG_ERR_ARG, "wiki %s: login as %s failed (%s): %s", c->api, user,
                         r.login_result ? r.login_result : "no result", reason);
        goto done;
    }
done:
    if (b.data) memset(b.data, 0, b.len);
    rag_buf_release(&b);
    wiki_resp_release(&r);
    return rc;
}

int wiki_client_login(wiki_client *c, const char *user, const char *password, char *err, size_t errlen) {
    if (!c || !user || !password) return rag_ing_err(err, errlen, RAG_ERR_ARG, "wiki login: user and password required");
    int rc = login_raw(c, user, password, err, errlen);
    if (rc != RAG_OK) return rc;
    if (c->user != user) {
        free(c->user);
        if (c->password) memset(c->password, 0, strlen(c->password));
        free(c->password);
        c->user = strdup(user);
        c->password = strdup(password);
        if (!c->user || !c->password) return rag_ing_err(err, errlen, RAG_ERR_NOMEM, "out of memory");
    }
    c->logged_in = true;
    return RAG_OK;
}

int wiki_client_call(wiki_client *c, const char *params, bool post, wiki_resp *out, char *err, size_t errlen) {
    if (!c) return rag_ing_err(err, errlen, RAG_ERR_ARG, "wiki: bad arguments");
    bool assert_user = c->logged_in;
    int rc = call_raw(c, params, post, assert_user, out, err, errlen);
    if (rc != RAG_OK || !assert_user || !out->error_code || strcmp(out->error_code, "assertuserfailed") != 0) return rc;
    /* the session ended (expired, or the wiki restarted): log in again once,
     * then repeat the call; never go on as an anonymous reader, who may see
     * less and would make pages look deleted */
    wiki_resp_release(out);
    char lerr[512] = "";
    if ((rc = login_raw(c, c->user, c->password, lerr, sizeof lerr)) != RAG_OK)
        return rag_ing_err(err, errlen, rc, "wiki %s: the login session ended and logging in again failed: %s", c->api, lerr);
    c->relogins++;
    rc = call_raw(c, params, post, true, out, err, errlen);
    if (rc == RAG_OK && out->error_code && strcmp(out->error_code, "assertuserfailed") == 0) {
        wiki_resp_release(out);
        rc = rag_ing_err(err, errlen, RAG_ERR_IO, "wiki %s: not logged in even after logging in again (%s)", c->api,
                         c->user);
    }
    return rc;
}
