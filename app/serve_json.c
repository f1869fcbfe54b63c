/* serve_json.c — `mrag serve` request bodies: chat, ask and embeddings JSON
 * parsed (with explicit lengths and limits) into owned request structs.
 * Pure: cJSON and libc only, so tests/fuzz/fuzz_serve.c can include it. */
#include "app/serve.h"
#include "rag/rag.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Checks that every string and key in the tree is UTF-8: raw invalid bytes
 * and escaped lone surrogates ("\udc80", which cJSON turns into bytes that
 * are not UTF-8) are refused here rather than passed on to the guardrails,
 * the model or a log. Returns the offending string's name or NULL. */
static const char *invalid_utf8(const cJSON *j, int depth) {
    for (; j && depth < 1000; j = j->next) {
        if (j->string && rag_utf8_valid_prefix(j->string, strlen(j->string)) != strlen(j->string)) return "a key";
        if (cJSON_IsString(j) && j->valuestring &&
            rag_utf8_valid_prefix(j->valuestring, strlen(j->valuestring)) != strlen(j->valuestring))
            return j->string ? j->string : "a string";
        const char *bad = invalid_utf8(j->child, depth + 1);
        if (bad) return bad;
    }
    return NULL;
}

/* Parses body[0..len) as one JSON object; NULL with err set otherwise. */
static cJSON *parse_object(const char *body, size_t len, char *err, size_t errlen) {
    if (!body || len == 0) { fail(err, errlen, "the request body is empty: a JSON object is expected"); return NULL; }
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!o) {
        size_t pos = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        fail(err, errlen, "malformed JSON at byte %zu", pos);
        return NULL;
    }
    /* trailing bytes other than white space are an error too */
    size_t pos = end && end >= body && end <= body + len ? (size_t)(end - body) : len;
    while (pos < len && (body[pos] == ' ' || body[pos] == '\t' || body[pos] == '\r' || body[pos] == '\n' || body[pos] == 0))
        pos++;
    if (pos < len) {
        cJSON_Delete(o);
        fail(err, errlen, "malformed JSON at byte %zu: unexpected data after the object", pos);
        return NULL;
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        fail(err, errlen, "the request body must be a JSON object");
        return NULL;
    }
    const char *bad = invalid_utf8(o->child, 0);
    if (bad) {
        fail(err, errlen, "'%.40s' is not valid UTF-8 (JSON text must be UTF-8)", bad);
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* A string field: *out owned copy, NULL when absent. -1 on a wrong type. */
static int get_str(const cJSON *o, const char *name, bool required, char **out, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return required ? fail(err, errlen, "'%s' is required", name) : 0;
    if (!cJSON_IsString(v) || !v->valuestring) return fail(err, errlen, "'%s' must be a string", name);
    if (!(*out = strdup(v->valuestring))) return fail(err, errlen, "out of memory");
    return 0;
}

/* An integer field within [lo, hi]; *out untouched when absent. */
static int get_int(const cJSON *o, const char *name, long lo, long hi, int *out, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) return fail(err, errlen, "'%s' must be a number", name);
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi)
        return fail(err, errlen, "'%s' must be an integer from %ld to %ld", name, lo, hi);
    *out = (int)d;
    return 0;
}

/* A list of collection names (an array of 1 to 64 strings of 1 to 64
 * bytes; whether they name collections is the server's business). */
static int get_names(const cJSON *o, const char *name, char ***out, size_t *n, bool *has, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) return 0;
    int c = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (c < 1 || c > 64) return fail(err, errlen, "'%s' must be an array of 1 to 64 collection names", name);
    if (!(*out = calloc((size_t)c, sizeof **out))) return fail(err, errlen, "out of memory");
    *has = true;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsString(e) || !e->valuestring[0] || strlen(e->valuestring) > 64)
            return fail(err, errlen, "'%s[%zu]' must be a collection name (a string of 1 to 64 bytes)", name, *n);
        if (!((*out)[*n] = strdup(e->valuestring))) return fail(err, errlen, "out of memory");
        (*n)++;
    }
    return 0;
}

static int get_bool(const cJSON *o, const char *name, bool *out, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) return fail(err, errlen, "'%s' must be true or false", name);
    *out = cJSON_IsTrue(v);
    return 0;
}

void app_chat_req_free(app_chat_req *r) {
    if (!r) return;
    free(r->model);
    for (size_t i = 0; i < r->n_msgs; i++) { free(r->msgs[i].role); free(r->msgs[i].content); }
    free(r->msgs);
    for (size_t i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->stop);
    for (size_t i = 0; i < r->n_collections; i++) free(r->collections[i]);
    free(r->collections);
    memset(r, 0, sizeof *r);
}

void app_ask_req_free(app_ask_req *r) {
    if (!r) return;
    free(r->question);
    for (size_t i = 0; i < r->n_hist; i++) { free(r->hist_q[i]); free(r->hist_a[i]); }
    free(r->hist_q);
    free(r->hist_a);
    for (size_t i = 0; i < r->n_collections; i++) free(r->collections[i]);
    free(r->collections);
    memset(r, 0, sizeof *r);
}

void app_embed_req_free(app_embed_req *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) free(r->inputs[i]);
    free(r->inputs);
    free(r->model);
    memset(r, 0, sizeof *r);
}

/* Message content: a string, or an array of {type:"text",text} parts joined. */
static int msg_content(const cJSON *c, size_t i, char **out, char *err, size_t errlen) {
    *out = NULL;
    if (cJSON_IsString(c) && c->valuestring) {
        if (!(*out = strdup(c->valuestring))) return fail(err, errlen, "out of memory");
        return 0;
    }
    if (!cJSON_IsArray(c)) return fail(err, errlen, "'messages[%zu].content' must be a string", i);
    size_t n = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, c) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(p, "type");
        if (!cJSON_IsObject(p) || !cJSON_IsString(ty) || strcmp(ty->valuestring, "text") != 0 || !cJSON_IsString(t))
            return fail(err, errlen, "'messages[%zu].content' parts must be {\"type\":\"text\",\"text\":...}", i);
        n += strlen(t->valuestring);
    }
    char *s = malloc(n + 1);
    if (!s) return fail(err, errlen, "out of memory");
    size_t at = 0;
    cJSON_ArrayForEach(p, c) {
        const char *t = cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring;
        size_t l = strlen(t);
        memcpy(s + at, t, l);
        at += l;
    }
    s[at] = 0;
    *out = s;
    return 0;
}

/* Contract: see serve.h. */
int app_parse_chat(const char *body, size_t len, app_chat_req *out, char *err, size_t errlen) {
    int rc = -1;
    memset(out, 0, sizeof *out);
    out->max_tokens = -1;
    out->temperature = -1;
    out->retrieval = true;
    cJSON *o = parse_object(body, len, err, errlen);
    if (!o) { memset(out, 0, sizeof *out); return -1; }
    if (get_str(o, "model", false, &out->model, err, errlen)) goto done;
    if (get_bool(o, "stream", &out->stream, err, errlen)) goto done;
    if (get_int(o, "max_tokens", 1, 1 << 20, &out->max_tokens, err, errlen)) goto done;
    if (out->max_tokens < 0 && get_int(o, "max_completion_tokens", 1, 1 << 20, &out->max_tokens, err, errlen)) goto done;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "temperature");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 2) {
            fail(err, errlen, "'temperature' must be a number from 0 to 2");
            goto done;
        }
        out->temperature = v->valuedouble;
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "seed");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
            v->valuedouble != floor(v->valuedouble)) {
            fail(err, errlen, "'seed' must be a non-negative integer");
            goto done;
        }
        out->has_seed = true;
        out->seed = (uint64_t)v->valuedouble;
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "stop");
    if (v && !cJSON_IsNull(v)) {
        size_t n = cJSON_IsString(v) ? 1 : cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 0;
        if ((!cJSON_IsString(v) && !cJSON_IsArray(v)) || n > APP_SERVE_MAX_STOP) {
            fail(err, errlen, "'stop' must be a string or an array of at most %d strings", APP_SERVE_MAX_STOP);
            goto done;
        }
        if (n && !(out->stop = calloc(n, sizeof *out->stop))) { fail(err, errlen, "out of memory"); goto done; }
        const cJSON *s = cJSON_IsString(v) ? v : v->child;
        for (size_t i = 0; i < n; i++, s = s->next) {
            if (!cJSON_IsString(s) || !*s->valuestring || strlen(s->valuestring) > 256) {
                fail(err, errlen, "'stop' entries must be non-empty strings of at most 256 bytes");
                goto done;
            }
            if (!(out->stop[out->n_stop] = strdup(s->valuestring))) { fail(err, errlen, "out of memory"); goto done; }
            out->n_stop++;
        }
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "mrag");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsObject(v)) { fail(err, errlen, "'mrag' must be an object"); goto done; }
        if (get_bool(v, "retrieval", &out->retrieval, err, errlen)) goto done;
        if (get_bool(v, "extractive", &out->extractive, err, errlen)) goto done;
        if (get_int(v, "k", 1, 100, &out->k, err, errlen)) goto done;
        if (get_names(v, "collections", &out->collections, &out->n_collections, &out->has_collections, err, errlen))
            goto done;
    }
    v = cJSON_GetObjectItemCaseSensitive(o, "messages");
    if (!cJSON_IsArray(v)) { fail(err, errlen, "'messages' must be an array of {role, content}"); goto done; }
    int nm = cJSON_GetArraySize(v);
    if (nm < 1 || nm > APP_SERVE_MAX_MSGS) {
        fail(err, errlen, "'messages' must hold 1 to %d messages", APP_SERVE_MAX_MSGS);
        goto done;
    }
    if (!(out->msgs = calloc((size_t)nm, sizeof *out->msgs))) { fail(err, errlen, "out of memory"); goto done; }
    const cJSON *m;
    cJSON_ArrayForEach(m, v) {
        size_t i = out->n_msgs;
        if (!cJSON_IsObject(m)) { fail(err, errlen, "'messages[%zu]' must be an object", i); goto done; }
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role) ||
            (strcmp(role->valuestring, "system") && strcmp(role->valuestring, "user") && strcmp(role->valuestring, "assistant"))) {
            fail(err, errlen, "'messages[%zu].role' must be \"system\", \"user\" or \"assistant\"", i);
            goto done;
        }
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        char *content = NULL;
        if (msg_content(c, i, &content, err, errlen)) goto done;
        out->msgs[i].content = content;
        if (!(out->msgs[i].role = strdup(role->valuestring))) { out->n_msgs++; fail(err, errlen, "out of memory"); goto done; }
        out->n_msgs++;
    }
    if (strcmp(out->msgs[out->n_msgs - 1].role, "user") != 0) {
        fail(err, errlen, "the last message must have role \"user\"");
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(o);
    if (rc) app_chat_req_free(out);
    return rc;
}

/* Contract: see serve.h. */
int app_parse_ask(const char *body, size_t len, app_ask_req *out, char *err, size_t errlen) {
    int rc = -1;
    memset(out, 0, sizeof *out);
    out->max_tokens = -1;
    cJSON *o = parse_object(body, len, err, errlen);
    if (!o) { memset(out, 0, sizeof *out); return -1; }
    if (get_str(o, "question", true, &out->question, err, errlen)) goto done;
    if (!out->question[0]) { fail(err, errlen, "'question' is empty"); goto done; }
    if (get_int(o, "k", 1, 100, &out->k, err, errlen)) goto done;
    if (get_int(o, "max_tokens", 1, 1 << 20, &out->max_tokens, err, errlen)) goto done;
    if (get_bool(o, "stream", &out->stream, err, errlen)) goto done;
    if (get_bool(o, "extractive", &out->extractive, err, errlen)) goto done;
    if (get_names(o, "collections", &out->collections, &out->n_collections, &out->has_collections, err, errlen)) goto done;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "history");
    if (h && !cJSON_IsNull(h)) {
        int n = cJSON_IsArray(h) ? cJSON_GetArraySize(h) : -1;
        if (n < 0 || n > APP_SERVE_MAX_HIST) {
            fail(err, errlen, "'history' must be an array of at most %d {question, answer} objects", APP_SERVE_MAX_HIST);
            goto done;
        }
        if (n && (!(out->hist_q = calloc((size_t)n, sizeof *out->hist_q)) || !(out->hist_a = calloc((size_t)n, sizeof *out->hist_a)))) {
            fail(err, errlen, "out of memory");
            goto done;
        }
        const cJSON *t;
        cJSON_ArrayForEach(t, h) {
            size_t i = out->n_hist;
            const cJSON *q = cJSON_GetObjectItemCaseSensitive(t, "question");
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(t, "answer");
            if (!cJSON_IsObject(t) || !cJSON_IsString(q) || !cJSON_IsString(a)) {
                fail(err, errlen, "'history[%zu]' must be {\"question\": string, \"answer\": string}", i);
                goto done;
            }
            out->hist_q[i] = strdup(q->valuestring);
            out->hist_a[i] = strdup(a->valuestring);
            out->n_hist++;
            if (!out->hist_q[i] || !out->hist_a[i]) { fail(err, errlen, "out of memory"); goto done; }
        }
    }
    rc = 0;
done:
    cJSON_Delete(o);
    if (rc) app_ask_req_free(out);
    return rc;
}

/* Contract: see serve.h. */
int app_parse_embed(const char *body, size_t len, app_embed_req *out, char *err, size_t errlen) {
    int rc = -1;
    memset(out, 0, sizeof *out);
    cJSON *o = parse_object(body, len, err, errlen);
    if (!o) { memset(out, 0, sizeof *out); return -1; }
    if (get_str(o, "model", false, &out->model, err, errlen)) goto done;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "encoding_format");
    if (f && !cJSON_IsNull(f)) {
        if (!cJSON_IsString(f) || (strcmp(f->valuestring, "float") && strcmp(f->valuestring, "base64"))) {
            fail(err, errlen, "'encoding_format' must be \"float\" or \"base64\"");
            goto done;
        }
        out->base64 = strcmp(f->valuestring, "base64") == 0;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "input");
    size_t n = cJSON_IsString(v) ? 1 : cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 0;
    if ((!cJSON_IsString(v) && !cJSON_IsArray(v)) || n < 1 || n > APP_SERVE_MAX_INPUTS) {
        fail(err, errlen, "'input' must be a string or an array of 1 to %d strings", APP_SERVE_MAX_INPUTS);
        goto done;
    }
    if (!(out->inputs = calloc(n, sizeof *out->inputs))) { fail(err, errlen, "out of memory"); goto done; }
    const cJSON *s = cJSON_IsString(v) ? v : v->child;
    for (size_t i = 0; i < n; i++, s = s->next) {
        if (!cJSON_IsString(s)) { fail(err, errlen, "'input[%zu]' must be a string (token arrays are not supported)", i); goto done; }
        if (!(out->inputs[i] = strdup(s->valuestring))) { fail(err, errlen, "out of memory"); goto done; }
        out->n++;
    }
    rc = 0;
done:
    cJSON_Delete(o);
    if (rc) app_embed_req_free(out);
    return rc;
}

/* Contract: see serve.h. */
int app_parse_passage_id(const char *s, size_t n, int64_t *id) {
    *id = 0;
    if (!s || n < 1 || n > 18) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1) return -1;
    *id = v;
    return 0;
}
