/* idx_internal.h — the store struct and helpers shared by the index/ sources
 * (never included outside index/). */
#ifndef MRAG_IDX_INTERNAL_H
#define MRAG_IDX_INTERNAL_H

#include "index/index.h"

#include <sqlite3.h>
#include <faiss/c_api/Index_c.h>

#define IDX_SCHEMA_VERSION 2
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
} idx_vec;

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
};

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

/* docs.c */
int idx_groups_parse(idx_store *s, const char *groups, char ***names, size_t *n);
void idx_groups_free(char **names, size_t n);
int idx_doc_from_row(idx_store *s, sqlite3_stmt *st, idx_doc *out);

#endif
