/* test_rag_extract.c — the extractors: encodings and exact spans for txt/md,
 * Markdown structure, HTML through libxml2, PDF through poppler, errors. */
#define _GNU_SOURCE     /* memmem */
#include "rag/rag.h"
#include "rag/ingest_internal.h"   /* rag_sniff_binary */
#include "tests/test.h"

#include <time.h>
#include <zlib.h>

#include <stdlib.h>

static rag_doc *extract(const char *name, const char *data, size_t len, rag_doc_type type) {
    rag_doc *d = NULL;
    char err[512] = "";
    int rc = rag_extract_memory(name, data, len, type, NULL, &d, err, sizeof err);
    REQUIRE(rc == RAG_OK && d, "%s: rc %d: %s", name, rc, err);
    return d;
}

/* The original bytes of a block with CR removed must equal its text
 * (txt/md in UTF-8: the spans are exact). */
static void check_spans_exact(const rag_doc *d, const char *orig, size_t orig_len) {
    for (size_t i = 0; i < d->n_blocks; i++) {
        const rag_block *b = &d->blocks[i];
        REQUIRE(b->byte_start <= b->byte_end && b->byte_end <= orig_len, "block %zu span in range", i);
        char *s = malloc(b->byte_end - b->byte_start + 1);
        size_t n = 0;
        for (uint64_t k = b->byte_start; k < b->byte_end; k++)
            if (orig[k] != '\r' || (k + 1 < orig_len && orig[k + 1] != '\n')) s[n++] = orig[k] == '\r' ? '\n' : orig[k];
        CHECK(n == b->text_len && memcmp(s, d->text + b->text_off, n) == 0, "block %zu: original \"%.*s\" vs text \"%s\"",
              i, (int)n, s, test_block_text(d, i));
        free(s);
        /* lines: count newlines in the original before the span */
        uint32_t line = 1;
        for (uint64_t k = 0; k < b->byte_start; k++)
            line += orig[k] == '\n' || (orig[k] == '\r' && (k + 1 >= orig_len || orig[k + 1] != '\n'));
        CHECK_EQ_INT(b->line_start, line);
        for (uint64_t k = b->byte_start; k + 1 < b->byte_end; k++)
            line += orig[k] == '\n' || (orig[k] == '\r' && orig[k + 1] != '\n');
        CHECK_EQ_INT(b->line_end, line);
    }
}

TEST(txt_paragraphs_and_exact_spans) {
    const char *src = "  Hello world.  \n\nSecond paragraph\nspans two lines.\n\n\n\tThird.\n";
    rag_doc *d = extract("a.txt", src, strlen(src), RAG_DOC_TXT);
    CHECK_EQ_INT(d->n_blocks, 3);
    CHECK_EQ_STR(test_block_text(d, 0), "Hello world.");
    CHECK_EQ_STR(test_block_text(d, 1), "Second paragraph\nspans two lines.");
    CHECK_EQ_STR(test_block_text(d, 2), "Third.");
    CHECK_EQ_INT(d->blocks[1].line_start, 3);
    CHECK_EQ_INT(d->blocks[1].line_end, 4);
    CHECK_EQ_INT(d->blocks[2].line_start, 7);
    CHECK(d->exact_spans);
    CHECK_EQ_STR(d->encoding, "UTF-8");
    check_spans_exact(d, src, strlen(src));
    rag_doc_free(d);
}

TEST(txt_crlf_normalised_spans_original) {
    const char *src = "A line\r\nand more\r\n\r\nC para\rold mac line\r\n";
    rag_doc *d = extract("crlf.txt", src, strlen(src), RAG_DOC_TXT);
    CHECK_EQ_STR(d->text, "A line\nand more\n\nC para\nold mac line\n");
    CHECK_EQ_INT(d->n_blocks, 2);
    CHECK_EQ_INT(d->blocks[0].byte_start, 0);
    CHECK_EQ_INT(d->blocks[0].byte_end, 16);   /* "A line\r\nand more" */
    CHECK_EQ_INT(d->blocks[1].byte_start, 20);
    CHECK_EQ_INT(d->blocks[1].line_start, 4);
    CHECK_EQ_INT(d->blocks[1].line_end, 5);
    check_spans_exact(d, src, strlen(src));
    rag_doc_free(d);
}

TEST(txt_bom_latin1_utf16) {
    const char *bom = "\xEF\xBB\xBFHi there";
    rag_doc *d = extract("bom.txt", bom, strlen(bom), RAG_DOC_TXT);
    CHECK_EQ_STR(d->text, "Hi there");
    CHECK_EQ_INT(d->blocks[0].byte_start, 3);
    CHECK_EQ_INT(d->blocks[0].byte_end, 11);
    rag_doc_free(d);

    const char *l1 = "Die Stra\xDF" "e f\xFChrt\r\nzum \x80-Automaten.";
    d = extract("latin1.txt", l1, strlen(l1), RAG_DOC_TXT);
    CHECK_EQ_STR(d->encoding, "WINDOWS-1252");
    CHECK_EQ_STR(d->text, "Die Straße führt\nzum €-Automaten.");
    CHECK_EQ_INT(d->n_blocks, 1);
    CHECK_EQ_INT(d->blocks[0].byte_end, strlen(l1));
    /* "führt" starts at byte 11 of the original and at 12 of the text */
    const char *f = strstr(d->text, "führt");
    CHECK_EQ_INT(f - d->text, 12);
    CHECK_EQ_INT(rag_doc_orig_offset(d, (size_t)(f - d->text)), 11);
    CHECK_EQ_INT(rag_doc_orig_offset(d, (size_t)(f - d->text) + 3), 13);   /* after "fü" */
    const char *z = strstr(d->text, "zum");
    CHECK_EQ_INT(rag_doc_orig_offset(d, (size_t)(z - d->text)), 18);
    CHECK_EQ_INT(rag_doc_line_at(d, (size_t)(z - d->text)), 2);
    rag_doc_free(d);

    /* UTF-16LE with BOM: "Grüße\r\n€" */
    const unsigned char u16[] = {0xFF, 0xFE, 'G', 0, 'r', 0, 0xFC, 0, 0xDF, 0, 'e', 0, '\r', 0, '\n', 0, 0xAC, 0x20,
                                 0x3D, 0xD8, 0x00, 0xDE};
    d = extract("u16.txt", (const char *)u16, sizeof u16, RAG_DOC_TXT);
    CHECK_EQ_STR(d->encoding, "UTF-16LE");
    CHECK_EQ_STR(d->text, "Grüße\n€\xF0\x9F\x98\x80");
    CHECK_EQ_INT(d->n_blocks, 1);
    CHECK_EQ_INT(d->blocks[0].byte_start, 2);
    CHECK_EQ_INT(d->blocks[0].byte_end, sizeof u16);
    const char *e = strstr(d->text, "€");
    CHECK_EQ_INT(rag_doc_orig_offset(d, (size_t)(e - d->text)), 16);
    CHECK_EQ_INT(rag_doc_orig_offset(d, (size_t)(e - d->text) + 3), 18);
    rag_doc_free(d);
}

TEST(utf32_with_a_bom_is_read_as_utf32) {
    /* "Grüße\r\n€😀" in UTF-32 LE and BE with their marks: the LE mark starts
     * like UTF-16LE's, which used to win (and read it as garbage) */
    const uint32_t cps[] = {'G', 'r', 0xFC, 0xDF, 'e', '\r', '\n', 0x20AC, 0x1F600};
    for (int be = 0; be <= 1; be++) {
        unsigned char buf[4 + 4 * 9];
        uint32_t all[10] = {0xFEFF};
        memcpy(all + 1, cps, sizeof cps);
        for (int i = 0; i < 10; i++)
            for (int k = 0; k < 4; k++) buf[4 * i + k] = (unsigned char)(all[i] >> (8 * (be ? 3 - k : k)));
        rag_doc *d = extract(be ? "u32be.txt" : "u32le.txt", (const char *)buf, sizeof buf, RAG_DOC_TXT);
        CHECK_EQ_STR(d->encoding, be ? "UTF-32BE" : "UTF-32LE");
        CHECK_EQ_STR(d->text, "Grüße\n€\xF0\x9F\x98\x80");
        CHECK_EQ_INT(d->blocks[0].byte_start, 4);
        CHECK_EQ_INT(d->blocks[0].byte_end, sizeof buf);
        const char *e = strstr(d->text, "€");
        CHECK_EQ_INT(rag_doc_orig_offset(d, (size_t)(e - d->text)), 4 + 4 * 7);
        CHECK_EQ_INT(rag_doc_line_at(d, (size_t)(e - d->text)), 2);
        rag_doc_free(d);
        /* and the walker takes it for text, not binary */
        CHECK(!rag_sniff_binary(buf, sizeof buf), "UTF-32%s sniffed as binary", be ? "BE" : "LE");
    }
    /* a code point past U+10FFFF becomes U+FFFD */
    const unsigned char bad[] = {0xFF, 0xFE, 0, 0, 'A', 0, 0, 0, 0, 0, 0x11, 0, 'B', 0, 0, 0};
    rag_doc *d = extract("u32bad.txt", (const char *)bad, sizeof bad, RAG_DOC_TXT);
    CHECK_EQ_STR(d->text, "A\xEF\xBF\xBD" "B");
    rag_doc_free(d);
}

TEST(html_doctype_internal_subset_is_not_text) {
    const char *h = "<!-- generated -->\n<!DOCTYPE html [\n  <!ENTITY secret \"Hiddenvalue > ] text\">\n"
                    "  <!ELEMENT foo (#PCDATA)>\n  <!-- a ] comment > -->\n]>\n"
                    "<html><head><title>T</title></head><body><p>Visible &amp; fine.</p></body></html>\n";
    rag_doc *d = extract("dt.html", h, strlen(h), RAG_DOC_HTML);
    CHECK_EQ_STR(d->text, "Visible & fine.");
    CHECK(!strstr(d->text, "ELEMENT") && !strstr(d->text, "Hiddenvalue") && !strstr(d->text, "]"), "%s", d->text);
    CHECK_EQ_INT(d->n_blocks, 1);
    if (d->n_blocks) CHECK_EQ_INT(d->blocks[0].line_start, 7);     /* line numbers kept */
    rag_doc_free(d);
    /* a DOCTYPE without a subset, and one with brackets in a quoted id */
    const char *h2 = "<!DOCTYPE html PUBLIC \"-//X//DTD [odd]//EN\" \"x.dtd\"><p>Plain.</p>";
    d = extract("dt2.html", h2, strlen(h2), RAG_DOC_HTML);
    CHECK_EQ_STR(d->text, "Plain.");
    rag_doc_free(d);
}

TEST(txt_bad_bytes_are_clear_errors) {
    rag_doc *d = NULL;
    char err[512] = "";
    CHECK_EQ_INT(rag_extract_memory("bin.txt", "ab\0cd", 5, RAG_DOC_TXT, NULL, &d, err, sizeof err), RAG_ERR_FORMAT);
    CHECK(d == NULL);
    CHECK(strstr(err, "bin.txt") && strstr(err, "NUL"), "%s", err);
    /* mostly high bytes: not plausibly Latin-1 */
    char junk[64];
    for (int i = 0; i < 64; i++) junk[i] = (char)(0x80 + (i * 37) % 128);
    CHECK_EQ_INT(rag_extract_memory("junk.md", junk, sizeof junk, RAG_DOC_MD, NULL, &d, err, sizeof err), RAG_ERR_FORMAT);
    CHECK(strstr(err, "junk.md") && strstr(err, "UTF-8"), "%s", err);
    /* control bytes become spaces, offsets unchanged */
    d = extract("ctl.txt", "a\x01" "b\x7f" "c", 5, RAG_DOC_TXT);
    CHECK_EQ_STR(d->text, "a b c");
    rag_doc_free(d);
    /* empty: no blocks, no error */
    d = extract("empty.txt", "", 0, RAG_DOC_TXT);
    CHECK_EQ_INT(d->n_blocks, 0);
    CHECK_EQ_STR(d->text, "");
    rag_doc_free(d);
    /* limits */
    rag_extract_params p = rag_extract_default_params();
    p.max_text_bytes = 10;
    CHECK_EQ_INT(rag_extract_memory("long.txt", "0123456789abc", 13, RAG_DOC_TXT, &p, &d, err, sizeof err), RAG_ERR_LIMIT);
    CHECK(strstr(err, "long.txt") != NULL, "%s", err);
    /* missing file */
    CHECK_EQ_INT(rag_extract_file("/nonexistent/x.md", RAG_DOC_UNKNOWN, NULL, &d, err, sizeof err), RAG_ERR_IO);
    CHECK(strstr(err, "/nonexistent/x.md") != NULL, "%s", err);
}

TEST(md_structure) {
    const char *src =
        "# Install\n"
        "\n"
        "Intro text\n"
        "on two lines.\n"
        "\n"
        "## Debian ##\n"
        "- first item\n"
        "- second item\n"
        "  continued\n"
        "\n"
        "```sh\n"
        "# not a heading\n"
        "apt-get install mrag\n"
        "```\n"
        "Setext Title\n"
        "============\n"
        "Sub title\n"
        "---------\n"
        "\n"
        "***\n"
        "#hashtag is text\n"
        "~~~\n"
        "unclosed fence\n";
    rag_doc *d = extract("doc.md", src, strlen(src), RAG_DOC_MD);
    const struct { rag_block_kind kind; int level; const char *text; uint32_t line; } want[] = {
        {RAG_BLOCK_HEADING, 1, "Install", 1},
        {RAG_BLOCK_PARAGRAPH, 0, "Intro text\non two lines.", 3},
        {RAG_BLOCK_HEADING, 2, "Debian", 6},
        {RAG_BLOCK_LIST_ITEM, 0, "- first item", 7},
        {RAG_BLOCK_LIST_ITEM, 0, "- second item\n  continued", 8},
        {RAG_BLOCK_CODE, 0, "# not a heading\napt-get install mrag", 12},
        {RAG_BLOCK_HEADING, 1, "Setext Title", 15},
        {RAG_BLOCK_HEADING, 2, "Sub title", 17},
        {RAG_BLOCK_PARAGRAPH, 0, "#hashtag is text", 21},
        {RAG_BLOCK_CODE, 0, "unclosed fence", 23},
    };
    size_t nw = sizeof want / sizeof want[0];
    CHECK_EQ_INT(d->n_blocks, nw);
    for (size_t i = 0; i < nw && i < d->n_blocks; i++) {
        CHECK_EQ_INT(d->blocks[i].kind, want[i].kind);
        CHECK_EQ_INT(d->blocks[i].level, want[i].level);
        CHECK_EQ_STR(test_block_text(d, i), want[i].text);
        CHECK_EQ_INT(d->blocks[i].line_start, want[i].line);
    }
    CHECK_EQ_STR(d->title, "Install");
    check_spans_exact(d, src, strlen(src));
    rag_doc_free(d);
}

static const char *html_src =
    "<!DOCTYPE html>\n"
    "<html><head><title>  Reise\n kosten </title><style>p{color:red}</style>\n"
    "<script>var x = \"<p>script text</p>\";</script></head>\n"
    "<body>\n"
    "<nav><a href=\"/\">Navigation link</a></nav>\n"
    "<header>Site header</header>\n"
    "<h1>Travel &amp; Expenses</h1>\n"
    "<p>First paragraph with\n"
    "   a line break &eacute; &#8364; and <b>bold</b> text.</p>\n"
    "<ul><li>Item one</li><li>Item <em>two</em>\n"
    "</li></ul>\n"
    "<table><tr><td>Cell A</td><th>Cell B</th></tr></table>\n"
    "<h3>Details</h3>\n"
    "<pre>\n"
    "code  line 1\n"
    "  line 2\n"
    "</pre>\n"
    "<aside>Aside text</aside><noscript>Noscript text</noscript><template><p>Template text</p></template>\n"
    "<footer>Footer text</footer>\n"
    "<p>Unclosed <b>bold\n"
    "</body></html>\n";

TEST(html_structure) {
    rag_doc *d = extract("page.html", html_src, strlen(html_src), RAG_DOC_HTML);
    CHECK_EQ_STR(d->title, "Reise kosten");
    const char *gone[] = {"script text", "color", "Navigation", "Site header", "Aside", "Noscript", "Template", "Footer"};
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
        CHECK(strstr(d->text, gone[i]) == NULL, "\"%s\" dropped", gone[i]);
    const struct { rag_block_kind kind; int level; const char *text; uint32_t l0, l1; } want[] = {
        {RAG_BLOCK_HEADING, 1, "Travel & Expenses", 8, 8},
        {RAG_BLOCK_PARAGRAPH, 0, "First paragraph with a line break é € and bold text.", 9, 10},
        {RAG_BLOCK_LIST_ITEM, 0, "Item one", 11, 11},
        {RAG_BLOCK_LIST_ITEM, 0, "Item two", 11, 11},
        {RAG_BLOCK_TABLE_CELL, 0, "Cell A", 13, 13},
        {RAG_BLOCK_TABLE_CELL, 0, "Cell B", 13, 13},
        {RAG_BLOCK_HEADING, 3, "Details", 14, 14},
        {RAG_BLOCK_CODE, 0, "code  line 1\n  line 2", 15, 18},
        {RAG_BLOCK_PARAGRAPH, 0, "Unclosed bold", 21, 22},
    };
    size_t nw = sizeof want / sizeof want[0];
    CHECK_EQ_INT(d->n_blocks, nw);
    for (size_t i = 0; i < nw && i < d->n_blocks; i++) {
        CHECK_EQ_INT(d->blocks[i].kind, want[i].kind);
        CHECK_EQ_INT(d->blocks[i].level, want[i].level);
        CHECK_EQ_STR(test_block_text(d, i), want[i].text);
        /* the line span holds the block (libxml2 may end a block on the
         * line where its closing tag sits) */
        CHECK(d->blocks[i].line_start == want[i].l0, "block %zu starts on line %u, want %u", i, d->blocks[i].line_start, want[i].l0);
        CHECK(d->blocks[i].line_end >= want[i].l1 && d->blocks[i].line_end <= want[i].l1 + 1,
              "block %zu ends on line %u, want %u", i, d->blocks[i].line_end, want[i].l1);
        /* the byte span is those lines of the original */
        const rag_block *b = &d->blocks[i];
        CHECK(b->byte_start < b->byte_end && b->byte_end <= strlen(html_src));
        CHECK(b->byte_start == 0 || html_src[b->byte_start - 1] == '\n', "block %zu byte span starts a line", i);
    }
    CHECK(!d->exact_spans);
    rag_doc_free(d);
}

TEST(html_bad_input_never_crashes) {
    const char *cases[] = {
        "", "<", "<<<>>>", "<p", "</p></p></div>", "<html><body><p>a<p>b<p>c", "&#xFFFFFFFF; &#0; &bogus;",
        "<pre>\n\n\n</pre>", "<script>never closed", "<!-- comment never closed", "<title></title>",
        "<h1><h2><h3>x</h1>", "\xff\xfe<\0p\0>\0", "<meta charset=\"latin1\"><p>Stra\xdf" "e</p>",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rag_doc *d = NULL;
        char err[512] = "";
        size_t len = strlen(cases[i]);
        if (i == 12) len = 8;
        int rc = rag_extract_memory("bad.html", cases[i], len, RAG_DOC_HTML, NULL, &d, err, sizeof err);
        CHECK(rc == RAG_OK || (rc == RAG_ERR_FORMAT && strstr(err, "bad.html")), "case %zu: rc %d %s", i, rc, err);
        if (d) CHECK(strlen(d->text) == d->text_len, "case %zu: text length", i);
        rag_doc_free(d);
    }
    /* a declared charset is honoured */
    rag_doc *d = extract("l1.html", cases[13], strlen(cases[13]), RAG_DOC_HTML);
    CHECK(strstr(d->text, "Straße") != NULL, "latin1 page decoded: %s", d->text);
    rag_doc_free(d);
}

TEST(html_deep_nesting_is_bounded) {
    int depth = getenv("MRAG_ASAN") ? 3000 : 20000;
    size_t cap = (size_t)depth * 12 + 64;
    char *s = malloc(cap);
    size_t n = 0;
    for (int i = 0; i < depth; i++) n += (size_t)snprintf(s + n, cap - n, "<div><b>");
    n += (size_t)snprintf(s + n, cap - n, "deep");
    rag_doc *d = NULL;
    char err[512] = "";
    int rc = rag_extract_memory("deep.html", s, n, RAG_DOC_HTML, NULL, &d, err, sizeof err);
    CHECK(rc == RAG_ERR_LIMIT && strstr(err, "deep.html") && strstr(err, "nested"), "rc %d: %s", rc, err);
    CHECK(d == NULL);
    /* 100 levels (200 elements) are fine and keep the text */
    n = 0;
    for (int i = 0; i < 100; i++) n += (size_t)snprintf(s + n, cap - n, "<div><b>");
    n += (size_t)snprintf(s + n, cap - n, "deep text");
    rc = rag_extract_memory("ok.html", s, n, RAG_DOC_HTML, NULL, &d, err, sizeof err);
    CHECK(rc == RAG_OK, "rc %d: %s", rc, err);
    if (d) CHECK_EQ_STR(d->text, "deep text");
    rag_doc_free(d);
    /* our own walk limit applies below the parser's */
    rag_extract_params p = rag_extract_default_params();
    p.max_depth = 50;
    d = NULL;
    rc = rag_extract_memory("mid.html", s, n, RAG_DOC_HTML, &p, &d, err, sizeof err);
    CHECK(rc == RAG_ERR_LIMIT && strstr(err, "mid.html") && strstr(err, "50"), "rc %d: %s", rc, err);
    free(s);
}

/* Writes a PDF with tests/gen_sample_pdf.sh; returns its path. */
static const char *make_pdf(const char *text, const char *title) {
    static char pdf[700];
    const char *dir = test_tmpdir();
    char txt[700], cmd[2200];
    snprintf(txt, sizeof txt, "%s/in.txt", dir);
    snprintf(pdf, sizeof pdf, "%s/out.pdf", dir);
    REQUIRE(test_write_file(txt, text, strlen(text)) == 0);
    snprintf(cmd, sizeof cmd, "sh tests/gen_sample_pdf.sh %s %s %s 2>&1", test_shq(txt), test_shq(pdf), test_shq(title));
    int st = 0;
    char *out = test_run_capture(cmd, &st);
    REQUIRE(out && st == 0, "gen_sample_pdf.sh failed: %s", out ? out : "");
    free(out);
    return pdf;
}

TEST(pdf_pages_and_text) {
    const char *pdf = make_pdf("Seite eins: Die Straße mit Äpfeln.\nZweite Zeile (mit Klammern).\n\n"
                               "Neuer Absatz auf Seite eins.\n<<<PAGE>>>\nPage two: the VPN gateway is vpn.example.com.\n"
                               "<<<PAGE>>>\nPage three.\n",
                               "Testdokument");
    rag_doc *d = NULL;
    char err[512] = "";
    REQUIRE(rag_extract_file(pdf, RAG_DOC_UNKNOWN, NULL, &d, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_EQ_INT(d->type, RAG_DOC_PDF);
    CHECK_EQ_INT(d->n_pages, 3);
    CHECK_EQ_STR(d->title, "Testdokument");
    REQUIRE(d->n_blocks >= 3, "%zu blocks", d->n_blocks);
    CHECK_EQ_INT(d->blocks[0].page, 1);
    CHECK(strstr(test_block_text(d, 0), "Die Straße mit Äpfeln.") != NULL, "page 1: %s", test_block_text(d, 0));
    bool p2 = false, p3 = false;
    for (size_t i = 0; i < d->n_blocks; i++) {
        if (strstr(test_block_text(d, i), "vpn.example.com")) p2 = d->blocks[i].page == 2;
        if (strstr(test_block_text(d, i), "Page three.")) p3 = d->blocks[i].page == 3;
        CHECK(i == 0 || d->blocks[i].page >= d->blocks[i - 1].page, "pages in order");
        CHECK_EQ_INT(d->blocks[i].line_start, 0);
    }
    CHECK(p2 && p3, "text found on pages 2 and 3");
    rag_doc_free(d);
}

TEST(pdf_damaged_and_encrypted) {
    rag_doc *d = NULL;
    char err[512] = "";
    const char *junk = "%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage garbage\n";
    int rc = rag_extract_memory("junk.pdf", junk, strlen(junk), RAG_DOC_PDF, NULL, &d, err, sizeof err);
    CHECK_EQ_INT(rc, RAG_ERR_FORMAT);
    CHECK(strstr(err, "junk.pdf") && strstr(err, "damaged"), "%s", err);
    rc = rag_extract_memory("notpdf.pdf", "hello", 5, RAG_DOC_PDF, NULL, &d, err, sizeof err);
    CHECK_EQ_INT(rc, RAG_ERR_FORMAT);
    CHECK(strstr(err, "notpdf.pdf") && strstr(err, "not a PDF"), "%s", err);
    /* a valid PDF made encrypted by a standard security handler whose
     * password is not the empty one */
    const char *pdf = make_pdf("Secret text.\n", "Secret");
    size_t len;
    char *raw = test_read_file(pdf, &len);
    REQUIRE(raw);
    char *tr = strstr(raw, "trailer\n<<");
    REQUIRE(tr, "trailer found");
    const char *enc =
        " /Encrypt << /Filter /Standard /V 1 /R 2 /P -44"
        " /O <0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF>"
        " /U <FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210> >>"
        " /ID [<00112233445566778899AABBCCDDEEFF> <00112233445566778899AABBCCDDEEFF>]";
    size_t head = (size_t)(tr - raw) + strlen("trailer\n<<");
    char *enc_pdf = malloc(len + strlen(enc) + 1);
    memcpy(enc_pdf, raw, head);
    memcpy(enc_pdf + head, enc, strlen(enc));
    memcpy(enc_pdf + head + strlen(enc), raw + head, len - head);
    rc = rag_extract_memory("locked.pdf", enc_pdf, len + strlen(enc), RAG_DOC_PDF, NULL, &d, err, sizeof err);
    CHECK_EQ_INT(rc, RAG_ERR_UNSUPPORTED);
    CHECK(strstr(err, "locked.pdf") && strstr(err, "encrypted"), "%s", err);
    CHECK(d == NULL);
    free(enc_pdf);
    /* every truncation of a small PDF: a clean answer, never a crash */
    for (size_t cut = 0; cut < len; cut += getenv("MRAG_ASAN") ? 97 : 13) {
        rc = rag_extract_memory("cut.pdf", raw, cut, RAG_DOC_PDF, NULL, &d, err, sizeof err);
        CHECK(rc == RAG_OK || rc == RAG_ERR_FORMAT, "cut at %zu: rc %d %s", cut, rc, err);
        rag_doc_free(d);
        d = NULL;
    }
    free(raw);
}

TEST(sample_corpus_extracts) {
    rag_walk_result r;
    char err[512];
    REQUIRE(rag_walk("data/sample", NULL, &r, err, sizeof err) == RAG_OK, "%s", err);
    size_t ok = 0;
    bool german = false;
    for (size_t i = 0; i < r.n; i++) {
        if (r.entries[i].skip != RAG_SKIP_NONE) continue;
        rag_doc *d = NULL;
        int rc = rag_extract_file(r.entries[i].path, r.entries[i].type, NULL, &d, err, sizeof err);
        CHECK(rc == RAG_OK, "%s", err);
        if (!d) continue;
        CHECK(d->n_blocks >= 3, "%s: %zu blocks", r.entries[i].rel, d->n_blocks);
        CHECK(d->title && d->title[0], "%s has a title", r.entries[i].rel);
        if (strstr(d->text, "Mitarbeiter")) german = true;
        ok++;
        rag_doc_free(d);
    }
    CHECK(ok >= 15, "%zu documents", ok);
    CHECK(german, "German documents present");
    rag_walk_result_free(&r);
}

TEST(sample_corpus_with_generated_pdf) {
    const char *dest = test_tmpdir();
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sh tests/gen_sample_pdf.sh --corpus %s 2>&1", test_shq(dest));
    int st = 0;
    char *out = test_run_capture(cmd, &st);
    REQUIRE(out && st == 0, "gen_sample_pdf.sh --corpus failed: %s", out ? out : "");
    free(out);
    rag_walk_result r;
    char err[512];
    REQUIRE(rag_walk(dest, NULL, &r, err, sizeof err) == RAG_OK, "%s", err);
    const rag_walk_entry *pdf = NULL;
    for (size_t i = 0; i < r.n; i++)
        if (strcmp(r.entries[i].rel, "it/it-security-guidelines.pdf") == 0) pdf = &r.entries[i];
    REQUIRE(pdf && pdf->skip == RAG_SKIP_NONE && pdf->type == RAG_DOC_PDF, "the corpus holds the generated PDF");
    CHECK(r.n_files >= 19, "%zu files", r.n_files);
    rag_doc *d = NULL;
    REQUIRE(rag_extract_file(pdf->path, pdf->type, NULL, &d, err, sizeof err) == RAG_OK, "%s", err);
    CHECK_EQ_INT(d->n_pages, 3);
    CHECK_EQ_STR(d->title, "IT Security Guidelines");
    bool p1 = false, p2 = false, p3 = false;
    for (size_t i = 0; i < d->n_blocks; i++) {
        const char *t = test_block_text(d, i);
        p1 |= d->blocks[i].page == 1 && strstr(t, "within 2 hours") != NULL;
        p2 |= d->blocks[i].page == 2 && strstr(t, "within 72 hours") != NULL;
        p3 |= d->blocks[i].page == 3 && strstr(t, "4. Classification") != NULL;
    }
    CHECK(p1 && p2 && p3, "facts found on pages 1, 2 and 3 (%d %d %d)", p1, p2, p3);
    rag_doc_free(d);
    rag_walk_result_free(&r);
}

TEST(html_line_numbers_past_65535) {
    /* libxml2 keeps line numbers in 16 bits unless asked for big lines */
    size_t lines = 70000, cap = lines * 12 + 128, n = 0;
    char *s = malloc(cap);
    n += (size_t)snprintf(s + n, cap - n, "<html><body>\n");
    for (size_t i = 0; i < lines; i++) n += (size_t)snprintf(s + n, cap - n, "<!-- x -->\n");
    n += (size_t)snprintf(s + n, cap - n, "<h2>Far</h2>\n<p>far\ndown</p>\n</body></html>\n");
    rag_doc *d = extract("far.html", s, n, RAG_DOC_HTML);
    REQUIRE(d->n_blocks == 2, "%zu blocks", d->n_blocks);
    CHECK_EQ_INT(d->blocks[0].line_start, lines + 2);
    CHECK_EQ_INT(d->blocks[1].line_start, lines + 3);
    CHECK_EQ_INT(d->blocks[1].line_end, lines + 4);
    CHECK(memcmp(s + d->blocks[1].byte_start, "<p>far\ndown</p>\n", 16) == 0, "byte span starts at the <p> line");
    rag_doc_free(d);
    free(s);
}

TEST(mixed_tree_bad_files_reported_rest_extracted) {
    /* what `mrag ingest` sees: corrupt, binary, huge, non-UTF-8 and
     * unsupported files next to good ones */
    const char *dir = test_tmpdir();
    char p[800];
    struct { const char *name; const char *data; size_t len; } files[] = {
        {"good.md", "# Good\n\nA good file.\n", 21},
        {"good.html", "<h1>Good</h1><p>Also good.</p>", 30},
        {"latin1.txt", "Gr\xfc\xdf" "e aus K\xf6ln\n", 15},
        {"corrupt.pdf", "%PDF-1.7\nthis is not a PDF body at all\n", 39},
        {"notpdf.pdf", "GIF89a....", 10},
        {"binary.txt", "ab\0\0\1\2cd", 8},
        {"junk.txt", "\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc\xf0\x90\x28\xbc\xf8\xa1\xa1\xa1\xa1", 20},
        {"huge.txt", NULL, 5000},
        {"tool.exe", "MZ", 2},
    };
    char *huge = malloc(5000);
    memset(huge, 'x', 5000);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i].name);
        REQUIRE(test_write_file(p, files[i].data ? files[i].data : huge, files[i].len) == 0);
    }
    free(huge);
    rag_walk_params wp = rag_walk_default_params();
    wp.max_file_bytes = 4096;
    rag_walk_result r;
    char err[512];
    REQUIRE(rag_walk(dir, &wp, &r, err, sizeof err) == RAG_OK, "%s", err);
    int extracted = 0, failed = 0, skipped = 0;
    for (size_t i = 0; i < r.n; i++) {
        const rag_walk_entry *e = &r.entries[i];
        if (e->skip != RAG_SKIP_NONE) {
            skipped++;
            if (!strcmp(e->rel, "binary.txt")) CHECK_EQ_INT(e->skip, RAG_SKIP_BINARY);
            if (!strcmp(e->rel, "huge.txt")) CHECK_EQ_INT(e->skip, RAG_SKIP_TOO_LARGE);
            if (!strcmp(e->rel, "tool.exe")) CHECK_EQ_INT(e->skip, RAG_SKIP_EXTENSION);
            continue;
        }
        rag_doc *d = NULL;
        err[0] = 0;
        int rc = rag_extract_file(e->path, e->type, NULL, &d, err, sizeof err);
        if (rc == RAG_OK) {
            extracted++;
            CHECK(d->n_blocks >= 1, "%s has text", e->rel);
            rag_doc_free(d);
        } else {
            failed++;
            CHECK(strstr(err, e->path) != NULL, "the error names the file: %s", err);
            CHECK(!strcmp(e->rel, "corrupt.pdf") || !strcmp(e->rel, "notpdf.pdf") || !strcmp(e->rel, "junk.txt"),
                  "unexpected failure: %s", err);
        }
    }
    CHECK_EQ_INT(extracted, 3);
    CHECK_EQ_INT(failed, 3);
    CHECK_EQ_INT(skipped, 3);
    rag_walk_result_free(&r);
}

TEST(md_front_matter) {
    const char *src = "---\ntitle: \"Release Checklist\"\ndate: 2026-01-02\ntags: [a, b]\n---\n\nFirst paragraph.\n\n## Steps\nDo it.\n";
    rag_doc *d = extract("fm.md", src, strlen(src), RAG_DOC_MD);
    CHECK_EQ_STR(d->title, "Release Checklist");
    REQUIRE(d->n_blocks == 3, "%zu blocks", d->n_blocks);
    CHECK_EQ_STR(test_block_text(d, 0), "First paragraph.");
    CHECK_EQ_INT(d->blocks[0].line_start, 7);
    CHECK_EQ_INT(d->blocks[1].kind, RAG_BLOCK_HEADING);
    check_spans_exact(d, src, strlen(src));
    rag_doc_free(d);
    /* a lone --- rule that is never closed is not front matter */
    const char *rule = "---\nJust text.\n";
    d = extract("rule.md", rule, strlen(rule), RAG_DOC_MD);
    REQUIRE(d->n_blocks == 1, "%zu blocks", d->n_blocks);
    CHECK_EQ_STR(test_block_text(d, 0), "Just text.");
    rag_doc_free(d);
}

/* ---------------------------------------------------------------- budgets
 * Issue 10, item 11: hostile files are refused under the per-file budget,
 * quickly, with a reason naming the budget. */

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Extracts with params p; returns the status, the reason in err and the CPU
 * seconds it took. */
static int extract_with(const char *name, const void *data, size_t len, const rag_extract_params *p, char *err,
                        size_t errlen, double *cpu) {
    rag_doc *d = NULL;
    double t0 = cpu_now();
    err[0] = 0;
    int rc = rag_extract_memory(name, data, len, RAG_DOC_UNKNOWN, p, &d, err, errlen);
    *cpu = cpu_now() - t0;
    if (rc == RAG_OK) REQUIRE(d != NULL);
    else REQUIRE(d == NULL);
    rag_doc_free(d);
    return rc;
}

TEST(html_with_200000_attributes_is_refused_at_once) {
    /* the reproduction of the issue: 2.2 MB, 200,000 attributes on one element */
    size_t cap = 3u << 20, n = 0;
    char *h = malloc(cap);
    REQUIRE(h);
    n += (size_t)snprintf(h + n, cap - n, "<html><body><p>before</p><div");
    for (int i = 0; i < 200000; i++) n += (size_t)snprintf(h + n, cap - n, " a%d=x", i);
    n += (size_t)snprintf(h + n, cap - n, ">text</div></body></html>");
    char err[512];
    double cpu;
    rag_extract_params p = rag_extract_default_params();
    CHECK_EQ_INT(extract_with("attrs.html", h, n, &p, err, sizeof err, &cpu), RAG_ERR_LIMIT);
    CHECK(strstr(err, "attrs.html") && strstr(err, "200000 attributes") && strstr(err, "refused"), "%s", err);
    CHECK(cpu < 1.0, "took %.2f s of CPU", cpu);
    /* quoted values with '>' and spaces, script text and comments do not count */
    n = 0;
    n += (size_t)snprintf(h + n, cap - n, "<html><body><!-- <x");
    for (int i = 0; i < 1000; i++) n += (size_t)snprintf(h + n, cap - n, " c%d", i);
    n += (size_t)snprintf(h + n, cap - n, " --><script>var s = \"<y");
    for (int i = 0; i < 1000; i++) n += (size_t)snprintf(h + n, cap - n, " s%d", i);
    n += (size_t)snprintf(h + n, cap - n, "\";</script><p title=\"a > b");
    for (int i = 0; i < 1000; i++) n += (size_t)snprintf(h + n, cap - n, " t%d", i);
    n += (size_t)snprintf(h + n, cap - n, "\" class='x'>Kept paragraph.</p></body></html>");
    CHECK_EQ_INT(extract_with("ok.html", h, n, &p, err, sizeof err, &cpu), RAG_OK);
    /* an element at the limit passes, one past it does not */
    for (int extra = 0; extra <= 1; extra++) {
        n = (size_t)snprintf(h, cap, "<html><body><div");
        for (int i = 0; i < p.max_attributes + extra; i++) n += (size_t)snprintf(h + n, cap - n, " a%d=\"v\"", i);
        n += (size_t)snprintf(h + n, cap - n, ">x</div></body></html>");
        CHECK_EQ_INT(extract_with("edge.html", h, n, &p, err, sizeof err, &cpu), extra ? RAG_ERR_LIMIT : RAG_OK);
    }
    free(h);
}

TEST(cpu_budget_stops_a_long_extraction) {
    /* 4 MB of small elements: linear, but more than a 10 ms budget */
    size_t cap = 5u << 20, n = 0;
    char *h = malloc(cap);
    REQUIRE(h);
    n += (size_t)snprintf(h + n, cap - n, "<html><body>");
    while (n + 64 < cap - 64 && n < (4u << 20)) n += (size_t)snprintf(h + n, cap - n, "<p><b>word</b> and <i>more</i></p>\n");
    n += (size_t)snprintf(h + n, cap - n, "</body></html>");
    rag_extract_params p = rag_extract_default_params();
    p.budget.cpu_seconds = 0.01;
    char err[512];
    double cpu;
    CHECK_EQ_INT(extract_with("long.html", h, n, &p, err, sizeof err, &cpu), RAG_ERR_LIMIT);
    CHECK(strstr(err, "CPU time") && strstr(err, "long.html"), "%s", err);
    CHECK(cpu < 0.5, "stopped after %.2f s", cpu);
    /* the same file with the default budget extracts */
    p = rag_extract_default_params();
    CHECK_EQ_INT(extract_with("long.html", h, n, &p, err, sizeof err, &cpu), RAG_OK);
    /* a long text file too */
    p.budget.cpu_seconds = 0.001;
    memset(h, 'a', n);
    for (size_t i = 80; i < n; i += 81) h[i] = '\n';
    CHECK_EQ_INT(extract_with("long.txt", h, n, &p, err, sizeof err, &cpu), RAG_ERR_LIMIT);
    CHECK(strstr(err, "CPU time"), "%s", err);
    free(h);
}

/* A PDF in memory: objs are the bodies of objects 1..n (catalog first). */
static unsigned char *pdf_build(char **objs, int n, size_t *len) {
    size_t cap = 1 << 20, at = 0;
    for (int i = 0; i < n; i++) cap += strlen(objs[i]) + 64;
    unsigned char *b = malloc(cap);
    size_t *offs = malloc(sizeof *offs * (size_t)n);
    if (!b || !offs) { free(b); free(offs); return NULL; }
    at += (size_t)snprintf((char *)b + at, cap - at, "%%PDF-1.4\n");
    for (int i = 0; i < n; i++) {
        offs[i] = at;
        at += (size_t)snprintf((char *)b + at, cap - at, "%d 0 obj\n", i + 1);
        size_t ol = strlen(objs[i]);
        memcpy(b + at, objs[i], ol);
        at += ol;
        at += (size_t)snprintf((char *)b + at, cap - at, "\nendobj\n");
    }
    size_t x = at;
    at += (size_t)snprintf((char *)b + at, cap - at, "xref\n0 %d\n0000000000 65535 f \n", n + 1);
    for (int i = 0; i < n; i++) at += (size_t)snprintf((char *)b + at, cap - at, "%010zu 00000 n \n", offs[i]);
    at += (size_t)snprintf((char *)b + at, cap - at, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n", n + 1, x);
    free(offs);
    *len = at;
    return b;
}

/* "<< /Length N /Filter /FlateDecode >>\nstream\n...\nendstream" of data
 * (binary: the caller gets it with its length). */
static char *flate_stream(const char *data, size_t n, size_t *out_len) {
    uLongf zl = compressBound(n);
    unsigned char *z = malloc(zl);
    if (!z || compress2(z, &zl, (const unsigned char *)data, n, 9) != Z_OK) { free(z); return NULL; }
    char head[128];
    int hl = snprintf(head, sizeof head, "<< /Length %lu /Filter /FlateDecode >>\nstream\n", (unsigned long)zl);
    char *s = malloc((size_t)hl + zl + 16);
    if (!s) { free(z); return NULL; }
    memcpy(s, head, (size_t)hl);
    memcpy(s + hl, z, zl);
    memcpy(s + hl + zl, "\nendstream", 11);
    *out_len = (size_t)hl + zl + 10;
    free(z);
    return s;
}

/* The PDF objects as C strings cannot hold a binary stream; pdf_build
 * copies with strlen, so streams are spliced in with this variant. */
static unsigned char *pdf_with_stream(int n_pages, const char *content, size_t content_len, size_t *len) {
    int n = 4 + n_pages;
    char **objs = calloc((size_t)n, sizeof *objs);
    size_t kids_cap = (size_t)n_pages * 12 + 64;
    char *kids = malloc(kids_cap);
    size_t sl = 0;
    char *stream = flate_stream(content, content_len, &sl);
    if (!objs || !kids || !stream) return NULL;
    size_t k = 0;
    for (int i = 0; i < n_pages; i++) k += (size_t)snprintf(kids + k, kids_cap - k, "%d 0 R ", 5 + i);
    objs[0] = strdup("<< /Type /Catalog /Pages 2 0 R >>");
    objs[1] = malloc(kids_cap + 64);
    snprintf(objs[1], kids_cap + 64, "<< /Type /Pages /Kids [%s] /Count %d >>", kids, n_pages);
    objs[2] = strdup("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
    objs[3] = strdup("STREAM");     /* placeholder, replaced below */
    for (int i = 0; i < n_pages; i++)
        objs[4 + i] = strdup("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                             "/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>");
    size_t bl;
    unsigned char *pdf = pdf_build(objs, n, &bl);
    /* splice the binary stream where the placeholder is (offsets in the
     * xref shift; poppler reconstructs a broken xref, and the pre-scan does
     * not read it) */
    unsigned char *out = NULL;
    if (pdf) {
        unsigned char *ph = memmem(pdf, bl, "STREAM", 6);
        out = malloc(bl + sl);
        size_t a = (size_t)(ph - pdf);
        memcpy(out, pdf, a);
        memcpy(out + a, stream, sl);
        memcpy(out + a + sl, ph + 6, bl - a - 6);
        *len = bl - 6 + sl;
    }
    for (int i = 0; i < n; i++) free(objs[i]);
    free(objs);
    free(kids);
    free(stream);
    free(pdf);
    return out;
}

TEST(pdf_pages_sharing_one_stream_stop_at_the_text_budget) {
    /* 3000 pages drawing the same 400 lines: a small file, 16 MB of text */
    size_t cap = 64 << 10, n = 0;
    char *content = malloc(cap);
    REQUIRE(content);
    for (int i = 0; i < 400; i++)
        n += (size_t)snprintf(content + n, cap - n,
                              "BT /F1 8 Tf 20 %d Td (The quick brown fox jumps over the lazy dog %d) Tj ET\n",
                              800 - (i % 90) * 9, i);
    size_t len;
    unsigned char *pdf = pdf_with_stream(3000, content, n, &len);
    REQUIRE(pdf);
    rag_extract_params p = rag_extract_default_params();
    char err[512];
    double cpu;
    CHECK_EQ_INT(extract_with("shared.pdf", pdf, len, &p, err, sizeof err, &cpu), RAG_ERR_LIMIT);
    CHECK(strstr(err, "shared.pdf") && strstr(err, "repeat the text of earlier pages"), "%s", err);
    /* unbudgeted, these pages take ~30 s of CPU; the sanitizers slow all
     * of it about threefold, so the bound scales with them */
    double cpu_bound = getenv("MRAG_ASAN") ? 18 : 6;
    CHECK(cpu < cpu_bound, "took %.1f s of CPU (bound %.0f)", cpu, cpu_bound);
    free(pdf);
    /* the same pages, 20 of them: a fine document */
    p = rag_extract_default_params();
    pdf = pdf_with_stream(20, content, n, &len);
    REQUIRE(pdf);
    CHECK_EQ_INT(extract_with("fine.pdf", pdf, len, &p, err, sizeof err, &cpu), RAG_OK);
    /* the ratio itself: 20 pages of 5 KB of text from a ~9 KB file is
     * more than 5 times its size once past a 16 KB floor */
    p.max_repeated_page_bytes = 0;
    p.budget.max_text_ratio = 5;
    p.budget.ratio_floor_bytes = 16 << 10;
    CHECK_EQ_INT(extract_with("ratio.pdf", pdf, len, &p, err, sizeof err, &cpu), RAG_ERR_LIMIT);
    CHECK(strstr(err, "grew past 5 times"), "%s", err);
    free(pdf);
    free(content);
}

TEST(pdf_stream_bomb_is_refused_before_poppler_parses_it) {
    /* one page whose content stream inflates to 20 MB (a 70 KB file;
     * poppler would take seconds and 1.3 GB on it) */
    static const char unit[] = "BT /F1 8 Tf 20 700 Td (AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA) Tj ET\n";
    size_t n = 20u << 20, u = sizeof unit - 1;
    char *content = malloc(n);
    REQUIRE(content);
    for (size_t i = 0; i + u <= n; i += u) memcpy(content + i, unit, u);
    size_t used = n / u * u, len;
    unsigned char *pdf = pdf_with_stream(1, content, used, &len);
    free(content);
    REQUIRE(pdf);
    CHECK(len < 200000, "the bomb is %zu bytes", len);
    rag_extract_params p = rag_extract_default_params();
    char err[512];
    double cpu;
    CHECK_EQ_INT(extract_with("bomb.pdf", pdf, len, &p, err, sizeof err, &cpu), RAG_ERR_LIMIT);
    CHECK(strstr(err, "inflates to more than") && strstr(err, "bomb.pdf"), "%s", err);
    CHECK(cpu < 1.5, "took %.2f s of CPU", cpu);
    free(pdf);
}

TEST_MAIN(RUN(txt_paragraphs_and_exact_spans), RUN(txt_crlf_normalised_spans_original), RUN(txt_bom_latin1_utf16),
          RUN(txt_bad_bytes_are_clear_errors), RUN(md_structure), RUN(md_front_matter), RUN(html_structure),
          RUN(html_bad_input_never_crashes), RUN(html_deep_nesting_is_bounded), RUN(html_line_numbers_past_65535), RUN(pdf_pages_and_text),
          RUN(pdf_damaged_and_encrypted), RUN(sample_corpus_extracts),
          RUN(sample_corpus_with_generated_pdf),
          RUN(mixed_tree_bad_files_reported_rest_extracted),
          RUN(html_with_200000_attributes_is_refused_at_once), RUN(utf32_with_a_bom_is_read_as_utf32),
          RUN(html_doctype_internal_subset_is_not_text), RUN(cpu_budget_stops_a_long_extraction),
          RUN(pdf_pages_sharing_one_stream_stop_at_the_text_budget),
          RUN(pdf_stream_bomb_is_refused_before_poppler_parses_it))
