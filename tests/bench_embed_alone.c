/* bench_embed_alone.c — the embedding server's own throughput, for
 * tests/bench_remote_ingest.sh (make bench-scale): the chunks `mrag ingest
 * DIR` would make (walk, extract, chunk with the model's tokenizer at the
 * default sizes), sent to BASE/embeddings in batches of B by P threads, each
 * with its own rag_remote (the client ingestion uses), and nothing else:
 * no extraction, chunking or storing while the clock runs. Prints one line:
 * "alone P=... B=...: N chunks in S s = X chunks/s".
 *
 *   build/tests/bench_embed_alone BASE DIR MODEL B P */
#define _GNU_SOURCE
#include "llm/llm.h"
#include "rag/rag.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *base;
static char **texts;
static size_t *lens;
static size_t n_texts;
static int batch;
static atomic_size_t next_at;
static atomic_int failures;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static void *worker(void *arg) {
    (void)arg;
    rag_remote_params rp = rag_remote_default_params();
    rp.base_url = base;
    rag_remote *r = NULL;
    char err[512];
    if (rag_remote_new(&rp, &r, err, sizeof err) != RAG_OK) {
        fprintf(stderr, "bench_embed_alone: %s\n", err);
        atomic_fetch_add(&failures, 1);
        return NULL;
    }
    int dim = 0;
    if (rag_remote_embed_dim(r, &dim) != RAG_OK) { atomic_fetch_add(&failures, 1); rag_remote_free(r); return NULL; }
    float *out = malloc((size_t)batch * (size_t)dim * sizeof *out);
    for (;;) {
        size_t at = atomic_fetch_add(&next_at, (size_t)batch);
        if (at >= n_texts || !out) break;
        int n = (int)(n_texts - at < (size_t)batch ? n_texts - at : (size_t)batch);
        if (rag_remote_embed_batch(r, (const char *const *)texts + at, lens + at, n, out, dim) != RAG_OK) {
            fprintf(stderr, "bench_embed_alone: %s\n", rag_remote_errmsg(r));
            atomic_fetch_add(&failures, 1);
        }
    }
    free(out);
    rag_remote_free(r);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: bench_embed_alone BASE DIR MODEL BATCH PARALLEL\n"); return 2; }
    base = argv[1];
    batch = atoi(argv[4]);
    int par = atoi(argv[5]);
    if (batch < 1 || par < 1) return 2;
    char err[1024];
    llm_model_params mp = llm_model_default_params();
    mp.vocab_only = true;
    llm_model *m = NULL;
    if (llm_model_load(argv[3], &mp, &m, err, sizeof err) != LLM_OK) { fprintf(stderr, "%s\n", err); return 1; }
    rag_walk_params wp = rag_walk_default_params();
    rag_walk_result wr;
    if (rag_walk(argv[2], &wp, &wr, err, sizeof err) != RAG_OK) { fprintf(stderr, "%s\n", err); return 1; }
    rag_chunk_params cp = rag_chunk_default_params();
    rag_ingest_params ip = rag_ingest_default_params();
    cp.max_tokens = ip.chunk_tokens;
    cp.overlap_tokens = ip.overlap_tokens;
    cp.max_chunk_bytes = 32 * (size_t)cp.max_tokens;
    size_t cap = 0;
    for (size_t i = 0; i < wr.n; i++) {
        if (wr.entries[i].skip != RAG_SKIP_NONE) continue;
        rag_extract_params xp = rag_extract_default_params();
        rag_doc *d = NULL;
        if (rag_extract_file(wr.entries[i].path, wr.entries[i].type, &xp, &d, err, sizeof err) != RAG_OK) continue;
        rag_chunk_list cl = {0};
        if (rag_chunk_doc(d, &cp, rag_count_llm_tokens, m, &cl, err, sizeof err) == RAG_OK) {
            for (size_t k = 0; k < cl.n; k++) {
                if (n_texts == cap) {
                    cap = cap ? cap * 2 : 1024;
                    texts = realloc(texts, cap * sizeof *texts);
                    lens = realloc(lens, cap * sizeof *lens);
                    if (!texts || !lens) return 1;
                }
                texts[n_texts] = strndup(cl.chunks[k].embed_text, cl.chunks[k].embed_len);
                lens[n_texts++] = cl.chunks[k].embed_len;
            }
        }
        rag_chunk_list_free(&cl);
        rag_doc_free(d);
    }
    rag_walk_result_free(&wr);
    pthread_t *th = calloc((size_t)par, sizeof *th);
    double t0 = now();
    for (int i = 0; i < par; i++) pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < par; i++) pthread_join(th[i], NULL);
    double s = now() - t0;
    printf("alone P=%d B=%d: %zu chunks in %.2f s = %.1f chunks/s%s\n", par, batch, n_texts, s, (double)n_texts / s,
           atomic_load(&failures) ? " (FAILURES: not a figure)" : "");
    for (size_t i = 0; i < n_texts; i++) free(texts[i]);
    free(texts);
    free(lens);
    free(th);
    llm_model_free(m);
    return atomic_load(&failures) ? 1 : 0;
}
