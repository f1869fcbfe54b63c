/* bench_evidence.c — how long the evidence takes after retrieval at N
 * chunks (default 100 000; the goal of issue 18: on screen within 50 ms
 * after retrieval). Builds an index of N synthetic but document-like chunks
 * (a heading path; paragraphs of sentences with names, numbers with units,
 * dates, abbreviations and pronouns that join the sentence before; list
 * items; Markdown tables; English words from a Zipf-skewed vocabulary), then
 * asks questions made from a sentence of a random chunk (who / when / how
 * many / what + its content words) through the answer pipeline in the
 * extractive mode, exactly as `mrag ask --extractive` without a model:
 * input guardrails, BM25 retrieval (k = 5), context guardrails, the
 * relevance gate, then the evidence (units, analysis, scoring, marks, and
 * the context and output guardrails on each unit). Prints retrieval and
 * evidence wall time (p50 / p95 / p99 / max), the evidence's share that met
 * the goal, and the load average before and after: timings from a busy
 * machine are noise (docs/benchmarks.md).
 *
 *   make bench-evidence       or    build/tests/bench_evidence [N] [QUERIES] */
#include "index/index.h"
#include "rag/rag.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNKS_PER_DOC 8
#define VOCAB 30000
#define GOAL_MS 50.0

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static uint64_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static const char *const fn[] = {"the", "of", "and", "to", "in", "is", "was", "that", "for", "with", "as", "by",
                                 "on", "are", "from", "at", "an", "be", "this", "which", "or", "has", "its", "their"};
static const char *const syl[] = {"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ber", "dan", "gel", "hor",
                                  "pin", "quist", "ton", "wel", "mar", "cor", "lin", "ste"};
static const char *const sufx[] = {"", "", "", "s", "ing", "ed", "er", "ation", "ly", "al"};
static const char *const first[] = {"Anna", "Jonas", "Maria", "Peter", "Laura", "David", "Sofia", "Thomas", "Elena",
                                    "Lukas", "Clara", "Martin"};
static const char *const last[] = {"Becker", "Schmidt", "Nowak", "Larsen", "Moreau", "Keller", "Brandt", "Ferreira",
                                   "Olsen", "Weber", "Hoffmann", "Costa"};
static const char *const months[] = {"January", "February", "March", "April", "May", "June", "July", "August",
                                     "September", "October", "November", "December"};
static const char *const units[] = {"days", "hours", "percent", "euros", "kilometres", "employees", "users", "MB"};
static const char *const pron[] = {"It", "They", "This", "He", "She", "These"};

/* A content word: Zipf-skewed id spelled from syllables, with a suffix. */
static size_t word(char *out, size_t n, bool cap) {
    unsigned r = (unsigned)(rnd() % VOCAB);
    r = (unsigned)((uint64_t)r * r / VOCAB);
    size_t o = 0;
    unsigned x = r + 1;
    while (x && o + 8 < n) { o += (size_t)snprintf(out + o, n - o, "%s", syl[x % 20]); x /= 20; }
    o += (size_t)snprintf(out + o, n - o, "%s", sufx[rnd() % 10]);
    if (cap && out[0] >= 'a' && out[0] <= 'z') out[0] = (char)(out[0] - 32);
    return o;
}

typedef struct {
    char *b;
    size_t n, cap;
} sbuf;

static void put(sbuf *s, const char *fmt, const char *a, const char *b) {
    char tmp[256];
    int k = snprintf(tmp, sizeof tmp, fmt, a, b);
    if (k < 0) return;
    if (s->n + (size_t)k + 1 > s->cap) {
        s->cap = (s->n + (size_t)k + 1) * 2;
        s->b = realloc(s->b, s->cap);
        if (!s->b) abort();
    }
    memcpy(s->b + s->n, tmp, (size_t)k + 1);
    s->n += (size_t)k;
}

/* One sentence: 10-24 words, content and function words mixed, sometimes a
 * name, a number with a unit, a date, an abbreviation; the content words go
 * to kw (for a question about this sentence). */
static void sentence(sbuf *s, char kw[][48], int *nkw, int kind) {
    int nw = 10 + (int)(rnd() % 15);
    char w[48], num[64];
    if (kind == 1) put(s, "%s ", pron[rnd() % 6], NULL);
    for (int i = 0; i < nw; i++) {
        if (i == nw / 2 && kind == 2) { put(s, "%s %s ", first[rnd() % 12], last[rnd() % 12]); continue; }
        if (i == nw / 2 && kind == 3) {
            snprintf(num, sizeof num, "%d", 1 + (int)(rnd() % 400));
            put(s, "%s %s ", num, units[rnd() % 8]);
            continue;
        }
        if (i == nw / 2 && kind == 4) {
            snprintf(num, sizeof num, "%d %s %d", 1 + (int)(rnd() % 28), months[rnd() % 12], 1990 + (int)(rnd() % 36));
            put(s, "on %s ", num, NULL);
            continue;
        }
        if (i == 3 && kind == 5) { put(s, "e.g. ", NULL, NULL); continue; }
        if (i % 2 == 1) { put(s, "%s ", fn[rnd() % 24], NULL); continue; }
        word(w, sizeof w, i == 0 && kind != 1);
        if (kw && *nkw < 6 && i > 0) snprintf(kw[(*nkw)++], 48, "%s", w);
        put(s, "%s ", w, NULL);
    }
    s->b[s->n - 1] = '.';
    put(s, " ", NULL, NULL);
}

/* One chunk of about 1 KB; its second sentence's content words to kw. */
static void chunk_text(sbuf *s, char kw[][48], int *nkw, int *kind_out) {
    s->n = 0;
    int qkind = 2 + (int)(rnd() % 4);
    *kind_out = qkind;
    for (int p = 0; p < 2; p++) {
        int ns = 3 + (int)(rnd() % 3);
        for (int i = 0; i < ns; i++) {
            int kind = p == 0 && i == 1 ? qkind : (i > 0 && rnd() % 5 == 0) ? 1 : (int)(rnd() % 6);
            if (kind == 1 && i == 0) kind = 0;
            sentence(s, p == 0 && i == 1 ? kw : NULL, nkw, kind);
        }
        put(s, "\n\n", NULL, NULL);
    }
    unsigned extra = (unsigned)(rnd() % 4);
    char a[48], b[48];
    if (extra == 0) {
        for (int i = 0; i < 3; i++) {
            word(a, sizeof a, true);
            word(b, sizeof b, false);
            put(s, "- %s of the %s", a, b);
            put(s, " %s.\n", fn[rnd() % 24], NULL);
        }
    } else if (extra == 1) {
        word(a, sizeof a, true);
        word(b, sizeof b, true);
        put(s, "| %s | %s |\n|---|---|\n", a, b);
        for (int i = 0; i < 3; i++) {
            word(a, sizeof a, false);
            char n[16];
            snprintf(n, sizeof n, "%d", (int)(rnd() % 1000));
            put(s, "| %s | %s |\n", a, n);
        }
    }
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pctl(const double *v, int n, double p) {
    int i = (int)(p * n + 0.5) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

int main(int argc, char **argv) {
    long n_chunks = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
    int n_q = argc > 2 ? atoi(argv[2]) : 300;
    if (n_chunks < 100) n_chunks = 100;
    if (n_q < 10) n_q = 10;
    char dir[] = "/tmp/mrag-bench-evidence-XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    idx_store *s = NULL;
    if (idx_open(dir, NULL, &s)) { fprintf(stderr, "open: %s\n", idx_errmsg(s)); return 1; }
    double la_b[3] = {0};
    getloadavg(la_b, 3);
    printf("bench-evidence: %ld chunks, %d questions, %ld cores online, load average %.2f %.2f %.2f\n", n_chunks, n_q,
           sysconf(_SC_NPROCESSORS_ONLN), la_b[0], la_b[1], la_b[2]);
    fflush(stdout);
    /* the questions: from every (N / QUERIES)th chunk, its second sentence */
    char (*qs)[512] = calloc((size_t)n_q, sizeof *qs);
    int nq = 0;
    long every = n_chunks / n_q > 0 ? n_chunks / n_q : 1;
    double t0 = now();
    long n_docs = (n_chunks + CHUNKS_PER_DOC - 1) / CHUNKS_PER_DOC;
    sbuf txt[CHUNKS_PER_DOC];
    memset(txt, 0, sizeof txt);
    char heads[CHUNKS_PER_DOC][128];
    idx_chunk ch[CHUNKS_PER_DOC];
    size_t bytes = 0;
    long made = 0;
    for (long d = 0; d < n_docs; d++) {
        if (d % 1000 == 0 && idx_begin(s)) { fprintf(stderr, "begin: %s\n", idx_errmsg(s)); return 1; }
        int nc = 0;
        char title[48];
        word(title, sizeof title, true);
        int line = 1;
        for (int c = 0; c < CHUNKS_PER_DOC && made < n_chunks; c++, made++) {
            char kw[6][48];
            int nkw = 0, kind = 0;
            chunk_text(&txt[c], kw, &nkw, &kind);
            char sec[48];
            word(sec, sizeof sec, true);
            snprintf(heads[c], sizeof heads[c], "%s > %s", title, sec);
            int nl = 0;
            for (size_t i = 0; i < txt[c].n; i++) nl += txt[c].b[i] == '\n';
            ch[c] = (idx_chunk){.ordinal = c, .text = txt[c].b, .text_len = txt[c].n, .heading = heads[c],
                                .line_start = line, .line_end = line + nl};
            line += nl + 2;
            bytes += txt[c].n;
            nc++;
            if (made % every == every / 2 && nq < n_q && nkw >= 3) {
                static const char *const qw[] = {"", "", "Who", "How many", "When", "What"};
                int o = snprintf(qs[nq], sizeof qs[nq], "%s", qw[kind]);
                for (int k = 0; k < nkw && k < 4; k++) o += snprintf(qs[nq] + o, sizeof qs[nq] - (size_t)o, " %s %s", k ? fn[rnd() % 24] : "did the", kw[k]);
                snprintf(qs[nq] + o, sizeof qs[nq] - (size_t)o, "?");
                nq++;
            }
        }
        char uri[128];
        snprintf(uri, sizeof uri, "docs/%s-%ld.md", title, d);
        idx_doc doc = {.uri = uri, .title = title, .type = "md"};
        if (idx_doc_put(s, &doc, ch, (size_t)nc, NULL, 0, NULL)) { fprintf(stderr, "put: %s\n", idx_errmsg(s)); return 1; }
        if ((d % 1000 == 999 || d == n_docs - 1) && idx_commit(s)) { fprintf(stderr, "commit: %s\n", idx_errmsg(s)); return 1; }
    }
    double t_ins = now() - t0;
    t0 = now();
    idx_fts_params fp = {.force = true};
    if (idx_fts_retune(s, &fp, NULL)) { fprintf(stderr, "retune: %s\n", idx_errmsg(s)); return 1; }
    printf("index: %ld chunks (%.0f bytes each on average), insert %.1f s, FTS retune %.1f s\n", made,
           (double)bytes / (double)made, t_ins, now() - t0);
    fflush(stdout);

    char err[512];
    rag_guard *g = NULL;
    rag_guard_params gp = rag_guard_default_params();
    gp.defaults_dir = "data/guardrails";
    if (rag_guard_load(&gp, &g, err, sizeof err) != RAG_OK) { fprintf(stderr, "guardrails: %s\n", err); return 1; }
    rag_answer_params ap = rag_answer_default_params();
    ap.store = s;
    ap.guard = g;
    ap.extractive = true;
    ap.n_threads = 1;
    rag_answerer *a = NULL;
    if (rag_answerer_new(&ap, &a, err, sizeof err) != RAG_OK) { fprintf(stderr, "answerer: %s\n", err); return 1; }
    double *tr = calloc((size_t)nq, sizeof *tr), *te = calloc((size_t)nq, sizeof *te);
    int with_ev = 0, met = 0, warm = nq < 20 ? 1 : 10;
    double la0[3] = {0}, la1[3] = {0};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) getloadavg(la0, 3);
        for (int i = 0; i < (pass ? nq : warm); i++) {
            rag_answer r;
            if (rag_answerer_ask(a, qs[i], NULL, 0, NULL, NULL, NULL, &r) != RAG_OK) {
                fprintf(stderr, "question %d: %s\n", i, rag_answerer_errmsg(a));
                return 1;
            }
            if (pass) {
                tr[i] = r.retrieve_ms;
                te[i] = r.evidence_ms;
                with_ev += r.n_evidence > 0;
                met += r.evidence_ms <= GOAL_MS;
            }
            rag_answer_release(&r);
        }
    }
    getloadavg(la1, 3);
    qsort(tr, (size_t)nq, sizeof *tr, cmp_d);
    qsort(te, (size_t)nq, sizeof *te, cmp_d);
    printf("| stage | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|\n");
    printf("| retrieval (BM25, k 5, + guardrails, gate) | %.2f | %.2f | %.2f | %.2f |\n", pctl(tr, nq, 0.5),
           pctl(tr, nq, 0.95), pctl(tr, nq, 0.99), tr[nq - 1]);
    printf("| evidence after retrieval | %.2f | %.2f | %.2f | %.2f |\n", pctl(te, nq, 0.5), pctl(te, nq, 0.95),
           pctl(te, nq, 0.99), te[nq - 1]);
    printf("%d questions (e.g. \"%s\"), %d with evidence; evidence within %.0f ms: %d of %d (%.1f%%); "
           "load average %.2f -> %.2f\n", nq, qs[0], with_ev, GOAL_MS, met, nq, 100.0 * met / nq, la0[0], la1[0]);
    if (la1[0] > 1.5) printf("note: the machine is busy (load %.2f): these timings are not the product's figures\n", la1[0]);
    rag_answerer_free(a);
    rag_guard_free(g);
    idx_close(s);
    for (int c = 0; c < CHUNKS_PER_DOC; c++) free(txt[c].b);
    free(qs);
    free(tr);
    free(te);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {}
    return 0;
}
