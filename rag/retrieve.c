/* retrieve.c — query-side retrieval: dense (query embedded like the chunks,
 * fingerprint checked), BM25 (FTS5) and hybrid reciprocal rank fusion. */
#include "rag/rag.h"
#include "rag/util_internal.h"

#include "index/index.h"
#include "llm/llm.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct rag_retriever {
    idx_store *s;               /* borrowed */
    rag_retriever_params p;
    llm_context *ctx;           /* owned, NULL without a model */
    int dim;
    float *q;                   /* query vector [dim] */
    idx_hit *la, *lb;           /* dense and bm25 lists, cap entries each */
    rag_hit *fused;             /* 2 * cap */
    int cap;
    rag_fusion fusion;
    char err[1024];
};

/* The retriever's message (rag_errf's convention) and rc. */
#define rfail(r, rc, ...) rag_errf((r)->err, sizeof (r)->err, (rc), __VA_ARGS__)

const char *rag_search_mode_str(rag_search_mode m) {
    switch (m) {
    case RAG_SEARCH_DENSE: return "dense";
    case RAG_SEARCH_BM25: return "bm25";
    case RAG_SEARCH_HYBRID: return "hybrid";
    }
    return "?";
}

int rag_search_mode_parse(const char *s) {
    if (!s) return -1;
    if (strcmp(s, "dense") == 0) return RAG_SEARCH_DENSE;
    if (strcmp(s, "bm25") == 0) return RAG_SEARCH_BM25;
    if (strcmp(s, "hybrid") == 0) return RAG_SEARCH_HYBRID;
    return -1;
}

rag_retriever_params rag_retriever_default_params(void) {
    rag_retriever_params p;
    memset(&p, 0, sizeof p);
    p.layer = -1;
    p.rrf_k = 60;
    p.overfetch = 4;
    return p;
}

/* The model's sha256: from the "rag.model_stat" cache the ingester wrote
 * when the file's path, size and mtime still match, else hashed. With LoRA
 * adapters, the fingerprint of model and adapters (llm_model_fingerprint). */
static int model_sha(rag_retriever *r, char out[65]) {
    if (llm_model_n_lora(r->p.model) > 0)
        return llm_model_fingerprint(r->p.model, out) == LLM_OK ? RAG_OK : RAG_ERR_IO;
    llm_model_info info;
    llm_model_get_info(r->p.model, &info);
    char *val = NULL;
    char *real = info.path ? realpath(info.path, NULL) : NULL;
    struct stat st;
    bool hit = false;
    if (real && stat(real, &st) == 0 && idx_meta_get(r->s, "rag.model_stat", &val) == IDX_OK && val) {
        char want[PATH_MAX + 96];
        snprintf(want, sizeof want, "%s\t%lld\t%lld\t", real, (long long)st.st_size,
                 (long long)st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec);
        size_t wl = strlen(want);
        if (strncmp(val, want, wl) == 0 && strlen(val + wl) == 64) {
            memcpy(out, val + wl, 65);
            hit = true;
        }
    }
    free(val);
    free(real);
    if (hit) return RAG_OK;
    return llm_model_sha256(r->p.model, out) == LLM_OK ? RAG_OK : RAG_ERR_IO;
}

int rag_retriever_new(idx_store *s, const rag_retriever_params *p, rag_retriever **out, char *err, size_t errlen) {
    int rc = RAG_OK;
    rag_retriever *r = NULL;
    if (out) *out = NULL;
    if (!s || !p || !out) {
        if (err && errlen) snprintf(err, errlen, "retrieve: bad arguments");
        return RAG_ERR_ARG;
    }
    if (!(r = calloc(1, sizeof *r))) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return RAG_ERR_NOMEM;
    }
    r->s = s;
    r->p = *p;
    rag_fusion_load(s, &r->fusion);
    if (r->p.rrf_k < 1) r->p.rrf_k = 60;
    if (r->p.overfetch < 1) r->p.overfetch = 4;
    if (p->embed) {
        /* embeddings from elsewhere: the caller checked they fit the index */
        if (p->embed_dim <= 0) { rc = rfail(r, RAG_ERR_ARG, "retrieve: embed_dim missing"); goto done; }
        r->dim = p->embed_dim;
        if (!(r->q = malloc((size_t)r->dim * sizeof *r->q))) { rc = rfail(r, RAG_ERR_NOMEM, "out of memory"); goto done; }
    } else if (p->model) {
        r->dim = llm_n_embd(p->model);
        idx_fingerprint fp, rec;
        memset(&fp, 0, sizeof fp);
        /* the query is embedded as the chunks were: the recorded layer wins */
        if (idx_fingerprint_get(s, &rec) == IDX_OK) r->p.layer = rec.layer;
        if ((rc = model_sha(r, fp.model_sha256)) != RAG_OK) { rfail(r, rc, "cannot hash the model file"); goto done; }
        fp.layer = r->p.layer;
        snprintf(fp.pooling, sizeof fp.pooling, "mean");
        fp.dim = r->dim;
        if (idx_fingerprint_check(s, &fp) != IDX_OK) {
            rc = rfail(r, RAG_ERR_MISMATCH,
                       "%s (to switch models, re-ingest: `mrag ingest --reindex -m NEW DIR`; the fingerprint "
                       "covers LoRA adapters too: give the --lora the index was built with)", idx_errmsg(s));
            goto done;
        }
        llm_context_params cp = llm_context_default_params();
        cp.n_ctx = 2048;
        cp.n_batch = 512;
        cp.n_threads = p->n_threads;
        cp.embd_layer = r->p.layer;
        char lerr[256] = "";
        if (llm_context_new(p->model, &cp, &r->ctx, lerr, sizeof lerr) != LLM_OK) {
            rc = rfail(r, RAG_ERR_ARG, "embedding context: %s", lerr);
            goto done;
        }
        if (!(r->q = malloc((size_t)r->dim * sizeof *r->q))) { rc = rfail(r, RAG_ERR_NOMEM, "out of memory"); goto done; }
    }
done:
    if (rc != RAG_OK) {
        if (err && errlen) snprintf(err, errlen, "%s", r->err);
        rag_retriever_free(r);
        return rc;
    }
    *out = r;
    return RAG_OK;
}

void rag_retriever_free(rag_retriever *r) {
    if (!r) return;
    llm_context_free(r->ctx);
    free(r->q);
    free(r->la);
    free(r->lb);
    free(r->fused);
    free(r);
}

const char *rag_retriever_errmsg(const rag_retriever *r) { return r ? r->err : ""; }

rag_fusion rag_retriever_fusion(const rag_retriever *r) { return r ? r->fusion : rag_fusion_default(); }

int rag_retriever_embed(rag_retriever *r, const char *text, size_t len, float *out) {
    if (!r || !out || (!text && len)) return RAG_ERR_ARG;
    if (r->p.embed) {
        int rc = r->p.embed(r->p.embed_user, text ? text : "", len, out, r->dim);
        return rc == RAG_OK ? RAG_OK : rfail(r, rc, "query embedding failed: %s",
                                             rc == RAG_ERR_MISMATCH ? "the embedding does not fit the index" : "the embedder failed");
    }
    if (!r->ctx) return rfail(r, RAG_ERR_ARG, "dense search needs the model the index was built with (-m or MRAG_MODEL)");
    if (llm_embed(r->ctx, text ? text : "", len, out) != LLM_OK)
        return rfail(r, RAG_ERR_FORMAT, "query embedding failed: %s", llm_context_error(r->ctx));
    return RAG_OK;
}

static int reserve(rag_retriever *r, int n) {
    if (n <= r->cap) return RAG_OK;
    idx_hit *a = realloc(r->la, (size_t)n * sizeof *a);
    if (a) r->la = a;
    idx_hit *b = realloc(r->lb, (size_t)n * sizeof *b);
    if (b) r->lb = b;
    rag_hit *f = realloc(r->fused, 2 * (size_t)n * sizeof *f);
    if (f) r->fused = f;
    if (!a || !b || !f) return rfail(r, RAG_ERR_NOMEM, "out of memory");
    r->cap = n;
    return RAG_OK;
}

static int cmp_fused(const void *a, const void *b) {
    const rag_hit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->chunk_id < y->chunk_id ? -1 : x->chunk_id > y->chunk_id;
}

/* have_q: r->q already holds the query's embedding (rag_retrieve_multi). */
static int dense_list(rag_retriever *r, const char *query, size_t len, int k, const idx_filter *f, bool have_q, int *n) {
    int rc = have_q ? RAG_OK : rag_retriever_embed(r, query, len, r->q);
    if (rc != RAG_OK) return rc;
    if (idx_search_dense(r->s, r->q, r->dim, k, f, r->la, n) != IDX_OK)
        return rfail(r, RAG_ERR_IO, "%s", idx_errmsg(r->s));
    return RAG_OK;
}

static int retrieve(rag_retriever *r, const char *query, size_t len, rag_search_mode mode, int k, const idx_filter *filter,
                    bool have_q, rag_hit *hits, int *n_hits) {
    if (!r) return RAG_ERR_ARG;
    r->err[0] = 0;
    if (!hits || !n_hits || k < 1 || k > 100000 || (!query && len)) return rfail(r, RAG_ERR_ARG, "retrieve: bad arguments");
    *n_hits = 0;
    const idx_filter *f = filter;
    int fetch = mode == RAG_SEARCH_HYBRID ? k * r->p.overfetch : k;
    if (fetch < k) fetch = k;
    int rc = reserve(r, fetch);
    if (rc != RAG_OK) return rc;
    int na = 0, nb = 0;
    if (mode == RAG_SEARCH_DENSE || mode == RAG_SEARCH_HYBRID) {
        if (!r->ctx && !r->p.embed) return rfail(r, RAG_ERR_ARG, "%s search needs the model the index was built with (-m or MRAG_MODEL); "
                                                  "--mode bm25 works without one", rag_search_mode_str(mode));
        if ((rc = dense_list(r, query, len, fetch, f, have_q, &na)) != RAG_OK) return rc;
    }
    if (mode == RAG_SEARCH_BM25 || mode == RAG_SEARCH_HYBRID) {
        if (idx_search_bm25(r->s, query ? query : "", len, fetch, f, r->lb, &nb) != IDX_OK)
            return rfail(r, RAG_ERR_IO, "%s", idx_errmsg(r->s));
    }
    if (mode == RAG_SEARCH_DENSE || mode == RAG_SEARCH_BM25) {
        const idx_hit *l = mode == RAG_SEARCH_DENSE ? r->la : r->lb;
        int n = mode == RAG_SEARCH_DENSE ? na : nb;
        for (int i = 0; i < n && i < k; i++) {
            hits[i].chunk_id = l[i].chunk_id;
            hits[i].score = l[i].score;
            hits[i].dense_rank = mode == RAG_SEARCH_DENSE ? i + 1 : 0;
            hits[i].dense_score = mode == RAG_SEARCH_DENSE ? l[i].score : 0;
            hits[i].bm25_rank = mode == RAG_SEARCH_BM25 ? i + 1 : 0;
            hits[i].part = 0;
            (*n_hits)++;
        }
        return RAG_OK;
    }
    /* Weighted RRF: score = sum over the lists of w / (rrf_k + rank), rank
     * 1-based, w the list's weight learned for this index (rag_tune).
     * Lists hold at most a few hundred entries, so a linear lookup is fine. */
    int nf = 0;
    for (int i = 0; i < na; i++) {
        rag_hit *h = &r->fused[nf++];
        h->chunk_id = r->la[i].chunk_id;
        h->dense_rank = i + 1;
        h->dense_score = r->la[i].score;
        h->bm25_rank = 0;
        h->part = 0;
        h->score = r->fusion.w_dense / (float)(r->p.rrf_k + i + 1);
    }
    for (int i = 0; i < nb; i++) {
        int j = 0;
        while (j < nf && r->fused[j].chunk_id != r->lb[i].chunk_id) j++;
        if (j == nf) {
            r->fused[nf].chunk_id = r->lb[i].chunk_id;
            r->fused[nf].dense_rank = 0;
            r->fused[nf].dense_score = 0;
            r->fused[nf].score = 0;
            r->fused[nf].part = 0;
            nf++;
        }
        r->fused[j].bm25_rank = i + 1;
        r->fused[j].score += r->fusion.w_bm25 / (float)(r->p.rrf_k + i + 1);
    }
    qsort(r->fused, (size_t)nf, sizeof *r->fused, cmp_fused);
    for (int i = 0; i < nf && i < k; i++) hits[(*n_hits)++] = r->fused[i];
    return RAG_OK;
}

int rag_retrieve(rag_retriever *r, const char *query, size_t len, rag_search_mode mode, int k, const idx_filter *filter,
                 rag_hit *hits, int *n_hits) {
    return retrieve(r, query, len, mode, k, filter, false, hits, n_hits);
}

static int cmp_merged(const void *a, const void *b) {
    const rag_hit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->part != y->part) return x->part < y->part ? -1 : 1;
    return x->chunk_id < y->chunk_id ? -1 : x->chunk_id > y->chunk_id;
}

/* Contract: see retrieve.h. */
int rag_retrieve_multi(rag_retriever *const *rs, size_t n, const char *query, size_t len, rag_search_mode mode,
                       int k, const idx_filter *filter, rag_hit *hits, int *n_hits) {
    if (!rs || n == 0 || !rs[0]) return RAG_ERR_ARG;
    rag_retriever *r0 = rs[0];
    if (n == 1) return rag_retrieve(r0, query, len, mode, k, filter, hits, n_hits);
    r0->err[0] = 0;
    if (!hits || !n_hits || k < 1 || k > 100000 || (!query && len) || n > 1024)
        return rfail(r0, RAG_ERR_ARG, "retrieve: bad arguments");
    *n_hits = 0;
    for (size_t i = 0; i < n; i++)
        if (!rs[i]) return rfail(r0, RAG_ERR_ARG, "retrieve: index %zu missing", i + 1);
    bool dense = mode == RAG_SEARCH_DENSE || mode == RAG_SEARCH_HYBRID;
    if (dense) {
        if (!r0->ctx && !r0->p.embed)
            return rfail(r0, RAG_ERR_ARG, "%s search needs the model the index was built with (-m or MRAG_MODEL); "
                                          "--mode bm25 works without one", rag_search_mode_str(mode));
        int rc = rag_retriever_embed(r0, query, len, r0->q);
        if (rc != RAG_OK) return rc;
        for (size_t i = 1; i < n; i++) {
            if (rs[i]->dim != r0->dim || !rs[i]->q)
                return rfail(r0, RAG_ERR_MISMATCH, "index %zu embeds in %d dimensions, index 1 in %d: the indexes "
                             "were not built with the same model", i + 1, rs[i]->dim, r0->dim);
            if (rs[i] != r0) memcpy(rs[i]->q, r0->q, (size_t)r0->dim * sizeof *r0->q);
        }
    }
    rag_hit *all = calloc(n * (size_t)k, sizeof *all);
    if (!all) return rfail(r0, RAG_ERR_NOMEM, "out of memory");
    size_t na = 0;
    for (size_t i = 0; i < n; i++) {
        int nh = 0;
        int rc = retrieve(rs[i], query, len, mode, k, filter, dense, all + na, &nh);
        if (rc != RAG_OK) {
            if (rs[i] != r0) rfail(r0, rc, "index %zu: %s", i + 1, rs[i]->err);
            free(all);
            return rc;
        }
        /* the hit's rank in its own index is what counts across indexes */
        for (int j = 0; j < nh; j++) {
            all[na + (size_t)j].part = (int)i;
            all[na + (size_t)j].score = 1.0f / (float)(r0->p.rrf_k + j + 1);
        }
        na += (size_t)nh;
    }
    qsort(all, na, sizeof *all, cmp_merged);
    for (size_t i = 0; i < na && i < (size_t)k; i++) hits[(*n_hits)++] = all[i];
    free(all);
    return RAG_OK;
}
