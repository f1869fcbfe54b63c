/* ggml.c — ggml type traits and exact half-float conversions. */
#include "llm/ggml.h"
#include "llm/llm.h"

static const ggml_type_traits traits[GGML_TYPE_COUNT] = {
    [GGML_TYPE_F32] = {"f32", 1, 4},
    [GGML_TYPE_F16] = {"f16", 1, 2},
    [GGML_TYPE_Q4_0] = {"q4_0", 32, 18},
    [GGML_TYPE_Q4_1] = {"q4_1", 32, 20},
    [GGML_TYPE_Q5_0] = {"q5_0", 32, 22},
    [GGML_TYPE_Q5_1] = {"q5_1", 32, 24},
    [GGML_TYPE_Q8_0] = {"q8_0", 32, 34},
    [GGML_TYPE_Q8_1] = {"q8_1", 32, 36},
    [GGML_TYPE_Q2_K] = {"q2_K", 256, 84},
    [GGML_TYPE_Q3_K] = {"q3_K", 256, 110},
    [GGML_TYPE_Q4_K] = {"q4_K", 256, 144},
    [GGML_TYPE_Q5_K] = {"q5_K", 256, 176},
    [GGML_TYPE_Q6_K] = {"q6_K", 256, 210},
    [GGML_TYPE_Q8_K] = {"q8_K", 256, 292},
    [GGML_TYPE_IQ2_XXS] = {"iq2_xxs", 256, 66},
    [GGML_TYPE_IQ2_XS] = {"iq2_xs", 256, 74},
    [GGML_TYPE_IQ3_XXS] = {"iq3_xxs", 256, 98},
    [GGML_TYPE_IQ1_S] = {"iq1_s", 256, 50},
    [GGML_TYPE_IQ4_NL] = {"iq4_nl", 32, 18},
    [GGML_TYPE_IQ3_S] = {"iq3_s", 256, 110},
    [GGML_TYPE_IQ2_S] = {"iq2_s", 256, 82},
    [GGML_TYPE_IQ4_XS] = {"iq4_xs", 256, 136},
    [GGML_TYPE_I8] = {"i8", 1, 1},
    [GGML_TYPE_I16] = {"i16", 1, 2},
    [GGML_TYPE_I32] = {"i32", 1, 4},
    [GGML_TYPE_I64] = {"i64", 1, 8},
    [GGML_TYPE_F64] = {"f64", 1, 8},
    [GGML_TYPE_IQ1_M] = {"iq1_m", 256, 56},
    [GGML_TYPE_BF16] = {"bf16", 1, 2},
    [GGML_TYPE_TQ1_0] = {"tq1_0", 256, 54},
    [GGML_TYPE_TQ2_0] = {"tq2_0", 256, 66},
    [GGML_TYPE_MXFP4] = {"mxfp4", 32, 17},
};

const ggml_type_traits *llm_ggml_type_info(uint32_t t) {
    if (t >= GGML_TYPE_COUNT || !traits[t].name) return NULL;
    return &traits[t];
}

const char *llm_type_name(uint32_t t) {
    const ggml_type_traits *tr = llm_ggml_type_info(t);
    return tr ? tr->name : "unknown";
}

size_t llm_ggml_row_size(uint32_t t, uint64_t n) {
    const ggml_type_traits *tr = llm_ggml_type_info(t);
    if (!tr || n % tr->blck_size) return 0;
    return (size_t)(n / tr->blck_size) * tr->type_size;
}

/* binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
float llm_ggml_fp16_to_fp32(ggml_half h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000 | (man << 13);            /* inf / NaN */
    } else if (exp != 0) {
        u = sign | ((exp + 112) << 23) | (man << 13);   /* normal: 127 - 15 = 112 */
    } else if (man == 0) {
        u = sign;                                       /* zero */
    } else {
        /* subnormal: normalise the mantissa */
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        u = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

ggml_half llm_ggml_fp32_to_fp16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    uint32_t abs = u & 0x7fffffff;
    if (abs > 0x7f800000) return (ggml_half)(sign | 0x7e00 | ((abs >> 13) & 0x3ff));  /* NaN */
    if (abs >= 0x477ff000) return (ggml_half)(sign | 0x7c00);  /* rounds to >= 65520: inf */
    if (abs < 0x38800000) {
        /* result is subnormal (or zero): value / 2^-24, rounded to nearest even */
        if (abs < 0x33000000) return (ggml_half)sign;          /* < 2^-25: zero */
        uint32_t e = abs >> 23;
        uint32_t m = (abs & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;                               /* 14..24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (ggml_half)(sign | q);
    }
    /* normal: rebias exponent, round mantissa 23 -> 10 bits to nearest even */
    uint32_t r = abs + 0xfff + ((abs >> 13) & 1);
    r -= 0x38000000;            /* (127 - 15) << 23 */
    return (ggml_half)(sign | (r >> 13));
}
