/* model.h — a loaded Mistral/Mixtral model: hyperparameters and per-layer
 * weight views into the GGUF mapping (internal to llm/). */
#ifndef LLM_MODEL_H
#define LLM_MODEL_H

#include <stdatomic.h>
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
    _Atomic bool pack_pending;  /* defer_repack: llm_model_pack still to run (llm_model_ensure_packed) */
    /* LoRA adapters loaded with the model (owned), applied by contexts
     * that name none */
    struct llm_lora *lora[16];
    float lora_scale[16];
    int n_lora;
};

/* Repacks the matmul weights the active SIMD level has packed kernels for
 * (llm/model_pack.c); LLM_OK when nothing needs it. Undone by
 * llm_model_unpack (llm_model_free calls it). */
int llm_model_pack(llm_model *m, char *err, size_t errlen);
void llm_model_unpack(llm_model *m);

/* With llm_model_params.defer_repack: packs the weights on the first call
 * (one caller packs, concurrent ones wait for it), nothing afterwards.
 * llm_forward calls it. When packing fails (no memory for the copy) the
 * model keeps running from the mapped file, as with no_repack. */
void llm_model_ensure_packed(const llm_model *m);

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
/* Forgets the cached positions from pos on (no rolling buffer: the cache
 * then holds [0, pos)). */
void llm_state_truncate(llm_state *s, int pos);
/* Runs the transformer over the batch; LLM_OK or LLM_ERR_ARG. */
int llm_forward(const llm_model *m, llm_state *s, struct llm_pool *pool, const llm_batch *b);
/* Logits of the last llm_forward: row i (0..n-1 when logits == 2, else row 0). */
const float *llm_state_logits(const llm_state *s, int row);

/* ------------------------------------------------------------ SHA-256 cache
 * (llm/sha_cache.c) */
/* SHA-256 of the size bytes at data — the mapping of the file `id` names —
 * from the per-user cache when that file provably has not changed since it
 * was hashed, else hashed (and remembered). head_len: the bytes of its
 * header (GGUF: the data offset), re-hashed for every lookup. id NULL:
 * always hashed. */
int llm_file_sha256(const char *path, const llm_file_id *id, const uint8_t *data, uint64_t size, uint64_t head_len,
                    char out[65]);
/* Files hashed in full by this process so far (tests check the cache with it). */
uint64_t llm_sha256_full_hashes(void);

/* ------------------------------------------------------------ LoRA
 * (llm/lora.c). Adapted weights are numbered by slot: LLM_LORA_PER_LAYER
 * per layer, then token_embd, then output. */
enum { LLM_LORA_Q, LLM_LORA_K, LLM_LORA_V, LLM_LORA_O, LLM_LORA_GATE, LLM_LORA_UP, LLM_LORA_DOWN,
       LLM_LORA_ROUTER, LLM_LORA_PER_LAYER };
#define LLM_LORA_SLOT(layer, which) ((layer) * LLM_LORA_PER_LAYER + (which))
#define LLM_LORA_SLOT_EMBD(m) ((m)->hp.n_layer * LLM_LORA_PER_LAYER)
#define LLM_LORA_SLOT_OUTPUT(m) ((m)->hp.n_layer * LLM_LORA_PER_LAYER + 1)
#define LLM_LORA_N_SLOTS(m) ((m)->hp.n_layer * LLM_LORA_PER_LAYER + 2)
#define LLM_MAX_LORA 16

/* One adapted weight: Y += scale * B (A X). A: rank x n_in (token_embd:
 * n_vocab x rank, a row per token), B: n_out x rank. Views into the
 * adapter's mapping; a.data NULL = the slot is not adapted. */
typedef struct {
    llm_weight a, b;
    int rank;
} llm_lora_pair;

struct llm_lora {
    const llm_model *m;         /* the model it was checked against */
    char *path;                 /* owned */
    gguf_file *f;               /* owned mapping */
    float alpha;
    llm_lora_pair *pairs;       /* owned, n_slots entries */
    int n_slots, n_pairs, max_rank, max_rows;
    bool sha_done;
    char sha[65];
};

/* The adapters a context applies, with the scratch of their products
 * (sized for n_batch tokens). */
typedef struct {
    int n;
    const llm_lora *l[LLM_MAX_LORA];
    float scale[LLM_MAX_LORA];
    int n_batch;
    float *t;                   /* (n_batch, max rank) A X */
    float *d;                   /* (chunk, max rows) B T */
    void *work;                 /* matmul scratch */
} llm_lora_run;

/* llm_lora_load's checks over an open file (taken over: closed on failure,
 * owned by the adapter on success); `path` names it in messages. The fuzz
 * target feeds it bytes. */
int llm_lora_from_gguf(const llm_model *m, gguf_file *f, const char *path, llm_lora **out, char *err,
                       size_t errlen);
int llm_lora_run_new(const llm_model *m, llm_lora *const *loras, const float *scales, int n, int n_batch,
                     llm_lora_run **out, char *err, size_t errlen);
void llm_lora_run_free(llm_lora_run *r);
/* Bytes of the scratch llm_lora_run_new allocates (context accounting). */
uint64_t llm_lora_run_bytes(llm_lora *const *loras, int n, int n_batch);
/* True when one of the adapters adapts the slot. */
bool llm_lora_has(const llm_lora_run *r, int slot);
/* Y (n x rows of the slot's weight) += each adapter's delta for the slot;
 * X is n x n_in. */
void llm_lora_add(llm_lora_run *r, struct llm_pool *pool, int slot, const float *X, int n, float *Y);
/* X (n x n_embd embeddings of tokens) += the token_embd adapters' deltas. */
void llm_lora_add_embd(llm_lora_run *r, struct llm_pool *pool, const llm_model *m, const int32_t *tokens, int n,
                       float *X);
/* The context's adapters for the next llm_forward calls (NULL = none). */
void llm_state_set_lora(llm_state *s, llm_lora_run *r);

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
    llm_lora_run *lora;         /* owned; NULL without adapters */
    int32_t *hist;              /* (n_ctx) the tokens at positions [0, n_past), for prefix reuse */
    bool hist_ok;               /* hist is exact (false after embeddings, or once rolling past n_ctx) */
    char err[256];
};

/* Keeps the cached longest common prefix of the context's tokens and
 * tokens[0..n) (at most n - 1), drops the rest; returns how many were kept. */
int llm_context_keep_prefix(llm_context *c, const int32_t *tokens, int n);

/* Sets the context's error message; returns rc. */
int llm_context_fail(llm_context *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
