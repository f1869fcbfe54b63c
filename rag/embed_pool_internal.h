/* embed_pool_internal.h — the embedding workers of remote ingestion
 * (rag/embed_pool.c): N threads, each with its own rag_remote (one HTTP
 * connection of rag/http.c, kept alive), taking batches from one bounded
 * queue. The ingester submits a document's batches and commits the
 * document once each of them has its vectors (rag/ingest.c). */
#ifndef MRAG_RAG_EMBED_POOL_INTERNAL_H
#define MRAG_RAG_EMBED_POOL_INTERNAL_H

#include "rag/rag.h"

/* A run of consecutive inputs of a job that succeed or fail together (one
 * document's chunks in a batch that holds several documents). */
typedef struct rag_embed_part {
    int n;                      /* inputs, set by the submitter */
    int rc;                     /* set by the worker: RAG_OK, RAG_ERR_FORMAT (the
                                   server refused this part), or the pool's failure */
    char err[512];
} rag_embed_part;

/* One batch: texts in, vectors out. The texts, out and parts stay the
 * submitter's and must live until the job is done. */
typedef struct rag_embed_job {
    const char *const *texts;
    const size_t *lens;
    int n;
    float *out;                 /* n * dim floats */
    /* optional (NULL, 0): the inputs in parts (their n add up to n). When
     * the server refuses the whole batch (400/413/422) and it has more
     * than one part, each part is sent again on its own, so that a refusal
     * is charged to the part at fault; every part's rc is set either way */
    rag_embed_part *parts;
    int n_parts;
    /* set by the worker */
    int done;                   /* read with rag_embed_job_done */
    int rc;                     /* RAG_OK, RAG_ERR_FORMAT (the server refused this
                                   input), or the pool's failure */
    char err[512];
    struct rag_embed_job *next; /* the queue's */
} rag_embed_job;

typedef struct rag_embed_pool rag_embed_pool;

/* Starts n_workers threads over servers made from rp (the first probes
 * BASE/models; the others reuse its model name), with at most max_jobs
 * batches submitted and not yet done. *out owned. */
int rag_embed_pool_new(const rag_remote_params *rp, int n_workers, int max_jobs, int dim, rag_embed_pool **out,
                       char *err, size_t errlen);
/* The vectors' length, known after a probe (before the first job). */
void rag_embed_pool_set_dim(rag_embed_pool *p, int dim);
/* The first worker's server (probed), for checks before any job: borrowed. */
rag_remote *rag_embed_pool_remote(rag_embed_pool *p);
/* Queues job; waits while max_jobs are outstanding (backpressure). */
void rag_embed_pool_submit(rag_embed_pool *p, rag_embed_job *job);
bool rag_embed_job_done(rag_embed_pool *p, const rag_embed_job *job);
/* Waits until a job finishes (or at most ms milliseconds). */
void rag_embed_pool_wait(rag_embed_pool *p, int ms);
/* Jobs submitted and not done. */
int rag_embed_pool_outstanding(rag_embed_pool *p);
/* The first failure that is not one input's fault (network, server,
 * dimension, cancel): RAG_OK while none. Once failed, queued jobs end at
 * once with that failure. msg (may be NULL) gets its message. */
int rag_embed_pool_failed(rag_embed_pool *p, char *msg, size_t n);
/* Forgets an earlier failure (no job may be outstanding): the next run
 * (a --watch batch) tries the server again. */
void rag_embed_pool_reset(rag_embed_pool *p);
/* Stops the threads (after the jobs in flight) and frees. NULL: no-op. */
void rag_embed_pool_free(rag_embed_pool *p);

#endif
