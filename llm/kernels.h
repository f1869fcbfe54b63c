/* kernels.h — quantization, dot-product kernels, matmul and the thread pool
 * (internal to llm/). Every kernel has a portable reference version; AVX2 and
 * AVX-512 versions are chosen once at run time from CPUID. */
#ifndef LLM_KERNELS_H
#define LLM_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm/ggml.h"

/* ------------------------------------------------------------ thread pool
 * A persistent pool: threads are created once and wait on a barrier between
 * jobs; no thread is created per token. */
typedef struct llm_pool llm_pool;

llm_pool *llm_pool_new(int n_threads);          /* NULL on failure */
void llm_pool_free(llm_pool *p);                /* NULL is a no-op */
int llm_pool_size(const llm_pool *p);
/* Runs fn(arg, ith, nth) for ith = 0..nth-1 on the pool's threads (the
 * caller runs ith 0) and returns when all have finished. One caller at a
 * time per pool; fn must not call llm_pool_run on the same pool. Waiting
 * threads spin ~50 us, then sleep on a futex. NULL pool runs fn(arg, 0, 1). */
void llm_pool_run(llm_pool *p, void (*fn)(void *arg, int ith, int nth), void *arg);

/* ------------------------------------------------------------- CPU level */
typedef enum { LLM_SIMD_REF = 0, LLM_SIMD_AVX2 = 1, LLM_SIMD_AVX512 = 2 } llm_simd;
llm_simd llm_simd_detect(void);         /* what this CPU supports */
llm_simd llm_simd_active(void);         /* what the kernels use (env MRAG_SIMD=ref|avx2|avx512 caps it) */
const char *llm_simd_name(llm_simd s);
/* Sets the level the kernels use (clamped to llm_simd_detect()) and returns
 * the previous one. For tests and benchmarks; not while a matmul runs. */
llm_simd llm_simd_set(llm_simd level);

/* ------------------------------------------------------- quantize / dequant
 * n is a multiple of the type's block size. Supported types: F32, F16, BF16,
 * Q8_0, Q4_0, Q4_K, Q6_K (and Q8_K for activations). */
bool llm_type_supported(uint32_t type);
void llm_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);
/* Quantizes nrows rows of n_per_row floats; returns bytes written. */
size_t llm_quantize(uint32_t type, const float *src, void *dst, int64_t nrows, int64_t n_per_row);

/* The type activations are converted to before a dot product with weights of
 * type wtype, as llama.cpp does: F32->F32, F16->F16, BF16->BF16,
 * Q8_0/Q4_0->Q8_0, Q4_K/Q6_K->Q8_K. */
uint32_t llm_vec_dot_type(uint32_t wtype);
/* Converts a row of activations to llm_vec_dot_type(wtype). */
void llm_quantize_act(uint32_t wtype, const float *x, void *dst, int64_t n);

/* dot(w row of n elements of wtype, activation row already converted). */
typedef float (*llm_vec_dot_fn)(int n, const void *w, const void *act);
llm_vec_dot_fn llm_get_vec_dot(uint32_t wtype, llm_simd level);

/* ------------------------------------------------------------------ matmul
 * Y[t * n_rows + r] = dot(W row r, X row t) for t < n_tok, r < n_rows.
 * W: n_rows x n_cols of type wtype (memory-mapped, never copied).
 * X: n_tok x n_cols floats. work: llm_matmul_work_size() bytes, reused.
 * The work is split over the pool by rows (and tiles for n_tok > 1); tiny
 * products run on the calling thread. Y is filled with NaN when wtype is not
 * supported or n_cols is not a multiple of its block size. */
size_t llm_matmul_work_size(uint32_t wtype, int n_cols, int n_tok);
void llm_matmul(llm_pool *pool, uint32_t wtype, const void *W, int n_rows, int n_cols,
                const float *X, int n_tok, float *Y, void *work);

/* Small f32/f16 helpers the attention uses. */
float llm_dot_f32(const float *a, const float *b, int n);
float llm_dot_f16(const ggml_half *a, const ggml_half *b, int n);
void llm_fp32_to_fp16_row(const float *x, ggml_half *y, int n);
void llm_fp16_to_fp32_row(const ggml_half *x, float *y, int n);

#endif
