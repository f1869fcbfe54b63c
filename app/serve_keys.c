/* serve_keys.c — `mrag serve --keys FILE`: API keys (plain or sha256:HEX)
 * mapped to a name and access groups; lookups compare hashes in constant
 * time over every key. */
#include "app/serve.h"
#include "llm/llm.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int kfail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int kfail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void app_serve_keys_free(app_serve_keys *k) {
    if (!k) return;
    for (size_t i = 0; i < k->n; i++) {
        free(k->keys[i].name);
        for (size_t j = 0; j < k->keys[i].n_groups; j++) free(k->keys[i].groups[j]);
        free(k->keys[i].groups);
        for (size_t j = 0; j < k->keys[i].n_collections; j++) free(k->keys[i].collections[j]);
        free(k->keys[i].collections);
    }
    free(k->keys);
    memset(k, 0, sizeof *k);
}

/* Group names as in access rules: letters, digits, _ - . @ : and
 * non-ASCII bytes (so no key can name RAG_ACCESS_NOBODY). */
static bool group_name_ok(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '_' || c == '-' || c == '.' || c == '@' || c == ':' || c >= 0x80)) return false;
    }
    return n > 0;
}

/* Splits a comma list into owned names ("public" = none, "*" = all). */
static int parse_groups(const char *s, size_t len, app_serve_key *key) {
    if (len == 1 && s[0] == '*') { key->all = true; return 0; }
    if (len == 6 && memcmp(s, "public", 6) == 0) return 0;
    size_t n = 1;
    for (size_t i = 0; i < len; i++) n += s[i] == ',';
    if (n > 64) return -1;
    if (!(key->groups = calloc(n, sizeof *key->groups))) return -1;
    size_t a = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != ',') continue;
        size_t b = a, e = i;
        while (b < e && isspace((unsigned char)s[b])) b++;
        while (e > b && isspace((unsigned char)s[e - 1])) e--;
        if (e > b && !(e - b == 6 && memcmp(s + b, "public", 6) == 0)) {
            if (e - b > 128 || !group_name_ok(s + b, e - b)) return -1;
            if (!(key->groups[key->n_groups] = strndup(s + b, e - b))) return -1;
            key->n_groups++;
        }
        a = i + 1;
    }
    return 0;
}

/* `collections=a+b+...`: the names into key (owned); -1 when one is not a
 * collection name or there are none or more than 32. */
static int parse_collections(const char *s, size_t len, app_serve_key *key) {
    if (key->collections) return -1;       /* given twice */
    size_t n = 1;
    for (size_t i = 0; i < len; i++) n += s[i] == '+';
    if (n > APP_MAX_COLLECTIONS || !(key->collections = calloc(n, sizeof *key->collections))) return -1;
    for (size_t a = 0, i = 0; i <= len; i++) {
        if (i < len && s[i] != '+') continue;
        if (!app_collection_name_ok(s + a, i - a)) return -1;
        if (!(key->collections[key->n_collections] = strndup(s + a, i - a))) return -1;
        key->n_collections++;
        a = i + 1;
    }
    return 0;
}

/* Sets the options of a comma list ("full-paths", "collections=a+b");
 * -1 on an unknown or malformed one. */
static int parse_options(const char *s, size_t len, app_serve_key *key) {
    for (size_t a = 0, i = 0; i <= len; i++) {
        if (i < len && s[i] != ',') continue;
        size_t n = i - a;
        if (n == 10 && memcmp(s + a, "full-paths", 10) == 0) key->full_paths = true;
        else if (n > 12 && memcmp(s + a, "collections=", 12) == 0) {
            if (parse_collections(s + a + 12, n - 12, key)) return -1;
        } else if (n) return -1;
        a = i + 1;
    }
    return 0;
}

/* Contract: see serve.h. */
bool app_collection_name_ok(const char *name, size_t len) {
    if (!name || len < 1 || len > APP_COLLECTION_NAME_MAX) return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
    }
    return true;
}

/* Contract: see serve.h. */
uint64_t app_key_collections(const app_server *s, const app_serve_key *key) {
    uint64_t m = 0;
    for (int i = 0; i < s->n_coll; i++) {
        bool ok = !key || !key->collections;
        for (size_t j = 0; !ok && j < key->n_collections; j++) ok = strcmp(key->collections[j], s->coll[i].name) == 0;
        if (ok) m |= 1ull << i;
    }
    return m;
}

/* Contract: see serve.h. */
int app_collections_pick(const app_server *s, uint64_t allowed, const char *const *names, size_t n, uint64_t *mask,
                         char *err, size_t errlen) {
    *mask = 0;
    for (size_t j = 0; j < n; j++) {
        int found = -1;
        for (int i = 0; i < s->n_coll && found < 0; i++)
            if ((allowed >> i & 1) && strcmp(names[j], s->coll[i].name) == 0) found = i;
        if (found < 0) {
            /* the name is echoed only when it could be a collection name
             * (no bytes of the caller's to escape); either way the answer
             * is the same for a collection that exists but is not the
             * caller's */
            size_t l = strlen(names[j]);
            if (app_collection_name_ok(names[j], l))
                snprintf(err, errlen, "no collection named '%s' (GET /api/collections lists yours)", names[j]);
            else
                snprintf(err, errlen, "no such collection: names are 1 to %d of a-z 0-9 _ - (GET /api/collections lists yours)",
                         APP_COLLECTION_NAME_MAX);
            return 404;
        }
        *mask |= 1ull << found;
    }
    return 0;
}

/* Contract: see serve.h. */
int app_serve_keys_parse(const char *name, const char *text, size_t len, app_serve_keys *out, char *err, size_t errlen) {
    int rc = -1;
    memset(out, 0, sizeof *out);
    size_t cap = 0, lineno = 0;
    for (size_t at = 0; at < len;) {
        size_t e = at;
        while (e < len && text[e] != '\n') e++;
        lineno++;
        for (size_t c = at; c < e; c++)
            if ((unsigned char)text[c] < 0x20 && text[c] != '\t' && text[c] != '\r') {
                kfail(err, errlen, "%s:%zu: control character in the line", name, lineno);
                goto done;
            }
        /* fields: KEY NAME GROUPS [OPTIONS], white-space separated; '#' starts a comment */
        const char *f[4];
        size_t fl[4], nf = 0;
        size_t i = at;
        while (i < e) {
            while (i < e && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r')) i++;
            if (i >= e || text[i] == '#') break;
            size_t b = i;
            while (i < e && text[i] != ' ' && text[i] != '\t' && text[i] != '\r') i++;
            if (nf == 4) { kfail(err, errlen, "%s:%zu: too many fields (KEY NAME GROUPS [OPTIONS])", name, lineno); goto done; }
            f[nf] = text + b;
            fl[nf++] = i - b;
        }
        at = e + 1;
        if (nf == 0) continue;
        if (nf != 3 && nf != 4) { kfail(err, errlen, "%s:%zu: expected KEY NAME GROUPS [OPTIONS]", name, lineno); goto done; }
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            app_serve_key *k = realloc(out->keys, nc * sizeof *k);
            if (!k) { kfail(err, errlen, "out of memory"); goto done; }
            out->keys = k;
            cap = nc;
        }
        app_serve_key *k = &out->keys[out->n];
        memset(k, 0, sizeof *k);
        out->n++;
        if (fl[0] > 7 && memcmp(f[0], "sha256:", 7) == 0) {
            if (fl[0] != 7 + 64) { kfail(err, errlen, "%s:%zu: sha256: needs 64 hex digits", name, lineno); goto done; }
            for (size_t j = 0; j < 64; j++) {
                char c = (char)tolower((unsigned char)f[0][7 + j]);
                if (!isxdigit((unsigned char)c)) { kfail(err, errlen, "%s:%zu: sha256: needs 64 hex digits", name, lineno); goto done; }
                k->hash[j] = c;
            }
            k->hash[64] = 0;
        } else {
            if (fl[0] < 8) { kfail(err, errlen, "%s:%zu: a key must have at least 8 characters", name, lineno); goto done; }
            llm_sha256_hex(f[0], fl[0], k->hash);
            out->n_plain++;
        }
        if (!(k->name = strndup(f[1], fl[1]))) { kfail(err, errlen, "out of memory"); goto done; }
        if (parse_groups(f[2], fl[2], k)) {
            kfail(err, errlen, "%s:%zu: bad GROUPS (comma-separated names of letters, digits, _ - . @ :; at most 64 of 128 bytes)",
                  name, lineno);
            goto done;
        }
        if (nf == 4 && parse_options(f[3], fl[3], k)) {
            kfail(err, errlen, "%s:%zu: unknown or malformed option in '%.*s' (known: full-paths, collections=NAME+NAME)", name, lineno, (int)(fl[3] > 64 ? 64 : fl[3]), f[3]);
            goto done;
        }
        for (size_t j = 0; j + 1 < out->n; j++)
            if (strcmp(out->keys[j].hash, k->hash) == 0) { kfail(err, errlen, "%s:%zu: the same key appears twice", name, lineno); goto done; }
    }
    rc = 0;
done:
    if (rc) app_serve_keys_free(out);
    return rc;
}

int app_serve_keys_load(const char *path, app_serve_keys *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        kfail(err, errlen, "cannot open the keys file %s: %s", path, strerror(e));
        return e == ENOENT ? -2 : -1;
    }
    struct stat st;
    unsigned mode = fstat(fileno(f), &st) == 0 ? (unsigned)st.st_mode : 0;
    char *buf = NULL;
    size_t n = 0, cap = 0, r;
    char tmp[4096];
    int rc = 0;
    while ((r = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (n + r > (4u << 20)) { rc = kfail(err, errlen, "%s: larger than 4 MB", path); break; }
        if (n + r > cap) {
            cap = (n + r) * 2;
            char *q = realloc(buf, cap);
            if (!q) { rc = kfail(err, errlen, "out of memory"); break; }
            buf = q;
        }
        memcpy(buf + n, tmp, r);
        n += r;
    }
    fclose(f);
    if (rc == 0) rc = app_serve_keys_parse(path, buf ? buf : "", n, out, err, errlen);
    if (rc == 0) out->mode = mode;
    free(buf);
    return rc;
}

/* Contract: see serve.h. */
const char *app_serve_keys_warning(const app_serve_keys *k) {
    if (k && k->n_plain && (k->mode & 077))
        return "holds plain keys and can be read by other users (chmod 600 it, or store the keys as sha256:HEX)";
    return NULL;
}

/* Contract: see serve.h. Every key is compared (no early exit); the
 * comparison of two hashes touches all 64 bytes. */
const app_serve_key *app_serve_keys_find(const app_serve_keys *k, const char *token, size_t len) {
    if (!k || !token || len == 0 || len > 4096) return NULL;
    char h[65];
    llm_sha256_hex(token, len, h);
    const app_serve_key *found = NULL;
    for (size_t i = 0; i < k->n; i++) {
        volatile unsigned char d = 0;
        for (size_t j = 0; j < 64; j++) d |= (unsigned char)(h[j] ^ k->keys[i].hash[j]);
        if (d == 0) found = &k->keys[i];
    }
    return found;
}

/* Contract: see serve.h. */
int app_serve_keys_reload(app_server *s, char *err, size_t errlen) {
    if (!s->have_keys || !s->o.keys_file) {
        snprintf(err, errlen, "no --keys file to reload");
        return -1;
    }
    app_serve_keys fresh;
    int lrc = app_serve_keys_load(s->o.keys_file, &fresh, err, errlen);
    if (lrc == -1) {
        /* unreadable or unparsable: the keys in force stay (revoking them all
         * for a typo would lock every client out), and /metrics says so */
        pthread_mutex_lock(&s->keys_mu);
        s->keys_reload_errors++;
        s->keys_file_error = true;
        pthread_mutex_unlock(&s->keys_mu);
        return -1;
    }
    if (lrc == -2) memset(&fresh, 0, sizeof fresh);    /* deleted: every key is revoked */
    pthread_mutex_lock(&s->keys_mu);
    app_serve_keys *r = realloc(s->retired_keys, (s->n_retired_keys + 1) * sizeof *r);
    if (!r) {
        pthread_mutex_unlock(&s->keys_mu);
        app_serve_keys_free(&fresh);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->retired_keys = r;
    r[s->n_retired_keys++] = s->keys;
    s->keys = fresh;
    s->keys_reloads++;
    s->keys_file_error = false;
    int n = (int)fresh.n;
    pthread_mutex_unlock(&s->keys_mu);
    return n;
}
