/* wiki_json.c — parses MediaWiki Action API answers (formatversion=2 JSON,
 * outside bytes) into the connector's structs with cJSON, with limits on
 * sizes and counts; plus timestamps and URL encoding. */
#include "rag/wiki_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A string member of obj (NULL when absent). *bad is set when it is present
 * but not a string or longer than max. */
static const char *get_str(const cJSON *obj, const char *name, size_t max, bool *bad) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!it || cJSON_IsNull(it)) return NULL;
    if (!cJSON_IsString(it) || !it->valuestring || strlen(it->valuestring) > max) {
        *bad = true;
        return NULL;
    }
    return it->valuestring;
}

/* A copy of a string member (NULL when absent); *bad on a wrong type, size
 * or allocation failure. */
static char *dup_str(const cJSON *obj, const char *name, size_t max, bool *bad) {
    const char *s = get_str(obj, name, max, bad);
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *bad = true;
    return d;
}

/* An integer member in [lo, hi] (def when absent); *bad otherwise. */
static int64_t get_int(const cJSON *obj, const char *name, int64_t lo, int64_t hi, int64_t def, bool *bad) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!it) return def;
    if (!cJSON_IsNumber(it) || it->valuedouble != it->valuedouble || it->valuedouble < (double)lo ||
        it->valuedouble > (double)hi) {
        *bad = true;
        return def;
    }
    return (int64_t)it->valuedouble;
}

/* formatversion=2 booleans are true/false; older forms use "" for true. */
static bool get_flag(const cJSON *obj, const char *name) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!it) return false;
    if (cJSON_IsBool(it)) return cJSON_IsTrue(it);
    return cJSON_IsString(it);
}

int rag_wiki_urlencode(rag_buf *b, const char *s, size_t len) {
    static const char hex[] = "0123456789ABCDEF";
    int rc = RAG_OK;
    for (size_t i = 0; i < len && rc == RAG_OK; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '.' || c == '~') {
            rc = rag_buf_putc(b, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = rag_buf_append(b, e, 3);
        }
    }
    return rc;
}

bool rag_wiki_parse_time(const char *s, int64_t *out) {
    if (!s || strlen(s) != 20) return false;
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    for (int i = 0; i < 20; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i]) return false;
    }
#define D2(i) ((s[i] - '0') * 10 + (s[i + 1] - '0'))
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = D2(0) * 100 + D2(2) - 1900;
    tm.tm_mon = D2(5) - 1;
    tm.tm_mday = D2(8);
    tm.tm_hour = D2(11);
    tm.tm_min = D2(14);
    tm.tm_sec = D2(17);
#undef D2
    if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return false;
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return false;
    *out = (int64_t)t;
    return true;
}

void rag_wiki_format_time(int64_t t, char buf[21]) {
    time_t tt = (time_t)t;
    struct tm tm;
    /* years outside 0000..9999 do not fit the format (and never come from a wiki) */
    if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
        snprintf(buf, 21, "1970-01-01T00:00:00Z");
        return;
    }
    char tmp[80];   /* room for any int, to keep the compiler's truncation check quiet */
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    memcpy(buf, tmp, 20);
    buf[20] = 0;
}

static void page_release(wiki_page *p) {
    free(p->title);
    free(p->url);
    free(p->timestamp);
    for (size_t i = 0; i < p->n_categories; i++) free(p->categories[i]);
    free(p->categories);
    memset(p, 0, sizeof *p);
}

static void change_release(wiki_change *c) {
    free(c->title);
    free(c->type);
    free(c->logtype);
    free(c->logaction);
    free(c->target_title);
    free(c->timestamp);
    memset(c, 0, sizeof *c);
}

void rag_wiki_resp_release(wiki_resp *r) {
    if (!r) return;
    free(r->error_code);
    free(r->error_info);
    free(r->cont);
    for (size_t i = 0; i < r->n_pages; i++) page_release(&r->pages[i]);
    free(r->pages);
    for (size_t i = 0; i < r->n_changes; i++) change_release(&r->changes[i]);
    free(r->changes);
    free(r->server);
    free(r->articlepath);
    free(r->time);
    free(r->generator);
    free(r->logintoken);
    free(r->login_result);
    free(r->login_reason);
    free(r->parse_text);
    free(r->parse_title);
    memset(r, 0, sizeof *r);
}

static bool is_absolute_http(const char *u) {
    return u && (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0);
}

/* One element of query.pages. */
static int parse_page(const cJSON *jp, wiki_page *p, char *err, size_t errlen) {
    bool bad = false;
    if (!cJSON_IsObject(jp)) return rag_ing_err(err, errlen, RAG_ERR_FORMAT, "a page is not an object");
    p->pageid = get_int(jp, "pageid", 0, INT64_C(1) << 52, 0, &bad);
    p->ns = (int)get_int(jp, "ns", -2, 1000000000, 0, &bad);
    p->title = dup_str(jp, "title", WIKI_MAX_STRING, &bad);
    const char *full = get_str(jp, "fullurl", WIKI_MAX_STRING, &bad);
    const char *canon = get_str(jp, "canonicalurl", WIKI_MAX_STRING, &bad);
    const char *u = is_absolute_http(full) ? full : is_absolute_http(canon) ? canon : NULL;
    if (u && !(p->url = strdup(u))) bad = true;
    p->revid = get_int(jp, "lastrevid", 0, INT64_C(1) << 52, 0, &bad);
    p->length = get_int(jp, "length", 0, INT64_C(1) << 52, 0, &bad);
    p->missing = get_flag(jp, "missing");
    p->redirect = get_flag(jp, "redirect");
    p->invalid = get_flag(jp, "invalid") || get_flag(jp, "special");
    const cJSON *revs = cJSON_GetObjectItemCaseSensitive(jp, "revisions");
    if (revs) {
        if (!cJSON_IsArray(revs)) bad = true;
        const cJSON *r0 = cJSON_IsArray(revs) ? cJSON_GetArrayItem(revs, 0) : NULL;
        if (r0 && cJSON_IsObject(r0)) {
            int64_t rv = get_int(r0, "revid", 0, INT64_C(1) << 52, 0, &bad);
            if (!p->revid) p->revid = rv;
            p->timestamp = dup_str(r0, "timestamp", 64, &bad);
        } else if (r0) {
            bad = true;
        }
    }
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(jp, "categories");
    if (cats) {
        if (!cJSON_IsArray(cats)) bad = true;
        int n = cJSON_IsArray(cats) ? cJSON_GetArraySize(cats) : 0;
        if (n > WIKI_MAX_CATEGORIES) n = WIKI_MAX_CATEGORIES;
        if (n > 0 && !(p->categories = calloc((size_t)n, sizeof *p->categories))) bad = true;
        const cJSON *c;
        int i = 0;
        cJSON_ArrayForEach(c, cats) {
            if (bad || i >= n) break;
            if (!cJSON_IsObject(c)) { bad = true; break; }
            char *t = dup_str(c, "title", WIKI_MAX_STRING, &bad);
            if (t) p->categories[p->n_categories++] = t;
            i++;
        }
    }
    if (!bad && !p->title) bad = true;
    if (bad) return rag_ing_err(err, errlen, RAG_ERR_FORMAT, "page %s: missing or malformed fields",
                                p->title ? p->title : "(no title)");
    return RAG_OK;
}

/* One element of query.recentchanges (log=false) or query.logevents (log=true). */
static int parse_change(const cJSON *jc, bool log, wiki_change *c, char *err, size_t errlen) {
    bool bad = false;
    if (!cJSON_IsObject(jc)) return rag_ing_err(err, errlen, RAG_ERR_FORMAT, "a change is not an object");
    c->ns = (int)get_int(jc, "ns", -2, 1000000000, 0, &bad);
    c->title = dup_str(jc, "title", WIKI_MAX_STRING, &bad);
    c->timestamp = dup_str(jc, "timestamp", 64, &bad);
    if (log) {
        if (!(c->type = strdup("log"))) bad = true;
        c->logtype = dup_str(jc, "type", 64, &bad);
        c->logaction = dup_str(jc, "action", 64, &bad);
    } else {
        c->type = dup_str(jc, "type", 64, &bad);
        c->logtype = dup_str(jc, "logtype", 64, &bad);
        c->logaction = dup_str(jc, "logaction", 64, &bad);
    }
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(jc, log ? "params" : "logparams");
    if (params && cJSON_IsObject(params)) {
        c->target_ns = (int)get_int(params, "target_ns", -2, 1000000000, 0, &bad);
        c->target_title = dup_str(params, "target_title", WIKI_MAX_STRING, &bad);
    }
    /* a hidden title (suppressed log entry) has no "title": nothing to do */
    if (bad) return rag_ing_err(err, errlen, RAG_ERR_FORMAT, "change %s: malformed fields",
                                c->title ? c->title : "(no title)");
    return RAG_OK;
}

/* Serialises the "continue" object as "&k=v&k2=v2" (values URL-encoded). */
static int parse_continue(const cJSON *cont, wiki_resp *out, char *err, size_t errlen) {
    if (!cJSON_IsObject(cont)) return rag_ing_err(err, errlen, RAG_ERR_FORMAT, "\"continue\" is not an object");
    rag_buf b = {0};
    b.limit = 64 * 1024;
    int rc = RAG_OK;
    const cJSON *it;
    cJSON_ArrayForEach(it, cont) {
        char num[32];
        const char *v;
        if (cJSON_IsString(it)) v = it->valuestring;
        else if (cJSON_IsNumber(it) && it->valuedouble == it->valuedouble && it->valuedouble > -1e15 && it->valuedouble < 1e15) {
            snprintf(num, sizeof num, "%lld", (long long)it->valuedouble);
            v = num;
        } else {
            rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "\"continue\" holds a value that is not a string");
            break;
        }
        if (!it->string || !*it->string) { rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "\"continue\" has an empty key"); break; }
        if ((rc = rag_buf_putc(&b, '&')) || (rc = rag_wiki_urlencode(&b, it->string, strlen(it->string))) ||
            (rc = rag_buf_putc(&b, '=')) || (rc = rag_wiki_urlencode(&b, v, strlen(v)))) {
            rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "\"continue\" is too large");
            break;
        }
    }
    if (rc == RAG_OK && b.len) { out->cont = b.data; b.data = NULL; }
    rag_buf_release(&b);
    return rc;
}

/* Parses an array of pages or changes under query. */
static int parse_list(const cJSON *arr, const char *what, bool log, wiki_resp *out, char *err, size_t errlen) {
    if (!cJSON_IsArray(arr)) return rag_ing_err(err, errlen, RAG_ERR_FORMAT, "query.%s is not an array", what);
    int n = cJSON_GetArraySize(arr);
    bool pages = strcmp(what, "pages") == 0;
    if (n < 0 || n > (pages ? WIKI_MAX_PAGES_PER_ANSWER : WIKI_MAX_CHANGES_PER_ANSWER))
        return rag_ing_err(err, errlen, RAG_ERR_FORMAT, "query.%s holds too many items (%d)", what, n);
    if (n == 0) return RAG_OK;
    if (pages) {
        if (!(out->pages = calloc((size_t)n, sizeof *out->pages))) return rag_ing_err(err, errlen, RAG_ERR_NOMEM, "out of memory");
    } else {
        wiki_change *c = realloc(out->changes, (out->n_changes + (size_t)n) * sizeof *c);
        if (!c) return rag_ing_err(err, errlen, RAG_ERR_NOMEM, "out of memory");
        out->changes = c;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        int rc;
        if (pages) {
            rc = parse_page(it, &out->pages[out->n_pages], err, errlen);
            out->n_pages++;
        } else {
            memset(&out->changes[out->n_changes], 0, sizeof out->changes[0]);
            rc = parse_change(it, log, &out->changes[out->n_changes], err, errlen);
            out->n_changes++;
        }
        if (rc != RAG_OK) return rc;
    }
    return RAG_OK;
}

/* Counts the values a JSON text would create (commas and openings outside
 * strings, plus one), stopping past limit: cJSON spends ~64 bytes per value,
 * so 32 MB of "[0,0,0..." would cost a gigabyte before any check of ours. */
static size_t json_value_count(const char *s, size_t len, size_t limit) {
    size_t n = 1;
    bool in_str = false;
    for (size_t i = 0; i < len && n <= limit; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == ',' || c == '[' || c == '{') {
            n++;
        }
    }
    return n;
}

int rag_wiki_resp_parse(const char *body, size_t len, wiki_resp *out, char *err, size_t errlen) {
    int rc = RAG_OK;
    bool bad = false;
    memset(out, 0, sizeof *out);
    if (body && json_value_count(body, len, WIKI_MAX_JSON_VALUES) > WIKI_MAX_JSON_VALUES)
        return rag_ing_err(err, errlen, RAG_ERR_FORMAT, "the answer holds more than %d JSON values", WIKI_MAX_JSON_VALUES);
    cJSON *root = body ? cJSON_ParseWithLength(body, len) : NULL;
    if (!root) { rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "the answer is not JSON"); goto done; }
    if (!cJSON_IsObject(root)) { rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "the answer is not a JSON object"); goto done; }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (e) {
        if (!cJSON_IsObject(e)) { rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "\"error\" is not an object"); goto done; }
        out->error_code = dup_str(e, "code", 256, &bad);
        out->error_info = dup_str(e, "info", WIKI_MAX_STRING, &bad);
        if (!out->error_code && !bad && !(out->error_code = strdup("unknown"))) bad = true;
        if (bad) { rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "malformed \"error\" object"); goto done; }
    }
    const cJSON *cont = cJSON_GetObjectItemCaseSensitive(root, "continue");
    if (cont && (rc = parse_continue(cont, out, err, errlen)) != RAG_OK) goto done;
    out->batchcomplete = get_flag(root, "batchcomplete");
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "query");
    if (q) {
        if (!cJSON_IsObject(q)) { rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "\"query\" is not an object"); goto done; }
        const cJSON *x;
        if ((x = cJSON_GetObjectItemCaseSensitive(q, "pages")) && (rc = parse_list(x, "pages", false, out, err, errlen)))
            goto done;
        if ((x = cJSON_GetObjectItemCaseSensitive(q, "recentchanges")) &&
            (rc = parse_list(x, "recentchanges", false, out, err, errlen)))
            goto done;
        if ((x = cJSON_GetObjectItemCaseSensitive(q, "logevents")) &&
            (rc = parse_list(x, "logevents", true, out, err, errlen)))
            goto done;
        if ((x = cJSON_GetObjectItemCaseSensitive(q, "general"))) {
            if (!cJSON_IsObject(x)) { rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "query.general is not an object"); goto done; }
            out->server = dup_str(x, "server", WIKI_MAX_STRING, &bad);
            out->articlepath = dup_str(x, "articlepath", WIKI_MAX_STRING, &bad);
            out->time = dup_str(x, "time", 64, &bad);
            out->generator = dup_str(x, "generator", 256, &bad);
        }
        if ((x = cJSON_GetObjectItemCaseSensitive(q, "tokens"))) {
            if (!cJSON_IsObject(x)) { rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "query.tokens is not an object"); goto done; }
            out->logintoken = dup_str(x, "logintoken", 1024, &bad);
        }
    }
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(root, "login");
    if (l) {
        if (!cJSON_IsObject(l)) { rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "\"login\" is not an object"); goto done; }
        out->login_result = dup_str(l, "result", 256, &bad);
        out->login_reason = dup_str(l, "reason", WIKI_MAX_STRING, &bad);
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "parse");
    if (p) {
        if (!cJSON_IsObject(p)) { rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "\"parse\" is not an object"); goto done; }
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (t && (!cJSON_IsString(t) || !t->valuestring)) bad = true;
        if (t && cJSON_IsString(t) && t->valuestring) {
            out->parse_text_len = strlen(t->valuestring);
            if (!(out->parse_text = strdup(t->valuestring))) bad = true;
        }
        out->parse_revid = get_int(p, "revid", 0, INT64_C(1) << 52, 0, &bad);
        out->parse_title = dup_str(p, "title", WIKI_MAX_STRING, &bad);
    }
    if (bad) { rc = rag_ing_err(err, errlen, RAG_ERR_FORMAT, "malformed fields in the answer"); goto done; }
done:
    cJSON_Delete(root);
    if (rc != RAG_OK) rag_wiki_resp_release(out);
    return rc;
}
