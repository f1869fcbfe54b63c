/* ggml.h — ggml tensor type ids, their block sizes, and the quant block
 * layouts llama.cpp writes into GGUF files (internal to llm/). */
#ifndef LLM_GGML_H
#define LLM_GGML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Type ids as stored in GGUF tensor infos. Gaps are ids llama.cpp retired. */
typedef enum {
    GGML_TYPE_F32 = 0,
    GGML_TYPE_F16 = 1,
    GGML_TYPE_Q4_0 = 2,
    GGML_TYPE_Q4_1 = 3,
    GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7,
    GGML_TYPE_Q8_0 = 8,
    GGML_TYPE_Q8_1 = 9,
    GGML_TYPE_Q2_K = 10,
    GGML_TYPE_Q3_K = 11,
    GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13,
    GGML_TYPE_Q6_K = 14,
    GGML_TYPE_Q8_K = 15,
    GGML_TYPE_IQ2_XXS = 16,
    GGML_TYPE_IQ2_XS = 17,
    GGML_TYPE_IQ3_XXS = 18,
    GGML_TYPE_IQ1_S = 19,
    GGML_TYPE_IQ4_NL = 20,
    GGML_TYPE_IQ3_S = 21,
    GGML_TYPE_IQ2_S = 22,
    GGML_TYPE_IQ4_XS = 23,
    GGML_TYPE_I8 = 24,
    GGML_TYPE_I16 = 25,
    GGML_TYPE_I32 = 26,
    GGML_TYPE_I64 = 27,
    GGML_TYPE_F64 = 28,
    GGML_TYPE_IQ1_M = 29,
    GGML_TYPE_BF16 = 30,
    GGML_TYPE_TQ1_0 = 34,
    GGML_TYPE_TQ2_0 = 35,
    GGML_TYPE_MXFP4 = 39,
    GGML_TYPE_COUNT = 40
} ggml_type;

typedef struct {
    const char *name;       /* NULL for ids that are not (or no longer) types */
    uint32_t blck_size;     /* elements per block */
    uint32_t type_size;     /* bytes per block */
} ggml_type_traits;

/* Traits of type id t, or NULL when t is not a known type. */
const ggml_type_traits *llm_ggml_type_info(uint32_t t);
/* llm_type_name (llm.h) names a type id. */
/* Bytes of a row of n elements, or 0 when n is not a multiple of the block. */
size_t llm_ggml_row_size(uint32_t t, uint64_t n);

/* ------------------------------------------------------------ half floats */
typedef uint16_t ggml_half;     /* IEEE 754 binary16 bits */
typedef uint16_t ggml_bf16;     /* bfloat16 bits */

/* Exact conversions (round to nearest even on the way down; NaN kept). */
float llm_ggml_fp16_to_fp32(ggml_half h);
ggml_half llm_ggml_fp32_to_fp16(float f);

static inline float llm_ggml_bf16_to_fp32(ggml_bf16 h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* Round to nearest even, NaN stays NaN — as llama.cpp converts. */
static inline ggml_bf16 llm_ggml_fp32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (ggml_bf16)((u >> 16) | 64);
    return (ggml_bf16)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

/* ------------------------------------------------------------ quant blocks */
#define QK4_0 32
typedef struct {
    ggml_half d;                /* scale */
    uint8_t qs[QK4_0 / 2];      /* nibbles: low = element j, high = element j+16; value = (q - 8) * d */
} block_q4_0;
_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 size");

#define QK8_0 32
typedef struct {
    ggml_half d;                /* scale */
    int8_t qs[QK8_0];           /* value = q * d */
} block_q8_0;
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 size");

/* Q4_0 plus a min: value = q * d + m. */
#define QK4_1 32
typedef struct {
    ggml_half d;
    ggml_half m;
    uint8_t qs[QK4_1 / 2];      /* as Q4_0: low nibble = element j, high = element j+16 */
} block_q4_1;
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 size");

/* 5-bit quants: the nibbles as Q4_0, bit j of the little-endian word qh the
 * fifth bit of element j; value = (q - 16) * d. */
#define QK5_0 32
typedef struct {
    ggml_half d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
} block_q5_0;
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 size");

/* Q5_0's quants with a min: value = q * d + m. */
#define QK5_1 32
typedef struct {
    ggml_half d;
    ggml_half m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
} block_q5_1;
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 size");

/* Q8_0 plus s = d * sum(qs) (fp16): the activations of Q4_1 / Q5_1 weights,
 * so that their min folds in as m * s. */
#define QK8_1 32
typedef struct {
    ggml_half d;
    ggml_half s;
    int8_t qs[QK8_1];
} block_q8_1;
_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1 size");

/* Non-linear 4-bit: the nibble indexes a fixed table of 16 int8 levels
 * (llm_iq4nl_values); value = d * table[q]. Nibble order as Q4_0. */
#define QK4_NL 32
typedef struct {
    ggml_half d;
    uint8_t qs[QK4_NL / 2];
} block_iq4_nl;
_Static_assert(sizeof(block_iq4_nl) == 18, "block_iq4_nl size");

#define QK_K 256
#define K_SCALE_SIZE 12
/* 8 sub-blocks of 32; 6-bit scales and mins packed in scales[12];
 * value = d * sc * q - dmin * m. */
typedef struct {
    ggml_half d;
    ggml_half dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
} block_q4_K;
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K size");

/* Q4_K with a fifth bit: sub-block j of 8 (32 elements) takes bit j of
 * qh[l] for its element l; value = d * sc * q - dmin * m, q in 0..31. */
typedef struct {
    ggml_half d;
    ggml_half dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K size");

/* 16 sub-blocks of 16; 2-bit quants, per sub-block a 4-bit scale (low
 * nibble of scales[j]) and 4-bit min (high nibble); value = d * sc * q -
 * dmin * m. Per 128 elements, 32 bytes of qs hold 4 crumbs each: element
 * 32 * s + l (s = 0..3, l < 32) is bits 2s..2s+1 of qs[l]. */
typedef struct {
    uint8_t scales[QK_K / 16];
    uint8_t qs[QK_K / 4];
    ggml_half d;
    ggml_half dmin;
} block_q2_K;
_Static_assert(sizeof(block_q2_K) == 84, "block_q2_K size");

/* 16 sub-blocks of 16; 3-bit quants: the low 2 bits laid out as Q2_K's,
 * the third bit in hmask (element 32 * k + l takes bit k of hmask[l], k =
 * 0..7); q = low | 4 * high - 4 in -4..3; 6-bit scales (stored + 32) packed
 * in 12 bytes; value = d * (sc - 32) * q. */
typedef struct {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[12];
    ggml_half d;
} block_q3_K;
_Static_assert(sizeof(block_q3_K) == 110, "block_q3_K size");

/* IQ4_NL's table over 8 sub-blocks of 32 with 6-bit scales (low 4 bits in
 * scales_l nibbles, high 2 in scales_h); value = d * (ls - 32) * table[q]. */
typedef struct {
    ggml_half d;
    uint16_t scales_h;
    uint8_t scales_l[QK_K / 64];
    uint8_t qs[QK_K / 2];       /* per 32: 16 bytes, low nibble element j, high j+16 */
} block_iq4_xs;
_Static_assert(sizeof(block_iq4_xs) == 136, "block_iq4_xs size");

/* 16 sub-blocks of 16; 6-bit quants (low 4 bits in ql, high 2 in qh), int8
 * scales; value = d * scales[i] * (q - 32). */
typedef struct {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    ggml_half d;
} block_q6_K;
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K size");

/* Activation quantization for the K-quant dot products. */
typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];   /* sums of qs in groups of 16 */
} block_q8_K;
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K size");

#endif
