/* wiki.h — the MediaWiki connector over the Action API. See docs/wiki.md.
 *
 * rag_wiki_sync mirrors the pages of the chosen namespaces of one wiki into
 * the index: uri = the page's URL, title, type "wiki", version = revision
 * id, groups from the access rules. Incremental by default (recentchanges +
 * logevents since the sync point kept in the index meta); a full sync when
 * asked, when there is no sync point, or when the wiki may have forgotten
 * changes since then. Each page is one transaction; the sync point advances
 * only at the end of a complete run, so a run that dies leaves a consistent
 * index and the next run finishes the work. */
#ifndef MRAG_RAG_WIKI_H
#define MRAG_RAG_WIKI_H

#include "rag/access.h"
#include "rag/base.h"
#include "rag/ingest.h"

typedef struct {
    const char *url;            /* api.php URL; another URL gets "/api.php" appended */
    const int *namespaces;      /* namespace numbers; NULL/0: {0} */
    size_t n_namespaces;
    const char *username;       /* bot password user ("Admin@mrag"); NULL: anonymous */
    const char *password;
    const char *ca_file;        /* CA bundle used instead of the system's (a private CA);
                                   TLS is always verified */
    const rag_access *access;   /* NULL: every page public */
    bool full;                  /* enumerate everything, remove what is gone */
    double rate;                /* requests per second, default 10 (<= 0 unlimited) */
    int timeout_ms;             /* per request, default 60000 */
    int connect_timeout_ms;     /* default 10000 */
    int max_attempts;           /* tries per request, default 5 */
    int backoff_ms;             /* first retry wait, default 500 (doubles, jittered) */
    int max_backoff_ms;         /* default 30000 */
    size_t max_response_bytes;  /* largest API answer, default 32 MB */
    int parallel;               /* page fetches in flight, default 4 (1: one after
                                   another); they share `rate`; results are
                                   stored in page order, as a sequential run */
    size_t max_pages;           /* test hook: stop after this many page writes (0 = no limit) */
    rag_ingest_cb progress;     /* events: path = page URL; outcome added/updated/
                                   renamed (moved)/removed/unchanged/failed */
    void *user;
    volatile int *cancel;       /* non-zero stops between pages */
} rag_wiki_params;

rag_wiki_params rag_wiki_default_params(void);

typedef struct {
    size_t added, updated, moved, removed, unchanged, failed;
    size_t regrouped;           /* unchanged pages whose access groups changed */
    size_t pages_checked;       /* pages looked at */
    size_t requests, retries;   /* HTTP requests (attempts) and retries */
    size_t relogins;            /* logins repeated because the session ended */
    uint64_t chunks_added;
    double seconds;
    bool full;                  /* this run was a full sync */
    char full_reason[128];      /* why ("--full", "first sync", ...) */
    bool cancelled;             /* cancel flag or max_pages: sync point not advanced */
    bool rules_missing;         /* no access rules given, but earlier runs had some:
                                   pages kept their groups, new pages are public */
} rag_wiki_stats;

/* Syncs one wiki into the store through ing (which must write to s). The
 * meta keys "wiki:<api url>:..." hold the sync point. Per-page problems are
 * outcomes (the page is retried next run), not errors. Returns RAG_OK when
 * the run completed or was cancelled (stats filled), else an error with err
 * naming the wiki and the problem: RAG_ERR_ARG (bad URL, wrong password:
 * MediaWiki's reason), RAG_ERR_IO (network after retries, read denied,
 * store failure), RAG_ERR_FORMAT, RAG_ERR_LIMIT. */
int rag_wiki_sync(rag_ingester *ing, idx_store *s, const rag_wiki_params *p, rag_wiki_stats *stats,
                  char *err, size_t errlen);

#endif
