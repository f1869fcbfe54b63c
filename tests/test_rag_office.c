/* test_rag_office.c — the office extractors (docx, xlsx, pptx, odt, ods,
 * odp, epub): documents are built here with libzip from XML written in the
 * test (no committed binaries), extracted, and where Debian has a second
 * reader (pandoc) compared with it; container attacks (zip bomb, a part
 * path leaving the package, encryption, DTDs, damage) are clear per-file
 * errors. */
#define _GNU_SOURCE
#include "rag/rag.h"
#include "tests/test.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

typedef struct {
    const char *name;
    const char *data;   /* NUL-terminated text, or len bytes */
    size_t len;
} member;

/* Builds a zip of the members (the first one stored, the rest deflated, as
 * ODF and EPUB want the mimetype) in a temp file and returns its bytes. */
static char zip_dir[1024];     /* where make_zip wrote its last file */

static char *make_zip(const char *file, const member *m, size_t n, size_t *len) {
    char path[2100];
    snprintf(zip_dir, sizeof zip_dir, "%s", test_tmpdir());
    snprintf(path, sizeof path, "%s/%s", zip_dir, file);
    int ze = 0;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &ze);
    REQUIRE(z, "zip_open %s: %d", path, ze);
    for (size_t i = 0; i < n; i++) {
        size_t l = m[i].len ? m[i].len : strlen(m[i].data);
        zip_source_t *s = zip_source_buffer(z, m[i].data, l, 0);
        REQUIRE(s);
        zip_int64_t idx = zip_file_add(z, m[i].name, s, ZIP_FL_OVERWRITE | ZIP_FL_ENC_UTF_8);
        REQUIRE(idx >= 0, "add %s: %s", m[i].name, zip_strerror(z));
        if (i == 0) zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_STORE, 0);
    }
    REQUIRE(zip_close(z) == 0, "zip_close: %s", zip_strerror(z));
    char *buf = test_read_file(path, len);
    REQUIRE(buf);
    return buf;
}

static rag_doc *extract_ok(const char *name, const char *data, size_t len) {
    rag_doc *d = NULL;
    char err[512] = "";
    int rc = rag_extract_memory(name, data, len, RAG_DOC_UNKNOWN, NULL, &d, err, sizeof err);
    REQUIRE(rc == RAG_OK && d, "%s: rc %d: %s", name, rc, err);
    return d;
}

static int extract_err(const char *name, const char *data, size_t len, char *err, size_t errlen) {
    rag_doc *d = NULL;
    err[0] = 0;
    int rc = rag_extract_memory(name, data, len, RAG_DOC_UNKNOWN, NULL, &d, err, errlen);
    CHECK(d == NULL, "%s: no document on failure", name);
    rag_doc_free(d);
    return rc;
}

/* Index of the block whose text is exactly s, or -1. */
static long block_eq(const rag_doc *d, const char *s) {
    for (size_t i = 0; i < d->n_blocks; i++)
        if (strcmp(test_block_text(d, i), s) == 0) return (long)i;
    return -1;
}

/* -------------------------------------------------- a second reader */
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lower-cased words (letters/digits) of a text, sorted and unique,
 * joined by spaces. */
static char *word_set(const char *t) {
    size_t n = strlen(t), cap = 256, nw = 0;
    char **w = malloc(cap * sizeof *w);
    for (size_t i = 0; i < n;) {
        while (i < n && !isalnum((unsigned char)t[i]) && !((unsigned char)t[i] & 0x80)) i++;
        size_t a = i;
        while (i < n && (isalnum((unsigned char)t[i]) || ((unsigned char)t[i] & 0x80))) i++;
        if (i > a) {
            if (nw == cap) w = realloc(w, (cap *= 2) * sizeof *w);
            w[nw] = strndup(t + a, i - a);
            for (char *c = w[nw]; *c; c++) *c = (char)tolower((unsigned char)*c);
            nw++;
        }
    }
    qsort(w, nw, sizeof *w, cmp_str);
    size_t total = 1;
    for (size_t i = 0; i < nw; i++) total += strlen(w[i]) + 1;
    char *out = malloc(total), *o = out;
    *o = 0;
    for (size_t i = 0; i < nw; i++)
        if (!i || strcmp(w[i], w[i - 1]) != 0) o += sprintf(o, "%s%s", o == out ? "" : " ", w[i]);
    for (size_t i = 0; i < nw; i++) free(w[i]);
    free(w);
    return out;
}

/* The words of set a not in the words of ign (both word_set results). */
static void drop_words(char *a, const char *ign, char *out, size_t cap) {
    char padded[2048];
    snprintf(padded, sizeof padded, " %s ", ign);
    out[0] = 0;
    char *save = NULL;
    for (char *w = strtok_r(a, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        char pat[256];
        snprintf(pat, sizeof pat, " %s ", w);
        if (strstr(padded, pat)) continue;
        if (strlen(out) + strlen(w) + 2 >= cap) break;
        if (out[0]) strcat(out, " ");
        strcat(out, w);
    }
}

/* Runs pandoc on the file and compares the word sets of both readings,
 * ignoring the words of `ignore` on both sides (our "Notes" heading and
 * note marks, pandoc's metadata title or navigation). */
static void compare_with_pandoc(const char *file, const char *from, const rag_doc *d, const char *ignore) {
    int st;
    char *v = test_run_capture("pandoc --version 2>/dev/null | head -1", &st);
    if (!v || st != 0 || !strstr(v, "pandoc")) {
        free(v);
        printf("  (pandoc is not installed: the second reading of %s is skipped)\n", file);
        return;
    }
    free(v);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "pandoc -f %s -t plain --wrap=none '%s/%s' 2>&1", from, zip_dir, file);
    char *plain = test_run_capture(cmd, &st);
    REQUIRE(plain && st == 0, "pandoc failed on %s: %s", file, plain ? plain : "");
    char *a = word_set(d->text), *b = word_set(plain), *ign = word_set(ignore);
    char fa[8192], fb[8192];
    drop_words(a, ign, fa, sizeof fa);
    drop_words(b, ign, fb, sizeof fb);
    CHECK(fa[0], "words to compare");
    CHECK_EQ_STR(fa, fb);
    free(a);
    free(b);
    free(ign);
    free(plain);
}

/* ================================================================ docx */
static const char CT_DOCX[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
    "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">"
    "<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>"
    "<Default Extension=\"xml\" ContentType=\"application/xml\"/>"
    "<Override PartName=\"/word/document.xml\" "
    "ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>"
    "<Override PartName=\"/word/styles.xml\" "
    "ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml\"/>"
    "<Override PartName=\"/word/footnotes.xml\" "
    "ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml\"/>"
    "<Override PartName=\"/docProps/core.xml\" "
    "ContentType=\"application/vnd.openxmlformats-package.core-properties+xml\"/>"
    "</Types>";

static const char RELS_DOCX[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
    "<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
    "officeDocument\" Target=\"word/document.xml\"/>"
    "<Relationship Id=\"rId2\" Type=\"http://schemas.openxmlformats.org/package/2006/relationships/metadata/"
    "core-properties\" Target=\"docProps/core.xml\"/>"
    "</Relationships>";

static const char DOC_RELS[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
    "<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles\" "
    "Target=\"styles.xml\"/>"
    "<Relationship Id=\"rId2\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
    "footnotes\" Target=\"footnotes.xml\"/>"
    "</Relationships>";

#define W_NS "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\""

static const char STYLES[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<w:styles " W_NS ">"
    "<w:style w:type=\"paragraph\" w:styleId=\"Title\"><w:name w:val=\"Title\"/></w:style>"
    "<w:style w:type=\"paragraph\" w:styleId=\"Heading1\"><w:name w:val=\"heading 1\"/></w:style>"
    "<w:style w:type=\"paragraph\" w:styleId=\"Heading2\"><w:name w:val=\"heading 2\"/></w:style>"
    "<w:style w:type=\"paragraph\" w:styleId=\"Ueberschrift\"><w:name w:val=\"Custom\"/>"
    "<w:pPr><w:outlineLvl w:val=\"2\"/></w:pPr></w:style>"
    "</w:styles>";

static const char FOOTNOTES[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<w:footnotes " W_NS ">"
    "<w:footnote w:type=\"separator\" w:id=\"-1\"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>"
    "<w:footnote w:id=\"1\"><w:p><w:r><w:t>Measured in spring.</w:t></w:r></w:p></w:footnote>"
    "</w:footnotes>";

static const char CORE[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<cp:coreProperties xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" "
    "xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>Travel policy</dc:title></cp:coreProperties>";

static const char DOCUMENT[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<w:document " W_NS "><w:body>"
    "<w:p><w:pPr><w:pStyle w:val=\"Title\"/></w:pPr><w:r><w:t>Travel rules</w:t></w:r></w:p>"
    "<w:p><w:pPr><w:pStyle w:val=\"Heading1\"/></w:pPr><w:r><w:t>Trains</w:t></w:r></w:p>"
    "<w:p><w:r><w:t xml:space=\"preserve\">Book second class </w:t></w:r>"
    "<w:del w:id=\"1\" w:author=\"x\"><w:r><w:delText>first class always</w:delText></w:r></w:del>"
    "<w:ins w:id=\"2\" w:author=\"x\"><w:r><w:t>for trips under four hours</w:t></w:r></w:ins>"
    "<w:commentRangeStart w:id=\"0\"/><w:r><w:t>.</w:t></w:r><w:commentRangeEnd w:id=\"0\"/>"
    "<w:r><w:commentReference w:id=\"0\"/></w:r>"
    "<w:r><w:footnoteReference w:id=\"1\"/></w:r></w:p>"
    "<w:p><w:pPr><w:pStyle w:val=\"Heading2\"/></w:pPr><w:r><w:t>Fares</w:t></w:r></w:p>"
    "<w:tbl><w:tblPr/><w:tblGrid><w:gridCol w:w=\"2000\"/><w:gridCol w:w=\"2000\"/></w:tblGrid><w:tr><w:tc><w:p><w:r><w:t>Route</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Price</w:t></w:r></w:p>"
    "</w:tc></w:tr><w:tr><w:tc><w:p><w:r><w:t>Berlin Hamburg</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r>"
    "<w:t>79 EUR</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
    "<w:p><w:pPr><w:pStyle w:val=\"Ueberschrift\"/></w:pPr><w:r><w:t>Exceptions</w:t></w:r></w:p>"
    "<w:p><w:pPr><w:numPr><w:ilvl w:val=\"0\"/><w:numId w:val=\"1\"/></w:numPr></w:pPr>"
    "<w:r><w:t>Night trains</w:t></w:r><w:r><w:tab/><w:t>need approval</w:t></w:r></w:p>"
    "<w:p/>"
    "<w:p><w:r><w:t>Line one</w:t></w:r><w:r><w:br/><w:t>line two</w:t></w:r></w:p>"
    "<w:sectPr/></w:body></w:document>";

static char *docx_bytes(const char *file, const char *document, size_t *len) {
    member m[] = {
        {"[Content_Types].xml", CT_DOCX, 0}, {"_rels/.rels", RELS_DOCX, 0},
        {"word/_rels/document.xml.rels", DOC_RELS, 0}, {"word/document.xml", document, 0},
        {"word/styles.xml", STYLES, 0}, {"word/footnotes.xml", FOOTNOTES, 0}, {"docProps/core.xml", CORE, 0},
    };
    return make_zip(file, m, sizeof m / sizeof m[0], len);
}

TEST(docx_structure_tracked_changes_footnotes_tables) {
    size_t len;
    char *z = docx_bytes("policy.docx", DOCUMENT, &len);
    rag_doc *d = extract_ok("policy.docx", z, len);
    CHECK_EQ_INT(d->type, RAG_DOC_DOCX);
    CHECK_EQ_STR(d->title, "Travel policy");
    long t = block_eq(d, "Travel rules"), h1 = block_eq(d, "Trains"), h2 = block_eq(d, "Fares");
    long h3 = block_eq(d, "Exceptions");
    REQUIRE(t >= 0 && h1 >= 0 && h2 >= 0 && h3 >= 0, "headings present:\n%s", d->text);
    CHECK_EQ_INT(d->blocks[t].kind, RAG_BLOCK_HEADING);
    CHECK_EQ_INT(d->blocks[t].level, 1);
    CHECK_EQ_INT(d->blocks[h1].level, 1);
    CHECK_EQ_INT(d->blocks[h2].level, 2);
    CHECK_EQ_INT(d->blocks[h3].level, 3);     /* from the style's outline level */
    /* the deletion and the comment are left out, the insertion kept */
    long p = block_eq(d, "Book second class for trips under four hours.[1]");
    REQUIRE(p >= 0, "paragraph with the insertion and the note mark:\n%s", d->text);
    CHECK(!strstr(d->text, "first class always"), "the tracked deletion is not text");
    CHECK_EQ_INT(d->blocks[p].line_start, 1);   /* the first paragraph */
    long r0 = block_eq(d, "Route | Price"), r1 = block_eq(d, "Berlin Hamburg | 79 EUR");
    CHECK(r0 >= 0 && r1 == r0 + 1, "table rows:\n%s", d->text);
    CHECK_EQ_INT(d->blocks[r1].line_start, 3);
    long li = block_eq(d, "Night trains need approval");
    REQUIRE(li >= 0, "list item:\n%s", d->text);
    CHECK_EQ_INT(d->blocks[li].kind, RAG_BLOCK_LIST_ITEM);
    CHECK(block_eq(d, "Line one\nline two") >= 0, "a line break stays:\n%s", d->text);
    long notes = block_eq(d, "Notes"), fn = block_eq(d, "[1] Measured in spring.");
    CHECK(notes >= 0 && fn == notes + 1, "footnotes after the body:\n%s", d->text);
    /* citations: paragraph numbers */
    char tail[64];
    rag_cite_tail("docx", 0, d->blocks[r0].line_start, d->blocks[r1].line_start, tail, sizeof tail);
    CHECK_EQ_STR(tail, "#para=2-3");
    compare_with_pandoc("policy.docx", "docx", d, "notes 1 travel rules");
    rag_doc_free(d);
    free(z);
}

/* ================================================================ xlsx */
TEST(xlsx_rows_as_header_value_with_dates_and_shared_strings) {
    static const char ct[] =
        "<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>";
    static const char rels[] =
        "<?xml version=\"1.0\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
        "<Relationship Id=\"r1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
        "officeDocument\" Target=\"/xl/workbook.xml\"/></Relationships>";
    static const char wb[] =
        "<?xml version=\"1.0\"?><workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" "
        "xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><workbookPr/><sheets>"
        "<sheet name=\"Staff\" sheetId=\"1\" r:id=\"rId1\"/><sheet name=\"Rooms\" sheetId=\"2\" r:id=\"rId2\"/>"
        "</sheets></workbook>";
    static const char wbrels[] =
        "<?xml version=\"1.0\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
        "<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
        "worksheet\" Target=\"worksheets/sheet1.xml\"/>"
        "<Relationship Id=\"rId2\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
        "worksheet\" Target=\"worksheets/sheet2.xml\"/>"
        "<Relationship Id=\"rId3\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
        "sharedStrings\" Target=\"sharedStrings.xml\"/>"
        "<Relationship Id=\"rId4\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
        "styles\" Target=\"styles.xml\"/></Relationships>";
    static const char ss[] =
        "<?xml version=\"1.0\"?><sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">"
        "<si><t>Name</t></si><si><t>Start</t></si><si><r><t>Ali</t></r><r><t>ce</t></r></si>"
        "<si><t>Room</t></si><si><t>B 204</t></si></sst>";
    static const char styles[] =
        "<?xml version=\"1.0\"?><styleSheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">"
        "<numFmts count=\"1\"><numFmt numFmtId=\"164\" formatCode=\"dd/mm/yyyy\"/></numFmts>"
        "<cellXfs count=\"3\"><xf numFmtId=\"0\"/><xf numFmtId=\"14\"/><xf numFmtId=\"164\"/></cellXfs></styleSheet>";
    static const char s1[] =
        "<?xml version=\"1.0\"?><worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">"
        "<sheetData>"
        "<row r=\"2\"><c r=\"A2\" t=\"s\"><v>0</v></c><c r=\"B2\" t=\"s\"><v>1</v></c><c r=\"C2\" t=\"inlineStr\">"
        "<is><t>Salary</t></is></c><c r=\"D2\" t=\"inlineStr\"><is><t>Remote</t></is></c></row>"
        "<row r=\"3\"><c r=\"A3\" t=\"s\"><v>2</v></c><c r=\"B3\" s=\"1\"><v>45352</v></c><c r=\"C3\"><v>4200.5</v></c>"
        "<c r=\"D3\" t=\"b\"><v>1</v></c><c r=\"F3\" t=\"str\"><v>note</v></c></row>"
        "<row r=\"4\"><c r=\"A4\" t=\"inlineStr\"><is><t>Bob</t></is></c><c r=\"B4\" s=\"2\"><v>45000.75</v></c></row>"
        "</sheetData></worksheet>";
    static const char s2[] =
        "<?xml version=\"1.0\"?><worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">"
        "<sheetData><row r=\"1\"><c r=\"A1\" t=\"s\"><v>3</v></c></row>"
        "<row r=\"7\"><c r=\"A7\" t=\"s\"><v>4</v></c></row></sheetData></worksheet>";
    member m[] = {{"[Content_Types].xml", ct, 0}, {"_rels/.rels", rels, 0}, {"xl/workbook.xml", wb, 0},
                  {"xl/_rels/workbook.xml.rels", wbrels, 0}, {"xl/sharedStrings.xml", ss, 0},
                  {"xl/styles.xml", styles, 0}, {"xl/worksheets/sheet1.xml", s1, 0},
                  {"xl/worksheets/sheet2.xml", s2, 0}};
    size_t len;
    char *z = make_zip("staff.xlsx", m, sizeof m / sizeof m[0], &len);
    rag_doc *d = extract_ok("staff.xlsx", z, len);
    CHECK_EQ_INT(d->type, RAG_DOC_XLSX);
    long h = block_eq(d, "Staff"), hdr = block_eq(d, "Columns: Name | Start | Salary | Remote");
    long r3 = block_eq(d, "Name: Alice; Start: 2024-03-01; Salary: 4200.5; Remote: TRUE; F: note");
    long r4 = block_eq(d, "Name: Bob; Start: 2023-03-15 18:00");
    REQUIRE(h >= 0 && hdr == h + 1 && r3 == h + 2 && r4 == h + 3, "sheet 1 rows:\n%s", d->text);
    CHECK_EQ_INT(d->blocks[h].kind, RAG_BLOCK_HEADING);
    CHECK_EQ_INT(d->blocks[r3].page, 1);
    CHECK_EQ_INT(d->blocks[r3].line_start, 3);
    CHECK_EQ_INT(d->blocks[r4].line_start, 4);
    long h2 = block_eq(d, "Rooms"), rr = block_eq(d, "Room: B 204");
    REQUIRE(h2 > r4 && rr == h2 + 2, "sheet 2:\n%s", d->text);
    CHECK_EQ_INT(d->blocks[rr].page, 2);
    CHECK_EQ_INT(d->blocks[rr].line_start, 7);
    char tail[64];
    rag_cite_tail("xlsx", 2, 7, 7, tail, sizeof tail);
    CHECK_EQ_STR(tail, "#sheet=2,rows=7");
    rag_doc_free(d);
    free(z);
}

/* ================================================================ pptx */
#define P_NS "xmlns:p=\"http://schemas.openxmlformats.org/presentationml/2006/main\" " \
             "xmlns:a=\"http://schemas.openxmlformats.org/drawingml/2006/main\" " \
             "xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\""
#define SP(type, text) "<p:sp><p:nvSpPr><p:cNvPr id=\"1\" name=\"x\"/><p:cNvSpPr/><p:nvPr>" type "</p:nvPr></p:nvSpPr>" \
                       "<p:txBody><a:bodyPr/>" text "</p:txBody></p:sp>"
#define AP(t) "<a:p><a:r><a:t>" t "</a:t></a:r></a:p>"

TEST(pptx_slides_titles_notes_tables) {
    static const char rels[] =
        "<?xml version=\"1.0\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
        "<Relationship Id=\"r1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
        "officeDocument\" Target=\"ppt/presentation.xml\"/></Relationships>";
    static const char pres[] =
        "<?xml version=\"1.0\"?><p:presentation " P_NS "><p:sldIdLst><p:sldId id=\"257\" r:id=\"rId7\"/>"
        "<p:sldId id=\"256\" r:id=\"rId2\"/></p:sldIdLst></p:presentation>";
    static const char prels[] =
        "<?xml version=\"1.0\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
        "<Relationship Id=\"rId2\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide\" "
        "Target=\"slides/slide1.xml\"/>"
        "<Relationship Id=\"rId7\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/slide\" "
        "Target=\"slides/slide2.xml\"/></Relationships>";
    /* slide2.xml comes first in the presentation's order */
    static const char sl2[] =
        "<?xml version=\"1.0\"?><p:sld " P_NS "><p:cSld><p:spTree>"
        SP("<p:ph type=\"ctrTitle\"/>", AP("Quarterly review"))
        SP("<p:ph type=\"subTitle\" idx=\"1\"/>", AP("Sales and support"))
        SP("<p:ph type=\"sldNum\" idx=\"12\"/>", AP("1"))
        "</p:spTree></p:cSld></p:sld>";
    static const char sl1[] =
        "<?xml version=\"1.0\"?><p:sld " P_NS "><p:cSld><p:spTree>"
        SP("<p:ph type=\"title\"/>", AP("Support tickets"))
        SP("", "<a:p><a:r><a:t>Tickets fell by </a:t></a:r><a:r><a:t>12 percent</a:t></a:r><a:br/>"
               "<a:r><a:t>in March</a:t></a:r></a:p>")
        "<p:graphicFrame><a:graphic><a:graphicData><a:tbl><a:tr><a:tc><a:txBody>" AP("Team") "</a:txBody></a:tc>"
        "<a:tc><a:txBody>" AP("Open") "</a:txBody></a:tc></a:tr><a:tr><a:tc><a:txBody>" AP("Berlin")
        "</a:txBody></a:tc><a:tc><a:txBody>" AP("14") "</a:txBody></a:tc></a:tr></a:tbl></a:graphicData>"
        "</a:graphic></p:graphicFrame>"
        "</p:spTree></p:cSld></p:sld>";
    static const char sl1rels[] =
        "<?xml version=\"1.0\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
        "<Relationship Id=\"rId3\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
        "notesSlide\" Target=\"../notesSlides/notesSlide1.xml\"/></Relationships>";
    static const char notes[] =
        "<?xml version=\"1.0\"?><p:notes " P_NS "><p:cSld><p:spTree>"
        SP("<p:ph type=\"sldImg\"/>", "")
        SP("<p:ph type=\"body\" idx=\"1\"/>", AP("Mention the new triage rota."))
        "</p:spTree></p:cSld></p:notes>";
    member m[] = {{"_rels/.rels", rels, 0}, {"ppt/presentation.xml", pres, 0},
                  {"ppt/_rels/presentation.xml.rels", prels, 0}, {"ppt/slides/slide1.xml", sl1, 0},
                  {"ppt/slides/slide2.xml", sl2, 0}, {"ppt/slides/_rels/slide1.xml.rels", sl1rels, 0},
                  {"ppt/notesSlides/notesSlide1.xml", notes, 0}};
    size_t len;
    char *z = make_zip("review.pptx", m, sizeof m / sizeof m[0], &len);
    rag_doc *d = extract_ok("review.pptx", z, len);
    long t1 = block_eq(d, "Quarterly review"), sub = block_eq(d, "Sales and support");
    long t2 = block_eq(d, "Support tickets"), body = block_eq(d, "Tickets fell by 12 percent\nin March");
    long row = block_eq(d, "Berlin | 14"), nh = block_eq(d, "Notes"), nt = block_eq(d, "Mention the new triage rota.");
    REQUIRE(t1 == 0 && sub == 1 && t2 == 2 && body == 3 && row == 5 && nh == 6 && nt == 7, "slides:\n%s", d->text);
    CHECK(!strstr(d->text, "\n1\n") && block_eq(d, "1") < 0, "the slide number placeholder is not text");
    CHECK_EQ_INT(d->blocks[t1].kind, RAG_BLOCK_HEADING);
    CHECK_EQ_INT(d->blocks[t1].page, 1);
    CHECK_EQ_INT(d->blocks[t2].page, 2);
    CHECK_EQ_INT(d->blocks[nt].page, 2);
    CHECK_EQ_INT(d->blocks[nh].level, 2);
    CHECK_EQ_INT(d->n_pages, 2);
    char tail[64];
    rag_cite_tail("pptx", 2, 0, 0, tail, sizeof tail);
    CHECK_EQ_STR(tail, "#slide=2");
    rag_doc_free(d);
    free(z);
}

/* ========================================================== OpenDocument */
#define ODF_NS "xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" " \
               "xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" " \
               "xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" " \
               "xmlns:draw=\"urn:oasis:names:tc:opendocument:xmlns:drawing:1.0\" " \
               "xmlns:presentation=\"urn:oasis:names:tc:opendocument:xmlns:presentation:1.0\" " \
               "xmlns:dc=\"http://purl.org/dc/elements/1.1/\" office:version=\"1.2\""

static const char ODF_MANIFEST[] =
    "<?xml version=\"1.0\"?><manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\">"
    "<manifest:file-entry manifest:full-path=\"/\" manifest:media-type=\"application/vnd.oasis.opendocument.text\"/>"
    "<manifest:file-entry manifest:full-path=\"content.xml\" manifest:media-type=\"text/xml\"/>"
    "</manifest:manifest>";

static const char ODT_CONTENT[] =
    "<?xml version=\"1.0\"?><office:document-content " ODF_NS "><office:body><office:text>"
    "<text:tracked-changes><text:changed-region text:id=\"c1\"><text:deletion><text:p>Removed sentence."
    "</text:p></text:deletion></text:changed-region></text:tracked-changes>"
    "<text:h text:outline-level=\"1\">Onboarding</text:h>"
    "<text:p>New staff get a laptop<text:change text:change-id=\"c1\"/> on day one"
    "<text:note text:id=\"n1\" text:note-class=\"footnote\"><text:note-citation>1</text:note-citation>"
    "<text:note-body><text:p>Ask IT a week ahead.</text:p></text:note-body></text:note>.</text:p>"
    "<text:p>Two<text:s text:c=\"2\"/>spaces<office:annotation><dc:creator>x</dc:creator><text:p>A comment."
    "</text:p></office:annotation> kept.</text:p>"
    "<text:h text:outline-level=\"2\">Accounts</text:h>"
    "<text:list><text:list-item><text:p>Mail account</text:p></text:list-item>"
    "<text:list-item><text:p>VPN access</text:p></text:list-item></text:list>"
    "<table:table table:name=\"T\"><table:table-column/><table:table-row><table:table-cell><text:p>System</text:p>"
    "</table:table-cell><table:table-cell><text:p>Owner</text:p></table:table-cell></table:table-row>"
    "<table:table-row><table:table-cell><text:p>Wiki</text:p></table:table-cell><table:table-cell><text:p>Ops"
    "</text:p></table:table-cell></table:table-row></table:table>"
    "</office:text></office:body></office:document-content>";

static const char ODT_META[] =
    "<?xml version=\"1.0\"?><office:document-meta " ODF_NS "><office:meta><dc:title>Onboarding guide</dc:title>"
    "</office:meta></office:document-meta>";

TEST(odt_headings_lists_tables_notes_without_changes_or_comments) {
    member m[] = {{"mimetype", "application/vnd.oasis.opendocument.text", 0}, {"content.xml", ODT_CONTENT, 0},
                  {"meta.xml", ODT_META, 0}, {"META-INF/manifest.xml", ODF_MANIFEST, 0},
                  {"styles.xml", "<?xml version=\"1.0\"?><office:document-styles " ODF_NS "><office:font-face-decls/><office:styles/><office:automatic-styles/><office:master-styles/></office:document-styles>", 0}};
    size_t len;
    char *z = make_zip("guide.odt", m, sizeof m / sizeof m[0], &len);
    rag_doc *d = extract_ok("guide.odt", z, len);
    CHECK_EQ_STR(d->title, "Onboarding guide");
    long h1 = block_eq(d, "Onboarding"), p1 = block_eq(d, "New staff get a laptop on day one[1].");
    long p2 = block_eq(d, "Two  spaces kept."), h2 = block_eq(d, "Accounts"), l1 = block_eq(d, "Mail account");
    long row = block_eq(d, "Wiki | Ops"), fn = block_eq(d, "[1] Ask IT a week ahead.");
    REQUIRE(h1 == 0 && p1 == 1 && p2 == 2 && h2 == 3 && l1 == 4 && row == 7 && fn == 9, "blocks:\n%s", d->text);
    CHECK(!strstr(d->text, "Removed sentence") && !strstr(d->text, "A comment"), "changes and comments left out");
    CHECK_EQ_INT(d->blocks[h2].level, 2);
    CHECK_EQ_INT(d->blocks[l1].kind, RAG_BLOCK_LIST_ITEM);
    CHECK_EQ_INT(d->blocks[p2].line_start, 2);
    compare_with_pandoc("guide.odt", "odt", d, "notes 1 2");
    rag_doc_free(d);
    free(z);
}

TEST(ods_repeated_cells_and_rows) {
    static const char content[] =
        "<?xml version=\"1.0\"?><office:document-content " ODF_NS "><office:body><office:spreadsheet>"
        "<table:table table:name=\"Budget\">"
        "<table:table-row table:number-rows-repeated=\"2\"><table:table-cell table:number-columns-repeated=\"1024\"/>"
        "</table:table-row>"
        "<table:table-row><table:table-cell><text:p>Item</text:p></table:table-cell>"
        "<table:table-cell/><table:table-cell><text:p>Cost</text:p></table:table-cell></table:table-row>"
        "<table:table-row table:number-rows-repeated=\"2\"><table:table-cell><text:p>Chair</text:p></table:table-cell>"
        "<table:table-cell table:number-columns-repeated=\"2\" office:value-type=\"currency\"><text:p>120,00 €</text:p>"
        "</table:table-cell></table:table-row>"
        "<table:table-row table:number-rows-repeated=\"1048570\"><table:table-cell "
        "table:number-columns-repeated=\"16384\"/></table:table-row>"
        "<table:table-row><table:table-cell><text:p>Desk</text:p></table:table-cell></table:table-row>"
        "</table:table></office:spreadsheet></office:body></office:document-content>";
    member m[] = {{"mimetype", "application/vnd.oasis.opendocument.spreadsheet", 0}, {"content.xml", content, 0}};
    size_t len;
    char *z = make_zip("budget.ods", m, 2, &len);
    rag_doc *d = extract_ok("budget.ods", z, len);
    long h = block_eq(d, "Budget"), hdr = block_eq(d, "Columns: Item | Cost");
    REQUIRE(h == 0 && hdr == 1 && d->n_blocks == 5, "blocks:\n%s", d->text);
    CHECK_EQ_STR(test_block_text(d, 2), "Item: Chair; B: 120,00 €; Cost: 120,00 €");
    CHECK_EQ_STR(test_block_text(d, 3), "Item: Chair; B: 120,00 €; Cost: 120,00 €");
    CHECK_EQ_INT(d->blocks[1].line_start, 3);
    CHECK_EQ_INT(d->blocks[2].line_start, 4);
    CHECK_EQ_INT(d->blocks[3].line_start, 5);
    CHECK_EQ_STR(test_block_text(d, 4), "Item: Desk");
    CHECK_EQ_INT(d->blocks[4].line_start, 6 + 1048570);
    rag_doc_free(d);
    free(z);
}

TEST(odp_slides_titles_and_notes) {
    static const char content[] =
        "<?xml version=\"1.0\"?><office:document-content " ODF_NS "><office:body><office:presentation>"
        "<draw:page draw:name=\"p1\"><draw:frame presentation:class=\"title\"><draw:text-box><text:p>Roadmap"
        "</text:p></draw:text-box></draw:frame><draw:frame presentation:class=\"outline\"><draw:text-box>"
        "<text:list><text:list-item><text:p>Ship search</text:p></text:list-item></text:list></draw:text-box>"
        "</draw:frame><presentation:notes><draw:frame><draw:text-box><text:p>Dates are estimates.</text:p>"
        "</draw:text-box></draw:frame></presentation:notes></draw:page>"
        "<draw:page draw:name=\"p2\"><draw:frame><draw:text-box><text:p>Questions?</text:p></draw:text-box>"
        "</draw:frame><draw:frame presentation:class=\"page-number\"><draw:text-box><text:p>2</text:p>"
        "</draw:text-box></draw:frame></draw:page>"
        "</office:presentation></office:body></office:document-content>";
    member m[] = {{"mimetype", "application/vnd.oasis.opendocument.presentation", 0}, {"content.xml", content, 0}};
    size_t len;
    char *z = make_zip("plan.odp", m, 2, &len);
    rag_doc *d = extract_ok("plan.odp", z, len);
    REQUIRE(d->n_blocks == 6, "blocks:\n%s", d->text);
    CHECK_EQ_STR(test_block_text(d, 0), "Roadmap");
    CHECK_EQ_STR(test_block_text(d, 1), "Ship search");
    CHECK_EQ_STR(test_block_text(d, 2), "Notes");
    CHECK_EQ_STR(test_block_text(d, 3), "Dates are estimates.");
    CHECK_EQ_STR(test_block_text(d, 4), "Slide 2");
    CHECK_EQ_STR(test_block_text(d, 5), "Questions?");
    CHECK_EQ_INT(d->blocks[5].page, 2);
    CHECK_EQ_INT(d->blocks[3].page, 1);
    rag_doc_free(d);
    free(z);
}

/* ================================================================ epub */
static const char EPUB_CONTAINER[] =
    "<?xml version=\"1.0\"?><container version=\"1.0\" xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\">"
    "<rootfiles><rootfile full-path=\"OEBPS/content.opf\" media-type=\"application/oebps-package+xml\"/>"
    "</rootfiles></container>";

static const char EPUB_OPF[] =
    "<?xml version=\"1.0\"?><package xmlns=\"http://www.idpf.org/2007/opf\" version=\"3.0\" unique-identifier=\"id\">"
    "<metadata xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:identifier id=\"id\">x</dc:identifier>"
    "<dc:title>Field Manual</dc:title><dc:language>en</dc:language></metadata>"
    "<manifest><item id=\"nav\" href=\"nav.xhtml\" media-type=\"application/xhtml+xml\" properties=\"nav\"/>"
    "<item id=\"c1\" href=\"text/ch%201.xhtml\" media-type=\"application/xhtml+xml\"/>"
    "<item id=\"c2\" href=\"text/ch2.xhtml\" media-type=\"application/xhtml+xml\"/></manifest>"
    "<spine><itemref idref=\"nav\"/><itemref idref=\"c2\"/><itemref idref=\"c1\"/></spine></package>";

#define XHTML(body) "<?xml version=\"1.0\" encoding=\"UTF-8\"?><!DOCTYPE html><html " \
                    "xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>t</title></head><body>" body "</body></html>"

TEST(epub_chapters_in_spine_order) {
    member m[] = {{"mimetype", "application/epub+zip", 0}, {"META-INF/container.xml", EPUB_CONTAINER, 0},
                  {"OEBPS/content.opf", EPUB_OPF, 0},
                  {"OEBPS/nav.xhtml", XHTML("<nav><ol><li>Contents entry</li></ol></nav>"), 0},
                  {"OEBPS/text/ch 1.xhtml", XHTML("<h1>Later chapter</h1><p>Pack water.</p>"), 0},
                  {"OEBPS/text/ch2.xhtml", XHTML("<h1>First chapter</h1><p>Check the map.</p><p>Tell someone.</p>"), 0}};
    size_t len;
    char *z = make_zip("manual.epub", m, sizeof m / sizeof m[0], &len);
    rag_doc *d = extract_ok("manual.epub", z, len);
    CHECK_EQ_STR(d->title, "Field Manual");
    REQUIRE(d->n_blocks == 5, "blocks:\n%s", d->text);
    CHECK_EQ_STR(test_block_text(d, 0), "First chapter");
    CHECK_EQ_INT(d->blocks[0].kind, RAG_BLOCK_HEADING);
    CHECK_EQ_STR(test_block_text(d, 2), "Tell someone.");
    CHECK_EQ_STR(test_block_text(d, 3), "Later chapter");
    CHECK_EQ_INT(d->blocks[2].page, 1);
    CHECK_EQ_INT(d->blocks[4].page, 2);
    CHECK(!strstr(d->text, "Contents entry"), "the navigation document is not a chapter");
    compare_with_pandoc("manual.epub", "epub", d, "1 contents entry");
    rag_doc_free(d);
    free(z);
}

/* ================================================================ attacks */
TEST(zip_bomb_is_refused_with_a_reason) {
    size_t n = 80u << 20;    /* 80 MB of zeros deflate to ~80 KB */
    char *zeros = calloc(1, n);
    REQUIRE(zeros);
    memcpy(zeros, "<w:document>", 12);
    member m[] = {{"_rels/.rels", RELS_DOCX, 0}, {"word/document.xml", zeros, n}};
    size_t len;
    char *z = make_zip("bomb.docx", m, 2, &len);
    free(zeros);
    CHECK(len < 1000000, "the bomb is %zu bytes", len);
    char err[512];
    CHECK_EQ_INT(extract_err("bomb.docx", z, len, err, sizeof err), RAG_ERR_LIMIT);
    CHECK(strstr(err, "bomb.docx") && strstr(err, "zip bomb"), "%s", err);
    free(z);
}

TEST(part_paths_leaving_the_package_are_refused) {
    static const char rels[] =
        "<?xml version=\"1.0\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
        "<Relationship Id=\"r1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
        "officeDocument\" Target=\"word/../../../etc/passwd\"/></Relationships>";
    member m[] = {{"_rels/.rels", rels, 0}, {"word/document.xml", DOCUMENT, 0}};
    size_t len;
    char *z = make_zip("escape.docx", m, 2, &len);
    char err[512];
    CHECK_EQ_INT(extract_err("escape.docx", z, len, err, sizeof err), RAG_ERR_FORMAT);
    CHECK(strstr(err, "escape.docx") && strstr(err, "leaves the package"), "%s", err);
    free(z);
    /* an EPUB chapter with "../" */
    static const char opf[] =
        "<?xml version=\"1.0\"?><package xmlns=\"http://www.idpf.org/2007/opf\"><metadata/><manifest>"
        "<item id=\"c1\" href=\"../../outside.xhtml\" media-type=\"application/xhtml+xml\"/></manifest>"
        "<spine><itemref idref=\"c1\"/></spine></package>";
    member e[] = {{"mimetype", "application/epub+zip", 0}, {"META-INF/container.xml", EPUB_CONTAINER, 0},
                  {"OEBPS/content.opf", opf, 0}};
    z = make_zip("escape.epub", e, 3, &len);
    CHECK_EQ_INT(extract_err("escape.epub", z, len, err, sizeof err), RAG_ERR_FORMAT);
    CHECK(strstr(err, "leaves the package"), "%s", err);
    free(z);
}

TEST(encrypted_documents_are_clear_errors) {
    char err[512];
    /* password-protected OOXML is an OLE2 compound file */
    char ole[1024] = "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";
    CHECK_EQ_INT(extract_err("secret.docx", ole, sizeof ole, err, sizeof err), RAG_ERR_UNSUPPORTED);
    CHECK(strstr(err, "secret.docx") && strstr(err, "password"), "%s", err);
    /* ODF: encryption data in the manifest */
    static const char mf[] =
        "<?xml version=\"1.0\"?><manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\">"
        "<manifest:file-entry manifest:full-path=\"content.xml\" manifest:media-type=\"text/xml\">"
        "<manifest:encryption-data manifest:checksum-type=\"SHA1/1K\" manifest:checksum=\"x\"/>"
        "</manifest:file-entry></manifest:manifest>";
    member m[] = {{"mimetype", "application/vnd.oasis.opendocument.text", 0}, {"META-INF/manifest.xml", mf, 0},
                  {"content.xml", "\x13\x99garbage", 0}};
    size_t len;
    char *z = make_zip("locked.odt", m, 3, &len);
    CHECK_EQ_INT(extract_err("locked.odt", z, len, err, sizeof err), RAG_ERR_UNSUPPORTED);
    CHECK(strstr(err, "locked.odt") && strstr(err, "encrypted"), "%s", err);
    free(z);
    /* a zip entry encrypted with a password (when libzip can write one) */
    char path[1024];
    snprintf(path, sizeof path, "%s/enc.docx", test_tmpdir());
    int ze;
    zip_t *zz = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &ze);
    REQUIRE(zz);
    zip_source_t *s1 = zip_source_buffer(zz, RELS_DOCX, strlen(RELS_DOCX), 0);
    zip_file_add(zz, "_rels/.rels", s1, 0);
    zip_source_t *s2 = zip_source_buffer(zz, DOCUMENT, strlen(DOCUMENT), 0);
    zip_int64_t i = zip_file_add(zz, "word/document.xml", s2, 0);
    bool can = i >= 0 && zip_file_set_encryption(zz, (zip_uint64_t)i, ZIP_EM_AES_256, "pw") == 0;
    if (zip_close(zz) != 0) { zip_discard(zz); can = false; }
    if (!can) {
        printf("  (this libzip cannot write encrypted entries: that case is skipped)\n");
        return;
    }
    z = test_read_file(path, &len);
    CHECK_EQ_INT(extract_err("enc.docx", z, len, err, sizeof err), RAG_ERR_UNSUPPORTED);
    CHECK(strstr(err, "enc.docx") && strstr(err, "encrypted"), "%s", err);
    free(z);
}

TEST(damaged_containers_and_dtds_are_clear_errors) {
    char err[512];
    size_t len;
    char *z = docx_bytes("cut.docx", DOCUMENT, &len);
    /* cut anywhere: never a crash, always a reason naming the file */
    for (size_t cut = 0; cut < len; cut += len / 37 + 1) {
        rag_doc *d = NULL;
        err[0] = 0;
        int rc = rag_extract_memory("cut.docx", z, cut, RAG_DOC_DOCX, NULL, &d, err, sizeof err);
        CHECK(rc != RAG_OK && !d && strstr(err, "cut.docx"), "cut at %zu: rc %d %s", cut, rc, err);
        rag_doc_free(d);
    }
    free(z);
    CHECK_EQ_INT(extract_err("plain.xlsx", "just text", 9, err, sizeof err), RAG_ERR_FORMAT);
    CHECK(strstr(err, "not a zip"), "%s", err);
    /* entity expansion ("billion laughs") is refused, not expanded */
    static const char lol[] =
        "<?xml version=\"1.0\"?><!DOCTYPE w:document [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;"
        "&a;&a;&a;&a;\">]><w:document " W_NS "><w:body><w:p><w:r><w:t>&b;&b;</w:t></w:r></w:p></w:body>"
        "</w:document>";
    z = docx_bytes("lol.docx", lol, &len);
    CHECK_EQ_INT(extract_err("lol.docx", z, len, err, sizeof err), RAG_ERR_FORMAT);
    CHECK(strstr(err, "DTD"), "%s", err);
    free(z);
    /* a missing main part */
    member m[] = {{"_rels/.rels", RELS_DOCX, 0}};
    z = make_zip("empty.docx", m, 1, &len);
    CHECK_EQ_INT(extract_err("empty.docx", z, len, err, sizeof err), RAG_ERR_FORMAT);
    CHECK(strstr(err, "word/document.xml") && strstr(err, "missing"), "%s", err);
    free(z);
}

TEST(walker_takes_office_files_and_citations_name_units) {
    CHECK_EQ_INT(rag_doc_type_from_path("a/B.DOCX"), RAG_DOC_DOCX);
    CHECK_EQ_INT(rag_doc_type_from_path("x.xlsx"), RAG_DOC_XLSX);
    CHECK_EQ_INT(rag_doc_type_from_path("x.pptx"), RAG_DOC_PPTX);
    CHECK_EQ_INT(rag_doc_type_from_path("x.odt"), RAG_DOC_ODT);
    CHECK_EQ_INT(rag_doc_type_from_path("x.ods"), RAG_DOC_ODS);
    CHECK_EQ_INT(rag_doc_type_from_path("x.odp"), RAG_DOC_ODP);
    CHECK_EQ_INT(rag_doc_type_from_path("x.epub"), RAG_DOC_EPUB);
    CHECK_EQ_STR(rag_doc_type_str(RAG_DOC_EPUB), "epub");
    size_t len;
    char dir[1200], path[1300];
    char *z = docx_bytes("policy.docx", DOCUMENT, &len);   /* holds NUL bytes: not "binary" */
    free(z);
    snprintf(dir, sizeof dir, "%s", zip_dir);
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    REQUIRE(test_write_file(path, "hello\n", 6) == 0);
    rag_walk_result r;
    char err[256];
    REQUIRE(rag_walk(dir, NULL, &r, err, sizeof err) == RAG_OK, "%s", err);
    REQUIRE(r.n == 2);
    CHECK_EQ_STR(r.entries[0].rel, "notes.txt");
    CHECK_EQ_STR(r.entries[1].rel, "policy.docx");
    CHECK_EQ_INT(r.entries[1].skip, RAG_SKIP_NONE);
    CHECK_EQ_INT(r.entries[1].type, RAG_DOC_DOCX);
    rag_walk_result_free(&r);
    char tail[64];
    rag_cite_tail("pdf", 3, 0, 0, tail, sizeof tail);
    CHECK_EQ_STR(tail, "#page=3");
    rag_cite_tail("md", 0, 4, 9, tail, sizeof tail);
    CHECK_EQ_STR(tail, ":4-9");
    rag_cite_tail("epub", 4, 0, 0, tail, sizeof tail);
    CHECK_EQ_STR(tail, "#chapter=4");
    rag_cite_tail("odt", 0, 12, 12, tail, sizeof tail);
    CHECK_EQ_STR(tail, "#para=12");
    rag_cite_tail(NULL, 0, 0, 0, tail, sizeof tail);
    CHECK_EQ_STR(tail, "");
}

TEST_MAIN(RUN(docx_structure_tracked_changes_footnotes_tables),
          RUN(xlsx_rows_as_header_value_with_dates_and_shared_strings), RUN(pptx_slides_titles_notes_tables),
          RUN(odt_headings_lists_tables_notes_without_changes_or_comments), RUN(ods_repeated_cells_and_rows),
          RUN(odp_slides_titles_and_notes), RUN(epub_chapters_in_spine_order), RUN(zip_bomb_is_refused_with_a_reason),
          RUN(part_paths_leaving_the_package_are_refused), RUN(encrypted_documents_are_clear_errors),
          RUN(damaged_containers_and_dtds_are_clear_errors), RUN(walker_takes_office_files_and_citations_name_units))
