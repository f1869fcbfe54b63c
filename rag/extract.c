/* extract.c — document extraction entry points (file or memory -> rag_doc). */
#include "rag/ingest_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------- span map */
int rag_map_add(rag_map_builder *mb, const char *t, size_t tn, size_t on) {
    uint64_t tpos = mb->text.len;
    int rc = rag_buf_append(&mb->text, t, tn);
    if (rc) return rc;
    uint32_t mul = on == tn ? 1 : on == 2 * tn ? 2 : 0;
    bool extend = false;
    if (mb->n_runs) {
        const rag_span_run *last = &mb->runs[mb->n_runs - 1];
        extend = last->mul != 0 && last->mul == mul &&
                 last->orig_off + (tpos - last->text_off) * last->mul == mb->orig_pos;
    }
    if (!extend) {
        if (rag_array_grow(&mb->runs, &mb->cap_runs, mb->n_runs + 1, sizeof *mb->runs, 16)) return RAG_ERR_NOMEM;
        mb->runs[mb->n_runs++] = (rag_span_run){.text_off = tpos, .orig_off = mb->orig_pos, .mul = mul};
    }
    mb->orig_pos += on;
    return RAG_OK;
}

uint64_t rag_doc_orig_offset(const rag_doc *d, size_t t) {
    if (!d->n_runs) return t;
    /* last run with text_off <= t */
    size_t lo = 0, hi = d->n_runs;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (d->runs[mid].text_off <= t) lo = mid;
        else hi = mid;
    }
    const rag_span_run *r = &d->runs[lo];
    if (t < r->text_off) return r->orig_off;
    return r->orig_off + (t - r->text_off) * r->mul;
}

uint32_t rag_doc_line_at(const rag_doc *d, size_t t) {
    if (!d->n_lines) return 1;
    size_t lo = 0, hi = d->n_lines;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (d->line_starts[mid] <= t) lo = mid;
        else hi = mid;
    }
    return (uint32_t)(lo + 1);
}

int rag_doc_add_block(rag_doc *d, size_t *cap, size_t max_blocks, const rag_block *b) {
    if (d->n_blocks >= max_blocks) return RAG_ERR_LIMIT;
    if (rag_array_grow(&d->blocks, cap, d->n_blocks + 1, sizeof *d->blocks, 32)) return RAG_ERR_NOMEM;
    d->blocks[d->n_blocks++] = *b;
    return RAG_OK;
}

void rag_cite_tail(const char *type, int page, int l0, int l1, char *buf, size_t n) {
    if (!n) return;
    buf[0] = 0;
    if (!type) type = "";
    char lines[48] = "";
    if (l0 > 0 && l1 > l0) snprintf(lines, sizeof lines, "%d-%d", l0, l1);
    else if (l0 > 0) snprintf(lines, sizeof lines, "%d", l0);
    if (!strcmp(type, "docx") || !strcmp(type, "odt")) {
        if (lines[0]) snprintf(buf, n, "#para=%s", lines);
    } else if (!strcmp(type, "pptx") || !strcmp(type, "odp")) {
        if (page > 0) snprintf(buf, n, "#slide=%d", page);
    } else if (!strcmp(type, "xlsx") || !strcmp(type, "ods")) {
        if (page > 0 && lines[0]) snprintf(buf, n, "#sheet=%d,rows=%s", page, lines);
        else if (page > 0) snprintf(buf, n, "#sheet=%d", page);
    } else if (!strcmp(type, "epub")) {
        if (page > 0) snprintf(buf, n, "#chapter=%d", page);
    } else if (!strcmp(type, "eml") || !strcmp(type, "mbox")) {
        if (page > 0 && l0 > 0) snprintf(buf, n, "#msg=%d,att=%d", page, l0);
        else if (page > 0) snprintf(buf, n, "#msg=%d", page);
        else if (l0 > 0) snprintf(buf, n, "#att=%d", l0);
    } else if (page > 0) {
        snprintf(buf, n, "#page=%d", page);
    } else if (lines[0]) {
        snprintf(buf, n, ":%s", lines);
    }
}

/* ------------------------------------------------------------ entry points */
rag_extract_params rag_extract_default_params(void) {
    rag_extract_params p = {
        .max_text_bytes = 64u * 1024 * 1024,
        .max_depth = 256,
        .max_pages = 5000,
        .max_blocks = 4000000,
        .budget = rag_budget_default_params(),
        .max_attributes = 512,
        .max_stream_bytes = 16u << 20,
        .max_repeated_page_bytes = 1u << 20,
        .ocr_page_seconds = 30,
    };
    return p;
}

void rag_doc_free(rag_doc *d) {
    if (!d) return;
    free(d->name);
    free(d->text);
    free(d->blocks);
    free(d->title);
    free(d->runs);
    free(d->line_starts);
    free(d);
}

/* Sets the title when the extractor found none: the highest first heading,
 * else the first line of text. */
static int default_title(rag_doc *d) {
    if (d->title) return RAG_OK;
    const rag_block *best = NULL;
    for (size_t i = 0; i < d->n_blocks; i++) {
        const rag_block *b = &d->blocks[i];
        if (b->kind != RAG_BLOCK_HEADING) continue;
        if (!best || b->level < best->level) best = b;
        if (b->level == 1) break;
    }
    if (best) {
        d->title = strndup(d->text + best->text_off, best->text_len);
    } else if (d->n_blocks) {
        /* plain text: the first line, at most 120 bytes, cut at a character */
        const rag_block *b = &d->blocks[0];
        const char *t = d->text + b->text_off;
        size_t n = 0;
        while (n < b->text_len && t[n] != '\n') n++;
        if (n > 120) {
            n = 120;
            while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80) n--;
        }
        d->title = strndup(t, n);
    } else {
        d->title = strdup("");
    }
    return d->title ? RAG_OK : RAG_ERR_NOMEM;
}

/* Replaces bytes that are not valid UTF-8 with '?' in place (lengths and
 * offsets stay), so later stages can trust the text. */
static void utf8_sanitize(char *t, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t k = rag_utf8_seq_len((const unsigned char *)t + i, n - i);
        if (!k) { t[i++] = '?'; continue; }
        i += k;
    }
}

int rag_extract_memory(const char *name, const void *data, size_t len, rag_doc_type type,
                       const rag_extract_params *p, rag_doc **out, char *err, size_t errlen) {
    int rc = RAG_OK;
    rag_extract_params defaults = rag_extract_default_params();
    rag_doc *d = NULL;
    if (!out) return rag_ing_err(err, errlen, RAG_ERR_ARG, "rag_extract: no output");
    *out = NULL;
    if (!name) name = "(memory)";
    if (!data && len) return rag_ing_err(err, errlen, RAG_ERR_ARG, "%s: no data", name);
    if (!p) p = &defaults;
    if (type == RAG_DOC_UNKNOWN) type = rag_doc_type_from_path(name);
    if (type == RAG_DOC_UNKNOWN) type = RAG_DOC_TXT;
    if (!(d = calloc(1, sizeof *d))) return rag_ing_err(err, errlen, RAG_ERR_NOMEM, "%s: out of memory", name);
    d->type = type;
    if (!(d->name = strdup(name))) {
        free(d);
        return rag_ing_err(err, errlen, RAG_ERR_NOMEM, "%s: out of memory", name);
    }
    const unsigned char *u = data ? data : (const unsigned char *)"";
    rag_budget b;
    rag_budget_begin(&b, &p->budget, len, p->max_text_bytes);
    switch (type) {
    case RAG_DOC_TXT: rc = rag_extract_txt(name, u, len, p, &b, d, err, errlen); break;
    case RAG_DOC_MD: rc = rag_extract_md(name, u, len, p, &b, d, err, errlen); break;
    case RAG_DOC_HTML: rc = rag_extract_html(name, u, len, p, &b, d, err, errlen); break;
    case RAG_DOC_PDF: rc = rag_extract_pdf(name, u, len, p, &b, d, err, errlen); break;
    case RAG_DOC_DOCX: case RAG_DOC_XLSX: case RAG_DOC_PPTX: case RAG_DOC_ODT: case RAG_DOC_ODS:
    case RAG_DOC_ODP: case RAG_DOC_EPUB: rc = rag_extract_office(name, u, len, p, &b, d, err, errlen); break;
    case RAG_DOC_EML: case RAG_DOC_MBOX: rc = rag_extract_mail(name, u, len, p, &b, d, err, errlen); break;
    default: rc = rag_ing_err(err, errlen, RAG_ERR_UNSUPPORTED, "%s: unsupported document type", name);
    }
    /* the budget decides at the end too: a fast extractor with no
     * checkpoint left still answers for its text and time */
    if (rc == RAG_OK) rc = rag_budget_check_now(&b, d->text_len);
    if (b.over) rc = rag_ing_err(err, errlen, RAG_ERR_LIMIT, "%s: refused: %s", name, b.why);
    if (rc == RAG_OK && d->text && type != RAG_DOC_TXT && type != RAG_DOC_MD)
        utf8_sanitize(d->text, d->text_len);
    if (rc == RAG_OK && !d->text) {
        d->text = strdup("");
        if (!d->text) rc = RAG_ERR_NOMEM;
    }
    if (rc == RAG_OK) rc = default_title(d);
    if (rc == RAG_ERR_NOMEM) rag_ing_err(err, errlen, rc, "%s: out of memory", name);
    if (rc == RAG_ERR_LIMIT && err && !err[0])
        rag_ing_err(err, errlen, rc, "%s: extracted text exceeds the limits", name);
    if (rc != RAG_OK) {
        rag_doc_free(d);
        return rc;
    }
    *out = d;
    return RAG_OK;
}

int rag_extract_file(const char *path, rag_doc_type type, const rag_extract_params *p,
                     rag_doc **out, char *err, size_t errlen) {
    int rc = RAG_OK;
    char *buf = NULL;
    int fd = -1;
    if (!out) return rag_ing_err(err, errlen, RAG_ERR_ARG, "rag_extract: no output");
    *out = NULL;
    if (!path) return rag_ing_err(err, errlen, RAG_ERR_ARG, "rag_extract: no path");
    if (err && errlen) err[0] = 0;
    rag_extract_params defaults = rag_extract_default_params();
    if (!p) p = &defaults;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return rag_ing_err(err, errlen, RAG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) { rc = rag_ing_err(err, errlen, RAG_ERR_IO, "%s: %s", path, strerror(errno)); goto done; }
    if (!S_ISREG(st.st_mode)) { rc = rag_ing_err(err, errlen, RAG_ERR_IO, "%s: not a regular file", path); goto done; }
    /* The raw file may be larger than its text only by encoding overhead;
     * 4x the text limit bounds what is worth reading (PDF streams compress). */
    uint64_t max_raw = (uint64_t)p->max_text_bytes * 4;
    if ((uint64_t)st.st_size > max_raw) {
        rc = rag_ing_err(err, errlen, RAG_ERR_LIMIT, "%s: %llu bytes is over the extraction limit", path,
                         (unsigned long long)st.st_size);
        goto done;
    }
    size_t size = (size_t)st.st_size, got = 0;
    if (!(buf = malloc(size + 1))) { rc = rag_ing_err(err, errlen, RAG_ERR_NOMEM, "%s: out of memory", path); goto done; }
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) { rc = rag_ing_err(err, errlen, RAG_ERR_IO, "%s: read failed: %s", path, strerror(errno)); goto done; }
        if (k == 0) break;  /* the file shrank: extract what is there */
        got += (size_t)k;
    }
    buf[got] = 0;
    if (type == RAG_DOC_UNKNOWN) type = rag_doc_type_from_path(path);
    rc = rag_extract_memory(path, buf, got, type, p, out, err, errlen);
done:
    if (fd >= 0) close(fd);
    free(buf);
    return rc;
}
