/* fuzz_guard_text.c — libFuzzer target for the guardrails' handling of the
 * text they check (questions, passages and answers are outside bytes): UTF-8
 * repair, the Unicode and skeleton views, decoding of base64/hex/%-runs and
 * ROT13, at all three stages and as a stream cut at every 5th byte. The
 * built-in-free rules here cover every view; the default rules (with the
 * learned detectors, when run from the repository root) check the input at
 * the context stage with its first third as the user's question (unrelated
 * requests, the uncertain band), and an output stream protects a system
 * prompt and a canary. Invariants: the result text is valid UTF-8, spans
 * lie inside the (repaired) text, a stream's output is valid UTF-8. */
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

/* The default rules and models, or NULL when data/guardrails is not here. */
static rag_guard *defaults(void) {
    static rag_guard *g;
    static int tried;
    if (tried) return g;
    tried = 1;
    rag_guard_params p = rag_guard_default_params();
    p.defaults_dir = "data/guardrails";
    char err[512];
    if (rag_guard_load(&p, &g, err, sizeof err) != RAG_OK) g = NULL;
    return g;
}

static void check_spans(const rag_guard_result *r, size_t n) {
    for (size_t i = 0; i < r->n_events; i++)
        if (r->events[i].start > r->events[i].end || r->events[i].end > n) __builtin_trap();
    if (r->uncertain > 0 && (r->uncertain_start > r->uncertain_end || r->uncertain_end > n)) __builtin_trap();
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
    rag_guard *d = defaults();
    if (d) {
        rag_guard_check_opts o = {0};
        o.question = t;
        o.question_len = size / 3;
        rag_guard_result r;
        if (rag_guard_check_with(d, RAG_GUARD_CONTEXT, t + size / 3, size - size / 3, &o, &r) == RAG_OK) {
            if (rag_utf8_valid_prefix(r.text, r.text_len) != r.text_len) __builtin_trap();
            check_spans(&r, (size - size / 3) * 3 + 1);
            rag_guard_result_release(&r);
        }
        if (rag_guard_check(d, RAG_GUARD_INPUT, t, size, 0, &r) == RAG_OK) {
            check_spans(&r, size * 3 + 1);
            rag_guard_result_release(&r);
        }
        if (rag_guard_stream_new(d, RAG_GUARD_OUTPUT, 2, &s) == RAG_OK) {
            static const char sys[] = "You answer questions from the documents below, citing them as [n].";
            const char *out;
            size_t out_len;
            int rc = rag_guard_stream_protect(s, sys, sizeof sys - 1);
            if (rc == RAG_OK) rc = rag_guard_stream_canary(s, "q7k2m9x4w8p3z6r1", 16);
            for (size_t i = 0; i < size && rc == RAG_OK; i += 3) {
                rc = rag_guard_stream_feed(s, t + i, size - i < 3 ? size - i : 3, &out, &out_len);
                if (rc == RAG_OK && rag_utf8_valid_prefix(out, out_len) != out_len) __builtin_trap();
            }
            if (rc == RAG_OK) rag_guard_stream_finish(s, &out, &out_len);
            rag_guard_stream_free(s);
        }
    }
    return 0;
}
