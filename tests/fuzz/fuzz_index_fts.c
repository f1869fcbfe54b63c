/* fuzz_index_fts.c — libFuzzer target for index/'s text analysis: user text
 * turned into an FTS5 query (only quoted, already-analysed terms joined by
 * OR; running it must never fail, with or without a group filter), the
 * same bytes analysed in every language (terms non-empty, spans inside the
 * text), and indexed as a restricted document then deleted (the FTS5 index
 * and the access-class statistics stay consistent: idx_check). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index/index.h"

static idx_store *store;
static idx_analyzer *standalone;
static char dir[64];
static unsigned long runs;

static void cleanup(void) {
    idx_analyzer_free(standalone);
    idx_close(store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) { /* best effort */ }
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/mrag-fuzz-fts.XXXXXX");
    if (!mkdtemp(dir)) __builtin_trap();
    if (idx_open(dir, NULL, &store) != IDX_OK) __builtin_trap();
    /* the fourth text puts verbs into the corpus word list twice, so verb-
     * stem parts and participles (index/analyze.c) are reached */
    const char *texts[] = {"Die Straße und die Äpfel im Urlaub", "near and or not quick brown fox",
                           "café run strasse Urlaubsanspruch, die angezeigten und geänderten Einhängeoptionen",
                           "Die und der: anzeigen ändern einhängen Optionen verpflegen Zweifel Fall, und die anzeigen "
                           "ändern einhängen Optionen verpflegen Zweifel Fall"};
    for (int i = 0; i < 4; i++) {
        char uri[16];
        snprintf(uri, sizeof uri, "d%d", i);
        idx_chunk c = {.ordinal = 0, .text = texts[i], .text_len = strlen(texts[i])};
        idx_doc d = {.uri = uri};
        if (idx_doc_put(store, &d, &c, 1, NULL, 0, NULL) != IDX_OK) __builtin_trap();
    }
    idx_fts_params fp = {.force = true, .compounds = "corpus"};
    if (idx_fts_retune(store, &fp, NULL) != IDX_OK) __builtin_trap();
    if (idx_analyzer_new(NULL, &standalone) != IDX_OK) __builtin_trap();
    atexit(cleanup);
}

/* term := '"' 0x1f <bytes without '"', ' ', '(', ')', '*'> '"' ; query := term (" OR " term)* */
static bool well_formed(const char *q) {
    if (!*q) return true;
    for (;;) {
        if (q[0] != '"' || q[1] != 0x1f) return false;
        q += 2;
        const char *s = q;
        while (*q && *q != '"' && *q != ' ' && *q != '(' && *q != ')' && *q != '*') q++;
        if (q == s || *q != '"') return false;
        q++;
        if (!*q) return true;
        if (strncmp(q, " OR ", 4) != 0) return false;
        q += 4;
    }
}

typedef struct { size_t len; } span_ctx;

static int term_cb(void *user, const char *t, size_t n, int start, int end, bool colocated) {
    (void)colocated;
    span_ctx *c = user;
    if (!t || n == 0 || start < 0 || end < start || (size_t)end > c->len) __builtin_trap();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!store) setup();
    const char *text = (const char *)data;
    char *q = idx_fts_query(store, text, size);
    if (!q || !well_formed(q)) __builtin_trap();
    free(q);
    idx_hit hits[8];
    int n = -1;
    if (idx_search_bm25(store, text, size, 8, NULL, hits, &n) != IDX_OK || n < 0 || n > 5) __builtin_trap();
    const char *pub[] = {"public"};
    idx_filter f = {pub, 1};
    if (idx_search_bm25(store, text, size, 8, &f, hits, &n) != IDX_OK || n < 0 || n > 4) __builtin_trap();
    span_ctx sc = {size};
    for (int l = -1; l < IDX_LANG_COUNT; l++)
        if (idx_analyze(standalone, text, size, l, term_cb, &sc) != IDX_OK) __builtin_trap();
    idx_chunk c = {.ordinal = 0, .text = text, .text_len = size, .heading = "Geheim > Gehälter"};
    idx_doc d = {.uri = "hr/fz", .groups = "hr"};
    if (idx_doc_put(store, &d, &c, 1, NULL, 0, NULL) != IDX_OK) __builtin_trap();
    if (idx_doc_delete(store, "hr/fz") != IDX_OK) __builtin_trap();
    if (++runs % 256 == 0 && idx_check(store) != IDX_OK) __builtin_trap();
    return 0;
}
