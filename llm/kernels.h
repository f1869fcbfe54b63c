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

/* ------------------------------------------------------- packed weights
 * At load, weights of the types the active level has interleaved kernels
 * for are copied once into "packed" row groups of LLM_PACK_ROWS rows
 * (llm/repack.c documents each layout): one 64-byte vector then holds 4
 * consecutive quants of each of 16 rows, so a VNNI dot product with a
 * broadcast activation gives 16 row sums at once and the block scales are
 * applied once per 16 rows. The GGUF rows stay mapped (token embeddings,
 * hashing); the packed copy is what the matmul reads.
 *
 * A type plugs in at two levels. Correctness first: a reference vec_dot in
 * kernels_ref.c (and a SIMD vec_dot and/or gemm per level) on the GGUF rows
 * — enough for the type to run, through the plain path below. Speed then:
 * a group layout + pack function + reference packed gemm in repack.c, and a
 * SIMD packed gemm (packed_avx512.c) in the table's pgemm[] slot. A type
 * without a pgemm at the active level is simply not repacked. */
#define LLM_PACK_ROWS 16

/* Bytes of one packed group of LLM_PACK_ROWS rows of n_cols elements of
 * wtype (a multiple of 64), or 0 when wtype has no packed layout. */
size_t llm_pack_group_bytes(uint32_t wtype, int n_cols);
/* True when the active level runs wtype from packed groups. */
bool llm_pack_available(uint32_t wtype);
/* Bytes the packed copy of an n_rows x n_cols matrix takes (0: not packed). */
size_t llm_pack_size(uint32_t wtype, int n_rows, int n_cols);
/* Packs rows [r0, r1) of W (GGUF rows, ldw bytes apart; r0 a multiple of
 * LLM_PACK_ROWS) into dst, the start of the whole packed matrix. Groups
 * are independent, so threads may pack disjoint row ranges. */
void llm_pack_rows(uint32_t wtype, const void *W, size_t ldw, int n_rows, int n_cols, int r0, int r1, void *dst);

/* A weight matrix as the matmul reads it. */
typedef struct {
    uint32_t type;          /* ggml type of the rows */
    int rows, cols;
    const void *data;       /* GGUF rows, llm_ggml_row_size(type, cols) bytes apart */
    const void *packed;     /* NULL, or llm_pack_size() bytes of groups (64-aligned) */
} llm_mat;

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

/* The same product for an llm_mat: packed groups when it has them, else as
 * llm_matmul. Y is n_tok x W->rows. */
void llm_matmul_mat(llm_pool *pool, const llm_mat *W, const float *X, int n_tok, float *Y, void *work);

/* Up to LLM_MULTI_MAX matrices of the same n_cols applied to the same X in
 * one pool job (the activations converted once per kind): Y[i] =
 * X * W[i]^T, each n_tok x W[i].rows. With LLM_MULTI_GLU (two matrices of
 * equal rows: gate and up), Y[0] becomes silu(Y[0]) * Y[1] as each row
 * chunk finishes. work: llm_matmul_work_size of the widest X, per matrix. */
#define LLM_MULTI_MAX 3
#define LLM_MULTI_GLU 1
void llm_matmul_multi(llm_pool *pool, const llm_mat *W, int n_mat, const float *X, int n_tok, float *const *Y,
                      int flags, void *work);

/* y[i] = silu(g[i]) * u[i] = g / (1 + e^-g) * u, in place in g. */
void llm_silu_mul(float *g, const float *u, int n);

/* Small f32/f16 helpers the attention uses. */
float llm_dot_f32(const float *a, const float *b, int n);
float llm_dot_f16(const ggml_half *a, const ggml_half *b, int n);
void llm_fp32_to_fp16_row(const float *x, ggml_half *y, int n);
void llm_fp16_to_fp32_row(const ggml_half *x, float *y, int n);

#endif
