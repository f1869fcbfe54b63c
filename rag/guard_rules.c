/* guard_rules.c — the guardrail rule-file parser: blocks of "key: value"
 * lines separated by blank lines (format in docs/guardrails.md). Rule files
 * are user input: sizes are bounded and every error names file and line. */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "rag/guard_internal.h"
#include "rag/guard_model_internal.h"

typedef struct {
    rag_guard *g;
    const char *name;
    guard_rule *blocks;     /* parsed blocks of this file */
    size_t n, cap;
    /* terms collected for the current block (joined with '\n') */
    char *terms;
    size_t terms_len;
} parse_state;

static int perr(parse_state *ps, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(parse_state *ps, int line, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ps->g->err, sizeof ps->g->err, "%.100s:%d: %s", ps->name, line, msg);
    return RAG_ERR_FORMAT;
}

void rag_guard_rule_clear(guard_rule *r) {
    free(r->triggers);
    free(r->model_path);
    rag_guard_model_free(r->model);
    free(r->id);
    free(r->pattern);
    free(r->message);
    free(r->replacement);
    free(r->origin);
    free(r->pattern_origin);
    if (r->code) pcre2_code_free(r->code);
    if (r->code_ascii) pcre2_code_free(r->code_ascii);
    memset(r, 0, sizeof *r);
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* Appends s[0..n) (with sep before it when *dst is non-empty) to a heap
 * string, bounded by GUARD_MAX_VALUE. */
static int append_value(char **dst, const char *sep, const char *s, size_t n) {
    size_t old = *dst ? strlen(*dst) : 0;
    size_t sl = old ? strlen(sep) : 0;
    if (old + sl + n > GUARD_MAX_VALUE) return RAG_ERR_LIMIT;
    char *d = realloc(*dst, old + sl + n + 1);
    if (!d) return RAG_ERR_NOMEM;
    memcpy(d + old, sep, sl);
    memcpy(d + old + sl, s, n);
    d[old + sl + n] = 0;
    *dst = d;
    return RAG_OK;
}

static bool valid_id(const char *s, size_t n) {
    if (n == 0 || n > GUARD_MAX_ID) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-') return false;
    }
    return true;
}

/* Splits a list value on commas/spaces and calls fn on each word. */
static bool next_word(const char **p, const char *end, const char **w, size_t *wn) {
    const char *s = *p;
    while (s < end && (*s == ',' || *s == ' ' || *s == '\t')) s++;
    if (s == end) return false;
    const char *e = s;
    while (e < end && *e != ',' && *e != ' ' && *e != '\t') e++;
    *w = s;
    *wn = (size_t)(e - s);
    *p = e;
    return true;
}

static int parse_stage(parse_state *ps, int line, const char *v, size_t n, unsigned *out) {
    const char *p = v, *end = v + n, *w;
    size_t wn;
    unsigned m = 0;
    while (next_word(&p, end, &w, &wn)) {
        if (wn == 5 && memcmp(w, "input", 5) == 0) m |= 1u << RAG_GUARD_INPUT;
        else if (wn == 7 && memcmp(w, "context", 7) == 0) m |= 1u << RAG_GUARD_CONTEXT;
        else if (wn == 6 && memcmp(w, "output", 6) == 0) m |= 1u << RAG_GUARD_OUTPUT;
        else if (wn == 3 && memcmp(w, "all", 3) == 0) m |= 7u;
        else return perr(ps, line, "unknown stage '%.*s' (input, context, output, all)", (int)(wn > 40 ? 40 : wn), w);
    }
    if (!m) return perr(ps, line, "empty stage list");
    *out = m;
    return RAG_OK;
}

static int parse_flags(parse_state *ps, int line, const char *v, size_t n, uint32_t *out) {
    uint32_t o = 0;
    for (size_t i = 0; i < n; i++) {
        switch (v[i]) {
        case 'i': o |= PCRE2_CASELESS; break;
        case 'm': o |= PCRE2_MULTILINE; break;
        case 's': o |= PCRE2_DOTALL; break;
        case 'x': o |= PCRE2_EXTENDED; break;
        case 'n': o |= PCRE2_NO_AUTO_CAPTURE; break;
        case 'u': break; /* UTF and UCP are always on */
        case ' ': case ',': case '\t': break;
        default:
            return perr(ps, line, "unknown flag '%c' (i m s x n u)", isprint((unsigned char)v[i]) ? v[i] : '?');
        }
    }
    *out = o;
    return RAG_OK;
}

/* Builds a pattern from the collected terms: each term literal (ASCII
 * punctuation escaped, whitespace runs matching \s+), bounded by non-word
 * characters, case-insensitive via the rule's flags. */
static int terms_to_pattern(parse_state *ps, int line, guard_rule *r) {
    const char *p = ps->terms, *end = ps->terms + ps->terms_len;
    char *pat = NULL;
    int rc = append_value(&pat, "", "(?<!\\w)(?:", 10);
    size_t nterms = 0;
    while (rc == RAG_OK && p < end) {
        const char *e = p;
        while (e < end && *e != ',' && *e != '\n') e++;
        const char *a = p, *b = e;
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        p = e < end ? e + 1 : e;
        if (a == b) continue;
        if (++nterms > GUARD_MAX_TERMS) { rc = perr(ps, line, "more than %d terms", GUARD_MAX_TERMS); break; }
        if (nterms > 1) rc = append_value(&pat, "", "|", 1);
        for (const char *c = a; rc == RAG_OK && c < b; c++) {
            unsigned char ch = (unsigned char)*c;
            if (isspace(ch)) {
                while (c + 1 < b && isspace((unsigned char)c[1])) c++;
                rc = append_value(&pat, "", "\\s+", 3);
            } else if (ch < 0x80 && !isalnum(ch)) {
                char esc[2] = {'\\', (char)ch};
                rc = append_value(&pat, "", esc, 2);
            } else {
                rc = append_value(&pat, "", (const char *)c, 1);
            }
        }
    }
    if (rc == RAG_OK && nterms == 0) rc = perr(ps, line, "empty terms list");
    if (rc == RAG_OK) rc = append_value(&pat, "", ")(?!\\w)", 7);
    if (rc == RAG_ERR_LIMIT) rc = perr(ps, line, "terms too long (limit %u bytes)", GUARD_MAX_VALUE);
    if (rc != RAG_OK) { free(pat); return rc; }
    free(r->pattern);
    r->pattern = pat;
    r->set |= GUARD_F_PATTERN;
    return RAG_OK;
}

/* Finishes the current block: checks it has an id, converts terms. */
static int end_block(parse_state *ps, guard_rule *r, int line, int start_line) {
    int rc = RAG_OK;
    if (!r->id) {
        rc = perr(ps, start_line, "rule without 'id:'");
    } else if (r->model_path && ((r->set & GUARD_F_PATTERN) || ps->terms)) {
        rc = perr(ps, start_line, "rule '%s' has both 'model:' and a pattern", r->id);
    } else if (ps->terms) {
        if (r->set & GUARD_F_PATTERN) rc = perr(ps, start_line, "rule '%s' has both 'pattern:' and 'terms:'", r->id);
        else rc = terms_to_pattern(ps, start_line, r);
    }
    free(ps->terms);
    ps->terms = NULL;
    ps->terms_len = 0;
    if (rc != RAG_OK) return rc;
    if (ps->n == ps->cap) {
        size_t nc = ps->cap ? ps->cap * 2 : 16;
        guard_rule *nb = realloc(ps->blocks, nc * sizeof *nb);
        if (!nb) return RAG_ERR_NOMEM;
        ps->blocks = nb;
        ps->cap = nc;
    }
    ps->blocks[ps->n++] = *r;
    memset(r, 0, sizeof *r);
    (void)line;
    return RAG_OK;
}

/* Sets a key's value on the block being parsed. cont: a continuation line. */
static int set_key(parse_state *ps, guard_rule *r, int line, const char *key, size_t kn,
                   const char *v, size_t vn, bool cont) {
#define KEY(s) (kn == sizeof(s) - 1 && memcmp(key, s, kn) == 0)
#define ONCE(flag) do { if (!cont && (r->set & (flag))) return perr(ps, line, "duplicate key '%.*s'", (int)kn, key); r->set |= (flag); } while (0)
    int rc;
    if (KEY("id")) {
        if (cont || r->id) return perr(ps, line, "duplicate key 'id'");
        if (!valid_id(v, vn)) return perr(ps, line, "bad rule id (1..%d of A-Z a-z 0-9 . _ -)", GUARD_MAX_ID);
        r->id = dup_n(v, vn);
        if (!r->id) return RAG_ERR_NOMEM;
        char origin[200];
        snprintf(origin, sizeof origin, "%.150s:%d", ps->name, line);
        r->origin = strdup(origin);
        return r->origin ? RAG_OK : RAG_ERR_NOMEM;
    }
    if (KEY("stage") || KEY("stages")) {
        unsigned m = 0;
        if ((rc = parse_stage(ps, line, v, vn, &m)) != RAG_OK) return rc;
        if (cont) r->stages |= m; else { ONCE(GUARD_F_STAGE); r->stages = m; }
        return RAG_OK;
    }
    if (KEY("action")) {
        if (cont) return perr(ps, line, "'action' takes one line");
        ONCE(GUARD_F_ACTION);
        if (vn == 5 && memcmp(v, "block", 5) == 0) r->action = RAG_GUARD_BLOCK;
        else if (vn == 6 && memcmp(v, "redact", 6) == 0) r->action = RAG_GUARD_REDACT;
        else if (vn == 4 && memcmp(v, "flag", 4) == 0) r->action = RAG_GUARD_FLAG;
        else return perr(ps, line, "unknown action '%.*s' (block, redact, flag)", (int)(vn > 40 ? 40 : vn), v);
        return RAG_OK;
    }
    if (KEY("flags")) {
        uint32_t o = 0;
        if ((rc = parse_flags(ps, line, v, vn, &o)) != RAG_OK) return rc;
        if (cont) r->options |= o; else { ONCE(GUARD_F_FLAGS); r->options = o; }
        return RAG_OK;
    }
    if (KEY("enabled")) {
        if (cont) return perr(ps, line, "'enabled' takes one line");
        ONCE(GUARD_F_ENABLED);
        if ((vn == 3 && memcmp(v, "yes", 3) == 0) || (vn == 4 && memcmp(v, "true", 4) == 0)) r->enabled = true;
        else if ((vn == 2 && memcmp(v, "no", 2) == 0) || (vn == 5 && memcmp(v, "false", 5) == 0)) r->enabled = false;
        else return perr(ps, line, "'enabled' is yes or no");
        return RAG_OK;
    }
    if (KEY("trigger") || KEY("triggers")) {
        /* items separated by spaces or commas; an item is groups joined by
         * '+', a group is word prefixes joined by '|' (lower case, 2..16
         * bytes each; "word$" is a whole word): the rule runs only on a
         * text where, for some item, every group has a prefix that starts
         * a word (docs/guardrails.md) */
        const char *p = v, *e = v + vn, *w;
        size_t wn;
        if (!cont) { ONCE(GUARD_F_TRIGGER); free(r->triggers); r->triggers = NULL; }
        while (next_word(&p, e, &w, &wn)) {
            int groups = 1;
            for (size_t a = 0; a <= wn;) {
                size_t b = a;
                while (b < wn && w[b] != '+' && w[b] != '|') b++;
                size_t core = b - a - (b > a && w[b - 1] == '$');   /* "no$": the whole word */
                if (core < 2 || core > 16)
                    return perr(ps, line, "trigger '%.*s': '%.*s' is not 2..16 bytes", (int)(wn > 60 ? 60 : wn), w,
                                (int)(b - a > 40 ? 40 : b - a), w + a);
                for (size_t k = a; k < a + core; k++) {
                    if (w[k] >= 'A' && w[k] <= 'Z') return perr(ps, line, "trigger '%.*s' is not lower case", (int)wn, w);
                    if (w[k] == '$') return perr(ps, line, "trigger '%.*s': '$' only ends a word", (int)wn, w);
                }
                if (b < wn && w[b] == '+' && ++groups > GUARD_MAX_TRIGGER_GROUPS)
                    return perr(ps, line, "trigger '%.*s' has more than %d groups", (int)(wn > 60 ? 60 : wn), w,
                                GUARD_MAX_TRIGGER_GROUPS);
                a = b + 1;
            }
            if ((rc = append_value(&r->triggers, "\n", w, wn)) != RAG_OK)
                return rc == RAG_ERR_LIMIT ? perr(ps, line, "triggers too long") : rc;
        }
        if (!r->triggers) return perr(ps, line, "empty trigger list");
        return RAG_OK;
    }
    if (KEY("model")) {
        if (cont) return perr(ps, line, "'model' takes one line");
        ONCE(GUARD_F_MODEL);
        if (vn == 0 || vn > 1000) return perr(ps, line, "'model' names a model file");
        /* relative to the folder of the rule file */
        const char *slash = strrchr(ps->name, '/');
        size_t dn = (v[0] == '/' || !slash) ? 0 : (size_t)(slash - ps->name) + 1;
        free(r->model_path);
        if (!(r->model_path = malloc(dn + vn + 1))) return RAG_ERR_NOMEM;
        memcpy(r->model_path, ps->name, dn);
        memcpy(r->model_path + dn, v, vn);
        r->model_path[dn + vn] = 0;
        return RAG_OK;
    }
    if (KEY("threshold")) {
        if (cont) return perr(ps, line, "'threshold' takes one line");
        ONCE(GUARD_F_THRESHOLD);
        /* "0.7", or per stage: "input 0.6, context 0.8" */
        const char *p = v, *e = v + vn, *w;
        size_t wn;
        int stage = -1;
        bool any = false;
        for (int k = 0; k < 3; k++) r->threshold[k] = 0.5f;
        while (next_word(&p, e, &w, &wn)) {
            if (wn == 5 && memcmp(w, "input", 5) == 0) { stage = RAG_GUARD_INPUT; continue; }
            if (wn == 7 && memcmp(w, "context", 7) == 0) { stage = RAG_GUARD_CONTEXT; continue; }
            if (wn == 6 && memcmp(w, "output", 6) == 0) { stage = RAG_GUARD_OUTPUT; continue; }
            char num[32];
            if (wn >= sizeof num) return perr(ps, line, "bad threshold");
            memcpy(num, w, wn);
            num[wn] = 0;
            char *end;
            double t = strtod(num, &end);
            if (*end || !(t > 0 && t < 1)) return perr(ps, line, "threshold '%s' is not a number between 0 and 1", num);
            if (stage < 0) for (int k = 0; k < 3; k++) r->threshold[k] = (float)t;
            else r->threshold[stage] = (float)t;
            stage = -1;
            any = true;
        }
        if (!any) return perr(ps, line, "'threshold' wants a number (or 'input 0.6, context 0.8')");
        return RAG_OK;
    }
    if (KEY("skeleton")) {
        if (cont) return perr(ps, line, "'skeleton' takes one line");
        ONCE(GUARD_F_SKELETON);
        if ((vn == 3 && memcmp(v, "yes", 3) == 0) || (vn == 4 && memcmp(v, "true", 4) == 0)) r->skeleton = true;
        else if ((vn == 2 && memcmp(v, "no", 2) == 0) || (vn == 5 && memcmp(v, "false", 5) == 0)) r->skeleton = false;
        else return perr(ps, line, "'skeleton' is yes or no");
        return RAG_OK;
    }
    if (KEY("unrelated")) {
        /* model rules at the context stage: a segment fires only when its
         * words are unrelated to the rest of the passage and the question */
        if (cont) return perr(ps, line, "'unrelated' takes one line");
        ONCE(GUARD_F_UNRELATED);
        if ((vn == 3 && memcmp(v, "yes", 3) == 0) || (vn == 4 && memcmp(v, "true", 4) == 0)) r->unrelated = true;
        else if ((vn == 2 && memcmp(v, "no", 2) == 0) || (vn == 5 && memcmp(v, "false", 5) == 0)) r->unrelated = false;
        else return perr(ps, line, "'unrelated' is yes or no");
        return RAG_OK;
    }
    if (KEY("validator")) {
        if (cont) return perr(ps, line, "'validator' takes one line");
        ONCE(GUARD_F_VALIDATOR);
        bool ok;
        r->validator = rag_guard_validator_by_name(v, vn, &ok);
        if (!ok && !(vn == 4 && memcmp(v, "none", 4) == 0))
            return perr(ps, line, "unknown validator '%.*s' (luhn, iban, steuer_id, ipv4, ipv6, phone, email, citation, none)",
                        (int)(vn > 40 ? 40 : vn), v);
        return RAG_OK;
    }
    char **dst = NULL;
    const char *sep = " ";
    unsigned flag = 0;
    if ((KEY("pattern") || KEY("terms")) && !cont) {
        char origin[200];
        snprintf(origin, sizeof origin, "%.150s:%d", ps->name, line);
        free(r->pattern_origin);
        if (!(r->pattern_origin = strdup(origin))) return RAG_ERR_NOMEM;
    }
    if (KEY("pattern")) { dst = &r->pattern; sep = ""; flag = GUARD_F_PATTERN; }
    else if (KEY("message")) { dst = &r->message; flag = GUARD_F_MESSAGE; }
    else if (KEY("replacement")) { dst = &r->replacement; sep = ""; flag = GUARD_F_REPLACEMENT; }
    else if (KEY("terms")) {
        if (ps->terms_len + vn + 1 > GUARD_MAX_VALUE) return perr(ps, line, "terms too long (limit %u bytes)", GUARD_MAX_VALUE);
        char *t = realloc(ps->terms, ps->terms_len + vn + 2);
        if (!t) return RAG_ERR_NOMEM;
        t[ps->terms_len++] = '\n';
        memcpy(t + ps->terms_len, v, vn);
        ps->terms_len += vn;
        t[ps->terms_len] = 0;
        ps->terms = t;
        return RAG_OK;
    } else {
        return perr(ps, line, "unknown key '%.*s'", (int)(kn > 40 ? 40 : kn), key);
    }
    if (!cont) {
        ONCE(flag);
        free(*dst);
        *dst = NULL;
        /* an explicitly empty value (replacement: "") is allowed */
        if (vn == 2 && v[0] == '"' && v[1] == '"') vn = 0;
        rc = append_value(dst, "", v, vn);
    } else {
        rc = append_value(dst, sep, v, vn);
    }
    if (rc == RAG_ERR_LIMIT) return perr(ps, line, "value too long (limit %u bytes)", GUARD_MAX_VALUE);
    return rc;
#undef KEY
#undef ONCE
}

/* Merges parsed blocks into the guard: a new id is appended (enabled unless
 * it says otherwise); an existing id has the named fields replaced. */
static int merge_blocks(parse_state *ps) {
    rag_guard *g = ps->g;
    for (size_t i = 0; i < ps->n; i++) {
        guard_rule *b = &ps->blocks[i];
        guard_rule *r = NULL;
        for (size_t k = 0; k < g->n_rules; k++)
            if (strcmp(g->rules[k].id, b->id) == 0) { r = &g->rules[k]; break; }
        if (!r) {
            if (g->n_rules >= GUARD_MAX_RULES) {
                snprintf(g->err, sizeof g->err, "%.150s: more than %d rules", ps->name, GUARD_MAX_RULES);
                return RAG_ERR_LIMIT;
            }
            if (g->n_rules == g->cap_rules) {
                size_t nc = g->cap_rules ? g->cap_rules * 2 : 32;
                guard_rule *nr = realloc(g->rules, nc * sizeof *nr);
                if (!nr) return RAG_ERR_NOMEM;
                g->rules = nr;
                g->cap_rules = nc;
            }
            if (!(b->set & GUARD_F_ENABLED)) b->enabled = true;
            b->is_default = g->loading_defaults;
            g->rules[g->n_rules++] = *b;
            memset(b, 0, sizeof *b);
            continue;
        }
        /* a user file that weakens a default rule says so out loud */
        if (r->is_default && !g->loading_defaults) {
            const char *where = b->origin ? b->origin : ps->name;
            if ((b->set & GUARD_F_ENABLED) && !b->enabled && r->enabled)
                rag_guard_warn(g, "default rule '%s' (%s) is disabled by %s", r->id, r->origin ? r->origin : "?", where);
            else if ((b->set & GUARD_F_ACTION) && b->action < r->action)
                rag_guard_warn(g, "default rule '%s' is weakened from %s to %s by %s", r->id,
                           rag_guard_action_name(r->action), rag_guard_action_name(b->action), where);
            else if ((b->set & GUARD_F_STAGE) && (r->stages & ~b->stages))
                rag_guard_warn(g, "default rule '%s' no longer runs at every stage it did, by %s", r->id, where);
            else if (b->set & (GUARD_F_PATTERN | GUARD_F_VALIDATOR))
                rag_guard_warn(g, "default rule '%s' gets a new %s from %s", r->id,
                           (b->set & GUARD_F_PATTERN) ? "pattern" : "validator", where);
        }
#define TAKE(f, field) do { if (b->set & (f)) { free(r->field); r->field = b->field; b->field = NULL; } } while (0)
        TAKE(GUARD_F_PATTERN, pattern);
        TAKE(GUARD_F_MESSAGE, message);
        TAKE(GUARD_F_REPLACEMENT, replacement);
#undef TAKE
        if (b->set & GUARD_F_PATTERN) { free(r->pattern_origin); r->pattern_origin = b->pattern_origin; b->pattern_origin = NULL; }
        if (b->set & GUARD_F_STAGE) r->stages = b->stages;
        if (b->set & GUARD_F_ACTION) r->action = b->action;
        if (b->set & GUARD_F_FLAGS) r->options = b->options;
        if (b->set & GUARD_F_VALIDATOR) r->validator = b->validator;
        if (b->set & GUARD_F_ENABLED) r->enabled = b->enabled;
        if (b->set & GUARD_F_SKELETON) r->skeleton = b->skeleton;
        if (b->set & GUARD_F_UNRELATED) r->unrelated = b->unrelated;
        if (b->set & GUARD_F_TRIGGER) { free(r->triggers); r->triggers = b->triggers; b->triggers = NULL; }
        /* a new pattern without new triggers: the old triggers may not fit it */
        else if (b->set & GUARD_F_PATTERN) { free(r->triggers); r->triggers = NULL; }
        if (b->set & GUARD_F_MODEL) { free(r->model_path); r->model_path = b->model_path; b->model_path = NULL; }
        if (b->set & GUARD_F_THRESHOLD) memcpy(r->threshold, b->threshold, sizeof r->threshold);
        r->set |= b->set;
        free(r->origin);
        r->origin = b->origin;
        b->origin = NULL;
        rag_guard_rule_clear(b);
    }
    return RAG_OK;
}

int rag_guard_parse_rules(rag_guard *g, const char *name, const char *text, size_t len) {
    int rc = RAG_OK;
    parse_state ps = {.g = g, .name = name ? name : "(rules)"};
    guard_rule cur;
    memset(&cur, 0, sizeof cur);
    bool in_block = false;
    int block_line = 0, line = 0;
    char last_key[32] = "";
    size_t last_kn = 0;
    if (len > GUARD_MAX_FILE_BYTES) {
        rc = perr(&ps, 0, "file larger than %u bytes", GUARD_MAX_FILE_BYTES);
        goto done;
    }
    if (memchr(text, 0, len)) {
        rc = perr(&ps, 0, "NUL byte in rule file");
        goto done;
    }
    size_t pos = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) pos = 3; /* UTF-8 BOM */
    while (pos < len) {
        line++;
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n && s[n - 1] == '\r') n--;
        size_t a = 0;
        while (a < n && (s[a] == ' ' || s[a] == '\t')) a++;
        if (a == n) { /* blank line ends a block */
            if (in_block && (rc = end_block(&ps, &cur, line, block_line)) != RAG_OK) goto done;
            in_block = false;
            last_kn = 0;
            continue;
        }
        if (s[a] == '#') continue;
        size_t b = n;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
        if (a > 0) { /* continuation of the previous key */
            if (!in_block || last_kn == 0) {
                rc = perr(&ps, line, "indented line without a key before it");
                goto done;
            }
            if ((rc = set_key(&ps, &cur, line, last_key, last_kn, s + a, b - a, true)) != RAG_OK) goto done;
            continue;
        }
        const char *colon = memchr(s, ':', b);
        if (!colon) {
            rc = perr(&ps, line, "expected 'key: value'");
            goto done;
        }
        size_t kn = (size_t)(colon - s);
        while (kn && (s[kn - 1] == ' ' || s[kn - 1] == '\t')) kn--;
        if (kn == 0 || kn >= sizeof last_key) {
            rc = perr(&ps, line, "expected 'key: value'");
            goto done;
        }
        size_t v = (size_t)(colon - s) + 1;
        while (v < b && (s[v] == ' ' || s[v] == '\t')) v++;
        if (!in_block) { in_block = true; block_line = line; }
        memcpy(last_key, s, kn);
        last_key[kn] = 0;
        last_kn = kn;
        if ((rc = set_key(&ps, &cur, line, s, kn, s + v, b - v, false)) != RAG_OK) goto done;
    }
    if (in_block && (rc = end_block(&ps, &cur, line, block_line)) != RAG_OK) goto done;
    rc = merge_blocks(&ps);
done:
    if (rc == RAG_ERR_NOMEM) snprintf(g->err, sizeof g->err, "%.150s: out of memory", ps.name);
    rag_guard_rule_clear(&cur);
    for (size_t i = 0; i < ps.n; i++) rag_guard_rule_clear(&ps.blocks[i]);
    free(ps.blocks);
    free(ps.terms);
    return rc;
}
