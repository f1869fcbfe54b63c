/* test_app_chat.c — `mrag chat` driven through a real pseudo-terminal:
 * a question streams an answer with sources, /sources /reset /help /quit,
 * a """ block is one question, Ctrl-C stops a long answer and the prompt
 * comes back, Ctrl-C at the prompt clears the line, the history file holds
 * the questions; the line mode when stdin is not a terminal; and `mrag ask`
 * stopped by SIGINT (exit 130, partial answer, sources). */
#include "tests/test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static char mrag[512], model[600], idx[600];

static void setup(void) {
    if (idx[0]) return;
    snprintf(mrag, sizeof mrag, "%s/mrag", test_build_dir());
    char mk[512];
    snprintf(mk, sizeof mk, "%s/mkmodel", test_build_dir());
    if (access(mrag, X_OK) != 0 || access(mk, X_OK) != 0) SKIP("%s or %s is missing (run make)", mrag, mk);
    struct stat st;
    if (stat("data/sample", &st) != 0) SKIP("data/sample is missing");
    char dir[300];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(model, sizeof model, "%s/m.gguf", dir);
    /* a long context so that an answer can run for seconds */
    test_mkmodel(model, "--dim 128 --layers 2 --heads 4 --kv-heads 2 --ff 256 --ctx 32768 --seed 11");
    char cmd[4096];
    snprintf(idx, sizeof idx, "%s/idx", dir);
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL %s ingest data/sample --index %s -m %s >/dev/null 2>&1", mrag,
             test_shq(idx), test_shq(model));
    if (system(cmd) != 0) { idx[0] = 0; REQUIRE(0, "mrag ingest failed"); }
}

/* ------------------------------------------------------------ pty session */
typedef struct {
    pid_t pid;
    int fd;
    char *out;          /* everything read so far, NUL-terminated */
    size_t n, cap;
    size_t mark;        /* searches start here */
} session;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void start(session *s, const char *hist, const char *const *extra) {
    memset(s, 0, sizeof *s);
    struct winsize ws = {.ws_row = 40, .ws_col = 200};
    const char *argv[32];
    int a = 0;
    argv[a++] = mrag;
    argv[a++] = "chat";
    argv[a++] = "--index";
    argv[a++] = idx;
    argv[a++] = "-m";
    argv[a++] = model;
    argv[a++] = "--threads";
    argv[a++] = "1";
    argv[a++] = "--generate";   /* the test model is random: generate anyway */
    for (int i = 0; extra && extra[i] && a < 30; i++) argv[a++] = extra[i];
    argv[a] = NULL;
    pid_t pid = forkpty(&s->fd, NULL, NULL, &ws);
    REQUIRE(pid >= 0, "forkpty: %s", strerror(errno));
    if (pid == 0) {
        setenv("MRAG_HISTORY", hist, 1);
        setenv("TERM", "xterm", 1);
        unsetenv("MRAG_MODEL");
        unsetenv("MRAG_INDEX");
        execv(mrag, (char *const *)argv);
        _exit(127);
    }
    s->pid = pid;
    s->cap = 1 << 16;
    s->out = calloc(1, s->cap);
    REQUIRE(s->out);
}

/* Reads what is available within ms milliseconds. */
static void pump(session *s, int ms) {
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0) return;
    if (s->n + 4097 > s->cap) {
        char *q = realloc(s->out, s->cap * 2);
        if (!q) return;
        s->out = q;
        s->cap *= 2;
    }
    ssize_t r = read(s->fd, s->out + s->n, 4096);
    if (r > 0) { s->n += (size_t)r; s->out[s->n] = 0; }
}

/* Waits until needle appears after the mark; moves the mark past it. */
static bool expect(session *s, const char *needle, double timeout_s) {
    double end = now_s() + timeout_s;
    while (now_s() < end) {
        char *f = strstr(s->out + s->mark, needle);
        if (f) { s->mark = (size_t)(f - s->out) + strlen(needle); return true; }
        pump(s, 50);
    }
    return false;
}

/* Waits until the program reads keys one by one (libedit has the terminal
 * out of canonical mode), as when a human types at the prompt. On Linux the
 * master side reports the slave's modes. */
static bool wait_editing(session *s, double timeout_s) {
    double end = now_s() + timeout_s;
    while (now_s() < end) {
        struct termios t;
        if (tcgetattr(s->fd, &t) == 0 && !(t.c_lflag & ICANON)) return true;
        pump(s, 10);
    }
    return false;
}

static void send_str(session *s, const char *t) {
    size_t n = strlen(t);
    while (n) {
        ssize_t w = write(s->fd, t, n);
        if (w <= 0) return;
        t += w;
        n -= (size_t)w;
    }
}

/* Waits for the child to exit (killing it after timeout); returns its exit code or -1. */
static int finish(session *s, double timeout_s) {
    double end = now_s() + timeout_s;
    int st = 0;
    while (now_s() < end) {
        pump(s, 20);
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) { close(s->fd); return WIFEXITED(st) ? WEXITSTATUS(st) : -1; }
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    close(s->fd);
    return -1;
}

#define EXPECT(s, needle, t) CHECK(expect(s, needle, t), "no \"%s\" after: %.300s", needle, (s)->mark > 300 ? (s)->out + (s)->mark - 300 : (s)->out)

TEST(pty_question_sources_commands_history) {
    setup();
    char hist[700];
    snprintf(hist, sizeof hist, "%s/history", test_tmpdir());
    session s;
    const char *extra[] = {"--max-tokens", "16", NULL};
    start(&s, hist, extra);
    EXPECT(&s, "/help for commands", 20);
    EXPECT(&s, "> ", 5);
    send_str(&s, "How do I set up the VPN with WireGuard?\r");
    EXPECT(&s, "Sources", 30);
    EXPECT(&s, "vpn-setup.md:", 5);
    EXPECT(&s, "> ", 5);
    send_str(&s, "/sources\r");
    EXPECT(&s, "[1] data/sample/", 5);
    EXPECT(&s, "> ", 5);
    send_str(&s, "/help\r");
    EXPECT(&s, "/reset", 5);
    EXPECT(&s, "> ", 5);
    /* a """ block is one question */
    send_str(&s, "\"\"\"\r");
    EXPECT(&s, "... ", 5);
    send_str(&s, "Banana bread:\r");
    send_str(&s, "how long does it bake?\r");
    send_str(&s, "\"\"\"\r");
    EXPECT(&s, "banana-bread.md", 30);
    EXPECT(&s, "> ", 5);
    send_str(&s, "/reset\r");
    EXPECT(&s, "(conversation cleared)", 5);
    send_str(&s, "/sources\r");
    EXPECT(&s, "(no sources yet)", 5);
    send_str(&s, "/quit\r");
    CHECK_EQ_INT(finish(&s, 10), 0);
    free(s.out);
    size_t n;
    char *h = test_read_file(hist, &n);
    REQUIRE(h, "no history file %s", hist);
    CHECK(strstr(h, "How") && strstr(h, "VPN") && strstr(h, "WireGuard"), "%s", h);
    CHECK(strstr(h, "Banana") && strstr(h, "bake"), "%s", h);
    free(h);
}

TEST(pty_ctrl_c_stops_a_long_answer_and_the_prompt_returns) {
    setup();
    char hist[700];
    snprintf(hist, sizeof hist, "%s/history2", test_tmpdir());
    session s;
    const char *extra[] = {"--max-tokens", "30000", "--ctx", "32768", NULL};
    start(&s, hist, extra);
    EXPECT(&s, "> ", 20);
    /* Ctrl-C at the prompt clears the line: "abc" never reaches the answerer */
    CHECK(wait_editing(&s, 10), "the terminal never left canonical mode");
    send_str(&s, "abc");
    EXPECT(&s, "abc", 5);
    send_str(&s, "\x03");
    EXPECT(&s, "> ", 5);
    send_str(&s, "/help\r");
    EXPECT(&s, "/sources", 5);
    CHECK(strstr(s.out, "unknown command") == NULL, "%s", s.out);
    EXPECT(&s, "> ", 5);
    send_str(&s, "How do I set up the VPN with WireGuard?\r");
    /* the answer starts streaming (more output after the echoed question) */
    size_t base = s.n;
    double t0 = now_s();
    while (s.n < base + 200 && now_s() - t0 < 60) pump(&s, 50);
    CHECK(s.n >= base + 200, "no streamed output");
    CHECK(strstr(s.out + base, "Sources") == NULL, "the answer finished before Ctrl-C");
    double t1 = now_s();
    send_str(&s, "\x03");
    EXPECT(&s, "[stopped]", 10);
    CHECK(now_s() - t1 < 10);
    EXPECT(&s, "> ", 10);
    send_str(&s, "/quit\r");
    CHECK_EQ_INT(finish(&s, 10), 0);
    free(s.out);
}

TEST(line_mode_without_a_terminal) {
    setup();
    char in[700], cmd[4096];
    snprintf(in, sizeof in, "%s/questions.txt", test_tmpdir());
    /* (a follow-up is searched together with the previous question, so the
     * unanswerable one comes right after /reset) */
    const char *qs = "How do I set up the VPN with WireGuard?\n/sources\n/reset\nZxqvbn plorgh wibblestan?\n"
                     "Banana bread: how long does it \\\nbake?\n";
    REQUIRE(test_write_file(in, qs, strlen(qs)) == 0);
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL MRAG_HISTORY=%s/h3 %s chat --index %s -m %s --threads 1 --generate --max-tokens 8 < %s 2>/dev/null",
             test_shq(test_tmpdir()), mrag, test_shq(idx), test_shq(model), test_shq(in));
    int st;
    char *out = test_run_capture(cmd, &st);
    REQUIRE(out);
    CHECK_EQ_INT(st, 0);
    CHECK(strstr(out, "Q: How do I set up the VPN with WireGuard?") != NULL, "%s", out);
    CHECK(strstr(out, "vpn-setup.md:") != NULL, "%s", out);
    CHECK(strstr(out, "Q: Zxqvbn plorgh wibblestan?\nI found nothing") != NULL, "%s", out);
    CHECK(strstr(out, "(conversation cleared)") != NULL, "%s", out);
    CHECK(strstr(out, "Q: Banana bread: how long does it \nbake?") != NULL, "continued line: %s", out);
    CHECK(strstr(out, "banana-bread.md") != NULL, "%s", out);
    CHECK(strstr(out, "/help for commands") == NULL, "no banner without a terminal");
    struct stat stt;
    char h3[700];
    snprintf(h3, sizeof h3, "%s/h3", test_tmpdir());
    CHECK(stat(h3, &stt) != 0, "no history file in line mode");
    free(out);
}

/* --stats (with --generate: the test model has random weights, which would
 * otherwise answer extractively): the second question of a conversation prefills only what its
 * prompt does not share with the first (the preamble, then the earlier turn
 * come from the KV cache); the first reuses nothing. */
TEST(stats_show_reused_prompt_tokens) {
    setup();
    char in[700], err[700], cmd[4096];
    snprintf(in, sizeof in, "%s/stats-q.txt", test_tmpdir());
    snprintf(err, sizeof err, "%s/stats-err.txt", test_tmpdir());
    const char *qs = "How do I set up the VPN with WireGuard?\nWhich WireGuard port does the VPN use?\n"
                     "How do I install WireGuard for the VPN on Linux?\n";
    REQUIRE(test_write_file(in, qs, strlen(qs)) == 0);
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL MRAG_HISTORY=%s/h4 %s chat --index %s -m %s --threads 1 --max-tokens 6 --generate "
             "--stats < %s >/dev/null 2>%s", test_shq(test_tmpdir()), mrag, test_shq(idx), test_shq(model), test_shq(in),
             test_shq(err));
    int st;
    char *out = test_run_capture(cmd, &st);
    free(out);
    CHECK_EQ_INT(st, 0);
    char *e = test_read_file(err, NULL);
    REQUIRE(e);
    /* "prompt N tokens (R reused, M new)" once per answer */
    int n[3], r[3], m[3], k = 0;
    for (const char *p = e; k < 3 && (p = strstr(p, "prompt ")); p++)
        if (sscanf(p, "prompt %d tokens (%d reused, %d new)", &n[k], &r[k], &m[k]) == 3) k++;
    REQUIRE(k == 3, "three stats lines: %s", e);
    CHECK(r[0] == 0 && m[0] == n[0], "first question: %d reused of %d", r[0], n[0]);
    /* later questions: at least the preamble (the system text) is reused */
    for (int i = 1; i < 3; i++) {
        CHECK(r[i] > 20 && r[i] + m[i] == n[i], "question %d: %d reused, %d new of %d", i + 1, r[i], m[i], n[i]);
    }
    /* the third reuses the preamble and the first turn as well */
    CHECK(r[2] > r[1], "turn 3 reused %d, turn 2 %d", r[2], r[1]);
    printf("  # reused prompt tokens per question: %d/%d, %d/%d, %d/%d\n", r[0], n[0], r[1], n[1], r[2], n[2]);
    free(e);
}

TEST(ask_interrupted_exits_130_with_partial_answer) {
    setup();
    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0) dup2(dn, 2);
        unsetenv("MRAG_MODEL");
        execl(mrag, mrag, "ask", "--index", idx, "-m", model, "--threads", "1", "--generate", "--max-tokens", "30000", "--ctx", "32768",
              "How do I set up the VPN with WireGuard?", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char buf[1 << 16];
    size_t n = 0;
    double t0 = now_s();
    bool sent = false;
    for (;;) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        if (poll(&p, 1, 50) > 0) {
            ssize_t r = read(pfd[0], buf + n, sizeof buf - 1 - n);
            if (r <= 0) break;
            n += (size_t)r;
        }
        if (!sent && n >= 200) { kill(pid, SIGINT); sent = true; t0 = now_s(); }
        if (now_s() - t0 > 60) { kill(pid, SIGKILL); break; }
        if (n >= sizeof buf - 1) n = 0;     /* keep reading; only the end matters */
    }
    buf[n] = 0;
    close(pfd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(sent, "no streamed output");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 130, "status %d", st);
    CHECK(strstr(buf, "[stopped]") != NULL, "%s", buf);
    CHECK(strstr(buf, "vpn-setup.md") != NULL, "sources are still listed: %s", buf);
}

TEST_MAIN(RUN(pty_question_sources_commands_history), RUN(pty_ctrl_c_stops_a_long_answer_and_the_prompt_returns),
          RUN(stats_show_reused_prompt_tokens),
          RUN(line_mode_without_a_terminal), RUN(ask_interrupted_exits_130_with_partial_answer))
