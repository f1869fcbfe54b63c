/* bench_index.c — index/ benchmark (not a test): insert throughput, save /
 * load / rebuild times, dense (FAISS) and BM25 (FTS5) search latency p50/p99
 * at N chunks of dimension 256 (random unit vectors, synthetic text).
 *
 *   build/tests/bench_index [N ...] [--factory F]   (default N: 10000 100000) */
#include "index/index.h"

#include <faiss/c_api/utils/distances_c.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DIM 256
#define CHUNKS_PER_DOC 10
#define WORDS_PER_CHUNK 40
#define VOCAB 20000
#define QUERIES 300

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }
static float frand(void) { return (float)((rnd() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f; }
static void unit_vec(float *v) {
    double n = 0;
    for (int i = 0; i < DIM; i++) { v[i] = frand(); n += v[i] * v[i]; }
    for (int i = 0; i < DIM; i++) v[i] = (float)(v[i] / sqrt(n));
}
/* CPU time of the calling thread: with one search thread, the work of a
 * query independent of how busy the shared machine is. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
/* Synthetic word i: pronounceable, Zipf-ish use via squared random index. */
static void word(char *out, size_t cap, unsigned i) {
    static const char *syl[] = {"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "an", "ber", "dor", "fel", "gun", "hal", "ist"};
    size_t o = 0;
    do { o += (size_t)snprintf(out + o, cap - o, "%s", syl[i % 16]); i /= 16; } while (i && o < cap - 4);
}
static unsigned zipf_word(void) { double u = (rnd() >> 11) * (1.0 / 9007199254740992.0); return (unsigned)(u * u * VOCAB); }

static int cmp_d(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
static void pct(double *t, int n, double *p50, double *p99) {
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    *p50 = t[n / 2] * 1e3;
    *p99 = t[(int)(n * 0.99)] * 1e3;
}

static int run(long n_chunks, const char *factory) {
    char dir[] = "/tmp/mrag-bench-index.XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    idx_params p = idx_default_params();
    p.faiss_factory = factory;
    p.search_threads = 0; /* the bench sets OpenMP threads itself */
    idx_store *s = NULL;
    if (idx_open(dir, &p, &s)) { fprintf(stderr, "open: %s\n", idx_errmsg(s)); return 1; }
    long n_docs = n_chunks / CHUNKS_PER_DOC;
    float *vecs = malloc(sizeof(float) * DIM * CHUNKS_PER_DOC);
    char (*texts)[WORDS_PER_CHUNK * 16] = malloc(sizeof *texts * CHUNKS_PER_DOC);
    idx_chunk ch[CHUNKS_PER_DOC];
    /* per-document transactions, as ingestion does; FAISS saved every 100 docs */
    double t0 = now(), t_save = 0;
    for (long d = 0; d < n_docs; d++) {
        for (int c = 0; c < CHUNKS_PER_DOC; c++) {
            size_t o = 0;
            for (int w = 0; w < WORDS_PER_CHUNK; w++) {
                char wd[32];
                word(wd, sizeof wd, zipf_word());
                o += (size_t)snprintf(texts[c] + o, sizeof texts[c] - o, "%s ", wd);
            }
            ch[c] = (idx_chunk){.ordinal = c, .text = texts[c], .text_len = o, .n_tokens = WORDS_PER_CHUNK};
            unit_vec(vecs + c * DIM);
        }
        char uri[64];
        snprintf(uri, sizeof uri, "docs/%06ld.md", d);
        idx_doc doc = {.uri = uri, .type = "md", .size = 4000};
        if (idx_doc_put(s, &doc, ch, CHUNKS_PER_DOC, vecs, DIM, NULL)) { fprintf(stderr, "put: %s\n", idx_errmsg(s)); return 1; }
        if (d % 1000 == 999) {
            double ts = now();
            if (idx_save(s)) { fprintf(stderr, "save: %s\n", idx_errmsg(s)); return 1; }
            t_save += now() - ts;
        }
    }
    double t_ins = now() - t0;
    double ts = now();
    idx_save(s);
    t_save += now() - ts;
    ts = now();
    idx_save(s);
    double t_save_noop = now() - ts;
    ts = now();
    idx_rebuild(s);
    double t_rebuild = now() - ts;
    idx_close(s);
    ts = now();
    if (idx_open(dir, &p, &s) || idx_notice(s)) { fprintf(stderr, "reopen: %s %s\n", idx_errmsg(s), idx_notice(s) ? idx_notice(s) : ""); return 1; }
    double t_open = now() - ts;

    double *lat = malloc(sizeof(double) * QUERIES);
    float q[DIM];
    idx_hit hits[10];
    int nh;
    /* dense: FAISS BLAS threshold (20 = FAISS default, 1 = mrag) x OpenMP
     * threads for the query (2 = all cores, 1 = mrag's default) */
    double p50[5], p99[5], cpu50[4], cpu99[4];
    double *cpu = malloc(sizeof(double) * QUERIES);
    int thresholds[4] = {20, 1, 20, 1}, threads[4] = {2, 2, 1, 1};
    int omp_default = omp_get_max_threads();
    for (int t = 0; t < 4; t++) {
        faiss_set_distance_compute_blas_threshold(thresholds[t]);
        omp_set_num_threads(threads[t]);
        for (int i = 0; i < 10; i++) { unit_vec(q); idx_search_dense(s, q, DIM, 10, NULL, hits, &nh); }
        for (int i = 0; i < QUERIES; i++) {
            unit_vec(q);
            double a = now(), ca = cpu_now();
            if (idx_search_dense(s, q, DIM, 10, NULL, hits, &nh) || nh != 10) { fprintf(stderr, "dense: %s\n", idx_errmsg(s)); return 1; }
            lat[i] = now() - a;
            cpu[i] = cpu_now() - ca;
        }
        pct(lat, QUERIES, &p50[t], &p99[t]);
        pct(cpu, QUERIES, &cpu50[t], &cpu99[t]);
    }
    omp_set_num_threads(omp_default);
    faiss_set_distance_compute_blas_threshold(1);
    long found = 0;
    for (int i = 0; i < QUERIES; i++) {
        char qs[128];
        size_t o = 0;
        for (int w = 0; w < 3; w++) {
            char wd[32];
            word(wd, sizeof wd, (unsigned)(rnd() % VOCAB));
            o += (size_t)snprintf(qs + o, sizeof qs - o, "%s ", wd);
        }
        double a = now();
        if (idx_search_bm25(s, qs, o, 10, NULL, hits, &nh)) { fprintf(stderr, "bm25: %s\n", idx_errmsg(s)); return 1; }
        lat[i] = now() - a;
        found += nh;
    }
    pct(lat, QUERIES, &p50[4], &p99[4]);
    idx_counts c;
    idx_get_counts(s, &c);
    idx_close(s);
    double la[3] = {0};
    if (getloadavg(la, 3) < 1) la[0] = -1;
    printf("| %ld | %s | %.0f chunks/s (%.0f docs/s) | %.2f s | %.2f s | %.3f s | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %.1f |\n",
           c.chunks, factory ? factory : "Flat", n_chunks / t_ins, n_docs / t_ins, t_save, t_rebuild, t_open,
           p50[0], p99[0], p50[1], p99[1], p50[2], p99[2], p50[3], p99[3], cpu50[2], cpu50[3], p50[4], p99[4], la[0]);
    (void)t_save_noop;
    fflush(stdout);
    (void)found;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) { /* best effort */ }
    free(vecs);
    free(texts);
    free(lat);
    free(cpu);
    return 0;
}

int main(int argc, char **argv) {
    const char *factory = NULL;
    long sizes[8];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--factory") == 0 && i + 1 < argc) factory = argv[++i];
        else if (n < 8) sizes[n++] = strtol(argv[i], NULL, 10);
    }
    if (!n) { sizes[0] = 10000; sizes[1] = 100000; n = 2; }
    printf("| chunks | FAISS | insert (1 txn per 10-chunk doc) | FAISS saves (every 1000 docs + end) | rebuild + save | open | "
           "dense p50/p99 ms: BLAS thr 20, 2 thr | thr 1, 2 thr | thr 20, 1 thr | thr 1, 1 thr (mrag) | "
           "dense CPU ms p50: thr 20, 1 thr / thr 1, 1 thr | BM25 p50/p99 ms | load avg |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++)
        if (run(sizes[i], factory)) return 1;
    return 0;
}
