/* cmd_generate.c — `mrag generate`: continue a prompt (or answer it with
 * the chat template) and stream only the generated text to stdout. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/app.h"
#include "llm/llm.h"

static const char *generate_usage =
    "usage: mrag generate -m MODEL.gguf -p TEXT [options]\n"
    "\n"
    "Continues TEXT with the in-process engine and writes only the generated\n"
    "text to stdout, as it is produced. \"-p -\" reads the prompt from stdin.\n"
    "\n"
    "  -m, --model FILE      the model (default $MRAG_MODEL)\n"
    "  -p, --prompt TEXT     the prompt\n"
    "  -n N                  at most N new tokens (default 128; -1 = until EOS)\n"
    "  --chat                wrap the prompt in the Mistral instruct template\n"
    "  --system TEXT         with --chat: a system prompt (folded into the turn)\n"
    "  --temp T              temperature (default 0.8; 0 = greedy)\n"
    "  --top-k K             keep the K most likely tokens (default 40; 0 = off)\n"
    "  --top-p P             keep the smallest set reaching probability P (default 0.95; 1 = off)\n"
    "  --min-p P             drop tokens below P x the top probability (default 0.05; 0 = off)\n"
    "  --repeat-penalty R    penalise the last tokens (default 1 = off)\n"
    "  --repeat-last-n N     how many tokens the penalty looks back (default 64)\n"
    "  --seed S              random seed (default: a new one each run)\n"
    "  --stop TEXT           stop before TEXT (not printed); may be repeated\n"
    "  --threads N           threads (default: all cores)\n"
    "  --lora FILE[:SCALE]   apply a LoRA adapter (llama.cpp GGUF format; scale\n"
    "                        default 1); repeatable\n"
    "  --ctx N               context size in tokens (default min(model's, 4096))\n"
    "  -v, --verbose         timings and token counts on stderr\n"
    "\n"
    "Ctrl-C stops the generation. Exit status: 0 done, 1 error, 2 usage,\n"
    "130 interrupted.\n";

#define GEN_MAX_STOP_ARGS 16

static volatile int gen_cancel;

static void on_sigint(int sig) {
    (void)sig;
    gen_cancel = 1;
}

typedef struct {
    bool write_failed;
    bool ends_in_newline;
    size_t bytes;
} gen_out;

/* Writes a chunk of generated text and flushes it; stops on a write error
 * (e.g. the reader of a pipe went away). */
static int write_text(void *user, const char *text, size_t len) {
    gen_out *o = user;
    if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0) {
        o->write_failed = true;
        return 1;
    }
    o->bytes += len;
    o->ends_in_newline = len > 0 && text[len - 1] == '\n';
    return 0;
}

/* Tokenizes text into a malloc'd array (*out, owned by the caller). */
static int tokenize_all(const llm_model *m, const char *text, bool add_bos, bool special, int32_t **out,
                        int *n_out) {
    size_t len = strlen(text), need = 0;
    size_t cap = len + 8;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return LLM_ERR_NOMEM;
    int rc = llm_tokenize(m, text, len, add_bos, special, ids, cap, &need);
    if (rc == LLM_ERR_ARG && need > cap) {
        int32_t *bigger = realloc(ids, need * sizeof *ids);
        if (!bigger) {
            free(ids);
            return LLM_ERR_NOMEM;
        }
        ids = bigger;
        rc = llm_tokenize(m, text, len, add_bos, special, ids, need, &need);
    }
    if (rc != LLM_OK || need > (size_t)INT32_MAX) {
        free(ids);
        return rc != LLM_OK ? rc : LLM_ERR_ARG;
    }
    *out = ids;
    *n_out = (int)need;
    return LLM_OK;
}

static const char *stop_reason_name(llm_stop_reason r) {
    switch (r) {
    case LLM_STOP_LENGTH: return "token limit (-n)";
    case LLM_STOP_EOS: return "end of sequence";
    case LLM_STOP_STRING: return "stop string";
    case LLM_STOP_CANCELLED: return "cancelled";
    case LLM_STOP_CONTEXT_FULL: return "context full";
    }
    return "?";
}

/* The command line of `mrag generate`. */
typedef struct {
    const char *mflag, *prompt_arg, *system;
    const char *stops[GEN_MAX_STOP_ARGS];
    int n_stops;
    bool chat, verbose;
    long n_predict, threads, ctx;
    llm_sampler_params sp;
    app_lora_opts lora;
} gen_opts;

enum { O_CHAT = 256, O_VERBOSE, O_SYSTEM, O_TEMP, O_TOP_K, O_TOP_P, O_MIN_P, O_REPEAT_PENALTY,
       O_REPEAT_LAST_N, O_SEED, O_THREADS, O_CTX, O_STOP, O_LORA };
static const app_opt generate_opts[] = {
    {"model", 'm', "FILE", 'm'},
    {"prompt", 'p', "TEXT", 'p'},
    {NULL, 'n', "N", 'n'},
    {"chat", 0, NULL, O_CHAT},
    {"system", 0, "TEXT", O_SYSTEM},
    {"temp", 0, "T", O_TEMP},
    {"top-k", 0, "K", O_TOP_K},
    {"top-p", 0, "P", O_TOP_P},
    {"min-p", 0, "P", O_MIN_P},
    {"repeat-penalty", 0, "R", O_REPEAT_PENALTY},
    {"repeat-last-n", 0, "N", O_REPEAT_LAST_N},
    {"seed", 0, "S", O_SEED},
    {"stop", 0, "TEXT", O_STOP},
    {"threads", 0, "N", O_THREADS},
    {"ctx", 0, "N", O_CTX},
    {"verbose", 'v', NULL, O_VERBOSE},
    {"lora", 0, "FILE[:SCALE]", O_LORA},
    {0},
};
const app_opt *const app_generate_opts[] = {generate_opts, NULL};

/* A float option in [lo, hi] into *out; false after the usage error. */
static bool opt_float(const app_args *ap, const char *v, double lo, double hi, float *out) {
    double d;
    if (!app_opt_double(ap, v, lo, hi, &d)) return false;
    *out = (float)d;
    return true;
}

/* Parses argv into o; returns 0, or 2 (usage error, printed). */
static int gen_parse_opts(gen_opts *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->n_predict = 128;
    o->sp = llm_sampler_default_params();
    app_args ap;
    app_args_init(&ap, "generate", app_generate_opts, argc, argv);
    const char *v;
    int id;
    while ((id = app_args_next(&ap, &v)) > 0) {
        bool ok = true;
        long lv = 0;
        switch (id) {
        case O_CHAT: o->chat = true; break;
        case O_LORA: if (app_lora_add(&o->lora, "generate", (char *)v) != 0) return 2; break;
        case O_VERBOSE: o->verbose = true; break;
        case 'm': o->mflag = v; break;
        case 'p': o->prompt_arg = v; break;
        case O_SYSTEM: o->system = v; break;
        case 'n': ok = app_opt_long(&ap, v, -1, 1L << 30, &o->n_predict); break;
        case O_TEMP: ok = opt_float(&ap, v, -1e9, 1e9, &o->sp.temperature); break;
        case O_TOP_K: ok = app_opt_long(&ap, v, 0, 1L << 30, &lv); o->sp.top_k = (int)lv; break;
        case O_TOP_P: ok = opt_float(&ap, v, 0, 1, &o->sp.top_p); break;
        case O_MIN_P: ok = opt_float(&ap, v, 0, 1, &o->sp.min_p); break;
        case O_REPEAT_PENALTY: ok = opt_float(&ap, v, 1e-3, 1e3, &o->sp.repeat_penalty); break;
        case O_REPEAT_LAST_N: ok = app_opt_long(&ap, v, 0, 65536, &lv); o->sp.repeat_last_n = (int)lv; break;
        case O_SEED:
            if (!app_parse_u64(v, &o->sp.seed)) ok = app_opt_bad(&ap, v, "not a whole number from 0 to 2^64-1");
            break;
        case O_THREADS: ok = app_opt_long(&ap, v, 1, 256, &o->threads); break;
        case O_CTX: ok = app_opt_long(&ap, v, 1, 1L << 24, &o->ctx); break;
        case O_STOP:
            if (o->n_stops == GEN_MAX_STOP_ARGS || !*v) {
                app_usage_error(&ap, "--stop takes a non-empty text, at most %d times", GEN_MAX_STOP_ARGS);
                return 2;
            }
            o->stops[o->n_stops++] = v;
            break;
        }
        if (!ok) return 2;
    }
    if (id < 0) return 2;
    if (ap.npos > 0) return app_usage_error(&ap, "unexpected argument '%s' (the prompt is given with -p)", argv[1]);
    if (!app_model_path(o->mflag) || !o->prompt_arg) {
        return app_usage_error(&ap, "%s is required",
                               !app_model_path(o->mflag) ? "a model (-m or $MRAG_MODEL)" : "a prompt (-p)");
    }
    if (o->system && !o->chat) {
        app_error("generate: --system needs --chat");
        return 2;
    }
    return 0;
}

/* The prompt's tokens: -p TEXT (or stdin for "-"), in the chat template
 * with --chat. *ids owned. Returns 0, 1 (error) or 2 (empty prompt);
 * printed. */
static int gen_prompt_ids(const gen_opts *o, const llm_model *m, int32_t **ids, int *n_ids) {
    char *stdin_text = NULL, *chat_text = NULL;
    int rc = 1;
    const char *prompt = o->prompt_arg;
    if (strcmp(o->prompt_arg, "-") == 0) {
        if (!(stdin_text = app_read_stream(stdin, (size_t)64 << 20, NULL))) {
            app_error("generate: cannot read the prompt from stdin");
            goto done;
        }
        prompt = stdin_text;
    }
    if (o->chat) {
        llm_chat_msg msgs[2] = {{"system", o->system ? o->system : ""}, {"user", prompt}};
        if (!(chat_text = llm_chat_format(msgs, 2))) {
            app_error("generate: cannot format the chat prompt");
            goto done;
        }
    }
    int trc = o->chat ? tokenize_all(m, chat_text, false, true, ids, n_ids) : tokenize_all(m, prompt, true, false, ids, n_ids);
    if (trc != LLM_OK) {
        app_error("generate: cannot tokenize the prompt (%s)", llm_status_str(trc));
        goto done;
    }
    if (*n_ids == 0) {
        app_error("generate: the prompt is empty");
        rc = 2;
        goto done;
    }
    rc = 0;
done:
    free(chat_text);
    free(stdin_text);
    return rc;
}

/* Generates from ids on a new context, text to stdout; Ctrl-C stops it.
 * Returns the exit status. */
static int gen_run(const gen_opts *o, const llm_model *m, const int32_t *ids, int n_ids) {
    char err[512];
    llm_context *c = NULL;
    llm_context_params cp = llm_context_default_params();
    cp.n_threads = (int)o->threads;
    cp.n_ctx = (int)o->ctx;
    if (llm_context_new(m, &cp, &c, err, sizeof err) != LLM_OK) return app_error("%s", err);
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    bool sa_set = sigaction(SIGINT, &sa, &old_sa) == 0;
    gen_cancel = 0;
    gen_out out = {0};
    llm_generate_params gp = llm_generate_default_params();
    gp.n_predict = (int)o->n_predict;
    gp.sampling = o->sp;
    gp.stop = o->n_stops ? o->stops : NULL;
    gp.n_stop = o->n_stops;
    gp.on_text = write_text;
    gp.user = &out;
    gp.cancel = &gen_cancel;
    gp.continuation = !o->chat;
    llm_generate_result res;
    int grc = llm_generate(c, ids, n_ids, &gp, &res), rc = 1;
    if (out.bytes > 0 && !out.ends_in_newline && !out.write_failed && isatty(STDOUT_FILENO)) {
        fputc('\n', stdout);
        fflush(stdout);
    }
    if (o->verbose) {
        fprintf(stderr, "mrag: prompt %d tokens in %.1f ms (%.1f tok/s)\n", res.n_prompt, res.prefill_ms,
                res.prefill_ms > 0 ? res.n_prompt * 1e3 / res.prefill_ms : 0.0);
        fprintf(stderr, "mrag: generated %d tokens in %.1f ms (%.1f tok/s); stopped: %s\n", res.n_generated,
                res.decode_ms, res.decode_ms > 0 ? res.n_generated * 1e3 / res.decode_ms : 0.0,
                stop_reason_name(res.stop_reason));
    }
    if (grc == LLM_ERR_CANCELLED && gen_cancel) rc = 130;
    else if (out.write_failed) app_error("generate: cannot write to stdout");
    else if (grc != LLM_OK) app_error("%s", llm_context_error(c));
    else {
        if (res.stop_reason == LLM_STOP_CONTEXT_FULL) fprintf(stderr, "mrag: note: the context is full (see --ctx)\n");
        rc = 0;
    }
    if (sa_set) sigaction(SIGINT, &old_sa, NULL);
    llm_context_free(c);
    return rc;
}

/* Contract: loads the model, generates from -p TEXT and streams the text to
 * stdout; timings go to stderr with --verbose. Returns 0 on success, 1 on
 * model/engine errors, 2 on usage errors, 130 when interrupted. */
int app_cmd_generate(int argc, char **argv) {
    if (app_wants_help(argc, argv)) {
        fputs(generate_usage, stdout);
        return 0;
    }
    gen_opts o;
    int rc = gen_parse_opts(&o, argc, argv);
    if (rc != 0) return rc;
    char err[512];
    llm_model *m = NULL;
    llm_model_params mp = llm_model_default_params();
    app_lora_model_params(&o.lora, &mp);
    if (llm_model_load(app_model_path(o.mflag), &mp, &m, err, sizeof err) != LLM_OK) return app_error("%s", err);
    int32_t *ids = NULL;
    int n_ids = 0;
    if ((rc = gen_prompt_ids(&o, m, &ids, &n_ids)) == 0) rc = gen_run(&o, m, ids, n_ids);
    llm_model_free(m);
    free(ids);
    return rc;
}
