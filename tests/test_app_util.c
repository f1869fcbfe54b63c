/* test_app_util.c — app/util.c, the helpers every command uses: the one
 * number parser of the command lines (whole string, base 10, range, no
 * blanks, no overflow), reading a file or a stream with a limit, joining
 * the words of a question, opening an existing index read-only. */
#include "tests/test.h"

#include "app/app.h"
#include "index/index.h"

#include <errno.h>
#include <stdlib.h>

TEST(long_accepts_only_a_whole_number_in_range) {
    long v = -7;
    CHECK(app_parse_long("42", 0, 100, &v) && v == 42);
    CHECK(app_parse_long("-3", -5, 5, &v) && v == -3);
    CHECK(app_parse_long("0", 0, 0, &v) && v == 0);
    v = -7;
    const char *bad[] = {"", "4x", "x4", " 4", "4 ", "101", "-1", "1e2", "0x10", "99999999999999999999999", NULL};
    for (int i = 0; bad[i]; i++) CHECK(!app_parse_long(bad[i], 0, 100, &v), "accepted '%s'", bad[i]);
    CHECK_EQ_INT(v, -7);                    /* untouched on failure */
    CHECK(!app_parse_long(NULL, 0, 1, &v));
    int iv = 0;
    CHECK(app_parse_int("256", 1, 256, &iv) && iv == 256);
    CHECK(!app_parse_int("257", 1, 256, &iv));
    CHECK(!app_parse_int("4294967296", -10, 10, &iv));     /* no wrap through int */
}

TEST(double_is_finite_and_in_range) {
    double d = 0;
    CHECK(app_parse_double("0.7", 0, 10, &d) && d > 0.69 && d < 0.71);
    CHECK(app_parse_double("1e-3", 0, 1, &d) && d == 1e-3);
    const char *bad[] = {"", "nan", "inf", "-inf", "1e400", "0.5x", " 1", "11", "-0.1", NULL};
    for (int i = 0; bad[i]; i++) CHECK(!app_parse_double(bad[i], 0, 10, &d), "accepted '%s'", bad[i]);
}

TEST(u64_takes_the_whole_range_without_a_sign) {
    uint64_t u = 0;
    CHECK(app_parse_u64("18446744073709551615", &u) && u == UINT64_MAX);
    CHECK(app_parse_u64("0", &u) && u == 0);
    const char *bad[] = {"", "-1", "+1", " 1", "18446744073709551616", "1.5", "12a", NULL};
    for (int i = 0; bad[i]; i++) CHECK(!app_parse_u64(bad[i], &u), "accepted '%s'", bad[i]);
}

TEST(files_and_streams_are_read_whole_within_a_limit) {
    char path[600];
    snprintf(path, sizeof path, "%s/f.txt", test_tmpdir());
    REQUIRE(test_write_file(path, "hello\0world", 11) == 0);
    size_t n = 0;
    char *s = app_read_file(path, 11, &n);
    REQUIRE(s);
    CHECK_EQ_INT(n, 11);
    CHECK(memcmp(s, "hello\0world", 12) == 0);   /* NUL-terminated after the bytes */
    free(s);
    errno = 0;
    CHECK(app_read_file(path, 10, &n) == NULL && errno == EFBIG);
    CHECK(app_read_file("/nonexistent/x", 10, &n) == NULL && errno == ENOENT);
    /* an empty stream is an empty string, not an error */
    FILE *f = tmpfile();
    REQUIRE(f);
    s = app_read_stream(f, 1, &n);
    CHECK(s && n == 0 && s[0] == 0);
    free(s);
    /* more than the 4 KB steps of the reader */
    char *big = malloc(100000);
    REQUIRE(big);
    for (int i = 0; i < 100000; i++) big[i] = (char)('a' + i % 26);
    fwrite(big, 1, 100000, f);
    rewind(f);
    s = app_read_stream(f, 100000, &n);
    CHECK(s && n == 100000 && memcmp(s, big, n) == 0);
    free(s);
    rewind(f);
    CHECK(app_read_stream(f, 99999, &n) == NULL && errno == EFBIG);
    fclose(f);
    free(big);
}

TEST(question_words_are_joined_by_one_blank) {
    char *a[] = {"How", "do I", "set up?"};
    char *s = app_join_args(3, a);
    CHECK_EQ_STR(s, "How do I set up?");
    free(s);
    s = app_join_args(0, a);
    CHECK_EQ_STR(s, "");
    free(s);
}

TEST(an_index_opens_read_only_or_names_what_is_missing) {
    char dir[700];
    snprintf(dir, sizeof dir, "%s/no-such-index", test_tmpdir());
    CHECK(app_open_index(dir, "search") == NULL);
    /* an index made by the library opens, read-only */
    snprintf(dir, sizeof dir, "%s/idx", test_tmpdir());
    idx_store *w = test_open_index(dir);
    idx_close(w);
    idx_store *s = app_open_index(dir, NULL);
    REQUIRE(s);
    CHECK(idx_meta_set(s, "x", "y") != IDX_OK, "writable: the index was not opened read-only");
    idx_close(s);
}

TEST_MAIN(RUN(long_accepts_only_a_whole_number_in_range), RUN(double_is_finite_and_in_range),
          RUN(u64_takes_the_whole_range_without_a_sign), RUN(files_and_streams_are_read_whole_within_a_limit),
          RUN(question_words_are_joined_by_one_blank), RUN(an_index_opens_read_only_or_names_what_is_missing))
