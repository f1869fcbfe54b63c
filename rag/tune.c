/* tune.c — learns, per index, how much each ranking can be trusted: the
 * weights of weighted reciprocal rank fusion and the dense similarity above
 * which a passage counts as relevant (the relevance gate), from
 * pseudo-queries made from the index's own public chunks or from labelled
 * questions; stores them in the index (meta "rag.fusion"). */
#include "rag/rag.h"

#include "index/index.h"

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
