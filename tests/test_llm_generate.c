/* test_llm_generate.c — llm_generate on a real model (stories260K): greedy
 * text equals llama.cpp's, seeds, stop strings, EOS, cancel, UTF-8
 * streaming, a full context, no allocation per token, and `mrag generate`. */
#include <stdint.h>
#include <stdlib.h>

#include "llm/llm.h"
#include "llm/model.h"
#include "tests/test.h"

#define STORIES "models/stories260K.gguf"
#define PROMPT "Once upon a time"

/* ------------------------------------------------ allocation counting
 * The test binary interposes malloc & co. to count calls while `counting`
 * is set. Not under AddressSanitizer, which owns the allocator. */
#if defined(__SANITIZE_ADDRESS__)
#define COUNT_ALLOCS 0
#else
#define COUNT_ALLOCS 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static volatile int counting;
static volatile long n_allocs;
void *malloc(size_t n) {
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
    return __libc_realloc(p, n);
}
extern void *__libc_memalign(size_t, size_t);
void *aligned_alloc(size_t al, size_t n) {
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
    return __libc_memalign(al, n);
}
int posix_memalign(void **out, size_t al, size_t n) {
    if (counting) __atomic_add_fetch(&n_allocs, 1, __ATOMIC_RELAXED);
    void *p = __libc_memalign(al, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}
void free(void *p) {
    __libc_free(p);
}
#endif

/* ------------------------------------------------------------ fixtures */
typedef struct {
    llm_model *m;
    llm_context *c;
    int32_t prompt[64];
    int n_prompt;
} fixture;

static void fx_open(fixture *f, int n_ctx, int n_batch) {
    memset(f, 0, sizeof *f);
    const char *path = test_require_shared(STORIES);
    char err[512];
    llm_model_params mp = llm_model_default_params();
    REQUIRE(llm_model_load(path, &mp, &f->m, err, sizeof err) == LLM_OK, "%s", err);
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = 1;
    if (n_batch) cp.n_batch = n_batch;
    REQUIRE(llm_context_new(f->m, &cp, &f->c, err, sizeof err) == LLM_OK, "%s", err);
    size_t n = 0;
    REQUIRE(llm_tokenize(f->m, PROMPT, strlen(PROMPT), true, false, f->prompt, 64, &n) == LLM_OK);
    f->n_prompt = (int)n;
}

static void fx_close(fixture *f) {
    llm_context_free(f->c);
    llm_model_free(f->m);
}

/* Collects streamed text; can stop or cancel after a number of chunks. */
typedef struct {
    char text[8192];
    size_t len;
    int chunks;
    int stop_after;             /* return non-zero at this chunk (0 = never) */
    volatile int *cancel;       /* set at chunk cancel_after */
    int cancel_after;
    int bad_utf8;               /* chunks that were not whole valid UTF-8 */
} sink;

/* True when s[0..n) is complete, valid UTF-8 (no overlongs, no surrogates). */
static bool valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        int k;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; }
        else return false;
        if (i + (size_t)k >= n) return false;   /* cut short */
        for (int j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += (size_t)k + 1;
    }
    return true;
}

static int sink_fn(void *user, const char *text, size_t len) {
    sink *s = user;
    s->chunks++;
    if (len == 0 || !valid_utf8((const unsigned char *)text, len)) s->bad_utf8++;
    if (s->len + len < sizeof s->text) {
        memcpy(s->text + s->len, text, len);
        s->len += len;
        s->text[s->len] = 0;
    }
    if (s->cancel && s->chunks == s->cancel_after) *s->cancel = 1;
    return s->stop_after && s->chunks >= s->stop_after;
}

static llm_generate_params greedy_params(sink *s, int n) {
    llm_generate_params p = llm_generate_default_params();
    p.n_predict = n;
    p.sampling.temperature = 0.0f;
    p.on_text = sink_fn;
    p.user = s;
    return p;
}

/* The greedy text of n tokens after PROMPT, into s. */
static int run_greedy(fixture *f, sink *s, int n, llm_generate_result *res) {
    memset(s, 0, sizeof *s);
    llm_context_reset(f->c);
    llm_generate_params p = greedy_params(s, n);
    return llm_generate(f->c, f->prompt, f->n_prompt, &p, res);
}

/* ----------------------------------------------- tiny JSON extraction */

/* Parses the integer array after "key":[ into out; returns the count. */
static int json_ints(const char *js, const char *key, int32_t *out, int cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":[", key);
    const char *p = strstr(js, pat);
    if (!p) return -1;
    p += strlen(pat);
    int n = 0;
    while (*p && *p != ']') {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) return -1;
        if (n < cap) out[n] = (int32_t)v;
        n++;
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

/* Copies the JSON string value of "key" (ASCII escapes and \uXXXX of the
 * BMP decoded to UTF-8) into out; returns its length or -1. */
static int json_str(const char *js, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(js, pat);
    if (!p) return -1;
    p += strlen(pat);
    size_t n = 0;
    while (*p && *p != '"' && n + 4 < cap) {
        if (*p != '\\') { out[n++] = *p++; continue; }
        p++;
        switch (*p) {
        case 'n': out[n++] = '\n'; p++; break;
        case 't': out[n++] = '\t'; p++; break;
        case 'r': out[n++] = '\r'; p++; break;
        case 'u': {
            unsigned cp = (unsigned)strtoul((char[5]){p[1], p[2], p[3], p[4], 0}, NULL, 16);
            p += 5;
            if (cp < 0x80) out[n++] = (char)cp;
            else if (cp < 0x800) { out[n++] = (char)(0xC0 | cp >> 6); out[n++] = (char)(0x80 | (cp & 0x3F)); }
            else { out[n++] = (char)(0xE0 | cp >> 12); out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[n++] = (char)(0x80 | (cp & 0x3F)); }
            break;
        }
        default: out[n++] = *p++; break;
        }
    }
    out[n] = 0;
    return (int)n;
}

/* ---------------------------------------------------------------- cases */

TEST(greedy_continuation_equals_llama_cpp) {
    const char *path = test_require_shared(STORIES);
    char args[512];
    snprintf(args, sizeof args, "greedy --model %s --text %s --n 64 --threads 1", test_shq(path), test_shq(PROMPT));
    char *js = test_oracle(args);
    int32_t want_ids[128];
    static char want_text[8192];
    int nw = json_ints(js, "ids", want_ids, 128);
    int tl = json_str(js, "text", want_text, sizeof want_text);
    free(js);
    REQUIRE(nw > 0 && nw <= 128 && tl > 0, "cannot read the oracle's ids/text");

    fixture f;
    fx_open(&f, 256, 0);
    /* token by token through the sampler: the ids */
    llm_sampler_params sp = llm_sampler_default_params();
    sp.temperature = 0.0f;
    llm_sampler *smp = llm_sampler_new(&sp, llm_n_vocab(f.m));
    REQUIRE(smp);
    REQUIRE(llm_decode(f.c, f.prompt, f.n_prompt) == LLM_OK, "%s", llm_context_error(f.c));
    for (int i = 0; i < nw; i++) {
        int32_t id = llm_sampler_sample(smp, llm_get_logits(f.c, -1));
        if (id != want_ids[i]) {
            CHECK(0, "token %d: %d, llama.cpp %d", i, id, want_ids[i]);
            break;
        }
        if (llm_decode(f.c, &id, 1) != LLM_OK) break;
    }
    llm_sampler_free(smp);
    /* and through llm_generate: the text */
    static sink s;
    llm_generate_result res;
    REQUIRE(run_greedy(&f, &s, nw, &res) == LLM_OK, "%s", llm_context_error(f.c));
    CHECK_EQ_STR(s.text, want_text);
    CHECK_EQ_INT(res.n_prompt, f.n_prompt);
    CHECK_EQ_INT(res.n_generated, nw);
    CHECK_EQ_INT(res.stop_reason, LLM_STOP_LENGTH);
    CHECK(res.prefill_ms > 0 && res.decode_ms > 0);
    fx_close(&f);
}

TEST(prefill_in_small_batches_gives_the_same_text) {
    fixture f;
    static sink a, b;
    llm_generate_result res;
    fx_open(&f, 256, 0);
    REQUIRE(run_greedy(&f, &a, 40, &res) == LLM_OK);
    fx_close(&f);
    fx_open(&f, 256, 2);        /* the 5-token prompt in batches of 2 */
    REQUIRE(run_greedy(&f, &b, 40, &res) == LLM_OK, "%s", llm_context_error(f.c));
    CHECK_EQ_STR(a.text, b.text);
    fx_close(&f);
}

TEST(same_seed_same_text_other_seed_other_text) {
    fixture f;
    fx_open(&f, 256, 0);
    static sink s[3];
    const uint64_t seeds[3] = {1, 1, 2};
    for (int i = 0; i < 3; i++) {
        memset(&s[i], 0, sizeof s[i]);
        llm_context_reset(f.c);
        llm_generate_params p = greedy_params(&s[i], 64);
        p.sampling = llm_sampler_default_params();
        p.sampling.temperature = 1.0f;
        p.sampling.seed = seeds[i];
        REQUIRE(llm_generate(f.c, f.prompt, f.n_prompt, &p, NULL) == LLM_OK);
    }
    CHECK(s[0].len > 0);
    CHECK_EQ_STR(s[0].text, s[1].text);
    CHECK(strcmp(s[0].text, s[2].text) != 0, "seeds 1 and 2 gave the same 64 tokens: %s", s[0].text);
    fx_close(&f);
}

TEST(stop_strings_end_generation_and_are_never_emitted) {
    fixture f;
    fx_open(&f, 256, 0);
    static sink full, s;
    llm_generate_result res;
    REQUIRE(run_greedy(&f, &full, 64, &res) == LLM_OK);
    /* the greedy text is ", there was a little girl named Lily. She ..." */
    const char *cases[][2] = {
        {"Lily", NULL},             /* inside one word */
        {". She", NULL},            /* across tokens */
        {"zzz", "girl"},            /* the earliest of several wins */
        {"park", "there"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *stops[2] = {cases[c][0], cases[c][1]};
        const char *first = NULL;
        for (int k = 0; k < 2; k++) {
            const char *h = stops[k] ? strstr(full.text, stops[k]) : NULL;
            if (h && (!first || h < first)) first = h;
        }
        REQUIRE(first, "stop case %zu does not occur in %s", c, full.text);
        memset(&s, 0, sizeof s);
        llm_context_reset(f.c);
        llm_generate_params p = greedy_params(&s, 64);
        p.stop = stops;
        p.n_stop = stops[1] ? 2 : 1;
        REQUIRE(llm_generate(f.c, f.prompt, f.n_prompt, &p, &res) == LLM_OK);
        CHECK_EQ_INT(res.stop_reason, LLM_STOP_STRING);
        size_t want = (size_t)(first - full.text);
        CHECK(s.len == want && memcmp(s.text, full.text, want) == 0, "stop '%s': got \"%s\"", stops[0], s.text);
        CHECK(res.n_generated < 64);
    }
    /* a stop string that only ever partly matches: held-back text comes out */
    const char *partial[1] = {"named Lix"};
    memset(&s, 0, sizeof s);
    llm_context_reset(f.c);
    llm_generate_params p = greedy_params(&s, 64);
    p.stop = partial;
    p.n_stop = 1;
    REQUIRE(llm_generate(f.c, f.prompt, f.n_prompt, &p, &res) == LLM_OK);
    CHECK_EQ_STR(s.text, full.text);
    CHECK_EQ_INT(res.stop_reason, LLM_STOP_LENGTH);
    /* a partial match at the very end is flushed when n_predict ends it */
    const char *tail_stop[1] = {"She lovedX"};
    const char *she = strstr(full.text, "She loved");
    REQUIRE(she);
    int n_tok = 0;
    /* find the token count whose text ends right after "She loved" */
    for (int n = 1; n < 64; n++) {
        static sink t;
        run_greedy(&f, &t, n, &res);
        if (t.len >= (size_t)(she - full.text) + 9) { n_tok = n; break; }
    }
    REQUIRE(n_tok > 0);
    memset(&s, 0, sizeof s);
    llm_context_reset(f.c);
    p = greedy_params(&s, n_tok);
    p.stop = tail_stop;
    p.n_stop = 1;
    REQUIRE(llm_generate(f.c, f.prompt, f.n_prompt, &p, &res) == LLM_OK);
    CHECK(s.len >= (size_t)(she - full.text) + 9 && memcmp(s.text, full.text, s.len) == 0, "got \"%s\"", s.text);
    /* bad stop strings are refused */
    const char *empty[1] = {""};
    p.stop = empty;
    CHECK_EQ_INT(llm_generate(f.c, f.prompt, f.n_prompt, &p, &res), LLM_ERR_ARG);
    fx_close(&f);
}

/* stories260K ends a story with BOS (id 1), never with its EOS (id 2); a
 * copy whose tokenizer.ggml.eos_token_id says 1 makes that end an EOS. */
static const char *stories_with_eos_1(void) {
    static char out[512];
    size_t len = 0;
    char *buf = test_read_file(test_require_shared(STORIES), &len);
    REQUIRE(buf);
    const char key[] = "tokenizer.ggml.eos_token_id";
    char *hit = NULL;
    for (size_t i = 0; i + sizeof key + 8 <= len; i++)
        if (memcmp(buf + i, key, sizeof key - 1) == 0) { hit = buf + i + sizeof key - 1; break; }
    REQUIRE(hit, "no eos_token_id key in %s", STORIES);
    uint32_t type, value;
    memcpy(&type, hit, 4);
    memcpy(&value, hit + 4, 4);
    REQUIRE(type == 4 && value == 2, "eos_token_id: type %u value %u", type, value);  /* GGUF uint32 */
    value = 1;
    memcpy(hit + 4, &value, 4);
    snprintf(out, sizeof out, "%s/stories-eos1.gguf", test_tmpdir());
    REQUIRE(test_write_file(out, buf, len) == 0);
    free(buf);
    return out;
}

TEST(generation_stops_at_eos) {
    const char *path = stories_with_eos_1();
    fixture f;
    memset(&f, 0, sizeof f);
    char err[512];
    llm_model_params mp = llm_model_default_params();
    REQUIRE(llm_model_load(path, &mp, &f.m, err, sizeof err) == LLM_OK, "%s", err);
    REQUIRE(llm_token_eos(f.m) == 1);
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = 512;
    cp.n_threads = 1;
    REQUIRE(llm_context_new(f.m, &cp, &f.c, err, sizeof err) == LLM_OK, "%s", err);
    size_t n = 0;
    REQUIRE(llm_tokenize(f.m, PROMPT, strlen(PROMPT), true, false, f.prompt, 64, &n) == LLM_OK);
    f.n_prompt = (int)n;

    static sink s;
    llm_generate_result res;
    int rc = run_greedy(&f, &s, -1, &res);   /* until EOS or a full context */
    REQUIRE(rc == LLM_OK, "%s", llm_context_error(f.c));
    CHECK_EQ_INT(res.stop_reason, LLM_STOP_EOS);
    CHECK(res.n_generated > 10 && res.n_generated < 512 - f.n_prompt, "%d tokens", res.n_generated);
    /* the story's last sentence is complete and nothing follows the EOS */
    CHECK(s.len > 0 && (s.text[s.len - 1] == '.' || s.text[s.len - 1] == '!' || s.text[s.len - 1] == '"'),
          "ends with '%c'", s.len ? s.text[s.len - 1] : '?');
    /* a limit beyond the EOS changes nothing */
    static sink s2;
    llm_generate_result res2;
    REQUIRE(run_greedy(&f, &s2, res.n_generated + 20, &res2) == LLM_OK);
    CHECK_EQ_INT(res2.stop_reason, LLM_STOP_EOS);
    CHECK_EQ_INT(res2.n_generated, res.n_generated);
    CHECK_EQ_STR(s2.text, s.text);
    /* and a limit just short of it ends by the limit */
    REQUIRE(run_greedy(&f, &s2, res.n_generated, &res2) == LLM_OK);
    CHECK_EQ_INT(res2.stop_reason, LLM_STOP_LENGTH);
    fx_close(&f);
}

TEST(cancel_flag_and_callback_stop_generation) {
    fixture f;
    fx_open(&f, 256, 0);
    static sink s;
    llm_generate_result res;
    volatile int cancel = 0;
    /* the flag set from the callback after the 3rd chunk */
    memset(&s, 0, sizeof s);
    s.cancel = &cancel;
    s.cancel_after = 3;
    llm_generate_params p = greedy_params(&s, 64);
    p.cancel = &cancel;
    CHECK_EQ_INT(llm_generate(f.c, f.prompt, f.n_prompt, &p, &res), LLM_ERR_CANCELLED);
    CHECK_EQ_INT(res.stop_reason, LLM_STOP_CANCELLED);
    CHECK_EQ_INT(s.chunks, 3);
    CHECK(res.n_generated >= 3 && res.n_generated < 10, "%d tokens", res.n_generated);
    /* set before the call: not even the prompt runs */
    llm_context_reset(f.c);
    memset(&s, 0, sizeof s);
    cancel = 1;
    CHECK_EQ_INT(llm_generate(f.c, f.prompt, f.n_prompt, &p, &res), LLM_ERR_CANCELLED);
    CHECK_EQ_INT(res.n_generated, 0);
    CHECK_EQ_INT(llm_context_n_past(f.c), 0);
    CHECK_EQ_INT(s.chunks, 0);
    /* the callback's non-zero return */
    cancel = 0;
    llm_context_reset(f.c);
    memset(&s, 0, sizeof s);
    s.stop_after = 5;
    CHECK_EQ_INT(llm_generate(f.c, f.prompt, f.n_prompt, &p, &res), LLM_ERR_CANCELLED);
    CHECK_EQ_INT(res.stop_reason, LLM_STOP_CANCELLED);
    CHECK_EQ_INT(s.chunks, 5);
    fx_close(&f);
}

TEST(streamed_chunks_are_whole_utf8_characters) {
    /* stories260K's vocabulary is half byte tokens: hot sampling strings
     * them together into partial and invalid UTF-8 sequences */
    fixture f;
    fx_open(&f, 512, 0);
    static sink s;
    int total_chunks = 0, non_ascii = 0;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        memset(&s, 0, sizeof s);
        llm_context_reset(f.c);
        llm_generate_params p = greedy_params(&s, 200);
        p.sampling = llm_sampler_default_params();
        p.sampling.temperature = 3.0f;
        p.sampling.top_k = 0;
        p.sampling.top_p = 1.0f;
        p.sampling.min_p = 0.0f;
        p.sampling.seed = seed;
        REQUIRE(llm_generate(f.c, f.prompt, f.n_prompt, &p, NULL) == LLM_OK);
        CHECK_EQ_INT(s.bad_utf8, 0);
        total_chunks += s.chunks;
        for (size_t i = 0; i < s.len; i++) non_ascii += (unsigned char)s.text[i] >= 0x80;
    }
    CHECK(total_chunks > 100);
    CHECK(non_ascii > 0, "no byte tokens were sampled: the test proves nothing");
    fx_close(&f);
}

TEST(full_context_stops_cleanly) {
    fixture f;
    fx_open(&f, 32, 0);
    static sink s;
    llm_generate_result res;
    REQUIRE(run_greedy(&f, &s, 100, &res) == LLM_OK, "%s", llm_context_error(f.c));
    CHECK_EQ_INT(res.stop_reason, LLM_STOP_CONTEXT_FULL);
    /* 32 - 5 positions after the prompt; the last sampled token is not evaluated */
    CHECK_EQ_INT(res.n_generated, 32 - f.n_prompt + 1);
    CHECK(s.len > 0);
    /* a prompt that does not fit */
    int32_t big[40];
    for (int i = 0; i < 40; i++) big[i] = f.prompt[i % f.n_prompt];
    llm_context_reset(f.c);
    llm_generate_params p = greedy_params(&s, 4);
    CHECK_EQ_INT(llm_generate(f.c, big, 40, &p, &res), LLM_ERR_CONTEXT_FULL);
    CHECK(strstr(llm_context_error(f.c), "context") != NULL, "%s", llm_context_error(f.c));
    CHECK_EQ_INT(llm_context_n_past(f.c), 0);   /* nothing of it was evaluated */
    /* other bad arguments */
    CHECK_EQ_INT(llm_generate(NULL, big, 4, &p, &res), LLM_ERR_ARG);
    CHECK_EQ_INT(llm_generate(f.c, NULL, 4, &p, &res), LLM_ERR_ARG);
    fx_close(&f);
}

TEST(continues_from_the_context_with_an_empty_prompt) {
    fixture f;
    fx_open(&f, 256, 0);
    static sink whole, tail;
    llm_generate_result res;
    REQUIRE(run_greedy(&f, &whole, 20, &res) == LLM_OK);
    llm_context_reset(f.c);
    REQUIRE(llm_decode(f.c, f.prompt, f.n_prompt) == LLM_OK);
    memset(&tail, 0, sizeof tail);
    llm_generate_params p = greedy_params(&tail, 20);
    REQUIRE(llm_generate(f.c, NULL, 0, &p, &res) == LLM_OK, "%s", llm_context_error(f.c));
    CHECK_EQ_STR(tail.text, whole.text);
    llm_context_reset(f.c);
    CHECK_EQ_INT(llm_generate(f.c, NULL, 0, &p, &res), LLM_ERR_ARG);
    fx_close(&f);
}

TEST(continuation_keeps_the_first_pieces_space) {
    fixture f;
    fx_open(&f, 256, 0);
    const char *text = PROMPT ",";  /* greedy goes on with "▁there" */
    size_t n = 0;
    REQUIRE(llm_tokenize(f.m, text, strlen(text), true, false, f.prompt, 64, &n) == LLM_OK);
    f.n_prompt = (int)n;
    static sink cont, answer;
    llm_generate_result res;
    llm_generate_params p = greedy_params(&cont, 8);
    p.continuation = true;
    REQUIRE(llm_generate(f.c, f.prompt, f.n_prompt, &p, &res) == LLM_OK);
    llm_context_reset(f.c);
    p = greedy_params(&answer, 8);
    REQUIRE(llm_generate(f.c, f.prompt, f.n_prompt, &p, &res) == LLM_OK);
    CHECK(strncmp(cont.text, " there", 6) == 0, "continuation: \"%s\"", cont.text);
    CHECK_EQ_STR(answer.text, cont.text + 1);
    fx_close(&f);
}

/* The chat template end to end on a random-weight model with the Mistral
 * vocabulary (written by mkmodel): the prompt's ids and the greedy text
 * equal llama.cpp's for the same text parsed with special tokens. */
TEST(chat_prompt_on_a_mistral_vocab_model_matches_llama_cpp) {
    const char *vocab = test_require_shared("models/mistral-v0.1-vocab-derived.gguf");
    char mk[512], model[512], cmd[2048];
    snprintf(mk, sizeof mk, "%s/mkmodel", test_build_dir());
    FILE *probe = fopen(mk, "rb");
    if (!probe) SKIP("%s is not built", mk);
    fclose(probe);
    snprintf(model, sizeof model, "%s/tiny-mistral.gguf", test_tmpdir());
    snprintf(cmd, sizeof cmd,
             "%s --dim 128 --layers 2 --heads 4 --kv-heads 1 --ff 256 --vocab-from %s --type f32 --seed 3 "
             "--out %s >/dev/null 2>&1", mk, test_shq(vocab), test_shq(model));
    REQUIRE(system(cmd) == 0, "%s failed", cmd);

    llm_chat_msg msgs[2] = {{"system", "Be brief."}, {"user", "Hello there"}};
    char *prompt = llm_chat_format(msgs, 2);
    REQUIRE(prompt);
    char args[1024];
    snprintf(args, sizeof args, "greedy --model %s --text %s --special --no-bos --n 16 --threads 1", test_shq(model),
             test_shq(prompt));
    char *js = test_oracle(args);
    int32_t want_tokens[64];
    static char want_text[4096];
    int nt = json_ints(js, "tokens", want_tokens, 64);
    int tl = json_str(js, "text", want_text, sizeof want_text);
    free(js);
    REQUIRE(nt > 0 && tl > 0, "cannot read the oracle's output");

    fixture f;
    memset(&f, 0, sizeof f);
    char err[512];
    llm_model_params mp = llm_model_default_params();
    REQUIRE(llm_model_load(model, &mp, &f.m, err, sizeof err) == LLM_OK, "%s", err);
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = 128;
    cp.n_threads = 1;
    REQUIRE(llm_context_new(f.m, &cp, &f.c, err, sizeof err) == LLM_OK, "%s", err);
    size_t n = 0;
    REQUIRE(llm_tokenize(f.m, prompt, strlen(prompt), false, true, f.prompt, 64, &n) == LLM_OK);
    f.n_prompt = (int)n;
    CHECK_EQ_INT(f.n_prompt, nt);
    for (int i = 0; i < nt && i < f.n_prompt; i++)
        if (f.prompt[i] != want_tokens[i]) {
            CHECK(0, "prompt id %d: %d, llama.cpp %d", i, f.prompt[i], want_tokens[i]);
            break;
        }
    static sink s;
    memset(&s, 0, sizeof s);
    llm_generate_params p = greedy_params(&s, 16);   /* an answer: first space dropped, as the oracle's text */
    llm_generate_result res;
    REQUIRE(llm_generate(f.c, f.prompt, f.n_prompt, &p, &res) == LLM_OK, "%s", llm_context_error(f.c));
    CHECK_EQ_STR(s.text, want_text);
    CHECK_EQ_INT(s.bad_utf8, 0);
    free(prompt);
    fx_close(&f);
}

/* The n_vocab logits of the last token of seq evaluated in a fresh context
 * (malloc'd). */
static float *fresh_logits(llm_model *m, const int32_t *seq, int n) {
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = 256;
    cp.n_threads = 1;
    llm_context *c = NULL;
    char err[512];
    REQUIRE(llm_context_new(m, &cp, &c, err, sizeof err) == LLM_OK, "%s", err);
    REQUIRE(llm_decode(c, seq, n) == LLM_OK, "%s", llm_context_error(c));
    int nv = llm_n_vocab(m);
    float *l = malloc(sizeof(float) * nv);
    REQUIRE(l);
    memcpy(l, llm_get_logits(c, -1), sizeof(float) * nv);
    llm_context_free(c);
    return l;
}

/* llm_decode_prefix keeps the cache of the longest shared prefix and gives
 * bit for bit the logits of a fresh evaluation: a second prompt that extends
 * the first, one that branches off in the middle, the same one again (the
 * last token is always evaluated), one with nothing in common, and after
 * an embedding (which clears the context) nothing is reused. */
TEST(prefix_reuse_equals_a_fresh_evaluation) {
    fixture f;
    fx_open(&f, 256, 7);            /* batches of 7: the kept prefix ends mid-batch */
    int nv = llm_n_vocab(f.m);
    int32_t a[60], b[60];
    for (int i = 0; i < 60; i++) a[i] = i == 0 ? 1 : 3 + (i * 31) % (nv - 3);
    memcpy(b, a, sizeof a);
    for (int i = 25; i < 60; i++) b[i] = 3 + (i * 17 + 5) % (nv - 3);
    struct { const int32_t *seq; int n, want_reused; const char *what; } steps[] = {
        {a, 40, 0, "first prompt"},
        {a, 60, 40, "extends it"},
        {b, 50, 25, "branches at 25"},
        {b, 50, 49, "the same again"},
        {a + 30, 20, 0, "nothing in common"},
    };
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        int reused = -1;
        REQUIRE(llm_decode_prefix(f.c, steps[k].seq, steps[k].n, &reused) == LLM_OK, "%s", llm_context_error(f.c));
        CHECK(reused == steps[k].want_reused, "%s: reused %d, want %d", steps[k].what, reused, steps[k].want_reused);
        CHECK_EQ_INT(llm_context_n_past(f.c), steps[k].n);
        float *want = fresh_logits(f.m, steps[k].seq, steps[k].n);
        CHECK(memcmp(want, llm_get_logits(f.c, -1), sizeof(float) * nv) == 0, "%s: logits differ from a fresh run",
              steps[k].what);
        free(want);
    }
    /* an embedding clears the context: nothing to reuse afterwards */
    float *v = malloc(sizeof(float) * llm_n_embd(f.m));
    REQUIRE(v);
    REQUIRE(llm_embed(f.c, "Once upon a time", 16, v) == LLM_OK);
    free(v);
    int reused = -1;
    REQUIRE(llm_decode_prefix(f.c, a, 30, &reused) == LLM_OK);
    CHECK_EQ_INT(reused, 0);
    /* too long for the context: an error that keeps what it held */
    int32_t big[300];
    for (int i = 0; i < 300; i++) big[i] = a[i % 60];
    CHECK_EQ_INT(llm_decode_prefix(f.c, big, 300, &reused), LLM_ERR_CONTEXT_FULL);
    CHECK_EQ_INT(llm_context_n_past(f.c), 30);
    fx_close(&f);
}

/* llm_generate with reuse_prefix: the second turn's prompt (first prompt,
 * the answer, more text) reuses everything the context holds and generates
 * what a fresh context generates for it. */
TEST(generate_reuses_the_previous_turn) {
    fixture f;
    fx_open(&f, 256, 0);
    llm_generate_params gp = llm_generate_default_params();
    gp.n_predict = 12;
    gp.sampling.temperature = 0;
    gp.reuse_prefix = true;
    gp.continuation = true;
    llm_generate_result r1, r2, r3;
    int32_t out1[64];
    int n1 = 0;
    /* collect the first answer's tokens through the history: the context
     * holds prompt + all generated tokens but the last */
    REQUIRE(llm_generate(f.c, f.prompt, f.n_prompt, &gp, &r1) == LLM_OK, "%s", llm_context_error(f.c));
    CHECK_EQ_INT(r1.n_reused, 0);
    n1 = llm_context_n_past(f.c);
    REQUIRE(n1 == f.n_prompt + r1.n_generated - 1, "%d vs %d + %d - 1", n1, f.n_prompt, r1.n_generated);
    memcpy(out1, f.c->hist, sizeof(int32_t) * (size_t)n1);
    /* turn 2: everything held, then three more tokens */
    int32_t p2[80];
    memcpy(p2, out1, sizeof(int32_t) * (size_t)n1);
    int n2 = n1;
    p2[n2++] = 403;
    p2[n2++] = 407;
    p2[n2++] = 261;
    static sink s2, s3;
    gp.on_text = sink_fn;
    gp.user = &s2;
    REQUIRE(llm_generate(f.c, p2, n2, &gp, &r2) == LLM_OK, "%s", llm_context_error(f.c));
    CHECK_EQ_INT(r2.n_reused, n1);
    CHECK_EQ_INT(r2.n_prompt, n2);
    fx_close(&f);
    /* the same turn in a fresh context */
    fx_open(&f, 256, 0);
    gp.user = &s3;
    REQUIRE(llm_generate(f.c, p2, n2, &gp, &r3) == LLM_OK, "%s", llm_context_error(f.c));
    CHECK_EQ_INT(r3.n_reused, 0);
    CHECK_EQ_STR(s2.text, s3.text);
    CHECK_EQ_INT(r2.n_generated, r3.n_generated);
    fx_close(&f);
}

TEST(no_allocation_per_generated_token) {
#if !COUNT_ALLOCS
    SKIP("allocation counting is off under AddressSanitizer");
#else
    fixture f;
    fx_open(&f, 256, 0);
    static sink s;
    llm_generate_result res;
    long counts[2];
    const int lens[2] = {4, 48};
    for (int k = 0; k < 2; k++) {
        n_allocs = 0;
        counting = 1;
        int rc = run_greedy(&f, &s, lens[k], &res);
        counting = 0;
        REQUIRE(rc == LLM_OK);
        REQUIRE(res.n_generated == lens[k]);
        counts[k] = n_allocs;
    }
    CHECK(counts[0] == counts[1], "greedy: %ld allocations for 4 tokens, %ld for 48", counts[0], counts[1]);
    /* every filter of the sampling chain, and a stop string that never matches */
    const char *stops[1] = {"qqq"};
    for (int k = 0; k < 2; k++) {
        memset(&s, 0, sizeof s);
        llm_context_reset(f.c);
        llm_generate_params p = greedy_params(&s, lens[k]);
        p.sampling.temperature = 1.0f;
        p.sampling.top_k = 0;           /* top-p over the whole vocabulary */
        p.sampling.top_p = 0.9f;
        p.sampling.min_p = 0.01f;
        p.sampling.repeat_penalty = 1.1f;
        p.sampling.seed = 7;
        p.stop = stops;
        p.n_stop = 1;
        n_allocs = 0;
        counting = 1;
        int rc = llm_generate(f.c, f.prompt, f.n_prompt, &p, &res);
        counting = 0;
        REQUIRE(rc == LLM_OK);
        counts[k] = n_allocs;
    }
    CHECK(counts[0] == counts[1], "sampling: %ld allocations for 4 tokens, %ld for 48", counts[0], counts[1]);
    fx_close(&f);
#endif
}

/* `mrag generate` prints only the generated text on stdout. */
TEST(cli_prints_only_the_generated_text) {
    const char *path = test_require_shared(STORIES);
    char bin[512];
    snprintf(bin, sizeof bin, "%s/mrag", test_build_dir());
    FILE *probe = fopen(bin, "rb");
    if (!probe) SKIP("%s is not built (make BUILD=%s)", bin, test_build_dir());
    fclose(probe);
    fixture f;
    fx_open(&f, 256, 0);
    static sink want;
    llm_generate_result res;
    REQUIRE(run_greedy(&f, &want, 24, &res) == LLM_OK);
    fx_close(&f);

    char cmd[2048];
    int st = -1;
    snprintf(cmd, sizeof cmd, "%s generate -m %s -p %s -n 24 --temp 0 --threads 1 --verbose 2>/dev/null", bin,
             test_shq(path), test_shq(PROMPT));
    char *out = test_run_capture(cmd, &st);
    REQUIRE(out);
    CHECK_EQ_INT(st, 0);
    CHECK_EQ_STR(out, want.text);
    free(out);
    /* the timings went to stderr */
    snprintf(cmd, sizeof cmd, "%s generate -m %s -p %s -n 4 --temp 0 --verbose 2>&1 >/dev/null", bin,
             test_shq(path), test_shq(PROMPT));
    out = test_run_capture(cmd, &st);
    REQUIRE(out);
    CHECK(strstr(out, "tok/s") != NULL, "stderr: %s", out);
    free(out);
    /* a stop string on the command line */
    snprintf(cmd, sizeof cmd, "%s generate -m %s -p %s -n 24 --temp 0 --stop Lily 2>/dev/null", bin,
             test_shq(path), test_shq(PROMPT));
    out = test_run_capture(cmd, &st);
    REQUIRE(out);
    CHECK_EQ_STR(out, ", there was a little girl named ");
    free(out);
    /* Ctrl-C: the text so far stays on stdout, exit status 130 */
    snprintf(cmd, sizeof cmd,
             "timeout --preserve-status -s INT 2 %s generate -m %s -p %s -n -1 --ctx 4096 --seed 1 "
             "--threads 1 2>/dev/null; echo \"[status $?]\"", bin, test_shq(path), test_shq(PROMPT));
    out = test_run_capture(cmd, &st);
    REQUIRE(out);
    char *mark = strstr(out, "[status ");
    CHECK(mark && strcmp(mark, "[status 130]\n") == 0, "%s", mark ? mark : out);
    CHECK(mark && mark - out > 10, "no text before the interrupt");
    free(out);
    /* --help, usage errors, a missing model */
    snprintf(cmd, sizeof cmd, "%s generate --help", bin);
    out = test_run_capture(cmd, &st);
    CHECK(st == 0 && out && strstr(out, "usage: mrag generate"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s generate -m %s -p x --temp abc 2>&1", bin, test_shq(path));
    out = test_run_capture(cmd, &st);
    CHECK(st == 2 && out && strstr(out, "--temp"), "status %d: %s", st, out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "%s generate -m /nonexistent/m.gguf -p x 2>&1", bin);
    out = test_run_capture(cmd, &st);
    CHECK(st == 1 && out && strstr(out, "/nonexistent/m.gguf"), "status %d: %s", st, out ? out : "");
    free(out);
}

TEST_MAIN(RUN(prefix_reuse_equals_a_fresh_evaluation), RUN(generate_reuses_the_previous_turn),
          RUN(greedy_continuation_equals_llama_cpp), RUN(prefill_in_small_batches_gives_the_same_text),
          RUN(same_seed_same_text_other_seed_other_text), RUN(stop_strings_end_generation_and_are_never_emitted),
          RUN(generation_stops_at_eos), RUN(cancel_flag_and_callback_stop_generation),
          RUN(streamed_chunks_are_whole_utf8_characters), RUN(full_context_stops_cleanly),
          RUN(continues_from_the_context_with_an_empty_prompt),
          RUN(continuation_keeps_the_first_pieces_space),
          RUN(chat_prompt_on_a_mistral_vocab_model_matches_llama_cpp), RUN(no_allocation_per_generated_token),
          RUN(cli_prints_only_the_generated_text))
