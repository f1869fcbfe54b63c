/* fuzz_extract_pdf.c — libFuzzer target for the PDF extractor (files are
 * outside bytes): the budget's pre-scan of compressed streams, the page
 * loop with its repeat and text checks, and poppler behind them. Inputs
 * that do not start with "%PDF-" get it prepended, so mutations reach the
 * stream scanner. A failure leaves no document and names the file. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "rag/rag.h"

/* Appends "N 0 obj\n" + body + "\nendobj\n" to out (cap bytes), records
 * its offset; the body may be binary (len bytes). */
static size_t put_obj(unsigned char *out, size_t at, size_t cap, size_t *offs, int n, const void *body, size_t len) {
    offs[n - 1] = at;
    at += (size_t)snprintf((char *)out + at, cap - at, "%d 0 obj\n", n);
    if (at + len + 16 > cap) return cap;
    memcpy(out + at, body, len);
    at += len;
    return at + (size_t)snprintf((char *)out + at, cap - at, "\nendobj\n");
}

/* A Flate stream object body of text[0..n) with extra dictionary keys. */
static size_t flate_obj(unsigned char *out, size_t cap, const char *extra, const char *text, size_t n) {
    uLongf zl = compressBound(n);
    unsigned char *z = malloc(zl);
    if (!z || compress2(z, &zl, (const unsigned char *)text, n, 9) != Z_OK) { free(z); return 0; }
    size_t at = (size_t)snprintf((char *)out, cap, "<< %s /Length %lu /Filter /FlateDecode >>\nstream\n", extra,
                                 (unsigned long)zl);
    if (at + zl + 16 > cap) { free(z); return 0; }
    memcpy(out + at, z, zl);
    at += zl;
    free(z);
    return at + (size_t)snprintf((char *)out + at, cap - at, "\nendstream");
}

/* Writes seed k into dir: pages sharing a content stream, an image stream
 * the pre-scan skips, and a content stream over the fuzz run's 1 MB cap. */
static int write_seed(const char *dir, int k) {
    size_t cap = 1 << 16, at = 0, offs[8];
    unsigned char *out = malloc(cap), *body = malloc(cap);
    if (!out || !body) { free(out); free(body); return 1; }
    at += (size_t)snprintf((char *)out, cap, "%%PDF-1.4\n");
    static const char cat[] = "<< /Type /Catalog /Pages 2 0 R >>";
    static const char pages[] = "<< /Type /Pages /Kids [5 0 R 6 0 R] /Count 2 >>";
    static const char font[] = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>";
    static const char page[] = "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                               "/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>";
    at = put_obj(out, at, cap, offs, 1, cat, sizeof cat - 1);
    at = put_obj(out, at, cap, offs, 2, pages, sizeof pages - 1);
    at = put_obj(out, at, cap, offs, 3, font, sizeof font - 1);
    size_t bl;
    if (k == 2) {
        size_t n = 2u << 20;
        char *big = malloc(n);
        if (!big) { free(out); free(body); return 1; }
        for (size_t i = 0; i < n; i++) big[i] = "BT (A) Tj ET\n"[i % 13];
        bl = flate_obj(body, cap, "", big, n);
        free(big);
    } else {
        static const char text[] = "BT /F1 12 Tf 72 700 Td (Hello fuzz page) Tj ET\n";
        bl = flate_obj(body, cap, "", text, sizeof text - 1);
    }
    at = put_obj(out, at, cap, offs, 4, body, bl);
    at = put_obj(out, at, cap, offs, 5, page, sizeof page - 1);
    if (k == 1) {
        char zeros[4096] = {0};
        bl = flate_obj(body, cap, "/Type /XObject /Subtype /Image /Width 64 /Height 64 /BitsPerComponent 8 "
                                  "/ColorSpace /DeviceGray", zeros, sizeof zeros);
        at = put_obj(out, at, cap, offs, 6, body, bl);
    } else {
        at = put_obj(out, at, cap, offs, 6, page, sizeof page - 1);
    }
    size_t x = at;
    at += (size_t)snprintf((char *)out + at, cap - at, "xref\n0 7\n0000000000 65535 f \n");
    for (int i = 0; i < 6; i++) at += (size_t)snprintf((char *)out + at, cap - at, "%010zu 00000 n \n", offs[i]);
    at += (size_t)snprintf((char *)out + at, cap - at, "trailer\n<< /Size 7 /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n", x);
    char path[4096];
    snprintf(path, sizeof path, "%s/seed-%d.pdf", dir, k);
    FILE *f = fopen(path, "wb");
    int rc = !f || fwrite(out, 1, at, f) != at;
    if (f) fclose(f);
    free(out);
    free(body);
    return rc;
}

/* `fuzz_extract_pdf -mrag_seeds=DIR` writes the seeds and exits. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    for (int i = 1; i < *argc; i++)
        if (strncmp((*argv)[i], "-mrag_seeds=", 12) == 0) {
            int rc = 0;
            for (int k = 0; k < 3; k++) rc |= write_seed((*argv)[i] + 12, k);
            exit(rc);
        }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size + 8);
    if (!buf) return 0;
    size_t n = 0;
    if (size < 5 || memcmp(data, "%PDF-", 5) != 0) {
        memcpy(buf, "%PDF-1.4\n", 9);
        n = 9;
    }
    memcpy(buf + n, data, size);
    n += size;
    rag_extract_params p = rag_extract_default_params();
    p.max_text_bytes = 1 << 20;
    p.max_pages = 50;
    p.max_stream_bytes = 1 << 20;
    p.max_repeated_page_bytes = 64 << 10;
    p.budget.cpu_seconds = 2;
    rag_doc *d = NULL;
    char err[512];
    int rc = rag_extract_memory("fuzz.pdf", buf, n, RAG_DOC_PDF, &p, &d, err, sizeof err);
    if (rc == RAG_OK) {
        if (!d || !d->text || strlen(d->text) != d->text_len || d->text_len > p.max_text_bytes) __builtin_trap();
        for (size_t i = 0; i < d->n_blocks; i++)
            if (d->blocks[i].text_off + d->blocks[i].text_len > d->text_len || d->blocks[i].page < 1 ||
                d->blocks[i].page > d->n_pages)
                __builtin_trap();
        rag_doc_free(d);
    } else if (d || !strstr(err, "fuzz.pdf")) {
        __builtin_trap();
    }
    free(buf);
    return 0;
}
