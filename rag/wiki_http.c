/* wiki_http.c — the MediaWiki connector's requests on rag/'s HTTP client
 * (rag/http.c: keep-alive, cookies in memory, the rate limit, timeouts,
 * bounded bodies, jittered backoff honouring Retry-After): the API's own
 * transient answers (maxlag, ratelimited, internal errors) retried, and the
 * bot-password login kept alive. */
#include "rag/http_internal.h"
#include "rag/wiki_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wiki_client {
    wiki_client_params p;
    char *api;                  /* owned copy of p.api */
    rag_http *http;
    char *user, *password;      /* owned copies after a login (password wiped on free) */
    bool logged_in;             /* send assert=user: a lost session fails loudly */
    size_t relogins;
};

int rag_wiki_client_new(const wiki_client_params *p, wiki_client **out, char *err, size_t errlen) {
    int rc = RAG_OK;
    wiki_client *c = NULL;
    *out = NULL;
    if (!p || !p->api || (strncmp(p->api, "http://", 7) != 0 && strncmp(p->api, "https://", 8) != 0)) {
        rc = rag_ing_err(err, errlen, RAG_ERR_ARG, "wiki %s: the URL must start with http:// or https://",
                         p && p->api ? p->api : "(none)");
        goto done;
    }
    if (!(c = calloc(1, sizeof *c)) || !(c->api = strdup(p->api))) { rc = rag_ing_err(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
    c->p = *p;
    c->p.api = c->api;
    rag_http_params hp = rag_http_default_params();
    hp.user_agent = p->user_agent ? p->user_agent : "mrag-wiki/1 (MediaWiki connector)";
    hp.ca_file = p->ca_file;
    hp.timeout_ms = p->timeout_ms > 0 ? p->timeout_ms : 60000;
    hp.connect_timeout_ms = p->connect_timeout_ms;
    hp.max_redirects = 5;
    hp.cookies = true;
    hp.compressed = true;
    hp.rate = p->rate;
    hp.max_attempts = p->max_attempts;
    hp.backoff_ms = p->backoff_ms;
    hp.max_backoff_ms = p->max_backoff_ms;
    hp.max_body = p->max_bytes;
    hp.cancel = p->cancel;
    char herr[256];
    if ((rc = rag_http_new(&hp, &c->http, herr, sizeof herr)) != RAG_OK) {
        rc = rag_ing_err(err, errlen, rc, "wiki %s: %s", p->api, herr);
        goto done;
    }
    c->p.max_attempts = p->max_attempts < 1 ? 1 : p->max_attempts;
    *out = c;
    c = NULL;
done:
    rag_wiki_client_free(c);
    return rc;
}

void rag_wiki_client_free(wiki_client *c) {
    if (!c) return;
    if (c->password) memset(c->password, 0, strlen(c->password));
    free(c->password);
    free(c->user);
    rag_http_free(c->http);
    free(c->api);
    free(c);
}

void rag_wiki_client_counts(const wiki_client *c, size_t *requests, size_t *retries, size_t *relogins) {
    rag_http_counts(c ? c->http : NULL, requests, retries);
    if (relogins) *relogins = c ? c->relogins : 0;
}

/* One API call with retries (see rag_wiki_client_call); assert_user adds
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
    size_t body_off = 0;
    if (rag_buf_append(&q, c->api, strlen(c->api)) || rag_buf_append(&q, post ? "" : "?", post ? 0 : 1) ||
        (body_off = q.len, rag_buf_append(&q, "format=json&formatversion=2&maxlag=5&", 37)) ||
        rag_buf_append(&q, params, strlen(params)) || (assert_user && rag_buf_append(&q, "&assert=user", 12))) {
        rc = rag_ing_err(err, errlen, RAG_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* the action for messages: "action=query&list=..." without the noise */
    const char *what = post ? "POST" : params;
    rag_http_req rq;
    memset(&rq, 0, sizeof rq);
    rq.url = post ? c->api : q.data;
    if (post) {
        rq.body = q.data + body_off;
        rq.body_len = q.len - body_off;
    }
    rag_http_resp r;
    long retry_after = -1;
    for (int attempt = 0; attempt < c->p.max_attempts; attempt++) {
        if (attempt > 0 && !rag_http_backoff(c->http, attempt, retry_after, NULL)) {
            rc = rag_ing_err(err, errlen, RAG_ERR_IO, "wiki %s: cancelled", c->api);
            goto done;
        }
        int hrc = rag_http_perform(c->http, &rq, &r);
        retry_after = r.retry_after_s;
        if (hrc == RAG_ERR_LIMIT) {
            rc = rag_ing_err(err, errlen, RAG_ERR_LIMIT, "wiki %s (%.80s): %s", c->api, what, r.error);
            goto done;
        }
        if (hrc != RAG_OK) {
            snprintf(last, sizeof last, "%s", r.error);
            if (rag_http_transient(hrc, &r)) continue;
            rc = rag_ing_err(err, errlen, hrc == RAG_ERR_NOMEM ? RAG_ERR_NOMEM : RAG_ERR_IO, "wiki %s: %s", c->api, r.error);
            goto done;
        }
        if (rag_http_transient(hrc, &r)) {
            snprintf(last, sizeof last, "HTTP status %ld", r.status);
            continue;
        }
        if (r.status != 200) {
            rc = rag_ing_err(err, errlen, RAG_ERR_IO, "wiki %s: HTTP status %ld (is this the URL of api.php?)",
                             c->api, r.status);
            goto done;
        }
        char perr[256] = "";
        if (rag_wiki_resp_parse(r.body, r.body_len, out, perr, sizeof perr) != RAG_OK) {
            rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "wiki %s (%.80s): malformed answer: %s", c->api, what, perr);
            goto done;
        }
        if (out->error_code && strcmp(out->error_code, "maxlag") == 0) {
            /* the database replicas lag: wait as told (Retry-After), then again */
            snprintf(last, sizeof last, "the wiki is lagging (maxlag): %s", out->error_info ? out->error_info : "");
            if (retry_after < 0) retry_after = 5;
            rag_wiki_resp_release(out);
            continue;
        }
        if (out->error_code && (strcmp(out->error_code, "ratelimited") == 0 ||
                                strncmp(out->error_code, "internal_api_error_", 19) == 0)) {
            /* the wiki's own rate limit, or a transient server-side failure
             * (a database error): back off and try again */
            snprintf(last, sizeof last, "%s: %s", out->error_code, out->error_info ? out->error_info : "");
            rag_wiki_resp_release(out);
            continue;
        }
        rc = RAG_OK;
        goto done;
    }
    rc = rag_ing_err(err, errlen, RAG_ERR_IO, "wiki %s (%.80s): giving up after %d attempt%s: %s", c->api, what,
                     c->p.max_attempts, c->p.max_attempts == 1 ? "" : "s", last);
done:
    /* wipe the login body (it holds the password) */
    if (post && q.data) memset(q.data, 0, q.len);
    rag_buf_release(&q);
    if (rc != RAG_OK) rag_wiki_resp_release(out);
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
    if (rag_buf_append(&b, "action=login&lgname=", 20) || rag_wiki_urlencode(&b, user, strlen(user)) ||
        rag_buf_append(&b, "&lgpassword=", 12) || rag_wiki_urlencode(&b, password, strlen(password)) ||
        rag_buf_append(&b, "&lgtoken=", 9) || rag_wiki_urlencode(&b, r.logintoken, strlen(r.logintoken))) {
        rc = rag_ing_err(err, errlen, RAG_ERR_NOMEM, "out of memory");
        goto done;
    }
    rag_wiki_resp_release(&r);
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
    rag_wiki_resp_release(&r);
    return rc;
}

int rag_wiki_client_login(wiki_client *c, const char *user, const char *password, char *err, size_t errlen) {
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

int rag_wiki_client_call(wiki_client *c, const char *params, bool post, wiki_resp *out, char *err, size_t errlen) {
    if (!c) return rag_ing_err(err, errlen, RAG_ERR_ARG, "wiki: bad arguments");
    bool assert_user = c->logged_in;
    int rc = call_raw(c, params, post, assert_user, out, err, errlen);
    if (rc != RAG_OK || !assert_user || !out->error_code || strcmp(out->error_code, "assertuserfailed") != 0) return rc;
    /* the session ended (expired, or the wiki restarted): log in again once,
     * then repeat the call; never go on as an anonymous reader, who may see
     * less and would make pages look deleted */
    rag_wiki_resp_release(out);
    char lerr[512] = "";
    if ((rc = login_raw(c, c->user, c->password, lerr, sizeof lerr)) != RAG_OK)
        return rag_ing_err(err, errlen, rc, "wiki %s: the login session ended and logging in again failed: %s", c->api, lerr);
    c->relogins++;
    rc = call_raw(c, params, post, true, out, err, errlen);
    if (rc == RAG_OK && out->error_code && strcmp(out->error_code, "assertuserfailed") == 0) {
        rag_wiki_resp_release(out);
        rc = rag_ing_err(err, errlen, RAG_ERR_IO, "wiki %s: not logged in even after logging in again (%s)", c->api,
                         c->user);
    }
    return rc;
}
