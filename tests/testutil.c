/* testutil.c — the harness behind tests/test.h and helpers shared by tests. */
#define _GNU_SOURCE
#include "tests/test.h"
#include "index/index.h"

#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <string.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

test_state test_g;

void test_begin(const char *file) {
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    static char name[128];
    snprintf(name, sizeof name, "%s", base);
    char *dot = strrchr(name, '.');
    if (dot) *dot = 0;
    test_g.file = name;
}

void test_fail(const char *file, int line, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (test_g.failed < 20)
        printf("  # %s/%s: %s:%d: %s\n", test_g.file, test_g.name ? test_g.name : "?", file, line, msg);
    test_g.failed++;
    fflush(stdout);
}

void test_skip(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("skip %s/%s: %s\n", test_g.file, test_g.name, msg);
    fflush(stdout);
    test_g.skipped = true;
    longjmp(test_g.abort_case, 1);
}

void test_run_case(const char *name, void (*fn)(void)) {
    test_g.name = name;
    test_g.failed = 0;
    test_g.skipped = false;
    if (setjmp(test_g.abort_case) == 0) fn();
    if (test_g.skipped && test_g.failed == 0) {
        test_g.n_skip++;
    } else if (test_g.failed) {
        printf("FAIL %s/%s (%d check%s failed)\n", test_g.file, name, test_g.failed, test_g.failed == 1 ? "" : "s");
        test_g.n_fail++;
    } else {
        printf("ok   %s/%s\n", test_g.file, name);
        test_g.n_ok++;
    }
    fflush(stdout);
}

int test_finish(void) {
    return test_g.n_fail ? 1 : 0;
}

static char *dup_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

const char *test_shared_path(const char *rel) {
    static char buf[4096];
    const char *env = getenv("MRAG_SHARED");
    struct stat st;
    if (env && *env) {
        snprintf(buf, sizeof buf, "%s/%s", env, rel);
        return stat(buf, &st) == 0 ? buf : NULL;
    }
    /* Tests run from the repository root; ../shared sits beside it. */
    snprintf(buf, sizeof buf, "../shared/%s", rel);
    return stat(buf, &st) == 0 ? buf : NULL;
}

const char *test_require_shared(const char *rel) {
    const char *p = test_shared_path(rel);
    if (!p) test_skip("../shared/%s is absent (set MRAG_SHARED to its folder)", rel);
    return p;
}

static char tmp_root[256];
static void tmp_cleanup(void) {
    if (!tmp_root[0] || getenv("MRAG_KEEP_TMP")) return;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) { /* best effort */ }
}

const char *test_tmpdir(void) {
    static char buf[300];
    static int n;
    if (!tmp_root[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(tmp_root, sizeof tmp_root, "%s/mrag-test.XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmp_root)) { perror("mkdtemp"); abort(); }
        atexit(tmp_cleanup);
    }
    snprintf(buf, sizeof buf, "%s/%d", tmp_root, ++n);
    if (mkdir(buf, 0700) != 0) { perror("mkdir"); abort(); }
    return buf;
}

const char *test_build_dir(void) {
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

char *test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

int test_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

char *test_run_capture(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, p)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    int st = pclose(p);
    if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    if (buf) buf[n] = 0;
    return buf;
}

const char *test_block_text(const rag_doc *d, size_t i) {
    static char buf[4][8192];
    static int next;
    char *b = buf[next++ & 3];
    snprintf(b, sizeof buf[0], "%.*s", (int)d->blocks[i].text_len, d->text + d->blocks[i].text_off);
    return b;
}

const char *test_shq(const char *s) {
    static char bufs[8][8192];
    static int k;
    char *b = bufs[k++ & 7];
    size_t n = 0;
    b[n++] = '\'';
    for (; *s && n < sizeof bufs[0] - 6; s++) {
        if (*s == '\'') { memcpy(b + n, "'\\''", 4); n += 4; }
        else b[n++] = *s;
    }
    b[n++] = '\'';
    b[n] = 0;
    return b;
}

char *test_oracle(const char *args) {
    struct stat st;
    if (stat("tests/oracle/node_modules/node-llama-cpp", &st) != 0)
        test_skip("the llama.cpp oracle is not installed (run `make oracle`)");
    if (system("command -v node >/dev/null 2>&1") != 0)
        test_skip("node is not installed (run `make deps`)");
    char errpath[64];
    snprintf(errpath, sizeof errpath, "/tmp/mrag-oracle.%d.err", (int)getpid());
    char *cmd = dup_printf("node tests/oracle/oracle.mjs %s 2>%s", args, errpath);
    if (!cmd) test_skip("out of memory");
    int status = 0;
    char *out = test_run_capture(cmd, &status);
    if (!out || status != 0) {
        char *err = test_read_file(errpath, NULL);
        test_fail(__FILE__, __LINE__, "oracle failed (exit %d): %s\n%.2000s", status, cmd, err ? err : "");
        free(err);
        free(cmd);
        free(out);
        longjmp(test_g.abort_case, 1);
    }
    free(cmd);
    unlink(errpath);
    return out;
}

void test_mkmodel(char *out, const char *args) {
    char mk[512];
    snprintf(mk, sizeof mk, "%s/mkmodel", test_build_dir());
    if (access(mk, X_OK) != 0) test_skip("%s is missing (run make)", mk);
    const char *vocab = test_shared_path("models/mistral-v0.1-vocab-derived.gguf");
    char vflag[4200];
    if (vocab) snprintf(vflag, sizeof vflag, "--vocab-from %s", test_shq(vocab));
    else snprintf(vflag, sizeof vflag, "--vocab-size 512");
    char *cmd = dup_printf("%s %s %s --out %s >/dev/null 2>&1", mk, args, vflag, test_shq(out));
    if (!cmd) test_skip("out of memory");
    int st = system(cmd);
    if (st != 0) {
        test_fail(__FILE__, __LINE__, "mkmodel failed: %s", cmd);
        out[0] = 0;
        free(cmd);
        longjmp(test_g.abort_case, 1);
    }
    free(cmd);
}

void test_put_file(const char *root, const char *rel, const char *text) {
    char p[2048];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    for (char *c = p + strlen(root) + 1; (c = strchr(c, '/')); c++) {
        *c = 0;
        mkdir(p, 0755);
        *c = '/';
    }
    REQUIRE(test_write_file(p, text, strlen(text)) == 0, "cannot write %s", p);
}

idx_store *test_open_index(const char *dir) {
    idx_store *s = NULL;
    idx_params ip = idx_default_params();
    int rc = idx_open(dir, &ip, &s);
    REQUIRE(rc == IDX_OK, "%s", s ? idx_errmsg(s) : "out of memory");
    return s;
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

pid_t test_serve_spawn(const char *const *args, const char *log, char *url, size_t cap) {
    char mrag[512];
    snprintf(mrag, sizeof mrag, "%s/mrag", test_build_dir());
    if (access(mrag, X_OK) != 0) test_skip("%s is missing (run make)", mrag);
    const char *argv[64];
    int n = 0;
    argv[n++] = mrag;
    argv[n++] = "serve";
    for (int i = 0; args[i] && n < 62; i++) argv[n++] = args[i];
    argv[n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        FILE *e = freopen(log, "w", stderr);
        (void)e;
        unsetenv("MRAG_MODEL");
        unsetenv("MRAG_INDEX");
        execv(mrag, (char *const *)argv);
        _exit(127);
    }
    static const char mark[] = "listening on http://127.0.0.1:";
    double until = mono_s() + 60;
    while (mono_s() < until) {
        size_t len;
        char *text = test_read_file(log, &len);
        const char *at = text ? strstr(text, mark) : NULL;
        if (at) {
            int port = atoi(at + strlen(mark));
            snprintf(url, cap, "http://127.0.0.1:%d", port);
            free(text);
            return pid;
        }
        int wst;
        if (waitpid(pid, &wst, WNOHANG) == pid) {
            test_fail(__FILE__, __LINE__, "mrag serve exited at start: %s", text ? text : "");
            free(text);
            longjmp(test_g.abort_case, 1);
        }
        free(text);
        usleep(50 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    REQUIRE(0, "mrag serve did not start listening");
    return -1;
}

/* IEEE half -> single, written independently of index/f16.c. */
static float half_to_float(unsigned h) {
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 1024), e - 25);
    return (h & 0x8000) ? -v : v;
}

static void sql_to_f32(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    int n = sqlite3_value_bytes(argv[0]) / 2;
    const unsigned char *b = sqlite3_value_blob(argv[0]);
    float *f = sqlite3_malloc(n * 4 + 4);
    if (!f) { sqlite3_result_error_nomem(ctx); return; }
    for (int i = 0; i < n; i++) f[i] = half_to_float((unsigned)b[2 * i] | (unsigned)b[2 * i + 1] << 8);
    sqlite3_result_blob(ctx, f, n * 4, sqlite3_free);
}

int test_vectors_to_f32(struct sqlite3 *db) {
    int rc = sqlite3_create_function(db, "test_f16_to_f32", 1, SQLITE_UTF8, NULL, sql_to_f32, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "UPDATE vectors SET data = test_f16_to_f32(data)", NULL, NULL, NULL);
    return rc;
}
