/* test_index_crash.c — index/ survives SIGKILL: a child process writes,
 * replaces and deletes documents in a loop (saving FAISS every few commits)
 * and is killed at random moments; after each kill the index passes
 * integrity checks, FAISS ids equal SQLite ids, every committed document is
 * there with its exact chunks (the one in flight is all-or-nothing), and
 * writing continues. The child is this binary re-executed (a clean process:
 * no OpenMP/BLAS thread state inherited through fork). */
#include "tests/test.h"
#include "index/index.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DIM 16
#define MAX_DOCS 4096

static uint64_t rng_state;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return rng_state;
}

/* ------------------------------------------------------------ the child */

static void child_say(int fd, const char *fmt, const char *uri, int n) {
    char line[300];
    int l = snprintf(line, sizeof line, fmt, uri, n);
    if (write(fd, line, (size_t)l) != l) _exit(5);
}

/* Writes until killed. Protocol on fd: "B <uri> <n>\n" before an operation
 * (n = chunk count, -1 = delete), "C\n" after its commit returned. */
static void child_main(const char *dir, uint64_t seed, int fd) {
    rng_state = seed | 1;
    idx_store *s = NULL;
    if (idx_open(dir, NULL, &s) != IDX_OK) _exit(3);
    int made = 0;
    for (int op = 0;; op++) {
        char uri[64];
        int n = (int)(rnd() % 8) + 1;
        uint64_t kind = rnd() % 10;
        if (made == 0 || kind < 7) {
            snprintf(uri, sizeof uri, "s%llx/d%d.md", (unsigned long long)(seed & 0xffff), made++);
        } else {
            snprintf(uri, sizeof uri, "s%llx/d%d.md", (unsigned long long)(seed & 0xffff), (int)(rnd() % (uint64_t)made));
            if (kind == 9) n = -1;
        }
        child_say(fd, "B %s %d\n", uri, n);
        if (idx_begin(s) != IDX_OK) _exit(4);
        int rc = IDX_OK;
        if (n < 0) {
            rc = idx_doc_delete(s, uri);
            if (rc == IDX_ERR_NOTFOUND) rc = IDX_OK;
        } else {
            idx_chunk ch[8];
            char texts[8][96];
            float v[8 * DIM];
            for (int i = 0; i < n; i++) {
                snprintf(texts[i], sizeof texts[i], "%s part %d word%llu", uri, i, (unsigned long long)(rnd() % 1000));
                ch[i] = (idx_chunk){.ordinal = i, .text = texts[i], .text_len = strlen(texts[i])};
                double norm = 0;
                for (int j = 0; j < DIM; j++) { v[i * DIM + j] = (float)((int)(rnd() % 2001) - 1000); norm += v[i * DIM + j] * v[i * DIM + j]; }
                for (int j = 0; j < DIM; j++) v[i * DIM + j] = (float)(v[i * DIM + j] / sqrt(norm + 1e-9));
            }
            idx_doc d = {.uri = uri, .type = "md", .size = n};
            rc = idx_doc_put(s, &d, ch, (size_t)n, v, DIM, NULL);
        }
        if (rc != IDX_OK) _exit(6);
        if (idx_commit(s) != IDX_OK) _exit(7);
        child_say(fd, "C%s%d\n", "", 0);
        if (op % 3 == 2 && idx_save(s) != IDX_OK) _exit(8);
    }
}

__attribute__((constructor)) static void child_entry(void) {
    const char *dir = getenv("MRAG_IDX_CRASH_DIR");
    if (!dir) return;
    const char *seed = getenv("MRAG_IDX_CRASH_SEED"), *fd = getenv("MRAG_IDX_CRASH_FD");
    if (!seed || !fd) _exit(2);
    child_main(dir, strtoull(seed, NULL, 10), (int)strtol(fd, NULL, 10));
    _exit(0);
}

/* ------------------------------------------------------------ the parent */

typedef struct {
    char uri[64];
    int n;          /* expected chunk count, -1 = absent */
} expect;

static expect want[MAX_DOCS];
static int n_want;

static expect *find(const char *uri) {
    for (int i = 0; i < n_want; i++)
        if (strcmp(want[i].uri, uri) == 0) return &want[i];
    if (n_want == MAX_DOCS) return NULL;
    snprintf(want[n_want].uri, sizeof want[n_want].uri, "%s", uri);
    want[n_want].n = -1;
    return &want[n_want++];
}

static int chunks_of(idx_store *s, const char *uri) {
    idx_doc d;
    int rc = idx_doc_get(s, uri, &d);
    if (rc == IDX_ERR_NOTFOUND) return -1;
    if (rc) return -2;
    int n = (int)d.n_chunks;
    idx_doc_release(&d);
    return n;
}

/* Reads the child's report; returns the in-flight operation (uri and its
 * count) through the out parameters, or flight_uri[0] = 0 when the last
 * operation was reported committed. */
static void read_report(int fd, char *flight_uri, int *flight_n, int *committed) {
    static char buf[1 << 20];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
        if (len == sizeof buf - 1) break;
    }
    buf[len] = 0;
    flight_uri[0] = 0;
    *committed = 0;
    char *line = buf, *nl;
    while ((nl = strchr(line, '\n'))) {
        *nl = 0;
        char uri[64];
        int n;
        if (line[0] == 'B' && sscanf(line, "B %63s %d", uri, &n) == 2) {
            snprintf(flight_uri, 64, "%s", uri);
            *flight_n = n;
        } else if (line[0] == 'C' && flight_uri[0]) {
            expect *e = find(flight_uri);
            if (e) e->n = *flight_n;
            flight_uri[0] = 0;
            (*committed)++;
        }
        line = nl + 1;
    }
}

static void verify(idx_store *s, const char *flight_uri, int flight_n, int iter) {
    CHECK(idx_check(s) == IDX_OK, "iteration %d: %s", iter, idx_errmsg(s));
    int64_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    if (idx_debug_faiss_ids(s, &a, &na) || idx_debug_vector_ids(s, &b, &nb))
        CHECK(0, "iteration %d: ids: %s", iter, idx_errmsg(s));
    else
        CHECK(na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0),
              "iteration %d: FAISS ids (%zu) != SQLite ids (%zu)", iter, na, nb);
    free(a);
    free(b);
    idx_counts c;
    REQUIRE(idx_get_counts(s, &c) == IDX_OK);
    CHECK(c.chunks == c.vectors && c.chunks == c.fts_rows && c.chunks == c.faiss_ntotal,
          "iteration %d: chunks %lld vectors %lld fts %lld faiss %lld", iter, (long long)c.chunks,
          (long long)c.vectors, (long long)c.fts_rows, (long long)c.faiss_ntotal);
    /* the in-flight operation is all or nothing */
    if (flight_uri[0]) {
        expect *e = find(flight_uri);
        REQUIRE(e);
        int got = chunks_of(s, flight_uri);
        CHECK(got == e->n || got == flight_n, "iteration %d: in-flight %s has %d chunks, want %d or %d",
              iter, flight_uri, got, e->n, flight_n);
        e->n = got;
    }
    int64_t docs = 0, chunks = 0;
    for (int i = 0; i < n_want; i++) {
        int got = chunks_of(s, want[i].uri);
        if (got != want[i].n) {
            CHECK(got == want[i].n, "iteration %d: %s has %d chunks, want %d", iter, want[i].uri, got, want[i].n);
            break;
        }
        if (got >= 0) { docs++; chunks += got; }
    }
    CHECK_EQ_INT(c.documents, docs);
    CHECK_EQ_INT(c.chunks, chunks);
}

TEST(sigkill_at_random_moments) {
    static char dir[300];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(sl > 0);
    self[sl] = 0;
    bool asan = getenv("MRAG_ASAN") != NULL;
    int iterations = 12, total_committed = 0, rebuilt = 0;
    rng_state = (uint64_t)time(NULL) * 2654435761u | 1;
    for (int iter = 0; iter < iterations; iter++) {
        int p[2];
        REQUIRE(pipe(p) == 0);
        fflush(stdout);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            char seed[32], fd[16];
            snprintf(seed, sizeof seed, "%llu", (unsigned long long)(iter * 7919 + 1 + (rnd() & 0xffff0000)));
            snprintf(fd, sizeof fd, "%d", p[1]);
            setenv("MRAG_IDX_CRASH_DIR", dir, 1);
            setenv("MRAG_IDX_CRASH_SEED", seed, 1);
            setenv("MRAG_IDX_CRASH_FD", fd, 1);
            execl(self, self, (char *)NULL);
            _exit(9);
        }
        close(p[1]);
        /* Let the child get going (open, maybe rebuild), then kill it at a
         * random moment: 50..400 ms, more under ASan. */
        useconds_t delay = (useconds_t)(50000 + rnd() % 350000) * (asan ? 3 : 1);
        usleep(delay);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "iteration %d: child ended on its own (status %d)", iter, status);
        char flight[64];
        int flight_n = 0, committed = 0;
        read_report(p[0], flight, &flight_n, &committed);
        close(p[0]);
        total_committed += committed;

        idx_store *s = NULL;
        int rc = idx_open(dir, NULL, &s);
        if (rc) { CHECK(rc == IDX_OK, "iteration %d: reopen: %s", iter, idx_errmsg(s)); idx_close(s); break; }
        if (idx_notice(s)) rebuilt++;
        verify(s, flight, flight_n, iter);
        /* continuing works */
        char uri[64];
        snprintf(uri, sizeof uri, "after/%d.md", iter);
        idx_chunk ch = {.ordinal = 0, .text = "after the crash", .text_len = 15};
        float v[DIM] = {1};
        idx_doc d = {.uri = uri};
        CHECK(idx_doc_put(s, &d, &ch, 1, v, DIM, NULL) == IDX_OK, "%s", idx_errmsg(s));
        find(uri)->n = 1;
        CHECK(idx_save(s) == IDX_OK, "%s", idx_errmsg(s));
        idx_close(s);
        if (test_g.failed) break;
    }
    printf("  # %d kills, %d commits by the children, %d reopen(s) rebuilt FAISS\n", iterations, total_committed, rebuilt);
    CHECK(total_committed > iterations, "the children made progress (%d commits)", total_committed);
}

TEST_MAIN(RUN(sigkill_at_random_moments))
