/* util.c — the small helpers every part of rag/ shares (util_internal.h):
 * one error-message convention, one growable buffer, UTF-8, the clock. */
#include "rag/util_internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Contract: see util_internal.h. */
int rag_errf(char *err, size_t errlen, int rc, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Contract: see util_internal.h. */
int rag_errf_first(char *err, size_t errlen, const char *name, int rc, const char *fmt, ...) {
    if (err && errlen && !err[0]) {
        char msg[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(err, errlen, "%s: %s", name, msg);
    }
    return rc;
}

/* ------------------------------------------------------------------ buffer */
int rag_buf_reserve(rag_buf *b, size_t extra) {
    if (extra > SIZE_MAX / 2 - b->len - 1) return RAG_ERR_LIMIT;
    size_t need = b->len + extra + 1;
    if (b->limit && need > b->limit + 1) return RAG_ERR_LIMIT;
    if (need <= b->cap) return RAG_OK;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need) ncap *= 2;
    char *nd = realloc(b->data, ncap);
    if (!nd) return RAG_ERR_NOMEM;
    b->data = nd;
    b->cap = ncap;
    return RAG_OK;
}

int rag_buf_append(rag_buf *b, const char *s, size_t n) {
    int rc = rag_buf_reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
    return RAG_OK;
}

int rag_buf_putc(rag_buf *b, char c) {
    return rag_buf_append(b, &c, 1);
}

void rag_buf_release(rag_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------- UTF-8 */
size_t rag_utf8_seq_len(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    uint32_t min, cp;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; min = 0x80; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; min = 0x800; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; min = 0x10000; cp = c & 0x07; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

bool rag_utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        size_t k = rag_utf8_seq_len(s + i, n - i);
        if (!k) return false;
        i += k;
    }
    return true;
}

size_t rag_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Contract: see util_internal.h. */
int rag_array_grow(void *arrp, size_t *cap, size_t need, size_t elem, size_t first) {
    if (need <= *cap) return RAG_OK;
    size_t c = *cap ? *cap : first ? first : 8;
    while (c < need) {
        if (c > SIZE_MAX / 2) return RAG_ERR_LIMIT;
        c *= 2;
    }
    if (!elem || c > SIZE_MAX / elem) return RAG_ERR_LIMIT;
    void *old;
    memcpy(&old, arrp, sizeof old);
    void *p = realloc(old, c * elem);
    if (!p) return RAG_ERR_NOMEM;
    memcpy(arrp, &p, sizeof p);
    *cap = c;
    return RAG_OK;
}

double rag_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
