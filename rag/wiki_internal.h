/* wiki_internal.h — the MediaWiki connector's pieces shared by rag/wiki.c
 * (sync), rag/wiki_http.c (libcurl client) and rag/wiki_json.c (parsing of
 * Action API answers: outside bytes, fuzzed by tests/fuzz/fuzz_wiki.c). */
#ifndef MRAG_RAG_WIKI_INTERNAL_H
#define MRAG_RAG_WIKI_INTERNAL_H

#include "rag/ingest_internal.h"
#include "rag/rag.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits on what one answer may hold (beyond the byte limit of the body). */
#define WIKI_MAX_PAGES_PER_ANSWER 5000
#define WIKI_MAX_CATEGORIES 256     /* per page; more are ignored */
#define WIKI_MAX_CHANGES_PER_ANSWER 5000
#define WIKI_MAX_STRING 4096        /* titles, URLs, timestamps, messages */
#define WIKI_MAX_JSON_VALUES 1000000 /* values in one answer (bounds cJSON's memory) */

/* One page of a query answer (prop=info|categories|revisions). */
typedef struct {
    int64_t pageid;             /* 0 for a missing page */
    int ns;
    char *title;                /* "Intern:Salaries" */
    char *url;                  /* fullurl when absolute, else canonicalurl; may be NULL */
    int64_t revid;              /* lastrevid (or revisions[0].revid) */
    char *timestamp;            /* of that revision, ISO 8601, may be NULL */
    int64_t length;             /* page length in bytes (wikitext) */
    bool missing, redirect, invalid;
    char **categories;          /* "Category:Office", as the API gives them */
    size_t n_categories;
} wiki_page;

/* One change from list=recentchanges or list=logevents. */
typedef struct {
    int ns;
    char *title;
    char *type;                 /* rc: "edit"/"new"/"log"; logevents: "log" */
    char *logtype, *logaction;  /* "move"/"move", "delete"/"delete", ... or NULL */
    int target_ns;              /* moves: where the page went */
    char *target_title;         /* NULL unless a move */
    char *timestamp;
} wiki_change;

/* Everything the connector reads from one api.php answer. Fields absent from
 * the answer stay zero/NULL. All strings owned; release with rag_wiki_resp_release. */
typedef struct {
    char *error_code, *error_info;  /* {"error":{"code","info"}} */
    char *cont;                 /* the "continue" object as "&k=v&..." (URL-encoded), or NULL */
    bool batchcomplete;
    wiki_page *pages;
    size_t n_pages;
    wiki_change *changes;       /* recentchanges then logevents, in answer order */
    size_t n_changes;
    /* meta=siteinfo&siprop=general */
    char *server, *articlepath, *time, *generator;
    /* meta=tokens&type=login */
    char *logintoken;
    /* action=login */
    char *login_result, *login_reason;
    /* action=parse */
    char *parse_text;
    size_t parse_text_len;
    int64_t parse_revid;
    char *parse_title;
} wiki_resp;

/* Parses one api.php answer (formatversion=2 JSON) of len bytes. Unknown
 * fields are ignored; fields of the wrong type, strings over WIKI_MAX_STRING
 * (except parse text) and more than WIKI_MAX_* items are errors. Returns
 * RAG_OK with *out filled, or RAG_ERR_FORMAT with err saying what is wrong
 * (and *out empty). */
int rag_wiki_resp_parse(const char *body, size_t len, wiki_resp *out, char *err, size_t errlen);
void rag_wiki_resp_release(wiki_resp *r);

/* Parses "YYYY-MM-DDTHH:MM:SSZ" into seconds since the epoch; false when the
 * text is not exactly that. */
bool rag_wiki_parse_time(const char *s, int64_t *out);
/* Formats seconds since the epoch as "YYYY-MM-DDTHH:MM:SSZ" into buf[21]. */
void rag_wiki_format_time(int64_t t, char buf[21]);

/* Appends s percent-encoded (everything but unreserved characters) to b. */
int rag_wiki_urlencode(rag_buf *b, const char *s, size_t len);

/* ------------------------------------------------------------ HTTP client */

typedef struct wiki_client wiki_client;

typedef struct {
    const char *api;            /* api.php URL, http(s) */
    const char *ca_file;        /* NULL: system CAs */
    double rate;                /* requests/s, <= 0: unlimited */
    int timeout_ms;             /* whole request */
    int connect_timeout_ms;
    int max_attempts;           /* tries per request (>= 1) */
    int backoff_ms, max_backoff_ms;
    size_t max_bytes;           /* largest answer body */
    const char *user_agent;
    volatile int *cancel;       /* non-zero ends waits early (RAG_ERR_IO "cancelled") */
} wiki_client_params;

/* *out owned, free with rag_wiki_client_free. */
int rag_wiki_client_new(const wiki_client_params *p, wiki_client **out, char *err, size_t errlen);
void rag_wiki_client_free(wiki_client *c);   /* NULL is a no-op */

/* Calls api.php with params ("action=query&...", URL-encoded) plus
 * format=json&formatversion=2&maxlag=5, as GET (or POST with the params in
 * the body). Retries timeouts, connection errors, 5xx/429/408, and the API
 * errors maxlag, ratelimited and internal_api_error_* with
 * exponential backoff + jitter (Retry-After honoured), at most max_attempts
 * tries. On RAG_OK *out holds the parsed answer, which may carry an API
 * error (out->error_code) other than maxlag. On failure err names the URL
 * and the problem: RAG_ERR_IO (network, HTTP status, TLS, cancelled),
 * RAG_ERR_LIMIT (body too large), RAG_ERR_FORMAT (not JSON). After a login
 * every call carries assert=user; when the wiki answers assertuserfailed
 * (the session ended) the client logs in again once and repeats the call. */
int rag_wiki_client_call(wiki_client *c, const char *params, bool post, wiki_resp *out,
                     char *err, size_t errlen);

/* Logs in with a bot password (action=login), the session cookie kept in
 * the client (and the credentials, to log in again when the session ends).
 * RAG_ERR_ARG with MediaWiki's reason on bad credentials. */
int rag_wiki_client_login(wiki_client *c, const char *user, const char *password, char *err, size_t errlen);

/* Counters: requests sent (each attempt), retries, logins repeated after the
 * session ended. */
void rag_wiki_client_counts(const wiki_client *c, size_t *requests, size_t *retries, size_t *relogins);

/* ------------------------------------------------------------ page fetches
 * (rag/wiki_fetch.c): the rendered HTML of the next pages is fetched by N
 * threads while the sync stores the current one; the sync takes each
 * result back in page order, so the index is the one a sequential run
 * makes. */

/* The action=parse parameters for one revision. */
void rag_wiki_parse_params(char *buf, size_t n, int64_t revid);

enum { WIKI_FETCH_QUEUED = 1, WIKI_FETCH_RUNNING, WIKI_FETCH_DONE };

typedef struct wiki_fetch {
    int64_t revid;              /* set by the submitter (> 0) */
    /* set by the fetcher */
    int state;
    int rc;                     /* rag_wiki_client_call's */
    char err[768];
    wiki_resp r;                /* the answer: the taker may move it out (then zero it) */
    struct wiki_fetch *next;    /* the queue's */
} wiki_fetch;

typedef struct wiki_fetcher wiki_fetcher;

/* n clients made from cp, each with cp->rate / n (the run's rate is
 * shared) and logged in when user is not NULL, and their threads. The
 * caller's cancel flag (cp->cancel) aborts transfers while the caller
 * waits. *out owned. */
int rag_wiki_fetcher_new(const wiki_client_params *cp, const char *user, const char *password, int n,
                         wiki_fetcher **out, char *err, size_t errlen);
/* Queues j (which must live until it is dropped). */
void rag_wiki_fetcher_submit(wiki_fetcher *f, wiki_fetch *j);
/* Waits until j is done. */
void rag_wiki_fetcher_wait(wiki_fetcher *f, wiki_fetch *j);
/* Ends j: out of the queue when not started, else waited for (its
 * transfer aborted first with abort, which then aborts all that are in
 * flight: for the end of a run); its answer released. */
void rag_wiki_fetcher_drop(wiki_fetcher *f, wiki_fetch *j, bool abort);
/* Adds the clients' counters. */
void rag_wiki_fetcher_counts(const wiki_fetcher *f, size_t *requests, size_t *retries, size_t *relogins);
void rag_wiki_fetcher_free(wiki_fetcher *f);   /* NULL: no-op */

#endif
