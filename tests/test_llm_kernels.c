/* test_llm_kernels.c — quant layouts, quantize/dequantize error, SIMD vs
 * reference dot products, matmul against a naive reference, the thread pool. */
#include <math.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "llm/kernels_internal.h"
#include "llm/llm.h"
#include "tests/test.h"

static const uint32_t all_types[] = {
    GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q8_0,
    GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_IQ4_NL,
    GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K, GGML_TYPE_IQ4_XS,
};
#define N_TYPES (int)(sizeof all_types / sizeof all_types[0])

/* xorshift64* with a Box-Muller normal: deterministic test data. */
static uint64_t rng_state = 88172645463325252ull;
static double rnd_uniform(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}
static float rnd_normal(void) {
    double u = rnd_uniform(), v = rnd_uniform();
    if (u < 1e-300) u = 1e-300;
    return (float)(sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}
static void fill_normal(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * rnd_normal();
}

static bool asan(void) { return getenv("MRAG_ASAN") != NULL; }

/* ------------------------------------------------ hand-computed layouts */

TEST(q4_0_hand_block) {
    block_q4_0 b;
    b.d = 0x3800;   /* 0.5 */
    for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    float y[32];
    llm_dequantize_row(GGML_TYPE_Q4_0, &b, y, 32);
    CHECK(y[0] == -4.0f, "%g", y[0]);       /* (0 - 8) * 0.5 */
    CHECK(y[9] == 0.5f, "%g", y[9]);        /* (9 - 8) * 0.5 */
    CHECK(y[15] == 3.5f, "%g", y[15]);
    CHECK(y[16] == 3.5f, "%g", y[16]);      /* high nibble of qs[0] = 15 */
    CHECK(y[31] == -4.0f, "%g", y[31]);     /* high nibble of qs[15] = 0 */
}

TEST(q8_0_hand_block) {
    block_q8_0 b;
    b.d = 0x3400;   /* 0.25 */
    for (int j = 0; j < 32; j++) b.qs[j] = (int8_t)(j - 16);
    float y[32];
    llm_dequantize_row(GGML_TYPE_Q8_0, &b, y, 32);
    CHECK(y[0] == -4.0f, "%g", y[0]);
    CHECK(y[31] == 3.75f, "%g", y[31]);
}

TEST(q4_K_hand_block) {
    block_q4_K b;
    memset(&b, 0, sizeof b);
    b.d = 0x3C00;       /* 1.0 */
    b.dmin = 0x3800;    /* 0.5 */
    /* sub-blocks 0..3: sc = 1..4 (low 6 bits of bytes 0..3), m = 10..13
     * (bytes 4..7); sub-block 4: sc = 5 | 1 << 4 = 21 (byte 8 low nibble, top
     * bits of byte 0), m = 3 | 2 << 4 = 35 (byte 8 high nibble, top of byte 4) */
    const uint8_t sc[12] = {1 | 1 << 6, 2, 3, 4, 10 | 2 << 6, 11, 12, 13, 0x35, 0, 0, 0};
    memcpy(b.scales, sc, 12);
    b.qs[0] = 0x97;     /* element 0: q = 7; element 32: q = 9 */
    b.qs[64] = 0x0F;    /* element 128: q = 15; element 160: q = 0 */
    float y[256];
    llm_dequantize_row(GGML_TYPE_Q4_K, &b, y, 256);
    CHECK(y[0] == 2.0f, "%g", y[0]);        /* 1*1*7 - 0.5*10 */
    CHECK(y[1] == -5.0f, "%g", y[1]);       /* q = 0 */
    CHECK(y[32] == 12.5f, "%g", y[32]);     /* 1*2*9 - 0.5*11 */
    CHECK(y[64] == -6.0f, "%g", y[64]);     /* sub-block 2, q = 0: -0.5*12 */
    CHECK(y[128] == 297.5f, "%g", y[128]);  /* 21*15 - 0.5*35 */
    CHECK(y[160] == 0.0f, "%g", y[160]);    /* sub-block 5: sc = m = 0 */
}

TEST(q6_K_hand_block) {
    block_q6_K b;
    memset(&b, 0, sizeof b);
    b.d = 0x3800;       /* 0.5 */
    b.scales[0] = 2;
    b.scales[2] = -3;
    b.scales[4] = 4;
    b.scales[6] = 1;
    b.scales[8] = 5;
    b.ql[0] = 0x5A;     /* element 0 low bits 10, element 64 low bits 5 */
    b.qh[0] = 3 | 1 << 2 | 2 << 4 | 3 << 6; /* high bits of elements 0, 32, 64, 96 */
    b.ql[64] = 0x01;    /* element 128 */
    float y[256];
    llm_dequantize_row(GGML_TYPE_Q6_K, &b, y, 256);
    CHECK(y[0] == 26.0f, "%g", y[0]);       /* (10 | 3<<4) - 32 = 26; 0.5*2*26 */
    CHECK(y[1] == -32.0f, "%g", y[1]);      /* q = -32; 0.5*2*-32 */
    CHECK(y[32] == 24.0f, "%g", y[32]);     /* (0 | 1<<4) - 32 = -16; 0.5*-3*-16 */
    CHECK(y[64] == 10.0f, "%g", y[64]);     /* (5 | 2<<4) - 32 = 5; 0.5*4*5 */
    CHECK(y[96] == 8.0f, "%g", y[96]);      /* (0 | 3<<4) - 32 = 16; 0.5*1*16 */
    CHECK(y[128] == -77.5f, "%g", y[128]);  /* 1 - 32 = -31; 0.5*5*-31 */
}

TEST(q5_K_hand_block) {
    block_q5_K b;
    memset(&b, 0, sizeof b);
    b.d = 0x3C00;       /* 1.0 */
    b.dmin = 0x3800;    /* 0.5 */
    /* scales and mins packed as Q4_K's: sub-block 0 sc 1 m 10, 1: sc 2 m 11,
     * 2: sc 3 m 12, 4: sc 21 m 35 */
    const uint8_t sc[12] = {1 | 1 << 6, 2, 3, 4, 10 | 2 << 6, 11, 12, 13, 0x35, 0, 0, 0};
    memcpy(b.scales, sc, 12);
    b.qs[0] = 0x97;     /* element 0: low 7; element 32: low 9 */
    b.qh[0] = 1 | 2;    /* fifth bit of element 0 (sub-block 0) and element 32 (sub-block 1) */
    b.qs[1] = 0x0F;     /* element 1: 15, no fifth bit; element 33: 0 */
    b.qh[1] = 1 << 4;   /* fifth bit of element 129 (sub-block 4, bit 4) */
    b.qs[65] = 0x03;    /* element 129: low 3 */
    b.qh[31] = 1 << 7;  /* element 255 (sub-block 7: sc = m = 0): any q gives 0 */
    b.qs[127] = 0xF0;
    float y[256];
    llm_dequantize_row(GGML_TYPE_Q5_K, &b, y, 256);
    CHECK(y[0] == 18.0f, "%g", y[0]);       /* 1*1*(7+16) - 0.5*10 */
    CHECK(y[1] == 10.0f, "%g", y[1]);       /* 1*1*15 - 5 */
    CHECK(y[32] == 44.5f, "%g", y[32]);     /* 1*2*(9+16) - 0.5*11 */
    CHECK(y[33] == -5.5f, "%g", y[33]);     /* q = 0 */
    CHECK(y[64] == -6.0f, "%g", y[64]);     /* sub-block 2, q = 0: -0.5*12 */
    CHECK(y[129] == 381.5f, "%g", y[129]);  /* 21*(3+16) - 0.5*35 */
    CHECK(y[128] == -17.5f, "%g", y[128]);  /* q = 0 */
    CHECK(y[255] == 0.0f, "%g", y[255]);
}

TEST(q4_1_hand_block) {
    block_q4_1 b;
    b.d = 0x3800;       /* 0.5 */
    b.m = 0xC000;       /* -2 */
    for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    float y[32];
    llm_dequantize_row(GGML_TYPE_Q4_1, &b, y, 32);
    CHECK(y[0] == -2.0f, "%g", y[0]);       /* 0 * 0.5 - 2 */
    CHECK(y[9] == 2.5f, "%g", y[9]);        /* 9 * 0.5 - 2 */
    CHECK(y[16] == 5.5f, "%g", y[16]);      /* high nibble of qs[0] = 15 */
    CHECK(y[31] == -2.0f, "%g", y[31]);
}

TEST(q5_0_and_q5_1_hand_blocks) {
    block_q5_0 b;
    memset(&b, 0, sizeof b);
    b.d = 0x3800;       /* 0.5 */
    b.qs[0] = 0x3F;     /* element 0: low 15; element 16: low 3 */
    b.qs[1] = 0x02;     /* element 1: 2, element 17: 0 */
    b.qh[0] = 0x01;     /* bit 0: element 0 gets 16 */
    b.qh[2] = 0x01;     /* bit 16: element 16 */
    b.qh[3] = 0x80;     /* bit 31: element 31 */
    float y[32];
    llm_dequantize_row(GGML_TYPE_Q5_0, &b, y, 32);
    CHECK(y[0] == 7.5f, "%g", y[0]);        /* (31 - 16) * 0.5 */
    CHECK(y[1] == -7.0f, "%g", y[1]);       /* (2 - 16) * 0.5 */
    CHECK(y[16] == 1.5f, "%g", y[16]);      /* (3 + 16 - 16) * 0.5 */
    CHECK(y[17] == -8.0f, "%g", y[17]);     /* (0 - 16) * 0.5 */
    CHECK(y[31] == 0.0f, "%g", y[31]);      /* (0 + 16 - 16) */
    block_q5_1 c;
    memset(&c, 0, sizeof c);
    c.d = 0x3800;
    c.m = 0x3C00;       /* 1 */
    memcpy(c.qs, b.qs, 16);
    memcpy(c.qh, b.qh, 4);
    llm_dequantize_row(GGML_TYPE_Q5_1, &c, y, 32);
    CHECK(y[0] == 16.5f, "%g", y[0]);       /* 31 * 0.5 + 1 */
    CHECK(y[16] == 10.5f, "%g", y[16]);     /* 19 * 0.5 + 1 */
    CHECK(y[31] == 9.0f, "%g", y[31]);      /* 16 * 0.5 + 1 */
    CHECK(y[17] == 1.0f, "%g", y[17]);
}

TEST(iq4_nl_and_iq4_xs_hand_blocks) {
    block_iq4_nl b;
    b.d = 0x3800;       /* 0.5 */
    for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    float y[256];
    llm_dequantize_row(GGML_TYPE_IQ4_NL, &b, y, 32);
    CHECK(y[0] == -63.5f, "%g", y[0]);      /* table[0] = -127 */
    CHECK(y[8] == 0.5f, "%g", y[8]);        /* table[8] = 1 */
    CHECK(y[15] == 56.5f, "%g", y[15]);     /* table[15] = 113 */
    CHECK(y[16] == 56.5f, "%g", y[16]);     /* high nibble 15 */
    block_iq4_xs x;
    memset(&x, 0, sizeof x);
    x.d = 0x3C00;       /* 1 */
    /* sub-block 0: ls = 33 (scale 1): low nibble 1 of scales_l[0], high bits 2
     * (bits 0-1 of scales_h); sub-block 1: ls = 30 (scale -2): high nibble
     * 14 of scales_l[0], high bits 1; sub-block 7: ls = 0x3F (scale 31) */
    x.scales_l[0] = 1 | 14 << 4;
    x.scales_l[3] = 0xF0;
    x.scales_h = 2 | 1 << 2 | 3 << 14;
    x.qs[0] = 0x0F;     /* element 0: 15 (113); element 16: 0 (-127) */
    x.qs[16] = 0x08;    /* element 32: 8 (1) */
    x.qs[127] = 0x10;   /* element 255 (sub-block 7, high nibble of its byte 15): 1 (-104) */
    llm_dequantize_row(GGML_TYPE_IQ4_XS, &x, y, 256);
    CHECK(y[0] == 113.0f, "%g", y[0]);
    CHECK(y[16] == -127.0f, "%g", y[16]);
    CHECK(y[32] == -2.0f, "%g", y[32]);
    CHECK(y[255] == -3224.0f, "%g", y[255]);  /* 31 * -104 */
    CHECK(y[64] == -127.0f * -32, "%g", y[64]); /* sub-block 2: ls 0 -> -32, q 0 -> -127 */
}

TEST(q2_K_hand_block) {
    block_q2_K b;
    memset(&b, 0, sizeof b);
    b.d = 0x3C00;       /* 1 */
    b.dmin = 0x3800;    /* 0.5 */
    b.scales[0] = 3 | 4 << 4;   /* sub-block 0 (elements 0-15): sc 3, m 4 */
    b.scales[1] = 5;            /* sub-block 1 (16-31): sc 5, m 0 */
    b.scales[2] = 2 | 1 << 4;   /* sub-block 2 (32-47) */
    b.scales[8] = 7;            /* sub-block 8 (128-143) */
    b.qs[0] = 3 | 1 << 2;       /* element 0: 3; element 32: 1 */
    b.qs[16] = 2;               /* element 16 */
    b.qs[32] = 3 << 6;          /* element 128 + 96 = 224: sub-block 14 (sc 0) */
    b.qs[33] = 2;               /* element 129 */
    float y[256];
    llm_dequantize_row(GGML_TYPE_Q2_K, &b, y, 256);
    CHECK(y[0] == 7.0f, "%g", y[0]);        /* 1*3*3 - 0.5*4 */
    CHECK(y[1] == -2.0f, "%g", y[1]);
    CHECK(y[16] == 10.0f, "%g", y[16]);     /* 5*2 */
    CHECK(y[32] == 1.5f, "%g", y[32]);      /* 2*1 - 0.5 */
    CHECK(y[129] == 14.0f, "%g", y[129]);   /* 7*2 */
    CHECK(y[224] == 0.0f, "%g", y[224]);
}

TEST(q3_K_hand_block) {
    block_q3_K b;
    memset(&b, 0, sizeof b);
    b.d = 0x3800;       /* 0.5 */
    /* stored scales (value + 32): scale 0 = 34 (2): low nibble 2 of byte 0,
     * high bits 2 in bits 0-1 of byte 8; scale 9 = 29 (-3): high nibble 13
     * of byte 1, high bits 1 in bits 4-5 of byte 9; every other 0 (-32). */
    b.scales[0] = 2;
    b.scales[8] = 2;
    b.scales[1] = 13 << 4;
    b.scales[9] = 1 << 4;
    b.qs[0] = 3;            /* element 0: low 3 */
    b.hmask[0] = 1;         /* element 0: high bit set: q = 3 */
    b.qs[1] = 1;            /* element 1: low 1, high bit clear: q = -3 */
    b.qs[32 + 16] = 2 << 2; /* element 128 + 32 + 16 = 176: low 2, sub-block 11 */
    b.hmask[16] = 1 << 5;   /* its high bit: bit 4h + s = 5 */
    b.qs[32 + 2] = 2;       /* element 130 (sub-block 8, scale -32): low 2, no high bit: q = -2 */
    float y[256];
    llm_dequantize_row(GGML_TYPE_Q3_K, &b, y, 256);
    CHECK(y[0] == 3.0f, "%g", y[0]);        /* 0.5 * 2 * 3 */
    CHECK(y[1] == -3.0f, "%g", y[1]);       /* 0.5 * 2 * -3 */
    CHECK(y[2] == -4.0f, "%g", y[2]);       /* q = 0 - 4 */
    CHECK(y[130] == 32.0f, "%g", y[130]);   /* 0.5 * -32 * -2 */
    CHECK(y[176] == -32.0f, "%g", y[176]);  /* 0.5 * -32 * 2: sub-block 11 */
    CHECK(y[144] == 6.0f, "%g", y[144]);    /* sub-block 9 (scale -3), q = -4: 0.5 * -3 * -4 */
}

TEST(q8_1_activation_sum) {
    float x[64];
    for (int j = 0; j < 64; j++) x[j] = (float)(j % 7) - 3.0f;
    x[5] = 127.f;       /* block 0: d = 1, q = x */
    for (int lv = 0; lv <= (int)llm_simd_detect(); lv++) {
        block_q8_1 b[2];
        llm_kernels_get((llm_simd)lv)->act[GGML_TYPE_Q8_1](x, b, 64);
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += b[0].qs[j];
        CHECK(b[0].d == 0x3C00, "%s %04x", llm_simd_name(lv), b[0].d);
        CHECK(b[0].s == llm_ggml_fp32_to_fp16((float)sum), "%s s %g vs %d", llm_simd_name(lv),
              llm_ggml_fp16_to_fp32(b[0].s), sum);
        CHECK(b[0].qs[5] == 127 && b[0].qs[0] == -3, "%s %d %d", llm_simd_name(lv), b[0].qs[5], b[0].qs[0]);
        /* block 1: amax 3, d = 3/127, s = d * sum(q) */
        int s1 = 0;
        for (int j = 0; j < 32; j++) s1 += b[1].qs[j];
        CHECK(b[1].s == llm_ggml_fp32_to_fp16(3.f / 127.f * (float)s1), "%s block 1 s", llm_simd_name(lv));
    }
}

TEST(q8_K_activation_rule) {
    float x[256] = {0};
    x[0] = 1.984375f;   /* 127/64, largest magnitude, positive: iscale = -64 */
    x[1] = -1.0f;       /* 64 */
    x[2] = 0.25f;       /* -16 */
    x[17] = 0.0390625f; /* -2.5 -> -2 (ties to even; away from zero would be -3) */
    for (int lv = 0; lv <= (int)llm_simd_detect(); lv++) {
        block_q8_K b;
        llm_kernels_get((llm_simd)lv)->act[GGML_TYPE_Q8_K](x, &b, 256);
        CHECK(b.qs[0] == -127, "%s %d", llm_simd_name(lv), b.qs[0]);
        CHECK(b.qs[1] == 64, "%s %d", llm_simd_name(lv), b.qs[1]);
        CHECK(b.qs[2] == -16, "%s %d", llm_simd_name(lv), b.qs[2]);
        CHECK(b.qs[17] == -2, "%s %d", llm_simd_name(lv), b.qs[17]);
        CHECK(b.bsums[0] == -127 + 64 - 16, "%s %d", llm_simd_name(lv), b.bsums[0]);
        CHECK(b.bsums[1] == -2, "%s %d", llm_simd_name(lv), b.bsums[1]);
        CHECK(b.d == -1.0f / 64, "%s %g", llm_simd_name(lv), b.d);
    }
}

/* llama.cpp's x86 backend: d = amax/127, q = round-half-even(x * 127/amax). */
TEST(q8_0_activation_rule) {
    float x[32] = {0};
    x[0] = 127.f;       /* amax: 127/amax = 1 exactly, d = 1 */
    x[1] = -50.f;
    x[2] = 2.5f;        /* ties to even: 2 (half away from zero would give 3) */
    x[3] = -3.5f;       /* -4 */
    x[4] = 0.5f;        /* 0 */
    for (int lv = 0; lv <= (int)llm_simd_detect(); lv++) {
        block_q8_0 b;
        llm_kernels_get((llm_simd)lv)->act[GGML_TYPE_Q8_0](x, &b, 32);
        CHECK(b.d == 0x3C00, "%s %04x", llm_simd_name(lv), b.d);
        CHECK(b.qs[0] == 127, "%s %d", llm_simd_name(lv), b.qs[0]);
        CHECK(b.qs[1] == -50, "%s %d", llm_simd_name(lv), b.qs[1]);
        CHECK(b.qs[2] == 2, "%s %d", llm_simd_name(lv), b.qs[2]);
        CHECK(b.qs[3] == -4, "%s %d", llm_simd_name(lv), b.qs[3]);
        CHECK(b.qs[4] == 0, "%s %d", llm_simd_name(lv), b.qs[4]);
        CHECK(b.qs[5] == 0, "%s %d", llm_simd_name(lv), b.qs[5]);
    }
    memset(x, 0, sizeof x);
    x[0] = 1.27f;       /* d = 1.27/127 = 0.01 */
    x[1] = -0.5f;       /* -0.5 * 127/1.27 = -50 */
    block_q8_0 b;
    llm_kernels_get(LLM_SIMD_REF)->act[GGML_TYPE_Q8_0](x, &b, 32);
    CHECK(b.d == llm_ggml_fp32_to_fp16(0.01f), "%04x", b.d);
    CHECK(b.qs[0] == 127 && b.qs[1] == -50, "%d %d", b.qs[0], b.qs[1]);
}

/* ------------------------------------------------- quantize round trip */

/* Bounds on RMS(x - dequant(quant(x))) / RMS(x) for N(0,1) data: Q8_0 has a
 * step of amax/127 (~0.02 sigma, RMS ~0.006); Q4_0 amax/8 (RMS ~0.09); Q4_K
 * range/15 per 32 plus 6-bit scales (~0.08); Q6_K amax/32 per 16 (~0.02);
 * F16 and BF16 are bounded per element by their relative precision. */
static double roundtrip_bound(uint32_t t) {
    switch (t) {
    case GGML_TYPE_F32: return 0;
    case GGML_TYPE_F16: return 1e-3;
    case GGML_TYPE_BF16: return 4e-3;
    case GGML_TYPE_Q8_0: return 0.01;
    case GGML_TYPE_Q4_0: return 0.13;
    case GGML_TYPE_Q4_K: return 0.11;
    case GGML_TYPE_Q5_K: return 0.06;
    case GGML_TYPE_Q4_1: return 0.12;
    case GGML_TYPE_Q5_0: return 0.06;
    case GGML_TYPE_Q5_1: return 0.06;
    case GGML_TYPE_IQ4_NL: return 0.12;
    case GGML_TYPE_IQ4_XS: return 0.12;
    case GGML_TYPE_Q3_K: return 0.25;
    case GGML_TYPE_Q2_K: return 0.45;
    case GGML_TYPE_Q6_K: return 0.03;
    }
    return 0;
}

TEST(quantize_roundtrip_error) {
    const int64_t n = 4096, rows = 3;
    float *x = malloc(sizeof(float) * n * rows), *y = malloc(sizeof(float) * n * rows);
    uint8_t *q = malloc(llm_ggml_row_size(GGML_TYPE_F32, n) * rows);
    REQUIRE(x && y && q);
    fill_normal(x, n * rows, 1.0f);
    x[5] = 7.0f;    /* an outlier */
    for (int i = 0; i < N_TYPES; i++) {
        uint32_t t = all_types[i];
        size_t got = llm_quantize(t, x, q, rows, n);
        CHECK_EQ_INT(got, llm_ggml_row_size(t, n) * rows);
        size_t rs = llm_ggml_row_size(t, n);
        for (int r = 0; r < rows; r++) llm_dequantize_row(t, q + r * rs, y + r * n, n);
        double e = 0, s = 0, maxrel = 0;
        for (int64_t k = 0; k < n * rows; k++) {
            e += (double)(x[k] - y[k]) * (x[k] - y[k]);
            s += (double)x[k] * x[k];
            if (x[k] != 0) maxrel = fmax(maxrel, fabs((x[k] - y[k]) / x[k]));
        }
        double rel = sqrt(e / s);
        CHECK(rel <= roundtrip_bound(t), "%s: rms rel error %g > %g", llm_type_name(t), rel, roundtrip_bound(t));
        if (t == GGML_TYPE_F16) CHECK(maxrel <= 1.0 / 2048, "f16 max rel %g", maxrel);
        if (t == GGML_TYPE_BF16) CHECK(maxrel <= 1.0 / 256, "bf16 max rel %g", maxrel);
        /* a quantizer that is too good to be true means it stored floats */
        if (llm_ggml_type_info(t)->blck_size > 1 && t != GGML_TYPE_Q8_0)
            CHECK(rel > 0.01, "%s: %g", llm_type_name(t), rel);
        printf("  # %s: rms rel error %.4f\n", llm_type_name(t), rel);
    }
    /* an all-zero row quantizes to zeros, not NaN */
    memset(x, 0, sizeof(float) * n);
    for (int i = 0; i < N_TYPES; i++) {
        llm_quantize(all_types[i], x, q, 1, n);
        llm_dequantize_row(all_types[i], q, y, n);
        for (int64_t k = 0; k < n; k++)
            if (y[k] != 0) { CHECK(y[k] == 0, "%s: zero row gave %g", llm_type_name(all_types[i]), y[k]); break; }
    }
    free(x);
    free(y);
    free(q);
}

/* ------------------------------------------------- SIMD vs reference */

/* sum |w_i * a_i| over the dequantized operands: the scale the rounding
 * differences of a dot product are measured against. */
static double abs_dot(uint32_t wt, const void *w, const void *a, int n, float *tw, float *ta) {
    llm_dequantize_row(wt, w, tw, n);
    llm_dequantize_row(llm_vec_dot_type(wt), a, ta, n);
    double s = 0;
    for (int i = 0; i < n; i++) s += fabs((double)tw[i] * ta[i]);
    return s;
}

/* Every SIMD vec-dot agrees with the reference within 2e-5 of sum|w*a|.
 * Integer types: the block sums are exact integers at every level, so the
 * only differences are the float products d_w*d_a*sum and the order the
 * blocks are added in (n/32 terms, float eps 6e-8 each). Float types: the
 * products are exact (f16, bf16) or single-rounded (f32), and the sums are
 * split over 8-32 lanes instead of one, ~n/16 float additions per lane. */
TEST(simd_vec_dot_matches_reference) {
    /* odd block counts (32, 96, 1056) exercise the kernels' tails */
    const int sizes[] = {32, 96, 256, 1056, 4096};
    int n_max = 4096;
    float *x = malloc(sizeof(float) * n_max), *w = malloc(sizeof(float) * n_max);
    float *tw = malloc(sizeof(float) * n_max), *ta = malloc(sizeof(float) * n_max);
    uint8_t *qw = malloc(n_max * 4), *qa = malloc(n_max * 4 + 64);
    REQUIRE(x && w && tw && ta && qw && qa);
    llm_simd top = llm_simd_detect();
    if (top == LLM_SIMD_REF) SKIP("no AVX2 on this CPU: nothing to compare against");
    for (int si = 0; si < 5; si++) {
        int n = sizes[si];
        for (int rep = 0; rep < 4; rep++) {
            fill_normal(w, n, 0.02f);
            fill_normal(x, n, rep == 3 ? 30.0f : 1.0f);
            for (int i = 0; i < N_TYPES; i++) {
                uint32_t t = all_types[i];
                if (n % llm_ggml_type_info(t)->blck_size) continue;
                llm_quantize(t, w, qw, 1, n);
                llm_kernels_get(LLM_SIMD_REF)->act[llm_vec_dot_type(t)] ?
                    llm_kernels_get(LLM_SIMD_REF)->act[llm_vec_dot_type(t)](x, qa, n) :
                    (void)memcpy(qa, x, sizeof(float) * n);
                float ref = llm_get_vec_dot(t, LLM_SIMD_REF)(n, qw, qa);
                double scale = abs_dot(t, qw, qa, n, tw, ta);
                for (int lv = 1; lv <= (int)top; lv++) {
                    float got = llm_get_vec_dot(t, (llm_simd)lv)(n, qw, qa);
                    CHECK(fabs(got - ref) <= 2e-5 * scale, "%s %s n=%d: %.9g vs ref %.9g (scale %g)",
                          llm_simd_name(lv), llm_type_name(t), n, got, ref, scale);
                }
            }
        }
    }
    free(x); free(w); free(tw); free(ta); free(qw); free(qa);
}

/* Weight blocks of random bytes (every quant, scale and min bit pattern,
 * e.g. Q6_K scale -128, Q8_0 quant -128, 6-bit Q4_K scales up to 63) with
 * sane fp16 scales: every level agrees with the reference, same bound. */
TEST(simd_vec_dot_random_blocks) {
    const int n = 1024;
    llm_simd top = llm_simd_detect();
    if (top == LLM_SIMD_REF) SKIP("no AVX2 on this CPU: nothing to compare against");
    uint8_t *qw = malloc(n * 4), *qa = malloc(n * 4 + 64);
    float *x = malloc(sizeof(float) * n), *tw = malloc(sizeof(float) * n), *ta = malloc(sizeof(float) * n);
    REQUIRE(qw && qa && x && tw && ta);
    const uint32_t qt[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1,
                           GGML_TYPE_IQ4_NL, GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K,
                           GGML_TYPE_Q6_K, GGML_TYPE_IQ4_XS};
    const int nqt = (int)(sizeof qt / sizeof qt[0]);
    for (int rep = 0; rep < 8; rep++) {
        for (int i = 0; i < nqt; i++) {
            uint32_t t = qt[i];
            size_t rs = llm_ggml_row_size(t, n), bs = llm_ggml_type_info(t)->type_size;
            for (size_t k = 0; k < rs; k++) qw[k] = (uint8_t)(rnd_uniform() * 256);
            /* fp16 scales between 2^-10 and 2^-3, either sign */
            for (size_t b = 0; b < rs / bs; b++) {
                uint8_t *blk = qw + b * bs;
                ggml_half d = llm_ggml_fp32_to_fp16((float)((rnd_uniform() < 0.5 ? -1 : 1) * ldexp(1 + rnd_uniform(), -10 + (int)(rnd_uniform() * 7))));
                ggml_half dm = llm_ggml_fp32_to_fp16((float)ldexp(1 + rnd_uniform(), -10 + (int)(rnd_uniform() * 7)));
                /* where each type keeps its fp16 scale and min (or second scale) */
                size_t od = 0, om = SIZE_MAX;
                switch (t) {
                case GGML_TYPE_Q6_K: od = offsetof(block_q6_K, d); break;
                case GGML_TYPE_Q3_K: od = offsetof(block_q3_K, d); break;
                case GGML_TYPE_Q2_K: od = offsetof(block_q2_K, d); om = offsetof(block_q2_K, dmin); break;
                case GGML_TYPE_Q4_K: om = offsetof(block_q4_K, dmin); break;
                case GGML_TYPE_Q5_K: om = offsetof(block_q5_K, dmin); break;
                case GGML_TYPE_Q4_1: om = offsetof(block_q4_1, m); break;
                case GGML_TYPE_Q5_1: om = offsetof(block_q5_1, m); break;
                default: break;
                }
                memcpy(blk + od, &d, 2);
                if (om != SIZE_MAX) memcpy(blk + om, &dm, 2);
            }
            fill_normal(x, n, 1.0f);
            llm_kernels_get(LLM_SIMD_REF)->act[llm_vec_dot_type(t)](x, qa, n);
            float ref = llm_get_vec_dot(t, LLM_SIMD_REF)(n, qw, qa);
            double scale = abs_dot(t, qw, qa, n, tw, ta);
            for (int lv = 1; lv <= (int)top; lv++) {
                float got = llm_get_vec_dot(t, (llm_simd)lv)(n, qw, qa);
                CHECK(fabs(got - ref) <= 2e-5 * scale, "%s %s random blocks: %.9g vs ref %.9g (scale %g)",
                      llm_simd_name(lv), llm_type_name(t), got, ref, scale);
            }
        }
    }
    free(qw); free(qa); free(x); free(tw); free(ta);
}

/* The SIMD activation converters give the same bytes as the reference. */
TEST(simd_activation_conversion_matches_reference) {
    const int n = 4096;
    float *x = malloc(sizeof(float) * n);
    uint8_t *a = malloc(n * 4), *b = malloc(n * 4);
    REQUIRE(x && a && b);
    fill_normal(x, n, 3.0f);
    x[7] = 0.5f * 3.0f;
    const uint32_t at[] = {GGML_TYPE_Q8_0, GGML_TYPE_Q8_1, GGML_TYPE_Q8_K, GGML_TYPE_F16, GGML_TYPE_BF16};
    for (int i = 0; i < 5; i++) {
        size_t rs = llm_ggml_row_size(at[i], n);
        llm_kernels_get(LLM_SIMD_REF)->act[at[i]](x, a, n);
        for (int lv = 1; lv <= (int)llm_simd_detect(); lv++) {
            memset(b, 0xAA, rs);
            llm_kernels_get((llm_simd)lv)->act[at[i]](x, b, n);
            CHECK(memcmp(a, b, rs) == 0, "%s %s differs", llm_simd_name(lv), llm_type_name(at[i]));
        }
    }
    free(x); free(a); free(b);
}

TEST(simd_f32_f16_helpers) {
    const int n = 1000;     /* not a multiple of any vector width */
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n), *c = malloc(sizeof(float) * n);
    ggml_half *ha = malloc(2 * n), *hb = malloc(2 * n), *hc = malloc(2 * n);
    REQUIRE(a && b && c && ha && hb && hc);
    fill_normal(a, n, 1);
    fill_normal(b, n, 1);
    a[3] = 1e-6f;       /* an f16 subnormal */
    a[4] = 70000.f;     /* f16 overflow: inf */
    double s = 0, s16 = 0;
    for (int i = 0; i < n; i++) {
        ha[i] = llm_ggml_fp32_to_fp16(a[i]);
        hb[i] = llm_ggml_fp32_to_fp16(b[i]);
    }
    for (int i = 0; i < n; i++) {
        if (i != 4) s16 += (double)llm_ggml_fp16_to_fp32(ha[i]) * llm_ggml_fp16_to_fp32(hb[i]);
        s += (double)a[i] * b[i];
    }
    for (int lv = 0; lv <= (int)llm_simd_detect(); lv++) {
        const llm_kernel_table *k = llm_kernels_get((llm_simd)lv);
        k->fp32_to_fp16(a, hc, n);
        CHECK(memcmp(ha, hc, 2 * n) == 0, "%s fp32_to_fp16 not exact", llm_simd_name(lv));
        k->fp16_to_fp32(ha, c, n);
        int bad = 0;
        for (int i = 0; i < n; i++) bad += c[i] != llm_ggml_fp16_to_fp32(ha[i]);
        CHECK(bad == 0, "%s fp16_to_fp32: %d differ", llm_simd_name(lv), bad);
        float d = k->dot_f32(a, b, n);
        CHECK(fabs(d - s) <= 1e-5 * (fabs(s) + 70000 * 3), "%s dot_f32 %g vs %g", llm_simd_name(lv), d, s);
        ha[4] = 0;
        d = k->dot_f16(ha, hb, n);
        CHECK(fabs(d - s16) <= 1e-5 * n, "%s dot_f16 %g vs %g", llm_simd_name(lv), d, s16);
        ha[4] = llm_ggml_fp32_to_fp16(a[4]);
    }
    free(a); free(b); free(c); free(ha); free(hb); free(hc);
}

/* ------------------------------------------------------------- matmul */

/* Y from llm_matmul against a naive double-precision product of the
 * dequantized weights and the dequantized converted activations, within
 * 2e-5 of sum|w*a| per output (the same argument as the vec-dot bound). */
static void check_matmul(llm_pool *pool, uint32_t t, int n_rows, int n_cols, int n_tok, const char *lvname) {
    size_t rs = llm_ggml_row_size(t, n_cols);
    size_t ars = llm_ggml_row_size(llm_vec_dot_type(t), n_cols);
    float *w = malloc(sizeof(float) * n_rows * n_cols), *x = malloc(sizeof(float) * n_tok * n_cols);
    float *wd = malloc(sizeof(float) * n_rows * n_cols), *xd = malloc(sizeof(float) * n_tok * n_cols);
    float *Y = malloc(sizeof(float) * n_rows * n_tok);
    uint8_t *qw = malloc(rs * n_rows), *qa = malloc(ars + 64);
    size_t ws = llm_matmul_work_size(t, n_cols, n_tok);
    void *work = malloc(ws ? ws : 1);
    REQUIRE(w && x && wd && xd && Y && qw && qa && work);
    fill_normal(w, (int64_t)n_rows * n_cols, 0.05f);
    fill_normal(x, (int64_t)n_tok * n_cols, 1.0f);
    llm_quantize(t, w, qw, n_rows, n_cols);
    for (int r = 0; r < n_rows; r++) llm_dequantize_row(t, qw + r * rs, wd + (size_t)r * n_cols, n_cols);
    for (int k = 0; k < n_tok; k++) {
        llm_quantize_act(t, x + (size_t)k * n_cols, qa, n_cols);
        llm_dequantize_row(llm_vec_dot_type(t), qa, xd + (size_t)k * n_cols, n_cols);
    }
    /* the GGUF rows, then (for a type with a packed layout) the packed
     * groups alone, so the level's packed gemm or the portable one runs */
    size_t psz = llm_pack_size(t, n_rows, n_cols);
    uint8_t *packed = NULL;
    if (psz) {
        REQUIRE(posix_memalign((void **)&packed, 64, psz) == 0);
        llm_pack_rows(t, qw, rs, n_rows, n_cols, 0, n_rows, packed);
    }
    for (int pass = 0; pass < (psz ? 2 : 1); pass++) {
    for (int i = 0; i < n_rows * n_tok; i++) Y[i] = NAN;
    if (pass == 0) {
        llm_matmul(pool, t, qw, n_rows, n_cols, x, n_tok, Y, work);
    } else {
        llm_mat m = {.type = t, .rows = n_rows, .cols = n_cols, .data = NULL, .packed = packed};
        llm_matmul_mat(pool, &m, x, n_tok, Y, work);
    }
    const char *path = pass ? "packed" : "rows";
    int bad = 0;
    for (int k = 0; k < n_tok && bad < 5; k++) {
        for (int r = 0; r < n_rows && bad < 5; r++) {
            double s = 0, sa = 0;
            for (int c = 0; c < n_cols; c++) {
                double p = (double)wd[(size_t)r * n_cols + c] * xd[(size_t)k * n_cols + c];
                s += p;
                sa += fabs(p);
            }
            /* Q8_1 activations carry s = d * sum(q) as fp16, made from the
             * f32 d, which Q4_1 and Q5_1 multiply by their min m: s differs
             * from the fp16 d times sum(q) by two fp16 roundings (2^-11
             * relative each); add m * s * 2^-10 per block to the bound */
            double s_err = 0;
            if (llm_vec_dot_type(t) == GGML_TYPE_Q8_1) {
                llm_quantize_act(t, x + (size_t)k * n_cols, qa, n_cols);
                const block_q8_1 *ab = (const block_q8_1 *)qa;
                for (int b = 0; b < n_cols / 32; b++) {
                    ggml_half m;
                    memcpy(&m, qw + (size_t)r * rs + (size_t)b * llm_ggml_type_info(t)->type_size + 2, 2);
                    s_err += fabs((double)llm_ggml_fp16_to_fp32(m) * llm_ggml_fp16_to_fp32(ab[b].s)) / 1024;
                }
            }
            float got = Y[(size_t)k * n_rows + r];
            if (!(fabs(got - s) <= 2e-5 * sa + s_err + 1e-30)) {
                bad++;
                CHECK(0, "%s %s %s threads=%d n_tok=%d n_rows=%d: Y[%d,%d] = %.9g, naive %.9g",
                      lvname, path, llm_type_name(t), llm_pool_size(pool), n_tok, n_rows, k, r, got, s);
            }
        }
    }
    }
    free(w); free(x); free(wd); free(xd); free(Y); free(qw); free(qa); free(work); free(packed);
}

TEST(matmul_matches_naive) {
    llm_pool *pools[2] = {llm_pool_new(1), llm_pool_new(2)};
    REQUIRE(pools[0] && pools[1]);
    const int toks[] = {1, 3, 17, 64};
    const int n_cols = asan() ? 256 : 512;
    llm_simd saved = llm_simd_active();
    for (int lv = 0; lv <= (int)llm_simd_detect(); lv++) {
        llm_simd_set((llm_simd)lv);
        for (int i = 0; i < N_TYPES; i++)
            for (int p = 0; p < 2; p++)
                for (int k = 0; k < 4; k++) {
                    check_matmul(pools[p], all_types[i], k == 3 ? 131 : 67, n_cols, toks[k], llm_simd_name(lv));
                    /* 5 blocks of 32: an odd count, for the two-block kernels'
                     * tail; 170 floats: not a multiple of any vector width */
                    /* decode big enough to be split over the pool */
                    if (k == 0) check_matmul(pools[p], all_types[i], 300, n_cols, 1, llm_simd_name(lv));
                    uint32_t bs = llm_ggml_type_info(all_types[i])->blck_size;
                    if (bs <= 32) check_matmul(pools[p], all_types[i], 33, bs == 1 ? 170 : 160, toks[k], llm_simd_name(lv));
                }
    }
    llm_simd_set(saved);
    llm_pool_free(pools[0]);
    llm_pool_free(pools[1]);
}

/* A row that is not whole blocks, or an unsupported type, gives NaN rather
 * than reading out of bounds. */
TEST(matmul_rejects_bad_shapes) {
    float x[64] = {0}, y[2] = {0, 0};
    uint8_t w[256] = {0};
    llm_matmul(NULL, GGML_TYPE_Q4_0, w, 2, 40, x, 1, y, w);
    CHECK(isnan(y[0]) && isnan(y[1]), "q4_0 with 40 columns: %g %g", y[0], y[1]);
    y[0] = y[1] = 0;
    llm_matmul(NULL, GGML_TYPE_MXFP4, w, 2, 32, x, 1, y, w);
    CHECK(isnan(y[0]) && isnan(y[1]), "mxfp4 unsupported: %g %g", y[0], y[1]);
    CHECK(!llm_type_supported(GGML_TYPE_MXFP4));
    CHECK(llm_type_supported(GGML_TYPE_Q6_K));
    /* a SwiGLU pair of different heights, or of columns unlike the input's
     * row length, is a caller's mistake: NaN in every output */
    uint8_t q[2 * 34 * 2] = {0};
    float g[3] = {0, 0, 0}, u[2] = {0, 0};
    float *ys[2] = {g, u};
    llm_mat gu[2] = {{GGML_TYPE_Q8_0, 3, 64, q, NULL}, {GGML_TYPE_Q8_0, 2, 64, q, NULL}};
    llm_matmul_multi(NULL, gu, 2, x, 1, ys, LLM_MULTI_GLU, w);
    CHECK(isnan(g[0]) && isnan(g[2]) && isnan(u[1]), "GLU of 3 and 2 rows: %g %g", g[0], u[1]);
    gu[0].rows = 2;
    gu[1].cols = 32;
    llm_matmul_multi(NULL, gu, 2, x, 1, ys, 0, w);
    CHECK(isnan(g[0]) && isnan(u[0]), "columns 64 and 32: %g %g", g[0], u[0]);
}

/* Decode and prefill paths give the same rows: one token at a time equals the
 * batch, up to summation order within each kernel. */
TEST(matmul_threads_agree) {
    const int n_rows = 100, n_cols = 512, n_tok = 40;
    uint32_t t = GGML_TYPE_Q4_0;
    float *w = malloc(sizeof(float) * n_rows * n_cols), *x = malloc(sizeof(float) * n_tok * n_cols);
    float *y1 = malloc(sizeof(float) * n_rows * n_tok), *y2 = malloc(sizeof(float) * n_rows * n_tok);
    uint8_t *qw = malloc(llm_ggml_row_size(t, n_cols) * n_rows);
    void *work = malloc(llm_matmul_work_size(t, n_cols, n_tok));
    llm_pool *p1 = llm_pool_new(1), *p2 = llm_pool_new(2);
    REQUIRE(w && x && y1 && y2 && qw && work && p1 && p2);
    fill_normal(w, n_rows * n_cols, 0.05f);
    fill_normal(x, n_tok * n_cols, 1.0f);
    llm_quantize(t, w, qw, n_rows, n_cols);
    llm_matmul(p1, t, qw, n_rows, n_cols, x, n_tok, y1, work);
    llm_matmul(p2, t, qw, n_rows, n_cols, x, n_tok, y2, work);
    CHECK(memcmp(y1, y2, sizeof(float) * n_rows * n_tok) == 0, "1 and 2 threads differ");
    free(w); free(x); free(y1); free(y2); free(qw); free(work);
    llm_pool_free(p1);
    llm_pool_free(p2);
}

/* ----------------------------------------------------- packed weights */

static const uint32_t packed_types[] = {GGML_TYPE_Q4_0, GGML_TYPE_Q8_0, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K};
#define N_PACKED (int)(sizeof packed_types / sizeof packed_types[0])

/* Random-byte weight rows with sane fp16 scales (every quant, scale and
 * min bit pattern), as in simd_vec_dot_random_blocks. */
static void random_blocks(uint32_t t, uint8_t *qw, int n_rows, int n) {
    size_t rs = llm_ggml_row_size(t, n), bs = llm_ggml_type_info(t)->type_size;
    for (size_t k = 0; k < rs * n_rows; k++) qw[k] = (uint8_t)(rnd_uniform() * 256);
    for (size_t b = 0; b < rs * n_rows / bs; b++) {
        uint8_t *blk = qw + b * bs;
        ggml_half d = llm_ggml_fp32_to_fp16((float)((rnd_uniform() < 0.5 ? -1 : 1) * ldexp(1 + rnd_uniform(), -10 + (int)(rnd_uniform() * 7))));
        ggml_half dm = llm_ggml_fp32_to_fp16((float)ldexp(1 + rnd_uniform(), -10 + (int)(rnd_uniform() * 7)));
        if (t == GGML_TYPE_Q6_K) memcpy(blk + offsetof(block_q6_K, d), &d, 2);
        else memcpy(blk, &d, 2);
        if (t == GGML_TYPE_Q4_K || t == GGML_TYPE_Q5_K) memcpy(blk + offsetof(block_q4_K, dmin), &dm, 2);
    }
}

/* The portable gemm over packed groups equals the reference vec_dot over
 * the GGUF rows bit for bit (same quants, same order of float sums), for
 * single-token stripes and 8-token tiles, partial groups and tiles, random
 * bytes and quantized data; and every SIMD level's packed gemm is within
 * the vec-dot bound (2e-5 of sum|w*a|) of it. So the layout, the pack
 * functions and the stripes are checked independently of the kernels. */
TEST(packed_gemm_matches_reference) {
    const int n_rows = 37;         /* 3 groups, the last with 5 rows */
    const int n_tok = 11;          /* a full 8-token tile and 3 more */
    float *x = malloc(sizeof(float) * 1024 * n_tok), *w = malloc(sizeof(float) * 1024 * n_rows);
    float *tw = malloc(sizeof(float) * 1024), *ta = malloc(sizeof(float) * 1024);
    float *ref = malloc(sizeof(float) * n_rows * n_tok), *got = malloc(sizeof(float) * n_rows * n_tok);
    uint8_t *qw = malloc(1024 * 2 * n_rows), *qa = malloc(1200 * n_tok);
    uint8_t *packed = NULL, *stripes = NULL;
    REQUIRE(x && w && tw && ta && ref && got && qw && qa);
    REQUIRE(posix_memalign((void **)&packed, 64, 1 << 20) == 0 && posix_memalign((void **)&stripes, 64, 1 << 20) == 0);
    const llm_kernel_table *kr = llm_kernels_get(LLM_SIMD_REF);
    for (int ti = 0; ti < N_PACKED; ti++) {
        uint32_t t = packed_types[ti];
        int bs = (int)llm_ggml_type_info(t)->blck_size;
        const int sizes[] = {bs == 32 ? 160 : 256, 1024};
        for (int si = 0; si < 2; si++)
            for (int rep = 0; rep < 2; rep++) {
                int n = sizes[si];
                size_t rs = llm_ggml_row_size(t, n), ars = llm_ggml_row_size(llm_vec_dot_type(t), n);
                if (rep == 0) {
                    fill_normal(w, (int64_t)n * n_rows, 0.05f);
                    llm_quantize(t, w, qw, n_rows, n);
                } else {
                    random_blocks(t, qw, n_rows, n);
                }
                fill_normal(x, (int64_t)n * n_tok, rep ? 20.0f : 1.0f);
                for (int k = 0; k < n; k += 37) x[k] = 0;     /* zeros and a tie */
                x[n + 5] = -x[n + 6];
                for (int k = 0; k < n_tok; k++) kr->act[llm_vec_dot_type(t)](x + (size_t)k * n, qa + k * ars, n);
                for (int r = 0; r < n_rows; r++)
                    for (int k = 0; k < n_tok; k++)
                        ref[k * n_rows + r] = llm_get_vec_dot(t, LLM_SIMD_REF)(n, qw + r * rs, qa + k * ars);
                size_t psz = llm_pack_size(t, n_rows, n);
                REQUIRE(psz > 0 && psz <= (1u << 20));
                llm_pack_rows(t, qw, rs, n_rows, n, 0, 16, packed);     /* two calls, as threads do */
                llm_pack_rows(t, qw, rs, n_rows, n, 16, n_rows, packed);
                llm_stripe_kind sk = llm_pack_stripe(t);
                for (int tt = 1; tt <= LLM_TOKEN_TILE; tt += LLM_TOKEN_TILE - 1) {
                    size_t tb = llm_stripe_bytes(sk, n, tt);
                    int tiles = (n_tok + tt - 1) / tt;
                    memset(stripes, 0, tb * tiles);
                    for (int k = 0; k < n_tok; k++) kr->stripe[sk](x + (size_t)k * n, stripes + (k / tt) * tb, n, tt, k % tt);
                    for (int lv = -1; lv <= (int)llm_simd_detect(); lv++) {
                        llm_pgemm_fn pg = lv < 0 ? llm_pgemm_ref(t) : llm_kernels_get((llm_simd)lv)->pgemm[t];
                        if (!pg) continue;
                        for (int i = 0; i < n_rows * n_tok; i++) got[i] = NAN;
                        for (int k = 0; k < n_tok; k += tt)
                            pg(n, packed, llm_pack_group_bytes(t, n), n_rows, stripes + (k / tt) * tb, tt, got + k * n_rows,
                               n_rows, n_tok - k < tt ? n_tok - k : tt);
                        int bad = 0;
                        for (int k = 0; k < n_tok; k++)
                            for (int r = 0; r < n_rows && bad < 3; r++) {
                                float a = got[k * n_rows + r], b = ref[k * n_rows + r];
                                double scale = lv < 0 ? 0 : abs_dot(t, qw + r * rs, qa + k * ars, n, tw, ta);
                                if (lv < 0 ? memcmp(&a, &b, 4) != 0 : !(fabs(a - b) <= 2e-5 * scale)) {
                                    bad++;
                                    CHECK(0, "%s %s n=%d rep=%d tt=%d row %d tok %d: %.9g vs vec_dot %.9g",
                                          lv < 0 ? "portable" : llm_simd_name((llm_simd)lv), llm_type_name(t), n, rep,
                                          tt, r, k, a, b);
                                }
                            }
                    }
                }
            }
    }
    free(x); free(w); free(tw); free(ta); free(ref); free(got); free(qw); free(qa); free(packed); free(stripes);
}

/* Every level's stripe converter writes the reference's bytes, into any
 * slot of a tile, with zero blocks, sign ties of the largest magnitude
 * and large values. */
TEST(stripe_conversion_matches_reference) {
    const int n = 1024, tt = LLM_TOKEN_TILE;
    float *x = malloc(sizeof(float) * n);
    uint8_t *a = NULL, *b = NULL;
    REQUIRE(x && posix_memalign((void **)&a, 64, 1 << 16) == 0 && posix_memalign((void **)&b, 64, 1 << 16) == 0);
    for (int rep = 0; rep < 3; rep++) {
        fill_normal(x, n, rep == 2 ? 1000.0f : 3.0f);
        for (int k = 0; k < 256; k++) x[256 + k] = 0;         /* an all-zero super-block */
        x[7] = 2.5f * 3.0f;
        x[600] = 50.f;
        x[601] = -50.f;                                       /* tie: the first one's sign wins */
        for (int sk = LLM_STRIPE_Q8_32; sk < LLM_STRIPE_COUNT; sk++) {
            size_t tb = llm_stripe_bytes((llm_stripe_kind)sk, n, tt);
            memset(a, 0, tb);
            llm_kernels_get(LLM_SIMD_REF)->stripe[sk](x, a, n, tt, rep + 2);
            for (int lv = 1; lv <= (int)llm_simd_detect(); lv++) {
                memset(b, 0, tb);
                llm_kernels_get((llm_simd)lv)->stripe[sk](x, b, n, tt, rep + 2);
                CHECK(memcmp(a, b, tb) == 0, "%s stripe kind %d differs", llm_simd_name((llm_simd)lv), sk);
            }
        }
    }
    free(x); free(a); free(b);
}

/* silu(g) * u of every level against the reference (libm expf): within
 * 4e-7 relative (a few ulp of the vector exp) over the range a SwiGLU
 * sees, including large magnitudes where exp over- or underflows. */
TEST(silu_mul_matches_reference) {
    const int n = 1003;
    float *g = malloc(sizeof(float) * n), *u = malloc(sizeof(float) * n), *r = malloc(sizeof(float) * n),
          *s = malloc(sizeof(float) * n);
    REQUIRE(g && u && r && s);
    fill_normal(g, n, 4.0f);
    fill_normal(u, n, 1.0f);
    g[0] = 100.f; g[1] = -100.f; g[2] = 0.f; g[3] = 88.f; g[4] = -88.f; g[5] = 1e-20f;
    memcpy(r, g, sizeof(float) * n);
    llm_kernels_get(LLM_SIMD_REF)->silu_mul(r, u, n);
    for (int lv = 1; lv <= (int)llm_simd_detect(); lv++) {
        memcpy(s, g, sizeof(float) * n);
        llm_kernels_get((llm_simd)lv)->silu_mul(s, u, n);
        int bad = 0;
        for (int i = 0; i < n && bad < 3; i++)
            if (!(fabs(s[i] - r[i]) <= 4e-7 * fabs(r[i]) + 1e-37)) {
                bad++;
                CHECK(0, "%s silu(%g) * %g = %.9g, reference %.9g", llm_simd_name((llm_simd)lv), g[i], u[i], s[i], r[i]);
            }
    }
    free(g); free(u); free(r); free(s);
}

/* The level's grouped F16 attention (G query heads over one key/value
 * head) against a double-precision reference with the same roundings of
 * its inputs and probabilities (q and K/V in F16, probabilities rounded to
 * F16 from the float softmax): every output within 1e-4 of sum |p * v|
 * (the softmax's exp and sum are float, the P.V sum float with one
 * rounding per key), for head sizes 64 and 128, 1..5 heads, 1..300 keys;
 * and the key list given twice (every key in another slot of its block of
 * 4, every probability halved, which F16 represents exactly) gives the same
 * output up to float rounding. */
TEST(grouped_attention_matches_reference) {
    const llm_kernel_table *k = llm_kernels_get(llm_simd_detect());
    if (!k->att_f16) SKIP("no grouped attention kernel at level %s", llm_simd_name(llm_simd_detect()));
    const int max_nk = 600, max_hd = 128, max_g = 5;
    ggml_half *K = malloc(2 * (size_t)max_nk * max_hd), *V = malloc(2 * (size_t)max_nk * max_hd);
    const ggml_half **kr = malloc(sizeof *kr * max_nk), **vr = malloc(sizeof *vr * max_nk);
    float *q = malloc(sizeof(float) * max_g * max_hd), *out = malloc(sizeof(float) * max_g * max_hd),
          *out2 = malloc(sizeof(float) * max_g * max_hd), *sc = malloc(sizeof(float) * max_g * max_nk);
    double *p = malloc(sizeof(double) * max_nk);
    REQUIRE(K && V && kr && vr && q && out && out2 && sc && p);
    const int nks[] = {1, 3, 5, 37, 300};
    for (int hdi = 0; hdi < 2; hdi++)
        for (int G = 1; G <= max_g; G++)
            for (int ni = 0; ni < 5; ni++) {
                int hd = hdi ? 128 : 64, nk = nks[ni];
                float scale = 1.0f / sqrtf((float)hd);
                for (int i = 0; i < nk * hd; i++) {
                    K[i] = llm_ggml_fp32_to_fp16(rnd_normal() * 2);
                    V[i] = llm_ggml_fp32_to_fp16(rnd_normal());
                }
                for (int i = 0; i < G * hd; i++) q[i] = llm_ggml_fp16_to_fp32(llm_ggml_fp32_to_fp16(rnd_normal()));
                for (int t = 0; t < nk; t++) {
                    kr[t] = K + (size_t)t * hd;
                    vr[t] = V + (size_t)t * hd;
                }
                k->att_f16(q, G, hd, kr, vr, nk, scale, sc, out);
                int bad = 0;
                for (int g = 0; g < G; g++) {
                    double mx = -1e300, sum = 0;
                    for (int t = 0; t < nk; t++) {
                        double d = 0;
                        for (int c = 0; c < hd; c++) d += (double)q[g * hd + c] * llm_ggml_fp16_to_fp32(K[t * hd + c]);
                        p[t] = d * scale;
                        if (p[t] > mx) mx = p[t];
                    }
                    for (int t = 0; t < nk; t++) sum += p[t] = exp(p[t] - mx);
                    for (int t = 0; t < nk; t++) p[t] = llm_ggml_fp16_to_fp32(llm_ggml_fp32_to_fp16((float)(p[t] / sum)));
                    for (int c = 0; c < hd && bad < 3; c++) {
                        double o = 0, oa = 0;
                        for (int t = 0; t < nk; t++) {
                            o += p[t] * llm_ggml_fp16_to_fp32(V[t * hd + c]);
                            oa += fabs(p[t] * llm_ggml_fp16_to_fp32(V[t * hd + c]));
                        }
                        if (!(fabs(out[g * hd + c] - o) <= 1e-4 * oa + 1e-7)) {
                            bad++;
                            CHECK(0, "hd %d G %d nk %d head %d dim %d: %.9g vs %.9g", hd, G, nk, g, c, out[g * hd + c], o);
                        }
                    }
                }
                if (nk <= 300 && 2 * nk <= max_nk) {
                    for (int t = 0; t < nk; t++) {
                        kr[nk + t] = kr[t];
                        vr[nk + t] = vr[t];
                    }
                    k->att_f16(q, G, hd, kr, vr, 2 * nk, scale, sc, out2);
                    double dmax = 0;
                    for (int i = 0; i < G * hd; i++) dmax = fmax(dmax, fabs(out2[i] - out[i]));
                    CHECK(dmax <= 2e-3, "hd %d G %d nk %d: doubled key list differs by %.3g", hd, G, nk, dmax);
                }
            }
    free(K); free(V); free(kr); free(vr); free(q); free(out); free(out2); free(sc); free(p);
}

/* llm_matmul_multi gives each matrix's own product (Q/K/V of different
 * heights, mixed types), and with GLU silu(gate) * up, the same as the
 * separate products then the silu; packed and GGUF rows alike. */
TEST(matmul_multi_matches_separate) {
    const int n_cols = 512, n_tok = 19;
    const uint32_t types[3] = {GGML_TYPE_Q4_K, GGML_TYPE_Q6_K, GGML_TYPE_Q8_0};
    const int rows[3] = {96, 40, 40};
    llm_pool *pool = llm_pool_new(2);
    float *x = malloc(sizeof(float) * n_cols * n_tok), *w = malloc(sizeof(float) * n_cols * 96);
    REQUIRE(pool && x && w);
    fill_normal(x, (int64_t)n_cols * n_tok, 1.0f);
    uint8_t *q[3], *pk[3];
    float *y[3], *ys[3];
    llm_mat m[3];
    size_t ws = 0;
    for (int i = 0; i < 3; i++) {
        size_t rs = llm_ggml_row_size(types[i], n_cols), z = llm_matmul_work_size(types[i], n_cols, n_tok);
        if (z > ws) ws = z;
        q[i] = malloc(rs * rows[i]);
        y[i] = malloc(sizeof(float) * rows[i] * n_tok);
        ys[i] = malloc(sizeof(float) * rows[i] * n_tok);
        REQUIRE(q[i] && y[i] && ys[i] && posix_memalign((void **)&pk[i], 64, llm_pack_size(types[i], rows[i], n_cols)) == 0);
        fill_normal(w, (int64_t)n_cols * rows[i], 0.05f);
        llm_quantize(types[i], w, q[i], rows[i], n_cols);
        llm_pack_rows(types[i], q[i], rs, rows[i], n_cols, 0, rows[i], pk[i]);
    }
    void *work = malloc(3 * ws);
    REQUIRE(work);
    for (int packed = 0; packed < 2; packed++) {
        for (int i = 0; i < 3; i++)
            m[i] = (llm_mat){.type = types[i], .rows = rows[i], .cols = n_cols, .data = q[i], .packed = packed ? pk[i] : NULL};
        for (int nt = 1; nt <= n_tok; nt += n_tok - 1) {
            for (int i = 0; i < 3; i++) llm_matmul_mat(pool, &m[i], x, nt, ys[i], work);
            llm_matmul_multi(pool, m, 3, x, nt, y, 0, work);
            for (int i = 0; i < 3; i++)
                CHECK(memcmp(y[i], ys[i], sizeof(float) * rows[i] * nt) == 0, "packed=%d nt=%d matrix %d differs", packed, nt, i);
            /* GLU over the two 40-row matrices */
            llm_matmul_multi(pool, m + 1, 2, x, nt, y + 1, LLM_MULTI_GLU, work);
            for (int k = 0; k < nt; k++) llm_silu_mul(ys[1] + k * 40, ys[2] + k * 40, 40);
            CHECK(memcmp(y[1], ys[1], sizeof(float) * 40 * nt) == 0, "packed=%d nt=%d GLU differs", packed, nt);
        }
    }
    for (int i = 0; i < 3; i++) { free(q[i]); free(pk[i]); free(y[i]); free(ys[i]); }
    free(x); free(w); free(work);
    llm_pool_free(pool);
}

/* --------------------------------------------------------------- pool */

typedef struct {
    _Atomic long hits[4];
    _Atomic long total;
} pool_probe;

static void pool_job(void *arg, int ith, int nth) {
    pool_probe *pr = arg;
    if (ith < 4) atomic_fetch_add(&pr->hits[ith], 1);
    atomic_fetch_add(&pr->total, nth);
}

TEST(pool_runs_many_jobs) {
    for (int nt = 1; nt <= 3; nt++) {
        llm_pool *p = llm_pool_new(nt);
        REQUIRE(p);
        CHECK_EQ_INT(llm_pool_size(p), nt);
        pool_probe pr;
        memset(&pr, 0, sizeof pr);
        const int runs = asan() ? 300 : 2000;
        for (int i = 0; i < runs; i++) llm_pool_run(p, pool_job, &pr);
        for (int i = 0; i < nt; i++) CHECK_EQ_INT(atomic_load(&pr.hits[i]), runs);
        for (int i = nt; i < 4; i++) CHECK_EQ_INT(atomic_load(&pr.hits[i]), 0);
        CHECK_EQ_INT(atomic_load(&pr.total), (long)runs * nt * nt);
        llm_pool_free(p);
    }
    llm_pool_free(NULL);
    CHECK_EQ_INT(llm_pool_size(NULL), 1);
}

/* Jobs separated by sleeps, so the workers go to sleep on the futex and
 * must be woken. */
TEST(pool_wakes_sleeping_workers) {
    llm_pool *p = llm_pool_new(2);
    REQUIRE(p);
    pool_probe pr;
    memset(&pr, 0, sizeof pr);
    for (int i = 0; i < 20; i++) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        llm_pool_run(p, pool_job, &pr);
    }
    CHECK_EQ_INT(atomic_load(&pr.hits[1]), 20);
    llm_pool_free(p);
}

TEST(simd_level_names) {
    CHECK_EQ_STR(llm_simd_name(LLM_SIMD_REF), "ref");
    CHECK_EQ_STR(llm_simd_name(LLM_SIMD_AVX512), "avx512");
    CHECK(llm_simd_active() <= llm_simd_detect());
    printf("  # detected %s, active %s\n", llm_simd_name(llm_simd_detect()), llm_simd_name(llm_simd_active()));
}

TEST_MAIN(RUN(q4_0_hand_block), RUN(q8_0_hand_block), RUN(q4_K_hand_block), RUN(q5_K_hand_block), RUN(q6_K_hand_block),
          RUN(q4_1_hand_block), RUN(q5_0_and_q5_1_hand_blocks), RUN(iq4_nl_and_iq4_xs_hand_blocks), RUN(q2_K_hand_block),
          RUN(q3_K_hand_block), RUN(q8_1_activation_sum),
          RUN(q8_K_activation_rule), RUN(q8_0_activation_rule), RUN(quantize_roundtrip_error),
          RUN(simd_vec_dot_matches_reference), RUN(simd_vec_dot_random_blocks), RUN(simd_activation_conversion_matches_reference),
          RUN(simd_f32_f16_helpers), RUN(packed_gemm_matches_reference), RUN(stripe_conversion_matches_reference),
          RUN(silu_mul_matches_reference), RUN(grouped_attention_matches_reference), RUN(matmul_multi_matches_separate), RUN(matmul_matches_naive), RUN(matmul_rejects_bad_shapes), RUN(matmul_threads_agree),
          RUN(pool_runs_many_jobs), RUN(pool_wakes_sleeping_workers), RUN(simd_level_names))
