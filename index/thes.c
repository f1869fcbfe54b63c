/* thes.c — German synonym sets from a thesaurus file in OpenThesaurus's text
 * format (Debian package openthesaurus-de-text), keyed by index terms.
 *
 * The file: one synonym set per line, entries separated by ';', '#' starts a
 * comment line; an entry may carry notes in parentheses ("abdüsen (ugs.)",
 * "(von etwas) fortfahren"). Notes are dropped; entries of more than one
 * word, with "..." or with characters other than letters and '-' are
 * skipped (a query matches single terms, and a phrase synonym would need a
 * phrase query). Every kept entry is analysed as a German word the way the
 * index analyses text (stemmed, not split into compound parts), so an entry
 * meets every inflected form the index folds onto the same stem. The sets
 * are never stored in the index: the file is read at search time, and the
 * index's text is analysed exactly as without it. */
#define _GNU_SOURCE
#include "idx_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TH_MAX_LINE 65536
#define TH_MAX_ENTRY 64         /* bytes of one entry's word */

typedef struct {
    uint32_t off;               /* into names */
    uint32_t first_set, n_sets; /* into term_sets */
} th_term;

struct idx_thes {
    char *names;                /* NUL-terminated terms */
    size_t names_len, names_cap;
    th_term *terms;
    size_t nterm, capterm;
    uint32_t *hash;             /* open addressing: term index + 1, 0 = empty */
    size_t caphash;
    uint32_t *set_start;        /* set i: members set_mem[set_start[i] .. set_start[i+1]) */
    uint32_t *set_mem;          /* term indexes */
    size_t nset, nmem;
    uint32_t *term_sets;        /* per term, its sets (contiguous after build) */
    char path[512];
};

static uint64_t th_hash(const char *t, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)t[i]) * 1099511628211ULL;
    return h;
}

static long th_find(const idx_thes *th, const char *t, size_t n) {
    if (!th->caphash) return -1;
    for (size_t i = th_hash(t, n) & (th->caphash - 1);; i = (i + 1) & (th->caphash - 1)) {
        uint32_t v = th->hash[i];
        if (!v) return -1;
        const char *name = th->names + th->terms[v - 1].off;
        if (strlen(name) == n && memcmp(name, t, n) == 0) return (long)v - 1;
    }
}

static int th_grow_hash(idx_thes *th) {
    size_t nc = th->caphash ? th->caphash * 2 : 4096;
    uint32_t *h = calloc(nc, sizeof *h);
    if (!h) return -1;
    for (size_t k = 0; k < th->nterm; k++) {
        const char *name = th->names + th->terms[k].off;
        size_t i = th_hash(name, strlen(name)) & (nc - 1);
        while (h[i]) i = (i + 1) & (nc - 1);
        h[i] = (uint32_t)k + 1;
    }
    free(th->hash);
    th->hash = h;
    th->caphash = nc;
    return 0;
}

/* The index of term t, added when new; -1 when out of memory. */
static long th_intern(idx_thes *th, const char *t, size_t n) {
    long k = th_find(th, t, n);
    if (k >= 0) return k;
    if (2 * (th->nterm + 1) > th->caphash && th_grow_hash(th)) return -1;
    if (th->nterm == th->capterm) {
        size_t nc = th->capterm ? th->capterm * 2 : 4096;
        th_term *p = realloc(th->terms, nc * sizeof *p);
        if (!p) return -1;
        th->terms = p;
        th->capterm = nc;
    }
    if (th->names_len + n + 1 > th->names_cap) {
        size_t nc = th->names_cap ? th->names_cap * 2 : 65536;
        while (nc < th->names_len + n + 1) nc *= 2;
        char *p = realloc(th->names, nc);
        if (!p) return -1;
        th->names = p;
        th->names_cap = nc;
    }
    memcpy(th->names + th->names_len, t, n);
    th->names[th->names_len + n] = 0;
    th->terms[th->nterm] = (th_term){.off = (uint32_t)th->names_len};
    th->names_len += n + 1;
    size_t i = th_hash(t, n) & (th->caphash - 1);
    while (th->hash[i]) i = (i + 1) & (th->caphash - 1);
    th->hash[i] = (uint32_t)th->nterm + 1;
    return (long)th->nterm++;
}

void idx_thes_free(idx_thes *th) {
    if (!th) return;
    free(th->names);
    free(th->terms);
    free(th->hash);
    free(th->set_start);
    free(th->set_mem);
    free(th->term_sets);
    free(th);
}

/* The analysed form of one entry: its single whole-word term. */
typedef struct {
    char term[4 * TH_MAX_ENTRY];
    size_t n;
    int whole;
} th_one;

static int th_one_cb(void *user, const char *t, size_t n, int start, int end, bool colocated) {
    (void)start; (void)end;
    th_one *o = user;
    if (colocated) return 0;
    if (++o->whole > 1 || n >= sizeof o->term) return 0;
    memcpy(o->term, t, n);
    o->n = n;
    return 0;
}

/* Cleans one entry in place: notes in parentheses dropped, blanks trimmed.
 * Returns its length, or 0 when it is not a single word. */
static size_t th_clean(char *e) {
    char *w = e;
    int depth = 0;
    for (char *r = e; *r; r++) {
        if (*r == '(') depth++;
        else if (*r == ')') { if (depth) depth--; }
        else if (!depth) *w++ = *r;
    }
    *w = 0;
    char *b = e;
    while (*b == ' ' || *b == '\t') b++;
    size_t n = strlen(b);
    while (n && (b[n - 1] == ' ' || b[n - 1] == '\t' || b[n - 1] == '\r' || b[n - 1] == '\n')) n--;
    if (b != e) memmove(e, b, n);
    e[n] = 0;
    if (!n || n > TH_MAX_ENTRY) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)e[i];
        if (c == ' ' || c == '.' || c == '/' || c == ',' || c == '\'' || c == '"' || isdigit(c)) return 0;
    }
    if (e[0] == '-' || e[n - 1] == '-') return 0;
    return n;
}

int idx_thes_load(idx_an *an, const char *path, idx_thes **out, char *err, size_t errsz) {
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        return IDX_ERR_IO;
    }
    idx_thes *th = calloc(1, sizeof *th);
    char *line = malloc(TH_MAX_LINE);
    size_t capset = 0, capmem = 0;
    int rc = th && line ? IDX_OK : IDX_ERR_NOMEM;
    if (th) snprintf(th->path, sizeof th->path, "%s", path);
    uint32_t mem[256];
    while (!rc && fgets(line, TH_MAX_LINE, f)) {
        if (line[0] == '#') continue;
        size_t nm = 0;
        for (char *save = NULL, *e = strtok_r(line, ";", &save); e && nm < 256; e = strtok_r(NULL, ";", &save)) {
            if (!th_clean(e)) continue;
            th_one o = {0};
            if (idx_an_run(an, e, strlen(e), IDX_LANG_DE, IDX_AN_NO_SPLIT, th_one_cb, &o, NULL)) { rc = IDX_ERR_NOMEM; break; }
            if (o.whole != 1 || !o.n) continue;
            long k = th_intern(th, o.term, o.n);
            if (k < 0) { rc = IDX_ERR_NOMEM; break; }
            bool dup = false;
            for (size_t i = 0; i < nm && !dup; i++) dup = mem[i] == (uint32_t)k;
            if (!dup) mem[nm++] = (uint32_t)k;
        }
        if (rc || nm < 2) continue;
        if (th->nset + 2 > capset) {
            size_t nc = capset ? capset * 2 : 8192;
            uint32_t *p = realloc(th->set_start, nc * sizeof *p);
            if (!p) { rc = IDX_ERR_NOMEM; break; }
            th->set_start = p;
            capset = nc;
        }
        if (th->nmem + nm > capmem) {
            size_t nc = capmem ? capmem * 2 : 65536;
            while (nc < th->nmem + nm) nc *= 2;
            uint32_t *p = realloc(th->set_mem, nc * sizeof *p);
            if (!p) { rc = IDX_ERR_NOMEM; break; }
            th->set_mem = p;
            capmem = nc;
        }
        th->set_start[th->nset++] = (uint32_t)th->nmem;
        memcpy(th->set_mem + th->nmem, mem, nm * sizeof *mem);
        th->nmem += nm;
    }
    if (!rc && ferror(f)) {
        snprintf(err, errsz, "%s: read error", path);
        rc = IDX_ERR_IO;
    }
    fclose(f);
    free(line);
    if (!rc && !th->nset) {
        snprintf(err, errsz, "%s: no synonym sets (not a thesaurus in OpenThesaurus text format?)", path);
        rc = IDX_ERR_ARG;
    }
    if (!rc) {
        if (th->nset + 1 > capset) {
            uint32_t *p = realloc(th->set_start, (th->nset + 1) * sizeof *p);
            if (!p) rc = IDX_ERR_NOMEM;
            else th->set_start = p;
        }
        if (!rc) th->set_start[th->nset] = (uint32_t)th->nmem;
    }
    /* per term, the sets it belongs to: counting sort by term */
    if (!rc && !(th->term_sets = malloc((th->nmem ? th->nmem : 1) * sizeof *th->term_sets))) rc = IDX_ERR_NOMEM;
    if (!rc) {
        for (size_t m = 0; m < th->nmem; m++) th->terms[th->set_mem[m]].n_sets++;
        uint32_t acc = 0;
        for (size_t k = 0; k < th->nterm; k++) {
            th->terms[k].first_set = acc;
            acc += th->terms[k].n_sets;
            th->terms[k].n_sets = 0;
        }
        for (size_t set = 0; set < th->nset; set++)
            for (uint32_t m = th->set_start[set]; m < th->set_start[set + 1]; m++) {
                th_term *t = &th->terms[th->set_mem[m]];
                th->term_sets[t->first_set + t->n_sets++] = (uint32_t)set;
            }
    }
    if (rc) {
        if (rc == IDX_ERR_NOMEM) snprintf(err, errsz, "%s: out of memory", path);
        idx_thes_free(th);
        return rc;
    }
    *out = th;
    return IDX_OK;
}

size_t idx_thes_sets(const idx_thes *th) { return th ? th->nset : 0; }
size_t idx_thes_terms(const idx_thes *th) { return th ? th->nterm : 0; }
const char *idx_thes_path(const idx_thes *th) { return th ? th->path : ""; }

int idx_thes_each(const idx_thes *th, const char *term, size_t n, int (*cb)(void *, const char *), void *user) {
    long k = th ? th_find(th, term, n) : -1;
    if (k < 0) return 0;
    const th_term *t = &th->terms[k];
    for (uint32_t i = 0; i < t->n_sets; i++) {
        uint32_t set = th->term_sets[t->first_set + i];
        for (uint32_t m = th->set_start[set]; m < th->set_start[set + 1]; m++) {
            if (th->set_mem[m] == (uint32_t)k) continue;
            int r = cb(user, th->names + th->terms[th->set_mem[m]].off);
            if (r) return r;
        }
    }
    return 0;
}
