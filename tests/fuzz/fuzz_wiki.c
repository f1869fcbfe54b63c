/* fuzz_wiki.c — libFuzzer target for the MediaWiki connector's parsing of
 * api.php answers (outside bytes): rag_wiki_resp_parse, the timestamp parser,
 * the Retry-After reader and the URL encoder. Checks the parsed structs' invariants; any violation
 * traps. Seeds: tests/fuzz/seeds/fuzz_wiki/ (real answers). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rag/http_internal.h"
#include "rag/wiki_internal.h"

static void check_str(const char *s, size_t max) {
    if (s && strlen(s) > max) __builtin_trap();
}

static void check_resp(const wiki_resp *r) {
    check_str(r->error_code, 256);
    check_str(r->error_info, WIKI_MAX_STRING);
    if (r->n_pages > WIKI_MAX_PAGES_PER_ANSWER || (r->n_pages && !r->pages)) __builtin_trap();
    for (size_t i = 0; i < r->n_pages; i++) {
        const wiki_page *p = &r->pages[i];
        if (!p->title) __builtin_trap();        /* a page without a title is an error */
        check_str(p->title, WIKI_MAX_STRING);
        if (p->url && strncmp(p->url, "http://", 7) != 0 && strncmp(p->url, "https://", 8) != 0) __builtin_trap();
        if (p->n_categories > WIKI_MAX_CATEGORIES) __builtin_trap();
        for (size_t k = 0; k < p->n_categories; k++) check_str(p->categories[k], WIKI_MAX_STRING);
        if (p->revid < 0 || p->pageid < 0) __builtin_trap();
    }
    if (r->n_changes > 2 * WIKI_MAX_CHANGES_PER_ANSWER) __builtin_trap();
    for (size_t i = 0; i < r->n_changes; i++) {
        check_str(r->changes[i].title, WIKI_MAX_STRING);
        check_str(r->changes[i].target_title, WIKI_MAX_STRING);
        check_str(r->changes[i].type, 64);
    }
    /* continuation: only URL-safe bytes (it is pasted into a URL) */
    if (r->cont) {
        for (const char *c = r->cont; *c; c++) {
            char x = *c;
            bool ok = (x >= 'A' && x <= 'Z') || (x >= 'a' && x <= 'z') || (x >= '0' && x <= '9') || strchr("-_.~%&=", x);
            if (!ok) __builtin_trap();
        }
        if (r->cont[0] != '&') __builtin_trap();
    }
    if (r->parse_text && strlen(r->parse_text) != r->parse_text_len) __builtin_trap();
    int64_t t;
    if (r->time && rag_wiki_parse_time(r->time, &t)) {
        char back[21];
        rag_wiki_format_time(t, back);
        if (strlen(back) != 20) __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    wiki_resp r;
    char err[256] = "";
    int rc = rag_wiki_resp_parse((const char *)data, size, &r, err, sizeof err);
    if (rc == RAG_OK) {
        check_resp(&r);
        rag_wiki_resp_release(&r);
    } else {
        /* a failure leaves nothing behind and says why */
        if (r.pages || r.changes || r.cont || r.error_code || r.parse_text || !err[0]) __builtin_trap();
    }
    /* the input as a timestamp: accepted ones format back to themselves */
    if (size <= 32) {
        char s[33];
        memcpy(s, data, size);
        s[size] = 0;
        int64_t t;
        if (rag_wiki_parse_time(s, &t)) {
            char back[21];
            rag_wiki_format_time(t, back);
            int64_t t2;
            if (!rag_wiki_parse_time(back, &t2) || t2 != t) __builtin_trap();
        }
    }
    /* the input as a header line (Retry-After, shared with the remote engine) */
    long ra = rag_http_retry_after((const char *)data, size, 1795800000);
    if (ra < -1 || ra > 86400) __builtin_trap();
    /* the encoder: only unreserved bytes and %XX */
    rag_buf b = {0};
    b.limit = 1u << 20;
    if (rag_wiki_urlencode(&b, (const char *)data, size < 4096 ? size : 4096) == RAG_OK && b.data) {
        for (size_t i = 0; i < b.len; i++) {
            char x = b.data[i];
            if (!((x >= 'A' && x <= 'Z') || (x >= 'a' && x <= 'z') || (x >= '0' && x <= '9') || strchr("-_.~%", x)))
                __builtin_trap();
        }
    }
    rag_buf_release(&b);
    return 0;
}
