/* embed_pool.c — the embedding workers of remote ingestion: see
 * embed_pool_internal.h. */
#include "rag/embed_pool_internal.h"
#include "rag/util_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rag_embed_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;        /* a job was queued, or stop */
    pthread_cond_t room;        /* a job finished */
    rag_embed_job *head, *tail;
    int outstanding, max_jobs;
    bool stop;
    int fail_rc;
    char fail[512];
    int dim;
    int n;
    rag_remote **remotes;
    pthread_t *threads;
    int started;
    void **args;
};

typedef struct {
    rag_embed_pool *p;
    int i;
} worker_arg;

/* Sends job j (outside the lock): RAG_OK, RAG_ERR_FORMAT (refused: some
 * part, or the whole job without parts), or a failure of the run. A
 * refused job of several parts is split: each part alone. */
static int run_job(rag_embed_pool *p, rag_remote *r, rag_embed_job *j) {
    int rc = rag_remote_embed_batch(r, j->texts, j->lens, j->n, j->out, p->dim);
    if (rc != RAG_OK) snprintf(j->err, sizeof j->err, "%s", rag_remote_errmsg(r));
    for (int k = 0; k < j->n_parts; k++) {
        j->parts[k].rc = rc;
        snprintf(j->parts[k].err, sizeof j->parts[k].err, "%s", rc != RAG_OK ? j->err : "");
    }
    if (rc != RAG_ERR_FORMAT || j->n_parts < 2) return rc;
    /* which document did the server refuse? each on its own */
    int at = 0, worst = RAG_OK;
    bool refused = false;
    for (int k = 0; k < j->n_parts; k++) {
        rag_embed_part *pt = &j->parts[k];
        if (worst != RAG_OK) {
            pt->rc = worst;
            snprintf(pt->err, sizeof pt->err, "%s", j->err);
        } else {
            pt->rc = rag_remote_embed_batch(r, j->texts + at, j->lens + at, pt->n, j->out + (size_t)at * (size_t)p->dim,
                                            p->dim);
            snprintf(pt->err, sizeof pt->err, "%s", pt->rc != RAG_OK ? rag_remote_errmsg(r) : "");
            if (pt->rc == RAG_ERR_FORMAT) refused = true;
            else if (pt->rc != RAG_OK) {
                worst = pt->rc;
                snprintf(j->err, sizeof j->err, "%s", pt->err);
            }
        }
        at += pt->n;
    }
    return worst != RAG_OK ? worst : refused ? RAG_ERR_FORMAT : RAG_OK;
}

static void *worker(void *arg) {
    worker_arg *wa = arg;
    rag_embed_pool *p = wa->p;
    rag_remote *r = p->remotes[wa->i];
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stop) pthread_cond_wait(&p->work, &p->mu);
        if (!p->head) break;
        rag_embed_job *j = p->head;
        p->head = j->next;
        if (!p->head) p->tail = NULL;
        int rc = p->fail_rc;
        if (rc != RAG_OK) {
            snprintf(j->err, sizeof j->err, "%s", p->fail);
        } else {
            pthread_mutex_unlock(&p->mu);
            rc = run_job(p, r, j);
            pthread_mutex_lock(&p->mu);
            /* one input's refusal fails its document; anything else
             * (network, server down after the retries, another model,
             * cancel) fails the run */
            if (rc != RAG_OK && rc != RAG_ERR_FORMAT && p->fail_rc == RAG_OK) {
                p->fail_rc = rc;
                snprintf(p->fail, sizeof p->fail, "%s", j->err);
            }
        }
        j->rc = rc;
        if (rc != RAG_OK && rc != RAG_ERR_FORMAT)
            for (int k = 0; k < j->n_parts; k++) {
                j->parts[k].rc = rc;
                snprintf(j->parts[k].err, sizeof j->parts[k].err, "%s", j->err);
            }
        j->done = 1;
        p->outstanding--;
        pthread_cond_broadcast(&p->room);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Contract: see embed_pool_internal.h. */
int rag_embed_pool_new(const rag_remote_params *rp, int n_workers, int max_jobs, int dim, rag_embed_pool **out,
                       char *err, size_t errlen) {
    *out = NULL;
    if (!rp || n_workers < 1 || max_jobs < 1) return rag_errf(err, errlen, RAG_ERR_ARG, "embedding pool: bad arguments");
    rag_embed_pool *p = calloc(1, sizeof *p);
    if (!p) return rag_errf(err, errlen, RAG_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->room, NULL);
    p->n = n_workers;
    p->max_jobs = max_jobs;
    p->dim = dim;
    p->remotes = calloc((size_t)n_workers, sizeof *p->remotes);
    p->threads = calloc((size_t)n_workers, sizeof *p->threads);
    p->args = calloc((size_t)n_workers, sizeof *p->args);
    int rc = RAG_OK;
    if (!p->remotes || !p->threads || !p->args) { rc = rag_errf(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto fail; }
    if ((rc = rag_remote_new(rp, &p->remotes[0], err, errlen)) != RAG_OK) goto fail;
    for (int i = 1; i < n_workers; i++) {
        rag_remote_params q = *rp;
        q.probe = false;
        q.model = rag_remote_model(p->remotes[0]);
        if ((rc = rag_remote_new(&q, &p->remotes[i], err, errlen)) != RAG_OK) goto fail;
    }
    *out = p;
    return RAG_OK;
fail:
    rag_embed_pool_free(p);
    return rc;
}

void rag_embed_pool_set_dim(rag_embed_pool *p, int dim) { p->dim = dim; }

rag_remote *rag_embed_pool_remote(rag_embed_pool *p) { return p ? p->remotes[0] : NULL; }

/* Starts the threads at the first job: a run with nothing to embed starts none. */
static int start(rag_embed_pool *p) {
    for (; p->started < p->n; p->started++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) break;
        wa->p = p;
        wa->i = p->started;
        p->args[p->started] = wa;
        if (pthread_create(&p->threads[p->started], NULL, worker, wa) != 0) {
            free(wa);
            p->args[p->started] = NULL;
            break;
        }
    }
    return p->started;
}

void rag_embed_pool_submit(rag_embed_pool *p, rag_embed_job *job) {
    job->done = 0;
    job->rc = RAG_OK;
    job->err[0] = 0;
    job->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->started < p->n && start(p) == 0) {
        /* no thread could start: the job fails here */
        job->rc = RAG_ERR_NOMEM;
        snprintf(job->err, sizeof job->err, "cannot start an embedding thread");
        if (p->fail_rc == RAG_OK) { p->fail_rc = RAG_ERR_NOMEM; snprintf(p->fail, sizeof p->fail, "%s", job->err); }
        for (int k = 0; k < job->n_parts; k++) {
            job->parts[k].rc = job->rc;
            snprintf(job->parts[k].err, sizeof job->parts[k].err, "%s", job->err);
        }
        job->done = 1;
        pthread_mutex_unlock(&p->mu);
        return;
    }
    while (p->outstanding >= p->max_jobs) pthread_cond_wait(&p->room, &p->mu);
    p->outstanding++;
    if (p->tail) p->tail->next = job;
    else p->head = job;
    p->tail = job;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

bool rag_embed_job_done(rag_embed_pool *p, const rag_embed_job *job) {
    pthread_mutex_lock(&p->mu);
    bool d = job->done != 0;
    pthread_mutex_unlock(&p->mu);
    return d;
}

void rag_embed_pool_wait(rag_embed_pool *p, int ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&p->mu);
    if (p->outstanding > 0) pthread_cond_timedwait(&p->room, &p->mu, &ts);
    pthread_mutex_unlock(&p->mu);
}

int rag_embed_pool_outstanding(rag_embed_pool *p) {
    pthread_mutex_lock(&p->mu);
    int n = p->outstanding;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int rag_embed_pool_failed(rag_embed_pool *p, char *msg, size_t n) {
    pthread_mutex_lock(&p->mu);
    int rc = p->fail_rc;
    if (msg && n) snprintf(msg, n, "%s", p->fail);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void rag_embed_pool_reset(rag_embed_pool *p) {
    pthread_mutex_lock(&p->mu);
    if (p->outstanding == 0) {
        p->fail_rc = RAG_OK;
        p->fail[0] = 0;
    }
    pthread_mutex_unlock(&p->mu);
}

void rag_embed_pool_free(rag_embed_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++) pthread_join(p->threads[i], NULL);
    for (int i = 0; p->args && i < p->n; i++) free(p->args[i]);
    for (int i = 0; p->remotes && i < p->n; i++) rag_remote_free(p->remotes[i]);
    free(p->remotes);
    free(p->threads);
    free(p->args);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->room);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
