/* search.c — dense (FAISS) and BM25 (FTS5, see fts.c) search with the
 * access-group filter. */
#include "index/idx_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct {
    char *buf;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->len + n + 1) nc *= 2;
        char *nb = realloc(b->buf, nc);
        if (!nb) { b->oom = true; return; }
        b->buf = nb;
        b->cap = nc;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* ------------------------------------------------------------ filter */

static int check_args(idx_store *s, int k, const idx_filter *f, idx_hit *hits, int *n_hits) {
    if (!n_hits || !hits) return idx_err(s, IDX_ERR_ARG, "hits output missing");
    *n_hits = 0;
    if (k <= 0 || k > IDX_MAX_K) return idx_err(s, IDX_ERR_ARG, "k = %d out of range 1..%d", k, IDX_MAX_K);
    if (f && f->n_groups > IDX_MAX_GROUPS) return idx_err(s, IDX_ERR_ARG, "more than %d groups in the filter", IDX_MAX_GROUPS);
    if (f && f->n_groups && !f->groups) return idx_err(s, IDX_ERR_ARG, "filter groups missing");
    for (size_t i = 0; f && i < f->n_groups; i++)
        if (!f->groups[i]) return idx_err(s, IDX_ERR_ARG, "filter group %zu is NULL", i);
    return IDX_OK;
}

/* Appends the visibility condition for chunk alias `c` with placeholders
 * ?first.. for the groups. */
static void filter_sql(sbuf *b, const idx_filter *f, int first) {
    sb_str(b, "(NOT EXISTS(SELECT 1 FROM doc_groups g WHERE g.doc_id = c.doc_id) OR "
              "EXISTS(SELECT 1 FROM doc_groups g WHERE g.doc_id = c.doc_id AND g.grp IN (");
    for (size_t i = 0; i < f->n_groups; i++) {
        char ph[16];
        int l = snprintf(ph, sizeof ph, "%s?%d", i ? "," : "", first + (int)i);
        sb_add(b, ph, (size_t)l);
    }
    sb_str(b, ")))");
}

static void filter_bind(sqlite3_stmt *st, const idx_filter *f, int first) {
    for (size_t i = 0; i < f->n_groups; i++) sqlite3_bind_text(st, first + (int)i, f->groups[i], -1, SQLITE_STATIC);
}

/* ------------------------------------------------------------ BM25 */

int idx_search_bm25(idx_store *s, const char *query, size_t query_len, int k,
                    const idx_filter *filter, idx_hit *hits, int *n_hits) {
    if (!s) return IDX_ERR_ARG;
    s->err[0] = 0;
    int rc = check_args(s, k, filter, hits, n_hits);
    if (rc) return rc;
    if (!query && query_len) return idx_err(s, IDX_ERR_ARG, "query missing");
    sbuf sql = {0};
    sb_str(&sql, "");
    if (filter) filter_sql(&sql, filter, 4);
    if (sql.oom) { free(sql.buf); return idx_err(s, IDX_ERR_NOMEM, "out of memory"); }
    rc = idx_fts_search(s, query ? query : "", query_len, k, filter, sql.buf, 4, hits, n_hits);
    free(sql.buf);
    return rc;
}

/* ------------------------------------------------------------ dense */

static int dense_candidates(idx_store *s, const float *query, int k, const idx_filter *filter, idx_hit *hits, int *n_hits);

static int hit_cmp(const void *a, const void *b) {
    const idx_hit *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return x->chunk_id < y->chunk_id ? -1 : x->chunk_id > y->chunk_id;
}

int idx_rerank_count(const idx_store *s, int k) {
    int r = s->params.rerank;
    if (r < 0) {
        /* auto: only types whose codes approximate the vectors */
        const char *t = idx_vec_type(s);
        if (s->vec.standin || (!strstr(t, "SQ") && !strstr(t, "PQ") && !strstr(t, "LSH"))) return 0;
        r = 4 * k > 64 ? 4 * k : 64;
    }
    if (r > IDX_MAX_K) r = IDX_MAX_K;
    return r > k ? r : 0;
}

int idx_search_dense(idx_store *s, const float *query, int dim, int k,
                     const idx_filter *filter, idx_hit *hits, int *n_hits) {
    if (!s) return IDX_ERR_ARG;
    s->err[0] = 0;
    int rc = check_args(s, k, filter, hits, n_hits);
    if (rc) return rc;
    if (!query) return idx_err(s, IDX_ERR_ARG, "query vector missing");
    if (s->dim == 0) return IDX_OK; /* no vectors stored yet */
    if (dim != s->dim) return idx_err(s, IDX_ERR_MISMATCH, "query has dimension %d, index %d", dim, s->dim);
    for (int i = 0; i < dim; i++)
        if (!isfinite(query[i])) return idx_err(s, IDX_ERR_ARG, "query vector is not finite");
    int r = idx_rerank_count(s, k);
    if (r == 0) return dense_candidates(s, query, k, filter, hits, n_hits);
    /* Exact re-ranking: the r best candidates of the compressed index are
     * re-scored with the stored (float16) vectors, the k best kept. */
    idx_hit *cand = malloc((size_t)r * sizeof *cand);
    float *v = malloc((size_t)dim * sizeof *v);
    int n = 0;
    if (!cand || !v) rc = idx_err(s, IDX_ERR_NOMEM, "out of memory");
    else rc = dense_candidates(s, query, r, filter, cand, &n);
    for (int i = 0; !rc && i < n; i++) {
        rc = idx_chunk_vector(s, cand[i].chunk_id, v, dim);
        double dot = 0;
        for (int j = 0; !rc && j < dim; j++) dot += (double)v[j] * query[j];
        cand[i].score = (float)dot;
    }
    if (!rc) {
        qsort(cand, (size_t)n, sizeof *cand, hit_cmp);
        if (n > k) n = k;
        memcpy(hits, cand, (size_t)n * sizeof *hits);
        *n_hits = n;
    }
    free(cand);
    free(v);
    return rc;
}

static int dense_candidates(idx_store *s, const float *query, int k, const idx_filter *filter, idx_hit *hits, int *n_hits) {
    int rc = IDX_OK;
    *n_hits = 0;
    int64_t total = idx_vec_ntotal(s);
    if (total <= 0) return IDX_OK;
    if (!filter) {
        int64_t n = 0;
        float *d = malloc((size_t)k * sizeof *d);
        int64_t *ids = malloc((size_t)k * sizeof *ids);
        if (!d || !ids) rc = idx_err(s, IDX_ERR_NOMEM, "out of memory");
        else rc = idx_vec_search(s, query, k, d, ids, &n);
        for (int64_t i = 0; !rc && i < n; i++) {
            hits[i].chunk_id = ids[i];
            hits[i].score = d[i];
        }
        if (!rc) *n_hits = (int)n;
        free(d);
        free(ids);
        return rc;
    }
    /* Filtered: ask FAISS for more until k visible hits are found or every
     * vector has been ranked, so hidden documents cannot starve the result. */
    sqlite3_stmt *st = NULL;
    sbuf sql = {0};
    float *d = NULL;
    int64_t *ids = NULL;
    sb_str(&sql, "SELECT ");
    filter_sql(&sql, filter, 2);
    sb_str(&sql, " FROM chunks c WHERE c.id = ?1");
    if (sql.oom) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto done; }
    if (sqlite3_prepare_v2(s->db, sql.buf, -1, &st, NULL) != SQLITE_OK) { rc = idx_sql_err(s, "prepare filter"); goto done; }
    int64_t fetch = (int64_t)k * 4 < 64 ? 64 : (int64_t)k * 4;
    for (;;) {
        if (fetch > total) fetch = total;
        free(d);
        free(ids);
        d = malloc((size_t)fetch * sizeof *d);
        ids = malloc((size_t)fetch * sizeof *ids);
        if (!d || !ids) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto done; }
        int64_t n = 0;
        if ((rc = idx_vec_search(s, query, fetch, d, ids, &n))) goto done;
        int m = 0;
        for (int64_t i = 0; i < n && m < k; i++) {
            sqlite3_reset(st);
            sqlite3_bind_int64(st, 1, ids[i]);
            filter_bind(st, filter, 2);
            int step = sqlite3_step(st);
            if (step == SQLITE_ROW) {
                if (!sqlite3_column_int(st, 0)) continue;
            } else if (step == SQLITE_DONE) {
                continue; /* id without a chunk: cannot happen after a commit */
            } else {
                rc = idx_sql_err(s, "filter");
                goto done;
            }
            hits[m].chunk_id = ids[i];
            hits[m].score = d[i];
            m++;
        }
        *n_hits = m;
        if (m == k || fetch >= total) break;
        fetch *= 4;
    }
done:
    sqlite3_finalize(st);
    free(sql.buf);
    free(d);
    free(ids);
    return rc;
}
