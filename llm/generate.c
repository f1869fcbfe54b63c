/* generate.c — the generation loop: prefill, sample, stream text, stop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm/llm.h"
#include "llm/model.h"

/* Limits on caller-supplied stop strings: they size the hold-back buffer. */
#define GEN_MAX_STOPS 64
#define GEN_MAX_STOP_LEN 1024
/* Bytes one llm_detok_push may produce for us (64 always suffice). */
#define GEN_PIECE_CAP 256

llm_generate_params llm_generate_default_params(void) {
    llm_generate_params p;
    memset(&p, 0, sizeof p);
    p.n_predict = 128;
    p.sampling = llm_sampler_default_params();
    return p;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------- text streaming
 * Generated text passes through a small buffer: a stop string found in it
 * ends generation (the text before it is emitted, the rest never is), and a
 * tail that could still grow into a stop string is held back. Everything
 * pushed in is whole UTF-8 characters; what comes out is too. */
typedef struct {
    const char *const *stop;
    size_t stop_len[GEN_MAX_STOPS];
    int n_stop;
    char *buf;          /* held-back text, cap bytes */
    size_t len, cap;
    llm_text_fn fn;
    void *user;
} gen_stream;

enum { STREAM_GO = 0, STREAM_STOP_STRING = 1, STREAM_CALLER_STOP = 2 };

/* Emits buf[0..n) to the callback and drops it from the buffer. Returns
 * STREAM_CALLER_STOP when the callback asked to stop. */
static int stream_emit(gen_stream *st, size_t n) {
    int rc = STREAM_GO;
    if (n > 0 && st->fn && st->fn(st->user, st->buf, n) != 0) rc = STREAM_CALLER_STOP;
    memmove(st->buf, st->buf + n, st->len - n);
    st->len -= n;
    return rc;
}

/* First occurrence of needle in hay (both with lengths), or NULL. The
 * buffers are small (a few hundred bytes), so the plain scan is enough. */
static const char *find_bytes(const char *hay, size_t hn, const char *needle, size_t nn) {
    if (nn == 0 || nn > hn) return NULL;
    for (size_t i = 0; i + nn <= hn; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, nn) == 0) return hay + i;
    return NULL;
}

/* Backs n up to the start of a UTF-8 character of buf (only matters for
 * stop strings that are not valid UTF-8 themselves). */
static size_t char_boundary(const gen_stream *st, size_t n) {
    while (n > 0 && n < st->len && ((unsigned char)st->buf[n] & 0xC0) == 0x80) n--;
    return n;
}

/* Appends text, then emits what can no longer be part of a stop string.
 * final: the generation is over, so nothing is held back. */
static int stream_push(gen_stream *st, const char *text, size_t n, bool final) {
    if (n > st->cap - st->len) n = st->cap - st->len;   /* cannot happen: cap covers hold + one piece */
    memcpy(st->buf + st->len, text, n);
    st->len += n;

    size_t first = st->len;     /* earliest stop-string match */
    for (int i = 0; i < st->n_stop; i++) {
        size_t sl = st->stop_len[i];
        if (sl > st->len) continue;
        const char *hit = find_bytes(st->buf, st->len, st->stop[i], sl);
        if (hit && (size_t)(hit - st->buf) < first) first = (size_t)(hit - st->buf);
    }
    if (first < st->len) {
        int rc = stream_emit(st, char_boundary(st, first));
        st->len = 0;
        return rc == STREAM_GO ? STREAM_STOP_STRING : rc;
    }
    if (final) return stream_emit(st, st->len);

    size_t hold = 0;            /* longest tail that is a proper prefix of a stop string */
    for (int i = 0; i < st->n_stop; i++) {
        size_t sl = st->stop_len[i];
        size_t k = sl - 1 < st->len ? sl - 1 : st->len;
        for (; k > hold; k--)
            if (memcmp(st->buf + st->len - k, st->stop[i], k) == 0) {
                hold = k;
                break;
            }
    }
    return stream_emit(st, char_boundary(st, st->len - hold));
}

/* ---------------------------------------------------------- generation */

/* True when every logit is a finite number (a NaN or an infinity comes
 * only from broken weights; the check costs a pass over n_vocab floats per
 * token, nothing beside a forward pass). */
static bool logits_finite(const float *l, const llm_model *m) {
    float acc = 0;
    for (int i = 0; i < m->hp.n_vocab; i++) acc += l[i] * 0.0f;     /* NaN * 0 and inf * 0 are NaN */
    return acc == 0;
}

static bool cancelled(const llm_generate_params *p) {
    return p->cancel && *p->cancel;
}

int llm_generate(llm_context *c, const int32_t *prompt, int n_prompt,
                 const llm_generate_params *params, llm_generate_result *res) {
    int rc = LLM_OK;
    llm_sampler *smp = NULL;
    gen_stream st;
    memset(&st, 0, sizeof st);
    llm_generate_result r;
    memset(&r, 0, sizeof r);
    r.n_prompt = n_prompt > 0 ? n_prompt : 0;

    if (!c) {
        rc = LLM_ERR_ARG;
        goto done;
    }
    llm_generate_params p = params ? *params : llm_generate_default_params();
    const llm_model *m = c->m;
    const int n_vocab = m->hp.n_vocab;
    const int32_t eos = llm_token_eos(m);

    if (n_prompt < 0 || (n_prompt > 0 && !prompt)) {
        rc = llm_context_fail(c, LLM_ERR_ARG, "llm_generate: bad prompt (%d tokens)", n_prompt);
        goto done;
    }
    if (n_prompt == 0 && !llm_get_logits(c, -1)) {
        rc = llm_context_fail(c, LLM_ERR_ARG, "llm_generate: empty prompt and no logits to continue from");
        goto done;
    }
    if (p.n_stop < 0 || p.n_stop > GEN_MAX_STOPS || (p.n_stop > 0 && !p.stop)) {
        rc = llm_context_fail(c, LLM_ERR_ARG, "llm_generate: %d stop strings (at most %d)", p.n_stop,
                              GEN_MAX_STOPS);
        goto done;
    }
    size_t max_stop = 0;
    for (int i = 0; i < p.n_stop; i++) {
        size_t l = p.stop[i] ? strnlen(p.stop[i], GEN_MAX_STOP_LEN + 1) : 0;
        if (l == 0 || l > GEN_MAX_STOP_LEN) {
            rc = llm_context_fail(c, LLM_ERR_ARG, "llm_generate: stop string %d is empty or longer than %d bytes",
                                  i, GEN_MAX_STOP_LEN);
            goto done;
        }
        st.stop_len[i] = l;
        if (l > max_stop) max_stop = l;
    }
    st.stop = p.stop;
    st.n_stop = p.n_stop;
    st.fn = p.on_text;
    st.user = p.user;
    st.cap = max_stop + 2 * GEN_PIECE_CAP;
    st.buf = malloc(st.cap);
    smp = llm_sampler_new(&p.sampling, n_vocab);
    if (!st.buf || !smp) {
        rc = llm_context_fail(c, LLM_ERR_NOMEM, "llm_generate: out of memory");
        goto done;
    }
    /* the penalty looks back over the prompt too, as llama.cpp's does */
    int from = n_prompt > p.sampling.repeat_last_n ? n_prompt - p.sampling.repeat_last_n : 0;
    for (int i = from; i < n_prompt; i++) llm_sampler_accept(smp, prompt[i]);

    /* a prompt that cannot fit fails before any of it is evaluated */
    int held = p.reuse_prefix ? 0 : c->n_past;
    if (!c->rolling && (int64_t)held + n_prompt > c->p.n_ctx) {
        rc = llm_context_fail(c, LLM_ERR_CONTEXT_FULL,
                              "context full: %d tokens held + a %d-token prompt > n_ctx %d", held, n_prompt,
                              c->p.n_ctx);
        goto done;
    }
    /* the whole sequence given: keep the cache of what it shares */
    int start = 0;
    if (p.reuse_prefix && n_prompt > 0) start = r.n_reused = llm_context_keep_prefix(c, prompt, n_prompt);
    /* prefill, a batch at a time so a cancel is noticed between batches */
    double t0 = now_ms();
    for (int off = start; off < n_prompt; off += c->p.n_batch) {
        if (cancelled(&p)) {
            r.stop_reason = LLM_STOP_CANCELLED;
            rc = llm_context_fail(c, LLM_ERR_CANCELLED, "generation cancelled during the prompt");
            r.prefill_ms = now_ms() - t0;
            goto done;
        }
        int nb = n_prompt - off < c->p.n_batch ? n_prompt - off : c->p.n_batch;
        rc = llm_decode(c, prompt + off, nb);
        if (rc != LLM_OK) {
            r.prefill_ms = now_ms() - t0;
            goto done;      /* llm_decode set the context's error */
        }
    }
    double t1 = now_ms();
    r.prefill_ms = t1 - t0;

    llm_detok dt;
    llm_detok_init(&dt, m, false);
    dt.at_start = dt.at_start && !p.continuation;
    char piece[GEN_PIECE_CAP];
    int stream_rc = STREAM_GO;
    r.stop_reason = LLM_STOP_LENGTH;
    for (int i = 0; p.n_predict < 0 || i < p.n_predict; i++) {
        if (cancelled(&p)) {
            r.stop_reason = LLM_STOP_CANCELLED;
            break;
        }
        const float *logits = llm_get_logits(c, -1);
        if (logits && !logits_finite(logits, m)) {
            /* NaN or infinite weights (or hyperparameters): every token would
             * be sampled from garbage, and the answer would be empty */
            rc = llm_context_fail(c, LLM_ERR_FORMAT,
                                  "llm_generate: the model produced non-finite logits (NaN or infinity): "
                                  "its weights are broken");
            goto done;
        }
        int32_t id = llm_sampler_sample(smp, logits);
        if (id < 0) {
            rc = llm_context_fail(c, LLM_ERR_ARG, "llm_generate: no logits to sample from");
            goto done;
        }
        if (id == eos) {
            r.stop_reason = LLM_STOP_EOS;
            break;
        }
        llm_sampler_accept(smp, id);
        r.n_generated++;
        int n = llm_detok_push(&dt, id, piece, sizeof piece);
        if (n < 0) n = 0;   /* a piece longer than GEN_PIECE_CAP: its text is dropped */
        stream_rc = stream_push(&st, piece, (size_t)n, false);
        if (stream_rc != STREAM_GO) {
            r.stop_reason = stream_rc == STREAM_STOP_STRING ? LLM_STOP_STRING : LLM_STOP_CANCELLED;
            break;
        }
        if (p.n_predict >= 0 && i + 1 == p.n_predict) break;   /* the last token is not evaluated */
        rc = llm_decode(c, &id, 1);
        if (rc == LLM_ERR_CONTEXT_FULL) {
            rc = LLM_OK;
            r.stop_reason = LLM_STOP_CONTEXT_FULL;
            break;
        }
        if (rc != LLM_OK) goto done;
    }
    if (r.stop_reason != LLM_STOP_STRING && r.stop_reason != LLM_STOP_CANCELLED) {
        /* the end: pending bytes, then everything held back */
        int n = llm_detok_flush(&dt, piece, sizeof piece);
        stream_rc = stream_push(&st, piece, n > 0 ? (size_t)n : 0, true);
        if (stream_rc == STREAM_CALLER_STOP) r.stop_reason = LLM_STOP_CANCELLED;
        else if (stream_rc == STREAM_STOP_STRING) r.stop_reason = LLM_STOP_STRING;
    }
    if (r.stop_reason == LLM_STOP_CANCELLED)
        rc = llm_context_fail(c, LLM_ERR_CANCELLED, "generation cancelled after %d tokens", r.n_generated);
    r.decode_ms = now_ms() - t1;

done:
    llm_sampler_free(smp);
    free(st.buf);
    if (res) *res = r;
    return rc;
}
