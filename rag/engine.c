/* engine.c — the generation interface (rag/engine.h): the engine wrapper,
 * the local engine on llm/, and the token estimate used without a
 * tokenizer. */
#include "rag/engine.h"
#include "rag/util_internal.h"

#include "llm/llm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rag_engine {
    rag_engine_ops ops;
    void *self;
    char err[256];      /* the wrapper's own complaints (bad sampling) */
};

rag_sampling rag_sampling_default(void) {
    rag_sampling s;
    memset(&s, 0, sizeof s);
    s.max_tokens = 512;
    s.seed = 42;
    return s;
}

const char *rag_stop_reason_str(rag_stop_reason r) {
    switch (r) {
    case RAG_STOP_LENGTH: return "length";
    case RAG_STOP_EOS: return "eos";
    case RAG_STOP_STRING: return "stop";
    case RAG_STOP_CANCELLED: return "cancelled";
    case RAG_STOP_CONTEXT_FULL: return "context_full";
    }
    return "?";
}

rag_engine *rag_engine_new(const rag_engine_ops *ops, void *self) {
    rag_engine *e = ops && ops->generate ? calloc(1, sizeof *e) : NULL;
    if (!e) {
        if (ops && ops->destroy) ops->destroy(self);
        return NULL;
    }
    e->ops = *ops;
    e->self = self;
    return e;
}

void rag_engine_free(rag_engine *e) {
    if (!e) return;
    if (e->ops.destroy) e->ops.destroy(e->self);
    free(e);
}

const char *rag_engine_errmsg(const rag_engine *e) {
    if (!e) return "out of memory";
    if (e->err[0]) return e->err;
    const char *m = e->ops.errmsg ? e->ops.errmsg(e->self) : NULL;
    return m ? m : "";
}

#define eng_err(e, rc, ...) rag_errf((e)->err, sizeof (e)->err, (rc), __VA_ARGS__)

/* Contract: see engine.h. */
int rag_engine_generate(rag_engine *e, const rag_msg *msgs, size_t n, const rag_sampling *s, rag_emit_fn emit,
                        void *emit_user, volatile int *cancel, rag_gen_stats *st) {
    rag_gen_stats local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    st->n_prompt = -1;
    if (!e) return RAG_ERR_ARG;
    e->err[0] = 0;
    if (!msgs || !n || !s || s->max_tokens < 1) return eng_err(e, RAG_ERR_ARG, "engine: no messages or no answer budget");
    if (s->n_stop > RAG_ENGINE_MAX_STOP || (s->n_stop && !s->stop))
        return eng_err(e, RAG_ERR_ARG, "engine: at most %d stop strings", RAG_ENGINE_MAX_STOP);
    for (size_t i = 0; i < s->n_stop; i++)
        if (!s->stop[i] || !*s->stop[i]) return eng_err(e, RAG_ERR_ARG, "engine: an empty stop string");
    return e->ops.generate(e->self, msgs, n, s, emit, emit_user, cancel, st);
}

/* Contract: see engine.h. */
int rag_engine_embed(rag_engine *e, const char *const *texts, const size_t *lens, int n, float *out, int dim) {
    if (!e || n < 0 || (n && (!texts || !lens || !out)) || dim < 1) return RAG_ERR_ARG;
    e->err[0] = 0;
    if (!e->ops.embed) return eng_err(e, RAG_ERR_UNSUPPORTED, "engine: this engine does not embed");
    return e->ops.embed(e->self, texts, lens, n, out, dim);
}

int rag_engine_embed_one(void *engine, const char *text, size_t len, float *out, int dim) {
    const char *t = text ? text : "";
    return rag_engine_embed(engine, &t, &len, 1, out, dim);
}

int rag_engine_count(void *engine, const char *text, size_t len) {
    rag_engine *e = engine;
    if (!e) return -1;
    if (!e->ops.count) return rag_count_estimate(NULL, text, len);
    return e->ops.count(e->self, text, len);
}

char *rag_msgs_format(const rag_msg *msgs, size_t n) {
    if (!msgs || !n || n > 100000) return NULL;
    llm_chat_msg *m = malloc(n * sizeof *m);
    if (!m) return NULL;
    for (size_t i = 0; i < n; i++) {
        m[i].role = msgs[i].role;
        m[i].content = msgs[i].content;
    }
    char *s = llm_chat_format(m, n);
    free(m);
    return s;
}

/* Contract: see engine.h. Weights in 1/15 token: ASCII letters and blanks 6
 * (2.5 bytes a token; prose averages 3.3-4.2 with Mistral's tokenizer),
 * blanks before digits or symbols, digits and ASCII punctuation 15 (Mistral
 * splits digits; code is mostly one symbol a token), other bytes 10 (2 of 3
 * UTF-8 bytes of CJK, 1.3 per umlaut); plus one. Measured against the real
 * tokenizer: docs/remote.md. */
int rag_count_estimate(void *user, const char *text, size_t len) {
    (void)user;
    uint64_t w = 0;
    for (size_t i = 0; text && i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x80) w += 10;
        else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) w += 6;
        else if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            /* a blank joins the next word, but stands alone before a digit or a symbol */
            unsigned char d = i + 1 < len ? (unsigned char)text[i + 1] : 0;
            bool letter = (d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z') || d >= 0x80;
            w += letter ? 6 : 15;
        } else w += 15;
    }
    uint64_t t = (w + 14) / 15 + 1;
    return t > 0x7fffffff ? 0x7fffffff : (int)t;
}

/* ------------------------------------------------------------ local engine */

typedef struct {
    const llm_model *model;
    rag_local_params p;
    llm_context *ctx;           /* created lazily unless p.lazy is false */
    int32_t *toks;              /* prompt tokens, grown as needed */
    size_t toks_cap;
    char scope[128];            /* cache_scope of the prompt the context holds */
    char err[1024];
} local_engine;

rag_local_params rag_local_default_params(void) {
    rag_local_params p;
    memset(&p, 0, sizeof p);
    p.embd_layer = -1;
    p.lazy = true;
    return p;
}

#define local_err(le, rc, ...) rag_errf((le)->err, sizeof (le)->err, (rc), __VA_ARGS__)

int rag_count_prompt_tokens(void *model, const char *text, size_t len) {
    int32_t tmp[1];
    size_t n = 0;
    int st = llm_tokenize((const llm_model *)model, text, len, false, true, tmp, 0, &n);
    if (st != LLM_OK && st != LLM_ERR_ARG) return -1;
    return n > (size_t)0x7fffffff ? -1 : (int)n;
}

static int local_ensure_ctx(local_engine *le) {
    if (le->ctx) return RAG_OK;
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = le->p.n_ctx;
    cp.n_threads = le->p.n_threads;
    cp.embd_layer = le->p.embd_layer;
    char e[512];
    if (llm_context_new(le->model, &cp, &le->ctx, e, sizeof e) != LLM_OK) return local_err(le, RAG_ERR_NOMEM, "%s", e);
    return RAG_OK;
}

/* Tokenizes a formatted prompt (control strings parsed) into le->toks. */
static int local_tokenize(local_engine *le, const char *prompt, size_t len, int *n_out) {
    size_t n = 0;
    int st = llm_tokenize(le->model, prompt, len, false, true, le->toks, le->toks_cap, &n);
    if (st == LLM_ERR_ARG && n > le->toks_cap) {
        int32_t *t = realloc(le->toks, n * sizeof *t);
        if (!t) return local_err(le, RAG_ERR_NOMEM, "out of memory");
        le->toks = t;
        le->toks_cap = n;
        st = llm_tokenize(le->model, prompt, len, false, true, le->toks, le->toks_cap, &n);
    }
    if (st != LLM_OK || n > 0x7fffffff)
        return local_err(le, RAG_ERR_ARG, "tokenizing the prompt failed: %s", llm_status_str(st));
    *n_out = (int)n;
    return RAG_OK;
}

static rag_stop_reason stop_from_llm(llm_stop_reason r) {
    switch (r) {
    case LLM_STOP_LENGTH: return RAG_STOP_LENGTH;
    case LLM_STOP_EOS: return RAG_STOP_EOS;
    case LLM_STOP_STRING: return RAG_STOP_STRING;
    case LLM_STOP_CANCELLED: return RAG_STOP_CANCELLED;
    case LLM_STOP_CONTEXT_FULL: return RAG_STOP_CONTEXT_FULL;
    }
    return RAG_STOP_EOS;
}

static int local_generate(void *self, const rag_msg *msgs, size_t n, const rag_sampling *s, rag_emit_fn emit,
                          void *emit_user, volatile int *cancel, rag_gen_stats *st) {
    local_engine *le = self;
    le->err[0] = 0;
    char *prompt = rag_msgs_format(msgs, n);
    if (!prompt) return local_err(le, RAG_ERR_FORMAT, "the messages do not fit the chat template");
    int nt = 0, rc = local_tokenize(le, prompt, strlen(prompt), &nt);
    free(prompt);
    if (rc != RAG_OK) return rc;
    if ((rc = local_ensure_ctx(le)) != RAG_OK) return rc;
    llm_generate_params gp = llm_generate_default_params();
    /* the prompt is the whole sequence: what it shares with the previous
     * one (the preamble, earlier turns) keeps its KV cache */
    gp.reuse_prefix = true;
    /* another caller's prompt is not reused: start from an empty cache */
    const char *scope = s->cache_scope ? s->cache_scope : "";
    if (strncmp(le->scope, scope, sizeof le->scope) != 0) {
        llm_context_reset(le->ctx);
        snprintf(le->scope, sizeof le->scope, "%s", scope);
    }
    gp.n_predict = s->max_tokens;
    gp.sampling.temperature = s->temperature;
    gp.sampling.seed = s->seed;
    /* the template's end-of-turn strings, then the caller's */
    size_t n_turn = 0;
    const char *const *turn = llm_chat_stop_strings(&n_turn);
    const char *stops[8 + RAG_ENGINE_MAX_STOP];
    size_t ns = 0;
    for (size_t i = 0; i < n_turn && ns < 8; i++) stops[ns++] = turn[i];
    for (size_t i = 0; i < s->n_stop; i++) stops[ns++] = s->stop[i];
    gp.stop = stops;
    gp.n_stop = (int)ns;
    gp.on_text = emit;
    gp.user = emit_user;
    gp.cancel = cancel;
    llm_generate_result gr;
    memset(&gr, 0, sizeof gr);
    int lrc = llm_generate(le->ctx, le->toks, nt, &gp, &gr);
    st->n_prompt = gr.n_prompt;
    st->n_reused = gr.n_reused;
    st->n_generated = gr.n_generated;
    st->prefill_ms = gr.prefill_ms;
    st->decode_ms = gr.decode_ms;
    st->stop = stop_from_llm(gr.stop_reason);
    if (lrc != LLM_OK && lrc != LLM_ERR_CANCELLED)
        return local_err(le, RAG_ERR_IO, "generation failed: %s", llm_context_error(le->ctx));
    return RAG_OK;
}

static int local_embed(void *self, const char *const *texts, const size_t *lens, int n, float *out, int dim) {
    local_engine *le = self;
    le->err[0] = 0;
    if (dim != llm_n_embd(le->model))
        return local_err(le, RAG_ERR_MISMATCH, "the model's embedding has %d dimensions, not %d", llm_n_embd(le->model), dim);
    int rc = local_ensure_ctx(le);
    if (rc != RAG_OK) return rc;
    if (llm_embed_batch(le->ctx, texts, lens, n, out) != LLM_OK)
        return local_err(le, RAG_ERR_IO, "%s", llm_context_error(le->ctx));
    return RAG_OK;
}

static int local_count(void *self, const char *text, size_t len) {
    return rag_count_prompt_tokens((void *)((local_engine *)self)->model, text, len);
}

static const char *local_errmsg(void *self) { return ((local_engine *)self)->err; }

static void local_destroy(void *self) {
    local_engine *le = self;
    if (!le) return;
    llm_context_free(le->ctx);
    free(le->toks);
    free(le);
}

/* Contract: see engine.h. */
int rag_engine_local_new(const llm_model *m, const rag_local_params *p, rag_engine **out, char *err, size_t errlen) {
    *out = NULL;
    if (!m) {
        snprintf(err, errlen, "engine: no model");
        return RAG_ERR_ARG;
    }
    local_engine *le = calloc(1, sizeof *le);
    if (!le) {
        snprintf(err, errlen, "out of memory");
        return RAG_ERR_NOMEM;
    }
    le->model = m;
    le->p = p ? *p : rag_local_default_params();
    if (!le->p.lazy && local_ensure_ctx(le) != RAG_OK) {
        snprintf(err, errlen, "%s", le->err);
        local_destroy(le);
        return RAG_ERR_NOMEM;
    }
    static const rag_engine_ops ops = {
        .generate = local_generate,
        .embed = local_embed,
        .count = local_count,
        .errmsg = local_errmsg,
        .destroy = local_destroy,
    };
    if (!(*out = rag_engine_new(&ops, le))) {
        snprintf(err, errlen, "out of memory");
        return RAG_ERR_NOMEM;
    }
    return RAG_OK;
}
