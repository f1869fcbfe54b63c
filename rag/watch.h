/* watch.h — following a folder as it changes (inotify), for `mrag ingest
 * --watch`. The watcher only says *that* and roughly *what* changed, in
 * debounced batches; the caller applies a batch with the incremental
 * ingest (rag_ingester_run_dir), which compares every file with the index
 * (size and mtime, then content hash), so a batch is applied with exactly
 * the guarantees of a full run — also when the kernel's event queue
 * overflowed and the events themselves are lost. docs/ingestion.md,
 * "Watch mode". Linux only; never prints. */
#ifndef MRAG_RAG_WATCH_H
#define MRAG_RAG_WATCH_H

#include "rag/base.h"

typedef struct rag_watch rag_watch;

typedef struct {
    int debounce_ms;            /* a batch ends after this much quiet, default 500 */
    int max_delay_ms;           /* ... or this long after its first event, default 5000 */
} rag_watch_params;

rag_watch_params rag_watch_default_params(void);

/* What one batch saw (counts of inotify events by kind). */
typedef struct {
    size_t created, modified, moved, deleted;
    size_t events;              /* all events of the batch */
    bool overflow;              /* the kernel's queue overflowed: events were
                                   lost, the caller must rescan everything */
    bool root_gone;             /* the root folder was deleted or moved away */
    char first_path[512];       /* a path of the batch relative to the root, for messages */
} rag_watch_batch;

/* Watches root and every folder below it (hidden folders and symlinks are
 * not followed, like the walk). *out owned (rag_watch_close). Fails with
 * err when inotify is unavailable or the root is not a folder; a folder
 * that cannot be watched (the user's watch limit) is reported by
 * rag_watch_unwatched. */
int rag_watch_open(const char *root, const rag_watch_params *p, rag_watch **out, char *err, size_t errlen);
void rag_watch_close(rag_watch *w);     /* NULL is a no-op */

/* Waits for the next batch: returns RAG_OK with *b filled once events came
 * and debounce_ms passed without more (or max_delay_ms since the first);
 * RAG_ERR_NOTFOUND when timeout_ms (-1 = forever) passed without any
 * event, or *cancel became non-zero (checked every 100 ms); RAG_ERR_IO on
 * a read error. Folders created inside the tree are watched as their
 * events arrive. */
int rag_watch_next(rag_watch *w, int timeout_ms, volatile int *cancel, rag_watch_batch *b, char *err,
                   size_t errlen);

/* Re-adds watches for every folder of the tree (after an overflow, when
 * folder events may have been lost). Returns the number of folders
 * watched. */
size_t rag_watch_resync(rag_watch *w);

/* Folders the kernel refused to watch (ENOSPC: raise
 * fs.inotify.max_user_watches), 0 normally. */
size_t rag_watch_unwatched(const rag_watch *w);

#endif
