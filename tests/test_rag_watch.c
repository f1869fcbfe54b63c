/* test_rag_watch.c — watch mode: the inotify watcher's batches (creates,
 * edits, renames, deletes, new folders, hidden temp files ignored, a real
 * queue overflow), and `mrag ingest --watch` applying each kind of change
 * to the index as it happens, with an overflow rescan. */
#define _GNU_SOURCE
#include "rag/rag.h"
#include "tests/test.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void put(const char *dir, const char *name, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    REQUIRE(test_write_file(p, text, strlen(text)) == 0, "%s", p);
}

static rag_watch_batch next_batch(rag_watch *w) {
    rag_watch_batch b;
    char err[256];
    int rc = rag_watch_next(w, 5000, NULL, &b, err, sizeof err);
    REQUIRE(rc == RAG_OK, "a batch within 5 s: rc %d %s", rc, err);
    return b;
}

TEST(batches_report_each_kind_of_change) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    rag_watch_params p = rag_watch_default_params();
    p.debounce_ms = 100;
    rag_watch *w = NULL;
    char err[256];
    REQUIRE(rag_watch_open(dir, &p, &w, err, sizeof err) == RAG_OK, "%s", err);
    put(dir, "a.md", "# A\n\nalpha\n");
    rag_watch_batch b = next_batch(w);
    CHECK(b.created >= 1 && !b.overflow, "created %zu", b.created);
    CHECK_EQ_STR(b.first_path, "a.md");
    put(dir, "a.md", "# A\n\nalpha beta\n");
    b = next_batch(w);
    CHECK(b.modified >= 1 && b.created == 0, "modified %zu created %zu", b.modified, b.created);
    char from[1024], to[1024];
    snprintf(from, sizeof from, "%s/a.md", dir);
    snprintf(to, sizeof to, "%s/b.md", dir);
    REQUIRE(rename(from, to) == 0);
    b = next_batch(w);
    CHECK(b.moved == 2, "a rename is a move out and in: %zu", b.moved);
    REQUIRE(unlink(to) == 0);
    b = next_batch(w);
    CHECK(b.deleted == 1, "deleted %zu", b.deleted);
    /* a new folder is watched at once: a file created in it right after */
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/new", dir);
    REQUIRE(mkdir(sub, 0700) == 0);
    b = next_batch(w);
    put(sub, "c.txt", "gamma\n");
    b = next_batch(w);
    CHECK(b.created >= 1, "a file in the new folder: created %zu", b.created);
    CHECK_EQ_STR(b.first_path, "new/c.txt");
    /* hidden names (editors' temp files) are not changes */
    put(dir, ".a.md.swp", "x");
    CHECK_EQ_INT(rag_watch_next(w, 600, NULL, &b, err, sizeof err), RAG_ERR_NOTFOUND);
    /* a burst is one batch (debounced) */
    for (int i = 0; i < 50; i++) {
        char n[32];
        snprintf(n, sizeof n, "f%d.txt", i);
        put(dir, n, "x\n");
    }
    b = next_batch(w);
    CHECK(b.created == 50, "50 creates in one batch: %zu", b.created);
    CHECK_EQ_INT(rag_watch_next(w, 400, NULL, &b, err, sizeof err), RAG_ERR_NOTFOUND);
    rag_watch_close(w);
}

static long max_queued(void) {
    char *s = test_read_file("/proc/sys/fs/inotify/max_queued_events", NULL);
    long v = s ? atol(s) : -1;
    free(s);
    return v;
}

TEST(queue_overflow_is_reported_and_the_tree_rewatched) {
    long q = max_queued();
    if (q <= 0 || q > 200000) SKIP("max_queued_events is %ld: flooding it would take too long", q);
    char dir[512];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    rag_watch *w = NULL;
    char err[256];
    rag_watch_params p = rag_watch_default_params();
    p.debounce_ms = 100;
    REQUIRE(rag_watch_open(dir, &p, &w, err, sizeof err) == RAG_OK, "%s", err);
    /* nobody reads while each file makes two events (create, close): the
     * kernel queue of q events overflows */
    long n = q / 2 + 500;
    char path[1024];
    for (long i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/f%ld", dir, i);
        int fd = open(path, O_CREAT | O_WRONLY, 0600);
        REQUIRE(fd >= 0);
        close(fd);
    }
    /* a folder created while the queue was full: its event is lost */
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/late", dir);
    REQUIRE(mkdir(sub, 0700) == 0);
    rag_watch_batch b;
    REQUIRE(rag_watch_next(w, 5000, NULL, &b, err, sizeof err) == RAG_OK, "%s", err);
    CHECK(b.overflow, "overflow after %ld files (%zu events)", n, b.events);
    CHECK(rag_watch_resync(w) == 2, "the root and the late folder are watched after the resync");
    /* and the late folder's changes now arrive */
    put(sub, "x.txt", "x\n");
    b = next_batch(w);
    CHECK_EQ_STR(b.first_path, "late/x.txt");
    rag_watch_close(w);
}

/* ---------------------------------------------------- mrag ingest --watch */
static char *slurp(const char *p) {
    char *s = test_read_file(p, NULL);
    return s ? s : strdup("");
}

/* Waits up to 20 s until the log holds want (after `from` bytes). */
static bool wait_log(const char *log, size_t from, const char *want) {
    for (int i = 0; i < 400; i++) {
        char *s = slurp(log);
        bool ok = strlen(s) > from && strstr(s + from, want);
        free(s);
        if (ok) return true;
        usleep(50000);
    }
    return false;
}

static size_t log_len(const char *log) {
    char *s = slurp(log);
    size_t n = strlen(s);
    free(s);
    return n;
}

TEST(ingest_watch_applies_creates_edits_renames_deletes) {
    char mrag[512];
    snprintf(mrag, sizeof mrag, "%s/mrag", test_build_dir());
    if (access(mrag, X_OK) != 0) SKIP("%s is missing (run make)", mrag);
    char base[512], docs[600], idx[600], model[600], log[600];
    snprintf(base, sizeof base, "%s", test_tmpdir());
    snprintf(docs, sizeof docs, "%s/docs", base);
    snprintf(idx, sizeof idx, "%s/idx", base);
    snprintf(model, sizeof model, "%s/m.gguf", base);
    snprintf(log, sizeof log, "%s/out.log", base);
    test_mkmodel(model, "--dim 64 --layers 1 --heads 4 --kv-heads 1 --ff 128 --seed 3");
    REQUIRE(mkdir(docs, 0700) == 0);
    put(docs, "start.md", "# Start\n\nThe first document.\n");
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_CREAT | O_WRONLY | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(mrag, mrag, "ingest", docs, "--index", idx, "-m", model, "--watch", "--debounce", "150", (char *)NULL);
        _exit(127);
    }
    CHECK(wait_log(log, 0, "watching"), "the first run ends and watching starts");
    CHECK(wait_log(log, 0, "/start.md (1 chunk)"), "the first run adds start.md");
    size_t at = log_len(log);
    put(docs, "new.md", "# New\n\nA new document about ferries.\n");
    CHECK(wait_log(log, at, "/new.md (1 chunk)"), "a create is added");
    at = log_len(log);
    put(docs, "new.md", "# New\n\nAn edited document about ferries and trains.\n");
    CHECK(wait_log(log, at, "updated   "), "an edit is an update");
    at = log_len(log);
    char from[1024], to[1024];
    snprintf(from, sizeof from, "%s/new.md", docs);
    snprintf(to, sizeof to, "%s/moved.md", docs);
    REQUIRE(rename(from, to) == 0);
    CHECK(wait_log(log, at, "/moved.md: from "), "a rename keeps the chunks");
    at = log_len(log);
    REQUIRE(unlink(to) == 0);
    CHECK(wait_log(log, at, "/moved.md: no longer in the folder"), "a delete removes");
    at = log_len(log);
    /* a folder created with a file in it */
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/team", docs);
    REQUIRE(mkdir(sub, 0700) == 0);
    put(sub, "notes.txt", "Team notes about the rota.\n");
    CHECK(wait_log(log, at, "/team/notes.txt (1 chunk)"), "a file in a new folder is added");
    if (test_g.failed) {
        char *all = slurp(log);
        printf("%s", all);
        free(all);
    }
    kill(pid, SIGINT);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 130, "Ctrl-C ends watch mode with 130 (status %d)", st);
    /* the index holds exactly what a fresh full run gives */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL %s ingest %s --index %s -m %s 2>&1", mrag, docs, idx, model);
    int status;
    char *out = test_run_capture(cmd, &status);
    CHECK(out && status == 0 && strstr(out, "0 added, 0 updated, 0 renamed, 0 removed, 2 unchanged"),
          "a full run after the watch finds nothing to do: %s", out ? out : "");
    free(out);
}

TEST_MAIN(RUN(batches_report_each_kind_of_change), RUN(queue_overflow_is_reported_and_the_tree_rewatched),
          RUN(ingest_watch_applies_creates_edits_renames_deletes))
