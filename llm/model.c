/* model.c — loads a Mistral/Mixtral GGUF: hyperparameters, weight views into
 * the mapping (never copied), shape/type checks, model info and SHA-256. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm/ggml.h"
#include "llm/gguf.h"
#include "llm/kernels.h"
#include "llm/model.h"
#include "llm/tokenizer.h"

const char *llm_status_str(int status) {
    switch (status) {
    case LLM_OK: return "ok";
    case LLM_ERR_IO: return "I/O error";
    case LLM_ERR_FORMAT: return "bad file format";
    case LLM_ERR_UNSUPPORTED: return "unsupported";
    case LLM_ERR_NOMEM: return "out of memory";
    case LLM_ERR_ARG: return "bad argument";
    case LLM_ERR_CONTEXT_FULL: return "context full";
    case LLM_ERR_CANCELLED: return "cancelled";
    default: return "unknown error";
    }
}

llm_model_params llm_model_default_params(void) {
    llm_model_params p;
    memset(&p, 0, sizeof p);
    p.vocab_only = false;
    p.swa_window = -1;
    return p;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Weight types the kernels run. */
/* Every type the kernels run, except the activation-only ones. */
static bool weight_type_ok(uint32_t t) {
    return llm_type_supported(t) && t != GGML_TYPE_Q8_K && t != GGML_TYPE_Q8_1;
}

/* Reads a non-negative int hyperparameter "llama.<key>" into *out. Missing
 * keys keep *out when !required. Returns 0 or sets err and returns -1. */
static int hp_int(const gguf_file *f, const char *arch, const char *key, bool required, int *out,
                  const char *path, char *err, size_t errlen) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    uint64_t v;
    if (!llm_gguf_find_kv(f, full)) {
        if (!required) return 0;
        set_err(err, errlen, "%s: missing hyperparameter %s", path, full);
        return -1;
    }
    if (!llm_gguf_get_u64(f, full, &v) || v > (1u << 30)) {
        set_err(err, errlen, "%s: hyperparameter %s is not a sane non-negative integer", path, full);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int hp_float(const gguf_file *f, const char *arch, const char *key, bool required, float *out,
                    const char *path, char *err, size_t errlen) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    if (!llm_gguf_find_kv(f, full)) {
        if (!required) return 0;
        set_err(err, errlen, "%s: missing hyperparameter %s", path, full);
        return -1;
    }
    if (!llm_gguf_get_f32(f, full, out) || !(*out == *out)) {
        set_err(err, errlen, "%s: hyperparameter %s is not a number", path, full);
        return -1;
    }
    return 0;
}

/* Finds tensor `name`, checks its shape (ne0, ne1, ne2; ne2 = 0 means 2-D
 * or 1-D per ne1 = 0) and type; fills *w. Returns LLM_OK or an error with
 * err naming the tensor. */
static int get_weight(llm_model *m, const char *name, int64_t ne0, int64_t ne1, int64_t ne2,
                      bool must_f32, llm_weight *w, char *err, size_t errlen) {
    const gguf_tensor *t = llm_gguf_find_tensor(m->gguf, name);
    if (!t) {
        set_err(err, errlen, "%s: tensor %s is missing", m->path, name);
        return LLM_ERR_FORMAT;
    }
    uint32_t nd = ne2 ? 3 : ne1 ? 2 : 1;
    int64_t want[3] = {ne0, ne1 ? ne1 : 1, ne2 ? ne2 : 1};
    bool shape_ok = t->n_dims <= 3 && (t->n_dims == nd || (t->n_dims < nd));
    for (int i = 0; i < 3 && shape_ok; i++)
        if ((int64_t)t->ne[i] != want[i]) shape_ok = false;
    if (t->n_dims == 4 && t->ne[3] != 1) shape_ok = false;
    if (!shape_ok) {
        set_err(err, errlen,
                "%s: tensor %s has shape [%llu, %llu, %llu], expected [%lld, %lld, %lld] from the hyperparameters",
                m->path, name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                (unsigned long long)t->ne[2], (long long)want[0], (long long)want[1], (long long)want[2]);
        return LLM_ERR_FORMAT;
    }
    if (must_f32 ? t->type != GGML_TYPE_F32 : !weight_type_ok(t->type)) {
        set_err(err, errlen, "%s: tensor %s has type %s, which mrag does not run%s", m->path, name,
                llm_type_name(t->type), must_f32 ? " (norm weights must be f32)" : "");
        return LLM_ERR_UNSUPPORTED;
    }
    size_t row_bytes = llm_ggml_row_size(t->type, (uint64_t)ne0);
    if (row_bytes == 0) {
        set_err(err, errlen, "%s: tensor %s: row of %lld is not a whole number of %s blocks", m->path,
                name, (long long)ne0, llm_type_name(t->type));
        return LLM_ERR_FORMAT;
    }
    w->data = t->data;
    w->type = t->type;
    w->cols = (int)ne0;
    w->rows = (int)want[1];
    w->stride = ne2 ? row_bytes * (size_t)want[1] : 0;
    return LLM_OK;
}

static int get_norm(llm_model *m, const char *name, const float **out, char *err, size_t errlen) {
    llm_weight w;
    int rc = get_weight(m, name, m->hp.n_embd, 0, 0, true, &w, err, errlen);
    if (rc == LLM_OK) *out = (const float *)w.data;
    return rc;
}

/* Reads hyperparameters and checks they are coherent. */
static int load_hparams(llm_model *m, const llm_model_params *p, char *err, size_t errlen) {
    gguf_file *f = m->gguf;
    const char *a = m->arch, *path = m->path;
    llm_hparams *hp = &m->hp;
    hp->rope_theta = 10000.0f;
    hp->rms_eps = 1e-5f;
    if (hp_int(f, a, "embedding_length", true, &hp->n_embd, path, err, errlen) ||
        hp_int(f, a, "block_count", true, &hp->n_layer, path, err, errlen) ||
        hp_int(f, a, "feed_forward_length", true, &hp->n_ff, path, err, errlen) ||
        hp_int(f, a, "attention.head_count", true, &hp->n_head, path, err, errlen) ||
        hp_int(f, a, "context_length", false, &hp->n_ctx_train, path, err, errlen) ||
        hp_int(f, a, "expert_count", false, &hp->n_expert, path, err, errlen) ||
        hp_int(f, a, "expert_used_count", false, &hp->n_expert_used, path, err, errlen) ||
        hp_float(f, a, "attention.layer_norm_rms_epsilon", true, &hp->rms_eps, path, err, errlen) ||
        hp_float(f, a, "rope.freq_base", false, &hp->rope_theta, path, err, errlen))
        return LLM_ERR_FORMAT;
    hp->n_head_kv = hp->n_head;
    if (hp_int(f, a, "attention.head_count_kv", false, &hp->n_head_kv, path, err, errlen))
        return LLM_ERR_FORMAT;
    if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_ff <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0 ||
        hp->n_embd % hp->n_head != 0 || hp->n_head % hp->n_head_kv != 0) {
        set_err(err, errlen,
                "%s: incoherent hyperparameters (embedding_length %d, block_count %d, feed_forward_length %d, "
                "head_count %d, head_count_kv %d)",
                path, hp->n_embd, hp->n_layer, hp->n_ff, hp->n_head, hp->n_head_kv);
        return LLM_ERR_FORMAT;
    }
    hp->head_dim = hp->n_embd / hp->n_head;
    hp->n_rot = hp->head_dim;
    if (hp_int(f, a, "rope.dimension_count", false, &hp->n_rot, path, err, errlen)) return LLM_ERR_FORMAT;
    if (hp->n_rot != hp->head_dim) {
        set_err(err, errlen, "%s: rope.dimension_count %d differs from the head size %d (partial RoPE is not supported)",
                path, hp->n_rot, hp->head_dim);
        return LLM_ERR_UNSUPPORTED;
    }
    /* +inf or NaN here gives empty answers and NaN embeddings: refused */
    if (hp->head_dim % 2 != 0 || !isfinite(hp->rms_eps) || !(hp->rms_eps > 0) || !(hp->rms_eps < 1) ||
        !isfinite(hp->rope_theta) || !(hp->rope_theta > 0)) {
        set_err(err, errlen, "%s: bad head size %d, rms epsilon %g or rope base %g", path, hp->head_dim,
                (double)hp->rms_eps, (double)hp->rope_theta);
        return LLM_ERR_FORMAT;
    }
    if (hp->n_expert == 1) hp->n_expert = 0;
    if (hp->n_expert > 0 && (hp->n_expert_used <= 0 || hp->n_expert_used > hp->n_expert || hp->n_expert > 256)) {
        set_err(err, errlen, "%s: expert_used_count %d does not fit expert_count %d", path, hp->n_expert_used,
                hp->n_expert);
        return LLM_ERR_FORMAT;
    }
    int swa = 0;
    if (hp_int(f, a, "attention.sliding_window", false, &swa, path, err, errlen)) return LLM_ERR_FORMAT;
    hp->swa_window = (p && p->swa_window >= 0) ? p->swa_window : swa;
    if (hp->n_ctx_train <= 0) hp->n_ctx_train = 4096;
    return LLM_OK;
}

/* Finds and checks every weight tensor against the hyperparameters. */
static int load_weights(llm_model *m, char *err, size_t errlen) {
    llm_hparams *hp = &m->hp;
    int rc;
    const gguf_tensor *te = llm_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!te) {
        set_err(err, errlen, "%s: tensor token_embd.weight is missing", m->path);
        return LLM_ERR_FORMAT;
    }
    if (te->ne[1] == 0 || te->ne[1] > (1u << 24)) {
        set_err(err, errlen, "%s: tensor token_embd.weight has a bad vocabulary size %llu", m->path,
                (unsigned long long)te->ne[1]);
        return LLM_ERR_FORMAT;
    }
    hp->n_vocab = (int)te->ne[1];
    if (m->vocab && llm_vocab_n(m->vocab) != hp->n_vocab) {
        set_err(err, errlen, "%s: tensor token_embd.weight has %d rows but the tokenizer has %d tokens", m->path,
                hp->n_vocab, (int)llm_vocab_n(m->vocab));
        return LLM_ERR_FORMAT;
    }
    if ((rc = get_weight(m, "token_embd.weight", hp->n_embd, hp->n_vocab, 0, false, &m->tok_embd, err, errlen)))
        return rc;
    if ((rc = get_norm(m, "output_norm.weight", &m->out_norm, err, errlen))) return rc;
    if (llm_gguf_find_tensor(m->gguf, "output.weight")) {
        if ((rc = get_weight(m, "output.weight", hp->n_embd, hp->n_vocab, 0, false, &m->output, err, errlen)))
            return rc;
    } else {
        m->output = m->tok_embd;
        m->tied_output = true;
    }
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) {
        set_err(err, errlen, "%s: out of memory", m->path);
        return LLM_ERR_NOMEM;
    }
    int q_dim = hp->n_head * hp->head_dim, kv_dim = hp->n_head_kv * hp->head_dim;
    for (int l = 0; l < hp->n_layer; l++) {
        llm_layer *L = &m->layers[l];
        char n[96];
#define W(suffix, ne0, ne1, ne2, dst)                                                           \
    do {                                                                                        \
        snprintf(n, sizeof n, "blk.%d.%s", l, suffix);                                          \
        if ((rc = get_weight(m, n, ne0, ne1, ne2, false, dst, err, errlen))) return rc;         \
    } while (0)
        snprintf(n, sizeof n, "blk.%d.attn_norm.weight", l);
        if ((rc = get_norm(m, n, &L->attn_norm, err, errlen))) return rc;
        snprintf(n, sizeof n, "blk.%d.ffn_norm.weight", l);
        if ((rc = get_norm(m, n, &L->ffn_norm, err, errlen))) return rc;
        W("attn_q.weight", hp->n_embd, q_dim, 0, &L->wq);
        W("attn_k.weight", hp->n_embd, kv_dim, 0, &L->wk);
        W("attn_v.weight", hp->n_embd, kv_dim, 0, &L->wv);
        W("attn_output.weight", q_dim, hp->n_embd, 0, &L->wo);
        if (hp->n_expert == 0) {
            W("ffn_gate.weight", hp->n_embd, hp->n_ff, 0, &L->w_gate);
            W("ffn_up.weight", hp->n_embd, hp->n_ff, 0, &L->w_up);
            W("ffn_down.weight", hp->n_ff, hp->n_embd, 0, &L->w_down);
        } else {
            snprintf(n, sizeof n, "blk.%d.ffn_gate_exps.weight", l);
            if (!llm_gguf_find_tensor(m->gguf, n)) {
                snprintf(n, sizeof n, "blk.%d.ffn_gate.0.weight", l);
                if (llm_gguf_find_tensor(m->gguf, n)) {
                    set_err(err, errlen,
                            "%s: per-expert tensors (%s) are an old Mixtral layout; re-convert the model "
                            "(merged ffn_*_exps tensors are supported)", m->path, n);
                    return LLM_ERR_UNSUPPORTED;
                }
            }
            W("ffn_gate_inp.weight", hp->n_embd, hp->n_expert, 0, &L->router);
            W("ffn_gate_exps.weight", hp->n_embd, hp->n_ff, hp->n_expert, &L->e_gate);
            W("ffn_up_exps.weight", hp->n_embd, hp->n_ff, hp->n_expert, &L->e_up);
            W("ffn_down_exps.weight", hp->n_ff, hp->n_embd, hp->n_expert, &L->e_down);
        }
#undef W
    }
    return LLM_OK;
}

/* Tensor counts, parameter and byte totals for model-info. */
static void count_tensors(llm_model *m) {
    uint64_t n = llm_gguf_tensor_count(m->gguf);
    m->n_tensors = (int)n;
    for (uint64_t i = 0; i < n; i++) {
        const gguf_tensor *t = llm_gguf_tensor_at(m->gguf, i);
        if (t->type < 40) m->tensor_type_count[t->type]++;
        m->n_params += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        m->weight_bytes += t->nbytes;
    }
}

int llm_model_load(const char *path, const llm_model_params *params, llm_model **out, char *err,
                   size_t errlen) {
    int rc = LLM_OK;
    llm_model *m = NULL;
    llm_model_params defp = llm_model_default_params();
    if (!params) params = &defp;
    if (out) *out = NULL;
    if (!path || !out) {
        set_err(err, errlen, "llm_model_load: path and out are required");
        return LLM_ERR_ARG;
    }
    m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        set_err(err, errlen, "%s: out of memory", path);
        rc = LLM_ERR_NOMEM;
        goto done;
    }
    m->vocab_only = params->vocab_only;
    if (access(path, R_OK) != 0) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        rc = LLM_ERR_IO;
        goto done;
    }
    if (llm_gguf_open(path, &m->gguf, err, errlen) != 0) {
        rc = LLM_ERR_FORMAT;
        goto done;
    }
    gguf_str s;
    if (llm_gguf_get_str(m->gguf, "general.name", &s))
        snprintf(m->name, sizeof m->name, "%.*s", (int)(s.len < 127 ? s.len : 127), s.ptr);
    if (!llm_gguf_get_str(m->gguf, "general.architecture", &s)) {
        set_err(err, errlen, "%s: general.architecture is missing", path);
        rc = LLM_ERR_FORMAT;
        goto done;
    }
    snprintf(m->arch, sizeof m->arch, "%.*s", (int)(s.len < 31 ? s.len : 31), s.ptr);
    if (!llm_gguf_str_eq(s, "llama")) {
        set_err(err, errlen, "%s: architecture '%s' is not supported (mrag runs 'llama': Llama, Mistral, Mixtral)",
                path, m->arch);
        rc = LLM_ERR_UNSUPPORTED;
        goto done;
    }
    if ((rc = llm_vocab_load(m->gguf, &m->vocab, err, errlen)) != LLM_OK) goto done;
    count_tensors(m);
    if (m->vocab_only) goto done;
    if ((rc = load_hparams(m, params, err, errlen)) != LLM_OK) goto done;
    if ((rc = load_weights(m, err, errlen)) != LLM_OK) goto done;
    if (!params->no_repack) {
        if (params->defer_repack) atomic_store(&m->pack_pending, true);
        else if ((rc = llm_model_pack(m, err, errlen)) != LLM_OK) goto done;
    }
    if (params->n_lora < 0 || params->n_lora > 16 || (params->n_lora > 0 && !params->lora_paths)) {
        set_err(err, errlen, "%s: bad LoRA list (%d adapters, at most 16)", path, params->n_lora);
        rc = LLM_ERR_ARG;
        goto done;
    }
    for (int i = 0; i < params->n_lora; i++) {
        float sc = params->lora_scales ? params->lora_scales[i] : 1.0f;
        if (!isfinite(sc)) {
            set_err(err, errlen, "%s: the scale of LoRA adapter %s is not a number", path, params->lora_paths[i]);
            rc = LLM_ERR_ARG;
            goto done;
        }
        if ((rc = llm_lora_load(m, params->lora_paths[i], &m->lora[i], err, errlen)) != LLM_OK) goto done;
        m->lora_scale[i] = sc;
        m->n_lora = i + 1;
    }
done:
    if (rc != LLM_OK) {
        llm_model_free(m);
        return rc;
    }
    *out = m;
    return LLM_OK;
}

void llm_model_free(llm_model *m) {
    if (!m) return;
    llm_model_unpack(m);
    for (int i = 0; i < m->n_lora; i++) llm_lora_free(m->lora[i]);
    llm_vocab_free(m->vocab);
    llm_gguf_close(m->gguf);
    free(m->layers);
    free(m->path);
    free(m);
}

const struct llm_vocab *llm_model_vocab(const llm_model *m) {
    return m ? m->vocab : NULL;
}

int llm_n_embd(const llm_model *m) {
    return m ? m->hp.n_embd : 0;
}

void llm_model_get_info(const llm_model *m, llm_model_info *info) {
    memset(info, 0, sizeof *info);
    if (!m) return;
    const llm_hparams *hp = &m->hp;
    info->path = m->path;
    info->name = m->name;
    info->arch = m->arch;
    info->file_size = llm_gguf_file_size(m->gguf);
    info->n_vocab = m->vocab_only ? llm_vocab_n(m->vocab) : hp->n_vocab;
    info->bos = llm_vocab_bos(m->vocab);
    info->eos = llm_vocab_eos(m->vocab);
    info->n_embd = hp->n_embd;
    info->n_layer = hp->n_layer;
    info->n_head = hp->n_head;
    info->n_head_kv = hp->n_head_kv;
    info->head_dim = hp->head_dim;
    info->n_ff = hp->n_ff;
    info->n_ctx_train = hp->n_ctx_train;
    info->n_rot = hp->n_rot;
    info->n_expert = hp->n_expert;
    info->n_expert_used = hp->n_expert_used;
    info->swa_window = hp->swa_window;
    info->rope_theta = hp->rope_theta;
    info->rms_eps = hp->rms_eps;
    info->tied_output = m->tied_output;
    bool rw = false;
    info->random_weights = llm_gguf_get_bool(m->gguf, "mrag.random_weights", &rw) && rw;
    info->unk = llm_vocab_unk(m->vocab);
    info->n_params = m->n_params;
    info->weight_bytes = m->weight_bytes;
    info->packed_bytes = m->packed_bytes;
    info->pack_seconds = m->pack_seconds;
    info->n_tensors = m->n_tensors;
    memcpy(info->tensor_type_count, m->tensor_type_count, sizeof info->tensor_type_count);
}

/* ---------------------------------------------------------------- SHA-256
 * FIPS 180-4 over a buffer (the model file: its mapping). */
static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void llm_sha256_hex(const void *data, size_t n, char out[65]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const uint8_t *p = data;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) sha_block(h, p + i);
    /* the tail, the 0x80 marker and the 64-bit bit length: one or two blocks */
    uint8_t tail[128] = {0};
    size_t r = n - i;
    if (r) memcpy(tail, p + i, r);
    tail[r] = 0x80;
    size_t tl = r + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int k = 0; k < 8; k++) tail[tl - 1 - k] = (uint8_t)(bits >> (8 * k));
    sha_block(h, tail);
    if (tl == 128) sha_block(h, tail + 64);
    for (int k = 0; k < 8; k++) snprintf(out + 8 * k, 9, "%08x", h[k]);
}

int llm_model_n_lora(const llm_model *m) {
    return m ? m->n_lora : 0;
}

llm_lora *llm_model_lora(const llm_model *m, int i, float *scale) {
    if (!m || i < 0 || i >= m->n_lora) return NULL;
    if (scale) *scale = m->lora_scale[i];
    return m->lora[i];
}

int llm_model_fingerprint(llm_model *m, char out[65]) {
    if (!m) return LLM_ERR_ARG;
    return llm_fingerprint(m, m->lora, m->lora_scale, m->n_lora, out);
}

int llm_model_sha256(llm_model *m, char out[65]) {
    if (!m || !out) return LLM_ERR_ARG;
    if (!m->sha_done) {
        int rc = llm_file_sha256(m->path, llm_gguf_file_id(m->gguf), llm_gguf_base(m->gguf),
                                 llm_gguf_file_size(m->gguf), llm_gguf_data_offset(m->gguf), m->sha);
        if (rc != LLM_OK) return rc;
        m->sha_done = true;
    }
    memcpy(out, m->sha, 65);
    return LLM_OK;
}
