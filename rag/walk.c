/* walk.c — the folder walker of ingestion: which files to extract, which
 * were skipped and why, in a deterministic order. */
#define _GNU_SOURCE  /* asprintf */
#include "rag/ingest_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNIFF_BYTES 8192

rag_walk_params rag_walk_default_params(void) {
    rag_walk_params p = {
        .max_file_bytes = 50ull * 1024 * 1024,
        .max_depth = 64,
        .max_entries = 1000000,
        .report_hidden = true,
    };
    return p;
}

const char *rag_skip_reason_str(rag_skip_reason r) {
    switch (r) {
    case RAG_SKIP_NONE: return "none";
    case RAG_SKIP_HIDDEN: return "hidden";
    case RAG_SKIP_EXTENSION: return "unsupported extension";
    case RAG_SKIP_TOO_LARGE: return "too large";
    case RAG_SKIP_BINARY: return "binary";
    case RAG_SKIP_UNREADABLE: return "unreadable";
    case RAG_SKIP_SYMLINK_OUTSIDE: return "symlink outside the root";
    case RAG_SKIP_LOOP: return "folder already visited (symlink loop)";
    case RAG_SKIP_SPECIAL: return "not a regular file";
    case RAG_SKIP_DEPTH: return "too deep";
    case RAG_SKIP_BROKEN_LINK: return "broken symlink";
    case RAG_SKIP_DUPLICATE: return "same file as an earlier entry";
    }
    return "unknown";
}

const char *rag_doc_type_str(rag_doc_type t) {
    switch (t) {
    case RAG_DOC_TXT: return "txt";
    case RAG_DOC_MD: return "md";
    case RAG_DOC_HTML: return "html";
    case RAG_DOC_PDF: return "pdf";
    case RAG_DOC_UNKNOWN: break;
    }
    return "unknown";
}

rag_doc_type rag_doc_type_from_path(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base) return RAG_DOC_UNKNOWN;
    static const struct { const char *ext; rag_doc_type t; } map[] = {
        {".txt", RAG_DOC_TXT}, {".text", RAG_DOC_TXT}, {".md", RAG_DOC_MD},
        {".markdown", RAG_DOC_MD}, {".html", RAG_DOC_HTML}, {".htm", RAG_DOC_HTML},
        {".pdf", RAG_DOC_PDF},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(dot, map[i].ext) == 0) return map[i].t;
    return RAG_DOC_UNKNOWN;
}

bool rag_sniff_binary(const unsigned char *s, size_t n) {
    if (n >= 2 && ((s[0] == 0xFF && s[1] == 0xFE) || (s[0] == 0xFE && s[1] == 0xFF)))
        return false;  /* UTF-16 with a BOM: NULs are expected */
    size_t ctrl = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == 0) return true;
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != 0x1b) ctrl++;
    }
    return n > 0 && ctrl * 10 > n;
}

/* ------------------------------------------------------------ (dev, inode) set */
typedef struct {
    uint64_t *keys;     /* pairs dev, ino; slot empty when both are 0 */
    size_t cap, n;      /* cap in pairs, a power of two */
} ino_set;

static size_t ino_hash(uint64_t dev, uint64_t ino) {
    uint64_t h = dev * 0x9E3779B97F4A7C15ull ^ (ino + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h ^ (h >> 29));
}

/* Inserts (dev, ino); returns 1 when new, 0 when present, <0 on no memory. */
static int ino_set_add(ino_set *s, uint64_t dev, uint64_t ino) {
    if (dev == 0 && ino == 0) ino = 1ull << 63;   /* keep (0,0) as the empty mark */
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 256;
        uint64_t *nk = calloc(ncap * 2, sizeof *nk);
        if (!nk) return RAG_ERR_NOMEM;
        for (size_t i = 0; i < s->cap; i++) {
            uint64_t d = s->keys[2 * i], k = s->keys[2 * i + 1];
            if (!d && !k) continue;
            size_t j = ino_hash(d, k) & (ncap - 1);
            while (nk[2 * j] || nk[2 * j + 1]) j = (j + 1) & (ncap - 1);
            nk[2 * j] = d;
            nk[2 * j + 1] = k;
        }
        free(s->keys);
        s->keys = nk;
        s->cap = ncap;
    }
    size_t j = ino_hash(dev, ino) & (s->cap - 1);
    while (s->keys[2 * j] || s->keys[2 * j + 1]) {
        if (s->keys[2 * j] == dev && s->keys[2 * j + 1] == ino) return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->keys[2 * j] = dev;
    s->keys[2 * j + 1] = ino;
    s->n++;
    return 1;
}

/* ------------------------------------------------------------------ walker */
typedef struct {
    const rag_walk_params *p;
    char root_real[PATH_MAX];
    size_t root_real_len;
    ino_set dirs, files;
    rag_walk_result *res;
    size_t cap;
    char *err;
    size_t errlen;
} walker;

static int add_entry(walker *w, const char *path, const char *rel, const struct stat *st,
                     rag_doc_type type, rag_skip_reason skip, const char *detail, bool is_dir) {
    rag_walk_result *r = w->res;
    if (r->n >= w->p->max_entries)
        return rag_ing_err(w->err, w->errlen, RAG_ERR_LIMIT, "%s: more than %zu entries",
                           path, w->p->max_entries);
    if (r->n == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 64;
        rag_walk_entry *ne = realloc(r->entries, ncap * sizeof *ne);
        if (!ne) return RAG_ERR_NOMEM;
        r->entries = ne;
        w->cap = ncap;
    }
    rag_walk_entry *e = &r->entries[r->n];
    memset(e, 0, sizeof *e);
    e->path = strdup(path);
    e->rel = strdup(rel);
    e->detail = detail ? strdup(detail) : NULL;
    if (!e->path || !e->rel || (detail && !e->detail)) {
        free(e->path);
        free(e->rel);
        free(e->detail);
        return RAG_ERR_NOMEM;
    }
    if (st) {
        e->size = (uint64_t)st->st_size;
        e->mtime_sec = (int64_t)st->st_mtim.tv_sec;
        e->mtime_nsec = (int64_t)st->st_mtim.tv_nsec;
    }
    e->type = type;
    e->skip = skip;
    e->is_dir = is_dir;
    r->n++;
    if (skip == RAG_SKIP_NONE) r->n_files++;
    return RAG_OK;
}

/* True when real (an absolute canonical path) is the root or below it. */
static bool inside_root(const walker *w, const char *real) {
    size_t n = w->root_real_len;
    if (strncmp(real, w->root_real, n) != 0) return false;
    if (n == 1) return true;    /* root is "/" */
    return real[n] == 0 || real[n] == '/';
}

/* True when a component of real below the root starts with '.'. */
static bool hidden_below_root(const walker *w, const char *real) {
    const char *p = real + w->root_real_len;
    while (*p) {
        while (*p == '/') p++;
        if (*p == '.') return true;
        while (*p && *p != '/') p++;
    }
    return false;
}

/* Decides about one regular file (already stat'ed through any link). */
static int visit_file(walker *w, const char *path, const char *rel, const struct stat *st) {
    int added = ino_set_add(&w->files, (uint64_t)st->st_dev, (uint64_t)st->st_ino);
    if (added < 0) return added;
    if (added == 0) return add_entry(w, path, rel, st, RAG_DOC_UNKNOWN, RAG_SKIP_DUPLICATE, NULL, false);
    if ((uint64_t)st->st_size > w->p->max_file_bytes) {
        char d[64];
        snprintf(d, sizeof d, "%llu bytes, limit %llu", (unsigned long long)st->st_size,
                 (unsigned long long)w->p->max_file_bytes);
        return add_entry(w, path, rel, st, RAG_DOC_UNKNOWN, RAG_SKIP_TOO_LARGE, d, false);
    }
    rag_doc_type type = rag_doc_type_from_path(rel);
    const char *slash = strrchr(rel, '/');
    const char *base = slash ? slash + 1 : rel;
    bool has_ext = strchr(base + 1, '.') != NULL;
    if (type == RAG_DOC_UNKNOWN && has_ext)
        return add_entry(w, path, rel, st, RAG_DOC_UNKNOWN, RAG_SKIP_EXTENSION, strrchr(base + 1, '.'), false);
    /* Read the head: proves the file readable and feeds the binary sniff. */
    unsigned char head[SNIFF_BYTES];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return add_entry(w, path, rel, st, RAG_DOC_UNKNOWN, RAG_SKIP_UNREADABLE, strerror(errno), false);
    ssize_t got = 0;
    while (got < (ssize_t)sizeof head) {
        ssize_t k = read(fd, head + got, sizeof head - (size_t)got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            int e = errno;
            close(fd);
            return add_entry(w, path, rel, st, RAG_DOC_UNKNOWN, RAG_SKIP_UNREADABLE, strerror(e), false);
        }
        if (k == 0) break;
        got += k;
    }
    close(fd);
    if (type == RAG_DOC_PDF) return add_entry(w, path, rel, st, type, RAG_SKIP_NONE, NULL, false);
    if (rag_sniff_binary(head, (size_t)got))
        return add_entry(w, path, rel, st, RAG_DOC_UNKNOWN, RAG_SKIP_BINARY, NULL, false);
    if (type == RAG_DOC_UNKNOWN) type = RAG_DOC_TXT;   /* README, LICENSE, ... */
    return add_entry(w, path, rel, st, type, RAG_SKIP_NONE, NULL, false);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_dir(walker *w, const char *dir, const char *rel, int depth);

/* Handles one name found in a folder. */
static int visit_name(walker *w, const char *dir, const char *rel, const char *name, int depth) {
    int rc = RAG_OK;
    char *path = NULL, *nrel = NULL;
    if (asprintf(&path, "%s/%s", dir, name) < 0) { path = NULL; rc = RAG_ERR_NOMEM; goto done; }
    if (asprintf(&nrel, "%s%s%s", rel, rel[0] ? "/" : "", name) < 0) { nrel = NULL; rc = RAG_ERR_NOMEM; goto done; }
    struct stat st;
    if (lstat(path, &st) != 0) {
        rc = add_entry(w, path, nrel, NULL, RAG_DOC_UNKNOWN, RAG_SKIP_UNREADABLE, strerror(errno), false);
        goto done;
    }
    if (name[0] == '.') {
        if (w->p->report_hidden)
            rc = add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, RAG_SKIP_HIDDEN, NULL, S_ISDIR(st.st_mode));
        goto done;
    }
    if (S_ISLNK(st.st_mode)) {
        char real[PATH_MAX];
        if (!realpath(path, real)) {
            rag_skip_reason why = errno == ENOENT ? RAG_SKIP_BROKEN_LINK : RAG_SKIP_UNREADABLE;
            rc = add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, why, errno == ENOENT ? NULL : strerror(errno), false);
            goto done;
        }
        if (!inside_root(w, real)) {
            rc = add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, RAG_SKIP_SYMLINK_OUTSIDE, real, false);
            goto done;
        }
        if (hidden_below_root(w, real)) {   /* a link into .git or .hidden is hidden too */
            rc = add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, RAG_SKIP_HIDDEN, real, false);
            goto done;
        }
        if (stat(path, &st) != 0) {
            rc = add_entry(w, path, nrel, NULL, RAG_DOC_UNKNOWN, RAG_SKIP_UNREADABLE, strerror(errno), false);
            goto done;
        }
    }
    if (S_ISDIR(st.st_mode)) {
        if (depth + 1 > w->p->max_depth) {
            rc = add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, RAG_SKIP_DEPTH, NULL, true);
            goto done;
        }
        int added = ino_set_add(&w->dirs, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
        if (added < 0) { rc = added; goto done; }
        if (added == 0) {
            rc = add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, RAG_SKIP_LOOP, NULL, true);
            goto done;
        }
        rc = walk_dir(w, path, nrel, depth + 1);
    } else if (S_ISREG(st.st_mode)) {
        rc = visit_file(w, path, nrel, &st);
    } else {
        rc = add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, RAG_SKIP_SPECIAL, NULL, false);
    }
done:
    free(path);
    free(nrel);
    return rc;
}

/* Lists dir (already marked visited), sorts the names, visits each. */
static int walk_dir(walker *w, const char *dir, const char *rel, int depth) {
    int rc = RAG_OK;
    char **names = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (!rel[0])
            return rag_ing_err(w->err, w->errlen, RAG_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
        return add_entry(w, dir, rel, NULL, RAG_DOC_UNKNOWN, RAG_SKIP_UNREADABLE, strerror(errno), true);
    }
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char **nn = realloc(names, ncap * sizeof *nn);
            if (!nn) { rc = RAG_ERR_NOMEM; goto done; }
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = strdup(de->d_name))) { rc = RAG_ERR_NOMEM; goto done; }
        n++;
        errno = 0;
    }
    if (errno) {
        rc = add_entry(w, dir, rel[0] ? rel : ".", NULL, RAG_DOC_UNKNOWN, RAG_SKIP_UNREADABLE, strerror(errno), true);
        if (rc) goto done;
    }
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && rc == RAG_OK; i++) rc = visit_name(w, dir, rel, names[i], depth);
done:
    closedir(d);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    if (rc == RAG_ERR_NOMEM) rag_ing_err(w->err, w->errlen, rc, "%s: out of memory", dir);
    return rc;
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const rag_walk_entry *)a)->rel, ((const rag_walk_entry *)b)->rel);
}

void rag_walk_result_free(rag_walk_result *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->entries[i].path);
        free(r->entries[i].rel);
        free(r->entries[i].detail);
    }
    free(r->entries);
    memset(r, 0, sizeof *r);
}

int rag_walk(const char *root, const rag_walk_params *p, rag_walk_result *out, char *err, size_t errlen) {
    int rc = RAG_OK;
    rag_walk_params defaults = rag_walk_default_params();
    walker w;
    memset(&w, 0, sizeof w);
    char *top = NULL;
    if (!out) return rag_ing_err(err, errlen, RAG_ERR_ARG, "rag_walk: no result");
    memset(out, 0, sizeof *out);
    if (!root || !root[0]) return rag_ing_err(err, errlen, RAG_ERR_ARG, "rag_walk: empty root path");
    w.p = p ? p : &defaults;
    w.res = out;
    w.err = err;
    w.errlen = errlen;
    if (err && errlen) err[0] = 0;
    /* "docs///" -> "docs"; "/" stays. */
    if (!(top = strdup(root))) return rag_ing_err(err, errlen, RAG_ERR_NOMEM, "%s: out of memory", root);
    for (size_t n = strlen(top); n > 1 && top[n - 1] == '/'; n--) top[n - 1] = 0;
    if (!realpath(top, w.root_real)) {
        rc = rag_ing_err(err, errlen, RAG_ERR_IO, "%s: %s", root, strerror(errno));
        goto done;
    }
    w.root_real_len = strlen(w.root_real);
    struct stat st;
    if (stat(top, &st) != 0) {
        rc = rag_ing_err(err, errlen, RAG_ERR_IO, "%s: %s", root, strerror(errno));
        goto done;
    }
    if (S_ISREG(st.st_mode)) {
        /* A single file: its folder is the root for link checks. */
        const char *slash = strrchr(top, '/');
        rc = visit_file(&w, top, slash ? slash + 1 : top, &st);
    } else if (S_ISDIR(st.st_mode)) {
        if ((rc = ino_set_add(&w.dirs, (uint64_t)st.st_dev, (uint64_t)st.st_ino)) < 0) goto done;
        rc = walk_dir(&w, top, "", 0);
    } else {
        rc = rag_ing_err(err, errlen, RAG_ERR_ARG, "%s: not a folder or a regular file", root);
    }
    if (rc == RAG_OK && out->n) qsort(out->entries, out->n, sizeof *out->entries, cmp_entry);
done:
    if (rc == RAG_ERR_NOMEM && err && !err[0]) rag_ing_err(err, errlen, rc, "%s: out of memory", root);
    if (rc != RAG_OK) rag_walk_result_free(out);
    free(w.dirs.keys);
    free(w.files.keys);
    free(top);
    return rc;
}
