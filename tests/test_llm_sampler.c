/* test_llm_sampler.c — the sampler on synthetic logits: each filter's effect,
 * the order of the chain, the draw's distribution, penalties and seeds. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "llm/llm.h"
#include "tests/test.h"

/* Parameters with every filter off: temperature 1, plain softmax draw. */
static llm_sampler_params plain(uint64_t seed) {
    llm_sampler_params p = llm_sampler_default_params();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.seed = seed;
    return p;
}

/* A small deterministic generator for test data (not the sampler's). */
static uint64_t t_rng = 88172645463325252ull;
static double t_uniform(void) {
    t_rng ^= t_rng << 13;
    t_rng ^= t_rng >> 7;
    t_rng ^= t_rng << 17;
    return (double)(t_rng >> 11) * 0x1.0p-53;
}

static void random_logits(float *l, int n, float scale) {
    for (int i = 0; i < n; i++) l[i] = (float)((t_uniform() * 2.0 - 1.0) * scale);
}

/* The set of ids the sampler's last distribution holds, as a bitmap. */
static int last_set(llm_sampler *s, int n_vocab, unsigned char *in_set) {
    int32_t *ids = malloc((size_t)n_vocab * sizeof *ids);
    float *pr = malloc((size_t)n_vocab * sizeof *pr);
    memset(in_set, 0, (size_t)n_vocab);
    int n = llm_sampler_last_probs(s, ids, pr, n_vocab);
    for (int i = 0; i < n && i < n_vocab; i++) in_set[ids[i]] = 1;
    free(ids);
    free(pr);
    return n;
}

TEST(greedy_is_argmax_and_ties_go_to_lowest_id) {
    float l[8] = {0.1f, 3.0f, -2.0f, 3.0f, 2.9f, 3.0f, -INFINITY, 1.0f};
    llm_sampler_params p = llm_sampler_default_params();
    p.temperature = 0.0f;
    p.seed = 1;
    llm_sampler *s = llm_sampler_new(&p, 8);
    REQUIRE(s);
    for (int i = 0; i < 20; i++) CHECK_EQ_INT(llm_sampler_sample(s, l), 1);
    llm_sampler_free(s);
    p.temperature = -1.0f;
    s = llm_sampler_new(&p, 8);
    REQUIRE(s);
    CHECK_EQ_INT(llm_sampler_sample(s, l), 1);
    l[1] = 0.0f;
    CHECK_EQ_INT(llm_sampler_sample(s, l), 3);
    llm_sampler_free(s);
}

TEST(top_k_1_always_picks_the_max) {
    enum { N = 1000 };
    float l[N];
    llm_sampler_params p = plain(7);
    p.top_k = 1;
    p.temperature = 5.0f;     /* a hot temperature must not matter */
    llm_sampler *s = llm_sampler_new(&p, N);
    REQUIRE(s);
    for (int r = 0; r < 50; r++) {
        random_logits(l, N, 3.0f);
        int best = 0;
        for (int i = 1; i < N; i++)
            if (l[i] > l[best]) best = i;
        CHECK_EQ_INT(llm_sampler_sample(s, l), best);
    }
    llm_sampler_free(s);
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

TEST(top_k_keeps_exactly_the_k_best_renormalised) {
    enum { N = 5000, K = 37 };
    float *l = malloc(N * sizeof *l), *sorted = malloc(N * sizeof *sorted);
    unsigned char *in = malloc(N);
    REQUIRE(l && sorted && in);
    llm_sampler_params p = plain(3);
    p.top_k = K;
    llm_sampler *s = llm_sampler_new(&p, N);
    REQUIRE(s);
    for (int r = 0; r < 20; r++) {
        random_logits(l, N, 4.0f);
        memcpy(sorted, l, N * sizeof *l);
        qsort(sorted, N, sizeof *sorted, cmp_desc);
        float kth = sorted[K - 1];
        int32_t id = llm_sampler_sample(s, l);
        CHECK(id >= 0 && l[id] >= kth, "sampled id %d outside the top %d", id, K);
        int n = last_set(s, N, in);
        CHECK_EQ_INT(n, K);
        for (int i = 0; i < N; i++)
            if ((l[i] >= kth) != (in[i] != 0)) {
                CHECK(0, "id %d (logit %f, kth %f) wrongly %s", i, l[i], kth, in[i] ? "kept" : "dropped");
                break;
            }
        /* probabilities: softmax over the k kept logits */
        int32_t ids[K];
        float pr[K];
        llm_sampler_last_probs(s, ids, pr, K);
        double z = 0;
        for (int i = 0; i < K; i++) z += exp((double)sorted[i] - sorted[0]);
        for (int i = 0; i < K; i++) {
            CHECK(fabs(pr[i] - exp((double)sorted[i] - sorted[0]) / z) < 1e-5, "p[%d]", i);
            CHECK(l[ids[i]] == sorted[i], "rank %d", i);
        }
    }
    llm_sampler_free(s);
    free(l);
    free(sorted);
    free(in);
}

/* Logits whose softmax is exactly probs (up to float rounding). */
static void logits_of(const double *probs, float *l, int n) {
    for (int i = 0; i < n; i++) l[i] = (float)log(probs[i]);
}

TEST(top_p_keeps_the_smallest_set_reaching_p) {
    double probs[6] = {0.05, 0.40, 0.25, 0.15, 0.10, 0.05};
    float l[6];
    logits_of(probs, l, 6);
    struct { float p; int n; int ids[6]; } cases[] = {
        {0.30f, 1, {1}},
        {0.60f, 2, {1, 2}},
        {0.70f, 3, {1, 2, 3}},
        {0.85f, 4, {1, 2, 3, 4}},
        {0.97f, 6, {1, 2, 3, 4, 0, 5}},   /* equal probabilities: lower id first */
        {0.0f, 1, {1}},                  /* never empty */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        llm_sampler_params p = plain(11);
        p.top_p = cases[c].p;
        llm_sampler *s = llm_sampler_new(&p, 6);
        REQUIRE(s);
        for (int r = 0; r < 200; r++) {
            int32_t id = llm_sampler_sample(s, l);
            bool ok = false;
            for (int j = 0; j < cases[c].n; j++) ok |= id == cases[c].ids[j];
            CHECK(ok, "top_p %.2f drew id %d", cases[c].p, id);
        }
        int32_t ids[6];
        float pr[6];
        int n = llm_sampler_last_probs(s, ids, pr, 6);
        CHECK_EQ_INT(n, cases[c].n);
        double kept = 0;
        for (int j = 0; j < cases[c].n; j++) kept += probs[cases[c].ids[j]];
        for (int j = 0; j < n && j < cases[c].n; j++) {
            CHECK_EQ_INT(ids[j], cases[c].ids[j]);
            CHECK(fabs(pr[j] - probs[ids[j]] / kept) < 1e-5, "top_p %.2f p[%d] %f", cases[c].p, j, pr[j]);
        }
        llm_sampler_free(s);
    }
}

/* The unsorted fast path (bucketed pre-filter) against a full sort done here. */
TEST(top_p_on_a_large_vocab_matches_a_full_sort) {
    enum { N = 32000 };
    float *l = malloc(N * sizeof *l), *sorted = malloc(N * sizeof *sorted);
    unsigned char *in = malloc(N);
    REQUIRE(l && sorted && in);
    const float ps[] = {0.5f, 0.9f, 0.95f, 0.999f};
    const float scales[] = {1.0f, 6.0f, 40.0f};
    for (size_t si = 0; si < 3; si++)
        for (size_t pi = 0; pi < 4; pi++) {
            random_logits(l, N, scales[si]);
            memcpy(sorted, l, N * sizeof *l);
            qsort(sorted, N, sizeof *sorted, cmp_desc);
            double z = 0;
            for (int i = 0; i < N; i++) z += exp((double)sorted[i] - sorted[0]);
            int want = N;
            double acc = 0;
            for (int i = 0; i < N; i++) {
                acc += exp((double)sorted[i] - sorted[0]) / z;
                if (acc >= ps[pi]) { want = i + 1; break; }
            }
            llm_sampler_params p = plain(5);
            p.top_p = ps[pi];
            llm_sampler *s = llm_sampler_new(&p, N);
            REQUIRE(s);
            int32_t id = llm_sampler_sample(s, l);
            CHECK(id >= 0 && l[id] >= sorted[want - 1], "scale %g p %g: drew outside the set", scales[si], ps[pi]);
            int n = last_set(s, N, in);
            CHECK(n == want, "scale %g p %g: kept %d, want %d", scales[si], ps[pi], n, want);
            int wrong = 0;
            for (int i = 0; i < N; i++) wrong += (l[i] >= sorted[want - 1]) != (in[i] != 0);
            CHECK_EQ_INT(wrong, 0);
            llm_sampler_free(s);
        }
    free(l);
    free(sorted);
    free(in);
}

TEST(min_p_threshold_is_relative_to_the_max) {
    /* p relative to max: 1, 0.5, 0.09, 0.11, 0.2, 0.1001 */
    double rel[6] = {1.0, 0.5, 0.09, 0.11, 0.2, 0.1001};
    float l[6];
    for (int i = 0; i < 6; i++) l[i] = (float)(log(rel[i]) + 3.0);  /* offset must not matter */
    llm_sampler_params p = plain(13);
    p.min_p = 0.1f;
    llm_sampler *s = llm_sampler_new(&p, 6);
    REQUIRE(s);
    unsigned char in[6];
    int counts[6] = {0};
    for (int r = 0; r < 2000; r++) counts[llm_sampler_sample(s, l)]++;
    CHECK_EQ_INT(last_set(s, 6, in), 5);
    CHECK(in[0] && in[1] && !in[2] && in[3] && in[4] && in[5]);
    CHECK_EQ_INT(counts[2], 0);
    CHECK(counts[3] > 0 && counts[5] > 0);
    llm_sampler_free(s);
    /* min_p 0.6 keeps only the max here; min_p 0.45 keeps two */
    p.min_p = 0.6f;
    s = llm_sampler_new(&p, 6);
    CHECK_EQ_INT(llm_sampler_sample(s, l), 0);
    CHECK_EQ_INT(last_set(s, 6, in), 1);
    llm_sampler_free(s);
    p.min_p = 0.45f;
    s = llm_sampler_new(&p, 6);
    llm_sampler_sample(s, l);
    CHECK_EQ_INT(last_set(s, 6, in), 2);
    CHECK(in[0] && in[1]);
    llm_sampler_free(s);
}

/* Pearson chi-square of observed counts against probabilities. */
static double chi_square(const int *obs, const double *prob, int k, int total) {
    double x2 = 0;
    for (int i = 0; i < k; i++) {
        double e = prob[i] * total;
        x2 += (obs[i] - e) * (obs[i] - e) / e;
    }
    return x2;
}

TEST(draws_follow_softmax_of_logits_over_temperature) {
    enum { K = 8, DRAWS = 100000 };
    const float l[K] = {1.0f, 0.5f, 0.0f, -0.5f, 2.0f, 1.5f, -1.0f, 0.25f};
    const float temps[] = {0.5f, 1.0f, 1.7f};
    for (size_t t = 0; t < 3; t++) {
        double prob[K], z = 0;
        for (int i = 0; i < K; i++) z += prob[i] = exp(l[i] / temps[t]);
        for (int i = 0; i < K; i++) prob[i] /= z;
        llm_sampler_params p = plain(1234 + t);
        p.temperature = temps[t];
        llm_sampler *s = llm_sampler_new(&p, K);
        REQUIRE(s);
        int obs[K] = {0};
        for (int r = 0; r < DRAWS; r++) obs[llm_sampler_sample(s, l)]++;
        double x2 = chi_square(obs, prob, K, DRAWS);
        /* 7 degrees of freedom: P(X2 > 24.32) = 0.001 */
        CHECK(x2 < 24.32, "T=%.1f chi-square %.2f", temps[t], x2);
        /* and a wrong temperature is detected by the same statistic */
        double wrong[K], zw = 0;
        for (int i = 0; i < K; i++) zw += wrong[i] = exp(l[i] / (temps[t] * 1.25));
        for (int i = 0; i < K; i++) wrong[i] /= zw;
        CHECK(chi_square(obs, wrong, K, DRAWS) > 100.0, "T=%.1f: test cannot tell temperatures apart", temps[t]);
        llm_sampler_free(s);
    }
}

TEST(top_k_then_top_p_renormalise_in_llama_cpp_order) {
    double probs[4] = {0.4, 0.3, 0.2, 0.1};
    float l[4];
    logits_of(probs, l, 4);
    unsigned char in[4];
    llm_sampler_params p = plain(2);
    p.top_p = 0.5f;
    llm_sampler *s = llm_sampler_new(&p, 4);
    llm_sampler_sample(s, l);
    CHECK_EQ_INT(last_set(s, 4, in), 2);      /* 0.4 < 0.5: two needed */
    llm_sampler_free(s);
    p.top_k = 2;                               /* renormalised: 4/7 >= 0.5 */
    s = llm_sampler_new(&p, 4);
    llm_sampler_sample(s, l);
    CHECK_EQ_INT(last_set(s, 4, in), 1);
    CHECK(in[0]);
    llm_sampler_free(s);
    /* min-p after top-p: relative to the max, so order with top-p is moot */
    p.top_k = 0;
    p.top_p = 0.95f;
    p.min_p = 0.6f;                            /* threshold 0.24: keeps 0.4 and 0.3 */
    s = llm_sampler_new(&p, 4);
    llm_sampler_sample(s, l);
    CHECK_EQ_INT(last_set(s, 4, in), 2);
    llm_sampler_free(s);
}

TEST(repeat_penalty_divides_positive_and_multiplies_negative_logits) {
    const float l[5] = {2.0f, 1.5f, -1.0f, 0.0f, 1.0f};
    llm_sampler_params p = plain(9);
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 3;
    llm_sampler *s = llm_sampler_new(&p, 5);
    REQUIRE(s);
    llm_sampler_accept(s, 0);
    llm_sampler_accept(s, 2);
    llm_sampler_accept(s, 0);   /* counted once */
    llm_sampler_sample(s, l);
    /* expected logits: 1.0, 1.5, -2.0, 0.0, 1.0 */
    const float want[5] = {1.0f, 1.5f, -2.0f, 0.0f, 1.0f};
    double z = 0;
    for (int i = 0; i < 5; i++) z += exp(want[i]);
    int32_t ids[5];
    float pr[5];
    CHECK_EQ_INT(llm_sampler_last_probs(s, ids, pr, 5), 5);
    for (int i = 0; i < 5; i++)
        CHECK(fabs(pr[i] - exp(want[ids[i]]) / z) < 1e-5, "id %d p %f want %f", ids[i], pr[i], exp(want[ids[i]]) / z);
    CHECK_EQ_INT(ids[0], 1);
    llm_sampler_free(s);

    /* greedy sees the penalty too; the window forgets old tokens */
    p.temperature = 0.0f;
    s = llm_sampler_new(&p, 5);
    CHECK_EQ_INT(llm_sampler_sample(s, l), 0);
    llm_sampler_accept(s, 0);
    CHECK_EQ_INT(llm_sampler_sample(s, l), 1);
    llm_sampler_accept(s, 3);
    llm_sampler_accept(s, 3);
    CHECK_EQ_INT(llm_sampler_sample(s, l), 1);   /* 0 still in the last 3 */
    llm_sampler_accept(s, 3);
    CHECK_EQ_INT(llm_sampler_sample(s, l), 0);   /* 0 has left the window */
    llm_sampler_reset(s);
    llm_sampler_accept(s, 0);
    CHECK_EQ_INT(llm_sampler_sample(s, l), 1);
    llm_sampler_free(s);
}

TEST(same_seed_same_draws_other_seed_other_draws) {
    enum { N = 64, DRAWS = 200 };
    float l[N];
    random_logits(l, N, 1.0f);
    int32_t a[DRAWS], b[DRAWS], c[DRAWS], d[DRAWS];
    llm_sampler_params p = llm_sampler_default_params();
    p.seed = 42;
    llm_sampler *s1 = llm_sampler_new(&p, N), *s2 = llm_sampler_new(&p, N);
    p.seed = 43;
    llm_sampler *s3 = llm_sampler_new(&p, N);
    REQUIRE(s1 && s2 && s3);
    for (int i = 0; i < DRAWS; i++) {
        a[i] = llm_sampler_sample(s1, l);
        b[i] = llm_sampler_sample(s2, l);
        c[i] = llm_sampler_sample(s3, l);
    }
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed gave different draws");
    int same = 0;
    for (int i = 0; i < DRAWS; i++) same += a[i] == c[i];
    CHECK(same < DRAWS / 2, "seeds 42 and 43 agree on %d of %d draws", same, DRAWS);
    llm_sampler_reset(s1);
    for (int i = 0; i < DRAWS; i++) d[i] = llm_sampler_sample(s1, l);
    CHECK(memcmp(a, d, sizeof a) == 0, "reset does not restart the stream");
    llm_sampler_free(s1);
    llm_sampler_free(s2);
    llm_sampler_free(s3);
}

TEST(bad_input_is_handled) {
    CHECK(llm_sampler_new(NULL, 0) == NULL);
    llm_sampler_free(NULL);
    llm_sampler *s = llm_sampler_new(NULL, 4);   /* NULL params = defaults */
    REQUIRE(s);
    CHECK_EQ_INT(llm_sampler_sample(s, NULL), -1);
    float l[4] = {NAN, 1.0f, NAN, 0.5f};
    for (int i = 0; i < 50; i++) {
        int32_t id = llm_sampler_sample(s, l);
        CHECK(id == 1 || id == 3, "drew NaN logit %d", id);
    }
    float all_inf[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int32_t id = llm_sampler_sample(s, all_inf);
    CHECK(id >= 0 && id < 4);
    llm_sampler_accept(s, -5);       /* out-of-range ids are ignored by the penalty */
    llm_sampler_accept(s, 99);
    CHECK(llm_sampler_sample(s, l) >= 0);
    llm_sampler_free(s);
}

TEST_MAIN(RUN(greedy_is_argmax_and_ties_go_to_lowest_id), RUN(top_k_1_always_picks_the_max),
          RUN(top_k_keeps_exactly_the_k_best_renormalised), RUN(top_p_keeps_the_smallest_set_reaching_p),
          RUN(top_p_on_a_large_vocab_matches_a_full_sort), RUN(min_p_threshold_is_relative_to_the_max),
          RUN(draws_follow_softmax_of_logits_over_temperature),
          RUN(top_k_then_top_p_renormalise_in_llama_cpp_order),
          RUN(repeat_penalty_divides_positive_and_multiplies_negative_logits),
          RUN(same_seed_same_draws_other_seed_other_draws), RUN(bad_input_is_handled))
