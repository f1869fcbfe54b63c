/* test_rag_mail.c — e-mail extraction (.eml, .mbox): messages are written
 * here (no committed binaries; the docx attachment is zipped with libzip),
 * extracted, and compared with Python's email module as a second reader
 * where python3 is installed; damaged MIME gives text or a clear per-file
 * error, never a crash. */
#define _GNU_SOURCE
#include "rag/rag.h"
#include "tests/test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

static rag_doc *extract_ok(const char *name, const char *data, size_t len) {
    rag_doc *d = NULL;
    char err[512] = "";
    int rc = rag_extract_memory(name, data, len, RAG_DOC_UNKNOWN, NULL, &d, err, sizeof err);
    REQUIRE(rc == RAG_OK && d, "%s: rc %d: %s", name, rc, err);
    return d;
}

/* Index of the first block containing s, or -1. */
static long block_has(const rag_doc *d, const char *s) {
    for (size_t i = 0; i < d->n_blocks; i++)
        if (strstr(test_block_text(d, i), s)) return (long)i;
    return -1;
}

static char *b64(const unsigned char *s, size_t n) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc(n * 2 + 8), *p = o;
    size_t col = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        *p++ = a[v >> 18 & 63];
        *p++ = a[v >> 12 & 63];
        *p++ = i + 1 < n ? a[v >> 6 & 63] : '=';
        *p++ = i + 2 < n ? a[v & 63] : '=';
        if ((col += 4) == 76) { *p++ = '\n'; col = 0; }
    }
    *p = 0;
    return o;
}

/* A small Word document, zipped here. */
static char *docx(size_t *len) {
    static const char ct[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">"
        "<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>"
        "<Default Extension=\"xml\" ContentType=\"application/xml\"/>"
        "<Override PartName=\"/word/document.xml\" "
        "ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/></Types>";
    static const char rels[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
        "<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
        "officeDocument\" Target=\"word/document.xml\"/></Relationships>";
    static const char doc[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<w:document "
        "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>"
        "<w:p><w:r><w:t>Quarterly figures: revenue rose by 12 percent in Lisbon.</w:t></w:r></w:p>"
        "</w:body></w:document>";
    char path[2100];
    snprintf(path, sizeof path, "%s/report.docx", test_tmpdir());
    int ze = 0;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &ze);
    REQUIRE(z);
    const char *names[] = {"[Content_Types].xml", "_rels/.rels", "word/document.xml"};
    const char *datas[] = {ct, rels, doc};
    for (int i = 0; i < 3; i++) {
        zip_source_t *s = zip_source_buffer(z, datas[i], strlen(datas[i]), 0);
        REQUIRE(s && zip_file_add(z, names[i], s, ZIP_FL_OVERWRITE) >= 0);
    }
    REQUIRE(zip_close(z) == 0);
    char *buf = test_read_file(path, len);
    REQUIRE(buf);
    return buf;
}

static char *asprintf_or_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *asprintf_or_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    REQUIRE(vasprintf(&s, fmt, ap) >= 0);
    va_end(ap);
    return s;
}

/* ---------------------------------------------------------- a second reader */
/* Python's email module (policy.default) on the file: the decoded subject
 * on the first line, then the preferred body (plain, else html) text. */
static char *python_reads(const char *path) {
    int st = 0;
    char *have = test_run_capture("python3 -c 'import email' 2>&1", &st);
    free(have);
    if (st != 0) return NULL;
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import sys,email,email.policy\n"
             "m=email.message_from_binary_file(open(sys.argv[1],\"rb\"),policy=email.policy.default)\n"
             "print(m[\"subject\"])\n"
             "b=m.get_body(preferencelist=(\"plain\",\"html\"))\n"
             "print(b.get_content() if b else \"\")' %s",
             test_shq(path));
    char *out = test_run_capture(cmd, &st);
    if (st != 0) { free(out); return NULL; }
    return out;
}

/* Every non-empty line of want (trimmed) is in the text of d. */
static void lines_in_doc(const char *want, const rag_doc *d, const char *what) {
    char *w = strdup(want), *save = NULL;
    for (char *l = strtok_r(w, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        while (*l == ' ') l++;
        size_t n = strlen(l);
        while (n && (l[n - 1] == ' ' || l[n - 1] == '\r')) l[--n] = 0;
        if (!n) continue;
        CHECK(strstr(d->text, l) != NULL, "%s: the second reader's line '%s' is not in: %s", what, l, d->text);
    }
    free(w);
}

/* ---------------------------------------------------------------- tests */
static const char ALT[] =
    "From: Anna Schmidt <anna@example.org>\r\n"
    "To: team@example.org, Bob <bob@example.org>\r\n"
    "Date: Mon, 7 Dec 2026 09:15:00 +0100\r\n"
    "Subject: VPN maintenance on Friday\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/alternative; boundary=\"alt-1\"\r\n"
    "\r\n"
    "This is a multi-part message in MIME format.\r\n"
    "--alt-1\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "The VPN gateway is down on Friday from 18:00 to 20:00 for an upgrade.=\r\n"
    " Use port 1194 afterwards.\r\n"
    "\r\n"
    "Regards, Anna\r\n"
    "--alt-1\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<html><body><p>HTML-ONLY-VERSION of the notice</p></body></html>\r\n"
    "--alt-1--\r\n";

TEST(alternative_prefers_plain_and_keeps_the_headers) {
    rag_doc *d = extract_ok("notice.eml", ALT, sizeof ALT - 1);
    CHECK_EQ_INT(d->type, RAG_DOC_EML);
    CHECK_EQ_STR(d->title, "VPN maintenance on Friday");
    CHECK(strstr(d->text, "HTML-ONLY-VERSION") == NULL, "the html alternative is left out: %s", d->text);
    CHECK(strstr(d->text, "for an upgrade. Use port 1194 afterwards.") != NULL, "soft line break joined: %s", d->text);
    long h = block_has(d, "From: Anna Schmidt <anna@example.org>");
    CHECK(h >= 0, "header block: %s", d->text);
    if (h >= 0)
        CHECK_EQ_STR(test_block_text(d, (size_t)h), "From: Anna Schmidt <anna@example.org>\n"
                                          "To: team@example.org, Bob <bob@example.org>\n"
                                          "Date: Mon, 7 Dec 2026 09:15:00 +0100\n"
                                          "Subject: VPN maintenance on Friday");
    CHECK(d->n_blocks > 0 && d->blocks[0].kind == RAG_BLOCK_HEADING, "the subject heads the message");
    char tail[64];
    rag_cite_tail("eml", 0, 0, 0, tail, sizeof tail);
    CHECK_EQ_STR(tail, "");
    /* the second reader agrees on the subject and the body */
    char path[2100];
    snprintf(path, sizeof path, "%s/notice.eml", test_tmpdir());
    REQUIRE(test_write_file(path, ALT, sizeof ALT - 1) == 0);
    char *py = python_reads(path);
    if (py) lines_in_doc(py, d, "python email");
    else printf("  # python3's email module not available: no second reader\n");
    free(py);
    rag_doc_free(d);
    /* only html: through the HTML extractor (no tags in the text) */
    static const char HTML[] = "From: a@example.org\nSubject: Menu\nContent-Type: text/html; charset=iso-8859-1\n"
                               "Content-Transfer-Encoding: quoted-printable\n\n"
                               "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\">"
                               "<style>p{color:red}</style></head><body><h1>Kantine</h1>"
                               "<p>Heute K=E4sesp=E4tzle &amp; Salat</p></body></html>\n";
    d = extract_ok("menu.eml", HTML, sizeof HTML - 1);
    CHECK(strstr(d->text, "Heute Käsespätzle & Salat") != NULL, "%s", d->text);
    CHECK(strstr(d->text, "<p>") == NULL && strstr(d->text, "color:red") == NULL, "%s", d->text);
    CHECK(block_has(d, "Kantine") >= 0 && d->blocks[block_has(d, "Kantine")].kind == RAG_BLOCK_HEADING, "%s", d->text);
    rag_doc_free(d);
    /* html in UTF-8 without a <meta> charset: the MIME charset decides */
    static const char HTML8[] = "From: a@example.org\nSubject: Menu\nContent-Type: text/html; charset=utf-8\n\n"
                                "<p>Morgen Gr\xc3\xbc\x6ekohl</p>\n";
    d = extract_ok("menu8.eml", HTML8, sizeof HTML8 - 1);
    CHECK(strstr(d->text, "Morgen Grünkohl") != NULL, "%s", d->text);
    rag_doc_free(d);
}

TEST(docx_attachment_in_base64_is_extracted) {
    size_t zl;
    char *z = docx(&zl);
    char *enc = b64((const unsigned char *)z, zl);
    char *msg = asprintf_or_die(
        "From: cfo@example.org\nTo: board@example.org\nSubject: Q3 report\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"mix\"\n\n"
        "--mix\nContent-Type: text/plain\n\nPlease find the report attached.\n"
        "--mix\nContent-Type: image/png\nContent-Disposition: attachment; filename=\"logo.png\"\n"
        "Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n"
        "--mix\nContent-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document;\n"
        " name=\"report.docx\"\nContent-Disposition: attachment;\n filename=\"report.docx\"\n"
        "Content-Transfer-Encoding: base64\n\n%s\n--mix--\n",
        enc);
    rag_doc *d = extract_ok("q3.eml", msg, strlen(msg));
    CHECK(strstr(d->text, "Please find the report attached.") != NULL, "%s", d->text);
    long h = block_has(d, "Attachment 2: report.docx");
    long t = block_has(d, "revenue rose by 12 percent in Lisbon");
    CHECK(h >= 0 && t > h, "the docx's text under its heading: %s", d->text);
    if (h >= 0) CHECK(d->blocks[h].kind == RAG_BLOCK_HEADING && d->blocks[h].level == 2, "attachment heading level");
    if (t >= 0) {
        CHECK_EQ_INT(d->blocks[t].line_start, 2);
        char tail[64];
        rag_cite_tail("eml", (int)d->blocks[t].page, (int)d->blocks[t].line_start, (int)d->blocks[t].line_end, tail,
                      sizeof tail);
        CHECK_EQ_STR(tail, "#att=2");
    }
    long p = block_has(d, "Please find");
    if (p >= 0) CHECK_EQ_INT(d->blocks[p].line_start, 0);
    CHECK(block_has(d, "Attachment 1: logo.png") >= 0 && strstr(d->text, "image/png is not a document type") != NULL,
          "an image is named, not read: %s", d->text);
    /* the chunks of the attachment carry its name in their heading path */
    rag_chunk_params cp = rag_chunk_default_params();
    rag_chunk_list l;
    REQUIRE(rag_chunk_doc(d, &cp, rag_count_words, NULL, &l, NULL, 0) == RAG_OK);
    bool found = false;
    for (size_t i = 0; i < l.n; i++)
        if (strstr(l.chunks[i].text, "Lisbon")) found = strstr(l.chunks[i].heading_path, "report.docx") != NULL;
    CHECK(found, "heading path names the attachment");
    rag_chunk_list_free(&l);
    rag_doc_free(d);
    free(msg);
    free(enc);
    free(z);
}

TEST(encoded_word_subjects_and_charsets) {
    /* "Grüße aus München" in UTF-8 (B) and ISO-8859-1 (Q) encoded-words */
    static const char U[] = "From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>\n"
                            "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=\n"
                            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
                            "Die Straße ist gesperrt.\n";
    rag_doc *d = extract_ok("u.eml", U, sizeof U - 1);
    CHECK_EQ_STR(d->title, "Grüße aus München");
    CHECK(strstr(d->text, "From: Jürgen Müller <jm@example.de>") != NULL, "%s", d->text);
    CHECK(strstr(d->text, "Die Straße ist gesperrt.") != NULL, "%s", d->text);
    rag_doc_free(d);
    static const char L[] = "From: x@example.de\n"
                            "Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus?= =?ISO-8859-1?Q?_M=FCnchen?=\n"
                            "Content-Type: text/plain; charset=ISO-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
                            "Sch=F6ne Gr=FC=DFe, die Stra=DFe ist gesperrt.\n";
    d = extract_ok("l.eml", L, sizeof L - 1);
    CHECK_EQ_STR(d->title, "Grüße aus München");
    CHECK(strstr(d->text, "Schöne Grüße, die Straße ist gesperrt.") != NULL, "%s", d->text);
    char path[2100];
    snprintf(path, sizeof path, "%s/l.eml", test_tmpdir());
    REQUIRE(test_write_file(path, L, sizeof L - 1) == 0);
    char *py = python_reads(path);
    if (py) lines_in_doc(py, d, "python email");
    free(py);
    rag_doc_free(d);
}

static const char MBOX[] =
    "From alice@example.org Mon Dec  7 09:00:00 2026\n"
    "From: alice@example.org\nSubject: Printer on floor 2\n\nThe printer on floor 2 is out of toner.\n\n"
    "From bob@example.org Mon Dec  7 10:00:00 2026\n"
    "From: bob@example.org\nSubject: Re: Printer on floor 2\n\n"
    "Toner is ordered.\n>From now on ask facilities.\n>>From the archive: quoted twice.\n\n"
    "From carol@example.org Mon Dec  7 11:00:00 2026\n"
    "From: carol@example.org\nSubject: Lunch\nContent-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: base64\n\nS2FudGluZSBpc3QgaGV1dGUgZ2VzY2hsb3NzZW4u\n";

TEST(mbox_messages_are_units_with_from_quoting) {
    rag_doc *d = extract_ok("team.mbox", MBOX, sizeof MBOX - 1);
    CHECK_EQ_INT(d->type, RAG_DOC_MBOX);
    CHECK_EQ_INT(d->n_pages, 3);
    CHECK_EQ_STR(d->title, "team.mbox");
    long a = block_has(d, "out of toner"), b = block_has(d, "From now on ask facilities."),
         c = block_has(d, "Kantine ist heute geschlossen.");
    CHECK(a >= 0 && b >= 0 && c >= 0, "%s", d->text);
    CHECK(strstr(d->text, ">From now") == NULL, "one level of >From quoting undone: %s", d->text);
    CHECK(strstr(d->text, ">From the archive: quoted twice.") != NULL, "%s", d->text);
    if (a >= 0 && b >= 0 && c >= 0) {
        CHECK_EQ_INT(d->blocks[a].page, 1);
        CHECK_EQ_INT(d->blocks[b].page, 2);
        CHECK_EQ_INT(d->blocks[c].page, 3);
        char tail[64];
        rag_cite_tail("mbox", (int)d->blocks[b].page, 0, 0, tail, sizeof tail);
        CHECK_EQ_STR(tail, "#msg=2");
        rag_cite_tail("mbox", 3, 1, 1, tail, sizeof tail);
        CHECK_EQ_STR(tail, "#msg=3,att=1");
    }
    long h = block_has(d, "Re: Printer on floor 2");
    CHECK(h >= 0 && d->blocks[h].kind == RAG_BLOCK_HEADING, "each subject heads its message");
    /* Python's mailbox module sees the same three messages */
    char path[2100];
    snprintf(path, sizeof path, "%s/team.mbox", test_tmpdir());
    REQUIRE(test_write_file(path, MBOX, sizeof MBOX - 1) == 0);
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "python3 -c 'import mailbox,sys; print(len(mailbox.mbox(sys.argv[1])))' %s 2>/dev/null",
             test_shq(path));
    int st = 0;
    char *out = test_run_capture(cmd, &st);
    if (st == 0 && out) CHECK_EQ_STR(out, "3\n");
    free(out);
    rag_doc_free(d);
    /* a file that is not a mailbox */
    rag_doc *x = NULL;
    char err[512] = "";
    int rc = rag_extract_memory("notes.mbox", "Subject: x\n\nhello\n", 18, RAG_DOC_UNKNOWN, NULL, &x, err, sizeof err);
    CHECK(rc == RAG_ERR_FORMAT && !x && strstr(err, "notes.mbox: not an mbox") != NULL, "rc %d: %s", rc, err);
}

TEST(nested_message_and_forwarded_eml) {
    static const char M[] = "From: a@example.org\nSubject: Fwd: budget\nMIME-Version: 1.0\n"
                            "Content-Type: multipart/mixed; boundary=\"o\"\n\n"
                            "--o\nContent-Type: text/plain\n\nSee below.\n"
                            "--o\nContent-Type: message/rfc822\n\n"
                            "From: b@example.org\nSubject: budget 2027\nContent-Type: text/plain\n\n"
                            "The travel budget for 2027 is 40000 EUR.\n"
                            "--o--\n";
    rag_doc *d = extract_ok("fwd.eml", M, sizeof M - 1);
    CHECK_EQ_STR(d->title, "Fwd: budget");
    long h = block_has(d, "budget 2027"), t = block_has(d, "40000 EUR");
    CHECK(h >= 0 && t > h && d->blocks[h].kind == RAG_BLOCK_HEADING, "%s", d->text);
    CHECK(strstr(d->text, "From: b@example.org") != NULL, "the inner message's headers: %s", d->text);
    if (t >= 0) CHECK_EQ_INT(d->blocks[t].line_start, 1);
    rag_doc_free(d);
}

TEST(damaged_mime_gives_text_or_a_clear_error) {
    /* the closing boundary is missing: the text is still read */
    static const char NOEND[] = "From: a@example.org\nSubject: cut off\nContent-Type: multipart/mixed; boundary=b\n\n"
                                "--b\nContent-Type: text/plain\n\nThe first part survives.\n--b\nContent-Type: text/plain\n\n"
                                "The second part too";
    rag_doc *d = extract_ok("cut.eml", NOEND, sizeof NOEND - 1);
    CHECK(strstr(d->text, "The first part survives.") != NULL && strstr(d->text, "The second part too") != NULL, "%s",
          d->text);
    rag_doc_free(d);
    /* bad base64 in the body and in an attachment: no crash, best effort */
    static const char BAD64[] = "From: a@example.org\nSubject: bad\nContent-Type: multipart/mixed; boundary=b\n\n"
                                "--b\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\nSGVsbG8g!!!@@@d29ybGQ=====x\n"
                                "--b\nContent-Type: application/pdf; name=x.pdf\nContent-Disposition: attachment\n"
                                "Content-Transfer-Encoding: base64\n\n%%%%not base64 at all\n--b--\n";
    d = extract_ok("bad.eml", BAD64, sizeof BAD64 - 1);
    CHECK(strstr(d->text, "Hello") != NULL, "%s", d->text);
    CHECK(strstr(d->text, "Attachment 1: x.pdf") != NULL && strstr(d->text, "[attachment not extracted: ") != NULL,
          "the broken attachment is named with why: %s", d->text);
    rag_doc_free(d);
    /* an attachment with no content at all (fuzz_extract_mail found the
     * extractor handed a NULL buffer on to the text decoder) */
    static const char EMPTY[] = "From: a@example.org\nSubject: att\nContent-Type: multipart/mixed; boundary=b\n\n"
                                "--b\nContent-Type: text/plain\n\nbody\n"
                                "--b\nContent-Type: text/plain; name=notes.md\nContent-Disposition: attachment\n\n"
                                "--b--\n";
    d = extract_ok("empty.eml", EMPTY, sizeof EMPTY - 1);
    CHECK(strstr(d->text, "Attachment 1: notes.md") != NULL && strstr(d->text, "body") != NULL, "%s", d->text);
    rag_doc_free(d);
    /* not a message at all: a per-file error naming the file */
    rag_doc *x = NULL;
    char err[512] = "";
    int rc = rag_extract_memory("junk.eml", "\x01\x02 binary junk", 14, RAG_DOC_UNKNOWN, NULL, &x, err, sizeof err);
    CHECK(rc == RAG_ERR_FORMAT && !x && strncmp(err, "junk.eml: ", 10) == 0, "rc %d: %s", rc, err);
    /* deep nesting is bounded, not a stack overflow */
    size_t cap = 4u << 20, n = 0;
    char *deep = malloc(cap);
    n += (size_t)snprintf(deep + n, cap - n, "From: a@example.org\nSubject: deep\n");
    for (int i = 0; i < 20000 && n + 100 < cap; i++)
        n += (size_t)snprintf(deep + n, cap - n, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
    err[0] = 0;
    rc = rag_extract_memory("deep.eml", deep, n, RAG_DOC_UNKNOWN, NULL, &x, err, sizeof err);
    CHECK(rc == RAG_ERR_FORMAT && !x && strstr(err, "MIME containers") != NULL, "rc %d: %s", rc, err);
    rag_doc_free(x);
    free(deep);
}

TEST(walker_types) {
    CHECK_EQ_INT(rag_doc_type_from_path("a/x.EML"), RAG_DOC_EML);
    CHECK_EQ_INT(rag_doc_type_from_path("x.mbox"), RAG_DOC_MBOX);
    CHECK_EQ_STR(rag_doc_type_str(RAG_DOC_EML), "eml");
    CHECK_EQ_STR(rag_doc_type_str(RAG_DOC_MBOX), "mbox");
}

TEST_MAIN(RUN(alternative_prefers_plain_and_keeps_the_headers), RUN(docx_attachment_in_base64_is_extracted),
          RUN(encoded_word_subjects_and_charsets), RUN(mbox_messages_are_units_with_from_quoting),
          RUN(nested_message_and_forwarded_eml), RUN(damaged_mime_gives_text_or_a_clear_error), RUN(walker_types))
