/* test_rag_ocr.c — scanned PDFs: a page that is only an image (text drawn
 * into a bitmap with cairo, placed in a PDF: no text layer) is reported as
 * such without OCR and read by Tesseract with it; missing language data is
 * a clear per-file error. Skipped with a message where tesseract's English
 * data is not installed. */
#include "rag/rag.h"
#include "tests/test.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <ctype.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

static cairo_status_t to_buf(void *closure, const unsigned char *data, unsigned int len) {
    FILE *f = fopen(closure, "ab");
    if (!f) return CAIRO_STATUS_WRITE_ERROR;
    fwrite(data, 1, len, f);
    fclose(f);
    return CAIRO_STATUS_SUCCESS;
}

/* A one-page PDF whose page is a 300 dpi image of the lines. */
static char *scanned_pdf(const char **lines, int n, size_t *len) {
    int w = 2480, h = 3508;   /* A4 at 300 dpi */
    cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_t *cr = cairo_create(img);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, 60);
    for (int i = 0; i < n; i++) {
        cairo_move_to(cr, 200, 400 + i * 120);
        cairo_show_text(cr, lines[i]);
    }
    cairo_destroy(cr);
    char path[1024];
    snprintf(path, sizeof path, "%s/scan.pdf", test_tmpdir());
    remove(path);
    cairo_surface_t *pdf = cairo_pdf_surface_create_for_stream(to_buf, path, 595, 842);
    cr = cairo_create(pdf);
    cairo_scale(cr, 72.0 / 300, 72.0 / 300);
    cairo_set_source_surface(cr, img, 0, 0);
    cairo_paint(cr);
    cairo_show_page(cr);
    cairo_destroy(cr);
    cairo_surface_finish(pdf);
    cairo_surface_destroy(pdf);
    cairo_surface_destroy(img);
    char *b = test_read_file(path, len);
    REQUIRE(b && *len > 100, "the scanned PDF was written");
    return b;
}

static bool has_word(const char *text, const char *w) {
    size_t n = strlen(w);
    for (const char *p = text; *p; p++)
        if (strncasecmp(p, w, n) == 0) return true;
    return false;
}

TEST(scanned_page_is_reported_without_ocr_and_read_with_it) {
    const char *lines[] = {"Travel expenses are refunded", "within 30 days of the invoice.",
                           "Contact the finance office."};
    size_t len;
    char *pdf = scanned_pdf(lines, 3, &len);
    rag_doc *d = NULL;
    char err[512] = "";
    /* without OCR: no text, and the page counted as having no text layer */
    REQUIRE(rag_extract_memory("scan.pdf", pdf, len, RAG_DOC_PDF, NULL, &d, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_EQ_INT(d->n_blocks, 0);
    CHECK_EQ_INT(d->n_pages, 1);
    CHECK_EQ_INT(d->n_pages_no_text, 1);
    CHECK_EQ_INT(d->n_pages_ocr, 0);
    rag_doc_free(d);
    /* with OCR */
    rag_extract_params p = rag_extract_default_params();
    p.ocr = true;
    p.ocr_langs = "eng";
    d = NULL;
    int rc = rag_extract_memory("scan.pdf", pdf, len, RAG_DOC_PDF, &p, &d, err, sizeof err);
    if (rc == RAG_ERR_UNSUPPORTED && strstr(err, "language data")) {
        free(pdf);
        SKIP("tesseract's English language data is not installed (tesseract-ocr-eng): %s", err);
    }
    REQUIRE(rc == RAG_OK && d, "%s", err);
    CHECK_EQ_INT(d->n_pages_ocr, 1);
    CHECK_EQ_INT(d->n_pages_no_text, 0);
    REQUIRE(d->n_blocks >= 1, "OCR found text");
    CHECK_EQ_INT(d->blocks[0].page, 1);
    const char *words[] = {"Travel", "expenses", "refunded", "within", "30", "days", "invoice", "finance", "office"};
    int found = 0;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) found += has_word(d->text, words[i]);
    CHECK(found == (int)(sizeof words / sizeof words[0]), "OCR read %d of 9 words: \"%s\"", found, d->text);
    rag_doc_free(d);
    /* language data that does not exist: a clear error for the file */
    p.ocr_langs = "xx_nonexistent";
    d = NULL;
    rc = rag_extract_memory("scan.pdf", pdf, len, RAG_DOC_PDF, &p, &d, err, sizeof err);
    CHECK(rc == RAG_ERR_UNSUPPORTED && !d && strstr(err, "scan.pdf") && strstr(err, "xx_nonexistent"), "rc %d: %s",
          rc, err);
    rag_doc_free(d);
    free(pdf);
}

TEST_MAIN(RUN(scanned_page_is_reported_without_ocr_and_read_with_it))
