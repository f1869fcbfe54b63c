/* guard_norm_internal.h — text normalisation for the guardrails (internal to rag/):
 * UTF-8 repair, the Unicode view (NFKC, invisible characters removed,
 * look-alike letters folded), the skeleton view (lower case, leetspeak,
 * spaced-out letters joined) and decoding of base64 / hex / URL-encoded /
 * ROT13 runs. Every view keeps a map from its bytes back to the original
 * text, so a match found in a view is reported at the original bytes. */
#ifndef MRAG_GUARD_NORM_H
#define MRAG_GUARD_NORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest text the views handle (offsets are 32-bit). */
#define GUARD_NORM_MAX_TEXT ((size_t)UINT32_MAX - 16)

/* A view of a text. s is NUL-terminated UTF-8 (owned). When a is NULL the
 * view is the original itself (byte i of s is byte i of the original);
 * otherwise byte i of s came from the original bytes [a[i], b[i]). */
typedef struct {
    char *s;
    size_t n;
    uint32_t *a, *b;
} guard_view;

void rag_guard_view_release(guard_view *v);          /* zeroes it; NULL-safe */
/* The original span of the view's bytes [s, e) (s < e <= v->n). */
void rag_guard_view_span(const guard_view *v, size_t s, size_t e, size_t *os, size_t *oe);
/* The first view offset whose original start is >= off (v->n if none). */
size_t rag_guard_view_find(const guard_view *v, size_t off);

/* Length of the valid UTF-8 prefix of s[0..n). */
size_t rag_guard_utf8_valid_prefix(const char *s, size_t n);
/* Copies s[0..n) to *out (malloc'd, NUL-terminated) with every invalid
 * UTF-8 sequence replaced by U+FFFD (one per maximal invalid subpart, as
 * WHATWG decoders do). With final false an incomplete sequence at the end is
 * left out and *used says how many input bytes were consumed. Returns 0, or
 * -1 when out of memory. */
int rag_guard_utf8_repair(const char *s, size_t n, bool final, char **out, size_t *out_n, size_t *used);

/* The Unicode view: NFKC; default-ignorable characters (zero-width space,
 * joiners, soft hyphen, bidi controls, variation selectors, tag characters)
 * removed; Cyrillic, Greek and other look-alike letters folded to Latin in
 * words written in Latin letters. Pure ASCII gives the identity view (a ==
 * NULL). s must be valid UTF-8. Returns 0 or -1 (out of memory). */
int rag_guard_view_unicode(const char *s, size_t n, guard_view *v);

/* What the skeleton changed beyond case. */
enum { GUARD_SK_LEET = 1, GUARD_SK_SPACED = 2, GUARD_SK_HYPHEN = 4 };

/* The skeleton view of a Unicode view u: lower case; digits and symbols
 * inside words folded (1gn0r3 -> ignore, 4ll -> all, @ -> a, $ -> s); runs
 * of four or more single letters separated by spaces, dots, dashes, line
 * breaks... joined (a wider gap keeps a word break); words hyphenated across
 * a line break joined. Maps to the original of u. *changes gets GUARD_SK_*.
 * Returns 0 or -1. */
int rag_guard_view_skeleton(const guard_view *u, guard_view *v, unsigned *changes);

/* An encoded run found in a text: [start, end) in that text and its decoded
 * bytes (malloc'd, NUL-terminated, valid UTF-8, mostly printable). */
typedef struct {
    size_t start, end;
    char *text;
    size_t len;
    const char *kind;   /* "base64", "hex", "url" */
} guard_decoded;

/* Finds base64, hex and %-encoded runs in s[0..n) whose decoded bytes are
 * readable text; at most max runs. Returns the number found (>= 0) or -1. */
int rag_guard_find_encoded(const char *s, size_t n, guard_decoded *out, int max);
void rag_guard_decoded_release(guard_decoded *d, int n);

/* True when the text holds ROT13-encoded words of prompt-injection
 * vocabulary (ignore, instructions, previous, system prompt, ...): then the
 * ROT13 of the text is worth scanning. s is a skeleton (lower case). */
bool rag_guard_rot13_suspect(const char *s, size_t n);
/* ROT13 of ASCII letters in place. */
void rag_guard_rot13(char *s, size_t n);

#endif
