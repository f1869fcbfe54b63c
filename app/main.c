/* main.c — the `mrag` program: dispatches to subcommands. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"

static const app_command commands[] = {
    {"ingest", "index a folder of documents (incremental)", app_cmd_ingest, app_ingest_opts},
    {"ingest-wiki", "mirror a MediaWiki into the index (incremental)", app_cmd_ingest_wiki, app_ingest_wiki_opts},
    {"ask", "answer a question from the indexed documents, with sources", app_cmd_ask, app_ask_opts_tables},
    {"chat", "interactive questions and follow-ups (libedit; Ctrl-C stops an answer)", app_cmd_chat, app_chat_opts},
    {"search", "search the index: dense, bm25 or hybrid", app_cmd_search, app_search_opts},
    {"serve", "HTTP service: OpenAI-compatible chat, /api/ask, search, web page", app_cmd_serve, app_serve_opts_tables},
    {"guard-check", "show which guardrail rules fire on a text (or JSONL texts on stdin)", app_cmd_guard_check, app_guard_check_opts},
    {"guard-eval", "detection and false-positive rates of the guardrails on labelled JSONL", app_cmd_guard_eval, app_guard_eval_opts},
    {"guard-train", "train the learned injection detector from labelled JSONL", app_cmd_guard_train, app_guard_train_opts},
    {"eval-retrieval", "recall@k and MRR of retrieval on a SQuAD file", app_cmd_eval_retrieval, app_eval_retrieval_opts},
    {"eval-answers", "evidence hit@1/hit@3 (and EM/F1 with --generate) on a SQuAD file", app_cmd_eval_answers, app_eval_answers_opts},
    {"tune", "re-analyse the text index, learn fusion weights and the gate", app_cmd_tune, app_tune_opts},
    {"model-info", "show a GGUF model's architecture, hyperparameters and tensors", app_cmd_model_info, app_model_info_opts},
    {"tokenize", "print the token ids (or pieces) of a text", app_cmd_tokenize, app_tokenize_opts},
    {"generate", "continue a prompt with the in-process engine", app_cmd_generate, app_generate_opts},
    {"embed", "print the embedding of a text as a JSON array", app_cmd_embed, app_embed_opts},
    {"check", "check an index folder's integrity (and --repair it)", app_cmd_check, app_check_opts},
};

const char *app_model_path(const char *flag_value) {
    if (flag_value && *flag_value) return flag_value;
    const char *env = getenv("MRAG_MODEL");
    return env && *env ? env : NULL;
}

bool app_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return true;
    }
    return false;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: mrag COMMAND [options]\n"
            "\n"
            "mrag answers questions from your own documents, offline, with a Mistral\n"
            "model running inside the process.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-15s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "`mrag --version` says the version, the build and where the data is.\n"
            "`mrag config [COMMAND]` prints the settings from the configuration files\n"
            "(/etc/mrag/mrag.conf, ~/.config/mrag/mrag.conf, or --config FILE) and\n"
            "where each comes from.\n"
            "`mrag COMMAND --help` describes a command. The model is named by -m FILE\n"
            "or the MRAG_MODEL environment variable; the index folder by --index DIR\n"
            "or MRAG_INDEX (default ./.mrag).\n");
}

/* One line per option of every command: "COMMAND\t--long\t-s\tARG" (an
 * absent part is "-"; ARG "-" for a flag). The build makes the shell
 * completion scripts from it. */
static void dump_options(FILE *out) {
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        fprintf(out, "%s\t--help\t-h\t-\n", commands[i].name);
        for (const app_opt *const *t = commands[i].opts; t && *t; t++)
            for (const app_opt *o = *t; o->id; o++) {
                char sh[3] = "-";
                if (o->short_name) sh[1] = o->short_name;
                fprintf(out, "%s\t%s%s\t%s\t%s\n", commands[i].name, o->name ? "--" : "-", o->name ? o->name : "", sh,
                        o->arg ? o->arg : "-");
            }
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--dump-options") == 0) {     /* for the build: completion, man page */
        dump_options(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        if (argc > 2) {
            app_error("--version takes no arguments");
            return 2;
        }
        app_print_version(stdout);
        return 0;
    }
    /* --config FILE (or --config=FILE) anywhere before "--" */
    const char *conf = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        int drop = 0;
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) { app_error("--config needs a value: FILE"); return 2; }
            conf = argv[i + 1];
            drop = 2;
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            conf = argv[i] + 9;
            drop = 1;
        }
        if (drop) {
            memmove(argv + i, argv + i + drop, (size_t)(argc - i - drop + 1) * sizeof *argv);
            argc -= drop;
            i--;
        }
    }
    if (argc < 2) { usage(stderr); return 2; }
    size_t n_cmds = sizeof commands / sizeof commands[0];
    if (!app_config_load(conf)) {
        app_config_free();
        return 2;
    }
    int rc = 2;
    bool found = false;
    if (strcmp(argv[1], "config") == 0) {
        rc = app_config_print(commands, n_cmds, argc - 1, argv + 1);
        found = true;
    }
    for (size_t i = 0; i < n_cmds && !found; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            int cargc = argc - 1;
            char **cargv = argv + 1;
            found = true;
            if (app_config_apply(commands, n_cmds, &commands[i], &cargc, &cargv) == 0) rc = commands[i].run(cargc, cargv);
        }
    if (!found) app_error("unknown command '%s' (see `mrag --help`)", argv[1]);
    app_config_free();
    return rc;
}
