/* pool.c — a persistent thread pool: workers are created once and wait for
 * the next job by spinning briefly, then sleeping on a futex, so the ~7
 * matmuls of a decode step do not each pay a thread wake-up. */
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "llm/kernels.h"

/* Pause iterations before a waiting thread goes to sleep: ~50 us (a pause
 * is 20-140 cycles), longer than the gap between two matmuls of one decode
 * step but short enough not to burn a shared core between tokens. Every
 * POOL_YIELD iterations the spinner yields, so that when threads outnumber
 * free cores the thread being waited for gets to run. */
#define POOL_SPIN 2500
#define POOL_YIELD 256

typedef struct {
    llm_pool *pool;
    int ith;
} pool_worker;

struct llm_pool {
    int n;                              /* threads including the caller */
    pthread_t *threads;                 /* n - 1 workers */
    pool_worker *workers;
    void (*fn)(void *arg, int ith, int nth);
    void *arg;
    _Atomic int gen;                    /* job generation (futex word) */
    _Atomic int pending;                /* workers still running the job (futex word) */
    _Atomic int sleepers;               /* workers asleep on gen */
    _Atomic int caller_sleeping;        /* the caller is asleep on pending */
    _Atomic int stop;
};

static void cpu_relax(int spins) {
    if (spins % POOL_YIELD == 0) {
        sched_yield();
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void futex_wait(_Atomic int *addr, int val) {
    syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic int *addr) {
    syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Worker loop: waits for gen to move past the last job seen, runs its share,
 * and wakes the caller when it is the last to finish. */
static void *pool_main(void *p_) {
    pool_worker *w = p_;
    llm_pool *p = w->pool;
    int seen = 0;
    for (;;) {
        int g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (++spins < POOL_SPIN) {
                cpu_relax(spins);
                continue;
            }
            atomic_fetch_add(&p->sleepers, 1);
            if (atomic_load(&p->gen) == seen) futex_wait(&p->gen, seen);
            atomic_fetch_sub(&p->sleepers, 1);
            spins = 0;
        }
        seen = g;
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        p->fn(p->arg, w->ith, p->n);
        if (atomic_fetch_sub(&p->pending, 1) == 1 &&
            atomic_load(&p->caller_sleeping))
            futex_wake(&p->pending);
    }
    return NULL;
}

llm_pool *llm_pool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 256) n_threads = 256;
    llm_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->threads || !p->workers) {
            free(p->threads);
            free(p->workers);
            free(p);
            return NULL;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            p->workers[i].pool = p;
            p->workers[i].ith = i + 1;
            if (pthread_create(&p->threads[i], NULL, pool_main, &p->workers[i]) != 0) {
                /* run with the threads that did start */
                p->n = i + 1;
                break;
            }
        }
    }
    return p;
}

void llm_pool_free(llm_pool *p) {
    if (!p) return;
    if (p->n > 1) {
        atomic_store(&p->stop, 1);
        atomic_fetch_add(&p->gen, 1);
        futex_wake(&p->gen);
        for (int i = 0; i < p->n - 1; i++) pthread_join(p->threads[i], NULL);
    }
    free(p->threads);
    free(p->workers);
    free(p);
}

int llm_pool_size(const llm_pool *p) {
    return p ? p->n : 1;
}

void llm_pool_run(llm_pool *p, void (*fn)(void *arg, int ith, int nth), void *arg) {
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1);           /* seq_cst: publishes fn/arg */
    if (atomic_load(&p->sleepers) > 0) futex_wake(&p->gen);
    fn(arg, 0, p->n);
    int spins = 0;
    int left;
    while ((left = atomic_load_explicit(&p->pending, memory_order_acquire)) != 0) {
        if (++spins < POOL_SPIN) {
            cpu_relax(spins);
            continue;
        }
        atomic_store(&p->caller_sleeping, 1);
        left = atomic_load(&p->pending);
        if (left != 0) futex_wait(&p->pending, left);
        atomic_store(&p->caller_sleeping, 0);
        spins = 0;
    }
}
