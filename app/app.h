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

/* Prints "mrag: <msg>\n" to stderr and returns 1. */
int app_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The model path from -m or $MRAG_MODEL, or NULL. */
const char *app_model_path(const char *flag_value);

/* True when argv has -h or --help. */
bool app_wants_help(int argc, char **argv);

#endif
