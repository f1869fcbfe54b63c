/* test_rag_access.c — access rules (rag/access.c): format, first match,
 * globs, wiki rules, errors naming file:line; folder ingest with rules
 * (groups stored, regrouped without re-embedding, runs without the rules
 * refused); retrieval and answering as callers with groups: restricted text
 * never returned or prompted, even when it outranks the public text. */
#include "tests/test.h"

#include "index/index.h"
#include "llm/llm.h"
#include "rag/rag.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static rag_access *parse(const char *text) {
    rag_access *a = NULL;
    char err[512] = "";
    int rc = rag_access_parse("t.rules", text, strlen(text), &a, err, sizeof err);
    REQUIRE(rc == RAG_OK && a, "%s", err);
    return a;
}

/* The error message of a rules text that must fail. */
static const char *parse_err(const char *text) {
    static char err[512];
    rag_access *a = NULL;
    err[0] = 0;
    int rc = rag_access_parse("bad.rules", text, strlen(text), &a, err, sizeof err);
    CHECK(rc != RAG_OK && a == NULL, "accepted: %s", text);
    rag_access_free(a);
    return err;
}

static const char example[] =
    "# the example of docs/access.md\n"
    "default   staff\n"
    "path      hr/**            hr            # ** spans folders\n"
    "namespace 100              hr\n"
    "category  Confidential     board,hr\n"
    "prefix    \"Finance/\"       finance\n"
    "path      public/**        public\n"
    "path      docs/*.md        docs, writers\n";

TEST(example_rules_first_match_and_default) {
    rag_access *a = parse(example);
    CHECK_EQ_STR(rag_access_for_path(a, "hr/pay/2024.md"), "hr");
    CHECK_EQ_STR(rag_access_for_path(a, "hr/x.md"), "hr");
    CHECK_EQ_STR(rag_access_for_path(a, "public/a/b.md"), "");
    CHECK_EQ_STR(rag_access_for_path(a, "docs/a.md"), "docs,writers");
    CHECK_EQ_STR(rag_access_for_path(a, "docs/sub/a.md"), "staff");     /* * stays in its part */
    CHECK_EQ_STR(rag_access_for_path(a, "hrx/a.md"), "staff");
    CHECK_EQ_STR(rag_access_for_path(a, "readme.md"), "staff");
    /* wiki: namespace, category (with or without the prefix, '_' = ' ',
     * first letter case-free), title prefix; path rules do not apply */
    CHECK_EQ_STR(rag_access_for_page(a, 100, "Anything", NULL, 0), "hr");
    const char *cats[] = {"Archive", "confidential"};
    CHECK_EQ_STR(rag_access_for_page(a, 0, "Main Page", cats, 2), "board,hr");
    const char *cats2[] = {"Category:Confidential"};
    CHECK_EQ_STR(rag_access_for_page(a, 0, "Main Page", cats2, 1), "board,hr");
    CHECK_EQ_STR(rag_access_for_page(a, 0, "Finance/Budget 2025", NULL, 0), "finance");
    CHECK_EQ_STR(rag_access_for_page(a, 0, "Finance/Budget_2025", NULL, 0), "finance");
    CHECK_EQ_STR(rag_access_for_page(a, 0, "Financial news", NULL, 0), "staff");
    CHECK_EQ_STR(rag_access_for_page(a, 0, "hr/x.md", NULL, 0), "staff");
    /* first match wins: namespace 100 before the category */
    CHECK_EQ_STR(rag_access_for_page(a, 100, "X", cats, 2), "hr");
    CHECK_EQ_INT(strlen(rag_access_hash(a)), 64);
    rag_access_free(a);
    /* no default: public */
    a = parse("path secret/** sec\n");
    CHECK_EQ_STR(rag_access_for_path(a, "open.md"), "");
    CHECK_EQ_STR(rag_access_for_page(a, 0, "Page", NULL, 0), "");
    rag_access_free(a);
    /* an empty file: everything public */
    a = parse("");
    CHECK_EQ_STR(rag_access_for_path(a, "x/y.md"), "");
    rag_access_free(a);
}

TEST(glob_semantics) {
    rag_access *a = parse(
        "path \"with space/*.txt\"  sp\n"
        "path **/secret.md          s1\n"
        "path a/**/z.md             s2\n"
        "path q?.md                 s3\n"
        "path [ab]x[0-9].md         s4\n"
        "path [!ab]y.md             s5\n"
        "path lit\\*.md             s6\n"
        "path /rooted/x.md          s7\n"
        "path dir/                  s8\n"
        "path *.PDF                 s9\n"
        "path ü?.md                 s10\n");
    CHECK_EQ_STR(rag_access_for_path(a, "with space/a.txt"), "sp");
    CHECK_EQ_STR(rag_access_for_path(a, "secret.md"), "s1");          /* no folder at all */
    CHECK_EQ_STR(rag_access_for_path(a, "x/y/secret.md"), "s1");
    CHECK_EQ_STR(rag_access_for_path(a, "x/notsecret.md"), "");
    CHECK_EQ_STR(rag_access_for_path(a, "a/z.md"), "s2");
    CHECK_EQ_STR(rag_access_for_path(a, "a/b/c/z.md"), "s2");
    CHECK_EQ_STR(rag_access_for_path(a, "a/bz.md"), "");
    CHECK_EQ_STR(rag_access_for_path(a, "q1.md"), "s3");
    CHECK_EQ_STR(rag_access_for_path(a, "q12.md"), "");
    CHECK_EQ_STR(rag_access_for_path(a, "q/.md"), "");                /* ? is not '/' */
    CHECK_EQ_STR(rag_access_for_path(a, "bx7.md"), "s4");
    CHECK_EQ_STR(rag_access_for_path(a, "cx7.md"), "");
    CHECK_EQ_STR(rag_access_for_path(a, "cy.md"), "s5");
    CHECK_EQ_STR(rag_access_for_path(a, "ay.md"), "");
    CHECK_EQ_STR(rag_access_for_path(a, "lit*.md"), "s6");
    CHECK_EQ_STR(rag_access_for_path(a, "litx.md"), "");
    CHECK_EQ_STR(rag_access_for_path(a, "rooted/x.md"), "s7");
    CHECK_EQ_STR(rag_access_for_path(a, "dir/a/b.md"), "s8");
    CHECK_EQ_STR(rag_access_for_path(a, "x.pdf"), "");                /* case-sensitive */
    CHECK_EQ_STR(rag_access_for_path(a, "x.PDF"), "s9");
    CHECK_EQ_STR(rag_access_for_path(a, "üß.md"), "s10");             /* ? is one character */
    rag_access_free(a);
    /* many stars against a long path: no backtracking blow-up */
    char pat[600] = "path ", path[4000];
    for (int i = 0; i < 100; i++) strcat(pat, "*a");
    strcat(pat, "b g\n");
    memset(path, 'a', sizeof path - 1);
    path[sizeof path - 1] = 0;
    a = parse(pat);
    CHECK_EQ_STR(rag_access_for_path(a, path), "");
    rag_access_free(a);
    /* paths longer than the stack buffer still match (never fall to public) */
    char *longp = malloc(9000);
    memcpy(longp, "hr/", 3);
    memset(longp + 3, 'b', 8990);
    longp[8993] = 0;
    a = parse("path hr/** hr\n");
    CHECK_EQ_STR(rag_access_for_path(a, longp), "hr");
    rag_access_free(a);
    free(longp);
}

TEST(errors_name_file_and_line) {
    const char *e;
    e = parse_err("path a/** hr\nbogus x y\n");
    CHECK(strstr(e, "bad.rules:2:") && strstr(e, "unknown rule"), "%s", e);
    e = parse_err("\n\npath hr/**\n");
    CHECK(strstr(e, "bad.rules:3:") && strstr(e, "group"), "%s", e);
    e = parse_err("prefix \"Finance/ finance\n");
    CHECK(strstr(e, "bad.rules:1:") && strstr(e, "quote"), "%s", e);
    e = parse_err("path x hr;rm\n");
    CHECK(strstr(e, "bad.rules:1:") && strstr(e, "bad character"), "%s", e);
    e = parse_err("default a\ndefault b\n");
    CHECK(strstr(e, "bad.rules:2:") && strstr(e, "second"), "%s", e);
    e = parse_err("path x public,hr\n");
    CHECK(strstr(e, "public"), "%s", e);
    e = parse_err("namespace main hr\n");
    CHECK(strstr(e, "namespace"), "%s", e);
    e = parse_err("path [abc hr\n");
    CHECK(strstr(e, "'['"), "%s", e);
    e = parse_err("path x a,,b\n");
    CHECK(strstr(e, "empty group"), "%s", e);
    e = parse_err("default\n");
    CHECK(strstr(e, "bad.rules:1:"), "%s", e);
    /* a file that does not exist names the path */
    rag_access *a = NULL;
    char err[512];
    CHECK(rag_access_load("/nonexistent/x.rules", &a, err, sizeof err) == RAG_ERR_IO && !a);
    CHECK(strstr(err, "/nonexistent/x.rules") != NULL, "%s", err);
    /* CRLF, BOM, comments, blank lines, duplicates in group lists */
    a = parse("\xef\xbb\xbf# c\r\n\r\n  path  a/**  x , y, x  # trailing\r\ncategory \"Top secret\" ts\r\n");
    CHECK_EQ_STR(rag_access_for_path(a, "a/b"), "x,y");
    CHECK_EQ_STR(rag_access_for_page(a, 0, "T", (const char *const[]){"Top_secret"}, 1), "ts");
    rag_access_free(a);
}

TEST(caller_groups_parse) {
    idx_filter f;
    CHECK_EQ_INT(rag_groups_parse("hr, finance,hr", &f), RAG_OK);
    CHECK_EQ_INT(f.n_groups, 2);
    if (f.n_groups == 2) { CHECK_EQ_STR(f.groups[0], "hr"); CHECK_EQ_STR(f.groups[1], "finance"); }
    rag_groups_free(&f);
    CHECK(f.groups == NULL && f.n_groups == 0);
    CHECK_EQ_INT(rag_groups_parse("", &f), RAG_OK);
    CHECK_EQ_INT(f.n_groups, 0);
    CHECK_EQ_INT(rag_groups_parse("public", &f), RAG_OK);
    CHECK_EQ_INT(f.n_groups, 0);
    CHECK_EQ_INT(rag_groups_parse("*", &f), RAG_ERR_ARG);
    CHECK(rag_groups_parse("a b", &f) != RAG_OK);
    CHECK(rag_groups_parse("a,\x01", &f) != RAG_OK);
    rag_groups_free(&f);
}

/* Random rule files from a soup of the format's pieces: parsing never
 * crashes (the ASan build runs this too), a failure always names the line,
 * and answers are well-formed group lists. */
static unsigned rnd_seed = 12345;
static int rnd(int n) {
    rnd_seed = rnd_seed * 1103515245u + 12345u;
    return (int)((rnd_seed >> 16) % (unsigned)n);
}

/* Valid pieces mostly, a bad one now and then. */
static const char *pick(const char *const *good, size_t ng, const char *const *bad, size_t nb) {
    return rnd(12) ? good[rnd((int)ng)] : bad[rnd((int)nb)];
}

TEST(random_rule_files_never_crash) {
    static const char *const kw[] = {"path", "namespace", "category", "prefix", "default"};
    static const char *const kw_bad[] = {"paht", "#path", "\"path\"", ""};
    static const char *const pat[] = {"**", "*", "?", "[a-c]", "[!x]", "[]]", "\\*", "/", "hr", "x/**/y", "\xc3\xbc",
                                      "\"q r\"", "100", "Category:X", "a#b"};
    static const char *const pat_bad[] = {"[", "\xff", "\"", "-3", "[z-a]", "\"x\"y"};
    static const char *const grp[] = {"public", "hr", "a,b", " hr , fin ", "x@y.z", "hr,hr"};
    static const char *const grp_bad[] = {"a,,b", "hr;", "\x01", "public,hr", "", ","};
    static const char *const junk[] = {"", "", "", " # c", "\t# x", "   "};
    static const char *const junk_bad[] = {"\"", " x y", "\r"};
    char text[1024];
    int parsed = 0;
    int iters = getenv("MRAG_ASAN") ? 1500 : 4000;
    for (int it = 0; it < iters; it++) {
        size_t n = 0;
        int lines = 1 + rnd(6);
        for (int l = 0; l < lines && n < sizeof text - 200; l++) {
            char line[200];
            const char *k = pick(kw, 5, kw_bad, 4);
            const char *g = pick(grp, 6, grp_bad, 6), *j = pick(junk, 6, junk_bad, 3);
            if (strcmp(k, "default") == 0) {
                snprintf(line, sizeof line, "default %s%s\n", g, j);
            } else {
                const char *p1 = pick(pat, 15, pat_bad, 6), *p2 = rnd(2) ? pick(pat, 15, pat_bad, 6) : "";
                snprintf(line, sizeof line, "%s %s%s %s%s\n", k, p1, p2, g, j);
            }
            if (rnd(8) == 0) snprintf(line, sizeof line, "%s\n", j);      /* blank or comment line */
            size_t ll = strlen(line);
            memcpy(text + n, line, ll);
            n += ll;
        }
        text[n] = 0;
        rag_access *a = NULL;
        char err[256] = "";
        int rc = rag_access_parse("r.rules", text, n, &a, err, sizeof err);
        if (rc != RAG_OK) {
            CHECK(a == NULL && strncmp(err, "r.rules:", 8) == 0, "%s", err);
            continue;
        }
        parsed++;
        const char *q[] = {"hr/x", "a/b/c", "", "q r/x", "\xc3\xbc", "]", "x/y"};
        for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
            const char *g = rag_access_for_path(a, q[i]);
            CHECK(g && !strstr(g, ",,") && g[0] != ',' && !strchr(g, ' '), "'%s'", g ? g : "(null)");
            const char *cats[] = {q[i], "X"};
            g = rag_access_for_page(a, rnd(3) ? 100 : -1, q[i], cats, 2);
            CHECK(g && !strstr(g, ",,") && g[0] != ',' && !strchr(g, ' '), "'%s'", g ? g : "(null)");
        }
        rag_access_free(a);
    }
    CHECK(parsed > iters / 10 && parsed < iters, "%d of %d random files parsed: the generator tests too little", parsed, iters);
}

TEST(groups_and_is_what_every_path_requires) {
    static const struct { const char *a, *b, *want; } cases[] = {
        {"", "", ""},                       /* public and public */
        {"", "hr", "hr"},                   /* public adds no requirement */
        {"hr", "", "hr"},
        {"hr", "hr", "hr"},
        {"board,hr", "hr,it", "hr"},        /* only hr passes both */
        {"a,b,c", "c,b", "b,c"},
        {"hr", "board", RAG_ACCESS_NOBODY}, /* no single group passes both */
        {RAG_ACCESS_NOBODY, "", RAG_ACCESS_NOBODY},
        {"hr", RAG_ACCESS_NOBODY, RAG_ACCESS_NOBODY},
        {"hr", "hrx", RAG_ACCESS_NOBODY},   /* names, not prefixes */
        {NULL, "x", "x"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *g = rag_access_groups_and(cases[i].a, cases[i].b);
        CHECK(g && strcmp(g, cases[i].want) == 0, "%s AND %s = %s, want %s", cases[i].a ? cases[i].a : "(null)",
              cases[i].b, g ? g : "(null)", cases[i].want);
        free(g);
    }
    /* nobody's group cannot be named by a caller */
    idx_filter f;
    CHECK(rag_groups_parse(RAG_ACCESS_NOBODY, &f) != RAG_OK);
}

/* ---------------------------------------------------------------- index */

static char model_path[600], root[600], idx_dir[600];
static llm_model *model;

#define N_HR 30

/* A folder with public, hr and finance documents; the query words "Zorblax
 * bonus" occur many times in every hr document and once in the public one. */
static void need_corpus(void) {
    if (model) return;
    snprintf(model_path, sizeof model_path, "%s/m.gguf", test_tmpdir());
    test_mkmodel(model_path, "--dim 64 --layers 1 --heads 4 --kv-heads 1 --ff 128 --ctx 2048 --seed 5");
    llm_model_params mp = llm_model_default_params();
    char err[512];
    REQUIRE(llm_model_load(model_path, &mp, &model, err, sizeof err) == LLM_OK, "%s", err);
    snprintf(root, sizeof root, "%s/docs", test_tmpdir());
    mkdir(root, 0755);
    test_put_file(root, "public/cafeteria.md", "# Cafeteria\n\nThe Zorblax cafeteria opens at eight. Bonus coffee on Fridays.\n");
    test_put_file(root, "public/holidays.md", "# Holidays\n\nThe office closes between Christmas and New Year.\n");
    test_put_file(root, "public/news1.md", "# News\n\nThe Zorblax team moved to the third floor.\n");
    test_put_file(root, "public/news2.md", "# More news\n\nA code of conduct for the Zorblax kitchen.\n");
    for (int i = 0; i < N_HR; i++) {
        char rel[64], text[512];
        snprintf(rel, sizeof rel, "hr/salaries/s%02d.md", i);
        snprintf(text, sizeof text,
                 "# Zorblax bonus %d\n\nZorblax bonus Zorblax bonus Zorblax bonus: the secret Zorblax bonus "
                 "code is HRSECRET%04d.\n", i, 7000 + i);
        test_put_file(root, rel, text);
    }
    test_put_file(root, "finance/budget.md", "# Budget\n\nThe Quillfeather reserve is FINSECRET9182 euros. Zorblax bonus pool.\n");
    snprintf(idx_dir, sizeof idx_dir, "%s/idx", test_tmpdir());
}

static const char rules_v1[] =
    "path hr/**       hr\n"
    "path finance/**  finance,board\n";

static rag_access *rules_from(const char *text) {
    rag_access *a = NULL;
    char err[512];
    REQUIRE(rag_access_parse("rules", text, strlen(text), &a, err, sizeof err) == RAG_OK, "%s", err);
    return a;
}

static int run_ingest(idx_store *s, const rag_access *acc, rag_ingest_stats *st, const char *dir, char *err, size_t errlen) {
    rag_ingest_params p = rag_ingest_default_params();
    p.model = model;
    p.n_threads = 1;
    p.access = acc;
    return rag_ingest_dir(s, dir ? dir : root, &p, st, err, errlen);
}

static char *doc_groups(idx_store *s, const char *rel) {
    char uri[1200];
    char *real = realpath(root, NULL);
    snprintf(uri, sizeof uri, "%s/%s", real, rel);
    free(real);
    idx_doc d;
    memset(&d, 0, sizeof d);
    if (idx_doc_get(s, uri, &d) != IDX_OK) return NULL;
    char *g = strdup(d.groups ? d.groups : "");
    idx_doc_release(&d);
    return g;
}

static void ingested(void) {
    need_corpus();
    struct stat st;
    if (stat(idx_dir, &st) == 0) return;
    idx_store *s = test_open_index(idx_dir);
    rag_access *a = rules_from(rules_v1);
    rag_ingest_stats stats;
    char err[1024];
    int rc = run_ingest(s, a, &stats, NULL, err, sizeof err);
    rag_access_free(a);
    idx_close(s);
    REQUIRE(rc == RAG_OK, "%s", err);
    REQUIRE(stats.added == N_HR + 5, "%zu", stats.added);
}

TEST(ingest_stores_groups_and_regroups_without_reembedding) {
    ingested();
    idx_store *s = test_open_index(idx_dir);
    char *g;
    CHECK_EQ_STR(g = doc_groups(s, "hr/salaries/s03.md"), "hr");
    free(g);
    CHECK_EQ_STR(g = doc_groups(s, "finance/budget.md"), "board,finance");   /* the index sorts */
    free(g);
    CHECK_EQ_STR(g = doc_groups(s, "public/cafeteria.md"), "");
    free(g);
    int64_t *v0 = NULL, *v1 = NULL;
    size_t n0 = 0, n1 = 0;
    REQUIRE(idx_debug_vector_ids(s, &v0, &n0) == IDX_OK);
    /* changed rules: finance opens up, the cafeteria becomes staff-only */
    rag_access *a = rules_from("path hr/** hr\npath public/cafeteria.md staff\n");
    rag_ingest_stats st;
    char err[1024];
    REQUIRE(run_ingest(s, a, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_EQ_INT(st.regrouped, 2);
    CHECK_EQ_INT(st.updated + st.added + st.removed, 0);
    CHECK_EQ_INT(st.chunks_added, 0);
    CHECK_EQ_STR(g = doc_groups(s, "finance/budget.md"), "");
    free(g);
    CHECK_EQ_STR(g = doc_groups(s, "public/cafeteria.md"), "staff");
    free(g);
    REQUIRE(idx_debug_vector_ids(s, &v1, &n1) == IDX_OK);
    CHECK(n0 == n1 && memcmp(v0, v1, n0 * sizeof *v0) == 0, "vectors were rewritten");
    free(v0);
    free(v1);
    /* a run without the rules over this root is refused, and so is a folder
     * inside it (its relative paths would not match the rules) */
    {
        int rc = run_ingest(s, NULL, &st, NULL, err, sizeof err);
        CHECK_EQ_INT(rc, RAG_ERR_ARG);
        CHECK(strstr(err, "--access") != NULL, "%s", err);
        char sub[700];
        snprintf(sub, sizeof sub, "%s/hr", root);
        rc = run_ingest(s, a, &st, sub, err, sizeof err);
        CHECK_EQ_INT(rc, RAG_ERR_ARG);
        CHECK(strstr(err, "applies access rules") != NULL, "%s", err);
    }
    /* a moved file takes the groups of its new place */
    char from[800], to[800];
    snprintf(from, sizeof from, "%s/public/holidays.md", root);
    snprintf(to, sizeof to, "%s/hr/holidays.md", root);
    REQUIRE(rename(from, to) == 0);
    REQUIRE(run_ingest(s, a, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_EQ_INT(st.renamed, 1);
    CHECK_EQ_STR(g = doc_groups(s, "hr/holidays.md"), "hr");
    free(g);
    REQUIRE(rename(to, from) == 0);
    /* back to the first rules */
    rag_access_free(a);
    a = rules_from(rules_v1);
    REQUIRE(run_ingest(s, a, &st, NULL, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_EQ_STR(g = doc_groups(s, "public/holidays.md"), "");
    free(g);
    CHECK_EQ_STR(g = doc_groups(s, "finance/budget.md"), "board,finance");   /* the index sorts */
    free(g);
    rag_access_free(a);
    idx_close(s);
}

/* Text of every hit joined (for substring checks). */
static char *hits_text(idx_store *s, const rag_hit *h, int n) {
    size_t cap = 1, len = 0;
    char *out = calloc(1, 1);
    for (int i = 0; i < n; i++) {
        idx_chunk c;
        idx_doc d;
        memset(&c, 0, sizeof c);
        memset(&d, 0, sizeof d);
        if (idx_chunk_get(s, h[i].chunk_id, &c, &d) != IDX_OK) continue;
        size_t add = c.text_len + strlen(d.uri) + 4;
        cap = len + add + 1;
        out = realloc(out, cap);
        len += (size_t)snprintf(out + len, add + 1, "%s\n%.*s\n", d.uri, (int)c.text_len, c.text);
        idx_chunk_release(&c);
        idx_doc_release(&d);
    }
    return out;
}

TEST(filter_before_ranking_in_every_mode) {
    ingested();
    idx_store *s = test_open_index(idx_dir);
    rag_retriever_params rp = rag_retriever_default_params();
    rp.model = model;
    rp.n_threads = 1;
    rag_retriever *r = NULL;
    char err[512];
    REQUIRE(rag_retriever_new(s, &rp, &r, err, sizeof err) == RAG_OK, "%s", err);
    const char *q = "Zorblax bonus code";
    rag_hit hits[40];
    for (int mode = 0; mode < 3; mode++) {
        struct { const char *groups; bool hr, fin; } cases[] = {
            {"", false, false}, {"public", false, false}, {"hr", true, false}, {"board", false, true},
            {"finance,hr", true, true}, {"nobody", false, false},
        };
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            idx_filter f;
            REQUIRE(rag_groups_parse(cases[c].groups, &f) == RAG_OK);
            int n = 0;
            int k = 3;
            REQUIRE(rag_retrieve(r, q, strlen(q), (rag_search_mode)mode, k, &f, hits, &n) == RAG_OK, "%s",
                    rag_retriever_errmsg(r));
            char *t = hits_text(s, hits, n);
            const char *mname = rag_search_mode_str((rag_search_mode)mode);
            if (!cases[c].hr) CHECK(strstr(t, "HRSECRET") == NULL && strstr(t, "/hr/") == NULL, "%s %s: %s", mname, cases[c].groups, t);
            if (!cases[c].fin) CHECK(strstr(t, "FINSECRET") == NULL, "%s %s: %s", mname, cases[c].groups, t);
            /* no starvation: k hits come back although 30 hr documents
             * outrank the public ones (the query words are in 3 public
             * documents, once each, and many times in every hr one) */
            int want = k;
            CHECK(n == want, "%s %s: %d hits, want %d", mname, cases[c].groups, n, want);
            if (!cases[c].hr && !cases[c].fin && mode != RAG_SEARCH_DENSE)
                CHECK(strstr(t, "cafeteria.md") != NULL, "%s %s: the public document is missing: %s", mname, cases[c].groups, t);
            if (cases[c].hr && mode == RAG_SEARCH_BM25) CHECK(strstr(t, "HRSECRET") != NULL, "the group sees its documents");
            if (cases[c].fin && !cases[c].hr && mode == RAG_SEARCH_BM25) CHECK(strstr(t, "FINSECRET") != NULL, "%s", t);
            free(t);
            rag_groups_free(&f);
        }
    }
    rag_retriever_free(r);
    idx_close(s);
}

/* ---------------------------------------------------------------- answering */

typedef struct {
    char *prompt;
    int calls;
} gen_capture;

static gen_capture *cur_capture;

static int fake_generate(void *self, const rag_msg *msgs, size_t n, const rag_sampling *sp, rag_emit_fn emit,
                         void *emit_user, volatile int *cancel, rag_gen_stats *st) {
    (void)self;
    (void)sp;
    (void)cancel;
    gen_capture *g = cur_capture;
    free(g->prompt);
    g->prompt = rag_msgs_format(msgs, n);
    g->calls++;
    const char *ans = "The answer is in the sources [1].";
    st->n_generated = 1;
    emit(emit_user, ans, strlen(ans));
    return RAG_OK;
}

static const rag_engine_ops fake_ops = {.generate = fake_generate};

static int count_words(void *user, const char *text, size_t len) { return rag_count_words(user, text, len); }

static void check_answer_clean(const rag_answer *res, const gen_capture *g, const char *what) {
    for (size_t i = 0; i < res->n_sources; i++) {
        CHECK(strstr(res->sources[i].uri, "/hr/") == NULL && strstr(res->sources[i].uri, "/finance/") == NULL,
              "%s: source %s", what, res->sources[i].uri);
        CHECK(strstr(res->sources[i].text, "SECRET") == NULL, "%s: source text", what);
    }
    CHECK(!res->prompt || (strstr(res->prompt, "HRSECRET") == NULL && strstr(res->prompt, "FINSECRET") == NULL),
          "%s: prompt: %s", what, res->prompt);
    CHECK(!g->prompt || (strstr(g->prompt, "HRSECRET") == NULL && strstr(g->prompt, "FINSECRET") == NULL),
          "%s: generator prompt", what);
    CHECK(strstr(res->answer, "SECRET") == NULL, "%s: answer", what);
}

TEST(answerer_with_groups_never_prompts_restricted_text) {
    ingested();
    idx_store *s = test_open_index(idx_dir);
    rag_guard *guard = NULL;
    char err[1024];
    rag_guard_params gp = rag_guard_default_params();
    gp.defaults_dir = "data/guardrails";
    REQUIRE(rag_guard_load(&gp, &guard, err, sizeof err) == RAG_OK, "%s", err);
    gen_capture g = {0};
    rag_answer_params p = rag_answer_default_params();
    p.store = s;
    p.guard = guard;
    p.model = model;
    p.n_threads = 1;
    p.k = 4;
    p.count = count_words;
    cur_capture = &g;
    rag_engine *eng = rag_engine_new(&fake_ops, NULL);
    REQUIRE(eng);
    p.engine = eng;
    rag_answerer *a = NULL;
    REQUIRE(rag_answerer_new(&p, &a, err, sizeof err) == RAG_OK, "%s", err);
    rag_answer res;
    /* the owner (default: all) sees the hr documents */
    REQUIRE(rag_answerer_ask(a, "What is the Zorblax bonus code?", NULL, 0, NULL, NULL, NULL, &res) == RAG_OK);
    CHECK(res.prompt && strstr(res.prompt, "HRSECRET"), "the owner sees everything");
    rag_answer_release(&res);
    /* public caller */
    REQUIRE(rag_answerer_set_groups(a, NULL, 0, false) == RAG_OK);
    REQUIRE(rag_answerer_ask(a, "What is the Zorblax bonus code?", NULL, 0, NULL, NULL, NULL, &res) == RAG_OK);
    CHECK(res.status == RAG_ANS_ANSWERED, "%s", rag_answer_status_str(res.status));
    CHECK(res.n_sources >= 1, "the public page still answers");
    check_answer_clean(&res, &g, "public");
    rag_answer_release(&res);
    /* a follow-up whose history names the restricted page and its words */
    rag_turn hist[] = {{"What does hr/salaries/s01.md say about the Zorblax bonus code?", "I don't know."}};
    REQUIRE(rag_answerer_ask(a, "And the Quillfeather reserve?", hist, 1, NULL, NULL, NULL, &res) == RAG_OK);
    for (size_t i = 0; i < res.n_sources; i++)
        CHECK(strstr(res.sources[i].text, "SECRET") == NULL && strstr(res.sources[i].uri, "/hr/") == NULL);
    CHECK(!res.prompt || strstr(res.prompt, "HRSECRET") == NULL, "restricted text through the history: %s", res.prompt);
    CHECK(!res.prompt || strstr(res.prompt, "FINSECRET") == NULL);
    rag_answer_release(&res);
    /* words only restricted documents hold: the relevance gate refuses,
     * nothing restricted shows (and the model does not run) */
    int before = g.calls;
    free(g.prompt);
    g.prompt = NULL;
    REQUIRE(rag_answerer_ask(a, "Quillfeather reserve?", NULL, 0, NULL, NULL, NULL, &res) == RAG_OK);
    CHECK(res.status == RAG_ANS_NO_SOURCES, "%s", rag_answer_status_str(res.status));
    CHECK_EQ_INT(g.calls, before);
    check_answer_clean(&res, &g, "gate");
    rag_answer_release(&res);
    /* the board sees finance, not hr */
    const char *board[] = {"board"};
    REQUIRE(rag_answerer_set_groups(a, board, 1, false) == RAG_OK);
    REQUIRE(rag_answerer_ask(a, "Quillfeather reserve?", NULL, 0, NULL, NULL, NULL, &res) == RAG_OK);
    CHECK(res.prompt && strstr(res.prompt, "FINSECRET9182"), "the group sees its document");
    CHECK(res.prompt && !strstr(res.prompt, "HRSECRET"));
    rag_answer_release(&res);
    /* a bad call leaves the answerer public-only, never wider */
    const char *bad[] = {NULL};
    CHECK_EQ_INT(rag_answerer_set_groups(a, bad, 1, false), RAG_ERR_ARG);
    REQUIRE(rag_answerer_ask(a, "What is the Zorblax bonus code?", NULL, 0, NULL, NULL, NULL, &res) == RAG_OK);
    check_answer_clean(&res, &g, "after a bad call");
    rag_answer_release(&res);
    free(g.prompt);
    rag_answerer_free(a);
    rag_engine_free(eng);
    rag_guard_free(guard);
    idx_close(s);
}

TEST_MAIN(RUN(example_rules_first_match_and_default), RUN(glob_semantics), RUN(errors_name_file_and_line),
          RUN(caller_groups_parse), RUN(groups_and_is_what_every_path_requires), RUN(random_rule_files_never_crash), RUN(ingest_stores_groups_and_regroups_without_reembedding),
          RUN(filter_before_ranking_in_every_mode), RUN(answerer_with_groups_never_prompts_restricted_text))
