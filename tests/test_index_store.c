/* test_index_store.c — index/: schema, migrations, documents and chunks,
 * exact counts in SQLite, FTS5 and FAISS, meta and embedding fingerprint. */
#include "tests/test.h"
#include "index/index.h"

#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DIM 16

static uint64_t rng = 88172645463325252ULL;
static float frand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
static void unit_vec(float *v, int d) {
    double n = 0;
    for (int i = 0; i < d; i++) { v[i] = frand(); n += v[i] * v[i]; }
    for (int i = 0; i < d; i++) v[i] = (float)(v[i] / sqrt(n));
}

static idx_store *open_ok(const char *dir) {
    idx_store *s = NULL;
    int rc = idx_open(dir, NULL, &s);
    if (rc) test_fail(__FILE__, __LINE__, "idx_open: %s: %s", idx_status_name(rc), idx_errmsg(s));
    if (rc) { idx_close(s); return NULL; }
    return s;
}

/* Puts a document of n chunks "uri chunk i: words" with random vectors. */
static int put_doc(idx_store *s, const char *uri, int n, const char *words, float *vecs_out) {
    idx_chunk ch[16];
    char texts[16][256];
    float vecs[16 * DIM];
    for (int i = 0; i < n; i++) {
        snprintf(texts[i], sizeof texts[i], "%s chunk %d: %s", uri, i, words);
        ch[i] = (idx_chunk){.ordinal = i, .text = texts[i], .text_len = strlen(texts[i]), .heading = "Top > Sub",
                            .byte_start = i * 100, .byte_end = i * 100 + 99, .line_start = i * 10 + 1,
                            .line_end = i * 10 + 9, .n_tokens = 20};
        unit_vec(vecs + i * DIM, DIM);
    }
    if (vecs_out) memcpy(vecs_out, vecs, sizeof(float) * DIM * n);
    idx_doc d = {.uri = uri, .title = "T", .type = "md", .size = 1000, .mtime_ns = 42, .groups = NULL};
    snprintf(d.sha256, sizeof d.sha256, "%064d", n);
    int rc = idx_doc_put(s, &d, ch, n, vecs, DIM, NULL);
    if (rc) printf("  # put %s: %s\n", uri, idx_errmsg(s));
    return rc;
}

/* Checks documents, chunks, vectors, FTS5 rows and FAISS ids all agree. */
static void check_counts(idx_store *s, int docs, int chunks, int line) {
    idx_counts c;
    int rc = idx_get_counts(s, &c);
    if (rc) { test_fail(__FILE__, line, "counts: %s", idx_errmsg(s)); return; }
    if (c.documents != docs || c.chunks != chunks || c.vectors != chunks || c.fts_rows != chunks || c.faiss_ntotal != chunks)
        test_fail(__FILE__, line, "counts docs %lld chunks %lld vectors %lld fts %lld faiss %lld, want %d docs %d chunks",
                  (long long)c.documents, (long long)c.chunks, (long long)c.vectors, (long long)c.fts_rows,
                  (long long)c.faiss_ntotal, docs, chunks);
    int64_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    if (idx_debug_faiss_ids(s, &a, &na) || idx_debug_vector_ids(s, &b, &nb)) {
        test_fail(__FILE__, line, "ids: %s", idx_errmsg(s));
    } else if (na != nb || (na && memcmp(a, b, na * sizeof *a) != 0)) {
        test_fail(__FILE__, line, "FAISS ids (%zu) differ from SQLite vector ids (%zu)", na, nb);
    }
    free(a);
    free(b);
    if (idx_check(s)) test_fail(__FILE__, line, "idx_check: %s", idx_errmsg(s));
}

TEST(create_empty_and_reopen) {
    const char *dir = test_tmpdir();
    char sub[512];
    snprintf(sub, sizeof sub, "%s/ix", dir);
    idx_store *s = open_ok(sub);
    REQUIRE(s);
    CHECK(idx_notice(s) == NULL, "fresh index has no notice: %s", idx_notice(s));
    check_counts(s, 0, 0, __LINE__);
    idx_close(s);
    /* user_version is 4 (the current schema) and the tables exist, read with plain SQLite */
    char db[600];
    snprintf(db, sizeof db, "%s/mrag.sqlite", sub);
    sqlite3 *h;
    REQUIRE(sqlite3_open(db, &h) == SQLITE_OK);
    sqlite3_stmt *st;
    REQUIRE(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_INT(sqlite3_column_int(st, 0), 4);
    sqlite3_finalize(st);
    REQUIRE(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_STR((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(h);
    s = open_ok(sub);
    REQUIRE(s);
    check_counts(s, 0, 0, __LINE__);
    idx_close(s);
}

TEST(migrates_an_empty_file) {
    const char *dir = test_tmpdir();
    char db[600];
    snprintf(db, sizeof db, "%s/mrag.sqlite", dir);
    REQUIRE(test_write_file(db, "", 0) == 0);   /* e.g. touched by a user */
    idx_store *s = open_ok(dir);
    REQUIRE(s);
    REQUIRE(put_doc(s, "a.md", 2, "alpha", NULL) == IDX_OK);
    check_counts(s, 1, 2, __LINE__);
    idx_close(s);
}

/* A v1 index (before documents.version) is migrated in place: documents,
 * chunks and search survive, and the new column works. */
TEST(migrates_v1_to_v2_keeping_documents) {
    const char *dir = test_tmpdir();
    idx_store *s = open_ok(dir);
    REQUIRE(s);
    REQUIRE(put_doc(s, "old.md", 3, "gamma delta", NULL) == IDX_OK);
    REQUIRE(idx_save(s) == IDX_OK);
    /* through the store's own connection: the FTS table's "mrag" tokenizer
     * exists only there, and ALTER TABLE re-reads the whole schema */
    sqlite3 *h = idx_debug_db(s);
    static const char *const to_v1 =
        "DROP TABLE chunks_fts_instance; DROP TABLE chunks_fts; DROP TABLE fts_words; DROP TABLE fts_cls; DROP TABLE fts_cls_df;"
        "CREATE VIRTUAL TABLE chunks_fts USING fts5(heading, text, content='chunks', content_rowid='id',"
        "  tokenize='unicode61 remove_diacritics 2');"
        "INSERT INTO chunks_fts(chunks_fts) VALUES('rebuild');"
        "CREATE VIRTUAL TABLE chunks_fts_instance USING fts5vocab(chunks_fts, instance);"
        "ALTER TABLE documents DROP COLUMN version; PRAGMA user_version = 1";
    REQUIRE(sqlite3_exec(h, to_v1, NULL, NULL, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(h));
    REQUIRE(test_vectors_to_f32(h) == SQLITE_OK, "%s", sqlite3_errmsg(h));
    idx_close(s);
    idx_params ro = idx_default_params();
    ro.read_only = true;
    CHECK_EQ_INT(idx_open(dir, &ro, &s), IDX_ERR_READONLY);   /* a reader cannot migrate */
    idx_close(s);
    REQUIRE((s = open_ok(dir)));
    check_counts(s, 1, 3, __LINE__);
    idx_doc d;
    REQUIRE(idx_doc_get(s, "old.md", &d) == IDX_OK);
    CHECK_EQ_STR(d.version, "");
    idx_doc_release(&d);
    idx_doc nd = {.uri = "wiki/Page", .title = "Page", .type = "wiki", .version = "4711"};
    REQUIRE(idx_doc_put(s, &nd, NULL, 0, NULL, 0, NULL) == IDX_OK);
    idx_hit hits[4];
    int n = 0;
    REQUIRE(idx_search_bm25(s, "gamma", 5, 4, NULL, hits, &n) == IDX_OK);
    CHECK_EQ_INT(n, 3);
    idx_close(s);
    REQUIRE((s = open_ok(dir)));
    REQUIRE(idx_doc_get(s, "wiki/Page", &d) == IDX_OK);
    CHECK_EQ_STR(d.version, "4711");
    CHECK_EQ_STR(d.type, "wiki");
    idx_doc_release(&d);
    idx_close(s);
}

/* idx_doc_set_groups changes who sees a document, not its chunks. */
TEST(set_groups_changes_visibility_only) {
    idx_store *s = open_ok(test_tmpdir());
    REQUIRE(s);
    REQUIRE(put_doc(s, "hr/salaries.md", 2, "salary bands", NULL) == IDX_OK);
    const char *mine[] = {"finance"};
    idx_filter f = {mine, 1};
    idx_hit hits[4];
    int n = -1;
    REQUIRE(idx_search_bm25(s, "salary", 6, 4, &f, hits, &n) == IDX_OK);
    CHECK_EQ_INT(n, 2);                                 /* public so far */
    int64_t *before = NULL, *after = NULL;
    size_t nb = 0, na = 0;
    REQUIRE(idx_debug_faiss_ids(s, &before, &nb) == IDX_OK);
    REQUIRE(idx_doc_set_groups(s, "hr/salaries.md", "hr, board") == IDX_OK);
    REQUIRE(idx_search_bm25(s, "salary", 6, 4, &f, hits, &n) == IDX_OK);
    CHECK_EQ_INT(n, 0);
    float q[DIM] = {0};
    q[0] = 1;
    REQUIRE(idx_search_dense(s, q, DIM, 4, &f, hits, &n) == IDX_OK);
    CHECK_EQ_INT(n, 0);
    const char *hr[] = {"hr"};
    idx_filter fh = {hr, 1};
    REQUIRE(idx_search_dense(s, q, DIM, 4, &fh, hits, &n) == IDX_OK);
    CHECK_EQ_INT(n, 2);
    idx_doc d;
    REQUIRE(idx_doc_get(s, "hr/salaries.md", &d) == IDX_OK);
    CHECK_EQ_STR(d.groups, "board,hr");
    CHECK_EQ_INT((int)d.n_chunks, 2);
    idx_doc_release(&d);
    REQUIRE(idx_debug_faiss_ids(s, &after, &na) == IDX_OK);
    CHECK(na == nb && memcmp(before, after, na * sizeof *after) == 0, "chunk ids unchanged (%zu vs %zu)", nb, na);
    free(before);
    free(after);
    CHECK_EQ_INT(idx_doc_set_groups(s, "nope.md", "hr"), IDX_ERR_NOTFOUND);
    REQUIRE(idx_doc_set_groups(s, "hr/salaries.md", "") == IDX_OK);
    REQUIRE(idx_search_bm25(s, "salary", 6, 4, &f, hits, &n) == IDX_OK);
    CHECK_EQ_INT(n, 2);                                 /* public again */
    idx_close(s);
}

TEST(newer_schema_and_foreign_file_rejected) {
    const char *dir = test_tmpdir();
    char db[600];
    snprintf(db, sizeof db, "%s/mrag.sqlite", dir);
    sqlite3 *h;
    REQUIRE(sqlite3_open(db, &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h, "CREATE TABLE x(a); PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(h);
    idx_store *s = NULL;
    int rc = idx_open(dir, NULL, &s);
    CHECK_EQ_INT(rc, IDX_ERR_SCHEMA);
    CHECK(strstr(idx_errmsg(s), "mrag.sqlite") != NULL, "message names the file: %s", idx_errmsg(s));
    idx_close(s);
    REQUIRE(sqlite3_open(db, &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h, "PRAGMA user_version = 0", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(h);
    rc = idx_open(dir, NULL, &s);
    CHECK_EQ_INT(rc, IDX_ERR_SCHEMA);
    idx_close(s);
    /* not a database at all */
    const char *dir2 = test_tmpdir();
    snprintf(db, sizeof db, "%s/mrag.sqlite", dir2);
    char junk[100];
    memset(junk, 'j', sizeof junk);
    REQUIRE(test_write_file(db, junk, sizeof junk) == 0);
    rc = idx_open(dir2, NULL, &s);
    CHECK(rc != IDX_OK, "garbage database must not open");
    CHECK(strstr(idx_errmsg(s), "mrag.sqlite") != NULL, "message names the file: %s", idx_errmsg(s));
    idx_close(s);
}

TEST(second_writer_is_refused) {
    const char *dir = test_tmpdir();
    idx_store *a = open_ok(dir);
    REQUIRE(a);
    idx_store *b = NULL;
    CHECK_EQ_INT(idx_open(dir, NULL, &b), IDX_ERR_BUSY);
    idx_close(b);
    idx_params p = idx_default_params();
    p.read_only = true;
    CHECK_EQ_INT(idx_open(dir, &p, &b), IDX_OK);
    idx_close(b);
    idx_close(a);
}

TEST(put_replace_delete_exact_counts) {
    const char *dir = test_tmpdir();
    idx_store *s = open_ok(dir);
    REQUIRE(s);
    REQUIRE(put_doc(s, "a.md", 3, "alpha", NULL) == IDX_OK);
    REQUIRE(put_doc(s, "b.md", 5, "beta", NULL) == IDX_OK);
    check_counts(s, 2, 8, __LINE__);
    /* replace a.md with fewer chunks: the old three leave everywhere */
    REQUIRE(put_doc(s, "a.md", 2, "gamma", NULL) == IDX_OK);
    check_counts(s, 2, 7, __LINE__);
    idx_hit h[8];
    int n = -1;
    REQUIRE(idx_search_bm25(s, "alpha", 5, 8, NULL, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 0);
    REQUIRE(idx_search_bm25(s, "gamma", 5, 8, NULL, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 2);
    /* delete b.md */
    REQUIRE(idx_doc_delete(s, "b.md") == IDX_OK);
    check_counts(s, 1, 2, __LINE__);
    CHECK_EQ_INT(idx_doc_delete(s, "b.md"), IDX_ERR_NOTFOUND);
    REQUIRE(idx_search_bm25(s, "beta", 4, 8, NULL, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 0);
    /* persisted: reopen after save, the same counts and no rebuild */
    REQUIRE(idx_save(s) == IDX_OK);
    idx_close(s);
    s = open_ok(dir);
    REQUIRE(s);
    CHECK(idx_notice(s) == NULL, "saved index loads without rebuild: %s", idx_notice(s));
    check_counts(s, 1, 2, __LINE__);
    idx_close(s);
}

TEST(transaction_rollback_and_commit) {
    const char *dir = test_tmpdir();
    idx_store *s = open_ok(dir);
    REQUIRE(s);
    REQUIRE(put_doc(s, "keep.md", 2, "keep", NULL) == IDX_OK);
    REQUIRE(idx_begin(s) == IDX_OK);
    CHECK_EQ_INT(idx_begin(s), IDX_ERR_STATE);
    REQUIRE(put_doc(s, "x.md", 4, "xray", NULL) == IDX_OK);
    REQUIRE(idx_doc_delete(s, "keep.md") == IDX_OK);
    CHECK_EQ_INT(idx_save(s), IDX_ERR_STATE);
    REQUIRE(idx_rollback(s) == IDX_OK);
    check_counts(s, 1, 2, __LINE__);
    /* several documents in one transaction, one put twice */
    REQUIRE(idx_begin(s) == IDX_OK);
    REQUIRE(put_doc(s, "x.md", 4, "xray", NULL) == IDX_OK);
    REQUIRE(put_doc(s, "y.md", 3, "yankee", NULL) == IDX_OK);
    REQUIRE(put_doc(s, "x.md", 1, "xray again", NULL) == IDX_OK);
    REQUIRE(idx_commit(s) == IDX_OK);
    check_counts(s, 3, 6, __LINE__);
    /* a failing put inside a transaction leaves the transaction intact */
    REQUIRE(idx_begin(s) == IDX_OK);
    REQUIRE(put_doc(s, "z.md", 2, "zulu", NULL) == IDX_OK);
    idx_chunk dup[2] = {{.ordinal = 0, .text = "a", .text_len = 1}, {.ordinal = 0, .text = "b", .text_len = 1}};
    float v[2 * DIM];
    unit_vec(v, DIM);
    unit_vec(v + DIM, DIM);
    idx_doc d = {.uri = "bad.md"};
    CHECK(idx_doc_put(s, &d, dup, 2, v, DIM, NULL) == IDX_ERR_SQLITE, "duplicate ordinal rejected");
    CHECK(strstr(idx_errmsg(s), "mrag.sqlite") != NULL, "message names the file: %s", idx_errmsg(s));
    REQUIRE(idx_commit(s) == IDX_OK);
    check_counts(s, 4, 8, __LINE__);
    idx_close(s);
}

TEST(document_fields_lookup_list_touch_rename) {
    const char *dir = test_tmpdir();
    idx_store *s = open_ok(dir);
    REQUIRE(s);
    idx_chunk ch = {.ordinal = 0, .text = "Hallo Welt", .text_len = 10, .heading = "Intro",
                    .byte_start = 5, .byte_end = 15, .line_start = 3, .line_end = 4, .page = 0, .n_tokens = 4};
    float v[DIM];
    unit_vec(v, DIM);
    idx_doc d = {.uri = "docs/hello.md", .title = "Hello", .type = "md", .size = 123, .mtime_ns = 1700000000123456789LL,
                 .groups = " hr , finance,,hr ", .status = "ok"};
    strcpy(d.sha256, "ab12");
    int64_t cid = 0;
    REQUIRE(idx_doc_put(s, &d, &ch, 1, v, DIM, &cid) == IDX_OK);
    CHECK(d.id > 0 && cid > 0);
    idx_doc g;
    REQUIRE(idx_doc_get(s, "docs/hello.md", &g) == IDX_OK);
    CHECK_EQ_INT(g.id, d.id);
    CHECK_EQ_STR(g.title, "Hello");
    CHECK_EQ_STR(g.type, "md");
    CHECK_EQ_INT(g.size, 123);
    CHECK_EQ_INT(g.mtime_ns, 1700000000123456789LL);
    CHECK_EQ_STR(g.sha256, "ab12");
    CHECK_EQ_STR(g.groups, "finance,hr");
    CHECK_EQ_STR(g.status, "ok");
    CHECK_EQ_INT(g.n_chunks, 1);
    idx_doc_release(&g);
    CHECK_EQ_INT(idx_doc_get(s, "nope", &g), IDX_ERR_NOTFOUND);
    /* chunk with its document, for a citation */
    idx_chunk c;
    idx_doc cd;
    REQUIRE(idx_chunk_get(s, cid, &c, &cd) == IDX_OK);
    CHECK_EQ_STR(c.text, "Hallo Welt");
    CHECK_EQ_INT(c.text_len, 10);
    CHECK_EQ_STR(c.heading, "Intro");
    CHECK_EQ_INT(c.line_start, 3);
    CHECK_EQ_INT(c.line_end, 4);
    CHECK_EQ_INT(c.byte_start, 5);
    CHECK_EQ_INT(c.byte_end, 15);
    CHECK_EQ_INT(c.n_tokens, 4);
    CHECK_EQ_STR(cd.uri, "docs/hello.md");
    idx_chunk_release(&c);
    idx_doc_release(&cd);
    float back[DIM];
    REQUIRE(idx_chunk_vector(s, cid, back, DIM) == IDX_OK);
    /* stored as float16: each component within half a unit in the last
     * place (2^-11 relative), and exact for values float16 holds */
    for (int i = 0; i < DIM; i++)
        CHECK(fabsf(back[i] - v[i]) <= fabsf(v[i]) * (1.0f / 2048) + 1e-7f, "component %d: %g stored as %g", i, v[i], back[i]);
    /* touch, rename, list */
    REQUIRE(idx_doc_touch(s, "docs/hello.md", 124, 99) == IDX_OK);
    CHECK_EQ_INT(idx_doc_touch(s, "nope", 1, 1), IDX_ERR_NOTFOUND);
    REQUIRE(put_doc(s, "other/x.md", 2, "x", NULL) == IDX_OK);
    CHECK_EQ_INT(idx_doc_rename(s, "docs/hello.md", "other/x.md"), IDX_ERR_ARG);
    REQUIRE(idx_doc_rename(s, "docs/hello.md", "docs/moved.md") == IDX_OK);
    CHECK_EQ_INT(idx_doc_rename(s, "docs/hello.md", "docs/again.md"), IDX_ERR_NOTFOUND);
    idx_doc *list;
    size_t n;
    REQUIRE(idx_doc_list(s, NULL, &list, &n) == IDX_OK);
    REQUIRE(n == 2);
    CHECK_EQ_STR(list[0].uri, "docs/moved.md");
    CHECK_EQ_INT(list[0].size, 124);
    CHECK_EQ_INT(list[0].mtime_ns, 99);
    CHECK_EQ_INT(list[0].n_chunks, 1);
    CHECK_EQ_STR(list[1].uri, "other/x.md");
    idx_doc_list_free(list, n);
    REQUIRE(idx_doc_list(s, "other/", &list, &n) == IDX_OK);
    CHECK_EQ_INT(n, 1);
    idx_doc_list_free(list, n);
    const char *pct = "%";
    REQUIRE(idx_doc_list(s, pct, &list, &n) == IDX_OK);
    CHECK_EQ_INT(n, 0); /* the prefix is literal, not a LIKE pattern */
    idx_doc_list_free(list, n);
    check_counts(s, 2, 3, __LINE__);
    idx_close(s);
}

TEST(bad_input_rejected) {
    const char *dir = test_tmpdir();
    idx_store *s = open_ok(dir);
    REQUIRE(s);
    float v[DIM];
    unit_vec(v, DIM);
    idx_chunk ch = {.ordinal = 0, .text = "t", .text_len = 1};
    idx_doc d = {.uri = ""};
    CHECK_EQ_INT(idx_doc_put(s, &d, &ch, 1, v, DIM, NULL), IDX_ERR_ARG);
    d.uri = "a";
    v[3] = NAN;
    CHECK_EQ_INT(idx_doc_put(s, &d, &ch, 1, v, DIM, NULL), IDX_ERR_ARG);
    unit_vec(v, DIM);
    REQUIRE(idx_doc_put(s, &d, &ch, 1, v, DIM, NULL) == IDX_OK);
    /* another dimension later */
    float w[DIM * 2];
    unit_vec(w, DIM * 2);
    idx_doc d2 = {.uri = "b"};
    CHECK_EQ_INT(idx_doc_put(s, &d2, &ch, 1, w, DIM * 2, NULL), IDX_ERR_MISMATCH);
    idx_hit h[4];
    int n;
    CHECK_EQ_INT(idx_search_dense(s, w, DIM * 2, 4, NULL, h, &n), IDX_ERR_MISMATCH);
    CHECK_EQ_INT(idx_search_dense(s, v, DIM, 0, NULL, h, &n), IDX_ERR_ARG);
    d2.groups = "a\x01";
    CHECK_EQ_INT(idx_doc_put(s, &d2, &ch, 1, v, DIM, NULL), IDX_ERR_ARG);
    check_counts(s, 1, 1, __LINE__);
    idx_close(s);
}

TEST(document_without_vectors) {
    const char *dir = test_tmpdir();
    idx_store *s = open_ok(dir);
    REQUIRE(s);
    idx_doc d = {.uri = "broken.pdf", .status = "failed: no text layer"};
    REQUIRE(idx_doc_put(s, &d, NULL, 0, NULL, 0, NULL) == IDX_OK);
    idx_doc g;
    REQUIRE(idx_doc_get(s, "broken.pdf", &g) == IDX_OK);
    CHECK_EQ_STR(g.status, "failed: no text layer");
    CHECK_EQ_INT(g.n_chunks, 0);
    idx_doc_release(&g);
    idx_counts c;
    REQUIRE(idx_get_counts(s, &c) == IDX_OK);
    CHECK_EQ_INT(c.documents, 1);
    CHECK_EQ_INT(c.dim, 0);
    idx_close(s);
}

TEST(meta_and_fingerprint_mismatch_detected) {
    const char *dir = test_tmpdir();
    idx_store *s = open_ok(dir);
    REQUIRE(s);
    char *val = NULL;
    CHECK_EQ_INT(idx_meta_get(s, "source.root", &val), IDX_ERR_NOTFOUND);
    REQUIRE(idx_meta_set(s, "source.root", "/docs") == IDX_OK);
    REQUIRE(idx_meta_get(s, "source.root", &val) == IDX_OK);
    CHECK_EQ_STR(val, "/docs");
    free(val);
    CHECK_EQ_INT(idx_meta_set(s, "idx.generation", "5"), IDX_ERR_ARG);
    idx_fingerprint fp = {.layer = -1, .dim = DIM};
    strcpy(fp.model_sha256, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    strcpy(fp.pooling, "mean");
    idx_fingerprint got;
    CHECK_EQ_INT(idx_fingerprint_get(s, &got), IDX_ERR_NOTFOUND);
    CHECK_EQ_INT(idx_fingerprint_check(s, &fp), IDX_OK);
    REQUIRE(idx_fingerprint_set(s, &fp) == IDX_OK);
    REQUIRE(put_doc(s, "a.md", 2, "a", NULL) == IDX_OK);
    idx_close(s);
    s = open_ok(dir);
    REQUIRE(s);
    REQUIRE(idx_fingerprint_get(s, &got) == IDX_OK);
    CHECK_EQ_STR(got.model_sha256, fp.model_sha256);
    CHECK_EQ_STR(got.pooling, "mean");
    CHECK_EQ_INT(got.layer, -1);
    CHECK_EQ_INT(got.dim, DIM);
    CHECK_EQ_INT(idx_fingerprint_check(s, &fp), IDX_OK);
    idx_fingerprint other = fp;
    other.model_sha256[0] = 'f';
    CHECK_EQ_INT(idx_fingerprint_check(s, &other), IDX_ERR_MISMATCH);
    CHECK(strstr(idx_errmsg(s), "sha256") != NULL, "names the field: %s", idx_errmsg(s));
    other = fp;
    other.layer = 20;
    CHECK_EQ_INT(idx_fingerprint_check(s, &other), IDX_ERR_MISMATCH);
    CHECK(strstr(idx_errmsg(s), "layer") != NULL, "names the field: %s", idx_errmsg(s));
    other = fp;
    strcpy(other.pooling, "last");
    CHECK_EQ_INT(idx_fingerprint_check(s, &other), IDX_ERR_MISMATCH);
    /* vectors exist: recording another fingerprint is refused */
    CHECK_EQ_INT(idx_fingerprint_set(s, &other), IDX_ERR_MISMATCH);
    other = fp;
    other.dim = 32;
    CHECK_EQ_INT(idx_fingerprint_check(s, &other), IDX_ERR_MISMATCH);
    CHECK(strstr(idx_errmsg(s), "dimension") != NULL, "names the field: %s", idx_errmsg(s));
    idx_close(s);
}

TEST(new_dimension_after_all_vectors_left) {
    const char *dir = test_tmpdir();
    idx_store *s = open_ok(dir);
    REQUIRE(s);
    REQUIRE(put_doc(s, "a.md", 2, "a", NULL) == IDX_OK);
    idx_fingerprint fp = {.layer = 3, .dim = 2 * DIM};
    strcpy(fp.model_sha256, "ff");
    strcpy(fp.pooling, "mean");
    CHECK_EQ_INT(idx_fingerprint_set(s, &fp), IDX_ERR_MISMATCH);   /* vectors of DIM exist */
    REQUIRE(idx_doc_delete(s, "a.md") == IDX_OK);
    REQUIRE(idx_fingerprint_set(s, &fp) == IDX_OK);
    float v[2 * DIM];
    unit_vec(v, 2 * DIM);
    idx_chunk ch = {.ordinal = 0, .text = "wide", .text_len = 4};
    idx_doc d = {.uri = "wide.md"};
    int64_t id;
    REQUIRE(idx_doc_put(s, &d, &ch, 1, v, 2 * DIM, &id) == IDX_OK);
    idx_hit h[2];
    int n;
    REQUIRE(idx_search_dense(s, v, 2 * DIM, 2, NULL, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(h[0].chunk_id, id);
    REQUIRE(idx_save(s) == IDX_OK);
    idx_close(s);
    s = open_ok(dir);
    REQUIRE(s);
    CHECK(idx_notice(s) == NULL, "notice: %s", idx_notice(s));
    check_counts(s, 1, 1, __LINE__);
    idx_close(s);
}


/* Schema 3 stored float32 vectors; opening such an index converts them to
 * float16 in place (half the bytes, the file shrinks), rebuilds FAISS from
 * the converted values, and search, ids and vectors survive. */
TEST(schema_3_vectors_become_float16) {
    const char *dir = test_tmpdir();
    idx_store *s = open_ok(dir);
    REQUIRE(s);
    enum { D = 256, N = 400 };
    static float v[N * D];
    static idx_chunk c[N];
    uint64_t r = 88172645463325252ULL;
    for (int i = 0; i < N; i++) {
        double n = 0;
        for (int j = 0; j < D; j++) {
            r ^= r << 13; r ^= r >> 7; r ^= r << 17;
            v[i * D + j] = (float)((double)(r >> 11) / 9007199254740992.0 - 0.5);
            n += v[i * D + j] * v[i * D + j];
        }
        for (int j = 0; j < D; j++) v[i * D + j] = (float)(v[i * D + j] / sqrt(n));
        c[i] = (idx_chunk){.ordinal = i, .text = "vector text", .text_len = 11};
    }
    static int64_t ids[N];
    idx_doc d = {.uri = "v.md"};
    REQUIRE(idx_doc_put(s, &d, c, N, v, D, ids) == IDX_OK, "%s", idx_errmsg(s));
    REQUIRE(idx_save(s) == IDX_OK);
    sqlite3 *h = idx_debug_db(s);
    REQUIRE(test_vectors_to_f32(h) == SQLITE_OK, "%s", sqlite3_errmsg(h));
    REQUIRE(sqlite3_exec(h, "PRAGMA user_version = 3; UPDATE meta SET value = '3' WHERE key = 'idx.schema_version'; VACUUM",
                         NULL, NULL, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_stmt *st;
    REQUIRE(sqlite3_prepare_v2(h, "SELECT min(length(data)), max(length(data)) FROM vectors", -1, &st, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_INT(sqlite3_column_int(st, 0), D * 4);
    sqlite3_finalize(st);
    idx_close(s);
    char db[600];
    snprintf(db, sizeof db, "%s/mrag.sqlite", dir);
    struct stat before, after;
    REQUIRE(stat(db, &before) == 0);
    /* a reader cannot migrate */
    idx_params ro = idx_default_params();
    ro.read_only = true;
    CHECK_EQ_INT(idx_open(dir, &ro, &s), IDX_ERR_READONLY);
    idx_close(s);
    REQUIRE((s = open_ok(dir)));
    CHECK(idx_notice(s) && strstr(idx_notice(s), "rebuilt"), "FAISS rebuilt from the converted vectors: %s",
          idx_notice(s) ? idx_notice(s) : "none");
    h = idx_debug_db(s);
    REQUIRE(sqlite3_prepare_v2(h, "SELECT min(length(data)), max(length(data)), count(*) FROM vectors", -1, &st, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_INT(sqlite3_column_int(st, 0), D * 2);
    CHECK_EQ_INT(sqlite3_column_int(st, 1), D * 2);
    CHECK_EQ_INT(sqlite3_column_int(st, 2), N);
    sqlite3_finalize(st);
    REQUIRE(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_INT(sqlite3_column_int(st, 0), 4);
    sqlite3_finalize(st);
    REQUIRE(stat(db, &after) == 0);
    CHECK(after.st_size < before.st_size * 3 / 4, "file shrank: %lld -> %lld bytes", (long long)before.st_size,
          (long long)after.st_size);
    static float back[D];
    for (int i = 0; i < N; i += 37) {
        REQUIRE(idx_chunk_vector(s, ids[i], back, D) == IDX_OK);
        double dot = 0;
        for (int j = 0; j < D; j++) {
            CHECK(fabsf(back[j] - v[i * D + j]) <= fabsf(v[i * D + j]) / 2048 + 1e-7f, "vector %d[%d]", i, j);
            dot += (double)back[j] * v[i * D + j];
        }
        CHECK(dot > 0.9999, "cosine %f", dot);
        idx_hit hit[2];
        int n = 0;
        REQUIRE(idx_search_dense(s, v + i * D, D, 2, NULL, hit, &n) == IDX_OK && n == 2);
        CHECK(hit[0].chunk_id == ids[i], "self hit after the migration");
    }
    CHECK_EQ_INT(idx_check(s), IDX_OK);
    idx_close(s);
    /* opening again changes nothing */
    REQUIRE((s = open_ok(dir)));
    CHECK(idx_notice(s) == NULL, "no second conversion: %s", idx_notice(s));
    REQUIRE(idx_chunk_vector(s, ids[0], back, D) == IDX_OK);
    CHECK(fabsf(back[0] - v[0]) <= fabsf(v[0]) / 2048 + 1e-7f);
    idx_close(s);
}

/* A component float16 cannot hold is refused, not stored as infinity. */
TEST(vector_out_of_float16_range_rejected) {
    idx_store *s = open_ok(test_tmpdir());
    REQUIRE(s);
    float v[4] = {70000.0f, 0, 0, 0};
    idx_chunk c = {.ordinal = 0, .text = "x", .text_len = 1};
    idx_doc d = {.uri = "big.md"};
    CHECK_EQ_INT(idx_doc_put(s, &d, &c, 1, v, 4, NULL), IDX_ERR_ARG);
    CHECK(strstr(idx_errmsg(s), "float16") != NULL, "message: %s", idx_errmsg(s));
    v[0] = 65504.0f;
    CHECK_EQ_INT(idx_doc_put(s, &d, &c, 1, v, 4, NULL), IDX_OK);
    float back[4];
    REQUIRE(idx_doc_get(s, "big.md", &d) == IDX_OK);
    idx_doc_release(&d);
    int64_t *ids = NULL;
    size_t n = 0;
    REQUIRE(idx_debug_vector_ids(s, &ids, &n) == IDX_OK && n == 1);
    REQUIRE(idx_chunk_vector(s, ids[0], back, 4) == IDX_OK);
    CHECK(back[0] == 65504.0f, "largest float16 kept exactly: %g", back[0]);
    free(ids);
    idx_close(s);
}

TEST_MAIN(RUN(create_empty_and_reopen), RUN(migrates_an_empty_file), RUN(migrates_v1_to_v2_keeping_documents),
          RUN(set_groups_changes_visibility_only), RUN(newer_schema_and_foreign_file_rejected), RUN(second_writer_is_refused),
          RUN(put_replace_delete_exact_counts), RUN(transaction_rollback_and_commit),
          RUN(document_fields_lookup_list_touch_rename), RUN(bad_input_rejected), RUN(document_without_vectors),
          RUN(meta_and_fingerprint_mismatch_detected), RUN(new_dimension_after_all_vectors_left),
          RUN(schema_3_vectors_become_float16), RUN(vector_out_of_float16_range_rejected))
