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
} llm_kernel_table;

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
