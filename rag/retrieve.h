/* retrieve.h — retrieval over an index: dense (FAISS), BM25 (FTS5) or
 * hybrid (reciprocal rank fusion, k = 60) search, with an optional
 * access-group filter. See docs/retrieval.md. */
#ifndef MRAG_RAG_RETRIEVE_H
#define MRAG_RAG_RETRIEVE_H

#include "rag/base.h"

typedef enum {
    RAG_SEARCH_DENSE = 0,
    RAG_SEARCH_BM25,
    RAG_SEARCH_HYBRID,
} rag_search_mode;

const char *rag_search_mode_str(rag_search_mode m);   /* "dense", "bm25", "hybrid" */
/* Parses "dense"/"bm25"/"hybrid"; -1 when unknown. */
int rag_search_mode_parse(const char *s);

typedef struct {
    llm_model *model;           /* NULL: BM25 only */
    int layer;                  /* -1 = final norm; used only when the index has no
                                   fingerprint yet: otherwise the recorded layer is used */
    int n_threads;              /* engine threads, 0 = all cores */
    int rrf_k;                  /* default 60 */
    int overfetch;              /* hybrid fetches overfetch * k from each list, default 4 */
    /* Query embeddings from elsewhere (the remote engine): when set, queries
     * are embedded by embed(embed_user, text, len, out[embed_dim]) instead of
     * the model (which is then not used for retrieval, and the caller checks
     * that the embedding fits the index: rag_remote_check_index). */
    int (*embed)(void *user, const char *text, size_t len, float *out, int dim);
    void *embed_user;
    int embed_dim;
} rag_retriever_params;

rag_retriever_params rag_retriever_default_params(void);

typedef struct rag_retriever rag_retriever;

/* A retriever over a store (borrowed, must outlive it). With a model, the
 * index's fingerprint is checked (RAG_ERR_MISMATCH names what differs and
 * tells the user to re-ingest) and queries are embedded at the layer the
 * index records. *out owned, free with rag_retriever_free;
 * on failure *out is NULL and err says why. */
int rag_retriever_new(idx_store *s, const rag_retriever_params *p, rag_retriever **out,
                      char *err, size_t errlen);
void rag_retriever_free(rag_retriever *r);   /* NULL is a no-op */
/* Last error, borrowed; "" when none. */
const char *rag_retriever_errmsg(const rag_retriever *r);

typedef struct {
    int64_t chunk_id;
    float score;                /* dense: cosine; bm25: -bm25(); hybrid: RRF sum */
    int dense_rank, bm25_rank;  /* 1-based rank in each list, 0 = absent */
} rag_hit;

/* Searches query[0..len) and writes up to k hits (best first, ties by chunk
 * id) into hits, their number into *n_hits. Dense and hybrid need a model
 * (RAG_ERR_ARG otherwise). filter may be NULL. */
int rag_retrieve(rag_retriever *r, const char *query, size_t len, rag_search_mode mode, int k,
                 const idx_filter *filter, rag_hit *hits, int *n_hits);

/* Embeds a query as the index's chunks were embedded (for tests); out[n_embd]. */
int rag_retriever_embed(rag_retriever *r, const char *text, size_t len, float *out);

#endif
