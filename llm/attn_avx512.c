/* attn_avx512.c — AVX-512 attention over an F16 KV cache for the query
 * heads that share one key/value head (grouped-query attention), the
 * vector e^x it and the SwiGLU use, and the SwiGLU itself; only called
 * after a CPUID check. */
#include <immintrin.h>
#include <math.h>

#include "llm/kernels_internal.h"

/* ------------------------------------------------------------------ exp
 * e^x as 2^k * p(r): k = round(x / ln 2), r = x - k ln 2 in two parts
 * (Cody and Waite), |r| <= ln2/2, p the degree-7 Taylor polynomial
 * (truncation error below 1e-8 relative), 2^k applied by vscalefps.
 * Inputs are clamped to [-104, 89]: beyond them e^x is 0 or inf in float
 * anyway, which vscalefps produces (denormals rounded correctly), and the
 * reduction stays exact. Against expf the result differs by a few ulp. */
static inline __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.f)), _mm512_set1_ps(89.f));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    return _mm512_scalef_ps(p, k);
}

static void silu_mul(float *g, const float *u, int n) {
    const __m512 one = _mm512_set1_ps(1.f);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(m, g + i);
        __m512 s = _mm512_div_ps(x, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, u + i)));
    }
}

/* ------------------------------------------------------------ attention */

/* r[i] = the sum of the 16 lanes of v[i], for 16 vectors: pairs of lanes
 * within 128-bit chunks, then the chunks. Each sum is added in the same
 * order whatever its slot, so a score does not depend on which block of
 * keys it was computed in (a decode rounds like the prefill). */
static inline __m512 sum16(const __m512 v[16]) {
    __m512 x[8], y[4];
    for (int i = 0; i < 8; i++)
        x[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++)
        y[i] = _mm512_add_ps(_mm512_shuffle_ps(x[2 * i], x[2 * i + 1], 0x44), _mm512_shuffle_ps(x[2 * i], x[2 * i + 1], 0xEE));
    __m512 q01 = _mm512_add_ps(_mm512_shuffle_f32x4(y[0], y[1], 0x44), _mm512_shuffle_f32x4(y[0], y[1], 0xEE));
    __m512 q23 = _mm512_add_ps(_mm512_shuffle_f32x4(y[2], y[3], 0x44), _mm512_shuffle_f32x4(y[2], y[3], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_f32x4(q01, q23, 0x88), _mm512_shuffle_f32x4(q01, q23, 0xDD));
}

/* Zero keys pad the last block of 4 (their scores are never stored). */
static const ggml_half zero_row[LLM_ATT_MAX_HD];

/* Scores of up to 4 heads (g0..g0+gn-1) against keys k0..k0+kn-1 (kn <=
 * 4): 16 dot products accumulated in f32 lanes over the head size, then
 * summed together. */
static inline void scores_4x4(const float *q, int hd, int g0, int gn, const ggml_half *const *kr, int k0, int kn,
                              int nk, float scale, float *sc) {
    const ggml_half *k4[4];
    for (int kk = 0; kk < 4; kk++) k4[kk] = kk < kn ? kr[k0 + kk] : zero_row;
    const float *q4[4];
    for (int g = 0; g < 4; g++) q4[g] = q + (size_t)(g0 + (g < gn ? g : 0)) * hd;
    __m512 acc[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
    for (int c = 0; c < hd; c += 16) {
        __m512 qv[4];
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) qv[g] = _mm512_loadu_ps(q4[g] + c);
#pragma GCC unroll 4
        for (int kk = 0; kk < 4; kk++) {
            __m512 kv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k4[kk] + c)));
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++) acc[kk * 4 + g] = _mm512_fmadd_ps(kv, qv[g], acc[kk * 4 + g]);
        }
    }
    float r[16];
    _mm512_storeu_ps(r, sum16(acc));
    for (int kk = 0; kk < kn; kk++)
        for (int g = 0; g < gn; g++) sc[(size_t)(g0 + g) * nk + k0 + kk] = r[kk * 4 + g] * scale;
}

/* softmax in place over n scores: e^(s - max) (vector exp), the sum in
 * double over per-16 float sums (as llama.cpp's vector softmax adds), each
 * probability rounded to F16 (llama.cpp multiplies F16 probabilities by an
 * F16 V). */
static void softmax_f16(float *s, int n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), m, s + i));
    }
    __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    double sum = 0;
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + i), vmax)));
        _mm512_mask_storeu_ps(s + i, m, e);
        sum += (double)_mm512_reduce_add_ps(e);
    }
    __m512 inv = _mm512_set1_ps((float)(1.0 / sum));
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + i), inv);
        p = _mm512_cvtph_ps(_mm512_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm512_mask_storeu_ps(s + i, m, p);
    }
}

/* G query heads over one F16 key/value head (hd a multiple of 64): q is G
 * x hd floats already rounded to F16 values, kr/vr the nk key and value
 * rows (the head's part), sc G x nk floats of scratch, out G x hd.
 * Scores in 4-key x 4-head blocks (each key row converted once for 4
 * heads), softmax per head, then P.V: for 64 output dims of 4 heads at a
 * time, 16 accumulators take each value row (converted once) times each
 * head's probability, keys in increasing order (fma: one rounding per
 * key). */
static void att_f16(const float *q, int G, int hd, const ggml_half *const *kr, const ggml_half *const *vr, int nk,
                    float scale, float *sc, float *out) {
    for (int g0 = 0; g0 < G; g0 += 4)
        for (int k0 = 0; k0 < nk; k0 += 4)
            scores_4x4(q, hd, g0, G - g0 < 4 ? G - g0 : 4, kr, k0, nk - k0 < 4 ? nk - k0 : 4, nk, scale, sc);
    for (int g = 0; g < G; g++) softmax_f16(sc + (size_t)g * nk, nk);
    for (int g0 = 0; g0 < G; g0 += 4) {
        int gn = G - g0 < 4 ? G - g0 : 4;
        const float *p4[4];
        for (int g = 0; g < 4; g++) p4[g] = sc + (size_t)(g0 + (g < gn ? g : 0)) * nk;
        for (int d0 = 0; d0 < hd; d0 += 64) {
            __m512 acc[4][4];
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++)
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) acc[g][j] = _mm512_setzero_ps();
            for (int k = 0; k < nk; k++) {
                __m512 v[4];
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) v[j] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(vr[k] + d0 + 16 * j)));
#pragma GCC unroll 4
                for (int g = 0; g < 4; g++) {
                    __m512 p = _mm512_set1_ps(p4[g][k]);
#pragma GCC unroll 4
                    for (int j = 0; j < 4; j++) acc[g][j] = _mm512_fmadd_ps(p, v[j], acc[g][j]);
                }
            }
            for (int g = 0; g < gn; g++)
                for (int j = 0; j < 4; j++) _mm512_storeu_ps(out + (size_t)(g0 + g) * hd + d0 + 16 * j, acc[g][j]);
        }
    }
}

void llm_attn_avx512_fill(llm_kernel_table *t) {
    t->silu_mul = silu_mul;
    t->att_f16 = att_f16;
}
