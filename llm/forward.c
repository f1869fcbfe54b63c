/* forward.c — the Mistral/Mixtral transformer forward pass over a batch of
 * tokens: embedding, n_layer x (RMSNorm, attention with RoPE/GQA/sliding
 * window over an F16 or F32 KV cache, RMSNorm, SwiGLU or sparse MoE FFN),
 * final norm, output head. Reads top to bottom: Config (llm_hparams in
 * model.h), weights (llm_layer in model.h, shapes beside each pointer),
 * RunState (llm_state below), then the pass itself.
 *
 * Numerics follow llama.cpp's CPU path for arch `llama` so the same GGUF
 * gives the same logits: RMSNorm sums squares in double; RoPE "normal" mode
 * rotates pairs (2i, 2i+1) by pos * base^(-2i/n_rot) with the angle stepped
 * in float; with an F16 cache, Q is rounded to F16 for Q·K (F16 products,
 * F32 accumulation), softmax is F32 with a double sum, and the probabilities
 * are rounded to F16 before the product with V. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "llm/ggml.h"
#include "llm/kernels_internal.h"
#include "llm/model.h"

/* ------------------------------------------------------------ RunState */
struct llm_state {
    /* sizes */
    int n_batch;            /* max tokens per call */
    int kv_size;            /* slots of the KV buffer: min(n_ctx, window) */
    int n_threads;          /* per-thread scratch count */
    bool kv_f16;            /* cache element: ggml_half (else float) */
    bool all_logits;
    /* activations, one row per batch token */
    float *x;               /* (n_batch, n_embd) residual stream */
    float *xb;              /* (n_batch, n_embd) normed input of a block */
    float *xb2;             /* (n_batch, n_embd) block output before the residual add */
    float *q;               /* (n_batch, n_head * head_dim) */
    float *k;               /* (n_batch, n_head_kv * head_dim) */
    float *v;               /* (n_batch, n_head_kv * head_dim) */
    void *kb;               /* (n_batch, kv_dim) this batch's keys in cache precision */
    void *vb;               /* (n_batch, kv_dim) this batch's values in cache precision */
    float *att;             /* (n_batch, n_head * head_dim) attention output */
    float *hb;              /* (n_batch, n_ff) FFN gate */
    float *hb2;             /* (n_batch, n_ff) FFN up */
    float *rope;            /* (n_batch, head_dim) cos,sin pairs per token */
    /* MoE */
    float *router;          /* (n_batch, n_expert) router probabilities */
    int *sel;               /* (n_batch, n_expert_used) chosen experts */
    float *sel_w;           /* (n_batch, n_expert_used) their renormalised weights */
    int *rows;              /* (n_batch) tokens routed to the current expert */
    int *seq_start;         /* (n_batch) first batch row of each token's sequence */
    float *xg;              /* (n_batch, n_embd) gathered inputs of one expert */
    float *yg;              /* (n_batch, n_embd) that expert's outputs */
    /* attention scratch per thread */
    float *scores;          /* (n_threads, group, kv_size + n_batch) */
    int *keys;              /* (n_threads, kv_size + n_batch) keys a query sees */
    const void **kvrows;     /* (n_threads, 2, kv_size + n_batch) their K and V rows */
    ggml_half *qh;          /* (n_threads, head_dim) query head rounded to F16 */
    float *qf;              /* (n_threads, group, head_dim) the same as floats */
    float *tmp;             /* (n_threads, head_dim) one K or V row as floats */
    float *acc;             /* (n_threads, group, head_dim) P·V sums */
    /* output */
    float *logits;          /* (all_logits ? n_batch : 1, n_vocab) */
    void *work;             /* matmul scratch (quantized activations) */
    size_t work_size;
    /* KV cache: per layer kv_size slots of kv_dim elements */
    void *k_cache;          /* (n_layer, kv_size, kv_dim) */
    void *v_cache;          /* (n_layer, kv_size, kv_dim) */
    int cache_lo, cache_hi; /* positions [lo, hi) are in the cache, p in slot p % kv_size */
    int n_logit_rows;       /* rows of logits the last call produced */
    int n_vocab;
    uint64_t kv_bytes;      /* bytes of k_cache + v_cache */
    llm_lora_run *lora;     /* borrowed from the context: LoRA adapters, or NULL */
};

void llm_state_set_lora(llm_state *s, llm_lora_run *r) {
    s->lora = r;
}

/* F16 -> F32 by table for the attention of short rows, where a call per row costs
 * more than the row (head sizes under 64). Built once, 256 KiB. */
static float f16_table[1 << 16];
static pthread_once_t f16_once = PTHREAD_ONCE_INIT;
static void f16_table_init(void) {
    for (uint32_t i = 0; i < (1u << 16); i++) f16_table[i] = llm_ggml_fp16_to_fp32((ggml_half)i);
}

/* The largest matmul scratch any weight of the model needs for n tokens. */
static size_t work_size_for(const llm_model *m, int n) {
    size_t w = 0;
#define MAXW(wt)                                                            \
    do {                                                                    \
        if ((wt).data) {                                                    \
            size_t s_ = llm_matmul_work_size((wt).type, (wt).cols, n);      \
            if (s_ > w) w = s_;                                             \
        }                                                                   \
    } while (0)
    MAXW(m->output);
    for (int l = 0; l < m->hp.n_layer; l++) {
        const llm_layer *L = &m->layers[l];
        MAXW(L->wq); MAXW(L->wk); MAXW(L->wv); MAXW(L->wo);
        MAXW(L->w_gate); MAXW(L->w_up); MAXW(L->w_down);
        MAXW(L->router); MAXW(L->e_gate); MAXW(L->e_up); MAXW(L->e_down);
    }
#undef MAXW
    /* llm_matmul_multi converts the input once per kind for up to
     * LLM_MULTI_MAX matrices */
    return w * LLM_MULTI_MAX;
}

/* Sizes of every buffer of the state, in one place so that llm_state_bytes
 * and llm_state_new agree. */
typedef struct {
    size_t x, q, kv, kvb, ff, rope, router, sel, scores, keys, rows, row, grow, logits, work, cache;
} state_sizes;

static state_sizes sizes_for(const llm_model *m, int kv_size, int nb, int nt, bool kv_f32, bool all_logits) {
    const llm_hparams *hp = &m->hp;
    state_sizes z;
    size_t el = kv_f32 ? sizeof(float) : sizeof(ggml_half);
    size_t kv_dim = (size_t)hp->n_head_kv * hp->head_dim;
    int ne = hp->n_expert > 0 ? hp->n_expert : 1, nu = hp->n_expert_used > 0 ? hp->n_expert_used : 1;
    z.x = (size_t)nb * hp->n_embd * sizeof(float);
    z.q = (size_t)nb * hp->n_head * hp->head_dim * sizeof(float);
    z.kv = (size_t)nb * kv_dim * sizeof(float);
    z.kvb = (size_t)nb * kv_dim * el;
    z.ff = (size_t)nb * hp->n_ff * sizeof(float);
    z.rope = (size_t)nb * hp->head_dim * sizeof(float);
    z.router = (size_t)nb * ne * sizeof(float);
    z.sel = (size_t)nb * nu * sizeof(int);
    int group = hp->n_head / hp->n_head_kv;
    z.scores = (size_t)nt * group * (kv_size + nb) * sizeof(float);
    z.keys = (size_t)nt * (kv_size + nb) * sizeof(int);
    z.rows = (size_t)nt * 2 * (kv_size + nb) * sizeof(void *);
    z.row = (size_t)nt * hp->head_dim * sizeof(float);
    z.grow = z.row * group;
    z.logits = (size_t)(all_logits ? nb : 1) * hp->n_vocab * sizeof(float);
    z.work = work_size_for(m, nb);
    z.cache = (size_t)hp->n_layer * kv_size * kv_dim * el;
    return z;
}

uint64_t llm_state_bytes(const llm_model *m, int kv_size, int n_batch, int n_threads, bool kv_f32,
                         bool all_logits) {
    state_sizes z = sizes_for(m, kv_size, n_batch, n_threads, kv_f32, all_logits);
    /* x, xb, xb2, xg, yg; q, att; k, v; kb, vb; hb, hb2; sel, sel_w, rows;
     * scores, keys, key rows; qh, tmp; qf, acc; 2 caches. */
    return 5 * (uint64_t)z.x + 2 * (uint64_t)z.q + 2 * (uint64_t)z.kv + 2 * (uint64_t)z.kvb +
           2 * (uint64_t)z.ff + z.rope + z.router + 3 * (uint64_t)z.sel + (uint64_t)n_batch * sizeof(int) + z.scores +
           z.keys + z.rows + 2 * (uint64_t)z.row + 2 * (uint64_t)z.grow + z.logits + z.work + 2 * (uint64_t)z.cache;
}

uint64_t llm_state_kv_bytes(const llm_state *s) {
    return s ? s->kv_bytes : 0;
}

void llm_state_free(llm_state *s) {
    if (!s) return;
    free(s->x); free(s->xb); free(s->xb2); free(s->q); free(s->k); free(s->v);
    free(s->kb); free(s->vb); free(s->att); free(s->hb); free(s->hb2); free(s->rope);
    free(s->router); free(s->sel); free(s->sel_w); free(s->rows); free(s->seq_start); free(s->xg); free(s->yg);
    free(s->scores); free(s->keys); free(s->kvrows); free(s->qh); free(s->qf); free(s->tmp); free(s->acc);
    free(s->logits); free(s->work); free(s->k_cache); free(s->v_cache);
    free(s);
}

int llm_state_new(const llm_model *m, int kv_size, int n_batch, int n_threads, bool kv_f32,
                  bool all_logits, llm_state **out) {
    int rc = LLM_OK;
    *out = NULL;
    if (kv_size <= 0 || n_batch <= 0 || n_threads <= 0) return LLM_ERR_ARG;
    /* sizes come from the file and the caller: refuse absurd products
     * (over 2^46 bytes of KV cache) before any size_t arithmetic can wrap */
    double kv_est = 2.0 * m->hp.n_layer * (double)kv_size * m->hp.n_head_kv * m->hp.head_dim * (kv_f32 ? 4 : 2);
    double act_est = (double)n_batch * ((double)m->hp.n_ff + m->hp.n_embd + (all_logits ? m->hp.n_vocab : 0)) * 4;
    if (kv_est > 70368744177664.0 || act_est > 70368744177664.0) return LLM_ERR_NOMEM;
    pthread_once(&f16_once, f16_table_init);
    llm_state *s = calloc(1, sizeof *s);
    if (!s) return LLM_ERR_NOMEM;
    state_sizes z = sizes_for(m, kv_size, n_batch, n_threads, kv_f32, all_logits);
    s->n_batch = n_batch;
    s->kv_size = kv_size;
    s->n_threads = n_threads;
    s->kv_f16 = !kv_f32;
    s->all_logits = all_logits;
    s->work_size = z.work;
    s->n_vocab = m->hp.n_vocab;
    s->kv_bytes = 2 * (uint64_t)z.cache;
#define ALLOC(p, n) do { if (!((p) = malloc((n) ? (n) : 1))) { rc = LLM_ERR_NOMEM; goto done; } } while (0)
    ALLOC(s->x, z.x); ALLOC(s->xb, z.x); ALLOC(s->xb2, z.x); ALLOC(s->xg, z.x); ALLOC(s->yg, z.x);
    ALLOC(s->q, z.q); ALLOC(s->att, z.q);
    ALLOC(s->k, z.kv); ALLOC(s->v, z.kv);
    ALLOC(s->kb, z.kvb); ALLOC(s->vb, z.kvb);
    ALLOC(s->hb, z.ff); ALLOC(s->hb2, z.ff);
    ALLOC(s->rope, z.rope);
    ALLOC(s->router, z.router);
    ALLOC(s->sel, z.sel); ALLOC(s->sel_w, z.sel); ALLOC(s->rows, z.sel);
    size_t seq_bytes = (size_t)n_batch * sizeof(int);
    ALLOC(s->seq_start, seq_bytes);
    ALLOC(s->scores, z.scores); ALLOC(s->keys, z.keys); ALLOC(s->kvrows, z.rows);
    ALLOC(s->qh, z.row); ALLOC(s->qf, z.grow); ALLOC(s->tmp, z.row); ALLOC(s->acc, z.grow);
    ALLOC(s->logits, z.logits);
    ALLOC(s->work, z.work);
    ALLOC(s->k_cache, z.cache); ALLOC(s->v_cache, z.cache);
#undef ALLOC
    /* Touch the cache now so its memory is committed at creation, not
     * during the first decode. */
    memset(s->k_cache, 0, z.cache);
    memset(s->v_cache, 0, z.cache);
    llm_state_clear(s);
done:
    if (rc != LLM_OK) {
        llm_state_free(s);
        return rc;
    }
    *out = s;
    return LLM_OK;
}

void llm_state_clear(llm_state *s) {
    s->cache_lo = s->cache_hi = 0;
}

void llm_state_truncate(llm_state *s, int pos) {
    if (pos < s->cache_hi) s->cache_hi = pos < s->cache_lo ? s->cache_lo : pos;
}

const float *llm_state_logits(const llm_state *s, int row) {
    if (!s || row < 0 || row >= s->n_logit_rows) return NULL;
    return s->logits + (size_t)row * s->n_vocab;
}

/* ------------------------------------------------------------ the blocks */

/* o = x / sqrt(mean(x^2) + eps) * w over n elements; the sum of squares in
 * double, as llama.cpp does. */
static void rmsnorm(float *o, const float *x, const float *w, int n, float eps) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) o[i] = (x[i] * scale) * w[i];
}

/* cos/sin table of one position: rope[2i] = cos(theta_i), rope[2i+1] =
 * sin(theta_i), theta_i = pos * base^(-2i/n_rot), the angle stepped by a
 * float factor like llama.cpp so the rounding matches. */
static void rope_table(float *rope, int pos, int n_rot, float base) {
    float theta_scale = powf(base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int i = 0; i < n_rot; i += 2) {
        rope[i] = cosf(theta);
        rope[i + 1] = sinf(theta);
        theta *= theta_scale;
    }
}

/* Rotates every head (n_heads x head_dim) of one token's vector in place. */
static void rope_apply(float *v, const float *rope, int n_heads, int head_dim) {
    for (int h = 0; h < n_heads; h++) {
        float *x = v + (size_t)h * head_dim;
        for (int i = 0; i < head_dim; i += 2) {
            float c = rope[i], s = rope[i + 1];
            float x0 = x[i], x1 = x[i + 1];
            x[i] = x0 * c - x1 * s;
            x[i + 1] = x0 * s + x1 * c;
        }
    }
}

/* One attention job: what every thread needs to find its (token, head)
 * units. */
typedef struct {
    const llm_model *m;
    llm_state *s;
    const llm_batch *b;
    int layer;
    int window;         /* 0 = full attention */
    _Atomic int next;   /* next unit, counted from the last token down */
} att_job;

/* Q·K of one key row against the query (already rounded to the cache
 * precision: qh for F16, q for F32). Row lengths that are a multiple of 64
 * go through the SIMD kernel (float lanes, as llama.cpp's vec-dot does for
 * them); shorter rows are summed one product at a time in double, as
 * llama.cpp's vec-dot does below its 64-element step. The products of F16
 * values are exact in float. The softmax amplifies differences in the
 * scores: on stories260K (head size 8) a float-lane sum measured 3e-4 in
 * log-prob against llama.cpp, the double sum 5e-6. */
static inline float att_score(const llm_kernel_table *kt, const llm_state *s, const ggml_half *qh,
                              const float *qf, const float *q, const void *krow, float *tmp, int hd) {
    if (hd % 64 == 0)
        return s->kv_f16 ? kt->dot_f16(qh, krow, hd) : kt->dot_f32(q, krow, hd);
    (void)tmp;
    double acc = 0.0;
    if (s->kv_f16) {
        const ggml_half *k = krow;
        for (int d = 0; d < hd; d++) acc += (double)(qf[d] * f16_table[k[d]]);
    } else {
        const float *k = krow;
        for (int d = 0; d < hd; d++) acc += (double)(q[d] * k[d]);
    }
    return (float)acc;
}

/* The keys token i of the batch sees, in increasing position: key[] >= 0
 * is a cache slot (positions [cache_lo, cache_hi) of earlier calls,
 * position p in slot p % kv_size), < 0 a batch row (-1 - row). Returns
 * their number. */
static int att_keys(const llm_state *s, const llm_batch *b, int i, int W, int *key) {
    int pi = b->pos[i], nk = 0;
    if (b->use_cache) {
        int lo = s->cache_lo, hi = s->cache_hi < pi + 1 ? s->cache_hi : pi + 1;
        if (W > 0 && lo < pi - W + 1) lo = pi - W + 1;
        for (int pj = lo; pj < hi; pj++) key[nk++] = pj % s->kv_size;
    }
    /* batch rows: a sequence's tokens are consecutive rows with consecutive
     * positions (checked by llm_forward), so token i sees rows
     * seq_start[i]..i, cut to the window */
    int j0 = s->seq_start[i];
    if (W > 0 && j0 < i - W + 1) j0 = i - W + 1;
    for (int j = j0; j <= i; j++) key[nk++] = -1 - j;
    return nk;
}

/* Attention units from a shared counter, the last tokens (most keys)
 * first so the threads finish together; every unit is computed the same
 * way whoever runs it. With an F16 cache, a head size the level's att_f16
 * kernel takes, a unit is (token, KV head): the query heads sharing the
 * KV head go through the kernel together, so each key and value row is
 * converted once for all of them. Otherwise a unit is (token, head):
 * softmax(q·k * scale) over the keys, times V, through dot/axpy. Keys are
 * visited in increasing position, the order of a one-shot prefill, so a
 * rolling decode rounds exactly like it. */
static void attention_worker(void *arg, int ith, int nth) {
    (void)nth;
    att_job *J = arg;
    const llm_kernel_table *kt = llm_kernels_active();
    const llm_hparams *hp = &J->m->hp;
    llm_state *s = J->s;
    const llm_batch *b = J->b;
    const int hd = hp->head_dim, n_head = hp->n_head, group = hp->n_head / hp->n_head_kv;
    const int kv_dim = hp->n_head_kv * hd, q_dim = n_head * hd, W = J->window;
    const float scale = 1.0f / sqrtf((float)hd);
    const size_t el = s->kv_f16 ? sizeof(ggml_half) : sizeof(float);
    const size_t row = (size_t)kv_dim * el;
    const uint8_t *kc = (const uint8_t *)s->k_cache + (size_t)J->layer * s->kv_size * row;
    const uint8_t *vc = (const uint8_t *)s->v_cache + (size_t)J->layer * s->kv_size * row;
    const int n_keys_max = s->kv_size + s->n_batch;
    float *sc = s->scores + (size_t)ith * group * n_keys_max;
    int *key = s->keys + (size_t)ith * n_keys_max;
    float *acc = s->acc + (size_t)ith * group * hd;
    float *tmp = s->tmp + (size_t)ith * hd;
    float *qf = s->qf + (size_t)ith * group * hd;
    ggml_half *qh = s->qh + (size_t)ith * hd;
    const bool grouped = s->kv_f16 && kt->att_f16 && hd % 64 == 0 && hd <= LLM_ATT_MAX_HD;
    const int per_tok = grouped ? hp->n_head_kv : n_head;
    const int n_units = b->n * per_tok;
    for (;;) {
        int u = atomic_fetch_add_explicit(&J->next, 1, memory_order_relaxed);
        if (u >= n_units) break;
        u = n_units - 1 - u;
        int i = u / per_tok;
        int nk = att_keys(s, b, i, W, key);
        if (grouped) {
            int kvh = u % per_tok;
            size_t koff = (size_t)kvh * hd * el;
            const ggml_half **kr = (const ggml_half **)s->kvrows + (size_t)ith * 2 * n_keys_max, **vr = kr + n_keys_max;
            for (int t = 0; t < nk; t++) {
                kr[t] = (const ggml_half *)((key[t] >= 0 ? kc + (size_t)key[t] * row
                                                         : (const uint8_t *)s->kb + (size_t)(-1 - key[t]) * row) + koff);
                vr[t] = (const ggml_half *)((key[t] >= 0 ? vc + (size_t)key[t] * row
                                                         : (const uint8_t *)s->vb + (size_t)(-1 - key[t]) * row) + koff);
            }
            /* the query heads of the group, rounded to F16 (llama.cpp's
             * K·Q converts Q to K's type) */
            for (int g = 0; g < group; g++) {
                llm_fp32_to_fp16_row(s->q + (size_t)i * q_dim + (size_t)(kvh * group + g) * hd, qh, hd);
                llm_fp16_to_fp32_row(qh, qf + (size_t)g * hd, hd);
            }
            kt->att_f16(qf, group, hd, kr, vr, nk, scale, sc, acc);
            memcpy(s->att + (size_t)i * q_dim + (size_t)kvh * group * hd, acc, (size_t)group * hd * sizeof *acc);
            continue;
        }
        int h = u % per_tok, kvh = h / group;
        const float *q = s->q + (size_t)i * q_dim + (size_t)h * hd;
        size_t koff = (size_t)kvh * hd * el;
        if (s->kv_f16) {
            llm_fp32_to_fp16_row(q, qh, hd);
            llm_fp16_to_fp32_row(qh, qf, hd);
        }
        float mx = -INFINITY;
        for (int t = 0; t < nk; t++) {
            const uint8_t *kr = key[t] >= 0 ? kc + (size_t)key[t] * row : (const uint8_t *)s->kb + (size_t)(-1 - key[t]) * row;
            float d = att_score(kt, s, qh, qf, q, kr + koff, tmp, hd) * scale;
            sc[t] = d;
            if (d > mx) mx = d;
        }
        /* softmax in f32 with a double sum */
        double sum = 0.0;
        for (int t = 0; t < nk; t++) {
            float e = expf(sc[t] - mx);
            sc[t] = e;
            sum += e;
        }
        float inv = (float)(1.0 / sum);
        for (int t = 0; t < nk; t++) {
            float p = sc[t] * inv;
            /* with an F16 cache, llama.cpp multiplies F16 probabilities by V */
            sc[t] = s->kv_f16 ? f16_table[llm_ggml_fp32_to_fp16(p)] : p;
        }
        /* P·V: sequential float sums over the keys (measured closest to
         * llama.cpp: 5e-6 vs 8e-5 with double sums on stories260K) */
        memset(acc, 0, (size_t)hd * sizeof *acc);
        for (int t = 0; t < nk; t++) {
            const uint8_t *vr = key[t] >= 0 ? vc + (size_t)key[t] * row : (const uint8_t *)s->vb + (size_t)(-1 - key[t]) * row;
            if (s->kv_f16) kt->axpy_f16(sc[t], (const ggml_half *)(vr + koff), acc, hd);
            else kt->axpy_f32(sc[t], (const float *)(vr + koff), acc, hd);
        }
        memcpy(s->att + (size_t)i * q_dim + (size_t)h * hd, acc, (size_t)hd * sizeof *acc);
    }
}

/* Sparse MoE FFN of a batch: for each token, softmax over the router logits
 * of all experts, the top-k, their weights renormalised over the k; each
 * expert runs once over the tokens routed to it (matrix-matrix), and its
 * SwiGLU output is added with the token's weight (experts in the token's
 * top-k order, as llama.cpp sums them). xb: normed input; out: xb2. */
static void moe_ffn(const llm_model *m, llm_state *s, const llm_layer *L, llm_pool *pool, int n) {
    const llm_hparams *hp = &m->hp;
    const int dim = hp->n_embd, ne = hp->n_expert, k = hp->n_expert_used;
    llm_mat router = llm_weight_mat(&L->router, 0);
    llm_matmul_mat(pool, &router, s->xb, n, s->router, s->work);
    if (s->lora) llm_lora_add(s->lora, pool, (int)(L - m->layers) * LLM_LORA_PER_LAYER + LLM_LORA_ROUTER, s->xb, n,
                              s->router);
    for (int i = 0; i < n; i++) {
        float *p = s->router + (size_t)i * ne;
        float mx = p[0];
        for (int e = 1; e < ne; e++) if (p[e] > mx) mx = p[e];
        double sum = 0.0;
        for (int e = 0; e < ne; e++) { p[e] = expf(p[e] - mx); sum += p[e]; }
        float inv = (float)(1.0 / sum);
        for (int e = 0; e < ne; e++) p[e] *= inv;
        /* top-k by repeated selection (k is small); ties keep the lower id */
        int *sel = s->sel + (size_t)i * k;
        float *w = s->sel_w + (size_t)i * k;
        float wsum = 0.0f;
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < ne; e++) {
                bool taken = false;
                for (int t = 0; t < j; t++) if (sel[t] == e) taken = true;
                if (!taken && (best < 0 || p[e] > p[best])) best = e;
            }
            sel[j] = best;
            w[j] = p[best];
            wsum += p[best];
        }
        for (int j = 0; j < k; j++) w[j] /= wsum;
    }
    memset(s->xb2, 0, (size_t)n * dim * sizeof(float));
    /* Accumulate in top-k rank order: all rank-0 contributions, then rank 1,
     * ... so each token's sum runs in its own expert order. */
    for (int rank = 0; rank < k; rank++) {
        for (int e = 0; e < ne; e++) {
            int cnt = 0;
            for (int i = 0; i < n; i++)
                if (s->sel[(size_t)i * k + rank] == e) {
                    s->rows[cnt] = i;
                    memcpy(s->xg + (size_t)cnt * dim, s->xb + (size_t)i * dim, (size_t)dim * sizeof(float));
                    cnt++;
                }
            if (!cnt) continue;
            llm_mat gu[2] = {llm_weight_mat(&L->e_gate, e), llm_weight_mat(&L->e_up, e)};
            float *gy[2] = {s->hb, s->hb2};
            llm_matmul_multi(pool, gu, 2, s->xg, cnt, gy, LLM_MULTI_GLU, s->work);
            llm_mat down = llm_weight_mat(&L->e_down, e);
            llm_matmul_mat(pool, &down, s->hb, cnt, s->yg, s->work);
            for (int c = 0; c < cnt; c++) {
                int i = s->rows[c];
                float wt = s->sel_w[(size_t)i * k + rank];
                float *o = s->xb2 + (size_t)i * dim;
                const float *y = s->yg + (size_t)c * dim;
                for (int d = 0; d < dim; d++) o[d] += y[d] * wt;
            }
        }
    }
}

/* Converts n rows of f32 to the cache precision. */
static void to_cache(const llm_state *s, const float *src, void *dst, size_t n) {
    if (s->kv_f16) llm_fp32_to_fp16_row(src, dst, (int)n);
    else memcpy(dst, src, n * sizeof(float));
}

/* --------------------------------------------------------- forward pass */
int llm_forward(const llm_model *m, llm_state *s, llm_pool *pool, const llm_batch *b) {
    llm_model_ensure_packed(m);
    const llm_hparams *hp = &m->hp;
    const int n = b->n, dim = hp->n_embd, hd = hp->head_dim;
    const int q_dim = hp->n_head * hd, kv_dim = hp->n_head_kv * hd;
    const size_t el = s->kv_f16 ? sizeof(ggml_half) : sizeof(float);
    if (n <= 0 || n > s->n_batch || (b->logits == 2 && !s->all_logits)) return LLM_ERR_ARG;
    for (int i = 0; i < n; i++)
        if (b->tokens[i] < 0 || b->tokens[i] >= hp->n_vocab || b->pos[i] < 0) return LLM_ERR_ARG;
    /* a sequence is a run of consecutive rows with consecutive positions */
    for (int i = 0; i < n; i++) {
        bool cont = i > 0 && (!b->seq || b->seq[i] == b->seq[i - 1]);
        if (cont && b->pos[i] != b->pos[i - 1] + 1) return LLM_ERR_ARG;
        s->seq_start[i] = cont ? s->seq_start[i - 1] : i;
    }
    /* the cache holds one run of consecutive positions: a batch that uses or
     * extends it must continue that run */
    if (b->use_cache || b->store_kv)
        for (int i = 0; i < n; i++)
            if (b->pos[i] != s->cache_hi + i || (b->seq && b->seq[i] != b->seq[0])) return LLM_ERR_ARG;
    int last_layer = hp->n_layer - 1;
    if (b->hidden && b->hidden_layer >= 0 && b->logits == 0 && b->hidden_layer < last_layer && !b->n_hidden_more)
        last_layer = b->hidden_layer;
    bool more_final = false;
    if (b->n_hidden_more && b->logits == 0) {
        int hi = b->hidden ? b->hidden_layer : -2;
        for (int j = 0; j < b->n_hidden_more; j++) {
            int hl = b->hidden_more_layer[j];
            if (hl < 0 || hl >= hp->n_layer) more_final = true;
            else if (hl > hi) hi = hl;
        }
        if (b->hidden && (b->hidden_layer < 0 || b->hidden_layer >= hp->n_layer)) more_final = true;
        if (!more_final && hi >= 0 && hi < last_layer) last_layer = hi;
    } else {
        for (int j = 0; j < b->n_hidden_more; j++)
            if (b->hidden_more_layer[j] < 0 || b->hidden_more_layer[j] >= hp->n_layer) more_final = true;
    }
    s->n_logit_rows = 0;

    /* token embeddings: rows of token_embd dequantized */
    size_t emb_row = llm_ggml_row_size(m->tok_embd.type, dim);
    for (int i = 0; i < n; i++)
        llm_dequantize_row(m->tok_embd.type, llm_weight_row(&m->tok_embd, 0, b->tokens[i], emb_row),
                           s->x + (size_t)i * dim, dim);
    if (s->lora) llm_lora_add_embd(s->lora, pool, m, b->tokens, n, s->x);
    for (int i = 0; i < n; i++) rope_table(s->rope + (size_t)i * hd, b->pos[i], hp->n_rot, hp->rope_theta);

    for (int l = 0; l <= last_layer; l++) {
        const llm_layer *L = &m->layers[l];
        /* attention block */
        for (int i = 0; i < n; i++)
            rmsnorm(s->xb + (size_t)i * dim, s->x + (size_t)i * dim, L->attn_norm, dim, hp->rms_eps);
        llm_mat qkv[3] = {llm_weight_mat(&L->wq, 0), llm_weight_mat(&L->wk, 0), llm_weight_mat(&L->wv, 0)};
        float *qkv_y[3] = {s->q, s->k, s->v};
        llm_matmul_multi(pool, qkv, 3, s->xb, n, qkv_y, 0, s->work);
        if (s->lora) {
            llm_lora_add(s->lora, pool, LLM_LORA_SLOT(l, LLM_LORA_Q), s->xb, n, s->q);
            llm_lora_add(s->lora, pool, LLM_LORA_SLOT(l, LLM_LORA_K), s->xb, n, s->k);
            llm_lora_add(s->lora, pool, LLM_LORA_SLOT(l, LLM_LORA_V), s->xb, n, s->v);
        }
        for (int i = 0; i < n; i++) {
            rope_apply(s->q + (size_t)i * q_dim, s->rope + (size_t)i * hd, hp->n_head, hd);
            rope_apply(s->k + (size_t)i * kv_dim, s->rope + (size_t)i * hd, hp->n_head_kv, hd);
        }
        to_cache(s, s->k, s->kb, (size_t)n * kv_dim);
        to_cache(s, s->v, s->vb, (size_t)n * kv_dim);
        att_job job = {m, s, b, l, hp->swa_window, 0};
        atomic_init(&job.next, 0);
        llm_pool_run(pool, attention_worker, &job);
        if (b->store_kv) {
            /* later calls see this batch through the cache; the rolling
             * buffer keeps position p in slot p % kv_size */
            uint8_t *kc = (uint8_t *)s->k_cache + (size_t)l * s->kv_size * kv_dim * el;
            uint8_t *vc = (uint8_t *)s->v_cache + (size_t)l * s->kv_size * kv_dim * el;
            for (int i = 0; i < n; i++) {
                size_t slot = (size_t)(b->pos[i] % s->kv_size);
                memcpy(kc + slot * kv_dim * el, (uint8_t *)s->kb + (size_t)i * kv_dim * el, kv_dim * el);
                memcpy(vc + slot * kv_dim * el, (uint8_t *)s->vb + (size_t)i * kv_dim * el, kv_dim * el);
            }
        }
        llm_mat wo = llm_weight_mat(&L->wo, 0);
        llm_matmul_mat(pool, &wo, s->att, n, s->xb2, s->work);
        if (s->lora) llm_lora_add(s->lora, pool, LLM_LORA_SLOT(l, LLM_LORA_O), s->att, n, s->xb2);
        for (size_t t = 0; t < (size_t)n * dim; t++) s->x[t] += s->xb2[t];

        /* feed-forward block */
        for (int i = 0; i < n; i++)
            rmsnorm(s->xb + (size_t)i * dim, s->x + (size_t)i * dim, L->ffn_norm, dim, hp->rms_eps);
        if (hp->n_expert == 0) {
            /* gate and up in one job, the SwiGLU applied as rows finish —
             * unless a LoRA adapts gate or up: its delta comes before the
             * SwiGLU, which then runs after it */
            llm_mat gu[2] = {llm_weight_mat(&L->w_gate, 0), llm_weight_mat(&L->w_up, 0)};
            float *gy[2] = {s->hb, s->hb2};
            bool lora_gu = s->lora && (llm_lora_has(s->lora, LLM_LORA_SLOT(l, LLM_LORA_GATE)) ||
                                       llm_lora_has(s->lora, LLM_LORA_SLOT(l, LLM_LORA_UP)));
            llm_matmul_multi(pool, gu, 2, s->xb, n, gy, lora_gu ? 0 : LLM_MULTI_GLU, s->work);
            if (lora_gu) {
                llm_lora_add(s->lora, pool, LLM_LORA_SLOT(l, LLM_LORA_GATE), s->xb, n, s->hb);
                llm_lora_add(s->lora, pool, LLM_LORA_SLOT(l, LLM_LORA_UP), s->xb, n, s->hb2);
                llm_silu_mul(s->hb, s->hb2, n * hp->n_ff);
            }
            llm_mat down = llm_weight_mat(&L->w_down, 0);
            llm_matmul_mat(pool, &down, s->hb, n, s->xb2, s->work);
            if (s->lora) llm_lora_add(s->lora, pool, LLM_LORA_SLOT(l, LLM_LORA_DOWN), s->hb, n, s->xb2);
        } else {
            moe_ffn(m, s, L, pool, n);
        }
        for (size_t t = 0; t < (size_t)n * dim; t++) s->x[t] += s->xb2[t];
        if (b->hidden && b->hidden_layer == l)
            memcpy(b->hidden, s->x, (size_t)n * dim * sizeof(float));
        for (int j = 0; j < b->n_hidden_more; j++)
            if (b->hidden_more_layer[j] == l) memcpy(b->hidden_more[j], s->x, (size_t)n * dim * sizeof(float));
    }
    if (b->store_kv) {
        s->cache_hi = b->pos[n - 1] + 1;
        if (s->cache_lo < s->cache_hi - s->kv_size) s->cache_lo = s->cache_hi - s->kv_size;
    }
    if (last_layer < hp->n_layer - 1) return LLM_OK;

    /* final norm, then the output head for the rows asked for */
    int first = b->logits == 2 ? 0 : n - 1;
    bool want_hidden = b->hidden && (b->hidden_layer < 0 || b->hidden_layer >= hp->n_layer);
    if (want_hidden || more_final) first = 0;
    for (int i = first; i < n; i++)
        rmsnorm(s->xb + (size_t)i * dim, s->x + (size_t)i * dim, m->out_norm, dim, hp->rms_eps);
    if (want_hidden) memcpy(b->hidden, s->xb, (size_t)n * dim * sizeof(float));
    for (int j = 0; j < b->n_hidden_more; j++)
        if (b->hidden_more_layer[j] < 0 || b->hidden_more_layer[j] >= hp->n_layer)
            memcpy(b->hidden_more[j], s->xb, (size_t)n * dim * sizeof(float));
    if (b->logits == 2) {
        llm_mat out = llm_weight_mat(&m->output, 0);
        llm_matmul_mat(pool, &out, s->xb, n, s->logits, s->work);
        if (s->lora) llm_lora_add(s->lora, pool, LLM_LORA_SLOT_OUTPUT(m), s->xb, n, s->logits);
        s->n_logit_rows = n;
    } else if (b->logits == 1) {
        llm_mat out = llm_weight_mat(&m->output, 0);
        llm_matmul_mat(pool, &out, s->xb + (size_t)(n - 1) * dim, 1, s->logits, s->work);
        if (s->lora) llm_lora_add(s->lora, pool, LLM_LORA_SLOT_OUTPUT(m), s->xb + (size_t)(n - 1) * dim, 1, s->logits);
        s->n_logit_rows = 1;
    }
    return LLM_OK;
}
