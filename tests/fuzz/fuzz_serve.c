/* fuzz_serve.c — libFuzzer target for `mrag serve`'s request bodies and keys
 * file: the first byte picks the parser (c = chat, a = ask, e = embeddings,
 * k = keys file), the rest is the body. Checks that a failure leaves a
 * message and a zeroed struct, and that a success is well-formed (limits
 * kept, strings present, the last chat message from the user). The parsers
 * live in app/ (not in a library), so their sources are included here. */
#include "app/serve_json.c"
#include "app/serve_keys.c"

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
                if (!k.keys[i].groups[j] || !k.keys[i].groups[j][0] || strchr(k.keys[i].groups[j], ',')) __builtin_trap();
            /* every key finds itself by its hash only through the real token: a
             * wrong token never matches */
            if (app_serve_keys_find(&k, "not-a-key-at-all", 16) && len < 16) __builtin_trap();
        }
        app_serve_keys_free(&k);
    }
    return 0;
}
