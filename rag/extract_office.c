/* extract_office.c — office documents in zip containers (libzip) with XML
 * parts (libxml2): Word (docx), Excel (xlsx), PowerPoint (pptx),
 * OpenDocument text, spreadsheet and presentation (odt, ods, odp) and EPUB.
 *
 * Citation units ride in the block fields the chunker already carries:
 *   docx, odt   line_start/line_end = paragraph numbers (non-empty ones)
 *   pptx, odp   page = slide
 *   xlsx, ods   page = sheet, line_start/line_end = row numbers
 *   epub        page = chapter (spine order)
 * (rag_cite_tail turns them into "#para=3-5", "#slide=2", ...).
 *
 * The container is outside bytes: entries are read through a cap on each
 * member and on the whole inflated size (a zip bomb is refused with a
 * reason), encrypted members and password-protected Office files are clear
 * errors, part names from relationships are resolved inside the package
 * (a "../" that leaves it is refused), XML with a DTD is refused (no entity
 * expansion), and the file's budget is checked at every element. */
#define _GNU_SOURCE /* memmem */
#include "rag/ingest_internal.h"

#include <ctype.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zip.h>

/* Limits of the container (docs/ingestion.md, "Office documents"). */
#define OX_MAX_ENTRIES 50000            /* members in one zip */
#define OX_MAX_MEMBER (256u << 20)      /* inflated bytes of one member read */
#define OX_INFLATE_FLOOR (64u << 20)    /* total inflated bytes always allowed */
#define OX_INFLATE_RATIO 200            /* ... and beyond that, times the file size */
#define OX_MAX_CHAPTERS 20000           /* EPUB spine items, slides, sheets */

typedef struct {
    const char *name;
    const rag_extract_params *p;
    rag_budget *b;
    rag_doc *d;
    char *err;
    size_t errlen;
    zip_t *z;
    uint64_t file_len, inflated, max_inflated;
    rag_buf out;                /* the document's text */
    size_t cap;                 /* of d->blocks */
    rag_buf para;               /* the paragraph being collected */
    uint32_t unit;              /* page / slide / sheet / chapter */
    uint32_t para_no;           /* docx/odt: paragraph counter */
    /* footnotes: referenced note bodies, emitted after the body */
    xmlNode **notes;
    size_t n_notes, cap_notes;
    bool in_note;
    /* docx: style id -> heading level */
    char **style_ids;
    int *style_levels;
    size_t n_styles;
    char *title_style;          /* docx style id of "Title" */
    xmlNode *foot_root, *end_root;  /* footnotes.xml / endnotes.xml roots */
} ox;

/* ------------------------------------------------------------- helpers */
/* The first problem of the file, named: rag_errf_first. */
#define fail(x, rc, ...) rag_errf_first((x)->err, (x)->errlen, (x)->name, (rc), __VA_ARGS__)

static int check(ox *x) {
    return rag_budget_check(x->b, x->out.len + x->para.len);
}

static bool is(const xmlNode *n, const char *local) {
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, local) == 0;
}

/* The attribute (any namespace) into buf, or "" when absent. */
static const char *attr(const xmlNode *n, const char *local, char *buf, size_t cap) {
    buf[0] = 0;
    for (const xmlAttr *a = n ? n->properties : NULL; a; a = a->next) {
        if (strcmp((const char *)a->name, local) != 0) continue;
        const xmlNode *t = a->children;
        size_t k = 0;
        for (; t; t = t->next) {
            if (!t->content) continue;
            size_t l = strlen((const char *)t->content);
            if (k + l >= cap) l = cap - 1 - k;
            memcpy(buf + k, t->content, l);
            k += l;
        }
        buf[k] = 0;
        break;
    }
    return buf;
}

static xmlNode *child(const xmlNode *n, const char *local) {
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (is(c, local)) return c;
    return NULL;
}

/* First descendant element (depth first) named local. */
static xmlNode *find(xmlNode *n, const char *local) {
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (is(c, local)) return c;
        xmlNode *f = find(c, local);
        if (f) return f;
    }
    return NULL;
}

/* Appends text to the paragraph: control characters become spaces, runs of
 * spaces collapse when collapse is set (ODF's rule, and ours for Word). */
static int put_text(ox *x, const char *s, size_t n) {
    int rc = RAG_OK;
    for (size_t i = 0; i < n && rc == RAG_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') { rc = rag_buf_putc(&x->para, '\n'); continue; }
        if (c < 0x20 || c == 0x7F) c = ' ';
        if (c == ' ' && (x->para.len == 0 || x->para.data[x->para.len - 1] == ' ' ||
                         x->para.data[x->para.len - 1] == '\n'))
            continue;
        rc = rag_buf_putc(&x->para, (char)c);
    }
    return rc ? rc : check(x);
}

static int put_str(ox *x, const char *s) { return put_text(x, s, strlen(s)); }

/* Puts para[from..) on one line: newlines become spaces, space runs one
 * space, no space at either end of the segment (a table cell). */
static void flatten(ox *x, size_t from) {
    char *t = x->para.data;
    if (!t || from >= x->para.len) return;
    size_t o = from;
    for (size_t i = from; i < x->para.len; i++) {
        char c = t[i] == '\n' ? ' ' : t[i];
        if (c == ' ' && (o == from || t[o - 1] == ' ')) continue;
        t[o++] = c;
    }
    while (o > from && t[o - 1] == ' ') o--;
    x->para.len = o;
    t[o] = 0;
}

/* The relationship id of an element (r:id, an attribute "id" in a
 * namespace), as opposed to its plain id attribute. */
static const char *rid(const xmlNode *n, char *buf, size_t cap) {
    buf[0] = 0;
    for (const xmlAttr *a = n ? n->properties : NULL; a; a = a->next) {
        if (strcmp((const char *)a->name, "id") != 0 || !a->ns) continue;
        const xmlNode *t = a->children;
        snprintf(buf, cap, "%s", t && t->content ? (const char *)t->content : "");
        break;
    }
    return buf;
}

/* Ends the paragraph: trimmed, lines without trailing spaces, empty ones
 * dropped; a non-empty one becomes a block of kind/level. */
static int emit(ox *x, rag_block_kind kind, int level) {
    int rc = RAG_OK;
    char *t = x->para.data;
    size_t n = x->para.len;
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\n')) n--;
    size_t a = 0;
    while (a < n && (t[a] == ' ' || t[a] == '\n')) a++;
    if (a < n) {
        if (kind != RAG_BLOCK_HEADING) x->para_no++;
        if (x->out.len && (rc = rag_buf_append(&x->out, "\n\n", 2))) goto done;
        size_t off = x->out.len;
        for (size_t i = a; i < n && rc == RAG_OK; i++) {
            if (t[i] == ' ' && i + 1 < n && t[i + 1] == '\n') continue;   /* trailing space of a line */
            if (t[i] == '\n' && i + 1 < n && t[i + 1] == '\n') continue;  /* blank lines inside */
            rc = rag_buf_putc(&x->out, t[i]);
        }
        if (rc) goto done;
        uint32_t pn = kind == RAG_BLOCK_HEADING ? 0 : x->para_no;
        rag_block b = {.kind = kind, .level = level, .text_off = off, .text_len = x->out.len - off,
                       .page = x->unit, .line_start = pn, .line_end = pn};
        rc = rag_doc_add_block(x->d, &x->cap, x->p->max_blocks, &b);
    }
done:
    x->para.len = 0;
    if (x->para.data) x->para.data[0] = 0;
    return rc ? rc : check(x);
}

/* A block with a given line number (spreadsheet rows). */
static int emit_row(ox *x, uint32_t row) {
    uint32_t save = x->para_no;
    x->para_no = row - 1;
    int rc = emit(x, RAG_BLOCK_PARAGRAPH, 0);
    x->para_no = save;
    return rc;
}

static int heading(ox *x, const char *text, int level) {
    x->para.len = 0;
    int rc = put_str(x, text);
    return rc ? rc : emit(x, RAG_BLOCK_HEADING, level);
}

/* ----------------------------------------------------------- container */
static int zip_open_mem(ox *x, const unsigned char *data, size_t len) {
    if (len >= 8 && memcmp(data, "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8) == 0)
        return fail(x, RAG_ERR_UNSUPPORTED,
                    "a password-protected (encrypted) Office file, or the old binary format "
                    "(.doc/.xls/.ppt): neither can be read; save it unprotected in the current format");
    if (len < 4 || memcmp(data, "PK", 2) != 0)
        return fail(x, RAG_ERR_FORMAT, "not a zip container (the format of this document type)");
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(data, len, 0, &ze);
    if (!src) {
        zip_error_fini(&ze);
        return fail(x, RAG_ERR_NOMEM, "out of memory");
    }
    x->z = zip_open_from_source(src, ZIP_RDONLY, &ze);
    if (!x->z) {
        zip_source_free(src);
        int rc = fail(x, RAG_ERR_FORMAT, "damaged zip container: %s", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return rc;
    }
    zip_error_fini(&ze);
    zip_int64_t ne = zip_get_num_entries(x->z, 0);
    if (ne < 0 || ne > OX_MAX_ENTRIES)
        return fail(x, RAG_ERR_LIMIT, "the zip container holds %lld entries, the limit is %d", (long long)ne,
                    OX_MAX_ENTRIES);
    x->file_len = len;
    uint64_t by_ratio = (uint64_t)len * OX_INFLATE_RATIO;
    x->max_inflated = by_ratio > OX_INFLATE_FLOOR ? by_ratio : OX_INFLATE_FLOOR;
    return RAG_OK;
}

static bool has_member(ox *x, const char *m) {
    return zip_name_locate(x->z, m, ZIP_FL_NOCASE) >= 0;
}

/* Reads member m (NUL-terminated) into *out. Missing: RAG_ERR_NOTFOUND
 * when !required (no message), else a format error. */
static int read_member(ox *x, const char *m, bool required, char **out, size_t *outlen) {
    *out = NULL;
    *outlen = 0;
    zip_int64_t i = zip_name_locate(x->z, m, ZIP_FL_NOCASE);
    if (i < 0) {
        if (!required) return RAG_ERR_NOTFOUND;
        return fail(x, RAG_ERR_FORMAT, "the part %s is missing (damaged or not this document type)", m);
    }
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(x->z, (zip_uint64_t)i, 0, &st) != 0)
        return fail(x, RAG_ERR_FORMAT, "cannot read the zip entry of %s", m);
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE)
        return fail(x, RAG_ERR_UNSUPPORTED, "the part %s is encrypted (password protected)", m);
    if ((st.valid & ZIP_STAT_SIZE) && st.size > OX_MAX_MEMBER)
        return fail(x, RAG_ERR_LIMIT, "the part %s declares %llu bytes inflated, the limit is %u (a zip bomb?)", m,
                    (unsigned long long)st.size, OX_MAX_MEMBER);
    zip_file_t *f = zip_fopen_index(x->z, (zip_uint64_t)i, 0);
    if (!f) {
        int ze = zip_error_code_zip(zip_get_error(x->z));
        if (ze == ZIP_ER_NOPASSWD || ze == ZIP_ER_WRONGPASSWD || ze == ZIP_ER_ENCRNOTSUPP)
            return fail(x, RAG_ERR_UNSUPPORTED, "the part %s is encrypted (password protected)", m);
        return fail(x, RAG_ERR_FORMAT, "cannot open the part %s: %s", m, zip_strerror(x->z));
    }
    rag_buf b = {0};
    int rc = RAG_OK;
    for (;;) {
        if ((rc = rag_buf_reserve(&b, 65536))) break;
        zip_int64_t k = zip_fread(f, b.data + b.len, 65536);
        if (k < 0) {
            rc = fail(x, RAG_ERR_FORMAT, "damaged data in the part %s: %s", m, zip_file_strerror(f));
            break;
        }
        if (k == 0) break;
        b.len += (size_t)k;
        b.data[b.len] = 0;
        x->inflated += (uint64_t)k;
        if (b.len > OX_MAX_MEMBER) {
            rc = fail(x, RAG_ERR_LIMIT, "the part %s inflates past %u bytes (a zip bomb?)", m, OX_MAX_MEMBER);
            break;
        }
        if (x->inflated > x->max_inflated) {
            rc = fail(x, RAG_ERR_LIMIT,
                      "the container inflates past %llu bytes from a %llu-byte file (a zip bomb?)",
                      (unsigned long long)x->max_inflated, (unsigned long long)x->file_len);
            break;
        }
        if ((rc = check(x))) break;
    }
    zip_fclose(f);
    if (rc == RAG_OK && !b.data) rc = rag_buf_append(&b, "", 0);
    if (rc) {
        rag_buf_release(&b);
        return rc;
    }
    *out = b.data;
    *outlen = b.len;
    return RAG_OK;
}

static void silent_generic(void *ctx, const char *msg, ...) {
    (void)ctx;
    (void)msg;
}
static void silent_structured(void *ctx, xmlErrorPtr e) {
    (void)ctx;
    (void)e;
}
static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static void xml_init(void) { xmlInitParser(); }

/* Parses member m as XML. A DTD is refused (entities could multiply the
 * text; no office part needs one). */
static int parse_member(ox *x, const char *m, bool required, xmlDoc **out) {
    *out = NULL;
    char *buf;
    size_t n;
    int rc = read_member(x, m, required, &buf, &n);
    if (rc) return rc;
    if (n > INT_MAX) {
        free(buf);
        return fail(x, RAG_ERR_LIMIT, "the part %s is too large", m);
    }
    const char *dt = memmem(buf, n, "<!DOCTYPE", 9);
    if (dt) {
        free(buf);
        return fail(x, RAG_ERR_FORMAT, "the part %s declares a DTD (refused: office parts have none)", m);
    }
    xmlSetGenericErrorFunc(NULL, silent_generic);
    xmlSetStructuredErrorFunc(NULL, silent_structured);
    xmlDoc *doc = xmlReadMemory(buf, (int)n, m, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
    free(buf);
    if (!doc || !xmlDocGetRootElement(doc)) {
        if (doc) xmlFreeDoc(doc);
        const xmlError *e = xmlGetLastError();
        char why[160] = "";
        if (e && e->message) {
            snprintf(why, sizeof why, "%s", e->message);
            size_t l = strlen(why);
            while (l && (why[l - 1] == '\n' || why[l - 1] == ' ')) why[--l] = 0;
        }
        return fail(x, RAG_ERR_FORMAT, "damaged XML in the part %s%s%s", m, why[0] ? ": " : "", why);
    }
    if ((rc = check(x))) {
        xmlFreeDoc(doc);
        return rc;
    }
    *out = doc;
    return RAG_OK;
}

/* Resolves a relationship target against the folder of part base ("word/
 * document.xml" -> "word/"); percent escapes decoded; "." and ".." folded.
 * A target that leaves the package, or holds a backslash or NUL, is an
 * error. */
static int resolve(ox *x, const char *base, const char *target, char *out, size_t cap) {
    char dec[1024];
    size_t k = 0;
    for (size_t i = 0; target[i]; i++) {
        char c = target[i];
        if (c == '%' && isxdigit((unsigned char)target[i + 1]) && isxdigit((unsigned char)target[i + 2])) {
            char h[3] = {target[i + 1], target[i + 2], 0};
            c = (char)strtol(h, NULL, 16);
            i += 2;
        }
        if (c == '#' || c == '?') break;    /* fragment / query */
        if (c == 0 || c == '\\') return fail(x, RAG_ERR_FORMAT, "a part name with a backslash or NUL: %s", target);
        if (k + 1 >= sizeof dec) return fail(x, RAG_ERR_FORMAT, "a part name is too long");
        dec[k++] = c;
    }
    dec[k] = 0;
    char path[2048];
    if (dec[0] == '/') {
        snprintf(path, sizeof path, "%s", dec + 1);
    } else {
        const char *slash = strrchr(base, '/');
        int bl = slash ? (int)(slash - base + 1) : 0;
        snprintf(path, sizeof path, "%.*s%s", bl, base, dec);
    }
    /* fold segments */
    char *segs[256];
    int ns = 0;
    char *save = NULL;
    for (char *s = strtok_r(path, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (strcmp(s, ".") == 0) continue;
        if (strcmp(s, "..") == 0) {
            if (ns == 0) return fail(x, RAG_ERR_FORMAT, "the part name %s leaves the package (refused)", target);
            ns--;
            continue;
        }
        if (ns == 256) return fail(x, RAG_ERR_FORMAT, "a part name is too deep");
        segs[ns++] = s;
    }
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < ns; i++) {
        int w = snprintf(out + o, cap - o, "%s%s", i ? "/" : "", segs[i]);
        if (w < 0 || (size_t)w >= cap - o) return fail(x, RAG_ERR_FORMAT, "a part name is too long");
        o += (size_t)w;
    }
    if (!o) return fail(x, RAG_ERR_FORMAT, "an empty part name");
    return RAG_OK;
}

/* Relationships of part (OPC): the .rels member beside it. */
typedef struct {
    char id[128];
    char type[256];
    char target[1024];    /* resolved part name, "" for external targets */
} ox_rel;

typedef struct {
    ox_rel *r;
    size_t n;
} ox_rels;

static void rels_free(ox_rels *r) {
    free(r->r);
    r->r = NULL;
    r->n = 0;
}

static int read_rels(ox *x, const char *part, ox_rels *out) {
    memset(out, 0, sizeof *out);
    char rp[1200];
    const char *slash = strrchr(part, '/');
    if (slash) snprintf(rp, sizeof rp, "%.*s_rels/%s.rels", (int)(slash - part + 1), part, slash + 1);
    else snprintf(rp, sizeof rp, "_rels/%s.rels", part);
    if (!*part) snprintf(rp, sizeof rp, "_rels/.rels");
    xmlDoc *doc;
    int rc = parse_member(x, rp, false, &doc);
    if (rc == RAG_ERR_NOTFOUND) return RAG_OK;
    if (rc) return rc;
    size_t cap = 0;
    for (xmlNode *c = xmlDocGetRootElement(doc)->children; c && rc == RAG_OK; c = c->next) {
        if (!is(c, "Relationship")) continue;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            ox_rel *nr = realloc(out->r, cap * sizeof *nr);
            if (!nr) { rc = RAG_ERR_NOMEM; break; }
            out->r = nr;
        }
        ox_rel *r = &out->r[out->n];
        char t[1024], mode[32];
        attr(c, "Id", r->id, sizeof r->id);
        attr(c, "Type", r->type, sizeof r->type);
        attr(c, "Target", t, sizeof t);
        attr(c, "TargetMode", mode, sizeof mode);
        r->target[0] = 0;
        if (strcasecmp(mode, "External") != 0 && t[0]) {
            if ((rc = resolve(x, part, t, r->target, sizeof r->target))) break;
        }
        out->n++;
        rc = check(x);
    }
    xmlFreeDoc(doc);
    if (rc) rels_free(out);
    return rc;
}

static const ox_rel *rel_by_id(const ox_rels *r, const char *id) {
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->r[i].id, id) == 0) return &r->r[i];
    return NULL;
}

/* The first relationship whose type ends in "/suffix". */
static const ox_rel *rel_by_type(const ox_rels *r, const char *suffix) {
    size_t sl = strlen(suffix);
    for (size_t i = 0; i < r->n; i++) {
        size_t tl = strlen(r->r[i].type);
        if (tl > sl && r->r[i].type[tl - sl - 1] == '/' && strcmp(r->r[i].type + tl - sl, suffix) == 0 &&
            r->r[i].target[0])
            return &r->r[i];
    }
    return NULL;
}

/* The package's main part: the officeDocument relationship, else fallback. */
static int main_part(ox *x, const char *fallback, char *out, size_t cap) {
    ox_rels rels;
    int rc = read_rels(x, "", &rels);
    if (rc) return rc;
    const ox_rel *r = rel_by_type(&rels, "officeDocument");
    snprintf(out, cap, "%s", r ? r->target : fallback);
    rels_free(&rels);
    return RAG_OK;
}

/* dc:title of an OOXML docProps/core.xml or an ODF meta.xml. */
static int doc_title(ox *x, const char *part) {
    xmlDoc *doc;
    int rc = parse_member(x, part, false, &doc);
    if (rc == RAG_ERR_NOTFOUND) return RAG_OK;
    if (rc) return rc;
    xmlNode *t = find(xmlDocGetRootElement(doc), "title");
    if (t) {
        xmlChar *s = xmlNodeGetContent(t);
        if (s) {
            char *v = (char *)s;
            while (*v && isspace((unsigned char)*v)) v++;
            size_t l = strlen(v);
            while (l && isspace((unsigned char)v[l - 1])) l--;
            if (l && !x->d->title && !(x->d->title = strndup(v, l))) rc = RAG_ERR_NOMEM;
            xmlFree(s);
        }
    }
    xmlFreeDoc(doc);
    return rc;
}

/* Appends the text content of n (every descendant text node). */
static int put_content(ox *x, const xmlNode *n) {
    int rc = RAG_OK;
    for (const xmlNode *c = n->children; c && rc == RAG_OK; c = c->next) {
        if (c->type == XML_TEXT_NODE && c->content) rc = put_str(x, (const char *)c->content);
        else if (c->type == XML_ELEMENT_NODE) rc = put_content(x, c);
    }
    return rc;
}

/* Footnote queue: a reference adds the note's element and a marker. */
static int note_ref(ox *x, xmlNode *body) {
    if (x->n_notes == x->cap_notes) {
        size_t nc = x->cap_notes ? x->cap_notes * 2 : 16;
        xmlNode **nn = realloc(x->notes, nc * sizeof *nn);
        if (!nn) return RAG_ERR_NOMEM;
        x->notes = nn;
        x->cap_notes = nc;
    }
    x->notes[x->n_notes++] = body;
    char mark[32];
    snprintf(mark, sizeof mark, "[%zu]", x->n_notes);
    return put_str(x, mark);
}

/* ================================================================ Word */
static int docx_level(ox *x, xmlNode *p) {
    xmlNode *ppr = child(p, "pPr");
    char v[256];
    if (!ppr) return 0;
    xmlNode *ol = child(ppr, "outlineLvl");
    if (ol) {
        int l = atoi(attr(ol, "val", v, sizeof v));
        if (l >= 0 && l < 9) return l + 1 > 6 ? 6 : l + 1;
    }
    xmlNode *ps = child(ppr, "pStyle");
    if (ps) {
        attr(ps, "val", v, sizeof v);
        for (size_t i = 0; i < x->n_styles; i++)
            if (strcmp(x->style_ids[i], v) == 0) return x->style_levels[i];
    }
    return 0;
}

static bool docx_is_title(ox *x, xmlNode *p) {
    xmlNode *ps = child(child(p, "pPr"), "pStyle");
    char v[256];
    return ps && x->title_style && strcmp(attr(ps, "val", v, sizeof v), x->title_style) == 0;
}

static int docx_styles(ox *x, const char *part) {
    xmlDoc *doc;
    int rc = parse_member(x, part, false, &doc);
    if (rc == RAG_ERR_NOTFOUND) return RAG_OK;
    if (rc) return rc;
    size_t cap = 0;
    for (xmlNode *s = xmlDocGetRootElement(doc)->children; s && rc == RAG_OK; s = s->next) {
        if (!is(s, "style")) continue;
        char type[64], id[256], name[256];
        if (strcmp(attr(s, "type", type, sizeof type), "paragraph") != 0) continue;
        attr(s, "styleId", id, sizeof id);
        attr(child(s, "name"), "val", name, sizeof name);
        int level = 0;
        if (strncasecmp(name, "heading ", 8) == 0) level = atoi(name + 8);
        else if (strcasecmp(name, "title") == 0) {
            level = 1;
            free(x->title_style);
            if (!(x->title_style = strdup(id))) { rc = RAG_ERR_NOMEM; break; }
        }
        xmlNode *ol = child(child(s, "pPr"), "outlineLvl");
        char v[32];
        if (!level && ol) {
            int l = atoi(attr(ol, "val", v, sizeof v));
            if (l >= 0 && l < 9) level = l + 1;
        }
        if (level <= 0) continue;
        if (level > 6) level = 6;
        if (x->n_styles == cap) {
            cap = cap ? cap * 2 : 16;
            char **ni = realloc(x->style_ids, cap * sizeof *ni);
            if (ni) x->style_ids = ni;
            int *nl = realloc(x->style_levels, cap * sizeof *nl);
            if (nl) x->style_levels = nl;
            if (!ni || !nl) { rc = RAG_ERR_NOMEM; break; }
        }
        if (!(x->style_ids[x->n_styles] = strdup(id))) { rc = RAG_ERR_NOMEM; break; }
        x->style_levels[x->n_styles++] = level;
        rc = check(x);
    }
    xmlFreeDoc(doc);
    return rc;
}

static xmlNode *docx_note(xmlNode *root, const char *id) {
    char v[64];
    for (xmlNode *c = root ? root->children : NULL; c; c = c->next)
        if ((is(c, "footnote") || is(c, "endnote")) && strcmp(attr(c, "id", v, sizeof v), id) == 0) return c;
    return NULL;
}

/* Inline content of a Word paragraph (runs, hyperlinks, insertions, text
 * boxes); deletions, field codes and comments are left out. */
static int docx_inline(ox *x, xmlNode *n) {
    int rc = RAG_OK;
    for (xmlNode *c = n->children; c && rc == RAG_OK; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        const char *nm = (const char *)c->name;
        if (!strcmp(nm, "del") || !strcmp(nm, "delText") || !strcmp(nm, "moveFrom") || !strcmp(nm, "instrText") ||
            !strcmp(nm, "rPr") || !strcmp(nm, "pPr") || !strcmp(nm, "Fallback") || !strcmp(nm, "annotationRef") ||
            !strcmp(nm, "commentReference") || !strcmp(nm, "delInstrText"))
            continue;
        if (!strcmp(nm, "t")) rc = put_content(x, c);
        else if (!strcmp(nm, "tab") || !strcmp(nm, "ptab")) rc = put_str(x, " ");
        else if (!strcmp(nm, "br") || !strcmp(nm, "cr")) rc = put_str(x, "\n");
        else if (!strcmp(nm, "noBreakHyphen")) rc = put_str(x, "-");
        else if (!strcmp(nm, "footnoteReference") || !strcmp(nm, "endnoteReference")) {
            char id[64];
            attr(c, "id", id, sizeof id);
            xmlNode *body = docx_note(nm[0] == 'f' ? x->foot_root : x->end_root, id);
            if (body && !x->in_note) rc = note_ref(x, body);
        } else if (!strcmp(nm, "p")) {
            rc = put_str(x, "\n");
            if (rc == RAG_OK) rc = docx_inline(x, c);
            if (rc == RAG_OK) rc = put_str(x, "\n");
        } else if (!strcmp(nm, "tc")) {
            rc = docx_inline(x, c);
            if (rc == RAG_OK) rc = put_str(x, " ");
        } else {
            rc = docx_inline(x, c);
        }
        if (rc == RAG_OK) rc = check(x);
    }
    return rc;
}

static int docx_blocks(ox *x, xmlNode *n) {
    int rc = RAG_OK;
    for (xmlNode *c = n->children; c && rc == RAG_OK; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (is(c, "p")) {
            int level = docx_level(x, c);
            bool title = docx_is_title(x, c);
            bool list = child(child(c, "pPr"), "numPr") != NULL;
            if ((rc = docx_inline(x, c))) break;
            if (title && !x->d->title && x->para.len) {
                char *t = x->para.data;
                size_t l = x->para.len;
                while (l && (t[l - 1] == ' ' || t[l - 1] == '\n')) l--;
                while (l && (*t == ' ' || *t == '\n')) { t++; l--; }
                if (l && !(x->d->title = strndup(t, l))) { rc = RAG_ERR_NOMEM; break; }
            }
            rc = emit(x, level ? RAG_BLOCK_HEADING : list ? RAG_BLOCK_LIST_ITEM : RAG_BLOCK_PARAGRAPH, level);
        } else if (is(c, "tbl")) {
            /* a row per block: cells joined with " | " */
            for (xmlNode *tr = c->children; tr && rc == RAG_OK; tr = tr->next) {
                if (!is(tr, "tr")) continue;
                bool first = true;
                for (xmlNode *tc = tr->children; tc && rc == RAG_OK; tc = tc->next) {
                    if (!is(tc, "tc") && !is(tc, "sdt")) continue;
                    if (!first) rc = put_str(x, " | ");
                    first = false;
                    size_t before = x->para.len;
                    if (rc == RAG_OK) rc = docx_inline(x, tc);
                    flatten(x, before);   /* paragraphs of one cell on one line */
                }
                if (rc == RAG_OK) rc = emit(x, RAG_BLOCK_TABLE_CELL, 0);
            }
        } else if (is(c, "del") || is(c, "moveFrom") || is(c, "sectPr") || is(c, "Fallback")) {
            continue;
        } else {
            rc = docx_blocks(x, c);   /* sdt, sdtContent, ins, customXml, AlternateContent, ... */
        }
    }
    return rc;
}

static int notes_section(ox *x, int (*blocks)(ox *, xmlNode *)) {
    if (!x->n_notes) return RAG_OK;
    int rc = heading(x, "Notes", 1);
    x->in_note = true;
    for (size_t i = 0; i < x->n_notes && rc == RAG_OK; i++) {
        char mark[32];
        snprintf(mark, sizeof mark, "[%zu] ", i + 1);
        size_t before = x->d->n_blocks;
        if ((rc = put_str(x, mark))) break;
        /* the mark prefixes the note's first paragraph */
        rc = blocks(x, x->notes[i]);
        if (rc == RAG_OK && x->d->n_blocks == before) rc = emit(x, RAG_BLOCK_PARAGRAPH, 0);
    }
    x->in_note = false;
    return rc;
}

static int extract_docx(ox *x) {
    char mainp[1024], tmp[1100];
    ox_rels rels = {0};
    xmlDoc *doc = NULL, *fdoc = NULL, *edoc = NULL;
    int rc = main_part(x, "word/document.xml", mainp, sizeof mainp);
    if (rc == RAG_OK) rc = read_rels(x, mainp, &rels);
    if (rc == RAG_OK) rc = doc_title(x, "docProps/core.xml");
    const ox_rel *r;
    snprintf(tmp, sizeof tmp, "word/styles.xml");
    if (rc == RAG_OK && (r = rel_by_type(&rels, "styles"))) snprintf(tmp, sizeof tmp, "%s", r->target);
    if (rc == RAG_OK) rc = docx_styles(x, tmp);
    if (rc == RAG_OK && (r = rel_by_type(&rels, "footnotes"))) {
        rc = parse_member(x, r->target, false, &fdoc);
        if (rc == RAG_ERR_NOTFOUND) rc = RAG_OK;
        if (fdoc) x->foot_root = xmlDocGetRootElement(fdoc);
    }
    if (rc == RAG_OK && (r = rel_by_type(&rels, "endnotes"))) {
        rc = parse_member(x, r->target, false, &edoc);
        if (rc == RAG_ERR_NOTFOUND) rc = RAG_OK;
        if (edoc) x->end_root = xmlDocGetRootElement(edoc);
    }
    if (rc == RAG_OK) rc = parse_member(x, mainp, true, &doc);
    if (rc == RAG_OK) {
        xmlNode *body = child(xmlDocGetRootElement(doc), "body");
        if (!body) rc = fail(x, RAG_ERR_FORMAT, "%s has no document body (not a Word document?)", mainp);
        else rc = docx_blocks(x, body);
    }
    if (rc == RAG_OK) rc = notes_section(x, docx_blocks);
    rels_free(&rels);
    if (doc) xmlFreeDoc(doc);
    if (fdoc) xmlFreeDoc(fdoc);
    if (edoc) xmlFreeDoc(edoc);
    return rc;
}

/* ================================================================ sheets */
/* Column number (1-based) of a cell reference "BC12", 0 when malformed;
 * *row gets the row (0 when absent). */
static uint32_t cell_ref(const char *r, uint32_t *row) {
    uint32_t col = 0;
    *row = 0;
    while (*r >= 'A' && *r <= 'Z') {
        col = col * 26 + (uint32_t)(*r - 'A' + 1);
        if (col > 16384) return 0;
        r++;
    }
    uint32_t rw = 0;
    while (*r >= '0' && *r <= '9') {
        rw = rw * 10 + (uint32_t)(*r - '0');
        if (rw > 100000000) return 0;
        r++;
    }
    *row = rw;
    return col;
}

static void col_name(uint32_t col, char *out) {
    char tmp[8];
    int k = 0;
    while (col && k < 7) {
        col--;
        tmp[k++] = (char)('A' + col % 26);
        col /= 26;
    }
    for (int i = 0; i < k; i++) out[i] = tmp[k - 1 - i];
    out[k] = 0;
}

/* The cells of one sheet row, as strings per column, then turned into
 * "header: value; ..." by sheet_row. */
typedef struct {
    char **hdr;                 /* header texts by column (1-based), NULL = none */
    uint32_t n_hdr;
    bool have_hdr;
    char **cell;                /* this row's cell texts */
    uint32_t n_cell, cap_cell;
} sheet;

static void sheet_clear_row(sheet *s) {
    for (uint32_t i = 0; i < s->n_cell; i++) {
        free(s->cell[i]);
        s->cell[i] = NULL;
    }
    s->n_cell = 0;
}

static void sheet_free(sheet *s) {
    sheet_clear_row(s);
    free(s->cell);
    for (uint32_t i = 0; i < s->n_hdr; i++) free(s->hdr[i]);
    free(s->hdr);
    memset(s, 0, sizeof *s);
}

static int sheet_set(sheet *s, uint32_t col, const char *v, size_t n) {
    if (col == 0 || col > 16384) return RAG_OK;
    while (n && isspace((unsigned char)v[n - 1])) n--;
    while (n && isspace((unsigned char)*v)) { v++; n--; }
    if (!n) return RAG_OK;
    if (col > s->cap_cell) {
        uint32_t nc = s->cap_cell ? s->cap_cell : 16;
        while (nc < col) nc *= 2;
        char **c = realloc(s->cell, nc * sizeof *c);
        if (!c) return RAG_ERR_NOMEM;
        memset(c + s->cap_cell, 0, (nc - s->cap_cell) * sizeof *c);
        s->cell = c;
        s->cap_cell = nc;
    }
    free(s->cell[col - 1]);
    if (!(s->cell[col - 1] = strndup(v, n))) return RAG_ERR_NOMEM;
    if (col > s->n_cell) s->n_cell = col;
    return RAG_OK;
}

/* Emits the collected row: the first non-empty row of a sheet is its
 * header (emitted as "Columns: a | b"), later rows "header: value; ...". */
static int sheet_row(ox *x, sheet *s, uint32_t row) {
    int rc = RAG_OK;
    bool any = false;
    for (uint32_t i = 0; i < s->n_cell; i++) any |= s->cell[i] != NULL;
    if (!any) goto done;
    if (!s->have_hdr) {
        s->have_hdr = true;
        s->hdr = s->cell;
        s->n_hdr = s->n_cell;
        s->cell = NULL;
        s->n_cell = s->cap_cell = 0;
        rc = put_str(x, "Columns: ");
        bool first = true;
        for (uint32_t i = 0; i < s->n_hdr && rc == RAG_OK; i++) {
            if (!s->hdr[i]) continue;
            if (!first) rc = put_str(x, " | ");
            first = false;
            if (rc == RAG_OK) rc = put_str(x, s->hdr[i]);
        }
        if (rc == RAG_OK) rc = emit_row(x, row);
        return rc;
    }
    bool first = true;
    for (uint32_t i = 0; i < s->n_cell && rc == RAG_OK; i++) {
        if (!s->cell[i]) continue;
        if (!first) rc = put_str(x, "; ");
        first = false;
        char colbuf[8];
        const char *h = i < s->n_hdr && s->hdr[i] ? s->hdr[i] : NULL;
        if (!h) {
            col_name(i + 1, colbuf);
            h = colbuf;
        }
        if (rc == RAG_OK) rc = put_str(x, h);
        if (rc == RAG_OK) rc = put_str(x, ": ");
        if (rc == RAG_OK) rc = put_str(x, s->cell[i]);
    }
    if (rc == RAG_OK) rc = emit_row(x, row);
done:
    sheet_clear_row(s);
    return rc ? rc : check(x);
}

/* Days since 1970-01-01 to a civil date (proleptic Gregorian). */
static void civil(int64_t z, int *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

/* An Excel serial date (1900 or 1904 system) as ISO text. */
static void excel_date(double v, bool d1904, char *out, size_t cap) {
    if (!(v >= 0 && v < 2958466)) {
        snprintf(out, cap, "%g", v);
        return;
    }
    int64_t days = (int64_t)v;
    double frac = v - (double)days;
    int64_t epoch;      /* days from 1970-01-01 to serial 0 */
    if (d1904) epoch = -24107;                       /* 1904-01-01 */
    else epoch = days >= 61 ? -25569 : -25568;       /* 1899-12-30; 1900's false leap day before March */
    int y, m, d;
    civil(days + epoch, &y, &m, &d);
    long secs = (long)(frac * 86400 + 0.5);
    if (secs >= 86400) secs = 86399;
    if (secs) snprintf(out, cap, "%04d-%02d-%02d %02ld:%02ld", y, m, d, secs / 3600, secs / 60 % 60);
    else if (days == 0 && !d1904) snprintf(out, cap, "%02ld:%02ld", secs / 3600, secs / 60 % 60);
    else snprintf(out, cap, "%04d-%02d-%02d", y, m, d);
}

static bool fmt_is_date(int id, const char *code) {
    if ((id >= 14 && id <= 22) || (id >= 45 && id <= 47) || (id >= 27 && id <= 36) || (id >= 50 && id <= 58))
        return true;
    if (!code) return false;
    /* a custom format with date letters outside quotes and brackets */
    bool q = false, br = false;
    for (const char *c = code; *c; c++) {
        if (*c == '"') q = !q;
        else if (!q && *c == '[') br = true;
        else if (!q && *c == ']') br = false;
        else if (!q && !br && *c == '\\') c += c[1] ? 1 : 0;
        else if (!q && !br && strchr("dDyYhH", *c)) return true;
        else if (!q && !br && (*c == 'm' || *c == 'M')) return true;
    }
    return false;
}

typedef struct {
    char **ss;                  /* shared strings */
    size_t n_ss;
    bool *xf_date;              /* cell style index -> is a date format */
    size_t n_xf;
    bool d1904;
} xl_book;

static void xl_free(xl_book *b) {
    for (size_t i = 0; i < b->n_ss; i++) free(b->ss[i]);
    free(b->ss);
    free(b->xf_date);
    memset(b, 0, sizeof *b);
}

/* Text of a shared string / inline string: t elements, not phonetic runs. */
static int xl_text(ox *x, xmlNode *n) {
    int rc = RAG_OK;
    for (xmlNode *c = n->children; c && rc == RAG_OK; c = c->next) {
        if (is(c, "rPh") || is(c, "phoneticPr")) continue;
        if (is(c, "t")) rc = put_content(x, c);
        else if (c->type == XML_ELEMENT_NODE) rc = xl_text(x, c);
    }
    return rc;
}

static int xl_shared(ox *x, xl_book *bk, const char *part) {
    xmlDoc *doc;
    int rc = parse_member(x, part, false, &doc);
    if (rc == RAG_ERR_NOTFOUND) return RAG_OK;
    if (rc) return rc;
    size_t cap = 0;
    for (xmlNode *si = xmlDocGetRootElement(doc)->children; si && rc == RAG_OK; si = si->next) {
        if (!is(si, "si")) continue;
        x->para.len = 0;
        if ((rc = xl_text(x, si))) break;
        if (bk->n_ss == cap) {
            cap = cap ? cap * 2 : 64;
            char **n = realloc(bk->ss, cap * sizeof *n);
            if (!n) { rc = RAG_ERR_NOMEM; break; }
            bk->ss = n;
        }
        if (!(bk->ss[bk->n_ss] = strndup(x->para.data ? x->para.data : "", x->para.len))) { rc = RAG_ERR_NOMEM; break; }
        bk->n_ss++;
        /* shared strings count toward the text budget like text */
        rc = rag_budget_check(x->b, x->out.len + x->para.len);
    }
    x->para.len = 0;
    xmlFreeDoc(doc);
    return rc;
}

static int xl_styles(ox *x, xl_book *bk, const char *part) {
    xmlDoc *doc;
    int rc = parse_member(x, part, false, &doc);
    if (rc == RAG_ERR_NOTFOUND) return RAG_OK;
    if (rc) return rc;
    xmlNode *root = xmlDocGetRootElement(doc);
    xmlNode *fmts = child(root, "numFmts"), *xfs = child(root, "cellXfs");
    size_t n = 0;
    for (xmlNode *c = xfs ? xfs->children : NULL; c; c = c->next) n += is(c, "xf");
    if (n && !(bk->xf_date = calloc(n, sizeof *bk->xf_date))) rc = RAG_ERR_NOMEM;
    size_t i = 0;
    for (xmlNode *c = xfs ? xfs->children : NULL; c && rc == RAG_OK; c = c->next) {
        if (!is(c, "xf")) continue;
        char v[64], code[512], fid[64];
        int id = atoi(attr(c, "numFmtId", v, sizeof v));
        const char *cd = NULL;
        for (xmlNode *f = fmts ? fmts->children : NULL; f; f = f->next)
            if (is(f, "numFmt") && atoi(attr(f, "numFmtId", fid, sizeof fid)) == id) {
                cd = attr(f, "formatCode", code, sizeof code);
                break;
            }
        bk->xf_date[i++] = fmt_is_date(id, cd);
        rc = check(x);
    }
    bk->n_xf = i;
    xmlFreeDoc(doc);
    return rc;
}

static int xl_sheet(ox *x, xl_book *bk, const char *part, const char *sname) {
    xmlDoc *doc;
    int rc = parse_member(x, part, true, &doc);
    if (rc) return rc;
    if ((rc = heading(x, sname, 1))) goto done;
    xmlNode *data = child(xmlDocGetRootElement(doc), "sheetData");
    sheet s = {0};
    uint32_t next_row = 1;
    for (xmlNode *r = data ? data->children : NULL; r && rc == RAG_OK; r = r->next) {
        if (!is(r, "row")) continue;
        char v[64];
        uint32_t row = (uint32_t)strtoul(attr(r, "r", v, sizeof v), NULL, 10);
        if (!row || row > 100000000) row = next_row;
        next_row = row + 1;
        uint32_t next_col = 1;
        for (xmlNode *c = r->children; c && rc == RAG_OK; c = c->next) {
            if (!is(c, "c")) continue;
            char ref[32], t[16], sidx[32];
            uint32_t rr;
            uint32_t col = cell_ref(attr(c, "r", ref, sizeof ref), &rr);
            if (!col) col = next_col;
            next_col = col + 1;
            attr(c, "t", t, sizeof t);
            xmlNode *vn = child(c, "v");
            xmlChar *val = vn ? xmlNodeGetContent(vn) : NULL;
            const char *vs = val ? (const char *)val : "";
            char buf[64];
            if (!strcmp(t, "s")) {
                char *e;
                unsigned long k = strtoul(vs, &e, 10);
                if (val && e != vs && k < bk->n_ss) rc = sheet_set(&s, col, bk->ss[k], strlen(bk->ss[k]));
            } else if (!strcmp(t, "inlineStr")) {
                xmlNode *isn = child(c, "is");
                if (isn) {
                    x->para.len = 0;
                    rc = xl_text(x, isn);
                    if (rc == RAG_OK) rc = sheet_set(&s, col, x->para.data ? x->para.data : "", x->para.len);
                    x->para.len = 0;
                }
            } else if (!strcmp(t, "b")) {
                if (val) rc = sheet_set(&s, col, atoi(vs) ? "TRUE" : "FALSE", atoi(vs) ? 4 : 5);
            } else if (val) {
                unsigned long st = strtoul(attr(c, "s", sidx, sizeof sidx), NULL, 10);
                char *e;
                double dv = strtod(vs, &e);
                if ((!t[0] || !strcmp(t, "n")) && e != vs && !*e && st < bk->n_xf && bk->xf_date[st]) {
                    excel_date(dv, bk->d1904, buf, sizeof buf);
                    rc = sheet_set(&s, col, buf, strlen(buf));
                } else {
                    rc = sheet_set(&s, col, vs, strlen(vs));
                }
            }
            if (val) xmlFree(val);
            if (rc == RAG_OK) rc = check(x);
        }
        if (rc == RAG_OK) rc = sheet_row(x, &s, row);
    }
    sheet_free(&s);
done:
    xmlFreeDoc(doc);
    return rc;
}

static int extract_xlsx(ox *x) {
    char mainp[1024];
    ox_rels rels = {0};
    xl_book bk = {0};
    xmlDoc *wb = NULL;
    int rc = main_part(x, "xl/workbook.xml", mainp, sizeof mainp);
    if (rc == RAG_OK) rc = read_rels(x, mainp, &rels);
    if (rc == RAG_OK) rc = doc_title(x, "docProps/core.xml");
    const ox_rel *r;
    if (rc == RAG_OK && (r = rel_by_type(&rels, "sharedStrings"))) rc = xl_shared(x, &bk, r->target);
    if (rc == RAG_OK && (r = rel_by_type(&rels, "styles"))) rc = xl_styles(x, &bk, r->target);
    if (rc == RAG_OK) rc = parse_member(x, mainp, true, &wb);
    if (rc == RAG_OK) {
        xmlNode *root = xmlDocGetRootElement(wb);
        char v[64];
        xmlNode *pr = child(root, "workbookPr");
        attr(pr, "date1904", v, sizeof v);
        bk.d1904 = !strcmp(v, "1") || !strcasecmp(v, "true");
        xmlNode *sheets = child(root, "sheets");
        if (!sheets) rc = fail(x, RAG_ERR_FORMAT, "%s lists no sheets (not an Excel workbook?)", mainp);
        for (xmlNode *s = sheets ? sheets->children : NULL; s && rc == RAG_OK; s = s->next) {
            if (!is(s, "sheet")) continue;
            char name[512], id[128];
            attr(s, "name", name, sizeof name);
            const ox_rel *sr = rel_by_id(&rels, rid(s, id, sizeof id));
            if (!sr || !sr->target[0]) continue;
            /* chartsheets and dialogs hold no cells */
            size_t tl = strlen(sr->type);
            if (tl < 9 || strcmp(sr->type + tl - 9, "worksheet") != 0) continue;
            if (++x->unit > OX_MAX_CHAPTERS) { rc = fail(x, RAG_ERR_LIMIT, "more than %d sheets", OX_MAX_CHAPTERS); break; }
            rc = xl_sheet(x, &bk, sr->target, name[0] ? name : "Sheet");
        }
    }
    if (wb) xmlFreeDoc(wb);
    xl_free(&bk);
    rels_free(&rels);
    return rc;
}

/* ============================================================ PowerPoint */
static int pp_para(ox *x, xmlNode *p) {
    int rc = RAG_OK;
    for (xmlNode *c = p->children; c && rc == RAG_OK; c = c->next) {
        if (is(c, "r") || is(c, "fld")) {
            xmlNode *t = child(c, "t");
            if (t) rc = put_content(x, t);
        } else if (is(c, "br")) {
            rc = put_str(x, "\n");
        }
    }
    return rc;
}

/* Paragraphs of every text body under n (shapes, groups, tables); the
 * title placeholder is skipped (it is the slide's heading). */
static int pp_shapes(ox *x, xmlNode *n, bool notes) {
    int rc = RAG_OK;
    for (xmlNode *c = n->children; c && rc == RAG_OK; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (is(c, "sp")) {
            xmlNode *ph = find(child(c, "nvSpPr"), "ph");
            char t[64];
            attr(ph, "type", t, sizeof t);
            if (ph && (!strcmp(t, "title") || !strcmp(t, "ctrTitle"))) continue;
            if (ph && (!strcmp(t, "sldNum") || !strcmp(t, "sldImg") || !strcmp(t, "dt") || !strcmp(t, "ftr") ||
                       !strcmp(t, "hdr")))
                continue;
            (void)notes;
            xmlNode *tb = child(c, "txBody");
            for (xmlNode *p = tb ? tb->children : NULL; p && rc == RAG_OK; p = p->next) {
                if (!is(p, "p")) continue;
                rc = pp_para(x, p);
                if (rc == RAG_OK) rc = emit(x, RAG_BLOCK_PARAGRAPH, 0);
            }
        } else if (is(c, "tbl")) {
            for (xmlNode *tr = c->children; tr && rc == RAG_OK; tr = tr->next) {
                if (!is(tr, "tr")) continue;
                bool first = true;
                for (xmlNode *tc = tr->children; tc && rc == RAG_OK; tc = tc->next) {
                    if (!is(tc, "tc")) continue;
                    if (!first) rc = put_str(x, " | ");
                    first = false;
                    size_t before = x->para.len;
                    xmlNode *tb = child(tc, "txBody");
                    for (xmlNode *p = tb ? tb->children : NULL; p && rc == RAG_OK; p = p->next)
                        if (is(p, "p")) {
                            rc = pp_para(x, p);
                            if (rc == RAG_OK) rc = put_str(x, " ");
                        }
                    flatten(x, before);
                }
                if (rc == RAG_OK) rc = emit(x, RAG_BLOCK_TABLE_CELL, 0);
            }
        } else if (is(c, "Fallback")) {
            continue;
        } else {
            rc = pp_shapes(x, c, notes);    /* spTree, grpSp, graphicFrame, AlternateContent, ... */
        }
        if (rc == RAG_OK) rc = check(x);
    }
    return rc;
}

static int pp_title(ox *x, xmlNode *n) {
    for (xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (is(c, "sp")) {
            xmlNode *ph = find(child(c, "nvSpPr"), "ph");
            char t[64];
            attr(ph, "type", t, sizeof t);
            if (ph && (!strcmp(t, "title") || !strcmp(t, "ctrTitle"))) {
                xmlNode *tb = child(c, "txBody");
                int rc = RAG_OK;
                for (xmlNode *p = tb ? tb->children : NULL; p && rc == RAG_OK; p = p->next)
                    if (is(p, "p")) {
                        rc = pp_para(x, p);
                        if (rc == RAG_OK) rc = put_str(x, " ");
                    }
                return rc ? rc : 1;
            }
        } else if (!is(c, "Fallback")) {
            int rc = pp_title(x, c);
            if (rc) return rc;
        }
    }
    return 0;
}

static int extract_pptx(ox *x) {
    char mainp[1024];
    ox_rels rels = {0};
    xmlDoc *pres = NULL;
    int rc = main_part(x, "ppt/presentation.xml", mainp, sizeof mainp);
    if (rc == RAG_OK) rc = read_rels(x, mainp, &rels);
    if (rc == RAG_OK) rc = doc_title(x, "docProps/core.xml");
    if (rc == RAG_OK) rc = parse_member(x, mainp, true, &pres);
    xmlNode *lst = rc == RAG_OK ? child(xmlDocGetRootElement(pres), "sldIdLst") : NULL;
    for (xmlNode *s = lst ? lst->children : NULL; s && rc == RAG_OK; s = s->next) {
        if (!is(s, "sldId")) continue;
        char id[128];
        const ox_rel *sr = rel_by_id(&rels, rid(s, id, sizeof id));
        if (!sr || !sr->target[0]) continue;
        if (++x->unit > OX_MAX_CHAPTERS) { rc = fail(x, RAG_ERR_LIMIT, "more than %d slides", OX_MAX_CHAPTERS); break; }
        xmlDoc *sd = NULL;
        if ((rc = parse_member(x, sr->target, true, &sd))) break;
        xmlNode *tree = find(xmlDocGetRootElement(sd), "spTree");
        /* the heading: the title placeholder, else "Slide N" */
        x->para.len = 0;
        int t = tree ? pp_title(x, tree) : 0;
        if (t < 0) rc = t;
        bool has_title = false;
        for (size_t i = 0; i < x->para.len; i++) has_title |= x->para.data[i] != ' ' && x->para.data[i] != '\n';
        if (rc == RAG_OK) {
            if (!has_title) {
                char h[32];
                snprintf(h, sizeof h, "Slide %u", x->unit);
                rc = heading(x, h, 1);
            } else {
                for (size_t i = 0; i < x->para.len; i++)
                    if (x->para.data[i] == '\n') x->para.data[i] = ' ';
                rc = emit(x, RAG_BLOCK_HEADING, 1);
            }
        }
        if (rc == RAG_OK && tree) rc = pp_shapes(x, tree, false);
        /* speaker notes */
        ox_rels srels = {0};
        if (rc == RAG_OK) rc = read_rels(x, sr->target, &srels);
        const ox_rel *nr = rc == RAG_OK ? rel_by_type(&srels, "notesSlide") : NULL;
        if (nr) {
            xmlDoc *nd = NULL;
            rc = parse_member(x, nr->target, false, &nd);
            if (rc == RAG_ERR_NOTFOUND) rc = RAG_OK;
            xmlNode *nt = nd ? find(xmlDocGetRootElement(nd), "spTree") : NULL;
            if (rc == RAG_OK && nt) {
                size_t before = x->d->n_blocks;
                rc = heading(x, "Notes", 2);
                size_t after_h = x->d->n_blocks;
                if (rc == RAG_OK) rc = pp_shapes(x, nt, true);
                /* no notes text: drop the heading again */
                if (rc == RAG_OK && x->d->n_blocks == after_h && after_h == before + 1) {
                    x->d->n_blocks = before;
                    x->out.len = x->d->blocks[before].text_off >= 2 ? x->d->blocks[before].text_off - 2 : 0;
                    x->out.data[x->out.len] = 0;
                }
            }
            if (nd) xmlFreeDoc(nd);
        }
        rels_free(&srels);
        xmlFreeDoc(sd);
    }
    if (pres) xmlFreeDoc(pres);
    rels_free(&rels);
    return rc;
}

/* ========================================================== OpenDocument */
/* Inline text of text:p / text:h: spaces (text:s), tabs, line breaks,
 * notes (queued), no annotations (comments) or tracked changes. */
static int odf_inline(ox *x, xmlNode *n) {
    int rc = RAG_OK;
    for (xmlNode *c = n->children; c && rc == RAG_OK; c = c->next) {
        if (c->type == XML_TEXT_NODE && c->content) {
            rc = put_str(x, (const char *)c->content);
            continue;
        }
        if (c->type != XML_ELEMENT_NODE) continue;
        const char *nm = (const char *)c->name;
        if (!strcmp(nm, "annotation") || !strcmp(nm, "tracked-changes") || !strcmp(nm, "note-citation") ||
            !strcmp(nm, "change") || !strcmp(nm, "change-start") || !strcmp(nm, "change-end"))
            continue;
        if (!strcmp(nm, "s")) {
            char v[16];
            int k = atoi(attr(c, "c", v, sizeof v));
            if (k < 1) k = 1;
            if (k > 64) k = 64;
            /* text:s is a real space: keep it even after a space */
            for (int i = 0; i < k && rc == RAG_OK; i++) rc = rag_buf_putc(&x->para, ' ');
        } else if (!strcmp(nm, "tab")) {
            rc = put_str(x, " ");
        } else if (!strcmp(nm, "line-break")) {
            rc = put_str(x, "\n");
        } else if (!strcmp(nm, "note")) {
            xmlNode *body = child(c, "note-body");
            if (body && !x->in_note) rc = note_ref(x, body);
        } else if (!strcmp(nm, "p") || !strcmp(nm, "h")) {
            rc = put_str(x, "\n");
            if (rc == RAG_OK) rc = odf_inline(x, c);
            if (rc == RAG_OK) rc = put_str(x, "\n");
        } else {
            rc = odf_inline(x, c);      /* span, a, frames and text boxes inside a paragraph */
        }
        if (rc == RAG_OK) rc = check(x);
    }
    return rc;
}

static int odf_table_rows(ox *x, xmlNode *t);

static int odf_blocks(ox *x, xmlNode *n, rag_block_kind kind) {
    int rc = RAG_OK;
    for (xmlNode *c = n->children; c && rc == RAG_OK; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        const char *nm = (const char *)c->name;
        if (!strcmp(nm, "h")) {
            char v[16];
            int l = atoi(attr(c, "outline-level", v, sizeof v));
            if (l < 1) l = 1;
            if (l > 6) l = 6;
            rc = odf_inline(x, c);
            if (rc == RAG_OK) rc = emit(x, RAG_BLOCK_HEADING, l);
        } else if (!strcmp(nm, "p")) {
            rc = odf_inline(x, c);
            if (rc == RAG_OK) rc = emit(x, kind, 0);
        } else if (!strcmp(nm, "list") || !strcmp(nm, "list-item") || !strcmp(nm, "list-header")) {
            rc = odf_blocks(x, c, RAG_BLOCK_LIST_ITEM);
        } else if (!strcmp(nm, "table")) {
            rc = odf_table_rows(x, c);
        } else if (!strcmp(nm, "tracked-changes") || !strcmp(nm, "annotation") || !strcmp(nm, "sequence-decls") ||
                   !strcmp(nm, "variable-decls") || !strcmp(nm, "user-field-decls") || !strcmp(nm, "forms") ||
                   !strcmp(nm, "table-of-content") || !strcmp(nm, "notes") || !strcmp(nm, "table-columns") ||
                   !strcmp(nm, "table-column")) {
            continue;
        } else {
            rc = odf_blocks(x, c, kind);    /* section, frame, text-box, g, ... */
        }
    }
    return rc;
}

/* Text tables (odt/odp): a block per row, cells " | ". */
static int odf_table_rows(ox *x, xmlNode *t) {
    int rc = RAG_OK;
    for (xmlNode *r = t->children; r && rc == RAG_OK; r = r->next) {
        if (is(r, "table-header-rows") || is(r, "table-rows") || is(r, "table-row-group")) {
            rc = odf_table_rows(x, r);
            continue;
        }
        if (!is(r, "table-row")) continue;
        bool first = true;
        for (xmlNode *c = r->children; c && rc == RAG_OK; c = c->next) {
            if (!is(c, "table-cell")) continue;
            if (!first) rc = put_str(x, " | ");
            first = false;
            size_t before = x->para.len;
            if (rc == RAG_OK) rc = odf_inline(x, c);
            flatten(x, before);
        }
        if (rc == RAG_OK) rc = emit(x, RAG_BLOCK_TABLE_CELL, 0);
    }
    return rc;
}

static int ods_rows(ox *x, sheet *s, xmlNode *t, uint32_t *row) {
    int rc = RAG_OK;
    for (xmlNode *r = t->children; r && rc == RAG_OK; r = r->next) {
        if (is(r, "table-header-rows") || is(r, "table-rows") || is(r, "table-row-group")) {
            rc = ods_rows(x, s, r, row);
            continue;
        }
        if (!is(r, "table-row")) continue;
        char v[32];
        unsigned long rep = strtoul(attr(r, "number-rows-repeated", v, sizeof v), NULL, 10);
        if (rep < 1) rep = 1;
        uint32_t col = 1;
        for (xmlNode *c = r->children; c && rc == RAG_OK; c = c->next) {
            if (!is(c, "table-cell") && !is(c, "covered-table-cell")) continue;
            unsigned long crep = strtoul(attr(c, "number-columns-repeated", v, sizeof v), NULL, 10);
            if (crep < 1) crep = 1;
            x->para.len = 0;
            /* displayed text: one line per paragraph of the cell */
            for (xmlNode *p = c->children; p && rc == RAG_OK; p = p->next)
                if (is(p, "p")) {
                    if (x->para.len) rc = put_str(x, " ");
                    if (rc == RAG_OK) rc = odf_inline(x, p);
                }
            for (size_t i = 0; i < x->para.len; i++)
                if (x->para.data[i] == '\n') x->para.data[i] = ' ';
            if (x->para.len && rc == RAG_OK) {
                /* a repeated filled cell repeats its text, up to the sheet's width */
                for (unsigned long k = 0; k < crep && col + k <= 16384 && rc == RAG_OK; k++)
                    rc = sheet_set(s, col + (uint32_t)k, x->para.data, x->para.len);
            }
            x->para.len = 0;
            col = crep > 16384 ? 16385 : col + (uint32_t)crep;
            if (rc == RAG_OK) rc = check(x);
        }
        bool any = false;
        for (uint32_t i = 0; i < s->n_cell; i++) any |= s->cell[i] != NULL;
        if (!any) {
            /* empty rows (a sheet ends with a million of them) just count */
            *row += rep > 1048576 ? 1048576 : (uint32_t)rep;
            continue;
        }
        /* a repeated filled row: each copy is a row of the sheet */
        for (unsigned long k = 0; k < rep && rc == RAG_OK; k++) {
            if (k + 1 < rep) {
                /* keep the cells for the next copy */
                sheet copy = *s;
                char **cells = calloc(s->cap_cell ? s->cap_cell : 1, sizeof *cells);
                if (!cells) { rc = RAG_ERR_NOMEM; break; }
                for (uint32_t i = 0; i < s->n_cell && rc == RAG_OK; i++)
                    if (s->cell[i] && !(cells[i] = strdup(s->cell[i]))) rc = RAG_ERR_NOMEM;
                if (rc == RAG_OK) rc = sheet_row(x, s, *row);
                free(s->cell);
                s->cell = cells;
                s->n_cell = copy.n_cell;
                s->cap_cell = copy.cap_cell ? copy.cap_cell : 1;
            } else {
                rc = sheet_row(x, s, *row);
            }
            (*row)++;
        }
    }
    return rc;
}

static int odf_note_blocks(ox *x, xmlNode *n) { return odf_blocks(x, n, RAG_BLOCK_PARAGRAPH); }

static int extract_odf(ox *x, rag_doc_type type) {
    xmlDoc *doc = NULL;
    char *mf = NULL, *mt = NULL;
    size_t mfn = 0, mtn = 0;
    int rc = read_member(x, "META-INF/manifest.xml", false, &mf, &mfn);
    if (rc == RAG_ERR_NOTFOUND) rc = RAG_OK;
    if (rc == RAG_OK && mf && memmem(mf, mfn, "encryption-data", 15))
        rc = fail(x, RAG_ERR_UNSUPPORTED, "the document is encrypted (password protected)");
    free(mf);
    if (rc == RAG_OK) {
        rc = read_member(x, "mimetype", false, &mt, &mtn);
        if (rc == RAG_ERR_NOTFOUND) rc = RAG_OK;
        if (rc == RAG_OK && mt && !memmem(mt, mtn, "opendocument", 12))
            rc = fail(x, RAG_ERR_FORMAT, "not an OpenDocument file (mimetype %.60s)", mt);
        free(mt);
    }
    if (rc == RAG_OK) rc = doc_title(x, "meta.xml");
    if (rc == RAG_OK) rc = parse_member(x, "content.xml", true, &doc);
    if (rc) goto done;
    xmlNode *body = child(xmlDocGetRootElement(doc), "body");
    xmlNode *text = child(body, "text"), *calc = child(body, "spreadsheet"), *pres = child(body, "presentation");
    char v[512];
    if (type == RAG_DOC_ODT && text) {
        rc = odf_blocks(x, text, RAG_BLOCK_PARAGRAPH);
        if (rc == RAG_OK) rc = notes_section(x, odf_note_blocks);
    } else if (type == RAG_DOC_ODS && calc) {
        for (xmlNode *t = calc->children; t && rc == RAG_OK; t = t->next) {
            if (!is(t, "table")) continue;
            if (++x->unit > OX_MAX_CHAPTERS) { rc = fail(x, RAG_ERR_LIMIT, "more than %d sheets", OX_MAX_CHAPTERS); break; }
            attr(t, "name", v, sizeof v);
            if ((rc = heading(x, v[0] ? v : "Sheet", 1))) break;
            sheet s = {0};
            uint32_t row = 1;
            rc = ods_rows(x, &s, t, &row);
            sheet_free(&s);
        }
    } else if (type == RAG_DOC_ODP && pres) {
        for (xmlNode *pg = pres->children; pg && rc == RAG_OK; pg = pg->next) {
            if (!is(pg, "page")) continue;
            if (++x->unit > OX_MAX_CHAPTERS) { rc = fail(x, RAG_ERR_LIMIT, "more than %d slides", OX_MAX_CHAPTERS); break; }
            /* the title frame is the heading */
            xmlNode *title = NULL;
            for (xmlNode *f = pg->children; f; f = f->next)
                if (is(f, "frame") && !strcmp(attr(f, "class", v, sizeof v), "title")) { title = f; break; }
            x->para.len = 0;
            if (title) rc = odf_inline(x, title);
            for (size_t i = 0; i < x->para.len; i++)
                if (x->para.data[i] == '\n') x->para.data[i] = ' ';
            bool has = false;
            for (size_t i = 0; i < x->para.len; i++) has |= x->para.data[i] != ' ';
            if (rc == RAG_OK && has) rc = emit(x, RAG_BLOCK_HEADING, 1);
            else if (rc == RAG_OK) {
                char h[32];
                snprintf(h, sizeof h, "Slide %u", x->unit);
                rc = heading(x, h, 1);
            }
            for (xmlNode *f = pg->children; f && rc == RAG_OK; f = f->next) {
                if (f == title || f->type != XML_ELEMENT_NODE) continue;
                if (is(f, "notes")) {
                    size_t before = x->d->n_blocks;
                    rc = heading(x, "Notes", 2);
                    size_t after_h = x->d->n_blocks;
                    if (rc == RAG_OK) rc = odf_blocks(x, f, RAG_BLOCK_PARAGRAPH);
                    if (rc == RAG_OK && x->d->n_blocks == after_h && after_h == before + 1) {
                        x->d->n_blocks = before;
                        x->out.len = x->d->blocks[before].text_off >= 2 ? x->d->blocks[before].text_off - 2 : 0;
                        x->out.data[x->out.len] = 0;
                    }
                    continue;
                }
                const char *cls = attr(f, "class", v, sizeof v);
                if (!strcmp(cls, "page-number") || !strcmp(cls, "date-time") || !strcmp(cls, "footer") ||
                    !strcmp(cls, "header"))
                    continue;
                rc = odf_blocks(x, f, RAG_BLOCK_PARAGRAPH);
            }
        }
    } else {
        rc = fail(x, RAG_ERR_FORMAT, "content.xml holds no office:%s body (another OpenDocument kind?)",
                  type == RAG_DOC_ODT ? "text" : type == RAG_DOC_ODS ? "spreadsheet" : "presentation");
    }
done:
    if (doc) xmlFreeDoc(doc);
    return rc;
}


/* ================================================================= EPUB */
static int extract_epub(ox *x) {
    char *mt = NULL;
    size_t mtn = 0;
    xmlDoc *cont = NULL, *opf = NULL;
    char *enc = NULL;
    size_t encn = 0;
    int rc = read_member(x, "mimetype", false, &mt, &mtn);
    if (rc == RAG_ERR_NOTFOUND) rc = RAG_OK;
    if (rc == RAG_OK && mt && !memmem(mt, mtn, "epub", 4))
        rc = fail(x, RAG_ERR_FORMAT, "not an EPUB (mimetype %.60s)", mt);
    free(mt);
    if (rc == RAG_OK && has_member(x, "META-INF/rights.xml"))
        rc = fail(x, RAG_ERR_UNSUPPORTED, "the book is protected by DRM (META-INF/rights.xml)");
    if (rc == RAG_OK) {
        rc = read_member(x, "META-INF/encryption.xml", false, &enc, &encn);
        if (rc == RAG_ERR_NOTFOUND) rc = RAG_OK;
    }
    if (rc == RAG_OK) rc = parse_member(x, "META-INF/container.xml", true, &cont);
    char opfp[1024] = "", v[1024];
    if (rc == RAG_OK) {
        xmlNode *rf = find(xmlDocGetRootElement(cont), "rootfile");
        if (!rf || !attr(rf, "full-path", v, sizeof v)[0]) rc = fail(x, RAG_ERR_FORMAT, "META-INF/container.xml names no package file");
        else rc = resolve(x, "", v, opfp, sizeof opfp);
    }
    if (rc == RAG_OK) rc = parse_member(x, opfp, true, &opf);
    if (rc) goto done;
    xmlNode *root = xmlDocGetRootElement(opf);
    xmlNode *meta = child(root, "metadata"), *man = child(root, "manifest"), *spine = child(root, "spine");
    xmlNode *t = child(meta, "title");
    if (t) {
        xmlChar *s = xmlNodeGetContent(t);
        if (s && *s && !(x->d->title = strdup((const char *)s))) rc = RAG_ERR_NOMEM;
        if (s) xmlFree(s);
    }
    for (xmlNode *ir = spine ? spine->children : NULL; ir && rc == RAG_OK; ir = ir->next) {
        if (!is(ir, "itemref")) continue;
        char idref[256], id[256], href[1024], mtype[128], props[256], part[1100];
        attr(ir, "idref", idref, sizeof idref);
        xmlNode *item = NULL;
        for (xmlNode *it = man ? man->children : NULL; it; it = it->next)
            if (is(it, "item") && !strcmp(attr(it, "id", id, sizeof id), idref)) { item = it; break; }
        if (!item) continue;
        attr(item, "href", href, sizeof href);
        attr(item, "media-type", mtype, sizeof mtype);
        attr(item, "properties", props, sizeof props);
        if (strstr(props, "nav")) continue;     /* the table of contents */
        if (!strstr(mtype, "html")) continue;
        if (++x->unit > OX_MAX_CHAPTERS) { rc = fail(x, RAG_ERR_LIMIT, "more than %d chapters", OX_MAX_CHAPTERS); break; }
        if ((rc = resolve(x, opfp, href, part, sizeof part))) break;
        if (enc && memmem(enc, encn, href, strlen(href))) {
            rc = fail(x, RAG_ERR_UNSUPPORTED, "the chapter %s is encrypted (DRM)", part);
            break;
        }
        char *html;
        size_t hn;
        if ((rc = read_member(x, part, false, &html, &hn))) {
            if (rc == RAG_ERR_NOTFOUND) rc = fail(x, RAG_ERR_FORMAT, "the chapter %s listed in the spine is missing", part);
            break;
        }
        rag_doc *sub = calloc(1, sizeof *sub);
        if (!sub) { free(html); rc = RAG_ERR_NOMEM; break; }
        sub->type = RAG_DOC_HTML;
        char cname[1400], serr[512] = "";
        snprintf(cname, sizeof cname, "%s: %s", x->name, part);
        rc = rag_extract_html(cname, (const unsigned char *)html, hn, x->p, x->b, sub, serr, sizeof serr);
        free(html);
        if (rc) {
            if (x->err && x->errlen && !x->err[0]) snprintf(x->err, x->errlen, "%s", serr[0] ? serr : "chapter failed");
        }
        for (size_t i = 0; rc == RAG_OK && i < sub->n_blocks; i++) {
            const rag_block *sb = &sub->blocks[i];
            if (x->out.len && (rc = rag_buf_append(&x->out, "\n\n", 2))) break;
            size_t off = x->out.len;
            if ((rc = rag_buf_append(&x->out, sub->text + sb->text_off, sb->text_len))) break;
            rag_block b = {.kind = sb->kind, .level = sb->level, .text_off = off, .text_len = sb->text_len,
                           .page = x->unit};
            rc = rag_doc_add_block(x->d, &x->cap, x->p->max_blocks, &b);
            if (rc == RAG_OK) rc = check(x);
        }
        rag_doc_free(sub);
    }
done:
    free(enc);
    if (cont) xmlFreeDoc(cont);
    if (opf) xmlFreeDoc(opf);
    return rc;
}

/* ================================================================ entry */
int rag_extract_office(const char *name, const unsigned char *data, size_t len, const rag_extract_params *p,
                       rag_budget *b, rag_doc *d, char *err, size_t errlen) {
    ox x;
    memset(&x, 0, sizeof x);
    x.name = name;
    x.p = p;
    x.b = b;
    x.d = d;
    x.err = err;
    x.errlen = errlen;
    if (err && errlen) err[0] = 0;
    x.out.limit = p->max_text_bytes;
    x.para.limit = p->max_text_bytes;
    pthread_once(&xml_once, xml_init);
    int rc = zip_open_mem(&x, data, len);
    if (rc == RAG_OK) {
        switch (d->type) {
        case RAG_DOC_DOCX: rc = extract_docx(&x); break;
        case RAG_DOC_XLSX: rc = extract_xlsx(&x); break;
        case RAG_DOC_PPTX: rc = extract_pptx(&x); break;
        case RAG_DOC_ODT: case RAG_DOC_ODS: case RAG_DOC_ODP: rc = extract_odf(&x, d->type); break;
        case RAG_DOC_EPUB: rc = extract_epub(&x); break;
        default: rc = fail(&x, RAG_ERR_UNSUPPORTED, "not an office document type");
        }
    }
    if (rc == RAG_ERR_LIMIT && b && b->over) {
        /* the budget's reason wins (rag_extract_memory reports it) */
    } else if (rc == RAG_ERR_LIMIT && err && !err[0]) {
        fail(&x, rc, "extracted text exceeds the limits");
    } else if (rc == RAG_ERR_NOMEM) {
        fail(&x, rc, "out of memory");
    } else if (rc == RAG_ERR_NOTFOUND) {
        rc = fail(&x, RAG_ERR_FORMAT, "a required part is missing");
    }
    if (rc == RAG_OK && !x.out.data) rc = rag_buf_append(&x.out, "", 0);
    if (rc == RAG_OK) {
        d->text = x.out.data;
        d->text_len = x.out.len;
        x.out.data = NULL;
        d->n_pages = x.unit;
        snprintf(d->encoding, sizeof d->encoding, "%s", rag_doc_type_str(d->type));
    }
    rag_buf_release(&x.out);
    rag_buf_release(&x.para);
    free(x.notes);
    for (size_t i = 0; i < x.n_styles; i++) free(x.style_ids[i]);
    free(x.style_ids);
    free(x.style_levels);
    free(x.title_style);
    if (x.z) zip_discard(x.z);
    return rc;
}
