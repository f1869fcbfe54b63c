/* extract_text.c — plain text and Markdown extraction: encoding detection
 * and normalisation with an exact map back to the original bytes, paragraph
 * blocks, Markdown headings and code fences. */
#include "rag/ingest_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Windows-1252 0x80..0x9F (0 = undefined there; decoded as U+FFFD). */
static const uint16_t cp1252_hi[32] = {
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
    0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
};

/* Adds one decoded code point standing for on original bytes, with the
 * normalisation rules: CR LF and lone CR -> LF (the caller passes CR LF as
 * one unit), C0 controls other than TAB/LF and DEL -> space. */
static int put_cp(rag_map_builder *mb, uint32_t cp, size_t on) {
    char u[4];
    if (cp == '\r') cp = '\n';
    else if ((cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0x7F) cp = ' ';
    else if (cp == 0xFEFF && mb->text.len == 0) return rag_map_add(mb, "", 0, on);  /* BOM */
    size_t n = rag_utf8_encode(cp, u);
    return rag_map_add(mb, u, n, on);
}

static bool plain_byte(unsigned char c) {
    return c >= 0x20 ? c != 0x7F : (c == '\t' || c == '\n');
}

/* Valid UTF-8: copies runs of plain bytes in one step. */
static int decode_utf8(rag_map_builder *mb, const unsigned char *s, size_t n) {
    size_t i = 0;
    int rc = RAG_OK;
    while (i < n && rc == RAG_OK) {
        size_t j = i;
        while (j < n && plain_byte(s[j])) j++;
        if (j > i) {
            rc = rag_map_add(mb, (const char *)s + i, j - i, j - i);
            i = j;
            continue;
        }
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
            rc = rag_map_add(mb, "\n", 1, 2);
            i += 2;
        } else {
            rc = put_cp(mb, s[i], 1);
            i++;
        }
    }
    return rc;
}

static int decode_utf16(rag_map_builder *mb, const unsigned char *s, size_t n, bool le) {
    int rc = RAG_OK;
    size_t i = 0;
    while (i + 1 < n && rc == RAG_OK) {
        uint32_t u = le ? (uint32_t)(s[i] | s[i + 1] << 8) : (uint32_t)(s[i] << 8 | s[i + 1]);
        size_t used = 2;
        if (u >= 0xD800 && u <= 0xDBFF && i + 3 < n) {
            uint32_t v = le ? (uint32_t)(s[i + 2] | s[i + 3] << 8) : (uint32_t)(s[i + 2] << 8 | s[i + 3]);
            if (v >= 0xDC00 && v <= 0xDFFF) {
                u = 0x10000 + ((u - 0xD800) << 10) + (v - 0xDC00);
                used = 4;
            }
        }
        if (u >= 0xD800 && u <= 0xDFFF) u = 0xFFFD;    /* unpaired surrogate */
        if (u == '\r' && i + 3 < n) {
            uint32_t v = le ? (uint32_t)(s[i + 2] | s[i + 3] << 8) : (uint32_t)(s[i + 2] << 8 | s[i + 3]);
            if (v == '\n') used = 4;
        }
        rc = put_cp(mb, u, used);
        i += used;
    }
    if (rc == RAG_OK && i < n) rc = put_cp(mb, 0xFFFD, n - i);   /* odd trailing byte */
    return rc;
}

/* UTF-32 (after its BOM): code points past U+10FFFF and surrogates become
 * U+FFFD, as does a trailing partial unit. */
static int decode_utf32(rag_map_builder *mb, const unsigned char *s, size_t n, bool le) {
    int rc = RAG_OK;
    size_t i = 0;
    while (i + 3 < n && rc == RAG_OK) {
        uint32_t u = le ? (uint32_t)s[i] | (uint32_t)s[i + 1] << 8 | (uint32_t)s[i + 2] << 16 | (uint32_t)s[i + 3] << 24
                        : (uint32_t)s[i] << 24 | (uint32_t)s[i + 1] << 16 | (uint32_t)s[i + 2] << 8 | (uint32_t)s[i + 3];
        size_t used = 4;
        if (u > 0x10FFFF || (u >= 0xD800 && u <= 0xDFFF)) u = 0xFFFD;
        if (u == '\r' && i + 7 < n) {
            uint32_t v = le ? (uint32_t)s[i + 4] | (uint32_t)s[i + 5] << 8 | (uint32_t)s[i + 6] << 16 | (uint32_t)s[i + 7] << 24
                            : (uint32_t)s[i + 4] << 24 | (uint32_t)s[i + 5] << 16 | (uint32_t)s[i + 6] << 8 | (uint32_t)s[i + 7];
            if (v == '\n') used = 8;
        }
        rc = put_cp(mb, u, used);
        i += used;
    }
    if (rc == RAG_OK && i < n) rc = put_cp(mb, 0xFFFD, n - i);
    return rc;
}

static int decode_cp1252(rag_map_builder *mb, const unsigned char *s, size_t n) {
    int rc = RAG_OK;
    for (size_t i = 0; i < n && rc == RAG_OK; i++) {
        unsigned char c = s[i];
        if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
            rc = rag_map_add(mb, "\n", 1, 2);
            i++;
            continue;
        }
        uint32_t cp = c;
        if (c >= 0x80 && c <= 0x9F) cp = cp1252_hi[c - 0x80] ? cp1252_hi[c - 0x80] : 0xFFFD;
        rc = put_cp(mb, cp, 1);
    }
    return rc;
}

/* Windows-1252 is accepted for invalid UTF-8 that looks like Western text:
 * no NUL bytes and at most a quarter of the bytes non-ASCII. */
static bool looks_cp1252(const unsigned char *s, size_t n) {
    size_t hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0) return false;
        if (s[i] >= 0x80) hi++;
    }
    return hi * 4 <= n;
}

int rag_text_decode(const char *name, const unsigned char *data, size_t len,
                    const rag_extract_params *p, rag_doc *d, char *err, size_t errlen) {
    int rc = RAG_OK;
    rag_map_builder mb;
    memset(&mb, 0, sizeof mb);
    mb.text.limit = p->max_text_bytes;
    if (len >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF) {
        if (!rag_utf8_valid(data + 3, len - 3)) {
            rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "%s: has a UTF-8 byte order mark but invalid UTF-8", name);
            goto done;
        }
        snprintf(d->encoding, sizeof d->encoding, "UTF-8");
        mb.orig_pos = 3;
        rc = decode_utf8(&mb, data + 3, len - 3);
    } else if (len >= 4 && ((data[0] == 0xFF && data[1] == 0xFE && data[2] == 0 && data[3] == 0) ||
                            (data[0] == 0 && data[1] == 0 && data[2] == 0xFE && data[3] == 0xFF))) {
        /* before UTF-16: the UTF-32LE mark starts with the UTF-16LE one */
        bool le = data[0] == 0xFF;
        snprintf(d->encoding, sizeof d->encoding, le ? "UTF-32LE" : "UTF-32BE");
        mb.orig_pos = 4;
        rc = decode_utf32(&mb, data + 4, len - 4, le);
    } else if (len >= 2 && ((data[0] == 0xFF && data[1] == 0xFE) || (data[0] == 0xFE && data[1] == 0xFF))) {
        bool le = data[0] == 0xFF;
        snprintf(d->encoding, sizeof d->encoding, le ? "UTF-16LE" : "UTF-16BE");
        mb.orig_pos = 2;
        rc = decode_utf16(&mb, data + 2, len - 2, le);
    } else if (rag_utf8_valid(data, len)) {
        if (memchr(data, 0, len)) {
            rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "%s: binary data (NUL bytes) in a text file", name);
            goto done;
        }
        snprintf(d->encoding, sizeof d->encoding, "UTF-8");
        rc = decode_utf8(&mb, data, len);
    } else if (looks_cp1252(data, len)) {
        snprintf(d->encoding, sizeof d->encoding, "WINDOWS-1252");
        rc = decode_cp1252(&mb, data, len);
    } else {
        rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT,
                         "%s: not text in UTF-8, UTF-16 or UTF-32 (with BOM) or Windows-1252/Latin-1", name);
        goto done;
    }
    if (rc == RAG_ERR_LIMIT) {
        rag_ing_err(err, errlen, rc, "%s: text longer than the limit of %zu bytes", name, p->max_text_bytes);
        goto done;
    }
    if (rc) goto done;
    if (!mb.text.data && (rc = rag_buf_append(&mb.text, "", 0))) goto done;
    /* a closing run so that offsets at the very end map too */
    if ((rc = rag_map_add(&mb, "", 0, 0))) goto done;
    /* line starts */
    size_t nl = 1;
    for (size_t i = 0; i < mb.text.len; i++) nl += mb.text.data[i] == '\n';
    d->line_starts = malloc(nl * sizeof *d->line_starts);
    if (!d->line_starts) { rc = RAG_ERR_NOMEM; goto done; }
    d->line_starts[0] = 0;
    d->n_lines = 1;
    for (size_t i = 0; i < mb.text.len; i++)
        if (mb.text.data[i] == '\n') d->line_starts[d->n_lines++] = i + 1;
    d->text = mb.text.data;
    d->text_len = mb.text.len;
    d->runs = mb.runs;
    d->n_runs = mb.n_runs;
    d->exact_spans = true;
    mb.text.data = NULL;
    mb.runs = NULL;
done:
    rag_buf_release(&mb.text);
    free(mb.runs);
    return rc;
}

/* Adds a block over text [off, off+len) with spans from the exact map. */
static int add_text_block(rag_doc *d, size_t *cap, const rag_extract_params *p, rag_block_kind kind,
                          int level, size_t off, size_t len) {
    if (len == 0) return RAG_OK;
    rag_block b = {
        .kind = kind,
        .level = level,
        .text_off = off,
        .text_len = len,
        .byte_start = rag_doc_orig_offset(d, off),
        .byte_end = rag_doc_orig_offset(d, off + len),
        .line_start = rag_doc_line_at(d, off),
        .line_end = rag_doc_line_at(d, off + len - 1),
    };
    return rag_doc_add_block(d, cap, p->max_blocks, &b);
}

static bool is_space(char c) {
    return c == ' ' || c == '\t';
}

static bool blank_line(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!is_space(s[i])) return false;
    return true;
}

/* Trims [*a, *b) of spaces and tabs on both ends. */
static void trim(const char *t, size_t *a, size_t *b) {
    while (*a < *b && is_space(t[*a])) (*a)++;
    while (*b > *a && is_space(t[*b - 1])) (*b)--;
}

int rag_extract_txt(const char *name, const unsigned char *data, size_t len,
                    const rag_extract_params *p, rag_budget *bg, rag_doc *d, char *err, size_t errlen) {
    int rc = rag_text_decode(name, data, len, p, d, err, errlen);
    if (rc) return rc;
    size_t cap = 0, pa = 0, pb = 0;
    bool open = false;
    const char *t = d->text;
    for (size_t ls = 0; ls <= d->text_len && rc == RAG_OK;) {
        const char *nlp = memchr(t + ls, '\n', d->text_len - ls);
        size_t le = nlp ? (size_t)(nlp - t) : d->text_len;
        if (blank_line(t + ls, le - ls)) {
            if (open) rc = add_text_block(d, &cap, p, RAG_BLOCK_PARAGRAPH, 0, pa, pb - pa);
            open = false;
        } else {
            size_t a = ls, b = le;
            trim(t, &a, &b);
            if (!open) pa = a;
            pb = b;
            open = true;
        }
        if (!nlp) break;
        ls = le + 1;
        if (rc == RAG_OK) rc = rag_budget_check(bg, ls);
    }
    if (rc == RAG_OK && open) rc = add_text_block(d, &cap, p, RAG_BLOCK_PARAGRAPH, 0, pa, pb - pa);
    if (rc == RAG_ERR_LIMIT && !(bg && bg->over))
        rag_ing_err(err, errlen, rc, "%s: more than %zu blocks", name, p->max_blocks);
    return rc;
}

/* ---------------------------------------------------------------- Markdown */

/* An ATX heading "## Title ##": returns the level (1..6) and the title's
 * range, or 0. s[0..n) is the line after at most 3 spaces of indent. */
static int atx_heading(const char *s, size_t n, size_t *ta, size_t *tb) {
    size_t h = 0;
    while (h < n && s[h] == '#') h++;
    if (h == 0 || h > 6 || (h < n && !is_space(s[h]))) return 0;
    size_t a = h, b = n;
    trim(s, &a, &b);
    /* closing sequence: spaces then #s at the end */
    size_t c = b;
    while (c > a && s[c - 1] == '#') c--;
    if (c < b && (c == a || is_space(s[c - 1]))) {
        b = c;
        trim(s, &a, &b);
    }
    *ta = a;
    *tb = b;
    return (int)h;
}

/* A fence line ``` or ~~~ (3+): returns its length and sets *ch, or 0. */
static size_t fence(const char *s, size_t n, char *ch) {
    if (n < 3 || (s[0] != '`' && s[0] != '~')) return 0;
    size_t k = 0;
    while (k < n && s[k] == s[0]) k++;
    if (k < 3) return 0;
    if (s[0] == '`' && memchr(s + k, '`', n - k)) return 0;   /* inline code, not a fence */
    *ch = s[0];
    return k;
}

/* A line made only of c (at least min of them) and trailing spaces. */
static bool rule_of(const char *s, size_t n, char c, size_t min) {
    size_t k = 0, i = 0;
    for (; i < n && (s[i] == c || is_space(s[i])); i++) k += s[i] == c;
    return i == n && k >= min;
}

/* "- ", "* ", "+ ", "12. ", "3) " at the start of a line. */
static bool list_marker(const char *s, size_t n) {
    if (n >= 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+') && is_space(s[1])) return true;
    size_t i = 0;
    while (i < n && i < 9 && s[i] >= '0' && s[i] <= '9') i++;
    return i > 0 && i + 1 < n && (s[i] == '.' || s[i] == ')') && is_space(s[i + 1]);
}

/* YAML front matter ("---" on the first line, closed by "---" or "..."
 * within 200 lines): returns the text offset after it (0 when there is
 * none) and takes a "title:" value as the document title. */
static size_t front_matter(rag_doc *d, int *rc) {
    const char *t = d->text;
    size_t n = d->text_len;
    if (n < 4 || memcmp(t, "---", 3) != 0 || !(t[3] == '\n' || (t[3] == ' ' && rule_of(t, strcspn(t, "\n"), '-', 3))))
        return 0;
    size_t ls = strcspn(t, "\n") + 1;
    const char *title = NULL;
    size_t title_len = 0;
    for (int lines = 0; ls < n && lines < 200; lines++) {
        const char *nlp = memchr(t + ls, '\n', n - ls);
        size_t le = nlp ? (size_t)(nlp - t) : n;
        size_t a = ls, b = le;
        trim(t, &a, &b);
        if ((b - a == 3 && (memcmp(t + a, "---", 3) == 0 || memcmp(t + a, "...", 3) == 0)) && a == ls) {
            if (title && !d->title) {
                if (!(d->title = strndup(title, title_len))) *rc = RAG_ERR_NOMEM;
            }
            return nlp ? le + 1 : le;
        }
        if (b - a > 6 && strncasecmp(t + a, "title:", 6) == 0 && a == ls) {
            size_t va = a + 6, vb = b;
            trim(t, &va, &vb);
            if (vb - va >= 2 && (t[va] == '"' || t[va] == '\'') && t[vb - 1] == t[va]) { va++; vb--; }
            title = t + va;
            title_len = vb - va;
        }
        if (!nlp) break;
        ls = le + 1;
    }
    return 0;   /* never closed: not front matter */
}

int rag_extract_md(const char *name, const unsigned char *data, size_t len,
                   const rag_extract_params *p, rag_budget *bg, rag_doc *d, char *err, size_t errlen) {
    int rc = rag_text_decode(name, data, len, p, d, err, errlen);
    if (rc) return rc;
    const char *t = d->text;
    size_t cap = 0;
    /* open paragraph or list item */
    bool para = false;
    rag_block_kind para_kind = RAG_BLOCK_PARAGRAPH;
    size_t pa = 0, pb = 0, para_lines = 0;
    /* open fence */
    bool in_fence = false;
    char fch = 0;
    size_t flen = 0, fa = 0, fb = 0;
    bool fence_has = false;

#define FLUSH_PARA()                                                                   \
    do {                                                                               \
        if (para && rc == RAG_OK) rc = add_text_block(d, &cap, p, para_kind, 0, pa, pb - pa); \
        para = false;                                                                  \
    } while (0)

    size_t start = front_matter(d, &rc);
    for (size_t ls = start; ls <= d->text_len && rc == RAG_OK;) {
        if ((rc = rag_budget_check(bg, ls)) != RAG_OK) break;
        const char *nlp = memchr(t + ls, '\n', d->text_len - ls);
        size_t le = nlp ? (size_t)(nlp - t) : d->text_len;
        size_t ind = 0;
        while (ind < 3 && ls + ind < le && t[ls + ind] == ' ') ind++;
        const char *s = t + ls + ind;
        size_t n = le - ls - ind;
        char ch;
        size_t fk;
        if (in_fence) {
            fk = fence(s, n, &ch);
            if (fk >= flen && ch == fch && blank_line(s + fk, n - fk)) {
                if (fence_has) rc = add_text_block(d, &cap, p, RAG_BLOCK_CODE, 0, fa, fb - fa);
                in_fence = false;
            } else if (!blank_line(t + ls, le - ls)) {
                if (!fence_has) fa = ls;
                fb = le;
                while (fb > fa && is_space(t[fb - 1])) fb--;
                fence_has = true;
            }
        } else if ((fk = fence(s, n, &ch)) > 0) {
            FLUSH_PARA();
            in_fence = true;
            fch = ch;
            flen = fk;
            fence_has = false;
        } else if (blank_line(s, n)) {
            FLUSH_PARA();
        } else {
            size_t ha, hb;
            int level = atx_heading(s, n, &ha, &hb);
            if (level > 0) {
                FLUSH_PARA();
                if (hb > ha && rc == RAG_OK)
                    rc = add_text_block(d, &cap, p, RAG_BLOCK_HEADING, level, (size_t)(s - t) + ha, hb - ha);
            } else if (para && para_kind == RAG_BLOCK_PARAGRAPH && para_lines == 1 &&
                       (rule_of(s, n, '=', 1) || rule_of(s, n, '-', 2)) && !memchr(s, ' ', n)) {
                /* setext heading: the one-line paragraph above is the title */
                if (rc == RAG_OK) rc = add_text_block(d, &cap, p, RAG_BLOCK_HEADING, s[0] == '=' ? 1 : 2, pa, pb - pa);
                para = false;
            } else if (!para && (rule_of(s, n, '-', 3) || rule_of(s, n, '*', 3) || rule_of(s, n, '_', 3))) {
                /* thematic break: not text */
            } else {
                bool item = list_marker(s, n);
                if (item) FLUSH_PARA();
                size_t a = ls, b = le;
                trim(t, &a, &b);
                if (!para) {
                    para = true;
                    para_kind = item ? RAG_BLOCK_LIST_ITEM : RAG_BLOCK_PARAGRAPH;
                    pa = a;
                    para_lines = 0;
                }
                pb = b;
                para_lines++;
            }
        }
        if (!nlp) break;
        ls = le + 1;
    }
    FLUSH_PARA();
    if (rc == RAG_OK && in_fence && fence_has)  /* unclosed fence runs to the end */
        rc = add_text_block(d, &cap, p, RAG_BLOCK_CODE, 0, fa, fb - fa);
#undef FLUSH_PARA
    if (rc == RAG_ERR_LIMIT && !(bg && bg->over))
        rag_ing_err(err, errlen, rc, "%s: more than %zu blocks", name, p->max_blocks);
    return rc;
}
