/* gguf.h — memory-mapped GGUF v2/v3 reader and a GGUF writer (internal to llm/). */
#ifndef LLM_GGUF_H
#define LLM_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Metadata value types, numbered as in the GGUF specification. */
typedef enum {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
} gguf_type;

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

/* A string inside the file: not NUL-terminated, borrowed from the mapping. */
typedef struct {
    const char *ptr;
    uint64_t len;
} gguf_str;

/* One array value. For arrays of strings `data` points at the first length
 * prefix and elements are read with llm_gguf_arr_str(); for nested arrays with
 * llm_gguf_arr_arr(). For fixed-size element types `data` points at n packed
 * little-endian values (possibly unaligned: read with memcpy). */
typedef struct {
    gguf_type elem_type;
    uint64_t n;
    const uint8_t *data;
    uint64_t nbytes;    /* bytes the elements occupy in the file */
    const void *index;  /* internal: element offsets for strings / nested arrays (built at open) */
} gguf_arr;

typedef struct {
    gguf_str key;
    gguf_type type;
    union {
        uint64_t u64;   /* every unsigned integer type, and bool (0/1) */
        int64_t i64;    /* every signed integer type */
        double f64;     /* FLOAT32 and FLOAT64 */
        gguf_str str;
        gguf_arr arr;
    } v;
} gguf_kv;

typedef struct {
    gguf_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];     /* ne[0] is the innermost (row) length; unused dims are 1 */
    uint32_t type;                  /* a ggml type id (see ggml.h) */
    uint64_t offset;                /* relative to the start of the data section */
    uint64_t nbytes;                /* size of the data, from type and shape */
    const void *data;               /* borrowed: points into the mapping */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Identity of an opened file, from fstat of the descriptor that was mapped:
 * the SHA-256 cache's key (llm/sha_cache.c). */
typedef struct {
    uint64_t dev, ino, size;
    int64_t mtime_ns, ctime_ns;
} llm_file_id;

/* Open and validate a GGUF file. Every count, offset and size is checked
 * against the file size with overflow-safe arithmetic; tensor types must be
 * known ggml types and their data must lie inside the file. On failure returns
 * -1, *out is NULL and err holds one line naming the file and the defect. */
int llm_gguf_open(const char *path, gguf_file **out, char *err, size_t errlen);

/* Same, over bytes in memory (borrowed: must outlive the handle). `name` is
 * used in error messages. Used by the fuzz target and tests. */
int llm_gguf_open_memory(const void *data, size_t size, const char *name,
                     gguf_file **out, char *err, size_t errlen);

/* Unmap and free. NULL is a no-op. */
void llm_gguf_close(gguf_file *f);

uint32_t llm_gguf_version(const gguf_file *f);
const char *llm_gguf_path(const gguf_file *f);          /* borrowed */
uint64_t llm_gguf_file_size(const gguf_file *f);
uint64_t llm_gguf_alignment(const gguf_file *f);
uint64_t llm_gguf_data_offset(const gguf_file *f);      /* absolute offset of the tensor data */
const uint8_t *llm_gguf_base(const gguf_file *f);       /* start of the mapping */
/* The mapped file's identity; NULL for bytes opened from memory. */
const llm_file_id *llm_gguf_file_id(const gguf_file *f);

/* Metadata. Lookups return NULL / false when the key is missing or the value
 * has an incompatible type. Integer getters accept any integer type whose
 * value fits; the float getter accepts FLOAT32/FLOAT64 and integers. */
uint64_t llm_gguf_kv_count(const gguf_file *f);
const gguf_kv *llm_gguf_kv_at(const gguf_file *f, uint64_t i);
const gguf_kv *llm_gguf_find_kv(const gguf_file *f, const char *key);
bool llm_gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
bool llm_gguf_get_i32(const gguf_file *f, const char *key, int32_t *out);
bool llm_gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
bool llm_gguf_get_f32(const gguf_file *f, const char *key, float *out);
bool llm_gguf_get_bool(const gguf_file *f, const char *key, bool *out);
bool llm_gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
bool llm_gguf_get_arr(const gguf_file *f, const char *key, gguf_arr *out);

/* Elements of arrays. Return false when i is out of range or the element type
 * does not match. Strings and nested arrays were validated at open, which also
 * built their offset tables: indexed access is O(1) and needs no locking (a
 * handle is read-only after open and may be shared between threads). */
bool llm_gguf_arr_str(const gguf_file *f, const gguf_arr *a, uint64_t i, gguf_str *out);
bool llm_gguf_arr_arr(const gguf_file *f, const gguf_arr *a, uint64_t i, gguf_arr *out);
bool llm_gguf_arr_f32(const gguf_arr *a, uint64_t i, float *out);
bool llm_gguf_arr_i64(const gguf_arr *a, uint64_t i, int64_t *out);   /* any integer type */

/* Tensors. */
uint64_t llm_gguf_tensor_count(const gguf_file *f);
const gguf_tensor *llm_gguf_tensor_at(const gguf_file *f, uint64_t i);
const gguf_tensor *llm_gguf_find_tensor(const gguf_file *f, const char *name);

/* True when s equals the NUL-terminated c. */
bool llm_gguf_str_eq(gguf_str s, const char *c);

/* ---------------------------------------------------------------- writer
 * Builds a GGUF v3 file: metadata first, then tensor infos, then data, each
 * tensor aligned to general.alignment (32 unless set). Values are copied, so
 * callers may free their buffers after each call. Errors are sticky: the
 * first failure is kept and reported by llm_gguf_writer_write(). */
typedef struct gguf_writer gguf_writer;

gguf_writer *llm_gguf_writer_new(void);                     /* NULL on OOM */
void llm_gguf_writer_free(gguf_writer *w);                  /* NULL is a no-op */
void llm_gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
void llm_gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
void llm_gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
void llm_gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
void llm_gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
void llm_gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* Arrays of fixed-size elements: n values of elem_type, packed. */
void llm_gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_type elem_type,
                         const void *data, uint64_t n);
void llm_gguf_writer_set_arr_str(gguf_writer *w, const char *key,
                             const char *const *strs, uint64_t n);
/* An array whose n elements are given already encoded as in a GGUF file
 * (strings: u64 length + bytes; nested arrays: u32 element type, u64 count,
 * elements). The encoding is validated; a bad one makes the writer fail. */
void llm_gguf_writer_set_arr_raw(gguf_writer *w, const char *key, gguf_type elem_type, uint64_t n,
                             const void *raw, uint64_t raw_len);
/* Copies one key and its value (any type, arrays included) from a file
 * opened with llm_gguf_open(). */
void llm_gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv);
/* Adds a tensor; `data` holds nbytes as computed from type and shape, or is
 * NULL for all-zero data, which is written as a hole (a sparse file: big
 * test models cost no disk). */
void llm_gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type,
                            uint32_t n_dims, const uint64_t *ne, const void *data);
/* Writes the file atomically (temp file in the same folder, fsync, rename).
 * Setting a key twice keeps the last value. 0, or -1 with err set to one
 * line naming the path. The writer stays usable (it can write again). */
int llm_gguf_writer_write(gguf_writer *w, const char *path, char *err, size_t errlen);

#endif
