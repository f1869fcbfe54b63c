/* answer.h — answering: the prompt builder and the guarded query pipeline.
 * See docs/answering.md.
 *
 * rag_answerer_ask: input guardrails -> retrieve (hybrid, or BM25 without a
 * model) -> context guardrails per passage (quarantine) -> relevance gate
 * (no passage passes: a refusal, the model never runs) -> prompt in the
 * Mistral instruct format within n_ctx - max_tokens -> generate (streamed)
 * through the output guard stream -> answer, cited sources, events. */
#ifndef MRAG_RAG_ANSWER_H
#define MRAG_RAG_ANSWER_H

#include "rag/base.h"
#include "rag/guard.h"
#include "rag/retrieve.h"

/* One numbered source given to the model. Strings owned by the result. */
typedef struct {
    int number;                 /* 1-based, as in the prompt's <source id="n"> */
    int64_t chunk_id;
    char *uri;                  /* document URI (absolute path for files) */
    char *label;                /* short name in the prompt: last two path parts
                                   + ":first-last" or "#page=N" */
    char *heading;              /* heading path, "" when none */
    char *text;                 /* the passage as it went into the prompt
                                   (guard-redacted, maybe trimmed) */
    size_t text_len;
    int line_start, line_end, page;
    float score;                /* retrieval score (RRF for hybrid) */
    int dense_rank, bm25_rank;
    bool warned;                /* kept with its planted instruction removed */
    bool trimmed;               /* cut to fit the token budget */
} rag_source;

/* One earlier chat turn (borrowed strings). */
typedef struct {
    const char *question;
    const char *answer;
} rag_turn;

/* The preamble used when none is given: answer only from the sources, cite
 * [n], answer in the question's language, else say "I don't know" in it. */
const char *rag_default_preamble(void);

typedef struct {
    const char *preamble;       /* NULL: rag_default_preamble() */
    const rag_source *sources;  /* numbered 1..n in this order */
    size_t n_sources;
    const rag_turn *history;    /* earlier turns, oldest first */
    size_t n_history;
    const char *question;
    int budget_tokens;          /* most tokens the prompt may take; <= 0: no limit */
    rag_count_tokens_fn count;  /* counts the whole prompt (control tokens
                                   included); required when budget_tokens > 0 */
    void *count_user;
} rag_prompt_input;

typedef struct {
    char *prompt;               /* owned, NUL-terminated: tokenize with
                                   add_bos = false, parse_special = true */
    size_t prompt_len;
    int n_tokens;               /* by in->count, or -1 without a counter */
    size_t n_sources_used;      /* sources 1..n_sources_used are in the prompt */
    size_t n_history_used;      /* the most recent turns kept */
    bool trimmed;               /* the last used source was shortened */
    size_t trimmed_len;         /* its length in the prompt when trimmed */
} rag_prompt;

/* Builds the exact prompt: "<s>[INST] " + preamble + the sources, each as
 * <source id="n" file="label">text</source> inside <sources>…</sources>,
 * + "Question: …" + " [/INST]", with earlier turns before it in the chat
 * template. Control strings ([INST], [/INST], <s>, </s>) and <source>/
 * </source> tags inside sources, history and question are defused. To fit
 * budget_tokens, oldest turns go first, then the last source is shortened
 * (at a word boundary) or dropped, repeatedly. RAG_ERR_LIMIT when even the
 * question alone does not fit. *out is filled (free with rag_prompt_release)
 * or zeroed on error with err set. */
int rag_prompt_build(const rag_prompt_input *in, rag_prompt *out, char *err, size_t errlen);
void rag_prompt_release(rag_prompt *p);
/* text[0..len) with the control strings defused as rag_prompt_build does for
 * untrusted text (for callers that build chat prompts themselves, e.g. plain
 * chat over HTTP). Owned, free(); NULL on OOM. */
char *rag_prompt_defuse(const char *text, size_t len);

/* A generator standing in for the model (tests, other engines): produce the
 * answer to prompt through emit, stop when emit returns non-zero or *cancel
 * becomes non-zero. Returns RAG_OK or an error. */
typedef int (*rag_generate_fn)(void *user, const char *prompt, size_t len, int max_tokens,
                               rag_emit_fn emit, void *emit_user, volatile int *cancel);

typedef struct {
    idx_store *store;           /* required, borrowed */
    rag_guard *guard;           /* required, borrowed (audit log set by the caller) */
    llm_model *model;           /* borrowed: retrieval (hybrid), token counts and
                                   generation; NULL: BM25 retrieval, and count /
                                   generate must be given */
    int layer;                  /* embedding layer of the index (-1 final norm) */
    int k;                      /* passages retrieved, default 5 */
    int n_threads;              /* 0 = all cores */
    int n_ctx;                  /* 0: min(model's n_ctx_train, 4096) (4096 without a model) */
    int max_tokens;             /* answer budget, default 512; prompt gets n_ctx - max_tokens */
    float temperature;          /* default 0: greedy */
    uint64_t seed;
    int min_overlap;            /* relevance gate: content words of the question a
                                   passage must contain, default 1 (0 = gate off) */
    const char *preamble;       /* NULL: default; borrowed */
    rag_count_tokens_fn count;  /* NULL: the model's tokenizer (special tokens parsed) */
    void *count_user;
    rag_generate_fn generate;   /* NULL: llm_generate on the model */
    void *generate_user;
    /* the generator's last error (borrowed), for the answerer's message; may be NULL */
    const char *(*generate_errmsg)(void *generate_user);
    /* query embeddings from elsewhere, as in rag_retriever_params (hybrid
     * retrieval without a model) */
    int (*embed)(void *user, const char *text, size_t len, float *out, int dim);
    void *embed_user;
    int embed_dim;
} rag_answer_params;

rag_answer_params rag_answer_default_params(void);

typedef enum {
    RAG_ANS_ANSWERED = 0,       /* the model ran (its text may be "I don't know") */
    RAG_ANS_NO_SOURCES,         /* no passage passed: refusal text, model not run */
    RAG_ANS_BLOCKED,            /* a guardrail blocked the question or the answer */
    RAG_ANS_CANCELLED,          /* the cancel flag or the sink stopped the answer */
} rag_answer_status;

const char *rag_answer_status_str(rag_answer_status s);  /* "answered", ... */

/* A guardrail event of one stage of the pipeline. */
typedef struct {
    rag_guard_stage stage;
    rag_guard_event_kind kind;
    rag_guard_action action;
    const char *rule_id;        /* borrowed from the guard */
    const char *message;        /* borrowed from the guard */
    int64_t chunk_id;           /* context stage: the passage, else 0 */
    size_t start, end;          /* byte span in the checked text (question,
                                   passage or answer), as in rag_guard_event */
} rag_answer_event;

typedef struct {
    rag_answer_status status;
    char *question;             /* owned: the question after input redaction (what
                                   was searched and prompted; keep this one in a
                                   conversation), NULL when blocked */
    char *answer;               /* owned: the answer after the output guard, or
                                   the refusal / block message */
    size_t answer_len;
    const char *block_message;  /* borrowed from the guard when blocked */
    rag_guard_stage block_stage;
    rag_source *sources;        /* owned: the sources given to the model */
    size_t n_sources;
    int *cited;                 /* owned: source numbers the answer cites, ascending */
    size_t n_cited;
    rag_answer_event *events;   /* owned */
    size_t n_events;
    size_t n_retrieved;         /* hits before the guard and the gate */
    size_t n_quarantined;       /* passages dropped for planted instructions */
    size_t n_below_threshold;   /* passages the relevance gate dropped */
    char *prompt;               /* owned: the exact prompt (NULL when not built) */
    int prompt_tokens;
    double retrieve_ms, prefill_ms, decode_ms;
    int n_generated;            /* tokens; with p->generate: pieces it streamed */
} rag_answer;

typedef struct rag_answerer rag_answerer;

/* *out owned (free with rag_answerer_free); on failure NULL and err says why. */
int rag_answerer_new(const rag_answer_params *p, rag_answerer **out, char *err, size_t errlen);
void rag_answerer_free(rag_answerer *a);     /* NULL is a no-op */
const char *rag_answerer_errmsg(const rag_answerer *a);  /* borrowed */
/* Times the generator ran (the model or p->generate): refusals do not count. */
int rag_answerer_generations(const rag_answerer *a);
/* The caller's access groups for every later retrieval of this answerer
 * (copied): documents with groups are seen only when they share one of
 * groups[0..n); public documents always. all = true: no filter (the index
 * owner; the default). n = 0 and all = false: public documents only.
 * RAG_ERR_ARG for more than 64 groups or a NULL name. */
int rag_answerer_set_groups(rag_answerer *a, const char *const *groups, size_t n, bool all);
/* Passages retrieved by later asks (1..1000; the server's per-request k).
 * RAG_ERR_ARG outside that range. */
int rag_answerer_set_k(rag_answerer *a, int k);

/* Answers question (with earlier turns: the previous question is folded into
 * the search query and the turns go into the prompt within budget). The
 * answer streams through emit (may be NULL) after the output guard. *res is
 * overwritten; release with rag_answer_release. Returns RAG_OK whatever the
 * status (see res->status), or an error (retrieval, model) with the
 * answerer's errmsg set. */
int rag_answerer_ask(rag_answerer *a, const char *question, const rag_turn *history,
                     size_t n_history, rag_emit_fn emit, void *emit_user,
                     volatile int *cancel, rag_answer *res);
void rag_answer_release(rag_answer *res);

/* Content words of text (>= 3 bytes, not in the EN/DE/FR function-word list)
 * that occur in passage (ASCII case-insensitive, as a word prefix). */
int rag_answer_overlap(const char *question, const char *passage, size_t passage_len);
/* "en", "de" or "fr" by function words (default "en"). */
const char *rag_guess_language(const char *text);
/* The refusal when no source passes, in the language of the question. */
const char *rag_no_sources_message(const char *question);
/* Source numbers 1..n_sources cited as [n] (also [n, m] / [n][m]) in text:
 * writes up to cap ascending unique numbers to out, returns how many. */
size_t rag_answer_citations(const char *text, size_t len, int n_sources, int *out, size_t cap);

#endif
