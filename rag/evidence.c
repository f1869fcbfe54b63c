/* evidence.c — the answering sentences of the retrieved passages, chosen
 * without the model (rag/evidence.h): units (sentences, table rows, list
 * items), the question's type, lexical scoring over the index's own text
 * analysis, citations, the extractive answer and SQuAD-style scores. */
#include "rag/rag.h"
#include "rag/util_internal.h"

#include "index/index.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_QTERMS 64           /* question terms kept (bit set per unit) */
#define MAX_TERM 64             /* bytes of a term */
#define MAX_UNITS 4096          /* units considered per question */
#define LONG_UNIT 480           /* a list item or row longer than this is cut into sentences */
/* Weights of the score (docs/answering.md, "Evidence"): the unit's share of
 * the question is 0..1; these add to it. Measured on XQuAD (English),
 * chosen where the figures are flat rather than at a peak. */
#define W_PASSAGE 0.3f          /* the passage's share of the question */
#define W_PROXIMITY 0.1f        /* question words together, in order */
#define W_TYPE 0.15f            /* what the question type asks for is there */
#define W_RANK 0.06f            /* per retrieval rank below the first (up to 5) */
#define W_POSITION 0.005f       /* per unit before it in its passage (up to 6) */
#define MAX_MATCHES 128         /* matched word positions remembered per unit */

/* ------------------------------------------------------------ question type */

/* Lower-cased ASCII copy of the first n bytes of s, words separated by one space. */
static void lower_words(const char *s, char *out, size_t cap) {
    size_t o = 0;
    bool sp = true;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 2 < cap; p++) {
        unsigned char c = *p;
        bool word = isalnum(c) || c >= 0x80 || c == '\'';
        if (!word) {
            if (!sp) out[o++] = ' ';
            sp = true;
            continue;
        }
        out[o++] = (char)tolower(c);
        sp = false;
    }
    while (o && out[o - 1] == ' ') o--;
    out[o] = 0;
}

/* Position of phrase (whole words) in the space-separated word list w, or -1. */
static long phrase_at(const char *w, const char *phrase) {
    size_t n = strlen(phrase);
    for (const char *p = w; (p = strstr(p, phrase)); p++) {
        bool lo = p == w || p[-1] == ' ';
        bool hi = p[n] == 0 || p[n] == ' ';
        if (lo && hi) return p - w;
    }
    return -1;
}

static bool has_phrase(const char *w, const char *phrase) { return phrase_at(w, phrase) >= 0; }

/* Earliest position of any phrase of list in w (-1 none); *len gets the
 * length of the phrase found there (the longest one at that position). */
static long first_phrase(const char *w, const char *const *list, size_t *len) {
    long best = -1;
    for (; *list; list++) {
        long at = phrase_at(w, *list);
        size_t n = strlen(*list);
        if (at >= 0 && (best < 0 || at < best || (at == best && n > *len))) { best = at; *len = n; }
    }
    return best;
}

/* The type of the question's lower-cased words w, and where in w the
 * question phrase that decided it is (*at = -1: none). */
static rag_qtype qtype_of(const char *w, long *at, size_t *at_len) {
    static const char *const count[] = {"how many", "wie viele", "wieviele", "wie vielen", "combien de", "combien d'",
                                        "what number of", "welche anzahl", NULL};
    static const char *const quantity[] = {
        "how much", "how long", "how far", "how old", "how big", "how large", "how high", "how tall", "how deep",
        "how wide", "how often", "how heavy", "how fast", "what percentage", "what percent", "what proportion",
        "what share", "what fraction", "what amount", "what size", "what age", "wie viel", "wieviel", "wie lange",
        "wie hoch", "wie alt", "wie weit", "wie groß", "wie gross", "wie oft", "wie teuer", "wie schwer",
        "wie schnell", "wie tief", "wie breit", "wie lang", "wie viel prozent", "welcher anteil", "combien",
        "quel âge", "quelle taille", NULL};
    static const char *const when[] = {"when", "what year", "which year", "what date", "what day", "what time",
                                       "what century", "what decade", "which century", "what month", "wann",
                                       "in welchem jahr", "welches jahr", "welchem jahr", "an welchem tag",
                                       "welcher tag", "welchem tag", "welcher wochentag", "welchem datum",
                                       "um wie viel uhr", "in welchem jahrhundert", "quand", "quelle année",
                                       "en quelle année", NULL};
    static const char *const where[] = {"where", "in what country", "which country", "what country", "in which city",
                                        "what city", "which city", "what region", "wo", "wohin",
                                        "woher", "in welchem land", "in welcher stadt", "welches land",
                                        "welche stadt", "où", NULL};
    static const char *const who[] = {"who", "whom", "whose", "wer", "wem", "wen", "wessen", "qui", NULL};
    static const char *const why[] = {"why", "warum", "weshalb", "wieso", "weswegen", "pourquoi", NULL};
    /* the question word that comes first decides ("how old was he when ..."
     * asks for an age); at one position the longest phrase ("wie viele"
     * over "wie viel", "in welchem jahr" over "in welchem") */
    static const struct { const char *const *list; rag_qtype t; } types[] = {
        {count, RAG_QT_COUNT}, {when, RAG_QT_WHEN}, {quantity, RAG_QT_QUANTITY},
        {who, RAG_QT_WHO}, {where, RAG_QT_WHERE}, {why, RAG_QT_WHY},
    };
    long best = -1;
    size_t best_len = 0;
    rag_qtype t = RAG_QT_OTHER;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t len = 0;
        long at = first_phrase(w, types[i].list, &len);
        if (at >= 0 && (best < 0 || at < best || (at == best && len > best_len))) {
            best = at;
            best_len = len;
            t = types[i].t;
        }
    }
    *at = best;
    *at_len = best_len;
    return t;
}

rag_qtype rag_question_type(const char *question) {
    char w[1024];
    long at;
    size_t len;
    lower_words(question ? question : "", w, sizeof w);
    return qtype_of(w, &at, &len);
}

const char *rag_qtype_name(rag_qtype t) {
    switch (t) {
    case RAG_QT_WHO: return "who";
    case RAG_QT_WHEN: return "when";
    case RAG_QT_COUNT: return "how many";
    case RAG_QT_QUANTITY: return "how much";
    case RAG_QT_WHERE: return "where";
    case RAG_QT_WHY: return "why";
    case RAG_QT_OTHER:
    case RAG_QT_N: break;
    }
    return "other";
}

const char *rag_evidence_kind_str(rag_evidence_kind k) {
    return k == RAG_EV_ROW ? "row" : k == RAG_EV_ITEM ? "item" : "sentence";
}

/* ------------------------------------------------------------ features */

/* A word of a unit's text, for the type features. */
typedef struct {
    const char *p;
    size_t n;
} wordref;

static bool is_digits(const char *p, size_t n) {
    if (!n) return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)p[i])) return false;
    return true;
}

/* Number words (en, de, fr) that stand for a count or amount. */
static const char *const number_words[] = {
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen",
    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty", "forty", "fifty",
    "sixty", "seventy", "eighty", "ninety", "hundred", "hundreds", "thousand", "thousands", "million", "millions",
    "billion", "billions", "trillion", "dozen", "dozens", "half", "once", "twice", "single", "both", "several",
    "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn", "elf", "zwölf", "zwanzig",
    "dreißig", "vierzig", "fünfzig", "hundert", "tausend", "million", "millionen", "milliarde", "milliarden",
    "halb", "halbe", "hälfte", "einmal", "zweimal", "dreimal", "beide", "beiden", "mehrere", "deux", "trois",
    "quatre", "cinq", "sept", "huit", "neuf", "dix", "cent", "mille", NULL};

/* Units and currencies after (or before) a number. */
static const char *const unit_words[] = {
    "percent", "per", "cent", "prozent", "pourcent", "eur", "euro", "euros", "usd", "dollar", "dollars", "pound",
    "pounds", "chf", "franken", "km", "m", "cm", "mm", "kg", "g", "t", "mg", "mb", "gb", "tb", "kb", "ghz", "mhz",
    "kw", "mw", "w", "v", "mph", "kmh", "miles", "mile", "meters", "metres", "meter", "metre", "feet", "foot",
    "inches", "tons", "tonnes", "acres", "hectares", "years", "year", "jahre", "jahren", "jahr", "days", "day",
    "tage", "tagen", "tag", "hours", "hour", "stunden", "stunde", "minutes", "minute", "minuten", "seconds",
    "sekunden", "weeks", "week", "wochen", "woche", "months", "month", "monate", "monaten", "monat", "people",
    "persons", "menschen", "personen", "times", "mal", "zeichen", "characters", "liter", "litres", "liters",
    "grad", "degrees", "°c", "ans", "jours", "heures", NULL};

static const char *const months[] = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "januar", "jänner", "februar", "märz", "mai", "juni", "juli", "oktober",
    "dezember", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "montag",
    "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag", "century", "centuries", "decade",
    "jahrhundert", "jahrhunderts", "jahrzehnt", "uhr", "o'clock", "janvier", "février", "mars", "avril", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre", "siècle", NULL};

static const char *const cause_words[] = {"because", "due", "since", "so", "order", "result", "reason",
                                          "weil", "da", "denn", "damit", "deshalb", "daher", "wegen",
                                          "aufgrund", "grund", "parce", "car", "afin", NULL};

static const char *const place_preps[] = {"in", "at", "from", "near", "to", "into", "on", "im", "nach", "bei",
                                          "aus", "auf", "am", "zum", "zur", "unter", "à", "au", "aux", "en",
                                          "dans", NULL};

static const char *const person_titles[] = {"frau", "herr", "herrn", "dr", "prof", "mr", "mrs", "ms", "sir",
                                            "king", "queen", "president", "könig", "königin", NULL};

static bool in_list(const char *p, size_t n, const char *const *list) {
    char low[64];
    if (n == 0 || n >= sizeof low) return false;
    for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)p[i]);
    low[n] = 0;
    for (; *list; list++)
        if (strcmp(low, *list) == 0) return true;
    return false;
}

/* Is word p[0..n) (case-insensitive for ASCII) one of the question's words? */
static bool in_question(const char *qwords, const char *p, size_t n) {
    char low[128];
    if (n == 0 || n >= sizeof low) return false;
    for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)p[i]);
    low[n] = 0;
    return has_phrase(qwords, low);
}

static bool is_upper_start(const char *p) {
    unsigned char c = (unsigned char)p[0];
    if (c >= 'A' && c <= 'Z') return true;
    /* Latin-1 supplement capitals À..Þ (C3 80..C3 9E, not ×) */
    if (c == 0xC3) {
        unsigned char d = (unsigned char)p[1];
        return d >= 0x80 && d <= 0x9E && d != 0x97;
    }
    return false;
}

/* Splits text into words (letters, digits, and . , : ' inside numbers). */
static size_t split_words(const char *t, size_t len, wordref *w, size_t cap) {
    size_t n = 0, i = 0;
    while (i < len && n < cap) {
        unsigned char c = (unsigned char)t[i];
        if (!(isalnum(c) || c >= 0x80 || c == '%' || c == '$')) { i++; continue; }
        size_t s = i;
        if (c == '%' || c == '$') { w[n++] = (wordref){t + s, 1}; i++; continue; }
        if (c == 0xE2 && i + 2 < len && (unsigned char)t[i + 1] == 0x82 && (unsigned char)t[i + 2] == 0xAC) {
            w[n++] = (wordref){t + s, 3};       /* € */
            i += 3;
            continue;
        }
        while (i < len) {
            unsigned char d = (unsigned char)t[i];
            if (isalnum(d) || (d >= 0x80 && !(d == 0xE2 && i + 2 < len && (unsigned char)t[i + 1] == 0x80))) { i++; continue; }
            /* 1.234,56 — 10:30 — 2024-03-01 — o'clock: joiners between two word characters */
            if ((d == '.' || d == ',' || d == ':' || d == '-' || d == '/' || d == '\'') && i + 1 < len &&
                isalnum((unsigned char)t[i + 1]) && i > s && isalnum((unsigned char)t[i - 1]) &&
                (isdigit((unsigned char)t[i - 1]) || d == '\'' || d == '-')) {
                i++;
                continue;
            }
            break;
        }
        w[n++] = (wordref){t + s, i - s};
    }
    return n;
}

typedef struct {
    bool number, year, date, measure, name, place, cause;
} features;

/* Number-like: digits with joiners ("1.234,56", "10:30", "2024-03-01", "3rd"). */
static bool numberish(const char *p, size_t n) {
    if (!n || !isdigit((unsigned char)p[0])) return false;
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += isdigit((unsigned char)p[i]) != 0;
    return d * 2 >= n;
}

/* What the unit text holds that the question (its lower-cased words qwords)
 * does not. */
static features unit_features(const char *t, size_t len, const char *qwords, bool german) {
    features f;
    memset(&f, 0, sizeof f);
    wordref w[256];
    size_t n = split_words(t, len, w, sizeof w / sizeof w[0]);
    for (size_t i = 0; i < n; i++) {
        const char *p = w[i].p;
        size_t k = w[i].n;
        bool inq = in_question(qwords, p, k);
        if (inq) continue;
        if (numberish(p, k)) {
            f.number = true;
            if (k == 4 && is_digits(p, 4) && (p[0] == '1' || (p[0] == '2' && p[1] == '0'))) f.year = true;
            if (memchr(p, ':', k) || (memchr(p, '.', k) && k >= 5 && k <= 10 && p[k - 1] != '.' &&
                                      (strchr(p + (k > 6 ? k - 5 : 0), '.') != NULL) && !memchr(p, ',', k) &&
                                      (is_digits(p + k - 4, 4) || is_digits(p + k - 2, 2))))
                f.date = true;
            if (i + 1 < n && in_list(w[i + 1].p, w[i + 1].n, unit_words)) f.measure = true;
            if (i > 0 && in_list(w[i - 1].p, w[i - 1].n, unit_words)) f.measure = true;
            if (i + 1 < n && (w[i + 1].p[0] == '%' || (unsigned char)w[i + 1].p[0] == 0xE2 || w[i + 1].p[0] == '$'))
                f.measure = true;
            if (i > 0 && (w[i - 1].p[0] == '$' || (unsigned char)w[i - 1].p[0] == 0xE2)) f.measure = true;
            if (i + 1 < n && in_list(w[i + 1].p, w[i + 1].n, months)) f.date = true;
            if (i > 0 && in_list(w[i - 1].p, w[i - 1].n, months)) f.date = true;
            continue;
        }
        if (in_list(p, k, number_words)) { f.number = true; if (i + 1 < n && in_list(w[i + 1].p, w[i + 1].n, unit_words)) f.measure = true; }
        if (in_list(p, k, months)) f.date = true;
        if (in_list(p, k, cause_words)) f.cause = true;
        if (is_upper_start(p) && k > 1) {
            bool initial = i == 0;
            if (i > 0 && in_list(w[i - 1].p, w[i - 1].n, place_preps)) f.place = true;
            /* German capitalises every noun: a name there is two capitalised
             * words in a row, or one after a title */
            if (!german) {
                if (!initial && !in_list(p, k, months)) f.name = true;
            } else if (i + 1 < n && is_upper_start(w[i + 1].p) && !in_question(qwords, w[i + 1].p, w[i + 1].n) &&
                       !initial) {
                f.name = true;
            } else if (i > 0 && in_list(w[i - 1].p, w[i - 1].n, person_titles)) {
                f.name = true;
            }
            if (i > 0 && i + 1 < n && w[i - 1].p[0] == 'd' && in_list(w[i - 1].p, w[i - 1].n, place_preps)) f.place = true;
        }
        if (german && i > 1 && (in_list(w[i - 2].p, w[i - 2].n, place_preps)) && is_upper_start(p) &&
            (in_list(w[i - 1].p, w[i - 1].n, (const char *const[]){"der", "dem", "den", "die", "das", NULL})))
            f.place = true;
    }
    return f;
}

/* How well the features answer the question type: 0..1. */
static float type_match(rag_qtype t, const features *f) {
    switch (t) {
    case RAG_QT_WHEN: return f->year || f->date ? 1.0f : f->number ? 0.3f : 0.0f;
    case RAG_QT_COUNT: return f->number ? 1.0f : 0.0f;
    case RAG_QT_QUANTITY: return f->measure ? 1.0f : f->number ? 0.7f : 0.0f;
    case RAG_QT_WHO: return f->name ? 1.0f : 0.0f;
    case RAG_QT_WHERE: return f->place ? 1.0f : f->name ? 0.4f : 0.0f;
    case RAG_QT_WHY: return f->cause ? 1.0f : 0.0f;
    case RAG_QT_OTHER:
    case RAG_QT_N: break;
    }
    return 0.0f;
}

/* ------------------------------------------------------------ terms */

typedef struct {
    char t[MAX_TERM];
    uint8_t len;
    float w;                    /* weight from the question (1, or 0.5 for context) */
    int order;                  /* position in the question (proximity) */
    int df;                     /* units holding it */
} qterm;

typedef struct {
    qterm q[MAX_QTERMS];
    int n;
    int pos;                    /* word position while analysing */
    bool context;
} qset;

static int qterm_find(const qset *qs, const char *t, size_t n) {
    if (n >= MAX_TERM) return -1;
    for (int i = 0; i < qs->n; i++)
        if (qs->q[i].len == n && memcmp(qs->q[i].t, t, n) == 0) return i;
    return -1;
}

static bool numeric_term(const char *t, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)t[i])) return false;
    return n > 0;
}

static int q_cb(void *user, const char *t, size_t n, int start, int end, bool colocated) {
    (void)start; (void)end;
    qset *qs = user;
    if (!colocated) qs->pos++;
    if (n < 2 && !numeric_term(t, n)) return 0;
    if (n >= MAX_TERM) return 0;
    int i = qterm_find(qs, t, n);
    if (i >= 0) {
        if (!qs->context && qs->q[i].w < 1) qs->q[i].w = 1;
        return 0;
    }
    if (qs->n >= MAX_QTERMS) return 0;
    qterm *q = &qs->q[qs->n++];
    memcpy(q->t, t, n);
    q->t[n] = 0;
    q->len = (uint8_t)n;
    /* a compound part weighs less than a whole word: the whole one matched is better */
    q->w = (qs->context ? 0.5f : 1.0f) * (colocated ? 0.7f : 1.0f);
    q->order = qs->context ? -1 : qs->pos;
    return 0;
}

/* ------------------------------------------------------------ units */

typedef struct {
    int passage;                /* index into the passages */
    size_t a, b;                /* bytes in the passage text */
    rag_evidence_kind kind;
    int pos;                    /* position of the unit in its passage */
    int ctx;                    /* index into ctx texts (heading/table header), -1 none */
    char *disp;                 /* display text (owned) */
    size_t dlen;
    uint64_t has, has_ctx;      /* question terms in the unit, in its context */
    float score;
} unit;

typedef struct {
    unit *u;
    size_t n, cap;
    char **ctx;                 /* context texts: headings, table headers (owned) */
    size_t n_ctx, cap_ctx;
    bool oom;
} units;

static void units_release(units *us) {
    for (size_t i = 0; i < us->n; i++) free(us->u[i].disp);
    free(us->u);
    for (size_t i = 0; i < us->n_ctx; i++) free(us->ctx[i]);
    free(us->ctx);
}

/* Builds the display text of t[a..b): whitespace runs collapsed, "**",
 * "__" and backticks removed, a leading list marker or table pipes removed. */
static char *display(const char *t, size_t a, size_t b, rag_evidence_kind kind, size_t *out_len) {
    while (a < b && isspace((unsigned char)t[a])) a++;
    while (b > a && isspace((unsigned char)t[b - 1])) b--;
    if (kind == RAG_EV_ITEM) {
        size_t i = a;
        if (i < b && (t[i] == '-' || t[i] == '*' || t[i] == '+')) i++;
        else if (i + 2 < b && (unsigned char)t[i] == 0xE2 && (unsigned char)t[i + 1] == 0x80 && (unsigned char)t[i + 2] == 0xA2) i += 3;
        else {
            while (i < b && isdigit((unsigned char)t[i]) && i - a < 3) i++;
            if (i > a && i < b && (t[i] == '.' || t[i] == ')')) i++;
            else i = a;
        }
        if (i > a && i < b && (t[i] == ' ' || t[i] == '\t')) a = i;
    }
    if (kind == RAG_EV_ROW) {
        if (a < b && t[a] == '|') a++;
        if (b > a && t[b - 1] == '|') b--;
    }
    char *d = malloc(b - a + 1);
    if (!d) return NULL;
    size_t o = 0;
    bool sp = true;
    for (size_t i = a; i < b; i++) {
        char c = t[i];
        if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
            if (!sp) d[o++] = ' ';
            sp = true;
            continue;
        }
        if ((c == '*' || c == '_') && i + 1 < b && t[i + 1] == c) { i++; continue; }
        if (c == '`') continue;
        d[o++] = c;
        sp = false;
    }
    while (o && d[o - 1] == ' ') o--;
    d[o] = 0;
    *out_len = o;
    return d;
}

static int add_ctx(units *us, const char *t, size_t a, size_t b, rag_evidence_kind kind) {
    if (us->n_ctx == us->cap_ctx) {
        size_t nc = us->cap_ctx ? us->cap_ctx * 2 : 16;
        char **c = realloc(us->ctx, nc * sizeof *c);
        if (!c) { us->oom = true; return -1; }
        us->ctx = c;
        us->cap_ctx = nc;
    }
    size_t dl = 0;
    char *d = display(t, a, b, kind, &dl);
    if (!d) { us->oom = true; return -1; }
    us->ctx[us->n_ctx] = d;
    return (int)us->n_ctx++;
}

static void add_unit(units *us, int passage, const char *t, size_t a, size_t b, rag_evidence_kind kind, int ctx) {
    if (us->oom || us->n >= MAX_UNITS) return;
    while (a < b && isspace((unsigned char)t[a])) a++;
    while (b > a && isspace((unsigned char)t[b - 1])) b--;
    if (a >= b) return;
    if (us->n == us->cap) {
        size_t nc = us->cap ? us->cap * 2 : 64;
        unit *u = realloc(us->u, nc * sizeof *u);
        if (!u) { us->oom = true; return; }
        us->u = u;
        us->cap = nc;
    }
    unit *u = &us->u[us->n];
    memset(u, 0, sizeof *u);
    u->passage = passage;
    u->a = a;
    u->b = b;
    u->kind = kind;
    u->ctx = ctx;
    if (!(u->disp = display(t, a, b, kind, &u->dlen))) { us->oom = true; return; }
    /* too little to answer anything: a lone word, a separator */
    size_t letters = 0;
    for (size_t i = 0; i < u->dlen; i++) letters += isalnum((unsigned char)u->disp[i]) || (unsigned char)u->disp[i] >= 0x80;
    if (letters < 3) { free(u->disp); return; }
    u->pos = 0;
    for (size_t i = us->n; i > 0 && us->u[i - 1].passage == passage; i--) u->pos++;
    us->n++;
}

/* Abbreviations after which a period does not end a sentence (lower case). */
static const char *const abbrevs[] = {
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "eg", "ie", "no", "nos", "inc", "ltd", "co",
    "corp", "mt", "ft", "approx", "ca", "cf", "al", "fig", "vol", "ed", "gen", "gov", "col", "lt", "sgt", "rev",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "bzw", "evtl", "ggf",
    "inkl", "exkl", "nr", "str", "usw", "vgl", "hr", "fr", "abs", "art", "mio", "mrd", "tel", "gem", "sog",
    "bspw", "zb", "dh", "ua", "uvm", "sa", "so", "zzgl", "max", "min", "mind", "ggü", "geb", "bd", "hrsg", "jh",
    "chr", "od", "op", "resp", "mme", "mlle", "env", NULL};

/* Does the period at t[i] end a sentence? */
static bool sentence_end(const char *t, size_t a, size_t b, size_t i, bool german) {
    size_t j = i + 1;
    /* closing quotes and brackets */
    while (j < b) {
        unsigned char c = (unsigned char)t[j];
        if (c == '"' || c == '\'' || c == ')' || c == ']') { j++; continue; }
        if (c == 0xE2 && j + 2 < b && (unsigned char)t[j + 1] == 0x80 &&
            ((unsigned char)t[j + 2] == 0x9D || (unsigned char)t[j + 2] == 0x99 || (unsigned char)t[j + 2] == 0x9C)) { j += 3; continue; }
        if (c == 0xC2 && j + 1 < b && (unsigned char)t[j + 1] == 0xBB) { j += 2; continue; }
        break;
    }
    if (j >= b) return true;
    if (!isspace((unsigned char)t[j])) return false;
    while (j < b && isspace((unsigned char)t[j])) j++;
    if (j >= b) return true;
    if (islower((unsigned char)t[j])) return false;
    if (t[i] != '.') return true;
    /* the word before the period */
    size_t s = i;
    while (s > a && !isspace((unsigned char)t[s - 1]) && t[s - 1] != '(' && t[s - 1] != '"') s--;
    size_t wl = i - s;
    if (wl == 0) return true;
    if (wl == 1 && isalpha((unsigned char)t[s])) return false;             /* an initial: "J. Smith", "z. B." */
    if (memchr(t + s, '.', wl)) return false;                               /* "e.g.", "U.S.", "z.B." */
    if (german && wl <= 3 && is_digits(t + s, wl)) return false;            /* "die 2. Klasse", "am 3. Mai" */
    char low[16];
    if (wl < sizeof low) {
        for (size_t k = 0; k < wl; k++) low[k] = (char)tolower((unsigned char)t[s + k]);
        low[wl] = 0;
        for (const char *const *ab = abbrevs; *ab; ab++)
            if (strcmp(low, *ab) == 0) return false;
    }
    return true;
}

/* Words that point back to the sentence before (en, de, fr). */
static const char *const anaphors[] = {"he", "she", "it", "they", "his", "her", "its", "their", "this", "these",
                                       "those", "him", "them", "such", "there", "er", "sie", "es", "ihr", "ihre",
                                       "sein", "seine", "dies", "diese", "dieser", "dieses", "dort", "dabei",
                                       "il", "elle", "ils", "elles", "ce", "cette", "ces", "son", "sa", "ses",
                                       "leur", "leurs", NULL};

/* Does t[a..b) point back: an anaphor among its first ANAPHOR_WORDS words
 * ("He ...", "All of this ...", "In this way ...")? */
#define ANAPHOR_WORDS 5
static bool starts_anaphoric(const char *t, size_t a, size_t b) {
    for (int w = 0; w < ANAPHOR_WORDS && a < b; w++) {
        while (a < b && !isalpha((unsigned char)t[a]) && (unsigned char)t[a] < 0x80) a++;
        size_t e = a;
        while (e < b && (isalpha((unsigned char)t[e]) || (unsigned char)t[e] >= 0x80)) e++;
        if (e > a && in_list(t + a, e - a, anaphors)) return true;
        a = e;
    }
    return false;
}

/* Cuts t[a..b) (one paragraph or a long item) into sentences. A sentence
 * that starts by pointing back ("He", "Sie", "These") is a unit together
 * with the sentence before it: alone it does not say who or what. */
static void add_sentences(units *us, int passage, const char *t, size_t a, size_t b, rag_evidence_kind kind,
                          int ctx, bool german) {
    size_t s = a, prev = (size_t)-1;
    for (size_t i = a; i < b; i++) {
        char c = t[i];
        bool term = c == '.' || c == '!' || c == '?';
        if (!term && (unsigned char)c == 0xE2 && i + 2 < b && (unsigned char)t[i + 1] == 0x80 && (unsigned char)t[i + 2] == 0xA6) {
            term = true;    /* … */
            i += 2;
        }
        if (!term) continue;
        /* "3.5", "1.234": a period between digits */
        if (c == '.' && i + 1 < b && isdigit((unsigned char)t[i + 1])) continue;
        if (!sentence_end(t, a, b, i, german)) continue;
        size_t e = i + 1;
        while (e < b && !isspace((unsigned char)t[e])) e++;
        add_unit(us, passage, t, prev != (size_t)-1 && starts_anaphoric(t, s, e) ? prev : s, e, kind, ctx);
        kind = kind == RAG_EV_ITEM ? RAG_EV_SENTENCE : kind;
        prev = s;
        s = e;
        i = e - 1;
    }
    add_unit(us, passage, t, prev != (size_t)-1 && starts_anaphoric(t, s, b) ? prev : s, b, kind, ctx);
}

static bool blank_line(const char *t, size_t a, size_t b) {
    for (size_t i = a; i < b; i++)
        if (!isspace((unsigned char)t[i])) return false;
    return true;
}

static bool list_marker(const char *t, size_t a, size_t b) {
    size_t i = a;
    while (i < b && (t[i] == ' ' || t[i] == '\t')) i++;
    if (i + 1 < b && (t[i] == '-' || t[i] == '*' || t[i] == '+') && (t[i + 1] == ' ' || t[i + 1] == '\t')) return true;
    if (i + 3 < b && (unsigned char)t[i] == 0xE2 && (unsigned char)t[i + 1] == 0x80 && (unsigned char)t[i + 2] == 0xA2) return true;
    size_t d = i;
    while (d < b && isdigit((unsigned char)t[d]) && d - i < 3) d++;
    return d > i && d + 1 < b && (t[d] == '.' || t[d] == ')') && t[d + 1] == ' ';
}

static bool table_sep(const char *t, size_t a, size_t b) {
    bool dash = false;
    for (size_t i = a; i < b; i++) {
        char c = t[i];
        if (c == '-') dash = true;
        else if (c != '|' && c != ':' && c != ' ' && c != '\t') return false;
    }
    return dash;
}

/* The open paragraph (or list item) of cut_passage, ended at end. */
static void flush_para(units *us, int pi, const char *t, size_t *para, size_t end, int ctx, bool german) {
    if (*para == (size_t)-1) return;
    add_sentences(us, pi, t, *para, end, RAG_EV_SENTENCE, ctx, german);
    *para = (size_t)-1;
}

static void flush_item(units *us, int pi, const char *t, size_t *item, size_t end, int ctx, bool german) {
    if (*item == (size_t)-1) return;
    if (end - *item > LONG_UNIT) add_sentences(us, pi, t, *item, end, RAG_EV_ITEM, ctx, german);
    else add_unit(us, pi, t, *item, end, RAG_EV_ITEM, ctx);
    *item = (size_t)-1;
}

/* Cuts one passage into units: paragraphs into sentences, table rows (the
 * header row as context), list items; heading lines become the context of
 * what follows them (besides the passage's own heading path). */
static void cut_passage(units *us, int pi, const char *t, size_t len, bool german) {
    size_t para = (size_t)-1;       /* start of the paragraph being collected */
    size_t item = (size_t)-1;       /* start of the list item being collected */
    int ctx = -1, table_ctx = -1;
    bool in_table = false;
    size_t ls = 0;
    while (ls <= len && !us->oom) {
        const char *nl = memchr(t + ls, '\n', len - ls);
        size_t le = nl ? (size_t)(nl - t) : len;
        size_t fs = ls;
        while (fs < le && (t[fs] == ' ' || t[fs] == '\t')) fs++;
        bool other = false;
        if (blank_line(t, ls, le)) {
            in_table = false;
        } else if (t[fs] == '#') {
            other = true;
        } else if (t[fs] == '|') {
            other = true;
        } else if (list_marker(t, ls, le)) {
            other = true;
        } else if (item != (size_t)-1 && fs > ls) {
            /* an indented continuation of the item */
        } else {
            flush_item(us, pi, t, &item, ls, ctx, german);
            if (para == (size_t)-1) para = ls;
            in_table = false;
        }
        if (blank_line(t, ls, le) || other) {
            flush_para(us, pi, t, &para, ls, ctx, german);
            flush_item(us, pi, t, &item, ls, ctx, german);
        }
        if (other && t[fs] == '#') {
            size_t h = fs;
            while (h < le && t[h] == '#') h++;
            ctx = add_ctx(us, t, h, le, RAG_EV_SENTENCE);
            in_table = false;
        } else if (other && t[fs] == '|') {
            if (table_sep(t, fs, le)) {
                /* the row above was the header: it becomes context, not a unit */
                if (us->n && us->u[us->n - 1].kind == RAG_EV_ROW && us->u[us->n - 1].passage == pi) {
                    unit *h = &us->u[--us->n];
                    table_ctx = add_ctx(us, t, h->a, h->b, RAG_EV_ROW);
                    free(h->disp);
                }
            } else {
                if (!in_table) table_ctx = -1;
                int c = table_ctx >= 0 ? table_ctx : ctx;
                if (le - fs > LONG_UNIT) add_sentences(us, pi, t, fs, le, RAG_EV_ROW, c, german);
                else add_unit(us, pi, t, fs, le, RAG_EV_ROW, c);
            }
            in_table = true;
        } else if (other) {
            item = fs;
            in_table = false;
        }
        if (!nl) break;
        ls = le + 1;
    }
    flush_para(us, pi, t, &para, len, ctx, german);
    flush_item(us, pi, t, &item, len, ctx, german);
}

/* ------------------------------------------------------------ scoring */

typedef struct {
    const qset *qs;
    uint64_t has;
    int pos;
    /* (word position, question term) of every match, for proximity */
    int mpos[MAX_MATCHES];
    int8_t mq[MAX_MATCHES];
    int nm;
    rag_span *marks;            /* when collecting marks */
    size_t n_marks, cap_marks;
    bool oom;
} match_state;

static int unit_cb(void *user, const char *t, size_t n, int start, int end, bool colocated) {
    match_state *m = user;
    if (!colocated) m->pos++;
    int q = qterm_find(m->qs, t, n);
    if (q < 0) return 0;
    m->has |= 1ull << q;
    if (m->nm < MAX_MATCHES) {
        m->mpos[m->nm] = m->pos;
        m->mq[m->nm] = (int8_t)q;
        m->nm++;
    }
    if (m->marks || m->cap_marks == (size_t)-1) {
        /* a compound part marks its whole word once */
        if (m->n_marks && m->marks[m->n_marks - 1].start == (size_t)start) return 0;
        if (m->n_marks == m->cap_marks || !m->marks) {
            size_t nc = m->marks ? m->cap_marks * 2 : 8;
            rag_span *s = realloc(m->marks, nc * sizeof *s);
            if (!s) { m->oom = true; return 1; }
            m->marks = s;
            m->cap_marks = nc;
        }
        m->marks[m->n_marks++] = (rag_span){(size_t)start, (size_t)end};
    }
    return 0;
}

/* Share (0..1) of consecutive question-term pairs that appear in the unit in
 * the question's order within three words. */
static float proximity(const qset *qs, const match_state *m) {
    int pairs = 0, hits = 0;
    for (int i = 0; i < qs->n; i++) {
        if (qs->q[i].order < 0) continue;
        /* the next question term in question order */
        int nx = -1;
        for (int j = 0; j < qs->n; j++)
            if (qs->q[j].order > qs->q[i].order && (nx < 0 || qs->q[j].order < qs->q[nx].order)) nx = j;
        if (nx < 0) continue;
        pairs++;
        bool found = false;
        for (int a = 0; a < m->nm && !found; a++) {
            if (m->mq[a] != i) continue;
            for (int b = 0; b < m->nm && !found; b++)
                if (m->mq[b] == nx && m->mpos[b] > m->mpos[a] && m->mpos[b] - m->mpos[a] <= 3) found = true;
        }
        hits += found;
    }
    return pairs ? (float)hits / (float)pairs : 0.0f;
}

static int cmp_unit(const void *x, const void *y) {
    const unit *a = *(const unit *const *)x, *b = *(const unit *const *)y;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->passage != b->passage) return a->passage - b->passage;
    return a->pos - b->pos;
}

rag_evidence_params rag_evidence_default_params(void) {
    rag_evidence_params p;
    memset(&p, 0, sizeof p);
    p.max = 3;
    p.min_ratio = 0.5f;
    return p;
}

void rag_evidence_release(rag_evidence *e) {
    if (!e) return;
    free(e->text);
    free(e->uri);
    free(e->heading);
    free(e->marks);
    memset(e, 0, sizeof *e);
}

void rag_evidence_free(rag_evidence *e, size_t n) {
    for (size_t i = 0; e && i < n; i++) rag_evidence_release(&e[i]);
    free(e);
}

static int count_nl(const char *t, size_t a, size_t b) {
    int n = 0;
    for (size_t i = a; i < b; i++) n += t[i] == '\n';
    return n;
}

/* Contract: see evidence.h. */
int rag_evidence_mark(idx_analyzer *z, const char *question, rag_evidence *e) {
    if (!z || !question || !e) return RAG_ERR_ARG;
    qset *qs = calloc(1, sizeof *qs);
    if (!qs) return RAG_ERR_NOMEM;
    int lang = idx_analyzer_detect(z, question, strlen(question));
    idx_analyze_query(z, question, strlen(question), lang, q_cb, qs);
    match_state m;
    memset(&m, 0, sizeof m);
    m.qs = qs;
    m.cap_marks = (size_t)-1;   /* collect */
    int ul = idx_analyzer_detect(z, e->text, e->text_len);
    idx_analyze(z, e->text, e->text_len, ul, unit_cb, &m);
    free(qs);
    if (m.oom) { free(m.marks); return RAG_ERR_NOMEM; }
    free(e->marks);
    e->marks = m.marks;
    e->n_marks = m.n_marks;
    return RAG_OK;
}

/* Contract: see evidence.h. */
int rag_evidence_select(idx_analyzer *z, const char *question, const rag_evidence_passage *ps, size_t n,
                        const rag_evidence_params *pp, rag_evidence **out, size_t *n_out) {
    int rc = RAG_OK;
    rag_evidence_params p = pp ? *pp : rag_evidence_default_params();
    units us;
    qset *qs = NULL;
    unit **order = NULL;
    rag_evidence *ev = NULL;
    size_t nev = 0;
    memset(&us, 0, sizeof us);
    *out = NULL;
    *n_out = 0;
    if (!z || !question || (n && !ps) || p.max < 1 || p.max > 32) return RAG_ERR_ARG;
    if (!(qs = calloc(1, sizeof *qs))) return RAG_ERR_NOMEM;
    /* 1. the question's content terms: stop words out, and the question
     * phrase too ("wie hoch", "how long", "what year": they say what kind
     * of answer is wanted, not what it is about); then the context's */
    size_t ql = strlen(question);
    int qlang = idx_analyzer_detect(z, question, ql);
    char qwords[1024], asked[1024];
    long at;
    size_t at_len;
    lower_words(question, qwords, sizeof qwords);
    rag_qtype qt = qtype_of(qwords, &at, &at_len);
    if (at >= 0 && at_len < strlen(qwords))
        snprintf(asked, sizeof asked, "%.*s %s", (int)at, qwords, qwords + at + at_len);
    else
        snprintf(asked, sizeof asked, "%s", qwords);
    if (idx_analyze_query(z, asked, strlen(asked), qlang, q_cb, qs) == IDX_ERR_NOMEM) { rc = RAG_ERR_NOMEM; goto done; }
    if (p.context && *p.context) {
        qs->context = true;
        idx_analyze_query(z, p.context, strlen(p.context), -1, q_cb, qs);
        qs->context = false;
    }
    if (qs->n == 0 || n == 0) goto done;
    {
        /* a question of stop words only ("What is it?") keeps them as its
         * terms (as a search does); it asks for nothing to quote */
        int stops = 0, words = 0;
        idx_lang_detect(question, ql, &stops);
        qset *all = calloc(1, sizeof *all);
        if (!all) { rc = RAG_ERR_NOMEM; goto done; }
        idx_analyze(z, question, ql, qlang, q_cb, all);
        words = all->pos;
        free(all);
        if (stops >= words) goto done;
    }
    bool qgerman = qlang == IDX_LANG_DE;

    /* 2. units of every passage, analysed */
    int *plang = calloc(n, sizeof *plang);
    uint64_t *phead = calloc(n, sizeof *phead);
    if (!plang || !phead) { free(plang); free(phead); rc = RAG_ERR_NOMEM; goto done; }
    for (size_t i = 0; i < n; i++) {
        const rag_evidence_passage *s = &ps[i];
        plang[i] = idx_analyzer_detect(z, s->text ? s->text : "", s->text ? s->text_len : 0);
        if (s->heading && *s->heading) {
            match_state m;
            memset(&m, 0, sizeof m);
            m.qs = qs;
            idx_analyze(z, s->heading, strlen(s->heading), plang[i], unit_cb, &m);
            phead[i] = m.has;
        }
        if (s->text) cut_passage(&us, (int)i, s->text, s->text_len, plang[i] == IDX_LANG_DE);
    }
    if (us.oom) { free(plang); free(phead); rc = RAG_ERR_NOMEM; goto done; }
    uint64_t *ctx_has = calloc(us.n_ctx ? us.n_ctx : 1, sizeof *ctx_has);
    match_state *ms = calloc(us.n ? us.n : 1, sizeof *ms);
    if (!ctx_has || !ms) { free(ctx_has); free(ms); free(plang); free(phead); rc = RAG_ERR_NOMEM; goto done; }
    for (size_t c = 0; c < us.n_ctx; c++) {
        match_state m;
        memset(&m, 0, sizeof m);
        m.qs = qs;
        idx_analyze(z, us.ctx[c], strlen(us.ctx[c]), -1, unit_cb, &m);
        ctx_has[c] = m.has;
    }
    for (size_t i = 0; i < us.n; i++) {
        unit *u = &us.u[i];
        ms[i].qs = qs;
        idx_analyze(z, u->disp, u->dlen, plang[u->passage], unit_cb, &ms[i]);
        u->has = ms[i].has;
        u->has_ctx = phead[u->passage] | (u->ctx >= 0 ? ctx_has[u->ctx] : 0);
        for (int q = 0; q < qs->n; q++)
            if (u->has & (1ull << q)) qs->q[q].df++;
    }
    /* 3. weights: rarer terms among the units weigh more (a smoothed idf) */
    float wsum = 0, w[MAX_QTERMS];
    for (int q = 0; q < qs->n; q++) {
        w[q] = qs->q[q].w * logf(1.0f + ((float)us.n + 1.0f) / ((float)qs->q[q].df + 0.5f));
        wsum += w[q];
    }
    /* 4. scores: the unit's own share of the question, and its passage's
     * (a sentence of a passage about the question's subject is likelier
     * than a stray sentence that shares a word) */
    float *plex = calloc(n, sizeof *plex);
    uint64_t *pcov = calloc(n, sizeof *pcov);
    if (!plex || !pcov) { free(plex); free(pcov); free(ctx_has); free(ms); free(phead); free(plang); rc = RAG_ERR_NOMEM; goto done; }
    for (size_t i = 0; i < us.n; i++) pcov[us.u[i].passage] |= us.u[i].has | us.u[i].has_ctx;
    for (size_t i = 0; i < n; i++)
        for (int q = 0; q < qs->n; q++)
            if (pcov[i] & (1ull << q)) plex[i] += w[q] / (wsum > 0 ? wsum : 1);
    for (size_t i = 0; i < us.n; i++) {
        unit *u = &us.u[i];
        if (!u->has) { u->score = -1; continue; }
        float lex = 0;
        for (int q = 0; q < qs->n; q++) {
            if (u->has & (1ull << q)) lex += w[q];
            else if (u->has_ctx & (1ull << q)) lex += w[q] / 3;
        }
        lex /= wsum > 0 ? wsum : 1;
        float prox = proximity(qs, &ms[i]);
        float tm = 0;
        if (qt != RAG_QT_OTHER) {
            features f = unit_features(u->disp, u->dlen, qwords, qgerman || plang[u->passage] == IDX_LANG_DE);
            tm = type_match(qt, &f);
        }
        int rank = ps[u->passage].rank > 0 ? ps[u->passage].rank : u->passage + 1;
        float posp = W_RANK * (float)(rank - 1 > 5 ? 5 : rank - 1) + W_POSITION * (float)(u->pos > 6 ? 6 : u->pos);
        /* the type bonus counts fully once a fifth of the question is there:
         * a stray number in an unrelated sentence is no answer */
        u->score = lex + W_PASSAGE * plex[u->passage] + W_PROXIMITY * prox +
                   W_TYPE * tm * (lex > 0.2f ? 1.0f : lex / 0.2f) - posp;
    }
    free(plex);
    free(pcov);
    free(ctx_has);
    free(ms);
    free(phead);
    /* 5. the best units */
    if (!(order = malloc((us.n ? us.n : 1) * sizeof *order))) { free(plang); rc = RAG_ERR_NOMEM; goto done; }
    size_t no = 0;
    for (size_t i = 0; i < us.n; i++)
        if (us.u[i].has) order[no++] = &us.u[i];
    qsort(order, no, sizeof *order, cmp_unit);
    size_t want = no < (size_t)p.max ? no : (size_t)p.max;
    if (want && !(ev = calloc(want, sizeof *ev))) { free(plang); rc = RAG_ERR_NOMEM; goto done; }
    for (size_t k = 0; k < no && nev < want; k++) {
        unit *u = order[k];
        if (k > 0 && p.min_ratio > 0 && u->score < p.min_ratio * order[0]->score) break;
        /* each sentence once: not a unit that overlaps one already chosen
         * (an anaphoric pair and its first sentence), nor the same words
         * again from the overlap of two passages */
        bool dup = false;
        for (size_t j = 0; j < k && !dup; j++) {
            const unit *c = order[j];
            if (!c->disp) {     /* chosen (its text moved to ev) */
                if (c->passage == u->passage) dup = c->a < u->b && u->a < c->b;
                else
                    for (size_t x = 0; x < nev && !dup; x++)
                        dup = ev[x].chunk_id == ps[c->passage].chunk_id && ev[x].index == ps[c->passage].index &&
                              ev[x].offset == c->a &&
                              (strstr(ev[x].text, u->disp) || strstr(u->disp, ev[x].text));
            }
        }
        if (dup) continue;
        const rag_evidence_passage *s = &ps[u->passage];
        rag_evidence *e = &ev[nev];
        e->source = s->number;
        e->chunk_id = s->chunk_id;
        e->index = s->index;
        e->kind = u->kind;
        e->text = u->disp;
        e->text_len = u->dlen;
        u->disp = NULL;
        e->offset = u->a;
        e->length = u->b - u->a;
        e->uri = strdup(s->uri ? s->uri : "");
        e->heading = strdup(s->heading ? s->heading : "");
        e->page = s->page;
        snprintf(e->type, sizeof e->type, "%s", s->type ? s->type : "");
        e->score = u->score;
        nev++;
        if (!e->uri || !e->heading) { rc = RAG_ERR_NOMEM; break; }
        if (s->line_start > 0) {
            /* the passage's lines hold its text exactly when its newlines
             * account for its span; else the passage's range is the best */
            if (count_nl(s->text, 0, s->text_len) == s->line_end - s->line_start) {
                e->line_start = s->line_start + count_nl(s->text, 0, u->a);
                e->line_end = s->line_start + count_nl(s->text, 0, u->b > u->a ? u->b - 1 : u->a);
            } else {
                e->line_start = s->line_start;
                e->line_end = s->line_end;
            }
        }
        match_state m;
        memset(&m, 0, sizeof m);
        m.qs = qs;
        m.cap_marks = (size_t)-1;
        idx_analyze(z, e->text, e->text_len, plang[u->passage], unit_cb, &m);
        if (m.oom) { free(m.marks); rc = RAG_ERR_NOMEM; break; }
        e->marks = m.marks;
        e->n_marks = m.n_marks;
    }
    free(plang);
done:
    if (rc != RAG_OK) { rag_evidence_free(ev, nev); ev = NULL; nev = 0; }
    *out = ev;
    *n_out = nev;
    free(order);
    units_release(&us);
    free(qs);
    return rc;
}

/* ------------------------------------------------------------ citation, answer */

/* Contract: see evidence.h. */
void rag_evidence_cite(const rag_evidence *e, const char *shown, char *buf, size_t n) {
    if (!n) return;
    const char *p = shown ? shown : e->uri ? e->uri : "";
    bool web = e->uri && (strncmp(e->uri, "http://", 7) == 0 || strncmp(e->uri, "https://", 8) == 0);
    char tail[64];
    if (!web && e->type[0]) {
        /* the unit of the type: "#slide=2", "#para=4-6", ":3-9", ... */
        rag_cite_tail(e->type, e->page, e->line_start, e->line_end, tail, sizeof tail);
        snprintf(buf, n, "%s%s", p, tail);
    } else if (e->page > 0) snprintf(buf, n, "%s#page=%d", p, e->page);
    else if (e->line_start > 0 && e->line_end > e->line_start) snprintf(buf, n, "%s:%d-%d", p, e->line_start, e->line_end);
    else if (e->line_start > 0) snprintf(buf, n, "%s:%d", p, e->line_start);
    else if (web && e->heading && *e->heading && !strchr(p, '#')) {
        /* the section of a wiki page: its last heading, as MediaWiki anchors it */
        const char *h = e->heading, *sep;
        while ((sep = strstr(h, " > "))) h = sep + 3;
        size_t o = (size_t)snprintf(buf, n, "%s#", p);
        for (; *h && o + 1 < n; h++) buf[o++] = *h == ' ' ? '_' : *h;
        buf[o < n ? o : n - 1] = 0;
    } else snprintf(buf, n, "%s", p);
}

const char *rag_evidence_label(const char *question) {
    const char *lang = rag_guess_language(question ? question : "");
    if (strcmp(lang, "de") == 0) return "Zitiert aus den Dokumenten (kein Modell hat geantwortet):";
    if (strcmp(lang, "fr") == 0) return "Cité des documents (aucun modèle n'a répondu) :";
    return "Quoted from the documents (no model ran):";
}

void rag_evidence_quotes(const char *question, const char **open, const char **close) {
    const char *lang = rag_guess_language(question ? question : "");
    if (strcmp(lang, "de") == 0) { *open = "„"; *close = "“"; }
    else if (strcmp(lang, "fr") == 0) { *open = "« "; *close = " »"; }
    else { *open = "“"; *close = "”"; }
}

/* Contract: see evidence.h. */
char *rag_evidence_answer(const char *question, const rag_evidence *e, size_t n) {
    const char *label = rag_evidence_label(question), *open, *close;
    rag_evidence_quotes(question, &open, &close);
    rag_buf b = {0};
    int rc = rag_buf_append(&b, label, strlen(label));
    for (size_t i = 0; rc == RAG_OK && i < n; i++) {
        char num[32];
        if (e[i].source > 0) snprintf(num, sizeof num, " [%d]", e[i].source);
        else num[0] = 0;
        if ((rc = rag_buf_append(&b, "\n", 1)) == RAG_OK && (rc = rag_buf_append(&b, open, strlen(open))) == RAG_OK &&
            (rc = rag_buf_append(&b, e[i].text, e[i].text_len)) == RAG_OK &&
            (rc = rag_buf_append(&b, close, strlen(close))) == RAG_OK)
            rc = rag_buf_append(&b, num, strlen(num));
    }
    if (rc != RAG_OK) { rag_buf_release(&b); return NULL; }
    return b.data;
}

/* ------------------------------------------------------------ SQuAD scores */

static bool article(const char *w, size_t n) {
    static const char *const arts[] = {"a", "an", "the", "der", "die", "das", "ein", "eine", "le", "la", "les",
                                       "un", "une", NULL};
    for (const char *const *a = arts; *a; a++)
        if (strlen(*a) == n && memcmp(*a, w, n) == 0) return true;
    return false;
}

/* Normalised tokens of s into buf (NUL-separated); returns their count. */
static size_t qa_tokens(const char *s, char *buf, size_t cap, const char **tok, size_t max_tok) {
    size_t o = 0, nt = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p && nt < max_tok) {
        while (*p && !(isalnum(*p) || *p >= 0x80)) p++;
        if (!*p) break;
        size_t start = o;
        while (*p && (isalnum(*p) || *p >= 0x80) && o + 1 < cap) {
            /* typographic punctuation (U+2010..U+206F) separates words too */
            if (*p == 0xE2 && p[1] == 0x80) break;
            buf[o++] = (char)tolower(*p++);
        }
        if (o == start) { p++; continue; }
        buf[o++] = 0;
        if (article(buf + start, o - start - 1)) { o = start; continue; }
        tok[nt++] = buf + start;
        if (o + 1 >= cap) break;
    }
    return nt;
}

/* Contract: see evidence.h. */
void rag_qa_score(const char *pred, const char *const *gold, size_t n_gold, double *em, double *f1) {
    static __thread char pb[8192], gb[8192];
    static __thread const char *pt[1024], *gt[1024];
    *em = 0;
    *f1 = 0;
    size_t np = qa_tokens(pred, pb, sizeof pb, pt, 1024);
    for (size_t g = 0; g < n_gold; g++) {
        size_t ng = qa_tokens(gold[g], gb, sizeof gb, gt, 1024);
        bool same = np == ng;
        for (size_t i = 0; same && i < np; i++) same = strcmp(pt[i], gt[i]) == 0;
        if (same) *em = 1;
        if (!np || !ng) { if (same && *f1 < 1) *f1 = 1; continue; }
        /* common tokens, as multisets */
        size_t common = 0;
        bool used[1024] = {false};
        for (size_t i = 0; i < np; i++)
            for (size_t j = 0; j < ng; j++)
                if (!used[j] && strcmp(pt[i], gt[j]) == 0) { used[j] = true; common++; break; }
        if (!common) continue;
        double prec = (double)common / (double)np, rec = (double)common / (double)ng;
        double f = 2 * prec * rec / (prec + rec);
        if (f > *f1) *f1 = f;
    }
}

/* Contract: see evidence.h. */
bool rag_qa_contains(const char *text, size_t len, const char *answer) {
    if (!text || !answer) return false;
    /* both sides with whitespace collapsed and ASCII lower-cased */
    size_t al = strlen(answer);
    char *a = malloc(al + 1), *t = malloc(len + 1);
    bool found = false;
    if (a && t) {
        size_t o = 0;
        bool sp = true;
        for (size_t i = 0; i < al; i++) {
            unsigned char c = (unsigned char)answer[i];
            if (isspace(c)) { if (!sp) a[o++] = ' '; sp = true; continue; }
            a[o++] = (char)tolower(c);
            sp = false;
        }
        while (o && a[o - 1] == ' ') o--;
        a[o] = 0;
        size_t q = 0;
        sp = true;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)text[i];
            if (isspace(c)) { if (!sp) t[q++] = ' '; sp = true; continue; }
            t[q++] = (char)tolower(c);
            sp = false;
        }
        t[q] = 0;
        found = o > 0 && strstr(t, a) != NULL;
    }
    free(a);
    free(t);
    return found;
}
