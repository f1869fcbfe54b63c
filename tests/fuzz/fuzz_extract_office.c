/* fuzz_extract_office.c — libFuzzer target for the office extractors
 * (docx, xlsx, pptx, odt, ods, odp, epub: zip containers of XML parts,
 * outside bytes). Mutated zip bytes rarely reach the XML walkers, so an
 * input is usually a list of parts that the target zips itself:
 *
 *   byte 0      the document type (mod 7)
 *   then        "@@part/name\n" + bytes of the part, repeated
 *
 * An input whose rest starts with "PK" is handed over as the container
 * itself (damaged zips, central directories). Invariants: a success has
 * blocks inside the text in order and chunks that are slices of it; a
 * failure leaves no document and names the file. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "rag/rag.h"

static const rag_doc_type types[] = {RAG_DOC_DOCX, RAG_DOC_XLSX, RAG_DOC_PPTX, RAG_DOC_ODT,
                                     RAG_DOC_ODS,  RAG_DOC_ODP,  RAG_DOC_EPUB};

static void check_doc(const rag_doc *d) {
    if (!d->text || d->text[d->text_len] != 0 || strlen(d->text) != d->text_len) __builtin_trap();
    size_t prev = 0;
    for (size_t i = 0; i < d->n_blocks; i++) {
        const rag_block *b = &d->blocks[i];
        if (b->text_off < prev || b->text_off + b->text_len > d->text_len || b->text_len == 0) __builtin_trap();
        if (b->line_end < b->line_start) __builtin_trap();
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
    }
    rag_chunk_list_free(&l);
}

/* Zips the "@@name\n" parts of s[0..n) in memory; returns malloc'd bytes. */
static unsigned char *zip_parts(const uint8_t *s, size_t n, size_t *out_len) {
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    if (!src) return NULL;
    zip_source_keep(src);
    zip_t *z = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    zip_error_fini(&ze);
    if (!z) {
        zip_source_free(src);
        zip_source_free(src);
        return NULL;
    }
    size_t i = 0;
    int parts = 0;
    while (i + 2 < n && parts < 64) {
        const uint8_t *start = memmem(s + i, n - i, "@@", 2);
        if (!start) break;
        size_t a = (size_t)(start - s) + 2;
        const uint8_t *nl = memchr(s + a, '\n', n - a);
        if (!nl) break;
        size_t name_len = (size_t)(nl - (s + a));
        size_t b = (size_t)(nl - s) + 1;
        const uint8_t *next = b < n ? memmem(s + b, n - b, "\n@@", 3) : NULL;
        size_t e = next ? (size_t)(next - s) : n;
        char name[256];
        if (name_len && name_len < sizeof name) {
            memcpy(name, s + a, name_len);
            name[name_len] = 0;
            zip_source_t *ps = zip_source_buffer(z, s + b, e - b, 0);
            if (ps && zip_file_add(z, name, ps, ZIP_FL_OVERWRITE) < 0) zip_source_free(ps);
            parts++;
        }
        i = next ? e + 1 : n;
    }
    unsigned char *buf = NULL;
    if (zip_close(z) != 0) {
        zip_discard(z);
        zip_source_free(src);
        return NULL;
    }
    zip_stat_t st;
    if (zip_source_stat(src, &st) == 0 && zip_source_open(src) == 0) {
        buf = malloc(st.size ? st.size : 1);
        zip_int64_t k = buf ? zip_source_read(src, buf, st.size) : -1;
        if (k < 0) {
            free(buf);
            buf = NULL;
        } else {
            *out_len = (size_t)k;
        }
        zip_source_close(src);
    }
    zip_source_free(src);
    return buf;
}

static const char *seeds[] = {
    "\x00@@_rels/.rels\n<Relationships><Relationship Id=\"r1\" Type=\"x/officeDocument\" Target=\"word/document.xml\"/>"
    "</Relationships>\n@@word/_rels/document.xml.rels\n<Relationships><Relationship Id=\"r2\" Type=\"x/footnotes\" "
    "Target=\"footnotes.xml\"/><Relationship Id=\"r3\" Type=\"x/styles\" Target=\"styles.xml\"/></Relationships>\n"
    "@@word/styles.xml\n<styles><style type=\"paragraph\" styleId=\"H1\"><name val=\"heading 1\"/></style></styles>\n"
    "@@word/footnotes.xml\n<footnotes><footnote id=\"1\"><p><r><t>note</t></r></p></footnote></footnotes>\n"
    "@@word/document.xml\n<document><body><p><pPr><pStyle val=\"H1\"/></pPr><r><t>Head</t></r></p><p><r><t>a</t>"
    "</r><del><r><delText>x</delText></r></del><r><footnoteReference id=\"1\"/></r></p><tbl><tr><tc><p><r><t>c"
    "</t></r></p></tc></tr></tbl></body></document>",
    "\x01@@xl/workbook.xml\n<workbook xmlns:r=\"r\"><sheets><sheet name=\"S\" r:id=\"a\"/></sheets></workbook>\n"
    "@@xl/_rels/workbook.xml.rels\n<Relationships><Relationship Id=\"a\" Type=\"x/worksheet\" Target=\"s.xml\"/>"
    "<Relationship Id=\"b\" Type=\"x/sharedStrings\" Target=\"ss.xml\"/><Relationship Id=\"c\" Type=\"x/styles\" "
    "Target=\"st.xml\"/></Relationships>\n@@xl/ss.xml\n<sst><si><t>H</t></si></sst>\n@@xl/st.xml\n<styleSheet>"
    "<cellXfs><xf numFmtId=\"14\"/></cellXfs></styleSheet>\n@@xl/s.xml\n<worksheet><sheetData><row r=\"1\"><c r=\"A1\" "
    "t=\"s\"><v>0</v></c></row><row r=\"2\"><c r=\"A2\" s=\"0\"><v>45000.5</v></c></row></sheetData></worksheet>",
    "\x02@@ppt/presentation.xml\n<presentation xmlns:r=\"r\"><sldIdLst><sldId id=\"1\" r:id=\"s\"/></sldIdLst>"
    "</presentation>\n@@ppt/_rels/presentation.xml.rels\n<Relationships><Relationship Id=\"s\" Type=\"x/slide\" "
    "Target=\"slides/1.xml\"/></Relationships>\n@@ppt/slides/1.xml\n<sld><cSld><spTree><sp><nvSpPr><nvPr><ph "
    "type=\"title\"/></nvPr></nvSpPr><txBody><p><r><t>T</t></r></p></txBody></sp><sp><txBody><p><r><t>b</t></r><br/>"
    "</p></txBody></sp></spTree></cSld></sld>\n@@ppt/slides/_rels/1.xml.rels\n<Relationships><Relationship Id=\"n\" "
    "Type=\"x/notesSlide\" Target=\"../n.xml\"/></Relationships>\n@@ppt/n.xml\n<notes><cSld><spTree><sp><txBody><p><r>"
    "<t>n</t></r></p></txBody></sp></spTree></cSld></notes>",
    "\x03@@mimetype\napplication/vnd.oasis.opendocument.text\n@@content.xml\n<document-content><body><text><h "
    "outline-level=\"2\">H</h><p>a<s c=\"3\"/>b<note><note-body><p>n</p></note-body></note></p><list><list-item><p>l"
    "</p></list-item></list><table><table-row><table-cell><p>c</p></table-cell></table-row></table></text></body>"
    "</document-content>",
    "\x04@@content.xml\n<document-content><body><spreadsheet><table name=\"S\"><table-row number-rows-repeated=\"3\">"
    "<table-cell number-columns-repeated=\"2\"><p>v</p></table-cell></table-row></table></spreadsheet></body>"
    "</document-content>",
    "\x05@@content.xml\n<document-content><body><presentation><page><frame class=\"title\"><text-box><p>T</p>"
    "</text-box></frame><frame><text-box><p>b</p></text-box></frame><notes><frame><text-box><p>n</p></text-box>"
    "</frame></notes></page></presentation></body></document-content>",
    "\x06@@mimetype\napplication/epub+zip\n@@META-INF/container.xml\n<container><rootfiles><rootfile "
    "full-path=\"o/c.opf\"/></rootfiles></container>\n@@o/c.opf\n<package><metadata><title>B</title></metadata>"
    "<manifest><item id=\"a\" href=\"a.xhtml\" media-type=\"application/xhtml+xml\"/></manifest><spine><itemref "
    "idref=\"a\"/></spine></package>\n@@o/a.xhtml\n<html><body><h1>C</h1><p>t</p></body></html>",
};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    for (int i = 1; i < *argc; i++)
        if (strncmp((*argv)[i], "-mrag_seeds=", 12) == 0) {
            int rc = 0;
            for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
                char path[4096];
                snprintf(path, sizeof path, "%s/seed-office-%zu", (*argv)[i] + 12, k);
                FILE *f = fopen(path, "wb");
                if (!f) { rc = 1; continue; }
                size_t n = 1 + strlen(seeds[k] + 1);
                if (fwrite(seeds[k], 1, n, f) != n) rc = 1;
                fclose(f);
            }
            exit(rc);
        }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    rag_doc_type t = types[data[0] % (sizeof types / sizeof types[0])];
    unsigned char *buf = NULL;
    size_t len = 0;
    const unsigned char *in;
    if (size >= 3 && data[1] == 'P' && data[2] == 'K') {
        in = data + 1;
        len = size - 1;
    } else {
        buf = zip_parts(data + 1, size - 1, &len);
        if (!buf) return 0;
        in = buf;
    }
    rag_extract_params p = rag_extract_default_params();
    p.max_text_bytes = 1 << 20;
    p.budget.cpu_seconds = 2;
    rag_doc *d = NULL;
    char err[512];
    if (rag_extract_memory("fuzz.office", in, len, t, &p, &d, err, sizeof err) == RAG_OK) {
        check_doc(d);
        rag_doc_free(d);
    } else if (d || !strstr(err, "fuzz.office")) {
        __builtin_trap();
    }
    free(buf);
    return 0;
}
