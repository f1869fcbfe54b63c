/* cmd_tokenize.c — `mrag tokenize`: the token ids (or pieces) of a text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "llm/llm.h"

static const char *tokenize_usage =
    "usage: mrag tokenize -m MODEL.gguf [--special] [--no-bos] [--pieces] [--] [TEXT...]\n"
    "\n"
    "Prints the token ids of TEXT (the arguments joined by single spaces, or\n"
    "standard input when there are none) on one line, space-separated, as\n"
    "llama.cpp's SentencePiece tokenizer gives them. Only the vocabulary of\n"
    "the model is loaded.\n"
    "\n"
    "  -m FILE      the GGUF model or vocabulary (default: $MRAG_MODEL)\n"
    "  --special    control tokens written in the text (\"<s>\", \"[INST]\") become\n"
    "               their ids; otherwise they are plain text\n"
    "  --no-bos     do not put the BOS token first\n"
    "  --pieces     print the vocabulary pieces (\"\xe2\x96\x81the\", \"<0x0A>\") instead of ids\n";

enum { O_SPECIAL = 256, O_NO_BOS, O_PIECES };
static const app_opt tokenize_opts[] = {
    {"model", 'm', "FILE", 'm'},
    {"special", 0, NULL, O_SPECIAL},
    {"no-bos", 0, NULL, O_NO_BOS},
    {"pieces", 0, NULL, O_PIECES},
    {0},
};
const app_opt *const app_tokenize_opts[] = {tokenize_opts, NULL};

/* Contract: parses argv as in tokenize_usage, loads the vocabulary of the
 * model, prints one line of ids or pieces to stdout; returns 0, 1 on errors
 * (message on stderr), 2 on usage errors. */
int app_cmd_tokenize(int argc, char **argv) {
    int rc = 1;
    const char *path = NULL;
    bool special = false, bos = true, pieces = false;
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    llm_model *m = NULL;

    if (app_wants_help(argc, argv)) {
        fputs(tokenize_usage, stdout);
        return 0;
    }
    app_args ap;
    app_args_init(&ap, "tokenize", app_tokenize_opts, argc, argv);
    const char *v;
    int id;
    while ((id = app_args_next(&ap, &v)) > 0) {
        if (id == 'm') path = v;
        else if (id == O_SPECIAL) special = true;
        else if (id == O_NO_BOS) bos = false;
        else if (id == O_PIECES) pieces = true;
    }
    if (id < 0) return 2;
    argc = ap.npos + 1;
    int i = 1;
    path = app_model_path(path);
    if (!path) {
        app_error("tokenize: no model (give -m FILE or set MRAG_MODEL; see `mrag tokenize --help`)");
        return 2;
    }

    if (i < argc) {
        for (int k = i; k < argc; k++) len += strlen(argv[k]) + 1;
        text = malloc(len + 1);
        if (!text) { app_error("tokenize: out of memory"); goto done; }
        len = 0;
        for (int k = i; k < argc; k++) {
            if (k > i) text[len++] = ' ';
            size_t l = strlen(argv[k]);
            memcpy(text + len, argv[k], l);
            len += l;
        }
    } else {
        text = app_read_stream(stdin, (size_t)256 << 20, &len);
        if (!text) { app_error("tokenize: cannot read standard input"); goto done; }
    }

    llm_model_params mp = llm_model_default_params();
    mp.vocab_only = true;
    char err[512] = "";
    int st = llm_model_load(path, &mp, &m, err, sizeof err);
    if (st != LLM_OK) {
        app_error("%s", err[0] ? err : llm_status_str(st));
        goto done;
    }
    if (llm_n_vocab(m) <= 0) {
        app_error("%s: the file has no tokenizer", path);
        goto done;
    }

    size_t n = 0, cap = len + 8;
    ids = malloc(cap * sizeof *ids);
    if (!ids) { app_error("tokenize: out of memory"); goto done; }
    st = llm_tokenize(m, text, len, bos, special, ids, cap, &n);
    if (st == LLM_ERR_ARG && n > cap) {
        int32_t *more = realloc(ids, n * sizeof *ids);
        if (!more) { app_error("tokenize: out of memory"); goto done; }
        ids = more;
        cap = n;
        st = llm_tokenize(m, text, len, bos, special, ids, cap, &n);
    }
    if (st != LLM_OK) {
        app_error("tokenize: %s", llm_status_str(st));
        goto done;
    }
    for (size_t k = 0; k < n; k++) {
        if (k) putchar(' ');
        if (pieces) {
            size_t pl = 0;
            const char *p = llm_token_piece(m, ids[k], &pl);
            fwrite(p ? p : "?", 1, p ? pl : 1, stdout);
        } else {
            printf("%d", ids[k]);
        }
    }
    putchar('\n');
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    free(ids);
    free(text);
    llm_model_free(m);
    return rc;
}
