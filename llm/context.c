/* context.c — llm_context: the KV cache policy, llm_decode (batched prefill
 * and one-token decode), logits access and memory accounting.
 *
 * KV policy: without a sliding window (or with one no shorter than n_ctx)
 * the cache holds n_ctx positions and a call that would pass n_ctx returns
 * LLM_ERR_CONTEXT_FULL and changes nothing. With a window W < n_ctx the
 * cache is a rolling buffer of W slots (position p lives in slot p % W):
 * memory is bounded by W and positions keep counting, so the context never
 * fills (up to LLM_MAX_POS). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm/kernels.h"
#include "llm/model.h"

/* Positions stay far from INT32_MAX so pos + n never overflows. */
#define LLM_MAX_POS (1 << 30)

int llm_context_fail(llm_context *c, int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return rc;
}

llm_context_params llm_context_default_params(void) {
    llm_context_params p;
    memset(&p, 0, sizeof p);
    p.n_ctx = 0;
    p.n_batch = 512;
    p.n_threads = 0;
    p.kv_f32 = false;
    p.all_logits = false;
    p.embd_layer = -1;
    return p;
}

static int online_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n > 256 ? 256 : n) : 1;
}

/* Resolves defaults (n_ctx, n_batch, threads) and the window geometry. */
static void resolve(const llm_model *m, llm_context_params *p, int *window, int *kv_size) {
    if (p->n_ctx <= 0) p->n_ctx = m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096;
    if (p->n_batch <= 0) p->n_batch = 512;
    if (p->n_threads <= 0) p->n_threads = online_cores();
    int w = m->hp.swa_window;
    *window = w > 0 ? w : 0;
    *kv_size = (w > 0 && w < p->n_ctx) ? w : p->n_ctx;
    if (*kv_size == p->n_ctx && p->n_batch > p->n_ctx) p->n_batch = p->n_ctx;
}

uint64_t llm_context_bytes(const llm_model *m, int n_ctx, int n_batch, bool kv_f32) {
    if (!m || m->vocab_only || n_ctx < 0 || n_ctx > LLM_MAX_POS || n_batch < 0) return 0;
    llm_context_params p = llm_context_default_params();
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.kv_f32 = kv_f32;
    int window, kv_size;
    resolve(m, &p, &window, &kv_size);
    return llm_state_bytes(m, kv_size, p.n_batch, p.n_threads, kv_f32, false) +
           (uint64_t)p.n_batch * (2 * sizeof(int32_t) + (size_t)m->hp.n_embd * sizeof(float));
}

int llm_context_new(const llm_model *m, const llm_context_params *params, llm_context **out, char *err,
                    size_t errlen) {
    int rc = LLM_OK;
    llm_context *c = NULL;
    if (out) *out = NULL;
    if (!m || !out) {
        if (err && errlen) snprintf(err, errlen, "llm_context_new: model and out are required");
        return LLM_ERR_ARG;
    }
    if (m->vocab_only) {
        if (err && errlen) snprintf(err, errlen, "%s: loaded vocab-only; it has no weights to run", m->path);
        return LLM_ERR_ARG;
    }
    llm_context_params p = params ? *params : llm_context_default_params();
    if (p.embd_layer < -1 || p.embd_layer >= m->hp.n_layer) {
        if (err && errlen)
            snprintf(err, errlen, "embedding layer %d is out of range (-1 = final norm, 0..%d)", p.embd_layer,
                     m->hp.n_layer - 1);
        return LLM_ERR_ARG;
    }
    if (p.n_lora < 0 || p.n_lora > LLM_MAX_LORA || (p.n_lora > 0 && !p.loras)) {
        if (err && errlen) snprintf(err, errlen, "bad LoRA list (%d adapters, at most %d)", p.n_lora, LLM_MAX_LORA);
        return LLM_ERR_ARG;
    }
    if (p.n_ctx < 0 || p.n_ctx > LLM_MAX_POS || p.n_batch < 0 || p.n_threads < 0 || p.n_threads > 256) {
        if (err && errlen) snprintf(err, errlen, "bad context sizes (n_ctx %d, n_batch %d, threads %d)", p.n_ctx,
                                    p.n_batch, p.n_threads);
        return LLM_ERR_ARG;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        rc = LLM_ERR_NOMEM;
        goto done;
    }
    c->m = m;
    resolve(m, &p, &c->window, &c->kv_size);
    c->p = p;
    c->rolling = c->kv_size < p.n_ctx;
    c->pool = llm_pool_new(p.n_threads);
    c->pos = malloc((size_t)p.n_batch * sizeof *c->pos);
    c->seq = malloc((size_t)p.n_batch * sizeof *c->seq);
    c->hidden = malloc((size_t)p.n_batch * m->hp.n_embd * sizeof *c->hidden);
    c->hist = malloc((size_t)p.n_ctx * sizeof *c->hist);
    c->hist_ok = true;
    if (!c->pool || !c->pos || !c->seq || !c->hidden || !c->hist) {
        rc = LLM_ERR_NOMEM;
        goto done;
    }
    rc = llm_state_new(m, c->kv_size, p.n_batch, llm_pool_size(c->pool), p.kv_f32, p.all_logits, &c->s);
    /* the context's own adapters, else the model's */
    llm_lora *const *loras = p.n_lora > 0 ? p.loras : m->lora;
    const float *lscales = p.n_lora > 0 ? p.lora_scales : m->lora_scale;
    int n_lora = p.n_lora > 0 ? p.n_lora : m->n_lora;
    if (rc == LLM_OK && n_lora > 0) {
        char lerr[256];
        rc = llm_lora_run_new(m, loras, lscales, n_lora, p.n_batch, &c->lora, lerr, sizeof lerr);
        if (rc != LLM_OK) {
            if (err && errlen) snprintf(err, errlen, "%s: %s", m->path, lerr);
            llm_context_free(c);
            return rc;
        }
        llm_state_set_lora(c->s, c->lora);
    }
    /* the lists are the caller's: keep no pointers to them */
    c->p.loras = NULL;
    c->p.lora_scales = NULL;
done:
    if (rc != LLM_OK) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot allocate a context of %d tokens (%s)", m->path, p.n_ctx,
                     llm_status_str(rc));
        llm_context_free(c);
        return rc;
    }
    *out = c;
    return LLM_OK;
}

void llm_context_free(llm_context *c) {
    if (!c) return;
    llm_state_free(c->s);
    llm_lora_run_free(c->lora);
    llm_pool_free(c->pool);
    free(c->pos);
    free(c->seq);
    free(c->hidden);
    free(c->hist);
    free(c);
}

const char *llm_context_error(const llm_context *c) {
    return c ? c->err : "no context";
}

void llm_context_reset(llm_context *c) {
    if (!c) return;
    llm_state_clear(c->s);
    c->n_past = 0;
    c->n_last = 0;
    c->hist_ok = true;
}

int llm_context_n_past(const llm_context *c) {
    return c ? c->n_past : 0;
}

int llm_decode(llm_context *c, const int32_t *tokens, int n) {
    if (!c) return LLM_ERR_ARG;
    const llm_model *m = c->m;
    if (!tokens || n <= 0)
        return llm_context_fail(c, LLM_ERR_ARG, "llm_decode: no tokens");
    if (c->p.all_logits && n > c->p.n_batch)
        return llm_context_fail(c, LLM_ERR_ARG, "llm_decode: %d tokens exceed n_batch %d with all_logits", n,
                                c->p.n_batch);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->hp.n_vocab)
            return llm_context_fail(c, LLM_ERR_ARG, "llm_decode: token %d at %d is outside the vocabulary (0..%d)",
                                    tokens[i], i, m->hp.n_vocab - 1);
    int64_t end = (int64_t)c->n_past + n;
    if (!c->rolling && end > c->p.n_ctx)
        return llm_context_fail(c, LLM_ERR_CONTEXT_FULL,
                                "context full: %d tokens held + %d new > n_ctx %d (reset the context or create "
                                "a larger one)", c->n_past, n, c->p.n_ctx);
    if (end > LLM_MAX_POS)
        return llm_context_fail(c, LLM_ERR_CONTEXT_FULL, "context full: position %lld passes the limit %d",
                                (long long)end, LLM_MAX_POS);
    for (int off = 0; off < n; off += c->p.n_batch) {
        int nb = n - off < c->p.n_batch ? n - off : c->p.n_batch;
        for (int i = 0; i < nb; i++) c->pos[i] = c->n_past + i;
        llm_batch b = {
            .tokens = tokens + off, .pos = c->pos, .seq = NULL, .n = nb,
            .use_cache = true, .store_kv = true,
            .logits = off + nb < n ? 0 : (c->p.all_logits ? 2 : 1),
            .hidden = NULL, .hidden_layer = -1,
        };
        int rc = llm_forward(m, c->s, c->pool, &b);
        if (rc != LLM_OK) {
            c->hist_ok = false;
            return llm_context_fail(c, rc, "llm_decode: forward pass failed (%s)", llm_status_str(rc));
        }
        /* the token history prefix reuse compares against */
        if (c->hist_ok && c->n_past + nb <= c->p.n_ctx) memcpy(c->hist + c->n_past, tokens + off, (size_t)nb * sizeof *c->hist);
        else c->hist_ok = false;
        c->n_past += nb;
        c->n_last = nb;
    }
    return LLM_OK;
}

/* Keeps the cache of the longest common prefix of what the context holds and
 * tokens[0..n) — never the last token, whose logits are wanted — and drops
 * the rest; returns the tokens kept. A rolling buffer cannot be cut back
 * (later positions overwrote the slots the window needs): it starts over. */
int llm_context_keep_prefix(llm_context *c, const int32_t *tokens, int n) {
    int keep = 0;
    if (!c->rolling && c->hist_ok) {
        int lim = c->n_past < n - 1 ? c->n_past : n - 1;
        while (keep < lim && c->hist[keep] == tokens[keep]) keep++;
    }
    if (keep == 0) llm_context_reset(c);
    else {
        llm_state_truncate(c->s, keep);
        c->n_past = keep;
        c->n_last = 0;
    }
    return keep;
}

int llm_decode_prefix(llm_context *c, const int32_t *tokens, int n, int *n_reused) {
    if (n_reused) *n_reused = 0;
    if (!c) return LLM_ERR_ARG;
    if (!tokens || n <= 0) return llm_context_fail(c, LLM_ERR_ARG, "llm_decode_prefix: no tokens");
    if (!c->rolling && n > c->p.n_ctx)
        return llm_context_fail(c, LLM_ERR_CONTEXT_FULL, "context full: %d tokens > n_ctx %d (create a larger context)",
                                n, c->p.n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->m->hp.n_vocab)
            return llm_context_fail(c, LLM_ERR_ARG, "llm_decode_prefix: token %d at %d is outside the vocabulary",
                                    tokens[i], i);
    int keep = llm_context_keep_prefix(c, tokens, n);
    int rc = llm_decode(c, tokens + keep, n - keep);
    if (rc == LLM_OK && n_reused) *n_reused = keep;
    return rc;
}

const float *llm_get_logits(const llm_context *c, int i) {
    if (!c || c->n_last == 0) return NULL;
    if (i == -1) i = c->n_last - 1;
    if (i < 0 || i >= c->n_last) return NULL;
    if (c->p.all_logits) return llm_state_logits(c->s, i);
    return i == c->n_last - 1 ? llm_state_logits(c->s, 0) : NULL;
}
