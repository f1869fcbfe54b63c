/* embed.c — text embeddings: the mean over a sequence of the hidden states at
 * the context's embd_layer (final norm by default), L2-normalised; the batch
 * API packs several short sequences into one prefill, each attending only
 * to itself. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llm/model.h"

/* A text longer than this many tokens is refused rather than embedded. */
#define LLM_MAX_EMBED_TOKENS (1 << 20)

/* Tokenizes text with BOS into a malloc'd array (*ids, owned by the caller). */
static int tokenize_alloc(llm_context *c, const char *text, size_t len, int32_t **ids, int *n) {
    *ids = NULL;
    *n = 0;
    size_t cap = len + 8, need = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        int32_t *buf = malloc(cap * sizeof *buf);
        if (!buf) return llm_context_fail(c, LLM_ERR_NOMEM, "embed: out of memory for %zu tokens", cap);
        int rc = llm_tokenize(c->m, text, len, true, false, buf, cap, &need);
        if (rc == LLM_OK) {
            if (need == 0 || need > (size_t)LLM_MAX_EMBED_TOKENS) {
                free(buf);
                return llm_context_fail(c, LLM_ERR_ARG, "embed: the text gives %zu tokens (allowed 1..%d)", need,
                                        LLM_MAX_EMBED_TOKENS);
            }
            *ids = buf;
            *n = (int)need;
            return LLM_OK;
        }
        free(buf);
        if (rc != LLM_ERR_ARG || need <= cap) return llm_context_fail(c, rc, "embed: tokenization failed (%s)",
                                                                      llm_status_str(rc));
        cap = need;
    }
    return llm_context_fail(c, LLM_ERR_ARG, "embed: tokenization did not settle");
}

/* out[d] = v[d] / |v| (v is accumulated in double). False when v holds a
 * NaN or an infinity: non-finite weights make every later value one, and
 * an embedding like that is no vector (nor JSON). */
static bool l2_store(const double *v, int d, float *out) {
    double ss = 0.0;
    for (int i = 0; i < d; i++) ss += v[i] * v[i];
    if (!isfinite(ss)) return false;
    double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
    for (int i = 0; i < d; i++) out[i] = (float)(v[i] * inv);
    return true;
}

#define NONFINITE_MSG "embed: the model produced non-finite values (NaN or infinity): its weights are broken"

/* Embeds one token sequence through the KV cache, n_batch tokens at a time.
 * acc is n_embd doubles of scratch. Clears the context before and after. */
static int embed_one(llm_context *c, const int32_t *ids, int n, double *acc, float *out) {
    const int dim = c->m->hp.n_embd;
    int rc = LLM_OK;
    llm_context_reset(c);
    if (!c->rolling && n > c->p.n_ctx) {
        rc = llm_context_fail(c, LLM_ERR_CONTEXT_FULL, "embed: %d tokens do not fit n_ctx %d", n, c->p.n_ctx);
        goto done;
    }
    memset(acc, 0, (size_t)dim * sizeof *acc);
    for (int off = 0; off < n; off += c->p.n_batch) {
        int nb = n - off < c->p.n_batch ? n - off : c->p.n_batch;
        for (int i = 0; i < nb; i++) c->pos[i] = off + i;
        llm_batch b = {
            .tokens = ids + off, .pos = c->pos, .seq = NULL, .n = nb,
            .use_cache = true, .store_kv = off + nb < n, .logits = 0,
            .hidden = c->hidden, .hidden_layer = c->p.embd_layer,
        };
        if ((rc = llm_forward(c->m, c->s, c->pool, &b)) != LLM_OK) {
            rc = llm_context_fail(c, rc, "embed: forward pass failed (%s)", llm_status_str(rc));
            goto done;
        }
        for (int i = 0; i < nb; i++) {
            const float *h = c->hidden + (size_t)i * dim;
            for (int d = 0; d < dim; d++) acc[d] += h[d];
        }
    }
    for (int d = 0; d < dim; d++) acc[d] /= n;
    if (!l2_store(acc, dim, out)) rc = llm_context_fail(c, LLM_ERR_FORMAT, NONFINITE_MSG);
done:
    llm_context_reset(c);
    return rc;
}

/* Embeds ns sequences packed into one batch (total tokens <= n_batch); each
 * sequence gets its own id and positions from 0, so it sees only itself. */
static int embed_packed(llm_context *c, int32_t *const *ids, const int *lens, int ns, int32_t *tok, double *acc,
                        float *out) {
    const int dim = c->m->hp.n_embd;
    int n = 0;
    for (int s = 0; s < ns; s++)
        for (int i = 0; i < lens[s]; i++, n++) {
            tok[n] = ids[s][i];
            c->pos[n] = i;
            c->seq[n] = s;
        }
    llm_context_reset(c);
    llm_batch b = {
        .tokens = tok, .pos = c->pos, .seq = c->seq, .n = n,
        .use_cache = false, .store_kv = false, .logits = 0,
        .hidden = c->hidden, .hidden_layer = c->p.embd_layer,
    };
    int rc = llm_forward(c->m, c->s, c->pool, &b);
    if (rc != LLM_OK) return llm_context_fail(c, rc, "embed: forward pass failed (%s)", llm_status_str(rc));
    int t = 0;
    for (int s = 0; s < ns; s++) {
        memset(acc, 0, (size_t)dim * sizeof *acc);
        for (int i = 0; i < lens[s]; i++, t++) {
            const float *h = c->hidden + (size_t)t * dim;
            for (int d = 0; d < dim; d++) acc[d] += h[d];
        }
        for (int d = 0; d < dim; d++) acc[d] /= lens[s];
        if (!l2_store(acc, dim, out + (size_t)s * dim)) return llm_context_fail(c, LLM_ERR_FORMAT, NONFINITE_MSG);
    }
    return LLM_OK;
}

int llm_embed(llm_context *c, const char *text, size_t len, float *out) {
    if (!c || (!text && len) || !out) return LLM_ERR_ARG;
    return llm_embed_batch(c, &text, &len, 1, out);
}

int llm_embed_batch(llm_context *c, const char *const *texts, const size_t *lens, int n, float *out) {
    if (!c) return LLM_ERR_ARG;
    if (n < 0 || (n > 0 && (!texts || !lens || !out)))
        return llm_context_fail(c, LLM_ERR_ARG, "embed: bad arguments");
    const int dim = c->m->hp.n_embd;
    int rc = LLM_OK;
    int32_t **ids = calloc((size_t)(n ? n : 1), sizeof *ids);
    int *nt = calloc((size_t)(n ? n : 1), sizeof *nt);
    double *acc = malloc((size_t)dim * sizeof *acc);
    int32_t *tok = malloc((size_t)c->p.n_batch * sizeof *tok);
    if (!ids || !nt || !acc || !tok) {
        rc = llm_context_fail(c, LLM_ERR_NOMEM, "embed: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++)
        if ((rc = tokenize_alloc(c, texts[i] ? texts[i] : "", texts[i] ? lens[i] : 0, &ids[i], &nt[i])) != LLM_OK)
            goto done;
    /* Greedy packing in input order: consecutive texts share a prefill while
     * their tokens fit n_batch; a longer text goes alone through the cache. */
    for (int i = 0; i < n;) {
        if (nt[i] > c->p.n_batch) {
            if ((rc = embed_one(c, ids[i], nt[i], acc, out + (size_t)i * dim)) != LLM_OK) goto done;
            i++;
            continue;
        }
        int j = i, total = 0;
        while (j < n && nt[j] <= c->p.n_batch && total + nt[j] <= c->p.n_batch) total += nt[j++];
        if ((rc = embed_packed(c, ids + i, nt + i, j - i, tok, acc, out + (size_t)i * dim)) != LLM_OK) goto done;
        i = j;
    }
done:
    llm_context_reset(c);
    if (ids)
        for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(nt);
    free(acc);
    free(tok);
    return rc;
}

int llm_embed_layers(llm_context *c, const char *text, size_t len, const int *layers, int n_layers, float *out) {
    if (!c) return LLM_ERR_ARG;
    if ((!text && len) || !layers || n_layers < 1 || n_layers > 64 || !out)
        return llm_context_fail(c, LLM_ERR_ARG, "embed: bad arguments");
    const int dim = c->m->hp.n_embd;
    for (int j = 0; j < n_layers; j++)
        if (layers[j] < -1 || layers[j] >= c->m->hp.n_layer)
            return llm_context_fail(c, LLM_ERR_ARG, "embed: layer %d is out of range (-1 = final norm, 0..%d)", layers[j],
                                    c->m->hp.n_layer - 1);
    int32_t *ids = NULL;
    int n = 0;
    int rc = tokenize_alloc(c, text ? text : "", text ? len : 0, &ids, &n);
    if (rc != LLM_OK) return rc;
    double *acc = calloc((size_t)n_layers * dim, sizeof *acc);
    float **bufs = calloc((size_t)n_layers, sizeof *bufs);
    if (!acc || !bufs) { rc = llm_context_fail(c, LLM_ERR_NOMEM, "embed: out of memory"); goto done; }
    for (int j = 0; j < n_layers; j++)
        if (!(bufs[j] = malloc((size_t)c->p.n_batch * dim * sizeof **bufs))) {
            rc = llm_context_fail(c, LLM_ERR_NOMEM, "embed: out of memory");
            goto done;
        }
    llm_context_reset(c);
    if (!c->rolling && n > c->p.n_ctx) {
        rc = llm_context_fail(c, LLM_ERR_CONTEXT_FULL, "embed: %d tokens do not fit n_ctx %d", n, c->p.n_ctx);
        goto done;
    }
    /* one pass through the cache, every requested layer captured */
    for (int off = 0; off < n; off += c->p.n_batch) {
        int nb = n - off < c->p.n_batch ? n - off : c->p.n_batch;
        for (int i = 0; i < nb; i++) c->pos[i] = off + i;
        llm_batch b = {
            .tokens = ids + off, .pos = c->pos, .seq = NULL, .n = nb,
            .use_cache = true, .store_kv = off + nb < n, .logits = 0,
            .hidden = NULL, .hidden_layer = -1,
            .hidden_more = bufs, .hidden_more_layer = layers, .n_hidden_more = n_layers,
        };
        if ((rc = llm_forward(c->m, c->s, c->pool, &b)) != LLM_OK) {
            rc = llm_context_fail(c, rc, "embed: forward pass failed (%s)", llm_status_str(rc));
            goto done;
        }
        for (int j = 0; j < n_layers; j++)
            for (int i = 0; i < nb; i++) {
                const float *h = bufs[j] + (size_t)i * dim;
                double *a = acc + (size_t)j * dim;
                for (int d = 0; d < dim; d++) a[d] += h[d];
            }
    }
    for (int j = 0; j < n_layers; j++) {
        double *a = acc + (size_t)j * dim;
        for (int d = 0; d < dim; d++) a[d] /= n;
        l2_store(a, dim, out + (size_t)j * dim);
    }
done:
    llm_context_reset(c);
    for (int j = 0; bufs && j < n_layers; j++) free(bufs[j]);
    free(bufs);
    free(acc);
    free(ids);
    return rc;
}
