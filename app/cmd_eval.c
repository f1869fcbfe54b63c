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
    "  --limit N       only the first N paragraphs (and their questions)\n"
    "  --layer L       embed the hidden state after layer L (default: final norm)\n"
    "  --layers LIST   also sweep embedding layers, e.g. 8,16,24,final: one\n"
    "                  forward pass per chunk and question gives every layer;\n"
    "                  dense and hybrid figures per layer (the index itself is\n"
    "                  built at --layer)\n"
    "  --threads N     engine threads (default: all cores)\n"
    "  --json          print the figures as JSON\n";

#define EVAL_MAX_FILE (512u << 20)
#define EVAL_MAX_LAYERS 16
#define EVAL_DEPTH 40           /* list depth for the sweep's fusion */

static bool parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    const char *question;   /* borrowed from the cJSON tree */
    int para;               /* index into the paragraph list */
} eval_q;

typedef struct {
    int hits1, hits5, hits10;
    double rr;
} eval_score;

typedef struct {
    int64_t id, doc;
} sweep_chunk;

static int cmp_score(const void *a, const void *b) {
    const float *x = a, *y = b;
    return x[0] > y[0] ? -1 : x[0] < y[0] ? 1 : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

/* The layer sweep: every chunk and question embedded once at all layers
 * (llm_embed_layers), exact dense search in memory per layer, BM25 lists
 * shared; hybrid as weighted RRF with the dense weight that pseudo-free
 * choice would be unfair to learn from the questions, so both plain RRF and
 * the index's learned weights are shown. Prints a table (or adds "layers" to
 * out). Returns 0, or 1 after printing an error. */
static int layer_sweep(idx_store *s, llm_model *m, rag_retriever *r, int threads, int index_layer, const int *layers,
                       int nl, const eval_q *qs, int n_q, const int64_t *doc_ids, cJSON *out) {
    int rc = 1, dim = llm_n_embd(m);
    int64_t *ids = NULL;
    size_t nc = 0;
    sweep_chunk *ch = NULL;
    float *cv = NULL, *qv = NULL, *tmp = NULL, *sc = NULL;
    int64_t (*bm)[EVAL_DEPTH] = NULL;
    int *nbm = NULL;
    llm_context *ctx = NULL;
    char *buf = NULL;
    double t0 = now_s();
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = 2048;
    cp.n_batch = 512;
    cp.n_threads = threads;
    char lerr[256] = "";
    if (llm_context_new(m, &cp, &ctx, lerr, sizeof lerr) != LLM_OK) { app_error("eval-retrieval: %s", lerr); goto done; }
    if (idx_chunk_ids(s, false, &ids, &nc) != IDX_OK) { app_error("eval-retrieval: %s", idx_errmsg(s)); goto done; }
    ch = calloc(nc ? nc : 1, sizeof *ch);
    cv = malloc((size_t)nl * (nc ? nc : 1) * dim * sizeof *cv);
    qv = malloc((size_t)nl * (n_q ? n_q : 1) * dim * sizeof *qv);
    tmp = malloc((size_t)nl * dim * sizeof *tmp);
    sc = malloc(2 * (nc ? nc : 1) * sizeof *sc);
    bm = calloc((size_t)(n_q ? n_q : 1), sizeof *bm);
    nbm = calloc((size_t)(n_q ? n_q : 1), sizeof *nbm);
    if (!ch || !cv || !qv || !tmp || !sc || !bm || !nbm) { app_error("eval-retrieval: out of memory"); goto done; }
    /* 1. chunks: the embed text as the ingester builds it (heading path,
     * blank line, text; the text alone without a heading) */
    double max_dev = 0;
    for (size_t i = 0; i < nc; i++) {
        idx_chunk c;
        if (idx_chunk_get(s, ids[i], &c, NULL) != IDX_OK) { app_error("eval-retrieval: %s", idx_errmsg(s)); goto done; }
        size_t hl = c.heading ? strlen(c.heading) : 0, l = hl ? hl + 2 + c.text_len : c.text_len;
        char *nb = realloc(buf, l + 1);
        if (!nb) { idx_chunk_release(&c); app_error("eval-retrieval: out of memory"); goto done; }
        buf = nb;
        if (hl) { memcpy(buf, c.heading, hl); memcpy(buf + hl, "\n\n", 2); memcpy(buf + hl + 2, c.text, c.text_len); }
        else memcpy(buf, c.text, c.text_len);
        ch[i].id = ids[i];
        ch[i].doc = c.doc_id;
        idx_chunk_release(&c);
        if (llm_embed_layers(ctx, buf, l, layers, nl, tmp) != LLM_OK) { app_error("eval-retrieval: %s", llm_context_error(ctx)); goto done; }
        for (int j = 0; j < nl; j++) memcpy(cv + ((size_t)j * nc + i) * dim, tmp + (size_t)j * dim, (size_t)dim * sizeof *tmp);
        /* the pass agrees with the vectors the ingester stored */
        for (int j = 0; j < nl; j++) {
            if (layers[j] != index_layer) continue;
            float stored[4096];
            if (dim <= 4096 && idx_chunk_vector(s, ids[i], stored, dim) == IDX_OK) {
                double dot = 0;
                for (int d = 0; d < dim; d++) dot += (double)stored[d] * tmp[(size_t)j * dim + d];
                if (1 - dot > max_dev) max_dev = 1 - dot;
            }
        }
    }
    /* 2. questions, and their BM25 lists (the same for every layer) */
    rag_hit h[EVAL_DEPTH];
    for (int q = 0; q < n_q; q++) {
        if (llm_embed_layers(ctx, qs[q].question, strlen(qs[q].question), layers, nl, tmp) != LLM_OK) {
            app_error("eval-retrieval: %s", llm_context_error(ctx));
            goto done;
        }
        for (int j = 0; j < nl; j++) memcpy(qv + ((size_t)j * n_q + q) * dim, tmp + (size_t)j * dim, (size_t)dim * sizeof *tmp);
        int n = 0;
        if (rag_retrieve(r, qs[q].question, strlen(qs[q].question), RAG_SEARCH_BM25, EVAL_DEPTH, NULL, h, &n) != RAG_OK) {
            app_error("eval-retrieval: %s", rag_retriever_errmsg(r));
            goto done;
        }
        for (int i = 0; i < n; i++) bm[q][i] = h[i].chunk_id;
        nbm[q] = n;
    }
    double secs = now_s() - t0;
    rag_fusion fu = rag_retriever_fusion(r);
    if (!out) {
        printf("\nlayer sweep: %zu chunks and %d questions embedded once at %d layers (%.1f s)%s\n", nc, n_q, nl, secs,
               max_dev > 1e-3 ? " - WARNING: the sweep's vectors differ from the stored ones" : "");
        printf("%-8s %9s %9s %9s %9s   %s\n", "layer", "recall@1", "recall@5", "recall@10", "MRR@10",
               "hybrid recall@1 / MRR@10: plain RRF, learned weights");
    }
    cJSON *arr = out ? cJSON_AddArrayToObject(out, "layers") : NULL;
    for (int j = 0; j < nl; j++) {
        double d1 = 0, d5 = 0, d10 = 0, drr = 0, h1[2] = {0, 0}, hrr[2] = {0, 0};
        for (int q = 0; q < n_q; q++) {
            const float *qq = qv + ((size_t)j * n_q + q) * dim;
            for (size_t i = 0; i < nc; i++) {
                const float *c = cv + ((size_t)j * nc + i) * dim;
                double dot = 0;
                for (int d = 0; d < dim; d++) dot += (double)qq[d] * c[d];
                sc[2 * i] = (float)dot;
                sc[2 * i + 1] = (float)ch[i].id;     /* ties: lower id first (ids < 2^24 here) */
            }
            qsort(sc, nc, 2 * sizeof *sc, cmp_score);
            int64_t dl[EVAL_DEPTH];
            int nd = (int)(nc < EVAL_DEPTH ? nc : EVAL_DEPTH);
            for (int i = 0; i < nd; i++) dl[i] = (int64_t)sc[2 * i + 1];
            int64_t want = doc_ids[qs[q].para];
            int rank = 0;
            for (int i = 0; i < nd && i < 10 && !rank; i++)
                for (size_t x = 0; x < nc; x++) if (ch[x].id == dl[i]) { if (ch[x].doc == want) rank = i + 1; break; }
            if (rank == 1) d1++;
            if (rank && rank <= 5) d5++;
            if (rank) { d10++; drr += 1.0 / rank; }
            /* hybrid: weighted RRF over the dense list and the BM25 list */
            for (int w = 0; w < 2; w++) {
                double wd = w ? fu.w_dense : 0.5, wb = w ? fu.w_bm25 : 0.5;
                int64_t fid[2 * EVAL_DEPTH];
                double fs[2 * EVAL_DEPTH];
                int nf = 0;
                for (int li = 0; li < 2; li++) {
                    const int64_t *L = li ? bm[q] : dl;
                    int ln = li ? nbm[q] : nd;
                    for (int i = 0; i < ln; i++) {
                        int x = 0;
                        while (x < nf && fid[x] != L[i]) x++;
                        if (x == nf) { fid[nf] = L[i]; fs[nf++] = 0; }
                        fs[x] += (li ? wb : wd) / (60.0 + i + 1);
                    }
                }
                /* rank of the best chunk of the right paragraph */
                int best = 0;
                for (int x = 0; x < nf; x++) {
                    bool right = false;
                    for (size_t y = 0; y < nc; y++) if (ch[y].id == fid[x]) { right = ch[y].doc == want; break; }
                    if (!right) continue;
                    int rk = 1;
                    for (int z = 0; z < nf; z++) if (fs[z] > fs[x] || (fs[z] == fs[x] && fid[z] < fid[x])) rk++;
                    if (!best || rk < best) best = rk;
                }
                if (best == 1) h1[w]++;
                if (best && best <= 10) hrr[w] += 1.0 / best;
            }
        }
        double nq = n_q ? n_q : 1;
        char name[16];
        if (layers[j] < 0) snprintf(name, sizeof name, "final");
        else snprintf(name, sizeof name, "%d", layers[j]);
        if (arr) {
            cJSON *o = cJSON_CreateObject();
            if (o) {
                cJSON_AddStringToObject(o, "layer", name);
                cJSON_AddNumberToObject(o, "dense_recall@1", d1 / nq);
                cJSON_AddNumberToObject(o, "dense_recall@5", d5 / nq);
                cJSON_AddNumberToObject(o, "dense_recall@10", d10 / nq);
                cJSON_AddNumberToObject(o, "dense_mrr@10", drr / nq);
                cJSON_AddNumberToObject(o, "hybrid_rrf_recall@1", h1[0] / nq);
                cJSON_AddNumberToObject(o, "hybrid_learned_recall@1", h1[1] / nq);
                cJSON_AddItemToArray(arr, o);
            }
        } else {
            printf("%-8s %9.4f %9.4f %9.4f %9.4f   %.4f / %.4f, %.4f / %.4f\n", name, d1 / nq, d5 / nq, d10 / nq, drr / nq,
                   h1[0] / nq, hrr[0] / nq, h1[1] / nq, hrr[1] / nq);
        }
    }
    if (!out)
        printf("(learned weights are this index's: dense %.2f, bm25 %.2f; ingest with `--layer L` at the best layer and "
               "they are learned for it)\n", fu.w_dense, fu.w_bm25);
    rc = 0;
done:
    llm_context_free(ctx);
    free(ids);
    free(ch);
    free(cv);
    free(qv);
    free(tmp);
    free(sc);
    free(bm);
    free(nbm);
    free(buf);
    return rc;
}

/* Contract: prints the table (or JSON); 0 ok, 1 on file/model/index errors,
 * 2 on usage errors. */
int app_cmd_eval_retrieval(int argc, char **argv) {
    if (app_wants_help(argc, argv)) {
        fputs(eval_usage, stdout);
        return 0;
    }
    int rc = 1;
    const char *squad = NULL, *index_flag = NULL, *mflag = NULL;
    long limit = 0, v;
    int layer = -1, threads = 0;
    bool json = false;
    bool tty = isatty(STDERR_FILENO);     /* \r progress only on a terminal */
    char *data = NULL;
    cJSON *root = NULL, *out = NULL;
    llm_model *m = NULL;
    idx_store *s = NULL;
    rag_ingester *ing = NULL;
    rag_retriever *r = NULL;
    char **uris = NULL;
    int64_t *doc_ids = NULL;
    eval_q *qs = NULL;
    idx_doc *listed = NULL;
    size_t n_listed = 0;
    int n_para = 0, cap_para = 0, n_q = 0, cap_q = 0;
    int sweep[EVAL_MAX_LAYERS], n_sweep = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--squad") == 0 && has) squad = argv[++i];
        else if (strcmp(a, "--index") == 0 && has) index_flag = argv[++i];
        else if (strcmp(a, "-m") == 0 && has) mflag = argv[++i];
        else if (strcmp(a, "--json") == 0) json = true;
        else if (strcmp(a, "--limit") == 0 && has && parse_int(argv[i + 1], 1, 10000000, &v)) { limit = v; i++; }
        else if (strcmp(a, "--layer") == 0 && has && parse_int(argv[i + 1], -1, 100000, &v)) { layer = (int)v; i++; }
        else if (strcmp(a, "--threads") == 0 && has && parse_int(argv[i + 1], 1, 256, &v)) { threads = (int)v; i++; }
        else if (strcmp(a, "--layers") == 0 && has) {
            char *list = argv[++i], *save = NULL;
            char buf[512];
            snprintf(buf, sizeof buf, "%s", list);
            for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (n_sweep == EVAL_MAX_LAYERS) { app_error("eval-retrieval: at most %d layers", EVAL_MAX_LAYERS); return 2; }
                if (strcmp(t, "final") == 0 || strcmp(t, "-1") == 0) sweep[n_sweep++] = -1;
                else if (parse_int(t, 0, 100000, &v)) sweep[n_sweep++] = (int)v;
                else { app_error("eval-retrieval: --layers: '%s' is not a layer number or 'final'", t); return 2; }
            }
            if (!n_sweep) { app_error("eval-retrieval: --layers needs at least one layer"); return 2; }
        }
        else {
            app_error("eval-retrieval: bad option or value '%s' (see `mrag eval-retrieval --help`)", a);
            return 2;
        }
    }
    if (!squad) { fputs(eval_usage, stderr); return 2; }
    const char *index_dir = index_flag ? index_flag : "./.mrag-eval";
    const char *mpath = app_model_path(mflag);
    if (!mpath) { app_error("eval-retrieval: no model: give -m FILE or set MRAG_MODEL"); return 1; }
    size_t len = 0;
    if (!(data = app_read_file(squad, EVAL_MAX_FILE, &len))) { app_error("eval-retrieval: cannot read %s (missing or over 512 MB)", squad); goto done; }
    if (!(root = cJSON_ParseWithLength(data, len))) { app_error("eval-retrieval: %s is not valid JSON", squad); goto done; }
    const cJSON *articles = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (!cJSON_IsArray(articles)) { app_error("eval-retrieval: %s has no \"data\" array (not SQuAD format)", squad); goto done; }

    char err[1024];
    llm_model_params mp = llm_model_default_params();
    if (llm_model_load(mpath, &mp, &m, err, sizeof err) != LLM_OK) { app_error("eval-retrieval: %s", err); goto done; }
    idx_params ip = idx_default_params();
    if (idx_open(index_dir, &ip, &s) != IDX_OK) { app_error("eval-retrieval: %s", s ? idx_errmsg(s) : "out of memory"); goto done; }
    rag_ingest_params gp = rag_ingest_default_params();
    gp.model = m;
    gp.layer = layer;
    gp.n_threads = threads;
    gp.reindex = true;      /* an eval index is ours: a new model rebuilds it */
    if (rag_ingester_new(s, &gp, &ing, err, sizeof err) != RAG_OK) { app_error("eval-retrieval: %s", err); goto done; }

    /* paragraphs -> documents (skipped when already stored with this text) */
    double t0 = now_s();
    int added = 0;
    uint64_t n_chunks = 0;
    const cJSON *art;
    cJSON_ArrayForEach(art, articles) {
        const cJSON *title = cJSON_GetObjectItemCaseSensitive(art, "title");
        const cJSON *paras = cJSON_GetObjectItemCaseSensitive(art, "paragraphs");
        if (!cJSON_IsArray(paras)) continue;
        int pi = 0;
        const cJSON *para;
        cJSON_ArrayForEach(para, paras) {
            if (limit && n_para >= limit) break;
            const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(para, "context");
            const cJSON *qas = cJSON_GetObjectItemCaseSensitive(para, "qas");
            if (!cJSON_IsString(ctx)) { pi++; continue; }
            if (n_para == cap_para) {
                cap_para = cap_para ? cap_para * 2 : 256;
                char **nu = realloc(uris, (size_t)cap_para * sizeof *nu);
                int64_t *nd = realloc(doc_ids, (size_t)cap_para * sizeof *nd);
                if (nu) uris = nu;
                if (nd) doc_ids = nd;
                if (!nu || !nd) { app_error("eval-retrieval: out of memory"); goto done; }
            }
            char uri[1024];
            snprintf(uri, sizeof uri, "squad://%s/%d", cJSON_IsString(title) ? title->valuestring : "untitled", pi);
            if (!(uris[n_para] = strdup(uri))) { app_error("eval-retrieval: out of memory"); goto done; }
            const char *text = ctx->valuestring;
            size_t tl = strlen(text);
            char sha[65];
            llm_sha256_hex(text, tl, sha);
            idx_doc old;
            memset(&old, 0, sizeof old);
            bool same = idx_doc_get(s, uri, &old) == IDX_OK && strcmp(old.sha256, sha) == 0;
            doc_ids[n_para] = old.id;
            idx_doc_release(&old);
            if (!same) {
                rag_doc *doc = NULL;
                rag_extract_params xp = rag_extract_default_params();
                int nc = 0;
                if (rag_extract_memory(uri, text, tl, RAG_DOC_TXT, &xp, &doc, err, sizeof err) != RAG_OK ||
                    rag_ingester_put(ing, uri, doc, (int64_t)tl, 0, sha, &nc, err, sizeof err) != RAG_OK) {
                    rag_doc_free(doc);
                    app_error("eval-retrieval: %s: %s", uri, err);
                    goto done;
                }
                rag_doc_free(doc);
                n_chunks += (uint64_t)nc;
                added++;
                if (idx_doc_get(s, uri, &old) == IDX_OK) doc_ids[n_para] = old.id;
                idx_doc_release(&old);
                if (!json && tty && added % 20 == 0) fprintf(stderr, "\rembedded %d paragraphs", added);
            }
            const cJSON *qa;
            if (cJSON_IsArray(qas))
                cJSON_ArrayForEach(qa, qas) {
                    const cJSON *q = cJSON_GetObjectItemCaseSensitive(qa, "question");
                    if (!cJSON_IsString(q)) continue;
                    if (n_q == cap_q) {
                        cap_q = cap_q ? cap_q * 2 : 1024;
                        eval_q *nq = realloc(qs, (size_t)cap_q * sizeof *nq);
                        if (!nq) { app_error("eval-retrieval: out of memory"); goto done; }
                        qs = nq;
                    }
                    qs[n_q].question = q->valuestring;
                    qs[n_q].para = n_para;
                    n_q++;
                }
            n_para++;
            pi++;
        }
        if (limit && n_para >= limit) break;
    }
    if (!json && added) fprintf(stderr, "%sembedded %d paragraphs (%llu chunks) in %.1f s\n", tty ? "\r" : "", added,
                                (unsigned long long)n_chunks, now_s() - t0);
    /* paragraphs of an earlier run that are not in this set would compete */
    if (idx_doc_list(s, "squad://", &listed, &n_listed) != IDX_OK) { app_error("eval-retrieval: %s", idx_errmsg(s)); goto done; }
    for (size_t i = 0; i < n_listed; i++) {
        bool keep = false;
        for (int j = 0; j < n_para && !keep; j++) keep = strcmp(listed[i].uri, uris[j]) == 0;
        if (!keep && idx_doc_delete(s, listed[i].uri) != IDX_OK) { app_error("eval-retrieval: %s", idx_errmsg(s)); goto done; }
    }
    app_after_ingest(s, m, "eval-retrieval");
    if (idx_save(s) != IDX_OK) { app_error("eval-retrieval: %s", idx_errmsg(s)); goto done; }
    rag_ingester_free(ing);
    ing = NULL;

    rag_retriever_params rp = rag_retriever_default_params();
    rp.model = m;
    rp.layer = layer;
    rp.n_threads = threads;
    if (rag_retriever_new(s, &rp, &r, err, sizeof err) != RAG_OK) { app_error("eval-retrieval: %s", err); goto done; }
    eval_score sc[3];
    memset(sc, 0, sizeof sc);
    double tq[3] = {0, 0, 0};
    rag_hit hits[10];
    for (int qi = 0; qi < n_q; qi++) {
        for (int mode = 0; mode < 3; mode++) {
            int n = 0;
            double t = now_s();
            if (rag_retrieve(r, qs[qi].question, strlen(qs[qi].question), (rag_search_mode)mode, 10, NULL, hits, &n) != RAG_OK) {
                app_error("eval-retrieval: %s", rag_retriever_errmsg(r));
                goto done;
            }
            tq[mode] += now_s() - t;
            int rank = 0;
            for (int i = 0; i < n && !rank; i++) {
                idx_chunk c;
                memset(&c, 0, sizeof c);
                if (idx_chunk_get(s, hits[i].chunk_id, &c, NULL) != IDX_OK) { app_error("eval-retrieval: %s", idx_errmsg(s)); goto done; }
                if (c.doc_id == doc_ids[qs[qi].para]) rank = i + 1;
                idx_chunk_release(&c);
            }
            if (rank == 1) sc[mode].hits1++;
            if (rank && rank <= 5) sc[mode].hits5++;
            if (rank) { sc[mode].hits10++; sc[mode].rr += 1.0 / rank; }
        }
        if (!json && tty && (qi + 1) % 50 == 0) fprintf(stderr, "\r%d/%d questions", qi + 1, n_q);
    }
    if (!json && tty && n_q >= 50) fputc('\n', stderr);
    idx_counts cnt;
    memset(&cnt, 0, sizeof cnt);
    idx_get_counts(s, &cnt);
    double nq = n_q ? n_q : 1;
    if (json) {
        if (!(out = cJSON_CreateObject())) { app_error("eval-retrieval: out of memory"); goto done; }
        cJSON_AddStringToObject(out, "file", squad);
        cJSON_AddStringToObject(out, "model", mpath);
        cJSON_AddNumberToObject(out, "layer", layer);
        cJSON_AddNumberToObject(out, "paragraphs", n_para);
        cJSON_AddNumberToObject(out, "chunks", (double)cnt.chunks);
        cJSON_AddNumberToObject(out, "questions", n_q);
        rag_fusion fu = rag_retriever_fusion(r);
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
            cJSON *o = cJSON_AddObjectToObject(out, rag_search_mode_str((rag_search_mode)mode));
            if (!o) continue;
            cJSON_AddNumberToObject(o, "recall@1", sc[mode].hits1 / nq);
            cJSON_AddNumberToObject(o, "recall@5", sc[mode].hits5 / nq);
            cJSON_AddNumberToObject(o, "recall@10", sc[mode].hits10 / nq);
            cJSON_AddNumberToObject(o, "mrr@10", sc[mode].rr / nq);
            cJSON_AddNumberToObject(o, "ms_per_query", 1000 * tq[mode] / nq);
        }
        if (!n_sweep) {
            char *txt = cJSON_Print(out);
            if (!txt) { app_error("eval-retrieval: out of memory"); goto done; }
            puts(txt);
            free(txt);
        }
    } else {
        printf("%s: %d paragraphs (%lld chunks), %d questions; model %s, layer %d\n", squad, n_para,
               (long long)cnt.chunks, n_q, mpath, layer);
        printf("chance: recall@1 %.4f, recall@10 %.4f (one paragraph in %d)\n", n_para ? 1.0 / n_para : 0.0,
               n_para ? (n_para < 10 ? 1.0 : 10.0 / n_para) : 0.0, n_para);
        rag_fusion fu = rag_retriever_fusion(r);
        char fl[512];
        app_fusion_describe(&fu, fl, sizeof fl);
        printf("%s\n", fl);
        printf("%-8s %9s %9s %9s %9s %12s\n", "mode", "recall@1", "recall@5", "recall@10", "MRR@10", "ms/query");
        for (int mode = 0; mode < 3; mode++)
            printf("%-8s %9.4f %9.4f %9.4f %9.4f %12.2f\n", rag_search_mode_str((rag_search_mode)mode),
                   sc[mode].hits1 / nq, sc[mode].hits5 / nq, sc[mode].hits10 / nq, sc[mode].rr / nq, 1000 * tq[mode] / nq);
    }
    if (n_sweep && layer_sweep(s, m, r, threads, layer, sweep, n_sweep, qs, n_q, doc_ids, json ? out : NULL) != 0) goto done;
    if (json && n_sweep) {
        char *txt = cJSON_Print(out);
        if (txt) { puts(txt); free(txt); }
    }
    rc = 0;
done:
    cJSON_Delete(out);
    cJSON_Delete(root);
    free(data);
    idx_doc_list_free(listed, n_listed);
    for (int i = 0; i < n_para; i++) free(uris[i]);
    free(uris);
    free(doc_ids);
    free(qs);
    rag_retriever_free(r);
    rag_ingester_free(ing);
    idx_close(s);
    llm_model_free(m);
    return rc;
}
