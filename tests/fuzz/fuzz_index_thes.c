/* fuzz_index_thes.c — libFuzzer target for index/thes.c: the bytes are a
 * thesaurus file in OpenThesaurus text format (sets separated by lines,
 * entries by ';', notes in parentheses, '#' comments). Loading it never
 * fails but for "no sets", and German questions searched with it (owner
 * and public caller) never fail and never return more chunks than there
 * are. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index/index.h"

static idx_store *store;
static char dir[64], path[128];

static void cleanup(void) {
    idx_close(store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) { /* best effort */ }
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/mrag-fuzz-thes.XXXXXX");
    if (!mkdtemp(dir)) __builtin_trap();
    snprintf(path, sizeof path, "%s/thes.txt", dir);
    if (idx_open(dir, NULL, &store) != IDX_OK) __builtin_trap();
    const char *texts[] = {"Die Arbeitsfläche zeigt Symbole für Dateien und Programme.",
                           "Der Wagen steht in der Garage neben dem Haus.",
                           "Vor der Hochrüstung sind die Hinweise zu lesen."};
    for (int i = 0; i < 3; i++) {
        char uri[16];
        snprintf(uri, sizeof uri, "d%d", i);
        idx_chunk c = {.ordinal = 0, .text = texts[i], .text_len = strlen(texts[i])};
        idx_doc d = {.uri = uri, .groups = i == 2 ? "hr" : NULL};
        if (idx_doc_put(store, &d, &c, 1, NULL, 0, NULL) != IDX_OK) __builtin_trap();
    }
    idx_fts_params fp = {.force = true, .compounds = "off"};
    if (idx_fts_retune(store, &fp, NULL) != IDX_OK) __builtin_trap();
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!store) setup();
    FILE *f = fopen(path, "wb");
    if (!f) __builtin_trap();
    if (size && fwrite(data, 1, size, f) != size) __builtin_trap();
    fclose(f);
    if (idx_set_thesaurus(store, path) != IDX_OK) __builtin_trap();
    idx_thesaurus_status ts;
    if (idx_thesaurus_info(store, &ts) != IDX_OK) __builtin_trap();
    if (!ts.sets && !ts.note[0]) __builtin_trap();     /* none: it says why */
    const char *qs[] = {"Wo parkt das Auto?", "Was liegt auf dem Desktop?", "Was ist vor dem Upgrade zu beachten?"};
    const char *pub[] = {"public"};
    idx_filter pf = {pub, 1};
    for (int i = 0; i < 3; i++) {
        idx_hit hits[8];
        int n = -1;
        if (idx_search_bm25(store, qs[i], strlen(qs[i]), 8, NULL, hits, &n) != IDX_OK || n < 0 || n > 3) __builtin_trap();
        if (idx_search_bm25(store, qs[i], strlen(qs[i]), 8, &pf, hits, &n) != IDX_OK || n < 0 || n > 2) __builtin_trap();
    }
    return 0;
}
