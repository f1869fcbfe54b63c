/* fuzz_tokenizer.c — libFuzzer target for the tokenizer: arbitrary text
 * through tokenize/detokenize/stream, and arbitrary GGUF bytes through the
 * vocabulary loader. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm/gguf.h"
#include "llm/llm.h"
#include "llm/tokenizer.h"

static llm_model *model;
static bool all_bytes;      /* the vocabulary has a <0xNN> token for every byte */

/* The Mistral vocabulary when ../shared is there, else a small generated one
 * (pieces for a few letters, "▁", byte tokens, control tokens). */
static llm_model *load_model(void) {
    const char *shared = getenv("MRAG_SHARED");
    char path[512];
    snprintf(path, sizeof path, "%s/models/mistral-v0.1-vocab-derived.gguf", shared && *shared ? shared : "../shared");
    if (access(path, R_OK) != 0) {
        static const char *base[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "ab", ("\xe2\x96\x81" "a"), "[INST]"};
        const char *pieces[9 + 256];
        char bytes[256][8];
        float scores[9 + 256];
        int32_t types[9 + 256];
        for (int i = 0; i < 9; i++) {
            pieces[i] = base[i];
            scores[i] = (float)-i;
            types[i] = i < 3 || i == 8 ? 3 : 1;
        }
        types[0] = 2;
        for (int b = 0; b < 256; b++) {
            snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
            pieces[9 + b] = bytes[b];
            scores[9 + b] = 0;
            types[9 + b] = 6;
        }
        gguf_writer *w = llm_gguf_writer_new();
        if (!w) abort();
        llm_gguf_writer_set_str(w, "general.architecture", "llama");
        llm_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
        llm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", pieces, 9 + 256);
        llm_gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, 9 + 256);
        llm_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, 9 + 256);
        snprintf(path, sizeof path, "/tmp/mrag-fuzz-vocab.%d.gguf", (int)getpid());
        char err[256];
        if (llm_gguf_writer_write(w, path, err, sizeof err) != 0) abort();
        llm_gguf_writer_free(w);
    }
    llm_model_params p = llm_model_default_params();
    p.vocab_only = true;
    llm_model *m = NULL;
    char err[512];
    if (llm_model_load(path, &p, &m, err, sizeof err) != LLM_OK) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err);
        abort();
    }
    return m;
}

static bool valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], lo = 0x80, hi = 0xBF;
        size_t k;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) k = 1;
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        else return false;
        if (i + k >= n) return false;
        for (size_t j = 1; j <= k; j++) {
            unsigned d = s[i + j];
            if (d < (j == 1 ? lo : 0x80) || d > (j == 1 ? hi : 0xBF)) return false;
        }
        i += k + 1;
    }
    return true;
}

static void fuzz_vocab_file(const uint8_t *data, size_t size) {
    gguf_file *f = NULL;
    char err[256];
    if (llm_gguf_open_memory(data, size, "fuzz.gguf", &f, err, sizeof err) != 0) return;
    llm_vocab *v = NULL;
    if (llm_vocab_load(f, &v, err, sizeof err) == LLM_OK && v) {
        int32_t ids[256];
        size_t n = 0;
        static const char text[] = "Hello <s>[INST] w\xc3\xb6rld \xff\xe2\x96\x81 </s>";
        int rc = llm_vocab_tokenize(v, text, sizeof text - 1, true, true, ids, 256, &n);
        if (rc == LLM_OK)
            for (size_t i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= llm_vocab_n(v)) abort();
        char out[1024];
        llm_vocab_detokenize_raw(v, ids, n < 256 ? n : 256, true, out, sizeof out);
        llm_vocab_free(v);
    }
    llm_gguf_close(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size >= 4 && memcmp(data, "GGUF", 4) == 0) {
        fuzz_vocab_file(data, size);
        return 0;
    }
    if (!model) {
        model = load_model();
        all_bytes = true;
        for (int b = 0; b < 256; b++) {
            char piece[8];
            snprintf(piece, sizeof piece, "<0x%02X>", b);
            if (llm_vocab_find(llm_model_vocab(model), piece, 6) < 0) all_bytes = false;
        }
    }
    const llm_vocab *v = llm_model_vocab(model);
    bool special = size && (data[0] & 1), bos = size && (data[0] & 2);
    const char *text = size ? (const char *)data + 1 : "";
    size_t len = size ? size - 1 : 0;

    size_t need = 0;
    int rc = llm_tokenize(model, text, len, bos, special, NULL, 0, &need);
    if (rc != LLM_OK && rc != LLM_ERR_ARG) abort();
    int32_t *ids = malloc((need + 1) * sizeof *ids);
    if (!ids) return 0;
    size_t n = 0;
    if (llm_tokenize(model, text, len, bos, special, ids, need, &n) != LLM_OK || n != need) abort();
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= llm_n_vocab(model)) abort();

    /* Without special parsing and BOS, the raw text comes back unless a
     * literal "▁" or a space swallowed by an invalid lead byte is in it. */
    bool exact = !special && !bos && !memmem(text, len, "\xe2\x96\x81", 3);
    for (size_t k = 0; exact && k < len; k++)
        if ((unsigned char)text[k] >= 0xC0 && memchr(text + k + 1, ' ', len - k - 1 < 3 ? len - k - 1 : 3)) exact = false;
    size_t nb = llm_vocab_detokenize_raw(v, ids, n, special, NULL, 0);
    char *back = malloc(nb + 1);
    if (back) {
        if (llm_vocab_detokenize_raw(v, ids, n, special, back, nb) != nb) abort();
        if (exact && all_bytes && (nb != len || memcmp(back, text, len) != 0)) abort();
        free(back);
    }

    /* Streaming equals the whole-sequence text, which is valid UTF-8. */
    size_t nw = llm_detokenize(model, ids, n, special, NULL, 0);
    char *whole = malloc(nw + 1), *streamed = malloc(nw + 64);
    if (whole && streamed) {
        if (llm_detokenize(model, ids, n, special, whole, nw + 1) != nw) abort();
        if (!valid_utf8((const unsigned char *)whole, nw)) abort();
        llm_detok d;
        llm_detok_init(&d, model, special);
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            int k = llm_detok_push(&d, ids[i], streamed + o, nw + 64 - o);
            if (k < 0) abort();
            o += (size_t)k;
        }
        int k = llm_detok_flush(&d, streamed + o, nw + 64 - o);
        if (k < 0) abort();
        o += (size_t)k;
        if (o != nw || memcmp(streamed, whole, nw) != 0) abort();
    }
    free(whole);
    free(streamed);
    free(ids);
    return 0;
}
