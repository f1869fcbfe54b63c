/* index_set.c — several indexes opened together for `mrag ask`, `chat`
 * and `search` (`--index A --index B`): names, read-only handles, and the
 * check that one model embedded them all. */
#include "app/app.h"

#include "index/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void app_index_set_close(app_index_set *x) {
    if (!x) return;
    for (size_t i = 0; i < x->n; i++) {
        idx_close(x->stores[i]);
        free(x->names[i]);
    }
    memset(x, 0, sizeof *x);
}

/* Contract: see app.h. */
int app_index_set_open(app_index_set *x, const char *const *flags, size_t n, const char *who) {
    memset(x, 0, sizeof *x);
    if (n > APP_MAX_INDEXES) { app_error("%s: at most %d --index", who, APP_MAX_INDEXES); return -1; }
    size_t want = n ? n : 1;
    for (size_t i = 0; i < want; i++) {
        const char *v = n ? flags[i] : NULL;
        const char *eq = v ? strchr(v, '=') : NULL;
        const char *dir;
        char *name;
        if (eq && eq[1] && app_collection_name_ok(v, (size_t)(eq - v))) {
            name = strndup(v, (size_t)(eq - v));
            dir = eq + 1;
        } else {
            dir = app_index_path(v);
            name = strdup(dir);
        }
        if (!name) { app_error("%s: out of memory", who); app_index_set_close(x); return -1; }
        for (size_t j = 0; j < x->n; j++)
            if (strcmp(x->names[j], name) == 0) {
                app_error("%s: the index %s is given twice", who, name);
                free(name);
                app_index_set_close(x);
                return -1;
            }
        x->names[x->n] = name;
        x->dirs[x->n] = dir;
        char w[300];
        if (want > 1) snprintf(w, sizeof w, "%s: index %s", who, name);
        else snprintf(w, sizeof w, "%s", who);
        if (!(x->stores[x->n] = app_open_index(dir, w))) {
            free(name);
            x->names[x->n] = NULL;
            app_index_set_close(x);
            return -1;
        }
        x->n++;
    }
    idx_fingerprint f0;
    int first = -1;
    for (size_t i = 0; i < x->n; i++) {
        idx_fingerprint f;
        if (idx_fingerprint_get(x->stores[i], &f) != IDX_OK) continue;
        if (first < 0) { f0 = f; first = (int)i; continue; }
        if (strcmp(f.model_sha256, f0.model_sha256) != 0 || f.layer != f0.layer || f.dim != f0.dim ||
            strcmp(f.pooling, f0.pooling) != 0) {
            app_error("%s: the index %s was embedded by another model than %s (model %.12s layer %d dim %d vs %.12s "
                      "layer %d dim %d): indexes searched together must be built with the same model",
                      who, x->names[i], x->names[first], f.model_sha256, f.layer, f.dim, f0.model_sha256, f0.layer, f0.dim);
            app_index_set_close(x);
            return -1;
        }
    }
    return 0;
}
