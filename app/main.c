/* main.c — the `mrag` program: dispatches to subcommands. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"

static const app_command commands[] = {
    {"ingest", "index a folder of documents (incremental)", app_cmd_ingest},
    {"ingest-wiki", "mirror a MediaWiki into the index (incremental)", app_cmd_ingest_wiki},
    {"ask", "answer a question from the indexed documents, with sources", app_cmd_ask},
    {"chat", "interactive questions and follow-ups (libedit; Ctrl-C stops an answer)", app_cmd_chat},
    {"search", "search the index: dense, bm25 or hybrid", app_cmd_search},
    {"serve", "HTTP service: OpenAI-compatible chat, /api/ask, search, web page", app_cmd_serve},
    {"guard-check", "show which guardrail rules fire on a text (or JSONL texts on stdin)", app_cmd_guard_check},
    {"guard-eval", "detection and false-positive rates of the guardrails on labelled JSONL", app_cmd_guard_eval},
    {"guard-train", "train the learned injection detector from labelled JSONL", app_cmd_guard_train},
    {"eval-retrieval", "recall@k and MRR of retrieval on a SQuAD file", app_cmd_eval_retrieval},
    {"eval-answers", "evidence hit@1/hit@3 (and EM/F1 with --generate) on a SQuAD file", app_cmd_eval_answers},
    {"tune", "re-analyse the text index, learn fusion weights and the gate", app_cmd_tune},
    {"model-info", "show a GGUF model's architecture, hyperparameters and tensors", app_cmd_model_info},
    {"tokenize", "print the token ids (or pieces) of a text", app_cmd_tokenize},
    {"generate", "continue a prompt with the in-process engine", app_cmd_generate},
    {"embed", "print the embedding of a text as a JSON array", app_cmd_embed},
    {"check", "check an index folder's integrity (and --repair it)", app_cmd_check},
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
            "`mrag COMMAND --help` describes a command. The model is named by -m FILE\n"
            "or the MRAG_MODEL environment variable; the index folder by --index DIR\n"
            "or MRAG_INDEX (default ./.mrag).\n");
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
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    app_error("unknown command '%s' (see `mrag --help`)", argv[1]);
    return 2;
}
