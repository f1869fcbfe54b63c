/* test_index_faiss.c — index/ dense search through FAISS: exact ids, rebuild
 * of a missing/corrupt/stale/other-type file, HNSW removal, IVF training,
 * group filter without starvation. */
#include "tests/test.h"
#include "index/index.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIM 32

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static float frand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
static void unit_vec(float *v, int d) {
    double n = 0;
    for (int i = 0; i < d; i++) { v[i] = frand(); n += v[i] * v[i]; }
    for (int i = 0; i < d; i++) v[i] = (float)(v[i] / sqrt(n));
}

static idx_store *open_with(const char *dir, const char *factory) {
    idx_params p = idx_default_params();
    p.faiss_factory = factory;
    idx_store *s = NULL;
    int rc = idx_open(dir, &p, &s);
    if (rc) test_fail(__FILE__, __LINE__, "idx_open: %s", idx_errmsg(s));
    if (rc) { idx_close(s); return NULL; }
    return s;
}

/* Puts document `uri` with n chunks and random vectors; returns chunk ids
 * and vectors through the out arrays (may be NULL). */
static int put_doc(idx_store *s, const char *uri, int n, const char *groups, int64_t *ids, float *vecs) {
    idx_chunk ch[64];
    float v[64 * DIM];
    for (int i = 0; i < n; i++) {
        ch[i] = (idx_chunk){.ordinal = i, .text = uri, .text_len = strlen(uri)};
        unit_vec(v + i * DIM, DIM);
    }
    if (vecs) memcpy(vecs, v, sizeof(float) * DIM * n);
    idx_doc d = {.uri = uri, .groups = groups};
    int rc = idx_doc_put(s, &d, ch, n, v, DIM, ids);
    if (rc) printf("  # put %s: %s\n", uri, idx_errmsg(s));
    return rc;
}

/* FAISS ids must equal the SQLite vector ids, and counts must agree. */
static void check_ids(idx_store *s, int64_t want, int line) {
    int64_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    if (idx_debug_faiss_ids(s, &a, &na) || idx_debug_vector_ids(s, &b, &nb))
        test_fail(__FILE__, line, "ids: %s", idx_errmsg(s));
    else if (na != nb || (na && memcmp(a, b, na * sizeof *a) != 0))
        test_fail(__FILE__, line, "FAISS ids (%zu) differ from SQLite vector ids (%zu)", na, nb);
    else if ((int64_t)na != want)
        test_fail(__FILE__, line, "%zu ids, want %lld", na, (long long)want);
    idx_counts c;
    if (idx_get_counts(s, &c) == IDX_OK && (c.faiss_ntotal != want || c.chunks != want || c.fts_rows != want))
        test_fail(__FILE__, line, "counts faiss %lld chunks %lld fts %lld, want %lld", (long long)c.faiss_ntotal,
                  (long long)c.chunks, (long long)c.fts_rows, (long long)want);
    free(a);
    free(b);
}

/* The stored vector of chunk id is its own nearest neighbour. */
static void check_self_hit(idx_store *s, int64_t id, const float *v, int line) {
    idx_hit h[3];
    int n = 0;
    int rc = idx_search_dense(s, v, DIM, 3, NULL, h, &n);
    if (rc || n < 1 || h[0].chunk_id != id || fabsf(h[0].score - 1.0f) > 1e-3f)
        test_fail(__FILE__, line, "self search for %lld: rc %d n %d top %lld score %f (%s)", (long long)id, rc, n,
                  n ? (long long)h[0].chunk_id : -1LL, n ? h[0].score : 0.0, idx_errmsg(s));
}

/* The ranking of q equals the one recorded before (same ids, same scores). */
static void check_same_results(idx_store *s, const float *q, const idx_hit *before, int nb, int line) {
    idx_hit h[16];
    int n = 0;
    if (idx_search_dense(s, q, DIM, nb, NULL, h, &n) || n != nb) {
        test_fail(__FILE__, line, "search after rebuild: %d hits, want %d (%s)", n, nb, idx_errmsg(s));
        return;
    }
    for (int i = 0; i < n; i++)
        if (h[i].chunk_id != before[i].chunk_id || fabsf(h[i].score - before[i].score) > 1e-6f) {
            test_fail(__FILE__, line, "hit %d: id %lld score %f, before id %lld score %f", i, (long long)h[i].chunk_id,
                      h[i].score, (long long)before[i].chunk_id, before[i].score);
            return;
        }
}

static char *path_in(const char *dir, const char *name) {
    static char buf[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

TEST(dense_search_returns_stored_ids) {
    const char *dir = test_tmpdir();
    idx_store *s = open_with(dir, NULL);
    REQUIRE(s);
    static int64_t ids[20][10];
    static float vecs[20][10 * DIM];
    for (int d = 0; d < 20; d++) {
        char uri[32];
        snprintf(uri, sizeof uri, "d%02d.md", d);
        REQUIRE(put_doc(s, uri, 10, NULL, ids[d], vecs[d]) == IDX_OK);
    }
    check_ids(s, 200, __LINE__);
    for (int d = 0; d < 20; d += 3)
        for (int i = 0; i < 10; i += 4) check_self_hit(s, ids[d][i], vecs[d] + i * DIM, __LINE__);
    /* results are sorted by score and k larger than the index is fine */
    static idx_hit h[300];
    int n;
    REQUIRE(idx_search_dense(s, vecs[0], DIM, 300, NULL, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 200);
    for (int i = 1; i < n; i++) if (h[i].score > h[i - 1].score + 1e-6f) { CHECK(0, "not sorted at %d", i); break; }
    /* replaced document: old ids never come back */
    int64_t old0 = ids[0][0];
    REQUIRE(put_doc(s, "d00.md", 10, NULL, ids[0], vecs[0]) == IDX_OK);
    REQUIRE(idx_search_dense(s, vecs[0], DIM, 300, NULL, h, &n) == IDX_OK);
    for (int i = 0; i < n; i++) CHECK(h[i].chunk_id != old0);
    check_self_hit(s, ids[0][0], vecs[0], __LINE__);
    check_ids(s, 200, __LINE__);
    idx_close(s);
}

TEST(missing_corrupt_stale_file_rebuilt) {
    static char dir[300];
    snprintf(dir, sizeof dir, "%s", test_tmpdir()); /* test_tmpdir() reuses its buffer */
    idx_store *s = open_with(dir, NULL);
    REQUIRE(s);
    int64_t ids[8];
    float v[8 * DIM];
    REQUIRE(put_doc(s, "a.md", 8, NULL, ids, v) == IDX_OK);
    REQUIRE(idx_save(s) == IDX_OK);
    float q[DIM];
    unit_vec(q, DIM);
    idx_hit before[8];
    int nb = 0;
    REQUIRE(idx_search_dense(s, q, DIM, 8, NULL, before, &nb) == IDX_OK && nb == 8);
    idx_close(s);
    struct stat st;
    REQUIRE(stat(path_in(dir, "faiss.index"), &st) == 0);
    CHECK(stat(path_in(dir, "faiss.index.tmp"), &st) != 0, "no temp file left");

    /* missing */
    REQUIRE(unlink(path_in(dir, "faiss.index")) == 0);
    s = open_with(dir, NULL);
    REQUIRE(s);
    CHECK(idx_notice(s) && strstr(idx_notice(s), "missing"), "notice: %s", idx_notice(s) ? idx_notice(s) : "(none)");
    check_ids(s, 8, __LINE__);
    check_self_hit(s, ids[3], v + 3 * DIM, __LINE__);
    check_same_results(s, q, before, nb, __LINE__);
    idx_close(s);
    /* the rebuild was saved: the next open is quiet */
    s = open_with(dir, NULL);
    REQUIRE(s);
    CHECK(idx_notice(s) == NULL, "notice: %s", idx_notice(s));
    idx_close(s);

    /* corrupt: one flipped byte in the FAISS payload, then a truncated file */
    size_t len;
    char *data = test_read_file(path_in(dir, "faiss.index"), &len);
    REQUIRE(data && len > 400);
    data[len - 100] ^= 0x40;
    REQUIRE(test_write_file(path_in(dir, "faiss.index"), data, len) == 0);
    s = open_with(dir, NULL);
    REQUIRE(s);
    CHECK(idx_notice(s) && strstr(idx_notice(s), "corrupt"), "notice: %s", idx_notice(s) ? idx_notice(s) : "(none)");
    check_ids(s, 8, __LINE__);
    check_self_hit(s, ids[5], v + 5 * DIM, __LINE__);
    check_same_results(s, q, before, nb, __LINE__);
    idx_close(s);
    REQUIRE(test_write_file(path_in(dir, "faiss.index"), data, 200) == 0);
    s = open_with(dir, NULL);
    REQUIRE(s);
    CHECK(idx_notice(s) != NULL, "truncated file rebuilt");
    check_ids(s, 8, __LINE__);
    check_same_results(s, q, before, nb, __LINE__);
    idx_close(s);
    REQUIRE(test_write_file(path_in(dir, "faiss.index"), "garbage", 7) == 0);
    s = open_with(dir, NULL);
    REQUIRE(s);
    CHECK(idx_notice(s) != NULL, "garbage file rebuilt");
    check_self_hit(s, ids[0], v, __LINE__);
    idx_close(s);
    free(data);

    /* stale: changes committed after the last save */
    s = open_with(dir, NULL);
    REQUIRE(s);
    int64_t ids2[4];
    float v2[4 * DIM];
    REQUIRE(put_doc(s, "b.md", 4, NULL, ids2, v2) == IDX_OK);
    REQUIRE(idx_doc_delete(s, "a.md") == IDX_OK);
    idx_close(s); /* no save */
    s = open_with(dir, NULL);
    REQUIRE(s);
    CHECK(idx_notice(s) && strstr(idx_notice(s), "stale"), "notice: %s", idx_notice(s) ? idx_notice(s) : "(none)");
    check_ids(s, 4, __LINE__);
    check_self_hit(s, ids2[2], v2 + 2 * DIM, __LINE__);
    idx_close(s);

    /* a FAISS file copied from another index is not trusted */
    const char *dir2 = test_tmpdir();
    s = open_with(dir2, NULL);
    REQUIRE(s);
    REQUIRE(put_doc(s, "b.md", 4, NULL, NULL, NULL) == IDX_OK);
    REQUIRE(idx_save(s) == IDX_OK);
    idx_close(s);
    data = test_read_file(path_in(dir2, "faiss.index"), &len);
    REQUIRE(data);
    REQUIRE(test_write_file(path_in(dir, "faiss.index"), data, len) == 0);
    free(data);
    s = open_with(dir, NULL);
    REQUIRE(s);
    CHECK(idx_notice(s) && strstr(idx_notice(s), "another index"), "notice: %s", idx_notice(s) ? idx_notice(s) : "(none)");
    check_self_hit(s, ids2[1], v2 + DIM, __LINE__);
    idx_close(s);
}

TEST(hnsw_removal_uses_tombstones) {
    const char *dir = test_tmpdir();
    idx_store *s = open_with(dir, "HNSW32");
    REQUIRE(s);
    static int64_t ids[10][20];
    static float v[10][20 * DIM];
    for (int d = 0; d < 10; d++) {
        char uri[32];
        snprintf(uri, sizeof uri, "h%d.md", d);
        REQUIRE(put_doc(s, uri, 20, NULL, ids[d], v[d]) == IDX_OK);
    }
    check_ids(s, 200, __LINE__);
    /* replace one, delete one: removed ids vanish from results at once */
    int64_t gone = ids[1][0];
    REQUIRE(idx_doc_delete(s, "h1.md") == IDX_OK);
    REQUIRE(put_doc(s, "h2.md", 5, NULL, ids[2], v[2]) == IDX_OK);
    check_ids(s, 165, __LINE__);
    idx_hit h[200];
    int n;
    REQUIRE(idx_search_dense(s, v[1], DIM, 10, NULL, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 10);
    for (int i = 0; i < n; i++) CHECK(h[i].chunk_id != gone, "deleted id returned");
    REQUIRE(idx_search_dense(s, v[1], DIM, 200, NULL, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 165);
    check_self_hit(s, ids[2][3], v[2] + 3 * DIM, __LINE__);
    /* 35 of 200 removed (> 10%): save compacts by rebuilding */
    REQUIRE(idx_save(s) == IDX_OK);
    idx_close(s);
    s = open_with(dir, NULL); /* type comes from the index */
    REQUIRE(s);
    CHECK(idx_notice(s) == NULL, "notice: %s", idx_notice(s));
    idx_counts c;
    REQUIRE(idx_get_counts(s, &c) == IDX_OK);
    CHECK_EQ_STR(c.faiss_type, "HNSW32");
    check_ids(s, 165, __LINE__);
    /* a few removals (< 10%) stay as tombstones across save and reopen */
    REQUIRE(put_doc(s, "h3.md", 19, NULL, ids[3], v[3]) == IDX_OK);
    REQUIRE(idx_save(s) == IDX_OK);
    idx_close(s);
    s = open_with(dir, NULL);
    REQUIRE(s);
    CHECK(idx_notice(s) == NULL, "notice: %s", idx_notice(s));
    check_ids(s, 164, __LINE__);
    check_self_hit(s, ids[3][18], v[3] + 18 * DIM, __LINE__);
    for (int d = 4; d < 10; d += 2) check_self_hit(s, ids[d][7], v[d] + 7 * DIM, __LINE__);
    idx_close(s);
}

TEST(type_change_rebuilds) {
    const char *dir = test_tmpdir();
    idx_store *s = open_with(dir, NULL);
    REQUIRE(s);
    int64_t ids[6];
    float v[6 * DIM];
    REQUIRE(put_doc(s, "a.md", 6, NULL, ids, v) == IDX_OK);
    REQUIRE(idx_save(s) == IDX_OK);
    idx_close(s);
    s = open_with(dir, "HNSW16");
    REQUIRE(s);
    CHECK(idx_notice(s) && strstr(idx_notice(s), "HNSW16"), "notice: %s", idx_notice(s) ? idx_notice(s) : "(none)");
    check_ids(s, 6, __LINE__);
    check_self_hit(s, ids[4], v + 4 * DIM, __LINE__);
    idx_close(s);
    idx_params p = idx_default_params();
    p.faiss_factory = "NoSuchType99";
    CHECK(idx_open(dir, &p, &s) == IDX_ERR_FAISS, "bad factory string is a FAISS error");
    CHECK(strstr(idx_errmsg(s), "FAISS") != NULL, "message: %s", idx_errmsg(s));
    idx_close(s);
}

TEST(ivf_trains_when_enough_vectors) {
    const char *dir = test_tmpdir();
    /* IVF4: training needs 4 * 39 = 156 vectors; a Flat stand-in before */
    idx_store *s = open_with(dir, "IVF4,Flat");
    REQUIRE(s);
    static int64_t ids[8][40];
    static float v[8][40 * DIM];
    for (int d = 0; d < 3; d++) {
        char uri[32];
        snprintf(uri, sizeof uri, "i%d.md", d);
        REQUIRE(put_doc(s, uri, 40, NULL, ids[d], v[d]) == IDX_OK);
    }
    check_ids(s, 120, __LINE__);
    check_self_hit(s, ids[1][5], v[1] + 5 * DIM, __LINE__);
    REQUIRE(idx_save(s) == IDX_OK);
    idx_close(s);
    s = open_with(dir, NULL);
    REQUIRE(s);
    CHECK(idx_notice(s) == NULL, "stand-in reloads: %s", idx_notice(s));
    for (int d = 3; d < 8; d++) {
        char uri[32];
        snprintf(uri, sizeof uri, "i%d.md", d);
        REQUIRE(put_doc(s, uri, 40, NULL, ids[d], v[d]) == IDX_OK);
    }
    check_ids(s, 320, __LINE__);
    /* nprobe 16 >= 4 lists: the trained IVF search is exhaustive */
    for (int d = 0; d < 8; d += 2) check_self_hit(s, ids[d][d], v[d] + d * DIM, __LINE__);
    REQUIRE(idx_doc_delete(s, "i0.md") == IDX_OK);
    check_ids(s, 280, __LINE__);
    REQUIRE(idx_save(s) == IDX_OK);
    idx_close(s);
    s = open_with(dir, NULL);
    REQUIRE(s);
    CHECK(idx_notice(s) == NULL, "trained IVF reloads: %s", idx_notice(s));
    check_ids(s, 280, __LINE__);
    check_self_hit(s, ids[7][39], v[7] + 39 * DIM, __LINE__);
    idx_close(s);
}

TEST(dense_group_filter_never_starves) {
    const char *dir = test_tmpdir();
    idx_store *s = open_with(dir, NULL);
    REQUIRE(s);
    float q[DIM];
    unit_vec(q, DIM);
    /* 300 hidden chunks right next to the query, one visible far away */
    idx_chunk ch[60];
    static float v[60 * DIM];
    for (int d = 0; d < 5; d++) {
        for (int i = 0; i < 60; i++) {
            ch[i] = (idx_chunk){.ordinal = i, .text = "secret", .text_len = 6};
            for (int j = 0; j < DIM; j++) v[i * DIM + j] = q[j] + 0.01f * frand();
        }
        char uri[32];
        snprintf(uri, sizeof uri, "secret%d.md", d);
        idx_doc doc = {.uri = uri, .groups = "hr"};
        REQUIRE(idx_doc_put(s, &doc, ch, 60, v, DIM, NULL) == IDX_OK);
    }
    float far[DIM];
    for (int j = 0; j < DIM; j++) far[j] = -q[j];
    int64_t far_id;
    idx_chunk fc = {.ordinal = 0, .text = "public", .text_len = 6};
    idx_doc pd = {.uri = "public.md"};
    REQUIRE(idx_doc_put(s, &pd, &fc, 1, far, DIM, &far_id) == IDX_OK);
    const char *g[] = {"sales"};
    idx_filter f = {g, 1};
    idx_hit h[5];
    int n = 0;
    REQUIRE(idx_search_dense(s, q, DIM, 5, &f, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(h[0].chunk_id, far_id);
    const char *g2[] = {"hr"};
    idx_filter f2 = {g2, 1};
    REQUIRE(idx_search_dense(s, q, DIM, 5, &f2, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 5);
    for (int i = 0; i < n; i++) CHECK(h[i].chunk_id != far_id);
    idx_close(s);
}

TEST(reader_refresh_follows_writer) {
    static char dir[300];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    idx_store *w = open_with(dir, NULL);
    REQUIRE(w);
    int64_t ids[4];
    float v[4 * DIM];
    REQUIRE(put_doc(w, "a.md", 4, NULL, ids, v) == IDX_OK);
    REQUIRE(idx_save(w) == IDX_OK);
    idx_params p = idx_default_params();
    p.read_only = true;
    idx_store *r = NULL;
    int rc = idx_open(dir, &p, &r);
    if (rc) { CHECK(rc == IDX_OK, "%s", idx_errmsg(r)); idx_close(r); idx_close(w); return; }
    check_self_hit(r, ids[1], v + DIM, __LINE__);
    bool changed = true;
    REQUIRE(idx_refresh(r, &changed) == IDX_OK);
    CHECK(!changed, "nothing committed yet");
    /* the writer commits and saves: the reader loads the new file */
    int64_t ids2[3];
    float v2[3 * DIM];
    REQUIRE(put_doc(w, "b.md", 3, NULL, ids2, v2) == IDX_OK);
    REQUIRE(idx_save(w) == IDX_OK);
    REQUIRE(idx_refresh(r, &changed) == IDX_OK);
    CHECK(changed);
    CHECK(idx_notice(r) == NULL, "loaded, not rebuilt: %s", idx_notice(r));
    check_self_hit(r, ids2[2], v2 + 2 * DIM, __LINE__);
    /* the writer deletes without saving: the reader rebuilds from SQLite */
    REQUIRE(idx_doc_delete(w, "a.md") == IDX_OK);
    REQUIRE(idx_refresh(r, &changed) == IDX_OK);
    CHECK(changed);
    CHECK(idx_notice(r) && strstr(idx_notice(r), "stale"), "notice: %s", idx_notice(r) ? idx_notice(r) : "(none)");
    idx_hit h[10];
    int n = 0;
    REQUIRE(idx_search_dense(r, v, DIM, 10, NULL, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 3);
    for (int i = 0; i < n; i++) CHECK(h[i].chunk_id != ids[0], "deleted chunk returned");
    CHECK_EQ_INT(idx_doc_delete(r, "b.md"), IDX_ERR_READONLY);
    idx_close(r);
    idx_close(w);
}

/* --layer auto re-embeds everything at another layer: all vectors replaced
 * in one step with the new fingerprint, FAISS rebuilt and saved. */
TEST(vectors_replaced_with_a_new_fingerprint) {
    const char *dir = test_tmpdir();
    idx_store *s = open_with(dir, NULL);
    REQUIRE(s);
    idx_fingerprint fp = {.layer = -1, .pooling = "mean", .dim = DIM};
    memset(fp.model_sha256, 'a', 64);
    REQUIRE(idx_fingerprint_set(s, &fp) == IDX_OK, "%s", idx_errmsg(s));
    int64_t ids[8];
    REQUIRE(put_doc(s, "a", 5, NULL, ids, NULL) == 0);
    REQUIRE(put_doc(s, "b", 3, "hr", ids + 5, NULL) == 0);
    REQUIRE(idx_save(s) == IDX_OK);
    float nv[8 * DIM];
    for (int i = 0; i < 8; i++) unit_vec(nv + i * DIM, DIM);
    idx_fingerprint nfp = fp;
    nfp.layer = 3;
    CHECK_EQ_INT(idx_vectors_replace(s, &nfp, ids, nv, 7), IDX_ERR_ARG);        /* not all of them */
    int64_t wrong[8];
    memcpy(wrong, ids, sizeof wrong);
    wrong[7] = 999999;
    CHECK_EQ_INT(idx_vectors_replace(s, &nfp, wrong, nv, 8), IDX_ERR_ARG);      /* an id without a vector */
    idx_fingerprint got;
    REQUIRE(idx_fingerprint_get(s, &got) == IDX_OK);
    CHECK_EQ_INT(got.layer, -1);                                                 /* nothing changed */
    REQUIRE(idx_vectors_replace(s, &nfp, ids, nv, 8) == IDX_OK, "%s", idx_errmsg(s));
    REQUIRE(idx_fingerprint_get(s, &got) == IDX_OK);
    CHECK_EQ_INT(got.layer, 3);
    for (int i = 0; i < 8; i++) check_self_hit(s, ids[i], nv + i * DIM, __LINE__);
    check_ids(s, 8, __LINE__);
    CHECK_EQ_INT(idx_check(s), IDX_OK);
    idx_close(s);
    s = open_with(dir, NULL);
    REQUIRE(s);
    CHECK(idx_notice(s) == NULL, "the saved FAISS file is current: %s", idx_notice(s) ? idx_notice(s) : "");
    check_self_hit(s, ids[6], nv + 6 * DIM, __LINE__);
    idx_close(s);
}


/* ------------------------------------------------------------ compact types */

/* Clustered unit vectors (64 centres, noise 0.35): like embeddings, unlike
 * uniform noise, neighbours are meaningful and quantisation errors matter. */
#define CT_N 12288
#define CT_DOC 64
static float ct_centres[64 * DIM];
static void clustered_vec(float *v) {
    static bool init;
    if (!init) { for (int c = 0; c < 64; c++) unit_vec(ct_centres + c * DIM, DIM); init = true; }
    int c = (int)((frand() + 1.0f) * 31.99f);
    double n = 0;
    for (int i = 0; i < DIM; i++) { v[i] = ct_centres[c * DIM + i] + 0.35f * frand(); n += v[i] * v[i]; }
    for (int i = 0; i < DIM; i++) v[i] = (float)(v[i] / sqrt(n));
}

/* Exact top-k by brute force over the vectors the index stores (read back,
 * float16), visible = public or group "g0" when filtered. */
static int exact_topk(const float *all, const int64_t *ids, const bool *hidden, size_t n, const float *q, int k, bool filtered, int64_t *out) {
    float *best = calloc((size_t)k, sizeof *best);
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        if (filtered && hidden[i]) continue;
        const float *v = all + i * DIM;
        float d = 0;
        for (int j = 0; j < DIM; j++) d += v[j] * q[j];
        int pos = m < k ? m++ : k;
        if (pos == k && d <= best[k - 1]) continue;
        if (pos == k) pos = k - 1;
        while (pos > 0 && best[pos - 1] < d) { best[pos] = best[pos - 1]; out[pos] = out[pos - 1]; pos--; }
        best[pos] = d;
        out[pos] = ids[i];
    }
    free(best);
    return m;
}

/* Each compact type on 12k clustered vectors: the real type is built (the
 * FAISS file is smaller than Flat's would be), recall@10 against exact
 * search with and without an access filter (most chunks hidden), removal,
 * reload from the file. */
static void compact_type(const char *factory, double min_recall, double max_bytes_per_vec) {
    const char *dir = test_tmpdir();
    idx_store *s = open_with(dir, factory);
    REQUIRE(s);
    static int64_t ids[CT_N];
    static bool hidden[CT_N];
    static float vec[CT_DOC * DIM];
    idx_chunk ch[CT_DOC];
    for (int i = 0; i < CT_DOC; i++) ch[i] = (idx_chunk){.ordinal = i, .text = "x", .text_len = 1};
    REQUIRE(idx_begin(s) == IDX_OK);
    for (int d = 0; d < CT_N / CT_DOC; d++) {
        char uri[32];
        snprintf(uri, sizeof uri, "c%d.md", d);
        for (int i = 0; i < CT_DOC; i++) clustered_vec(vec + i * DIM);
        /* 7 of 8 documents in a group the searcher lacks */
        idx_doc doc = {.uri = uri, .groups = d % 8 == 0 ? NULL : "secret"};
        REQUIRE(idx_doc_put(s, &doc, ch, CT_DOC, vec, DIM, ids + d * CT_DOC) == IDX_OK, "%s", idx_errmsg(s));
        for (int i = 0; i < CT_DOC; i++) hidden[d * CT_DOC + i] = d % 8 != 0;
    }
    REQUIRE(idx_commit(s) == IDX_OK, "%s", idx_errmsg(s));
    REQUIRE(idx_save(s) == IDX_OK, "%s", idx_errmsg(s));
    check_ids(s, CT_N, __LINE__);
    char path[700];
    snprintf(path, sizeof path, "%s/faiss.index", dir);
    struct stat sb;
    REQUIRE(stat(path, &sb) == 0);
    CHECK((double)sb.st_size / CT_N <= max_bytes_per_vec, "%s: %.1f bytes per vector in faiss.index, want <= %.0f (Flat: %d)",
          factory, (double)sb.st_size / CT_N, max_bytes_per_vec, DIM * 4 + 8);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            /* removal, then a reload from the saved file */
            REQUIRE(idx_doc_delete(s, "c8.md") == IDX_OK);
            for (int i = 0; i < CT_DOC; i++) hidden[8 * CT_DOC + i] = true, ids[8 * CT_DOC + i] = ids[0];
            REQUIRE(idx_save(s) == IDX_OK);
            idx_close(s);
            s = open_with(dir, NULL);
            REQUIRE(s);
            CHECK(idx_notice(s) == NULL, "%s reloads from its file: %s", factory, idx_notice(s));
            check_ids(s, CT_N - CT_DOC, __LINE__);
        }
        static float all[CT_N * DIM];
        for (int i = 0; i < CT_N; i++) REQUIRE(idx_chunk_vector(s, ids[i], all + i * DIM, DIM) == IDX_OK);
        /* every vector is reachable: an IVF type probes more lists when
         * its usual ones hold fewer than asked for */
        int live = CT_N - (pass ? CT_DOC : 0), nall = 0;
        static idx_hit every[CT_N];
        float q0[DIM];
        clustered_vec(q0);
        REQUIRE(idx_search_dense(s, q0, DIM, live, NULL, every, &nall) == IDX_OK, "%s", idx_errmsg(s));
        CHECK(nall == live, "%s: asked for all %d vectors, got %d", factory, live, nall);
        const char *g[] = {"public"};
        idx_filter f = {g, 1};
        int found = 0, want = 0, found_f = 0, want_f = 0;
        for (int t = 0; t < 30; t++) {
            float q[DIM];
            clustered_vec(q);
            int64_t ex[10], exf[10];
            idx_hit h[10];
            int n = 0, nf = 0;
            int ne = exact_topk(all, ids, hidden, CT_N, q, 10, false, ex);
            int nef = exact_topk(all, ids, hidden, CT_N, q, 10, true, exf);
            REQUIRE(ne == 10 && nef == 10);
            REQUIRE(idx_search_dense(s, q, DIM, 10, NULL, h, &n) == IDX_OK, "%s", idx_errmsg(s));
            CHECK_EQ_INT(n, 10);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < 10; j++) found += h[i].chunk_id == ex[j];
            want += 10;
            REQUIRE(idx_search_dense(s, q, DIM, 10, &f, h, &nf) == IDX_OK, "%s", idx_errmsg(s));
            CHECK(nf == 10, "%s: filtered search found %d of 10 visible hits", factory, nf);
            for (int i = 0; i < nf; i++) {
                bool vis = false;
                for (int j = 0; j < CT_N; j++)
                    if (ids[j] == h[i].chunk_id) { vis = !hidden[j]; break; }
                CHECK(vis, "%s: hit %lld is hidden from the searcher", factory, (long long)h[i].chunk_id);
                for (int j = 0; j < 10; j++) found_f += h[i].chunk_id == exf[j];
            }
            want_f += 10;
        }
        double r = (double)found / want, rf = (double)found_f / want_f;
        printf("  # %s pass %d: recall@10 %.3f, filtered %.3f\n", factory, pass, r, rf);
        CHECK(r >= min_recall, "%s: recall@10 %.3f < %.2f", factory, r, min_recall);
        CHECK(rf >= min_recall, "%s: filtered recall@10 %.3f < %.2f", factory, rf, min_recall);
    }
    idx_close(s);
}

TEST(compact_sq8) { compact_type("SQ8", 0.97, DIM + 24); }
TEST(compact_sqfp16) { compact_type("SQfp16", 0.99, 2 * DIM + 24); }
TEST(compact_ivf_sq8) { compact_type("IVF64,SQ8", 0.95, DIM + 24); }
TEST(compact_ivf_pq) { compact_type("IVF64,PQ8", 0.90, 8 + 24); }
TEST(compact_opq_ivf_pq) { compact_type("OPQ8,IVF64,PQ8", 0.90, 8 + 24); }
TEST(compact_hnsw_sq8) { compact_type("HNSW16,SQ8", 0.95, DIM + 16 * 8 + 40); }

/* Re-ranking re-scores candidates with the stored vectors: the scores of a
 * compressed type equal exact inner products with the stored values. */
TEST(rerank_scores_are_exact) {
    const char *dir = test_tmpdir();
    idx_store *s = open_with(dir, "IVF16,PQ4");
    REQUIRE(s);
    static float vec[64 * DIM];
    idx_chunk ch[64];
    for (int i = 0; i < 64; i++) ch[i] = (idx_chunk){.ordinal = i, .text = "x", .text_len = 1};
    REQUIRE(idx_begin(s) == IDX_OK);
    for (int d = 0; d < 160; d++) {
        char uri[32];
        snprintf(uri, sizeof uri, "r%d.md", d);
        for (int i = 0; i < 64; i++) clustered_vec(vec + i * DIM);
        idx_doc doc = {.uri = uri};
        REQUIRE(idx_doc_put(s, &doc, ch, 64, vec, DIM, NULL) == IDX_OK);
    }
    REQUIRE(idx_commit(s) == IDX_OK, "%s", idx_errmsg(s));
    float q[DIM], v[DIM];
    clustered_vec(q);
    idx_hit h[5];
    int n = 0;
    REQUIRE(idx_search_dense(s, q, DIM, 5, NULL, h, &n) == IDX_OK && n == 5);
    for (int i = 0; i < n; i++) {
        REQUIRE(idx_chunk_vector(s, h[i].chunk_id, v, DIM) == IDX_OK);
        double d = 0;
        for (int j = 0; j < DIM; j++) d += (double)v[j] * q[j];
        CHECK(fabs(d - h[i].score) < 1e-5, "hit %d: score %f, exact %f", i, h[i].score, d);
        if (i) CHECK(h[i].score <= h[i - 1].score, "ordered");
    }
    idx_close(s);
}

/* The automatic type by size (index/vecindex.c; documented in
 * docs/index.md): the published table. */
void idx_auto_type(int64_t n, int dim, char *out, size_t cap);
TEST(auto_type_by_size) {
    char t[64];
    static const struct { int64_t n; int dim; const char *want; } cases[] = {
        {0, 4096, "Flat"}, {16384, 4096, "Flat"}, {16385, 4096, "IVF256,SQ8"}, {100000, 4096, "IVF1024,SQ8"},
        {1000000, 4096, "IVF2048,SQ8"}, {10000000, 4096, "IVF8192,PQ256"}, {100000, 256, "Flat"},
        {1000000, 256, "IVF2048,SQ8"}, {1000, 8, "Flat"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        idx_auto_type(cases[i].n, cases[i].dim, t, sizeof t);
        CHECK(strcmp(t, cases[i].want) == 0, "%lld x %d: %s, want %s", (long long)cases[i].n, cases[i].dim, t, cases[i].want);
    }
    /* a new index is "auto", Flat while small */
    idx_store *s = open_with(test_tmpdir(), NULL);
    REQUIRE(s);
    REQUIRE(put_doc(s, "a.md", 3, NULL, NULL, NULL) == IDX_OK);
    idx_counts c;
    REQUIRE(idx_get_counts(s, &c) == IDX_OK);
    CHECK_EQ_STR(c.faiss_type, "auto: Flat");
    idx_close(s);
}

TEST_MAIN(RUN(dense_search_returns_stored_ids), RUN(vectors_replaced_with_a_new_fingerprint), RUN(missing_corrupt_stale_file_rebuilt), RUN(hnsw_removal_uses_tombstones),
          RUN(type_change_rebuilds), RUN(ivf_trains_when_enough_vectors), RUN(dense_group_filter_never_starves),
          RUN(reader_refresh_follows_writer), RUN(compact_sq8), RUN(compact_sqfp16), RUN(compact_ivf_sq8), RUN(compact_ivf_pq),
          RUN(compact_opq_ivf_pq), RUN(compact_hnsw_sq8), RUN(rerank_scores_are_exact), RUN(auto_type_by_size))
