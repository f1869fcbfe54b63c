/* kernels_avx2.c — AVX2/FMA/F16C dot products and activation conversions;
 * compiled with AVX2 flags and only called after a CPUID check. Integer
 * products use the maddubs sign trick; block sums are exact int32 and are
 * scaled by d_w * d_a in float, as the reference does. */
#include <immintrin.h>

#include "llm/kernels_internal.h"

/* One fp16 to f32 with F16C: exact, and inline (the portable conversion is a
 * call per block otherwise). */
static inline float h2f(ggml_half h) {
    return _cvtsh_ss(h);
}

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* 32 signed bytes x 32 signed bytes -> 8 int32 partial sums. */
static inline __m256i dot_i8(__m256i x, __m256i y) {
    __m256i ax = _mm256_sign_epi8(x, x);
    __m256i sy = _mm256_sign_epi8(y, x);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

static float dot_q4_0(int n, const void *w, const void *a) {
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    const __m256i m4 = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int nb = n / QK4_0, i = 0;
    for (; i + 1 < nb; i += 2) {
        for (int k = 0; k < 2; k++) {
            __m128i t = _mm_loadu_si128((const __m128i *)x[i + k].qs);
            __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), m4);
            q = _mm256_sub_epi8(q, eight);
            __m256i p = dot_i8(q, _mm256_loadu_si256((const __m256i *)y[i + k].qs));
            __m256 d = _mm256_set1_ps(h2f(x[i + k].d) * h2f(y[i + k].d));
            if (k == 0) acc0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc0);
            else acc1 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc1);
        }
    }
    for (; i < nb; i++) {
        __m128i t = _mm_loadu_si128((const __m128i *)x[i].qs);
        __m256i q = _mm256_sub_epi8(_mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), m4), eight);
        __m256i p = dot_i8(q, _mm256_loadu_si256((const __m256i *)y[i].qs));
        __m256 d = _mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d));
        acc0 = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

static float dot_q8_0(int n, const void *w, const void *a) {
    const block_q8_0 *x = w;
    const block_q8_0 *y = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int nb = n / QK8_0, i = 0;
    for (; i + 1 < nb; i += 2) {
        __m256i p0 = dot_i8(_mm256_loadu_si256((const __m256i *)x[i].qs), _mm256_loadu_si256((const __m256i *)y[i].qs));
        __m256i p1 = dot_i8(_mm256_loadu_si256((const __m256i *)x[i + 1].qs), _mm256_loadu_si256((const __m256i *)y[i + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i + 1].d) * h2f(y[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++) {
        __m256i p0 = dot_i8(_mm256_loadu_si256((const __m256i *)x[i].qs), _mm256_loadu_si256((const __m256i *)y[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm256_cvtepi32_ps(p0), acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* ------------------------------------------------ Q4_0 / Q8_0 gemm tiles
 * 2 weight rows x 3 tokens per register tile (16 ymm registers), one block
 * per step. Q4_0: nibbles unsigned into vpmaddubsw, the -8 offset removed as
 * 8 * sum(a) computed once per token and block; Q8_0: the sign trick per
 * pair. Block sums are exact int32, scaled by d_w * d_a in float. */
static inline __attribute__((always_inline)) void
gemm_q0_tile(int nb, const uint8_t *W, size_t ldw, const uint8_t *A, size_t lda, float *Y, size_t ldy,
             const int RM, const int TN, const int Q4) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1), eight = _mm256_set1_epi8(8);
    const size_t wbs = Q4 ? sizeof(block_q4_0) : sizeof(block_q8_0);
    __m256 acc[2][3];
#pragma GCC unroll 2
    for (int r = 0; r < RM; r++)
#pragma GCC unroll 3
        for (int t = 0; t < TN; t++) acc[r][t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256i wv[2], wabs[2];
        __m256 dw[2];
#pragma GCC unroll 2
        for (int r = 0; r < RM; r++) {
            const uint8_t *wp = W + r * ldw + b * wbs;
            if (Q4) {
                const block_q4_0 *x = (const block_q4_0 *)wp;
                __m128i t = _mm_loadu_si128((const __m128i *)x->qs);
                wv[r] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), m4);
                dw[r] = _mm256_set1_ps(h2f(x->d));
            } else {
                const block_q8_0 *x = (const block_q8_0 *)wp;
                wv[r] = _mm256_loadu_si256((const __m256i *)x->qs);
                wabs[r] = _mm256_sign_epi8(wv[r], wv[r]);
                dw[r] = _mm256_set1_ps(h2f(x->d));
            }
        }
#pragma GCC unroll 3
        for (int t = 0; t < TN; t++) {
            const block_q8_0 *y = (const block_q8_0 *)(A + t * lda) + b;
            __m256i a = _mm256_loadu_si256((const __m256i *)y->qs);
            __m256 da = _mm256_set1_ps(h2f(y->d));
            __m256i corr = _mm256_setzero_si256();
            if (Q4) corr = _mm256_madd_epi16(_mm256_maddubs_epi16(eight, a), ones);
#pragma GCC unroll 2
            for (int r = 0; r < RM; r++) {
                __m256i p;
                if (Q4) {
                    p = _mm256_sub_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(wv[r], a), ones), corr);
                } else {
                    p = _mm256_madd_epi16(_mm256_maddubs_epi16(wabs[r], _mm256_sign_epi8(a, wv[r])), ones);
                }
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw[r], da), acc[r][t]);
            }
        }
    }
#pragma GCC unroll 2
    for (int r = 0; r < RM; r++)
#pragma GCC unroll 3
        for (int t = 0; t < TN; t++) Y[t * ldy + r] = hsum_ps(acc[r][t]);
}

#define GEMM0_CASE(rm, tn) \
    case (rm) * 8 + (tn): gemm_q0_tile(nb, W, ldw, A, lda, Yt, ldy, rm, tn, Q4); break;

static inline __attribute__((always_inline)) void
gemm_q0(int n, const void *W_, size_t ldw, const void *A_, size_t lda, float *Y, size_t ldy, int nr, int nt,
        const int Q4) {
    int nb = n / QK8_0;
    for (int r0 = 0; r0 < nr; r0 += 2) {
        int rm = nr - r0 < 2 ? nr - r0 : 2;
        const uint8_t *W = (const uint8_t *)W_ + (size_t)r0 * ldw;
        for (int t0 = 0; t0 < nt; t0 += 3) {
            int tn = nt - t0 < 3 ? nt - t0 : 3;
            const uint8_t *A = (const uint8_t *)A_ + (size_t)t0 * lda;
            float *Yt = Y + (size_t)t0 * ldy + r0;
            switch (rm * 8 + tn) {
                GEMM0_CASE(2, 3) GEMM0_CASE(2, 2) GEMM0_CASE(2, 1)
                GEMM0_CASE(1, 3) GEMM0_CASE(1, 2) GEMM0_CASE(1, 1)
            }
        }
    }
}

static void gemm_q4_0(int n, const void *W, size_t ldw, const void *A, size_t lda, float *Y, size_t ldy,
                      int nr, int nt) {
    gemm_q0(n, W, ldw, A, lda, Y, ldy, nr, nt, 1);
}

static void gemm_q8_0(int n, const void *W, size_t ldw, const void *A, size_t lda, float *Y, size_t ldy,
                      int nr, int nt) {
    gemm_q0(n, W, ldw, A, lda, Y, ldy, nr, nt, 0);
}

/* Q4_K x Q8_K: nibbles are unsigned, so maddubs takes them directly; the
 * mins are folded in through the activation's bsums in scalar code. */
static float dot_q4_K(int n, const void *w, const void *a) {
    const block_q4_K *x = w;
    const block_q8_K *y = a;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float accm = 0;
    for (int i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], m[8];
        for (int j = 0; j < 8; j++) llm_q4k_scale_min(j, x[i].scales, &sc[j], &m[j]);
        int summ = 0;
        for (int j = 0; j < 8; j++) summ += m[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        __m256i sumi = _mm256_setzero_si256();
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        for (int j = 0; j < 4; j++, q4 += 32, q8 += 64) {
            __m256i q = _mm256_loadu_si256((const __m256i *)q4);
            __m256i lo = _mm256_and_si256(q, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
            __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
            p0 = _mm256_madd_epi16(p0, _mm256_set1_epi16(sc[2 * j]));
            p1 = _mm256_madd_epi16(p1, _mm256_set1_epi16(sc[2 * j + 1]));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        float d = h2f(x[i].d) * y[i].d;
        float dmin = h2f(x[i].dmin) * y[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        accm += dmin * (float)summ;
    }
    return hsum_ps(acc) - accm;
}

/* Q5_K x Q8_K: Q4_K's kernel with the fifth bit (bit 2j / 2j+1 of qh[l]
 * for the chunk j's low / high nibbles) added as 16 to the nibbles. */
static float dot_q5_K(int n, const void *w, const void *a) {
    const block_q5_K *x = w;
    const block_q8_K *y = a;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    float accm = 0;
    for (int i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], m[8];
        for (int j = 0; j < 8; j++) llm_q4k_scale_min(j, x[i].scales, &sc[j], &m[j]);
        int summ = 0;
        for (int j = 0; j < 8; j++) summ += m[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        __m256i sumi = _mm256_setzero_si256();
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        __m256i H = _mm256_loadu_si256((const __m256i *)x[i].qh);
        for (int j = 0; j < 4; j++, q4 += 32, q8 += 64) {
            __m256i q = _mm256_loadu_si256((const __m256i *)q4);
            /* the bits are 0/1 per byte after the mask, so the 16-bit shift
             * by 4 stays inside each byte */
            __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(H, one), 4);
            __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 1), one), 4);
            H = _mm256_srli_epi16(H, 2);
            __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), h0);
            __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1);
            __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
            __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
            p0 = _mm256_madd_epi16(p0, _mm256_set1_epi16(sc[2 * j]));
            p1 = _mm256_madd_epi16(p1, _mm256_set1_epi16(sc[2 * j + 1]));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        float d = h2f(x[i].d) * y[i].d;
        float dmin = h2f(x[i].dmin) * y[i].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        accm += dmin * (float)summ;
    }
    return hsum_ps(acc) - accm;
}

/* Q6_K x Q8_K: the 6-bit quants are used unsigned (0..63) and the -32
 * offset is taken out through the bsums: sum sc*(q-32)*a = sum sc*q*a -
 * 32 * sum sc*bsum. */
static float dot_q6_K(int n, const void *w, const void *a) {
    const block_q6_K *x = w;
    const block_q8_K *y = a;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        __m256i sumi = _mm256_setzero_si256();
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales, *q8 = y[i].qs;
        for (int c = 0; c < 2; c++, ql += 64, qh += 32, sc += 8, q8 += 128) {
            __m256i L0 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i L1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i H = _mm256_loadu_si256((const __m256i *)qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(L0, m4), _mm256_and_si256(_mm256_slli_epi16(H, 4), m30));
            q[1] = _mm256_or_si256(_mm256_and_si256(L1, m4), _mm256_and_si256(_mm256_slli_epi16(H, 2), m30));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L0, 4), m4), _mm256_and_si256(H, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(H, 2), m30));
            for (int k = 0; k < 4; k++) {
                __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(q8 + 32 * k)));
                __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
            }
        }
        int bias = 0;
        for (int j = 0; j < 16; j++) bias += x[i].scales[j] * y[i].bsums[j];
        sum += h2f(x[i].d) * y[i].d * (float)(hsum_epi32(sumi) - 32 * bias);
    }
    return sum;
}

static float dot_f32(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline __m256 load_f16(const ggml_half *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static float dot_f16(const ggml_half *a, const ggml_half *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(load_f16(a + i), load_f16(b + i), s0);
        s1 = _mm256_fmadd_ps(load_f16(a + i + 8), load_f16(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(load_f16(a + i + 16), load_f16(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(load_f16(a + i + 24), load_f16(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(load_f16(a + i), load_f16(b + i), s0);
    float s = hsum_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += h2f(a[i]) * h2f(b[i]);
    return s;
}

static inline __m256 load_bf16(const ggml_bf16 *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

static float dot_bf16(const ggml_bf16 *a, const ggml_bf16 *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(load_bf16(a + i), load_bf16(b + i), s0);
        s1 = _mm256_fmadd_ps(load_bf16(a + i + 8), load_bf16(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(load_bf16(a + i + 16), load_bf16(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(load_bf16(a + i + 24), load_bf16(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(load_bf16(a + i), load_bf16(b + i), s0);
    float s = hsum_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += llm_ggml_bf16_to_fp32(a[i]) * llm_ggml_bf16_to_fp32(b[i]);
    return s;
}

static float vdot_f32(int n, const void *w, const void *a) { return dot_f32(w, a, n); }
static float vdot_f16(int n, const void *w, const void *a) { return dot_f16(w, a, n); }
static float vdot_bf16(int n, const void *w, const void *a) { return dot_bf16(w, a, n); }

static void fp32_to_fp16(const float *x, ggml_half *y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = llm_ggml_fp32_to_fp16(x[i]);
}

static void fp16_to_fp32(const ggml_half *x, float *y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_f16(x + i));
    for (; i < n; i++) y[i] = h2f(x[i]);
}

static void act_f16(const float *x, void *dst, int64_t n) {
    fp32_to_fp16(x, dst, (int)n);
}

/* bf16 rounding to nearest even in integer arithmetic, NaN kept quiet —
 * bit-identical to llm_ggml_fp32_to_bf16. */
static void act_bf16(const float *x, void *dst, int64_t n) {
    ggml_bf16 *y = dst;
    const __m256i absmask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff), q = _mm256_set1_epi32(64);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i r[2];
        for (int k = 0; k < 2; k++) {
            __m256i u = _mm256_loadu_si256((const __m256i *)(x + i + 8 * k));
            __m256i isnan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absmask), inf);
            __m256i hi = _mm256_srli_epi32(u, 16);
            __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(hi, one))), 16);
            r[k] = _mm256_blendv_epi8(rounded, _mm256_or_si256(hi, q), isnan);
        }
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), _MM_SHUFFLE(3, 1, 2, 0));
        _mm256_storeu_si256((__m256i *)(y + i), p);
    }
    for (; i < n; i++) y[i] = llm_ggml_fp32_to_bf16(x[i]);
}

/* Q8_0 activations, bit-identical to the reference: d = amax/127, q =
 * round-half-even(x * (127/amax)). */
static void act_q8_0(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < n / QK8_0; b++, x += QK8_0) {
        __m256 v[4];
        __m256 amax = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(signbit, v[k]));
        }
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        float am = _mm_cvtss_f32(m);
        y[b].d = llm_ggml_fp32_to_fp16(am / 127.f);
        __m256 idv = _mm256_set1_ps(am != 0.f ? 127.f / am : 0.f);
        __m256i iv[4];
        for (int k = 0; k < 4; k++)
            iv[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], idv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i p01 = _mm256_packs_epi32(iv[0], iv[1]), p23 = _mm256_packs_epi32(iv[2], iv[3]);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[b].qs, p);
    }
}

void llm_kernels_avx2_fill(llm_kernel_table *t) {
    t->vec_dot[GGML_TYPE_F32] = vdot_f32;
    t->vec_dot[GGML_TYPE_F16] = vdot_f16;
    t->vec_dot[GGML_TYPE_BF16] = vdot_bf16;
    t->vec_dot[GGML_TYPE_Q4_0] = dot_q4_0;
    t->vec_dot[GGML_TYPE_Q8_0] = dot_q8_0;
    t->gemm[GGML_TYPE_Q4_0] = gemm_q4_0;
    t->gemm[GGML_TYPE_Q8_0] = gemm_q8_0;
    t->vec_dot[GGML_TYPE_Q4_K] = dot_q4_K;
    t->vec_dot[GGML_TYPE_Q5_K] = dot_q5_K;
    t->vec_dot[GGML_TYPE_Q6_K] = dot_q6_K;
    t->act[GGML_TYPE_Q8_0] = act_q8_0;
    t->act[GGML_TYPE_F16] = act_f16;
    t->act[GGML_TYPE_BF16] = act_bf16;
    t->dot_f32 = dot_f32;
    t->dot_f16 = dot_f16;
    t->fp32_to_fp16 = fp32_to_fp16;
    t->fp16_to_fp32 = fp16_to_fp32;
}
