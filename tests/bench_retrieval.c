/* bench_retrieval.c — BM25 query latency at N chunks (default 100 000):
 * today's path (FTS5 unicode61 + built-in bm25(), the old query builder)
 * against mrag's tokenizer, analysed query and access-aware mrag_bm25, for
 * the owner (no filter) and a public caller (10% of the documents are
 * restricted). Both run on the same chunks in one process, interleaved
 * query by query, so machine load hits both alike; wall and thread-CPU
 * p50/p99 and the new/old ratios are printed with the load average.
 *
 *   make bench-retrieval      or    build/tests/bench_retrieval [N]
 *
 * BENCH_LANG=de (make bench-retrieval-de): German chunks and questions —
 * real German words drawn from the OpenThesaurus file (Debian package
 * openthesaurus-de-text), so a question's words have synonyms in the index
 * — and a third path: mrag with its query-side synonyms against the same
 * index opened without them (two handles on one index, interleaved).
 *
 * For profiling (callgrind instruction counts, repeatable under load):
 * BENCH_DIR=DIR keeps the index in DIR and reuses it when it exists;
 * BENCH_PATHS=0123 runs only the listed paths (0 today owner, 1 mrag owner,
 * 2 today public, 3 mrag public), BENCH_KINDS=1 only the 3-word queries
 * (0 only the questions), e.g.
 *   BENCH_DIR=/tmp/br BENCH_PATHS=1 valgrind --tool=callgrind
 *     --toggle-collect=idx_search_bm25 build/tests/bench_retrieval 20000 */
#include "index/index.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNKS_PER_DOC 10
#define WORDS_PER_CHUNK 60
#define VOCAB 20000
#define QUERIES 400

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static const char *const stops_en[] = {"the", "of", "and", "to", "in", "is", "was", "that", "for", "with", "as", "by", "which", "from"};
static const char *const stops_de[] = {"der", "die", "und", "in", "den", "von", "zu", "das", "mit", "sich", "des", "auf", "für", "ist"};
static const char *const *stops = stops_en;
#define THES_PATH "/usr/share/openthesaurus-de/openthesaurus.txt"

/* German mode: the single-word entries of the thesaurus (no notes, no
 * spaces), shuffled by the fixed generator; NULL when the file is absent. */
static char **de_vocab;
static unsigned n_de_vocab;

static int load_de_vocab(void) {
    FILE *f = fopen(THES_PATH, "r");
    if (!f) return -1;
    char line[4096];
    de_vocab = malloc(VOCAB * sizeof *de_vocab);
    while (de_vocab && n_de_vocab < VOCAB && fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        for (char *t = strtok(line, ";\n"); t && n_de_vocab < VOCAB; t = strtok(NULL, ";\n"))
            if (!strpbrk(t, " ().") && strlen(t) >= 3 && strlen(t) < 40) de_vocab[n_de_vocab++] = strdup(t);
    }
    fclose(f);
    for (unsigned i = n_de_vocab; i > 1; i--) {
        unsigned j = (unsigned)(rnd() % i);
        char *x = de_vocab[i - 1]; de_vocab[i - 1] = de_vocab[j]; de_vocab[j] = x;
    }
    return n_de_vocab >= 1000 ? 0 : -1;
}
static const char *const sufx[] = {"", "", "", "s", "ing", "ed", "er", "ation"};

/* Zipf-like word i of a synthetic vocabulary, with an English suffix. */
static void word(char *out, size_t n) {
    unsigned r = (unsigned)(rnd() % VOCAB);
    r = (unsigned)((uint64_t)r * r / VOCAB);            /* skew towards small ids */
    if (de_vocab) { snprintf(out, n, "%s", de_vocab[r % n_de_vocab]); return; }
    static const char *const syl[] = {"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ber", "dan", "gel", "hor", "pin", "quist", "ton", "wel"};
    size_t o = 0;
    unsigned x = r + 1;
    while (x && o + 6 < n) { o += (size_t)snprintf(out + o, n - o, "%s", syl[x % 16]); x /= 16; }
    snprintf(out + o, n - o, "%s", sufx[rnd() % 8]);
}

static void pct(double *v, int n, double *p50, double *p99) {
    for (int i = 1; i < n; i++) { double x = v[i]; int j = i; while (j && v[j - 1] > x) { v[j] = v[j - 1]; j--; } v[j] = x; }
    *p50 = v[n / 2] * 1e3;
    *p99 = v[(n * 99) / 100] * 1e3;
}

/* Today's query builder: every word quoted, OR-ed. */
static void old_query(const char *q, char *out, size_t n) {
    size_t o = 0;
    const char *p = q;
    while (*p) {
        while (*p == ' ') p++;
        const char *s = p;
        while (*p && *p != ' ') p++;
        if (p > s) o += (size_t)snprintf(out + o, n - o, "%s\"%.*s\"", o ? " OR " : "", (int)(p - s), s);
    }
}

int main(int argc, char **argv) {
    long n_chunks = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
    const char *lang = getenv("BENCH_LANG");
    bool de = lang && strcmp(lang, "de") == 0;
    if (de) {
        stops = stops_de;
        if (load_de_vocab()) { fprintf(stderr, "bench_retrieval: BENCH_LANG=de needs %s (Debian package openthesaurus-de-text)\n", THES_PATH); return 1; }
    }
    if (n_chunks < 100) n_chunks = 100;
    char tmpl[] = "/tmp/mrag-bench-retrieval-XXXXXX", *dir = getenv("BENCH_DIR");
    const char *paths = getenv("BENCH_PATHS");
    bool reuse = false;
    if (dir && *dir) {
        char probe[4096];
        snprintf(probe, sizeof probe, "%s/mrag.sqlite", dir);
        reuse = access(probe, F_OK) == 0;
        mkdir(dir, 0700);
    } else if (!(dir = mkdtemp(tmpl))) {
        perror("mkdtemp");
        return 1;
    }
    idx_store *s = NULL;
    if (idx_open(dir, NULL, &s)) { fprintf(stderr, "open: %s\n", idx_errmsg(s)); return 1; }
    double t0 = now();
    long n_docs = reuse ? 0 : n_chunks / CHUNKS_PER_DOC;
    char *texts = malloc((size_t)CHUNKS_PER_DOC * WORDS_PER_CHUNK * 48);
    idx_chunk ch[CHUNKS_PER_DOC];
    for (long d = 0; d < n_docs; d++) {
        if (d % 1000 == 0) idx_begin(s);
        size_t o = 0;
        for (int c = 0; c < CHUNKS_PER_DOC; c++) {
            size_t st = o;
            for (int w = 0; w < WORDS_PER_CHUNK; w++) {
                char wd[48];
                if (w % 3 == 1) snprintf(wd, sizeof wd, "%s", stops[rnd() % 14]);
                else word(wd, sizeof wd);
                o += (size_t)sprintf(texts + o, "%s%s", w ? " " : "", wd);
            }
            texts[o++] = '.';
            ch[c] = (idx_chunk){.ordinal = c, .text = texts + st, .text_len = o - st};
        }
        char uri[32];
        snprintf(uri, sizeof uri, "doc%ld.md", d);
        idx_doc doc = {.uri = uri, .groups = d % 10 == 3 ? "hr" : NULL};
        if (idx_doc_put(s, &doc, ch, CHUNKS_PER_DOC, NULL, 0, NULL)) { fprintf(stderr, "put: %s\n", idx_errmsg(s)); return 1; }
        if (d % 1000 == 999 || d == n_docs - 1) idx_commit(s);
    }
    double t_ins = now() - t0;
    t0 = now();
    idx_fts_params fp = {.force = true};
    if (!reuse && idx_fts_retune(s, &fp, NULL)) { fprintf(stderr, "retune: %s\n", idx_errmsg(s)); return 1; }
    double t_retune = now() - t0;
    /* today's table beside ours, over the same chunks */
    sqlite3 *db = idx_debug_db(s);
    t0 = now();
    if (!reuse && sqlite3_exec(db, "CREATE VIRTUAL TABLE old_fts USING fts5(heading, text, content='chunks', content_rowid='id',"
                         " tokenize='unicode61 remove_diacritics 2'); INSERT INTO old_fts(old_fts) VALUES('rebuild');",
                     NULL, NULL, NULL) != SQLITE_OK) { fprintf(stderr, "old table: %s\n", sqlite3_errmsg(db)); return 1; }
    double t_old = now() - t0;
    sqlite3_stmt *o_all = NULL, *o_pub = NULL;
    sqlite3_prepare_v2(db, "SELECT f.rowid, f.rank FROM old_fts f WHERE old_fts MATCH ?1 ORDER BY f.rank LIMIT 40", -1, &o_all, NULL);
    sqlite3_prepare_v2(db, "SELECT f.rowid, f.rank FROM old_fts f JOIN chunks c ON c.id = f.rowid WHERE old_fts MATCH ?1 AND "
                           "(NOT EXISTS(SELECT 1 FROM doc_groups g WHERE g.doc_id = c.doc_id) OR EXISTS(SELECT 1 FROM doc_groups g "
                           "WHERE g.doc_id = c.doc_id AND g.grp IN (?2))) ORDER BY f.rank LIMIT 40", -1, &o_pub, NULL);
    if (!o_all || !o_pub) { fprintf(stderr, "prepare: %s\n", sqlite3_errmsg(db)); return 1; }
    const char *pubg[] = {"public"};
    idx_filter pub = {pubg, 1};
    printf("%ld chunks (%ld documents, 10%% restricted); insert %.1f s, retune + FTS rebuild %.1f s, old table build %.1f s\n",
           n_chunks, n_docs, t_ins, t_retune, t_old);
    /* German: the same index opened a second time without synonyms */
    idx_store *s2 = NULL;
    idx_params rop = idx_default_params();
    rop.read_only = true;
    if (de && (idx_open(dir, &rop, &s2) || idx_set_thesaurus(s2, ""))) { fprintf(stderr, "open: %s\n", idx_errmsg(s2)); return 1; }
    if (de) {
        idx_thesaurus_status ts;
        if (idx_thesaurus_info(s, &ts) == IDX_OK) printf("thesaurus: %s, %zu sets, %zu terms%s%s\n", ts.path, ts.sets, ts.terms, ts.note[0] ? "; " : "", ts.note);
    }
    printf("| queries | caller | today p50 / p99 ms | new p50 / p99 ms | ratio p50 | today CPU p50 ms | new CPU p50 ms | ratio CPU p50 |%s load avg |\n",
           de ? " new without synonyms p50 / p99 ms | synonyms ratio p50 | synonyms ratio CPU p50 |" : "");
    printf("|---|---|---|---|---|---|---|---|%s---|\n", de ? "---|---|---|" : "");
    int n_paths = de ? 6 : 4;      /* 4, 5: owner and public without synonyms */
    double *lat[6], *cl[6];
    for (int k = 0; k < n_paths; k++) { lat[k] = malloc(QUERIES * sizeof(double)); cl[k] = malloc(QUERIES * sizeof(double)); }
    idx_hit hits[40];
    int nh;
    /* kind 0: questions ("what is the" + 2-5 words: today's builder searches
     * the stop words too); kind 1: 3 content words (the analysis alone) */
    const char *kinds = getenv("BENCH_KINDS");     /* "0", "1" or both (default) */
    for (int kind = 0; kind < 2; kind++) {
        if (kinds && !strchr(kinds, '0' + kind)) continue;
        double la0[3] = {0}, la1[3] = {0};
        getloadavg(la0, 3);
        for (int i = 0; i < QUERIES + 20; i++) {
            char q[256], oq[1024];
            size_t o = kind == 0 ? (size_t)snprintf(q, sizeof q, de ? "was %s die" : "what %s the", stops[rnd() % 14]) : 0;
            int nw = kind == 0 ? 2 + (int)(rnd() % 4) : 3;
            for (int w = 0; w < nw; w++) { char wd[48]; word(wd, sizeof wd); o += (size_t)snprintf(q + o, sizeof q - o, "%s%s", o ? " " : "", wd); }
            old_query(q, oq, sizeof oq);
            for (int k = 0; k < n_paths; k++) {
                if (paths && !strchr(paths, '0' + k)) { lat[k][i >= 20 ? i - 20 : 0] = cl[k][i >= 20 ? i - 20 : 0] = 1e-9; continue; }
                double a = now(), c = cpu();
                int rc = 0;
                if (k == 0 || k == 2) {
                    sqlite3_stmt *st = k == 0 ? o_all : o_pub;
                    sqlite3_reset(st);
                    sqlite3_bind_text(st, 1, oq, -1, SQLITE_STATIC);
                    if (k == 2) sqlite3_bind_text(st, 2, "public", -1, SQLITE_STATIC);
                    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {}
                    rc = rc == SQLITE_DONE ? 0 : 1;
                } else {
                    /* paths 1, 3: mrag (with synonyms in German); 4, 5: without */
                    rc = idx_search_bm25(k < 4 ? s : s2, q, o, 40, k == 1 || k == 4 ? NULL : &pub, hits, &nh);
                }
                if (rc) { fprintf(stderr, "query %d/%d failed: %s\n", i, k, k >= 4 ? idx_errmsg(s2) : k % 2 ? idx_errmsg(s) : sqlite3_errmsg(db)); return 1; }
                if (i >= 20) { lat[k][i - 20] = now() - a; cl[k][i - 20] = cpu() - c; }
            }
        }
        getloadavg(la1, 3);
        double p50[6], p99[6], c50[6], c99[6];
        for (int k = 0; k < n_paths; k++) { pct(lat[k], QUERIES, &p50[k], &p99[k]); pct(cl[k], QUERIES, &c50[k], &c99[k]); }
        for (int k = 0; k < 2; k++) {
            printf("| %s | %s | %.3f / %.3f | %.3f / %.3f | %.2f | %.3f | %.3f | %.2f |",
                   kind ? "3 content words" : "questions", k ? "public (filtered)" : "owner (no filter)",
                   p50[2 * k], p99[2 * k], p50[2 * k + 1], p99[2 * k + 1], p50[2 * k + 1] / p50[2 * k], c50[2 * k], c50[2 * k + 1],
                   c50[2 * k + 1] / c50[2 * k]);
            if (de) printf(" %.3f / %.3f | %.2f | %.2f |", p50[4 + k], p99[4 + k], p50[2 * k + 1] / p50[4 + k], c50[2 * k + 1] / c50[4 + k]);
            printf(" %.1f -> %.1f |\n", la0[0], la1[0]);
        }
        fflush(stdout);
    }
    sqlite3_finalize(o_all);
    sqlite3_finalize(o_pub);
    idx_close(s2);
    idx_close(s);
    if (!getenv("BENCH_DIR")) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd)) {}
    }
    return 0;
}
