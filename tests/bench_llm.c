/* bench_llm.c — prefill and decode speed of mrag's engine beside llama.cpp's
 * (through tests/oracle) on the same GGUF files and thread count, with the
 * decode bandwidth roofline. Run by `make bench-llm` (tests/bench_llm.sh). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "llm/ggml.h"
#include "llm/llm.h"
#include "llm/model.h"
#include "tests/test.h"

#define MAX_MODELS 8

typedef struct {
    const char *path;
    char type[16];
    double params_m, file_mb;
    double bytes_per_tok;           /* weight bytes one decoded token reads */
    double pp_mrag, tg_mrag;        /* tokens/s */
    double pp_ref, tg_ref;          /* llama.cpp, 0 when not run */
    double sample_us;               /* one llm_sampler_sample, default chain */
    int ok;
} bench_row;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------ memory-copy bandwidth */
typedef struct {
    char *dst;
    const char *src;
    size_t n;
} copy_job;

static void *copy_thread(void *arg) {
    copy_job *j = arg;
    memcpy(j->dst, j->src, j->n);
    return NULL;
}

/* Best-of-5 memcpy rate (bytes copied per second) over 256 MiB with
 * n_threads threads each copying its own slice. */
static double memcpy_bandwidth(int n_threads) {
    const size_t size = (size_t)256 << 20;
    char *src = malloc(size), *dst = malloc(size);
    if (!src || !dst) {
        free(src);
        free(dst);
        return 0;
    }
    memset(src, 1, size);
    memset(dst, 2, size);
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        pthread_t th[16];
        copy_job jobs[16];
        size_t slice = size / (size_t)n_threads;
        double t0 = now_s();
        for (int i = 0; i < n_threads; i++) {
            jobs[i] = (copy_job){dst + i * slice, src + i * slice, slice};
            if (i > 0) pthread_create(&th[i], NULL, copy_thread, &jobs[i]);
        }
        copy_thread(&jobs[0]);
        for (int i = 1; i < n_threads; i++) pthread_join(th[i], NULL);
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    free(src);
    free(dst);
    return (double)size / best;
}

/* ----------------------------------------------------------- mrag side */
static uint64_t lcg = 1234567;
static int32_t rand_token(int n_vocab) {
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return 3 + (int32_t)((lcg >> 33) % (uint64_t)(n_vocab - 3));
}

/* Measures row r: reps timed runs after one warm-up, each a pp-token
 * prefill then tg single-token decodes of random tokens (no sampling, as
 * the oracle's bench does). */
static int bench_mrag(bench_row *r, int threads, int pp, int tg, int reps) {
    char err[512];
    llm_model *m = NULL;
    llm_context *c = NULL;
    int32_t *toks = NULL;
    int rc = 1;
    llm_model_params mp = llm_model_default_params();
    if (llm_model_load(r->path, &mp, &m, err, sizeof err) != LLM_OK) {
        fprintf(stderr, "bench_llm: %s\n", err);
        goto done;
    }
    llm_model_info in;
    llm_model_get_info(m, &in);
    r->params_m = (double)in.n_params / 1e6;
    r->file_mb = (double)in.file_size / 1e6;
    /* a decoded token reads every weight once, except token_embd, of which
     * it reads one row (unless token_embd is also the output head) */
    size_t embd_row = llm_ggml_row_size(m->tok_embd.type, (uint64_t)m->tok_embd.cols);
    r->bytes_per_tok = (double)in.weight_bytes;
    if (!in.tied_output) r->bytes_per_tok -= (double)embd_row * (m->tok_embd.rows - 1);
    snprintf(r->type, sizeof r->type, "%s", llm_type_name(m->layers[0].wq.type));

    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = pp + tg + 8;
    cp.n_batch = pp;
    cp.n_threads = threads;
    if (llm_context_new(m, &cp, &c, err, sizeof err) != LLM_OK) {
        fprintf(stderr, "bench_llm: %s\n", err);
        goto done;
    }
    toks = malloc((size_t)pp * sizeof *toks);
    if (!toks) goto done;
    double pp_sum = 0, tg_sum = 0;
    for (int rep = 0; rep <= reps; rep++) {
        llm_context_reset(c);
        toks[0] = llm_token_bos(m) >= 0 ? llm_token_bos(m) : 1;
        for (int i = 1; i < pp; i++) toks[i] = rand_token(in.n_vocab);
        double t0 = now_s();
        if (llm_decode(c, toks, pp) != LLM_OK) {
            fprintf(stderr, "bench_llm: %s\n", llm_context_error(c));
            goto done;
        }
        double t1 = now_s();
        for (int i = 0; i < tg; i++) {
            int32_t t = rand_token(in.n_vocab);
            if (llm_decode(c, &t, 1) != LLM_OK) {
                fprintf(stderr, "bench_llm: %s\n", llm_context_error(c));
                goto done;
            }
        }
        double t2 = now_s();
        if (rep > 0) {      /* rep 0 warms the caches and the page mapping */
            pp_sum += t1 - t0;
            tg_sum += t2 - t1;
        }
    }
    r->pp_mrag = pp * reps / pp_sum;
    r->tg_mrag = tg * reps / tg_sum;

    /* the sampler's share: the default chain over the last logits */
    llm_sampler_params sp = llm_sampler_default_params();
    sp.seed = 1;
    llm_sampler *smp = llm_sampler_new(&sp, in.n_vocab);
    const float *logits = llm_get_logits(c, -1);
    if (smp && logits) {
        /* thread CPU time: on a shared machine wall time would mostly
         * measure other processes */
        struct timespec a, b;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        for (int i = 0; i < 200; i++) llm_sampler_accept(smp, llm_sampler_sample(smp, logits));
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        r->sample_us = ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9) / 200 * 1e6;
    }
    llm_sampler_free(smp);
    rc = 0;
done:
    free(toks);
    llm_context_free(c);
    llm_model_free(m);
    return rc;
}

/* -------------------------------------------------------- llama.cpp side */
static double json_num(const char *js, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(js, pat);
    return p ? strtod(p + strlen(pat), NULL) : 0;
}

static void bench_oracle(bench_row *r, int threads, int pp, int tg, int reps) {
    struct stat st;
    if (stat("tests/oracle/node_modules/node-llama-cpp", &st) != 0) {
        fprintf(stderr, "bench_llm: the oracle is not installed (make oracle): llama.cpp columns left empty\n");
        return;
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "node tests/oracle/oracle.mjs bench --model %s --pp %d --tg %d --threads %d --reps %d 2>/dev/null",
             test_shq(r->path), pp, tg, threads, reps);
    int status = 0;
    char *out = test_run_capture(cmd, &status);
    if (!out || status != 0) {
        fprintf(stderr, "bench_llm: oracle failed (exit %d): %s\n", status, cmd);
        free(out);
        return;
    }
    r->pp_ref = json_num(out, "pp_tok_s");
    r->tg_ref = json_num(out, "tg_tok_s");
    free(out);
}

/* A positive int option value, or -1. */
static int arg_int(const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    return (*s && !*end && v > 0 && v < (1 << 20)) ? (int)v : -1;
}

/* The 1-minute load average ("?" when unreadable): the machine is shared,
 * and wall-clock figures only mean something next to it. */
static void load_avg(char *out, size_t cap) {
    snprintf(out, cap, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return;
    char buf[64];
    if (fgets(buf, sizeof buf, f)) {
        char *sp = strchr(buf, ' ');
        if (sp) *sp = 0;
        snprintf(out, cap, "%.16s", buf);
    }
    fclose(f);
}

static void usage(void) {
    fprintf(stderr, "usage: bench_llm [--threads N] [--pp N] [--tg N] [--reps R] [--no-oracle] MODEL.gguf...\n");
}

int main(int argc, char **argv) {
    int threads = 2, pp = 512, tg = 128, reps = 2;
    bool oracle = true;
    bench_row rows[MAX_MODELS];
    int n = 0;
    memset(rows, 0, sizeof rows);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = arg_int(argv[++i]);
        else if (!strcmp(argv[i], "--pp") && i + 1 < argc) pp = arg_int(argv[++i]);
        else if (!strcmp(argv[i], "--tg") && i + 1 < argc) tg = arg_int(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = arg_int(argv[++i]);
        else if (!strcmp(argv[i], "--no-oracle")) oracle = false;
        else if (argv[i][0] == '-') { usage(); return 2; }
        else if (n < MAX_MODELS) rows[n++].path = argv[i];
    }
    if (n == 0 || threads < 1 || threads > 16 || pp < 1 || tg < 1 || reps < 1) {
        usage();
        return 2;
    }
    char load_before[32], load_after[32];
    load_avg(load_before, sizeof load_before);
    fprintf(stderr, "bench_llm: measuring memcpy bandwidth...\n");
    double bw1 = memcpy_bandwidth(1), bwn = memcpy_bandwidth(threads);
    double bw = bwn > bw1 ? bwn : bw1;
    for (int i = 0; i < n; i++) {
        fprintf(stderr, "bench_llm: mrag on %s (pp %d, tg %d, %d threads, %d reps)...\n", rows[i].path, pp, tg,
                threads, reps);
        rows[i].ok = bench_mrag(&rows[i], threads, pp, tg, reps) == 0;
        if (rows[i].ok && oracle) {
            fprintf(stderr, "bench_llm: llama.cpp on %s...\n", rows[i].path);
            bench_oracle(&rows[i], threads, pp, tg, reps);
        }
    }

    load_avg(load_after, sizeof load_after);
    printf("\nload average (1 min) %s before, %s after (2 cores shared with other work)\n", load_before, load_after);
    printf("memcpy bandwidth: %.2f GB/s (1 thread), %.2f GB/s (%d threads); roofline uses %.2f GB/s\n",
           bw1 / 1e9, bwn / 1e9, threads, bw / 1e9);
    printf("threads %d, prefill = %d-token prompt, decode = %d tokens after it, mean of %d runs after a warm-up\n\n",
           threads, pp, tg, reps);
    printf("| model | weights | params | prefill tok/s mrag | llama.cpp | ratio | decode tok/s mrag | llama.cpp | ratio "
           "| MB/token | roofline tok/s | mrag share | llama.cpp share | sampler us/token |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        bench_row *r = &rows[i];
        const char *base = strrchr(r->path, '/');
        base = base ? base + 1 : r->path;
        if (!r->ok) {
            printf("| %s | failed | | | | | | | | | | | | |\n", base);
            continue;
        }
        double roof = bw / r->bytes_per_tok;
        char ref_pp[32] = "n/a", ref_tg[32] = "n/a", rat_pp[32] = "n/a", rat_tg[32] = "n/a", ref_share[32] = "n/a";
        if (r->pp_ref > 0) {
            snprintf(ref_pp, sizeof ref_pp, "%.1f", r->pp_ref);
            snprintf(rat_pp, sizeof rat_pp, "%.2f", r->pp_mrag / r->pp_ref);
        }
        if (r->tg_ref > 0) {
            snprintf(ref_tg, sizeof ref_tg, "%.2f", r->tg_ref);
            snprintf(rat_tg, sizeof rat_tg, "%.2f", r->tg_mrag / r->tg_ref);
            snprintf(ref_share, sizeof ref_share, "%.0f%%", 100 * r->tg_ref / roof);
        }
        printf("| %s | %s | %.1f M | %.1f | %s | %s | %.2f | %s | %s | %.1f | %.2f | %.0f%% | %s | %.0f |\n", base,
               r->type, r->params_m, r->pp_mrag, ref_pp, rat_pp, r->tg_mrag, ref_tg, rat_tg, r->bytes_per_tok / 1e6,
               roof, 100 * r->tg_mrag / roof, ref_share, r->sample_us);
    }
    for (int i = 0; i < n; i++)
        if (!rows[i].ok) return 1;
    return 0;
}
