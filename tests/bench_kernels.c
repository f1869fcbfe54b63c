/* bench_kernels.c — matmul throughput per weight type, SIMD level and thread
 * count: decode (1 token x 4096 x 4096, GB/s of weights) and prefill (512
 * tokens, GFLOP/s), plus a memcpy bandwidth figure (the decode roofline).
 * `--ab`: the GGUF-row kernels against the packed ones on one thread, in
 * thread CPU time, interleaved (usable on a loaded machine).
 * Not a test. Usage: bench_kernels [--quick] [--ab] [--simd ref|avx2|avx512] [type ...] (types: f32 f16 bf16
 * q8_0 q4_0 q4_K q5_K q6_K). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm/kernels.h"
#include "llm/llm.h"

static void pool_nop(void *arg, int ith, int nth) {
    (void)arg;
    (void)ith;
    (void)nth;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return ((float)(*s >> 40) / (float)(1 << 24) - 0.5f) * 0.1f;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Seconds per call of llm_matmul, the best of a few timed repetitions; *cpu
 * gets the best process CPU time of a call (all threads, spinning included),
 * which a loaded machine disturbs much less than the wall clock. */
static double time_matmul(llm_pool *pool, uint32_t t, const void *W, int rows, int cols,
                          const float *X, int n_tok, float *Y, void *work, double budget, double *cpu) {
    llm_matmul(pool, t, W, rows, cols, X, n_tok, Y, work);   /* warm up */
    double best = 1e30, best_cpu = 1e30, t_start = now();
    int reps = 0;
    do {
        double c0 = cpu_now(), t0 = now();
        llm_matmul(pool, t, W, rows, cols, X, n_tok, Y, work);
        double dt = now() - t0, dc = cpu_now() - c0;
        if (dt < best) best = dt;
        if (dc < best_cpu) best_cpu = dc;
        reps++;
    } while (now() - t_start < budget || reps < 2);
    if (cpu) *cpu = best_cpu;
    return best;
}

static double thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Best thread-CPU seconds of one product over `reps` runs. */
static double cpu_mat(const llm_mat *m, const float *X, int n_tok, float *Y, void *work, int reps) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double c0 = thread_cpu();
        llm_matmul_mat(NULL, m, X, n_tok, Y, work);
        double dc = thread_cpu() - c0;
        if (dc < best) best = dc;
    }
    return best;
}

/* --ab: per type, GGUF rows vs packed groups, 1 thread, thread CPU time:
 * prefill 512 x 2048 x 2048 and 512 x 2048 x 5632 (GFLOP per CPU-second),
 * decode 1 x 4096 x 4096 from cache (GB of weights per CPU-second). */
static int run_ab(const uint32_t *types, int n_types, int rounds) {
    const int rows = 4096, cols = 5632, ntok = 512;
    float *Wf = malloc(sizeof(float) * rows * cols), *X = malloc(sizeof(float) * ntok * cols);
    float *Y = malloc(sizeof(float) * ntok * rows);
    uint8_t *Wq = malloc(sizeof(float) * rows * cols), *Wp = NULL;
    void *work = malloc(llm_matmul_work_size(GGML_TYPE_Q8_0, cols, ntok) * 2 + 64);
    if (!Wf || !X || !Y || !Wq || !work || posix_memalign((void **)&Wp, 64, (size_t)rows * cols * 2) != 0) return 1;
    uint64_t s = 42;
    for (size_t i = 0; i < (size_t)rows * cols; i++) Wf[i] = frand(&s);
    for (size_t i = 0; i < (size_t)ntok * cols; i++) X[i] = frand(&s) * 20;
    printf("%-6s %-22s %12s %12s %12s\n", "type", "path", "pp 2048x2048", "pp 5632->2048", "decode GB/s");
    for (int ti = 0; ti < n_types; ti++) {
        uint32_t t = types[ti];
        if (!llm_pack_available(t)) continue;
        const int shapes[3][2] = {{2048, 2048}, {2048, 5632}, {4096, 4096}};
        double res[2][3];
        for (int k = 0; k < 6; k++) res[k / 3][k % 3] = 0;
        for (int round = 0; round < rounds; round++)
            for (int sh = 0; sh < 3; sh++) {
                int r = shapes[sh][0], c = shapes[sh][1];
                llm_quantize(t, Wf, Wq, r, c);
                size_t rs = llm_ggml_row_size(t, c);
                llm_pack_rows(t, Wq, rs, r, c, 0, r, Wp);
                for (int pk = 0; pk < 2; pk++) {
                    llm_mat m = {t, r, c, Wq, pk ? Wp : NULL};
                    if (sh < 2) {
                        double sec = cpu_mat(&m, X, ntok, Y, work, 2);
                        double g = 2.0 * r * c * ntok / sec / 1e9;
                        if (g > res[pk][sh]) res[pk][sh] = g;
                    } else {
                        double sec = cpu_mat(&m, X, 1, Y, work, 20);
                        double g = (double)rs * r / sec / 1e9;
                        if (g > res[pk][sh]) res[pk][sh] = g;
                    }
                }
            }
        for (int pk = 0; pk < 2; pk++)
            printf("%-6s %-22s %9.1f GF %9.1f GF %9.1f\n", llm_type_name(t), pk ? "packed" : "GGUF rows", res[pk][0],
                   res[pk][1], res[pk][2]);
        fflush(stdout);
    }
    free(Wf); free(X); free(Y); free(Wq); free(Wp); free(work);
    return 0;
}

int main(int argc, char **argv) {
    static const uint32_t types_all[] = {GGML_TYPE_Q4_0, GGML_TYPE_Q8_0, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K,
                                         GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_F32};
    const int n_all = (int)(sizeof types_all / sizeof types_all[0]);
    uint32_t types[16];
    int n_types = 0;
    double budget = 0.3;
    int only_level = -1;
    bool ab = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) { budget = 0.1; continue; }
        if (!strcmp(argv[i], "--ab")) { ab = true; continue; }
        if (!strcmp(argv[i], "--simd") && i + 1 < argc) {
            i++;
            for (int lv = 0; lv <= 2; lv++)
                if (!strcmp(argv[i], llm_simd_name((llm_simd)lv))) only_level = lv;
            continue;
        }
        for (int k = 0; k < n_all; k++)
            if (!strcmp(argv[i], llm_type_name(types_all[k])) && n_types < 16) types[n_types++] = types_all[k];
    }
    if (n_types == 0) { memcpy(types, types_all, sizeof types_all); n_types = n_all; }
    if (ab) return run_ab(types, n_types, budget < 0.2 ? 2 : 4);

    const int rows = 4096, cols = 4096, prefill_tok = 512;
    float *Wf = malloc(sizeof(float) * rows * cols);
    float *X = malloc(sizeof(float) * prefill_tok * cols);
    float *Y = malloc(sizeof(float) * prefill_tok * rows);
    void *Wq = malloc(sizeof(float) * rows * cols);
    /* decode from DRAM: copies of the weights cycled through, 256 MiB in all,
     * so no copy is still in cache when it is used again */
    size_t cold_bytes = (size_t)256 << 20;
    uint8_t *Wcold = malloc(cold_bytes);
    void *work = malloc(llm_matmul_work_size(GGML_TYPE_F16, cols, prefill_tok) * 2 + 64);
    if (!Wf || !X || !Y || !Wq || !work || !Wcold) { fprintf(stderr, "out of memory\n"); return 1; }
    uint64_t s = 42;
    for (size_t i = 0; i < (size_t)rows * cols; i++) Wf[i] = frand(&s);
    for (size_t i = 0; i < (size_t)prefill_tok * cols; i++) X[i] = frand(&s) * 20;

    /* memcpy bandwidth: 128 MiB copied between the halves of the cold
     * buffer, larger than any cache */
    {
        size_t sz = cold_bytes / 2;
        memset(Wcold, 1, cold_bytes);
        double best = 1e30;
        for (int r = 0; r < 3; r++) {
            double t0 = now();
            memcpy(Wcold + sz, Wcold, sz);
            double dt = now() - t0;
            if (dt < best) best = dt;
        }
        printf("memcpy 128 MiB: %.1f GB/s (bytes copied per second; the decode roofline)\n", sz / best / 1e9);
    }
    printf("detected SIMD: %s\n", llm_simd_name(llm_simd_detect()));
    {
        llm_pool *p2 = llm_pool_new(2);
        struct { int x; } dummy;
        for (int pi = 0; pi < 2; pi++) {
            llm_pool *pp = pi ? p2 : NULL;
            int reps = 20000;
            double t0 = now();
            for (int i = 0; i < reps; i++) llm_pool_run(pp, pool_nop, &dummy);
            printf("llm_pool_run of an empty job, %d thread%s: %.2f us\n", pi + 1, pi ? "s" : "", (now() - t0) / reps * 1e6);
        }
        llm_pool_free(p2);
    }
    printf("decode: hot = one 4096x4096 matrix again and again (from cache); cold = %d MiB of copies cycled (DRAM)\n",
           (int)(cold_bytes >> 20));
    printf("prefill: wall-clock GFLOP/s, then GFLOP per CPU-second (all threads; robust to a loaded machine)\n");
    printf("%-6s %-7s %3s  %21s  %21s  %32s\n", "type", "simd", "thr", "decode hot", "decode cold",
           "prefill 512x4096x4096   (cpu)");
    llm_pool *pools[2] = {llm_pool_new(1), llm_pool_new(2)};
    for (int ti = 0; ti < n_types; ti++) {
        uint32_t t = types[ti];
        llm_quantize(t, Wf, Wq, rows, cols);
        double wbytes = (double)llm_ggml_row_size(t, cols) * rows;
        int copies = (int)(cold_bytes / (size_t)wbytes);
        for (int c = 0; c < copies; c++) memcpy(Wcold + (size_t)c * (size_t)wbytes, Wq, (size_t)wbytes);
        for (int lv = 0; lv <= (int)llm_simd_detect(); lv++) {
            if (only_level >= 0 && lv != only_level) continue;
            llm_simd_set((llm_simd)lv);
            for (int p = 0; p < 2; p++) {
                double td = time_matmul(pools[p], t, Wq, rows, cols, X, 1, Y, work, budget, NULL);
                double tc = 1e30;
                for (int rep = 0; rep < 3; rep++) {
                    double t0 = now();
                    for (int c = 0; c < copies; c++)
                        llm_matmul(pools[p], t, Wcold + (size_t)c * (size_t)wbytes, rows, cols, X, 1, Y, work);
                    double dt = (now() - t0) / copies;
                    if (dt < tc) tc = dt;
                }
                /* the reference level is slow: prefill it on 256 rows */
                int prow = lv == LLM_SIMD_REF ? 256 : rows;
                double cp = 0;
                double tp = time_matmul(pools[p], t, Wq, prow, cols, X, prefill_tok, Y, work, budget, &cp);
                double flops = 2.0 * prow * cols * prefill_tok;
                printf("%-6s %-7s %3d  %6.3f ms %6.1f GB/s  %6.3f ms %6.1f GB/s  %8.1f ms %7.1f GFLOP/s %7.1f\n",
                       llm_type_name(t), llm_simd_name(lv), p + 1, td * 1e3, wbytes / td / 1e9, tc * 1e3,
                       wbytes / tc / 1e9, tp * 1e3 * rows / prow, flops / tp / 1e9, flops / cp / 1e9);
                fflush(stdout);
            }
        }
    }
    llm_pool_free(pools[0]);
    llm_pool_free(pools[1]);
    free(Wf); free(X); free(Y); free(Wq); free(work); free(Wcold);
    return 0;
}
