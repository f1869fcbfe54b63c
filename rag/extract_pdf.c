/* extract_pdf.c — PDF to text with poppler-glib: one block per paragraph of
 * each page, page numbers kept; damaged and encrypted files are clear errors. */
#include "rag/ingest_internal.h"

#include <poppler.h>
#include <stdlib.h>
#include <string.h>

/* Appends one page's text as paragraph blocks (split at blank lines);
 * control bytes become spaces, trailing spaces of lines go. */
static int add_page(rag_doc *d, size_t *cap, const rag_extract_params *p, rag_buf *out,
                    const char *t, size_t n, uint32_t page) {
    int rc = RAG_OK;
    size_t i = 0;
    while (i < n && rc == RAG_OK) {
        /* skip blank lines */
        size_t ls = i;
        while (i < n) {
            size_t j = i;
            while (j < n && (t[j] == ' ' || t[j] == '\t' || t[j] == '\r' || t[j] == '\f')) j++;
            if (j < n && t[j] == '\n') { i = j + 1; continue; }
            i = j;
            break;
        }
        (void)ls;
        if (i >= n) break;
        /* a paragraph: lines up to a blank line */
        if (out->len && (rc = rag_buf_append(out, "\n\n", 2))) break;
        size_t off = out->len;
        bool first = true;
        while (i < n && rc == RAG_OK) {
            size_t e = i;
            while (e < n && t[e] != '\n') e++;
            size_t a = i, b = e;
            while (a < b && (t[a] == ' ' || t[a] == '\t' || t[a] == '\r' || t[a] == '\f')) a++;
            while (b > a && (t[b - 1] == ' ' || t[b - 1] == '\t' || t[b - 1] == '\r' || t[b - 1] == '\f')) b--;
            if (a == b) { i = e < n ? e + 1 : e; break; }   /* blank line ends the paragraph */
            if (!first) rc = rag_buf_putc(out, '\n');
            for (size_t k = a; k < b && rc == RAG_OK; k++) {
                unsigned char c = (unsigned char)t[k];
                rc = rag_buf_putc(out, c < 0x20 || c == 0x7F ? ' ' : (char)c);
            }
            first = false;
            i = e < n ? e + 1 : e;
        }
        if (rc) break;
        rag_block b = {.kind = RAG_BLOCK_PARAGRAPH, .text_off = off, .text_len = out->len - off, .page = page};
        rc = rag_doc_add_block(d, cap, p->max_blocks, &b);
    }
    return rc;
}

int rag_extract_pdf(const char *name, const unsigned char *data, size_t len,
                    const rag_extract_params *p, rag_doc *d, char *err, size_t errlen) {
    int rc = RAG_OK;
    GError *gerr = NULL;
    GBytes *bytes = NULL;
    PopplerDocument *doc = NULL;
    rag_buf out = {0};
    size_t cap = 0;
    out.limit = p->max_text_bytes;
    if (len < 5 || memcmp(data, "%PDF-", 5) != 0)
        return rag_ing_err(err, errlen, RAG_ERR_FORMAT, "%s: not a PDF (no %%PDF- header)", name);
    bytes = g_bytes_new(data, len);
    doc = poppler_document_new_from_bytes(bytes, NULL, &gerr);
    if (!doc) {
        bool enc = gerr && gerr->domain == POPPLER_ERROR && gerr->code == POPPLER_ERROR_ENCRYPTED;
        rc = rag_ing_err(err, errlen, enc ? RAG_ERR_UNSUPPORTED : RAG_ERR_FORMAT,
                         enc ? "%s: the PDF is encrypted (password protected): %s"
                             : "%s: damaged or unreadable PDF: %s",
                         name, gerr && gerr->message ? gerr->message : "poppler gave no reason");
        goto done;
    }
    int np = poppler_document_get_n_pages(doc);
    if (np < 0 || (uint32_t)np > p->max_pages) {
        rc = rag_ing_err(err, errlen, RAG_ERR_LIMIT, "%s: %d pages, the limit is %u", name, np, p->max_pages);
        goto done;
    }
    for (int i = 0; i < np && rc == RAG_OK; i++) {
        PopplerPage *page = poppler_document_get_page(doc, i);
        if (!page) continue;
        char *t = poppler_page_get_text(page);
        if (t) {
            size_t tn = strlen(t);
            rc = add_page(d, &cap, p, &out, t, tn, (uint32_t)i + 1);
            g_free(t);
        }
        g_object_unref(page);
    }
    if (rc == RAG_ERR_LIMIT) {
        rag_ing_err(err, errlen, rc, "%s: extracted text exceeds the limits", name);
        goto done;
    }
    if (rc) goto done;
    if (!out.data && (rc = rag_buf_append(&out, "", 0))) goto done;
    d->n_pages = (uint32_t)np;
    char *title = poppler_document_get_title(doc);
    if (title) {
        d->title = strdup(title);
        g_free(title);
        if (!d->title) { rc = RAG_ERR_NOMEM; goto done; }
    }
    d->text = out.data;
    d->text_len = out.len;
    out.data = NULL;
    snprintf(d->encoding, sizeof d->encoding, "PDF");
done:
    rag_buf_release(&out);
    if (doc) g_object_unref(doc);
    if (bytes) g_bytes_unref(bytes);
    if (gerr) g_error_free(gerr);
    return rc;
}
