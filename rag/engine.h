/* engine.h — the generation interface: one way to run a chat model, whether
 * it runs in this process (llm/) or on an OpenAI-compatible server (the
 * remote engine, rag/remote.h). Prompts are messages until the engine
 * formats them: only llm/chat.c knows the template's control strings.
 *
 *   rag_engine_generate(e, messages, sampling, emit, cancel, stats)
 *   rag_engine_embed(e, texts, n, out, dim)
 *
 * An engine serves one request at a time (make one per thread or slot).
 * Functions return RAG_OK or a negative rag_status; rag_engine_errmsg says
 * why. Library code: never prints. */
#ifndef MRAG_RAG_ENGINE_H
#define MRAG_RAG_ENGINE_H

#include "rag/base.h"

/* One chat message (borrowed strings). */
typedef struct {
    const char *role;           /* "system", "user" or "assistant" */
    const char *content;
} rag_msg;

/* Most stop strings a caller may add (the template's own end-of-turn
 * strings are always stops and do not count). */
#define RAG_ENGINE_MAX_STOP 8

/* How one answer is sampled. */
typedef struct {
    int max_tokens;             /* answer budget in tokens (> 0) */
    float temperature;          /* <= 0: greedy */
    uint64_t seed;
    const char *const *stop;    /* extra stop strings (not emitted); may be NULL */
    size_t n_stop;              /* at most RAG_ENGINE_MAX_STOP, none empty */
    const char *cache_scope;    /* whose prompt this is (e.g. the API key's name): the local
                                   engine reuses the KV cache of its previous prompt only
                                   for the same scope, so one caller's prefill time and
                                   cached-token count say nothing about another's prompt;
                                   NULL = one caller (ask, chat) */
} rag_sampling;

/* Greedy, 512 tokens, seed 42, no extra stops. */
rag_sampling rag_sampling_default(void);

/* Why generation ended. Values only ever grow. */
typedef enum {
    RAG_STOP_LENGTH = 0,        /* max_tokens generated */
    RAG_STOP_EOS,               /* the model ended its answer */
    RAG_STOP_STRING,            /* a stop string came */
    RAG_STOP_CANCELLED,         /* the cancel flag or the sink stopped it */
    RAG_STOP_CONTEXT_FULL,      /* the context could take no more tokens */
} rag_stop_reason;

const char *rag_stop_reason_str(rag_stop_reason r);   /* "length", "eos", ... */

/* What one generation took. */
typedef struct {
    int n_prompt;               /* prompt tokens as the engine counted them; -1 unknown */
    int n_reused;               /* of those, the ones whose cached state was reused from the
                                   engine's previous prompt (the local engine keeps the KV cache
                                   of the longest shared prefix); 0 when none or unknown */
    int n_generated;            /* tokens (remote: the pieces the server streamed) */
    double prefill_ms, decode_ms;
    rag_stop_reason stop;
} rag_gen_stats;

/* The operations of an engine. The two built in are below; tests and other
 * backends fill their own (rag_engine_new). self is the implementation's
 * state. */
typedef struct {
    /* Streams the answer to msgs through emit (whole UTF-8 characters);
     * stops when emit returns non-zero or *cancel becomes non-zero (RAG_OK
     * then, stop RAG_STOP_CANCELLED). st is filled in every case. */
    int (*generate)(void *self, const rag_msg *msgs, size_t n, const rag_sampling *s, rag_emit_fn emit,
                    void *emit_user, volatile int *cancel, rag_gen_stats *st);
    /* n texts into out[n * dim], L2-normalised. NULL: the engine cannot embed. */
    int (*embed)(void *self, const char *const *texts, const size_t *lens, int n, float *out, int dim);
    /* Tokens a formatted prompt takes (control strings parsed), or < 0.
     * NULL: rag_count_estimate. */
    int (*count)(void *self, const char *text, size_t len);
    const char *(*errmsg)(void *self);  /* NULL: none kept */
    void (*destroy)(void *self);        /* frees self; may be NULL */
} rag_engine_ops;

typedef struct rag_engine rag_engine;

/* An engine over ops and self (ops copied; self owned by the engine when
 * ops->destroy is set). NULL on OOM (self is then destroyed). */
rag_engine *rag_engine_new(const rag_engine_ops *ops, void *self);
void rag_engine_free(rag_engine *e);                 /* NULL is a no-op */
const char *rag_engine_errmsg(const rag_engine *e);  /* borrowed, "" when none */

/* Contract: rag_engine_ops.generate. Checks the sampling (RAG_ERR_ARG for
 * max_tokens < 1, too many or empty stop strings); st may be NULL. */
int rag_engine_generate(rag_engine *e, const rag_msg *msgs, size_t n, const rag_sampling *s, rag_emit_fn emit,
                        void *emit_user, volatile int *cancel, rag_gen_stats *st);
/* Contract: rag_engine_ops.embed; RAG_ERR_UNSUPPORTED when the engine
 * cannot embed, RAG_ERR_MISMATCH when its vectors are not dim long. */
int rag_engine_embed(rag_engine *e, const char *const *texts, const size_t *lens, int n, float *out, int dim);
/* One text, with the signature of rag_retriever_params.embed (user = the
 * engine): query embeddings through an engine. */
int rag_engine_embed_one(void *engine, const char *text, size_t len, float *out, int dim);
/* A rag_count_tokens_fn (user = the engine): tokens of a formatted prompt. */
int rag_engine_count(void *engine, const char *text, size_t len);

/* The prompt the engine's template makes of msgs (Mistral instruct, by
 * llm_chat_format), to count or show it. Owned, free(); NULL when the roles
 * are out of order (after an optional system message, user and assistant
 * alternate, starting and ending with user) or on OOM. */
char *rag_msgs_format(const rag_msg *msgs, size_t n);

/* Token estimate without a tokenizer (user ignored): letters and blanks at
 * 2.5 bytes a token, digits and punctuation one each, other bytes 2/3; an
 * overestimate of Mistral's tokenizer on prose and code (docs/remote.md). */
int rag_count_estimate(void *user, const char *text, size_t len);

/* ------------------------------------------------------------ local engine */

typedef struct {
    int n_ctx;                  /* 0: min(model's n_ctx_train, 4096) */
    int n_threads;              /* 0 = all cores */
    int embd_layer;             /* hidden state embed() pools: -1 = final norm */
    bool lazy;                  /* create the context at the first call (default
                                   true); false: at rag_engine_local_new, so a
                                   server fails at start, not at the first request */
} rag_local_params;

rag_local_params rag_local_default_params(void);

/* An engine on an in-process model (borrowed, must outlive the engine):
 * llm_chat_format, llm_tokenize (control strings parsed), llm_generate with
 * the template's end-of-turn strings as stops; embed() by llm_embed_batch.
 * *out owned (rag_engine_free); on failure NULL and err says why. */
int rag_engine_local_new(const llm_model *m, const rag_local_params *p, rag_engine **out, char *err,
                         size_t errlen);

/* Tokens text[0..len) takes on the model's tokenizer with control strings
 * parsed, as the model will see a formatted prompt (user = const
 * llm_model *); < 0 on error. */
int rag_count_prompt_tokens(void *model, const char *text, size_t len);

#endif
