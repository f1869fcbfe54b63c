/* vecindex.c — the FAISS side of the store: an IndexIDMap2 over the
 * configured type, kept in step with SQLite by generation, rebuilt from the
 * vectors table when stale, saved atomically with a checked header. */
#define _GNU_SOURCE /* fopencookie */
#include "index/idx_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/IndexPreTransform_c.h>
#include <faiss/c_api/MetaIndexes_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/impl/AuxIndexStructures_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <faiss/c_api/utils/distances_c.h>

/* FAISS file layout (host byte order, x86-64 little endian):
 *   0  "MRAGFAIS"         8  u32 version (1)    12 u32 dim
 *  16  i64 generation    24  char uuid[32]      56 char factory[64]
 * 120  u32 standin      124  u32 reserved      128 u64 n_tombstones
 * 136  u64 payload_len  144  u64 checksum of tombstones + payload
 * 152  i64 tombstones[n_tombstones], then the faiss_write_index bytes. */
#define VF_MAGIC "MRAGFAIS"
#define VF_VERSION 1u
#define VF_HEADER 152
#define VF_BATCH 4096
/* Below this many vectors per IVF list FAISS warns and clusters poorly. */
#define VF_MIN_PER_LIST 39
/* Training types without lists (PQ...) wait for this many vectors. */
#define VF_MIN_TRAIN_OTHER 10000
/* HNSW tombstones above this share of the index trigger a rebuild at save. */
#define VF_TOMB_REBUILD_FRACTION 0.10
/* Split search, automatic mode: bytes of codes a thread must scan for it
 * to pay (about a millisecond of FAISS's scalar SQ8 scan, against tens of
 * microseconds to start and join a thread), and the most threads used. */
#define VF_SPLIT_MIN_BYTES (1u << 20)
#define VF_SPLIT_MAX 64

int idx_faiss_err(idx_store *s, int frc, const char *what) {
    const char *e = faiss_get_last_error();
    return idx_err(s, IDX_ERR_FAISS, "FAISS %s failed (code %d): %.600s", what, frc, e ? e : "no message");
}

/* 64-bit checksum over bytes: multiply-xor per 8-byte word (detects torn or
 * bit-flipped files; not cryptographic). */
static uint64_t checksum(uint64_t h, const unsigned char *p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

void idx_vec_free(idx_vec *v) {
    if (v->index) faiss_Index_free(v->index);
    v->index = NULL;
    free(v->tomb);
    v->tomb = NULL;
    v->n_tomb = v->cap_tomb = 0;
}

int64_t idx_vec_ntotal(const idx_store *s) {
    if (!s->vec.index) return 0;
    return (int64_t)faiss_Index_ntotal(s->vec.index) - (int64_t)s->vec.n_tomb;
}

/* "auto": exact Flat while the vectors take at most 256 MiB as float32
 * (a scan stays within a few tens of milliseconds), then an inverted file
 * over 8-bit scalar codes (d bytes a vector; 1M x 4,096 = 4 GiB) with
 * about 4 sqrt(n) lists, a power of two, never fewer than 39 vectors per
 * list (so it is always trained); above 8 GiB of such codes, product
 * codes of d/16 bytes. Compressed types are re-ranked exactly (rerank). */
void idx_auto_type(int64_t n, int dim, char *out, size_t cap) {
    double flat = (double)n * dim * 4;
    if (flat <= 256.0 * 1024 * 1024 || n < 64 * VF_MIN_PER_LIST) { snprintf(out, cap, "Flat"); return; }
    int64_t nlist = 64;
    while (nlist * 2 <= 4 * (int64_t)sqrt((double)n) && nlist * 2 * VF_MIN_PER_LIST <= n && nlist < 65536) nlist *= 2;
    if ((double)n * dim > 8.0 * 1024 * 1024 * 1024 && dim % 16 == 0 && dim / 16 <= 256)
        snprintf(out, cap, "IVF%lld,PQ%d", (long long)nlist, dim / 16);
    else
        snprintf(out, cap, "IVF%lld,SQ8", (long long)nlist);
}

static bool is_auto(const idx_store *s) { return strcmp(s->factory, "auto") == 0; }

const char *idx_vec_type(const idx_store *s) {
    return s->vec.type[0] ? s->vec.type : s->factory;
}

/* Applies nprobe / efSearch to types that have them. */
static void set_search_params(idx_store *s, FaissIndex *ix, int64_t k) {
    const char *t = idx_vec_type(s);
    if (strstr(t, "IVF") == NULL && strstr(t, "HNSW") == NULL) return;
    FaissParameterSpace *ps = NULL;
    if (faiss_ParameterSpace_new(&ps) != 0) return;
    if (strstr(t, "IVF")) faiss_ParameterSpace_set_index_parameter(ps, ix, "nprobe", s->params.ivf_nprobe);
    if (strstr(t, "HNSW")) {
        double ef = s->params.hnsw_ef_search > k ? s->params.hnsw_ef_search : (double)k;
        faiss_ParameterSpace_set_index_parameter(ps, ix, "efSearch", ef);
    }
    faiss_ParameterSpace_free(ps);
}

/* The IVF index inside ix (ix itself, or inside an id map and/or a
 * transform such as OPQ). */
static FaissIndexIVF *ivf_of(FaissIndex *ix) {
    for (int depth = 0; ix && depth < 4; depth++) {
        FaissIndexIVF *ivf = faiss_IndexIVF_cast(ix);
        if (ivf) return ivf;
        FaissIndexIDMap2 *m = faiss_IndexIDMap2_cast(ix);
        FaissIndexPreTransform *t = m ? NULL : faiss_IndexPreTransform_cast(ix);
        ix = m ? faiss_IndexIDMap2_sub_index(m) : t ? faiss_IndexPreTransform_index(t) : NULL;
    }
    return NULL;
}

/* Creates an empty index of dimension dim for the configured type (or an
 * exact Flat stand-in). IVF types keep their own ids (FAISS's IndexIDMap
 * renumbers after remove_ids as if the sub-index compacted, which IVF lists
 * do not — removal through an id map over IVF returns wrong ids); every
 * other type is wrapped in an IndexIDMap2. Reports whether the type needs
 * training, with how many vectors, and whether remove_ids is exact (IVF, or
 * an id map over Flat); other types (HNSW...) get tombstones. */
/* The factory string FAISS is given: an IVF product quantiser ("PQ16",
 * "PQ16x8") gets FAISS's "np" suffix, which skips the polysemous training
 * the factory otherwise asks for (minutes of simulated annealing that only
 * Hamming-filtered search, never used here, benefits from). */
static void faiss_desc(const char *factory, char *out, size_t cap) {
    size_t o = 0;
    for (const char *p = factory; *p && o + 3 < cap; ) {
        if (p[0] == 'P' && p[1] == 'Q' && (p == factory || p[-1] != 'O') && p[2] >= '0' && p[2] <= '9') {
            const char *q = p + 2;
            while (*q >= '0' && *q <= '9') q++;
            if (*q == 'x') { q++; while (*q >= '0' && *q <= '9') q++; }
            while (p < q && o + 3 < cap) out[o++] = *p++;
            if ((*q == ',' || *q == 0) && o + 3 < cap) { out[o++] = 'n'; out[o++] = 'p'; }
            continue;
        }
        out[o++] = *p++;
    }
    out[o] = 0;
}

static int make_index(idx_store *s, int dim, bool standin, FaissIndex **out, int64_t *train_min, bool *removable) {
    FaissIndex *ix = NULL;
    int frc;
    char fdesc[96];
    const char *type = idx_vec_type(s);
    faiss_desc(type, fdesc, sizeof fdesc);
    if (!standin) {
        frc = faiss_index_factory(&ix, dim, fdesc, METRIC_INNER_PRODUCT);
        if (frc) return idx_faiss_err(s, frc, "index_factory");
        if (!faiss_IndexIVF_cast(ix)) {
            faiss_Index_free(ix);
            ix = NULL;
        }
    }
    if (!ix) {
        char desc[112];
        snprintf(desc, sizeof desc, "IDMap2,%s", standin ? "Flat" : fdesc);
        frc = faiss_index_factory(&ix, dim, desc, METRIC_INNER_PRODUCT);
        if (frc) return idx_faiss_err(s, frc, "index_factory");
    }
    FaissIndexIVF *ivf = ivf_of(ix);
    if (train_min) {
        *train_min = 0;
        if (!faiss_Index_is_trained(ix))
            *train_min = ivf ? (int64_t)faiss_IndexIVF_nlist(ivf) * VF_MIN_PER_LIST : VF_MIN_TRAIN_OTHER;
        /* a scalar quantiser alone learns value ranges: a few vectors do */
        if (!ivf && strstr(type, "SQ") && !strstr(type, "PQ")) *train_min = 1000;
        /* product quantisers fit 256 centroids per sub-space */
        if (*train_min && *train_min < VF_MIN_TRAIN_OTHER && strstr(type, "PQ")) *train_min = VF_MIN_TRAIN_OTHER;
    }
    if (removable) {
        FaissIndexIDMap2 *m = faiss_IndexIDMap2_cast(ix);
        *removable = faiss_IndexIVF_cast(ix) != NULL ||
                     (m && faiss_IndexFlat_cast(faiss_IndexIDMap2_sub_index(m)) != NULL);
    }
    set_search_params(s, ix, 0);
    *out = ix;
    return IDX_OK;
}

/* Decodes a stored (float16) vector blob into out[dim], checking its size. */
static int blob_vec(idx_store *s, sqlite3_stmt *st, int col, int64_t id, float *out) {
    int bytes = sqlite3_column_bytes(st, col);
    const void *b = sqlite3_column_blob(st, col);
    if (bytes != s->dim * 2 || !b)
        return idx_err(s, IDX_ERR_SCHEMA, "%s: vector of chunk %lld has %d bytes, expected %d",
                       s->db_path, (long long)id, bytes, s->dim * 2);
    idx_f16_decode(b, out, (size_t)s->dim);
    return IDX_OK;
}

/* Rebuilds the in-memory index from every vector in SQLite: an IVF/PQ type
 * is trained when enough vectors exist (on an even sample of at most
 * 4 x train_min of them), else an exact Flat stand-in serves until then. */
int idx_vec_rebuild(idx_store *s) {
    int rc = IDX_OK;
    sqlite3_stmt *st = NULL;
    FaissIndex *ix = NULL;
    float *buf = NULL;
    idx_t *ids = NULL;
    int64_t count = 0, train_min = 0;
    bool removable = true, standin = false;

    count = s->nvec;
    idx_vec_free(&s->vec);
    s->vec.standin = false;
    if (is_auto(s)) idx_auto_type(count, s->dim, s->vec.type, sizeof s->vec.type);
    else snprintf(s->vec.type, sizeof s->vec.type, "%s", s->factory);
    if (s->dim == 0) {
        if (count) rc = idx_err(s, IDX_ERR_SCHEMA, "%s holds vectors but no dimension (meta idx.dim)", s->db_path);
        s->vec.gen = s->gen;
        goto done;
    }
    rc = make_index(s, s->dim, false, &ix, &train_min, &removable);
    if (rc) goto done;
    if (train_min > 0 && count < train_min) {
        faiss_Index_free(ix);
        ix = NULL;
        standin = true;
        rc = make_index(s, s->dim, true, &ix, NULL, NULL);
        if (rc) goto done;
        removable = true;
    }
    size_t d = (size_t)s->dim;
    buf = malloc(VF_BATCH * d * sizeof *buf);
    ids = malloc(VF_BATCH * sizeof *ids);
    if (!buf || !ids) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto done; }
    if (!standin && train_min > 0) {
        /* at most 4 x the minimum, and at most ~1 GiB of floats unless the
         * minimum itself needs more (4,096 dims: 65k vectors) */
        int64_t max_train = train_min * 4, cap = (int64_t)((1u << 30) / (d * sizeof(float)));
        if (max_train > cap) max_train = cap > train_min ? cap : train_min;
        /* an even sample of exactly min(count, max_train) rows: row r is
         * taken when r * m / count steps to the next integer */
        int64_t m = count < max_train ? count : max_train, row = 0, n = 0;
        float *tr = malloc((size_t)m * d * sizeof *tr);
        if (!tr) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto done; }
        if (sqlite3_prepare_v2(s->db, "SELECT chunk_id, data FROM vectors ORDER BY chunk_id", -1, &st, NULL) != SQLITE_OK) {
            free(tr);
            rc = idx_sql_err(s, "prepare");
            goto done;
        }
        int step_rc;
        while ((step_rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t r = row++;
            if (r * m / count == (r + 1) * m / count) continue;
            if (n >= m) break;
            if ((rc = blob_vec(s, st, 1, sqlite3_column_int64(st, 0), tr + (size_t)n * d))) break;
            n++;
        }
        if (!rc && step_rc != SQLITE_DONE) rc = idx_sql_err(s, "read vectors");
        sqlite3_finalize(st);
        st = NULL;
        int frc = rc ? 0 : faiss_Index_train(ix, n, tr);
        free(tr);
        if (rc) goto done;
        if (frc) { rc = idx_faiss_err(s, frc, "train"); goto done; }
    }
    if (sqlite3_prepare_v2(s->db, "SELECT chunk_id, data FROM vectors ORDER BY chunk_id", -1, &st, NULL) != SQLITE_OK) {
        rc = idx_sql_err(s, "prepare");
        goto done;
    }
    size_t nb = 0;
    int step_rc;
    for (;;) {
        step_rc = sqlite3_step(st);
        if (step_rc == SQLITE_ROW) {
            ids[nb] = sqlite3_column_int64(st, 0);
            if ((rc = blob_vec(s, st, 1, ids[nb], buf + nb * d))) goto done;
            nb++;
        }
        if ((step_rc != SQLITE_ROW && nb) || nb == VF_BATCH) {
            int frc = faiss_Index_add_with_ids(ix, (idx_t)nb, buf, ids);
            if (frc) { rc = idx_faiss_err(s, frc, "add"); goto done; }
            nb = 0;
        }
        if (step_rc != SQLITE_ROW) break;
    }
    if (step_rc != SQLITE_DONE) { rc = idx_sql_err(s, "read vectors"); goto done; }
    if ((int64_t)faiss_Index_ntotal(ix) != s->nvec) {
        /* The counter drifted (a bug): trust the rows, and every open will
         * rebuild and say so until it is fixed. */
        idx_set_notice(s, "%s: meta idx.vectors says %lld vectors, the table holds %lld", s->db_path,
                       (long long)s->nvec, (long long)faiss_Index_ntotal(ix));
        s->nvec = (int64_t)faiss_Index_ntotal(ix);
    }
    s->vec.index = ix;
    ix = NULL;
    s->vec.standin = standin;
    s->vec.train_min = train_min;
    s->vec.removable = removable;
    s->vec.gen = s->gen;
done:
    sqlite3_finalize(st);
    if (ix) faiss_Index_free(ix);
    free(buf);
    free(ids);
    return rc;
}

/* Tries to load the FAISS file. Returns IDX_OK with the index installed, or
 * IDX_ERR_NOTFOUND with a reason in `why` when it must be rebuilt; other
 * codes are real errors. */
static int load_file(idx_store *s, char *why, size_t why_len) {
    int rc = IDX_ERR_NOTFOUND;
    unsigned char *data = NULL;     /* the mapped file */
    size_t map_len = 0;
    FILE *mf = NULL;
    FaissIndex *ix = NULL;
    int64_t *tomb = NULL;
    int fd = open(s->faiss_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_len, "%s", errno == ENOENT ? "missing" : strerror(errno));
        goto done;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size < VF_HEADER) { snprintf(why, why_len, "truncated"); goto done; }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) { snprintf(why, why_len, "unreadable (%s)", strerror(errno)); goto done; }
    data = map;
    map_len = size;
    uint32_t version, dim, standin;
    int64_t gen;
    uint64_t n_tomb, payload_len, sum;
    char uuid[33] = {0}, factory[65] = {0};
    memcpy(&version, data + 8, 4);
    memcpy(&dim, data + 12, 4);
    memcpy(&gen, data + 16, 8);
    memcpy(uuid, data + 24, 32);
    memcpy(factory, data + 56, 64);
    memcpy(&standin, data + 120, 4);
    memcpy(&n_tomb, data + 128, 8);
    memcpy(&payload_len, data + 136, 8);
    memcpy(&sum, data + 144, 8);
    if (memcmp(data, VF_MAGIC, 8) != 0 || version != VF_VERSION) { snprintf(why, why_len, "not an mrag FAISS file"); goto done; }
    if (n_tomb > (size - VF_HEADER) / 8 || payload_len != size - VF_HEADER - n_tomb * 8) {
        snprintf(why, why_len, "corrupt (sizes do not match the file)");
        goto done;
    }
    if (checksum(0x9e3779b97f4a7c15ULL, data + VF_HEADER, size - VF_HEADER) != sum) {
        snprintf(why, why_len, "corrupt (checksum mismatch)");
        goto done;
    }
    if (strcmp(uuid, s->uuid) != 0) { snprintf(why, why_len, "from another index"); goto done; }
    char want[64];
    if (is_auto(s)) idx_auto_type(s->nvec, s->dim, want, sizeof want);
    else snprintf(want, sizeof want, "%s", s->factory);
    if (strcmp(factory, want) != 0) {
        snprintf(why, why_len, "of type %s, %s requested", factory, want);
        goto done;
    }
    snprintf(s->vec.type, sizeof s->vec.type, "%s", want);
    if (gen != s->gen || (int)dim != s->dim) {
        snprintf(why, why_len, "stale (generation %lld, database at %lld)", (long long)gen, (long long)s->gen);
        goto done;
    }
    mf = fmemopen(data + VF_HEADER + n_tomb * 8, payload_len, "rb");
    if (!mf) { rc = idx_err(s, IDX_ERR_NOMEM, "fmemopen: %s", strerror(errno)); goto done; }
    if (faiss_read_index(mf, 0, &ix) != 0 || !ix) {
        snprintf(why, why_len, "unreadable by FAISS: %.200s", faiss_get_last_error() ? faiss_get_last_error() : "");
        ix = NULL;
        goto done;
    }
    if (faiss_Index_d(ix) != s->dim || (!faiss_IndexIDMap2_cast(ix) && !faiss_IndexIVF_cast(ix))) {
        snprintf(why, why_len, "of another dimension or without an id map");
        goto done;
    }
    int64_t count = s->nvec;
    if ((int64_t)faiss_Index_ntotal(ix) - (int64_t)n_tomb != count) {
        snprintf(why, why_len, "holding %lld vectors, the database %lld",
                 (long long)faiss_Index_ntotal(ix) - (long long)n_tomb, (long long)count);
        goto done;
    }
    if (n_tomb) {
        tomb = malloc(n_tomb * sizeof *tomb);
        if (!tomb) { rc = idx_err(s, IDX_ERR_NOMEM, "out of memory"); goto done; }
        memcpy(tomb, data + VF_HEADER, n_tomb * sizeof *tomb);
    }
    /* What the real type needs (training threshold, removal support). */
    FaissIndex *probe = NULL;
    int64_t train_min = 0;
    bool removable = true;
    rc = make_index(s, s->dim, false, &probe, &train_min, &removable);
    if (rc) goto done;
    faiss_Index_free(probe);
    idx_vec_free(&s->vec);
    set_search_params(s, ix, 0);
    s->vec.index = ix;
    ix = NULL;
    s->vec.tomb = tomb;
    tomb = NULL;
    s->vec.n_tomb = s->vec.cap_tomb = n_tomb;
    s->vec.standin = standin != 0;
    s->vec.train_min = train_min;
    s->vec.removable = standin ? true : removable;
    s->vec.gen = gen;
    s->vec.saved_gen = gen;
    rc = IDX_OK;
done:
    if (mf) fclose(mf);
    if (ix) faiss_Index_free(ix);
    if (fd >= 0) close(fd);
    free(tomb);
    if (data) munmap(data, map_len);
    return rc;
}

/* Loads the FAISS file or rebuilds (and, when writable, re-saves) it. */
int idx_vec_open(idx_store *s) {
    char why[300] = "";
    if (s->dim == 0) {
        s->vec.gen = s->gen;
        return IDX_OK;
    }
    int rc = load_file(s, why, sizeof why);
    if (rc != IDX_ERR_NOTFOUND) return rc;
    rc = idx_vec_rebuild(s);
    if (rc) return rc;
    idx_set_notice(s, "%s was %s: rebuilt %lld vectors from %s", s->faiss_path, why,
                   (long long)idx_vec_ntotal(s), s->db_path);
    if (!s->params.read_only) rc = idx_vec_save(s);
    return rc;
}

static int tomb_cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static bool is_tomb(const idx_vec *v, int64_t id) {
    return v->n_tomb && bsearch(&id, v->tomb, v->n_tomb, sizeof id, tomb_cmp) != NULL;
}

/* Applies the committed transaction's vector changes to FAISS; on any FAISS
 * failure the index is rebuilt from SQLite (the source of truth). */
int idx_vec_apply(idx_store *s) {
    int rc = IDX_OK;
    idx_vec *v = &s->vec;
    if (s->dim == 0) { v->gen = s->gen; return IDX_OK; }
    if (!v->index || (v->standin && idx_vec_ntotal(s) + (int64_t)s->n_add >= v->train_min))
        return idx_vec_rebuild(s);
    if (s->n_del) {
        if (v->removable) {
            FaissIDSelectorBatch *sel = NULL;
            size_t nr = 0;
            int frc = faiss_IDSelectorBatch_new(&sel, s->n_del, s->del_ids);
            if (!frc) frc = faiss_Index_remove_ids(v->index, (FaissIDSelector *)sel, &nr);
            if (sel) faiss_IDSelector_free((FaissIDSelector *)sel);
            if (frc) goto rebuild;
        } else {
            /* HNSW cannot remove: remember the ids and filter them out of
             * results until the next rebuild. */
            if (v->n_tomb + s->n_del > v->cap_tomb) {
                size_t nc = (v->n_tomb + s->n_del) * 2;
                int64_t *nt = realloc(v->tomb, nc * sizeof *nt);
                if (!nt) goto rebuild;
                v->tomb = nt;
                v->cap_tomb = nc;
            }
            memcpy(v->tomb + v->n_tomb, s->del_ids, s->n_del * sizeof *v->tomb);
            v->n_tomb += s->n_del;
            qsort(v->tomb, v->n_tomb, sizeof *v->tomb, tomb_cmp);
        }
    }
    if (s->n_add) {
        int frc = faiss_Index_add_with_ids(v->index, (idx_t)s->n_add, s->add_vecs, s->add_ids);
        if (frc) goto rebuild;
    }
    v->gen = s->gen;
    if (is_auto(s)) {
        /* the size crossed a step of the automatic choice: rebuild as the
         * type for the new size (each step is a doubling or more) */
        char want[64];
        idx_auto_type(idx_vec_ntotal(s), s->dim, want, sizeof want);
        if (strcmp(want, v->type) != 0) return idx_vec_rebuild(s);
    }
    return rc;
rebuild:
    rc = idx_vec_rebuild(s);
    if (rc == IDX_OK) idx_set_notice(s, "FAISS update failed (%.300s): rebuilt from %s", faiss_get_last_error(), s->db_path);
    return rc;
}

/* ------------------------------------------------- split IVF search
 * One query's probed lists scanned on several threads: the coarse
 * quantiser runs once on the calling thread, each thread gets the full
 * nprobe-long assignment array with only its own lists set (FAISS skips
 * the -1 entries) and keeps its own top-kk, and the partial lists are
 * merged by the metric. Each list is scanned by the same code with the
 * same coarse distance as in one FAISS search, so the merged top-kk
 * equals FAISS's own (distances bit for bit; equal distances ordered by
 * id). */

typedef struct {
    const FaissIndexIVF *ivf;
    const float *q;
    int64_t kk;
    const idx_t *assign;    /* nprobe entries, -1 for other threads' lists */
    const float *cdis;      /* nprobe coarse distances (shared) */
    float *d;               /* kk results */
    idx_t *l;
    int frc;
    char err[300];
} probe_part;

static void probe_scan(probe_part *p) {
    p->frc = faiss_IndexIVF_search_preassigned(p->ivf, 1, p->q, p->kk, p->assign, p->cdis, p->d, p->l, 0);
    if (p->frc) {
        const char *e = faiss_get_last_error(); /* thread-local: copied here */
        snprintf(p->err, sizeof p->err, "%s", e ? e : "no message");
    }
}

static void *probe_thread(void *arg) {
    /* FAISS opens no parallel region for one query in its default
     * parallel_mode; one OpenMP thread makes sure of it on this fresh
     * thread (whose OpenMP default is every core). */
    omp_set_num_threads(1);
    probe_scan(arg);
    return NULL;
}

static int cpu_count;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static void count_cpus(void) {
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    cpu_count = n > 0 ? n : 1;
}

/* Bytes of one code in the IVF lists of type t (approximate: it only
 * decides whether splitting pays). */
static double code_bytes(const char *t, int dim) {
    const char *c = strrchr(t, ',');
    c = c ? c + 1 : t;
    if (strncmp(c, "Flat", 4) == 0) return 4.0 * dim;
    if (strncmp(c, "SQfp16", 6) == 0) return 2.0 * dim;
    if (strncmp(c, "SQ4", 3) == 0) return dim / 2.0;
    if (strncmp(c, "SQ6", 3) == 0) return dim * 0.75;
    if (strncmp(c, "PQ", 2) == 0 && atoi(c + 2) > 0) {
        const char *x = strchr(c, 'x');
        return atoi(c + 2) * (x && atoi(x + 1) > 0 ? atoi(x + 1) : 8) / 8.0;
    }
    return dim;
}

typedef struct { float d; idx_t l; } probe_hit;

static int hit_ip(const void *a, const void *b) {
    const probe_hit *x = a, *y = b;
    if (x->d != y->d) return x->d > y->d ? -1 : 1;
    return (x->l > y->l) - (x->l < y->l);
}

static int hit_l2(const void *a, const void *b) {
    const probe_hit *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return (x->l > y->l) - (x->l < y->l);
}

/* One search of the kk best, split over threads when params.probe_threads
 * allows and the index is an IVF (itself, or under an IndexIDMap2);
 * otherwise FAISS's own search. Records the thread count used. */
static int vec_search_once(idx_store *s, const float *q, int64_t kk, float *d, idx_t *l) {
    idx_vec *v = &s->vec;
    v->last_threads = 1;
    FaissIndexIVF *ivf = v->standin ? NULL : faiss_IndexIVF_cast(v->index);
    FaissIndexIDMap2 *map = NULL;
    if (!ivf && !v->standin && (map = faiss_IndexIDMap2_cast(v->index)) != NULL)
        ivf = faiss_IndexIVF_cast(faiss_IndexIDMap2_sub_index(map));
    if (!ivf || s->params.probe_threads == 1) {
        int frc = faiss_Index_search(v->index, 1, q, kk, d, l);
        return frc ? idx_faiss_err(s, frc, "search") : IDX_OK;
    }
    size_t nlist = faiss_IndexIVF_nlist(ivf), np0 = faiss_IndexIVF_nprobe(ivf), np = np0;
    if (np > nlist) np = nlist;
    if (np < 1) np = 1;
    int rc = IDX_OK, frc;
    int maxt = s->params.probe_threads > 0 ? s->params.probe_threads : 0;
    if (maxt == 0) {
        pthread_once(&cpu_once, count_cpus);
        maxt = cpu_count;
    }
    if (maxt > VF_SPLIT_MAX) maxt = VF_SPLIT_MAX;
    size_t na = (size_t)np * ((size_t)maxt + 1);
    idx_t *assign = malloc(na * sizeof *assign);
    float *cdis = malloc(np * sizeof *cdis);
    size_t *lsize = malloc(np * sizeof *lsize);
    double *load = calloc((size_t)maxt, sizeof *load);
    probe_part *part = calloc((size_t)maxt, sizeof *part);
    pthread_t *tid = calloc((size_t)maxt, sizeof *tid);
    bool *started = calloc((size_t)maxt, sizeof *started);
    float *pd = malloc((size_t)kk * (size_t)maxt * sizeof *pd);
    idx_t *pl = malloc((size_t)kk * (size_t)maxt * sizeof *pl);
    probe_hit *hits = malloc((size_t)kk * (size_t)maxt * sizeof *hits);
    if (!assign || !cdis || !lsize || !load || !part || !tid || !started || !pd || !pl || !hits) {
        rc = idx_err(s, IDX_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (np != np0) faiss_IndexIVF_set_nprobe(ivf, np); /* FAISS reads nprobe entries */
    frc = faiss_Index_search(faiss_IndexIVF_quantizer(ivf), 1, q, (idx_t)np, cdis, assign);
    if (frc) { rc = idx_faiss_err(s, frc, "coarse search"); goto done; }
    /* the work: codes in the probed lists */
    size_t lists = 0;
    double bytes = 0, cb = code_bytes(idx_vec_type(s), s->dim);
    for (size_t j = 0; j < np; j++) {
        lsize[j] = assign[j] >= 0 && (size_t)assign[j] < nlist ? faiss_IndexIVF_get_list_size(ivf, (size_t)assign[j]) : 0;
        if (lsize[j]) { lists++; bytes += (double)lsize[j] * cb; }
    }
    int nt = maxt;
    if (s->params.probe_threads == 0 && bytes / VF_SPLIT_MIN_BYTES < nt) nt = (int)(bytes / VF_SPLIT_MIN_BYTES);
    if ((size_t)nt > lists) nt = (int)lists;
    if (nt < 1) nt = 1;
    if (nt == 1) {
        /* what FAISS's own search does after its coarse search */
        frc = faiss_IndexIVF_search_preassigned(ivf, 1, q, kk, assign, cdis, d, l, 0);
        if (frc) { rc = idx_faiss_err(s, frc, "search"); goto done; }
    } else {
        /* lists in order of closeness, each to the least loaded thread:
         * every thread gets near and far lists and about as many codes */
        idx_t *own = assign + np;
        for (size_t i = 0; i < (size_t)nt * np; i++) own[i] = -1;
        for (size_t j = 0; j < np; j++) {
            if (!lsize[j]) continue;
            int t = 0;
            for (int u = 1; u < nt; u++)
                if (load[u] < load[t]) t = u;
            own[(size_t)t * np + j] = assign[j];
            load[t] += (double)lsize[j];
        }
        for (int t = 0; t < nt; t++)
            part[t] = (probe_part){.ivf = ivf, .q = q, .kk = kk, .assign = own + (size_t)t * np, .cdis = cdis,
                                   .d = pd + (size_t)t * kk, .l = pl + (size_t)t * kk};
        for (int t = 1; t < nt; t++) started[t] = pthread_create(&tid[t], NULL, probe_thread, &part[t]) == 0;
        probe_scan(&part[0]);
        for (int t = 1; t < nt; t++) {
            if (started[t]) pthread_join(tid[t], NULL);
            else probe_scan(&part[t]); /* no thread to be had: here */
        }
        size_t nh = 0;
        for (int t = 0; t < nt; t++) {
            if (part[t].frc) {
                rc = idx_err(s, IDX_ERR_FAISS, "FAISS search failed (code %d): %s", part[t].frc, part[t].err);
                goto done;
            }
            for (int64_t i = 0; i < kk; i++)
                if (part[t].l[i] >= 0) hits[nh++] = (probe_hit){part[t].d[i], part[t].l[i]};
        }
        bool ip = faiss_Index_metric_type((FaissIndex *)ivf) == METRIC_INNER_PRODUCT;
        qsort(hits, nh, sizeof *hits, ip ? hit_ip : hit_l2);
        for (int64_t i = 0; i < kk; i++) {
            d[i] = (size_t)i < nh ? hits[i].d : ip ? -FLT_MAX : FLT_MAX;
            l[i] = (size_t)i < nh ? hits[i].l : -1;
        }
        v->last_threads = nt;
    }
    if (map) {
        /* the id map's translation: position in the sub-index -> id */
        idx_t *ids = NULL;
        size_t len = 0;
        faiss_IndexIDMap2_id_map(map, &ids, &len);
        for (int64_t i = 0; i < kk; i++)
            if (l[i] >= 0) l[i] = (size_t)l[i] < len ? ids[l[i]] : -1;
    }
done:
    if (np != np0) faiss_IndexIVF_set_nprobe(ivf, np0);
    free(assign);
    free(cdis);
    free(lsize);
    free(load);
    free(part);
    free(tid);
    free(started);
    free(pd);
    free(pl);
    free(hits);
    return rc;
}

void idx_set_probe_threads(idx_store *s, int n) {
    if (s) s->params.probe_threads = n < 0 ? 0 : n;
}

int idx_probe_threads_used(const idx_store *s) {
    return s && s->vec.last_threads > 0 ? s->vec.last_threads : 1;
}

/* Searches the FAISS index for the k best ids (skipping tombstones). dist
 * and ids hold k entries; *n receives how many are valid. */
int idx_vec_search(idx_store *s, const float *q, int64_t k, float *dist, int64_t *ids, int64_t *n) {
    *n = 0;
    idx_vec *v = &s->vec;
    if (!v->index || k <= 0) return IDX_OK;
    int64_t total = faiss_Index_ntotal(v->index);
    int64_t kk = k + (int64_t)v->n_tomb;
    if (kk > total) kk = total;
    if (kk <= 0) return IDX_OK;
    float *d = dist;
    idx_t *l = (idx_t *)ids;
    float *dbuf = NULL;
    idx_t *lbuf = NULL;
    if (kk > k) {
        dbuf = malloc((size_t)kk * sizeof *dbuf);
        lbuf = malloc((size_t)kk * sizeof *lbuf);
        if (!dbuf || !lbuf) { free(dbuf); free(lbuf); return idx_err(s, IDX_ERR_NOMEM, "out of memory"); }
        d = dbuf;
        l = lbuf;
    }
    if (strstr(idx_vec_type(s), "HNSW") && !v->standin && kk > s->params.hnsw_ef_search) set_search_params(s, v->index, kk);
    /* omp_set_num_threads sets this thread's default for later parallel
     * regions only (FAISS's and OpenBLAS-openmp's); restored after. */
    int prev_threads = omp_get_max_threads();
    if (s->params.search_threads > 0) omp_set_num_threads(s->params.search_threads);
    int rc = vec_search_once(s, q, kk, d, l);
    /* An IVF type sees only the lists it probes: when they hold fewer than
     * kk vectors (a filter asking for more, a small index with many lists),
     * probe more lists until kk are found or every list was probed. */
    FaissIndexIVF *ivf = v->standin ? NULL : ivf_of(v->index);
    if (!rc && ivf && l[kk - 1] < 0) {
        size_t nlist = faiss_IndexIVF_nlist(ivf), np = faiss_IndexIVF_nprobe(ivf);
        while (!rc && l[kk - 1] < 0 && np < nlist) {
            np = np * 4 < nlist ? np * 4 : nlist;
            faiss_IndexIVF_set_nprobe(ivf, np);
            rc = vec_search_once(s, q, kk, d, l);
        }
        faiss_IndexIVF_set_nprobe(ivf, (size_t)(s->params.ivf_nprobe > 0 ? s->params.ivf_nprobe : 1));
    }
    if (s->params.search_threads > 0) omp_set_num_threads(prev_threads);
    if (!rc) {
        int64_t m = 0;
        for (int64_t i = 0; i < kk && m < k; i++) {
            if (l[i] < 0 || is_tomb(v, l[i])) continue;
            dist[m] = d[i];
            ids[m] = l[i];
            m++;
        }
        *n = m;
    }
    free(dbuf);
    free(lbuf);
    return rc;
}

int idx_vec_ids(idx_store *s, int64_t **out, size_t *n) {
    *out = NULL;
    *n = 0;
    idx_vec *v = &s->vec;
    int64_t live = idx_vec_ntotal(s);
    int64_t *a = malloc(((size_t)(live > 0 ? live : 0) + 1) * sizeof *a);
    if (!a) return idx_err(s, IDX_ERR_NOMEM, "out of memory");
    FaissIndexIVF *ivf = v->index ? faiss_IndexIVF_cast(v->index) : NULL;
    if (ivf) {
        /* IVF keeps ids per list. */
        size_t k = 0, nl = faiss_IndexIVF_nlist(ivf);
        for (size_t l = 0; l < nl; l++) {
            size_t ls = faiss_IndexIVF_get_list_size(ivf, l);
            if (k + ls > (size_t)(live > 0 ? live : 0)) { free(a); return idx_err(s, IDX_ERR_FAISS, "IVF lists hold more ids than ntotal"); }
            faiss_IndexIVF_invlists_get_ids(ivf, l, a + k);
            k += ls;
        }
        *n = k;
    } else if (v->index) {
        FaissIndexIDMap2 *m = faiss_IndexIDMap2_cast(v->index);
        if (!m) { free(a); return idx_err(s, IDX_ERR_FAISS, "FAISS index has no id map"); }
        idx_t *map = NULL;
        size_t len = 0, k = 0;
        faiss_IndexIDMap2_id_map(m, &map, &len);
        for (size_t i = 0; i < len; i++)
            if (!is_tomb(v, map[i]) && k < (size_t)live) a[k++] = map[i];
        *n = k;
    }
    *out = a;
    return IDX_OK;
}

/* Writes all of buf to fd. */
static int write_all(int fd, const void *buf, size_t len) {
    const unsigned char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Streams bytes to the temp file while computing checksum() over them
 * (partial 8-byte words carried between writes, so the result equals one
 * checksum() pass over everything written). */
typedef struct {
    int fd;
    int err;                /* errno of a failed write, 0 = fine */
    uint64_t h, len;
    unsigned char tail[8];
    size_t ntail;
} vf_sink;

static ssize_t sink_write(void *cookie, const char *buf, size_t n) {
    vf_sink *k = cookie;
    if (write_all(k->fd, buf, n) != 0) {
        k->err = errno ? errno : EIO;
        return -1;
    }
    const unsigned char *p = (const unsigned char *)buf;
    size_t m = n;
    if (k->ntail) {
        size_t take = 8 - k->ntail < m ? 8 - k->ntail : m;
        memcpy(k->tail + k->ntail, p, take);
        k->ntail += take;
        p += take;
        m -= take;
        if (k->ntail == 8) {
            k->h = checksum(k->h, k->tail, 8);
            k->ntail = 0;
        }
    }
    size_t words = m & ~(size_t)7;
    k->h = checksum(k->h, p, words);
    memcpy(k->tail, p + words, m - words);
    k->ntail += m - words;
    k->len += n;
    return (ssize_t)n;
}

/* Saves the index atomically: header placeholder, tombstones and FAISS's
 * serialisation streamed into faiss.index.tmp (checksummed on the way), the
 * header written last, fsync, rename over faiss.index, fsync the folder. A
 * crash leaves either the old file or the new one. */
int idx_vec_save(idx_store *s) {
    idx_vec *v = &s->vec;
    int rc = IDX_OK;
    vf_sink k = {.fd = -1, .h = 0x9e3779b97f4a7c15ULL};
    FILE *f = NULL;
    if (!v->index) return IDX_OK;
    if (v->gen != s->gen) {
        rc = idx_vec_rebuild(s);
        if (rc) return rc;
    }
    if (v->saved_gen == v->gen && access(s->faiss_path, F_OK) == 0) return IDX_OK;
    if (!v->removable && v->n_tomb > 0 &&
        (double)v->n_tomb > VF_TOMB_REBUILD_FRACTION * (double)faiss_Index_ntotal(v->index)) {
        rc = idx_vec_rebuild(s);
        if (rc) return rc;
    }
    unsigned char hdr[VF_HEADER];
    memset(hdr, 0, sizeof hdr);
    k.fd = open(s->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (k.fd < 0) { rc = idx_err(s, IDX_ERR_IO, "cannot create %s: %s", s->tmp_path, strerror(errno)); goto done; }
    if (write_all(k.fd, hdr, sizeof hdr) != 0 ||
        (v->n_tomb && sink_write(&k, (const char *)v->tomb, v->n_tomb * 8) < 0)) {
        rc = idx_err(s, IDX_ERR_IO, "writing %s: %s", s->tmp_path, strerror(errno));
        goto done;
    }
    uint64_t tomb_bytes = k.len;
    f = fopencookie(&k, "w", (cookie_io_functions_t){.write = sink_write});
    if (!f) { rc = idx_err(s, IDX_ERR_NOMEM, "fopencookie: %s", strerror(errno)); goto done; }
    int frc = faiss_write_index(v->index, f);
    int crc = fclose(f);
    f = NULL;
    if (k.err) { rc = idx_err(s, IDX_ERR_IO, "writing %s: %s", s->tmp_path, strerror(k.err)); goto done; }
    if (frc) { rc = idx_faiss_err(s, frc, "write_index"); goto done; }
    if (crc != 0) { rc = idx_err(s, IDX_ERR_IO, "writing %s: %s", s->tmp_path, strerror(errno)); goto done; }
    uint64_t sum = checksum(k.h, k.tail, k.ntail);

    uint32_t version = VF_VERSION, dim = (uint32_t)s->dim, standin = v->standin;
    uint64_t n_tomb = v->n_tomb, pl = k.len - tomb_bytes;
    memcpy(hdr, VF_MAGIC, 8);
    memcpy(hdr + 8, &version, 4);
    memcpy(hdr + 12, &dim, 4);
    memcpy(hdr + 16, &v->gen, 8);
    memcpy(hdr + 24, s->uuid, 32);
    memcpy(hdr + 56, idx_vec_type(s), strlen(idx_vec_type(s)));
    memcpy(hdr + 120, &standin, 4);
    memcpy(hdr + 128, &n_tomb, 8);
    memcpy(hdr + 136, &pl, 8);
    memcpy(hdr + 144, &sum, 8);
    if (pwrite(k.fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr) {
        rc = idx_err(s, IDX_ERR_IO, "writing %s: %s", s->tmp_path, strerror(errno));
        goto done;
    }
    if (fsync(k.fd) != 0) { rc = idx_err(s, IDX_ERR_IO, "fsync %s: %s", s->tmp_path, strerror(errno)); goto done; }
    close(k.fd);
    k.fd = -1;
    if (rename(s->tmp_path, s->faiss_path) != 0) {
        rc = idx_err(s, IDX_ERR_IO, "rename %s: %s", s->tmp_path, strerror(errno));
        unlink(s->tmp_path);
        goto done;
    }
    int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0) rc = idx_err(s, IDX_ERR_IO, "fsync folder: %s", strerror(errno));
        close(dfd);
    }
    if (!rc) v->saved_gen = v->gen;
done:
    if (f) fclose(f);
    if (k.fd >= 0) {
        close(k.fd);
        unlink(s->tmp_path);
    }
    return rc;
}
