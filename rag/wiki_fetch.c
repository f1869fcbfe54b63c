/* wiki_fetch.c — page fetches in flight ahead of the sync: see
 * wiki_internal.h ("page fetches"). N threads, each with its own client
 * (connection, session cookie, a share of the rate limit), take fetches
 * from one queue; the sync takes the results back in page order. */
#include "rag/wiki_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct wiki_fetcher {
    pthread_mutex_t mu;
    pthread_cond_t work;        /* a fetch was queued, or stop */
    pthread_cond_t done;        /* a fetch finished */
    wiki_fetch *head, *tail;
    bool stop;
    volatile int abort;         /* the clients' cancel flag: ends their transfers */
    volatile int *cancel;       /* the caller's, passed on to abort while waiting */
    int n;
    wiki_client **clients;
    pthread_t *threads;
    int started;
    struct wiki_fetcher_arg {
        wiki_fetcher *f;
        int i;
    } *args;
};

void rag_wiki_parse_params(char *buf, size_t n, int64_t revid) {
    snprintf(buf, n, "action=parse&oldid=%lld&prop=text%%7Crevid&disableeditsection=1&disablelimitreport=1&disabletoc=1",
             (long long)revid);
}

static void *worker(void *arg) {
    struct wiki_fetcher_arg *a = arg;
    wiki_fetcher *f = a->f;
    wiki_client *c = f->clients[a->i];
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->head && !f->stop) pthread_cond_wait(&f->work, &f->mu);
        if (!f->head) break;
        wiki_fetch *j = f->head;
        f->head = j->next;
        if (!f->head) f->tail = NULL;
        j->state = WIKI_FETCH_RUNNING;
        pthread_mutex_unlock(&f->mu);
        char params[192];
        rag_wiki_parse_params(params, sizeof params, j->revid);
        j->err[0] = 0;
        int rc = rag_wiki_client_call(c, params, false, &j->r, j->err, sizeof j->err);
        pthread_mutex_lock(&f->mu);
        j->rc = rc;
        j->state = WIKI_FETCH_DONE;
        pthread_cond_broadcast(&f->done);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Contract: see wiki_internal.h. */
int rag_wiki_fetcher_new(const wiki_client_params *cp, const char *user, const char *password, int n,
                         wiki_fetcher **out, char *err, size_t errlen) {
    *out = NULL;
    if (n < 1) return rag_ing_err(err, errlen, RAG_ERR_ARG, "wiki: bad number of fetches in flight %d", n);
    wiki_fetcher *f = calloc(1, sizeof *f);
    if (!f) return rag_ing_err(err, errlen, RAG_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->work, NULL);
    pthread_cond_init(&f->done, NULL);
    f->n = n;
    f->cancel = cp->cancel;
    int rc = RAG_OK;
    f->clients = calloc((size_t)n, sizeof *f->clients);
    f->threads = calloc((size_t)n, sizeof *f->threads);
    f->args = calloc((size_t)n, sizeof *f->args);
    if (!f->clients || !f->threads || !f->args) { rc = rag_ing_err(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto fail; }
    wiki_client_params p = *cp;
    /* the run's rate is shared by the connections */
    if (p.rate > 0) p.rate = cp->rate / n;
    p.cancel = &f->abort;
    for (int i = 0; i < n; i++) {
        if ((rc = rag_wiki_client_new(&p, &f->clients[i], err, errlen)) != RAG_OK) goto fail;
        if (user && (rc = rag_wiki_client_login(f->clients[i], user, password, err, errlen)) != RAG_OK) goto fail;
    }
    for (; f->started < n; f->started++) {
        f->args[f->started].f = f;
        f->args[f->started].i = f->started;
        if (pthread_create(&f->threads[f->started], NULL, worker, &f->args[f->started]) != 0) break;
    }
    if (f->started == 0) { rc = rag_ing_err(err, errlen, RAG_ERR_NOMEM, "cannot start a fetch thread"); goto fail; }
    *out = f;
    return RAG_OK;
fail:
    rag_wiki_fetcher_free(f);
    return rc;
}

void rag_wiki_fetcher_submit(wiki_fetcher *f, wiki_fetch *j) {
    memset(&j->r, 0, sizeof j->r);
    j->rc = RAG_OK;
    j->err[0] = 0;
    j->next = NULL;
    pthread_mutex_lock(&f->mu);
    j->state = WIKI_FETCH_QUEUED;
    if (f->tail) f->tail->next = j;
    else f->head = j;
    f->tail = j;
    pthread_cond_signal(&f->work);
    pthread_mutex_unlock(&f->mu);
}

/* Waits (under f->mu) until j is done, passing the caller's cancel flag on
 * to the transfers. */
static void wait_done(wiki_fetcher *f, wiki_fetch *j) {
    while (j->state != WIKI_FETCH_DONE) {
        if (f->cancel && *f->cancel) f->abort = 1;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&f->done, &f->mu, &ts);
    }
}

void rag_wiki_fetcher_wait(wiki_fetcher *f, wiki_fetch *j) {
    pthread_mutex_lock(&f->mu);
    wait_done(f, j);
    pthread_mutex_unlock(&f->mu);
}

void rag_wiki_fetcher_drop(wiki_fetcher *f, wiki_fetch *j, bool abort) {
    pthread_mutex_lock(&f->mu);
    if (j->state == WIKI_FETCH_QUEUED) {
        /* not started: out of the queue */
        wiki_fetch **pp = &f->head, *prev = NULL;
        while (*pp && *pp != j) { prev = *pp; pp = &(*pp)->next; }
        if (*pp) {
            *pp = j->next;
            if (f->tail == j) f->tail = prev;
        }
        j->state = WIKI_FETCH_DONE;
        j->rc = RAG_ERR_IO;
        snprintf(j->err, sizeof j->err, "not fetched");
    } else if (j->state == WIKI_FETCH_RUNNING) {
        if (abort) f->abort = 1;
        wait_done(f, j);
    }
    pthread_mutex_unlock(&f->mu);
    rag_wiki_resp_release(&j->r);
}

void rag_wiki_fetcher_counts(const wiki_fetcher *f, size_t *requests, size_t *retries, size_t *relogins) {
    for (int i = 0; f && i < f->n; i++) {
        size_t a = 0, b = 0, c = 0;
        if (!f->clients[i]) continue;
        rag_wiki_client_counts(f->clients[i], &a, &b, &c);
        *requests += a;
        *retries += b;
        *relogins += c;
    }
}

void rag_wiki_fetcher_free(wiki_fetcher *f) {
    if (!f) return;
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    f->abort = 1;
    pthread_cond_broadcast(&f->work);
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < f->started; i++) pthread_join(f->threads[i], NULL);
    for (int i = 0; f->clients && i < f->n; i++) rag_wiki_client_free(f->clients[i]);
    free(f->clients);
    free(f->threads);
    free(f->args);
    pthread_cond_destroy(&f->work);
    pthread_cond_destroy(&f->done);
    pthread_mutex_destroy(&f->mu);
    free(f);
}
