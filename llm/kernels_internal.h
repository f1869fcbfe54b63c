/* kernels_internal.h — the per-SIMD-level kernel table shared by the kernel
 * files (kernels_ref.c, kernels_avx2.c, kernels_avx512.c), cpu.c and matmul.c. */
#ifndef LLM_KERNELS_INTERNAL_H
#define LLM_KERNELS_INTERNAL_H

#include "llm/kernels.h"

/* A register-tiled product of nr weight rows by nt activation rows:
 *   Y[t * ldy + r] = dot(W + r * ldw bytes, A + t * lda bytes), r < nr, t < nt.
 * n is the row length in elements (a multiple of the weight block size). The
 * result for each (r, t) equals the table's vec_dot for that pair up to float
 * summation order. */
typedef void (*llm_gemm_fn)(int n, const void *W, size_t ldw, const void *A, size_t lda,
                            float *Y, size_t ldy, int nr, int nt);

/* Gemm over packed weight groups (repack.c): Y[t * ldy + r] = dot(row r,
 * token t) for r < nr, t < nt, rows LLM_PACK_ROWS to a group from `groups`
 * (group_bytes apart; rows past nr in the last group are padding and never
 * stored), tokens the first nt slots of the stripe tile A of tt tokens. */
typedef void (*llm_pgemm_fn)(int n, const void *groups, size_t group_bytes, int nr, const void *A, int tt,
                             float *Y, size_t ldy, int nt);
/* Converts token x (n floats) into slot `slot` of a stripe tile of tt. */
typedef void (*llm_stripe_fn)(const float *x, void *dst, int n, int tt, int slot);

/* Converts n floats to an activation row of a vec-dot type (Q8_0, Q8_K, F16,
 * BF16). */
typedef void (*llm_act_fn)(const float *x, void *dst, int64_t n);

typedef struct {
    llm_vec_dot_fn vec_dot[GGML_TYPE_COUNT];    /* by weight type; NULL = unsupported */
    llm_gemm_fn gemm[GGML_TYPE_COUNT];          /* by weight type */
    llm_act_fn act[GGML_TYPE_COUNT];            /* by vec-dot (activation) type */
    float (*dot_f32)(const float *a, const float *b, int n);
    float (*dot_f16)(const ggml_half *a, const ggml_half *b, int n);
    void (*fp32_to_fp16)(const float *x, ggml_half *y, int n);
    void (*fp16_to_fp32)(const ggml_half *x, float *y, int n);
    /* y[i] = y[i] + a * x[i] for i < n, the product rounded to f32 before
     * the add (never fused), so every level gives the same bits as the
     * scalar loop the attention's P.V used. */
    void (*axpy_f32)(float a, const float *x, float *y, int n);
    void (*axpy_f16)(float a, const ggml_half *x, float *y, int n);
    /* Optional packed-activation gemm for Q4_0/Q8_0 weights: pack[wtype]
     * turns one Q8_0 activation row of n elements into llm_pack_row_size(n)
     * bytes laid out for that weight type's kernel, and gemm_packed[wtype]
     * is the gemm over such rows (lda = packed row bytes). NULL: use gemm. */
    void (*pack[GGML_TYPE_COUNT])(const void *q8_0_row, void *dst, int n);
    llm_gemm_fn gemm_packed[GGML_TYPE_COUNT];
    /* Packed weights (see "packed weights" below): the gemm over packed
     * groups by weight type (NULL: this level does not repack the type),
     * and the stripe converters by kind. */
    llm_pgemm_fn pgemm[GGML_TYPE_COUNT];
    llm_stripe_fn stripe[3];
    /* g[i] = silu(g[i]) * u[i] */
    void (*silu_mul)(float *g, const float *u, int n);
    /* Attention of G query heads sharing one F16 key/value head, head size
     * hd a multiple of 64 and at most LLM_ATT_MAX_HD (attn_avx512.c; NULL:
     * the forward pass loops over dot_f16/axpy_f16): q (G x hd floats,
     * values already rounded to F16), kr/vr the nk key and value rows (the
     * head's part, in increasing position), sc G x nk floats of scratch;
     * out (G x hd) = softmax(q.k * scale) . V, probabilities rounded to F16. */
    void (*att_f16)(const float *q, int G, int hd, const ggml_half *const *kr, const ggml_half *const *vr, int nk,
                    float scale, float *sc, float *out);
} llm_kernel_table;

#define LLM_ATT_MAX_HD 1024

/* ------------------------------------------------- packed weights (repack.c)
 * The activation layouts packed kernels read ("stripes"), one per block
 * family, converted from floats exactly as the vec-dot type (Q8_0 / Q8_K).
 * Tokens are interleaved in tiles of tt (1 for a single token, else
 * LLM_TOKEN_TILE) so that a kernel reaches every token of its tile from one
 * pointer with constant displacements:
 *   Q8_32:  q[nb][tt][32] int8 | d[nb][tt] float (the fp16 d as float) |
 *           ns[nb][tt] int32 (minus the sum of the block's q);
 *   Q8_256: q[nsb][tt][256] int8 | d[nsb][tt] float | ns16[nsb][16][tt]
 *           int32 (minus the sum of each 16 q) | b32[nsb][4][tt][2] int16
 *           (sums of each 32 q, the two of sub-blocks 2p and 2p+1 side by
 *           side);
 * each part 64-byte aligned. Tokens past the end of the last tile are
 * zero. The quants broadcast 4 at a time straight from memory; the sums
 * remove the weights' offsets and mins. */
#define LLM_TOKEN_TILE 8
typedef enum { LLM_STRIPE_NONE = 0, LLM_STRIPE_Q8_32 = 1, LLM_STRIPE_Q8_256 = 2, LLM_STRIPE_COUNT = 3 } llm_stripe_kind;

static inline size_t llm_round64(size_t n) { return (n + 63) & ~(size_t)63; }
static inline size_t llm_s32_d(int n, int tt) { return llm_round64((size_t)n * tt); }
static inline size_t llm_s32_ns(int n, int tt) { return llm_s32_d(n, tt) + llm_round64((size_t)n / 32 * 4 * tt); }
static inline size_t llm_s32_bytes(int n, int tt) { return llm_s32_ns(n, tt) + llm_round64((size_t)n / 32 * 4 * tt); }
static inline size_t llm_s256_d(int n, int tt) { return llm_round64((size_t)n * tt); }
static inline size_t llm_s256_ns16(int n, int tt) { return llm_s256_d(n, tt) + llm_round64((size_t)n / 256 * 4 * tt); }
static inline size_t llm_s256_b32(int n, int tt) { return llm_s256_ns16(n, tt) + llm_round64((size_t)n / 16 * 4 * tt); }
static inline size_t llm_s256_bytes(int n, int tt) { return llm_s256_b32(n, tt) + llm_round64((size_t)n / 32 * 2 * tt); }

/* The stripe kind packed wtype reads (NONE: no packed layout). */
llm_stripe_kind llm_pack_stripe(uint32_t wtype);
/* Bytes of one stripe tile of tt tokens of n elements. */
size_t llm_stripe_bytes(llm_stripe_kind k, int n, int tt);

/* Reference stripe converters (repack.c): token x into slot `slot` of the
 * tile at dst (tt tokens wide). */
void llm_stripe_q8_32_ref(const float *x, void *dst, int n, int tt, int slot);
void llm_stripe_q8_256_ref(const float *x, void *dst, int n, int tt, int slot);
void llm_repack_ref_fill(llm_kernel_table *t);
/* The portable gemm over packed groups of wtype (tests compare the SIMD
 * pgemm with it), or NULL when wtype has no packed layout. */
llm_pgemm_fn llm_pgemm_ref(uint32_t wtype);
void llm_packed_avx512_fill(llm_kernel_table *t);
void llm_attn_avx512_fill(llm_kernel_table *t);

/* Bytes of one packed activation row of n elements: per pair of 32-element
 * blocks, 64 B of quants, 64 B of int32 offset corrections, 64 B of f32
 * scales. */
static inline size_t llm_pack_row_size(int n) {
    return (size_t)((n / 32 + 1) / 2) * 192;
}

/* Each level fills in the entries it implements, on top of the lower level's
 * table (so a missing SIMD kernel falls back to the reference). */
void llm_kernels_ref_fill(llm_kernel_table *t);
void llm_kernels_avx2_fill(llm_kernel_table *t);
void llm_kernels_avx512_fill(llm_kernel_table *t);
/* The further GGUF formats (Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, IQ4_XS),
 * kernels_formats_avx*.c: filled after the level's main kernels. */
void llm_kernels_formats_avx2_fill(llm_kernel_table *t);
void llm_kernels_formats_avx512_fill(llm_kernel_table *t);

/* The table for a level (clamped to what the CPU supports). Borrowed, static. */
const llm_kernel_table *llm_kernels_get(llm_simd level);
/* The table for llm_simd_active(). */
const llm_kernel_table *llm_kernels_active(void);

/* Reference activation converters (quant.c), exactly as llama.cpp's x86
 * CPU backend converts: Q8_0 as its AVX path does (d = amax/127 stored as
 * fp16, q = round-half-even(x * (127/amax))), Q8_K as quantize_row_q8_K
 * (signed max, iscale = -127/max, nearest-even, clamp 127, bsums per 16). */
void llm_quantize_row_q8_0_ref(const float *x, void *dst, int64_t n);
void llm_quantize_row_q8_K_ref(const float *x, void *dst, int64_t n);
/* Q8_1: the Q8_0 rule plus s = fp16(d * sum(q)), d the f32 amax/127 — as
 * llama.cpp's AVX2 quantize_row_q8_1. */
void llm_quantize_row_q8_1_ref(const float *x, void *dst, int64_t n);
void llm_quantize_row_f16_ref(const float *x, void *dst, int64_t n);
void llm_quantize_row_bf16_ref(const float *x, void *dst, int64_t n);

/* Rounds to the nearest integer, ties to even, for |v| < 2^22 (the
 * "add 1.5 * 2^23" trick llama.cpp's nearest_int relies on). */
static inline int llm_nearest_int(float v) {
    float f = v + 12582912.f;
    int32_t i;
    memcpy(&i, &f, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* The 16 levels of IQ4_NL / IQ4_XS, indexed by the 4-bit quant. */
extern const int8_t llm_iq4nl_values[16];

/* The 16 signed 6-bit scales (-32..31) of a Q3_K block from its 12 bytes. */
void llm_q3k_scales(const uint8_t s[12], int8_t out[16]);

/* Scale/min j (0..7) of a Q4_K block from its 12 packed bytes. */
static inline void llm_q4k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

#endif
