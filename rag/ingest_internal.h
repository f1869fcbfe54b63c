/* ingest_internal.h — what the ingestion files of rag/ share (walk,
 * extract_*, chunk, wiki): the text map builder, the text decoder, the
 * format extractors; the general helpers are rag/util_internal.h's. */
#ifndef MRAG_RAG_INGEST_INTERNAL_H
#define MRAG_RAG_INGEST_INTERNAL_H

#include "rag/rag.h"
#include "rag/util_internal.h"

#include <stdarg.h>
#include <stdio.h>

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
