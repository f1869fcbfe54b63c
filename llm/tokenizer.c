/* tokenizer.c — SentencePiece BPE ("llama" tokenizer model) as llama.cpp runs
 * it: vocabulary loading, special-token splitting, score-ordered merges with
 * byte fallback, detokenization and the streaming UTF-8-safe detokenizer. */
#define _GNU_SOURCE     /* memmem, qsort_r */
#include "llm/tokenizer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct llm_vocab {
    int32_t n;                  /* tokens */
    char *pieces;               /* owned: every piece, NUL-terminated, back to back */
    uint32_t *piece_off;        /* n+1 offsets into pieces (piece i ends at off[i+1]-1) */
    char *texts;                /* owned: detokenized text of every token (see token_text) */
    uint32_t *text_off;         /* n+1 offsets into texts */
    float *score;               /* n */
    uint8_t *type;              /* n llm_token_type */
    int32_t *hash;              /* open addressing table of ids, -1 = empty */
    uint32_t hash_mask;         /* table size - 1 (a power of two) */
    uint32_t max_piece;         /* longest piece in bytes */
    int32_t byte_tok[256];      /* <0xNN> (or the 1-byte piece) per byte value, -1 if none */
    int32_t *special;           /* CONTROL/USER_DEFINED/UNKNOWN ids, longest first */
    int32_t n_special;
    int32_t bos, eos, unk, pad;
    bool add_bos, add_eos, add_space_prefix;
    bool space_splits;          /* no piece has "▁" after a non-"▁" byte (see bpe_fragment) */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ hash */

/* 64-bit FNV-1a folded to 32 bits: pieces are a few bytes long, so a
 * byte-at-a-time hash costs about as much as a wider one. */
static uint32_t piece_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ull;
    }
    return (uint32_t)(h ^ (h >> 32));
}

static inline const char *piece_ptr(const llm_vocab *v, int32_t id, uint32_t *len) {
    *len = v->piece_off[id + 1] - v->piece_off[id] - 1;
    return v->pieces + v->piece_off[id];
}

int32_t llm_vocab_find(const llm_vocab *v, const char *s, size_t n) {
    if (!v || n > v->max_piece) return -1;
    uint32_t i = piece_hash(s, n) & v->hash_mask;
    for (;;) {
        int32_t id = v->hash[i];
        if (id < 0) return -1;
        uint32_t len;
        const char *p = piece_ptr(v, id, &len);
        if (len == n && memcmp(p, s, n) == 0) return id;
        i = (i + 1) & v->hash_mask;
    }
}

/* Inserts id; an existing equal piece is replaced (the later id wins, as in
 * llama.cpp's token_to_id map). */
static void hash_put(llm_vocab *v, int32_t id) {
    uint32_t len;
    const char *s = piece_ptr(v, id, &len);
    uint32_t i = piece_hash(s, len) & v->hash_mask;
    for (;;) {
        int32_t cur = v->hash[i];
        if (cur < 0) { v->hash[i] = id; return; }
        uint32_t clen;
        const char *c = piece_ptr(v, cur, &clen);
        if (clen == len && memcmp(c, s, len) == 0) { v->hash[i] = id; return; }
        i = (i + 1) & v->hash_mask;
    }
}

/* ------------------------------------------------------------------ load */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The byte of a "<0xNN>" piece, or -1. */
static int byte_piece_value(const char *p, uint32_t len) {
    if (len != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return -1;
    int hi = hexval(p[3]), lo = hexval(p[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* Special ids are read as llama.cpp does: a value outside the vocabulary
 * keeps the default. */
static void read_special_id(const gguf_file *f, const char *key, int32_t n, int32_t *id) {
    uint64_t u;
    int32_t s;
    if (llm_gguf_get_u64(f, key, &u)) {
        if (u < (uint64_t)n) *id = (int32_t)u;
    } else if (llm_gguf_get_i32(f, key, &s)) {
        if (s >= 0 && s < n) *id = s;
    }
}

static int cmp_special(const void *a, const void *b, void *arg) {
    const llm_vocab *v = arg;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = v->piece_off[x + 1] - v->piece_off[x], ly = v->piece_off[y + 1] - v->piece_off[y];
    if (lx != ly) return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Fills texts/text_off: what each token contributes to detokenized text when
 * control tokens are rendered (callers drop control/unknown text otherwise). */
static int build_texts(llm_vocab *v) {
    size_t total = 0;
    for (int32_t i = 0; i < v->n; i++) total += v->piece_off[i + 1] - v->piece_off[i];
    v->texts = malloc(total + 1);
    v->text_off = malloc(((size_t)v->n + 1) * sizeof *v->text_off);
    if (!v->texts || !v->text_off) return LLM_ERR_NOMEM;
    size_t o = 0;
    for (int32_t i = 0; i < v->n; i++) {
        v->text_off[i] = (uint32_t)o;
        uint32_t len;
        const char *p = piece_ptr(v, i, &len);
        switch (v->type[i]) {
        case LLM_TOKEN_NORMAL:
            /* "▁" (E2 96 81) becomes a space; the text only ever shrinks. */
            for (uint32_t k = 0; k < len; k++) {
                if (k + 2 < len && (uint8_t)p[k] == 0xE2 && (uint8_t)p[k + 1] == 0x96 && (uint8_t)p[k + 2] == 0x81) {
                    v->texts[o++] = ' ';
                    k += 2;
                } else {
                    v->texts[o++] = p[k];
                }
            }
            break;
        case LLM_TOKEN_BYTE: {
            int b = byte_piece_value(p, len);
            if (b >= 0) v->texts[o++] = (char)b;
            break;
        }
        case LLM_TOKEN_CONTROL:
        case LLM_TOKEN_UNKNOWN:
        case LLM_TOKEN_USER_DEFINED:
            memcpy(v->texts + o, p, len);
            o += len;
            break;
        default:    /* unused and undefined tokens produce no text */
            break;
        }
    }
    v->text_off[v->n] = (uint32_t)o;
    v->texts[o] = 0;
    return LLM_OK;
}

/* The tokenizer arrays of f, checked: the pieces, and the scores and token
 * types when present (*have_* false when absent). */
static int vocab_arrays(const gguf_file *f, const char *path, gguf_arr *toks, gguf_arr *scores, bool *have_scores,
                        gguf_arr *types, bool *have_types, char *err, size_t errlen) {
    if (!llm_gguf_get_arr(f, "tokenizer.ggml.tokens", toks) || toks->elem_type != GGUF_TYPE_STRING) {
        set_err(err, errlen, "%s: tokenizer.ggml.tokens is missing or not an array of strings", path);
        return LLM_ERR_FORMAT;
    }
    if (toks->n == 0 || toks->n > LLM_VOCAB_MAX_TOKENS) {
        set_err(err, errlen, "%s: tokenizer.ggml.tokens has %llu entries (1..%d allowed)", path,
                (unsigned long long)toks->n, LLM_VOCAB_MAX_TOKENS);
        return LLM_ERR_FORMAT;
    }
    *have_scores = llm_gguf_get_arr(f, "tokenizer.ggml.scores", scores);
    if (*have_scores && (scores->n != toks->n || (scores->elem_type != GGUF_TYPE_FLOAT32 && scores->elem_type != GGUF_TYPE_FLOAT64))) {
        set_err(err, errlen, "%s: tokenizer.ggml.scores must hold %llu floats", path, (unsigned long long)toks->n);
        return LLM_ERR_FORMAT;
    }
    *have_types = llm_gguf_get_arr(f, "tokenizer.ggml.token_type", types);
    if (*have_types && types->n != toks->n) {
        set_err(err, errlen, "%s: tokenizer.ggml.token_type must hold %llu integers", path, (unsigned long long)toks->n);
        return LLM_ERR_FORMAT;
    }
    return LLM_OK;
}

/* Copies pieces, scores and types into v (v->n set, arrays allocated).
 * Pass 1: sizes and checks; pass 2: copy. Empty pieces are renamed
 * "[EMPTY_i]" as llama.cpp does, so they never match text. */
static int vocab_copy(llm_vocab *v, const gguf_file *f, const char *path, const gguf_arr *toks, const gguf_arr *scores,
                      bool have_scores, const gguf_arr *types, bool have_types, char *err, size_t errlen) {
    size_t total = 0;
    for (int32_t i = 0; i < v->n; i++) {
        gguf_str s;
        if (!llm_gguf_arr_str(f, toks, (uint64_t)i, &s)) {
            set_err(err, errlen, "%s: tokenizer.ggml.tokens[%d] is unreadable", path, i);
            return LLM_ERR_FORMAT;
        }
        if (s.len > LLM_VOCAB_MAX_PIECE) {
            set_err(err, errlen, "%s: token %d is %llu bytes long (at most %d)", path, i,
                    (unsigned long long)s.len, LLM_VOCAB_MAX_PIECE);
            return LLM_ERR_FORMAT;
        }
        total += (s.len ? s.len : 24) + 1;
    }
    if (total > UINT32_MAX / 2) {
        set_err(err, errlen, "%s: the vocabulary is too large", path);
        return LLM_ERR_FORMAT;
    }
    if (!(v->pieces = malloc(total))) return LLM_ERR_NOMEM;
    size_t o = 0;
    for (int32_t i = 0; i < v->n; i++) {
        gguf_str s;
        llm_gguf_arr_str(f, toks, (uint64_t)i, &s);
        v->piece_off[i] = (uint32_t)o;
        if (s.len) {
            memcpy(v->pieces + o, s.ptr, s.len);
            o += s.len;
        } else {
            o += (size_t)snprintf(v->pieces + o, 24, "[EMPTY_%d]", i);
        }
        v->pieces[o++] = 0;
        float sc = 0.0f;
        if (have_scores && !llm_gguf_arr_f32(scores, (uint64_t)i, &sc)) sc = 0.0f;
        v->score[i] = sc;
        int64_t t = LLM_TOKEN_NORMAL;
        if (have_types && !llm_gguf_arr_i64(types, (uint64_t)i, &t)) {
            set_err(err, errlen, "%s: tokenizer.ggml.token_type[%d] is not an integer", path, i);
            return LLM_ERR_FORMAT;
        }
        v->type[i] = (t >= LLM_TOKEN_NORMAL && t <= LLM_TOKEN_BYTE) ? (uint8_t)t : LLM_TOKEN_UNDEFINED;
    }
    v->piece_off[v->n] = (uint32_t)o;
    return LLM_OK;
}

/* What the tokenizer looks up: the piece hash, whether "▁" only leads
 * pieces, the byte-fallback tokens, the special pieces longest first. */
static int vocab_index(llm_vocab *v) {
    /* Hash table at most half full. */
    uint32_t size = 16;
    while (size < 2u * (uint32_t)v->n) size <<= 1;
    v->hash = malloc((size_t)size * sizeof *v->hash);
    if (!v->hash) return LLM_ERR_NOMEM;
    memset(v->hash, 0xff, (size_t)size * sizeof *v->hash);
    v->hash_mask = size - 1;
    for (int32_t i = 0; i < v->n; i++) {
        uint32_t len;
        piece_ptr(v, i, &len);
        if (len > v->max_piece) v->max_piece = len;
        hash_put(v, i);
    }

    /* Every "▁" inside a piece must belong to its leading run of "▁" for
     * the word split of bpe_fragment to be exact. */
    v->space_splits = true;
    for (int32_t i = 0; i < v->n && v->space_splits; i++) {
        uint32_t len;
        const char *p = piece_ptr(v, i, &len);
        uint32_t lead = 0;
        while (lead + 3 <= len && memcmp(p + lead, "\xE2\x96\x81", 3) == 0) lead += 3;
        if (lead < len && memmem(p + lead, len - lead, "\xE2\x96\x81", 3)) v->space_splits = false;
    }

    /* Byte fallback: "<0xNN>", else the one-byte piece (as llama.cpp). */
    for (int b = 0; b < 256; b++) {
        char buf[8];
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        int32_t id = llm_vocab_find(v, buf, 6);
        if (id < 0) {
            char c = (char)b;
            id = llm_vocab_find(v, &c, 1);
        }
        v->byte_tok[b] = id;
    }

    /* Pieces split out of the text before BPE, longest first (llama.cpp
     * sorts by length only; equal lengths keep id order here). */
    for (int32_t i = 0; i < v->n; i++)
        if (v->type[i] == LLM_TOKEN_CONTROL || v->type[i] == LLM_TOKEN_USER_DEFINED || v->type[i] == LLM_TOKEN_UNKNOWN)
            v->n_special++;
    if (v->n_special) {
        v->special = malloc((size_t)v->n_special * sizeof *v->special);
        if (!v->special) return LLM_ERR_NOMEM;
        int32_t k = 0;
        for (int32_t i = 0; i < v->n; i++)
            if (v->type[i] == LLM_TOKEN_CONTROL || v->type[i] == LLM_TOKEN_USER_DEFINED || v->type[i] == LLM_TOKEN_UNKNOWN)
                v->special[k++] = i;
        qsort_r(v->special, (size_t)v->n_special, sizeof *v->special, cmp_special, v);
    }
    return LLM_OK;
}

/* The special token ids and the add_bos/eos/space_prefix flags of f. */
static void vocab_flags(llm_vocab *v, const gguf_file *f) {
    v->bos = v->n > 1 ? 1 : -1;
    v->eos = v->n > 2 ? 2 : -1;
    v->unk = 0;
    v->pad = -1;
    read_special_id(f, "tokenizer.ggml.bos_token_id", v->n, &v->bos);
    read_special_id(f, "tokenizer.ggml.eos_token_id", v->n, &v->eos);
    read_special_id(f, "tokenizer.ggml.unknown_token_id", v->n, &v->unk);
    read_special_id(f, "tokenizer.ggml.padding_token_id", v->n, &v->pad);
    v->add_bos = true;
    v->add_eos = false;
    v->add_space_prefix = true;
    bool b;
    if (llm_gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b)) v->add_bos = b;
    if (llm_gguf_get_bool(f, "tokenizer.ggml.add_eos_token", &b)) v->add_eos = b;
    if (llm_gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &b)) v->add_space_prefix = b;
}

int llm_vocab_load(const gguf_file *f, llm_vocab **out, char *err, size_t errlen) {
    int rc = LLM_OK;
    llm_vocab *v = NULL;
    const char *path = f ? llm_gguf_path(f) : "(null)";
    if (!out || !f) {
        set_err(err, errlen, "llm_vocab_load: file and out are required");
        return LLM_ERR_ARG;
    }
    *out = NULL;

    gguf_str model;
    if (!llm_gguf_get_str(f, "tokenizer.ggml.model", &model)) {
        if (llm_gguf_find_kv(f, "tokenizer.ggml.model")) {
            set_err(err, errlen, "%s: tokenizer.ggml.model is not a string", path);
            return LLM_ERR_FORMAT;
        }
        return LLM_OK;  /* no tokenizer: a weights-only file */
    }
    if (!llm_gguf_str_eq(model, "llama")) {
        set_err(err, errlen, "%s: tokenizer model '%.*s' is not supported (mrag reads SentencePiece 'llama' vocabularies)",
                path, (int)(model.len > 64 ? 64 : model.len), model.ptr);
        return LLM_ERR_UNSUPPORTED;
    }
    gguf_arr toks, scores, types;
    bool have_scores, have_types;
    if ((rc = vocab_arrays(f, path, &toks, &scores, &have_scores, &types, &have_types, err, errlen)) != LLM_OK) return rc;

    v = calloc(1, sizeof *v);
    if (!v) goto nomem;
    v->n = (int32_t)toks.n;
    v->piece_off = malloc(((size_t)v->n + 1) * sizeof *v->piece_off);
    v->score = malloc((size_t)v->n * sizeof *v->score);
    v->type = malloc((size_t)v->n);
    if (!v->piece_off || !v->score || !v->type) goto nomem;
    rc = vocab_copy(v, f, path, &toks, &scores, have_scores, &types, have_types, err, errlen);
    if (rc == LLM_ERR_NOMEM) goto nomem;
    if (rc != LLM_OK) goto done;
    if (vocab_index(v) != LLM_OK) goto nomem;
    vocab_flags(v, f);
    if ((rc = build_texts(v)) != LLM_OK) goto nomem;
    goto done;
nomem:
    set_err(err, errlen, "%s: out of memory loading the vocabulary", path);
    rc = LLM_ERR_NOMEM;
done:
    if (rc != LLM_OK) {
        llm_vocab_free(v);
        return rc;
    }
    *out = v;
    return LLM_OK;
}

void llm_vocab_free(llm_vocab *v) {
    if (!v) return;
    free(v->pieces);
    free(v->piece_off);
    free(v->texts);
    free(v->text_off);
    free(v->score);
    free(v->type);
    free(v->hash);
    free(v->special);
    free(v);
}

int32_t llm_vocab_n(const llm_vocab *v) { return v ? v->n : 0; }
int32_t llm_vocab_bos(const llm_vocab *v) { return v ? v->bos : -1; }
int32_t llm_vocab_eos(const llm_vocab *v) { return v ? v->eos : -1; }
int32_t llm_vocab_unk(const llm_vocab *v) { return v ? v->unk : -1; }
int32_t llm_vocab_pad(const llm_vocab *v) { return v ? v->pad : -1; }
bool llm_vocab_add_bos(const llm_vocab *v) { return v && v->add_bos; }
bool llm_vocab_add_space_prefix(const llm_vocab *v) { return v && v->add_space_prefix; }

const char *llm_vocab_piece(const llm_vocab *v, int32_t id, size_t *len) {
    if (!v || id < 0 || id >= v->n) {
        if (len) *len = 0;
        return NULL;
    }
    uint32_t l;
    const char *p = piece_ptr(v, id, &l);
    if (len) *len = l;
    return p;
}

llm_token_type llm_vocab_type(const llm_vocab *v, int32_t id) {
    return v && id >= 0 && id < v->n ? (llm_token_type)v->type[id] : LLM_TOKEN_UNDEFINED;
}

float llm_vocab_score(const llm_vocab *v, int32_t id) {
    return v && id >= 0 && id < v->n ? v->score[id] : 0.0f;
}

/* -------------------------------------------------------------- tokenize */

/* One symbol of the BPE chain: a byte range of the escaped text. */
typedef struct {
    uint32_t start, n;      /* n == 0: merged into its left neighbour */
    int32_t prev, next;     /* -1 at the ends */
} tok_sym;

/* A candidate merge of two adjacent symbols whose concatenation is a piece. */
typedef struct {
    float score;
    int32_t left, right;
    uint32_t size;          /* bytes of the concatenation when it was queued */
} tok_bigram;

/* Work memory of one call, sized by the text (never by the vocabulary). */
typedef struct {
    char *esc;              /* escaped fragment: "▁" prefix, spaces as "▁" */
    tok_sym *sym;
    tok_bigram *heap;
    size_t n_heap, cap_heap;
    size_t sym_alloc, heap_alloc;   /* allocated entries of sym and heap */
    int32_t *out;
    size_t cap, n;          /* ids written / needed */
} tok_work;

/* Max-heap order: higher score first; equal scores: leftmost first
 * (the order of llama.cpp's priority queue). */
static inline bool bigram_before(const tok_bigram *a, const tok_bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(tok_work *w, tok_bigram b) {
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bigram_before(&b, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = b;
}

static tok_bigram heap_pop(tok_work *w) {
    tok_bigram top = w->heap[0];
    tok_bigram last = w->heap[--w->n_heap];
    size_t n = w->n_heap, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && bigram_before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!bigram_before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

static inline void emit(tok_work *w, int32_t id) {
    if (w->n < w->cap) w->out[w->n] = id;
    w->n++;
}

static void try_bigram(const llm_vocab *v, tok_work *w, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    uint32_t size = w->sym[left].n + w->sym[right].n;
    if (size > v->max_piece) return;
    int32_t id = llm_vocab_find(v, w->esc + w->sym[left].start, size);
    if (id < 0) return;
    /* Capacity: n-1 initial pairs plus at most two per merge. */
    if (w->n_heap < w->cap_heap) heap_push(w, (tok_bigram){v->score[id], left, right, size});
}

/* Length of the UTF-8 sequence a lead byte announces, as llama.cpp counts it
 * from the high nibble only (continuation and invalid bytes count 1 or more;
 * the sequence is not validated). */
static inline uint32_t utf8_len_of(uint8_t c) {
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[c >> 4];
}

static inline bool sym_is_space(const tok_work *w, const tok_sym *s) {
    const char *p = w->esc + s->start;
    return s->n == 3 && (uint8_t)p[0] == 0xE2 && (uint8_t)p[1] == 0x96 && (uint8_t)p[2] == 0x81;
}

/* Merges the symbols [a, b) among themselves (llama.cpp's loop: pop the best
 * pair, skip stale ones, merge, queue the new neighbours) and appends the
 * ids of what remains. */
static int bpe_segment(const llm_vocab *v, tok_work *w, int32_t a, int32_t b) {
    for (int32_t i = a; i < b; i++) {
        w->sym[i].prev = i > a ? i - 1 : -1;
        w->sym[i].next = i + 1 < b ? i + 1 : -1;
    }
    w->n_heap = 0;
    w->cap_heap = 3 * (size_t)(b - a) + 4;
    for (int32_t i = a + 1; i < b; i++) try_bigram(v, w, i - 1, i);
    while (w->n_heap) {
        tok_bigram bg = heap_pop(w);
        tok_sym *l = &w->sym[bg.left], *r = &w->sym[bg.right];
        /* Stale entry: one side was merged since it was queued. */
        if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->sym[r->next].prev = bg.left;
        try_bigram(v, w, l->prev, bg.left);
        try_bigram(v, w, bg.left, l->next);
    }
    for (int32_t i = a; i != -1; i = w->sym[i].next) {
        const tok_sym *s = &w->sym[i];
        int32_t id = llm_vocab_find(v, w->esc + s->start, s->n);
        if (id >= 0) {
            emit(w, id);
            continue;
        }
        /* No piece: one byte token per byte (UNK when the vocabulary has none). */
        for (uint32_t k = 0; k < s->n; k++) {
            int32_t bt = v->byte_tok[(uint8_t)w->esc[s->start + k]];
            if (bt < 0) bt = v->unk;
            if (bt < 0) return LLM_ERR_UNSUPPORTED;
            emit(w, bt);
        }
    }
    return LLM_OK;
}

/* Runs BPE over n escaped bytes in w->esc and appends the ids.
 *
 * llama.cpp merges over the whole fragment with one priority queue. When no
 * piece holds a "▁" after something else (v->space_splits: true of
 * SentencePiece vocabularies, checked at load), no merge can join a symbol
 * to a following "▁" symbol that starts a run of spaces, so the fragment
 * falls apart into independent words there. Within a word the merges happen
 * in the same relative order as in the one big queue (same scores, same
 * left-to-right tie rule), so the ids are identical — and the queue stays
 * small, which is what makes long texts fast. */
static int bpe_fragment(const llm_vocab *v, tok_work *w, uint32_t n) {
    /* At most one symbol per escaped byte (invalid UTF-8 can cut the three
     * bytes of an escaped space into two symbols). */
    if (n > w->sym_alloc) {
        tok_sym *t = realloc(w->sym, (size_t)n * sizeof *t);
        if (!t) return LLM_ERR_NOMEM;
        w->sym = t;
        w->sym_alloc = n;
    }
    int32_t n_sym = 0;
    for (uint32_t o = 0; o < n;) {
        uint32_t l = utf8_len_of((uint8_t)w->esc[o]);
        if (l > n - o) l = n - o;
        w->sym[n_sym++] = (tok_sym){o, l, -1, -1};
        o += l;
    }
    /* Word starts; the queue of the longest word needs 3 entries per symbol
     * (n-1 first pairs, then at most two per merge). */
    size_t longest = 0;
    int32_t a = 0;
    for (int32_t i = 1; i <= n_sym; i++) {
        if (i == n_sym || (v->space_splits && sym_is_space(w, &w->sym[i]) && !sym_is_space(w, &w->sym[i - 1]))) {
            if ((size_t)(i - a) > longest) longest = (size_t)(i - a);
            w->sym[a].prev = i;     /* temporarily: end of the word starting at a */
            a = i;
        }
    }
    if (3 * longest + 4 > w->heap_alloc) {
        tok_bigram *t = realloc(w->heap, (3 * longest + 4) * sizeof *t);
        if (!t) return LLM_ERR_NOMEM;
        w->heap = t;
        w->heap_alloc = 3 * longest + 4;
    }
    for (a = 0; a < n_sym;) {
        int32_t end = w->sym[a].prev;
        int rc = bpe_segment(v, w, a, end);
        if (rc != LLM_OK) return rc;
        a = end;
    }
    return LLM_OK;
}

/* A piece of the input: raw text [start, start+len) or a special token. */
typedef struct {
    size_t start, len;
    int32_t id;             /* -1: raw text */
} tok_frag;

/* Splits the raw fragments of *fr around every occurrence of special token
 * id, leftmost first (llama.cpp's partition). Returns the new count or -1 on
 * OOM. *fr and *cap may be reallocated. */
static long split_special(const char *text, tok_frag **fr, size_t *cap, size_t nf, int32_t id,
                          const char *piece, size_t plen) {
    tok_frag *res = malloc(*cap * sizeof *res);
    size_t rcap = *cap, rn = 0;
    if (!res) return -1;
    for (size_t i = 0; i < nf; i++) {
        tok_frag f = (*fr)[i];
        for (;;) {
            const char *hit = NULL;
            if (f.id < 0 && f.len >= plen) hit = memmem(text + f.start, f.len, piece, plen);
            size_t need = rn + 3;
            if (need > rcap) {
                size_t nc = rcap * 2 + 8;
                tok_frag *t = realloc(res, nc * sizeof *t);
                if (!t) { free(res); return -1; }
                res = t;
                rcap = nc;
            }
            if (!hit) {
                if (f.id >= 0 || f.len > 0) res[rn++] = f;
                break;
            }
            size_t at = (size_t)(hit - text);
            if (at > f.start) res[rn++] = (tok_frag){f.start, at - f.start, -1};
            res[rn++] = (tok_frag){at, plen, id};
            size_t end = f.start + f.len;
            f.start = at + plen;
            f.len = end - f.start;
            if (f.len == 0) break;
        }
    }
    free(*fr);
    *fr = res;
    *cap = rcap;
    return (long)rn;
}

int llm_vocab_tokenize(const llm_vocab *v, const char *text, size_t len, bool add_bos,
                       bool parse_special, int32_t *out, size_t cap, size_t *n_out) {
    int rc = LLM_OK;
    tok_work w = {0};
    tok_frag *fr = NULL;
    size_t nf = 0, fcap = 4;
    if (n_out) *n_out = 0;
    if (!v || (!text && len) || (!out && cap) || !n_out) return LLM_ERR_ARG;
    if (len > ((size_t)256 << 20)) return LLM_ERR_ARG;
    w.out = out;
    w.cap = cap;
    if (add_bos && v->bos >= 0) emit(&w, v->bos);

    fr = malloc(fcap * sizeof *fr);
    if (!fr) { rc = LLM_ERR_NOMEM; goto done; }
    if (len) fr[nf++] = (tok_frag){0, len, -1};
    for (int32_t k = 0; k < v->n_special && nf; k++) {
        int32_t id = v->special[k];
        llm_token_type t = (llm_token_type)v->type[id];
        if (!parse_special && t != LLM_TOKEN_USER_DEFINED) continue;
        uint32_t plen;
        const char *p = piece_ptr(v, id, &plen);
        /* Cheap test first: most special pieces never occur in a text. */
        if (plen == 0 || plen > len || !memmem(text, len, p, plen)) continue;
        long r = split_special(text, &fr, &fcap, nf, id, p, plen);
        if (r < 0) { rc = LLM_ERR_NOMEM; goto done; }
        nf = (size_t)r;
    }

    /* The escape buffer fits the longest raw fragment: the "▁" prefix and
     * at most 3 bytes per input byte. Symbols and queue grow as needed. */
    size_t longest = 0;
    for (size_t i = 0; i < nf; i++)
        if (fr[i].id < 0 && fr[i].len > longest) longest = fr[i].len;
    if (longest) {
        w.esc = malloc(3 * longest + 3);
        if (!w.esc) { rc = LLM_ERR_NOMEM; goto done; }
    }

    bool prev_special = true;   /* the text start counts as after a special token */
    for (size_t i = 0; i < nf; i++) {
        if (fr[i].id >= 0) {
            emit(&w, fr[i].id);
            prev_special = true;
            continue;
        }
        uint32_t e = 0;
        if (v->add_space_prefix && prev_special) {
            memcpy(w.esc, "\xE2\x96\x81", 3);
            e = 3;
        }
        const char *s = text + fr[i].start;
        for (size_t k = 0; k < fr[i].len; k++) {
            if (s[k] == ' ') {
                memcpy(w.esc + e, "\xE2\x96\x81", 3);
                e += 3;
            } else {
                w.esc[e++] = s[k];
            }
        }
        if ((rc = bpe_fragment(v, &w, e)) != LLM_OK) goto done;
        prev_special = false;
    }
done:
    free(fr);
    free(w.esc);
    free(w.sym);
    free(w.heap);
    if (rc != LLM_OK) return rc;
    *n_out = w.n;
    return w.n > cap ? LLM_ERR_ARG : LLM_OK;
}

/* ------------------------------------------------------------ detokenize */

const char *llm_vocab_token_text(const llm_vocab *v, int32_t id, bool render_special, size_t *len) {
    if (!v || id < 0 || id >= v->n) {
        if (len) *len = 0;
        return NULL;
    }
    uint8_t t = v->type[id];
    size_t l = v->text_off[id + 1] - v->text_off[id];
    if (!render_special && (t == LLM_TOKEN_CONTROL || t == LLM_TOKEN_UNKNOWN)) l = 0;
    if (len) *len = l;
    return v->texts + v->text_off[id];
}

size_t llm_vocab_detokenize_raw(const llm_vocab *v, const int32_t *ids, size_t n,
                                bool render_special, char *out, size_t cap) {
    size_t total = 0;
    bool strip = v && v->add_space_prefix;
    for (size_t i = 0; v && i < n; i++) {
        size_t l;
        const char *p = llm_vocab_token_text(v, ids[i], render_special, &l);
        if (!p) continue;
        if (strip && l && *p == ' ') { p++; l--; }
        strip = false;
        if (total < cap) memcpy(out + total, p, l < cap - total ? l : cap - total);
        total += l;
    }
    return total;
}

/* ---------------------------------------------------------- public API */

int llm_n_vocab(const llm_model *m) {
    return llm_vocab_n(llm_model_vocab(m));
}

int32_t llm_token_bos(const llm_model *m) {
    return llm_vocab_bos(llm_model_vocab(m));
}

int32_t llm_token_eos(const llm_model *m) {
    return llm_vocab_eos(llm_model_vocab(m));
}

int llm_tokenize(const llm_model *m, const char *text, size_t len, bool add_bos,
                 bool parse_special, int32_t *out, size_t cap, size_t *n_out) {
    const llm_vocab *v = llm_model_vocab(m);
    if (!v) {
        if (n_out) *n_out = 0;
        return m ? LLM_ERR_UNSUPPORTED : LLM_ERR_ARG;
    }
    return llm_vocab_tokenize(v, text, len, add_bos, parse_special, out, cap, n_out);
}

const char *llm_token_piece(const llm_model *m, int32_t id, size_t *len) {
    return llm_vocab_piece(llm_model_vocab(m), id, len);
}

/* Output of the UTF-8 repair: writes whole units or nothing. */
typedef struct {
    char *buf;
    size_t cap, n;          /* n counts every byte, written or not */
    size_t written;         /* bytes actually in buf */
    bool full;              /* a unit did not fit: write nothing more */
} detok_sink;

static void sink_put(detok_sink *s, const void *p, size_t k) {
    if (!s->full && s->n + k <= s->cap) {
        memcpy(s->buf + s->n, p, k);
        s->written = s->n + k;
    } else {
        s->full = true;
    }
    s->n += k;
}

static void sink_bad(detok_sink *s) {
    sink_put(s, "\xEF\xBF\xBD", 3);
}

/* Total length of the UTF-8 sequence starting with lead byte c, 0 if c
 * cannot start one (Unicode table 3-7). */
static int utf8_need(uint8_t c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

/* Whether c may follow the bytes already pending (lead at p[0], k bytes). */
static bool utf8_cont_ok(const uint8_t *p, int k, uint8_t c) {
    if (c < 0x80 || c > 0xBF) return false;
    if (k != 1) return true;
    switch (p[0]) {
    case 0xE0: return c >= 0xA0;
    case 0xED: return c <= 0x9F;
    case 0xF0: return c >= 0x90;
    case 0xF4: return c <= 0x8F;
    default: return true;
    }
}

/* Feeds bytes through the decoder: complete characters go to the sink, an
 * unfinished one waits in d->pending, and each maximal invalid subpart
 * becomes one U+FFFD (the WHATWG/Unicode practice, as node and browsers). */
static void detok_feed(llm_detok *d, const uint8_t *p, size_t n, detok_sink *s) {
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (d->n_pending) {
            if (utf8_cont_ok(d->pending, d->n_pending, c)) {
                d->pending[d->n_pending++] = c;
                if (d->n_pending == utf8_need(d->pending[0])) {
                    sink_put(s, d->pending, (size_t)d->n_pending);
                    d->n_pending = 0;
                }
                continue;
            }
            sink_bad(s);
            d->n_pending = 0;
            /* c starts afresh below */
        }
        int need = utf8_need(c);
        if (need == 1) sink_put(s, &c, 1);
        else if (need == 0) sink_bad(s);
        else d->pending[d->n_pending++] = c;
    }
}

void llm_detok_init(llm_detok *d, const llm_model *m, bool render_special) {
    memset(d, 0, sizeof *d);
    d->model = m;
    d->render_special = render_special;
    d->at_start = llm_vocab_add_space_prefix(llm_model_vocab(m));
}

/* Text of one id for the detokenizer, with the first piece's leading space
 * dropped. Updates at_start. */
static const char *detok_piece(llm_detok *d, const llm_vocab *v, int32_t id, size_t *len) {
    const char *p = llm_vocab_token_text(v, id, d->render_special, len);
    if (!p) { *len = 0; return ""; }
    if (d->at_start && *len && *p == ' ') { p++; (*len)--; }
    d->at_start = false;
    return p;
}

int llm_detok_push(llm_detok *d, int32_t id, char *out, size_t cap) {
    const llm_vocab *v = d ? llm_model_vocab(d->model) : NULL;
    if (!v || id < 0 || id >= v->n || (!out && cap)) return -1;
    llm_detok next = *d;
    size_t len;
    const char *p = detok_piece(&next, v, id, &len);
    detok_sink s = {out, cap, 0, 0, false};
    detok_feed(&next, (const uint8_t *)p, len, &s);
    if (s.full || s.n > cap) return -1;  /* state unchanged: retry with more room */
    *d = next;
    return (int)s.n;
}

int llm_detok_flush(llm_detok *d, char *out, size_t cap) {
    if (!d) return -1;
    if (!d->n_pending) return 0;
    if (cap < 3 || !out) return -1;
    memcpy(out, "\xEF\xBF\xBD", 3);
    d->n_pending = 0;
    return 3;
}

size_t llm_detokenize(const llm_model *m, const int32_t *ids, size_t n,
                      bool render_special, char *out, size_t cap) {
    const llm_vocab *v = llm_model_vocab(m);
    llm_detok d;
    llm_detok_init(&d, m, render_special);
    detok_sink s = {out, cap ? cap - 1 : 0, 0, 0, false};
    for (size_t i = 0; v && i < n; i++) {
        size_t len;
        if (ids[i] < 0 || ids[i] >= v->n) continue;
        const char *p = detok_piece(&d, v, ids[i], &len);
        detok_feed(&d, (const uint8_t *)p, len, &s);
    }
    if (d.n_pending) sink_bad(&s);
    if (cap) out[s.written] = 0;
    return s.n;
}
