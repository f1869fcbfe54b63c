/* opt.c — the one option parser of the mrag commands: option tables,
 * options anywhere among the operands, --name=value, -kVALUE, `--` ends
 * the options; every usage error names the option and what it accepts and
 * makes the command exit 2 (contracts in app.h). */
#include "app/app.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Contract: see app.h. */
void app_args_init(app_args *p, const char *cmd, const app_opt *const *tables, int argc, char **argv) {
    memset(p, 0, sizeof *p);
    p->cmd = cmd;
    p->tables = tables;
    p->argc = argc;
    p->argv = argv;
    p->i = 1;
}

const char *(*app_arg_origin)(const char *arg);

/* Contract: see app.h. */
int app_usage_error(const app_args *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const char *origin = p->arg && app_arg_origin ? app_arg_origin(p->arg) : NULL;
    fprintf(stderr, "mrag %s: ", p->cmd);
    if (origin) fprintf(stderr, "%s: ", origin);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see `mrag %s --help`)\n", p->cmd);
    va_end(ap);
    return 2;
}

static const app_opt *find_long(const app_args *p, const char *name, size_t len) {
    for (const app_opt *const *t = p->tables; t && *t; t++)
        for (const app_opt *o = *t; o->id; o++)
            if (o->name && strlen(o->name) == len && strncmp(o->name, name, len) == 0) return o;
    return NULL;
}

static const app_opt *find_short(const app_args *p, char c) {
    for (const app_opt *const *t = p->tables; t && *t; t++)
        for (const app_opt *o = *t; o->id; o++)
            if (o->short_name && o->short_name == c) return o;
    return NULL;
}

/* "dense|bm25|hybrid" -> "dense, bm25 or hybrid" in buf. */
static const char *alternatives(const char *arg, char *buf, size_t cap) {
    size_t n = 0;
    const char *s = arg;
    buf[0] = 0;
    while (*s && n + 1 < cap) {
        const char *bar = strchr(s, '|');
        size_t l = bar ? (size_t)(bar - s) : strlen(s);
        const char *sep = n == 0 ? "" : bar ? ", " : " or ";
        int w = snprintf(buf + n, cap - n, "%s%.*s", sep, (int)l, s);
        if (w < 0 || (size_t)w >= cap - n) break;
        n += (size_t)w;
        s = bar ? bar + 1 : s + l;
    }
    return buf;
}

/* What an option's value may be, for a message: "one of dense, bm25 or
 * hybrid" or "N". */
static void describe_arg(const app_opt *o, char *buf, size_t cap) {
    char alt[256];
    if (strchr(o->arg, '|')) snprintf(buf, cap, "one of %s", alternatives(o->arg, alt, sizeof alt));
    else snprintf(buf, cap, "%s", o->arg);
}

/* Contract: see app.h. */
int app_args_next(app_args *p, const char **val) {
    *val = NULL;
    p->opt = NULL;
    p->arg = NULL;
    while (p->i < p->argc) {
        char *a = p->argv[p->i++];
        if (p->rest || a[0] != '-' || a[1] == 0) {     /* an operand ("-" too: stdin) */
            p->argv[1 + p->npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            p->rest = true;
            continue;
        }
        const app_opt *o;
        const char *inline_val = NULL;
        p->arg = a;
        if (a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            o = find_long(p, name, len);
            snprintf(p->optname, sizeof p->optname, "--%.*s", (int)(len < 60 ? len : 60), name);
            if (!o) return (app_usage_error(p, "unknown option '%s'", p->optname), -1);
            if (eq) inline_val = eq + 1;
        } else {
            o = find_short(p, a[1]);
            snprintf(p->optname, sizeof p->optname, "-%c", a[1]);
            if (!o) return (app_usage_error(p, "unknown option '%s'", p->optname), -1);
            if (a[2]) {
                if (!o->arg) return (app_usage_error(p, "%s takes no value (in '%s')", p->optname, a), -1);
                inline_val = a + 2;
            }
        }
        p->opt = o;
        if (!o->arg) {
            if (inline_val) return (app_usage_error(p, "%s takes no value", p->optname), -1);
            return o->id;
        }
        if (inline_val) {
            *val = inline_val;
            return o->id;
        }
        if (p->i >= p->argc) {
            char what[300];
            describe_arg(o, what, sizeof what);
            return (app_usage_error(p, "%s needs a value: %s", p->optname, what), -1);
        }
        *val = p->argv[p->i++];
        return o->id;
    }
    return 0;
}

/* Contract: see app.h. */
bool app_opt_int(const app_args *p, const char *v, int lo, int hi, int *out) {
    if (app_parse_int(v, lo, hi, out)) return true;
    app_usage_error(p, "%s: '%s' is not a whole number from %d to %d", p->optname, v, lo, hi);
    return false;
}

/* Contract: see app.h. */
bool app_opt_long(const app_args *p, const char *v, long lo, long hi, long *out) {
    if (app_parse_long(v, lo, hi, out)) return true;
    app_usage_error(p, "%s: '%s' is not a whole number from %ld to %ld", p->optname, v, lo, hi);
    return false;
}

/* Contract: see app.h. */
bool app_opt_double(const app_args *p, const char *v, double lo, double hi, double *out) {
    if (app_parse_double(v, lo, hi, out)) return true;
    app_usage_error(p, "%s: '%s' is not a number from %g to %g", p->optname, v, lo, hi);
    return false;
}

/* Contract: see app.h. */
int app_opt_choice(const app_args *p, const char *v) {
    const char *alts = p->opt && p->opt->arg ? p->opt->arg : "";
    int idx = 0;
    for (const char *s = alts; *s; idx++) {
        const char *bar = strchr(s, '|');
        size_t l = bar ? (size_t)(bar - s) : strlen(s);
        if (strlen(v) == l && strncmp(v, s, l) == 0) return idx;
        if (!bar) break;
        s = bar + 1;
    }
    char alt[256];
    if (strchr(alts, '|')) app_usage_error(p, "%s: '%s' is not one of %s", p->optname, v, alternatives(alts, alt, sizeof alt));
    else app_usage_error(p, "%s: '%s': the only value is %s", p->optname, v, alts);
    return -1;
}

/* Contract: see app.h. */
bool app_opt_bad(const app_args *p, const char *v, const char *why) {
    app_usage_error(p, "%s: '%s': %s", p->optname, v, why);
    return false;
}
