/* idx_internal.h — the store struct and helpers shared by the index/ sources
 * (never included outside index/). */
#ifndef MRAG_IDX_INTERNAL_H
#define MRAG_IDX_INTERNAL_H

#include "index/index.h"

#include <sqlite3.h>
#include <faiss/c_api/Index_c.h>

#define IDX_SCHEMA_VERSION 4
#define IDX_MAX_DIM 65536
#define IDX_MAX_GROUPS 64
#define IDX_MAX_GROUP_LEN 128
#define IDX_MAX_K 100000

/* The columns idx_doc_from_row() reads, in order. */
#define IDX_DOC_COLUMNS \
    "id, uri, title, type, size, mtime_ns, sha256, status, indexed_at, " \
    "(SELECT count(*) FROM chunks WHERE doc_id = documents.id), " \
    "(SELECT group_concat(grp, ',') FROM (SELECT grp FROM doc_groups WHERE doc_id = documents.id ORDER BY grp)), " \
    "version"

/* Cached prepared statements (see idx_stmt() in store.c for the SQL). */
typedef enum {
    ST_META_GET,
    ST_META_SET,
    ST_DOC_BY_URI,
    ST_DOC_INSERT,
    ST_DOC_UPDATE,
    ST_DOC_TOUCH,
    ST_DOC_RENAME,
    ST_DOC_DELETE,
    ST_DOC_GROUPS_DEL,
    ST_DOC_GROUP_ADD,
    ST_DOC_GROUPS_GET,
    ST_DOC_BY_ID,
    ST_CHUNK_IDS_OF_DOC,
    ST_CHUNKS_DEL_OF_DOC,
    ST_CHUNK_INSERT,
    ST_VECTOR_INSERT,
    ST_VECTOR_GET,
    ST_CHUNK_GET,
    ST_DOC_ID_BY_URI,
    ST_FTS_CLS_LIST,
    ST_FTS_CLS_DF,
    ST_COUNT__,
} idx_stmt_id;

/* The FAISS side: an IndexIDMap2 over the configured index type. */
typedef struct {
    FaissIndex *index;      /* NULL until the dimension is known */
    bool standin;           /* exact Flat stand-in while an IVF/PQ type is
                               waiting for enough vectors to train */
    int64_t train_min;      /* vectors needed to train (0 = no training) */
    int64_t gen;            /* generation this in-memory index reflects */
    int64_t saved_gen;      /* generation of the FAISS file, -1 = none */
    int64_t *tomb;          /* sorted ids removed but still inside (HNSW) */
    size_t n_tomb, cap_tomb;
    bool removable;         /* the type supports remove_ids */
    char type[64];          /* the FAISS type in use: the factory, or for
                               "auto" the choice for the current size */
    int last_threads;       /* threads the last search scanned with */
} idx_vec;

/* analyze.c: the analyzer behind the FTS5 tokenizer and the query builder */
typedef struct idx_an idx_an;
#define IDX_AN_NO_SPLIT 1u
#define IDX_AN_NO_STEM 2u
#define IDX_AN_NO_STOP 4u         /* skip stop words of the language (queries) */
#define IDX_AN_CONTENT 8u         /* with NO_STOP: skip them even when nothing else is left */
idx_an *idx_an_new(sqlite3 *db);        /* db NULL: own :memory: connection */
void idx_an_free(idx_an *a);
int idx_an_detect(idx_an *a, const char *text, size_t len, int *hits);
/* lang -1 = detect (else the default); *lang_out the language used.
 * Returns an SQLite code or the callback's non-zero value. */
int idx_an_run(idx_an *a, const char *text, size_t len, int lang, unsigned flags, idx_term_cb cb, void *user, int *lang_out);
int idx_an_deflang(const idx_an *a);
uint32_t idx_an_lang_mask(const idx_an *a);
size_t idx_an_vocab_size(const idx_an *a);
void idx_an_set_langs(idx_an *a, int deflang, uint32_t mask);
void idx_an_vocab_clear(idx_an *a);
int idx_an_vocab_add(idx_an *a, const char *w, size_t n, int32_t cf);
int idx_an_vocab_each(const idx_an *a, int (*cb)(void *, const char *, size_t, int32_t), void *user);
int idx_an_count_words(idx_an *a, const char *text, size_t len, int lang, void *tab);
int idx_an_vocab_from_tab(idx_an *a, void *tab, int32_t min_cf);
void *idx_an_wordtab_new(void);
void idx_an_wordtab_free(void *t);
void idx_an_wordtab_clear(void *t);
size_t idx_an_wordtab_count(const void *t);
int idx_an_wordtab_add(void *t, const char *w, size_t n, int32_t d);
int idx_an_wordtab_each(const void *t, int (*cb)(void *, const char *, size_t, int32_t), void *user);

struct idx_store {
    char *dir, *db_path, *faiss_path, *tmp_path, *lock_path;
    sqlite3 *db;
    int lock_fd;
    idx_params params;
    char factory[64];       /* FAISS type without the id map: "Flat", ... */
    char uuid[33];          /* random id of this index, also in the FAISS file */
    int dim;                /* 0 until the first vectors are stored */
    int64_t gen;            /* committed generation (meta idx.generation) */
    int64_t nvec;           /* committed rows in vectors (meta idx.vectors):
                               count(*) would read every vector page */
    char err[1024];
    char notice[1024];
    bool has_notice;
    bool in_txn;
    bool txn_vec_changed;   /* the open transaction changed vectors */
    int dim_before_txn;
    sqlite3_stmt *st[ST_COUNT__];
    idx_vec vec;
    /* vector changes of the open transaction, applied to FAISS at commit */
    int64_t *add_ids;       /* ascending (AUTOINCREMENT chunk ids) */
    float *add_vecs;
    size_t n_add, cap_add;
    int64_t *del_ids;
    size_t n_del, cap_del;
    /* text analysis (fts.c) */
    idx_an *an;             /* config of generation fts_gen */
    int64_t fts_gen;        /* -1 = not loaded */
    struct fts_cache *fts_cache; /* search-time caches (fts.c), NULL until used */
    uint64_t wseq;          /* bumped by every write transaction of this
                               connection (the caches' validity key) */
};

/* thes.c: German synonym sets (OpenThesaurus text format), keyed by the
 * terms the analyzer gives each entry as a German word */
typedef struct idx_thes idx_thes;
int idx_thes_load(idx_an *an, const char *path, idx_thes **out, char *err, size_t errsz);
void idx_thes_free(idx_thes *th);
size_t idx_thes_sets(const idx_thes *th);
size_t idx_thes_terms(const idx_thes *th);
const char *idx_thes_path(const idx_thes *th);
/* cb(user, synonym term) for every other member of every set holding term;
 * a non-zero return stops and is returned */
int idx_thes_each(const idx_thes *th, const char *term, size_t n, int (*cb)(void *, const char *), void *user);

/* store.c */
int idx_err(idx_store *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int idx_sql_err(idx_store *s, const char *what);
void idx_set_notice(idx_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
sqlite3_stmt *idx_stmt(idx_store *s, idx_stmt_id id);
int idx_exec(idx_store *s, const char *sql);
int idx_meta_get_i64(idx_store *s, const char *key, int64_t *v, bool *found);
int idx_meta_put(idx_store *s, const char *key, const char *value);
int idx_meta_put_i64(idx_store *s, const char *key, int64_t v);
int idx_write_begin(idx_store *s, bool *own);
int idx_write_end(idx_store *s, bool own, int rc);
int idx_pending_add(idx_store *s, int64_t id, const float *v);
int idx_pending_del(idx_store *s, int64_t id);
int idx_count_sql(idx_store *s, const char *sql, int64_t *out);

/* vecindex.c */
int idx_vec_open(idx_store *s);              /* load file or rebuild */
int idx_vec_rebuild(idx_store *s);           /* from SQLite */
int idx_vec_apply(idx_store *s);             /* pending changes, after commit */
int idx_vec_save(idx_store *s);
int idx_vec_search(idx_store *s, const float *q, int64_t k, float *dist, int64_t *ids, int64_t *n);
int64_t idx_vec_ntotal(const idx_store *s);
int idx_vec_ids(idx_store *s, int64_t **ids, size_t *n);
void idx_vec_free(idx_vec *v);
int idx_faiss_err(idx_store *s, int frc, const char *what);
/* The type "auto" picks for n vectors of dimension dim (see docs/index.md). */
void idx_auto_type(int64_t n, int dim, char *out, size_t cap);
/* The FAISS type in use (s->factory unless it is "auto"). */
const char *idx_vec_type(const idx_store *s);

/* search.c: candidates re-ranked exactly for k hits (0 = none) */
int idx_rerank_count(const idx_store *s, int k);

/* fts.c */
int idx_fts_register(idx_store *s);          /* tokenizer + rank function */
int idx_fts_config_current(idx_store *s);    /* reload the config if changed */
int idx_fts_migrate(idx_store *s);           /* schema v3 step: analyse + rebuild */
int idx_fts_upgrade(idx_store *s);           /* rebuild if another analyzer version built it */
/* access-class statistics of a document's chunks: sign +1 after its chunks
 * and groups are stored, -1 before they are removed or regrouped */
int idx_fts_cls_apply(idx_store *s, int64_t doc_id, int sign);
int idx_fts_check(idx_store *s);             /* class statistics vs a recount */
void idx_fts_cache_free(idx_store *s);       /* search caches; before the connection closes */
/* BM25 over the analysed query; filter_sql is the visibility condition on
 * chunk alias c with the filter's groups bound from ?filter_first on. */
int idx_fts_search(idx_store *s, const char *query, size_t query_len, int k, const idx_filter *filter,
                   const char *filter_sql, int filter_first, idx_hit *hits, int *n_hits);

/* f16.c: stored vectors are IEEE half precision (schema 4) */
#define IDX_F16_MAX 65504.0f
void idx_f16_encode(const float *in, uint16_t *out, size_t n);
void idx_f16_decode(const void *in, float *out, size_t n);     /* in may be unaligned */
void idx_f16_encode_portable(const float *in, uint16_t *out, size_t n);
void idx_f16_decode_portable(const uint16_t *in, float *out, size_t n);
bool idx_f16_range_ok(const float *v, size_t n);              /* finite and |x| <= 65504 */
int idx_f16_register(idx_store *s);                            /* SQL mrag_f32_to_f16(blob) */

/* docs.c */
int idx_groups_parse(idx_store *s, const char *groups, char ***names, size_t *n);
void idx_groups_free(char **names, size_t n);
int idx_doc_from_row(idx_store *s, sqlite3_stmt *st, idx_doc *out);

#endif
