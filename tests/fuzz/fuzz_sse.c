/* fuzz_sse.c — libFuzzer target for the remote engine's SSE parser (the
 * stream comes from a server we do not control): the same bytes fed whole,
 * byte by byte and in odd pieces must give the same text and the same
 * outcome; a failure always leaves a message. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rag/rag.h"

typedef struct {
    char buf[1 << 16];
    size_t len;
    size_t total;
} sink;

static int on_emit(void *user, const char *t, size_t n) {
    sink *s = user;
    if (!t && n) __builtin_trap();
    s->total += n;
    if (s->len + n <= sizeof s->buf) { memcpy(s->buf + s->len, t, n); s->len += n; }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static sink a, b, c;
    char ea[256] = "", eb[256] = "", ec[256] = "";
    a.len = b.len = c.len = a.total = b.total = c.total = 0;
    const char *d = (const char *)data;
    /* a small line limit so the limit path is reached too */
    int ra = rag_remote_parse_sse(d, size, 0, 4096, on_emit, &a, ea, sizeof ea);
    int rb = rag_remote_parse_sse(d, size, 1, 4096, on_emit, &b, eb, sizeof eb);
    int rc = rag_remote_parse_sse(d, size, 7, 4096, on_emit, &c, ec, sizeof ec);
    if (ra != rb || ra != rc) __builtin_trap();
    if (a.total != b.total || a.total != c.total) __builtin_trap();
    if (a.len != b.len || memcmp(a.buf, b.buf, a.len) != 0 || memcmp(a.buf, c.buf, a.len) != 0) __builtin_trap();
    if (ra != 0 && (!ea[0] || !eb[0] || !ec[0])) __builtin_trap();
    return 0;
}
