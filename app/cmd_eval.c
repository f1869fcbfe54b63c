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
    "  --threads N     engine threads (default: all cores)\n"
    "  --json          print the figures as JSON\n";

#define EVAL_MAX_FILE (512u << 20)

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
        char *txt = cJSON_Print(out);
        if (!txt) { app_error("eval-retrieval: out of memory"); goto done; }
        puts(txt);
        free(txt);
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
