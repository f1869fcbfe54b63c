/* watch.c — inotify watches over a folder tree, events gathered into
 * debounced batches (rag/watch.h). */
#define _GNU_SOURCE
#include "rag/watch.h"
#include "rag/util_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define WATCH_MASK (IN_CREATE | IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | \
                    IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
#define MAX_DEPTH 64

typedef struct {
    int wd;
    char *rel;                  /* "" for the root */
} wentry;

struct rag_watch {
    int fd;
    char *root;
    int root_wd;
    rag_watch_params p;
    wentry *w;
    size_t n, cap;
    size_t unwatched;
};

rag_watch_params rag_watch_default_params(void) {
    rag_watch_params p = {.debounce_ms = 500, .max_delay_ms = 5000};
    return p;
}

static wentry *find_wd(rag_watch *w, int wd) {
    for (size_t i = 0; i < w->n; i++)
        if (w->w[i].wd == wd) return &w->w[i];
    return NULL;
}

/* Adds (or refreshes) the watch of folder rel and everything below it. */
static void add_tree(rag_watch *w, const char *rel, int depth) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s%s%s", w->root, *rel ? "/" : "", rel) >= (int)sizeof path) return;
    int wd = inotify_add_watch(w->fd, path, WATCH_MASK);
    if (wd < 0) {
        if (errno == ENOSPC || errno == ENOMEM) w->unwatched++;
        return;
    }
    wentry *e = find_wd(w, wd);
    if (e) {
        /* the same folder (a refresh) or a reused descriptor: keep the new name */
        if (strcmp(e->rel, rel) != 0) {
            char *r = strdup(rel);
            if (r) { free(e->rel); e->rel = r; }
        }
    } else {
        if (w->n == w->cap) {
            size_t nc = w->cap ? w->cap * 2 : 64;
            wentry *nw = realloc(w->w, nc * sizeof *nw);
            if (!nw) return;
            w->w = nw;
            w->cap = nc;
        }
        char *r = strdup(rel);
        if (!r) return;
        w->w[w->n++] = (wentry){.wd = wd, .rel = r};
    }
    if (depth >= MAX_DEPTH) return;
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;     /* hidden, like the walk (and . ..) */
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) continue;
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name) >= (int)sizeof sub) continue;
        add_tree(w, sub, depth + 1);
    }
    closedir(d);
}

int rag_watch_open(const char *root, const rag_watch_params *p, rag_watch **out, char *err, size_t errlen) {
    *out = NULL;
    struct stat st;
    if (!root || stat(root, &st) != 0) return rag_errf(err, errlen, RAG_ERR_IO, "%s: %s", root ? root : "(null)", strerror(errno));
    if (!S_ISDIR(st.st_mode)) return rag_errf(err, errlen, RAG_ERR_ARG, "%s: watch mode needs a folder", root);
    rag_watch *w = calloc(1, sizeof *w);
    if (!w) return rag_errf(err, errlen, RAG_ERR_NOMEM, "out of memory");
    w->p = p ? *p : rag_watch_default_params();
    if (w->p.debounce_ms < 0) w->p.debounce_ms = 0;
    if (w->p.max_delay_ms < w->p.debounce_ms) w->p.max_delay_ms = w->p.debounce_ms;
    w->root = realpath(root, NULL);
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (!w->root || w->fd < 0) {
        int e = errno;
        rag_watch_close(w);
        return rag_errf(err, errlen, RAG_ERR_IO, "%s: cannot watch: %s", root, strerror(e));
    }
    add_tree(w, "", 0);
    wentry *r = w->n ? &w->w[0] : NULL;
    if (!r || r->rel[0]) {
        rag_watch_close(w);
        return rag_errf(err, errlen, RAG_ERR_IO, "%s: cannot watch the folder (inotify watch limit?)", root);
    }
    w->root_wd = r->wd;
    *out = w;
    return RAG_OK;
}

void rag_watch_close(rag_watch *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    for (size_t i = 0; i < w->n; i++) free(w->w[i].rel);
    free(w->w);
    free(w->root);
    free(w);
}

size_t rag_watch_resync(rag_watch *w) {
    add_tree(w, "", 0);
    return w->n;
}

size_t rag_watch_unwatched(const rag_watch *w) { return w ? w->unwatched : 0; }

/* Handles one event; true when it belongs to the batch. */
static bool on_event(rag_watch *w, const struct inotify_event *ev, rag_watch_batch *b) {
    if (ev->mask & IN_Q_OVERFLOW) {
        b->overflow = true;
        return true;
    }
    wentry *e = find_wd(w, ev->wd);
    if (ev->mask & IN_IGNORED) {
        /* the folder is gone (or unwatched): forget it */
        if (e) {
            free(e->rel);
            *e = w->w[--w->n];
        }
        return false;
    }
    if (!e) return false;
    if (ev->wd == w->root_wd && (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF))) {
        b->root_gone = true;
        return true;
    }
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) return false;    /* the parent reports it */
    const char *name = ev->len ? ev->name : "";
    if (name[0] == '.') return false;       /* hidden names are not ingested: editors' temp files */
    if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s%s%s", e->rel, *e->rel ? "/" : "", name) < (int)sizeof sub)
            add_tree(w, sub, 1);
    }
    if (ev->mask & IN_CREATE) b->created++;
    else if (ev->mask & (IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB)) b->modified++;
    else if (ev->mask & (IN_MOVED_FROM | IN_MOVED_TO)) b->moved++;
    else if (ev->mask & IN_DELETE) b->deleted++;
    if (!b->first_path[0])
        snprintf(b->first_path, sizeof b->first_path, "%s%s%s", e->rel, *e->rel ? "/" : "", name);
    return true;
}

int rag_watch_next(rag_watch *w, int timeout_ms, volatile int *cancel, rag_watch_batch *b, char *err,
                   size_t errlen) {
    memset(b, 0, sizeof *b);
    double start = rag_now_ms(), first = -1, last = -1;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        if (cancel && *cancel) return RAG_ERR_NOTFOUND;
        double now = rag_now_ms();
        if (first >= 0 && (now - last >= w->p.debounce_ms || now - first >= w->p.max_delay_ms)) return RAG_OK;
        if (first < 0 && timeout_ms >= 0 && now - start >= timeout_ms) return RAG_ERR_NOTFOUND;
        int slice = 100;
        if (first >= 0) {
            double left = w->p.debounce_ms - (now - last);
            if (left < slice) slice = left > 0 ? (int)left + 1 : 1;
        }
        struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, slice);
        if (pr < 0 && errno != EINTR) return rag_errf(err, errlen, RAG_ERR_IO, "watch: poll: %s", strerror(errno));
        if (pr <= 0) continue;
        for (;;) {
            ssize_t k = read(w->fd, buf, sizeof buf);
            if (k < 0 && errno == EINTR) continue;
            if (k < 0 && errno == EAGAIN) break;
            if (k <= 0) return rag_errf(err, errlen, RAG_ERR_IO, "watch: read: %s", k < 0 ? strerror(errno) : "end of file");
            for (ssize_t off = 0; off < k;) {
                const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
                if (on_event(w, ev, b)) {
                    b->events++;
                    last = rag_now_ms();
                    if (first < 0) first = last;
                }
                off += (ssize_t)(sizeof *ev + ev->len);
            }
        }
    }
}
