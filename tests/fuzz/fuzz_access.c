/* fuzz_access.c — libFuzzer target for the access-rules parser (rules files
 * are user input): parse any bytes; when they parse, ask for paths and wiki
 * pages built from the same bytes, and check the answers are well-formed
 * group lists (no empty names, no blanks, no control bytes). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/index.h"
#include "rag/rag.h"

static void check_groups(const char *g) {
    if (!g) __builtin_trap();
    size_t n = strlen(g);
    if (n && (g[0] == ',' || g[n - 1] == ',' || strstr(g, ",,"))) __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)g[i] <= ' ' || g[i] == 0x7f) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rag_access *a = NULL;
    char err[256];
    err[0] = 0;
    int rc = rag_access_parse("fuzz.rules", (const char *)data, size, &a, err, sizeof err);
    if (rc != RAG_OK) {
        if (a || !err[0]) __builtin_trap();     /* failures leave a message and nothing else */
        return 0;
    }
    /* queries: the input split into NUL-free pieces, plus fixed paths */
    char *copy = malloc(size + 1);
    if (!copy) { rag_access_free(a); return 0; }
    memcpy(copy, data, size);
    copy[size] = 0;
    static const char *const fixed[] = {"", "a", "hr/x.md", "a/b/c/d/e/f.txt", "public/", "ü/ß.md", "**"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) check_groups(rag_access_for_path(a, fixed[i]));
    const char *cats[3] = {NULL, NULL, NULL};
    size_t nc = 0;
    for (char *p = copy; p < copy + size;) {
        size_t l = strlen(p);
        check_groups(rag_access_for_path(a, p));
        check_groups(rag_access_for_page(a, (int)(l % 7) - 1, p, cats, nc));
        if (nc < 3) cats[nc++] = p;
        p += l + 1;
    }
    check_groups(rag_access_for_page(a, 100, "Finance/x", cats, nc));
    /* the caller-groups parser on the same bytes */
    idx_filter f;
    if (rag_groups_parse(copy, &f) == RAG_OK) {
        for (size_t i = 0; i < f.n_groups; i++) check_groups(f.groups[i]);
        rag_groups_free(&f);
    }
    free(copy);
    rag_access_free(a);
    return 0;
}
