/* store.c — index folder lifecycle: open/close, schema and migrations, errors,
 * statement cache, meta and fingerprint, transactions, counts and checks. */
#define _GNU_SOURCE /* asprintf */
#include "index/idx_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <faiss/c_api/utils/distances_c.h>

/* ------------------------------------------------------------ errors */

const char *idx_status_name(int status) {
    switch (status) {
    case IDX_OK: return "IDX_OK";
    case IDX_ERR_ARG: return "IDX_ERR_ARG";
    case IDX_ERR_NOMEM: return "IDX_ERR_NOMEM";
    case IDX_ERR_IO: return "IDX_ERR_IO";
    case IDX_ERR_SQLITE: return "IDX_ERR_SQLITE";
    case IDX_ERR_FAISS: return "IDX_ERR_FAISS";
    case IDX_ERR_NOTFOUND: return "IDX_ERR_NOTFOUND";
    case IDX_ERR_STATE: return "IDX_ERR_STATE";
    case IDX_ERR_SCHEMA: return "IDX_ERR_SCHEMA";
    case IDX_ERR_MISMATCH: return "IDX_ERR_MISMATCH";
    case IDX_ERR_BUSY: return "IDX_ERR_BUSY";
    case IDX_ERR_READONLY: return "IDX_ERR_READONLY";
    }
    return "IDX_ERR_UNKNOWN";
}

/* Records "<dir>: <message>" as the last error and returns rc. */
int idx_err(idx_store *s, int rc, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(s->err, sizeof s->err, "index %s: %s", s->dir ? s->dir : "?", msg);
    return rc;
}

/* Records a SQLite error naming the database file; returns IDX_ERR_SQLITE
 * (IDX_ERR_BUSY when the database is locked, IDX_ERR_NOMEM on OOM). */
int idx_sql_err(idx_store *s, const char *what) {
    int code = s->db ? sqlite3_errcode(s->db) : SQLITE_ERROR;
    int rc = code == SQLITE_NOMEM ? IDX_ERR_NOMEM
           : (code == SQLITE_BUSY || code == SQLITE_LOCKED) ? IDX_ERR_BUSY : IDX_ERR_SQLITE;
    snprintf(s->err, sizeof s->err, "%s: %s: %s", s->db_path ? s->db_path : "?", what,
             s->db ? sqlite3_errmsg(s->db) : "not open");
    return rc;
}

void idx_set_notice(idx_store *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->notice, sizeof s->notice, fmt, ap);
    va_end(ap);
    s->has_notice = true;
}

const char *idx_errmsg(const idx_store *s) { return s ? s->err : "out of memory"; }
const char *idx_notice(const idx_store *s) { return s && s->has_notice ? s->notice : NULL; }

/* ------------------------------------------------------------ statements */

static const char *const stmt_sql[ST_COUNT__] = {
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_META_SET] = "INSERT INTO meta(key, value) VALUES(?1, ?2) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [ST_DOC_BY_URI] = "SELECT " IDX_DOC_COLUMNS " FROM documents WHERE uri = ?1",
    [ST_DOC_INSERT] = "INSERT INTO documents(uri, title, type, size, mtime_ns, sha256, status, indexed_at, version) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_DOC_UPDATE] = "UPDATE documents SET title = ?2, type = ?3, size = ?4, mtime_ns = ?5, "
                      "sha256 = ?6, status = ?7, indexed_at = ?8, version = ?9 WHERE id = ?1",
    [ST_DOC_TOUCH] = "UPDATE documents SET size = ?2, mtime_ns = ?3, indexed_at = ?4 WHERE uri = ?1",
    [ST_DOC_RENAME] = "UPDATE documents SET uri = ?2 WHERE uri = ?1",
    [ST_DOC_DELETE] = "DELETE FROM documents WHERE id = ?1",
    [ST_DOC_GROUPS_DEL] = "DELETE FROM doc_groups WHERE doc_id = ?1",
    [ST_DOC_GROUP_ADD] = "INSERT OR IGNORE INTO doc_groups(doc_id, grp) VALUES(?1, ?2)",
    [ST_DOC_GROUPS_GET] = "SELECT grp FROM doc_groups WHERE doc_id = ?1 ORDER BY grp",
    [ST_DOC_BY_ID] = "SELECT " IDX_DOC_COLUMNS " FROM documents WHERE id = ?1",
    [ST_CHUNK_IDS_OF_DOC] = "SELECT c.id, v.chunk_id IS NOT NULL FROM chunks c "
                            "LEFT JOIN vectors v ON v.chunk_id = c.id WHERE c.doc_id = ?1",
    [ST_CHUNKS_DEL_OF_DOC] = "DELETE FROM chunks WHERE doc_id = ?1",
    [ST_CHUNK_INSERT] = "INSERT INTO chunks(doc_id, ordinal, text, heading, byte_start, byte_end, "
                        "line_start, line_end, page, n_tokens) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_VECTOR_INSERT] = "INSERT INTO vectors(chunk_id, data) VALUES(?1, ?2)",
    [ST_VECTOR_GET] = "SELECT data FROM vectors WHERE chunk_id = ?1",
    [ST_DOC_ID_BY_URI] = "SELECT id FROM documents WHERE uri = ?1",
    [ST_FTS_CLS_LIST] = "SELECT id, groups, n_rows, n_tokens FROM fts_cls WHERE n_rows > 0 AND groups <> ''",
    [ST_FTS_CLS_DF] = "SELECT df FROM fts_cls_df WHERE cls = ?1 AND term = ?2",
    [ST_CHUNK_GET] = "SELECT id, doc_id, ordinal, text, heading, byte_start, byte_end, line_start, "
                     "line_end, page, n_tokens FROM chunks WHERE id = ?1",
};

/* Returns the cached, reset statement `id` (prepared on first use), or NULL
 * with the error recorded. Borrowed: valid until idx_close. */
sqlite3_stmt *idx_stmt(idx_store *s, idx_stmt_id id) {
    if (!s->st[id]) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->st[id], NULL) != SQLITE_OK) {
            idx_sql_err(s, "prepare");
            return NULL;
        }
    } else {
        sqlite3_reset(s->st[id]);
        sqlite3_clear_bindings(s->st[id]);
    }
    return s->st[id];
}

int idx_exec(idx_store *s, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int code = sqlite3_errcode(s->db);
        snprintf(s->err, sizeof s->err, "%s: %.200s: %s", s->db_path, sql, msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return code == SQLITE_BUSY || code == SQLITE_LOCKED ? IDX_ERR_BUSY : IDX_ERR_SQLITE;
    }
    return IDX_OK;
}

/* Runs a one-value integer query. */
int idx_count_sql(idx_store *s, const char *sql, int64_t *out) {
    sqlite3_stmt *st = NULL;
    int rc = IDX_OK;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) { rc = idx_sql_err(s, "prepare"); goto done; }
    if (sqlite3_step(st) != SQLITE_ROW) { rc = idx_sql_err(s, sql); goto done; }
    *out = sqlite3_column_int64(st, 0);
done:
    sqlite3_finalize(st);
    return rc;
}

/* ------------------------------------------------------------ meta */

int idx_meta_put(idx_store *s, const char *key, const char *value) {
    sqlite3_stmt *st = idx_stmt(s, ST_META_SET);
    if (!st) return IDX_ERR_SQLITE;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? IDX_OK : idx_sql_err(s, "set meta");
    sqlite3_reset(st);
    return rc;
}

int idx_meta_put_i64(idx_store *s, const char *key, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return idx_meta_put(s, key, buf);
}

/* Reads meta `key` as an owned string into *value (NULL when absent). */
static int meta_read(idx_store *s, const char *key, char **value) {
    *value = NULL;
    sqlite3_stmt *st = idx_stmt(s, ST_META_GET);
    if (!st) return IDX_ERR_SQLITE;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = IDX_OK, step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        *value = strdup(t ? t : "");
        if (!*value) rc = idx_err(s, IDX_ERR_NOMEM, "out of memory");
    } else if (step != SQLITE_DONE) {
        rc = idx_sql_err(s, "read meta");
    }
    sqlite3_reset(st);
    return rc;
}

int idx_meta_get_i64(idx_store *s, const char *key, int64_t *v, bool *found) {
    char *t = NULL;
    int rc = meta_read(s, key, &t);
    if (rc) return rc;
    *found = t != NULL;
    if (t) {
        char *end;
        errno = 0;
        long long x = strtoll(t, &end, 10);
        if (errno || end == t || *end)
            rc = idx_err(s, IDX_ERR_SCHEMA, "meta %s holds \"%.40s\", not an integer", key, t);
        else *v = x;
    }
    free(t);
    return rc;
}

int idx_meta_set(idx_store *s, const char *key, const char *value) {
    if (!s || !key || !value || !*key) return s ? idx_err(s, IDX_ERR_ARG, "meta key or value missing") : IDX_ERR_ARG;
    if (strncmp(key, "idx.", 4) == 0) return idx_err(s, IDX_ERR_ARG, "meta key \"%.60s\" is reserved", key);
    if (s->params.read_only) return idx_err(s, IDX_ERR_READONLY, "opened read-only");
    /* keys may hold an absolute path (PATH_MAX 4096) */
    if (strlen(key) > 8192 || strlen(value) > 1 << 20) return idx_err(s, IDX_ERR_ARG, "meta key or value too long");
    bool own;
    int rc = idx_write_begin(s, &own);
    if (rc) return rc;
    rc = idx_meta_put(s, key, value);
    return idx_write_end(s, own, rc);
}

int idx_meta_get(idx_store *s, const char *key, char **value) {
    if (!s || !key || !value) return s ? idx_err(s, IDX_ERR_ARG, "meta key missing") : IDX_ERR_ARG;
    int rc = meta_read(s, key, value);
    if (rc == IDX_OK && !*value) rc = idx_err(s, IDX_ERR_NOTFOUND, "no meta key \"%.60s\"", key);
    return rc;
}

int idx_meta_keys(idx_store *s, const char *prefix, char ***keys, size_t *n) {
    if (!s || !prefix || !keys || !n) return s ? idx_err(s, IDX_ERR_ARG, "meta prefix missing") : IDX_ERR_ARG;
    *keys = NULL;
    *n = 0;
    /* substr of a BLOB counts bytes (of TEXT, characters) */
    sqlite3_stmt *st = NULL;
    int rc = IDX_OK;
    char **a = NULL;
    size_t k = 0, cap = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT key FROM meta WHERE substr(CAST(key AS BLOB), 1, ?2) = CAST(?1 AS BLOB) ORDER BY key", -1, &st, NULL) !=
        SQLITE_OK)
        return idx_sql_err(s, "prepare");
    sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)strlen(prefix));
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (k == cap) {
            size_t nc = cap ? cap * 2 : 8;
            char **na = realloc(a, nc * sizeof *na);
            if (!na) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto done; }
            a = na;
            cap = nc;
        }
        if (!(a[k] = strdup(t ? t : ""))) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto done; }
        k++;
    }
    if (step != SQLITE_DONE) rc = idx_sql_err(s, "list meta");
done:
    sqlite3_finalize(st);
    if (rc) {
        idx_meta_keys_free(a, k);
        return rc;
    }
    *keys = a;
    *n = k;
    return IDX_OK;
}

void idx_meta_keys_free(char **keys, size_t n) {
    for (size_t i = 0; i < n; i++) free(keys[i]);
    free(keys);
}

/* ------------------------------------------------------------ fingerprint */

static bool fp_valid(const idx_fingerprint *fp) {
    size_t n = strnlen(fp->model_sha256, sizeof fp->model_sha256);
    if (n == sizeof fp->model_sha256) return false;
    for (size_t i = 0; i < n; i++) {
        char c = fp->model_sha256[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    size_t p = strnlen(fp->pooling, sizeof fp->pooling);
    return p > 0 && p < sizeof fp->pooling && fp->dim > 0 && fp->dim <= IDX_MAX_DIM;
}

int idx_fingerprint_get(idx_store *s, idx_fingerprint *fp) {
    if (!s || !fp) return s ? idx_err(s, IDX_ERR_ARG, "fingerprint missing") : IDX_ERR_ARG;
    memset(fp, 0, sizeof *fp);
    char *sha = NULL, *pool = NULL;
    int64_t layer = 0, dim = 0;
    bool f1, f2;
    int rc = meta_read(s, "idx.fp.model_sha256", &sha);
    if (!rc) rc = meta_read(s, "idx.fp.pooling", &pool);
    if (!rc) rc = idx_meta_get_i64(s, "idx.fp.layer", &layer, &f1);
    if (!rc) rc = idx_meta_get_i64(s, "idx.fp.dim", &dim, &f2);
    if (rc) goto done;
    if (!sha || !pool || !f1 || !f2) { rc = idx_err(s, IDX_ERR_NOTFOUND, "no embedding fingerprint recorded"); goto done; }
    snprintf(fp->model_sha256, sizeof fp->model_sha256, "%s", sha);
    snprintf(fp->pooling, sizeof fp->pooling, "%s", pool);
    fp->layer = (int)layer;
    fp->dim = (int)dim;
done:
    free(sha);
    free(pool);
    return rc;
}

/* Compares fp with the recorded one; names the differing fields. */
int idx_fingerprint_check(idx_store *s, const idx_fingerprint *fp) {
    if (!s || !fp) return s ? idx_err(s, IDX_ERR_ARG, "fingerprint missing") : IDX_ERR_ARG;
    idx_fingerprint cur;
    int rc = idx_fingerprint_get(s, &cur);
    if (rc == IDX_ERR_NOTFOUND) {
        s->err[0] = 0;
        if (s->dim && fp->dim != s->dim)
            return idx_err(s, IDX_ERR_MISMATCH, "index holds vectors of dimension %d, embedding has %d", s->dim, fp->dim);
        return IDX_OK;
    }
    if (rc) return rc;
    char diff[600] = "";
    size_t o = 0;
    if (strcmp(cur.model_sha256, fp->model_sha256) != 0)
        o += snprintf(diff + o, sizeof diff - o, " model sha256 %.12s… (index) vs %.12s…;", cur.model_sha256, fp->model_sha256);
    if (cur.layer != fp->layer && o < sizeof diff)
        o += snprintf(diff + o, sizeof diff - o, " layer %d vs %d;", cur.layer, fp->layer);
    if (strcmp(cur.pooling, fp->pooling) != 0 && o < sizeof diff)
        o += snprintf(diff + o, sizeof diff - o, " pooling %s vs %s;", cur.pooling, fp->pooling);
    if (cur.dim != fp->dim && o < sizeof diff)
        o += snprintf(diff + o, sizeof diff - o, " dimension %d vs %d;", cur.dim, fp->dim);
    if (o == 0) return IDX_OK;
    return idx_err(s, IDX_ERR_MISMATCH, "built with a different embedding:%s re-ingest with this model or use the original one", diff);
}

int idx_fingerprint_set(idx_store *s, const idx_fingerprint *fp) {
    if (!s || !fp) return s ? idx_err(s, IDX_ERR_ARG, "fingerprint missing") : IDX_ERR_ARG;
    if (!fp_valid(fp)) return idx_err(s, IDX_ERR_ARG, "invalid fingerprint (sha256 hex, pooling, dimension 1..%d)", IDX_MAX_DIM);
    if (s->params.read_only) return idx_err(s, IDX_ERR_READONLY, "opened read-only");
    int64_t nvec = s->nvec + (int64_t)s->n_add - (int64_t)s->n_del;
    int rc;
    if (nvec > 0) {
        rc = idx_fingerprint_check(s, fp);
        if (rc) return rc;
    }
    bool own;
    rc = idx_write_begin(s, &own);
    if (rc) return rc;
    rc = idx_meta_put(s, "idx.fp.model_sha256", fp->model_sha256);
    if (!rc && nvec == 0 && s->dim != fp->dim && s->dim != 0) {
        /* No vectors left from an earlier embedding: adopt the new size. */
        rc = idx_meta_put_i64(s, "idx.dim", fp->dim);
        if (!rc) {
            s->dim = fp->dim;
            idx_vec_free(&s->vec);
            s->txn_vec_changed = true; /* new generation: the old file is void */
        }
    }
    if (!rc) rc = idx_meta_put(s, "idx.fp.pooling", fp->pooling);
    if (!rc) rc = idx_meta_put_i64(s, "idx.fp.layer", fp->layer);
    if (!rc) rc = idx_meta_put_i64(s, "idx.fp.dim", fp->dim);
    return idx_write_end(s, own, rc);
}

int idx_vectors_replace(idx_store *s, const idx_fingerprint *fp, const int64_t *ids, const float *vecs, size_t n) {
    if (!s || !fp || (n && (!ids || !vecs))) return s ? idx_err(s, IDX_ERR_ARG, "arguments missing") : IDX_ERR_ARG;
    if (!fp_valid(fp)) return idx_err(s, IDX_ERR_ARG, "invalid fingerprint");
    if (s->params.read_only) return idx_err(s, IDX_ERR_READONLY, "opened read-only");
    if (s->in_txn) return idx_err(s, IDX_ERR_STATE, "idx_vectors_replace inside a transaction");
    if (fp->dim != s->dim) return idx_err(s, IDX_ERR_MISMATCH, "vectors of dimension %d for an index of dimension %d", fp->dim, s->dim);
    if ((int64_t)n != s->nvec) return idx_err(s, IDX_ERR_ARG, "%zu vectors given, the index holds %lld", n, (long long)s->nvec);
    for (size_t i = 0; i < n * (size_t)fp->dim; i++)
        if (!isfinite(vecs[i]) || fabsf(vecs[i]) > IDX_F16_MAX)
            return idx_err(s, IDX_ERR_ARG, "vector %zu is not finite or out of the float16 range", i / (size_t)fp->dim);
    uint16_t *h = malloc((size_t)fp->dim * sizeof *h + 1);
    if (!h) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    int rc = idx_begin(s);
    if (rc) { free(h); return rc; }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "UPDATE vectors SET data = ?2 WHERE chunk_id = ?1", -1, &st, NULL) != SQLITE_OK) {
        rc = idx_sql_err(s, "prepare");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ids[i]);
        idx_f16_encode(vecs + i * (size_t)fp->dim, h, (size_t)fp->dim);
        sqlite3_bind_blob(st, 2, h, fp->dim * (int)sizeof *h, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) { rc = idx_sql_err(s, "rewrite vector"); goto fail; }
        if (sqlite3_changes(s->db) != 1) { rc = idx_err(s, IDX_ERR_ARG, "chunk %lld has no vector", (long long)ids[i]); goto fail; }
    }
    sqlite3_finalize(st);
    st = NULL;
    free(h);
    h = NULL;
    rc = idx_meta_put(s, "idx.fp.model_sha256", fp->model_sha256);
    if (!rc) rc = idx_meta_put(s, "idx.fp.pooling", fp->pooling);
    if (!rc) rc = idx_meta_put_i64(s, "idx.fp.layer", fp->layer);
    if (!rc) rc = idx_meta_put_i64(s, "idx.fp.dim", fp->dim);
    if (rc) goto fail;
    s->txn_vec_changed = true;      /* a new generation: FAISS files of the old one are void */
    if ((rc = idx_commit(s))) return rc;
    return idx_rebuild(s);
fail:
    sqlite3_finalize(st);
    free(h);
    {
        char keep[sizeof s->err];
        memcpy(keep, s->err, sizeof keep);
        idx_rollback(s);
        memcpy(s->err, keep, sizeof keep);
    }
    return rc;
}

/* ------------------------------------------------------------ schema */

/* Each step migrates user_version i to i+1; index i holds the step from i.
 * A new version adds its step here and bumps IDX_SCHEMA_VERSION. */
static const char *const migrations[IDX_SCHEMA_VERSION] = {
    /* 0 -> 1 */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE documents("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  uri TEXT NOT NULL UNIQUE,"
    "  title TEXT NOT NULL DEFAULT '',"
    "  type TEXT NOT NULL DEFAULT '',"
    "  size INTEGER NOT NULL DEFAULT 0,"
    "  mtime_ns INTEGER NOT NULL DEFAULT 0,"
    "  sha256 TEXT NOT NULL DEFAULT '',"
    "  status TEXT NOT NULL DEFAULT 'ok',"
    "  indexed_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE doc_groups("
    "  doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,"
    "  grp TEXT NOT NULL,"
    "  PRIMARY KEY(doc_id, grp)) WITHOUT ROWID;"
    "CREATE INDEX doc_groups_grp ON doc_groups(grp, doc_id);"
    /* AUTOINCREMENT: a chunk id is never reused, so a stale FAISS id can
     * never point at a different, newer chunk. */
    "CREATE TABLE chunks("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,"
    "  ordinal INTEGER NOT NULL,"
    "  text TEXT NOT NULL,"
    "  heading TEXT NOT NULL DEFAULT '',"
    "  byte_start INTEGER NOT NULL DEFAULT 0,"
    "  byte_end INTEGER NOT NULL DEFAULT 0,"
    "  line_start INTEGER NOT NULL DEFAULT 0,"
    "  line_end INTEGER NOT NULL DEFAULT 0,"
    "  page INTEGER NOT NULL DEFAULT 0,"
    "  n_tokens INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE(doc_id, ordinal));"
    "CREATE TABLE vectors("
    "  chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,"
    "  data BLOB NOT NULL);"
    /* External-content FTS5 over chunks: the text is stored once; triggers
     * keep the index in step within the same transaction, and the delete
     * trigger passes the exact old values FTS5 needs to remove the row. */
    "CREATE VIRTUAL TABLE chunks_fts USING fts5(heading, text, content='chunks', content_rowid='id',"
    "  tokenize='unicode61 remove_diacritics 2');"
    "CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN"
    "  INSERT INTO chunks_fts(rowid, heading, text) VALUES(new.id, new.heading, new.text); END;"
    "CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN"
    "  INSERT INTO chunks_fts(chunks_fts, rowid, heading, text) VALUES('delete', old.id, old.heading, old.text); END;"
    "CREATE TRIGGER chunks_au AFTER UPDATE OF heading, text ON chunks BEGIN"
    "  INSERT INTO chunks_fts(chunks_fts, rowid, heading, text) VALUES('delete', old.id, old.heading, old.text);"
    "  INSERT INTO chunks_fts(rowid, heading, text) VALUES(new.id, new.heading, new.text); END;"
    /* Read-only view of the FTS5 index itself (for exact row counts). */
    "CREATE VIRTUAL TABLE chunks_fts_instance USING fts5vocab(chunks_fts, instance);",
    /* 1 -> 2: the source's own revision of a document (a wiki revision id) */
    "ALTER TABLE documents ADD COLUMN version TEXT NOT NULL DEFAULT '';",
    /* 2 -> 3: mrag's language-aware tokenizer (fts.c, analyze.c): the FTS
     * table is recreated and rebuilt from the chunks (schema_migrate runs
     * idx_fts_migrate after this step); vectors are untouched. The word list
     * for compounds, and per-access-class statistics for BM25. */
    "DROP TABLE IF EXISTS chunks_fts_instance;"
    "DROP TABLE chunks_fts;"
    "CREATE VIRTUAL TABLE chunks_fts USING fts5(heading, text, content='chunks', content_rowid='id', tokenize='mrag');"
    "CREATE VIRTUAL TABLE chunks_fts_instance USING fts5vocab(chunks_fts, instance);"
    "CREATE TABLE fts_words(word TEXT PRIMARY KEY, cf INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE fts_cls(id INTEGER PRIMARY KEY, groups TEXT NOT NULL UNIQUE,"
    "  n_rows INTEGER NOT NULL DEFAULT 0, n_tokens INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE fts_cls_df(cls INTEGER NOT NULL, term TEXT NOT NULL, df INTEGER NOT NULL,"
    "  PRIMARY KEY(cls, term)) WITHOUT ROWID;",
    /* 3 -> 4: vectors stored as IEEE float16 (f16.c), half the bytes; the
     * FAISS file is rebuilt from the converted vectors (schema_migrate bumps
     * the generation) so both sides hold the same values. */
    "UPDATE vectors SET data = mrag_f32_to_f16(data);",
};

/* Brings the schema to IDX_SCHEMA_VERSION, one transaction per step. */
static int schema_migrate(idx_store *s) {
    int64_t v = 0;
    bool vacuum = false;
    int rc = idx_count_sql(s, "PRAGMA user_version", &v);
    if (rc) return rc;
    if (v > IDX_SCHEMA_VERSION)
        return idx_err(s, IDX_ERR_SCHEMA, "%s has schema version %lld, this program knows up to %d: upgrade mrag",
                       s->db_path, (long long)v, IDX_SCHEMA_VERSION);
    if (v == 0) {
        int64_t n = 0;
        rc = idx_count_sql(s, "SELECT count(*) FROM sqlite_schema", &n);
        if (rc) return rc;
        if (n > 0) return idx_err(s, IDX_ERR_SCHEMA, "%s is an SQLite file but not an mrag index", s->db_path);
    }
    if (v < IDX_SCHEMA_VERSION && s->params.read_only)
        return idx_err(s, IDX_ERR_READONLY, "%s needs a schema upgrade (v%lld to v%d): open it read-write once",
                       s->db_path, (long long)v, IDX_SCHEMA_VERSION);
    for (; v < IDX_SCHEMA_VERSION; v++) {
        char sql[64];
        rc = idx_exec(s, "BEGIN IMMEDIATE");
        if (rc) return rc;
        rc = idx_exec(s, migrations[v]);
        if (!rc && v + 1 == 3) rc = idx_fts_migrate(s);
        if (!rc && v + 1 == 4) {
            int64_t gen = 0, nv = 0;
            bool found = false;
            rc = idx_meta_get_i64(s, "idx.generation", &gen, &found);
            if (!rc) rc = idx_count_sql(s, "SELECT count(*) FROM vectors", &nv);
            if (!rc && found && nv > 0) {
                rc = idx_meta_put_i64(s, "idx.generation", gen + 1);
                vacuum = true;
            }
        }
        snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)v + 1);
        if (!rc) rc = idx_exec(s, sql);
        if (!rc) rc = idx_meta_put_i64(s, "idx.schema_version", v + 1);
        if (!rc && v == 0) {
            unsigned char r[16];
            char hex[33];
            if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
                /* Unique enough without the random source: time and pid. */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                for (size_t i = 0; i < sizeof r; i++) r[i] = (unsigned char)((ts.tv_nsec >> (i % 4 * 8)) ^ getpid() ^ (ts.tv_sec >> i));
            }
            for (size_t i = 0; i < sizeof r; i++) snprintf(hex + 2 * i, 3, "%02x", r[i]);
            rc = idx_meta_put(s, "idx.uuid", hex);
            if (!rc) rc = idx_meta_put_i64(s, "idx.generation", 0);
            if (!rc) rc = idx_meta_put_i64(s, "idx.vectors", 0);
        }
        if (rc) {
            char keep[sizeof s->err];
            memcpy(keep, s->err, sizeof keep);
            idx_exec(s, "ROLLBACK");
            memcpy(s->err, keep, sizeof keep);
            return rc;
        }
        rc = idx_exec(s, "COMMIT");
        if (rc) return rc;
    }
    /* The float16 conversion freed half of every vector page: give it back
     * to the file system (needs free disk space about the size of the
     * database while it runs; a failure leaves a valid, larger file). */
    if (vacuum && (idx_exec(s, "VACUUM") != IDX_OK || idx_exec(s, "PRAGMA wal_checkpoint(TRUNCATE)") != IDX_OK))
        idx_set_notice(s, "%s: converted the vectors to float16 but VACUUM failed (%.300s): the file keeps its old size",
                       s->db_path, s->err);
    s->err[0] = 0;
    return IDX_OK;
}

/* Reads uuid, generation, dimension and FAISS type from meta; records the
 * requested FAISS type when it differs (the FAISS side then rebuilds). */
static int load_meta(idx_store *s, const char *requested) {
    char *t = NULL;
    bool found;
    int64_t v = 0;
    int rc = meta_read(s, "idx.uuid", &t);
    if (rc) return rc;
    if (!t || strlen(t) != 32) { free(t); return idx_err(s, IDX_ERR_SCHEMA, "%s: meta idx.uuid missing or malformed", s->db_path); }
    memcpy(s->uuid, t, 33);
    free(t);
    rc = idx_meta_get_i64(s, "idx.generation", &s->gen, &found);
    if (rc) return rc;
    if (!found) return idx_err(s, IDX_ERR_SCHEMA, "%s: meta idx.generation missing", s->db_path);
    rc = idx_meta_get_i64(s, "idx.vectors", &s->nvec, &found);
    if (rc) return rc;
    if (!found || s->nvec < 0) return idx_err(s, IDX_ERR_SCHEMA, "%s: meta idx.vectors missing or negative", s->db_path);
    rc = idx_meta_get_i64(s, "idx.dim", &v, &found);
    if (rc) return rc;
    if (found && (v < 0 || v > IDX_MAX_DIM)) return idx_err(s, IDX_ERR_SCHEMA, "%s: meta idx.dim %lld out of range", s->db_path, (long long)v);
    s->dim = found ? (int)v : 0;
    rc = meta_read(s, "idx.faiss_factory", &t);
    if (rc) return rc;
    const char *want = requested && *requested ? requested : (t ? t : "auto");
    if (strlen(want) >= sizeof s->factory) { free(t); return idx_err(s, IDX_ERR_ARG, "FAISS factory string too long"); }
    snprintf(s->factory, sizeof s->factory, "%s", want);
    bool changed = !t || strcmp(t, want) != 0;
    free(t);
    if (changed && !s->params.read_only) rc = idx_meta_put(s, "idx.faiss_factory", s->factory);
    return rc;
}

/* ------------------------------------------------------------ open/close */

idx_params idx_default_params(void) {
    idx_params p = {0};
    p.faiss_factory = NULL;
    p.busy_timeout_ms = 5000;
    p.ivf_nprobe = 16;
    p.hnsw_ef_search = 64;
    p.search_threads = 1;
    p.probe_threads = 0;
    p.rerank = -1;
    return p;
}

static char *path_join(const char *dir, const char *name) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0) return NULL;
    return p;
}

int idx_open(const char *dir, const idx_params *params, idx_store **out) {
    int rc = IDX_OK;
    *out = NULL;
    idx_store *s = calloc(1, sizeof *s);
    if (!s) return IDX_ERR_NOMEM;
    *out = s;
    s->lock_fd = -1;
    s->vec.saved_gen = -1;
    s->params = params ? *params : idx_default_params();
    s->params.faiss_factory = NULL; /* not kept (the caller's string may go away): see s->factory */
    if (!dir || !*dir) { s->dir = strdup("?"); return idx_err(s, IDX_ERR_ARG, "no index folder given"); }
    s->dir = strdup(dir);
    s->db_path = path_join(dir, "mrag.sqlite");
    s->faiss_path = path_join(dir, "faiss.index");
    s->tmp_path = path_join(dir, "faiss.index.tmp");
    s->lock_path = path_join(dir, "mrag.lock");
    if (!s->dir || !s->db_path || !s->faiss_path || !s->tmp_path || !s->lock_path) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    if (s->params.busy_timeout_ms < 0) s->params.busy_timeout_ms = 0;
    if (s->params.ivf_nprobe <= 0) s->params.ivf_nprobe = 16;
    if (s->params.hnsw_ef_search <= 0) s->params.hnsw_ef_search = 64;
    if (s->params.search_threads < 0) s->params.search_threads = 0;
    if (s->params.probe_threads < 0) s->params.probe_threads = 0;

    if (!s->params.read_only) {
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) return idx_err(s, IDX_ERR_IO, "cannot create folder: %s", strerror(errno));
        s->lock_fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (s->lock_fd < 0) return idx_err(s, IDX_ERR_IO, "cannot open %s: %s", s->lock_path, strerror(errno));
        if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0)
            return idx_err(s, errno == EWOULDBLOCK ? IDX_ERR_BUSY : IDX_ERR_IO, "%s: %s", s->lock_path,
                           errno == EWOULDBLOCK ? "another mrag process is writing this index" : strerror(errno));
    }
    int flags = s->params.read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(s->db_path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
        return idx_sql_err(s, "open");
    sqlite3_extended_result_codes(s->db, 0);
    sqlite3_busy_timeout(s->db, s->params.busy_timeout_ms);
    /* synchronous=NORMAL in WAL mode: a commit is atomic and survives a
     * process kill; only a power cut can lose the last commits (an fsync per
     * document commit cost ~14 ms here). idx_save checkpoints (syncs) the
     * WAL before writing the FAISS file, so the file never claims a
     * generation the database could lose. */
    rc = idx_exec(s, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA secure_delete = OFF");
    if (rc) goto done;
    {
        /* Any read fails on a file that is not a database. */
        int64_t n;
        rc = idx_count_sql(s, "SELECT count(*) FROM sqlite_schema", &n);
        if (rc) goto done;
    }
    if (!s->params.read_only) {
        rc = idx_exec(s, "PRAGMA journal_mode = WAL");
        if (rc) goto done;
    }
    rc = idx_fts_register(s);
    if (!rc) rc = idx_f16_register(s);
    if (rc) goto done;
    rc = schema_migrate(s);
    if (rc) goto done;
    rc = idx_fts_upgrade(s);
    if (rc) goto done;
    rc = idx_fts_config_current(s);
    if (rc) goto done;
    rc = load_meta(s, params ? params->faiss_factory : NULL);
    if (rc) goto done;
    if (!s->params.read_only) unlink(s->tmp_path); /* a save cut short */
    /* FAISS's default (BLAS only from 20 queries up) makes one query over
     * 100k x 256 take ~30 ms in the generic SIMD loop; OpenBLAS's sgemv
     * path is several times faster (see docs/benchmarks.md). Global. */
    faiss_set_distance_compute_blas_threshold(1);
    rc = idx_vec_open(s);
done:
    return rc;
}

void idx_close(idx_store *s) {
    if (!s) return;
    if (s->in_txn) idx_rollback(s);
    idx_fts_cache_free(s);
    for (int i = 0; i < ST_COUNT__; i++) sqlite3_finalize(s->st[i]);
    if (s->db) sqlite3_close(s->db);
    idx_an_free(s->an); /* after the connection: its FTS5 tokenizers point at it */
    idx_vec_free(&s->vec);
    if (s->lock_fd >= 0) close(s->lock_fd); /* releases the flock */
    free(s->add_ids);
    free(s->add_vecs);
    free(s->del_ids);
    free(s->dir);
    free(s->db_path);
    free(s->faiss_path);
    free(s->tmp_path);
    free(s->lock_path);
    free(s);
}

int idx_refresh(idx_store *s, bool *changed) {
    if (changed) *changed = false;
    if (!s) return IDX_ERR_ARG;
    if (s->in_txn) return idx_err(s, IDX_ERR_STATE, "idx_refresh inside a transaction");
    int64_t gen = 0, nvec = 0, dim = 0;
    bool found = false;
    /* One read transaction: the meta values and the vectors a rebuild reads
     * belong to the same commit. */
    int rc = idx_exec(s, "BEGIN");
    if (rc) return rc;
    rc = idx_meta_get_i64(s, "idx.generation", &gen, &found);
    if (rc || gen == s->gen) goto done;
    if ((rc = idx_meta_get_i64(s, "idx.vectors", &nvec, &found))) goto done;
    if ((rc = idx_meta_get_i64(s, "idx.dim", &dim, &found))) goto done;
    if (dim < 0 || dim > IDX_MAX_DIM) { rc = idx_err(s, IDX_ERR_SCHEMA, "%s: meta idx.dim out of range", s->db_path); goto done; }
    s->gen = gen;
    s->nvec = nvec;
    s->dim = (int)dim;
    s->has_notice = false;
    idx_vec_free(&s->vec);
    s->vec.saved_gen = -1;
    rc = idx_vec_open(s);
    if (changed) *changed = true;
done:
    {
        char keep[sizeof s->err];
        memcpy(keep, s->err, sizeof keep);
        int rc2 = idx_exec(s, "COMMIT");
        if (rc) memcpy(s->err, keep, sizeof keep);
        else rc = rc2;
    }
    return rc;
}

/* ------------------------------------------------------------ transactions */

static void pending_clear(idx_store *s) {
    s->n_add = 0;
    s->n_del = 0;
    s->txn_vec_changed = false;
}

int idx_begin(idx_store *s) {
    if (!s) return IDX_ERR_ARG;
    s->err[0] = 0;
    if (s->params.read_only) return idx_err(s, IDX_ERR_READONLY, "opened read-only");
    if (s->in_txn) return idx_err(s, IDX_ERR_STATE, "a transaction is already open");
    s->wseq++;
    int rc = idx_exec(s, "BEGIN IMMEDIATE");
    if (rc) return rc;
    s->in_txn = true;
    s->dim_before_txn = s->dim;
    pending_clear(s);
    return IDX_OK;
}

int idx_rollback(idx_store *s) {
    if (!s) return IDX_ERR_ARG;
    if (!s->in_txn) return idx_err(s, IDX_ERR_STATE, "no transaction is open");
    s->wseq++;
    char keep[sizeof s->err];
    memcpy(keep, s->err, sizeof keep);
    int rc = sqlite3_get_autocommit(s->db) ? IDX_OK : idx_exec(s, "ROLLBACK");
    if (rc == IDX_OK) memcpy(s->err, keep, sizeof keep);
    s->in_txn = false;
    if (s->dim != s->dim_before_txn) {
        /* The queued-vector buffer was sized for the rolled-back dimension. */
        free(s->add_ids);
        free(s->add_vecs);
        s->add_ids = NULL;
        s->add_vecs = NULL;
        s->cap_add = 0;
        s->dim = s->dim_before_txn;
    }
    pending_clear(s);
    /* A rolled-back change may have dropped the FAISS index (dimension
     * change): bring it back from the committed vectors. */
    if (rc == IDX_OK && s->dim && !s->vec.index) rc = idx_vec_rebuild(s);
    return rc;
}

int idx_commit(idx_store *s) {
    if (!s) return IDX_ERR_ARG;
    if (!s->in_txn) return idx_err(s, IDX_ERR_STATE, "no transaction is open");
    s->wseq++;
    int rc = IDX_OK;
    int64_t gen = s->gen;
    int64_t nvec = s->nvec + (int64_t)s->n_add - (int64_t)s->n_del;
    if (s->txn_vec_changed) {
        gen = s->gen + 1;
        rc = idx_meta_put_i64(s, "idx.generation", gen);
        if (!rc) rc = idx_meta_put_i64(s, "idx.vectors", nvec);
        if (rc) goto fail;
    }
    rc = idx_exec(s, "COMMIT");
    if (rc) goto fail;
    s->in_txn = false;
    s->gen = gen;
    s->nvec = nvec;
    rc = idx_vec_apply(s);
    pending_clear(s);
    return rc;
fail:
    idx_rollback(s);
    return rc;
}

bool idx_in_transaction(const idx_store *s) { return s && s->in_txn; }

/* Write calls outside a transaction open their own: *own tells the caller to
 * pass it on to idx_write_end. */
int idx_write_begin(idx_store *s, bool *own) {
    *own = false;
    if (s->params.read_only) return idx_err(s, IDX_ERR_READONLY, "opened read-only");
    if (s->in_txn) return IDX_OK;
    int rc = idx_begin(s);
    if (rc == IDX_OK) *own = true;
    return rc;
}

/* Ends a write call: commits or rolls back the transaction it opened. */
int idx_write_end(idx_store *s, bool own, int rc) {
    if (!own) return rc;
    if (rc) {
        idx_rollback(s);
        return rc;
    }
    return idx_commit(s);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    while (nc < need) nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np) return -1;
    *p = np;
    *cap = nc;
    return 0;
}

/* Queues a vector for FAISS at commit. Ids arrive ascending. */
int idx_pending_add(idx_store *s, int64_t id, const float *v) {
    if (s->n_add == s->cap_add) {
        size_t nc = s->cap_add ? s->cap_add * 2 : 64;
        int64_t *ni = realloc(s->add_ids, nc * sizeof *ni);
        if (!ni) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
        s->add_ids = ni;
        float *nv = realloc(s->add_vecs, nc * (size_t)s->dim * sizeof *nv);
        if (!nv) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
        s->add_vecs = nv;
        s->cap_add = nc;
    }
    s->add_ids[s->n_add] = id;
    memcpy(s->add_vecs + s->n_add * (size_t)s->dim, v, (size_t)s->dim * sizeof(float));
    s->n_add++;
    s->txn_vec_changed = true;
    return IDX_OK;
}

/* Queues a FAISS removal, or cancels an add of the same transaction. */
int idx_pending_del(idx_store *s, int64_t id) {
    s->txn_vec_changed = true;
    size_t lo = 0, hi = s->n_add;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->add_ids[mid] < id) lo = mid + 1; else hi = mid;
    }
    if (lo < s->n_add && s->add_ids[lo] == id) {
        size_t d = (size_t)s->dim;
        memmove(s->add_ids + lo, s->add_ids + lo + 1, (s->n_add - lo - 1) * sizeof *s->add_ids);
        memmove(s->add_vecs + lo * d, s->add_vecs + (lo + 1) * d, (s->n_add - lo - 1) * d * sizeof(float));
        s->n_add--;
        return IDX_OK;
    }
    if (grow((void **)&s->del_ids, &s->cap_del, s->n_del + 1, sizeof *s->del_ids)) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    s->del_ids[s->n_del++] = id;
    return IDX_OK;
}

/* ------------------------------------------------------------ save/rebuild */

int idx_save(idx_store *s) {
    if (!s) return IDX_ERR_ARG;
    if (s->params.read_only) return idx_err(s, IDX_ERR_READONLY, "opened read-only");
    if (s->in_txn) return idx_err(s, IDX_ERR_STATE, "idx_save inside a transaction: commit first");
    if (s->vec.saved_gen == s->vec.gen && s->vec.gen == s->gen) return idx_vec_save(s); /* nothing new */
    /* Make the committed generation durable before the file names it. */
    int rc = idx_exec(s, "PRAGMA wal_checkpoint(PASSIVE)");
    if (rc) return rc;
    return idx_vec_save(s);
}

int idx_rebuild(idx_store *s) {
    if (!s) return IDX_ERR_ARG;
    if (s->in_txn) return idx_err(s, IDX_ERR_STATE, "idx_rebuild inside a transaction: commit first");
    int rc = idx_vec_rebuild(s);
    if (rc == IDX_OK && !s->params.read_only) rc = idx_vec_save(s);
    return rc;
}

/* ------------------------------------------------------------ counts/checks */

int idx_get_counts(idx_store *s, idx_counts *c) {
    if (!s || !c) return s ? idx_err(s, IDX_ERR_ARG, "counts missing") : IDX_ERR_ARG;
    memset(c, 0, sizeof *c);
    int rc = idx_count_sql(s, "SELECT count(*) FROM documents", &c->documents);
    if (!rc) rc = idx_count_sql(s, "SELECT count(*) FROM chunks", &c->chunks);
    if (!rc) rc = idx_count_sql(s, "SELECT count(*) FROM vectors", &c->vectors);
    if (!rc) rc = idx_count_sql(s, "SELECT count(DISTINCT doc) FROM chunks_fts_instance", &c->fts_rows);
    if (rc) return rc;
    c->faiss_ntotal = idx_vec_ntotal(s);
    c->generation = s->gen;
    c->faiss_generation = s->vec.gen;
    c->saved_generation = s->vec.saved_gen;
    c->dim = s->dim;
    if (strcmp(s->factory, "auto") == 0) snprintf(c->faiss_type, sizeof c->faiss_type, "auto: %.56s", idx_vec_type(s));
    else snprintf(c->faiss_type, sizeof c->faiss_type, "%s", s->factory);
    return IDX_OK;
}

int idx_check(idx_store *s) {
    if (!s) return IDX_ERR_ARG;
    sqlite3_stmt *st = NULL;
    int rc = IDX_OK;
    if (sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) return idx_sql_err(s, "prepare");
    char found[600] = "";
    size_t o = 0;
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (t && strcmp(t, "ok") != 0 && o < sizeof found - 1)
            o += snprintf(found + o, sizeof found - o, "%s; ", t);
    }
    if (step != SQLITE_DONE) rc = idx_sql_err(s, "integrity_check");
    sqlite3_finalize(st);
    if (rc) return rc;
    if (o) return idx_err(s, IDX_ERR_SQLITE, "%s: integrity_check: %s", s->db_path, found);
    int64_t nvec = 0;
    if ((rc = idx_count_sql(s, "SELECT count(*) FROM vectors", &nvec))) return rc;
    if (!s->in_txn && nvec != s->nvec)
        return idx_err(s, IDX_ERR_SQLITE, "%s: meta idx.vectors is %lld, the table holds %lld", s->db_path,
                       (long long)s->nvec, (long long)nvec);
    if (s->params.read_only) return IDX_OK;
    /* rank = 1: also compare the FTS5 index with the chunks table. */
    rc = idx_exec(s, "INSERT INTO chunks_fts(chunks_fts, rank) VALUES('integrity-check', 1)");
    if (!rc) rc = idx_fts_check(s);
    return rc;
}

static int id_cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

sqlite3 *idx_debug_db(idx_store *s) { return s ? s->db : NULL; }

int idx_debug_faiss_ids(idx_store *s, int64_t **ids, size_t *n) {
    if (!s || !ids || !n) return s ? idx_err(s, IDX_ERR_ARG, "output missing") : IDX_ERR_ARG;
    int rc = idx_vec_ids(s, ids, n);
    if (rc == IDX_OK && *n) qsort(*ids, *n, sizeof **ids, id_cmp);
    return rc;
}

int idx_debug_vector_ids(idx_store *s, int64_t **ids, size_t *n) {
    if (!s || !ids || !n) return s ? idx_err(s, IDX_ERR_ARG, "output missing") : IDX_ERR_ARG;
    *ids = NULL;
    *n = 0;
    int64_t total = 0;
    int rc = idx_count_sql(s, "SELECT count(*) FROM vectors", &total);
    if (rc) return rc;
    int64_t *a = malloc(((size_t)total + 1) * sizeof *a);
    if (!a) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    sqlite3_stmt *st = NULL;
    size_t k = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT chunk_id FROM vectors ORDER BY chunk_id", -1, &st, NULL) != SQLITE_OK) {
        rc = idx_sql_err(s, "prepare");
        goto done;
    }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW && k < (size_t)total) a[k++] = sqlite3_column_int64(st, 0);
    if (step != SQLITE_DONE && step != SQLITE_ROW) rc = idx_sql_err(s, "list vectors");
done:
    sqlite3_finalize(st);
    if (rc) { free(a); return rc; }
    *ids = a;
    *n = k;
    return IDX_OK;
}
