/* rag.h — mrag's ingestion and query pipelines: the one public header of rag/.
 * Library code: returns status codes, keeps error messages, never prints. */
#ifndef MRAG_RAG_H
#define MRAG_RAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Status codes shared by rag_ functions. Values only ever grow. */
typedef enum {
    RAG_OK = 0,
    RAG_ERR_IO = -1,
    RAG_ERR_FORMAT = -2,
    RAG_ERR_UNSUPPORTED = -3,
    RAG_ERR_NOMEM = -4,
    RAG_ERR_ARG = -5,
    RAG_ERR_LIMIT = -6,
    RAG_ERR_BLOCKED = -7,
    RAG_ERR_MISMATCH = -8,      /* index built by another embedding model (pipeline) */
} rag_status;

/* ============================================================ ingestion
 * (sources, extractors, chunker — owned by the ingestion engineer)
 *
 * The ingest glue runs: rag_walk (which files, which skipped and why) ->
 * rag_extract_file (normalised UTF-8 text + blocks with exact spans) ->
 * rag_chunk (token-sized chunks with heading path, spans, token count).
 * Everything here is deterministic and never prints. */

/* Document types the extractors understand. */
typedef enum {
    RAG_DOC_UNKNOWN = 0,
    RAG_DOC_TXT,
    RAG_DOC_MD,
    RAG_DOC_HTML,
    RAG_DOC_PDF,
} rag_doc_type;

const char *rag_doc_type_str(rag_doc_type t);      /* "txt", "md", ... */
/* The type for a file name by its extension (case-insensitive), or
 * RAG_DOC_UNKNOWN. */
rag_doc_type rag_doc_type_from_path(const char *path);

/* Why the walker did not hand a path to extraction. Values only ever grow. */
typedef enum {
    RAG_SKIP_NONE = 0,          /* not skipped: extract it */
    RAG_SKIP_HIDDEN,            /* name starts with '.', including .git */
    RAG_SKIP_EXTENSION,         /* not a supported extension */
    RAG_SKIP_TOO_LARGE,         /* larger than max_file_bytes */
    RAG_SKIP_BINARY,            /* NUL bytes / many control bytes in the first 8 KB */
    RAG_SKIP_UNREADABLE,        /* open/stat/readdir failed; detail holds strerror */
    RAG_SKIP_SYMLINK_OUTSIDE,   /* a symlink pointing out of the root */
    RAG_SKIP_LOOP,              /* a folder already visited: (dev, inode) */
    RAG_SKIP_SPECIAL,           /* fifo, socket, device */
    RAG_SKIP_DEPTH,             /* deeper than max_depth */
    RAG_SKIP_BROKEN_LINK,       /* a symlink whose target does not exist */
    RAG_SKIP_DUPLICATE,         /* the same file (dev, inode) as an earlier entry */
} rag_skip_reason;

const char *rag_skip_reason_str(rag_skip_reason r);  /* "binary", "too large", ... */

typedef struct {
    uint64_t max_file_bytes;    /* default 50 MB; larger files: RAG_SKIP_TOO_LARGE */
    int max_depth;              /* folder depth below the root, default 64 */
    size_t max_entries;         /* stop with RAG_ERR_LIMIT past this many entries, default 1,000,000 */
    bool report_hidden;         /* list hidden names as skipped entries (default true) */
} rag_walk_params;

rag_walk_params rag_walk_default_params(void);

typedef struct {
    char *path;                 /* root joined with rel ("docs/a.md" under root "docs") */
    char *rel;                  /* relative to the root, '/'-separated, no "./" */
    uint64_t size;
    int64_t mtime_sec;
    int64_t mtime_nsec;
    rag_doc_type type;          /* for RAG_SKIP_NONE: how to extract it */
    rag_skip_reason skip;
    char *detail;               /* extra words for the reason ("Permission denied"), or NULL */
    bool is_dir;                /* a skipped folder (hidden, loop, unreadable, depth) */
} rag_walk_entry;

typedef struct {
    rag_walk_entry *entries;    /* sorted by rel (byte order): the walk order */
    size_t n;
    size_t n_files;             /* entries with skip == RAG_SKIP_NONE */
} rag_walk_result;

/* Walks root recursively (root may also be a single file). Symlinks inside
 * the root are followed; links out of it are skipped; folders are visited
 * once by (dev, inode). Files without an extension are sniffed: text becomes
 * RAG_DOC_TXT, the rest RAG_SKIP_BINARY; .txt/.md/.html files that hold NUL
 * bytes are RAG_SKIP_BINARY too (UTF-16 with a BOM excepted). Problems below
 * the root become entries with a reason and the walk goes on; only an
 * unreadable root, a bad argument or max_entries fail the call. On success
 * *out is filled (free with rag_walk_result_free); on failure it is empty and
 * err names the path and the problem. */
int rag_walk(const char *root, const rag_walk_params *p, rag_walk_result *out,
             char *err, size_t errlen);
void rag_walk_result_free(rag_walk_result *r);

/* Kinds of extracted blocks. */
typedef enum {
    RAG_BLOCK_PARAGRAPH = 0,
    RAG_BLOCK_HEADING,          /* level 1..6 */
    RAG_BLOCK_CODE,             /* fenced code (md), <pre> (html) */
    RAG_BLOCK_LIST_ITEM,
    RAG_BLOCK_TABLE_CELL,
    RAG_BLOCK_PAGE,             /* the text of one PDF page */
} rag_block_kind;

/* One block of an extracted document. text_off/text_len index doc->text.
 * Spans are in the coordinates of the original file: bytes [byte_start,
 * byte_end) and lines line_start..line_end (1-based; 0 = unknown, as in
 * PDF); page is 1-based for PDF and 0 otherwise. */
typedef struct {
    rag_block_kind kind;
    int level;
    size_t text_off, text_len;
    uint64_t byte_start, byte_end;
    uint32_t line_start, line_end;
    uint32_t page;
} rag_block;

/* A run of the map from doc->text offsets to original file offsets:
 * for t in [text_off, next run's text_off), orig = orig_off + (t - text_off) * mul.
 * mul 0 marks a single converted character (only its start is a boundary). */
typedef struct {
    uint64_t text_off, orig_off;
    uint32_t mul;
} rag_span_run;

typedef struct {
    rag_doc_type type;
    char *name;                 /* the path or name given to the extractor (for messages) */
    char *text;                 /* normalised UTF-8, NUL-terminated, LF line ends */
    size_t text_len;
    rag_block *blocks;          /* in document order, non-overlapping, increasing text_off */
    size_t n_blocks;
    char *title;                /* <title>, first heading, or "" */
    char encoding[24];          /* source encoding: "UTF-8", "UTF-16LE", "WINDOWS-1252", "PDF" */
    /* txt/md only: doc->text offsets map exactly to original offsets
     * (rag_doc_orig_offset) and line numbers (rag_doc_line_at). */
    bool exact_spans;
    rag_span_run *runs;
    size_t n_runs;
    uint64_t *line_starts;      /* text offset of the start of each line (exact_spans) */
    size_t n_lines;
    uint32_t n_pages;           /* PDF */
} rag_doc;

typedef struct {
    size_t max_text_bytes;      /* extracted text limit, default 64 MB: RAG_ERR_LIMIT */
    int max_depth;              /* HTML element nesting, default 256: RAG_ERR_LIMIT */
    uint32_t max_pages;         /* PDF, default 5000 */
    size_t max_blocks;          /* default 4,000,000 */
} rag_extract_params;

rag_extract_params rag_extract_default_params(void);

/* Reads and extracts one file. type RAG_DOC_UNKNOWN: by extension (and
 * text for anything else). On success *out is owned by the caller (free with
 * rag_doc_free). On failure *out is NULL and err names the file and the
 * problem: RAG_ERR_IO (cannot read), RAG_ERR_FORMAT (not text / bad encoding
 * / damaged PDF), RAG_ERR_UNSUPPORTED (encrypted PDF), RAG_ERR_LIMIT. */
int rag_extract_file(const char *path, rag_doc_type type, const rag_extract_params *p,
                     rag_doc **out, char *err, size_t errlen);
/* The same from bytes in memory; name is used in messages only. */
int rag_extract_memory(const char *name, const void *data, size_t len, rag_doc_type type,
                       const rag_extract_params *p, rag_doc **out, char *err, size_t errlen);
void rag_doc_free(rag_doc *d);  /* NULL is a no-op */

/* exact_spans docs: the original byte offset of text offset t (t <= text_len). */
uint64_t rag_doc_orig_offset(const rag_doc *d, size_t t);
/* exact_spans docs: the 1-based line holding text offset t. */
uint32_t rag_doc_line_at(const rag_doc *d, size_t t);

/* Token counter: the number of tokens text[0..len) takes (no BOS), or < 0 on
 * error. The real one wraps llm_tokenize; tests may count words. */
typedef int (*rag_count_tokens_fn)(void *user, const char *text, size_t len);

typedef struct {
    int max_tokens;             /* per chunk, of the embed text; default 256 */
    int overlap_tokens;         /* repeated from the previous chunk of a section; default 32 */
    size_t max_chunk_bytes;     /* hard byte cap per chunk text, default 32 * max_tokens */
    const char *heading_sep;    /* default " > " */
} rag_chunk_params;

rag_chunk_params rag_chunk_default_params(void);

typedef struct {
    char *text;                 /* display text: the exact slice of doc->text */
    size_t text_len;
    char *embed_text;           /* heading path + "\n\n" + text (just text with no path) */
    size_t embed_len;
    char *heading_path;         /* "Install > Debian", or "" */
    size_t text_off;            /* where text starts in doc->text */
    uint64_t byte_start, byte_end;  /* original file bytes (see rag_block) */
    uint32_t line_start, line_end;  /* 1-based, 0 = unknown (PDF) */
    uint32_t page;              /* PDF page (1-based), else 0 */
    int n_tokens;               /* tokens of embed_text by the counter; <= max_tokens */
} rag_chunk;

typedef struct {
    rag_chunk *chunks;
    size_t n;
} rag_chunk_list;

/* Splits doc into chunks: sections at headings (and PDF pages), then packs
 * words up to max_tokens preferring to end at a paragraph, then a sentence,
 * then a word boundary; words too long for a chunk are cut at UTF-8
 * character boundaries. Consecutive chunks of one section share up to
 * overlap_tokens tokens of whole words. On success *out owns everything
 * (free with rag_chunk_list_free); the counter's failure or an impossible
 * budget returns an error with err filled. */
int rag_chunk_doc(const rag_doc *doc, const rag_chunk_params *p, rag_count_tokens_fn count,
                  void *user, rag_chunk_list *out, char *err, size_t errlen);
void rag_chunk_list_free(rag_chunk_list *l);

/* A whitespace word counter (user ignored), for tests and --no-model runs. */
int rag_count_words(void *user, const char *text, size_t len);
/* The real counter: user is a const llm_model * (a vocab-only load is
 * enough); tokens by llm_tokenize without BOS and without special-token
 * parsing (document text never turns into control tokens). Thread-safe. */
int rag_count_llm_tokens(void *user, const char *text, size_t len);


/* ============================================================ pipeline
 * (ingest and retrieval glue — owned by the pipeline engineer; see
 * docs/ingestion.md "The ingestion pipeline" and docs/retrieval.md)
 *
 * rag_ingest_dir: walk -> skip unchanged (size+mtime, then sha256) ->
 * extract -> chunk (model tokenizer) -> embed in batches -> one transaction
 * per document in an idx_store; vanished files removed, renamed files
 * renamed. Progress and per-file outcomes go through a callback; nothing
 * prints. rag_retrieve: dense, BM25 or hybrid (RRF, k = 60) search. */

typedef struct llm_model llm_model;
typedef struct idx_store idx_store;

/* What happened to one file (or document) in an ingest run. */
typedef enum {
    RAG_ING_ADDED = 0,      /* new document */
    RAG_ING_UPDATED,        /* content changed: old chunks replaced */
    RAG_ING_UNCHANGED,      /* same size+mtime, or same content (mtime updated) */
    RAG_ING_RENAMED,        /* same content under a new path: chunks kept */
    RAG_ING_REMOVED,        /* file vanished (or is now skipped/failed): chunks removed */
    RAG_ING_SKIPPED,        /* the walker skipped it (binary, too large, ...) */
    RAG_ING_FAILED,         /* extraction/chunking/embedding failed */
} rag_ingest_outcome;

const char *rag_ingest_outcome_str(rag_ingest_outcome o);   /* "added", ... */

typedef enum {
    RAG_ING_EV_START = 0,   /* walk done: files_total known */
    RAG_ING_EV_FILE_BEGIN,  /* work on `path` starts */
    RAG_ING_EV_FILE_DONE,   /* `path` finished with `outcome` (reason for skipped/failed) */
    RAG_ING_EV_END,
} rag_ingest_event_kind;

/* A progress event. Strings are borrowed, valid during the callback only. */
typedef struct {
    rag_ingest_event_kind kind;
    const char *path;           /* document URI (the file's path) */
    rag_ingest_outcome outcome; /* FILE_DONE */
    const char *reason;         /* FILE_DONE skipped/failed/removed: why; else NULL */
    int n_chunks;               /* FILE_DONE: chunks stored for this document */
    size_t files_done, files_total;  /* files the walker handed over */
    uint64_t chunks_done;       /* chunks embedded so far in this run */
    double elapsed_s;           /* since the run started */
} rag_ingest_event;

typedef void (*rag_ingest_cb)(void *user, const rag_ingest_event *ev);

typedef struct {
    llm_model *model;           /* required: tokenizer + embeddings */
    int layer;                  /* hidden state embedded: -1 = final norm (default) */
    int n_threads;              /* engine threads, 0 = all cores */
    int chunk_tokens;           /* default 256 */
    int overlap_tokens;         /* default 32 */
    uint64_t max_file_bytes;    /* default 50 MB */
    int embed_batch;            /* chunks per llm_embed_batch call, default 16 */
    int save_every;             /* FAISS saved every N changed documents, default 50 */
    bool reindex;               /* different fingerprint: drop everything, re-embed */
    rag_ingest_cb progress;     /* may be NULL */
    void *user;
    volatile int *cancel;       /* non-zero stops between documents (RAG_ERR_ARG not used) */
    /* Access rules for rag_ingest_dir (borrowed): each file's groups from its
     * path relative to the root; unchanged documents whose groups changed
     * are updated without re-embedding. NULL: every document public — refused
     * (RAG_ERR_ARG) when the index records rules for this root. */
    const struct rag_access *access;
} rag_ingest_params;

rag_ingest_params rag_ingest_default_params(void);

typedef struct {
    size_t added, updated, removed, unchanged, renamed, skipped, failed;
    size_t files_total;         /* files the walker handed over */
    uint64_t chunks_added;      /* chunks written (added + updated documents) */
    uint64_t chunks_removed;    /* chunks of removed / replaced documents */
    double seconds;             /* whole run */
    double embed_seconds;       /* inside llm_embed_batch */
    double chunk_seconds;       /* inside rag_chunk_doc (tokenizer counts) */
    double extract_seconds;     /* reading, hashing, extracting */
    double store_seconds;       /* idx_ transactions and FAISS saves */
    size_t regrouped;           /* documents whose access groups changed (no re-embedding) */
    bool cancelled;
} rag_ingest_stats;

/* A reusable ingester: model context + store + params (borrowed: the model
 * and the store must outlive it). Checks or records the embedding
 * fingerprint (model sha256, layer, "mean", n_embd): another model is
 * RAG_ERR_MISMATCH with a message telling the user to re-ingest or use
 * --reindex (p->reindex: every document is dropped and the new fingerprint
 * recorded). *out owned, free with rag_ingester_free; on failure *out is NULL
 * and err says why. */
typedef struct rag_ingester rag_ingester;
int rag_ingester_new(idx_store *s, const rag_ingest_params *p, rag_ingester **out,
                     char *err, size_t errlen);
void rag_ingester_free(rag_ingester *ing);   /* NULL is a no-op */

/* Chunks, embeds and stores one extracted document under uri, replacing any
 * document of that uri (in one transaction). size/mtime_ns/sha256 describe
 * the source. Sets *n_chunks. On failure nothing changed and err says why. */
int rag_ingester_put(rag_ingester *ing, const char *uri, const rag_doc *doc, int64_t size,
                     int64_t mtime_ns, const char *sha256, int *n_chunks, char *err, size_t errlen);

/* Where a document comes from and who may read it (rag_ingester_put_ex).
 * Strings are borrowed for the call. */
typedef struct {
    const char *uri;            /* required: path or URL, the document's key */
    const char *title;          /* NULL: doc->title */
    const char *type;           /* NULL: rag_doc_type_str(doc->type); e.g. "wiki" */
    const char *groups;         /* access groups "a,b"; NULL or "" = public */
    const char *version;        /* the source's revision (wiki revision id); NULL = "" */
    int64_t size;               /* bytes of the source */
    int64_t mtime_ns;           /* modification time (wiki: revision timestamp) */
    const char *sha256;         /* hex of the source content, or NULL */
} rag_put_meta;

/* rag_ingester_put with the whole description of the source. */
int rag_ingester_put_ex(rag_ingester *ing, const rag_put_meta *m, const rag_doc *doc, int *n_chunks,
                        char *err, size_t errlen);

/* Ingests the folder (or single file) root: see the section comment. URIs
 * are the canonical absolute paths of the files (realpath of root + '/' +
 * the walker's rel). Per-file problems are outcomes, not errors: the run
 * goes on. Returns RAG_OK when the run completed (stats filled, even with
 * skipped or failed files), or an error when nothing could be done (root
 * unreadable, fingerprint mismatch, store failure) with err filled. */
int rag_ingest_dir(idx_store *s, const char *root, const rag_ingest_params *p,
                   rag_ingest_stats *stats, char *err, size_t errlen);
/* The same with an existing ingester (the eval and tests reuse one). */
int rag_ingester_run_dir(rag_ingester *ing, const char *root, rag_ingest_stats *stats,
                         char *err, size_t errlen);

typedef enum {
    RAG_SEARCH_DENSE = 0,
    RAG_SEARCH_BM25,
    RAG_SEARCH_HYBRID,
} rag_search_mode;

const char *rag_search_mode_str(rag_search_mode m);   /* "dense", "bm25", "hybrid" */
/* Parses "dense"/"bm25"/"hybrid"; -1 when unknown. */
int rag_search_mode_parse(const char *s);

typedef struct {
    llm_model *model;           /* NULL: BM25 only */
    int layer;                  /* -1 = final norm; used only when the index has no
                                   fingerprint yet: otherwise the recorded layer is used */
    int n_threads;              /* engine threads, 0 = all cores */
    int rrf_k;                  /* default 60 */
    int overfetch;              /* hybrid fetches overfetch * k from each list, default 4 */
    /* Query embeddings from elsewhere (the remote engine): when set, queries
     * are embedded by embed(embed_user, text, len, out[embed_dim]) instead of
     * the model (which is then not used for retrieval, and the caller checks
     * that the embedding fits the index: rag_remote_check_index). */
    int (*embed)(void *user, const char *text, size_t len, float *out, int dim);
    void *embed_user;
    int embed_dim;
} rag_retriever_params;

rag_retriever_params rag_retriever_default_params(void);

typedef struct rag_retriever rag_retriever;

/* A retriever over a store (borrowed, must outlive it). With a model, the
 * index's fingerprint is checked (RAG_ERR_MISMATCH names what differs and
 * tells the user to re-ingest) and queries are embedded at the layer the
 * index records. *out owned, free with rag_retriever_free;
 * on failure *out is NULL and err says why. */
int rag_retriever_new(idx_store *s, const rag_retriever_params *p, rag_retriever **out,
                      char *err, size_t errlen);
void rag_retriever_free(rag_retriever *r);   /* NULL is a no-op */
/* Last error, borrowed; "" when none. */
const char *rag_retriever_errmsg(const rag_retriever *r);

typedef struct {
    int64_t chunk_id;
    float score;                /* dense: cosine; bm25: -bm25(); hybrid: RRF sum */
    int dense_rank, bm25_rank;  /* 1-based rank in each list, 0 = absent */
} rag_hit;

/* Searches query[0..len) and writes up to k hits (best first, ties by chunk
 * id) into hits, their number into *n_hits. Dense and hybrid need a model
 * (RAG_ERR_ARG otherwise). filter may be NULL. */
int rag_retrieve(rag_retriever *r, const char *query, size_t len, rag_search_mode mode, int k,
                 const void *filter /* const idx_filter * */, rag_hit *hits, int *n_hits);

/* Embeds a query as the index's chunks were embedded (for tests); out[n_embd]. */
int rag_retriever_embed(rag_retriever *r, const char *text, size_t len, float *out);


/* ============================================================ access control
 * (rules mapping documents to access groups; caller groups — see
 * docs/access.md). A rules file has one rule per line, first match wins:
 *   default GROUPS | path GLOB GROUPS | namespace N GROUPS |
 *   category NAME GROUPS | prefix "TITLE PREFIX" GROUPS
 * GROUPS is comma-separated; the name `public` means no groups. A rag_access
 * is read-only after loading: any number of threads may use it. */

typedef struct rag_access rag_access;

/* Loads a rules file. On failure *out is NULL and err names file:line and the
 * problem. *out owned, free with rag_access_free. */
int rag_access_load(const char *path, rag_access **out, char *err, size_t errlen);
/* The same from memory; name is used in messages. */
int rag_access_parse(const char *name, const char *text, size_t len, rag_access **out,
                     char *err, size_t errlen);
void rag_access_free(rag_access *a);            /* NULL is a no-op */
/* SHA-256 hex of the rules' source text (to notice a changed file). Borrowed. */
const char *rag_access_hash(const rag_access *a);

/* Groups of a file by its path relative to the ingest root ('/'-separated):
 * borrowed comma-separated list, "" = public. */
const char *rag_access_for_path(const rag_access *a, const char *rel);
/* Groups of a wiki page: namespace number, title without the namespace
 * prefix, and its categories (without "Category:"). Borrowed, "" = public. */
const char *rag_access_for_page(const rag_access *a, int ns, const char *title,
                                const char *const *categories, size_t n_categories);

/* Caller groups: parses "a,b" into f (an idx_filter *: groups owned by f,
 * free with rag_groups_free). "" or "public" give a filter with no groups:
 * public documents only. "*" (all documents) is RAG_ERR_ARG: pass no
 * filter instead. Names as in the rules file; RAG_ERR_FORMAT otherwise. */
int rag_groups_parse(const char *csv, void *f /* idx_filter * */);
void rag_groups_free(void *f /* idx_filter * */);   /* zeroes it; NULL is a no-op */

/* ============================================================ guardrails
 * (rules, validators, audit log — owned by the guardrails engineer)
 *
 * Rules (docs/guardrails.md) are loaded from rule files into a rag_guard,
 * compiled once with PCRE2 (UTF + UCP, JIT, match limits), then the guard is
 * read-only: any number of threads may call rag_guard_check and run streams
 * on one guard at the same time (each call has its own match data).
 * Events never carry the matched bytes, only spans and lengths. */

typedef enum {
    RAG_GUARD_INPUT = 0,     /* the user's question */
    RAG_GUARD_CONTEXT = 1,   /* one retrieved passage */
    RAG_GUARD_OUTPUT = 2,    /* the generated answer */
} rag_guard_stage;

/* Actions, weakest first: a result's action is the strongest that fired. */
typedef enum {
    RAG_GUARD_ALLOW = 0,
    RAG_GUARD_FLAG = 1,
    RAG_GUARD_REDACT = 2,
    RAG_GUARD_BLOCK = 3,
} rag_guard_action;

/* What to do with a retrieved passage that a context-stage "block" rule
 * (instruction planted in a document) fires on. Either way the matched
 * instruction never reaches the prompt. */
typedef enum {
    RAG_GUARD_QUARANTINE_DROP = 0,  /* result action BLOCK: drop the passage */
    RAG_GUARD_QUARANTINE_KEEP = 1,  /* result action REDACT, quarantined=true:
                                       each sentence holding a match is
                                       replaced by "[instruction removed]";
                                       keep the passage with a warning */
} rag_guard_quarantine;

typedef struct rag_guard rag_guard;
typedef struct rag_guard_stream rag_guard_stream;

typedef struct {
    const char *defaults_dir;     /* NULL: $MRAG_GUARDRAILS, else ./data/guardrails,
                                     else data/guardrails next to the executable
                                     (../, ../../, ../../../) */
    bool no_defaults;             /* load only rule_dirs */
    const char *const *rule_dirs; /* user rule folders (or single rule files),
                                     loaded in order after the defaults */
    size_t n_rule_dirs;
    rag_guard_quarantine quarantine;
    uint32_t match_limit;         /* PCRE2 match limit per scan (default 1000000) */
    uint32_t depth_limit;         /* PCRE2 depth limit (default 10000; interpreter only) */
    size_t stream_max_hold;       /* most bytes a stream holds back (default 2048) */
    bool limit_blocks;            /* a rule that hits a limit blocks (default: flags) */
} rag_guard_params;

typedef enum {
    RAG_GUARD_EV_MATCH = 0,       /* a rule matched (and its validator agreed) */
    RAG_GUARD_EV_LIMIT = 1,       /* a rule hit the PCRE2 match/depth limit: the
                                     text was not fully checked by that rule */
} rag_guard_event_kind;

typedef struct {
    rag_guard_event_kind kind;
    const char *rule_id;          /* borrowed from the guard, valid until rag_guard_free */
    const char *message;          /* borrowed, idem */
    rag_guard_stage stage;
    rag_guard_action action;      /* the action this event caused */
    size_t start, end;            /* byte span in the checked text (for a stream:
                                     in the whole text fed so far) */
} rag_guard_event;

typedef struct {
    rag_guard_action action;      /* strongest action of all events */
    const char *message;          /* borrowed: message of the first strongest event, or NULL */
    bool quarantined;             /* context stage: an instruction was found */
    char *text;                   /* owned: the text with redactions applied,
                                     NUL-terminated (also set when blocked: the
                                     caller must then not use it) */
    size_t text_len;
    rag_guard_event *events;      /* owned, ordered by start */
    size_t n_events;
    size_t cap_events;
} rag_guard_result;

rag_guard_params rag_guard_default_params(void);

/* Loads the default rules and the user folders of p (files *.rules in name
 * order; a later rule with an existing id replaces it) and compiles them.
 * On failure returns an error status, *out = NULL, and writes a message
 * naming the file, line and problem into err (when err_cap > 0).
 * *out is owned, free with rag_guard_free. */
int rag_guard_load(const rag_guard_params *p, rag_guard **out, char *err, size_t err_cap);

/* Builder API (rag_guard_load uses it): an empty guard, rules added from a
 * folder, a file or memory (name is used in error messages), then compiled.
 * Adding after compiling is RAG_ERR_ARG. On error rag_guard_errmsg says why. */
int rag_guard_new(const rag_guard_params *p, rag_guard **out);
int rag_guard_add_dir(rag_guard *g, const char *dir);
int rag_guard_add_file(rag_guard *g, const char *path);
int rag_guard_add_text(rag_guard *g, const char *name, const char *text, size_t len);
int rag_guard_compile(rag_guard *g);
const char *rag_guard_errmsg(const rag_guard *g);   /* borrowed; "" when none */
void rag_guard_free(rag_guard *g);                  /* NULL is a no-op */

size_t rag_guard_rule_count(const rag_guard *g);    /* enabled rules */
/* The i-th enabled rule (0-based, in load order): id, stages bitmask
 * (1 << stage), action. Returns false when i is out of range. Borrowed. */
bool rag_guard_rule_info(const rag_guard *g, size_t i, const char **id, unsigned *stages,
                         rag_guard_action *action, const char **origin);

/* Audit log: every event of every check (and of streams) is written as one
 * JSON line {"time","stage","rule","action","kind","start","len"} — never
 * the matched text. rag_guard_set_audit borrows f (NULL turns logging off);
 * rag_guard_open_audit appends to a file the guard owns. Thread-safe. */
void rag_guard_set_audit(rag_guard *g, FILE *f);
int rag_guard_open_audit(rag_guard *g, const char *path);
/* Formats one audit line (with '\n') for an event into buf; returns its
 * length, or 0 if it does not fit. */
size_t rag_guard_audit_format(const rag_guard_event *ev, char *buf, size_t cap);

/* Runs the rules of a stage over text[0..len) (any bytes; invalid UTF-8 never
 * matches a pattern). n_sources is the number of sources given to the model
 * (output stage: citations [n] with n outside 1..n_sources are removed).
 * res is overwritten (no need to initialise); release with
 * rag_guard_result_release. Returns RAG_OK (even when blocked: see
 * res->action), RAG_ERR_NOMEM or RAG_ERR_ARG. */
int rag_guard_check(const rag_guard *g, rag_guard_stage stage, const char *text, size_t len,
                    int n_sources, rag_guard_result *res);
void rag_guard_result_release(rag_guard_result *res);

/* Streaming: text arriving in pieces (the answer). Each feed returns the text
 * that is safe to show now, with redactions applied; text that could still
 * grow into a match (a PCRE2 partial match) is held back, at most
 * params.stream_max_hold bytes. Once a block rule fires the feed returns
 * RAG_ERR_BLOCKED and nothing more is emitted. *out is borrowed, valid until
 * the next call on the stream. finish flushes the rest. *s owned, free with
 * rag_guard_stream_free. Not for concurrent use (one stream per answer). */
int rag_guard_stream_new(const rag_guard *g, rag_guard_stage stage, int n_sources,
                         rag_guard_stream **s);
int rag_guard_stream_feed(rag_guard_stream *s, const char *piece, size_t len,
                          const char **out, size_t *out_len);
int rag_guard_stream_finish(rag_guard_stream *s, const char **out, size_t *out_len);
/* Events and action so far (spans in the whole stream); text is NULL.
 * Borrowed, valid until the stream is freed. */
const rag_guard_result *rag_guard_stream_result(const rag_guard_stream *s);
void rag_guard_stream_free(rag_guard_stream *s);

const char *rag_guard_stage_name(rag_guard_stage s);    /* "input", ... */
const char *rag_guard_action_name(rag_guard_action a);  /* "allow", ... */
/* Parses "input"/"context"/"output"; returns -1 when unknown. */
int rag_guard_stage_parse(const char *s);

/* Validators by name ("luhn", "iban", "steuer_id", "ipv4", "ipv6", "phone",
 * "email", "citation"): true when s[0..len) is a valid instance. Exposed for
 * tests and the rule loader. */
bool rag_guard_validate(const char *name, const char *s, size_t len);

/* ============================================================ answering
 * (prompt, query pipeline, output filter — owned by the answering engineer;
 * see docs/answering.md)
 *
 * rag_answerer_ask: input guardrails -> retrieve (hybrid, or BM25 without a
 * model) -> context guardrails per passage (quarantine) -> relevance gate
 * (no passage passes: a refusal, the model never runs) -> prompt in the
 * Mistral instruct format within n_ctx - max_tokens -> generate (streamed)
 * through the output guard stream -> answer, cited sources, events. */

/* One numbered source given to the model. Strings owned by the result. */
typedef struct {
    int number;                 /* 1-based, as in the prompt's <source id="n"> */
    int64_t chunk_id;
    char *uri;                  /* document URI (absolute path for files) */
    char *label;                /* short name in the prompt: last two path parts
                                   + ":first-last" or "#page=N" */
    char *heading;              /* heading path, "" when none */
    char *text;                 /* the passage as it went into the prompt
                                   (guard-redacted, maybe trimmed) */
    size_t text_len;
    int line_start, line_end, page;
    float score;                /* retrieval score (RRF for hybrid) */
    int dense_rank, bm25_rank;
    bool warned;                /* kept with its planted instruction removed */
    bool trimmed;               /* cut to fit the token budget */
} rag_source;

/* One earlier chat turn (borrowed strings). */
typedef struct {
    const char *question;
    const char *answer;
} rag_turn;

/* The preamble used when none is given: answer only from the sources, cite
 * [n], answer in the question's language, else say "I don't know" in it. */
const char *rag_default_preamble(void);

typedef struct {
    const char *preamble;       /* NULL: rag_default_preamble() */
    const rag_source *sources;  /* numbered 1..n in this order */
    size_t n_sources;
    const rag_turn *history;    /* earlier turns, oldest first */
    size_t n_history;
    const char *question;
    int budget_tokens;          /* most tokens the prompt may take; <= 0: no limit */
    rag_count_tokens_fn count;  /* counts the whole prompt (control tokens
                                   included); required when budget_tokens > 0 */
    void *count_user;
} rag_prompt_input;

typedef struct {
    char *prompt;               /* owned, NUL-terminated: tokenize with
                                   add_bos = false, parse_special = true */
    size_t prompt_len;
    int n_tokens;               /* by in->count, or -1 without a counter */
    size_t n_sources_used;      /* sources 1..n_sources_used are in the prompt */
    size_t n_history_used;      /* the most recent turns kept */
    bool trimmed;               /* the last used source was shortened */
    size_t trimmed_len;         /* its length in the prompt when trimmed */
} rag_prompt;

/* Builds the exact prompt: "<s>[INST] " + preamble + the sources, each as
 * <source id="n" file="label">text</source> inside <sources>…</sources>,
 * + "Question: …" + " [/INST]", with earlier turns before it in the chat
 * template. Control strings ([INST], [/INST], <s>, </s>) and <source>/
 * </source> tags inside sources, history and question are defused. To fit
 * budget_tokens, oldest turns go first, then the last source is shortened
 * (at a word boundary) or dropped, repeatedly. RAG_ERR_LIMIT when even the
 * question alone does not fit. *out is filled (free with rag_prompt_release)
 * or zeroed on error with err set. */
int rag_prompt_build(const rag_prompt_input *in, rag_prompt *out, char *err, size_t errlen);
void rag_prompt_release(rag_prompt *p);
/* text[0..len) with the control strings defused as rag_prompt_build does for
 * untrusted text (for callers that build chat prompts themselves, e.g. plain
 * chat over HTTP). Owned, free(); NULL on OOM. */
char *rag_prompt_defuse(const char *text, size_t len);

/* Text sink for the streamed answer: return non-zero to stop. */
typedef int (*rag_emit_fn)(void *user, const char *text, size_t len);
/* A generator standing in for the model (tests, other engines): produce the
 * answer to prompt through emit, stop when emit returns non-zero or *cancel
 * becomes non-zero. Returns RAG_OK or an error. */
typedef int (*rag_generate_fn)(void *user, const char *prompt, size_t len, int max_tokens,
                               rag_emit_fn emit, void *emit_user, volatile int *cancel);

typedef struct {
    idx_store *store;           /* required, borrowed */
    rag_guard *guard;           /* required, borrowed (audit log set by the caller) */
    llm_model *model;           /* borrowed: retrieval (hybrid), token counts and
                                   generation; NULL: BM25 retrieval, and count /
                                   generate must be given */
    int layer;                  /* embedding layer of the index (-1 final norm) */
    int k;                      /* passages retrieved, default 5 */
    int n_threads;              /* 0 = all cores */
    int n_ctx;                  /* 0: min(model's n_ctx_train, 4096) (4096 without a model) */
    int max_tokens;             /* answer budget, default 512; prompt gets n_ctx - max_tokens */
    float temperature;          /* default 0: greedy */
    uint64_t seed;
    int min_overlap;            /* relevance gate: content words of the question a
                                   passage must contain, default 1 (0 = gate off) */
    const char *preamble;       /* NULL: default; borrowed */
    rag_count_tokens_fn count;  /* NULL: the model's tokenizer (special tokens parsed) */
    void *count_user;
    rag_generate_fn generate;   /* NULL: llm_generate on the model */
    void *generate_user;
    /* the generator's last error (borrowed), for the answerer's message; may be NULL */
    const char *(*generate_errmsg)(void *generate_user);
    /* query embeddings from elsewhere, as in rag_retriever_params (hybrid
     * retrieval without a model) */
    int (*embed)(void *user, const char *text, size_t len, float *out, int dim);
    void *embed_user;
    int embed_dim;
} rag_answer_params;

rag_answer_params rag_answer_default_params(void);

typedef enum {
    RAG_ANS_ANSWERED = 0,       /* the model ran (its text may be "I don't know") */
    RAG_ANS_NO_SOURCES,         /* no passage passed: refusal text, model not run */
    RAG_ANS_BLOCKED,            /* a guardrail blocked the question or the answer */
    RAG_ANS_CANCELLED,          /* the cancel flag or the sink stopped the answer */
} rag_answer_status;

const char *rag_answer_status_str(rag_answer_status s);  /* "answered", ... */

/* A guardrail event of one stage of the pipeline. */
typedef struct {
    rag_guard_stage stage;
    rag_guard_event_kind kind;
    rag_guard_action action;
    const char *rule_id;        /* borrowed from the guard */
    const char *message;        /* borrowed from the guard */
    int64_t chunk_id;           /* context stage: the passage, else 0 */
    size_t start, end;          /* byte span in the checked text (question,
                                   passage or answer), as in rag_guard_event */
} rag_answer_event;

typedef struct {
    rag_answer_status status;
    char *question;             /* owned: the question after input redaction (what
                                   was searched and prompted; keep this one in a
                                   conversation), NULL when blocked */
    char *answer;               /* owned: the answer after the output guard, or
                                   the refusal / block message */
    size_t answer_len;
    const char *block_message;  /* borrowed from the guard when blocked */
    rag_guard_stage block_stage;
    rag_source *sources;        /* owned: the sources given to the model */
    size_t n_sources;
    int *cited;                 /* owned: source numbers the answer cites, ascending */
    size_t n_cited;
    rag_answer_event *events;   /* owned */
    size_t n_events;
    size_t n_retrieved;         /* hits before the guard and the gate */
    size_t n_quarantined;       /* passages dropped for planted instructions */
    size_t n_below_threshold;   /* passages the relevance gate dropped */
    char *prompt;               /* owned: the exact prompt (NULL when not built) */
    int prompt_tokens;
    double retrieve_ms, prefill_ms, decode_ms;
    int n_generated;            /* tokens; with p->generate: pieces it streamed */
} rag_answer;

typedef struct rag_answerer rag_answerer;

/* *out owned (free with rag_answerer_free); on failure NULL and err says why. */
int rag_answerer_new(const rag_answer_params *p, rag_answerer **out, char *err, size_t errlen);
void rag_answerer_free(rag_answerer *a);     /* NULL is a no-op */
const char *rag_answerer_errmsg(const rag_answerer *a);  /* borrowed */
/* Times the generator ran (the model or p->generate): refusals do not count. */
int rag_answerer_generations(const rag_answerer *a);
/* The caller's access groups for every later retrieval of this answerer
 * (copied): documents with groups are seen only when they share one of
 * groups[0..n); public documents always. all = true: no filter (the index
 * owner; the default). n = 0 and all = false: public documents only.
 * RAG_ERR_ARG for more than 64 groups or a NULL name. */
int rag_answerer_set_groups(rag_answerer *a, const char *const *groups, size_t n, bool all);
/* Passages retrieved by later asks (1..1000; the server's per-request k).
 * RAG_ERR_ARG outside that range. */
int rag_answerer_set_k(rag_answerer *a, int k);

/* Answers question (with earlier turns: the previous question is folded into
 * the search query and the turns go into the prompt within budget). The
 * answer streams through emit (may be NULL) after the output guard. *res is
 * overwritten; release with rag_answer_release. Returns RAG_OK whatever the
 * status (see res->status), or an error (retrieval, model) with the
 * answerer's errmsg set. */
int rag_answerer_ask(rag_answerer *a, const char *question, const rag_turn *history,
                     size_t n_history, rag_emit_fn emit, void *emit_user,
                     volatile int *cancel, rag_answer *res);
void rag_answer_release(rag_answer *res);

/* Content words of text (>= 3 bytes, not in the EN/DE/FR function-word list)
 * that occur in passage (ASCII case-insensitive, as a word prefix). */
int rag_answer_overlap(const char *question, const char *passage, size_t passage_len);
/* "en", "de" or "fr" by function words (default "en"). */
const char *rag_guess_language(const char *text);
/* The refusal when no source passes, in the language of the question. */
const char *rag_no_sources_message(const char *question);
/* Source numbers 1..n_sources cited as [n] (also [n, m] / [n][m]) in text:
 * writes up to cap ascending unique numbers to out, returns how many. */
size_t rag_answer_citations(const char *text, size_t len, int n_sources, int *out, size_t cap);

/* ============================================================ wiki connector
 * (MediaWiki over the Action API — owned by the wiki engineer; see
 * docs/wiki.md)
 *
 * rag_wiki_sync mirrors the pages of the chosen namespaces of one wiki into
 * the index: uri = the page's URL, title, type "wiki", version = revision
 * id, groups from the access rules. Incremental by default (recentchanges +
 * logevents since the sync point kept in the index meta); a full sync when
 * asked, when there is no sync point, or when the wiki may have forgotten
 * changes since then. Each page is one transaction; the sync point advances
 * only at the end of a complete run, so a run that dies leaves a consistent
 * index and the next run finishes the work. */

typedef struct {
    const char *url;            /* api.php URL; another URL gets "/api.php" appended */
    const int *namespaces;      /* namespace numbers; NULL/0: {0} */
    size_t n_namespaces;
    const char *username;       /* bot password user ("Admin@mrag"); NULL: anonymous */
    const char *password;
    const char *ca_file;        /* CA bundle used instead of the system's (a private CA);
                                   TLS is always verified */
    const rag_access *access;   /* NULL: every page public */
    bool full;                  /* enumerate everything, remove what is gone */
    double rate;                /* requests per second, default 10 (<= 0 unlimited) */
    int timeout_ms;             /* per request, default 60000 */
    int connect_timeout_ms;     /* default 10000 */
    int max_attempts;           /* tries per request, default 5 */
    int backoff_ms;             /* first retry wait, default 500 (doubles, jittered) */
    int max_backoff_ms;         /* default 30000 */
    size_t max_response_bytes;  /* largest API answer, default 32 MB */
    size_t max_pages;           /* test hook: stop after this many page writes (0 = no limit) */
    rag_ingest_cb progress;     /* events: path = page URL; outcome added/updated/
                                   renamed (moved)/removed/unchanged/failed */
    void *user;
    volatile int *cancel;       /* non-zero stops between pages */
} rag_wiki_params;

rag_wiki_params rag_wiki_default_params(void);

typedef struct {
    size_t added, updated, moved, removed, unchanged, failed;
    size_t regrouped;           /* unchanged pages whose access groups changed */
    size_t pages_checked;       /* pages looked at */
    size_t requests, retries;   /* HTTP requests (attempts) and retries */
    size_t relogins;            /* logins repeated because the session ended */
    uint64_t chunks_added;
    double seconds;
    bool full;                  /* this run was a full sync */
    char full_reason[128];      /* why ("--full", "first sync", ...) */
    bool cancelled;             /* cancel flag or max_pages: sync point not advanced */
    bool rules_missing;         /* no access rules given, but earlier runs had some:
                                   pages kept their groups, new pages are public */
} rag_wiki_stats;

/* Syncs one wiki into the store through ing (which must write to s). The
 * meta keys "wiki:<api url>:..." hold the sync point. Per-page problems are
 * outcomes (the page is retried next run), not errors. Returns RAG_OK when
 * the run completed or was cancelled (stats filled), else an error with err
 * naming the wiki and the problem: RAG_ERR_ARG (bad URL, wrong password:
 * MediaWiki's reason), RAG_ERR_IO (network after retries, read denied,
 * store failure), RAG_ERR_FORMAT, RAG_ERR_LIMIT. */
int rag_wiki_sync(rag_ingester *ing, idx_store *s, const rag_wiki_params *p, rag_wiki_stats *stats,
                  char *err, size_t errlen);

/* ============================================================ remote engine
 * (generation and query embeddings on an OpenAI-compatible server over
 * libcurl — owned by the access/remote engineer; see docs/remote.md)
 *
 * BASE is the server's base URL ending in /v1 (vLLM, TGI, Mistral's API, or
 * `mrag serve`). Generation: POST BASE/chat/completions with "stream":true,
 * the SSE stream parsed as it arrives (bounded lines, heartbeat comments,
 * error objects, `data: [DONE]`), text handed to emit as it comes. The
 * prompt of rag_prompt_build is turned back into chat messages (never sent
 * raw). Retries only before the first token; the cancel flag aborts the
 * transfer. The API key is read from a file and sent as a Bearer token; it
 * never appears in messages. One rag_remote serves one request at a time
 * (make one per thread). */

typedef struct rag_remote rag_remote;

typedef struct {
    const char *base_url;       /* required: "http://host:port/v1" */
    const char *key_file;       /* API key file (first line); NULL: no key */
    const char *model;          /* "model" of requests; NULL: the first id of GET BASE/models */
    const char *ca_file;        /* extra CA bundle for https; TLS is always verified */
    float temperature;          /* default 0 (greedy) */
    uint64_t seed;              /* default 42 */
    int connect_timeout_ms;     /* default 10000 */
    int first_token_timeout_ms; /* request sent to first streamed text, default 300000 */
    int idle_timeout_ms;        /* longest silence after the first token, default 60000 */
    int max_attempts;           /* tries before the first token, default 3 */
    int backoff_ms;             /* first retry wait (doubles; Retry-After wins, at most 30 s), default 500 */
    size_t max_line_bytes;      /* longest SSE line / event, default 1 MB */
    bool probe;                 /* GET BASE/models at rag_remote_new (default true):
                                   model id, and `mrag serve`'s sha256/n_embd */
} rag_remote_params;

rag_remote_params rag_remote_default_params(void);

/* Reads the key file, checks the URL, probes BASE/models (p->probe). *out
 * owned (free with rag_remote_free); on failure NULL and err says why. */
int rag_remote_new(const rag_remote_params *p, rag_remote **out, char *err, size_t errlen);
void rag_remote_free(rag_remote *r);                 /* NULL is a no-op */
#define RAG_REMOTE_MAX_STOP 8
/* Sampling of the following rag_remote_generate calls: temperature, seed and
 * up to RAG_REMOTE_MAX_STOP stop strings sent as "stop" (copied; n_stop 0 =
 * none). For a server that hands one rag_remote per slot to successive
 * requests. RAG_ERR_ARG for too many or empty stops, RAG_ERR_NOMEM. */
int rag_remote_set_sampling(rag_remote *r, float temperature, uint64_t seed, const char *const *stop,
                            size_t n_stop);
const char *rag_remote_errmsg(const rag_remote *r); /* borrowed, "" when none */
const char *rag_remote_model(const rag_remote *r);  /* the model id used, borrowed */

/* A rag_generate_fn (user = rag_remote *): streams the answer to prompt (a
 * rag_prompt_build / llm_chat_format prompt) through emit. RAG_OK also when
 * emit or *cancel stopped it; else RAG_ERR_IO (network, HTTP status, stream
 * cut or malformed: errmsg names the status and the server's message). */
int rag_remote_generate(void *user, const char *prompt, size_t len, int max_tokens,
                        rag_emit_fn emit, void *emit_user, volatile int *cancel);
/* For rag_answer_params.generate_errmsg (user = rag_remote *). */
const char *rag_remote_generate_errmsg(void *user);

/* Embeds text through POST BASE/embeddings into out[dim] (L2-normalised);
 * RAG_ERR_MISMATCH when the server's vector has another length. Usable as
 * rag_retriever_params.embed (user = rag_remote *). */
int rag_remote_embed(void *user, const char *text, size_t len, float *out, int dim);
/* Checks that the server's embedding fits the index s: its dimension (one
 * probe request), the final-layer pooling, and, when the server reports a
 * sha256 in its /v1/models "mrag" object, the model the index was built
 * with. RAG_ERR_MISMATCH (or RAG_ERR_IO) with errmsg saying what differs;
 * *dim = the index dimension on success. */
int rag_remote_check_index(rag_remote *r, idx_store *s, int *dim);

/* One chat message of a split prompt (owned strings). */
typedef struct {
    char *role;                 /* "user" or "assistant" */
    char *content;
} rag_chat_msg;

/* Turns a Mistral-format prompt ("<s>[INST] u [/INST] a</s>[INST] u2 [/INST]")
 * back into messages: the exact inverse of llm_chat_format for alternating
 * user/assistant turns. The prompt builder defuses control strings inside
 * sources, history and question, so the split is unambiguous (a preamble
 * holding them is the operator's doing: RAG_ERR_FORMAT). *msgs owned, free
 * with rag_chat_msgs_free. */
int rag_prompt_to_messages(const char *prompt, size_t len, rag_chat_msg **msgs, size_t *n,
                           char *err, size_t errlen);
void rag_chat_msgs_free(rag_chat_msg *msgs, size_t n);

/* The SSE parser alone, for tests and fuzzing: data[0..len) fed in pieces
 * of `piece` bytes (0 = all at once), lines bounded by max_line (0 = 1 MB);
 * content deltas go to emit. RAG_OK at [DONE] or at the end of the bytes;
 * else the stream's error (RAG_ERR_FORMAT malformed, RAG_ERR_IO an error
 * object, RAG_ERR_LIMIT a long line) with err set. */
int rag_remote_parse_sse(const char *data, size_t len, size_t piece, size_t max_line, rag_emit_fn emit,
                         void *emit_user, char *err, size_t errlen);

/* Token estimate without a tokenizer (user ignored): letters and blanks at
 * 2.5 bytes a token, digits and punctuation one each, other bytes 2/3; an
 * overestimate of Mistral's tokenizer on prose and code (docs/remote.md). */
int rag_count_estimate(void *user, const char *text, size_t len);

#endif
