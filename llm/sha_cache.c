/* sha_cache.c — the SHA-256 of multi-GB model and adapter files, remembered
 * across runs so that an unchanged file is not read in full again (~40 s for
 * 4.4 GB).
 *
 * An entry is trusted only while the file it was computed for is provably
 * the same: the key is the identity of the mapped file (device, inode, size,
 * mtime and ctime, from fstat of the descriptor that was mapped) plus the
 * SHA-256 of its head (the GGUF header, metadata and tensor infos, up to 64
 * MiB) and of its last 4 KiB, which are re-hashed on every lookup. ctime is
 * in the key because mtime is not evidence: anyone who can write the file
 * can set mtime back (touch -d), but not ctime, which the kernel sets on
 * every change to the inode (only a clock change by root moves it).
 *
 * The cache file is where someone who is not the user could plant entries:
 * it lives in a per-user folder ($MRAG_CACHE_DIR, else $XDG_CACHE_HOME/mrag,
 * else ~/.cache/mrag) and is read only when the folder and the file are
 * owned by the user, not writable by group or others, and the file is not a
 * symlink; otherwise it is neither read nor written (every lookup hashes).
 * Whoever can write there can also replace the user's models and indexes,
 * so the cache adds no new way to make a different model pass as the
 * recorded one. MRAG_SHA_CACHE=off disables it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm/model.h"

#define CACHE_FILE "sha256-v1"
#define MAX_ENTRIES 256
#define HEAD_MAX ((uint64_t)64 << 20)
#define TAIL_MAX ((uint64_t)4 << 10)

static _Atomic uint64_t full_hashes;     /* files hashed in full (tests) */
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

uint64_t llm_sha256_full_hashes(void) {
    return atomic_load(&full_hashes);
}

/* The cache folder (static buffer), or NULL when disabled or unknown. */
static const char *cache_dir(void) {
    static char dir[4096];
    const char *off = getenv("MRAG_SHA_CACHE");
    if (off && !strcmp(off, "off")) return NULL;
    const char *d = getenv("MRAG_CACHE_DIR");
    if (d && *d) snprintf(dir, sizeof dir, "%s", d);
    else if ((d = getenv("XDG_CACHE_HOME")) && *d == '/') snprintf(dir, sizeof dir, "%s/mrag", d);
    else if ((d = getenv("HOME")) && *d == '/') snprintf(dir, sizeof dir, "%s/.cache/mrag", d);
    else return NULL;
    return dir;
}

/* True when st belongs to us and nobody else may write it. */
static bool private_to_us(const struct stat *st) {
    return st->st_uid == geteuid() && !(st->st_mode & (S_IWGRP | S_IWOTH));
}

/* The folder exists (created 0700 when missing, parents as well) and is
 * private. */
static bool dir_ok(const char *dir, bool create) {
    struct stat st;
    if (lstat(dir, &st) != 0) {
        if (!create || errno != ENOENT) return false;
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s", dir);
        for (char *p = tmp + 1; *p; p++) {
            if (*p != '/') continue;
            *p = 0;
            mkdir(tmp, 0700);
            *p = '/';
        }
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) return false;
        if (lstat(dir, &st) != 0) return false;
    }
    return S_ISDIR(st.st_mode) && private_to_us(&st);
}

/* The cache's text (malloc'd) when the file is trustworthy; NULL otherwise. */
static char *read_cache(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, CACHE_FILE);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && private_to_us(&st) && st.st_size < (1 << 20)) {
        buf = malloc((size_t)st.st_size + 1);
        if (buf) {
            ssize_t n = read(fd, buf, (size_t)st.st_size);
            if (n < 0) {
                free(buf);
                buf = NULL;
            } else {
                buf[n] = 0;
            }
        }
    }
    close(fd);
    return buf;
}

/* One entry's key part: "v1 dev ino size mtime ctime headsha". */
static void entry_key(const llm_file_id *id, const char *head, char *out, size_t n) {
    snprintf(out, n, "v1 %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRId64 " %s", id->dev, id->ino,
             id->size, id->mtime_ns, id->ctime_ns, head);
}

/* SHA-256 of the first head bytes (at most HEAD_MAX) and the tail. */
static void head_sha(const uint8_t *data, uint64_t size, uint64_t head, char out[65]) {
    uint64_t h = head < size ? head : size, t = size < TAIL_MAX ? size : TAIL_MAX;
    if (h > HEAD_MAX) h = HEAD_MAX;
    uint8_t *buf = malloc((size_t)(h + t) ? (size_t)(h + t) : 1);
    if (!buf) {
        /* no memory for the copy: the head alone keeps the key sound */
        llm_sha256_hex(data, (size_t)h, out);
        return;
    }
    memcpy(buf, data, (size_t)h);
    memcpy(buf + h, data + size - t, (size_t)t);
    llm_sha256_hex(buf, (size_t)(h + t), out);
    free(buf);
}

/* Writes the entries back with `line` first (most recent first), at most
 * MAX_ENTRIES, atomically (temp file + rename). A failure costs only a hash
 * later. */
static void write_cache(const char *dir, const char *old, const char *key, const char *line) {
    char tmp[4200], path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, CACHE_FILE);
    snprintf(tmp, sizeof tmp, "%s/.%s.%d", dir, CACHE_FILE, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return;
    FILE *fp = fdopen(fd, "w");
    if (!fp) {
        close(fd);
        unlink(tmp);
        return;
    }
    fprintf(fp, "%s\n", line);
    int n = 1;
    size_t kl = strlen(key);
    for (const char *p = old; p && *p && n < MAX_ENTRIES;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        /* keep other files' entries; drop this key's older ones */
        if (len > kl && strncmp(p, "v1 ", 3) == 0 && strncmp(p, key, kl) != 0) {
            fprintf(fp, "%.*s\n", (int)len, p);
            n++;
        }
        if (!e) break;
        p = e + 1;
    }
    bool ok = fflush(fp) == 0 && fsync(fd) == 0;
    if (fclose(fp) != 0) ok = false;
    if (!ok || rename(tmp, path) != 0) unlink(tmp);
}

int llm_file_sha256(const char *path, const llm_file_id *id, const uint8_t *data, uint64_t size, uint64_t head_len,
                    char out[65]) {
    const char *dir = id ? cache_dir() : NULL;
    char head[65], key[512];
    if (dir) {
        head_sha(data, size, head_len, head);
        entry_key(id, head, key, sizeof key);
        pthread_mutex_lock(&cache_mu);
        char *text = dir_ok(dir, false) ? read_cache(dir) : NULL;
        pthread_mutex_unlock(&cache_mu);
        size_t kl = strlen(key);
        bool hit = false;
        for (const char *p = text; p && *p && !hit;) {
            /* "<key> <sha> <path>" */
            if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
                const char *s = p + kl + 1;
                size_t n = 0;
                while (n < 64 && ((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) n++;
                if (n == 64 && (s[64] == ' ' || s[64] == '\n' || !s[64])) {
                    memcpy(out, s, 64);
                    out[64] = 0;
                    hit = true;
                }
            }
            const char *e = strchr(p, '\n');
            if (!e) break;
            p = e + 1;
        }
        free(text);
        if (hit) return LLM_OK;
    }
    llm_sha256_hex(data, (size_t)size, out);
    atomic_fetch_add(&full_hashes, 1);
    if (dir) {
        char line[4800];
        snprintf(line, sizeof line, "%s %s %.4000s", key, out, path ? path : "");
        for (char *c = line; *c; c++) if (*c == '\n') *c = ' ';
        pthread_mutex_lock(&cache_mu);
        if (dir_ok(dir, true)) {
            char *text = read_cache(dir);
            write_cache(dir, text, key, line);
            free(text);
        }
        pthread_mutex_unlock(&cache_mu);
    }
    return LLM_OK;
}
