/* cmd_ingest.c — `mrag ingest`: index a folder, with a progress bar on a
 * terminal, plain lines otherwise, and a summary with every skip reason. */
#include "app/app.h"

#include "index/index.h"
#include "llm/llm.h"
#include "rag/rag.h"

#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <errno.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static const char *ingest_usage =
    "usage: mrag ingest DIR [options]\n"
    "\n"
    "Indexes the documents under DIR (txt, md, html, pdf, docx, xlsx, pptx,\n"
    "odt, ods, odp, epub, eml, mbox): extracts, chunks, embeds and stores\n"
    "them (mail attachments too). Runs are incremental: unchanged files are\n"
    "skipped, changed files replaced, vanished files removed, renamed files\n"
    "renamed.\n"
    "An interrupted or killed run loses at most the file in flight; run again\n"
    "to finish.\n"
    "\n"
    "  --index DIR         index folder (default $MRAG_INDEX, else ./.mrag)\n"
    "  -m FILE             the model (default $MRAG_MODEL)\n"
    "  --threads N         engine threads (default: all cores)\n"
    "  --chunk-tokens N    tokens per chunk (default 256)\n"
    "  --overlap N         tokens shared by consecutive chunks (default 32)\n"
    "  --max-file-mb N     skip larger files (default 50)\n"
    "  --max-file-seconds S  CPU time one file may take to extract; over it the\n"
    "                      file fails with the reason and the run goes on\n"
    "                      (default 60, 0 = no limit)\n"
    "  --max-text-ratio R  a file's text may be R times its size (past 4 MB of\n"
    "                      text; default 32, 0 = no limit): stops PDFs whose\n"
    "                      pages repeat one stream\n"
    "  --layer L           embed the hidden state after layer L (default: final norm);\n"
    "                      auto: ingest at the final norm, then compare a quarter,\n"
    "                      half and three quarters of the layers on pseudo-queries\n"
    "                      and re-embed at the best (see `mrag tune --layer auto`)\n"
    "  --lora FILE[:S]     embed with a LoRA adapter applied (scale S, default 1;\n"
    "                      repeatable); the index records it in its fingerprint, so\n"
    "                      ask, chat, serve and search need the same --lora\n"
    "  --faiss SPEC        FAISS index type: auto (default for a new index: Flat up to\n"
    "                      256 MiB of vectors, then IVF<n>,SQ8 re-ranked exactly), Flat,\n"
    "                      SQ8, SQfp16, IVF4096,SQ8, OPQ64,IVF4096,PQ64, HNSW32,SQ8 ...\n"
    "  --batch N           chunks per embedding batch (default 16)\n"
    "  --llm-url BASE --llm-embeddings\n"
    "                      embed through an OpenAI-compatible server's\n"
    "                      BASE/embeddings (vLLM, llama-server, mrag serve) instead\n"
    "                      of a local model; -m then only counts tokens for the\n"
    "                      chunk sizes (without it: an estimate, smaller chunks)\n"
    "  --llm-key-file F    the server's API key (first line of F)\n"
    "  --llm-model NAME    the model to ask for (default: the first it lists)\n"
    "  --embed-batch N     chunks per request to the server (default 16)\n"
    "  --embed-parallel N  requests in flight (default 4)\n"
    "  --save-every N      save the FAISS file every N changed documents (default 50)\n"
    "  --reindex           the index was built with another model: drop it and rebuild\n"
    "  --access FILE       access rules: each document's groups from its path below\n"
    "                      DIR (docs/access.md); a re-run with changed rules updates\n"
    "                      the groups without re-embedding\n"
    "  --ocr               read PDF pages without a text layer (scans) with\n"
    "                      Tesseract; without it such pages are reported as\n"
    "                      \"no text layer\" (each OCR'd page adds 30 s to the\n"
    "                      file's CPU budget)\n"
    "  --ocr-lang L        Tesseract languages (default $MRAG_OCR_LANG, else\n"
    "                      deu+eng)\n"
    "  --watch             after the run, keep watching DIR (inotify) and apply\n"
    "                      creates, edits, renames and deletes as they happen:\n"
    "                      each debounced batch is an incremental run over DIR,\n"
    "                      as exact as a full one (a full rescan after the\n"
    "                      kernel's event queue overflows); Ctrl-C stops\n"
    "  --debounce MS       quiet time that ends a batch (default 500)\n"
    "  -q, --quiet         only the summary and the failures that are new since\n"
    "                      the last run (quiet in a timer's journal)\n"
    "\n"
    "Exit status: 0 when the run completed (even with skipped or failed files),\n"
    "1 when nothing could be done, 2 on usage errors, 130 when interrupted.\n";

const char *app_index_path(const char *flag_value) {
    if (flag_value && *flag_value) return flag_value;
    const char *env = getenv("MRAG_INDEX");
    return env && *env ? env : "./.mrag";
}

const char *app_display_path(const char *uri) {
    static char cwd[PATH_MAX];
    static int have = -1;
    if (have < 0) have = getcwd(cwd, sizeof cwd) != NULL;
    if (!have || !uri) return uri;
    size_t n = strlen(cwd);
    if (n > 1 && strncmp(uri, cwd, n) == 0 && uri[n] == '/') return uri + n + 1;
    return uri;
}

static volatile int g_cancel;
static void on_sigint(int sig) {
    (void)sig;
    g_cancel = 1;
}

/* One skipped/failed/removed file for the summary. */
typedef struct {
    rag_ingest_outcome o;
    char *path;
    char *reason;
} note;

typedef struct {
    bool tty, quiet;
    bool bar_shown;
    double last_draw, last_line;
    char current[1024];     /* the file being worked on (or the last one) */
    note *notes;
    size_t n_notes, cap_notes;
    size_t n_failed_now;
    int cols;
} ui;

static void clear_bar(ui *u) {
    if (u->bar_shown) fputs("\r\033[K", stderr);
    u->bar_shown = false;
}

static void fmt_eta(double s, char *buf, size_t n) {
    if (s < 0 || s > 360000) { snprintf(buf, n, "--:--"); return; }
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%d:%02d", t / 60, t % 60);
}

/* Redraws the one-line bar: [####....] done/total  file  chunks/s  ETA. */
static void draw_bar(ui *u, const rag_ingest_event *ev) {
    char eta[32];
    double rate = ev->elapsed_s > 0 ? (double)ev->chunks_done / ev->elapsed_s : 0;
    double per_file = ev->files_done ? ev->elapsed_s / (double)ev->files_done : -1;
    fmt_eta(per_file < 0 ? -1 : per_file * (double)(ev->files_total - ev->files_done), eta, sizeof eta);
    int width = 20;
    int fill = ev->files_total ? (int)((double)width * (double)ev->files_done / (double)ev->files_total) : 0;
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    const char *cur = app_esc(app_display_path(u->current));
    char line[512];
    int n = snprintf(line, sizeof line, "[%s] %zu/%zu  %.1f chunks/s  ETA %s  ", bar, ev->files_done,
                     ev->files_total, rate, eta);
    if (n < 0) return;
    int room = u->cols - n - 1;
    size_t cl = strlen(cur);
    fprintf(stderr, "\r\033[K%s", line);
    if (room > 4) {
        if ((int)cl <= room) fputs(cur, stderr);
        else fprintf(stderr, "...%s", cur + cl - (size_t)(room - 3));
    }
    fflush(stderr);
    u->bar_shown = true;
}

/* The reason of an outcome without the file's path repeated in front
 * ("/abs/docs/x.pdf: not a PDF" -> "not a PDF"). */
static const char *bare_reason(const char *path, const char *reason) {
    if (!reason) return NULL;
    const char *forms[2] = {path, app_display_path(path)};
    for (int i = 0; i < 2; i++) {
        size_t n = forms[i] ? strlen(forms[i]) : 0;
        if (n && strncmp(reason, forms[i], n) == 0 && reason[n] == ':' && reason[n + 1] == ' ') return reason + n + 2;
    }
    return reason;
}

/* What an added or updated file without a single chunk lacks. */
static const char *no_text_reason(const char *path) {
    size_t n = path ? strlen(path) : 0;
    if (n > 4 && strcasecmp(path + n - 4, ".pdf") == 0) return "no text layer (scanned?)";
    return "no text";
}

static void add_note(ui *u, rag_ingest_outcome o, const char *path, const char *reason) {
    if (u->n_notes == u->cap_notes) {
        size_t nc = u->cap_notes ? u->cap_notes * 2 : 32;
        note *nn = realloc(u->notes, nc * sizeof *nn);
        if (!nn) return;
        u->notes = nn;
        u->cap_notes = nc;
    }
    note *x = &u->notes[u->n_notes];
    x->o = o;
    x->path = strdup(path ? path : "");
    x->reason = strdup(reason ? bare_reason(path, reason) : "");
    if (x->path && x->reason) u->n_notes++;
    else { free(x->path); free(x->reason); }
}

static void on_progress(void *user, const rag_ingest_event *ev) {
    ui *u = user;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    switch (ev->kind) {
    case RAG_ING_EV_START:
        u->last_line = now;
        if (!u->quiet && !u->tty) printf("%zu file%s found\n", ev->files_total, ev->files_total == 1 ? "" : "s");
        break;
    case RAG_ING_EV_FILE_BEGIN:
        snprintf(u->current, sizeof u->current, "%s", ev->path ? ev->path : "");
        if (u->tty && !u->quiet && now - u->last_draw > 0.1) { draw_bar(u, ev); u->last_draw = now; }
        break;
    case RAG_ING_EV_FILE_DONE: {
        const char *p = app_display_path(ev->path);
        if (ev->outcome == RAG_ING_SKIPPED || ev->outcome == RAG_ING_FAILED || ev->outcome == RAG_ING_REMOVED)
            add_note(u, ev->outcome, ev->path, ev->reason);
        bool empty = (ev->outcome == RAG_ING_ADDED || ev->outcome == RAG_ING_UPDATED) && ev->n_chunks == 0;
        if (empty) add_note(u, ev->outcome, ev->path, no_text_reason(ev->path));
        if (u->quiet) {
            if (ev->outcome == RAG_ING_FAILED) u->n_failed_now++;
            break;
        }
        if (u->tty) {
            if (ev->outcome == RAG_ING_FAILED) {
                clear_bar(u);
                fprintf(stderr, "failed  %s: %s\n", app_esc(p), app_esc(ev->reason ? bare_reason(ev->path, ev->reason) : ""));
            }
            if (now - u->last_draw > 0.1 || ev->files_done == ev->files_total) { draw_bar(u, ev); u->last_draw = now; }
        } else {
            if (ev->outcome != RAG_ING_UNCHANGED) {
                printf("%-9s %s", rag_ingest_outcome_str(ev->outcome), app_esc(p));
                if (empty) printf(" (0 chunks: %s)", no_text_reason(ev->path));
                else if (ev->outcome == RAG_ING_ADDED || ev->outcome == RAG_ING_UPDATED)
                    printf(" (%d chunk%s)", ev->n_chunks, ev->n_chunks == 1 ? "" : "s");
                if (ev->outcome == RAG_ING_RENAMED && ev->reason && strncmp(ev->reason, "from ", 5) == 0)
                    printf(": from %s", app_esc(app_display_path(ev->reason + 5)));
                else if (ev->reason) printf(": %s", app_esc(bare_reason(ev->path, ev->reason)));
                putchar('\n');
            }
            if (now - u->last_line > 10 && ev->files_done) {
                char eta[32];
                double per_file = ev->elapsed_s / (double)ev->files_done;
                fmt_eta(per_file * (double)(ev->files_total - ev->files_done), eta, sizeof eta);
                printf("progress: %zu/%zu files, %.1f chunks/s, ETA %s\n", ev->files_done, ev->files_total,
                       ev->elapsed_s > 0 ? (double)ev->chunks_done / ev->elapsed_s : 0.0, eta);
                u->last_line = now;
            }
            fflush(stdout);
        }
        break;
    }
    case RAG_ING_EV_END:
        if (u->tty && !u->quiet) clear_bar(u);
        break;
    }
}

/* The failures of the last run, "path\treason" lines, kept in the index
 * (meta key app.ingest.failed) so that -q reports only new ones. */
#define FAILED_KEY "app.ingest.failed"

static bool failed_before(const char *prev, const note *n) {
    size_t pl = strlen(n->path), rl = strlen(n->reason);
    for (const char *l = prev; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        if (len == pl + 1 + rl && strncmp(l, n->path, pl) == 0 && l[pl] == '\t' && strncmp(l + pl + 1, n->reason, rl) == 0)
            return true;
        l = nl ? nl + 1 : l + len;
    }
    return false;
}

/* The summary; with -q, only the counts and the failures that are new
 * since the last run (the others are counted). */
static void print_summary(ui *u, const rag_ingest_stats *st, const char *index_dir, idx_store *s) {
    printf("%s: %zu added, %zu updated, %zu renamed, %zu removed, %zu unchanged, %zu skipped, %zu failed\n",
           st->cancelled ? "interrupted" : "done", st->added, st->updated, st->renamed, st->removed,
           st->unchanged, st->skipped, st->failed);
    if (!u->quiet)
        printf("%llu chunk%s written, %llu removed in %.2f s (%.1f chunks/s; embedding %.2f s, chunking %.2f s, "
               "reading %.2f s, storing %.2f s); index %s\n",
               (unsigned long long)st->chunks_added, st->chunks_added == 1 ? "" : "s",
               (unsigned long long)st->chunks_removed, st->seconds,
               st->seconds > 0 ? (double)st->chunks_added / st->seconds : 0.0, st->embed_seconds, st->chunk_seconds,
               st->extract_seconds, st->store_seconds, index_dir);
    if (st->regrouped && !u->quiet)
        printf("access groups changed for %zu unchanged document%s (not re-embedded)\n", st->regrouped,
               st->regrouped == 1 ? "" : "s");
    char *prev = NULL;
    if (s) idx_meta_get(s, FAILED_KEY, &prev);
    /* the failures of this run, for the next one */
    size_t cap = 1, n_old = 0;
    for (size_t i = 0; i < u->n_notes; i++)
        if (u->notes[i].o == RAG_ING_FAILED) cap += strlen(u->notes[i].path) + strlen(u->notes[i].reason) + 2;
    char *now = malloc(cap);
    if (now) {
        size_t at = 0;
        now[0] = 0;
        for (size_t i = 0; i < u->n_notes; i++)
            if (u->notes[i].o == RAG_ING_FAILED)
                at += (size_t)snprintf(now + at, cap - at, "%s\t%s\n", u->notes[i].path, u->notes[i].reason);
        if (s && !st->cancelled) idx_meta_set(s, FAILED_KEY, now);
        free(now);
    }
    static const rag_ingest_outcome order[] = {RAG_ING_FAILED, RAG_ING_SKIPPED, RAG_ING_REMOVED, RAG_ING_ADDED};
    static const char *titles[] = {"failed", "skipped", "removed", "no text found (added without chunks)"};
    for (size_t k = 0; k < 4; k++) {
        if (u->quiet && order[k] != RAG_ING_FAILED) continue;
        size_t shown = 0, total = 0;
        for (size_t i = 0; i < u->n_notes; i++) {
            const note *n = &u->notes[i];
            bool kind = order[k] == RAG_ING_ADDED ? (n->o == RAG_ING_ADDED || n->o == RAG_ING_UPDATED) : n->o == order[k];
            if (!kind) continue;
            if (u->quiet && failed_before(prev, n)) { n_old++; continue; }
            total++;
        }
        if (!total) continue;
        printf("%s%s:\n", titles[k], u->quiet ? " (new since the last run)" : "");
        for (size_t i = 0; i < u->n_notes; i++) {
            const note *n = &u->notes[i];
            bool kind = order[k] == RAG_ING_ADDED ? (n->o == RAG_ING_ADDED || n->o == RAG_ING_UPDATED) : n->o == order[k];
            if (!kind || (u->quiet && failed_before(prev, n))) continue;
            if (shown++ == 200 && !u->quiet) { printf("  ... and %zu more\n", total - 200); break; }
            printf("  %s: %s\n", app_esc(app_display_path(n->path)), app_esc(n->reason));
        }
    }
    if (u->quiet && n_old)
        printf("%zu earlier failure%s unchanged (run without -q to list them)\n", n_old, n_old == 1 ? "" : "s");
    free(prev);
}

/* Contract: runs one ingest of DIR into the index; see ingest_usage for the
 * exit codes. */
enum { O_INDEX = 256, O_FAISS, O_REINDEX, O_ACCESS, O_THREADS, O_CHUNK_TOKENS, O_OVERLAP, O_MAX_FILE_MB, O_LAYER,
       O_BATCH, O_SAVE_EVERY, O_MAX_FILE_SECONDS, O_MAX_TEXT_RATIO, O_LORA, O_WATCH, O_DEBOUNCE, O_OCR, O_OCR_LANG };
static const app_opt ingest_opts[] = {
    {"index", 0, "DIR", O_INDEX},
    {"model", 'm', "FILE", 'm'},
    {"access", 0, "FILE", O_ACCESS},
    {"reindex", 0, NULL, O_REINDEX},
    {"quiet", 'q', NULL, 'q'},
    {"threads", 0, "N", O_THREADS},
    {"chunk-tokens", 0, "N", O_CHUNK_TOKENS},
    {"overlap", 0, "N", O_OVERLAP},
    {"max-file-mb", 0, "N", O_MAX_FILE_MB},
    {"max-file-seconds", 0, "S", O_MAX_FILE_SECONDS},
    {"max-text-ratio", 0, "R", O_MAX_TEXT_RATIO},
    {"layer", 0, "L", O_LAYER},
    {"batch", 0, "N", O_BATCH},
    {"save-every", 0, "N", O_SAVE_EVERY},
    {"faiss", 0, "FACTORY", O_FAISS},
    {"lora", 0, "FILE[:SCALE]", O_LORA},
    {"watch", 0, NULL, O_WATCH},
    {"debounce", 0, "MS", O_DEBOUNCE},
    {"ocr", 0, NULL, O_OCR},
    {"ocr-lang", 0, "L", O_OCR_LANG},
    {0},
};
const app_opt *const app_ingest_opts[] = {ingest_opts, app_remote_opts, app_remote_batch_opts, NULL};

int app_cmd_ingest(int argc, char **argv) {
    if (app_wants_help(argc, argv)) {
        fputs(ingest_usage, stdout);
        return 0;
    }
    int rc = 1;
    const char *dir = NULL, *index_flag = NULL, *mflag = NULL, *faiss = NULL, *access_path = NULL;
    rag_access *acc = NULL;
    rag_ingest_params p = rag_ingest_default_params();
    bool layer_auto = false, watch = false;
    rag_watch_params wp = rag_watch_default_params();
    rag_watch *watcher = NULL;
    rag_ingester *ing = NULL;
    ui u;
    memset(&u, 0, sizeof u);
    llm_model *m = NULL;
    idx_store *s = NULL;
    app_args ap;
    app_args_init(&ap, "ingest", app_ingest_opts, argc, argv);
    const char *val;
    int id;
    long v;
    app_lora_opts lora = {0};
    rag_remote_params rp = rag_remote_default_params();
    rp.cancel = &g_cancel;
    bool remote = false;
    while ((id = app_args_next(&ap, &val)) > 0) {
        bool ok = true;
        switch (id) {
        case O_INDEX: index_flag = val; break;
        case 'm': mflag = val; break;
        case O_FAISS: faiss = val; break;
        case O_LORA: ok = app_lora_add(&lora, "ingest", (char *)val) == 0; break;
        case O_REINDEX: p.reindex = true; break;
        case O_ACCESS: access_path = val; break;
        case 'q': u.quiet = true; break;
        case O_THREADS: ok = app_opt_int(&ap, val, 1, 256, &p.n_threads); break;
        case O_CHUNK_TOKENS: ok = app_opt_int(&ap, val, 16, 8192, &p.chunk_tokens); break;
        case O_OVERLAP: ok = app_opt_int(&ap, val, 0, 4096, &p.overlap_tokens); break;
        case O_MAX_FILE_MB:
            if ((ok = app_opt_long(&ap, val, 1, 1 << 20, &v))) p.max_file_bytes = (uint64_t)v << 20;
            break;
        case O_LAYER:
            if (strcmp(val, "auto") == 0) { layer_auto = true; p.layer = -1; }
            else if (!app_parse_int(val, -1, 100000, &p.layer))
                ok = app_opt_bad(&ap, val, "a layer number (-1 = the final norm) or auto");
            break;
        case O_MAX_FILE_SECONDS:
            if ((ok = app_opt_long(&ap, val, 0, 86400, &v))) p.budget.cpu_seconds = (double)v;
            break;
        case O_MAX_TEXT_RATIO:
            if ((ok = app_opt_long(&ap, val, 0, 1 << 20, &v))) p.budget.max_text_ratio = (double)v;
            break;
        case O_BATCH: ok = app_opt_int(&ap, val, 1, 4096, &p.embed_batch); break;
        case O_SAVE_EVERY: ok = app_opt_int(&ap, val, 1, 1 << 30, &p.save_every); break;
        case O_WATCH: watch = true; break;
        case O_OCR: p.ocr = true; break;
        case O_OCR_LANG: p.ocr_langs = val; break;
        case O_DEBOUNCE: ok = app_opt_int(&ap, val, 0, 600000, &wp.debounce_ms); break;
        default: ok = app_remote_apply_opt(&ap, id, val, &rp, &remote, &p) >= 0; break;
        }
        if (!ok) return 2;
    }
    if (id < 0) return 2;
    if (ap.npos > 1) return app_usage_error(&ap, "one folder at a time ('%s')", argv[2]);
    if (ap.npos == 0) return app_usage_error(&ap, "no DIR to ingest");
    dir = argv[1];
    if (!p.ocr_langs && getenv("MRAG_OCR_LANG") && *getenv("MRAG_OCR_LANG")) p.ocr_langs = getenv("MRAG_OCR_LANG");
    if (p.overlap_tokens >= p.chunk_tokens) return app_usage_error(&ap, "--overlap must be below --chunk-tokens");
    if (remote && !rp.base_url) return app_usage_error(&ap, "--llm-embeddings needs --llm-url BASE");
    if (rp.base_url && !remote)
        return app_usage_error(&ap, "--llm-url: ingest only embeds; add --llm-embeddings to embed on the server");
    if (remote && (layer_auto || p.layer != -1)) return app_usage_error(&ap, "--layer needs a local model (a server embeds the final layer)");
    if (remote && lora.n) return app_usage_error(&ap, "--lora needs a local model (the server applies its own)");
    const char *mpath = app_model_path(mflag);
    if (!mpath && !remote) return app_usage_error(&ap, "no model: give -m FILE or set MRAG_MODEL (or --llm-url BASE --llm-embeddings)");
    struct stat dst;
    if (stat(dir, &dst) != 0) return app_error("ingest: %s: %s", dir, strerror(errno));
    if (!S_ISDIR(dst.st_mode)) return app_error("ingest: %s: not a folder (ingest takes a folder of documents)", dir);
    const char *index_dir = app_index_path(index_flag);
    char err[1024];
    if (access_path && rag_access_load(access_path, &acc, err, sizeof err) != RAG_OK) {
        app_error("ingest: access rules: %s", err);
        return 2;
    }
    p.access = acc;
    llm_model_params mp = llm_model_default_params();
    app_lora_model_params(&lora, &mp);
    /* an unchanged folder needs only the fingerprint: pack the weights
     * when the first document is embedded, not at load */
    mp.defer_repack = true;
    /* with a server the model only counts tokens: its vocabulary is enough */
    mp.vocab_only = remote;
    if (mpath && llm_model_load(mpath, &mp, &m, err, sizeof err) != LLM_OK) { app_error("ingest: %s", err); goto done; }
    p.model = m;
    if (remote) {
        app_warn_if_readable(rp.key_file, "the key file ");
        p.remote = &rp;
    }
    idx_params ip = idx_default_params();
    ip.faiss_factory = faiss;
    int irc = idx_open(index_dir, &ip, &s);
    if (irc != IDX_OK) { app_error("ingest: %s", s ? idx_errmsg(s) : "out of memory"); goto done; }
    if (idx_notice(s)) fprintf(stderr, "mrag: %s\n", idx_notice(s));
    u.tty = isatty(STDERR_FILENO) && getenv("TERM") && strcmp(getenv("TERM"), "dumb") != 0;
    u.cols = 80;
    struct winsize ws;
    const char *cols = getenv("COLUMNS");
    if (u.tty && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) u.cols = ws.ws_col;
    else if (cols && atoi(cols) > 20) u.cols = atoi(cols);
    p.progress = on_progress;
    p.user = &u;
    p.cancel = &g_cancel;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    rag_ingest_stats st;
    /* watching starts before the first run, so nothing changed during it is missed */
    if (watch && rag_watch_open(dir, &wp, &watcher, err, sizeof err) != RAG_OK) {
        app_error("ingest: --watch: %s", err);
        goto restore;
    }
    if (watcher && rag_watch_unwatched(watcher))
        fprintf(stderr, "mrag: ingest: %zu folder%s cannot be watched (raise fs.inotify.max_user_watches)\n",
                rag_watch_unwatched(watcher), rag_watch_unwatched(watcher) == 1 ? "" : "s");
    int grc = rag_ingester_new(s, &p, &ing, err, sizeof err);
    if (grc == RAG_OK) grc = rag_ingester_run_dir(ing, dir, &st, err, sizeof err);
    clear_bar(&u);
    if (grc != RAG_OK) { app_error("ingest: %s", err); goto restore; }
    print_summary(&u, &st, index_dir, s);
    if (layer_auto && !st.cancelled) app_choose_layer(s, m, p.n_threads, NULL, 0, "ingest");
    /* a run that changed nothing gives the fusion weights nothing new to
     * learn from (an index that has none yet gets them at the next change,
     * or from `mrag tune`): no retrieval context, no forward pass */
    bool changed = st.added || st.updated || st.removed || st.renamed || layer_auto;
    if (remote && changed) app_after_ingest_remote(s, &rp, "ingest");
    else app_after_ingest(s, changed ? m : NULL, "ingest");
    rc = st.cancelled ? 130 : 0;
    if (watcher && !st.cancelled) {
        printf("watching %s for changes (Ctrl-C stops)\n", app_esc(dir));
        fflush(stdout);
    }
    while (watcher && !g_cancel) {
        rag_watch_batch b;
        int wrc = rag_watch_next(watcher, -1, &g_cancel, &b, err, sizeof err);
        if (wrc == RAG_ERR_NOTFOUND) break;     /* cancelled */
        if (wrc != RAG_OK) { app_error("ingest: --watch: %s", err); rc = 1; break; }
        if (b.root_gone) { app_error("ingest: --watch: %s was deleted or moved away", app_esc(dir)); rc = 1; break; }
        if (b.overflow) {
            printf("watch: the kernel's event queue overflowed: rescanning everything\n");
            rag_watch_resync(watcher);
        } else if (!u.quiet) {
            printf("watch: %zu change%s (%s%s)\n", b.events, b.events == 1 ? "" : "s", app_esc(b.first_path),
                   b.events > 1 ? ", ..." : "");
        }
        fflush(stdout);
        for (size_t i = 0; i < u.n_notes; i++) { free(u.notes[i].path); free(u.notes[i].reason); }
        u.n_notes = 0;
        grc = rag_ingester_run_dir(ing, dir, &st, err, sizeof err);
        clear_bar(&u);
        if (grc != RAG_OK) {
            /* a failed batch (the store, the disk) is reported; the next batch tries again */
            app_error("ingest: %s", err);
            continue;
        }
        print_summary(&u, &st, index_dir, s);
        if ((st.added || st.updated || st.renamed || st.removed) && remote) app_after_ingest_remote(s, &rp, "ingest");
        else if (st.added || st.updated || st.renamed || st.removed) app_after_ingest(s, m, "ingest");
        fflush(stdout);
        if (st.cancelled) break;
    }
    if (watcher && g_cancel) rc = 130;
restore:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
done:
    rag_watch_close(watcher);
    rag_ingester_free(ing);
    for (size_t i = 0; i < u.n_notes; i++) { free(u.notes[i].path); free(u.notes[i].reason); }
    free(u.notes);
    idx_close(s);
    llm_model_free(m);
    rag_access_free(acc);
    return rc;
}
