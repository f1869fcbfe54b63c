/* test_index_fts.c — index/ BM25 search: ranking, the language-aware
 * tokenizer (stems, Äpfel/Aepfel, Straße/Strasse, compounds from the corpus
 * and the dictionary), raw phrase/prefix queries, hostile query text, the
 * group filter, and statistics that ignore hidden documents. */
#include "tests/test.h"
#include "index/index.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

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

static bool has_dict(void) { return access("/usr/share/hunspell/de_DE.dic", R_OK) == 0; }

static int retune(idx_store *s, const char *compounds) {
    idx_fts_params p = {.force = true, .compounds = compounds};
    bool rebuilt = false;
    int rc = idx_fts_retune(s, &p, &rebuilt);
    if (rc) printf("  # retune: %s\n", idx_errmsg(s));
    else if (!rebuilt) { printf("  # retune did not rebuild\n"); rc = -1; }
    return rc;
}

TEST(german_stems_umlauts_eszett_and_transliteration) {
    idx_store *s = open_ok(test_tmpdir());
    REQUIRE(s);
    int64_t apfel, strasse, strasse_ss, reise;
    REQUIRE(put_text(s, "a.md", "Im Herbst pflücken wir die Äpfel im Garten und legen sie in den Keller.", NULL, &apfel) == 0);
    REQUIRE(put_text(s, "b.md", "Die Straße ist in der Nacht ruhig und nur wenige Autos fahren.", NULL, &strasse) == 0);
    REQUIRE(put_text(s, "c.md", "In der Schweiz schreibt man die Strasse mit einem Doppel-s.", NULL, &strasse_ss) == 0);
    REQUIRE(put_text(s, "d.md", "Alle Reisen werden von der Leitung genehmigt, auch die kurzen.", NULL, &reise) == 0);
    REQUIRE(retune(s, "off") == 0);
    idx_fts_info fi;
    REQUIRE(idx_fts_info_get(s, &fi) == IDX_OK);
    CHECK_EQ_STR(idx_lang_code(fi.default_lang), "de");
    CHECK_EQ_INT(fi.lang_chunks[IDX_LANG_DE], 4);
    int64_t first = 0;
    /* Snowball German: singular, plural, umlaut and its ae spelling meet */
    const char *apfel_q[] = {"Apfel", "apfel", "APFEL", "Äpfel", "Aepfel", "Apfels"};
    for (size_t i = 0; i < sizeof apfel_q / sizeof *apfel_q; i++) {
        CHECK(bm25_n(s, apfel_q[i], &first) == 1 && first == apfel, "query %s", apfel_q[i]);
    }
    CHECK_EQ_INT(bm25_n(s, "pflucken", NULL), 1);      /* ü -> u */
    CHECK_EQ_INT(bm25_n(s, "pfluecken", NULL), 1);     /* ue = ü in German */
    CHECK_EQ_INT(bm25_n(s, "apfelbaum", NULL), 0);     /* no compound list: no split */
    /* ß and ss are one word, both ways */
    CHECK_EQ_INT(bm25_n(s, "Straße", NULL), 2);
    CHECK_EQ_INT(bm25_n(s, "Strasse", NULL), 2);
    CHECK_EQ_INT(bm25_n(s, "STRASSEN", NULL), 2);
    CHECK_EQ_INT(bm25_n(s, "Reise", &first), 1);       /* Reisen -> reis */
    CHECK_EQ_INT(first, reise);
    idx_close(s);
}

static int nonempty_cb(void *user, const char *t, size_t n, int start, int end, bool colocated) {
    (void)t; (void)start; (void)end; (void)colocated;
    int *c = user;
    *c += n > 0 ? 1 : 1000;
    return 0;
}

/* A stemmer may strip a short word to nothing (Greek "αμε"): the word is
 * kept as it is, never an empty term (found by fuzz_index_fts). */
TEST(no_word_stems_to_nothing) {
    idx_analyzer *z = NULL;
    REQUIRE(idx_analyzer_new(NULL, &z) == IDX_OK);
    const char *w = "αμε|";
    for (int l = -1; l < IDX_LANG_COUNT; l++) {
        int c = 0;
        REQUIRE(idx_analyze(z, w, strlen(w), l, nonempty_cb, &c) == IDX_OK);
        CHECK(c == 1, "language %d: %d (1000 per empty term)", l, c);
    }
    idx_analyzer_free(z);
}

TEST(english_stems_and_folds) {
    idx_store *s = open_ok(test_tmpdir());
    REQUIRE(s);
    int64_t cafe, run;
    REQUIRE(put_text(s, "d.md", "We met at the café near the station.", NULL, &cafe) == 0);
    REQUIRE(put_text(s, "e.md", "They run every morning before the meetings start.", NULL, &run) == 0);
    REQUIRE(retune(s, NULL) == 0);
    int64_t first = 0;
    CHECK(bm25_n(s, "cafe", &first) == 1 && first == cafe);
    CHECK_EQ_INT(bm25_n(s, "CAFÉ", NULL), 1);
    CHECK(bm25_n(s, "running", &first) == 1 && first == run, "running -> run");
    CHECK(bm25_n(s, "meeting", &first) == 1 && first == run, "meeting -> meet");
    CHECK(bm25_n(s, "stations", &first) == 1 && first == cafe);
    /* a question's stop words are not searched for */
    CHECK_EQ_INT(bm25_n(s, "what is the", NULL), 2);     /* only stop words: kept */
    CHECK_EQ_INT(bm25_n(s, "What is the station?", &first), 1);
    idx_close(s);
}

/* Puts a German chunk; the caller checks. */
static int64_t put_de(idx_store *s, const char *uri, const char *text) {
    int64_t id = 0;
    if (put_text(s, uri, text, NULL, &id)) return 0;
    return id;
}

TEST(german_compounds_from_the_corpus) {
    idx_store *s = open_ok(test_tmpdir());
    REQUIRE(s);
    /* Urlaub and Anspruch are frequent words of the index; the compound
     * Urlaubsanspruch is split into them, with the linking s. */
    REQUIRE(put_de(s, "1.md", "Der Urlaub wird mit dem Team abgestimmt und im Kalender eingetragen."));
    REQUIRE(put_de(s, "2.md", "Ein Anspruch auf Erstattung besteht nur mit einem Beleg für die Kosten."));
    REQUIRE(put_de(s, "3.md", "Der Urlaub im Sommer ist beliebt, und der Anspruch darauf wird geprüft."));
    int64_t comp = put_de(s, "4.md", "Ihr Urlaubsanspruch beträgt dreißig Tage im Jahr und wird anteilig berechnet.");
    REQUIRE(comp);
    int64_t first = 0;
    CHECK_EQ_INT(bm25_n(s, "Urlaubsanspruch", &first), 1);    /* before the retune: whole words only */
    REQUIRE(retune(s, "corpus") == 0);
    idx_fts_info fi;
    REQUIRE(idx_fts_info_get(s, &fi) == IDX_OK);
    CHECK(fi.vocab_words >= 2, "word list of %lld words", (long long)fi.vocab_words);
    CHECK_EQ_STR(fi.compounds, "corpus");
    idx_hit h[8];
    int n = 0;
    REQUIRE(idx_search_bm25(s, "Urlaub", 6, 8, NULL, h, &n) == IDX_OK);
    bool found = false;
    for (int i = 0; i < n; i++) found |= h[i].chunk_id == comp;
    CHECK(n == 3 && found, "Urlaub finds Urlaubsanspruch (%d hits)", n);
    REQUIRE(idx_search_bm25(s, "Anspruch", 8, 8, NULL, h, &n) == IDX_OK);
    found = false;
    for (int i = 0; i < n; i++) found |= h[i].chunk_id == comp;
    CHECK(found, "Anspruch finds Urlaubsanspruch");
    /* the compound in the query finds the chunk holding the whole word first */
    CHECK(bm25_n(s, "Urlaubsanspruchs", &first) == 4 && first == comp, "first %lld", (long long)first);
    /* the query side splits too: the words apart are found by the compound */
    CHECK(bm25_n(s, "Anspruchsurlaub", NULL) == 4, "query-side split");
    /* an unrelated long word does not split into nonsense */
    CHECK_EQ_INT(bm25_n(s, "Kalendereintrag", NULL), 0);
    CHECK_EQ_INT(idx_check(s), IDX_OK);
    idx_close(s);
}

TEST(german_compounds_from_the_dictionary) {
    if (!has_dict()) SKIP("/usr/share/hunspell/de_DE.dic missing (Debian package hunspell-de-de)");
    idx_store *s = open_ok(test_tmpdir());
    REQUIRE(s);
    REQUIRE(idx_set_thesaurus(s, "") == IDX_OK);   /* the analysis alone, no synonyms */
    int64_t pw = put_de(s, "pw.md", "Der Passwortmanager wird für alle Mitarbeiter von der IT eingerichtet.");
    int64_t k = put_de(s, "k.md", "Die Kilometerpauschale wird mit der nächsten Gehaltsabrechnung erstattet.");
    REQUIRE(pw && k);
    REQUIRE(retune(s, "corpus") == 0);
    CHECK_EQ_INT(bm25_n(s, "Manager für Passwörter", NULL), 0);   /* no frequent parts in two chunks */
    REQUIRE(retune(s, "dict") == 0);
    int64_t first = 0;
    CHECK(bm25_n(s, "Manager für Passwörter", &first) == 1 && first == pw, "dictionary split Passwortmanager");
    CHECK(bm25_n(s, "Pauschale pro Kilometer", &first) == 1 && first == k);
    CHECK(bm25_n(s, "Gehalt", &first) == 1 && first == k, "Gehalt finds Gehaltsabrechnung");
    idx_close(s);
}

/* What the word list confirms beyond its own entries (index/analyze.c,
 * part_cf and derived_forms): a verb stem or an -ung noun as a compound part,
 * the split with fewer parts, a past participle meeting its verb, and a
 * present tense meeting the infinitive. Pairs that must meet, then words
 * that must not. */
TEST(german_verb_stems_participles_and_fewer_parts) {
    if (!has_dict()) SKIP("/usr/share/hunspell/de_DE.dic missing (Debian package hunspell-de-de)");
    idx_store *s = open_ok(test_tmpdir());
    REQUIRE(s);
    REQUIRE(idx_set_thesaurus(s, "") == IDX_OK);   /* the analysis alone: "Gerät" is a synonym of "Apparat" */
    int64_t mnt = put_de(s, "m.md", "Die Einhängeoptionen des Laufwerks stehen in der Datei fstab.");
    int64_t doubt = put_de(s, "z.md", "Im Zweifelsfall fragen Sie bitte die Kollegen im Support.");
    int64_t food = put_de(s, "v.md", "Die Verpflegungspauschale gilt für volle Tage auf Reisen.");
    int64_t chg = put_de(s, "c.md", "Das Kennwort wurde gestern vom Administrator geändert.");
    int64_t shown = put_de(s, "a.md", "Alle installierten Pakete werden im Fenster angezeigt.");
    int64_t adj = put_de(s, "g.md", "Die gelöschten Dateien liegen noch im Papierkorb.");
    int64_t dev = put_de(s, "d.md", "Das Gerät steht im Gebiet hinter dem Keller.");
    int64_t du = put_de(s, "u.md", "Im Support wollen wir die Kunden duzen und freundlich bleiben.");
    REQUIRE(mnt && doubt && food && chg && shown && adj && dev && du);
    REQUIRE(retune(s, "dict") == 0);
    int64_t first = 0;
    /* verb stem as the head: Einhänge|optionen meets einhängen */
    CHECK(bm25_n(s, "einhängen", &first) == 1 && first == mnt, "Einhängeoptionen <- einhängen");
    CHECK(bm25_n(s, "Optionen", &first) == 1 && first == mnt, "Einhängeoptionen <- Optionen");
    /* Zweifels|fall, not Zwei|fels|fall */
    CHECK(bm25_n(s, "Zweifel", &first) == 1 && first == doubt, "Zweifelsfall <- Zweifel");
    CHECK_EQ_INT(bm25_n(s, "Fels", NULL), 0);
    CHECK_EQ_INT(bm25_n(s, "zwei", NULL), 0);
    /* an -ung noun the list holds only as its verb (verpflegen) */
    CHECK(bm25_n(s, "Verpflegung", &first) == 1 && first == food, "Verpflegungspauschale <- Verpflegung");
    CHECK(bm25_n(s, "Pauschale", &first) == 1 && first == food);
    /* past participles meet their verb, also with a separable prefix and
     * inflected as an adjective */
    CHECK(bm25_n(s, "ändert", &first) == 1 && first == chg, "geändert <- ändert");
    CHECK(bm25_n(s, "Anzeige", &first) == 1 && first == shown, "angezeigt <- Anzeige (anzeigen)");
    CHECK(bm25_n(s, "zeigt", &first) == 1 && first == shown, "angezeigt <- zeigt");
    CHECK(bm25_n(s, "löschen", &first) == 1 && first == adj, "gelöschten <- löschen");
    /* a question's present tense meets the text's infinitive */
    CHECK(bm25_n(s, "Wann duzt der Support?", &first) >= 1 && first == du, "duzen <- duzt");
    CHECK(bm25_n(s, "duzt", &first) == 1 && first == du);
    /* ge- words that are no participle derive nothing */
    CHECK_EQ_INT(bm25_n(s, "raten", NULL), 0);
    CHECK_EQ_INT(bm25_n(s, "bieten", NULL), 0);
    CHECK(bm25_n(s, "Gerät", &first) == 1 && first == dev);
    /* words ending in -t that are no verb form derive nothing */
    idx_analyzer *z = NULL;
    REQUIRE(idx_analyzer_new(s, &z) == IDX_OK);
    const char *plain[] = {"Zeit", "Monat", "Arbeit", "Gerät", "Gebiet"};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++) {
        int c = 0;
        REQUIRE(idx_analyze(z, plain[i], strlen(plain[i]), IDX_LANG_DE, nonempty_cb, &c) == IDX_OK);
        CHECK(c == 1, "%s: %d terms", plain[i], c);
    }
    idx_analyzer_free(z);
    /* the derived terms delete with their chunk (FTS5 re-tokenizes it) */
    REQUIRE(idx_doc_delete(s, "a.md") == IDX_OK);
    CHECK_EQ_INT(bm25_n(s, "zeigt", NULL), 0);
    CHECK_EQ_INT(bm25_n(s, "Anzeige", NULL), 0);
    CHECK_EQ_INT(idx_check(s), IDX_OK);
    idx_close(s);
}

/* Terms of an FTS query string: `"\x1fterm" OR ...`, nothing else. */
static bool only_verbatim_terms(const char *q) {
    const char *p = q;
    if (!*p) return true;
    for (;;) {
        if (p[0] != '"' || p[1] != 0x1f) return false;
        p += 2;
        while (*p && *p != '"') {
            if (*p == ' ' || *p == '(' || *p == ')' || *p == '*' || *p == ':' || *p == '^') return false;
            p++;
        }
        if (*p != '"') return false;
        p++;
        if (!*p) return true;
        if (strncmp(p, " OR ", 4) != 0) return false;
        p += 4;
    }
}

TEST(fts_query_is_only_verbatim_terms) {
    idx_store *s = open_ok(test_tmpdir());
    REQUIRE(s);
    const char *cases[] = {"a AND b OR NOT c NEAR(d e) f* -g \"h\" i:j ^k {l}", "\"\"\" ((( ))) *** ---", "x\0y",
                           "ab ab AB", "\xff\xfe ok \xc3", "Straße", "fox\" OR \"dog", "\x1f\x1f\"\x1f"};
    size_t lens[] = {48, 19, 3, 8, 8, strlen("Straße"), 14, 5};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *q = idx_fts_query(s, cases[i], lens[i]);
        REQUIRE(q);
        CHECK(only_verbatim_terms(q), "case %zu gives %s", i, q);
        free(q);
    }
    char *q = idx_fts_query(s, "\"\"\" ((( ))) *** ---", 19);
    CHECK_EQ_STR(q, "");
    free(q);
    q = idx_fts_query(s, "ab ab AB", 8);
    CHECK_EQ_STR(q, "\"\x1f" "ab\"");
    free(q);
    q = idx_fts_query(s, "Running dogs", 12);
    CHECK_EQ_STR(q, "\"\x1f" "run\" OR \"\x1f" "dog\"");
    free(q);
    idx_close(s);
}

TEST(raw_phrase_and_prefix_queries_work) {
    idx_store *s = open_ok(test_tmpdir());
    REQUIRE(s);
    int64_t a, b;
    REQUIRE(put_text(s, "a.md", "Der Urlaub wird mit dem Team abgestimmt, der Urlaub im Sommer auch.", NULL, &a) == 0);
    REQUIRE(put_text(s, "b.md", "Ihr Urlaubsanspruch wird vom Team geprüft und der Anspruch bestätigt.", NULL, &b) == 0);
    REQUIRE(put_text(s, "c.md", "Der Anspruch auf Urlaub besteht nach der Probezeit und wird geprüft.", NULL, NULL) == 0);
    REQUIRE(put_text(s, "d.md", "Im Urlaub ist der Anspruch auf Erholung hoch und der Urlaub wichtig.", NULL, NULL) == 0);
    REQUIRE(retune(s, "corpus") == 0);
    sqlite3 *db = idx_debug_db(s);
    REQUIRE(db);
    struct { const char *match; int want; int64_t first; } cases[] = {
        {"\"Team abgestimmt\"", 1, 0},          /* phrase, analysed like the document */
        {"\"Teams abstimmen\"", 0, 0},          /* abgestimmt/abstimmen: other stems */
        {"\"urlaubsanspruch wird\"", 1, 0},     /* phrase over a compound */
        {"\"anspruch wird\"", 1, 0},            /* a colocated part inside a phrase */
        {"urlaubsan*", 1, 0},                   /* prefix of the whole word */
        {"anspr*", 3, 0},                       /* prefix matches colocated parts too */
        {"NEAR(urlaub team, 3)", 2, 0},        /* the compound part too */
    };
    cases[0].first = a;
    cases[2].first = b;
    cases[3].first = b;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sqlite3_stmt *st = NULL;
        REQUIRE(sqlite3_prepare_v2(db, "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?1 ORDER BY rowid", -1, &st, NULL) == SQLITE_OK);
        sqlite3_bind_text(st, 1, cases[i].match, -1, SQLITE_STATIC);
        int n = 0, rc;
        int64_t first = 0;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) { if (!n) first = sqlite3_column_int64(st, 0); n++; }
        CHECK(rc == SQLITE_DONE, "%s: %s", cases[i].match, sqlite3_errmsg(db));
        CHECK(n == cases[i].want, "%s: %d rows, want %d", cases[i].match, n, cases[i].want);
        if (cases[i].first) CHECK(first == cases[i].first, "%s: first %lld", cases[i].match, (long long)first);
        sqlite3_finalize(st);
    }
    idx_close(s);
}

/* Issue 10, item 4: a caller's BM25 score must not depend on documents the
 * caller cannot see. The attacker, a public caller, watches the score of a
 * public document for a word while the owner of a hidden document adds the
 * word to it, or removes it. */
/* A query word no visible chunk holds is searched with the closest terms
 * of the index in spelling (misspellings), chosen from what the caller can
 * see only. */
TEST(bm25_misspelt_words_find_their_term) {
    const char *pub[] = {
        "Ctenophores are marine animals; fossils of ctenophores are about 500 million years old.",
        "The Treaty of Maastricht was signed in 1992 and founded the European Union.",
        "Lunch in the canteen is served from noon until two.",
        "The parking garage closes at ten in the evening.",
    };
    char da[600], db[600];
    snprintf(da, sizeof da, "%s/fz-a", test_tmpdir());
    snprintf(db, sizeof db, "%s/fz-b", test_tmpdir());
    idx_store *a = open_ok(da), *b = open_ok(db);
    REQUIRE(a && b);
    int64_t cten = 0, maas = 0;
    for (int i = 0; i < 4; i++) {
        char uri[16];
        snprintf(uri, sizeof uri, "p%d.md", i);
        REQUIRE(put_text(a, uri, pub[i], NULL, i == 0 ? &cten : i == 1 ? &maas : NULL) == 0);
        REQUIRE(put_text(b, uri, pub[i], NULL, NULL) == 0);
    }
    idx_hit h[8], g[8];
    int n = 0, m = 0;
    /* one or two edits, by length; the right chunk first */
    const char *typos[] = {"ctenophhores", "ctenphores fossils", "How old are ctenohores?", "When was the Maastrich Treaty signed?"};
    for (int i = 0; i < 4; i++) {
        REQUIRE(idx_search_bm25(a, typos[i], strlen(typos[i]), 8, NULL, h, &n) == IDX_OK);
        CHECK(n >= 1 && h[0].chunk_id == (i < 3 ? cten : maas), "\"%s\": %d hits, first %lld", typos[i], n,
              n ? (long long)h[0].chunk_id : 0LL);
    }
    /* a word that is in the index is not expanded, nor one too far off, nor
     * a short one */
    CHECK_EQ_INT(bm25_n(a, "ctenodxyzores", NULL), 0);
    CHECK_EQ_INT(bm25_n(a, "lunc", NULL), 0);
    REQUIRE(idx_search_bm25(a, "canteen", 7, 8, NULL, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 1);
    /* hidden documents: one holds the misspelt word itself, one a closer
     * or equally close spelling. For a public caller the word is still
     * unknown and only visible terms join: the same hits and scores as an
     * index without the hidden documents. */
    REQUIRE(put_text(a, "hr/1.md", "The ctenphores budget, ctenophorez and the Maastrict file.", "hr", NULL) == 0);
    REQUIRE(put_text(a, "hr/2.md", "ctenophhores ctenophhores, salaries", "hr", NULL) == 0);
    const char *pg[] = {"public"};
    idx_filter pf = {pg, 1};
    const char *qs[] = {"ctenophhores", "ctenphores fossils", "ctenophorez", "Maastrich Treaty", "Maastrict"};
    for (int i = 0; i < 5; i++) {
        REQUIRE(idx_search_bm25(a, qs[i], strlen(qs[i]), 8, &pf, h, &n) == IDX_OK);
        REQUIRE(idx_search_bm25(b, qs[i], strlen(qs[i]), 8, NULL, g, &m) == IDX_OK);
        bool same = n == m;
        for (int k = 0; same && k < n; k++) same = h[k].score == g[k].score;
        CHECK(same && n >= 1, "\"%s\": public caller %d hits (%.9g), public-only index %d hits (%.9g)", qs[i], n,
              n ? h[0].score : 0.0, m, m ? g[0].score : 0.0);
    }
    /* nothing matches, nothing near: no hits, no error (fuzz_index_fts
     * found the empty sort under UBSan) */
    const char *none[] = {"qqq", "qqqqqqq", "xyzzyx plugh"};
    for (int i = 0; i < 3; i++) {
        REQUIRE(idx_search_bm25(a, none[i], strlen(none[i]), 8, &pf, h, &n) == IDX_OK);
        CHECK_EQ_INT(n, 0);
        REQUIRE(idx_search_bm25(a, none[i], strlen(none[i]), 8, NULL, h, &n) == IDX_OK);
        CHECK_EQ_INT(n, 0);
    }
    /* the owner sees the hidden chunk that holds the word as written */
    REQUIRE(idx_search_bm25(a, "ctenophhores", 12, 8, NULL, h, &n) == IDX_OK);
    CHECK(n >= 1, "owner: %d hits", n);
    /* a read-only reader, and a search inside an open transaction, do the
     * same */
    idx_params rp = idx_default_params();
    rp.read_only = true;
    idx_store *ro = NULL;
    REQUIRE(idx_open(db, &rp, &ro) == IDX_OK, "%s", idx_errmsg(ro));
    REQUIRE(idx_search_bm25(ro, "ctenphores", 10, 8, NULL, g, &m) == IDX_OK, "%s", idx_errmsg(ro));
    CHECK(m == 1, "read-only reader: %d hits", m);
    idx_close(ro);
    REQUIRE(idx_begin(b) == IDX_OK);
    REQUIRE(idx_search_bm25(b, "Maastrich", 9, 8, NULL, g, &m) == IDX_OK, "%s", idx_errmsg(b));
    CHECK(m == 1, "in a transaction: %d hits", m);
    REQUIRE(idx_commit(b) == IDX_OK);
    idx_close(a);
    idx_close(b);
}

/* The hits of q as a caller with filter f (NULL = owner): ids and scores. */
static int search_ids(idx_store *s, const char *q, const idx_filter *f, idx_hit *h, int *n) {
    int rc = idx_search_bm25(s, q, strlen(q), 8, f, h, n);
    if (rc) printf("  # bm25 \"%s\": %s\n", q, idx_errmsg(s));
    return rc;
}

/* The same hits, scores bit for bit, as a fresh reader of the same index
 * (no cache) gets: what a search cache must always give. */
static bool same_as_fresh(idx_store *s, const char *dir, const char *q, const idx_filter *f, const char *what) {
    idx_hit a[8], b[8];
    int na = -1, nb = -2;
    idx_params rp = idx_default_params();
    rp.read_only = true;
    idx_store *fresh = NULL;
    if (idx_open(dir, &rp, &fresh) != IDX_OK) { printf("  # reopen: %s\n", idx_errmsg(fresh)); idx_close(fresh); return false; }
    bool ok = search_ids(s, q, f, a, &na) == IDX_OK && search_ids(fresh, q, f, b, &nb) == IDX_OK && na == nb;
    for (int i = 0; ok && i < na; i++) ok = a[i].chunk_id == b[i].chunk_id && a[i].score == b[i].score;
    if (!ok) {
        printf("  # %s: %d hits vs %d from a fresh reader\n", what, na, nb);
        for (int i = 0; i < na && i < nb; i++)
            printf("  #   %lld %.9g | %lld %.9g\n", (long long)a[i].chunk_id, a[i].score, (long long)b[i].chunk_id, b[i].score);
    }
    idx_close(fresh);
    return ok;
}

/* The search caches (row lengths, access classes, per-class term
 * frequencies) are keyed on the database state: writes by this connection
 * (committed or rolled back), commits by another one, in-place edits and a
 * retune all show at once, and a public caller's scores never take in a
 * hidden document. */
TEST(bm25_search_cache_follows_every_change) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/cache", test_tmpdir());
    idx_store *w = open_ok(dir);
    REQUIRE(w);
    REQUIRE(put_text(w, "a.md", "The quarterly budget review is held in the large meeting room.", NULL, NULL) == 0);
    REQUIRE(put_text(w, "b.md", "Budget owners report the quarterly numbers to finance.", NULL, NULL) == 0);
    REQUIRE(put_text(w, "c.md", "Parking permits are issued every month.", NULL, NULL) == 0);
    REQUIRE(put_text(w, "hr/x.md", "Salary bands and the budget of the team.", "hr", NULL) == 0);
    const char *other[] = {"Lunch is served at noon.", "The printer on the third floor is broken.",
                           "Holiday requests go to the team lead.", "Visitors sign in at the front desk.",
                           "The wifi password changes every week."};
    for (int i = 0; i < 5; i++) {
        char uri[16];
        snprintf(uri, sizeof uri, "o%d.md", i);
        REQUIRE(put_text(w, uri, other[i], NULL, NULL) == 0);
    }
    /* a reader in the same process, like a second mrag process */
    idx_params rp = idx_default_params();
    rp.read_only = true;
    idx_store *r = NULL;
    REQUIRE(idx_open(dir, &rp, &r) == IDX_OK, "%s", idx_errmsg(r));
    const char *pg[] = {"public"}, *hg[] = {"hr"};
    idx_filter pub = {pg, 1}, hr = {hg, 1};
    const idx_filter *callers[] = {NULL, &pub, &hr};
    const char *q = "quarterly budget";
    idx_hit h[8];
    int n;
    for (int c = 0; c < 3; c++) {       /* fill both caches */
        REQUIRE(search_ids(w, q, callers[c], h, &n) == IDX_OK);
        REQUIRE(search_ids(r, q, callers[c], h, &n) == IDX_OK);
    }
    REQUIRE(search_ids(r, q, &pub, h, &n) == IDX_OK && n == 2);
    float pub0 = h[0].score;
#define ALL_FRESH(what)                                                                  \
    for (int c = 0; c < 3; c++) {                                                        \
        CHECK(same_as_fresh(w, dir, q, callers[c], what), "writer, caller %d: %s", c, what); \
        CHECK(same_as_fresh(r, dir, q, callers[c], what), "reader, caller %d: %s", c, what); \
    }
    /* 1. a hidden document gains the words: committed by the writer, seen
     * by the reader's next search (another connection's commit) */
    REQUIRE(put_text(w, "hr/x.md", "quarterly budget quarterly budget quarterly budget for the team", "hr", NULL) == 0);
    ALL_FRESH("hidden document edited");
    REQUIRE(search_ids(r, q, &pub, h, &n) == IDX_OK && n == 2);
    CHECK(h[0].score == pub0, "public score %.9g, was %.9g", h[0].score, pub0);
    /* 2. a public document is added: everyone's statistics change */
    REQUIRE(put_text(w, "d.md", "The budget is approved by the board each quarter; the quarterly plan follows.", NULL, NULL) == 0);
    ALL_FRESH("public document added");
    REQUIRE(search_ids(r, q, &pub, h, &n) == IDX_OK && n == 3);
    CHECK(h[0].score != pub0 || h[1].score != pub0, "the public caller's statistics changed");
    /* 3. an in-place edit of a public chunk changes its length */
    REQUIRE(put_text(w, "a.md", "The quarterly budget review is held in the large meeting room on the second floor "
                                "of the old building next to the library and the canteen.", NULL, NULL) == 0);
    ALL_FRESH("public chunk edited");
    /* 4. inside a transaction the writer sees its own changes; after the
     * rollback none of them stays in any cache */
    REQUIRE(idx_begin(w) == IDX_OK);
    REQUIRE(put_text(w, "e.md", "quarterly budget quarterly budget", NULL, NULL) == 0);
    REQUIRE(put_text(w, "hr/y.md", "quarterly budget, hidden", "hr", NULL) == 0);
    REQUIRE(search_ids(w, q, &pub, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 4);
    REQUIRE(idx_rollback(w) == IDX_OK);
    ALL_FRESH("after a rollback");
    REQUIRE(search_ids(w, q, &pub, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 3);
    /* 5. regrouped to public, deleted, retuned */
    REQUIRE(idx_doc_set_groups(w, "hr/x.md", "") == IDX_OK);
    ALL_FRESH("hidden document made public");
    REQUIRE(idx_doc_delete(w, "b.md") == IDX_OK);
    ALL_FRESH("public document deleted");
    idx_fts_params fp = {.force = true};
    REQUIRE(idx_fts_retune(w, &fp, NULL) == IDX_OK);
    ALL_FRESH("after a retune");
#undef ALL_FRESH
    idx_close(r);
    idx_close(w);
}

TEST(bm25_public_scores_ignore_hidden_documents) {
    idx_store *s = open_ok(test_tmpdir());
    REQUIRE(s);
    int64_t pub = 0;
    REQUIRE(put_text(s, "pub.md", "The canteen serves lunch at noon; the quarterly budget meeting is on Friday.", NULL, &pub) == 0);
    REQUIRE(put_text(s, "pub2.md", "Parking permits are issued by the facilities team every month.", NULL, NULL) == 0);
    REQUIRE(put_text(s, "hr/salaries.md", "Salary bands for the engineering team: senior and staff levels.", "hr", NULL) == 0);
    REQUIRE(put_text(s, "board/minutes.md", "Board minutes: the acquisition was discussed in detail.", "board, hr", NULL) == 0);
    const char *pub_groups[] = {"public"};
    idx_filter outsider = {pub_groups, 1};
    const char *fin_groups[] = {"finance"};
    idx_filter finance = {fin_groups, 1};
    const char *q = "quarterly budget";
    idx_hit h[4];
    int n = 0;
    float base_pub, base_fin, owner0, owner1 = 0;
    REQUIRE(idx_search_bm25(s, q, strlen(q), 4, &outsider, h, &n) == IDX_OK && n == 1 && h[0].chunk_id == pub);
    base_pub = h[0].score;
    REQUIRE(idx_search_bm25(s, q, strlen(q), 4, &finance, h, &n) == IDX_OK && n == 1);
    base_fin = h[0].score;
    CHECK(base_pub == base_fin, "same visible set, same score");
    REQUIRE(idx_search_bm25(s, q, strlen(q), 4, NULL, h, &n) == IDX_OK && n == 1);
    owner0 = h[0].score;
    /* the hidden document gains the words (many times), then loses them */
    const char *edits[] = {
        "Salary bands: the quarterly budget, quarterly budget and budget again for the team.",
        "Salary bands for the engineering team: senior and staff levels only.",
        "quarterly budget quarterly budget quarterly budget quarterly budget quarterly budget",
    };
    for (size_t e = 0; e < sizeof edits / sizeof *edits; e++) {
        REQUIRE(put_text(s, "hr/salaries.md", edits[e], "hr", NULL) == 0);
        REQUIRE(idx_search_bm25(s, q, strlen(q), 4, &outsider, h, &n) == IDX_OK && n >= 1);
        CHECK(h[0].chunk_id == pub && h[0].score == base_pub, "edit %zu: public score %.9g, was %.9g", e, h[0].score, base_pub);
        REQUIRE(idx_search_bm25(s, q, strlen(q), 4, &finance, h, &n) == IDX_OK && n >= 1);
        CHECK(h[0].score == base_fin, "edit %zu: finance caller's score %.9g, was %.9g", e, h[0].score, base_fin);
    }
    /* the owner sees everything: their statistics do change */
    REQUIRE(idx_search_bm25(s, q, strlen(q), 4, NULL, h, &n) == IDX_OK && n == 2);
    for (int i = 0; i < n; i++) if (h[i].chunk_id == pub) owner1 = h[i].score;
    CHECK(owner1 != owner0, "owner's statistics include the hidden document (%.9g vs %.9g)", owner1, owner0);
    /* regrouped, a new hidden document, deleted */
    REQUIRE(idx_doc_set_groups(s, "hr/salaries.md", "board") == IDX_OK);
    REQUIRE(put_text(s, "legal/case.md", "The quarterly budget dispute with the landlord.", "legal", NULL) == 0);
    REQUIRE(idx_search_bm25(s, q, strlen(q), 4, &outsider, h, &n) == IDX_OK && n == 1);
    CHECK(h[0].score == base_pub, "after regroup and a new hidden document: %.9g vs %.9g", h[0].score, base_pub);
    REQUIRE(idx_doc_delete(s, "hr/salaries.md") == IDX_OK);
    REQUIRE(idx_search_bm25(s, q, strlen(q), 4, &outsider, h, &n) == IDX_OK && n == 1);
    CHECK(h[0].score == base_pub, "after delete: %.9g vs %.9g", h[0].score, base_pub);
    const char *legal[] = {"legal"};
    idx_filter lf = {legal, 1};
    REQUIRE(idx_search_bm25(s, q, strlen(q), 4, &lf, h, &n) == IDX_OK && n == 2);
    /* the same visible set in a public-only index gives the same score: the
     * hidden documents' statistics are fully taken out */
    idx_store *p = open_ok(test_tmpdir());
    REQUIRE(p);
    REQUIRE(put_text(p, "pub.md", "The canteen serves lunch at noon; the quarterly budget meeting is on Friday.", NULL, NULL) == 0);
    REQUIRE(put_text(p, "pub2.md", "Parking permits are issued by the facilities team every month.", NULL, NULL) == 0);
    REQUIRE(idx_search_bm25(p, q, strlen(q), 4, NULL, h, &n) == IDX_OK && n == 1);
    CHECK(h[0].score == base_pub, "public-only index %.9g vs filtered %.9g", h[0].score, base_pub);
    CHECK_EQ_INT(idx_check(s), IDX_OK);
    idx_close(p);
    idx_close(s);
}

/* An index of schema 2 (FTS5 with unicode61, no word list, no class
 * statistics) opens as schema 3: the FTS table is rebuilt with the new
 * tokenizer, the class statistics are filled, vectors are untouched. */
TEST(schema_2_index_migrates_without_reembedding) {
    const char *dir = test_tmpdir();
    idx_store *s = open_ok(dir);
    REQUIRE(s);
    float v[2 * 4] = {1, 0, 0, 0, 0, 1, 0, 0};
    idx_chunk c[2] = {{.ordinal = 0, .text = "They run every morning.", .text_len = 23},
                      {.ordinal = 1, .text = "Salaries of the running team.", .text_len = 29}};
    idx_doc d = {.uri = "a.md"};
    REQUIRE(idx_doc_put(s, &d, c, 1, v, 4, NULL) == IDX_OK);
    idx_doc h = {.uri = "hr.md", .groups = "hr"};
    REQUIRE(idx_doc_put(s, &h, c + 1, 1, v + 4, 4, NULL) == IDX_OK);
    REQUIRE(idx_save(s) == IDX_OK);
    int64_t *ids0 = NULL;
    size_t n0 = 0;
    REQUIRE(idx_debug_vector_ids(s, &ids0, &n0) == IDX_OK && n0 == 2);
    /* back to what schema 2 had */
    sqlite3 *db = idx_debug_db(s);
    static const char *const downgrade =
        "DROP TABLE chunks_fts_instance; DROP TABLE chunks_fts; DROP TABLE fts_words; DROP TABLE fts_cls; DROP TABLE fts_cls_df;"
        "DELETE FROM meta WHERE key LIKE 'idx.fts.%';"
        "CREATE VIRTUAL TABLE chunks_fts USING fts5(heading, text, content='chunks', content_rowid='id',"
        "  tokenize='unicode61 remove_diacritics 2');"
        "INSERT INTO chunks_fts(chunks_fts) VALUES('rebuild');"
        "CREATE VIRTUAL TABLE chunks_fts_instance USING fts5vocab(chunks_fts, instance);"
        "PRAGMA user_version = 2; UPDATE meta SET value = '2' WHERE key = 'idx.schema_version';";
    REQUIRE(sqlite3_exec(db, downgrade, NULL, NULL, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(db));
    REQUIRE(test_vectors_to_f32(db) == SQLITE_OK, "%s", sqlite3_errmsg(db));
    idx_close(s);
    s = open_ok(dir);
    REQUIRE(s);
    /* the FTS step leaves vectors alone; the float16 step (schema 4)
     * converts them and rebuilds FAISS from the converted values */
    CHECK(idx_notice(s) && strstr(idx_notice(s), "stale"), "FAISS rebuilt after the float16 step: %s",
          idx_notice(s) ? idx_notice(s) : "none");
    db = idx_debug_db(s);
    sqlite3_stmt *st;
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_INT(sqlite3_column_int(st, 0), 4);
    sqlite3_finalize(st);
    int64_t *ids1 = NULL;
    size_t n1 = 0;
    REQUIRE(idx_debug_vector_ids(s, &ids1, &n1) == IDX_OK);
    CHECK(n1 == n0 && memcmp(ids0, ids1, n0 * sizeof *ids0) == 0, "same vectors");
    float back[4];
    REQUIRE(idx_chunk_vector(s, ids1[0], back, 4) == IDX_OK);
    CHECK(back[0] == 1 && back[1] == 0, "vector kept");
    int64_t first = 0;
    CHECK(bm25_n(s, "running", &first) == 2, "stemmed after the migration");
    const char *pub[] = {"public"};
    idx_filter f = {pub, 1};
    idx_hit hh[2];
    int n = 0;
    REQUIRE(idx_search_bm25(s, "running", 7, 2, &f, hh, &n) == IDX_OK);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(idx_check(s), IDX_OK);     /* class statistics filled */
    /* an index analysed by another analyzer version is rebuilt on open */
    REQUIRE(sqlite3_exec(idx_debug_db(s), "UPDATE meta SET value = '0' WHERE key = 'idx.fts.analyzer'", NULL, NULL, NULL) == SQLITE_OK);
    idx_close(s);
    s = open_ok(dir);
    REQUIRE(s);
    CHECK(idx_notice(s) && strstr(idx_notice(s), "rebuilt"), "notice: %s", idx_notice(s) ? idx_notice(s) : "none");
    CHECK(bm25_n(s, "running", NULL) == 2);
    CHECK_EQ_INT(idx_check(s), IDX_OK);
    free(ids0);
    free(ids1);
    idx_close(s);
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

/* Query-side German synonyms from a thesaurus in OpenThesaurus text format
 * (a small file written here; the Debian package's is checked below when
 * installed). Pairs that must meet (a question word and the passage's
 * synonym), a synonym that must rank below the word itself, an English
 * query whose word is a German thesaurus entry ("rat", German "Rat" =
 * advice) that must not be expanded, multi-word entries skipped, a synonym
 * only hidden documents hold never joining, and off / missing file = the
 * search as before. */
TEST(german_synonyms_from_a_thesaurus) {
    char dir[600], db[600], thes[600];
    snprintf(dir, sizeof dir, "%s/syn-a", test_tmpdir());
    snprintf(db, sizeof db, "%s/syn-b", test_tmpdir());
    snprintf(thes, sizeof thes, "%s/thes.txt", test_tmpdir());
    FILE *f = fopen(thes, "w");
    REQUIRE(f);
    fputs("# a thesaurus in OpenThesaurus text format\n"
          "Hochrüstung;Upgrade;Aktualisierung\n"
          "Arbeitsfläche;Desktop;Schreibtischoberfläche (fachspr.);Bildschirmoberfläche;Benutzeroberfläche\n"
          "Rat;Ratschlag;Empfehlung (ugs.)\n"
          "(etwas) in Angriff nehmen;anpacken\n"
          "Wagen;Auto;Kraftfahrzeug;Deputat...\n", f);
    fclose(f);
    const char *pub[] = {
        "Vor der Hochrüstung zur neuen stabilen Version sind die Hinweise zur Veröffentlichung zu lesen.",
        "Die Arbeitsfläche zeigt Symbole für Dateien und Programme.",
        "Das Upgrade des Servers dauert eine Stunde und beginnt um acht Uhr.",
        "Eine Empfehlung des Arztes lautet, viel Wasser zu trinken.",
        "Im Keller lagern die Vorräte für den Winter.",
        "Der Wagen steht in der Garage neben dem Haus.",
    };
    idx_store *a = open_ok(dir), *b = open_ok(db);
    REQUIRE(a && b);
    int64_t id[6];
    for (int i = 0; i < 6; i++) {
        char uri[16];
        snprintf(uri, sizeof uri, "p%d.md", i);
        REQUIRE(put_text(a, uri, pub[i], NULL, &id[i]) == 0);
        REQUIRE(put_text(b, uri, pub[i], NULL, NULL) == 0);
    }
    REQUIRE(retune(a, "off") == 0);
    REQUIRE(retune(b, "off") == 0);
    REQUIRE(idx_set_thesaurus(a, thes) == IDX_OK);
    REQUIRE(idx_set_thesaurus(b, thes) == IDX_OK);
    idx_thesaurus_status ts;
    REQUIRE(idx_thesaurus_info(a, &ts) == IDX_OK);
    /* the multi-word set keeps one word: no set; "Deputat..." skipped */
    CHECK(ts.sets == 4 && ts.note[0] == 0, "sets %zu (want 4), note \"%s\"", ts.sets, ts.note);
    idx_hit h[8], g[8];
    int n = 0, m = 0;
    /* meet: the question's word is a synonym of the passage's */
    struct { const char *q; int want; } meet[] = {
        {"Was ist vor einer Hochrüstung zu beachten?", 0},   /* own word */
        {"Wo parkt das Auto?", 5},
        {"Was liegt auf dem Desktop?", 1},
        {"Welchen Ratschlag gibt der Doktor?", 3},
    };
    for (size_t i = 0; i < sizeof meet / sizeof *meet; i++) {
        REQUIRE(idx_search_bm25(a, meet[i].q, strlen(meet[i].q), 8, NULL, h, &n) == IDX_OK, "%s", idx_errmsg(a));
        CHECK(n >= 1 && h[0].chunk_id == id[meet[i].want], "\"%s\": %d hits, first %lld (want %lld)", meet[i].q, n,
              n ? (long long)h[0].chunk_id : 0LL, (long long)id[meet[i].want]);
    }
    /* the word itself outranks its synonym: "Upgrade" is in p2 as written,
     * in p0 as "Hochrüstung" */
    REQUIRE(idx_search_bm25(a, "Wann kommt das Upgrade?", 23, 8, NULL, h, &n) == IDX_OK);
    CHECK(n == 2 && h[0].chunk_id == id[2] && h[1].chunk_id == id[0] && h[0].score > 1.5 * h[1].score,
          "%d hits, first %lld (%.3f), second %lld (%.3f)", n, n ? (long long)h[0].chunk_id : 0LL, n ? h[0].score : 0.0,
          n > 1 ? (long long)h[1].chunk_id : 0LL, n > 1 ? h[1].score : 0.0);
    /* an English question is never expanded: "rat" is German "Rat"
     * (advice) too, and would meet "Empfehlung" */
    const char *en = "Where did the rat run in the kitchen?";
    REQUIRE(idx_search_bm25(a, en, strlen(en), 8, NULL, h, &n) == IDX_OK);
    CHECK(n == 0, "English question: %d hits, first %lld", n, n ? (long long)h[0].chunk_id : 0LL);
    /* a German question with that word is */
    REQUIRE(idx_search_bm25(a, "Welchen Rat gibt der Doktor?", 28, 8, NULL, h, &n) == IDX_OK);
    CHECK(n >= 1 && h[0].chunk_id == id[3], "German Rat: %d hits, first %lld", n, n ? (long long)h[0].chunk_id : 0LL);
    /* a synonym only hidden documents hold never joins: the public caller
     * gets exactly what an index without them gives */
    /* (more hidden chunks hold the hidden synonyms than visible ones hold
     * "Arbeitsfläche": counted with hidden chunks, they would take every
     * place and the visible synonym none) */
    REQUIRE(put_text(a, "hr/1.md", "Die Aktualisierung der Gehälter, Schreibtischoberfläche, Bildschirmoberfläche, Benutzeroberfläche.", "hr", NULL) == 0);
    REQUIRE(put_text(a, "hr/2.md", "Schreibtischoberfläche, Bildschirmoberfläche und Benutzeroberfläche der Personalakte.", "hr", NULL) == 0);
    const char *pg[] = {"public"};
    idx_filter pf = {pg, 1};
    const char *qs[] = {"Wann kommt das Upgrade?", "Was liegt auf dem Desktop?", "Was ist vor einer Hochrüstung zu beachten?"};
    for (int i = 0; i < 3; i++) {
        REQUIRE(idx_search_bm25(a, qs[i], strlen(qs[i]), 8, &pf, h, &n) == IDX_OK);
        REQUIRE(idx_search_bm25(b, qs[i], strlen(qs[i]), 8, NULL, g, &m) == IDX_OK);
        bool same = n == m;
        for (int k = 0; same && k < n; k++) same = h[k].score == g[k].score && h[k].chunk_id == g[k].chunk_id;
        CHECK(same && n >= 1, "\"%s\": public caller %d hits (%.9g), public-only index %d hits (%.9g)", qs[i], n,
              n ? h[0].score : 0.0, m, m ? g[0].score : 0.0);
    }
    /* the owner sees them: the hidden chunks join through the most
     * frequent synonym (each hidden chunk holds all three) */
    REQUIRE(idx_search_bm25(a, "Was liegt auf dem Desktop?", 26, 8, NULL, h, &n) == IDX_OK);
    CHECK_EQ_INT(n, 2);
    /* off, and a missing file: the search as without synonyms, and why */
    REQUIRE(idx_set_thesaurus(b, "") == IDX_OK);
    CHECK_EQ_INT(bm25_n(b, "Wo parkt das Auto?", NULL), 0);
    REQUIRE(idx_thesaurus_info(b, &ts) == IDX_OK);
    CHECK(ts.sets == 0 && strstr(ts.note, "off"), "off: %zu sets, \"%s\"", ts.sets, ts.note);
    char missing[700];
    snprintf(missing, sizeof missing, "%s/no-such-thesaurus.txt", test_tmpdir());
    REQUIRE(idx_set_thesaurus(b, missing) == IDX_OK);
    CHECK_EQ_INT(bm25_n(b, "Wo parkt das Auto?", NULL), 0);
    REQUIRE(idx_thesaurus_info(b, &ts) == IDX_OK);
    CHECK(ts.sets == 0 && strstr(ts.note, "no-such-thesaurus.txt") && strstr(ts.note, "No such file"), "missing: \"%s\"", ts.note);
    /* the Debian package's thesaurus, when installed (openthesaurus-de-text) */
    REQUIRE(idx_set_thesaurus(b, NULL) == IDX_OK);
    if (access("/usr/share/openthesaurus-de/openthesaurus.txt", R_OK) == 0) {
        REQUIRE(idx_thesaurus_info(b, &ts) == IDX_OK);
        CHECK(ts.sets > 20000 && ts.note[0] == 0, "package thesaurus: %zu sets, \"%s\"", ts.sets, ts.note);
        int64_t first = 0;
        CHECK(bm25_n(b, "Wo parkt das Auto?", &first) >= 1 && first == id[5], "package thesaurus: Auto/Wagen, first %lld",
              (long long)first);
    } else {
        printf("  # /usr/share/openthesaurus-de/openthesaurus.txt absent (Debian package openthesaurus-de-text): "
               "package thesaurus not checked\n");
    }
    idx_close(a);
    idx_close(b);
}

/* The synonym candidates' frequencies stay cached between searches; a write
 * must empty that cache, or the synonym chosen before it (the most frequent
 * then) would stay chosen after other documents made another one more
 * frequent. */
TEST(german_synonym_choice_follows_writes) {
    char dir[600], thes[600];
    snprintf(dir, sizeof dir, "%s/syn-c", test_tmpdir());
    snprintf(thes, sizeof thes, "%s/thes-c.txt", test_tmpdir());
    FILE *f = fopen(thes, "w");
    REQUIRE(f);
    fputs("Wagen;Auto;Kraftfahrzeug\n", f);
    fclose(f);
    idx_store *s = open_ok(dir);
    REQUIRE(s);
    int64_t wagen = 0, kfz1 = 0, kfz2 = 0;
    REQUIRE(put_text(s, "a.md", "Der Wagen steht in der Garage neben dem Haus.", NULL, &wagen) == 0);
    REQUIRE(put_text(s, "b.md", "Im Keller lagern die Vorräte für den Winter.", NULL, NULL) == 0);
    REQUIRE(retune(s, "off") == 0);
    REQUIRE(idx_set_thesaurus(s, thes) == IDX_OK);
    const char *q = "Wo parkt das Auto?";
    idx_hit h[8];
    int n = 0;
    /* twice: the second search answers from the cached frequencies */
    for (int i = 0; i < 2; i++) {
        REQUIRE(idx_search_bm25(s, q, strlen(q), 8, NULL, h, &n) == IDX_OK, "%s", idx_errmsg(s));
        CHECK(n == 1 && h[0].chunk_id == wagen, "before, search %d: %d hits, first %lld (want %lld)", i, n,
              n ? (long long)h[0].chunk_id : 0LL, (long long)wagen);
    }
    /* now "Kraftfahrzeug" is the more frequent synonym of "Auto" */
    REQUIRE(put_text(s, "c.md", "Das Kraftfahrzeug braucht neue Reifen für den Winter.", NULL, &kfz1) == 0);
    REQUIRE(put_text(s, "d.md", "Ein Kraftfahrzeug muss alle zwei Jahre zur Prüfung.", NULL, &kfz2) == 0);
    REQUIRE(idx_search_bm25(s, q, strlen(q), 8, NULL, h, &n) == IDX_OK, "%s", idx_errmsg(s));
    bool got1 = false, got2 = false, got_wagen = false;
    for (int k = 0; k < n; k++) {
        got1 |= h[k].chunk_id == kfz1;
        got2 |= h[k].chunk_id == kfz2;
        got_wagen |= h[k].chunk_id == wagen;
    }
    CHECK(n == 2 && got1 && got2 && !got_wagen, "after the write: %d hits (want the two Kraftfahrzeug chunks, not the Wagen one)", n);
    idx_close(s);
}

TEST_MAIN(RUN(bm25_ranks_the_right_chunk_first), RUN(german_stems_umlauts_eszett_and_transliteration),
          RUN(english_stems_and_folds), RUN(german_compounds_from_the_corpus), RUN(german_compounds_from_the_dictionary),
          RUN(german_verb_stems_participles_and_fewer_parts),
          RUN(fts_query_is_only_verbatim_terms), RUN(raw_phrase_and_prefix_queries_work),
          RUN(bm25_public_scores_ignore_hidden_documents), RUN(bm25_search_cache_follows_every_change), RUN(no_word_stems_to_nothing), RUN(bm25_misspelt_words_find_their_term), RUN(schema_2_index_migrates_without_reembedding),
          RUN(hostile_queries_never_error), RUN(group_filter_before_ranking), RUN(german_synonyms_from_a_thesaurus),
          RUN(german_synonym_choice_follows_writes))
