/* wiki.c — the MediaWiki connector's sync (see docs/wiki.md): full sync by
 * generator=allpages per namespace, incremental sync by recentchanges and
 * logevents since the sync point kept in the index meta; each page is
 * fetched as rendered HTML (action=parse), extracted, chunked, embedded and
 * stored in its own transaction. Never prints: progress goes through the
 * caller's callback. */
#define _GNU_SOURCE
#include "rag/wiki_internal.h"
#include "llm/llm.h"

#include "index/index.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Changes are read from this long before the sync point: a change committed
 * late with an earlier timestamp is still seen (re-checking a page whose
 * revision is unchanged costs one shared query, no embedding). */
#define WIKI_SINCE_OVERLAP_S 120
#define WIKI_TITLES_PER_QUERY 50
/* This many pages in a row failing on the network ends the run: the wiki is
 * down, and waiting out every page's retries would take forever. */
#define WIKI_MAX_NET_FAILS_IN_A_ROW 3

rag_wiki_params rag_wiki_default_params(void) {
    rag_wiki_params p;
    memset(&p, 0, sizeof p);
    p.rate = 10;
    p.timeout_ms = 60000;
    p.connect_timeout_ms = 10000;
    p.max_attempts = 5;
    p.backoff_ms = 500;
    p.max_backoff_ms = 30000;
    p.max_response_bytes = 32u << 20;
    p.parallel = 4;
    return p;
}

/* A title to look at in an incremental sync, with what the logs say about it. */
typedef struct {
    char *title;
    char *moved_to;         /* a move source: its new title (in a synced namespace) */
    char *moved_from;       /* a move target: its old title */
} dirty_title;

typedef struct {
    rag_ingester *ing;
    idx_store *s;
    const rag_wiki_params *p;
    rag_wiki_stats *st;
    wiki_client *c;
    wiki_client_params cp;  /* c's, for the fetcher's clients */
    wiki_fetcher *f;        /* the page fetches in flight (made at the first), or NULL */
    wiki_fetch *pf;         /* the current page's fetch when it was started ahead, or NULL */
    char *api;
    char *prefix;           /* URL prefix of the wiki's pages (server + article path) */
    char *k_since, *k_ns, *k_access, *k_retry;  /* meta keys */
    char ns_list[512];      /* "0,100" */
    const char *access_hash;
    double t0;
    size_t writes;          /* page writes (for max_pages) */
    int net_fails;          /* pages failing on the network in a row */
    bool stop;              /* cancelled or max_pages reached */
    rag_buf retry;          /* titles that failed, one per line */
    char **seen;            /* full sync: URLs of existing pages */
    size_t n_seen, cap_seen;
    dirty_title *dirty;     /* incremental: sorted by title */
    size_t n_dirty, cap_dirty;
    char *err;
    size_t errlen;
} wsync;

static double now_s(void) { return rag_now_ms() / 1e3; }

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dup_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

static void emit(wsync *w, rag_ingest_event_kind kind, const char *url, rag_ingest_outcome o, const char *reason,
                 int n_chunks) {
    if (!w->p->progress) return;
    rag_ingest_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.path = url;
    ev.outcome = o;
    ev.reason = reason;
    ev.n_chunks = n_chunks;
    ev.files_done = w->st->pages_checked;
    ev.files_total = w->st->pages_checked + (kind == RAG_ING_EV_FILE_BEGIN);
    ev.chunks_done = w->st->chunks_added;
    ev.elapsed_s = now_s() - w->t0;
    w->p->progress(w->p->user, &ev);
}

static bool ns_selected(const wsync *w, int ns) {
    if (!w->p->namespaces || !w->p->n_namespaces) return ns == 0;
    for (size_t i = 0; i < w->p->n_namespaces; i++)
        if (w->p->namespaces[i] == ns) return true;
    return false;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_dirty(const void *a, const void *b) {
    return strcmp(((const dirty_title *)a)->title, ((const dirty_title *)b)->title);
}
static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static dirty_title *find_dirty(wsync *w, const char *title) {
    dirty_title key = {.title = (char *)title};
    return w->n_dirty ? bsearch(&key, w->dirty, w->n_dirty, sizeof key, cmp_dirty) : NULL;
}

/* Adds a title to the dirty list (unsorted; sorted and merged later). */
static int add_dirty(wsync *w, const char *title, const char *moved_to, const char *moved_from) {
    if (!title || !*title) return RAG_OK;
    if (rag_array_grow(&w->dirty, &w->cap_dirty, w->n_dirty + 1, sizeof *w->dirty, 64)) return RAG_ERR_NOMEM;
    dirty_title *d = &w->dirty[w->n_dirty];
    memset(d, 0, sizeof *d);
    d->title = strdup(title);
    d->moved_to = moved_to ? strdup(moved_to) : NULL;
    d->moved_from = moved_from ? strdup(moved_from) : NULL;
    if (!d->title || (moved_to && !d->moved_to) || (moved_from && !d->moved_from)) {
        free(d->title);
        free(d->moved_to);
        free(d->moved_from);
        return RAG_ERR_NOMEM;
    }
    w->n_dirty++;
    return RAG_OK;
}

/* Sorts the dirty list and merges duplicates: a title keeps the move facts
 * of any of its entries (qsort is not stable, so which one of two moves of
 * the same title wins is not defined; it only changes the wording of the
 * progress event, never what is stored). */
static void merge_dirty(wsync *w) {
    if (!w->n_dirty) return;
    qsort(w->dirty, w->n_dirty, sizeof *w->dirty, cmp_dirty);
    size_t o = 0;
    for (size_t i = 0; i < w->n_dirty; i++) {
        if (o && strcmp(w->dirty[o - 1].title, w->dirty[i].title) == 0) {
            dirty_title *k = &w->dirty[o - 1], *d = &w->dirty[i];
            if (d->moved_to) { free(k->moved_to); k->moved_to = d->moved_to; d->moved_to = NULL; }
            if (d->moved_from) { free(k->moved_from); k->moved_from = d->moved_from; d->moved_from = NULL; }
            free(d->title);
            free(d->moved_to);
            free(d->moved_from);
            continue;
        }
        w->dirty[o++] = w->dirty[i];
    }
    w->n_dirty = o;
}

static int add_seen(wsync *w, const char *url) {
    if (rag_array_grow(&w->seen, &w->cap_seen, w->n_seen + 1, sizeof *w->seen, 256)) return RAG_ERR_NOMEM;
    if (!(w->seen[w->n_seen] = strdup(url))) return RAG_ERR_NOMEM;
    w->n_seen++;
    return RAG_OK;
}

static void note_retry(wsync *w, const char *title) {
    /* a failure to remember only costs the retry: the next full sync sees it */
    if (rag_buf_append(&w->retry, title, strlen(title)) == RAG_OK) rag_buf_putc(&w->retry, '\n');
}

/* The title without its namespace prefix ("Intern:Salaries" -> "Salaries"). */
static const char *bare_title(const wiki_page *pg) {
    if (pg->ns == 0) return pg->title;
    const char *colon = strchr(pg->title, ':');
    return colon ? colon + 1 : pg->title;
}

/* The page's access groups by the rules (borrowed; "" = public). */
static const char *page_groups(wsync *w, const wiki_page *pg) {
    if (!w->p->access) return "";
    const char *cats[WIKI_MAX_CATEGORIES];
    size_t n = 0;
    for (size_t i = 0; i < pg->n_categories && n < WIKI_MAX_CATEGORIES; i++) {
        const char *colon = strchr(pg->categories[i], ':');
        cats[n++] = colon ? colon + 1 : pg->categories[i];
    }
    const char *g = rag_access_for_page(w->p->access, pg->ns, bare_title(pg), cats, n);
    return g ? g : "";
}

/* Fatal store error: message into err. */
static int store_fail(wsync *w, const char *what) {
    return rag_ing_err(w->err, w->errlen, RAG_ERR_IO, "wiki %s: %s: %s", w->api, what, idx_errmsg(w->s));
}

/* Counts one page write against max_pages and the cancel flag. */
static void count_write(wsync *w) {
    w->writes++;
    if (w->p->max_pages && w->writes >= w->p->max_pages) w->stop = true;
}

/* Appends c escaped for HTML text to b. */
static int html_escape(rag_buf *b, const char *s) {
    int rc = RAG_OK;
    for (; *s && rc == RAG_OK; s++) {
        switch (*s) {
        case '<': rc = rag_buf_append(b, "&lt;", 4); break;
        case '>': rc = rag_buf_append(b, "&gt;", 4); break;
        case '&': rc = rag_buf_append(b, "&amp;", 5); break;
        default: rc = rag_buf_putc(b, *s); break;
        }
    }
    return rc;
}

/* Fetches the rendered HTML of the page's revision and stores it. Per-page
 * problems go to *reason (RAG_OK returned, *failed set); store failures are
 * fatal (error returned). */
static int fetch_and_put(wsync *w, const wiki_page *pg, const char *groups, bool *failed, bool *net_fail,
                         int *n_chunks, char *reason, size_t reason_len) {
    int rc = RAG_OK;
    wiki_resp r;
    rag_buf html = {0};
    rag_doc *doc = NULL;
    memset(&r, 0, sizeof r);
    *failed = false;
    *net_fail = false;
    *n_chunks = 0;
    char cerr[768] = "";
    int crc;
    if (w->pf && w->pf->revid == pg->revid) {
        /* fetched ahead: its answer */
        rag_wiki_fetcher_wait(w->f, w->pf);
        crc = w->pf->rc;
        snprintf(cerr, sizeof cerr, "%s", w->pf->err);
        r = w->pf->r;
        memset(&w->pf->r, 0, sizeof w->pf->r);
    } else {
        char params[192];
        rag_wiki_parse_params(params, sizeof params, pg->revid);
        crc = rag_wiki_client_call(w->c, params, false, &r, cerr, sizeof cerr);
    }
    if (crc != RAG_OK) {
        snprintf(reason, reason_len, "%s", cerr);
        *failed = true;
        *net_fail = crc == RAG_ERR_IO;
        goto done;
    }
    if (r.error_code) {
        /* e.g. nosuchrevid: edited or deleted since it was listed; next run */
        snprintf(reason, reason_len, "wiki %s: parse of revision %lld: %s%s%s", w->api, (long long)pg->revid,
                 r.error_code, r.error_info ? ": " : "", r.error_info ? r.error_info : "");
        *failed = true;
        goto done;
    }
    if (!r.parse_text) {
        snprintf(reason, reason_len, "wiki %s: parse of revision %lld returned no text", w->api, (long long)pg->revid);
        *failed = true;
        goto done;
    }
    /* the page title becomes the top heading, so every chunk's heading path
     * starts with it */
    if (rag_buf_append(&html, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>", 56) ||
        html_escape(&html, pg->title) || rag_buf_append(&html, "</title></head><body><h1>", 25) ||
        html_escape(&html, pg->title) || rag_buf_append(&html, "</h1>\n", 6) ||
        rag_buf_append(&html, r.parse_text, r.parse_text_len) || rag_buf_append(&html, "</body></html>\n", 15)) {
        rc = rag_ing_err(w->err, w->errlen, RAG_ERR_NOMEM, "out of memory");
        goto done;
    }
    rag_extract_params xp = rag_extract_default_params();
    char xerr[512] = "";
    if (rag_extract_memory(pg->url, html.data, html.len, RAG_DOC_HTML, &xp, &doc, xerr, sizeof xerr) != RAG_OK) {
        snprintf(reason, reason_len, "%s", xerr);
        *failed = true;
        goto done;
    }
    /* Line numbers of the rendered HTML mean nothing to a reader: a wiki
     * passage is cited by its page URL and heading. */
    for (size_t i = 0; i < doc->n_blocks; i++) doc->blocks[i].line_start = doc->blocks[i].line_end = 0;
    char sha[65], version[32];
    llm_sha256_hex(r.parse_text, r.parse_text_len, sha);
    snprintf(version, sizeof version, "%lld", (long long)pg->revid);
    int64_t ts = 0;
    if (!pg->timestamp || !rag_wiki_parse_time(pg->timestamp, &ts)) ts = 0;
    rag_put_meta m;
    memset(&m, 0, sizeof m);
    m.uri = pg->url;
    m.title = pg->title;
    m.type = "wiki";
    m.groups = groups;
    m.version = version;
    m.size = (int64_t)r.parse_text_len;
    m.mtime_ns = ts * 1000000000ll;
    m.sha256 = sha;
    char perr[768] = "";
    int prc = rag_ingester_put_ex(w->ing, &m, doc, n_chunks, perr, sizeof perr);
    if (prc == RAG_ERR_IO) { rc = rag_ing_err(w->err, w->errlen, RAG_ERR_IO, "wiki %s: %s: %s", w->api, pg->url, perr); goto done; }
    if (prc != RAG_OK) {
        snprintf(reason, reason_len, "%s", perr);
        *failed = true;
        goto done;
    }
done:
    rag_wiki_resp_release(&r);
    rag_buf_release(&html);
    rag_doc_free(doc);
    return rc;
}

/* Brings the index in line with one page as the wiki has it now: absent
 * (missing, redirect, namespace not synced) -> removed; same revision ->
 * unchanged (groups updated); else fetched and stored. mv: what the logs
 * say about a move of this title (may be NULL). */
static int reconcile(wsync *w, const wiki_page *pg, const dirty_title *mv) {
    int rc = RAG_OK;
    idx_doc old;
    memset(&old, 0, sizeof old);
    char reason[1024] = "";
    if (pg->invalid || !pg->title) return RAG_OK;
    if (!pg->url) {
        snprintf(reason, sizeof reason, "wiki %s: page %s: the answer has no URL", w->api, pg->title);
        w->st->failed++;
        note_retry(w, pg->title);
        emit(w, RAG_ING_EV_FILE_DONE, pg->title, RAG_ING_FAILED, reason, 0);
        return RAG_OK;
    }
    bool absent = pg->missing || pg->redirect || !ns_selected(w, pg->ns) || pg->revid <= 0;
    int grc = idx_doc_get(w->s, pg->url, &old);
    if (grc != IDX_OK && grc != IDX_ERR_NOTFOUND) { rc = store_fail(w, pg->url); goto done; }
    bool exists = grc == IDX_OK;
    if (absent) {
        if (!exists) goto done;     /* nothing to do, not counted */
        w->st->pages_checked++;
        if (idx_doc_delete(w->s, pg->url) != IDX_OK) { rc = store_fail(w, pg->url); goto done; }
        count_write(w);
        if (mv && mv->moved_to) {
            snprintf(reason, sizeof reason, "moved to %s", mv->moved_to);
        } else {
            w->st->removed++;
            snprintf(reason, sizeof reason, "%s", pg->missing ? "deleted in the wiki" : pg->redirect ? "now a redirect"
                                                                                       : "not in a synced namespace");
        }
        emit(w, RAG_ING_EV_FILE_DONE, pg->url, RAG_ING_REMOVED, reason, 0);
        goto done;
    }
    if (w->seen && (rc = add_seen(w, pg->url)) != RAG_OK) { rc = rag_ing_err(w->err, w->errlen, rc, "out of memory"); goto done; }
    w->st->pages_checked++;
    /* without rules a page keeps the groups it has (a run without --access
     * by mistake must not make restricted pages public); new pages are public */
    const char *groups = w->p->access ? page_groups(w, pg) : exists && old.groups ? old.groups : "";
    char version[32];
    snprintf(version, sizeof version, "%lld", (long long)pg->revid);
    if (exists && old.version && strcmp(old.version, version) == 0 && (!old.status || strcmp(old.status, "ok") == 0)) {
        if (strcmp(old.groups ? old.groups : "", groups) != 0) {
            if (idx_doc_set_groups(w->s, pg->url, groups) != IDX_OK) { rc = store_fail(w, pg->url); goto done; }
            w->st->regrouped++;
        }
        w->st->unchanged++;
        emit(w, RAG_ING_EV_FILE_DONE, pg->url, RAG_ING_UNCHANGED, NULL, (int)old.n_chunks);
        goto done;
    }
    emit(w, RAG_ING_EV_FILE_BEGIN, pg->url, RAG_ING_ADDED, NULL, 0);
    bool failed = false, net = false;
    int nc = 0;
    if ((rc = fetch_and_put(w, pg, groups, &failed, &net, &nc, reason, sizeof reason)) != RAG_OK) goto done;
    if (failed) {
        /* the old revision stays searchable until the page can be fetched */
        w->st->failed++;
        note_retry(w, pg->title);
        emit(w, RAG_ING_EV_FILE_DONE, pg->url, RAG_ING_FAILED, reason, 0);
        if (net && ++w->net_fails >= WIKI_MAX_NET_FAILS_IN_A_ROW) {
            rc = rag_ing_err(w->err, w->errlen, RAG_ERR_IO, "%d pages in a row failed, giving up: %s",
                             WIKI_MAX_NET_FAILS_IN_A_ROW, reason);
        }
        goto done;
    }
    w->net_fails = 0;
    count_write(w);
    w->st->chunks_added += (uint64_t)nc;
    if (!exists && mv && mv->moved_from) {
        w->st->moved++;
        snprintf(reason, sizeof reason, "from %s", mv->moved_from);
        emit(w, RAG_ING_EV_FILE_DONE, pg->url, RAG_ING_RENAMED, reason, nc);
    } else {
        if (exists) w->st->updated++;
        else w->st->added++;
        emit(w, RAG_ING_EV_FILE_DONE, pg->url, exists ? RAG_ING_UPDATED : RAG_ING_ADDED, NULL, nc);
    }
done:
    idx_doc_release(&old);
    return rc;
}

/* True when reconcile will fetch pg: a page of a synced namespace whose
 * revision the index does not hold (as reconcile decides). */
static bool needs_fetch(wsync *w, const wiki_page *pg) {
    if (pg->invalid || !pg->title || !pg->url || pg->missing || pg->redirect || !ns_selected(w, pg->ns) ||
        pg->revid <= 0)
        return false;
    idx_doc old;
    memset(&old, 0, sizeof old);
    if (idx_doc_get(w->s, pg->url, &old) != IDX_OK) return true;
    char version[32];
    snprintf(version, sizeof version, "%lld", (long long)pg->revid);
    bool same = old.version && strcmp(old.version, version) == 0 && (!old.status || strcmp(old.status, "ok") == 0);
    idx_doc_release(&old);
    return !same;
}

/* Reconciles the pages of a complete batch in order, with the HTML of up
 * to 2 x parallel pages ahead being fetched meanwhile (the answers are
 * taken in page order: the index is the one a sequential run makes). */
static int reconcile_batch(wsync *w, wiki_page *batch, size_t n) {
    int rc = RAG_OK;
    int par = w->p->parallel;
    wiki_fetch *pf = NULL;
    if (par > 1 && n > 1) {
        if (!(pf = calloc(n, sizeof *pf))) return rag_ing_err(w->err, w->errlen, RAG_ERR_NOMEM, "out of memory");
    }
    size_t next = 0, window = (size_t)(2 * par);
    for (size_t i = 0; i < n && !w->stop; i++) {
        if (w->p->cancel && *w->p->cancel) { w->stop = true; break; }
        while (pf && next < n && next < i + window) {
            if (needs_fetch(w, &batch[next])) {
                if (!w->f && (rc = rag_wiki_fetcher_new(&w->cp, w->p->username, w->p->password, par, &w->f, w->err,
                                                        w->errlen)) != RAG_OK)
                    goto done;
                pf[next].revid = batch[next].revid;
                rag_wiki_fetcher_submit(w->f, &pf[next]);
            }
            next++;
        }
        /* revid marks a fetch submitted (the main thread's field: state is the fetcher's) */
        w->pf = pf && pf[i].revid ? &pf[i] : NULL;
        const dirty_title *mv = w->dirty ? find_dirty(w, batch[i].title) : NULL;
        rc = reconcile(w, &batch[i], mv);
        w->pf = NULL;
        if (pf && pf[i].revid) {
            rag_wiki_fetcher_drop(w->f, &pf[i], false);
            pf[i].revid = 0;
        }
        if (rc != RAG_OK) goto done;
    }
done:
    for (size_t i = 0; pf && i < n; i++)
        if (pf[i].revid) rag_wiki_fetcher_drop(w->f, &pf[i], true);
    free(pf);
    return rc;
}

/* Moves pages of an answer into the batch, merging a page continued over
 * several answers (its categories come in pieces). */
static int batch_merge(wiki_page **batch, size_t *n, size_t *cap, wiki_resp *r) {
    for (size_t i = 0; i < r->n_pages; i++) {
        wiki_page *src = &r->pages[i];
        wiki_page *dst = NULL;
        for (size_t j = 0; j < *n && !dst; j++) {
            wiki_page *b = &(*batch)[j];
            if (src->pageid ? b->pageid == src->pageid : (!b->pageid && strcmp(b->title, src->title) == 0)) dst = b;
        }
        if (dst) {
            size_t want = dst->n_categories + src->n_categories;
            if (want > WIKI_MAX_CATEGORIES) want = WIKI_MAX_CATEGORIES;
            if (want > dst->n_categories) {
                char **cc = realloc(dst->categories, want * sizeof *cc);
                if (!cc) return RAG_ERR_NOMEM;
                dst->categories = cc;
                for (size_t k = 0; k < src->n_categories && dst->n_categories < want; k++) {
                    dst->categories[dst->n_categories++] = src->categories[k];
                    src->categories[k] = NULL;
                }
            }
            continue;
        }
        if (rag_array_grow(batch, cap, *n + 1, sizeof **batch, 64)) return RAG_ERR_NOMEM;
        (*batch)[(*n)++] = *src;
        memset(src, 0, sizeof *src);
    }
    return RAG_OK;
}

static void batch_clear(wiki_page *batch, size_t *n) {
    for (size_t i = 0; i < *n; i++) {
        wiki_page *p = &batch[i];
        free(p->title);
        free(p->url);
        free(p->timestamp);
        for (size_t k = 0; k < p->n_categories; k++) free(p->categories[k]);
        free(p->categories);
    }
    *n = 0;
}

/* Runs a page query (params without continuation) to the end, handing each
 * complete batch of pages to reconcile. Listing failures are fatal. */
static int query_pages(wsync *w, const char *params, const char *what) {
    int rc = RAG_OK;
    wiki_page *batch = NULL;
    size_t n = 0, cap = 0;
    char *cont = NULL;
    rag_buf q = {0};
    wiki_resp r;
    memset(&r, 0, sizeof r);
    for (;;) {
        if (w->stop || (w->p->cancel && *w->p->cancel)) { w->stop = true; break; }
        q.len = 0;
        if (rag_buf_append(&q, params, strlen(params)) || (cont && rag_buf_append(&q, cont, strlen(cont)))) {
            rc = rag_ing_err(w->err, w->errlen, RAG_ERR_NOMEM, "out of memory");
            goto done;
        }
        char cerr[768] = "";
        int crc = rag_wiki_client_call(w->c, q.data, false, &r, cerr, sizeof cerr);
        if (crc != RAG_OK) {
            if (w->p->cancel && *w->p->cancel) { w->stop = true; break; }
            rc = rag_ing_err(w->err, w->errlen, crc, "listing %s failed: %s", what, cerr);
            goto done;
        }
        if (r.error_code) {
            rc = rag_ing_err(w->err, w->errlen, RAG_ERR_IO, "wiki %s: listing %s: %s%s%s", w->api, what, r.error_code,
                             r.error_info ? ": " : "", r.error_info ? r.error_info : "");
            goto done;
        }
        if (batch_merge(&batch, &n, &cap, &r) != RAG_OK) { rc = rag_ing_err(w->err, w->errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
        free(cont);
        cont = r.cont;
        r.cont = NULL;
        bool complete = r.batchcomplete || !cont;
        rag_wiki_resp_release(&r);
        if (complete) {
            if ((rc = reconcile_batch(w, batch, n)) != RAG_OK) goto done;
            batch_clear(batch, &n);
        }
        if (!cont) break;
    }
done:
    batch_clear(batch, &n);
    free(batch);
    free(cont);
    rag_buf_release(&q);
    rag_wiki_resp_release(&r);
    return rc;
}

static const char *page_props =
    "&prop=info%7Ccategories%7Crevisions&inprop=url&rvprop=ids%7Ctimestamp&cllimit=max";

/* Full sync: every page of every selected namespace, then the index's pages
 * of this wiki that were not seen leave it. */
static int sync_full(wsync *w) {
    int rc = RAG_OK;
    if (!(w->seen = malloc(256 * sizeof *w->seen))) return rag_ing_err(w->err, w->errlen, RAG_ERR_NOMEM, "out of memory");
    w->cap_seen = 256;
    int def_ns = 0;
    const int *nss = w->p->n_namespaces ? w->p->namespaces : &def_ns;
    size_t n_ns = w->p->n_namespaces ? w->p->n_namespaces : 1;
    for (size_t i = 0; i < n_ns && !w->stop; i++) {
        char params[512], what[64];
        snprintf(params, sizeof params,
                 "action=query&generator=allpages&gapnamespace=%d&gapfilterredir=nonredirects&gaplimit=%d%s", nss[i],
                 WIKI_TITLES_PER_QUERY, page_props);
        snprintf(what, sizeof what, "the pages of namespace %d", nss[i]);
        if ((rc = query_pages(w, params, what)) != RAG_OK) return rc;
    }
    if (w->stop) return RAG_OK;
    /* everything was listed: what the index holds beyond that is gone */
    qsort(w->seen, w->n_seen, sizeof *w->seen, cmp_str);
    idx_doc *docs = NULL;
    size_t n = 0;
    if (idx_doc_list(w->s, w->prefix, &docs, &n) != IDX_OK) return store_fail(w, "listing the index");
    for (size_t i = 0; i < n; i++) {
        const char *u = docs[i].uri;
        /* the list is by prefix already; check it exactly anyway (a store
         * may match prefixes with LIKE) */
        if (!docs[i].type || strcmp(docs[i].type, "wiki") != 0 || strncmp(u, w->prefix, strlen(w->prefix)) != 0)
            continue;
        if (bsearch(&u, w->seen, w->n_seen, sizeof *w->seen, cmp_str)) continue;
        if (w->stop || (w->p->cancel && *w->p->cancel)) { w->stop = true; break; }
        if (idx_doc_delete(w->s, u) != IDX_OK && (rc = store_fail(w, u))) break;
        count_write(w);
        w->st->removed++;
        w->st->pages_checked++;
        emit(w, RAG_ING_EV_FILE_DONE, u, RAG_ING_REMOVED, "no longer in the wiki (or not in a synced namespace)", 0);
    }
    idx_doc_list_free(docs, n);
    return rc;
}

/* Collects the titles named by a change list (recentchanges or logevents)
 * since `since`, with continuation. */
static int collect_changes(wsync *w, const char *params, const char *what) {
    int rc = RAG_OK;
    char *cont = NULL;
    rag_buf q = {0};
    wiki_resp r;
    memset(&r, 0, sizeof r);
    for (;;) {
        q.len = 0;
        if (rag_buf_append(&q, params, strlen(params)) || (cont && rag_buf_append(&q, cont, strlen(cont)))) {
            rc = rag_ing_err(w->err, w->errlen, RAG_ERR_NOMEM, "out of memory");
            goto done;
        }
        char cerr[768] = "";
        int crc = rag_wiki_client_call(w->c, q.data, false, &r, cerr, sizeof cerr);
        if (crc != RAG_OK) { rc = rag_ing_err(w->err, w->errlen, crc, "reading %s failed: %s", what, cerr); goto done; }
        if (r.error_code) {
            rc = rag_ing_err(w->err, w->errlen, RAG_ERR_IO, "wiki %s: reading %s: %s%s%s", w->api, what, r.error_code,
                             r.error_info ? ": " : "", r.error_info ? r.error_info : "");
            goto done;
        }
        for (size_t i = 0; i < r.n_changes && rc == RAG_OK; i++) {
            const wiki_change *ch = &r.changes[i];
            if (!ch->title) continue;
            bool move = ch->logtype && strcmp(ch->logtype, "move") == 0 && ch->target_title;
            bool src_sel = ns_selected(w, ch->ns);
            bool dst_sel = move && ns_selected(w, ch->target_ns);
            if (src_sel) rc = add_dirty(w, ch->title, dst_sel ? ch->target_title : NULL, NULL);
            if (rc == RAG_OK && dst_sel) rc = add_dirty(w, ch->target_title, NULL, src_sel ? ch->title : NULL);
        }
        if (rc != RAG_OK) { rc = rag_ing_err(w->err, w->errlen, rc, "out of memory"); goto done; }
        free(cont);
        cont = r.cont;
        r.cont = NULL;
        rag_wiki_resp_release(&r);
        if (!cont) break;
    }
done:
    free(cont);
    rag_buf_release(&q);
    rag_wiki_resp_release(&r);
    return rc;
}

/* Incremental sync: the titles touched since `since` (and the ones that
 * failed last time) are reconciled in batches. */
static int sync_incremental(wsync *w, int64_t since, const char *retry) {
    int rc = RAG_OK;
    char from[21], params[512];
    rag_wiki_format_time(since - WIKI_SINCE_OVERLAP_S, from);
    snprintf(params, sizeof params,
             "action=query&list=recentchanges&rcprop=title%%7Cids%%7Ctimestamp%%7Cloginfo&rctype=edit%%7Cnew%%7Clog"
             "&rcdir=newer&rclimit=max&rcstart=%s", from);
    if ((rc = collect_changes(w, params, "the recent changes")) != RAG_OK) return rc;
    snprintf(params, sizeof params,
             "action=query&list=logevents&leprop=title%%7Ctype%%7Ctimestamp%%7Cdetails&ledir=newer&lelimit=max&lestart=%s",
             from);
    if ((rc = collect_changes(w, params, "the logs")) != RAG_OK) return rc;
    for (const char *r = retry; r && *r;) {
        const char *nl = strchr(r, '\n');
        size_t len = nl ? (size_t)(nl - r) : strlen(r);
        char *t = strndup(r, len);
        if (!t || add_dirty(w, t, NULL, NULL) != RAG_OK) { free(t); return rag_ing_err(w->err, w->errlen, RAG_ERR_NOMEM, "out of memory"); }
        free(t);
        r = nl ? nl + 1 : r + len;
    }
    merge_dirty(w);
    rag_buf q = {0};
    /* batches of up to 50 titles, and URLs under ~6 KB (servers often refuse
     * request lines over 8 KB; a German title grows a lot when encoded) */
    for (size_t i = 0; i < w->n_dirty && !w->stop && rc == RAG_OK;) {
        q.len = 0;
        if (rag_buf_append(&q, "action=query&titles=", 20)) { rc = RAG_ERR_NOMEM; break; }
        size_t j = i;
        for (; j < w->n_dirty && j < i + WIKI_TITLES_PER_QUERY && (j == i || q.len < 6000); j++) {
            if ((j > i && rag_buf_append(&q, "%7C", 3)) || rag_wiki_urlencode(&q, w->dirty[j].title, strlen(w->dirty[j].title))) {
                rc = RAG_ERR_NOMEM;
                break;
            }
        }
        if (rc == RAG_OK && rag_buf_append(&q, page_props, strlen(page_props))) rc = RAG_ERR_NOMEM;
        if (rc != RAG_OK) { rc = rag_ing_err(w->err, w->errlen, rc, "out of memory"); break; }
        rc = query_pages(w, q.data, "changed pages");
        i = j;
    }
    rag_buf_release(&q);
    return rc;
}

/* The api.php URL for what the user gave. Owned. */
static char *api_url(const char *url) {
    size_t n = strlen(url);
    if (n >= 7 && strcmp(url + n - 7, "api.php") == 0) return strdup(url);
    return dup_printf("%s%sapi.php", url, n && url[n - 1] == '/' ? "" : "/");
}

/* Reads the wiki's clock and URL shape (meta=siteinfo); turns "read
 * denied" into an error that says what to do. */
static int read_siteinfo(wsync *w, int64_t *now) {
    wiki_resp r;
    char cerr[768] = "";
    int rc = rag_wiki_client_call(w->c, "action=query&meta=siteinfo&siprop=general", false, &r, cerr, sizeof cerr);
    if (rc != RAG_OK) return rag_ing_err(w->err, w->errlen, rc, "%s", cerr);
    if (r.error_code) {
        if (strcmp(r.error_code, "readapidenied") == 0)
            rc = rag_ing_err(w->err, w->errlen, RAG_ERR_IO,
                             w->p->username ? "wiki %s: the account %s may not read this wiki (MediaWiki: %s)"
                                        : "wiki %s: the wiki needs a login to read%s (MediaWiki: %s); give --user and "
                                          "--password-file (a bot password, Special:BotPasswords)",
                             w->api, w->p->username ? w->p->username : "", r.error_info ? r.error_info : r.error_code);
        else
            rc = rag_ing_err(w->err, w->errlen, RAG_ERR_IO, "wiki %s: siteinfo: %s%s%s", w->api, r.error_code,
                             r.error_info ? ": " : "", r.error_info ? r.error_info : "");
        goto done;
    }
    if (!r.server || !r.articlepath || !r.time || !rag_wiki_parse_time(r.time, now)) {
        rc = rag_ing_err(w->err, w->errlen, RAG_ERR_FORMAT,
                         "wiki %s: the siteinfo answer lacks server, articlepath or time (is this a MediaWiki api.php?)",
                         w->api);
        goto done;
    }
    const char *dollar = strstr(r.articlepath, "$1");
    size_t ap = dollar ? (size_t)(dollar - r.articlepath) : strlen(r.articlepath);
    const char *scheme = strncmp(w->api, "https:", 6) == 0 ? "https:" : "http:";
    w->prefix = dup_printf("%s%s%.*s", strncmp(r.server, "//", 2) == 0 ? scheme : "", r.server, (int)ap, r.articlepath);
    if (!w->prefix) rc = rag_ing_err(w->err, w->errlen, RAG_ERR_NOMEM, "out of memory");
done:
    rag_wiki_resp_release(&r);
    return rc;
}

/* Decides full or incremental: sets st->full and st->full_reason, or *since
 * and *retry (owned, the titles that failed last time, may be NULL). Reads
 * the index meta and, for an incremental run, the oldest change the wiki
 * still keeps. Errors (store, network) are fatal. */
static int choose_mode(wsync *w, int64_t *since, char **retry) {
    rag_wiki_stats *st = w->st;
    const char *why = NULL;
    char *v = NULL;
    int rc = RAG_OK;
    wiki_resp r;
    memset(&r, 0, sizeof r);
    if (w->p->full) { why = "--full"; goto done; }
    int mrc = idx_meta_get(w->s, w->k_since, &v);
    if (mrc == IDX_ERR_NOTFOUND) { why = "first sync of this wiki"; goto done; }
    if (mrc != IDX_OK) { rc = store_fail(w, "reading the sync point"); goto done; }
    if (!rag_wiki_parse_time(v, since)) { why = "unreadable sync point"; goto done; }
    free(v);
    v = NULL;
    if (idx_meta_get(w->s, w->k_ns, &v) != IDX_OK || strcmp(v, w->ns_list) != 0) { why = "the namespaces changed"; goto done; }
    free(v);
    v = NULL;
    if (w->p->access && (idx_meta_get(w->s, w->k_access, &v) != IDX_OK || strcmp(v, w->access_hash) != 0)) {
        why = "the access rules changed";
        goto done;
    }
    /* the wiki keeps recent changes for $wgRCMaxAge: when the oldest one it
     * still has is newer than the sync point (or there is none), changes
     * may be lost */
    char cerr[768] = "";
    rc = rag_wiki_client_call(w->c, "action=query&list=recentchanges&rcdir=newer&rclimit=1&rcprop=timestamp", false, &r,
                          cerr, sizeof cerr);
    if (rc != RAG_OK) { rc = rag_ing_err(w->err, w->errlen, rc, "reading the recent changes failed: %s", cerr); goto done; }
    if (r.error_code) {
        rc = rag_ing_err(w->err, w->errlen, RAG_ERR_IO, "wiki %s: reading the recent changes: %s%s%s", w->api,
                         r.error_code, r.error_info ? ": " : "", r.error_info ? r.error_info : "");
        goto done;
    }
    int64_t oldest = 0;
    if (!r.n_changes || !r.changes[0].timestamp || !rag_wiki_parse_time(r.changes[0].timestamp, &oldest) || oldest > *since) {
        why = "the wiki's recent changes no longer reach back to the last sync";
        goto done;
    }
    if (idx_meta_get(w->s, w->k_retry, retry) != IDX_OK) *retry = NULL;
done:
    if (rc == RAG_OK && why) {
        st->full = true;
        snprintf(st->full_reason, sizeof st->full_reason, "%s", why);
    }
    rag_wiki_resp_release(&r);
    free(v);
    return rc;
}

int rag_wiki_sync(rag_ingester *ing, idx_store *s, const rag_wiki_params *p, rag_wiki_stats *stats, char *err,
                  size_t errlen) {
    int rc = RAG_OK;
    rag_wiki_stats local;
    wsync w;
    char *retry = NULL;
    int *nss = NULL;
    memset(&w, 0, sizeof w);
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!ing || !s || !p || !p->url) return rag_ing_err(err, errlen, RAG_ERR_ARG, "wiki: an ingester, a store and a URL are required");
    if ((p->username == NULL) != (p->password == NULL))
        return rag_ing_err(err, errlen, RAG_ERR_ARG, "wiki %s: give both a user and a password, or neither", p->url);
    w.ing = ing;
    w.s = s;
    w.p = p;
    w.st = stats;
    w.err = err;
    w.errlen = errlen;
    w.t0 = now_s();
    w.retry.limit = 1u << 20;
    if (!(w.api = api_url(p->url))) { rc = rag_ing_err(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
    /* the namespace list, sorted, as recorded with the sync point */
    size_t n_ns = p->n_namespaces ? p->n_namespaces : 1;
    if (!(nss = malloc(n_ns * sizeof *nss))) { rc = rag_ing_err(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < n_ns; i++) nss[i] = p->n_namespaces ? p->namespaces[i] : 0;
    qsort(nss, n_ns, sizeof *nss, cmp_int);
    size_t off = 0;
    for (size_t i = 0; i < n_ns && off < sizeof w.ns_list - 16; i++)
        if (i == 0 || nss[i] != nss[i - 1])
            off += (size_t)snprintf(w.ns_list + off, sizeof w.ns_list - off, "%s%d", off ? "," : "", nss[i]);
    w.access_hash = p->access ? rag_access_hash(p->access) : "";
    if (!w.access_hash) w.access_hash = "";
    w.k_since = dup_printf("wiki:%s:since", w.api);
    w.k_ns = dup_printf("wiki:%s:namespaces", w.api);
    w.k_access = dup_printf("wiki:%s:access", w.api);
    w.k_retry = dup_printf("wiki:%s:retry", w.api);
    if (!w.k_since || !w.k_ns || !w.k_access || !w.k_retry) { rc = rag_ing_err(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
    wiki_client_params cp;
    memset(&cp, 0, sizeof cp);
    cp.api = w.api;
    cp.ca_file = p->ca_file;
    cp.rate = p->rate;
    cp.timeout_ms = p->timeout_ms;
    cp.connect_timeout_ms = p->connect_timeout_ms;
    cp.max_attempts = p->max_attempts;
    cp.backoff_ms = p->backoff_ms;
    cp.max_backoff_ms = p->max_backoff_ms;
    cp.max_bytes = p->max_response_bytes;
    cp.cancel = p->cancel;
    w.cp = cp;
    if ((rc = rag_wiki_client_new(&cp, &w.c, err, errlen)) != RAG_OK) goto done;
    if (p->username && (rc = rag_wiki_client_login(w.c, p->username, p->password, err, errlen)) != RAG_OK) goto done;
    if (!p->access) {
        char *v = NULL;
        if (idx_meta_get(s, w.k_access, &v) == IDX_OK && v[0]) stats->rules_missing = true;
        free(v);
    }
    int64_t now = 0, since = 0;
    if ((rc = read_siteinfo(&w, &now)) != RAG_OK) goto done;
    if ((rc = choose_mode(&w, &since, &retry)) != RAG_OK) goto done;
    emit(&w, RAG_ING_EV_START, NULL, RAG_ING_ADDED, NULL, 0);
    if (stats->full) rc = sync_full(&w);
    else rc = sync_incremental(&w, since, retry);
    if (rc != RAG_OK) goto done;
    if (p->cancel && *p->cancel) w.stop = true;
    if (idx_save(s) != IDX_OK) { rc = store_fail(&w, "saving the FAISS index"); goto done; }
    if (w.stop) {
        stats->cancelled = true;
        goto done;
    }
    /* everything up to `now` is applied: advance the sync point */
    char ts[21];
    rag_wiki_format_time(now, ts);
    if (idx_meta_set(s, w.k_retry, w.retry.data ? w.retry.data : "") != IDX_OK ||
        idx_meta_set(s, w.k_ns, w.ns_list) != IDX_OK ||
        (p->access && idx_meta_set(s, w.k_access, w.access_hash) != IDX_OK) ||
        idx_meta_set(s, w.k_since, ts) != IDX_OK) {
        rc = store_fail(&w, "recording the sync point");
        goto done;
    }
    emit(&w, RAG_ING_EV_END, NULL, RAG_ING_ADDED, NULL, 0);
done:
    if (rc != RAG_OK && p->cancel && *p->cancel) {
        /* interrupted inside a request: what is done is committed, the sync
         * point stays */
        stats->cancelled = true;
        rc = RAG_OK;
        idx_save(s);    /* a stale FAISS file is rebuilt on the next open anyway */
    }
    rag_wiki_client_counts(w.c, &stats->requests, &stats->retries, &stats->relogins);
    rag_wiki_fetcher_counts(w.f, &stats->requests, &stats->retries, &stats->relogins);
    rag_wiki_fetcher_free(w.f);
    stats->seconds = now_s() - w.t0;
    rag_wiki_client_free(w.c);
    for (size_t i = 0; i < w.n_seen; i++) free(w.seen[i]);
    free(w.seen);
    for (size_t i = 0; i < w.n_dirty; i++) {
        free(w.dirty[i].title);
        free(w.dirty[i].moved_to);
        free(w.dirty[i].moved_from);
    }
    free(w.dirty);
    rag_buf_release(&w.retry);
    free(w.api);
    free(w.prefix);
    free(w.k_since);
    free(w.k_ns);
    free(w.k_access);
    free(w.k_retry);
    free(retry);
    free(nss);
    return rc;
}
