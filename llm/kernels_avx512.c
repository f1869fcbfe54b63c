/* kernels_avx512.c — AVX-512 (F/BW/VL/DQ/VNNI/BF16) kernels: VNNI
 * register-tiled gemm for Q4_0/Q8_0 weights x Q8_0 activations, and f32/f16/
 * bf16 dot products; only called after a CPUID check. K-quant kernels come
 * from the AVX2 level. */
#include <immintrin.h>

#include "llm/kernels_internal.h"

/* ------------------------------------------------ Q4_0 / Q8_0 VNNI gemm
 * Two 32-element blocks are handled per 512-bit step: a weight vector holds
 * the 64 quants of blocks b and b+1 as unsigned bytes, an activation vector
 * the 64 signed Q8_0 quants, and vpdpbusd gives 16 int32 lane sums, lanes
 * 0-7 from block b and 8-15 from block b+1. The weights' offset (Q4_0 nibble
 * q stands for q - 8; a Q8_0 weight w is fed as w + 128) is removed by
 * starting each sum at -offset * sum(a), computed once per token and block
 * pair. Each lane sum is exact; it is scaled by d_w * d_a in float. */

/* [d0 x 8, d1 x 8] as floats from two fp16 scales. */
static inline __m512 scale_pair(ggml_half d0, ggml_half d1) {
    __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)d0 | ((uint32_t)d1 << 16))));
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(f));
}

/* Weight quants of blocks b, b+1 (or b alone when single) as unsigned bytes
 * in natural element order. */
static inline __m512i load_w_q4_0(const block_q4_0 *x, int single) {
    __m256i t = _mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)x[0].qs));
    if (!single) t = _mm256_inserti128_si256(t, _mm_loadu_si128((const __m128i *)x[1].qs), 1);
    /* [q0, q1, q0 >> 4, q1 >> 4] -> nibbles -> [lo0, hi0, lo1, hi1] */
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(t), _mm256_srli_epi16(t, 4), 1);
    z = _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
    z = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
    if (single) z = _mm512_maskz_mov_epi64(0x0F, z);
    return z;
}

static inline __m512i load_w_q8_0(const block_q8_0 *x, int single) {
    __m256i a = _mm256_loadu_si256((const __m256i *)x[0].qs);
    __m256i b = single ? _mm256_setzero_si256() : _mm256_loadu_si256((const __m256i *)x[1].qs);
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
    z = _mm512_xor_si512(z, _mm512_set1_epi8((char)0x80));
    if (single) z = _mm512_maskz_mov_epi64(0x0F, z);
    return z;
}

static inline __m512i load_a_q8_0(const block_q8_0 *y, int single) {
    __m256i a = _mm256_loadu_si256((const __m256i *)y[0].qs);
    __m256i b = single ? _mm256_setzero_si256() : _mm256_loadu_si256((const __m256i *)y[1].qs);
    return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

/* One step of a tile: blocks b, b+1 (b alone when single) of RM weight rows
 * against TN activation rows, added into acc. */
static inline __attribute__((always_inline)) void
gemm_step(const uint8_t *W, size_t ldw, const uint8_t *A, size_t lda, int b, __m512 acc[4][4],
          const int RM, const int TN, const int Q4, const int single) {
    const size_t wbs = Q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    const __m512i off = _mm512_set1_epi8(Q4 ? 8 : (char)0x80);
    __m512i wq[4];
    __m512 dw[4];
#pragma GCC unroll 4
    for (int r = 0; r < RM; r++) {
        const uint8_t *wp = W + r * ldw + b * wbs;
        if (Q4) {
            const block_q4_0 *x = (const block_q4_0 *)wp;
            wq[r] = load_w_q4_0(x, single);
            dw[r] = scale_pair(x[0].d, single ? 0 : x[1].d);
        } else {
            const block_q8_0 *x = (const block_q8_0 *)wp;
            wq[r] = load_w_q8_0(x, single);
            dw[r] = scale_pair(x[0].d, single ? 0 : x[1].d);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < TN; t++) {
        const block_q8_0 *y = (const block_q8_0 *)(A + t * lda) + b;
        __m512i a = load_a_q8_0(y, single);
        __m512i neg = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, a));
        __m512 da = scale_pair(y[0].d, single ? 0 : y[1].d);
#pragma GCC unroll 4
        for (int r = 0; r < RM; r++) {
            __m512i s = _mm512_dpbusd_epi32(neg, wq[r], a);
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw[r], da), acc[r][t]);
        }
    }
}

/* One RM x TN register tile over the whole row; Y[t*ldy + r]. Q4 selects
 * the weight type (1: Q4_0, 0: Q8_0). */
static inline __attribute__((always_inline)) void
gemm_tile(int nb, const uint8_t *W, size_t ldw, const uint8_t *A, size_t lda, float *Y, size_t ldy,
          const int RM, const int TN, const int Q4) {
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < RM; r++)
#pragma GCC unroll 4
        for (int t = 0; t < TN; t++) acc[r][t] = _mm512_setzero_ps();
    int b = 0;
    for (; b + 1 < nb; b += 2) gemm_step(W, ldw, A, lda, b, acc, RM, TN, Q4, 0);
    if (b < nb) gemm_step(W, ldw, A, lda, b, acc, RM, TN, Q4, 1);
#pragma GCC unroll 4
    for (int r = 0; r < RM; r++)
#pragma GCC unroll 4
        for (int t = 0; t < TN; t++) Y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

#define GEMM_CASE(rm, tn) \
    case (rm) * 8 + (tn): gemm_tile(nb, W, ldw, A, lda, Yt, ldy, rm, tn, Q4); break;

/* Dispatches the remainder-sized tiles to unrolled instances. */
static inline __attribute__((always_inline)) void
gemm_q(int n, const void *W_, size_t ldw, const void *A_, size_t lda, float *Y, size_t ldy, int nr, int nt,
       const int Q4) {
    int nb = n / QK8_0;
    for (int r0 = 0; r0 < nr; r0 += 4) {
        int rm = nr - r0 < 4 ? nr - r0 : 4;
        const uint8_t *W = (const uint8_t *)W_ + (size_t)r0 * ldw;
        for (int t0 = 0; t0 < nt; t0 += 4) {
            int tn = nt - t0 < 4 ? nt - t0 : 4;
            const uint8_t *A = (const uint8_t *)A_ + (size_t)t0 * lda;
            float *Yt = Y + (size_t)t0 * ldy + r0;
            switch (rm * 8 + tn) {
                GEMM_CASE(4, 4) GEMM_CASE(4, 3) GEMM_CASE(4, 2) GEMM_CASE(4, 1)
                GEMM_CASE(3, 4) GEMM_CASE(3, 3) GEMM_CASE(3, 2) GEMM_CASE(3, 1)
                GEMM_CASE(2, 4) GEMM_CASE(2, 3) GEMM_CASE(2, 2) GEMM_CASE(2, 1)
                GEMM_CASE(1, 4) GEMM_CASE(1, 3) GEMM_CASE(1, 2) GEMM_CASE(1, 1)
            }
        }
    }
}

static void gemm_q4_0(int n, const void *W, size_t ldw, const void *A, size_t lda, float *Y, size_t ldy,
                      int nr, int nt) {
    gemm_q(n, W, ldw, A, lda, Y, ldy, nr, nt, 1);
}

static void gemm_q8_0(int n, const void *W, size_t ldw, const void *A, size_t lda, float *Y, size_t ldy,
                      int nr, int nt) {
    gemm_q(n, W, ldw, A, lda, Y, ldy, nr, nt, 0);
}

static float dot_q4_0(int n, const void *w, const void *a) {
    float y;
    gemm_q4_0(n, w, 0, a, 0, &y, 1, 1, 1);
    return y;
}

static float dot_q8_0(int n, const void *w, const void *a) {
    float y;
    gemm_q8_0(n, w, 0, a, 0, &y, 1, 1, 1);
    return y;
}

/* ------------------------------------------------------- float kernels */

static float dot_f32(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i < n) {
        /* masked tail: up to 31 elements */
        for (; i < n; i += 16) {
            __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
            s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static inline __m512 load16_f16(const ggml_half *p, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

static float dot_f16(const ggml_half *a, const ggml_half *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(load16_f16(a + i, 0xFFFF), load16_f16(b + i, 0xFFFF), s0);
        s1 = _mm512_fmadd_ps(load16_f16(a + i + 16, 0xFFFF), load16_f16(b + i + 16, 0xFFFF), s1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        s0 = _mm512_fmadd_ps(load16_f16(a + i, m), load16_f16(b + i, m), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static inline __m512 load16_bf16(const ggml_bf16 *p, __mmask16 m) {
    __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

/* bf16 products are exact in f32, so a plain fma over widened values is
 * used rather than vdpbf16ps, which flushes denormals. */
static float dot_bf16(const ggml_bf16 *a, const ggml_bf16 *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(load16_bf16(a + i, 0xFFFF), load16_bf16(b + i, 0xFFFF), s0);
        s1 = _mm512_fmadd_ps(load16_bf16(a + i + 16, 0xFFFF), load16_bf16(b + i + 16, 0xFFFF), s1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        s0 = _mm512_fmadd_ps(load16_bf16(a + i, m), load16_bf16(b + i, m), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static float vdot_f32(int n, const void *w, const void *a) { return dot_f32(w, a, n); }
static float vdot_f16(int n, const void *w, const void *a) { return dot_f16(w, a, n); }
static float vdot_bf16(int n, const void *w, const void *a) { return dot_bf16(w, a, n); }

void llm_kernels_avx512_fill(llm_kernel_table *t) {
    t->vec_dot[GGML_TYPE_F32] = vdot_f32;
    t->vec_dot[GGML_TYPE_F16] = vdot_f16;
    t->vec_dot[GGML_TYPE_BF16] = vdot_bf16;
    t->vec_dot[GGML_TYPE_Q4_0] = dot_q4_0;
    t->vec_dot[GGML_TYPE_Q8_0] = dot_q8_0;
    t->gemm[GGML_TYPE_Q4_0] = gemm_q4_0;
    t->gemm[GGML_TYPE_Q8_0] = gemm_q8_0;
    t->dot_f32 = dot_f32;
    t->dot_f16 = dot_f16;
}
