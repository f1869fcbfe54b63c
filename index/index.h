/* index.h — mrag's storage layer: SQLite (documents, chunks, vectors, FTS5,
 * meta) plus a FAISS index that caches the vectors. The one public header of
 * index/; usable without llm/ and rag/.
 *
 * An index is a folder:  DIR/mrag.sqlite   source of truth (WAL mode)
 *                        DIR/faiss.index   FAISS cache of the vectors
 *                        DIR/mrag.lock     single-writer lock
 *
 * Every function that can fail returns an idx_status (0 = IDX_OK, negative =
 * error) and keeps a message naming the index file and the problem, read with
 * idx_errmsg(). Nothing here prints or exits. A store handle is used by one
 * thread at a time.
 *
 * Writes happen in transactions. Between idx_begin() and idx_commit() any
 * number of idx_doc_put / idx_doc_delete calls may run; they become visible
 * (in SQLite, FTS5 and the in-memory FAISS index) together at commit, or not
 * at all. Outside a transaction each write call commits on its own. The FAISS
 * file is written only by idx_save(), at points the caller chooses (e.g. every
 * N documents and at the end); a stale or missing file is rebuilt from SQLite
 * on the next open, so a crash loses at most the uncommitted transaction. */
#ifndef MRAG_INDEX_H
#define MRAG_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Status codes. The list only ever grows. */
typedef enum {
    IDX_OK = 0,
    IDX_ERR_ARG = -1,       /* bad argument (NULL, wrong dimension, NaN...) */
    IDX_ERR_NOMEM = -2,
    IDX_ERR_IO = -3,        /* file system error (folder, lock, FAISS file) */
    IDX_ERR_SQLITE = -4,    /* SQLite reported an error */
    IDX_ERR_FAISS = -5,     /* FAISS reported an error */
    IDX_ERR_NOTFOUND = -6,  /* no such document / chunk / meta key */
    IDX_ERR_STATE = -7,     /* call not allowed now (e.g. idx_save in a transaction) */
    IDX_ERR_SCHEMA = -8,    /* database schema newer than this program, or not ours */
    IDX_ERR_MISMATCH = -9,  /* vector dimension / embedding fingerprint differs */
    IDX_ERR_BUSY = -10,     /* another process holds the writer lock */
    IDX_ERR_READONLY = -11, /* write call on a store opened read-only */
} idx_status;

/* Human-readable name of a status code ("IDX_ERR_SQLITE"). Static string. */
const char *idx_status_name(int status);

typedef struct idx_store idx_store;

typedef struct {
    /* FAISS index type, as a FAISS factory string without the id map:
     * "Flat" (exact inner product), "HNSW32", "IVF1024,Flat", "SQ8",
     * "IVF4096,SQ8", "OPQ64,IVF4096,PQ64", "HNSW32,SQ8", ... or "auto"
     * (the default for a new index): Flat while the vectors take at most
     * 256 MiB as float32, then IVF(~4 sqrt n),SQ8, above 8 GiB of codes
     * IVF,PQ(d/16), rebuilt as the size crosses each step (docs/index.md).
     * NULL keeps the type recorded in the index; a different type than
     * the recorded one is recorded and the FAISS index rebuilt. */
    const char *faiss_factory;
    bool read_only;         /* no writes, no lock, FAISS file never written */
    int busy_timeout_ms;    /* SQLite busy timeout (default 5000) */
    int ivf_nprobe;         /* IVF lists probed per query (default 16) */
    int hnsw_ef_search;     /* HNSW efSearch (default 64; raised to k) */
    /* OpenMP threads FAISS (and OpenBLAS) may use for one search from this
     * handle; 0 = the OpenMP default (all cores). Default 1: a single query
     * gains little from a second thread, and on a busy machine waiting for
     * it costs milliseconds (see docs/benchmarks.md, "Index"). */
    int search_threads;
    /* Threads one dense search may scan its IVF lists with (the coarse
     * quantiser runs once, the probed lists are split over the threads and
     * the partial top-k merged: the same result as one thread). 0
     * (default) = automatic: the CPUs this process may run on, when the
     * probed lists hold at least 1 MiB of codes per thread (1M x 4,096 at
     * SQ8, nprobe 16: ~32 MiB, two threads; small indexes stay on one);
     * 1 = one thread; N > 1 = N threads whenever N lists are probed.
     * Types other than IVF (Flat, HNSW, OPQ before IVF) ignore it. */
    int probe_threads;
    /* Exact re-ranking: dense search asks the FAISS index for this many
     * candidates, re-scores them with the stored float16 vectors and keeps
     * the k best. -1 (default) = automatic: max(4k, 64) for types whose
     * codes approximate the vectors (SQ..., PQ..., LSH), none for exact
     * ones (Flat, HNSW over Flat, IVF...,Flat); 0 = off. */
    int rerank;
} idx_params;

idx_params idx_default_params(void);

/* Opens or creates the index folder `dir` (created if missing, parent must
 * exist). Creates or migrates the schema, takes the writer lock, and loads the
 * FAISS file — rebuilding it from SQLite when it is missing, corrupt, of
 * another generation or of another type (see idx_notice()).
 * *out is set to a handle even when the call fails (unless memory runs out),
 * so idx_errmsg() can explain; close it with idx_close() in every case. */
int idx_open(const char *dir, const idx_params *params, idx_store **out);

/* Closes the store (rolls back an open transaction; does NOT save the FAISS
 * file — call idx_save first). NULL is a no-op. */
void idx_close(idx_store *s);

/* Last error message (names the file and the problem), "" when none.
 * Borrowed, valid until the next call on s. */
const char *idx_errmsg(const idx_store *s);

/* Message about something the caller may want to show that is not an error,
 * e.g. "faiss.index was stale (generation 4, database at 7): rebuilt 1234
 * vectors from mrag.sqlite". NULL when there is none. Borrowed, valid until
 * the next call on s. */
const char *idx_notice(const idx_store *s);

/* Changes params.probe_threads of an open handle (benchmarks compare
 * settings on one loaded index); idx_probe_threads_used() says how many
 * threads the last dense search scanned with (1 for non-IVF types). */
void idx_set_probe_threads(idx_store *s, int n);
int idx_probe_threads_used(const idx_store *s);

/* For a read-only handle beside a running writer: when the writer committed
 * since this handle last looked, reloads the FAISS file (or rebuilds from
 * SQLite if the writer has not saved yet; see idx_notice) so dense search
 * sees the same documents as BM25. Sets *changed (may be NULL). Cheap when
 * nothing changed (one meta read). */
int idx_refresh(idx_store *s, bool *changed);

/* ------------------------------------------------------------ transactions */

int idx_begin(idx_store *s);
/* Commits SQLite, then applies the vector changes to the in-memory FAISS
 * index. If the SQLite commit fails the transaction is rolled back. If
 * only the FAISS update fails afterwards, the data stays committed, FAISS is
 * rebuilt from SQLite, and an error is returned only when that rebuild
 * fails too (the next open rebuilds again). Crossing an IVF type's training
 * threshold makes this commit train and rebuild the index (slow). */
int idx_commit(idx_store *s);
int idx_rollback(idx_store *s);
bool idx_in_transaction(const idx_store *s);

/* Writes the FAISS index atomically (temp file, fsync, rename, fsync folder)
 * if it changed since the last save. Not allowed inside a transaction. */
int idx_save(idx_store *s);

/* Rebuilds the in-memory FAISS index from the vectors in SQLite (retraining
 * IVF), then saves it. */
int idx_rebuild(idx_store *s);

/* ------------------------------------------------------------ documents */

/* A document. As input (idx_doc_put) the caller owns the strings. As output
 * (idx_doc_get, idx_doc_list, idx_chunk_get) the strings point into storage
 * owned by the struct: release it with idx_doc_release(). */
typedef struct {
    int64_t id;             /* assigned by the store (output) */
    const char *uri;        /* unique key: path relative to a source, or URL */
    const char *title;      /* NULL = "" */
    const char *type;       /* "md", "html", "pdf", "txt", ...; NULL = "" */
    int64_t size;           /* bytes of the source file */
    int64_t mtime_ns;       /* modification time, nanoseconds since epoch */
    char sha256[65];        /* lowercase hex of the content, or "" */
    /* Access groups, comma-separated ("hr,finance"); NULL or "" = public.
     * Names are trimmed; at most 64 groups of at most 128 bytes, no commas. */
    const char *groups;
    const char *status;     /* "ok" (NULL = "ok") or e.g. "failed: binary file" */
    /* The source's own revision of the content: "" for files, the revision
     * id for wiki pages (NULL = ""); at most 256 bytes. */
    const char *version;
    int64_t n_chunks;       /* output only */
    int64_t indexed_at;     /* output only: unix seconds of the last put/touch */
    void *priv_;            /* internal: owned storage of an output struct */
} idx_doc;

/* Frees what an output idx_doc owns and zeroes it. Safe on a zeroed struct. */
void idx_doc_release(idx_doc *d);

/* A chunk of a document. As input, strings are borrowed from the caller. */
typedef struct {
    int64_t id;             /* assigned by the store (output) */
    int64_t doc_id;         /* output */
    int ordinal;            /* 0, 1, 2... within the document */
    const char *text;       /* UTF-8, text_len bytes */
    size_t text_len;
    const char *heading;    /* heading path, e.g. "Install > Linux"; NULL = "" */
    int64_t byte_start, byte_end;   /* span in the extracted text */
    int line_start, line_end;       /* 1-based lines, 0 when not applicable */
    int page;               /* 1-based page (PDF), 0 when not applicable */
    int n_tokens;
    void *priv_;            /* internal: owned storage of an output struct */
} idx_chunk;

void idx_chunk_release(idx_chunk *c);

/* Inserts or replaces the document doc->uri with exactly these chunks: its
 * old chunks leave SQLite, FTS5 and FAISS, the new ones go in with their
 * vectors. `vectors` holds n_chunks * dim float32 (L2-normalised by the
 * caller), or is NULL (then dim is ignored) for a document stored without
 * vectors, e.g. a failed one. The first vectors ever stored fix the index
 * dimension; another dim later is IDX_ERR_MISMATCH. Sets doc->id and, when
 * chunk_ids is not NULL, chunk_ids[i] to the id of chunk i. */
int idx_doc_put(idx_store *s, idx_doc *doc, const idx_chunk *chunks, size_t n_chunks,
                const float *vectors, int dim, int64_t *chunk_ids);

/* Looks a document up by URI. IDX_ERR_NOTFOUND when absent. Release *out. */
int idx_doc_get(idx_store *s, const char *uri, idx_doc *out);

/* Updates size, mtime_ns (and indexed_at) of an unchanged document whose file
 * was touched (same sha256): no re-embedding needed. */
int idx_doc_touch(idx_store *s, const char *uri, int64_t size, int64_t mtime_ns);

/* Renames a document (a moved file with the same content keeps its chunks and
 * vectors). IDX_ERR_NOTFOUND when old_uri is absent, IDX_ERR_ARG when new_uri
 * exists already. */
int idx_doc_rename(idx_store *s, const char *old_uri, const char *new_uri);

/* Replaces the access groups of a document (format as idx_doc.groups; NULL or
 * "" = public) without touching its chunks or vectors: for changed access
 * rules. IDX_ERR_NOTFOUND when absent. */
int idx_doc_set_groups(idx_store *s, const char *uri, const char *groups);

/* Deletes a document and its chunks from SQLite, FTS5 and FAISS.
 * IDX_ERR_NOTFOUND when absent. */
int idx_doc_delete(idx_store *s, const char *uri);

/* Lists documents whose URI starts with uri_prefix (NULL = all), ordered by
 * URI. *docs is owned: free with idx_doc_list_free(*docs, *n). */
int idx_doc_list(idx_store *s, const char *uri_prefix, idx_doc **docs, size_t *n);
void idx_doc_list_free(idx_doc *docs, size_t n);

/* Fetches a chunk and (if doc is not NULL) its document, for display and
 * citations. IDX_ERR_NOTFOUND when absent. Release both. */
int idx_chunk_get(idx_store *s, int64_t chunk_id, idx_chunk *chunk, idx_doc *doc);

/* The ids of all chunks (public_only: of documents without groups),
 * ascending. *ids owned, free(). */
int idx_chunk_ids(idx_store *s, bool public_only, int64_t **ids, size_t *n);

/* Copies the stored vector of a chunk into out[dim]. */
int idx_chunk_vector(idx_store *s, int64_t chunk_id, float *out, int dim);

/* ------------------------------------------------------------ search */

typedef struct {
    int64_t chunk_id;
    float score;            /* dense: inner product; bm25: -bm25() (higher is better) */
} idx_hit;

/* Access-group filter: a document is visible when it has no groups (public)
 * or shares at least one group with `groups`. NULL filter = everything. */
typedef struct idx_filter {
    const char *const *groups;
    size_t n_groups;
} idx_filter;

/* Dense search: the k chunks whose vectors have the highest inner product
 * with query[dim]. Writes up to k hits (best first) and their count. With a
 * filter, results are filtered before they are cut to k (FAISS is asked for
 * more until k visible hits are found or the index is exhausted), so hidden
 * documents never starve the result. */
int idx_search_dense(idx_store *s, const float *query, int dim, int k,
                     const idx_filter *filter, idx_hit *hits, int *n_hits);

/* BM25 search over chunk text and heading with FTS5. The query is free user
 * text (query_len bytes, may hold NUL or invalid UTF-8): it is reduced to its
 * words, each quoted, OR-ed together (with ß/ss spelling variants), so no
 * input can produce an FTS5 syntax error or operator. An empty word list
 * gives 0 hits. */
int idx_search_bm25(idx_store *s, const char *query, size_t query_len, int k,
                     const idx_filter *filter, idx_hit *hits, int *n_hits);

/* The FTS5 query idx_search_bm25 would run for this text on this index
 * (for tests and --explain): the analysed terms of the query (see "Text
 * analysis"), each a quoted verbatim term, OR-ed. Owned, free(); "" when the
 * text holds no words; NULL on OOM or error (idx_errmsg). */
char *idx_fts_query(idx_store *s, const char *query, size_t query_len);

/* ------------------------------------------------------------ text analysis
 *
 * The FTS5 index is built by mrag's own tokenizer ("mrag"): words as
 * SQLite's unicode61 splits and case-folds them; a language per value
 * (chunk text, heading) by stop-word profiles, falling back to the index's
 * default language; ß -> ss, and in German ae/oe/ue read as ä/ö/ü; a
 * Snowball stem (libstemmer) in that language; diacritics removed; German,
 * Dutch and Scandinavian compounds split against the index's frozen word
 * list (both parts frequent words of the public documents, or words of a
 * dictionary), the parts indexed at the position of the whole word
 * (FTS5_TOKEN_COLOCATED). Queries are analysed by the same code (see
 * idx_fts_query), so both sides always agree. This API lets other code (e.g.
 * evidence selection) see words exactly as the index does. */

enum {
    IDX_LANG_NONE = 0,      /* no stemming, folding only */
    IDX_LANG_EN, IDX_LANG_DE, IDX_LANG_FR, IDX_LANG_ES, IDX_LANG_IT, IDX_LANG_NL,
    IDX_LANG_PT, IDX_LANG_SV, IDX_LANG_DA, IDX_LANG_NO, IDX_LANG_FI, IDX_LANG_RU,
    IDX_LANG_EL,
    IDX_LANG_COUNT
};

/* "en", "de", ... ("none" for IDX_LANG_NONE or out of range). Static. */
const char *idx_lang_code(int lang);
/* IDX_LANG_* of a code, -1 when unknown. */
int idx_lang_from_code(const char *code);
/* Language of a text by stop-word profiles (Cyrillic and Greek by script):
 * IDX_LANG_*, or -1 when the text holds fewer than two stop words of any
 * language or two languages tie. *hits (may be NULL) = stop words found. */
int idx_lang_detect(const char *text, size_t len, int *hits);

typedef struct idx_analyzer idx_analyzer;

/* One term: `term` (len bytes, not NUL-terminated in general) is what the
 * index stores for the word at bytes [start, end) of the text; colocated =
 * a compound part at the same position as the previous whole word. Return
 * non-zero to stop (idx_analyze then returns IDX_ERR_ARG). */
typedef int (*idx_term_cb)(void *user, const char *term, size_t len, int start, int end, bool colocated);

/* An analyzer that sees text as the index s does (its default language and
 * compound word list), or with s = NULL a standalone one (English default,
 * no compound list). *out owned: idx_analyzer_free. Uses s like any other
 * call (one thread at a time) and must not outlive it. */
int idx_analyzer_new(idx_store *s, idx_analyzer **out);
void idx_analyzer_free(idx_analyzer *z);
/* The language the analyzer would use for this text (detected, else the
 * default language). */
int idx_analyzer_detect(idx_analyzer *z, const char *text, size_t len);
/* The terms of text in language lang (-1 = detect as the index does). */
int idx_analyze(idx_analyzer *z, const char *text, size_t len, int lang, idx_term_cb cb, void *user);
/* The terms of a question, as idx_analyze gives them but without the stop
 * words of its language (kept when nothing else is left), as queries are
 * searched. */
int idx_analyze_query(idx_analyzer *z, const char *text, size_t len, int lang, idx_term_cb cb, void *user);
/* The same without the stop words even when nothing else is left (a
 * question of function words only has no content terms). */
int idx_analyze_content(idx_analyzer *z, const char *text, size_t len, int lang, idx_term_cb cb, void *user);
/* The index's query languages (bit l: IDX_LANG l; the default language
 * included); 0 on error. */
uint32_t idx_analyzer_langs(idx_analyzer *z);

/* The index's analysis settings, fixed at its last retune. */
typedef struct {
    int default_lang;               /* IDX_LANG_* */
    uint32_t lang_mask;             /* bit l: language l is a query language */
    int64_t vocab_words;            /* words in the compound word list */
    int64_t chunks_analyzed;        /* chunks at the last retune */
    int64_t lang_chunks[IDX_LANG_COUNT]; /* chunks per detected language then */
    char compounds[16];             /* "corpus", "dict", "both", "off" */
    int64_t generation;             /* bumped by every FTS rebuild */
} idx_fts_info;

int idx_fts_info_get(idx_store *s, idx_fts_info *out);

typedef struct {
    bool force;                     /* re-analyse and rebuild even when unchanged */
    /* compound source, NULL keeps the recorded one (default "both"):
     * "corpus" (frequent words of the public chunks), "dict" (the German
     * hunspell word list at dict_path, when the index has German chunks),
     * "both" (the dictionary only when its file exists), "off" */
    const char *compounds;
    const char *dict_path;          /* NULL: /usr/share/hunspell/de_DE.dic */
} idx_fts_params;

/* Re-analyses the index (languages of all chunks, the compound word list
 * from public chunks) and rebuilds the FTS5 table with it when forced, on
 * the first call, or when the index has at least doubled since the last
 * analysis (so the total work stays linear in the index size); vectors are
 * never touched. *rebuilt (may be NULL) says whether it rebuilt. */
int idx_fts_retune(idx_store *s, const idx_fts_params *p, bool *rebuilt);

/* Query-side German synonyms (docs/retrieval.md, "Synonyms"): a query
 * analysed as German is searched with the synonyms of its words from a
 * thesaurus in OpenThesaurus text format, weighted below its own words. The
 * file is read at the first German search, never stored in the index.
 * path NULL: /usr/share/openthesaurus-de/openthesaurus.txt (Debian package
 * openthesaurus-de-text); "" turns synonyms off. */
int idx_set_thesaurus(idx_store *s, const char *path);
typedef struct {
    size_t sets, terms;             /* 0 sets: no synonyms (note says why) */
    char path[512];
    char note[512];
} idx_thesaurus_status;
/* Loads the thesaurus if not yet loaded, and says what is in use. */
int idx_thesaurus_info(idx_store *s, idx_thesaurus_status *out);

/* ------------------------------------------------------------ meta */

/* Free-form key/value metadata. Keys starting with "idx." are reserved. */
int idx_meta_set(idx_store *s, const char *key, const char *value);
/* *value is owned (free()); IDX_ERR_NOTFOUND when the key is absent. */
int idx_meta_get(idx_store *s, const char *key, char **value);
/* The keys that start with prefix (byte-wise), sorted. *keys owned: free
 * with idx_meta_keys_free(*keys, *n). */
int idx_meta_keys(idx_store *s, const char *prefix, char ***keys, size_t *n);
void idx_meta_keys_free(char **keys, size_t n);

/* Which embedding built the vectors. */
typedef struct {
    char model_sha256[65];  /* lowercase hex of the model file */
    int layer;              /* hidden-state layer used (-1 = final norm) */
    char pooling[16];       /* "mean", "last", ... */
    int dim;
} idx_fingerprint;

/* Records the fingerprint. IDX_ERR_MISMATCH if vectors of another dimension
 * are stored already, or if a different fingerprint is recorded and the
 * index holds vectors (re-ingest into a fresh index instead). */
int idx_fingerprint_set(idx_store *s, const idx_fingerprint *fp);
/* IDX_ERR_NOTFOUND when none is recorded. */
int idx_fingerprint_get(idx_store *s, idx_fingerprint *fp);
/* Replaces every stored vector at once, with a new fingerprint (e.g. the
 * same model at another layer): ids[n] must be exactly the chunks that have
 * vectors, vecs n x fp->dim (L2-normalised, finite), fp->dim the index's
 * dimension. One transaction; the FAISS index is rebuilt and saved after
 * it. Not inside a caller's transaction. */
int idx_vectors_replace(idx_store *s, const idx_fingerprint *fp, const int64_t *ids, const float *vecs, size_t n);
/* IDX_OK when fp equals the recorded one (or none is recorded);
 * IDX_ERR_MISMATCH with a message naming the differing fields otherwise. */
int idx_fingerprint_check(idx_store *s, const idx_fingerprint *fp);

/* ------------------------------------------------------------ stats */

typedef struct {
    int64_t documents;
    int64_t chunks;
    int64_t vectors;            /* rows in the vectors table */
    int64_t fts_rows;           /* distinct rows in the FTS5 index itself */
    int64_t faiss_ntotal;       /* live ids in the FAISS index */
    int64_t generation;         /* of the last committed vector change */
    int64_t faiss_generation;   /* the in-memory FAISS index reflects */
    int64_t saved_generation;   /* of the FAISS file (-1 = none) */
    int dim;                    /* 0 until vectors are stored */
    char faiss_type[64];        /* "Flat", "HNSW32", "auto: IVF1024,SQ8", ... */
} idx_counts;

/* Counts rows everywhere (scans the FTS5 index: O(index size)). */
int idx_get_counts(idx_store *s, idx_counts *c);

/* Diagnostics for tests: the sorted live ids of the FAISS index, and the
 * sorted chunk ids with a vector in SQLite. Owned arrays, free(). */
int idx_debug_faiss_ids(idx_store *s, int64_t **ids, size_t *n);
int idx_debug_vector_ids(idx_store *s, int64_t **ids, size_t *n);
/* The store's SQLite connection (tests of raw FTS5 queries through the
 * "mrag" tokenizer, which is registered only there). Borrowed. */
struct sqlite3 *idx_debug_db(idx_store *s);
/* Runs PRAGMA integrity_check and FTS5's integrity-check against the chunks
 * table; IDX_OK when both pass, else IDX_ERR_SQLITE with the findings. */
int idx_check(idx_store *s);

/* ------------------------------------------------------------ check/repair
 * (check.c; `mrag check`) */

typedef struct {
    bool sqlite_ok;             /* PRAGMA integrity_check; when false the rest is not read */
    char sqlite_msg[512];
    bool fts_checked, fts_ok;   /* FTS5 integrity-check and the access-class statistics
                                   recount (writable handles only) */
    char fts_msg[512];
    int64_t documents, chunks, vectors, fts_rows, faiss_ntotal;
    int64_t meta_vectors;       /* meta idx.vectors (should equal vectors) */
    int64_t orphan_chunks;      /* chunks whose document is gone */
    int64_t orphan_vectors;     /* vectors whose chunk is gone */
    int64_t orphan_group_rows;  /* access group rows of a gone document */
    int64_t chunks_without_vector;
    int64_t vectors_bad_size;   /* blobs that are not dim float16 */
    int64_t faiss_missing;      /* vector ids FAISS does not hold */
    int64_t faiss_extra;        /* FAISS ids with no vector in SQLite */
    int64_t bad_groups;         /* stored group names that are not valid names */
    char bad_group[128];        /* the first of them */
    int dim;
} idx_check_report;

/* Fills r with every check (counts only; nothing is changed). IDX_OK when
 * the checks could run, whatever they found; an error when they could not. */
int idx_check_full(idx_store *s, idx_check_report *r);
/* Rebuilds the FTS5 index from the chunks table (idx_fts_retune, forced:
 * the analysis and the access-class statistics too). */
int idx_rebuild_fts(idx_store *s);
/* Deletes rows that belong to no document (chunks, vectors, group rows) and
 * sets the recorded vector count from the table, with a new generation so
 * the FAISS index is rebuilt (call idx_rebuild after). *removed: rows
 * deleted. */
int idx_repair_rows(idx_store *s, int64_t *removed);

#endif
