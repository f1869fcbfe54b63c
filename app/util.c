/* util.c — small helpers shared by the mrag commands: the model recorded by
 * the last ingest, reading a whole file or stdin with a limit, the one
 * number parser of the command lines, joining the words of a question. */
#include "app/app.h"

#include "index/index.h"
#include "rag/rag.h"

#include <cJSON.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Contract: see app.h. */
char *app_recorded_model(idx_store *s) {
    char *val = NULL;
    if (idx_meta_get(s, "rag.model_stat", &val) != IDX_OK || !val) return NULL;
    char *tab = strchr(val, '\t');
    struct stat st;
    if (tab) *tab = 0;
    if (!tab || stat(val, &st) != 0) { free(val); return NULL; }
    return val;
}

/* Contract: see app.h. */
int app_error(const char *fmt, ...) {
    /* messages name files and hold library errors that quote them: the
     * whole line is escaped, so it stays one line that moves no cursor */
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "mrag: %s\n", app_esc(msg));
    return 1;
}

/* Contract: see app.h. */
void app_warn_if_readable(const char *path, const char *what) {
    struct stat st;
    if (path && stat(path, &st) == 0 && (st.st_mode & 077))
        fprintf(stderr, "mrag: warning: %s%s can be read by other users (chmod 600 it)\n", what ? what : "", path);
}

/* Contract: see app.h. */
idx_store *app_open_index(const char *dir, const char *who) {
    const char *pre = who ? who : "", *sep = who ? ": " : "";
    struct stat st;
    if (stat(dir, &st) != 0) {
        app_error("%s%sno index at %s (run `mrag ingest DIR --index %s` first)", pre, sep, dir, dir);
        return NULL;
    }
    idx_params ip = idx_default_params();
    ip.read_only = true;
    idx_store *s = NULL;
    if (idx_open(dir, &ip, &s) != IDX_OK) {
        app_error("%s%s%s", pre, sep, s ? idx_errmsg(s) : "out of memory");
        idx_close(s);
        return NULL;
    }
    return s;
}

/* Contract: see app.h. */
char *app_read_stream(FILE *f, size_t max, size_t *len) {
    char *buf = NULL;
    size_t n = 0, cap = 0, r;
    char tmp[4096];
    while ((r = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (n + r > max) { free(buf); errno = EFBIG; return NULL; }
        if (n + r + 1 > cap) {
            cap = (n + r + 1) * 2;
            if (cap > max + 1) cap = max + 1;
            char *q = realloc(buf, cap);
            if (!q) { free(buf); errno = ENOMEM; return NULL; }
            buf = q;
        }
        memcpy(buf + n, tmp, r);
        n += r;
    }
    if (ferror(f)) { free(buf); errno = EIO; return NULL; }
    if (!buf && !(buf = malloc(1))) return NULL;
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

/* Contract: see app.h. */
char *app_read_file(const char *path, size_t max, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = app_read_stream(f, max, len);
    int e = errno;
    fclose(f);
    errno = e;
    return buf;
}

/* Contract: see app.h. */
bool app_parse_long(const char *s, long lo, long hi, long *out) {
    if (!s || !*s || isspace((unsigned char)*s)) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* Contract: see app.h. */
bool app_parse_int(const char *s, int lo, int hi, int *out) {
    long v;
    if (!app_parse_long(s, lo, hi, &v)) return false;
    *out = (int)v;
    return true;
}

/* Contract: see app.h. */
bool app_parse_double(const char *s, double lo, double hi, double *out) {
    if (!s || !*s || isspace((unsigned char)*s)) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v) || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* Contract: see app.h. */
bool app_parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-' || *s == '+' || isspace((unsigned char)*s)) return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) return false;
    *out = (uint64_t)v;
    return true;
}

/* Contract: see app.h. */
char *app_join_args(int n, char **args) {
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(args[i]) + 1;
    char *s = malloc(len), *p = s;
    if (!s) return NULL;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(args[i]);
        if (i) *p++ = ' ';
        memcpy(p, args[i], l);
        p += l;
    }
    *p = 0;
    return s;
}

/* The fusion weights learned with a retriever made from rp (the model, or
 * a server's embeddings); failures are warnings naming cmd. */
static void learn_fusion(idx_store *s, const rag_retriever_params *rp, const char *cmd) {
    rag_retriever *r = NULL;
    char err[1024] = "";
    rag_fusion f;
    if (rag_retriever_new(s, rp, &r, err, sizeof err) != RAG_OK) {
        fprintf(stderr, "mrag: %s: warning: fusion weights not learned: %s\n", cmd, err);
        return;
    }
    int rc = rag_tune(r, s, NULL, &f, err, sizeof err);
    if (rc != RAG_OK && rc != RAG_ERR_NOTFOUND)
        fprintf(stderr, "mrag: %s: warning: fusion weights not learned: %s\n", cmd, err);
    rag_retriever_free(r);
}

/* Re-analyses the text index; true when the fusion weights are to be
 * learned (the text index was rebuilt, or none are stored yet). */
static bool after_ingest_retune(idx_store *s, const char *cmd) {
    bool rebuilt = false;
    if (idx_fts_retune(s, NULL, &rebuilt) != IDX_OK) {
        fprintf(stderr, "mrag: %s: warning: the text index was not re-analysed: %s\n", cmd, idx_errmsg(s));
        return false;
    }
    rag_fusion f;
    return rebuilt || rag_fusion_load(s, &f) != RAG_OK;
}

void app_after_ingest(idx_store *s, llm_model *m, const char *cmd) {
    if (!after_ingest_retune(s, cmd) || !m) return;
    rag_retriever_params rp = rag_retriever_default_params();
    rp.model = m;
    learn_fusion(s, &rp, cmd);
}

/* Contract: see app.h. */
int app_remote_embedder(const rag_remote_params *rp, idx_store *s, rag_retriever_params *out, rag_remote **remote,
                        rag_engine **engine, char *err, size_t errlen) {
    *remote = NULL;
    *engine = NULL;
    rag_remote *r = NULL;
    rag_engine *e = NULL;
    if (rag_remote_new(rp, &r, err, errlen) != RAG_OK) return 1;
    int dim = 0;
    if (rag_remote_check_index(r, s, &dim) != RAG_OK) {
        snprintf(err, errlen, "%s", rag_remote_errmsg(r));
        rag_remote_free(r);
        return 1;
    }
    if (rag_engine_remote_new(r, &e) != RAG_OK) {
        snprintf(err, errlen, "out of memory");
        rag_remote_free(r);
        return 1;
    }
    out->embed = rag_engine_embed_one;
    out->embed_user = e;
    out->embed_dim = dim;
    *remote = r;
    *engine = e;
    return 0;
}

const app_opt app_remote_opts[] = {
    {"llm-url", 0, "URL", APP_REMOTE_URL},
    {"llm-key-file", 0, "FILE", APP_REMOTE_KEY_FILE},
    {"llm-model", 0, "NAME", APP_REMOTE_MODEL},
    {"llm-embeddings", 0, NULL, APP_REMOTE_EMBEDDINGS},
    {0},
};
const app_opt app_remote_batch_opts[] = {
    {"embed-batch", 0, "N", APP_REMOTE_BATCH},
    {"embed-parallel", 0, "N", APP_REMOTE_PARALLEL},
    {0},
};

/* Contract: see app.h. */
int app_remote_apply_opt(const app_args *ap, int id, const char *v, rag_remote_params *rp, bool *embeddings,
                         rag_ingest_params *ip) {
    switch (id) {
    case APP_REMOTE_URL: rp->base_url = v; return 1;
    case APP_REMOTE_KEY_FILE: rp->key_file = v; return 1;
    case APP_REMOTE_MODEL: rp->model = v; return 1;
    case APP_REMOTE_EMBEDDINGS: *embeddings = true; return 1;
    case APP_REMOTE_BATCH: return ip && app_opt_int(ap, v, 1, 256, &ip->embed_batch) ? 1 : -1;
    case APP_REMOTE_PARALLEL: return ip && app_opt_int(ap, v, 1, 256, &ip->embed_parallel) ? 1 : -1;
    default: return 0;
    }
}

void app_after_ingest_remote(idx_store *s, const rag_remote_params *rp, const char *cmd) {
    if (!after_ingest_retune(s, cmd)) return;
    rag_retriever_params p = rag_retriever_default_params();
    rag_remote *r = NULL;
    rag_engine *e = NULL;
    char err[1024] = "";
    if (app_remote_embedder(rp, s, &p, &r, &e, err, sizeof err)) {
        fprintf(stderr, "mrag: %s: warning: fusion weights not learned: %s\n", cmd, err);
        return;
    }
    learn_fusion(s, &p, cmd);
    rag_engine_free(e);
    rag_remote_free(r);
}

void app_fusion_describe(const void *fv, char *out, size_t n) {
    const rag_fusion *f = fv;
    char gate[64];
    if (isinf(f->gate_cos)) snprintf(gate, sizeof gate, "words only (dense not trusted)");
    else snprintf(gate, sizeof gate, "words, or cosine >= %.3f", f->gate_cos);
    if (strcmp(f->source, "default") == 0)
        snprintf(out, n, "fusion weights: dense %.2f, bm25 %.2f (defaults: not learned yet, run `mrag tune`); relevance gate: %s",
                 f->w_dense, f->w_bm25, gate);
    else
        snprintf(out, n, "fusion weights: dense %.2f, bm25 %.2f (learned from %d %squeries: MRR@10 dense %.3f, bm25 %.3f, "
                 "hybrid %.3f); relevance gate: %s", f->w_dense, f->w_bm25, f->n_queries,
                 strcmp(f->source, "pseudo") == 0 ? "pseudo-" : "labelled ", f->mrr_dense, f->mrr_bm25, f->mrr_hybrid, gate);
}

void app_synonyms_describe(idx_store *s, char *out, size_t n) {
    idx_thesaurus_status ts;
    if (idx_thesaurus_info(s, &ts) != IDX_OK) snprintf(out, n, "German synonyms: %s", idx_errmsg(s));
    else if (!ts.sets) snprintf(out, n, "%s", ts.note);
    else snprintf(out, n, "German synonyms (German queries only, weighted 0.5): %zu sets of %zu terms from %s", ts.sets, ts.terms, ts.path);
}

void app_choose_layer(idx_store *s, struct llm_model *m, int threads, const int *cand, int n_cand, const char *cmd) {
    rag_layer_choice lc;
    char err[1024] = "";
    int rc = rag_tune_layer(s, m, threads, cand, n_cand, true, &lc, err, sizeof err);
    if (rc != RAG_OK) {
        fprintf(stderr, "mrag: %s: warning: embedding layer not chosen: %s\n", cmd, err);
        return;
    }
    printf("embedding layers compared on %d pseudo-queries among %d chunks (MRR@10 dense / hybrid):\n", lc.n_queries, lc.n_sampled);
    for (int j = 0; j < lc.n_layers; j++) {
        char name[16];
        if (lc.layers[j] < 0) snprintf(name, sizeof name, "final");
        else snprintf(name, sizeof name, "%d", lc.layers[j]);
        printf("  layer %-6s %.3f / %.3f (dense weight %.1f)%s%s\n", name, lc.mrr_dense[j], lc.mrr_hybrid[j], lc.w_dense[j],
               j == lc.best ? "  <- chosen" : "", j == lc.current ? "  (was the index's)" : "");
    }
    if (lc.changed) {
        printf("re-embedded every chunk at the chosen layer\n");
        idx_meta_set(s, "rag.fusion", "");     /* weights of the old layer: learn again */
    }
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 when invalid. */
static size_t u8_len(const unsigned char *s) {
    unsigned char c = s[0];
    size_t n;
    uint32_t cp, min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;   /* also stops at the NUL */
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

/* True when the sequence of length n at s must be shown escaped: C0
 * controls, DEL, C1 controls (U+0080..U+009F; some terminals act on them). */
static bool u8_control(const unsigned char *s, size_t n) {
    if (n == 1) return s[0] < 0x20 || s[0] == 0x7F;
    return n == 2 && s[0] == 0xC2 && s[1] < 0xA0;
}

/* Contract: see app.h. */
const char *app_esc(const char *text) {
    static __thread char *ring[8];
    static __thread unsigned next;
    if (!text) return "(null)";
    const unsigned char *s = (const unsigned char *)text;
    bool clean = true;
    for (size_t i = 0; s[i] && clean;) {
        size_t n = u8_len(s + i);
        if (!n || u8_control(s + i, n)) clean = false;
        else i += n;
    }
    if (clean) return text;
    size_t len = strlen(text);
    char *o = malloc(len * 4 + 1);
    if (!o) return "(text not shown: out of memory)";
    size_t k = 0;
    for (size_t i = 0; s[i];) {
        size_t n = u8_len(s + i);
        if (n && !u8_control(s + i, n)) {
            memcpy(o + k, s + i, n);
            k += n;
            i += n;
            continue;
        }
        /* a control character, or a byte that is not UTF-8: \xNN for each byte */
        size_t m = n ? n : 1;
        for (size_t j = 0; j < m; j++) {
            static const char hex[] = "0123456789abcdef";
            o[k++] = '\\';
            o[k++] = 'x';
            o[k++] = hex[s[i + j] >> 4];
            o[k++] = hex[s[i + j] & 15];
        }
        i += m;
    }
    o[k] = 0;
    free(ring[next & 7]);
    ring[next++ & 7] = o;
    return o;
}

int app_lora_add(app_lora_opts *l, const char *cmd, char *value) {
    if (l->n == APP_MAX_LORA) {
        fprintf(stderr, "mrag: %s: at most %d --lora adapters\n", cmd, APP_MAX_LORA);
        return 2;
    }
    float scale = 1.0f;
    char *colon = strrchr(value, ':');
    double v;
    if (colon && colon[1] && app_parse_double(colon + 1, -1e6, 1e6, &v)) {
        scale = (float)v;
        *colon = 0;
    }
    if (!*value) {
        fprintf(stderr, "mrag: %s: --lora needs a file\n", cmd);
        return 2;
    }
    l->path[l->n] = value;
    l->scale[l->n] = scale;
    l->n++;
    return 0;
}

void app_lora_model_params(const app_lora_opts *l, llm_model_params *mp) {
    mp->lora_paths = l->n ? l->path : NULL;
    mp->lora_scales = l->n ? l->scale : NULL;
    mp->n_lora = l->n;
}

/* Contract: see app.h. */
bool app_index_is_new(const char *dir) {
    struct stat st;
    return stat(dir, &st) != 0 && errno == ENOENT;
}

/* Contract: see app.h. */
void app_index_discard(idx_store **s, const char *dir) {
    idx_counts c;
    if (!*s || idx_get_counts(*s, &c) != IDX_OK || c.documents != 0) return;
    idx_close(*s);
    *s = NULL;
    static const char *files[] = {"mrag.sqlite", "mrag.sqlite-wal", "mrag.sqlite-shm", "mrag.sqlite-journal",
                                  "faiss.index", "mrag.lock", "audit.jsonl"};
    char p[4096];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, files[i]) < sizeof p) unlink(p);
    rmdir(dir);                     /* fails, harmlessly, on anything else in it */
}

/* Contract: see app.h. */
void app_evidence_json(cJSON *o, const rag_evidence *e, const char *citation) {
    cJSON_AddStringToObject(o, "text", e->text);
    cJSON_AddNumberToObject(o, "source", e->source);
    cJSON_AddStringToObject(o, "citation", citation);
    cJSON_AddStringToObject(o, "heading", e->heading ? e->heading : "");
    cJSON_AddStringToObject(o, "kind", rag_evidence_kind_str(e->kind));
    cJSON_AddNumberToObject(o, "score", e->score);
    cJSON *mk = cJSON_AddArrayToObject(o, "marks");
    for (size_t k = 0; mk && k < e->n_marks; k++) {
        cJSON *pair = cJSON_CreateArray();
        if (!pair) break;
        cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)e->marks[k].start));
        cJSON_AddItemToArray(pair, cJSON_CreateNumber((double)e->marks[k].end));
        cJSON_AddItemToArray(mk, pair);
    }
}
