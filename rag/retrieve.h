/* retrieve.h — retrieval over an index: dense (FAISS), BM25 (FTS5) or
 * hybrid (weighted reciprocal rank fusion, k = 60) search, with an optional
 * access-group filter; the fusion weights learned per index (rag/tune.c).
 * See docs/retrieval.md. */
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
    float dense_score;          /* cosine similarity when dense_rank > 0 */
    int part;                   /* rag_retrieve_multi: which retriever found it
                                   (0-based); 0 otherwise */
} rag_hit;

/* Searches query[0..len) and writes up to k hits (best first, ties by chunk
 * id) into hits, their number into *n_hits. Dense and hybrid need a model
 * (RAG_ERR_ARG otherwise). filter may be NULL. */
int rag_retrieve(rag_retriever *r, const char *query, size_t len, rag_search_mode mode, int k,
                 const idx_filter *filter, rag_hit *hits, int *n_hits);

/* Searches several indexes (collections) at once: each retriever rs[i]
 * searches its own index as rag_retrieve does (k hits, mode, filter), then
 * the rankings are merged by reciprocal rank fusion — a hit's score is
 * 1 / (rrf_k + its rank in its own index), ties in index order then chunk
 * id — because raw scores do not compare across indexes (BM25 depends on
 * each index's term statistics, hybrid scores on its learned weights).
 * hits[i].part says which index. The query is embedded once (by the first
 * retriever) and reused: the retrievers must embed alike (the same model
 * fingerprint; their dimension is checked, RAG_ERR_MISMATCH). With n == 1
 * it is rag_retrieve (scores unchanged). Errors name the index by number
 * ("index 2: ..."), in rs[0]'s errmsg. */
int rag_retrieve_multi(rag_retriever *const *rs, size_t n, const char *query, size_t len, rag_search_mode mode,
                       int k, const idx_filter *filter, rag_hit *hits, int *n_hits);

/* Embeds a query as the index's chunks were embedded (for tests); out[n_embd]. */
int rag_retriever_embed(rag_retriever *r, const char *text, size_t len, float *out);

/* How much each ranking can be trusted on an index (rag/tune.c,
 * docs/retrieval.md "Fusion weights"): hybrid scores a chunk
 * w_dense / (rrf_k + dense rank) + w_bm25 / (rrf_k + bm25 rank). */
typedef struct {
    float w_dense, w_bm25;      /* sum 1; default 0.5 / 0.5 (plain RRF) */
    /* cosine similarity from which a passage is relevant by meaning (the
     * relevance gate); INFINITY = never (dense not trusted) */
    float gate_cos;
    int n_queries;              /* queries the weights were learned from */
    double mrr_dense, mrr_bm25, mrr_hybrid;   /* MRR@10 on them */
    char source[16];            /* "default", "pseudo", "labelled" */
} rag_fusion;

rag_fusion rag_fusion_default(void);
/* The weights stored in the index; RAG_ERR_NOTFOUND (and the defaults in
 * *f) when none are. */
int rag_fusion_load(idx_store *s, rag_fusion *f);
/* The weights a retriever uses (loaded from the index when it was made). */
rag_fusion rag_retriever_fusion(const rag_retriever *r);

typedef struct {
    const char *question;
    const int64_t *rel;         /* chunk ids that answer it */
    size_t n_rel;
} rag_tune_label;

typedef struct {
    int max_queries;            /* pseudo-queries (default 200) */
    const rag_tune_label *labelled;  /* NULL: pseudo-queries from public chunks */
    size_t n_labelled;
    bool dry_run;               /* compute, do not store */
} rag_tune_params;

/* Learns the fusion weights and the gate's similarity for r's index s:
 * every query is run in dense and BM25 mode (top 50), the dense weight of
 * weighted RRF is chosen on a grid of 0..1 by MRR@10 and kept at 0 unless
 * it adds at least 0.01 MRR over BM25 alone; the gate similarity is the
 * lowest at which 95% of top dense hits are relevant. Pseudo-queries (a
 * sentence of a public chunk -> that chunk) run as a public caller, so the
 * result never depends on restricted documents. Stores the result in the
 * index (meta "rag.fusion") unless dry_run; *out (may be NULL) gets it. */
int rag_tune(rag_retriever *r, idx_store *s, const rag_tune_params *p, rag_fusion *out, char *err, size_t errlen);

#define RAG_MAX_LAYERS 16
typedef struct {
    int layers[RAG_MAX_LAYERS];     /* compared layers (-1 = final norm) */
    int n_layers;
    double mrr_dense[RAG_MAX_LAYERS], mrr_hybrid[RAG_MAX_LAYERS];  /* MRR@10 per layer */
    float w_dense[RAG_MAX_LAYERS];  /* the dense weight fusion would get */
    int best, current;              /* indexes into layers */
    int n_queries, n_sampled;       /* pseudo-queries, chunks ranked among */
    bool changed;                   /* the index was re-embedded at layers[best] */
} rag_layer_choice;

/* `--layer auto`: compares embedding layers of model m on the index s
 * (which m built) with pseudo-queries from public chunks, ranked among a
 * sample of up to 2000 public chunks: every sampled chunk and query goes
 * through the model once, all candidate layers captured (llm_embed_layers).
 * cand[n_cand] (NULL: a quarter, half and three quarters of the layers, and
 * the final norm; the index's own layer always). The winner has the best
 * hybrid MRR@10 (weighted RRF, weight learned as rag_tune does), then the
 * best dense MRR, by more than 0.01 over the index's layer. With apply, a
 * winner other than the index's layer is made the index's: every chunk is
 * re-embedded at it (idx_vectors_replace) — run rag_tune afterwards. */
int rag_tune_layer(idx_store *s, llm_model *m, int n_threads, const int *cand, int n_cand, bool apply,
                   rag_layer_choice *out, char *err, size_t errlen);

#endif
