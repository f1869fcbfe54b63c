/* cmd_tune.c — `mrag tune`: re-analyses the text index (languages, compound
 * word list, FTS rebuild) and learns the fusion weights and the relevance
 * gate's similarity from pseudo-queries or a labelled SQuAD-format file. */
#define _GNU_SOURCE /* memmem */
#include "app/app.h"

#include "index/index.h"
#include "llm/llm.h"
#include "rag/rag.h"

#include <cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *tune_usage =
    "usage: mrag tune [options]\n"
    "\n"
    "Re-analyses the text index (language of every chunk, the compound word\n"
    "list, then a rebuild of the FTS table; vectors are untouched) and, with\n"
    "the model the index was built with, learns how far each ranking can be\n"
    "trusted: the weights of hybrid fusion and the similarity from which the\n"
    "relevance gate trusts the dense side. `mrag ingest` does this by itself\n"
    "when the index has doubled; run it after big changes or with your own\n"
    "labelled questions.\n"
    "\n"
    "  --index DIR        index folder (default $MRAG_INDEX, else ./.mrag)\n"
    "  -m FILE            the model (default $MRAG_MODEL, else the one ingest recorded)\n"
    "  --squad FILE       learn from labelled questions (SQuAD format): a\n"
    "                     question's answer is the document squad://TITLE/N\n"
    "                     (as eval-retrieval stores them) or, for your own\n"
    "                     documents, every chunk holding the answer text\n"
    "  --queries N        pseudo-queries made from public chunks (default 200)\n"
    "  --layer auto       also compare embedding layers (a quarter, half and three\n"
    "                     quarters of the model's layers, the final norm, and the\n"
    "                     index's own) on pseudo-queries in one pass, and re-embed\n"
    "                     every chunk at the best when it beats the index's layer\n"
    "  --candidates LIST  the layers --layer auto compares, e.g. 8,16,24,final\n"
    "  --compounds MODE   corpus | dict | both | off (default: as recorded, both)\n"
    "  --dict FILE        hunspell word list (default /usr/share/hunspell/de_DE.dic)\n"
    "  --threads N        engine threads (default: all cores)\n"
    "  --llm-url BASE --llm-embeddings\n"
    "                     embed the queries through an OpenAI-compatible server's\n"
    "                     BASE/embeddings (the index's model, as `ask --llm-embeddings`\n"
    "                     checks) instead of a local model: for an index built with\n"
    "                     `ingest --llm-url`\n"
    "  --llm-key-file F   the server's API key (first line of F)\n"
    "  --llm-model NAME   the model to ask for (default: the first it lists)\n";

#define TUNE_MAX_FILE (512u << 20)

typedef struct {
    rag_tune_label *l;
    size_t n, cap;
    int64_t *ids;
    size_t nids, capids;
} labels;

static int add_rel(labels *L, int64_t id) {
    if (L->nids == L->capids) {
        size_t nc = L->capids ? L->capids * 2 : 1024;
        int64_t *p = realloc(L->ids, nc * sizeof *p);
        if (!p) return -1;
        L->ids = p;
        L->capids = nc;
    }
    L->ids[L->nids++] = id;
    return 0;
}

/* Labels from a SQuAD file: rel ids are offsets into L->ids until fixed up. */
static int load_labels(idx_store *s, const char *path, labels *L, cJSON **root) {
    size_t len = 0;
    char *data = app_read_file(path, TUNE_MAX_FILE, &len);
    if (!data) return app_error("tune: cannot read %s", path), -1;
    *root = cJSON_ParseWithLength(data, len);
    free(data);
    cJSON *arts = *root ? cJSON_GetObjectItem(*root, "data") : NULL;
    if (!cJSON_IsArray(arts)) return app_error("tune: %s is not a SQuAD file (no \"data\" array)", path), -1;
    int64_t *all = NULL;
    size_t nall = 0;
    if (idx_chunk_ids(s, false, &all, &nall) != IDX_OK) return app_error("tune: %s", idx_errmsg(s)), -1;
    cJSON *a;
    cJSON_ArrayForEach(a, arts) {
        const char *title = cJSON_GetStringValue(cJSON_GetObjectItem(a, "title"));
        cJSON *paras = cJSON_GetObjectItem(a, "paragraphs"), *p;
        int pi = 0;
        cJSON_ArrayForEach(p, paras) {
            char uri[1200];
            snprintf(uri, sizeof uri, "squad://%s/%d", title ? title : "", pi++);
            idx_doc d;
            int64_t doc_id = 0;
            if (idx_doc_get(s, uri, &d) == IDX_OK) { doc_id = d.id; idx_doc_release(&d); }
            cJSON *q;
            cJSON_ArrayForEach(q, cJSON_GetObjectItem(p, "qas")) {
                const char *qt = cJSON_GetStringValue(cJSON_GetObjectItem(q, "question"));
                cJSON *ans = cJSON_GetArrayItem(cJSON_GetObjectItem(q, "answers"), 0);
                const char *at = ans ? cJSON_GetStringValue(cJSON_GetObjectItem(ans, "text")) : NULL;
                if (!qt) continue;
                size_t first = L->nids;
                for (size_t i = 0; i < nall; i++) {
                    idx_chunk c;
                    if (idx_chunk_get(s, all[i], &c, NULL) != IDX_OK) continue;
                    bool rel = doc_id ? c.doc_id == doc_id : (at && *at && memmem(c.text, c.text_len, at, strlen(at)));
                    idx_chunk_release(&c);
                    if (rel && add_rel(L, all[i])) { free(all); return app_error("tune: out of memory"), -1; }
                }
                if (L->nids == first) continue;
                if (L->n == L->cap) {
                    size_t nc = L->cap ? L->cap * 2 : 256;
                    rag_tune_label *np = realloc(L->l, nc * sizeof *np);
                    if (!np) { free(all); return app_error("tune: out of memory"), -1; }
                    L->l = np;
                    L->cap = nc;
                }
                L->l[L->n].question = qt;
                L->l[L->n].rel = (const int64_t *)(uintptr_t)first;
                L->l[L->n].n_rel = L->nids - first;
                L->n++;
            }
        }
    }
    free(all);
    for (size_t i = 0; i < L->n; i++) L->l[i].rel = L->ids + (uintptr_t)L->l[i].rel;
    return 0;
}

enum { O_INDEX = 256, O_SQUAD, O_COMPOUNDS, O_DICT, O_LAYER, O_CANDIDATES, O_QUERIES, O_THREADS };
static const app_opt tune_opts[] = {
    {"index", 0, "DIR", O_INDEX},
    {"model", 'm', "FILE", 'm'},
    {"squad", 0, "FILE", O_SQUAD},
    {"compounds", 0, "FILE", O_COMPOUNDS},
    {"dict", 0, "FILE", O_DICT},
    {"layer", 0, "auto", O_LAYER},
    {"candidates", 0, "L,L,...", O_CANDIDATES},
    {"queries", 0, "N", O_QUERIES},
    {"threads", 0, "N", O_THREADS},
    {0},
};
const app_opt *const app_tune_opts[] = {tune_opts, app_remote_opts, NULL};

int app_cmd_tune(int argc, char **argv) {
    if (app_wants_help(argc, argv)) { fputs(tune_usage, stdout); return 0; }
    const char *index_flag = NULL, *mflag = NULL, *squad = NULL, *compounds = NULL, *dict = NULL;
    int queries = 200, threads = 0;
    bool layer_auto = false, remote = false;
    int cand[RAG_MAX_LAYERS], n_cand = 0;
    rag_remote_params rmp = rag_remote_default_params();
    app_args ap;
    app_args_init(&ap, "tune", app_tune_opts, argc, argv);
    const char *val;
    int id;
    while ((id = app_args_next(&ap, &val)) > 0) {
        switch (id) {
        case O_INDEX: index_flag = val; break;
        case 'm': mflag = val; break;
        case O_SQUAD: squad = val; break;
        case O_COMPOUNDS: compounds = val; break;
        case O_DICT: dict = val; break;
        case O_LAYER:
            if (app_opt_choice(&ap, val) < 0) return 2;
            layer_auto = true;
            break;
        case O_CANDIDATES: {
            char buf[512], *save = NULL;
            snprintf(buf, sizeof buf, "%s", val);
            for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                int v = -1;
                if (n_cand == RAG_MAX_LAYERS - 1 || (strcmp(t, "final") && !app_parse_int(t, -1, 100000, &v)))
                    return app_usage_error(&ap, "--candidates: '%s' is not a layer number or 'final' (or too many)", t);
                cand[n_cand++] = v;
            }
            layer_auto = true;
            break;
        }
        case O_QUERIES:
            if (!app_opt_int(&ap, val, 10, 100000, &queries)) return 2;
            break;
        case O_THREADS:
            if (!app_opt_int(&ap, val, 0, 512, &threads)) return 2;
            break;
        default:
            if (app_remote_apply_opt(&ap, id, val, &rmp, &remote, NULL) < 0) return 2;
            break;
        }
    }
    if (id < 0) return 2;
    if (ap.npos > 0) return app_usage_error(&ap, "unexpected argument '%s'", argv[1]);
    if (remote && !rmp.base_url) return app_usage_error(&ap, "--llm-embeddings needs --llm-url BASE");
    if (rmp.base_url && !remote)
        return app_usage_error(&ap, "--llm-url needs --llm-embeddings (tune only embeds queries)");
    if (remote && layer_auto) return app_usage_error(&ap, "--layer needs a local model (a server embeds the final layer)");
    int rc = 1;
    char err[1024];
    rag_remote *remote_srv = NULL;
    rag_engine *remote_eng = NULL;
    rag_retriever_params rp = rag_retriever_default_params();
    idx_store *s = NULL;
    llm_model *m = NULL;
    rag_retriever *r = NULL;
    char *recorded = NULL;
    cJSON *root = NULL;
    labels L = {0};
    const char *index_dir = app_index_path(index_flag);
    idx_params ip = idx_default_params();
    if (idx_open(index_dir, &ip, &s) != IDX_OK) { app_error("tune: %s", s ? idx_errmsg(s) : "out of memory"); goto done; }
    idx_fts_params fp = {.force = true, .compounds = compounds, .dict_path = dict};
    bool rebuilt = false;
    if (idx_fts_retune(s, &fp, &rebuilt) != IDX_OK) { app_error("tune: %s", idx_errmsg(s)); goto done; }
    idx_fts_info fi;
    if (idx_fts_info_get(s, &fi) == IDX_OK) {
        printf("text index: default language %s, query languages", idx_lang_code(fi.default_lang));
        for (int l = 1; l < IDX_LANG_COUNT; l++)
            if (fi.lang_mask & (1u << l)) printf(" %s", idx_lang_code(l));
        printf("; %lld chunks (", (long long)fi.chunks_analyzed);
        bool first = true;
        for (int l = 1; l < IDX_LANG_COUNT; l++)
            if (fi.lang_chunks[l]) { printf("%s%s %lld", first ? "" : ", ", idx_lang_code(l), (long long)fi.lang_chunks[l]); first = false; }
        printf("%s); compounds %s, %lld words\n", first ? "none recognised" : "", fi.compounds, (long long)fi.vocab_words);
        char syn[1200];
        app_synonyms_describe(s, syn, sizeof syn);
        printf("%s\n", syn);
    }
    rp.n_threads = threads;
    if (remote) {
        /* the queries go to the server; the index's vectors stay as they are */
        app_warn_if_readable(rmp.key_file, "the key file ");
        if (app_remote_embedder(&rmp, s, &rp, &remote_srv, &remote_eng, err, sizeof err)) {
            app_error("tune: remote embeddings: %s", err);
            goto done;
        }
        goto learn;
    }
    const char *mpath = app_model_path(mflag);
    if (!mpath && (recorded = app_recorded_model(s))) mpath = recorded;
    if (!mpath) {
        printf("no model (-m FILE or MRAG_MODEL): fusion weights not learned; hybrid search needs the model anyway\n");
        rc = 0;
        goto done;
    }
    llm_model_params mp = llm_model_default_params();
    if (llm_model_load(mpath, &mp, &m, err, sizeof err) != LLM_OK) { app_error("tune: %s", err); goto done; }
    if (layer_auto) {
        idx_fingerprint fp;
        if (idx_fingerprint_get(s, &fp) != IDX_OK) { app_error("tune: --layer auto: the index has no embeddings yet"); goto done; }
        /* the model must be the index's before its vectors are replaced */
        rag_retriever_params cp = rag_retriever_default_params();
        cp.model = m;
        cp.n_threads = threads;
        if (rag_retriever_new(s, &cp, &r, err, sizeof err) != RAG_OK) { app_error("tune: %s", err); goto done; }
        rag_retriever_free(r);
        r = NULL;
        app_choose_layer(s, m, threads, n_cand ? cand : NULL, n_cand, "tune");
    }
    rp.model = m;
learn:
    if (rag_retriever_new(s, &rp, &r, err, sizeof err) != RAG_OK) { app_error("tune: %s", err); goto done; }
    rag_tune_params tp = {.max_queries = queries};
    if (squad) {
        if (load_labels(s, squad, &L, &root)) goto done;
        if (!L.n) { app_error("tune: no question of %s has its answer in this index", squad); goto done; }
        tp.labelled = L.l;
        tp.n_labelled = L.n;
    }
    rag_fusion f;
    int trc = rag_tune(r, s, &tp, &f, err, sizeof err);
    if (trc != RAG_OK) { app_error("tune: %s", err); goto done; }
    char line[512];
    app_fusion_describe(&f, line, sizeof line);
    printf("%s\n", line);
    rc = 0;
done:
    cJSON_Delete(root);
    free(L.l);
    free(L.ids);
    free(recorded);
    rag_retriever_free(r);
    rag_engine_free(remote_eng);
    rag_remote_free(remote_srv);
    idx_close(s);
    llm_model_free(m);
    return rc;
}
