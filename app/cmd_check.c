/* cmd_check.c — `mrag check`: the integrity of an index folder from the
 * command line (SQLite, FTS5, FAISS against SQLite, orphan rows, access
 * groups, the embedding fingerprint), a summary and an exit status; with
 * --repair, rebuilds what can be rebuilt from SQLite. */
#include "app/app.h"

#include "index/index.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *check_usage =
    "usage: mrag check [--index DIR] [--repair] [-q]\n"
    "\n"
    "Checks an index folder: SQLite's integrity_check, the FTS5 index against\n"
    "the chunks, the FAISS ids against the vectors in SQLite, rows that belong\n"
    "to no document, the recorded vector count, access group names, and the\n"
    "embedding fingerprint. Prints one line per check and a summary.\n"
    "\n"
    "  --index DIR   index folder (default $MRAG_INDEX, else ./.mrag)\n"
    "  --repair      rebuild what can be rebuilt from SQLite (the source of truth):\n"
    "                rows of deleted documents are removed, the FTS5 index and\n"
    "                the FAISS index are rebuilt and saved; then checks again.\n"
    "                Needs the writer lock (no ingest running). A damaged\n"
    "                mrag.sqlite cannot be repaired: restore a backup or ingest\n"
    "                into a new index.\n"
    "  -q            only the summary and the failed checks\n"
    "\n"
    "Exit status: 0 when every check passes (after --repair: when the repaired\n"
    "index passes), 1 when a check fails or the index cannot be read, 2 on\n"
    "usage errors.\n";

typedef struct {
    int n, failed;
    bool quiet;
} tally;

static void line(tally *t, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void line(tally *t, bool ok, const char *fmt, ...) {
    t->n++;
    if (!ok) t->failed++;
    if (ok && t->quiet) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("  %-5s %s\n", ok ? "ok" : "FAIL", app_esc(msg));
}

/* Runs the checks on s and prints them; returns the number failed. */
static int run_checks(idx_store *s, const char *faiss_notice, tally *t, idx_check_report *r) {
    t->n = t->failed = 0;
    if (idx_check_full(s, r) != IDX_OK) {
        line(t, false, "the checks could not run: %s", idx_errmsg(s));
        return t->failed;
    }
    line(t, r->sqlite_ok, "SQLite integrity_check%s%s", r->sqlite_ok ? "" : ": ", r->sqlite_ok ? "" : r->sqlite_msg);
    if (!r->sqlite_ok) return t->failed;
    if (r->fts_checked)
        line(t, r->fts_ok && r->fts_rows == r->chunks, "FTS5 index matches the chunks (%lld rows, %lld chunks)%s%s",
             (long long)r->fts_rows, (long long)r->chunks, r->fts_ok ? "" : ": ", r->fts_ok ? "" : r->fts_msg);
    else
        printf("  %-5s FTS5 integrity-check not run (%s)\n", "skip", app_esc(r->fts_msg));
    bool faiss_ok = r->faiss_missing == 0 && r->faiss_extra == 0 && r->faiss_ntotal == r->vectors;
    line(t, faiss_ok, "FAISS ids = SQLite vector ids (%lld vectors; %lld missing from FAISS, %lld extra)",
         (long long)r->vectors, (long long)r->faiss_missing, (long long)r->faiss_extra);
    line(t, !faiss_notice, "faiss.index file matched mrag.sqlite when opened%s%s", faiss_notice ? ": " : "",
         faiss_notice ? faiss_notice : "");
    line(t, r->orphan_chunks == 0 && r->orphan_vectors == 0 && r->orphan_group_rows == 0,
         "no rows of deleted documents (%lld chunks, %lld vectors, %lld group rows)", (long long)r->orphan_chunks,
         (long long)r->orphan_vectors, (long long)r->orphan_group_rows);
    line(t, r->meta_vectors == r->vectors, "recorded vector count = table (%lld recorded, %lld rows)",
         (long long)r->meta_vectors, (long long)r->vectors);
    line(t, r->chunks_without_vector == 0 && r->vectors_bad_size == 0,
         "every chunk has one vector of the index's dimension (%lld without, %lld of another size)",
         (long long)r->chunks_without_vector, (long long)r->vectors_bad_size);
    line(t, r->bad_groups == 0, "access group names are valid%s%s%s", r->bad_groups ? " (first bad one: '" : "",
         r->bad_groups ? r->bad_group : "", r->bad_groups ? "')" : "");
    idx_fingerprint fp;
    int frc = idx_fingerprint_get(s, &fp);
    if (frc == IDX_OK)
        line(t, r->dim == 0 || fp.dim == r->dim, "embedding fingerprint (model %.12s..., layer %d, %s, dim %d; vectors dim %d)",
             fp.model_sha256, fp.layer, fp.pooling, fp.dim, r->dim);
    else
        line(t, r->vectors == 0, "embedding fingerprint: %s", r->vectors ? "none recorded, but vectors are stored"
                                                                         : "none yet (no vectors)");
    return t->failed;
}

/* Contract: exit 0 when healthy, 1 when not (or unreadable), 2 on usage. */
enum { C_INDEX = 256, C_REPAIR };
static const app_opt check_opts[] = {
    {"index", 0, "DIR", C_INDEX},
    {"repair", 0, NULL, C_REPAIR},
    {"quiet", 'q', NULL, 'q'},
    {0},
};
const app_opt *const app_check_opts[] = {check_opts, NULL};

int app_cmd_check(int argc, char **argv) {
    if (app_wants_help(argc, argv)) { fputs(check_usage, stdout); return 0; }
    const char *index_flag = NULL;
    bool repair = false, quiet = false;
    app_args ap;
    app_args_init(&ap, "check", app_check_opts, argc, argv);
    const char *v;
    int id;
    while ((id = app_args_next(&ap, &v)) > 0) {
        if (id == C_INDEX) index_flag = v;
        else if (id == C_REPAIR) repair = true;
        else if (id == 'q') quiet = true;
    }
    if (id < 0) return 2;
    if (ap.npos > 0) return app_usage_error(&ap, "unexpected argument '%s' (the index is given with --index)", argv[1]);
    const char *dir = app_index_path(index_flag);
    char db[4200];
    snprintf(db, sizeof db, "%s/mrag.sqlite", dir);
    struct stat st;
    if (stat(db, &st) != 0) return app_error("no index at %s (%s)", dir, strerror(errno));
    /* as the writer: FTS5's checks are write commands. Like every writer
     * open this rebuilds and saves a stale FAISS file (the check reports
     * that it was stale). While an ingest holds the lock: read-only, the
     * FTS5 checks skipped; --repair needs the lock. */
    idx_params ip = idx_default_params();
    idx_store *s = NULL;
    int rc = idx_open(dir, &ip, &s);
    if (rc == IDX_ERR_BUSY && !repair) {
        idx_close(s);
        s = NULL;
        ip.read_only = true;
        rc = idx_open(dir, &ip, &s);
    }
    if (rc != IDX_OK) {
        /* a file SQLite cannot open at all fails here */
        app_error("%s%s", s ? idx_errmsg(s) : "out of memory",
                  rc == IDX_ERR_BUSY ? " (stop the ingest before --repair)" : "");
        idx_close(s);
        return 1;
    }
    char notice[1024] = "";
    if (idx_notice(s)) snprintf(notice, sizeof notice, "%s", idx_notice(s));
    printf("index %s\n", app_esc(dir));
    tally t = {.quiet = quiet};
    idx_check_report r;
    run_checks(s, notice[0] ? notice : NULL, &t, &r);
    int status = t.failed ? 1 : 0;
    if (t.failed && repair) {
        if (!r.sqlite_ok) {
            printf("repair: mrag.sqlite itself is damaged and holds everything else: restore a backup, or "
                   "ingest into a new --index\n");
        } else {
            int64_t removed = 0;
            bool ok = true;
            bool rows = r.orphan_chunks || r.orphan_vectors || r.orphan_group_rows || r.meta_vectors != r.vectors;
            if (rows) {
                ok = idx_repair_rows(s, &removed) == IDX_OK;
                printf("repair: %s\n", ok ? "rows of deleted documents removed, vector count reset" : idx_errmsg(s));
                if (ok && removed) printf("repair: %lld row%s removed\n", (long long)removed, removed == 1 ? "" : "s");
            }
            if (ok && (!r.fts_ok || r.fts_rows != r.chunks || rows)) {
                ok = idx_rebuild_fts(s) == IDX_OK;
                printf("repair: %s\n", ok ? "FTS5 index rebuilt from the chunks" : idx_errmsg(s));
            }
            if (ok) {
                ok = idx_rebuild(s) == IDX_OK;
                printf("repair: %s\n", ok ? "FAISS index rebuilt from the vectors and saved" : idx_errmsg(s));
            }
            printf("after repair:\n");
            run_checks(s, NULL, &t, &r);
            status = t.failed || !ok ? 1 : 0;
        }
    }
    if (r.sqlite_ok)
        printf("%lld document%s, %lld chunk%s: ", (long long)r.documents, r.documents == 1 ? "" : "s", (long long)r.chunks,
               r.chunks == 1 ? "" : "s");
    if (status == 0) printf("all %d checks passed\n", t.n);
    else printf("%d of %d checks failed%s\n", t.failed, t.n, repair ? "" : " (`mrag check --repair` rebuilds from SQLite what it can)");
    idx_close(s);
    return status;
}
