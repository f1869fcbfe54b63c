/* cmd_eval.c — `mrag eval-retrieval`: ingests the paragraphs of a SQuAD-format
 * file as documents and reports recall@1/5/10 and MRR@10 of dense, BM25 and
 * hybrid retrieval (a hit = a chunk of the paragraph that holds the answer). */
#include "app/app.h"

#include "index/index.h"
#include "llm/llm.h"
#include "rag/rag.h"

#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *eval_usage =
    "usage: mrag eval-retrieval --squad FILE [options]\n"
    "\n"
    "Ingests every paragraph of a SQuAD-format JSON file as a document (uri\n"
    "squad://TITLE/N) and asks each question against the index: recall@1, @5,\n"
    "@10 and MRR@10 for dense, bm25 and hybrid retrieval, where a hit is a\n"
    "chunk of the paragraph the question was written for. Reruns reuse the\n"
    "paragraphs already embedded.\n"
    "\n"
    "  --squad FILE    the SQuAD/XQuAD JSON file (required)\n"
    "  --index DIR     index folder (default ./.mrag-eval; never mixed with\n"
    "                  your documents' index, which would skew the figures)\n"
    "  -m FILE         the model (default $MRAG_MODEL)\n"
    "  --lora FILE[:S]  embed with a LoRA adapter (scale S, default 1; repeatable)\n"
    "  --limit N       only the first N paragraphs (and their questions)\n"
    "  --layer L       embed the hidden state after layer L (default: final norm)\n"
    "  --layers LIST   also sweep embedding layers, e.g. 8,16,24,final: one\n"
    "                  forward pass per chunk and question gives every layer;\n"
    "                  dense and hybrid figures per layer (the index itself is\n"
    "                  built at --layer)\n"
    "  --threads N     engine threads (default: all cores)\n"
    "  --json          print the figures as JSON\n"
    "  --misses MODE   also list the questions MODE (dense, bm25 or hybrid)\n"
    "                  does not rank first: the rank of their paragraph\n"
    "                  (0 = not in the top 10), and the paragraph ranked first\n";

#define EVAL_MAX_LAYERS 16
#define EVAL_DEPTH 40           /* list depth for the sweep's fusion */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    int hits1, hits5, hits10;
    double rr;
} eval_score;

/* A question --misses lists: its paragraph's rank (0: not in the top 10)
 * and the paragraph ranked first (-1: nothing found). */
typedef struct {
    int q, rank, top_para;
} eval_miss;

typedef struct {
    int64_t id, doc;
} sweep_chunk;

static int cmp_score(const void *a, const void *b) {
    const float *x = a, *y = b;
    return x[0] > y[0] ? -1 : x[0] < y[0] ? 1 : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

/* The sweep's buffers: chunk and question vectors at every layer, the
 * BM25 list of each question. */
typedef struct {
    int dim, nl, n_q;
    size_t nc;
    int64_t *ids;
    sweep_chunk *ch;
    float *cv, *qv, *tmp, *sc;
    int64_t (*bm)[EVAL_DEPTH];
    int *nbm;
    char *buf;
} sweep_state;

static void sweep_release(sweep_state *w) {
    free(w->ids);
    free(w->ch);
    free(w->cv);
    free(w->qv);
    free(w->tmp);
    free(w->sc);
    free(w->bm);
    free(w->nbm);
    free(w->buf);
}

/* Step 1: every chunk's embed text as the ingester builds it (heading path,
 * blank line, text; the text alone without a heading) at every layer;
 * *max_dev: how far the index layer's vectors are from the stored ones. */
static int sweep_chunks(sweep_state *w, idx_store *s, llm_context *ctx, const int *layers, int index_layer,
                        double *max_dev) {
    int dim = w->dim, nl = w->nl;
    size_t nc = w->nc;
    *max_dev = 0;
    for (size_t i = 0; i < nc; i++) {
        idx_chunk c;
        if (idx_chunk_get(s, w->ids[i], &c, NULL) != IDX_OK) return app_error("eval-retrieval: %s", idx_errmsg(s));
        size_t hl = c.heading ? strlen(c.heading) : 0, l = hl ? hl + 2 + c.text_len : c.text_len;
        char *nb = realloc(w->buf, l + 1);
        if (!nb) { idx_chunk_release(&c); return app_error("eval-retrieval: out of memory"); }
        w->buf = nb;
        if (hl) { memcpy(w->buf, c.heading, hl); memcpy(w->buf + hl, "\n\n", 2); memcpy(w->buf + hl + 2, c.text, c.text_len); }
        else memcpy(w->buf, c.text, c.text_len);
        w->ch[i].id = w->ids[i];
        w->ch[i].doc = c.doc_id;
        idx_chunk_release(&c);
        if (llm_embed_layers(ctx, w->buf, l, layers, nl, w->tmp) != LLM_OK) return app_error("eval-retrieval: %s", llm_context_error(ctx));
        for (int j = 0; j < nl; j++) memcpy(w->cv + ((size_t)j * nc + i) * dim, w->tmp + (size_t)j * dim, (size_t)dim * sizeof *w->tmp);
        /* the pass agrees with the vectors the ingester stored */
        for (int j = 0; j < nl; j++) {
            if (layers[j] != index_layer) continue;
            float stored[4096];
            if (dim <= 4096 && idx_chunk_vector(s, w->ids[i], stored, dim) == IDX_OK) {
                double dot = 0;
                for (int d = 0; d < dim; d++) dot += (double)stored[d] * w->tmp[(size_t)j * dim + d];
                if (1 - dot > *max_dev) *max_dev = 1 - dot;
            }
        }
    }
    return 0;
}

/* Step 2: the questions at every layer, and their BM25 lists (the same for
 * every layer). */
static int sweep_questions(sweep_state *w, llm_context *ctx, rag_retriever *r, const int *layers, const app_squad_q *qs) {
    rag_hit h[EVAL_DEPTH];
    for (int q = 0; q < w->n_q; q++) {
        if (llm_embed_layers(ctx, qs[q].question, strlen(qs[q].question), layers, w->nl, w->tmp) != LLM_OK)
            return app_error("eval-retrieval: %s", llm_context_error(ctx));
        for (int j = 0; j < w->nl; j++)
            memcpy(w->qv + ((size_t)j * w->n_q + q) * w->dim, w->tmp + (size_t)j * w->dim, (size_t)w->dim * sizeof *w->tmp);
        int n = 0;
        if (rag_retrieve(r, qs[q].question, strlen(qs[q].question), RAG_SEARCH_BM25, EVAL_DEPTH, NULL, h, &n) != RAG_OK)
            return app_error("eval-retrieval: %s", rag_retriever_errmsg(r));
        for (int i = 0; i < n; i++) w->bm[q][i] = h[i].chunk_id;
        w->nbm[q] = n;
    }
    return 0;
}
/* The rank (1-based, 0 = not found) of the best chunk of paragraph want in
 * the weighted RRF of the dense list dl and the BM25 list bl. */
static int hybrid_best_rank(const sweep_state *w, const int64_t *dl, int nd, const int64_t *bl, int nb, double wd,
                            double wb, int64_t want) {
    int64_t fid[2 * EVAL_DEPTH];
    double fs[2 * EVAL_DEPTH];
    int nf = 0;
    for (int li = 0; li < 2; li++) {
        const int64_t *L = li ? bl : dl;
        int ln = li ? nb : nd;
        for (int i = 0; i < ln; i++) {
            int x = 0;
            while (x < nf && fid[x] != L[i]) x++;
            if (x == nf) { fid[nf] = L[i]; fs[nf++] = 0; }
            fs[x] += (li ? wb : wd) / (60.0 + i + 1);
        }
    }
    int best = 0;
    for (int x = 0; x < nf; x++) {
        bool right = false;
        for (size_t y = 0; y < w->nc; y++) if (w->ch[y].id == fid[x]) { right = w->ch[y].doc == want; break; }
        if (!right) continue;
        int rk = 1;
        for (int z = 0; z < nf; z++) if (fs[z] > fs[x] || (fs[z] == fs[x] && fid[z] < fid[x])) rk++;
        if (!best || rk < best) best = rk;
    }
    return best;
}

/* The figures of one layer: dense recall@1/5/10 and MRR@10, hybrid
 * recall@1 and MRR@10 with plain RRF ([0]) and the learned weights ([1]). */
typedef struct {
    double d1, d5, d10, drr, h1[2], hrr[2];
} layer_scores;

/* Exact dense search at layer j for every question, and the two hybrids. */
static void sweep_layer(sweep_state *w, int j, const app_squad_q *qs, const int64_t *doc_ids, rag_fusion fu, layer_scores *ls) {
    int dim = w->dim;
    size_t nc = w->nc;
    memset(ls, 0, sizeof *ls);
    for (int q = 0; q < w->n_q; q++) {
        const float *qq = w->qv + ((size_t)j * w->n_q + q) * dim;
        for (size_t i = 0; i < nc; i++) {
            const float *c = w->cv + ((size_t)j * nc + i) * dim;
            double dot = 0;
            for (int d = 0; d < dim; d++) dot += (double)qq[d] * c[d];
            w->sc[2 * i] = (float)dot;
            w->sc[2 * i + 1] = (float)w->ch[i].id;     /* ties: lower id first (ids < 2^24 here) */
        }
        qsort(w->sc, nc, 2 * sizeof *w->sc, cmp_score);
        int64_t dl[EVAL_DEPTH];
        int nd = (int)(nc < EVAL_DEPTH ? nc : EVAL_DEPTH);
        for (int i = 0; i < nd; i++) dl[i] = (int64_t)w->sc[2 * i + 1];
        int64_t want = doc_ids[qs[q].para];
        int rank = 0;
        for (int i = 0; i < nd && i < 10 && !rank; i++)
            for (size_t x = 0; x < nc; x++) if (w->ch[x].id == dl[i]) { if (w->ch[x].doc == want) rank = i + 1; break; }
        if (rank == 1) ls->d1++;
        if (rank && rank <= 5) ls->d5++;
        if (rank) { ls->d10++; ls->drr += 1.0 / rank; }
        /* hybrid: weighted RRF over the dense list and the BM25 list */
        for (int v = 0; v < 2; v++) {
            int best = hybrid_best_rank(w, dl, nd, w->bm[q], w->nbm[q], v ? fu.w_dense : 0.5, v ? fu.w_bm25 : 0.5, want);
            if (best == 1) ls->h1[v]++;
            if (best && best <= 10) ls->hrr[v] += 1.0 / best;
        }
    }
}

/* One layer's row of the table, or its object in arr. */
static void sweep_report(cJSON *arr, int layer, const layer_scores *ls, double nq) {
    char name[16];
    if (layer < 0) snprintf(name, sizeof name, "final");
    else snprintf(name, sizeof name, "%d", layer);
    if (arr) {
        cJSON *o = cJSON_CreateObject();
        if (!o) return;
        cJSON_AddStringToObject(o, "layer", name);
        cJSON_AddNumberToObject(o, "dense_recall@1", ls->d1 / nq);
        cJSON_AddNumberToObject(o, "dense_recall@5", ls->d5 / nq);
        cJSON_AddNumberToObject(o, "dense_recall@10", ls->d10 / nq);
        cJSON_AddNumberToObject(o, "dense_mrr@10", ls->drr / nq);
        cJSON_AddNumberToObject(o, "hybrid_rrf_recall@1", ls->h1[0] / nq);
        cJSON_AddNumberToObject(o, "hybrid_learned_recall@1", ls->h1[1] / nq);
        cJSON_AddItemToArray(arr, o);
    } else {
        printf("%-8s %9.4f %9.4f %9.4f %9.4f   %.4f / %.4f, %.4f / %.4f\n", name, ls->d1 / nq, ls->d5 / nq, ls->d10 / nq,
               ls->drr / nq, ls->h1[0] / nq, ls->hrr[0] / nq, ls->h1[1] / nq, ls->hrr[1] / nq);
    }
}

/* The layer sweep: every chunk and question embedded once at all layers
 * (llm_embed_layers), exact dense search in memory per layer, BM25 lists
 * shared; hybrid as weighted RRF with the dense weight that pseudo-free
 * choice would be unfair to learn from the questions, so both plain RRF and
 * the index's learned weights are shown. Prints a table (or adds "layers" to
 * out). Returns 0, or 1 after printing an error. */
static int layer_sweep(idx_store *s, llm_model *m, rag_retriever *r, int threads, int index_layer, const int *layers,
                       int nl, const app_squad_q *qs, int n_q, const int64_t *doc_ids, cJSON *out) {
    int rc = 1;
    sweep_state w;
    memset(&w, 0, sizeof w);
    w.dim = llm_n_embd(m);
    w.nl = nl;
    w.n_q = n_q;
    llm_context *ctx = NULL;
    double t0 = now_s();
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = 2048;
    cp.n_batch = 512;
    cp.n_threads = threads;
    char lerr[256] = "";
    if (llm_context_new(m, &cp, &ctx, lerr, sizeof lerr) != LLM_OK) { app_error("eval-retrieval: %s", lerr); goto done; }
    if (idx_chunk_ids(s, false, &w.ids, &w.nc) != IDX_OK) { app_error("eval-retrieval: %s", idx_errmsg(s)); goto done; }
    size_t nc1 = w.nc ? w.nc : 1, nq1 = (size_t)(n_q ? n_q : 1);
    w.ch = calloc(nc1, sizeof *w.ch);
    w.cv = malloc((size_t)nl * nc1 * w.dim * sizeof *w.cv);
    w.qv = malloc((size_t)nl * nq1 * w.dim * sizeof *w.qv);
    w.tmp = malloc((size_t)nl * w.dim * sizeof *w.tmp);
    w.sc = malloc(2 * nc1 * sizeof *w.sc);
    w.bm = calloc(nq1, sizeof *w.bm);
    w.nbm = calloc(nq1, sizeof *w.nbm);
    if (!w.ch || !w.cv || !w.qv || !w.tmp || !w.sc || !w.bm || !w.nbm) { app_error("eval-retrieval: out of memory"); goto done; }
    double max_dev = 0;
    if (sweep_chunks(&w, s, ctx, layers, index_layer, &max_dev) != 0 || sweep_questions(&w, ctx, r, layers, qs) != 0) goto done;
    double secs = now_s() - t0;
    rag_fusion fu = rag_retriever_fusion(r);
    if (!out) {
        printf("\nlayer sweep: %zu chunks and %d questions embedded once at %d layers (%.1f s)%s\n", w.nc, n_q, nl, secs,
               max_dev > 1e-3 ? " - WARNING: the sweep's vectors differ from the stored ones" : "");
        printf("%-8s %9s %9s %9s %9s   %s\n", "layer", "recall@1", "recall@5", "recall@10", "MRR@10",
               "hybrid recall@1 / MRR@10: plain RRF, learned weights");
    }
    cJSON *arr = out ? cJSON_AddArrayToObject(out, "layers") : NULL;
    for (int j = 0; j < nl; j++) {
        layer_scores ls;
        sweep_layer(&w, j, qs, doc_ids, fu, &ls);
        sweep_report(arr, layers[j], &ls, n_q ? n_q : 1);
    }
    if (!out)
        printf("(learned weights are this index's: dense %.2f, bm25 %.2f; ingest with `--layer L` at the best layer and "
               "they are learned for it)\n", fu.w_dense, fu.w_bm25);
    rc = 0;
done:
    llm_context_free(ctx);
    sweep_release(&w);
    return rc;
}

/* ------------------------------------------------------------ the command */

typedef struct {
    const char *squad, *index_flag, *mflag;
    long limit;
    int layer, threads;
    bool json;
    int misses;             /* --misses: a rag_search_mode, or -1 */
    int sweep[EVAL_MAX_LAYERS], n_sweep;
    app_lora_opts lora;     /* --lora FILE[:SCALE] */
} eval_opts;

/* Parses argv into o; 0, or 2 after printing the problem. */
enum { O_SQUAD = 256, O_INDEX, O_JSON, O_LIMIT, O_LAYER, O_THREADS, O_LAYERS, O_LORA, O_MISSES };
static const app_opt eval_opts_table[] = {
    {"squad", 0, "FILE", O_SQUAD},
    {"index", 0, "DIR", O_INDEX},
    {"model", 'm', "FILE", 'm'},
    {"limit", 0, "N", O_LIMIT},
    {"layer", 0, "L", O_LAYER},
    {"layers", 0, "L,L,...", O_LAYERS},
    {"threads", 0, "N", O_THREADS},
    {"json", 0, NULL, O_JSON},
    {"lora", 0, "FILE[:SCALE]", O_LORA},
    {"misses", 0, "MODE", O_MISSES},
    {0},
};
const app_opt *const app_eval_retrieval_opts[] = {eval_opts_table, NULL};

static int eval_parse_opts(eval_opts *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->layer = -1;
    o->misses = -1;
    long v;
    app_args ap;
    app_args_init(&ap, "eval-retrieval", app_eval_retrieval_opts, argc, argv);
    const char *val;
    int id;
    while ((id = app_args_next(&ap, &val)) > 0) {
        bool ok = true;
        switch (id) {
        case O_SQUAD: o->squad = val; break;
        case O_LORA: if (app_lora_add(&o->lora, "eval-retrieval", (char *)val) != 0) return 2; break;
        case O_INDEX: o->index_flag = val; break;
        case 'm': o->mflag = val; break;
        case O_JSON: o->json = true; break;
        case O_MISSES:
            for (int mode = 0; mode < 3; mode++)
                if (strcmp(val, rag_search_mode_str((rag_search_mode)mode)) == 0) o->misses = mode;
            if (o->misses < 0) return app_usage_error(&ap, "--misses: '%s' is not dense, bm25 or hybrid", val);
            break;
        case O_LIMIT: if ((ok = app_opt_long(&ap, val, 1, 10000000, &v))) o->limit = v; break;
        case O_LAYER: ok = app_opt_int(&ap, val, -1, 100000, &o->layer); break;
        case O_THREADS: ok = app_opt_int(&ap, val, 1, 256, &o->threads); break;
        case O_LAYERS: {
            char *save = NULL;
            char buf[512];
            snprintf(buf, sizeof buf, "%s", val);
            for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (o->n_sweep == EVAL_MAX_LAYERS) return app_usage_error(&ap, "--layers: at most %d layers", EVAL_MAX_LAYERS);
                if (strcmp(t, "final") == 0 || strcmp(t, "-1") == 0) o->sweep[o->n_sweep++] = -1;
                else if (app_parse_long(t, 0, 100000, &v)) o->sweep[o->n_sweep++] = (int)v;
                else return app_usage_error(&ap, "--layers: '%s' is not a layer number or 'final'", t);
            }
            if (!o->n_sweep) return app_usage_error(&ap, "--layers needs at least one layer");
            break;
        }
        }
        if (!ok) return 2;
    }
    if (id < 0) return 2;
    if (ap.npos > 0) return app_usage_error(&ap, "unexpected argument '%s'", argv[1]);
    if (!o->squad) return app_usage_error(&ap, "no --squad FILE");
    return 0;
}

/* The paragraph of document doc_id, or -1. */
static int para_of_doc(const app_squad *e, int64_t doc_id) {
    for (int i = 0; i < e->n_para; i++)
        if (e->doc_ids[i] == doc_id) return i;
    return -1;
}

/* Every question in the three modes: recall and MRR into sc, seconds into
 * tq; with --misses, the questions that mode does not rank first into
 * *misses (owned, *n_misses of them). */
static int eval_questions(const eval_opts *o, idx_store *s, rag_retriever *r, const app_squad *e, eval_score sc[3],
                          double tq[3], bool tty, eval_miss **misses, int *n_misses) {
    rag_hit hits[10];
    for (int qi = 0; qi < e->n_q; qi++) {
        for (int mode = 0; mode < 3; mode++) {
            int n = 0;
            double t = now_s();
            if (rag_retrieve(r, e->qs[qi].question, strlen(e->qs[qi].question), (rag_search_mode)mode, 10, NULL, hits, &n) != RAG_OK)
                return app_error("eval-retrieval: %s", rag_retriever_errmsg(r));
            tq[mode] += now_s() - t;
            int rank = 0, top_para = -1;
            for (int i = 0; i < n && !rank; i++) {
                idx_chunk c;
                memset(&c, 0, sizeof c);
                if (idx_chunk_get(s, hits[i].chunk_id, &c, NULL) != IDX_OK) return app_error("eval-retrieval: %s", idx_errmsg(s));
                if (c.doc_id == e->doc_ids[e->qs[qi].para]) rank = i + 1;
                if (i == 0) top_para = para_of_doc(e, c.doc_id);
                idx_chunk_release(&c);
            }
            if (mode == o->misses && rank != 1) {
                eval_miss *nm = realloc(*misses, (size_t)(*n_misses + 1) * sizeof *nm);
                if (!nm) return app_error("eval-retrieval: out of memory");
                *misses = nm;
                nm[(*n_misses)++] = (eval_miss){.q = qi, .rank = rank, .top_para = top_para};
            }
            if (rank == 1) sc[mode].hits1++;
            if (rank && rank <= 5) sc[mode].hits5++;
            if (rank) { sc[mode].hits10++; sc[mode].rr += 1.0 / rank; }
        }
        if (!o->json && tty && (qi + 1) % 50 == 0) fprintf(stderr, "\r%d/%d questions", qi + 1, e->n_q);
    }
    if (!o->json && tty && e->n_q >= 50) fputc('\n', stderr);
    return 0;
}

/* --misses: the list as a table on stdout, or as the array "misses" of
 * the mode's object in out. */
static void eval_report_misses(const eval_opts *o, const app_squad *e, const eval_miss *ms, int n, cJSON *out) {
    const char *mode = rag_search_mode_str((rag_search_mode)o->misses);
    if (out) {
        cJSON *arr = cJSON_AddArrayToObject(cJSON_GetObjectItemCaseSensitive(out, mode), "misses");
        for (int i = 0; arr && i < n; i++) {
            cJSON *x = cJSON_CreateObject();
            if (!x) break;
            cJSON_AddStringToObject(x, "question", e->qs[ms[i].q].question);
            cJSON_AddNumberToObject(x, "rank", ms[i].rank);
            cJSON_AddStringToObject(x, "paragraph", e->uris[e->qs[ms[i].q].para]);
            if (ms[i].top_para >= 0) cJSON_AddStringToObject(x, "first", e->uris[ms[i].top_para]);
            else cJSON_AddNullToObject(x, "first");
            cJSON_AddItemToArray(arr, x);
        }
        return;
    }
    printf("\n%s misses: %d of %d questions not ranked first\n", mode, n, e->n_q);
    for (int i = 0; i < n; i++) {
        char rank[16];
        if (ms[i].rank) snprintf(rank, sizeof rank, "rank %d", ms[i].rank);
        else snprintf(rank, sizeof rank, "not in 10");
        printf("  %-9s  %s\n             paragraph %s; first %s\n", rank, e->qs[ms[i].q].question,
               e->uris[e->qs[ms[i].q].para], ms[i].top_para >= 0 ? e->uris[ms[i].top_para] : "(nothing)");
    }
}

/* The figures as a JSON object (returned, owned) or as a table (NULL). */
static cJSON *eval_report(const eval_opts *o, const char *mpath, idx_store *s, rag_retriever *r, const app_squad *e,
                          const eval_score sc[3], const double tq[3]) {
    idx_counts cnt;
    memset(&cnt, 0, sizeof cnt);
    idx_get_counts(s, &cnt);
    double nq = e->n_q ? e->n_q : 1;
    rag_fusion fu = rag_retriever_fusion(r);
    if (!o->json) {
        char lname[16];
        if (o->layer < 0) snprintf(lname, sizeof lname, "final");
        else snprintf(lname, sizeof lname, "%d", o->layer);
        printf("%s: %d paragraphs (%lld chunks), %d questions; model %s, layer %s\n", o->squad, e->n_para,
               (long long)cnt.chunks, e->n_q, mpath, lname);
        printf("chance: recall@1 %.4f, recall@10 %.4f (one paragraph in %d)\n", e->n_para ? 1.0 / e->n_para : 0.0,
               e->n_para ? (e->n_para < 10 ? 1.0 : 10.0 / e->n_para) : 0.0, e->n_para);
        char fl[512];
        app_fusion_describe(&fu, fl, sizeof fl);
        printf("%s\n", fl);
        app_synonyms_describe(s, fl, sizeof fl);
        printf("%s\n", fl);
        printf("%-8s %9s %9s %9s %9s %12s\n", "mode", "recall@1", "recall@5", "recall@10", "MRR@10", "ms/query");
        for (int mode = 0; mode < 3; mode++)
            printf("%-8s %9.4f %9.4f %9.4f %9.4f %12.2f\n", rag_search_mode_str((rag_search_mode)mode),
                   sc[mode].hits1 / nq, sc[mode].hits5 / nq, sc[mode].hits10 / nq, sc[mode].rr / nq, 1000 * tq[mode] / nq);
        return NULL;
    }
    cJSON *out = cJSON_CreateObject();
    if (!out) return NULL;
    cJSON_AddStringToObject(out, "file", o->squad);
    cJSON_AddStringToObject(out, "model", mpath);
    cJSON_AddNumberToObject(out, "layer", o->layer);
    cJSON_AddNumberToObject(out, "paragraphs", e->n_para);
    cJSON_AddNumberToObject(out, "chunks", (double)cnt.chunks);
    cJSON_AddNumberToObject(out, "questions", e->n_q);
    cJSON *fo = cJSON_AddObjectToObject(out, "fusion");
    if (fo) {
        cJSON_AddNumberToObject(fo, "w_dense", fu.w_dense);
        cJSON_AddNumberToObject(fo, "w_bm25", fu.w_bm25);
        cJSON_AddStringToObject(fo, "source", fu.source);
        cJSON_AddNumberToObject(fo, "queries", fu.n_queries);
        if (isinf(fu.gate_cos)) cJSON_AddNullToObject(fo, "gate_cos");
        else cJSON_AddNumberToObject(fo, "gate_cos", fu.gate_cos);
    }
    for (int mode = 0; mode < 3; mode++) {
        cJSON *m = cJSON_AddObjectToObject(out, rag_search_mode_str((rag_search_mode)mode));
        if (!m) continue;
        cJSON_AddNumberToObject(m, "recall@1", sc[mode].hits1 / nq);
        cJSON_AddNumberToObject(m, "recall@5", sc[mode].hits5 / nq);
        cJSON_AddNumberToObject(m, "recall@10", sc[mode].hits10 / nq);
        cJSON_AddNumberToObject(m, "mrr@10", sc[mode].rr / nq);
        cJSON_AddNumberToObject(m, "ms_per_query", 1000 * tq[mode] / nq);
    }
    return out;
}

int app_cmd_eval_retrieval(int argc, char **argv) {
    if (app_wants_help(argc, argv)) {
        fputs(eval_usage, stdout);
        return 0;
    }
    eval_opts o;
    int rc = eval_parse_opts(&o, argc, argv);
    if (rc != 0) return rc;
    rc = 1;
    bool tty = isatty(STDERR_FILENO);     /* \r progress only on a terminal */
    cJSON *out = NULL;
    llm_model *m = NULL;
    idx_store *s = NULL;
    rag_retriever *r = NULL;
    app_squad e;
    memset(&e, 0, sizeof e);
    eval_miss *misses = NULL;
    int n_misses = 0;
    const char *index_dir = o.index_flag ? o.index_flag : "./.mrag-eval";
    const char *mpath = app_model_path(o.mflag);
    if (!mpath) { app_error("eval-retrieval: no model: give -m FILE or set MRAG_MODEL"); return 1; }
    if (app_squad_open(o.squad, o.limit, "eval-retrieval", &e) != 0) goto done;

    char err[1024];
    llm_model_params mp = llm_model_default_params();
    app_lora_model_params(&o.lora, &mp);
    if (llm_model_load(mpath, &mp, &m, err, sizeof err) != LLM_OK) { app_error("eval-retrieval: %s", err); goto done; }
    idx_params ip = idx_default_params();
    if (idx_open(index_dir, &ip, &s) != IDX_OK) { app_error("eval-retrieval: %s", s ? idx_errmsg(s) : "out of memory"); goto done; }
    /* paragraphs -> documents (skipped when already stored with this text) */
    if (app_squad_ingest(&e, s, m, o.layer, o.threads, o.json, "eval-retrieval") != 0) goto done;

    rag_retriever_params rp = rag_retriever_default_params();
    rp.model = m;
    rp.layer = o.layer;
    rp.n_threads = o.threads;
    if (rag_retriever_new(s, &rp, &r, err, sizeof err) != RAG_OK) { app_error("eval-retrieval: %s", err); goto done; }
    eval_score sc[3];
    memset(sc, 0, sizeof sc);
    double tq[3] = {0, 0, 0};
    if (eval_questions(&o, s, r, &e, sc, tq, tty, &misses, &n_misses) != 0) goto done;
    out = eval_report(&o, mpath, s, r, &e, sc, tq);
    if (o.json && !out) { app_error("eval-retrieval: out of memory"); goto done; }
    if (o.misses >= 0) eval_report_misses(&o, &e, misses, n_misses, out);
    if (o.n_sweep && layer_sweep(s, m, r, o.threads, o.layer, o.sweep, o.n_sweep, e.qs, e.n_q, e.doc_ids, o.json ? out : NULL) != 0)
        goto done;
    if (o.json) {
        char *txt = cJSON_Print(out);
        if (!txt) { app_error("eval-retrieval: out of memory"); goto done; }
        puts(txt);
        free(txt);
    }
    rc = 0;
done:
    free(misses);
    cJSON_Delete(out);
    app_squad_release(&e);
    rag_retriever_free(r);
    idx_close(s);
    llm_model_free(m);
    return rc;
}
