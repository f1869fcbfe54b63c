/* kernels_formats_avx2.c — AVX2 dot products for the further GGUF weight
 * formats (Q4_1, Q5_0, Q5_1, IQ4_NL against Q8_0/Q8_1 activations; Q2_K,
 * Q3_K, IQ4_XS against Q8_K) and the Q8_1 activation converter. Compiled
 * with AVX2 flags, called only after a CPUID check. As in kernels_avx2.c,
 * block sums are exact int32 and are scaled by d_w * d_a in float. */
#include <immintrin.h>

#include "llm/kernels_internal.h"

static inline float h2f(ggml_half h) {
    return _cvtsh_ss(h);
}

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 32 signed bytes x 32 signed bytes -> 8 int32 partial sums (|x| <= 127). */
static inline __m256i dot_i8(__m256i x, __m256i y) {
    __m256i ax = _mm256_sign_epi8(x, x);
    __m256i sy = _mm256_sign_epi8(y, x);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

/* 32 unsigned bytes (<= 127) x 32 signed bytes -> 8 int32 partial sums. */
static inline __m256i dot_u8(__m256i u, __m256i y) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1));
}

/* The 32 nibbles of a 32-element block (low nibbles = elements 0-15, high
 * = 16-31) as bytes in element order. */
static inline __m256i nibbles32(const uint8_t *qs) {
    __m128i t = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

/* Bit j of the little-endian 32-bit word at p as byte j: 0x10 where set.
 * Each byte of the word is copied to 8 lanes, each lane tests its bit. */
static inline __m256i fifth_bits(const uint8_t p[4]) {
    uint32_t w;
    memcpy(&w, p, 4);
    const __m256i spread = _mm256_setr_epi64x(0, 0x0101010101010101ll, 0x0202020202020202ll, 0x0303030303030303ll);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)w), spread);
    b = _mm256_cmpeq_epi8(_mm256_and_si256(b, bit), bit);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x10));
}

/* ------------------------------------------------ 32-element blocks */

static float dot_q4_1(int n, const void *w, const void *a) {
    const block_q4_1 *x = w;
    const block_q8_1 *y = a;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0;
    for (int i = 0; i < n / QK4_1; i++) {
        __m256i p = dot_u8(nibbles32(x[i].qs), _mm256_loadu_si256((const __m256i *)y[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm256_cvtepi32_ps(p), acc);
        summ += h2f(x[i].m) * h2f(y[i].s);
    }
    return hsum_ps(acc) + summ;
}

static float dot_q5_0(int n, const void *w, const void *a) {
    const block_q5_0 *x = w;
    const block_q8_0 *y = a;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK5_0; i++) {
        __m256i q = _mm256_or_si256(nibbles32(x[i].qs), fifth_bits(x[i].qh));
        q = _mm256_sub_epi8(q, _mm256_set1_epi8(16));
        __m256i p = dot_i8(q, _mm256_loadu_si256((const __m256i *)y[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm256_cvtepi32_ps(p), acc);
    }
    return hsum_ps(acc);
}

static float dot_q5_1(int n, const void *w, const void *a) {
    const block_q5_1 *x = w;
    const block_q8_1 *y = a;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0;
    for (int i = 0; i < n / QK5_1; i++) {
        __m256i q = _mm256_or_si256(nibbles32(x[i].qs), fifth_bits(x[i].qh));
        __m256i p = dot_u8(q, _mm256_loadu_si256((const __m256i *)y[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm256_cvtepi32_ps(p), acc);
        summ += h2f(x[i].m) * h2f(y[i].s);
    }
    return hsum_ps(acc) + summ;
}

/* The IQ4_NL levels of 32 nibbles (a byte shuffle is the table lookup). */
static inline __m256i iq4_levels(const uint8_t *qs) {
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)llm_iq4nl_values));
    return _mm256_shuffle_epi8(table, nibbles32(qs));
}

static float dot_iq4_nl(int n, const void *w, const void *a) {
    const block_iq4_nl *x = w;
    const block_q8_0 *y = a;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK4_NL; i++) {
        __m256i p = dot_i8(iq4_levels(x[i].qs), _mm256_loadu_si256((const __m256i *)y[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * h2f(y[i].d)), _mm256_cvtepi32_ps(p), acc);
    }
    return hsum_ps(acc);
}

/* ----------------------------------------------- 256-element blocks */

/* Scales of sub-blocks 2k (lanes 0-7, elements l < 16) and 2k+1 (lanes
 * 8-15) as int16, for vpmaddwd after vpmaddubsw of 32 elements. */
static inline __m256i scale_pair16(int lo, int hi) {
    return _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo));
}

/* Q2_K: per 128 elements 32 bytes of crumbs; crumb s of byte l is element
 * 32 s + l. The mins come in through the activation's bsums. */
static float dot_q2_K(int n, const void *w, const void *a) {
    const block_q2_K *x = w;
    const block_q8_K *y = a;
    const __m256i m3 = _mm256_set1_epi8(3);
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        __m256i sumi = _mm256_setzero_si256();
        const int8_t *q8 = y[i].qs;
        for (int h = 0; h < 2; h++) {
            __m256i q2 = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int s = 0; s < 4; s++, q8 += 32) {
                __m256i q = _mm256_and_si256(_mm256_srli_epi16(q2, 2 * s), m3);
                __m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)q8));
                int j = 8 * h + 2 * s;
                p = _mm256_madd_epi16(p, scale_pair16(x[i].scales[j] & 0xF, x[i].scales[j + 1] & 0xF));
                sumi = _mm256_add_epi32(sumi, p);
            }
        }
        int summ = 0;
        for (int j = 0; j < 16; j++) summ += (x[i].scales[j] >> 4) * y[i].bsums[j];
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sumi), _mm256_extracti128_si256(sumi, 1));
        s4 = _mm_hadd_epi32(s4, s4);
        s4 = _mm_hadd_epi32(s4, s4);
        float d = h2f(x[i].d) * y[i].d, dmin = h2f(x[i].dmin) * y[i].d;
        sum += d * (float)_mm_cvtsi128_si32(s4) - dmin * (float)summ;
    }
    return sum;
}

/* Q3_K: the quants fed unsigned as low | high << 2 (0..7); the -4 offset
 * comes out through the bsums: sum sc*(v-4)*a = sum sc*v*a - 4 sum sc*bsum. */
static float dot_q3_K(int n, const void *w, const void *a) {
    const block_q3_K *x = w;
    const block_q8_K *y = a;
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int8_t sc[16];
        llm_q3k_scales(x[i].scales, sc);
        __m256i sumi = _mm256_setzero_si256();
        __m256i H = _mm256_loadu_si256((const __m256i *)x[i].hmask);
        const int8_t *q8 = y[i].qs;
        for (int h = 0; h < 2; h++) {
            __m256i q2 = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            for (int s = 0; s < 4; s++, q8 += 32) {
                /* bits stay inside their bytes: shifts of at most 7, masks per byte */
                __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q2, 2 * s), m3);
                __m256i hi = _mm256_and_si256(_mm256_srl_epi16(H, _mm_cvtsi32_si128(4 * h + s)), one);
                __m256i v = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 2));
                __m256i p = _mm256_maddubs_epi16(v, _mm256_loadu_si256((const __m256i *)q8));
                int j = 8 * h + 2 * s;
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair16(sc[j], sc[j + 1])));
            }
        }
        int bias = 0;
        for (int j = 0; j < 16; j++) bias += sc[j] * y[i].bsums[j];
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sumi), _mm256_extracti128_si256(sumi, 1));
        s4 = _mm_hadd_epi32(s4, s4);
        s4 = _mm_hadd_epi32(s4, s4);
        sum += h2f(x[i].d) * y[i].d * (float)(_mm_cvtsi128_si32(s4) - 4 * bias);
    }
    return sum;
}

/* IQ4_XS: per sub-block of 32, the table levels (signed) against the
 * activations, times the 6-bit scale. */
static float dot_iq4_xs(int n, const void *w, const void *a) {
    const block_iq4_xs *x = w;
    const block_q8_K *y = a;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            int ls = (((x[i].scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((x[i].scales_h >> (2 * j)) & 3) << 4)) - 32;
            __m256i v = iq4_levels(x[i].qs + 16 * j);
            __m256i av = _mm256_loadu_si256((const __m256i *)(y[i].qs + 32 * j));
            /* |level| <= 127 and |a| <= 128: the pair sums fit int16 */
            __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(av, v));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_set1_epi16((short)ls)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[i].d) * y[i].d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum_ps(acc);
}

/* ------------------------------------------------------ Q8_1 activations
 * Bit-identical to llm_quantize_row_q8_1_ref: Q8_0's rule, s = fp16(d *
 * sum(q)) with the f32 d. */
static void act_q8_1(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < n / QK8_1; b++, x += QK8_1) {
        __m256 v[4];
        __m256 amax = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(signbit, v[k]));
        }
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        float am = _mm_cvtss_f32(m), d = am / 127.f;
        y[b].d = llm_ggml_fp32_to_fp16(d);
        __m256 idv = _mm256_set1_ps(am != 0.f ? 127.f / am : 0.f);
        __m256i iv[4];
        for (int k = 0; k < 4; k++)
            iv[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], idv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(iv[0], iv[1]), _mm256_add_epi32(iv[2], iv[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_hadd_epi32(s4, s4);
        s4 = _mm_hadd_epi32(s4, s4);
        y[b].s = llm_ggml_fp32_to_fp16(d * (float)_mm_cvtsi128_si32(s4));
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(iv[0], iv[1]), _mm256_packs_epi32(iv[2], iv[3]));
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[b].qs, p);
    }
}

void llm_kernels_formats_avx2_fill(llm_kernel_table *t) {
    t->vec_dot[GGML_TYPE_Q4_1] = dot_q4_1;
    t->vec_dot[GGML_TYPE_Q5_0] = dot_q5_0;
    t->vec_dot[GGML_TYPE_Q5_1] = dot_q5_1;
    t->vec_dot[GGML_TYPE_IQ4_NL] = dot_iq4_nl;
    t->vec_dot[GGML_TYPE_Q2_K] = dot_q2_K;
    t->vec_dot[GGML_TYPE_Q3_K] = dot_q3_K;
    t->vec_dot[GGML_TYPE_IQ4_XS] = dot_iq4_xs;
    t->act[GGML_TYPE_Q8_1] = act_q8_1;
}
