/* remote.c — the remote engine: generation (SSE streaming) and query
 * embeddings on an OpenAI-compatible server over libcurl, and the engine
 * (rag/engine.h) over it. */
#define _GNU_SOURCE
#include "rag/http_internal.h"
#include "rag/rag.h"
#include "rag/util_internal.h"

#include "index/index.h"
#include "llm/llm.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_MAX 4096                    /* bytes of a key file */
#define JSON_BODY_MAX (32u << 20)       /* JSON answers (models, embeddings, non-streamed) */

struct rag_remote {
    rag_remote_params p;
    char *base;                 /* base URL without a trailing '/' */
    char *key;                  /* owned, wiped on free; NULL: none */
    char *auth;                 /* "Authorization: Bearer KEY", wiped on free */
    char *model;                /* model id sent */
    char *ca_file;
    rag_http *http;             /* one client: keep-alive to the server */
    bool is_mrag;               /* /v1/models had an "mrag" object: an `mrag serve` */
    char mrag_sha[65];          /* its model sha256, "" when not reported */
    int mrag_n_embd;
    long last_status;           /* HTTP status of the last request_json */
    char err[1024];
};

/* The remote's message (rag_errf's convention) and rc. */
#define rerr(r, rc, ...) rag_errf((r)->err, sizeof (r)->err, (rc), __VA_ARGS__)


rag_remote_params rag_remote_default_params(void) {
    rag_remote_params p;
    memset(&p, 0, sizeof p);
    p.connect_timeout_ms = 10000;
    p.first_token_timeout_ms = 300000;
    p.idle_timeout_ms = 60000;
    p.max_attempts = 3;
    p.backoff_ms = 500;
    p.max_line_bytes = 1u << 20;
    p.probe = true;
    return p;
}

static void wipe_free(char *s) {
    if (!s) return;
    volatile char *v = s;
    while (*v) *v++ = 0;
    free(s);
}

void rag_remote_free(rag_remote *r) {
    if (!r) return;
    free(r->base);
    wipe_free(r->key);
    wipe_free(r->auth);
    rag_http_free(r->http);
    free(r->model);
    free(r->ca_file);
    free(r);
}

const char *rag_remote_errmsg(const rag_remote *r) { return r ? r->err : "out of memory"; }
const char *rag_remote_model(const rag_remote *r) { return r && r->model ? r->model : ""; }

/* Reads the key: the first line of the file, blanks trimmed; printable
 * ASCII without blanks inside. The key never goes into a message. */
static int read_key(rag_remote *r, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return rerr(r, RAG_ERR_IO, "key file %s: %s", path, strerror(errno));
    char buf[KEY_MAX + 1];
    size_t n = fread(buf, 1, KEY_MAX + 1, f);
    fclose(f);
    if (n > KEY_MAX) { memset(buf, 0, sizeof buf); return rerr(r, RAG_ERR_LIMIT, "key file %s: larger than %d bytes", path, KEY_MAX); }
    buf[n] = 0;
    size_t b = 0, e = 0;
    while (b < n && (buf[b] == ' ' || buf[b] == '\t' || buf[b] == '\r' || buf[b] == '\n')) b++;
    e = b;
    while (e < n && buf[e] != '\n' && buf[e] != '\r') e++;
    while (e > b && (buf[e - 1] == ' ' || buf[e - 1] == '\t')) e--;
    int rc = RAG_OK;
    if (e == b) rc = rerr(r, RAG_ERR_FORMAT, "key file %s is empty", path);
    for (size_t i = b; i < e && rc == RAG_OK; i++)
        if ((unsigned char)buf[i] <= ' ' || (unsigned char)buf[i] >= 0x7f)
            rc = rerr(r, RAG_ERR_FORMAT, "key file %s: the key holds a blank or a non-ASCII byte (line %d)", path, 1);
    if (rc == RAG_OK) {
        r->key = strndup(buf + b, e - b);
        size_t al = (e - b) + 32;
        r->auth = malloc(al);
        if (!r->key || !r->auth) rc = rerr(r, RAG_ERR_NOMEM, "out of memory");
        else snprintf(r->auth, al, "Authorization: Bearer %s", r->key);
    }
    memset(buf, 0, sizeof buf);
    return rc;
}

/* ------------------------------------------------------------ HTTP core */

/* One transfer's state: the SSE stream (bodies are the HTTP client's). */
typedef struct {
    rag_remote *r;
    /* SSE */
    rag_buf line;               /* the line being read */
    bool cr;
    rag_buf data;               /* the event's data lines */
    bool have_data;
    char event[32];
    bool done;                  /* data: [DONE] */
    char finish[24];            /* finish_reason seen */
    size_t n_emitted;           /* bytes handed to emit */
    size_t n_events;
    rag_emit_fn emit;
    void *emit_user;
    bool stopped;               /* emit asked to stop */
    int fail_rc;                /* stream-level failure (error event, malformed) */
    char fail[512];
    /* timing */
    volatile int *cancel;
    double t_start, t_last;
    int timed_out;              /* 1 first token, 2 idle */
} xfer;

static void xfer_release(xfer *x) {
    rag_buf_release(&x->line);
    rag_buf_release(&x->data);
}

static void xfail(xfer *x, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void xfail(xfer *x, int rc, const char *fmt, ...) {
    if (x->fail_rc) return;
    x->fail_rc = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->fail, sizeof x->fail, fmt, ap);
    va_end(ap);
}

/* The message of an OpenAI-style (or other common) error object, else NULL. */
static const char *error_message(const cJSON *o) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    if (cJSON_IsString(e)) return e->valuestring;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (cJSON_IsString(m)) return m->valuestring;
    m = cJSON_GetObjectItemCaseSensitive(o, "detail");
    if (cJSON_IsString(m)) return m->valuestring;
    m = cJSON_GetObjectItemCaseSensitive(o, "message");
    if (e && cJSON_IsString(m)) return m->valuestring;
    return NULL;
}

/* One complete SSE event: [DONE], an error object, or a chunk whose
 * choices[0].delta.content goes to emit. Returns false to stop. */
static bool sse_event(xfer *x) {
    const char *d = x->data.data ? x->data.data : "";
    size_t n = x->data.len;
    x->n_events++;
    if (n == 6 && memcmp(d, "[DONE]", 6) == 0) { x->done = true; return false; }
    cJSON *o = cJSON_ParseWithLength(d, n);
    if (!o && strcmp(x->event, "error") == 0) {
        xfail(x, RAG_ERR_IO, "the server reported an error in the stream: %.300s", d);
        return false;
    }
    if (!o) {
        xfail(x, RAG_ERR_FORMAT, "malformed stream event (not JSON): %.80s", d);
        return false;
    }
    bool go = true;
    /* in a stream only an "error" member (object or string) is an error */
    const cJSON *eo = cJSON_GetObjectItemCaseSensitive(o, "error");
    const char *em = cJSON_IsObject(eo) || cJSON_IsString(eo) ? error_message(o) : NULL;
    if (em || cJSON_IsObject(eo) || cJSON_IsString(eo) || strcmp(x->event, "error") == 0) {
        xfail(x, RAG_ERR_IO, "the server reported an error in the stream: %.300s", em ? em : d);
        go = false;
        goto out;
    }
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "choices"), 0);
    if (!ch) goto out;              /* e.g. a usage-only chunk */
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(ch, "delta");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(delta, "content");
    if (!c) c = cJSON_GetObjectItemCaseSensitive(ch, "text");     /* completions-style servers */
    if (cJSON_IsString(c) && c->valuestring[0]) {
        size_t l = strlen(c->valuestring);
        if (x->emit && x->emit(x->emit_user, c->valuestring, l)) { x->stopped = true; go = false; }
        x->n_emitted += l;
    }
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(ch, "finish_reason");
    if (cJSON_IsString(fr)) snprintf(x->finish, sizeof x->finish, "%s", fr->valuestring);
out:
    cJSON_Delete(o);
    return go;
}

/* One SSE line (no line end). Returns false to stop. */
static bool sse_line(xfer *x) {
    const char *l = x->line.data ? x->line.data : "";
    size_t n = x->line.len;
    if (n == 0) {                               /* blank line: dispatch */
        bool go = true;
        if (x->have_data) go = sse_event(x);
        x->data.len = 0;
        x->have_data = false;
        x->event[0] = 0;
        return go;
    }
    if (l[0] == ':') return true;               /* comment: heartbeat */
    size_t f = 0;
    while (f < n && l[f] != ':') f++;
    const char *v = f < n ? l + f + 1 : l + n;
    size_t vl = f < n ? n - f - 1 : 0;
    if (vl && v[0] == ' ') { v++; vl--; }
    if (f == 4 && memcmp(l, "data", 4) == 0) {
        size_t need = x->data.len + (x->have_data ? 1 : 0) + vl + 1;
        if (need > x->r->p.max_line_bytes) {
            xfail(x, RAG_ERR_LIMIT, "a stream event is longer than %zu bytes", x->r->p.max_line_bytes);
            return false;
        }
        if ((x->have_data && rag_buf_putc(&x->data, '\n') != RAG_OK) || rag_buf_append(&x->data, v, vl) != RAG_OK) {
            xfail(x, RAG_ERR_NOMEM, "out of memory");
            return false;
        }
        x->have_data = true;
    } else if (f == 5 && memcmp(l, "event", 5) == 0) {
        snprintf(x->event, sizeof x->event, "%.*s", (int)(vl < 31 ? vl : 31), v);
    }
    /* id, retry and unknown fields are ignored */
    return true;
}

/* Feeds stream bytes: lines end at LF, CRLF or CR. */
static bool sse_feed(xfer *x, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (x->cr && c == '\n') { x->cr = false; continue; }
        x->cr = false;
        if (c == '\n' || c == '\r') {
            x->cr = c == '\r';
            if (!sse_line(x)) return false;
            x->line.len = 0;
            continue;
        }
        if (x->line.len + 2 > x->r->p.max_line_bytes) {
            xfail(x, RAG_ERR_LIMIT, "a stream line is longer than %zu bytes", x->r->p.max_line_bytes);
            return false;
        }
        if (rag_buf_putc(&x->line, c) != RAG_OK) {
            xfail(x, RAG_ERR_NOMEM, "out of memory");
            return false;
        }
    }
    return true;
}

/* Contract: see remote.h. */
int rag_remote_parse_sse(const char *data, size_t len, size_t piece, size_t max_line, rag_emit_fn emit, void *emit_user,
                         char *err, size_t errlen) {
    rag_remote r;
    memset(&r, 0, sizeof r);
    r.p.max_line_bytes = max_line ? max_line : 1u << 20;
    xfer x;
    memset(&x, 0, sizeof x);
    x.r = &r;
    x.emit = emit;
    x.emit_user = emit_user;
    if (!piece) piece = len ? len : 1;
    for (size_t off = 0; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        if (!sse_feed(&x, data + off, n)) break;
    }
    int rc = x.fail_rc;
    if (rc && err && errlen) snprintf(err, errlen, "%s", x.fail);
    xfer_release(&x);
    return rc;
}

/* Stream bytes from the HTTP client; false ends the transfer. */
static bool on_data(void *user, const char *p, size_t n) {
    xfer *x = user;
    x->t_last = rag_now_ms();
    return sse_feed(x, p, n);
}

/* The caller's timeouts, checked while the transfer runs. */
static int on_progress(void *user) {
    xfer *x = user;
    double t = rag_now_ms();
    const rag_remote_params *p = &x->r->p;
    if (x->n_emitted == 0 && p->first_token_timeout_ms > 0 && t - x->t_start > p->first_token_timeout_ms) {
        x->timed_out = 1;
        return 1;
    }
    /* before the first token the server may be queueing or reading a long
     * prompt in silence: only the first-token timeout applies then */
    if (x->n_emitted > 0 && p->idle_timeout_ms > 0 && t - x->t_last > p->idle_timeout_ms) {
        x->timed_out = 2;
        return 1;
    }
    return 0;
}

/* Runs one attempt: GET when body is NULL, else POST of JSON; an SSE answer
 * goes through x. */
static int perform(rag_remote *r, const char *path, const char *body, xfer *x, bool sse, rag_http_resp *resp) {
    size_t ul = strlen(r->base) + strlen(path) + 1;
    char *url = malloc(ul);
    if (!url) { snprintf(resp->error, sizeof resp->error, "out of memory"); return RAG_ERR_NOMEM; }
    snprintf(url, ul, "%s%s", r->base, path);
    const char *hd[3];
    size_t nh = 0;
    if (r->auth) hd[nh++] = r->auth;
    if (body) hd[nh++] = "Content-Type: application/json";
    hd[nh++] = sse ? "Accept: text/event-stream" : "Accept: application/json";
    rag_http_req rq;
    memset(&rq, 0, sizeof rq);
    rq.url = url;
    rq.body = body;
    rq.body_len = body ? strlen(body) : 0;
    rq.headers = hd;
    rq.n_headers = nh;
    rq.stream_type = sse ? "text/event-stream" : NULL;
    rq.on_data = on_data;
    rq.on_progress = on_progress;
    rq.user = x;
    rq.cancel = x->cancel;
    x->t_start = x->t_last = rag_now_ms();
    int rc = rag_http_perform(r->http, &rq, resp);
    free(url);
    return rc;
}

/* "HTTP 401 from URL: the server's message" into r->err. */
static int http_status_err(rag_remote *r, const char *path, const rag_http_resp *resp) {
    const char *msg = NULL;
    cJSON *o = resp->body_len ? cJSON_ParseWithLength(resp->body, resp->body_len) : NULL;
    if (o) msg = error_message(o);
    char snippet[240] = "";
    if (!msg && resp->body_len) {
        size_t k = 0;
        for (size_t i = 0; i < resp->body_len && k + 1 < sizeof snippet; i++)
            snippet[k++] = (unsigned char)resp->body[i] < 0x20 ? ' ' : resp->body[i];
        snippet[k] = 0;
        msg = snippet;
    }
    const char *hint = resp->status == 401 || resp->status == 403 ? " (check --llm-key-file)" : "";
    rerr(r, RAG_ERR_IO, "HTTP %ld from %s%s%s: %s", resp->status, r->base, path, hint, msg && *msg ? msg : "(no message)");
    cJSON_Delete(o);
    return RAG_ERR_IO;
}

/* A JSON request with retries of transient failures: *out is the parsed
 * answer (owned). */
static int request_json(rag_remote *r, const char *path, const char *body, cJSON **out) {
    *out = NULL;
    int attempts = r->p.max_attempts > 0 ? r->p.max_attempts : 1;
    int rc = RAG_OK;
    rag_http_resp resp;
    for (int a = 1;; a++) {
        xfer x;
        memset(&x, 0, sizeof x);
        x.r = r;
        int hrc = perform(r, path, body, &x, false, &resp);
        xfer_release(&x);
        r->last_status = resp.status;
        bool retry = rag_http_transient(hrc, &resp);
        if (hrc != RAG_OK) {
            if (x.timed_out) rc = rerr(r, RAG_ERR_IO, "%s%s: no answer within %d ms", r->base, path, r->p.first_token_timeout_ms);
            else rc = rerr(r, hrc == RAG_ERR_NOMEM ? RAG_ERR_NOMEM : RAG_ERR_IO, "%s%s: %s", r->base, path, resp.error);
        } else if (resp.status != 200) {
            rc = http_status_err(r, path, &resp);
        } else if (!(*out = cJSON_ParseWithLength(resp.body, resp.body_len))) {
            rc = rerr(r, RAG_ERR_FORMAT, "%s%s: the answer is not JSON", r->base, path);
        } else {
            rc = RAG_OK;
        }
        if (rc == RAG_OK || !retry || a >= attempts) return rc;
        rag_http_backoff(r->http, a, resp.retry_after_s, NULL);
    }
}

/* GET BASE/models: the model id (first listed unless given) and, for an
 * `mrag serve`, its "mrag" object. */
static int probe_models(rag_remote *r) {
    cJSON *o = NULL;
    int rc = request_json(r, "/models", NULL, &o);
    if (rc != RAG_OK) {
        bool denied = r->last_status == 401 || r->last_status == 403;
        if (r->model && !denied) { r->err[0] = 0; return RAG_OK; }   /* listing is optional with --llm-model */
        if (denied) return rc;
        char tmp[sizeof r->err];
        snprintf(tmp, sizeof tmp, "%s", r->err);
        return rerr(r, rc, "%s (give the model name with --llm-model)", tmp);
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    const cJSON *pick = NULL, *m;
    cJSON_ArrayForEach(m, data) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
        if (!cJSON_IsString(id)) continue;
        if (!r->model || strcmp(id->valuestring, r->model) == 0) { pick = m; break; }
    }
    if (!pick && !r->model) { cJSON_Delete(o); return rerr(r, RAG_ERR_FORMAT, "%s/models lists no model (give --llm-model)", r->base); }
    if (pick && !r->model) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(pick, "id");
        if (!(r->model = strdup(id->valuestring))) { cJSON_Delete(o); return rerr(r, RAG_ERR_NOMEM, "out of memory"); }
    }
    const cJSON *mo = pick ? cJSON_GetObjectItemCaseSensitive(pick, "mrag") : NULL;
    if (cJSON_IsObject(mo)) {
        r->is_mrag = true;
        const cJSON *sha = cJSON_GetObjectItemCaseSensitive(mo, "sha256");
        if (cJSON_IsString(sha) && strlen(sha->valuestring) == 64) snprintf(r->mrag_sha, sizeof r->mrag_sha, "%s", sha->valuestring);
        const cJSON *ne = cJSON_GetObjectItemCaseSensitive(mo, "n_embd");
        if (cJSON_IsNumber(ne)) r->mrag_n_embd = ne->valueint;
    }
    cJSON_Delete(o);
    return RAG_OK;
}

/* Contract: see remote.h. */
int rag_remote_new(const rag_remote_params *p, rag_remote **out, char *err, size_t errlen) {
    int rc = RAG_OK;
    rag_remote *r = NULL;
    if (out) *out = NULL;
    if (!p || !out || !p->base_url || !*p->base_url) {
        if (err && errlen) snprintf(err, errlen, "remote engine: the base URL is missing");
        return RAG_ERR_ARG;
    }
    if (!(r = calloc(1, sizeof *r))) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return RAG_ERR_NOMEM;
    }
    r->p = *p;
    if (r->p.max_line_bytes < 1024) r->p.max_line_bytes = 1u << 20;
    if (r->p.connect_timeout_ms <= 0) r->p.connect_timeout_ms = 10000;
    const char *u = p->base_url;
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
        rc = rerr(r, RAG_ERR_ARG, "--llm-url %s: not an http:// or https:// URL", u);
        goto done;
    }
    for (const char *c = u; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f) { rc = rerr(r, RAG_ERR_ARG, "--llm-url: blank or control character in the URL"); goto done; }
    if (!(r->base = strdup(u))) { rc = rerr(r, RAG_ERR_NOMEM, "out of memory"); goto done; }
    size_t bl = strlen(r->base);
    while (bl && r->base[bl - 1] == '/') r->base[--bl] = 0;
    r->p.base_url = r->base;
    if (p->model && *p->model && !(r->model = strdup(p->model))) { rc = rerr(r, RAG_ERR_NOMEM, "out of memory"); goto done; }
    if (p->ca_file && !(r->ca_file = strdup(p->ca_file))) { rc = rerr(r, RAG_ERR_NOMEM, "out of memory"); goto done; }
    r->p.model = NULL;
    r->p.key_file = NULL;
    r->p.ca_file = NULL;
    if (p->key_file && (rc = read_key(r, p->key_file)) != RAG_OK) goto done;
    rag_http_params hp = rag_http_default_params();
    hp.ca_file = r->ca_file;
    hp.connect_timeout_ms = r->p.connect_timeout_ms;
    hp.max_attempts = r->p.max_attempts;
    hp.backoff_ms = r->p.backoff_ms;
    hp.max_body = JSON_BODY_MAX;
    hp.cancel = p->cancel;
    char herr[256];
    if ((rc = rag_http_new(&hp, &r->http, herr, sizeof herr)) != RAG_OK) { rc = rerr(r, rc, "remote engine: %s", herr); goto done; }
    if (p->probe && (rc = probe_models(r)) != RAG_OK) goto done;
    if (!r->model && !(r->model = strdup("default"))) { rc = rerr(r, RAG_ERR_NOMEM, "out of memory"); goto done; }
done:
    if (rc != RAG_OK) {
        if (err && errlen) snprintf(err, errlen, "%s", r->err);
        rag_remote_free(r);
        return rc;
    }
    *out = r;
    return RAG_OK;
}

/* ------------------------------------------------------------ generation */

/* The request body: messages, streaming, budget, sampling; `mrag serve`
 * additionally gets "mrag":{"retrieval":false} (the messages already hold
 * the sources). Owned string. */
static char *chat_body(rag_remote *r, const rag_msg *m, size_t n, const rag_sampling *sp) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "model", r->model);
    cJSON *arr = cJSON_AddArrayToObject(o, "messages");
    /* a system message goes into the first user message, as the Mistral
     * template does: servers whose template has no system role (Mistral
     * v0.1's) refuse one */
    const char *sys = n > 1 && strcmp(m[0].role, "system") == 0 && strcmp(m[1].role, "user") == 0 ? m[0].content : NULL;
    for (size_t i = sys ? 1 : 0; arr && i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        if (!e) break;
        cJSON_AddStringToObject(e, "role", m[i].role);
        cJSON_AddItemToArray(arr, e);
        char *joined = NULL;
        if (sys && *sys && i == 1 && asprintf(&joined, "%s\n\n%s", sys, m[i].content) < 0) {
            cJSON_Delete(o);
            return NULL;
        }
        cJSON_AddStringToObject(e, "content", joined ? joined : m[i].content);
        free(joined);
    }
    cJSON_AddBoolToObject(o, "stream", 1);
    cJSON_AddNumberToObject(o, "max_tokens", sp->max_tokens > 0 ? sp->max_tokens : 512);
    cJSON_AddNumberToObject(o, "temperature", sp->temperature);
    cJSON_AddNumberToObject(o, "seed", (double)(sp->seed & 0xffffffffu));
    if (sp->n_stop) {
        cJSON *st = cJSON_AddArrayToObject(o, "stop");
        for (size_t i = 0; st && i < sp->n_stop; i++) cJSON_AddItemToArray(st, cJSON_CreateString(sp->stop[i]));
    }
    if (r->is_mrag) {
        cJSON *mo = cJSON_AddObjectToObject(o, "mrag");
        if (mo) cJSON_AddBoolToObject(mo, "retrieval", 0);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Counts the pieces streamed (a remote engine's "tokens"). */
typedef struct {
    rag_emit_fn emit;
    void *user;
    int pieces;
} piece_count;

static int count_piece(void *user, const char *text, size_t len) {
    piece_count *pc = user;
    pc->pieces++;
    return pc->emit ? pc->emit(pc->user, text, len) : 0;
}

/* Contract: see remote.h. */
int rag_remote_chat(rag_remote *r, const rag_msg *msgs, size_t nm, const rag_sampling *sp, rag_emit_fn emit_fn,
                    void *emit_fn_user, volatile int *cancel, rag_gen_stats *st) {
    rag_gen_stats local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    st->n_prompt = -1;
    if (!r) return RAG_ERR_ARG;
    r->err[0] = 0;
    if (!msgs || !nm || !sp) return rerr(r, RAG_ERR_ARG, "remote engine: no messages");
    piece_count pc = {emit_fn, emit_fn_user, 0};
    rag_emit_fn emit = count_piece;
    void *emit_user = &pc;
    double t0 = rag_now_ms();
    int rc = RAG_OK;
    char *body = chat_body(r, msgs, nm, sp);
    if (!body) return rerr(r, RAG_ERR_NOMEM, "out of memory");
    int attempts = r->p.max_attempts > 0 ? r->p.max_attempts : 1;
    const char *path = "/chat/completions";
    for (int a = 1;; a++) {
        xfer x;
        memset(&x, 0, sizeof x);
        x.r = r;
        x.emit = emit;
        x.emit_user = emit_user;
        x.cancel = cancel;
        rag_http_resp resp;
        int hrc = perform(r, path, body, &x, true, &resp);
        bool retry = false;
        rc = RAG_OK;
        if (x.stopped || (cancel && *cancel)) {
            rc = RAG_OK;                                /* the caller stopped it */
        } else if (x.fail_rc) {
            rc = rerr(r, x.fail_rc == RAG_ERR_NOMEM ? RAG_ERR_NOMEM : RAG_ERR_IO, "%s%s: %s", r->base, path, x.fail);
        } else if (resp.status && resp.status != 200 && hrc != RAG_ERR_NOMEM) {
            rc = http_status_err(r, path, &resp);
            retry = rag_http_transient(RAG_OK, &resp);
        } else if (resp.streamed && x.done) {
            rc = RAG_OK;                                /* [DONE] (the transfer was ended there) */
        } else if (hrc != RAG_OK) {
            if (x.timed_out == 1)
                rc = rerr(r, RAG_ERR_IO, "%s%s: no answer within %d ms", r->base, path, r->p.first_token_timeout_ms);
            else if (x.timed_out == 2)
                rc = rerr(r, RAG_ERR_IO, "%s%s: the stream stalled for %d ms", r->base, path, r->p.idle_timeout_ms);
            else
                rc = rerr(r, hrc == RAG_ERR_NOMEM ? RAG_ERR_NOMEM : RAG_ERR_IO, "%s%s: %s%s", r->base, path, resp.error,
                          x.n_emitted ? " (the answer was cut)" : "");
            retry = x.timed_out == 1 || rag_http_transient(hrc, &resp);
        } else if (!resp.streamed) {
            /* a server that ignored "stream": one chat.completion object */
            cJSON *o = cJSON_ParseWithLength(resp.body, resp.body_len);
            const cJSON *ch = o ? cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "choices"), 0) : NULL;
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ch, "message"), "content");
            if (!cJSON_IsString(c)) rc = rerr(r, RAG_ERR_IO, "%s%s: neither an event stream nor a chat completion", r->base, path);
            else if (emit) emit(emit_user, c->valuestring, strlen(c->valuestring));
            cJSON_Delete(o);
        } else if (!x.finish[0]) {
            rc = rerr(r, RAG_ERR_IO, "%s%s: the stream ended before its end (no [DONE])%s", r->base, path,
                      x.n_emitted ? ": the answer is cut" : "");
            retry = true;
        }
        /* never repeat text already shown: retries only before the first token */
        if (x.n_emitted) retry = false;
        xfer_release(&x);
        if (rc == RAG_OK || !retry || a >= attempts || (cancel && *cancel)) break;
        if (!rag_http_backoff(r->http, a, resp.retry_after_s, cancel)) { rc = RAG_OK; break; }
    }
    free(body);
    st->n_generated = pc.pieces;
    st->decode_ms = rag_now_ms() - t0;
    st->stop = cancel && *cancel ? RAG_STOP_CANCELLED : pc.pieces >= sp->max_tokens ? RAG_STOP_LENGTH : RAG_STOP_EOS;
    return rc;
}

/* ------------------------------------------------------------ the engine */

static int remote_generate(void *self, const rag_msg *msgs, size_t n, const rag_sampling *s, rag_emit_fn emit,
                           void *emit_user, volatile int *cancel, rag_gen_stats *st) {
    return rag_remote_chat(self, msgs, n, s, emit, emit_user, cancel, st);
}

static int remote_embed(void *self, const char *const *texts, const size_t *lens, int n, float *out, int dim) {
    return rag_remote_embed_batch(self, texts, lens, n, out, dim);
}

static const char *remote_errmsg(void *self) { return rag_remote_errmsg(self); }

/* Contract: see remote.h. */
int rag_engine_remote_new(rag_remote *r, rag_engine **out) {
    static const rag_engine_ops ops = {
        .generate = remote_generate,
        .embed = remote_embed,
        .count = rag_count_estimate,
        .errmsg = remote_errmsg,
    };
    *out = r ? rag_engine_new(&ops, r) : NULL;
    return *out ? RAG_OK : r ? RAG_ERR_NOMEM : RAG_ERR_ARG;
}

/* ------------------------------------------------------------ embeddings */

/* Copies one answer vector e (a JSON array) into out[dim], L2-normalised. */
static int read_vector(const cJSON *e, float *out, int dim, char *err, size_t errlen) {
    if (!cJSON_IsArray(e)) return rag_errf(err, errlen, RAG_ERR_FORMAT, "an item without an embedding array");
    int n = cJSON_GetArraySize(e);
    if (n != dim)
        return rag_errf(err, errlen, RAG_ERR_MISMATCH,
                        "the server's embedding has %d dimensions, the index %d: it was built with another model", n, dim);
    double mx = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, e) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return rag_errf(err, errlen, RAG_ERR_FORMAT, "a non-number in the vector");
        if (fabs(v->valuedouble) > FLT_MAX) return rag_errf(err, errlen, RAG_ERR_FORMAT, "a number out of range in the vector");
        if (fabs(v->valuedouble) > mx) mx = fabs(v->valuedouble);
    }
    /* normalised in double after scaling by the largest component: tiny
     * or huge components keep their direction; all zero stays zero */
    double ss = 0;
    cJSON_ArrayForEach(v, e) if (mx > 0) ss += (v->valuedouble / mx) * (v->valuedouble / mx);
    double norm = ss > 0 ? sqrt(ss) : 1;
    int i = 0;
    cJSON_ArrayForEach(v, e) out[i++] = mx > 0 ? (float)(v->valuedouble / mx / norm) : 0.0f;
    return RAG_OK;
}

/* The vectors of a parsed embeddings answer: see rag_remote_parse_embeddings. */
static int parse_embeddings(const cJSON *res, int n, int dim, float *out, char *err, size_t errlen) {
    bool *seen = calloc((size_t)n, sizeof *seen);
    int rc = RAG_OK;
    if (!seen) { rc = rag_errf(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(res, "data");
    if (!cJSON_IsArray(data) || cJSON_GetArraySize(data) != n) {
        rc = rag_errf(err, errlen, RAG_ERR_FORMAT, "%d vectors asked, %d in the answer", n,
                      cJSON_IsArray(data) ? cJSON_GetArraySize(data) : 0);
        goto done;
    }
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, data) {
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(it, "index");
        double at = cJSON_IsNumber(ix) ? ix->valuedouble : (double)k;
        if (!(at >= 0 && at < n) || at != (double)(int)at || seen[(int)at]) {
            rc = rag_errf(err, errlen, RAG_ERR_FORMAT, "a bad or repeated index in the answer");
            goto done;
        }
        seen[(int)at] = true;
        if ((rc = read_vector(cJSON_GetObjectItemCaseSensitive(it, "embedding"), out + (size_t)at * (size_t)dim, dim, err,
                              errlen)) != RAG_OK)
            goto done;
        k++;
    }
done:
    free(seen);
    return rc;
}

/* Contract: see remote.h. */
int rag_remote_parse_embeddings(const char *body, size_t len, int n, int dim, float *out, char *err, size_t errlen) {
    if (!body || n < 1 || dim < 1 || !out) return rag_errf(err, errlen, RAG_ERR_ARG, "bad arguments");
    cJSON *res = cJSON_ParseWithLength(body, len);
    if (!res) return rag_errf(err, errlen, RAG_ERR_FORMAT, "the answer is not JSON");
    int rc = parse_embeddings(res, n, dim, out, err, errlen);
    cJSON_Delete(res);
    return rc;
}

/* POST BASE/embeddings of n texts; *res the parsed answer. A refusal of the
 * input (400, 413, 422) becomes RAG_ERR_FORMAT. */
static int embed_request(rag_remote *r, const char *const *texts, const size_t *lens, int n, cJSON **res) {
    *res = NULL;
    cJSON *req = cJSON_CreateObject();
    char *body = NULL;
    int rc = RAG_OK;
    if (!req) return rerr(r, RAG_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(req, "model", r->model);
    cJSON *in = cJSON_AddArrayToObject(req, "input");
    for (int i = 0; in && i < n; i++) {
        char *t = strndup(texts[i] ? texts[i] : "", texts[i] ? lens[i] : 0);
        cJSON *x = t ? cJSON_CreateString(t) : NULL;
        free(t);
        if (!x) { in = NULL; break; }
        cJSON_AddItemToArray(in, x);
    }
    if (!in || !(body = cJSON_PrintUnformatted(req))) { rc = rerr(r, RAG_ERR_NOMEM, "out of memory"); goto done; }
    rc = request_json(r, "/embeddings", body, res);
    if (rc == RAG_ERR_IO && (r->last_status == 400 || r->last_status == 413 || r->last_status == 422)) rc = RAG_ERR_FORMAT;
done:
    cJSON_Delete(req);
    free(body);
    return rc;
}

/* Contract: see remote.h. */
int rag_remote_embed_batch(rag_remote *r, const char *const *texts, const size_t *lens, int n, float *out, int dim) {
    if (!r || n < 0 || (n && (!texts || !lens)) || dim < 0 || (n && dim && !out)) return RAG_ERR_ARG;
    r->err[0] = 0;
    if (n == 0) return RAG_OK;
    cJSON *res = NULL;
    int rc = embed_request(r, texts, lens, n, &res);
    if (rc != RAG_OK) return rc;
    char perr[300];
    rc = dim > 0 ? parse_embeddings(res, n, dim, out, perr, sizeof perr) : rag_errf(perr, sizeof perr, RAG_ERR_ARG, "no dimension");
    cJSON_Delete(res);
    if (rc == RAG_ERR_MISMATCH) return rerr(r, rc, "%s", perr);
    if (rc != RAG_OK) return rerr(r, rc, "%s/embeddings: %s", r->base, perr);
    return RAG_OK;
}

/* Contract: see remote.h. */
int rag_remote_embed(void *user, const char *text, size_t len, float *out, int dim) {
    if (!user || (!text && len)) return RAG_ERR_ARG;
    const char *t = text ? text : "";
    return rag_remote_embed_batch(user, &t, &len, 1, out, dim);
}

/* Contract: see remote.h. */
int rag_remote_embed_dim(rag_remote *r, int *dim) {
    if (!r || !dim) return RAG_ERR_ARG;
    r->err[0] = 0;
    const char *t = "dimension check";
    size_t l = strlen(t);
    cJSON *res = NULL;
    int rc = embed_request(r, &t, &l, 1, &res);
    if (rc == RAG_OK) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res, "data"), 0), "embedding");
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) < 1) rc = rerr(r, RAG_ERR_FORMAT, "%s/embeddings: no data[0].embedding in the answer", r->base);
        else *dim = cJSON_GetArraySize(e);
    }
    cJSON_Delete(res);
    return rc;
}

const char *rag_remote_served_sha256(const rag_remote *r) { return r ? r->mrag_sha : ""; }
int rag_remote_served_n_embd(const rag_remote *r) { return r ? r->mrag_n_embd : 0; }

/* Contract: see remote.h. */
void rag_remote_name_sha256(const char *name, char out[65]) {
    char *s = NULL;
    if (asprintf(&s, "mrag-remote-model\n%s", name ? name : "") < 0 || !s) { memset(out, '0', 64); out[64] = 0; return; }
    llm_sha256_hex(s, strlen(s), out);
    free(s);
}

/* Contract: see remote.h. */
int rag_remote_check_index(rag_remote *r, idx_store *s, int *dim) {
    if (!r || !s) return RAG_ERR_ARG;
    idx_fingerprint fp;
    if (idx_fingerprint_get(s, &fp) != IDX_OK || fp.dim <= 0)
        return rerr(r, RAG_ERR_ARG, "the index records no embedding yet: nothing to compare the server's with");
    if (fp.layer != -1)
        return rerr(r, RAG_ERR_MISMATCH, "the index embeds hidden layer %d; a server embeds the final layer "
                                         "(use a local model with -m for retrieval)", fp.layer);
    if (strcmp(fp.pooling, "mean") != 0)
        return rerr(r, RAG_ERR_MISMATCH, "the index uses %s pooling; a server embeds with mean pooling", fp.pooling);
    if (r->mrag_sha[0] && strcmp(r->mrag_sha, fp.model_sha256) != 0)
        return rerr(r, RAG_ERR_MISMATCH, "the server's model (sha256 %.12s...) is not the one the index was built with "
                                         "(sha256 %.12s...)", r->mrag_sha, fp.model_sha256);
    if (r->mrag_n_embd && r->mrag_n_embd != fp.dim)
        return rerr(r, RAG_ERR_MISMATCH, "the server's model has %d dimensions, the index %d", r->mrag_n_embd, fp.dim);
    /* an index built through a server that reports no sha256 recorded the
     * served model's name: another name is another model */
    char *built_by = NULL;
    if (!r->mrag_sha[0] && idx_meta_get(s, RAG_REMOTE_MODEL_META, &built_by) == IDX_OK && built_by && *built_by) {
        char want[65];
        rag_remote_name_sha256(r->model, want);
        if (strcmp(want, fp.model_sha256) != 0) {
            int mrc = rerr(r, RAG_ERR_MISMATCH, "the server's model \"%.200s\" is not the one the index was built with (\"%.200s\")",
                           r->model, built_by);
            free(built_by);
            return mrc;
        }
    }
    free(built_by);
    float *v = malloc((size_t)fp.dim * sizeof *v);
    if (!v) return rerr(r, RAG_ERR_NOMEM, "out of memory");
    int rc = rag_remote_embed(r, "dimension check", 15, v, fp.dim);
    free(v);
    if (rc == RAG_OK && dim) *dim = fp.dim;
    return rc;
}
