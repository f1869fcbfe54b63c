/* test_llm_gguf.c — the GGUF reader and writer: real files, hand-built files, defects, truncation, mutation. */
#define _GNU_SOURCE
#include "llm/gguf.h"
#include "llm/ggml.h"
#include "tests/test.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static bool asan_mode(void) {
    const char *e = getenv("MRAG_ASAN");
    return e && *e && strcmp(e, "0") != 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool str_is(gguf_str s, const char *c) {
    return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0;
}

/* An error message is one line that starts with "NAME: ". */
static bool good_error(const char *err, const char *name) {
    size_t n = strlen(name);
    return strncmp(err, name, n) == 0 && err[n] == ':' && err[n + 1] == ' ' && strlen(err) > n + 3 &&
           !strchr(err, '\n');
}

/* ---------------------------------------------------------------------
 * A tiny GGUF encoder of the test's own, independent of the writer under
 * test: little-endian appends into a growing buffer. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void b_raw(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void b_le(buf *b, uint64_t v, int n) {
    uint8_t t[8];
    for (int i = 0; i < n; i++) t[i] = (uint8_t)(v >> (8 * i));
    b_raw(b, t, (size_t)n);
}
static void b_str(buf *b, const char *s) { b_le(b, strlen(s), 8); b_raw(b, s, strlen(s)); }
static void b_key(buf *b, const char *k, uint32_t type) { b_str(b, k); b_le(b, type, 4); }
static void b_pad(buf *b, size_t align) { while (b->n % align) b_le(b, 0, 1); }
static void b_f32(buf *b, float f) { uint32_t u; memcpy(&u, &f, 4); b_le(b, u, 4); }
static void b_f64(buf *b, double f) { uint64_t u; memcpy(&u, &f, 8); b_le(b, u, 8); }
static void b_hdr(buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b_raw(b, "GGUF", 4);
    b_le(b, version, 4);
    b_le(b, n_tensors, 8);
    b_le(b, n_kv, 8);
}
static void b_tinfo(buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off) {
    b_str(b, name);
    b_le(b, n_dims, 4);
    for (uint32_t d = 0; d < n_dims; d++) b_le(b, ne[d], 8);
    b_le(b, type, 4);
    b_le(b, off, 8);
}

/* Opens bytes copied into an allocation of exactly their size, so that
 * AddressSanitizer sees any read past the end. */
static int open_exact(const uint8_t *data, size_t n, const char *name, gguf_file **out, char *err, size_t errlen) {
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) abort();
    memcpy(copy, data, n);
    int rc = llm_gguf_open_memory(copy, n, name, out, err, errlen);
    if (rc == 0) {
        /* walk everything while the copy lives, then drop the handle */
        for (uint64_t i = 0; i < llm_gguf_tensor_count(*out); i++) {
            const gguf_tensor *t = llm_gguf_tensor_at(*out, i);
            if ((const uint8_t *)t->data < copy || (const uint8_t *)t->data + t->nbytes > copy + n) rc = -2;
        }
        llm_gguf_close(*out);
        *out = NULL;
    }
    free(copy);
    return rc;
}

/* The hand-built file used by several cases: every value type, a string
 * array, a 2-level nested array, alignment 64 and three tensors. */
static buf build_all_types(void) {
    buf b = {0};
    b_hdr(&b, 3, 3, 19);
    b_key(&b, "general.alignment", GGUF_TYPE_UINT32); b_le(&b, 64, 4);
    b_key(&b, "t.u8", GGUF_TYPE_UINT8); b_le(&b, 200, 1);
    b_key(&b, "t.i8", GGUF_TYPE_INT8); b_le(&b, (uint8_t)-100, 1);
    b_key(&b, "t.u16", GGUF_TYPE_UINT16); b_le(&b, 60000, 2);
    b_key(&b, "t.i16", GGUF_TYPE_INT16); b_le(&b, (uint16_t)-30000, 2);
    b_key(&b, "t.u32", GGUF_TYPE_UINT32); b_le(&b, 4000000000u, 4);
    b_key(&b, "t.i32", GGUF_TYPE_INT32); b_le(&b, (uint32_t)-2000000000, 4);
    b_key(&b, "t.f32", GGUF_TYPE_FLOAT32); b_f32(&b, 1.5f);
    b_key(&b, "t.bool", GGUF_TYPE_BOOL); b_le(&b, 1, 1);
    b_key(&b, "t.str", GGUF_TYPE_STRING); b_str(&b, "h\xc3\xa9llo");
    b_key(&b, "t.u64", GGUF_TYPE_UINT64); b_le(&b, 0xfedcba9876543210ull, 8);
    b_key(&b, "t.i64", GGUF_TYPE_INT64); b_le(&b, (uint64_t)INT64_MIN, 8);
    b_key(&b, "t.f64", GGUF_TYPE_FLOAT64); b_f64(&b, -2.25);
    b_key(&b, "t.arr_i32", GGUF_TYPE_ARRAY); b_le(&b, GGUF_TYPE_INT32, 4); b_le(&b, 3, 8);
    b_le(&b, (uint32_t)-1, 4); b_le(&b, 7, 4); b_le(&b, 0x7fffffff, 4);
    b_key(&b, "t.arr_f32", GGUF_TYPE_ARRAY); b_le(&b, GGUF_TYPE_FLOAT32, 4); b_le(&b, 2, 8);
    b_f32(&b, 0.25f); b_f32(&b, -8.0f);
    b_key(&b, "t.arr_str", GGUF_TYPE_ARRAY); b_le(&b, GGUF_TYPE_STRING, 4); b_le(&b, 3, 8);
    b_str(&b, "a"); b_str(&b, ""); b_str(&b, "\xe2\x96\x81the");
    /* [[1u8, 2u8], ["x"], []] as arrays of arrays */
    b_key(&b, "t.nested", GGUF_TYPE_ARRAY); b_le(&b, GGUF_TYPE_ARRAY, 4); b_le(&b, 3, 8);
    b_le(&b, GGUF_TYPE_UINT8, 4); b_le(&b, 2, 8); b_le(&b, 1, 1); b_le(&b, 2, 1);
    b_le(&b, GGUF_TYPE_STRING, 4); b_le(&b, 1, 8); b_str(&b, "x");
    b_le(&b, GGUF_TYPE_INT64, 4); b_le(&b, 0, 8);
    /* [[[5i16]]] : three levels */
    b_key(&b, "t.deep", GGUF_TYPE_ARRAY); b_le(&b, GGUF_TYPE_ARRAY, 4); b_le(&b, 1, 8);
    b_le(&b, GGUF_TYPE_ARRAY, 4); b_le(&b, 1, 8);
    b_le(&b, GGUF_TYPE_INT16, 4); b_le(&b, 1, 8); b_le(&b, 5, 2);
    b_key(&b, "t.arr_bool", GGUF_TYPE_ARRAY); b_le(&b, GGUF_TYPE_BOOL, 4); b_le(&b, 2, 8);
    b_le(&b, 0, 1); b_le(&b, 1, 1);
    uint64_t ne_a[2] = {4, 3}, ne_b[1] = {64}, ne_c[3] = {32, 2, 2};
    b_tinfo(&b, "a", 2, ne_a, GGML_TYPE_F32, 0);           /* 48 bytes */
    b_tinfo(&b, "b.weight", 1, ne_b, GGML_TYPE_F16, 64);   /* 128 bytes */
    b_tinfo(&b, "c", 3, ne_c, GGML_TYPE_Q8_0, 192);        /* 4 blocks of 34 = 136 bytes */
    b_pad(&b, 64);
    for (int i = 0; i < 12; i++) b_f32(&b, (float)i);
    b_pad(&b, 64);
    for (int i = 0; i < 64; i++) b_le(&b, 0x3c00, 2);
    b_pad(&b, 64);
    for (int i = 0; i < 136; i++) b_le(&b, (uint8_t)i, 1);
    return b;
}

/* ===================================================================== */

TEST(stories260K_facts_match_llama_cpp) {
    const char *path = test_require_shared("models/stories260K.gguf");
    gguf_file *f = NULL;
    char err[512];
    REQUIRE(llm_gguf_open(path, &f, err, sizeof err) == 0, "%s", err);
    /* These facts come from node-llama-cpp's readGgufFileInfo on this file. */
    CHECK_EQ_INT(llm_gguf_version(f), 3);
    CHECK_EQ_INT(llm_gguf_file_size(f), 1185376);
    CHECK_EQ_INT(llm_gguf_alignment(f), 32);
    gguf_str s;
    CHECK(llm_gguf_get_str(f, "general.architecture", &s) && str_is(s, "llama"));
    CHECK(llm_gguf_get_str(f, "tokenizer.ggml.model", &s) && str_is(s, "llama"));
    uint32_t u = 0;
    CHECK(llm_gguf_get_u32(f, "llama.embedding_length", &u) && u == 64, "%u", u);
    CHECK(llm_gguf_get_u32(f, "llama.block_count", &u) && u == 5, "%u", u);
    CHECK(llm_gguf_get_u32(f, "llama.feed_forward_length", &u) && u == 172, "%u", u);
    CHECK(llm_gguf_get_u32(f, "llama.attention.head_count", &u) && u == 8, "%u", u);
    CHECK(llm_gguf_get_u32(f, "llama.attention.head_count_kv", &u) && u == 4, "%u", u);
    CHECK(llm_gguf_get_u32(f, "llama.context_length", &u) && u == 2048, "%u", u);
    CHECK(llm_gguf_get_u32(f, "llama.rope.dimension_count", &u) && u == 8, "%u", u);
    CHECK(llm_gguf_get_u32(f, "tokenizer.ggml.seperator_token_id", &u) && u == 4294967295u);
    int32_t i32;
    CHECK(!llm_gguf_get_i32(f, "tokenizer.ggml.seperator_token_id", &i32), "4294967295 does not fit an int32");
    CHECK(llm_gguf_get_i32(f, "tokenizer.ggml.eos_token_id", &i32) && i32 == 2);
    float eps = 0;
    CHECK(llm_gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps) && fabsf(eps - 1e-5f) < 1e-9f);
    CHECK(!llm_gguf_get_u32(f, "general.architecture", &u), "a string is not an integer");
    CHECK(!llm_gguf_get_str(f, "no.such.key", &s));
    gguf_arr a;
    REQUIRE(llm_gguf_get_arr(f, "tokenizer.ggml.tokens", &a));
    CHECK_EQ_INT(a.n, 512);
    CHECK(llm_gguf_arr_str(f, &a, 0, &s) && str_is(s, "<unk>"));
    CHECK(llm_gguf_arr_str(f, &a, 2, &s) && str_is(s, "</s>"));
    CHECK(llm_gguf_arr_str(f, &a, 3, &s) && str_is(s, "<0x00>"));
    CHECK(!llm_gguf_arr_str(f, &a, 512, &s), "index out of range");
    REQUIRE(llm_gguf_get_arr(f, "tokenizer.ggml.token_type", &a));
    int64_t v;
    CHECK(llm_gguf_arr_i64(&a, 0, &v) && v == 2);
    CHECK(llm_gguf_arr_i64(&a, 1, &v) && v == 3);
    CHECK(llm_gguf_arr_i64(&a, 3, &v) && v == 6);
    CHECK(!llm_gguf_arr_str(f, &a, 0, &s), "not a string array");
    REQUIRE(llm_gguf_get_arr(f, "tokenizer.ggml.scores", &a));
    float sc = 1;
    CHECK(llm_gguf_arr_f32(&a, 0, &sc) && sc == 0.0f);

    CHECK_EQ_INT(llm_gguf_tensor_count(f), 48);
    const gguf_tensor *t = llm_gguf_find_tensor(f, "token_embd.weight");
    REQUIRE(t);
    CHECK_EQ_INT(t->n_dims, 2);
    CHECK_EQ_INT(t->ne[0], 64);
    CHECK_EQ_INT(t->ne[1], 512);
    CHECK_EQ_INT(t->type, GGML_TYPE_F32);
    CHECK_EQ_INT(t->offset, 0);
    CHECK_EQ_INT(t->nbytes, 64 * 512 * 4);
    t = llm_gguf_find_tensor(f, "blk.0.attn_k.weight");
    REQUIRE(t);
    CHECK_EQ_INT(t->ne[0], 64);
    CHECK_EQ_INT(t->ne[1], 32);
    CHECK_EQ_INT(t->offset, 278784);
    t = llm_gguf_find_tensor(f, "output_norm.weight");
    REQUIRE(t);
    CHECK_EQ_INT(t->n_dims, 1);
    CHECK_EQ_INT(t->offset, 131072);
    CHECK(llm_gguf_find_tensor(f, "blk.4.ffn_norm.weight") != NULL);
    CHECK(llm_gguf_find_tensor(f, "blk.5.ffn_norm.weight") == NULL);
    /* Every block has llama's nine tensors with the shapes the
     * hyperparameters imply (dim 64, 8 heads of 8, 4 KV heads, ff 172), F32. */
    static const struct { const char *name; uint32_t nd; uint64_t ne0, ne1; } blk[] = {
        {"attn_norm", 1, 64, 1}, {"attn_q", 2, 64, 64}, {"attn_k", 2, 64, 32}, {"attn_v", 2, 64, 32},
        {"attn_output", 2, 64, 64}, {"ffn_norm", 1, 64, 1}, {"ffn_gate", 2, 64, 172},
        {"ffn_up", 2, 64, 172}, {"ffn_down", 2, 172, 64}};
    for (int l = 0; l < 5; l++)
        for (size_t k = 0; k < sizeof blk / sizeof blk[0]; k++) {
            char nm[64];
            snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, blk[k].name);
            t = llm_gguf_find_tensor(f, nm);
            if (!t) { CHECK(0, "%s missing", nm); continue; }
            CHECK(t->n_dims == blk[k].nd && t->ne[0] == blk[k].ne0 && t->ne[1] == blk[k].ne1 &&
                  t->type == GGML_TYPE_F32, "%s: %u dims [%llu, %llu] type %u", nm, t->n_dims,
                  (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], t->type);
        }
    /* Every tensor lies inside the file, at data_offset + offset. */
    uint64_t max_end = 0;
    for (uint64_t i = 0; i < llm_gguf_tensor_count(f); i++) {
        t = llm_gguf_tensor_at(f, i);
        CHECK((const uint8_t *)t->data == llm_gguf_base(f) + llm_gguf_data_offset(f) + t->offset);
        uint64_t end = llm_gguf_data_offset(f) + t->offset + t->nbytes;
        CHECK(end <= llm_gguf_file_size(f));
        if (end > max_end) max_end = end;
    }
    CHECK_EQ_INT(max_end, llm_gguf_file_size(f));   /* the F32 data ends exactly at the end of the file */
    /* The norm weights of a trained model are plausible floats. */
    t = llm_gguf_find_tensor(f, "output_norm.weight");
    float w0;
    memcpy(&w0, t->data, 4);
    CHECK(isfinite(w0) && fabsf(w0) > 0.01f && fabsf(w0) < 100.0f, "%g", w0);
    llm_gguf_close(f);
}

TEST(vocab_string_array_access_is_constant_time_and_exact) {
    const char *path = test_require_shared("models/mistral-v0.1-vocab-derived.gguf");
    gguf_file *f = NULL;
    char err[512];
    REQUIRE(llm_gguf_open(path, &f, err, sizeof err) == 0, "%s", err);
    CHECK_EQ_INT(llm_gguf_tensor_count(f), 0);
    gguf_arr a;
    REQUIRE(llm_gguf_get_arr(f, "tokenizer.ggml.tokens", &a));
    REQUIRE(a.n == 32000 && a.elem_type == GGUF_TYPE_STRING);
    /* Walk the encoded strings with the test's own loop and compare. */
    const uint8_t *p = a.data, *end = a.data + a.nbytes;
    for (uint64_t i = 0; i < a.n; i++) {
        REQUIRE(p + 8 <= end);
        uint64_t len;
        memcpy(&len, p, 8);
        gguf_str s;
        REQUIRE(llm_gguf_arr_str(f, &a, i, &s), "element %llu", (unsigned long long)i);
        if (s.len != len || (const uint8_t *)s.ptr != p + 8) {
            CHECK(0, "element %llu differs", (unsigned long long)i);
            break;
        }
        p += 8 + len;
    }
    CHECK(p == end);
    gguf_str s;
    CHECK(llm_gguf_arr_str(f, &a, 1, &s) && str_is(s, "<s>"));
    /* 32 passes over 32,000 strings backwards: with a linear scan per
     * access this would be ~16e9 steps; with the offset table it is 1e6. */
    double t0 = now_s();
    uint64_t total = 0;
    for (int pass = 0; pass < 32; pass++)
        for (uint64_t i = a.n; i-- > 0;) {
            llm_gguf_arr_str(f, &a, i, &s);
            total += s.len;
        }
    double dt = now_s() - t0;
    CHECK(total > 0);
    CHECK(dt < 1.0, "1e6 indexed accesses took %.3f s", dt);
    /* Key lookups hit the hash table. */
    t0 = now_s();
    int hits = 0;
    for (int i = 0; i < 100000; i++) hits += llm_gguf_find_kv(f, "tokenizer.ggml.bos_token_id") != NULL;
    CHECK_EQ_INT(hits, 100000);
    CHECK(now_s() - t0 < 1.0);
    uint32_t bos = 0;
    CHECK(llm_gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &bos) && bos == 1);
    bool add_bos = false;
    CHECK(llm_gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &add_bos) && add_bos);
    llm_gguf_close(f);
}

TEST(llama2_tiny_random_f16_tensors) {
    const char *path = test_require_shared("models/llama-2-tiny-random.gguf");
    gguf_file *f = NULL;
    char err[512];
    REQUIRE(llm_gguf_open(path, &f, err, sizeof err) == 0, "%s", err);
    CHECK_EQ_INT(llm_gguf_tensor_count(f), 12);
    const gguf_tensor *t = llm_gguf_find_tensor(f, "output.weight");
    REQUIRE(t);
    CHECK_EQ_INT(t->type, GGML_TYPE_F16);
    CHECK_EQ_INT(t->ne[0], 8);
    CHECK_EQ_INT(t->ne[1], 32000);
    CHECK_EQ_INT(t->offset, 514144);
    CHECK_EQ_INT(t->nbytes, 8 * 32000 * 2);
    t = llm_gguf_find_tensor(f, "blk.0.ffn_down.weight");
    REQUIRE(t);
    CHECK_EQ_INT(t->ne[0], 32);
    CHECK_EQ_INT(t->ne[1], 8);
    uint32_t ft = 0;
    CHECK(llm_gguf_get_u32(f, "general.file_type", &ft) && ft == 1);
    llm_gguf_close(f);
}

TEST(hand_built_file_every_value_type) {
    buf b = build_all_types();
    gguf_file *f = NULL;
    char err[512];
    REQUIRE(llm_gguf_open_memory(b.p, b.n, "hand.gguf", &f, err, sizeof err) == 0, "%s", err);
    CHECK_EQ_INT(llm_gguf_kv_count(f), 19);
    CHECK_EQ_INT(llm_gguf_alignment(f), 64);
    const gguf_kv *kv = llm_gguf_kv_at(f, 1);
    REQUIRE(kv);
    CHECK(str_is(kv->key, "t.u8") && kv->type == GGUF_TYPE_UINT8 && kv->v.u64 == 200);
    CHECK(llm_gguf_kv_at(f, 19) == NULL);
    kv = llm_gguf_find_kv(f, "t.i8");
    CHECK(kv && kv->type == GGUF_TYPE_INT8 && kv->v.i64 == -100);
    kv = llm_gguf_find_kv(f, "t.u16");
    CHECK(kv && kv->v.u64 == 60000);
    kv = llm_gguf_find_kv(f, "t.i16");
    CHECK(kv && kv->v.i64 == -30000);
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    float fl;
    bool bo;
    gguf_str s;
    CHECK(llm_gguf_get_u32(f, "t.u32", &u32) && u32 == 4000000000u);
    CHECK(!llm_gguf_get_i32(f, "t.u32", &i32));
    CHECK(llm_gguf_get_i32(f, "t.i32", &i32) && i32 == -2000000000);
    CHECK(!llm_gguf_get_u32(f, "t.i32", &u32), "negative values do not fit an unsigned getter");
    CHECK(llm_gguf_get_i32(f, "t.u8", &i32) && i32 == 200);
    CHECK(llm_gguf_get_f32(f, "t.f32", &fl) && fl == 1.5f);
    CHECK(llm_gguf_get_f32(f, "t.f64", &fl) && fl == -2.25f);
    CHECK(llm_gguf_get_f32(f, "t.i16", &fl) && fl == -30000.0f);
    CHECK(llm_gguf_get_bool(f, "t.bool", &bo) && bo);
    CHECK(!llm_gguf_get_bool(f, "t.u8", &bo));
    CHECK(llm_gguf_get_str(f, "t.str", &s) && str_is(s, "h\xc3\xa9llo"));
    CHECK(llm_gguf_get_u64(f, "t.u64", &u64) && u64 == 0xfedcba9876543210ull);
    CHECK(!llm_gguf_get_u32(f, "t.u64", &u32));
    CHECK(!llm_gguf_get_u64(f, "t.i64", &u64));
    kv = llm_gguf_find_kv(f, "t.i64");
    CHECK(kv && kv->v.i64 == INT64_MIN);
    gguf_arr a, e, e2;
    int64_t v;
    REQUIRE(llm_gguf_get_arr(f, "t.arr_i32", &a));
    CHECK(a.n == 3 && a.elem_type == GGUF_TYPE_INT32 && a.nbytes == 12);
    CHECK(llm_gguf_arr_i64(&a, 0, &v) && v == -1);
    CHECK(llm_gguf_arr_i64(&a, 2, &v) && v == 0x7fffffff);
    CHECK(!llm_gguf_arr_i64(&a, 3, &v));
    CHECK(!llm_gguf_arr_f32(&a, 0, &fl));
    REQUIRE(llm_gguf_get_arr(f, "t.arr_f32", &a));
    CHECK(llm_gguf_arr_f32(&a, 1, &fl) && fl == -8.0f);
    REQUIRE(llm_gguf_get_arr(f, "t.arr_str", &a));
    CHECK(llm_gguf_arr_str(f, &a, 0, &s) && str_is(s, "a"));
    CHECK(llm_gguf_arr_str(f, &a, 1, &s) && s.len == 0);
    CHECK(llm_gguf_arr_str(f, &a, 2, &s) && str_is(s, "\xe2\x96\x81the"));
    REQUIRE(llm_gguf_get_arr(f, "t.nested", &a));
    CHECK(a.n == 3 && a.elem_type == GGUF_TYPE_ARRAY);
    REQUIRE(llm_gguf_arr_arr(f, &a, 0, &e));
    CHECK(e.elem_type == GGUF_TYPE_UINT8 && e.n == 2 && e.nbytes == 2);
    CHECK(llm_gguf_arr_i64(&e, 1, &v) && v == 2);
    REQUIRE(llm_gguf_arr_arr(f, &a, 1, &e));
    CHECK(e.elem_type == GGUF_TYPE_STRING && e.n == 1);
    CHECK(llm_gguf_arr_str(f, &e, 0, &s) && str_is(s, "x"));
    REQUIRE(llm_gguf_arr_arr(f, &a, 2, &e));
    CHECK(e.elem_type == GGUF_TYPE_INT64 && e.n == 0);
    CHECK(!llm_gguf_arr_arr(f, &a, 3, &e));
    REQUIRE(llm_gguf_get_arr(f, "t.deep", &a));
    REQUIRE(llm_gguf_arr_arr(f, &a, 0, &e));
    REQUIRE(llm_gguf_arr_arr(f, &e, 0, &e2));
    CHECK(e2.elem_type == GGUF_TYPE_INT16 && llm_gguf_arr_i64(&e2, 0, &v) && v == 5);
    REQUIRE(llm_gguf_get_arr(f, "t.arr_bool", &a));
    CHECK(a.n == 2 && a.data[1] == 1);

    CHECK_EQ_INT(llm_gguf_tensor_count(f), 3);
    CHECK_EQ_INT(llm_gguf_data_offset(f) % 64, 0);
    const gguf_tensor *t = llm_gguf_find_tensor(f, "c");
    REQUIRE(t);
    CHECK(t->n_dims == 3 && t->ne[0] == 32 && t->ne[2] == 2 && t->ne[3] == 1);
    CHECK_EQ_INT(t->nbytes, 136);
    CHECK_EQ_INT(((const uint8_t *)t->data)[135], 135);
    t = llm_gguf_find_tensor(f, "a");
    REQUIRE(t);
    float x;
    memcpy(&x, (const uint8_t *)t->data + 11 * 4, 4);
    CHECK(x == 11.0f);
    t = llm_gguf_find_tensor(f, "b.weight");
    REQUIRE(t);
    CHECK(llm_ggml_fp16_to_fp32(*(const uint16_t *)t->data) == 1.0f);
    llm_gguf_close(f);
    free(b.p);
}

/* Builds a file from a header and a body callback and expects an error
 * containing `want`. */
static void expect_error(const buf *b, const char *want, int line) {
    gguf_file *f = NULL;
    char err[512] = "";
    int rc = open_exact(b->p, b->n, "bad.gguf", &f, err, sizeof err);
    if (rc == 0) { test_fail(__FILE__, line, "opened, expected an error with \"%s\"", want); return; }
    if (!good_error(err, "bad.gguf")) test_fail(__FILE__, line, "bad message: %s", err);
    if (!strstr(err, want)) test_fail(__FILE__, line, "message \"%s\" lacks \"%s\"", err, want);
}
#define EXPECT_ERROR(b, want) expect_error(&(b), want, __LINE__)

TEST(defects_give_named_errors) {
    buf b;
    double t0 = now_s();
    /* 2^60 strings: must fail before allocating anything. */
    b = (buf){0}; b_hdr(&b, 3, 0, 1);
    b_key(&b, "k", GGUF_TYPE_ARRAY); b_le(&b, GGUF_TYPE_STRING, 4); b_le(&b, 1ull << 60, 8); b_str(&b, "a");
    EXPECT_ERROR(b, "truncated: key 1 of 1 (k): array of 1152921504606846976 strings");
    free(b.p);
    b = (buf){0}; b_hdr(&b, 3, 0, 1);
    b_key(&b, "k", GGUF_TYPE_ARRAY); b_le(&b, GGUF_TYPE_UINT64, 4); b_le(&b, UINT64_MAX, 8);
    EXPECT_ERROR(b, "truncated");
    free(b.p);
    b = (buf){0}; b_hdr(&b, 3, 0, 1ull << 62);
    EXPECT_ERROR(b, "metadata key count 4611686018427387904 cannot fit");
    free(b.p);
    b = (buf){0}; b_hdr(&b, 3, UINT64_MAX, 0);
    EXPECT_ERROR(b, "tensor count");
    free(b.p);
    b = (buf){0}; b_hdr(&b, 3, 0, 1);
    b_key(&b, "k", GGUF_TYPE_STRING); b_le(&b, UINT64_MAX - 3, 8);
    EXPECT_ERROR(b, "truncated: key 1 of 1 (k)");
    free(b.p);
    CHECK(now_s() - t0 < 2.0, "huge counts must fail fast");

    b = (buf){0}; b_hdr(&b, 1, 0, 0);
    EXPECT_ERROR(b, "GGUF version 1 is not supported");
    free(b.p);
    b = (buf){0}; b_hdr(&b, 7, 0, 0);
    EXPECT_ERROR(b, "unknown GGUF version 7");
    free(b.p);
    b = (buf){0}; b_hdr(&b, 0x03000000, 0, 0);
    EXPECT_ERROR(b, "big-endian");
    free(b.p);
    b = (buf){0}; b_raw(&b, "GGML\x03\0\0\0", 8);
    EXPECT_ERROR(b, "not a GGUF file");
    free(b.p);
    b = (buf){0}; b_raw(&b, "GG", 2);
    EXPECT_ERROR(b, "not a GGUF file");
    free(b.p);

    b = (buf){0}; b_hdr(&b, 3, 0, 2);
    b_key(&b, "k", GGUF_TYPE_UINT8); b_le(&b, 1, 1);
    b_key(&b, "k", GGUF_TYPE_UINT8); b_le(&b, 2, 1);
    EXPECT_ERROR(b, "duplicate metadata key \"k\"");
    free(b.p);
    b = (buf){0}; b_hdr(&b, 3, 0, 1);
    b_key(&b, "k", 13); b_le(&b, 0, 8);
    EXPECT_ERROR(b, "invalid value type 13");
    free(b.p);
    b = (buf){0}; b_hdr(&b, 3, 0, 1);
    b_key(&b, "k", GGUF_TYPE_BOOL); b_le(&b, 2, 1);
    EXPECT_ERROR(b, "bool value 2");
    free(b.p);
    b = (buf){0}; b_hdr(&b, 3, 0, 1);
    b_key(&b, "", GGUF_TYPE_BOOL); b_le(&b, 1, 1);
    EXPECT_ERROR(b, "empty key name");
    free(b.p);
    /* nesting: 5 levels of arrays */
    b = (buf){0}; b_hdr(&b, 3, 0, 1);
    b_key(&b, "k", GGUF_TYPE_ARRAY);
    for (int i = 0; i < 5; i++) { b_le(&b, GGUF_TYPE_ARRAY, 4); b_le(&b, 1, 8); }
    b_le(&b, GGUF_TYPE_UINT8, 4); b_le(&b, 0, 8);
    EXPECT_ERROR(b, "nested deeper than");
    free(b.p);
    const char *bad_align_vals[] = {"0", "3", "96"};
    uint32_t aligns[] = {0, 3, 96};
    for (int i = 0; i < 3; i++) {
        b = (buf){0}; b_hdr(&b, 3, 0, 1);
        b_key(&b, "general.alignment", GGUF_TYPE_UINT32); b_le(&b, aligns[i], 4);
        char want[80];
        snprintf(want, sizeof want, "general.alignment %s is not a power of two", bad_align_vals[i]);
        EXPECT_ERROR(b, want);
        free(b.p);
    }
    b = (buf){0}; b_hdr(&b, 3, 0, 1);
    b_key(&b, "general.alignment", GGUF_TYPE_STRING); b_str(&b, "32");
    EXPECT_ERROR(b, "general.alignment has type string");
    free(b.p);

    uint64_t ne[4] = {32, 2, 1, 1};
    struct { uint32_t nd; uint64_t ne0, ne1; uint32_t type; uint64_t off; const char *want; } cases[] = {
        {5, 32, 2, GGML_TYPE_F32, 0, "5 dimensions"},
        {0, 32, 2, GGML_TYPE_F32, 0, "0 dimensions"},
        {2, 32, 0, GGML_TYPE_F32, 0, "dimension 1 is 0"},
        {2, 32, 2, 4, 0, "unknown ggml type 4"},
        {2, 32, 2, 99, 0, "unknown ggml type 99"},
        {2, 48, 2, GGML_TYPE_Q4_K, 0, "row length 48 is not a multiple of the q4_K block size 256"},
        {2, 32, 2, GGML_TYPE_F32, 16, "data offset 16 is not a multiple of the alignment 32"},
        {2, 32, 2, GGML_TYPE_F32, 1ull << 40, "beyond the file size"},
        {2, 32, 2, GGML_TYPE_F32, UINT64_MAX - 31, "beyond the file size"},
        {2, 1ull << 40, 1ull << 40, GGML_TYPE_F32, 0, "element count overflows"},
        {2, 1ull << 31, 1ull << 31, GGML_TYPE_F32, 0, "byte size overflows"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        b = (buf){0}; b_hdr(&b, 3, 1, 0);
        ne[0] = cases[i].ne0;
        ne[1] = cases[i].ne1;
        b_str(&b, "w");
        b_le(&b, cases[i].nd, 4);
        for (uint32_t d = 0; d < cases[i].nd && d < 4; d++) b_le(&b, ne[d], 8);
        if (cases[i].nd > 4) b_le(&b, 1, 8);
        b_le(&b, cases[i].type, 4);
        b_le(&b, cases[i].off, 8);
        b_pad(&b, 32);
        for (int k = 0; k < 64 * 4; k++) b_le(&b, 0, 1);
        expect_error(&b, cases[i].want, __LINE__);
        free(b.p);
    }
    /* duplicate tensor names, overlapping tensors, data past the end */
    uint64_t ne1[1] = {8};
    b = (buf){0}; b_hdr(&b, 3, 2, 0);
    b_tinfo(&b, "w", 1, ne1, GGML_TYPE_F32, 0);
    b_tinfo(&b, "w", 1, ne1, GGML_TYPE_F32, 32);
    b_pad(&b, 32); for (int k = 0; k < 64; k++) b_le(&b, 0, 1);
    EXPECT_ERROR(b, "duplicate tensor name \"w\"");
    free(b.p);
    uint64_t ne16[1] = {16};
    b = (buf){0}; b_hdr(&b, 3, 2, 0);
    b_tinfo(&b, "w", 1, ne16, GGML_TYPE_F32, 0);
    b_tinfo(&b, "v", 1, ne1, GGML_TYPE_F32, 32);
    b_pad(&b, 32); for (int k = 0; k < 96; k++) b_le(&b, 0, 1);
    EXPECT_ERROR(b, "tensors w and v overlap");
    free(b.p);
    b = (buf){0}; b_hdr(&b, 3, 1, 0);
    b_tinfo(&b, "w", 1, ne16, GGML_TYPE_F32, 0);
    b_pad(&b, 32); for (int k = 0; k < 63; k++) b_le(&b, 0, 1);
    EXPECT_ERROR(b, "truncated: tensor 1 of 1 (w) data ends at byte");
    free(b.p);
    char longname[80];
    memset(longname, 'n', 64);
    longname[64] = 0;
    b = (buf){0}; b_hdr(&b, 3, 1, 0);
    b_tinfo(&b, longname, 1, ne1, GGML_TYPE_F32, 0);
    EXPECT_ERROR(b, "length 64 exceeds the limit 63");
    free(b.p);
    /* A file with no tensors and nothing after the metadata is valid (vocab files). */
    b = (buf){0}; b_hdr(&b, 2, 0, 1);
    b_key(&b, "general.architecture", GGUF_TYPE_STRING); b_str(&b, "llama");
    gguf_file *f = NULL;
    char err[256];
    CHECK(open_exact(b.p, b.n, "ok.gguf", &f, err, sizeof err) == 0, "%s", err);
    free(b.p);
}

TEST(file_errors_name_the_file) {
    const char *dir = test_tmpdir();
    char path[512], err[512];
    gguf_file *f = (gguf_file *)1;
    snprintf(path, sizeof path, "%s/missing.gguf", dir);
    CHECK(llm_gguf_open(path, &f, err, sizeof err) != 0 && f == NULL);
    CHECK(good_error(err, path) && strstr(err, "No such file"), "%s", err);
    CHECK(llm_gguf_open(dir, &f, err, sizeof err) != 0);
    CHECK(good_error(err, dir) && strstr(err, "directory"), "%s", err);
    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    REQUIRE(test_write_file(path, "", 0) == 0);
    CHECK(llm_gguf_open(path, &f, err, sizeof err) != 0);
    CHECK(good_error(err, path) && strstr(err, "empty file"), "%s", err);
    snprintf(path, sizeof path, "%s/text.gguf", dir);
    REQUIRE(test_write_file(path, "hello world\n", 12) == 0);
    CHECK(llm_gguf_open(path, &f, err, sizeof err) != 0);
    CHECK(good_error(err, path) && strstr(err, "not a GGUF file (magic 68656c6c"), "%s", err);
    /* a truncated real file read from disk names its path */
    const char *real = test_shared_path("models/stories260K.gguf");
    if (real) {
        size_t n;
        char *bytes = test_read_file(real, &n);
        REQUIRE(bytes);
        snprintf(path, sizeof path, "%s/cut.gguf", dir);
        REQUIRE(test_write_file(path, bytes, n - 1) == 0);
        free(bytes);
        CHECK(llm_gguf_open(path, &f, err, sizeof err) != 0);
        CHECK(good_error(err, path) && strstr(err, "truncated: tensor 48 of 48 (blk.4.ffn_norm.weight)") &&
              strstr(err, "ends at byte 1185376 beyond the file size 1185375"), "%s", err);
    }
}

/* Every prefix of the hand-built file fails cleanly, except the whole. */
TEST(every_truncation_of_a_small_file_fails_cleanly) {
    buf b = build_all_types();
    char err[512];
    int ok = 0;
    for (size_t n = 0; n <= b.n; n++) {
        gguf_file *f = NULL;
        err[0] = 0;
        int rc = open_exact(b.p, n, "t.gguf", &f, err, sizeof err);
        if (n == b.n) { CHECK(rc == 0, "%s", err); continue; }
        if (rc == 0) { ok++; continue; }
        CHECK(rc == -1, "length %zu: tensor outside the data", n);
        if (!good_error(err, "t.gguf")) { CHECK(0, "length %zu: %s", n, err); break; }
        if (n >= 4 && !strstr(err, "truncated")) { CHECK(0, "length %zu: %s", n, err); break; }
    }
    CHECK_EQ_INT(ok, 0);
    free(b.p);
}

/* The real file: every length through the metadata and tensor infos, a
 * stride through the data, and each tensor's boundaries +-1. */
TEST(truncations_of_stories260K_fail_cleanly) {
    const char *path = test_require_shared("models/stories260K.gguf");
    size_t n;
    uint8_t *bytes = (uint8_t *)test_read_file(path, &n);
    REQUIRE(bytes);
    gguf_file *f = NULL;
    char err[512];
    REQUIRE(llm_gguf_open_memory(bytes, n, "s.gguf", &f, err, sizeof err) == 0, "%s", err);
    uint64_t data_off = llm_gguf_data_offset(f);
    size_t nt = llm_gguf_tensor_count(f);
    uint64_t *bounds = calloc(2 * nt, sizeof *bounds);
    for (size_t i = 0; i < nt; i++) {
        bounds[2 * i] = data_off + llm_gguf_tensor_at(f, i)->offset;
        bounds[2 * i + 1] = bounds[2 * i] + llm_gguf_tensor_at(f, i)->nbytes;
    }
    llm_gguf_close(f);
    size_t step = asan_mode() ? 3 : 1;
    int tried = 0, bad = 0;
    for (size_t len = 0; len < n; len += (len < data_off + 64 ? step : 4099)) {
        int rc = open_exact(bytes, len, "s.gguf", &f, err, sizeof err);
        tried++;
        if (rc != -1 || !good_error(err, "s.gguf")) {
            if (bad++ < 5) CHECK(0, "length %zu: rc %d: %s", len, rc, err);
        }
    }
    for (size_t i = 0; i < 2 * nt; i++)
        for (int d = -1; d <= 1; d++) {
            uint64_t len = bounds[i] + d;
            if (len >= n) continue;
            int rc = open_exact(bytes, len, "s.gguf", &f, err, sizeof err);
            tried++;
            if (rc != -1 || !good_error(err, "s.gguf") || (len > data_off && !strstr(err, "truncated: tensor"))) {
                if (bad++ < 5) CHECK(0, "length %llu: rc %d: %s", (unsigned long long)len, rc, err);
            }
        }
    CHECK(tried > 1000, "%d", tried);
    CHECK_EQ_INT(bad, 0);
    free(bounds);
    free(bytes);
}

static uint64_t rng_state = 0x1234567887654321ull;
static uint64_t rng(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Random bit flips and byte changes in the header region: each mutant either
 * opens with every tensor inside the file, or fails with a named error. */
static void mutate_and_check(const char *rel, int iters) {
    const char *path = test_require_shared(rel);
    size_t n;
    uint8_t *bytes = (uint8_t *)test_read_file(path, &n);
    REQUIRE(bytes);
    gguf_file *f = NULL;
    char err[512];
    REQUIRE(llm_gguf_open_memory(bytes, n, "m.gguf", &f, err, sizeof err) == 0, "%s", err);
    size_t region = llm_gguf_data_offset(f) < n ? llm_gguf_data_offset(f) : n;
    llm_gguf_close(f);
    /* Work on an exact-size heap copy so that ASan sees over-reads. */
    uint8_t *work = malloc(n);
    REQUIRE(work);
    memcpy(work, bytes, n);
    int opened = 0, failed = 0, bad = 0;
    for (int it = 0; it < iters; it++) {
        size_t pos[4];
        uint8_t old[4];
        int k = 1 + (int)(rng() % 4);
        for (int j = 0; j < k; j++) {
            /* Half the time aim at the first 4 KB where the counts and the
             * first keys live. */
            size_t lim = (rng() & 1) && region > 4096 ? 4096 : region;
            pos[j] = rng() % lim;
            old[j] = work[pos[j]];
            switch (rng() % 4) {
            case 0: work[pos[j]] ^= (uint8_t)(1u << (rng() % 8)); break;
            case 1: work[pos[j]] = (uint8_t)rng(); break;
            case 2: work[pos[j]] = 0xff; break;
            default: work[pos[j]] = 0; break;
            }
        }
        int rc = llm_gguf_open_memory(work, n, "m.gguf", &f, err, sizeof err);
        if (rc == 0) {
            opened++;
            for (uint64_t i = 0; i < llm_gguf_tensor_count(f); i++) {
                const gguf_tensor *t = llm_gguf_tensor_at(f, i);
                const uint8_t *d = t->data;
                if (d < work || d > work + n || t->nbytes > (uint64_t)(work + n - d)) {
                    if (bad++ < 5) CHECK(0, "iteration %d: tensor %llu outside the file", it, (unsigned long long)i);
                }
            }
            /* walk every key, and every string of every array */
            for (uint64_t i = 0; i < llm_gguf_kv_count(f); i++) {
                const gguf_kv *kv = llm_gguf_kv_at(f, i);
                if (kv->type == GGUF_TYPE_ARRAY && kv->v.arr.elem_type == GGUF_TYPE_STRING) {
                    gguf_str s;
                    uint64_t sum = 0;
                    for (uint64_t e = 0; e < kv->v.arr.n; e++)
                        if (llm_gguf_arr_str(f, &kv->v.arr, e, &s) && s.len) sum += (uint8_t)s.ptr[s.len - 1];
                    (void)sum;
                }
            }
            llm_gguf_close(f);
        } else {
            failed++;
            if (!good_error(err, "m.gguf") && bad++ < 5) CHECK(0, "iteration %d: %s", it, err);
        }
        for (int j = k - 1; j >= 0; j--) work[pos[j]] = old[j];
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(failed > iters / 20, "only %d of %d mutants were rejected", failed, iters);
    CHECK(opened > 0, "no mutant opened: the mutations are too coarse to test the success path");
    free(work);
    free(bytes);
}

TEST(mutations_of_stories260K_header) {
    mutate_and_check("models/stories260K.gguf", asan_mode() ? 1500 : 4000);
}

TEST(mutations_of_the_mistral_vocab) {
    mutate_and_check("models/mistral-v0.1-vocab-derived.gguf", asan_mode() ? 300 : 1000);
}

/* ------------------------------------------------------------ the writer */

TEST(writer_round_trip_every_type) {
    const char *dir = test_tmpdir();
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/w.gguf", dir);
    gguf_writer *w = llm_gguf_writer_new();
    REQUIRE(w);
    llm_gguf_writer_set_str(w, "general.architecture", "llama");
    llm_gguf_writer_set_u32(w, "a.u32", 4000000000u);
    llm_gguf_writer_set_i32(w, "a.i32", -7);
    llm_gguf_writer_set_u64(w, "a.u64", 1ull << 50);
    llm_gguf_writer_set_f32(w, "a.f32", 0.1f);
    llm_gguf_writer_set_bool(w, "a.bool", false);
    llm_gguf_writer_set_u32(w, "a.replaced", 1);
    llm_gguf_writer_set_u32(w, "a.replaced", 2);
    uint8_t u8s[3] = {1, 2, 255};
    int8_t i8s[2] = {-128, 127};
    uint16_t u16s[2] = {0, 65535};
    int16_t i16s[1] = {-32768};
    uint32_t u32s[2] = {7, 0xffffffffu};
    int32_t i32s[3] = {-1, 0, 1};
    float f32s[3] = {1.0f, -0.5f, 3e38f};
    uint8_t bools[3] = {1, 0, 1};
    uint64_t u64s[1] = {UINT64_MAX};
    int64_t i64s[2] = {INT64_MIN, INT64_MAX};
    double f64s[2] = {1e300, -0.0};
    llm_gguf_writer_set_arr(w, "arr.u8", GGUF_TYPE_UINT8, u8s, 3);
    llm_gguf_writer_set_arr(w, "arr.i8", GGUF_TYPE_INT8, i8s, 2);
    llm_gguf_writer_set_arr(w, "arr.u16", GGUF_TYPE_UINT16, u16s, 2);
    llm_gguf_writer_set_arr(w, "arr.i16", GGUF_TYPE_INT16, i16s, 1);
    llm_gguf_writer_set_arr(w, "arr.u32", GGUF_TYPE_UINT32, u32s, 2);
    llm_gguf_writer_set_arr(w, "arr.i32", GGUF_TYPE_INT32, i32s, 3);
    llm_gguf_writer_set_arr(w, "arr.f32", GGUF_TYPE_FLOAT32, f32s, 3);
    llm_gguf_writer_set_arr(w, "arr.bool", GGUF_TYPE_BOOL, bools, 3);
    llm_gguf_writer_set_arr(w, "arr.u64", GGUF_TYPE_UINT64, u64s, 1);
    llm_gguf_writer_set_arr(w, "arr.i64", GGUF_TYPE_INT64, i64s, 2);
    llm_gguf_writer_set_arr(w, "arr.f64", GGUF_TYPE_FLOAT64, f64s, 2);
    llm_gguf_writer_set_arr(w, "arr.empty", GGUF_TYPE_FLOAT32, NULL, 0);
    const char *strs[4] = {"<unk>", "", "\xe2\x96\x81hello", "tab\there"};
    llm_gguf_writer_set_arr_str(w, "arr.str", strs, 4);
    /* nested: [[1i32,2i32], ["q","r"]] encoded by the test's own encoder */
    buf nb = {0};
    b_le(&nb, GGUF_TYPE_INT32, 4); b_le(&nb, 2, 8); b_le(&nb, 1, 4); b_le(&nb, 2, 4);
    b_le(&nb, GGUF_TYPE_STRING, 4); b_le(&nb, 2, 8); b_str(&nb, "q"); b_str(&nb, "r");
    llm_gguf_writer_set_arr_raw(w, "arr.nested", GGUF_TYPE_ARRAY, 2, nb.p, nb.n);
    free(nb.p);
    /* tensors of several types and shapes; payload bytes are a pattern */
    static uint8_t payload[4096];
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 7 + 3);
    uint64_t ne_f32[2] = {5, 3}, ne_q8[2] = {64, 2}, ne_q4k[1] = {256}, ne_bf[3] = {2, 3, 4};
    llm_gguf_writer_add_tensor(w, "t.f32", GGML_TYPE_F32, 2, ne_f32, payload);
    llm_gguf_writer_add_tensor(w, "t.q8", GGML_TYPE_Q8_0, 2, ne_q8, payload + 1);
    llm_gguf_writer_add_tensor(w, "t.q4k", GGML_TYPE_Q4_K, 1, ne_q4k, payload + 2);
    llm_gguf_writer_add_tensor(w, "t.bf16", GGML_TYPE_BF16, 3, ne_bf, payload + 3);
    REQUIRE(llm_gguf_writer_write(w, path, err, sizeof err) == 0, "%s", err);
    llm_gguf_writer_free(w);

    /* No temporary file is left behind. */
    DIR *d = opendir(dir);
    REQUIRE(d);
    struct dirent *de;
    int entries = 0;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') { entries++; CHECK_EQ_STR(de->d_name, "w.gguf"); }
    closedir(d);
    CHECK_EQ_INT(entries, 1);

    size_t n;
    uint8_t *raw = (uint8_t *)test_read_file(path, &n);
    REQUIRE(raw);
    CHECK(memcmp(raw, "GGUF\x03\0\0\0", 8) == 0, "GGUF v3 magic and version");
    uint64_t cnt;
    memcpy(&cnt, raw + 8, 8);
    CHECK_EQ_INT(cnt, 4);
    memcpy(&cnt, raw + 16, 8);
    CHECK_EQ_INT(cnt, 21);
    free(raw);

    gguf_file *f = NULL;
    REQUIRE(llm_gguf_open(path, &f, err, sizeof err) == 0, "%s", err);
    CHECK_EQ_INT(llm_gguf_version(f), 3);
    CHECK_EQ_INT(llm_gguf_kv_count(f), 21);
    gguf_str s;
    CHECK(llm_gguf_get_str(f, "general.architecture", &s) && str_is(s, "llama"));
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    float fl;
    bool bo = true;
    CHECK(llm_gguf_get_u32(f, "a.u32", &u32) && u32 == 4000000000u);
    CHECK(llm_gguf_get_i32(f, "a.i32", &i32) && i32 == -7);
    CHECK(llm_gguf_get_u64(f, "a.u64", &u64) && u64 == 1ull << 50);
    CHECK(llm_gguf_get_f32(f, "a.f32", &fl) && fl == 0.1f);
    CHECK(llm_gguf_get_bool(f, "a.bool", &bo) && !bo);
    CHECK(llm_gguf_get_u32(f, "a.replaced", &u32) && u32 == 2);
    const gguf_kv *kv = llm_gguf_find_kv(f, "a.replaced");
    CHECK(kv && kv->type == GGUF_TYPE_UINT32);
    gguf_arr a, e;
    int64_t v;
    REQUIRE(llm_gguf_get_arr(f, "arr.u8", &a));
    CHECK(a.elem_type == GGUF_TYPE_UINT8 && a.n == 3 && llm_gguf_arr_i64(&a, 2, &v) && v == 255);
    REQUIRE(llm_gguf_get_arr(f, "arr.i8", &a));
    CHECK(llm_gguf_arr_i64(&a, 0, &v) && v == -128);
    REQUIRE(llm_gguf_get_arr(f, "arr.u16", &a));
    CHECK(llm_gguf_arr_i64(&a, 1, &v) && v == 65535);
    REQUIRE(llm_gguf_get_arr(f, "arr.i16", &a));
    CHECK(llm_gguf_arr_i64(&a, 0, &v) && v == -32768);
    REQUIRE(llm_gguf_get_arr(f, "arr.u32", &a));
    CHECK(llm_gguf_arr_i64(&a, 1, &v) && v == 0xffffffffll);
    REQUIRE(llm_gguf_get_arr(f, "arr.i32", &a));
    CHECK(a.n == 3 && llm_gguf_arr_i64(&a, 0, &v) && v == -1);
    REQUIRE(llm_gguf_get_arr(f, "arr.f32", &a));
    CHECK(llm_gguf_arr_f32(&a, 2, &fl) && fl == 3e38f);
    REQUIRE(llm_gguf_get_arr(f, "arr.bool", &a));
    CHECK(a.elem_type == GGUF_TYPE_BOOL && a.n == 3 && a.data[0] == 1 && a.data[1] == 0);
    REQUIRE(llm_gguf_get_arr(f, "arr.u64", &a));
    CHECK(!llm_gguf_arr_i64(&a, 0, &v), "UINT64_MAX does not fit an int64");
    REQUIRE(llm_gguf_get_arr(f, "arr.i64", &a));
    CHECK(llm_gguf_arr_i64(&a, 0, &v) && v == INT64_MIN);
    CHECK(llm_gguf_arr_i64(&a, 1, &v) && v == INT64_MAX);
    REQUIRE(llm_gguf_get_arr(f, "arr.f64", &a));
    double dd;
    memcpy(&dd, a.data, 8);
    CHECK(a.elem_type == GGUF_TYPE_FLOAT64 && dd == 1e300);
    REQUIRE(llm_gguf_get_arr(f, "arr.empty", &a));
    CHECK(a.n == 0 && a.elem_type == GGUF_TYPE_FLOAT32);
    REQUIRE(llm_gguf_get_arr(f, "arr.str", &a));
    CHECK_EQ_INT(a.n, 4);
    for (int i = 0; i < 4; i++) CHECK(llm_gguf_arr_str(f, &a, (uint64_t)i, &s) && str_is(s, strs[i]), "string %d", i);
    REQUIRE(llm_gguf_get_arr(f, "arr.nested", &a));
    CHECK(a.elem_type == GGUF_TYPE_ARRAY && a.n == 2);
    REQUIRE(llm_gguf_arr_arr(f, &a, 0, &e));
    CHECK(e.elem_type == GGUF_TYPE_INT32 && e.n == 2 && llm_gguf_arr_i64(&e, 1, &v) && v == 2);
    REQUIRE(llm_gguf_arr_arr(f, &a, 1, &e));
    CHECK(e.elem_type == GGUF_TYPE_STRING && llm_gguf_arr_str(f, &e, 1, &s) && str_is(s, "r"));

    CHECK_EQ_INT(llm_gguf_tensor_count(f), 4);
    const char *names[4] = {"t.f32", "t.q8", "t.q4k", "t.bf16"};
    uint64_t sizes[4] = {60, 136, 144, 48};
    for (int i = 0; i < 4; i++) {
        const gguf_tensor *t = llm_gguf_find_tensor(f, names[i]);
        REQUIRE(t, "%s", names[i]);
        CHECK(t == llm_gguf_tensor_at(f, (uint64_t)i), "tensor order kept");
        CHECK_EQ_INT(t->nbytes, sizes[i]);
        CHECK_EQ_INT((llm_gguf_data_offset(f) + t->offset) % 32, 0);
        CHECK(memcmp(t->data, payload + i, t->nbytes) == 0, "%s data", names[i]);
    }
    const gguf_tensor *t = llm_gguf_find_tensor(f, "t.bf16");
    CHECK(t->n_dims == 3 && t->ne[0] == 2 && t->ne[1] == 3 && t->ne[2] == 4 && t->ne[3] == 1);

    /* copy_kv: every key of this file into a new one, which reads the same */
    gguf_writer *w2 = llm_gguf_writer_new();
    for (uint64_t i = 0; i < llm_gguf_kv_count(f); i++) llm_gguf_writer_copy_kv(w2, llm_gguf_kv_at(f, i));
    char path2[512];
    snprintf(path2, sizeof path2, "%s/copy.gguf", dir);
    REQUIRE(llm_gguf_writer_write(w2, path2, err, sizeof err) == 0, "%s", err);
    llm_gguf_writer_free(w2);
    gguf_file *g = NULL;
    REQUIRE(llm_gguf_open(path2, &g, err, sizeof err) == 0, "%s", err);
    CHECK_EQ_INT(llm_gguf_kv_count(g), llm_gguf_kv_count(f));
    for (uint64_t i = 0; i < llm_gguf_kv_count(f); i++) {
        const gguf_kv *x = llm_gguf_kv_at(f, i), *y = llm_gguf_kv_at(g, i);
        CHECK(x->key.len == y->key.len && memcmp(x->key.ptr, y->key.ptr, x->key.len) == 0);
        CHECK(x->type == y->type);
        if (x->type == GGUF_TYPE_ARRAY)
            CHECK(x->v.arr.nbytes == y->v.arr.nbytes && x->v.arr.n == y->v.arr.n &&
                  memcmp(x->v.arr.data, y->v.arr.data, x->v.arr.nbytes) == 0);
        else if (x->type == GGUF_TYPE_STRING)
            CHECK(x->v.str.len == y->v.str.len && memcmp(x->v.str.ptr, y->v.str.ptr, x->v.str.len) == 0);
        else
            CHECK(memcmp(&x->v, &y->v, 8) == 0);
    }
    llm_gguf_close(g);
    llm_gguf_close(f);
}

TEST(writer_alignment_and_overwrite) {
    const char *dir = test_tmpdir();
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/a.gguf", dir);
    REQUIRE(test_write_file(path, "old contents", 12) == 0);
    gguf_writer *w = llm_gguf_writer_new();
    llm_gguf_writer_set_u32(w, "general.alignment", 256);
    float x[3] = {1, 2, 3};
    uint64_t ne[1] = {3};
    llm_gguf_writer_add_tensor(w, "x", GGML_TYPE_F32, 1, ne, x);
    llm_gguf_writer_add_tensor(w, "y", GGML_TYPE_F32, 1, ne, x);
    REQUIRE(llm_gguf_writer_write(w, path, err, sizeof err) == 0, "%s", err);
    llm_gguf_writer_free(w);
    gguf_file *f = NULL;
    REQUIRE(llm_gguf_open(path, &f, err, sizeof err) == 0, "%s", err);
    CHECK_EQ_INT(llm_gguf_alignment(f), 256);
    CHECK_EQ_INT(llm_gguf_data_offset(f) % 256, 0);
    CHECK_EQ_INT(llm_gguf_find_tensor(f, "y")->offset, 256);
    CHECK_EQ_INT(llm_gguf_file_size(f), llm_gguf_data_offset(f) + 512);
    llm_gguf_close(f);
}

TEST(writer_errors_are_sticky_and_named) {
    const char *dir = test_tmpdir();
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/e.gguf", dir);
    float x[64] = {0};
    uint64_t ne[2] = {48, 1};
    gguf_writer *w = llm_gguf_writer_new();
    llm_gguf_writer_add_tensor(w, "q", GGML_TYPE_Q4_0, 2, ne, x);
    llm_gguf_writer_set_u32(w, "later", 1);
    CHECK(llm_gguf_writer_write(w, path, err, sizeof err) != 0);
    CHECK(good_error(err, path) && strstr(err, "row length 48 is not a multiple of the q4_0 block size 32"), "%s", err);
    llm_gguf_writer_free(w);
    CHECK(access(path, F_OK) != 0, "nothing written");

    w = llm_gguf_writer_new();
    ne[0] = 32;
    llm_gguf_writer_add_tensor(w, "q", GGML_TYPE_F32, 1, ne, x);
    llm_gguf_writer_add_tensor(w, "q", GGML_TYPE_F32, 1, ne, x);
    CHECK(llm_gguf_writer_write(w, path, err, sizeof err) != 0 && strstr(err, "duplicate tensor name q"), "%s", err);
    llm_gguf_writer_free(w);

    w = llm_gguf_writer_new();
    uint8_t bad[12] = {8, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0};  /* an array of 5 strings with no strings */
    llm_gguf_writer_set_arr_raw(w, "k", GGUF_TYPE_ARRAY, 1, bad, sizeof bad);
    CHECK(llm_gguf_writer_write(w, path, err, sizeof err) != 0 && strstr(err, "invalid array encoding"), "%s", err);
    llm_gguf_writer_free(w);

    w = llm_gguf_writer_new();
    llm_gguf_writer_set_u32(w, "general.alignment", 48);
    CHECK(llm_gguf_writer_write(w, path, err, sizeof err) != 0 && strstr(err, "power of two"), "%s", err);
    llm_gguf_writer_free(w);

    w = llm_gguf_writer_new();
    llm_gguf_writer_set_str(w, "k", "v");
    snprintf(path, sizeof path, "%s/no/such/dir/x.gguf", dir);
    CHECK(llm_gguf_writer_write(w, path, err, sizeof err) != 0 && good_error(err, path), "%s", err);
    llm_gguf_writer_free(w);
}

/* A 4 GiB file opens without its data being read: the mapping is lazy. */
TEST(open_of_a_4GiB_file_touches_only_the_header) {
    const char *dir = test_tmpdir();
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/big.gguf", dir);
    buf b = {0};
    uint64_t ne[2] = {65536, 16384};    /* 2^30 floats = 4 GiB */
    b_hdr(&b, 3, 1, 1);
    b_key(&b, "general.architecture", GGUF_TYPE_STRING); b_str(&b, "llama");
    b_tinfo(&b, "huge", 2, ne, GGML_TYPE_F32, 0);
    b_pad(&b, 32);
    uint64_t total = b.n + (4ull << 30);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    bool ok = write(fd, b.p, b.n) == (ssize_t)b.n && ftruncate(fd, (off_t)total) == 0;
    close(fd);
    free(b.p);
    if (!ok) SKIP("cannot create a sparse 4 GiB file in %s", dir);
    double t0 = now_s();
    gguf_file *f = NULL;
    REQUIRE(llm_gguf_open(path, &f, err, sizeof err) == 0, "%s", err);
    double dt = now_s() - t0;
    CHECK(dt < 2.0, "open took %.3f s", dt);
    const gguf_tensor *t = llm_gguf_find_tensor(f, "huge");
    REQUIRE(t);
    CHECK_EQ_INT(t->nbytes, 4ull << 30);
    CHECK_EQ_INT(llm_gguf_file_size(f), total);
    /* mincore: almost none of the data pages are resident. */
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)t->data + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    size_t len = (size_t)(t->nbytes - (start - (uintptr_t)t->data)) & ~((size_t)pg - 1);
    size_t npages = len / (size_t)pg;
    unsigned char *vec = malloc(npages);
    REQUIRE(vec);
    if (mincore((void *)start, len, vec) == 0) {
        size_t resident = 0;
        for (size_t i = 0; i < npages; i++) resident += vec[i] & 1;
        CHECK(resident < npages / 100, "%zu of %zu pages resident", resident, npages);
    }
    free(vec);
    llm_gguf_close(f);
    unlink(path);
}

TEST_MAIN(RUN(stories260K_facts_match_llama_cpp), RUN(vocab_string_array_access_is_constant_time_and_exact),
          RUN(llama2_tiny_random_f16_tensors), RUN(hand_built_file_every_value_type),
          RUN(defects_give_named_errors), RUN(file_errors_name_the_file),
          RUN(every_truncation_of_a_small_file_fails_cleanly), RUN(truncations_of_stories260K_fail_cleanly),
          RUN(mutations_of_stories260K_header), RUN(mutations_of_the_mistral_vocab),
          RUN(writer_round_trip_every_type), RUN(writer_alignment_and_overwrite),
          RUN(writer_errors_are_sticky_and_named), RUN(open_of_a_4GiB_file_touches_only_the_header))
