/* gguf.c — memory-mapped GGUF v2/v3 reader with bounds-checked parsing, and a GGUF v3 writer. */
#define _GNU_SOURCE
#include "llm/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm/ggml.h"

/* The writer copies arrays of fixed-size elements as they lie in memory and
 * the engine reads tensor data in place: both need a little-endian host. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF files are little-endian; so must the host be");

#define GGUF_MAGIC "GGUF"
#define GGUF_MAX_KEY_LEN 65535u     /* the specification's limit for keys */
#define GGUF_MAX_NAME_LEN 63u       /* llama.cpp's GGML_MAX_NAME minus the NUL */
#define GGUF_MAX_ARR_DEPTH 4        /* nesting of arrays inside arrays */

/* Element offsets of an array of strings or of arrays, built at open so that
 * indexed access is O(1). offs[i] is element i's start relative to the
 * array's data; offs[n] is the end. For nested arrays, sub[i] is element i's
 * own index (NULL when its elements have a fixed size). */
typedef struct gguf_arr_index {
    uint64_t *offs;
    struct gguf_arr_index **sub;
} gguf_arr_index;

struct gguf_file {
    char *path;                 /* owned: the name used in messages */
    const uint8_t *base;        /* mapping or caller's bytes */
    uint64_t size;
    bool mapped;
    bool has_id;                /* id holds the mapped file's identity */
    llm_file_id id;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    gguf_kv *kvs;
    uint64_t n_kv;
    gguf_tensor *tensors;
    uint64_t n_tensors;
    uint64_t *kv_hash;          /* open addressing: slot = index + 1, 0 = empty */
    uint64_t kv_hash_cap;
    uint64_t *t_hash;
    uint64_t t_hash_cap;
    void **allocs;              /* array indexes and their tables, freed at close */
    size_t n_allocs, cap_allocs;
};

/* ------------------------------------------------------------ helpers */

static uint64_t fnv1a(const char *s, uint64_t n) {
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

bool llm_gguf_str_eq(gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

/* Size in bytes of a fixed-size value type, 0 for STRING/ARRAY/invalid. */
static uint64_t type_size(uint32_t t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

static const char *type_name(uint32_t t) {
    static const char *names[GGUF_TYPE_COUNT] = {
        "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
        "bool", "string", "array", "uint64", "int64", "float64"};
    return t < GGUF_TYPE_COUNT ? names[t] : "invalid";
}

static uint64_t rd_u64le(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint32_t rd_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Decodes a fixed-size scalar of type t at p into kv's union. */
static void decode_scalar(uint32_t t, const uint8_t *p, gguf_kv *kv) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_BOOL: kv->v.u64 = p[0]; break;
    case GGUF_TYPE_INT8: kv->v.i64 = (int8_t)p[0]; break;
    case GGUF_TYPE_UINT16: kv->v.u64 = (uint16_t)(p[0] | p[1] << 8); break;
    case GGUF_TYPE_INT16: kv->v.i64 = (int16_t)(uint16_t)(p[0] | p[1] << 8); break;
    case GGUF_TYPE_UINT32: kv->v.u64 = rd_u32le(p); break;
    case GGUF_TYPE_INT32: kv->v.i64 = (int32_t)rd_u32le(p); break;
    case GGUF_TYPE_UINT64: kv->v.u64 = rd_u64le(p); break;
    case GGUF_TYPE_INT64: kv->v.i64 = (int64_t)rd_u64le(p); break;
    case GGUF_TYPE_FLOAT32: {
        uint32_t u = rd_u32le(p);
        float f;
        memcpy(&f, &u, 4);
        kv->v.f64 = f;
        break;
    }
    case GGUF_TYPE_FLOAT64: {
        uint64_t u = rd_u64le(p);
        memcpy(&kv->v.f64, &u, 8);
        break;
    }
    default: break;
    }
}

static bool type_is_unsigned(uint32_t t) {
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_UINT32 || t == GGUF_TYPE_UINT64;
}

static bool type_is_signed(uint32_t t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_INT64;
}

/* ------------------------------------------------------------ the parser */

typedef struct {
    gguf_file *f;
    const uint8_t *base;
    uint64_t size;
    uint64_t pos;
    const char *name;           /* file name for messages */
    char ctx[192];              /* what is being read, e.g. "key 3 of 24 (general.name)" */
    char *err;
    size_t errlen;
} rd;

/* Formats "NAME: message (at byte AT)" into the error buffer; returns -1. */
static int rd_fail(rd *r, uint64_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int rd_fail(rd *r, uint64_t at, const char *fmt, ...) {
    if (!r->err || !r->errlen) return -1;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->err, r->errlen, "%s: %s (at byte %llu)", r->name, msg, (unsigned long long)at);
    return -1;
}

/* Checks that n more bytes exist at the cursor; otherwise a truncation error
 * naming `what` (inside the current context). */
static int rd_need(rd *r, uint64_t n, const char *what) {
    if (n <= r->size - r->pos) return 0;
    if (r->err && r->errlen) {
        const char *sep = r->ctx[0] ? ": " : "";
        if (n > UINT64_MAX - r->pos)
            snprintf(r->err, r->errlen, "%s: truncated: %s%s%s at byte %llu needs %llu bytes, beyond the file size %llu",
                     r->name, r->ctx, sep, what, (unsigned long long)r->pos, (unsigned long long)n,
                     (unsigned long long)r->size);
        else
            snprintf(r->err, r->errlen, "%s: truncated: %s%s%s ends at byte %llu beyond the file size %llu",
                     r->name, r->ctx, sep, what, (unsigned long long)(r->pos + n),
                     (unsigned long long)r->size);
    }
    return -1;
}

static int rd_u32(rd *r, uint32_t *v, const char *what) {
    if (rd_need(r, 4, what)) return -1;
    *v = rd_u32le(r->base + r->pos);
    r->pos += 4;
    return 0;
}

static int rd_u64(rd *r, uint64_t *v, const char *what) {
    if (rd_need(r, 8, what)) return -1;
    *v = rd_u64le(r->base + r->pos);
    r->pos += 8;
    return 0;
}

/* Reads a length-prefixed string, at most maxlen bytes long. */
static int rd_str(rd *r, gguf_str *s, uint64_t maxlen, const char *what) {
    uint64_t at = r->pos, len;
    if (rd_u64(r, &len, what)) return -1;
    if (len > maxlen)
        return rd_fail(r, at, "%s%s%s: length %llu exceeds the limit %llu", r->ctx, r->ctx[0] ? ": " : "",
                       what, (unsigned long long)len, (unsigned long long)maxlen);
    if (rd_need(r, len, what)) return -1;
    s->ptr = (const char *)r->base + r->pos;
    s->len = len;
    r->pos += len;
    return 0;
}

/* Allocation tracked by the file and freed at close. NULL on OOM. */
static void *file_alloc(gguf_file *f, size_t n) {
    if (f->n_allocs == f->cap_allocs) {
        size_t cap = f->cap_allocs ? f->cap_allocs * 2 : 16;
        void **na = realloc(f->allocs, cap * sizeof *na);
        if (!na) return NULL;
        f->allocs = na;
        f->cap_allocs = cap;
    }
    void *p = calloc(1, n ? n : 1);
    if (p) f->allocs[f->n_allocs++] = p;
    return p;
}

static int parse_array(rd *r, gguf_arr *a, int depth, gguf_arr_index **index_out);

/* Parses the n elements of an array whose element type and count were read;
 * the cursor is at the first element. Fills a (data, nbytes) and, for
 * variable-size elements, an offset index. */
static int parse_array_elems(rd *r, gguf_arr *a, int depth, gguf_arr_index **index_out) {
    uint64_t start = r->pos;
    *index_out = NULL;
    a->data = r->base + start;
    uint64_t es = type_size(a->elem_type);
    if (es) {
        if (a->n > (r->size - r->pos) / es)
            return rd_need(r, a->n > UINT64_MAX / es ? UINT64_MAX : a->n * es, "array data");
        a->nbytes = a->n * es;
        if (a->elem_type == GGUF_TYPE_BOOL) {
            for (uint64_t i = 0; i < a->n; i++)
                if (r->base[start + i] > 1)
                    return rd_fail(r, start + i, "%s: bool array element %llu has value %u (not 0 or 1)",
                                   r->ctx, (unsigned long long)i, r->base[start + i]);
        }
        r->pos += a->nbytes;
        return 0;
    }
    /* Strings take at least 8 bytes, arrays at least 12: a count that cannot
     * fit in the rest of the file fails here, before anything is allocated. */
    uint64_t min_elem = a->elem_type == GGUF_TYPE_STRING ? 8 : 12;
    if (a->n > (r->size - r->pos) / min_elem) {
        char what[96];
        snprintf(what, sizeof what, "array of %llu %ss", (unsigned long long)a->n, type_name(a->elem_type));
        return rd_need(r, a->n > UINT64_MAX / min_elem ? UINT64_MAX : a->n * min_elem, what);
    }
    gguf_arr_index *ix = file_alloc(r->f, sizeof *ix);
    if (!ix || !(ix->offs = file_alloc(r->f, (a->n + 1) * sizeof *ix->offs)))
        return rd_fail(r, start, "out of memory for an array of %llu elements", (unsigned long long)a->n);
    if (a->elem_type == GGUF_TYPE_ARRAY &&
        !(ix->sub = file_alloc(r->f, a->n * sizeof *ix->sub)))
        return rd_fail(r, start, "out of memory for an array of %llu elements", (unsigned long long)a->n);
    for (uint64_t i = 0; i < a->n; i++) {
        ix->offs[i] = r->pos - start;
        char what[64];
        snprintf(what, sizeof what, "array element %llu of %llu", (unsigned long long)i, (unsigned long long)a->n);
        if (a->elem_type == GGUF_TYPE_STRING) {
            gguf_str s;
            if (rd_str(r, &s, UINT64_MAX, what)) return -1;
        } else {
            gguf_arr sub;
            if (parse_array(r, &sub, depth + 1, &ix->sub[i])) return -1;
        }
    }
    ix->offs[a->n] = r->pos - start;
    a->nbytes = r->pos - start;
    *index_out = ix;
    return 0;
}

/* Parses an array value (element type, count, elements) at the cursor. */
static int parse_array(rd *r, gguf_arr *a, int depth, gguf_arr_index **index_out) {
    uint64_t at = r->pos;
    uint32_t et;
    memset(a, 0, sizeof *a);
    if (depth > GGUF_MAX_ARR_DEPTH)
        return rd_fail(r, at, "%s: arrays nested deeper than %d levels", r->ctx, GGUF_MAX_ARR_DEPTH);
    if (rd_u32(r, &et, "array element type")) return -1;
    if (et >= GGUF_TYPE_COUNT)
        return rd_fail(r, at, "%s: invalid array element type %u", r->ctx, et);
    a->elem_type = (gguf_type)et;
    if (rd_u64(r, &a->n, "array length")) return -1;
    return parse_array_elems(r, a, depth, index_out);
}

/* Parses one value of type t at the cursor into kv. */
static int parse_value(rd *r, uint32_t t, gguf_kv *kv) {
    uint64_t at = r->pos;
    if (t >= GGUF_TYPE_COUNT) return rd_fail(r, at, "%s: invalid value type %u", r->ctx, t);
    kv->type = (gguf_type)t;
    if (t == GGUF_TYPE_STRING) return rd_str(r, &kv->v.str, UINT64_MAX, "string value");
    if (t == GGUF_TYPE_ARRAY) {
        gguf_arr_index *ix = NULL;
        if (parse_array(r, &kv->v.arr, 1, &ix)) return -1;
        kv->v.arr.index = ix;
        return 0;
    }
    uint64_t n = type_size(t);
    if (rd_need(r, n, type_name(t))) return -1;
    decode_scalar(t, r->base + r->pos, kv);
    if (t == GGUF_TYPE_BOOL && kv->v.u64 > 1)
        return rd_fail(r, at, "%s: bool value %llu (not 0 or 1)", r->ctx, (unsigned long long)kv->v.u64);
    r->pos += n;
    return 0;
}

/* Builds an open-addressing table of n names; returns -1 with dup set to the
 * index of the first duplicate (or UINT64_MAX on OOM). */
static int build_hash(uint64_t n, const gguf_str *(*name_of)(const gguf_file *, uint64_t), const gguf_file *f,
                      uint64_t **table, uint64_t *cap_out, uint64_t *dup) {
    uint64_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    uint64_t *t = calloc(cap, sizeof *t);
    if (!t) { *dup = UINT64_MAX; return -1; }
    for (uint64_t i = 0; i < n; i++) {
        const gguf_str *s = name_of(f, i);
        uint64_t h = fnv1a(s->ptr, s->len) & (cap - 1);
        while (t[h]) {
            const gguf_str *o = name_of(f, t[h] - 1);
            if (o->len == s->len && memcmp(o->ptr, s->ptr, s->len) == 0) {
                free(t);
                *dup = i;
                return -1;
            }
            h = (h + 1) & (cap - 1);
        }
        t[h] = i + 1;
    }
    *table = t;
    *cap_out = cap;
    return 0;
}

static const gguf_str *kv_name(const gguf_file *f, uint64_t i) { return &f->kvs[i].key; }
static const gguf_str *tensor_name(const gguf_file *f, uint64_t i) { return &f->tensors[i].name; }

static uint64_t hash_find(const uint64_t *t, uint64_t cap, const gguf_str *(*name_of)(const gguf_file *, uint64_t),
                          const gguf_file *f, const char *key) {
    if (!t) return UINT64_MAX;
    size_t n = strlen(key);
    uint64_t h = fnv1a(key, n) & (cap - 1);
    while (t[h]) {
        const gguf_str *o = name_of(f, t[h] - 1);
        if (o->len == n && memcmp(o->ptr, key, n) == 0) return t[h] - 1;
        h = (h + 1) & (cap - 1);
    }
    return UINT64_MAX;
}

static void fmt_name(char *dst, size_t cap, gguf_str s) {
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[n] = 0;
}

/* Parses the header, metadata and tensor infos and checks the tensors. */
/* The magic, version and counts; allocates the key and tensor tables. */
static int parse_header(rd *r) {
    gguf_file *f = r->f;
    if (r->size == 0) return rd_fail(r, 0, "empty file, not a GGUF file");
    if (r->size < 4 || memcmp(r->base, GGUF_MAGIC, 4) != 0) {
        char shown[20] = "";
        size_t k = 0;
        for (size_t i = 0; i < 4 && i < r->size; i++)
            k += (size_t)snprintf(shown + k, sizeof shown - k, "%02x", r->base[i]);
        if (r->size < 4) return rd_fail(r, 0, "not a GGUF file (%llu bytes, too short for the magic)",
                                        (unsigned long long)r->size);
        return rd_fail(r, 0, "not a GGUF file (magic %s, expected 47475546 \"GGUF\")", shown);
    }
    r->pos = 4;
    if (rd_u32(r, &f->version, "version")) return -1;
    if (f->version == 1) return rd_fail(r, 4, "GGUF version 1 is not supported (only versions 2 and 3)");
    if (f->version != 2 && f->version != 3) {
        if ((f->version & 0xffff) == 0 && (f->version >> 24) <= 3)
            return rd_fail(r, 4, "GGUF version 0x%08x looks big-endian; only little-endian files are supported",
                           f->version);
        return rd_fail(r, 4, "unknown GGUF version %u (only versions 2 and 3 are supported)", f->version);
    }
    uint64_t at_counts = r->pos;
    if (rd_u64(r, &f->n_tensors, "tensor count")) return -1;
    if (rd_u64(r, &f->n_kv, "metadata key count")) return -1;
    /* A key takes at least 8 (length) + 4 (type) + 1 (value) bytes and a
     * tensor info at least 8 + 1 + 4 + 8 + 4 + 8: refuse counts the file
     * cannot hold before allocating for them. */
    uint64_t rest = r->size - r->pos;
    if (f->n_kv > rest / 13)
        return rd_fail(r, at_counts + 8, "truncated: metadata key count %llu cannot fit in the %llu bytes left in the file",
                       (unsigned long long)f->n_kv, (unsigned long long)rest);
    if (f->n_tensors > rest / 33)
        return rd_fail(r, at_counts, "truncated: tensor count %llu cannot fit in the %llu bytes left in the file",
                       (unsigned long long)f->n_tensors, (unsigned long long)rest);
    f->kvs = calloc(f->n_kv ? f->n_kv : 1, sizeof *f->kvs);
    f->tensors = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->tensors);
    if (!f->kvs || !f->tensors) return rd_fail(r, at_counts, "out of memory");

    return 0;
}

/* The metadata keys and values, their hash (no duplicates), and
 * general.alignment. */
static int parse_kvs(rd *r) {
    gguf_file *f = r->f;
    char nm[80];
    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kvs[i];
        uint64_t at = r->pos;
        uint32_t t;
        snprintf(r->ctx, sizeof r->ctx, "key %llu of %llu", (unsigned long long)i + 1, (unsigned long long)f->n_kv);
        if (rd_str(r, &kv->key, GGUF_MAX_KEY_LEN, "key name")) return -1;
        if (kv->key.len == 0) return rd_fail(r, at, "%s: empty key name", r->ctx);
        fmt_name(nm, sizeof nm, kv->key);
        snprintf(r->ctx, sizeof r->ctx, "key %llu of %llu (%s)", (unsigned long long)i + 1,
                 (unsigned long long)f->n_kv, nm);
        if (rd_u32(r, &t, "value type")) return -1;
        if (parse_value(r, t, kv)) return -1;
    }
    uint64_t dup;
    if (build_hash(f->n_kv, kv_name, f, &f->kv_hash, &f->kv_hash_cap, &dup)) {
        r->ctx[0] = 0;
        if (dup == UINT64_MAX) return rd_fail(r, 0, "out of memory");
        fmt_name(nm, sizeof nm, f->kvs[dup].key);
        return rd_fail(r, (uint64_t)((const uint8_t *)f->kvs[dup].key.ptr - r->base) - 8,
                       "duplicate metadata key \"%s\" (key %llu)", nm, (unsigned long long)dup + 1);
    }

    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    uint64_t ai = hash_find(f->kv_hash, f->kv_hash_cap, kv_name, f, "general.alignment");
    if (ai != UINT64_MAX) {
        const gguf_kv *kv = &f->kvs[ai];
        uint64_t at = (uint64_t)((const uint8_t *)kv->key.ptr - r->base) - 8;
        if (!type_is_unsigned(kv->type) && !type_is_signed(kv->type))
            return rd_fail(r, at, "general.alignment has type %s, expected uint32", type_name(kv->type));
        uint64_t a = kv->v.u64;
        if (type_is_signed(kv->type) && kv->v.i64 < 0) a = 0;
        if (a == 0 || (a & (a - 1)) || a > (1u << 30))
            return rd_fail(r, at, "general.alignment %lld is not a power of two between 1 and 2^30",
                           type_is_signed(kv->type) ? (long long)kv->v.i64 : (long long)kv->v.u64);
        f->alignment = a;
    }

    return 0;
}

/* The tensor infos: name, shape, type, size, aligned offset. */
static int parse_tensor_infos(rd *r) {
    gguf_file *f = r->f;
    char nm[80];
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        uint64_t at = r->pos;
        snprintf(r->ctx, sizeof r->ctx, "tensor info %llu of %llu", (unsigned long long)i + 1,
                 (unsigned long long)f->n_tensors);
        if (rd_str(r, &t->name, GGUF_MAX_NAME_LEN, "name")) return -1;
        if (t->name.len == 0) return rd_fail(r, at, "%s: empty tensor name", r->ctx);
        fmt_name(nm, sizeof nm, t->name);
        snprintf(r->ctx, sizeof r->ctx, "tensor info %llu of %llu (%s)", (unsigned long long)i + 1,
                 (unsigned long long)f->n_tensors, nm);
        uint64_t at_dims = r->pos;
        if (rd_u32(r, &t->n_dims, "dimension count")) return -1;
        if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
            return rd_fail(r, at_dims, "%s: %u dimensions (1 to %d allowed)", r->ctx, t->n_dims, GGUF_MAX_DIMS);
        uint64_t nelem = 1;
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t at_ne = r->pos;
            if (rd_u64(r, &t->ne[d], "shape")) return -1;
            if (t->ne[d] == 0 || t->ne[d] > INT64_MAX)
                return rd_fail(r, at_ne, "%s: dimension %u is %llu", r->ctx, d, (unsigned long long)t->ne[d]);
            if (nelem > INT64_MAX / t->ne[d])
                return rd_fail(r, at_ne, "%s: element count overflows", r->ctx);
            nelem *= t->ne[d];
        }
        uint64_t at_type = r->pos;
        if (rd_u32(r, &t->type, "type")) return -1;
        const ggml_type_traits *tr = llm_ggml_type_info(t->type);
        if (!tr) return rd_fail(r, at_type, "%s: unknown ggml type %u", r->ctx, t->type);
        if (t->ne[0] % tr->blck_size)
            return rd_fail(r, at_type, "%s: row length %llu is not a multiple of the %s block size %u", r->ctx,
                           (unsigned long long)t->ne[0], tr->name, tr->blck_size);
        uint64_t nblocks = nelem / tr->blck_size;
        if (nblocks > UINT64_MAX / tr->type_size)
            return rd_fail(r, at_type, "%s: byte size overflows", r->ctx);
        t->nbytes = nblocks * tr->type_size;
        uint64_t at_off = r->pos;
        if (rd_u64(r, &t->offset, "data offset")) return -1;
        if (t->offset % f->alignment)
            return rd_fail(r, at_off, "%s: data offset %llu is not a multiple of the alignment %llu", r->ctx,
                           (unsigned long long)t->offset, (unsigned long long)f->alignment);
    }
    return 0;
}

/* The data section: every tensor's bytes inside the file, names unique,
 * no two tensors overlapping. */
static int check_tensor_data(rd *r) {
    gguf_file *f = r->f;
    char nm[80];
    uint64_t dup;
    r->ctx[0] = 0;
    uint64_t pad = (f->alignment - r->pos % f->alignment) % f->alignment;
    f->data_offset = r->pos + pad;     /* no overflow: pos <= size and alignment <= 2^30 */

    if (build_hash(f->n_tensors, tensor_name, f, &f->t_hash, &f->t_hash_cap, &dup)) {
        if (dup == UINT64_MAX) return rd_fail(r, 0, "out of memory");
        fmt_name(nm, sizeof nm, f->tensors[dup].name);
        return rd_fail(r, (uint64_t)((const uint8_t *)f->tensors[dup].name.ptr - r->base) - 8,
                       "duplicate tensor name \"%s\" (tensor info %llu)", nm, (unsigned long long)dup + 1);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        uint64_t avail = r->size >= f->data_offset ? r->size - f->data_offset : 0;
        if (t->offset > avail || t->nbytes > avail - t->offset) {
            fmt_name(nm, sizeof nm, t->name);
            uint64_t end = f->data_offset + t->offset;
            bool ovf = t->offset > UINT64_MAX - f->data_offset || t->nbytes > UINT64_MAX - end;
            if (ovf)
                return rd_fail(r, f->data_offset, "truncated: tensor %llu of %llu (%s) data offset %llu is beyond the file size %llu",
                               (unsigned long long)i + 1, (unsigned long long)f->n_tensors, nm,
                               (unsigned long long)t->offset, (unsigned long long)r->size);
            if (r->err && r->errlen)
                snprintf(r->err, r->errlen, "%s: truncated: tensor %llu of %llu (%s) data ends at byte %llu beyond the file size %llu",
                         r->name, (unsigned long long)i + 1, (unsigned long long)f->n_tensors, nm,
                         (unsigned long long)(end + t->nbytes), (unsigned long long)r->size);
            return -1;
        }
        t->data = r->base + f->data_offset + t->offset;
    }
    /* Overlap check: sort tensor indices by offset (a shell sort: qsort would
     * need the tensors in a global to compare indices), then compare each
     * tensor's end with the next one's start. */
    if (f->n_tensors > 1) {
        uint64_t *ord = malloc(f->n_tensors * sizeof *ord);
        if (!ord) return rd_fail(r, 0, "out of memory");
        for (uint64_t i = 0; i < f->n_tensors; i++) ord[i] = i;
        for (uint64_t gap = f->n_tensors / 2; gap > 0; gap /= 2)
            for (uint64_t i = gap; i < f->n_tensors; i++) {
                uint64_t v = ord[i], j = i;
                while (j >= gap && f->tensors[ord[j - gap]].offset > f->tensors[v].offset) {
                    ord[j] = ord[j - gap];
                    j -= gap;
                }
                ord[j] = v;
            }
        int rc = 0;
        for (uint64_t k = 1; k < f->n_tensors; k++) {
            const gguf_tensor *a = &f->tensors[ord[k - 1]], *b = &f->tensors[ord[k]];
            if (a->offset + a->nbytes > b->offset) {
                char nb[80];
                fmt_name(nm, sizeof nm, a->name);
                fmt_name(nb, sizeof nb, b->name);
                rc = rd_fail(r, f->data_offset + b->offset, "tensors %s and %s overlap in the data section", nm, nb);
                break;
            }
        }
        free(ord);
        if (rc) return rc;
    }
    return 0;
}

static int parse_file(rd *r) {
    if (parse_header(r) || parse_kvs(r) || parse_tensor_infos(r) || check_tensor_data(r)) return -1;
    return 0;
}

/* Runs the parser over bytes already in memory; f owns nothing yet but path. */
static int open_bytes(gguf_file *f, char *err, size_t errlen) {
    rd r = {.f = f, .base = f->base, .size = f->size, .name = f->path, .err = err, .errlen = errlen};
    return parse_file(&r);
}

static gguf_file *file_new(const char *name) {
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->path = strdup(name ? name : "(memory)");
    if (!f->path) { free(f); return NULL; }
    return f;
}

void llm_gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->mapped && f->base) munmap((void *)f->base, f->size);
    for (size_t i = 0; i < f->n_allocs; i++) free(f->allocs[i]);
    free(f->allocs);
    free(f->kv_hash);
    free(f->t_hash);
    free(f->kvs);
    free(f->tensors);
    free(f->path);
    free(f);
}

int llm_gguf_open_memory(const void *data, size_t size, const char *name,
                     gguf_file **out, char *err, size_t errlen) {
    int rc = -1;
    *out = NULL;
    if (err && errlen) err[0] = 0;
    gguf_file *f = file_new(name);
    if (!f) {
        if (err && errlen) snprintf(err, errlen, "%s: out of memory", name ? name : "(memory)");
        goto done;
    }
    f->base = data;
    f->size = size;
    if (!data && size) {
        if (err && errlen) snprintf(err, errlen, "%s: no data", f->path);
        goto done;
    }
    if (open_bytes(f, err, errlen)) goto done;
    *out = f;
    f = NULL;
    rc = 0;
done:
    llm_gguf_close(f);
    return rc;
}

int llm_gguf_open(const char *path, gguf_file **out, char *err, size_t errlen) {
    int rc = -1, fd = -1;
    *out = NULL;
    if (err && errlen) err[0] = 0;
    gguf_file *f = file_new(path);
    if (!f) {
        if (err && errlen) snprintf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto done;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        goto done;
    }
    if (S_ISDIR(st.st_mode)) {
        if (err && errlen) snprintf(err, errlen, "%s: is a directory, not a GGUF file", path);
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        if (err && errlen) snprintf(err, errlen, "%s: not a regular file", path);
        goto done;
    }
    f->size = (uint64_t)st.st_size;
    /* the identity of exactly the file that is mapped (fstat of the same
     * descriptor): what the SHA-256 cache keys on */
    f->has_id = true;
    f->id.dev = (uint64_t)st.st_dev;
    f->id.ino = (uint64_t)st.st_ino;
    f->id.size = (uint64_t)st.st_size;
    f->id.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec;
    f->id.ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000ll + st.st_ctim.tv_nsec;
    if (f->size > 0) {
        void *m = mmap(NULL, f->size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            if (err && errlen) snprintf(err, errlen, "%s: cannot map %llu bytes: %s", path,
                                        (unsigned long long)f->size, strerror(errno));
            goto done;
        }
        f->base = m;
        f->mapped = true;
    }
    if (open_bytes(f, err, errlen)) goto done;
    *out = f;
    f = NULL;
    rc = 0;
done:
    if (fd >= 0) close(fd);
    llm_gguf_close(f);
    return rc;
}

/* ------------------------------------------------------------ accessors */

uint32_t llm_gguf_version(const gguf_file *f) { return f->version; }
const char *llm_gguf_path(const gguf_file *f) { return f->path; }
uint64_t llm_gguf_file_size(const gguf_file *f) { return f->size; }
uint64_t llm_gguf_alignment(const gguf_file *f) { return f->alignment; }
uint64_t llm_gguf_data_offset(const gguf_file *f) { return f->data_offset; }
const uint8_t *llm_gguf_base(const gguf_file *f) { return f->base; }
const llm_file_id *llm_gguf_file_id(const gguf_file *f) { return f->has_id ? &f->id : NULL; }
uint64_t llm_gguf_kv_count(const gguf_file *f) { return f->n_kv; }
uint64_t llm_gguf_tensor_count(const gguf_file *f) { return f->n_tensors; }

const gguf_kv *llm_gguf_kv_at(const gguf_file *f, uint64_t i) {
    return i < f->n_kv ? &f->kvs[i] : NULL;
}

const gguf_tensor *llm_gguf_tensor_at(const gguf_file *f, uint64_t i) {
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_kv *llm_gguf_find_kv(const gguf_file *f, const char *key) {
    uint64_t i = hash_find(f->kv_hash, f->kv_hash_cap, kv_name, f, key);
    return i == UINT64_MAX ? NULL : &f->kvs[i];
}

const gguf_tensor *llm_gguf_find_tensor(const gguf_file *f, const char *name) {
    uint64_t i = hash_find(f->t_hash, f->t_hash_cap, tensor_name, f, name);
    return i == UINT64_MAX ? NULL : &f->tensors[i];
}

/* Integer value of kv as a signed 128-bit-free pair: returns false for
 * non-integers; *neg tells a negative signed value. */
static bool kv_int(const gguf_kv *kv, uint64_t *mag, bool *neg) {
    if (!kv) return false;
    if (type_is_unsigned(kv->type)) { *mag = kv->v.u64; *neg = false; return true; }
    if (type_is_signed(kv->type)) {
        *neg = kv->v.i64 < 0;
        *mag = *neg ? (uint64_t)0 - (uint64_t)kv->v.i64 : (uint64_t)kv->v.i64;
        return true;
    }
    return false;
}

bool llm_gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    uint64_t m;
    bool neg;
    if (!kv_int(llm_gguf_find_kv(f, key), &m, &neg) || neg || m > UINT32_MAX) return false;
    *out = (uint32_t)m;
    return true;
}

bool llm_gguf_get_i32(const gguf_file *f, const char *key, int32_t *out) {
    uint64_t m;
    bool neg;
    if (!kv_int(llm_gguf_find_kv(f, key), &m, &neg)) return false;
    if (neg ? m > (uint64_t)INT32_MAX + 1 : m > INT32_MAX) return false;
    *out = neg ? (int32_t)(0 - (int64_t)m) : (int32_t)m;
    return true;
}

bool llm_gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out) {
    uint64_t m;
    bool neg;
    if (!kv_int(llm_gguf_find_kv(f, key), &m, &neg) || neg) return false;
    *out = m;
    return true;
}

bool llm_gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    const gguf_kv *kv = llm_gguf_find_kv(f, key);
    if (!kv) return false;
    if (kv->type == GGUF_TYPE_FLOAT32 || kv->type == GGUF_TYPE_FLOAT64) { *out = (float)kv->v.f64; return true; }
    if (type_is_unsigned(kv->type)) { *out = (float)kv->v.u64; return true; }
    if (type_is_signed(kv->type)) { *out = (float)kv->v.i64; return true; }
    return false;
}

bool llm_gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_kv *kv = llm_gguf_find_kv(f, key);
    if (!kv || kv->type != GGUF_TYPE_BOOL) return false;
    *out = kv->v.u64 != 0;
    return true;
}

bool llm_gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_kv *kv = llm_gguf_find_kv(f, key);
    if (!kv || kv->type != GGUF_TYPE_STRING) return false;
    *out = kv->v.str;
    return true;
}

bool llm_gguf_get_arr(const gguf_file *f, const char *key, gguf_arr *out) {
    const gguf_kv *kv = llm_gguf_find_kv(f, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY) return false;
    *out = kv->v.arr;
    return true;
}

bool llm_gguf_arr_str(const gguf_file *f, const gguf_arr *a, uint64_t i, gguf_str *out) {
    (void)f;
    const gguf_arr_index *ix = a->index;
    if (a->elem_type != GGUF_TYPE_STRING || i >= a->n || !ix) return false;
    const uint8_t *p = a->data + ix->offs[i];
    out->len = rd_u64le(p);
    out->ptr = (const char *)p + 8;
    return true;
}

bool llm_gguf_arr_arr(const gguf_file *f, const gguf_arr *a, uint64_t i, gguf_arr *out) {
    (void)f;
    const gguf_arr_index *ix = a->index;
    if (a->elem_type != GGUF_TYPE_ARRAY || i >= a->n || !ix) return false;
    const uint8_t *p = a->data + ix->offs[i];
    out->elem_type = (gguf_type)rd_u32le(p);
    out->n = rd_u64le(p + 4);
    out->data = p + 12;
    out->nbytes = ix->offs[i + 1] - ix->offs[i] - 12;
    out->index = ix->sub[i];
    return true;
}

bool llm_gguf_arr_f32(const gguf_arr *a, uint64_t i, float *out) {
    if (i >= a->n) return false;
    gguf_kv tmp;
    if (a->elem_type == GGUF_TYPE_FLOAT32) decode_scalar(GGUF_TYPE_FLOAT32, a->data + 4 * i, &tmp);
    else if (a->elem_type == GGUF_TYPE_FLOAT64) decode_scalar(GGUF_TYPE_FLOAT64, a->data + 8 * i, &tmp);
    else return false;
    *out = (float)tmp.v.f64;
    return true;
}

bool llm_gguf_arr_i64(const gguf_arr *a, uint64_t i, int64_t *out) {
    uint64_t es = type_size(a->elem_type);
    if (i >= a->n || !es) return false;
    gguf_kv tmp;
    decode_scalar(a->elem_type, a->data + es * i, &tmp);
    if (type_is_signed(a->elem_type)) { *out = tmp.v.i64; return true; }
    if (type_is_unsigned(a->elem_type) && tmp.v.u64 <= INT64_MAX) { *out = (int64_t)tmp.v.u64; return true; }
    return false;
}

/* ================================================================ writer */

typedef struct {
    char *key;
    gguf_type type;
    uint8_t *val;               /* the value as encoded in the file (after the type) */
    size_t val_len;
} wkv;

typedef struct {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint8_t *data;
    uint64_t nbytes;
} wtensor;

struct gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *ts;
    size_t n_t, cap_t;
    bool failed;
    char err[256];
};

static void w_fail(gguf_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void w_fail(gguf_writer *w, const char *fmt, ...) {
    if (w->failed) return;
    w->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
}

gguf_writer *llm_gguf_writer_new(void) {
    return calloc(1, sizeof(gguf_writer));
}

void llm_gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) { free(w->kvs[i].key); free(w->kvs[i].val); }
    for (size_t i = 0; i < w->n_t; i++) { free(w->ts[i].name); free(w->ts[i].data); }
    free(w->kvs);
    free(w->ts);
    free(w);
}

/* Stores key = value (encoded bytes, copied); replaces an earlier value of
 * the same key so that "set" means set. */
static void w_put(gguf_writer *w, const char *key, size_t key_len, gguf_type type, const void *val, size_t val_len) {
    if (!w || w->failed) return;
    if (!key || key_len == 0 || key_len > GGUF_MAX_KEY_LEN) {
        w_fail(w, "invalid metadata key (empty or longer than %u bytes)", GGUF_MAX_KEY_LEN);
        return;
    }
    uint8_t *copy = malloc(val_len ? val_len : 1);
    if (!copy) { w_fail(w, "out of memory"); return; }
    if (val_len) memcpy(copy, val, val_len);
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strlen(w->kvs[i].key) == key_len && memcmp(w->kvs[i].key, key, key_len) == 0) {
            free(w->kvs[i].val);
            w->kvs[i].val = copy;
            w->kvs[i].val_len = val_len;
            w->kvs[i].type = type;
            return;
        }
    }
    if (memchr(key, 0, key_len)) { free(copy); w_fail(w, "metadata key contains a NUL byte"); return; }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        wkv *n = realloc(w->kvs, cap * sizeof *n);
        if (!n) { free(copy); w_fail(w, "out of memory"); return; }
        w->kvs = n;
        w->cap_kv = cap;
    }
    char *k = strndup(key, key_len);
    if (!k) { free(copy); w_fail(w, "out of memory"); return; }
    w->kvs[w->n_kv++] = (wkv){k, type, copy, val_len};
}

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void llm_gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    uint8_t b[4];
    put_le(b, v, 4);
    w_put(w, key, key ? strlen(key) : 0, GGUF_TYPE_UINT32, b, 4);
}

void llm_gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
    uint8_t b[4];
    put_le(b, (uint32_t)v, 4);
    w_put(w, key, key ? strlen(key) : 0, GGUF_TYPE_INT32, b, 4);
}

void llm_gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) {
    uint8_t b[8];
    put_le(b, v, 8);
    w_put(w, key, key ? strlen(key) : 0, GGUF_TYPE_UINT64, b, 8);
}

void llm_gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    uint8_t b[4];
    put_le(b, u, 4);
    w_put(w, key, key ? strlen(key) : 0, GGUF_TYPE_FLOAT32, b, 4);
}

void llm_gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    w_put(w, key, key ? strlen(key) : 0, GGUF_TYPE_BOOL, &b, 1);
}

void llm_gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    if (!w || w->failed) return;
    if (!v) { w_fail(w, "NULL string value for key %s", key ? key : "(null)"); return; }
    size_t n = strlen(v);
    uint8_t *b = malloc(8 + n);
    if (!b) { w_fail(w, "out of memory"); return; }
    put_le(b, n, 8);
    memcpy(b + 8, v, n);
    w_put(w, key, key ? strlen(key) : 0, GGUF_TYPE_STRING, b, 8 + n);
    free(b);
}

/* Stores an array whose elements are already encoded (raw, raw_len bytes);
 * the encoding is validated with the reader's own parser. */
static void w_put_arr_raw(gguf_writer *w, const char *key, size_t key_len, gguf_type elem_type, uint64_t n,
                          const void *raw, uint64_t raw_len) {
    if (!w || w->failed) return;
    if ((unsigned)elem_type >= GGUF_TYPE_COUNT) { w_fail(w, "key %.*s: invalid array element type %u",
                                                         (int)key_len, key, (unsigned)elem_type); return; }
    if (raw_len > SIZE_MAX - 12) { w_fail(w, "array too large"); return; }
    gguf_file tmpf = {0};
    char err[256];
    rd r = {.f = &tmpf, .base = raw, .size = raw_len, .name = "array", .err = err, .errlen = sizeof err};
    snprintf(r.ctx, sizeof r.ctx, "key %.*s", (int)(key_len < 80 ? key_len : 80), key);
    gguf_arr a = {.elem_type = elem_type, .n = n};
    gguf_arr_index *ix;
    int prc = raw || raw_len == 0 ? parse_array_elems(&r, &a, 1, &ix) : -1;
    for (size_t i = 0; i < tmpf.n_allocs; i++) free(tmpf.allocs[i]);
    free(tmpf.allocs);
    if (prc || r.pos != raw_len) {
        w_fail(w, "key %.*s: invalid array encoding (%s)", (int)key_len, key, prc ? err : "trailing bytes");
        return;
    }
    uint8_t *b = malloc(12 + raw_len);
    if (!b) { w_fail(w, "out of memory"); return; }
    put_le(b, elem_type, 4);
    put_le(b + 4, n, 8);
    if (raw_len) memcpy(b + 12, raw, raw_len);
    w_put(w, key, key_len, GGUF_TYPE_ARRAY, b, 12 + raw_len);
    free(b);
}

void llm_gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_type elem_type, const void *data, uint64_t n) {
    if (!w || w->failed) return;
    uint64_t es = type_size(elem_type);
    if (!es) { w_fail(w, "key %s: llm_gguf_writer_set_arr needs a fixed-size element type, not %s",
                      key ? key : "(null)", type_name(elem_type)); return; }
    if (n > SIZE_MAX / es / 2) { w_fail(w, "key %s: array too large", key ? key : "(null)"); return; }
    /* Elements are packed little-endian in the file; the host is little-endian (x86-64). */
    w_put_arr_raw(w, key, key ? strlen(key) : 0, elem_type, n, data, n * es);
}

void llm_gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    if (!w || w->failed) return;
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i]) { w_fail(w, "key %s: string %llu is NULL", key ? key : "(null)", (unsigned long long)i); return; }
        total += 8 + strlen(strs[i]);
    }
    uint8_t *b = malloc(total ? total : 1), *p = b;
    if (!b) { w_fail(w, "out of memory"); return; }
    for (uint64_t i = 0; i < n; i++) {
        size_t len = strlen(strs[i]);
        put_le(p, len, 8);
        memcpy(p + 8, strs[i], len);
        p += 8 + len;
    }
    w_put_arr_raw(w, key, key ? strlen(key) : 0, GGUF_TYPE_STRING, n, b, total);
    free(b);
}

void llm_gguf_writer_set_arr_raw(gguf_writer *w, const char *key, gguf_type elem_type, uint64_t n,
                             const void *raw, uint64_t raw_len) {
    w_put_arr_raw(w, key, key ? strlen(key) : 0, elem_type, n, raw, raw_len);
}

void llm_gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv) {
    if (!w || w->failed) return;
    if (!kv) { w_fail(w, "copy of a NULL key"); return; }
    size_t kl = (size_t)kv->key.len;
    if (kv->type == GGUF_TYPE_ARRAY) {
        w_put_arr_raw(w, kv->key.ptr, kl, kv->v.arr.elem_type, kv->v.arr.n, kv->v.arr.data, kv->v.arr.nbytes);
        return;
    }
    if (kv->type == GGUF_TYPE_STRING) {
        uint8_t *b = malloc(8 + kv->v.str.len);
        if (!b) { w_fail(w, "out of memory"); return; }
        put_le(b, kv->v.str.len, 8);
        memcpy(b + 8, kv->v.str.ptr, kv->v.str.len);
        w_put(w, kv->key.ptr, kl, GGUF_TYPE_STRING, b, 8 + kv->v.str.len);
        free(b);
        return;
    }
    uint64_t es = type_size(kv->type);
    if (!es) { w_fail(w, "copy of a key with invalid type %u", (unsigned)kv->type); return; }
    uint8_t b[8];
    if (kv->type == GGUF_TYPE_FLOAT32) {
        float x = (float)kv->v.f64;
        uint32_t u;
        memcpy(&u, &x, 4);
        put_le(b, u, 4);
    } else if (kv->type == GGUF_TYPE_FLOAT64) {
        uint64_t u;
        memcpy(&u, &kv->v.f64, 8);
        put_le(b, u, 8);
    } else {
        put_le(b, kv->v.u64, (int)es);     /* two's complement bits for signed types */
    }
    w_put(w, kv->key.ptr, kl, kv->type, b, es);
}

void llm_gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type,
                            uint32_t n_dims, const uint64_t *ne, const void *data) {
    if (!w || w->failed) return;
    size_t nl = name ? strlen(name) : 0;
    if (nl == 0 || nl > GGUF_MAX_NAME_LEN) { w_fail(w, "tensor name \"%s\" is empty or longer than %u bytes",
                                                    name ? name : "", GGUF_MAX_NAME_LEN); return; }
    const ggml_type_traits *tr = llm_ggml_type_info(type);
    if (!tr) { w_fail(w, "tensor %s: unknown ggml type %u", name, type); return; }
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS) { w_fail(w, "tensor %s: %u dimensions", name, n_dims); return; }
    uint64_t nelem = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] == 0 || ne[d] > INT64_MAX || nelem > INT64_MAX / ne[d]) {
            w_fail(w, "tensor %s: bad dimension %u (%llu)", name, d, (unsigned long long)ne[d]);
            return;
        }
        nelem *= ne[d];
    }
    if (ne[0] % tr->blck_size) {
        w_fail(w, "tensor %s: row length %llu is not a multiple of the %s block size %u", name,
               (unsigned long long)ne[0], tr->name, tr->blck_size);
        return;
    }
    uint64_t nbytes = nelem / tr->blck_size * tr->type_size;
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->ts[i].name, name) == 0) { w_fail(w, "duplicate tensor name %s", name); return; }
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 32;
        wtensor *n = realloc(w->ts, cap * sizeof *n);
        if (!n) { w_fail(w, "out of memory"); return; }
        w->ts = n;
        w->cap_t = cap;
    }
    wtensor t = {.type = type, .n_dims = n_dims, .nbytes = nbytes};
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t.ne[d] = d < n_dims ? ne[d] : 1;
    t.name = strdup(name);
    t.data = data ? malloc(nbytes) : NULL;     /* NULL data: zeros, written as a hole */
    if (!t.name || (data && !t.data)) { free(t.name); free(t.data); w_fail(w, "out of memory for tensor %s", name); return; }
    if (data) memcpy(t.data, data, nbytes);
    w->ts[w->n_t++] = t;
}

/* Buffered little-endian output with a sticky error. */
typedef struct {
    FILE *fp;
    uint64_t pos;
    bool bad;
} wout;

static void out_bytes(wout *o, const void *p, size_t n) {
    if (o->bad || n == 0) return;
    if (fwrite(p, 1, n, o->fp) != n) o->bad = true;
    o->pos += n;
}

/* n zero bytes as a hole: seek past them (the file is truncated to its
 * full length at the end). */
static void out_hole(wout *o, uint64_t n) {
    if (o->bad || n == 0) return;
    if (fflush(o->fp) != 0 || fseeko(o->fp, (off_t)n, SEEK_CUR) != 0) o->bad = true;
    o->pos += n;
}

static void out_le(wout *o, uint64_t v, int n) {
    uint8_t b[8];
    put_le(b, v, n);
    out_bytes(o, b, (size_t)n);
}

static void out_pad(wout *o, uint64_t align) {
    static const uint8_t zeros[64];
    uint64_t pad = (align - o->pos % align) % align;
    while (pad > 0) {
        size_t k = pad > sizeof zeros ? sizeof zeros : (size_t)pad;
        out_bytes(o, zeros, k);
        pad -= k;
    }
}

int llm_gguf_writer_write(gguf_writer *w, const char *path, char *err, size_t errlen) {
    int rc = -1, fd = -1;
    FILE *fp = NULL;
    char *tmp = NULL;
    if (!w || !path) {
        if (err && errlen) snprintf(err, errlen, "%s: no writer", path ? path : "(null)");
        return -1;
    }
    if (w->failed) {
        if (err && errlen) snprintf(err, errlen, "%s: %s", path, w->err);
        return -1;
    }
    uint64_t align = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, "general.alignment") != 0) continue;
        uint64_t a = w->kvs[i].type == GGUF_TYPE_UINT32 ? rd_u32le(w->kvs[i].val) : 0;
        if (a == 0 || (a & (a - 1)) || a > (1u << 30)) {
            if (err && errlen) snprintf(err, errlen, "%s: general.alignment must be a uint32 power of two", path);
            return -1;
        }
        align = a;
    }
    if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0) { tmp = NULL; goto oom; }
    fd = mkstemp(tmp);
    if (fd < 0) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot create a temporary file: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    if (fchmod(fd, 0644) != 0) { /* keep mkstemp's 0600: not fatal */ }
    fp = fdopen(fd, "wb");
    if (!fp) goto io;
    fd = -1;
    wout o = {.fp = fp};
    out_bytes(&o, GGUF_MAGIC, 4);
    out_le(&o, 3, 4);
    out_le(&o, w->n_t, 8);
    out_le(&o, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        size_t kl = strlen(w->kvs[i].key);
        out_le(&o, kl, 8);
        out_bytes(&o, w->kvs[i].key, kl);
        out_le(&o, w->kvs[i].type, 4);
        out_bytes(&o, w->kvs[i].val, w->kvs[i].val_len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        size_t nl = strlen(t->name);
        out_le(&o, nl, 8);
        out_bytes(&o, t->name, nl);
        out_le(&o, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) out_le(&o, t->ne[d], 8);
        out_le(&o, t->type, 4);
        out_le(&o, off, 8);
        off += t->nbytes + (align - t->nbytes % align) % align;
    }
    if (w->n_t) out_pad(&o, align);
    for (size_t i = 0; i < w->n_t; i++) {
        if (w->ts[i].data) out_bytes(&o, w->ts[i].data, w->ts[i].nbytes);
        else out_hole(&o, w->ts[i].nbytes);
        out_pad(&o, align);
    }
    if (o.bad || fflush(fp) != 0 || ftruncate(fileno(fp), (off_t)o.pos) != 0 || fsync(fileno(fp)) != 0) goto io;
    if (fclose(fp) != 0) { fp = NULL; goto io; }
    fp = NULL;
    if (rename(tmp, path) != 0) goto io;
    rc = 0;
    goto done;
oom:
    if (err && errlen) snprintf(err, errlen, "%s: out of memory", path);
    goto done;
io:
    if (err && errlen) snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno ? errno : EIO));
done:
    if (fp) fclose(fp);
    if (fd >= 0) close(fd);
    if (rc != 0 && tmp) unlink(tmp);
    free(tmp);
    return rc;
}
