/* test_llm_embed.c — embeddings: the mean of final-norm hidden states against
 * llama.cpp's per-position states, packing several texts into one batch,
 * long texts through the cache, the layer option. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "llm/llm.h"
#include "llm/model.h"
#include "tests/test.h"

static llm_model *load(const char *path) {
    llm_model *m = NULL;
    char err[512];
    llm_model_params mp = llm_model_default_params();
    REQUIRE(llm_model_load(path, &mp, &m, err, sizeof err) == LLM_OK, "%s", err);
    return m;
}

static llm_context *ctx(const llm_model *m, int n_ctx, int n_batch, int layer) {
    llm_context *c = NULL;
    char err[512];
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.n_threads = 2;
    cp.embd_layer = layer;
    REQUIRE(llm_context_new(m, &cp, &c, err, sizeof err) == LLM_OK, "%s", err);
    return c;
}

static double cosine(const float *a, const double *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

static double norm2(const float *a, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * a[i];
    return s;
}

static double max_abs_diff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
    return d;
}

/* Compares llm_embed(text) with the mean of the oracle's per-position
 * final-norm hidden states; returns the cosine. */
static double embed_vs_oracle(const char *path, const char *text) {
    char args[4096];
    snprintf(args, sizeof args, "hidden --model %s --text %s", test_shq(path), test_shq(text));
    char *out = test_oracle(args);
    cJSON *j = cJSON_Parse(out);
    free(out);
    REQUIRE(j, "oracle output is not JSON");
    llm_model *m = load(path);
    int dim = llm_n_embd(m);
    const cJSON *mean = cJSON_GetObjectItem(j, "mean");
    REQUIRE(cJSON_GetArraySize(mean) == dim, "oracle mean has %d dims, model %d", cJSON_GetArraySize(mean), dim);
    /* same tokens on both sides */
    int32_t ids[512];
    size_t n = 0;
    REQUIRE(llm_tokenize(m, text, strlen(text), true, false, ids, 512, &n) == LLM_OK);
    const cJSON *toks = cJSON_GetObjectItem(j, "tokens");
    REQUIRE((size_t)cJSON_GetArraySize(toks) == n, "oracle %d tokens, ours %zu", cJSON_GetArraySize(toks), n);
    for (size_t i = 0; i < n; i++) CHECK_EQ_INT(cJSON_GetArrayItem(toks, (int)i)->valueint, ids[i]);
    double *ref = malloc(sizeof(double) * dim);
    float *got = malloc(sizeof(float) * dim);
    REQUIRE(ref && got);
    for (int i = 0; i < dim; i++) ref[i] = cJSON_GetArrayItem(mean, i)->valuedouble;
    llm_context *c = ctx(m, 512, 512, -1);
    REQUIRE(llm_embed(c, text, strlen(text), got) == LLM_OK, "%s", llm_context_error(c));
    CHECK(fabs(norm2(got, dim) - 1.0) < 1e-5, "norm^2 %g", norm2(got, dim));
    CHECK_EQ_INT(llm_context_n_past(c), 0);     /* the context is left clear */
    double cs = cosine(got, ref, dim);
    free(ref);
    free(got);
    llm_context_free(c);
    llm_model_free(m);
    cJSON_Delete(j);
    return cs;
}

TEST(stories260k_embedding_matches_llama_cpp_mean_hidden) {
    const char *path = test_require_shared("models/stories260K.gguf");
    double cs = embed_vs_oracle(path, "Once upon a time there was a little girl who loved the park.");
    printf("  # stories260K: cosine with the oracle's mean of final-norm states %.8f\n", cs);
    CHECK(cs >= 0.9999, "%.8f", cs);
}

TEST(mistral_shaped_f32_embedding_matches_llama_cpp_mean_hidden) {
    const char *vocab = test_require_shared("models/mistral-v0.1-vocab-derived.gguf");
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s/f32.gguf", test_tmpdir());
    snprintf(cmd, sizeof cmd, "%s/mkmodel --vocab-from %s --dim 256 --heads 4 --kv-heads 1 --ff 512 --layers 2 "
             "--rope-theta 1e6 --type f32 --seed 21 --out %s 2>&1", test_build_dir(), test_shq(vocab), test_shq(path));
    int st = 0;
    char *o = test_run_capture(cmd, &st);
    REQUIRE(st == 0, "mkmodel: %s", o ? o : "");
    free(o);
    double cs = embed_vs_oracle(path, "Retrieval needs vectors: the lighthouse log lists wind, visibility and ships.");
    printf("  # mkmodel f32 (GQA 4:1, theta 1e6): cosine %.8f\n", cs);
    CHECK(cs >= 0.9999, "%.8f", cs);
}

static const char *texts[] = {
    "Once upon a time",
    "The cat sat on the mat and looked at the bird outside the window.",
    "",
    "Tom and Lily went to the park. They played with a ball and a red kite until the sun went down.",
    "Hi",
};
#define N_TEXTS ((int)(sizeof texts / sizeof texts[0]))

TEST(batch_packing_equals_one_text_at_a_time) {
    const char *path = test_require_shared("models/stories260K.gguf");
    llm_model *m = load(path);
    int dim = llm_n_embd(m);
    size_t lens[N_TEXTS];
    for (int i = 0; i < N_TEXTS; i++) lens[i] = strlen(texts[i]);
    float *batch = malloc(sizeof(float) * dim * N_TEXTS), *one = malloc(sizeof(float) * dim);
    REQUIRE(batch && one);
    llm_context *c = ctx(m, 256, 256, -1);
    REQUIRE(llm_embed_batch(c, texts, lens, N_TEXTS, batch) == LLM_OK, "%s", llm_context_error(c));
    for (int i = 0; i < N_TEXTS; i++) {
        REQUIRE(llm_embed(c, texts[i], lens[i], one) == LLM_OK, "%s", llm_context_error(c));
        double d = max_abs_diff(batch + (size_t)i * dim, one, dim);
        CHECK(d <= 1e-6, "text %d: packed vs alone differ by %.3g", i, d);
        CHECK(fabs(norm2(one, dim) - 1) < 1e-5);
    }
    /* different texts give different vectors (no cross-talk, no constant) */
    CHECK(max_abs_diff(batch, batch + dim, dim) > 1e-3);
    /* a small n_batch packs fewer per batch and must not change anything */
    llm_context *c2 = ctx(m, 256, 24, -1);
    float *batch2 = malloc(sizeof(float) * dim * N_TEXTS);
    REQUIRE(batch2);
    REQUIRE(llm_embed_batch(c2, texts, lens, N_TEXTS, batch2) == LLM_OK, "%s", llm_context_error(c2));
    double d = max_abs_diff(batch, batch2, dim * N_TEXTS);
    CHECK(d <= 1e-6, "n_batch 24 vs 256: %.3g", d);
    free(batch);
    free(batch2);
    free(one);
    llm_context_free(c);
    llm_context_free(c2);
    llm_model_free(m);
}

TEST(long_text_goes_through_the_cache_in_chunks) {
    const char *path = test_require_shared("models/stories260K.gguf");
    llm_model *m = load(path);
    int dim = llm_n_embd(m);
    const char *t = texts[3];
    float a[64], b[64];
    llm_context *big = ctx(m, 256, 256, -1), *small = ctx(m, 256, 8, -1), *tiny = ctx(m, 8, 8, -1);
    REQUIRE(llm_embed(big, t, strlen(t), a) == LLM_OK);
    REQUIRE(llm_embed(small, t, strlen(t), b) == LLM_OK, "%s", llm_context_error(small));
    double d = max_abs_diff(a, b, dim);
    CHECK(d <= 1e-6, "chunked vs one batch: %.3g", d);
    /* a text longer than the context is an error, not a silent cut */
    CHECK_EQ_INT(llm_embed(tiny, t, strlen(t), b), LLM_ERR_CONTEXT_FULL);
    CHECK(strstr(llm_context_error(tiny), "n_ctx") != NULL, "%s", llm_context_error(tiny));
    llm_context_free(big);
    llm_context_free(small);
    llm_context_free(tiny);
    llm_model_free(m);
}

TEST(layer_option_pools_an_earlier_layer) {
    const char *path = test_require_shared("models/stories260K.gguf");
    llm_model *m = load(path);
    int dim = llm_n_embd(m);
    const char *t = texts[1];
    float fin[64], l1[64], l4[64], raw[64];
    llm_context *cf = ctx(m, 256, 256, -1), *c1 = ctx(m, 256, 256, 1), *c4 = ctx(m, 256, 256, 4);
    REQUIRE(llm_embed(cf, t, strlen(t), fin) == LLM_OK);
    REQUIRE(llm_embed(c1, t, strlen(t), l1) == LLM_OK);
    REQUIRE(llm_embed(c4, t, strlen(t), l4) == LLM_OK);
    CHECK(fabs(norm2(l1, dim) - 1) < 1e-5);
    CHECK(max_abs_diff(fin, l1, dim) > 1e-2, "layer 1 equals the final state");
    CHECK(max_abs_diff(l1, l4, dim) > 1e-2, "layers 1 and 4 agree");
    /* layer 4 (the last) is the residual stream before the final norm: its
     * mean, normalised, from the internal forward pass */
    int32_t ids[64];
    size_t n = 0;
    REQUIRE(llm_tokenize(m, t, strlen(t), true, false, ids, 64, &n) == LLM_OK);
    int32_t pos[64];
    for (size_t i = 0; i < n; i++) pos[i] = (int32_t)i;
    float *hid = malloc(sizeof(float) * dim * n);
    REQUIRE(hid);
    llm_batch b = {.tokens = ids, .pos = pos, .seq = NULL, .n = (int)n, .use_cache = false, .store_kv = false,
                   .logits = 0, .hidden = hid, .hidden_layer = 4};
    REQUIRE(llm_forward(m, cf->s, cf->pool, &b) == LLM_OK);
    double s = 0;
    for (int d = 0; d < dim; d++) {
        double acc = 0;
        for (size_t i = 0; i < n; i++) acc += hid[i * dim + d];
        raw[d] = (float)(acc / n);
        s += (double)raw[d] * raw[d];
    }
    for (int d = 0; d < dim; d++) raw[d] = (float)(raw[d] / sqrt(s));
    CHECK(max_abs_diff(raw, l4, dim) <= 1e-6);
    /* out of range */
    llm_context *bad = NULL;
    char err[256];
    llm_context_params cp = llm_context_default_params();
    cp.embd_layer = 5;
    CHECK_EQ_INT(llm_context_new(m, &cp, &bad, err, sizeof err), LLM_ERR_ARG);
    free(hid);
    llm_context_free(cf);
    llm_context_free(c1);
    llm_context_free(c4);
    llm_model_free(m);
}

/* A layer sweep: one pass captures several layers, each equal to what a
 * context at that layer embeds on its own (also through the cache in
 * several batches). */
TEST(one_pass_embeds_several_layers) {
    const char *path = test_require_shared("models/stories260K.gguf");
    llm_model *m = load(path);
    int dim = llm_n_embd(m);
    const char *t = texts[3];
    const int layers[] = {1, -1, 3, 0};
    float all[4 * 64], one[64];
    llm_context *sweep = ctx(m, 256, 8, 2);     /* its own embd_layer does not matter */
    REQUIRE(llm_embed_layers(sweep, t, strlen(t), layers, 4, all) == LLM_OK, "%s", llm_context_error(sweep));
    for (int j = 0; j < 4; j++) {
        llm_context *c = ctx(m, 256, 256, layers[j]);
        REQUIRE(llm_embed(c, t, strlen(t), one) == LLM_OK);
        double d = max_abs_diff(one, all + j * dim, dim);
        CHECK(d <= 1e-5, "layer %d: %.3g", layers[j], d);
        llm_context_free(c);
    }
    CHECK(max_abs_diff(all, all + dim, dim) > 1e-2, "layers differ");
    const int bad[] = {1, 9};
    CHECK_EQ_INT(llm_embed_layers(sweep, t, strlen(t), bad, 2, all), LLM_ERR_ARG);
    /* the context still embeds normally afterwards */
    REQUIRE(llm_embed(sweep, t, strlen(t), one) == LLM_OK);
    llm_context_free(sweep);
    llm_model_free(m);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

TEST(packing_speeds_up_ingestion) {
    /* figures only (timing asserts flake on a shared machine): 64 short
     * chunks one by one vs packed */
    const char *path = test_require_shared("models/stories260K.gguf");
    llm_model *m = load(path);
    int dim = llm_n_embd(m);
    enum { N = 64 };
    const char *tx[N];
    size_t lens[N];
    for (int i = 0; i < N; i++) {
        tx[i] = texts[i % N_TEXTS];
        lens[i] = strlen(tx[i]);
    }
    float *out = malloc(sizeof(float) * dim * N), *packed = malloc(sizeof(float) * dim * N);
    REQUIRE(out && packed);
    llm_context *c = ctx(m, 512, 512, -1);
    double t0 = now_ms();
    for (int i = 0; i < N; i++) REQUIRE(llm_embed(c, tx[i], lens[i], out + (size_t)i * dim) == LLM_OK);
    double t1 = now_ms();
    REQUIRE(llm_embed_batch(c, tx, lens, N, packed) == LLM_OK);
    double t2 = now_ms();
    printf("  # 64 texts on stories260K: one by one %.1f ms, packed %.1f ms\n", t1 - t0, t2 - t1);
    CHECK(max_abs_diff(out, packed, dim * N) <= 1e-6);
    free(out);
    free(packed);
    llm_context_free(c);
    llm_model_free(m);
}

TEST_MAIN(RUN(stories260k_embedding_matches_llama_cpp_mean_hidden), RUN(one_pass_embeds_several_layers),
          RUN(mistral_shaped_f32_embedding_matches_llama_cpp_mean_hidden),
          RUN(batch_packing_equals_one_text_at_a_time), RUN(long_text_goes_through_the_cache_in_chunks),
          RUN(layer_option_pools_an_earlier_layer), RUN(packing_speeds_up_ingestion))
