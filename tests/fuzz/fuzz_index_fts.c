/* fuzz_index_fts.c — libFuzzer target for index/'s translation of user text
 * into an FTS5 query: the result must be only quoted words joined by OR
 * (with ß/ss groups), and running it against a real index must never fail. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index/index.h"

static idx_store *store;
static char dir[64];

static void cleanup(void) {
    idx_close(store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) { /* best effort */ }
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/mrag-fuzz-fts.XXXXXX");
    if (!mkdtemp(dir)) __builtin_trap();
    if (idx_open(dir, NULL, &store) != IDX_OK) __builtin_trap();
    const char *texts[] = {"Die Straße und die Äpfel", "near and or not quick brown fox", "café run strasse"};
    for (int i = 0; i < 3; i++) {
        char uri[16];
        snprintf(uri, sizeof uri, "d%d", i);
        idx_chunk c = {.ordinal = 0, .text = texts[i], .text_len = strlen(texts[i])};
        idx_doc d = {.uri = uri};
        if (idx_doc_put(store, &d, &c, 1, NULL, 0, NULL) != IDX_OK) __builtin_trap();
    }
    atexit(cleanup);
}

/* A quoted word: '"', at least one byte without '"', '"'. */
static const char *quoted(const char *p) {
    if (*p != '"') return NULL;
    const char *e = strchr(p + 1, '"');
    return e && e > p + 1 ? e + 1 : NULL;
}

/* term := quoted | "(" quoted " OR " quoted ")" ; query := term (" OR " term)* */
static bool well_formed(const char *q) {
    if (!*q) return true;
    for (;;) {
        if (*q == '(') {
            q = quoted(q + 1);
            if (!q || strncmp(q, " OR ", 4) != 0) return false;
            q = quoted(q + 4);
            if (!q || *q != ')') return false;
            q++;
        } else if (!(q = quoted(q))) {
            return false;
        }
        if (!*q) return true;
        if (strncmp(q, " OR ", 4) != 0) return false;
        q += 4;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!store) setup();
    char *q = idx_fts_query((const char *)data, size);
    if (!q || !well_formed(q)) __builtin_trap();
    free(q);
    idx_hit hits[8];
    int n = -1;
    if (idx_search_bm25(store, (const char *)data, size, 8, NULL, hits, &n) != IDX_OK || n < 0 || n > 3) __builtin_trap();
    return 0;
}
