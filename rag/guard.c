/* guard.c — guardrails: loading and compiling rules, checking text per
 * stage (input, context, output), redaction, streaming output checks and the
 * JSON-lines audit log. */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <utf8proc.h>

#include "rag/guard_internal.h"
#include "rag/guard_model_internal.h"
#include "rag/guard_norm_internal.h"

#define GUARD_STREAM_CTX 64     /* bytes of already-emitted text kept for lookbehind */
#define GUARD_LEAK_WORDS 8      /* an answer repeating this many words of the system prompt leaks it */
#define QUARANTINE_MARK "[instruction removed]"

rag_guard_params rag_guard_default_params(void) {
    rag_guard_params p;
    memset(&p, 0, sizeof p);
    p.quarantine = RAG_GUARD_QUARANTINE_DROP;
    p.match_limit = 1000000;
    p.depth_limit = 10000;
    p.stream_max_hold = 2048;
    return p;
}

const char *rag_guard_stage_name(rag_guard_stage s) {
    switch (s) {
    case RAG_GUARD_INPUT: return "input";
    case RAG_GUARD_CONTEXT: return "context";
    case RAG_GUARD_OUTPUT: return "output";
    }
    return "?";
}

const char *rag_guard_action_name(rag_guard_action a) {
    switch (a) {
    case RAG_GUARD_ALLOW: return "allow";
    case RAG_GUARD_FLAG: return "flag";
    case RAG_GUARD_REDACT: return "redact";
    case RAG_GUARD_BLOCK: return "block";
    }
    return "?";
}

int rag_guard_stage_parse(const char *s) {
    if (!s) return -1;
    if (strcmp(s, "input") == 0) return RAG_GUARD_INPUT;
    if (strcmp(s, "context") == 0) return RAG_GUARD_CONTEXT;
    if (strcmp(s, "output") == 0) return RAG_GUARD_OUTPUT;
    return -1;
}

/* ------------------------------------------------------------ building */

int rag_guard_new(const rag_guard_params *p, rag_guard **out) {
    if (!out) return RAG_ERR_ARG;
    *out = NULL;
    rag_guard *g = calloc(1, sizeof *g);
    if (!g) return RAG_ERR_NOMEM;
    g->params = p ? *p : rag_guard_default_params();
    if (g->params.stream_max_hold == 0) g->params.stream_max_hold = 2048;
    if (g->params.match_limit == 0) g->params.match_limit = 1000000;
    if (g->params.depth_limit == 0) g->params.depth_limit = 10000;
    pthread_mutex_init(&g->audit_mu, NULL);
    *out = g;
    return RAG_OK;
}

void rag_guard_free(rag_guard *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_rules; i++) rag_guard_rule_clear(&g->rules[i]);
    free(g->rules);
    if (g->mctx) pcre2_match_context_free(g->mctx);
    if (g->audit && g->audit_owned) fclose(g->audit);
    pthread_mutex_destroy(&g->audit_mu);
    free(g->trig);
    free(g->trig_items);
    for (size_t i = 0; i < g->n_warnings; i++) free(g->warnings[i]);
    free(g->warnings);
    free(g);
}

const char *rag_guard_errmsg(const rag_guard *g) {
    return g ? g->err : "";
}

int rag_guard_add_text(rag_guard *g, const char *name, const char *text, size_t len) {
    if (!g || (!text && len)) return RAG_ERR_ARG;
    if (g->compiled) {
        snprintf(g->err, sizeof g->err, "rules added after rag_guard_compile");
        return RAG_ERR_ARG;
    }
    g->err[0] = 0;
    return rag_guard_parse_rules(g, name, text ? text : "", len);
}

/* Reads a rule file of at most GUARD_MAX_FILE_BYTES and parses it. */
int rag_guard_add_file(rag_guard *g, const char *path) {
    int rc = RAG_OK;
    char *buf = NULL;
    FILE *f = NULL;
    if (!g || !path) return RAG_ERR_ARG;
    f = fopen(path, "rb");
    if (!f) {
        snprintf(g->err, sizeof g->err, "%.300s: %s", path, strerror(errno));
        rc = RAG_ERR_IO;
        goto done;
    }
    buf = malloc(GUARD_MAX_FILE_BYTES + 1);
    if (!buf) { rc = RAG_ERR_NOMEM; goto done; }
    size_t n = fread(buf, 1, GUARD_MAX_FILE_BYTES + 1, f);
    if (ferror(f)) {
        snprintf(g->err, sizeof g->err, "%.300s: read error", path);
        rc = RAG_ERR_IO;
        goto done;
    }
    if (n > GUARD_MAX_FILE_BYTES) {
        snprintf(g->err, sizeof g->err, "%.300s: larger than %u bytes", path, GUARD_MAX_FILE_BYTES);
        rc = RAG_ERR_LIMIT;
        goto done;
    }
    rc = rag_guard_add_text(g, path, buf, n);
done:
    if (f) fclose(f);
    free(buf);
    return rc;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds every *.rules file of dir in byte order of the names. */
int rag_guard_add_dir(rag_guard *g, const char *dir) {
    int rc = RAG_OK;
    char **names = NULL;
    size_t n = 0, cap = 0;
    if (!g || !dir) return RAG_ERR_ARG;
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(g->err, sizeof g->err, "%.300s: %s", dir, strerror(errno));
        return RAG_ERR_IO;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 7 || strcmp(de->d_name + l - 6, ".rules") != 0 || de->d_name[0] == '.') continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn) { rc = RAG_ERR_NOMEM; goto done; }
            names = nn;
            cap = nc;
        }
        if (!(names[n] = strdup(de->d_name))) { rc = RAG_ERR_NOMEM; goto done; }
        n++;
    }
    if (n) qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path) {
            snprintf(g->err, sizeof g->err, "%.300s: path too long", dir);
            rc = RAG_ERR_LIMIT;
            goto done;
        }
        if ((rc = rag_guard_add_file(g, path)) != RAG_OK) goto done;
    }
done:
    closedir(d);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    if (rc == RAG_ERR_NOMEM) snprintf(g->err, sizeof g->err, "%.300s: out of memory", dir);
    return rc;
}

/* FNV-1a of a word prefix (the trigger prefilter's key). */
static uint64_t trig_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int cmp_trig(const void *a, const void *b) {
    const struct guard_trigger *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return x->item < y->item ? -1 : x->item > y->item;
}

/* The trigger prefilter: every (prefix, item, group) of the enabled rules,
 * sorted by the prefix's hash. */
static int build_triggers(rag_guard *g) {
    size_t n = 0, ni = 0;
    for (size_t i = 0; i < g->n_rules; i++) {
        const char *t = g->rules[i].enabled ? g->rules[i].triggers : NULL;
        if (t) { n++; ni++; }
        for (; t && *t; t++) { n += *t == '\n' || *t == '|' || *t == '+'; ni += *t == '\n'; }
    }
    if (!n) return RAG_OK;
    if (!(g->trig = malloc(n * sizeof *g->trig)) || !(g->trig_items = malloc(ni * sizeof *g->trig_items)))
        return RAG_ERR_NOMEM;
    for (size_t i = 0; i < g->n_rules; i++) {
        const char *t = g->rules[i].enabled ? g->rules[i].triggers : NULL;
        while (t && *t) {
            uint32_t item = (uint32_t)g->n_trig_items++, bit = 1;
            for (;;) {
                size_t l = strcspn(t, "|+\n");
                g->trig[g->n_trig++] = (struct guard_trigger){trig_hash(t, l), item, bit};
                char c = t[l];
                t += l + (c != 0);
                if (c == '+') bit <<= 1;
                else if (c != '|') break;
            }
            g->trig_items[item] = (struct guard_trigger_item){(uint32_t)i, (bit << 1) - 1};
        }
    }
    qsort(g->trig, g->n_trig, sizeof *g->trig, cmp_trig);
    for (size_t k = 0; k < g->n_trig; k++) g->trig_bloom[g->trig[k].h >> 54] |= 1ull << ((g->trig[k].h >> 48) & 63);
    return RAG_OK;
}

/* Prefixes of the words of a text are looked up in the trigger table. A
 * word is a run of letters and digits (Unicode L and N): every other
 * character ends one, so that a word starts wherever a pattern's \b (or
 * (?<!\w)) can hold before a letter — "«Ignore", "—ignore" and "@ignore"
 * hold the word "ignore". Words are lower-cased as they are hashed
 * (triggers are lower case; a rule's caseless literal matches only text
 * whose lower case is the literal's). */
typedef struct {
    const rag_guard *g;
    unsigned char *active;        /* per rule: may match */
    uint32_t *mask;               /* per trigger item: groups seen */
} trig_state;

static void trig_begin(trig_state *ts) {
    const rag_guard *g = ts->g;
    for (size_t i = 0; i < g->n_rules; i++) ts->active[i] = g->rules[i].triggers == NULL;
    if (g->n_trig_items) memset(ts->mask, 0, g->n_trig_items * sizeof *ts->mask);
}

static inline void trig_hit(trig_state *ts, uint64_t h) {
    const rag_guard *g = ts->g;
    if (!(g->trig_bloom[h >> 54] & (1ull << ((h >> 48) & 63)))) return;   /* most prefixes */
    size_t lo = 0, hi = g->n_trig;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g->trig[mid].h < h) lo = mid + 1; else hi = mid;
    }
    for (; lo < g->n_trig && g->trig[lo].h == h; lo++) {
        uint32_t it = g->trig[lo].item;
        if ((ts->mask[it] |= g->trig[lo].bit) == g->trig_items[it].full) ts->active[g->trig_items[it].rule] = 1;
    }
}

/* The character at u[i] (of u[0..n)): the bytes it takes, and in cb[0..*cl)
 * its lower case in UTF-8 when it is a letter or digit (*cl = 0: not). */
static inline size_t word_char(const unsigned char *u, size_t n, size_t i, unsigned char *cb, size_t *cl) {
    unsigned char c = u[i];
    *cl = 0;
    if (c < 0x80) {
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) cb[(*cl)++] = c;
        else if (c >= 'A' && c <= 'Z') cb[(*cl)++] = (unsigned char)(c + 32);
        return 1;
    }
    utf8proc_int32_t cp;
    utf8proc_ssize_t l = utf8proc_iterate(u + i, (utf8proc_ssize_t)(n - i), &cp);
    if (l <= 0) return 1;
    utf8proc_category_t cat = utf8proc_category(cp);
    if ((cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) || (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO))
        *cl = (size_t)utf8proc_encode_char(utf8proc_tolower(cp), cb);
    return (size_t)l;
}

/* Marks the rules whose triggers hold in s[0..n), adding to what earlier
 * calls since trig_begin marked: every prefix of 2..16 bytes (ending at a
 * character's end) of every lower-cased word is looked up, and the whole
 * word followed by '$' (a trigger "no$" is the word "no" alone). */
static void trig_words(trig_state *ts, const char *s, size_t n) {
    if (!ts->g->n_trig) return;
    const unsigned char *u = (const unsigned char *)s;
    unsigned char cb[8];
    size_t i = 0, cl;
    while (i < n) {
        size_t used = word_char(u, n, i, cb, &cl);
        if (!cl) { i += used; continue; }
        uint64_t h = 1469598103934665603ull;
        size_t hl = 0, wl = 0;     /* bytes hashed, bytes of the word */
        while (cl) {   /* the characters of one word */
            if (hl < 16) {
                for (size_t k = 0; k < cl; k++) h = (h ^ cb[k]) * 1099511628211ull;
                hl += cl;
                if (hl >= 2 && hl <= 16) trig_hit(ts, h);
            }
            wl += cl;
            i += used;
            if (i < n) used = word_char(u, n, i, cb, &cl);
            else cl = 0;
        }
        /* the whole word: its hash with '$' after it ("no$") */
        if (wl == hl && hl >= 2 && hl <= 16) trig_hit(ts, (h ^ '$') * 1099511628211ull);
    }
}

/* The ASCII path. PCRE2_UCP makes \w, \d, \s, \b (and POSIX classes)
 * Unicode-aware, which costs about 45 % of a scan; on a subject that is
 * pure ASCII, \w \d \s \b \B and their negations match exactly the same
 * characters with and without it (\w: letters, digits, '_'; \s: space,
 * \t \n \v \f \r; \d: 0-9), and caseless matching is decided by
 * PCRE2_UTF, which stays on. The exception is POSIX classes: under UCP
 * [:upper:] and [:lower:] become \p{Lu}/\p{Ll}, which caseless matching
 * does not widen, unlike the ASCII classes. So a pattern gets the variant
 * without UCP only when its source is pure ASCII (no non-ASCII literal),
 * has no POSIX class ("[:"), no escape that names a code point or a
 * backreference (\x \o \N \0-\9, \g \k) and no leading (*VERB); then on
 * an ASCII subject the two compile to the same language. test_rag_guard
 * compares them on every example and on real text. */
static bool ascii_equivalent(const char *pat) {
    for (const char *p = pat; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x80) return false;
        if (c == '[' && p[1] == ':') return false;
        if (c == '(' && p[1] == '*') return false;
        if (c == '\\') {
            char e = p[1];
            if (e == 'x' || e == 'o' || e == 'N' || e == 'g' || e == 'k' || (e >= '0' && e <= '9')) return false;
            if (e) p++;
        }
    }
    return true;
}

/* The rule's code for a subject: the variant without UCP for pure-ASCII
 * text when the rule has one (compiled once, on first use, by whichever
 * thread gets there; a lost race frees its copy). */
static const pcre2_code *rule_code(const guard_rule *r, bool ascii) {
    if (!ascii || !r->ascii_ok) return r->code;
    pcre2_code **slot = (pcre2_code **)&((guard_rule *)r)->code_ascii;   /* the one lazily set field */
    pcre2_code *c = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (c) return c;
    int errcode;
    PCRE2_SIZE erroff;
    c = pcre2_compile((PCRE2_SPTR)r->pattern, PCRE2_ZERO_TERMINATED, r->options | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                      &errcode, &erroff, NULL);
    if (!c) return r->code;
    (void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
    pcre2_code *expected = NULL;
    if (!__atomic_compare_exchange_n(slot, &expected, c, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        pcre2_code_free(c);
        c = expected;
    }
    return c;
}

static bool is_ascii(const char *s, size_t n) {
    unsigned char acc = 0;
    for (size_t i = 0; i < n; i++) acc |= (unsigned char)s[i];
    return acc < 0x80;
}

/* Compiles every enabled rule (UTF, UCP, invalid UTF never matches) and
 * JIT-compiles it for complete and partial matching. */
int rag_guard_compile(rag_guard *g) {
    if (!g) return RAG_ERR_ARG;
    if (g->compiled) return RAG_OK;
    g->mctx = pcre2_match_context_create(NULL);
    if (!g->mctx) return RAG_ERR_NOMEM;
    pcre2_set_match_limit(g->mctx, g->params.match_limit);
    pcre2_set_depth_limit(g->mctx, g->params.depth_limit);
    pcre2_set_heap_limit(g->mctx, 20000); /* KiB */
    for (size_t i = 0; i < g->n_rules; i++) {
        guard_rule *r = &g->rules[i];
        if (!r->enabled) continue;
        const char *what = !r->stages ? "stage" : !(r->set & GUARD_F_ACTION) ? "action"
                           : (!r->model_path && (!r->pattern || !r->pattern[0])) ? "pattern (or terms, or model)" : NULL;
        if (what) {
            snprintf(g->err, sizeof g->err, "%.200s: rule '%.100s' has no %s", r->origin ? r->origin : "?", r->id, what);
            return RAG_ERR_FORMAT;
        }
        if (r->model_path) {
            /* a learned detector: loaded once, shared by every check */
            char merr[500];
            if (!(r->set & GUARD_F_THRESHOLD)) for (int k = 0; k < 3; k++) r->threshold[k] = 0.5f;
            if (rag_guard_model_load(r->model_path, &r->model, merr, sizeof merr) != 0) {
                snprintf(g->err, sizeof g->err, "%.200s: rule '%.100s': %.300s", r->origin ? r->origin : "?", r->id, merr);
                return RAG_ERR_FORMAT;
            }
            continue;
        }
        if (!(r->set & GUARD_F_SKELETON)) r->skeleton = r->validator == GUARD_V_NONE;
        int errcode;
        PCRE2_SIZE erroff;
        r->code = pcre2_compile((PCRE2_SPTR)r->pattern, PCRE2_ZERO_TERMINATED,
                                r->options | PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &errcode, &erroff, NULL);
        if (!r->code) {
            PCRE2_UCHAR msg[120];
            pcre2_get_error_message(errcode, msg, sizeof msg);
            const char *where = r->pattern_origin ? r->pattern_origin : r->origin;
            snprintf(g->err, sizeof g->err, "%.200s: rule '%.100s': pattern error at offset %zu: %.120s",
                     where ? where : "?", r->id, (size_t)erroff, (const char *)msg);
            return RAG_ERR_FORMAT;
        }
        /* JIT is an optimisation: without it the interpreter runs. */
        (void)pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD);
        r->ascii_ok = !g->params.no_ascii_path && ascii_equivalent(r->pattern);
    }
    if (build_triggers(g) != RAG_OK) return RAG_ERR_NOMEM;
    g->compiled = true;
    return RAG_OK;
}

/* The one place that says where the default rules (and the detector's
 * model) live: the installed data folder when the build names one
 * (-DMRAG_DATA_DIR=...: DIR/guardrails), else data/guardrails one to three
 * levels above the executable's folder (a build tree). Never the current
 * folder: a data/guardrails folder there must not replace the defaults. */
bool rag_guard_defaults_dir(char *out, size_t cap) {
    struct stat st;
#ifdef MRAG_DATA_DIR
    if ((size_t)snprintf(out, cap, "%s/guardrails", MRAG_DATA_DIR) < cap && stat(out, &st) == 0 && S_ISDIR(st.st_mode))
        return true;
#endif
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return false;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return false;
    *slash = 0;
    static const char *ups[] = {"/..", "/../..", "/../../.."};
    for (size_t i = 0; i < 3; i++) {
        if ((size_t)snprintf(out, cap, "%s%s/data/guardrails", exe, ups[i]) >= cap) return false;
        if (stat(out, &st) == 0 && S_ISDIR(st.st_mode)) return true;
    }
    return false;
}

void rag_guard_warn(rag_guard *g, const char *fmt, ...) {
    if (g->n_warnings >= GUARD_MAX_WARNINGS) return;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char **w = realloc(g->warnings, (g->n_warnings + 1) * sizeof *w);
    if (!w) return;
    g->warnings = w;
    if ((w[g->n_warnings] = strdup(msg))) g->n_warnings++;
}

size_t rag_guard_warning_count(const rag_guard *g) {
    return g ? g->n_warnings : 0;
}

const char *rag_guard_warning(const rag_guard *g, size_t i) {
    return g && i < g->n_warnings ? g->warnings[i] : NULL;
}

/* Adds a user rule folder or single rule file. */
static int add_user_rules(rag_guard *g, const char *d) {
    struct stat st;
    if (stat(d, &st) == 0 && S_ISREG(st.st_mode)) return rag_guard_add_file(g, d);
    return rag_guard_add_dir(g, d);
}

int rag_guard_load(const rag_guard_params *p, rag_guard **out, char *err, size_t err_cap) {
    rag_guard_params dp = rag_guard_default_params();
    if (!p) p = &dp;
    rag_guard *g = NULL;
    int rc = rag_guard_new(p, &g);
    if (err && err_cap) err[0] = 0;
    if (rc != RAG_OK) goto done;
    if (!p->no_defaults) {
        char dir[PATH_MAX];
        if (p->defaults_dir) snprintf(dir, sizeof dir, "%s", p->defaults_dir);
        else if (!rag_guard_defaults_dir(dir, sizeof dir)) {
            snprintf(g->err, sizeof g->err,
                     "the default guardrail rules were not found (data/guardrails next to the mrag program"
#ifdef MRAG_DATA_DIR
                     " or " MRAG_DATA_DIR "/guardrails"
#endif
                     ")");
            rc = RAG_ERR_IO;
            goto done;
        }
        g->loading_defaults = true;
        rc = rag_guard_add_dir(g, dir);
        g->loading_defaults = false;
        if (rc != RAG_OK) goto done;
        if (rag_guard_rule_count(g) == 0) {
            snprintf(g->err, sizeof g->err, "%.300s: no default guardrail rules in this folder", dir);
            rc = RAG_ERR_FORMAT;
            goto done;
        }
    } else {
        rag_guard_warn(g, "the default guardrail rules are not loaded (no_defaults): only the given rules run");
    }
    /* $MRAG_GUARDRAILS: more user rule folders or files (':'-separated),
     * added like --rules: they add rules or change them by id */
    const char *env = p->ignore_env ? NULL : getenv("MRAG_GUARDRAILS");
    if (env && *env) {
        char path[PATH_MAX];
        for (const char *a = env; *a;) {
            const char *c = strchr(a, ':');
            size_t l = c ? (size_t)(c - a) : strlen(a);
            if (l > 0) {
                if (l >= sizeof path) { snprintf(g->err, sizeof g->err, "MRAG_GUARDRAILS: path too long"); rc = RAG_ERR_LIMIT; goto done; }
                memcpy(path, a, l);
                path[l] = 0;
                if ((rc = add_user_rules(g, path)) != RAG_OK) goto done;
            }
            a += l + (c ? 1 : 0);
        }
    }
    for (size_t i = 0; i < p->n_rule_dirs; i++)
        if ((rc = add_user_rules(g, p->rule_dirs[i])) != RAG_OK) goto done;
    rc = rag_guard_compile(g);
done:
    if (rc != RAG_OK) {
        if (err && err_cap) snprintf(err, err_cap, "%s", g && g->err[0] ? g->err : "out of memory");
        rag_guard_free(g);
        g = NULL;
    }
    *out = g;
    return rc;
}

size_t rag_guard_rule_count(const rag_guard *g) {
    size_t n = 0;
    for (size_t i = 0; g && i < g->n_rules; i++) n += g->rules[i].enabled;
    return n;
}

bool rag_guard_rule_info(const rag_guard *g, size_t i, const char **id, unsigned *stages,
                         rag_guard_action *action, const char **origin) {
    for (size_t k = 0; g && k < g->n_rules; k++) {
        if (!g->rules[k].enabled) continue;
        if (i-- == 0) {
            if (id) *id = g->rules[k].id;
            if (stages) *stages = g->rules[k].stages;
            if (action) *action = g->rules[k].action;
            if (origin) *origin = g->rules[k].origin;
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------ audit log */

static void set_audit(rag_guard *g, FILE *f, bool owned) {
    pthread_mutex_lock(&g->audit_mu);
    if (g->audit && g->audit_owned) fclose(g->audit);
    g->audit = f;
    g->audit_owned = owned;
    pthread_mutex_unlock(&g->audit_mu);
}

void rag_guard_set_audit(rag_guard *g, FILE *f) {
    if (g) set_audit(g, f, false);
}

int rag_guard_open_audit(rag_guard *g, const char *path) {
    if (!g || !path) return RAG_ERR_ARG;
    FILE *f = fopen(path, "a");
    if (!f) {
        snprintf(g->err, sizeof g->err, "%.300s: %s", path, strerror(errno));
        return RAG_ERR_IO;
    }
    set_audit(g, f, true);
    return RAG_OK;
}

/* Writes s JSON-escaped; returns false when it does not fit. */
static bool json_str(char *buf, size_t cap, size_t *n, const char *s) {
    static const char hex[] = "0123456789abcdef";
    if (*n + 1 >= cap) return false;
    buf[(*n)++] = '"';
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (*n + 7 >= cap) return false;
        if (c == '"' || c == '\\') { buf[(*n)++] = '\\'; buf[(*n)++] = (char)c; }
        else if (c < 0x20) {
            buf[(*n)++] = '\\'; buf[(*n)++] = 'u'; buf[(*n)++] = '0'; buf[(*n)++] = '0';
            buf[(*n)++] = hex[c >> 4]; buf[(*n)++] = hex[c & 15];
        } else buf[(*n)++] = (char)c;
    }
    if (*n + 1 >= cap) return false;
    buf[(*n)++] = '"';
    return true;
}

size_t rag_guard_audit_format(const rag_guard_event *ev, char *buf, size_t cap) {
    struct timespec ts;
    struct tm tm;
    char when[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof when - w, ".%03ldZ", ts.tv_nsec / 1000000);
    size_t n = 0;
    int k = snprintf(buf, cap, "{\"time\":\"%s\",\"stage\":\"%s\",\"rule\":", when, rag_guard_stage_name(ev->stage));
    if (k < 0 || (size_t)k >= cap) return 0;
    n = (size_t)k;
    if (!json_str(buf, cap, &n, ev->rule_id)) return 0;
    k = snprintf(buf + n, cap - n, ",\"action\":\"%s\",\"kind\":\"%s\",\"start\":%zu,\"len\":%zu}\n",
                 rag_guard_action_name(ev->action), ev->kind == RAG_GUARD_EV_LIMIT ? "limit" : "match",
                 ev->start, ev->end - ev->start);
    if (k < 0 || (size_t)k >= cap - n) return 0;
    return n + (size_t)k;
}

static void audit_events(const rag_guard *gc, const rag_guard_event *ev, size_t n) {
    rag_guard *g = (rag_guard *)gc; /* the mutex and sink are the only mutable parts */
    if (!g->audit || n == 0) return;
    pthread_mutex_lock(&g->audit_mu);
    if (g->audit) {
        char line[512];
        for (size_t i = 0; i < n; i++) {
            size_t l = rag_guard_audit_format(&ev[i], line, sizeof line);
            if (l) fwrite(line, 1, l, g->audit);
        }
        fflush(g->audit);
    }
    pthread_mutex_unlock(&g->audit_mu);
}

/* ------------------------------------------------------------ scanning */

static int push_event(rag_guard_result *res, const rag_guard_event *ev) {
    if (res->n_events == res->cap_events) {
        size_t nc = res->cap_events ? res->cap_events * 2 : 16;
        rag_guard_event *ne = realloc(res->events, nc * sizeof *ne);
        if (!ne) return RAG_ERR_NOMEM;
        res->events = ne;
        res->cap_events = nc;
    }
    res->events[res->n_events++] = *ev;
    return RAG_OK;
}

static void widen_to_sentence(const char *t, size_t len, size_t lo, size_t *s, size_t *e);

static const guard_rule *rule_of(const rag_guard *g, const rag_guard_event *ev) {
    for (size_t i = 0; i < g->n_rules; i++)
        if (g->rules[i].id == ev->rule_id) return &g->rules[i];
    return NULL;
}

/* Where a scan reports: the text the caller checks (T, UTF-8 repaired),
 * shared by every view of it that is scanned. */
typedef struct {
    const rag_guard *g;
    rag_guard_stage stage;
    int n_sources;
    pcre2_match_data *md;
    rag_guard_result *res;
    unsigned char *limit_seen;   /* limit events once per rule (streams) */
    const char *orig;            /* T, for widening quarantined spans */
    size_t orig_len, orig_lo;    /* widening never goes below orig_lo */
    const uint64_t *qkeys;       /* topic words of the question, sorted (context stage) */
    size_t n_qkeys;
} scan_env;

/* Maps a span of a view to T: fixed (a decoded run: the whole run), or
 * through the view's map (NULL: the view is T). */
static void map_span(const guard_view *map, const size_t *fixed, size_t s, size_t e, size_t *os, size_t *oe) {
    if (fixed) { *os = fixed[0]; *oe = fixed[1]; return; }
    if (!map || !map->a) { *os = s; *oe = e; return; }
    if (e <= s) {
        size_t p = s < map->n ? map->a[s] : (map->n ? map->b[map->n - 1] : 0);
        *os = *oe = p;
        return;
    }
    rag_guard_view_span(map, s, e, os, oe);
}

/* Runs the rules of the stage over subj[start..len) (a view of T) and
 * appends events with spans in T. skeleton_only: only rules that also run
 * on the skeleton and decoded views. With partial set (streams), a match
 * that could still grow past the end is not reported; *hold gets the
 * earliest T offset of such a match. */
static int scan(scan_env *env, const char *subj, size_t len, size_t start, bool partial, size_t *hold,
                bool skeleton_only, const unsigned char *active, const guard_view *map, const size_t *fixed) {
    const rag_guard *g = env->g;
    rag_guard_stage stage = env->stage;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(env->md);
    unsigned char *limit_seen = env->limit_seen;
    int rc;
    /* (streams keep the Unicode code: partial matching stays as it was) */
    bool ascii = !partial && is_ascii(subj, len);
    for (size_t i = 0; i < g->n_rules; i++) {
        const guard_rule *r = &g->rules[i];
        if (!r->enabled || !r->code || !(r->stages & (1u << stage))) continue;
        if (skeleton_only && !r->skeleton) continue;
        if (active && !active[i]) continue;
        rag_guard_action act = r->action;
        if (stage == RAG_GUARD_CONTEXT && act == RAG_GUARD_BLOCK && g->params.quarantine == RAG_GUARD_QUARANTINE_KEEP)
            act = RAG_GUARD_REDACT;
        const pcre2_code *code = rule_code(r, ascii);
        size_t off = start;
        while (off <= len) {
            int m = pcre2_match(code, (PCRE2_SPTR)subj, len, off, partial ? PCRE2_PARTIAL_HARD : 0, env->md, g->mctx);
            if (m == PCRE2_ERROR_NOMATCH) break;
            if (m == PCRE2_ERROR_PARTIAL) {
                if (hold) {
                    size_t hs, he;
                    map_span(map, fixed, ov[0], ov[0], &hs, &he);
                    if (hs < *hold) *hold = hs;
                }
                break;
            }
            if (m < 0) {
                /* match/depth/heap/JIT-stack limit (or another matching
                 * error): report it, do not retry this rule on this text */
                if (!limit_seen || !(limit_seen[i / 8] & (1u << (i % 8)))) {
                    if (limit_seen) limit_seen[i / 8] |= (unsigned char)(1u << (i % 8));
                    size_t ls, le;
                    map_span(map, fixed, off, off, &ls, &le);
                    rag_guard_event ev = {RAG_GUARD_EV_LIMIT, r->id, r->message ? r->message : r->id, stage,
                                          g->params.limit_blocks ? RAG_GUARD_BLOCK : RAG_GUARD_FLAG, ls, ls, 0};
                    if ((rc = push_event(env->res, &ev)) != RAG_OK) return rc;
                }
                break;
            }
            size_t s = ov[0], e = ov[1];
            if (e <= s) { /* empty match: step over one character */
                off = s + 1;
                while (off < len && ((unsigned char)subj[off] & 0xC0) == 0x80) off++;
                continue;
            }
            size_t acc = e - s;
            if (rag_guard_run_validator(r->validator, subj + s, e - s, env->n_sources, &acc)) {
                size_t es, ee;
                map_span(map, fixed, s, s + acc, &es, &ee);
                if (act != r->action) widen_to_sentence(env->orig, env->orig_len, env->orig_lo, &es, &ee);
                rag_guard_event ev = {RAG_GUARD_EV_MATCH, r->id, r->message ? r->message : r->id, stage, act, es, ee, 0};
                if ((rc = push_event(env->res, &ev)) != RAG_OK) return rc;
                off = s + acc;
            } else {
                off = e;
            }
        }
    }
    return RAG_OK;
}

/* The learned detectors (rules with "model:") over a skeleton view: at the
 * context stage each segment (sentence, line, code block) is scored and an
 * event covers the segments at or above the rule's threshold, so that only
 * they are quarantined; at the input stage the whole question is scored and
 * so is each of its segments (an injection appended to a harmless
 * question), the highest score counts. */
#define GUARD_MAX_SEGMENTS 4096
#define GUARD_MIN_WORDS 4
#define GUARD_TASK_MIN_WORDS 3      /* "Tell me a joke" */
#define GUARD_TASK_MAX_WORDS 80     /* a longer segment is not a pasted request (and the
                                       relatedness test stays linear in the passage) */
#define GUARD_TASK_LIST 2           /* more requests than this, a third of the segments: a list of questions */

static int cmp_key(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* A segment that follows a section number ("14.2." then "Can Debian be
 * ...?") is a heading, not a request to the reader — also when the number
 * is glued to the end of the heading before it, as in a table of contents
 * whose line breaks were lost ("6.2.1. Which …?6.2.2." then "Where …?").
 * Returns 0 (no number), 1 (a number: "2.") or 2 (a section number of
 * two levels or more: "14.2."). */
static int after_number(const char *sk, const guard_segment *seg, size_t k) {
    if (k == 0) return 0;
    const guard_segment *p = &seg[k - 1];
    for (size_t i = p->end; i < seg[k].start; i++)
        if (sk[i] != ' ' && sk[i] != '\t' && sk[i] != '\n' && sk[i] != '\r') return 0;
    bool digit = false, levels = false;
    size_t i = p->end;
    while (i > p->start) {
        char c = sk[i - 1];
        if (c >= '0' && c <= '9') {
            /* a digit before a dot that is followed by a digit: "14.2" */
            if (i + 1 < p->end && sk[i] == '.' && sk[i + 1] >= '0' && sk[i + 1] <= '9') levels = true;
            digit = true;
        } else if (c != '.' && c != ' ' && c != ')') break;
        i--;
    }
    if (!digit || !(i == p->start || sk[i - 1] == '?' || sk[i - 1] == '!')) return 0;
    return levels ? 2 : 1;
}

static bool heading(const char *sk, const guard_segment *seg, size_t k, size_t n_num) {
    int a = after_number(sk, seg, k);
    return a == 2 || (a == 1 && n_num >= 2);
}

/* An "unrelated:" detector (the request model): a segment scoring at or
 * above thr — a question or a task for the reader — is an event only when
 * its topic words are unrelated to the rest of the passage and to the
 * user's question: a FAQ's question shares its words with the answer under
 * it, a how-to's steps with the rest of the how-to, while a plain task
 * pasted into an e-mail ("Who painted the Sistine Chapel?") shares none.
 * A passage of many requests (a FAQ's index, exercises) is a list, not a
 * planted order. */
static int detect_unrelated(scan_env *env, const guard_rule *r, rag_guard_action act, float thr,
                            guard_segment *seg, size_t nseg, const char *sk, const guard_view *v2,
                            const size_t *fixed) {
    int rc = RAG_OK;
    float *sc = calloc(nseg + 1, sizeof *sc);
    size_t nw = v2->n / 2 + 2;
    uint64_t *keys = NULL;
    size_t *kstart = NULL;
    struct tk { uint64_t key; uint32_t nseg, last; } *tab = NULL;
    if (!sc) return RAG_ERR_NOMEM;
    size_t n_req = 0, n_scored = 0, n_num = 0;
    /* a segment after a section number ("14.2.") is a heading; after a
     * plain number ("2.") only in a numbered document (two numbers or
     * more): a lone "2." before a planted request does not hide it */
    for (size_t k = 1; k < nseg && n_num < 2; k++) n_num += after_number(sk, seg, k) > 0;
    for (size_t k = 0; k < nseg; k++) {
        if (seg[k].end <= seg[k].start) continue;
        size_t w = rag_guard_model_words(sk + seg[k].start, seg[k].end - seg[k].start);
        if (w >= GUARD_MIN_WORDS) n_scored++;
        if (w < GUARD_TASK_MIN_WORDS || w > GUARD_TASK_MAX_WORDS || heading(sk, seg, k, n_num)) continue;
        sc[k] = rag_guard_task_score(r->model, sk, &seg[k], thr);
        if (sc[k] >= thr) n_req++;
    }
    if (!n_req || (n_req > GUARD_TASK_LIST && n_req * 3 > n_scored)) goto done;
    /* topic words of every segment, and in how many segments each occurs */
    if (!(keys = malloc(nw * sizeof *keys)) || !(kstart = malloc((nseg + 1) * sizeof *kstart))) { rc = RAG_ERR_NOMEM; goto done; }
    size_t nk = 0;
    for (size_t k = 0; k < nseg; k++) {
        kstart[k] = nk;
        if (seg[k].end > seg[k].start)
            nk += rag_guard_content_keys(sk + seg[k].start, seg[k].end - seg[k].start, keys + nk, nw - nk);
    }
    kstart[nseg] = nk;
    size_t cap = 16;
    while (cap < 2 * nk + 2) cap *= 2;
    if (!(tab = calloc(cap, sizeof *tab))) { rc = RAG_ERR_NOMEM; goto done; }
    for (size_t k = 0; k < nseg; k++)
        for (size_t j = kstart[k]; j < kstart[k + 1]; j++) {
            size_t i = keys[j] & (cap - 1);
            while (tab[i].key && tab[i].key != keys[j]) i = (i + 1) & (cap - 1);
            if (!tab[i].key) { tab[i].key = keys[j]; tab[i].last = (uint32_t)k; tab[i].nseg = 1; }
            else if (tab[i].last != k) { tab[i].last = (uint32_t)k; tab[i].nseg++; }
        }
    for (size_t k = 0; k < nseg && rc == RAG_OK; k++) {
        if (sc[k] < thr) continue;
        size_t c = 0, m = 0;
        for (size_t j = kstart[k]; j < kstart[k + 1]; j++) {
            bool dup = false;
            for (size_t t = kstart[k]; t < j && !dup; t++) dup = keys[t] == keys[j];
            if (dup) continue;
            c++;
            size_t i = keys[j] & (cap - 1);
            while (tab[i].key != keys[j]) i = (i + 1) & (cap - 1);
            if (tab[i].nseg > 1 || (env->n_qkeys && bsearch(&keys[j], env->qkeys, env->n_qkeys, sizeof *keys, cmp_key))) m++;
        }
        /* no topic words (fewer than two in a piece cut out of a
         * sentence): too little to judge; half of them found elsewhere
         * (or three): the request belongs to the text */
        if (c < (seg[k].piece ? 2u : 1u) || 2 * m >= c || m >= 3) continue;
        size_t es, ee;
        map_span(v2, fixed, seg[k].start, seg[k].end, &es, &ee);
        rag_guard_event ev = {RAG_GUARD_EV_MATCH, r->id, r->message ? r->message : r->id, env->stage, act, es, ee, sc[k]};
        rc = push_event(env->res, &ev);
    }
done:
    free(sc);
    free(keys);
    free(kstart);
    free(tab);
    return rc;
}
static bool any_unrelated(const rag_guard *g) {
    for (size_t i = 0; i < g->n_rules; i++)
        if (g->rules[i].enabled && g->rules[i].model && g->rules[i].unrelated && (g->rules[i].stages & (1u << RAG_GUARD_CONTEXT)))
            return true;
    return false;
}

/* A segment found in the Unicode view v1, moved to the skeleton v2. */
static void guard_seg_map(const guard_view *v1, const guard_view *v2, guard_segment *sg) {
    size_t ta, tb;
    rag_guard_view_span(v1, sg->start, sg->end, &ta, &tb);
    sg->start = rag_guard_view_find(v2, ta);
    sg->end = rag_guard_view_find(v2, tb);
    if (sg->end < sg->start) sg->end = sg->start;
}

#define GUARD_QUESTION_MAX 1000     /* bytes: longer inputs are not scored per sentence */
#define GUARD_QUESTION_SEGMENTS 6   /* nor are inputs of more sentences (documents) */
static int detect(scan_env *env, const guard_view *v1, const guard_view *v2, const char *sk, bool seg_v2,
                  const size_t *fixed) {
    const rag_guard *g = env->g;
    guard_segment *seg = NULL, *tseg = NULL;
    size_t nseg = 0, ntseg = 0, n = v2->n;
    int rc = RAG_OK;
    for (size_t i = 0; i < g->n_rules && rc == RAG_OK; i++) {
        const guard_rule *r = &g->rules[i];
        if (!r->enabled || !r->model || !(r->stages & (1u << env->stage))) continue;
        float thr = r->threshold[env->stage];
        rag_guard_action act = r->action;
        if (env->stage == RAG_GUARD_CONTEXT && act == RAG_GUARD_BLOCK && g->params.quarantine == RAG_GUARD_QUARANTINE_KEEP)
            act = RAG_GUARD_REDACT;
        if (!seg) {
            /* segments are found in the Unicode view (case tells where a
             * line starts a sentence), then scored in the skeleton */
            if (!(seg = malloc(GUARD_MAX_SEGMENTS * sizeof *seg))) return RAG_ERR_NOMEM;
            /* (letters spaced out over lines: only the skeleton has the words) */
            nseg = rag_guard_segments(seg_v2 ? sk : v1->s, seg_v2 ? v2->n : v1->n, seg, GUARD_MAX_SEGMENTS);
            if (env->stage == RAG_GUARD_CONTEXT && any_unrelated(g)) {
                /* the request model judges pieces of the segments: a
                 * request glued into a sentence is a piece of its own
                 * (only the Unicode view has the capitals that show it) */
                if (!(tseg = malloc(GUARD_MAX_SEGMENTS * sizeof *tseg))) { free(seg); return RAG_ERR_NOMEM; }
                for (size_t k = 0; k < nseg && ntseg < GUARD_MAX_SEGMENTS; k++) {
                    if (seg_v2) tseg[ntseg++] = seg[k];
                    else ntseg += rag_guard_task_pieces(v1->s, seg[k].start, seg[k].end, tseg + ntseg, GUARD_MAX_SEGMENTS - ntseg);
                }
                for (size_t k = 0; !seg_v2 && k < ntseg; k++) guard_seg_map(v1, v2, &tseg[k]);
            }
            for (size_t k = 0; !seg_v2 && k < nseg; k++) guard_seg_map(v1, v2, &seg[k]);
        }
        if (env->stage != RAG_GUARD_CONTEXT) {
            /* a question is judged whole and sentence by sentence; a long
             * input or one of many sentences (a pasted document, a
             * gateway's prompt with sources) only as a whole: its
             * sentences are not questions */
            float best = rag_guard_model_score(r->model, sk, n);
            bool question = n <= GUARD_QUESTION_MAX && nseg <= GUARD_QUESTION_SEGMENTS;
            for (size_t k = 0; question && nseg > 1 && k < nseg; k++) {
                if (seg[k].end <= seg[k].start) continue;
                if (rag_guard_model_words(sk + seg[k].start, seg[k].end - seg[k].start) < GUARD_MIN_WORDS) continue;
                float sc = rag_guard_model_score(r->model, sk + seg[k].start, seg[k].end - seg[k].start);
                if (sc > best) best = sc;
            }
            if (best < thr) {
                if (best >= RAG_GUARD_UNCERTAIN && best > env->res->uncertain) {
                    env->res->uncertain = best;
                    map_span(v2, fixed, 0, n, &env->res->uncertain_start, &env->res->uncertain_end);
                }
            } else {
                size_t es, ee;
                map_span(v2, fixed, 0, n, &es, &ee);
                rag_guard_event ev = {RAG_GUARD_EV_MATCH, r->id, r->message ? r->message : r->id, env->stage, act, es, ee, best};
                rc = push_event(env->res, &ev);
            }
            continue;
        }
        if (r->unrelated) {
            rc = detect_unrelated(env, r, act, thr, tseg, ntseg, sk, v2, fixed);
            continue;
        }
        for (size_t k = 0; k < nseg && rc == RAG_OK; k++) {
            if (seg[k].end <= seg[k].start) continue;
            /* a heading or a three-word line says too little to judge */
            if (rag_guard_model_words(sk + seg[k].start, seg[k].end - seg[k].start) < GUARD_MIN_WORDS) continue;
            float sc = rag_guard_model_score(r->model, sk + seg[k].start, seg[k].end - seg[k].start);
            if (sc < thr) {
                if (sc >= RAG_GUARD_UNCERTAIN && sc > env->res->uncertain) {
                    env->res->uncertain = sc;
                    map_span(v2, fixed, seg[k].start, seg[k].end, &env->res->uncertain_start, &env->res->uncertain_end);
                }
                continue;
            }
            size_t es, ee;
            map_span(v2, fixed, seg[k].start, seg[k].end, &es, &ee);
            rag_guard_event ev = {RAG_GUARD_EV_MATCH, r->id, r->message ? r->message : r->id, env->stage, act, es, ee, sc};
            rc = push_event(env->res, &ev);
        }
    }
    free(seg);
    free(tseg);
    return rc;
}

#define GUARD_MAX_DECODED 16
#define GUARD_DECODE_DEPTH 2

/* Scans text (T itself when fixed is NULL, else a decoded run of T whose
 * span is fixed) in every view: the Unicode view with all rules (T) or the
 * skeleton rules (decoded runs), the skeleton when it differs, its ROT13
 * when the text looks ROT13-encoded, and decoded base64/hex/%-runs inside,
 * recursively. */
static int scan_deep(scan_env *env, const char *text, size_t len, const size_t *fixed, int depth) {
    int rc = RAG_OK, nd = 0;
    guard_view v1 = {0}, v2 = {0};
    char *rot = NULL;
    unsigned char *active = NULL;
    uint32_t *tmask = NULL;
    guard_decoded dec[GUARD_MAX_DECODED];
    unsigned changes = 0;
    bool seg_v2 = false;
    if (rag_guard_view_unicode(text, len, &v1) != 0) { rc = RAG_ERR_NOMEM; goto done; }
    if (rag_guard_view_skeleton(&v1, &v2, &changes) != 0) { rc = RAG_ERR_NOMEM; goto done; }
    if (!(active = malloc(env->g->n_rules + 1)) || !(tmask = malloc((env->g->n_trig_items + 1) * sizeof *tmask))) {
        rc = RAG_ERR_NOMEM;
        goto done;
    }
    /* the triggers of the rules run on v1 and v2 are looked for in both
     * (leetspeak folding can join "@" to "ignore" in the skeleton) */
    trig_state ts = {env->g, active, tmask};
    trig_begin(&ts);
    trig_words(&ts, v2.s, v2.n);
    if (changes) trig_words(&ts, v1.s, v1.n);
    if ((rc = scan(env, v1.s, v1.n, 0, false, NULL, fixed != NULL, active, &v1, fixed)) != RAG_OK) goto done;
    if (changes && (rc = scan(env, v2.s, v2.n, 0, false, NULL, true, active, &v2, fixed)) != RAG_OK) goto done;
    seg_v2 = changes & (GUARD_SK_SPACED | GUARD_SK_HYPHEN);
    if ((rc = detect(env, &v1, &v2, v2.s, seg_v2, fixed)) != RAG_OK) goto done;
    if (rag_guard_rot13_suspect(v2.s, v2.n)) {
        if (!(rot = malloc(v2.n + 1))) { rc = RAG_ERR_NOMEM; goto done; }
        memcpy(rot, v2.s, v2.n + 1);
        rag_guard_rot13(rot, v2.n);
        trig_begin(&ts);
        trig_words(&ts, rot, v2.n);
        if ((rc = scan(env, rot, v2.n, 0, false, NULL, true, active, &v2, fixed)) != RAG_OK) goto done;
        if ((rc = detect(env, &v1, &v2, rot, seg_v2, fixed)) != RAG_OK) goto done;
    }
    if (depth < GUARD_DECODE_DEPTH) {
        nd = rag_guard_find_encoded(v1.s, v1.n, dec, GUARD_MAX_DECODED);
        if (nd < 0) { nd = 0; rc = RAG_ERR_NOMEM; goto done; }
        for (int i = 0; i < nd && rc == RAG_OK; i++) {
            size_t span[2];
            if (fixed) { span[0] = fixed[0]; span[1] = fixed[1]; }
            else rag_guard_view_span(&v1, dec[i].start, dec[i].end, &span[0], &span[1]);
            rc = scan_deep(env, dec[i].text, dec[i].len, span, depth + 1);
        }
    }
done:
    free(active);
    free(tmask);
    rag_guard_decoded_release(dec, nd);
    free(rot);
    rag_guard_view_release(&v1);
    rag_guard_view_release(&v2);
    return rc;
}

/* Quarantine in KEEP mode removes the whole sentence around a planted
 * instruction, not just the matched words ("Ignore all previous
 * instructions" is followed by what the attacker wants). A sentence ends at
 * '.', '!' or '?' followed by white space, or at a blank line; the widening
 * is bounded so text without punctuation is not removed wholesale. */
#define SENTENCE_MAX 1000
static bool sentence_end_at(const char *t, size_t len, size_t i) {
    if (t[i] == '.' || t[i] == '!' || t[i] == '?')
        return i + 1 == len || t[i + 1] == ' ' || t[i + 1] == '\n' || t[i + 1] == '\t' || t[i + 1] == '\r';
    return t[i] == '\n' && i + 1 < len && t[i + 1] == '\n';
}

static void widen_to_sentence(const char *t, size_t len, size_t lo, size_t *s, size_t *e) {
    size_t a = *s;
    while (a > lo && *s - a < SENTENCE_MAX && !sentence_end_at(t, len, a - 1)) a--;
    while (a < *s && (t[a] == ' ' || t[a] == '\n' || t[a] == '\t' || t[a] == '\r')) a++;
    size_t b = *e;
    while (b < len && b - *e < SENTENCE_MAX && !sentence_end_at(t, len, b)) b++;
    if (b < len && t[b] != '\n') b++; /* keep the terminator with the sentence */
    *s = a;
    *e = b;
}

static int cmp_events(const void *a, const void *b) {
    const rag_guard_event *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    if (x->end != y->end) return x->end > y->end ? -1 : 1;   /* longer first */
    if (x->action != y->action) return x->action > y->action ? -1 : 1;
    return strcmp(x->rule_id, y->rule_id);
}

/* Sorts events and drops redactions wholly inside an earlier redaction
 * (they change nothing and would only repeat in the log). */
static void normalize_events(rag_guard_result *res) {
    if (res->n_events == 0) return;
    qsort(res->events, res->n_events, sizeof *res->events, cmp_events);
    size_t k = 0, cover_end = 0;
    bool have = false;
    for (size_t i = 0; i < res->n_events; i++) {
        rag_guard_event *e = &res->events[i];
        /* the same rule found again inside its own span (another view of
         * the text, a decoded run) adds nothing */
        bool dup = false;
        for (size_t j = k; j-- > 0 && k - j <= 64 && !dup;) {
            const rag_guard_event *p = &res->events[j];
            dup = p->kind == e->kind && p->start <= e->start && e->end <= p->end && strcmp(p->rule_id, e->rule_id) == 0;
        }
        if (dup) continue;
        if (e->kind == RAG_GUARD_EV_MATCH && e->action == RAG_GUARD_REDACT) {
            if (have && e->end <= cover_end) continue;
            if (!have || e->end > cover_end) cover_end = e->end;
            have = true;
        }
        res->events[k++] = *e;
    }
    res->n_events = k;
}

/* Replacement text of a redaction event. */
static const char *replacement_of(const rag_guard *g, const rag_guard_event *ev, char *tmp, size_t cap) {
    const guard_rule *r = rule_of(g, ev);
    if (r && r->replacement) return r->replacement;
    if (ev->stage == RAG_GUARD_CONTEXT && r && r->action == RAG_GUARD_BLOCK) return QUARANTINE_MARK;
    size_t n = (size_t)snprintf(tmp, cap, "[REDACTED:");
    for (const char *p = ev->rule_id; *p && n + 2 < cap; p++) tmp[n++] = (char)((*p >= 'a' && *p <= 'z') ? *p - 32 : *p);
    tmp[n++] = ']';
    tmp[n] = 0;
    return tmp;
}

typedef struct { char *p; size_t n, cap; } strbuf;

static int sb_put(strbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) return RAG_ERR_NOMEM;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return RAG_OK;
}

/* Appends text[from..to) to out with every redaction event (sorted, spans
 * relative to text) inside it replaced; overlapping redactions merge and
 * take the replacement of the earliest. */
static int rewrite(const rag_guard *g, const char *text, size_t from, size_t to, const rag_guard_event *ev,
                   size_t n_ev, strbuf *out) {
    int rc = RAG_OK;
    size_t pos = from;
    char tmp[GUARD_MAX_ID + 16];
    for (size_t i = 0; i < n_ev && rc == RAG_OK; i++) {
        const rag_guard_event *e = &ev[i];
        if (e->kind != RAG_GUARD_EV_MATCH || e->action != RAG_GUARD_REDACT) continue;
        if (e->start < pos || e->end > to || e->start < from) continue; /* merged or outside */
        size_t end = e->end;
        for (size_t j = i + 1; j < n_ev; j++)
            if (ev[j].kind == RAG_GUARD_EV_MATCH && ev[j].action == RAG_GUARD_REDACT && ev[j].start < end && ev[j].end > end && ev[j].end <= to)
                end = ev[j].end;
        if ((rc = sb_put(out, text + pos, e->start - pos)) != RAG_OK) break;
        const char *rep = replacement_of(g, e, tmp, sizeof tmp);
        rc = sb_put(out, rep, strlen(rep));
        pos = end;
    }
    if (rc == RAG_OK) rc = sb_put(out, text + pos, to - pos);
    return rc;
}

static void summarize(rag_guard_result *res) {
    res->action = RAG_GUARD_ALLOW;
    res->message = NULL;
    for (size_t i = 0; i < res->n_events; i++) {
        if (res->events[i].action > res->action) {
            res->action = res->events[i].action;
            res->message = res->events[i].message;
        }
    }
}

void rag_guard_result_release(rag_guard_result *res) {
    if (!res) return;
    free(res->text);
    free(res->events);
    memset(res, 0, sizeof *res);
}

/* Context stage: a passage is quarantined when a rule whose own action is
 * block fired (in KEEP mode its action became redact). */
static bool any_quarantine(const rag_guard *g, const rag_guard_result *res) {
    for (size_t i = 0; i < res->n_events; i++) {
        const rag_guard_event *e = &res->events[i];
        if (e->stage != RAG_GUARD_CONTEXT || e->kind != RAG_GUARD_EV_MATCH) continue;
        const guard_rule *r = rule_of(g, e);
        if (r && r->action == RAG_GUARD_BLOCK) return true;
    }
    return false;
}

/* The topic words of the question (sorted), for "unrelated:" rules. */
static int question_keys(const char *q, size_t n, uint64_t **out, size_t *nk) {
    *out = NULL;
    *nk = 0;
    if (!q || !n) return RAG_OK;
    if (n > 64 * 1024) n = 64 * 1024;
    char *fixed = NULL;
    size_t fl, used;
    if (rag_guard_utf8_repair(q, n, true, &fixed, &fl, &used) != 0) return RAG_ERR_NOMEM;
    guard_view v1 = {0}, v2 = {0};
    unsigned ch;
    int rc = RAG_ERR_NOMEM;
    if (rag_guard_view_unicode(fixed, fl, &v1) != 0 || rag_guard_view_skeleton(&v1, &v2, &ch) != 0) goto done;
    size_t cap = v2.n / 2 + 1;
    if (!(*out = malloc(cap * sizeof **out))) goto done;
    *nk = rag_guard_content_keys(v2.s, v2.n, *out, cap);
    qsort(*out, *nk, sizeof **out, cmp_key);
    rc = RAG_OK;
done:
    rag_guard_view_release(&v1);
    rag_guard_view_release(&v2);
    free(fixed);
    return rc;
}

int rag_guard_check(const rag_guard *g, rag_guard_stage stage, const char *text, size_t len,
                    int n_sources, rag_guard_result *res) {
    rag_guard_check_opts o = {0};
    o.n_sources = n_sources;
    return rag_guard_check_with(g, stage, text, len, &o, res);
}

int rag_guard_check_with(const rag_guard *g, rag_guard_stage stage, const char *text, size_t len,
                         const rag_guard_check_opts *o, rag_guard_result *res) {
    int rc = RAG_OK;
    pcre2_match_data *md = NULL;
    strbuf out = {0};
    char *fixed = NULL;
    uint64_t *qkeys = NULL;
    size_t n_qkeys = 0;
    rag_guard_check_opts none = {0};
    if (!o) o = &none;
    int n_sources = o->n_sources;
    if (!res) return RAG_ERR_ARG;
    memset(res, 0, sizeof *res);
    if (!g || !g->compiled || (!text && len) || stage > RAG_GUARD_OUTPUT || (!o->question && o->question_len))
        return RAG_ERR_ARG;
    if (!text) text = "";
    if (len > GUARD_NORM_MAX_TEXT) return RAG_ERR_LIMIT;
    /* invalid UTF-8 is repaired (U+FFFD) before anything looks at it: a
     * stray byte must not break a rule, and the result text is valid */
    if (rag_guard_utf8_valid_prefix(text, len) != len) {
        size_t fl;
        if (rag_guard_utf8_repair(text, len, true, &fixed, &fl, NULL) != 0) return RAG_ERR_NOMEM;
        text = fixed;
        len = fl;
        res->repaired = true;
    }
    if (stage == RAG_GUARD_CONTEXT && (rc = question_keys(o->question, o->question_len, &qkeys, &n_qkeys)) != RAG_OK) goto done;
    md = pcre2_match_data_create(1, NULL);
    if (!md) { rc = RAG_ERR_NOMEM; goto done; }
    scan_env env = {g, stage, n_sources, md, res, NULL, text, len, 0, qkeys, n_qkeys};
    if ((rc = scan_deep(&env, text, len, NULL, 0)) != RAG_OK) goto done;
    normalize_events(res);
    summarize(res);
    res->quarantined = stage == RAG_GUARD_CONTEXT && any_quarantine(g, res);
    if ((rc = rewrite(g, text, 0, len, res->events, res->n_events, &out)) != RAG_OK) goto done;
    if (!out.p && (rc = sb_put(&out, "", 0)) != RAG_OK) goto done;
    res->text = out.p;
    res->text_len = out.n;
    out.p = NULL;
    audit_events(g, res->events, res->n_events);
done:
    free(out.p);
    free(fixed);
    free(qkeys);
    if (md) pcre2_match_data_free(md);
    if (rc != RAG_OK) rag_guard_result_release(res);
    return rc;
}

/* ------------------------------------------------------------ streams */

struct rag_guard_stream {
    const rag_guard *g;
    rag_guard_stage stage;
    int n_sources;
    pcre2_match_data *md;
    strbuf buf;             /* [0, ctx) emitted context, [ctx, n) pending */
    size_t ctx;
    size_t consumed;        /* stream offset of buf[ctx] */
    strbuf out;             /* what the last call emits */
    rag_guard_result res;   /* events so far, absolute spans */
    rag_guard_result tmp;   /* events of one scan */
    unsigned char *limit_seen;
    unsigned char tail[4];  /* an incomplete UTF-8 sequence at the end of the last piece */
    size_t tail_n;
    bool blocked;
    /* prompt-leak check (rag_guard_stream_protect): shingles of the
     * protected text, sorted; the last words of the answer */
    uint64_t *shingles;
    size_t n_shingles;
    uint64_t ring[GUARD_LEAK_WORDS];
    size_t n_words;         /* words of the answer so far */
    uint64_t word_h;        /* hash of the word being read */
    bool in_word, leak;
    /* canary check (rag_guard_stream_canary): windows of GUARD_CANARY_WIN
     * folded characters of the canary and its encodings, sorted; the last
     * folded characters of the answer */
    uint64_t *cwins;
    size_t n_cwins;
    uint64_t cwin;          /* the last 8 folded characters, one per byte */
    size_t cn;              /* folded characters so far */
    unsigned char clead[2]; /* a full-width form's first bytes */
    size_t clead_n;
    bool canary;            /* the answer repeated the canary */
};

int rag_guard_stream_new(const rag_guard *g, rag_guard_stage stage, int n_sources, rag_guard_stream **out) {
    if (!out) return RAG_ERR_ARG;
    *out = NULL;
    if (!g || !g->compiled || stage > RAG_GUARD_OUTPUT) return RAG_ERR_ARG;
    rag_guard_stream *s = calloc(1, sizeof *s);
    if (!s) return RAG_ERR_NOMEM;
    s->g = g;
    s->stage = stage;
    s->n_sources = n_sources;
    s->md = pcre2_match_data_create(1, NULL);
    s->limit_seen = calloc(g->n_rules / 8 + 1, 1);
    if (!s->md || !s->limit_seen || sb_put(&s->buf, "", 0) != RAG_OK || sb_put(&s->out, "", 0) != RAG_OK) {
        rag_guard_stream_free(s);
        return RAG_ERR_NOMEM;
    }
    *out = s;
    return RAG_OK;
}

void rag_guard_stream_free(rag_guard_stream *s) {
    if (!s) return;
    if (s->md) pcre2_match_data_free(s->md);
    free(s->buf.p);
    free(s->out.p);
    free(s->limit_seen);
    free(s->shingles);
    free(s->cwins);
    rag_guard_result_release(&s->res);
    rag_guard_result_release(&s->tmp);
    free(s);
}

/* ---- prompt leaks: word shingles of a protected text ---- */

static bool leak_word_byte(unsigned char c) {
    return c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static uint64_t leak_shingle(const uint64_t *ring, size_t n_words) {
    uint64_t h = 0;
    for (size_t k = 0; k < GUARD_LEAK_WORDS; k++)
        h = (h ^ ring[(n_words + k) % GUARD_LEAK_WORDS]) * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    return h;
}

/* Feeds bytes to a word reader: calls back with each word's hash when the
 * word ends (ASCII letters folded to lower case). */
typedef struct { uint64_t h; bool in; } leak_reader;
static bool leak_read(leak_reader *r, unsigned char c, uint64_t *word) {
    if (leak_word_byte(c)) {
        if (!r->in) { r->h = 1469598103934665603ull; r->in = true; }
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
        r->h = (r->h ^ c) * 1099511628211ull;
        return false;
    }
    if (!r->in) return false;
    r->in = false;
    *word = r->h;
    return true;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int rag_guard_stream_protect(rag_guard_stream *s, const char *text, size_t len) {
    if (!s || (!text && len)) return RAG_ERR_ARG;
    leak_reader r = {0, false};
    uint64_t ring[GUARD_LEAK_WORDS], w;
    size_t nw = 0;
    for (size_t i = 0; i <= len; i++) {
        if (!leak_read(&r, i < len ? (unsigned char)text[i] : ' ', &w)) continue;
        ring[nw % GUARD_LEAK_WORDS] = w;
        nw++;
        if (nw < GUARD_LEAK_WORDS) continue;
        uint64_t *ns = realloc(s->shingles, (s->n_shingles + 1) * sizeof *ns);
        if (!ns) return RAG_ERR_NOMEM;
        s->shingles = ns;
        s->shingles[s->n_shingles++] = leak_shingle(ring, nw);
    }
    if (s->n_shingles) qsort(s->shingles, s->n_shingles, sizeof *s->shingles, cmp_u64);
    return RAG_OK;
}

/* ---- the canary: a random string in the system prompt that no answer
 * may repeat, even partly, spaced out or encoded ----
 * Both the canary's forms and the answer are folded to a stream of ASCII
 * letters and digits (lower case; full-width forms to ASCII; everything
 * else — spaces, dashes, zero-width characters, markup — dropped); any
 * GUARD_CANARY_WIN consecutive characters of a form found in the answer's
 * stream is a leak. The forms: the canary, reversed, ROT13, hex and base64
 * (at each of the three byte alignments). */
#define GUARD_CANARY_WIN 8

static int canary_fold(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return c;
    return -1;
}

/* Adds the windows of the folded form f[0..n) to s->cwins. */
static int canary_add(rag_guard_stream *s, const char *f, size_t n) {
    char fold[512];
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof fold; i++) {
        int c = canary_fold((unsigned char)f[i]);
        if (c >= 0) fold[k++] = (char)c;
    }
    if (k < GUARD_CANARY_WIN) return RAG_OK;
    uint64_t *nw = realloc(s->cwins, (s->n_cwins + k - GUARD_CANARY_WIN + 1) * sizeof *nw);
    if (!nw) return RAG_ERR_NOMEM;
    s->cwins = nw;
    for (size_t i = 0; i + GUARD_CANARY_WIN <= k; i++) {
        uint64_t w = 0;
        for (size_t j = 0; j < GUARD_CANARY_WIN; j++) w = (w << 8) | (unsigned char)fold[i + j];
        s->cwins[s->n_cwins++] = w;
    }
    return RAG_OK;
}

int rag_guard_stream_canary(rag_guard_stream *s, const char *canary, size_t len) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (!s || (!canary && len) || len > 128) return RAG_ERR_ARG;
    char form[2 + 128 * 2 + 8] = {0};
    int rc = canary_add(s, canary, len);
    for (size_t i = 0; i < len; i++) form[i] = canary[len - 1 - i];                 /* reversed */
    if (rc == RAG_OK) rc = canary_add(s, form, len);
    for (size_t i = 0; i < len; i++) {                                           /* ROT13 */
        char c = canary[i];
        if (c >= 'a' && c <= 'z') c = (char)('a' + (c - 'a' + 13) % 26);
        else if (c >= 'A' && c <= 'Z') c = (char)('A' + (c - 'A' + 13) % 26);
        form[i] = c;
    }
    if (rc == RAG_OK) rc = canary_add(s, form, len);
    for (size_t i = 0; i < len; i++) {                                           /* hex */
        form[2 * i] = "0123456789abcdef"[(unsigned char)canary[i] >> 4];
        form[2 * i + 1] = "0123456789abcdef"[(unsigned char)canary[i] & 15];
    }
    if (rc == RAG_OK) rc = canary_add(s, form, 2 * len);
    /* base64 of the canary after 0, 1 or 2 other bytes: the characters
     * that depend on the canary's bytes alone */
    for (size_t o = 0; o < 3 && rc == RAG_OK; o++) {
        unsigned char in[2 + 128];
        memset(in, 0, o);
        if (len) memcpy(in + o, canary, len);
        size_t n = o + len, k = 0;
        for (size_t i = 0; i + 3 <= n; i += 3) {
            unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
            for (int j = 0; j < 4; j++) form[k++] = b64[(v >> (18 - 6 * j)) & 63];
        }
        size_t skip = o ? 4 : 0;                /* the group holding the other bytes */
        if (k > skip) rc = canary_add(s, form + skip, k - skip);
    }
    if (rc != RAG_OK) return rc;
    if (s->n_cwins) qsort(s->cwins, s->n_cwins, sizeof *s->cwins, cmp_u64);
    return RAG_OK;
}

/* Reads appended answer bytes; sets s->canary when the folded answer holds
 * a window of the canary's forms. */
static void canary_scan(rag_guard_stream *s, const char *p, size_t n) {
    if (!s->n_cwins || s->canary) return;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)p[i];
        int c = -1;
        if (s->clead_n == 0 && b == 0xEF) { s->clead[s->clead_n++] = b; continue; }
        if (s->clead_n == 1) {
            if (b == 0xBC || b == 0xBD) { s->clead[s->clead_n++] = b; continue; }
            s->clead_n = 0;
        } else if (s->clead_n == 2) {
            /* full-width forms U+FF10..FF19, FF21..FF3A, FF41..FF5A */
            unsigned cp = 0xFF00u + ((unsigned)(s->clead[1] - 0xBC) << 6) + (b & 0x3Fu);
            s->clead_n = 0;
            if (cp >= 0xFF10 && cp <= 0xFF19) c = '0' + (int)(cp - 0xFF10);
            else if (cp >= 0xFF21 && cp <= 0xFF3A) c = 'a' + (int)(cp - 0xFF21);
            else if (cp >= 0xFF41 && cp <= 0xFF5A) c = 'a' + (int)(cp - 0xFF41);
            if (c < 0) continue;
        }
        if (c < 0 && (c = canary_fold(b)) < 0) continue;
        s->cwin = (s->cwin << 8) | (unsigned)c;
        if (++s->cn < GUARD_CANARY_WIN) continue;
        if (bsearch(&s->cwin, s->cwins, s->n_cwins, sizeof s->cwin, cmp_u64)) { s->canary = true; break; }
    }
}

/* Reads appended answer bytes; sets s->leak when the last words repeat a
 * shingle of the protected text. final: the end of the answer ends a word. */
static void leak_scan(rag_guard_stream *s, const char *p, size_t n, bool final) {
    if (!s->n_shingles || s->leak) return;
    leak_reader r = {s->word_h, s->in_word};
    uint64_t w;
    for (size_t i = 0; i <= n; i++) {
        if (i == n && !final) break;
        if (!leak_read(&r, i < n ? (unsigned char)p[i] : ' ', &w)) continue;
        s->ring[s->n_words % GUARD_LEAK_WORDS] = w;
        s->n_words++;
        if (s->n_words < GUARD_LEAK_WORDS) continue;
        uint64_t h = leak_shingle(s->ring, s->n_words);
        if (bsearch(&h, s->shingles, s->n_shingles, sizeof h, cmp_u64)) { s->leak = true; break; }
    }
    s->word_h = r.h;
    s->in_word = r.in;
}

const rag_guard_result *rag_guard_stream_result(const rag_guard_stream *s) {
    return s ? &s->res : NULL;
}

/* Scans the pending text, emits what is final (redacted) and keeps the rest.
 * final: the stream ended, nothing can grow any more. */
static int stream_process(rag_guard_stream *s, bool final) {
    int rc;
    const rag_guard *g = s->g;
    size_t len = s->buf.n, hold = len;
    if (final && s->in_word) leak_scan(s, "", 0, true);
    if (s->canary) {
        /* the answer repeats the canary of the system prompt */
        rag_guard_event ev = {RAG_GUARD_EV_MATCH, "out.canary", "the answer repeats the system prompt's canary",
                              s->stage, RAG_GUARD_BLOCK, s->consumed, s->consumed + (len - s->ctx), 0};
        if ((rc = push_event(&s->res, &ev)) != RAG_OK) return rc;
        audit_events(g, s->res.events + s->res.n_events - 1, 1);
        summarize(&s->res);
        s->blocked = true;
        s->out.n = 0;
        s->out.p[0] = 0;
        return RAG_ERR_BLOCKED;
    }
    if (s->leak) {
        /* the answer repeats the system prompt: nothing more is shown */
        rag_guard_event ev = {RAG_GUARD_EV_MATCH, "out.prompt-leak", "the answer repeats the system prompt",
                              s->stage, RAG_GUARD_BLOCK, s->consumed, s->consumed + (len - s->ctx), 0};
        if ((rc = push_event(&s->res, &ev)) != RAG_OK) return rc;
        audit_events(g, s->res.events + s->res.n_events - 1, 1);
        summarize(&s->res);
        s->blocked = true;
        s->out.n = 0;
        s->out.p[0] = 0;
        return RAG_ERR_BLOCKED;
    }
    s->tmp.n_events = 0;
    s->out.n = 0;
    s->out.p[0] = 0;
    /* the Unicode view of what is buffered (the identity for ASCII) */
    guard_view v1;
    if (rag_guard_view_unicode(s->buf.p, len, &v1) != 0) return RAG_ERR_NOMEM;
    scan_env env = {g, s->stage, s->n_sources, s->md, &s->tmp, s->limit_seen, s->buf.p, len, s->ctx, NULL, 0};
    rc = scan(&env, v1.s, v1.n, rag_guard_view_find(&v1, s->ctx), !final, &hold, false, NULL, &v1, NULL);
    rag_guard_view_release(&v1);
    if (rc != RAG_OK) return rc;
    normalize_events(&s->tmp);
    size_t cut = final ? len : hold;
    size_t max_hold = g->params.stream_max_hold;
    bool forced = false;
    if (len - cut > max_hold) { cut = len - max_hold; forced = true; }
    /* never cut through a (final) match: back to its start, or, when that
     * would hold more than allowed, forward to its end */
    for (bool moved = true; moved;) {
        moved = false;
        for (size_t i = 0; i < s->tmp.n_events; i++) {
            const rag_guard_event *e = &s->tmp.events[i];
            if (e->start < cut && e->end > cut) {
                cut = (forced && len - e->start > max_hold) ? e->end : e->start;
                moved = true;
            }
        }
    }
    /* a match that starts in the context already emitted cannot be held
     * back: never cut before the context's end */
    if (cut < s->ctx) cut = s->ctx;
    while (cut > s->ctx && cut < len && ((unsigned char)s->buf.p[cut] & 0xC0) == 0x80) cut--;
    /* keep events that are final: inside the emitted part, and limits */
    size_t k = 0;
    bool block = false;
    for (size_t i = 0; i < s->tmp.n_events; i++) {
        rag_guard_event e = s->tmp.events[i];
        if (e.kind == RAG_GUARD_EV_MATCH && e.end > cut && e.action != RAG_GUARD_BLOCK) continue;
        if (e.action == RAG_GUARD_BLOCK) block = true;
        s->tmp.events[k++] = e;
    }
    s->tmp.n_events = k;
    if (!block && (rc = rewrite(g, s->buf.p, s->ctx, cut, s->tmp.events, k, &s->out)) != RAG_OK) return rc;
    /* record events with stream offsets */
    size_t first = s->res.n_events;
    for (size_t i = 0; i < k; i++) {
        rag_guard_event e = s->tmp.events[i];
        e.start = e.start - s->ctx + s->consumed;
        e.end = e.end - s->ctx + s->consumed;
        if ((rc = push_event(&s->res, &e)) != RAG_OK) return rc;
    }
    if (s->res.n_events > first) audit_events(g, s->res.events + first, s->res.n_events - first);
    summarize(&s->res);
    s->res.quarantined = s->stage == RAG_GUARD_CONTEXT && any_quarantine(g, &s->res);
    if (block) {
        s->blocked = true;
        s->out.n = 0;
        s->out.p[0] = 0;
        return RAG_ERR_BLOCKED;
    }
    /* keep GUARD_STREAM_CTX bytes of emitted text for lookbehind */
    s->consumed += cut - s->ctx;
    size_t keep_from = cut > GUARD_STREAM_CTX ? cut - GUARD_STREAM_CTX : 0;
    memmove(s->buf.p, s->buf.p + keep_from, len - keep_from);
    s->buf.n = len - keep_from;
    s->buf.p[s->buf.n] = 0;
    s->ctx = cut - keep_from;
    return RAG_OK;
}

/* Appends a piece to the buffer with invalid UTF-8 replaced by U+FFFD; an
 * incomplete sequence at the end waits in s->tail for the next piece (a
 * token boundary can split a character), unless final. */
static int stream_append(rag_guard_stream *s, const char *piece, size_t len, bool final) {
    char *joined = NULL, *fixed = NULL;
    const char *src = piece;
    size_t n = len, fl, used;
    int rc = RAG_OK;
    if (s->tail_n) {
        if (!(joined = malloc(s->tail_n + len + 1))) return RAG_ERR_NOMEM;
        memcpy(joined, s->tail, s->tail_n);
        if (len) memcpy(joined + s->tail_n, piece, len);
        src = joined;
        n = s->tail_n + len;
    }
    if (rag_guard_utf8_repair(src, n, final, &fixed, &fl, &used) != 0) { free(joined); return RAG_ERR_NOMEM; }
    if (fl != n || used != n) s->res.repaired = true;
    s->tail_n = n - used;                 /* at most 3 bytes */
    if (s->tail_n > sizeof s->tail) s->tail_n = sizeof s->tail;
    memcpy(s->tail, src + used, s->tail_n);
    rc = sb_put(&s->buf, fixed, fl);
    leak_scan(s, fixed, fl, final);
    canary_scan(s, fixed, fl);
    free(joined);
    free(fixed);
    return rc;
}

int rag_guard_stream_feed(rag_guard_stream *s, const char *piece, size_t len, const char **out, size_t *out_len) {
    int rc;
    if (!s || !out || !out_len || (!piece && len)) return RAG_ERR_ARG;
    *out = "";
    *out_len = 0;
    if (s->blocked) return RAG_ERR_BLOCKED;
    if (len && (rc = stream_append(s, piece, len, false)) != RAG_OK) return rc;
    if ((rc = stream_process(s, false)) != RAG_OK) return rc;
    *out = s->out.p;
    *out_len = s->out.n;
    return RAG_OK;
}

int rag_guard_stream_finish(rag_guard_stream *s, const char **out, size_t *out_len) {
    int rc;
    if (!s || !out || !out_len) return RAG_ERR_ARG;
    *out = "";
    *out_len = 0;
    if (s->blocked) return RAG_ERR_BLOCKED;
    if (s->tail_n && (rc = stream_append(s, "", 0, true)) != RAG_OK) return rc;
    if ((rc = stream_process(s, true)) != RAG_OK) return rc;
    *out = s->out.p;
    *out_len = s->out.n;
    return RAG_OK;
}
