/* check.c — the whole integrity check of an index folder as a report
 * (SQLite, FTS5, orphan rows, FAISS ids against SQLite, access group rows),
 * and the repairs that can be made from SQLite, the source of truth. Used
 * by `mrag check` (docs/index.md, "Checking and repairing"). */
#include "index/idx_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int id_cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* PRAGMA integrity_check: r->sqlite_ok, and the first findings. */
static int check_sqlite(idx_store *s, idx_check_report *r) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) return idx_sql_err(s, "prepare");
    size_t o = 0;
    int step;
    r->sqlite_ok = true;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        if (t && strcmp(t, "ok") != 0) {
            r->sqlite_ok = false;
            if (o < sizeof r->sqlite_msg - 1) o += (size_t)snprintf(r->sqlite_msg + o, sizeof r->sqlite_msg - o, "%s; ", t);
        }
    }
    int rc = step == SQLITE_DONE ? IDX_OK : idx_sql_err(s, "integrity_check");
    sqlite3_finalize(st);
    if (rc) {
        /* a damaged file can fail the pragma itself: that is a finding too */
        r->sqlite_ok = false;
        snprintf(r->sqlite_msg, sizeof r->sqlite_msg, "%s", idx_errmsg(s));
    }
    return IDX_OK;
}

/* Access group names as the index stores them: non-empty, at most
 * IDX_MAX_GROUP_LEN bytes, no control characters or commas. */
static int check_groups(idx_store *s, idx_check_report *r) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT DISTINCT grp FROM doc_groups", -1, &st, NULL) != SQLITE_OK)
        return idx_sql_err(s, "prepare");
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *g = sqlite3_column_text(st, 0);
        int n = sqlite3_column_bytes(st, 0);
        bool bad = !g || n == 0 || n > IDX_MAX_GROUP_LEN;
        for (int i = 0; g && i < n && !bad; i++) bad = g[i] < 0x20 || g[i] == 0x7f || g[i] == ',';
        if (bad) {
            if (!r->bad_groups) snprintf(r->bad_group, sizeof r->bad_group, "%.100s", g ? (const char *)g : "");
            r->bad_groups++;
        }
    }
    int rc = step == SQLITE_DONE ? IDX_OK : idx_sql_err(s, "list groups");
    sqlite3_finalize(st);
    return rc;
}

/* FTS5's integrity-check is an INSERT command and the access-class
 * statistics are checked by a recount inside a savepoint: both need a
 * writable handle (and its "mrag" tokenizer). */
static void check_fts(idx_store *s, idx_check_report *r) {
    if (s->params.read_only) {
        snprintf(r->fts_msg, sizeof r->fts_msg, "needs the writer lock");
        return;
    }
    r->fts_checked = true;
    r->fts_ok = idx_exec(s, "INSERT INTO chunks_fts(chunks_fts, rank) VALUES('integrity-check', 1)") == IDX_OK;
    if (!r->fts_ok) {
        snprintf(r->fts_msg, sizeof r->fts_msg, "%s", idx_errmsg(s));
        return;
    }
    r->fts_ok = idx_fts_check(s) == IDX_OK;
    if (!r->fts_ok) snprintf(r->fts_msg, sizeof r->fts_msg, "%s", idx_errmsg(s));
}

int idx_check_full(idx_store *s, idx_check_report *r) {
    if (!s || !r) return s ? idx_err(s, IDX_ERR_ARG, "report missing") : IDX_ERR_ARG;
    memset(r, 0, sizeof *r);
    if (s->in_txn) return idx_err(s, IDX_ERR_STATE, "idx_check_full inside a transaction");
    int rc = check_sqlite(s, r);
    if (rc) return rc;
    if (!r->sqlite_ok) return IDX_OK;   /* the counts below would read a damaged file */
    idx_counts c;
    if ((rc = idx_get_counts(s, &c))) return rc;
    r->documents = c.documents;
    r->chunks = c.chunks;
    r->vectors = c.vectors;
    r->fts_rows = c.fts_rows;
    r->faiss_ntotal = c.faiss_ntotal;
    /* the stored count (opening may have corrected the handle's copy) */
    bool found = false;
    if ((rc = idx_meta_get_i64(s, "idx.vectors", &r->meta_vectors, &found))) return rc;
    if (!found) r->meta_vectors = -1;
    r->dim = c.dim;
    if ((rc = idx_count_sql(s, "SELECT count(*) FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)",
                            &r->orphan_chunks)) ||
        (rc = idx_count_sql(s, "SELECT count(*) FROM vectors WHERE chunk_id NOT IN (SELECT id FROM chunks)",
                            &r->orphan_vectors)) ||
        (rc = idx_count_sql(s, "SELECT count(*) FROM chunks WHERE id NOT IN (SELECT chunk_id FROM vectors)",
                            &r->chunks_without_vector)) ||
        (rc = idx_count_sql(s, "SELECT count(*) FROM doc_groups WHERE doc_id NOT IN (SELECT id FROM documents)",
                            &r->orphan_group_rows)))
        return rc;
    if (s->dim > 0) {
        char q[128];
        snprintf(q, sizeof q, "SELECT count(*) FROM vectors WHERE length(data) != %d", 2 * s->dim);
        if ((rc = idx_count_sql(s, q, &r->vectors_bad_size))) return rc;
    }
    if ((rc = check_groups(s, r))) return rc;
    check_fts(s, r);
    /* FAISS ids against the vectors table */
    int64_t *fa = NULL, *va = NULL;
    size_t nf = 0, nv = 0;
    if ((rc = idx_vec_ids(s, &fa, &nf)) == IDX_OK && (rc = idx_debug_vector_ids(s, &va, &nv)) == IDX_OK) {
        if (nf) qsort(fa, nf, sizeof *fa, id_cmp);
        size_t i = 0, j = 0;
        while (i < nf || j < nv) {
            if (j >= nv || (i < nf && fa[i] < va[j])) { r->faiss_extra++; i++; }
            else if (i >= nf || va[j] < fa[i]) { r->faiss_missing++; j++; }
            else { i++; j++; }
        }
    }
    free(fa);
    free(va);
    return rc;
}

int idx_rebuild_fts(idx_store *s) {
    if (!s) return IDX_ERR_ARG;
    if (s->params.read_only) return idx_err(s, IDX_ERR_READONLY, "opened read-only");
    if (s->in_txn) return idx_err(s, IDX_ERR_STATE, "idx_rebuild_fts inside a transaction: commit first");
    /* the external-content table from the chunks, with its analysis and
     * access-class statistics, as the recorded settings say */
    idx_fts_params p;
    memset(&p, 0, sizeof p);
    p.force = true;
    return idx_fts_retune(s, &p, NULL);
}

int idx_repair_rows(idx_store *s, int64_t *removed) {
    if (removed) *removed = 0;
    if (!s) return IDX_ERR_ARG;
    if (s->params.read_only) return idx_err(s, IDX_ERR_READONLY, "opened read-only");
    if (s->in_txn) return idx_err(s, IDX_ERR_STATE, "idx_repair_rows inside a transaction: commit first");
    int rc = idx_begin(s);
    if (rc) return rc;
    int64_t before = 0, after = 0, nvec = 0, gen = s->gen + 1;
    static const char *const count =
        "SELECT (SELECT count(*) FROM chunks) + (SELECT count(*) FROM vectors) + (SELECT count(*) FROM doc_groups)";
    /* the chunks' triggers keep FTS5 in step; vectors first, while their
     * chunks still say which document they belonged to */
    if (!(rc = idx_count_sql(s, count, &before)) &&
        !(rc = idx_exec(s, "DELETE FROM doc_groups WHERE doc_id NOT IN (SELECT id FROM documents)")) &&
        !(rc = idx_exec(s, "DELETE FROM vectors WHERE chunk_id NOT IN (SELECT id FROM chunks) OR chunk_id IN "
                           "(SELECT id FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents))")) &&
        !(rc = idx_exec(s, "DELETE FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)")) &&
        !(rc = idx_count_sql(s, count, &after)) &&
        !(rc = idx_count_sql(s, "SELECT count(*) FROM vectors", &nvec)) &&
        /* the recorded vector count follows the table, and a new generation
         * makes every FAISS copy stale */
        !(rc = idx_meta_put_i64(s, "idx.vectors", nvec)) && !(rc = idx_meta_put_i64(s, "idx.generation", gen)))
        rc = idx_commit(s);
    if (rc) {
        if (idx_in_transaction(s)) idx_rollback(s);
        return rc;
    }
    s->nvec = nvec;
    s->gen = gen;
    if (removed) *removed = before - after;
    return IDX_OK;
}
