/* access.c — access rules: which groups may read a document (path globs for
 * folders; namespaces, categories and title prefixes for wikis), and the
 * caller's group list for the retrieval filter. Format: docs/access.md. */
#include "rag/rag.h"
#include "rag/util_internal.h"
#include "llm/llm.h"

#include "index/index.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACC_MAX_FILE (1u << 20)         /* rules file */
#define ACC_MAX_LINE 4096
#define ACC_MAX_RULES 10000
#define ACC_MAX_PATTERN 1024
#define ACC_MAX_GROUPS 64               /* as the index (IDX_MAX_GROUPS) */
#define ACC_MAX_GROUP_LEN 128
#define ACC_MAX_PATH 4096               /* longer paths need a heap buffer */
/* The answer when memory runs out: a group no caller can name ('!' is not
 * allowed in caller groups), so the document stays hidden (fail closed). */
#define DENIED RAG_ACCESS_NOBODY

typedef enum { R_PATH = 0, R_NAMESPACE, R_CATEGORY, R_PREFIX } rule_kind;

/* A compiled glob element. */
typedef enum { G_LIT = 0, G_ANY, G_CLASS, G_STAR, G_DSTAR, G_DSTAR_DIR } gtok_kind;

typedef struct {
    gtok_kind k;
    unsigned char c;        /* G_LIT: the byte */
    bool neg;               /* G_CLASS: [!...] */
    uint32_t *ranges;       /* G_CLASS: lo,hi pairs of code points */
    size_t n_ranges;
} gtok;

typedef struct {
    rule_kind kind;
    int line;
    char *pattern;          /* path glob source, category or prefix (normalised) */
    long ns;                /* R_NAMESPACE */
    gtok *glob;             /* R_PATH */
    size_t n_glob;
    char *groups;           /* normalised "a,b" or "" (public) */
} rule;

struct rag_access {
    char *name;
    rule *rules;
    size_t n;
    char *default_groups;   /* "" when there is no default rule */
    char sha256[65];        /* of the rules text */
};

#define aerr rag_errf        /* the error convention of rag/ (util_internal.h) */

/* ------------------------------------------------------------ UTF-8 */

/* Decodes one character at s[0..n); invalid bytes decode as themselves
 * (length 1) so every byte string can be matched. */
static size_t u8dec(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char b = s[0];
    size_t len = b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : (b & 0xf8) == 0xf0 ? 4 : 0;
    if (len <= 1 || len > n) { *cp = b; return 1; }
    uint32_t c = b & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) { *cp = b; return 1; }
        c = (c << 6) | (s[i] & 0x3f);
    }
    *cp = c;
    return len;
}

/* ------------------------------------------------------------ globs */

static void glob_free(gtok *g, size_t n) {
    for (size_t i = 0; i < n; i++) free(g[i].ranges);
    free(g);
}

/* Compiles a path glob: `*` (within a path part), `**` (across parts; `**`
 * followed by '/' also matches no folder at all), `?` (one character, not '/'), `[a-z]`,
 * `[!x]` / `[^x]`, `\x` (x literally). A leading '/' is dropped (patterns
 * are relative to the root); a trailing '/' means everything below. */
static int glob_compile(const char *pat, size_t len, gtok **out, size_t *n_out, char *why, size_t whylen) {
    int rc = RAG_OK;
    gtok *g = NULL;
    size_t n = 0;
    while (len && pat[0] == '/') { pat++; len--; }
    bool dir_suffix = len && pat[len - 1] == '/';
    if (!(g = calloc(len + 2, sizeof *g))) return aerr(why, whylen, RAG_ERR_NOMEM, "out of memory");
    const unsigned char *p = (const unsigned char *)pat;
    for (size_t i = 0; i < len;) {
        gtok *t = &g[n];
        memset(t, 0, sizeof *t);
        if (p[i] == '*') {
            size_t j = i;
            while (j < len && p[j] == '*') j++;
            if (j - i >= 2) {
                bool part_start = i == 0 || p[i - 1] == '/';
                if (part_start && j < len && p[j] == '/') { t->k = G_DSTAR_DIR; j++; }
                else t->k = G_DSTAR;
            } else {
                t->k = G_STAR;
            }
            i = j;
        } else if (p[i] == '?') {
            t->k = G_ANY;
            i++;
        } else if (p[i] == '[') {
            size_t j = i + 1;
            bool neg = false;
            if (j < len && (p[j] == '!' || p[j] == '^')) { neg = true; j++; }
            size_t start = j;
            /* a ']' right after the opening (or the negation) is a member */
            while (j < len && (p[j] != ']' || j == start)) {
                if (p[j] == '\\' && j + 1 < len) j++;
                j++;
            }
            if (j >= len) { rc = aerr(why, whylen, RAG_ERR_FORMAT, "unclosed '[' in pattern"); goto done; }
            size_t cap = j - start;     /* at most one range per byte */
            t->k = G_CLASS;
            t->neg = neg;
            if (!(t->ranges = malloc(2 * (cap ? cap : 1) * sizeof *t->ranges))) { rc = aerr(why, whylen, RAG_ERR_NOMEM, "out of memory"); goto done; }
            n++;    /* owned from here: freed with g on error */
            size_t k = start;
            while (k < j) {
                uint32_t lo, hi;
                if (p[k] == '\\' && k + 1 < j) k++;
                k += u8dec(p + k, j - k, &lo);
                hi = lo;
                if (k + 1 < j && p[k] == '-') {
                    k++;
                    if (p[k] == '\\' && k + 1 < j) k++;
                    k += u8dec(p + k, j - k, &hi);
                    if (hi < lo) { rc = aerr(why, whylen, RAG_ERR_FORMAT, "reversed range in '[...]'"); goto done; }
                }
                t->ranges[2 * t->n_ranges] = lo;
                t->ranges[2 * t->n_ranges + 1] = hi;
                t->n_ranges++;
            }
            i = j + 1;
            continue;
        } else {
            if (p[i] == '\\' && i + 1 < len) i++;
            t->k = G_LIT;
            t->c = p[i];
            i++;
        }
        n++;
    }
    if (dir_suffix) { memset(&g[n], 0, sizeof g[n]); g[n++].k = G_DSTAR; }
done:
    if (rc != RAG_OK) { glob_free(g, n); return rc; }
    *out = g;
    *n_out = n;
    return RAG_OK;
}

static bool class_has(const gtok *t, uint32_t c) {
    bool in = false;
    for (size_t i = 0; i < t->n_ranges && !in; i++) in = c >= t->ranges[2 * i] && c <= t->ranges[2 * i + 1];
    return in != t->neg;
}

/* Whole-string match of s[0..n) by simulating the glob as a set of reachable
 * positions: O(tokens * n) time, no backtracking blow-up. cur and nxt have
 * n + 1 entries. */
static bool glob_match(const gtok *g, size_t ng, const char *str, size_t n, bool *cur, bool *nxt) {
    const unsigned char *s = (const unsigned char *)str;
    memset(cur, 0, n + 1);
    cur[0] = true;
    for (size_t t = 0; t < ng; t++) {
        const gtok *k = &g[t];
        bool any = false;
        memset(nxt, 0, n + 1);
        switch (k->k) {
        case G_LIT:
            for (size_t j = 0; j < n; j++)
                if (cur[j] && s[j] == k->c) nxt[j + 1] = any = true;
            break;
        case G_ANY:
        case G_CLASS:
            for (size_t j = 0; j < n; j++) {
                if (!cur[j] || s[j] == '/') continue;
                uint32_t cp;
                size_t l = u8dec(s + j, n - j, &cp);
                if (k->k == G_ANY || class_has(k, cp)) nxt[j + l] = any = true;
            }
            break;
        case G_STAR: {
            bool reach = false;
            for (size_t j = 0; j <= n; j++) {
                if (cur[j]) reach = true;
                if (reach) nxt[j] = any = true;
                if (j < n && s[j] == '/') reach = false;
            }
            break;
        }
        case G_DSTAR: {
            bool reach = false;
            for (size_t j = 0; j <= n; j++) {
                if (cur[j]) reach = true;
                if (reach) nxt[j] = any = true;
            }
            break;
        }
        case G_DSTAR_DIR: {
            /* zero or more whole folders: stay, or end right after a '/' */
            bool reach = false;
            for (size_t j = 0; j <= n; j++) {
                if (cur[j]) { nxt[j] = any = true; reach = true; }
                if (j < n && s[j] == '/' && reach) nxt[j + 1] = any = true;
            }
            break;
        }
        }
        if (!any) return false;
        bool *tmp = cur;
        cur = nxt;
        nxt = tmp;
    }
    return cur[n];
}

/* ------------------------------------------------------------ parsing */

static void rule_release(rule *r) {
    free(r->pattern);
    free(r->groups);
    glob_free(r->glob, r->n_glob);
}

void rag_access_free(rag_access *a) {
    if (!a) return;
    for (size_t i = 0; i < a->n; i++) rule_release(&a->rules[i]);
    free(a->rules);
    free(a->default_groups);
    free(a->name);
    free(a);
}

static bool group_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.' || c == '@' || c == ':' || c >= 0x80;
}

/* Normalises a group list "a, b,a" to "a,b" (owned in *out): names of
 * [A-Za-z0-9_.@:-] and non-ASCII bytes, at most 64 of at most 128 bytes,
 * duplicates dropped; `public` alone is "" (everyone). */
static int groups_norm(const char *s, size_t len, char **out, char *why, size_t whylen) {
    char *o = malloc(len + 1);
    if (!o) return aerr(why, whylen, RAG_ERR_NOMEM, "out of memory");
    size_t on = 0, count = 0;
    bool pub = false;
    size_t i = 0;
    while (i <= len) {
        size_t b = i;
        while (i < len && s[i] != ',') i++;
        size_t e = i;
        while (b < e && (s[b] == ' ' || s[b] == '\t')) b++;
        while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) e--;
        i++;
        if (e == b) {
            free(o);
            return aerr(why, whylen, RAG_ERR_FORMAT, "empty group name in '%.*s'", (int)(len > 200 ? 200 : len), s);
        }
        for (size_t k = b; k < e; k++)
            if (!group_char((unsigned char)s[k])) {
                free(o);
                return aerr(why, whylen, RAG_ERR_FORMAT, "bad character '%c' in group name '%.*s' (letters, digits, _ - . @ :)",
                            s[k] >= 0x20 && s[k] < 0x7f ? s[k] : '?', (int)(e - b > 128 ? 128 : e - b), s + b);
            }
        if (e - b > ACC_MAX_GROUP_LEN) { free(o); return aerr(why, whylen, RAG_ERR_FORMAT, "group name longer than %d bytes", ACC_MAX_GROUP_LEN); }
        if (e - b == 6 && memcmp(s + b, "public", 6) == 0) { pub = true; continue; }
        /* duplicate? */
        bool dup = false;
        for (size_t p = 0; p < on && !dup;) {
            size_t q = p;
            while (q < on && o[q] != ',') q++;
            dup = q - p == e - b && memcmp(o + p, s + b, e - b) == 0;
            p = q + 1;
        }
        if (dup) continue;
        if (++count > ACC_MAX_GROUPS) { free(o); return aerr(why, whylen, RAG_ERR_FORMAT, "more than %d groups", ACC_MAX_GROUPS); }
        if (on) o[on++] = ',';
        memcpy(o + on, s + b, e - b);
        on += e - b;
    }
    o[on] = 0;
    if (pub && on) {
        free(o);
        return aerr(why, whylen, RAG_ERR_FORMAT, "`public` means everyone and cannot be combined with other groups");
    }
    *out = o;
    return RAG_OK;
}

/* Wiki names compare with '_' as ' ', runs of blanks as one, no blanks at
 * the ends, and the first letter upper-case (ASCII), as MediaWiki does.
 * Writes into out[cap]; false when it does not fit. */
static bool wiki_norm(const char *s, size_t len, char *out, size_t cap) {
    size_t n = 0;
    bool sp = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i] == '_' ? ' ' : s[i];
        if (c == ' ' || c == '\t') { sp = n > 0; continue; }
        if (n + 2 >= cap) return false;
        if (sp) { out[n++] = ' '; sp = false; }
        out[n++] = c;
    }
    out[n] = 0;
    if (n && out[0] >= 'a' && out[0] <= 'z') out[0] = (char)(out[0] - 'a' + 'A');
    return true;
}

#define WIKI_NAME_MAX 1024      /* MediaWiki titles are at most 255 bytes */

/* Reads the next token of line[*i..len): a "quoted string" (\" and \\
 * escapes) or a run of non-blank bytes. Returns 1 with the token in a new
 * buffer, 0 at the end of the line or a comment, <0 on error. */
static int next_token(const char *line, size_t len, size_t *i, char **tok, size_t *tlen, bool *quoted,
                      char *why, size_t whylen) {
    size_t p = *i;
    while (p < len && (line[p] == ' ' || line[p] == '\t')) p++;
    *i = p;
    if (p >= len || line[p] == '#') return 0;
    char *t = malloc(len - p + 1);
    if (!t) return aerr(why, whylen, RAG_ERR_NOMEM, "out of memory");
    size_t n = 0;
    *quoted = line[p] == '"';
    if (*quoted) {
        p++;
        for (;;) {
            if (p >= len) { free(t); return aerr(why, whylen, RAG_ERR_FORMAT, "unclosed quote"); }
            if (line[p] == '"') { p++; break; }
            if (line[p] == '\\' && p + 1 < len && (line[p + 1] == '"' || line[p + 1] == '\\')) p++;
            t[n++] = line[p++];
        }
        if (p < len && line[p] != ' ' && line[p] != '\t') {
            free(t);
            return aerr(why, whylen, RAG_ERR_FORMAT, "text right after a closing quote");
        }
    } else {
        while (p < len && line[p] != ' ' && line[p] != '\t') t[n++] = line[p++];
    }
    t[n] = 0;
    *i = p;
    *tok = t;
    *tlen = n;
    return 1;
}

/* The rest of the line up to a comment ('#' after a blank), trimmed. */
static void rest_of_line(const char *line, size_t len, size_t i, size_t *b, size_t *e) {
    while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
    size_t j = i;
    while (j < len && !(line[j] == '#' && (j == i || line[j - 1] == ' ' || line[j - 1] == '\t'))) j++;
    while (j > i && (line[j - 1] == ' ' || line[j - 1] == '\t')) j--;
    *b = i;
    *e = j;
}

/* Parses one line (no newline) into *r (or a default); returns RAG_OK with
 * *got set when the line held a rule. */
static int parse_line(rag_access *a, const char *line, size_t len, int lineno, rule *r, bool *got, char *why,
                      size_t whylen) {
    int rc = RAG_OK;
    char *kw = NULL, *pat = NULL;
    size_t kl = 0, pl = 0, i = 0;
    bool q = false;
    *got = false;
    memset(r, 0, sizeof *r);
    int t = next_token(line, len, &i, &kw, &kl, &q, why, whylen);
    if (t <= 0) return t;
    if (q) { rc = aerr(why, whylen, RAG_ERR_FORMAT, "a rule starts with a keyword (default, path, namespace, category, prefix)"); goto done; }
    size_t gb, ge;
    if (strcmp(kw, "default") == 0) {
        rest_of_line(line, len, i, &gb, &ge);
        if (gb == ge) { rc = aerr(why, whylen, RAG_ERR_FORMAT, "`default` needs a group list (or `public`)"); goto done; }
        if (a->default_groups) { rc = aerr(why, whylen, RAG_ERR_FORMAT, "a second `default` rule"); goto done; }
        rc = groups_norm(line + gb, ge - gb, &a->default_groups, why, whylen);
        goto done;
    }
    if (strcmp(kw, "path") == 0) r->kind = R_PATH;
    else if (strcmp(kw, "namespace") == 0) r->kind = R_NAMESPACE;
    else if (strcmp(kw, "category") == 0) r->kind = R_CATEGORY;
    else if (strcmp(kw, "prefix") == 0) r->kind = R_PREFIX;
    else {
        rc = aerr(why, whylen, RAG_ERR_FORMAT, "unknown rule '%.40s' (default, path, namespace, category, prefix)", kw);
        goto done;
    }
    if ((t = next_token(line, len, &i, &pat, &pl, &q, why, whylen)) < 0) { rc = t; goto done; }
    if (t == 0 || pl == 0) { rc = aerr(why, whylen, RAG_ERR_FORMAT, "`%s` needs a pattern and a group list", kw); goto done; }
    if (pl > ACC_MAX_PATTERN) { rc = aerr(why, whylen, RAG_ERR_FORMAT, "pattern longer than %d bytes", ACC_MAX_PATTERN); goto done; }
    if (memchr(pat, 0, pl)) { rc = aerr(why, whylen, RAG_ERR_FORMAT, "NUL byte in the pattern"); goto done; }
    rest_of_line(line, len, i, &gb, &ge);
    if (gb == ge) { rc = aerr(why, whylen, RAG_ERR_FORMAT, "`%s %.60s` needs a group list (or `public`)", kw, pat); goto done; }
    if ((rc = groups_norm(line + gb, ge - gb, &r->groups, why, whylen)) != RAG_OK) goto done;
    r->line = lineno;
    switch (r->kind) {
    case R_PATH:
        if ((rc = glob_compile(pat, pl, &r->glob, &r->n_glob, why, whylen)) != RAG_OK) goto done;
        r->pattern = pat;
        pat = NULL;
        break;
    case R_NAMESPACE: {
        char *end;
        errno = 0;
        long v = strtol(pat, &end, 10);
        if (*end || errno || v < -2 || v > 1000000) {
            rc = aerr(why, whylen, RAG_ERR_FORMAT, "namespace '%.40s' is not a namespace number", pat);
            goto done;
        }
        r->ns = v;
        r->pattern = pat;
        pat = NULL;
        break;
    }
    case R_CATEGORY: {
        const char *c = pat;
        size_t cl = pl;
        if (cl >= 9 && strncasecmp(c, "Category:", 9) == 0) { c += 9; cl -= 9; }
        char nb[WIKI_NAME_MAX];
        if (!wiki_norm(c, cl, nb, sizeof nb)) { rc = aerr(why, whylen, RAG_ERR_FORMAT, "category too long"); goto done; }
        if (!*nb) { rc = aerr(why, whylen, RAG_ERR_FORMAT, "empty category"); goto done; }
        if (!(r->pattern = strdup(nb))) { rc = aerr(why, whylen, RAG_ERR_NOMEM, "out of memory"); goto done; }
        break;
    }
    case R_PREFIX:
        /* a prefix is compared as written, with '_' as ' ' (no trimming:
         * "Finance/" and "Finance " differ) */
        for (size_t k = 0; k < pl; k++)
            if (pat[k] == '_') pat[k] = ' ';
        r->pattern = pat;
        pat = NULL;
        break;
    }
    *got = true;
done:
    if (rc != RAG_OK) rule_release(r);
    free(kw);
    free(pat);
    return rc;
}

/* Contract: see rag.h. */
int rag_access_parse(const char *name, const char *text, size_t len, rag_access **out, char *err, size_t errlen) {
    int rc = RAG_OK;
    rag_access *a = NULL;
    size_t cap = 0;
    if (out) *out = NULL;
    if (!name) name = "(access rules)";
    if (!out || (!text && len)) return aerr(err, errlen, RAG_ERR_ARG, "%s: bad arguments", name);
    if (len > ACC_MAX_FILE) return aerr(err, errlen, RAG_ERR_LIMIT, "%s: larger than %u bytes", name, ACC_MAX_FILE);
    if (!(a = calloc(1, sizeof *a)) || !(a->name = strdup(name))) { rc = aerr(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
    llm_sha256_hex(text ? text : "", len, a->sha256);
    size_t pos = 0;
    int lineno = 0;
    /* a UTF-8 byte order mark is allowed */
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) pos = 3;
    while (pos < len) {
        lineno++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - (text + pos)) : len - pos;
        const char *line = text + pos;
        pos += ll + (nl ? 1 : 0);
        if (ll && line[ll - 1] == '\r') ll--;
        char why[512] = "";
        if (ll > ACC_MAX_LINE) { rc = aerr(err, errlen, RAG_ERR_FORMAT, "%s:%d: line longer than %d bytes", name, lineno, ACC_MAX_LINE); goto done; }
        if (memchr(line, 0, ll)) { rc = aerr(err, errlen, RAG_ERR_FORMAT, "%s:%d: NUL byte", name, lineno); goto done; }
        rule r;
        bool got = false;
        int prc = parse_line(a, line, ll, lineno, &r, &got, why, sizeof why);
        if (prc != RAG_OK) { rc = aerr(err, errlen, prc, "%s:%d: %s", name, lineno, why); goto done; }
        if (!got) continue;
        if (a->n == ACC_MAX_RULES) {
            rule_release(&r);
            rc = aerr(err, errlen, RAG_ERR_LIMIT, "%s:%d: more than %d rules", name, lineno, ACC_MAX_RULES);
            goto done;
        }
        if (rag_array_grow(&a->rules, &cap, a->n + 1, sizeof *a->rules, 16)) {
            rule_release(&r);
            rc = aerr(err, errlen, RAG_ERR_NOMEM, "out of memory");
            goto done;
        }
        a->rules[a->n++] = r;
    }
    if (!a->default_groups && !(a->default_groups = strdup(""))) { rc = aerr(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
done:
    if (rc != RAG_OK) { rag_access_free(a); return rc; }
    *out = a;
    return RAG_OK;
}

/* Contract: see rag.h. */
int rag_access_load(const char *path, rag_access **out, char *err, size_t errlen) {
    int rc = RAG_OK;
    char *buf = NULL;
    size_t n = 0;
    if (out) *out = NULL;
    if (!path || !out) return aerr(err, errlen, RAG_ERR_ARG, "access rules: bad arguments");
    FILE *f = fopen(path, "rb");
    if (!f) return aerr(err, errlen, RAG_ERR_IO, "%s: %s", path, strerror(errno));
    if (!(buf = malloc(ACC_MAX_FILE + 1))) { rc = aerr(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
    n = fread(buf, 1, ACC_MAX_FILE + 1, f);
    if (ferror(f)) { rc = aerr(err, errlen, RAG_ERR_IO, "%s: read error", path); goto done; }
    if (n > ACC_MAX_FILE) { rc = aerr(err, errlen, RAG_ERR_LIMIT, "%s: larger than %u bytes", path, ACC_MAX_FILE); goto done; }
    rc = rag_access_parse(path, buf, n, out, err, errlen);
done:
    fclose(f);
    free(buf);
    return rc;
}

const char *rag_access_hash(const rag_access *a) { return a ? a->sha256 : ""; }

/* Contract: see rag.h. */
const char *rag_access_for_path(const rag_access *a, const char *rel) {
    if (!a) return "";
    if (!rel) return a->default_groups;
    while (*rel == '/') rel++;
    if (rel[0] == '.' && rel[1] == '/') rel += 2;
    size_t n = strlen(rel);
    bool cur_s[ACC_MAX_PATH + 1], nxt_s[ACC_MAX_PATH + 1];
    bool *cur = cur_s, *nxt = nxt_s;
    if (n > ACC_MAX_PATH) {
        cur = malloc(n + 1);
        nxt = malloc(n + 1);
        if (!cur || !nxt) {
            free(cur);
            free(nxt);
            return DENIED;
        }
    }
    const char *res = a->default_groups;
    for (size_t i = 0; i < a->n; i++) {
        const rule *r = &a->rules[i];
        if (r->kind == R_PATH && glob_match(r->glob, r->n_glob, rel, n, cur, nxt)) { res = r->groups; break; }
    }
    if (cur != cur_s) { free(cur); free(nxt); }
    return res;
}

/* Contract: see rag.h. Titles and categories longer than WIKI_NAME_MAX
 * bytes (MediaWiki allows 255) match no title or category rule. */
const char *rag_access_for_page(const rag_access *a, int ns, const char *title, const char *const *categories,
                                size_t n_categories) {
    if (!a) return "";
    char t[WIKI_NAME_MAX], tp[WIKI_NAME_MAX], c[WIKI_NAME_MAX];
    bool have_t = title && wiki_norm(title, strlen(title), t, sizeof t);
    /* the title as written, '_' as ' ', for prefixes that end in a blank */
    bool have_tp = title && strlen(title) < sizeof tp;
    if (have_tp) {
        size_t i = 0;
        for (; title[i]; i++) tp[i] = title[i] == '_' ? ' ' : title[i];
        tp[i] = 0;
    }
    for (size_t i = 0; i < a->n; i++) {
        const rule *r = &a->rules[i];
        switch (r->kind) {
        case R_PATH: break;
        case R_NAMESPACE:
            if (r->ns == ns) return r->groups;
            break;
        case R_CATEGORY:
            for (size_t k = 0; categories && k < n_categories; k++) {
                const char *cs = categories[k] ? categories[k] : "";
                size_t cl = strlen(cs);
                if (cl >= 9 && strncasecmp(cs, "Category:", 9) == 0) { cs += 9; cl -= 9; }
                if (wiki_norm(cs, cl, c, sizeof c) && strcmp(c, r->pattern) == 0) return r->groups;
            }
            break;
        case R_PREFIX: {
            size_t pl = strlen(r->pattern);
            if ((have_tp && strncmp(tp, r->pattern, pl) == 0) || (have_t && strncmp(t, r->pattern, pl) == 0))
                return r->groups;
            break;
        }
        }
    }
    return a->default_groups;
}

/* True when the comma-separated list holds the name s[0..n). */
static bool list_has(const char *list, const char *s, size_t n) {
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        if ((size_t)(e - p) == n && memcmp(p, s, n) == 0) return true;
        p = *e ? e + 1 : e;
    }
    return false;
}

/* Contract: see rag.h. */
char *rag_access_groups_and(const char *a, const char *b) {
    a = a ? a : "";
    b = b ? b : "";
    if (!*a) return strdup(b);
    if (!*b) return strdup(a);
    if (strcmp(a, DENIED) == 0 || strcmp(b, DENIED) == 0) return strdup(DENIED);
    char *o = malloc(strlen(a) + 1);
    if (!o) return NULL;
    size_t on = 0;
    for (const char *p = a; *p;) {
        const char *e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        if (e > p && list_has(b, p, (size_t)(e - p))) {
            if (on) o[on++] = ',';
            memcpy(o + on, p, (size_t)(e - p));
            on += (size_t)(e - p);
        }
        p = *e ? e + 1 : e;
    }
    o[on] = 0;
    if (!on) {
        free(o);
        return strdup(DENIED);
    }
    return o;
}

/* ------------------------------------------------------------ caller groups */

void rag_groups_free(idx_filter *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_groups; i++) free((char *)f->groups[i]);
    free((void *)f->groups);
    f->groups = NULL;
    f->n_groups = 0;
}

/* Contract: see rag.h. */
int rag_groups_parse(const char *csv, idx_filter *f) {
    if (!f) return RAG_ERR_ARG;
    f->groups = NULL;
    f->n_groups = 0;
    if (!csv) return RAG_ERR_ARG;
    size_t len = strlen(csv);
    while (len && (*csv == ' ' || *csv == '\t')) { csv++; len--; }
    while (len && (csv[len - 1] == ' ' || csv[len - 1] == '\t')) len--;
    if (len == 0) return RAG_OK;
    if (len == 1 && csv[0] == '*') return RAG_ERR_ARG;
    char *norm = NULL;
    char why[256];
    int rc = groups_norm(csv, len, &norm, why, sizeof why);
    if (rc != RAG_OK) return rc;
    size_t n = 0;
    if (*norm) {
        n = 1;
        for (const char *p = norm; *p; p++) n += *p == ',';
    }
    const char **g = n ? calloc(n, sizeof *g) : NULL;
    if (n && !g) { free(norm); return RAG_ERR_NOMEM; }
    size_t k = 0;
    for (char *p = norm; n && k < n;) {
        char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (!(g[k] = strndup(p, l))) { rc = RAG_ERR_NOMEM; break; }
        k++;
        if (!e) break;
        p = e + 1;
    }
    free(norm);
    f->groups = g;
    f->n_groups = k;
    if (rc != RAG_OK) rag_groups_free(f);
    return rc;
}
