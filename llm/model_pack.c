/* model_pack.c — at load, copies every weight matrix whose type the active
 * SIMD level runs from packed row groups (llm/repack.c) into one anonymous
 * mapping, on several threads, and lets the kernel drop the file pages the
 * copy replaces. The GGUF mapping stays valid (token embeddings, hashing,
 * and any level without packed kernels read it). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "llm/kernels.h"
#include "llm/model.h"

/* One matrix (or one expert of a 3-D tensor) to pack. */
typedef struct {
    llm_weight *w;
    int expert;
    uint8_t *dst;
} pack_item;

typedef struct {
    pack_item *items;
    int n_items;
    int n_threads;
} pack_job;

typedef struct {
    pack_job *job;
    int ith;
} pack_arg;

/* Thread ith packs its share of every item's row groups, so a few large
 * matrices (the output head) still split evenly. */
static void *pack_thread(void *arg_) {
    pack_arg *a = arg_;
    pack_job *j = a->job;
    for (int i = 0; i < j->n_items; i++) {
        pack_item *it = &j->items[i];
        llm_weight *w = it->w;
        int groups = (w->rows + LLM_PACK_ROWS - 1) / LLM_PACK_ROWS;
        int g0 = (int)((int64_t)groups * a->ith / j->n_threads), g1 = (int)((int64_t)groups * (a->ith + 1) / j->n_threads);
        if (g0 >= g1) continue;
        size_t row = llm_ggml_row_size(w->type, (uint64_t)w->cols);
        llm_pack_rows(w->type, llm_weight_row(w, it->expert, 0, row), row, w->rows, w->cols, g0 * LLM_PACK_ROWS,
                      g1 * LLM_PACK_ROWS, it->dst);
    }
    return NULL;
}

/* Every matmul weight of the model, once (a tied output head is
 * token_embd, packed as the output only). */
static int collect(llm_model *m, llm_weight **out, int cap) {
    int n = 0;
#define ADD(w)                                  \
    do {                                        \
        if ((w).data && n < cap) out[n++] = &(w); \
    } while (0)
    ADD(m->output);
    for (int l = 0; l < m->hp.n_layer; l++) {
        llm_layer *L = &m->layers[l];
        ADD(L->wq); ADD(L->wk); ADD(L->wv); ADD(L->wo);
        ADD(L->w_gate); ADD(L->w_up); ADD(L->w_down);
        ADD(L->router); ADD(L->e_gate); ADD(L->e_up); ADD(L->e_down);
    }
#undef ADD
    return n;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int llm_model_pack(llm_model *m, char *err, size_t errlen) {
    double t0 = now_s();
    int cap = 1 + 11 * m->hp.n_layer;
    llm_weight **ws = calloc((size_t)cap, sizeof *ws);
    if (!ws) return LLM_ERR_NOMEM;
    int nw = collect(m, ws, cap);
    /* sizes: experts packed one after another, each from a 64-byte boundary */
    size_t total = 0;
    int n_items = 0;
    for (int i = 0; i < nw; i++) {
        llm_weight *w = ws[i];
        if (!llm_pack_available(w->type)) continue;
        int ne = w->stride ? m->hp.n_expert : 1;
        w->pstride = llm_pack_size(w->type, w->rows, w->cols);
        total += w->pstride * (size_t)ne;
        n_items += ne;
    }
    if (n_items == 0) {
        free(ws);
        return LLM_OK;
    }
    /* an anonymous mapping rounded to 2 MiB, with transparent huge pages
     * asked for: the decode streams it all every token, and 4 KiB pages
     * would cost a TLB miss every 4 KiB */
    size_t map = (total + ((size_t)2 << 20) - 1) & ~(((size_t)2 << 20) - 1);
    void *base = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        free(ws);
        if (err && errlen) snprintf(err, errlen, "%s: cannot allocate %zu bytes for the packed weights", m->path, map);
        return LLM_ERR_NOMEM;
    }
#ifdef MADV_HUGEPAGE
    madvise(base, map, MADV_HUGEPAGE);
#endif
    pack_item *items = calloc((size_t)n_items, sizeof *items);
    if (!items) {
        munmap(base, map);
        free(ws);
        return LLM_ERR_NOMEM;
    }
    uint8_t *p = base;
    int k = 0;
    for (int i = 0; i < nw; i++) {
        llm_weight *w = ws[i];
        if (!w->pstride) continue;
        w->packed = p;
        int ne = w->stride ? m->hp.n_expert : 1;
        for (int e = 0; e < ne; e++) items[k++] = (pack_item){w, e, p + (size_t)e * w->pstride};
        p += w->pstride * (size_t)ne;
    }
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    pack_job job = {items, n_items, (int)(nproc < 1 ? 1 : nproc > 8 ? 8 : nproc)};
    pthread_t th[8];
    pack_arg args[8];
    int started = 1;
    for (int t = 0; t < job.n_threads; t++) args[t] = (pack_arg){&job, t};
    for (int t = 1; t < job.n_threads; t++) {
        if (pthread_create(&th[t], NULL, pack_thread, &args[t]) != 0) break;
        started++;
    }
    if (started < job.n_threads) {
        /* run the shares of the threads that did not start here */
        for (int t = started; t < job.n_threads; t++) pack_thread(&args[t]);
    }
    pack_thread(&args[0]);
    for (int t = 1; t < started; t++) pthread_join(th[t], NULL);
    /* the packed copy replaces the file's pages for the matmuls: let the
     * kernel drop them from this process (they stay in the page cache and
     * come back on demand, e.g. for hashing) */
    long page = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < nw; i++) {
        llm_weight *w = ws[i];
        if (!w->packed || w == &m->tok_embd || (m->tied_output && w == &m->output)) continue;
        size_t bytes = llm_ggml_row_size(w->type, (uint64_t)w->cols) * (size_t)w->rows * (w->stride ? (size_t)m->hp.n_expert : 1);
        uintptr_t a = ((uintptr_t)w->data + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
        uintptr_t b = ((uintptr_t)w->data + bytes) & ~((uintptr_t)page - 1);
        if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
    }
    mprotect(base, map, PROT_READ);
    m->packed_base = base;
    m->packed_map = map;
    m->packed_bytes = total;
    m->pack_seconds = now_s() - t0;
    free(items);
    free(ws);
    return LLM_OK;
}

static pthread_mutex_t deferred_mu = PTHREAD_MUTEX_INITIALIZER;

void llm_model_ensure_packed(const llm_model *cm) {
    if (!atomic_load_explicit(&cm->pack_pending, memory_order_acquire)) return;
    /* the packed copy is the model's own lazily built state: the model is
     * const to its contexts, not to this */
    llm_model *m = (llm_model *)cm;
    pthread_mutex_lock(&deferred_mu);
    if (atomic_load_explicit(&m->pack_pending, memory_order_relaxed)) {
        /* a failure leaves every weight on its GGUF rows (the pointers
         * are set only once the copy exists): slower, still right */
        if (llm_model_pack(m, NULL, 0) != LLM_OK) m->packed_bytes = 0;
        atomic_store_explicit(&m->pack_pending, false, memory_order_release);
    }
    pthread_mutex_unlock(&deferred_mu);
}

void llm_model_unpack(llm_model *m) {
    if (!m || !m->packed_base) return;
    munmap(m->packed_base, m->packed_map);
    m->packed_base = NULL;
}
