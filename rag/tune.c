/* tune.c — learns, per index, how much each ranking can be trusted: the
 * weights of weighted reciprocal rank fusion and the dense similarity above
 * which a passage counts as relevant (the relevance gate), from
 * pseudo-queries made from the index's own public chunks or from labelled
 * questions; stores them in the index (meta "rag.fusion"). */
#include "rag/rag.h"

#include "index/index.h"
#include "llm/llm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TUNE_K 50               /* depth of each list */
#define TUNE_GRID 11            /* dense weight 0, 0.1, ..., 1 */
#define TUNE_MIN_GAIN 0.01      /* MRR@10 a dense weight must add over BM25 alone */
#define TUNE_GATE_PRECISION 0.95

rag_fusion rag_fusion_default(void) {
    rag_fusion f;
    memset(&f, 0, sizeof f);
    f.w_dense = 0.5f;
    f.w_bm25 = 0.5f;
    f.gate_cos = INFINITY;
    snprintf(f.source, sizeof f.source, "default");
    return f;
}

int rag_fusion_load(idx_store *s, rag_fusion *f) {
    *f = rag_fusion_default();
    char *v = NULL;
    if (idx_meta_get(s, "rag.fusion", &v) != IDX_OK || !v) return RAG_ERR_NOTFOUND;
    rag_fusion t = *f;
    char src[sizeof t.source] = "";
    double wd, wb, gc, md, mb, mh;
    int nq;
    int n = sscanf(v, "%lf %lf %lf %d %lf %lf %lf %15s", &wd, &wb, &gc, &nq, &md, &mb, &mh, src);
    free(v);
    if (n != 8 || !(wd >= 0 && wd <= 1 && wb >= 0 && wb <= 1) || isnan(gc)) return RAG_ERR_FORMAT;
    t.w_dense = (float)wd;
    t.w_bm25 = (float)wb;
    t.gate_cos = (float)gc;
    t.n_queries = nq;
    t.mrr_dense = md;
    t.mrr_bm25 = mb;
    t.mrr_hybrid = mh;
    snprintf(t.source, sizeof t.source, "%s", src);
    *f = t;
    return RAG_OK;
}

static int fusion_store(idx_store *s, const rag_fusion *f) {
    char v[256];
    snprintf(v, sizeof v, "%.3f %.3f %.6f %d %.6f %.6f %.6f %s", f->w_dense, f->w_bm25, f->gate_cos, f->n_queries,
             f->mrr_dense, f->mrr_bm25, f->mrr_hybrid, f->source);
    return idx_meta_set(s, "rag.fusion", v) == IDX_OK ? RAG_OK : RAG_ERR_IO;
}

/* ------------------------------------------------------------ queries */

typedef struct {
    char *text;
    int64_t *rel;           /* relevant chunk ids */
    size_t n_rel;
} tune_q;

/* A pseudo-query from a chunk: its longest sentence of 5 to 30 words (else
 * its first 20 words), cut to at most 16 words. Owned. */
static char *pseudo_query(const char *t, size_t n) {
    size_t best_s = 0, best_l = 0, s = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || t[i] == '.' || t[i] == '?' || t[i] == '!' || t[i] == '\n') {
            size_t words = 0;
            bool in = false;
            for (size_t j = s; j < i; j++) {
                bool w = t[j] != ' ' && t[j] != '\t';
                if (w && !in) words++;
                in = w;
            }
            if (words >= 5 && words <= 30 && i - s > best_l) { best_s = s; best_l = i - s; }
            s = i + 1;
        }
    }
    if (!best_l) { best_s = 0; best_l = n; }
    size_t words = 0, end = best_s;
    bool in = false;
    for (; end < best_s + best_l; end++) {
        bool w = t[end] != ' ' && t[end] != '\t' && t[end] != '\n';
        if (w && !in && ++words > 16) break;
        in = w;
    }
    char *q = malloc(end - best_s + 1);
    if (!q) return NULL;
    memcpy(q, t + best_s, end - best_s);
    q[end - best_s] = 0;
    return q;
}

/* Rank (1-based) of the first relevant id in a list, 0 = absent. */
static int rank_of(const tune_q *q, const int64_t *ids, int n) {
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < q->n_rel; j++)
            if (ids[i] == q->rel[j]) return i + 1;
    return 0;
}

static double rr10(int rank) { return rank >= 1 && rank <= 10 ? 1.0 / rank : 0.0; }

int rag_tune(rag_retriever *r, idx_store *s, const rag_tune_params *p, rag_fusion *out, char *err, size_t errlen) {
    rag_fusion f = rag_fusion_default();
    tune_q *qs = NULL;
    size_t nq = 0;
    int rc = RAG_OK;
    int max_q = p && p->max_queries > 0 ? p->max_queries : 200;
    int64_t (*lists)[2][TUNE_K] = NULL;
    int (*lens)[2] = NULL;
    float *top_rel = NULL, *top_irr = NULL;
    if (p && p->labelled && p->n_labelled) {
        qs = calloc(p->n_labelled, sizeof *qs);
        if (!qs) { rc = RAG_ERR_NOMEM; goto done; }
        for (size_t i = 0; i < p->n_labelled && (int)nq < max_q * 10; i++) {
            const rag_tune_label *l = &p->labelled[i];
            if (!l->question || !l->n_rel) continue;
            qs[nq].text = strdup(l->question);
            qs[nq].rel = malloc(l->n_rel * sizeof *qs[nq].rel);
            if (!qs[nq].text || !qs[nq].rel) { rc = RAG_ERR_NOMEM; nq++; goto done; }
            memcpy(qs[nq].rel, l->rel, l->n_rel * sizeof *l->rel);
            qs[nq].n_rel = l->n_rel;
            nq++;
        }
        snprintf(f.source, sizeof f.source, "labelled");
    } else {
        /* pseudo-queries from public chunks, spread evenly over the ids */
        qs = calloc((size_t)max_q, sizeof *qs);
        if (!qs) { rc = RAG_ERR_NOMEM; goto done; }
        int64_t *ids = NULL;
        size_t nids = 0;
        /* Public chunks only: the weights (and so every caller's ranking)
         * must not depend on documents a caller cannot see. */
        if (idx_chunk_ids(s, true, &ids, &nids) != IDX_OK) { rc = RAG_ERR_IO; snprintf(err, errlen, "%s", idx_errmsg(s)); goto done; }
        size_t stride = nids / (size_t)max_q > 1 ? nids / (size_t)max_q : 1;
        for (size_t k = 0; k < nids && (int)nq < max_q; k += stride) {
            idx_chunk ch;
            if (idx_chunk_get(s, ids[k], &ch, NULL) != IDX_OK) continue;
            if (ch.text_len >= 40) {
                qs[nq].text = pseudo_query(ch.text, ch.text_len);
                qs[nq].rel = malloc(sizeof *qs[nq].rel);
                if (qs[nq].text && qs[nq].rel) {
                    qs[nq].rel[0] = ids[k];
                    qs[nq].n_rel = 1;
                    nq++;
                } else {
                    free(qs[nq].text);
                    free(qs[nq].rel);
                    qs[nq].text = NULL;
                    qs[nq].rel = NULL;
                }
            }
            idx_chunk_release(&ch);
        }
        free(ids);
        snprintf(f.source, sizeof f.source, "pseudo");
    }
    if (nq < 10) {
        snprintf(err, errlen, "%zu usable queries: too few to learn from (the default weights stay)", nq);
        rc = RAG_ERR_NOTFOUND;
        goto done;
    }
    lists = calloc(nq, sizeof *lists);
    lens = calloc(nq, sizeof *lens);
    top_rel = malloc(nq * sizeof *top_rel);
    top_irr = malloc(nq * sizeof *top_irr);
    if (!lists || !lens || !top_rel || !top_irr) { rc = RAG_ERR_NOMEM; goto done; }
    rag_hit h[TUNE_K];
    size_t n_rel = 0, n_irr = 0;
    for (size_t i = 0; i < nq; i++) {
        for (int m = 0; m < 2; m++) {
            int n = 0;
            rag_search_mode mode = m ? RAG_SEARCH_BM25 : RAG_SEARCH_DENSE;
            /* labelled questions may reach hidden chunks: the owner's file */
            const idx_filter pubf = {NULL, 0};
            rc = rag_retrieve(r, qs[i].text, strlen(qs[i].text), mode, TUNE_K, f.source[0] == 'p' ? &pubf : NULL, h, &n);
            if (rc != RAG_OK) { snprintf(err, errlen, "%s", rag_retriever_errmsg(r)); goto done; }
            for (int j = 0; j < n; j++) lists[i][m][j] = h[j].chunk_id;
            lens[i][m] = n;
            if (m == 0 && n > 0) {
                /* similarity of the relevant chunk (when found) and of the
                 * best chunk that is not relevant: the gate's calibration */
                bool rel_seen = false, irr_seen = false;
                for (int j = 0; j < n && (!rel_seen || !irr_seen); j++) {
                    bool rel = false;
                    for (size_t x = 0; x < qs[i].n_rel; x++) rel |= h[j].chunk_id == qs[i].rel[x];
                    if (rel && !rel_seen) { top_rel[n_rel++] = h[j].score; rel_seen = true; }
                    if (!rel && !irr_seen) { top_irr[n_irr++] = h[j].score; irr_seen = true; }
                }
            }
        }
    }
    /* 1. fusion weights: the dense weight with the best MRR@10 of weighted
     * RRF; a dense weight must earn TUNE_MIN_GAIN over BM25 alone */
    double mrr[TUNE_GRID] = {0}, mrr_d = 0, mrr_b = 0;
    for (size_t i = 0; i < nq; i++) {
        mrr_d += rr10(rank_of(&qs[i], lists[i][0], lens[i][0]));
        mrr_b += rr10(rank_of(&qs[i], lists[i][1], lens[i][1]));
        for (int g = 0; g < TUNE_GRID; g++) {
            double wd = g / (double)(TUNE_GRID - 1), wb = 1 - wd;
            /* the best-fused relevant chunk's rank: count the chunks that
             * fuse higher than it */
            int64_t ids[2 * TUNE_K];
            double sc[2 * TUNE_K];
            int nf = 0;
            for (int m = 0; m < 2; m++)
                for (int j = 0; j < lens[i][m]; j++) {
                    int x = 0;
                    while (x < nf && ids[x] != lists[i][m][j]) x++;
                    if (x == nf) { ids[nf] = lists[i][m][j]; sc[nf++] = 0; }
                    sc[x] += (m ? wb : wd) / (60.0 + j + 1);
                }
            double best_rel = -1;
            int64_t best_id = 0;
            for (int x = 0; x < nf; x++)
                for (size_t y = 0; y < qs[i].n_rel; y++)
                    if (ids[x] == qs[i].rel[y] && (sc[x] > best_rel || (sc[x] == best_rel && ids[x] < best_id))) {
                        best_rel = sc[x];
                        best_id = ids[x];
                    }
            if (best_rel < 0) continue;
            int rank = 1;
            for (int x = 0; x < nf; x++)
                if (sc[x] > best_rel || (sc[x] == best_rel && ids[x] < best_id)) rank++;
            mrr[g] += rr10(rank);
        }
    }
    int best = 0;
    for (int g = 1; g < TUNE_GRID; g++)
        if (mrr[g] > mrr[best] + 1e-12) best = g;
    if ((mrr[best] - mrr[0]) / (double)nq < TUNE_MIN_GAIN) best = 0;
    f.w_dense = (float)(best / (double)(TUNE_GRID - 1));
    f.w_bm25 = 1.0f - f.w_dense;
    f.n_queries = (int)nq;
    f.mrr_dense = mrr_d / (double)nq;
    f.mrr_bm25 = mrr_b / (double)nq;
    f.mrr_hybrid = mrr[best] / (double)nq;
    /* 2. the gate: the lowest similarity above which at least
     * TUNE_GATE_PRECISION of the observed top similarities belong to a
     * relevant chunk; none (infinity) when dense carries no weight. */
    f.gate_cos = INFINITY;
    if (f.w_dense > 0 && n_rel >= 5) {
        for (size_t i = 0; i < n_rel; i++) {
            float c = top_rel[i];
            size_t a = 0, b = 0;
            for (size_t j = 0; j < n_rel; j++) a += top_rel[j] >= c;
            for (size_t j = 0; j < n_irr; j++) b += top_irr[j] >= c;
            if (a >= 5 && (double)a / (double)(a + b) >= TUNE_GATE_PRECISION && c < f.gate_cos) f.gate_cos = c;
        }
    }
    if (!(p && p->dry_run) && (rc = fusion_store(s, &f)) != RAG_OK) snprintf(err, errlen, "cannot store the weights: %s", idx_errmsg(s));
done:
    if (rc == RAG_ERR_NOMEM) snprintf(err, errlen, "out of memory");
    for (size_t i = 0; qs && i < nq; i++) { free(qs[i].text); free(qs[i].rel); }
    free(qs);
    free(lists);
    free(lens);
    free(top_rel);
    free(top_irr);
    if (out) *out = f;
    return rc;
}

/* ------------------------------------------------------------ layer choice */

#define LAYER_SAMPLE 2000       /* chunks the layers are compared on */
#define LAYER_DEPTH 50

/* The chunk's embed text as the chunker built it: heading path, blank line,
 * text — or the text alone (no heading, or a heading too long to keep).
 * Which one is decided by the stored vector at the index's layer (index
 * `cur` in layers): the variant that reproduces it. */
static int embed_chunk(llm_context *ctx, idx_store *s, int64_t id, const int *layers, int nl, int cur, int dim,
                       float *out, char **buf, size_t *cap) {
    idx_chunk c;
    if (idx_chunk_get(s, id, &c, NULL) != IDX_OK) return RAG_ERR_IO;
    size_t hl = c.heading ? strlen(c.heading) : 0;
    int rc = RAG_OK;
    for (int variant = hl ? 0 : 1; variant < 2; variant++) {
        size_t l = variant == 0 ? hl + 2 + c.text_len : c.text_len;
        if (l + 1 > *cap) {
            char *nb = realloc(*buf, l + 1);
            if (!nb) { rc = RAG_ERR_NOMEM; break; }
            *buf = nb;
            *cap = l + 1;
        }
        if (variant == 0) { memcpy(*buf, c.heading, hl); memcpy(*buf + hl, "\n\n", 2); memcpy(*buf + hl + 2, c.text, c.text_len); }
        else memcpy(*buf, c.text, c.text_len);
        if (llm_embed_layers(ctx, *buf, l, layers, nl, out) != LLM_OK) { rc = RAG_ERR_FORMAT; break; }
        if (variant == 1 || cur < 0) break;
        float stored[8192];
        if (dim > 8192 || idx_chunk_vector(s, id, stored, dim) != IDX_OK) break;
        double dot = 0;
        for (int d = 0; d < dim; d++) dot += (double)stored[d] * out[(size_t)cur * dim + d];
        if (dot > 0.999) break;
    }
    idx_chunk_release(&c);
    return rc;
}

static int cmp_desc(const void *a, const void *b) {
    const double *x = a, *y = b;
    return x[0] > y[0] ? -1 : x[0] < y[0] ? 1 : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

int rag_tune_layer(idx_store *s, llm_model *m, int n_threads, const int *cand, int n_cand, bool apply,
                   rag_layer_choice *out, char *err, size_t errlen) {
    rag_layer_choice ch;
    memset(&ch, 0, sizeof ch);
    int rc = RAG_OK;
    idx_fingerprint fp;
    if (idx_fingerprint_get(s, &fp) != IDX_OK) { snprintf(err, errlen, "the index has no embeddings yet"); return RAG_ERR_NOTFOUND; }
    llm_model_info info;
    llm_model_get_info(m, &info);
    if (llm_n_embd(m) != fp.dim) { snprintf(err, errlen, "the model's dimension %d is not the index's %d", llm_n_embd(m), fp.dim); return RAG_ERR_MISMATCH; }
    /* candidates: the given ones, or quarter, half, three quarters and the
     * final norm; always the index's own layer */
    int nl = 0;
    int defaults[4] = {info.n_layer / 4, info.n_layer / 2, (3 * info.n_layer) / 4, -1};
    const int *src = cand && n_cand > 0 ? cand : defaults;
    int ns = cand && n_cand > 0 ? n_cand : 4;
    for (int i = 0; i <= ns && nl < RAG_MAX_LAYERS; i++) {
        int l = i < ns ? src[i] : fp.layer;
        if (l >= info.n_layer) l = -1;
        if (l < -1) continue;
        bool dup = false;
        for (int j = 0; j < nl; j++) dup |= ch.layers[j] == l;
        if (!dup) ch.layers[nl++] = l;
    }
    ch.n_layers = nl;
    int cur = 0;
    for (int j = 0; j < nl; j++) if (ch.layers[j] == fp.layer) cur = j;
    const int dim = fp.dim;
    int64_t *pub = NULL, *vids = NULL, *sample = NULL;
    size_t npub = 0, nv = 0, nsample = 0;
    float *cv = NULL, *qv = NULL, *tmp = NULL;
    char **qt = NULL;
    int64_t *target = NULL;
    int64_t (*bm)[LAYER_DEPTH] = NULL;
    int *nbm = NULL;
    double *sc = NULL;
    char *buf = NULL;
    size_t cap = 0;
    llm_context *ctx = NULL;
    if (idx_chunk_ids(s, true, &pub, &npub) != IDX_OK) { rc = RAG_ERR_IO; snprintf(err, errlen, "%s", idx_errmsg(s)); goto done; }
    /* pseudo-queries from public chunks, and a sample of public chunks to
     * rank them among (all of them when the index is small) */
    size_t stride_q = npub / 200 > 1 ? npub / 200 : 1, stride_s = npub / LAYER_SAMPLE > 1 ? npub / LAYER_SAMPLE : 1;
    qt = calloc(200, sizeof *qt);
    target = calloc(200, sizeof *target);
    sample = malloc((npub ? npub : 1) * sizeof *sample);
    if (!qt || !target || !sample) { rc = RAG_ERR_NOMEM; goto done; }
    int nq = 0;
    for (size_t i = 0; i < npub; i++) {
        bool is_q = i % stride_q == 0 && nq < 200;
        if (is_q) {
            idx_chunk c;
            if (idx_chunk_get(s, pub[i], &c, NULL) == IDX_OK) {
                if (c.text_len >= 40 && (qt[nq] = pseudo_query(c.text, c.text_len))) target[nq++] = pub[i];
                else is_q = false;
                idx_chunk_release(&c);
            }
        }
        if (is_q || i % stride_s == 0) sample[nsample++] = pub[i];
    }
    if (nq < 10) { snprintf(err, errlen, "%d usable pseudo-queries: too few to choose a layer", nq); rc = RAG_ERR_NOTFOUND; goto done; }
    ch.n_queries = nq;
    ch.n_sampled = (int)nsample;
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = 2048;
    cp.n_batch = 512;
    cp.n_threads = n_threads;
    cp.embd_layer = fp.layer;
    char lerr[256] = "";
    if (llm_context_new(m, &cp, &ctx, lerr, sizeof lerr) != LLM_OK) { snprintf(err, errlen, "%s", lerr); rc = RAG_ERR_ARG; goto done; }
    cv = malloc(nsample * (size_t)nl * dim * sizeof *cv);
    qv = malloc((size_t)nq * nl * dim * sizeof *qv);
    tmp = malloc((size_t)nl * dim * sizeof *tmp);
    bm = calloc((size_t)nq, sizeof *bm);
    nbm = calloc((size_t)nq, sizeof *nbm);
    sc = malloc(2 * nsample * sizeof *sc);
    if (!cv || !qv || !tmp || !bm || !nbm || !sc) { rc = RAG_ERR_NOMEM; goto done; }
    /* 1. one pass per sampled chunk and per query gives every layer */
    for (size_t i = 0; i < nsample; i++) {
        if ((rc = embed_chunk(ctx, s, sample[i], ch.layers, nl, cur, dim, tmp, &buf, &cap)) != RAG_OK) {
            snprintf(err, errlen, "embedding chunk %lld: %s", (long long)sample[i], llm_context_error(ctx));
            goto done;
        }
        for (int j = 0; j < nl; j++) memcpy(cv + ((size_t)j * nsample + i) * dim, tmp + (size_t)j * dim, (size_t)dim * sizeof *tmp);
    }
    const idx_filter pubf = {NULL, 0};
    idx_hit h[LAYER_DEPTH * 4];
    for (int q = 0; q < nq; q++) {
        if (llm_embed_layers(ctx, qt[q], strlen(qt[q]), ch.layers, nl, tmp) != LLM_OK) {
            snprintf(err, errlen, "embedding a query: %s", llm_context_error(ctx));
            rc = RAG_ERR_FORMAT;
            goto done;
        }
        for (int j = 0; j < nl; j++) memcpy(qv + ((size_t)j * nq + q) * dim, tmp + (size_t)j * dim, (size_t)dim * sizeof *tmp);
        int n = 0;
        if (idx_search_bm25(s, qt[q], strlen(qt[q]), LAYER_DEPTH * 4, &pubf, h, &n) != IDX_OK) {
            snprintf(err, errlen, "%s", idx_errmsg(s));
            rc = RAG_ERR_IO;
            goto done;
        }
        /* BM25 ranks among the sample only, like the dense side */
        for (int i = 0; i < n && nbm[q] < LAYER_DEPTH; i++) {
            bool in = false;
            for (size_t x = 0; x < nsample && !in; x++) in = sample[x] == h[i].chunk_id;
            if (in) bm[q][nbm[q]++] = h[i].chunk_id;
        }
    }
    /* 2. per layer: dense lists, then the fusion weight on the grid */
    int best = cur;
    for (int j = 0; j < nl; j++) {
        double mrr[TUNE_GRID] = {0}, md = 0;
        for (int q = 0; q < nq; q++) {
            const float *qq = qv + ((size_t)j * nq + q) * dim;
            for (size_t i = 0; i < nsample; i++) {
                const float *c = cv + ((size_t)j * nsample + i) * dim;
                double dot = 0;
                for (int d = 0; d < dim; d++) dot += (double)qq[d] * c[d];
                sc[2 * i] = dot;
                sc[2 * i + 1] = (double)sample[i];
            }
            qsort(sc, nsample, 2 * sizeof *sc, cmp_desc);
            int nd = (int)(nsample < LAYER_DEPTH ? nsample : LAYER_DEPTH);
            int64_t dl[LAYER_DEPTH];
            for (int i = 0; i < nd; i++) dl[i] = (int64_t)sc[2 * i + 1];
            tune_q tq = {qt[q], &target[q], 1};
            md += rr10(rank_of(&tq, dl, nd));
            for (int g = 0; g < TUNE_GRID; g++) {
                double wd = g / (double)(TUNE_GRID - 1), wb = 1 - wd;
                int64_t ids[2 * LAYER_DEPTH];
                double fs[2 * LAYER_DEPTH];
                int nf = 0;
                for (int li = 0; li < 2; li++) {
                    const int64_t *L = li ? bm[q] : dl;
                    int ln = li ? nbm[q] : nd;
                    for (int i = 0; i < ln; i++) {
                        int x = 0;
                        while (x < nf && ids[x] != L[i]) x++;
                        if (x == nf) { ids[nf] = L[i]; fs[nf++] = 0; }
                        fs[x] += (li ? wb : wd) / (60.0 + i + 1);
                    }
                }
                int x = 0;
                while (x < nf && ids[x] != target[q]) x++;
                if (x == nf) continue;
                int rank = 1;
                for (int z = 0; z < nf; z++) if (fs[z] > fs[x] || (fs[z] == fs[x] && ids[z] < ids[x])) rank++;
                mrr[g] += rr10(rank);
            }
        }
        int bg = 0;
        for (int g = 1; g < TUNE_GRID; g++) if (mrr[g] > mrr[bg] + 1e-12) bg = g;
        if ((mrr[bg] - mrr[0]) / nq < TUNE_MIN_GAIN) bg = 0;
        ch.mrr_dense[j] = md / nq;
        ch.mrr_hybrid[j] = mrr[bg] / nq;
        ch.w_dense[j] = (float)(bg / (double)(TUNE_GRID - 1));
    }
    /* the best hybrid, then the best dense; the index's layer unless another
     * is better by a margin (re-embedding everything is not free) */
    for (int j = 0; j < nl; j++) {
        if (j == best) continue;
        double dh = ch.mrr_hybrid[j] - ch.mrr_hybrid[best], dd = ch.mrr_dense[j] - ch.mrr_dense[best];
        if (dh > TUNE_MIN_GAIN || (fabs(dh) <= TUNE_MIN_GAIN && dd > TUNE_MIN_GAIN)) best = j;
    }
    ch.best = best;
    ch.current = cur;
    /* 3. re-embed every chunk at the chosen layer */
    if (apply && best != cur) {
        if (idx_debug_vector_ids(s, &vids, &nv) != IDX_OK) { snprintf(err, errlen, "%s", idx_errmsg(s)); rc = RAG_ERR_IO; goto done; }
        free(cv);
        cv = malloc((nv ? nv : 1) * (size_t)dim * sizeof *cv);
        if (!cv) { rc = RAG_ERR_NOMEM; goto done; }
        int two[2] = {ch.layers[best], fp.layer};
        for (size_t i = 0; i < nv; i++) {
            /* both layers: the index's one picks the embed text variant */
            float both[2 * 8192];
            if (dim > 8192) { rc = RAG_ERR_LIMIT; snprintf(err, errlen, "dimension %d too large", dim); goto done; }
            if ((rc = embed_chunk(ctx, s, vids[i], two, 2, 1, dim, both, &buf, &cap)) != RAG_OK) {
                snprintf(err, errlen, "embedding chunk %lld: %s", (long long)vids[i], llm_context_error(ctx));
                goto done;
            }
            memcpy(cv + i * (size_t)dim, both, (size_t)dim * sizeof *cv);
        }
        idx_fingerprint nfp = fp;
        nfp.layer = ch.layers[best];
        if (idx_vectors_replace(s, &nfp, vids, cv, nv) != IDX_OK) { snprintf(err, errlen, "%s", idx_errmsg(s)); rc = RAG_ERR_IO; goto done; }
        ch.changed = true;
    }
done:
    if (rc == RAG_ERR_NOMEM) snprintf(err, errlen, "out of memory");
    llm_context_free(ctx);
    for (int q = 0; qt && q < 200; q++) free(qt[q]);
    free(qt);
    free(target);
    free(pub);
    free(vids);
    free(sample);
    free(cv);
    free(qv);
    free(tmp);
    free(bm);
    free(nbm);
    free(sc);
    free(buf);
    if (out) *out = ch;
    return rc;
}
