/* test_rag_ingest.c — the ingestion pipeline (rag/ingest.c) end to end on
 * real SQLite + FAISS files with a small mkmodel model: search finds the
 * right line span, edits replace chunks exactly, deletes and renames leave
 * no ghosts in SQLite, FTS5 or FAISS, bad files are skipped with reasons,
 * fingerprint mismatches are errors. */
#include "tests/test.h"

#include "index/index.h"
#include "llm/llm.h"
#include "rag/rag.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char model_a[512], model_b[512];

/* Writes a random-weight model with mkmodel (real Mistral vocab when the
 * shared file exists, else a generated one); SKIPs when mkmodel is absent. */
static const char *make_model(char *out, size_t n, int dim, int seed) {
    if (out[0]) return out;
    snprintf(out, n, "%s/m%d.gguf", test_tmpdir(), seed);
    char args[200];
    snprintf(args, sizeof args, "--dim %d --layers 1 --heads 4 --kv-heads 1 --ff %d --seed %d", dim, dim * 2, seed);
    test_mkmodel(out, args);
    return out;
}

static llm_model *load_model(const char *path) {
    llm_model *m = NULL;
    char err[512];
    llm_model_params mp = llm_model_default_params();
    int rc = llm_model_load(path, &mp, &m, err, sizeof err);
    REQUIRE(rc == LLM_OK, "%s", err);
    return m;
}

/* A copy of data/sample in a fresh folder; returns the folder. */
static const char *copy_sample(char *buf, size_t n) {
    struct stat st;
    if (stat("data/sample", &st) != 0) SKIP("data/sample is missing");
    snprintf(buf, n, "%s/corpus", test_tmpdir());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp -r data/sample %s", test_shq(buf));
    REQUIRE(system(cmd) == 0);
    return buf;
}

/* Event log of one run, for checking outcomes and reasons. */
typedef struct {
    char path[64][512];
    char reason[64][512];
    rag_ingest_outcome o[64];
    int n;
} evlog;

static void on_event(void *user, const rag_ingest_event *ev) {
    evlog *l = user;
    if (ev->kind != RAG_ING_EV_FILE_DONE || l->n >= 64) return;
    snprintf(l->path[l->n], sizeof l->path[0], "%s", ev->path);
    snprintf(l->reason[l->n], sizeof l->reason[0], "%s", ev->reason ? ev->reason : "");
    l->o[l->n++] = ev->outcome;
}

static int find_event(const evlog *l, const char *suffix) {
    for (int i = 0; i < l->n; i++) {
        size_t a = strlen(l->path[i]), b = strlen(suffix);
        if (a >= b && strcmp(l->path[i] + a - b, suffix) == 0) return i;
    }
    return -1;
}

static int run_ingest(idx_store *s, llm_model *m, const char *dir, rag_ingest_stats *st, evlog *log) {
    rag_ingest_params p = rag_ingest_default_params();
    p.model = m;
    p.n_threads = 1;
    p.save_every = 5;
    p.max_file_bytes = 1 << 20;
    if (log) { memset(log, 0, sizeof *log); p.progress = on_event; p.user = log; }
    char err[1024] = "";
    int rc = rag_ingest_dir(s, dir, &p, st, err, sizeof err);
    if (rc != RAG_OK) printf("  # ingest: %s\n", err);
    return rc;
}

/* The URI of chunk id (owned, free()). */
static char *chunk_uri(idx_store *s, int64_t id, idx_chunk *out) {
    idx_chunk c;
    idx_doc d;
    memset(&c, 0, sizeof c);
    memset(&d, 0, sizeof d);
    if (idx_chunk_get(s, id, &c, &d) != IDX_OK) return NULL;
    char *u = strdup(d.uri);
    if (out) *out = c;
    else idx_chunk_release(&c);
    idx_doc_release(&d);
    return u;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* 1-based line of the first occurrence of needle in a file, 0 when absent. */
static int line_of(const char *path, const char *needle) {
    char *t = test_read_file(path, NULL);
    if (!t) return 0;
    char *p = strstr(t, needle);
    int line = 0;
    if (p) {
        line = 1;
        for (char *q = t; q < p; q++) line += *q == '\n';
    }
    free(t);
    return line;
}

/* Every store count agrees: chunks == vectors == FTS rows == FAISS ids, the
 * FAISS ids are exactly the vector ids and the chunk ids, and every FTS5
 * match of `word` (if given) is a live chunk. */
static void check_no_ghosts(idx_store *s, const char *dir) {
    idx_counts c;
    REQUIRE(idx_get_counts(s, &c) == IDX_OK, "%s", idx_errmsg(s));
    CHECK_EQ_INT(c.vectors, c.chunks);
    CHECK_EQ_INT(c.fts_rows, c.chunks);
    CHECK_EQ_INT(c.faiss_ntotal, c.chunks);
    int64_t *fa = NULL, *va = NULL;
    size_t nf = 0, nv = 0;
    REQUIRE(idx_debug_faiss_ids(s, &fa, &nf) == IDX_OK);
    REQUIRE(idx_debug_vector_ids(s, &va, &nv) == IDX_OK);
    CHECK_EQ_INT(nf, nv);
    for (size_t i = 0; i < nf && i < nv; i++) CHECK(fa[i] == va[i], "faiss id %lld vs vector id %lld", (long long)fa[i], (long long)va[i]);
    free(fa);
    free(va);
    CHECK(idx_check(s) == IDX_OK, "%s", idx_errmsg(s));
    /* straight from the file: chunks without a document, vectors without a chunk */
    char db[600];
    snprintf(db, sizeof db, "%s/mrag.sqlite", dir);
    sqlite3 *h = NULL;
    REQUIRE(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    const char *q = "SELECT (SELECT count(*) FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)),"
                    " (SELECT count(*) FROM vectors WHERE chunk_id NOT IN (SELECT id FROM chunks))";
    REQUIRE(sqlite3_prepare_v2(h, q, -1, &st, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(h));
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_INT(sqlite3_column_int64(st, 0), 0);
    CHECK_EQ_INT(sqlite3_column_int64(st, 1), 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
}

/* FTS5 rowids matching word that are not live chunks (ghosts in FTS5), and
 * live matches, straight from the SQLite file. */
static int first_term_cb(void *user, const char *t, size_t n, int start, int end, bool colocated) {
    (void)start; (void)end; (void)colocated;
    snprintf(user, 128, "%.*s", (int)n, t);
    return 1;   /* the first term is enough */
}

/* The term the index stores for an English word (its stem). */
static void index_term(const char *word, char out[128]) {
    idx_analyzer *z = NULL;
    out[0] = 0;
    REQUIRE(idx_analyzer_new(NULL, &z) == IDX_OK);
    idx_analyze(z, word, strlen(word), IDX_LANG_EN, first_term_cb, out);
    idx_analyzer_free(z);
}

/* Through the store's connection: the FTS table's "mrag" tokenizer is
 * registered only there. */
static void fts_matches(idx_store *s, const char *plain_word, int *live, int *ghost) {
    char word[128];
    index_term(plain_word, word);
    REQUIRE(*word);
    sqlite3 *h = idx_debug_db(s);
    *live = *ghost = 0;
    sqlite3_stmt *st = NULL;
    /* the FTS5 index itself (not the content table): which rowids hold the term */
    REQUIRE(sqlite3_prepare_v2(h, "SELECT DISTINCT doc FROM chunks_fts_instance WHERE term = ?1", -1, &st, NULL) == SQLITE_OK,
            "%s", sqlite3_errmsg(h));
    sqlite3_bind_text(st, 1, word, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 rowid = sqlite3_column_int64(st, 0);
        sqlite3_stmt *c = NULL;
        REQUIRE(sqlite3_prepare_v2(h, "SELECT count(*) FROM chunks WHERE id = ?1", -1, &c, NULL) == SQLITE_OK);
        sqlite3_bind_int64(c, 1, rowid);
        REQUIRE(sqlite3_step(c) == SQLITE_ROW);
        if (sqlite3_column_int(c, 0)) (*live)++;
        else (*ghost)++;
        sqlite3_finalize(c);
    }
    CHECK(rc == SQLITE_DONE, "fts5vocab: %s", sqlite3_errmsg(h));
    sqlite3_finalize(st);
}

/* True when some of the top k BM25 hits of query belong to a URI ending in suffix. */
static bool bm25_finds(idx_store *s, const char *query, const char *suffix, int k, int *first_rank, idx_chunk *chunk) {
    rag_retriever *r = NULL;
    rag_retriever_params rp = rag_retriever_default_params();
    char err[512];
    REQUIRE(rag_retriever_new(s, &rp, &r, err, sizeof err) == RAG_OK, "%s", err);
    rag_hit hits[20];
    int n = 0;
    REQUIRE(rag_retrieve(r, query, strlen(query), RAG_SEARCH_BM25, k, NULL, hits, &n) == RAG_OK);
    bool found = false;
    for (int i = 0; i < n && !found; i++) {
        idx_chunk c;
        char *u = chunk_uri(s, hits[i].chunk_id, &c);
        if (u && ends_with(u, suffix)) {
            found = true;
            if (first_rank) *first_rank = i + 1;
            if (chunk) *chunk = c;
            else idx_chunk_release(&c);
        } else if (u) {
            idx_chunk_release(&c);
        }
        free(u);
    }
    rag_retriever_free(r);
    return found;
}

TEST(ingest_sample_then_bm25_finds_document_and_line_span) {
    char corpus[600];
    copy_sample(corpus, sizeof corpus);
    llm_model *m = load_model(make_model(model_a, sizeof model_a, 64, 1));
    char idir[600];
    snprintf(idir, sizeof idir, "%s/idx", test_tmpdir());
    idx_store *s = test_open_index(idir);
    rag_ingest_stats st;
    evlog *log = calloc(1, sizeof *log);
    REQUIRE(run_ingest(s, m, corpus, &st, log) == RAG_OK);
    CHECK_EQ_INT(st.added, st.files_total);
    CHECK(st.files_total >= 15, "%zu files", st.files_total);
    CHECK_EQ_INT(st.failed, 0);
    CHECK(st.chunks_added > st.added);
    /* exact facts: the chunk cited must span the line holding the fact */
    struct { const char *query, *file, *needle; } facts[] = {
        {"WireGuard port 51820/UDP", "it/vpn-setup.md", "51820/UDP"},
        {"Carried-over days expire 31 March", "handbook/vacation-policy.md", "Carried-over"},
        {"Kilometerpauschale 0,30 pro Kilometer", "handbook/reisekostenrichtlinie.md", "Kilometerpauschale"},
        {"uncollected print jobs deleted 24 hours", "it/printing-howto.txt", "24 hours"},
    };
    for (size_t i = 0; i < sizeof facts / sizeof facts[0]; i++) {
        int rank = 0;
        idx_chunk c;
        memset(&c, 0, sizeof c);
        bool ok = bm25_finds(s, facts[i].query, facts[i].file, 1, &rank, &c);
        CHECK(ok, "'%s' -> %s not the top hit", facts[i].query, facts[i].file);
        if (!ok) continue;
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", corpus, facts[i].file);
        int line = line_of(path, facts[i].needle);
        CHECK(line > 0);
        CHECK(c.line_start <= line && line <= c.line_end, "%s: fact on line %d, chunk cites %d-%d", facts[i].file, line,
              c.line_start, c.line_end);
        CHECK(strstr(c.text, facts[i].needle) != NULL, "chunk text lacks '%s'", facts[i].needle);
        idx_chunk_release(&c);
    }
    check_no_ghosts(s, idir);
    free(log);
    idx_close(s);
    llm_model_free(m);
}

TEST(dense_query_with_a_chunks_own_text_returns_that_chunk_first) {
    char corpus[600];
    copy_sample(corpus, sizeof corpus);
    llm_model *m = load_model(make_model(model_a, sizeof model_a, 64, 1));
    char idir[600];
    snprintf(idir, sizeof idir, "%s/idx", test_tmpdir());
    idx_store *s = test_open_index(idir);
    rag_ingest_stats st;
    REQUIRE(run_ingest(s, m, corpus, &st, NULL) == RAG_OK);
    rag_retriever *r = NULL;
    rag_retriever_params rp = rag_retriever_default_params();
    rp.model = m;
    rp.n_threads = 1;
    char err[512];
    REQUIRE(rag_retriever_new(s, &rp, &r, err, sizeof err) == RAG_OK, "%s", err);
    int64_t *ids = NULL;
    size_t n = 0;
    REQUIRE(idx_debug_vector_ids(s, &ids, &n) == IDX_OK);
    int tried = 0;
    for (size_t i = 0; i < n; i += 7, tried++) {
        idx_chunk c;
        memset(&c, 0, sizeof c);
        REQUIRE(idx_chunk_get(s, ids[i], &c, NULL) == IDX_OK);
        /* the text embedded at ingest: heading path, blank line, chunk text */
        size_t ql = strlen(c.heading) + 2 + c.text_len;
        char *q = malloc(ql + 1);
        REQUIRE(q);
        if (*c.heading) snprintf(q, ql + 1, "%s\n\n%.*s", c.heading, (int)c.text_len, c.text);
        else snprintf(q, ql + 1, "%.*s", (int)c.text_len, c.text);
        rag_hit hits[3];
        int nh = 0;
        REQUIRE(rag_retrieve(r, q, strlen(q), RAG_SEARCH_DENSE, 3, NULL, hits, &nh) == RAG_OK, "%s", rag_retriever_errmsg(r));
        REQUIRE(nh >= 1);
        CHECK(hits[0].chunk_id == ids[i] || hits[0].score >= 0.9999f, "chunk %lld: top hit %lld (%.4f)", (long long)ids[i],
              (long long)hits[0].chunk_id, (double)hits[0].score);
        CHECK(hits[0].score > 0.999f, "self-similarity %.5f", (double)hits[0].score);
        /* the stored vector is the query's vector */
        float *v = malloc(64 * sizeof *v), *w = malloc(64 * sizeof *w);
        REQUIRE(v && w);
        REQUIRE(idx_chunk_vector(s, ids[i], v, 64) == IDX_OK);
        REQUIRE(rag_retriever_embed(r, q, strlen(q), w) == RAG_OK);
        double dot = 0;
        for (int d = 0; d < 64; d++) dot += (double)v[d] * w[d];
        CHECK(dot > 0.9999, "stored vs query vector: %.6f", dot);
        free(v);
        free(w);
        free(q);
        idx_chunk_release(&c);
    }
    CHECK(tried >= 5);
    free(ids);
    rag_retriever_free(r);
    idx_close(s);
    llm_model_free(m);
}

TEST(rerun_skips_unchanged_and_touched_files) {
    char corpus[600];
    copy_sample(corpus, sizeof corpus);
    llm_model *m = load_model(make_model(model_a, sizeof model_a, 64, 1));
    char idir[600];
    snprintf(idir, sizeof idir, "%s/idx", test_tmpdir());
    idx_store *s = test_open_index(idir);
    rag_ingest_stats st1, st2, st3;
    REQUIRE(run_ingest(s, m, corpus, &st1, NULL) == RAG_OK);
    REQUIRE(run_ingest(s, m, corpus, &st2, NULL) == RAG_OK);
    CHECK_EQ_INT(st2.unchanged, st1.added);
    CHECK_EQ_INT(st2.added + st2.updated + st2.removed + st2.renamed, 0);
    CHECK_EQ_INT(st2.chunks_added, 0);
    /* new mtime, same bytes: hashed, found equal, mtime recorded, no re-embed */
    char path[1200];
    snprintf(path, sizeof path, "%s/it/vpn-setup.md", corpus);
    struct timeval tv[2] = {{1700000000, 0}, {1700000000, 0}};
    REQUIRE(utimes(path, tv) == 0);
    REQUIRE(run_ingest(s, m, corpus, &st3, NULL) == RAG_OK);
    CHECK_EQ_INT(st3.unchanged, st1.added);
    CHECK_EQ_INT(st3.chunks_added, 0);
    idx_doc d;
    memset(&d, 0, sizeof d);
    char real[4096];
    REQUIRE(realpath(path, real));
    REQUIRE(idx_doc_get(s, real, &d) == IDX_OK);
    CHECK_EQ_INT(d.mtime_ns, 1700000000ll * 1000000000ll);
    idx_doc_release(&d);
    idx_close(s);
    llm_model_free(m);
}

/* Expected chunk count of a file by the same extract + chunk steps. */
static int expected_chunks(const char *path, llm_model *m) {
    rag_doc *doc = NULL;
    char err[512];
    rag_extract_params xp = rag_extract_default_params();
    REQUIRE(rag_extract_file(path, RAG_DOC_UNKNOWN, &xp, &doc, err, sizeof err) == RAG_OK, "%s", err);
    rag_chunk_params cp = rag_chunk_default_params();
    rag_chunk_list cl = {0};
    REQUIRE(rag_chunk_doc(doc, &cp, rag_count_llm_tokens, m, &cl, err, sizeof err) == RAG_OK, "%s", err);
    int n = (int)cl.n;
    rag_chunk_list_free(&cl);
    rag_doc_free(doc);
    return n;
}

TEST(edited_file_old_text_gone_new_text_found_counts_exact) {
    char corpus[600];
    copy_sample(corpus, sizeof corpus);
    llm_model *m = load_model(make_model(model_a, sizeof model_a, 64, 1));
    char idir[600];
    snprintf(idir, sizeof idir, "%s/idx", test_tmpdir());
    idx_store *s = test_open_index(idir);
    rag_ingest_stats st;
    REQUIRE(run_ingest(s, m, corpus, &st, NULL) == RAG_OK);
    idx_counts before;
    REQUIRE(idx_get_counts(s, &before) == IDX_OK);
    char path[1200], real[4096];
    snprintf(path, sizeof path, "%s/handbook/vacation-policy.md", corpus);
    REQUIRE(realpath(path, real));
    idx_doc d;
    memset(&d, 0, sizeof d);
    REQUIRE(idx_doc_get(s, real, &d) == IDX_OK);
    int64_t old_chunks = d.n_chunks;
    idx_doc_release(&d);
    CHECK(bm25_finds(s, "forfeited", "vacation-policy.md", 1, NULL, NULL));
    int live = 0, ghost = 0;
    fts_matches(s, "carried", &live, &ghost);
    CHECK(live >= 1);
    /* a new version: the old sentences are gone, a new unique word appears */
    const char *text = "# Vacation\n\nEvery employee gets quokkaberry days.\n\n## Requests\n\n"
                       "Ask your lead in PeopleDesk two weeks ahead.\n";
    REQUIRE(test_write_file(path, text, strlen(text)) == 0);
    evlog *log = calloc(1, sizeof *log);
    REQUIRE(run_ingest(s, m, corpus, &st, log) == RAG_OK);
    CHECK_EQ_INT(st.updated, 1);
    CHECK_EQ_INT(st.added, 0);
    int e = find_event(log, "handbook/vacation-policy.md");
    CHECK(e >= 0 && log->o[e] == RAG_ING_UPDATED);
    int want = expected_chunks(path, m);
    memset(&d, 0, sizeof d);
    REQUIRE(idx_doc_get(s, real, &d) == IDX_OK);
    CHECK_EQ_INT(d.n_chunks, want);
    idx_doc_release(&d);
    idx_counts after;
    REQUIRE(idx_get_counts(s, &after) == IDX_OK);
    CHECK_EQ_INT(after.chunks, before.chunks - old_chunks + want);
    CHECK_EQ_INT((int64_t)st.chunks_added, want);
    CHECK_EQ_INT((int64_t)st.chunks_removed, old_chunks);
    CHECK(!bm25_finds(s, "forfeited", "vacation-policy.md", 20, NULL, NULL), "old text still found");
    fts_matches(s, "carried", &live, &ghost);
    CHECK_EQ_INT(ghost, 0);
    CHECK_EQ_INT(live, 0);
    CHECK(bm25_finds(s, "quokkaberry", "vacation-policy.md", 1, NULL, NULL), "new text not found");
    check_no_ghosts(s, idir);
    free(log);
    idx_close(s);
    llm_model_free(m);
}

TEST(deleted_and_renamed_files_leave_no_ghosts) {
    char corpus[600];
    copy_sample(corpus, sizeof corpus);
    llm_model *m = load_model(make_model(model_a, sizeof model_a, 64, 1));
    char idir[600];
    snprintf(idir, sizeof idir, "%s/idx", test_tmpdir());
    idx_store *s = test_open_index(idir);
    rag_ingest_stats st;
    REQUIRE(run_ingest(s, m, corpus, &st, NULL) == RAG_OK);
    size_t files = st.added;
    char a[1200], b[1200], b2[1200], ra[4096], rb[4096];
    snprintf(a, sizeof a, "%s/recipes/banana-bread.md", corpus);
    snprintf(b, sizeof b, "%s/it/printing-howto.txt", corpus);
    snprintf(b2, sizeof b2, "%s/facilities/printing-moved.txt", corpus);
    REQUIRE(realpath(a, ra) && realpath(b, rb));
    idx_doc d;
    memset(&d, 0, sizeof d);
    REQUIRE(idx_doc_get(s, rb, &d) == IDX_OK);
    int64_t b_chunks = d.n_chunks;
    idx_doc_release(&d);
    CHECK(bm25_finds(s, "banana bread", "banana-bread.md", 3, NULL, NULL));
    REQUIRE(unlink(a) == 0);
    REQUIRE(rename(b, b2) == 0);
    evlog *log = calloc(1, sizeof *log);
    REQUIRE(run_ingest(s, m, corpus, &st, log) == RAG_OK);
    CHECK_EQ_INT(st.removed, 1);
    CHECK_EQ_INT(st.renamed, 1);
    CHECK_EQ_INT(st.added, 0);
    CHECK_EQ_INT(st.unchanged, files - 2);
    CHECK_EQ_INT(st.chunks_added, 0);
    int e = find_event(log, "facilities/printing-moved.txt");
    CHECK(e >= 0 && log->o[e] == RAG_ING_RENAMED);
    e = find_event(log, "recipes/banana-bread.md");
    CHECK(e >= 0 && log->o[e] == RAG_ING_REMOVED);
    memset(&d, 0, sizeof d);
    CHECK(idx_doc_get(s, ra, &d) == IDX_ERR_NOTFOUND);
    CHECK(idx_doc_get(s, rb, &d) == IDX_ERR_NOTFOUND);
    char rb2[4096];
    REQUIRE(realpath(b2, rb2));
    REQUIRE(idx_doc_get(s, rb2, &d) == IDX_OK);
    CHECK_EQ_INT(d.n_chunks, b_chunks);
    idx_doc_release(&d);
    CHECK(!bm25_finds(s, "banana bread", "banana-bread.md", 20, NULL, NULL), "deleted document still found");
    int live = 0, ghost = 0;
    fts_matches(s, "banana", &live, &ghost);
    CHECK_EQ_INT(ghost, 0);
    CHECK_EQ_INT(live, 0);
    CHECK(bm25_finds(s, "uncollected print jobs", "facilities/printing-moved.txt", 3, NULL, NULL));
    idx_counts c;
    REQUIRE(idx_get_counts(s, &c) == IDX_OK);
    CHECK_EQ_INT(c.documents, files - 1);
    check_no_ghosts(s, idir);
    /* the saved FAISS file agrees too: reopen and compare again */
    idx_close(s);
    s = test_open_index(idir);
    CHECK(idx_notice(s) == NULL, "FAISS file was rebuilt on open: %s", idx_notice(s));
    check_no_ghosts(s, idir);
    free(log);
    idx_close(s);
    llm_model_free(m);
}

TEST(bad_files_are_reported_and_skipped_the_rest_ingested) {
    llm_model *m = load_model(make_model(model_a, sizeof model_a, 64, 1));
    char dir[600];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());   /* test_tmpdir() reuses its buffer */
    char p[1200];
    const char *good = "A good file about lighthouses and the sea.\n";
    snprintf(p, sizeof p, "%s/good.txt", dir);
    REQUIRE(test_write_file(p, good, strlen(good)) == 0);
    /* Latin-1 text is converted, not rejected */
    const char latin1[] = "Die Stra\xdf" "e am Hafen hat \xc4pfel.\n";
    snprintf(p, sizeof p, "%s/latin1.txt", dir);
    REQUIRE(test_write_file(p, latin1, sizeof latin1 - 1) == 0);
    const char bin[] = "\x7f" "ELF\0\0\0\1\2\3\0\0binary";
    snprintf(p, sizeof p, "%s/program.txt", dir);
    REQUIRE(test_write_file(p, bin, sizeof bin - 1) == 0);
    /* a UTF-8 BOM followed by invalid UTF-8: bad encoding */
    const char badenc[] = "\xef\xbb\xbfok then \xc3\x28 broken \xff\xfe\n";
    snprintf(p, sizeof p, "%s/badenc.md", dir);
    REQUIRE(test_write_file(p, badenc, sizeof badenc - 1) == 0);
    const char pdf[] = "%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage, no xref\n";
    snprintf(p, sizeof p, "%s/corrupt.pdf", dir);
    REQUIRE(test_write_file(p, pdf, sizeof pdf - 1) == 0);
    size_t big = (1 << 20) + 10;
    char *huge = malloc(big);
    REQUIRE(huge);
    memset(huge, 'a', big);
    for (size_t i = 80; i < big; i += 81) huge[i] = '\n';
    snprintf(p, sizeof p, "%s/huge.txt", dir);
    REQUIRE(test_write_file(p, huge, big) == 0);
    free(huge);
    /* unreadable (tests run as root, where chmod 000 stays readable): a
     * dangling symlink and a FIFO */
    snprintf(p, sizeof p, "%s/dangling.md", dir);
    REQUIRE(symlink("does-not-exist.md", p) == 0);
    snprintf(p, sizeof p, "%s/pipe.txt", dir);
    REQUIRE(mkfifo(p, 0600) == 0);
    char idir[600];
    snprintf(idir, sizeof idir, "%s/idx", test_tmpdir());
    idx_store *s = test_open_index(idir);
    rag_ingest_stats st;
    evlog *log = calloc(1, sizeof *log);
    REQUIRE(run_ingest(s, m, dir, &st, log) == RAG_OK);
    CHECK_EQ_INT(st.added, 2);
    struct { const char *file; rag_ingest_outcome o; const char *reason; } want[] = {
        {"/good.txt", RAG_ING_ADDED, ""},
        {"/latin1.txt", RAG_ING_ADDED, ""},
        {"/program.txt", RAG_ING_SKIPPED, "binary"},
        {"/badenc.md", RAG_ING_FAILED, "UTF-8"},
        {"/corrupt.pdf", RAG_ING_FAILED, "corrupt.pdf"},
        {"/huge.txt", RAG_ING_SKIPPED, "too large"},
        {"/dangling.md", RAG_ING_SKIPPED, "link"},
        {"/pipe.txt", RAG_ING_SKIPPED, ""},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int e = find_event(log, want[i].file);
        CHECK(e >= 0, "no event for %s", want[i].file);
        if (e < 0) continue;
        CHECK(log->o[e] == want[i].o, "%s: %s (%s)", want[i].file, rag_ingest_outcome_str(log->o[e]), log->reason[e]);
        CHECK(strstr(log->reason[e], want[i].reason) != NULL, "%s: reason '%s' lacks '%s'", want[i].file, log->reason[e],
              want[i].reason);
        if (want[i].o != RAG_ING_ADDED) CHECK(log->reason[e][0] != 0, "%s: no reason", want[i].file);
    }
    CHECK_EQ_INT(st.skipped, 4);
    CHECK_EQ_INT(st.failed, 2);
    CHECK(bm25_finds(s, "lighthouses", "/good.txt", 1, NULL, NULL));
    CHECK(bm25_finds(s, "Straße Hafen", "/latin1.txt", 1, NULL, NULL));
    idx_counts c;
    REQUIRE(idx_get_counts(s, &c) == IDX_OK);
    CHECK_EQ_INT(c.documents, 2);
    /* a file that used to be fine and now fails leaves the index */
    snprintf(p, sizeof p, "%s/good.txt", dir);
    REQUIRE(test_write_file(p, badenc, sizeof badenc - 1) == 0);
    REQUIRE(run_ingest(s, m, dir, &st, log) == RAG_OK);
    CHECK_EQ_INT(st.failed, 3);
    CHECK(!bm25_finds(s, "lighthouses", "/good.txt", 5, NULL, NULL), "stale text of a failing file");
    check_no_ghosts(s, idir);
    free(log);
    idx_close(s);
    llm_model_free(m);
}

TEST(another_model_is_a_mismatch_error_and_reindex_rebuilds) {
    char corpus[600];
    copy_sample(corpus, sizeof corpus);
    llm_model *ma = load_model(make_model(model_a, sizeof model_a, 64, 1));
    llm_model *mb = load_model(make_model(model_b, sizeof model_b, 64, 2));
    char idir[600];
    snprintf(idir, sizeof idir, "%s/idx", test_tmpdir());
    idx_store *s = test_open_index(idir);
    rag_ingest_stats st;
    REQUIRE(run_ingest(s, ma, corpus, &st, NULL) == RAG_OK);
    size_t files = st.added;
    rag_ingest_params p = rag_ingest_default_params();
    p.model = mb;
    p.n_threads = 1;
    rag_ingester *ing = NULL;
    char err[1024] = "";
    CHECK_EQ_INT(rag_ingester_new(s, &p, &ing, err, sizeof err), RAG_ERR_MISMATCH);
    CHECK(ing == NULL);
    CHECK(strstr(err, "--reindex") != NULL, "message: %s", err);
    CHECK(strstr(err, "sha256") != NULL, "message: %s", err);
    /* same model, other layer: also a mismatch */
    p.model = ma;
    p.layer = 0;
    CHECK_EQ_INT(rag_ingester_new(s, &p, &ing, err, sizeof err), RAG_ERR_MISMATCH);
    CHECK(strstr(err, "layer") != NULL, "message: %s", err);
    /* the retriever refuses the other model, accepts the right one, and
     * BM25 needs none */
    rag_retriever *r = NULL;
    rag_retriever_params rp = rag_retriever_default_params();
    rp.model = mb;
    CHECK_EQ_INT(rag_retriever_new(s, &rp, &r, err, sizeof err), RAG_ERR_MISMATCH);
    rp.model = ma;
    CHECK_EQ_INT(rag_retriever_new(s, &rp, &r, err, sizeof err), RAG_OK);
    rag_retriever_free(r);
    r = NULL;
    /* --reindex: everything re-embedded with the new model */
    p.model = mb;
    p.layer = -1;
    p.reindex = true;
    CHECK_EQ_INT(rag_ingest_dir(s, corpus, &p, &st, err, sizeof err), RAG_OK);
    CHECK_EQ_INT(st.added, files);
    idx_fingerprint fp;
    REQUIRE(idx_fingerprint_get(s, &fp) == IDX_OK);
    char sha[65];
    REQUIRE(llm_model_sha256(mb, sha) == LLM_OK);
    CHECK_EQ_STR(fp.model_sha256, sha);
    rp.model = ma;
    CHECK_EQ_INT(rag_retriever_new(s, &rp, &r, err, sizeof err), RAG_ERR_MISMATCH);
    check_no_ghosts(s, idir);
    idx_close(s);
    llm_model_free(ma);
    llm_model_free(mb);
}

TEST(pdf_chunks_cite_their_page) {
    struct stat sb;
    if (stat("tests/gen_sample_pdf.sh", &sb) != 0) SKIP("tests/gen_sample_pdf.sh is missing");
    llm_model *m = load_model(make_model(model_a, sizeof model_a, 64, 1));
    char corpus[600], idir[600], cmd[1400];
    snprintf(corpus, sizeof corpus, "%s/pdfcorpus", test_tmpdir());
    snprintf(cmd, sizeof cmd, "sh tests/gen_sample_pdf.sh --corpus %s >/dev/null 2>&1", test_shq(corpus));
    REQUIRE(system(cmd) == 0, "gen_sample_pdf.sh failed");
    snprintf(idir, sizeof idir, "%s/idx", test_tmpdir());
    idx_store *s = test_open_index(idir);
    rag_ingest_stats st;
    REQUIRE(run_ingest(s, m, corpus, &st, NULL) == RAG_OK);
    CHECK_EQ_INT(st.failed, 0);
    /* facts on pages 1 and 2 of it/it-security-guidelines.pdf */
    struct { const char *query; int page; } facts[] = {
        {"lost devices reported within 2 hours", 1},
        {"security updates restart laptop 72 hours", 2},
    };
    for (size_t i = 0; i < 2; i++) {
        idx_chunk c;
        memset(&c, 0, sizeof c);
        int rank = 0;
        bool ok = bm25_finds(s, facts[i].query, "it/it-security-guidelines.pdf", 1, &rank, &c);
        CHECK(ok, "'%s' did not find the PDF first", facts[i].query);
        if (!ok) continue;
        CHECK_EQ_INT(c.page, facts[i].page);
        CHECK_EQ_INT(c.line_start, 0);
        idx_chunk_release(&c);
    }
    check_no_ghosts(s, idir);
    idx_close(s);
    llm_model_free(m);
}

/* ---------------------------------------------------------------- swaps
 * Issue 10, item 2: files and folders swapped for symlinks (or other files)
 * between the walk and the read. The swap runs from the progress callback
 * when the walk is done and before any file is read. */

typedef struct {
    evlog log;
    char root[600], outside[600];
    bool swapped;
} swap_ctx;

static void swap_on_start(void *user, const rag_ingest_event *ev) {
    swap_ctx *x = user;
    if (ev->kind == RAG_ING_EV_START && !x->swapped) {
        x->swapped = true;
        char p[1400], q[1400];
        /* a new file that was never indexed: now a link out of the root */
        snprintf(p, sizeof p, "%s/new.md", x->root);
        snprintf(q, sizeof q, "%s/secret.md", x->outside);
        if (unlink(p) != 0 || symlink(q, p) != 0) printf("  # swap new.md failed\n");
        /* an indexed file that changed: now a link too */
        snprintf(p, sizeof p, "%s/old.md", x->root);
        if (unlink(p) != 0 || symlink(q, p) != 0) printf("  # swap old.md failed\n");
        /* a folder: now a link to an outside folder with the same names */
        snprintf(p, sizeof p, "%s/pub", x->root);
        snprintf(q, sizeof q, "%s/pub-away", x->root);
        if (rename(p, q) != 0) printf("  # rename pub failed\n");
        snprintf(q, sizeof q, "%s/pub", x->outside);
        if (symlink(q, p) != 0) printf("  # swap pub failed\n");
        /* a file replaced by another file (a copy of the secret) */
        snprintf(p, sizeof p, "%s/other.md", x->root);
        snprintf(q, sizeof q, "%s/other.tmp", x->root);
        if (test_write_file(q, "# Other\n\nFluorovantix is the password.\n", 37) != 0 || rename(q, p) != 0)
            printf("  # replace other.md failed\n");
    }
    on_event(&x->log, ev);
}

TEST(files_swapped_for_links_after_the_walk_are_not_read) {
    llm_model *m = load_model(make_model(model_a, sizeof model_a, 64, 1));
    swap_ctx *x = calloc(1, sizeof *x);
    REQUIRE(x);
    snprintf(x->root, sizeof x->root, "%s", test_tmpdir());
    snprintf(x->outside, sizeof x->outside, "%s", test_tmpdir());
    test_put_file(x->outside, "secret.md", "# Secret\n\nFluorovantix is the password.\n");
    test_put_file(x->outside, "pub/a.md", "# Secret\n\nFluorovantix is the password.\n");
    test_put_file(x->root, "old.md", "# Old\n\nThe old public text about marmalade.\n");
    test_put_file(x->root, "pub/a.md", "# A\n\nPublic text about quinces.\n");
    test_put_file(x->root, "other.md", "# Other\n\nPublic text about apricots.\n");
    char idx[700];
    snprintf(idx, sizeof idx, "%s/idx", test_tmpdir());
    idx_store *s = test_open_index(idx);
    rag_ingest_stats st;
    REQUIRE(run_ingest(s, m, x->root, &st, NULL) == RAG_OK);
    CHECK_EQ_INT(st.added, 3);
    /* changes the walk will see: a new file, old.md and other.md edited, pub/a.md edited */
    test_put_file(x->root, "new.md", "# New\n\nA new public page about plums.\n");
    test_put_file(x->root, "old.md", "# Old\n\nThe old public text about marmalade, edited.\n");
    test_put_file(x->root, "pub/a.md", "# A\n\nPublic text about quinces, edited.\n");
    test_put_file(x->root, "other.md", "# Other\n\nPublic text about apricots, edited.\n");
    rag_ingest_params p = rag_ingest_default_params();
    p.model = m;
    p.n_threads = 1;
    p.progress = swap_on_start;
    p.user = x;
    char err[1024] = "";
    REQUIRE(rag_ingest_dir(s, x->root, &p, &st, err, sizeof err) == RAG_OK, "%s", err);
    REQUIRE(x->swapped);
    /* nothing from outside the root was read, under any name */
    CHECK(!bm25_finds(s, "Fluorovantix password", "", 10, NULL, NULL), "out-of-root text was indexed");
    const char *names[] = {"/new.md", "/old.md", "/pub/a.md", "/other.md"};
    for (int i = 0; i < 4; i++) {
        int k = find_event(&x->log, names[i]);
        CHECK(k >= 0, "no event for %s", names[i]);
        if (k < 0) continue;
        CHECK(x->log.o[k] == RAG_ING_SKIPPED, "%s: %s (%s)", names[i], rag_ingest_outcome_str(x->log.o[k]), x->log.reason[k]);
        CHECK(strstr(x->log.reason[k], "symlink") || strstr(x->log.reason[k], "replaced") ||
                  strstr(x->log.reason[k], "no longer a folder"), "%s: %s", names[i], x->log.reason[k]);
    }
    /* what was indexed before stays as it was (the next run looks again) */
    CHECK(bm25_finds(s, "marmalade", "/old.md", 5, NULL, NULL), "old.md was dropped");
    CHECK(bm25_finds(s, "apricots", "/other.md", 5, NULL, NULL), "other.md was dropped");
    check_no_ghosts(s, idx);
    idx_close(s);
    llm_model_free(m);
    free(x);
}

TEST_MAIN(RUN(ingest_sample_then_bm25_finds_document_and_line_span),
          RUN(dense_query_with_a_chunks_own_text_returns_that_chunk_first),
          RUN(rerun_skips_unchanged_and_touched_files),
          RUN(edited_file_old_text_gone_new_text_found_counts_exact),
          RUN(deleted_and_renamed_files_leave_no_ghosts),
          RUN(bad_files_are_reported_and_skipped_the_rest_ingested),
          RUN(pdf_chunks_cite_their_page),
          RUN(another_model_is_a_mismatch_error_and_reindex_rebuilds), RUN(files_swapped_for_links_after_the_walk_are_not_read))
