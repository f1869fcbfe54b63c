/* model.h — a loaded Mistral/Mixtral model: hyperparameters and per-layer
 * weight views into the GGUF mapping (internal to llm/). */
#ifndef LLM_MODEL_H
#define LLM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm/gguf.h"
#include "llm/kernels.h"
#include "llm/llm.h"

struct llm_vocab;

/* Hyperparameters, from the llama.* keys of the file. */
typedef struct {
    int n_vocab;        /* rows of token_embd */
    int n_embd;         /* model width (dim) */
    int n_layer;
    int n_head;         /* query heads */
    int n_head_kv;      /* key/value heads (GQA: n_head % n_head_kv == 0) */
    int head_dim;       /* n_embd / n_head */
    int n_ff;           /* FFN hidden width (per expert for MoE) */
    int n_rot;          /* rotated dims per head (== head_dim for llama) */
    int n_ctx_train;
    int n_expert;       /* 0 = dense */
    int n_expert_used;  /* top-k */
    int swa_window;     /* 0 = full attention */
    float rope_theta;   /* rope.freq_base, default 10000 */
    float rms_eps;
} llm_hparams;

/* A 2-D weight matrix (rows x cols, each row contiguous) borrowed from the
 * mapping. For 3-D expert tensors, `stride` is the byte distance between
 * consecutive experts and `data` points at expert 0. */
typedef struct {
    const void *data;
    uint32_t type;      /* ggml type id */
    int rows, cols;
    size_t stride;      /* bytes per expert (0 for 2-D) */
    const void *packed; /* NULL, or the rows repacked at load (model_pack.c) */
    size_t pstride;     /* bytes per expert of the packed copy */
} llm_weight;

typedef struct {
    const float *attn_norm;     /* (n_embd) */
    llm_weight wq;              /* (n_head * head_dim) x n_embd */
    llm_weight wk;              /* (n_head_kv * head_dim) x n_embd */
    llm_weight wv;              /* (n_head_kv * head_dim) x n_embd */
    llm_weight wo;              /* n_embd x (n_head * head_dim) */
    const float *ffn_norm;      /* (n_embd) */
    /* dense FFN (n_expert == 0) */
    llm_weight w_gate;          /* n_ff x n_embd */
    llm_weight w_up;            /* n_ff x n_embd */
    llm_weight w_down;          /* n_embd x n_ff */
    /* MoE (n_expert > 0): router and n_expert stacked experts */
    llm_weight router;          /* n_expert x n_embd */
    llm_weight e_gate;          /* n_expert x (n_ff x n_embd) */
    llm_weight e_up;            /* n_expert x (n_ff x n_embd) */
    llm_weight e_down;          /* n_expert x (n_embd x n_ff) */
} llm_layer;

struct llm_model {
    char *path;                 /* owned copy */
    gguf_file *gguf;            /* owned; every weight points into its mapping */
    struct llm_vocab *vocab;    /* owned; NULL if the tokenizer is absent */
    bool vocab_only;
    char name[128];
    char arch[32];
    llm_hparams hp;
    llm_weight tok_embd;        /* n_vocab x n_embd */
    const float *out_norm;      /* (n_embd) */
    llm_weight output;          /* n_vocab x n_embd (== tok_embd when tied) */
    bool tied_output;
    llm_layer *layers;          /* owned, n_layer entries */
    uint64_t n_params, weight_bytes;
    int n_tensors;
    int tensor_type_count[40];
    bool sha_done;
    char sha[65];
    void *packed_base;          /* owned anonymous mapping of the packed weights, or NULL */
    size_t packed_map;          /* its length */
    uint64_t packed_bytes;
    double pack_seconds;
};

/* Repacks the matmul weights the active SIMD level has packed kernels for
 * (llm/model_pack.c); LLM_OK when nothing needs it. Undone by
 * llm_model_unpack (llm_model_free calls it). */
int llm_model_pack(llm_model *m, char *err, size_t errlen);
void llm_model_unpack(llm_model *m);

/* The model's tokenizer (borrowed, valid while the model lives); NULL when
 * the file has none. */
const struct llm_vocab *llm_model_vocab(const llm_model *m);

/* The matrix of expert e (0 for 2-D weights) as the matmul reads it. */
static inline llm_mat llm_weight_mat(const llm_weight *w, int e) {
    llm_mat m = {w->type, w->rows, w->cols, (const uint8_t *)w->data + (size_t)e * w->stride,
                 w->packed ? (const uint8_t *)w->packed + (size_t)e * w->pstride : NULL};
    return m;
}

/* Pointer to row r of a 2-D weight (or of expert e for 3-D ones). */
static inline const void *llm_weight_row(const llm_weight *w, int e, int r, size_t row_bytes) {
    return (const uint8_t *)w->data + (size_t)e * w->stride + (size_t)r * row_bytes;
}

/* ------------------------------------------------------- forward pass
 * (llm/forward.c). A llm_state is the RunState of one context: scratch
 * buffers sized for n_batch tokens and the KV cache of kv_size slots, all
 * allocated once; llm_forward allocates nothing. */
typedef struct llm_state llm_state;
struct llm_pool;

typedef struct {
    const int32_t *tokens;  /* n token ids (checked < n_vocab by the caller) */
    const int32_t *pos;     /* n positions */
    const int32_t *seq;     /* n sequence ids, or NULL = one sequence; tokens
                               attend only to batch tokens of their own id */
    int n;                  /* 1..n_batch */
    bool use_cache;         /* attend to the positions earlier calls stored */
    bool store_kv;          /* keep this batch's keys/values in the cache */
    int logits;             /* 0 none, 1 last token only, 2 every token */
    float *hidden;          /* NULL or n x n_embd out: hidden states at hidden_layer */
    int hidden_layer;       /* -1 = after the final norm, L = after layer L */
    /* more capture points in the same pass (layer sweeps): hidden_more[j]
     * (n x n_embd) gets the states at hidden_more_layer[j] (-1 = final norm) */
    float *const *hidden_more;
    const int *hidden_more_layer;
    int n_hidden_more;
} llm_batch;

/* kv_size: slots of the rolling KV buffer; n_batch: max tokens per call;
 * all_logits: room for n_batch rows of logits (else one). */
int llm_state_new(const llm_model *m, int kv_size, int n_batch, int n_threads, bool kv_f32,
                  bool all_logits, llm_state **out);
void llm_state_free(llm_state *s);      /* NULL is a no-op */
/* Bytes llm_state_new allocates for these sizes. */
uint64_t llm_state_bytes(const llm_model *m, int kv_size, int n_batch, int n_threads, bool kv_f32,
                         bool all_logits);
/* Bytes of the KV cache alone. */
uint64_t llm_state_kv_bytes(const llm_state *s);
/* Forgets every cached position. */
void llm_state_clear(llm_state *s);
/* Runs the transformer over the batch; LLM_OK or LLM_ERR_ARG. */
int llm_forward(const llm_model *m, llm_state *s, struct llm_pool *pool, const llm_batch *b);
/* Logits of the last llm_forward: row i (0..n-1 when logits == 2, else row 0). */
const float *llm_state_logits(const llm_state *s, int row);

/* ------------------------------------------------------------ context
 * (llm/context.c; embed.c uses the internals). */
struct llm_context {
    const llm_model *m;         /* borrowed */
    llm_context_params p;       /* resolved: n_ctx, n_batch, n_threads set */
    struct llm_pool *pool;      /* owned */
    llm_state *s;               /* owned */
    int window;                 /* effective sliding window (0 = none) */
    int kv_size;                /* min(n_ctx, window) or n_ctx */
    bool rolling;               /* window < n_ctx: positions never run out of slots */
    int n_past;                 /* next position */
    int n_last;                 /* tokens of the last llm_decode chunk */
    int32_t *pos;               /* (n_batch) positions of a chunk */
    int32_t *seq;               /* (n_batch) sequence ids (embeddings) */
    float *hidden;              /* (n_batch, n_embd) hidden states (embeddings) */
    char err[256];
};

/* Sets the context's error message; returns rc. */
int llm_context_fail(llm_context *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
