/* app.h — the `mrag` program's subcommands (internal to app/). Each command
 * takes its own argv (argv[0] is the command name), prints to stdout/stderr,
 * and returns the process exit code: 0 ok, 1 error, 2 usage or blocked. */
#ifndef MRAG_APP_H
#define MRAG_APP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "llm/llm.h"

typedef struct {
    const char *name;
    const char *summary;                /* one line for `mrag --help` */
    int (*run)(int argc, char **argv);
} app_command;

int app_cmd_model_info(int argc, char **argv);
int app_cmd_tokenize(int argc, char **argv);
int app_cmd_generate(int argc, char **argv);
int app_cmd_embed(int argc, char **argv);
int app_cmd_guard_check(int argc, char **argv);
int app_cmd_guard_eval(int argc, char **argv);
int app_cmd_guard_train(int argc, char **argv);
int app_cmd_ingest(int argc, char **argv);          /* pipeline: cmd_ingest.c */
int app_cmd_ingest_wiki(int argc, char **argv);     /* wiki: cmd_wiki.c */
int app_cmd_search(int argc, char **argv);          /* pipeline: cmd_search.c */
int app_cmd_eval_retrieval(int argc, char **argv);  /* pipeline: cmd_eval.c */
int app_cmd_eval_answers(int argc, char **argv);    /* evidence: cmd_eval_answers.c */
int app_cmd_tune(int argc, char **argv);            /* retrieval: cmd_tune.c */
int app_cmd_ask(int argc, char **argv);            /* answer: cmd_ask.c */
int app_cmd_chat(int argc, char **argv);           /* answer: cmd_chat.c */
int app_cmd_serve(int argc, char **argv);          /* HTTP service: cmd_serve.c */
int app_cmd_check(int argc, char **argv);          /* index integrity: cmd_check.c */

/* LoRA adapters from --lora FILE[:SCALE] (repeatable, util.c): applied to
 * everything the command's model computes, embeddings included. */
#define APP_MAX_LORA 16
typedef struct {
    int n;
    const char *path[APP_MAX_LORA];     /* borrowed from argv */
    float scale[APP_MAX_LORA];
} app_lora_opts;

/* Adds one --lora value: FILE, or FILE:SCALE when the text after the last
 * ':' is a number (the ':' in argv is then cut). 0, or prints the problem
 * naming cmd and returns 2. */
int app_lora_add(app_lora_opts *l, const char *cmd, char *value);
/* Points mp at the adapters (l and its strings must outlive the load). */
void app_lora_model_params(const app_lora_opts *l, llm_model_params *mp);
/* The --lora line of the commands' usage texts. */
#define APP_LORA_USAGE \
    "  --lora FILE[:SCALE]  apply a LoRA adapter (llama.cpp GGUF format, scale 1 by default);\n" \
    "                       repeatable; the model's embeddings change too (index fingerprint)\n"

/* Answering session shared by `mrag ask` and `mrag chat` (cmd_ask.c). */
typedef struct {
    const char *index, *model, *preamble;   /* borrowed; NULL = defaults */
    const char *rules[16];                  /* --rules DIR (borrowed) */
    size_t n_rules;
    int k, max_tokens, n_ctx, threads;
    float temp;
    bool keep_quarantined;                  /* --quarantine keep */
    bool guard_llm;                         /* --guard-llm: the model judges
                                               texts the detector is unsure of */
    const char *groups;                     /* --groups CSV (borrowed); NULL = all
                                               documents (the index owner) */
    bool show_prompt;                       /* --show-prompt: --json adds "prompt" */
    /* remote engine (docs/remote.md): generation (and with llm_embeddings
     * the query embeddings) through an OpenAI-compatible server */
    const char *llm_url;                    /* --llm-url BASE (ending in /v1) */
    const char *llm_key_file;               /* --llm-key-file F */
    const char *llm_model;                  /* --llm-model NAME */
    bool llm_embeddings;                    /* --llm-embeddings */
    bool extractive;                        /* --extractive: quoted evidence is the answer */
    bool generate;                          /* --generate: run even a random-weight test model */
    app_lora_opts lora;                     /* --lora FILE[:SCALE] */
} app_ask_opts;

typedef struct app_asker app_asker;

app_ask_opts app_ask_default_opts(void);
/* Consumes argv[*i] (and its value, advancing *i) when it is an answering
 * option: returns 1, 0 when it is not one, -1 for a bad value. */
int app_ask_parse_opt(app_ask_opts *o, int argc, char **argv, int *i);
/* Opens index, model, guardrails (audit log INDEX/audit.jsonl) and the
 * answerer; prints the problem and returns 1 on failure. *out owned. */
int app_asker_open(const app_ask_opts *o, app_asker **out);
void app_asker_close(app_asker *a);                 /* NULL is a no-op */
/* Answers one question: streams it to stdout (or prints JSON), then the
 * sources. conversation: earlier turns are used and this one is recorded.
 * Returns 0 (answer or no sources), 2 blocked, 130 cancelled, 1 error. */
int app_asker_ask(app_asker *a, const char *question, bool conversation, bool json, bool stats);
void app_asker_print_sources(const app_asker *a, FILE *f);  /* of the last answer */
void app_asker_reset(app_asker *a);                 /* forget the conversation */
size_t app_asker_turns(const app_asker *a);
volatile int *app_asker_cancel_flag(app_asker *a);  /* set non-zero to stop an answer */
const char *app_asker_last_prompt(const app_asker *a);  /* borrowed, NULL when none */

/* The remote engine for an answerer (cmd_ask.c), with o->llm_url set:
 * connects (key file, /v1/models probe), makes its engine and sets
 * p->engine; with o->llm_embeddings also p->embed after checking the
 * server's embedding against the store's index. Prints the problem and
 * returns 1 on failure; *remote and *engine owned (free the engine, then
 * the remote, after the answerer that uses them). */
struct rag_remote;
struct rag_engine;
struct idx_store;
struct rag_answer_params;
int app_remote_attach(const app_ask_opts *o, struct idx_store *store, struct rag_remote **remote,
                      struct rag_engine **engine, struct rag_answer_params *p);

/* The index folder from --index, else $MRAG_INDEX, else "./.mrag"
 * (cmd_ingest.c). Borrowed. */
const char *app_index_path(const char *flag_value);
/* uri shown relative to the current folder when it lies below it (borrowed
 * from uri, cmd_ingest.c). */
const char *app_display_path(const char *uri);
/* How ask and search cite a passage: "path:first-last", "path:line",
 * "path#page=N" or "path" (path by app_display_path) into buf[n]
 * (cmd_ask.c). */
void app_citation(const char *uri, int line_start, int line_end, int page, char *buf, size_t n);

typedef struct idx_store idx_store;
/* An existing index folder opened read-only; on failure prints "mrag:
 * WHO: no index at DIR (run `mrag ingest ...` first)" or the index's
 * message (who may be NULL) and returns NULL (util.c). */
idx_store *app_open_index(const char *dir, const char *who);
/* The model file recorded by the last ingest into s when it still exists
 * (owned, free()), or NULL (util.c). */
char *app_recorded_model(idx_store *s);
/* After an ingest: re-analyses the text index when it has grown enough
 * (idx_fts_retune) and then, with a model, learns the fusion weights again
 * (also when none are stored yet); a failure is a warning naming `cmd`,
 * never fatal. */
struct llm_model;
void app_after_ingest(idx_store *s, struct llm_model *m, const char *cmd);
/* `--layer auto`: compares embedding layers on the index (cand NULL: the
 * defaults of rag_tune_layer), re-embeds at the best, prints the table;
 * failures are warnings naming cmd. Call app_after_ingest (or rag_tune) after. */
void app_choose_layer(idx_store *s, struct llm_model *m, int threads, const int *cand, int n_cand, const char *cmd);
/* One line saying the fusion weights, where they come from, and the gate
 * (f is a const rag_fusion *). */
void app_fusion_describe(const void *f, char *out, size_t n);
/* A whole file of at most max bytes, NUL-terminated (owned, free()); *len
 * (may be NULL) gets its length. NULL with errno set when it cannot be read
 * or is larger (EFBIG). */
char *app_read_file(const char *path, size_t max, size_t *len);
/* The same for an open stream read to its end (stdin: app_read_stream(stdin, ...)). */
char *app_read_stream(FILE *f, size_t max, size_t *len);

/* Warns on stderr when the secret file path can be read by others (group
 * or world bits): "mrag: warning: WHATpath can be read by other users". */
void app_warn_if_readable(const char *path, const char *what);

/* The number parser of the command lines: the whole of s in base 10, no
 * blanks, within [lo, hi] (double: finite); false otherwise, *out then
 * untouched. */
bool app_parse_long(const char *s, long lo, long hi, long *out);
bool app_parse_int(const char *s, int lo, int hi, int *out);
bool app_parse_double(const char *s, double lo, double hi, double *out);
/* Any unsigned 64-bit value, no sign. */
bool app_parse_u64(const char *s, uint64_t *out);

/* args[0..n) joined by single blanks (a question given as several words);
 * owned, free(); NULL on OOM (util.c). */
char *app_join_args(int n, char **args);

/* text as it may reach a terminal or a log line: control characters (C0,
 * DEL, C1) and bytes that are not UTF-8 become \xNN, so a file name with
 * ESC, BEL, CR or a newline cannot move the cursor or forge a line.
 * Returns text itself when nothing needs escaping, else a buffer valid
 * until the 8th later call in the same thread (util.c). */
const char *app_esc(const char *text);

/* Prints "mrag: <msg>\n" to stderr (escaped with app_esc) and returns 1. */
int app_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the guard's load warnings (a default rule disabled or weakened by
 * a user rules file) to stderr; defined in cmd_guard.c. */
struct rag_guard;
void app_guard_warnings(const struct rag_guard *g);

/* The model path from -m or $MRAG_MODEL, or NULL. */
const char *app_model_path(const char *flag_value);

/* A SQuAD-format question set (squad.c): paragraphs, and questions with
 * their gold answers; strings borrowed from the parsed file. */
typedef struct {
    const char *question, *id;
    int para;                   /* index of its paragraph */
    const char **answers;       /* owned array of borrowed strings */
    size_t n_answers;
} app_squad_q;

typedef struct {
    void *root;                 /* the parsed file (cJSON) */
    char *data;
    char **uris;                /* squad://TITLE/N per paragraph (owned) */
    const char **texts;         /* paragraph texts */
    int64_t *doc_ids;           /* after app_squad_ingest: the document ids */
    int n_para;
    app_squad_q *qs;
    int n_q;
} app_squad;

/* Parses file (the first limit paragraphs; 0 = all). Prints the problem
 * (prefixed by cmd) and returns 1 on failure; release with app_squad_release. */
int app_squad_open(const char *file, long limit, const char *cmd, app_squad *sq);
/* Ingests the paragraphs into s as documents (unchanged ones kept, other
 * squad:// documents removed), then app_after_ingest and idx_save. 0, or 1
 * after printing the problem. */
struct llm_model;
int app_squad_ingest(app_squad *sq, idx_store *s, struct llm_model *m, int layer, int threads, bool quiet, const char *cmd);
void app_squad_release(app_squad *sq);

/* True when argv has -h or --help. */
bool app_wants_help(int argc, char **argv);

#endif
