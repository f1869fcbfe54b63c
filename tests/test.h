/* test.h — the project's tiny test harness: cases, checks, skips.
 *
 * A test file defines cases with TEST(name) and lists them in main() with
 * TEST_MAIN(RUN(a), RUN(b), ...). Each case prints one line:
 *     ok   file/case
 *     FAIL file/case       (after "  # file/case: where: what" lines)
 *     skip file/case: why
 * tests/run.sh adds these up. A skipped case is never counted as passed. */
#ifndef MRAG_TEST_H
#define MRAG_TEST_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "rag/ingest.h"

typedef struct {
    const char *file;       /* test file, e.g. "test_llm_gguf" */
    const char *name;       /* current case */
    int failed;             /* checks failed in the current case */
    bool skipped;
    jmp_buf abort_case;
    int n_ok, n_fail, n_skip;
} test_state;

extern test_state test_g;

void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void test_run_case(const char *name, void (*fn)(void));
int test_finish(void);
void test_begin(const char *file);

#define TEST(name) static void name(void)
#define RUN(name) test_run_case(#name, name)

/* CHECK continues the case after a failure; REQUIRE ends it. */
#define CHECK(cond, ...) \
    do { if (!(cond)) test_fail(__FILE__, __LINE__, "CHECK(" #cond ") " __VA_ARGS__); } while (0)
#define REQUIRE(cond, ...) \
    do { if (!(cond)) { test_fail(__FILE__, __LINE__, "REQUIRE(" #cond ") " __VA_ARGS__); \
                        longjmp(test_g.abort_case, 1); } } while (0)
#define CHECK_EQ_INT(a, b) \
    do { long long a_ = (long long)(a), b_ = (long long)(b); \
         if (a_ != b_) test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_); } while (0)
#define CHECK_EQ_STR(a, b) \
    do { const char *a_ = (a), *b_ = (b); \
         if (!a_ || !b_ || strcmp(a_, b_) != 0) \
             test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } while (0)
#define SKIP(...) test_skip(__VA_ARGS__)

#define TEST_MAIN(...) \
    int main(void) { test_begin(__FILE__); __VA_ARGS__; return test_finish(); }

/* ---------------------------------------------------------------- helpers
 * (tests/testutil.c) */

/* Path of a file under ../shared (or $MRAG_SHARED): "models/stories260K.gguf".
 * Returns a static buffer, or NULL when the file does not exist — callers
 * then SKIP with a message naming the file. */
const char *test_shared_path(const char *rel);
/* SKIPs the current case when the shared file is absent. */
const char *test_require_shared(const char *rel);

/* A fresh temporary folder (removed at exit). Static buffer. */
const char *test_tmpdir(void);

/* Path of the build folder ($BUILD, default "build"). */
const char *test_build_dir(void);

/* Reads a whole file; returns malloc'd bytes (NUL-terminated) or NULL. */
char *test_read_file(const char *path, size_t *len);
/* Writes bytes to a file; 0 on success. */
int test_write_file(const char *path, const void *data, size_t len);

/* Runs a shell command, captures stdout (malloc'd, NUL-terminated) and the
 * exit status. Returns NULL when the command could not be started. */
char *test_run_capture(const char *cmd, int *status);

/* Runs the llama.cpp oracle (tests/oracle/oracle.mjs) with the given
 * arguments (already shell-quoted) and returns its JSON output (malloc'd).
 * SKIPs the case when node or the oracle's node_modules are missing, and
 * FAILs it when the oracle exits non-zero. */
char *test_oracle(const char *args);

/* Writes a random-weight Mistral-shaped model with $BUILD/mkmodel to
 * out: the Mistral vocabulary from ../shared when present, else a
 * generated 512-token one. `args` are further mkmodel options (shape, ctx,
 * type, seed). SKIPs the case when mkmodel is missing; FAILs it (and clears
 * out) when mkmodel fails. */
void test_mkmodel(char *out, const char *args);

/* The text of block i of an extracted document, NUL-terminated, in a
 * static rotating buffer (four calls may be alive at once; cut at 8 KiB). */
const char *test_block_text(const rag_doc *d, size_t i);

/* Shell-quotes s into a static rotating buffer (for building commands). */
const char *test_shq(const char *s);

/* Writes text to root/rel, creating the folders of rel; FAILs the case when
 * it cannot. */
void test_put_file(const char *root, const char *rel, const char *text);

/* Opens (creating) the index folder dir read-write with default parameters;
 * FAILs the case with the index's message when it cannot. */
typedef struct idx_store idx_store;
idx_store *test_open_index(const char *dir);

/* Rewrites every stored vector of an index's database connection (from
 * idx_debug_db) from float16 back to float32, as schema 3 and older stored
 * them: for migration tests. SQLite result code. */
struct sqlite3;
int test_vectors_to_f32(struct sqlite3 *db);

/* Starts `$BUILD/mrag serve ARGS` (NULL-terminated, listening on
 * 127.0.0.1) with stderr to log and waits (60 s at most) for its address,
 * written to url as "http://127.0.0.1:PORT". Returns the pid (kill and
 * reap it); FAILs the case when the server exits or never listens. */
#include <sys/types.h>
pid_t test_serve_spawn(const char *const *args, const char *log, char *url, size_t cap);

/* ------------------------------------------------------------ HTTP (testhttp.c)
 * The one HTTP client of the tests, on libcurl, for requests to servers the
 * tests start on 127.0.0.1. */

/* A growing reply buffer: b is NUL-terminated (NULL until data came), n its
 * length. on_data, when set, is called after every append with the new
 * bytes (b holds all so far); returning false aborts the transfer. */
typedef struct test_buf {
    char *b;
    size_t n;
    bool (*on_data)(struct test_buf *buf, const char *p, size_t n, void *u);
    void *u;
} test_buf;

/* A libcurl CURLOPT_WRITEFUNCTION / HEADERFUNCTION appending to a test_buf. */
size_t test_buf_write(char *p, size_t size, size_t nmemb, void *buf);

/* One request. method NULL: GET, or POST when body is set; key: sent as
 * "Authorization: Bearer KEY" when not NULL; path_as_is: the URL's "/../"
 * reaches the server as written. The body and the head lines are appended
 * to *body and *head (either may be NULL); free their b. Returns the
 * status, also when on_data aborted the transfer, and 0 when no response
 * came (timeout 120 s). */
typedef struct {
    const char *method, *key, *body;
    size_t body_len;            /* 0: strlen(body) */
    bool path_as_is;
} test_http_req;
long test_http(const char *url, const test_http_req *q, test_buf *body, test_buf *head);

#endif
