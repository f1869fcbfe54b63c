/* extract_html.c — HTML to text blocks with libxml2's HTML parser (recovering,
 * no network): headings, paragraphs, list items, table cells, <pre>;
 * boilerplate elements dropped; line spans from the parser's line numbers.
 * Runs under the file's budget: a pre-scan refuses elements with more
 * attributes than max_attributes (libxml2 checks each attribute against all
 * before it, so 200,000 of them take minutes inside one call), and the
 * parser's element and text events are checkpoints that stop it. */
#define _GNU_SOURCE /* memmem */
#include "rag/ingest_internal.h"

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum { EL_INLINE = 0, EL_SKIP, EL_BLOCK, EL_HEADING, EL_PRE, EL_LI, EL_CELL, EL_TITLE, EL_BR } el_class;

static el_class classify(const char *name) {
    static const char *const skip[] = {"script", "style", "nav", "header", "footer", "aside", "noscript",
                                       "template", "svg", "math", "iframe", "object", "embed", "canvas",
                                       "select", "button", "head", NULL};
    static const char *const block[] = {"p", "div", "section", "article", "main", "blockquote", "dd", "dt",
                                        "dl", "ul", "ol", "table", "tr", "thead", "tbody", "tfoot", "figure",
                                        "figcaption", "caption", "address", "hr", "form", "fieldset",
                                        "details", "summary", "body", "html", "center", "legend", NULL};
    if (name[0] == 'h' && name[1] >= '1' && name[1] <= '6' && name[2] == 0) return EL_HEADING;
    if (strcasecmp(name, "title") == 0) return EL_TITLE;
    if (strcasecmp(name, "pre") == 0 || strcasecmp(name, "listing") == 0) return EL_PRE;
    if (strcasecmp(name, "li") == 0) return EL_LI;
    if (strcasecmp(name, "td") == 0 || strcasecmp(name, "th") == 0) return EL_CELL;
    if (strcasecmp(name, "br") == 0) return EL_BR;
    for (int i = 0; skip[i]; i++)
        if (strcasecmp(name, skip[i]) == 0) return EL_SKIP;
    for (int i = 0; block[i]; i++)
        if (strcasecmp(name, block[i]) == 0) return EL_BLOCK;
    return EL_INLINE;
}

typedef struct {
    const char *name;
    const rag_extract_params *p;
    rag_budget *b;
    rag_doc *d;
    size_t cap_blocks;
    rag_buf out;            /* doc->text */
    rag_buf cur;            /* text of the open block */
    bool pending_space;     /* a collapsed run of whitespace before the next word */
    long line_min, line_max;
    rag_block_kind kind;
    int level;
    bool in_pre;
    const uint64_t *raw_lines;  /* byte offset of each line of the original */
    size_t n_raw_lines;
    uint64_t raw_len;
    char *err;
    size_t errlen;
} html_state;

static void note_line(html_state *s, long line) {
    if (line <= 0) return;
    if (s->line_min == 0 || line < s->line_min) s->line_min = line;
    if (line > s->line_max) s->line_max = line;
}

/* Ends the open block: its text (if not empty) joins doc->text. */
static int flush(html_state *s) {
    int rc = RAG_OK;
    size_t n = s->cur.len;
    while (n && (s->cur.data[n - 1] == ' ' || s->cur.data[n - 1] == '\n')) n--;
    if (n) {
        if (s->out.len && (rc = rag_buf_append(&s->out, "\n\n", 2))) return rc;
        size_t off = s->out.len;
        if ((rc = rag_buf_append(&s->out, s->cur.data, n))) return rc;
        rag_block b = {.kind = s->kind, .level = s->level, .text_off = off, .text_len = n};
        if (s->line_min > 0) {
            size_t a = (size_t)s->line_min, z = (size_t)s->line_max;
            if (a > s->n_raw_lines) a = s->n_raw_lines;
            if (z > s->n_raw_lines) z = s->n_raw_lines;
            b.line_start = (uint32_t)(a > UINT32_MAX ? UINT32_MAX : a);
            b.line_end = (uint32_t)(z > UINT32_MAX ? UINT32_MAX : z);
            b.byte_start = s->raw_lines[a - 1];
            b.byte_end = z < s->n_raw_lines ? s->raw_lines[z] : s->raw_len;
        }
        if ((rc = rag_doc_add_block(s->d, &s->cap_blocks, s->p->max_blocks, &b))) return rc;
    }
    s->cur.len = 0;
    if (s->cur.data) s->cur.data[0] = 0;
    s->pending_space = false;
    s->line_min = s->line_max = 0;
    return RAG_OK;
}

/* Appends text content: whitespace collapsed outside <pre>. */
static int add_text(html_state *s, const char *t, size_t n, long line) {
    int rc = RAG_OK;
    size_t newlines = 0;
    bool any = false;
    for (size_t i = 0; i < n && rc == RAG_OK; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c == '\n') newlines++;
        if (s->in_pre) {
            if (c == '\r') continue;
            if (c < 0x20 && c != '\n' && c != '\t') c = ' ';
            if (c != '\n' || s->cur.len) rc = rag_buf_putc(&s->cur, (char)c);
            any = true;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            s->pending_space = true;
        } else {
            if (s->pending_space && s->cur.len) rc = rag_buf_putc(&s->cur, ' ');
            s->pending_space = false;
            if (rc == RAG_OK) rc = rag_buf_putc(&s->cur, c < 0x20 ? ' ' : (char)c);
            any = true;
        }
    }
    if (any && line > 0) {
        /* libxml2 numbers a text node by the line where it ends */
        long first = line - (long)newlines;
        note_line(s, first > 0 ? first : line);
        note_line(s, line);
    }
    return rc;
}

static int walk(html_state *s, xmlNode *node, int depth);

/* Collects the text under node into a new block of the given kind. */
static int walk_block(html_state *s, xmlNode *node, int depth, rag_block_kind kind, int level, bool pre) {
    int rc = flush(s);
    if (rc) return rc;
    rag_block_kind saved_kind = s->kind;
    int saved_level = s->level;
    bool saved_pre = s->in_pre;
    s->kind = kind;
    s->level = level;
    s->in_pre = s->in_pre || pre;
    for (xmlNode *c = node->children; c && rc == RAG_OK; c = c->next) rc = walk(s, c, depth + 1);
    if (rc == RAG_OK) rc = flush(s);
    s->kind = saved_kind;
    s->level = saved_level;
    s->in_pre = saved_pre;
    return rc;
}

static int walk(html_state *s, xmlNode *node, int depth) {
    int rc = rag_budget_check(s->b, s->out.len + s->cur.len);
    if (rc) return rc;
    if (depth > s->p->max_depth)
        return rag_ing_err(s->err, s->errlen, RAG_ERR_LIMIT, "%s: HTML nested deeper than %d elements",
                           s->name, s->p->max_depth);
    if (node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE) {
        const char *t = (const char *)node->content;
        return t ? add_text(s, t, strlen(t), xmlGetLineNo(node)) : RAG_OK;
    }
    if (node->type != XML_ELEMENT_NODE || !node->name) return RAG_OK;
    const char *name = (const char *)node->name;
    switch (classify(name)) {
    case EL_SKIP:
        return RAG_OK;
    case EL_TITLE:
        if (!s->d->title) {
            xmlChar *t = xmlNodeGetContent(node);
            rag_buf tb = {0};
            const char *src = t ? (const char *)t : "";
            /* collapse whitespace */
            bool sp = false;
            for (const char *q = src; *q && rc == RAG_OK && tb.len < 1024; q++) {
                if (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') { sp = true; continue; }
                if (sp && tb.len) rc = rag_buf_putc(&tb, ' ');
                sp = false;
                if (rc == RAG_OK) rc = rag_buf_putc(&tb, (unsigned char)*q < 0x20 ? ' ' : *q);
            }
            if (rc == RAG_OK && !tb.data) rc = rag_buf_append(&tb, "", 0);
            xmlFree(t);
            if (rc) { rag_buf_release(&tb); return rc; }
            s->d->title = tb.data;
        }
        return RAG_OK;
    case EL_HEADING:
        return walk_block(s, node, depth, RAG_BLOCK_HEADING, name[1] - '0', false);
    case EL_PRE:
        return walk_block(s, node, depth, RAG_BLOCK_CODE, 0, true);
    case EL_LI:
        return walk_block(s, node, depth, RAG_BLOCK_LIST_ITEM, 0, false);
    case EL_CELL:
        return walk_block(s, node, depth, RAG_BLOCK_TABLE_CELL, 0, false);
    case EL_BLOCK:
        /* a <div> inside a <li> stays part of the list item */
        return walk_block(s, node, depth, s->kind == RAG_BLOCK_HEADING ? RAG_BLOCK_PARAGRAPH : s->kind,
                          0, false);
    case EL_BR:
        if (s->in_pre) return rag_buf_putc(&s->cur, '\n');
        s->pending_space = true;
        return RAG_OK;
    case EL_INLINE:
        break;
    }
    for (xmlNode *c = node->children; c && rc == RAG_OK; c = c->next) rc = walk(s, c, depth + 1);
    return rc;
}

/* libxml2 reports encoding and I/O problems through its generic error
 * handler (stderr by default) even with HTML_PARSE_NOERROR; library code
 * never prints, so these handlers drop them (the result still says what
 * went wrong). */
static void silent_generic(void *ctx, const char *msg, ...) {
    (void)ctx;
    (void)msg;
}
static void silent_structured(void *ctx, xmlErrorPtr e) {
    (void)ctx;
    (void)e;
}

/* ------------------------------------------------------------ budget */

/* The largest number of attributes on one start tag of data[0..len), found
 * the way the HTML parser reads tags: comments, <!...> and <?...> skipped,
 * the contents of script and style skipped, quoted values skipped. Linear.
 * *at is where that tag starts. */
static size_t max_attributes(const unsigned char *data, size_t len, size_t *at) {
    size_t best = 0;
    size_t i = 0;
    *at = 0;
    while (i < len) {
        const unsigned char *lt = memchr(data + i, '<', len - i);
        if (!lt) break;
        i = (size_t)(lt - data) + 1;
        if (i >= len) break;
        if (data[i] == '!' || data[i] == '?') {
            const char *end = i + 2 < len && data[i] == '!' && data[i + 1] == '-' && data[i + 2] == '-'
                                  ? memmem(data + i + 3, len - i - 3, "-->", 3)
                                  : memchr(data + i, '>', len - i);
            i = end ? (size_t)((const unsigned char *)end - data) + 1 : len;
            continue;
        }
        if (!((data[i] >= 'a' && data[i] <= 'z') || (data[i] >= 'A' && data[i] <= 'Z'))) continue;
        size_t tag = i - 1, ns = i;
        while (i < len && data[i] != '>' && data[i] != '/' && data[i] != ' ' && data[i] != '\t' && data[i] != '\n' &&
               data[i] != '\r' && data[i] != '\f')
            i++;
        size_t nlen = i - ns;
        bool raw = (nlen == 6 && strncasecmp((const char *)data + ns, "script", 6) == 0) ||
                   (nlen == 5 && strncasecmp((const char *)data + ns, "style", 5) == 0);
        size_t count = 0;
        for (;;) {
            while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r' ||
                               data[i] == '\f' || data[i] == '/'))
                i++;
            if (i >= len || data[i] == '>') break;
            count++;
            while (i < len && data[i] != '=' && data[i] != '>' && data[i] != ' ' && data[i] != '\t' &&
                   data[i] != '\n' && data[i] != '\r' && data[i] != '\f' && data[i] != '/')
                i++;
            while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r')) i++;
            if (i < len && data[i] == '=') {
                i++;
                while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r')) i++;
                if (i < len && (data[i] == '"' || data[i] == '\'')) {
                    const unsigned char *q = memchr(data + i + 1, data[i], len - i - 1);
                    i = q ? (size_t)(q - data) + 1 : len;
                } else {
                    while (i < len && data[i] != '>' && data[i] != ' ' && data[i] != '\t' && data[i] != '\n' &&
                           data[i] != '\r' && data[i] != '\f')
                        i++;
                }
            }
        }
        if (count > best) {
            best = count;
            *at = tag;
        }
        if (raw && i < len) {
            /* the element's text is not markup: on to its end tag */
            const char *close = nlen == 6 ? "</script" : "</style";
            size_t cl = strlen(close), j = i;
            while (j + cl <= len) {
                const unsigned char *q = memchr(data + j, '<', len - j);
                if (!q) { j = len; break; }
                j = (size_t)(q - data);
                if (j + cl <= len && strncasecmp((const char *)data + j, close, cl) == 0) break;
                j++;
            }
            i = j;
        }
    }
    return best;
}

/* libxml2's HTML parser ends a DOCTYPE at its first '>', so an internal
 * subset ("<!DOCTYPE html [ <!ENTITY x 'text'> ]>") would be read as page
 * text. Finds the subset of a DOCTYPE at the start of d[0..n) (after a
 * BOM, blanks and comments): [*a, *b) runs from its '[' to its ']' and the
 * blanks after; *a == *b when there is none. Quoted literals, comments and
 * processing instructions inside the subset may hold ']' and '>'. */
static void doctype_subset(const unsigned char *d, size_t n, size_t *a, size_t *b) {
    *a = *b = 0;
    size_t i = 0;
    if (n >= 3 && d[0] == 0xEF && d[1] == 0xBB && d[2] == 0xBF) i = 3;
    for (;;) {
        while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r' || d[i] == '\f')) i++;
        if (i + 4 <= n && memcmp(d + i, "<!--", 4) == 0) {
            const unsigned char *e = memmem(d + i + 4, n - i - 4, "-->", 3);
            if (!e) return;
            i = (size_t)(e - d) + 3;
            continue;
        }
        break;
    }
    if (i + 9 > n || strncasecmp((const char *)d + i, "<!DOCTYPE", 9) != 0) return;
    i += 9;
    unsigned char q = 0;
    while (i < n && (q || (d[i] != '[' && d[i] != '>'))) {
        if (q) { if (d[i] == q) q = 0; }
        else if (d[i] == '"' || d[i] == '\'') q = d[i];
        i++;
    }
    if (i >= n || d[i] != '[') return;
    size_t start = i++;
    q = 0;
    while (i < n) {
        if (q) {
            if (d[i] == q) q = 0;
            i++;
        } else if (d[i] == '"' || d[i] == '\'') {
            q = d[i++];
        } else if (i + 4 <= n && memcmp(d + i, "<!--", 4) == 0) {
            const unsigned char *e = memmem(d + i + 4, n - i - 4, "-->", 3);
            i = e ? (size_t)(e - d) + 3 : n;
        } else if (i + 2 <= n && d[i] == '<' && d[i + 1] == '?') {
            const unsigned char *e = memmem(d + i + 2, n - i - 2, "?>", 2);
            i = e ? (size_t)(e - d) + 2 : n;
        } else if (d[i] == ']') {
            i++;
            while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r')) i++;
            break;
        } else {
            i++;
        }
    }
    *a = start;
    *b = i;
}

/* The budget's checkpoints inside the parser: libxml2 builds the tree with
 * its SAX2 handlers; these wrap the element and text events, and stop the
 * parser (xmlStopParser) once the budget is spent. */
typedef struct {
    rag_budget *b;
    startElementSAXFunc start;
    charactersSAXFunc chars;
    charactersSAXFunc cdata;
} sax_meter;

static void meter_check(void *ctx) {
    htmlParserCtxtPtr c = ctx;
    sax_meter *m = c->_private;
    if (rag_budget_check(m->b, 0) != RAG_OK) xmlStopParser(c);
}

static void meter_start(void *ctx, const xmlChar *name, const xmlChar **atts) {
    sax_meter *m = ((htmlParserCtxtPtr)ctx)->_private;
    m->start(ctx, name, atts);
    meter_check(ctx);
}

static void meter_chars(void *ctx, const xmlChar *ch, int len) {
    sax_meter *m = ((htmlParserCtxtPtr)ctx)->_private;
    m->chars(ctx, ch, len);
    meter_check(ctx);
}

static void meter_cdata(void *ctx, const xmlChar *ch, int len) {
    sax_meter *m = ((htmlParserCtxtPtr)ctx)->_private;
    m->cdata(ctx, ch, len);
    meter_check(ctx);
}

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static void xml_init(void) {
    xmlInitParser();
}

int rag_extract_html(const char *name, const unsigned char *data, size_t len,
                     const rag_extract_params *p, rag_budget *bg, rag_doc *d, char *err, size_t errlen) {
    int rc = RAG_OK;
    htmlDocPtr doc = NULL;
    html_state s;
    memset(&s, 0, sizeof s);
    uint64_t *lines = NULL;
    unsigned char *blanked = NULL;
    if (len > INT_MAX || len > p->max_text_bytes * 4)
        return rag_ing_err(err, errlen, RAG_ERR_LIMIT, "%s: HTML file of %zu bytes is over the limit", name, len);
    pthread_once(&xml_once, xml_init);
    /* per-thread in libxml2, so set on every call */
    xmlSetGenericErrorFunc(NULL, silent_generic);
    xmlSetStructuredErrorFunc(NULL, silent_structured);
    /* byte offset of every line of the original, for block byte spans */
    size_t nl = 1;
    for (size_t i = 0; i < len; i++) nl += data[i] == '\n';
    if (!(lines = malloc(nl * sizeof *lines))) return RAG_ERR_NOMEM;
    lines[0] = 0;
    for (size_t i = 0, k = 1; i < len; i++)
        if (data[i] == '\n') lines[k++] = i + 1;
    if (len == 0) goto finish;  /* libxml2 rejects an empty buffer; empty text is the honest answer */
    if (p->max_attributes > 0) {
        size_t at, n = max_attributes(data, len, &at);
        if (n > (size_t)p->max_attributes) {
            rc = rag_budget_refuse(bg, "an element with %zu attributes at byte %zu (the limit is %d: the HTML "
                                       "parser's time grows with the square of the count)",
                                   n, at, p->max_attributes);
            goto done;
        }
    }
    int opts = HTML_PARSE_RECOVER | HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING;
    /* htmlReadMemory would drop XML_PARSE_BIG_LINES (htmlCtxtUseOptions does
     * not know it) and cap line numbers at 65535, so build the context here. */
    size_t sub_a, sub_b;
    doctype_subset(data, len, &sub_a, &sub_b);
    if (sub_b > sub_a) {
        /* blanked in a copy, newlines kept so that line numbers stay */
        if (!(blanked = malloc(len))) { rc = RAG_ERR_NOMEM; goto done; }
        memcpy(blanked, data, len);
        for (size_t i = sub_a; i < sub_b; i++)
            if (blanked[i] != '\n') blanked[i] = ' ';
    }
    htmlParserCtxtPtr ctxt = htmlCreateMemoryParserCtxt((const char *)(blanked ? blanked : data), (int)len);
    if (!ctxt) { rc = RAG_ERR_NOMEM; goto done; }
    htmlCtxtUseOptions(ctxt, opts);
    ctxt->options |= XML_PARSE_BIG_LINES;
    ctxt->linenumbers = 1;
    sax_meter meter = {.b = bg};
    if (bg && ctxt->sax && ctxt->sax->startElement && ctxt->sax->characters) {
        meter.start = ctxt->sax->startElement;
        meter.chars = ctxt->sax->characters;
        meter.cdata = ctxt->sax->cdataBlock;
        ctxt->_private = &meter;
        ctxt->sax->startElement = meter_start;
        ctxt->sax->characters = meter_chars;
        if (meter.cdata) ctxt->sax->cdataBlock = meter_cdata;
    }
    htmlParseDocument(ctxt);
    doc = ctxt->myDoc;
    ctxt->myDoc = NULL;
    /* libxml2 halts at 256 nested elements ("Excessive depth", an internal
     * error) and silently keeps only what came before: say so instead */
    bool too_deep = ctxt->errNo == XML_ERR_INTERNAL_ERROR &&
                    (!ctxt->lastError.message || strstr(ctxt->lastError.message, "depth"));
    htmlFreeParserCtxt(ctxt);
    if (bg && bg->over) { rc = RAG_ERR_LIMIT; goto done; }
    if (too_deep) {
        rc = rag_ing_err(err, errlen, RAG_ERR_LIMIT,
                         "%s: HTML nested deeper than the parser's limit of 256 elements", name);
        goto done;
    }
    if (!doc) {
        rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "%s: the HTML parser could not read the file", name);
        goto done;
    }
finish:
    s.name = name;
    s.p = p;
    s.b = bg;
    s.d = d;
    s.out.limit = p->max_text_bytes;
    s.cur.limit = p->max_text_bytes;
    s.kind = RAG_BLOCK_PARAGRAPH;
    s.raw_lines = lines;
    s.n_raw_lines = nl;
    s.raw_len = len;
    s.err = err;
    s.errlen = errlen;
    if (err && errlen) err[0] = 0;
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (root) {
        /* <title> sits in <head>, which is otherwise skipped */
        for (xmlNode *h = root->children; h && rc == RAG_OK; h = h->next)
            if (h->type == XML_ELEMENT_NODE && strcasecmp((const char *)h->name, "head") == 0)
                for (xmlNode *t = h->children; t && rc == RAG_OK; t = t->next)
                    if (t->type == XML_ELEMENT_NODE && strcasecmp((const char *)t->name, "title") == 0)
                        rc = walk(&s, t, 1);
        for (xmlNode *c = root; c && rc == RAG_OK; c = c->next) rc = walk(&s, c, 0);
    }
    if (rc == RAG_OK) rc = flush(&s);
    if (rc == RAG_ERR_LIMIT && err && !err[0] && !(bg && bg->over))
        rag_ing_err(err, errlen, rc, "%s: extracted text exceeds the limits", name);
    if (rc) goto done;
    if (!s.out.data && (rc = rag_buf_append(&s.out, "", 0))) goto done;
    d->text = s.out.data;
    d->text_len = s.out.len;
    s.out.data = NULL;
    snprintf(d->encoding, sizeof d->encoding, "%s",
             doc && doc->encoding ? (const char *)doc->encoding : "UTF-8");
    d->exact_spans = false;
done:
    rag_buf_release(&s.out);
    rag_buf_release(&s.cur);
    free(lines);
    free(blanked);
    if (doc) xmlFreeDoc(doc);
    return rc;
}
