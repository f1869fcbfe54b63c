/* squad.c — SQuAD-format question sets for the evaluation commands: the
 * file parsed into paragraphs, questions and gold answers, and the
 * paragraphs ingested as documents squad://TITLE/N (kept when unchanged,
 * those of other sets removed). */
#include "app/app.h"

#include "index/index.h"
#include "llm/llm.h"
#include "rag/rag.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SQUAD_MAX_FILE (512u << 20)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void app_squad_release(app_squad *sq) {
    for (int i = 0; i < sq->n_para; i++) free(sq->uris[i]);
    free(sq->uris);
    free(sq->texts);
    free(sq->doc_ids);
    for (int i = 0; i < sq->n_q; i++) free(sq->qs[i].answers);
    free(sq->qs);
    cJSON_Delete(sq->root);
    free(sq->data);
    memset(sq, 0, sizeof *sq);
}

/* Contract: see app.h. */
int app_squad_open(const char *file, long limit, const char *cmd, app_squad *sq) {
    memset(sq, 0, sizeof *sq);
    size_t len = 0;
    int cap_para = 0, cap_q = 0;
    if (!(sq->data = app_read_file(file, SQUAD_MAX_FILE, &len))) return app_error("%s: cannot read %s (missing or over 512 MB)", cmd, file);
    cJSON *root = cJSON_ParseWithLength(sq->data, len);
    sq->root = root;
    if (!root) { app_error("%s: %s is not valid JSON", cmd, file); goto fail; }
    const cJSON *articles = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (!cJSON_IsArray(articles)) { app_error("%s: %s has no \"data\" array (not SQuAD format)", cmd, file); goto fail; }
    const cJSON *art;
    cJSON_ArrayForEach(art, articles) {
        const cJSON *title = cJSON_GetObjectItemCaseSensitive(art, "title");
        const cJSON *paras = cJSON_GetObjectItemCaseSensitive(art, "paragraphs");
        if (!cJSON_IsArray(paras)) continue;
        int pi = 0;
        const cJSON *para;
        cJSON_ArrayForEach(para, paras) {
            if (limit && sq->n_para >= limit) break;
            const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(para, "context");
            const cJSON *qas = cJSON_GetObjectItemCaseSensitive(para, "qas");
            if (!cJSON_IsString(ctx)) { pi++; continue; }
            if (sq->n_para == cap_para) {
                cap_para = cap_para ? cap_para * 2 : 256;
                char **nu = realloc(sq->uris, (size_t)cap_para * sizeof *nu);
                if (nu) sq->uris = nu;
                const char **nt = nu ? realloc(sq->texts, (size_t)cap_para * sizeof *nt) : NULL;
                if (nt) sq->texts = nt;
                int64_t *nd = nt ? realloc(sq->doc_ids, (size_t)cap_para * sizeof *nd) : NULL;
                if (nd) sq->doc_ids = nd;
                if (!nd) { app_error("%s: out of memory", cmd); goto fail; }
            }
            char uri[1024];
            snprintf(uri, sizeof uri, "squad://%s/%d", cJSON_IsString(title) ? title->valuestring : "untitled", pi);
            if (!(sq->uris[sq->n_para] = strdup(uri))) { app_error("%s: out of memory", cmd); goto fail; }
            sq->texts[sq->n_para] = ctx->valuestring;
            sq->doc_ids[sq->n_para] = 0;
            const cJSON *qa;
            if (cJSON_IsArray(qas))
                cJSON_ArrayForEach(qa, qas) {
                    const cJSON *q = cJSON_GetObjectItemCaseSensitive(qa, "question");
                    const cJSON *id = cJSON_GetObjectItemCaseSensitive(qa, "id");
                    const cJSON *ans = cJSON_GetObjectItemCaseSensitive(qa, "answers");
                    if (!cJSON_IsString(q)) continue;
                    if (sq->n_q == cap_q) {
                        cap_q = cap_q ? cap_q * 2 : 1024;
                        app_squad_q *nq = realloc(sq->qs, (size_t)cap_q * sizeof *nq);
                        if (!nq) { app_error("%s: out of memory", cmd); goto fail; }
                        sq->qs = nq;
                    }
                    app_squad_q *e = &sq->qs[sq->n_q];
                    memset(e, 0, sizeof *e);
                    e->question = q->valuestring;
                    e->id = cJSON_IsString(id) ? id->valuestring : "";
                    e->para = sq->n_para;
                    int na = cJSON_IsArray(ans) ? cJSON_GetArraySize(ans) : 0;
                    if (na > 0 && !(e->answers = calloc((size_t)na, sizeof *e->answers))) { app_error("%s: out of memory", cmd); goto fail; }
                    const cJSON *a;
                    if (na > 0)
                        cJSON_ArrayForEach(a, ans) {
                            const cJSON *t = cJSON_GetObjectItemCaseSensitive(a, "text");
                            if (cJSON_IsString(t) && *t->valuestring) e->answers[e->n_answers++] = t->valuestring;
                        }
                    sq->n_q++;
                }
            sq->n_para++;
            pi++;
        }
        if (limit && sq->n_para >= limit) break;
    }
    return 0;
fail:
    app_squad_release(sq);
    return 1;
}

/* Contract: see app.h. */
int app_squad_ingest(app_squad *sq, idx_store *s, llm_model *m, int layer, int threads, bool quiet, const char *cmd) {
    int rc = 1;
    char err[1024];
    rag_ingester *ing = NULL;
    idx_doc *listed = NULL;
    size_t n_listed = 0;
    bool tty = !quiet && isatty(STDERR_FILENO);
    rag_ingest_params gp = rag_ingest_default_params();
    gp.model = m;
    gp.layer = layer;
    gp.n_threads = threads;
    gp.reindex = true;      /* an eval index is ours: a new model rebuilds it */
    if (rag_ingester_new(s, &gp, &ing, err, sizeof err) != RAG_OK) { app_error("%s: %s", cmd, err); goto done; }
    double t0 = now_s();
    int added = 0;
    uint64_t n_chunks = 0;
    for (int i = 0; i < sq->n_para; i++) {
        const char *uri = sq->uris[i], *text = sq->texts[i];
        size_t tl = strlen(text);
        char sha[65];
        llm_sha256_hex(text, tl, sha);
        idx_doc old;
        memset(&old, 0, sizeof old);
        bool same = idx_doc_get(s, uri, &old) == IDX_OK && strcmp(old.sha256, sha) == 0;
        sq->doc_ids[i] = old.id;
        idx_doc_release(&old);
        if (same) continue;
        rag_doc *doc = NULL;
        rag_extract_params xp = rag_extract_default_params();
        int nc = 0;
        if (rag_extract_memory(uri, text, tl, RAG_DOC_TXT, &xp, &doc, err, sizeof err) != RAG_OK ||
            rag_ingester_put(ing, uri, doc, (int64_t)tl, 0, sha, &nc, err, sizeof err) != RAG_OK) {
            rag_doc_free(doc);
            app_error("%s: %s: %s", cmd, uri, err);
            goto done;
        }
        rag_doc_free(doc);
        n_chunks += (uint64_t)nc;
        added++;
        if (idx_doc_get(s, uri, &old) == IDX_OK) sq->doc_ids[i] = old.id;
        idx_doc_release(&old);
        if (tty && added % 20 == 0) fprintf(stderr, "\rembedded %d paragraphs", added);
    }
    if (!quiet && added)
        fprintf(stderr, "%sembedded %d paragraph%s (%llu chunk%s) in %.1f s\n", tty ? "\r" : "", added,
                added == 1 ? "" : "s", (unsigned long long)n_chunks, n_chunks == 1 ? "" : "s", now_s() - t0);
    /* paragraphs of an earlier run that are not in this set would compete */
    if (idx_doc_list(s, "squad://", &listed, &n_listed) != IDX_OK) { app_error("%s: %s", cmd, idx_errmsg(s)); goto done; }
    for (size_t i = 0; i < n_listed; i++) {
        bool keep = false;
        for (int j = 0; j < sq->n_para && !keep; j++) keep = strcmp(listed[i].uri, sq->uris[j]) == 0;
        if (!keep && idx_doc_delete(s, listed[i].uri) != IDX_OK) { app_error("%s: %s", cmd, idx_errmsg(s)); goto done; }
    }
    rag_ingester_free(ing);
    ing = NULL;
    app_after_ingest(s, m, cmd);
    if (idx_save(s) != IDX_OK) { app_error("%s: %s", cmd, idx_errmsg(s)); goto done; }
    rc = 0;
done:
    idx_doc_list_free(listed, n_listed);
    rag_ingester_free(ing);
    return rc;
}
