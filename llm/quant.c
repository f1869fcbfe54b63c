/* quant.c — quantization and dequantization of rows for every supported
 * type (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K,
 * Q4_K, Q5_K, Q6_K, IQ4_XS, and the activation types Q8_1, Q8_K) in
 * portable C. */
#include <math.h>

#include "llm/kernels_internal.h"

/* IQ4_NL / IQ4_XS levels, indexed by the 4-bit quant (llama.cpp's table). */
const int8_t llm_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

bool llm_type_supported(uint32_t type) {
    switch (type) {
    case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16:
    case GGML_TYPE_Q8_0: case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1:
    case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: case GGML_TYPE_IQ4_NL:
    case GGML_TYPE_Q2_K: case GGML_TYPE_Q3_K: case GGML_TYPE_Q4_K:
    case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K: case GGML_TYPE_IQ4_XS:
    case GGML_TYPE_Q8_1: case GGML_TYPE_Q8_K:
        return true;
    default:
        return false;
    }
}

uint32_t llm_vec_dot_type(uint32_t wtype) {
    switch (wtype) {
    case GGML_TYPE_F16: return GGML_TYPE_F16;
    case GGML_TYPE_BF16: return GGML_TYPE_BF16;
    case GGML_TYPE_Q8_0: case GGML_TYPE_Q4_0: case GGML_TYPE_Q5_0: case GGML_TYPE_IQ4_NL:
        return GGML_TYPE_Q8_0;
    case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_1: return GGML_TYPE_Q8_1;
    case GGML_TYPE_Q2_K: case GGML_TYPE_Q3_K: case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K:
    case GGML_TYPE_Q6_K: case GGML_TYPE_IQ4_XS:
        return GGML_TYPE_Q8_K;
    default: return GGML_TYPE_F32;
    }
}

/* ---------------------------------------------------------------- dequant */

static void dequant_q4_0(const block_q4_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK4_0) {
        float d = llm_ggml_fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = ((int)(b[i].qs[j] & 0xF) - 8) * d;
            y[j + QK4_0 / 2] = ((int)(b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void dequant_q4_1(const block_q4_1 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK4_1) {
        float d = llm_ggml_fp16_to_fp32(b[i].d), m = llm_ggml_fp16_to_fp32(b[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            y[j] = (b[i].qs[j] & 0xF) * d + m;
            y[j + QK4_1 / 2] = (b[i].qs[j] >> 4) * d + m;
        }
    }
}

/* The 5-bit quant j (0..31) of a Q5_0 / Q5_1 block: nibble plus bit j of qh. */
static inline int q5_quant(const uint8_t *qs, const uint8_t qh_bytes[4], int j) {
    uint32_t qh;
    memcpy(&qh, qh_bytes, 4);
    int lo = j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
    return lo | (int)((qh >> j) & 1) << 4;
}

static void dequant_q5_0(const block_q5_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK5_0) {
        float d = llm_ggml_fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK5_0; j++) y[j] = (q5_quant(b[i].qs, b[i].qh, j) - 16) * d;
    }
}

static void dequant_q5_1(const block_q5_1 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK5_1) {
        float d = llm_ggml_fp16_to_fp32(b[i].d), m = llm_ggml_fp16_to_fp32(b[i].m);
        for (int j = 0; j < QK5_1; j++) y[j] = q5_quant(b[i].qs, b[i].qh, j) * d + m;
    }
}

static void dequant_iq4_nl(const block_iq4_nl *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK4_NL) {
        float d = llm_ggml_fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK4_NL / 2; j++) {
            y[j] = d * llm_iq4nl_values[b[i].qs[j] & 0xF];
            y[j + QK4_NL / 2] = d * llm_iq4nl_values[b[i].qs[j] >> 4];
        }
    }
}

static void dequant_q8_1(const block_q8_1 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK8_1) {
        float d = llm_ggml_fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK8_1; j++) y[j] = b[i].qs[j] * d;
    }
}

/* Q2_K: element 128 * h + 32 * s + l (h = 0..1, s = 0..3, l < 32) is bits
 * 2s..2s+1 of qs[32 * h + l]; its sub-block of 16 is 8h + 2s + l / 16. */
static void dequant_q2_K(const block_q2_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = llm_ggml_fp16_to_fp32(b[i].d), dmin = llm_ggml_fp16_to_fp32(b[i].dmin);
        for (int e = 0; e < QK_K; e++) {
            int h = e / 128, sh = (e % 128) / 32, l = e % 32;
            int q = (b[i].qs[32 * h + l] >> (2 * sh)) & 3;
            uint8_t sc = b[i].scales[e / 16];
            *y++ = d * (sc & 0xF) * q - dmin * (sc >> 4);
        }
    }
}

/* Q3_K's 16 scales (-32..31) from the 12 packed bytes: the low 4 bits of
 * scale j are the low (j < 8) or high (j >= 8) nibble of byte j % 8, the
 * high 2 bits are bits 2 * (j / 4) of byte 8 + j % 4; stored as value + 32. */
void llm_q3k_scales(const uint8_t s[12], int8_t out[16]) {
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
        int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((lo | hi << 4) - 32);
    }
}

/* Q3_K: the low 2 bits as Q2_K's; element 128 * h + 32 * s + l has its
 * high bit in bit 4h + s of hmask[l]; q = low - (high ? 0 : 4). */
static void dequant_q3_K(const block_q3_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = llm_ggml_fp16_to_fp32(b[i].d);
        int8_t sc[16];
        llm_q3k_scales(b[i].scales, sc);
        for (int e = 0; e < QK_K; e++) {
            int h = e / 128, sh = (e % 128) / 32, l = e % 32;
            int q = ((b[i].qs[32 * h + l] >> (2 * sh)) & 3) - ((b[i].hmask[l] >> (4 * h + sh)) & 1 ? 0 : 4);
            *y++ = d * sc[e / 16] * q;
        }
    }
}

/* IQ4_XS sub-block j's scale (-32..31). */
static inline int iq4xs_scale(const block_iq4_xs *b, int j) {
    return (((b->scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((b->scales_h >> (2 * j)) & 3) << 4)) - 32;
}

static void dequant_iq4_xs(const block_iq4_xs *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = llm_ggml_fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK_K / 32; j++, y += 32) {
            float dl = d * iq4xs_scale(&b[i], j);
            const uint8_t *qs = b[i].qs + 16 * j;
            for (int l = 0; l < 16; l++) {
                y[l] = dl * llm_iq4nl_values[qs[l] & 0xF];
                y[l + 16] = dl * llm_iq4nl_values[qs[l] >> 4];
            }
        }
    }
}

static void dequant_q8_0(const block_q8_0 *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK8_0) {
        float d = llm_ggml_fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK8_0; j++) y[j] = b[i].qs[j] * d;
    }
}

static void dequant_q4_K(const block_q4_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = llm_ggml_fp16_to_fp32(b[i].d), dmin = llm_ggml_fp16_to_fp32(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int j = 0; j < QK_K / 64; j++, q += 32) {
            uint8_t sc, m;
            llm_q4k_scale_min(2 * j, b[i].scales, &sc, &m);
            float d1 = d * sc, m1 = dmin * m;
            llm_q4k_scale_min(2 * j + 1, b[i].scales, &sc, &m);
            float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

static void dequant_q5_K(const block_q5_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = llm_ggml_fp16_to_fp32(b[i].d), dmin = llm_ggml_fp16_to_fp32(b[i].dmin);
        const uint8_t *q = b[i].qs, *qh = b[i].qh;
        for (int j = 0; j < QK_K / 64; j++, q += 32) {
            uint8_t sc, m;
            llm_q4k_scale_min(2 * j, b[i].scales, &sc, &m);
            float d1 = d * sc, m1 = dmin * m;
            llm_q4k_scale_min(2 * j + 1, b[i].scales, &sc, &m);
            float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * ((q[l] & 0xF) | ((qh[l] >> (2 * j) & 1) << 4)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((q[l] >> 4) | ((qh[l] >> (2 * j + 1) & 1) << 4)) - m2;
        }
    }
}

static void dequant_q6_K(const block_q6_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        float d = llm_ggml_fp16_to_fp32(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

static void dequant_q8_K(const block_q8_K *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++)
        for (int j = 0; j < QK_K; j++) *y++ = b[i].d * b[i].qs[j];
}

void llm_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n) {
    switch (type) {
    case GGML_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case GGML_TYPE_F16: {
        const ggml_half *h = src;
        for (int64_t i = 0; i < n; i++) dst[i] = llm_ggml_fp16_to_fp32(h[i]);
        break;
    }
    case GGML_TYPE_BF16: {
        const ggml_bf16 *h = src;
        for (int64_t i = 0; i < n; i++) dst[i] = llm_ggml_bf16_to_fp32(h[i]);
        break;
    }
    case GGML_TYPE_Q4_0: dequant_q4_0(src, dst, n / QK4_0); break;
    case GGML_TYPE_Q8_0: dequant_q8_0(src, dst, n / QK8_0); break;
    case GGML_TYPE_Q4_1: dequant_q4_1(src, dst, n / QK4_1); break;
    case GGML_TYPE_Q5_0: dequant_q5_0(src, dst, n / QK5_0); break;
    case GGML_TYPE_Q5_1: dequant_q5_1(src, dst, n / QK5_1); break;
    case GGML_TYPE_IQ4_NL: dequant_iq4_nl(src, dst, n / QK4_NL); break;
    case GGML_TYPE_Q8_1: dequant_q8_1(src, dst, n / QK8_1); break;
    case GGML_TYPE_Q2_K: dequant_q2_K(src, dst, n / QK_K); break;
    case GGML_TYPE_Q3_K: dequant_q3_K(src, dst, n / QK_K); break;
    case GGML_TYPE_IQ4_XS: dequant_iq4_xs(src, dst, n / QK_K); break;
    case GGML_TYPE_Q4_K: dequant_q4_K(src, dst, n / QK_K); break;
    case GGML_TYPE_Q5_K: dequant_q5_K(src, dst, n / QK_K); break;
    case GGML_TYPE_Q6_K: dequant_q6_K(src, dst, n / QK_K); break;
    case GGML_TYPE_Q8_K: dequant_q8_K(src, dst, n / QK_K); break;
    default: memset(dst, 0, (size_t)n * sizeof(float)); break;
    }
}

/* ------------------------------------------------- activation conversions */

void llm_quantize_row_q8_0_ref(const float *x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float amax = 0;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.f;
        float id = amax != 0.f ? 127.f / amax : 0.f;
        y[i].d = llm_ggml_fp32_to_fp16(d);
        for (int j = 0; j < QK8_0; j++) y[i].qs[j] = (int8_t)llm_nearest_int(x[j] * id);
    }
}

/* Q8_1: Q8_0's rule, plus s = fp16(d * sum(q)) with the f32 d. */
void llm_quantize_row_q8_1_ref(const float *x, void *dst, int64_t n) {
    block_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        float amax = 0;
        for (int j = 0; j < QK8_1; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.f;
        float id = amax != 0.f ? 127.f / amax : 0.f;
        y[i].d = llm_ggml_fp32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            y[i].qs[j] = (int8_t)llm_nearest_int(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = llm_ggml_fp32_to_fp16(d * (float)sum);
    }
}

void llm_quantize_row_q8_K_ref(const float *x, void *dst, int64_t n) {
    block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        /* the element of largest magnitude, keeping its sign */
        float amax = 0, max = 0;
        for (int j = 0; j < QK_K; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (amax == 0.f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) {
            int v = llm_nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += y[i].qs[16 * j + l];
            y[i].bsums[j] = (int16_t)s;
        }
        y[i].d = 1.f / iscale;
    }
}

void llm_quantize_row_f16_ref(const float *x, void *dst, int64_t n) {
    ggml_half *y = dst;
    for (int64_t i = 0; i < n; i++) y[i] = llm_ggml_fp32_to_fp16(x[i]);
}

void llm_quantize_row_bf16_ref(const float *x, void *dst, int64_t n) {
    ggml_bf16 *y = dst;
    for (int64_t i = 0; i < n; i++) y[i] = llm_ggml_fp32_to_bf16(x[i]);
}

void llm_quantize_act(uint32_t wtype, const float *x, void *dst, int64_t n) {
    uint32_t at = llm_vec_dot_type(wtype);
    if (at == GGML_TYPE_F32) {
        memcpy(dst, x, (size_t)n * sizeof(float));
        return;
    }
    llm_kernels_active()->act[at](x, dst, n);
}

/* ---------------------------------------------------- weight quantizers
 * Used by mkmodel only; they produce valid blocks with small error but do not
 * reproduce llama.cpp's scale searches. */

static void quant_q4_0(const float *x, block_q4_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK4_0) {
        float amax = 0, max = 0;
        for (int j = 0; j < QK4_0; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        /* the extreme value maps to -8, the end of the range with one more step */
        float d = max / -8.f;
        float id = d != 0.f ? 1.f / d : 0.f;
        y[i].d = llm_ggml_fp32_to_fp16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            int a = (int)(x[j] * id + 8.5f), b = (int)(x[j + 16] * id + 8.5f);
            a = a < 0 ? 0 : a > 15 ? 15 : a;
            b = b < 0 ? 0 : b > 15 ? 15 : b;
            y[i].qs[j] = (uint8_t)(a | (b << 4));
        }
    }
}

/* Q4_1 / Q5_1: min and range per block of 32, nmax steps. */
static void quant_min_range(const float *x, int nmax, ggml_half *dp, ggml_half *mp, uint8_t L[32]) {
    float lo = x[0], hi = x[0];
    for (int j = 1; j < 32; j++) { lo = fminf(lo, x[j]); hi = fmaxf(hi, x[j]); }
    *dp = llm_ggml_fp32_to_fp16((hi - lo) / (float)nmax);
    *mp = llm_ggml_fp32_to_fp16(lo);
    float d = llm_ggml_fp16_to_fp32(*dp), m = llm_ggml_fp16_to_fp32(*mp);
    for (int j = 0; j < 32; j++) {
        int q = d > 0 ? (int)lrintf((x[j] - m) / d) : 0;
        L[j] = (uint8_t)(q < 0 ? 0 : q > nmax ? nmax : q);
    }
}

static void quant_q4_1(const float *x, block_q4_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK4_1) {
        uint8_t L[32];
        quant_min_range(x, 15, &y[i].d, &y[i].m, L);
        for (int j = 0; j < 16; j++) y[i].qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
    }
}

/* The nibbles and fifth bits of 32 5-bit quants. */
static void pack_q5(const uint8_t L[32], uint8_t qs[16], uint8_t qh_bytes[4]) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((L[j] & 0xF) | ((L[j + 16] & 0xF) << 4));
    for (int j = 0; j < 32; j++) qh |= (uint32_t)(L[j] >> 4) << j;
    memcpy(qh_bytes, &qh, 4);
}

static void quant_q5_0(const float *x, block_q5_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK5_0) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        y[i].d = llm_ggml_fp32_to_fp16(max / -16.f);      /* the extreme maps to -16 */
        float d = llm_ggml_fp16_to_fp32(y[i].d);
        uint8_t L[32];
        for (int j = 0; j < 32; j++) {
            int q = d != 0.f ? (int)lrintf(x[j] / d) + 16 : 16;
            L[j] = (uint8_t)(q < 0 ? 0 : q > 31 ? 31 : q);
        }
        pack_q5(L, y[i].qs, y[i].qh);
    }
}

static void quant_q5_1(const float *x, block_q5_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK5_1) {
        uint8_t L[32];
        quant_min_range(x, 31, &y[i].d, &y[i].m, L);
        pack_q5(L, y[i].qs, y[i].qh);
    }
}

/* Index of the IQ4_NL level nearest to v (in units of d). */
static int iq4nl_nearest(float v) {
    int best = 0;
    for (int k = 1; k < 16; k++)
        if (fabsf(llm_iq4nl_values[k] - v) < fabsf(llm_iq4nl_values[best] - v)) best = k;
    return best;
}

/* 32 values against the IQ4_NL table with scale d: nibbles as Q4_0. */
static void quant_iq4_32(const float *x, float d, uint8_t qs[16]) {
    float id = d != 0.f ? 1.f / d : 0.f;
    for (int j = 0; j < 16; j++)
        qs[j] = (uint8_t)(iq4nl_nearest(x[j] * id) | (iq4nl_nearest(x[j + 16] * id) << 4));
}

/* IQ4_NL: the signed extreme maps to the table's -127. */
static void quant_iq4_nl(const float *x, block_iq4_nl *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK4_NL) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        y[i].d = llm_ggml_fp32_to_fp16(max / -127.f);
        quant_iq4_32(x, llm_ggml_fp16_to_fp32(y[i].d), y[i].qs);
    }
}

/* IQ4_XS: IQ4_NL's scale per 32, quantized to 6 signed bits against
 * d = max |scale| / 31. */
static void quant_iq4_xs(const float *x, block_iq4_xs *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float scale[8], max_abs = 0;
        for (int j = 0; j < 8; j++) {
            float amax = 0, max = 0;
            for (int l = 0; l < 32; l++)
                if (fabsf(x[32 * j + l]) > amax) { amax = fabsf(x[32 * j + l]); max = x[32 * j + l]; }
            scale[j] = max / -127.f;
            max_abs = fmaxf(max_abs, fabsf(scale[j]));
        }
        y[i].d = llm_ggml_fp32_to_fp16(max_abs / 31.f);
        float d = llm_ggml_fp16_to_fp32(y[i].d);
        y[i].scales_h = 0;
        memset(y[i].scales_l, 0, sizeof y[i].scales_l);
        for (int j = 0; j < 8; j++) {
            int l = d > 0 ? (int)lrintf(scale[j] / d) : 0;
            l = l < -32 ? -32 : l > 31 ? 31 : l;
            int ls = l + 32;
            y[i].scales_l[j / 2] |= (uint8_t)((ls & 0xF) << (4 * (j % 2)));
            y[i].scales_h |= (uint16_t)((ls >> 4) << (2 * j));
            quant_iq4_32(x + 32 * j, d * l, y[i].qs + 16 * j);
        }
    }
}

/* Q2_K: per sub-block of 16, min (<= 0) and range / 3; 4-bit scales and
 * mins against d = max scale / 15 and dmin = max min / 15. */
static void quant_q2_K(const float *x, block_q2_K *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float scale[16], mn[16], max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
            float lo = x[16 * j], hi = x[16 * j];
            for (int l = 1; l < 16; l++) { lo = fminf(lo, x[16 * j + l]); hi = fmaxf(hi, x[16 * j + l]); }
            if (lo > 0) lo = 0;
            scale[j] = (hi - lo) / 3.f;
            mn[j] = -lo;
            max_scale = fmaxf(max_scale, scale[j]);
            max_min = fmaxf(max_min, mn[j]);
        }
        y[i].d = llm_ggml_fp32_to_fp16(max_scale / 15.f);
        y[i].dmin = llm_ggml_fp32_to_fp16(max_min / 15.f);
        float d = llm_ggml_fp16_to_fp32(y[i].d), dmin = llm_ggml_fp16_to_fp32(y[i].dmin);
        memset(y[i].qs, 0, sizeof y[i].qs);
        for (int j = 0; j < 16; j++) {
            int a = d > 0 ? (int)lrintf(scale[j] / d) : 0, b = dmin > 0 ? (int)lrintf(mn[j] / dmin) : 0;
            a = a < 0 ? 0 : a > 15 ? 15 : a;
            b = b < 0 ? 0 : b > 15 ? 15 : b;
            y[i].scales[j] = (uint8_t)(a | b << 4);
            float ds = d * a, dm = dmin * b;
            for (int l = 0; l < 16; l++) {
                int e = 16 * j + l;
                int q = ds > 0 ? (int)lrintf((x[e] + dm) / ds) : 0;
                q = q < 0 ? 0 : q > 3 ? 3 : q;
                y[i].qs[32 * (e / 128) + e % 32] |= (uint8_t)(q << (2 * ((e % 128) / 32)));
            }
        }
    }
}

/* Q3_K: per sub-block of 16 a signed scale mapping the extreme value to -4;
 * scales quantized to -32..31 against d = max |scale| / 31. */
static void quant_q3_K(const float *x, block_q3_K *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float scale[16], max_abs = 0;
        for (int j = 0; j < 16; j++) {
            float amax = 0, max = 0;
            for (int l = 0; l < 16; l++)
                if (fabsf(x[16 * j + l]) > amax) { amax = fabsf(x[16 * j + l]); max = x[16 * j + l]; }
            scale[j] = max / -4.f;
            max_abs = fmaxf(max_abs, fabsf(scale[j]));
        }
        y[i].d = llm_ggml_fp32_to_fp16(max_abs / 31.f);
        float d = llm_ggml_fp16_to_fp32(y[i].d);
        memset(y[i].scales, 0, sizeof y[i].scales);
        memset(y[i].qs, 0, sizeof y[i].qs);
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        for (int j = 0; j < 16; j++) {
            int l = d > 0 ? (int)lrintf(scale[j] / d) : 0;
            l = l < -32 ? -32 : l > 31 ? 31 : l;
            int st = l + 32;
            if (j < 8) y[i].scales[j] |= (uint8_t)(st & 0xF);
            else y[i].scales[j - 8] |= (uint8_t)((st & 0xF) << 4);
            y[i].scales[8 + j % 4] |= (uint8_t)((st >> 4) << (2 * (j / 4)));
            float ds = d * l;
            for (int k = 0; k < 16; k++) {
                int e = 16 * j + k;
                int q = ds != 0.f ? (int)lrintf(x[e] / ds) : 0;
                q = (q < -4 ? -4 : q > 3 ? 3 : q) + 4;     /* 0..7: low 2 bits, high bit */
                int h = e / 128, sh = (e % 128) / 32, ll = e % 32;
                y[i].qs[32 * h + ll] |= (uint8_t)((q & 3) << (2 * sh));
                if (q & 4) y[i].hmask[ll] |= (uint8_t)(1 << (4 * h + sh));
            }
        }
    }
}

static void quant_q8_0(const float *x, block_q8_0 *y, int64_t nb) {
    llm_quantize_row_q8_0_ref(x, y, nb * QK8_0);
}

/* Q4_K / Q5_K: per sub-block of 32, min (<= 0) and scale from the range
 * (nmax = 15 or 31 steps); the 8 scales and mins are then quantized to 6
 * bits against d and dmin, and the values re-quantized against the rounded
 * scales. L gets the QK_K quants. */
static void quant_k_scale_min(const float *x, int nmax, ggml_half *dp, ggml_half *dminp,
                              uint8_t scales[K_SCALE_SIZE], uint8_t L[QK_K]) {
    float scale[8], mn[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        const float *s = x + 32 * j;
        float lo = s[0], hi = s[0];
        for (int l = 1; l < 32; l++) { lo = fminf(lo, s[l]); hi = fmaxf(hi, s[l]); }
        if (lo > 0) lo = 0;
        scale[j] = (hi - lo) / (float)nmax;
        mn[j] = -lo;
        max_scale = fmaxf(max_scale, scale[j]);
        max_min = fmaxf(max_min, mn[j]);
    }
    *dp = llm_ggml_fp32_to_fp16(max_scale / 63.f);
    *dminp = llm_ggml_fp32_to_fp16(max_min / 63.f);
    float d = llm_ggml_fp16_to_fp32(*dp), dmin = llm_ggml_fp16_to_fp32(*dminp);
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; j++) {
        int a = d > 0 ? (int)lrintf(scale[j] / d) : 0;
        int b = dmin > 0 ? (int)lrintf(mn[j] / dmin) : 0;
        sc[j] = (uint8_t)(a < 0 ? 0 : a > 63 ? 63 : a);
        m[j] = (uint8_t)(b < 0 ? 0 : b > 63 ? 63 : b);
    }
    memset(scales, 0, K_SCALE_SIZE);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            scales[j] |= sc[j];
            scales[j + 4] |= m[j];
        } else {
            scales[j + 4] = (uint8_t)((sc[j] & 0xF) | ((m[j] & 0xF) << 4));
            scales[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            scales[j] |= (uint8_t)((m[j] >> 4) << 6);
        }
    }
    for (int j = 0; j < 8; j++) {
        float ds = d * sc[j], dm = dmin * m[j];
        for (int l = 0; l < 32; l++) {
            int q = ds > 0 ? (int)lrintf((x[32 * j + l] + dm) / ds) : 0;
            L[32 * j + l] = (uint8_t)(q < 0 ? 0 : q > nmax ? nmax : q);
        }
    }
}

static void quant_q4_K(const float *x, block_q4_K *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        uint8_t L[QK_K];
        quant_k_scale_min(x, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        for (int j = 0; j < QK_K / 64; j++)
            for (int l = 0; l < 32; l++)
                y[i].qs[32 * j + l] = (uint8_t)(L[64 * j + l] | (L[64 * j + 32 + l] << 4));
    }
}

static void quant_q5_K(const float *x, block_q5_K *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        uint8_t L[QK_K];
        quant_k_scale_min(x, 31, &y[i].d, &y[i].dmin, y[i].scales, L);
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (int j = 0; j < QK_K / 64; j++)
            for (int l = 0; l < 32; l++) {
                uint8_t a = L[64 * j + l], b = L[64 * j + 32 + l];
                y[i].qs[32 * j + l] = (uint8_t)((a & 0xF) | ((b & 0xF) << 4));
                y[i].qh[l] |= (uint8_t)(((a >> 4) << (2 * j)) | ((b >> 4) << (2 * j + 1)));
            }
    }
}

/* Q6_K: per sub-block of 16 a signed scale mapping the extreme value to -32;
 * scales quantized to int8 against d = max|scale| / 127. */
static void quant_q6_K(const float *x, block_q6_K *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float scale[16], max_abs_scale = 0;
        for (int j = 0; j < 16; j++) {
            float amax = 0, max = 0;
            for (int l = 0; l < 16; l++)
                if (fabsf(x[16 * j + l]) > amax) { amax = fabsf(x[16 * j + l]); max = x[16 * j + l]; }
            scale[j] = max / -32.f;
            max_abs_scale = fmaxf(max_abs_scale, fabsf(scale[j]));
        }
        float d = max_abs_scale / 127.f;
        y[i].d = llm_ggml_fp32_to_fp16(d);
        d = llm_ggml_fp16_to_fp32(y[i].d);
        uint8_t L[QK_K];
        for (int j = 0; j < 16; j++) {
            int s = d > 0 ? (int)lrintf(scale[j] / d) : 0;
            s = s < -128 ? -128 : s > 127 ? 127 : s;
            y[i].scales[j] = (int8_t)s;
            float ds = d * s;
            for (int l = 0; l < 16; l++) {
                int q = ds != 0.f ? (int)lrintf(x[16 * j + l] / ds) : 0;
                q = q < -32 ? -32 : q > 31 ? 31 : q;
                L[16 * j + l] = (uint8_t)(q + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int n = 0; n < QK_K; n += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                uint8_t q1 = L[n + l], q2 = L[n + l + 32], q3 = L[n + l + 64], q4 = L[n + l + 96];
                ql[l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }
}

size_t llm_quantize(uint32_t type, const float *src, void *dst, int64_t nrows, int64_t n_per_row) {
    size_t row = llm_ggml_row_size(type, (uint64_t)n_per_row);
    if (!llm_type_supported(type) || row == 0 || nrows < 0) return 0;
    uint8_t *out = dst;
    for (int64_t r = 0; r < nrows; r++, src += n_per_row, out += row) {
        switch (type) {
        case GGML_TYPE_F32: memcpy(out, src, row); break;
        case GGML_TYPE_F16: llm_quantize_row_f16_ref(src, out, n_per_row); break;
        case GGML_TYPE_BF16: llm_quantize_row_bf16_ref(src, out, n_per_row); break;
        case GGML_TYPE_Q4_0: quant_q4_0(src, (block_q4_0 *)out, n_per_row / QK4_0); break;
        case GGML_TYPE_Q8_0: quant_q8_0(src, (block_q8_0 *)out, n_per_row / QK8_0); break;
        case GGML_TYPE_Q4_K: quant_q4_K(src, (block_q4_K *)out, n_per_row / QK_K); break;
        case GGML_TYPE_Q4_1: quant_q4_1(src, (block_q4_1 *)out, n_per_row / QK4_1); break;
        case GGML_TYPE_Q5_0: quant_q5_0(src, (block_q5_0 *)out, n_per_row / QK5_0); break;
        case GGML_TYPE_Q5_1: quant_q5_1(src, (block_q5_1 *)out, n_per_row / QK5_1); break;
        case GGML_TYPE_IQ4_NL: quant_iq4_nl(src, (block_iq4_nl *)out, n_per_row / QK4_NL); break;
        case GGML_TYPE_Q2_K: quant_q2_K(src, (block_q2_K *)out, n_per_row / QK_K); break;
        case GGML_TYPE_Q3_K: quant_q3_K(src, (block_q3_K *)out, n_per_row / QK_K); break;
        case GGML_TYPE_IQ4_XS: quant_iq4_xs(src, (block_iq4_xs *)out, n_per_row / QK_K); break;
        case GGML_TYPE_Q8_1: llm_quantize_row_q8_1_ref(src, out, n_per_row); break;
        case GGML_TYPE_Q5_K: quant_q5_K(src, (block_q5_K *)out, n_per_row / QK_K); break;
        case GGML_TYPE_Q6_K: quant_q6_K(src, (block_q6_K *)out, n_per_row / QK_K); break;
        case GGML_TYPE_Q8_K: llm_quantize_row_q8_K_ref(src, out, n_per_row); break;
        default: return 0;
        }
    }
    return row * (size_t)nrows;
}
