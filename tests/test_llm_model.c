/* test_llm_model.c — model loading: hyperparameters, weight views, tied
 * output, shape/type/architecture errors, vocab-only, info, SHA-256, CLI. */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm/ggml.h"
#include "llm/gguf.h"
#include "llm/kernels.h"
#include "llm/llm.h"
#include "llm/model.h"
#include "tests/test.h"

static const char *mkmodel(const char *name, const char *opts) {
    static char path[4][512];
    static int k;
    char *out = path[k++ & 3];
    snprintf(out, sizeof path[0], "%s/%s.gguf", test_tmpdir(), name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/mkmodel %s --out %s 2>&1", test_build_dir(), opts, test_shq(out));
    int st = 0;
    char *o = test_run_capture(cmd, &st);
    REQUIRE(st == 0, "mkmodel failed (%d): %s\n%s", st, cmd, o ? o : "");
    free(o);
    return out;
}

static int try_load(const char *path, llm_model **m, char *err, size_t errlen) {
    llm_model_params mp = llm_model_default_params();
    return llm_model_load(path, &mp, m, err, errlen);
}

/* Copies a GGUF, replacing one tensor's type/shape or one string key, by
 * rebuilding it through the writer from the parsed original. */
typedef struct {
    const char *tensor;         /* tensor to alter, or NULL */
    uint32_t new_type;          /* with its data re-sized (zero bytes) */
    int64_t new_ne1;            /* 0 = keep */
    const char *drop_tensor;    /* tensor to leave out, or NULL */
    const char *arch;           /* replace general.architecture, or NULL */
} alteration;

static const char *rewrite(const char *src, const char *name, const alteration *a) {
    static char out[512];
    snprintf(out, sizeof out, "%s/%s.gguf", test_tmpdir(), name);
    gguf_file *f = NULL;
    char err[512];
    REQUIRE(llm_gguf_open(src, &f, err, sizeof err) == 0, "%s", err);
    gguf_writer *w = llm_gguf_writer_new();
    REQUIRE(w);
    for (uint64_t i = 0; i < llm_gguf_kv_count(f); i++) {
        const gguf_kv *kv = llm_gguf_kv_at(f, i);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
        if (strcmp(key, "general.alignment") == 0) continue;
        if (a->arch && strcmp(key, "general.architecture") == 0) { llm_gguf_writer_set_str(w, key, a->arch); continue; }
        llm_gguf_writer_copy_kv(w, kv);
    }
    void *scratch = NULL;
    for (uint64_t i = 0; i < llm_gguf_tensor_count(f); i++) {
        const gguf_tensor *t = llm_gguf_tensor_at(f, i);
        char tn[128];
        snprintf(tn, sizeof tn, "%.*s", (int)t->name.len, t->name.ptr);
        if (a->drop_tensor && strcmp(tn, a->drop_tensor) == 0) continue;
        uint64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (a->tensor && strcmp(tn, a->tensor) == 0) {
            if (a->new_ne1) ne[1] = (uint64_t)a->new_ne1;
            uint32_t ty = a->new_type;
            size_t nb = llm_ggml_row_size(ty, ne[0]) * ne[1] * ne[2] * ne[3];
            free(scratch);
            scratch = calloc(1, nb ? nb : 1);
            REQUIRE(scratch);
            llm_gguf_writer_add_tensor(w, tn, ty, t->n_dims, ne, scratch);
        } else {
            llm_gguf_writer_add_tensor(w, tn, t->type, t->n_dims, ne, t->data);
        }
    }
    REQUIRE(llm_gguf_writer_write(w, out, err, sizeof err) == 0, "%s", err);
    free(scratch);
    llm_gguf_writer_free(w);
    llm_gguf_close(f);
    return out;
}

/* ---------------------------------------------------------------- cases */

TEST(stories260k_hyperparameters_and_views) {
    const char *path = test_require_shared("models/stories260K.gguf");
    llm_model *m = NULL;
    char err[512];
    REQUIRE(try_load(path, &m, err, sizeof err) == LLM_OK, "%s", err);
    llm_model_info in;
    llm_model_get_info(m, &in);
    /* SOURCES.md: dim 64, 5 layers, 8 heads, 4 KV heads, 512 tokens, F32 */
    CHECK_EQ_INT(in.n_embd, 64);
    CHECK_EQ_INT(in.n_layer, 5);
    CHECK_EQ_INT(in.n_head, 8);
    CHECK_EQ_INT(in.n_head_kv, 4);
    CHECK_EQ_INT(in.head_dim, 8);
    CHECK_EQ_INT(in.n_vocab, 512);
    CHECK_EQ_STR(in.arch, "llama");
    CHECK_EQ_INT(in.n_expert, 0);
    CHECK_EQ_INT(in.swa_window, 0);
    CHECK_EQ_INT(in.bos, 1);
    CHECK_EQ_INT(in.eos, 2);
    CHECK(in.rope_theta == 10000.0f, "%g", (double)in.rope_theta);
    CHECK(in.tensor_type_count[GGML_TYPE_F32] == in.n_tensors);
    CHECK(in.weight_bytes > 0 && in.weight_bytes <= in.file_size);
    CHECK(in.n_params * 4 == in.weight_bytes, "f32: %llu params, %llu bytes", (unsigned long long)in.n_params,
          (unsigned long long)in.weight_bytes);
    /* weights are views into the mapping, never copies */
    const uint8_t *base = llm_gguf_base(m->gguf);
    uint64_t size = llm_gguf_file_size(m->gguf);
    const uint8_t *q = m->layers[2].wq.data;
    CHECK(q >= base && q < base + size, "wq is not inside the mapping");
    CHECK((const uint8_t *)m->layers[4].ffn_norm >= base && (const uint8_t *)m->layers[4].ffn_norm < base + size);
    CHECK_EQ_INT(m->layers[0].wk.rows, 32);
    CHECK_EQ_INT(m->layers[0].wk.cols, 64);
    llm_model_free(m);
}

TEST(sha256_matches_the_published_sum) {
    const char *path = test_require_shared("models/stories260K.gguf");
    llm_model *m = NULL;
    char err[512], sha[65];
    REQUIRE(try_load(path, &m, err, sizeof err) == LLM_OK, "%s", err);
    REQUIRE(llm_model_sha256(m, sha) == LLM_OK);
    /* from ../shared/models/SOURCES.md */
    CHECK_EQ_STR(sha, "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d");
    REQUIRE(llm_model_sha256(m, sha) == LLM_OK);    /* cached */
    CHECK_EQ_STR(sha, "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d");
    llm_model_free(m);
}

/* SHA-256 of the model at path through a fresh load; *full counts whether
 * the file was hashed in full. */
static void sha_of(const char *path, char sha[65], uint64_t *full) {
    llm_model *m = NULL;
    char err[512];
    REQUIRE(try_load(path, &m, err, sizeof err) == LLM_OK, "%s", err);
    uint64_t before = llm_sha256_full_hashes();
    REQUIRE(llm_model_sha256(m, sha) == LLM_OK);
    *full = llm_sha256_full_hashes() - before;
    llm_model_free(m);
}

/* The SHA-256 of the whole file at path, computed here. */
static void real_sha(const char *path, char sha[65]) {
    size_t len = 0;
    char *b = test_read_file(path, &len);
    REQUIRE(b);
    llm_sha256_hex(b, len, sha);
    free(b);
}

/* The per-user cache: an unchanged file is not hashed again; any change to
 * it (even with its mtime put back) is; a cache others could have written
 * (group-writable file or folder, a symlink) is not believed. */
TEST(sha256_cache_skips_unchanged_files_and_distrusts_others) {
    char cache[600], path[600], sha[65], want[65];
    uint64_t full;
    snprintf(cache, sizeof cache, "%s/cache", test_tmpdir());
    setenv("MRAG_CACHE_DIR", cache, 1);
    snprintf(path, sizeof path, "%s", mkmodel("cached", "--dim 64 --heads 4 --ff 128 --layers 1 --vocab-size 300 --seed 9"));
    real_sha(path, want);
    sha_of(path, sha, &full);
    CHECK_EQ_STR(sha, want);
    CHECK_EQ_INT(full, 1);
    /* the folder was made private, the file is private */
    struct stat st;
    char cfile[700];
    snprintf(cfile, sizeof cfile, "%s/sha256-v1", cache);
    REQUIRE(stat(cache, &st) == 0);
    CHECK((st.st_mode & 0777) == 0700, "%o", st.st_mode & 0777);
    REQUIRE(stat(cfile, &st) == 0);
    CHECK((st.st_mode & 0777) == 0600, "%o", st.st_mode & 0777);
    /* a second run: no full hash, the same sum */
    sha_of(path, sha, &full);
    CHECK_EQ_STR(sha, want);
    CHECK_EQ_INT(full, 0);
    /* a byte of tensor data changed — past the header and before the last
     * 4 KiB, so only the identity can tell — size and mtime put back: ctime
     * moved */
    REQUIRE(stat(path, &st) == 0);
    llm_model *pm = NULL;
    char perr[512];
    REQUIRE(try_load(path, &pm, perr, sizeof perr) == LLM_OK, "%s", perr);
    long at_byte = (long)llm_gguf_data_offset(pm->gguf) + 100;
    llm_model_free(pm);
    REQUIRE(at_byte < (long)st.st_size - 8192, "the test model is too small (%ld of %ld)", at_byte, (long)st.st_size);
    FILE *f = fopen(path, "r+b");
    REQUIRE(f);
    fseek(f, at_byte, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at_byte, SEEK_SET);
    fputc(c ^ 0x55, f);
    fclose(f);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    REQUIRE(utimensat(AT_FDCWD, path, times, 0) == 0);
    char want2[65];
    real_sha(path, want2);
    CHECK(strcmp(want, want2) != 0);
    sha_of(path, sha, &full);
    CHECK_EQ_STR(sha, want2);
    CHECK_EQ_INT(full, 1);
    /* a planted entry claiming another sum for this exact file: believed
     * only from a private cache. Rewrite the cache with the sum replaced and
     * make it group-writable: it is ignored (hashed, right sum). */
    size_t len = 0;
    char *text = test_read_file(cfile, &len);
    REQUIRE(text && strstr(text, want2));
    char *at = strstr(text, want2);
    memset(at, 'a', 64);
    REQUIRE(test_write_file(cfile, text, len) == 0);
    free(text);
    REQUIRE(chmod(cfile, 0660) == 0);
    sha_of(path, sha, &full);
    CHECK_EQ_STR(sha, want2);
    CHECK_EQ_INT(full, 1);
    /* that run rewrote the cache privately with the right sum */
    REQUIRE(stat(cfile, &st) == 0);
    CHECK((st.st_mode & 0777) == 0600, "%o", st.st_mode & 0777);
    sha_of(path, sha, &full);
    CHECK_EQ_INT(full, 0);
    /* a group-writable folder: nothing read or written */
    REQUIRE(chmod(cache, 0770) == 0);
    sha_of(path, sha, &full);
    CHECK_EQ_STR(sha, want2);
    CHECK_EQ_INT(full, 1);
    REQUIRE(chmod(cache, 0700) == 0);
    /* a symlinked cache file is not followed */
    char other[700];
    snprintf(other, sizeof other, "%s/elsewhere", test_tmpdir());
    REQUIRE(rename(cfile, other) == 0);
    REQUIRE(symlink(other, cfile) == 0);
    sha_of(path, sha, &full);
    CHECK_EQ_INT(full, 1);
    /* switched off */
    unlink(cfile);
    setenv("MRAG_SHA_CACHE", "off", 1);
    sha_of(path, sha, &full);
    sha_of(path, sha, &full);
    CHECK_EQ_INT(full, 1);
    CHECK_EQ_STR(sha, want2);
    unsetenv("MRAG_SHA_CACHE");
    unsetenv("MRAG_CACHE_DIR");
}

/* Logits of the last of n fixed tokens in a fresh context (malloc'd). */
static float *last_logits(const llm_model *m, int n) {
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 1;
    llm_context *c = NULL;
    char err[512];
    REQUIRE(llm_context_new(m, &cp, &c, err, sizeof err) == LLM_OK, "%s", err);
    int32_t ids[32];
    for (int i = 0; i < n && i < 32; i++) ids[i] = 1 + (i * 37) % 250;
    REQUIRE(llm_decode(c, ids, n) == LLM_OK, "%s", llm_context_error(c));
    int nv = llm_n_vocab(m);
    float *l = malloc(sizeof(float) * nv);
    REQUIRE(l);
    memcpy(l, llm_get_logits(c, -1), sizeof(float) * nv);
    llm_context_free(c);
    return l;
}

typedef struct {
    const llm_model *m;
    float *logits;
} defer_arg;

static void *defer_thread(void *a_) {
    defer_arg *a = a_;
    a->logits = last_logits(a->m, 20);
    return NULL;
}

/* defer_repack (what `mrag ingest` loads with): loading packs nothing —
 * a second ingest of an unchanged folder with a 4 GB model must not copy
 * 4 GB — the fingerprint is there at once, and the first forward pass packs
 * (two contexts starting together on two threads: one packs, the other
 * waits), after which the logits are bit for bit those of a model packed at
 * load. */
TEST(deferred_repack_packs_at_the_first_forward_pass) {
    const char *path = mkmodel("defer", "--type q4_0 --dim 256 --heads 4 --kv-heads 2 --ff 512 --layers 2 "
                                        "--vocab-size 300 --seed 4");
    llm_model *eager = NULL, *lazy = NULL;
    char err[512];
    REQUIRE(try_load(path, &eager, err, sizeof err) == LLM_OK, "%s", err);
    llm_model_params mp = llm_model_default_params();
    mp.defer_repack = true;
    REQUIRE(llm_model_load(path, &mp, &lazy, err, sizeof err) == LLM_OK, "%s", err);
    llm_model_info ie, il;
    llm_model_get_info(eager, &ie);
    llm_model_get_info(lazy, &il);
    bool packs = llm_pack_available(GGML_TYPE_Q4_0);
    CHECK(!packs || ie.packed_bytes > 0, "the eager model packed nothing");
    CHECK(il.packed_bytes == 0, "packed %llu bytes at load", (unsigned long long)il.packed_bytes);
    char s1[65], s2[65];
    REQUIRE(llm_model_sha256(lazy, s1) == LLM_OK && llm_model_sha256(eager, s2) == LLM_OK);
    CHECK_EQ_STR(s1, s2);
    llm_model_get_info(lazy, &il);
    CHECK(il.packed_bytes == 0, "hashing packed %llu bytes", (unsigned long long)il.packed_bytes);
    defer_arg a[2] = {{lazy, NULL}, {lazy, NULL}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) REQUIRE(pthread_create(&th[i], NULL, defer_thread, &a[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    llm_model_get_info(lazy, &il);
    CHECK(il.packed_bytes == ie.packed_bytes, "packed %llu bytes at first use, %llu at load",
          (unsigned long long)il.packed_bytes, (unsigned long long)ie.packed_bytes);
    float *want = last_logits(eager, 20);
    int nv = llm_n_vocab(eager);
    for (int i = 0; i < 2; i++) {
        REQUIRE(a[i].logits);
        CHECK(memcmp(a[i].logits, want, sizeof(float) * nv) == 0, "thread %d: logits differ from the eager model's", i);
        free(a[i].logits);
    }
    free(want);
    printf("  # packed %llu bytes at the first forward pass (SIMD level %d)\n", (unsigned long long)il.packed_bytes,
           (int)llm_simd_active());
    llm_model_free(lazy);
    llm_model_free(eager);
}

TEST(mistral_shaped_gqa_swa_moe_and_tied_load) {
    const char *dense = mkmodel("dense", "--dim 256 --heads 8 --kv-heads 2 --ff 512 --layers 2 --vocab-size 600 "
                                         "--rope-theta 1000000 --swa 64 --ctx 8192 --type q4_0 --seed 3");
    llm_model *m = NULL;
    char err[512];
    REQUIRE(try_load(dense, &m, err, sizeof err) == LLM_OK, "%s", err);
    llm_model_info in;
    llm_model_get_info(m, &in);
    CHECK_EQ_INT(in.n_head_kv, 2);
    CHECK_EQ_INT(in.head_dim, 32);
    CHECK_EQ_INT(in.n_vocab, 600);
    CHECK_EQ_INT(in.swa_window, 64);
    CHECK_EQ_INT(in.n_ctx_train, 8192);
    CHECK(in.rope_theta == 1e6f, "%g", (double)in.rope_theta);
    CHECK(!in.tied_output);
    CHECK_EQ_INT(m->layers[1].w_down.type, GGML_TYPE_Q4_0);
    CHECK(in.tensor_type_count[GGML_TYPE_Q4_0] > 0);
    llm_model_free(m);
    /* the window can be overridden (0 = none) */
    llm_model_params mp = llm_model_default_params();
    mp.swa_window = 0;
    REQUIRE(llm_model_load(dense, &mp, &m, err, sizeof err) == LLM_OK, "%s", err);
    llm_model_get_info(m, &in);
    CHECK_EQ_INT(in.swa_window, 0);
    llm_model_free(m);

    const char *moe = mkmodel("moe", "--dim 128 --heads 4 --kv-heads 1 --ff 256 --layers 1 --vocab-size 300 "
                                     "--experts 8 --experts-used 2 --tied --seed 4");
    REQUIRE(try_load(moe, &m, err, sizeof err) == LLM_OK, "%s", err);
    llm_model_get_info(m, &in);
    CHECK_EQ_INT(in.n_expert, 8);
    CHECK_EQ_INT(in.n_expert_used, 2);
    CHECK(in.tied_output);
    CHECK(m->output.data == m->tok_embd.data);
    CHECK_EQ_INT(m->layers[0].e_up.rows, 256);
    CHECK_EQ_INT(m->layers[0].e_up.cols, 128);
    CHECK(m->layers[0].e_up.stride == llm_ggml_row_size(m->layers[0].e_up.type, 128) * 256);
    /* the model runs */
    llm_context *c = NULL;
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = 32;
    REQUIRE(llm_context_new(m, &cp, &c, err, sizeof err) == LLM_OK, "%s", err);
    int32_t ids[3] = {1, 100, 200};
    CHECK_EQ_INT(llm_decode(c, ids, 3), LLM_OK);
    CHECK(llm_get_logits(c, -1) != NULL);
    llm_context_free(c);
    llm_model_free(m);
}

TEST(bad_shapes_types_and_architectures_are_named) {
    const char *src = mkmodel("base", "--dim 128 --heads 4 --kv-heads 2 --ff 256 --layers 2 --vocab-size 300 --seed 5");
    llm_model *m = NULL;
    char err[512];
    /* a tensor whose shape disagrees with the hyperparameters */
    alteration a1 = {.tensor = "blk.1.attn_k.weight", .new_type = GGML_TYPE_F32, .new_ne1 = 96};
    const char *p1 = rewrite(src, "badshape", &a1);
    CHECK_EQ_INT(try_load(p1, &m, err, sizeof err), LLM_ERR_FORMAT);
    CHECK(m == NULL);
    CHECK(strstr(err, "blk.1.attn_k.weight") && strstr(err, "shape"), "%s", err);
    /* a tensor type the engine does not run */
    alteration a2 = {.tensor = "blk.0.ffn_up.weight", .new_type = GGML_TYPE_MXFP4};
    const char *p2 = rewrite(src, "badtype", &a2);
    CHECK_EQ_INT(try_load(p2, &m, err, sizeof err), LLM_ERR_UNSUPPORTED);
    CHECK(strstr(err, "blk.0.ffn_up.weight") && strstr(err, "mxfp4"), "%s", err);
    /* a missing tensor */
    alteration a3 = {.drop_tensor = "blk.1.ffn_down.weight"};
    const char *p3 = rewrite(src, "missing", &a3);
    CHECK_EQ_INT(try_load(p3, &m, err, sizeof err), LLM_ERR_FORMAT);
    CHECK(strstr(err, "blk.1.ffn_down.weight") && strstr(err, "missing"), "%s", err);
    /* another architecture */
    alteration a4 = {.arch = "gpt2"};
    const char *p4 = rewrite(src, "gpt2", &a4);
    CHECK_EQ_INT(try_load(p4, &m, err, sizeof err), LLM_ERR_UNSUPPORTED);
    CHECK(strstr(err, "'gpt2'") != NULL, "%s", err);
    /* no output.weight: tied */
    alteration a5 = {.drop_tensor = "output.weight"};
    const char *p5 = rewrite(src, "tied", &a5);
    REQUIRE(try_load(p5, &m, err, sizeof err) == LLM_OK, "%s", err);
    CHECK(m->tied_output);
    llm_model_free(m);
    /* the unaltered copy loads (the rewrite itself is faithful) */
    alteration a0 = {0};
    const char *p0 = rewrite(src, "same", &a0);
    CHECK_EQ_INT(try_load(p0, &m, err, sizeof err), LLM_OK);
    llm_model_free(m);
}

TEST(missing_and_foreign_files_fail_cleanly) {
    llm_model *m = (llm_model *)1;
    char err[512];
    CHECK_EQ_INT(try_load("/nonexistent/model.gguf", &m, err, sizeof err), LLM_ERR_IO);
    CHECK(m == NULL);
    CHECK(strstr(err, "/nonexistent/model.gguf") != NULL, "%s", err);
    char path[600];
    snprintf(path, sizeof path, "%s/text.gguf", test_tmpdir());
    REQUIRE(test_write_file(path, "hello, not a gguf at all\n", 25) == 0);
    CHECK_EQ_INT(try_load(path, &m, err, sizeof err), LLM_ERR_FORMAT);
    CHECK(strstr(err, "text.gguf") != NULL, "%s", err);
    CHECK_EQ_INT(llm_model_load(NULL, NULL, &m, err, sizeof err), LLM_ERR_ARG);
    llm_model_free(NULL);
}

TEST(vocab_only_loads_the_tokenizer_and_refuses_a_context) {
    const char *path = test_require_shared("models/mistral-v0.1-vocab-derived.gguf");
    llm_model_params mp = llm_model_default_params();
    llm_model *m = NULL;
    char err[512];
    /* the full load fails: there are no weights */
    CHECK(llm_model_load(path, &mp, &m, err, sizeof err) != LLM_OK);
    CHECK(strstr(err, "token_embd.weight") != NULL, "%s", err);
    mp.vocab_only = true;
    REQUIRE(llm_model_load(path, &mp, &m, err, sizeof err) == LLM_OK, "%s", err);
    llm_model_info in;
    llm_model_get_info(m, &in);
    CHECK_EQ_INT(in.n_vocab, 32000);
    CHECK_EQ_INT(in.bos, 1);
    CHECK_EQ_INT(in.eos, 2);
    llm_context *c = NULL;
    CHECK_EQ_INT(llm_context_new(m, NULL, &c, err, sizeof err), LLM_ERR_ARG);
    CHECK(c == NULL);
    llm_model_free(m);
}

TEST(context_bytes_count_kv_cache_by_type) {
    const char *path = test_require_shared("models/stories260K.gguf");
    llm_model *m = NULL;
    char err[512];
    REQUIRE(try_load(path, &m, err, sizeof err) == LLM_OK, "%s", err);
    /* KV: 2 (K,V) x 5 layers x n_ctx x 32 (4 heads x 8) x element size */
    uint64_t f16_1k = llm_context_bytes(m, 1024, 64, false), f16_2k = llm_context_bytes(m, 2048, 64, false);
    uint64_t f32_1k = llm_context_bytes(m, 1024, 64, true);
    CHECK(f16_2k - f16_1k >= 2ull * 5 * 1024 * 32 * 2, "%llu", (unsigned long long)(f16_2k - f16_1k));
    CHECK(f16_2k - f16_1k <= 2ull * 5 * 1024 * 32 * 2 + 1024ull * 4 * 256, "%llu", (unsigned long long)(f16_2k - f16_1k));
    /* f32 doubles the cache and the batch's own K/V rows (64 x 32, K and V) */
    CHECK_EQ_INT(f32_1k - f16_1k, 2ull * 5 * 1024 * 32 * 2 + 2ull * 64 * 32 * 2);
    llm_model_free(m);
}

TEST(cli_model_info_and_embed) {
    const char *path = test_require_shared("models/stories260K.gguf");
    char cmd[2048];
    int st = 0;
    snprintf(cmd, sizeof cmd, "%s/mrag model-info %s 2>&1", test_build_dir(), test_shq(path));
    char *out = test_run_capture(cmd, &st);
    REQUIRE(out);
    if (st == 127) { free(out); SKIP("%s/mrag is not built", test_build_dir()); }
    CHECK_EQ_INT(st, 0);
    CHECK(strstr(out, "architecture") && strstr(out, "llama"), "%s", out);
    CHECK(strstr(out, "head_count_kv") && strstr(out, " 4\n"), "%s", out);
    CHECK(strstr(out, "vocab size") && strstr(out, "512"), "%s", out);
    CHECK(strstr(out, "f32 x") != NULL, "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s/mrag model-info /nonexistent.gguf 2>&1", test_build_dir());
    out = test_run_capture(cmd, &st);
    CHECK(st != 0);
    CHECK(out && strstr(out, "/nonexistent.gguf"), "%s", out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "%s/mrag embed -m %s --threads 1 'Once upon a time' 2>&1", test_build_dir(),
             test_shq(path));
    out = test_run_capture(cmd, &st);
    CHECK_EQ_INT(st, 0);
    REQUIRE(out && out[0] == '[', "%s", out ? out : "");
    int commas = 0;
    double ss = 0;
    for (char *p = out + 1; *p && *p != ']';) {
        char *end;
        double v = strtod(p, &end);
        REQUIRE(end != p, "not a number at '%.20s'", p);
        ss += v * v;
        p = end;
        if (*p == ',') { commas++; p++; }
    }
    CHECK_EQ_INT(commas, 63);
    CHECK(ss > 0.9999 && ss < 1.0001, "norm^2 %g", ss);
    free(out);
    snprintf(cmd, sizeof cmd, "%s/mrag embed -m %s --layer 99 x 2>&1", test_build_dir(), test_shq(path));
    out = test_run_capture(cmd, &st);
    CHECK(st != 0);
    CHECK(out && strstr(out, "layer"), "%s", out ? out : "");
    free(out);
}

TEST(sha256_matches_the_fips_180_vectors) {
    char out[65];
    llm_sha256_hex("", 0, out);
    CHECK_EQ_STR(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    llm_sha256_hex("abc", 3, out);
    CHECK_EQ_STR(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";   /* 56 bytes: two padding blocks */
    llm_sha256_hex(two, strlen(two), out);
    CHECK_EQ_STR(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *mil = malloc(1000000);
    REQUIRE(mil);
    memset(mil, 'a', 1000000);
    llm_sha256_hex(mil, 1000000, out);
    CHECK_EQ_STR(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(mil);
}

/* Writes a copy of the GGUF at src to dst with the 4 bytes at offset off
 * set to the float v. */
static void patch_f32(const char *src, const char *dst, uint64_t off, float v) {
    size_t n;
    char *b = test_read_file(src, &n);
    REQUIRE(b && off + 4 <= n);
    memcpy(b + off, &v, 4);
    REQUIRE(test_write_file(dst, b, n) == 0);
    free(b);
}

/* The file offset of the value of the F32 key in the GGUF at path. */
static uint64_t kv_f32_offset(const char *path, const char *key) {
    gguf_file *f = NULL;
    char err[256];
    REQUIRE(llm_gguf_open(path, &f, err, sizeof err) == 0, "%s", err);
    const gguf_kv *kv = llm_gguf_find_kv(f, key);
    REQUIRE(kv && kv->type == GGUF_TYPE_FLOAT32, "%s", key);
    /* key bytes, then the u32 type, then the value */
    uint64_t off = (uint64_t)((const uint8_t *)kv->key.ptr - llm_gguf_base(f)) + kv->key.len + 4;
    llm_gguf_close(f);
    return off;
}

TEST(non_finite_hyperparameters_and_weights_are_refused) {
    char model[600], bad[700], err[512];
    snprintf(model, sizeof model, "%s/m.gguf", test_tmpdir());
    test_mkmodel(model, "--dim 64 --layers 1 --heads 4 --kv-heads 1 --ff 128 --ctx 256 --type f32 --seed 3");
    snprintf(bad, sizeof bad, "%s.bad.gguf", model);
    static const char *const keys[] = {"llama.attention.layer_norm_rms_epsilon", "llama.rope.freq_base"};
    const float values[] = {INFINITY, NAN, -INFINITY, 1e30f};
    llm_model_params mp = llm_model_default_params();
    for (int k = 0; k < 2; k++)
        for (int v = 0; v < 4; v++) {
            if (k == 1 && v == 3) continue;     /* a huge rope base is a finite, usable number */
            patch_f32(model, bad, kv_f32_offset(model, keys[k]), values[v]);
            llm_model *m = NULL;
            int rc = llm_model_load(bad, &mp, &m, err, sizeof err);
            CHECK(rc == LLM_ERR_FORMAT && m == NULL, "%s = %g loaded (rc %d)", keys[k], (double)values[v], rc);
            CHECK(strstr(err, k ? "rope" : "rms"), "%s", err);
            llm_model_free(m);
        }
    /* a NaN weight: the model loads (weights are not scanned), but no
     * embedding or answer comes out of it as numbers */
    gguf_file *f = NULL;
    REQUIRE(llm_gguf_open(model, &f, err, sizeof err) == 0, "%s", err);
    const gguf_tensor *t = llm_gguf_find_tensor(f, "output_norm.weight");
    REQUIRE(t && t->type == GGML_TYPE_F32);
    uint64_t off = llm_gguf_data_offset(f) + t->offset;
    llm_gguf_close(f);
    patch_f32(model, bad, off, NAN);
    llm_model *m = NULL;
    REQUIRE(llm_model_load(bad, &mp, &m, err, sizeof err) == LLM_OK, "%s", err);
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = 128;
    cp.n_threads = 1;
    llm_context *c = NULL;
    REQUIRE(llm_context_new(m, &cp, &c, err, sizeof err) == LLM_OK, "%s", err);
    float vec[64];
    CHECK_EQ_INT(llm_embed(c, "Once upon a time", 16, vec), LLM_ERR_FORMAT);
    CHECK(strstr(llm_context_error(c), "non-finite"), "%s", llm_context_error(c));
    int32_t prompt[4];
    size_t np = 0;
    REQUIRE(llm_tokenize(m, "Once", 4, true, false, prompt, 4, &np) == LLM_OK && np > 0);
    llm_generate_params gp = llm_generate_default_params();
    gp.n_predict = 4;
    llm_generate_result res;
    CHECK_EQ_INT(llm_generate(c, prompt, (int)np, &gp, &res), LLM_ERR_FORMAT);
    CHECK(strstr(llm_context_error(c), "non-finite"), "%s", llm_context_error(c));
    llm_context_free(c);
    llm_model_free(m);
    /* the program says so instead of printing [nan, ...] */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/mrag embed -m %s --threads 1 'Once upon a time' 2>&1", test_build_dir(), test_shq(bad));
    int st;
    char *out = test_run_capture(cmd, &st);
    REQUIRE(out);
    if (st == 127) { free(out); SKIP("%s/mrag is not built", test_build_dir()); }
    CHECK(st != 0 && !strstr(out, "nan") && strstr(out, "non-finite"), "exit %d: %s", st, out);
    free(out);
}

TEST_MAIN(RUN(sha256_matches_the_fips_180_vectors), RUN(stories260k_hyperparameters_and_views), RUN(sha256_matches_the_published_sum),
          RUN(sha256_cache_skips_unchanged_files_and_distrusts_others), RUN(deferred_repack_packs_at_the_first_forward_pass),
          RUN(mistral_shaped_gqa_swa_moe_and_tied_load), RUN(bad_shapes_types_and_architectures_are_named),
          RUN(missing_and_foreign_files_fail_cleanly), RUN(vocab_only_loads_the_tokenizer_and_refuses_a_context),
          RUN(context_bytes_count_kv_cache_by_type), RUN(cli_model_info_and_embed),
          RUN(non_finite_hyperparameters_and_weights_are_refused))
