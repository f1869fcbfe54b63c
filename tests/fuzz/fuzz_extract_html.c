/* fuzz_extract_html.c — libFuzzer target for the HTML extractor (pages are
 * outside bytes): extract, check the document's invariants, then chunk it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rag/rag.h"

/* Blocks inside the text, in order; the text NUL-terminated and UTF-8 length
 * consistent; chunks are slices of the text. Any violation traps. */
static void check_doc(const rag_doc *d) {
    if (!d->text || d->text[d->text_len] != 0 || strlen(d->text) != d->text_len) __builtin_trap();
    size_t prev = 0;
    for (size_t i = 0; i < d->n_blocks; i++) {
        const rag_block *b = &d->blocks[i];
        if (b->text_off < prev || b->text_off + b->text_len > d->text_len || b->text_len == 0) __builtin_trap();
        if (b->line_end < b->line_start || b->byte_end < b->byte_start) __builtin_trap();
        prev = b->text_off + b->text_len;
    }
    rag_chunk_params p = rag_chunk_default_params();
    p.max_tokens = 24;
    p.overlap_tokens = 4;
    rag_chunk_list l;
    if (rag_chunk_doc(d, &p, rag_count_words, NULL, &l, NULL, 0) != RAG_OK) __builtin_trap();
    for (size_t i = 0; i < l.n; i++) {
        const rag_chunk *c = &l.chunks[i];
        if (c->text_off + c->text_len > d->text_len || memcmp(c->text, d->text + c->text_off, c->text_len) != 0)
            __builtin_trap();
        if (rag_count_words(NULL, c->embed_text, c->embed_len) > p.max_tokens) __builtin_trap();
    }
    rag_chunk_list_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rag_extract_params p = rag_extract_default_params();
    p.max_text_bytes = 1 << 20;
    p.max_depth = 64;
    rag_doc *d = NULL;
    char err[256];
    if (rag_extract_memory("fuzz.html", data, size, RAG_DOC_HTML, &p, &d, err, sizeof err) == RAG_OK) {
        check_doc(d);
        rag_doc_free(d);
    } else if (d || !strstr(err, "fuzz.html")) {
        __builtin_trap();   /* a failure leaves no document and names the file */
    }
    return 0;
}
