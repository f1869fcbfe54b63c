/* walk.c — the folder walker of ingestion: which files to extract, which
 * were skipped and why, in a deterministic order; and rag_walk_open, which
 * reopens a walked file without following links (docs/ingestion.md,
 * "Walking"). */
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
    case RAG_SKIP_LINK: return "symlink inside the root (not followed; the target is taken at its own path)";
    }
    return "unknown";
}

const char *rag_doc_type_str(rag_doc_type t) {
    switch (t) {
    case RAG_DOC_TXT: return "txt";
    case RAG_DOC_MD: return "md";
    case RAG_DOC_HTML: return "html";
    case RAG_DOC_PDF: return "pdf";
    case RAG_DOC_DOCX: return "docx";
    case RAG_DOC_XLSX: return "xlsx";
    case RAG_DOC_PPTX: return "pptx";
    case RAG_DOC_ODT: return "odt";
    case RAG_DOC_ODS: return "ods";
    case RAG_DOC_ODP: return "odp";
    case RAG_DOC_EPUB: return "epub";
    case RAG_DOC_EML: return "eml";
    case RAG_DOC_MBOX: return "mbox";
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
        {".pdf", RAG_DOC_PDF}, {".docx", RAG_DOC_DOCX}, {".docm", RAG_DOC_DOCX},
        {".xlsx", RAG_DOC_XLSX}, {".xlsm", RAG_DOC_XLSX}, {".pptx", RAG_DOC_PPTX},
        {".pptm", RAG_DOC_PPTX}, {".odt", RAG_DOC_ODT}, {".ods", RAG_DOC_ODS},
        {".odp", RAG_DOC_ODP}, {".epub", RAG_DOC_EPUB}, {".eml", RAG_DOC_EML},
        {".mbox", RAG_DOC_MBOX}, {".mbx", RAG_DOC_MBOX},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(dot, map[i].ext) == 0) return map[i].t;
    return RAG_DOC_UNKNOWN;
}

bool rag_sniff_binary(const unsigned char *s, size_t n) {
    if (n >= 2 && ((s[0] == 0xFF && s[1] == 0xFE) || (s[0] == 0xFE && s[1] == 0xFF)))
        return false;  /* UTF-16 (or UTF-32LE) with a BOM: NULs are expected */
    if (n >= 4 && s[0] == 0 && s[1] == 0 && s[2] == 0xFE && s[3] == 0xFF) return false;   /* UTF-32BE */
    size_t ctrl = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == 0) return true;
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != 0x1b) ctrl++;
    }
    return n > 0 && ctrl * 10 > n;
}

/* ------------------------------------------------------------ (dev, inode) map */
typedef struct {
    uint64_t *keys;     /* pairs dev, ino; slot empty when both are 0 */
    const char **vals;  /* per slot: the rel of the first entry (borrowed), or NULL */
    size_t cap, n;      /* cap in pairs, a power of two */
} ino_set;

static size_t ino_hash(uint64_t dev, uint64_t ino) {
    uint64_t h = dev * 0x9E3779B97F4A7C15ull ^ (ino + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h ^ (h >> 29));
}

/* Inserts (dev, ino) with val; returns 1 when new, 0 when present (*old set
 * to the stored val when old is not NULL), <0 on no memory. */
static int ino_set_add(ino_set *s, uint64_t dev, uint64_t ino, const char *val, const char **old) {
    if (dev == 0 && ino == 0) ino = 1ull << 63;   /* keep (0,0) as the empty mark */
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 256;
        uint64_t *nk = calloc(ncap * 2, sizeof *nk);
        const char **nv = calloc(ncap, sizeof *nv);
        if (!nk || !nv) { free(nk); free(nv); return RAG_ERR_NOMEM; }
        for (size_t i = 0; i < s->cap; i++) {
            uint64_t d = s->keys[2 * i], k = s->keys[2 * i + 1];
            if (!d && !k) continue;
            size_t j = ino_hash(d, k) & (ncap - 1);
            while (nk[2 * j] || nk[2 * j + 1]) j = (j + 1) & (ncap - 1);
            nk[2 * j] = d;
            nk[2 * j + 1] = k;
            nv[j] = s->vals[i];
        }
        free(s->keys);
        free(s->vals);
        s->keys = nk;
        s->vals = nv;
        s->cap = ncap;
    }
    size_t j = ino_hash(dev, ino) & (s->cap - 1);
    while (s->keys[2 * j] || s->keys[2 * j + 1]) {
        if (s->keys[2 * j] == dev && s->keys[2 * j + 1] == ino) {
            if (old) *old = s->vals[j];
            return 0;
        }
        j = (j + 1) & (s->cap - 1);
    }
    s->keys[2 * j] = dev;
    s->keys[2 * j + 1] = ino;
    s->vals[j] = val;
    s->n++;
    return 1;
}

static void ino_set_release(ino_set *s) {
    free(s->keys);
    free(s->vals);
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

#define OPEN_DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define OPEN_FILE_FLAGS (O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)

/* Adds an entry; *out (may be NULL) points to it (valid until the next add). */
static int add_entry_ex(walker *w, const char *path, const char *rel, const struct stat *st, rag_doc_type type,
                        rag_skip_reason skip, const char *detail, bool is_dir, rag_walk_entry **out) {
    rag_walk_result *r = w->res;
    if (out) *out = NULL;
    if (r->n >= w->p->max_entries)
        return rag_ing_err(w->err, w->errlen, RAG_ERR_LIMIT, "%s: more than %zu entries",
                           path, w->p->max_entries);
    if (rag_array_grow(&r->entries, &w->cap, r->n + 1, sizeof *r->entries, 64)) return RAG_ERR_NOMEM;
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
    if (out) *out = e;
    return RAG_OK;
}

static int add_entry(walker *w, const char *path, const char *rel, const struct stat *st,
                     rag_doc_type type, rag_skip_reason skip, const char *detail, bool is_dir) {
    return add_entry_ex(w, path, rel, st, type, skip, detail, is_dir, NULL);
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

/* Decides about one regular file, name in the folder dfd (st from
 * fstatat without following links). The file is opened without following
 * a link and must still be the file st describes. */
static int visit_file(walker *w, int dfd, const char *name, const char *path, const char *rel,
                      const struct stat *st) {
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
    int fd = openat(dfd, name, OPEN_FILE_FLAGS);
    if (fd < 0) {
        const char *why = errno == ELOOP ? "replaced by a symlink during the walk" : strerror(errno);
        return add_entry(w, path, rel, st, RAG_DOC_UNKNOWN, RAG_SKIP_UNREADABLE, why, false);
    }
    struct stat fst;
    if (fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode) || fst.st_dev != st->st_dev || fst.st_ino != st->st_ino) {
        close(fd);
        return add_entry(w, path, rel, st, RAG_DOC_UNKNOWN, RAG_SKIP_UNREADABLE, "replaced during the walk", false);
    }
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
    /* binary formats (PDF, zip containers) are not sniffed */
    if ((type == RAG_DOC_UNKNOWN || type == RAG_DOC_TXT || type == RAG_DOC_MD || type == RAG_DOC_HTML) &&
        rag_sniff_binary(head, (size_t)got))
        return add_entry(w, path, rel, st, RAG_DOC_UNKNOWN, RAG_SKIP_BINARY, NULL, false);
    if (type == RAG_DOC_UNKNOWN) type = RAG_DOC_TXT;   /* README, LICENSE, ... */
    /* A file with several names (hard links) is taken once, under the first
     * name met; the others name it in same_as (the ingest gives the file the
     * groups every one of its names requires). */
    rag_walk_entry *e;
    int rc = add_entry_ex(w, path, rel, st, type, RAG_SKIP_NONE, NULL, false, &e);
    if (rc != RAG_OK) return rc;
    e->dev = (uint64_t)fst.st_dev;
    e->ino = (uint64_t)fst.st_ino;
    const char *first = NULL;
    int added = ino_set_add(&w->files, e->dev, e->ino, e->rel, &first);
    if (added < 0) return added;
    if (added == 0) {
        e->skip = RAG_SKIP_DUPLICATE;
        e->type = RAG_DOC_UNKNOWN;
        w->res->n_files--;
        if (!(e->same_as = strdup(first)) || !(e->detail = strdup(first))) return RAG_ERR_NOMEM;
    }
    return RAG_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_dir(walker *w, int dfd, const char *dir, const char *rel, int depth);

/* Handles one name found in the folder dfd (whose path is dir). */
static int visit_name(walker *w, int dfd, const char *dir, const char *rel, const char *name, int depth) {
    int rc = RAG_OK;
    char *path = NULL, *nrel = NULL;
    if (asprintf(&path, "%s/%s", dir, name) < 0) { path = NULL; rc = RAG_ERR_NOMEM; goto done; }
    if (asprintf(&nrel, "%s%s%s", rel, rel[0] ? "/" : "", name) < 0) { nrel = NULL; rc = RAG_ERR_NOMEM; goto done; }
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        rc = add_entry(w, path, nrel, NULL, RAG_DOC_UNKNOWN, RAG_SKIP_UNREADABLE, strerror(errno), false);
        goto done;
    }
    if (name[0] == '.') {
        if (w->p->report_hidden)
            rc = add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, RAG_SKIP_HIDDEN, NULL, S_ISDIR(st.st_mode));
        goto done;
    }
    if (S_ISLNK(st.st_mode)) {
        /* Never followed. realpath only classifies the link for the report;
         * nothing is read through it. */
        char real[PATH_MAX];
        if (!realpath(path, real)) {
            rag_skip_reason why = errno == ENOENT ? RAG_SKIP_BROKEN_LINK : RAG_SKIP_UNREADABLE;
            rc = add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, why, errno == ENOENT ? NULL : strerror(errno), false);
        } else if (!inside_root(w, real)) {
            rc = add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, RAG_SKIP_SYMLINK_OUTSIDE, real, false);
        } else if (hidden_below_root(w, real)) {   /* a link into .git or .hidden is hidden too */
            rc = add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, RAG_SKIP_HIDDEN, real, false);
        } else {
            const char *target = real + w->root_real_len;
            while (*target == '/') target++;
            rc = add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, RAG_SKIP_LINK, *target ? target : ".", false);
        }
        goto done;
    }
    if (S_ISDIR(st.st_mode)) {
        if (depth + 1 > w->p->max_depth) {
            rc = add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, RAG_SKIP_DEPTH, NULL, true);
            goto done;
        }
        int cfd = openat(dfd, name, OPEN_DIR_FLAGS);
        struct stat cst;
        if (cfd < 0) {
            const char *why = errno == ELOOP || errno == ENOTDIR ? "replaced during the walk" : strerror(errno);
            rc = add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, RAG_SKIP_UNREADABLE, why, true);
            goto done;
        }
        if (fstat(cfd, &cst) != 0 || cst.st_dev != st.st_dev || cst.st_ino != st.st_ino) {
            close(cfd);
            rc = add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, RAG_SKIP_UNREADABLE, "replaced during the walk", true);
            goto done;
        }
        /* a bind mount can still make a loop */
        int added = ino_set_add(&w->dirs, (uint64_t)st.st_dev, (uint64_t)st.st_ino, NULL, NULL);
        if (added <= 0) {
            close(cfd);
            rc = added < 0 ? added : add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, RAG_SKIP_LOOP, NULL, true);
            goto done;
        }
        rc = walk_dir(w, cfd, path, nrel, depth + 1);
        close(cfd);
    } else if (S_ISREG(st.st_mode)) {
        rc = visit_file(w, dfd, name, path, nrel, &st);
    } else {
        rc = add_entry(w, path, nrel, &st, RAG_DOC_UNKNOWN, RAG_SKIP_SPECIAL, NULL, false);
    }
done:
    free(path);
    free(nrel);
    return rc;
}

/* Lists the folder dfd (already marked visited; dfd stays the caller's),
 * sorts the names, visits each. */
static int walk_dir(walker *w, int dfd, const char *dir, const char *rel, int depth) {
    int rc = RAG_OK;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int lfd = dup(dfd);
    DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
    if (!d) {
        int e = errno;
        if (lfd >= 0) close(lfd);
        if (!rel[0])
            return rag_ing_err(w->err, w->errlen, RAG_ERR_IO, "%s: cannot open folder: %s", dir, strerror(e));
        return add_entry(w, dir, rel, NULL, RAG_DOC_UNKNOWN, RAG_SKIP_UNREADABLE, strerror(e), true);
    }
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        if (rag_array_grow(&names, &cap, n + 1, sizeof *names, 32)) { rc = RAG_ERR_NOMEM; goto done; }
        if (!(names[n] = strdup(de->d_name))) { rc = RAG_ERR_NOMEM; goto done; }
        n++;
        errno = 0;
    }
    if (errno) {
        if (!rel[0]) {
            rc = rag_ing_err(w->err, w->errlen, RAG_ERR_IO, "%s: cannot read folder: %s", dir, strerror(errno));
            goto done;
        }
        rc = add_entry(w, dir, rel, NULL, RAG_DOC_UNKNOWN, RAG_SKIP_UNREADABLE, strerror(errno), true);
        if (rc) goto done;
    }
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && rc == RAG_OK; i++) rc = visit_name(w, dfd, dir, rel, names[i], depth);
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
        free(r->entries[i].same_as);
    }
    free(r->entries);
    free(r->root);
    memset(r, 0, sizeof *r);
}

int rag_walk(const char *root, const rag_walk_params *p, rag_walk_result *out, char *err, size_t errlen) {
    int rc = RAG_OK;
    rag_walk_params defaults = rag_walk_default_params();
    walker w;
    memset(&w, 0, sizeof w);
    char *top = NULL;
    int fd = -1, pfd = -1;
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
    /* the canonical path holds no links; opening it with O_NOFOLLOW makes
     * sure its last part did not become one since */
    struct stat st;
    if ((fd = open(w.root_real, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0) {
        rc = rag_ing_err(err, errlen, RAG_ERR_IO, "%s: %s", root, strerror(errno));
        goto done;
    }
    if (!(out->root = strdup(w.root_real))) { rc = RAG_ERR_NOMEM; goto done; }
    out->root_dev = (uint64_t)st.st_dev;
    out->root_ino = (uint64_t)st.st_ino;
    if (S_ISREG(st.st_mode)) {
        /* A single file: its folder is the root for link checks. */
        out->root_is_file = true;
        char *slash = strrchr(w.root_real, '/');
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%.*s", slash == w.root_real ? 1 : (int)(slash - w.root_real), w.root_real);
        if ((pfd = open(parent, OPEN_DIR_FLAGS)) < 0) {
            rc = rag_ing_err(err, errlen, RAG_ERR_IO, "%s: %s", parent, strerror(errno));
            goto done;
        }
        const char *tslash = strrchr(top, '/');
        rc = visit_file(&w, pfd, slash + 1, top, tslash ? tslash + 1 : top, &st);
    } else if (S_ISDIR(st.st_mode)) {
        if ((rc = ino_set_add(&w.dirs, (uint64_t)st.st_dev, (uint64_t)st.st_ino, NULL, NULL)) < 0) goto done;
        rc = walk_dir(&w, fd, top, "", 0);
    } else {
        rc = rag_ing_err(err, errlen, RAG_ERR_ARG, "%s: not a folder or a regular file", root);
    }
    if (rc == RAG_OK && out->n) qsort(out->entries, out->n, sizeof *out->entries, cmp_entry);
done:
    if (rc == RAG_ERR_NOMEM && err && !err[0]) rag_ing_err(err, errlen, rc, "%s: out of memory", root);
    if (rc != RAG_OK) rag_walk_result_free(out);
    if (fd >= 0) close(fd);
    if (pfd >= 0) close(pfd);
    ino_set_release(&w.dirs);
    ino_set_release(&w.files);
    free(top);
    return rc;
}

/* Contract: see rag.h. */
int rag_walk_open(const rag_walk_result *r, const rag_walk_entry *e, int *fd, char *err, size_t errlen) {
    int rc = RAG_OK;
    int dfd = -1, ffd = -1;
    char *rel = NULL;
    *fd = -1;
    if (!r || !e || !r->root || !e->rel) return rag_ing_err(err, errlen, RAG_ERR_ARG, "rag_walk_open: bad arguments");
    if (!e->dev && !e->ino) return rag_ing_err(err, errlen, RAG_ERR_ARG, "%s: not a file the walk opened", e->rel);
    struct stat st;
    if (r->root_is_file) {
        /* the canonical path of a single file: its (dev, inode) decides */
        if ((ffd = open(r->root, OPEN_FILE_FLAGS)) < 0) {
            rc = errno == ELOOP ? rag_ing_err(err, errlen, RAG_ERR_CHANGED, "is a symlink now (not followed)")
                                : rag_ing_err(err, errlen, RAG_ERR_IO, "unreadable: %s", strerror(errno));
            goto done;
        }
    } else {
        if ((dfd = open(r->root, OPEN_DIR_FLAGS)) < 0 || fstat(dfd, &st) != 0) {
            rc = rag_ing_err(err, errlen, RAG_ERR_IO, "the root %s: %s", r->root, strerror(errno));
            goto done;
        }
        if ((uint64_t)st.st_dev != r->root_dev || (uint64_t)st.st_ino != r->root_ino) {
            rc = rag_ing_err(err, errlen, RAG_ERR_CHANGED, "the root %s was replaced since the walk", r->root);
            goto done;
        }
        if (!(rel = strdup(e->rel))) { rc = rag_ing_err(err, errlen, RAG_ERR_NOMEM, "out of memory"); goto done; }
        char *part = rel;
        for (char *slash; (slash = strchr(part, '/')) != NULL; part = slash + 1) {
            *slash = 0;
            if (!*part || strcmp(part, ".") == 0 || strcmp(part, "..") == 0) {
                rc = rag_ing_err(err, errlen, RAG_ERR_ARG, "bad relative path %s", e->rel);
                goto done;
            }
            int nfd = openat(dfd, part, OPEN_DIR_FLAGS);
            if (nfd < 0) {
                rc = errno == ELOOP || errno == ENOTDIR
                         ? rag_ing_err(err, errlen, RAG_ERR_CHANGED, "the folder %s is no longer a folder (a symlink?) since the walk", part)
                         : rag_ing_err(err, errlen, RAG_ERR_IO, "unreadable: %s: %s", part, strerror(errno));
                goto done;
            }
            close(dfd);
            dfd = nfd;
        }
        if ((ffd = openat(dfd, part, OPEN_FILE_FLAGS)) < 0) {
            rc = errno == ELOOP ? rag_ing_err(err, errlen, RAG_ERR_CHANGED, "is a symlink now (not followed)")
                                : rag_ing_err(err, errlen, RAG_ERR_IO, "unreadable: %s", strerror(errno));
            goto done;
        }
    }
    if (fstat(ffd, &st) != 0) { rc = rag_ing_err(err, errlen, RAG_ERR_IO, "unreadable: %s", strerror(errno)); goto done; }
    if (!S_ISREG(st.st_mode)) { rc = rag_ing_err(err, errlen, RAG_ERR_CHANGED, "is no longer a regular file"); goto done; }
    if ((uint64_t)st.st_dev != e->dev || (uint64_t)st.st_ino != e->ino) {
        rc = rag_ing_err(err, errlen, RAG_ERR_CHANGED, "was replaced by another file since the walk");
        goto done;
    }
    *fd = ffd;
    ffd = -1;
done:
    if (dfd >= 0) close(dfd);
    if (ffd >= 0) close(ffd);
    free(rel);
    return rc;
}
