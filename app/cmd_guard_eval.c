/* cmd_guard_eval.c — `mrag guard-train` (build the learned injection
 * detector from JSONL) and `mrag guard-eval` (detection and false-positive
 * rates of the whole guard on a labelled JSONL file). */
#include <cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "rag/rag.h"

#define JSONL_MAX_LINE (16u << 20)
#define EVAL_MAX_RULE_DIRS 32

typedef struct {
    char *text;
    size_t len;
    int label;          /* 1 injection, 0 benign, -1 none */
    float weight;
    char *lang, *set, *stage, *id, *question;
} row;

typedef struct {
    row *r;
    size_t n, cap;
} rows;

static void rows_free(rows *v) {
    for (size_t i = 0; i < v->n; i++) {
        free(v->r[i].text); free(v->r[i].lang); free(v->r[i].set); free(v->r[i].stage); free(v->r[i].id);
        free(v->r[i].question);
    }
    free(v->r);
    memset(v, 0, sizeof *v);
}

static char *dup_str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsString(v) && v->valuestring) return strdup(v->valuestring);
    if (cJSON_IsNumber(v)) {
        char b[32];
        snprintf(b, sizeof b, "%g", v->valuedouble);
        return strdup(b);
    }
    return NULL;
}

/* Reads JSONL rows {"text", "label", optional "weight", "lang", "set",
 * "stage", "id", "question"}. A line that is not such an object is an error naming the
 * file and line. need_label: rows without a label are an error. */
static int read_rows(const char *path, bool need_label, rows *out) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) return app_error("%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if ((size_t)len > JSONL_MAX_LINE) { rc = app_error("%s:%ld: line longer than %u bytes", path, lineno, JSONL_MAX_LINE); break; }
        size_t a = 0;
        while (a < (size_t)len && (line[a] == ' ' || line[a] == '\t' || line[a] == '\r' || line[a] == '\n')) a++;
        if (a == (size_t)len) continue;
        cJSON *o = cJSON_ParseWithLength(line, (size_t)len);
        const cJSON *t = o ? cJSON_GetObjectItemCaseSensitive(o, "text") : NULL;
        const cJSON *l = o ? cJSON_GetObjectItemCaseSensitive(o, "label") : NULL;
        if (!cJSON_IsObject(o) || !cJSON_IsString(t) || (need_label && !cJSON_IsNumber(l) && !cJSON_IsBool(l))) {
            cJSON_Delete(o);
            rc = app_error("%s:%ld: expected a JSON object with \"text\" (string)%s", path, lineno,
                           need_label ? " and \"label\" (0 or 1)" : "");
            break;
        }
        if (out->n == out->cap) {
            size_t nc = out->cap ? out->cap * 2 : 1024;
            row *nr = realloc(out->r, nc * sizeof *nr);
            if (!nr) { cJSON_Delete(o); rc = app_error("out of memory"); break; }
            out->r = nr;
            out->cap = nc;
        }
        row *r = &out->r[out->n++];
        memset(r, 0, sizeof *r);
        r->text = strdup(t->valuestring);
        r->len = r->text ? strlen(r->text) : 0;
        r->label = cJSON_IsBool(l) ? cJSON_IsTrue(l) : cJSON_IsNumber(l) ? (l->valuedouble != 0) : -1;
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(o, "weight");
        r->weight = cJSON_IsNumber(w) && w->valuedouble > 0 ? (float)w->valuedouble : 1.0f;
        r->lang = dup_str(o, "lang");
        r->set = dup_str(o, "set");
        r->stage = dup_str(o, "stage");
        r->id = dup_str(o, "id");
        r->question = dup_str(o, "question");
        cJSON_Delete(o);
        if (!r->text) { rc = app_error("out of memory"); break; }
    }
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

/* ------------------------------------------------------------ guard-train */

static void train_usage(FILE *out) {
    fprintf(out,
            "usage: mrag guard-train -o MODEL [options] FILE.jsonl...\n"
            "\n"
            "Trains the learned injection detector: logistic regression over hashed word\n"
            "and character n-grams of the normalised text. Rows are JSON objects\n"
            "{\"text\": ..., \"label\": 1 (injection) or 0 (benign), \"weight\": optional}.\n"
            "One thread and a fixed seed: the same rows give the same file, byte for byte.\n"
            "\n"
            "options:\n"
            "  -o, --output MODEL   the model file to write (e.g. data/guardrails/context.model)\n"
            "  --bits N             2^N weights, one byte each (12..22, default 18)\n"
            "  --epochs N           passes over the rows (default 10)\n"
            "  --seed N             shuffling seed (default 1)\n"
            "  --lr X               AdaGrad step (default 0.25)\n"
            "  --l2 X               L2 penalty (default 1e-4)\n"
            "  --whole-sentence     features of the whole sentence (its length class, a\n"
            "                       question mark, an imperative start, ...) weigh the same\n"
            "                       in a long sentence as in a short one (model format 2;\n"
            "                       the request model is trained so)\n"
            "  --info TEXT          a provenance line for the model header\n");
}

enum { T_BITS = 256, T_EPOCHS, T_SEED, T_LR, T_L2, T_INFO, T_WHOLE };
static const app_opt guard_train_opts[] = {
    {"output", 'o', "MODEL", 'o'},
    {"bits", 0, "N", T_BITS},
    {"epochs", 0, "N", T_EPOCHS},
    {"seed", 0, "N", T_SEED},
    {"lr", 0, "X", T_LR},
    {"l2", 0, "X", T_L2},
    {"info", 0, "TEXT", T_INFO},
    {"whole-sentence", 0, NULL, T_WHOLE},
    {0},
};
const app_opt *const app_guard_train_opts[] = {guard_train_opts, NULL};

int app_cmd_guard_train(int argc, char **argv) {
    if (app_wants_help(argc, argv)) { train_usage(stdout); return 0; }
    rag_guard_train_params p = rag_guard_train_default_params();
    const char *outp = NULL, *info = NULL;
    const char *files[64];
    size_t nfiles = 0;
    app_args ap;
    app_args_init(&ap, "guard-train", app_guard_train_opts, argc, argv);
    const char *val;
    int id;
    double d;
    while ((id = app_args_next(&ap, &val)) > 0) {
        bool ok = true;
        switch (id) {
        case 'o': outp = val; break;
        case T_BITS: ok = app_opt_int(&ap, val, 12, 22, &p.bits); break;
        case T_EPOCHS: ok = app_opt_int(&ap, val, 1, 1000, &p.epochs); break;
        case T_SEED:
            if (!app_parse_u64(val, &p.seed)) ok = app_opt_bad(&ap, val, "not a whole number from 0 to 2^64-1");
            break;
        case T_LR:
            if ((ok = app_opt_double(&ap, val, 0, 1e6, &d)) && !(d > 0)) ok = app_opt_bad(&ap, val, "must be above 0");
            p.lr = d;
            break;
        case T_L2: ok = app_opt_double(&ap, val, 0, 1e6, &d); p.l2 = d; break;
        case T_INFO: info = val; break;
        case T_WHOLE: p.whole = true; break;
        }
        if (!ok) return 2;
    }
    if (id < 0) return 2;
    if ((size_t)ap.npos > sizeof files / sizeof files[0]) return app_usage_error(&ap, "too many files (at most 64)");
    for (int i = 1; i <= ap.npos; i++) files[nfiles++] = argv[i];
    if (!outp || nfiles == 0) return app_usage_error(&ap, "%s", !outp ? "no -o MODEL" : "no FILE.jsonl");
    rows v = {0};
    int rc = 1;
    const char **texts = NULL;
    size_t *lens = NULL;
    int *labels = NULL;
    float *weights = NULL;
    for (size_t i = 0; i < nfiles; i++)
        if (read_rows(files[i], true, &v) != 0) goto done;
    if (!(texts = malloc(v.n * sizeof *texts)) || !(lens = malloc(v.n * sizeof *lens)) ||
        !(labels = malloc(v.n * sizeof *labels)) || !(weights = malloc(v.n * sizeof *weights))) {
        app_error("out of memory");
        goto done;
    }
    size_t npos = 0;
    for (size_t i = 0; i < v.n; i++) {
        texts[i] = v.r[i].text;
        lens[i] = v.r[i].len;
        labels[i] = v.r[i].label;
        weights[i] = v.r[i].weight;
        npos += labels[i] == 1;
    }
    char err[600];
    if (rag_guard_train(&p, texts, lens, labels, weights, v.n, info, outp, err, sizeof err) != RAG_OK) {
        app_error("guard-train: %s", err);
        goto done;
    }
    fprintf(stderr, "mrag: guard-train: %zu rows (%zu injections) -> %s\n", v.n, npos, outp);
    rc = 0;
done:
    free(texts);
    free(lens);
    free(labels);
    free(weights);
    rows_free(&v);
    return rc;
}

/* ------------------------------------------------------------ guard-eval */

static void eval_usage(FILE *out) {
    fprintf(out,
            "usage: mrag guard-eval FILE.jsonl [options]\n"
            "\n"
            "Runs the guardrails (rules and the learned detector) over labelled rows\n"
            "{\"text\", \"label\": 1 injection / 0 benign, optional \"lang\", \"set\",\n"
            "\"stage\", \"id\", \"question\"} and prints the detection rate (injections blocked, or\n"
            "quarantined at the context stage) and the false-positive rate (benign rows\n"
            "blocked or quarantined), in total and per set and language, then the misses\n"
            "and false alarms.\n"
            "\n"
            "options:\n"
            "  --stage S         input (default), context or output; a row's \"stage\" wins\n"
            "  --rules DIR       also load DIR/*.rules (or one FILE); repeatable\n"
            "  --no-defaults     only the --rules rules\n"
            "  --no-question     ignore the rows' \"question\" (the user's question that a\n"
            "                    context-stage passage was retrieved for)\n"
            "  --list N          list at most N misses and N false alarms (default 20; 0 none)\n"
            "  --json            one JSON object: totals, groups, misses, false alarms\n");
}

typedef struct {
    char key[96];
    size_t pos, hit, neg, fp;
} group;

static group *group_get(group *g, size_t *n, size_t cap, const char *key) {
    for (size_t i = 0; i < *n; i++) if (strcmp(g[i].key, key) == 0) return &g[i];
    if (*n == cap) return NULL;
    memset(&g[*n], 0, sizeof g[*n]);
    snprintf(g[*n].key, sizeof g[*n].key, "%s", key);
    return &g[(*n)++];
}

static double pct(size_t a, size_t b) { return b ? 100.0 * (double)a / (double)b : 0.0; }

/* Prints s on one line, control characters as spaces, at most max bytes
 * (never cutting a UTF-8 character). */
static void print_short(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n > max) { n = max; while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--; }
    for (size_t i = 0; i < n; i++) putchar((unsigned char)s[i] < 0x20 || s[i] == 0x7F ? ' ' : s[i]);
    if (n < strlen(s)) fputs("…", stdout);
}

enum { E_STAGE = 256, E_RULES, E_NO_DEFAULTS, E_LIST, E_JSON, E_NO_QUESTION };
static const app_opt guard_eval_opts[] = {
    {"stage", 0, "input|context|output", E_STAGE},
    {"rules", 0, "DIR", E_RULES},
    {"no-defaults", 0, NULL, E_NO_DEFAULTS},
    {"list", 0, "N", E_LIST},
    {"json", 0, NULL, E_JSON},
    {"no-question", 0, NULL, E_NO_QUESTION},
    {0},
};
const app_opt *const app_guard_eval_opts[] = {guard_eval_opts, NULL};

int app_cmd_guard_eval(int argc, char **argv) {
    if (app_wants_help(argc, argv)) { eval_usage(stdout); return 0; }
    const char *dirs[EVAL_MAX_RULE_DIRS];
    size_t n_dirs = 0;
    rag_guard_params gp = rag_guard_default_params();
    rag_guard_stage def_stage = RAG_GUARD_INPUT;
    const char *file = NULL;
    bool json = false, no_question = false;
    long list = 20;
    app_args ap;
    app_args_init(&ap, "guard-eval", app_guard_eval_opts, argc, argv);
    const char *val;
    int id;
    while ((id = app_args_next(&ap, &val)) > 0) {
        switch (id) {
        case E_STAGE:
            if (app_opt_choice(&ap, val) < 0) return 2;
            def_stage = (rag_guard_stage)rag_guard_stage_parse(val);
            break;
        case E_RULES:
            if (n_dirs == EVAL_MAX_RULE_DIRS) return app_usage_error(&ap, "too many --rules (at most %d)", EVAL_MAX_RULE_DIRS);
            dirs[n_dirs++] = val;
            break;
        case E_NO_DEFAULTS: gp.no_defaults = true; break;
        case E_LIST:
            if (!app_opt_long(&ap, val, 0, 1000000000L, &list)) return 2;
            break;
        case E_JSON: json = true; break;
        case E_NO_QUESTION: no_question = true; break;
        }
    }
    if (id < 0) return 2;
    if (ap.npos != 1) return app_usage_error(&ap, "%s", ap.npos ? "one FILE only" : "no FILE.jsonl");
    file = argv[1];
    gp.rule_dirs = dirs;
    gp.n_rule_dirs = n_dirs;
    rag_guard *g = NULL;
    char err[700];
    if (app_guard_load(&gp, &g, err, sizeof err) != RAG_OK) return app_error("guard-eval: %s", err);
    app_guard_warnings(g);
    rows v = {0};
    int rc = 1;
    cJSON *out = NULL, *misses = NULL, *fas = NULL;
    group groups[256];
    size_t ng = 0;
    if (read_rows(file, true, &v) != 0) goto done;
    if (json) {
        out = cJSON_CreateObject();
        misses = cJSON_CreateArray();
        fas = cJSON_CreateArray();
        if (!out || !misses || !fas) { app_error("out of memory"); goto done; }
    }
    size_t pos = 0, hit = 0, neg = 0, fp = 0;
    long listed_miss = 0, listed_fa = 0;
    for (size_t i = 0; i < v.n; i++) {
        row *r = &v.r[i];
        rag_guard_stage st = def_stage;
        if (r->stage) {
            int s = rag_guard_stage_parse(r->stage);
            if (s < 0) { app_error("guard-eval: %s: row %zu: unknown stage '%s'", file, i + 1, r->stage); goto done; }
            st = (rag_guard_stage)s;
        }
        rag_guard_result res;
        rag_guard_check_opts co = {0};
        if (r->question && !no_question) { co.question = r->question; co.question_len = strlen(r->question); }
        if (rag_guard_check_with(g, st, r->text, r->len, &co, &res) != RAG_OK) { app_error("guard-eval: out of memory"); goto done; }
        bool caught = res.action == RAG_GUARD_BLOCK || res.quarantined;
        const char *why = NULL;
        float score = 0;
        for (size_t k = 0; k < res.n_events; k++)
            if (res.events[k].action == RAG_GUARD_BLOCK || (st == RAG_GUARD_CONTEXT && res.quarantined && res.events[k].action == RAG_GUARD_REDACT)) {
                if (!why) why = res.events[k].rule_id;
                if (res.events[k].score > score) score = res.events[k].score;
            }
        char k1[96], k2[96];
        snprintf(k1, sizeof k1, "set %s", r->set ? r->set : "-");
        snprintf(k2, sizeof k2, "lang %s", r->lang ? r->lang : "-");
        const char *keys[2] = {k1, k2};
        for (int q = 0; q < 2; q++) {
            group *gr = group_get(groups, &ng, sizeof groups / sizeof groups[0], keys[q]);
            if (!gr) continue;
            if (r->label == 1) { gr->pos++; gr->hit += caught; }
            else { gr->neg++; gr->fp += caught; }
        }
        if (r->label == 1) { pos++; hit += caught; }
        else { neg++; fp += caught; }
        bool miss = r->label == 1 && !caught, fa = r->label == 0 && caught;
        if ((miss && listed_miss < list) || (fa && listed_fa < list)) {
            if (miss) listed_miss++; else listed_fa++;
            if (json) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "row", (double)(i + 1));
                if (r->id) cJSON_AddStringToObject(e, "id", r->id);
                if (r->set) cJSON_AddStringToObject(e, "set", r->set);
                if (r->lang) cJSON_AddStringToObject(e, "lang", r->lang);
                cJSON_AddStringToObject(e, "text", res.repaired ? "(not UTF-8)" : r->text);
                if (why) cJSON_AddStringToObject(e, "rule", why);
                if (why && score > 0) cJSON_AddNumberToObject(e, "score", score);
                cJSON_AddItemToArray(miss ? misses : fas, e);
            } else {
                printf("%s row %zu%s%s [%s%s%s]%s%s ", miss ? "MISS" : "FALSE ALARM", i + 1, r->id ? " id " : "",
                       r->id ? r->id : "", r->set ? r->set : "-", r->lang ? " " : "", r->lang ? r->lang : "",
                       why ? " by " : "", why ? why : "");
                print_short(r->text, 160);
                putchar('\n');
            }
        }
        rag_guard_result_release(&res);
    }
    if (json) {
        cJSON_AddStringToObject(out, "file", file);
        cJSON_AddStringToObject(out, "stage", rag_guard_stage_name(def_stage));
        cJSON_AddNumberToObject(out, "injections", (double)pos);
        cJSON_AddNumberToObject(out, "detected", (double)hit);
        cJSON_AddNumberToObject(out, "detection_rate", pct(hit, pos) / 100.0);
        cJSON_AddNumberToObject(out, "benign", (double)neg);
        cJSON_AddNumberToObject(out, "false_positives", (double)fp);
        cJSON_AddNumberToObject(out, "false_positive_rate", pct(fp, neg) / 100.0);
        cJSON *gs = cJSON_AddArrayToObject(out, "groups");
        for (size_t i = 0; i < ng; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "group", groups[i].key);
            cJSON_AddNumberToObject(e, "injections", (double)groups[i].pos);
            cJSON_AddNumberToObject(e, "detected", (double)groups[i].hit);
            cJSON_AddNumberToObject(e, "benign", (double)groups[i].neg);
            cJSON_AddNumberToObject(e, "false_positives", (double)groups[i].fp);
            cJSON_AddItemToArray(gs, e);
        }
        cJSON_AddItemToObject(out, "misses", misses);
        cJSON_AddItemToObject(out, "false_alarms", fas);
        misses = fas = NULL;
        char *s = cJSON_PrintUnformatted(out);
        if (!s) { app_error("out of memory"); goto done; }
        printf("%s\n", s);
        free(s);
    } else {
        printf("\n%-28s %9s %9s %9s %9s\n", "group", "attacks", "detected", "benign", "false pos");
        for (size_t i = 0; i < ng; i++) {
            printf("%-28s %9zu %8.1f%% %9zu %8.2f%%\n", groups[i].key, groups[i].pos, pct(groups[i].hit, groups[i].pos),
                   groups[i].neg, pct(groups[i].fp, groups[i].neg));
        }
        printf("%-28s %9zu %8.1f%% %9zu %8.2f%%\n", "total", pos, pct(hit, pos), neg, pct(fp, neg));
    }
    rc = 0;
done:
    cJSON_Delete(out);
    cJSON_Delete(misses);
    cJSON_Delete(fas);
    rows_free(&v);
    rag_guard_free(g);
    return rc;
}
