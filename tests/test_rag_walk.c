/* test_rag_walk.c — the ingestion walker: skip reasons, symlinks and loops,
 * limits, unreadable paths, deterministic order. */
#include "rag/rag.h"
#include "tests/test.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void put(const char *dir, const char *rel, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    REQUIRE(test_write_file(p, text, strlen(text)) == 0, "writing %s", p);
}

static void mkd(const char *dir, const char *rel) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    REQUIRE(mkdir(p, 0755) == 0, "mkdir %s: %s", p, strerror(errno));
}

static void lnk(const char *dir, const char *rel, const char *target) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    REQUIRE(symlink(target, p) == 0, "symlink %s: %s", p, strerror(errno));
}

static const rag_walk_entry *find(const rag_walk_result *r, const char *rel) {
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->entries[i].rel, rel) == 0) return &r->entries[i];
    return NULL;
}

#define CHECK_SKIP(r, rel, reason)                                                            \
    do {                                                                                      \
        const rag_walk_entry *e_ = find(r, rel);                                              \
        CHECK(e_ != NULL, "no entry for %s", rel);                                            \
        if (e_) CHECK(e_->skip == (reason), "%s: skip %s, expected %s", rel,                  \
                      rag_skip_reason_str(e_->skip), rag_skip_reason_str(reason));            \
    } while (0)

/* A tree with one file of every kind the walker must tell apart. */
static const char *make_tree(void) {
    const char *d = test_tmpdir();
    static char root[512];
    snprintf(root, sizeof root, "%s", d);
    put(root, "a.md", "# A\n\ntext\n");
    put(root, "b.txt", "plain text\n");
    put(root, "c.html", "<p>hi</p>");
    put(root, "C2.HTM", "<p>upper case extension</p>");
    put(root, "d.pdf", "%PDF-1.4 not really");
    put(root, "notes.markdown", "notes");
    put(root, "e.exe", "MZ\x01\x02");
    put(root, "image.png", "\x89PNG");
    put(root, "README", "a readme without extension\n");
    char p[1024];
    snprintf(p, sizeof p, "%s/blob", root);
    REQUIRE(test_write_file(p, "\x7f" "ELF\0\0\0\x01\x02", 9) == 0);
    snprintf(p, sizeof p, "%s/nul.txt", root);
    REQUIRE(test_write_file(p, "text\0with NUL", 13) == 0);
    snprintf(p, sizeof p, "%s/utf16.txt", root);
    REQUIRE(test_write_file(p, "\xff\xfeh\0i\0", 6) == 0);
    put(root, "empty.txt", "");
    mkd(root, ".git");
    put(root, ".git/config", "[core]\n");
    mkd(root, ".hidden");
    put(root, ".hidden/secret.md", "secret\n");
    put(root, ".env.txt", "KEY=1\n");
    mkd(root, "sub");
    mkd(root, "sub/deeper");
    put(root, "sub/deeper/deep.md", "# Deep\n");
    put(root, "sub/x.txt", "x\n");
    return root;
}

TEST(walk_classifies_files) {
    const char *root = make_tree();
    rag_walk_result r;
    char err[512];
    REQUIRE(rag_walk(root, NULL, &r, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_SKIP(&r, "a.md", RAG_SKIP_NONE);
    CHECK_SKIP(&r, "b.txt", RAG_SKIP_NONE);
    CHECK_SKIP(&r, "c.html", RAG_SKIP_NONE);
    CHECK_SKIP(&r, "C2.HTM", RAG_SKIP_NONE);
    CHECK_SKIP(&r, "d.pdf", RAG_SKIP_NONE);
    CHECK_SKIP(&r, "notes.markdown", RAG_SKIP_NONE);
    CHECK_SKIP(&r, "README", RAG_SKIP_NONE);
    CHECK_SKIP(&r, "utf16.txt", RAG_SKIP_NONE);
    CHECK_SKIP(&r, "empty.txt", RAG_SKIP_NONE);
    CHECK_SKIP(&r, "e.exe", RAG_SKIP_EXTENSION);
    CHECK_SKIP(&r, "image.png", RAG_SKIP_EXTENSION);
    CHECK_SKIP(&r, "blob", RAG_SKIP_BINARY);
    CHECK_SKIP(&r, "nul.txt", RAG_SKIP_BINARY);
    CHECK_SKIP(&r, ".git", RAG_SKIP_HIDDEN);
    CHECK_SKIP(&r, ".hidden", RAG_SKIP_HIDDEN);
    CHECK_SKIP(&r, ".env.txt", RAG_SKIP_HIDDEN);
    CHECK_SKIP(&r, "sub/deeper/deep.md", RAG_SKIP_NONE);
    CHECK_SKIP(&r, "sub/x.txt", RAG_SKIP_NONE);
    CHECK(find(&r, ".git/config") == NULL, "nothing under .git is listed");
    CHECK(find(&r, ".hidden/secret.md") == NULL, "nothing under hidden folders is listed");
    const rag_walk_entry *e = find(&r, "a.md");
    if (e) {
        CHECK_EQ_INT(e->type, RAG_DOC_MD);
        CHECK_EQ_INT(e->size, 10);
        CHECK(e->mtime_sec > 1000000000, "mtime filled");
        char want[1024];
        snprintf(want, sizeof want, "%s/a.md", root);
        CHECK_EQ_STR(e->path, want);
    }
    e = find(&r, "README");
    if (e) CHECK_EQ_INT(e->type, RAG_DOC_TXT);
    e = find(&r, "C2.HTM");
    if (e) CHECK_EQ_INT(e->type, RAG_DOC_HTML);
    e = find(&r, "image.png");
    if (e) CHECK(e->detail && strcmp(e->detail, ".png") == 0, "the detail names the extension");
    size_t files = 0;
    for (size_t i = 0; i < r.n; i++) files += r.entries[i].skip == RAG_SKIP_NONE;
    CHECK_EQ_INT(r.n_files, files);
    CHECK_EQ_INT(r.n_files, 11);
    rag_walk_result_free(&r);
}

TEST(walk_order_is_sorted_and_repeatable) {
    const char *root = make_tree();
    rag_walk_result a, b;
    char err[512];
    REQUIRE(rag_walk(root, NULL, &a, err, sizeof err) == RAG_OK, "%s", err);
    REQUIRE(rag_walk(root, NULL, &b, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_EQ_INT(a.n, b.n);
    for (size_t i = 0; i < a.n && i < b.n; i++) {
        CHECK_EQ_STR(a.entries[i].rel, b.entries[i].rel);
        if (i) CHECK(strcmp(a.entries[i - 1].rel, a.entries[i].rel) < 0, "sorted at %zu", i);
    }
    rag_walk_result_free(&a);
    rag_walk_result_free(&b);
    /* trailing slashes change nothing */
    char with_slash[600];
    snprintf(with_slash, sizeof with_slash, "%s//", root);
    REQUIRE(rag_walk(with_slash, NULL, &a, err, sizeof err) == RAG_OK, "%s", err);
    const rag_walk_entry *e = find(&a, "sub/x.txt");
    CHECK(e != NULL);
    if (e) {
        char want[700];
        snprintf(want, sizeof want, "%s/sub/x.txt", root);
        CHECK_EQ_STR(e->path, want);
    }
    rag_walk_result_free(&a);
}

TEST(walk_size_limit) {
    const char *root = test_tmpdir();
    char big[4096];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    put(root, "big.txt", big);
    put(root, "small.txt", "small");
    rag_walk_params p = rag_walk_default_params();
    CHECK_EQ_INT(p.max_file_bytes, 50ull * 1024 * 1024);
    p.max_file_bytes = 1000;
    rag_walk_result r;
    char err[512];
    REQUIRE(rag_walk(root, &p, &r, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_SKIP(&r, "big.txt", RAG_SKIP_TOO_LARGE);
    CHECK_SKIP(&r, "small.txt", RAG_SKIP_NONE);
    rag_walk_result_free(&r);
    p.max_file_bytes = 4095;   /* exactly the size: allowed */
    REQUIRE(rag_walk(root, &p, &r, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_SKIP(&r, "big.txt", RAG_SKIP_NONE);
    rag_walk_result_free(&r);
}

TEST(walk_symlinks_and_loops) {
    const char *root = make_tree();
    const char *outside = test_tmpdir();
    put(outside, "leak.txt", "must never be ingested\n");
    char target[700];
    snprintf(target, sizeof target, "%s/leak.txt", outside);
    lnk(root, "out-file.txt", target);
    lnk(root, "out-dir", outside);
    lnk(root, "up", "..");                   /* the root's parent: outside */
    lnk(root, "sub/deeper/loop", "../..");   /* back to the root: a loop */
    lnk(root, "sub/same.md", "deeper/deep.md");
    lnk(root, "zlink", "sub");               /* a second way into sub */
    lnk(root, "broken.txt", "does-not-exist");
    lnk(root, "self.txt", "self.txt");       /* ELOOP: unreadable */
    lnk(root, "peek.md", ".hidden/secret.md");   /* into a hidden folder */
    lnk(root, "gitdir", ".git");
    rag_walk_result r;
    char err[512];
    REQUIRE(rag_walk(root, NULL, &r, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_SKIP(&r, "out-file.txt", RAG_SKIP_SYMLINK_OUTSIDE);
    CHECK_SKIP(&r, "out-dir", RAG_SKIP_SYMLINK_OUTSIDE);
    CHECK_SKIP(&r, "up", RAG_SKIP_SYMLINK_OUTSIDE);
    /* links inside the root are never followed: their targets are walked
     * at their own paths (so a loop cannot happen through a link) */
    CHECK_SKIP(&r, "sub/deeper/loop", RAG_SKIP_LINK);
    CHECK_SKIP(&r, "zlink", RAG_SKIP_LINK);
    CHECK_SKIP(&r, "sub/same.md", RAG_SKIP_LINK);
    CHECK_SKIP(&r, "sub/deeper/deep.md", RAG_SKIP_NONE);
    CHECK_SKIP(&r, "broken.txt", RAG_SKIP_BROKEN_LINK);
    CHECK_SKIP(&r, "self.txt", RAG_SKIP_UNREADABLE);
    CHECK_SKIP(&r, "peek.md", RAG_SKIP_HIDDEN);
    CHECK_SKIP(&r, "gitdir", RAG_SKIP_HIDDEN);
    CHECK(find(&r, "gitdir/config") == NULL, "nothing through a link into .git");
    const rag_walk_entry *e = find(&r, "self.txt");
    if (e) CHECK(e->detail && e->detail[0], "unreadable entries carry the system's reason");
    /* the link names its target, relative to the root */
    const rag_walk_entry *same = find(&r, "sub/same.md"), *zl = find(&r, "zlink"), *lp = find(&r, "sub/deeper/loop");
    if (same) CHECK(same->detail && strcmp(same->detail, "sub/deeper/deep.md") == 0, "%s", same->detail ? same->detail : "(null)");
    if (zl) CHECK(zl->detail && strcmp(zl->detail, "sub") == 0, "%s", zl->detail ? zl->detail : "(null)");
    if (lp) CHECK(lp->detail && strcmp(lp->detail, ".") == 0, "%s", lp->detail ? lp->detail : "(null)");
    for (size_t i = 0; i < r.n; i++) {
        CHECK(strstr(r.entries[i].rel, "leak") == NULL, "nothing from outside: %s", r.entries[i].rel);
        CHECK(strncmp(r.entries[i].rel, "zlink/", 6) != 0, "nothing through the second way in: %s", r.entries[i].rel);
    }
    rag_walk_result_free(&r);
}

TEST(walk_hard_links_are_one_file_with_every_name) {
    const char *root = test_tmpdir();
    mkd(root, "a");
    mkd(root, "b");
    put(root, "b/doc.md", "# Doc\n\ntext\n");
    char p[1024], q[1024];
    snprintf(p, sizeof p, "%s/b/doc.md", root);
    snprintf(q, sizeof q, "%s/a/other-name.md", root);
    REQUIRE(link(p, q) == 0, "link: %s", strerror(errno));
    snprintf(q, sizeof q, "%s/b/doc.png", root);        /* a name that is not ingested */
    REQUIRE(link(p, q) == 0, "link: %s", strerror(errno));
    rag_walk_result r;
    char err[512];
    REQUIRE(rag_walk(root, NULL, &r, err, sizeof err) == RAG_OK, "%s", err);
    /* the first name met is kept; the other names it */
    CHECK_SKIP(&r, "a/other-name.md", RAG_SKIP_NONE);
    CHECK_SKIP(&r, "b/doc.md", RAG_SKIP_DUPLICATE);
    CHECK_SKIP(&r, "b/doc.png", RAG_SKIP_EXTENSION);
    const rag_walk_entry *d = find(&r, "b/doc.md"), *k = find(&r, "a/other-name.md");
    if (d) CHECK(d->same_as && strcmp(d->same_as, "a/other-name.md") == 0, "%s", d->same_as ? d->same_as : "(null)");
    if (k && d) CHECK(k->ino != 0 && k->dev == d->dev && k->ino == d->ino);
    CHECK_EQ_INT(r.n_files, 1);
    rag_walk_result_free(&r);
}

/* The entry of rel; REQUIREs it. */
static const rag_walk_entry *must_find(const rag_walk_result *r, const char *rel) {
    const rag_walk_entry *e = find(r, rel);
    REQUIRE(e != NULL, "no entry %s", rel);
    return e;
}

TEST(walk_open_refuses_what_changed_since_the_walk) {
    char root[600], outside[600];
    snprintf(root, sizeof root, "%s", test_tmpdir());
    snprintf(outside, sizeof outside, "%s", test_tmpdir());
    put(outside, "secret.md", "OUTSIDE SECRET\n");
    mkd(outside, "pub");
    put(outside, "pub/a.md", "OUTSIDE SECRET\n");
    mkd(root, "pub");
    put(root, "pub/a.md", "# A\n\npublic a\n");
    put(root, "b.md", "# B\n\npublic b\n");
    put(root, "c.md", "# C\n\npublic c\n");
    put(root, "d.md", "# D\n\npublic d\n");
    rag_walk_result r;
    char err[512], p[1024], q[1024];
    REQUIRE(rag_walk(root, NULL, &r, err, sizeof err) == RAG_OK, "%s", err);
    int fd = -1;
    /* unchanged: opens, and reads the walked file */
    REQUIRE(rag_walk_open(&r, must_find(&r, "d.md"), &fd, err, sizeof err) == RAG_OK, "%s", err);
    char buf[64] = "";
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    CHECK(n > 0 && strstr(buf, "public d"), "%s", buf);
    /* a file swapped for a link to a file outside the root */
    snprintf(p, sizeof p, "%s/b.md", root);
    snprintf(q, sizeof q, "%s/secret.md", outside);
    REQUIRE(unlink(p) == 0 && symlink(q, p) == 0);
    CHECK_EQ_INT(rag_walk_open(&r, must_find(&r, "b.md"), &fd, err, sizeof err), RAG_ERR_CHANGED);
    CHECK(strstr(err, "symlink") != NULL, "%s", err);
    /* a folder swapped for a link to a folder outside with the same names */
    char pub[1024], pub_old[1024];
    snprintf(pub, sizeof pub, "%s/pub", root);
    snprintf(pub_old, sizeof pub_old, "%s/pub-old", root);
    snprintf(q, sizeof q, "%s/pub", outside);
    REQUIRE(rename(pub, pub_old) == 0 && symlink(q, pub) == 0);
    CHECK_EQ_INT(rag_walk_open(&r, must_find(&r, "pub/a.md"), &fd, err, sizeof err), RAG_ERR_CHANGED);
    /* a file replaced by another regular file (a hard link to elsewhere, or
     * a rename over it): not the file the walk saw */
    snprintf(p, sizeof p, "%s/c.md", root);
    snprintf(q, sizeof q, "%s/secret.md", outside);
    REQUIRE(unlink(p) == 0);
    if (link(q, p) != 0) {
        /* another file system: a copy is another inode just the same */
        REQUIRE(test_write_file(p, "OUTSIDE SECRET\n", 15) == 0);
    }
    CHECK_EQ_INT(rag_walk_open(&r, must_find(&r, "c.md"), &fd, err, sizeof err), RAG_ERR_CHANGED);
    CHECK(strstr(err, "replaced") != NULL, "%s", err);
    /* the root itself swapped for a link */
    char root_old[1024];
    snprintf(root_old, sizeof root_old, "%s.old", root);
    REQUIRE(rename(root, root_old) == 0 && symlink(outside, root) == 0);
    int rc = rag_walk_open(&r, must_find(&r, "d.md"), &fd, err, sizeof err);
    CHECK(rc == RAG_ERR_IO || rc == RAG_ERR_CHANGED, "%d: %s", rc, err);
    REQUIRE(unlink(root) == 0 && rename(root_old, root) == 0);
    rag_walk_result_free(&r);
}

TEST(walk_special_files_and_depth) {
    const char *root = test_tmpdir();
    char p[700];
    snprintf(p, sizeof p, "%s/fifo.txt", root);
    REQUIRE(mkfifo(p, 0600) == 0, "mkfifo: %s", strerror(errno));
    mkd(root, "a");
    mkd(root, "a/b");
    mkd(root, "a/b/c");
    put(root, "a/b/c/d.txt", "deep\n");
    put(root, "a/b/ok.txt", "ok\n");
    rag_walk_params wp = rag_walk_default_params();
    wp.max_depth = 2;
    rag_walk_result r;
    char err[512];
    REQUIRE(rag_walk(root, &wp, &r, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_SKIP(&r, "fifo.txt", RAG_SKIP_SPECIAL);
    CHECK_SKIP(&r, "a/b/ok.txt", RAG_SKIP_NONE);
    CHECK_SKIP(&r, "a/b/c", RAG_SKIP_DEPTH);
    CHECK(find(&r, "a/b/c/d.txt") == NULL);
    rag_walk_result_free(&r);
}

/* Walks root and reports, as bits of the result, what was wrong: 1 the walk
 * failed, 2 "locked" was not reported unreadable, 4 "z.txt" was not kept. */
static int walk_locked_tree(const char *root) {
    rag_walk_result r;
    char err[512];
    if (rag_walk(root, NULL, &r, err, sizeof err) != RAG_OK) return 1;
    int bad = 0;
    bool locked_unreadable = false, z_kept = false;
    for (size_t i = 0; i < r.n; i++) {
        if (strcmp(r.entries[i].rel, "locked") == 0 && r.entries[i].skip == RAG_SKIP_UNREADABLE)
            locked_unreadable = true;
        if (strcmp(r.entries[i].rel, "z.txt") == 0 && r.entries[i].skip == RAG_SKIP_NONE) z_kept = true;
    }
    if (!locked_unreadable) bad |= 2;
    if (!z_kept) bad |= 4;
    rag_walk_result_free(&r);
    return bad;
}

TEST(walk_unreadable_folder_goes_on) {
    const char *root = test_tmpdir();
    mkd(root, "locked");
    put(root, "locked/x.txt", "x\n");
    put(root, "z.txt", "z\n");
    char p[700];
    snprintf(p, sizeof p, "%s/locked", root);
    REQUIRE(chmod(p, 0) == 0);
    int bad;
    if (geteuid() != 0) {
        bad = walk_locked_tree(root);
    } else {
        /* Permissions do not stop root: walk as "nobody" in a child. The
         * temporary folders must then be enterable by that user. */
        char parent[700];
        snprintf(parent, sizeof parent, "%s", root);
        char *slash = strrchr(parent, '/');
        REQUIRE(slash != NULL);
        *slash = 0;
        REQUIRE(chmod(parent, 0755) == 0 && chmod(root, 0755) == 0);
        fflush(stdout);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0) _exit(64);
            _exit(walk_locked_tree(root));
        }
        int st = 0;
        REQUIRE(waitpid(pid, &st, 0) == pid);
        REQUIRE(WIFEXITED(st), "the walking child crashed");
        bad = WEXITSTATUS(st);
        REQUIRE(bad != 64, "cannot become the user nobody");
    }
    chmod(p, 0755);
    CHECK(!(bad & 1), "the walk failed as a whole");
    CHECK(!(bad & 2), "the locked folder is reported as unreadable");
    CHECK(!(bad & 4), "the readable file beside it is still walked");
}

TEST(walk_bad_roots) {
    rag_walk_result r;
    char err[512] = "";
    const char *root = test_tmpdir();
    char missing[700];
    snprintf(missing, sizeof missing, "%s/no-such-folder", root);
    CHECK_EQ_INT(rag_walk(missing, NULL, &r, err, sizeof err), RAG_ERR_IO);
    CHECK(strstr(err, "no-such-folder") != NULL, "the error names the path: %s", err);
    CHECK_EQ_INT(r.n, 0);
    CHECK_EQ_INT(rag_walk("", NULL, &r, err, sizeof err), RAG_ERR_ARG);
    /* a single file as the root */
    put(root, "one.md", "# One\n");
    char one[700];
    snprintf(one, sizeof one, "%s/one.md", root);
    REQUIRE(rag_walk(one, NULL, &r, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_EQ_INT(r.n, 1);
    if (r.n == 1) {
        CHECK_EQ_STR(r.entries[0].rel, "one.md");
        CHECK_EQ_STR(r.entries[0].path, one);
        CHECK_EQ_INT(r.entries[0].type, RAG_DOC_MD);
    }
    rag_walk_result_free(&r);
    /* max_entries */
    rag_walk_params wp = rag_walk_default_params();
    wp.max_entries = 3;
    const char *many = make_tree();
    CHECK_EQ_INT(rag_walk(many, &wp, &r, err, sizeof err), RAG_ERR_LIMIT);
    CHECK(strstr(err, "entries") != NULL, "%s", err);
}

TEST(walk_sample_corpus) {
    rag_walk_result r;
    char err[512];
    REQUIRE(rag_walk("data/sample", NULL, &r, err, sizeof err) == RAG_OK, "%s", err);
    size_t md = 0, html = 0, txt = 0;
    for (size_t i = 0; i < r.n; i++) {
        const rag_walk_entry *e = &r.entries[i];
        CHECK(e->skip == RAG_SKIP_NONE, "%s skipped: %s", e->rel, rag_skip_reason_str(e->skip));
        md += e->type == RAG_DOC_MD;
        html += e->type == RAG_DOC_HTML;
        txt += e->type == RAG_DOC_TXT;
    }
    CHECK(r.n_files >= 15, "at least 15 documents, found %zu", r.n_files);
    CHECK(md >= 3 && html >= 3 && txt >= 3, "md %zu, html %zu, txt %zu", md, html, txt);
    rag_walk_result_free(&r);
}

TEST_MAIN(RUN(walk_classifies_files), RUN(walk_order_is_sorted_and_repeatable), RUN(walk_size_limit),
          RUN(walk_symlinks_and_loops), RUN(walk_hard_links_are_one_file_with_every_name),
          RUN(walk_open_refuses_what_changed_since_the_walk), RUN(walk_special_files_and_depth), RUN(walk_unreadable_folder_goes_on),
          RUN(walk_bad_roots), RUN(walk_sample_corpus))
