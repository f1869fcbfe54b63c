/* matmul.c — Y = X * W^T over the thread pool, for one matrix or several
 * sharing their input (Q/K/V; gate/up with the SwiGLU fused in):
 * activations converted once per kind (the vec-dot type for GGUF rows, a
 * stripe for packed groups), then row chunks (decode) or row x token tiles
 * (prefill) taken from a shared counter. No allocation: the work buffer is
 * given. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "llm/kernels_internal.h"

/* Prefill tile: MM_RB weight rows x MM_TB tokens. The packed kernels sweep
 * the tile's tokens group by group (16 rows, 18 KB of a 2048-wide Q4_0
 * matrix, stays in L1) while the tokens' stripes (2.2 KB each) stream from
 * L2; 64 rows x 64 tokens keep the tile well inside L2. */
#ifndef MM_RB
#define MM_RB 64
#endif
#ifndef MM_TB
#define MM_TB 64
#endif
/* Decode hands out rows in whole groups of this many, so threads do not
 * share cache lines of Y and the kernels get whole packed groups. */
#define MM_ROW_ALIGN 16

/* Bytes one converted activation row takes for a matrix of wtype. */
static size_t plain_act_bytes(uint32_t wtype, int n_cols) {
    uint32_t at = llm_vec_dot_type(wtype);
    if (at == GGML_TYPE_F32) return 0;
    size_t z = (llm_ggml_row_size(at, (uint64_t)n_cols) + 63) / 64 * 64;
    if (at == GGML_TYPE_Q8_0) z += llm_pack_row_size(n_cols);
    return z;
}

/* Room for every layout the level may pick (it may change at run time). */
size_t llm_matmul_work_size(uint32_t wtype, int n_cols, int n_tok) {
    size_t a = plain_act_bytes(wtype, n_cols);
    /* stripes come in tiles of LLM_TOKEN_TILE tokens (one when alone) */
    int tiles = n_tok == 1 ? 1 : (n_tok + LLM_TOKEN_TILE - 1) / LLM_TOKEN_TILE;
    size_t s = llm_stripe_bytes(llm_pack_stripe(wtype), n_cols, n_tok == 1 ? 1 : LLM_TOKEN_TILE) * (size_t)tiles;
    a *= (size_t)n_tok;
    if (s > a) a = s;
    return a ? a + 64 : 0;
}

/* One activation conversion of the job. */
typedef struct {
    uint32_t at;            /* plain: the vec-dot type (F32: X used in place) */
    llm_stripe_kind stripe; /* packed: the stripe kind (else NONE) */
    uint32_t pack_wtype;    /* plain Q8_0 rows repacked for the level's gemm_packed (0: no) */
    uint8_t *Q;             /* Q8_0 rows before that repacking */
    size_t ldq;
    uint8_t *A;             /* converted rows (writable during conversion) */
    size_t lda;             /* bytes per row, or per stripe tile */
    int tt;                 /* stripes: tokens per tile */
} mm_conv;

/* One matrix of the job. */
typedef struct {
    const llm_mat *W;
    float *Y;
    const mm_conv *c;
    llm_pgemm_fn pg;        /* packed: the gemm over groups */
    size_t gb;
    llm_gemm_fn gemm;       /* plain: tile gemm, or NULL = vec_dot */
    llm_vec_dot_fn dot;
    size_t ldw;
} mm_op;

typedef struct {
    const llm_kernel_table *k;
    const float *X;
    int n_cols, n_tok, n_op, n_conv;
    bool glu;
    mm_op op[LLM_MULTI_MAX];
    mm_conv conv[LLM_MULTI_MAX];
    int chunk;              /* decode: rows per chunk */
    int n_chunk[LLM_MULTI_MAX];     /* decode: chunks per op */
    int n_rb[LLM_MULTI_MAX], n_tb;  /* prefill: row and token tiles per op */
    _Atomic int next;
} mm_job;

/* Conversion job: tokens split evenly over threads, every conversion. */
static void mm_convert(void *arg, int ith, int nth) {
    mm_job *j = arg;
    int t0 = (int)((int64_t)j->n_tok * ith / nth), t1 = (int)((int64_t)j->n_tok * (ith + 1) / nth);
    for (int c = 0; c < j->n_conv; c++) {
        mm_conv *cv = &j->conv[c];
        for (int t = t0; t < t1; t++) {
            const float *x = j->X + (size_t)t * j->n_cols;
            if (cv->stripe != LLM_STRIPE_NONE) {
                j->k->stripe[cv->stripe](x, cv->A + (size_t)(t / cv->tt) * cv->lda, j->n_cols, cv->tt, t % cv->tt);
            } else if (cv->pack_wtype) {
                j->k->act[cv->at](x, cv->Q + (size_t)t * cv->ldq, j->n_cols);
                j->k->pack[cv->pack_wtype](cv->Q + (size_t)t * cv->ldq, cv->A + (size_t)t * cv->lda, j->n_cols);
            } else if (cv->at != GGML_TYPE_F32) {
                j->k->act[cv->at](x, cv->A + (size_t)t * cv->lda, j->n_cols);
            }
        }
    }
}

/* Y tile of op o: nr rows from r0, nt tokens from t0. */
static void mm_tile(const mm_job *j, const mm_op *o, int r0, int nr, int t0, int nt) {
    const llm_mat *W = o->W;
    float *Y = o->Y + (size_t)t0 * W->rows + r0;
    if (o->pg) {
        /* t0 is a multiple of the tile (MM_TB is); one call per stripe tile */
        const int tt = o->c->tt;
        const uint8_t *G0 = (const uint8_t *)W->packed + (size_t)(r0 / LLM_PACK_ROWS) * o->gb;
        for (int t = 0; t < nt; t += tt)
            o->pg(j->n_cols, G0, o->gb, nr, o->c->A + (size_t)((t0 + t) / tt) * o->c->lda, tt,
                  Y + (size_t)t * W->rows, (size_t)W->rows, nt - t < tt ? nt - t : tt);
        return;
    }
    const uint8_t *A = o->c->A + (size_t)t0 * o->c->lda;
    const uint8_t *Wr = (const uint8_t *)W->data + (size_t)r0 * o->ldw;
    if (o->gemm) {
        o->gemm(j->n_cols, Wr, o->ldw, A, o->c->lda, Y, (size_t)W->rows, nr, nt);
        return;
    }
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++)
            Y[(size_t)t * W->rows + r] = o->dot(j->n_cols, Wr + (size_t)r * o->ldw, A + (size_t)t * o->c->lda);
}

/* The SwiGLU of a finished gate/up tile: Y0 = silu(Y0) * Y1. */
static void mm_glu(const mm_job *j, int r0, int nr, int t0, int nt) {
    int rows = j->op[0].W->rows;
    for (int t = t0; t < t0 + nt; t++)
        j->k->silu_mul(j->op[0].Y + (size_t)t * rows + r0, j->op[1].Y + (size_t)t * rows + r0, nr);
}

/* Decode (and tiny batches): row chunks of every op from one counter, so
 * a thread descheduled on a shared machine does not hold the others up.
 * With GLU a chunk is the same rows of gate and up, then their product. */
static void mm_rows(void *arg, int ith, int nth) {
    (void)ith;
    (void)nth;
    mm_job *j = arg;
    int n_ops = j->glu ? 1 : j->n_op;
    for (;;) {
        int c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        int o = 0;
        while (o < n_ops && c >= j->n_chunk[o]) c -= j->n_chunk[o++];
        if (o >= n_ops) break;
        int rows = j->op[o].W->rows;
        int r0 = c * j->chunk, nr = rows - r0 < j->chunk ? rows - r0 : j->chunk;
        mm_tile(j, &j->op[o], r0, nr, 0, j->n_tok);
        if (j->glu) {
            mm_tile(j, &j->op[1], r0, nr, 0, j->n_tok);
            mm_glu(j, r0, nr, 0, j->n_tok);
        }
    }
}

/* Prefill: MM_RB x MM_TB tiles of every op from one counter; consecutive
 * tiles share their weight rows, which stay in cache while the tokens
 * change. */
static void mm_tiles(void *arg, int ith, int nth) {
    (void)ith;
    (void)nth;
    mm_job *j = arg;
    int n_ops = j->glu ? 1 : j->n_op;
    for (;;) {
        int k = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        int o = 0;
        while (o < n_ops && k >= j->n_rb[o] * j->n_tb) k -= j->n_rb[o++] * j->n_tb;
        if (o >= n_ops) break;
        int rows = j->op[o].W->rows;
        int rb = k / j->n_tb, tb = k % j->n_tb;
        int r0 = rb * MM_RB, t0 = tb * MM_TB;
        int nr = rows - r0 < MM_RB ? rows - r0 : MM_RB;
        int nt = j->n_tok - t0 < MM_TB ? j->n_tok - t0 : MM_TB;
        mm_tile(j, &j->op[o], r0, nr, t0, nt);
        if (j->glu) {
            mm_tile(j, &j->op[1], r0, nr, t0, nt);
            mm_glu(j, r0, nr, t0, nt);
        }
    }
}

/* Products smaller than this many multiply-adds run on the calling thread:
 * a few microseconds of work, less than waking the pool costs. */
#define MM_INLINE_MACS (1 << 16)

/* Whether W can run at all (a type the level has kernels for, whole
 * blocks); the loader rejects the rest, so this only guards misuse. */
static bool mat_ok(const llm_kernel_table *k, const llm_mat *W) {
    return W->type < GGML_TYPE_COUNT && k->vec_dot[W->type] && W->cols > 0 && W->rows > 0 &&
           llm_ggml_row_size(W->type, (uint64_t)W->cols) != 0 && (W->data || W->packed);
}

void llm_matmul_multi(llm_pool *pool, const llm_mat *W, int n_mat, const float *X, int n_tok, float *const *Y,
                      int flags, void *work) {
    if (n_tok <= 0 || n_mat <= 0 || n_mat > LLM_MULTI_MAX) return;
    const llm_kernel_table *k = llm_kernels_active();
    bool glu = (flags & LLM_MULTI_GLU) != 0;
    int64_t macs = 0;
    for (int i = 0; i < n_mat; i++) {
        if (!mat_ok(k, &W[i]) || W[i].cols != W[0].cols || (glu && (n_mat != 2 || W[i].rows != W[0].rows))) {
            /* a caller's mistake: NaN makes it visible */
            for (int m = 0; m < n_mat; m++)
                for (size_t e = 0; e < (size_t)W[m].rows * (size_t)n_tok; e++) Y[m][e] = NAN;
            return;
        }
        macs += (int64_t)W[i].rows * W[i].cols * n_tok;
    }
    if (macs < MM_INLINE_MACS) pool = NULL;
    const int n_cols = W[0].cols;
    mm_job j = {.k = k, .X = X, .n_cols = n_cols, .n_tok = n_tok, .n_op = n_mat, .glu = glu};
    atomic_init(&j.next, 0);
    /* each op's path and its conversion; ops sharing a conversion share it */
    uint8_t *wp = (uint8_t *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    for (int i = 0; i < n_mat; i++) {
        mm_op *o = &j.op[i];
        o->W = &W[i];
        o->Y = Y[i];
        mm_conv want = {0};
        if (W[i].packed && k->pgemm[W[i].type]) {
            o->pg = k->pgemm[W[i].type];
            o->gb = llm_pack_group_bytes(W[i].type, n_cols);
            want.stripe = llm_pack_stripe(W[i].type);
        } else if (!W[i].data) {
            /* packed only, and this level has no packed gemm: run its
             * layout through the portable one */
            o->pg = llm_pgemm_ref(W[i].type);
            o->gb = llm_pack_group_bytes(W[i].type, n_cols);
            want.stripe = llm_pack_stripe(W[i].type);
        } else {
            o->ldw = llm_ggml_row_size(W[i].type, (uint64_t)n_cols);
            o->dot = k->vec_dot[W[i].type];
            o->gemm = k->gemm[W[i].type];
            want.at = llm_vec_dot_type(W[i].type);
            if (want.at == GGML_TYPE_Q8_0 && k->gemm_packed[W[i].type] && k->pack[W[i].type]) {
                want.pack_wtype = W[i].type;
                o->gemm = k->gemm_packed[W[i].type];
            }
        }
        int c = 0;
        while (c < j.n_conv && !(j.conv[c].at == want.at && j.conv[c].stripe == want.stripe &&
                                 j.conv[c].pack_wtype == want.pack_wtype))
            c++;
        if (c == j.n_conv) {
            mm_conv *cv = &j.conv[j.n_conv++];
            *cv = want;
            if (want.stripe != LLM_STRIPE_NONE) {
                cv->A = wp;
                cv->tt = n_tok == 1 ? 1 : LLM_TOKEN_TILE;
                cv->lda = llm_stripe_bytes(want.stripe, n_cols, cv->tt);
                int tiles = (n_tok + cv->tt - 1) / cv->tt;
                /* the slots past the last token are zero (never stored,
                 * but kept finite and defined) */
                if (n_tok % cv->tt) memset(cv->A + (size_t)(tiles - 1) * cv->lda, 0, cv->lda);
                wp += cv->lda * (size_t)tiles;
            } else if (want.at == GGML_TYPE_F32) {
                cv->A = (uint8_t *)X;
                cv->lda = (size_t)n_cols * sizeof(float);
            } else {
                size_t row = llm_ggml_row_size(want.at, (uint64_t)n_cols);
                if (want.pack_wtype) {
                    /* Q8_0 rows first (64-byte aligned), packed rows after */
                    cv->Q = wp;
                    cv->ldq = (row + 63) / 64 * 64;
                    cv->A = cv->Q + cv->ldq * (size_t)n_tok;
                    cv->lda = llm_pack_row_size(n_cols);
                } else {
                    cv->A = wp;
                    cv->lda = row;
                }
                wp += plain_act_bytes(W[i].type, n_cols) * (size_t)n_tok;
            }
            wp = (uint8_t *)(((uintptr_t)wp + 63) & ~(uintptr_t)63);
        }
        o->c = &j.conv[c];
    }
    bool need_conv = false;
    for (int c = 0; c < j.n_conv; c++) need_conv |= j.conv[c].stripe != LLM_STRIPE_NONE || j.conv[c].at != GGML_TYPE_F32;
    if (need_conv) {
        if (n_tok <= 2) mm_convert(&j, 0, 1);
        else llm_pool_run(pool, mm_convert, &j);
    }
    int nth = llm_pool_size(pool);
    int n_ops = glu ? 1 : n_mat;
    if (n_tok < 4) {
        /* about 8 chunks per thread over all ops, whole 16-row groups */
        int64_t rows = 0;
        for (int i = 0; i < n_ops; i++) rows += W[i].rows;
        int groups = (int)((rows + MM_ROW_ALIGN - 1) / MM_ROW_ALIGN);
        int per = groups / (8 * nth);
        if (per < 1) per = 1;
        j.chunk = per * MM_ROW_ALIGN;
        for (int i = 0; i < n_ops; i++) j.n_chunk[i] = (W[i].rows + j.chunk - 1) / j.chunk;
        llm_pool_run(pool, mm_rows, &j);
    } else {
        j.n_tb = (n_tok + MM_TB - 1) / MM_TB;
        for (int i = 0; i < n_ops; i++) j.n_rb[i] = (W[i].rows + MM_RB - 1) / MM_RB;
        llm_pool_run(pool, mm_tiles, &j);
    }
}

void llm_matmul_mat(llm_pool *pool, const llm_mat *W, const float *X, int n_tok, float *Y, void *work) {
    llm_matmul_multi(pool, W, 1, X, n_tok, &Y, 0, work);
}

void llm_matmul(llm_pool *pool, uint32_t wtype, const void *W, int n_rows, int n_cols, const float *X, int n_tok,
                float *Y, void *work) {
    if (n_rows <= 0 || n_tok <= 0) return;
    llm_mat m = {.type = wtype, .rows = n_rows, .cols = n_cols, .data = W, .packed = NULL};
    llm_matmul_multi(pool, &m, 1, X, n_tok, &Y, 0, work);
}

void llm_silu_mul(float *g, const float *u, int n) {
    llm_kernels_active()->silu_mul(g, u, n);
}
