/* bench_scale.c — make bench-scale: the index at scale with 4,096-dim
 * vectors (a Mistral 7B embedding) for each FAISS type.
 *
 * Data: N synthetic chunks (10 per document), vectors clustered like
 * embeddings (1,000 topics; a document's chunks share a sub-topic: each
 * vector is topic + document + chunk noise, cosine ~0.5 to its topic) and
 * texts of 80 words (a third from the topic's own words, the rest from a
 * skewed shared vocabulary); 10 % of the documents restricted to a group.
 * Everything is generated from a seed, streaming (nothing of size N x d is
 * ever held), and stored once in DIR/mrag.sqlite (float16), reused by later
 * runs of the same N and dim.
 *
 * Two phases, each type in a fresh process (clean RSS):
 *  build  data (reused), the exact top-10 of 200 queries over the original
 *         float32 vectors (computed streaming with BLAS; DIR/truth.bin),
 *         then per type the FAISS build from SQLite (train on a sample +
 *         add), saved as DIR/faiss.SLUG.index, with the figures that do
 *         not depend on the machine's load: RSS after the build and at
 *         peak, file size, dense recall@10 (re-ranked where the type
 *         approximates). Build times are printed but are noise under load.
 *  query  only loads the saved files (read-only; missing or stale is an
 *         error, never a rebuild), after reading mrag.sqlite once into the
 *         page cache, and measures p50/p99 wall latency of 200 queries for
 *         dense (k = 10), dense with a group filter, BM25 (k = 10) and
 *         hybrid (dense 50 + BM25 50, reciprocal-rank fusion), twice,
 *         interleaved query by query on the same loaded index: with one
 *         thread a query (probe_threads 1) and with the default (IVF lists
 *         split over the CPUs when they hold enough codes); each line says
 *         how many threads its dense searches used. Every line
 *         carries the 1-minute load average: figures taken under load are
 *         noise. Run it alone on a quiet machine.
 *
 *   build/tests/bench_scale [build|query] [N [DIM]]   (no phase = both;
 *                                                      default 100000 4096)
 *   MRAG_SCALE_DIR   data folder (default build/bench-scale-N-DIM)
 *   MRAG_SCALE_TYPES types separated by ';', each "FACTORY" or "FACTORY@NPROBE"
 *                    (default below: all families up to 200k; above, auto
 *                    at nprobe 16, 8 and 48); the same in both phases
 *   MRAG_SCALE_MAXGB skip types whose vectors alone exceed this (default 10)
 */
#define _GNU_SOURCE
#include "index/index.h"

#include <dirent.h>
#include <sqlite3.h>
#include <stdbool.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNKS_PER_DOC 10
#define WORDS_PER_CHUNK 80
#define TOPICS 1000
#define TOPIC_WORDS 40
#define VOCAB 30000
#define QUERIES 200
#define TXN_DOCS 100

/* Fortran BLAS (OpenBLAS on Debian), for the exact ground truth. */
extern void sgemm_(const char *ta, const char *tb, const int *m, const int *n, const int *k, const float *alpha,
                   const float *a, const int *lda, const float *b, const int *ldb, const float *beta, float *c,
                   const int *ldc);

static int N = 100000, D = 4096;
static float *topic_vecs;       /* TOPICS x D */

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static double load1(void) { double l[1]; return getloadavg(l, 1) == 1 ? l[0] : -1; }

static uint64_t mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}
typedef struct { uint64_t s; } rng_t;
static uint64_t rnext(rng_t *r) { r->s = mix(r->s); return r->s; }
/* uniform with mean 0, variance 1 */
static float runif(rng_t *r) { return (float)(((rnext(r) >> 11) * (1.0 / 9007199254740992.0)) * 3.4641016 - 1.7320508); }

static void normalise(float *v) {
    double n = 0;
    for (int i = 0; i < D; i++) n += (double)v[i] * v[i];
    float f = (float)(1.0 / sqrt(n));
    for (int i = 0; i < D; i++) v[i] *= f;
}

static int doc_topic(int64_t doc) { return (int)(mix(doc * 7919 + 1) % TOPICS); }

/* The document's direction: its topic plus a document offset (norm ~0.8). */
static void doc_centre(int64_t doc, float *out) {
    rng_t r = {mix((uint64_t)doc * 31 + 5)};
    const float *t = topic_vecs + (size_t)doc_topic(doc) * D;
    float s = 0.8f / sqrtf((float)D);
    for (int i = 0; i < D; i++) out[i] = t[i] + s * runif(&r);
}

/* Chunk vector: document direction plus chunk noise (norm ~0.7). */
static void chunk_vec(const float *centre, int64_t chunk, float *out) {
    rng_t r = {mix((uint64_t)chunk * 131 + 17)};
    float s = 0.7f / sqrtf((float)D);
    for (int i = 0; i < D; i++) out[i] = centre[i] + s * runif(&r);
    normalise(out);
}

static void make_word(unsigned id, char *out, size_t n) {
    static const char *const syl[] = {"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ber", "dan", "gel", "hor", "pin", "quist", "ton", "wel"};
    size_t o = 0;
    unsigned x = id + 1;
    while (x && o + 6 < n) { o += (size_t)snprintf(out + o, n - o, "%s", syl[x % 16]); x /= 16; }
    out[o] = 0;
}

static unsigned topic_word(int topic, rng_t *r) { return (unsigned)(VOCAB + topic * TOPIC_WORDS + rnext(r) % TOPIC_WORDS); }
static unsigned common_word(rng_t *r) {
    unsigned x = (unsigned)(rnext(r) % VOCAB);
    return (unsigned)((uint64_t)x * x / VOCAB);
}

static size_t chunk_text(int topic, int64_t chunk, char *out, size_t cap) {
    rng_t r = {mix((uint64_t)chunk * 977 + 3)};
    size_t o = 0;
    for (int w = 0; w < WORDS_PER_CHUNK && o + 40 < cap; w++) {
        char word[40];
        make_word(rnext(&r) % 3 == 0 ? topic_word(topic, &r) : common_word(&r), word, sizeof word);
        o += (size_t)snprintf(out + o, cap - o, "%s%s", w ? " " : "", word);
    }
    return o;
}

static long rss_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0) v = atol(line + kl + 1);
    if (f) fclose(f);
    return v;
}

static long long file_size(const char *dir, const char *name) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat sb;
    return stat(p, &sb) == 0 ? (long long)sb.st_size : -1;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static void pct(double *v, int n, double *p50, double *p99) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    *p50 = v[n / 2] * 1e3;
    *p99 = v[(n * 99) / 100] * 1e3;
}

/* ------------------------------------------------------------ data */

static int build_data(const char *dir, bool *fresh) {
    char want[64];
    snprintf(want, sizeof want, "%d x %d v1", N, D);
    {
        /* reused data is checked in SQLite alone: opening the store would
         * load (or rebuild) its FAISS index for nothing */
        char path[1200];
        snprintf(path, sizeof path, "%s/mrag.sqlite", dir);
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        bool same = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
                    sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'bench.data'", -1, &st, NULL) == SQLITE_OK &&
                    sqlite3_step(st) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), want) == 0;
        sqlite3_finalize(st);
        sqlite3_close(db);
        if (same) {
            printf("data: reusing %s (%s)\n", dir, want);
            return 0;
        }
    }
    idx_params p = idx_default_params();
    p.faiss_factory = NULL;     /* the recorded type: its file loads, no rebuild */
    idx_store *s = NULL;
    if (idx_open(dir, &p, &s) != IDX_OK) { fprintf(stderr, "open %s: %s\n", dir, idx_errmsg(s)); idx_close(s); return 1; }
    char *val = NULL;
    if (idx_meta_get(s, "bench.data", &val) == IDX_OK && strcmp(val, want) == 0) {
        printf("data: reusing %s (%s)\n", dir, want);
        free(val);
        idx_close(s);
        return 0;
    }
    free(val);
    {
        /* new, stopped half-way, or other data: start afresh so chunk ids
         * are 1..N in generation order */
        idx_close(s);
        s = NULL;
        *fresh = true;
        const char *files[] = {"mrag.sqlite", "mrag.sqlite-wal", "mrag.sqlite-shm", "faiss.index", "truth.bin"};
        for (int i = 0; i < 5; i++) {
            char path[1200];
            snprintf(path, sizeof path, "%s/%s", dir, files[i]);
            unlink(path);
        }
        /* the saved types of the old data (faiss.SLUG.index) */
        DIR *dd = opendir(dir);
        for (struct dirent *e; dd && (e = readdir(dd));) {
            size_t l = strlen(e->d_name);
            if (strncmp(e->d_name, "faiss.", 6) == 0 && l > 12 && strcmp(e->d_name + l - 6, ".index") == 0) {
                char path[1200];
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        }
        if (dd) closedir(dd);
        p.faiss_factory = "SQ8"; /* 1 byte a dimension in memory while ingesting */
        if (idx_open(dir, &p, &s) != IDX_OK) { fprintf(stderr, "open %s: %s\n", dir, idx_errmsg(s)); idx_close(s); return 1; }
    }
    int64_t ndocs = N / CHUNKS_PER_DOC;
    float *centre = malloc(sizeof(float) * D), *vecs = malloc(sizeof(float) * D * CHUNKS_PER_DOC);
    char *texts = malloc(CHUNKS_PER_DOC * 1024);
    idx_chunk ch[CHUNKS_PER_DOC];
    double t0 = now();
    printf("data: writing %d chunks x %d dims into %s (load %.1f)\n", N, D, dir, load1());
    fflush(stdout);
    for (int64_t d = 0; d < ndocs; d++) {
        if (d % TXN_DOCS == 0 && idx_begin(s) != IDX_OK) goto fail;
        doc_centre(d, centre);
        int topic = doc_topic(d);
        for (int c = 0; c < CHUNKS_PER_DOC; c++) {
            int64_t id = d * CHUNKS_PER_DOC + c;
            chunk_vec(centre, id, vecs + (size_t)c * D);
            size_t len = chunk_text(topic, id, texts + c * 1024, 1024);
            ch[c] = (idx_chunk){.ordinal = c, .text = texts + c * 1024, .text_len = len};
        }
        char uri[64];
        snprintf(uri, sizeof uri, "doc/%08lld.md", (long long)d);
        idx_doc doc = {.uri = uri, .title = uri, .type = "md", .groups = d % 10 == 3 ? "restricted" : NULL};
        if (idx_doc_put(s, &doc, ch, CHUNKS_PER_DOC, vecs, D, NULL) != IDX_OK) goto fail;
        if ((d + 1) % TXN_DOCS == 0 || d + 1 == ndocs) {
            if (idx_commit(s) != IDX_OK) goto fail;
        }
        if ((d + 1) % (ndocs / 20 > 0 ? ndocs / 20 : 1) == 0) {
            printf("  %lld chunks, %.0f chunks/s, RSS %ld MB (load %.1f)\n", (long long)(d + 1) * CHUNKS_PER_DOC,
                   (d + 1) * CHUNKS_PER_DOC / (now() - t0), rss_kb("VmRSS:") / 1024, load1());
            fflush(stdout);
        }
    }
    idx_fts_retune(s, NULL, NULL);
    if (idx_meta_set(s, "bench.data", want) != IDX_OK) goto fail;
    printf("data: %d chunks in %.0f s (%.0f chunks/s: SQLite + FTS5 + SQ8, float16 conversion), mrag.sqlite %.2f GB (load %.1f)\n",
           N, now() - t0, N / (now() - t0), file_size(dir, "mrag.sqlite") / 1e9, load1());
    free(centre);
    free(vecs);
    free(texts);
    idx_close(s);
    return 0;
fail:
    fprintf(stderr, "ingest: %s\n", idx_errmsg(s));
    idx_close(s);
    return 1;
}

/* ------------------------------------------------------------ queries */

typedef struct {
    float *vec;                 /* QUERIES x D */
    char text[QUERIES][128];
    int64_t truth[QUERIES][10]; /* exact top-10 chunk ids (1-based as stored) */
} queries;

static void make_queries(queries *q) {
    q->vec = malloc(sizeof(float) * D * QUERIES);
    float *centre = malloc(sizeof(float) * D);
    rng_t r = {12345};
    for (int i = 0; i < QUERIES; i++) {
        int64_t doc = (int64_t)(rnext(&r) % (uint64_t)(N / CHUNKS_PER_DOC));
        doc_centre(doc, centre);
        chunk_vec(centre, -1 - i, q->vec + (size_t)i * D);
        int topic = doc_topic(doc);
        size_t o = 0;
        for (int w = 0; w < 3; w++) {
            char word[40];
            make_word(topic_word(topic, &r), word, sizeof word);
            o += (size_t)snprintf(q->text[i] + o, sizeof q->text[i] - o, "%s%s", w ? " " : "", word);
        }
    }
    free(centre);
}

/* Exact top-10 by streaming every original vector through one sgemm per
 * block of 1,024 chunks. Chunk ids in the store are 1-based in insertion
 * order (AUTOINCREMENT on a fresh index). */
static void exact_truth(queries *q) {
    const int B = 1024;
    float *blk = malloc(sizeof(float) * (size_t)D * B), *sc = malloc(sizeof(float) * (size_t)B * QUERIES);
    float (*best)[10] = malloc(sizeof(float[10]) * QUERIES);
    for (int i = 0; i < QUERIES; i++)
        for (int j = 0; j < 10; j++) best[i][j] = -2, q->truth[i][j] = -1;
    float *centre = malloc(sizeof(float) * D);
    int64_t ndocs = N / CHUNKS_PER_DOC, filled = 0, base = 0;
    double t0 = now();
    for (int64_t d = 0; d < ndocs; d++) {
        doc_centre(d, centre);
        for (int c = 0; c < CHUNKS_PER_DOC; c++) chunk_vec(centre, d * CHUNKS_PER_DOC + c, blk + (size_t)(filled++) * D);
        if (filled + CHUNKS_PER_DOC > B || d + 1 == ndocs) {
            /* sc[QUERIES x filled] (column-major: sc[b * QUERIES + qi]) = Q^T * blk */
            int m = QUERIES, n = (int)filled, k = D;
            float one = 1, zero = 0;
            sgemm_("T", "N", &m, &n, &k, &one, q->vec, &k, blk, &k, &zero, sc, &m);
            for (int b = 0; b < filled; b++)
                for (int i = 0; i < QUERIES; i++) {
                    float s = sc[(size_t)b * QUERIES + i];
                    if (s <= best[i][9]) continue;
                    int p = 9;
                    while (p > 0 && best[i][p - 1] < s) { best[i][p] = best[i][p - 1]; q->truth[i][p] = q->truth[i][p - 1]; p--; }
                    best[i][p] = s;
                    q->truth[i][p] = base + b + 1;
                }
            base += filled;
            filled = 0;
        }
    }
    printf("exact: top-10 of %d queries over %d vectors in %.0f s (load %.1f)\n", QUERIES, N, now() - t0, load1());
    fflush(stdout);
    free(blk);
    free(sc);
    free(best);
    free(centre);
}

/* ------------------------------------------------------------ one type */

static int hit_cmp(const void *a, const void *b) {
    const idx_hit *x = a, *y = b;
    return x->score < y->score ? 1 : x->score > y->score ? -1 : 0;
}

static void hybrid(idx_store *s, const queries *q, int i, idx_hit *out) {
    idx_hit dh[50], bh[50], all[100];
    int nd = 0, nb = 0, n = 0;
    idx_search_dense(s, q->vec + (size_t)i * D, D, 50, NULL, dh, &nd);
    idx_search_bm25(s, q->text[i], strlen(q->text[i]), 50, NULL, bh, &nb);
    for (int r = 0; r < nd; r++) all[n++] = (idx_hit){dh[r].chunk_id, 1.0f / (60 + r + 1)};
    for (int r = 0; r < nb; r++) {
        int j = 0;
        while (j < n && all[j].chunk_id != bh[r].chunk_id) j++;
        if (j < n) all[j].score += 1.0f / (60 + r + 1);
        else all[n++] = (idx_hit){bh[r].chunk_id, 1.0f / (60 + r + 1)};
    }
    qsort(all, (size_t)n, sizeof *all, hit_cmp);
    memcpy(out, all, sizeof(idx_hit) * (size_t)(n < 10 ? n : 10));
}

/* The saved FAISS file of a type: DIR/faiss.SLUG.index, SLUG the factory
 * string with every character but letters and digits made '_' ("auto",
 * "IVF2048_PQ256"). The store itself reads DIR/faiss.index: a type's file
 * is hard-linked there before the store opens (no copy). */
static void saved_path(const char *dir, const char *type, char *out, size_t cap) {
    char slug[128];
    size_t o = 0;
    for (const char *c = type; *c && o + 1 < sizeof slug; c++)
        slug[o++] = ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')) ? *c : '_';
    slug[o] = 0;
    snprintf(out, cap, "%s/faiss.%s.index", dir, slug);
}

/* The FAISS type recorded in a saved file's header (offset 56, 64 bytes;
 * index/vecindex.c) and its generation (offset 16); false when the file is
 * missing or not an mrag FAISS file. */
static bool saved_header(const char *path, char *type, size_t cap, int64_t *gen) {
    unsigned char h[120];
    FILE *f = fopen(path, "rb");
    bool ok = f && fread(h, 1, sizeof h, f) == sizeof h && memcmp(h, "MRAGFAIS", 8) == 0;
    if (f) fclose(f);
    if (!ok) return false;
    snprintf(type, cap, "%.64s", (const char *)h + 56);
    memcpy(gen, h + 16, 8);
    return true;
}

/* Points DIR/faiss.index at `saved` (a hard link; nothing copied). */
static int link_saved(const char *dir, const char *saved) {
    char live[1200];
    snprintf(live, sizeof live, "%s/faiss.index", dir);
    struct stat a, b;
    if (stat(saved, &a) == 0 && stat(live, &b) == 0 && a.st_ino == b.st_ino) return 0;
    if (unlink(live) != 0 && errno != ENOENT) { perror(live); return -1; }
    if (link(saved, live) != 0) { perror(saved); return -1; }
    return 0;
}

/* Dense recall@10 of the 200 queries against the exact top-10. */
static double recall10(idx_store *s, const queries *q) {
    int found = 0;
    idx_hit h[10];
    int n;
    for (int i = 0; i < QUERIES; i++) {
        if (idx_search_dense(s, q->vec + (size_t)i * D, D, 10, NULL, h, &n) != IDX_OK) return -1;
        for (int r = 0; r < n; r++)
            for (int j = 0; j < 10; j++) found += h[r].chunk_id == q->truth[i][j];
    }
    return found / (10.0 * QUERIES);
}

/* "TYPE" or "TYPE@NPROBE" */
static void parse_spec(const char *spec, char *type, size_t cap, int *nprobe) {
    snprintf(type, cap, "%s", spec);
    *nprobe = 0;
    char *at = strchr(type, '@');
    if (at) { *at = 0; *nprobe = atoi(at + 1); }
}

/* Build phase, one type: load its saved file or build it from SQLite
 * (train + add) and save it; then the figures that do not depend on the
 * machine's load: RSS after the build and at peak, file size, recall@10. */
static int build_type(const char *dir, const char *spec, const queries *q) {
    char type[128], saved[1200], live[1200], rtype[80];
    int nprobe;
    parse_spec(spec, type, sizeof type, &nprobe);
    saved_path(dir, type, saved, sizeof saved);
    snprintf(live, sizeof live, "%s/faiss.index", dir);
    if (access(saved, F_OK) == 0 && link_saved(dir, saved) != 0) return 1;
    /* else faiss.index is whatever the last run left: loaded when it is
     * of this type, rebuilt otherwise */
    struct stat a, b;
    ino_t before = stat(live, &a) == 0 ? a.st_ino : 0;
    long rss0 = rss_kb("VmRSS:");
    idx_params p = idx_default_params();
    p.faiss_factory = type;
    if (nprobe > 0) p.ivf_nprobe = nprobe;
    idx_store *s = NULL;
    double t0 = now();
    if (idx_open(dir, &p, &s) != IDX_OK || idx_save(s) != IDX_OK) {
        printf("%-22s failed: %s\n", spec, idx_errmsg(s));
        idx_close(s);
        return 1;
    }
    double build = now() - t0;
    /* a rebuild saves a new file over faiss.index (a notice may also
     * come from the text index: an older analyser's index is rebuilt) */
    bool rebuilt = stat(live, &a) != 0 || a.st_ino != before;
    long rss = rss_kb("VmRSS:") - rss0, peak = rss_kb("VmHWM:");
    /* keep this type's file under its own name for the query phase */
    if (!(stat(saved, &a) == 0 && stat(live, &b) == 0 && a.st_ino == b.st_ino)) {
        unlink(saved);
        if (link(live, saved) != 0) { perror(saved); idx_close(s); return 1; }
    }
    int64_t gen = 0;
    if (!saved_header(saved, rtype, sizeof rtype, &gen)) snprintf(rtype, sizeof rtype, "?");
    double rec = recall10(s, q);
    printf("%-22s %-16s %s %7.1f s  RSS %5.2f GB (peak %5.2f)  file %6.2f GB  recall@10 %.3f  %s  (load %.1f)\n",
           spec, rtype, rebuilt ? "built " : "loaded", build, rss / 1048576.0, peak / 1048576.0, file_size(dir, strrchr(saved, '/') + 1) / 1e9,
           rec, strrchr(saved, '/') + 1, load1());
    fflush(stdout);
    idx_close(s);
    return rec < 0;
}

/* Query phase, one type: only loads the file the build phase saved
 * (read-only; a missing or stale file is an error, never a rebuild) and
 * measures p50/p99 wall latency of each query kind. */
static int query_type(const char *dir, const char *spec, const queries *q, int64_t db_gen) {
    char type[128], saved[1200], rtype[80];
    int nprobe;
    parse_spec(spec, type, sizeof type, &nprobe);
    saved_path(dir, type, saved, sizeof saved);
    int64_t gen = -1;
    if (!saved_header(saved, rtype, sizeof rtype, &gen) || gen != db_gen ||
        (strcmp(type, "auto") != 0 && strcmp(type, rtype) != 0)) {
        printf("%-22s not built: %s is missing or stale (run the build phase: bench_scale build)\n", spec, saved);
        return 1;
    }
    if (link_saved(dir, saved) != 0) return 1;
    long rss0 = rss_kb("VmRSS:");
    idx_params p = idx_default_params();
    p.faiss_factory = type;
    p.read_only = true;
    if (nprobe > 0) p.ivf_nprobe = nprobe;
    idx_store *s = NULL;
    double t0 = now();
    if (idx_open(dir, &p, &s) != IDX_OK) {
        printf("%-22s failed: %s\n", spec, idx_errmsg(s));
        idx_close(s);
        return 1;
    }
    double load = now() - t0;
    if (idx_notice(s) && strstr(idx_notice(s), "faiss.index")) {
        printf("%-22s the saved file was not used (%s): run the build phase\n", spec, idx_notice(s));
        idx_close(s);
        return 1;
    }
    long rss = rss_kb("VmRSS:") - rss0;
    /* two settings interleaved query by query on the one loaded index:
     * one thread a query (probe_threads 1) and the default (automatic:
     * the IVF lists split over the CPUs when they hold enough codes) */
    enum { SETTINGS = 2 };
    const int setting[SETTINGS] = {1, 0};
    static double lat[SETTINGS][4][QUERIES];
    int found[SETTINGS] = {0}, used[SETTINGS] = {0};
    const char *g[] = {"public"};
    idx_filter f = {g, 1};
    idx_hit h[10];
    int n;
    for (int i = 0; i < 20; i++)
        for (int c = 0; c < SETTINGS; c++) {
            idx_set_probe_threads(s, setting[c]);
            idx_search_dense(s, q->vec + (size_t)i * D, D, 10, NULL, h, &n); /* warm-up */
        }
    double la = load1();
    for (int i = 0; i < QUERIES; i++) {
        /* the first setting to run a query warms the caches (SQLite pages
         * of the re-ranked rows, the BM25 postings) for the second: the
         * order alternates so that neither gets the warm run every time */
        for (int cc = 0; cc < SETTINGS; cc++) {
            int c = i & 1 ? SETTINGS - 1 - cc : cc;
            idx_set_probe_threads(s, setting[c]);
            double a = now();
            idx_search_dense(s, q->vec + (size_t)i * D, D, 10, NULL, h, &n);
            lat[c][0][i] = now() - a;
            if (idx_probe_threads_used(s) > used[c]) used[c] = idx_probe_threads_used(s);
            for (int r = 0; r < n; r++)
                for (int j = 0; j < 10; j++) found[c] += h[r].chunk_id == q->truth[i][j];
            a = now();
            idx_search_dense(s, q->vec + (size_t)i * D, D, 10, &f, h, &n);
            lat[c][1][i] = now() - a;
            a = now();
            idx_search_bm25(s, q->text[i], strlen(q->text[i]), 10, NULL, h, &n);
            lat[c][2][i] = now() - a;
            a = now();
            hybrid(s, q, i, h);
            lat[c][3][i] = now() - a;
        }
    }
    double la2 = load1();
    for (int c = 0; c < SETTINGS; c++) {
        double p50[4], p99[4];
        for (int k = 0; k < 4; k++) pct(lat[c][k], QUERIES, &p50[k], &p99[k]);
        char th[40];
        snprintf(th, sizeof th, "threads %d (%s)", used[c], setting[c] ? "probe_threads 1" : "auto");
        printf("%-22s %-16s %-24s load %5.1f s  RSS %5.2f GB  recall@10 %.3f  p50/p99 ms: dense %.1f/%.1f  filtered %.1f/%.1f  "
               "bm25 %.1f/%.1f  hybrid %.1f/%.1f  (load %.1f -> %.1f)\n",
               spec, rtype, th, load, rss / 1048576.0, found[c] / (10.0 * QUERIES), p50[0], p99[0], p50[1], p99[1], p50[2],
               p99[2], p50[3], p99[3], la, la2);
    }
    fflush(stdout);
    idx_close(s);
    return 0;
}

static void init_topics(void) {
    topic_vecs = malloc(sizeof(float) * (size_t)TOPICS * D);
    rng_t r = {777};
    for (int t = 0; t < TOPICS; t++) {
        for (int i = 0; i < D; i++) topic_vecs[(size_t)t * D + i] = runif(&r);
        normalise(topic_vecs + (size_t)t * D);
    }
}

/* The database's generation (meta idx.generation): a saved FAISS file of
 * another generation is stale. -1 when unreadable. */
static int64_t db_generation(const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/mrag.sqlite", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t g = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'idx.generation'", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        g = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return g;
}

/* Reads a file once so the page cache holds it; returns seconds. */
static double read_through(const char *path, double *gb) {
    double t0 = now();
    *gb = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    static char buf[1 << 20];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0) *gb += r / 1e9;
    fclose(f);
    return now() - t0;
}

static int truth_io(const char *dir, queries *q, bool write) {
    char path[1200];
    snprintf(path, sizeof path, "%s/truth.bin", dir);
    FILE *f = fopen(path, write ? "wb" : "rb");
    bool ok = f && (write ? fwrite(q->truth, sizeof q->truth, 1, f) : fread(q->truth, sizeof q->truth, 1, f)) == 1;
    if (f && fclose(f) != 0) ok = false;
    return ok ? 0 : -1;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_scale [build|query] [N >= 1000 [DIM, multiple of 16]]\n");
}

int main(int argc, char **argv) {
    if (argc == 7 && strcmp(argv[1], "--type") == 0) {
        /* child: bench_scale --type build|query TYPE N DIM DIR */
        N = atoi(argv[4]);
        D = atoi(argv[5]);
        init_topics();
        static queries q;
        make_queries(&q);
        if (truth_io(argv[6], &q, false) != 0) { fprintf(stderr, "%s/truth.bin: unreadable\n", argv[6]); return 1; }
        if (strcmp(argv[2], "build") == 0) return build_type(argv[6], argv[3], &q);
        return query_type(argv[6], argv[3], &q, db_generation(argv[6]));
    }
    /* bench_scale [build|query] [N [DIM]]: no phase = both */
    int a = 1;
    bool do_build = true, do_query = true;
    if (argc > 1 && strcmp(argv[1], "build") == 0) { do_query = false; a++; }
    else if (argc > 1 && strcmp(argv[1], "query") == 0) { do_build = false; a++; }
    if (argc > a) N = atoi(argv[a]);
    if (argc > a + 1) D = atoi(argv[a + 1]);
    if (argc > a + 2 || N < 1000 || D < 16 || D % 16) { usage(); return 2; }
    N -= N % CHUNKS_PER_DOC;
    char dir[1024];
    const char *env = getenv("MRAG_SCALE_DIR");
    if (env && *env) snprintf(dir, sizeof dir, "%s", env);
    else snprintf(dir, sizeof dir, "build/bench-scale-%d-%d", N, D);
    mkdir(dir, 0755);
    double maxgb = getenv("MRAG_SCALE_MAXGB") ? atof(getenv("MRAG_SCALE_MAXGB")) : 10;
    init_topics();
    printf("bench-scale %s: %d chunks x %d dims, %d queries, folder %s, %ld CPUs (load %.1f)\n",
           do_build && do_query ? "build + query" : do_build ? "build" : "query", N, D, QUERIES, dir,
           sysconf(_SC_NPROCESSORS_ONLN), load1());
    static queries q;
    if (do_build) {
        bool fresh = false;
        if (build_data(dir, &fresh)) return 1;
        printf("mrag.sqlite %.3f GB (float16 vectors: %.3f GB of them)\n", file_size(dir, "mrag.sqlite") / 1e9, (double)N * D * 2 / 1e9);
        make_queries(&q);
        if (!fresh && truth_io(dir, &q, false) == 0) printf("exact: reusing %s/truth.bin\n", dir);
        else {
            exact_truth(&q);
            if (truth_io(dir, &q, true) != 0) { fprintf(stderr, "%s/truth.bin: %s\n", dir, strerror(errno)); return 1; }
        }
    } else {
        char tp[1200];
        snprintf(tp, sizeof tp, "%s/truth.bin", dir);
        if (access(tp, R_OK) != 0 || db_generation(dir) < 0) {
            fprintf(stderr, "%s: no data of the build phase (run: bench_scale build %d %d)\n", dir, N, D);
            return 1;
        }
        /* the stored texts and vectors are read at query time (BM25,
         * re-ranking): measured with them in the page cache, as on a server
         * that has run a while */
        char db[1200];
        snprintf(db, sizeof db, "%s/mrag.sqlite", dir);
        double gb, t = read_through(db, &gb);
        printf("page cache: read %s (%.2f GB) in %.1f s (load %.1f)\n", db, gb, t, load1());
    }
    /* the automatic choice, then each family */
    int nl = 64;
    while (nl * 2 <= 4 * (int)sqrt((double)N) && nl * 2 * 39 <= N) nl *= 2;
    char types[2048];
    env = getenv("MRAG_SCALE_TYPES");
    if (env && *env) snprintf(types, sizeof types, "%s", env);
    else if (N <= 200000)
        snprintf(types, sizeof types, "auto;auto@48;Flat;SQfp16;SQ8;IVF%d,SQ8;IVF%d,PQ%d;OPQ%d,IVF%d,PQ%d;HNSW32,SQ8", nl, nl,
                 D / 16, D / 64, nl, D / 64);
    else /* scans of every vector (Flat, SQ...) take seconds a query, HNSW
          * and OPQ hours to build on two cores, IVF-PQ's training tens of
          * minutes (MRAG_SCALE_TYPES="IVF2048,PQ256" adds it): the default
          * at three nprobe values, one saved file */
        snprintf(types, sizeof types, "auto;auto@8;auto@48");
    /* each type runs in a fresh process (clean RSS; fork alone would
     * inherit OpenMP's threads, which deadlocks libgomp) */
    char self[1024];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) { perror("/proc/self/exe"); return 1; }
    self[sl] = 0;
    int failed = 0;
    for (int phase = 0; phase < 2; phase++) {
        if ((phase == 0 && !do_build) || (phase == 1 && !do_query)) continue;
        const char *ph = phase == 0 ? "build" : "query";
        printf(phase == 0 ? "build phase (figures independent of the load: memory, file size, recall)\n"
                          : "query phase (latency: valid only on a quiet machine; load average per line)\n");
        char list[2048];
        snprintf(list, sizeof list, "%s", types);
        for (char *save = NULL, *t = strtok_r(list, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
            double gb = (double)N * D / 1e9 * (strncmp(t, "Flat", 4) == 0 ? 4 : strstr(t, "fp16") ? 2 : strstr(t, "PQ") ? 0.1 : 1);
            if (gb > maxgb) {
                printf("%-22s skipped: ~%.1f GB of vectors in memory > MRAG_SCALE_MAXGB %.0f\n", t, gb, maxgb);
                continue;
            }
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                char ns[32], ds[32];
                snprintf(ns, sizeof ns, "%d", N);
                snprintf(ds, sizeof ds, "%d", D);
                execl(self, self, "--type", ph, t, ns, ds, dir, (char *)NULL);
                _exit(127);
            }
            int st = 0;
            waitpid(pid, &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st)) {
                printf("%-22s child failed (status %d)\n", t, st);
                failed++;
            }
        }
    }
    return failed ? 1 : 0;
}
