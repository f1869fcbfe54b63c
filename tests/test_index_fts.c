/* test_index_fts.c — index/ BM25 search: ranking, German/English tokenizer
 * behaviour (Äpfel/Apfel, Straße/Strasse), hostile query text, group filter. */
#include "tests/test.h"
#include "index/index.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>

static idx_store *open_ok(const char *dir) {
    idx_store *s = NULL;
    int rc = idx_open(dir, NULL, &s);
    if (rc) test_fail(__FILE__, __LINE__, "idx_open: %s", idx_errmsg(s));
    if (rc) { idx_close(s); return NULL; }
    return s;
}

/* One-chunk document without vectors (BM25 does not need them). */
static int put_text(idx_store *s, const char *uri, const char *text, const char *groups, int64_t *chunk_id) {
    idx_chunk c = {.ordinal = 0, .text = text, .text_len = strlen(text), .line_start = 1, .line_end = 1};
    idx_doc d = {.uri = uri, .groups = groups};
    int rc = idx_doc_put(s, &d, &c, 1, NULL, 0, chunk_id);
    if (rc) printf("  # put %s: %s\n", uri, idx_errmsg(s));
    return rc;
}

static int bm25_n(idx_store *s, const char *q, int64_t *first) {
    idx_hit h[16];
    int n = -1;
    int rc = idx_search_bm25(s, q, strlen(q), 16, NULL, h, &n);
    if (rc) { printf("  # bm25 \"%s\": %s\n", q, idx_errmsg(s)); return -1; }
    if (first) *first = n ? h[0].chunk_id : 0;
    return n;
}

TEST(bm25_ranks_the_right_chunk_first) {
    idx_store *s = open_ok(test_tmpdir());
    REQUIRE(s);
    int64_t bio, cars, cook;
    REQUIRE(put_text(s, "bio.md", "Photosynthesis converts light into chemical energy; chlorophyll absorbs red and blue light.", NULL, &bio) == 0);
    REQUIRE(put_text(s, "cars.md", "The engine converts chemical energy of fuel into motion. Light trucks use diesel.", NULL, &cars) == 0);
    REQUIRE(put_text(s, "cook.md", "Bake the bread for forty minutes until the crust is golden.", NULL, &cook) == 0);
    int64_t first = 0;
    CHECK_EQ_INT(bm25_n(s, "chlorophyll light", &first), 2);
    CHECK_EQ_INT(first, bio);
    CHECK_EQ_INT(bm25_n(s, "How long do I bake bread?", &first), 1);
    CHECK_EQ_INT(first, cook);
    CHECK_EQ_INT(bm25_n(s, "diesel", &first), 1);
    CHECK_EQ_INT(first, cars);
    idx_hit h[3];
    int n;
    REQUIRE(idx_search_bm25(s, "energy chemical chlorophyll", 27, 3, NULL, h, &n) == IDX_OK);
    REQUIRE(n == 2);
    CHECK(h[0].score > h[1].score, "scores descend: %f %f", h[0].score, h[1].score);
    CHECK(h[1].score > 0, "score is -bm25(), positive for a match: %f", h[1].score);
    /* k limits the result */
    REQUIRE(idx_search_bm25(s, "energy", 6, 1, NULL, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 1);
    idx_close(s);
}

TEST(german_umlauts_fold_eszett_expands) {
    const char *dir = test_tmpdir();
    idx_store *s = open_ok(dir);
    REQUIRE(s);
    int64_t apfel, strasse, strasse_ss, cafe, run;
    REQUIRE(put_text(s, "a.md", "Im Herbst pflücken wir Äpfel im Garten.", NULL, &apfel) == 0);
    REQUIRE(put_text(s, "b.md", "Die Straße ist nachts ruhig.", NULL, &strasse) == 0);
    REQUIRE(put_text(s, "c.md", "In der Schweiz schreibt man Strasse mit Doppel-s.", NULL, &strasse_ss) == 0);
    REQUIRE(put_text(s, "d.md", "We met at the café near the station.", NULL, &cafe) == 0);
    REQUIRE(put_text(s, "e.md", "They run every morning.", NULL, &run) == 0);
    int64_t first;
    /* remove_diacritics 2: ä -> a and case folds, so Apfel, apfel, APFEL
     * and äpfel all find "Äpfel" (singular and plural meet: good for
     * retrieval); other inflections and the ae transliteration do not. */
    CHECK_EQ_INT(bm25_n(s, "Apfel", &first), 1);
    CHECK_EQ_INT(first, apfel);
    CHECK_EQ_INT(bm25_n(s, "apfel", NULL), 1);
    CHECK_EQ_INT(bm25_n(s, "APFEL", NULL), 1);
    CHECK_EQ_INT(bm25_n(s, "Äpfel", &first), 1);
    CHECK_EQ_INT(first, apfel);
    CHECK_EQ_INT(bm25_n(s, "äpfel", NULL), 1);
    CHECK_EQ_INT(bm25_n(s, "Apfeln", NULL), 0);
    CHECK_EQ_INT(bm25_n(s, "Aepfel", NULL), 0);
    CHECK_EQ_INT(bm25_n(s, "apfelbaum", NULL), 0);
    CHECK_EQ_INT(bm25_n(s, "pflucken", NULL), 1);      /* ü -> u */
    CHECK_EQ_INT(bm25_n(s, "PFLÜCKEN", NULL), 1);
    /* ß is not a diacritic: FTS5 alone keeps "straße" and "strasse" apart ... */
    char db[600];
    snprintf(db, sizeof db, "%s/mrag.sqlite", dir);
    sqlite3 *h;
    REQUIRE(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    sqlite3_stmt *st;
    REQUIRE(sqlite3_prepare_v2(h, "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?1", -1, &st, NULL) == SQLITE_OK);
    sqlite3_bind_text(st, 1, "\"strasse\"", -1, SQLITE_STATIC);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_INT(sqlite3_column_int64(st, 0), strasse_ss);
    CHECK(sqlite3_step(st) == SQLITE_DONE, "raw FTS5: strasse does not match Straße");
    sqlite3_finalize(st);
    sqlite3_close(h);
    /* ... so the query builder adds the other spelling, both ways */
    char *q = idx_fts_query("Straße", strlen("Straße"));
    CHECK_EQ_STR(q, "(\"Straße\" OR \"Strasse\")");
    free(q);
    q = idx_fts_query("strasse", 7);
    CHECK_EQ_STR(q, "(\"strasse\" OR \"straße\")");
    free(q);
    CHECK_EQ_INT(bm25_n(s, "Straße", NULL), 2);
    CHECK_EQ_INT(bm25_n(s, "Strasse", NULL), 2);
    CHECK_EQ_INT(bm25_n(s, "STRASSE", NULL), 2);
    /* English: case and accents fold, no stemming */
    CHECK_EQ_INT(bm25_n(s, "cafe", &first), 1);
    CHECK_EQ_INT(first, cafe);
    CHECK_EQ_INT(bm25_n(s, "CAFÉ", NULL), 1);
    CHECK_EQ_INT(bm25_n(s, "run", &first), 1);
    CHECK_EQ_INT(first, run);
    CHECK_EQ_INT(bm25_n(s, "running", NULL), 0);
    idx_close(s);
}

TEST(fts_query_is_only_quoted_words) {
    char *q = idx_fts_query("a AND b OR NOT c NEAR(d e) f* -g \"h\" i:j ^k {l}", 48);
    CHECK_EQ_STR(q, "\"a\" OR \"AND\" OR \"b\" OR \"OR\" OR \"NOT\" OR \"c\" OR \"NEAR\" OR \"d\" OR \"e\" OR \"f\" OR \"g\" OR \"h\" OR \"i\" OR \"j\" OR \"k\" OR \"l\"");
    free(q);
    q = idx_fts_query("\"\"\" ((( ))) *** ---", 19);
    CHECK_EQ_STR(q, "");
    free(q);
    q = idx_fts_query("x\0y", 3);
    CHECK_EQ_STR(q, "\"x\" OR \"y\"");
    free(q);
    q = idx_fts_query("ab ab AB", 8);
    CHECK_EQ_STR(q, "\"ab\" OR \"AB\"");
    free(q);
    q = idx_fts_query("\xff\xfe ok \xc3", 8);
    CHECK_EQ_STR(q, "\"ok\"");
    free(q);
}

TEST(hostile_queries_never_error) {
    idx_store *s = open_ok(test_tmpdir());
    REQUIRE(s);
    REQUIRE(put_text(s, "a.md", "near and or not the quick brown fox jumps over the lazy dog", NULL, NULL) == 0);
    REQUIRE(put_text(s, "b.md", "heading text column filter star minus", NULL, NULL) == 0);
    const char *cases[] = {
        "\"", "\"\"", "\"unbalanced", "((", "))", "(fox", "fox)", "NEAR(fox dog)", "NEAR(fox dog, 2)", "fox NEAR dog",
        "fox*", "*", "-fox", "fox -dog", "fox AND", "AND", "OR OR OR", "NOT", "fox NOT", "a AND (b OR",
        "text:fox", "heading:star", "{heading text}: fox", "^fox", "fox + dog", "'; DROP TABLE chunks; --",
        "rank:1", "chunks_fts", "\\", "\xff\xfe\xfd", "\xc3", "\xe2\x80", "😀 fox", "fox\tdog\n", "   ", "",
        "NEAR/2", "\"fox\" OR \"dog", "fox\" dog", "%", "_", "fox'dog", "\x01\x02\x03",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        idx_hit h[10];
        int n = -1;
        int rc = idx_search_bm25(s, cases[i], strlen(cases[i]), 10, NULL, h, &n);
        CHECK(rc == IDX_OK, "query %zu \"%s\": %s", i, cases[i], idx_errmsg(s));
        CHECK(n >= 0 && n <= 2);
    }
    /* NUL bytes inside the text */
    idx_hit h[10];
    int n = -1;
    CHECK_EQ_INT(idx_search_bm25(s, "fox\0\"\0(", 7, 10, NULL, h, &n), IDX_OK);
    CHECK_EQ_INT(n, 1);
    /* 10 kB: long word, many words, many operators, random bytes */
    size_t len = 10240;
    char *big = malloc(len + 1);
    REQUIRE(big);
    memset(big, 'x', len);
    big[len] = 0;
    CHECK_EQ_INT(idx_search_bm25(s, big, len, 10, NULL, h, &n), IDX_OK);
    for (size_t i = 0; i < len; i++) big[i] = "fox (\" NEAR* -)"[i % 15];
    CHECK_EQ_INT(idx_search_bm25(s, big, len, 10, NULL, h, &n), IDX_OK);
    CHECK_EQ_INT(n, 1);
    uint64_t r = 12345;
    for (int round = 0; round < 300; round++) {
        size_t l = (size_t)(r % 200) + 1;
        for (size_t i = 0; i < l; i++) {
            r ^= r << 13; r ^= r >> 7; r ^= r << 17;
            static const char alpha[] = "\"()*-+:^{}NEAROANDT fox\0\xc3\xa4";
            big[i] = (char)(round % 2 ? alpha[r % (sizeof alpha - 1)] : (char)(r & 0xff));
        }
        int rc = idx_search_bm25(s, big, l, 10, NULL, h, &n);
        if (rc != IDX_OK) { CHECK(rc == IDX_OK, "random query %d: %s", round, idx_errmsg(s)); break; }
    }
    for (size_t i = 0; i < len; i++) { r ^= r << 13; r ^= r >> 7; r ^= r << 17; big[i] = (char)(r & 0xff); }
    CHECK_EQ_INT(idx_search_bm25(s, big, len, 10, NULL, h, &n), IDX_OK);
    free(big);
    /* the data is untouched */
    idx_counts c;
    REQUIRE(idx_get_counts(s, &c) == IDX_OK);
    CHECK_EQ_INT(c.chunks, 2);
    CHECK_EQ_INT(c.fts_rows, 2);
    idx_close(s);
}

TEST(group_filter_before_ranking) {
    idx_store *s = open_ok(test_tmpdir());
    REQUIRE(s);
    /* 30 hidden documents that match "budget" strongly, one visible weakly */
    for (int i = 0; i < 30; i++) {
        char uri[32];
        snprintf(uri, sizeof uri, "hr/%d.md", i);
        REQUIRE(put_text(s, uri, "budget budget budget salaries budget", "hr", NULL) == 0);
    }
    int64_t pub, fin;
    REQUIRE(put_text(s, "public.md", "The annual report mentions the budget once among many other words here.", NULL, &pub) == 0);
    REQUIRE(put_text(s, "fin.md", "finance budget plan with several more words in it to lower the score.", "finance, board", &fin) == 0);
    const char *g_fin[] = {"finance"};
    idx_filter f = {g_fin, 1};
    idx_hit h[5];
    int n;
    REQUIRE(idx_search_bm25(s, "budget", 6, 2, &f, h, &n) == IDX_OK);
    REQUIRE(n == 2);
    CHECK((h[0].chunk_id == pub && h[1].chunk_id == fin) || (h[0].chunk_id == fin && h[1].chunk_id == pub),
          "only public and finance documents");
    idx_filter none = {NULL, 0};
    REQUIRE(idx_search_bm25(s, "budget", 6, 5, &none, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(h[0].chunk_id, pub);
    REQUIRE(idx_search_bm25(s, "budget", 6, 5, NULL, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 5);
    const char *g_hr[] = {"nobody", "hr"};
    idx_filter fh = {g_hr, 2};
    REQUIRE(idx_search_bm25(s, "budget", 6, 5, &fh, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 5);
    for (int i = 0; i < n; i++) CHECK(h[i].chunk_id != fin);
    idx_close(s);
}

TEST_MAIN(RUN(bm25_ranks_the_right_chunk_first), RUN(german_umlauts_fold_eszett_expands),
          RUN(fts_query_is_only_quoted_words), RUN(hostile_queries_never_error), RUN(group_filter_before_ranking))
