/* extract_mail.c — e-mail: one message (.eml, RFC 5322 / MIME) and
 * mailboxes (.mbox, mboxo/mboxrd: messages after "From " lines).
 *
 * MIME is parsed by GMime (transfer encodings, RFC 2047 encoded-words and
 * RFC 2231 parameters, charsets to UTF-8 through iconv, multipart and
 * message/rfc822 trees, damaged input read best-effort); the mbox split,
 * the choice of parts and the document built from them are here.
 *
 * A message becomes: a heading (its subject), a header block ("From:",
 * "To:", "Cc:", "Date:", "Subject:" lines), the body (text/plain preferred
 * within multipart/alternative, else text/html through the HTML
 * extractor), then each attachment under a heading "Attachment N: NAME",
 * extracted by the extractor of its type (txt, md, html, pdf, docx, ...,
 * and .eml / message/rfc822 recursively) under the file's budget, to a
 * nesting depth of MAIL_MAX_DEPTH. An attachment that cannot be read leaves
 * one line saying why; the message is still indexed.
 *
 * Citation units (rag_cite_tail): page = the message's number in an mbox
 * (0 for an .eml), line_start = line_end = the attachment's number within
 * its message (0 = the message's own text): "#msg=3", "#msg=3,att=1",
 * "#att=2". The attachment's name is in the heading path of its chunks. */
#define _GNU_SOURCE /* memmem */
#include "rag/ingest_internal.h"

#include <gmime/gmime.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAIL_MAX_DEPTH 8            /* attachments / forwarded messages within each other */
#define MAIL_MAX_PARTS 2000         /* "multipart/" + "message/" per message (a pre-scan:
                                       GMime's parser recurses into each) */
#define MAIL_MAX_MESSAGES 1000000   /* per mbox */

typedef struct {
    const char *name;
    const rag_extract_params *p;
    rag_budget *b;
    rag_doc *d;
    char *err;
    size_t errlen;
    rag_buf out;                /* the document's text */
    size_t cap;                 /* of d->blocks */
    uint32_t msg;               /* mbox: the message's number; eml: 0 */
    uint32_t att;               /* attachments of the current top-level message so far */
    uint32_t cur_att;           /* the unit being written (0 = the message's text) */
} mx;

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
static void gmime_start(void) { g_mime_init(); }

/* The first problem of the file, named: rag_errf_first. */
#define fail(x, rc, ...) rag_errf_first((x)->err, (x)->errlen, (x)->name, (rc), __VA_ARGS__)

static int check(mx *x) { return rag_budget_check(x->b, x->out.len); }

/* Appends text as one block of kind (trimmed of surrounding white space;
 * nothing when empty). */
static int add_block(mx *x, rag_block_kind kind, int level, const char *s, size_t n) {
    while (n && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r')) { s++; n--; }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) n--;
    if (!n) return RAG_OK;
    if (x->out.len && rag_buf_append(&x->out, "\n\n", 2)) return RAG_ERR_NOMEM;
    size_t off = x->out.len;
    if (rag_buf_append(&x->out, s, n)) return RAG_ERR_NOMEM;
    /* no control bytes but LF and tab in the text */
    for (size_t i = off; i < x->out.len; i++) {
        unsigned char c = (unsigned char)x->out.data[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) x->out.data[i] = ' ';
    }
    rag_block bl = {.kind = kind, .level = kind == RAG_BLOCK_HEADING ? level : 0, .text_off = off,
                    .text_len = n, .page = x->msg, .line_start = x->cur_att, .line_end = x->cur_att};
    int rc = rag_doc_add_block(x->d, &x->cap, x->p->max_blocks, &bl);
    if (rc == RAG_ERR_LIMIT) return fail(x, rc, "more than %zu blocks", x->p->max_blocks);
    return rc ? rc : check(x);
}

/* Appends the blocks of a document extracted from a part, its headings
 * moved below level (so they nest under the part's heading). */
static int add_doc(mx *x, const rag_doc *s, int level) {
    for (size_t i = 0; i < s->n_blocks; i++) {
        const rag_block *sb = &s->blocks[i];
        if (sb->text_off > s->text_len || sb->text_len > s->text_len - sb->text_off) continue;
        int lv = sb->kind == RAG_BLOCK_HEADING ? sb->level + level : 0;
        if (lv > 6) lv = 6;
        rag_block_kind k = sb->kind == RAG_BLOCK_PAGE ? RAG_BLOCK_PARAGRAPH : sb->kind;
        int rc = add_block(x, k, lv, s->text + sb->text_off, sb->text_len);
        if (rc) return rc;
    }
    return RAG_OK;
}

/* Extracts bytes of type t with the format's extractor under the file's
 * budget and appends the result. RAG_OK with *why set when the part could
 * not be read (the caller notes it); other codes stop the file. */
static int add_extracted(mx *x, const char *pname, const unsigned char *data, size_t len, rag_doc_type t, int level,
                         char *why, size_t whylen) {
    if (!data) data = (const unsigned char *)"";    /* an empty part: GMime's array has no buffer */
    rag_doc *s = calloc(1, sizeof *s);
    if (!s) return RAG_ERR_NOMEM;
    s->type = t;
    char e[512] = "";
    int rc;
    switch (t) {
    case RAG_DOC_TXT: rc = rag_extract_txt(pname, data, len, x->p, x->b, s, e, sizeof e); break;
    case RAG_DOC_MD: rc = rag_extract_md(pname, data, len, x->p, x->b, s, e, sizeof e); break;
    case RAG_DOC_HTML: rc = rag_extract_html(pname, data, len, x->p, x->b, s, e, sizeof e); break;
    case RAG_DOC_PDF: rc = rag_extract_pdf(pname, data, len, x->p, x->b, s, e, sizeof e); break;
    case RAG_DOC_DOCX: case RAG_DOC_XLSX: case RAG_DOC_PPTX: case RAG_DOC_ODT: case RAG_DOC_ODS:
    case RAG_DOC_ODP: case RAG_DOC_EPUB: rc = rag_extract_office(pname, data, len, x->p, x->b, s, e, sizeof e); break;
    default: rc = RAG_ERR_UNSUPPORTED; snprintf(e, sizeof e, "%s: not a supported type", pname);
    }
    if (x->b && x->b->over) rc = RAG_ERR_LIMIT;                 /* the file's budget: the file fails */
    if (rc == RAG_OK) rc = add_doc(x, s, level);
    else if (rc != RAG_ERR_NOMEM && rc != RAG_ERR_LIMIT) {
        /* "name: reason" -> the reason */
        size_t pl = strlen(pname);
        const char *r = strncmp(e, pname, pl) == 0 && e[pl] == ':' ? e + pl + 1 : e;
        while (*r == ' ') r++;
        snprintf(why, whylen, "%s", *r ? r : "cannot be read");
        rc = RAG_OK;
    } else if (rc == RAG_ERR_LIMIT && !(x->b && x->b->over)) {
        snprintf(why, whylen, "%s", e[0] ? e : "over a limit");
        rc = RAG_OK;
    }
    rag_doc_free(s);
    return rc;
}

/* The decoded bytes of a leaf part (transfer encoding undone). */
static GByteArray *part_bytes(GMimePart *part) {
    GMimeDataWrapper *w = g_mime_part_get_content(part);
    if (!w) return NULL;
    GMimeStream *mem = g_mime_stream_mem_new();
    g_mime_data_wrapper_write_to_stream(w, mem);
    GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
    g_object_unref(mem);
    return ba;
}

/* A part's text in UTF-8 (charset converted; an unknown charset leaves the
 * bytes, which the text decoder then reads as UTF-8 or Windows-1252). */
static char *part_text(GMimePart *part, size_t *n) {
    char *t = NULL;
    if (GMIME_IS_TEXT_PART(part)) t = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
    if (!t) {
        GByteArray *ba = part_bytes(part);
        if (!ba) return NULL;
        t = g_strndup((const char *)ba->data, ba->len);
        g_byte_array_free(ba, TRUE);
    }
    *n = t ? strlen(t) : 0;
    return t;
}

/* The document type of an attachment: by its name, else by its type. */
static rag_doc_type attachment_type(const char *fname, GMimeContentType *ct) {
    rag_doc_type t = fname ? rag_doc_type_from_path(fname) : RAG_DOC_UNKNOWN;
    if (t != RAG_DOC_UNKNOWN) return t;
    if (!ct) return RAG_DOC_UNKNOWN;
    static const struct { const char *type, *sub; rag_doc_type t; } map[] = {
        {"text", "plain", RAG_DOC_TXT}, {"text", "markdown", RAG_DOC_MD}, {"text", "html", RAG_DOC_HTML},
        {"application", "pdf", RAG_DOC_PDF},
        {"application", "vnd.openxmlformats-officedocument.wordprocessingml.document", RAG_DOC_DOCX},
        {"application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet", RAG_DOC_XLSX},
        {"application", "vnd.openxmlformats-officedocument.presentationml.presentation", RAG_DOC_PPTX},
        {"application", "vnd.oasis.opendocument.text", RAG_DOC_ODT},
        {"application", "vnd.oasis.opendocument.spreadsheet", RAG_DOC_ODS},
        {"application", "vnd.oasis.opendocument.presentation", RAG_DOC_ODP},
        {"application", "epub+zip", RAG_DOC_EPUB},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (g_mime_content_type_is_type(ct, map[i].type, map[i].sub)) return map[i].t;
    return RAG_DOC_UNKNOWN;
}

static int add_message(mx *x, GMimeMessage *m, int level, int depth);
static int add_eml_bytes(mx *x, const unsigned char *data, size_t len, int level, int depth, char *why, size_t whylen);

/* Appends an attachment: its heading, then its text or one line saying
 * why there is none. */
static int add_attachment(mx *x, GMimeObject *obj, int level, int depth) {
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    const char *fname = GMIME_IS_PART(obj) ? g_mime_part_get_filename(GMIME_PART(obj)) : NULL;
    char *mime = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
    uint32_t saved = x->cur_att;
    x->cur_att = ++x->att;
    rag_buf h = {0};
    char num[32];
    snprintf(num, sizeof num, "Attachment %u: ", x->cur_att);
    int rc = rag_buf_append(&h, num, strlen(num));
    const char *label = fname && *fname ? fname : mime ? mime : "unnamed";
    if (!rc) rc = rag_buf_append(&h, label, strlen(label));
    if (!rc) rc = add_block(x, RAG_BLOCK_HEADING, level, h.data, h.len);
    rag_buf_release(&h);
    char why[300] = "";
    if (rc) goto done;
    if (depth >= MAIL_MAX_DEPTH) {
        snprintf(why, sizeof why, "nested more than %d deep", MAIL_MAX_DEPTH);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (inner) rc = add_message(x, inner, level + 1, depth + 1);
    } else if (GMIME_IS_PART(obj)) {
        rag_doc_type t = attachment_type(fname, ct);
        bool eml = (fname && strlen(fname) > 4 && !strcasecmp(fname + strlen(fname) - 4, ".eml"));
        if (t == RAG_DOC_UNKNOWN && !eml) {
            snprintf(why, sizeof why, "not extracted: %s is not a document type mrag reads", mime ? mime : "this type");
        } else {
            GByteArray *ba = part_bytes(GMIME_PART(obj));
            if (!ba) snprintf(why, sizeof why, "no content");
            else if (eml) rc = add_eml_bytes(x, ba->data, ba->len, level + 1, depth + 1, why, sizeof why);
            else rc = add_extracted(x, label, ba->data, ba->len, t, level, why, sizeof why);
            if (ba) g_byte_array_free(ba, TRUE);
        }
    } else {
        snprintf(why, sizeof why, "not extracted: %s", mime ? mime : "unknown part");
    }
    if (rc == RAG_OK && why[0]) {
        char line[400];
        int n = snprintf(line, sizeof line, "[attachment not extracted: %s]", why);
        rc = add_block(x, RAG_BLOCK_PARAGRAPH, 0, line, n < 0 ? 0 : (size_t)n >= sizeof line ? sizeof line - 1 : (size_t)n);
    }
done:
    g_free(mime);
    x->cur_att = saved;
    return rc;
}

/* True when GMime converted the part's text to UTF-8 (a charset iconv
 * knows); otherwise the bytes are as sent. */
static bool converted(GMimeObject *obj) {
    const char *cs = g_mime_object_get_content_type_parameter(obj, "charset");
    if (!cs || !*cs) return false;
    iconv_t cd = g_mime_iconv_open("UTF-8", cs);
    if (cd == (iconv_t)-1) return false;
    g_mime_iconv_close(cd);
    return true;
}

/* "charset" inside <meta ...> tags becomes "xharset" (same length). */
static void neutralize_meta_charset(char *t, size_t n) {
    for (char *m = t; (m = strcasestr(m, "<meta")) != NULL;) {
        char *end = memchr(m, '>', n - (size_t)(m - t));
        if (!end) end = t + n;
        for (char *c = m; c + 7 <= end && (c = strcasestr(c, "charset")) != NULL && c + 7 <= end; c += 7) *c = 'x';
        m = end;
    }
}

/* Appends the text of a body part (text/plain, text/html, other text/x). */
static int add_body_text(mx *x, GMimePart *part, int level) {
    GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
    bool html = ct && g_mime_content_type_is_type(ct, "text", "html");
    size_t n = 0;
    char *t = part_text(part, &n);
    if (!t) return RAG_OK;
    if (html && converted(GMIME_OBJECT(part))) {
        /* the text is UTF-8 now, whatever a <meta> in it says: its charset
         * declarations are renamed out of the parser's sight and a byte
         * order mark makes the parser read UTF-8 */
        neutralize_meta_charset(t, n);
        char *u = g_malloc(n + 4);
        memcpy(u, "\xEF\xBB\xBF", 3);
        memcpy(u + 3, t, n + 1);
        g_free(t);
        t = u;
        n += 3;
    }
    char why[300] = "";
    int rc = add_extracted(x, x->name, (const unsigned char *)t, n, html ? RAG_DOC_HTML : RAG_DOC_TXT, level, why,
                           sizeof why);
    g_free(t);
    if (rc == RAG_OK && why[0]) {
        char line[400];
        int k = snprintf(line, sizeof line, "[part not extracted: %s]", why);
        rc = add_block(x, RAG_BLOCK_PARAGRAPH, 0, line, k < 0 ? 0 : (size_t)k >= sizeof line ? sizeof line - 1 : (size_t)k);
    }
    return rc;
}

/* An attachment (written after the body under its own heading): a part
 * with disposition "attachment", a forwarded message, or an inline part
 * of a document type other than plain text (an inline PDF; an html part
 * named page.html). Inline parts of other types (the images of an HTML
 * mail) are left out without a word. */
static bool is_attachment(GMimeObject *obj) {
    if (GMIME_IS_MULTIPART(obj)) return false;
    const char *disp = g_mime_object_get_disposition(obj);
    if (disp && !g_ascii_strcasecmp(disp, "attachment")) return true;
    if (GMIME_IS_MESSAGE_PART(obj)) return true;
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    const char *f = GMIME_IS_PART(obj) ? g_mime_part_get_filename(GMIME_PART(obj)) : NULL;
    if (ct && g_mime_content_type_is_type(ct, "text", "*"))
        return f && rag_doc_type_from_path(f) != RAG_DOC_UNKNOWN && !g_mime_content_type_is_type(ct, "text", "plain");
    return attachment_type(f, ct) != RAG_DOC_UNKNOWN;
}

/* The best alternative of a multipart/alternative: text/plain, else
 * text/html, else the last part. */
static GMimeObject *best_alternative(GMimeMultipart *mp) {
    int n = g_mime_multipart_get_count(mp);
    GMimeObject *html = NULL, *last = NULL;
    for (int i = 0; i < n; i++) {
        GMimeObject *o = g_mime_multipart_get_part(mp, i);
        GMimeContentType *ct = g_mime_object_get_content_type(o);
        if (!ct) continue;
        if (g_mime_content_type_is_type(ct, "text", "plain") && GMIME_IS_PART(o)) return o;
        if (g_mime_content_type_is_type(ct, "text", "html") && !html) html = o;
        last = o;
    }
    return html ? html : last;
}

/* Walks a MIME tree: body text in place, attachments after it (they are
 * collected in *atts and written by the caller). */
static int walk(mx *x, GMimeObject *obj, int level, int depth, GPtrArray *atts) {
    if (!obj) return RAG_OK;
    int rc = check(x);
    if (rc) return rc;
    if (depth > 64) return RAG_OK;      /* multiparts 64 deep in one message: left out (the pre-scan bounds it too) */
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        GMimeContentType *ct = g_mime_object_get_content_type(obj);
        if (ct && g_mime_content_type_is_type(ct, "multipart", "alternative")) {
            GMimeObject *best = best_alternative(mp);
            return best ? walk(x, best, level, depth + 1, atts) : RAG_OK;
        }
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n && rc == RAG_OK; i++) rc = walk(x, g_mime_multipart_get_part(mp, i), level, depth + 1, atts);
        return rc;
    }
    if (is_attachment(obj)) {
        g_ptr_array_add(atts, obj);
        return RAG_OK;
    }
    if (GMIME_IS_PART(obj)) {
        GMimeContentType *ct = g_mime_object_get_content_type(obj);
        if (ct && g_mime_content_type_is_type(ct, "text", "*")) return add_body_text(x, GMIME_PART(obj), level);
    }
    return RAG_OK;
}

/* One header line "Name: value" into buf when the value is not empty. */
static int header_line(rag_buf *h, const char *name, const char *value) {
    if (!value) return RAG_OK;
    while (*value == ' ' || *value == '\t') value++;
    if (!*value) return RAG_OK;
    if (h->len && rag_buf_putc(h, '\n')) return RAG_ERR_NOMEM;
    if (rag_buf_append(h, name, strlen(name)) || rag_buf_append(h, ": ", 2)) return RAG_ERR_NOMEM;
    /* unfolded: line breaks inside a value become spaces */
    for (const char *s = value; *s; s++)
        if (rag_buf_putc(h, *s == '\r' || *s == '\n' ? ' ' : *s)) return RAG_ERR_NOMEM;
    return RAG_OK;
}

static char *addresses(GMimeMessage *m, GMimeAddressType t) {
    InternetAddressList *l = g_mime_message_get_addresses(m, t);
    if (!l || internet_address_list_length(l) == 0) return NULL;
    return internet_address_list_to_string(l, NULL, FALSE);
}

/* Appends one message: subject heading, header block, body, attachments. */
static int add_message(mx *x, GMimeMessage *m, int level, int depth) {
    const char *subject = g_mime_message_get_subject(m);
    char *from = addresses(m, GMIME_ADDRESS_TYPE_FROM), *to = addresses(m, GMIME_ADDRESS_TYPE_TO),
         *cc = addresses(m, GMIME_ADDRESS_TYPE_CC);
    const char *date = g_mime_object_get_header(GMIME_OBJECT(m), "Date");
    rag_buf h = {0};
    int rc = RAG_OK;
    if (!x->d->title && level == 1 && subject) {
        x->d->title = strdup(subject);
        if (!x->d->title) rc = RAG_ERR_NOMEM;
    }
    const char *heading = subject && *subject ? subject : "(no subject)";
    if (!rc) rc = add_block(x, RAG_BLOCK_HEADING, level > 6 ? 6 : level, heading, strlen(heading));
    if (!rc) rc = header_line(&h, "From", from);
    if (!rc) rc = header_line(&h, "To", to);
    if (!rc) rc = header_line(&h, "Cc", cc);
    if (!rc) rc = header_line(&h, "Date", date);
    if (!rc) rc = header_line(&h, "Subject", subject);
    if (!rc && h.len) rc = add_block(x, RAG_BLOCK_PARAGRAPH, 0, h.data, h.len);
    rag_buf_release(&h);
    g_free(from);
    g_free(to);
    g_free(cc);
    GPtrArray *atts = g_ptr_array_new();
    if (!rc) rc = walk(x, g_mime_message_get_mime_part(m), level, depth, atts);
    for (guint i = 0; i < atts->len && rc == RAG_OK; i++)
        rc = add_attachment(x, atts->pdata[i], level + 1 > 6 ? 6 : level + 1, depth + 1);
    g_ptr_array_free(atts, TRUE);
    return rc;
}

/* How many multipart/message parts a message may open, found without
 * parsing (case-insensitive "multipart/" and "message/"). */
static size_t count_containers(const unsigned char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i + 8 <= n; i++) {
        unsigned char c = s[i] | 0x20;
        if (c == 'm' && (i + 10 <= n && !strncasecmp((const char *)s + i, "multipart/", 10))) k++;
        else if (c == 'm' && !strncasecmp((const char *)s + i, "message/", 8)) k++;
    }
    return k;
}

/* Parses the bytes of one message and appends it. A message GMime cannot
 * make anything of, or one with too many parts, gives *why (the caller
 * decides whether that fails the file). */
static int add_eml_bytes(mx *x, const unsigned char *data, size_t len, int level, int depth, char *why, size_t whylen) {
    if (count_containers(data, len) > MAIL_MAX_PARTS) {
        snprintf(why, whylen, "more than %d MIME containers in one message", MAIL_MAX_PARTS);
        return RAG_OK;
    }
    GMimeStream *st = g_mime_stream_mem_new_with_buffer((const char *)data, len);
    GMimeParser *ps = g_mime_parser_new_with_stream(st);
    g_object_unref(st);
    GMimeMessage *m = g_mime_parser_construct_message(ps, NULL);
    g_object_unref(ps);
    int rc = RAG_OK;
    if (!m) snprintf(why, whylen, "not a mail message (no header lines)");
    else rc = add_message(x, m, level, depth);
    if (m) g_object_unref(m);
    return rc;
}

/* A message looks like one: its first line is a header field
 * ("Name: value", or a "From " line). */
static bool looks_like_message(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n && (s[i] == '\r' || s[i] == '\n')) i++;
    size_t j = i;
    while (j < n && s[j] > 32 && s[j] < 127 && s[j] != ':') j++;
    return j > i && j < n && s[j] == ':';
}

static int finish(mx *x) {
    if (rag_buf_putc(&x->out, 0)) return RAG_ERR_NOMEM;
    x->out.len--;
    x->d->text = x->out.data;
    x->d->text_len = x->out.len;
    x->out.data = NULL;
    x->out.len = x->out.cap = 0;
    snprintf(x->d->encoding, sizeof x->d->encoding, "UTF-8");
    return RAG_OK;
}

static int extract_eml(mx *x, const unsigned char *data, size_t len) {
    /* a message saved from a mailbox may keep its "From " line */
    if (len >= 5 && !memcmp(data, "From ", 5)) {
        const unsigned char *nl = memchr(data, '\n', len);
        size_t skip = nl ? (size_t)(nl - data) + 1 : len;
        data += skip;
        len -= skip;
    }
    if (!looks_like_message(data, len)) return fail(x, RAG_ERR_FORMAT, "not a mail message (no header lines at the start)");
    char why[300] = "";
    int rc = add_eml_bytes(x, data, len, 1, 0, why, sizeof why);
    if (rc == RAG_OK && why[0]) return fail(x, RAG_ERR_FORMAT, "%s", why);
    return rc;
}

/* Copies a message of an mbox without its "From " line, undoing the
 * quoting of body lines (">From " -> "From ", ">>From " -> ">From ": mboxrd;
 * for mboxo, whose quoting cannot be undone, the same is the usual reading). */
static unsigned char *unquote(const unsigned char *s, size_t n, size_t *out_n) {
    unsigned char *o = malloc(n + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        /* at a line start */
        size_t q = i;
        while (q < n && s[q] == '>') q++;
        if (q > i && n - q >= 5 && !memcmp(s + q, "From ", 5)) i++;    /* drop one '>' */
        while (i < n) {
            unsigned char c = s[i++];
            o[k++] = c;
            if (c == '\n') break;
        }
    }
    o[k] = 0;
    *out_n = k;
    return o;
}

static bool from_line_at(const unsigned char *s, size_t n, size_t i) {
    return n - i >= 5 && !memcmp(s + i, "From ", 5);
}

static int extract_mbox(mx *x, const unsigned char *data, size_t len) {
    size_t i = 0;
    while (i < len && (data[i] == '\n' || data[i] == '\r')) i++;
    if (!from_line_at(data, len, i)) return fail(x, RAG_ERR_FORMAT, "not an mbox (no \"From \" line at the start)");
    int rc = RAG_OK;
    uint32_t n_msgs = 0, n_bad = 0;
    char first_why[400] = "";
    while (i < len && rc == RAG_OK) {
        /* the message: after its "From " line, up to the next line that starts with "From " */
        const unsigned char *nl = memchr(data + i, '\n', len - i);
        size_t start = nl ? (size_t)(nl - data) + 1 : len, end = start;
        while (end < len) {
            const unsigned char *e = memchr(data + end, '\n', len - end);
            if (!e) { end = len; break; }
            end = (size_t)(e - data) + 1;
            if (from_line_at(data, len, end)) break;
        }
        if (++n_msgs > MAIL_MAX_MESSAGES) return fail(x, RAG_ERR_LIMIT, "more than %d messages", MAIL_MAX_MESSAGES);
        x->msg = n_msgs;
        x->att = 0;
        x->cur_att = 0;
        size_t mn = 0;
        unsigned char *msg = unquote(data + start, end - start, &mn);
        if (!msg) return RAG_ERR_NOMEM;
        char why[300] = "";
        if (!looks_like_message(msg, mn)) snprintf(why, sizeof why, "no header lines");
        else rc = add_eml_bytes(x, msg, mn, 1, 0, why, sizeof why);
        free(msg);
        if (rc == RAG_OK && why[0]) {
            /* one damaged message: a line in its place, the others go on */
            n_bad++;
            if (!first_why[0]) snprintf(first_why, sizeof first_why, "message %u: %s", n_msgs, why);
            char line[400];
            int k = snprintf(line, sizeof line, "[message %u not extracted: %s]", n_msgs, why);
            rc = add_block(x, RAG_BLOCK_PARAGRAPH, 0, line, k < 0 ? 0 : (size_t)k >= sizeof line ? sizeof line - 1 : (size_t)k);
        }
        if (rc == RAG_OK) rc = check(x);
        i = end;
    }
    if (rc == RAG_OK && n_bad == n_msgs) return fail(x, RAG_ERR_FORMAT, "no message could be read (%s)", first_why);
    x->d->n_pages = n_msgs;
    /* the mailbox's title: its file name (each message's subject heads its part) */
    if (rc == RAG_OK) {
        free(x->d->title);
        const char *slash = strrchr(x->name, '/');
        x->d->title = strdup(slash ? slash + 1 : x->name);
        if (!x->d->title) rc = RAG_ERR_NOMEM;
    }
    return rc;
}

int rag_extract_mail(const char *name, const unsigned char *data, size_t len, const rag_extract_params *p, rag_budget *b,
                     rag_doc *d, char *err, size_t errlen) {
    pthread_once(&gmime_once, gmime_start);
    mx x = {.name = name, .p = p, .b = b, .d = d, .err = err, .errlen = errlen};
    int rc = d->type == RAG_DOC_MBOX ? extract_mbox(&x, data, len) : extract_eml(&x, data, len);
    if (rc == RAG_OK) rc = finish(&x);
    rag_buf_release(&x.out);
    if (rc == RAG_ERR_NOMEM) fail(&x, rc, "out of memory");
    return rc;
}
