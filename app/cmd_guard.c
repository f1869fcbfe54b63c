/* cmd_guard.c — `mrag guard-check`: shows which guardrail rules fire on a text. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "rag/rag.h"

#define GUARD_MAX_RULE_DIRS 32
#define GUARD_MAX_STDIN (64u << 20)

static void guard_usage(FILE *out) {
    fprintf(out,
            "usage: mrag guard-check [options] TEXT      (TEXT '-' reads stdin)\n"
            "       mrag guard-check --jsonl [options] < texts.jsonl\n"
            "\n"
            "Runs the guardrail rules of one stage over TEXT and shows what fires:\n"
            "rule id, action, byte span and message, then the text after redaction.\n"
            "\n"
            "options:\n"
            "  --stage S         input (default), context or output\n"
            "  --rules DIR       also load DIR/*.rules (or one FILE) after the defaults and\n"
            "                    $MRAG_GUARDRAILS; repeatable; a rule with an existing id\n"
            "                    changes that rule (disabling or weakening a default rule\n"
            "                    is reported on stderr)\n"
            "  --no-defaults     do not load the default rules (said on stderr)\n"
            "  --sources N       number of sources given to the model (output stage:\n"
            "                    citations [n] with n > N are removed; default 0)\n"
            "  --question Q      context stage: the user's question the passage was\n"
            "                    retrieved for (a request in the passage unrelated to it\n"
            "                    and to the rest of the passage is quarantined)\n"
            "  --quarantine M    context stage: drop (default) or keep a passage with\n"
            "                    a planted instruction (kept with the instruction removed)\n"
            "  --audit FILE      append the audit log (JSON lines) to FILE\n"
            "  --json            print one JSON object\n"
            "  --jsonl           many texts in one process: read JSON lines {\"text\",\n"
            "                    optional \"stage\", \"sources\", \"question\", \"id\"} from stdin, write\n"
            "                    one result object per line (as --json, with \"id\")\n"
            "  --list            list the loaded rules and exit\n"
            "\n"
            "Exit status: 0 allowed, flagged or redacted; 2 blocked or a usage error\n"
            "(the message is on stderr); 1 on errors (with --jsonl: 0, or 1 when a\n"
            "line could not be read).\n");
}

void app_guard_warnings(const struct rag_guard *g) {
    for (size_t i = 0; i < rag_guard_warning_count(g); i++)
        fprintf(stderr, "mrag: guardrails: warning: %s\n", rag_guard_warning(g, i));
}

/* Reads stdin up to GUARD_MAX_STDIN bytes; owned, free with free(). */
static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) break;
        if (n == cap) {
            if (cap >= GUARD_MAX_STDIN) { free(buf); return NULL; }
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) { free(buf); return NULL; }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf) buf[n] = 0;
    *len = n;
    return buf;
}

static void print_human(const rag_guard_result *res, rag_guard_stage stage) {
    printf("stage %s: %s", rag_guard_stage_name(stage), rag_guard_action_name(res->action));
    if (res->message) printf(" (%s)", res->message);
    if (res->quarantined) printf(" [quarantined]");
    printf("\n");
    if (res->repaired) printf("  note: the text was not valid UTF-8; invalid bytes were replaced by U+FFFD before checking\n");
    for (size_t i = 0; i < res->n_events; i++) {
        const rag_guard_event *e = &res->events[i];
        printf("  %-6s %-32s bytes %zu-%zu%s  %s\n", rag_guard_action_name(e->action), e->rule_id, e->start, e->end,
               e->kind == RAG_GUARD_EV_LIMIT ? " LIMIT (not fully checked)" : "", e->message);
    }
    if (res->action != RAG_GUARD_BLOCK) printf("text: %.*s\n", (int)res->text_len, res->text);
}

static int print_json(const rag_guard_result *res, rag_guard_stage stage, const cJSON *id) {
    int rc = 1;
    cJSON *o = cJSON_CreateObject(), *evs = NULL;
    char *s = NULL;
    if (!o) goto done;
    if (id) cJSON_AddItemToObject(o, "id", cJSON_Duplicate(id, true));
    cJSON_AddStringToObject(o, "stage", rag_guard_stage_name(stage));
    cJSON_AddStringToObject(o, "action", rag_guard_action_name(res->action));
    if (res->message) cJSON_AddStringToObject(o, "message", res->message);
    else cJSON_AddNullToObject(o, "message");
    cJSON_AddBoolToObject(o, "quarantined", res->quarantined);
    cJSON_AddBoolToObject(o, "repaired", res->repaired);
    if (res->action == RAG_GUARD_BLOCK) cJSON_AddNullToObject(o, "text");
    else cJSON_AddStringToObject(o, "text", res->text);
    evs = cJSON_AddArrayToObject(o, "events");
    for (size_t i = 0; evs && i < res->n_events; i++) {
        const rag_guard_event *e = &res->events[i];
        cJSON *j = cJSON_CreateObject();
        if (!j) goto done;
        cJSON_AddStringToObject(j, "rule", e->rule_id);
        cJSON_AddStringToObject(j, "kind", e->kind == RAG_GUARD_EV_LIMIT ? "limit" : "match");
        cJSON_AddStringToObject(j, "action", rag_guard_action_name(e->action));
        cJSON_AddNumberToObject(j, "start", (double)e->start);
        cJSON_AddNumberToObject(j, "end", (double)e->end);
        if (e->score > 0) cJSON_AddNumberToObject(j, "score", (double)(int)(e->score * 1000 + 0.5) / 1000);
        cJSON_AddStringToObject(j, "message", e->message);
        cJSON_AddItemToArray(evs, j);
    }
    if (res->uncertain > 0) {
        /* the detector's unsure band (what --guard-llm would judge) */
        cJSON *u = cJSON_AddObjectToObject(o, "uncertain");
        if (u) {
            cJSON_AddNumberToObject(u, "score", (double)(int)(res->uncertain * 1000 + 0.5) / 1000);
            cJSON_AddNumberToObject(u, "start", (double)res->uncertain_start);
            cJSON_AddNumberToObject(u, "end", (double)res->uncertain_end);
        }
    }
    s = cJSON_PrintUnformatted(o);
    if (!s) goto done;
    printf("%s\n", s);
    rc = 0;
done:
    free(s);
    cJSON_Delete(o);
    return rc;
}

/* --jsonl: one JSON object per input line ({"text", optional "stage",
 * "sources", "id"}), one result object per line out, in order; a line that
 * cannot be read gives {"line": N, "error": ...} and the rest goes on.
 * Returns 0, or 1 when a line failed. */
#define GUARD_MAX_LINE (16u << 20)
static int check_jsonl(const rag_guard *g, rag_guard_stage def_stage, int def_sources, const char *def_question) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        size_t a = 0;
        while (a < (size_t)len && (line[a] == ' ' || line[a] == '\t' || line[a] == '\r' || line[a] == '\n')) a++;
        if (a == (size_t)len) continue;
        const char *why = NULL;
        cJSON *o = (size_t)len > GUARD_MAX_LINE ? NULL : cJSON_ParseWithLength(line, (size_t)len);
        const cJSON *t = o ? cJSON_GetObjectItemCaseSensitive(o, "text") : NULL;
        const cJSON *st = o ? cJSON_GetObjectItemCaseSensitive(o, "stage") : NULL;
        const cJSON *ns = o ? cJSON_GetObjectItemCaseSensitive(o, "sources") : NULL;
        const cJSON *qu = o ? cJSON_GetObjectItemCaseSensitive(o, "question") : NULL;
        rag_guard_stage stage = def_stage;
        int n_sources = def_sources;
        if ((size_t)len > GUARD_MAX_LINE) why = "line too long";
        else if (!cJSON_IsObject(o)) why = "not a JSON object";
        else if (!cJSON_IsString(t)) why = "\"text\" (a string) is missing";
        else if (st && (!cJSON_IsString(st) || rag_guard_stage_parse(st->valuestring) < 0)) why = "\"stage\" is input, context or output";
        else if (ns && (!cJSON_IsNumber(ns) || ns->valuedouble < 0 || ns->valuedouble > 100000)) why = "\"sources\" is a number 0..100000";
        else if (qu && !cJSON_IsString(qu)) why = "\"question\" is a string";
        if (!why) {
            if (st) stage = (rag_guard_stage)rag_guard_stage_parse(st->valuestring);
            if (ns) n_sources = (int)ns->valuedouble;
            rag_guard_result res;
            rag_guard_check_opts co = {0};
            co.n_sources = n_sources;
            co.question = qu ? qu->valuestring : def_question;
            co.question_len = co.question ? strlen(co.question) : 0;
            if (rag_guard_check_with(g, stage, t->valuestring, strlen(t->valuestring), &co, &res) != RAG_OK) why = "out of memory";
            else {
                if (print_json(&res, stage, cJSON_GetObjectItemCaseSensitive(o, "id")) != 0) why = "out of memory";
                rag_guard_result_release(&res);
            }
        }
        if (why) {
            printf("{\"line\":%ld,\"error\":\"%s\"}\n", lineno, why);
            rc = 1;
        }
        fflush(stdout);
        cJSON_Delete(o);
    }
    free(line);
    return rc;
}

enum { O_STAGE = 256, O_RULES, O_SOURCES, O_QUARANTINE, O_AUDIT, O_JSON, O_JSONL, O_LIST, O_NO_DEFAULTS, O_QUESTION };
static const app_opt guard_check_opts[] = {
    {"stage", 0, "input|context|output", O_STAGE},
    {"rules", 0, "DIR", O_RULES},
    {"no-defaults", 0, NULL, O_NO_DEFAULTS},
    {"sources", 0, "N", O_SOURCES},
    {"quarantine", 0, "drop|keep", O_QUARANTINE},
    {"question", 0, "TEXT", O_QUESTION},
    {"audit", 0, "FILE", O_AUDIT},
    {"json", 0, NULL, O_JSON},
    {"jsonl", 0, NULL, O_JSONL},
    {"list", 0, NULL, O_LIST},
    {0},
};
const app_opt *const app_guard_check_opts[] = {guard_check_opts, NULL};

int app_cmd_guard_check(int argc, char **argv) {
    int rc = 1;
    const char *dirs[GUARD_MAX_RULE_DIRS];
    size_t n_dirs = 0;
    rag_guard_params p = rag_guard_default_params();
    rag_guard_stage stage = RAG_GUARD_INPUT;
    bool json = false, list = false, jsonl = false;
    int n_sources = 0;
    const char *text = NULL, *audit = NULL, *question = NULL;
    char *owned_text = NULL;
    size_t text_len = 0;
    rag_guard *g = NULL;
    rag_guard_result res = {0};
    char err[700];

    if (app_wants_help(argc, argv)) {
        guard_usage(stdout);
        return 0;
    }
    app_args ap;
    app_args_init(&ap, "guard-check", app_guard_check_opts, argc, argv);
    const char *v;
    int id, ch;
    while ((id = app_args_next(&ap, &v)) > 0) {
        switch (id) {
        case O_STAGE:
            if ((ch = app_opt_choice(&ap, v)) < 0) return 2;
            stage = (rag_guard_stage)rag_guard_stage_parse(v);
            break;
        case O_RULES:
            if (n_dirs == GUARD_MAX_RULE_DIRS) return app_usage_error(&ap, "too many --rules (at most %d)", GUARD_MAX_RULE_DIRS);
            dirs[n_dirs++] = v;
            break;
        case O_SOURCES:
            if (!app_opt_int(&ap, v, 0, 100000, &n_sources)) return 2;
            break;
        case O_QUARANTINE:
            if ((ch = app_opt_choice(&ap, v)) < 0) return 2;
            p.quarantine = ch == 1 ? RAG_GUARD_QUARANTINE_KEEP : RAG_GUARD_QUARANTINE_DROP;
            break;
        case O_AUDIT: audit = v; break;
        case O_QUESTION: question = v; break;
        case O_JSON: json = true; break;
        case O_JSONL: jsonl = true; break;
        case O_LIST: list = true; break;
        case O_NO_DEFAULTS: p.no_defaults = true; break;
        }
    }
    if (id < 0) return 2;
    if (ap.npos > 1) return app_usage_error(&ap, "one TEXT only (quote it)");
    if (ap.npos == 1) text = argv[1];
    if (!text && !list && !jsonl) return app_usage_error(&ap, "no TEXT (give it, '-' for stdin, or --jsonl)");
    if (jsonl && text) return app_usage_error(&ap, "--jsonl reads the texts from stdin; no TEXT");
    p.rule_dirs = dirs;
    p.n_rule_dirs = n_dirs;
    if (app_guard_load(&p, &g, err, sizeof err) != RAG_OK) return app_error("guard-check: %s", err);
    app_guard_warnings(g);
    if (audit && rag_guard_open_audit(g, audit) != RAG_OK) {
        app_error("guard-check: %s", rag_guard_errmsg(g));
        goto done;
    }
    if (list) {
        const char *id, *origin;
        unsigned stages;
        rag_guard_action act;
        for (size_t i = 0; rag_guard_rule_info(g, i, &id, &stages, &act, &origin); i++)
            printf("%-32s %-6s %s%s%s  %s\n", id, rag_guard_action_name(act), stages & 1 ? "input " : "",
                   stages & 2 ? "context " : "", stages & 4 ? "output" : "", origin ? origin : "");
        rc = 0;
        goto done;
    }
    if (jsonl) {
        rc = check_jsonl(g, stage, n_sources, question);
        goto done;
    }
    if (strcmp(text, "-") == 0) {
        owned_text = read_stdin(&text_len);
        if (!owned_text) {
            app_error("guard-check: cannot read stdin (limit %u bytes)", GUARD_MAX_STDIN);
            goto done;
        }
        text = owned_text;
    } else {
        text_len = strlen(text);
    }
    rag_guard_check_opts co = {0};
    co.n_sources = n_sources;
    co.question = question;
    co.question_len = question ? strlen(question) : 0;
    if (rag_guard_check_with(g, stage, text, text_len, &co, &res) != RAG_OK) {
        app_error("guard-check: out of memory");
        goto done;
    }
    if (json) {
        if (print_json(&res, stage, NULL) != 0) { app_error("guard-check: out of memory"); goto done; }
    } else {
        print_human(&res, stage);
    }
    rc = res.action == RAG_GUARD_BLOCK ? 2 : 0;
done:
    rag_guard_result_release(&res);
    rag_guard_free(g);
    free(owned_text);
    return rc;
}
