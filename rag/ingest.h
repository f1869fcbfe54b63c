/* ingest.h — ingestion: which files (rag_walk), their text (rag_extract_*),
 * token-sized chunks (rag_chunk_doc), and the pipeline that embeds and
 * stores them (rag_ingester, rag_ingest_dir). See docs/ingestion.md.
 *
 *   rag_ingest_dir: walk -> skip unchanged (size+mtime, then sha256) ->
 *   extract -> chunk (model tokenizer) -> embed in batches -> one
 *   transaction per document in an idx_store; vanished files removed,
 *   renamed files renamed. Progress and per-file outcomes go through a
 *   callback. Everything here is deterministic and never prints. */
#ifndef MRAG_RAG_INGEST_H
#define MRAG_RAG_INGEST_H

#include "rag/base.h"
#include "rag/remote.h"

struct rag_access;

/* Document types the extractors understand. */
typedef enum {
    RAG_DOC_UNKNOWN = 0,
    RAG_DOC_TXT,
    RAG_DOC_MD,
    RAG_DOC_HTML,
    RAG_DOC_PDF,
    RAG_DOC_DOCX,               /* Word (Office Open XML) */
    RAG_DOC_XLSX,               /* Excel */
    RAG_DOC_PPTX,               /* PowerPoint */
    RAG_DOC_ODT,                /* OpenDocument text */
    RAG_DOC_ODS,                /* OpenDocument spreadsheet */
    RAG_DOC_ODP,                /* OpenDocument presentation */
    RAG_DOC_EPUB,
    RAG_DOC_EML,                /* one e-mail message (RFC 5322 / MIME) */
    RAG_DOC_MBOX,               /* a mailbox: messages after "From " lines */
} rag_doc_type;

const char *rag_doc_type_str(rag_doc_type t);      /* "txt", "md", ... */
/* The type for a file name by its extension (case-insensitive), or
 * RAG_DOC_UNKNOWN. */
rag_doc_type rag_doc_type_from_path(const char *path);

/* What the citation fields of a document type's blocks and chunks mean
 * (page and line_start/line_end), docs/ingestion.md "Citations":
 *   pdf: page; docx, odt: paragraphs; pptx, odp: slide; xlsx, ods: sheet
 *   (page) and rows (lines); epub: chapter; txt, md, html: lines;
 *   eml, mbox: message of the mbox (page) and attachment (line_start).
 * Writes the citation's tail into buf: "#page=3", ":4-9", "#para=12-14",
 * "#slide=2", "#sheet=1,rows=5-9", "#chapter=4", "#msg=3", "#msg=3,att=1",
 * "#att=2", or "" (nothing known).
 * type is rag_doc_type_str's name (as the index stores it). */
void rag_cite_tail(const char *type, int page, int line_start, int line_end, char *buf, size_t n);

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
    RAG_SKIP_LINK,              /* a symlink to a path inside the root: never followed,
                                   the target is taken at its own path (detail) */
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
    uint64_t dev, ino;          /* of the file the walk opened (0 when not opened) */
    char *same_as;              /* RAG_SKIP_DUPLICATE: rel of the entry that holds the
                                   file (a hard link), or NULL */
} rag_walk_entry;

typedef struct {
    rag_walk_entry *entries;    /* sorted by rel (byte order): the walk order */
    size_t n;
    size_t n_files;             /* entries with skip == RAG_SKIP_NONE */
    char *root;                 /* the root's canonical path (realpath) */
    uint64_t root_dev, root_ino;
    bool root_is_file;
} rag_walk_result;

/* Walks root recursively (root may also be a single file). Symlinks are
 * never followed: a link to a file or folder inside the root is listed as
 * RAG_SKIP_LINK (the target is walked at its own path, so a file has one
 * path and the access rules of that path), a link out of the root as
 * RAG_SKIP_SYMLINK_OUTSIDE. Folders are opened relative to their parent's
 * descriptor with O_NOFOLLOW, so a folder swapped for a link during the walk
 * is not entered; folders are visited once by (dev, inode). A file with
 * several names (hard links) is listed once; its other names are
 * RAG_SKIP_DUPLICATE with same_as naming the kept entry. Files without an
 * extension are sniffed: text becomes RAG_DOC_TXT, the rest
 * RAG_SKIP_BINARY; .txt/.md/.html files that hold NUL bytes are
 * RAG_SKIP_BINARY too (UTF-16 with a BOM excepted). Problems below the root
 * become entries with a reason and the walk goes on; only an unreadable
 * root, a bad argument or max_entries fail the call. On success *out is
 * filled (free with rag_walk_result_free); on failure it is empty and err
 * names the path and the problem. */
int rag_walk(const char *root, const rag_walk_params *p, rag_walk_result *out,
             char *err, size_t errlen);
void rag_walk_result_free(rag_walk_result *r);

/* Opens the file of walk entry e (of result r) for reading without
 * following any symlink: the root's folder is checked against the walk's
 * (dev, inode), each folder of e->rel is opened relative to its parent with
 * O_NOFOLLOW, and the file must be the regular file (dev, inode) the walk
 * saw. Sets *fd (close it). RAG_ERR_CHANGED when a path component became a
 * link or another file since the walk (err says which), RAG_ERR_IO when it
 * cannot be opened (err holds the system's reason). */
int rag_walk_open(const rag_walk_result *r, const rag_walk_entry *e, int *fd, char *err, size_t errlen);

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
    uint32_t n_pages;           /* PDF; slides, sheets, chapters of office files */
    uint32_t n_pages_no_text;   /* PDF pages without a text layer that were not
                                   OCR'd (scans, without rag_extract_params.ocr) */
    uint32_t n_pages_ocr;       /* PDF pages read by OCR */
} rag_doc;

/* The per-file budget every extractor runs under (docs/ingestion.md,
 * "Budgets"): over it the file is refused with RAG_ERR_LIMIT and a reason
 * naming the budget, and the run goes on with the next file. */
typedef struct {
    double cpu_seconds;         /* CPU time of the extracting thread, default 60; 0 = none */
    double max_text_ratio;      /* text bytes per byte of the file, default 32; 0 = none */
    size_t ratio_floor_bytes;   /* the ratio applies past this much text, default 4 MB */
} rag_budget_params;

rag_budget_params rag_budget_default_params(void);

typedef struct {
    size_t max_text_bytes;      /* extracted text limit, default 64 MB: RAG_ERR_LIMIT */
    int max_depth;              /* HTML element nesting, default 256: RAG_ERR_LIMIT */
    uint32_t max_pages;         /* PDF, default 5000 */
    size_t max_blocks;          /* default 4,000,000 */
    rag_budget_params budget;   /* CPU time and text per file */
    int max_attributes;         /* HTML attributes on one element, default 512 (libxml2
                                   compares each with all before it: quadratic) */
    size_t max_stream_bytes;    /* PDF: a compressed stream (other than images, fonts,
                                   attachments) may inflate to this, default 16 MB */
    size_t max_repeated_page_bytes; /* PDF: text of pages that repeat an earlier
                                   page's text, default 1 MB (0 = no limit) */
    bool ocr;                   /* PDF pages without a text layer go through
                                   Tesseract (default false: counted in
                                   rag_doc.n_pages_no_text) */
    const char *ocr_langs;      /* Tesseract languages, NULL = "deu+eng" */
    double ocr_page_seconds;    /* CPU time added to the file's budget per OCR'd
                                   page, default 30 */
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
    RAG_ING_EV_FILE_DONE,   /* `path` finished with `outcome` (reason for skipped/failed;
                               for added/updated a warning, e.g. pages without text) */
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
    llm_model *model;           /* tokenizer + embeddings; with remote: the tokenizer
                                   only, and may be NULL (chunks sized by
                                   rag_count_estimate) */
    /* Remote embeddings (docs/remote.md): chunks embedded through an
     * OpenAI-compatible POST BASE/embeddings instead of model, embed_batch
     * chunks of one document per request, embed_parallel requests in
     * flight, at most 2 x embed_parallel batches outstanding (a slow server
     * slows the walk). A document is stored once all its chunks have
     * vectors; a failure that is not one input's fault (network, server
     * down after the retries, cancel) ends the run with RAG_ERR_IO after
     * the documents complete so far are stored: a rerun goes on from
     * there. The fingerprint records the served model's sha256 when the
     * server reports one (`mrag serve`), else a hash of its name. NULL:
     * local embeddings. */
    const rag_remote_params *remote;
    int embed_parallel;         /* requests in flight, default 4 */
    int layer;                  /* hidden state embedded: -1 = final norm (default) */
    int n_threads;              /* engine threads, 0 = all cores */
    int chunk_tokens;           /* default 256 */
    int overlap_tokens;         /* default 32 */
    uint64_t max_file_bytes;    /* default 50 MB */
    rag_budget_params budget;   /* per-file extraction budget (CPU time, text) */
    bool ocr;                   /* OCR PDF pages without a text layer */
    const char *ocr_langs;      /* NULL = "deu+eng" */
    int embed_batch;            /* chunks per llm_embed_batch call (remote: per request), default 16 */
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
    double embed_seconds;       /* inside llm_embed_batch (remote: waiting for the server) */
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

#endif
