/* test_app_serve_coll.c — `mrag serve` collections (issue 16 item 4) over
 * real sockets on 127.0.0.1: one server, two indexes (`--index hr=DIR
 * --index it=DIR2`); /api/collections; a request naming its collections
 * (API field, mrag.collections, /c/NAMES/ path, ?collections=); results of
 * both merged with the collection of every source; and a key limited to
 * `it` attacked the way a curious employee would: hr named in the body, the
 * URL, the query string, in another case, with an invisible character, in
 * duplicates, on every endpoint, streamed or not — it never gets one byte
 * of hr, and its refusals are the ones a name that does not exist gets.
 * A collection embedded by another model is refused at start, by name. */
#define _GNU_SOURCE
#include "tests/test.h"

#include <cJSON.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET "Zephyrquartz"
#define KEY_IT "it-only-key-5a7c9e1b"
#define KEY_ALL "all-key-3d2f6b8a90"
#define KEY_NONE "none-key-8b1e4c7d22"

static char mrag[512], model[600], other_model[600], ihr[600], iit[600], iodd[600], dir[400], keys[700];
static bool ready;
static char base[64];

static void setup(void) {
    if (ready) return;
    snprintf(mrag, sizeof mrag, "%s/mrag", test_build_dir());
    if (access(mrag, X_OK) != 0) SKIP("%s is missing (run make)", mrag);
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(model, sizeof model, "%s/m.gguf", dir);
    test_mkmodel(model, "--dim 64 --layers 1 --heads 4 --kv-heads 1 --ff 128 --ctx 2048 --seed 7");
    snprintf(other_model, sizeof other_model, "%s/other.gguf", dir);
    test_mkmodel(other_model, "--dim 64 --layers 1 --heads 4 --kv-heads 1 --ff 128 --ctx 2048 --seed 8");
    char root[800], cmd[4096];
    snprintf(root, sizeof root, "%s/hrdocs", dir);
    mkdir(root, 0755);
    test_put_file(root, "pay/salary-bands.md",
                  "# Salary bands\n\nThe " SECRET " salary band is confidential. Salary reviews happen in March.\n");
    test_put_file(root, "pay/leave.md", "# Leave\n\nEvery employee has 30 days of leave. Salary is paid monthly.\n");
    snprintf(ihr, sizeof ihr, "%s/ihr", dir);
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL %s ingest %s --index %s -m %s --threads 1 >/dev/null 2>&1", mrag,
             test_shq(root), test_shq(ihr), test_shq(model));
    REQUIRE(system(cmd) == 0, "ingest failed: %s", cmd);
    snprintf(root, sizeof root, "%s/itdocs", dir);
    mkdir(root, 0755);
    test_put_file(root, "net/vpn.md", "# VPN\n\nThe VPN uses WireGuard. Install the client and import the salary "
                                      "profile from the portal.\n");
    test_put_file(root, "net/wifi.md", "# Wifi\n\nThe office wifi is called Corp. Ask the helpdesk for the password.\n");
    snprintf(iit, sizeof iit, "%s/iit", dir);
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL %s ingest %s --index %s -m %s --threads 1 >/dev/null 2>&1", mrag,
             test_shq(root), test_shq(iit), test_shq(model));
    REQUIRE(system(cmd) == 0, "ingest failed: %s", cmd);
    snprintf(iodd, sizeof iodd, "%s/iodd", dir);
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL %s ingest %s --index %s -m %s --threads 1 >/dev/null 2>&1", mrag,
             test_shq(root), test_shq(iodd), test_shq(other_model));
    REQUIRE(system(cmd) == 0, "ingest failed: %s", cmd);
    snprintf(keys, sizeof keys, "%s/keys", dir);
    const char *kt = KEY_IT " bob public collections=it\n" KEY_ALL " boss *\n" KEY_NONE " eve * collections=gone\n";
    REQUIRE(test_write_file(keys, kt, strlen(kt)) == 0);
    chmod(keys, 0600);
    ready = true;
}

static pid_t live[8];

static void kill_live(void) {
    for (int i = 0; i < 8; i++)
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
}

/* Starts the server on hr and it (with --keys when with_keys). */
static pid_t start(bool with_keys) {
    setup();
    char hr[700], it[700], log[800];
    snprintf(hr, sizeof hr, "hr=%s", ihr);
    snprintf(it, sizeof it, "it=%s", iit);
    snprintf(log, sizeof log, "%s/serve-%d.log", dir, with_keys);
    const char *args[] = {"--index", hr, "--index", it, "-m", model, "--listen", "127.0.0.1:0", "--threads", "1",
                          "--max-tokens", "8", with_keys ? "--keys" : NULL, keys, NULL};
    static bool hooked;
    if (!hooked) { atexit(kill_live); hooked = true; }
    pid_t pid = test_serve_spawn(args, log, base, sizeof base);
    for (int i = 0; i < 8; i++)
        if (live[i] <= 0) { live[i] = pid; break; }
    return pid;
}

static void stop(pid_t pid) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < 8; i++)
        if (live[i] == pid) live[i] = 0;
}

/* One request (body NULL: GET); the status, *out the body (owned, "" when none). */
static long http(const char *path, const char *key, const char *body, char **out) {
    char url[2048];
    snprintf(url, sizeof url, "%s%s", base, path);
    test_buf b = {0};
    long st = test_http(url, &(test_http_req){.key = key, .body = body}, &b, NULL);
    *out = b.b ? b.b : strdup("");
    return st;
}

/* The "collection" of every hit / source / evidence unit of a reply, as a
 * string "hr,it,..." in order (owned). */
static char *collections_of(const char *reply, const char *array) {
    cJSON *o = cJSON_Parse(reply);
    char *s = calloc(1, 4096);
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(o, array)) {
        const char *c = cJSON_GetStringValue(cJSON_GetObjectItem(e, "collection"));
        if (s[0]) strcat(s, ",");
        strncat(s, c ? c : "(none)", 64);
    }
    cJSON_Delete(o);
    return s;
}

TEST(one_server_answers_from_both_collections_and_each_source_names_its_own) {
    pid_t pid = start(false);
    char *r = NULL;
    CHECK_EQ_INT(http("/api/collections", NULL, NULL, &r), 200);
    cJSON *o = cJSON_Parse(r);
    const cJSON *d = cJSON_GetObjectItem(o, "data");
    CHECK_EQ_INT(cJSON_GetArraySize(d), 2);
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 0), "name")), "hr");
    CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 1), "name")), "it");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 0), "documents")) == 2, "%s", r);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 1), "chunks")) >= 2, "%s", r);
    cJSON_Delete(o);
    free(r);
    /* no field: both, merged by rank (the best of each first), every hit named */
    CHECK_EQ_INT(http("/api/search?q=salary&mode=bm25&k=10", NULL, NULL, &r), 200);
    char *cs = collections_of(r, "hits");
    CHECK(strstr(cs, "hr") && strstr(cs, "it"), "%s", r);
    CHECK(strncmp(cs, "hr,it", 5) == 0, "the best of each collection leads (rank fusion): %s", cs);
    CHECK(strstr(r, "\"uri\":\"itdocs/net/vpn.md\"") && strstr(r, "\"uri\":\"hrdocs/pay/salary-bands.md\""), "%s", r);
    free(cs);
    free(r);
    /* hybrid too */
    CHECK_EQ_INT(http("/api/search?q=salary+band&k=10", NULL, NULL, &r), 200);
    cs = collections_of(r, "hits");
    CHECK(strstr(cs, "hr") && strstr(cs, "it"), "%s", r);
    free(cs);
    free(r);
    /* the query parameter and the path pick one */
    CHECK_EQ_INT(http("/api/search?q=salary&mode=bm25&collections=it", NULL, NULL, &r), 200);
    cs = collections_of(r, "hits");
    CHECK(cs[0] && !strstr(cs, "hr"), "%s", r);
    free(cs);
    free(r);
    CHECK_EQ_INT(http("/c/hr/api/search?q=salary&mode=bm25", NULL, NULL, &r), 200);
    cs = collections_of(r, "hits");
    CHECK(cs[0] && !strstr(cs, "it"), "%s", r);
    free(cs);
    free(r);
    /* /api/ask: the field */
    CHECK_EQ_INT(http("/api/ask", NULL, "{\"question\":\"Which salary band is confidential?\",\"extractive\":true,"
                                        "\"collections\":[\"hr\"]}", &r), 200);
    cs = collections_of(r, "sources");
    CHECK(cs[0] && !strstr(cs, "it"), "%s", r);
    free(cs);
    cs = collections_of(r, "evidence");
    CHECK(cs[0] && !strstr(cs, "it"), "%s", r);
    free(cs);
    CHECK(strstr(r, SECRET), "%s", r);
    free(r);
    CHECK_EQ_INT(http("/api/ask", NULL, "{\"question\":\"How does the salary profile for the VPN work?\","
                                        "\"extractive\":true}", &r), 200);
    cs = collections_of(r, "sources");
    CHECK(strstr(cs, "hr") && strstr(cs, "it"), "both collections answer: %s", r);
    free(cs);
    free(r);
    /* the OpenAI-compatible endpoint: mrag.collections, and the path */
    CHECK_EQ_INT(http("/v1/chat/completions", NULL, "{\"messages\":[{\"role\":\"user\",\"content\":\"How does the "
                      "salary profile for the VPN work?\"}],\"mrag\":{\"extractive\":true,\"collections\":[\"it\"]}}", &r), 200);
    cs = collections_of(r, "sources");
    CHECK(cs[0] && !strstr(cs, "hr"), "%s", r);
    free(cs);
    free(r);
    CHECK_EQ_INT(http("/c/hr/v1/chat/completions", NULL, "{\"messages\":[{\"role\":\"user\",\"content\":\"How does the "
                      "salary profile for the VPN work?\"}],\"mrag\":{\"extractive\":true}}", &r), 200);
    cs = collections_of(r, "sources");
    CHECK(cs[0] && !strstr(cs, "it"), "%s", r);
    free(cs);
    free(r);
    /* bad names: a clear 404 / 400 */
    CHECK_EQ_INT(http("/api/ask", NULL, "{\"question\":\"salary?\",\"collections\":[\"finance\"]}", &r), 404);
    CHECK(strstr(r, "no collection named 'finance'"), "%s", r);
    free(r);
    CHECK_EQ_INT(http("/api/ask", NULL, "{\"question\":\"salary?\",\"collections\":[]}", &r), 400);
    CHECK(strstr(r, "'collections' must be an array of 1 to 64"), "%s", r);
    free(r);
    CHECK_EQ_INT(http("/api/ask", NULL, "{\"question\":\"salary?\",\"collections\":\"hr\"}", &r), 400);
    free(r);
    /* the body picks within the path: it is not in /c/hr/ */
    CHECK_EQ_INT(http("/c/hr/api/ask", NULL, "{\"question\":\"salary?\",\"collections\":[\"it\"]}", &r), 404);
    free(r);
    CHECK_EQ_INT(http("/c/hr/healthz", NULL, NULL, &r), 404);
    free(r);
    /* healthz counts every collection (no names) */
    CHECK_EQ_INT(http("/healthz", NULL, NULL, &r), 200);
    o = cJSON_Parse(r);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(o, "documents")) == 4, "%s", r);
    cJSON_Delete(o);
    free(r);
    stop(pid);
}

/* A refusal with the name replaced: the same bytes for hr (exists, not the
 * key's) and zz (does not exist). */
static void same_as_unknown(const char *what, long st_hr, const char *r_hr, long st_zz, const char *r_zz) {
    CHECK_EQ_INT(st_hr, st_zz);
    char *a = strdup(r_hr);
    for (char *p = a; (p = strstr(p, "'hr'")); p += 4) memcpy(p, "'zz'", 4);
    for (char *p = a; (p = strstr(p, "'HR'")); p += 4) memcpy(p, "'ZZ'", 4);
    CHECK(strcmp(a, r_zz) == 0, "%s: a collection the key may not use is answered differently from one that does "
                                "not exist:\n  %s\n  %s", what, r_hr, r_zz);
    free(a);
}

/* Nothing of hr in a reply to the it-only key. */
static void no_hr(const char *what, const char *r) {
    CHECK(!strstr(r, SECRET) && !strstr(r, "hrdocs") && !strstr(r, "\"hr\"") && !strstr(r, "salary-bands") &&
          !strstr(r, "Salary bands"), "%s leaked hr: %s", what, r);
}

TEST(a_key_limited_to_it_never_sees_hr_through_any_endpoint) {
    pid_t pid = start(true);
    char *r = NULL, *z = NULL;
    /* the control: a key for every collection finds the secret (so the
     * probes below could find it too) */
    CHECK_EQ_INT(http("/api/search?q=" SECRET "&mode=bm25", KEY_ALL, NULL, &r), 200);
    CHECK(strstr(r, SECRET) && strstr(r, "\"collection\":\"hr\""), "%s", r);
    free(r);
    CHECK_EQ_INT(http("/api/ask", KEY_ALL, "{\"question\":\"What is the " SECRET " salary band?\",\"extractive\":true}", &r), 200);
    CHECK(strstr(r, SECRET), "%s", r);
    free(r);
    /* listing */
    CHECK_EQ_INT(http("/api/collections", KEY_IT, NULL, &r), 200);
    no_hr("/api/collections", r);
    CHECK(strstr(r, "\"name\":\"it\""), "%s", r);
    free(r);
    /* searches that do not name hr, and every way of naming it */
    static const char *const searches[] = {
        "/api/search?q=" SECRET "+salary+band&mode=bm25",
        "/api/search?q=" SECRET "+salary+band",
        "/api/search?q=" SECRET "+salary+band&mode=dense&k=50",
        "/api/search?q=" SECRET "&collections=it",
    };
    for (size_t i = 0; i < sizeof searches / sizeof *searches; i++) {
        long st = http(searches[i], KEY_IT, NULL, &r);
        CHECK(st == 200, "%s: %ld %s", searches[i], st, r);
        no_hr(searches[i], r);
        free(r);
    }
    static const char *const named[][2] = {
        {"/api/search?q=" SECRET "&collections=hr", "/api/search?q=" SECRET "&collections=zz"},
        {"/api/search?q=" SECRET "&collections=it,hr", "/api/search?q=" SECRET "&collections=it,zz"},
        {"/api/search?q=" SECRET "&collections=hr,hr,it", "/api/search?q=" SECRET "&collections=zz,zz,it"},
        {"/api/search?q=" SECRET "&collections=HR", "/api/search?q=" SECRET "&collections=ZZ"},
        {"/c/hr/api/search?q=" SECRET, "/c/zz/api/search?q=" SECRET},
        {"/c/it,hr/api/search?q=" SECRET, "/c/it,zz/api/search?q=" SECRET},
        {"/c/HR/api/search?q=" SECRET, "/c/ZZ/api/search?q=" SECRET},
        {"/c/h%72/api/search?q=" SECRET, "/c/z%7a/api/search?q=" SECRET},
        {"/c/hr/api/collections", "/c/zz/api/collections"},
        {"/c/hr/v1/models", "/c/zz/v1/models"},
    };
    for (size_t i = 0; i < sizeof named / sizeof *named; i++) {
        long a = http(named[i][0], KEY_IT, NULL, &r), b = http(named[i][1], KEY_IT, NULL, &z);
        CHECK(a == 404, "%s: %ld %s", named[i][0], a, r);
        no_hr(named[i][0], r);
        same_as_unknown(named[i][0], a, r, b, z);
        free(r);
        free(z);
    }
    /* names with invisible or look-alike characters: not hr, and nothing of it */
    static const char *const odd[] = {
        "/api/search?q=" SECRET "&collections=hr%E2%80%8B",     /* zero-width space */
        "/api/search?q=" SECRET "&collections=%D5%B0r",         /* Armenian ho */
        "/api/search?q=" SECRET "&collections=hr%00",
        "/api/search?q=" SECRET "&collections=+hr",
        "/api/search?q=" SECRET "&collections=,,",
        "/c/hr%E2%80%8B/api/search?q=" SECRET,
        "/c//api/search?q=" SECRET,
    };
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        long a = http(odd[i], KEY_IT, NULL, &r);
        CHECK(a == 404 || a == 400, "%s: %ld %s", odd[i], a, r);
        no_hr(odd[i], r);
        free(r);
    }
    /* the POST endpoints, streamed or not */
    static const char *const posts[][3] = {
        {"/api/ask", "{\"question\":\"What is the " SECRET " salary band?\",\"extractive\":true}", NULL},
        {"/api/ask", "{\"question\":\"What is the " SECRET " salary band?\",\"stream\":true}", NULL},
        {"/api/ask", "{\"question\":\"What is the " SECRET " salary band?\",\"collections\":[\"hr\"]}",
         "{\"question\":\"What is the " SECRET " salary band?\",\"collections\":[\"zz\"]}"},
        {"/api/ask", "{\"question\":\"What is the " SECRET " salary band?\",\"collections\":[\"it\",\"hr\",\"hr\"]}",
         "{\"question\":\"What is the " SECRET " salary band?\",\"collections\":[\"it\",\"zz\",\"zz\"]}"},
        {"/api/ask", "{\"question\":\"What is the " SECRET " salary band?\",\"collections\":[\"HR\"],\"stream\":true}",
         "{\"question\":\"What is the " SECRET " salary band?\",\"collections\":[\"ZZ\"],\"stream\":true}"},
        {"/api/ask", "{\"question\":\"What is the " SECRET " salary band?\",\"collections\":[\"h\\u0072\"]}",
         "{\"question\":\"What is the " SECRET " salary band?\",\"collections\":[\"z\\u007a\"]}"},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"What is the " SECRET
                                 " salary band?\"}],\"mrag\":{\"extractive\":true}}", NULL},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"What is the " SECRET
                                 " salary band?\"}],\"stream\":true}", NULL},
        {"/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"What is the " SECRET
                                 " salary band?\"}],\"mrag\":{\"collections\":[\"hr\"]}}",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"What is the " SECRET
         " salary band?\"}],\"mrag\":{\"collections\":[\"zz\"]}}"},
        {"/c/hr/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"What is the " SECRET
                                      " salary band?\"}],\"stream\":true}", NULL},
        {"/c/hr/v1/embeddings", "{\"input\":\"salary\"}", NULL},
        {"/c/hr/api/ask", "{\"question\":\"What is the " SECRET " salary band?\"}", NULL},
    };
    for (size_t i = 0; i < sizeof posts / sizeof *posts; i++) {
        long a = http(posts[i][0], KEY_IT, posts[i][1], &r);
        no_hr(posts[i][1], r);
        if (posts[i][2]) {
            long b = http(posts[i][0], KEY_IT, posts[i][2], &z);
            CHECK(a == 404, "%s %s: %ld %s", posts[i][0], posts[i][1], a, r);
            same_as_unknown(posts[i][1], a, r, b, z);
            free(z);
        } else if (strncmp(posts[i][0], "/c/hr/", 6) == 0) {
            char zp[128];
            snprintf(zp, sizeof zp, "/c/zz/%s", posts[i][0] + 6);
            long b = http(zp, KEY_IT, posts[i][1], &z);
            CHECK(a == 404, "%s: %ld %s", posts[i][0], a, r);
            same_as_unknown(posts[i][0], a, r, b, z);
            free(z);
        } else {
            CHECK(a == 200, "%s %s: %ld %s", posts[i][0], posts[i][1], a, r);
        }
        free(r);
    }
    /* passages: the id of every chunk, in every form, never reads hr */
    for (int id = 1; id <= 6; id++) {
        char pa[160], pz[160];
        snprintf(pa, sizeof pa, "/api/passage?id=%d", id);
        long a = http(pa, KEY_IT, NULL, &r);
        CHECK(a == 200 || a == 404, "%s: %ld %s", pa, a, r);
        no_hr(pa, r);
        if (a == 200) CHECK(strstr(r, "\"collection\":\"it\""), "%s", r);
        free(r);
        static const char *const forms[][2] = {
            {"/api/passage?id=%d&collection=hr", "/api/passage?id=%d&collection=zz"},
            {"/api/passage?id=%d&collection=HR", "/api/passage?id=%d&collection=ZZ"},
            {"/c/hr/api/passage?id=%d", "/c/zz/api/passage?id=%d"},
            {"/c/it/api/passage?id=%d&collection=hr", "/c/it/api/passage?id=%d&collection=zz"},
        };
        for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
            snprintf(pa, sizeof pa, forms[f][0], id);
            snprintf(pz, sizeof pz, forms[f][1], id);
            a = http(pa, KEY_IT, NULL, &r);
            long b = http(pz, KEY_IT, NULL, &z);
            CHECK(a == 404, "%s: %ld %s", pa, a, r);
            no_hr(pa, r);
            same_as_unknown(pa, a, r, b, z);
            free(r);
            free(z);
        }
    }
    /* the control: a key of both names the collection (two are served),
     * and then reads hr */
    CHECK_EQ_INT(http("/api/passage?id=1", KEY_ALL, NULL, &r), 400);
    CHECK(strstr(r, "collection=NAME"), "%s", r);
    free(r);
    bool seen = false;
    for (int id = 1; id <= 6 && !seen; id++) {
        char pa[160];
        snprintf(pa, sizeof pa, "/api/passage?id=%d&collection=hr", id);
        if (http(pa, KEY_ALL, NULL, &r) == 200) seen = strstr(r, SECRET) && strstr(r, "\"collection\":\"hr\"");
        free(r);
    }
    CHECK(seen, "the key of every collection reads the hr passage");
    /* a key whose collections are not served here uses none */
    CHECK_EQ_INT(http("/api/search?q=" SECRET, KEY_NONE, NULL, &r), 403);
    no_hr("a key of no served collection", r);
    free(r);
    CHECK_EQ_INT(http("/api/collections", KEY_NONE, NULL, &r), 200);
    CHECK(strstr(r, "\"data\":[]"), "%s", r);
    free(r);
    stop(pid);
}

/* Runs `mrag serve` expecting it to refuse to start; its stderr (owned). */
static char *refused_start(const char *a1, const char *a2, int *code) {
    setup();
    char cmd[4096], log[800];
    snprintf(log, sizeof log, "%s/refused.log", dir);
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL -u MRAG_INDEX timeout 60 %s serve --index %s --index %s -m %s "
             "--listen 127.0.0.1:0 --threads 1 >/dev/null 2>%s", mrag, a1, a2, test_shq(model), test_shq(log));
    int st = system(cmd);
    *code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    size_t n;
    char *t = test_read_file(log, &n);
    return t ? t : strdup("");
}

TEST(a_collection_of_another_model_or_a_name_given_twice_is_refused_at_start) {
    setup();
    char a[700], b[700];
    snprintf(a, sizeof a, "hr=%s", ihr);
    snprintf(b, sizeof b, "odd=%s", iodd);
    int code;
    char *t = refused_start(test_shq(a), test_shq(b), &code);
    CHECK_EQ_INT(code, 1);
    CHECK(strstr(t, "collection 'odd'") && strstr(t, "another model"), "%s", t);
    free(t);
    snprintf(b, sizeof b, "hr=%s", iit);
    t = refused_start(test_shq(a), test_shq(b), &code);
    CHECK_EQ_INT(code, 1);
    CHECK(strstr(t, "the collection 'hr' is given twice"), "%s", t);
    free(t);
}

/* Runs a shell command line; its stdout+stderr (owned) and exit code. */
static char *run(const char *cmd, int *code) {
    char full[8192], out[800];
    snprintf(out, sizeof out, "%s/cli.out", dir);
    snprintf(full, sizeof full, "env -u MRAG_MODEL -u MRAG_INDEX %s >%s 2>&1", cmd, test_shq(out));
    int st = system(full);
    *code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    size_t n;
    char *t = test_read_file(out, &n);
    return t ? t : strdup("");
}

TEST(search_ask_and_chat_take_several_indexes) {
    setup();
    char cmd[6000], a[700], b[700];
    snprintf(a, sizeof a, "hr=%s", ihr);
    snprintf(b, sizeof b, "%s", iit);
    int code;
    /* search: both indexes, merged by rank, each hit named (NAME, else the folder) */
    snprintf(cmd, sizeof cmd, "%s search --index %s --index %s --mode bm25 --json -k 10 salary", mrag, test_shq(a), test_shq(b));
    char *t = run(cmd, &code);
    CHECK_EQ_INT(code, 0);
    cJSON *o = cJSON_Parse(t);
    CHECK(cJSON_GetArraySize(o) >= 3, "%s", t);
    const char *i1 = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "index"));
    const char *i2 = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(o, 1), "index"));
    CHECK(i1 && i2 && strcmp(i1, "hr") == 0 && strcmp(i2, iit) == 0, "the best of each index first: %s", t);
    cJSON_Delete(o);
    free(t);
    /* hybrid, text: the index in front of each citation */
    snprintf(cmd, sizeof cmd, "%s search --index %s --index %s -m %s --threads 1 salary band", mrag, test_shq(a),
             test_shq(b), test_shq(model));
    t = run(cmd, &code);
    CHECK_EQ_INT(code, 0);
    CHECK(strstr(t, "[hr] ") && strstr(t, "hrdocs/pay/") && strstr(t, "itdocs/net/"), "%s", t);
    free(t);
    /* one index: no index names (as before) */
    snprintf(cmd, sizeof cmd, "%s search --index %s --mode bm25 --json salary", mrag, test_shq(b));
    t = run(cmd, &code);
    CHECK(code == 0 && !strstr(t, "\"index\""), "%s", t);
    free(t);
    /* ask: sources and evidence from both, named */
    snprintf(cmd, sizeof cmd, "%s ask --index %s --index %s -m %s --threads 1 --json "
             "'How does the salary profile for the VPN work?'", mrag, test_shq(a), test_shq(b), test_shq(model));
    t = run(cmd, &code);
    CHECK_EQ_INT(code, 0);
    const char *js = strchr(t, '{');
    o = js ? cJSON_Parse(js) : NULL;
    char names[256] = "";
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(o, "sources")) {
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItem(e, "index"));
        strncat(names, n ? n : "(none)", 100);
        strcat(names, ";");
    }
    CHECK(strstr(names, "hr;") && strstr(names, "iit;"), "%s\n%s", names, t);
    cJSON_Delete(o);
    free(t);
    /* chat: the sources say their index */
    snprintf(cmd, sizeof cmd, "printf 'What is the " SECRET " salary band?\n/sources\n' | %s chat --index %s --index %s "
             "-m %s --threads 1", mrag, test_shq(a), test_shq(b), test_shq(model));
    t = run(cmd, &code);
    CHECK(code == 0 && strstr(t, "[1] [hr] ") && strstr(t, "hrdocs/pay/salary-bands.md:1-3"), "%s", t);
    free(t);
    /* another model's index, and a name given twice: refused, named */
    snprintf(b, sizeof b, "odd=%s", iodd);
    snprintf(cmd, sizeof cmd, "%s search --index %s --index %s -m %s --threads 1 salary", mrag, test_shq(a), test_shq(b),
             test_shq(model));
    t = run(cmd, &code);
    CHECK(code == 1 && strstr(t, "the index odd was embedded by another model"), "%s", t);
    free(t);
    snprintf(cmd, sizeof cmd, "%s ask --index %s --index %s --extractive salary", mrag, test_shq(a), test_shq(a));
    t = run(cmd, &code);
    CHECK(code == 1 && strstr(t, "the index hr is given twice"), "%s", t);
    free(t);
}

TEST_MAIN(RUN(search_ask_and_chat_take_several_indexes), RUN(one_server_answers_from_both_collections_and_each_source_names_its_own),
          RUN(a_key_limited_to_it_never_sees_hr_through_any_endpoint),
          RUN(a_collection_of_another_model_or_a_name_given_twice_is_refused_at_start))
