/* guard.h — guardrails: PCRE2 rules over the question, the retrieved
 * passages and the answer; validators; the audit log. See docs/guardrails.md.
 *
 * Rules (docs/guardrails.md) are loaded from rule files into a rag_guard,
 * compiled once with PCRE2 (UTF + UCP, JIT, match limits), then the guard is
 * read-only: any number of threads may call rag_guard_check and run streams
 * on one guard at the same time (each call has its own match data).
 * Events never carry the matched bytes, only spans and lengths. */
#ifndef MRAG_RAG_GUARD_H
#define MRAG_RAG_GUARD_H

#include "rag/base.h"

#include <stdio.h>

typedef enum {
    RAG_GUARD_INPUT = 0,     /* the user's question */
    RAG_GUARD_CONTEXT = 1,   /* one retrieved passage */
    RAG_GUARD_OUTPUT = 2,    /* the generated answer */
} rag_guard_stage;

/* Actions, weakest first: a result's action is the strongest that fired. */
typedef enum {
    RAG_GUARD_ALLOW = 0,
    RAG_GUARD_FLAG = 1,
    RAG_GUARD_REDACT = 2,
    RAG_GUARD_BLOCK = 3,
} rag_guard_action;

/* What to do with a retrieved passage that a context-stage "block" rule
 * (instruction planted in a document) fires on. Either way the matched
 * instruction never reaches the prompt. */
typedef enum {
    RAG_GUARD_QUARANTINE_DROP = 0,  /* result action BLOCK: drop the passage */
    RAG_GUARD_QUARANTINE_KEEP = 1,  /* result action REDACT, quarantined=true:
                                       each sentence holding a match is
                                       replaced by "[instruction removed]";
                                       keep the passage with a warning */
} rag_guard_quarantine;

typedef struct rag_guard rag_guard;
typedef struct rag_guard_stream rag_guard_stream;

typedef struct {
    const char *defaults_dir;     /* NULL: rag_guard_defaults_dir() */
    bool no_defaults;             /* load only the user rules (a warning says so) */
    bool ignore_env;              /* do not read $MRAG_GUARDRAILS */
    const char *const *rule_dirs; /* user rule folders (or single rule files),
                                     loaded in order after the defaults */
    size_t n_rule_dirs;
    rag_guard_quarantine quarantine;
    uint32_t match_limit;         /* PCRE2 match limit per scan (default 1000000) */
    uint32_t depth_limit;         /* PCRE2 depth limit (default 10000; interpreter only) */
    size_t stream_max_hold;       /* most bytes a stream holds back (default 2048) */
    bool limit_blocks;            /* a rule that hits a limit blocks (default: flags) */
    bool no_ascii_path;           /* always match with Unicode classes, also on
                                     pure-ASCII text (tests compare the two) */
} rag_guard_params;

typedef enum {
    RAG_GUARD_EV_MATCH = 0,       /* a rule matched (and its validator agreed) */
    RAG_GUARD_EV_LIMIT = 1,       /* a rule hit the PCRE2 match/depth limit: the
                                     text was not fully checked by that rule */
} rag_guard_event_kind;

typedef struct {
    rag_guard_event_kind kind;
    const char *rule_id;          /* borrowed from the guard, valid until rag_guard_free */
    const char *message;          /* borrowed, idem */
    rag_guard_stage stage;
    rag_guard_action action;      /* the action this event caused */
    size_t start, end;            /* byte span in the checked text (for a stream:
                                     in the whole text fed so far) */
    float score;                  /* detector rules: the model's probability
                                     (0..1); 0 for pattern rules */
} rag_guard_event;

typedef struct {
    rag_guard_action action;      /* strongest action of all events */
    const char *message;          /* borrowed: message of the first strongest event, or NULL */
    bool quarantined;             /* context stage: an instruction was found */
    char *text;                   /* owned: the text with redactions applied,
                                     NUL-terminated (also set when blocked: the
                                     caller must then not use it) */
    size_t text_len;
    rag_guard_event *events;      /* owned, ordered by start */
    size_t n_events;
    size_t cap_events;
    bool repaired;                /* the input was not valid UTF-8: invalid
                                     sequences were replaced by U+FFFD before
                                     checking; text and spans refer to that
                                     repaired text */
    float uncertain;              /* the highest detector score that stayed
                                     below its rule's threshold but reached
                                     RAG_GUARD_UNCERTAIN (0: none) — the band a
                                     model judge may decide (--guard-llm) */
    size_t uncertain_start, uncertain_end;  /* its segment (span as events') */
} rag_guard_result;
#define RAG_GUARD_UNCERTAIN 0.5f

rag_guard_params rag_guard_default_params(void);

/* Where the default rules live: DATA_DIR/guardrails when the build names an
 * installed data folder (-DMRAG_DATA_DIR), else data/guardrails one to three
 * levels above the executable — never the current folder. false when not
 * found. The one function that answers this question. */
bool rag_guard_defaults_dir(char *out, size_t cap);

/* Loads the default rules, then the user rules — the folders or files in
 * $MRAG_GUARDRAILS (':'-separated) and p->rule_dirs (files *.rules in name
 * order) — and compiles them. User rules add rules or change a rule by id;
 * they never replace the default set, and what they do to a default rule
 * that weakens it (disable, a weaker action, fewer stages, a new pattern)
 * is listed by rag_guard_warning.
 * On failure returns an error status, *out = NULL, and writes a message
 * naming the file, line and problem into err (when err_cap > 0).
 * *out is owned, free with rag_guard_free. */
int rag_guard_load(const rag_guard_params *p, rag_guard **out, char *err, size_t err_cap);

/* Builder API (rag_guard_load uses it): an empty guard, rules added from a
 * folder, a file or memory (name is used in error messages), then compiled.
 * Adding after compiling is RAG_ERR_ARG. On error rag_guard_errmsg says why. */
int rag_guard_new(const rag_guard_params *p, rag_guard **out);
int rag_guard_add_dir(rag_guard *g, const char *dir);
int rag_guard_add_file(rag_guard *g, const char *path);
int rag_guard_add_text(rag_guard *g, const char *name, const char *text, size_t len);
int rag_guard_compile(rag_guard *g);
const char *rag_guard_errmsg(const rag_guard *g);   /* borrowed; "" when none */
void rag_guard_free(rag_guard *g);                  /* NULL is a no-op */

size_t rag_guard_rule_count(const rag_guard *g);    /* enabled rules */
/* Warnings of loading (a default rule disabled or weakened by a user file,
 * defaults not loaded): the caller shows them. Borrowed. */
size_t rag_guard_warning_count(const rag_guard *g);
const char *rag_guard_warning(const rag_guard *g, size_t i);
/* The i-th enabled rule (0-based, in load order): id, stages bitmask
 * (1 << stage), action. Returns false when i is out of range. Borrowed. */
bool rag_guard_rule_info(const rag_guard *g, size_t i, const char **id, unsigned *stages,
                         rag_guard_action *action, const char **origin);

/* Audit log: every event of every check (and of streams) is written as one
 * JSON line {"time","stage","rule","action","kind","start","len"} — never
 * the matched text. rag_guard_set_audit borrows f (NULL turns logging off);
 * rag_guard_open_audit appends to a file the guard owns. Thread-safe. */
void rag_guard_set_audit(rag_guard *g, FILE *f);
int rag_guard_open_audit(rag_guard *g, const char *path);
/* Formats one audit line (with '\n') for an event into buf; returns its
 * length, or 0 if it does not fit. */
size_t rag_guard_audit_format(const rag_guard_event *ev, char *buf, size_t cap);

/* Runs the rules of a stage over text[0..len) (any bytes; invalid UTF-8 never
 * matches a pattern). n_sources is the number of sources given to the model
 * (output stage: citations [n] with n outside 1..n_sources are removed).
 * res is overwritten (no need to initialise); release with
 * rag_guard_result_release. Returns RAG_OK (even when blocked: see
 * res->action), RAG_ERR_NOMEM or RAG_ERR_ARG. */
int rag_guard_check(const rag_guard *g, rag_guard_stage stage, const char *text, size_t len,
                    int n_sources, rag_guard_result *res);
void rag_guard_result_release(rag_guard_result *res);

/* More about a check than rag_guard_check's arguments say. */
typedef struct {
    int n_sources;                /* as rag_guard_check's n_sources */
    const char *question;         /* context stage: the user's question, or NULL.
                                     A request in a passage that is unrelated to
                                     it and to the rest of the passage is an
                                     injection ("unrelated: yes" rules) */
    size_t question_len;
} rag_guard_check_opts;
/* rag_guard_check with options (o may be NULL: no question, n_sources 0). */
int rag_guard_check_with(const rag_guard *g, rag_guard_stage stage, const char *text, size_t len,
                         const rag_guard_check_opts *o, rag_guard_result *res);

/* Streaming: text arriving in pieces (the answer). Each feed returns the text
 * that is safe to show now, with redactions applied; text that could still
 * grow into a match (a PCRE2 partial match) is held back, at most
 * params.stream_max_hold bytes. Once a block rule fires the feed returns
 * RAG_ERR_BLOCKED and nothing more is emitted. *out is borrowed, valid until
 * the next call on the stream. finish flushes the rest. *s owned, free with
 * rag_guard_stream_free. Not for concurrent use (one stream per answer). */
int rag_guard_stream_new(const rag_guard *g, rag_guard_stage stage, int n_sources,
                         rag_guard_stream **s);
int rag_guard_stream_feed(rag_guard_stream *s, const char *piece, size_t len,
                          const char **out, size_t *out_len);
int rag_guard_stream_finish(rag_guard_stream *s, const char **out, size_t *out_len);
/* Protects a text from being repeated by the answer — the system prompt:
 * once the answer repeats 8 consecutive words of it (ASCII case folded),
 * the stream blocks (event rule id "out.prompt-leak") and nothing more is
 * emitted. At most the words up to that point have been shown. Call before
 * feeding; may be called for several texts. RAG_OK, RAG_ERR_ARG or
 * RAG_ERR_NOMEM. */
int rag_guard_stream_protect(rag_guard_stream *s, const char *text, size_t len);
/* Protects a canary — a random string placed in the system prompt (at most
 * 128 bytes): once the answer repeats 8 consecutive letters or digits of
 * it, of its reverse, its ROT13, its hex or its base64 — in any case,
 * spaced out, split by punctuation, zero-width characters or markup, or in
 * full-width forms — the stream blocks (event rule id "out.canary") and
 * nothing more is emitted. Call before feeding; may be called for several
 * canaries. RAG_OK, RAG_ERR_ARG or RAG_ERR_NOMEM. */
int rag_guard_stream_canary(rag_guard_stream *s, const char *canary, size_t len);
/* Events and action so far (spans in the whole stream); text is NULL.
 * Borrowed, valid until the stream is freed. */
const rag_guard_result *rag_guard_stream_result(const rag_guard_stream *s);
void rag_guard_stream_free(rag_guard_stream *s);

const char *rag_guard_stage_name(rag_guard_stage s);    /* "input", ... */
const char *rag_guard_action_name(rag_guard_action a);  /* "allow", ... */
/* Parses "input"/"context"/"output"; returns -1 when unknown. */
int rag_guard_stage_parse(const char *s);

/* ---- the learned injection detector (docs/guardrails.md, "Detector") ----
 * A rule with "model: FILE" (instead of a pattern) scores texts with a
 * logistic-regression model over hashed n-grams of the normalised text; at
 * the context stage each sentence of a passage is scored, so only the
 * offending sentences are quarantined. rag_guard_train builds such a file. */
typedef struct {
    int bits;          /* 2^bits weights (12..22, default 18: 256 KB) */
    int epochs;        /* passes over the data (default 10) */
    uint64_t seed;     /* shuffling seed (default 1): same data + seed = same file */
    double lr;         /* AdaGrad step (default 0.25) */
    double l2;         /* L2 penalty (default 1e-4) */
    bool whole;        /* false (default): every feature is scaled by
                          1/sqrt(count), model format 1; true: the features
                          of the whole sentence (length class, question,
                          imperative start, ...) weigh the same in a long
                          sentence as in a short one, format 2 */
} rag_guard_train_params;
rag_guard_train_params rag_guard_train_default_params(void);
/* Trains on n texts with labels (1 injection, 0 benign) and optional
 * per-row weights (NULL: all 1), normalised the way checks normalise, and
 * writes the model file to path (through a temporary file and rename).
 * info is one provenance line for the header (may be NULL). Single thread,
 * fixed seed: the same inputs give the same bytes. RAG_OK, RAG_ERR_ARG,
 * RAG_ERR_IO or RAG_ERR_NOMEM, with a message in err. */
int rag_guard_train(const rag_guard_train_params *p, const char *const *texts, const size_t *lens, const int *labels,
                    const float *weights, size_t n, const char *info, const char *path, char *err, size_t err_cap);

/* Length of the longest prefix of s[0..n) that is valid UTF-8 (n when all
 * of it is): no overlong forms, surrogates or code points past U+10FFFF. */
size_t rag_utf8_valid_prefix(const char *s, size_t n);

/* Validators by name ("luhn", "iban", "steuer_id", "ipv4", "ipv6", "phone",
 * "email", "citation"): true when s[0..len) is a valid instance. Exposed for
 * tests and the rule loader. */
bool rag_guard_validate(const char *name, const char *s, size_t len);

#endif
