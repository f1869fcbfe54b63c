/* docs.c — documents and chunks: put (replace), get, list, touch, rename,
 * delete, chunk fetch; access groups. */
#include "index/idx_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDX_MAX_URI 4096
#define IDX_MAX_FIELD 4096
#define IDX_MAX_TEXT (16u << 20)

/* ------------------------------------------------------------ groups */

void idx_groups_free(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Splits "a, b,c" into trimmed, non-empty names (owned array). NULL or ""
 * gives none. Rejects more than IDX_MAX_GROUPS names, names longer than
 * IDX_MAX_GROUP_LEN bytes and control characters. */
int idx_groups_parse(idx_store *s, const char *groups, char ***names, size_t *n) {
    *names = NULL;
    *n = 0;
    if (!groups || !*groups) return IDX_OK;
    char **a = calloc(IDX_MAX_GROUPS, sizeof *a);
    if (!a) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    size_t k = 0;
    const char *p = groups;
    int rc = IDX_OK;
    for (;;) {
        const char *e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        const char *b = p, *t = e;
        while (b < t && (*b == ' ' || *b == '\t')) b++;
        while (t > b && (t[-1] == ' ' || t[-1] == '\t')) t--;
        if (t > b) {
            if (k == IDX_MAX_GROUPS) { rc = idx_err(s, IDX_ERR_ARG, "more than %d access groups", IDX_MAX_GROUPS); break; }
            if ((size_t)(t - b) > IDX_MAX_GROUP_LEN) { rc = idx_err(s, IDX_ERR_ARG, "access group name longer than %d bytes", IDX_MAX_GROUP_LEN); break; }
            for (const char *c = b; c < t; c++)
                if ((unsigned char)*c < 0x20 || *c == 0x7f) { rc = idx_err(s, IDX_ERR_ARG, "control character in access group name"); break; }
            if (rc) break;
            a[k] = strndup(b, (size_t)(t - b));
            if (!a[k]) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); break; }
            k++;
        }
        if (!*e) break;
        p = e + 1;
    }
    if (rc) { idx_groups_free(a, k); return rc; }
    *names = a;
    *n = k;
    return IDX_OK;
}

/* ------------------------------------------------------------ output structs */

/* Copies the column strings into one owned block and points the fields at it. */
static int pack_strings(const char **fields[], const unsigned char *vals[], int n, void **block) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += strlen(vals[i] ? (const char *)vals[i] : "") + 1;
    char *b = malloc(total ? total : 1), *p = b;
    if (!b) return -1;
    for (int i = 0; i < n; i++) {
        const char *v = vals[i] ? (const char *)vals[i] : "";
        size_t l = strlen(v) + 1;
        memcpy(p, v, l);
        *fields[i] = p;
        p += l;
    }
    *block = b;
    return 0;
}

/* Fills *out from a row of IDX_DOC_COLUMNS. */
int idx_doc_from_row(idx_store *s, sqlite3_stmt *st, idx_doc *out) {
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, 0);
    out->size = sqlite3_column_int64(st, 4);
    out->mtime_ns = sqlite3_column_int64(st, 5);
    const unsigned char *sha = sqlite3_column_text(st, 6);
    snprintf(out->sha256, sizeof out->sha256, "%s", sha ? (const char *)sha : "");
    out->indexed_at = sqlite3_column_int64(st, 8);
    out->n_chunks = sqlite3_column_int64(st, 9);
    const char **fields[] = {&out->uri, &out->title, &out->type, &out->status, &out->groups, &out->version};
    const unsigned char *vals[] = {sqlite3_column_text(st, 1), sqlite3_column_text(st, 2), sqlite3_column_text(st, 3),
                                   sqlite3_column_text(st, 7), sqlite3_column_text(st, 10), sqlite3_column_text(st, 11)};
    if (pack_strings(fields, vals, 6, &out->priv_)) {
        memset(out, 0, sizeof *out);
        return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    }
    return IDX_OK;
}

void idx_doc_release(idx_doc *d) {
    if (!d) return;
    free(d->priv_);
    memset(d, 0, sizeof *d);
}

void idx_chunk_release(idx_chunk *c) {
    if (!c) return;
    free(c->priv_);
    memset(c, 0, sizeof *c);
}

void idx_doc_list_free(idx_doc *docs, size_t n) {
    if (!docs) return;
    for (size_t i = 0; i < n; i++) idx_doc_release(&docs[i]);
    free(docs);
}

/* ------------------------------------------------------------ helpers */

static bool str_ok(const char *v, size_t max) { return !v || strnlen(v, max + 1) <= max; }

/* Looks up the id of a document; *id = 0 when absent. */
static int doc_id_of(idx_store *s, const char *uri, int64_t *id) {
    *id = 0;
    sqlite3_stmt *st = idx_stmt(s, ST_DOC_ID_BY_URI);
    if (!st) return IDX_ERR_SQLITE;
    sqlite3_bind_text(st, 1, uri, -1, SQLITE_STATIC);
    int step = sqlite3_step(st), rc = IDX_OK;
    if (step == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
    else if (step != SQLITE_DONE) rc = idx_sql_err(s, "look up document");
    sqlite3_reset(st);
    return rc;
}

/* Deletes the chunks of a document (their vectors cascade; FTS5 rows leave
 * through the delete trigger) and queues the FAISS removals. */
static int chunks_remove(idx_store *s, int64_t doc_id) {
    int rc0 = idx_fts_cls_apply(s, doc_id, -1);
    if (rc0) return rc0;
    sqlite3_stmt *st = idx_stmt(s, ST_CHUNK_IDS_OF_DOC);
    if (!st) return IDX_ERR_SQLITE;
    sqlite3_bind_int64(st, 1, doc_id);
    int step, rc = IDX_OK;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int(st, 1) && (rc = idx_pending_del(s, sqlite3_column_int64(st, 0)))) break;
    }
    if (!rc && step != SQLITE_DONE) rc = idx_sql_err(s, "list chunks");
    sqlite3_reset(st);
    if (rc) return rc;
    st = idx_stmt(s, ST_CHUNKS_DEL_OF_DOC);
    if (!st) return IDX_ERR_SQLITE;
    sqlite3_bind_int64(st, 1, doc_id);
    rc = sqlite3_step(st) == SQLITE_DONE ? IDX_OK : idx_sql_err(s, "delete chunks");
    sqlite3_reset(st);
    return rc;
}

static int groups_store(idx_store *s, int64_t doc_id, const char *groups) {
    char **names;
    size_t n;
    int rc = idx_groups_parse(s, groups, &names, &n);
    if (rc) return rc;
    sqlite3_stmt *st = idx_stmt(s, ST_DOC_GROUPS_DEL);
    if (!st) { rc = IDX_ERR_SQLITE; goto done; }
    sqlite3_bind_int64(st, 1, doc_id);
    if (sqlite3_step(st) != SQLITE_DONE) { rc = idx_sql_err(s, "delete groups"); goto done; }
    for (size_t i = 0; i < n; i++) {
        st = idx_stmt(s, ST_DOC_GROUP_ADD);
        if (!st) { rc = IDX_ERR_SQLITE; goto done; }
        sqlite3_bind_int64(st, 1, doc_id);
        sqlite3_bind_text(st, 2, names[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) { rc = idx_sql_err(s, "add group"); goto done; }
    }
done:
    if (st) sqlite3_reset(st);
    idx_groups_free(names, n);
    return rc;
}

/* Checks the vector dimension against the index (fixing it on first use). */
static int dim_accept(idx_store *s, int dim) {
    if (dim <= 0 || dim > IDX_MAX_DIM) return idx_err(s, IDX_ERR_ARG, "vector dimension %d out of range", dim);
    if (s->dim == dim) return IDX_OK;
    if (s->dim != 0) return idx_err(s, IDX_ERR_MISMATCH, "index holds vectors of dimension %d, got %d", s->dim, dim);
    int64_t fpdim = 0;
    bool found = false;
    int rc = idx_meta_get_i64(s, "idx.fp.dim", &fpdim, &found);
    if (rc) return rc;
    if (found && fpdim != dim)
        return idx_err(s, IDX_ERR_MISMATCH, "embedding fingerprint says dimension %lld, got %d", (long long)fpdim, dim);
    rc = idx_meta_put_i64(s, "idx.dim", dim);
    if (rc) return rc;
    s->dim = dim;
    return IDX_OK;
}

/* The body of idx_doc_put, run inside a savepoint. */
static int doc_put_body(idx_store *s, idx_doc *doc, const idx_chunk *chunks, size_t n,
                        const float *vectors, int dim, int64_t *chunk_ids, uint16_t *h16, float *r32) {
    int rc;
    if (vectors && (rc = dim_accept(s, dim))) return rc;
    int64_t id = 0, now = (int64_t)time(NULL);
    if ((rc = doc_id_of(s, doc->uri, &id))) return rc;
    if (id && (rc = chunks_remove(s, id))) return rc;
    sqlite3_stmt *st = idx_stmt(s, id ? ST_DOC_UPDATE : ST_DOC_INSERT);
    if (!st) return IDX_ERR_SQLITE;
    if (id) sqlite3_bind_int64(st, 1, id);
    else sqlite3_bind_text(st, 1, doc->uri, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, doc->title ? doc->title : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, doc->type ? doc->type : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, doc->size);
    sqlite3_bind_int64(st, 5, doc->mtime_ns);
    sqlite3_bind_text(st, 6, doc->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, doc->status ? doc->status : "ok", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, now);
    sqlite3_bind_text(st, 9, doc->version ? doc->version : "", -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? IDX_OK : idx_sql_err(s, "write document");
    sqlite3_reset(st);
    if (rc) return rc;
    if (!id) id = sqlite3_last_insert_rowid(s->db);
    if ((rc = groups_store(s, id, doc->groups))) return rc;
    for (size_t i = 0; i < n; i++) {
        const idx_chunk *c = &chunks[i];
        st = idx_stmt(s, ST_CHUNK_INSERT);
        if (!st) return IDX_ERR_SQLITE;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, c->ordinal);
        sqlite3_bind_text(st, 3, c->text ? c->text : "", (int)c->text_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, c->heading ? c->heading : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, c->byte_start);
        sqlite3_bind_int64(st, 6, c->byte_end);
        sqlite3_bind_int(st, 7, c->line_start);
        sqlite3_bind_int(st, 8, c->line_end);
        sqlite3_bind_int(st, 9, c->page);
        sqlite3_bind_int(st, 10, c->n_tokens);
        rc = sqlite3_step(st) == SQLITE_DONE ? IDX_OK : idx_sql_err(s, "insert chunk");
        sqlite3_reset(st);
        if (rc) return rc;
        int64_t cid = sqlite3_last_insert_rowid(s->db);
        if (chunk_ids) chunk_ids[i] = cid;
        if (vectors) {
            /* stored as float16; FAISS gets the same rounded values, so an
             * index rebuilt from SQLite ranks exactly as this one */
            idx_f16_encode(vectors + i * (size_t)dim, h16, (size_t)dim);
            idx_f16_decode(h16, r32, (size_t)dim);
            st = idx_stmt(s, ST_VECTOR_INSERT);
            if (!st) return IDX_ERR_SQLITE;
            sqlite3_bind_int64(st, 1, cid);
            sqlite3_bind_blob(st, 2, h16, dim * (int)sizeof *h16, SQLITE_STATIC);
            rc = sqlite3_step(st) == SQLITE_DONE ? IDX_OK : idx_sql_err(s, "insert vector");
            sqlite3_reset(st);
            if (!rc) rc = idx_pending_add(s, cid, r32);
            if (rc) return rc;
        }
    }
    if ((rc = idx_fts_cls_apply(s, id, +1))) return rc;
    doc->id = id;
    return IDX_OK;
}

int idx_doc_put(idx_store *s, idx_doc *doc, const idx_chunk *chunks, size_t n_chunks,
                const float *vectors, int dim, int64_t *chunk_ids) {
    if (!s) return IDX_ERR_ARG;
    s->err[0] = 0;
    if (!doc || !doc->uri || !*doc->uri) return idx_err(s, IDX_ERR_ARG, "document without a URI");
    if (n_chunks && !chunks) return idx_err(s, IDX_ERR_ARG, "chunks missing");
    if (n_chunks > (size_t)INT32_MAX) return idx_err(s, IDX_ERR_ARG, "too many chunks");
    if (!str_ok(doc->uri, IDX_MAX_URI) || !str_ok(doc->title, IDX_MAX_FIELD) || !str_ok(doc->type, 64) ||
        !str_ok(doc->status, IDX_MAX_FIELD) || !str_ok(doc->version, 256) || strnlen(doc->sha256, sizeof doc->sha256) == sizeof doc->sha256)
        return idx_err(s, IDX_ERR_ARG, "document field too long (uri %d, title/status %d, type 64, version 256 bytes)", IDX_MAX_URI, IDX_MAX_FIELD);
    for (size_t i = 0; i < n_chunks; i++) {
        if ((!chunks[i].text && chunks[i].text_len) || chunks[i].text_len > IDX_MAX_TEXT || !str_ok(chunks[i].heading, IDX_MAX_FIELD))
            return idx_err(s, IDX_ERR_ARG, "chunk %zu of %.200s: text missing or too long", i, doc->uri);
    }
    if (vectors && n_chunks) {
        if (dim <= 0 || dim > IDX_MAX_DIM) return idx_err(s, IDX_ERR_ARG, "vector dimension %d out of range", dim);
        for (size_t i = 0; i < n_chunks * (size_t)dim; i++)
            if (!isfinite(vectors[i]) || fabsf(vectors[i]) > IDX_F16_MAX)
                return idx_err(s, IDX_ERR_ARG, "vector of chunk %zu of %.200s is not finite or out of the float16 range",
                               i / (size_t)dim, doc->uri);
    }
    if (!n_chunks) vectors = NULL;
    bool own;
    int rc = idx_write_begin(s, &own);
    if (rc) return rc;
    /* A savepoint makes a failed put leave the caller's transaction as it was. */
    size_t n_add = s->n_add, n_del = s->n_del;
    bool changed = s->txn_vec_changed;
    int dim_before = s->dim;
    rc = idx_exec(s, "SAVEPOINT idx_put");
    if (rc) return idx_write_end(s, own, rc);
    uint16_t *h16 = NULL;
    float *r32 = NULL;
    if (vectors) {
        h16 = malloc((size_t)dim * sizeof *h16);
        r32 = malloc((size_t)dim * sizeof *r32);
    }
    if (vectors && (!h16 || !r32)) rc = idx_err(s, IDX_ERR_NOMEM, "out of memory");
    else rc = doc_put_body(s, doc, chunks, n_chunks, vectors, dim, chunk_ids, h16, r32);
    free(h16);
    free(r32);
    if (rc) {
        char keep[sizeof s->err];
        memcpy(keep, s->err, sizeof keep);
        idx_exec(s, "ROLLBACK TO idx_put");
        memcpy(s->err, keep, sizeof keep);
        s->n_add = n_add;
        s->n_del = n_del;
        s->txn_vec_changed = changed;
        s->dim = dim_before;
    }
    int rc2 = idx_exec(s, "RELEASE idx_put");
    if (!rc) rc = rc2;
    return idx_write_end(s, own, rc);
}

int idx_doc_get(idx_store *s, const char *uri, idx_doc *out) {
    if (!s) return IDX_ERR_ARG;
    if (!uri || !out) return idx_err(s, IDX_ERR_ARG, "uri or output missing");
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = idx_stmt(s, ST_DOC_BY_URI);
    if (!st) return IDX_ERR_SQLITE;
    sqlite3_bind_text(st, 1, uri, -1, SQLITE_STATIC);
    int step = sqlite3_step(st), rc;
    if (step == SQLITE_ROW) rc = idx_doc_from_row(s, st, out);
    else if (step == SQLITE_DONE) rc = idx_err(s, IDX_ERR_NOTFOUND, "no document %.300s", uri);
    else rc = idx_sql_err(s, "look up document");
    sqlite3_reset(st);
    return rc;
}

int idx_doc_touch(idx_store *s, const char *uri, int64_t size, int64_t mtime_ns) {
    if (!s) return IDX_ERR_ARG;
    if (!uri) return idx_err(s, IDX_ERR_ARG, "uri missing");
    bool own;
    int rc = idx_write_begin(s, &own);
    if (rc) return rc;
    sqlite3_stmt *st = idx_stmt(s, ST_DOC_TOUCH);
    if (!st) return idx_write_end(s, own, IDX_ERR_SQLITE);
    sqlite3_bind_text(st, 1, uri, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, size);
    sqlite3_bind_int64(st, 3, mtime_ns);
    sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
    rc = sqlite3_step(st) == SQLITE_DONE ? IDX_OK : idx_sql_err(s, "touch document");
    sqlite3_reset(st);
    if (!rc && sqlite3_changes(s->db) == 0) rc = idx_err(s, IDX_ERR_NOTFOUND, "no document %.300s", uri);
    return idx_write_end(s, own, rc);
}

int idx_doc_set_groups(idx_store *s, const char *uri, const char *groups) {
    if (!s) return IDX_ERR_ARG;
    s->err[0] = 0;
    if (!uri) return idx_err(s, IDX_ERR_ARG, "uri missing");
    bool own;
    int rc = idx_write_begin(s, &own);
    if (rc) return rc;
    int64_t id = 0;
    rc = doc_id_of(s, uri, &id);
    if (!rc && !id) rc = idx_err(s, IDX_ERR_NOTFOUND, "no document %.300s", uri);
    if (!rc) rc = idx_fts_cls_apply(s, id, -1);
    if (!rc) rc = groups_store(s, id, groups);
    if (!rc) rc = idx_fts_cls_apply(s, id, +1);
    return idx_write_end(s, own, rc);
}

int idx_doc_rename(idx_store *s, const char *old_uri, const char *new_uri) {
    if (!s) return IDX_ERR_ARG;
    if (!old_uri || !new_uri || !*new_uri || !str_ok(new_uri, IDX_MAX_URI)) return idx_err(s, IDX_ERR_ARG, "uri missing or too long");
    bool own;
    int rc = idx_write_begin(s, &own);
    if (rc) return rc;
    int64_t id_new = 0, id_old = 0;
    if ((rc = doc_id_of(s, new_uri, &id_new)) || (rc = doc_id_of(s, old_uri, &id_old))) return idx_write_end(s, own, rc);
    if (!id_old) return idx_write_end(s, own, idx_err(s, IDX_ERR_NOTFOUND, "no document %.300s", old_uri));
    if (id_new && id_new != id_old) return idx_write_end(s, own, idx_err(s, IDX_ERR_ARG, "document %.300s exists already", new_uri));
    sqlite3_stmt *st = idx_stmt(s, ST_DOC_RENAME);
    if (!st) return idx_write_end(s, own, IDX_ERR_SQLITE);
    sqlite3_bind_text(st, 1, old_uri, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, new_uri, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? IDX_OK : idx_sql_err(s, "rename document");
    sqlite3_reset(st);
    return idx_write_end(s, own, rc);
}

int idx_doc_delete(idx_store *s, const char *uri) {
    if (!s) return IDX_ERR_ARG;
    if (!uri) return idx_err(s, IDX_ERR_ARG, "uri missing");
    s->err[0] = 0;
    bool own;
    int rc = idx_write_begin(s, &own);
    if (rc) return rc;
    int64_t id = 0;
    if ((rc = doc_id_of(s, uri, &id))) goto done;
    if (!id) { rc = idx_err(s, IDX_ERR_NOTFOUND, "no document %.300s", uri); goto done; }
    if ((rc = chunks_remove(s, id))) goto done;
    sqlite3_stmt *st = idx_stmt(s, ST_DOC_DELETE);
    if (!st) { rc = IDX_ERR_SQLITE; goto done; }
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st) == SQLITE_DONE ? IDX_OK : idx_sql_err(s, "delete document");
    sqlite3_reset(st);
done:
    return idx_write_end(s, own, rc);
}

int idx_doc_list(idx_store *s, const char *uri_prefix, idx_doc **docs, size_t *n) {
    if (!s) return IDX_ERR_ARG;
    if (!docs || !n) return idx_err(s, IDX_ERR_ARG, "output missing");
    *docs = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    idx_doc *a = NULL;
    size_t k = 0, cap = 0;
    int rc = IDX_OK, step;
    if (sqlite3_prepare_v2(s->db, "SELECT " IDX_DOC_COLUMNS " FROM documents "
                           "WHERE ?1 IS NULL OR substr(uri, 1, length(?1)) = ?1 ORDER BY uri", -1, &st, NULL) != SQLITE_OK) {
        rc = idx_sql_err(s, "prepare");
        goto done;
    }
    if (uri_prefix) sqlite3_bind_text(st, 1, uri_prefix, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (k == cap) {
            size_t nc = cap ? cap * 2 : 64;
            idx_doc *na = realloc(a, nc * sizeof *na);
            if (!na) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto done; }
            a = na;
            cap = nc;
        }
        if ((rc = idx_doc_from_row(s, st, &a[k]))) goto done;
        k++;
    }
    if (step != SQLITE_DONE) { rc = idx_sql_err(s, "list documents"); goto done; }
done:
    sqlite3_finalize(st);
    if (rc) { idx_doc_list_free(a, k); return rc; }
    *docs = a;
    *n = k;
    return IDX_OK;
}

int idx_chunk_get(idx_store *s, int64_t chunk_id, idx_chunk *chunk, idx_doc *doc) {
    if (!s) return IDX_ERR_ARG;
    if (!chunk) return idx_err(s, IDX_ERR_ARG, "output missing");
    memset(chunk, 0, sizeof *chunk);
    if (doc) memset(doc, 0, sizeof *doc);
    sqlite3_stmt *st = idx_stmt(s, ST_CHUNK_GET);
    if (!st) return IDX_ERR_SQLITE;
    sqlite3_bind_int64(st, 1, chunk_id);
    int step = sqlite3_step(st), rc = IDX_OK;
    if (step == SQLITE_DONE) { rc = idx_err(s, IDX_ERR_NOTFOUND, "no chunk %lld", (long long)chunk_id); goto done; }
    if (step != SQLITE_ROW) { rc = idx_sql_err(s, "fetch chunk"); goto done; }
    chunk->id = sqlite3_column_int64(st, 0);
    chunk->doc_id = sqlite3_column_int64(st, 1);
    chunk->ordinal = sqlite3_column_int(st, 2);
    chunk->byte_start = sqlite3_column_int64(st, 5);
    chunk->byte_end = sqlite3_column_int64(st, 6);
    chunk->line_start = sqlite3_column_int(st, 7);
    chunk->line_end = sqlite3_column_int(st, 8);
    chunk->page = sqlite3_column_int(st, 9);
    chunk->n_tokens = sqlite3_column_int(st, 10);
    {
        /* Text may hold NUL bytes: copy by length. */
        const unsigned char *t = sqlite3_column_text(st, 3);
        size_t tl = (size_t)sqlite3_column_bytes(st, 3);
        const unsigned char *h = sqlite3_column_text(st, 4);
        size_t hl = strlen(h ? (const char *)h : "");
        char *b = malloc(tl + hl + 2);
        if (!b) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto done; }
        if (tl) memcpy(b, t, tl);
        b[tl] = 0;
        memcpy(b + tl + 1, h ? (const char *)h : "", hl + 1);
        chunk->text = b;
        chunk->text_len = tl;
        chunk->heading = b + tl + 1;
        chunk->priv_ = b;
    }
    sqlite3_reset(st);
    if (doc) {
        st = idx_stmt(s, ST_DOC_BY_ID);
        if (!st) { rc = IDX_ERR_SQLITE; goto done; }
        sqlite3_bind_int64(st, 1, chunk->doc_id);
        step = sqlite3_step(st);
        if (step == SQLITE_ROW) rc = idx_doc_from_row(s, st, doc);
        else rc = idx_sql_err(s, "fetch document of chunk");
    }
done:
    if (st) sqlite3_reset(st);
    if (rc) idx_chunk_release(chunk);
    return rc;
}

int idx_chunk_vector(idx_store *s, int64_t chunk_id, float *out, int dim) {
    if (!s) return IDX_ERR_ARG;
    if (!out || dim != s->dim || dim <= 0) return idx_err(s, IDX_ERR_ARG, "dimension %d, index has %d", dim, s->dim);
    sqlite3_stmt *st = idx_stmt(s, ST_VECTOR_GET);
    if (!st) return IDX_ERR_SQLITE;
    sqlite3_bind_int64(st, 1, chunk_id);
    int step = sqlite3_step(st), rc = IDX_OK;
    if (step == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != dim * 2) rc = idx_err(s, IDX_ERR_SCHEMA, "vector of chunk %lld has the wrong size", (long long)chunk_id);
        else idx_f16_decode(sqlite3_column_blob(st, 0), out, (size_t)dim);
    } else if (step == SQLITE_DONE) {
        rc = idx_err(s, IDX_ERR_NOTFOUND, "no vector for chunk %lld", (long long)chunk_id);
    } else {
        rc = idx_sql_err(s, "fetch vector");
    }
    sqlite3_reset(st);
    return rc;
}

int idx_chunk_ids(idx_store *s, bool public_only, int64_t **ids, size_t *n) {
    if (!s) return IDX_ERR_ARG;
    if (!ids || !n) return idx_err(s, IDX_ERR_ARG, "output missing");
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    const char *sql = public_only
        ? "SELECT c.id FROM chunks c WHERE NOT EXISTS(SELECT 1 FROM doc_groups g WHERE g.doc_id = c.doc_id) ORDER BY c.id"
        : "SELECT id FROM chunks ORDER BY id";
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return idx_sql_err(s, "list chunks");
    int64_t *a = NULL;
    size_t k = 0, cap = 0;
    int step, rc = IDX_OK;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (k == cap) {
            size_t nc = cap ? cap * 2 : 256;
            int64_t *p = realloc(a, nc * sizeof *p);
            if (!p) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); break; }
            a = p;
            cap = nc;
        }
        a[k++] = sqlite3_column_int64(st, 0);
    }
    if (!rc && step != SQLITE_DONE) rc = idx_sql_err(s, "list chunks");
    sqlite3_finalize(st);
    if (rc) { free(a); return rc; }
    *ids = a;
    *n = k;
    return IDX_OK;
}
