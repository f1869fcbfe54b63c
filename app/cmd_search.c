/* cmd_search.c — `mrag search`: ranked passages with scores, citations
 * (path:first-last or path#page=N) and snippets, or a JSON array. */
#include "app/app.h"

#include "index/index.h"
#include "llm/llm.h"
#include "rag/rag.h"

#include <cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *search_usage =
    "usage: mrag search [options] QUERY...\n"
    "\n"
    "Prints the passages of the index that best match QUERY, best first, with\n"
    "their score, citation (path:firstline-lastline, or path#page=N for PDF),\n"
    "heading path and a snippet.\n"
    "\n"
    "  --index DIR     index folder (default $MRAG_INDEX, else ./.mrag); repeat to\n"
    "                  search several at once (their rankings merged by rank\n"
    "                  fusion; each hit names its index: NAME=DIR names it NAME)\n"
    "  -m FILE         the model the index was built with (default $MRAG_MODEL,\n"
    "                  else the model file recorded by `mrag ingest`)\n"
    "  --lora FILE[:S]  the LoRA adapters the index was built with (repeatable)\n"
    "  -k N            number of passages (default 5)\n"
    "  --mode M        dense | bm25 | hybrid (default hybrid; bm25 when no model\n"
    "                  is available). bm25 needs no model.\n"
    "  --json          print a JSON array of {rank, score, chunk_id, path,\n"
    "                  citation, line_start, line_end, page, heading, text}\n"
    "  --threads N     engine threads (default: all cores)\n"
    "  --groups G,H    search as a caller in these access groups: documents with\n"
    "                  groups are seen only when they share one; '' or public =\n"
    "                  public documents only (default: everything, the index owner)\n";

/* Prints at most max bytes of text on one line (whitespace runs become one
 * space), cut at a UTF-8 character boundary, with "..." when cut. */
static void print_snippet(const char *t, size_t len, size_t max) {
    size_t out = 0;
    bool space = false;
    fputs("   ", stdout);
    size_t i = 0;
    while (i < len && (t[i] == ' ' || t[i] == '\n' || t[i] == '\t' || t[i] == '\r')) i++;
    for (; i < len; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r') { space = true; continue; }
        if (out >= max && (ch & 0xC0) != 0x80) { fputs(" ...", stdout); break; }
        if (space) { putchar(' '); out++; space = false; }
        putchar(ch);
        out++;
    }
    putchar('\n');
}

/* Contract: prints the hits of one query; 0 ok (also with no hits), 1 on
 * index/model errors, 2 on usage errors. */
/* One hit as a JSON object (NULL on OOM). */
static cJSON *hit_json(int rank, const rag_hit *h, const idx_chunk *c, const idx_doc *d, const char *cite,
                       const char *index) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "rank", rank);
    if (index) cJSON_AddStringToObject(o, "index", index);
    cJSON_AddNumberToObject(o, "score", h->score);
    cJSON_AddNumberToObject(o, "chunk_id", (double)h->chunk_id);
    cJSON_AddStringToObject(o, "path", app_display_path(d->uri));
    cJSON_AddStringToObject(o, "citation", cite);
    cJSON_AddNumberToObject(o, "line_start", c->line_start);
    cJSON_AddNumberToObject(o, "line_end", c->line_end);
    cJSON_AddNumberToObject(o, "page", c->page);
    cJSON_AddStringToObject(o, "heading", c->heading ? c->heading : "");
    cJSON_AddStringToObject(o, "title", d->title ? d->title : "");
    /* cJSON takes NUL-terminated text; chunk text holds no NUL */
    cJSON_AddStringToObject(o, "text", c->text ? c->text : "");
    cJSON_AddNumberToObject(o, "dense_rank", h->dense_rank);
    cJSON_AddNumberToObject(o, "bm25_rank", h->bm25_rank);
    return o;
}

/* One hit as lines for the terminal. */
static void hit_text(int rank, const rag_hit *h, const idx_chunk *c, const char *cite, rag_search_mode mode,
                     const char *index) {
    printf("%d. ", rank);
    if (index) printf("[%s] ", app_esc(index));
    printf("%s  score %.4f", app_esc(cite), (double)h->score);
    if (mode == RAG_SEARCH_HYBRID) {
        printf(" (dense ");
        if (h->dense_rank) printf("#%d", h->dense_rank); else printf("-");
        printf(", bm25 ");
        if (h->bm25_rank) printf("#%d", h->bm25_rank); else printf("-");
        printf(")");
    }
    putchar('\n');
    if (c->heading && *c->heading) printf("   [%s]\n", app_esc(c->heading));
    print_snippet(c->text ? c->text : "", c->text_len, 200);
}

/* Prints the n hits (a JSON array, or lines) of the indexes ss (names:
 * their labels, NULL with one index); 0, or 1 with the problem printed. */
static int print_hits(idx_store *const *ss, const char *const *names, const rag_hit *hits, int n, rag_search_mode mode,
                      bool json) {
    cJSON *arr = NULL;
    if (json && !(arr = cJSON_CreateArray())) return app_error("search: out of memory");
    if (!json && n == 0) printf("no matches (%s)\n", rag_search_mode_str(mode));
    for (int i = 0; i < n; i++) {
        idx_chunk c;
        idx_doc d;
        memset(&c, 0, sizeof c);
        memset(&d, 0, sizeof d);
        idx_store *s = ss[hits[i].part];
        const char *index = names ? names[hits[i].part] : NULL;
        if (idx_chunk_get(s, hits[i].chunk_id, &c, &d) != IDX_OK) {
            cJSON_Delete(arr);
            return app_error("search: %s", idx_errmsg(s));
        }
        char cite[4200];
        app_citation(d.uri, d.type, c.line_start, c.line_end, c.page, cite, sizeof cite);
        if (json) {
            cJSON *o = hit_json(i + 1, &hits[i], &c, &d, cite, index);
            if (o) cJSON_AddItemToArray(arr, o);
        } else {
            hit_text(i + 1, &hits[i], &c, cite, mode, index);
        }
        idx_chunk_release(&c);
        idx_doc_release(&d);
    }
    if (json) {
        char *out = cJSON_Print(arr);
        cJSON_Delete(arr);
        if (!out) return app_error("search: out of memory");
        puts(out);
        free(out);
    }
    return 0;
}

enum { O_INDEX = 256, O_JSON, O_GROUPS, O_THREADS, O_MODE, O_LORA };
static const app_opt search_opts[] = {
    {"index", 0, "DIR", O_INDEX},
    {"model", 'm', "FILE", 'm'},
    {NULL, 'k', "N", 'k'},
    {"mode", 0, "dense|bm25|hybrid", O_MODE},
    {"json", 0, NULL, O_JSON},
    {"threads", 0, "N", O_THREADS},
    {"groups", 0, "G,H", O_GROUPS},
    {"lora", 0, "FILE[:SCALE]", O_LORA},
    {0},
};
const app_opt *const app_search_opts[] = {search_opts, NULL};

int app_cmd_search(int argc, char **argv) {
    if (app_wants_help(argc, argv)) {
        fputs(search_usage, stdout);
        return 0;
    }
    int rc = 1;
    const char *index_flags[APP_MAX_INDEXES], *mflag = NULL, *groups = NULL;
    size_t n_index = 0;
    app_index_set xs = {0};
    idx_filter filter = {0};
    int mode = -1, threads = 0, k = 5;
    bool json = false;
    char *query = NULL, *recorded = NULL;
    llm_model *m = NULL;
    idx_store *s = NULL;
    rag_retriever *rets[APP_MAX_INDEXES] = {0};
    rag_hit *hits = NULL;
    app_lora_opts lora = {0};
    app_args ap;
    app_args_init(&ap, "search", app_search_opts, argc, argv);
    const char *val;
    int id;
    while ((id = app_args_next(&ap, &val)) > 0) {
        bool ok = true;
        switch (id) {
        case O_INDEX:
            if (n_index >= APP_MAX_INDEXES) ok = app_opt_bad(&ap, val, "at most 32 --index");
            else index_flags[n_index++] = val;
            break;
        case 'm': mflag = val; break;
        case O_JSON: json = true; break;
        case O_GROUPS: groups = val; break;
        case O_LORA: ok = app_lora_add(&lora, "search", (char *)val) == 0; break;
        case 'k': ok = app_opt_int(&ap, val, 1, 1000, &k); break;
        case O_THREADS: ok = app_opt_int(&ap, val, 1, 256, &threads); break;
        case O_MODE:
            if ((ok = app_opt_choice(&ap, val) >= 0)) mode = rag_search_mode_parse(val);
            break;
        }
        if (!ok) return 2;
    }
    if (id < 0) return 2;
    if (ap.npos == 0) return app_usage_error(&ap, "no QUERY");
    int first = 1;
    argc = ap.npos + 1;
    bool all = !groups || strcmp(groups, "*") == 0;
    if (!all && rag_groups_parse(groups, &filter) != RAG_OK) {
        app_error("search: bad --groups '%s' (comma-separated names of letters, digits, _ - . @ :)", groups);
        return 2;
    }
    if (!(query = app_join_args(argc - first, argv + first))) { app_error("search: out of memory"); goto done; }
    size_t qlen = strlen(query);

    if (app_index_set_open(&xs, index_flags, n_index, "search") != 0) goto done;
    s = xs.stores[0];
    for (size_t i = 0; i < xs.n; i++)
        if (idx_notice(xs.stores[i]) && !json) fprintf(stderr, "mrag: %s\n", idx_notice(xs.stores[i]));

    rag_retriever_params rp = rag_retriever_default_params();
    rp.n_threads = threads;
    idx_fingerprint fp;
    bool have_fp = idx_fingerprint_get(s, &fp) == IDX_OK;
    if (have_fp) rp.layer = fp.layer;     /* embed the query as the chunks were */
    const char *mpath = app_model_path(mflag);
    if (!mpath && mode != RAG_SEARCH_BM25 && (recorded = app_recorded_model(s))) mpath = recorded;
    if (mode < 0) mode = mpath ? RAG_SEARCH_HYBRID : RAG_SEARCH_BM25;
    if (!mpath && mode != RAG_SEARCH_BM25) {
        app_error("search: --mode %s needs the model the index was built with (-m FILE or MRAG_MODEL); "
                  "--mode bm25 works without one", rag_search_mode_str((rag_search_mode)mode));
        goto done;
    }
    char err[1024];
    if (mode != RAG_SEARCH_BM25) {
        llm_model_params mp = llm_model_default_params();
        app_lora_model_params(&lora, &mp);
        if (llm_model_load(mpath, &mp, &m, err, sizeof err) != LLM_OK) { app_error("search: %s", err); goto done; }
        rp.model = m;
    }
    for (size_t i = 0; i < xs.n; i++)
        if (rag_retriever_new(xs.stores[i], &rp, &rets[i], err, sizeof err) != RAG_OK) {
            if (xs.n > 1) app_error("search: index %s: %s", xs.names[i], err);
            else app_error("search: %s", err);
            goto done;
        }
    if (!(hits = calloc((size_t)k, sizeof *hits))) { app_error("search: out of memory"); goto done; }
    int n = 0;
    if (rag_retrieve_multi(rets, xs.n, query, qlen, (rag_search_mode)mode, k, all ? NULL : &filter, hits, &n) != RAG_OK) {
        app_error("search: %s", rag_retriever_errmsg(rets[0]));
        goto done;
    }
    if (print_hits(xs.stores, xs.n > 1 ? (const char *const *)xs.names : NULL, hits, n, (rag_search_mode)mode, json) != 0)
        goto done;
    rc = 0;
done:
    free(hits);
    for (size_t i = 0; i < APP_MAX_INDEXES; i++) rag_retriever_free(rets[i]);
    app_index_set_close(&xs);
    llm_model_free(m);
    free(recorded);
    free(query);
    rag_groups_free(&filter);
    return rc;
}
