/* kernels_ref.c — portable reference dot products for every weight type; the
 * SIMD kernels are tested against these. Integer sums per block are scaled by
 * d_w * d_a in float, as llama.cpp accumulates. */
#include <math.h>

#include "llm/kernels_internal.h"

/* Q4_0 weights x Q8_0 activations. */
static float dot_q4_0_q8_0(int n, const void *w, const void *a) {
    const block_q4_0 *x = w;
    const block_q8_0 *y = a;
    float sum = 0;
    for (int i = 0; i < n / QK4_0; i++) {
        int s = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            s += ((int)(x[i].qs[j] & 0xF) - 8) * y[i].qs[j];
            s += ((int)(x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
        }
        sum += (float)s * (llm_ggml_fp16_to_fp32(x[i].d) * llm_ggml_fp16_to_fp32(y[i].d));
    }
    return sum;
}

/* Q8_0 weights x Q8_0 activations. */
static float dot_q8_0_q8_0(int n, const void *w, const void *a) {
    const block_q8_0 *x = w;
    const block_q8_0 *y = a;
    float sum = 0;
    for (int i = 0; i < n / QK8_0; i++) {
        int s = 0;
        for (int j = 0; j < QK8_0; j++) s += x[i].qs[j] * y[i].qs[j];
        sum += (float)s * (llm_ggml_fp16_to_fp32(x[i].d) * llm_ggml_fp16_to_fp32(y[i].d));
    }
    return sum;
}

/* Q4_1 weights x Q8_1 activations: d_w*d_a*sum(q*a) + m_w*s_a, the min
 * folded in through the activation's s = d_a * sum(a). */
static float dot_q4_1_q8_1(int n, const void *w, const void *a) {
    const block_q4_1 *x = w;
    const block_q8_1 *y = a;
    float sum = 0;
    for (int i = 0; i < n / QK4_1; i++) {
        int s = 0;
        for (int j = 0; j < QK4_1 / 2; j++) {
            s += (x[i].qs[j] & 0xF) * y[i].qs[j];
            s += (x[i].qs[j] >> 4) * y[i].qs[j + 16];
        }
        sum += (float)s * (llm_ggml_fp16_to_fp32(x[i].d) * llm_ggml_fp16_to_fp32(y[i].d)) +
               llm_ggml_fp16_to_fp32(x[i].m) * llm_ggml_fp16_to_fp32(y[i].s);
    }
    return sum;
}

/* The 32 5-bit quants of a Q5_0 / Q5_1 block. */
static void q5_quants(const uint8_t *qs, const uint8_t qh_bytes[4], int q[32]) {
    uint32_t qh;
    memcpy(&qh, qh_bytes, 4);
    for (int j = 0; j < 16; j++) {
        q[j] = (qs[j] & 0xF) | (int)((qh >> j) & 1) << 4;
        q[j + 16] = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
    }
}

/* Q5_0 weights x Q8_0 activations: quants - 16. */
static float dot_q5_0_q8_0(int n, const void *w, const void *a) {
    const block_q5_0 *x = w;
    const block_q8_0 *y = a;
    float sum = 0;
    for (int i = 0; i < n / QK5_0; i++) {
        int q[32], s = 0;
        q5_quants(x[i].qs, x[i].qh, q);
        for (int j = 0; j < 32; j++) s += (q[j] - 16) * y[i].qs[j];
        sum += (float)s * (llm_ggml_fp16_to_fp32(x[i].d) * llm_ggml_fp16_to_fp32(y[i].d));
    }
    return sum;
}

/* Q5_1 weights x Q8_1 activations: as Q4_1 with 5-bit quants. */
static float dot_q5_1_q8_1(int n, const void *w, const void *a) {
    const block_q5_1 *x = w;
    const block_q8_1 *y = a;
    float sum = 0;
    for (int i = 0; i < n / QK5_1; i++) {
        int q[32], s = 0;
        q5_quants(x[i].qs, x[i].qh, q);
        for (int j = 0; j < 32; j++) s += q[j] * y[i].qs[j];
        sum += (float)s * (llm_ggml_fp16_to_fp32(x[i].d) * llm_ggml_fp16_to_fp32(y[i].d)) +
               llm_ggml_fp16_to_fp32(x[i].m) * llm_ggml_fp16_to_fp32(y[i].s);
    }
    return sum;
}

/* IQ4_NL weights x Q8_0 activations: table levels times the quants. */
static float dot_iq4_nl_q8_0(int n, const void *w, const void *a) {
    const block_iq4_nl *x = w;
    const block_q8_0 *y = a;
    float sum = 0;
    for (int i = 0; i < n / QK4_NL; i++) {
        int s = 0;
        for (int j = 0; j < QK4_NL / 2; j++) {
            s += llm_iq4nl_values[x[i].qs[j] & 0xF] * y[i].qs[j];
            s += llm_iq4nl_values[x[i].qs[j] >> 4] * y[i].qs[j + 16];
        }
        sum += (float)s * (llm_ggml_fp16_to_fp32(x[i].d) * llm_ggml_fp16_to_fp32(y[i].d));
    }
    return sum;
}

/* Q2_K weights x Q8_K activations: d*sum_j sc_j*sum(q*a) - dmin*sum_j
 * m_j*bsum_j (sub-blocks of 16 match the activation's bsums). */
static float dot_q2_K_q8_K(int n, const void *w, const void *a) {
    const block_q2_K *x = w;
    const block_q8_K *y = a;
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int sumi = 0, summ = 0;
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) {
                int e = 16 * j + l;
                int q = (x[i].qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
                s += q * y[i].qs[e];
            }
            sumi += (x[i].scales[j] & 0xF) * s;
            summ += (x[i].scales[j] >> 4) * y[i].bsums[j];
        }
        float d = llm_ggml_fp16_to_fp32(x[i].d) * y[i].d, dmin = llm_ggml_fp16_to_fp32(x[i].dmin) * y[i].d;
        sum += d * (float)sumi - dmin * (float)summ;
    }
    return sum;
}

/* Q3_K weights x Q8_K activations: d * sum_j (sc_j - 32) * sum(q*a), q in
 * -4..3. */
static float dot_q3_K_q8_K(int n, const void *w, const void *a) {
    const block_q3_K *x = w;
    const block_q8_K *y = a;
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int8_t sc[16];
        llm_q3k_scales(x[i].scales, sc);
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) {
                int e = 16 * j + l, h = e / 128, sh = (e % 128) / 32, ll = e % 32;
                int q = ((x[i].qs[32 * h + ll] >> (2 * sh)) & 3) - ((x[i].hmask[ll] >> (4 * h + sh)) & 1 ? 0 : 4);
                s += q * y[i].qs[e];
            }
            sumi += sc[j] * s;
        }
        sum += llm_ggml_fp16_to_fp32(x[i].d) * y[i].d * (float)sumi;
    }
    return sum;
}

/* IQ4_XS weights x Q8_K activations: per sub-block of 32, (ls - 32) times
 * the table levels times the quants. */
static float dot_iq4_xs_q8_K(int n, const void *w, const void *a) {
    const block_iq4_xs *x = w;
    const block_q8_K *y = a;
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int sumi = 0;
        for (int j = 0; j < 8; j++) {
            int ls = (((x[i].scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((x[i].scales_h >> (2 * j)) & 3) << 4)) - 32;
            const uint8_t *qs = x[i].qs + 16 * j;
            const int8_t *q8 = y[i].qs + 32 * j;
            int s = 0;
            for (int l = 0; l < 16; l++)
                s += llm_iq4nl_values[qs[l] & 0xF] * q8[l] + llm_iq4nl_values[qs[l] >> 4] * q8[l + 16];
            sumi += ls * s;
        }
        sum += llm_ggml_fp16_to_fp32(x[i].d) * y[i].d * (float)sumi;
    }
    return sum;
}

/* Q4_K weights x Q8_K activations: sum_j d*sc_j*dot(q4, q8) - dmin*m_j*bsum_j,
 * the mins folded in through the activation block sums. */
static float dot_q4_K_q8_K(int n, const void *w, const void *a) {
    const block_q4_K *x = w;
    const block_q8_K *y = a;
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int sumi = 0, summ = 0;
        for (int j = 0; j < QK_K / 64; j++, q4 += 32, q8 += 64) {
            uint8_t sc0, m0, sc1, m1;
            llm_q4k_scale_min(2 * j, x[i].scales, &sc0, &m0);
            llm_q4k_scale_min(2 * j + 1, x[i].scales, &sc1, &m1);
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += (q4[l] & 0xF) * q8[l];
                s1 += (q4[l] >> 4) * q8[l + 32];
            }
            sumi += sc0 * s0 + sc1 * s1;
            summ += m0 * (y[i].bsums[4 * j] + y[i].bsums[4 * j + 1]) +
                    m1 * (y[i].bsums[4 * j + 2] + y[i].bsums[4 * j + 3]);
        }
        float d = llm_ggml_fp16_to_fp32(x[i].d) * y[i].d;
        float dmin = llm_ggml_fp16_to_fp32(x[i].dmin) * y[i].d;
        sum += d * (float)sumi - dmin * (float)summ;
    }
    return sum;
}

/* Q5_K weights x Q8_K activations: Q4_K's sum with 5-bit quants. */
static float dot_q5_K_q8_K(int n, const void *w, const void *a) {
    const block_q5_K *x = w;
    const block_q8_K *y = a;
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *q4 = x[i].qs, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        int sumi = 0, summ = 0;
        for (int j = 0; j < QK_K / 64; j++, q4 += 32, q8 += 64) {
            uint8_t sc0, m0, sc1, m1;
            llm_q4k_scale_min(2 * j, x[i].scales, &sc0, &m0);
            llm_q4k_scale_min(2 * j + 1, x[i].scales, &sc1, &m1);
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += ((q4[l] & 0xF) | ((qh[l] >> (2 * j) & 1) << 4)) * q8[l];
                s1 += ((q4[l] >> 4) | ((qh[l] >> (2 * j + 1) & 1) << 4)) * q8[l + 32];
            }
            sumi += sc0 * s0 + sc1 * s1;
            summ += m0 * (y[i].bsums[4 * j] + y[i].bsums[4 * j + 1]) +
                    m1 * (y[i].bsums[4 * j + 2] + y[i].bsums[4 * j + 3]);
        }
        float d = llm_ggml_fp16_to_fp32(x[i].d) * y[i].d;
        float dmin = llm_ggml_fp16_to_fp32(x[i].dmin) * y[i].d;
        sum += d * (float)sumi - dmin * (float)summ;
    }
    return sum;
}

/* Q6_K weights x Q8_K activations. */
static float dot_q6_K_q8_K(int n, const void *w, const void *a) {
    const block_q6_K *x = w;
    const block_q8_K *y = a;
    float sum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int8_t q[QK_K];
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        for (int c = 0; c < QK_K; c += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                q[c + l] = (int8_t)((int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                q[c + l + 32] = (int8_t)((int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                q[c + l + 64] = (int8_t)((int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                q[c + l + 96] = (int8_t)((int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        int sumi = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += q[16 * j + l] * y[i].qs[16 * j + l];
            sumi += x[i].scales[j] * s;
        }
        sum += llm_ggml_fp16_to_fp32(x[i].d) * y[i].d * (float)sumi;
    }
    return sum;
}

static float dot_f32_ref(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static float dot_f16_ref(const ggml_half *a, const ggml_half *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)(llm_ggml_fp16_to_fp32(a[i]) * llm_ggml_fp16_to_fp32(b[i]));
    return (float)s;
}

static float dot_bf16_ref(const ggml_bf16 *a, const ggml_bf16 *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)(llm_ggml_bf16_to_fp32(a[i]) * llm_ggml_bf16_to_fp32(b[i]));
    return (float)s;
}

static float vdot_f32(int n, const void *w, const void *a) { return dot_f32_ref(w, a, n); }
static float vdot_f16(int n, const void *w, const void *a) { return dot_f16_ref(w, a, n); }
static float vdot_bf16(int n, const void *w, const void *a) { return dot_bf16_ref(w, a, n); }

static void fp32_to_fp16_ref(const float *x, ggml_half *y, int n) {
    for (int i = 0; i < n; i++) y[i] = llm_ggml_fp32_to_fp16(x[i]);
}

static void fp16_to_fp32_ref(const ggml_half *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] = llm_ggml_fp16_to_fp32(x[i]);
}

/* y += a * x with the product rounded before the add (this file is built
 * without FMA, so the compiler cannot fuse the two). */
static void axpy_f32_ref(float a, const float *x, float *y, int n) {
    for (int i = 0; i < n; i++) {
        float p = a * x[i];
        y[i] += p;
    }
}

static void axpy_f16_ref(float a, const ggml_half *x, float *y, int n) {
    for (int i = 0; i < n; i++) {
        float p = a * llm_ggml_fp16_to_fp32(x[i]);
        y[i] += p;
    }
}

/* g = silu(g) * u with libm's expf, as the forward pass computed it
 * before the SIMD versions. */
static void silu_mul_ref(float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void llm_kernels_ref_fill(llm_kernel_table *t) {
    memset(t, 0, sizeof *t);
    t->vec_dot[GGML_TYPE_F32] = vdot_f32;
    t->vec_dot[GGML_TYPE_F16] = vdot_f16;
    t->vec_dot[GGML_TYPE_BF16] = vdot_bf16;
    t->vec_dot[GGML_TYPE_Q4_0] = dot_q4_0_q8_0;
    t->vec_dot[GGML_TYPE_Q8_0] = dot_q8_0_q8_0;
    t->vec_dot[GGML_TYPE_Q4_1] = dot_q4_1_q8_1;
    t->vec_dot[GGML_TYPE_Q5_0] = dot_q5_0_q8_0;
    t->vec_dot[GGML_TYPE_Q5_1] = dot_q5_1_q8_1;
    t->vec_dot[GGML_TYPE_IQ4_NL] = dot_iq4_nl_q8_0;
    t->vec_dot[GGML_TYPE_Q2_K] = dot_q2_K_q8_K;
    t->vec_dot[GGML_TYPE_Q3_K] = dot_q3_K_q8_K;
    t->vec_dot[GGML_TYPE_IQ4_XS] = dot_iq4_xs_q8_K;
    t->vec_dot[GGML_TYPE_Q4_K] = dot_q4_K_q8_K;
    t->vec_dot[GGML_TYPE_Q5_K] = dot_q5_K_q8_K;
    t->vec_dot[GGML_TYPE_Q6_K] = dot_q6_K_q8_K;
    t->act[GGML_TYPE_Q8_0] = llm_quantize_row_q8_0_ref;
    t->act[GGML_TYPE_Q8_K] = llm_quantize_row_q8_K_ref;
    t->act[GGML_TYPE_Q8_1] = llm_quantize_row_q8_1_ref;
    t->act[GGML_TYPE_F16] = llm_quantize_row_f16_ref;
    t->act[GGML_TYPE_BF16] = llm_quantize_row_bf16_ref;
    t->dot_f32 = dot_f32_ref;
    t->dot_f16 = dot_f16_ref;
    t->fp32_to_fp16 = fp32_to_fp16_ref;
    t->fp16_to_fp32 = fp16_to_fp32_ref;
    t->axpy_f32 = axpy_f32_ref;
    t->axpy_f16 = axpy_f16_ref;
    t->silu_mul = silu_mul_ref;
}
