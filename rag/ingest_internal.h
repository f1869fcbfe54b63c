/* ingest_internal.h — what the ingestion files of rag/ share (walk,
 * extract_*, chunk, wiki): the text map builder, the text decoder, the
 * format extractors; the general helpers are rag/util_internal.h's. */
#ifndef MRAG_RAG_INGEST_INTERNAL_H
#define MRAG_RAG_INGEST_INTERNAL_H

#include "rag/rag.h"
#include "rag/util_internal.h"

#include <stdarg.h>
#include <stdio.h>

/* ------------------------------------------------------------ budgets
 * The meter of one file's extraction (rag/budget.c). Every extractor —
 * and every one added later (office formats, OCR) — works like this:
 *
 *   rag_extract_memory calls rag_budget_begin with the file's size and
 *   hands the meter to the extractor;
 *   the extractor calls rag_budget_check(b, text_bytes_so_far) at
 *   checkpoints — per block, page, parser event — so that no more than a
 *   few milliseconds of work pass between two (the call is cheap: it reads
 *   the CPU clock every 32nd time, and compares the text size every time);
 *   a step that cannot be interrupted (one call into a library) must have
 *   its input bounded first by a linear pre-scan (HTML: attributes per
 *   element; PDF: inflated size of each compressed stream), and refuses
 *   with rag_budget_refuse when the pre-scan finds too much;
 *   on RAG_ERR_LIMIT it stops at once, frees what it built and returns
 *   RAG_ERR_LIMIT; rag_extract_memory turns b->why into the file's reason.
 * CPU time is the extracting thread's (CLOCK_THREAD_CPUTIME_ID), so a busy
 * machine does not make a file fail. */
typedef struct {
    rag_budget_params p;
    uint64_t input_bytes;
    size_t max_text;            /* the text budget: the absolute limit or the ratio's */
    bool ratio_bound;           /* max_text comes from the ratio */
    double cpu_start;           /* thread CPU seconds at rag_budget_begin */
    unsigned ticks;
    bool over;                  /* a check failed: every later check fails */
    char why[256];              /* the reason, when over */
} rag_budget;

void rag_budget_begin(rag_budget *b, const rag_budget_params *p, uint64_t input_bytes, size_t max_text_bytes);
/* RAG_OK, or RAG_ERR_LIMIT (b->why set) when text_bytes is over the text
 * budget or the CPU time is (read every 32nd call). NULL b: RAG_OK. */
int rag_budget_check(rag_budget *b, size_t text_bytes);
/* The same, reading the CPU clock now. */
int rag_budget_check_now(rag_budget *b, size_t text_bytes);
/* Marks the budget spent with a reason (a pre-scan's finding); returns
 * RAG_ERR_LIMIT. */
int rag_budget_refuse(rag_budget *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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
 * UTF-8 with BOM, UTF-16 or UTF-32 with BOM, Windows-1252), turns CRLF and lone CR into
 * LF and control bytes into spaces, and fills d->text, runs, line_starts,
 * encoding and exact_spans. */
int rag_text_decode(const char *name, const unsigned char *data, size_t len,
                    const rag_extract_params *p, rag_doc *d, char *err, size_t errlen);

/* Appends a block to d (grows d->blocks); RAG_ERR_LIMIT past max_blocks. */
int rag_doc_add_block(rag_doc *d, size_t *cap, size_t max_blocks, const rag_block *b);

/* Format extractors (d has type set and zeroed fields on entry; b is the
 * file's budget meter, see above). */
int rag_extract_txt(const char *name, const unsigned char *data, size_t len,
                    const rag_extract_params *p, rag_budget *b, rag_doc *d, char *err, size_t errlen);
int rag_extract_md(const char *name, const unsigned char *data, size_t len,
                   const rag_extract_params *p, rag_budget *b, rag_doc *d, char *err, size_t errlen);
int rag_extract_html(const char *name, const unsigned char *data, size_t len,
                     const rag_extract_params *p, rag_budget *b, rag_doc *d, char *err, size_t errlen);
int rag_extract_pdf(const char *name, const unsigned char *data, size_t len,
                    const rag_extract_params *p, rag_budget *b, rag_doc *d, char *err, size_t errlen);

/* Office documents in zip containers (docx, xlsx, pptx, odt, ods, odp,
 * epub), by d->type: rag/extract_office.c. */
int rag_extract_office(const char *name, const unsigned char *data, size_t len,
                       const rag_extract_params *p, rag_budget *b, rag_doc *d, char *err, size_t errlen);

/* E-mail: one message (eml) or a mailbox (mbox), by d->type:
 * rag/extract_mail.c. */
int rag_extract_mail(const char *name, const unsigned char *data, size_t len,
                     const rag_extract_params *p, rag_budget *b, rag_doc *d, char *err, size_t errlen);

/* True when the first bytes look like binary (NUL bytes, or more than 10%
 * control bytes other than tab/CR/LF/FF/ESC). UTF-16 and UTF-32 BOMs count
 * as text. */
bool rag_sniff_binary(const unsigned char *s, size_t n);

#endif
