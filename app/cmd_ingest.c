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
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static const char *ingest_usage =
    "usage: mrag ingest DIR [options]\n"
    "\n"
    "Indexes the documents under DIR (txt, md, html, pdf): extracts, chunks,\n"
    "embeds and stores them. Runs are incremental: unchanged files are skipped,\n"
    "changed files replaced, vanished files removed, renamed files renamed.\n"
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
    "  --save-every N      save the FAISS file every N changed documents (default 50)\n"
    "  --reindex           the index was built with another model: drop it and rebuild\n"
    "  --access FILE       access rules: each document's groups from its path below\n"
    "                      DIR (docs/access.md); a re-run with changed rules updates\n"
    "                      the groups without re-embedding\n"
    "  -q, --quiet         only the summary\n"
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
    x->reason = strdup(reason ? reason : "");
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
        if (!u->quiet && !u->tty) printf("%zu files to check\n", ev->files_total);
        break;
    case RAG_ING_EV_FILE_BEGIN:
        snprintf(u->current, sizeof u->current, "%s", ev->path ? ev->path : "");
        if (u->tty && !u->quiet && now - u->last_draw > 0.1) { draw_bar(u, ev); u->last_draw = now; }
        break;
    case RAG_ING_EV_FILE_DONE: {
        const char *p = app_display_path(ev->path);
        if (ev->outcome == RAG_ING_SKIPPED || ev->outcome == RAG_ING_FAILED || ev->outcome == RAG_ING_REMOVED)
            add_note(u, ev->outcome, ev->path, ev->reason);
        if (u->quiet) break;
        if (u->tty) {
            if (ev->outcome == RAG_ING_FAILED) {
                clear_bar(u);
                fprintf(stderr, "failed  %s: %s\n", app_esc(p), app_esc(ev->reason ? ev->reason : ""));
            }
            if (now - u->last_draw > 0.1 || ev->files_done == ev->files_total) { draw_bar(u, ev); u->last_draw = now; }
        } else {
            if (ev->outcome != RAG_ING_UNCHANGED) {
                printf("%-9s %s", rag_ingest_outcome_str(ev->outcome), app_esc(p));
                if (ev->outcome == RAG_ING_ADDED || ev->outcome == RAG_ING_UPDATED) printf(" (%d chunks)", ev->n_chunks);
                if (ev->outcome == RAG_ING_RENAMED && ev->reason && strncmp(ev->reason, "from ", 5) == 0)
                    printf(": from %s", app_esc(app_display_path(ev->reason + 5)));
                else if (ev->reason) printf(": %s", app_esc(ev->reason));
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

static void print_summary(ui *u, const rag_ingest_stats *st, const char *index_dir) {
    printf("%s: %zu added, %zu updated, %zu renamed, %zu removed, %zu unchanged, %zu skipped, %zu failed\n",
           st->cancelled ? "interrupted" : "done", st->added, st->updated, st->renamed, st->removed,
           st->unchanged, st->skipped, st->failed);
    printf("%llu chunks written, %llu removed in %.2f s (%.1f chunks/s; embedding %.2f s, chunking %.2f s, "
           "reading %.2f s, storing %.2f s); index %s\n",
           (unsigned long long)st->chunks_added, (unsigned long long)st->chunks_removed, st->seconds,
           st->seconds > 0 ? (double)st->chunks_added / st->seconds : 0.0, st->embed_seconds, st->chunk_seconds,
           st->extract_seconds, st->store_seconds, index_dir);
    if (st->regrouped)
        printf("access groups changed for %zu unchanged document%s (not re-embedded)\n", st->regrouped,
               st->regrouped == 1 ? "" : "s");
    static const rag_ingest_outcome order[] = {RAG_ING_FAILED, RAG_ING_SKIPPED, RAG_ING_REMOVED};
    for (size_t k = 0; k < 3; k++) {
        size_t shown = 0, total = 0;
        for (size_t i = 0; i < u->n_notes; i++) total += u->notes[i].o == order[k];
        if (!total) continue;
        printf("%s:\n", rag_ingest_outcome_str(order[k]));
        for (size_t i = 0; i < u->n_notes; i++) {
            if (u->notes[i].o != order[k]) continue;
            if (shown++ == 200 && !u->quiet) { printf("  ... and %zu more\n", total - 200); break; }
            printf("  %s: %s\n", app_esc(app_display_path(u->notes[i].path)), app_esc(u->notes[i].reason));
        }
    }
}

/* Contract: runs one ingest of DIR into the index; see ingest_usage for the
 * exit codes. */
int app_cmd_ingest(int argc, char **argv) {
    if (app_wants_help(argc, argv)) {
        fputs(ingest_usage, stdout);
        return 0;
    }
    int rc = 1;
    const char *dir = NULL, *index_flag = NULL, *mflag = NULL, *faiss = NULL, *access_path = NULL;
    rag_access *acc = NULL;
    rag_ingest_params p = rag_ingest_default_params();
    bool layer_auto = false;
    ui u;
    memset(&u, 0, sizeof u);
    llm_model *m = NULL;
    idx_store *s = NULL;
    long v;
    app_lora_opts lora = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--index") == 0 && has) index_flag = argv[++i];
        else if (strcmp(a, "--lora") == 0 && has) {
            if (app_lora_add(&lora, "ingest", argv[++i]) != 0) return 2;
        }
        else if (strcmp(a, "-m") == 0 && has) mflag = argv[++i];
        else if (strcmp(a, "--faiss") == 0 && has) faiss = argv[++i];
        else if (strcmp(a, "--reindex") == 0) p.reindex = true;
        else if (strcmp(a, "--access") == 0 && has) access_path = argv[++i];
        else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) u.quiet = true;
        else if (strcmp(a, "--threads") == 0 && has && app_parse_long(argv[i + 1], 1, 256, &v)) { p.n_threads = (int)v; i++; }
        else if (strcmp(a, "--chunk-tokens") == 0 && has && app_parse_long(argv[i + 1], 16, 8192, &v)) { p.chunk_tokens = (int)v; i++; }
        else if (strcmp(a, "--overlap") == 0 && has && app_parse_long(argv[i + 1], 0, 4096, &v)) { p.overlap_tokens = (int)v; i++; }
        else if (strcmp(a, "--max-file-mb") == 0 && has && app_parse_long(argv[i + 1], 1, 1 << 20, &v)) { p.max_file_bytes = (uint64_t)v << 20; i++; }
        else if (strcmp(a, "--layer") == 0 && has && strcmp(argv[i + 1], "auto") == 0) { layer_auto = true; p.layer = -1; i++; }
        else if (strcmp(a, "--max-file-seconds") == 0 && has && app_parse_long(argv[i + 1], 0, 86400, &v)) { p.budget.cpu_seconds = (double)v; i++; }
        else if (strcmp(a, "--max-text-ratio") == 0 && has && app_parse_long(argv[i + 1], 0, 1 << 20, &v)) { p.budget.max_text_ratio = (double)v; i++; }
        else if (strcmp(a, "--layer") == 0 && has && app_parse_long(argv[i + 1], -1, 100000, &v)) { p.layer = (int)v; i++; }
        else if (strcmp(a, "--batch") == 0 && has && app_parse_long(argv[i + 1], 1, 4096, &v)) { p.embed_batch = (int)v; i++; }
        else if (strcmp(a, "--save-every") == 0 && has && app_parse_long(argv[i + 1], 1, 1 << 30, &v)) { p.save_every = (int)v; i++; }
        else if (a[0] == '-' && a[1]) {
            app_error("ingest: bad option or value '%s' (see `mrag ingest --help`)", a);
            return 2;
        } else if (!dir) dir = a;
        else { app_error("ingest: one folder at a time ('%s')", a); return 2; }
    }
    if (!dir) { fputs(ingest_usage, stderr); return 2; }
    if (p.overlap_tokens >= p.chunk_tokens) { app_error("ingest: --overlap must be below --chunk-tokens"); return 2; }
    const char *index_dir = app_index_path(index_flag);
    const char *mpath = app_model_path(mflag);
    if (!mpath) { app_error("ingest: no model: give -m FILE or set MRAG_MODEL"); return 1; }
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
    if (llm_model_load(mpath, &mp, &m, err, sizeof err) != LLM_OK) { app_error("ingest: %s", err); goto done; }
    p.model = m;
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
    int grc = rag_ingest_dir(s, dir, &p, &st, err, sizeof err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    clear_bar(&u);
    if (grc != RAG_OK) { app_error("ingest: %s", err); goto done; }
    print_summary(&u, &st, index_dir);
    if (layer_auto && !st.cancelled) app_choose_layer(s, m, p.n_threads, NULL, 0, "ingest");
    /* a run that changed nothing gives the fusion weights nothing new to
     * learn from (an index that has none yet gets them at the next change,
     * or from `mrag tune`): no retrieval context, no forward pass */
    bool changed = st.added || st.updated || st.removed || st.renamed || layer_auto;
    app_after_ingest(s, changed ? m : NULL, "ingest");
    rc = st.cancelled ? 130 : 0;
done:
    for (size_t i = 0; i < u.n_notes; i++) { free(u.notes[i].path); free(u.notes[i].reason); }
    free(u.notes);
    idx_close(s);
    llm_model_free(m);
    rag_access_free(acc);
    return rc;
}
