/* search.c — dense (FAISS) and BM25 (FTS5) search with the access-group
 * filter, and the safe translation of user text into an FTS5 query. */
#include "index/idx_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FTS_MAX_TERMS 32
#define FTS_MAX_TERM_BYTES 100

/* ------------------------------------------------------------ FTS query */

/* Length of the UTF-8 sequence at p (n bytes left) and its code point, or 0
 * when the bytes are not valid UTF-8. */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp) {
    if (p[0] < 0x80) { *cp = p[0]; return 1; }
    size_t len = p[0] >= 0xf0 && p[0] < 0xf5 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 && p[0] < 0xe0 ? 2 : 0;
    if (p[0] >= 0xf5) len = 0;
    if (!len || len > n) return 0;
    uint32_t c = p[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff)) return 0;
    *cp = c;
    return len;
}

/* Word characters: ASCII letters and digits, and code points outside the
 * common punctuation/symbol blocks (letters of any script). FTS5's own
 * tokenizer makes the final decision inside the quotes. */
static bool word_cp(uint32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (c <= 0xbf || c == 0xd7 || c == 0xf7) return false;            /* Latin-1 symbols */
    if (c >= 0x2000 && c <= 0x2bff) return false;                       /* punctuation, arrows, math... */
    if (c >= 0x3000 && c <= 0x303f) return false;                       /* CJK punctuation */
    if (c >= 0xfe30 && c <= 0xfe4f) return false;
    if (c >= 0xff00 && c <= 0xff0f) return false;
    if (c >= 0xe000 && c <= 0xf8ff) return false;                       /* private use */
    if (c >= 0xfff0) return c >= 0x10000 && c < 0x1f000;                /* specials, emoji */
    return true;
}

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

/* Writes term with every ß / ẞ as "ss" (to_ss) or every ss (any case) as
 * "ß"; returns false when nothing changed. */
static bool variant(const char *t, size_t n, bool to_ss, char *out, size_t *olen) {
    size_t o = 0;
    bool changed = false;
    for (size_t i = 0; i < n;) {
        if (to_ss && i + 1 < n && (unsigned char)t[i] == 0xc3 && (unsigned char)t[i + 1] == 0x9f) {
            out[o++] = 's'; out[o++] = 's'; i += 2; changed = true;
        } else if (to_ss && i + 2 < n && (unsigned char)t[i] == 0xe1 && (unsigned char)t[i + 1] == 0xba && (unsigned char)t[i + 2] == 0x9e) {
            out[o++] = 's'; out[o++] = 's'; i += 3; changed = true;
        } else if (!to_ss && i + 1 < n && (t[i] == 's' || t[i] == 'S') && (t[i + 1] == 's' || t[i + 1] == 'S')) {
            out[o++] = (char)0xc3; out[o++] = (char)0x9f; i += 2; changed = true;
        } else {
            out[o++] = t[i++];
        }
    }
    *olen = o;
    return changed;
}

/* Builds `"w1" OR "w2" OR ("straße" OR "strasse")` from free text: only
 * word characters survive, so no quote, operator, column filter, prefix
 * star or parenthesis of the user reaches FTS5. */
char *idx_fts_query(const char *q, size_t n) {
    sbuf b = {0};
    sb_str(&b, "");
    const unsigned char *p = (const unsigned char *)q;
    size_t i = 0, terms = 0;
    const char *seen[FTS_MAX_TERMS];
    size_t seen_len[FTS_MAX_TERMS];
    while (q && i < n && terms < FTS_MAX_TERMS) {
        uint32_t cp = 0;
        size_t l = utf8_decode(p + i, n - i, &cp);
        if (!l || !word_cp(cp)) { i += l ? l : 1; continue; }
        size_t start = i;
        while (i < n && (l = utf8_decode(p + i, n - i, &cp)) && word_cp(cp)) i += l;
        size_t wl = i - start;
        const char *w = q + start;
        if (wl > FTS_MAX_TERM_BYTES) continue;   /* not a word anyone searches for */
        bool dup = false;
        for (size_t k = 0; k < terms && !dup; k++) dup = seen_len[k] == wl && memcmp(seen[k], w, wl) == 0;
        if (dup) continue;
        seen[terms] = w;
        seen_len[terms] = wl;
        char v[FTS_MAX_TERM_BYTES * 2];
        size_t vl = 0;
        bool has_v = variant(w, wl, true, v, &vl) || variant(w, wl, false, v, &vl);
        if (terms) sb_str(&b, " OR ");
        if (has_v) sb_str(&b, "(");
        sb_str(&b, "\"");
        sb_add(&b, w, wl);
        sb_str(&b, "\"");
        if (has_v) {
            sb_str(&b, " OR \"");
            sb_add(&b, v, vl);
            sb_str(&b, "\")");
        }
        terms++;
    }
    if (b.oom) { free(b.buf); return NULL; }
    return b.buf;
}

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
    sqlite3_stmt *st = NULL;
    sbuf sql = {0};
    char *fq = idx_fts_query(query, query_len);
    if (!fq) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    if (!*fq) goto done;
    sb_str(&sql, "SELECT f.rowid, f.rank FROM chunks_fts f ");
    if (filter) {
        sb_str(&sql, "JOIN chunks c ON c.id = f.rowid WHERE chunks_fts MATCH ?1 AND ");
            filter_sql(&sql, filter, 3);
    } else {
        sb_str(&sql, "WHERE chunks_fts MATCH ?1");
    }
    sb_str(&sql, " ORDER BY f.rank LIMIT ?2");
    if (sql.oom) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto done; }
    if (sqlite3_prepare_v2(s->db, sql.buf, -1, &st, NULL) != SQLITE_OK) { rc = idx_sql_err(s, "prepare BM25 search"); goto done; }
    sqlite3_bind_text(st, 1, fq, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, k);
    if (filter) filter_bind(st, filter, 3);
    int step, m = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW && m < k) {
        hits[m].chunk_id = sqlite3_column_int64(st, 0);
        hits[m].score = (float)-sqlite3_column_double(st, 1);
        m++;
    }
    if (step != SQLITE_DONE && step != SQLITE_ROW) { rc = idx_sql_err(s, "BM25 search"); goto done; }
    *n_hits = m;
done:
    sqlite3_finalize(st);
    free(sql.buf);
    free(fq);
    return rc;
}

/* ------------------------------------------------------------ dense */

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
