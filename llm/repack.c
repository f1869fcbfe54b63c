/* repack.c — packed weight layouts (row groups interleaved for the VNNI
 * kernels), their pack functions, the activation stripes, and portable
 * reference gemms over packed groups that the SIMD kernels are tested
 * against.
 *
 * Why: a VNNI dot product (vpdpbusd) multiplies 64 unsigned weight bytes by
 * 64 signed activation bytes and sums each 4 into 16 int32 lanes. If the 16
 * lanes are 16 different rows, and the 4 activation bytes are the same for
 * all of them (a broadcast straight from memory), one instruction advances
 * 16 row sums by 4 elements, the sums of a whole block finish in their
 * lanes, and the block's scales are applied once per 16 rows with one
 * conversion and one fma. The GGUF layout (a row's blocks contiguous) needs
 * a horizontal sum and per-row scale work instead. So rows are interleaved
 * 4 bytes at a time in groups of LLM_PACK_ROWS = 16, once, at load.
 *
 * Layouts (per group of 16 rows; r = row in group, c = byte 0..3; "q" parts
 * first, then scales; all offsets multiples of 64):
 *
 *   Q4_0 (nb = n/32 blocks): q[b][i][r][c] (nb x 256 B) = the row's block b
 *     byte 4i+c as in the file (low nibble element 4i+c, high 16+4i+c);
 *     then d[b][r] fp16 (nb x 32 B); padded to 64.
 *   Q8_0: q[b][k][r][c] (nb x 512 B) = quant 4k+c of block b, xor 0x80
 *     (stored as unsigned w + 128); then d[b][r] fp16; padded to 64.
 *   Q4_K, per super-block (2368 B): q[j][i][r][c] (2048 B) for sub-block j
 *     (32 elements): low nibble element 4i+c, high nibble 16+4i+c; sc[j][r]
 *     (128 B, 6-bit scales); m[p][r][2] (128 B, mins of sub-blocks 2p and
 *     2p+1 side by side, for an int16 pair product); d[r], dmin[r] fp16.
 *   Q5_K, per super-block (2880 B): q as Q4_K (2048 B); then h[j][r][c]
 *     (512 B), the fifth bits: bit i of byte (j, r, c) for element 4i+c,
 *     bit 4+i for element 16+4i+c; then sc, m, d, dmin as Q4_K.
 *   Q6_K, per super-block (3392 B): for sub-block s (16 elements) three
 *     64-byte vectors [s][N01, N23, H][r][c]: N01 = lo4(e=c) | lo4(4+c) << 4,
 *     N23 = lo4(8+c) | lo4(12+c) << 4, H = hi2(c) | hi2(4+c) << 2 |
 *     hi2(8+c) << 4 | hi2(12+c) << 6 (3072 B); sc[s][r] int8 (256 B);
 *     d[r] fp16 (32 B); 32 B padding.
 *
 * The sizes equal the GGUF bytes (Q4_0, Q8_0), +2.8% (Q4_K) and +2.3%
 * (Q5_K: the 6-bit scales unpacked), +1% (Q6_K: padding for alignment). */
#include <stdlib.h>

#include "llm/kernels_internal.h"

#define G LLM_PACK_ROWS

/* ------------------------------------------------------------ sizes */

static size_t q4_0_group(int n) { return llm_round64((size_t)(n / 32) * (256 + 32)); }
static size_t q8_0_group(int n) { return llm_round64((size_t)(n / 32) * (512 + 32)); }
#define Q4K_SB 2368
#define Q5K_SB 2880
#define Q6K_SB 3392
static size_t q4_K_group(int n) { return (size_t)(n / QK_K) * Q4K_SB; }
static size_t q5_K_group(int n) { return (size_t)(n / QK_K) * Q5K_SB; }
static size_t q6_K_group(int n) { return (size_t)(n / QK_K) * Q6K_SB; }

size_t llm_pack_group_bytes(uint32_t wtype, int n_cols) {
    if (n_cols <= 0 || llm_ggml_row_size(wtype, (uint64_t)n_cols) == 0) return 0;
    switch (wtype) {
    case GGML_TYPE_Q4_0: return q4_0_group(n_cols);
    case GGML_TYPE_Q8_0: return q8_0_group(n_cols);
    case GGML_TYPE_Q4_K: return q4_K_group(n_cols);
    case GGML_TYPE_Q5_K: return q5_K_group(n_cols);
    case GGML_TYPE_Q6_K: return q6_K_group(n_cols);
    default: return 0;
    }
}

llm_stripe_kind llm_pack_stripe(uint32_t wtype) {
    switch (wtype) {
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q8_0: return LLM_STRIPE_Q8_32;
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K: return LLM_STRIPE_Q8_256;
    default: return LLM_STRIPE_NONE;
    }
}

size_t llm_stripe_bytes(llm_stripe_kind k, int n, int tt) {
    switch (k) {
    case LLM_STRIPE_Q8_32: return llm_s32_bytes(n, tt);
    case LLM_STRIPE_Q8_256: return llm_s256_bytes(n, tt);
    default: return 0;
    }
}

bool llm_pack_available(uint32_t wtype) {
    return wtype < GGML_TYPE_COUNT && llm_kernels_active()->pgemm[wtype] != NULL &&
           llm_pack_stripe(wtype) != LLM_STRIPE_NONE;
}

size_t llm_pack_size(uint32_t wtype, int n_rows, int n_cols) {
    size_t g = llm_pack_group_bytes(wtype, n_cols);
    if (!g || n_rows <= 0) return 0;
    return (size_t)((n_rows + G - 1) / G) * g;
}

/* ------------------------------------------------------------- packing
 * Each packs one group from up to 16 GGUF rows (nr valid) into a group the
 * caller zeroed (missing rows stay zero: scale 0, they add nothing). The
 * quants of a row's block are first expanded to one byte per element, then
 * interleaved, so the per-element work is plain array indexing. */

static void pack_q4_0(const uint8_t *W, size_t ldw, int nr, int n, uint8_t *g) {
    const int nb = n / 32;
    ggml_half *d = (ggml_half *)(g + (size_t)nb * 256);
    for (int r = 0; r < nr; r++) {
        const block_q4_0 *x = (const block_q4_0 *)(W + (size_t)r * ldw);
        for (int b = 0; b < nb; b++) {
            d[b * G + r] = x[b].d;
            for (int i = 0; i < 4; i++) memcpy(g + ((size_t)b * 4 + i) * 64 + r * 4, x[b].qs + 4 * i, 4);
        }
    }
}

static void pack_q8_0(const uint8_t *W, size_t ldw, int nr, int n, uint8_t *g) {
    const int nb = n / 32;
    ggml_half *d = (ggml_half *)(g + (size_t)nb * 512);
    for (int r = 0; r < nr; r++) {
        const block_q8_0 *x = (const block_q8_0 *)(W + (size_t)r * ldw);
        for (int b = 0; b < nb; b++) {
            d[b * G + r] = x[b].d;
            for (int k = 0; k < 8; k++) {
                uint8_t *o = g + ((size_t)b * 8 + k) * 64 + r * 4;
                for (int c = 0; c < 4; c++) o[c] = (uint8_t)((uint8_t)x[b].qs[4 * k + c] ^ 0x80);
            }
        }
    }
}

static inline uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Sub-block j of a Q4_K/Q5_K super-block's nibbles (qs: per 64 elements,
 * 32 bytes whose low nibbles are the first 32 and high nibbles the next
 * 32) as 4 words per row: word i holds elements 4i..4i+3 in its low
 * nibbles and 16+4i.. in its high nibbles, 4 bytes at a time. */
static void put_nibbles(uint8_t *q, int r, const uint8_t *qs) {
    for (int j = 0; j < 8; j++) {
        const uint8_t *src = qs + 32 * (j / 2);
        int sh = 4 * (j % 2);
        for (int i = 0; i < 4; i++) {
            uint32_t lo = (rd32(src + 4 * i) >> sh) & 0x0F0F0F0Fu, hi = (rd32(src + 16 + 4 * i) >> sh) & 0x0F0F0F0Fu;
            uint32_t w = lo | hi << 4;
            memcpy(q + ((size_t)j * 4 + i) * 64 + r * 4, &w, 4);
        }
    }
}

static void put_scales_mins(uint8_t *sc, uint8_t *m, int r, const uint8_t *scales) {
    for (int j = 0; j < 8; j++) {
        uint8_t s, mm;
        llm_q4k_scale_min(j, scales, &s, &mm);
        sc[j * G + r] = s;
        m[(j / 2) * 2 * G + r * 2 + (j % 2)] = mm;
    }
}

static void pack_q4_K(const uint8_t *W, size_t ldw, int nr, int n, uint8_t *g) {
    const int nsb = n / QK_K;
    for (int r = 0; r < nr; r++)
        for (int sb = 0; sb < nsb; sb++) {
            const block_q4_K *x = (const block_q4_K *)(W + (size_t)r * ldw) + sb;
            uint8_t *o = g + (size_t)sb * Q4K_SB;
            ((ggml_half *)(o + 2304))[r] = x->d;
            ((ggml_half *)(o + 2336))[r] = x->dmin;
            put_scales_mins(o + 2048, o + 2176, r, x->scales);
            put_nibbles(o, r, x->qs);
        }
}

static void pack_q5_K(const uint8_t *W, size_t ldw, int nr, int n, uint8_t *g) {
    const int nsb = n / QK_K;
    for (int r = 0; r < nr; r++)
        for (int sb = 0; sb < nsb; sb++) {
            const block_q5_K *x = (const block_q5_K *)(W + (size_t)r * ldw) + sb;
            uint8_t *o = g + (size_t)sb * Q5K_SB;
            ((ggml_half *)(o + 2816))[r] = x->d;
            ((ggml_half *)(o + 2848))[r] = x->dmin;
            put_scales_mins(o + 2560, o + 2688, r, x->scales);
            put_nibbles(o, r, x->qs);
            /* fifth bits: element l of sub-block j is bit j of qh[l]; 4
             * bytes (c = 0..3) at a time */
            for (int j = 0; j < 8; j++) {
                uint32_t w = 0;
                for (int i = 0; i < 4; i++) {
                    w |= ((rd32(x->qh + 4 * i) >> j) & 0x01010101u) << i;
                    w |= ((rd32(x->qh + 16 + 4 * i) >> j) & 0x01010101u) << (4 + i);
                }
                memcpy(o + 2048 + (size_t)j * 64 + r * 4, &w, 4);
            }
        }
}

/* Q6_K: for sub-block s (16 elements: 4 k-steps t of 4), the low nibbles
 * of k-steps 0/1 and 2/3 and the 2-bit highs of all four, 4 bytes (one per
 * element of the k-step) at a time. Element e of a super-block lives in
 * half h = e / 128 at l = e % 32, quarter e % 128 / 32: its low 4 bits are
 * the low (quarters 0, 1) or high (2, 3) nibble of ql[64h + l] (quarters
 * 0, 2) or ql[64h + 32 + l] (1, 3), its high 2 bits bits 2q..2q+1 of
 * qh[32h + l]. */
static inline uint32_t q6k_lo4(const block_q6_K *x, int e) {
    int h = e / 128, l = e % 32, quarter = (e % 128) / 32;
    uint32_t v = rd32(x->ql + 64 * h + (quarter & 1) * 32 + l);
    return (quarter >= 2 ? v >> 4 : v) & 0x0F0F0F0Fu;
}

static inline uint32_t q6k_hi2(const block_q6_K *x, int e) {
    int h = e / 128, l = e % 32, quarter = (e % 128) / 32;
    return (rd32(x->qh + 32 * h + l) >> (2 * quarter)) & 0x03030303u;
}

static void pack_q6_K(const uint8_t *W, size_t ldw, int nr, int n, uint8_t *g) {
    const int nsb = n / QK_K;
    for (int r = 0; r < nr; r++)
        for (int sb = 0; sb < nsb; sb++) {
            const block_q6_K *x = (const block_q6_K *)(W + (size_t)r * ldw) + sb;
            uint8_t *o = g + (size_t)sb * Q6K_SB;
            ((ggml_half *)(o + 3328))[r] = x->d;
            for (int s = 0; s < 16; s++) {
                o[3072 + s * G + r] = (uint8_t)x->scales[s];
                int e = 16 * s;     /* 4 consecutive elements never straddle a quarter */
                uint32_t n01 = q6k_lo4(x, e) | q6k_lo4(x, e + 4) << 4;
                uint32_t n23 = q6k_lo4(x, e + 8) | q6k_lo4(x, e + 12) << 4;
                uint32_t h = q6k_hi2(x, e) | q6k_hi2(x, e + 4) << 2 | q6k_hi2(x, e + 8) << 4 | q6k_hi2(x, e + 12) << 6;
                uint8_t *p = o + (size_t)s * 192 + r * 4;
                memcpy(p, &n01, 4);
                memcpy(p + 64, &n23, 4);
                memcpy(p + 128, &h, 4);
            }
        }
}

void llm_pack_rows(uint32_t wtype, const void *W, size_t ldw, int n_rows, int n_cols, int r0, int r1, void *dst) {
    size_t gb = llm_pack_group_bytes(wtype, n_cols);
    void (*pack)(const uint8_t *, size_t, int, int, uint8_t *) = NULL;
    switch (wtype) {
    case GGML_TYPE_Q4_0: pack = pack_q4_0; break;
    case GGML_TYPE_Q8_0: pack = pack_q8_0; break;
    case GGML_TYPE_Q4_K: pack = pack_q4_K; break;
    case GGML_TYPE_Q5_K: pack = pack_q5_K; break;
    case GGML_TYPE_Q6_K: pack = pack_q6_K; break;
    default: return;
    }
    if (r1 > n_rows) r1 = n_rows;
    for (int r = r0; r < r1; r += G) {
        int nr = n_rows - r < G ? n_rows - r : G;
        uint8_t *g = (uint8_t *)dst + (size_t)(r / G) * gb;
        memset(g, 0, gb);
        pack((const uint8_t *)W + (size_t)r * ldw, ldw, nr, n_cols, g);
    }
}

/* ------------------------------------------------------------- stripes
 * Built from the reference vec-dot converters block by block, so a stripe
 * holds exactly the quants and scales llm_quantize_act would give. */

void llm_stripe_q8_32_ref(const float *x, void *dst, int n, int tt, int slot) {
    uint8_t *base = dst;
    int8_t *q = (int8_t *)base;
    float *d = (float *)(base + llm_s32_d(n, tt));
    int32_t *ns = (int32_t *)(base + llm_s32_ns(n, tt));
    for (int b = 0; b < n / 32; b++) {
        block_q8_0 blk;
        llm_quantize_row_q8_0_ref(x + 32 * b, &blk, 32);
        int s = 0;
        for (int j = 0; j < 32; j++) {
            q[((size_t)b * tt + slot) * 32 + j] = blk.qs[j];
            s += blk.qs[j];
        }
        d[(size_t)b * tt + slot] = llm_ggml_fp16_to_fp32(blk.d);
        ns[(size_t)b * tt + slot] = -s;
    }
}

void llm_stripe_q8_256_ref(const float *x, void *dst, int n, int tt, int slot) {
    uint8_t *base = dst;
    int8_t *q = (int8_t *)base;
    float *d = (float *)(base + llm_s256_d(n, tt));
    int32_t *ns16 = (int32_t *)(base + llm_s256_ns16(n, tt));
    int16_t *b32 = (int16_t *)(base + llm_s256_b32(n, tt));
    for (int sb = 0; sb < n / QK_K; sb++) {
        block_q8_K blk;
        llm_quantize_row_q8_K_ref(x + QK_K * sb, &blk, QK_K);
        memcpy(q + ((size_t)sb * tt + slot) * QK_K, blk.qs, QK_K);
        d[(size_t)sb * tt + slot] = blk.d;
        for (int j = 0; j < 16; j++) ns16[((size_t)sb * 16 + j) * tt + slot] = -blk.bsums[j];
        for (int j = 0; j < 8; j++)
            b32[(((size_t)sb * 4 + j / 2) * tt + slot) * 2 + j % 2] = (int16_t)(blk.bsums[2 * j] + blk.bsums[2 * j + 1]);
    }
}

/* ----------------------------------------- reference gemms over groups
 * Each (row, token) is computed in the order of the reference vec_dot of
 * kernels_ref.c over the same quants, so the two agree bit for bit; the
 * SIMD kernels are tested against these. */

static void pgemm_q4_0_ref(int n, const void *groups, size_t gb, int nr, const void *A, int tt, float *Y,
                           size_t ldy, int nt) {
    const int nb = n / 32;
    const int8_t *a = A;
    const float *da = (const float *)((const uint8_t *)A + llm_s32_d(n, tt));
    for (int r = 0; r < nr; r++) {
        const uint8_t *g = (const uint8_t *)groups + (size_t)(r / G) * gb;
        const ggml_half *d = (const ggml_half *)(g + (size_t)nb * 256);
        int rr = r % G;
        for (int t = 0; t < nt; t++) {
            float sum = 0;
            for (int b = 0; b < nb; b++) {
                const int8_t *ab = a + ((size_t)b * tt + t) * 32;
                int isum = 0;
                for (int i = 0; i < 4; i++)
                    for (int c = 0; c < 4; c++) {
                        int byte = g[((size_t)b * 4 + i) * 64 + rr * 4 + c];
                        isum += ((byte & 0xF) - 8) * ab[4 * i + c];
                        isum += ((byte >> 4) - 8) * ab[16 + 4 * i + c];
                    }
                sum += (float)isum * (llm_ggml_fp16_to_fp32(d[b * G + rr]) * da[(size_t)b * tt + t]);
            }
            Y[(size_t)t * ldy + r] = sum;
        }
    }
}

static void pgemm_q8_0_ref(int n, const void *groups, size_t gb, int nr, const void *A, int tt, float *Y,
                           size_t ldy, int nt) {
    const int nb = n / 32;
    const int8_t *a = A;
    const float *da = (const float *)((const uint8_t *)A + llm_s32_d(n, tt));
    for (int r = 0; r < nr; r++) {
        const uint8_t *g = (const uint8_t *)groups + (size_t)(r / G) * gb;
        const ggml_half *d = (const ggml_half *)(g + (size_t)nb * 512);
        int rr = r % G;
        for (int t = 0; t < nt; t++) {
            float sum = 0;
            for (int b = 0; b < nb; b++) {
                const int8_t *ab = a + ((size_t)b * tt + t) * 32;
                int isum = 0;
                for (int k = 0; k < 8; k++)
                    for (int c = 0; c < 4; c++)
                        isum += ((int)g[((size_t)b * 8 + k) * 64 + rr * 4 + c] - 128) * ab[4 * k + c];
                sum += (float)isum * (llm_ggml_fp16_to_fp32(d[b * G + rr]) * da[(size_t)b * tt + t]);
            }
            Y[(size_t)t * ldy + r] = sum;
        }
    }
}

static void pgemm_q4_K_ref(int n, const void *groups, size_t gb, int nr, const void *A, int tt, float *Y,
                           size_t ldy, int nt) {
    const int nsb = n / QK_K;
    const int8_t *a = A;
    const float *da = (const float *)((const uint8_t *)A + llm_s256_d(n, tt));
    const int16_t *b32 = (const int16_t *)((const uint8_t *)A + llm_s256_b32(n, tt));
    for (int r = 0; r < nr; r++) {
        const uint8_t *g = (const uint8_t *)groups + (size_t)(r / G) * gb;
        int rr = r % G;
        for (int t = 0; t < nt; t++) {
            float sum = 0;
            for (int sb = 0; sb < nsb; sb++) {
                const uint8_t *o = g + (size_t)sb * Q4K_SB;
                const int8_t *as = a + ((size_t)sb * tt + t) * QK_K;
                int sumi = 0, summ = 0;
                for (int j = 0; j < 8; j++) {
                    int sj = 0;
                    for (int i = 0; i < 4; i++)
                        for (int c = 0; c < 4; c++) {
                            int byte = o[((size_t)j * 4 + i) * 64 + rr * 4 + c];
                            sj += (byte & 0xF) * as[32 * j + 4 * i + c];
                            sj += (byte >> 4) * as[32 * j + 16 + 4 * i + c];
                        }
                    sumi += o[2048 + j * G + rr] * sj;
                    summ += o[2176 + (j / 2) * 2 * G + rr * 2 + (j % 2)] *
                            b32[(((size_t)sb * 4 + j / 2) * tt + t) * 2 + j % 2];
                }
                float dsa = da[(size_t)sb * tt + t];
                float d = llm_ggml_fp16_to_fp32(((const ggml_half *)(o + 2304))[rr]) * dsa;
                float dmin = llm_ggml_fp16_to_fp32(((const ggml_half *)(o + 2336))[rr]) * dsa;
                sum += d * (float)sumi - dmin * (float)summ;
            }
            Y[(size_t)t * ldy + r] = sum;
        }
    }
}

static void pgemm_q5_K_ref(int n, const void *groups, size_t gb, int nr, const void *A, int tt, float *Y,
                           size_t ldy, int nt) {
    const int nsb = n / QK_K;
    const int8_t *a = A;
    const float *da = (const float *)((const uint8_t *)A + llm_s256_d(n, tt));
    const int16_t *b32 = (const int16_t *)((const uint8_t *)A + llm_s256_b32(n, tt));
    for (int r = 0; r < nr; r++) {
        const uint8_t *g = (const uint8_t *)groups + (size_t)(r / G) * gb;
        int rr = r % G;
        for (int t = 0; t < nt; t++) {
            float sum = 0;
            for (int sb = 0; sb < nsb; sb++) {
                const uint8_t *o = g + (size_t)sb * Q5K_SB;
                const int8_t *as = a + ((size_t)sb * tt + t) * QK_K;
                int sumi = 0, summ = 0;
                for (int j = 0; j < 8; j++) {
                    int sj = 0;
                    for (int i = 0; i < 4; i++)
                        for (int c = 0; c < 4; c++) {
                            int byte = o[((size_t)j * 4 + i) * 64 + rr * 4 + c];
                            int hb = o[2048 + (size_t)j * 64 + rr * 4 + c];
                            sj += ((byte & 0xF) | ((hb >> i) & 1) << 4) * as[32 * j + 4 * i + c];
                            sj += ((byte >> 4) | ((hb >> (4 + i)) & 1) << 4) * as[32 * j + 16 + 4 * i + c];
                        }
                    sumi += o[2560 + j * G + rr] * sj;
                    summ += o[2688 + (j / 2) * 2 * G + rr * 2 + (j % 2)] *
                            b32[(((size_t)sb * 4 + j / 2) * tt + t) * 2 + j % 2];
                }
                float dsa = da[(size_t)sb * tt + t];
                float d = llm_ggml_fp16_to_fp32(((const ggml_half *)(o + 2816))[rr]) * dsa;
                float dmin = llm_ggml_fp16_to_fp32(((const ggml_half *)(o + 2848))[rr]) * dsa;
                sum += d * (float)sumi - dmin * (float)summ;
            }
            Y[(size_t)t * ldy + r] = sum;
        }
    }
}

static void pgemm_q6_K_ref(int n, const void *groups, size_t gb, int nr, const void *A, int tt, float *Y,
                           size_t ldy, int nt) {
    const int nsb = n / QK_K;
    const int8_t *a = A;
    const float *da = (const float *)((const uint8_t *)A + llm_s256_d(n, tt));
    for (int r = 0; r < nr; r++) {
        const uint8_t *g = (const uint8_t *)groups + (size_t)(r / G) * gb;
        int rr = r % G;
        for (int t = 0; t < nt; t++) {
            float sum = 0;
            for (int sb = 0; sb < nsb; sb++) {
                const uint8_t *o = g + (size_t)sb * Q6K_SB;
                const int8_t *as = a + ((size_t)sb * tt + t) * QK_K;
                int sumi = 0;
                for (int sub = 0; sub < 16; sub++) {
                    const uint8_t *v = o + (size_t)sub * 192 + rr * 4;
                    int ss = 0;
                    for (int c = 0; c < 4; c++) {
                        int e0 = (v[c] & 0xF) | (v[128 + c] & 3) << 4;
                        int e1 = (v[c] >> 4) | (v[128 + c] >> 2 & 3) << 4;
                        int e2 = (v[64 + c] & 0xF) | (v[128 + c] >> 4 & 3) << 4;
                        int e3 = (v[64 + c] >> 4) | (v[128 + c] >> 6 & 3) << 4;
                        ss += (e0 - 32) * as[16 * sub + c] + (e1 - 32) * as[16 * sub + 4 + c] +
                              (e2 - 32) * as[16 * sub + 8 + c] + (e3 - 32) * as[16 * sub + 12 + c];
                    }
                    sumi += ((const int8_t *)(o + 3072))[sub * G + rr] * ss;
                }
                sum += llm_ggml_fp16_to_fp32(((const ggml_half *)(o + 3328))[rr]) * da[(size_t)sb * tt + t] * (float)sumi;
            }
            Y[(size_t)t * ldy + r] = sum;
        }
    }
}

llm_pgemm_fn llm_pgemm_ref(uint32_t wtype) {
    switch (wtype) {
    case GGML_TYPE_Q4_0: return pgemm_q4_0_ref;
    case GGML_TYPE_Q8_0: return pgemm_q8_0_ref;
    case GGML_TYPE_Q4_K: return pgemm_q4_K_ref;
    case GGML_TYPE_Q5_K: return pgemm_q5_K_ref;
    case GGML_TYPE_Q6_K: return pgemm_q6_K_ref;
    default: return NULL;
    }
}

/* The reference level converts stripes but has no packed gemm in its
 * table: a scalar gemm over groups is no faster than the scalar vec_dot,
 * so weights are only repacked for a level with a SIMD packed gemm (and a
 * packed matrix meeting a level without one runs from its GGUF rows). */
void llm_repack_ref_fill(llm_kernel_table *t) {
    t->stripe[LLM_STRIPE_Q8_32] = llm_stripe_q8_32_ref;
    t->stripe[LLM_STRIPE_Q8_256] = llm_stripe_q8_256_ref;
}
