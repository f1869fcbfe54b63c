/* fuzz_gguf.c — libFuzzer target for the GGUF reader: open bytes, walk every key, array element and tensor. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/ggml.h"
#include "llm/gguf.h"

/* Reads every element of an array (recursing into nested arrays) and folds
 * the bytes into a checksum, so that out-of-range offsets are touched. */
static uint64_t walk_arr(const gguf_file *f, const gguf_arr *a, int depth) {
    uint64_t sum = 0;
    if (depth > 8) abort();     /* the reader limits nesting; deeper is a bug */
    for (uint64_t i = 0; i < a->n; i++) {
        if (a->elem_type == GGUF_TYPE_STRING) {
            gguf_str s;
            if (!llm_gguf_arr_str(f, a, i, &s)) abort();
            if (s.len) sum += (uint8_t)s.ptr[0] + (uint8_t)s.ptr[s.len - 1];
        } else if (a->elem_type == GGUF_TYPE_ARRAY) {
            gguf_arr e;
            if (!llm_gguf_arr_arr(f, a, i, &e)) abort();
            sum += walk_arr(f, &e, depth + 1);
        } else {
            int64_t v;
            float x;
            if (llm_gguf_arr_i64(a, i, &v)) sum += (uint64_t)v;
            if (llm_gguf_arr_f32(a, i, &x)) sum += (uint64_t)(x == x);
        }
    }
    if (a->n && a->nbytes) sum += a->data[0] + a->data[a->nbytes - 1];
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    char err[256];
    if (llm_gguf_open_memory(data, size, "fuzz.gguf", &f, err, sizeof err) != 0) {
        /* errors are one line that names the input */
        if (strncmp(err, "fuzz.gguf: ", 11) != 0 || strchr(err, '\n')) abort();
        return 0;
    }
    volatile uint64_t sum = 0;
    char key[256];
    for (uint64_t i = 0; i < llm_gguf_kv_count(f); i++) {
        const gguf_kv *kv = llm_gguf_kv_at(f, i);
        if (kv->type == GGUF_TYPE_ARRAY) sum += walk_arr(f, &kv->v.arr, 1);
        if (kv->type == GGUF_TYPE_STRING && kv->v.str.len) sum += (uint8_t)kv->v.str.ptr[kv->v.str.len - 1];
        /* the hash lookup finds each key (keys with a NUL cannot be looked up by C string) */
        if (kv->key.len < sizeof key && !memchr(kv->key.ptr, 0, kv->key.len)) {
            memcpy(key, kv->key.ptr, kv->key.len);
            key[kv->key.len] = 0;
            if (llm_gguf_find_kv(f, key) != kv) abort();
            uint32_t u;
            int32_t s;
            uint64_t u64;
            float x;
            bool b;
            gguf_str str;
            gguf_arr arr;
            sum += llm_gguf_get_u32(f, key, &u) + llm_gguf_get_i32(f, key, &s) + llm_gguf_get_u64(f, key, &u64) +
                   llm_gguf_get_f32(f, key, &x) + llm_gguf_get_bool(f, key, &b) + llm_gguf_get_str(f, key, &str) +
                   llm_gguf_get_arr(f, key, &arr);
        }
    }
    const uint8_t *end = data + size;
    for (uint64_t i = 0; i < llm_gguf_tensor_count(f); i++) {
        const gguf_tensor *t = llm_gguf_tensor_at(f, i);
        const uint8_t *d = t->data;
        if (d < data || d > end || t->nbytes > (uint64_t)(end - d) || t->nbytes == 0) abort();
        sum += d[0] + d[t->nbytes - 1];
        if (t->name.len < sizeof key && !memchr(t->name.ptr, 0, t->name.len)) {
            memcpy(key, t->name.ptr, t->name.len);
            key[t->name.len] = 0;
            if (llm_gguf_find_tensor(f, key) != t) abort();
        }
        if (t->nbytes != llm_ggml_row_size(t->type, t->ne[0]) * (t->ne[1] * t->ne[2] * t->ne[3])) abort();
    }
    (void)sum;
    llm_gguf_close(f);
    return 0;
}

/* ---------------------------------------------------------------- seeds
 * `fuzz_gguf -mrag_seeds=DIR` writes small valid GGUF files into DIR with
 * the project's writer and exits ("-seed" is libFuzzer's own flag for its
 * random seed, hence the longer name). */
static int write_seeds(const char *dir) {
    char path[4096], err[512];
    int rc = 0;
    /* 1: every value type, a nested array and tensors of several types */
    gguf_writer *w = llm_gguf_writer_new();
    llm_gguf_writer_set_str(w, "general.architecture", "llama");
    llm_gguf_writer_set_u32(w, "llama.embedding_length", 32);
    llm_gguf_writer_set_i32(w, "t.i32", -5);
    llm_gguf_writer_set_u64(w, "t.u64", 1ull << 40);
    llm_gguf_writer_set_f32(w, "t.f32", 0.5f);
    llm_gguf_writer_set_bool(w, "t.bool", true);
    int16_t i16[3] = {-1, 2, 3};
    double f64[2] = {1.0, -2.0};
    llm_gguf_writer_set_arr(w, "t.i16", GGUF_TYPE_INT16, i16, 3);
    llm_gguf_writer_set_arr(w, "t.f64", GGUF_TYPE_FLOAT64, f64, 2);
    const char *strs[3] = {"<unk>", "\xe2\x96\x81the", ""};
    llm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, 3);
    static const uint8_t nested[] = {
        5, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0,        /* [1i32, 2i32] */
        8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 'x'};  /* ["x"] */
    llm_gguf_writer_set_arr_raw(w, "t.nested", GGUF_TYPE_ARRAY, 2, nested, sizeof nested);
    static uint8_t payload[1024];
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 31);
    uint64_t ne_a[2] = {32, 2}, ne_b[1] = {32}, ne_c[3] = {32, 2, 2}, ne_d[1] = {256};
    llm_gguf_writer_add_tensor(w, "token_embd.weight", GGML_TYPE_F16, 2, ne_a, payload);
    llm_gguf_writer_add_tensor(w, "output_norm.weight", GGML_TYPE_F32, 1, ne_b, payload);
    llm_gguf_writer_add_tensor(w, "blk.0.ffn_up_exps.weight", GGML_TYPE_Q8_0, 3, ne_c, payload);
    llm_gguf_writer_add_tensor(w, "blk.0.q4k", GGML_TYPE_Q4_K, 1, ne_d, payload);
    snprintf(path, sizeof path, "%s/seed-model.gguf", dir);
    if (llm_gguf_writer_write(w, path, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); rc = 1; }
    llm_gguf_writer_free(w);
    /* 2: a vocab-only file with a few hundred strings */
    w = llm_gguf_writer_new();
    const char *toks[300];
    char buf[300][12];
    for (int i = 0; i < 300; i++) {
        snprintf(buf[i], sizeof buf[i], i < 256 ? "<0x%02X>" : "tok%d", i);
        toks[i] = buf[i];
    }
    float scores[300];
    for (int i = 0; i < 300; i++) scores[i] = -(float)i;
    llm_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    llm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 300);
    llm_gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, 300);
    llm_gguf_writer_set_u32(w, "general.alignment", 64);
    snprintf(path, sizeof path, "%s/seed-vocab.gguf", dir);
    if (llm_gguf_writer_write(w, path, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); rc = 1; }
    llm_gguf_writer_free(w);
    /* 3: the smallest valid file */
    w = llm_gguf_writer_new();
    snprintf(path, sizeof path, "%s/seed-empty.gguf", dir);
    if (llm_gguf_writer_write(w, path, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); rc = 1; }
    llm_gguf_writer_free(w);
    return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    for (int i = 1; i < *argc; i++)
        if (strncmp((*argv)[i], "-mrag_seeds=", 12) == 0) exit(write_seeds((*argv)[i] + 12));
    return 0;
}
