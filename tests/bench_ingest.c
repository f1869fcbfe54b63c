/* bench_ingest.c — pipeline benchmark (not a test): ingest throughput of
 * data/sample x N copies (documents/s, chunks/s, share of time inside the
 * model), and full-retrieval latency (query embedding + search, per mode)
 * p50/p99 at 10k and 100k chunks.
 *
 *   build/tests/bench_ingest [--copies N] [--threads T] [--dim D] [--layers L]
 *                            [--search-dim D] [--sizes 10000,100000] [--no-ingest]
 *
 * Run from the repository root (needs BUILD/mkmodel and data/sample). */
#include "index/index.h"
#include "llm/llm.h"
#include "rag/rag.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of the whole process (all threads): the work itself, less
 * dependent on how busy the shared machine is than wall time. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint64_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }
static double urand(void) { return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0); }

static const char *build_dir(void) {
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

/* Writes a random-weight model; returns 0 on success. */
static int mkmodel(const char *out, int dim, int layers, int heads, int kv, int ff, const char *type) {
    const char *vocab = "../shared/models/mistral-v0.1-vocab-derived.gguf";
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/mkmodel --dim %d --layers %d --heads %d --kv-heads %d --ff %d --type %s %s%s --out %s >/dev/null",
             build_dir(), dim, layers, heads, kv, ff, type, access(vocab, R_OK) == 0 ? "--vocab-from " : "--vocab-size 4096",
             access(vocab, R_OK) == 0 ? vocab : "", out);
    return system(cmd);
}

static llm_model *load(const char *path) {
    llm_model *m = NULL;
    char err[512];
    llm_model_params mp = llm_model_default_params();
    if (llm_model_load(path, &mp, &m, err, sizeof err) != LLM_OK) { fprintf(stderr, "%s\n", err); return NULL; }
    return m;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int bench_ingest(const char *tmp, int copies, int threads, int dim, int layers) {
    char model[512], corpus[512], idx[512], cmd[2048];
    snprintf(model, sizeof model, "%s/ingest-model.gguf", tmp);
    int heads = dim / 64 > 0 ? dim / 64 : 1;
    if (mkmodel(model, dim, layers, heads, heads / 4 > 0 ? heads / 4 : 1, dim * 11 / 4 / 64 * 64, "q8_0") != 0) return 1;
    snprintf(corpus, sizeof corpus, "%s/corpus", tmp);
    snprintf(idx, sizeof idx, "%s/ingest-idx", tmp);
    for (int i = 0; i < copies; i++) {
        snprintf(cmd, sizeof cmd, "mkdir -p %s && cp -r data/sample %s/copy%d", corpus, corpus, i);
        if (system(cmd) != 0) return 1;
    }
    llm_model *m = load(model);
    if (!m) return 1;
    idx_store *s = NULL;
    idx_params ip = idx_default_params();
    if (idx_open(idx, &ip, &s) != IDX_OK) { fprintf(stderr, "%s\n", s ? idx_errmsg(s) : "?"); return 1; }
    rag_ingest_params p = rag_ingest_default_params();
    p.model = m;
    p.n_threads = threads;
    rag_ingest_stats st;
    char err[1024];
    double t = now();
    if (rag_ingest_dir(s, corpus, &p, &st, err, sizeof err) != RAG_OK) { fprintf(stderr, "%s\n", err); return 1; }
    double wall = now() - t;
    printf("ingest: model dim %d, %d layers, q8_0, %d threads; %zu documents, %llu chunks in %.2f s\n", dim, layers,
           threads, st.added, (unsigned long long)st.chunks_added, wall);
    printf("  %.2f documents/s, %.1f chunks/s\n", (double)st.added / wall, (double)st.chunks_added / wall);
    printf("  time: embedding %.2f s (%.1f%%), chunking/token counts %.2f s (%.1f%%), read+hash+extract %.2f s (%.1f%%), "
           "store %.2f s (%.1f%%), rest %.2f s\n",
           st.embed_seconds, 100 * st.embed_seconds / wall, st.chunk_seconds, 100 * st.chunk_seconds / wall,
           st.extract_seconds, 100 * st.extract_seconds / wall, st.store_seconds, 100 * st.store_seconds / wall,
           wall - st.embed_seconds - st.chunk_seconds - st.extract_seconds - st.store_seconds);
    t = now();
    if (rag_ingest_dir(s, corpus, &p, &st, err, sizeof err) != RAG_OK) { fprintf(stderr, "%s\n", err); return 1; }
    printf("  unchanged rerun: %zu files checked in %.3f s\n", st.unchanged, now() - t);
    idx_close(s);
    llm_model_free(m);
    return 0;
}

/* Synthetic word i (pronounceable syllables). */
static void word(char *out, size_t cap, unsigned i) {
    static const char *syl[] = {"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "an", "ber", "dor", "fel", "gun", "hal", "ist"};
    size_t o = 0;
    do { o += (size_t)snprintf(out + o, cap - o, "%s", syl[i % 16]); i /= 16; } while (i && o < cap - 4);
}

static int bench_search(const char *tmp, long n_chunks, int threads, int dim, llm_model *m) {
    char idx[512];
    snprintf(idx, sizeof idx, "%s/search-%ld", tmp, n_chunks);
    idx_store *s = NULL;
    idx_params ip = idx_default_params();
    if (idx_open(idx, &ip, &s) != IDX_OK) { fprintf(stderr, "%s\n", s ? idx_errmsg(s) : "?"); return 1; }
    idx_fingerprint fp;
    memset(&fp, 0, sizeof fp);
    llm_model_sha256(m, fp.model_sha256);
    fp.layer = -1;
    snprintf(fp.pooling, sizeof fp.pooling, "mean");
    fp.dim = dim;
    if (idx_fingerprint_set(s, &fp) != IDX_OK) { fprintf(stderr, "%s\n", idx_errmsg(s)); return 1; }
    /* synthetic documents of 10 chunks x 40 Zipf-ish words, random unit vectors */
    enum { PER_DOC = 10, WORDS = 40, VOCAB = 20000 };
    char *texts = malloc(PER_DOC * WORDS * 16);
    float *vecs = malloc(sizeof(float) * PER_DOC * (size_t)dim);
    idx_chunk ch[PER_DOC];
    if (!texts || !vecs) return 1;
    double t = now();
    idx_begin(s);
    for (long d = 0; d * PER_DOC < n_chunks; d++) {
        size_t off = 0;
        for (int c = 0; c < PER_DOC; c++) {
            memset(&ch[c], 0, sizeof ch[c]);
            ch[c].ordinal = c;
            ch[c].text = texts + off;
            for (int w = 0; w < WORDS; w++) {
                double u = urand();
                char wb[16];
                word(wb, sizeof wb, (unsigned)(u * u * VOCAB));
                off += (size_t)snprintf(texts + off, 16, "%s%s", w ? " " : "", wb);
            }
            ch[c].text_len = (size_t)(texts + off - ch[c].text);
            texts[off++] = 0;
            double n = 0;
            float *v = vecs + (size_t)c * dim;
            for (int i = 0; i < dim; i++) { v[i] = (float)(urand() * 2 - 1); n += (double)v[i] * v[i]; }
            for (int i = 0; i < dim; i++) v[i] = (float)(v[i] / sqrt(n));
        }
        char uri[64];
        snprintf(uri, sizeof uri, "synthetic://%ld", d);
        idx_doc doc;
        memset(&doc, 0, sizeof doc);
        doc.uri = uri;
        if (idx_doc_put(s, &doc, ch, PER_DOC, vecs, dim, NULL) != IDX_OK) { fprintf(stderr, "%s\n", idx_errmsg(s)); return 1; }
        if (d % 500 == 499) { idx_commit(s); idx_begin(s); }
    }
    idx_commit(s);
    double fill = now() - t;
    free(texts);
    free(vecs);
    rag_retriever_params rp = rag_retriever_default_params();
    rp.model = m;
    rp.n_threads = threads;
    rag_retriever *r = NULL;
    char err[1024];
    if (rag_retriever_new(s, &rp, &r, err, sizeof err) != RAG_OK) { fprintf(stderr, "%s\n", err); return 1; }
    enum { Q = 200 };
    static double lat[3][Q], cpu[3][Q], emb[Q];
    float *qv = malloc(sizeof(float) * (size_t)dim);
    rag_hit hits[10];
    for (int q = 0; q < Q + 10; q++) {
        char query[256];
        size_t o = 0;
        for (int w = 0; w < 6; w++) {
            char wb[16];
            double u = urand();
            word(wb, sizeof wb, (unsigned)(u * u * VOCAB));
            o += (size_t)snprintf(query + o, sizeof query - o, "%s%s", w ? " " : "", wb);
        }
        for (int mode = 0; mode < 3; mode++) {
            int n = 0;
            double t0 = now(), c0 = cpu_now();
            if (rag_retrieve(r, query, o, (rag_search_mode)mode, 10, NULL, hits, &n) != RAG_OK) {
                fprintf(stderr, "%s\n", rag_retriever_errmsg(r));
                return 1;
            }
            if (q >= 10) {      /* the first 10 warm up */
                lat[mode][q - 10] = now() - t0;
                cpu[mode][q - 10] = cpu_now() - c0;
            }
        }
        double t0 = now();
        rag_retriever_embed(r, query, o, qv);
        if (q >= 10) emb[q - 10] = now() - t0;
    }
    printf("search at %ld chunks (dim %d, filled in %.1f s), %d queries of 6 words, k = 10, %d engine thread(s):\n",
           n_chunks, dim, fill, Q, threads);
    qsort(emb, Q, sizeof emb[0], cmp_d);
    printf("  query embedding alone   p50 %7.2f ms  p99 %7.2f ms\n", emb[Q / 2] * 1e3, emb[Q * 99 / 100] * 1e3);
    for (int mode = 0; mode < 3; mode++) {
        qsort(lat[mode], Q, sizeof lat[mode][0], cmp_d);
        qsort(cpu[mode], Q, sizeof cpu[mode][0], cmp_d);
        printf("  %-7s (full rag_retrieve) p50 %7.2f ms  p99 %7.2f ms   CPU p50 %7.2f ms\n",
               rag_search_mode_str((rag_search_mode)mode), lat[mode][Q / 2] * 1e3, lat[mode][Q * 99 / 100] * 1e3,
               cpu[mode][Q / 2] * 1e3);
    }
    free(qv);
    rag_retriever_free(r);
    idx_close(s);
    return 0;
}

int main(int argc, char **argv) {
    int copies = 5, threads = 2, dim = 1024, layers = 2, sdim = 256;
    bool ingest = true;
    long sizes[8] = {10000, 100000};
    int n_sizes = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--copies") == 0 && i + 1 < argc) copies = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dim") == 0 && i + 1 < argc) dim = atoi(argv[++i]);
        else if (strcmp(argv[i], "--layers") == 0 && i + 1 < argc) layers = atoi(argv[++i]);
        else if (strcmp(argv[i], "--search-dim") == 0 && i + 1 < argc) sdim = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-ingest") == 0) ingest = false;
        else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
            n_sizes = 0;
            for (char *p = argv[++i]; *p && n_sizes < 8;) {
                sizes[n_sizes++] = strtol(p, &p, 10);
                if (*p == ',') p++;
            }
        } else {
            fprintf(stderr, "usage: bench_ingest [--copies N] [--threads T] [--dim D] [--layers L] [--search-dim D] "
                            "[--sizes 10000,100000] [--no-ingest]\n");
            return 2;
        }
    }
    char tmp[] = "/tmp/mrag-bench-ingest.XXXXXX";
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 1; }
    int rc = 0;
    if (ingest) rc = bench_ingest(tmp, copies, threads, dim, layers);
    if (!rc && n_sizes) {
        char model[600];
        snprintf(model, sizeof model, "%s/search-model.gguf", tmp);
        if (mkmodel(model, sdim, 2, sdim / 64, 1, sdim * 11 / 4 / 64 * 64, "q8_0") != 0) rc = 1;
        llm_model *m = rc ? NULL : load(model);
        if (!m) rc = 1;
        for (int i = 0; i < n_sizes && !rc; i++) rc = bench_search(tmp, sizes[i], threads, sdim, m);
        llm_model_free(m);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0) rc = 1;
    return rc;
}
