/* answer.h — answering: the prompt builder and the guarded query pipeline.
 * See docs/answering.md.
 *
 * rag_answerer_ask: input guardrails -> retrieve (hybrid, or BM25 without a
 * model) -> context guardrails per passage (quarantine) -> relevance gate
 * (no passage passes: a refusal, the model never runs) -> evidence (the
 * answering sentences, each through the context guardrails; handed to the
 * evidence callback at once) -> extractive: the evidence quoted is the
 * answer; else prompt messages within n_ctx - max_tokens -> the engine
 * generates (streamed) -> through the output guard stream -> answer, cited
 * sources, events.
 * rag_answerer_chat (plain chat, no retrieval): input guardrails on every
 * user message -> messages fitted to the chat template -> the engine
 * generates through the output guard stream. */
#ifndef MRAG_RAG_ANSWER_H
#define MRAG_RAG_ANSWER_H

#include "rag/base.h"
#include "rag/engine.h"
#include "rag/evidence.h"
#include "rag/guard.h"
#include "rag/retrieve.h"

/* One numbered source given to the model. Strings owned by the result. */
typedef struct {
    int number;                 /* 1-based, as in the prompt's <source id="n"> */
    int64_t chunk_id;           /* in the index it came from (index) */
    int index;                  /* which of the answerer's indexes: 0 = store,
                                   i = more_stores[i - 1] */
    char *uri;                  /* document URI (absolute path for files) */
    char *label;                /* short name in the prompt: last two path parts
                                   + ":first-last" or "#page=N" */
    char *heading;              /* heading path, "" when none */
    char *text;                 /* the passage as it went into the prompt
                                   (guard-redacted, maybe trimmed) */
    size_t text_len;
    int line_start, line_end, page;
    char type[8];               /* the document's type ("md", "docx", ...) */
    char cite[64];              /* citation tail by document type (rag_cite_tail):
                                   ":4-9", "#page=3", "#slide=2", ... */
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
    rag_msg *msgs;              /* owned (contents too): the messages for the engine */
    size_t n_msgs;
    char *prompt;               /* owned, NUL-terminated: msgs formatted by the
                                   template (rag_msgs_format), what was counted
                                   and what a local model sees */
    size_t prompt_len;
    int n_tokens;               /* by in->count, or -1 without a counter */
    size_t n_sources_used;      /* sources 1..n_sources_used are in the prompt */
    size_t n_history_used;      /* the most recent turns kept */
    bool trimmed;               /* the last used source was shortened */
    size_t trimmed_len;         /* its length in the prompt when trimmed */
} rag_prompt;

/* Builds the prompt messages: a system message (the preamble), the earlier
 * turns as user/assistant pairs, and a user message of the sources, each as
 * <source id="n" file="label">text</source> inside <sources>…</sources>,
 * then "Question: …". Formatted, that is "<s>[INST] " + preamble + "\n\n" +
 * ... + " [/INST]" in the Mistral template. The template's control strings
 * (llm_chat_defuse) and <source>/</source> tags inside sources, history and
 * question are defused; the preamble is the operator's and is not. To fit
 * budget_tokens, oldest turns go first, then the last source is shortened
 * (at a word boundary) or dropped, repeatedly. RAG_ERR_LIMIT when even the
 * question alone does not fit. *out is filled (free with rag_prompt_release)
 * or zeroed on error with err set. */
int rag_prompt_build(const rag_prompt_input *in, rag_prompt *out, char *err, size_t errlen);
void rag_prompt_release(rag_prompt *p);
/* text[0..len) with the control strings and source tags defused as
 * rag_prompt_build does for untrusted text. Owned, free(); NULL on OOM. */
char *rag_prompt_defuse(const char *text, size_t len);

typedef struct rag_answer_params {
    idx_store *store;           /* required, borrowed */
    /* further indexes (collections) answered from together with store
     * (borrowed; at most 63): each gets its own retriever (the fingerprint
     * checked against the model as for store), the rankings are merged as
     * rag_retrieve_multi does, and the text analysis (evidence) is store's */
    idx_store *const *more_stores;
    size_t n_more_stores;
    rag_guard *guard;           /* required, borrowed (audit log set by the caller) */
    llm_model *model;           /* borrowed: retrieval (hybrid), token counts, and
                                   generation when engine is NULL; NULL: BM25
                                   retrieval, and engine must be given unless
                                   extractive */
    rag_engine *engine;         /* borrowed: generates the answers (one request at a
                                   time); NULL: a local engine on model */
    int layer;                  /* embedding layer of the index (-1 final norm) */
    int k;                      /* passages retrieved, default 5 */
    int n_threads;              /* 0 = all cores */
    int n_ctx;                  /* 0: min(model's n_ctx_train, 4096) (4096 without a model) */
    int max_tokens;             /* answer budget, default 512; prompt gets n_ctx - max_tokens */
    float temperature;          /* default 0: greedy (rag_answerer_set_sampling
                                   changes it per request) */
    uint64_t seed;              /* default 42 */
    int min_overlap;            /* relevance gate: content words of the question a
                                   passage must contain, default 1 (0 = gate off) */
    const char *preamble;       /* NULL: default; borrowed */
    const char *canary;         /* a string the system prompt carries and no
                                   answer may repeat (rag_guard_stream_canary),
                                   at most RAG_CANARY_MAX bytes: NULL = 16 random
                                   letters and digits per answerer (the default);
                                   "" = none. Copied. */
    bool guard_llm;             /* the model judge: a question or a passage
                                   sentence the learned detector scored in its
                                   uncertain band (rag_guard_result.uncertain)
                                   is shown to the engine, which answers whether
                                   it is an attempt to instruct the assistant;
                                   "yes" blocks the question / drops the passage
                                   (event rule "judge.llm"). Default off. */
    rag_count_tokens_fn count;  /* NULL: the model's tokenizer (control strings
                                   parsed), else the engine's count */
    void *count_user;
    /* query embeddings from elsewhere, as in rag_retriever_params (hybrid
     * retrieval without a model) */
    int (*embed)(void *user, const char *text, size_t len, float *out, int dim);
    void *embed_user;
    int embed_dim;
    /* evidence (rag/evidence.h): units chosen per answer (0 = none, default
     * 3); extractive: the quoted evidence is the answer, no engine runs (no
     * model or engine is needed then) */
    int evidence_max;
    float evidence_min_ratio;   /* a unit after the first is shown only when its
                                   score is at least this share of the first's
                                   (default 0.5; 0: always evidence_max) */
    bool extractive;
} rag_answer_params;

rag_answer_params rag_answer_default_params(void);
#define RAG_CANARY_MAX 64

typedef enum {
    RAG_ANS_ANSWERED = 0,       /* the model ran (its text may be "I don't know") */
    RAG_ANS_NO_SOURCES,         /* no passage passed: refusal text, model not run */
    RAG_ANS_BLOCKED,            /* a guardrail blocked the question or the answer */
    RAG_ANS_CANCELLED,          /* the cancel flag or the sink stopped the answer */
    RAG_ANS_EXTRACTED,          /* extractive: the answer quotes the evidence, no
                                   model ran */
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
    /* the gate, explained: passages kept by meaning alone (no shared word,
     * dense similarity >= gate_cos), the best word overlap and dense
     * similarity among the retrieved passages, and the learned threshold
     * (INFINITY: dense not trusted on this index, words only) */
    size_t n_by_meaning;
    int best_overlap;
    float best_cos, gate_cos;
    rag_evidence *evidence;     /* owned: the answering units, best first (their
                                   source numbers refer to sources[]) */
    size_t n_evidence;
    double evidence_ms;         /* choosing them (after retrieval) */
    char *prompt;               /* owned: the formatted prompt the engine was given
                                   (NULL when the engine did not run) */
    int prompt_tokens;          /* the engine's count, else the counter's; -1 none */
    double retrieve_ms, prefill_ms, decode_ms;
    int n_generated;            /* tokens (a remote engine: pieces it streamed) */
    bool generated;             /* the engine ran */
    rag_stop_reason stop_reason;    /* when generated: why it stopped */
    int engine_prompt_tokens;   /* when generated: the prompt tokens the engine
                                   counted itself, -1 when it cannot (remote) */
    int n_judged;               /* guard_llm: texts the engine judged */
    int n_judged_injection;     /* of those, judged injections */
    double judge_ms;            /* guard_llm: the engine's time judging */
    int reused_tokens;          /* when generated: prompt tokens whose KV cache the engine kept
                                   from its previous prompt (only the rest was prefilled) */
} rag_answer;

typedef struct rag_answerer rag_answerer;

/* *out owned (free with rag_answerer_free); on failure NULL and err says why. */
int rag_answerer_new(const rag_answer_params *p, rag_answerer **out, char *err, size_t errlen);
void rag_answerer_free(rag_answerer *a);     /* NULL is a no-op */
const char *rag_answerer_errmsg(const rag_answerer *a);  /* borrowed */
/* Times the engine ran: refusals and blocked questions do not count. */
int rag_answerer_generations(const rag_answerer *a);
/* The caller's access groups for every later retrieval of this answerer
 * (copied): documents with groups are seen only when they share one of
 * groups[0..n); public documents always. all = true: no filter (the index
 * owner; the default). n = 0 and all = false: public documents only.
 * RAG_ERR_ARG for more than 64 groups or a NULL name. */
int rag_answerer_set_groups(rag_answerer *a, const char *const *groups, size_t n, bool all);
/* The indexes later asks search: bit i of mask = index i (0 = store, i =
 * more_stores[i - 1]); all of them by default. RAG_ERR_ARG when mask
 * names none of the answerer's indexes. */
int rag_answerer_set_indexes(rag_answerer *a, uint64_t mask);
/* Passages retrieved by later asks (1..1000; the server's per-request k).
 * RAG_ERR_ARG outside that range. */
int rag_answerer_set_k(rag_answerer *a, int k);
/* Sampling of later answers (copied): temperature, seed, answer budget
 * (clamped to the answerer's max_tokens, which sized the prompt budget) and
 * extra stop strings. NULL: the answerer's params again. RAG_ERR_ARG for
 * too many or empty stop strings, RAG_ERR_NOMEM. */
int rag_answerer_set_sampling(rag_answerer *a, const rag_sampling *s);
/* The preamble of later answers (copied); NULL: the answerer's params again.
 * The preamble is the operator's text: it is not defused. */
int rag_answerer_set_preamble(rag_answerer *a, const char *preamble);

/* Evidence callback: called once per answer, as soon as the evidence is
 * chosen (before the model starts), with res's question, sources and
 * evidence filled; not called when the question is blocked or no source
 * passes. */
typedef void (*rag_evidence_fn)(void *user, const rag_answer *res);
/* The evidence callback of later answers (NULL: none). */
void rag_answerer_on_evidence(rag_answerer *a, rag_evidence_fn fn, void *user);
/* Extractive answers from now on (true), or generated ones (false: needs
 * the answerer to have a model or an engine, else RAG_ERR_ARG). */
int rag_answerer_set_extractive(rag_answerer *a, bool extractive);
bool rag_answerer_extractive(const rag_answerer *a);

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

/* Plain chat, without retrieval: every user message goes through the input
 * guard (redacted, or the whole chat blocked), every message's control
 * strings are defused (rag_prompt_defuse), the conversation is fitted to the
 * template (an optional system message first, later system messages
 * dropped, two messages in a row of one role joined by a blank line), then
 * the engine answers through the output guard stream (no sources: citations
 * are removed). res as for rag_answerer_ask (no sources, question NULL).
 * RAG_ERR_FORMAT when the conversation does not start with a user message
 * after the optional system one, else as
 * rag_answerer_ask. */
int rag_answerer_chat(rag_answerer *a, const rag_msg *msgs, size_t n, rag_emit_fn emit, void *emit_user,
                      volatile int *cancel, rag_answer *res);

/* Content words of text (>= 3 bytes, not in the EN/DE/FR function-word list)
 * that occur in passage (ASCII case-insensitive, as a word prefix). */
int rag_answer_overlap(const char *question, const char *passage, size_t passage_len);
/* The relevance gate's word check: how many content words of the question
 * (as rag_answer_overlap, 3 bytes or more, not function words) occur in
 * passage as the index z analyses text: the same stems, ae/oe/ue and ß/ss,
 * and compound parts on both sides ("Urlaub" meets "Urlaubsanspruch", and
 * the other way round; "policies" meets "policy"). The question is analysed
 * in its language and in each other query language of the index; the
 * passage as the index would (its detected language). -1 on error. */
int rag_answer_overlap_an(idx_analyzer *z, const char *question, const char *passage, size_t passage_len);
/* "en", "de" or "fr" by function words (default "en"). */
const char *rag_guess_language(const char *text);
/* The refusal when no source passes, in the language of the question. */
const char *rag_no_sources_message(const char *question);
/* Source numbers 1..n_sources cited as [n] (also [n, m] / [n][m]) in text:
 * writes up to cap ascending unique numbers to out, returns how many. */
size_t rag_answer_citations(const char *text, size_t len, int n_sources, int *out, size_t cap);

#endif
