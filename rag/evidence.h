/* evidence.h — evidence: the sentences (table rows, list items) of the
 * retrieved passages most likely to answer the question, ranked without the
 * model, with their citations and the words that match the question. See
 * docs/answering.md, "Evidence".
 *
 * Units: each passage is cut into sentences (abbreviations, German ordinals
 * "2. Klasse" and decimal numbers do not end one), Markdown table rows (with
 * their header row as context) and list items; headings are context, not
 * units. Every unit and the question are analysed by the index's own text
 * analysis (idx_analyze: its language, Snowball stems, compound parts), so
 * "policies" meets "policy" and "Verpflegungspauschale" meets "Pauschale".
 *
 * Score of a unit: the weighted share of the question's content terms it
 * holds (rare terms among the candidate units weigh more; terms of its
 * heading and table header count at a third), plus a bonus for the
 * question's terms close together and in order, plus a bonus when the unit
 * holds what the question type asks for and the question does not
 * (who: a name; when: a year, date, time or month; how many / wie viele: a
 * number; how much: a number with a unit or currency; where: a place after
 * a preposition), minus a little for later passages and later positions.
 * Library code: never prints. */
#ifndef MRAG_RAG_EVIDENCE_H
#define MRAG_RAG_EVIDENCE_H

#include "rag/base.h"

typedef struct idx_analyzer idx_analyzer;   /* index/index.h */

/* What the question asks for, by its question words (en, de, fr). */
typedef enum {
    RAG_QT_OTHER = 0,           /* what / which / how / yes-no ... */
    RAG_QT_WHO,                 /* who, whom, whose; wer, wem, wen, wessen; qui */
    RAG_QT_WHEN,                /* when, what year ...; wann, seit wann ...; quand */
    RAG_QT_COUNT,               /* how many; wie viele; combien de */
    RAG_QT_QUANTITY,            /* how much / long / far / old / big, what
                                   percentage; wie viel / lange / hoch / teuer */
    RAG_QT_WHERE,               /* where; wo, wohin, woher; où */
    RAG_QT_WHY,                 /* why; warum, weshalb, wieso; pourquoi */
    RAG_QT_N
} rag_qtype;

rag_qtype rag_question_type(const char *question);
const char *rag_qtype_name(rag_qtype t);     /* "who", "when", "how many", ... */

typedef enum {
    RAG_EV_SENTENCE = 0,
    RAG_EV_ROW,                 /* a table row */
    RAG_EV_ITEM,                /* a list item */
} rag_evidence_kind;

const char *rag_evidence_kind_str(rag_evidence_kind k);  /* "sentence", "row", "item" */

/* A byte span [start, end) of an evidence text. */
typedef struct {
    size_t start, end;
} rag_span;

/* One evidence unit. Strings and marks owned (rag_evidence_release). */
typedef struct {
    int source;                 /* number of the source it comes from
                                   (rag_source.number); 0 when that source was
                                   not given to the model (left out of the
                                   prompt for lack of room) */
    int64_t chunk_id;
    int index;                  /* the passage's index (rag_source.index) */
    rag_evidence_kind kind;
    char *text;                 /* the unit as shown: whitespace collapsed,
                                   Markdown emphasis and list markers removed */
    size_t text_len;
    size_t offset, length;      /* its bytes in the source's passage text */
    char *uri;                  /* the document's URI */
    char *heading;              /* the passage's heading path, "" when none */
    int line_start, line_end;   /* lines of the unit in the document (0: n/a) */
    int page;                   /* PDF page (slide, sheet, chapter), 0: n/a */
    char type[8];               /* the document's type ("md", "docx", ...), "" unknown */
    float score;
    rag_span *marks;            /* words of text that match the question */
    size_t n_marks;
} rag_evidence;

void rag_evidence_release(rag_evidence *e);
/* Releases n units and frees the array (NULL is a no-op). */
void rag_evidence_free(rag_evidence *e, size_t n);

/* A passage to choose from (borrowed strings). */
typedef struct {
    int number;                 /* source number, 1-based */
    int rank;                   /* retrieval rank, 1 = best */
    int64_t chunk_id;
    int index;                  /* which index the chunk is in (chunk ids are per index) */
    const char *uri;
    const char *heading;        /* may be NULL */
    const char *text;
    size_t text_len;
    int line_start, line_end, page;
    const char *type;           /* the document's type, NULL unknown */
} rag_evidence_passage;

typedef struct {
    int max;                    /* units returned, default 3 (1..32) */
    float min_ratio;            /* a unit after the first is kept only when its
                                   score is at least min_ratio * the best
                                   (default 0.5; 0 = always max units) */
    const char *context;        /* an earlier question of the conversation: its
                                   terms count at half weight (may be NULL) */
} rag_evidence_params;

rag_evidence_params rag_evidence_default_params(void);

/* Ranks the units of passages[0..n) for question and writes the best (at
 * most p->max, best first, each with at least one of the question's content
 * terms) to *out (owned: rag_evidence_free(*out, *n_out)). z analyses as the
 * index does (idx_analyzer_new(store)), or standalone (idx_analyzer_new(NULL)).
 * Returns RAG_OK (possibly with *n_out = 0), RAG_ERR_ARG or RAG_ERR_NOMEM. */
int rag_evidence_select(idx_analyzer *z, const char *question, const rag_evidence_passage *passages, size_t n,
                        const rag_evidence_params *p, rag_evidence **out, size_t *n_out);

/* (Re)computes e->marks for e->text (after a guardrail changed the text). */
int rag_evidence_mark(idx_analyzer *z, const char *question, rag_evidence *e);

/* How a unit is cited, as sources are: "SHOWN:first-last" (lines), "SHOWN#page=N",
 * a web page's URL as "URL#Heading_anchor" (its last heading), else SHOWN.
 * shown is the path to display for e->uri (NULL: e->uri). */
void rag_evidence_cite(const rag_evidence *e, const char *shown, char *buf, size_t n);

/* The label of quoted evidence in the question's language ("Quoted from
 * the documents (no model ran):", German, French), and its quotation marks
 * (“ ”, „ “, « »). Static strings. */
const char *rag_evidence_label(const char *question);
void rag_evidence_quotes(const char *question, const char **open, const char **close);

/* The extractive answer: a label in the question's language ("Quoted from
 * the documents (no model ran):"), then each unit quoted with its source
 * number, one per line. Owned, free(); NULL on OOM. */
char *rag_evidence_answer(const char *question, const rag_evidence *e, size_t n);

/* SQuAD-style scores of a predicted answer against gold answers (the best
 * over them): exact match and token F1 after lower-casing, removing
 * punctuation and the articles a/an/the (also der/die/das/ein/eine and
 * le/la/les/un/une), and collapsing whitespace. */
void rag_qa_score(const char *pred, const char *const *gold, size_t n_gold, double *em, double *f1);
/* Does text hold answer (case-insensitive for ASCII, whitespace collapsed)? */
bool rag_qa_contains(const char *text, size_t len, const char *answer);

#endif
