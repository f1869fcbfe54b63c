/* cmd_model.c — `mrag model-info` and `mrag embed`. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "llm/llm.h"

static const char *model_info_usage =
    "usage: mrag model-info [-m] MODEL.gguf\n"
    "\n"
    "Prints a GGUF model's architecture, hyperparameters, tensor types and\n"
    "counts, vocabulary size, special tokens and the memory it needs (mapped\n"
    "weights plus the context ask and serve make by default: the model's\n"
    "training context, at most 4096 tokens).\n"
    "\n"
    "  -m, --model FILE  the model (default: the argument, else $MRAG_MODEL)\n";

static void print_bytes(const char *label, uint64_t b) {
    printf("%-22s %" PRIu64 " bytes (%.1f MiB)\n", label, b, (double)b / (1024.0 * 1024.0));
}

static const app_opt model_info_opts[] = {{"model", 'm', "FILE", 'm'}, {0}};
const app_opt *const app_model_info_opts[] = {model_info_opts, NULL};

/* Contract: argv[1] (or -m/$MRAG_MODEL) names a GGUF; prints its facts to
 * stdout; returns 0, 1 when the file cannot be loaded, 2 on usage errors. */
int app_cmd_model_info(int argc, char **argv) {
    if (app_wants_help(argc, argv)) {
        fputs(model_info_usage, stdout);
        return 0;
    }
    const char *path = NULL;
    app_args ap;
    app_args_init(&ap, "model-info", app_model_info_opts, argc, argv);
    const char *v;
    int id;
    while ((id = app_args_next(&ap, &v)) > 0) path = v;
    if (id < 0) return 2;
    if (ap.npos > 1 || (ap.npos == 1 && path))
        return app_usage_error(&ap, "one model file only ('%s')", argv[ap.npos]);
    if (ap.npos == 1) path = argv[1];
    path = app_model_path(path);
    if (!path) return app_usage_error(&ap, "no model (give MODEL.gguf, -m FILE or set MRAG_MODEL)");
    llm_model *m = NULL;
    char err[512];
    llm_model_params mp = llm_model_default_params();
    int rc = llm_model_load(path, &mp, &m, err, sizeof err);
    if (rc != LLM_OK) {
        /* a vocab-only file still has facts to show */
        mp.vocab_only = true;
        if (llm_model_load(path, &mp, &m, NULL, 0) != LLM_OK) return app_error("%s", err);
        fprintf(stderr, "mrag: note: %s\nmrag: showing the vocabulary only\n", err);
    }
    llm_model_info in;
    llm_model_get_info(m, &in);
    printf("%-22s %s\n", "file", in.path);
    print_bytes("file size", in.file_size);
    printf("%-22s %s\n", "name", in.name && in.name[0] ? in.name : "(none)");
    printf("%-22s %s\n", "architecture", in.arch);
    if (!mp.vocab_only) {
        printf("%-22s %s\n", "kind", in.n_expert > 0 ? "mixture of experts (Mixtral-style)" : "dense (Llama/Mistral)");
        printf("%-22s %d\n", "embedding_length", in.n_embd);
        printf("%-22s %d\n", "block_count", in.n_layer);
        printf("%-22s %d\n", "head_count", in.n_head);
        printf("%-22s %d\n", "head_count_kv", in.n_head_kv);
        printf("%-22s %d\n", "head_dim", in.head_dim);
        printf("%-22s %d\n", "feed_forward_length", in.n_ff);
        printf("%-22s %d\n", "rope.dimension_count", in.n_rot);
        printf("%-22s %g\n", "rope.freq_base", (double)in.rope_theta);
        printf("%-22s %g\n", "rms_epsilon", (double)in.rms_eps);
        printf("%-22s %d\n", "context_length", in.n_ctx_train);
        if (in.swa_window > 0) printf("%-22s %d\n", "sliding_window", in.swa_window);
        else printf("%-22s none\n", "sliding_window");
        if (in.n_expert > 0) printf("%-22s %d (top %d)\n", "experts", in.n_expert, in.n_expert_used);
        printf("%-22s %s\n", "output head", in.tied_output ? "tied to token_embd" : "output.weight");
    }
    printf("%-22s %d\n", "vocab size", in.n_vocab);
    printf("%-22s bos %d, eos %d\n", "special tokens", in.bos, in.eos);
    printf("%-22s %d:", "tensors", in.n_tensors);
    for (int t = 0; t < 40; t++)
        if (in.tensor_type_count[t]) printf(" %s x%d", llm_type_name((uint32_t)t), in.tensor_type_count[t]);
    printf("\n");
    printf("%-22s %" PRIu64 " (%.2f M)\n", "parameters", in.n_params, (double)in.n_params / 1e6);
    print_bytes("weights (mapped)", in.weight_bytes);
    if (in.packed_bytes) {
        print_bytes("weights repacked", in.packed_bytes);
        printf("%-22s %.2f s (the matmuls read this copy; docs/kernels.md)\n", "repacking took", in.pack_seconds);
    }
    if (!mp.vocab_only) {
        int n_ctx = in.n_ctx_train > 0 && in.n_ctx_train < 4096 ? in.n_ctx_train : 4096;
        uint64_t ctx = llm_context_bytes(m, n_ctx, 512, false);
        char label[64];
        snprintf(label, sizeof label, "context %d (f16 KV)", n_ctx);
        print_bytes(label, ctx);
        snprintf(label, sizeof label, "total for %d ctx", n_ctx);
        print_bytes(label, ctx + in.weight_bytes);
    }
    llm_model_free(m);
    return 0;
}

enum { O_LAYER = 256, O_THREADS, O_LORA, O_FINGERPRINT };
static const app_opt embed_opts[] = {
    {"model", 'm', "FILE", 'm'},
    {"layer", 0, "L", O_LAYER},
    {"threads", 0, "N", O_THREADS},
    {"lora", 0, "FILE[:SCALE]", O_LORA},
    {"fingerprint", 0, NULL, O_FINGERPRINT},
    {0},
};
const app_opt *const app_embed_opts[] = {embed_opts, NULL};

static const char *embed_usage =
    "usage: mrag embed -m MODEL.gguf [--layer L] [--threads N] [--lora FILE[:S]] TEXT...\n"
    "\n"
    "Prints the embedding of TEXT (the words joined by spaces; \"-\" reads stdin)\n"
    "as a JSON array: the mean over its tokens (BOS included) of the final-norm\n"
    "hidden states, L2-normalised.\n"
    "\n"
    "  -m FILE       the model (default $MRAG_MODEL)\n"
    "  --layer L     pool the hidden state after layer L (0-based) instead\n"
    "  --threads N   threads (default: all cores)\n"
    "  --lora FILE[:SCALE]  apply a LoRA adapter (llama.cpp GGUF format; scale\n"
    "                default 1); repeatable\n"
    "  --fingerprint print {\"fingerprint\": ..., \"embedding\": [...]}: the\n"
    "                embedding fingerprint an index built with these options records\n";

/* Contract: prints one JSON array of n_embd floats on stdout; 0 ok, 1 on
 * model or embedding errors, 2 on usage errors. */
int app_cmd_embed(int argc, char **argv) {
    if (app_wants_help(argc, argv)) {
        fputs(embed_usage, stdout);
        return 0;
    }
    const char *mflag = NULL;
    int layer = -1, threads = 0, rc = 1;
    char *text = NULL;
    size_t tlen = 0;
    llm_model *m = NULL;
    llm_context *c = NULL;
    float *vec = NULL;
    app_lora_opts lora = {0};
    bool show_fp = false;
    int first_text = 1;
    app_args ap;
    app_args_init(&ap, "embed", app_embed_opts, argc, argv);
    const char *v;
    int id;
    while ((id = app_args_next(&ap, &v)) > 0) {
        if (id == 'm') mflag = v;
        else if (id == O_LAYER && !app_opt_int(&ap, v, 0, 100000, &layer)) id = -1;
        else if (id == O_THREADS && !app_opt_int(&ap, v, 1, 256, &threads)) id = -1;
        else if (id == O_LORA && app_lora_add(&lora, "embed", (char *)v) != 0) id = -1;
        else if (id == O_FINGERPRINT) show_fp = true;
        if (id < 0) break;
    }
    if (id < 0) { rc = 2; goto done; }
    argc = ap.npos + 1;
    const char *path = app_model_path(mflag);
    if (!path || first_text >= argc) {
        app_usage_error(&ap, "%s", !path ? "no model (give -m FILE or set MRAG_MODEL)" : "no TEXT");
        rc = 2;
        goto done;
    }
    if (first_text == argc - 1 && strcmp(argv[first_text], "-") == 0) {
        if (!(text = app_read_stream(stdin, (size_t)64 << 20, &tlen))) { app_error("embed: cannot read stdin"); goto done; }
    } else {
        for (int i = first_text; i < argc; i++) tlen += strlen(argv[i]) + 1;
        if (!(text = malloc(tlen + 1))) { app_error("embed: out of memory"); goto done; }
        text[0] = 0;
        size_t o = 0;
        for (int i = first_text; i < argc; i++) {
            size_t l = strlen(argv[i]);
            if (i > first_text) text[o++] = ' ';
            memcpy(text + o, argv[i], l);
            o += l;
        }
        text[o] = 0;
        tlen = o;
    }
    char err[512];
    llm_model_params mp = llm_model_default_params();
    app_lora_model_params(&lora, &mp);
    if (llm_model_load(path, &mp, &m, err, sizeof err) != LLM_OK) { app_error("%s", err); goto done; }
    llm_context_params cp = llm_context_default_params();
    cp.n_threads = threads;
    cp.embd_layer = layer;
    if (llm_context_new(m, &cp, &c, err, sizeof err) != LLM_OK) { app_error("%s", err); goto done; }
    int dim = llm_n_embd(m);
    if (!(vec = malloc((size_t)dim * sizeof *vec))) { app_error("embed: out of memory"); goto done; }
    if (llm_embed(c, text, tlen, vec) != LLM_OK) { app_error("%s", llm_context_error(c)); goto done; }
    if (show_fp) {
        char fp[65];
        if (llm_model_fingerprint(m, fp) != LLM_OK) { app_error("embed: cannot hash the model"); goto done; }
        printf("{\"fingerprint\": \"%s\", \"embedding\": ", fp);
    }
    putchar('[');
    for (int i = 0; i < dim; i++) printf(i ? ", %.9g" : "%.9g", (double)vec[i]);
    printf(show_fp ? "]}\n" : "]\n");
    rc = 0;
done:
    free(vec);
    free(text);
    llm_context_free(c);
    llm_model_free(m);
    return rc;
}
