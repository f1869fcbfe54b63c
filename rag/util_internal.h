/* util_internal.h — the helpers every part of rag/ shares (rag/util.c):
 * one error-message convention, one growable buffer, UTF-8 checks, a
 * monotonic clock. Internal to rag/. */
#ifndef MRAG_RAG_UTIL_INTERNAL_H
#define MRAG_RAG_UTIL_INTERNAL_H

#include "rag/base.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The error convention of rag/: a message into a caller's (or a handle's)
 * buffer err[errlen] (may be NULL), naming the file, URL or request and the
 * problem, and the status returned: return rag_errf(err, n, RAG_ERR_IO,
 * "%s: %s", path, strerror(errno)); */
int rag_errf(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The first problem wins: writes "NAME: message" into err only when err
 * is still empty, so the message names what went wrong first and not the
 * unwinding after it. Returns rc. The extractors' fail(). */
int rag_errf_first(char *err, size_t errlen, const char *name, int rc, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The ingestion files' older name for rag_errf. */
#define rag_ing_err rag_errf

/* A growable byte buffer; NUL-terminated after every append. Zero it to
 * start; rag_buf_release frees it (and zeroes it again). */
typedef struct {
    char *data;
    size_t len, cap;
    size_t limit;       /* appends past this fail with RAG_ERR_LIMIT; 0 = none */
} rag_buf;

/* Room for extra more bytes: RAG_OK, RAG_ERR_LIMIT or RAG_ERR_NOMEM. */
int rag_buf_reserve(rag_buf *b, size_t extra);
int rag_buf_append(rag_buf *b, const char *s, size_t n);
int rag_buf_putc(rag_buf *b, char c);
void rag_buf_release(rag_buf *b);

/* The one way rag/ grows a typed array: makes *arrp (a T **, passed as
 * &array) hold at least need elements of elem bytes, doubling from *cap
 * (from first, or 8, when empty). RAG_OK, RAG_ERR_NOMEM (the array is kept
 * as it was) or RAG_ERR_LIMIT (the size would overflow):
 *     if (rag_array_grow(&w->items, &w->cap, w->n + 1, sizeof *w->items, 64)) ... */
int rag_array_grow(void *arrp, size_t *cap, size_t need, size_t elem, size_t first);

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 when invalid
 * (overlongs, surrogates and code points past U+10FFFF are invalid). */
size_t rag_utf8_seq_len(const unsigned char *s, size_t n);
/* True when all n bytes are valid UTF-8. */
bool rag_utf8_valid(const unsigned char *s, size_t n);
/* Encodes code point cp (< 0x110000, not a surrogate) into out; returns 1..4. */
size_t rag_utf8_encode(uint32_t cp, char out[4]);

/* Milliseconds of a monotonic clock (for durations). */
double rag_now_ms(void);

#endif
