/* lora.c — LoRA adapters in llama.cpp's GGUF format: loading and checking
 * an adapter against a model, and the low-rank products the forward pass
 * adds to each adapted weight's output: Y += scale * B (A X).
 *
 * Format (facts from llama.cpp's adapter loader): general.type "adapter",
 * general.architecture the model's, adapter.type "lora", adapter.lora.alpha
 * (f32, absent = 0); for a base tensor NAME of shape [n_in, n_out] the
 * tensors NAME.lora_a [n_in, r] and NAME.lora_b [r, n_out]; for
 * token_embd.weight [n_embd, n_vocab] they are flipped: lora_a [r, n_vocab]
 * (a row per token) and lora_b [r, n_embd]. The scale of a pair is the
 * user's scale times alpha / r, or the user's scale when alpha is 0.
 * Nothing is merged into the base weights: quantized weights stay as they
 * are, mapped, and the products cost r * (n_in + n_out) per token. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/kernels.h"
#include "llm/model.h"

/* Tokens per chunk of the B product, which bounds its scratch to
 * LORA_CHUNK x (largest adapted output) floats. */
#define LORA_CHUNK 32

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        /* names and keys come from the adapter's bytes: a control byte in
         * one must not break the message into lines or move a cursor */
        for (char *c = err; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    }
    return rc;
}

/* The slot of a base tensor name, or -1 (unknown name), -2 (an expert
 * tensor, which mrag does not adapt). */
static int slot_of(const llm_model *m, const char *name) {
    if (!strcmp(name, "token_embd.weight")) return LLM_LORA_SLOT_EMBD(m);
    if (!strcmp(name, "output.weight")) return m->tied_output ? -1 : LLM_LORA_SLOT_OUTPUT(m);
    int layer, len = 0;
    if (sscanf(name, "blk.%d.%n", &layer, &len) != 1 || len == 0 || layer < 0 || layer >= m->hp.n_layer) return -1;
    static const struct { const char *name; int which; } names[] = {
        {"attn_q.weight", LLM_LORA_Q},     {"attn_k.weight", LLM_LORA_K},     {"attn_v.weight", LLM_LORA_V},
        {"attn_output.weight", LLM_LORA_O}, {"ffn_gate.weight", LLM_LORA_GATE}, {"ffn_up.weight", LLM_LORA_UP},
        {"ffn_down.weight", LLM_LORA_DOWN}, {"ffn_gate_inp.weight", LLM_LORA_ROUTER},
    };
    const char *rest = name + len;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(rest, names[i].name)) continue;
        bool moe = m->hp.n_expert > 0;
        int w = names[i].which;
        if (moe && (w == LLM_LORA_GATE || w == LLM_LORA_UP || w == LLM_LORA_DOWN)) return -1;
        if (!moe && w == LLM_LORA_ROUTER) return -1;
        return LLM_LORA_SLOT(layer, w);
    }
    if (strstr(rest, "_exps.weight")) return -2;
    return -1;
}

/* The base weight of a slot. */
static const llm_weight *slot_weight(const llm_model *m, int slot) {
    if (slot == LLM_LORA_SLOT_EMBD(m)) return &m->tok_embd;
    if (slot == LLM_LORA_SLOT_OUTPUT(m)) return &m->output;
    const llm_layer *L = &m->layers[slot / LLM_LORA_PER_LAYER];
    switch (slot % LLM_LORA_PER_LAYER) {
    case LLM_LORA_Q: return &L->wq;
    case LLM_LORA_K: return &L->wk;
    case LLM_LORA_V: return &L->wv;
    case LLM_LORA_O: return &L->wo;
    case LLM_LORA_GATE: return &L->w_gate;
    case LLM_LORA_UP: return &L->w_up;
    case LLM_LORA_DOWN: return &L->w_down;
    default: return &L->router;
    }
}

/* The base tensor name of a slot, for messages. */
static void slot_name(const llm_model *m, int slot, char *out, size_t n) {
    static const char *const names[LLM_LORA_PER_LAYER] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                          "ffn_gate", "ffn_up", "ffn_down", "ffn_gate_inp"};
    if (slot == LLM_LORA_SLOT_EMBD(m)) snprintf(out, n, "token_embd.weight");
    else if (slot == LLM_LORA_SLOT_OUTPUT(m)) snprintf(out, n, "output.weight");
    else snprintf(out, n, "blk.%d.%s.weight", slot / LLM_LORA_PER_LAYER, names[slot % LLM_LORA_PER_LAYER]);
}

/* A 2-D adapter tensor as a weight view (rows x cols); checks that the
 * kernels run its type and that its rows are whole blocks. */
static int view(const char *path, const gguf_tensor *t, llm_weight *w, char *err, size_t errlen) {
    char name[160];
    snprintf(name, sizeof name, "%.*s", (int)(t->name.len < 150 ? t->name.len : 150), t->name.ptr);
    if (t->n_dims > 2 || t->ne[2] != 1 || t->ne[3] != 1)
        return fail(err, errlen, LLM_ERR_FORMAT, "%s: LoRA tensor %s has %u dimensions, expected 2", path, name,
                    t->n_dims);
    if (!llm_type_supported(t->type) || t->type == GGML_TYPE_Q8_K || t->type == GGML_TYPE_Q8_1)
        return fail(err, errlen, LLM_ERR_UNSUPPORTED, "%s: LoRA tensor %s has type %s, which mrag does not run", path,
                    name, llm_type_name(t->type));
    if (t->ne[0] > INT32_MAX || t->ne[1] > INT32_MAX || llm_ggml_row_size(t->type, t->ne[0]) == 0)
        return fail(err, errlen, LLM_ERR_FORMAT, "%s: LoRA tensor %s: row of %llu is not whole %s blocks", path,
                    name, (unsigned long long)t->ne[0], llm_type_name(t->type));
    w->data = t->data;
    w->type = t->type;
    w->cols = (int)t->ne[0];
    w->rows = (int)t->ne[1];
    w->stride = 0;
    return LLM_OK;
}

void llm_lora_free(llm_lora *l) {
    if (!l) return;
    llm_gguf_close(l->f);
    free(l->pairs);
    free(l->path);
    free(l);
}

int llm_lora_load(const llm_model *m, const char *path, llm_lora **out, char *err, size_t errlen) {
    if (out) *out = NULL;
    if (!m || !path || !out) return fail(err, errlen, LLM_ERR_ARG, "llm_lora_load: model, path and out are required");
    gguf_file *f = NULL;
    char gerr[512];
    if (llm_gguf_open(path, &f, gerr, sizeof gerr) != 0) return fail(err, errlen, LLM_ERR_FORMAT, "%s", gerr);
    return llm_lora_from_gguf(m, f, path, out, err, errlen);
}

int llm_lora_from_gguf(const llm_model *m, gguf_file *f, const char *path, llm_lora **out, char *err,
                       size_t errlen) {
    int rc = LLM_OK;
    llm_lora *l = NULL;
    *out = NULL;
    if (m->vocab_only) {
        llm_gguf_close(f);
        return fail(err, errlen, LLM_ERR_ARG, "%s: loaded vocab-only; it has no weights to adapt", m->path);
    }
    l = calloc(1, sizeof *l);
    if (!l || !(l->path = strdup(path))) {
        if (l) l->f = f;
        else llm_gguf_close(f);
        rc = fail(err, errlen, LLM_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    l->f = f;
    l->m = m;
    l->n_slots = LLM_LORA_N_SLOTS(m);
    l->pairs = calloc((size_t)l->n_slots, sizeof *l->pairs);
    if (!l->pairs) { rc = fail(err, errlen, LLM_ERR_NOMEM, "%s: out of memory", path); goto done; }
    gguf_str s;
    if (!llm_gguf_get_str(l->f, "general.type", &s) || !llm_gguf_str_eq(s, "adapter")) {
        rc = fail(err, errlen, LLM_ERR_FORMAT, "%s: not a LoRA adapter (general.type is not \"adapter\")", path);
        goto done;
    }
    if (!llm_gguf_get_str(l->f, "adapter.type", &s) || !llm_gguf_str_eq(s, "lora")) {
        rc = fail(err, errlen, LLM_ERR_UNSUPPORTED, "%s: adapter.type is not \"lora\"", path);
        goto done;
    }
    if (!llm_gguf_get_str(l->f, "general.architecture", &s) || !llm_gguf_str_eq(s, m->arch)) {
        rc = fail(err, errlen, LLM_ERR_UNSUPPORTED, "%s: adapter architecture %.*s does not match the model's (%s)", path,
                  llm_gguf_get_str(l->f, "general.architecture", &s) ? (int)(s.len < 32 ? s.len : 32) : 4,
                  llm_gguf_get_str(l->f, "general.architecture", &s) ? s.ptr : "none", m->arch);
        goto done;
    }
    float alpha = 0;
    if (llm_gguf_find_kv(l->f, "adapter.lora.alpha") && (!llm_gguf_get_f32(l->f, "adapter.lora.alpha", &alpha) ||
                                                     !isfinite(alpha))) {
        rc = fail(err, errlen, LLM_ERR_FORMAT, "%s: adapter.lora.alpha is not a number", path);
        goto done;
    }
    l->alpha = alpha;
    /* pair up NAME.lora_a / NAME.lora_b */
    for (uint64_t i = 0; i < llm_gguf_tensor_count(l->f); i++) {
        const gguf_tensor *t = llm_gguf_tensor_at(l->f, i);
        char name[200];
        if (t->name.len >= sizeof name) {
            rc = fail(err, errlen, LLM_ERR_FORMAT, "%s: tensor name of %llu bytes is too long", path,
                      (unsigned long long)t->name.len);
            goto done;
        }
        memcpy(name, t->name.ptr, t->name.len);
        name[t->name.len] = 0;
        size_t nl = strlen(name);
        bool is_a = nl > 7 && !strcmp(name + nl - 7, ".lora_a"), is_b = nl > 7 && !strcmp(name + nl - 7, ".lora_b");
        if (!is_a && !is_b) {
            rc = fail(err, errlen, LLM_ERR_FORMAT, "%s: tensor %s is not a LoRA tensor (NAME.lora_a or NAME.lora_b)",
                      path, name);
            goto done;
        }
        name[nl - 7] = 0;
        int slot = slot_of(m, name);
        if (slot == -2) {
            rc = fail(err, errlen, LLM_ERR_UNSUPPORTED, "%s: LoRA on the expert tensor %s is not supported", path, name);
            goto done;
        }
        if (slot < 0) {
            rc = fail(err, errlen, LLM_ERR_FORMAT, "%s: LoRA tensor %s.lora_%c: the model %s has no weight %s", path,
                      name, is_a ? 'a' : 'b', m->path, name);
            goto done;
        }
        llm_lora_pair *p = &l->pairs[slot];
        llm_weight *w = is_a ? &p->a : &p->b;
        if (w->data) {
            rc = fail(err, errlen, LLM_ERR_FORMAT, "%s: %s.lora_%c appears twice", path, name, is_a ? 'a' : 'b');
            goto done;
        }
        if ((rc = view(path, t, w, err, errlen)) != LLM_OK) goto done;
    }
    /* every pair complete, shapes against the base weight */
    for (int slot = 0; slot < l->n_slots; slot++) {
        llm_lora_pair *p = &l->pairs[slot];
        if (!p->a.data && !p->b.data) continue;
        const llm_weight *base = slot_weight(m, slot);
        char name[64];
        slot_name(m, slot, name, sizeof name);
        if (!p->a.data || !p->b.data) {
            rc = fail(err, errlen, LLM_ERR_FORMAT, "%s: LoRA pair for %s lacks lora_%c", path, name, p->a.data ? 'b' : 'a');
            goto done;
        }
        bool embd = slot == LLM_LORA_SLOT_EMBD(m);
        /* A: rank x n_in (embd: n_vocab rows of rank); B: n_out x rank */
        int rank = embd ? p->a.cols : p->a.rows;
        bool ok = embd ? (p->a.rows == base->rows && p->b.rows == base->cols && p->b.cols == rank)
                       : (p->a.cols == base->cols && p->b.rows == base->rows && p->b.cols == rank);
        if (!ok || rank < 1) {
            rc = fail(err, errlen, LLM_ERR_FORMAT,
                      "%s: LoRA pair for %s has shapes lora_a [%d, %d], lora_b [%d, %d], which do not fit the "
                      "model's [%d, %d] (an adapter for another model?)",
                      path, name, p->a.cols, p->a.rows, p->b.cols, p->b.rows, base->cols, base->rows);
            goto done;
        }
        p->rank = rank;
        if (rank > l->max_rank) l->max_rank = rank;
        int out_rows = embd ? base->cols : base->rows;
        if (out_rows > l->max_rows) l->max_rows = out_rows;
        l->n_pairs++;
    }
    if (l->n_pairs == 0) {
        rc = fail(err, errlen, LLM_ERR_FORMAT, "%s: the adapter has no LoRA tensors", path);
        goto done;
    }
done:
    if (rc != LLM_OK) {
        llm_lora_free(l);
        return rc;
    }
    *out = l;
    return LLM_OK;
}

void llm_lora_get_info(const llm_lora *l, llm_lora_info *info) {
    memset(info, 0, sizeof *info);
    if (!l) return;
    info->path = l->path;
    info->alpha = l->alpha;
    info->max_rank = l->max_rank;
    info->n_pairs = l->n_pairs;
    info->file_size = llm_gguf_file_size(l->f);
}

int llm_lora_sha256(llm_lora *l, char out[65]) {
    if (!l || !out) return LLM_ERR_ARG;
    if (!l->sha_done) {
        int rc = llm_file_sha256(l->path, llm_gguf_file_id(l->f), llm_gguf_base(l->f), llm_gguf_file_size(l->f),
                                 llm_gguf_data_offset(l->f), l->sha);
        if (rc != LLM_OK) return rc;
        l->sha_done = true;
    }
    memcpy(out, l->sha, 65);
    return LLM_OK;
}

int llm_fingerprint(llm_model *m, llm_lora *const *loras, const float *scales, int n, char out[65]) {
    if (!m || !out || n < 0 || (n > 0 && !loras)) return LLM_ERR_ARG;
    char sha[65];
    int rc = llm_model_sha256(m, sha);
    if (rc != LLM_OK || n == 0) {
        if (rc == LLM_OK) memcpy(out, sha, 65);
        return rc;
    }
    /* "model <sha>\n" then "lora <sha> <scale>\n" per adapter, in order */
    size_t cap = 80 + (size_t)n * 100, o = 0;
    char *text = malloc(cap);
    if (!text) return LLM_ERR_NOMEM;
    o += (size_t)snprintf(text + o, cap - o, "model %s\n", sha);
    for (int i = 0; i < n && rc == LLM_OK; i++) {
        char ls[65];
        if (!loras[i] || loras[i]->m != m) rc = LLM_ERR_ARG;
        else if ((rc = llm_lora_sha256(loras[i], ls)) == LLM_OK)
            o += (size_t)snprintf(text + o, cap - o, "lora %s %.9g\n", ls, scales ? (double)scales[i] : 1.0);
    }
    if (rc == LLM_OK) llm_sha256_hex(text, o, out);
    free(text);
    return rc;
}

/* ------------------------------------------------------ at run time */

int llm_lora_run_new(const llm_model *m, llm_lora *const *loras, const float *scales, int n, int n_batch,
                     llm_lora_run **out, char *err, size_t errlen) {
    *out = NULL;
    if (n <= 0) return LLM_OK;
    if (n > LLM_MAX_LORA)
        return fail(err, errlen, LLM_ERR_ARG, "at most %d LoRA adapters per context (%d given)", LLM_MAX_LORA, n);
    llm_lora_run *r = calloc(1, sizeof *r);
    if (!r) return fail(err, errlen, LLM_ERR_NOMEM, "out of memory");
    int max_rank = 0, max_rows = 0;
    size_t work = 0;
    for (int i = 0; i < n; i++) {
        const llm_lora *l = loras[i];
        if (!l || l->m != m) {
            free(r);
            return fail(err, errlen, LLM_ERR_ARG, "LoRA adapter %d was loaded for another model", i);
        }
        float sc = scales ? scales[i] : 1.0f;
        if (!isfinite(sc)) {
            free(r);
            return fail(err, errlen, LLM_ERR_ARG, "LoRA scale of %s is not a number", l->path);
        }
        r->l[i] = l;
        r->scale[i] = sc;
        if (l->max_rank > max_rank) max_rank = l->max_rank;
        if (l->max_rows > max_rows) max_rows = l->max_rows;
        for (int s = 0; s < l->n_slots; s++) {
            const llm_lora_pair *p = &l->pairs[s];
            if (!p->a.data) continue;
            bool embd = s == LLM_LORA_SLOT_EMBD(m);
            size_t wa = embd ? 0 : llm_matmul_work_size(p->a.type, p->a.cols, n_batch);
            size_t wb = llm_matmul_work_size(p->b.type, p->b.cols, n_batch < LORA_CHUNK ? n_batch : LORA_CHUNK);
            if (wa > work) work = wa;
            if (wb > work) work = wb;
        }
    }
    r->n = n;
    r->n_batch = n_batch;
    r->t = malloc((size_t)n_batch * max_rank * sizeof(float));
    r->d = malloc((size_t)(n_batch < LORA_CHUNK ? n_batch : LORA_CHUNK) * max_rows * sizeof(float));
    r->work = malloc(work ? work : 1);
    if (!r->t || !r->d || !r->work) {
        llm_lora_run_free(r);
        return fail(err, errlen, LLM_ERR_NOMEM, "out of memory for the LoRA scratch");
    }
    *out = r;
    return LLM_OK;
}

void llm_lora_run_free(llm_lora_run *r) {
    if (!r) return;
    free(r->t);
    free(r->d);
    free(r->work);
    free(r);
}

uint64_t llm_lora_run_bytes(llm_lora *const *loras, int n, int n_batch) {
    uint64_t z = 0;
    int max_rank = 0, max_rows = 0;
    for (int i = 0; i < n; i++) {
        if (!loras[i]) continue;
        if (loras[i]->max_rank > max_rank) max_rank = loras[i]->max_rank;
        if (loras[i]->max_rows > max_rows) max_rows = loras[i]->max_rows;
    }
    if (n > 0) z = (uint64_t)n_batch * max_rank * 4 + (uint64_t)(n_batch < LORA_CHUNK ? n_batch : LORA_CHUNK) * max_rows * 4;
    return z;
}

/* The pair's effective scale: the user's, times alpha / rank when alpha is set. */
static float pair_scale(const llm_lora *l, const llm_lora_pair *p, float user) {
    return l->alpha != 0.0f ? user * l->alpha / (float)p->rank : user;
}

/* Y (n rows of `rows`) += scale * B T for T = n rows of rank, in chunks of
 * LORA_CHUNK tokens: D = B T, then Y += D * scale (the product rounded,
 * then added, as llama.cpp scales the delta before adding it). */
static void add_b(llm_lora_run *r, llm_pool *pool, const llm_lora_pair *p, float scale, const float *T, int n,
                  int rows, float *Y) {
    for (int t0 = 0; t0 < n; t0 += LORA_CHUNK) {
        int nt = n - t0 < LORA_CHUNK ? n - t0 : LORA_CHUNK;
        llm_matmul(pool, p->b.type, p->b.data, rows, p->rank, T + (size_t)t0 * p->rank, nt, r->d, r->work);
        float *y = Y + (size_t)t0 * rows;
        for (size_t i = 0; i < (size_t)nt * rows; i++) {
            float dv = r->d[i] * scale;
            y[i] += dv;
        }
    }
}

bool llm_lora_has(const llm_lora_run *r, int slot) {
    for (int k = 0; k < r->n; k++)
        if (r->l[k]->pairs[slot].a.data) return true;
    return false;
}

void llm_lora_add(llm_lora_run *r, llm_pool *pool, int slot, const float *X, int n, float *Y) {
    for (int k = 0; k < r->n; k++) {
        const llm_lora *l = r->l[k];
        const llm_lora_pair *p = &l->pairs[slot];
        if (!p->a.data) continue;
        /* T = A X: n rows of rank */
        llm_matmul(pool, p->a.type, p->a.data, p->rank, p->a.cols, X, n, r->t, r->work);
        add_b(r, pool, p, pair_scale(l, p, r->scale[k]), r->t, n, p->b.rows, Y);
    }
}

void llm_lora_add_embd(llm_lora_run *r, llm_pool *pool, const llm_model *m, const int32_t *tokens, int n, float *X) {
    int slot = LLM_LORA_SLOT_EMBD(m);
    for (int k = 0; k < r->n; k++) {
        const llm_lora *l = r->l[k];
        const llm_lora_pair *p = &l->pairs[slot];
        if (!p->a.data) continue;
        /* T = the tokens' rows of A (n_vocab x rank), dequantized */
        size_t row = llm_ggml_row_size(p->a.type, (uint64_t)p->rank);
        for (int i = 0; i < n; i++)
            llm_dequantize_row(p->a.type, (const uint8_t *)p->a.data + (size_t)tokens[i] * row,
                               r->t + (size_t)i * p->rank, p->rank);
        add_b(r, pool, p, pair_scale(l, p, r->scale[k]), r->t, n, p->b.rows, X);
    }
}
