/* extract_pdf.c — PDF to text with poppler-glib: one block per paragraph of
 * each page, page numbers kept; damaged and encrypted files are clear errors.
 * Runs under the file's budget: a pre-scan bounds what poppler is given
 * (compressed streams may not inflate past max_stream_bytes), and each page
 * is a checkpoint. */
#define _GNU_SOURCE /* memmem */
#include "rag/ingest_internal.h"

#include <limits.h>
#include <cairo.h>
#include <poppler.h>
#include <tesseract/capi.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* True when the dictionary text d[0..n) (the bytes between "obj" and
 * "stream") holds the name key: "/Image", "/Length1", ... A name must end
 * there: "/Image" is not "/ImageMask". */
static bool dict_has(const char *d, size_t n, const char *key) {
    size_t k = strlen(key);
    for (const char *p = d; (p = memmem(p, n - (size_t)(p - d), key, k)) != NULL; p += k) {
        char after = p + k < d + n ? p[k] : ' ';
        if (!((after >= 'A' && after <= 'Z') || (after >= 'a' && after <= 'z') || (after >= '0' && after <= '9')))
            return true;
    }
    return false;
}

/* Inflates a zlib stream at s[0..n), counting the output; stops past cap.
 * Returns the bytes produced (cap + 1 when over). */
static size_t inflated_size(const unsigned char *s, size_t n, size_t cap) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK) return 0;
    unsigned char out[65536];
    size_t total = 0;
    z.next_in = (unsigned char *)s;
    z.avail_in = n > UINT_MAX ? UINT_MAX : (unsigned)n;
    for (;;) {
        z.next_out = out;
        z.avail_out = sizeof out;
        int zr = inflate(&z, Z_NO_FLUSH);
        total += sizeof out - z.avail_out;
        if (total > cap) { total = cap + 1; break; }
        if (zr != Z_OK) break;          /* end, damage (poppler decides), or no progress */
        if (z.avail_in == 0 && z.avail_out != 0) break;
    }
    inflateEnd(&z);
    return total;
}

/* The pre-scan: poppler parses a page's content stream in one call that
 * cannot be interrupted, and keeps every glyph of it in memory (about 65
 * bytes per character shown), so a 70 KB file whose one content stream
 * inflates to 20 MB costs seconds and 1.3 GB. Every Flate stream that
 * poppler could parse as page content (images, font programs, attachments
 * and metadata excepted) must inflate to at most max_stream bytes. Linear:
 * each stream is inflated once, at most max_stream + 64 KB bytes. */
static int prescan_streams(const unsigned char *data, size_t len, size_t max_stream, rag_budget *b) {
    if (!max_stream) return RAG_OK;
    const char *t = (const char *)data;
    size_t at = 0;
    while (at < len) {
        const char *kw = memmem(t + at, len - at, "stream", 6);
        if (!kw) break;
        size_t k = (size_t)(kw - t);
        at = k + 6;
        /* "endstream" is not a start; the keyword is followed by CRLF or LF */
        if (k >= 3 && memcmp(kw - 3, "end", 3) == 0) continue;
        size_t body = k + 6;
        if (body < len && data[body] == '\r') body++;
        if (body >= len || data[body] != '\n') continue;
        body++;
        /* the dictionary: back to the "obj" that opens this object (4 KB at most) */
        size_t lo = k > 4096 ? k - 4096 : 0;
        const char *obj = NULL;
        for (const char *q = kw - 3; q >= t + lo; q--)
            if (memcmp(q, "obj", 3) == 0) { obj = q; break; }
        if (!obj) continue;
        const char *dict = obj + 3;
        size_t dn = (size_t)(kw - dict);
        if (!dict_has(dict, dn, "/FlateDecode")) continue;
        if (dict_has(dict, dn, "/Image") || dict_has(dict, dn, "/Length1") || dict_has(dict, dn, "/Length2") ||
            dict_has(dict, dn, "/EmbeddedFile") || dict_has(dict, dn, "/Metadata") ||
            dict_has(dict, dn, "/Type1C") || dict_has(dict, dn, "/CIDFontType0C") || dict_has(dict, dn, "/OpenType"))
            continue;
        size_t got = inflated_size(data + body, len - body, max_stream);
        if (got > max_stream)
            return rag_budget_refuse(b, "a compressed PDF stream inflates to more than %zu bytes (at byte %zu; "
                                        "the limit keeps one page from taking minutes and gigabytes)",
                                     max_stream, k);
        if (rag_budget_check(b, 0) != RAG_OK) return RAG_ERR_LIMIT;
    }
    return RAG_OK;
}

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

/* True when text t[0..n) was seen before (by a 64-bit hash and its length,
 * in the open-addressing table seen[cap], cap a power of two, at most half
 * full); records it otherwise. */
static bool text_seen(uint64_t *seen, size_t cap, const char *t, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)t[i]) * 0x100000001b3ull;
    h ^= (uint64_t)n * 0x9E3779B97F4A7C15ull;
    if (!h) h = 1;                  /* 0 marks an empty slot */
    for (size_t j = (size_t)(h ^ (h >> 31)) & (cap - 1);; j = (j + 1) & (cap - 1)) {
        if (seen[j] == h) return true;
        if (!seen[j]) { seen[j] = h; return false; }
    }
}

/* True when t holds nothing but whitespace. */
static bool blank_text(const char *t) {
    for (; t && *t; t++)
        if (!(*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r' || *t == '\f')) return false;
    return true;
}

/* OCR of one page: rendered at 300 dpi (at most 5000 pixels a side) into a
 * white image, read by Tesseract. *api is created on the first call (the
 * languages' data loaded once per file). Returns RAG_OK with *text (free
 * with TessDeleteText), or an error with err filled. */
static int ocr_page(const char *name, PopplerPage *page, int pno, const char *langs, TessBaseAPI **api,
                    char **text, char *err, size_t errlen) {
    *text = NULL;
    if (!*api) {
        *api = TessBaseAPICreate();
        if (!*api) return rag_ing_err(err, errlen, RAG_ERR_NOMEM, "%s: out of memory", name);
        /* Tesseract writes its diagnostics to stderr unless told otherwise:
         * a library must not print */
        if (TessBaseAPIInit3(*api, NULL, langs) != 0)
            return rag_ing_err(err, errlen, RAG_ERR_UNSUPPORTED,
                               "%s: OCR: Tesseract has no language data for '%s' (Debian: tesseract-ocr-deu, "
                               "tesseract-ocr-eng, ...)", name, langs);
        TessBaseAPISetVariable(*api, "debug_file", "/dev/null");
        TessBaseAPISetPageSegMode(*api, PSM_AUTO);
    }
    double pw = 0, ph = 0;
    poppler_page_get_size(page, &pw, &ph);
    double scale = 300.0 / 72.0;
    double big = pw > ph ? pw : ph;
    if (big * scale > 5000) scale = 5000 / big;
    int w = (int)(pw * scale), h = (int)(ph * scale);
    if (w < 8 || h < 8) return RAG_OK;      /* nothing to read */
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return rag_ing_err(err, errlen, RAG_ERR_NOMEM, "%s: page %d: cannot render for OCR", name, pno);
    }
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_scale(cr, scale, scale);
    poppler_page_render_for_printing(page, cr);
    cairo_destroy(cr);
    cairo_surface_flush(s);
    TessBaseAPISetImage(*api, cairo_image_surface_get_data(s), w, h, 4, cairo_image_surface_get_stride(s));
    TessBaseAPISetSourceResolution(*api, (int)(72 * scale + 0.5));
    *text = TessBaseAPIGetUTF8Text(*api);
    TessBaseAPIClear(*api);
    cairo_surface_destroy(s);
    return RAG_OK;
}

int rag_extract_pdf(const char *name, const unsigned char *data, size_t len,
                    const rag_extract_params *p, rag_budget *bg, rag_doc *d, char *err, size_t errlen) {
    int rc = RAG_OK;
    GError *gerr = NULL;
    GBytes *bytes = NULL;
    PopplerDocument *doc = NULL;
    uint64_t *seen = NULL;
    TessBaseAPI *tess = NULL;
    rag_buf out = {0};
    size_t cap = 0;
    out.limit = p->max_text_bytes;
    if (len < 5 || memcmp(data, "%PDF-", 5) != 0)
        return rag_ing_err(err, errlen, RAG_ERR_FORMAT, "%s: not a PDF (no %%PDF- header)", name);
    if ((rc = prescan_streams(data, len, p->max_stream_bytes, bg)) != RAG_OK) return rc;
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
    /* pages whose text repeats an earlier page's, by hash: a PDF whose
     * thousands of pages draw one shared content stream multiplies a small
     * file into megabytes of the same text */
    size_t seen_cap = 64;
    while (seen_cap < 2 * (size_t)np) seen_cap *= 2;
    if (!(seen = calloc(seen_cap, sizeof *seen))) { rc = RAG_ERR_NOMEM; goto done; }
    size_t repeated = 0;
    for (int i = 0; i < np && rc == RAG_OK; i++) {
        PopplerPage *page = poppler_document_get_page(doc, i);
        if (!page) continue;
        char *t = poppler_page_get_text(page);
        if (blank_text(t) && p->ocr) {
            /* a scanned page: its image through OCR, with more CPU time
             * for the file (OCR costs seconds a page) */
            if (bg) bg->p.cpu_seconds += bg->p.cpu_seconds > 0 ? p->ocr_page_seconds : 0;
            char *ot = NULL;
            rc = ocr_page(name, page, i + 1, p->ocr_langs && *p->ocr_langs ? p->ocr_langs : "deu+eng", &tess, &ot,
                          err, errlen);
            if (rc == RAG_OK) {
                d->n_pages_ocr++;
                if (ot) rc = add_page(d, &cap, p, &out, ot, strlen(ot), (uint32_t)i + 1);
            }
            if (ot) TessDeleteText(ot);
            g_free(t);
            t = NULL;
        } else if (blank_text(t)) {
            d->n_pages_no_text++;
        }
        if (t) {
            size_t tn = strlen(t);
            if (tn && text_seen(seen, seen_cap, t, tn)) repeated += tn;
            if (p->max_repeated_page_bytes && repeated > p->max_repeated_page_bytes)
                rc = rag_budget_refuse(bg, "pages repeat the text of earlier pages (%zu bytes of repeated text by page "
                                           "%d of %d; a content stream shared by many pages?)",
                                       repeated, i + 1, np);
            else
                rc = add_page(d, &cap, p, &out, t, tn, (uint32_t)i + 1);
            g_free(t);
        }
        g_object_unref(page);
        /* a checkpoint per page: pages that share one content stream, or
         * thousands of pages, stop at the budget */
        if (rc == RAG_OK) rc = rag_budget_check_now(bg, out.len);
    }
    if (rc == RAG_ERR_LIMIT && bg && bg->over) goto done;
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
    if (tess) TessBaseAPIDelete(tess);
    free(seen);
    rag_buf_release(&out);
    if (doc) g_object_unref(doc);
    if (bytes) g_bytes_unref(bytes);
    if (gerr) g_error_free(gerr);
    return rc;
}
