/* test_app_serve_sec.c — `mrag serve` attacked the way a hostile client
 * would, over real sockets on 127.0.0.1 (issue 10): sources that must not
 * reveal the server's absolute paths, 260 connections that never finish
 * their request head (slowloris) while health checks must get through,
 * foreign Host names (DNS rebinding), conflicting framing headers (request
 * smuggling), a keys file emptied, deleted or broken before SIGHUP, and a
 * keys file with plain keys that others can read. */
#define _GNU_SOURCE
#include "tests/test.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECRET "Zephyrquartz"
#define KEY_HR "hr-key-4f1c2a9b7e"
#define KEY_FULL "full-key-77aa55cc33"

static char mrag[512], model[600], idx[600], root[700], dir[400];
static bool ready;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One index for every case: a public and an hr document under docs/. */
static void setup(void) {
    if (ready) return;
    snprintf(mrag, sizeof mrag, "%s/mrag", test_build_dir());
    if (access(mrag, X_OK) != 0) SKIP("%s is missing (run make)", mrag);
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    snprintf(model, sizeof model, "%s/m.gguf", dir);
    test_mkmodel(model, "--dim 64 --layers 1 --heads 4 --kv-heads 1 --ff 128 --ctx 2048 --seed 7");
    snprintf(root, sizeof root, "%s/docs", dir);
    mkdir(root, 0755);
    test_put_file(root, "public/vpn.md", "# VPN\n\nThe VPN uses WireGuard. Install the client and import the profile.\n");
    test_put_file(root, "hr/salary-bands.md", "# Salary bands\n\nThe " SECRET " salary band is confidential.\n");
    char rules[800], cmd[4096];
    snprintf(rules, sizeof rules, "%s/access.rules", dir);
    REQUIRE(test_write_file(rules, "path hr/** hr\n", 14) == 0);
    snprintf(idx, sizeof idx, "%s/idx", dir);
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL %s ingest %s --index %s -m %s --threads 1 --access %s >/dev/null 2>&1",
             mrag, test_shq(root), test_shq(idx), test_shq(model), test_shq(rules));
    REQUIRE(system(cmd) == 0, "ingest failed: %s", cmd);
    ready = true;
}

typedef struct {
    pid_t pid;
    int port;
    char log[800];
} server;

/* Servers still running: a case that ends early (REQUIRE) leaves its
 * servers here; they are killed at exit. */
static pid_t live[32];

static void kill_live(void) {
    for (int i = 0; i < 32; i++)
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
}

/* Starts mrag serve on the index with extra args (NULL-terminated). */
static void start(server *sv, const char *name, const char *const *extra) {
    setup();
    const char *args[48];
    int n = 0;
    const char *base[] = {"--index", idx, "-m", model, "--listen", "127.0.0.1:0", "--threads", "1", "--max-tokens", "16"};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) args[n++] = base[i];
    for (int i = 0; extra && extra[i] && n < 46; i++) args[n++] = extra[i];
    args[n] = NULL;
    snprintf(sv->log, sizeof sv->log, "%s/%s.log", dir, name);
    char url[64];
    static bool hooked;
    if (!hooked) { atexit(kill_live); hooked = true; }
    sv->pid = test_serve_spawn(args, sv->log, url, sizeof url);
    sv->port = atoi(strrchr(url, ':') + 1);
    for (int i = 0; i < 32; i++)
        if (live[i] <= 0) { live[i] = sv->pid; break; }
}

static void stop(server *sv) {
    if (sv->pid > 0) {
        kill(sv->pid, SIGKILL);
        waitpid(sv->pid, NULL, 0);
        for (int i = 0; i < 32; i++)
            if (live[i] == sv->pid) live[i] = 0;
        sv->pid = -1;
    }
}

/* ------------------------------------------------------------ raw sockets */

/* A TCP connection to 127.0.0.1:port from source address src (NULL: any). */
static int tcp_connect(int port, const char *src) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (src) {
        struct sockaddr_in b = {.sin_family = AF_INET};
        inet_pton(AF_INET, src, &b.sin_addr);
        if (bind(fd, (struct sockaddr *)&b, sizeof b) != 0) { close(fd); return -1; }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { close(fd); return -1; }
    return fd;
}

static bool send_all(int fd, const char *b, size_t n) {
    while (n) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k <= 0) return false;
        b += k;
        n -= (size_t)k;
    }
    return true;
}

/* Reads what arrives within timeout_s into a malloc'd string; *closed when
 * the server closed the connection (EOF or reset) in that time. */
static char *read_for(int fd, double timeout_s, bool *closed) {
    size_t cap = 65536, n = 0;
    char *b = malloc(cap + 1);
    *closed = false;
    double until = now_s() + timeout_s;
    while (b && now_s() < until) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ms = (int)((until - now_s()) * 1000);
        if (poll(&p, 1, ms > 0 ? ms : 0) <= 0) break;
        ssize_t k = recv(fd, b + n, cap - n, 0);
        if (k <= 0) { *closed = true; break; }
        n += (size_t)k;
        if (n == cap) break;
    }
    if (b) b[n] = 0;
    return b;
}

/* Sends a whole request on a fresh connection, returns the status (0 when
 * no response came within timeout_s) and, when body is not NULL, the reply. */
static int raw_status(int port, const char *src, const char *req, double timeout_s, char **reply) {
    if (reply) *reply = NULL;
    int fd = tcp_connect(port, src);
    if (fd < 0) return 0;
    int st = 0;
    if (send_all(fd, req, strlen(req))) {
        double until = now_s() + timeout_s;
        char *all = NULL;
        while (now_s() < until) {
            bool closed;
            char *got = read_for(fd, until - now_s(), &closed);
            if (got && *got) {
                size_t a = all ? strlen(all) : 0;
                char *m = realloc(all, a + strlen(got) + 1);
                if (m) { memcpy(m + a, got, strlen(got) + 1); all = m; }
            }
            free(got);
            if (closed || (all && strstr(all, "\r\n\r\n") && (strstr(all, "}") || strstr(all, "Content-Length: 0")))) break;
        }
        if (all && strncmp(all, "HTTP/1.", 7) == 0) st = atoi(all + 9);
        if (reply) *reply = all;
        else free(all);
    }
    close(fd);
    return st;
}

static int get_status(int port, const char *path, const char *host, const char *key, char **reply) {
    char req[1024];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\n%s%s%sConnection: close\r\n\r\n", path, host,
             key ? "Authorization: Bearer " : "", key ? key : "", key ? "\r\n" : "");
    return raw_status(port, NULL, req, 5, reply);
}

/* The JSON body of a raw reply (after the head), parsed. */
static cJSON *body_json(const char *reply) {
    const char *b = reply ? strstr(reply, "\r\n\r\n") : NULL;
    return b ? cJSON_Parse(b + 4) : NULL;
}

/* ------------------------------------------------------------ item 5 */

TEST(sources_show_paths_relative_to_the_ingested_root) {
    server a = {0}, k = {0};
    start(&a, "anon", NULL);
    char *reply = NULL;
    /* anonymous: search hits and ask sources */
    CHECK_EQ_INT(get_status(a.port, "/api/search?q=WireGuard+VPN&k=3&mode=bm25", "127.0.0.1", NULL, &reply), 200);
    CHECK(reply && !strstr(reply, dir), "an absolute path reached an anonymous caller: %s", reply ? reply : "");
    CHECK(reply && strstr(reply, "\"uri\":\"docs/public/vpn.md\""), "%s", reply ? reply : "");
    free(reply);
    char req[1024];
    const char *body = "{\"question\":\"How do I set up the VPN with WireGuard?\",\"max_tokens\":4}";
    snprintf(req, sizeof req,
             "POST /api/ask HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s", strlen(body), body);
    CHECK_EQ_INT(raw_status(a.port, NULL, req, 30, &reply), 200);
    cJSON *o = body_json(reply);
    cJSON *src = cJSON_GetObjectItem(o, "sources");
    CHECK(cJSON_GetArraySize(src) >= 1, "%s", reply ? reply : "");
    const cJSON *e;
    cJSON_ArrayForEach(e, src) {
        const char *u = cJSON_GetStringValue(cJSON_GetObjectItem(e, "uri"));
        CHECK(u && u[0] != '/' && strncmp(u, "docs/", 5) == 0, "source uri %s", u ? u : "(null)");
    }
    cJSON_Delete(o);
    free(reply);
    stop(&a);
    /* a key: relative too; a key with full-paths: the absolute path */
    char keys[900], text[512];
    snprintf(keys, sizeof keys, "%s/paths.keys", dir);
    snprintf(text, sizeof text, "%s alice hr\n%s ops hr full-paths\n", KEY_HR, KEY_FULL);
    REQUIRE(test_write_file(keys, text, strlen(text)) == 0);
    chmod(keys, 0600);
    const char *ka[] = {"--keys", keys, NULL};
    start(&k, "paths", ka);
    CHECK_EQ_INT(get_status(k.port, "/api/search?q=" SECRET "&k=3&mode=bm25", "127.0.0.1", KEY_HR, &reply), 200);
    CHECK(reply && strstr(reply, "\"uri\":\"docs/hr/salary-bands.md\"") && !strstr(reply, dir), "%s", reply ? reply : "");
    free(reply);
    CHECK_EQ_INT(get_status(k.port, "/api/search?q=" SECRET "&k=3&mode=bm25", "127.0.0.1", KEY_FULL, &reply), 200);
    char want[1200];
    snprintf(want, sizeof want, "\"uri\":\"%s", dir);
    CHECK(reply && strstr(reply, want) && strstr(reply, "/docs/hr/salary-bands.md\""), "%s", reply ? reply : "");
    free(reply);
    stop(&k);
}

/* The body of a raw reply (after the head), copied; "" when none. */
static char *body_of(const char *reply) {
    const char *b = reply ? strstr(reply, "\r\n\r\n") : NULL;
    return strdup(b ? b + 4 : "");
}

/* GET /api/passage (issue 16): without keys every caller is anonymous and
 * reads public passages only, with paths relative to the ingested root; the
 * hr passage answers exactly as an id that does not exist; a `full-paths`
 * key gets the absolute path, as in search; tricks in the path are 404s. */
TEST(passages_for_anonymous_callers_are_public_only) {
    server a = {0}, k = {0};
    char keys[900], text[512], path[128];
    snprintf(keys, sizeof keys, "%s/passage.keys", dir);
    snprintf(text, sizeof text, "%s alice hr\n%s ops hr full-paths\n", KEY_HR, KEY_FULL);
    REQUIRE(test_write_file(keys, text, strlen(text)) == 0);
    chmod(keys, 0600);
    const char *ka[] = {"--keys", keys, NULL};
    start(&k, "passage-keys", ka);
    char *reply = NULL;
    CHECK_EQ_INT(get_status(k.port, "/api/search?q=" SECRET "&k=1&mode=bm25", "127.0.0.1", KEY_HR, &reply), 200);
    cJSON *o = body_json(reply);
    cJSON *h = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "hits"), 0);
    REQUIRE(h, "%s", reply ? reply : "");
    long long hr_id = (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(h, "chunk_id"));
    cJSON_Delete(o);
    free(reply);
    snprintf(path, sizeof path, "/api/passage?id=%lld", hr_id);
    CHECK_EQ_INT(get_status(k.port, path, "127.0.0.1", KEY_HR, &reply), 200);
    CHECK(reply && strstr(reply, "\"uri\":\"docs/hr/salary-bands.md\"") && !strstr(reply, dir), "%s", reply ? reply : "");
    free(reply);
    CHECK_EQ_INT(get_status(k.port, path, "127.0.0.1", KEY_FULL, &reply), 200);
    char want[1200];
    snprintf(want, sizeof want, "\"uri\":\"%s/docs/hr/salary-bands.md\"", dir);
    CHECK(reply && strstr(reply, want), "full-paths: %s", reply ? reply : "");
    free(reply);
    stop(&k);

    start(&a, "passage-anon", NULL);
    CHECK_EQ_INT(get_status(a.port, "/api/passage?id=88888888", "127.0.0.1", NULL, &reply), 404);
    char *absent = body_of(reply);
    free(reply);
    CHECK(strstr(absent, "no such passage") != NULL, "%s", absent);
    CHECK_EQ_INT(get_status(a.port, path, "127.0.0.1", NULL, &reply), 404);
    char *b = body_of(reply);
    CHECK_EQ_STR(b, absent);
    CHECK(!strstr(reply, SECRET) && !strstr(reply, "salary"), "%s", reply);
    free(b);
    free(reply);
    int seen = 0;
    for (long long id = 1; id <= hr_id + 2; id++) {
        snprintf(path, sizeof path, "/api/passage?id=%lld", id);
        int st = get_status(a.port, path, "127.0.0.1", NULL, &reply);
        b = body_of(reply);
        if (st == 200) {
            seen++;
            CHECK(strstr(b, "\"uri\":\"docs/public/vpn.md\"") && !strstr(b, dir) && !strstr(b, SECRET), "id %lld: %s", id, b);
        } else {
            CHECK_EQ_INT(st, 404);
            CHECK_EQ_STR(b, absent);
        }
        free(b);
        free(reply);
    }
    CHECK(seen >= 1, "no public passage was readable");
    /* the path as sent, not normalised by a client */
    static const char *const tricks[] = {"/api/passage/../search?q=VPN", "/api/passage/1", "/api//passage?id=1",
                                         "/API/passage?id=1", "/api/passage%3fid=1", NULL};
    for (int i = 0; tricks[i]; i++) {
        CHECK(get_status(a.port, tricks[i], "127.0.0.1", NULL, &reply) == 404, "%s: %s", tricks[i], reply ? reply : "");
        free(reply);
    }
    free(absent);
    stop(&a);
}

/* ------------------------------------------------------------ item 6 */

/* Opens n connections from the source addresses srcs (round robin) that
 * send the start of a request head and never finish it. */
static int open_slow(int port, int *fds, int n, const char *const *srcs, int n_srcs) {
    int ok = 0;
    for (int i = 0; i < n; i++) {
        fds[i] = tcp_connect(port, srcs[i % n_srcs]);
        if (fds[i] >= 0) {
            const char *part = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
            if (send_all(fds[i], part, strlen(part))) ok++;
        }
    }
    return ok;
}

/* Health checks every 200 ms for secs seconds, each on a fresh connection
 * from src with a 2 s limit; returns how many failed. */
static int health_failures(int port, const char *src, double secs, int *tries) {
    int failed = 0;
    *tries = 0;
    double until = now_s() + secs;
    while (now_s() < until) {
        double t0 = now_s();
        int st = raw_status(port, src, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 2, NULL);
        if (st != 200 || now_s() - t0 > 2) failed++;
        (*tries)++;
        usleep(200 * 1000);
    }
    return failed;
}

/* The value of the /metrics line that starts with line_start, or -1. */
static double metric(int port, const char *line_start) {
    char *reply = NULL;
    get_status(port, "/metrics", "127.0.0.1", NULL, &reply);
    double v = -1;
    size_t n = strlen(line_start);
    for (const char *l = reply; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, line_start, n) == 0) { v = atof(l + n); break; }
    free(reply);
    return v;
}

TEST(slow_request_heads_never_lock_out_health_checks) {
    server a = {0};
    const char *extra[] = {"--head-timeout", "3", NULL};
    start(&a, "slow", extra);
    static int fds[260];
    /* 260 slow sockets from the health checker's own address */
    const char *one[] = {"127.0.0.1"};
    double t_open = now_s();
    int opened = open_slow(a.port, fds, 260, one, 1);
    CHECK(opened > 200, "only %d slow connections opened", opened);
    int tries;
    int failed = health_failures(a.port, "127.0.0.1", 2.0, &tries);
    CHECK(failed == 0, "%d of %d health checks failed with 260 slow heads from the same address", failed, tries);
    /* the server closes what it kept of them once the head deadline (3 s)
     * passes (the watchdog looks every 200 ms) */
    while (now_s() < t_open + 4.5) usleep(50 * 1000);
    int still_open = 0;
    for (int i = 0; i < 260; i++) {
        if (fds[i] < 0) continue;
        bool closed = false;
        free(read_for(fds[i], 0.05, &closed));
        if (!closed) still_open++;
        close(fds[i]);
    }
    CHECK(still_open == 0, "%d slow connections still open after the head deadline", still_open);
    /* 260 slow sockets from many addresses (under the per-address cap):
     * the oldest pending heads give way to new connections */
    const char *many[] = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6",
                          "127.0.0.7", "127.0.0.8", "127.0.0.9", "127.0.0.10", "127.0.0.11"};
    opened = open_slow(a.port, fds, 260, many, 10);
    CHECK(opened > 200, "only %d slow connections opened", opened);
    failed = health_failures(a.port, "127.0.0.1", 2.0, &tries);
    CHECK(failed == 0, "%d of %d health checks failed with 260 slow heads from 10 addresses", failed, tries);
    /* one that trickles a byte every 300 ms is closed by the deadline too */
    int t = tcp_connect(a.port, "127.0.0.12");
    REQUIRE(t >= 0);
    send_all(t, "GET /healthz HTTP/1.1\r\n", 23);
    double t0 = now_s();
    bool closed = false;
    while (!closed && now_s() - t0 < 8) {
        if (!send_all(t, "X", 1)) { closed = true; break; }
        free(read_for(t, 0.3, &closed));
    }
    CHECK(closed && now_s() - t0 < 6, "a trickling head stayed open %.1f s", now_s() - t0);
    close(t);
    for (int i = 0; i < 260; i++)
        if (fds[i] >= 0) close(fds[i]);
    CHECK(metric(a.port, "mrag_http_connections_dropped_total{reason=\"head_timeout\"} ") > 0, "head timeouts not counted");
    CHECK(metric(a.port, "mrag_http_connections_dropped_total{reason=\"address_cap\"} ") > 0, "address cap not counted");
    stop(&a);
}

/* ------------------------------------------------------------ item 7 */

TEST(foreign_host_names_are_refused_without_keys) {
    server a = {0}, k = {0}, h = {0};
    start(&a, "hosts", NULL);
    char *reply = NULL;
    static const char *const good[] = {"127.0.0.1", "localhost", "LOCALHOST:8080", "localhost.", "127.0.0.1:1234",
                                       "[::1]:8080", "app.localhost"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK_EQ_INT(get_status(a.port, "/api/search?q=VPN&mode=bm25", good[i], NULL, NULL), 200);
    static const char *const bad[] = {"attacker.example", "attacker.example:8080", "127.0.0.1.attacker.example",
                                      "localhost.attacker.example", "10.0.0.1", "", "a b", "localhost:80x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = get_status(a.port, "/api/search?q=VPN&mode=bm25", bad[i], NULL, &reply);
        CHECK(st == 403 || st == 400, "Host '%s': %d", bad[i], st);
        CHECK(!reply || !strstr(reply, "WireGuard"), "Host '%s' got documents: %s", bad[i], reply);
        free(reply);
    }
    /* the page and health too (a rebinding page could read them) */
    CHECK_EQ_INT(get_status(a.port, "/", "attacker.example", NULL, NULL), 403);
    CHECK_EQ_INT(get_status(a.port, "/healthz", "attacker.example", NULL, NULL), 403);
    /* with keys and --allowed-host: that name and loopback names only */
    char keys[900], text[256];
    snprintf(keys, sizeof keys, "%s/hosts.keys", dir);
    snprintf(text, sizeof text, "%s alice hr\n", KEY_HR);
    REQUIRE(test_write_file(keys, text, strlen(text)) == 0);
    chmod(keys, 0600);
    const char *ka[] = {"--keys", keys, "--allowed-host", "mrag.example.org", NULL};
    start(&k, "hosts-keys", ka);
    CHECK_EQ_INT(get_status(k.port, "/api/search?q=VPN&mode=bm25", "mrag.example.org", KEY_HR, NULL), 200);
    CHECK_EQ_INT(get_status(k.port, "/api/search?q=VPN&mode=bm25", "MRAG.example.org:443", KEY_HR, NULL), 200);
    CHECK_EQ_INT(get_status(k.port, "/api/search?q=VPN&mode=bm25", "localhost", KEY_HR, NULL), 200);
    CHECK_EQ_INT(get_status(k.port, "/api/search?q=VPN&mode=bm25", "attacker.example", KEY_HR, NULL), 403);
    /* with keys and no --allowed-host: the keys are the protection */
    const char *kb[] = {"--keys", keys, NULL};
    start(&h, "hosts-any", kb);
    CHECK_EQ_INT(get_status(h.port, "/api/search?q=VPN&mode=bm25", "mrag.internal", KEY_HR, NULL), 200);
    CHECK_EQ_INT(get_status(h.port, "/api/search?q=VPN&mode=bm25", "mrag.internal", NULL, NULL), 401);
    stop(&a);
    stop(&k);
    stop(&h);
}

/* ------------------------------------------------------------ item 8 */

/* Sends req on a fresh connection; returns the status of the first
 * response, whether the server closed the connection after it, and how
 * many responses came back. */
static int framing(int port, const char *req, bool *closed, int *n_responses) {
    int fd = tcp_connect(port, NULL);
    REQUIRE(fd >= 0);
    REQUIRE(send_all(fd, req, strlen(req)));
    char *all = NULL;
    size_t n = 0;
    double until = now_s() + 3;
    *closed = false;
    while (now_s() < until && !*closed) {
        char *got = read_for(fd, 0.5, closed);
        size_t g = got ? strlen(got) : 0;
        if (g) {
            char *m = realloc(all, n + g + 1);
            if (m) { memcpy(m + n, got, g + 1); all = m; n += g; }
        }
        free(got);
        if (!g && all) break;
    }
    if (!*closed) free(read_for(fd, 1.0, closed));
    close(fd);
    int st = all && strncmp(all, "HTTP/1.", 7) == 0 ? atoi(all + 9) : 0;
    *n_responses = 0;
    for (const char *p = all; p && (p = strstr(p, "HTTP/1.1 ")); p++) (*n_responses)++;
    free(all);
    return st;
}

TEST(conflicting_framing_headers_get_400_and_close) {
    server a = {0};
    start(&a, "framing", NULL);
    bool closed;
    int nr;
    /* two different lengths, then a second request hidden in the body */
    const char *two_cl = "POST /api/ask HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                         "Content-Length: 2\r\nContent-Length: 70\r\n\r\n{}"
                         "GET /api/search?q=VPN HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    CHECK_EQ_INT(framing(a.port, two_cl, &closed, &nr), 400);
    CHECK(closed && nr == 1, "closed %d, %d responses", closed, nr);
    /* Content-Length with Transfer-Encoding: the classic smuggling pair */
    const char *cl_te = "POST /api/ask HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                        "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "0\r\n\r\nGET /api/search?q=VPN HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    CHECK_EQ_INT(framing(a.port, cl_te, &closed, &nr), 400);
    CHECK(closed && nr == 1, "closed %d, %d responses", closed, nr);
    const char *te_cl = "POST /api/ask HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
                        "Content-Length: 4\r\n\r\n0\r\n\r\n";
    CHECK_EQ_INT(framing(a.port, te_cl, &closed, &nr), 400);
    CHECK(closed, "not closed");
    const char *te_gzip = "POST /api/ask HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n";
    int st = framing(a.port, te_gzip, &closed, &nr);
    CHECK(st == 501 || st == 400, "%d", st);
    CHECK(closed, "not closed");
    const char *bad_cl = "POST /api/ask HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2, 2\r\n\r\n{}";
    st = framing(a.port, bad_cl, &closed, &nr);
    CHECK(st == 400 && closed, "%d, closed %d", st, closed);
    /* the same length twice is one length: an ordinary request */
    const char *same = "POST /api/ask HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                       "Content-Length: 2\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    CHECK_EQ_INT(framing(a.port, same, &closed, &nr), 400);   /* {} has no question: the body parser answers */
    char *reply = NULL;
    const char *plain = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    CHECK_EQ_INT(raw_status(a.port, NULL, plain, 5, &reply), 200);
    free(reply);
    stop(&a);
}

/* ------------------------------------------------------------ items 9, 10 */

/* The status of a search with key, retried for 5 s until it equals want. */
static int status_within_5s(int port, const char *key, int want) {
    int st = 0;
    for (int i = 0; i < 100; i++) {
        st = get_status(port, "/api/search?q=VPN&k=1&mode=bm25", "127.0.0.1", key, NULL);
        if (st == want) break;
        usleep(50 * 1000);
    }
    return st;
}

/* Waits up to 5 s for text in the server's log. */
static bool log_has(const server *sv, const char *text) {
    for (int i = 0; i < 100; i++) {
        char *log = test_read_file(sv->log, NULL);
        bool has = log && strstr(log, text);
        free(log);
        if (has) return true;
        usleep(50 * 1000);
    }
    return false;
}

TEST(emptying_or_deleting_the_keys_file_revokes_every_key) {
    server k = {0};
    char keys[900], text[256];
    snprintf(keys, sizeof keys, "%s/revoke.keys", dir);
    snprintf(text, sizeof text, "%s alice hr\n", KEY_HR);
    REQUIRE(test_write_file(keys, text, strlen(text)) == 0);
    chmod(keys, 0600);
    const char *ka[] = {"--keys", keys, NULL};
    start(&k, "revoke", ka);
    CHECK_EQ_INT(status_within_5s(k.port, KEY_HR, 200), 200);
    /* emptied (comments only) */
    REQUIRE(test_write_file(keys, "# nobody\n", 9) == 0);
    kill(k.pid, SIGHUP);
    CHECK_EQ_INT(status_within_5s(k.port, KEY_HR, 401), 401);
    CHECK(log_has(&k, "every key is revoked"), "log does not say so");
    /* back, then deleted */
    REQUIRE(test_write_file(keys, text, strlen(text)) == 0);
    kill(k.pid, SIGHUP);
    CHECK_EQ_INT(status_within_5s(k.port, KEY_HR, 200), 200);
    REQUIRE(unlink(keys) == 0);
    kill(k.pid, SIGHUP);
    CHECK_EQ_INT(status_within_5s(k.port, KEY_HR, 401), 401);
    CHECK_EQ_INT(metric(k.port, "mrag_api_keys "), 0);
    /* a broken file keeps the keys in force and says so, in the log and /metrics */
    REQUIRE(test_write_file(keys, text, strlen(text)) == 0);
    kill(k.pid, SIGHUP);
    CHECK_EQ_INT(status_within_5s(k.port, KEY_HR, 200), 200);
    REQUIRE(test_write_file(keys, "short alice hr\n", 15) == 0);
    kill(k.pid, SIGHUP);
    CHECK(log_has(&k, "keys not reloaded"), "log does not say so");
    CHECK_EQ_INT(status_within_5s(k.port, KEY_HR, 200), 200);
    CHECK_EQ_INT(metric(k.port, "mrag_keys_file_error "), 1);
    CHECK(metric(k.port, "mrag_keys_reloads_total{result=\"error\"} ") >= 1, "the failed reload is not counted");
    REQUIRE(test_write_file(keys, text, strlen(text)) == 0);
    kill(k.pid, SIGHUP);
    usleep(300 * 1000);
    CHECK_EQ_INT(status_within_5s(k.port, KEY_HR, 200), 200);
    for (int i = 0; i < 50 && metric(k.port, "mrag_keys_file_error ") != 0; i++) usleep(100 * 1000);
    CHECK_EQ_INT(metric(k.port, "mrag_keys_file_error "), 0);
    stop(&k);
}

TEST(plain_keys_readable_by_others_are_warned_about) {
    char keys[900], text[512], hashed[900];
    snprintf(keys, sizeof keys, "%s/plain.keys", dir);
    snprintf(text, sizeof text, "%s alice hr\n", KEY_HR);
    REQUIRE(test_write_file(keys, text, strlen(text)) == 0);
    REQUIRE(chmod(keys, 0644) == 0);
    server k = {0};
    const char *ka[] = {"--keys", keys, NULL};
    start(&k, "plain644", ka);
    CHECK(log_has(&k, "holds plain keys and can be read by other users"), "no warning for a 0644 plain keys file");
    /* SIGHUP re-reads it and warns again */
    kill(k.pid, SIGHUP);
    usleep(500 * 1000);
    char *log = test_read_file(k.log, NULL);
    const char *first = log ? strstr(log, "can be read by other users") : NULL;
    CHECK(first && strstr(first + 1, "can be read by other users"), "no warning after SIGHUP: %s", log ? log : "");
    free(log);
    stop(&k);
    /* 0600, or hashes only: no warning */
    REQUIRE(chmod(keys, 0600) == 0);
    start(&k, "plain600", ka);
    log = test_read_file(k.log, NULL);
    CHECK(log && !strstr(log, "other users"), "%s", log ? log : "");
    free(log);
    stop(&k);
    snprintf(hashed, sizeof hashed, "%s/hashed.keys", dir);
    REQUIRE(test_write_file(hashed, "sha256:0000000000000000000000000000000000000000000000000000000000000000 bob hr\n", 78) == 0);
    REQUIRE(chmod(hashed, 0644) == 0);
    const char *kh[] = {"--keys", hashed, NULL};
    start(&k, "hashed644", kh);
    log = test_read_file(k.log, NULL);
    CHECK(log && !strstr(log, "other users"), "%s", log ? log : "");
    free(log);
    stop(&k);
}

TEST_MAIN(RUN(sources_show_paths_relative_to_the_ingested_root), RUN(passages_for_anonymous_callers_are_public_only), RUN(slow_request_heads_never_lock_out_health_checks),
          RUN(foreign_host_names_are_refused_without_keys), RUN(conflicting_framing_headers_get_400_and_close),
          RUN(emptying_or_deleting_the_keys_file_revokes_every_key), RUN(plain_keys_readable_by_others_are_warned_about))
