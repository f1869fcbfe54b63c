/* chunk.c — the structure-aware chunker: sections at headings (and PDF
 * pages), then token-sized chunks that prefer to end at a paragraph, then a
 * sentence, then a word; overlapping by whole words; each with heading path,
 * exact spans and its token count by the caller's tokenizer. */
#include "llm/llm.h"
#include "rag/ingest_internal.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* break strength after a word */
enum { BRK_CUT = 0, BRK_SPACE = 1, BRK_SENTENCE = 2, BRK_PARAGRAPH = 3 };

typedef struct {
    size_t off, len;    /* in doc->text */
    int tokens;         /* by the counter, alone, plus gap */
    int gap;            /* tokens of the line breaks before the word (0 without '\n') */
    uint32_t block;
    uint8_t brk;
} word;

typedef struct {
    const rag_doc *doc;
    const char *name;       /* for messages */
    const rag_chunk_params *p;
    rag_count_tokens_fn count;
    void *user;
    word *w;
    size_t n_w, cap_w;
    rag_chunk_list *out;
    size_t cap_out;
    rag_buf tmp;
    char *err;
    size_t errlen;
} chunker;

rag_chunk_params rag_chunk_default_params(void) {
    rag_chunk_params p = {.max_tokens = 256, .overlap_tokens = 32, .max_chunk_bytes = 0, .heading_sep = " > "};
    return p;
}

int rag_count_words(void *user, const char *text, size_t len) {
    (void)user;
    int n = 0;
    bool in = false;
    for (size_t i = 0; i < len; i++) {
        bool sp = text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r';
        if (!sp && !in) n++;
        in = !sp;
    }
    return n;
}

int rag_count_llm_tokens(void *user, const char *text, size_t len) {
    const llm_model *m = user;
    int32_t ids[2048];
    size_t need = 0;
    int rc = llm_tokenize(m, text, len, false, false, ids, sizeof ids / sizeof ids[0], &need);
    if (rc == LLM_ERR_ARG && need > sizeof ids / sizeof ids[0]) {
        /* a long text: one heap buffer for this call only */
        int32_t *big = malloc(need * sizeof *big);
        if (!big) return RAG_ERR_NOMEM;
        rc = llm_tokenize(m, text, len, false, false, big, need, &need);
        free(big);
    }
    if (rc != LLM_OK) return rc < 0 ? rc : -1;
    return need > INT32_MAX ? INT32_MAX : (int)need;
}

void rag_chunk_list_free(rag_chunk_list *l) {
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->chunks[i].text);
        free(l->chunks[i].embed_text);
        free(l->chunks[i].heading_path);
    }
    free(l->chunks);
    memset(l, 0, sizeof *l);
}

static int count_tokens(chunker *c, const char *s, size_t n, int *out) {
    int k = c->count(c->user, s, n);
    if (k < 0) return rag_ing_err(c->err, c->errlen, RAG_ERR_ARG, "%s: token counter failed (%d)", c->name, k);
    *out = k;
    return RAG_OK;
}

/* ----------------------------------------------------------- sentences */
static const char *const abbrevs[] = {
    /* English */
    "e.g", "i.e", "dr", "mr", "mrs", "ms", "prof", "st", "vs", "no", "fig", "approx", "dept", "jr", "sr",
    "co", "ltd", "cf", "al", "ed", "vol", "pp", "sec", "ch", "min", "max", "est",
    /* German */
    "z.b", "u.a", "d.h", "bzw", "ggf", "inkl", "evtl", "bspw", "vgl", "sog", "str", "tel", "abs", "nr",
    "ca", "dipl", "ing", "mio", "mrd", "allg", "gem", "geb", "hr", "fr", "zzgl", "exkl", "ggü", "bzgl",
    "jh", "jhd", "lt", "mind", "o.ä", "s.o", "s.u", "u.u", "z.t", "zt", "usf", "entspr", "ff", "bd", NULL,
};

static bool is_closer(unsigned char c) {
    return c == ')' || c == ']' || c == '"' || c == '\'' || c == '*' || c == '_';
}

/* True when word s[0..n) ends a sentence given the next word nx[0..nn). */
static bool sentence_end(const char *s, size_t n, const char *nx, size_t nn) {
    /* drop closing quotes/brackets/emphasis, including “ ” ‘ ’ » « (3- and 2-byte) */
    while (n) {
        unsigned char c = (unsigned char)s[n - 1];
        if (is_closer(c)) { n--; continue; }
        if (n >= 3 && (unsigned char)s[n - 3] == 0xE2 && (unsigned char)s[n - 2] == 0x80 &&
            (c == 0x9C || c == 0x9D || c == 0x98 || c == 0x99)) { n -= 3; continue; }
        if (n >= 2 && (unsigned char)s[n - 2] == 0xC2 && (c == 0xBB || c == 0xAB)) { n -= 2; continue; }
        break;
    }
    if (n == 0) return false;
    char last = s[n - 1];
    if (last == '!' || last == '?') return true;
    if (n >= 3 && memcmp(s + n - 3, "\xE2\x80\xA6", 3) == 0) return true;   /* … */
    if (last != '.') return false;
    /* the word before the final dot, lowercased, without leading ( " */
    size_t a = 0, b = n - 1;
    while (a < b && (s[a] == '(' || s[a] == '"' || s[a] == '\'' || s[a] == '[')) a++;
    size_t core = b - a;
    if (core == 0) return true;     /* "..." style ending, or a lone "." */
    char low[16];
    if (core < sizeof low) {
        for (size_t i = 0; i < core; i++) low[i] = (char)tolower((unsigned char)s[a + i]);
        low[core] = 0;
        for (int i = 0; abbrevs[i]; i++)
            if (strcmp(low, abbrevs[i]) == 0) return false;
    }
    /* one letter ("z." "B." initials), or letter.letter ("U.S", "e.g"-like) */
    size_t first = rag_utf8_seq_len((const unsigned char *)s + a, core);
    if (first == core && first > 0 && (first > 1 || isalpha((unsigned char)s[a]))) return false;
    bool dotted = core >= 3;
    for (size_t i = 0; i < core && dotted; i++)
        dotted = (i % 2 == 0) ? isalpha((unsigned char)s[a + i]) != 0 : s[a + i] == '.';
    if (dotted) return false;
    /* German ordinals and list numbers: "1." "24." */
    if (core <= 2 && isdigit((unsigned char)s[a]) && (core == 1 || isdigit((unsigned char)s[a + 1]))) return false;
    /* a sentence goes on in lower case ("etc. and so on") */
    if (nn && islower((unsigned char)nx[0])) return false;
    return true;
}

/* ------------------------------------------------------------------ words */
static int push_word(chunker *c, size_t off, size_t len, int tokens, uint32_t block, uint8_t brk) {
    if (rag_array_grow(&c->w, &c->cap_w, c->n_w + 1, sizeof *c->w, 1024))
        return rag_errf(c->err, c->errlen, RAG_ERR_NOMEM, "%s: chunker: out of memory", c->name);
    c->w[c->n_w++] = (word){.off = off, .len = len, .tokens = tokens, .gap = 0, .block = block, .brk = brk};
    return RAG_OK;
}

/* A word longer than a chunk can hold: pieces cut at UTF-8 character
 * boundaries, each within cap_tokens and cap_bytes. */
static int push_cut_word(chunker *c, size_t off, size_t len, uint32_t block, int cap_tokens, size_t cap_bytes) {
    const unsigned char *t = (const unsigned char *)c->doc->text;
    size_t end = off + len;
    int rc = RAG_OK;
    while (off < end && rc == RAG_OK) {
        size_t take = end - off < cap_bytes ? end - off : cap_bytes;
        int k = 0;
        for (;;) {
            /* back up to a character boundary */
            while (take > 0 && off + take < end && (t[off + take] & 0xC0) == 0x80) take--;
            if (take == 0) {    /* one character wider than the cap: take it whole */
                take = rag_utf8_seq_len(t + off, end - off);
                if (!take) take = 1;
            }
            if ((rc = count_tokens(c, (const char *)t + off, take, &k))) return rc;
            if (k <= cap_tokens || take <= 4) break;
            take /= 2;
        }
        rc = push_word(c, off, take, k, block, BRK_CUT);
        off += take;
    }
    return rc;
}

static bool is_ws(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* Splits blocks [b0, b1) into words with break strengths. */
static int section_words(chunker *c, size_t b0, size_t b1, int cap_tokens, size_t cap_bytes) {
    const char *t = c->doc->text;
    int rc = RAG_OK;
    c->n_w = 0;
    size_t prev_word_end = 0;
    for (size_t bi = b0; bi < b1 && rc == RAG_OK; bi++) {
        const rag_block *b = &c->doc->blocks[bi];
        size_t i = b->text_off, end = b->text_off + b->text_len;
        size_t first_word = c->n_w;
        while (i < end && rc == RAG_OK) {
            while (i < end && is_ws(t[i])) i++;
            if (i >= end) break;
            size_t j = i;
            while (j < end && !is_ws(t[j])) j++;
            int k = 0;
            if ((rc = count_tokens(c, t + i, j - i, &k))) break;
            size_t first_piece = c->n_w;
            if (k > cap_tokens || j - i > cap_bytes) rc = push_cut_word(c, i, j - i, (uint32_t)bi, cap_tokens, cap_bytes);
            else rc = push_word(c, i, j - i, k, (uint32_t)bi, BRK_SPACE);
            if (rc == RAG_OK) c->w[c->n_w - 1].brk = BRK_SPACE;
            /* line breaks between words are tokens too (a blank line is two
             * newlines; sloppy files have hundreds): charge them to the word
             * after them so chunks are not packed past the limit */
            if (rc == RAG_OK && first_piece > 0 && memchr(t + prev_word_end, '\n', i - prev_word_end)) {
                int g = 0;
                if ((rc = count_tokens(c, t + prev_word_end, i - prev_word_end, &g))) break;
                c->w[first_piece].tokens += g;
                c->w[first_piece].gap = g;
            }
            prev_word_end = j;
            i = j;
        }
        if (rc || c->n_w == first_word) continue;
        /* sentence and line breaks inside the block */
        for (size_t k = first_word; k + 1 < c->n_w; k++) {
            word *w = &c->w[k];
            if (w->brk != BRK_SPACE) continue;
            const word *nx = &c->w[k + 1];
            if (b->kind == RAG_BLOCK_CODE) {
                if (memchr(t + w->off + w->len, '\n', nx->off - (w->off + w->len))) w->brk = BRK_SENTENCE;
            } else if (sentence_end(t + w->off, w->len, t + nx->off, nx->len)) {
                w->brk = BRK_SENTENCE;
            }
        }
        c->w[c->n_w - 1].brk = BRK_PARAGRAPH;
    }
    return rc;
}

/* ------------------------------------------------------------------ chunks */
static int emit(chunker *c, size_t s, size_t e, const char *path, size_t path_len, bool use_path,
                int tokens) {
    const rag_doc *d = c->doc;
    size_t a = c->w[s].off, z = c->w[e - 1].off + c->w[e - 1].len;
    if (rag_array_grow(&c->out->chunks, &c->cap_out, c->out->n + 1, sizeof *c->out->chunks, 16))
        return rag_errf(c->err, c->errlen, RAG_ERR_NOMEM, "%s: chunker: out of memory", c->name);
    rag_chunk *ch = &c->out->chunks[c->out->n];
    memset(ch, 0, sizeof *ch);
    ch->text = strndup(d->text + a, z - a);
    ch->heading_path = strndup(path, path_len);
    if (use_path && path_len) {
        ch->embed_len = path_len + 2 + (z - a);
        ch->embed_text = malloc(ch->embed_len + 1);
        if (ch->embed_text) {
            memcpy(ch->embed_text, path, path_len);
            memcpy(ch->embed_text + path_len, "\n\n", 2);
            memcpy(ch->embed_text + path_len + 2, d->text + a, z - a);
            ch->embed_text[ch->embed_len] = 0;
        }
    } else {
        ch->embed_len = z - a;
        ch->embed_text = strndup(d->text + a, z - a);
    }
    if (!ch->text || !ch->heading_path || !ch->embed_text) {
        free(ch->text);
        free(ch->heading_path);
        free(ch->embed_text);
        return rag_ing_err(c->err, c->errlen, RAG_ERR_NOMEM, "%s: chunker: out of memory", c->name);
    }
    ch->text_len = z - a;
    ch->text_off = a;
    ch->n_tokens = tokens;
    const rag_block *b0 = &d->blocks[c->w[s].block], *b1 = &d->blocks[c->w[e - 1].block];
    ch->page = b0->page;
    if (d->exact_spans) {
        ch->byte_start = rag_doc_orig_offset(d, a);
        ch->byte_end = rag_doc_orig_offset(d, z);
        ch->line_start = rag_doc_line_at(d, a);
        ch->line_end = rag_doc_line_at(d, z - 1);
    } else {
        /* union of the spans of the blocks the chunk touches */
        bool any = false;
        for (const rag_block *b = b0; b <= b1; b++) {
            if (!b->line_start) continue;
            if (!any || b->line_start < ch->line_start) ch->line_start = b->line_start;
            if (!any || b->line_end > ch->line_end) ch->line_end = b->line_end;
            if (!any || b->byte_start < ch->byte_start) ch->byte_start = b->byte_start;
            if (!any || b->byte_end > ch->byte_end) ch->byte_end = b->byte_end;
            any = true;
        }
    }
    c->out->n++;
    return RAG_OK;
}

/* Counts the tokens of (path "\n\n")? text[a..z) with the caller's counter. */
static int count_embed(chunker *c, const char *path, size_t path_len, size_t a, size_t z, int *out) {
    c->tmp.len = 0;
    int rc = RAG_OK;
    if (path_len) {
        if ((rc = rag_buf_append(&c->tmp, path, path_len)) || (rc = rag_buf_append(&c->tmp, "\n\n", 2)))
            return rag_ing_err(c->err, c->errlen, rc, "%s: chunker: out of memory", c->name);
    }
    if ((rc = rag_buf_append(&c->tmp, c->doc->text + a, z - a)))
        return rag_ing_err(c->err, c->errlen, rc, "%s: chunker: out of memory", c->name);
    return count_tokens(c, c->tmp.data, c->tmp.len, out);
}

/* The end (exclusive word index) of the chunk starting at word s: words
 * packed while their own counts fit budget and the bytes fit byte_budget,
 * then cut at the strongest break (paragraph, sentence, word) that keeps
 * the chunk at least half full. Always past prev_end, so chunks advance. */
static size_t pick_end(const word *w, size_t s, size_t n, size_t prev_end, int budget, size_t byte_budget) {
    int sum = 0;
    size_t e = s;
    while (e < n) {
        /* the gap before the first word is not part of the chunk */
        int t = e == s ? w[e].tokens - w[e].gap : w[e].tokens;
        if (sum + t > budget || w[e].off + w[e].len - w[s].off > byte_budget) break;
        sum += t;
        e++;
    }
    if (e == s) e = s + 1;
    size_t end = e;
    if (e < n) {
        bool found = false;
        for (int level = BRK_PARAGRAPH; level >= BRK_SPACE && !found; level--) {
            int cum = sum;
            for (size_t k = e; k > s; k--) {
                if (k > prev_end && w[k - 1].brk >= level && cum * 2 >= budget) {
                    end = k;
                    found = true;
                    break;
                }
                cum -= w[k - 1].tokens;
            }
        }
    }
    if (end <= prev_end) end = prev_end + 1;
    return end;
}

/* Chunks the words of one section. */
static int chunk_section(chunker *c, const char *path, size_t path_len) {
    int rc = RAG_OK;
    const rag_chunk_params *p = c->p;
    size_t max_bytes = p->max_chunk_bytes;
    /* the heading path is kept in the embed text unless it would eat more
     * than half of the budget */
    int prefix = 0;
    bool use_path = path_len > 0;
    if (use_path) {
        if ((rc = count_embed(c, path, path_len, 0, 0, &prefix))) return rc;
        if (prefix > p->max_tokens / 2 || path_len + 2 > max_bytes / 2) {
            use_path = false;
            prefix = 0;
        }
    }
    size_t plen = use_path ? path_len : 0;
    int budget = p->max_tokens - prefix;
    size_t byte_budget = max_bytes - (use_path ? plen + 2 : 0);
    int overlap = p->overlap_tokens < budget / 2 ? p->overlap_tokens : budget / 2;
    size_t n = c->n_w, s = 0, prev_end = 0;
    const word *w = c->w;
    while (s < n) {
        /* pick by the words' own counts, then count the whole chunk; when
         * the tokenizer disagrees with the sum (tokens are not additive:
         * newlines, merges across spaces), shrink the budget by the excess
         * and pick again, so the cut still prefers paragraph and sentence
         * ends; after a few rounds drop words one by one */
        int local = budget, tokens = 0;
        size_t end = s;
        for (int round = 0;; round++) {
            end = pick_end(w, s, n, prev_end, local, byte_budget);
            size_t a = w[s].off, z = w[end - 1].off + w[end - 1].len;
            if ((rc = count_embed(c, path, plen, a, z, &tokens))) return rc;
            if (tokens <= p->max_tokens && z - a <= byte_budget) break;
            if (round < 3 && tokens > p->max_tokens && local > 1) {
                local -= tokens - p->max_tokens;
                if (local < 1) local = 1;
                continue;
            }
            bool fits = false;
            while (end - 1 > s && end - 1 > prev_end) {
                end--;
                z = w[end - 1].off + w[end - 1].len;
                if ((rc = count_embed(c, path, plen, a, z, &tokens))) return rc;
                if ((fits = tokens <= p->max_tokens && z - a <= byte_budget)) break;
            }
            if (fits) break;
            if (s < prev_end) {
                /* the overlap leaves no room for one new word: drop it */
                s = prev_end;
                local = budget;
                round = -1;
                continue;
            }
            return rag_ing_err(c->err, c->errlen, RAG_ERR_LIMIT,
                               "%s: chunker: a piece of %zu bytes takes %d tokens, over the limit of %d",
                               c->name, z - a, tokens, p->max_tokens);
        }
        if ((rc = emit(c, s, end, path, path_len, use_path, tokens))) return rc;
        if (end >= n) break;
        prev_end = end;
        /* the next chunk repeats the last whole words worth <= overlap tokens */
        size_t ns = end;
        if (overlap > 0) {
            int tok = 0;
            size_t zend = w[end - 1].off + w[end - 1].len;
            while (ns > s + 1 && tok + w[ns - 1].tokens <= overlap && zend - w[ns - 1].off <= byte_budget / 2) {
                tok += w[ns - 1].tokens;
                ns--;
            }
            while (ns < end && w[ns - 1].brk == BRK_CUT) ns++;   /* not inside a cut word */
            while (ns < end) {
                int k = 0;
                if ((rc = count_tokens(c, c->doc->text + w[ns].off, w[end - 1].off + w[end - 1].len - w[ns].off, &k)))
                    return rc;
                if (k <= overlap) break;
                ns++;
            }
        }
        s = ns;
    }
    return RAG_OK;
}

/* Builds "A > B > C" from the open headings. */
static int build_path(chunker *c, const int *open, rag_buf *path) {
    path->len = 0;
    int rc = rag_buf_append(path, "", 0);
    for (int l = 1; l <= 6 && rc == RAG_OK; l++) {
        if (open[l] < 0) continue;
        const rag_block *b = &c->doc->blocks[open[l]];
        size_t n = b->text_len > 200 ? 200 : b->text_len;
        while (n < b->text_len && n > 0 && ((unsigned char)c->doc->text[b->text_off + n] & 0xC0) == 0x80) n--;
        if (path->len) rc = rag_buf_append(path, c->p->heading_sep, strlen(c->p->heading_sep));
        /* newlines in a heading would break the "path\n\ntext" layout */
        for (size_t i = 0; i < n && rc == RAG_OK; i++) {
            char ch = c->doc->text[b->text_off + i];
            rc = rag_buf_putc(path, ch == '\n' || ch == '\t' ? ' ' : ch);
        }
    }
    return rc;
}

int rag_chunk_doc(const rag_doc *doc, const rag_chunk_params *params, rag_count_tokens_fn count,
                  void *user, rag_chunk_list *out, char *err, size_t errlen) {
    int rc = RAG_OK;
    rag_chunk_params p = params ? *params : rag_chunk_default_params();
    chunker c;
    memset(&c, 0, sizeof c);
    rag_buf path = {0};
    if (!out) return rag_ing_err(err, errlen, RAG_ERR_ARG, "rag_chunk_doc: no output");
    memset(out, 0, sizeof *out);
    if (!doc || !count) return rag_ing_err(err, errlen, RAG_ERR_ARG, "rag_chunk_doc: no document or counter");
    if (p.max_tokens < 8) return rag_ing_err(err, errlen, RAG_ERR_ARG, "rag_chunk_doc: max_tokens %d < 8", p.max_tokens);
    if (p.overlap_tokens < 0 || p.overlap_tokens * 2 > p.max_tokens)
        return rag_ing_err(err, errlen, RAG_ERR_ARG, "rag_chunk_doc: overlap %d must be in 0..max_tokens/2",
                           p.overlap_tokens);
    if (!p.heading_sep) p.heading_sep = " > ";
    if (!p.max_chunk_bytes) p.max_chunk_bytes = (size_t)p.max_tokens * 32;
    if (p.max_chunk_bytes < 64) p.max_chunk_bytes = 64;
    c.doc = doc;
    c.name = doc->name && doc->name[0] ? doc->name : "(document)";
    c.p = &p;
    c.count = count;
    c.user = user;
    c.out = out;
    c.err = err;
    c.errlen = errlen;
    int open[7];
    for (int l = 0; l < 7; l++) open[l] = -1;
    size_t bi = 0;
    while (bi < doc->n_blocks && rc == RAG_OK) {
        /* a section: a heading (if any) and the blocks up to the next
         * heading or page change */
        size_t b0 = bi;
        if (doc->blocks[bi].kind == RAG_BLOCK_HEADING) {
            int lv = doc->blocks[bi].level;
            if (lv < 1) lv = 1;
            if (lv > 6) lv = 6;
            open[lv] = (int)bi;
            for (int l = lv + 1; l <= 6; l++) open[l] = -1;
            bi++;
        }
        while (bi < doc->n_blocks && doc->blocks[bi].kind != RAG_BLOCK_HEADING &&
               doc->blocks[bi].page == doc->blocks[b0].page)
            bi++;
        bool heading_only = bi == b0 + 1 && doc->blocks[b0].kind == RAG_BLOCK_HEADING;
        if (heading_only && bi < doc->n_blocks) continue;  /* it lives on in the next section's path */
        if ((rc = build_path(&c, open, &path))) break;
        /* a word may take a quarter of what is left after the path */
        int cap_tokens = (p.max_tokens - p.max_tokens / 2) / 2;
        size_t cap_bytes = p.max_chunk_bytes / 4;
        if ((rc = section_words(&c, b0, bi, cap_tokens, cap_bytes))) break;
        if (c.n_w) rc = chunk_section(&c, path.data, path.len);
    }
    if (rc == RAG_ERR_NOMEM && err && errlen) rag_ing_err(err, errlen, rc, "%s: chunker: out of memory", c.name);
    free(c.w);
    rag_buf_release(&c.tmp);
    rag_buf_release(&path);
    if (rc != RAG_OK) rag_chunk_list_free(out);
    return rc;
}
