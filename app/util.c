/* util.c — small helpers shared by the mrag commands: the model recorded by
 * the last ingest, and reading a small text file (preambles, key files). */
#include "app/app.h"

#include "index/index.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Contract: see app.h. */
char *app_recorded_model(idx_store *s) {
    char *val = NULL;
    if (idx_meta_get(s, "rag.model_stat", &val) != IDX_OK || !val) return NULL;
    char *tab = strchr(val, '\t');
    struct stat st;
    if (tab) *tab = 0;
    if (!tab || stat(val, &st) != 0) { free(val); return NULL; }
    return val;
}

/* Contract: see app.h. */
char *app_read_file(const char *path, size_t max, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0, r;
    char tmp[4096];
    while ((r = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (n + r > max) { free(buf); fclose(f); errno = EFBIG; return NULL; }
        if (n + r + 1 > cap) {
            cap = (n + r + 1) * 2;
            if (cap > max + 1) cap = max + 1;
            char *q = realloc(buf, cap);
            if (!q) { free(buf); fclose(f); errno = ENOMEM; return NULL; }
            buf = q;
        }
        memcpy(buf + n, tmp, r);
        n += r;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); errno = EIO; return NULL; }
    if (!buf && !(buf = malloc(1))) return NULL;
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

/* Contract: see app.h. */
char *app_join_args(int n, char **args) {
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(args[i]) + 1;
    char *s = malloc(len), *p = s;
    if (!s) return NULL;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(args[i]);
        if (i) *p++ = ' ';
        memcpy(p, args[i], l);
        p += l;
    }
    *p = 0;
    return s;
}
