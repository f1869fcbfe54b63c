/* guard_model_internal.h — the learned injection detector (internal to rag/): a
 * logistic-regression model over hashed word and character n-grams of the
 * skeleton view of a text, its file format, scoring and training. */
#ifndef MRAG_GUARD_MODEL_H
#define MRAG_GUARD_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUARD_MODEL_MAGIC "mrag-guard-model"
#define GUARD_MODEL_VERSION 2      /* the newest format this mrag reads and writes:
                                      1 all features scaled by 1/sqrt(count);
                                      2 whole-sentence features unscaled */
#define GUARD_MODEL_MIN_BITS 12
#define GUARD_MODEL_MAX_BITS 22
#define GUARD_MODEL_MAX_FILE (8u << 20)

typedef struct guard_model {
    int bits;              /* 2^bits weights */
    float scale;           /* weight = q[i] * scale */
    float bias;
    bool whole;            /* format 2: whole-sentence features unscaled */
    int8_t *q;             /* owned */
    char *info;            /* the header lines after the first (owned) */
} guard_model;

/* Loads a model file (text header, then the int8 weights). Returns 0, or -1
 * with a message in err naming the file and the problem. */
int rag_guard_model_load(const char *path, guard_model **out, char *err, size_t err_cap);
void rag_guard_model_free(guard_model *m);

/* The probability (0..1) that the skeleton text s[0..n) is an injection. */
float rag_guard_model_score(const guard_model *m, const char *s, size_t n);

/* Calls fn(user, bucket) for every feature of the skeleton text s[0..n)
 * (hashed into 2^bits buckets); returns the number of n-gram features.
 * A feature of the whole sentence (its length class, the meta features)
 * has GUARD_FEAT_WHOLE set in the bucket and is not counted: it weighs
 * the same in a long sentence as in a short one, where the n-grams are
 * scaled by 1/sqrt(count). */
#define GUARD_FEAT_WHOLE 0x80000000u
size_t rag_guard_model_features(const char *s, size_t n, int bits, void (*fn)(void *user, uint32_t b), void *user);

/* Number of word tokens of s[0..n) (as the features count them). */
size_t rag_guard_model_words(const char *s, size_t n);

/* The topic words of the skeleton text s[0..n) for the relatedness test
 * ("unrelated:" rules): one key per word of 4..40 bytes that is not a
 * number or a function word — a hash of its first five bytes (a crude stem),
 * never 0. Writes at most cap keys; returns how many. */
size_t rag_guard_content_keys(const char *s, size_t n, uint64_t *keys, size_t cap);

/* A segment (sentence, line, code block) of a text: [start, end). */
typedef struct {
    size_t start, end;
    bool piece;     /* cut out of a longer segment */
    bool glued;     /* starts inside a word of the host ("… twWho invented …"): where it ends is not known */
} guard_segment;
/* Splits s[0..n) into segments scored one by one at the context stage:
 * sentences ('.', '!', '?' before white space), line breaks (unless the
 * next line goes on with a small letter), '|' separators, fenced code blocks as one
 * segment; long ones are cut near 600 bytes. Returns the number of segments written (at most cap). */
size_t rag_guard_segments(const char *s, size_t n, guard_segment *out, size_t cap);
/* Splits the segment s[a..b) of the Unicode view (case kept) into the
 * pieces the request model judges: a request pasted into a sentence
 * without a stop or glued into a word starts where a request word opens
 * with a capital after a small letter ("… cold unWrite a poem …", "… card
 * List three facts …") and ends where a sentence word does ("… penguins If
 * you …"); reply markers ("> ") are dropped. Returns the number of pieces
 * written (at most cap, at least one for a non-empty segment). */
size_t rag_guard_task_pieces(const char *s, size_t a, size_t b, guard_segment *out, size_t cap);
/* The request model's score of a segment of the skeleton sk. A piece cut
 * out of a sentence that opens with a question word and has no stop
 * ("wer hat das telefon erfunden") is also scored as the question it is
 * (with a '?'); a piece glued into a word runs on into the rest of the
 * host's sentence, so each of its first words ends it in turn (3 to 12
 * words) and, when the whole piece scores below thr, the longest such
 * request at or above thr is taken (sg->end is moved to its end). */
float rag_guard_task_score(const guard_model *m, const char *sk, guard_segment *sg, float thr);

#endif
