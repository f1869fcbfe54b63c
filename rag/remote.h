/* remote.h — the remote engine: generation and query embeddings on an
 * OpenAI-compatible server over libcurl. See docs/remote.md.
 *
 * BASE is the server's base URL ending in /v1 (vLLM, TGI, Mistral's API, or
 * `mrag serve`). Generation: POST BASE/chat/completions with "stream":true,
 * the SSE stream parsed as it arrives (bounded lines, heartbeat comments,
 * error objects, `data: [DONE]`), text handed to emit as it comes. The
 * messages are sent as they are: the server applies its own template.
 * Retries only before the first token; the cancel flag aborts the
 * transfer. The API key is read from a file and sent as a Bearer token; it
 * never appears in messages. One rag_remote serves one request at a time
 * (make one per thread). */
#ifndef MRAG_RAG_REMOTE_H
#define MRAG_RAG_REMOTE_H

#include "rag/base.h"
#include "rag/engine.h"

typedef struct rag_remote rag_remote;

typedef struct {
    const char *base_url;       /* required: "http://host:port/v1" */
    const char *key_file;       /* API key file (first line); NULL: no key */
    const char *model;          /* "model" of requests; NULL: the first id of GET BASE/models */
    const char *ca_file;        /* extra CA bundle for https; TLS is always verified */
    int connect_timeout_ms;     /* default 10000 */
    int first_token_timeout_ms; /* request sent to first streamed text, default 300000 */
    int idle_timeout_ms;        /* longest silence after the first token, default 60000 */
    int max_attempts;           /* tries before the first token, default 3 */
    int backoff_ms;             /* first retry wait (doubles; Retry-After wins, at most 30 s), default 500 */
    size_t max_line_bytes;      /* longest SSE line / event, default 1 MB */
    bool probe;                 /* GET BASE/models at rag_remote_new (default true):
                                   model id, and `mrag serve`'s sha256/n_embd */
    volatile int *cancel;       /* non-zero ends every transfer and retry wait (may be NULL) */
} rag_remote_params;

rag_remote_params rag_remote_default_params(void);

/* Reads the key file, checks the URL, probes BASE/models (p->probe). *out
 * owned (free with rag_remote_free); on failure NULL and err says why. */
int rag_remote_new(const rag_remote_params *p, rag_remote **out, char *err, size_t errlen);
void rag_remote_free(rag_remote *r);                 /* NULL is a no-op */
const char *rag_remote_errmsg(const rag_remote *r); /* borrowed, "" when none */
const char *rag_remote_model(const rag_remote *r);  /* the model id used, borrowed */

/* Streams the answer to msgs through emit: POST BASE/chat/completions with
 * the messages, max_tokens, temperature, seed and s->stop as "stop". RAG_OK
 * also when emit or *cancel stopped it; else RAG_ERR_IO (network, HTTP
 * status, stream cut or malformed: errmsg names the status and the
 * server's message). st (may be NULL): n_prompt -1, n_generated = the
 * pieces streamed, decode_ms the whole request, stop LENGTH when the pieces
 * reached max_tokens, else EOS (or CANCELLED). */
int rag_remote_chat(rag_remote *r, const rag_msg *msgs, size_t n, const rag_sampling *s, rag_emit_fn emit,
                    void *emit_user, volatile int *cancel, rag_gen_stats *st);
/* An engine (rag/engine.h) over r (borrowed: must outlive the engine):
 * generate = rag_remote_chat, embed = rag_remote_embed, count =
 * rag_count_estimate. *out owned (rag_engine_free); RAG_ERR_NOMEM. */
int rag_engine_remote_new(rag_remote *r, rag_engine **out);

/* Embeds text through POST BASE/embeddings into out[dim] (L2-normalised);
 * RAG_ERR_MISMATCH when the server's vector has another length. Usable as
 * rag_retriever_params.embed (user = rag_remote *). */
int rag_remote_embed(void *user, const char *text, size_t len, float *out, int dim);
/* Embeds n texts in one request (POST BASE/embeddings, "input": [...])
 * into out[n * dim], L2-normalised, in input order (by each item's
 * "index"). Transient failures are retried (max_attempts). RAG_ERR_FORMAT
 * when the server refused the input itself (HTTP 400, 413, 422: e.g. a
 * text longer than its context) or answered something unreadable;
 * RAG_ERR_MISMATCH when a vector is not dim long; RAG_ERR_IO for the
 * network, other statuses and cancel. errmsg says which. */
int rag_remote_embed_batch(rag_remote *r, const char *const *texts, const size_t *lens, int n, float *out, int dim);
/* Reads an embeddings answer (body[0..len), JSON from the server) of n
 * vectors of dim numbers into out[n * dim], L2-normalised, in input order
 * (each item's "index"; its position when absent). RAG_ERR_FORMAT (not
 * JSON, another count, a bad or repeated index, a non-number),
 * RAG_ERR_MISMATCH (another length); err says which. For tests and
 * fuzzing too. */
int rag_remote_parse_embeddings(const char *body, size_t len, int n, int dim, float *out, char *err, size_t errlen);
/* The length of the server's embedding: one probe request. */
int rag_remote_embed_dim(rag_remote *r, int *dim);
/* What an `mrag serve` reported in /v1/models: its model's sha256 ("" for
 * other servers, or without the probe) and n_embd (0 unknown). */
const char *rag_remote_served_sha256(const rag_remote *r);
int rag_remote_served_n_embd(const rag_remote *r);
/* The fingerprint id of a served model that reports no sha256: the sha256
 * of "mrag-remote-model\n" + name, as hex (65 bytes). Weaker than a file
 * hash: two different models served under one name look the same. */
void rag_remote_name_sha256(const char *name, char out[65]);
/* The meta key where an index built through a server without a sha256
 * records the served model's name (rag_remote_check_index compares it). */
#define RAG_REMOTE_MODEL_META "rag.embed_remote_model"

/* Checks that the server's embedding fits the index s: its dimension (one
 * probe request), the final-layer pooling, and, when the server reports a
 * sha256 in its /v1/models "mrag" object, the model the index was built
 * with. RAG_ERR_MISMATCH (or RAG_ERR_IO) with errmsg saying what differs;
 * *dim = the index dimension on success. */
int rag_remote_check_index(rag_remote *r, idx_store *s, int *dim);

/* The SSE parser alone, for tests and fuzzing: data[0..len) fed in pieces
 * of `piece` bytes (0 = all at once), lines bounded by max_line (0 = 1 MB);
 * content deltas go to emit. RAG_OK at [DONE] or at the end of the bytes;
 * else the stream's error (RAG_ERR_FORMAT malformed, RAG_ERR_IO an error
 * object, RAG_ERR_LIMIT a long line) with err set. */
int rag_remote_parse_sse(const char *data, size_t len, size_t piece, size_t max_line, rag_emit_fn emit,
                         void *emit_user, char *err, size_t errlen);

#endif
