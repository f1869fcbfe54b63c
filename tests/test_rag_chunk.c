/* test_rag_chunk.c — the chunker: token limits by the caller's counter,
 * overlap, heading paths, sentence rules (English and German), exact spans,
 * PDF pages, giant inputs, empty input, determinism. */
#define _GNU_SOURCE  /* memmem */
#include "llm/llm.h"
#include "rag/rag.h"
#include "tests/test.h"

#include <stdlib.h>
#include <time.h>

/* A counter that is not additive over words: 1 + chars/5 per word, plus one
 * per newline, so the chunker's estimate must be checked by a real count. */
static int count_chars(void *user, const char *t, size_t n) {
    int *calls = user;
    if (calls) (*calls)++;
    int tok = 0;
    size_t i = 0;
    while (i < n) {
        if (t[i] == '\n') tok++;
        if (t[i] == ' ' || t[i] == '\n' || t[i] == '\t') { i++; continue; }
        size_t chars = 0;
        while (i < n && t[i] != ' ' && t[i] != '\n' && t[i] != '\t') {
            if (((unsigned char)t[i] & 0xC0) != 0x80) chars++;
            i++;
        }
        tok += 1 + (int)(chars / 5);
    }
    return tok;
}

static int count_fail(void *user, const char *t, size_t n) {
    (void)user;
    (void)t;
    return n > 20 ? -1 : 1;
}

static rag_doc *extract(const char *name, const char *data, size_t len) {
    rag_doc *d = NULL;
    char err[512] = "";
    int rc = rag_extract_memory(name, data, len, RAG_DOC_UNKNOWN, NULL, &d, err, sizeof err);
    REQUIRE(rc == RAG_OK && d, "%s: rc %d: %s", name, rc, err);
    return d;
}

static rag_chunk_list chunk(const rag_doc *d, int max, int overlap, rag_count_tokens_fn fn, void *user) {
    rag_chunk_params p = rag_chunk_default_params();
    p.max_tokens = max;
    p.overlap_tokens = overlap;
    rag_chunk_list l;
    char err[512] = "";
    int rc = rag_chunk_doc(d, &p, fn, user, &l, err, sizeof err);
    REQUIRE(rc == RAG_OK, "rag_chunk_doc: %d %s", rc, err);
    return l;
}

/* Invariants every chunk list must meet. */
static void check_common(const rag_doc *d, const rag_chunk_list *l, int max, rag_count_tokens_fn fn) {
    for (size_t i = 0; i < l->n; i++) {
        const rag_chunk *c = &l->chunks[i];
        int real = fn(NULL, c->embed_text, c->embed_len);
        CHECK(real <= max, "chunk %zu: %d tokens > %d", i, real, max);
        CHECK_EQ_INT(c->n_tokens, real);
        CHECK(c->text_len > 0, "chunk %zu not empty", i);
        CHECK(c->text_off + c->text_len <= d->text_len && memcmp(d->text + c->text_off, c->text, c->text_len) == 0,
              "chunk %zu text is the slice of the document", i);
        CHECK(c->text[0] != ' ' && c->text[0] != '\n' && c->text[c->text_len - 1] != ' ' && c->text[c->text_len - 1] != '\n',
              "chunk %zu trimmed", i);
        if (c->heading_path[0]) {
            size_t pl = strlen(c->heading_path);
            bool prefixed = c->embed_len == pl + 2 + c->text_len && memcmp(c->embed_text, c->heading_path, pl) == 0 &&
                            memcmp(c->embed_text + pl, "\n\n", 2) == 0 && strcmp(c->embed_text + pl + 2, c->text) == 0;
            CHECK(prefixed, "chunk %zu: embed text = path + blank line + text", i);
        } else {
            CHECK_EQ_STR(c->embed_text, c->text);
        }
        if (i) CHECK(c->text_off > l->chunks[i - 1].text_off, "chunk %zu moves forward", i);
    }
}

/* The original bytes of every chunk (CR LF -> LF) are its text, and the line
 * span is where those bytes are. */
static void check_exact_spans(const rag_chunk_list *l, const char *orig, size_t len) {
    for (size_t i = 0; i < l->n; i++) {
        const rag_chunk *c = &l->chunks[i];
        REQUIRE(c->byte_start < c->byte_end && c->byte_end <= len, "chunk %zu span", i);
        char *s = malloc(c->byte_end - c->byte_start + 1);
        size_t n = 0;
        for (uint64_t k = c->byte_start; k < c->byte_end; k++)
            if (!(orig[k] == '\r' && k + 1 < len && orig[k + 1] == '\n')) s[n++] = orig[k];
        CHECK(n == c->text_len && memcmp(s, c->text, n) == 0, "chunk %zu: original bytes differ from the text", i);
        free(s);
        uint32_t line = 1;
        for (uint64_t k = 0; k < c->byte_start; k++) line += orig[k] == '\n';
        CHECK_EQ_INT(c->line_start, line);
        for (uint64_t k = c->byte_start; k + 1 < c->byte_end; k++) line += orig[k] == '\n';
        CHECK_EQ_INT(c->line_end, line);
    }
}

/* English prose with paragraphs, generated deterministically. */
static char *prose(int paragraphs, unsigned seed) {
    static const char *words[] = {"the", "policy", "covers", "travel", "costs", "for", "all", "employees", "who",
                                  "book", "trains", "hotels", "and", "flights", "through", "portal", "approval",
                                  "manager", "receipts", "within", "thirty", "days", "reimbursed", "monthly"};
    size_t cap = (size_t)paragraphs * 2000 + 16, n = 0;
    char *s = malloc(cap);
    unsigned r = seed;
    for (int p = 0; p < paragraphs; p++) {
        int sentences = 2 + (int)(r % 5);
        for (int k = 0; k < sentences; k++) {
            int nw = 4 + (int)((r = r * 1103515245u + 12345u) >> 16) % 14;
            for (int w = 0; w < nw; w++) {
                r = r * 1103515245u + 12345u;
                const char *word = words[(r >> 16) % (sizeof words / sizeof words[0])];
                n += (size_t)snprintf(s + n, cap - n, "%s%c%s", w ? " " : (k ? " " : ""),
                                      w == 0 ? 'T' : word[0], word + 1);
            }
            n += (size_t)snprintf(s + n, cap - n, ".");
            if ((r >> 8) % 4 == 0) n += (size_t)snprintf(s + n, cap - n, "\n");
            else if (k + 1 < sentences) { /* space added by the next word */ }
        }
        n += (size_t)snprintf(s + n, cap - n, "\n\n");
    }
    return s;
}

TEST(limit_and_overlap_with_word_counter) {
    char *src = prose(40, 7);
    rag_doc *d = extract("prose.txt", src, strlen(src));
    for (int overlap = 0; overlap <= 12; overlap += 6) {
        rag_chunk_list l = chunk(d, 60, overlap, rag_count_words, NULL);
        CHECK(l.n > 5, "%zu chunks", l.n);
        check_common(d, &l, 60, rag_count_words);
        check_exact_spans(&l, src, strlen(src));
        for (size_t i = 1; i < l.n; i++) {
            const rag_chunk *a = &l.chunks[i - 1], *b = &l.chunks[i];
            size_t a_end = a->text_off + a->text_len;
            if (overlap == 0) {
                CHECK(b->text_off >= a_end, "no overlap between %zu and %zu", i - 1, i);
                continue;
            }
            /* the overlap is exactly `overlap` whole words */
            REQUIRE(b->text_off < a_end, "chunks %zu and %zu overlap", i - 1, i);
            int ov = rag_count_words(NULL, d->text + b->text_off, a_end - b->text_off);
            CHECK_EQ_INT(ov, overlap);
            CHECK(d->text[b->text_off - 1] == ' ' || d->text[b->text_off - 1] == '\n', "overlap starts at a word");
        }
        /* every word of the document is in some chunk */
        size_t covered = 0;
        for (size_t i = 0; i < l.n; i++) {
            size_t a = l.chunks[i].text_off, z = a + l.chunks[i].text_len;
            CHECK(a <= covered || rag_count_words(NULL, d->text + covered, a - covered) == 0, "gap before chunk %zu", i);
            if (z > covered) covered = z;
        }
        CHECK_EQ_INT(rag_count_words(NULL, d->text + covered, d->text_len - covered), 0);
        rag_chunk_list_free(&l);
    }
    /* defaults: 256 / 32 */
    rag_chunk_params p = rag_chunk_default_params();
    CHECK_EQ_INT(p.max_tokens, 256);
    CHECK_EQ_INT(p.overlap_tokens, 32);
    rag_doc_free(d);
    free(src);
}

TEST(limit_with_non_additive_counter) {
    char *src = prose(30, 11);
    rag_doc *d = extract("prose.md", src, strlen(src));
    int calls = 0;
    rag_chunk_list l = chunk(d, 40, 8, count_chars, &calls);
    CHECK(l.n > 5);
    check_common(d, &l, 40, count_chars);
    for (size_t i = 1; i < l.n; i++) {
        const rag_chunk *a = &l.chunks[i - 1], *b = &l.chunks[i];
        size_t a_end = a->text_off + a->text_len;
        if (b->text_off >= a_end) continue;
        int ov = count_chars(NULL, d->text + b->text_off, a_end - b->text_off);
        CHECK(ov <= 8, "overlap %d tokens > 8", ov);
        CHECK(ov >= 8 - 4, "overlap %d tokens is far below 8", ov);
    }
    rag_chunk_list_free(&l);
    rag_doc_free(d);
    free(src);
}

TEST(split_prefers_paragraphs_then_sentences) {
    /* paragraphs of 3 sentences of 5 words; 20 tokens hold one paragraph
     * (15 words) but not two */
    const char *src =
        "Alpha one two three four. Alpha five six seven eight. Alpha nine ten eleven twelve.\n\n"
        "Beta one two three four. Beta five six seven eight. Beta nine ten eleven twelve.\n\n"
        "Gamma one two three four. Gamma five six seven eight. Gamma nine ten eleven twelve.\n";
    rag_doc *d = extract("p.txt", src, strlen(src));
    rag_chunk_list l = chunk(d, 20, 0, rag_count_words, NULL);
    CHECK_EQ_INT(l.n, 3);
    if (l.n == 3) {
        CHECK(strncmp(l.chunks[1].text, "Beta one", 8) == 0, "%s", l.chunks[1].text);
        CHECK(strncmp(l.chunks[2].text, "Gamma one", 9) == 0, "%s", l.chunks[2].text);
    }
    rag_chunk_list_free(&l);
    /* 12 tokens: one paragraph does not fit; cut after a sentence */
    l = chunk(d, 12, 0, rag_count_words, NULL);
    check_common(d, &l, 12, rag_count_words);
    for (size_t i = 0; i < l.n; i++) {
        const rag_chunk *c = &l.chunks[i];
        CHECK(c->text[c->text_len - 1] == '.', "chunk %zu ends a sentence: \"%s\"", i, c->text);
    }
    rag_chunk_list_free(&l);
    rag_doc_free(d);
}

TEST(sentences_with_abbreviations_en_de) {
    const char *src =
        "Wir erstatten z. B. Bahntickets der 2. Klasse am 1. Mai und usw. jedes Jahr. "
        "Fragen beantwortet Dr. Müller bzw. Frau Prof. Schmidt gern. "
        "Sie erreichen uns ca. ab 8 Uhr, d. h. vor dem Meeting. "
        "Expenses e.g. taxis or trains are paid by Mr. Smith at approx. noon. "
        "Is it done? Yes! It is done.\n";
    rag_doc *d = extract("s.txt", src, strlen(src));
    /* no overlap, small chunks: every cut must be at a real sentence end */
    rag_chunk_list l = chunk(d, 16, 0, rag_count_words, NULL);
    check_common(d, &l, 16, rag_count_words);
    const char *bad_ends[] = {"z.", "B.", "2.", "1.", "Dr.", "bzw.", "Prof.", "ca.", "d.", "h.", "e.g.", "Mr.", "approx."};
    for (size_t i = 0; i < l.n; i++) {
        const rag_chunk *c = &l.chunks[i];
        char last = c->text[c->text_len - 1];
        CHECK(last == '.' || last == '?' || last == '!', "chunk %zu ends a sentence: \"%s\"", i, c->text);
        for (size_t k = 0; k < sizeof bad_ends / sizeof bad_ends[0]; k++) {
            size_t bl = strlen(bad_ends[k]);
            bool ends = c->text_len > bl && memcmp(c->text + c->text_len - bl, bad_ends[k], bl) == 0 &&
                        c->text[c->text_len - bl - 1] == ' ';
            CHECK(!ends, "chunk %zu ends at the abbreviation \"%s\": \"%s\"", i, bad_ends[k], c->text);
        }
    }
    CHECK(l.n >= 4, "%zu chunks", l.n);
    rag_chunk_list_free(&l);
    rag_doc_free(d);
}

TEST(heading_paths) {
    const char *src =
        "# Install\r\n"
        "\r\n"
        "General notes about installing.\r\n"
        "\r\n"
        "## Debian\r\n"
        "\r\n"
        "Run apt-get install mrag as root.\r\n"
        "\r\n"
        "## Windows\r\n"
        "Not supported.\r\n"
        "### Really\r\n"
        "Really not.\r\n"
        "# Usage\r\n"
        "#### Deep\r\n"
        "Deep text without levels between.\r\n"
        "# Empty Section\r\n"
        "## Child\r\n"
        "Child text.\r\n";
    rag_doc *d = extract("h.md", src, strlen(src));
    rag_chunk_list l = chunk(d, 64, 8, rag_count_words, NULL);
    check_common(d, &l, 64, rag_count_words);
    check_exact_spans(&l, src, strlen(src));
    const struct { const char *path, *starts; } want[] = {
        {"Install", "Install"},
        {"Install > Debian", "Debian"},
        {"Install > Windows", "Windows"},
        {"Install > Windows > Really", "Really\r"},
        {"Usage > Deep", "Deep"},
        {"Empty Section > Child", "Child"},
    };
    size_t nw = sizeof want / sizeof want[0];
    CHECK_EQ_INT(l.n, nw);
    for (size_t i = 0; i < nw && i < l.n; i++) {
        CHECK_EQ_STR(l.chunks[i].heading_path, want[i].path);
        CHECK(strncmp(l.chunks[i].text, want[i].starts, strcspn(want[i].starts, "\r")) == 0, "chunk %zu: %s", i, l.chunks[i].text);
    }
    if (l.n > 1) {
        CHECK_EQ_STR(l.chunks[1].embed_text, "Install > Debian\n\nDebian\n\nRun apt-get install mrag as root.");
        CHECK_EQ_INT(l.chunks[1].line_start, 5);
        CHECK_EQ_INT(l.chunks[1].line_end, 7);
    }
    rag_chunk_list_free(&l);
    rag_doc_free(d);
}

TEST(html_line_spans_contain_text) {
    const char *src =
        "<html><body>\n"
        "<h1>Holiday rules</h1>\n"
        "<p>New employees get twenty-eight vacation days per year.\n"
        "Unused days expire on March 31.</p>\n"
        "<h2>Carry over</h2>\n"
        "<ul>\n<li>Up to five days carry over</li>\n<li>Ask HR for more</li>\n</ul>\n"
        "</body></html>\n";
    rag_doc *d = extract("h.html", src, strlen(src));
    rag_chunk_list l = chunk(d, 12, 2, rag_count_words, NULL);
    check_common(d, &l, 12, rag_count_words);
    CHECK(l.n >= 3, "%zu chunks", l.n);
    for (size_t i = 0; i < l.n; i++) {
        const rag_chunk *c = &l.chunks[i];
        REQUIRE(c->line_start >= 1 && c->line_end >= c->line_start, "chunk %zu has lines", i);
        /* the original lines line_start..line_end hold every word */
        const char *p = src;
        for (uint32_t k = 1; k < c->line_start; k++) p = strchr(p, '\n') + 1;
        const char *q = p;
        for (uint32_t k = c->line_start; k <= c->line_end && q; k++) q = strchr(q, '\n') ? strchr(q, '\n') + 1 : NULL;
        size_t span = q ? (size_t)(q - p) : strlen(p);
        CHECK_EQ_INT(c->byte_start, (uint64_t)(p - src));
        CHECK_EQ_INT(c->byte_end, (uint64_t)(p - src) + span);
        char word[64];
        const char *w = c->text;
        while (*w) {
            size_t n = strcspn(w, " \n");
            if (n && n < sizeof word) {
                snprintf(word, sizeof word, "%.*s", (int)n, w);
                CHECK(memmem(p, span, word, n) != NULL, "chunk %zu: \"%s\" not in lines %u-%u", i, word,
                      c->line_start, c->line_end);
            }
            w += n;
            w += strspn(w, " \n");
        }
    }
    CHECK_EQ_STR(l.chunks[l.n - 1].heading_path, "Holiday rules > Carry over");
    rag_chunk_list_free(&l);
    rag_doc_free(d);
}

TEST(pdf_pages_are_boundaries) {
    /* a document as the PDF extractor builds it: blocks with page numbers */
    char text[] = "Page one text about expenses.\n\nMore on page one.\n\nPage two starts here.";
    rag_block blocks[3] = {
        {.kind = RAG_BLOCK_PARAGRAPH, .text_off = 0, .text_len = 29, .page = 1},
        {.kind = RAG_BLOCK_PARAGRAPH, .text_off = 31, .text_len = 17, .page = 1},
        {.kind = RAG_BLOCK_PARAGRAPH, .text_off = 50, .text_len = 21, .page = 2},
    };
    rag_doc d = {.type = RAG_DOC_PDF, .text = text, .text_len = strlen(text), .blocks = blocks, .n_blocks = 3,
                 .title = "", .n_pages = 2};
    rag_chunk_list l = chunk(&d, 64, 8, rag_count_words, NULL);
    check_common(&d, &l, 64, rag_count_words);
    CHECK_EQ_INT(l.n, 2);
    if (l.n == 2) {
        CHECK_EQ_INT(l.chunks[0].page, 1);
        CHECK_EQ_INT(l.chunks[1].page, 2);
        CHECK_EQ_STR(l.chunks[0].text, "Page one text about expenses.\n\nMore on page one.");
        CHECK_EQ_STR(l.chunks[1].text, "Page two starts here.");
        CHECK_EQ_INT(l.chunks[0].line_start, 0);
    }
    rag_chunk_list_free(&l);
}

TEST(giant_single_line) {
    /* 2 MB on one line: normal words, then a 300 kB "word" of multi-byte
     * characters, then words again */
    size_t target = getenv("MRAG_ASAN") ? 512 * 1024 : 2 * 1024 * 1024;
    char *s = malloc(target + 16);
    size_t n = 0;
    unsigned r = 1;
    while (n < target / 3) {
        r = r * 1103515245u + 12345u;
        size_t wl = 1 + (r >> 16) % 9;
        for (size_t k = 0; k < wl; k++) s[n++] = (char)('a' + (r >> (k + 3)) % 26);
        s[n++] = ' ';
    }
    size_t giant_start = n;
    while (n < giant_start + target / 7) { memcpy(s + n, "äöü€", 9); n += 9; }
    while (n < target) {
        r = r * 1103515245u + 12345u;
        size_t wl = 1 + (r >> 16) % 9;
        s[n++] = ' ';
        for (size_t k = 0; k < wl; k++) s[n++] = (char)('a' + (r >> (k + 3)) % 26);
    }
    s[n] = 0;
    rag_doc *d = extract("line.txt", s, n);
    CHECK_EQ_INT(d->n_blocks, 1);
    clock_t t0 = clock();
    rag_chunk_list l = chunk(d, 256, 32, count_chars, NULL);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECK(secs < 20, "chunking 2 MB took %.1f s", secs);
    check_common(d, &l, 256, count_chars);
    check_exact_spans(&l, s, n);
    size_t giant_pieces = 0;
    for (size_t i = 0; i < l.n; i++) {
        const rag_chunk *c = &l.chunks[i];
        /* valid UTF-8: never cut inside a character */
        rag_doc *v = NULL;
        char err[256];
        CHECK(rag_extract_memory("piece.txt", c->text, c->text_len, RAG_DOC_TXT, NULL, &v, err, sizeof err) == RAG_OK &&
                  strcmp(v->encoding, "UTF-8") == 0, "chunk %zu is valid UTF-8", i);
        rag_doc_free(v);
        CHECK(c->text_len <= 256 * 32, "chunk %zu has %zu bytes", i, c->text_len);
        giant_pieces += c->text_off >= giant_start && c->text_off < giant_start + target / 7;
        CHECK_EQ_INT(c->line_start, 1);
    }
    CHECK(giant_pieces > 10, "the giant word was cut into %zu pieces", giant_pieces);
    /* with the word counter the giant word is one token but still bounded in bytes */
    rag_chunk_list_free(&l);
    l = chunk(d, 256, 32, rag_count_words, NULL);
    check_common(d, &l, 256, rag_count_words);
    for (size_t i = 0; i < l.n; i++) CHECK(l.chunks[i].text_len <= 256 * 32, "chunk %zu bytes", i);
    rag_chunk_list_free(&l);
    rag_doc_free(d);
    free(s);
}

TEST(empty_and_blank_documents) {
    const char *srcs[] = {"", "   \n\n\t\n", "\xEF\xBB\xBF"};
    for (size_t i = 0; i < 3; i++) {
        rag_doc *d = extract(i == 1 ? "blank.md" : "empty.txt", srcs[i], strlen(srcs[i]));
        rag_chunk_list l = chunk(d, 256, 32, rag_count_words, NULL);
        CHECK_EQ_INT(l.n, 0);
        rag_chunk_list_free(&l);
        rag_doc_free(d);
    }
    /* a document that is only a heading keeps it as its one chunk */
    rag_doc *d = extract("h.md", "# Only a title\n", 15);
    rag_chunk_list l = chunk(d, 256, 32, rag_count_words, NULL);
    CHECK_EQ_INT(l.n, 1);
    if (l.n) CHECK_EQ_STR(l.chunks[0].text, "Only a title");
    rag_chunk_list_free(&l);
    rag_doc_free(d);
}

TEST(deterministic_and_errors) {
    char *src = prose(20, 3);
    rag_doc *d = extract("det.md", src, strlen(src));
    rag_chunk_list a = chunk(d, 50, 10, count_chars, NULL), b = chunk(d, 50, 10, count_chars, NULL);
    CHECK_EQ_INT(a.n, b.n);
    for (size_t i = 0; i < a.n && i < b.n; i++) {
        CHECK_EQ_STR(a.chunks[i].text, b.chunks[i].text);
        CHECK_EQ_INT(a.chunks[i].byte_start, b.chunks[i].byte_start);
    }
    rag_chunk_list_free(&a);
    rag_chunk_list_free(&b);
    rag_chunk_params p = rag_chunk_default_params();
    rag_chunk_list l;
    char err[256];
    p.overlap_tokens = 200;
    CHECK_EQ_INT(rag_chunk_doc(d, &p, rag_count_words, NULL, &l, err, sizeof err), RAG_ERR_ARG);
    CHECK(strstr(err, "overlap") != NULL, "%s", err);
    p = rag_chunk_default_params();
    CHECK_EQ_INT(rag_chunk_doc(d, &p, count_fail, NULL, &l, err, sizeof err), RAG_ERR_ARG);
    CHECK(strstr(err, "counter") != NULL && strstr(err, "det.md") != NULL, "the error names the file: %s", err);
    CHECK_EQ_INT(l.n, 0);
    rag_doc_free(d);
    free(src);
}

TEST(sample_corpus_chunks) {
    rag_walk_result r;
    char err[512];
    REQUIRE(rag_walk("data/sample", NULL, &r, err, sizeof err) == RAG_OK, "%s", err);
    size_t total = 0;
    for (size_t i = 0; i < r.n; i++) {
        if (r.entries[i].skip != RAG_SKIP_NONE) continue;
        rag_doc *d = NULL;
        REQUIRE(rag_extract_file(r.entries[i].path, r.entries[i].type, NULL, &d, err, sizeof err) == RAG_OK, "%s", err);
        rag_chunk_list l = chunk(d, 128, 16, count_chars, NULL);
        check_common(d, &l, 128, count_chars);
        if (d->exact_spans) {
            size_t len;
            char *orig = test_read_file(r.entries[i].path, &len);
            check_exact_spans(&l, orig, len);
            free(orig);
        }
        CHECK(l.n >= 1, "%s: no chunks", r.entries[i].rel);
        total += l.n;
        rag_chunk_list_free(&l);
        rag_doc_free(d);
    }
    CHECK(total >= 30, "%zu chunks in the sample corpus", total);
    rag_walk_result_free(&r);
}

/* The real counter: the Mistral tokenizer through llm_tokenize (no BOS). */
typedef struct {
    const llm_model *m;
    int32_t *ids;
    size_t cap;
    long calls;
} mistral_counter;

static int count_mistral(void *user, const char *t, size_t n) {
    mistral_counter *mc = user;
    size_t need = 0;
    mc->calls++;
    for (;;) {
        int rc = llm_tokenize(mc->m, t, n, false, false, mc->ids, mc->cap, &need);
        if (rc == LLM_OK) return (int)need;
        if (rc != LLM_ERR_ARG || need <= mc->cap) return -1;
        int32_t *ni = realloc(mc->ids, need * sizeof *ni);
        if (!ni) return -1;
        mc->ids = ni;
        mc->cap = need;
    }
}

static mistral_counter *g_mc;
static int count_mistral_g(void *user, const char *t, size_t n) {
    (void)user;
    return count_mistral(g_mc, t, n);
}

TEST(real_mistral_tokenizer) {
    const char *path = test_require_shared("models/mistral-v0.1-vocab-derived.gguf");
    llm_model_params mp = llm_model_default_params();
    mp.vocab_only = true;
    llm_model *m = NULL;
    char err[512] = "";
    int rc = llm_model_load(path, &mp, &m, err, sizeof err);
    REQUIRE(rc == LLM_OK, "%s", err);
    mistral_counter mc = {.m = m};
    g_mc = &mc;
    /* the counter itself: a known sentence is a handful of tokens */
    int k = count_mistral(&mc, "Hello world", 11);
    CHECK(k >= 2 && k <= 4, "\"Hello world\" = %d tokens", k);
    /* rag_count_llm_tokens agrees, also past its stack buffer */
    CHECK_EQ_INT(rag_count_llm_tokens(m, "Hello world", 11), k);
    CHECK_EQ_INT(rag_count_llm_tokens(m, "[INST]", 6), count_mistral(&mc, "[INST]", 6));
    CHECK(rag_count_llm_tokens(m, "[INST]", 6) > 1, "control tokens are not parsed in documents");
    {
        size_t bn = 30000;
        char *bs = malloc(bn);
        for (size_t i = 0; i < bn; i++) bs[i] = (char)('a' + (i * 7) % 26);
        int want = count_mistral(&mc, bs, bn);
        CHECK(want > 2048, "%d tokens", want);
        CHECK_EQ_INT(rag_count_llm_tokens(m, bs, bn), want);
        free(bs);
    }
    const char *de =
        "Die Reisekostenabrechnung ist spätestens 30 Tage nach Reiseende einzureichen, z. B. "
        "über das Spesenportal. Übernachtungen dürfen 130 € pro Nacht nicht übersteigen. Für Fragen steht "
        "Dr. Müller zur Verfügung. Bahnreisen werden grundsätzlich in der 2. Klasse gebucht.\n\n";
    size_t dl = strlen(de);
    size_t reps = getenv("MRAG_ASAN") ? 10 : 40;
    const char *head = "# Reisekosten\n\n";
    size_t hl = strlen(head), sl = hl + dl * reps;
    char *src = malloc(sl + 1);
    memcpy(src, head, hl);
    for (size_t i = 0; i < reps; i++) memcpy(src + hl + i * dl, de, dl);
    src[sl] = 0;
    rag_doc *d = extract("de.md", src, sl);
    rag_chunk_list l = chunk(d, 256, 32, count_mistral_g, NULL);
    check_common(d, &l, 256, count_mistral_g);
    check_exact_spans(&l, src, sl);
    CHECK(l.n >= 4, "%zu chunks", l.n);
    for (size_t i = 0; i < l.n; i++) {
        CHECK(l.chunks[i].n_tokens > 128 || i + 1 == l.n, "chunk %zu is only %d tokens", i, l.chunks[i].n_tokens);
        CHECK_EQ_STR(l.chunks[i].heading_path, "Reisekosten");
        if (i) {
            size_t a_end = l.chunks[i - 1].text_off + l.chunks[i - 1].text_len;
            REQUIRE(l.chunks[i].text_off < a_end, "overlap %zu", i);
            int ov = count_mistral(&mc, d->text + l.chunks[i].text_off, a_end - l.chunks[i].text_off);
            CHECK(ov <= 32 && ov >= 20, "overlap of %d tokens", ov);
        }
    }
    rag_chunk_list_free(&l);
    rag_doc_free(d);
    free(src);
    /* the sample corpus with the defaults */
    rag_walk_result r;
    REQUIRE(rag_walk("data/sample", NULL, &r, err, sizeof err) == RAG_OK, "%s", err);
    for (size_t i = 0; i < r.n; i++) {
        if (r.entries[i].skip != RAG_SKIP_NONE) continue;
        REQUIRE(rag_extract_file(r.entries[i].path, r.entries[i].type, NULL, &d, err, sizeof err) == RAG_OK, "%s", err);
        l = chunk(d, 256, 32, rag_count_llm_tokens, m);
        check_common(d, &l, 256, count_mistral_g);
        rag_chunk_list_free(&l);
        rag_doc_free(d);
    }
    rag_walk_result_free(&r);
    free(mc.ids);
    llm_model_free(m);
}

TEST(blank_line_runs_count_as_tokens) {
    /* newlines are tokens (count_chars counts them, as the Mistral tokenizer
     * does): hundreds of blank lines between paragraphs must not make a
     * chunk exceed the limit, nor make chunking fail (a fuzzer found this) */
    size_t cap = 64 * 1024, n = 0;
    char *src = malloc(cap);
    for (int para = 0; para < 12; para++) {
        n += (size_t)snprintf(src + n, cap - n, "Paragraph %d has a few words in it. Second sentence here.", para);
        int blanks = para % 3 == 0 ? 300 : para % 3 == 1 ? 2 : 45;
        for (int k = 0; k < blanks; k++) src[n++] = '\n';
    }
    src[n] = 0;
    rag_doc *d = extract("blank.txt", src, n);
    for (int overlap = 0; overlap <= 8; overlap += 8) {
        rag_chunk_list l = chunk(d, 40, overlap, count_chars, NULL);
        check_common(d, &l, 40, count_chars);
        check_exact_spans(&l, src, n);
        /* every paragraph is in some chunk */
        for (int para = 0; para < 12; para++) {
            char want[64];
            snprintf(want, sizeof want, "Paragraph %d has", para);
            bool found = false;
            for (size_t i = 0; i < l.n && !found; i++) found = strstr(l.chunks[i].text, want) != NULL;
            CHECK(found, "\"%s\" is in a chunk", want);
        }
        rag_chunk_list_free(&l);
    }
    rag_doc_free(d);
    free(src);
}

TEST_MAIN(RUN(limit_and_overlap_with_word_counter), RUN(limit_with_non_additive_counter),
          RUN(split_prefers_paragraphs_then_sentences), RUN(sentences_with_abbreviations_en_de), RUN(heading_paths),
          RUN(html_line_spans_contain_text), RUN(pdf_pages_are_boundaries), RUN(giant_single_line),
          RUN(empty_and_blank_documents), RUN(blank_line_runs_count_as_tokens), RUN(deterministic_and_errors), RUN(sample_corpus_chunks),
          RUN(real_mistral_tokenizer))
