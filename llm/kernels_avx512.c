/* kernels_avx512.c — AVX-512 (F/BW/VL/DQ/VNNI/BF16) kernels: VNNI
 * register-tiled gemm for Q4_0/Q8_0 weights x Q8_0 activations, and f32/f16/
 * bf16 dot products, VNNI gemm for Q4_K/Q5_K/Q6_K x Q8_K; only called after a
 * CPUID check. */
#include <immintrin.h>
#include <stddef.h>

#include "llm/kernels_internal.h"

/* One fp16 to f32 with F16C: exact, and inline (the portable conversion is a
 * call per block otherwise). */
static inline float h2f(ggml_half h) {
    return _cvtsh_ss(h);
}

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
    const size_t wbs = Q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    for (; b + 1 < nb; b += 2) {
        if (TN == 1) {
            /* decode streams each weight row once: prefetch ~1 KB ahead
             * (measured +20% on one thread reading from DRAM) */
#pragma GCC unroll 4
            for (int r = 0; r < RM; r++) _mm_prefetch((const char *)(W + r * ldw + b * wbs) + 1024, _MM_HINT_T0);
        }
        gemm_step(W, ldw, A, lda, b, acc, RM, TN, Q4, 0);
    }
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

/* ------------------------------------- Q4_0 / Q8_0 gemm, packed activations
 * The activations are repacked once per matmul (llm_pack_row_size bytes a
 * row) so the inner loop only loads them: per block pair, the 64 quants in
 * the lane order of the weight type's unpacked vector, the 16 int32 lanes
 * -offset * (sum of the lane's 4 quants) that start each vpdpbusd sum, and
 * the 16 f32 lanes of the blocks' d_a. Q8_0 weights keep natural order
 * (lanes 0-7 block b, 8-15 block b+1). Q4_0 weights are unpacked as
 * [low nibbles b, low nibbles b+1, high nibbles b, high nibbles b+1] (four
 * cheap ops, no cross-lane shuffle), so their activations are stored as
 * [a_b 0-15, a_b+1 0-15, a_b 16-31, a_b+1 16-31] and lanes 0-3 and 8-11 hold
 * block b, 4-7 and 12-15 block b+1. A lone last block has a zero partner. */

/* Scales in the Q4_0 lane order: [d0 x4, d1 x4, d0 x4, d1 x4]. */
static inline __m512 scale_pair_q4(ggml_half d0, ggml_half d1) {
    __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)d0 | ((uint32_t)d1 << 16))));
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(f));
}

static inline __attribute__((always_inline)) void pack_q8_0_row(const void *q8, void *dst, int n, const int Q4) {
    const block_q8_0 *y = q8;
    uint8_t *o = dst;
    const int nb = n / QK8_0;
    const __m512i off = _mm512_set1_epi8(Q4 ? 8 : (char)0x80);
    for (int b = 0; b < nb; b += 2, o += 192) {
        const int single = b + 1 >= nb;
        __m512i a = load_a_q8_0(y + b, single);
        if (Q4) a = _mm512_shuffle_i64x2(a, a, _MM_SHUFFLE(3, 1, 2, 0));
        __m512i neg = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, a));
        ggml_half d1 = single ? 0 : y[b + 1].d;
        __m512 da = Q4 ? scale_pair_q4(y[b].d, d1) : scale_pair(y[b].d, d1);
        _mm512_storeu_si512(o, a);
        _mm512_storeu_si512(o + 64, neg);
        _mm512_storeu_ps(o + 128, da);
    }
}

static void pack_q4_0(const void *q8, void *dst, int n) { pack_q8_0_row(q8, dst, n, 1); }
static void pack_q8_0(const void *q8, void *dst, int n) { pack_q8_0_row(q8, dst, n, 0); }

/* Q4_0 quants of blocks b, b+1 (b alone when single) in the packed order. */
static inline __m512i load_w_q4_0_p(const block_q4_0 *x, int single) {
    __m256i t = _mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)x[0].qs));
    if (!single) t = _mm256_inserti128_si256(t, _mm_loadu_si128((const __m128i *)x[1].qs), 1);
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(t), _mm256_srli_epi16(t, 4), 1);
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
}

static inline __attribute__((always_inline)) void
gemmp_step(const uint8_t *W, size_t ldw, const uint8_t *A, size_t lda, int b, __m512 acc[4][5],
           const int RM, const int TN, const int Q4, const int single) {
    const size_t wbs = Q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    __m512i wq[4];
    __m512 dw[4];
#pragma GCC unroll 4
    for (int r = 0; r < RM; r++) {
        const uint8_t *wp = W + r * ldw + b * wbs;
        if (Q4) {
            const block_q4_0 *x = (const block_q4_0 *)wp;
            wq[r] = load_w_q4_0_p(x, single);
            dw[r] = scale_pair_q4(x[0].d, single ? 0 : x[1].d);
        } else {
            const block_q8_0 *x = (const block_q8_0 *)wp;
            wq[r] = load_w_q8_0(x, single);
            dw[r] = scale_pair(x[0].d, single ? 0 : x[1].d);
        }
    }
    const uint8_t *ap = A + (size_t)(b / 2) * 192;
#pragma GCC unroll 5
    for (int t = 0; t < TN; t++) {
        const uint8_t *p = ap + t * lda;
        __m512i a = _mm512_loadu_si512(p);
        __m512i neg = _mm512_loadu_si512(p + 64);
        __m512 da = _mm512_loadu_ps(p + 128);
#pragma GCC unroll 4
        for (int r = 0; r < RM; r++) {
            __m512i s = _mm512_dpbusd_epi32(neg, wq[r], a);
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw[r], da), acc[r][t]);
        }
    }
}

#ifndef PF_DIST
#define PF_DIST 2048
#endif
static inline __attribute__((always_inline)) void
gemmp_tile(int nb, const uint8_t *W, size_t ldw, const uint8_t *A, size_t lda, float *Y, size_t ldy,
           const int RM, const int TN, const int Q4) {
    __m512 acc[4][5];
#pragma GCC unroll 4
    for (int r = 0; r < RM; r++)
#pragma GCC unroll 5
        for (int t = 0; t < TN; t++) acc[r][t] = _mm512_setzero_ps();
    int b = 0;
    const size_t wbs = Q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    for (; b + 1 < nb; b += 2) {
        if (TN == 1) {
            /* decode streams each weight row once: prefetch 2 KB ahead */
#pragma GCC unroll 4
            for (int r = 0; r < RM; r++) _mm_prefetch((const char *)(W + r * ldw + b * wbs) + PF_DIST, _MM_HINT_T0);
        }
        gemmp_step(W, ldw, A, lda, b, acc, RM, TN, Q4, 0);
    }
    if (b < nb) gemmp_step(W, ldw, A, lda, b, acc, RM, TN, Q4, 1);
#pragma GCC unroll 4
    for (int r = 0; r < RM; r++)
#pragma GCC unroll 5
        for (int t = 0; t < TN; t++) Y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

#define GEMMP_CASE(rm, tn) \
    case (rm) * 8 + (tn): gemmp_tile(nb, W, ldw, A, lda, Yt, ldy, rm, tn, Q4); break;

/* Tiles of 4 rows x 4 tokens for Q4_0 (its unpacking needs registers) and
 * 4 x 5 for Q8_0 (no difference from 4 x 4 was measurable on the shared
 * machine), remainders unrolled. */
static inline __attribute__((always_inline)) void
gemmp_q(int n, const void *W_, size_t ldw, const void *A_, size_t lda, float *Y, size_t ldy, int nr, int nt,
        const int Q4) {
    const int TNM = Q4 ? 4 : 5;
    int nb = n / QK8_0;
    for (int r0 = 0; r0 < nr; r0 += 4) {
        int rm = nr - r0 < 4 ? nr - r0 : 4;
        const uint8_t *W = (const uint8_t *)W_ + (size_t)r0 * ldw;
        for (int t0 = 0; t0 < nt; t0 += TNM) {
            int tn = nt - t0 < TNM ? nt - t0 : TNM;
            const uint8_t *A = (const uint8_t *)A_ + (size_t)t0 * lda;
            float *Yt = Y + (size_t)t0 * ldy + r0;
            switch (rm * 8 + tn) {
                GEMMP_CASE(4, 5) GEMMP_CASE(3, 5) GEMMP_CASE(2, 5) GEMMP_CASE(1, 5)
                GEMMP_CASE(4, 4) GEMMP_CASE(4, 3) GEMMP_CASE(4, 2) GEMMP_CASE(4, 1)
                GEMMP_CASE(3, 4) GEMMP_CASE(3, 3) GEMMP_CASE(3, 2) GEMMP_CASE(3, 1)
                GEMMP_CASE(2, 4) GEMMP_CASE(2, 3) GEMMP_CASE(2, 2) GEMMP_CASE(2, 1)
                GEMMP_CASE(1, 4) GEMMP_CASE(1, 3) GEMMP_CASE(1, 2) GEMMP_CASE(1, 1)
            }
        }
    }
}

static void gemmp_q4_0(int n, const void *W, size_t ldw, const void *A, size_t lda, float *Y, size_t ldy,
                       int nr, int nt) {
    gemmp_q(n, W, ldw, A, lda, Y, ldy, nr, nt, 1);
}

static void gemmp_q8_0(int n, const void *W, size_t ldw, const void *A, size_t lda, float *Y, size_t ldy,
                       int nr, int nt) {
    gemmp_q(n, W, ldw, A, lda, Y, ldy, nr, nt, 0);
}

/* ------------------------------------------------ Q4_K / Q6_K VNNI gemm
 * Per 64 elements: vpmaddubsw (unsigned weight quants x signed Q8_K bytes ->
 * int16 pairs, at most 63 * 128 * 2 = 16128, no saturation) and vpdpwssd
 * with the int16 sub-block scales, accumulating exact int32 sums over the
 * super-block; then one conversion and d_w * d_a per super-block. Tiles are
 * 3 rows x 3 tokens (18 accumulators, the rest for operands). */

/* Q4_K: the 12 packed bytes as 8 scales and 8 mins (bytes), from the three
 * little-endian words: sc0-3 = w0 & 63, m0-3 = w1 & 63, sc4-7 = low nibbles
 * of w2 with the top bits of w0 as bits 4-5, m4-7 = high nibbles of w2 with
 * the top bits of w1. Returns [sc0..7, m0..7] as bytes. */
static inline __m128i q4k_scales_mins(const uint8_t *q) {
    uint32_t w0, w1, w2;
    memcpy(&w0, q, 4);
    memcpy(&w1, q + 4, 4);
    memcpy(&w2, q + 8, 4);
    uint32_t sc_lo = w0 & 0x3f3f3f3f, m_lo = w1 & 0x3f3f3f3f;
    uint32_t sc_hi = (w2 & 0x0f0f0f0f) | ((w0 >> 2) & 0x30303030);
    uint32_t m_hi = ((w2 >> 4) & 0x0f0f0f0f) | ((w1 >> 2) & 0x30303030);
    return _mm_setr_epi32((int)sc_lo, (int)sc_hi, (int)m_lo, (int)m_hi);
}

/* Q4_K and Q5_K share d, dmin and the packed scales at the same offsets;
 * Q5_K adds qh[32] before its nibbles. */
_Static_assert(offsetof(block_q4_K, scales) == offsetof(block_q5_K, scales), "q4_K/q5_K scales");
_Static_assert(offsetof(block_q4_K, dmin) == offsetof(block_q5_K, dmin), "q4_K/q5_K dmin");

/* Q4_K (Q5 = 0) or Q5_K (Q5 = 1) tile. Q5_K's fifth bits: chunk k (64
 * elements) takes bit 2k of qh[l] for its low-nibble half and bit 2k+1 for
 * the high-nibble half; a byte test against [1 << 2k x 32, 1 << 2k+1 x 32]
 * gives a mask, and a masked add puts 16 on those quants. */
static inline __attribute__((always_inline)) void
gemm_qk_tile(int nsb, const uint8_t *W, size_t ldw, const uint8_t *A, size_t lda, float *Y, size_t ldy,
             const int RM, const int TN, const int Q5) {
    const size_t bsz = Q5 ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const size_t qs_off = Q5 ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs);
    __m512 acc[3][3];
    const __m512i m4 = _mm512_set1_epi8(0x0F), sixteen = _mm512_set1_epi8(16);
    /* int16 lane selectors: [sc_2k x 16, sc_2k+1 x 16] for chunk k */
    __m512i idx[4], hbit[4];
    for (int k = 0; k < 4; k++) {
        idx[k] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16((short)(2 * k))),
                                    _mm256_set1_epi16((short)(2 * k + 1)), 1);
        hbit[k] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi8((char)(1 << (2 * k)))),
                                     _mm256_set1_epi8((char)(1 << (2 * k + 1))), 1);
    }
#pragma GCC unroll 3
    for (int r = 0; r < RM; r++)
#pragma GCC unroll 3
        for (int t = 0; t < TN; t++) acc[r][t] = _mm512_setzero_ps();
    for (int b = 0; b < nsb; b++) {
        if (TN == 1) {
#pragma GCC unroll 3
            for (int r = 0; r < RM; r++)
                for (size_t o = 0; o < bsz; o += 64)
                    _mm_prefetch((const char *)(W + r * ldw + (b + 6) * bsz) + o, _MM_HINT_T0);
        }
        __m512i scb[3], hq[3];
        __m256i mdup[3];
        float dw[3], dmw[3];
#pragma GCC unroll 3
        for (int r = 0; r < RM; r++) {
            const block_q4_K *x = (const block_q4_K *)(W + r * ldw + b * bsz);
            __m128i sm = q4k_scales_mins(x->scales);
            __m256i sm16 = _mm256_cvtepu8_epi16(sm);            /* sc0..7, m0..7 as int16 */
            scb[r] = _mm512_castsi256_si512(sm16);
            __m128i m8 = _mm256_extracti128_si256(sm16, 1);
            mdup[r] = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_unpacklo_epi16(m8, m8)),
                                              _mm_unpackhi_epi16(m8, m8), 1);
            dw[r] = h2f(x->d);
            dmw[r] = h2f(x->dmin);
            if (Q5) hq[r] = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)((const block_q5_K *)x)->qh));
        }
        __m512i isum[3][3];
#pragma GCC unroll 3
        for (int r = 0; r < RM; r++)
#pragma GCC unroll 3
            for (int t = 0; t < TN; t++) isum[r][t] = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            __m512i wq[3], sck[3];
#pragma GCC unroll 3
            for (int r = 0; r < RM; r++) {
                const uint8_t *qs = W + r * ldw + b * bsz + qs_off;
                __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * k));
                __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
                wq[r] = _mm512_and_si512(z, m4);
                if (Q5) wq[r] = _mm512_mask_add_epi8(wq[r], _mm512_test_epi8_mask(hq[r], hbit[k]), wq[r], sixteen);
                sck[r] = _mm512_permutexvar_epi16(idx[k], scb[r]);
            }
#pragma GCC unroll 3
            for (int t = 0; t < TN; t++) {
                const block_q8_K *y = (const block_q8_K *)(A + t * lda) + b;
                __m512i a = _mm512_loadu_si512((const void *)(y->qs + 64 * k));
#pragma GCC unroll 3
                for (int r = 0; r < RM; r++)
                    isum[r][t] = _mm512_dpwssd_epi32(isum[r][t], _mm512_maddubs_epi16(wq[r], a), sck[r]);
            }
        }
#pragma GCC unroll 3
        for (int t = 0; t < TN; t++) {
            const block_q8_K *y = (const block_q8_K *)(A + t * lda) + b;
            __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
#pragma GCC unroll 3
            for (int r = 0; r < RM; r++) {
                /* mins: m_j * (bsums[2j] + bsums[2j+1]), 8 int32 lanes */
                __m256 mins = _mm256_cvtepi32_ps(_mm256_madd_epi16(mdup[r], bs));
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r][t]), _mm512_set1_ps(dw[r] * y->d), acc[r][t]);
                acc[r][t] = _mm512_fnmadd_ps(_mm512_zextps256_ps512(mins), _mm512_set1_ps(dmw[r] * y->d), acc[r][t]);
            }
        }
    }
#pragma GCC unroll 3
    for (int r = 0; r < RM; r++)
#pragma GCC unroll 3
        for (int t = 0; t < TN; t++) Y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

static inline __attribute__((always_inline)) void
gemm_q4_K_tile(int nsb, const uint8_t *W, size_t ldw, const uint8_t *A, size_t lda, float *Y, size_t ldy,
               const int RM, const int TN) {
    gemm_qk_tile(nsb, W, ldw, A, lda, Y, ldy, RM, TN, 0);
}

static inline __attribute__((always_inline)) void
gemm_q5_K_tile(int nsb, const uint8_t *W, size_t ldw, const uint8_t *A, size_t lda, float *Y, size_t ldy,
               const int RM, const int TN) {
    gemm_qk_tile(nsb, W, ldw, A, lda, Y, ldy, RM, TN, 1);
}

/* Q6_K: 6-bit quants used unsigned (0..63); the -32 offset comes out through
 * the bsums: sum sc*(q-32)*a = sum sc*q*a - 32 * sum sc*bsum. */
static inline __attribute__((always_inline)) void
gemm_q6_K_tile(int nsb, const uint8_t *W, size_t ldw, const uint8_t *A, size_t lda, float *Y, size_t ldy,
               const int RM, const int TN) {
    __m512 acc[3][3];
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    /* shift counts per int16 lane: low half / high half of the 64 bytes */
    const __m512i sh_lo = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i sh_hi = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    /* int16 lane selectors: [sc_4h x 8, sc_4h+1 x 8, sc_4h+2 x 8, sc_4h+3 x 8] */
    __m512i idx[4];
    for (int h = 0; h < 4; h++) {
        short v[32];
        for (int l = 0; l < 32; l++) v[l] = (short)(4 * h + l / 8);
        idx[h] = _mm512_loadu_si512((const void *)v);
    }
#pragma GCC unroll 3
    for (int r = 0; r < RM; r++)
#pragma GCC unroll 3
        for (int t = 0; t < TN; t++) acc[r][t] = _mm512_setzero_ps();
    for (int b = 0; b < nsb; b++) {
        if (TN == 1) {
#pragma GCC unroll 3
            for (int r = 0; r < RM; r++)
                for (size_t o = 0; o < sizeof(block_q6_K); o += 64)
                    _mm_prefetch((const char *)((const block_q6_K *)(W + r * ldw) + b + 5) + o, _MM_HINT_T0);
        }
        __m512i sc16[3];
        float dw[3];
        __m512i isum[3][3];
#pragma GCC unroll 3
        for (int r = 0; r < RM; r++) {
            const block_q6_K *x = (const block_q6_K *)(W + r * ldw) + b;
            sc16[r] = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales)));
            dw[r] = h2f(x->d);
        }
        /* start from -32 * sum_j sc_j * bsum_j (8 int32 lanes, rest zero) */
#pragma GCC unroll 3
        for (int t = 0; t < TN; t++) {
            const block_q8_K *y = (const block_q8_K *)(A + t * lda) + b;
            __m256i bs = _mm256_loadu_si256((const __m256i *)y->bsums);
#pragma GCC unroll 3
            for (int r = 0; r < RM; r++) {
                __m256i c = _mm256_slli_epi32(_mm256_madd_epi16(_mm512_castsi512_si256(sc16[r]), bs), 5);
                isum[r][t] = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), c));
            }
        }
#pragma GCC unroll 2
        for (int c = 0; c < 2; c++) {
#pragma GCC unroll 2
            for (int half = 0; half < 2; half++) {
                __m512i wq[3], sch[3];
#pragma GCC unroll 3
                for (int r = 0; r < RM; r++) {
                    const block_q6_K *x = (const block_q6_K *)(W + r * ldw) + b;
                    __m512i L = _mm512_loadu_si512((const void *)(x->ql + 64 * c));
                    __m512i H = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x->qh + 32 * c)));
                    if (half == 0)  /* elements 0..63 of the chunk: q1 | q2 */
                        wq[r] = _mm512_or_si512(_mm512_and_si512(L, m4), _mm512_and_si512(_mm512_sllv_epi16(H, sh_lo), m30));
                    else            /* elements 64..127: q3 | q4 */
                        wq[r] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(L, 4), m4),
                                                _mm512_and_si512(_mm512_srlv_epi16(H, sh_hi), m30));
                    sch[r] = _mm512_permutexvar_epi16(idx[2 * c + half], sc16[r]);
                }
#pragma GCC unroll 3
                for (int t = 0; t < TN; t++) {
                    const block_q8_K *y = (const block_q8_K *)(A + t * lda) + b;
                    __m512i a = _mm512_loadu_si512((const void *)(y->qs + 128 * c + 64 * half));
#pragma GCC unroll 3
                    for (int r = 0; r < RM; r++)
                        isum[r][t] = _mm512_dpwssd_epi32(isum[r][t], _mm512_maddubs_epi16(wq[r], a), sch[r]);
                }
            }
        }
#pragma GCC unroll 3
        for (int t = 0; t < TN; t++) {
            const block_q8_K *y = (const block_q8_K *)(A + t * lda) + b;
#pragma GCC unroll 3
            for (int r = 0; r < RM; r++)
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r][t]), _mm512_set1_ps(dw[r] * y->d), acc[r][t]);
        }
    }
#pragma GCC unroll 3
    for (int r = 0; r < RM; r++)
#pragma GCC unroll 3
        for (int t = 0; t < TN; t++) Y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

#define GEMMK_CASE(fn, rm, tn) \
    case (rm) * 8 + (tn): fn(nsb, W, ldw, A, lda, Yt, ldy, rm, tn); break;

#define GEMMK_DRIVER(name, tile)                                                                     \
    static void name(int n, const void *W_, size_t ldw, const void *A_, size_t lda, float *Y,         \
                     size_t ldy, int nr, int nt) {                                                   \
        int nsb = n / QK_K;                                                                          \
        for (int r0 = 0; r0 < nr; r0 += 3) {                                                         \
            int rm = nr - r0 < 3 ? nr - r0 : 3;                                                      \
            const uint8_t *W = (const uint8_t *)W_ + (size_t)r0 * ldw;                               \
            for (int t0 = 0; t0 < nt; t0 += 3) {                                                     \
                int tn = nt - t0 < 3 ? nt - t0 : 3;                                                  \
                const uint8_t *A = (const uint8_t *)A_ + (size_t)t0 * lda;                           \
                float *Yt = Y + (size_t)t0 * ldy + r0;                                               \
                switch (rm * 8 + tn) {                                                               \
                    GEMMK_CASE(tile, 3, 3) GEMMK_CASE(tile, 3, 2) GEMMK_CASE(tile, 3, 1)             \
                    GEMMK_CASE(tile, 2, 3) GEMMK_CASE(tile, 2, 2) GEMMK_CASE(tile, 2, 1)             \
                    GEMMK_CASE(tile, 1, 3) GEMMK_CASE(tile, 1, 2) GEMMK_CASE(tile, 1, 1)             \
                }                                                                                    \
            }                                                                                        \
        }                                                                                            \
    }

GEMMK_DRIVER(gemm_q4_K, gemm_q4_K_tile)
GEMMK_DRIVER(gemm_q5_K, gemm_q5_K_tile)
GEMMK_DRIVER(gemm_q6_K, gemm_q6_K_tile)

static float dot_q4_K(int n, const void *w, const void *a) {
    float y;
    gemm_q4_K(n, w, 0, a, 0, &y, 1, 1, 1);
    return y;
}

static float dot_q5_K(int n, const void *w, const void *a) {
    float y;
    gemm_q5_K(n, w, 0, a, 0, &y, 1, 1, 1);
    return y;
}

static float dot_q6_K(int n, const void *w, const void *a) {
    float y;
    gemm_q6_K(n, w, 0, a, 0, &y, 1, 1, 1);
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

/* Float gemm (F32, F16, BF16 weights with activations of the same type):
 * 4 x 4 tiles of 16-lane fma accumulators; each loaded and widened weight
 * vector is used for 4 tokens, each activation vector for 4 rows. */
static inline __attribute__((always_inline)) __m512 load16_t(const void *p, int i, __mmask16 m, const int T) {
    if (T == GGML_TYPE_F32) return _mm512_maskz_loadu_ps(m, (const float *)p + i);
    if (T == GGML_TYPE_F16) return load16_f16((const ggml_half *)p + i, m);
    return load16_bf16((const ggml_bf16 *)p + i, m);
}

static inline __attribute__((always_inline)) void
gemm_f_tile(int n, const uint8_t *W, size_t ldw, const uint8_t *A, size_t lda, float *Y, size_t ldy,
            const int RM, const int TN, const int T) {
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < RM; r++)
#pragma GCC unroll 4
        for (int t = 0; t < TN; t++) acc[r][t] = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 w[4];
#pragma GCC unroll 4
        for (int r = 0; r < RM; r++) w[r] = load16_t(W + r * ldw, i, m, T);
#pragma GCC unroll 4
        for (int t = 0; t < TN; t++) {
            __m512 a = load16_t(A + t * lda, i, m, T);
#pragma GCC unroll 4
            for (int r = 0; r < RM; r++) acc[r][t] = _mm512_fmadd_ps(w[r], a, acc[r][t]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < RM; r++)
#pragma GCC unroll 4
        for (int t = 0; t < TN; t++) Y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

#define GEMMF_CASE(rm, tn) \
    case (rm) * 8 + (tn): gemm_f_tile(n, W, ldw, A, lda, Yt, ldy, rm, tn, T); break;

static inline __attribute__((always_inline)) void
gemm_f(int n, const void *W_, size_t ldw, const void *A_, size_t lda, float *Y, size_t ldy, int nr, int nt,
       const int T) {
    for (int r0 = 0; r0 < nr; r0 += 4) {
        int rm = nr - r0 < 4 ? nr - r0 : 4;
        const uint8_t *W = (const uint8_t *)W_ + (size_t)r0 * ldw;
        for (int t0 = 0; t0 < nt; t0 += 4) {
            int tn = nt - t0 < 4 ? nt - t0 : 4;
            const uint8_t *A = (const uint8_t *)A_ + (size_t)t0 * lda;
            float *Yt = Y + (size_t)t0 * ldy + r0;
            switch (rm * 8 + tn) {
                GEMMF_CASE(4, 4) GEMMF_CASE(4, 3) GEMMF_CASE(4, 2) GEMMF_CASE(4, 1)
                GEMMF_CASE(3, 4) GEMMF_CASE(3, 3) GEMMF_CASE(3, 2) GEMMF_CASE(3, 1)
                GEMMF_CASE(2, 4) GEMMF_CASE(2, 3) GEMMF_CASE(2, 2) GEMMF_CASE(2, 1)
                GEMMF_CASE(1, 4) GEMMF_CASE(1, 3) GEMMF_CASE(1, 2) GEMMF_CASE(1, 1)
            }
        }
    }
}

static void gemm_f32(int n, const void *W, size_t ldw, const void *A, size_t lda, float *Y, size_t ldy,
                     int nr, int nt) {
    gemm_f(n, W, ldw, A, lda, Y, ldy, nr, nt, GGML_TYPE_F32);
}

static void gemm_f16(int n, const void *W, size_t ldw, const void *A, size_t lda, float *Y, size_t ldy,
                     int nr, int nt) {
    gemm_f(n, W, ldw, A, lda, Y, ldy, nr, nt, GGML_TYPE_F16);
}

static void gemm_bf16(int n, const void *W, size_t ldw, const void *A, size_t lda, float *Y, size_t ldy,
                      int nr, int nt) {
    gemm_f(n, W, ldw, A, lda, Y, ldy, nr, nt, GGML_TYPE_BF16);
}

/* y += a * x, product and sum rounded separately: the *_round_ps forms
 * are builtins the compiler does not contract into an fma. */
static inline __m512 mul_add_unfused(__m512 y, __m512 a, __m512 x) {
    __m512 p = _mm512_mul_round_ps(a, x, _MM_FROUND_CUR_DIRECTION);
    return _mm512_add_round_ps(y, p, _MM_FROUND_CUR_DIRECTION);
}

static void axpy_f32(float a, const float *x, float *y, int n) {
    const __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, mul_add_unfused(_mm512_loadu_ps(y + i), va, _mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, mul_add_unfused(_mm512_maskz_loadu_ps(m, y + i), va, _mm512_maskz_loadu_ps(m, x + i)));
    }
}

static void axpy_f16(float a, const ggml_half *x, float *y, int n) {
    const __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, mul_add_unfused(_mm512_loadu_ps(y + i), va, load16_f16(x + i, 0xFFFF)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, mul_add_unfused(_mm512_maskz_loadu_ps(m, y + i), va, load16_f16(x + i, m)));
    }
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
    t->vec_dot[GGML_TYPE_Q4_K] = dot_q4_K;
    t->vec_dot[GGML_TYPE_Q6_K] = dot_q6_K;
    t->gemm[GGML_TYPE_Q4_K] = gemm_q4_K;
    t->vec_dot[GGML_TYPE_Q5_K] = dot_q5_K;
    t->gemm[GGML_TYPE_Q5_K] = gemm_q5_K;
    t->gemm[GGML_TYPE_Q6_K] = gemm_q6_K;
    t->gemm[GGML_TYPE_F32] = gemm_f32;
    t->gemm[GGML_TYPE_F16] = gemm_f16;
    t->gemm[GGML_TYPE_BF16] = gemm_bf16;
    t->dot_f32 = dot_f32;
    t->dot_f16 = dot_f16;
    t->axpy_f32 = axpy_f32;
    t->axpy_f16 = axpy_f16;
    t->pack[GGML_TYPE_Q4_0] = pack_q4_0;
    t->pack[GGML_TYPE_Q8_0] = pack_q8_0;
    t->gemm_packed[GGML_TYPE_Q4_0] = gemmp_q4_0;
    t->gemm_packed[GGML_TYPE_Q8_0] = gemmp_q8_0;
}
