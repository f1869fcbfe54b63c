/* remote.h — the remote engine: generation and query embeddings on an
 * OpenAI-compatible server over libcurl. See docs/remote.md.
 *
 * BASE is the server's base URL ending in /v1 (vLLM, TGI, Mistral's API, or
 * `mrag serve`). Generation: POST BASE/chat/completions with "stream":true,
 * the SSE stream parsed as it arrives (bounded lines, heartbeat comments,
 * error objects, `data: [DONE]`), text handed to emit as it comes. The
 * prompt of rag_prompt_build is turned back into chat messages (never sent
 * raw). Retries only before the first token; the cancel flag aborts the
 * transfer. The API key is read from a file and sent as a Bearer token; it
 * never appears in messages. One rag_remote serves one request at a time
 * (make one per thread). */
#ifndef MRAG_RAG_REMOTE_H
#define MRAG_RAG_REMOTE_H

#include "rag/answer.h"
#include "rag/base.h"

typedef struct rag_remote rag_remote;

typedef struct {
    const char *base_url;       /* required: "http://host:port/v1" */
    const char *key_file;       /* API key file (first line); NULL: no key */
    const char *model;          /* "model" of requests; NULL: the first id of GET BASE/models */
    const char *ca_file;        /* extra CA bundle for https; TLS is always verified */
    float temperature;          /* default 0 (greedy) */
    uint64_t seed;              /* default 42 */
    int connect_timeout_ms;     /* default 10000 */
    int first_token_timeout_ms; /* request sent to first streamed text, default 300000 */
    int idle_timeout_ms;        /* longest silence after the first token, default 60000 */
    int max_attempts;           /* tries before the first token, default 3 */
    int backoff_ms;             /* first retry wait (doubles; Retry-After wins, at most 30 s), default 500 */
    size_t max_line_bytes;      /* longest SSE line / event, default 1 MB */
    bool probe;                 /* GET BASE/models at rag_remote_new (default true):
                                   model id, and `mrag serve`'s sha256/n_embd */
} rag_remote_params;

rag_remote_params rag_remote_default_params(void);

/* Reads the key file, checks the URL, probes BASE/models (p->probe). *out
 * owned (free with rag_remote_free); on failure NULL and err says why. */
int rag_remote_new(const rag_remote_params *p, rag_remote **out, char *err, size_t errlen);
void rag_remote_free(rag_remote *r);                 /* NULL is a no-op */
#define RAG_REMOTE_MAX_STOP 8
/* Sampling of the following rag_remote_generate calls: temperature, seed and
 * up to RAG_REMOTE_MAX_STOP stop strings sent as "stop" (copied; n_stop 0 =
 * none). For a server that hands one rag_remote per slot to successive
 * requests. RAG_ERR_ARG for too many or empty stops, RAG_ERR_NOMEM. */
int rag_remote_set_sampling(rag_remote *r, float temperature, uint64_t seed, const char *const *stop,
                            size_t n_stop);
const char *rag_remote_errmsg(const rag_remote *r); /* borrowed, "" when none */
const char *rag_remote_model(const rag_remote *r);  /* the model id used, borrowed */

/* A rag_generate_fn (user = rag_remote *): streams the answer to prompt (a
 * rag_prompt_build / llm_chat_format prompt) through emit. RAG_OK also when
 * emit or *cancel stopped it; else RAG_ERR_IO (network, HTTP status, stream
 * cut or malformed: errmsg names the status and the server's message). */
int rag_remote_generate(void *user, const char *prompt, size_t len, int max_tokens,
                        rag_emit_fn emit, void *emit_user, volatile int *cancel);
/* For rag_answer_params.generate_errmsg (user = rag_remote *). */
const char *rag_remote_generate_errmsg(void *user);

/* Embeds text through POST BASE/embeddings into out[dim] (L2-normalised);
 * RAG_ERR_MISMATCH when the server's vector has another length. Usable as
 * rag_retriever_params.embed (user = rag_remote *). */
int rag_remote_embed(void *user, const char *text, size_t len, float *out, int dim);
/* Checks that the server's embedding fits the index s: its dimension (one
 * probe request), the final-layer pooling, and, when the server reports a
 * sha256 in its /v1/models "mrag" object, the model the index was built
 * with. RAG_ERR_MISMATCH (or RAG_ERR_IO) with errmsg saying what differs;
 * *dim = the index dimension on success. */
int rag_remote_check_index(rag_remote *r, idx_store *s, int *dim);

/* One chat message of a split prompt (owned strings). */
typedef struct {
    char *role;                 /* "user" or "assistant" */
    char *content;
} rag_chat_msg;

/* Turns a Mistral-format prompt ("<s>[INST] u [/INST] a</s>[INST] u2 [/INST]")
 * back into messages: the exact inverse of llm_chat_format for alternating
 * user/assistant turns. The prompt builder defuses control strings inside
 * sources, history and question, so the split is unambiguous (a preamble
 * holding them is the operator's doing: RAG_ERR_FORMAT). *msgs owned, free
 * with rag_chat_msgs_free. */
int rag_prompt_to_messages(const char *prompt, size_t len, rag_chat_msg **msgs, size_t *n,
                           char *err, size_t errlen);
void rag_chat_msgs_free(rag_chat_msg *msgs, size_t n);

/* The SSE parser alone, for tests and fuzzing: data[0..len) fed in pieces
 * of `piece` bytes (0 = all at once), lines bounded by max_line (0 = 1 MB);
 * content deltas go to emit. RAG_OK at [DONE] or at the end of the bytes;
 * else the stream's error (RAG_ERR_FORMAT malformed, RAG_ERR_IO an error
 * object, RAG_ERR_LIMIT a long line) with err set. */
int rag_remote_parse_sse(const char *data, size_t len, size_t piece, size_t max_line, rag_emit_fn emit,
                         void *emit_user, char *err, size_t errlen);

/* Token estimate without a tokenizer (user ignored): letters and blanks at
 * 2.5 bytes a token, digits and punctuation one each, other bytes 2/3; an
 * overestimate of Mistral's tokenizer on prose and code (docs/remote.md). */
int rag_count_estimate(void *user, const char *text, size_t len);

#endif
