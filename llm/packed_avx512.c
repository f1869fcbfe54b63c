/* packed_avx512.c — AVX-512 VNNI gemms over packed weight groups
 * (llm/repack.c has the layouts) and the activation stripes; only called
 * after a CPUID check.
 *
 * Every kernel works on 16 rows (one group) per 512-bit vector: a weight
 * vector holds 4 consecutive unsigned quants of each of the 16 rows, and
 * vpdpbusd adds to each row's int32 lane its dot with 4 signed activation
 * quants broadcast from the stripe (a memory operand, {1to16}). A block's
 * integer sums thus finish in the lanes, exact, and its scales are applied
 * with one conversion and one fma per 16 rows and token. Offsets come in
 * through the stripe's sums: Q4_0 stores q for q - 8, so each block sum
 * starts at -8 * sum(a); Q8_0 stores w + 128 and starts at -128 * sum(a);
 * Q6_K stores q for q - 32 and starts each 16-sum at -32 * sum(a); Q4_K's
 * mins are a separate int16-pair product (vpdpwssd) with the 32-sums. */
#include <immintrin.h>

#include "llm/kernels_internal.h"

#define G LLM_PACK_ROWS

/* acc + dpbusd(w, 4 bytes at p broadcast): the broadcast as the
 * instruction's memory operand ({1to16}), which gcc 12 does not fold from
 * _mm512_set1_epi32 by itself; saves a register and an instruction per
 * product. */
static inline __m512i dpb(__m512i acc, __m512i w, const void *p) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const int32_t *)p));
    return acc;
}

static inline __m512i dpw(__m512i acc, __m512i w, const void *p) {
    __asm__("vpdpwssd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const int32_t *)p));
    return acc;
}

static inline __mmask16 row_mask(int rows) {
    return rows >= G ? (__mmask16)0xFFFF : (__mmask16)((1u << rows) - 1);
}

/* (a & c) | b, as one vpternlogd: the truth table of f(a, b, c). */
#define TERN_AC_OR_B 0xEC

/* ------------------------------------------------------------ Q4_0 / Q8_0
 * One tile: RG groups x TN tokens (slots s0.. of the stripe tile A, tt
 * wide) over nb blocks. For one token (decode) the low and high nibble
 * sums go to separate accumulators, which halves the dependency chains of
 * vpdpbusd. */
static inline __attribute__((always_inline)) void
q4_0_tile(int n, const uint8_t *g0, size_t gb, const uint8_t *A, int tt, int s0, float *Y, size_t ldy, int rows,
          const int RG, const int TN) {
    const int nb = n / 32;
    const size_t doff = (size_t)nb * 256;
    const int8_t *aq = (const int8_t *)A + s0 * 32;
    const float *ad = (const float *)(A + llm_s32_d(n, tt)) + s0;
    const int32_t *an = (const int32_t *)(A + llm_s32_ns(n, tt)) + s0;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[2][8];
#pragma GCC unroll 2
    for (int g = 0; g < RG; g++)
#pragma GCC unroll 8
        for (int t = 0; t < TN; t++) acc[g][t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const int8_t *ab = aq + (size_t)b * tt * 32;
        const float *db = ad + (size_t)b * tt;
        const int32_t *nbp = an + (size_t)b * tt;
        __m512i lo[2][8], hi[2][8];
#pragma GCC unroll 8
        for (int t = 0; t < TN; t++) {
            __m512i init = _mm512_slli_epi32(_mm512_set1_epi32(nbp[t]), 3);
#pragma GCC unroll 2
            for (int g = 0; g < RG; g++) {
                lo[g][t] = init;
                hi[g][t] = _mm512_setzero_si512();
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
#pragma GCC unroll 2
            for (int g = 0; g < RG; g++) {
                __m512i z = _mm512_load_si512(g0 + g * gb + ((size_t)b * 4 + i) * 64);
                __m512i wl = _mm512_and_si512(z, m4);
                __m512i wh = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
#pragma GCC unroll 8
                for (int t = 0; t < TN; t++) {
                    lo[g][t] = dpb(lo[g][t], wl, ab + t * 32 + 4 * i);
                    if (TN == 1) hi[g][t] = dpb(hi[g][t], wh, ab + t * 32 + 16 + 4 * i);
                    else lo[g][t] = dpb(lo[g][t], wh, ab + t * 32 + 16 + 4 * i);
                }
            }
        }
#pragma GCC unroll 2
        for (int g = 0; g < RG; g++) {
            __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(g0 + g * gb + doff + (size_t)b * 32)));
#pragma GCC unroll 8
            for (int t = 0; t < TN; t++) {
                __m512i s = TN == 1 ? _mm512_add_epi32(lo[g][t], hi[g][t]) : lo[g][t];
                acc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(db[t])), acc[g][t]);
            }
        }
    }
#pragma GCC unroll 2
    for (int g = 0; g < RG; g++)
#pragma GCC unroll 8
        for (int t = 0; t < TN; t++) _mm512_mask_storeu_ps(Y + t * ldy + g * G, row_mask(rows - g * G), acc[g][t]);
}

static inline __attribute__((always_inline)) void
q8_0_tile(int n, const uint8_t *g0, size_t gb, const uint8_t *A, int tt, int s0, float *Y, size_t ldy, int rows,
          const int RG, const int TN) {
    const int nb = n / 32;
    const size_t doff = (size_t)nb * 512;
    const int8_t *aq = (const int8_t *)A + s0 * 32;
    const float *ad = (const float *)(A + llm_s32_d(n, tt)) + s0;
    const int32_t *an = (const int32_t *)(A + llm_s32_ns(n, tt)) + s0;
    __m512 acc[2][8];
#pragma GCC unroll 2
    for (int g = 0; g < RG; g++)
#pragma GCC unroll 8
        for (int t = 0; t < TN; t++) acc[g][t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const int8_t *ab = aq + (size_t)b * tt * 32;
        const float *db = ad + (size_t)b * tt;
        const int32_t *nbp = an + (size_t)b * tt;
        __m512i s0v[2][8], s1v[2][8];
#pragma GCC unroll 8
        for (int t = 0; t < TN; t++) {
            __m512i init = _mm512_slli_epi32(_mm512_set1_epi32(nbp[t]), 7);
#pragma GCC unroll 2
            for (int g = 0; g < RG; g++) {
                s0v[g][t] = init;
                s1v[g][t] = _mm512_setzero_si512();
            }
        }
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
#pragma GCC unroll 2
            for (int g = 0; g < RG; g++) {
                __m512i w = _mm512_load_si512(g0 + g * gb + ((size_t)b * 8 + k) * 64);
#pragma GCC unroll 8
                for (int t = 0; t < TN; t++) {
                    if (TN == 1 && (k & 1)) s1v[g][t] = dpb(s1v[g][t], w, ab + t * 32 + 4 * k);
                    else s0v[g][t] = dpb(s0v[g][t], w, ab + t * 32 + 4 * k);
                }
            }
        }
#pragma GCC unroll 2
        for (int g = 0; g < RG; g++) {
            __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(g0 + g * gb + doff + (size_t)b * 32)));
#pragma GCC unroll 8
            for (int t = 0; t < TN; t++) {
                __m512i s = TN == 1 ? _mm512_add_epi32(s0v[g][t], s1v[g][t]) : s0v[g][t];
                acc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(db[t])), acc[g][t]);
            }
        }
    }
#pragma GCC unroll 2
    for (int g = 0; g < RG; g++)
#pragma GCC unroll 8
        for (int t = 0; t < TN; t++) _mm512_mask_storeu_ps(Y + t * ldy + g * G, row_mask(rows - g * G), acc[g][t]);
}

/* ------------------------------------------------------------- Q4_K / Q5_K
 * Per sub-block of 32: 8 vpdpbusd into a fresh sum, times the sub-block's
 * 6-bit scale (vpmulld), added to the super-block's int32 total. Mins:
 * vpdpwssd of the (m_2p, m_2p+1) int16 pairs with the activation 32-sums.
 * Q5_K (Q5 = 1) merges each k-step's fifth bit, taken from the sub-block's
 * bit plane, into bit 4 of the nibble (one shift, and, vpternlogd). */
static inline __attribute__((always_inline)) void
qK_tile(int n, const uint8_t *g0, const uint8_t *A, int tt, int s0, float *Y, size_t ldy, int rows, const int TN,
        const int Q5) {
    const int nsb = n / QK_K;
    const size_t SB = Q5 ? 2880 : 2368, H = 2048, SC = Q5 ? 2560 : 2048, M = SC + 128, D = M + 128;
    const int8_t *aq = (const int8_t *)A + s0 * QK_K;
    const float *ad = (const float *)(A + llm_s256_d(n, tt)) + s0;
    const int16_t *ab32 = (const int16_t *)(A + llm_s256_b32(n, tt)) + 2 * s0;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m10 = _mm512_set1_epi8(0x10);
    __m512 acc[8];
#pragma GCC unroll 8
    for (int t = 0; t < TN; t++) acc[t] = _mm512_setzero_ps();
    for (int sb = 0; sb < nsb; sb++) {
        const uint8_t *o = g0 + (size_t)sb * SB;
        const int8_t *as = aq + (size_t)sb * tt * QK_K;
        __m512i tot[8];
#pragma GCC unroll 8
        for (int t = 0; t < TN; t++) tot[t] = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) {
            __m512i sc = _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(o + SC + 16 * j)));
            __m512i hb = Q5 ? _mm512_load_si512(o + H + 64 * j) : _mm512_setzero_si512();
            __m512i s[8];
#pragma GCC unroll 8
            for (int t = 0; t < TN; t++) s[t] = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                __m512i z = _mm512_load_si512(o + ((size_t)j * 4 + i) * 64);
                __m512i wl, wh;
                if (Q5) {
                    /* bit i -> bit 4 (shift left 4 - i), bit 4 + i -> bit 4 (shift right i) */
                    __m512i hl = _mm512_and_si512(_mm512_slli_epi16(hb, 4 - i), m10);
                    __m512i hh = _mm512_and_si512(_mm512_srli_epi16(hb, i), m10);
                    wl = _mm512_ternarylogic_epi32(z, hl, m4, TERN_AC_OR_B);
                    wh = _mm512_ternarylogic_epi32(_mm512_srli_epi16(z, 4), hh, m4, TERN_AC_OR_B);
                } else {
                    wl = _mm512_and_si512(z, m4);
                    wh = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
                }
#pragma GCC unroll 8
                for (int t = 0; t < TN; t++) {
                    s[t] = dpb(s[t], wl, as + t * QK_K + 32 * j + 4 * i);
                    s[t] = dpb(s[t], wh, as + t * QK_K + 32 * j + 16 + 4 * i);
                }
            }
#pragma GCC unroll 8
            for (int t = 0; t < TN; t++) tot[t] = _mm512_add_epi32(tot[t], _mm512_mullo_epi32(s[t], sc));
        }
        __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(o + D)));
        __m512 dmw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(o + D + 32)));
        __m512i mp[4];
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++) mp[p] = _mm512_cvtepu8_epi16(_mm256_load_si256((const __m256i *)(o + M + 32 * p)));
        const int16_t *bsb = ab32 + (size_t)sb * 4 * tt * 2;
        const float *dsb = ad + (size_t)sb * tt;
#pragma GCC unroll 8
        for (int t = 0; t < TN; t++) {
            __m512i ms = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) ms = dpw(ms, mp[p], bsb + ((size_t)p * tt + t) * 2);
            __m512 da = _mm512_set1_ps(dsb[t]);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[t]), _mm512_mul_ps(dw, da), acc[t]);
            acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(ms), _mm512_mul_ps(dmw, da), acc[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < TN; t++) _mm512_mask_storeu_ps(Y + t * ldy, row_mask(rows), acc[t]);
}

static inline __attribute__((always_inline)) void
q4_K_tile(int n, const uint8_t *g0, const uint8_t *A, int tt, int s0, float *Y, size_t ldy, int rows, const int TN) {
    qK_tile(n, g0, A, tt, s0, Y, ldy, rows, TN, 0);
}

static inline __attribute__((always_inline)) void
q5_K_tile(int n, const uint8_t *g0, const uint8_t *A, int tt, int s0, float *Y, size_t ldy, int rows, const int TN) {
    qK_tile(n, g0, A, tt, s0, Y, ldy, rows, TN, 1);
}

/* ------------------------------------------------------------------ Q6_K
 * Per sub-block of 16: three vectors give the 4 k-steps (low nibbles from
 * N01/N23, 2-bit highs from H, merged with one vpternlogd each); each sum
 * starts at -32 * sum(a) and is scaled by the int8 sub-block scale. */
static inline __attribute__((always_inline)) void
q6_K_tile(int n, const uint8_t *g0, const uint8_t *A, int tt, int s0, float *Y, size_t ldy, int rows, const int TN) {
    const int nsb = n / QK_K;
    const int8_t *aq = (const int8_t *)A + s0 * QK_K;
    const float *ad = (const float *)(A + llm_s256_d(n, tt)) + s0;
    const int32_t *an = (const int32_t *)(A + llm_s256_ns16(n, tt)) + s0;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    __m512 acc[8];
#pragma GCC unroll 8
    for (int t = 0; t < TN; t++) acc[t] = _mm512_setzero_ps();
    for (int sb = 0; sb < nsb; sb++) {
        const uint8_t *o = g0 + (size_t)sb * 3392;
        const int8_t *as = aq + (size_t)sb * tt * QK_K;
        __m512i tot[8];
#pragma GCC unroll 8
        for (int t = 0; t < TN; t++) tot[t] = _mm512_setzero_si512();
        for (int s = 0; s < 16; s++) {
            const uint8_t *v = o + (size_t)s * 192;
            const int32_t *ns = an + ((size_t)sb * 16 + s) * tt;
            __m512i n01 = _mm512_load_si512(v), n23 = _mm512_load_si512(v + 64), h = _mm512_load_si512(v + 128);
            __m512i w0 = _mm512_ternarylogic_epi32(n01, _mm512_and_si512(_mm512_slli_epi16(h, 4), m30), m4, TERN_AC_OR_B);
            __m512i w1 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(n01, 4), _mm512_and_si512(_mm512_slli_epi16(h, 2), m30),
                                                   m4, TERN_AC_OR_B);
            __m512i w2 = _mm512_ternarylogic_epi32(n23, _mm512_and_si512(h, m30), m4, TERN_AC_OR_B);
            __m512i w3 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(n23, 4), _mm512_and_si512(_mm512_srli_epi16(h, 2), m30),
                                                   m4, TERN_AC_OR_B);
            __m512i sc = _mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(o + 3072 + 16 * s)));
#pragma GCC unroll 8
            for (int t = 0; t < TN; t++) {
                const int8_t *a = as + t * QK_K + 16 * s;
                __m512i x = _mm512_slli_epi32(_mm512_set1_epi32(ns[t]), 5);
                x = dpb(x, w0, a);
                x = dpb(x, w1, a + 4);
                x = dpb(x, w2, a + 8);
                x = dpb(x, w3, a + 12);
                tot[t] = _mm512_add_epi32(tot[t], _mm512_mullo_epi32(x, sc));
            }
        }
        __m512 dw = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(o + 3328)));
        const float *dsb = ad + (size_t)sb * tt;
#pragma GCC unroll 8
        for (int t = 0; t < TN; t++)
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(tot[t]), _mm512_mul_ps(dw, _mm512_set1_ps(dsb[t])), acc[t]);
    }
#pragma GCC unroll 8
    for (int t = 0; t < TN; t++) _mm512_mask_storeu_ps(Y + t * ldy, row_mask(rows), acc[t]);
}

/* ------------------------------------------------------------ drivers
 * Decode (one token): two groups at a time for the 32-blocks (more
 * independent sums in flight), one for the K-quants (their sub-block sums
 * are already independent). Prefill: per group, the tile's 8 tokens at
 * once; the group's weights stay in L1 while the tokens stream from L2. */
#define Q32_DRIVER(name, tile)                                                                           \
    static void name(int n, const void *groups, size_t gb, int nr, const void *A, int tt, float *Y,     \
                     size_t ldy, int nt) {                                                               \
        const uint8_t *W = groups;                                                                       \
        int ng = (nr + G - 1) / G;                                                                       \
        for (int g = 0; g < ng;) {                                                                       \
            const uint8_t *gp = W + (size_t)g * gb;                                                      \
            int rows = nr - g * G;                                                                       \
            float *Yg = Y + g * G;                                                                       \
            if (nt == 1 && g + 1 < ng) {                                                                 \
                tile(n, gp, gb, A, tt, 0, Yg, ldy, rows, 2, 1);                                          \
                g += 2;                                                                                  \
                continue;                                                                                \
            }                                                                                            \
            switch (nt) {                                                                                \
            case 1: tile(n, gp, gb, A, tt, 0, Yg, ldy, rows, 1, 1); break;                               \
            case 2: tile(n, gp, gb, A, tt, 0, Yg, ldy, rows, 1, 2); break;                               \
            case 3: tile(n, gp, gb, A, tt, 0, Yg, ldy, rows, 1, 3); break;                               \
            case 4: tile(n, gp, gb, A, tt, 0, Yg, ldy, rows, 1, 4); break;                               \
            case 5: tile(n, gp, gb, A, tt, 0, Yg, ldy, rows, 1, 5); break;                               \
            case 6: tile(n, gp, gb, A, tt, 0, Yg, ldy, rows, 1, 6); break;                               \
            case 7: tile(n, gp, gb, A, tt, 0, Yg, ldy, rows, 1, 7); break;                               \
            default: tile(n, gp, gb, A, tt, 0, Yg, ldy, rows, 1, 8); break;                              \
            }                                                                                            \
            g++;                                                                                         \
        }                                                                                                \
    }

Q32_DRIVER(pgemm_q4_0, q4_0_tile)
Q32_DRIVER(pgemm_q8_0, q8_0_tile)

/* K-quant tokens per call: 8 (the whole stripe tile) measured 5-20%
 * faster than 6 in prefill (bench_kernels --ab, interleaved), despite 24
 * accumulators for the 8 tokens' sub-block sums, totals and floats. */
#ifndef KTN
#define KTN 8
#endif
#define K_DRIVER(name, tile)                                                                             \
    static void name(int n, const void *groups, size_t gb, int nr, const void *A, int tt, float *Y,     \
                     size_t ldy, int nt) {                                                               \
        const uint8_t *W = groups;                                                                       \
        int ng = (nr + G - 1) / G;                                                                       \
        for (int g = 0; g < ng; g++) {                                                                   \
            const uint8_t *gp = W + (size_t)g * gb;                                                      \
            int rows = nr - g * G;                                                                       \
            float *Yg = Y + g * G;                                                                       \
            for (int t0 = 0; t0 < nt; t0 += KTN) {                                                       \
                float *Yt = Yg + (size_t)t0 * ldy;                                                       \
                switch (nt - t0 < KTN ? nt - t0 : KTN) {                                                 \
                case 1: tile(n, gp, A, tt, t0, Yt, ldy, rows, 1); break;                                 \
                case 2: tile(n, gp, A, tt, t0, Yt, ldy, rows, 2); break;                                 \
                case 3: tile(n, gp, A, tt, t0, Yt, ldy, rows, 3); break;                                 \
                case 4: tile(n, gp, A, tt, t0, Yt, ldy, rows, 4); break;                                 \
                case 5: tile(n, gp, A, tt, t0, Yt, ldy, rows, 5); break;                                 \
                case 6: tile(n, gp, A, tt, t0, Yt, ldy, rows, 6); break;                                 \
                case 7: tile(n, gp, A, tt, t0, Yt, ldy, rows, 7); break;                                 \
                default: tile(n, gp, A, tt, t0, Yt, ldy, rows, 8); break;                                \
                }                                                                                        \
            }                                                                                            \
        }                                                                                                \
    }

K_DRIVER(pgemm_q4_K, q4_K_tile)
K_DRIVER(pgemm_q5_K, q5_K_tile)
K_DRIVER(pgemm_q6_K, q6_K_tile)

/* ------------------------------------------------------------- stripes
 * Bit-identical to the reference converters (tested byte for byte). */

/* Q8_0 rule per block of 32: d = amax/127 (rounded to fp16, stored as
 * float), q = round-half-even(x * (127/amax)). */
static void stripe_q8_32(const float *x, void *dst, int n, int tt, int slot) {
    uint8_t *base = dst;
    int8_t *q = (int8_t *)base;
    float *d = (float *)(base + llm_s32_d(n, tt));
    int32_t *ns = (int32_t *)(base + llm_s32_ns(n, tt));
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int b = 0; b < n / 32; b++) {
        __m512 v0 = _mm512_loadu_ps(x + 32 * b), v1 = _mm512_loadu_ps(x + 32 * b + 16);
        float am = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(v0, absmask), _mm512_and_ps(v1, absmask)));
        size_t k = (size_t)b * tt + slot;
        d[k] = _cvtsh_ss(_cvtss_sh(am / 127.f, _MM_FROUND_TO_NEAREST_INT));
        __m512 id = _mm512_set1_ps(am != 0.f ? 127.f / am : 0.f);
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
        _mm_storeu_si128((__m128i *)(q + k * 32), _mm512_cvtsepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(q + k * 32 + 16), _mm512_cvtsepi32_epi8(i1));
        ns[k] = -_mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
    }
}

/* Q8_K rule per block of 256: the element of largest magnitude with its
 * sign (the first one on ties), iscale = -127/max, q = min(127,
 * round-half-even(iscale * x)), d = 1/iscale; zero block when all zero. */
static void stripe_q8_256(const float *x, void *dst, int n, int tt, int slot) {
    uint8_t *base = dst;
    int8_t *q = (int8_t *)base;
    float *d = (float *)(base + llm_s256_d(n, tt));
    int32_t *ns16 = (int32_t *)(base + llm_s256_ns16(n, tt));
    int16_t *b32 = (int16_t *)(base + llm_s256_b32(n, tt));
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int sb = 0; sb < n / QK_K; sb++) {
        const float *xs = x + QK_K * sb;
        int8_t *qs = q + ((size_t)sb * tt + slot) * QK_K;
        int32_t sums[16];
        __m512 am = _mm512_setzero_ps();
        for (int k = 0; k < 16; k++) am = _mm512_max_ps(am, _mm512_and_ps(_mm512_loadu_ps(xs + 16 * k), absmask));
        float amax = _mm512_reduce_max_ps(am);
        if (amax == 0.f) {
            memset(qs, 0, QK_K);
            memset(sums, 0, sizeof sums);
            d[(size_t)sb * tt + slot] = 0;
        } else {
            float max = 0;
            __m512 va = _mm512_set1_ps(amax);
            for (int k = 0; k < 16; k++) {
                __m512 v = _mm512_loadu_ps(xs + 16 * k);
                __mmask16 hit = _mm512_cmp_ps_mask(_mm512_and_ps(v, absmask), va, _CMP_EQ_OQ);
                if (hit) {
                    max = xs[16 * k + __builtin_ctz(hit)];
                    break;
                }
            }
            float iscale = -127.f / max;
            __m512 is = _mm512_set1_ps(iscale);
            const __m512i c127 = _mm512_set1_epi32(127);
            for (int k = 0; k < 16; k++) {
                __m512i v = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(is, _mm512_loadu_ps(xs + 16 * k))), c127);
                _mm_storeu_si128((__m128i *)(qs + 16 * k), _mm512_cvtsepi32_epi8(v));
                sums[k] = _mm512_reduce_add_epi32(v);
            }
            d[(size_t)sb * tt + slot] = 1.f / iscale;
        }
        for (int j = 0; j < 16; j++) ns16[((size_t)sb * 16 + j) * tt + slot] = -sums[j];
        for (int j = 0; j < 8; j++)
            b32[(((size_t)sb * 4 + j / 2) * tt + slot) * 2 + j % 2] = (int16_t)(sums[2 * j] + sums[2 * j + 1]);
    }
}

void llm_packed_avx512_fill(llm_kernel_table *t) {
    t->pgemm[GGML_TYPE_Q4_0] = pgemm_q4_0;
    t->pgemm[GGML_TYPE_Q8_0] = pgemm_q8_0;
    t->pgemm[GGML_TYPE_Q4_K] = pgemm_q4_K;
    t->pgemm[GGML_TYPE_Q5_K] = pgemm_q5_K;
    t->pgemm[GGML_TYPE_Q6_K] = pgemm_q6_K;
    t->stripe[LLM_STRIPE_Q8_32] = stripe_q8_32;
    t->stripe[LLM_STRIPE_Q8_256] = stripe_q8_256;
}
