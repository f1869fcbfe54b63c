/* about.c — what the program knows about itself: its version, how it was
 * built, the SIMD level the engine found, and where its data lives (the
 * default guardrail rules and the detector's models). The installed binary
 * is compiled with -DMRAG_DATADIR=PREFIX/share/mrag (`make install`); the
 * one in the build tree finds data/ beside it. MRAG_DATA_DIR overrides
 * both. */
#include "app/app.h"

#include "llm/llm.h"
#include "rag/rag.h"

#include "build_info.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Contract: see app.h. */
const char *app_data_dir_compiled(void) {
#ifdef MRAG_DATADIR
    return MRAG_DATADIR;
#else
    return NULL;
#endif
}

/* Contract: see app.h. */
bool app_guard_dir(char *out, size_t cap, const char **source, char *why, size_t why_cap) {
    const char *env = getenv("MRAG_DATA_DIR"), *conf_src = NULL;
    const char *conf = app_config_data_dir(&conf_src);
    const char *over = env && *env ? env : conf && *conf ? conf : NULL;
    static char src[600];
    *source = NULL;
    if (over) {
        if (env && *env) *source = "MRAG_DATA_DIR";
        else {
            snprintf(src, sizeof src, "data-dir in %s", conf_src);
            *source = src;
        }
        if ((size_t)snprintf(out, cap, "%s/guardrails", over) < cap && is_dir(out)) return true;
        snprintf(why, why_cap, "%s names %s, which has no guardrails folder", *source, over);
        return false;
    }
    const char *dd = app_data_dir_compiled();
    if (dd && (size_t)snprintf(out, cap, "%s/guardrails", dd) < cap && is_dir(out)) {
        *source = "installed";
        return true;
    }
    if (rag_guard_defaults_dir(out, cap)) {
        *source = "build tree";
        return true;
    }
    snprintf(why, why_cap,
             "the default guardrail rules were not found (looked in %s%sdata/guardrails beside the mrag program); "
             "`make install` puts them in PREFIX/share/mrag, or set MRAG_DATA_DIR to the folder that holds guardrails/",
             dd ? dd : "", dd ? "/guardrails and " : "");
    return false;
}

/* Contract: see app.h. */
int app_guard_load(const rag_guard_params *p, rag_guard **out, char *err, size_t err_cap) {
    rag_guard_params q = *p;
    char dir[PATH_MAX];
    const char *source;
    if (!q.no_defaults && !q.defaults_dir) {
        if (!app_guard_dir(dir, sizeof dir, &source, err, err_cap)) {
            *out = NULL;
            return RAG_ERR_IO;
        }
        q.defaults_dir = dir;
    }
    return rag_guard_load(&q, out, err, err_cap);
}

/* Contract: see app.h. */
void app_print_version(FILE *f) {
    char dir[PATH_MAX], why[600];
    const char *source;
    fprintf(f, "mrag %s (git %s)\n", MRAG_VERSION, *MRAG_GIT ? MRAG_GIT : "unknown: not built from a git checkout");
    fprintf(f, "built with %s\n", MRAG_CC);
    fprintf(f, "build flags: %s\n", MRAG_CFLAGS);
    fprintf(f, "SIMD: this CPU offers %s; the kernels use %s%s\n", llm_simd_found(), llm_simd_used(),
            getenv("MRAG_SIMD") ? " (capped by MRAG_SIMD)" : "");
    const char *dd = app_data_dir_compiled();
    fprintf(f, "compiled-in data folder: %s\n", dd ? dd : "none (a build tree: data/ beside the program)");
    if (app_guard_dir(dir, sizeof dir, &source, why, sizeof why))
        fprintf(f, "guardrail rules: %s (%s)\n", dir, source);
    else
        fprintf(f, "guardrail rules: not found: %s\n", why);
}
