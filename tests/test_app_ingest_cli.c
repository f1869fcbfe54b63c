/* test_app_ingest_cli.c — the real `mrag ingest` / `mrag search` programs:
 * summary and exit codes, search output and --json, fingerprint errors, and
 * kill -9 at random moments: the index stays consistent and a rerun ends
 * with exactly the chunks of a clean ingest. */
#include "tests/test.h"
#include "llm/llm.h"

#include <cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "index/index.h"
#include "rag/rag.h"

static char model_a[512], model_b[512], corpus[512], mrag[512];

static const char *make_model(char *out, size_t n, int seed) {
    if (out[0]) return out;
    snprintf(out, n, "%s/m%d.gguf", test_tmpdir(), seed);
    char args[200];
    snprintf(args, sizeof args, "--dim 64 --layers 1 --heads 4 --kv-heads 1 --ff 128 --seed %d", seed);
    test_mkmodel(out, args);
    return out;
}

static void setup(void) {
    snprintf(mrag, sizeof mrag, "%s/mrag", test_build_dir());
    if (access(mrag, X_OK) != 0) SKIP("%s is missing (run make)", mrag);
    make_model(model_a, sizeof model_a, 1);
    if (corpus[0]) return;
    struct stat st;
    if (stat("data/sample", &st) != 0) SKIP("data/sample is missing");
    /* the sample corpus under a subfolder (~18 files, ~100 chunks: a clean
     * ingest takes about a second, long enough to be killed anywhere) */
    snprintf(corpus, sizeof corpus, "%s/corpus", test_tmpdir());
    int copies = 1;
    char cmd[2048];
    for (int i = 0; i < copies; i++) {
        snprintf(cmd, sizeof cmd, "mkdir -p %s && cp -r data/sample %s/copy%d", test_shq(corpus), test_shq(corpus), i);
        REQUIRE(system(cmd) == 0);
    }
}

/* Runs mrag with args (shell words), MRAG_MODEL unset; returns stdout, sets
 * *status; stderr goes to err_path when given. */
static char *run(const char *args, int *status, const char *err_path) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL -u MRAG_INDEX %s %s 2>%s", mrag, args, err_path ? err_path : "/dev/null");
    char *out = test_run_capture(cmd, status);
    REQUIRE(out, "cannot run %s", cmd);
    return out;
}

TEST(ingest_prints_summary_with_reasons_and_exit_codes) {
    setup();
    char dir[300];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());   /* test_tmpdir() reuses its buffer */
    char small[600], idx[600], errp[600];
    snprintf(small, sizeof small, "%s/docs", dir);
    snprintf(idx, sizeof idx, "%s/idx", dir);
    snprintf(errp, sizeof errp, "%s/err.txt", dir);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp -r data/sample %s && printf 'ELF\\0\\0\\1' > %s/tool.txt", test_shq(small), test_shq(small));
    REQUIRE(system(cmd) == 0);
    int status = -1;
    /* the corpus may grow: count its documents (hidden names excluded) */
    char *cnt = test_run_capture("find data/sample -type f ! -name '.*' | wc -l", &status);
    REQUIRE(cnt && status == 0);
    int n_docs = atoi(cnt);
    free(cnt);
    REQUIRE(n_docs >= 15, "%d documents in data/sample", n_docs);
    char want[256];
    char args[2048];
    snprintf(args, sizeof args, "ingest %s --index %s -m %s --threads 1", test_shq(small), test_shq(idx), test_shq(model_a));
    char *out = run(args, &status, errp);
    CHECK_EQ_INT(status, 0);
    CHECK(strstr(out, " files found\n") != NULL, "%s", out);
    snprintf(want, sizeof want, "done: %d added, 0 updated, 0 renamed, 0 removed, 0 unchanged, 1 skipped, 0 failed", n_docs);
    CHECK(strstr(out, want) != NULL, "want '%s' in %s", want, out);
    CHECK(strstr(out, "skipped:\n") != NULL && strstr(out, "tool.txt: binary") != NULL, "%s", out);
    CHECK(strstr(out, "added     ") != NULL, "plain per-file lines when not a terminal: %s", out);
    free(out);
    out = run(args, &status, errp);
    CHECK_EQ_INT(status, 0);
    snprintf(want, sizeof want, "done: 0 added, 0 updated, 0 renamed, 0 removed, %d unchanged, 1 skipped", n_docs);
    CHECK(strstr(out, want) != NULL, "want '%s' in %s", want, out);
    free(out);
    /* no model: a usage error (exit 2), nothing can be done */
    snprintf(args, sizeof args, "ingest %s --index %s", test_shq(small), test_shq(idx));
    out = run(args, &status, errp);
    CHECK_EQ_INT(status, 2);
    char *err = test_read_file(errp, NULL);
    CHECK(err && strstr(err, "-m FILE") != NULL, "%s", err ? err : "");
    free(err);
    free(out);
    /* missing folder, bad option */
    snprintf(args, sizeof args, "ingest %s/nope --index %s -m %s", test_shq(dir), test_shq(idx), test_shq(model_a));
    out = run(args, &status, errp);
    CHECK_EQ_INT(status, 1);
    err = test_read_file(errp, NULL);
    CHECK(err && strstr(err, "nope") != NULL, "%s", err ? err : "");
    free(err);
    free(out);
    snprintf(args, sizeof args, "ingest %s --chunk-tokens banana -m %s", test_shq(small), test_shq(model_a));
    out = run(args, &status, NULL);
    CHECK_EQ_INT(status, 2);
    free(out);
    /* another model: a clear error naming --reindex; --reindex rebuilds */
    make_model(model_b, sizeof model_b, 2);
    snprintf(args, sizeof args, "ingest %s --index %s -m %s", test_shq(small), test_shq(idx), test_shq(model_b));
    out = run(args, &status, errp);
    CHECK_EQ_INT(status, 1);
    err = test_read_file(errp, NULL);
    CHECK(err && strstr(err, "--reindex") != NULL && strstr(err, "embedding") != NULL, "%s", err ? err : "");
    free(err);
    free(out);
    snprintf(args, sizeof args, "search --index %s -m %s --mode dense vacation", test_shq(idx), test_shq(model_b));
    out = run(args, &status, errp);
    CHECK_EQ_INT(status, 1);
    err = test_read_file(errp, NULL);
    CHECK(err && strstr(err, "re-ingest") != NULL, "%s", err ? err : "");
    free(err);
    free(out);
    snprintf(args, sizeof args, "ingest %s --index %s -m %s --reindex --threads 1", test_shq(small), test_shq(idx), test_shq(model_b));
    out = run(args, &status, errp);
    CHECK_EQ_INT(status, 0);
    snprintf(want, sizeof want, "done: %d added", n_docs);
    CHECK(strstr(out, want) != NULL, "want '%s' in %s", want, out);
    free(out);
}

TEST(search_prints_citations_and_valid_json) {
    setup();
    char dir[300];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());   /* test_tmpdir() reuses its buffer */
    char small[600], idx[600];
    snprintf(small, sizeof small, "%s/docs", dir);
    snprintf(idx, sizeof idx, "%s/idx", dir);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp -r data/sample %s", test_shq(small));
    REQUIRE(system(cmd) == 0);
    int status = -1;
    char args[2048];
    snprintf(args, sizeof args, "ingest %s --index %s -m %s --threads 1 -q", test_shq(small), test_shq(idx), test_shq(model_a));
    free(run(args, &status, NULL));
    REQUIRE(status == 0);
    /* bm25 without any model */
    snprintf(args, sizeof args, "search --index %s --mode bm25 -k 3 WireGuard port 51820/UDP", test_shq(idx));
    char *out = run(args, &status, NULL);
    CHECK_EQ_INT(status, 0);
    int first = 0, last = 0;
    char path[1024] = "";
    int got = sscanf(out, "1. %1000[^:]:%d-%d  score", path, &first, &last);
    CHECK(got == 3, "%s", out);
    CHECK(strstr(path, "it/vpn-setup.md") != NULL, "%s", path);
    char *f = NULL;
    char full[1200];
    snprintf(full, sizeof full, "%s/it/vpn-setup.md", small);
    REQUIRE((f = test_read_file(full, NULL)));
    int line = 1;
    for (char *p = f; p < strstr(f, "51820/UDP"); p++) line += *p == '\n';
    free(f);
    CHECK(first <= line && line <= last, "fact on line %d, cited %d-%d", line, first, last);
    CHECK(strstr(out, "\n2. ") != NULL && strstr(out, "\n3. ") != NULL && strstr(out, "\n4. ") == NULL, "%s", out);
    CHECK(strstr(out, "   [") != NULL, "heading path line: %s", out);
    free(out);
    /* default mode without a model given: the recorded model, hybrid */
    snprintf(args, sizeof args, "search --index %s -k 2 --json vacation carry-over", test_shq(idx));
    out = run(args, &status, NULL);
    CHECK_EQ_INT(status, 0);
    cJSON *j = cJSON_Parse(out);
    CHECK(cJSON_IsArray(j), "not a JSON array: %s", out);
    CHECK_EQ_INT(cJSON_GetArraySize(j), 2);
    int rank = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, j) {
        rank++;
        CHECK_EQ_INT(cJSON_GetObjectItem(o, "rank") ? cJSON_GetObjectItem(o, "rank")->valueint : -1, rank);
        const char *keys[] = {"score", "chunk_id", "line_start", "line_end", "page", "dense_rank", "bm25_rank"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            CHECK(cJSON_IsNumber(cJSON_GetObjectItem(o, keys[k])), "%s missing", keys[k]);
        const char *skeys[] = {"path", "citation", "heading", "text"};
        for (size_t k = 0; k < sizeof skeys / sizeof skeys[0]; k++)
            CHECK(cJSON_IsString(cJSON_GetObjectItem(o, skeys[k])), "%s missing", skeys[k]);
    }
    /* the recorded model was loaded: the dense list took part (ranks are
     * reported even when the learned weights give it little or no weight,
     * so look deeper than the two hits above) */
    {
        snprintf(args, sizeof args, "search --index %s -k 8 --json vacation carry-over", test_shq(idx));
        char *deep = run(args, &status, NULL);
        cJSON *dj = cJSON_Parse(deep);
        bool dense_seen = false;
        const cJSON *d;
        cJSON_ArrayForEach(d, dj) dense_seen |= cJSON_GetObjectItem(d, "dense_rank")->valueint > 0;
        CHECK(dense_seen, "no dense ranks: %s", deep);
        cJSON_Delete(dj);
        free(deep);
    }
    const cJSON *top = cJSON_GetArrayItem(j, 0);
    CHECK(top && strstr(cJSON_GetObjectItem(top, "path")->valuestring, "vacation-policy.md") != NULL, "%s", out);
    /* hybrid: both ranks filled for a chunk both lists found, fused score < 2/61 */
    CHECK(top && cJSON_GetObjectItem(top, "score")->valuedouble <= 2.0 / 61 + 1e-6);
    cJSON_Delete(j);
    free(out);
    /* explicit dense with -m; a PDF-free corpus cites lines */
    snprintf(args, sizeof args, "search --index %s -m %s --mode dense -k 1 --json Kilometerpauschale", test_shq(idx), test_shq(model_a));
    out = run(args, &status, NULL);
    CHECK_EQ_INT(status, 0);
    j = cJSON_Parse(out);
    CHECK(cJSON_IsArray(j) && cJSON_GetArraySize(j) == 1, "%s", out);
    cJSON_Delete(j);
    free(out);
    /* a missing index is an error, not an empty result */
    snprintf(args, sizeof args, "search --index %s/none --mode bm25 x", test_shq(dir));
    out = run(args, &status, NULL);
    CHECK_EQ_INT(status, 1);
    free(out);
}

/* The set of (uri, ordinal, sha256(text)) of an index, sorted, one per line
 * (owned); also PRAGMA integrity_check must say ok. */
static char *chunk_set(const char *idx, size_t *n_rows) {
    char db[600];
    snprintf(db, sizeof db, "%s/mrag.sqlite", idx);
    sqlite3 *h = NULL;
    REQUIRE(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    REQUIRE(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_STR((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    /* killed before the schema's first transaction committed: an empty
     * database, which the next open creates the schema in */
    REQUIRE(sqlite3_prepare_v2(h, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    int n_schema = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    *n_rows = 0;
    if (n_schema == 0) {
        sqlite3_close(h);
        return strdup("");
    }
    REQUIRE(sqlite3_prepare_v2(h, "SELECT d.uri, c.ordinal, c.text FROM chunks c JOIN documents d ON d.id = c.doc_id "
                                  "ORDER BY d.uri, c.ordinal", -1, &st, NULL) == SQLITE_OK);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    REQUIRE(out);
    out[0] = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char sha[65];
        llm_sha256_hex(sqlite3_column_text(st, 2), (size_t)sqlite3_column_bytes(st, 2), sha);
        char line[2048];
        int l = snprintf(line, sizeof line, "%s\t%d\t%s\n", sqlite3_column_text(st, 0), sqlite3_column_int(st, 1), sha);
        if (len + (size_t)l + 1 > cap) { cap *= 2; out = realloc(out, cap); REQUIRE(out); }
        memcpy(out + len, line, (size_t)l + 1);
        len += (size_t)l;
        (*n_rows)++;
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return out;
}

/* After a kill: integrity ok, FAISS ids == vector ids == chunk ids. */
static void check_consistent(const char *idx) {
    size_t n = 0;
    free(chunk_set(idx, &n));
    idx_store *s = NULL;
    idx_params ip = idx_default_params();
    REQUIRE(idx_open(idx, &ip, &s) == IDX_OK, "%s", s ? idx_errmsg(s) : "?");
    CHECK(idx_check(s) == IDX_OK, "%s", idx_errmsg(s));
    idx_counts c;
    REQUIRE(idx_get_counts(s, &c) == IDX_OK);
    CHECK_EQ_INT(c.chunks, (int64_t)n);
    CHECK_EQ_INT(c.vectors, c.chunks);
    CHECK_EQ_INT(c.fts_rows, c.chunks);
    int64_t *fa = NULL, *va = NULL;
    size_t nf = 0, nv = 0;
    REQUIRE(idx_debug_faiss_ids(s, &fa, &nf) == IDX_OK);
    REQUIRE(idx_debug_vector_ids(s, &va, &nv) == IDX_OK);
    CHECK_EQ_INT(nf, nv);
    if (nf == nv) CHECK(memcmp(fa, va, nf * sizeof *fa) == 0, "FAISS ids differ from SQLite ids");
    free(fa);
    free(va);
    idx_close(s);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Starts `mrag ingest corpus --index idx` (output discarded); returns its pid. */
static pid_t spawn_ingest(const char *idx) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
        unsetenv("MRAG_MODEL");
        execl(mrag, mrag, "ingest", corpus, "--index", idx, "-m", model_a, "--threads", "1", "--save-every", "7", (char *)NULL);
        _exit(127);
    }
    return pid;
}

TEST(kill_9_at_random_moments_then_rerun_equals_clean_ingest) {
    setup();
    char dir[300];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());   /* test_tmpdir() reuses its buffer */
    char ref[600], idx[600], cmd[1200];
    snprintf(ref, sizeof ref, "%s/ref", dir);
    snprintf(idx, sizeof idx, "%s/killed", dir);
    double t0 = now_s();
    pid_t pid = spawn_ingest(ref);
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0, "clean ingest failed");
    double full = now_s() - t0;
    size_t n_ref = 0;
    char *want = chunk_set(ref, &n_ref);
    REQUIRE(n_ref > 50, "%zu chunks", n_ref);
    unsigned seed = (unsigned)time(NULL);
    printf("  # kill -9 seed %u, clean ingest %.2f s, %zu chunks\n", seed, full, n_ref);
    srand(seed);
    int kills = 0, attempts = 0;
    while (kills < 10 && attempts < 40) {
        attempts++;
        /* a kill anywhere from process start-up to the end of a full run */
        useconds_t delay = (useconds_t)((double)rand() / RAND_MAX * full * 1e6);
        pid = spawn_ingest(idx);
        usleep(delay);
        kill(pid, SIGKILL);
        REQUIRE(waitpid(pid, &st, 0) == pid);
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
            kills++;
            struct stat sb;
            char db[700];
            snprintf(db, sizeof db, "%s/mrag.sqlite", idx);
            if (stat(db, &sb) == 0) check_consistent(idx);
        } else {
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "ingest exited %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            /* finished before the kill: start over so later kills land mid-run */
            snprintf(cmd, sizeof cmd, "rm -rf %s", test_shq(idx));
            REQUIRE(system(cmd) == 0);
        }
        if (test_g.failed) break;
    }
    CHECK(kills >= 10, "only %d of %d runs were killed mid-run", kills, attempts);
    /* the rerun finishes the job: exactly the chunks of the clean ingest */
    pid = spawn_ingest(idx);
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    check_consistent(idx);
    size_t n_got = 0;
    char *got = chunk_set(idx, &n_got);
    CHECK_EQ_INT(n_got, n_ref);
    CHECK(strcmp(got, want) == 0, "chunk sets differ after the rerun");
    free(got);
    free(want);
}

TEST(sigint_stops_between_documents_and_a_rerun_finishes) {
    setup();
    char dir[300], idx[600], outp[600];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(idx, sizeof idx, "%s/idx", dir);
    snprintf(outp, sizeof outp, "%s/out.txt", dir);
    int st = 0;
    /* interrupt once the first document is in (the output names it) */
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int fd = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
        execl(mrag, mrag, "ingest", corpus, "--index", idx, "-m", model_a, "--threads", "1", (char *)NULL);
        _exit(127);
    }
    bool seen = false;
    for (int i = 0; i < 2000 && !seen; i++) {
        char *o = test_read_file(outp, NULL);
        seen = o && strstr(o, "added ") != NULL;
        free(o);
        if (!seen) usleep(5000);
    }
    kill(pid, SIGINT);
    REQUIRE(waitpid(pid, &st, 0) == pid);
    char *o = test_read_file(outp, NULL);
    REQUIRE(o);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        free(o);
        SKIP("the ingest finished before SIGINT arrived (machine too fast for this corpus)");
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 130, "status %d", st);
    CHECK(strstr(o, "interrupted: ") != NULL, "%s", o);
    free(o);
    check_consistent(idx);
    char args[2048];
    snprintf(args, sizeof args, "ingest %s --index %s -m %s --threads 1", test_shq(corpus), test_shq(idx), test_shq(model_a));
    o = run(args, &st, NULL);
    CHECK_EQ_INT(st, 0);
    CHECK(strstr(o, "done: ") != NULL && strstr(o, " 0 failed") != NULL, "%s", o);
    free(o);
    check_consistent(idx);
}

TEST(eval_retrieval_reports_recall_as_json) {
    setup();
    const char *squad = test_require_shared("data/xquad.en.json");
    char sq[600], dir[300];
    snprintf(sq, sizeof sq, "%s", squad);
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    char args[2048];
    int st = -1;
    snprintf(args, sizeof args, "eval-retrieval --squad %s --index %s/ev -m %s --limit 6 --threads 1 --json", test_shq(sq),
             test_shq(dir), test_shq(model_a));
    char *out = run(args, &st, NULL);
    CHECK_EQ_INT(st, 0);
    cJSON *j = cJSON_Parse(out);
    REQUIRE(cJSON_IsObject(j), "not JSON: %s", out);
    CHECK_EQ_INT(cJSON_GetObjectItem(j, "paragraphs")->valueint, 6);
    int nq = cJSON_GetObjectItem(j, "questions")->valueint;
    CHECK(nq >= 6, "%d questions", nq);
    const char *modes[] = {"dense", "bm25", "hybrid"};
    for (int m = 0; m < 3; m++) {
        const cJSON *o = cJSON_GetObjectItem(j, modes[m]);
        REQUIRE(o, "%s missing", modes[m]);
        double r1 = cJSON_GetObjectItem(o, "recall@1")->valuedouble, r5 = cJSON_GetObjectItem(o, "recall@5")->valuedouble,
               r10 = cJSON_GetObjectItem(o, "recall@10")->valuedouble, mrr = cJSON_GetObjectItem(o, "mrr@10")->valuedouble;
        CHECK(0 <= r1 && r1 <= r5 && r5 <= r10 && r10 <= 1, "%s: %g %g %g", modes[m], r1, r5, r10);
        CHECK(r1 <= mrr + 1e-9 && mrr <= r10 + 1e-9, "%s: mrr %g", modes[m], mrr);
        /* 6 paragraphs, k = 10: every paragraph is in the top 10 */
        CHECK(r10 > 0.999, "%s: recall@10 %g with 6 paragraphs", modes[m], r10);
    }
    /* BM25 on SQuAD questions (written from the paragraph) finds most at rank 1 */
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "bm25"), "recall@1")->valuedouble > 0.6);
    cJSON_Delete(j);
    free(out);
}

/* The German set in the repository (tests/data/de_sample_qa.json): the
 * German pipeline end to end (stems, compounds), hybrid falling back to BM25
 * with the random model by itself, the layer sweep sharing one pass, and
 * `mrag tune` from pseudo-queries and from the labelled file. */
TEST(german_eval_layer_sweep_and_tune) {
    setup();
    char dir[300], args[2048];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    int st = -1;
    snprintf(args, sizeof args, "eval-retrieval --squad tests/data/de_sample_qa.json --index %s/de -m %s --threads 1 "
             "--layers 0,final --misses bm25 --json", test_shq(dir), test_shq(model_a));
    char *out = run(args, &st, NULL);
    CHECK_EQ_INT(st, 0);
    cJSON *j = cJSON_Parse(out);
    REQUIRE(cJSON_IsObject(j), "not JSON: %s", out);
    double bm = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "bm25"), "recall@1")->valuedouble;
    double hy = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "hybrid"), "recall@1")->valuedouble;
    double de = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "dense"), "recall@1")->valuedouble;
    /* 0.9375 on the 32 questions written with the tokenizer, 0.875 on all 48
     * since 16 were added by another hand for the evidence work (12 of 16);
     * unicode61 alone gets 0.75 on the 32 */
    CHECK(bm >= 0.85, "German BM25 recall@1 %.4f", bm);
    /* --misses bm25: exactly the questions BM25 does not rank first, each
     * with another paragraph first */
    int nq = cJSON_GetObjectItem(j, "questions")->valueint;
    const cJSON *ms = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "bm25"), "misses");
    REQUIRE(cJSON_IsArray(ms), "no bm25.misses: %s", out);
    CHECK_EQ_INT(cJSON_GetArraySize(ms), (int)lround((1 - bm) * nq));
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "dense"), "misses") == NULL, "misses listed for dense too");
    const cJSON *mi;
    cJSON_ArrayForEach(mi, ms) {
        int rk = cJSON_GetObjectItem(mi, "rank")->valueint;
        const char *para = cJSON_GetStringValue(cJSON_GetObjectItem(mi, "paragraph"));
        const char *first = cJSON_GetStringValue(cJSON_GetObjectItem(mi, "first"));
        CHECK(rk != 1 && rk >= 0 && rk <= 10, "rank %d", rk);
        CHECK(para && strncmp(para, "squad://", 8) == 0 && cJSON_GetStringValue(cJSON_GetObjectItem(mi, "question")));
        CHECK(first && para && strcmp(first, para) != 0, "first %s, paragraph %s", first ? first : "(null)", para ? para : "");
    }
    CHECK(hy >= bm - 0.005, "hybrid %.4f below BM25 %.4f", hy, bm);
    const cJSON *fu = cJSON_GetObjectItem(j, "fusion");
    REQUIRE(fu, "no fusion object");
    CHECK(cJSON_GetObjectItem(fu, "w_dense")->valuedouble == 0, "random model: dense weight %g",
          cJSON_GetObjectItem(fu, "w_dense")->valuedouble);
    CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(fu, "source")), "pseudo") == 0);
    const cJSON *ls = cJSON_GetObjectItem(j, "layers");
    REQUIRE(cJSON_GetArraySize(ls) == 2, "layers: %s", out);
    const cJSON *fin = cJSON_GetArrayItem(ls, 1);
    CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(fin, "layer")), "final") == 0);
    /* the sweep's final layer is the index's layer: the same dense figure */
    CHECK(fabs(cJSON_GetObjectItem(fin, "dense_recall@1")->valuedouble - de) < 1e-9, "sweep %g vs %g",
          cJSON_GetObjectItem(fin, "dense_recall@1")->valuedouble, de);
    CHECK(fabs(cJSON_GetObjectItem(fin, "hybrid_learned_recall@1")->valuedouble - hy) < 1e-9);
    cJSON_Delete(j);
    free(out);
    /* mrag tune: the text index is German, weights from pseudo-queries */
    snprintf(args, sizeof args, "tune --index %s/de -m %s --threads 1", test_shq(dir), test_shq(model_a));
    out = run(args, &st, NULL);
    CHECK_EQ_INT(st, 0);
    CHECK(strstr(out, "default language de") && strstr(out, "pseudo-queries") && strstr(out, "dense 0.00, bm25 1.00"), "%s", out);
    free(out);
    /* and from the labelled questions (the owner's file) */
    snprintf(args, sizeof args, "tune --index %s/de -m %s --threads 1 --squad tests/data/de_sample_qa.json --compounds dict",
             test_shq(dir), test_shq(model_a));
    out = run(args, &st, NULL);
    CHECK_EQ_INT(st, 0);
    CHECK(strstr(out, "48 labelled queries") && strstr(out, "compounds dict"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "tune --index %s/de --compounds nonsense", test_shq(dir));
    out = run(args, &st, NULL);
    CHECK_EQ_INT(st, 1);
    free(out);
}

/* `mrag tune --layer auto` on XQuAD with a 4-layer random model: layer 1
 * beats the final norm on pseudo-queries (dense MRR 0.664 vs 0.627 here),
 * so every chunk is re-embedded at layer 1 and the index says so. */
TEST(tune_layer_auto_reembeds_at_the_better_layer) {
    setup();
    char squad[600], m4[600], dir[300], args[2048];
    snprintf(squad, sizeof squad, "%s", test_require_shared("data/xquad.en.json"));   /* a static buffer */
    snprintf(m4, sizeof m4, "%s/m4.gguf", test_tmpdir());
    test_mkmodel(m4, "--dim 64 --layers 4 --heads 4 --kv-heads 1 --ff 128");
    snprintf(dir, sizeof dir, "%s/ev4", test_tmpdir());
    int st = -1;
    snprintf(args, sizeof args, "eval-retrieval --squad %s --index %s -m %s --threads 1 --json", test_shq(squad), test_shq(dir), test_shq(m4));
    char errf[600];
    snprintf(errf, sizeof errf, "%s/ev4.err", test_tmpdir());
    free(run(args, &st, errf));
    REQUIRE(st == 0, "%s", test_read_file(errf, NULL));
    snprintf(args, sizeof args, "tune --index %s -m %s --threads 1 --layer auto --candidates 1,final", test_shq(dir), test_shq(m4));
    char *out = run(args, &st, NULL);
    CHECK_EQ_INT(st, 0);
    CHECK(strstr(out, "layer 1      0.664") && strstr(out, "<- chosen") < strstr(out, "layer final") &&
          strstr(out, "re-embedded every chunk"), "%s", out);
    free(out);
    idx_store *s = NULL;
    REQUIRE(idx_open(dir, NULL, &s) == IDX_OK);
    idx_fingerprint fp;
    REQUIRE(idx_fingerprint_get(s, &fp) == IDX_OK);
    CHECK_EQ_INT(fp.layer, 1);
    CHECK_EQ_INT(idx_check(s), IDX_OK);
    rag_fusion f;
    CHECK(rag_fusion_load(s, &f) == RAG_OK && f.w_dense == 0, "weights learned again for the new layer");
    idx_close(s);
    /* the stored vectors are the layer-1 embeddings of the chunks' texts */
    REQUIRE(idx_open(dir, NULL, &s) == IDX_OK);
    llm_model *m = NULL;
    char err[256];
    llm_model_params mp = llm_model_default_params();
    REQUIRE(llm_model_load(m4, &mp, &m, err, sizeof err) == LLM_OK, "%s", err);
    llm_context_params cp = llm_context_default_params();
    cp.embd_layer = 1;
    cp.n_ctx = 2048;
    llm_context *c = NULL;
    REQUIRE(llm_context_new(m, &cp, &c, err, sizeof err) == LLM_OK, "%s", err);
    int64_t *ids = NULL;
    size_t n = 0;
    REQUIRE(idx_chunk_ids(s, false, &ids, &n) == IDX_OK && n > 100);
    for (size_t i = 0; i < n; i += n / 5) {
        idx_chunk ch;
        REQUIRE(idx_chunk_get(s, ids[i], &ch, NULL) == IDX_OK);
        float want[64], got[64];
        REQUIRE(llm_embed(c, ch.text, ch.text_len, want) == LLM_OK);
        REQUIRE(idx_chunk_vector(s, ids[i], got, 64) == IDX_OK);
        double dot = 0;
        for (int d = 0; d < 64; d++) dot += (double)want[d] * got[d];
        CHECK(dot > 0.9999, "chunk %lld: cosine %.6f with its layer-1 embedding", (long long)ids[i], dot);
        idx_chunk_release(&ch);
    }
    free(ids);
    llm_context_free(c);
    llm_model_free(m);
    idx_close(s);
}

/* True when text holds a raw control byte other than the newlines that end
 * lines (and tabs): ESC, BEL, CR, ... */
static bool has_raw_control(const char *text) {
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f) return true;
    return false;
}

TEST(file_names_with_control_bytes_are_escaped_in_output) {
    setup();
    const char *dir = test_tmpdir();
    char root[600], idx[700], errp[700];
    snprintf(root, sizeof root, "%s/names", dir);
    mkdir(root, 0755);
    /* names an attacker can create: a screen-clearing escape, a bell, a
     * carriage return that hides the start of the line, and a newline that
     * forges a line of its own; one of them fails to extract */
    static const char *const names[] = {"evil\x1b[2J\x1b[31mred.md", "bell\x07.md", "cr\rfake.md",
                                        "nl\nfailed    forged: x.md", "bad\x1b]0;title\x07.pdf"};
    for (int i = 0; i < 5; i++) {
        char p[800];
        snprintf(p, sizeof p, "%s/%s", root, names[i]);
        const char *body = i == 4 ? "%PDF-1.4 broken" : "# Note\n\nA note about the Velloxium protocol.\n";
        REQUIRE(test_write_file(p, body, strlen(body)) == 0, "cannot create %s", names[i]);
    }
    snprintf(idx, sizeof idx, "%s/idx", dir);
    snprintf(errp, sizeof errp, "%s/err.txt", dir);
    char args[2000];
    snprintf(args, sizeof args, "ingest %s --index %s -m %s --threads 1", test_shq(root), test_shq(idx), test_shq(model_a));
    int st;
    char *out = run(args, &st, errp);
    char *err = test_read_file(errp, NULL);
    CHECK_EQ_INT(st, 0);
    CHECK(!has_raw_control(out), "raw control bytes on stdout: %s", out);
    CHECK(err && !has_raw_control(err), "raw control bytes on stderr: %s", err ? err : "");
    /* every line is one the program wrote: no forged "failed" line */
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        CHECK(strncmp(l, "failed    forged", 16) != 0, "a forged line: %s", out);
    CHECK(strstr(out, "evil\\x1b[2J\\x1b[31mred.md") && strstr(out, "nl\\x0afailed") && strstr(out, "cr\\x0dfake.md"),
          "escaped names missing: %s", out);
    free(out);
    free(err);
    snprintf(args, sizeof args, "search --index %s -m %s --threads 1 --mode bm25 Velloxium", test_shq(idx),
             test_shq(model_a));
    out = run(args, &st, errp);
    CHECK_EQ_INT(st, 0);
    CHECK(strstr(out, "Velloxium") && !has_raw_control(out), "%s", out);
    free(out);
    /* error messages that name a path are escaped too */
    snprintf(args, sizeof args, "ingest %s/no\x1b[2Jsuch --index %s -m %s", test_shq(root), test_shq(idx), test_shq(model_a));
    out = run(args, &st, errp);
    err = test_read_file(errp, NULL);
    CHECK(st != 0 && err && !has_raw_control(err) && strstr(err, "\\x1b[2J"), "%s", err ? err : "");
    free(out);
    free(err);
}

TEST(hostile_files_are_refused_with_a_reason_and_the_run_goes_on) {
    setup();
    const char *dir = test_tmpdir();
    char root[600], idx[700], p[800];
    snprintf(root, sizeof root, "%s/hostile", dir);
    mkdir(root, 0755);
    /* issue 10's file: 2.2 MB, 200,000 attributes on one element (241 s of
     * CPU in libxml2 before the budget) */
    size_t cap = 3u << 20, n = 0;
    char *h = malloc(cap);
    REQUIRE(h);
    n += (size_t)snprintf(h + n, cap - n, "<html><body><div");
    for (int i = 0; i < 200000; i++) n += (size_t)snprintf(h + n, cap - n, " a%d=x", i);
    n += (size_t)snprintf(h + n, cap - n, ">text</div></body></html>");
    snprintf(p, sizeof p, "%s/attrs.html", root);
    REQUIRE(test_write_file(p, h, n) == 0);
    free(h);
    test_put_file(root, "fine.md", "# Fine\n\nThe Dravolin valve is on the left.\n");
    snprintf(idx, sizeof idx, "%s/idx", dir);
    char args[2000];
    snprintf(args, sizeof args, "ingest %s --index %s -m %s --threads 1", test_shq(root), test_shq(idx), test_shq(model_a));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int st;
    char *out = run(args, &st, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    CHECK_EQ_INT(st, 0);
    CHECK(strstr(out, "1 added") && strstr(out, "1 failed"), "%s", out);
    CHECK(strstr(out, "attrs.html: ") && strstr(out, "refused") && strstr(out, "200000 attributes"), "%s", out);
    CHECK(secs < 60, "the run took %.0f s", secs);
    free(out);
    /* the budget options are checked like every number */
    snprintf(args, sizeof args, "ingest %s --index %s -m %s --max-file-seconds soon", test_shq(root), test_shq(idx),
             test_shq(model_a));
    out = run(args, &st, NULL);
    CHECK_EQ_INT(st, 2);
    free(out);
}

TEST_MAIN(RUN(ingest_prints_summary_with_reasons_and_exit_codes), RUN(file_names_with_control_bytes_are_escaped_in_output),
          RUN(hostile_files_are_refused_with_a_reason_and_the_run_goes_on),
          RUN(search_prints_citations_and_valid_json),
          RUN(kill_9_at_random_moments_then_rerun_equals_clean_ingest),
          RUN(sigint_stops_between_documents_and_a_rerun_finishes),
          RUN(eval_retrieval_reports_recall_as_json), RUN(german_eval_layer_sweep_and_tune),
          RUN(tune_layer_auto_reembeds_at_the_better_layer))
