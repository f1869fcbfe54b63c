/* test_app_opt.c — app/opt.c, the one option parser of the commands:
 * options anywhere among the operands, --name=value, -kVALUE, `--` ends the
 * options, whole long names only, and usage errors that name the option
 * and what it accepts. */
#include "tests/test.h"

#include "app/app.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

enum { O_K = 'k', O_MODEL = 'm', O_MODE = 256, O_JSON, O_INDEX, O_TEMP, O_TOKENS };

static const app_opt common_opts[] = {
    {"index", 0, "DIR", O_INDEX},
    {"model", 'm', "FILE", O_MODEL},
    {0},
};
static const app_opt own_opts[] = {
    {NULL, 'k', "N", O_K},
    {"mode", 0, "dense|bm25|hybrid", O_MODE},
    {"json", 0, NULL, O_JSON},
    {"temp", 0, "T", O_TEMP},
    {"max-tokens", 0, "N", O_TOKENS},
    {0},
};
static const app_opt *const tables[] = {common_opts, own_opts, NULL};

/* Runs the parser over a copy of words (NULL-terminated, words[0] the
 * command) and records "id=value" per option, then "| operands", into out;
 * returns the parser's last result (0 done, -1 usage error). stderr goes
 * to err. */
static int parse(const char *const *words, char *out, size_t cap, char *err, size_t err_cap) {
    char *argv[32];
    int argc = 0;
    while (words[argc]) { argv[argc] = (char *)words[argc]; argc++; }
    fflush(stderr);
    char path[] = "/tmp/mrag-opt-XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    dup2(fd, 2);
    app_args p;
    app_args_init(&p, "demo", tables, argc, argv);
    const char *v;
    int id;
    size_t n = 0;
    out[0] = 0;
    while ((id = app_args_next(&p, &v)) > 0)
        n += (size_t)snprintf(out + n, cap - n, "%d=%s ", id, v ? v : "-");
    if (id == 0) {
        n += (size_t)snprintf(out + n, cap - n, "|");
        for (int i = 1; i <= p.npos; i++) n += (size_t)snprintf(out + n, cap - n, " %s", argv[i]);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ssize_t r = pread(fd, err, err_cap - 1, 0);
    err[r > 0 ? r : 0] = 0;
    close(fd);
    unlink(path);
    return id;
}

TEST(options_stand_anywhere_among_the_operands) {
    char out[512], err[512];
    const char *w[] = {"demo", "VPN", "-k", "1", "port?", "--mode", "bm25", "--json", NULL};
    CHECK_EQ_INT(parse(w, out, sizeof out, err, sizeof err), 0);
    CHECK_EQ_STR(out, "107=1 256=bm25 257=- | VPN port?");
    CHECK_EQ_STR(err, "");
}

TEST(name_equals_value_and_attached_short_values) {
    char out[512], err[512];
    const char *w[] = {"demo", "--mode=bm25", "-k3", "--index=", "-mfile.gguf", "--model=a=b", "q", NULL};
    CHECK_EQ_INT(parse(w, out, sizeof out, err, sizeof err), 0);
    CHECK_EQ_STR(out, "256=bm25 107=3 258= 109=file.gguf 109=a=b | q");
}

TEST(double_dash_ends_the_options) {
    char out[512], err[512];
    const char *w[] = {"demo", "-k", "2", "--", "--json", "-k", "-", NULL};
    CHECK_EQ_INT(parse(w, out, sizeof out, err, sizeof err), 0);
    CHECK_EQ_STR(out, "107=2 | --json -k -");
    const char *w2[] = {"demo", "-", "x", NULL};          /* "-" is an operand (stdin) */
    CHECK_EQ_INT(parse(w2, out, sizeof out, err, sizeof err), 0);
    CHECK_EQ_STR(out, "| - x");
}

TEST(a_value_may_start_with_a_dash) {
    char out[512], err[512];
    const char *w[] = {"demo", "--temp", "-1", "--index", "--json", NULL};
    CHECK_EQ_INT(parse(w, out, sizeof out, err, sizeof err), 0);
    CHECK_EQ_STR(out, "259=-1 258=--json |");
}

TEST(unknown_and_abbreviated_options_are_refused) {
    char out[512], err[512];
    const char *w[] = {"demo", "q", "--fuzzy", NULL};
    CHECK_EQ_INT(parse(w, out, sizeof out, err, sizeof err), -1);
    CHECK_EQ_STR(err, "mrag demo: unknown option '--fuzzy' (see `mrag demo --help`)\n");
    const char *w2[] = {"demo", "--max", "5", NULL};      /* never a prefix of --max-tokens */
    CHECK_EQ_INT(parse(w2, out, sizeof out, err, sizeof err), -1);
    CHECK(strstr(err, "unknown option '--max'"), "%s", err);
    const char *w3[] = {"demo", "-x", NULL};
    CHECK_EQ_INT(parse(w3, out, sizeof out, err, sizeof err), -1);
    CHECK(strstr(err, "unknown option '-x'"), "%s", err);
}

TEST(missing_values_name_what_the_option_takes) {
    char out[512], err[512];
    const char *w[] = {"demo", "q", "--mode", NULL};
    CHECK_EQ_INT(parse(w, out, sizeof out, err, sizeof err), -1);
    CHECK_EQ_STR(err, "mrag demo: --mode needs a value: one of dense, bm25 or hybrid (see `mrag demo --help`)\n");
    const char *w2[] = {"demo", "-k", NULL};
    CHECK_EQ_INT(parse(w2, out, sizeof out, err, sizeof err), -1);
    CHECK(strstr(err, "-k needs a value: N"), "%s", err);
}

TEST(flags_take_no_value) {
    char out[512], err[512];
    const char *w[] = {"demo", "--json=yes", NULL};
    CHECK_EQ_INT(parse(w, out, sizeof out, err, sizeof err), -1);
    CHECK(strstr(err, "--json takes no value"), "%s", err);
}

/* The value checks print the option as written, the value and the range. */
TEST(value_checks_name_option_value_and_range) {
    char *argv[] = {"demo", "--mode", "fuzzy", "-k", "0", NULL};
    app_args p;
    app_args_init(&p, "demo", tables, 5, argv);
    const char *v;
    fflush(stderr);
    char path[] = "/tmp/mrag-opt-XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    dup2(fd, 2);
    CHECK_EQ_INT(app_args_next(&p, &v), O_MODE);
    int bad_choice = app_opt_choice(&p, v);
    CHECK_EQ_INT(app_args_next(&p, &v), O_K);
    int k = 7;
    bool k_ok = app_opt_int(&p, v, 1, 100, &k);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char err[1024];
    ssize_t r = pread(fd, err, sizeof err - 1, 0);
    err[r > 0 ? r : 0] = 0;
    close(fd);
    unlink(path);
    CHECK_EQ_INT(bad_choice, -1);
    CHECK(!k_ok);
    CHECK_EQ_INT(k, 7);
    CHECK(strstr(err, "mrag demo: --mode: 'fuzzy' is not one of dense, bm25 or hybrid (see `mrag demo --help`)\n"), "%s", err);
    CHECK(strstr(err, "mrag demo: -k: '0' is not a whole number from 1 to 100"), "%s", err);

    char *argv2[] = {"demo", "--mode", "hybrid", NULL};
    app_args_init(&p, "demo", tables, 3, argv2);
    CHECK_EQ_INT(app_args_next(&p, &v), O_MODE);
    CHECK_EQ_INT(app_opt_choice(&p, v), 2);
}

TEST_MAIN(RUN(options_stand_anywhere_among_the_operands), RUN(name_equals_value_and_attached_short_values),
          RUN(double_dash_ends_the_options), RUN(a_value_may_start_with_a_dash),
          RUN(unknown_and_abbreviated_options_are_refused), RUN(missing_values_name_what_the_option_takes),
          RUN(flags_take_no_value), RUN(value_checks_name_option_value_and_range))
