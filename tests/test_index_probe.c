/* test_index_probe.c — one dense query's IVF lists scanned on several
 * threads (params.probe_threads): the same hits, scores and order as
 * FAISS's own single-threaded search (probe_threads = 1), for IVF-Flat,
 * IVF-SQ8 and IVF-PQ with re-ranking, after removals, with an access
 * filter, with k above what the probed lists hold, with nprobe at and
 * above nlist, on 2 and 3 threads; other types are not split. */
#include "tests/test.h"
#include "index/index.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define DIM 32
#define N 12288
#define DOC 64

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static float frand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
static void unit_vec(float *v) {
    double n = 0;
    for (int i = 0; i < DIM; i++) { v[i] = frand(); n += v[i] * v[i]; }
    for (int i = 0; i < DIM; i++) v[i] = (float)(v[i] / sqrt(n));
}

/* Clustered unit vectors (48 centres): lists of uneven sizes, as with
 * embeddings. */
static float centres[48 * DIM];
static void clustered_vec(float *v) {
    static bool init;
    if (!init) { for (int c = 0; c < 48; c++) unit_vec(centres + c * DIM); init = true; }
    int c = (int)((frand() + 1.0f) * 23.99f);
    double n = 0;
    for (int i = 0; i < DIM; i++) { v[i] = centres[c * DIM + i] + 0.3f * frand(); n += v[i] * v[i]; }
    for (int i = 0; i < DIM; i++) v[i] = (float)(v[i] / sqrt(n));
}

static int64_t ids[N];

/* An index of N clustered vectors of the given type; documents of DOC
 * chunks, 7 of 8 in group "secret". */
static idx_store *build(const char *dir, const char *factory, int nprobe) {
    idx_params p = idx_default_params();
    p.faiss_factory = factory;
    if (nprobe > 0) p.ivf_nprobe = nprobe;
    idx_store *s = NULL;
    if (idx_open(dir, &p, &s) != IDX_OK) {
        test_fail(__FILE__, __LINE__, "idx_open: %s", idx_errmsg(s));
        idx_close(s);
        return NULL;
    }
    static float vec[DOC * DIM];
    idx_chunk ch[DOC];
    for (int i = 0; i < DOC; i++) ch[i] = (idx_chunk){.ordinal = i, .text = "x", .text_len = 1};
    if (idx_begin(s) != IDX_OK) goto fail;
    for (int d = 0; d < N / DOC; d++) {
        char uri[32];
        snprintf(uri, sizeof uri, "p%d.md", d);
        for (int i = 0; i < DOC; i++) clustered_vec(vec + i * DIM);
        idx_doc doc = {.uri = uri, .groups = d % 8 == 0 ? NULL : "secret"};
        if (idx_doc_put(s, &doc, ch, DOC, vec, DIM, ids + d * DOC) != IDX_OK) goto fail;
    }
    if (idx_commit(s) != IDX_OK || idx_save(s) != IDX_OK) goto fail;
    return s;
fail:
    test_fail(__FILE__, __LINE__, "%s: %s", factory, idx_errmsg(s));
    idx_close(s);
    return NULL;
}

/* Searches q with probe_threads = 1 (FAISS's own search) and with t
 * threads; the hits must be identical: ids, scores to the bit, order.
 * Returns the threads the split search used. */
static int same_as_one_thread(idx_store *s, const char *what, const float *q, int k, const idx_filter *f, int t, int line) {
    static idx_hit a[N], b[N];
    int na = -1, nb = -1;
    idx_set_probe_threads(s, 1);
    if (idx_search_dense(s, q, DIM, k, f, a, &na) != IDX_OK) test_fail(__FILE__, line, "%s: %s", what, idx_errmsg(s));
    CHECK(idx_probe_threads_used(s) == 1, "%s: probe_threads 1 used %d threads", what, idx_probe_threads_used(s));
    idx_set_probe_threads(s, t);
    if (idx_search_dense(s, q, DIM, k, f, b, &nb) != IDX_OK) test_fail(__FILE__, line, "%s: %s", what, idx_errmsg(s));
    int used = idx_probe_threads_used(s);
    if (na != nb) {
        test_fail(__FILE__, line, "%s, k %d, %d threads: %d hits, one thread %d", what, k, t, nb, na);
        return used;
    }
    for (int i = 0; i < na; i++)
        if (a[i].chunk_id != b[i].chunk_id || memcmp(&a[i].score, &b[i].score, sizeof a[i].score) != 0) {
            test_fail(__FILE__, line, "%s, k %d, %d threads: hit %d is %lld (%.9g), one thread %lld (%.9g)", what, k, t, i,
                      (long long)b[i].chunk_id, b[i].score, (long long)a[i].chunk_id, a[i].score);
            break;
        }
    return used;
}

/* The cases every IVF type goes through. */
static void ivf_type(const char *factory, int nprobe) {
    const char *dir = test_tmpdir();
    idx_store *s = build(dir, factory, nprobe);
    REQUIRE(s);
    const char *g[] = {"public"};
    idx_filter f = {g, 1};
    int split = 0, searches = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            /* removals (IVF removes exactly), then the saved file reloaded */
            REQUIRE(idx_doc_delete(s, "p0.md") == IDX_OK && idx_doc_delete(s, "p9.md") == IDX_OK, "%s", idx_errmsg(s));
            REQUIRE(idx_save(s) == IDX_OK, "%s", idx_errmsg(s));
            idx_close(s);
            idx_params p = idx_default_params();
            if (nprobe > 0) p.ivf_nprobe = nprobe;
            REQUIRE(idx_open(dir, &p, &s) == IDX_OK, "%s", idx_errmsg(s));
            CHECK(idx_notice(s) == NULL, "%s reloads from its file: %s", factory, idx_notice(s));
        }
        for (int i = 0; i < 12; i++) {
            float q[DIM];
            clustered_vec(q);
            for (int t = 2; t <= 3; t++) {
                split += same_as_one_thread(s, factory, q, 10, NULL, t, __LINE__) == t;
                split += same_as_one_thread(s, factory, q, 10, &f, t, __LINE__) == t;
                searches += 2;
            }
        }
        /* more than the probed lists hold: the extra-probe loop, split */
        float q[DIM];
        clustered_vec(q);
        int big = N / 2;
        same_as_one_thread(s, factory, q, big, NULL, 2, __LINE__);
        same_as_one_thread(s, factory, q, big, &f, 3, __LINE__);
        static idx_hit h[N];
        int n = 0;
        idx_set_probe_threads(s, 2);
        int live = N - (pass ? 2 * DOC : 0);
        REQUIRE(idx_search_dense(s, q, DIM, N, NULL, h, &n) == IDX_OK, "%s", idx_errmsg(s));
        CHECK(n == live, "%s: asked for all %d vectors on 2 threads, got %d", factory, live, n);
        for (int i = 1; i < n; i++)
            if (h[i].chunk_id == h[i - 1].chunk_id || h[i].score > h[i - 1].score) {
                test_fail(__FILE__, __LINE__, "%s: hit %d (%lld %.9g) after (%lld %.9g)", factory, i, (long long)h[i].chunk_id,
                          h[i].score, (long long)h[i - 1].chunk_id, h[i - 1].score);
                break;
            }
    }
    /* the lists are split whenever t lists are probed (nprobe >= 3 here) */
    CHECK(split == searches, "%s: %d of %d searches ran on the threads asked for", factory, split, searches);
    /* automatic: 32-dim codes are far below 1 MiB a thread, so one
     * thread, through the coarse search + search_preassigned path: still
     * FAISS's own result */
    for (int i = 0; i < 5; i++) {
        float q[DIM];
        clustered_vec(q);
        int used = same_as_one_thread(s, factory, q, 10, &f, 0, __LINE__);
        CHECK(used == 1, "%s: automatic split of a tiny query used %d threads", factory, used);
    }
    idx_close(s);
}

TEST(ivf_flat_split_equals_one_thread) { ivf_type("IVF32,Flat", 4); }
TEST(ivf_sq8_split_equals_one_thread) { ivf_type("IVF32,SQ8", 0); }
/* re-ranking is on for PQ (params.rerank automatic): the candidates it
 * re-scores come from the split search */
TEST(ivf_pq_rerank_split_equals_one_thread) { ivf_type("IVF16,PQ4", 3); }
TEST(nprobe_equals_nlist) { ivf_type("IVF32,SQ8", 32); }
TEST(nprobe_above_nlist) { ivf_type("IVF32,SQ8", 100); }

/* At nprobe >= nlist IVF-Flat is exact: the split search's top-10 equals a
 * brute-force ranking of the stored vectors (an outside reference, not
 * the code under test). */
TEST(split_ivf_flat_all_lists_is_exact) {
    const char *dir = test_tmpdir();
    idx_store *s = build(dir, "IVF32,Flat", 32);
    REQUIRE(s);
    static float all[N * DIM];
    for (int i = 0; i < N; i++) REQUIRE(idx_chunk_vector(s, ids[i], all + i * DIM, DIM) == IDX_OK);
    idx_set_probe_threads(s, 3);
    for (int t = 0; t < 10; t++) {
        float q[DIM];
        clustered_vec(q);
        idx_hit h[10];
        int n = 0;
        REQUIRE(idx_search_dense(s, q, DIM, 10, NULL, h, &n) == IDX_OK && n == 10);
        CHECK_EQ_INT(idx_probe_threads_used(s), 3);
        /* the 10th best exact score; every hit must reach it */
        float best[10];
        for (int j = 0; j < 10; j++) best[j] = -2;
        for (int i = 0; i < N; i++) {
            float d = 0;
            for (int j = 0; j < DIM; j++) d += all[i * DIM + j] * q[j];
            if (d <= best[9]) continue;
            int p = 9;
            while (p > 0 && best[p - 1] < d) { best[p] = best[p - 1]; p--; }
            best[p] = d;
        }
        for (int i = 0; i < n; i++)
            CHECK(fabsf(h[i].score - best[i]) < 1e-5f, "hit %d scores %.7f, exact rank %d %.7f", i, h[i].score, i, best[i]);
    }
    idx_close(s);
}

/* Types without lists are not split: HNSW (with tombstones after a
 * removal), Flat, and an IVF behind a transform (PCA, OPQ). */
static void not_split(const char *factory, bool remove) {
    const char *dir = test_tmpdir();
    idx_store *s = build(dir, factory, 0);
    REQUIRE(s);
    if (remove) REQUIRE(idx_doc_delete(s, "p3.md") == IDX_OK, "%s", idx_errmsg(s));
    for (int i = 0; i < 5; i++) {
        float q[DIM];
        clustered_vec(q);
        int used = same_as_one_thread(s, factory, q, 10, NULL, 3, __LINE__);
        CHECK(used == 1, "%s: split over %d threads", factory, used);
    }
    idx_close(s);
}

TEST(hnsw_with_tombstones_not_split) { not_split("HNSW16", true); }
TEST(flat_not_split) { not_split("Flat", false); }
TEST(pretransform_not_split) { not_split("PCA32,IVF16,Flat", false); }

TEST_MAIN(RUN(ivf_flat_split_equals_one_thread), RUN(ivf_sq8_split_equals_one_thread),
          RUN(ivf_pq_rerank_split_equals_one_thread), RUN(nprobe_equals_nlist), RUN(nprobe_above_nlist),
          RUN(split_ivf_flat_all_lists_is_exact), RUN(hnsw_with_tombstones_not_split), RUN(flat_not_split),
          RUN(pretransform_not_split))
