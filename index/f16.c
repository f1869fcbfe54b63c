/* f16.c — IEEE 754 half precision for the stored vectors (schema 4): the
 * vectors table holds 2 bytes per dimension. Conversion rounds to nearest
 * even; the F16C instructions do it when the CPU has them, a portable loop
 * (bit-identical results) otherwise. */
#include "index/idx_internal.h"

#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

static uint16_t f32_to_f16_one(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or NaN */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: inf */
    if (ax < 0x38800000u) {
        /* subnormal half (or zero): value = m * 2^-24 */
        if (ax < 0x33000000u) return (uint16_t)sign; /* below half the smallest subnormal */
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((ax >> 13) - (112u << 10));
    uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

static float f16_to_f32_one(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu, x;
    if (e == 0) {
        if (m == 0) x = sign;
        else {
            float f = (float)m * (1.0f / 16777216.0f);
            memcpy(&x, &f, 4);
            x |= sign;
        }
    } else if (e == 31) {
        x = sign | 0x7f800000u | (m << 13);
    } else {
        x = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

__attribute__((target("f16c,avx"))) static void enc_f16c(const float *in, uint16_t *out, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) out[i] = f32_to_f16_one(in[i]);
}

__attribute__((target("f16c,avx"))) static void dec_f16c(const uint16_t *in, float *out, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i))));
    for (; i < n; i++) out[i] = f16_to_f32_one(in[i]);
}

/* F16C and AVX by CPUID, with the YMM state enabled by the OS (XGETBV):
 * clang before 15 does not know "f16c" in __builtin_cpu_supports. */
static int have_f16c(void) {
    static int cached = -1;
    if (cached < 0) {
        unsigned a, b, c, d;
        cached = 0;
        if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE) && (c & bit_AVX) && (c & bit_F16C)) {
            unsigned lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            cached = (lo & 6u) == 6u;
        }
    }
    return cached;
}

void idx_f16_encode(const float *in, uint16_t *out, size_t n) {
    if (have_f16c()) { enc_f16c(in, out, n); return; }
    for (size_t i = 0; i < n; i++) out[i] = f32_to_f16_one(in[i]);
}

void idx_f16_decode(const void *in, float *out, size_t n) {
    /* the blob may be unaligned: copy through a small aligned buffer */
    uint16_t tmp[256];
    const unsigned char *p = in;
    while (n) {
        size_t m = n < 256 ? n : 256;
        memcpy(tmp, p, m * 2);
        if (have_f16c()) dec_f16c(tmp, out, m);
        else for (size_t i = 0; i < m; i++) out[i] = f16_to_f32_one(tmp[i]);
        p += m * 2;
        out += m;
        n -= m;
    }
}

void idx_f16_encode_portable(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = f32_to_f16_one(in[i]);
}

void idx_f16_decode_portable(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = f16_to_f32_one(in[i]);
}

bool idx_f16_range_ok(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]) || fabsf(v[i]) > IDX_F16_MAX) return false;
    return true;
}

/* SQL function mrag_f32_to_f16(blob): a float32 vector blob as float16
 * (the schema 3 -> 4 migration). A blob whose size is not a multiple of 4
 * or that holds values out of the float16 range is an error. */
static void sql_f32_to_f16(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    int bytes = sqlite3_value_bytes(argv[0]);
    const void *b = sqlite3_value_blob(argv[0]);
    if (bytes % 4 || (bytes && !b)) { sqlite3_result_error(ctx, "vector blob is not float32", -1); return; }
    size_t n = (size_t)bytes / 4;
    float *f = sqlite3_malloc64(n * 4 + 1);
    uint16_t *h = sqlite3_malloc64(n * 2 + 1);
    if (!f || !h) { sqlite3_free(f); sqlite3_free(h); sqlite3_result_error_nomem(ctx); return; }
    if (n) memcpy(f, b, n * 4);
    if (!idx_f16_range_ok(f, n)) {
        sqlite3_free(f);
        sqlite3_free(h);
        sqlite3_result_error(ctx, "vector holds a value out of the float16 range", -1);
        return;
    }
    idx_f16_encode(f, h, n);
    sqlite3_free(f);
    sqlite3_result_blob(ctx, h, (int)(n * 2), sqlite3_free);
}

int idx_f16_register(idx_store *s) {
    if (sqlite3_create_function(s->db, "mrag_f32_to_f16", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY,
                                NULL, sql_f32_to_f16, NULL, NULL) != SQLITE_OK)
        return idx_sql_err(s, "register mrag_f32_to_f16");
    return IDX_OK;
}
