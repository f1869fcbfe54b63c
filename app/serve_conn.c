/* serve_conn.c — `mrag serve`'s defences below the requests: which
 * connections are admitted (a cap per client address, a bounded number of
 * connections still sending their request head, the oldest of those dropped
 * first), deadlines for the request head and body (a watchdog thread), and
 * the checks of a request head that libmicrohttpd leaves to us: the Host
 * name (DNS rebinding) and the message framing (Content-Length /
 * Transfer-Encoding). See docs/serve.md, "Connections and hostile clients". */
#define _GNU_SOURCE
#include "app/serve.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* One open connection. */
typedef struct conn {
    struct conn *prev, *next;
    int fd;                     /* our dup of the socket (-1: none): shutting it
                                   down wakes the connection's thread, and the
                                   number stays ours until the connection ends */
    unsigned char addr[16];     /* client address (IPv4 in the first 4 bytes) */
    int family;
    int state;                  /* APP_CONN_HEAD / BODY / BUSY */
    double since;               /* monotonic seconds the state began */
    bool dropped;
} conn;

struct app_conn_guard {
    app_conn_params p;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    conn *head;                 /* list of open connections, newest first */
    size_t n_open;
    app_conn_counters c;
    bool stop;
    pthread_t th;
    bool started;
};

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

app_conn_params app_conn_default_params(void) {
    app_conn_params p = {
        .max_conns = 256,
        .max_per_addr = 32,
        .max_head = 128,
        .head_timeout_s = 10,
        .body_timeout_s = 120,
    };
    return p;
}

/* Writes the client address of sa into c; false for families other than
 * IPv4 and IPv6 (they are not capped). */
static bool addr_of(const struct sockaddr *sa, unsigned char out[16], int *family) {
    memset(out, 0, 16);
    if (!sa) return false;
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        *family = AF_INET;
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        *family = AF_INET6;
        return true;
    }
    return false;
}

/* Shuts the connection's socket down (its thread then sees the end and
 * closes it) and counts why. Under the guard's mutex. */
static void drop(conn *k, uint64_t *counter) {
    if (k->dropped) return;
    k->dropped = true;
    if (k->fd >= 0) shutdown(k->fd, SHUT_RDWR);
    (*counter)++;
}

/* The watchdog: every 200 ms, drops connections whose head or body is late. */
static void *watchdog(void *arg) {
    app_conn_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        double now = mono();
        for (conn *k = g->head; k; k = k->next) {
            if (k->dropped) continue;
            if (k->state == APP_CONN_HEAD && now - k->since > g->p.head_timeout_s) drop(k, &g->c.head_timeouts);
            else if (k->state == APP_CONN_BODY && now - k->since > g->p.body_timeout_s) drop(k, &g->c.body_timeouts);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

int app_conn_guard_new(const app_conn_params *p, app_conn_guard **out) {
    *out = NULL;
    app_conn_guard *g = calloc(1, sizeof *g);
    if (!g) return -1;
    g->p = p ? *p : app_conn_default_params();
    if (g->p.max_head < 1) g->p.max_head = 1;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (pthread_create(&g->th, NULL, watchdog, g) != 0) {
        app_conn_guard_free(g);
        return -1;
    }
    g->started = true;
    *out = g;
    return 0;
}

void app_conn_guard_free(app_conn_guard *g) {
    if (!g) return;
    if (g->started) {
        pthread_mutex_lock(&g->mu);
        g->stop = true;
        pthread_cond_signal(&g->cv);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->th, NULL);
    }
    /* the daemon is stopped: every connection has been closed and notified */
    for (conn *k = g->head, *n; k; k = n) {
        n = k->next;
        if (k->fd >= 0) close(k->fd);
        free(k);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

/* Contract: see serve.h. Called by libmicrohttpd in its listening thread
 * before a new connection is set up. */
enum MHD_Result app_conn_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen) {
    (void)addrlen;
    app_conn_guard *g = cls;
    unsigned char a[16];
    int fam = 0;
    bool capped = addr_of(addr, a, &fam) && g->p.max_per_addr > 0;
    enum MHD_Result ok = MHD_YES;
    pthread_mutex_lock(&g->mu);
    size_t n_addr = 0, n_head = 0;
    conn *oldest_addr_head = NULL, *oldest_head = NULL;
    for (conn *k = g->head; k; k = k->next) {
        if (k->dropped) continue;
        bool same = capped && k->family == fam && memcmp(k->addr, a, 16) == 0;
        if (same) n_addr++;
        if (k->state != APP_CONN_HEAD) continue;
        n_head++;
        oldest_head = k;            /* the list is newest first */
        if (same) oldest_addr_head = k;
    }
    if (capped && n_addr >= (size_t)g->p.max_per_addr) {
        /* this address has its share: its oldest connection that has not
         * sent a request yet makes room, else the newcomer is refused */
        if (oldest_addr_head) {
            drop(oldest_addr_head, &g->c.addr_evictions);
            if (oldest_head == oldest_addr_head) oldest_head = NULL;
            n_head--;
        } else {
            g->c.addr_refusals++;
            ok = MHD_NO;
        }
    }
    if (ok == MHD_YES && n_head >= (size_t)g->p.max_head && oldest_head)
        drop(oldest_head, &g->c.crowd_evictions);   /* the slowest head gives way */
    pthread_mutex_unlock(&g->mu);
    return ok;
}

/* Contract: see serve.h. */
void app_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode toe) {
    app_conn_guard *g = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        conn *k = calloc(1, sizeof *k);
        if (!k) return;     /* untracked: only the daemon's own limits apply */
        k->fd = -1;
        const union MHD_ConnectionInfo *fi = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (fi) k->fd = fcntl(fi->connect_fd, F_DUPFD_CLOEXEC, 0);
        const union MHD_ConnectionInfo *ai = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        addr_of(ai ? ai->client_addr : NULL, k->addr, &k->family);
        k->state = APP_CONN_HEAD;
        k->since = mono();
        pthread_mutex_lock(&g->mu);
        k->next = g->head;
        if (g->head) g->head->prev = k;
        g->head = k;
        g->n_open++;
        pthread_mutex_unlock(&g->mu);
        *socket_context = k;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn *k = *socket_context;
        if (!k) return;
        pthread_mutex_lock(&g->mu);
        if (k->prev) k->prev->next = k->next;
        else g->head = k->next;
        if (k->next) k->next->prev = k->prev;
        g->n_open--;
        pthread_mutex_unlock(&g->mu);
        if (k->fd >= 0) close(k->fd);
        free(k);
        *socket_context = NULL;
    }
}

/* Contract: see serve.h. */
void app_conn_set_state(app_conn_guard *g, struct MHD_Connection *c, int state) {
    if (!g || !c) return;
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn *k = i ? i->socket_context : NULL;
    if (!k) return;
    pthread_mutex_lock(&g->mu);
    if (k->state != state) {
        k->state = state;
        k->since = mono();
    }
    pthread_mutex_unlock(&g->mu);
}

void app_conn_get_counters(app_conn_guard *g, app_conn_counters *out) {
    memset(out, 0, sizeof *out);
    if (!g) return;
    pthread_mutex_lock(&g->mu);
    *out = g->c;
    out->open = g->n_open;
    for (conn *k = g->head; k; k = k->next)
        if (!k->dropped && k->state == APP_CONN_HEAD) out->waiting_for_head++;
    pthread_mutex_unlock(&g->mu);
}

/* ------------------------------------------------------------ request heads */

/* True when name[0..n) (lower-cased, no port, no trailing dot) is a name
 * of this machine's loopback: localhost, *.localhost (RFC 6761), an IPv4
 * address in 127/8, ::1. */
static bool loopback_name(const char *name, size_t n) {
    char buf[256];
    if (n == 0 || n >= sizeof buf) return false;
    memcpy(buf, name, n);
    buf[n] = 0;
    if (strcmp(buf, "localhost") == 0) return true;
    if (n > 10 && strcmp(buf + n - 10, ".localhost") == 0) return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, buf, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, buf, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

/* Contract: see serve.h. */
bool app_http_host_allowed(const char *host, bool loopback_only, const char *const *allowed, size_t n_allowed) {
    if (!host) return true;     /* HTTP/1.0 without Host: not a browser */
    size_t len = strlen(host);
    if (len == 0 || len > 255) return false;
    /* the name without its port: "[::1]:8080" -> "::1", "h:8080" -> "h" */
    const char *name = host;
    size_t n;
    const char *port = NULL;
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        if (!close) return false;
        name = host + 1;
        n = (size_t)(close - name);
        if (close[1] == ':') port = close + 2;
        else if (close[1]) return false;
    } else {
        const char *colon = strchr(host, ':');
        if (colon && strchr(colon + 1, ':')) return false;   /* a bare IPv6 address is not a Host */
        n = colon ? (size_t)(colon - host) : len;
        if (colon) port = colon + 1;
    }
    if (port) {
        if (!*port || strlen(port) > 5) return false;
        for (const char *q = port; *q; q++)
            if (*q < '0' || *q > '9') return false;
    }
    char low[256];
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        /* letters, digits, '-', '.', and ':' inside brackets */
        if (!(isalnum(ch) || ch == '-' || ch == '.' || (ch == ':' && host[0] == '[') || ch == '_')) return false;
        low[i] = (char)tolower(ch);
    }
    if (n && low[n - 1] == '.') n--;   /* "localhost." is "localhost" */
    low[n] = 0;
    if (n == 0) return false;
    if (loopback_name(low, n)) return true;
    for (size_t i = 0; i < n_allowed; i++)
        if (allowed[i] && strcasecmp(allowed[i], low) == 0) return true;
    return !loopback_only && n_allowed == 0;
}

/* Trims blanks and tabs around s[0..*n); returns the new start. */
static const char *trim(const char *s, size_t *n) {
    while (*n && (s[0] == ' ' || s[0] == '\t')) { s++; (*n)--; }
    while (*n && (s[*n - 1] == ' ' || s[*n - 1] == '\t')) (*n)--;
    return s;
}

/* Contract: see serve.h. */
int app_http_framing_check(const char *const *names, const char *const *values, size_t n, char *why, size_t whylen) {
    bool have_cl = false, have_te = false;
    unsigned long long cl = 0;
    for (size_t i = 0; i < n; i++) {
        if (!names[i]) continue;
        const char *v = values[i] ? values[i] : "";
        size_t vn = strlen(v);
        v = trim(v, &vn);
        if (strcasecmp(names[i], "Content-Length") == 0) {
            if (vn == 0 || vn > 19) { snprintf(why, whylen, "a Content-Length that is not a number"); return 400; }
            unsigned long long x = 0;
            for (size_t k = 0; k < vn; k++) {
                if (v[k] < '0' || v[k] > '9') { snprintf(why, whylen, "a Content-Length that is not a number"); return 400; }
                x = x * 10 + (unsigned long long)(v[k] - '0');
            }
            if (have_cl && x != cl) { snprintf(why, whylen, "two different Content-Length headers"); return 400; }
            have_cl = true;
            cl = x;
        } else if (strcasecmp(names[i], "Transfer-Encoding") == 0) {
            if (have_te) { snprintf(why, whylen, "more than one Transfer-Encoding header"); return 400; }
            have_te = true;
            if (!(vn == 7 && strncasecmp(v, "chunked", 7) == 0)) {
                snprintf(why, whylen, "a Transfer-Encoding other than chunked");
                return 501;
            }
        }
    }
    if (have_cl && have_te) { snprintf(why, whylen, "Content-Length together with Transfer-Encoding"); return 400; }
    return 0;
}
