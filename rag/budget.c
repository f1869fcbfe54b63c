/* budget.c — the per-file extraction budget every extractor runs under:
 * CPU time of the extracting thread and extracted text (absolute and as a
 * ratio to the file's size). The contract is in ingest_internal.h; the
 * numbers are in docs/ingestion.md, "Budgets". */
#include "rag/ingest_internal.h"

#include <string.h>
#include <time.h>

/* How many rag_budget_check calls share one clock read: the thread CPU
 * clock is a system call (~0.3 us), checkpoints may be per element. */
#define CLOCK_EVERY 32

static double thread_cpu_s(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

rag_budget_params rag_budget_default_params(void) {
    rag_budget_params p = {
        .cpu_seconds = 60,
        .max_text_ratio = 32,
        .ratio_floor_bytes = 4u << 20,
    };
    return p;
}

void rag_budget_begin(rag_budget *b, const rag_budget_params *p, uint64_t input_bytes, size_t max_text_bytes) {
    memset(b, 0, sizeof *b);
    b->p = p ? *p : rag_budget_default_params();
    b->input_bytes = input_bytes;
    b->max_text = max_text_bytes;
    if (b->p.max_text_ratio > 0) {
        double by_ratio = b->p.max_text_ratio * (double)input_bytes;
        size_t cap = by_ratio > (double)SIZE_MAX ? SIZE_MAX : (size_t)by_ratio;
        if (cap < b->p.ratio_floor_bytes) cap = b->p.ratio_floor_bytes;
        if (!b->max_text || cap < b->max_text) {
            b->max_text = cap;
            b->ratio_bound = true;
        }
    }
    b->cpu_start = thread_cpu_s();
}

static int over(rag_budget *b) {
    b->over = true;
    return RAG_ERR_LIMIT;
}

int rag_budget_check_now(rag_budget *b, size_t text_bytes) {
    if (!b) return RAG_OK;
    if (b->over) return RAG_ERR_LIMIT;
    if (b->max_text && text_bytes > b->max_text) {
        if (b->ratio_bound)
            snprintf(b->why, sizeof b->why,
                     "the extracted text grew past %g times the file's size (%zu bytes of text from a %llu-byte "
                     "file; the text budget is %zu bytes)",
                     b->p.max_text_ratio, text_bytes, (unsigned long long)b->input_bytes, b->max_text);
        else
            snprintf(b->why, sizeof b->why, "the extracted text grew past the limit of %zu bytes", b->max_text);
        return over(b);
    }
    if (b->p.cpu_seconds > 0) {
        double used = thread_cpu_s() - b->cpu_start;
        if (used > b->p.cpu_seconds) {
            snprintf(b->why, sizeof b->why, "extraction took more than %g s of CPU time (the per-file budget)",
                     b->p.cpu_seconds);
            return over(b);
        }
    }
    return RAG_OK;
}

int rag_budget_check(rag_budget *b, size_t text_bytes) {
    if (!b) return RAG_OK;
    if (b->over) return RAG_ERR_LIMIT;
    if (b->max_text && text_bytes > b->max_text) return rag_budget_check_now(b, text_bytes);
    if (++b->ticks % CLOCK_EVERY) return RAG_OK;
    return rag_budget_check_now(b, text_bytes);
}

int rag_budget_refuse(rag_budget *b, const char *fmt, ...) {
    if (!b) return RAG_ERR_LIMIT;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->why, sizeof b->why, fmt, ap);
    va_end(ap);
    return over(b);
}
