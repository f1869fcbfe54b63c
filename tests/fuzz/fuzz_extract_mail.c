/* fuzz_extract_mail.c — libFuzzer target for the e-mail extractor (.eml,
 * .mbox: MIME trees, transfer encodings, encoded-words, charsets, the mbox
 * split and >From unquoting, attachments through the other extractors):
 * byte 0 'm' makes the rest an mbox, anything else an eml. Invariants: a
 * success has non-empty blocks inside the text in order, valid UTF-8 text
 * and chunks that are slices of it; a failure leaves no document and names
 * the file. Seeds: tests/fuzz/seeds/fuzz_extract_mail/. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rag/rag.h"

static bool valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!k || i + k > n) return false;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xC0) != 0x80) return false;
        i += k;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    rag_doc_type type = data[0] == 'm' ? RAG_DOC_MBOX : RAG_DOC_EML;
    const char *name = type == RAG_DOC_MBOX ? "fuzz.mbox" : "fuzz.eml";
    rag_extract_params p = rag_extract_default_params();
    p.max_text_bytes = 1 << 20;
    p.budget.cpu_seconds = 5;
    rag_doc *d = NULL;
    char err[512] = "";
    if (rag_extract_memory(name, data + 1, size - 1, type, &p, &d, err, sizeof err) != RAG_OK) {
        if (d || !strstr(err, name)) __builtin_trap();
        return 0;
    }
    if (!d->text || d->text[d->text_len] != 0 || strlen(d->text) != d->text_len) __builtin_trap();
    if (!valid_utf8((const unsigned char *)d->text, d->text_len) || !d->title) __builtin_trap();
    size_t prev = 0;
    for (size_t i = 0; i < d->n_blocks; i++) {
        const rag_block *b = &d->blocks[i];
        if (b->text_off < prev || b->text_off + b->text_len > d->text_len || b->text_len == 0) __builtin_trap();
        if (b->line_end < b->line_start) __builtin_trap();
        if (type == RAG_DOC_EML && b->page != 0) __builtin_trap();
        prev = b->text_off + b->text_len;
    }
    rag_chunk_params cp = rag_chunk_default_params();
    cp.max_tokens = 24;
    cp.overlap_tokens = 4;
    rag_chunk_list l;
    if (rag_chunk_doc(d, &cp, rag_count_words, NULL, &l, NULL, 0) != RAG_OK) __builtin_trap();
    for (size_t i = 0; i < l.n; i++) {
        const rag_chunk *c = &l.chunks[i];
        if (c->text_off + c->text_len > d->text_len || memcmp(c->text, d->text + c->text_off, c->text_len) != 0)
            __builtin_trap();
    }
    rag_chunk_list_free(&l);
    rag_doc_free(d);
    return 0;
}
