/* kernels_formats_avx512.c — AVX-512 VNNI register-tiled gemm for the
 * further GGUF weight formats: Q4_1, Q5_0, Q5_1, IQ4_NL (blocks of 32, Q8_0
 * or Q8_1 activations) and Q2_K, Q3_K, IQ4_XS (super-blocks of 256, Q8_K
 * activations); the vec-dot of each is its 1x1 tile. Compiled with AVX-512
 * flags, called only after a CPUID check. Integer sums are exact; each block
 * (or super-block) sum is scaled by d_w * d_a in float, as the reference. */
#include <immintrin.h>
#include <stddef.h>

#include "llm/kernels_internal.h"

static inline float h2f(ggml_half h) {
    return _cvtsh_ss(h);
}

/* [d0 x 8, d1 x 8] as floats from two fp16 values. */
static inline __m512 half_pair(ggml_half d0, ggml_half d1) {
    __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)d0 | ((uint32_t)d1 << 16))));
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(f));
}

/* [m0, 0 x 7, m1, 0 x 7]: a block's min in one lane, so that an fma with
 * half_pair(s0, s1) adds m * s once per block. */
static inline __m512 half_pair_one_lane(ggml_half m0, ggml_half m1) {
    __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)m0 | ((uint32_t)m1 << 16))));
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    return _mm512_maskz_permutexvar_ps(0x0101, idx, _mm512_castps128_ps512(f));
}

/* ======================================================= blocks of 32
 * Two blocks per 512-bit step, as the Q4_0 gemm: the weight quants as
 * unsigned bytes in element order (lanes 0-7 block b, 8-15 block b+1), the
 * activations' 64 signed bytes, vpdpbusd into 16 int32 lanes started at
 * -offset * (sum of the lane's 4 activations), so each lane is the exact
 * sum of (q - offset) * a. Offsets: Q5_0 16; IQ4_NL 128 (its levels are fed
 * as level + 128); Q4_1 and Q5_1 none, their min adds m * s per block. */
enum { F_Q4_1, F_Q5_0, F_Q5_1, F_IQ4_NL };

static inline size_t w32_size(const int T) {
    return T == F_Q4_1 ? sizeof(block_q4_1) : T == F_Q5_0 ? sizeof(block_q5_0)
         : T == F_Q5_1 ? sizeof(block_q5_1) : sizeof(block_iq4_nl);
}

static inline size_t w32_qs(const int T) {
    return T == F_Q4_1 ? offsetof(block_q4_1, qs) : T == F_Q5_0 ? offsetof(block_q5_0, qs)
         : T == F_Q5_1 ? offsetof(block_q5_1, qs) : offsetof(block_iq4_nl, qs);
}

static inline int w32_offset(const int T) {
    return T == F_Q5_0 ? 16 : T == F_IQ4_NL ? 128 : 0;
}

/* Activations: Q8_1 for the types with a min, Q8_0 otherwise. */
static inline int w32_q8_1(const int T) {
    return T == F_Q4_1 || T == F_Q5_1;
}

/* Weight quants of blocks at p and p + bs (p alone when single), unsigned,
 * element order. */
static inline __attribute__((always_inline)) __m512i load_w32(const uint8_t *p, size_t bs, int single, const int T) {
    const uint8_t *qs = p + w32_qs(T);
    __m256i t = _mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    if (!single) t = _mm256_inserti128_si256(t, _mm_loadu_si128((const __m128i *)(qs + bs)), 1);
    /* [qs0, qs1, qs0 >> 4, qs1 >> 4] -> nibbles -> [lo0, hi0, lo1, hi1] */
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(t), _mm256_srli_epi16(t, 4), 1);
    z = _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
    z = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
    if (T == F_Q5_0 || T == F_Q5_1) {
        /* the fifth bits: bit j of qh is element j's */
        size_t qh_off = T == F_Q5_0 ? offsetof(block_q5_0, qh) : offsetof(block_q5_1, qh);
        uint32_t h0, h1 = 0;
        memcpy(&h0, p + qh_off, 4);
        if (!single) memcpy(&h1, p + bs + qh_off, 4);
        z = _mm512_mask_add_epi8(z, (__mmask64)h0 | (__mmask64)h1 << 32, z, _mm512_set1_epi8(16));
    }
    if (T == F_IQ4_NL) {
        /* level + 128 by a byte shuffle of the table (per 128-bit lane) */
        __m128i lv = _mm_xor_si128(_mm_loadu_si128((const __m128i *)llm_iq4nl_values), _mm_set1_epi8((char)0x80));
        z = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(lv), z);
    }
    if (single) z = _mm512_maskz_mov_epi64(0x0F, z);
    return z;
}

static inline __attribute__((always_inline)) void
gemm32_step(const uint8_t *W, size_t ldw, const uint8_t *A, size_t lda, int b, __m512 acc[4][4],
            const int RM, const int TN, const int T, const int single) {
    const size_t bs = w32_size(T), abs_ = w32_q8_1(T) ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t aqs = w32_q8_1(T) ? offsetof(block_q8_1, qs) : offsetof(block_q8_0, qs);
    const int off = w32_offset(T);
    __m512i wq[4];
    __m512 dw[4], mw[4];
#pragma GCC unroll 4
    for (int r = 0; r < RM; r++) {
        const uint8_t *p = W + r * ldw + b * bs;
        ggml_half d0, d1 = 0;
        memcpy(&d0, p, 2);
        if (!single) memcpy(&d1, p + bs, 2);
        wq[r] = load_w32(p, bs, single, T);
        dw[r] = half_pair(d0, d1);
        if (w32_q8_1(T)) {
            ggml_half m0, m1 = 0;
            memcpy(&m0, p + 2, 2);      /* Q4_1 and Q5_1 keep m right after d */
            if (!single) memcpy(&m1, p + bs + 2, 2);
            mw[r] = half_pair_one_lane(m0, m1);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < TN; t++) {
        const uint8_t *y = A + t * lda + b * abs_;
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(y + aqs));
        __m256i a1 = single ? _mm256_setzero_si256() : _mm256_loadu_si256((const __m256i *)(y + abs_ + aqs));
        __m512i a = _mm512_inserti64x4(_mm512_castsi256_si512(a0), a1, 1);
        __m512i start = _mm512_setzero_si512();
        if (off)
            start = _mm512_sub_epi32(start, _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)off), a));
        ggml_half e0, e1 = 0;
        memcpy(&e0, y, 2);
        if (!single) memcpy(&e1, y + abs_, 2);
        __m512 da = half_pair(e0, e1), sa = _mm512_setzero_ps();
        if (w32_q8_1(T)) {
            ggml_half s0, s1 = 0;
            memcpy(&s0, y + offsetof(block_q8_1, s), 2);
            if (!single) memcpy(&s1, y + abs_ + offsetof(block_q8_1, s), 2);
            sa = half_pair(s0, s1);
        }
#pragma GCC unroll 4
        for (int r = 0; r < RM; r++) {
            __m512i s = _mm512_dpbusd_epi32(start, wq[r], a);
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw[r], da), acc[r][t]);
            if (w32_q8_1(T)) acc[r][t] = _mm512_fmadd_ps(mw[r], sa, acc[r][t]);
        }
    }
}

static inline __attribute__((always_inline)) void
gemm32_tile(int nb, const uint8_t *W, size_t ldw, const uint8_t *A, size_t lda, float *Y, size_t ldy,
            const int RM, const int TN, const int T) {
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < RM; r++)
#pragma GCC unroll 4
        for (int t = 0; t < TN; t++) acc[r][t] = _mm512_setzero_ps();
    int b = 0;
    for (; b + 1 < nb; b += 2) {
        if (TN == 1) {
            /* decode streams each weight row once: prefetch ~1 KB ahead */
#pragma GCC unroll 4
            for (int r = 0; r < RM; r++) _mm_prefetch((const char *)(W + r * ldw + b * w32_size(T)) + 1024, _MM_HINT_T0);
        }
        gemm32_step(W, ldw, A, lda, b, acc, RM, TN, T, 0);
    }
    if (b < nb) gemm32_step(W, ldw, A, lda, b, acc, RM, TN, T, 1);
#pragma GCC unroll 4
    for (int r = 0; r < RM; r++)
#pragma GCC unroll 4
        for (int t = 0; t < TN; t++) Y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

#define G32_CASE(rm, tn) \
    case (rm) * 8 + (tn): gemm32_tile(nb, W, ldw, A, lda, Yt, ldy, rm, tn, T); break;

/* 4 x 4 tiles for the offset types; 3 x 4 for those with a min (one more
 * register per row). */
static inline __attribute__((always_inline)) void
gemm32(int n, const void *W_, size_t ldw, const void *A_, size_t lda, float *Y, size_t ldy, int nr, int nt,
       const int T) {
    const int RMX = w32_q8_1(T) ? 3 : 4;
    int nb = n / 32;
    for (int r0 = 0; r0 < nr; r0 += RMX) {
        int rm = nr - r0 < RMX ? nr - r0 : RMX;
        const uint8_t *W = (const uint8_t *)W_ + (size_t)r0 * ldw;
        for (int t0 = 0; t0 < nt; t0 += 4) {
            int tn = nt - t0 < 4 ? nt - t0 : 4;
            const uint8_t *A = (const uint8_t *)A_ + (size_t)t0 * lda;
            float *Yt = Y + (size_t)t0 * ldy + r0;
            switch (rm * 8 + tn) {
                G32_CASE(4, 4) G32_CASE(4, 3) G32_CASE(4, 2) G32_CASE(4, 1)
                G32_CASE(3, 4) G32_CASE(3, 3) G32_CASE(3, 2) G32_CASE(3, 1)
                G32_CASE(2, 4) G32_CASE(2, 3) G32_CASE(2, 2) G32_CASE(2, 1)
                G32_CASE(1, 4) G32_CASE(1, 3) G32_CASE(1, 2) G32_CASE(1, 1)
            }
        }
    }
}

#define GEMM32_FN(name, T)                                                                               \
    static void gemm_##name(int n, const void *W, size_t ldw, const void *A, size_t lda, float *Y,       \
                            size_t ldy, int nr, int nt) {                                                \
        gemm32(n, W, ldw, A, lda, Y, ldy, nr, nt, T);                                                    \
    }                                                                                                    \
    static float dot_##name(int n, const void *w, const void *a) {                                       \
        float y;                                                                                         \
        gemm_##name(n, w, 0, a, 0, &y, 1, 1, 1);                                                         \
        return y;                                                                                        \
    }

GEMM32_FN(q4_1, F_Q4_1)
GEMM32_FN(q5_0, F_Q5_0)
GEMM32_FN(q5_1, F_Q5_1)
GEMM32_FN(iq4_nl, F_IQ4_NL)

/* ================================================ super-blocks of 256
 * Per 64 elements: vpmaddubsw (unsigned weight values x signed Q8_K bytes ->
 * int16 pairs, no saturation: at most 7 * 128 * 2) and vpdpwssd with the
 * int16 sub-block scales into exact int32 sums over the super-block; then
 * one conversion and d_w * d_a per super-block. 3 x 3 tiles, as the Q4_K /
 * Q6_K gemm. Q2_K: quants 0..3, the mins through the bsums. Q3_K: quants
 * fed as low | high << 2 (0..7), the -4 through the bsums. IQ4_XS: the
 * levels with the sign trick (|level| <= 127; Q8_K bytes are never -128). */
enum { F_Q2_K, F_Q3_K, F_IQ4_XS };

static inline size_t wk_size(const int T) {
    return T == F_Q2_K ? sizeof(block_q2_K) : T == F_Q3_K ? sizeof(block_q3_K) : sizeof(block_iq4_xs);
}

/* int16 lanes [v_4c x 8, v_4c+1 x 8, v_4c+2 x 8, v_4c+3 x 8]: the scales of
 * the 4 sub-blocks of 16 in chunk c of 64 elements (Q2_K, Q3_K). */
static inline __m512i idx16_chunk(int c) {
    short v[32];
    for (int l = 0; l < 32; l++) v[l] = (short)(4 * c + l / 8);
    return _mm512_loadu_si512((const void *)v);
}

/* int16 lanes [v_2c x 16, v_2c+1 x 16]: sub-blocks of 32 (IQ4_XS). */
static inline __m512i idx32_chunk(int c) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16((short)(2 * c))),
                              _mm256_set1_epi16((short)(2 * c + 1)), 1);
}

static inline __attribute__((always_inline)) void
gemmk_tile(int nsb, const uint8_t *W, size_t ldw, const uint8_t *A, size_t lda, float *Y, size_t ldy,
           const int RM, const int TN, const int T) {
    const size_t bs = wk_size(T);
    __m512 acc[3][3];
    __m512i idx[4];
    for (int c = 0; c < 4; c++) idx[c] = T == F_IQ4_XS ? idx32_chunk(c) : idx16_chunk(c);
    /* crumb shifts per int16 lane: low half 2 * (2c % 4)... set per chunk below */
    const __m512i m3 = _mm512_set1_epi8(3), m4 = _mm512_set1_epi8(0x0F);
    const __m128i lv = _mm_loadu_si128((const __m128i *)llm_iq4nl_values);
#pragma GCC unroll 3
    for (int r = 0; r < RM; r++)
#pragma GCC unroll 3
        for (int t = 0; t < TN; t++) acc[r][t] = _mm512_setzero_ps();
    for (int b = 0; b < nsb; b++) {
        if (TN == 1) {
#pragma GCC unroll 3
            for (int r = 0; r < RM; r++)
                for (size_t o = 0; o < bs; o += 64)
                    _mm_prefetch((const char *)(W + r * ldw + (b + 6) * bs) + o, _MM_HINT_T0);
        }
        __m512i sc16[3], hq[3];
        __m256i mins16[3];
        float dw[3], dmw[3];
        __m512i isum[3][3];
#pragma GCC unroll 3
        for (int r = 0; r < RM; r++) {
            const uint8_t *p = W + r * ldw + b * bs;
            if (T == F_Q2_K) {
                const block_q2_K *x = (const block_q2_K *)p;
                __m128i s = _mm_loadu_si128((const __m128i *)x->scales);
                sc16[r] = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_and_si128(s, _mm_set1_epi8(0x0F))));
                mins16[r] = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(0x0F)));
                dw[r] = h2f(x->d);
                dmw[r] = h2f(x->dmin);
            } else if (T == F_Q3_K) {
                const block_q3_K *x = (const block_q3_K *)p;
                int8_t sc[16];
                llm_q3k_scales(x->scales, sc);
                sc16[r] = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc)));
                hq[r] = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)x->hmask));
                dw[r] = h2f(x->d);
            } else {
                const block_iq4_xs *x = (const block_iq4_xs *)p;
                short ls[8];
                for (int j = 0; j < 8; j++)
                    ls[j] = (short)((((x->scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((x->scales_h >> (2 * j)) & 3) << 4)) - 32);
                sc16[r] = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)ls));
                dw[r] = h2f(x->d);
            }
        }
        /* the start of each sum: Q3_K -4 * sum_j sc_j * bsum_j (8 lanes) */
#pragma GCC unroll 3
        for (int t = 0; t < TN; t++) {
            const block_q8_K *y = (const block_q8_K *)(A + t * lda) + b;
            __m256i bsv = _mm256_loadu_si256((const __m256i *)y->bsums);
#pragma GCC unroll 3
            for (int r = 0; r < RM; r++) {
                isum[r][t] = _mm512_setzero_si512();
                if (T == F_Q3_K) {
                    __m256i c = _mm256_slli_epi32(_mm256_madd_epi16(_mm512_castsi512_si256(sc16[r]), bsv), 2);
                    isum[r][t] = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), c));
                }
            }
        }
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m512i wq[3], sck[3];
#pragma GCC unroll 3
            for (int r = 0; r < RM; r++) {
                const uint8_t *p = W + r * ldw + b * bs;
                if (T == F_IQ4_XS) {
                    /* sub-blocks 2c, 2c+1: 16 bytes each, low nibbles first */
                    __m256i q = _mm256_loadu_si256((const __m256i *)(((const block_iq4_xs *)p)->qs + 32 * c));
                    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
                    z = _mm512_shuffle_i64x2(_mm512_and_si512(z, m4), _mm512_and_si512(z, m4), _MM_SHUFFLE(3, 1, 2, 0));
                    wq[r] = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(lv), z);   /* signed levels */
                } else {
                    /* elements 64c..64c+63 are crumbs s0 = 2 (c % 2) and s0 + 1 of the
                     * 32 bytes at 32 (c / 2) */
                    const uint8_t *qs = T == F_Q2_K ? ((const block_q2_K *)p)->qs : ((const block_q3_K *)p)->qs;
                    __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qs + 32 * (c / 2))));
                    int s0 = 2 * (c % 2);
                    __m512i sh = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * s0)), _mm256_set1_epi16((short)(2 * s0 + 2)), 1);
                    wq[r] = _mm512_and_si512(_mm512_srlv_epi16(q, sh), m3);
                    if (T == F_Q3_K) {
                        int bit = 4 * (c / 2) + s0;
                        __m512i hb = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << bit)),
                                                        _mm256_set1_epi8((char)(1 << (bit + 1))), 1);
                        wq[r] = _mm512_mask_add_epi8(wq[r], _mm512_test_epi8_mask(hq[r], hb), wq[r], _mm512_set1_epi8(4));
                    }
                }
                sck[r] = _mm512_permutexvar_epi16(idx[c], sc16[r]);
            }
#pragma GCC unroll 3
            for (int t = 0; t < TN; t++) {
                const block_q8_K *y = (const block_q8_K *)(A + t * lda) + b;
                __m512i a = _mm512_loadu_si512((const void *)(y->qs + 64 * c));
#pragma GCC unroll 3
                for (int r = 0; r < RM; r++) {
                    __m512i p;
                    if (T == F_IQ4_XS) {
                        __mmask64 neg = _mm512_movepi8_mask(wq[r]);
                        p = _mm512_maddubs_epi16(_mm512_abs_epi8(wq[r]), _mm512_mask_sub_epi8(a, neg, _mm512_setzero_si512(), a));
                    } else {
                        p = _mm512_maddubs_epi16(wq[r], a);
                    }
                    isum[r][t] = _mm512_dpwssd_epi32(isum[r][t], p, sck[r]);
                }
            }
        }
#pragma GCC unroll 3
        for (int t = 0; t < TN; t++) {
            const block_q8_K *y = (const block_q8_K *)(A + t * lda) + b;
#pragma GCC unroll 3
            for (int r = 0; r < RM; r++) {
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r][t]), _mm512_set1_ps(dw[r] * y->d), acc[r][t]);
                if (T == F_Q2_K) {
                    /* mins: m_j * bsum_j, 8 int32 lanes */
                    __m256i bsv = _mm256_loadu_si256((const __m256i *)y->bsums);
                    __m256 mins = _mm256_cvtepi32_ps(_mm256_madd_epi16(mins16[r], bsv));
                    acc[r][t] = _mm512_fnmadd_ps(_mm512_zextps256_ps512(mins), _mm512_set1_ps(dmw[r] * y->d), acc[r][t]);
                }
            }
        }
    }
#pragma GCC unroll 3
    for (int r = 0; r < RM; r++)
#pragma GCC unroll 3
        for (int t = 0; t < TN; t++) Y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

#define GK_CASE(rm, tn) \
    case (rm) * 8 + (tn): gemmk_tile(nsb, W, ldw, A, lda, Yt, ldy, rm, tn, T); break;

static inline __attribute__((always_inline)) void
gemmk(int n, const void *W_, size_t ldw, const void *A_, size_t lda, float *Y, size_t ldy, int nr, int nt,
      const int T) {
    int nsb = n / QK_K;
    for (int r0 = 0; r0 < nr; r0 += 3) {
        int rm = nr - r0 < 3 ? nr - r0 : 3;
        const uint8_t *W = (const uint8_t *)W_ + (size_t)r0 * ldw;
        for (int t0 = 0; t0 < nt; t0 += 3) {
            int tn = nt - t0 < 3 ? nt - t0 : 3;
            const uint8_t *A = (const uint8_t *)A_ + (size_t)t0 * lda;
            float *Yt = Y + (size_t)t0 * ldy + r0;
            switch (rm * 8 + tn) {
                GK_CASE(3, 3) GK_CASE(3, 2) GK_CASE(3, 1)
                GK_CASE(2, 3) GK_CASE(2, 2) GK_CASE(2, 1)
                GK_CASE(1, 3) GK_CASE(1, 2) GK_CASE(1, 1)
            }
        }
    }
}

#define GEMMK_FN(name, T)                                                                                \
    static void gemm_##name(int n, const void *W, size_t ldw, const void *A, size_t lda, float *Y,       \
                            size_t ldy, int nr, int nt) {                                                \
        gemmk(n, W, ldw, A, lda, Y, ldy, nr, nt, T);                                                     \
    }                                                                                                    \
    static float dot_##name(int n, const void *w, const void *a) {                                       \
        float y;                                                                                         \
        gemm_##name(n, w, 0, a, 0, &y, 1, 1, 1);                                                         \
        return y;                                                                                        \
    }

GEMMK_FN(q2_K, F_Q2_K)
GEMMK_FN(q3_K, F_Q3_K)
GEMMK_FN(iq4_xs, F_IQ4_XS)

void llm_kernels_formats_avx512_fill(llm_kernel_table *t) {
    t->vec_dot[GGML_TYPE_Q4_1] = dot_q4_1;
    t->gemm[GGML_TYPE_Q4_1] = gemm_q4_1;
    t->vec_dot[GGML_TYPE_Q5_0] = dot_q5_0;
    t->gemm[GGML_TYPE_Q5_0] = gemm_q5_0;
    t->vec_dot[GGML_TYPE_Q5_1] = dot_q5_1;
    t->gemm[GGML_TYPE_Q5_1] = gemm_q5_1;
    t->vec_dot[GGML_TYPE_IQ4_NL] = dot_iq4_nl;
    t->gemm[GGML_TYPE_IQ4_NL] = gemm_iq4_nl;
    t->vec_dot[GGML_TYPE_Q2_K] = dot_q2_K;
    t->gemm[GGML_TYPE_Q2_K] = gemm_q2_K;
    t->vec_dot[GGML_TYPE_Q3_K] = dot_q3_K;
    t->gemm[GGML_TYPE_Q3_K] = gemm_q3_K;
    t->vec_dot[GGML_TYPE_IQ4_XS] = dot_iq4_xs;
    t->gemm[GGML_TYPE_IQ4_XS] = gemm_iq4_xs;
}
