/* fuzz_extract_text.c — libFuzzer target for the plain-text and Markdown
 * extractors (encoding detection, CRLF, fences, headings) and the chunker:
 * the first byte picks txt or md, the rest is the file. Checks that spans
 * map back to the original bytes exactly. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rag/rag.h"

/* 1 + chars/4 per word: not additive, so the chunker must re-count. */
static int count_chars(void *user, const char *t, size_t n) {
    (void)user;
    int tok = 0;
    for (size_t i = 0; i < n;) {
        if (t[i] == ' ' || t[i] == '\n' || t[i] == '\t') { tok += t[i] == '\n'; i++; continue; }
        size_t chars = 0;
        while (i < n && t[i] != ' ' && t[i] != '\n' && t[i] != '\t') chars += ((unsigned char)t[i++] & 0xC0) != 0x80;
        tok += 1 + (int)(chars / 4);
    }
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    rag_doc_type type = data[0] & 1 ? RAG_DOC_MD : RAG_DOC_TXT;
    const uint8_t *src = data + 1;
    size_t len = size - 1;
    rag_extract_params p = rag_extract_default_params();
    p.max_text_bytes = 1 << 20;
    rag_doc *d = NULL;
    char err[256];
    if (rag_extract_memory("fuzz.md", src, len, type, &p, &d, err, sizeof err) != RAG_OK) {
        if (d || !strstr(err, "fuzz.md")) __builtin_trap();
        return 0;
    }
    if (!d->text || d->text[d->text_len] != 0 || !d->exact_spans) __builtin_trap();
    bool utf8 = strcmp(d->encoding, "UTF-8") == 0;
    for (size_t i = 0; i < d->n_blocks; i++) {
        const rag_block *b = &d->blocks[i];
        if (b->text_off + b->text_len > d->text_len || b->byte_end > len || b->byte_start > b->byte_end) __builtin_trap();
        if (b->line_start < 1 || b->line_end < b->line_start) __builtin_trap();
        /* UTF-8 input: the original bytes minus CR equal the block text,
         * except for control bytes, which became spaces */
        if (utf8) {
            size_t k = 0;
            for (uint64_t o = b->byte_start; o < b->byte_end; o++) {
                uint8_t c = src[o];
                if (c == '\r' && o + 1 < len && src[o + 1] == '\n') continue;
                char want = c == '\r' ? '\n' : ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) ? ' ' : (char)c;
                if (k >= b->text_len || d->text[b->text_off + k] != want) __builtin_trap();
                k++;
            }
            if (k != b->text_len) __builtin_trap();
        }
    }
    rag_chunk_params cp = rag_chunk_default_params();
    cp.max_tokens = 16 + (data[0] >> 2);
    cp.overlap_tokens = (data[0] >> 4) % (cp.max_tokens / 2);
    rag_chunk_list l;
    if (rag_chunk_doc(d, &cp, count_chars, NULL, &l, err, sizeof err) != RAG_OK) __builtin_trap();
    for (size_t i = 0; i < l.n; i++) {
        const rag_chunk *c = &l.chunks[i];
        if (count_chars(NULL, c->embed_text, c->embed_len) > cp.max_tokens || c->n_tokens > cp.max_tokens) __builtin_trap();
        if (c->byte_end > len || c->byte_start >= c->byte_end) __builtin_trap();
        if (c->text_off + c->text_len > d->text_len || memcmp(c->text, d->text + c->text_off, c->text_len)) __builtin_trap();
    }
    rag_chunk_list_free(&l);
    rag_doc_free(d);
    return 0;
}
