/* test_rag_http.c — rag/http.c: Retry-After header lines in both forms, as
 * libcurl hands them over (not NUL-terminated, CRLF at the end). */
#include "tests/test.h"
#include "rag/http_internal.h"

#include <curl/curl.h>

/* The header as a buffer of exactly its length, followed by bytes that must
 * not be read (digits, which would change the value if they were). */
static long ra(const char *hdr, time_t now) {
    char buf[256];
    size_t n = strlen(hdr);
    memcpy(buf, hdr, n);
    memset(buf + n, '9', sizeof buf - n);
    return rag_http_retry_after(buf, n, now);
}

TEST(delta_seconds) {
    CHECK_EQ_INT(ra("Retry-After: 120\r\n", 0), 120);
    CHECK_EQ_INT(ra("retry-after:7", 0), 7);
    CHECK_EQ_INT(ra("RETRY-AFTER: \t 0 \r\n", 0), 0);
    CHECK_EQ_INT(ra("Retry-After: 99999999999999999999\r\n", 0), 86400);   /* capped, no overflow */
}

TEST(http_date) {
    const char *when = "Fri, 27 Nov 2026 17:30:00 GMT";
    time_t t = curl_getdate(when, NULL);
    REQUIRE(t > 0);
    char hdr[128];
    snprintf(hdr, sizeof hdr, "Retry-After: %s\r\n", when);
    CHECK_EQ_INT(ra(hdr, t - 90), 90);
    CHECK_EQ_INT(ra(hdr, t + 3600), 0);                      /* already past */
    CHECK_EQ_INT(ra(hdr, t - 10 * 86400), 86400);            /* capped */
    /* the obsolete RFC 850 form, as RFC 9110 asks recipients to accept */
    CHECK_EQ_INT(ra("Retry-After: Friday, 27-Nov-26 17:30:00 GMT\r\n", t - 5), 5);
}

TEST(other_headers_and_garbage) {
    CHECK_EQ_INT(ra("Content-Type: text/html\r\n", 0), -1);
    CHECK_EQ_INT(ra("Retry-After:\r\n", 0), -1);
    CHECK_EQ_INT(ra("Retry-After: soon\r\n", 0), -1);
    CHECK_EQ_INT(ra("Retry-After: 12abc\r\n", 0), -1);
    CHECK_EQ_INT(ra("Retry-Afte", 0), -1);
    CHECK_EQ_INT(rag_http_retry_after(NULL, 0, 0), -1);
    char big[300];
    memset(big, 'x', sizeof big);
    memcpy(big, "Retry-After: ", 13);
    CHECK_EQ_INT(rag_http_retry_after(big, sizeof big, 0), -1);  /* an over-long date */
}

TEST_MAIN(RUN(delta_seconds), RUN(http_date), RUN(other_headers_and_garbage))
