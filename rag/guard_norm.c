/* guard_norm.c — normalisation for the guardrails: UTF-8 repair, the
 * Unicode view (utf8proc NFKC, invisible characters, look-alikes), the
 * skeleton view (case, leetspeak, spaced letters) and decoding of encoded
 * runs, each with a map back to the original bytes. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "rag/guard_norm_internal.h"
#include "rag/rag.h"

void rag_guard_view_release(guard_view *v) {
    if (!v) return;
    free(v->s);
    free(v->a);
    free(v->b);
    memset(v, 0, sizeof *v);
}

void rag_guard_view_span(const guard_view *v, size_t s, size_t e, size_t *os, size_t *oe) {
    if (!v->a) { *os = s; *oe = e; return; }
    if (v->n == 0) { *os = *oe = 0; return; }
    if (s >= v->n) s = v->n - 1;
    if (e > v->n) e = v->n;
    if (e <= s) e = s + 1;
    size_t a = v->a[s], b = v->b[e - 1];
    /* a view byte range can fold characters whose origins are not in order
     * (composition): take the widest span */
    for (size_t i = s; i < e; i++) {
        if (v->a[i] < a) a = v->a[i];
        if (v->b[i] > b) b = v->b[i];
    }
    *os = a;
    *oe = b;
}

size_t rag_guard_view_find(const guard_view *v, size_t off) {
    if (!v->a) return off < v->n ? off : v->n;
    size_t lo = 0, hi = v->n;
    while (lo < hi) {          /* a[] is non-decreasing */
        size_t mid = lo + (hi - lo) / 2;
        if (v->a[mid] < off) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* ------------------------------------------------------------ UTF-8 */

/* Length of the valid sequence at s (1..4), 0 when invalid at s, or -k when
 * s[0..n) is a valid but incomplete start of k bytes. */
static int utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    int need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) { need = 2; lo = 0xA0; }
    else if (c == 0xED) { need = 2; hi = 0x9F; }
    else if (c >= 0xE1 && c <= 0xEF) need = 2;
    else if (c == 0xF0) { need = 3; lo = 0x90; }
    else if (c == 0xF4) { need = 3; hi = 0x8F; }
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else return 0;
    for (int k = 1; k <= need; k++) {
        if ((size_t)k >= n) return -k;
        unsigned char d = s[k];
        if (k == 1 ? (d < lo || d > hi) : (d < 0x80 || d > 0xBF)) return k == 1 ? 0 : -100 - k;
    }
    return need + 1;
}

size_t rag_guard_utf8_valid_prefix(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) { i++; continue; }
        int l = utf8_seq(p + i, n - i);
        if (l <= 0) return i;
        i += (size_t)l;
    }
    return n;
}

size_t rag_utf8_valid_prefix(const char *s, size_t n) {
    return rag_guard_utf8_valid_prefix(s, n);
}

int rag_guard_utf8_repair(const char *s, size_t n, bool final, char **out, size_t *out_n, size_t *used) {
    const unsigned char *p = (const unsigned char *)s;
    size_t cap = n + 16, o = 0, i = 0;
    char *d = malloc(cap);
    if (!d) return -1;
    while (i < n) {
        if (o + 8 > cap) {
            cap = cap * 2;
            char *nd = realloc(d, cap);
            if (!nd) { free(d); return -1; }
            d = nd;
        }
        if (p[i] < 0x80) { d[o++] = (char)p[i++]; continue; }
        int l = utf8_seq(p + i, n - i);
        if (l > 0) {
            memcpy(d + o, p + i, (size_t)l);
            o += (size_t)l;
            i += (size_t)l;
            continue;
        }
        if (l < 0 && l > -100 && !final) break;   /* incomplete at the end: wait */
        /* invalid: one U+FFFD for the maximal subpart (the lead byte and the
         * continuation bytes that were acceptable) */
        size_t skip = l == 0 ? 1 : l <= -100 ? (size_t)(-l - 100) : (size_t)(-l);
        if (skip == 0) skip = 1;
        memcpy(d + o, "\xEF\xBF\xBD", 3);
        o += 3;
        i += skip;
    }
    d[o] = 0;
    *out = d;
    *out_n = o;
    if (used) *used = i;
    return 0;
}

/* ------------------------------------------------------------ growable arrays */

typedef struct {
    int32_t *cp;
    uint32_t *a, *b;
    size_t n, cap;
} cpvec;

/* Makes room for at least want elements. */
static int cv_reserve(cpvec *v, size_t want) {
    if (want <= v->cap) return 0;
    size_t nc = v->cap ? v->cap * 2 : 256;
    while (nc < want) nc *= 2;
    int32_t *c = realloc(v->cp, nc * sizeof *c);
    if (!c) return -1;
    v->cp = c;
    uint32_t *na = realloc(v->a, nc * sizeof *na);
    if (!na) return -1;
    v->a = na;
    uint32_t *nb = realloc(v->b, nc * sizeof *nb);
    if (!nb) return -1;
    v->b = nb;
    v->cap = nc;
    return 0;
}

static inline int cv_push(cpvec *v, int32_t cp, uint32_t a, uint32_t b) {
    if (__builtin_expect(v->n == v->cap, 0) && cv_reserve(v, v->n + 1)) return -1;
    v->cp[v->n] = cp;
    v->a[v->n] = a;
    v->b[v->n] = b;
    v->n++;
    return 0;
}

static void cv_free(cpvec *v) {
    free(v->cp);
    free(v->a);
    free(v->b);
    memset(v, 0, sizeof *v);
}

/* Encodes a code point vector into a view; origins go through map m (a
 * view of the original) when given. */
static int cv_to_view(const cpvec *v, const guard_view *m, guard_view *out) {
    memset(out, 0, sizeof *out);
    size_t cap = v->n * 4 + 1;
    out->s = malloc(cap);
    out->a = malloc(cap * sizeof *out->a);
    out->b = malloc(cap * sizeof *out->b);
    if (!out->s || !out->a || !out->b) { rag_guard_view_release(out); return -1; }
    size_t o = 0;
    for (size_t i = 0; i < v->n; i++) {
        size_t a = v->a[i], b = v->b[i];
        if (m && m->a && b > a) {       /* through the map of the view below */
            if (b == a + 1) { a = m->a[a]; b = m->b[b - 1]; }
            else rag_guard_view_span(m, a, b, &a, &b);
        }
        if (v->cp[i] < 0x80) {
            out->s[o] = (char)v->cp[i];
            out->a[o] = (uint32_t)a;
            out->b[o] = (uint32_t)b;
            o++;
            continue;
        }
        utf8proc_uint8_t buf[4];
        utf8proc_ssize_t l = utf8proc_encode_char(v->cp[i], buf);
        if (l <= 0) continue;
        for (utf8proc_ssize_t k = 0; k < l; k++) {
            out->s[o] = (char)buf[k];
            out->a[o] = (uint32_t)a;
            out->b[o] = (uint32_t)b;
            o++;
        }
    }
    out->s[o] = 0;
    out->n = o;
    return 0;
}

/* ------------------------------------------------------------ look-alikes */

/* Letters that look like a Latin letter. Cyrillic, Greek and Armenian ones
 * are folded only in Latin context (see fold_confusables); the Latin small
 * capitals and IPA letters always. Sorted by code point. */
static const struct { int32_t cp; char to; bool latin; } confusables[] = {
    {0x0131, 'i', 1}, {0x01EB, 'q', 1}, {0x0237, 'j', 1}, {0x0251, 'a', 1}, {0x0261, 'g', 1},
    {0x0262, 'g', 1}, {0x0269, 'i', 1}, {0x026A, 'i', 1}, {0x0274, 'n', 1}, {0x0280, 'r', 1},
    {0x028F, 'y', 1}, {0x0299, 'b', 1}, {0x029C, 'h', 1}, {0x029F, 'l', 1},
    {0x0391, 'A', 0}, {0x0392, 'B', 0}, {0x0395, 'E', 0}, {0x0396, 'Z', 0}, {0x0397, 'H', 0},
    {0x0399, 'I', 0}, {0x039A, 'K', 0}, {0x039C, 'M', 0}, {0x039D, 'N', 0}, {0x039F, 'O', 0},
    {0x03A1, 'P', 0}, {0x03A4, 'T', 0}, {0x03A5, 'Y', 0}, {0x03A7, 'X', 0}, {0x03B1, 'a', 0},
    {0x03B3, 'y', 0}, {0x03B5, 'e', 0}, {0x03B9, 'i', 0}, {0x03BA, 'k', 0}, {0x03BD, 'v', 0},
    {0x03BF, 'o', 0}, {0x03C1, 'p', 0}, {0x03C4, 't', 0}, {0x03C5, 'u', 0}, {0x03C7, 'x', 0},
    {0x03F2, 'c', 0}, {0x03F3, 'j', 0},
    {0x0405, 'S', 0}, {0x0406, 'I', 0}, {0x0408, 'J', 0}, {0x0410, 'A', 0}, {0x0412, 'B', 0},
    {0x0415, 'E', 0}, {0x041A, 'K', 0}, {0x041C, 'M', 0}, {0x041D, 'H', 0}, {0x041E, 'O', 0},
    {0x0420, 'P', 0}, {0x0421, 'C', 0}, {0x0422, 'T', 0}, {0x0423, 'Y', 0}, {0x0425, 'X', 0},
    {0x0430, 'a', 0}, {0x0433, 'r', 0}, {0x0435, 'e', 0}, {0x043A, 'k', 0}, {0x043E, 'o', 0},
    {0x043F, 'n', 0}, {0x0440, 'p', 0}, {0x0441, 'c', 0}, {0x0443, 'y', 0}, {0x0445, 'x', 0},
    {0x0455, 's', 0}, {0x0456, 'i', 0}, {0x0458, 'j', 0}, {0x04AE, 'Y', 0}, {0x04AF, 'y', 0},
    {0x04BB, 'h', 0}, {0x04C0, 'I', 0}, {0x04CF, 'l', 0}, {0x0501, 'd', 0}, {0x050D, 'g', 0},
    {0x051B, 'q', 0}, {0x051D, 'w', 0},
    {0x0570, 'h', 0}, {0x0578, 'n', 0}, {0x057D, 'u', 0}, {0x0581, 'g', 0}, {0x0585, 'o', 0},
    {0x13A0, 'D', 0}, {0x13A1, 'R', 0}, {0x13A2, 'T', 0}, {0x13AA, 'A', 0}, {0x13AB, 'J', 0},
    {0x13AC, 'E', 0}, {0x13B3, 'W', 0}, {0x13B7, 'M', 0}, {0x13BB, 'H', 0}, {0x13C0, 'G', 0},
    {0x13C2, 'h', 0}, {0x13C3, 'Z', 0}, {0x13CF, 'b', 0}, {0x13D2, 'R', 0}, {0x13DA, 'S', 0},
    {0x13DE, 'L', 0}, {0x13DF, 'C', 0}, {0x13E2, 'P', 0}, {0x13E6, 'K', 0}, {0x13F4, 'B', 0},
    {0x1D00, 'a', 1}, {0x1D04, 'c', 1}, {0x1D05, 'd', 1}, {0x1D07, 'e', 1}, {0x1D0A, 'j', 1},
    {0x1D0B, 'k', 1}, {0x1D0D, 'm', 1}, {0x1D0F, 'o', 1}, {0x1D18, 'p', 1}, {0x1D1B, 't', 1},
    {0x1D1C, 'u', 1}, {0x1D20, 'v', 1}, {0x1D21, 'w', 1}, {0x1D22, 'z', 1}, {0xA731, 's', 1},
};

static int confusable(int32_t cp, bool *latin) {
    size_t lo = 0, hi = sizeof confusables / sizeof confusables[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (confusables[mid].cp == cp) { *latin = confusables[mid].latin; return confusables[mid].to; }
        if (confusables[mid].cp < cp) lo = mid + 1; else hi = mid;
    }
    return 0;
}

static bool is_letter_nonascii(int32_t cp) {
    utf8proc_category_t c = utf8proc_category(cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_ME);
}

/* (inline: called for every character of every view) */
static inline bool is_letter(int32_t cp) {
    if (cp < 0x80) return (cp | 32) >= 'a' && (cp | 32) <= 'z';
    return is_letter_nonascii(cp);
}

static bool is_latin_letter(int32_t cp) {
    return (cp < 0x0250 && is_letter(cp)) || (cp >= 0x1E00 && cp <= 0x1EFF) || (cp >= 0x2C60 && cp <= 0x2C7F) ||
           (cp >= 0xA720 && cp <= 0xA7FF);
}

/* Word classes for look-alike folding. */
enum { W_NONE, W_LATIN, W_CONF, W_OTHER };

static int word_class(const cpvec *v, size_t s, size_t e) {
    bool latin = false, other = false, conf = false;
    for (size_t i = s; i < e; i++) {
        bool lat;
        if (v->cp[i] < 0x80) { latin = true; continue; }
        if (utf8proc_category(v->cp[i]) >= UTF8PROC_CATEGORY_MN && utf8proc_category(v->cp[i]) <= UTF8PROC_CATEGORY_ME) continue;
        if (confusable(v->cp[i], &lat)) { if (lat) latin = true; else conf = true; }
        else if (is_latin_letter(v->cp[i])) latin = true;
        else other = true;
    }
    if (latin) return W_LATIN;
    if (conf && !other) return W_CONF;
    return W_OTHER;
}

/* Folds look-alikes: every Latin small capital / IPA look-alike; Cyrillic,
 * Greek, Armenian, Cherokee look-alikes inside a word that has Latin
 * letters, or in a word made only of look-alikes next to a Latin word (so
 * "іgnоrе" and "Ρlеаsе" fold, a Russian sentence stays Russian). */
static void fold_confusables(cpvec *v) {
    size_t i = 0, prev_s = 0, prev_e = 0;
    int prev_class = W_NONE;
    bool prev_pending = false;
    while (i < v->n) {
        if (!is_letter(v->cp[i])) { i++; continue; }
        size_t s = i;
        while (i < v->n && is_letter(v->cp[i])) i++;
        int cls = word_class(v, s, i);
        bool fold_this = cls == W_LATIN || (cls == W_CONF && prev_class == W_LATIN);
        if (prev_pending && cls == W_LATIN) { /* a look-alike word before a Latin one */
            for (size_t k = prev_s; k < prev_e; k++) {
                bool lat;
                int to = confusable(v->cp[k], &lat);
                if (to) v->cp[k] = to;
            }
        }
        prev_pending = cls == W_CONF && !fold_this;
        for (size_t k = s; fold_this && k < i; k++) {
            bool lat;
            int to = confusable(v->cp[k], &lat);
            if (to) v->cp[k] = to;
        }
        if (fold_this && cls == W_CONF) cls = W_LATIN;
        prev_class = cls;
        prev_s = s;
        prev_e = i;
    }
}

/* Characters removed from the matching views. utf8proc's "ignorable"
 * property is Unicode's Default_Ignorable_Code_Point (zero-width space,
 * ZWJ/ZWNJ, soft hyphen, bidi controls, variation selectors, tags...). */
static bool invisible(int32_t cp) {
    if (cp < 0x20) return cp != '\t' && cp != '\n' && cp != '\r' && cp != '\f' && cp != '\v';
    if (cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) return true;       /* DEL, C1 controls */
    if (cp < 0x80) return false;
    if (cp == 0xFFFD) return true;   /* what repair put in place of invalid bytes */
    const utf8proc_property_t *p = utf8proc_get_property(cp);
    if (p->ignorable) return true;
    return cp == 0x180E || cp == 0x2061 || cp == 0x2062 || cp == 0x2063 || cp == 0x2064 ||
           (cp >= 0xE0000 && cp <= 0xE007F) || cp == 0x061C;
}

int rag_guard_view_unicode(const char *s, size_t n, guard_view *v) {
    memset(v, 0, sizeof *v);
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x7F || (ch < 0x20 && invisible(ch))) break;
    }
    if (i == n) {                   /* printable ASCII: NFKC is the identity */
        v->s = malloc(n + 1);
        if (!v->s) return -1;
        memcpy(v->s, s, n);
        v->s[n] = 0;
        v->n = n;
        return 0;
    }
    if (n > GUARD_NORM_MAX_TEXT) return -1;
    cpvec d = {0}, c = {0};
    int rc = -1;
    /* (a character decomposes to more than one rarely: grown when it does) */
    if (cv_reserve(&d, n + 16) || cv_reserve(&c, n + 16)) goto done;
    /* 1. compatibility decomposition, invisible characters dropped */
    for (i = 0; i < n;) {
        int32_t cp;
        utf8proc_ssize_t l;
        if ((unsigned char)s[i] < 0x80) { cp = (unsigned char)s[i]; l = 1; }
        else {
            l = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
            if (l <= 0) { cp = 0xFFFD; l = 1; }
        }
        uint32_t a = (uint32_t)i, b = (uint32_t)(i + (size_t)l);
        i += (size_t)l;
        if (invisible(cp)) continue;
        if (cp < 0x80) { if (cv_push(&d, cp, a, b)) goto done; continue; }
        int32_t buf[32];
        int last = 0;
        utf8proc_ssize_t k = utf8proc_decompose_char(cp, buf, 32, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, &last);
        if (k < 0 || k > 32) { buf[0] = cp; k = 1; }
        for (utf8proc_ssize_t j = 0; j < k; j++)
            if (!invisible(buf[j]) && cv_push(&d, buf[j], a, b)) goto done;
    }
    /* 2. canonical order and composition per starter + its marks */
    for (i = 0; i < d.n;) {
        size_t j = i + 1;
        /* (nothing below U+0300 combines) */
        while (j < d.n && d.cp[j] >= 0x300 && utf8proc_get_property(d.cp[j])->combining_class != 0) j++;
        if (j - i == 1) {
            if (cv_push(&c, d.cp[i], d.a[i], d.b[i])) goto done;
        } else {
            int32_t tmp[64];
            size_t m = j - i > 63 ? 63 : j - i;
            uint32_t a = d.a[i], b = d.b[i];
            for (size_t k = 0; k < m; k++) {
                tmp[k] = d.cp[i + k];
                if (d.b[i + k] > b) b = d.b[i + k];
            }
            /* stable insertion sort of the marks by combining class */
            for (size_t x = 2; x < m; x++)
                for (size_t y = x; y > 1 && utf8proc_get_property(tmp[y - 1])->combining_class >
                                                utf8proc_get_property(tmp[y])->combining_class; y--) {
                    int32_t t = tmp[y]; tmp[y] = tmp[y - 1]; tmp[y - 1] = t;
                }
            utf8proc_ssize_t r = utf8proc_normalize_utf32(tmp, (utf8proc_ssize_t)m, UTF8PROC_COMPOSE);
            if (r < 0) r = (utf8proc_ssize_t)m;
            for (utf8proc_ssize_t k = 0; k < r; k++)
                if (cv_push(&c, tmp[k], a, b)) goto done;
            for (size_t k = m; k < j - i; k++)          /* absurdly long mark runs */
                if (cv_push(&c, d.cp[i + k], d.a[i + k], d.b[i + k])) goto done;
        }
        i = j;
    }
    fold_confusables(&c);
    rc = cv_to_view(&c, NULL, v);
done:
    cv_free(&d);
    cv_free(&c);
    return rc;
}

/* ------------------------------------------------------------ skeleton */

static int leet_letter(int32_t cp) {
    switch (cp) {
    case '0': return 'o';
    case '1': return 'i';
    case '2': return 'z';
    case '3': return 'e';
    case '4': return 'a';
    case '5': return 's';
    case '6': return 'g';
    case '7': return 't';
    case '8': return 'b';
    case '9': return 'g';
    case '@': return 'a';
    case '$': return 's';
    case 0x20AC: return 'e';
    case '!': return 'i';
    case '|': return 'l';
    case '+': return 't';
    }
    return 0;
}

static bool is_leet_sym(int32_t cp) {
    return cp == '@' || cp == '$' || cp == 0x20AC || cp == '!' || cp == '|' || cp == '+';
}

static bool is_gap_char(int32_t cp) {
    return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '.' || cp == '-' || cp == '_' ||
           cp == '*' || cp == '/' || cp == '|' || cp == ',' || cp == '~' || cp == 0xB7 || cp == 0x2022 ||
           cp == 0xA0 || cp == '+' || cp == '\'' || cp == ':';
}

/* Folds the digits and symbols of c[s..e) to the letters they stand for. */
static void leet_fold(cpvec *c, size_t s, size_t e) {
    for (size_t k = s; k < e; k++) {
        if (is_letter(c->cp[k])) continue;
        int to = leet_letter(c->cp[k]);
        /* a pair of ones is "ll" ("a11") */
        if (c->cp[k] == '1' && ((k > s && c->cp[k - 1] == '1') || (k + 1 < e && c->cp[k + 1] == '1')))
            to = 'l';
        if (to) c->cp[k] = to;
    }
}

int rag_guard_view_skeleton(const guard_view *u, guard_view *v, unsigned *changes) {
    cpvec c = {0}, o = {0};
    int rc = -1;
    *changes = 0;
    memset(v, 0, sizeof *v);
    if (cv_reserve(&c, u->n + 16) || cv_reserve(&o, u->n + 16)) goto done;
    /* decode u, lower case */
    for (size_t i = 0; i < u->n;) {
        int32_t cp;
        utf8proc_ssize_t l;
        if ((unsigned char)u->s[i] < 0x80) {
            cp = (unsigned char)u->s[i];
            l = 1;
            if (cp >= 'A' && cp <= 'Z') cp += 32;
        } else {
            l = utf8proc_iterate((const utf8proc_uint8_t *)u->s + i, (utf8proc_ssize_t)(u->n - i), &cp);
            if (l <= 0) { cp = 0xFFFD; l = 1; }
            cp = utf8proc_tolower(cp);
        }
        if (cv_push(&c, cp, (uint32_t)i, (uint32_t)(i + (size_t)l))) goto done;
        i += (size_t)l;
    }
    /* 1. leetspeak: tokens of letters, digits and leet symbols with a
     * letter and a digit/symbol inside are folded to letters; once two
     * tokens were, short numbers next to folded words go too ("70 b3 4") */
    {
        typedef struct { size_t s, e; int letters; bool folded; } tok;
        tok toks[256];
        size_t nt = 0, base = 0, folded = 0;
        for (size_t i = 0; i < c.n;) {
            int32_t cp = c.cp[i];
            if (!(is_letter(cp) || (cp >= '0' && cp <= '9') || is_leet_sym(cp))) { i++; continue; }
            size_t s = i;
            while (i < c.n && (is_letter(c.cp[i]) || (c.cp[i] >= '0' && c.cp[i] <= '9') || is_leet_sym(c.cp[i]))) i++;
            size_t e = i;
            while (e > s && is_leet_sym(c.cp[e - 1])) e--;      /* "wow!!", "+" at the end */
            while (s < e && (c.cp[s] == '!' || c.cp[s] == '+' || c.cp[s] == '|')) s++;
            if (e == s) continue;
            int letters = 0, other = 0;
            for (size_t k = s; k < e; k++) {
                if (is_letter(c.cp[k])) letters++;
                else other++;
            }
            bool fold = letters >= 1 && other >= 1;
            if (fold) {
                leet_fold(&c, s, e);
                folded++;
            }
            /* the last 256 tokens, in a ring: toks[(base + k) % 256] is the k-th */
            if (nt == 256) { base = (base + 1) & 255; nt--; }
            toks[(base + nt++) & 255] = (tok){s, e, letters, fold};
            /* numbers between folded words: decided when the next word is known */
            if (folded >= 2 && nt >= 2) {
                for (size_t k = nt - 1; k-- > 0;) {
                    tok *t = &toks[(base + k) & 255];
                    if (t->letters || t->folded || t->e - t->s > 3) break;
                    if (toks[(base + k + 1) & 255].folded || (k > 0 && toks[(base + k - 1) & 255].folded)) { leet_fold(&c, t->s, t->e); t->folded = true; }
                    else break;
                }
            }
        }
        if (folded) *changes |= GUARD_SK_LEET;
    }
    /* 2. spaced letters and hyphenation across line breaks */
    for (size_t i = 0; i < c.n;) {
        /* a run of single letters: letter gap letter gap ... */
        if (is_letter(c.cp[i]) && (i == 0 || !is_letter(c.cp[i - 1]))) {
            size_t pos[512], gaps[512];
            size_t np = 0, k = i;
            while (np < 512 && k < c.n && is_letter(c.cp[k]) && (k + 1 >= c.n || !is_letter(c.cp[k + 1]))) {
                pos[np] = k;
                size_t g = k + 1;
                while (g < c.n && g - k - 1 < 4 && is_gap_char(c.cp[g])) g++;
                gaps[np] = g - k - 1;
                np++;
                if (g >= c.n || g - k - 1 == 0 || g - k - 1 > 3 || !is_letter(c.cp[g])) break;
                k = g;
            }
            if (np >= 4) {
                size_t mingap = 99;
                for (size_t q = 0; q + 1 < np; q++) if (gaps[q] < mingap) mingap = gaps[q];
                for (size_t q = 0; q < np; q++) {
                    if (cv_push(&o, c.cp[pos[q]], c.a[pos[q]], c.b[pos[q]])) goto done;
                    if (q + 1 < np && gaps[q] > mingap) {
                        /* a wider gap is a word break; "S y s t e m - P r o m p t" keeps its dash */
                        int32_t sep = ' ';
                        for (size_t x = pos[q] + 1; x <= pos[q] + gaps[q]; x++) if (c.cp[x] == '-') sep = '-';
                        if (cv_push(&o, sep, c.a[pos[q] + 1], c.b[pos[q] + gaps[q]])) goto done;
                    }
                }
                *changes |= GUARD_SK_SPACED;
                i = pos[np - 1] + 1;
                /* the sentence's end spaced out too ("l \n ?"): it joins
                 * the word, so the sentence keeps its question mark */
                size_t g = i;
                while (g < c.n && g - i < 3 && (c.cp[g] == ' ' || c.cp[g] == '\t' || c.cp[g] == '\n' || c.cp[g] == '\r')) g++;
                if (g > i && g < c.n && (c.cp[g] == '?' || c.cp[g] == '!' || c.cp[g] == '.') &&
                    (g + 1 == c.n || c.cp[g + 1] == ' ' || c.cp[g + 1] == '\t' || c.cp[g + 1] == '\n' || c.cp[g + 1] == '\r')) {
                    if (cv_push(&o, c.cp[g], c.a[g], c.b[g])) goto done;
                    i = g + 1;
                }
                continue;
            }
        }
        /* "instruc-\n  tions" */
        if (c.cp[i] == '-' && i > 0 && is_letter(c.cp[i - 1])) {
            size_t g = i + 1;
            while (g < c.n && (c.cp[g] == ' ' || c.cp[g] == '\t' || c.cp[g] == '\r')) g++;
            if (g < c.n && c.cp[g] == '\n') {
                g++;
                while (g < c.n && (c.cp[g] == ' ' || c.cp[g] == '\t')) g++;
                if (g < c.n && is_letter(c.cp[g]) && utf8proc_islower(c.cp[g])) {
                    *changes |= GUARD_SK_HYPHEN;
                    i = g;
                    continue;
                }
            }
        }
        if (cv_push(&o, c.cp[i], c.a[i], c.b[i])) goto done;
        i++;
    }
    rc = cv_to_view(&o, u, v);
done:
    cv_free(&c);
    cv_free(&o);
    return rc;
}

/* ------------------------------------------------------------ encoded runs */

/* Decoded bytes count as text when they are valid UTF-8 without control
 * characters (tab, newline, CR allowed) and at least half are letters or
 * spaces: random bytes, hashes and keys fail this. */
static bool readable(const unsigned char *d, size_t n) {
    if (n < 6 || rag_guard_utf8_valid_prefix((const char *)d, n) != n) return false;
    size_t good = 0, spaces = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = d[i];
        if (ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') return false;
        if (ch == 0x7F) return false;
        if ((ch | 32) >= 'a' && (ch | 32) <= 'z') good++;
        else if (ch == ' ') { good++; spaces++; }
        else if (ch >= 0x80) good++;
    }
    return good * 2 >= n && (spaces > 0 || n >= 12);
}

static inline int b64v(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

static inline int hexv(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 32) >= 'a' && (c | 32) <= 'f') return (c | 32) - 'a' + 10;
    return -1;
}

static int add_decoded(guard_decoded *out, int *k, int max, size_t s, size_t e, unsigned char *d, size_t dn,
                       const char *kind) {
    if (*k >= max || !readable(d, dn)) { free(d); return 0; }
    d[dn] = 0;
    out[*k].start = s;
    out[*k].end = e;
    out[*k].text = (char *)d;
    out[*k].len = dn;
    out[*k].kind = kind;
    (*k)++;
    return 0;
}

int rag_guard_find_encoded(const char *str, size_t n, guard_decoded *out, int max) {
    const unsigned char *s = (const unsigned char *)str;
    int k = 0;
    for (size_t i = 0; i < n && k < max;) {
        /* %-encoded: a run without spaces holding three or more %XX */
        if (s[i] == '%' && i + 2 < n && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
            size_t a = i;
            while (a > 0 && s[a - 1] > ' ' && s[a - 1] < 0x7F && s[a - 1] != '"' && s[a - 1] != '\'') a--;
            size_t e = i, pct = 0;
            while (e < n && s[e] > ' ' && s[e] < 0x7F && s[e] != '"' && s[e] != '\'') {
                if (s[e] == '%' && e + 2 < n && hexv(s[e + 1]) >= 0 && hexv(s[e + 2]) >= 0) { pct++; e += 3; }
                else e++;
            }
            if (pct >= 3) {
                unsigned char *d = malloc(e - a + 1);
                if (!d) return -1;
                size_t dn = 0;
                for (size_t j = a; j < e;) {
                    if (s[j] == '%' && j + 2 < e && hexv(s[j + 1]) >= 0 && hexv(s[j + 2]) >= 0) {
                        d[dn++] = (unsigned char)(hexv(s[j + 1]) * 16 + hexv(s[j + 2]));
                        j += 3;
                    } else {
                        d[dn++] = s[j] == '+' ? ' ' : s[j];
                        j++;
                    }
                }
                add_decoded(out, &k, max, a, e, d, dn, "url");
            }
            i = e > i ? e : i + 1;
            continue;
        }
        /* hex written with separators: "69 67 6e", "\x69\x67", "0x69,0x67" */
        if ((hexv(s[i]) >= 0 || (s[i] == '\\' && i + 1 < n && s[i + 1] == 'x')) && (i == 0 || !(b64v(s[i - 1]) >= 0))) {
            size_t j = i, pairs = 0;
            unsigned char *d = NULL;
            size_t e = i;
            for (;;) {
                size_t p = j;
                if (p + 1 < n && s[p] == '\\' && s[p + 1] == 'x') p += 2;
                else if (p + 1 < n && s[p] == '0' && s[p + 1] == 'x' && p + 3 < n && hexv(s[p + 2]) >= 0 && hexv(s[p + 3]) >= 0) p += 2;
                if (p + 1 >= n || hexv(s[p]) < 0 || hexv(s[p + 1]) < 0) break;
                if (p + 2 < n && hexv(s[p + 2]) >= 0 && pairs == 0 && s[j] != '\\' && s[j] != '0') break; /* contiguous: below */
                if (!d && !(d = malloc(n - i + 1))) return -1;
                d[pairs++] = (unsigned char)(hexv(s[p]) * 16 + hexv(s[p + 1]));
                e = p + 2;
                j = e;
                if (j < n && (s[j] == ' ' || s[j] == ',' || s[j] == ':')) j++;
                if (j < n && s[j] == ' ') j++;
            }
            if (pairs >= 8) { add_decoded(out, &k, max, i, e, d, pairs, "hex"); i = e; continue; }
            free(d);
        }
        /* base64 or contiguous hex: a run of the base64 alphabet */
        if (b64v(s[i]) >= 0 && (i == 0 || b64v(s[i - 1]) < 0)) {
            size_t e = i;
            bool all_hex = true;
            while (e < n && b64v(s[e]) >= 0) { if (hexv(s[e]) < 0) all_hex = false; e++; }
            size_t run = e - i, end = e;
            while (end < n && s[end] == '=' && end - e < 2) end++;
            if (all_hex && run >= 16 && run % 2 == 0) {
                unsigned char *d = malloc(run / 2 + 1);
                if (!d) return -1;
                for (size_t j = 0; j < run / 2; j++) d[j] = (unsigned char)(hexv(s[i + 2 * j]) * 16 + hexv(s[i + 2 * j + 1]));
                add_decoded(out, &k, max, i, e, d, run / 2, "hex");
            } else if (run >= 16) {
                unsigned char *d = malloc(run * 3 / 4 + 4);
                if (!d) return -1;
                size_t dn = 0;
                uint32_t acc = 0;
                int bits = 0;
                for (size_t j = i; j < e; j++) {
                    acc = (acc << 6) | (uint32_t)b64v(s[j]);
                    bits += 6;
                    if (bits >= 8) { bits -= 8; d[dn++] = (unsigned char)(acc >> bits); acc &= (1u << bits) - 1; }
                }
                add_decoded(out, &k, max, i, end, d, dn, "base64");
            }
            i = end > i ? end : i + 1;
            continue;
        }
        i++;
    }
    return k;
}

void rag_guard_decoded_release(guard_decoded *d, int n) {
    for (int i = 0; i < n; i++) free(d[i].text);
}

/* ------------------------------------------------------------ ROT13 */

/* Common words of English, German and French, and words of prompt
 * injections: a text whose words are these after ROT13 more often than
 * before is ROT13. */
static const char *const common_words[] = {
    "the", "and", "you", "your", "to", "of", "is", "are", "in", "it", "that", "this", "for", "with", "not", "be",
    "on", "all", "now", "me", "my", "from", "what", "as", "an", "at", "by", "or", "do", "can", "will", "say",
    "tell", "write", "no", "any", "we", "he", "she", "they", "have", "has", "was", "were", "ignore", "forget",
    "previous", "instructions", "prompt", "system", "rules", "above", "reveal", "answer", "response", "reply",
    "der", "die", "das", "und", "ist", "nicht", "du", "ich", "sie", "es", "ein", "eine", "zu", "mit", "von", "den",
    "dem", "alle", "auf", "bitte", "vergiss", "anweisungen", "le", "la", "les", "et", "est", "vous", "tu", "de",
    "des", "un", "une", "pas", "que", "toutes", "disregard", "everything", "alles", "vorherige", "mir", "zeig",
    "dein", "deinen", "mode", "anything", "without", "restrictions", "filters", "ohne", "jetzt", "ab", "nun",
    "tout", "qui", "ce", "dit", "sans", "oubliez", "ignorez", "antworte", "ignoriere", "ignorieren", "regeln",
    "todas", "todo", "las", "el", "lo", "y", "instrucciones", "tutto", "tutte", "che", "il", "di", "istruzioni",
    "je", "een", "het", "alles", "instructies", "sve", "instrukcije", "upute",
};

/* An open-addressing set of the FNV-1a hashes of common_words, built once. */
#define COMMON_SLOTS 512
static uint32_t common_set[COMMON_SLOTS];
static pthread_once_t common_once = PTHREAD_ONCE_INIT;

static uint32_t fnv(const char *w, size_t l) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < l; i++) h = (h ^ (unsigned char)w[i]) * 16777619u;
    return h | 1;   /* 0 marks an empty slot */
}

static void common_build(void) {
    for (size_t k = 0; k < sizeof common_words / sizeof common_words[0]; k++) {
        uint32_t h = fnv(common_words[k], strlen(common_words[k]));
        size_t i = h % COMMON_SLOTS;
        while (common_set[i] && common_set[i] != h) i = (i + 1) % COMMON_SLOTS;
        common_set[i] = h;
    }
}

static bool is_common_hash(uint32_t h) {
    for (size_t i = h % COMMON_SLOTS; common_set[i]; i = (i + 1) % COMMON_SLOTS)
        if (common_set[i] == h) return true;
    return false;
}

bool rag_guard_rot13_suspect(const char *s, size_t n) {
    int plain = 0, rot = 0;
    pthread_once(&common_once, common_build);
    for (size_t i = 0; i < n;) {
        if (!(s[i] >= 'a' && s[i] <= 'z')) { i++; continue; }
        size_t e = i;
        while (e < n && s[e] >= 'a' && s[e] <= 'z') e++;
        size_t l = e - i;
        if (l >= 2 && l <= 12 && (e == n || (unsigned char)s[e] < 0x80)) {
            /* the word's hash and its ROT13's, in one pass (fnv() of each) */
            uint32_t hp = 2166136261u, hr = 2166136261u;
            for (size_t k = i; k < e; k++) {
                unsigned char c = (unsigned char)s[k];
                hp = (hp ^ c) * 16777619u;
                hr = (hr ^ (unsigned char)(c <= 'm' ? c + 13 : c - 13)) * 16777619u;
            }
            if (is_common_hash(hp | 1)) plain++;
            if (is_common_hash(hr | 1)) rot++;
        }
        i = e;
    }
    return rot >= 1 && rot > plain;
}

void rag_guard_rot13(char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'a' && c <= 'z') s[i] = (char)('a' + (c - 'a' + 13) % 26);
        else if (c >= 'A' && c <= 'Z') s[i] = (char)('A' + (c - 'A' + 13) % 26);
    }
}
