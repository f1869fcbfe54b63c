/* app.h — the `mrag` program's subcommands (internal to app/). Each command
 * takes its own argv (argv[0] is the command name), prints to stdout/stderr,
 * and returns the process exit code: 0 ok, 1 error, 2 usage or blocked. */
#ifndef MRAG_APP_H
#define MRAG_APP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "llm/llm.h"

#include "rag/guard.h"
#include "rag/rag.h"

/* ------------------------------------------------------------ options
 * The one option parser of the commands (opt.c). A command lists its
 * options in tables; app_args_next returns them one by one wherever they
 * stand among the operands: `--name VALUE`, `--name=VALUE`, `-k VALUE`,
 * `-kVALUE`; `--` ends the options; "-" is an operand. Long names are
 * matched whole (never abbreviated, so scripts keep working when options
 * are added). Every usage error is printed as
 * "mrag CMD: <what> (see `mrag CMD --help`)" and the command exits 2. */
typedef struct app_opt_s {
    const char *name;       /* long name without the dashes ("mode"), or NULL */
    char short_name;        /* 'k', or 0 */
    const char *arg;        /* NULL: a flag; else what the value is, for
                               messages, help and completion: "N", "DIR",
                               "FILE", or the choices "dense|bm25|hybrid" */
    int id;                 /* > 0, returned by app_args_next; 0 ends a table */
} app_opt;

typedef struct app_args_s {
    const char *cmd;                /* "search": named in messages */
    const app_opt *const *tables;   /* NULL-terminated */
    int argc;
    char **argv;
    int i;                          /* next argv index */
    int npos;                       /* operands so far, gathered at argv[1..npos] */
    bool rest;                      /* after "--" */
    const app_opt *opt;             /* the option app_args_next returned last */
    char optname[64];               /* as the user wrote it: "--mode" or "-k" */
    const char *arg;                /* the argv word of that option (for
                                       app_config_origin), NULL after the last */
} app_args;

void app_args_init(app_args *p, const char *cmd, const app_opt *const *tables, int argc, char **argv);
/* The next option's id (> 0) with *val its value (NULL for a flag); 0 when
 * argv is done (the operands, in order, are then argv[1..p->npos]); -1
 * after printing a usage error (exit 2). Reorders argv's pointers. */
int app_args_next(app_args *p, const char **val);
/* Prints "mrag CMD: <message> (see `mrag CMD --help`)"; returns 2. When
 * the option just returned came from a configuration file, the message
 * starts with where: "mrag CMD: configuration FILE line N, [GROUP] KEY: ...". */
int app_usage_error(const app_args *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Where an argv word came from, for that message (set by config.c's
 * app_config_apply to app_config_origin; NULL: the command line). */
extern const char *(*app_arg_origin)(const char *arg);
/* Value checks for the option just returned: true with *out set, or false
 * after a usage error naming the option, the value and the range. */
bool app_opt_int(const app_args *p, const char *v, int lo, int hi, int *out);
bool app_opt_long(const app_args *p, const char *v, long lo, long hi, long *out);
bool app_opt_double(const app_args *p, const char *v, double lo, double hi, double *out);
/* The index of v among the option's choices ("a|b|c"), or -1 after a usage
 * error listing them. */
int app_opt_choice(const app_args *p, const char *v);
/* A usage error "OPTION: 'v': why"; returns false. */
bool app_opt_bad(const app_args *p, const char *v, const char *why);


struct app_opt_s;
typedef struct {
    const char *name;
    const char *summary;                /* one line for `mrag --help` */
    int (*run)(int argc, char **argv);
    const struct app_opt_s *const *opts;   /* its option tables (completion, man page) */
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
    const char *indexes[32];                /* every --index (borrowed): several are
                                               searched together (app_index_set) */
    size_t n_indexes;
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
/* The answering options of ask and chat (ids APP_ASK_*, below 512): a
 * table for app_args. app_ask_apply_opt applies option id with value v:
 * 1 done, 0 not an answering option, -1 a bad value (usage error printed). */
enum { APP_ASK_INDEX = 256, APP_ASK_MODEL, APP_ASK_K, APP_ASK_MAX_TOKENS, APP_ASK_CTX, APP_ASK_THREADS,
       APP_ASK_TEMP, APP_ASK_RULES, APP_ASK_QUARANTINE, APP_ASK_PREAMBLE, APP_ASK_GROUPS, APP_ASK_LLM_URL,
       APP_ASK_LLM_KEY_FILE, APP_ASK_LLM_MODEL, APP_ASK_LLM_EMBEDDINGS, APP_ASK_EXTRACTIVE, APP_ASK_GENERATE,
       APP_ASK_GUARD_LLM, APP_ASK_LORA };
extern const app_opt app_ask_common_opts[];
int app_ask_apply_opt(app_ask_opts *o, const app_args *ap, int id, const char *v);
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
/* How ask and search cite a passage: the path (by app_display_path) and
 * the tail of rag_cite_tail for the document type: "path:first-last",
 * "path#page=N", "path#slide=N", ... or "path", into buf[n] (cmd_ask.c). */
void app_citation(const char *uri, const char *type, int line_start, int line_end, int page, char *buf, size_t n);

typedef struct idx_store idx_store;
/* An existing index folder opened read-only; on failure prints "mrag:
 * WHO: no index at DIR (run `mrag ingest ...` first)" or the index's
 * message (who may be NULL) and returns NULL (util.c). */
idx_store *app_open_index(const char *dir, const char *who);
/* Several indexes at once (`--index A --index B` of ask, chat, search;
 * index_set.c): each flag is NAME=DIR (NAME 1 to 32 of a-z 0-9 _ -) or
 * DIR; names[i] is NAME, else the flag as given (what sources and hits
 * say). No flag: the default index. */
#define APP_MAX_INDEXES 32
typedef struct {
    idx_store *stores[APP_MAX_INDEXES];
    char *names[APP_MAX_INDEXES];       /* owned */
    const char *dirs[APP_MAX_INDEXES];  /* borrowed from the flags */
    size_t n;
} app_index_set;
/* Opens every index read-only; the indexes must hold embeddings of one
 * model (the same fingerprint; an index without vectors passes). Prints
 * the problem (naming the index) and returns -1 on failure (x closed). */
int app_index_set_open(app_index_set *x, const char *const *flags, size_t n, const char *who);
void app_index_set_close(app_index_set *x);     /* zeroes it */
/* True when name[0..len) is a collection name: 1 to 32 bytes of a-z 0-9 _ -
 * (serve_keys.c). */
bool app_collection_name_ok(const char *name, size_t len);

/* The model file recorded by the last ingest into s when it still exists
 * (owned, free()), or NULL (util.c). */
char *app_recorded_model(idx_store *s);
/* After an ingest: re-analyses the text index when it has grown enough
 * (idx_fts_retune) and then, with a model, learns the fusion weights again
 * (also when none are stored yet); a failure is a warning naming `cmd`,
 * never fatal. */
struct llm_model;
void app_after_ingest(idx_store *s, struct llm_model *m, const char *cmd);
/* The same after an ingest through a server (--llm-url BASE
 * --llm-embeddings): the pseudo-queries are embedded by the server made
 * from rp (checked against the index as `ask --llm-embeddings` does). */
/* The embedding-server options of ingest, ingest-wiki and tune (ids
 * APP_REMOTE_*, 512 and up, clear of each command's own): app_remote_opts
 * holds --llm-url, --llm-key-file, --llm-model and --llm-embeddings;
 * app_remote_batch_opts --embed-batch and --embed-parallel (ingestion
 * only). app_remote_apply_opt applies option id with value v to *rp,
 * *embeddings and (the batch options) *ip, which may be NULL when the
 * command has no batch table: 1 done, 0 not one of these, -1 a bad value
 * (usage error printed). */
enum { APP_REMOTE_URL = 512, APP_REMOTE_KEY_FILE, APP_REMOTE_MODEL, APP_REMOTE_EMBEDDINGS, APP_REMOTE_BATCH,
       APP_REMOTE_PARALLEL };
extern const app_opt app_remote_opts[], app_remote_batch_opts[];
int app_remote_apply_opt(const app_args *ap, int id, const char *v, rag_remote_params *rp, bool *embeddings,
                         rag_ingest_params *ip);
void app_after_ingest_remote(idx_store *s, const rag_remote_params *rp, const char *cmd);
/* Makes the server of rp embed queries for retrievers on s: checks it
 * against the index (dimension, model), then sets out->embed, embed_user
 * and embed_dim. *remote and *engine are owned (free the engine first).
 * 0, or 1 with err set. */
int app_remote_embedder(const rag_remote_params *rp, idx_store *s, rag_retriever_params *out, rag_remote **remote,
                        rag_engine **engine, char *err, size_t errlen);
/* `--layer auto`: compares embedding layers on the index (cand NULL: the
 * defaults of rag_tune_layer), re-embeds at the best, prints the table;
 * failures are warnings naming cmd. Call app_after_ingest (or rag_tune) after. */
void app_choose_layer(idx_store *s, struct llm_model *m, int threads, const int *cand, int n_cand, const char *cmd);
/* One line saying the fusion weights, where they come from, and the gate
 * (f is a const rag_fusion *). */
void app_fusion_describe(const void *f, char *out, size_t n);
/* One line on the query-side German synonyms of index s (the thesaurus in
 * use, or why there is none). */
void app_synonyms_describe(idx_store *s, char *out, size_t n);
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

/* The fields of one evidence unit both JSON shapes share — text, source,
 * citation (already rendered for the reader), heading, kind, score and the
 * marks (byte spans of the words that match the question) — added to the
 * object o (a cJSON object; util.c). `mrag ask --json` and the API's
 * "evidence" add their own location fields around them. */
struct cJSON;
void app_evidence_json(struct cJSON *o, const rag_evidence *e, const char *citation);

/* args[0..n) joined by single blanks (a question given as several words);
 * owned, free(); NULL on OOM (util.c). */
char *app_join_args(int n, char **args);

/* A command that creates an index and may fail before storing anything:
 * app_index_is_new(dir) before opening it (true: dir does not exist), then
 * on failure app_index_discard(&store, dir) when it was new: an index that
 * holds no document is closed (*s = NULL) and its files and folder removed,
 * so a failed first run leaves nothing behind (util.c). */
bool app_index_is_new(const char *dir);
void app_index_discard(idx_store **s, const char *dir);

/* Each command's option tables (NULL-terminated), defined beside it. */
extern const app_opt *const app_ingest_opts[], *const app_ingest_wiki_opts[], *const app_ask_opts_tables[],
    *const app_chat_opts[], *const app_search_opts[], *const app_serve_opts_tables[], *const app_guard_check_opts[],
    *const app_guard_eval_opts[], *const app_guard_train_opts[], *const app_eval_retrieval_opts[],
    *const app_tune_opts[], *const app_model_info_opts[], *const app_tokenize_opts[], *const app_generate_opts[],
    *const app_embed_opts[], *const app_eval_answers_opts[], *const app_check_opts[];

/* ------------------------------------------------------------ config.c
 * The configuration files (docs/building.md). app_config_load reads
 * /etc/mrag/mrag.conf (or $MRAG_SYSTEM_CONFIG) then the user's
 * $XDG_CONFIG_HOME/mrag/mrag.conf, or only explicit_path (--config FILE,
 * else $MRAG_CONFIG); false after printing a problem. app_config_apply
 * puts the settings for command c before its own arguments (a new argv,
 * kept for the process): 0, or 2 after printing an unknown key or bad
 * value. */
bool app_config_load(const char *explicit_path);
int app_config_apply(const app_command *cmds, size_t n_cmds, const app_command *c, int *argc, char ***argv);
/* data-dir from [mrag] (NULL when unset); *source the file. */
const char *app_config_data_dir(const char **source);
/* The system file: /etc/mrag/mrag.conf, or $MRAG_SYSTEM_CONFIG when set
 * (a testing hook, docs/building.md). */
const char *app_config_system_path(void);
/* Where an argv word made by app_config_apply comes from ("configuration
 * FILE line N, [GROUP] KEY"), or NULL for a word of the command line. */
const char *app_config_origin(const char *arg);
/* Frees what app_config_load and app_config_apply made (at exit). */
void app_config_free(void);
/* `mrag config [COMMAND]`: the effective settings and where each comes from. */
int app_config_print(const app_command *cmds, size_t n_cmds, int argc, char **argv);

/* ------------------------------------------------------------ about.c */
/* PREFIX/share/mrag compiled into an installed binary, or NULL (build tree). */
const char *app_data_dir_compiled(void);
/* The folder of the default guardrail rules: $MRAG_DATA_DIR/guardrails when
 * set, else the compiled-in data folder's, else data/guardrails beside the
 * program (rag_guard_defaults_dir). *source says which ("MRAG_DATA_DIR",
 * "installed", "build tree"). False with the reason in why. */
bool app_guard_dir(char *out, size_t cap, const char **source, char *why, size_t why_cap);
/* rag_guard_load with the default rules from app_guard_dir (unless p names
 * them or has no_defaults). */
int app_guard_load(const rag_guard_params *p, rag_guard **out, char *err, size_t err_cap);
/* `mrag --version`: version, git describe, compiler and flags, SIMD level,
 * data folder. */
void app_print_version(FILE *f);

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
