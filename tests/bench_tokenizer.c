/* bench_tokenizer.c — tokenizer throughput (tokens/s, MB/s) on 1 MB of mixed
 * text with the Mistral vocabulary: one 1 MB call, and 2 kB chunks as
 * ingestion tokenizes them. Not a test; run by `make bench-tok`. */
#define _GNU_SOURCE
#include "llm/gguf.h"
#include "llm/tokenizer.h"
#include "tests/test.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *const parts[] = {
    "The quick brown fox jumps over the lazy dog. ",
    "Retrieval-augmented generation answers questions from your own documents, citing the passages it used.\n",
    "Der schnelle braune Fuchs springt über den faulen Hund; Größenordnung, Straße. ",
    "Le cœur a ses raisons que la raison ne connaît point. Où est la bibliothèque ? ",
    "int main(void) {\n    for (size_t i = 0; i < n; i++) sum += a[i] * b[i];\n    return 0;\n}\n",
    "Revenue grew 12.5% to $1,234,567.89 in Q3 2024 (vs. 987,654 in 2023). ",
    "中文分词测试，日本語のテキストです。한국어 텍스트. ",
    "Emoji: 😀 👍🏽 🎉 ☕ ",
    "\n\n    Indented   text\twith\ttabs   and  runs of   spaces.\n",
};

/* Builds n bytes of text from the parts in a fixed pseudo-random order. */
static char *make_text(size_t n) {
    char *t = malloc(n + 64);
    if (!t) return NULL;
    size_t o = 0;
    uint32_t s = 12345;
    while (o < n) {
        s = s * 1103515245u + 12345u;
        const char *p = parts[(s >> 16) % (sizeof parts / sizeof parts[0])];
        size_t l = strlen(p);
        if (o + l > n) break;
        memcpy(t + o, p, l);
        o += l;
    }
    t[o] = 0;
    return t;
}

int main(void) {
    const char *path = test_shared_path("models/mistral-v0.1-vocab-derived.gguf");
    if (!path) {
        printf("bench_tokenizer: ../shared/models/mistral-v0.1-vocab-derived.gguf is absent; nothing measured\n");
        return 0;
    }
    gguf_file *f = NULL;
    llm_vocab *v = NULL;
    char err[512];
    if (llm_gguf_open(path, &f, err, sizeof err) != 0 || llm_vocab_load(f, &v, err, sizeof err) != LLM_OK) {
        fprintf(stderr, "bench_tokenizer: %s\n", err);
        return 1;
    }
    const size_t n = 1 << 20;
    char *text = make_text(n);
    size_t len = strlen(text);
    int32_t *ids = malloc((len + 8) * sizeof *ids);
    if (!text || !ids) return 1;

    /* One call over the whole megabyte, best of 3. */
    double best = 1e9;
    size_t n_tok = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        if (llm_vocab_tokenize(v, text, len, false, false, ids, len + 8, &n_tok) != LLM_OK) return 1;
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    printf("tokenize 1 MB in one call:  %zu bytes -> %zu tokens in %.1f ms: %.2f MB/s, %.0f tokens/s\n",
           len, n_tok, best * 1e3, (double)len / best / 1e6, (double)n_tok / best);

    /* 2 kB chunks (cut at a space), as the chunker feeds it; with special
     * parsing, best of 3. */
    best = 1e9;
    size_t total_tok = 0;
    for (int r = 0; r < 3; r++) {
        total_tok = 0;
        double t0 = now_s();
        for (size_t o = 0; o < len;) {
            size_t e = o + 2048 < len ? o + 2048 : len;
            while (e < len && e > o + 1024 && text[e] != ' ') e--;
            size_t k = 0;
            if (llm_vocab_tokenize(v, text + o, e - o, true, true, ids, len + 8, &k) != LLM_OK) return 1;
            total_tok += k;
            o = e;
        }
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    printf("tokenize 1 MB in 2 kB chunks: %zu tokens in %.1f ms: %.2f MB/s, %.0f tokens/s\n", total_tok,
           best * 1e3, (double)len / best / 1e6, (double)total_tok / best);

    /* Detokenization of the whole sequence (and a round-trip check). */
    if (llm_vocab_tokenize(v, text, len, false, false, ids, len + 8, &n_tok) != LLM_OK) return 1;
    char *back = malloc(len + 16);
    if (!back) return 1;
    double t0 = now_s();
    size_t nb = llm_vocab_detokenize_raw(v, ids, n_tok, false, back, len + 16);
    double dt = now_s() - t0;
    printf("detokenize:                 %zu tokens -> %zu bytes in %.1f ms: %.2f MB/s\n", n_tok, nb, dt * 1e3,
           (double)nb / dt / 1e6);
    if (nb != len || memcmp(back, text, len) != 0) printf("WARNING: the round trip differs from the text\n");
    free(back);
    free(ids);
    free(text);
    llm_vocab_free(v);
    llm_gguf_close(f);
    return 0;
}
