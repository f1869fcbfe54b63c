/* bench_guard.c — guardrail benchmark (not a test): scan throughput of the
 * default rules per stage over a few MB of mixed EN/DE/FR text with some
 * personal data, streaming throughput, and the hits on data/sample (every
 * hit is listed so false positives can be judged). */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rag/rag.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static unsigned long long rng = 0x9E3779B97F4A7C15ull;
static unsigned rnd(unsigned n) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)((rng >> 33) % n);
}

/* A few MB of prose-like text in three languages with numbers, dates,
 * versions, code and, every ~2 KB, one item of personal data. */
static char *make_corpus(size_t target, size_t *len) {
    static const char *words[] = {
        "the", "report", "shows", "that", "our", "team", "will", "review", "previous", "instructions", "for",
        "installation", "and", "ignore", "warnings", "about", "deprecated", "options", "system", "prompt",
        "der", "Bericht", "zeigt", "dass", "die", "Anweisungen", "im", "Handbuch", "gelten", "und", "Regeln",
        "für", "Urlaub", "Reisekosten", "Abrechnung", "bis", "zum", "Monatsende", "einreichen", "Straße",
        "le", "rapport", "montre", "que", "les", "consignes", "précédentes", "restent", "valables", "pour",
        "équipe", "sans", "restriction", "accès", "bâtiment", "act", "as", "a", "lead", "without", "delay",
        "version", "1.2.3", "2024-01-15", "12:30", "0,99", "EUR", "Seite", "42", "§", "3.4", "x86_64", "[1]",
        "std::vector", "http://intranet.example/wiki/Page", "10%", "ISO", "9001", "PLZ", "20095", "Hamburg",
    };
    static const char *pii[] = {
        "jane.doe@example.org", "+49 30 1234567", "030/1234567", "0171 1234567", "DE89 3704 0044 0532 0130 00",
        "4111 1111 1111 1111", "12345678995", "192.168.1.10", "2001:db8::8a2e:370:7334", "+14155552671",
    };
    char *buf = malloc(target + 256);
    size_t n = 0, next_pii = 2048;
    while (n < target) {
        const char *w = words[rnd(sizeof words / sizeof words[0])];
        if (n >= next_pii) {
            w = pii[rnd(sizeof pii / sizeof pii[0])];
            next_pii += 1024 + rnd(2048);
        }
        size_t l = strlen(w);
        memcpy(buf + n, w, l);
        n += l;
        unsigned r = rnd(20);
        buf[n++] = r == 0 ? '\n' : r == 1 ? '.' : ' ';
        if (r == 1) buf[n++] = ' ';
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static void bench_stage(rag_guard *g, rag_guard_stage st, const char *text, size_t len) {
    rag_guard_result r;
    double t0 = now();
    int reps = 0;
    size_t events = 0;
    do {
        if (rag_guard_check(g, st, text, len, 3, &r) != RAG_OK) { printf("check failed\n"); return; }
        events = r.n_events;
        rag_guard_result_release(&r);
        reps++;
    } while (now() - t0 < 1.0);
    double dt = (now() - t0) / reps;
    printf("  %-8s %7.1f MB/s  (%zu events per pass)\n", rag_guard_stage_name(st), (double)len / dt / 1e6, events);
}

/* The pipeline checks short texts (a question, a 2 KB passage): the same
 * corpus cut into pieces of that size. PCRE2 skips some of its
 * required-character shortcuts on very long subjects, so this is often
 * faster per byte than one big scan. */
static void bench_pieces(rag_guard *g, rag_guard_stage st, const char *text, size_t len, size_t piece) {
    rag_guard_result r;
    double t0 = now();
    size_t done = 0;
    do {
        for (size_t i = 0; i < len; i += piece) {
            size_t k = piece < len - i ? piece : len - i;
            if (rag_guard_check(g, st, text + i, k, 3, &r) != RAG_OK) { printf("check failed\n"); return; }
            rag_guard_result_release(&r);
        }
        done += len;
    } while (now() - t0 < 1.0);
    double dt = now() - t0;
    printf("  %-8s %7.1f MB/s  in %zu-byte texts (%.0f us per text)\n", rag_guard_stage_name(st),
           (double)done / dt / 1e6, piece, dt / ((double)done / (double)piece) * 1e6);
}

static void bench_stream(rag_guard *g, const char *text, size_t len, size_t piece) {
    rag_guard_stream *s;
    if (rag_guard_stream_new(g, RAG_GUARD_OUTPUT, 3, &s) != RAG_OK) return;
    const char *out;
    size_t out_len, emitted = 0;
    double t0 = now();
    int rc = RAG_OK;
    for (size_t i = 0; i < len && rc == RAG_OK; i += piece) {
        size_t k = piece < len - i ? piece : len - i;
        rc = rag_guard_stream_feed(s, text + i, k, &out, &out_len);
        emitted += out_len;
    }
    if (rc == RAG_OK) rag_guard_stream_finish(s, &out, &out_len);
    double dt = now() - t0;
    printf("  stream output, %zu-byte pieces: %.1f MB/s, %.1f us per piece (%zu pieces)\n", piece,
           (double)len / dt / 1e6, dt / ((double)len / (double)piece) * 1e6, len / piece);
    rag_guard_stream_free(s);
}

static double load1(void) {
    double l[1] = {0};
    return getloadavg(l, 1) == 1 ? l[0] : -1;
}

/* Real prose cut into texts of about piece bytes (at a paragraph end):
 * the XQuAD paragraphs of ../shared/data (encyclopedia text), else the
 * files of data/sample. Returns the number of texts (owned strings). */
static size_t real_texts(char **out, size_t max, size_t piece) {
    size_t n = 0, cap = 0, len = 0;
    char *cur = NULL;
    FILE *f = fopen("../shared/data/xquad.en.json", "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)sz + 1);
    if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) { fclose(f); free(buf); return 0; }
    fclose(f);
    buf[sz] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    cJSON *art;
    cJSON_ArrayForEach(art, cJSON_GetObjectItem(j, "data")) {
        cJSON *par;
        cJSON_ArrayForEach(par, cJSON_GetObjectItem(art, "paragraphs")) {
            const char *c = cJSON_GetStringValue(cJSON_GetObjectItem(par, "context"));
            if (!c || n == max) continue;
            size_t l = strlen(c);
            if (len + l + 2 > cap) { cap = len + l + 4096; cur = realloc(cur, cap); }
            memcpy(cur + len, c, l);
            len += l;
            cur[len++] = '\n';
            cur[len] = 0;
            if (len >= piece) { out[n++] = cur; cur = NULL; len = cap = 0; }
        }
    }
    free(cur);
    cJSON_Delete(j);
    return n;
}

/* Cost per text of each stage over real texts, with the load average. */
static void bench_real(rag_guard *g, size_t piece) {
    char *texts[400];
    size_t n = real_texts(texts, 400, piece), bytes = 0;
    if (!n) { printf("  (../shared/data/xquad.en.json not found: no real-text figures)\n"); return; }
    for (size_t i = 0; i < n; i++) bytes += strlen(texts[i]);
    for (int st = 0; st < 3; st++) {
        rag_guard_result r;
        double t0 = now();
        size_t reps = 0;
        do {
            for (size_t i = 0; i < n; i++) {
                if (rag_guard_check(g, (rag_guard_stage)st, texts[i], strlen(texts[i]), 3, &r) != RAG_OK) return;
                rag_guard_result_release(&r);
            }
            reps++;
        } while (now() - t0 < 1.0);
        double dt = now() - t0;
        double per_text = dt / (double)(n * reps);
        printf("  %-8s %6.0f us per %zu-byte encyclopedia text (%zu texts x %zu)", rag_guard_stage_name((rag_guard_stage)st),
               per_text * 1e6, bytes / n, n, reps);
        /* the unit: ms per 2 KB passage (goal: at most 0.2 at the context stage) */
        if (piece >= 2048) printf(", %.3f ms per 2 KB passage", per_text * 1e3 * 2048.0 / ((double)bytes / (double)n));
        printf("  [load %.1f]\n", load1());
    }
    for (size_t i = 0; i < n; i++) free(texts[i]);
}

/* Scans every extracted document of dir with all three stages and prints each hit. */
static void sample_hits(rag_guard *g, const char *dir) {
    rag_walk_result w;
    char err[512];
    rag_walk_params wp = rag_walk_default_params();
    if (rag_walk(dir, &wp, &w, err, sizeof err) != RAG_OK) {
        printf("  %s: %s\n", dir, err);
        return;
    }
    size_t bytes = 0, docs = 0, hits[3] = {0};
    for (size_t i = 0; i < w.n; i++) {
        rag_walk_entry *e = &w.entries[i];
        if (e->skip != RAG_SKIP_NONE || e->is_dir) continue;
        rag_doc *d = NULL;
        rag_extract_params ep = rag_extract_default_params();
        if (rag_extract_file(e->path, e->type, &ep, &d, err, sizeof err) != RAG_OK) {
            printf("  %s: %s\n", e->rel, err);
            continue;
        }
        docs++;
        bytes += d->text_len;
        for (int st = 0; st < 3; st++) {
            rag_guard_result r;
            if (rag_guard_check(g, (rag_guard_stage)st, d->text, d->text_len, 1000, &r) != RAG_OK) continue;
            for (size_t k = 0; k < r.n_events; k++) {
                const rag_guard_event *ev = &r.events[k];
                size_t l = ev->end - ev->start;
                printf("  hit %-7s %-28s %-40s \"%.*s\"\n", rag_guard_stage_name((rag_guard_stage)st), ev->rule_id,
                       e->rel, (int)(l > 70 ? 70 : l), d->text + ev->start);
                hits[st]++;
            }
            rag_guard_result_release(&r);
        }
        rag_doc_free(d);
    }
    printf("  %s: %zu documents, %zu bytes of text; hits: input %zu, context %zu, output %zu\n", dir, docs, bytes,
           hits[0], hits[1], hits[2]);
    rag_walk_result_free(&w);
}

int main(int argc, char **argv) {
    rag_guard *g = NULL;
    char err[700];
    rag_guard_params p = rag_guard_default_params();
    if (rag_guard_load(&p, &g, err, sizeof err) != RAG_OK) {
        fprintf(stderr, "bench_guard: %s\n", err);
        return 1;
    }
    size_t len;
    char *text = make_corpus(4u << 20, &len);
    printf("guardrails: %zu default rules, %.1f MB mixed text  [load %.1f]\n", rag_guard_rule_count(g),
           (double)len / 1e6, load1());
    printf("real text, the whole guard (normalisation, rules, detector):\n");
    bench_real(g, 2048);
    bench_real(g, 200);
    printf("generated text (dense in rule words, a worst case for the trigger prefilter):\n");
    for (int st = 0; st < 3; st++) bench_stage(g, (rag_guard_stage)st, text, len);
    for (int st = 0; st < 3; st++) bench_pieces(g, (rag_guard_stage)st, text, len, 2048);
    bench_stream(g, text, 256u << 10, 4);
    bench_stream(g, text, 1u << 20, 64);
    printf("hits on the sample corpus (review for false positives):\n");
    sample_hits(g, argc > 1 ? argv[1] : "data/sample");
    free(text);
    rag_guard_free(g);
    return 0;
}
