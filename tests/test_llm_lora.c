/* test_llm_lora.c — LoRA adapters without the oracle: loading and its errors,
 * the math of one pair against a hand computation, prefill / decode
 * agreement, the embedding fingerprint. (llama.cpp agreement: test_llm_types.c.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llm/gguf.h"
#include "llm/kernels.h"
#include "llm/llm.h"
#include "llm/model.h"
#include "tests/test.h"

static char model_path[512];

/* A small model (dim 256, 2 layers, f32) shared by the cases. */
static const char *model(void) {
    if (!model_path[0]) {
        snprintf(model_path, sizeof model_path, "%s/base.gguf", test_tmpdir());
        test_mkmodel(model_path, "--dim 256 --heads 4 --kv-heads 1 --ff 512 --layers 2 --seed 3");
    }
    return model_path;
}

static llm_model *load_model(const char *path) {
    llm_model *m = NULL;
    char err[512];
    llm_model_params mp = llm_model_default_params();
    REQUIRE(llm_model_load(path, &mp, &m, err, sizeof err) == LLM_OK, "%s", err);
    return m;
}

/* mkmodel --lora-of the base with extra options; returns the path (static
 * rotating buffer). */
static const char *make_adapter(const char *name, const char *opts) {
    static char path[4][512];
    static int k;
    char *out = path[k++ & 3];
    snprintf(out, sizeof path[0], "%s/%s.gguf", test_tmpdir(), name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/mkmodel --lora-of %s %s --out %s 2>&1", test_build_dir(), test_shq(model()), opts,
             test_shq(out));
    int st = 0;
    char *o = test_run_capture(cmd, &st);
    REQUIRE(st == 0, "mkmodel failed: %s\n%s", cmd, o ? o : "");
    free(o);
    return out;
}

static llm_context *ctx_with(const llm_model *m, llm_lora **loras, const float *scales, int n, int n_batch) {
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = 128;
    cp.n_batch = n_batch;
    cp.n_threads = 2;
    cp.all_logits = true;
    cp.loras = loras;
    cp.lora_scales = scales;
    cp.n_lora = n;
    llm_context *c = NULL;
    char err[512];
    REQUIRE(llm_context_new(m, &cp, &c, err, sizeof err) == LLM_OK, "%s", err);
    return c;
}

static double max_diff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* ------------------------------------------------------------------ */

TEST(adapter_loads_and_reports_itself) {
    llm_model *m = load_model(model());
    const char *p = make_adapter("a", "--lora-rank 4 --lora-alpha 8 --lora-targets q,v,embd,output --seed 5");
    llm_lora *l = NULL;
    char err[512];
    REQUIRE(llm_lora_load(m, p, &l, err, sizeof err) == LLM_OK, "%s", err);
    llm_lora_info in;
    llm_lora_get_info(l, &in);
    CHECK_EQ_STR(in.path, p);
    CHECK(in.alpha == 8.0f, "%g", in.alpha);
    CHECK_EQ_INT(in.max_rank, 4);
    CHECK_EQ_INT(in.n_pairs, 2 * 2 + 2);    /* q, v in 2 layers + embd + output */
    char sha[65], sha2[65];
    REQUIRE(llm_lora_sha256(l, sha) == LLM_OK);
    size_t len = 0;
    char *bytes = test_read_file(p, &len);
    REQUIRE(bytes);
    llm_sha256_hex(bytes, len, sha2);
    CHECK_EQ_STR(sha, sha2);
    free(bytes);
    llm_lora_free(l);
    llm_lora_free(NULL);
    llm_model_free(m);
}

/* One pair on layer 0's attn_q: with alpha 0 the scale is the user's, and
 * llm_lora_add moves the output by scale * B (A x), computed here in double
 * from the dequantized A and B; a slot without a pair is left alone. */
TEST(one_pair_adds_scale_b_a_x) {
    llm_model *m = load_model(model());
    const char *p = make_adapter("q0", "--lora-rank 3 --lora-alpha 0 --lora-targets q --seed 9");
    llm_lora *l = NULL;
    char err[512];
    REQUIRE(llm_lora_load(m, p, &l, err, sizeof err) == LLM_OK, "%s", err);
    const llm_lora_pair *pr = &l->pairs[LLM_LORA_SLOT(0, LLM_LORA_Q)];
    REQUIRE(pr->a.data && pr->b.data && pr->rank == 3);
    CHECK(!l->pairs[LLM_LORA_SLOT(0, LLM_LORA_K)].a.data);
    int n_in = pr->a.cols, n_out = pr->b.rows;
    CHECK_EQ_INT(n_in, 256);
    CHECK_EQ_INT(n_out, 256);
    float *A = malloc(sizeof(float) * 3 * n_in), *B = malloc(sizeof(float) * n_out * 3);
    float *x = malloc(sizeof(float) * 2 * n_in), *y = malloc(sizeof(float) * 2 * n_out);
    REQUIRE(A && B && x && y);
    llm_dequantize_row(pr->a.type, pr->a.data, A, 3 * n_in);
    llm_dequantize_row(pr->b.type, pr->b.data, B, 3 * n_out);
    for (int i = 0; i < 2 * n_in; i++) x[i] = (float)sin(0.37 * i);
    for (int i = 0; i < 2 * n_out; i++) y[i] = 1.0f;
    llm_lora *ls[1] = {l};
    float sc[1] = {-0.25f};
    llm_lora_run *r = NULL;
    REQUIRE(llm_lora_run_new(m, ls, sc, 1, 8, &r, err, sizeof err) == LLM_OK, "%s", err);
    llm_lora_add(r, NULL, LLM_LORA_SLOT(0, LLM_LORA_Q), x, 2, y);
    double worst = 0;
    for (int t = 0; t < 2; t++)
        for (int o = 0; o < n_out; o++) {
            double acc = 0;
            for (int k = 0; k < 3; k++) {
                double ax = 0;
                for (int i = 0; i < n_in; i++) ax += (double)A[k * n_in + i] * x[t * n_in + i];
                acc += (double)B[o * 3 + k] * ax;
            }
            worst = fmax(worst, fabs(y[t * n_out + o] - (1.0 - 0.25 * acc)));
        }
    printf("  # one pair: max |y - (1 + s B A x)| = %.3g\n", worst);
    CHECK(worst < 1e-5, "%.3g", worst);
    /* a slot the adapter does not touch is left alone */
    for (int i = 0; i < 2 * n_out; i++) y[i] = 1.0f;
    llm_lora_add(r, NULL, LLM_LORA_SLOT(1, LLM_LORA_K), x, 2, y);
    for (int i = 0; i < 2 * n_out; i++) if (y[i] != 1.0f) { CHECK(0, "slot without a pair changed y[%d]", i); break; }
    llm_lora_run_free(r);
    free(A); free(B); free(x); free(y);
    llm_lora_free(l);
    llm_model_free(m);
}

/* With adapters, feeding tokens one at a time, in chunks of 7, or all at
 * once gives the same logits (the B product runs in chunks of 32 tokens:
 * 40 tokens cross that), and scale 0 gives the base model exactly. */
TEST(prefill_decode_and_scale_zero_agree) {
    llm_model *m = load_model(model());
    const char *p = make_adapter("all", "--lora-rank 8 --lora-targets q,k,v,o,gate,up,down,embd,output --seed 11");
    llm_lora *l = NULL;
    char err[512];
    REQUIRE(llm_lora_load(m, p, &l, err, sizeof err) == LLM_OK, "%s", err);
    int nv = llm_n_vocab(m), n = 40;
    int32_t ids[40];
    for (int i = 0; i < n; i++) ids[i] = i == 0 ? 1 : 3 + (i * 37) % (nv - 3);
    float *L[3];
    const int batches[3] = {64, 1, 7};
    float one = 1.0f;
    for (int k = 0; k < 3; k++) {
        llm_context *c = ctx_with(m, &l, &one, 1, batches[k]);
        L[k] = malloc(sizeof(float) * (size_t)n * nv);
        REQUIRE(L[k]);
        for (int off = 0; off < n; off += batches[k]) {
            int nb = n - off < batches[k] ? n - off : batches[k];
            REQUIRE(llm_decode(c, ids + off, nb) == LLM_OK, "%s", llm_context_error(c));
            for (int i = 0; i < nb; i++) memcpy(L[k] + (size_t)(off + i) * nv, llm_get_logits(c, i), sizeof(float) * nv);
        }
        llm_context_free(c);
    }
    double d1 = max_diff(L[0], L[1], n * nv), d2 = max_diff(L[0], L[2], n * nv);
    printf("  # with an adapter: prefill vs one by one %.3g, vs chunks of 7 %.3g\n", d1, d2);
    CHECK(d1 <= 1e-4, "%.3g", d1);
    CHECK(d2 <= 1e-4, "%.3g", d2);
    /* scale 0: the base model's logits, bit for bit */
    float zero = 0.0f;
    llm_context *c0 = ctx_with(m, &l, &zero, 1, 64), *cb = ctx_with(m, NULL, NULL, 0, 64);
    REQUIRE(llm_decode(c0, ids, n) == LLM_OK && llm_decode(cb, ids, n) == LLM_OK);
    double dz = max_diff(llm_get_logits(c0, n - 1), llm_get_logits(cb, n - 1), nv);
    CHECK(dz == 0.0, "scale 0 changed the logits by %.3g", dz);
    /* and scale 1 changes them */
    double d = max_diff(L[0] + (size_t)(n - 1) * nv, llm_get_logits(cb, n - 1), nv);
    CHECK(d > 0.05, "the adapter changed the logits by only %.3g", d);
    llm_context_free(c0);
    llm_context_free(cb);
    for (int k = 0; k < 3; k++) free(L[k]);
    llm_lora_free(l);
    llm_model_free(m);
}

/* Copies the adapter at src to name.gguf with one change: a key dropped
 * and/or set, a tensor dropped or renamed. Returns the path (static). */static const char *rewrite(const char *src, const char *name, const char *drop_key, const char *set_key,
                           const char *set_val, const char *drop_tensor, const char *rename_from,
                           const char *rename_to) {
    static char out[512];
    snprintf(out, sizeof out, "%s/%s.gguf", test_tmpdir(), name);
    gguf_file *f = NULL;
    char err[512];
    REQUIRE(llm_gguf_open(src, &f, err, sizeof err) == 0, "%s", err);
    gguf_writer *w = llm_gguf_writer_new();
    REQUIRE(w);
    for (uint64_t i = 0; i < llm_gguf_kv_count(f); i++) {
        const gguf_kv *kv = llm_gguf_kv_at(f, i);
        if (drop_key && llm_gguf_str_eq(kv->key, drop_key)) continue;
        llm_gguf_writer_copy_kv(w, kv);
    }
    if (set_key) llm_gguf_writer_set_str(w, set_key, set_val);
    for (uint64_t i = 0; i < llm_gguf_tensor_count(f); i++) {
        const gguf_tensor *t = llm_gguf_tensor_at(f, i);
        char tn[200];
        snprintf(tn, sizeof tn, "%.*s", (int)t->name.len, t->name.ptr);
        if (drop_tensor && !strcmp(tn, drop_tensor)) continue;
        if (rename_from && !strcmp(tn, rename_from)) snprintf(tn, sizeof tn, "%s", rename_to);
        llm_gguf_writer_add_tensor(w, tn, t->type, t->n_dims, t->ne, t->data);
    }
    REQUIRE(llm_gguf_writer_write(w, out, err, sizeof err) == 0, "%s", err);
    llm_gguf_writer_free(w);
    llm_gguf_close(f);
    return out;
}

static void expect_error(llm_model *m, const char *path, int want_rc, const char *want) {
    llm_lora *l = (llm_lora *)1;
    char err[512] = "";
    int rc = llm_lora_load(m, path, &l, err, sizeof err);
    CHECK(rc == want_rc, "%s: rc %d, want %d (%s)", path, rc, want_rc, err);
    CHECK(l == NULL, "out is cleared on failure");
    CHECK(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
    CHECK(strstr(err, path) != NULL || want_rc == LLM_ERR_FORMAT, "error names the file: %s", err);
    printf("  # %s\n", err);
}

TEST(bad_adapters_are_clear_errors) {
    llm_model *m = load_model(model());
    const char *good = make_adapter("good", "--lora-rank 4 --lora-targets q,k --seed 13");
    /* a model file is not an adapter */
    expect_error(m, model(), LLM_ERR_FORMAT, "not a LoRA adapter");
    expect_error(m, rewrite(good, "notlora", "adapter.type", "adapter.type", "control_vector", NULL, NULL, NULL),
                 LLM_ERR_UNSUPPORTED, "adapter.type is not \"lora\"");
    expect_error(m, rewrite(good, "arch", "general.architecture", "general.architecture", "gpt2", NULL, NULL, NULL),
                 LLM_ERR_UNSUPPORTED, "does not match the model's (llama)");
    expect_error(m, rewrite(good, "half", NULL, NULL, NULL, "blk.1.attn_k.weight.lora_b", NULL, NULL),
                 LLM_ERR_FORMAT, "LoRA pair for blk.1.attn_k.weight lacks lora_b");
    expect_error(m, rewrite(good, "unknown", NULL, NULL, NULL, NULL, "blk.0.attn_q.weight.lora_a",
                            "blk.7.attn_q.weight.lora_a"),
                 LLM_ERR_FORMAT, "has no weight blk.7.attn_q.weight");
    expect_error(m, rewrite(good, "suffix", NULL, NULL, NULL, NULL, "blk.0.attn_q.weight.lora_a",
                            "blk.0.attn_q.weight.lora_x"),
                 LLM_ERR_FORMAT, "is not a LoRA tensor");
    /* a tensor name is the adapter's bytes: a newline or ESC in it must not
     * split the message or reach a terminal (fuzz_lora found this) */
    {
        llm_lora *lx = (llm_lora *)1;
        char ex[512] = "";
        const char *p = rewrite(good, "ctl", NULL, NULL, NULL, NULL, "blk.0.attn_q.weight.lora_a",
                                "blk.0.attn_q.we\n\033[2J");
        CHECK(llm_lora_load(m, p, &lx, ex, sizeof ex) == LLM_ERR_FORMAT && lx == NULL, "%s", ex);
        CHECK(strstr(ex, "is not a LoRA tensor") != NULL, "%s", ex);
        for (const char *c = ex; *c; c++) CHECK((unsigned char)*c >= 0x20 && *c != 0x7f, "control byte in: %s", ex);
    }
    /* an adapter for a model of another width */
    char other[512];
    snprintf(other, sizeof other, "%s/other.gguf", test_tmpdir());
    test_mkmodel(other, "--dim 128 --heads 2 --kv-heads 1 --ff 256 --layers 2 --seed 3");
    char cmd[2048], wrong[600];
    snprintf(wrong, sizeof wrong, "%s/wrong.gguf", test_tmpdir());
    snprintf(cmd, sizeof cmd, "%s/mkmodel --lora-of %s --lora-targets q --out %s 2>/dev/null", test_build_dir(),
             test_shq(other), test_shq(wrong));
    REQUIRE(system(cmd) == 0);
    expect_error(m, wrong, LLM_ERR_FORMAT, "blk.0.attn_q.weight has shapes lora_a [128, 8], lora_b [8, 128], "
                 "which do not fit the model's [256, 256]");
    /* a missing file */
    llm_lora *l = NULL;
    char err[512];
    CHECK(llm_lora_load(m, "/nonexistent/a.gguf", &l, err, sizeof err) != LLM_OK && strstr(err, "/nonexistent/a.gguf"),
          "%s", err);
    /* more adapters than a context takes */
    REQUIRE(llm_lora_load(m, good, &l, err, sizeof err) == LLM_OK, "%s", err);
    llm_lora *many[17];
    for (int i = 0; i < 17; i++) many[i] = l;
    llm_context_params cp = llm_context_default_params();
    cp.loras = many;
    cp.n_lora = 17;
    llm_context *c = NULL;
    CHECK(llm_context_new(m, &cp, &c, err, sizeof err) == LLM_ERR_ARG && c == NULL, "%s", err);
    /* an adapter loaded for another model is refused by a context */
    llm_model *m2 = load_model(model());
    cp.n_lora = 1;
    CHECK(llm_context_new(m2, &cp, &c, err, sizeof err) == LLM_ERR_ARG && strstr(err, "another model"), "%s", err);
    llm_model_free(m2);
    llm_lora_free(l);
    llm_model_free(m);
}

/* The fingerprint is the file's SHA-256 without adapters (indexes built
 * before adapters existed keep matching) and changes with the adapter, its
 * scale and the order of several. */
TEST(fingerprint_follows_the_adapters) {
    llm_model *m = load_model(model());
    const char *p1 = make_adapter("f1", "--lora-rank 4 --lora-targets q --seed 21");
    const char *p2 = make_adapter("f2", "--lora-rank 4 --lora-targets v --seed 22");
    llm_lora *a = NULL, *b = NULL;
    char err[512];
    REQUIRE(llm_lora_load(m, p1, &a, err, sizeof err) == LLM_OK, "%s", err);
    REQUIRE(llm_lora_load(m, p2, &b, err, sizeof err) == LLM_OK, "%s", err);
    char base[65], f0[65], f1[65], f1h[65], f12[65], f21[65];
    REQUIRE(llm_model_sha256(m, base) == LLM_OK);
    REQUIRE(llm_fingerprint(m, NULL, NULL, 0, f0) == LLM_OK);
    CHECK_EQ_STR(f0, base);
    llm_lora *one[1] = {a}, *ab[2] = {a, b}, *ba[2] = {b, a};
    float s1 = 1.0f, sh = 0.5f, s11[2] = {1, 1};
    REQUIRE(llm_fingerprint(m, one, &s1, 1, f1) == LLM_OK);
    REQUIRE(llm_fingerprint(m, one, &sh, 1, f1h) == LLM_OK);
    REQUIRE(llm_fingerprint(m, ab, s11, 2, f12) == LLM_OK);
    REQUIRE(llm_fingerprint(m, ba, s11, 2, f21) == LLM_OK);
    CHECK(strcmp(f1, base) && strcmp(f1, f1h) && strcmp(f12, f21) && strcmp(f12, f1), "%s %s %s %s", f1, f1h, f12, f21);
    /* the same inputs give the same fingerprint, NULL scales mean 1 */
    char again[65];
    REQUIRE(llm_fingerprint(m, one, NULL, 1, again) == LLM_OK);
    CHECK_EQ_STR(again, f1);
    /* it is SHA-256 over the documented text */
    char ls[65], text[400], want[65];
    REQUIRE(llm_lora_sha256(a, ls) == LLM_OK);
    snprintf(text, sizeof text, "model %s\nlora %s 0.5\n", base, ls);
    llm_sha256_hex(text, strlen(text), want);
    CHECK_EQ_STR(f1h, want);
    llm_lora_free(a);
    llm_lora_free(b);
    llm_model_free(m);
}

TEST_MAIN(RUN(adapter_loads_and_reports_itself), RUN(one_pair_adds_scale_b_a_x),
          RUN(prefill_decode_and_scale_zero_agree), RUN(bad_adapters_are_clear_errors),
          RUN(fingerprint_follows_the_adapters))
