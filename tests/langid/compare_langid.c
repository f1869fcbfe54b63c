/* compare_langid.c — which language identifier is right more often on short
 * chunks: mrag's stop-word profiles (idx_lang_detect, with the index's
 * fallback for "unsure") or libexttextcat's n-gram fingerprints. Windows of
 * N words are cut from English text (the XQuAD paragraphs in ../shared, when
 * present) and German text (the German documents of data/sample); each
 * window is classified by both. `make bench-langid` builds and runs it. */
#include "index/index.h"

#include <libexttextcat/textcat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)l + 1);
    if (b && fread(b, 1, (size_t)l, f) != (size_t)l) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[l] = 0; *n = (size_t)l; }
    return b;
}

/* Plain text of an XQuAD/SQuAD file: the "context" strings, unescaped
 * crudely (enough for word windows). */
static char *contexts(const char *json, size_t n, size_t *out_n) {
    char *o = malloc(n + 1);
    size_t k = 0;
    const char *p = json;
    while ((p = strstr(p, "\"context\": \"")) != NULL) {
        p += 12;
        while (*p && !(*p == '"' && p[-1] != '\\')) {
            if (*p == '\\' && p[1]) { p += 2; o[k++] = ' '; continue; }
            o[k++] = *p++;
        }
        o[k++] = '\n';
    }
    o[k] = 0;
    *out_n = k;
    return o;
}

typedef struct { int total, ours, ours_unsure, tc, tc_unknown; } score;

static void run(void *tc, const char *text, const char *want_code, const char *want_tc, int words, int max_windows, score *sc) {
    const char *p = text;
    int windows = 0;
    while (*p && windows < max_windows) {
        const char *s = p;
        int w = 0;
        while (*p && w < words) {
            while (*p && (*p == ' ' || *p == '\n' || *p == '\t')) p++;
            if (!*p) break;
            while (*p && *p != ' ' && *p != '\n' && *p != '\t') p++;
            w++;
        }
        if (w < words) break;
        size_t len = (size_t)(p - s);
        windows++;
        sc->total++;
        int l = idx_lang_detect(s, len, NULL);
        if (l < 0) sc->ours_unsure++;
        if (l >= 0 && strcmp(idx_lang_code(l), want_code) == 0) sc->ours++;
        const char *r = textcat_Classify(tc, s, len);
        if (!r || strncmp(r, "[", 1) != 0) sc->tc_unknown++;
        else {
            /* "[de][nds]...": right when the first guess is the language */
            char first[32] = "";
            sscanf(r, "[%31[^]-]", first);      /* "[de--utf8][nds--utf8]" */
            if (strcmp(first, want_tc) == 0) sc->tc++;
        }
    }
}

int main(int argc, char **argv) {
    const char *xquad = argc > 1 ? argv[1] : "../shared/data/xquad.en.json";
    void *tc = special_textcat_Init("/usr/share/libexttextcat/fpdb.conf", "/usr/share/libexttextcat/");
    if (!tc) { fprintf(stderr, "libexttextcat: cannot load /usr/share/libexttextcat/fpdb.conf\n"); return 1; }
    size_t n = 0, en_n = 0;
    char *json = slurp(xquad, &n);
    char *en = json ? contexts(json, n, &en_n) : NULL;
    const char *de_files[] = {"data/sample/handbook/reisekostenrichtlinie.md", "data/sample/handbook/homeoffice-richtlinie.md",
                              "data/sample/it/passwortrichtlinie.txt", "data/sample/recipes/linsensuppe.txt",
                              "data/sample/support/kundensupport-leitfaden.md", "data/sample/legal/datenschutz.html"};
    size_t de_cap = 1 << 20, de_n = 0;
    char *de = calloc(1, de_cap);
    for (size_t i = 0; i < sizeof de_files / sizeof *de_files; i++) {
        size_t l = 0;
        char *t = slurp(de_files[i], &l);
        if (t && de_n + l + 2 < de_cap) { memcpy(de + de_n, t, l); de_n += l; de[de_n++] = '\n'; }
        free(t);
    }
    printf("window  language  windows  stop-words right (unsure)  exttextcat right (unknown)\n");
    int sizes[] = {3, 5, 10, 20, 40};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        for (int lang = 0; lang < 2; lang++) {
            if (lang == 0 && !en) continue;
            score sc = {0};
            run(tc, lang ? de : en, lang ? "de" : "en", lang ? "de" : "en", sizes[k], 2000, &sc);
            printf("%6d  %8s  %7d  %10.3f (%.3f)  %17.3f (%.3f)\n", sizes[k], lang ? "German" : "English", sc.total,
                   sc.total ? (double)sc.ours / sc.total : 0, sc.total ? (double)sc.ours_unsure / sc.total : 0,
                   sc.total ? (double)sc.tc / sc.total : 0, sc.total ? (double)sc.tc_unknown / sc.total : 0);
        }
    }
    textcat_Done(tc);
    free(json);
    free(en);
    free(de);
    return 0;
}
