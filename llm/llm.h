/* llm.h — mrag's in-process Mistral/Mixtral engine for GGUF files: the one
 * public header of llm/. Opaque handles; functions return LLM_OK (0) or a
 * negative llm_status; handles keep their last error message. A loaded model
 * is read-only and may be shared by threads; each thread uses its own
 * llm_context. The library never prints and never exits. */
#ifndef MRAG_LLM_H
#define MRAG_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Status codes. Values only ever grow. */
typedef enum {
    LLM_OK = 0,
    LLM_ERR_IO = -1,            /* cannot open / map / read a file */
    LLM_ERR_FORMAT = -2,        /* not a GGUF, truncated, corrupt */
    LLM_ERR_UNSUPPORTED = -3,   /* architecture, tensor type, tokenizer we do not run */
    LLM_ERR_NOMEM = -4,
    LLM_ERR_ARG = -5,           /* bad argument, buffer too small, token out of range */
    LLM_ERR_CONTEXT_FULL = -6,  /* the context cannot take more tokens */
    LLM_ERR_CANCELLED = -7,     /* a callback or cancel flag stopped the work */
} llm_status;

const char *llm_status_str(int status);

typedef struct llm_model llm_model;
typedef struct llm_context llm_context;

/* ------------------------------------------------------------------ model */
typedef struct {
    bool vocab_only;        /* load only the tokenizer (vocab GGUFs have no weights) */
    int swa_window;         /* sliding window: -1 = from the file (llama.attention.sliding_window), 0 = none, >0 = W */
    bool no_repack;         /* run the weights from the mapped file as they are: no packed copy at load
                               (less memory and a faster load; slower on AVX-512, see docs/kernels.md) */
    bool defer_repack;      /* make the packed copy at the first forward pass instead of at load: a
                               caller that may never run the model (a second `mrag ingest` of an
                               unchanged folder only needs the fingerprint) loads a 4 GB file in
                               milliseconds instead of seconds; llm_model_info's packed_bytes is 0
                               until then */
    /* LoRA adapters loaded with the model (llama.cpp's GGUF LoRA format) and
     * applied by every context that does not name its own: "the model" is
     * then base + adapters, and llm_model_fingerprint says so. At most 16. */
    const char *const *lora_paths;
    const float *lora_scales;       /* one per adapter; NULL = 1 each */
    int n_lora;
} llm_model_params;

llm_model_params llm_model_default_params(void);

/* Maps the file and checks it. On failure *out is NULL and err holds one line
 * naming the file and the problem. Free with llm_model_free. */
int llm_model_load(const char *path, const llm_model_params *params,
                   llm_model **out, char *err, size_t errlen);
void llm_model_free(llm_model *m);    /* NULL is a no-op */

typedef struct {
    const char *path;           /* borrowed, valid while the model lives */
    const char *name;           /* general.name or "" */
    const char *arch;           /* "llama" */
    uint64_t file_size;
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    int n_ctx_train, n_rot, n_expert, n_expert_used, swa_window;
    float rope_theta, rms_eps;
    bool tied_output;           /* output.weight absent: token_embd reused */
    int32_t bos, eos, unk;      /* -1 when absent */
    uint64_t n_params;          /* elements of all weight tensors */
    uint64_t weight_bytes;      /* bytes of all weight tensors */
    uint64_t packed_bytes;      /* bytes of the weights repacked at load (0: none) */
    double pack_seconds;        /* time the repacking took */
    int n_tensors;
    int tensor_type_count[40];  /* tensors per ggml type id */
    bool random_weights;        /* GGUF key "mrag.random_weights" = true: a test
                                   model with random weights (tests/mkmodel.c);
                                   its text means nothing */
} llm_model_info;

void llm_model_get_info(const llm_model *m, llm_model_info *info);
/* The name of a tensor type id as llama.cpp spells it ("f16", "q4_0",
 * "q4_K", ...; the index of llm_model_info.tensor_type_count), or
 * "unknown". Static string. */
const char *llm_type_name(uint32_t type);
/* Bytes a context of n_ctx tokens needs beyond the mapped weights (KV cache
 * and scratch), for `mrag model-info` and admission decisions. */
uint64_t llm_context_bytes(const llm_model *m, int n_ctx, int n_batch, bool kv_f32);

/* SHA-256 of the model file as 64 hex chars + NUL (computed once, cached). */
int llm_model_sha256(llm_model *m, char out[65]);

/* ------------------------------------------------------------ LoRA adapters
 * Adapters in llama.cpp's GGUF LoRA format (general.type "adapter",
 * adapter.type "lora", adapter.lora.alpha, tensors NAME.lora_a / NAME.lora_b
 * for base weights NAME; docs/engine.md). An adapter is loaded against a
 * model and applied by the contexts that list it: each adapted weight's
 * output gets scale * B (A x) added at run time; the base weights are not
 * changed. Adapters on Mixtral expert tensors are refused. */
typedef struct llm_lora llm_lora;

/* Maps and checks the adapter: every pair must name a weight of m with
 * fitting shapes. On failure *out is NULL and err names the file and the
 * problem. Free with llm_lora_free, after the contexts using it and before
 * the model. */
int llm_lora_load(const llm_model *m, const char *path, llm_lora **out, char *err, size_t errlen);
void llm_lora_free(llm_lora *l);      /* NULL is a no-op */

typedef struct {
    const char *path;           /* borrowed */
    float alpha;                /* adapter.lora.alpha, 0 when absent */
    int max_rank;               /* largest rank of its pairs */
    int n_pairs;                /* weights it adapts */
    uint64_t file_size;
} llm_lora_info;

void llm_lora_get_info(const llm_lora *l, llm_lora_info *info);
/* SHA-256 of the adapter file (computed once, cached). */
int llm_lora_sha256(llm_lora *l, char out[65]);

/* The adapters loaded with the model (llm_model_params.lora_paths): their
 * count, and adapter i (borrowed, lives with the model) and its scale. */
int llm_model_n_lora(const llm_model *m);
llm_lora *llm_model_lora(const llm_model *m, int i, float *scale);
/* llm_fingerprint of the model with the adapters it was loaded with: the
 * file's SHA-256 when it has none. */
int llm_model_fingerprint(llm_model *m, char out[65]);

/* What the model computes, for the embedding fingerprint of an index: with
 * no adapters the model file's SHA-256; with adapters the SHA-256 of
 * "model <sha>\n" followed by "lora <adapter sha> <scale>\n" per adapter, in
 * order (scales NULL = 1 each). */
int llm_fingerprint(llm_model *m, llm_lora *const *loras, const float *scales, int n, char out[65]);
/* SHA-256 (FIPS 180-4) of n bytes as 64 lowercase hex chars + NUL: the one
 * implementation mrag has (model files here, documents and keys in rag/
 * and app/). */
void llm_sha256_hex(const void *data, size_t n, char out[65]);

/* -------------------------------------------------------------- tokenizer */
int llm_n_vocab(const llm_model *m);
int32_t llm_token_bos(const llm_model *m);
int32_t llm_token_eos(const llm_model *m);

/* Tokenizes len bytes of text. parse_special: control tokens written in the
 * text (e.g. "[INST]", "</s>") become their ids; otherwise they are plain
 * text. Writes up to cap ids to out and sets *n_out to the number the text
 * needs; returns LLM_ERR_ARG when cap was too small (call again). */
int llm_tokenize(const llm_model *m, const char *text, size_t len, bool add_bos,
                 bool parse_special, int32_t *out, size_t cap, size_t *n_out);

/* The vocabulary piece of id as stored ("▁the", "<0x0A>", "[INST]");
 * borrowed. NULL when id is out of range. */
const char *llm_token_piece(const llm_model *m, int32_t id, size_t *len);

/* Streaming detokenizer: push ids, receive text that only ever ends on a
 * whole UTF-8 character; "▁" becomes a space, <0xNN> byte tokens are joined,
 * the SentencePiece leading space of the first piece is dropped, control
 * tokens produce no text unless render_special. Caller-owned struct. */
typedef struct {
    const llm_model *model;
    bool render_special;
    bool at_start;              /* drop the leading space of the first piece */
    uint8_t pending[8];         /* bytes of an unfinished UTF-8 character */
    int n_pending;
} llm_detok;

void llm_detok_init(llm_detok *d, const llm_model *m, bool render_special);
/* Appends the text of id to out (cap bytes); returns bytes written. A piece
 * longer than cap is an error (returns -1); 64 bytes always suffice. */
int llm_detok_push(llm_detok *d, int32_t id, char *out, size_t cap);
/* Emits what is pending at the end (invalid bytes become U+FFFD). */
int llm_detok_flush(llm_detok *d, char *out, size_t cap);
/* Whole-sequence convenience: returns bytes needed (excl. NUL); writes at
 * most cap-1 and NUL-terminates when cap > 0. */
size_t llm_detokenize(const llm_model *m, const int32_t *ids, size_t n,
                      bool render_special, char *out, size_t cap);

/* ---------------------------------------------------------------- context */
typedef struct {
    int n_ctx;              /* max tokens (0 = min(model's n_ctx_train, 4096)) */
    int n_batch;            /* max tokens per forward call (default 512) */
    int n_threads;          /* 0 = number of online cores */
    bool kv_f32;            /* KV cache in F32 instead of F16 */
    bool all_logits;        /* keep logits of every position of a batch (tests) */
    int embd_layer;         /* hidden state used for embeddings: -1 = final norm, L = after layer L */
    llm_lora *const *loras; /* LoRA adapters applied to every forward pass, in this order
                               (borrowed: must outlive the context); at most 16;
                               n_lora 0 = the model's own (llm_model_params) */
    const float *lora_scales;   /* one per adapter; NULL = 1 each */
    int n_lora;
} llm_context_params;

llm_context_params llm_context_default_params(void);
int llm_context_new(const llm_model *m, const llm_context_params *p,
                    llm_context **out, char *err, size_t errlen);
void llm_context_free(llm_context *c);
const char *llm_context_error(const llm_context *c);   /* last error, borrowed */
void llm_context_reset(llm_context *c);                /* forget all tokens */
int llm_context_n_past(const llm_context *c);

/* Runs the forward pass over n tokens appended to the sequence (batched
 * prefill when n > 1). Logits of the last token (or every token with
 * all_logits) are available from llm_get_logits until the next call.
 * A full context returns LLM_ERR_CONTEXT_FULL and changes nothing. */
int llm_decode(llm_context *c, const int32_t *tokens, int n);
/* Makes tokens[0..n) the context's whole sequence, reusing the cached keys
 * and values of the longest prefix it already holds (the previous prompt
 * and answer, a shared system prompt): positions past that prefix are
 * dropped and only the rest is evaluated, at least the last token, whose
 * logits are then available as after llm_decode. *n_reused (may be NULL)
 * gets the tokens kept. The result equals a fresh evaluation of the n
 * tokens. A context with a rolling buffer (sliding window < n_ctx) reuses
 * nothing; neither does one used for embeddings since (llm_embed clears it).
 * LLM_ERR_CONTEXT_FULL when n > n_ctx. */
int llm_decode_prefix(llm_context *c, const int32_t *tokens, int n, int *n_reused);
/* Logits (n_vocab floats) of token i of the last llm_decode batch (-1 = last);
 * borrowed. NULL when not kept. */
const float *llm_get_logits(const llm_context *c, int i);

/* --------------------------------------------------------------- sampling */
typedef struct {
    float temperature;      /* <= 0: greedy */
    int top_k;              /* <= 0: off */
    float top_p;            /* >= 1: off */
    float min_p;            /* <= 0: off */
    float repeat_penalty;   /* 1 = off */
    int repeat_last_n;      /* tokens the penalty looks back */
    uint64_t seed;
} llm_sampler_params;

/* seed value meaning "pick one from the clock and the process id". */
#define LLM_SEED_RANDOM UINT64_MAX

/* Defaults as llama.cpp's: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05,
 * repeat penalty 1 (off) over the last 64 tokens, seed LLM_SEED_RANDOM. */
llm_sampler_params llm_sampler_default_params(void);

/* An explicit sampler (llm_generate makes its own). The chain, in llama.cpp's
 * order: repetition penalty -> top-k -> top-p -> min-p -> temperature ->
 * draw; temperature <= 0 (or top-k 1) is argmax, ties to the lowest id. All
 * buffers are sized once for n_vocab: sampling never allocates. */
typedef struct llm_sampler llm_sampler;

/* NULL on bad arguments (n_vocab < 1) or OOM. Owned, free with
 * llm_sampler_free (NULL is a no-op). */
llm_sampler *llm_sampler_new(const llm_sampler_params *p, int n_vocab);
void llm_sampler_free(llm_sampler *s);
/* Forgets the token history and restarts the random stream from the seed. */
void llm_sampler_reset(llm_sampler *s);
/* Records a token (prompt or generated) for the repetition penalty. */
void llm_sampler_accept(llm_sampler *s, int32_t id);
/* Picks a token from logits[n_vocab] (not modified); -1 if logits is NULL.
 * Does not accept the token: call llm_sampler_accept with it. */
int32_t llm_sampler_sample(llm_sampler *s, const float *logits);
/* The distribution the last llm_sampler_sample drew from, after every
 * filter and the temperature: up to cap (id, probability) pairs, most likely
 * first. Returns how many candidates there were. */
int llm_sampler_last_probs(const llm_sampler *s, int32_t *ids, float *probs, int cap);

/* Called with whole UTF-8 characters as they are generated; return non-zero
 * to stop. */
typedef int (*llm_text_fn)(void *user, const char *text, size_t len);

typedef struct {
    int n_predict;                  /* max new tokens (default 128; < 0: until EOS, a stop string or a full context) */
    llm_sampler_params sampling;
    const char *const *stop;        /* stop strings (not emitted), may be NULL; at most 64 of at most 1024 bytes */
    int n_stop;
    llm_text_fn on_text;            /* may be NULL */
    void *user;
    volatile int *cancel;           /* set non-zero from elsewhere to stop */
    bool continuation;              /* the text continues the prompt: keep the first piece's
                                       leading space (false: drop it, as for a chat answer) */
    bool reuse_prefix;              /* the prompt is the context's whole sequence: the cached
                                       longest prefix it shares with what the context holds is
                                       kept, only the rest is evaluated (llm_decode_prefix) */
} llm_generate_params;

llm_generate_params llm_generate_default_params(void);

/* Why llm_generate stopped. Values only ever grow. */
typedef enum {
    LLM_STOP_LENGTH = 0,            /* n_predict tokens generated */
    LLM_STOP_EOS = 1,               /* the model produced EOS */
    LLM_STOP_STRING = 2,            /* a stop string came */
    LLM_STOP_CANCELLED = 3,         /* the cancel flag or on_text stopped it */
    LLM_STOP_CONTEXT_FULL = 4,      /* the context could take no more tokens */
} llm_stop_reason;

typedef struct {
    int n_prompt, n_generated;
    int n_reused;                   /* prompt tokens whose cache was kept (reuse_prefix) */
    double prefill_ms, decode_ms;
    llm_stop_reason stop_reason;
} llm_generate_result;

/* Evaluates the prompt after what the context already holds (in chunks of
 * n_batch), then samples up to n_predict tokens, streaming text through
 * on_text in whole UTF-8 characters. Text that could be the start of a stop
 * string is held back until it is resolved; a stop string and what follows
 * it are never emitted. n_prompt may be 0 to continue from the logits of
 * the context's last llm_decode. The last sampled token (and EOS) is not
 * evaluated, so the context then holds the prompt and all generated tokens
 * but the last. Returns LLM_OK (any stop_reason but LLM_STOP_CANCELLED),
 * LLM_ERR_CANCELLED when the cancel flag or on_text stopped it
 * (LLM_STOP_CANCELLED), or an error (a prompt that does not fit is LLM_ERR_CONTEXT_FULL);
 * *res is filled in every case and the context's error names the problem.
 * Allocates once per call, never per token. */
int llm_generate(llm_context *c, const int32_t *prompt, int n_prompt,
                 const llm_generate_params *p, llm_generate_result *res);

/* ---------------------------------------------------------- chat template */
typedef struct {
    const char *role;       /* "system", "user", "assistant" */
    const char *content;
} llm_chat_msg;

/* Mistral instruct format (v1, as mistral-common tokenizes it; see
 * docs/generation.md): "<s>[INST] {system}\n\n{user} [/INST] {assistant}</s>[INST] ..."
 * An optional first "system" message is folded into the first user turn;
 * then user and assistant alternate, starting with user. Returns a malloc'd
 * string (free with free()) to tokenize with parse_special = true and
 * add_bos = false; NULL on bad input (roles out of order, NULL content) or OOM. */
char *llm_chat_format(const llm_chat_msg *msgs, size_t n);
/* text[0..len) with every control string of the template ([INST], [/INST],
 * <s>, </s>; matched ignoring ASCII case) broken by a blank ("[ INST]",
 * "< /s>"), so untrusted text put in a message stays text after tokenizing
 * with parse_special. Owned, free(); NULL on OOM. */
char *llm_chat_defuse(const char *text, size_t len);
/* The first control string of the template in text[0..len), in the exact
 * case the tokenizer turns into a control token, or NULL (static string). */
const char *llm_chat_find_control(const char *text, size_t len);
/* The strings that end an assistant turn when generated (the model starting
 * another turn): static, *n set to their number. */
const char *const *llm_chat_stop_strings(size_t *n);

/* ------------------------------------------------------------- embeddings */
int llm_n_embd(const llm_model *m);

/* Mean over the text's tokens (BOS included, as the model sees it) of the
 * hidden states at the context's embd_layer, L2-normalised, into out[n_embd].
 * Uses and then clears the context. */
int llm_embed(llm_context *c, const char *text, size_t len, float *out);
/* Embeds n texts, packing several sequences into one prefill batch where the
 * context allows; out is n x n_embd. */
int llm_embed_batch(llm_context *c, const char *const *texts, const size_t *lens,
                    int n, float *out);
/* The embedding of one text at several layers from a single forward pass
 * (layer sweeps): layers[j] (-1 = final norm, else after layer L, whatever
 * the context's embd_layer), out is n_layers x n_embd, each as llm_embed
 * computes it. At most 64 layers. */
int llm_embed_layers(llm_context *c, const char *text, size_t len, const int *layers, int n_layers, float *out);

/* ------------------------------------------------------------- CPU level */
/* The SIMD level this CPU offers ("avx512", "avx2" or "ref") and the one
 * the kernels use (MRAG_SIMD=ref|avx2|avx512 caps it): static strings. */
const char *llm_simd_found(void);
const char *llm_simd_used(void);

#endif
