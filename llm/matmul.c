/* matmul.c — Y = X * W^T over the thread pool: activations converted once to
 * the weights' vec-dot type, then rows (decode) or row x token tiles
 * (prefill) split across threads. No allocation: the work buffer is given. */
#include <math.h>
#include <stdatomic.h>

#include "llm/kernels_internal.h"

/* Prefill tile: MM_RB weight rows x MM_TB tokens. 64 rows of a 4096-wide
 * Q4_0 matrix are ~147 KB and 32 Q8_0 activation rows ~139 KB, so a tile's
 * operands stay in L2 while the register-tiled kernel sweeps it. */
#ifndef MM_RB
#define MM_RB 64
#endif
#ifndef MM_TB
#define MM_TB 32
#endif
/* Decode hands out rows in whole groups of this many, so threads do not
 * share cache lines of Y and the multi-row kernels get whole tiles. */
#define MM_ROW_ALIGN 16

static size_t act_row_size(uint32_t wtype, int n_cols) {
    uint32_t at = llm_vec_dot_type(wtype);
    return llm_ggml_row_size(at, (uint64_t)n_cols);
}

/* Q8_0 activations are also repacked for the packed gemm (when the level
 * has one); the room is always counted, as the level may change. */
size_t llm_matmul_work_size(uint32_t wtype, int n_cols, int n_tok) {
    uint32_t at = llm_vec_dot_type(wtype);
    if (at == GGML_TYPE_F32) return 0;
    size_t z = (act_row_size(wtype, n_cols) + 63) / 64 * 64 * (size_t)n_tok + 64;
    if (at == GGML_TYPE_Q8_0) z += llm_pack_row_size(n_cols) * (size_t)n_tok;
    return z;
}

typedef struct {
    const llm_kernel_table *k;
    uint32_t wtype;
    const uint8_t *W;
    size_t ldw;                 /* bytes per weight row */
    int n_rows, n_cols, n_tok;
    const float *X;
    const uint8_t *A;           /* converted activations */
    size_t lda;                 /* bytes per activation row */
    uint8_t *A_out;             /* = A, writable, during conversion */
    uint8_t *Q;                 /* converted rows before packing (packed gemm) */
    size_t ldq;
    llm_gemm_fn gemm;           /* the gemm for A as laid out; NULL: vec_dot */
    float *Y;
    _Atomic int next_tile;      /* next row chunk (decode) or tile (prefill) */
} mm_job;

/* Conversion job: tokens split evenly over threads. */
static void mm_convert(void *arg, int ith, int nth) {
    mm_job *j = arg;
    llm_act_fn act = j->k->act[llm_vec_dot_type(j->wtype)];
    int t0 = (int)((int64_t)j->n_tok * ith / nth), t1 = (int)((int64_t)j->n_tok * (ith + 1) / nth);
    if (j->Q) {
        void (*pack)(const void *, void *, int) = j->k->pack[j->wtype];
        for (int t = t0; t < t1; t++) {
            act(j->X + (size_t)t * j->n_cols, j->Q + (size_t)t * j->ldq, j->n_cols);
            pack(j->Q + (size_t)t * j->ldq, j->A_out + (size_t)t * j->lda, j->n_cols);
        }
        return;
    }
    for (int t = t0; t < t1; t++)
        act(j->X + (size_t)t * j->n_cols, j->A_out + (size_t)t * j->lda, j->n_cols);
}

/* Y tile of nr rows from r0 and nt tokens from t0, through the level's gemm
 * kernel, or its vec_dot when it has none. */
static void mm_tile(const mm_job *j, int r0, int nr, int t0, int nt) {
    const uint8_t *W = j->W + (size_t)r0 * j->ldw;
    const uint8_t *A = j->A + (size_t)t0 * j->lda;
    float *Y = j->Y + (size_t)t0 * j->n_rows + r0;
    llm_gemm_fn g = j->gemm;
    if (g) {
        g(j->n_cols, W, j->ldw, A, j->lda, Y, (size_t)j->n_rows, nr, nt);
        return;
    }
    llm_vec_dot_fn dot = j->k->vec_dot[j->wtype];
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++)
            Y[(size_t)t * j->n_rows + r] = dot(j->n_cols, W + (size_t)r * j->ldw, A + (size_t)t * j->lda);
}

/* Decode (and tiny batches): rows in chunks taken from a shared counter, so
 * a thread that is descheduled on the shared machine does not hold the
 * others up; about 8 chunks per thread, whole 16-row groups. */
static void mm_rows(void *arg, int ith, int nth) {
    (void)ith;
    mm_job *j = arg;
    int groups = (j->n_rows + MM_ROW_ALIGN - 1) / MM_ROW_ALIGN;
    int per = groups / (8 * nth);
    if (per < 1) per = 1;
    int chunk = per * MM_ROW_ALIGN;
    for (;;) {
        int c = atomic_fetch_add_explicit(&j->next_tile, 1, memory_order_relaxed);
        int r0 = c * chunk;
        if (r0 >= j->n_rows) break;
        int nr = j->n_rows - r0 < chunk ? j->n_rows - r0 : chunk;
        mm_tile(j, r0, nr, 0, j->n_tok);
    }
}

/* Prefill: tiles taken from a shared counter (the machine is shared, so
 * dynamic balancing beats a static split); consecutive tiles share their
 * weight rows, which stay in cache while the tokens change. */
static void mm_tiles(void *arg, int ith, int nth) {
    (void)ith;
    (void)nth;
    mm_job *j = arg;
    int n_rb = (j->n_rows + MM_RB - 1) / MM_RB, n_tb = (j->n_tok + MM_TB - 1) / MM_TB;
    int total = n_rb * n_tb;
    for (;;) {
        int k = atomic_fetch_add_explicit(&j->next_tile, 1, memory_order_relaxed);
        if (k >= total) break;
        int rb = k / n_tb, tb = k % n_tb;
        int r0 = rb * MM_RB, t0 = tb * MM_TB;
        int nr = j->n_rows - r0 < MM_RB ? j->n_rows - r0 : MM_RB;
        int nt = j->n_tok - t0 < MM_TB ? j->n_tok - t0 : MM_TB;
        mm_tile(j, r0, nr, t0, nt);
    }
}

/* Products smaller than this many multiply-adds run on the calling thread:
 * a few microseconds of work, less than waking the pool costs. */
#define MM_INLINE_MACS (1 << 16)

void llm_matmul(llm_pool *pool, uint32_t wtype, const void *W, int n_rows, int n_cols,
                const float *X, int n_tok, float *Y, void *work) {
    if (n_rows <= 0 || n_tok <= 0) return;
    const llm_kernel_table *k = llm_kernels_active();
    if (wtype >= GGML_TYPE_COUNT || !k->vec_dot[wtype] || n_cols <= 0 ||
        llm_ggml_row_size(wtype, (uint64_t)n_cols) == 0) {
        /* unsupported type or a row that is not whole blocks: the loader
         * rejects these; NaN makes a caller's mistake visible */
        for (size_t i = 0; i < (size_t)n_rows * (size_t)n_tok; i++) Y[i] = NAN;
        return;
    }
    if ((int64_t)n_rows * n_cols * n_tok < MM_INLINE_MACS) pool = NULL;
    mm_job j = {
        .k = k,
        .wtype = wtype,
        .W = W,
        .ldw = llm_ggml_row_size(wtype, (uint64_t)n_cols),
        .n_rows = n_rows,
        .n_cols = n_cols,
        .n_tok = n_tok,
        .X = X,
        .Y = Y,
        .gemm = k->gemm[wtype],
    };
    atomic_init(&j.next_tile, 0);
    if (llm_vec_dot_type(wtype) == GGML_TYPE_F32) {
        j.A = (const uint8_t *)X;
        j.lda = (size_t)n_cols * sizeof(float);
    } else {
        /* align the activations to 64 bytes for the SIMD loads */
        uintptr_t a = ((uintptr_t)work + 63) & ~(uintptr_t)63;
        j.A_out = (uint8_t *)a;
        j.A = j.A_out;
        j.lda = act_row_size(wtype, n_cols);
        if (k->gemm_packed[wtype] && k->pack[wtype] && llm_vec_dot_type(wtype) == GGML_TYPE_Q8_0) {
            /* Q8_0 rows go first (64-byte aligned), packed rows after them */
            j.Q = j.A_out;
            j.ldq = (j.lda + 63) / 64 * 64;
            j.A_out = j.Q + j.ldq * (size_t)n_tok;
            j.A = j.A_out;
            j.lda = llm_pack_row_size(n_cols);
            j.gemm = k->gemm_packed[wtype];
        }
        if (n_tok <= 2) mm_convert(&j, 0, 1);
        else llm_pool_run(pool, mm_convert, &j);
    }
    if (n_tok < 4) llm_pool_run(pool, mm_rows, &j);
    else llm_pool_run(pool, mm_tiles, &j);
}
