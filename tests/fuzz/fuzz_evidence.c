/* fuzz_evidence.c — libFuzzer target for the evidence (rag/evidence.c):
 * passage text comes from documents and the question from the user, both
 * outside bytes. The input is split at 0x01 bytes: the first part is the
 * question, the others (up to 6) are passages, the second of which gets the
 * third as its heading. Everything evidence does with them runs: the
 * question type, cutting into sentences / table rows / list items, the
 * analysis and scoring, the marks, citations, the extractive answer and the
 * SQuAD scores. Invariants: at most max units, each with a source number of
 * a passage, its byte span and lines inside its passage, its marks inside
 * its text, a NUL-terminated text of text_len bytes (a NUL inside a passage is
 * kept as a byte), scores in order. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/index.h"
#include "rag/rag.h"

#define MAX_PASSAGES 6

static idx_analyzer *analyzer(void) {
    static idx_analyzer *z;
    if (!z && idx_analyzer_new(NULL, &z) != IDX_OK) abort();
    return z;
}

static int count_nl(const char *t, size_t n) {
    int k = 0;
    for (size_t i = 0; i < n; i++) k += t[i] == '\n';
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* parts, each copied NUL-terminated (as the store hands texts over) */
    char *part[MAX_PASSAGES + 1];
    size_t len[MAX_PASSAGES + 1];
    size_t np = 0, start = 0;
    for (size_t i = 0; i <= size && np < MAX_PASSAGES + 1; i++) {
        if (i < size && data[i] != 1) continue;
        size_t n = i - start;
        part[np] = malloc(n + 1);
        if (!part[np]) abort();
        memcpy(part[np], data + start, n);
        part[np][n] = 0;
        len[np++] = n;
        start = i + 1;
    }
    const char *question = part[0]; /* up to its first NUL, as a C string */
    rag_evidence_passage ps[MAX_PASSAGES];
    memset(ps, 0, sizeof ps);
    size_t n = np - 1;
    for (size_t i = 0; i < n; i++) {
        ps[i].number = (int)i + 1;
        ps[i].rank = (int)i + 1;
        ps[i].chunk_id = (int64_t)i + 1;
        ps[i].uri = i == 1 ? "https://wiki.example/Page" : "/docs/doc.md";
        ps[i].heading = i == 1 && n > 2 ? part[3] : NULL;
        ps[i].text = part[i + 1];
        ps[i].text_len = len[i + 1];
        ps[i].line_start = i == 0 ? 10 : 0;
        ps[i].line_end = i == 0 ? 10 + count_nl(part[1], len[1]) : 0;
        ps[i].page = i == 2 ? 3 : 0;
    }
    (void)rag_qtype_name(rag_question_type(question));
    rag_evidence_params p = rag_evidence_default_params();
    p.max = 4;
    p.min_ratio = size % 2 ? 0.5f : 0;
    p.context = n > 3 ? part[4] : NULL;
    rag_evidence *ev = NULL;
    size_t ne = 0;
    int rc = rag_evidence_select(analyzer(), question, ps, n, &p, &ev, &ne);
    if (rc != RAG_OK && rc != RAG_ERR_NOMEM) __builtin_trap();
    if (ne > (size_t)p.max || (ne && !ev)) __builtin_trap();
    for (size_t i = 0; i < ne; i++) {
        const rag_evidence *e = &ev[i];
        if (e->source < 1 || (size_t)e->source > n) __builtin_trap();
        const rag_evidence_passage *s = &ps[e->source - 1];
        if (e->offset > s->text_len || e->length > s->text_len - e->offset) __builtin_trap();
        if (!e->text || e->text[e->text_len] != 0 || !e->uri || !e->heading) __builtin_trap();
        if (s->line_start > 0 && (e->line_start < s->line_start || e->line_end < e->line_start ||
                                  e->line_end > s->line_end))
            __builtin_trap();
        for (size_t k = 0; k < e->n_marks; k++)
            if (e->marks[k].start >= e->marks[k].end || e->marks[k].end > e->text_len) __builtin_trap();
        if (i && e->score > ev[i - 1].score) __builtin_trap();
        char cite[512];
        rag_evidence_cite(e, NULL, cite, sizeof cite);
        if (strlen(cite) >= sizeof cite) __builtin_trap();
    }
    if (ne) {
        if (rag_evidence_mark(analyzer(), question, &ev[0]) != RAG_OK) __builtin_trap();
        for (size_t k = 0; k < ev[0].n_marks; k++)
            if (ev[0].marks[k].end > ev[0].text_len) __builtin_trap();
        char *ans = rag_evidence_answer(question, ev, ne);
        if (!ans) __builtin_trap();
        bool nul = false;       /* a NUL inside a unit ends the answer as a C string */
        for (size_t i = 0; i < ne; i++) nul |= strlen(ev[i].text) != ev[i].text_len;
        for (size_t i = 0; i < ne && !nul; i++)
            if (!strstr(ans, ev[i].text)) __builtin_trap();
        free(ans);
    }
    rag_evidence_free(ev, ne);
    /* the SQuAD scores, with the passages as gold answers */
    if (n) {
        const char *gold[MAX_PASSAGES];
        for (size_t i = 0; i < n; i++) gold[i] = part[i + 1];
        double em = -1, f1 = -1;
        rag_qa_score(question, gold, n, &em, &f1);
        if (!(em == 0 || em == 1) || !(f1 >= 0 && f1 <= 1)) __builtin_trap();
        if (em == 1 && f1 != 1) __builtin_trap();
        (void)rag_qa_contains(part[1], len[1], question);
    }
    for (size_t i = 0; i < np; i++) free(part[i]);
    return 0;
}
