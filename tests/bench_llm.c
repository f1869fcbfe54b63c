/* bench_llm.c — prefill and decode speed of mrag's engine beside llama.cpp's
 * own llama-bench (built natively by `make llama-bench`) on the same GGUF
 * files and thread count, interleaved per file, with the measured read
 * bandwidth and each engine's decode share of it. Refuses to report while
 * the machine is busy. Run by `make bench-llm` (tests/bench_llm.sh). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "llm/ggml.h"
#include "llm/gguf.h"
#include "llm/llm.h"
#include "llm/model.h"
#include "tests/test.h"

#define MAX_MODELS 8
#define MAX_REPS 16

typedef struct {
    const char *path;
    char types[64];                 /* weight types of the file, most bytes first */
    double file_mb;
    double bytes_per_tok;           /* bytes one decoded token reads (weights + KV) */
    char mrag_err[256];             /* why mrag could not run the file ("" = it did) */
    double pp_mrag[MAX_REPS], tg_mrag[MAX_REPS];    /* tokens/s per rep */
    double pp_ref[MAX_REPS], tg_ref[MAX_REPS];
    int n_mrag, n_ref;
    char ref_err[256];
    double sample_us;               /* one llm_sampler_sample, default chain */
    int disturbed;                  /* measurements taken while others used the cores */
} bench_row;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------ is the machine quiet?
 * CPU time used by everything on the machine, from /proc/stat (all states
 * but idle and iowait; steal counts: the hypervisor took the core), minus
 * this process's and its waited-for children's. */
static double machine_busy_s(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    unsigned long long v[10] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 8) return -1;
    /* user nice system idle iowait irq softirq steal (guest is inside user) */
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return (double)busy / (double)sysconf(_SC_CLK_TCK);
}

static double own_cpu_s(void) {
    struct rusage a, b;
    getrusage(RUSAGE_SELF, &a);
    getrusage(RUSAGE_CHILDREN, &b);
    return (double)(a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec + b.ru_stime.tv_sec) +
           (double)(a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec + b.ru_stime.tv_usec) * 1e-6;
}

typedef struct {
    double t, busy, own;
} cpu_mark;

static cpu_mark cpu_mark_now(void) {
    cpu_mark m = {now_s(), machine_busy_s(), own_cpu_s()};
    return m;
}

/* Cores' worth of CPU that other processes used since m (negative when
 * /proc/stat is unreadable). /proc/stat counts in clock ticks, so short
 * intervals carry +-1 tick of noise per core. */
static double others_cores_since(cpu_mark m) {
    cpu_mark e = cpu_mark_now();
    if (m.busy < 0 || e.busy < 0 || e.t - m.t <= 0) return -1;
    double o = ((e.busy - m.busy) - (e.own - m.own)) / (e.t - m.t);
    return o < 0 ? 0 : o;
}

static double load_avg1(void) {
    FILE *f = fopen("/proc/loadavg", "r");
    double l = -1;
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

/* The processes using the most CPU now, for the refusal message. */
static void print_top_processes(void) {
    int st = 0;
    char *out = test_run_capture("ps -eo pcpu,pid,comm --sort=-pcpu 2>/dev/null | head -6", &st);
    if (out && *out) fprintf(stderr, "%s", out);
    free(out);
}

/* Waits up to wait_s seconds for the 1-minute load average to fall under
 * max_load and for a 3-second sample to show others using under
 * max_others cores. Returns 1 when quiet. */
static int wait_quiet(double max_load, double max_others, int wait_s) {
    double t0 = now_s();
    for (;;) {
        cpu_mark m = cpu_mark_now();
        sleep(3);
        double others = others_cores_since(m), load = load_avg1();
        if (load >= 0 && load <= max_load && others >= 0 && others <= max_others) {
            fprintf(stderr, "bench_llm: the machine is quiet (load %.2f, other processes %.2f cores)\n", load, others);
            return 1;
        }
        if (now_s() - t0 > wait_s) {
            fprintf(stderr,
                    "bench_llm: refusing to measure: the machine is busy (1-minute load average %.2f, limit %.2f; "
                    "other processes use %.2f cores, limit %.2f) after waiting %d s.\n"
                    "bench_llm: llama.cpp's spinning threads collapse under load, so its figures and the ratios "
                    "would be wrong. Busiest processes:\n",
                    load, max_load, others, max_others, wait_s);
            print_top_processes();
            fprintf(stderr, "bench_llm: rerun when the machine is idle (or BENCH_FORCE=1 for a run marked "
                            "not-for-publication)\n");
            return 0;
        }
        fprintf(stderr, "bench_llm: waiting for a quiet machine (load %.2f, others %.2f cores)...\n", load, others);
        sleep(7);
    }
}

/* --------------------------------------------------- read bandwidth
 * A read-only scan (every 64-byte line loaded once, summed so the loads
 * cannot be dropped), not memcpy: decode only reads its weights, and a
 * copy's writes cost bandwidth a read does not. */
typedef struct {
    const uint64_t *p;
    size_t n;           /* uint64 words */
    uint64_t sum;
} scan_job;

__attribute__((target("avx512f"))) static uint64_t scan_avx512(const uint64_t *p, size_t n) {
    typedef long long v8 __attribute__((vector_size(64)));
    v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 += *(const v8 *)(p + i);
        a1 += *(const v8 *)(p + i + 8);
        a2 += *(const v8 *)(p + i + 16);
        a3 += *(const v8 *)(p + i + 24);
    }
    v8 s = a0 + a1 + a2 + a3;
    uint64_t r = 0;
    for (int k = 0; k < 8; k++) r += (uint64_t)s[k];
    for (; i < n; i++) r += p[i];
    return r;
}

static uint64_t scan_plain(const uint64_t *p, size_t n) {
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 += p[i];
        a1 += p[i + 1];
        a2 += p[i + 2];
        a3 += p[i + 3];
    }
    for (; i < n; i++) a0 += p[i];
    return a0 + a1 + a2 + a3;
}

static int have_avx512;

static void *scan_thread(void *arg) {
    scan_job *j = arg;
    j->sum = have_avx512 ? scan_avx512(j->p, j->n) : scan_plain(j->p, j->n);
    return NULL;
}

/* Best-of-5 read rate in bytes/s over 512 MiB (far beyond the caches), the
 * buffer split evenly over n_threads threads. */
static double read_bandwidth(int n_threads) {
    const size_t size = (size_t)512 << 20;
    uint64_t *buf = NULL;
    if (posix_memalign((void **)&buf, 64, size) != 0) return 0;
    memset(buf, 1, size);
    __builtin_cpu_init();
    have_avx512 = __builtin_cpu_supports("avx512f");
    double best = 1e30;
    uint64_t sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        pthread_t th[16];
        scan_job jobs[16];
        size_t words = size / 8, slice = words / (size_t)n_threads;
        double t0 = now_s();
        for (int i = 0; i < n_threads; i++) {
            jobs[i] = (scan_job){buf + (size_t)i * slice, slice, 0};
            if (i > 0 && pthread_create(&th[i], NULL, scan_thread, &jobs[i]) != 0) {
                free(buf);
                return 0;
            }
        }
        scan_thread(&jobs[0]);
        for (int i = 1; i < n_threads; i++) pthread_join(th[i], NULL);
        double t = now_s() - t0;
        for (int i = 0; i < n_threads; i++) sink += jobs[i].sum;
        if (t < best) best = t;
    }
    free(buf);
    if (sink == 42) fprintf(stderr, " ");       /* keeps the sums alive */
    return (double)size / best;
}

/* ------------------------------------------------------- file facts */

/* Types of the file's 2-D weights, most bytes first ("q4_K+q6_K"), its
 * size, and the bytes one decoded token reads at KV depth `depth`: every
 * weight except token_embd (one row of it), plus the F16 keys and values
 * of depth positions in every layer. Returns 0, or -1 when the file is not
 * a readable GGUF. */
static int file_facts(bench_row *r, double depth) {
    char err[256];
    gguf_file *f = NULL;
    if (llm_gguf_open(r->path, &f, err, sizeof err) != 0) {
        fprintf(stderr, "bench_llm: %s\n", err);
        return -1;
    }
    double by_type[GGML_TYPE_COUNT] = {0};
    double total = 0, embd_row = 0;
    uint64_t n_layer = 0, kv_dim = 0, n_embd = 0, n_head = 0, n_head_kv = 0;
    for (uint64_t i = 0; i < llm_gguf_tensor_count(f); i++) {
        const gguf_tensor *t = llm_gguf_tensor_at(f, i);
        if (t->type < GGML_TYPE_COUNT && t->n_dims >= 2) by_type[t->type] += (double)t->nbytes;
        if (llm_gguf_str_eq(t->name, "token_embd.weight")) {
            embd_row = (double)t->nbytes / (double)t->ne[1];
            total -= (double)t->nbytes - embd_row;
        }
        total += (double)t->nbytes;
    }
    llm_gguf_get_u64(f, "llama.block_count", &n_layer);
    llm_gguf_get_u64(f, "llama.embedding_length", &n_embd);
    llm_gguf_get_u64(f, "llama.attention.head_count", &n_head);
    n_head_kv = n_head;
    llm_gguf_get_u64(f, "llama.attention.head_count_kv", &n_head_kv);
    if (n_head) kv_dim = n_embd / n_head * n_head_kv;
    /* a tied output head reads all of token_embd */
    if (!llm_gguf_find_tensor(f, "output.weight")) {
        const gguf_tensor *te = llm_gguf_find_tensor(f, "token_embd.weight");
        if (te) total += (double)te->nbytes - embd_row;
    }
    r->bytes_per_tok = total + depth * (double)n_layer * (double)kv_dim * 2 * 2;
    r->file_mb = (double)llm_gguf_file_size(f) / 1e6;
    r->types[0] = 0;
    for (int k = 0; k < 3; k++) {
        int best = -1;
        for (int t = 0; t < GGML_TYPE_COUNT; t++)
            if (by_type[t] > 0 && (best < 0 || by_type[t] > by_type[best])) best = t;
        if (best < 0) break;
        size_t n = strlen(r->types);
        snprintf(r->types + n, sizeof r->types - n, "%s%s", n ? "+" : "", llm_type_name((uint32_t)best));
        by_type[best] = 0;
    }
    llm_gguf_close(f);
    return 0;
}

/* ----------------------------------------------------------- mrag side */
static uint64_t lcg = 1234567;
static int32_t rand_token(int n_vocab) {
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return 3 + (int32_t)((lcg >> 33) % (uint64_t)(n_vocab - 3));
}

typedef struct {
    llm_model *m;
    llm_context *c;
    int32_t *toks;
    int n_vocab;
} mrag_run;

static void mrag_close(mrag_run *x) {
    free(x->toks);
    llm_context_free(x->c);
    llm_model_free(x->m);
    memset(x, 0, sizeof *x);
}

/* Loads the file and makes a context for pp + tg tokens; on failure fills
 * r->mrag_err (the loader's message, e.g. a type mrag does not run yet). */
static bool no_repack;

static int mrag_open(mrag_run *x, bench_row *r, int threads, int pp, int tg) {
    char err[512];
    memset(x, 0, sizeof *x);
    llm_model_params mp = llm_model_default_params();
    mp.no_repack = no_repack;
    if (llm_model_load(r->path, &mp, &x->m, err, sizeof err) != LLM_OK) {
        snprintf(r->mrag_err, sizeof r->mrag_err, "%.250s", err);
        return -1;
    }
    llm_model_info in;
    llm_model_get_info(x->m, &in);
    x->n_vocab = in.n_vocab;
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = pp + tg + 8;
    cp.n_batch = pp;
    cp.n_threads = threads;
    if (llm_context_new(x->m, &cp, &x->c, err, sizeof err) != LLM_OK) {
        snprintf(r->mrag_err, sizeof r->mrag_err, "%.250s", err);
        mrag_close(x);
        return -1;
    }
    x->toks = malloc((size_t)pp * sizeof *x->toks);
    if (!x->toks) {
        snprintf(r->mrag_err, sizeof r->mrag_err, "out of memory");
        mrag_close(x);
        return -1;
    }
    return 0;
}

/* One run: a pp-token prompt (BOS + random ids) in one batch, then tg
 * single-token decodes of random ids after it (no sampling, as
 * llama-bench does). */
static int mrag_measure(mrag_run *x, int pp, int tg, double *pp_rate, double *tg_rate) {
    llm_context_reset(x->c);
    x->toks[0] = llm_token_bos(x->m) >= 0 ? llm_token_bos(x->m) : 1;
    for (int i = 1; i < pp; i++) x->toks[i] = rand_token(x->n_vocab);
    double t0 = now_s();
    if (llm_decode(x->c, x->toks, pp) != LLM_OK) {
        fprintf(stderr, "bench_llm: %s\n", llm_context_error(x->c));
        return -1;
    }
    double t1 = now_s();
    for (int i = 0; i < tg; i++) {
        int32_t t = rand_token(x->n_vocab);
        if (llm_decode(x->c, &t, 1) != LLM_OK) {
            fprintf(stderr, "bench_llm: %s\n", llm_context_error(x->c));
            return -1;
        }
    }
    double t2 = now_s();
    *pp_rate = pp / (t1 - t0);
    *tg_rate = tg / (t2 - t1);
    return 0;
}

/* The sampler's cost: the default chain over the last logits, in thread
 * CPU time. */
static double mrag_sampler_us(mrag_run *x) {
    llm_sampler_params sp = llm_sampler_default_params();
    sp.seed = 1;
    llm_sampler *smp = llm_sampler_new(&sp, x->n_vocab);
    const float *logits = llm_get_logits(x->c, -1);
    double us = 0;
    if (smp && logits) {
        struct timespec a, b;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        for (int i = 0; i < 200; i++) llm_sampler_accept(smp, llm_sampler_sample(smp, logits));
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        us = ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9) / 200 * 1e6;
    }
    llm_sampler_free(smp);
    return us;
}

/* -------------------------------------------------------- llama.cpp side */

/* The number after "key": in a JSON line, or 0. */
static double json_num(const char *js, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(js, pat);
    if (!p) return 0;
    p += strlen(pat);
    while (*p == ' ') p++;
    return strtod(p, NULL);
}

/* The string after "key": in a JSON line into out (no escapes handled:
 * the fields read are plain). */
static void json_str(const char *js, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    out[0] = 0;
    const char *p = strstr(js, pat);
    if (!p) return;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p == '"') {
        p++;
        size_t n = 0;
        while (p[n] && p[n] != '"' && n + 1 < cap) n++;
        memcpy(out, p, n);
        out[n] = 0;
    } else {
        size_t n = 0;
        while (p[n] && p[n] != ',' && p[n] != '}' && n + 1 < cap) n++;
        memcpy(out, p, n);
        out[n] = 0;
    }
}

static char ref_build[64], ref_fa[16], ref_ubatch[16], ref_type_k[16];

/* One llama-bench test (-r 1, its own warm-up first): a pp-token prompt
 * from an empty context when tg == 0, else tg decoded tokens after a
 * depth-token prompt (llama-bench -d, not timed). Returns tokens/s, or 0
 * with r->ref_err set. */
static double llama_measure(const char *lb, bench_row *r, int threads, int pp, int tg, int depth) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s -m %s -t %d -p %d -n %d -d %d -r 1 -o jsonl 2>&1", test_shq(lb), test_shq(r->path),
             threads, pp, tg, depth);
    int status = 0;
    char *out = test_run_capture(cmd, &status);
    double ts = 0;
    const char *line = out ? strstr(out, "{\"build_commit\"") : NULL;
    if (!out || status != 0 || !line) {
        if (out) {
            /* llama.cpp's own last words name the problem */
            size_t n = strlen(out);
            const char *tail = n > 200 ? out + n - 200 : out;
            snprintf(r->ref_err, sizeof r->ref_err, "llama-bench failed (exit %d): %s", status, tail);
        } else {
            snprintf(r->ref_err, sizeof r->ref_err, "llama-bench could not be started");
        }
        free(out);
        return 0;
    }
    ts = json_num(line, "avg_ts");
    if (!ref_build[0]) {
        json_str(line, "build_commit", ref_build, sizeof ref_build);
        json_str(line, "flash_attn", ref_fa, sizeof ref_fa);
        json_str(line, "n_ubatch", ref_ubatch, sizeof ref_ubatch);
        json_str(line, "type_k", ref_type_k, sizeof ref_type_k);
    }
    free(out);
    return ts;
}

/* ------------------------------------------------------------- report */

static double mean(const double *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return n ? s / n : 0;
}

static void spread(const double *v, int n, char *out, size_t cap) {
    double lo = 1e30, hi = 0;
    for (int i = 0; i < n; i++) {
        if (v[i] < lo) lo = v[i];
        if (v[i] > hi) hi = v[i];
    }
    if (n > 1) snprintf(out, cap, " (%.0f–%.0f)", lo, hi);
    else out[0] = 0;
}

/* A positive int option value, or -1. */
static int arg_int(const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    return (*s && !*end && v > 0 && v < (1 << 20)) ? (int)v : -1;
}

static void usage(void) {
    fprintf(stderr,
            "usage: bench_llm [--threads N] [--pp N] [--tg N] [--reps R] [--llama-bench PATH]\n"
            "                 [--max-load X] [--max-others X] [--wait S] [--force] MODEL.gguf...\n"
            "  --pp/--tg: prompt tokens, and tokens decoded after that prompt (defaults 1024, 256)\n"
            "  --max-load: refuse when the 1-minute load average stays above X (default 0.5)\n"
            "  --max-others: refuse when other processes use more than X cores (default 0.1)\n"
            "  --force: measure anyway; the output is marked as not for publication\n"
            "  --no-repack: mrag runs the weights from the file's layout (llm_model_params.no_repack)\n");
}

int main(int argc, char **argv) {
    int threads = 2, pp = 1024, tg = 256, reps = 3, wait_s = 300;
    double max_load = 0.5, max_others = 0.1;
    bool force = false;
    const char *lb = NULL;
    static bench_row rows[MAX_MODELS];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = arg_int(argv[++i]);
        else if (!strcmp(argv[i], "--pp") && i + 1 < argc) pp = arg_int(argv[++i]);
        else if (!strcmp(argv[i], "--tg") && i + 1 < argc) tg = arg_int(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = arg_int(argv[++i]);
        else if (!strcmp(argv[i], "--wait") && i + 1 < argc) wait_s = arg_int(argv[++i]);
        else if (!strcmp(argv[i], "--llama-bench") && i + 1 < argc) lb = argv[++i];
        else if (!strcmp(argv[i], "--max-load") && i + 1 < argc) max_load = atof(argv[++i]);
        else if (!strcmp(argv[i], "--max-others") && i + 1 < argc) max_others = atof(argv[++i]);
        else if (!strcmp(argv[i], "--force")) force = true;
        else if (!strcmp(argv[i], "--no-repack")) no_repack = true;
        else if (argv[i][0] == '-') { usage(); return 2; }
        else if (n < MAX_MODELS) rows[n++].path = argv[i];
    }
    if (n == 0 || threads < 1 || threads > 16 || pp < 1 || tg < 1 || reps < 1 || reps > MAX_REPS || wait_s < 1) {
        usage();
        return 2;
    }
    if (lb && access(lb, X_OK) != 0) {
        fprintf(stderr, "bench_llm: %s is not an executable llama-bench (make llama-bench)\n", lb);
        return 2;
    }
    double load_before = load_avg1();
    if (!wait_quiet(max_load, max_others, wait_s)) {
        if (!force) return 3;
        fprintf(stderr, "bench_llm: --force: measuring on a busy machine; the figures are NOT for publication\n");
    }
    load_before = load_avg1();
    fprintf(stderr, "bench_llm: measuring read bandwidth...\n");
    double bw1 = read_bandwidth(1), bwn = threads > 1 ? read_bandwidth(threads) : bw1;
    double bw = bwn > bw1 ? bwn : bw1;
    double others_max = 0;

    for (int i = 0; i < n; i++) {
        bench_row *r = &rows[i];
        if (file_facts(r, pp + tg / 2.0) != 0) {
            snprintf(r->mrag_err, sizeof r->mrag_err, "not a readable GGUF file");
            continue;
        }
        mrag_run x;
        bool mrag_ok = mrag_open(&x, r, threads, pp, tg) == 0;
        if (!mrag_ok)
            fprintf(stderr, "bench_llm: mrag cannot run %s yet: %s\n", r->path, r->mrag_err);
        double a, b;
        if (mrag_ok && mrag_measure(&x, pp, tg, &a, &b) != 0) {      /* warm-up: page mapping, caches */
            snprintf(r->mrag_err, sizeof r->mrag_err, "decode failed");
            mrag_ok = false;
        }
        for (int rep = 0; rep < reps; rep++) {
            /* mrag, then llama.cpp, so both see the same moment of the machine;
             * a measurement during which other processes used the cores is
             * taken again (up to 3 times) */
            for (int attempt = 0; mrag_ok && attempt < 3; attempt++) {
                fprintf(stderr, "bench_llm: %s: mrag, run %d/%d...\n", r->path, rep + 1, reps);
                cpu_mark m = cpu_mark_now();
                if (mrag_measure(&x, pp, tg, &r->pp_mrag[r->n_mrag], &r->tg_mrag[r->n_mrag]) != 0) {
                    snprintf(r->mrag_err, sizeof r->mrag_err, "decode failed");
                    mrag_ok = false;
                    break;
                }
                double o = others_cores_since(m);
                if (o > others_max) others_max = o;
                if (o <= max_others || attempt == 2) {
                    if (o > max_others) r->disturbed++;
                    r->n_mrag++;
                    break;
                }
                fprintf(stderr, "bench_llm: other processes used %.2f cores during that run: again\n", o);
            }
            if (!lb || r->ref_err[0]) continue;
            for (int attempt = 0; attempt < 3; attempt++) {
                fprintf(stderr, "bench_llm: %s: llama-bench, run %d/%d...\n", r->path, rep + 1, reps);
                cpu_mark m = cpu_mark_now();
                double p = llama_measure(lb, r, threads, pp, 0, 0);
                double t = p > 0 ? llama_measure(lb, r, threads, 0, tg, pp) : 0;
                if (p <= 0 || t <= 0) break;
                double o = others_cores_since(m);
                if (o > others_max) others_max = o;
                if (o <= max_others || attempt == 2) {
                    if (o > max_others) r->disturbed++;
                    r->pp_ref[r->n_ref] = p;
                    r->tg_ref[r->n_ref] = t;
                    r->n_ref++;
                    break;
                }
                fprintf(stderr, "bench_llm: other processes used %.2f cores during that run: again\n", o);
            }
        }
        if (mrag_ok) r->sample_us = mrag_sampler_us(&x);
        if (mrag_ok || x.m) mrag_close(&x);
    }

    double load_after = load_avg1();
    int disturbed = 0;
    for (int i = 0; i < n; i++) disturbed += rows[i].disturbed;
    bool quiet = !force || (load_before <= max_load && disturbed == 0);
    char host_cpu[128] = "?";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci) {
        char line[256];
        while (fgets(line, sizeof line, ci))
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) snprintf(host_cpu, sizeof host_cpu, "%s", c + 2);
                host_cpu[strcspn(host_cpu, "\n")] = 0;
                break;
            }
        fclose(ci);
    }
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    printf("\n");
    if (!quiet || disturbed)
        printf("NOT A QUIET RUN (%d measurement(s) disturbed by other processes, load %.2f before): "
               "not for publication\n", disturbed, load_before);
    printf("%s, %s, %ld cores; threads %d; prefill = %d-token prompt, decode = %d tokens after it; "
           "mean of %d interleaved runs (min–max)\n",
           date, host_cpu, sysconf(_SC_NPROCESSORS_ONLN), threads, pp, tg, reps);
    printf("load average (1 min) %.2f before, %.2f after; other processes used at most %.2f cores during a "
           "measurement (limit %.2f)\n", load_before, load_after, others_max, max_others);
    printf("read bandwidth (read-only scan of 512 MiB, best of 5): %.1f GB/s (1 thread), %.1f GB/s (%d threads)\n",
           bw1 / 1e9, bwn / 1e9, threads);
    if (lb)
        printf("llama.cpp: llama-bench %s (build %s), flash_attn %s, n_ubatch %s, KV %s\n", lb,
               ref_build[0] ? ref_build : "?", ref_fa[0] ? ref_fa : "?", ref_ubatch[0] ? ref_ubatch : "?",
               ref_type_k[0] ? ref_type_k : "?");
    else
        printf("llama.cpp: not run (no --llama-bench)\n");
    printf("\n| file | weights | MB | prefill tok/s mrag | llama.cpp | ratio | decode tok/s mrag | llama.cpp | ratio "
           "| MB/token | mrag %% of read BW | llama.cpp %% | sampler µs/token |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    int failed = 0;
    for (int i = 0; i < n; i++) {
        bench_row *r = &rows[i];
        const char *base = strrchr(r->path, '/');
        base = base ? base + 1 : r->path;
        char mp[48] = "—", mt[48] = "—", rp[48] = "—", rt[48] = "—", ratp[16] = "—", ratt[16] = "—";
        char ms[16] = "—", rs[16] = "—", su[16] = "—", sp[32];
        double ppm = mean(r->pp_mrag, r->n_mrag), tgm = mean(r->tg_mrag, r->n_mrag);
        double ppr = mean(r->pp_ref, r->n_ref), tgr = mean(r->tg_ref, r->n_ref);
        if (r->n_mrag) {
            spread(r->pp_mrag, r->n_mrag, sp, sizeof sp);
            snprintf(mp, sizeof mp, "%.1f%s", ppm, sp);
            spread(r->tg_mrag, r->n_mrag, sp, sizeof sp);
            snprintf(mt, sizeof mt, "%.2f%s", tgm, sp);
            snprintf(ms, sizeof ms, "%.0f%%", 100 * tgm * r->bytes_per_tok / bw);
            snprintf(su, sizeof su, "%.0f", r->sample_us);
        } else {
            snprintf(mp, sizeof mp, "cannot run yet");
            failed += r->mrag_err[0] == 0;
        }
        if (r->n_ref) {
            spread(r->pp_ref, r->n_ref, sp, sizeof sp);
            snprintf(rp, sizeof rp, "%.1f%s", ppr, sp);
            spread(r->tg_ref, r->n_ref, sp, sizeof sp);
            snprintf(rt, sizeof rt, "%.2f%s", tgr, sp);
            snprintf(rs, sizeof rs, "%.0f%%", 100 * tgr * r->bytes_per_tok / bw);
        }
        if (r->n_mrag && r->n_ref) {
            snprintf(ratp, sizeof ratp, "**%.2f**", ppm / ppr);
            snprintf(ratt, sizeof ratt, "**%.2f**", tgm / tgr);
        }
        printf("| %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %.1f | %s | %s | %s |\n", base, r->types, r->file_mb,
               mp, rp, ratp, mt, rt, ratt, r->bytes_per_tok / 1e6, ms, rs, su);
    }
    for (int i = 0; i < n; i++) {
        if (rows[i].mrag_err[0])
            printf("\n%s: mrag cannot run it yet: %s", rows[i].path, rows[i].mrag_err);
        if (rows[i].ref_err[0]) printf("\n%s: %s", rows[i].path, rows[i].ref_err);
    }
    printf("\nMB/token: weight bytes one decoded token reads (token_embd: one row) plus the F16 KV cache at the "
           "mean decode depth; %% of read BW = decode tok/s x MB/token / %.1f GB/s.\n", bw / 1e9);
    if (!quiet || disturbed) {
        printf("NOT A QUIET RUN: not for publication\n");
        return 4;
    }
    return failed ? 1 : 0;
}
