/* test_app_access.c — access control through the real program: `mrag
 * ingest --access`, then `mrag search` (bm25, dense, hybrid), `mrag ask
 * --json --show-prompt` and `mrag chat` as callers with every group set:
 * restricted text never appears in hits, sources, prompt or output; callers
 * with the group do find it; restricted documents that outrank the public
 * ones do not starve the result list. */
#include "tests/test.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char mrag[512], model[600], idx[600], root[600], rules[600];

#define N_HR 12

static void setup(void) {
    if (idx[0]) return;
    snprintf(mrag, sizeof mrag, "%s/mrag", test_build_dir());
    if (access(mrag, X_OK) != 0) SKIP("%s is missing (run make)", mrag);
    const char *dir = test_tmpdir();
    snprintf(model, sizeof model, "%s/m.gguf", dir);
    test_mkmodel(model, "--dim 64 --layers 1 --heads 4 --kv-heads 1 --ff 128 --ctx 2048 --seed 11");
    snprintf(root, sizeof root, "%s/docs", dir);
    mkdir(root, 0755);
    test_put_file(root, "public/cafeteria.md", "# Cafeteria\n\nThe Zorblax cafeteria opens at eight. Bonus coffee on Fridays.\n");
    test_put_file(root, "public/holidays.md", "# Holidays\n\nThe office closes between Christmas and New Year.\n");
    test_put_file(root, "public/parking.md", "# Parking\n\nParking spaces are in the Zorblax garage, level two.\n");
    test_put_file(root, "public/news.md", "# News\n\nThe Zorblax team moved; the door code changes on Monday.\n");
    for (int i = 0; i < N_HR; i++) {
        char rel[64], text[512];
        snprintf(rel, sizeof rel, "hr/s%02d.md", i);
        snprintf(text, sizeof text,
                 "# Zorblax bonus %d\n\nZorblax bonus Zorblax bonus Zorblax bonus: the Zorblax bonus code "
                 "is HRSECRET%04d.\n", i, 7000 + i);
        test_put_file(root, rel, text);
    }
    test_put_file(root, "finance/budget.md", "# Budget\n\nThe Quillfeather reserve is FINSECRET9182 euros. Zorblax bonus pool.\n");
    snprintf(rules, sizeof rules, "%s/access.rules", dir);
    const char *r = "# test rules\npath hr/**  hr\npath finance/** finance, board\n";
    REQUIRE(test_write_file(rules, r, strlen(r)) == 0);
    snprintf(idx, sizeof idx, "%s/idx", dir);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL %s ingest %s --index %s -m %s --threads 1 --access %s >/dev/null 2>&1",
             mrag, test_shq(root), test_shq(idx), test_shq(model), test_shq(rules));
    if (system(cmd) != 0) { idx[0] = 0; REQUIRE(0, "mrag ingest --access failed"); }
}

static char *run(const char *sub, const char *args, int *status) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL -u MRAG_INDEX %s %s --index %s -m %s --threads 1 %s 2>/dev/null", mrag,
             sub, test_shq(idx), test_shq(model), args);
    char *out = test_run_capture(cmd, status);
    REQUIRE(out, "cannot run %s", cmd);
    return out;
}

/* Caller group sets: the flag (NULL = no --groups), and what they may see. */
static const struct {
    const char *flag;
    bool hr, fin;
} callers[] = {
    {NULL, true, true}, {"''", false, false}, {"public", false, false}, {"hr", true, false},
    {"board", false, true}, {"finance,hr", true, true}, {"'sales, it'", false, false},
};

TEST(search_every_mode_every_caller) {
    setup();
    const char *modes[] = {"bm25", "dense", "hybrid"};
    for (size_t c = 0; c < sizeof callers / sizeof callers[0]; c++) {
        for (int m = 0; m < 3; m++) {
            char args[512];
            snprintf(args, sizeof args, "--json -k 3 --mode %s %s%s 'Zorblax bonus code Quillfeather reserve'", modes[m],
                     callers[c].flag ? "--groups " : "", callers[c].flag ? callers[c].flag : "");
            int st;
            char *out = run("search", args, &st);
            const char *who = callers[c].flag ? callers[c].flag : "(owner)";
            CHECK_EQ_INT(st, 0);
            if (!callers[c].hr) CHECK(strstr(out, "HRSECRET") == NULL && strstr(out, "/hr/") == NULL, "%s %s: %s", modes[m], who, out);
            if (!callers[c].fin) CHECK(strstr(out, "FINSECRET") == NULL, "%s %s: %s", modes[m], who, out);
            cJSON *arr = cJSON_Parse(out);
            REQUIRE(cJSON_IsArray(arr), "%s", out);
            int n = cJSON_GetArraySize(arr);
            /* 12 hr chunks outrank the 3 public ones holding the words;
             * the list is still full */
            CHECK(n == 3, "%s %s: %d hits, want 3", modes[m], who, n);
            if (m == 0 && callers[c].hr) CHECK(strstr(out, "HRSECRET") != NULL, "hr caller finds hr: %s", out);
            if (m == 0 && !callers[c].hr && !callers[c].fin) CHECK(strstr(out, "cafeteria.md") != NULL, "%s", out);
            cJSON_Delete(arr);
            free(out);
        }
    }
    /* the finance document is found by its group when asked for directly */
    int st;
    char *out = run("search", "--json --mode bm25 --groups board Quillfeather", &st);
    CHECK(strstr(out, "FINSECRET9182") != NULL, "%s", out);
    free(out);
    out = run("search", "--mode bm25 --groups 'a b' x", &st);
    CHECK_EQ_INT(st, 2);
    free(out);
}

TEST(ask_sources_and_prompt_every_caller) {
    setup();
    for (size_t c = 0; c < sizeof callers / sizeof callers[0]; c++) {
        char args[512];
        snprintf(args, sizeof args, "--json --generate --show-prompt --max-tokens 4 %s%s 'What is the Zorblax bonus code?'",
                 callers[c].flag ? "--groups " : "", callers[c].flag ? callers[c].flag : "");
        int st;
        char *out = run("ask", args, &st);
        const char *who = callers[c].flag ? callers[c].flag : "(owner)";
        CHECK_EQ_INT(st, 0);
        cJSON *o = cJSON_Parse(out);
        REQUIRE(o, "not JSON: %s", out);
        const char *prompt = cJSON_GetStringValue(cJSON_GetObjectItem(o, "prompt"));
        REQUIRE(prompt != NULL, "%s: no prompt field: %s", who, out);
        char *src = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "sources"));
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(o, "sources")) >= 1, "%s: %s", who, out);
        if (!callers[c].hr) {
            CHECK(strstr(prompt, "HRSECRET") == NULL, "%s: prompt: %s", who, prompt);
            CHECK(strstr(src, "/hr/") == NULL, "%s: sources: %s", who, src);
            CHECK(strstr(out, "HRSECRET") == NULL, "%s", who);
        } else {
            CHECK(strstr(prompt, "HRSECRET") != NULL, "%s: the group sees its documents: %s", who, prompt);
        }
        if (!callers[c].fin) CHECK(strstr(out, "FINSECRET") == NULL, "%s", who);
        free(src);
        cJSON_Delete(o);
        free(out);
        /* the extractive answer (automatic with this random-weight model)
         * quotes evidence: it must come from the caller's documents alone */
        snprintf(args, sizeof args, "--json %s%s 'What is the Zorblax bonus code?'",
                 callers[c].flag ? "--groups " : "", callers[c].flag ? callers[c].flag : "");
        out = run("ask", args, &st);
        CHECK_EQ_INT(st, 0);
        CHECK(strstr(out, "\"extractive\"") != NULL, "%s: %s", who, out);
        if (!callers[c].hr) CHECK(strstr(out, "HRSECRET") == NULL, "%s: extractive: %s", who, out);
        else CHECK(strstr(out, "HRSECRET") != NULL, "%s: extractive: %s", who, out);
        if (!callers[c].fin) CHECK(strstr(out, "FINSECRET") == NULL, "%s: extractive", who);
        free(out);
    }
}

TEST(chat_follow_up_never_reaches_restricted_pages) {
    setup();
    char in[700];
    snprintf(in, sizeof in, "%s/chat-in.txt", test_tmpdir());
    const char *qs = "What is the Zorblax bonus code in hr/s01.md?\nAnd in the finance budget, the Quillfeather reserve?\n/sources\n";
    REQUIRE(test_write_file(in, qs, strlen(qs)) == 0);
    char args[1000];
    snprintf(args, sizeof args, "--max-tokens 4 --groups public < %s", test_shq(in));
    int st;
    char *out = run("chat", args, &st);
    CHECK_EQ_INT(st, 0);
    CHECK(strstr(out, "HRSECRET") == NULL && strstr(out, "FINSECRET") == NULL && strstr(out, "docs/hr/") == NULL &&
          strstr(out, "docs/finance/") == NULL, "%s", out);
    CHECK(strstr(out, "cafeteria.md") != NULL, "the public page answers: %s", out);
    free(out);
}

TEST(ingest_rules_errors_and_changes) {
    setup();
    /* a bad rules file: exit 2, file:line in the message */
    char bad[700], cmd[4096];
    snprintf(bad, sizeof bad, "%s/bad.rules", test_tmpdir());
    const char *b = "path hr/** hr\npath [x finance\n";
    REQUIRE(test_write_file(bad, b, strlen(b)) == 0);
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL %s ingest %s --index %s -m %s --access %s 2>&1", mrag, test_shq(root),
             test_shq(idx), test_shq(model), test_shq(bad));
    int st;
    char *out = test_run_capture(cmd, &st);
    CHECK_EQ_INT(st, 2);
    CHECK(strstr(out, "bad.rules:2:") != NULL, "%s", out);
    free(out);
    /* without the rules: refused (the hr files would become public) */
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL %s ingest %s --index %s -m %s 2>&1", mrag, test_shq(root),
             test_shq(idx), test_shq(model));
    out = test_run_capture(cmd, &st);
    CHECK_EQ_INT(st, 1);
    CHECK(strstr(out, "--access") != NULL, "%s", out);
    free(out);
    /* changed rules: hr opens to everyone without re-embedding */
    char open_rules[700];
    snprintf(open_rules, sizeof open_rules, "%s/open.rules", test_tmpdir());
    const char *o = "path finance/** finance,board\n";
    REQUIRE(test_write_file(open_rules, o, strlen(o)) == 0);
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL %s ingest %s --index %s -m %s --threads 1 --access %s 2>&1", mrag,
             test_shq(root), test_shq(idx), test_shq(model), test_shq(open_rules));
    out = test_run_capture(cmd, &st);
    CHECK_EQ_INT(st, 0);
    CHECK(strstr(out, "0 added, 0 updated") != NULL && strstr(out, "access groups changed for 12 unchanged documents"),
          "%s", out);
    free(out);
    out = run("search", "--json --mode bm25 --groups public 'Zorblax bonus code'", &st);
    CHECK(strstr(out, "HRSECRET") != NULL, "now public: %s", out);
    free(out);
    /* and closed again */
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL %s ingest %s --index %s -m %s --threads 1 --access %s >/dev/null 2>&1", mrag,
             test_shq(root), test_shq(idx), test_shq(model), test_shq(rules));
    CHECK_EQ_INT(system(cmd), 0);
    out = run("search", "--json --mode bm25 --groups public 'Zorblax bonus code'", &st);
    CHECK(strstr(out, "HRSECRET") == NULL, "%s", out);
    free(out);
}

/* ---------------------------------------------------------------- attacks
 * The folder tricks of issue 10 played the way an outsider with write access
 * to a public folder would: links and hard links that republish restricted
 * files, and an ingest of the parent of a root with rules. Each case has its
 * own folder and index. */

#define LEAK_HR "Vexillumdrake"
#define LEAK_BOARD "Obsidianmarrow"

/* A fresh root with public, hr and board documents and rules giving hr/
 * the group hr and board/ the group board. Fills dir (the tmp folder), r
 * (root), x (index), ru (rules). */
static void attack_setup(char *dir, char *r, char *x, char *ru, size_t cap) {
    setup();
    snprintf(dir, cap, "%s", test_tmpdir());
    snprintf(r, cap, "%s/docs", dir);
    mkdir(r, 0755);
    test_put_file(r, "public/welcome.md", "# Welcome\n\nThe canteen opens at eight.\n");
    test_put_file(r, "hr/salaries.md", "# Salaries\n\nThe " LEAK_HR " salary band is secret.\n");
    test_put_file(r, "board/minutes.md", "# Minutes\n\nThe board discussed " LEAK_BOARD " in private.\n");
    snprintf(ru, cap, "%s/access.rules", dir);
    const char *rt = "path hr/** hr\npath board/** board\n";
    REQUIRE(test_write_file(ru, rt, strlen(rt)) == 0);
    snprintf(x, cap, "%s/idx", dir);
}

/* Runs `mrag ingest ROOT --access RULES` (rules NULL: without) into index
 * x; returns the output (stdout + stderr) and the status. */
static char *ingest_into(const char *x, const char *r, const char *ru, int *status) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL %s ingest %s --index %s -m %s --threads 1 %s %s 2>&1", mrag,
             test_shq(r), test_shq(x), test_shq(model), ru ? "--access" : "", ru ? test_shq(ru) : "");
    char *out = test_run_capture(cmd, status);
    REQUIRE(out, "cannot run %s", cmd);
    return out;
}

/* `mrag search --json --mode bm25 --groups G WORD` on index x. */
static char *search_as(const char *x, const char *groups, const char *word) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL -u MRAG_INDEX %s search --index %s -m %s --threads 1 --json --mode bm25 "
             "%s%s %s 2>&1", mrag, test_shq(x), test_shq(model), groups ? "--groups " : "", groups ? test_shq(groups) : "",
             word);
    int st;
    char *out = test_run_capture(cmd, &st);
    REQUIRE(out, "cannot run %s", cmd);
    return out;
}

TEST(symlinks_and_hard_links_never_republish_restricted_files) {
    char dir[700], r[700], x[700], ru[700], p[1400], q[1400];
    attack_setup(dir, r, x, ru, sizeof dir);
    int st;
    char *out = ingest_into(x, r, ru, &st);
    REQUIRE(st == 0, "%s", out);
    free(out);
    /* the attacker's links, all inside public folders: a folder link into hr
     * (sorted before hr, so it is met first), a file link into board, and a
     * hard link of the hr file */
    snprintf(p, sizeof p, "%s/aaa", r);
    REQUIRE(mkdir(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/aaa/hr-mirror", r);
    REQUIRE(symlink("../hr", p) == 0);
    snprintf(p, sizeof p, "%s/aaa/minutes.md", r);
    REQUIRE(symlink("../board/minutes.md", p) == 0);
    snprintf(p, sizeof p, "%s/hr/salaries.md", r);
    snprintf(q, sizeof q, "%s/public/copy.md", r);
    REQUIRE(link(p, q) == 0);
    out = ingest_into(x, r, ru, &st);
    CHECK_EQ_INT(st, 0);
    CHECK(strstr(out, "renamed") == NULL || strstr(out, "0 renamed") != NULL, "a link made a rename: %s", out);
    free(out);
    /* a public caller finds neither text, by any of the new names */
    out = search_as(x, "public", LEAK_HR " " LEAK_BOARD);
    CHECK(strstr(out, LEAK_HR) == NULL && strstr(out, LEAK_BOARD) == NULL, "public sees it: %s", out);
    free(out);
    out = search_as(x, "board", LEAK_HR);
    CHECK(strstr(out, LEAK_HR) == NULL, "board sees hr: %s", out);
    free(out);
    /* the groups still reach their documents, at their real paths */
    out = search_as(x, "hr", LEAK_HR);
    CHECK(strstr(out, LEAK_HR) != NULL && strstr(out, "hr-mirror") == NULL, "%s", out);
    free(out);
    out = search_as(x, "board", LEAK_BOARD);
    CHECK(strstr(out, LEAK_BOARD) != NULL && strstr(out, "/board/minutes.md") != NULL, "%s", out);
    free(out);
    /* a hard link under two restricted folders: only a caller holding both
     * may read it; a single group never does */
    snprintf(p, sizeof p, "%s/board/minutes.md", r);
    snprintf(q, sizeof q, "%s/hr/minutes-copy.md", r);
    REQUIRE(link(p, q) == 0);
    out = ingest_into(x, r, ru, &st);
    CHECK_EQ_INT(st, 0);
    free(out);
    out = search_as(x, "board", LEAK_BOARD);
    CHECK(strstr(out, LEAK_BOARD) == NULL, "hr's path requires hr too: %s", out);
    free(out);
    out = search_as(x, "hr", LEAK_BOARD);
    CHECK(strstr(out, LEAK_BOARD) == NULL, "board's path requires board too: %s", out);
    free(out);
    out = search_as(x, NULL, LEAK_BOARD);
    CHECK(strstr(out, LEAK_BOARD) != NULL, "the owner still finds it: %s", out);
    free(out);
}

TEST(ingesting_the_parent_of_a_root_with_rules_is_refused) {
    char dir[700], r[700], x[700], ru[700];
    attack_setup(dir, r, x, ru, sizeof dir);
    int st;
    char *out = ingest_into(x, r, ru, &st);
    REQUIRE(st == 0, "%s", out);
    free(out);
    /* the parent, with no rules and with the same rules (whose paths do not
     * match from up there): both refused, the groups stay */
    char empty[800];
    snprintf(empty, sizeof empty, "%s/empty.rules", dir);
    REQUIRE(test_write_file(empty, "", 0) == 0);
    const char *tries[] = {NULL, ru, empty};
    for (int i = 0; i < 3; i++) {
        out = ingest_into(x, dir, tries[i], &st);
        CHECK_EQ_INT(st, 1);
        CHECK(strstr(out, "applies access rules to") != NULL && strstr(out, r) != NULL, "%s", out);
        CHECK(strstr(out, "access groups changed") == NULL, "%s", out);
        free(out);
        out = search_as(x, "public", LEAK_HR);
        CHECK(strstr(out, LEAK_HR) == NULL, "public sees hr after try %d: %s", i, out);
        free(out);
    }
}

TEST_MAIN(RUN(search_every_mode_every_caller), RUN(ask_sources_and_prompt_every_caller),
          RUN(chat_follow_up_never_reaches_restricted_pages), RUN(ingest_rules_errors_and_changes),
          RUN(symlinks_and_hard_links_never_republish_restricted_files),
          RUN(ingesting_the_parent_of_a_root_with_rules_is_refused))
