/* fuzz_guard_text.c — libFuzzer target for the guardrails' handling of the
 * text they check (questions, passages and answers are outside bytes): UTF-8
 * repair, the Unicode and skeleton views, decoding of base64/hex/%-runs and
 * ROT13, at all three stages and as a stream cut at every 5th byte. The
 * built-in-free rules here cover every view. Invariants: the result text is
 * valid UTF-8, spans lie inside the (repaired) text, a stream's output is
 * valid UTF-8. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rag/rag.h"

static const char rules[] =
    "id: t.inj\nstage: all\naction: block\nflags: i\npattern: \\bignore\\s+(?:all\\s+)?previous\\s+instructions\\b\n\n"
    "id: t.mail\nstage: all\naction: redact\nvalidator: email\npattern: [\\w.+-]+@[\\w-]+(?:\\.[\\w-]+)+\n\n"
    "id: t.word\nstage: all\naction: flag\nflags: i\npattern: \\bsecret\\b\n";

static rag_guard *guard(void) {
    static rag_guard *g;
    if (g) return g;
    rag_guard_params p = rag_guard_default_params();
    p.no_defaults = true;
    p.quarantine = RAG_GUARD_QUARANTINE_KEEP;
    if (rag_guard_new(&p, &g) != RAG_OK) abort();
    if (rag_guard_add_text(g, "fuzz.rules", rules, sizeof rules - 1) != RAG_OK || rag_guard_compile(g) != RAG_OK) abort();
    return g;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rag_guard *g = guard();
    const char *t = (const char *)data;
    for (int st = 0; st < 3; st++) {
        rag_guard_result r;
        if (rag_guard_check(g, (rag_guard_stage)st, t, size, 1, &r) != RAG_OK) continue;
        if (rag_utf8_valid_prefix(r.text, r.text_len) != r.text_len || r.text[r.text_len] != 0) __builtin_trap();
        if (!r.repaired && rag_utf8_valid_prefix(t, size) != size) __builtin_trap();
        size_t n = size * 3 + 1; /* repaired text is at most 3x */
        for (size_t i = 0; i < r.n_events; i++)
            if (r.events[i].start > r.events[i].end || r.events[i].end > n) __builtin_trap();
        rag_guard_result_release(&r);
    }
    rag_guard_stream *s;
    if (rag_guard_stream_new(g, RAG_GUARD_OUTPUT, 1, &s) == RAG_OK) {
        const char *out;
        size_t out_len;
        int rc = RAG_OK;
        for (size_t i = 0; i < size && rc == RAG_OK; i += 5) {
            rc = rag_guard_stream_feed(s, t + i, size - i < 5 ? size - i : 5, &out, &out_len);
            if (rc == RAG_OK && rag_utf8_valid_prefix(out, out_len) != out_len) __builtin_trap();
        }
        if (rc == RAG_OK && rag_guard_stream_finish(s, &out, &out_len) == RAG_OK &&
            rag_utf8_valid_prefix(out, out_len) != out_len)
            __builtin_trap();
        rag_guard_stream_free(s);
    }
    return 0;
}
