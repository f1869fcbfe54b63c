/* cmd_chat.c — `mrag chat`: interactive questions with libedit (history,
 * line editing, multi-line input, Ctrl-C stops an answer), follow-ups use
 * the conversation; one question per line when stdin is not a terminal. */
#include "app/app.h"

#include <editline/readline.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *chat_usage =
    "usage: mrag chat [options]\n"
    "\n"
    "Asks questions interactively. Follow-up questions use the conversation:\n"
    "the previous question is added to the search and earlier turns go into\n"
    "the prompt (as many as fit). Answers stream; Ctrl-C stops an answer and\n"
    "returns to the prompt (at the prompt it clears the line); Ctrl-D or /quit\n"
    "leaves.\n"
    "\n"
    "Multi-line questions: end a line with \\ to continue it, or type \"\"\" on a\n"
    "line of its own, then the lines, then \"\"\" again (pasting such a block\n"
    "asks it as one question).\n"
    "\n"
    "Commands: /sources (sources of the last answer), /reset (forget the\n"
    "conversation), /help, /quit.\n"
    "\n"
    "History: $MRAG_HISTORY, else ~/.mrag_history (the questions, in libedit's\n"
    "format; on a terminal only).\n"
    "With stdin not a terminal, each line is one question (same commands).\n"
    "\n"
    "Options: --index DIR, -m FILE, -k N, --max-tokens N, --ctx N, --threads N,\n"
    "--temp T, --rules DIR, --quarantine drop|keep, --guard-llm, --preamble FILE, --stats,\n"
    "--groups G,H, --llm-url BASE, --llm-key-file F, --llm-model NAME,\n"
    "--llm-embeddings, --extractive, --generate, --lora FILE[:SCALE] (as for `mrag ask`).\n";

static const char *chat_help =
    "Ask a question, or:\n"
    "  /sources   sources of the last answer\n"
    "  /reset     forget the conversation (follow-ups start afresh)\n"
    "  /help      this text\n"
    "  /quit      leave (also Ctrl-D)\n"
    "End a line with \\ to continue it; \"\"\" on its own line starts and ends a\n"
    "multi-line block. Ctrl-C stops an answer.\n";

static volatile sig_atomic_t got_sigint;
static volatile int *cancel_flag;

static void on_sigint(int sig) {
    (void)sig;
    got_sigint = 1;
    if (cancel_flag) *cancel_flag = 1;
}

/* Growing buffer for a multi-line question. */
typedef struct {
    char *p;
    size_t n, cap;
} qbuf;

static bool qb_add(qbuf *b, const char *s, size_t len) {
    if (b->n + len + 2 > b->cap) {
        size_t c = (b->n + len + 2) * 2;
        if (c > (1u << 20)) return false;    /* 1 MB per question at most */
        char *q = realloc(b->p, c);
        if (!q) return false;
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = 0;
    return true;
}

static void trim(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
    size_t i = 0;
    while (s[i] == ' ' || s[i] == '\t') i++;
    if (i) memmove(s, s + i, n - i + 1);
}

/* A line that is only """ (blanks around allowed). */
static bool is_triple(const char *l) {
    while (*l == ' ' || *l == '\t') l++;
    if (strncmp(l, "\"\"\"", 3) != 0) return false;
    l += 3;
    while (*l == ' ' || *l == '\t' || *l == '\r') l++;
    return *l == 0;
}

/* Handles a slash command; returns 1 to quit, 0 handled, -1 not a command. */
static int command(app_asker *a, const char *line) {
    if (line[0] != '/') return -1;
    if (strcmp(line, "/quit") == 0 || strcmp(line, "/exit") == 0 || strcmp(line, "/q") == 0) return 1;
    if (strcmp(line, "/help") == 0 || strcmp(line, "/?") == 0) { fputs(chat_help, stdout); return 0; }
    if (strcmp(line, "/sources") == 0) { app_asker_print_sources(a, stdout); return 0; }
    if (strcmp(line, "/reset") == 0) {
        app_asker_reset(a);
        printf("(conversation cleared)\n");
        return 0;
    }
    printf("unknown command %s (/help lists them)\n", line);
    return 0;
}

/* Reads one question: a line, continued after a trailing backslash, or a
 * """ block. read_line returns a malloc'd line (no newline) or NULL at EOF.
 * Returns the question (owned) or NULL at EOF / interrupt (*interrupted). */
typedef char *(*read_line_fn)(const char *prompt, void *user);

static char *read_question(read_line_fn rd, void *user, bool *interrupted) {
    qbuf b = {0};
    bool block = false;
    const char *prompt = "> ";
    *interrupted = false;
    for (;;) {
        got_sigint = 0;
        char *line = rd(prompt, user);
        if (!line) {
            if (got_sigint) *interrupted = true;
            if (b.n && !*interrupted && !block) return b.p;   /* EOF after a continued line */
            free(b.p);
            return NULL;
        }
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (!block && b.n == 0 && is_triple(line)) {
            block = true;
            prompt = "... ";
            free(line);
            continue;
        }
        if (block) {
            if (is_triple(line)) { free(line); return b.p ? b.p : calloc(1, 1); }
            bool ok = (b.n == 0 || qb_add(&b, "\n", 1)) && qb_add(&b, line, n);
            free(line);
            if (!ok) { free(b.p); return NULL; }
            continue;
        }
        bool cont = n && line[n - 1] == '\\';
        if (cont) line[--n] = 0;
        bool ok = (b.n == 0 || qb_add(&b, "\n", 1)) && qb_add(&b, line, n);
        free(line);
        if (!ok) { free(b.p); return NULL; }
        if (!cont) return b.p;
        prompt = "... ";
    }
}

/* libedit's key reader: a Ctrl-C (SIGINT, handled by on_sigint) makes it
 * report end of input, so readline returns NULL with got_sigint set and the
 * line is discarded. Polling in 100 ms steps closes the window between
 * checking the flag and blocking in read(). */
static int chat_getc(FILE *f) {
    int fd = fileno(f);
    for (;;) {
        if (got_sigint) return EOF;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 100);
        if (r < 0 && errno != EINTR) return EOF;
        if (r <= 0) continue;
        unsigned char c;
        ssize_t n = read(fd, &c, 1);
        if (n == 1) return c;
        if (n == 0 || (errno != EINTR && errno != EAGAIN)) return EOF;
    }
}

static char *rd_editline(const char *prompt, void *user) {
    (void)user;
    return readline(prompt);
}

static char *rd_stdio(const char *prompt, void *user) {
    (void)prompt;
    (void)user;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) { free(line); return NULL; }
    return line;
}

/* The history file: $MRAG_HISTORY, else ~/.mrag_history (owned), or NULL. */
static char *history_path(void) {
    const char *e = getenv("MRAG_HISTORY");
    if (e && *e) return strdup(e);
    const char *home = getenv("HOME");
    if (!home || !*home) return NULL;
    size_t n = strlen(home) + 32;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/.mrag_history", home);
    return p;
}

/* Contract: 0 after /quit or end of input, 1 when the session cannot start. */
enum { O_STATS = 512 };
static const app_opt chat_own_opts[] = {{"stats", 0, NULL, O_STATS}, {0}};
const app_opt *const app_chat_opts[] = {app_ask_common_opts, chat_own_opts, NULL};

int app_cmd_chat(int argc, char **argv) {
    if (app_wants_help(argc, argv)) { fputs(chat_usage, stdout); return 0; }
    app_ask_opts o = app_ask_default_opts();
    bool stats = false;
    app_args ap;
    app_args_init(&ap, "chat", app_chat_opts, argc, argv);
    const char *v;
    int id;
    while ((id = app_args_next(&ap, &v)) > 0) {
        if (id == O_STATS) stats = true;
        else if (app_ask_apply_opt(&o, &ap, id, v) < 0) return 2;
    }
    if (id < 0) return 2;
    if (o.extractive && o.generate) return app_usage_error(&ap, "--extractive and --generate exclude each other");
    if (ap.npos > 0) return app_usage_error(&ap, "unexpected argument '%s' (chat reads the questions at its prompt)", argv[1]);
    app_asker *a = NULL;
    if (app_asker_open(&o, &a) != 0) return 1;
    bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    char *hist = NULL;
    cancel_flag = app_asker_cancel_flag(a);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;       /* no SA_RESTART: a read at the prompt returns */
    sigaction(SIGINT, &sa, NULL);
    if (tty) {
        hist = history_path();
        rl_catch_signals = 0;           /* SIGINT is ours: see chat_getc */
        rl_getc_function = chat_getc;
        using_history();
        stifle_history(1000);
        if (hist) read_history(hist);
        printf("mrag chat — ask about your documents. /help for commands, Ctrl-D to leave.\n");
    }
    for (;;) {
        bool interrupted = false;
        char *q = read_question(tty ? rd_editline : rd_stdio, NULL, &interrupted);
        if (!q) {
            if (interrupted && tty) { putchar('\n'); continue; }   /* Ctrl-C at the prompt: new line */
            if (tty) putchar('\n');
            break;
        }
        trim(q);
        if (!*q) { free(q); continue; }
        if (tty) {
            /* history keeps each question on one line */
            char *h = strdup(q);
            if (h) {
                for (char *c = h; *c; c++)
                    if (*c == '\n') *c = ' ';
                add_history(h);
                free(h);
                if (hist && write_history(hist) != 0 && errno)
                    fprintf(stderr, "mrag: warning: cannot write the history file %s\n", hist);
            }
        }
        int c = command(a, q);
        if (c == 1) { free(q); break; }
        if (c == 0) { free(q); fflush(stdout); continue; }
        if (!tty) printf("Q: %s\n", q);
        got_sigint = 0;
        int rc = app_asker_ask(a, q, true, false, stats);
        free(q);
        if (rc == 130) got_sigint = 0;          /* the answer stopped; stay in the chat */
        putchar('\n');
        fflush(stdout);
    }
    cancel_flag = NULL;
    signal(SIGINT, SIG_DFL);
    free(hist);
    app_asker_close(a);
    return 0;
}
