/* testhttp.c — the tests' one HTTP client (tests/test.h, "HTTP"): a
 * growing reply buffer and a single request on libcurl, for the servers the
 * tests start on 127.0.0.1. */
#include "tests/test.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t test_buf_write(char *p, size_t size, size_t nmemb, void *buf) {
    test_buf *b = buf;
    size_t n = size * nmemb;
    char *q = realloc(b->b, b->n + n + 1);
    if (!q) return 0;
    b->b = q;
    memcpy(b->b + b->n, p, n);
    b->n += n;
    b->b[b->n] = 0;
    if (b->on_data && !b->on_data(b, p, n, b->u)) return 0;   /* curl: write error, transfer aborted */
    return n;
}

long test_http(const char *url, const test_http_req *q, test_buf *body, test_buf *head) {
    static const test_http_req plain;
    if (!q) q = &plain;
    test_buf sink = {0};
    CURL *c = curl_easy_init();
    if (!c) return 0;
    struct curl_slist *h = NULL;
    char auth[512];
    if (q->key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", q->key);
        h = curl_slist_append(h, auth);
    }
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");     /* no 100-continue round trip on large bodies */
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, test_buf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body ? body : &sink);
    if (head) {
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, test_buf_write);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, head);
    }
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (q->path_as_is) curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    if (q->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(q->body_len ? q->body_len : strlen(q->body)));
    }
    if (q->method) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
    long status = 0;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK || rc == CURLE_WRITE_ERROR) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(sink.b);
    return status;
}
