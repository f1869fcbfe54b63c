/* ingest.c — the ingestion pipeline: walk -> skip unchanged -> extract ->
 * chunk -> embed -> store, one transaction per document (see
 * docs/ingestion.md, "The ingestion pipeline"). Never prints: progress and
 * per-file outcomes go through the caller's callback. */
#include "rag/embed_pool_internal.h"
#include "rag/rag.h"
#include "rag/util_internal.h"

#include "index/index.h"
#include "llm/llm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A document whose chunks are with the embedding server (remote
 * ingestion): stored once every chunk has its vector, in submission
 * order. Its chunks go into the batches being filled (embed_batch), which
 * may hold chunks of several documents. */
typedef struct pending_doc {
    char *uri, *title, *type, *groups, *version;
    int64_t size, mtime_ns;
    char sha256[65];
    rag_chunk_list cl;
    float *vecs;
    size_t queued;              /* chunks put into batches so far */
    int batches_left;           /* batches holding its chunks, not yet back */
    int rc;                     /* the first failure of its batches (RAG_OK while none) */
    char err[512];
    /* the run's view (rag_ingester_run_dir) */
    bool in_run;
    bool exists;                /* an older version is stored (updated) */
    int64_t old_n_chunks;
    char *note;                 /* a warning for the outcome (pages without text) */
    struct pending_doc *next;
} pending_doc;

/* A batch of chunks for the server: consecutive chunks of one or more
 * pending documents (one part each), filled in walk order. */
typedef struct embed_batch {
    rag_embed_job job;
    const char **texts;
    size_t *lens;
    float *out;                 /* n * dim, copied to the documents when back */
    int n;
    pending_doc **docs;         /* per part */
    size_t *first;              /* per part: the index of its first chunk in the document */
    rag_embed_part *parts;
    int n_parts;
    struct embed_batch *next;   /* the batches at the server */
} embed_batch;

struct run_ctx;

struct rag_ingester {
    idx_store *s;               /* borrowed */
    rag_embed_pool *pool;       /* remote embeddings, or NULL */
    pending_doc *pend_head, *pend_tail;
    size_t pend_docs, pend_chunks;      /* in the queue */
    size_t max_pend;            /* the queue's bound (documents, and chunks) */
    embed_batch *open;          /* the batch being filled, or NULL */
    embed_batch *sent_head, *sent_tail; /* submitted, not yet taken back */
    struct run_ctx *run;        /* the rag_ingester_run_dir in progress, or NULL */
    rag_ingest_params p;
    llm_context *ctx;           /* owned: the embedding context, made at the first embedding */
    llm_context_params ctx_params;
    int dim;
    float *vecs;                /* embedding scratch, vec_cap vectors */
    size_t vec_cap;
    idx_chunk *ic;              /* idx_chunk scratch */
    size_t ic_cap;
    int since_save;             /* documents changed since the last idx_save */
    rag_ingest_stats *st;       /* the run being counted, or NULL */
    uint64_t chunks_done;       /* chunks embedded by this ingester */
    /* put_remote_sync's document */
    bool sync_failed;
    int sync_n;
    char sync_reason[1024];
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define fail rag_errf        /* the error convention of rag/ (util_internal.h) */

const char *rag_ingest_outcome_str(rag_ingest_outcome o) {
    switch (o) {
    case RAG_ING_ADDED: return "added";
    case RAG_ING_UPDATED: return "updated";
    case RAG_ING_UNCHANGED: return "unchanged";
    case RAG_ING_RENAMED: return "renamed";
    case RAG_ING_REMOVED: return "removed";
    case RAG_ING_SKIPPED: return "skipped";
    case RAG_ING_FAILED: return "failed";
    }
    return "?";
}

rag_ingest_params rag_ingest_default_params(void) {
    rag_ingest_params p;
    memset(&p, 0, sizeof p);
    p.layer = -1;
    p.chunk_tokens = 256;
    p.overlap_tokens = 32;
    p.max_file_bytes = 50ull << 20;
    p.budget = rag_budget_default_params();
    p.embed_batch = 16;
    p.save_every = 50;
    return p;
}

/* Drops every document of the store in one transaction (for --reindex). */
static int drop_all(idx_store *s, char *err, size_t errlen) {
    idx_doc *docs = NULL;
    size_t n = 0;
    int rc = idx_doc_list(s, NULL, &docs, &n);
    if (rc != IDX_OK) goto done;
    if ((rc = idx_begin(s)) != IDX_OK) goto done;
    for (size_t i = 0; i < n && rc == IDX_OK; i++) rc = idx_doc_delete(s, docs[i].uri);
    if (rc == IDX_OK) rc = idx_commit(s);
    else idx_rollback(s);
done:
    if (rc != IDX_OK) fail(err, errlen, RAG_ERR_IO, "--reindex: %s", idx_errmsg(s));
    idx_doc_list_free(docs, n);
    return rc == IDX_OK ? RAG_OK : RAG_ERR_IO;
}

/* Checks the store's fingerprint against the model's; records it when the
 * store has none (or holds no vectors), drops everything first with reindex. */
static int check_fingerprint(rag_ingester *ing, char *err, size_t errlen) {
    idx_fingerprint fp, old;
    memset(&fp, 0, sizeof fp);
    char remote_name[512] = "";
    if (ing->pool) {
        /* the served model: its sha256 when the server reports one (mrag
         * serve), else its name (weaker: docs/remote.md) */
        rag_remote *r = rag_embed_pool_remote(ing->pool);
        const char *sha = rag_remote_served_sha256(r);
        if (sha[0]) snprintf(fp.model_sha256, sizeof fp.model_sha256, "%s", sha);
        else {
            rag_remote_name_sha256(rag_remote_model(r), fp.model_sha256);
            snprintf(remote_name, sizeof remote_name, "%s", rag_remote_model(r));
        }
    } else if (llm_model_fingerprint(ing->p.model, fp.model_sha256) != LLM_OK) {
        /* the model file's hash, combined with its LoRA adapters' when it has any */
        return fail(err, errlen, RAG_ERR_IO, "cannot hash the model file");
    }
    fp.layer = ing->p.layer;
    snprintf(fp.pooling, sizeof fp.pooling, "mean");
    fp.dim = ing->dim;
    int rc = idx_fingerprint_get(ing->s, &old);
    if (rc == IDX_OK && idx_fingerprint_check(ing->s, &fp) != IDX_OK) {
        idx_counts c;
        if (idx_get_counts(ing->s, &c) != IDX_OK)
            return fail(err, errlen, RAG_ERR_IO, "%s", idx_errmsg(ing->s));
        if (c.vectors > 0 || c.documents > 0) {
            char why[512];
            snprintf(why, sizeof why, "%s", idx_errmsg(ing->s));
            char *built_by = NULL;
            idx_meta_get(ing->s, RAG_REMOTE_MODEL_META, &built_by);
            char was[600] = "";
            if (built_by && *built_by) snprintf(was, sizeof was, "; the index was built through a server with the model \"%.500s\"", built_by);
            free(built_by);
            if (!ing->p.reindex)
                return fail(err, errlen, RAG_ERR_MISMATCH,
                            "%s%s%s (LoRA adapters count: the same --lora gives the same fingerprint); "
                            "to rebuild it with this model run `mrag ingest --reindex` "
                            "(or ingest into another --index folder)",
                            why, was,
                            remote_name[0] ? "; this server reports no sha256, so its model is known by name only" : "");
            if ((rc = drop_all(ing->s, err, errlen)) != RAG_OK) return rc;
        }
    } else if (rc != IDX_OK && rc != IDX_ERR_NOTFOUND) {
        return fail(err, errlen, RAG_ERR_IO, "%s", idx_errmsg(ing->s));
    }
    if (idx_fingerprint_set(ing->s, &fp) != IDX_OK)
        return fail(err, errlen, RAG_ERR_MISMATCH, "%s", idx_errmsg(ing->s));
    /* an index built by name says so (ask --llm-embeddings compares it);
     * a sha256 makes the name irrelevant */
    char *had = NULL;
    bool has = idx_meta_get(ing->s, RAG_REMOTE_MODEL_META, &had) == IDX_OK;
    free(had);
    if ((remote_name[0] || has) && idx_meta_set(ing->s, RAG_REMOTE_MODEL_META, remote_name) != IDX_OK)
        return fail(err, errlen, RAG_ERR_IO, "%s", idx_errmsg(ing->s));
    if (!ing->p.model || ing->pool) return RAG_OK;
    /* Lets a search skip hashing a multi-GB model: "path\tsize\tmtime_ns\tsha"
     * (rag_retriever_new trusts the sha while path, size and mtime match). */
    llm_model_info info;
    llm_model_get_info(ing->p.model, &info);
    struct stat mst;
    char *real = info.path ? realpath(info.path, NULL) : NULL;
    char file_sha[65];
    if (real && stat(real, &mst) == 0 && llm_model_sha256(ing->p.model, file_sha) == LLM_OK) {
        char val[PATH_MAX + 160];
        snprintf(val, sizeof val, "%s\t%lld\t%lld\t%s", real, (long long)mst.st_size,
                 (long long)mst.st_mtim.tv_sec * 1000000000ll + mst.st_mtim.tv_nsec, file_sha);
        idx_meta_set(ing->s, "rag.model_stat", val);    /* a cache: failure only costs a hash later */
    }
    free(real);
    return RAG_OK;
}

int rag_ingester_new(idx_store *s, const rag_ingest_params *p, rag_ingester **out, char *err, size_t errlen) {
    int rc = RAG_OK;
    rag_ingester *ing = NULL;
    if (out) *out = NULL;
    if (!s || !p || !out || (!p->model && !p->remote)) { rc = fail(err, errlen, RAG_ERR_ARG, "ingest: a store and a model are required"); goto done; }
    if (p->remote && p->layer != -1) {
        rc = fail(err, errlen, RAG_ERR_ARG, "ingest: a server embeds the final layer: --layer needs a local model");
        goto done;
    }
    if (p->chunk_tokens < 8 || p->chunk_tokens > 8192 || p->overlap_tokens < 0 || p->overlap_tokens >= p->chunk_tokens) {
        rc = fail(err, errlen, RAG_ERR_ARG, "ingest: bad chunk size %d / overlap %d", p->chunk_tokens, p->overlap_tokens);
        goto done;
    }
    if (!(ing = calloc(1, sizeof *ing))) { rc = fail(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
    ing->s = s;
    ing->p = *p;
    if (ing->p.embed_batch < 1) ing->p.embed_batch = 16;
    if (ing->p.save_every < 1) ing->p.save_every = 50;
    if (p->remote) {
        int par = p->embed_parallel > 0 ? p->embed_parallel : 4;
        ing->p.embed_parallel = par;
        if ((rc = rag_embed_pool_new(p->remote, par, 2 * par, 0, &ing->pool, err, errlen)) != RAG_OK) goto done;
        rag_remote *r = rag_embed_pool_remote(ing->pool);
        if ((rc = rag_remote_embed_dim(r, &ing->dim)) != RAG_OK) {
            rc = fail(err, errlen, rc, "%s", rag_remote_errmsg(r));
            goto done;
        }
        if (rag_remote_served_n_embd(r) && rag_remote_served_n_embd(r) != ing->dim) {
            rc = fail(err, errlen, RAG_ERR_MISMATCH, "the server reports %d dimensions for its model but embeds %d",
                      rag_remote_served_n_embd(r), ing->dim);
            goto done;
        }
        rag_embed_pool_set_dim(ing->pool, ing->dim);
        /* batches out (2 x par) + the one being filled, plus as much again
         * for documents complete behind one still at the server */
        ing->max_pend = (size_t)(4 * par + 2) * (size_t)ing->p.embed_batch;
        if (ing->max_pend < 64) ing->max_pend = 64;
        if ((rc = check_fingerprint(ing, err, errlen)) != RAG_OK) goto done;
        *out = ing;
        ing = NULL;
        goto done;
    }
    ing->dim = llm_n_embd(p->model);
    llm_context_params cp = llm_context_default_params();
    /* a chunk's embed text is at most chunk_tokens (+ BOS); headroom for the
     * tokenizer counting slightly differently on the joined text */
    cp.n_ctx = p->chunk_tokens * 2 + 64 > 512 ? p->chunk_tokens * 2 + 64 : 512;
    cp.n_batch = 512;
    cp.n_threads = p->n_threads;
    cp.embd_layer = p->layer;
    /* made when the first chunk is embedded: a run that finds every
     * document unchanged allocates no KV cache (hundreds of MB for a 7B
     * model) */
    ing->ctx_params = cp;
    if ((rc = check_fingerprint(ing, err, errlen)) != RAG_OK) goto done;
    *out = ing;
    ing = NULL;
done:
    rag_ingester_free(ing);
    return rc;
}

static void pending_drop_all(rag_ingester *ing);

void rag_ingester_free(rag_ingester *ing) {
    if (!ing) return;
    pending_drop_all(ing);
    rag_embed_pool_free(ing->pool);
    llm_context_free(ing->ctx);
    free(ing->vecs);
    free(ing->ic);
    free(ing);
}

static int grow(rag_ingester *ing, size_t n) {
    if (n > ing->vec_cap) {
        float *v = realloc(ing->vecs, n * (size_t)ing->dim * sizeof *v);
        if (!v) return RAG_ERR_NOMEM;
        ing->vecs = v;
        ing->vec_cap = n;
    }
    if (n > ing->ic_cap) {
        idx_chunk *c = realloc(ing->ic, n * sizeof *c);
        if (!c) return RAG_ERR_NOMEM;
        ing->ic = c;
        ing->ic_cap = n;
    }
    return RAG_OK;
}

/* Saves FAISS when save_every changed documents have accumulated. */
static int maybe_save(rag_ingester *ing, bool force, char *err, size_t errlen) {
    if (!force && ing->since_save < ing->p.save_every) return RAG_OK;
    double t = now_s();
    int rc = idx_save(ing->s);
    if (ing->st) ing->st->store_seconds += now_s() - t;
    if (rc != IDX_OK) return fail(err, errlen, RAG_ERR_IO, "%s", idx_errmsg(ing->s));
    ing->since_save = 0;
    return RAG_OK;
}

/* Splits doc into chunks by the ingester's sizes, counting tokens with the
 * model's tokenizer (or, remote without a model, the estimate). */
static int chunk_doc(rag_ingester *ing, const rag_doc *doc, rag_chunk_list *cl, char *err, size_t errlen) {
    rag_chunk_params cp = rag_chunk_default_params();
    cp.max_tokens = ing->p.chunk_tokens;
    cp.overlap_tokens = ing->p.overlap_tokens;
    cp.max_chunk_bytes = 32 * (size_t)cp.max_tokens;
    if (ing->p.model) return rag_chunk_doc(doc, &cp, rag_count_llm_tokens, ing->p.model, cl, err, errlen);
    return rag_chunk_doc(doc, &cp, rag_count_estimate, NULL, cl, err, errlen);
}

/* ing->ic[0..cl->n) describe cl's chunks (grow() first). */
static void fill_chunks(rag_ingester *ing, const rag_chunk_list *cl) {
    for (size_t i = 0; i < cl->n; i++) {
        const rag_chunk *c = &cl->chunks[i];
        idx_chunk *x = &ing->ic[i];
        memset(x, 0, sizeof *x);
        x->ordinal = (int)i;
        x->text = c->text;
        x->text_len = c->text_len;
        x->heading = c->heading_path;
        x->byte_start = (int64_t)c->byte_start;
        x->byte_end = (int64_t)c->byte_end;
        x->line_start = (int)c->line_start;
        x->line_end = (int)c->line_end;
        x->page = (int)c->page;
        x->n_tokens = c->n_tokens;
    }
}

/* ------------------------------------------------------------ remote embeddings */

static void pending_free(pending_doc *pd) {
    if (!pd) return;
    free(pd->uri);
    free(pd->title);
    free(pd->type);
    free(pd->groups);
    free(pd->version);
    free(pd->note);
    rag_chunk_list_free(&pd->cl);
    free(pd->vecs);
    free(pd);
}

static char *dup_or_null(const char *s, bool *ok) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *ok = false;
    return d;
}

static void batch_free(embed_batch *b) {
    if (!b) return;
    free(b->texts);
    free(b->lens);
    free(b->out);
    free(b->docs);
    free(b->first);
    free(b->parts);
    free(b);
}

static embed_batch *batch_new(rag_ingester *ing) {
    size_t cap = (size_t)ing->p.embed_batch;
    embed_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->texts = malloc(cap * sizeof *b->texts);
    b->lens = malloc(cap * sizeof *b->lens);
    b->out = malloc(cap * (size_t)ing->dim * sizeof *b->out);
    b->docs = malloc(cap * sizeof *b->docs);
    b->first = malloc(cap * sizeof *b->first);
    b->parts = calloc(cap, sizeof *b->parts);
    if (!b->texts || !b->lens || !b->out || !b->docs || !b->first || !b->parts) {
        batch_free(b);
        return NULL;
    }
    return b;
}

/* Submits the batch being filled (waiting while the pool is full: the
 * backpressure). */
static void batch_send(rag_ingester *ing) {
    embed_batch *b = ing->open;
    if (!b) return;
    ing->open = NULL;
    if (b->n == 0) { batch_free(b); return; }
    b->job.texts = b->texts;
    b->job.lens = b->lens;
    b->job.n = b->n;
    b->job.out = b->out;
    b->job.parts = b->parts;
    b->job.n_parts = b->n_parts;
    if (ing->sent_tail) ing->sent_tail->next = b;
    else ing->sent_head = b;
    ing->sent_tail = b;
    double t = now_s();
    rag_embed_pool_submit(ing->pool, &b->job);
    if (ing->st) ing->st->embed_seconds += now_s() - t;
}

/* Takes back the batches that are done: their vectors (or failures) go
 * to their documents. */
static void batches_reap(rag_ingester *ing) {
    embed_batch **pp = &ing->sent_head, *prev = NULL;
    while (*pp) {
        embed_batch *b = *pp;
        if (!rag_embed_job_done(ing->pool, &b->job)) { prev = b; pp = &b->next; continue; }
        size_t at = 0, dim = (size_t)ing->dim;
        for (int k = 0; k < b->n_parts; k++) {
            pending_doc *pd = b->docs[k];
            const rag_embed_part *pt = &b->parts[k];
            if (pt->rc == RAG_OK) {
                memcpy(pd->vecs + b->first[k] * dim, b->out + at * dim, (size_t)pt->n * dim * sizeof *b->out);
            } else if (pd->rc == RAG_OK || (pd->rc == RAG_ERR_FORMAT && pt->rc != RAG_ERR_FORMAT)) {
                /* a failure of the run outranks a refusal: the document is
                 * then dropped (the rerun sends it), not reported failed */
                pd->rc = pt->rc;
                snprintf(pd->err, sizeof pd->err, "%s", pt->err);
            }
            pd->batches_left--;
            at += (size_t)pt->n;
        }
        *pp = b->next;
        if (ing->sent_tail == b) ing->sent_tail = prev;
        batch_free(b);
    }
}

/* Puts pd's chunks into batches, sending each batch that fills up. */
static void pending_enqueue_chunks(rag_ingester *ing, pending_doc *pd) {
    size_t n = pd->cl.n, cap = (size_t)ing->p.embed_batch;
    while (pd->queued < n) {
        if (!ing->open && !(ing->open = batch_new(ing))) {
            /* the rest of the document cannot be sent: it fails whole */
            pd->rc = RAG_ERR_NOMEM;
            snprintf(pd->err, sizeof pd->err, "out of memory");
            pd->queued = n;
            return;
        }
        embed_batch *b = ing->open;
        size_t k = cap - (size_t)b->n;
        if (k > n - pd->queued) k = n - pd->queued;
        b->docs[b->n_parts] = pd;
        b->first[b->n_parts] = pd->queued;
        b->parts[b->n_parts].n = (int)k;
        b->n_parts++;
        for (size_t i = 0; i < k; i++) {
            const rag_chunk *c = &pd->cl.chunks[pd->queued + i];
            b->texts[b->n + (int)i] = c->embed_text;
            b->lens[b->n + (int)i] = c->embed_len;
        }
        b->n += (int)k;
        pd->queued += k;
        pd->batches_left++;
        if ((size_t)b->n == cap) batch_send(ing);
    }
}

/* Chunks doc, queues it behind the documents pending already and puts its
 * chunks into batches (sent when full: a batch may hold several
 * documents). On failure nothing is queued; RAG_ERR_NOMEM, or the
 * chunker's error. */
static int pending_submit(rag_ingester *ing, const rag_put_meta *m, const rag_doc *doc, pending_doc **out, char *err,
                          size_t errlen) {
    *out = NULL;
    pending_doc *pd = calloc(1, sizeof *pd);
    if (!pd) return fail(err, errlen, RAG_ERR_NOMEM, "out of memory");
    bool ok = true;
    pd->uri = dup_or_null(m->uri, &ok);
    pd->title = dup_or_null(m->title ? m->title : doc->title, &ok);
    pd->type = dup_or_null(m->type ? m->type : rag_doc_type_str(doc->type), &ok);
    pd->groups = dup_or_null(m->groups, &ok);
    pd->version = dup_or_null(m->version, &ok);
    pd->size = m->size;
    pd->mtime_ns = m->mtime_ns;
    if (m->sha256) snprintf(pd->sha256, sizeof pd->sha256, "%s", m->sha256);
    if (!ok) { pending_free(pd); return fail(err, errlen, RAG_ERR_NOMEM, "out of memory"); }
    double t = now_s();
    char cerr[512] = "";
    int rc = chunk_doc(ing, doc, &pd->cl, cerr, sizeof cerr);
    if (ing->st) ing->st->chunk_seconds += now_s() - t;
    if (rc != RAG_OK) { pending_free(pd); return fail(err, errlen, rc, "chunking failed: %s", cerr); }
    size_t n = pd->cl.n;
    pd->vecs = malloc((n ? n : 1) * (size_t)ing->dim * sizeof *pd->vecs);
    if (!pd->vecs) { pending_free(pd); return fail(err, errlen, RAG_ERR_NOMEM, "out of memory"); }
    /* queued first: the batches point into pd, which now lives until they end */
    if (ing->pend_tail) ing->pend_tail->next = pd;
    else ing->pend_head = pd;
    ing->pend_tail = pd;
    ing->pend_docs++;
    ing->pend_chunks += n;
    pending_enqueue_chunks(ing, pd);
    *out = pd;
    return RAG_OK;
}

/* RAG_OK when every chunk of pd has its vector; else the first failure
 * (msg set); 1 while some are still out (or not yet sent). */
static int pending_state(const pending_doc *pd, char *msg, size_t n) {
    if (pd->queued < pd->cl.n || pd->batches_left > 0) return 1;
    if (pd->rc != RAG_OK) snprintf(msg, n, "%s", pd->err);
    return pd->rc;
}

static void report_pending(struct run_ctx *r, pending_doc *pd, rag_ingest_outcome o, const char *reason, int nc);

/* Stores pd (whose batches are done) in one transaction: RAG_OK, a
 * document failure (*failed, reason), or RAG_ERR_IO for the store. */
static int pending_store(rag_ingester *ing, pending_doc *pd, char *reason, size_t rlen, bool *failed) {
    *failed = false;
    int jrc = pending_state(pd, reason, rlen);
    if (jrc != RAG_OK) {
        *failed = true;
        char tmp[600];
        snprintf(tmp, sizeof tmp, "embedding failed: %.500s", reason);
        snprintf(reason, rlen, "%s", tmp);
        return RAG_OK;
    }
    if (grow(ing, pd->cl.n ? pd->cl.n : 1) != RAG_OK) return fail(reason, rlen, RAG_ERR_NOMEM, "out of memory");
    fill_chunks(ing, &pd->cl);
    idx_doc d;
    memset(&d, 0, sizeof d);
    d.uri = pd->uri;
    d.title = pd->title;
    d.type = pd->type;
    d.groups = pd->groups;
    d.version = pd->version;
    d.size = pd->size;
    d.mtime_ns = pd->mtime_ns;
    snprintf(d.sha256, sizeof d.sha256, "%s", pd->sha256);
    d.status = "ok";
    double t = now_s();
    int irc = idx_doc_put(ing->s, &d, ing->ic, pd->cl.n, pd->cl.n ? pd->vecs : NULL, ing->dim, NULL);
    if (ing->st) ing->st->store_seconds += now_s() - t;
    if (irc != IDX_OK) return fail(reason, rlen, RAG_ERR_IO, "%s", idx_errmsg(ing->s));
    ing->chunks_done += pd->cl.n;
    ing->since_save++;
    return maybe_save(ing, false, reason, rlen);
}

/* Stores the documents at the head of the queue whose chunks are all
 * back, in order. With wait, sends the batch being filled and waits for
 * everything, emptying the queue; without, waits only while the queue is
 * over its bound (the backpressure on the walk). After the pool failed
 * (the server, the network, cancel), documents without all their vectors
 * are dropped, never half-stored. RAG_ERR_IO for a store failure or the
 * pool's failure (err says which; with wait the complete documents are
 * stored first). */
static int pending_commit(rag_ingester *ing, bool wait, char *err, size_t errlen) {
    int rc = RAG_OK;
    char reason[1024];
    while (ing->pend_head) {
        batches_reap(ing);
        pending_doc *pd = ing->pend_head;
        int st = pending_state(pd, reason, sizeof reason);
        if (st == 1) {
            bool over = ing->pend_docs > ing->max_pend || ing->pend_chunks > ing->max_pend;
            if (!wait && !over) break;
            /* waiting for everything, or for pd whose last chunks are in
             * the batch being filled (it then starts with pd's) */
            if (ing->open && (wait || (ing->open->n_parts > 0 && ing->open->docs[0] == pd))) batch_send(ing);
            double t = now_s();
            rag_embed_pool_wait(ing->pool, 250);
            if (ing->st) ing->st->embed_seconds += now_s() - t;
            continue;
        }
        ing->pend_head = pd->next;
        if (!ing->pend_head) ing->pend_tail = NULL;
        ing->pend_docs--;
        ing->pend_chunks -= pd->cl.n;
        bool failed = false;
        int src = RAG_OK;
        if (st == RAG_OK || st == RAG_ERR_FORMAT) {
            src = pending_store(ing, pd, reason, sizeof reason, &failed);
            if (src != RAG_OK && rc == RAG_OK) rc = fail(err, errlen, src, "%s", reason);
            if (src == RAG_OK && pd->in_run && ing->run)
                report_pending(ing->run, pd, failed ? RAG_ING_FAILED : pd->exists ? RAG_ING_UPDATED : RAG_ING_ADDED,
                               failed ? reason : pd->note, failed ? 0 : (int)pd->cl.n);
            if (src == RAG_OK && !pd->in_run) {
                ing->sync_failed = failed;
                ing->sync_n = (int)pd->cl.n;
                snprintf(ing->sync_reason, sizeof ing->sync_reason, "%s", failed ? reason : "");
            }
        }
        pending_free(pd);
        if (rc != RAG_OK && !wait) return rc;
    }
    char msg[512];
    int prc = rag_embed_pool_failed(ing->pool, msg, sizeof msg);
    if (prc != RAG_OK && rc == RAG_OK) {
        if (ing->p.cancel && *ing->p.cancel) return RAG_OK;     /* stopped: the caller knows */
        rc = fail(err, errlen, RAG_ERR_IO, "the embedding server failed: %s", msg);
    }
    return rc;
}

/* Frees the queue and the batches after waiting for those at the server
 * (nothing is stored). */
static void pending_drop_all(rag_ingester *ing) {
    if (!ing->pool) return;
    while (rag_embed_pool_outstanding(ing->pool) > 0) rag_embed_pool_wait(ing->pool, 250);
    batch_free(ing->open);
    ing->open = NULL;
    while (ing->sent_head) {
        embed_batch *b = ing->sent_head;
        ing->sent_head = b->next;
        batch_free(b);
    }
    ing->sent_tail = NULL;
    while (ing->pend_head) {
        pending_doc *pd = ing->pend_head;
        ing->pend_head = pd->next;
        pending_free(pd);
    }
    ing->pend_tail = NULL;
    ing->pend_docs = ing->pend_chunks = 0;
}

/* rag_ingester_put_ex through the server: this document's batches in
 * parallel, stored when all are back. */
static int put_remote_sync(rag_ingester *ing, const rag_put_meta *m, const rag_doc *doc, int *n_chunks, char *err,
                           size_t errlen) {
    pending_doc *pd = NULL;
    if (!ing->pend_head) rag_embed_pool_reset(ing->pool);
    int rc = pending_submit(ing, m, doc, &pd, err, errlen);
    if (rc != RAG_OK) return rc;
    ing->sync_failed = false;
    ing->sync_n = -1;
    if ((rc = pending_commit(ing, true, err, errlen)) != RAG_OK) return rc;
    if (ing->sync_n < 0) return fail(err, errlen, RAG_ERR_IO, "the document was not stored");
    if (ing->sync_failed) return fail(err, errlen, RAG_ERR_FORMAT, "%s", ing->sync_reason);
    if (n_chunks) *n_chunks = ing->sync_n;
    return RAG_OK;
}

int rag_ingester_put(rag_ingester *ing, const char *uri, const rag_doc *doc, int64_t size, int64_t mtime_ns,
                     const char *sha256, int *n_chunks, char *err, size_t errlen) {
    rag_put_meta m = {.uri = uri, .size = size, .mtime_ns = mtime_ns, .sha256 = sha256};
    return rag_ingester_put_ex(ing, &m, doc, n_chunks, err, errlen);
}

int rag_ingester_put_ex(rag_ingester *ing, const rag_put_meta *m, const rag_doc *doc, int *n_chunks,
                        char *err, size_t errlen) {
    int rc = RAG_OK;
    rag_chunk_list cl = {0};
    const char **texts = NULL;
    size_t *lens = NULL;
    if (n_chunks) *n_chunks = 0;
    if (!ing || !m || !m->uri || !doc) return fail(err, errlen, RAG_ERR_ARG, "ingest: bad arguments");
    if (ing->pool) return put_remote_sync(ing, m, doc, n_chunks, err, errlen);
    double t = now_s();
    char cerr[512] = "";
    rc = chunk_doc(ing, doc, &cl, cerr, sizeof cerr);
    if (ing->st) ing->st->chunk_seconds += now_s() - t;
    if (rc != RAG_OK) { fail(err, errlen, rc, "chunking failed: %s", cerr); goto done; }
    if ((rc = grow(ing, cl.n ? cl.n : 1)) != RAG_OK) { fail(err, errlen, rc, "out of memory"); goto done; }
    size_t nb = (size_t)ing->p.embed_batch;
    texts = malloc(nb * sizeof *texts);
    lens = malloc(nb * sizeof *lens);
    if (!texts || !lens) { rc = fail(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
    t = now_s();
    if (!ing->ctx && cl.n > 0) {
        char lerr[256] = "";
        if (llm_context_new(ing->p.model, &ing->ctx_params, &ing->ctx, lerr, sizeof lerr) != LLM_OK) {
            rc = fail(err, errlen, RAG_ERR_ARG, "embedding context: %s", lerr);
            goto done;
        }
    }
    for (size_t i = 0; i < cl.n; i += nb) {
        size_t m = cl.n - i < nb ? cl.n - i : nb;
        for (size_t j = 0; j < m; j++) {
            texts[j] = cl.chunks[i + j].embed_text;
            lens[j] = cl.chunks[i + j].embed_len;
        }
        int lrc = llm_embed_batch(ing->ctx, texts, lens, (int)m, ing->vecs + i * (size_t)ing->dim);
        if (lrc != LLM_OK) {
            rc = fail(err, errlen, RAG_ERR_FORMAT, "embedding failed: %s", llm_context_error(ing->ctx));
            break;
        }
        ing->chunks_done += m;
    }
    if (ing->st) ing->st->embed_seconds += now_s() - t;
    if (rc != RAG_OK) goto done;
    fill_chunks(ing, &cl);
    idx_doc d;
    memset(&d, 0, sizeof d);
    d.uri = m->uri;
    d.title = m->title ? m->title : doc->title;
    d.type = m->type ? m->type : rag_doc_type_str(doc->type);
    d.groups = m->groups;
    d.version = m->version;
    d.size = m->size;
    d.mtime_ns = m->mtime_ns;
    if (m->sha256) snprintf(d.sha256, sizeof d.sha256, "%s", m->sha256);
    d.status = "ok";
    t = now_s();
    int irc = idx_doc_put(ing->s, &d, ing->ic, cl.n, cl.n ? ing->vecs : NULL, ing->dim, NULL);
    if (ing->st) ing->st->store_seconds += now_s() - t;
    if (irc != IDX_OK) { rc = fail(err, errlen, RAG_ERR_IO, "%s", idx_errmsg(ing->s)); goto done; }
    if (n_chunks) *n_chunks = (int)cl.n;
    ing->since_save++;
    rc = maybe_save(ing, false, err, errlen);
done:
    free(texts);
    free(lens);
    rag_chunk_list_free(&cl);
    return rc;
}

/* Reads walk entry e of wr (at most max bytes) into *out (owned, free()),
 * opened with rag_walk_open: no link is followed and the file must be the
 * one the walk saw (RAG_ERR_CHANGED otherwise). */
static int read_entry(const rag_walk_result *wr, const rag_walk_entry *e, uint64_t max, char **out, size_t *len,
                      char *err, size_t errlen) {
    int rc = RAG_OK;
    char *buf = NULL;
    size_t n = 0;
    int fd = -1;
    struct stat st;
    if ((rc = rag_walk_open(wr, e, &fd, err, errlen)) != RAG_OK) goto done;
    if (fstat(fd, &st) != 0) { rc = fail(err, errlen, RAG_ERR_IO, "unreadable: %s", strerror(errno)); goto done; }
    if ((uint64_t)st.st_size > max) { rc = fail(err, errlen, RAG_ERR_LIMIT, "too large (%lld bytes)", (long long)st.st_size); goto done; }
    size_t cap = (size_t)st.st_size + 1;
    if (!(buf = malloc(cap + 1))) { rc = fail(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
    for (;;) {
        if (n == cap) { rc = fail(err, errlen, RAG_ERR_LIMIT, "file grew while being read"); goto done; }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { rc = fail(err, errlen, RAG_ERR_IO, "unreadable: %s", strerror(errno)); goto done; }
        if (r == 0) break;
        n += (size_t)r;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    buf = NULL;
done:
    if (fd >= 0) close(fd);
    free(buf);
    return rc;
}

/* A document present in the index but not (or no longer usable) among the
 * walked files: a rename source, else removed at the end of the run. */
typedef struct {
    idx_doc *docs;
    size_t n;
    bool *gone;     /* gone[i]: docs[i] has no walked file */
    bool *used;     /* used[i]: consumed by a rename */
} vanished_set;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct run_ctx {
    rag_ingester *ing;
    rag_ingest_stats *st;
    const rag_walk_result *wr;
    double t0;
    size_t done;
} run_ctx;

static void emit(run_ctx *r, rag_ingest_event_kind kind, const char *path, rag_ingest_outcome o,
                 const char *reason, int n_chunks) {
    if (!r->ing->p.progress) return;
    rag_ingest_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.path = path;
    ev.outcome = o;
    ev.reason = reason;
    ev.n_chunks = n_chunks;
    ev.files_done = r->done;
    ev.files_total = r->st->files_total;
    ev.chunks_done = r->ing->chunks_done;
    ev.elapsed_s = now_s() - r->t0;
    r->ing->p.progress(r->ing->p.user, &ev);
}

static void count(rag_ingest_stats *st, rag_ingest_outcome o) {
    switch (o) {
    case RAG_ING_ADDED: st->added++; break;
    case RAG_ING_UPDATED: st->updated++; break;
    case RAG_ING_UNCHANGED: st->unchanged++; break;
    case RAG_ING_RENAMED: st->renamed++; break;
    case RAG_ING_REMOVED: st->removed++; break;
    case RAG_ING_SKIPPED: st->skipped++; break;
    case RAG_ING_FAILED: st->failed++; break;
    }
}

/* The outcome of a document stored (or failed) after its batches came
 * back: counted and reported as ingest_one's are. */
static void report_pending(struct run_ctx *r, pending_doc *pd, rag_ingest_outcome o, const char *reason, int nc) {
    if (o == RAG_ING_FAILED && pd->exists) {
        /* the old version of a file that now fails must not stay searchable */
        if (idx_doc_delete(r->ing->s, pd->uri) == IDX_OK) {
            r->st->chunks_removed += (uint64_t)pd->old_n_chunks;
            r->ing->since_save++;
        }
    } else if (o != RAG_ING_FAILED) {
        if (pd->exists) r->st->chunks_removed += (uint64_t)pd->old_n_chunks;
        r->st->chunks_added += (uint64_t)nc;
    }
    count(r->st, o);
    r->done++;
    emit(r, RAG_ING_EV_FILE_DONE, pd->uri, o, reason && *reason ? reason : NULL, nc);
}

/* True when the comma-separated group lists a and b (NULL = "") hold the
 * same names, in any order (blanks around names ignored). */
static bool same_groups(const char *a, const char *b) {
    const char *lists[2][2] = {{a ? a : "", b ? b : ""}, {b ? b : "", a ? a : ""}};
    for (int pass = 0; pass < 2; pass++) {
        const char *x = lists[pass][0], *y = lists[pass][1];
        for (const char *p = x; *p;) {
            const char *e = strchr(p, ',');
            if (!e) e = p + strlen(p);
            const char *nb = p, *ne = e;
            while (nb < ne && (*nb == ' ' || *nb == '\t')) nb++;
            while (ne > nb && (ne[-1] == ' ' || ne[-1] == '\t')) ne--;
            bool found = ne == nb;
            for (const char *q = y; *q && !found;) {
                const char *f = strchr(q, ',');
                if (!f) f = q + strlen(q);
                const char *mb = q, *me = f;
                while (mb < me && (*mb == ' ' || *mb == '\t')) mb++;
                while (me > mb && (me[-1] == ' ' || me[-1] == '\t')) me--;
                found = me - mb == ne - nb && memcmp(mb, nb, (size_t)(ne - nb)) == 0;
                q = *f ? f + 1 : f;
            }
            if (!found) return false;
            p = *e ? e + 1 : e;
        }
    }
    return true;
}

/* Renames old_uri to uri, records the new size/mtime and (when groups is
 * not NULL) the access groups of the new path, in one transaction. */
static int do_rename(idx_store *s, const char *old_uri, const char *uri, int64_t size, int64_t mtime,
                     const char *groups) {
    int rc = idx_begin(s);
    if (rc != IDX_OK) return rc;
    if ((rc = idx_doc_rename(s, old_uri, uri)) == IDX_OK && (rc = idx_doc_touch(s, uri, size, mtime)) == IDX_OK &&
        (!groups || (rc = idx_doc_set_groups(s, uri, groups)) == IDX_OK))
        rc = idx_commit(s);
    if (rc != IDX_OK && idx_in_transaction(s)) idx_rollback(s);
    return rc;
}

/* An unchanged document: sets its groups when the rules give others. */
static int regroup(run_ctx *r, const char *uri, const char *have, const char *want, char *err, size_t errlen) {
    if (!r->ing->p.access || same_groups(have, want)) return RAG_OK;
    if (idx_doc_set_groups(r->ing->s, uri, want) != IDX_OK)
        return fail(err, errlen, RAG_ERR_IO, "%s", idx_errmsg(r->ing->s));
    r->st->regrouped++;
    return RAG_OK;
}

/* Handles one walked file; rules_groups are its groups by the access
 * rules (NULL without rules). Returns RAG_OK with *o set (per-file problems
 * are outcomes), or an error for a store failure that ends the run. */
static int ingest_one(run_ctx *r, const rag_walk_entry *e, const char *uri, const char *rules_groups,
                      vanished_set *vs, rag_ingest_outcome *o, char *reason, size_t reason_len, int *n_chunks,
                      bool *pending, char *err, size_t errlen) {
    rag_ingester *ing = r->ing;
    idx_store *s = ing->s;
    int rc = RAG_OK;
    char *data = NULL;
    size_t len = 0;
    rag_doc *doc = NULL;
    idx_doc old;
    memset(&old, 0, sizeof old);
    *n_chunks = 0;
    reason[0] = 0;
    int64_t mtime = e->mtime_sec * 1000000000ll + e->mtime_nsec;
    /* the file's groups by the rules (borrowed); without rules a known
     * document keeps its groups and a new one is public */
    const char *want = ing->p.access && rules_groups ? rules_groups : "";
    int grc = idx_doc_get(s, uri, &old);
    if (grc != IDX_OK && grc != IDX_ERR_NOTFOUND) { rc = fail(err, errlen, RAG_ERR_IO, "%s", idx_errmsg(s)); goto done; }
    bool exists = grc == IDX_OK;
    if (exists && !ing->p.access) want = old.groups ? old.groups : "";
    if (exists && old.size == (int64_t)e->size && old.mtime_ns == mtime && old.status && strcmp(old.status, "ok") == 0) {
        *o = RAG_ING_UNCHANGED;
        *n_chunks = (int)old.n_chunks;
        rc = regroup(r, uri, old.groups, want, err, errlen);
        goto done;
    }
    double t = now_s();
    char sha[65];
    int frc = read_entry(r->wr, e, ing->p.max_file_bytes, &data, &len, reason, reason_len);
    if (frc == RAG_OK) llm_sha256_hex(data, len, sha);
    r->st->extract_seconds += now_s() - t;
    if (frc == RAG_ERR_CHANGED) {
        /* swapped for a link or another file since the walk: nothing was
         * read; the index keeps what it had and the next run looks again */
        *o = RAG_ING_SKIPPED;
        *n_chunks = exists ? (int)old.n_chunks : 0;
        goto done;
    }
    if (frc != RAG_OK) goto failed;
    if (exists && strcmp(old.sha256, sha) == 0 && old.status && strcmp(old.status, "ok") == 0) {
        if (idx_doc_touch(s, uri, (int64_t)len, mtime) != IDX_OK) { rc = fail(err, errlen, RAG_ERR_IO, "%s", idx_errmsg(s)); goto done; }
        *o = RAG_ING_UNCHANGED;
        *n_chunks = (int)old.n_chunks;
        rc = regroup(r, uri, old.groups, want, err, errlen);
        goto done;
    }
    if (!exists) {
        for (size_t i = 0; i < vs->n; i++) {
            if (!vs->gone[i] || vs->used[i] || strcmp(vs->docs[i].sha256, sha) != 0) continue;
            if (!vs->docs[i].status || strcmp(vs->docs[i].status, "ok") != 0) continue;
            /* the new path's groups, whatever the old path had */
            bool regr = ing->p.access && !same_groups(vs->docs[i].groups, want);
            if (do_rename(s, vs->docs[i].uri, uri, (int64_t)len, mtime, regr ? want : NULL) != IDX_OK) {
                rc = fail(err, errlen, RAG_ERR_IO, "%s", idx_errmsg(s));
                goto done;
            }
            vs->used[i] = true;
            *o = RAG_ING_RENAMED;
            *n_chunks = (int)vs->docs[i].n_chunks;
            snprintf(reason, reason_len, "from %s", vs->docs[i].uri);
            ing->since_save++;
            goto done;
        }
    }
    t = now_s();
    rag_extract_params xp = rag_extract_default_params();
    xp.budget = ing->p.budget;
    xp.ocr = ing->p.ocr;
    xp.ocr_langs = ing->p.ocr_langs;
    char xerr[512] = "";
    int xrc = rag_extract_memory(e->path, data, len, e->type, &xp, &doc, xerr, sizeof xerr);
    r->st->extract_seconds += now_s() - t;
    if (xrc != RAG_OK) {
        snprintf(reason, reason_len, "%s", xerr);
        goto failed;
    }
    rag_put_meta pm = {.uri = uri, .groups = want, .size = (int64_t)len, .mtime_ns = mtime, .sha256 = sha};
    if (ing->pool) {
        /* the server embeds it while the walk goes on; stored (and
         * reported) when its batches are back */
        pending_doc *pd = NULL;
        int prc = pending_submit(ing, &pm, doc, &pd, reason, reason_len);
        if (prc == RAG_ERR_NOMEM) { rc = fail(err, errlen, prc, "%s", reason); goto done; }
        if (prc != RAG_OK) goto failed;
        pd->in_run = true;
        pd->exists = exists;
        pd->old_n_chunks = exists ? old.n_chunks : 0;
        char note[256] = "";
        if (doc->n_pages_no_text)
            snprintf(note, sizeof note, "%u of %u pages have no text layer (scanned? --ocr reads them)",
                     doc->n_pages_no_text, doc->n_pages);
        else if (doc->n_pages_ocr)
            snprintf(note, sizeof note, "%u of %u pages read by OCR", doc->n_pages_ocr, doc->n_pages);
        if (note[0] && !(pd->note = strdup(note))) { rc = fail(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
        *pending = true;
        rc = pending_commit(ing, false, err, errlen);
        goto done;
    }
    int prc = rag_ingester_put_ex(ing, &pm, doc, n_chunks, reason, reason_len);
    if (prc == RAG_ERR_IO) { rc = fail(err, errlen, RAG_ERR_IO, "%s", reason); goto done; }
    if (prc != RAG_OK) goto failed;
    *o = exists ? RAG_ING_UPDATED : RAG_ING_ADDED;
    if (doc->n_pages_no_text)
        snprintf(reason, reason_len, "%u of %u pages have no text layer (scanned? --ocr reads them)",
                 doc->n_pages_no_text, doc->n_pages);
    else if (doc->n_pages_ocr)
        snprintf(reason, reason_len, "%u of %u pages read by OCR", doc->n_pages_ocr, doc->n_pages);
    if (exists) r->st->chunks_removed += (uint64_t)old.n_chunks;
    r->st->chunks_added += (uint64_t)*n_chunks;
    goto done;
failed:
    *o = RAG_ING_FAILED;
    /* the old version of a file that now fails must not stay searchable */
    if (exists) {
        if (idx_doc_delete(s, uri) != IDX_OK) { rc = fail(err, errlen, RAG_ERR_IO, "%s", idx_errmsg(s)); goto done; }
        r->st->chunks_removed += (uint64_t)old.n_chunks;
        ing->since_save++;
    }
done:
    idx_doc_release(&old);
    rag_doc_free(doc);
    free(data);
    return rc;
}

#define ACCESS_META "rag.access:"

/* The index remembers the hash of the access rules last applied to a root
 * (meta "rag.access:ROOT"). A run without rules over that root, or over a
 * folder inside a root with rules (its relative paths differ, so the rules
 * would not apply), could publish restricted files: refused. Sets *key
 * (owned) to the meta key of this root. */
static int check_access_meta(rag_ingester *ing, const char *canon, char **key, char *err, size_t errlen) {
    size_t n = strlen(ACCESS_META) + strlen(canon) + 1;
    char *k = malloc(n);
    if (!k) return fail(err, errlen, RAG_ERR_NOMEM, "out of memory");
    snprintf(k, n, "%s%s", ACCESS_META, canon);
    *key = k;
    char *path = strdup(canon), *probe = malloc(n);
    int rc = RAG_OK;
    if (!path || !probe) rc = fail(err, errlen, RAG_ERR_NOMEM, "out of memory");
    /* the root itself, then each parent folder up to "/" */
    for (bool self = true; rc == RAG_OK; self = false) {
        snprintf(probe, n, "%s%s", ACCESS_META, path);
        char *val = NULL;
        bool has = idx_meta_get(ing->s, probe, &val) == IDX_OK && val && *val;
        free(val);
        if (has && self && !ing->p.access)
            rc = fail(err, errlen, RAG_ERR_ARG,
                      "%s was indexed with access rules: give them again (--access FILE; an empty file makes "
                      "every document public)", canon);
        else if (has && !self)
            rc = fail(err, errlen, RAG_ERR_ARG,
                      "the index applies access rules to %s, which holds %s: ingest %s itself (with --access) "
                      "so that the rules match the paths", path, canon, path);
        char *slash = strrchr(path, '/');
        if (!slash || strcmp(path, "/") == 0) break;
        if (slash == path) path[1] = 0;
        else *slash = 0;
    }
    free(path);
    free(probe);
    return rc;
}

static int cmp_entry_rel(const void *key, const void *e) {
    return strcmp((const char *)key, ((const rag_walk_entry *)e)->rel);
}

/* The groups of every file the walk hands over (*out[i] owned, NULL for
 * other entries): those of its path by the rules, narrowed by the paths of
 * its other names (hard links; the walk's RAG_SKIP_DUPLICATE entries) so
 * that a caller must pass the rules of every name the file has. Symlinks
 * are not followed by the walk, so each file has its real paths only. */
static int rules_groups(const rag_access *a, const rag_walk_result *wr, char ***out, char *err, size_t errlen) {
    char **g = calloc(wr->n ? wr->n : 1, sizeof *g);
    if (!g) return fail(err, errlen, RAG_ERR_NOMEM, "out of memory");
    int rc = RAG_OK;
    for (size_t i = 0; i < wr->n && rc == RAG_OK; i++)
        if (wr->entries[i].skip == RAG_SKIP_NONE && !(g[i] = strdup(rag_access_for_path(a, wr->entries[i].rel))))
            rc = fail(err, errlen, RAG_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < wr->n && rc == RAG_OK; i++) {
        const rag_walk_entry *d = &wr->entries[i];
        if (d->skip != RAG_SKIP_DUPLICATE || !d->same_as) continue;
        const rag_walk_entry *k = bsearch(d->same_as, wr->entries, wr->n, sizeof *wr->entries, cmp_entry_rel);
        if (!k || k->skip != RAG_SKIP_NONE) continue;
        size_t j = (size_t)(k - wr->entries);
        char *both = rag_access_groups_and(g[j], rag_access_for_path(a, d->rel));
        if (!both) { rc = fail(err, errlen, RAG_ERR_NOMEM, "out of memory"); break; }
        free(g[j]);
        g[j] = both;
    }
    if (rc != RAG_OK) {
        for (size_t i = 0; i < wr->n; i++) free(g[i]);
        free(g);
        return rc;
    }
    *out = g;
    return RAG_OK;
}

#define ROOT_META "rag.root:"

/* A root below canon that the index holds rules for (meta key "rag.access:"
 * + a path inside canon): ingesting canon would give its documents the
 * groups of canon's rules (or keep them public without rules). Refused. */
static int check_access_below(rag_ingester *ing, const char *canon, char *err, size_t errlen) {
    size_t n = strlen(ACCESS_META) + strlen(canon) + 2;
    char *prefix = malloc(n);
    if (!prefix) return fail(err, errlen, RAG_ERR_NOMEM, "out of memory");
    snprintf(prefix, n, "%s%s%s", ACCESS_META, canon, strcmp(canon, "/") == 0 ? "" : "/");
    char **keys = NULL;
    size_t nk = 0;
    int rc = RAG_OK;
    if (idx_meta_keys(ing->s, prefix, &keys, &nk) != IDX_OK) rc = fail(err, errlen, RAG_ERR_IO, "%s", idx_errmsg(ing->s));
    for (size_t i = 0; rc == RAG_OK && i < nk; i++) {
        char *val = NULL;
        bool has = idx_meta_get(ing->s, keys[i], &val) == IDX_OK && val && *val;
        free(val);
        if (has)
            rc = fail(err, errlen, RAG_ERR_ARG,
                      "the index applies access rules to %s, which is inside %s: its documents would get the "
                      "groups of other rules (or none); ingest %s on its own (with its --access rules), or "
                      "ingest %s into another --index",
                      keys[i] + strlen(ACCESS_META), canon, keys[i] + strlen(ACCESS_META), canon);
    }
    idx_meta_keys_free(keys, nk);
    free(prefix);
    return rc;
}

int rag_ingester_run_dir(rag_ingester *ing, const char *root, rag_ingest_stats *stats, char *err, size_t errlen) {
    int rc = RAG_OK;
    char *canon = NULL, *prefix = NULL, *uri = NULL, *akey = NULL;
    char **present = NULL, **groups = NULL;
    size_t n_present = 0;
    rag_walk_result wr = {0};
    vanished_set vs = {0};
    rag_ingest_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!ing || !root) return fail(err, errlen, RAG_ERR_ARG, "ingest: bad arguments");
    run_ctx r = {.ing = ing, .st = stats, .t0 = now_s()};
    ing->st = stats;
    ing->run = &r;
    if (ing->pool) rag_embed_pool_reset(ing->pool);     /* an earlier run's failure is not this run's */
    struct stat rst;
    if (!(canon = realpath(root, NULL)) || stat(canon, &rst) != 0) {
        rc = fail(err, errlen, RAG_ERR_IO, "%s: %s", root, strerror(errno));
        goto done;
    }
    bool is_dir = S_ISDIR(rst.st_mode);
    size_t plen = strlen(canon) + 2;
    if (!(prefix = malloc(plen))) { rc = fail(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
    snprintf(prefix, plen, "%s%s", canon, is_dir && strcmp(canon, "/") != 0 ? "/" : "");
    if ((rc = check_access_meta(ing, canon, &akey, err, errlen)) != RAG_OK) goto done;
    if ((rc = check_access_below(ing, canon, err, errlen)) != RAG_OK) goto done;
    {
        /* the roots ingested, so that a server can show paths relative to
         * them instead of the machine's absolute paths (a cache: a failure
         * only costs that) */
        size_t kn = strlen(ROOT_META) + strlen(canon) + 1;
        char *rk = malloc(kn);
        if (rk) {
            snprintf(rk, kn, "%s%s", ROOT_META, canon);
            idx_meta_set(ing->s, rk, is_dir ? "dir" : "file");
            free(rk);
        }
    }
    /* recorded before any document changes: a run that stops half-way
     * still leaves the next run without rules refused */
    if (ing->p.access && idx_meta_set(ing->s, akey, rag_access_hash(ing->p.access)) != IDX_OK) {
        rc = fail(err, errlen, RAG_ERR_IO, "%s", idx_errmsg(ing->s));
        goto done;
    }
    rag_walk_params wp = rag_walk_default_params();
    wp.max_file_bytes = ing->p.max_file_bytes;
    wp.report_hidden = false;
    char werr[512] = "";
    if ((rc = rag_walk(canon, &wp, &wr, werr, sizeof werr)) != RAG_OK) {
        fail(err, errlen, rc, "%s", werr);
        goto done;
    }
    stats->files_total = wr.n_files;
    r.wr = &wr;
    if (ing->p.access && (rc = rules_groups(ing->p.access, &wr, &groups, err, errlen)) != RAG_OK) goto done;
    /* the URIs of usable files, sorted, to find the vanished documents */
    if (!(present = calloc(wr.n ? wr.n : 1, sizeof *present))) { rc = fail(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < wr.n; i++) {
        if (wr.entries[i].skip != RAG_SKIP_NONE || wr.entries[i].is_dir) continue;
        size_t n = strlen(prefix) + strlen(wr.entries[i].rel) + 1;
        if (!(present[n_present] = malloc(n))) { rc = fail(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
        if (is_dir) snprintf(present[n_present], n, "%s%s", prefix, wr.entries[i].rel);
        else snprintf(present[n_present], n, "%s", canon);
        n_present++;
    }
    qsort(present, n_present, sizeof *present, cmp_str);
    if (idx_doc_list(ing->s, prefix, &vs.docs, &vs.n) != IDX_OK) {
        rc = fail(err, errlen, RAG_ERR_IO, "%s", idx_errmsg(ing->s));
        goto done;
    }
    vs.gone = calloc(vs.n + 1, sizeof *vs.gone);
    vs.used = calloc(vs.n + 1, sizeof *vs.used);
    if (!vs.gone || !vs.used) { rc = fail(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < vs.n; i++) {
        const char *u = vs.docs[i].uri;
        vs.gone[i] = (is_dir || strcmp(u, canon) == 0) &&
                     !bsearch(&u, present, n_present, sizeof *present, cmp_str);
    }
    emit(&r, RAG_ING_EV_START, NULL, RAG_ING_ADDED, NULL, 0);
    char reason[1024];
    for (size_t i = 0; i < wr.n; i++) {
        const rag_walk_entry *e = &wr.entries[i];
        if (e->skip == RAG_SKIP_HIDDEN) continue;
        free(uri);
        size_t n = strlen(prefix) + strlen(e->rel) + 1;
        if (!(uri = malloc(n))) { rc = fail(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
        if (is_dir) snprintf(uri, n, "%s%s", prefix, e->rel);
        else snprintf(uri, n, "%s", canon);
        if (e->skip != RAG_SKIP_NONE) {
            snprintf(reason, sizeof reason, "%s%s%s", rag_skip_reason_str(e->skip), e->detail ? ": " : "",
                     e->detail ? e->detail : "");
            count(stats, RAG_ING_SKIPPED);
            emit(&r, RAG_ING_EV_FILE_DONE, uri, RAG_ING_SKIPPED, reason, 0);
            continue;
        }
        if (ing->p.cancel && *ing->p.cancel) { stats->cancelled = true; break; }
        emit(&r, RAG_ING_EV_FILE_BEGIN, uri, RAG_ING_ADDED, NULL, 0);
        rag_ingest_outcome o = RAG_ING_FAILED;
        int nc = 0;
        bool pending = false;
        reason[0] = 0;
        if ((rc = ingest_one(&r, e, uri, groups ? groups[i] : NULL, &vs, &o, reason, sizeof reason, &nc, &pending,
                             err, errlen)) != RAG_OK)
            goto done;
        if (pending) continue;
        count(stats, o);
        r.done++;
        emit(&r, RAG_ING_EV_FILE_DONE, uri, o,
             o == RAG_ING_FAILED || o == RAG_ING_RENAMED || o == RAG_ING_SKIPPED ||
                     ((o == RAG_ING_ADDED || o == RAG_ING_UPDATED) && reason[0])
                 ? reason
                 : NULL,
             nc);
    }
    /* the documents still with the server */
    if (ing->pool && (rc = pending_commit(ing, true, err, errlen)) != RAG_OK) goto done;
    if (ing->p.cancel && *ing->p.cancel) stats->cancelled = true;
    /* vanished documents (deleted, renamed away, now skipped) leave the index */
    for (size_t i = 0; i < vs.n && !stats->cancelled; i++) {
        if (!vs.gone[i] || vs.used[i]) continue;
        double t = now_s();
        int drc = idx_doc_delete(ing->s, vs.docs[i].uri);
        stats->store_seconds += now_s() - t;
        if (drc != IDX_OK && drc != IDX_ERR_NOTFOUND) { rc = fail(err, errlen, RAG_ERR_IO, "%s", idx_errmsg(ing->s)); goto done; }
        stats->removed++;
        stats->chunks_removed += (uint64_t)vs.docs[i].n_chunks;
        ing->since_save++;
        emit(&r, RAG_ING_EV_FILE_DONE, vs.docs[i].uri, RAG_ING_REMOVED, "no longer in the folder (or no longer indexable)", 0);
    }
    if ((rc = maybe_save(ing, true, err, errlen)) != RAG_OK) goto done;
    stats->seconds = now_s() - r.t0;
    emit(&r, RAG_ING_EV_END, NULL, RAG_ING_ADDED, NULL, 0);
done:
    if (rc != RAG_OK && ing->pool) {
        /* a failure with documents at the server: those complete are
         * stored (and FAISS saved with them), the others dropped whole */
        char perr[256];
        pending_commit(ing, true, perr, sizeof perr);
        pending_drop_all(ing);
        maybe_save(ing, true, perr, sizeof perr);
    }
    if (rc != RAG_OK) stats->seconds = now_s() - r.t0;
    ing->st = NULL;
    ing->run = NULL;
    for (size_t i = 0; i < n_present; i++) free(present[i]);
    free(present);
    for (size_t i = 0; groups && i < wr.n; i++) free(groups[i]);
    free(groups);
    idx_doc_list_free(vs.docs, vs.n);
    free(vs.gone);
    free(vs.used);
    rag_walk_result_free(&wr);
    free(uri);
    free(prefix);
    free(canon);
    free(akey);
    return rc;
}

int rag_ingest_dir(idx_store *s, const char *root, const rag_ingest_params *p, rag_ingest_stats *stats,
                   char *err, size_t errlen) {
    rag_ingester *ing = NULL;
    int rc = rag_ingester_new(s, p, &ing, err, errlen);
    if (rc == RAG_OK) rc = rag_ingester_run_dir(ing, root, stats, err, errlen);
    rag_ingester_free(ing);
    return rc;
}
