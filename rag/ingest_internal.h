/* ingest_internal.h — helpers shared by the ingestion files of rag/ (walk,
 * extract_*, chunk): error text, growable buffers, UTF-8 checks. */
#ifndef MRAG_RAG_INGEST_INTERNAL_H
#define MRAG_RAG_INGEST_INTERNAL_H

#include "rag/rag.h"

#include <stdarg.h>
#include <stdio.h>

/* Formats an error into err (may be NULL) and returns rc. */
int rag_ing_err(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A growable byte buffer; NUL-terminated after every append. */
typedef struct {
    char *data;
    size_t len, cap;
    size_t limit;       /* appends past this fail with RAG_ERR_LIMIT; 0 = none */
} rag_buf;

int rag_buf_reserve(rag_buf *b, size_t extra);
int rag_buf_append(rag_buf *b, const char *s, size_t n);
int rag_buf_putc(rag_buf *b, char c);
void rag_buf_release(rag_buf *b);

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 when invalid
 * (overlongs, surrogates and code points past U+10FFFF are invalid). */
size_t rag_utf8_seq_len(const unsigned char *s, size_t n);
/* True when all n bytes are valid UTF-8. */
bool rag_utf8_valid(const unsigned char *s, size_t n);
/* Encodes code point cp (< 0x110000, not a surrogate) into out; returns 1..4. */
size_t rag_utf8_encode(uint32_t cp, char out[4]);

/* Builds doc->text and doc->runs for a converted text file. */
typedef struct {
    rag_buf text;
    rag_span_run *runs;
    size_t n_runs, cap_runs;
    uint64_t orig_pos;      /* original offset of the next unit */
} rag_map_builder;

/* Appends a unit: text bytes t[0..tn) standing for on original bytes. */
int rag_map_add(rag_map_builder *mb, const char *t, size_t tn, size_t on);

/* Text-file core shared by the txt and md extractors: decodes data (UTF-8,
 * UTF-8 with BOM, UTF-16 with BOM, Windows-1252), turns CRLF and lone CR into
 * LF and control bytes into spaces, and fills d->text, runs, line_starts,
 * encoding and exact_spans. */
int rag_text_decode(const char *name, const unsigned char *data, size_t len,
                    const rag_extract_params *p, rag_doc *d, char *err, size_t errlen);

/* Appends a block to d (grows d->blocks); RAG_ERR_LIMIT past max_blocks. */
int rag_doc_add_block(rag_doc *d, size_t *cap, size_t max_blocks, const rag_block *b);

/* Format extractors (d has type set and zeroed fields on entry). */
int rag_extract_txt(const char *name, const unsigned char *data, size_t len,
                    const rag_extract_params *p, rag_doc *d, char *err, size_t errlen);
int rag_extract_md(const char *name, const unsigned char *data, size_t len,
                   const rag_extract_params *p, rag_doc *d, char *err, size_t errlen);
int rag_extract_html(const char *name, const unsigned char *data, size_t len,
                     const rag_extract_params *p, rag_doc *d, char *err, size_t errlen);
int rag_extract_pdf(const char *name, const unsigned char *data, size_t len,
                    const rag_extract_params *p, rag_doc *d, char *err, size_t errlen);

/* True when the first bytes look like binary (NUL bytes, or more than 10%
 * control bytes other than tab/CR/LF/FF/ESC). UTF-16 BOMs count as text. */
bool rag_sniff_binary(const unsigned char *s, size_t n);

#endif
