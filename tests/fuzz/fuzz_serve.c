/* fuzz_serve.c — libFuzzer target for `mrag serve`'s request bodies, keys
 * file and request-head checks: the first byte picks the parser (c = chat,
 * a = ask, e = embeddings, k = keys file, h = Host header, f = framing
 * headers as "Name: value" lines, p = a passage id), the rest is the input. Checks that a failure leaves a
 * message and a zeroed struct, and that a success is well-formed (limits
 * kept, strings present, the last chat message from the user). The parsers
 * live in app/ (not in a library), so their sources are included here. */
#define _GNU_SOURCE
#include "app/serve_json.c"
#include "app/serve_keys.c"
#include "app/serve_conn.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_zero(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char kind = (char)data[0];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char err[256];
    err[0] = 0;
    if (kind == 'c') {
        app_chat_req r;
        if (app_parse_chat(body, len, &r, err, sizeof err) != 0) {
            if (!err[0]) __builtin_trap();
            check_zero(&r, sizeof r);
            return 0;
        }
        if (r.n_msgs < 1 || r.n_msgs > APP_SERVE_MAX_MSGS || r.n_stop > APP_SERVE_MAX_STOP) __builtin_trap();
        for (size_t i = 0; i < r.n_msgs; i++)
            if (!r.msgs[i].role || !r.msgs[i].content) __builtin_trap();
        if (strcmp(r.msgs[r.n_msgs - 1].role, "user") != 0) __builtin_trap();
        if (r.temperature > 2 || (r.max_tokens != -1 && r.max_tokens < 1) || r.k < 0 || r.k > 100) __builtin_trap();
        for (size_t i = 0; i < r.n_stop; i++)
            if (!r.stop[i] || !r.stop[i][0]) __builtin_trap();
        app_chat_req_free(&r);
    } else if (kind == 'a') {
        app_ask_req r;
        if (app_parse_ask(body, len, &r, err, sizeof err) != 0) {
            if (!err[0]) __builtin_trap();
            check_zero(&r, sizeof r);
            return 0;
        }
        if (!r.question || !r.question[0] || r.n_hist > APP_SERVE_MAX_HIST) __builtin_trap();
        for (size_t i = 0; i < r.n_hist; i++)
            if (!r.hist_q[i] || !r.hist_a[i]) __builtin_trap();
        app_ask_req_free(&r);
    } else if (kind == 'e') {
        app_embed_req r;
        if (app_parse_embed(body, len, &r, err, sizeof err) != 0) {
            if (!err[0]) __builtin_trap();
            check_zero(&r, sizeof r);
            return 0;
        }
        if (r.n < 1 || r.n > APP_SERVE_MAX_INPUTS) __builtin_trap();
        for (size_t i = 0; i < r.n; i++)
            if (!r.inputs[i]) __builtin_trap();
        app_embed_req_free(&r);
    } else if (kind == 'k') {
        app_serve_keys k;
        if (app_serve_keys_parse("fuzz.keys", body, len, &k, err, sizeof err) != 0) {
            if (!err[0] || k.keys || k.n) __builtin_trap();
            return 0;
        }
        for (size_t i = 0; i < k.n; i++) {
            if (strlen(k.keys[i].hash) != 64 || !k.keys[i].name || k.keys[i].n_groups > 64) __builtin_trap();
            for (size_t j = 0; j < k.keys[i].n_groups; j++)
                if (!k.keys[i].groups[j] || !k.keys[i].groups[j][0] || strchr(k.keys[i].groups[j], ',') ||
                    strchr(k.keys[i].groups[j], '!'))   /* no key may hold RAG_ACCESS_NOBODY */
                    __builtin_trap();
            /* every key finds itself by its hash only through the real token: a
             * wrong token never matches */
            if (app_serve_keys_find(&k, "not-a-key-at-all", 16) && len < 16) __builtin_trap();
        }
        app_serve_keys_free(&k);
    } else if (kind == 'h') {
        char host[300];
        if (len >= sizeof host) return 0;
        memcpy(host, body, len);
        host[len] = 0;
        static const char *const allowed[] = {"mrag.example.org"};
        bool lo = app_http_host_allowed(host, true, NULL, 0);
        bool lo_named = app_http_host_allowed(host, true, allowed, 1);
        bool any = app_http_host_allowed(host, false, NULL, 0);
        /* loopback only: the name must be a loopback one ([v6] checked on its own) */
        bool v6_lo = false;
        if (host[0] == '[' && strchr(host, ']')) {
            char a[64];
            size_t an = (size_t)(strchr(host, ']') - host - 1);
            struct in6_addr x;
            if (an < sizeof a) {
                memcpy(a, host + 1, an);
                a[an] = 0;
                v6_lo = inet_pton(AF_INET6, a, &x) == 1 && IN6_IS_ADDR_LOOPBACK(&x);
            }
        }
        if (lo && !strcasestr(host, "localhost") && strncmp(host, "127.", 4) != 0 && !v6_lo) __builtin_trap();
        if (lo_named && !lo && !strcasestr(host, "mrag.example.org")) __builtin_trap();
        if (lo && !(lo_named && any)) __builtin_trap();     /* more names never allow less */
    } else if (kind == 'f') {
        const char *names[16], *values[16];
        char *copy = malloc(len + 1);
        if (!copy) return 0;
        memcpy(copy, body, len);
        copy[len] = 0;
        size_t n = 0;
        bool cl = false, te = false;
        for (char *line = copy; line && n < 16;) {
            char *nl = strchr(line, '\n');
            if (nl) *nl = 0;
            char *colon = strchr(line, ':');
            if (colon) {
                *colon = 0;
                names[n] = line;
                values[n++] = colon + 1;
                cl |= strcasecmp(line, "Content-Length") == 0;
                te |= strcasecmp(line, "Transfer-Encoding") == 0;
            }
            line = nl ? nl + 1 : NULL;
        }
        char why[128] = "";
        int st = app_http_framing_check(names, values, n, why, sizeof why);
        if (st != 0 && st != 400 && st != 501) __builtin_trap();
        if (st && !why[0]) __builtin_trap();
        if (st == 0 && cl && te) __builtin_trap();
        free(copy);
    } else if (kind == 'p') {
        int64_t id = -1;
        int rc = app_parse_passage_id(body, len, &id);
        if (rc != 0) {
            if (rc != -1 || id != 0) __builtin_trap();
            return 0;
        }
        /* accepted: digits only, positive, and the number they spell */
        if (id < 1 || len < 1 || len > 18) __builtin_trap();
        int64_t v = 0;
        for (size_t i = 0; i < len; i++) {
            if (body[i] < '0' || body[i] > '9') __builtin_trap();
            v = v * 10 + (body[i] - '0');
        }
        if (v != id) __builtin_trap();
    }
    return 0;
}
