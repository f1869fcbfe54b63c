/* app.h — the `mrag` program's subcommands (internal to app/). Each command
 * takes its own argv (argv[0] is the command name), prints to stdout/stderr,
 * and returns the process exit code: 0 ok, 1 error, 2 usage or blocked. */
#ifndef MRAG_APP_H
#define MRAG_APP_H

#include <stdbool.h>
#include <stdio.h>

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
int app_cmd_ingest(int argc, char **argv);          /* pipeline: cmd_ingest.c */
int app_cmd_search(int argc, char **argv);          /* pipeline: cmd_search.c */
int app_cmd_eval_retrieval(int argc, char **argv);  /* pipeline: cmd_eval.c */

/* The index folder from --index, else $MRAG_INDEX, else "./.mrag"
 * (cmd_ingest.c). Borrowed. */
const char *app_index_path(const char *flag_value);
/* uri shown relative to the current folder when it lies below it (borrowed
 * from uri, cmd_ingest.c). */
const char *app_display_path(const char *uri);

/* Prints "mrag: <msg>\n" to stderr and returns 1. */
int app_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The model path from -m or $MRAG_MODEL, or NULL. */
const char *app_model_path(const char *flag_value);

/* True when argv has -h or --help. */
bool app_wants_help(int argc, char **argv);

#endif
