/* cpu.c — SIMD level detection (CPUID, capped by MRAG_SIMD), the per-level
 * kernel tables, and the public entry points that dispatch through them. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "llm/kernels_internal.h"
#include "llm/llm.h"

static llm_simd detected, active;
static llm_kernel_table tables[3];
static pthread_once_t once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
/* F16C from CPUID leaf 1 (ECX bit 29): clang 14 rejects "f16c" in
 * __builtin_cpu_supports, which broke the clang build of `make fuzz`. */
static int cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
#endif

/* Runs once: reads the CPU's features and builds the three tables (a level
 * above what the CPU supports gets the supported level's table). */
static void simd_init(void) {
    detected = LLM_SIMD_REF;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        cpu_has_f16c())
        detected = LLM_SIMD_AVX2;
    if (detected == LLM_SIMD_AVX2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni") &&
        __builtin_cpu_supports("avx512bf16"))
        detected = LLM_SIMD_AVX512;
#endif
    active = detected;
    const char *env = getenv("MRAG_SIMD");
    if (env) {
        llm_simd cap = detected;
        if (!strcmp(env, "ref")) cap = LLM_SIMD_REF;
        else if (!strcmp(env, "avx2")) cap = LLM_SIMD_AVX2;
        else if (!strcmp(env, "avx512")) cap = LLM_SIMD_AVX512;
        if (cap < active) active = cap;
    }
    llm_kernels_ref_fill(&tables[LLM_SIMD_REF]);
    llm_repack_ref_fill(&tables[LLM_SIMD_REF]);
    tables[LLM_SIMD_AVX2] = tables[LLM_SIMD_REF];
    if (detected >= LLM_SIMD_AVX2) {
        llm_kernels_avx2_fill(&tables[LLM_SIMD_AVX2]);
        llm_kernels_formats_avx2_fill(&tables[LLM_SIMD_AVX2]);
    }
    tables[LLM_SIMD_AVX512] = tables[LLM_SIMD_AVX2];
    if (detected >= LLM_SIMD_AVX512) {
        llm_kernels_avx512_fill(&tables[LLM_SIMD_AVX512]);
        llm_kernels_formats_avx512_fill(&tables[LLM_SIMD_AVX512]);
        llm_packed_avx512_fill(&tables[LLM_SIMD_AVX512]);
        llm_attn_avx512_fill(&tables[LLM_SIMD_AVX512]);
    }
}

llm_simd llm_simd_detect(void) {
    pthread_once(&once, simd_init);
    return detected;
}

llm_simd llm_simd_active(void) {
    pthread_once(&once, simd_init);
    return active;
}

llm_simd llm_simd_set(llm_simd level) {
    pthread_once(&once, simd_init);
    llm_simd old = active;
    if ((int)level < 0) level = LLM_SIMD_REF;
    active = level > detected ? detected : level;
    return old;
}

const char *llm_simd_name(llm_simd s) {
    switch (s) {
    case LLM_SIMD_REF: return "ref";
    case LLM_SIMD_AVX2: return "avx2";
    case LLM_SIMD_AVX512: return "avx512";
    }
    return "unknown";
}

/* Contract: see llm.h. */
const char *llm_simd_found(void) { return llm_simd_name(llm_simd_detect()); }
const char *llm_simd_used(void) { return llm_simd_name(llm_simd_active()); }

const llm_kernel_table *llm_kernels_get(llm_simd level) {
    pthread_once(&once, simd_init);
    if ((int)level < 0) level = LLM_SIMD_REF;
    if (level > detected) level = detected;
    return &tables[level];
}

const llm_kernel_table *llm_kernels_active(void) {
    pthread_once(&once, simd_init);
    return &tables[active];
}

llm_vec_dot_fn llm_get_vec_dot(uint32_t wtype, llm_simd level) {
    if (wtype >= GGML_TYPE_COUNT) return NULL;
    return llm_kernels_get(level)->vec_dot[wtype];
}

float llm_dot_f32(const float *a, const float *b, int n) {
    return llm_kernels_active()->dot_f32(a, b, n);
}

float llm_dot_f16(const ggml_half *a, const ggml_half *b, int n) {
    return llm_kernels_active()->dot_f16(a, b, n);
}

void llm_fp32_to_fp16_row(const float *x, ggml_half *y, int n) {
    llm_kernels_active()->fp32_to_fp16(x, y, n);
}

void llm_fp16_to_fp32_row(const ggml_half *x, float *y, int n) {
    llm_kernels_active()->fp16_to_fp32(x, y, n);
}
