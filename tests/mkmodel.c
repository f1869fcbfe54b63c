/* mkmodel.c — writes a deterministic random-weight Mistral/Mixtral-shaped GGUF (architecture llama) for tests and benchmarks. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/ggml.h"
#include "llm/gguf.h"
#include "llm/kernels.h"
#include "llm/llm.h"

/* llama.cpp's llama_ftype values for general.file_type. */
enum { FTYPE_F32 = 0, FTYPE_F16 = 1, FTYPE_Q4_0 = 2, FTYPE_Q4_1 = 3, FTYPE_Q8_0 = 7, FTYPE_Q5_0 = 8,
       FTYPE_Q5_1 = 9, FTYPE_Q2_K = 10, FTYPE_Q3_K_S = 11, FTYPE_Q3_K_M = 12, FTYPE_Q3_K_L = 13,
       FTYPE_Q4_K_S = 14, FTYPE_Q4_K_M = 15, FTYPE_Q5_K_S = 16, FTYPE_Q5_K_M = 17, FTYPE_Q6_K = 18,
       FTYPE_IQ4_NL = 25, FTYPE_IQ4_XS = 30, FTYPE_BF16 = 32 };

typedef struct {
    const char *name;
    uint32_t ggml;
    uint32_t ftype;
} type_opt;

/* --type: every weight matrix of this type ("pure", llama-quantize --pure). */
static const type_opt TYPES[] = {
    {"f32", GGML_TYPE_F32, FTYPE_F32},   {"f16", GGML_TYPE_F16, FTYPE_F16},
    {"bf16", GGML_TYPE_BF16, FTYPE_BF16}, {"q8_0", GGML_TYPE_Q8_0, FTYPE_Q8_0},
    {"q4_0", GGML_TYPE_Q4_0, FTYPE_Q4_0}, {"q4_k", GGML_TYPE_Q4_K, FTYPE_Q4_K_M},
    {"q5_k", GGML_TYPE_Q5_K, FTYPE_Q5_K_S}, {"q6_k", GGML_TYPE_Q6_K, FTYPE_Q6_K},
    {"q4_1", GGML_TYPE_Q4_1, FTYPE_Q4_1}, {"q5_0", GGML_TYPE_Q5_0, FTYPE_Q5_0},
    {"q5_1", GGML_TYPE_Q5_1, FTYPE_Q5_1}, {"iq4_nl", GGML_TYPE_IQ4_NL, FTYPE_IQ4_NL},
    {"q2_k", GGML_TYPE_Q2_K, FTYPE_Q2_K}, {"q3_k", GGML_TYPE_Q3_K, FTYPE_Q3_K_S},
    {"iq4_xs", GGML_TYPE_IQ4_XS, FTYPE_IQ4_XS},
};

/* --mix: llama-quantize's recipes (the ftype's base type, then per-tensor
 * choices by role and layer, as its tensor-type rules for architecture
 * llama without an importance matrix). */
static const type_opt MIXES[] = {
    {"q4_0", GGML_TYPE_Q4_0, FTYPE_Q4_0},       {"q4_1", GGML_TYPE_Q4_1, FTYPE_Q4_1},
    {"q5_0", GGML_TYPE_Q5_0, FTYPE_Q5_0},       {"q5_1", GGML_TYPE_Q5_1, FTYPE_Q5_1},
    {"q8_0", GGML_TYPE_Q8_0, FTYPE_Q8_0},       {"q2_k", GGML_TYPE_Q2_K, FTYPE_Q2_K},
    {"q3_k_s", GGML_TYPE_Q3_K, FTYPE_Q3_K_S},   {"q3_k_m", GGML_TYPE_Q3_K, FTYPE_Q3_K_M},
    {"q3_k_l", GGML_TYPE_Q3_K, FTYPE_Q3_K_L},   {"q4_k_s", GGML_TYPE_Q4_K, FTYPE_Q4_K_S},
    {"q4_k_m", GGML_TYPE_Q4_K, FTYPE_Q4_K_M},   {"q5_k_s", GGML_TYPE_Q5_K, FTYPE_Q5_K_S},
    {"q5_k_m", GGML_TYPE_Q5_K, FTYPE_Q5_K_M},   {"q6_k", GGML_TYPE_Q6_K, FTYPE_Q6_K},
    {"iq4_nl", GGML_TYPE_IQ4_NL, FTYPE_IQ4_NL}, {"iq4_xs", GGML_TYPE_IQ4_XS, FTYPE_IQ4_XS},
};

typedef struct {
    long dim, layers, heads, kv_heads, ff, vocab_size, ctx, swa, experts, experts_used;
    double rope_theta;
    bool tied, sparse;
    const type_opt *type;
    const type_opt *mix;        /* NULL: every matrix of type */
    uint64_t seed;
    const char *vocab_from, *out;
    /* --lora-of: write a LoRA adapter for that model instead */
    const char *lora_of, *lora_targets;
    long lora_rank;
    double lora_alpha, lora_std;
} opts;

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: mkmodel [options] --out FILE.gguf\n"
            "Writes a deterministic random-weight Mistral-shaped model (architecture llama).\n"
            "  --dim N            embedding length (default 256)\n"
            "  --layers N         blocks (default 2)\n"
            "  --heads N          query heads (default 4)\n"
            "  --kv-heads N       key/value heads, divides --heads (default 1)\n"
            "  --ff N             feed-forward length (default 512)\n"
            "  --vocab-from FILE  copy the tokenizer.ggml.* keys of a GGUF (e.g. a vocab GGUF)\n"
            "  --vocab-size N     or generate a SentencePiece byte-fallback vocab of N tokens (default 512, >= 260)\n"
            "  --ctx N            llama.context_length (default 2048)\n"
            "  --rope-theta X     llama.rope.freq_base (default 10000)\n"
            "  --swa W            llama.attention.sliding_window = W (default: none)\n"
            "  --experts N        mixture of experts with N experts (merged 3-D ffn_*_exps tensors)\n"
            "  --experts-used K   experts per token (default 2 with --experts)\n"
            "  --tied             no output.weight: the output head reuses token_embd\n"
            "  --sparse           weight matrices all zero, written as holes (a sparse file: multi-GB\n"
            "                     files for load and hash benchmarks; the model computes nothing useful)\n"
            "  --type T           f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|iq4_nl|q2_k|q3_k|q4_k|q5_k|q6_k|iq4_xs\n"
            "                     for every 2-D/3-D weight (default f32);\n"
            "                     norms and the router stay F32; K-quants need rows that are multiples of 256\n"
            "  --mix M            instead of --type, the per-tensor types llama-quantize picks for a file type:\n"
            "                     q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k_s q3_k_m q3_k_l q4_k_s q4_k_m q5_k_s\n"
            "                     q5_k_m q6_k iq4_nl iq4_xs (output.weight q6_k, attn_v/ffn_down bumped by\n"
            "                     layer, rows that do not fit a 256-block type fall back to a 32-block one)\n"
            "  --seed S           PRNG seed (default 1); same arguments give the same bytes\n"
            "  --lora-of FILE     write a random LoRA adapter (llama.cpp's GGUF LoRA format) for the model\n"
            "                     FILE instead of a model; --type sets its tensor type (default f32)\n"
            "  --lora-rank R      rank of every pair (default 8)\n"
            "  --lora-alpha X     adapter.lora.alpha (default 16; 0 = key absent: scale applies as is)\n"
            "  --lora-targets L   comma list of q,k,v,o,gate,up,down,embd,output (default q,k,v,o,gate,up,down)\n"
            "  --lora-std X       std of lora_b (default 0.02; lora_a is N(0, 1/n_in))\n"
            "  --out FILE         output path (written atomically)\n"
            "  --help             this text\n");
}

/* Parses a whole decimal integer in [lo, hi]; exits with a message otherwise. */
static long parse_long(const char *opt, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "mkmodel: %s: \"%s\" is not an integer in [%ld, %ld]\n", opt, s, lo, hi);
        exit(2);
    }
    return (long)v;
}

/* ------------------------------------------------------------------ PRNG
 * splitmix64 for uniforms, Box-Muller for normals. Seeded per tensor from
 * the seed and the tensor name, so a tensor's values do not depend on which
 * other tensors exist (e.g. --tied leaves the rest unchanged). */
typedef struct {
    uint64_t s;
    double spare;
    bool has_spare;
} rng_t;

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed, const char *name) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    r->s = seed ^ h;
    splitmix64(&r->s);
    r->has_spare = false;
}

static double rng_normal(rng_t *r) {
    if (r->has_spare) {
        r->has_spare = false;
        return r->spare;
    }
    /* u1 in (0, 1] so that log(u1) is finite */
    double u1 = ((splitmix64(&r->s) >> 11) + 1) * 0x1.0p-53;
    double u2 = (splitmix64(&r->s) >> 11) * 0x1.0p-53;
    double rad = sqrt(-2.0 * log(u1));
    r->spare = rad * sin(2.0 * M_PI * u2);
    r->has_spare = true;
    return rad * cos(2.0 * M_PI * u2);
}

/* ------------------------------------------------------------------ tensors */

typedef struct {
    gguf_writer *w;
    const opts *o;
    uint64_t n_params, n_bytes;
    int n_tensors;
    int i_attn_v, i_ffn_down;   /* --mix: tensors of these roles seen so far */
    int type_count[GGML_TYPE_COUNT];
} model_out;

/* ------------------------------------------------------------------ mixes */

/* llama-quantize's "more bits" layers: the first and last eighth and every
 * third in between. */
static bool use_more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* A 256-block type for a row that is not whole 256-blocks: the 32-block
 * type llama-quantize falls back to; F16 when even that does not fit. */
static uint32_t mix_fallback(uint32_t t, uint64_t ne0) {
    if (ne0 % llm_ggml_type_info(t)->blck_size == 0) return t;
    switch (t) {
    case GGML_TYPE_Q2_K: case GGML_TYPE_Q3_K: t = GGML_TYPE_Q4_0; break;
    case GGML_TYPE_Q4_K: t = GGML_TYPE_Q5_0; break;
    case GGML_TYPE_Q5_K: t = GGML_TYPE_Q5_1; break;
    case GGML_TYPE_Q6_K: t = GGML_TYPE_Q8_0; break;
    case GGML_TYPE_IQ4_XS: t = GGML_TYPE_IQ4_NL; break;
    default: break;
    }
    return ne0 % llm_ggml_type_info(t)->blck_size == 0 ? t : GGML_TYPE_F16;
}

/* The type llama-quantize gives tensor `name` (row length ne0) under the
 * --mix recipe. Counts attn_v and ffn_down tensors as it goes, so call it
 * once per tensor, in file order. */
static uint32_t mix_type(model_out *m, const char *name, uint64_t ne0) {
    const opts *o = m->o;
    uint32_t ft = o->mix->ftype, t = o->mix->ggml;
    int n_layer = (int)o->layers;
    bool moe8 = o->experts == 8;
    long gqa = o->heads / o->kv_heads;
    if (!strcmp(name, "output.weight") || (o->tied && !strcmp(name, "token_embd.weight"))) {
        if (ne0 % llm_ggml_type_info(t)->blck_size) t = GGML_TYPE_Q8_0;
        else if (t != GGML_TYPE_Q8_0) t = GGML_TYPE_Q6_K;
        return t;   /* no fallback step for the output head */
    }
    if (!strcmp(name, "token_embd.weight")) return mix_fallback(t, ne0);
    int layer = 0;
    sscanf(name, "blk.%d.", &layer);
    if (strstr(name, "attn_v.weight")) {
        int i = m->i_attn_v++;
        if (ft == FTYPE_Q2_K) t = gqa >= 4 ? GGML_TYPE_Q4_K : GGML_TYPE_Q3_K;
        else if (ft == FTYPE_Q3_K_M) t = i < 2 ? GGML_TYPE_Q5_K : GGML_TYPE_Q4_K;
        else if (ft == FTYPE_Q3_K_L) t = GGML_TYPE_Q5_K;
        else if ((ft == FTYPE_IQ4_NL || ft == FTYPE_IQ4_XS) && gqa >= 4) t = GGML_TYPE_Q5_K;
        else if ((ft == FTYPE_Q4_K_M || ft == FTYPE_Q5_K_M) && use_more_bits(i, n_layer)) t = GGML_TYPE_Q6_K;
        else if (ft == FTYPE_Q4_K_S && i < 4) t = GGML_TYPE_Q5_K;
        if (moe8) t = GGML_TYPE_Q8_0;
    } else if (strstr(name, "attn_k.weight")) {
        if (moe8) t = GGML_TYPE_Q8_0;
    } else if (strstr(name, "attn_output.weight")) {
        if (moe8) {
            if (ft == FTYPE_Q2_K || ft == FTYPE_Q3_K_S || ft == FTYPE_Q3_K_M || ft == FTYPE_IQ4_NL ||
                ft == FTYPE_Q4_K_S || ft == FTYPE_Q4_K_M || ft == FTYPE_IQ4_XS)
                t = GGML_TYPE_Q5_K;
        } else if (ft == FTYPE_Q2_K) t = GGML_TYPE_Q3_K;
        else if (ft == FTYPE_Q3_K_M) t = GGML_TYPE_Q4_K;
        else if (ft == FTYPE_Q3_K_L) t = GGML_TYPE_Q5_K;
    } else if (strstr(name, "ffn_down")) {
        /* dense models count the tensors, MoE ones read the layer from the name */
        int i = o->experts ? layer : m->i_ffn_down;
        m->i_ffn_down++;
        if (ft == FTYPE_Q2_K) t = GGML_TYPE_Q3_K;
        else if (ft == FTYPE_Q3_K_M) t = i < n_layer / 16 ? GGML_TYPE_Q5_K : GGML_TYPE_Q4_K;
        else if (ft == FTYPE_Q3_K_L) t = GGML_TYPE_Q5_K;
        else if (ft == FTYPE_Q4_K_M) { if (use_more_bits(i, n_layer)) t = GGML_TYPE_Q6_K; }
        else if (i < n_layer / 8 && (ft == FTYPE_IQ4_NL || ft == FTYPE_IQ4_XS)) t = GGML_TYPE_Q5_K;
        else if (ft == FTYPE_Q5_K_M && use_more_bits(i, n_layer)) t = GGML_TYPE_Q6_K;
        else if (ft == FTYPE_Q4_K_S && i < n_layer / 8) t = GGML_TYPE_Q5_K;
    }
    return mix_fallback(t, ne0);
}

/* Generates a tensor of shape ne (ne[0] innermost) with values mean + std*N(0,1),
 * converts it to `type` and adds it to the writer. Returns 0 or -1. */
static int add_tensor(model_out *m, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne,
                      double mean, double std) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++) n *= ne[d];
    if (m->o->mix && type != GGML_TYPE_F32) type = mix_type(m, name, ne[0]);
    const ggml_type_traits *tr = llm_ggml_type_info(type);
    if (m->o->sparse && n_dims >= 2 && ne[0] % tr->blck_size == 0) {
        /* --sparse: all-zero weights written as holes (benchmarks of loading
         * and hashing multi-GB files without generating or storing them) */
        llm_gguf_writer_add_tensor(m->w, name, type, n_dims, ne, NULL);
        m->type_count[type]++;
        m->n_params += n;
        m->n_bytes += llm_ggml_row_size(type, ne[0]) * (n / ne[0]);
        m->n_tensors++;
        return 0;
    }
    if (ne[0] % tr->blck_size) {
        fprintf(stderr, "mkmodel: tensor %s: row length %" PRIu64 " is not a multiple of %u, which %s needs "
                "(choose --dim/--ff/--heads so that rows are multiples of %u)\n",
                name, ne[0], tr->blck_size, tr->name, tr->blck_size);
        return -1;
    }
    float *x = malloc(n * sizeof *x);
    size_t nbytes = llm_ggml_row_size(type, ne[0]) * (n / ne[0]);
    void *q = malloc(nbytes ? nbytes : 1);
    if (!x || !q) {
        free(x);
        free(q);
        fprintf(stderr, "mkmodel: out of memory for tensor %s\n", name);
        return -1;
    }
    rng_t r;
    rng_seed(&r, m->o->seed, name);
    for (uint64_t i = 0; i < n; i++) x[i] = (float)(mean + std * rng_normal(&r));
    size_t got = llm_quantize(type, x, q, (int64_t)(n / ne[0]), (int64_t)ne[0]);
    free(x);
    if (got != nbytes) {
        free(q);
        fprintf(stderr, "mkmodel: tensor %s: quantization to %s failed\n", name, tr->name);
        return -1;
    }
    llm_gguf_writer_add_tensor(m->w, name, type, n_dims, ne, q);
    free(q);
    m->type_count[type]++;
    m->n_params += n;
    m->n_bytes += nbytes;
    m->n_tensors++;
    return 0;
}

static int add_2d(model_out *m, const char *name, uint32_t type, uint64_t ne0, uint64_t ne1, double std) {
    uint64_t ne[2] = {ne0, ne1};
    return add_tensor(m, name, type, 2, ne, 0.0, std);
}

/* RMSNorm weights: F32, near 1 so that activations keep their scale. */
static int add_norm(model_out *m, const char *name, uint64_t n) {
    uint64_t ne[1] = {n};
    return add_tensor(m, name, GGML_TYPE_F32, 1, ne, 1.0, 0.02);
}

/* ------------------------------------------------------------------ vocab */

/* A SentencePiece-style vocab: <unk>, <s>, </s>, the 256 byte tokens, then
 * pieces of letters in frequency order ("▁" + word starts and plain
 * fragments), unique, with scores falling with the index. */
static int add_generated_vocab(gguf_writer *w, long n_vocab) {
    int rc = -1;
    char **toks = calloc((size_t)n_vocab, sizeof *toks);
    float *scores = calloc((size_t)n_vocab, sizeof *scores);
    int32_t *types = calloc((size_t)n_vocab, sizeof *types);
    if (!toks || !scores || !types) goto done;
    long k = 0;
    toks[k] = strdup("<unk>"); types[k++] = 2;     /* UNKNOWN */
    toks[k] = strdup("<s>"); types[k++] = 3;       /* CONTROL */
    toks[k] = strdup("</s>"); types[k++] = 3;
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        toks[k] = strdup(s);
        types[k++] = 6;                            /* BYTE */
    }
    /* Single characters first (so text tokenizes without byte fallback),
     * then "▁"-prefixed and plain strings of growing length. */
    static const char alpha[] = "etaoinshrdlcumwfgypbvkjxqzETAOINSHRDLCUMWFGYPBVKJXQZ0123456789.,!?'-:;()\"";
    static const char letters[] = "etaoinshrdlcumwfgypbvkjxqz";
    const char *sp = "\xe2\x96\x81";   /* U+2581, SentencePiece's space */
    if (k < n_vocab) { toks[k] = strdup(sp); types[k++] = 1; }
    for (const char *c = alpha; *c && k < n_vocab; c++) {
        char s[2] = {*c, 0};
        toks[k] = strdup(s);
        types[k++] = 1;                            /* NORMAL */
    }
    /* Enumerate letter strings of length 1, 2, 3... in base-26 order; each
     * yields "▁s" and, from length 2 on, "s". */
    size_t nl = strlen(letters);
    for (int len = 1; k < n_vocab && len <= 8; len++) {
        uint64_t count = 1;
        for (int i = 0; i < len; i++) count *= nl;
        for (uint64_t idx = 0; idx < count && k < n_vocab; idx++) {
            char s[16];
            uint64_t v = idx;
            for (int i = len - 1; i >= 0; i--) { s[i] = letters[v % nl]; v /= nl; }
            s[len] = 0;
            char with[24];
            snprintf(with, sizeof with, "%s%s", sp, s);
            toks[k] = strdup(with);
            types[k++] = 1;
            if (len >= 2 && k < n_vocab) {
                toks[k] = strdup(s);
                types[k++] = 1;
            }
        }
    }
    for (long i = 0; i < n_vocab; i++) {
        if (!toks[i]) goto done;
        scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
    }
    llm_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    llm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, (uint64_t)n_vocab);
    llm_gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)n_vocab);
    llm_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)n_vocab);
    llm_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    llm_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    llm_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    llm_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    llm_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    rc = 0;
done:
    if (toks)
        for (long i = 0; i < n_vocab; i++) free(toks[i]);
    free(toks);
    free(scores);
    free(types);
    if (rc) fprintf(stderr, "mkmodel: out of memory for the vocab\n");
    return rc;
}

/* Copies every tokenizer.ggml.* key of a GGUF; *n_vocab = its token count. */
static int add_vocab_from(gguf_writer *w, const char *path, long *n_vocab) {
    gguf_file *f = NULL;
    char err[512];
    if (llm_gguf_open(path, &f, err, sizeof err) != 0) {
        fprintf(stderr, "mkmodel: %s\n", err);
        return -1;
    }
    gguf_arr toks;
    if (!llm_gguf_get_arr(f, "tokenizer.ggml.tokens", &toks) || toks.elem_type != GGUF_TYPE_STRING || toks.n == 0 ||
        toks.n > INT32_MAX) {
        fprintf(stderr, "mkmodel: %s: no tokenizer.ggml.tokens string array\n", path);
        llm_gguf_close(f);
        return -1;
    }
    *n_vocab = (long)toks.n;
    for (uint64_t i = 0; i < llm_gguf_kv_count(f); i++) {
        const gguf_kv *kv = llm_gguf_kv_at(f, i);
        if (kv->key.len > 14 && memcmp(kv->key.ptr, "tokenizer.ggml", 14) == 0) llm_gguf_writer_copy_kv(w, kv);
        else if (llm_gguf_str_eq(kv->key, "tokenizer.chat_template")) llm_gguf_writer_copy_kv(w, kv);
    }
    llm_gguf_close(f);
    return 0;
}

/* ------------------------------------------------------------------ LoRA */

/* Is target t in the comma list? */
static bool lora_target(const char *list, const char *t) {
    size_t n = strlen(t);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, t, n)) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

/* Adds NAME.lora_a and NAME.lora_b for a base weight of ne [n_in, n_out]
 * (token_embd: flipped, a [r, n_vocab] and b [r, n_embd]). A ~ N(0,
 * 1/sqrt(n_in)) so that A x is of order 1; B ~ N(0, lora_std). */
static int add_lora_pair(model_out *m, const char *base, uint64_t n_in, uint64_t n_out, bool embd) {
    const opts *o = m->o;
    uint64_t r = (uint64_t)o->lora_rank;
    char name[200];
    uint64_t ne_a[2], ne_b[2];
    if (embd) {
        ne_a[0] = r; ne_a[1] = n_out;       /* n_out = n_vocab: a row per token */
        ne_b[0] = r; ne_b[1] = n_in;        /* n_in = n_embd */
    } else {
        ne_a[0] = n_in; ne_a[1] = r;
        ne_b[0] = r; ne_b[1] = n_out;
    }
    snprintf(name, sizeof name, "%s.lora_a", base);
    if (add_tensor(m, name, o->type->ggml, 2, ne_a, 0.0, 1.0 / sqrt((double)(embd ? r : n_in)))) return -1;
    snprintf(name, sizeof name, "%s.lora_b", base);
    return add_tensor(m, name, o->type->ggml, 2, ne_b, 0.0, o->lora_std);
}

/* Writes a random adapter for the model at o->lora_of. */
static int write_lora(const opts *o) {
    int rc = 1;
    char err[600], name[160];
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    if (llm_gguf_open(o->lora_of, &f, err, sizeof err) != 0) {
        fprintf(stderr, "mkmodel: %s\n", err);
        return 1;
    }
    uint32_t n_layer = 0;
    gguf_str arch;
    if (!llm_gguf_get_str(f, "general.architecture", &arch) || !llm_gguf_get_u32(f, "llama.block_count", &n_layer)) {
        fprintf(stderr, "mkmodel: %s: not a llama model (no general.architecture / llama.block_count)\n", o->lora_of);
        goto done;
    }
    w = llm_gguf_writer_new();
    if (!w) goto done;
    model_out m = {.w = w, .o = o};
    llm_gguf_writer_set_str(w, "general.architecture", "llama");
    llm_gguf_writer_set_str(w, "general.type", "adapter");
    llm_gguf_writer_set_str(w, "general.name", "mkmodel random LoRA");
    llm_gguf_writer_set_str(w, "adapter.type", "lora");
    if (o->lora_alpha != 0) llm_gguf_writer_set_f32(w, "adapter.lora.alpha", (float)o->lora_alpha);
    static const struct { const char *target, *tensor; } per_layer[] = {
        {"q", "attn_q"}, {"k", "attn_k"}, {"v", "attn_v"}, {"o", "attn_output"},
        {"gate", "ffn_gate"}, {"up", "ffn_up"}, {"down", "ffn_down"},
    };
    const gguf_tensor *t = llm_gguf_find_tensor(f, "token_embd.weight");
    if (t && lora_target(o->lora_targets, "embd") && add_lora_pair(&m, "token_embd.weight", t->ne[0], t->ne[1], true))
        goto done;
    t = llm_gguf_find_tensor(f, "output.weight");
    if (lora_target(o->lora_targets, "output")) {
        if (!t) { fprintf(stderr, "mkmodel: %s has no output.weight (tied)\n", o->lora_of); goto done; }
        if (add_lora_pair(&m, "output.weight", t->ne[0], t->ne[1], false)) goto done;
    }
    for (uint32_t l = 0; l < n_layer; l++)
        for (size_t k = 0; k < sizeof per_layer / sizeof per_layer[0]; k++) {
            if (!lora_target(o->lora_targets, per_layer[k].target)) continue;
            snprintf(name, sizeof name, "blk.%u.%s.weight", l, per_layer[k].tensor);
            t = llm_gguf_find_tensor(f, name);
            if (!t) { fprintf(stderr, "mkmodel: %s has no %s\n", o->lora_of, name); goto done; }
            if (t->n_dims != 2) { fprintf(stderr, "mkmodel: %s is not 2-D (experts are not adapted)\n", name); goto done; }
            if (add_lora_pair(&m, name, t->ne[0], t->ne[1], false)) goto done;
        }
    if (m.n_tensors == 0) { fprintf(stderr, "mkmodel: --lora-targets %s selects nothing\n", o->lora_targets); goto done; }
    if (llm_gguf_writer_write(w, o->out, err, sizeof err) != 0) {
        fprintf(stderr, "mkmodel: %s\n", err);
        goto done;
    }
    fprintf(stderr, "mkmodel: wrote %s: LoRA for %s, rank %ld, alpha %g, %d tensors, %s, %" PRIu64 " bytes\n", o->out,
            o->lora_of, o->lora_rank, o->lora_alpha, m.n_tensors, o->type->name, m.n_bytes);
    rc = 0;
done:
    llm_gguf_writer_free(w);
    llm_gguf_close(f);
    return rc;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
    opts o = {.dim = 256, .layers = 2, .heads = 4, .kv_heads = 1, .ff = 512, .vocab_size = 0, .ctx = 2048,
              .swa = 0, .experts = 0, .experts_used = 0, .rope_theta = 10000.0, .type = &TYPES[0], .seed = 1,
              .lora_targets = "q,k,v,o,gate,up,down", .lora_rank = 8, .lora_alpha = 16, .lora_std = 0.02};
    bool type_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!strcmp(a, "--tied")) { o.tied = true; continue; }
        if (!strcmp(a, "--sparse")) { o.sparse = true; continue; }
        if (i + 1 >= argc) {
            fprintf(stderr, "mkmodel: %s needs a value (see --help)\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--dim")) o.dim = parse_long(a, v, 1, 1 << 16);
        else if (!strcmp(a, "--layers")) o.layers = parse_long(a, v, 1, 512);
        else if (!strcmp(a, "--heads")) o.heads = parse_long(a, v, 1, 1024);
        else if (!strcmp(a, "--kv-heads")) o.kv_heads = parse_long(a, v, 1, 1024);
        else if (!strcmp(a, "--ff")) o.ff = parse_long(a, v, 1, 1 << 20);
        else if (!strcmp(a, "--vocab-size")) o.vocab_size = parse_long(a, v, 260, 1 << 20);
        else if (!strcmp(a, "--vocab-from")) o.vocab_from = v;
        else if (!strcmp(a, "--ctx")) o.ctx = parse_long(a, v, 1, 1 << 24);
        else if (!strcmp(a, "--swa")) o.swa = parse_long(a, v, 1, 1 << 24);
        else if (!strcmp(a, "--experts")) o.experts = parse_long(a, v, 1, 256);
        else if (!strcmp(a, "--experts-used")) o.experts_used = parse_long(a, v, 1, 256);
        else if (!strcmp(a, "--seed")) o.seed = (uint64_t)parse_long(a, v, 0, INT64_MAX);
        else if (!strcmp(a, "--out")) o.out = v;
        else if (!strcmp(a, "--lora-of")) o.lora_of = v;
        else if (!strcmp(a, "--lora-targets")) o.lora_targets = v;
        else if (!strcmp(a, "--lora-rank")) o.lora_rank = parse_long(a, v, 1, 4096);
        else if (!strcmp(a, "--lora-alpha") || !strcmp(a, "--lora-std")) {
            char *end;
            double x = strtod(v, &end);
            if (end == v || *end || !isfinite(x) || x < 0) {
                fprintf(stderr, "mkmodel: %s: \"%s\" is not a non-negative number\n", a, v);
                return 2;
            }
            if (a[7] == 'a') o.lora_alpha = x;
            else o.lora_std = x;
        }
        else if (!strcmp(a, "--rope-theta")) {
            char *end;
            o.rope_theta = strtod(v, &end);
            if (end == v || *end || !(o.rope_theta > 0) || !isfinite(o.rope_theta)) {
                fprintf(stderr, "mkmodel: --rope-theta: \"%s\" is not a positive number\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--mix")) {
            o.mix = NULL;
            for (size_t k = 0; k < sizeof MIXES / sizeof MIXES[0]; k++)
                if (!strcmp(v, MIXES[k].name)) o.mix = &MIXES[k];
            if (!o.mix) {
                fprintf(stderr, "mkmodel: --mix: unknown recipe \"%s\" (see --help)\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--type")) {
            type_given = true;
            o.type = NULL;
            for (size_t k = 0; k < sizeof TYPES / sizeof TYPES[0]; k++)
                if (!strcmp(v, TYPES[k].name)) o.type = &TYPES[k];
            if (!o.type) {
                fprintf(stderr, "mkmodel: --type: unknown type \"%s\" (see --help)\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "mkmodel: unknown option %s (see --help)\n", a);
            return 2;
        }
    }
    if (!o.out) { fprintf(stderr, "mkmodel: --out FILE is required (see --help)\n"); return 2; }
    if (type_given && o.mix) { fprintf(stderr, "mkmodel: give either --type or --mix, not both\n"); return 2; }
    if (o.lora_of) {
        if (o.mix) { fprintf(stderr, "mkmodel: --mix does not apply to --lora-of\n"); return 2; }
        return write_lora(&o);
    }
    /* the file type's name and general.file_type: the recipe's, or the type's */
    const type_opt *ft = o.mix ? o.mix : o.type;
    if (o.vocab_from && o.vocab_size) {
        fprintf(stderr, "mkmodel: give either --vocab-from or --vocab-size, not both\n");
        return 2;
    }
    if (!o.vocab_from && !o.vocab_size) o.vocab_size = 512;
    if (o.dim % o.heads) { fprintf(stderr, "mkmodel: --dim %ld is not a multiple of --heads %ld\n", o.dim, o.heads); return 2; }
    if (o.heads % o.kv_heads) {
        fprintf(stderr, "mkmodel: --heads %ld is not a multiple of --kv-heads %ld\n", o.heads, o.kv_heads);
        return 2;
    }
    long head_dim = o.dim / o.heads;
    if (head_dim % 2) { fprintf(stderr, "mkmodel: head dimension %ld must be even (RoPE rotates pairs)\n", head_dim); return 2; }
    if (o.experts_used && !o.experts) { fprintf(stderr, "mkmodel: --experts-used needs --experts\n"); return 2; }
    if (o.experts && !o.experts_used) o.experts_used = o.experts < 2 ? o.experts : 2;
    if (o.experts_used > o.experts) {
        fprintf(stderr, "mkmodel: --experts-used %ld exceeds --experts %ld\n", o.experts_used, o.experts);
        return 2;
    }

    int rc = 1;
    gguf_writer *w = llm_gguf_writer_new();
    if (!w) { fprintf(stderr, "mkmodel: out of memory\n"); return 1; }
    model_out m = {.w = w, .o = &o};
    long n_vocab = o.vocab_size;
    char name[160];
    snprintf(name, sizeof name, "mkmodel dim%ld l%ld h%ld kv%ld ff%ld%s %s seed %" PRIu64, o.dim, o.layers,
             o.heads, o.kv_heads, o.ff, o.experts ? " moe" : "", ft->name, o.seed);
    llm_gguf_writer_set_str(w, "general.architecture", "llama");
    llm_gguf_writer_set_str(w, "general.name", name);
    llm_gguf_writer_set_u32(w, "general.file_type", ft->ftype);
    /* random weights: mrag answers with quoted evidence instead of this
     * model's meaningless text (docs/answering.md) */
    llm_gguf_writer_set_bool(w, "mrag.random_weights", true);
    llm_gguf_writer_set_u32(w, "llama.context_length", (uint32_t)o.ctx);
    llm_gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)o.dim);
    llm_gguf_writer_set_u32(w, "llama.block_count", (uint32_t)o.layers);
    llm_gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)o.ff);
    llm_gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)o.heads);
    llm_gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)o.kv_heads);
    llm_gguf_writer_set_f32(w, "llama.rope.freq_base", (float)o.rope_theta);
    llm_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    llm_gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)head_dim);
    if (o.experts) {
        llm_gguf_writer_set_u32(w, "llama.expert_count", (uint32_t)o.experts);
        llm_gguf_writer_set_u32(w, "llama.expert_used_count", (uint32_t)o.experts_used);
    }
    if (o.swa) llm_gguf_writer_set_u32(w, "llama.attention.sliding_window", (uint32_t)o.swa);
    if (o.vocab_from ? add_vocab_from(w, o.vocab_from, &n_vocab) : add_generated_vocab(w, n_vocab)) goto done;
    llm_gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)n_vocab);

    /* Scales: matrices N(0, 0.02); the embedding N(0, 1) so that the
     * residual stream keeps each token's identity against the blocks'
     * outputs; the output head 2/sqrt(dim) so logits spread over a few units
     * (peaked enough that quantization noise rarely flips the top token);
     * the router 1.5/sqrt(dim) so expert choices are clear-cut. */
    uint32_t t = ft->ggml;
    uint64_t dim = (uint64_t)o.dim, ff = (uint64_t)o.ff, nq = (uint64_t)(o.heads * head_dim),
             nkv = (uint64_t)(o.kv_heads * head_dim), nv = (uint64_t)n_vocab;
    if (add_2d(&m, "token_embd.weight", t, dim, nv, o.tied ? 0.05 : 1.0)) goto done;
    if (add_norm(&m, "output_norm.weight", dim)) goto done;
    if (!o.tied && add_2d(&m, "output.weight", t, dim, nv, 4.0 / sqrt((double)dim))) goto done;
    for (long l = 0; l < o.layers; l++) {
#define NM(s) (snprintf(name, sizeof name, "blk.%ld." s, l), name)
        if (add_norm(&m, NM("attn_norm.weight"), dim)) goto done;
        if (add_2d(&m, NM("attn_q.weight"), t, dim, nq, 0.02)) goto done;
        if (add_2d(&m, NM("attn_k.weight"), t, dim, nkv, 0.02)) goto done;
        if (add_2d(&m, NM("attn_v.weight"), t, dim, nkv, 0.02)) goto done;
        if (add_2d(&m, NM("attn_output.weight"), t, nq, dim, 0.02)) goto done;
        if (add_norm(&m, NM("ffn_norm.weight"), dim)) goto done;
        if (o.experts) {
            uint64_t ne_gu[3] = {dim, ff, (uint64_t)o.experts}, ne_d[3] = {ff, dim, (uint64_t)o.experts};
            if (add_2d(&m, NM("ffn_gate_inp.weight"), GGML_TYPE_F32, dim, (uint64_t)o.experts, 1.5 / sqrt((double)dim)))
                goto done;
            if (add_tensor(&m, NM("ffn_gate_exps.weight"), t, 3, ne_gu, 0.0, 0.02)) goto done;
            if (add_tensor(&m, NM("ffn_up_exps.weight"), t, 3, ne_gu, 0.0, 0.02)) goto done;
            if (add_tensor(&m, NM("ffn_down_exps.weight"), t, 3, ne_d, 0.0, 0.02)) goto done;
        } else {
            if (add_2d(&m, NM("ffn_gate.weight"), t, dim, ff, 0.02)) goto done;
            if (add_2d(&m, NM("ffn_up.weight"), t, dim, ff, 0.02)) goto done;
            if (add_2d(&m, NM("ffn_down.weight"), t, ff, dim, 0.02)) goto done;
        }
#undef NM
    }
    char err[600];
    if (llm_gguf_writer_write(w, o.out, err, sizeof err) != 0) {
        fprintf(stderr, "mkmodel: %s\n", err);
        goto done;
    }
    fprintf(stderr, "mkmodel: wrote %s: %" PRIu64 " params (%.2f M), %d tensors, %s weights, %" PRIu64
            " tensor bytes, vocab %ld%s%s\n", o.out, m.n_params, m.n_params / 1e6, m.n_tensors, ft->name,
            m.n_bytes, n_vocab, o.experts ? ", MoE" : "", o.tied ? ", tied output" : "");
    fprintf(stderr, "mkmodel: tensor types:");
    for (int k = 0; k < GGML_TYPE_COUNT; k++)
        if (m.type_count[k]) fprintf(stderr, " %s x%d", llm_type_name((uint32_t)k), m.type_count[k]);
    fprintf(stderr, "\n");
    rc = 0;
done:
    llm_gguf_writer_free(w);
    return rc;
}
