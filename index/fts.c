/* fts.c — mrag's FTS5 tokenizer ("mrag") and BM25 rank function
 * ("mrag_bm25"), the frozen analysis configuration (languages, compound word
 * list) with its retune and FTS rebuild, per-access-class statistics so a
 * caller's BM25 never depends on documents they cannot see, and the query
 * builder. */
#define _GNU_SOURCE
#include "index/idx_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FTS_VERBATIM 0x1f       /* first byte of a quoted query string of
                                   already-analysed terms (idx_fts_query) */
#define FTS_MAX_QTERMS 128
#define FTS_LANG_SHARE 0.05     /* a language with this share of the chunks
                                   is also a query language */
#define FTS_MIN_CF 2            /* corpus words: at least this frequent */
#define FTS_DEFAULT_DICT "/usr/share/hunspell/de_DE.dic"
#define FTS_DEFAULT_THESAURUS "/usr/share/openthesaurus-de/openthesaurus.txt"   /* openthesaurus-de-text */
#define FTS_SYN_WEIGHT 0.5      /* a synonym's BM25 weight (the query's own terms: 1) */
#define FTS_SYN_MAX 1           /* synonyms per query word, the most frequent: 1 ties 3 on the dev part and costs a third (docs/retrieval.md) */
#define FTS_SYN_CAND 48         /* synonyms looked up per query word */
/* BM25 parameters: the defaults of the Anserini/Lucene toolkits for
 * passage retrieval (short chunks need less length normalisation than
 * FTS5's 1.2 / 0.75); see docs/retrieval.md for the measured effect. */
#define FTS_K1 0.9
#define FTS_B 0.4
/* Bumped whenever the analysis of a text changes (word splitting, language
 * profiles, normalisation, stemmers, compound rules): FTS5 deletes a row by
 * re-tokenizing its old text, so an index analysed by another version is
 * rebuilt at the next read-write open (idx_fts_upgrade). */
#define FTS_ANALYZER_VERSION 4     /* 2: a word never stems to nothing; 3: German verb-stem and -ung compound parts, fewer parts first, participles meet their verb; 4: a lower-case present tense meets its infinitive */

/* ------------------------------------------------------------ tokenizer */

typedef struct {
    idx_store *s;
} fts_tok;

typedef struct {
    void *ctx;
    int (*x)(void *, int, const char *, int, int, int);
} tok_out;

static int tok_emit(void *user, const char *t, size_t n, int start, int end, bool colocated) {
    tok_out *o = user;
    return o->x(o->ctx, colocated ? FTS5_TOKEN_COLOCATED : 0, t, (int)n, start, end);
}

static int tok_create(void *ud, const char **args, int nargs, Fts5Tokenizer **out) {
    (void)args;
    if (nargs) return SQLITE_ERROR;
    fts_tok *t = calloc(1, sizeof *t);
    if (!t) return SQLITE_NOMEM;
    t->s = ud;
    *out = (Fts5Tokenizer *)t;
    return SQLITE_OK;
}

static void tok_delete(Fts5Tokenizer *t) { free(t); }

/* Documents (and highlight/snippet) are analysed with detection; a query
 * string starting with FTS_VERBATIM holds analysed terms separated by
 * spaces; any other query string (a hand-written MATCH) is analysed in the
 * default language without compound parts, prefixes without stemming. */
static int tok_tokenize(Fts5Tokenizer *tp, void *ctx, int flags, const char *text, int n,
                        int (*x)(void *, int, const char *, int, int, int)) {
    fts_tok *t = (fts_tok *)tp;
    tok_out o = {ctx, x};
    if ((flags & FTS5_TOKENIZE_QUERY) && n > 0 && (unsigned char)text[0] == FTS_VERBATIM) {
        int i = 1;
        while (i < n) {
            while (i < n && text[i] == ' ') i++;
            int b = i;
            while (i < n && text[i] != ' ') i++;
            if (i > b) {
                int rc = x(ctx, 0, text + b, i - b, b, i);
                if (rc) return rc;
            }
        }
        return SQLITE_OK;
    }
    unsigned fl = 0;
    int lang = -1;
    if (flags & FTS5_TOKENIZE_QUERY) {
        fl = IDX_AN_NO_SPLIT | ((flags & FTS5_TOKENIZE_PREFIX) ? IDX_AN_NO_STEM : 0);
    }
    return idx_an_run(t->s->an, text, n > 0 ? (size_t)n : 0, lang, fl, tok_emit, &o, NULL);
}

/* ------------------------------------------------------------ search caches */

/* What idx_fts_search keeps between queries, so a query pays neither a
 * docsize lookup per matching row nor point lookups per hidden access class
 * and term:
 *   - the length (tokens over both columns) of each row scored so far;
 *   - the access classes (id, groups, rows, tokens) of restricted chunks;
 *   - per term, its document frequency in each of those classes.
 * All of it is valid for one state of the database only. The key is
 * (PRAGMA data_version: commits of other connections, total changes and
 * write transactions of this connection, analysis generation), read inside
 * the read transaction the search runs in, so the cached values and the
 * FTS5 data the query reads are the same snapshot. Any difference empties
 * the cache (it refills lazily, at the cost of the uncached path). A search
 * inside a caller's open transaction does not use or fill it (its writes
 * may still roll back). */
#define FC_MAX_ROWID (1 << 24)      /* lengths cached for rowids below this */
#define FC_MAX_TERMS 65536          /* terms cached before the table is emptied */

typedef struct {
    char *term;                     /* NULL = empty slot */
    int64_t *df;                    /* df[ncls]: per cached class; NULL until asked */
    int64_t total;                  /* documents holding it, all classes; -1 until
                                       asked (synonym candidates: counting reads
                                       all its postings, and the same candidates
                                       come back with every question on a topic) */
} fc_term;

struct fts_cache {
    bool valid, active;             /* active: the running search may use it */
    int64_t dv, tc, gen;
    uint64_t wseq;
    uint32_t *len;                  /* rowid -> length + 1; 0 = not known */
    size_t nlen;
    bool cls_loaded;
    size_t ncls;
    int64_t *cls_id, *cls_rows, *cls_tokens;
    char **cls_groups;
    fc_term *terms;                 /* open addressing, cap a power of two */
    size_t nterm, capterm;
    sqlite3_stmt *dv_st, *begin_st, *commit_st, *rollback_st, *vocab_st;
    sqlite3_stmt *search[IDX_MAX_GROUPS + 2];   /* by filter groups + 1; 0 = owner */
    char *search_filter[IDX_MAX_GROUPS + 2];
    sqlite3_stmt *vis[IDX_MAX_GROUPS + 2];      /* the filter of one chunk, by slot */
    int64_t *pdf;                   /* during a search: each phrase's visible
                                       document frequency, as ranked */
    size_t npdf;
    sqlite3_stmt *vocab_in_st;      /* document frequencies of FTS_SYN_BATCH terms */
    /* query-side synonyms (thes.c): kept across fc_clear, reloaded when
     * the analysis generation changes */
    idx_thes *thes;
    int64_t thes_gen;
    bool thes_tried, thes_off;
    char *thes_path;                /* NULL: FTS_DEFAULT_THESAURUS */
    char thes_note[512];            /* why there are none */
};

static void fc_clear_terms(struct fts_cache *c) {
    for (size_t i = 0; i < c->capterm; i++) {
        free(c->terms[i].term);
        free(c->terms[i].df);
    }
    free(c->terms);
    c->terms = NULL;
    c->nterm = c->capterm = 0;
}

static void fc_clear(struct fts_cache *c) {
    fc_clear_terms(c);
    if (c->len) memset(c->len, 0, c->nlen * sizeof *c->len);
    for (size_t i = 0; i < c->ncls; i++) free(c->cls_groups[i]);
    free(c->cls_groups);
    free(c->cls_id);
    free(c->cls_rows);
    free(c->cls_tokens);
    c->cls_groups = NULL;
    c->cls_id = c->cls_rows = c->cls_tokens = NULL;
    c->ncls = 0;
    c->cls_loaded = false;
    c->valid = false;
}

void idx_fts_cache_free(idx_store *s) {
    struct fts_cache *c = s ? s->fts_cache : NULL;
    if (!c) return;
    fc_clear(c);
    free(c->len);
    sqlite3_finalize(c->dv_st);
    sqlite3_finalize(c->begin_st);
    sqlite3_finalize(c->commit_st);
    sqlite3_finalize(c->rollback_st);
    sqlite3_finalize(c->vocab_st);
    sqlite3_finalize(c->vocab_in_st);
    idx_thes_free(c->thes);
    free(c->thes_path);
    for (int i = 0; i < IDX_MAX_GROUPS + 2; i++) {
        sqlite3_finalize(c->search[i]);
        sqlite3_finalize(c->vis[i]);
        free(c->search_filter[i]);
    }
    free(c);
    s->fts_cache = NULL;
}

static int fc_prep(idx_store *s, sqlite3_stmt **st, const char *sql) {
    if (*st) { sqlite3_reset(*st); return IDX_OK; }
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) return idx_sql_err(s, "prepare");
    return IDX_OK;
}

static int fc_run(idx_store *s, sqlite3_stmt **st, const char *sql) {
    int rc = fc_prep(s, st, sql);
    if (rc) return rc;
    int step = sqlite3_step(*st);
    sqlite3_reset(*st);
    return step == SQLITE_DONE || step == SQLITE_ROW ? IDX_OK : idx_sql_err(s, sql);
}

/* Called inside the search's read transaction, after the analysis config of
 * this snapshot is loaded: empties the cache unless its key still holds. */
static int fc_check(idx_store *s, struct fts_cache *c) {
    int rc = fc_prep(s, &c->dv_st, "PRAGMA data_version");
    if (rc) return rc;
    if (sqlite3_step(c->dv_st) != SQLITE_ROW) { rc = idx_sql_err(s, "data version"); sqlite3_reset(c->dv_st); return rc; }
    int64_t dv = sqlite3_column_int64(c->dv_st, 0);
    sqlite3_reset(c->dv_st);
    int64_t tc = sqlite3_total_changes64(s->db);
    if (!c->valid || dv != c->dv || tc != c->tc || s->wseq != c->wseq || s->fts_gen != c->gen) {
        fc_clear(c);
        c->dv = dv;
        c->tc = tc;
        c->wseq = s->wseq;
        c->gen = s->fts_gen;
        c->valid = true;
    }
    return IDX_OK;
}

static int fc_load_classes(idx_store *s, struct fts_cache *c) {
    if (c->cls_loaded) return IDX_OK;
    sqlite3_stmt *st = idx_stmt(s, ST_FTS_CLS_LIST);
    if (!st) return IDX_ERR_SQLITE;
    int rc = IDX_OK, step;
    size_t cap = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (c->ncls == cap) {
            size_t nc = cap ? cap * 2 : 8;
            int64_t *a = realloc(c->cls_id, nc * sizeof *a);
            if (a) c->cls_id = a;
            int64_t *b = a ? realloc(c->cls_rows, nc * sizeof *b) : NULL;
            if (b) c->cls_rows = b;
            int64_t *d = b ? realloc(c->cls_tokens, nc * sizeof *d) : NULL;
            if (d) c->cls_tokens = d;
            char **g = d ? realloc(c->cls_groups, nc * sizeof *g) : NULL;
            if (g) c->cls_groups = g;
            if (!g) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); break; }
            cap = nc;
        }
        const char *g = (const char *)sqlite3_column_text(st, 1);
        if (!(c->cls_groups[c->ncls] = strdup(g ? g : ""))) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); break; }
        c->cls_id[c->ncls] = sqlite3_column_int64(st, 0);
        c->cls_rows[c->ncls] = sqlite3_column_int64(st, 2);
        c->cls_tokens[c->ncls] = sqlite3_column_int64(st, 3);
        c->ncls++;
    }
    if (!rc && step != SQLITE_DONE) rc = idx_sql_err(s, "access classes");
    sqlite3_reset(st);
    if (rc) { fc_clear(c); return rc; }
    c->cls_loaded = true;
    return IDX_OK;
}

static uint64_t fc_hash(const char *t) {
    uint64_t h = 1469598103934665603ULL;
    for (; *t; t++) h = (h ^ (unsigned char)*t) * 1099511628211ULL;
    return h;
}

/* The cache's entry for term, or NULL. */
static fc_term *fc_find(const struct fts_cache *c, const char *term) {
    if (!c->capterm) return NULL;
    for (size_t i = fc_hash(term) & (c->capterm - 1);; i = (i + 1) & (c->capterm - 1)) {
        if (!c->terms[i].term) return NULL;
        if (strcmp(c->terms[i].term, term) == 0) return &c->terms[i];
    }
}

/* The cache's entry for term, added (nothing known yet) when new; NULL
 * when out of memory. */
static fc_term *fc_slot(struct fts_cache *c, const char *term) {
    fc_term *e = fc_find(c, term);
    if (e) return e;
    if (c->nterm >= FC_MAX_TERMS) fc_clear_terms(c);
    if (2 * (c->nterm + 1) > c->capterm) {
        size_t nc = c->capterm ? c->capterm * 2 : 256;
        fc_term *t = calloc(nc, sizeof *t);
        if (!t) return NULL;
        for (size_t i = 0; i < c->capterm; i++) {
            if (!c->terms[i].term) continue;
            size_t j = fc_hash(c->terms[i].term) & (nc - 1);
            while (t[j].term) j = (j + 1) & (nc - 1);
            t[j] = c->terms[i];
        }
        free(c->terms);
        c->terms = t;
        c->capterm = nc;
    }
    size_t j = fc_hash(term) & (c->capterm - 1);
    while (c->terms[j].term) j = (j + 1) & (c->capterm - 1);
    if (!(c->terms[j].term = strdup(term))) return NULL;
    c->terms[j].df = NULL;
    c->terms[j].total = -1;
    c->nterm++;
    return &c->terms[j];
}

/* The cached total document frequency of term, or -1. */
static int64_t fc_tdf_get(const struct fts_cache *c, const char *term) {
    const fc_term *e = fc_find(c, term);
    return e ? e->total : -1;
}

/* Remembers term's total document frequency; out of memory it is simply
 * not cached (the next search looks it up again). */
static void fc_tdf_put(struct fts_cache *c, const char *term, int64_t df) {
    fc_term *e = fc_slot(c, term);
    if (e) e->total = df;
}

/* The per-class document frequencies of term (df[ncls], borrowed until the
 * cache changes), from the cache or looked up once. */
static int fc_term_df(idx_store *s, struct fts_cache *c, const char *term, const int64_t **out) {
    *out = NULL;
    fc_term *e = fc_slot(c, term);
    if (!e) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    if (e->df) { *out = e->df; return IDX_OK; }
    int64_t *df = calloc(c->ncls ? c->ncls : 1, sizeof *df);
    if (!df) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < c->ncls; k++) {
        sqlite3_stmt *d = idx_stmt(s, ST_FTS_CLS_DF);
        if (!d) { free(df); return IDX_ERR_SQLITE; }
        sqlite3_bind_int64(d, 1, c->cls_id[k]);
        sqlite3_bind_text(d, 2, term, -1, SQLITE_STATIC);
        int r = sqlite3_step(d);
        if (r == SQLITE_ROW) df[k] = sqlite3_column_int64(d, 0);
        sqlite3_reset(d);
        if (r != SQLITE_ROW && r != SQLITE_DONE) { free(df); return idx_sql_err(s, "access-class statistics"); }
    }
    e->df = df;
    *out = df;
    return IDX_OK;
}

/* The length of the current row (tokens over both columns): cached while a
 * search holds a valid snapshot, else from FTS5's docsize table. */
static int row_length(const Fts5ExtensionApi *api, Fts5Context *fc, int *len) {
    idx_store *s = api->xUserData(fc);
    struct fts_cache *c = s ? s->fts_cache : NULL;
    if (!c || !c->active) return api->xColumnSize(fc, -1, len);
    sqlite3_int64 id = api->xRowid(fc);
    if (id > 0 && (uint64_t)id < c->nlen && c->len[id]) { *len = (int)(c->len[id] - 1); return SQLITE_OK; }
    int rc = api->xColumnSize(fc, -1, len);
    if (rc != SQLITE_OK || id <= 0 || id >= FC_MAX_ROWID || *len < 0) return rc;
    if ((uint64_t)id >= c->nlen) {
        size_t nn = c->nlen ? c->nlen : 4096;
        while (nn <= (size_t)id) nn *= 2;
        uint32_t *p = realloc(c->len, nn * sizeof *p);
        if (!p) return SQLITE_OK;      /* not cached: still right */
        memset(p + c->nlen, 0, (nn - c->nlen) * sizeof *p);
        c->len = p;
        c->nlen = nn;
    }
    c->len[id] = (uint32_t)*len + 1;
    return SQLITE_OK;
}

/* ------------------------------------------------------------ rank */

/* What a caller must not count: rows, tokens and per-phrase document
 * frequencies of the chunks hidden from them (see fts_hidden). */
typedef struct {
    int64_t rows, tokens, nterm;
    int64_t df[];
} fts_adj;

typedef struct {
    double avgdl;
    int nphrase;
    double idf[];
} rank_data;

static int count_cb(const Fts5ExtensionApi *api, Fts5Context *fc, void *user) {
    (void)api; (void)fc;
    (*(int64_t *)user)++;
    return SQLITE_OK;
}

/* BM25 as FTS5's bm25() computes it (columns of weight 1, the row length
 * over both columns, idf = ln((N - n + 0.5) / (n + 0.5)), at least 1e-6),
 * with k1 = 0.9 and b = 0.4 instead of 1.2 and 0.75, and with N,
 * the total length and each n reduced by the statistics of the chunks the
 * caller cannot see (argument 1: an fts_adj blob, or NULL); argument 2 (a
 * blob of one double per phrase, or NULL) weights each phrase's part of the
 * sum (query-side synonyms count less than the query's own words). Lower is
 * better, like bm25(). */
static void rank_fn(const Fts5ExtensionApi *api, Fts5Context *fc, sqlite3_context *ctx, int nval, sqlite3_value **val) {
    rank_data *d = api->xGetAuxdata(fc, 0);
    int rc = SQLITE_OK;
    if (!d) {
        const fts_adj *adj = NULL;
        if (nval >= 1 && sqlite3_value_type(val[0]) == SQLITE_BLOB) {
            adj = sqlite3_value_blob(val[0]);
            int bytes = sqlite3_value_bytes(val[0]);
            if (bytes < (int)sizeof(fts_adj) || bytes != (int)(sizeof(fts_adj) + adj->nterm * sizeof(int64_t)) ||
                adj->nterm != api->xPhraseCount(fc)) {
                sqlite3_result_error(ctx, "mrag_bm25: statistics do not fit the query", -1);
                return;
            }
        }
        int np = api->xPhraseCount(fc);
        d = sqlite3_malloc64(sizeof *d + (size_t)np * sizeof(double));
        if (!d) { sqlite3_result_error_nomem(ctx); return; }
        d->nphrase = np;
        sqlite3_int64 nrow = 0, ntok = 0;
        rc = api->xRowCount(fc, &nrow);
        if (rc == SQLITE_OK) rc = api->xColumnTotalSize(fc, -1, &ntok);
        if (adj) { nrow -= adj->rows; ntok -= adj->tokens; }
        if (nrow < 1) nrow = 1;
        if (ntok < 0) ntok = 0;
        d->avgdl = (double)ntok / (double)nrow;
        for (int i = 0; rc == SQLITE_OK && i < np; i++) {
            int64_t hit = 0;
            rc = api->xQueryPhrase(fc, i, &hit, count_cb);
            if (adj) hit -= adj->df[i];
            if (hit < 0) hit = 0;
            idx_store *us = api->xUserData(fc);
            if (us && us->fts_cache && (size_t)i < us->fts_cache->npdf) us->fts_cache->pdf[i] = hit;
            double idf = log((0.5 + (double)nrow - (double)hit) / (0.5 + (double)hit));
            if (idf <= 0.0) idf = 1e-6;
            d->idf[i] = idf;
        }
        if (rc == SQLITE_OK) rc = api->xSetAuxdata(fc, d, sqlite3_free);
        else sqlite3_free(d);
        if (rc != SQLITE_OK) { sqlite3_result_error_code(ctx, rc); return; }
    }
    const double *wt = NULL;        /* per-phrase weights (synonyms below 1), or all 1 */
    if (nval >= 2 && sqlite3_value_type(val[1]) == SQLITE_BLOB) {
        if (sqlite3_value_bytes(val[1]) != (int)((size_t)d->nphrase * sizeof(double))) {
            sqlite3_result_error(ctx, "mrag_bm25: weights do not fit the query", -1);
            return;
        }
        wt = sqlite3_value_blob(val[1]);
    }
    int ninst = 0;
    double freq_stack[64], *freq = freq_stack;
    if (d->nphrase > 64 && !(freq = sqlite3_malloc64((size_t)d->nphrase * sizeof *freq))) { sqlite3_result_error_nomem(ctx); return; }
    memset(freq, 0, (size_t)d->nphrase * sizeof *freq);
    rc = api->xInstCount(fc, &ninst);
    for (int i = 0; rc == SQLITE_OK && i < ninst; i++) {
        int ip, ic, io;
        rc = api->xInst(fc, i, &ip, &ic, &io);
        if (rc == SQLITE_OK && ip >= 0 && ip < d->nphrase) freq[ip] += 1.0;
    }
    int len = 0;
    if (rc == SQLITE_OK) rc = row_length(api, fc, &len);
    double score = 0.0, k1 = FTS_K1, b = FTS_B;
    for (int i = 0; rc == SQLITE_OK && i < d->nphrase; i++)
        score += (wt ? wt[i] : 1.0) * d->idf[i] * (freq[i] * (k1 + 1.0)) / (freq[i] + k1 * (1 - b + b * (double)len / (d->avgdl > 0 ? d->avgdl : 1)));
    if (freq != freq_stack) sqlite3_free(freq);
    if (rc != SQLITE_OK) sqlite3_result_error_code(ctx, rc);
    else sqlite3_result_double(ctx, -score);
}

int idx_fts_register(idx_store *s) {
    fts5_api *api = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK) return idx_sql_err(s, "FTS5");
    sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
    sqlite3_step(st);
    sqlite3_finalize(st);
    if (!api) return idx_err(s, IDX_ERR_SQLITE, "this SQLite has no FTS5");
    if (!(s->an = idx_an_new(s->db))) return idx_err(s, IDX_ERR_NOMEM, "out of memory (text analyzer)");
    s->fts_gen = -1;
    fts5_tokenizer tk = {tok_create, tok_delete, tok_tokenize};
    if (api->xCreateTokenizer(api, "mrag", s, &tk, NULL) != SQLITE_OK ||
        api->xCreateFunction(api, "mrag_bm25", s, rank_fn, NULL) != SQLITE_OK)
        return idx_sql_err(s, "register the FTS5 tokenizer");
    return IDX_OK;
}

/* ------------------------------------------------------------ config */

static int word_row_cb(void *user, const char *w, size_t n, int32_t cf) {
    sqlite3_stmt *st = user;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, w, (int)n, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, cf);
    return sqlite3_step(st) == SQLITE_DONE ? 0 : 1;
}

/* Loads the configuration of generation `gen` from the database into s->an. */
static int config_load(idx_store *s, int64_t gen) {
    int64_t lang = IDX_LANG_EN, mask = 0;
    bool found;
    int rc = idx_meta_get_i64(s, "idx.fts.lang", &lang, &found);
    if (!rc) rc = idx_meta_get_i64(s, "idx.fts.langs", &mask, &found);
    if (rc) return rc;
    idx_an_set_langs(s->an, (int)lang, (uint32_t)mask);
    idx_an_vocab_clear(s->an);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT word, cf FROM fts_words", -1, &st, NULL) != SQLITE_OK) return idx_sql_err(s, "read the word list");
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *w = (const char *)sqlite3_column_text(st, 0);
        if (w && idx_an_vocab_add(s->an, w, (size_t)sqlite3_column_bytes(st, 0), sqlite3_column_int(st, 1))) {
            sqlite3_finalize(st);
            return idx_err(s, IDX_ERR_NOMEM, "out of memory (word list)");
        }
    }
    if (step != SQLITE_DONE) rc = idx_sql_err(s, "read the word list");
    sqlite3_finalize(st);
    if (!rc) s->fts_gen = gen;
    return rc;
}

int idx_fts_config_current(idx_store *s) {
    int64_t gen = 0;
    bool found = false;
    int rc = idx_meta_get_i64(s, "idx.fts.gen", &gen, &found);
    if (rc) return rc;
    if (!found) gen = 0;
    if (gen == s->fts_gen) return IDX_OK;
    return config_load(s, gen);
}

int idx_fts_info_get(idx_store *s, idx_fts_info *out) {
    if (!s || !out) return s ? idx_err(s, IDX_ERR_ARG, "output missing") : IDX_ERR_ARG;
    memset(out, 0, sizeof *out);
    int rc = idx_fts_config_current(s);
    if (rc) return rc;
    out->default_lang = idx_an_deflang(s->an);
    out->lang_mask = idx_an_lang_mask(s->an);
    out->vocab_words = (int64_t)idx_an_vocab_size(s->an);
    out->generation = s->fts_gen;
    bool found;
    idx_meta_get_i64(s, "idx.fts.chunks", &out->chunks_analyzed, &found);
    char *v = NULL;
    if (idx_meta_get(s, "idx.fts.lang_chunks", &v) == IDX_OK && v) {
        char *p = v;
        for (int l = 0; l < IDX_LANG_COUNT && *p; l++) {
            out->lang_chunks[l] = strtoll(p, &p, 10);
            if (*p == ',') p++;
        }
    }
    free(v);
    v = NULL;
    if (idx_meta_get(s, "idx.fts.compounds", &v) == IDX_OK && v) snprintf(out->compounds, sizeof out->compounds, "%s", v);
    else snprintf(out->compounds, sizeof out->compounds, "both");
    free(v);
    s->err[0] = 0;
    return IDX_OK;
}

/* ------------------------------------------------------------ class statistics */

typedef struct {
    int64_t tokens;
    void *chunk_terms;      /* distinct terms of the chunk being analysed */
} cls_count;

static int cls_term_cb(void *user, const char *t, size_t n, int start, int end, bool colocated) {
    (void)start; (void)end;
    cls_count *c = user;
    if (!colocated) c->tokens++;
    return idx_an_wordtab_add(c->chunk_terms, t, n, 0) ? 1 : 0;
}

static int add_one_cb(void *user, const char *w, size_t n, int32_t v) {
    (void)v;
    return idx_an_wordtab_add(user, w, n, 1) ? 1 : 0;
}

typedef struct {
    sqlite3_stmt *up, *del;
    int64_t cls;
    int sign;
} cls_write;

static int cls_write_cb(void *user, const char *w, size_t n, int32_t count) {
    cls_write *cw = user;
    sqlite3_reset(cw->up);
    sqlite3_bind_int64(cw->up, 1, cw->cls);
    sqlite3_bind_text(cw->up, 2, w, (int)n, SQLITE_STATIC);
    sqlite3_bind_int64(cw->up, 3, (int64_t)cw->sign * count);
    if (sqlite3_step(cw->up) != SQLITE_DONE) return 1;
    if (cw->sign < 0) {
        sqlite3_reset(cw->del);
        sqlite3_bind_int64(cw->del, 1, cw->cls);
        sqlite3_bind_text(cw->del, 2, w, (int)n, SQLITE_STATIC);
        if (sqlite3_step(cw->del) != SQLITE_DONE) return 1;
    }
    return 0;
}

/* The canonical access class of a document: its groups sorted, joined by
 * commas; "" for a public document. Owned. */
static int doc_class(idx_store *s, int64_t doc_id, char **out) {
    *out = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT group_concat(grp, ',') FROM (SELECT grp FROM doc_groups WHERE doc_id = ?1 ORDER BY grp)",
                           -1, &st, NULL) != SQLITE_OK)
        return idx_sql_err(s, "read groups");
    sqlite3_bind_int64(st, 1, doc_id);
    int rc = IDX_OK;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *g = (const char *)sqlite3_column_text(st, 0);
        if (!(*out = strdup(g ? g : ""))) rc = idx_err(s, IDX_ERR_NOMEM, "out of memory");
    } else {
        rc = idx_sql_err(s, "read groups");
    }
    sqlite3_finalize(st);
    return rc;
}

int idx_fts_cls_apply(idx_store *s, int64_t doc_id, int sign) {
    char *cls_name = NULL;
    int rc = doc_class(s, doc_id, &cls_name);
    if (rc || !*cls_name) { free(cls_name); return rc; }
    sqlite3_stmt *st = NULL, *up = NULL, *del = NULL;
    void *doc_terms = idx_an_wordtab_new();
    cls_count cc = {0, idx_an_wordtab_new()};
    int64_t cls = 0, rows = 0;
    if (!doc_terms || !cc.chunk_terms) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto done; }
    if (idx_exec(s, "INSERT OR IGNORE INTO fts_cls(groups) VALUES('')")) { rc = IDX_ERR_SQLITE; goto done; } /* keeps ids stable */
    if (sqlite3_prepare_v2(s->db, "INSERT INTO fts_cls(groups) VALUES(?1) ON CONFLICT(groups) DO UPDATE SET groups = groups RETURNING id",
                           -1, &st, NULL) != SQLITE_OK) { rc = idx_sql_err(s, "access class"); goto done; }
    sqlite3_bind_text(st, 1, cls_name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) { rc = idx_sql_err(s, "access class"); goto done; }
    cls = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT heading, text FROM chunks WHERE doc_id = ?1", -1, &st, NULL) != SQLITE_OK) { rc = idx_sql_err(s, "read chunks"); goto done; }
    sqlite3_bind_int64(st, 1, doc_id);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        idx_an_wordtab_clear(cc.chunk_terms);
        for (int col = 0; col < 2; col++) {
            const char *t = (const char *)sqlite3_column_text(st, col);
            size_t n = (size_t)sqlite3_column_bytes(st, col);
            if (t && n && idx_an_run(s->an, t, n, -1, 0, cls_term_cb, &cc, NULL)) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto done; }
        }
        if (idx_an_wordtab_each(cc.chunk_terms, add_one_cb, doc_terms)) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto done; }
        rows++;
    }
    if (step != SQLITE_DONE) { rc = idx_sql_err(s, "read chunks"); goto done; }
    if (sqlite3_prepare_v2(s->db, "INSERT INTO fts_cls_df(cls, term, df) VALUES(?1, ?2, ?3) "
                                  "ON CONFLICT(cls, term) DO UPDATE SET df = df + excluded.df", -1, &up, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "DELETE FROM fts_cls_df WHERE cls = ?1 AND term = ?2 AND df <= 0", -1, &del, NULL) != SQLITE_OK) {
        rc = idx_sql_err(s, "class statistics");
        goto done;
    }
    cls_write cw = {up, del, cls, sign};
    if (idx_an_wordtab_each(doc_terms, cls_write_cb, &cw)) { rc = idx_sql_err(s, "class statistics"); goto done; }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(s->db, "UPDATE fts_cls SET n_rows = n_rows + ?2, n_tokens = n_tokens + ?3 WHERE id = ?1", -1, &st, NULL) != SQLITE_OK) {
        rc = idx_sql_err(s, "class statistics");
        goto done;
    }
    sqlite3_bind_int64(st, 1, cls);
    sqlite3_bind_int64(st, 2, sign * rows);
    sqlite3_bind_int64(st, 3, sign * cc.tokens);
    if (sqlite3_step(st) != SQLITE_DONE) rc = idx_sql_err(s, "class statistics");
done:
    sqlite3_finalize(st);
    sqlite3_finalize(up);
    sqlite3_finalize(del);
    idx_an_wordtab_free(doc_terms);
    idx_an_wordtab_free(cc.chunk_terms);
    free(cls_name);
    return rc;
}

/* Recomputes every class's statistics from the chunks. */
static int cls_rebuild(idx_store *s) {
    int rc = idx_exec(s, "DELETE FROM fts_cls_df; UPDATE fts_cls SET n_rows = 0, n_tokens = 0");
    if (rc) return rc;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT DISTINCT doc_id FROM doc_groups ORDER BY doc_id", -1, &st, NULL) != SQLITE_OK) return idx_sql_err(s, "list documents");
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            int64_t *p = realloc(ids, nc * sizeof *p);
            if (!p) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); break; }
            ids = p;
            cap = nc;
        }
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    if (!rc && step != SQLITE_DONE) rc = idx_sql_err(s, "list documents");
    sqlite3_finalize(st);
    for (size_t i = 0; !rc && i < n; i++) rc = idx_fts_cls_apply(s, ids[i], +1);
    free(ids);
    return rc;
}

typedef struct {
    int64_t rows, tokens, terms;
} cls_sum;

/* Recounts the class statistics in memory and compares them with the stored
 * ones (row, token and df sums per class). */
int idx_fts_check(idx_store *s) {
    int rc = idx_exec(s, "SAVEPOINT idx_fts_check");
    if (rc) return rc;
    char before[64] = "", after[64] = "";
    int64_t a1 = 0, a2 = 0, a3 = 0, b1 = 0, b2 = 0, b3 = 0;
    rc = idx_count_sql(s, "SELECT coalesce(sum(n_rows), 0) FROM fts_cls", &a1);
    if (!rc) rc = idx_count_sql(s, "SELECT coalesce(sum(n_tokens), 0) FROM fts_cls", &a2);
    if (!rc) rc = idx_count_sql(s, "SELECT coalesce(sum(df * (cls + 1)), 0) + count(*) FROM fts_cls_df", &a3);
    if (!rc) rc = cls_rebuild(s);
    if (!rc) rc = idx_count_sql(s, "SELECT coalesce(sum(n_rows), 0) FROM fts_cls", &b1);
    if (!rc) rc = idx_count_sql(s, "SELECT coalesce(sum(n_tokens), 0) FROM fts_cls", &b2);
    if (!rc) rc = idx_count_sql(s, "SELECT coalesce(sum(df * (cls + 1)), 0) + count(*) FROM fts_cls_df", &b3);
    char keep[sizeof s->err];
    memcpy(keep, s->err, sizeof keep);
    idx_exec(s, "ROLLBACK TO idx_fts_check");
    idx_exec(s, "RELEASE idx_fts_check");
    memcpy(s->err, keep, sizeof keep);
    if (rc) return rc;
    if (a1 != b1 || a2 != b2 || a3 != b3) {
        snprintf(before, sizeof before, "%lld/%lld/%lld", (long long)a1, (long long)a2, (long long)a3);
        snprintf(after, sizeof after, "%lld/%lld/%lld", (long long)b1, (long long)b2, (long long)b3);
        return idx_err(s, IDX_ERR_SQLITE, "%s: access-class statistics (rows/tokens/df) are %s, a recount gives %s",
                       s->db_path, before, after);
    }
    return IDX_OK;
}

/* ------------------------------------------------------------ retune */

static int lang_is_compounding(int l) {
    return l == IDX_LANG_DE || l == IDX_LANG_NL || l == IDX_LANG_SV || l == IDX_LANG_DA || l == IDX_LANG_NO || l == IDX_LANG_FI;
}

/* Adds the words of a hunspell .dic file (German normalisation) to tab. A
 * missing file adds nothing. */
static int dict_words(idx_store *s, const char *path, void *tab) {
    FILE *f = fopen(path, "re");
    if (!f) return idx_err(s, IDX_ERR_IO, "cannot read the word list %s (install hunspell-de-de, or --compounds corpus)", path);
    char line[512];
    int rc = IDX_OK;
    bool first = true;
    while (fgets(line, sizeof line, f)) {
        if (first) { first = false; continue; }     /* the word count */
        size_t n = strcspn(line, "/\t\r\n");
        if (n < 4 || line[0] == '#') continue;
        if (idx_an_count_words(s->an, line, n, IDX_LANG_DE, tab)) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); break; }
        /* hunspell lists some nouns only in their compound-forming shape
         * ("Abrechnungs"): these suffixes always take a linking s */
        static const char *const link_s[] = {"ungs", "heits", "keits", "ions", "schafts", "täts"};
        for (size_t k = 0; k < sizeof link_s / sizeof *link_s; k++) {
            size_t l = strlen(link_s[k]);
            if (n > l + 2 && memcmp(line + n - l, link_s[k], l) == 0) {
                if (idx_an_count_words(s->an, line, n - 1, IDX_LANG_DE, tab)) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); break; }
                break;
            }
        }
        if (rc) break;
    }
    fclose(f);
    return rc;
}

static int retune_body(idx_store *s, const char *compounds, const char *dict) {
    int64_t counts[IDX_LANG_COUNT] = {0}, nchunks = 0, detected = 0;
    void *tab = idx_an_wordtab_new();
    sqlite3_stmt *st = NULL, *ins = NULL;
    int rc = IDX_OK;
    if (!tab) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    bool corpus = strcmp(compounds, "corpus") == 0 || strcmp(compounds, "both") == 0;
    bool dic = strcmp(compounds, "dict") == 0 || strcmp(compounds, "both") == 0;
    /* 1. languages of all chunks (text column); words of the public ones */
    if (sqlite3_prepare_v2(s->db, "SELECT c.text, EXISTS(SELECT 1 FROM doc_groups g WHERE g.doc_id = c.doc_id) FROM chunks c",
                           -1, &st, NULL) != SQLITE_OK) { rc = idx_sql_err(s, "read chunks"); goto done; }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        nchunks++;
        int l = idx_an_detect(s->an, t ? t : "", t ? n : 0, NULL);
        if (l < 0) continue;
        counts[l]++;
        detected++;
        /* The word list comes from public chunks only: which words split
         * must not depend on what a caller cannot see (docs/access.md). */
        if (corpus && lang_is_compounding(l) && !sqlite3_column_int(st, 1) &&
            idx_an_count_words(s->an, t, n, l, tab)) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto done; }
    }
    if (step != SQLITE_DONE) { rc = idx_sql_err(s, "read chunks"); goto done; }
    sqlite3_finalize(st);
    st = NULL;
    int deflang = IDX_LANG_EN;
    for (int l = 1; l < IDX_LANG_COUNT; l++)
        if (counts[l] > counts[deflang]) deflang = l;
    uint32_t mask = 1u << deflang;
    for (int l = 1; l < IDX_LANG_COUNT; l++)
        if (detected && (double)counts[l] >= FTS_LANG_SHARE * (double)detected) mask |= 1u << l;
    /* 2. the word list */
    idx_an_vocab_clear(s->an);
    if (corpus && idx_an_vocab_from_tab(s->an, tab, FTS_MIN_CF)) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto done; }
    if (dic && (mask & (1u << IDX_LANG_DE))) {
        idx_an_wordtab_clear(tab);
        rc = dict_words(s, dict ? dict : FTS_DEFAULT_DICT, tab);
        if (rc == IDX_ERR_IO && corpus) {
            rc = IDX_OK;        /* "both" without the dictionary: the corpus alone */
            s->err[0] = 0;
        } else if (rc) {
            goto done;
        } else if (idx_an_vocab_from_tab(s->an, tab, 1)) {
            rc = idx_err(s, IDX_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    idx_an_set_langs(s->an, deflang, mask);
    if ((rc = idx_exec(s, "DELETE FROM fts_words"))) goto done;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO fts_words(word, cf) VALUES(?1, ?2)", -1, &ins, NULL) != SQLITE_OK) { rc = idx_sql_err(s, "write the word list"); goto done; }
    if (idx_an_vocab_each(s->an, word_row_cb, ins)) { rc = idx_sql_err(s, "write the word list"); goto done; }
    /* 3. meta, then the FTS rebuild with the new analysis */
    char lc[IDX_LANG_COUNT * 21 + 1];
    size_t o = 0;
    for (int l = 0; l < IDX_LANG_COUNT; l++) o += (size_t)snprintf(lc + o, sizeof lc - o, "%s%lld", l ? "," : "", (long long)counts[l]);
    int64_t gen = 0;
    bool found;
    if ((rc = idx_meta_get_i64(s, "idx.fts.gen", &gen, &found))) goto done;
    gen++;
    if ((rc = idx_meta_put_i64(s, "idx.fts.lang", deflang)) || (rc = idx_meta_put_i64(s, "idx.fts.langs", mask)) ||
        (rc = idx_meta_put_i64(s, "idx.fts.analyzer", FTS_ANALYZER_VERSION)) ||
        (rc = idx_meta_put_i64(s, "idx.fts.chunks", nchunks)) || (rc = idx_meta_put(s, "idx.fts.lang_chunks", lc)) ||
        (rc = idx_meta_put(s, "idx.fts.compounds", compounds)) || (rc = idx_meta_put_i64(s, "idx.fts.gen", gen)))
        goto done;
    if ((rc = idx_exec(s, "INSERT INTO chunks_fts(chunks_fts) VALUES('rebuild')"))) goto done;
    if ((rc = cls_rebuild(s))) goto done;
    s->fts_gen = gen;
done:
    sqlite3_finalize(st);
    sqlite3_finalize(ins);
    idx_an_wordtab_free(tab);
    if (rc) s->fts_gen = -1;   /* reload whatever the database keeps */
    return rc;
}

int idx_fts_migrate(idx_store *s) { return retune_body(s, "both", NULL); }

int idx_fts_upgrade(idx_store *s) {
    int64_t v = 0;
    bool found = false;
    int rc = idx_meta_get_i64(s, "idx.fts.analyzer", &v, &found);
    if (rc || (found && v == FTS_ANALYZER_VERSION) || s->params.read_only) return rc;
    char *mode = NULL;
    if (idx_meta_get(s, "idx.fts.compounds", &mode) != IDX_OK) mode = NULL;
    s->err[0] = 0;
    char m[16];
    snprintf(m, sizeof m, "%s", mode ? mode : "both");
    free(mode);
    if ((rc = idx_exec(s, "BEGIN IMMEDIATE"))) return rc;
    rc = retune_body(s, m, NULL);
    if (rc) {
        char keep[sizeof s->err];
        memcpy(keep, s->err, sizeof keep);
        idx_exec(s, "ROLLBACK");
        memcpy(s->err, keep, sizeof keep);
        return rc;
    }
    rc = idx_exec(s, "COMMIT");
    if (!rc) idx_set_notice(s, "the text index was analysed by another version of mrag: rebuilt (vectors untouched)");
    return rc;
}

int idx_fts_retune(idx_store *s, const idx_fts_params *p, bool *rebuilt) {
    if (rebuilt) *rebuilt = false;
    if (!s) return IDX_ERR_ARG;
    s->err[0] = 0;
    const char *want = p ? p->compounds : NULL;
    if (want && strcmp(want, "corpus") && strcmp(want, "dict") && strcmp(want, "both") && strcmp(want, "off"))
        return idx_err(s, IDX_ERR_ARG, "compounds must be corpus, dict, both or off (got %.40s)", want);
    bool own;
    int rc = idx_write_begin(s, &own);
    if (rc) return rc;
    char *rec = NULL;
    int64_t analysed = -1, now = 0;
    bool found = false;
    if ((rc = idx_meta_get_i64(s, "idx.fts.chunks", &analysed, &found))) goto done;
    if (!found) analysed = -1;
    if ((rc = idx_count_sql(s, "SELECT count(*) FROM chunks", &now))) goto done;
    if (idx_meta_get(s, "idx.fts.compounds", &rec) != IDX_OK) rec = NULL;
    s->err[0] = 0;
    const char *mode = want ? want : rec ? rec : "both";
    bool same_mode = !want || (rec ? strcmp(rec, want) == 0 : strcmp(want, "both") == 0);
    if ((p && p->force) || analysed < 0 || !same_mode || now >= 2 * analysed + (analysed ? 0 : 1)) {
        if (!((p && p->force) || !same_mode) && now == 0 && analysed == 0) goto done;
        char mode_copy[16];
        snprintf(mode_copy, sizeof mode_copy, "%s", mode);
        rc = retune_body(s, mode_copy, p ? p->dict_path : NULL);
        if (!rc && rebuilt) *rebuilt = true;
    }
done:
    free(rec);
    rc = idx_write_end(s, own, rc);
    if (rc) s->fts_gen = -1;
    return rc;
}

/* ------------------------------------------------------------ queries */

typedef struct {
    char **t;
    size_t n, cap;
    bool oom;
} qterms;

static void qterms_free(qterms *q) {
    for (size_t i = 0; i < q->n; i++) free(q->t[i]);
    free(q->t);
    memset(q, 0, sizeof *q);
}

static int qterm_cb(void *user, const char *t, size_t n, int start, int end, bool colocated) {
    (void)start; (void)end; (void)colocated;
    qterms *q = user;
    if (!n || q->n >= FTS_MAX_QTERMS) return 0;
    for (size_t i = 0; i < q->n; i++)
        if (strlen(q->t[i]) == n && memcmp(q->t[i], t, n) == 0) return 0;
    if (q->n == q->cap) {
        size_t nc = q->cap ? q->cap * 2 : 16;
        char **p = realloc(q->t, nc * sizeof *p);
        if (!p) { q->oom = true; return 1; }
        q->t = p;
        q->cap = nc;
    }
    char *c = strndup(t, n);
    if (!c) { q->oom = true; return 1; }
    q->t[q->n++] = c;
    return 0;
}

/* The analysed terms of a query: in its detected language (else the index's
 * default), then in every other language of the index, deduplicated. */
static int query_terms(idx_store *s, const char *q, size_t n, qterms *out, int *lang_out) {
    memset(out, 0, sizeof *out);
    int rc = idx_fts_config_current(s);
    if (rc) return rc;
    int lang = -1;
    if (idx_an_run(s->an, q ? q : "", q ? n : 0, -1, IDX_AN_NO_STOP, qterm_cb, out, &lang) || out->oom) {
        qterms_free(out);
        return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    }
    uint32_t mask = idx_an_lang_mask(s->an);
    for (int l = 1; l < IDX_LANG_COUNT; l++) {
        if (l == lang || !(mask & (1u << l))) continue;
        if (idx_an_run(s->an, q ? q : "", q ? n : 0, l, IDX_AN_NO_STOP, qterm_cb, out, NULL) || out->oom) {
            qterms_free(out);
            return idx_err(s, IDX_ERR_NOMEM, "out of memory");
        }
    }
    if (lang_out) *lang_out = lang;
    return IDX_OK;
}

static char *query_string(const qterms *q) {
    size_t need = 1;
    for (size_t i = 0; i < q->n; i++) need += 2 * strlen(q->t[i]) + 8;
    char *b = malloc(need), *p = b;
    if (!b) return NULL;
    for (size_t i = 0; i < q->n; i++) {
        if (i) { memcpy(p, " OR ", 4); p += 4; }
        *p++ = '"';
        *p++ = (char)FTS_VERBATIM;
        for (const char *c = q->t[i]; *c; c++) {
            if (*c == '"') *p++ = '"';
            *p++ = *c;
        }
        *p++ = '"';
    }
    *p = 0;
    return b;
}

char *idx_fts_query(idx_store *s, const char *query, size_t query_len) {
    if (!s) return NULL;
    qterms q;
    if (query_terms(s, query, query_len, &q, NULL)) return NULL;
    char *r = query_string(&q);
    qterms_free(&q);
    return r;
}

/* ------------------------------------------------------------ misspelt terms */

/* A query term no visible chunk holds is most often misspelt ("ctenophhores",
 * "Ghandi", "gaurentee"): it is searched together with the index's terms
 * closest to it in spelling (optimal string alignment distance: one edit for
 * terms of 5-7 bytes, two from 8; same first byte), those that visible chunks
 * hold, the closest distance only, at most FTS_FUZZY_MAX of them by visible
 * document frequency. Every decision uses visible statistics only, so which
 * terms join never depends on documents hidden from the caller. */
#ifndef FTS_FUZZY_MIN
#define FTS_FUZZY_MIN 5
#endif
#define FTS_FUZZY_MAX 4

static int osa_distance(const char *a, size_t na, const char *b, size_t nb, int max) {
    if (na > nb + (size_t)max || nb > na + (size_t)max || na > 62 || nb > 62) return max + 1;
    int d[64][64];
    for (size_t i = 0; i <= na; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= nb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        int rowmin = max + 1;
        for (size_t j = 1; j <= nb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v) v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
            if (v < rowmin) rowmin = v;
        }
        if (rowmin > max) return max + 1;
    }
    return d[na][nb];
}

typedef struct {
    char *term;
    int64_t df;
} fz_cand;

/* Visible document frequency of term: all rows holding it, less those of the
 * hidden classes hid[0..nh) (class statistics from the cache). */
static int visible_df(idx_store *s, struct fts_cache *c, const size_t *hid, size_t nh, const char *term, int64_t total,
                      int64_t *out) {
    *out = total;
    if (!nh || total <= 0) return IDX_OK;
    const int64_t *df = NULL;
    int rc = fc_term_df(s, c, term, &df);
    if (rc) return rc;
    for (size_t h = 0; h < nh; h++) *out -= df[hid[h]];
    if (*out < 0) *out = 0;
    return IDX_OK;
}

static int fz_cmp(const void *x, const void *y) {
    const fz_cand *a = x, *b = y;
    if (a->df != b->df) return a->df > b->df ? -1 : 1;
    return strcmp(a->term, b->term);
}

static int fts_fuzzy(idx_store *s, struct fts_cache *c, const size_t *hid, size_t nh, qterms *q, const int64_t *vdf, size_t n0) {
    int rc = IDX_OK;
    bool any = false;
    for (size_t i = 0; i < n0 && !any; i++) any = vdf[i] <= 0 && strlen(q->t[i]) >= FTS_FUZZY_MIN;
    if (!any) return IDX_OK;
    if (!c->vocab_st) {
        if (idx_exec(s, "CREATE VIRTUAL TABLE IF NOT EXISTS temp.mrag_fts_vocab USING fts5vocab(main, 'chunks_fts', 'row')")) return IDX_ERR_SQLITE;
        if (sqlite3_prepare_v3(s->db, "SELECT term, doc FROM temp.mrag_fts_vocab WHERE term >= ?1 AND term < ?2", -1,
                               SQLITE_PREPARE_PERSISTENT, &c->vocab_st, NULL) != SQLITE_OK)
            return idx_sql_err(s, "prepare the term list");
    }
    for (size_t i = 0; i < n0 && !rc; i++) {
        const char *t = q->t[i];
        size_t tl = strlen(t);
        if (tl < FTS_FUZZY_MIN || (unsigned char)t[0] == 0xff) continue;   /* no next first byte */
        if (vdf[i] > 0) continue;
        int maxd = tl >= 8 ? 2 : 1, best = maxd + 1;
        fz_cand *cand = NULL;
        size_t nc = 0, cap = 0;
        char lo[2] = {t[0], 0}, hi[2] = {(char)((unsigned char)t[0] + 1), 0};
        sqlite3_reset(c->vocab_st);
        sqlite3_bind_text(c->vocab_st, 1, lo, 1, SQLITE_STATIC);
        sqlite3_bind_text(c->vocab_st, 2, hi, 1, SQLITE_STATIC);
        int step;
        while ((step = sqlite3_step(c->vocab_st)) == SQLITE_ROW) {
            const char *v = (const char *)sqlite3_column_text(c->vocab_st, 0);
            size_t vl = (size_t)sqlite3_column_bytes(c->vocab_st, 0);
            if (!v || vl < FTS_FUZZY_MIN - 1) continue;
            int d = osa_distance(t, tl, v, vl, best < maxd ? best : maxd);
            if (d > maxd || d > best || d == 0) continue;
            int64_t df = sqlite3_column_int64(c->vocab_st, 1);
            if (d < best) {     /* a closer distance: drop the farther ones */
                for (size_t k = 0; k < nc; k++) free(cand[k].term);
                nc = 0;
                best = d;
            }
            if (nc == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                fz_cand *p = realloc(cand, ncap * sizeof *p);
                if (!p) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); break; }
                cand = p;
                cap = ncap;
            }
            if (!(cand[nc].term = strndup(v, vl))) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); break; }
            cand[nc++].df = df;
        }
        if (!rc && step != SQLITE_DONE && step != SQLITE_ROW) rc = idx_sql_err(s, "read the term list");
        sqlite3_reset(c->vocab_st);
        /* visible frequencies; the invisible ones never join */
        for (size_t k = 0; k < nc && !rc; k++) {
            int64_t v;
            if ((rc = visible_df(s, c, hid, nh, cand[k].term, cand[k].df, &v))) break;
            cand[k].df = v > 0 ? v : -1;
        }
        if (!rc) {
            if (nc > 1) qsort(cand, nc, sizeof *cand, fz_cmp);
            for (size_t k = 0; k < nc && k < FTS_FUZZY_MAX && cand[k].df > 0 && !rc; k++)
                if (qterm_cb(q, cand[k].term, strlen(cand[k].term), 0, 0, false)) rc = idx_err(s, IDX_ERR_NOMEM, "out of memory");
        }
        for (size_t k = 0; k < nc; k++) free(cand[k].term);
        free(cand);
    }
    return rc;
}

/* ------------------------------------------------------------ synonyms */

/* German query words are searched together with their synonyms from a
 * thesaurus (OpenThesaurus, Debian package openthesaurus-de-text, read at
 * search time and never stored in the index): for each whole word of a
 * query analysed as German (not its compound parts, not stop words), the
 * other single-word members of every synonym set holding its term, those
 * that visible chunks hold, at most FTS_SYN_MAX of them by visible document
 * frequency, each weighted FTS_SYN_WEIGHT in the BM25 sum. A query in
 * another language is never expanded. Without the file the search runs
 * as before (idx_thesaurus_info says why). */

/* The thesaurus of the current analysis, loaded on first use; NULL when
 * off or missing (c->thes_note says why). */
static idx_thes *fts_thes(idx_store *s, struct fts_cache *c) {
    if (c->thes_off) return NULL;
    if (c->thes && c->thes_gen == s->fts_gen) return c->thes;
    if (c->thes_tried && !c->thes && c->thes_gen == s->fts_gen) return NULL;
    idx_thes_free(c->thes);
    c->thes = NULL;
    c->thes_tried = true;
    c->thes_gen = s->fts_gen;
    char err[400];
    const char *path = c->thes_path ? c->thes_path : FTS_DEFAULT_THESAURUS;
    if (idx_thes_load(s->an, path, &c->thes, err, sizeof err) != IDX_OK) {
        snprintf(c->thes_note, sizeof c->thes_note, "no German synonyms: %s%s", err,
                 c->thes_path ? "" : " (Debian package openthesaurus-de-text)");
        c->thes = NULL;
        return NULL;
    }
    c->thes_note[0] = 0;
    return c->thes;
}

static struct fts_cache *fts_cache_get(idx_store *s) {
    if (!s->fts_cache) s->fts_cache = calloc(1, sizeof *s->fts_cache);
    return s->fts_cache;
}

int idx_set_thesaurus(idx_store *s, const char *path) {
    if (!s) return IDX_ERR_ARG;
    struct fts_cache *c = fts_cache_get(s);
    if (!c) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    char *p = path && *path ? strdup(path) : NULL;
    if (path && *path && !p) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    free(c->thes_path);
    c->thes_path = p;
    c->thes_off = path && !*path;
    idx_thes_free(c->thes);
    c->thes = NULL;
    c->thes_tried = false;
    snprintf(c->thes_note, sizeof c->thes_note, "%s", c->thes_off ? "no German synonyms: turned off" : "");
    return IDX_OK;
}

int idx_thesaurus_info(idx_store *s, idx_thesaurus_status *out) {
    if (!s || !out) return IDX_ERR_ARG;
    memset(out, 0, sizeof *out);
    struct fts_cache *c = fts_cache_get(s);
    if (!c) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    int rc = idx_fts_config_current(s);
    if (rc) return rc;
    idx_thes *th = fts_thes(s, c);
    out->sets = idx_thes_sets(th);
    out->terms = idx_thes_terms(th);
    snprintf(out->path, sizeof out->path, "%s", th ? idx_thes_path(th) : (c->thes_path ? c->thes_path : FTS_DEFAULT_THESAURUS));
    snprintf(out->note, sizeof out->note, "%s", th ? "" : c->thes_note);
    return IDX_OK;
}

typedef struct {
    qterms *q;
    fz_cand *cand;
    size_t n, cap;
    bool oom;
} syn_acc;

static int syn_cb(void *user, const char *t) {
    syn_acc *a = user;
    if (a->n >= FTS_SYN_CAND) return 1;
    for (size_t i = 0; i < a->q->n; i++)
        if (strcmp(a->q->t[i], t) == 0) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->cand[i].term, t) == 0) return 0;
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 16;
        fz_cand *p = realloc(a->cand, nc * sizeof *p);
        if (!p) { a->oom = true; return 1; }
        a->cand = p;
        a->cap = nc;
    }
    if (!(a->cand[a->n].term = strdup(t))) { a->oom = true; return 1; }
    a->cand[a->n++].df = 0;
    return 0;
}

static int whole_cb(void *user, const char *t, size_t n, int start, int end, bool colocated) {
    return colocated ? 0 : qterm_cb(user, t, n, start, end, false);
}

#define FTS_SYN_BATCH 64        /* terms looked up per statement */

/* Appends the synonyms of the German query words of query (detected
 * language lang) to q. The candidates' document frequencies come from the
 * term list in batches of FTS_SYN_BATCH terms per statement (each
 * statement opens one fts5vocab cursor, the expensive part). */
static int fts_synonyms(idx_store *s, struct fts_cache *c, const size_t *hid, size_t nh, const char *query, size_t len,
                        int lang, qterms *q) {
    if (lang != IDX_LANG_DE || c->thes_off) return IDX_OK;
    idx_thes *th = fts_thes(s, c);
    if (!th) return IDX_OK;
    qterms w = {0};
    if (idx_an_run(s->an, query ? query : "", query ? len : 0, IDX_LANG_DE, IDX_AN_NO_STOP | IDX_AN_CONTENT, whole_cb, &w,
                   NULL) || w.oom) {
        qterms_free(&w);
        return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    }
    int rc = IDX_OK;
    syn_acc *acc = w.n ? calloc(w.n, sizeof *acc) : NULL;
    if (w.n && !acc) rc = idx_err(s, IDX_ERR_NOMEM, "out of memory");
    size_t total = 0;
    for (size_t i = 0; i < w.n && !rc; i++) {
        acc[i].q = q;
        idx_thes_each(th, w.t[i], strlen(w.t[i]), syn_cb, &acc[i]);
        if (acc[i].oom) rc = idx_err(s, IDX_ERR_NOMEM, "out of memory");
        total += acc[i].n;
    }
    if (!rc && total && !c->vocab_in_st) {
        char sql[64 + 3 * FTS_SYN_BATCH];
        size_t o = (size_t)snprintf(sql, sizeof sql, "SELECT term, doc FROM temp.mrag_fts_vocab WHERE term IN (");
        for (int k = 0; k < FTS_SYN_BATCH; k++) o += (size_t)snprintf(sql + o, sizeof sql - o, "%s?", k ? "," : "");
        snprintf(sql + o, sizeof sql - o, ")");
        if (idx_exec(s, "CREATE VIRTUAL TABLE IF NOT EXISTS temp.mrag_fts_vocab USING fts5vocab(main, 'chunks_fts', 'row')")) rc = IDX_ERR_SQLITE;
        else if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->vocab_in_st, NULL) != SQLITE_OK)
            rc = idx_sql_err(s, "prepare the term lookup");
    }
    /* every candidate of every word, FTS_SYN_BATCH at a time; a row gives
     * its term's frequency to each candidate of the batch with that term */
    fz_cand **all = !rc && total ? malloc(total * sizeof *all) : NULL;
    if (!rc && total && !all) rc = idx_err(s, IDX_ERR_NOMEM, "out of memory");
    size_t na = 0;
    for (size_t i = 0; i < w.n && all; i++)
        for (size_t k = 0; k < acc[i].n; k++) {
            /* a search with a valid snapshot (c->active) reuses the
             * frequencies of earlier searches; only the others are looked up */
            int64_t df = c->active ? fc_tdf_get(c, acc[i].cand[k].term) : -1;
            if (df >= 0) acc[i].cand[k].df = df;
            else all[na++] = &acc[i].cand[k];
        }
    for (size_t b0 = 0; !rc && b0 < na; b0 += FTS_SYN_BATCH) {
        sqlite3_stmt *st = c->vocab_in_st;
        size_t b1 = b0 + FTS_SYN_BATCH < na ? b0 + FTS_SYN_BATCH : na;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        for (size_t k = b0; k < b1; k++) sqlite3_bind_text(st, (int)(k - b0) + 1, all[k]->term, -1, SQLITE_STATIC);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(st, 0);
            int64_t df = sqlite3_column_int64(st, 1);
            for (size_t k = b0; t && k < b1; k++)
                if (strcmp(all[k]->term, t) == 0) all[k]->df = df;
        }
        if (step != SQLITE_DONE) rc = idx_sql_err(s, "read the term list");
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        for (size_t k = b0; !rc && c->active && k < b1; k++) fc_tdf_put(c, all[k]->term, all[k]->df);
    }
    free(all);
    for (size_t i = 0; i < w.n && !rc; i++) {
        syn_acc *a = &acc[i];
        for (size_t k = 0; k < a->n && !rc; k++) {
            int64_t v = 0, df = a->cand[k].df;
            if (df > 0 && (rc = visible_df(s, c, hid, nh, a->cand[k].term, df, &v))) break;
            a->cand[k].df = v > 0 ? v : -1;
        }
        if (!rc) {
            if (a->n > 1) qsort(a->cand, a->n, sizeof *a->cand, fz_cmp);
            size_t added = 0;
            for (size_t k = 0; k < a->n && added < FTS_SYN_MAX && a->cand[k].df > 0 && !rc; k++) {
                bool have = false;      /* already a term of the query, or another word's synonym */
                for (size_t j = 0; j < q->n && !have; j++) have = strcmp(q->t[j], a->cand[k].term) == 0;
                if (have) continue;
                if (qterm_cb(q, a->cand[k].term, strlen(a->cand[k].term), 0, 0, false) || q->oom) rc = idx_err(s, IDX_ERR_NOMEM, "out of memory");
                added++;
            }
        }
    }
    for (size_t i = 0; acc && i < w.n; i++) {
        for (size_t k = 0; k < acc[i].n; k++) free(acc[i].cand[k].term);
        free(acc[i].cand);
    }
    free(acc);
    qterms_free(&w);
    return rc;
}

/* The statistics of the chunks hidden from a caller with filter f, for the
 * terms of q: an fts_adj blob (owned) or NULL when nothing is hidden. The
 * classes and per-term frequencies come from the search cache c (filled
 * here when empty). */
/* The cached classes a caller with filter f cannot see: indexes into the
 * cache's class arrays (owned, *hid NULL when none) and their row and token
 * sums. */
static int hidden_classes(idx_store *s, struct fts_cache *c, const idx_filter *f, size_t **hid, size_t *nh, int64_t *rows,
                          int64_t *tokens) {
    *hid = NULL;
    *nh = 0;
    *rows = *tokens = 0;
    if (!f) return IDX_OK;
    int rc = fc_load_classes(s, c);
    if (rc || !c->ncls) return rc;
    size_t *h = malloc(c->ncls * sizeof *h), n = 0;
    if (!h) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < c->ncls; k++) {
        const char *g = c->cls_groups[k];
        bool visible = false;
        while (*g && !visible) {
            size_t len = strcspn(g, ",");
            for (size_t i = 0; i < f->n_groups && !visible; i++)
                visible = strlen(f->groups[i]) == len && memcmp(f->groups[i], g, len) == 0;
            g += len;
            if (*g == ',') g++;
        }
        if (visible) continue;
        *rows += c->cls_rows[k];
        *tokens += c->cls_tokens[k];
        h[n++] = k;
    }
    if (!n) { free(h); return IDX_OK; }
    *hid = h;
    *nh = n;
    return IDX_OK;
}

/* The statistics of the hidden classes hid[0..nh) for the terms of q: an
 * fts_adj blob (owned) or NULL when nothing is hidden. */
static int fts_hidden(idx_store *s, struct fts_cache *c, const size_t *hid, size_t nh, int64_t rows, int64_t tokens,
                      const qterms *q, fts_adj **out, size_t *bytes) {
    *out = NULL;
    *bytes = 0;
    if (!nh) return IDX_OK;
    size_t b = sizeof(fts_adj) + q->n * sizeof(int64_t);
    fts_adj *a = calloc(1, b);
    if (!a) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    a->rows = rows;
    a->tokens = tokens;
    a->nterm = (int64_t)q->n;
    int rc = IDX_OK;
    for (size_t i = 0; i < q->n && !rc; i++) {
        const int64_t *df = NULL;
        if ((rc = fc_term_df(s, c, q->t[i], &df))) break;
        for (size_t h = 0; h < nh; h++) a->df[i] += df[hid[h]];
    }
    if (rc) { free(a); return rc; }
    *out = a;
    *bytes = b;
    return IDX_OK;
}

typedef struct {
    int64_t id;
    double rank;            /* mrag_bm25: lower is better */
} fts_match;

static int match_cmp(const void *x, const void *y) {
    const fts_match *a = x, *b = y;
    if (a->rank != b->rank) return a->rank < b->rank ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* Every row st yields (rowid, rank), best first (ties: lower id). */
static int ranked_matches(idx_store *s, sqlite3_stmt *st, fts_match **out, size_t *n) {
    fts_match *ms = NULL;
    size_t nm = 0, cap = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (nm == cap) {
            size_t nc = cap ? cap * 2 : 256;
            fts_match *p = realloc(ms, nc * sizeof *p);
            if (!p) { free(ms); return idx_err(s, IDX_ERR_NOMEM, "out of memory"); }
            ms = p;
            cap = nc;
        }
        ms[nm].id = sqlite3_column_int64(st, 0);
        ms[nm++].rank = sqlite3_column_double(st, 1);
    }
    if (step != SQLITE_DONE) { free(ms); return idx_sql_err(s, "BM25 search"); }
    if (nm > 1) qsort(ms, nm, sizeof *ms, match_cmp);     /* ms is NULL when nothing matched */
    *out = ms;
    *n = nm;
    return IDX_OK;
}

/* BM25 search (search.c checked the arguments and built the filter SQL).
 * One read transaction (unless the caller has one open): the analysis
 * config, the cache key, the class statistics and the FTS5 data all belong
 * to the same commit. */
/* One BM25 query: fq with the hidden statistics adj, hits for filter. */
static int run_query(idx_store *s, struct fts_cache *c, const char *fq, const fts_adj *adj, size_t adj_bytes,
                     const double *wt, size_t nwt, int k, const idx_filter *filter, const char *filter_sql, int filter_first,
                     idx_hit *hits, int *n_hits) {
    int slot = filter ? 1 + (int)filter->n_groups : 0, rc = IDX_OK;
    sqlite3_stmt *st = NULL;
    fts_match *ms = NULL;
    size_t nm = 0;
    if (slot > IDX_MAX_GROUPS + 1) { rc = idx_err(s, IDX_ERR_ARG, "too many groups in the filter"); goto end; }
    const char *fs = filter ? filter_sql : "";
    if (c->search[slot] && strcmp(c->search_filter[slot], fs) != 0) {
        sqlite3_finalize(c->search[slot]);
        c->search[slot] = NULL;
        sqlite3_finalize(c->vis[slot]);
        c->vis[slot] = NULL;
        free(c->search_filter[slot]);
        c->search_filter[slot] = NULL;
    }
    if (!c->search[slot]) {
        char *sql = NULL;
        /* filtered: every match scored (no join), sorted here, and the
         * filter run only on the best rows, in rank order, until k are
         * visible (statement 2 of the slot) */
        int wr = filter ? asprintf(&sql, "SELECT f.rowid, mrag_bm25(chunks_fts, ?3, ?4) AS sc FROM chunks_fts f WHERE chunks_fts MATCH ?1")
                        : asprintf(&sql, "SELECT f.rowid, mrag_bm25(chunks_fts, ?3, ?4) AS sc FROM chunks_fts f "
                                         "WHERE chunks_fts MATCH ?1 ORDER BY sc LIMIT ?2");
        if (wr < 0) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto end; }
        if (!(c->search_filter[slot] = strdup(fs))) { free(sql); rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto end; }
        if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->search[slot], NULL) != SQLITE_OK) {
            free(sql);
            rc = idx_sql_err(s, "prepare BM25 search");
            free(c->search_filter[slot]);
            c->search_filter[slot] = NULL;
            goto end;
        }
        free(sql);
    }
    st = c->search[slot];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    sqlite3_bind_text(st, 1, fq, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, k);
    if (adj) sqlite3_bind_blob(st, 3, adj, (int)adj_bytes, SQLITE_STATIC);
    else sqlite3_bind_null(st, 3);
    if (wt) sqlite3_bind_blob(st, 4, wt, (int)(nwt * sizeof *wt), SQLITE_STATIC);
    else sqlite3_bind_null(st, 4);
    int step, m = 0;
    if (!filter) {
        while ((step = sqlite3_step(st)) == SQLITE_ROW && m < k) {
            hits[m].chunk_id = sqlite3_column_int64(st, 0);
            hits[m].score = (float)-sqlite3_column_double(st, 1);
            m++;
        }
        if (step != SQLITE_DONE && step != SQLITE_ROW) { rc = idx_sql_err(s, "BM25 search"); goto end; }
        *n_hits = m;
        goto end;
    }
    if ((rc = ranked_matches(s, st, &ms, &nm))) goto end;
    /* the visibility check of one chunk: the same filter SQL */
    if (!c->vis[slot]) {
        char *vsql = NULL;
        if (asprintf(&vsql, "SELECT %s FROM chunks c WHERE c.id = ?1", filter_sql) < 0) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto end; }
        int pr = sqlite3_prepare_v3(s->db, vsql, -1, SQLITE_PREPARE_PERSISTENT, &c->vis[slot], NULL);
        free(vsql);
        if (pr != SQLITE_OK) { rc = idx_sql_err(s, "prepare the group filter"); goto end; }
    }
    sqlite3_stmt *vis = c->vis[slot];
    for (size_t i = 0; i < nm && m < k; i++) {
        sqlite3_reset(vis);
        sqlite3_bind_int64(vis, 1, ms[i].id);
        for (size_t g = 0; g < filter->n_groups; g++)
            sqlite3_bind_text(vis, filter_first + (int)g, filter->groups[g], -1, SQLITE_STATIC);
        step = sqlite3_step(vis);
        if (step == SQLITE_ROW && sqlite3_column_int(vis, 0)) {
            hits[m].chunk_id = ms[i].id;
            hits[m].score = (float)-ms[i].rank;
            m++;
        } else if (step != SQLITE_ROW && step != SQLITE_DONE) {
            rc = idx_sql_err(s, "group filter");
            break;
        }
    }
    sqlite3_reset(vis);
    sqlite3_clear_bindings(vis);
    if (!rc) *n_hits = m;
end:
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    free(ms);
    return rc;
}

int idx_fts_search(idx_store *s, const char *query, size_t query_len, int k, const idx_filter *filter,
                   const char *filter_sql, int filter_first, idx_hit *hits, int *n_hits) {
    struct fts_cache *c = s->fts_cache;
    if (!c && !(c = s->fts_cache = calloc(1, sizeof *c))) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    bool own = !s->in_txn && sqlite3_get_autocommit(s->db);
    int rc = own ? fc_run(s, &c->begin_st, "BEGIN") : IDX_OK;
    if (rc) return rc;
    qterms q;
    char *fq = NULL;
    fts_adj *adj = NULL;
    size_t adj_bytes = 0;
    size_t *hid = NULL, nhid = 0;
    int64_t hrows = 0, htokens = 0;
    int qlang = -1;
    double *wt = NULL;
    size_t n_own = 0, n_syn = 0;
    if ((rc = query_terms(s, query, query_len, &q, &qlang))) goto out;
    /* inside a caller's transaction: uncommitted writes may roll back, so
     * nothing read here may stay cached */
    if (own) rc = fc_check(s, c);
    else fc_clear(c);
    if (rc || !q.n) goto done;
    c->active = own;
    if ((rc = hidden_classes(s, c, filter, &hid, &nhid, &hrows, &htokens))) goto done;
    n_own = q.n;
    if ((rc = fts_synonyms(s, c, hid, nhid, query, query_len, qlang, &q))) goto done;
    n_syn = q.n;
    /* pass 2 only when a term has no visible chunk: its closest spellings
     * join the query (fts_fuzzy) */
    for (int pass = 0; pass < 2; pass++) {
        if ((rc = fts_hidden(s, c, hid, nhid, hrows, htokens, &q, &adj, &adj_bytes))) break;
        if (!(fq = query_string(&q))) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); break; }
        int64_t *pdf = malloc(q.n * sizeof *pdf);
        if (!pdf) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); break; }
        for (size_t i = 0; i < q.n; i++) pdf[i] = 0;    /* no row ranked: no visible chunk holds it */
        c->pdf = pdf;
        c->npdf = q.n;
        free(wt);
        wt = NULL;
        if (n_syn > n_own) {
            if (!(wt = malloc(q.n * sizeof *wt))) { free(pdf); rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); break; }
            for (size_t i = 0; i < q.n; i++) wt[i] = i >= n_own && i < n_syn ? FTS_SYN_WEIGHT : 1.0;
        }
        rc = run_query(s, c, fq, adj, adj_bytes, wt, q.n, k, filter, filter_sql, filter_first, hits, n_hits);
        c->pdf = NULL;
        c->npdf = 0;
        size_t before = q.n;
        if (!rc && pass == 0) rc = fts_fuzzy(s, c, hid, nhid, &q, pdf, n_own);
        free(pdf);
        if (rc || q.n == before) break;
        free(fq);
        fq = NULL;
        free(adj);
        adj = NULL;
    }
done:
    c->active = false;
    if (!own || rc) fc_clear(c);
    free(wt);
    free(hid);
    free(fq);
    free(adj);
    qterms_free(&q);
out:
    if (own) {
        char keep[sizeof s->err];
        memcpy(keep, s->err, sizeof keep);
        int crc = fc_run(s, &c->commit_st, "COMMIT");
        if (crc) fc_run(s, &c->rollback_st, "ROLLBACK");
        if (rc) memcpy(s->err, keep, sizeof keep);
        else rc = crc;
    }
    return rc;
}
