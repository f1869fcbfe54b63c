/* test_llm_tokenizer.c — the SentencePiece tokenizer against llama.cpp: the
 * 47 reference vectors, oracle suites on the Mistral and stories260K
 * vocabularies, hand-derived BPE rules, detokenization and streaming. */
#define _GNU_SOURCE
#include "llm/gguf.h"
#include "llm/llm.h"
#include "llm/tokenizer.h"
#include "tests/test.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>

#define MISTRAL "models/mistral-v0.1-vocab-derived.gguf"
#define SPM "models/ggml-vocab-llama-spm.gguf"
#define STORIES "models/stories260K.gguf"

/* ------------------------------------------------------------ helpers */

typedef struct {
    gguf_file *f;
    llm_vocab *v;
} vocab_h;

static vocab_h open_vocab(const char *rel) {
    const char *path = test_require_shared(rel);
    vocab_h h = {0};
    char err[512] = "";
    REQUIRE(llm_gguf_open(path, &h.f, err, sizeof err) == 0, "%s", err);
    int rc = llm_vocab_load(h.f, &h.v, err, sizeof err);
    if (rc != LLM_OK) llm_gguf_close(h.f);
    REQUIRE(rc == LLM_OK && h.v, "llm_vocab_load: %d %s", rc, err);
    return h;
}

static void close_vocab(vocab_h *h) {
    llm_vocab_free(h->v);
    llm_gguf_close(h->f);
    h->v = NULL;
    h->f = NULL;
}

/* Tokenizes into a malloc'd array (caller frees); n in *n. */
static int32_t *tok(const llm_vocab *v, const char *s, size_t len, bool bos, bool special, size_t *n) {
    size_t need = 0;
    int rc = llm_vocab_tokenize(v, s, len, bos, special, NULL, 0, &need);
    if (rc != LLM_OK && rc != LLM_ERR_ARG) return NULL;
    int32_t *ids = malloc((need + 1) * sizeof *ids);
    if (!ids) return NULL;
    rc = llm_vocab_tokenize(v, s, len, bos, special, ids, need, n);
    if (rc != LLM_OK || *n != need) { free(ids); return NULL; }
    return ids;
}

static bool ids_eq(const int32_t *a, size_t na, const cJSON *arr) {
    if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != na) return false;
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (!cJSON_IsNumber(e) || (int32_t)e->valuedouble != a[i]) return false;
        i++;
    }
    return true;
}

static void print_ids(const char *label, const int32_t *a, size_t n) {
    printf("  #   %s:", label);
    for (size_t i = 0; i < n && i < 40; i++) printf(" %d", a[i]);
    printf("%s\n", n > 40 ? " ..." : "");
}

/* Printable excerpt of bytes for failure messages. */
static const char *show(const char *s, size_t n) {
    static char buf[200];
    size_t o = 0;
    for (size_t i = 0; i < n && o < sizeof buf - 8; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') buf[o++] = (char)c;
        else o += (size_t)snprintf(buf + o, sizeof buf - o, "\\x%02x", c);
    }
    buf[o] = 0;
    return buf;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const unsigned char *p, size_t n) {
    char *o = malloc(4 * (n / 3 + 1) + 1), *q = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        *q++ = B64[v >> 18 & 63];
        *q++ = B64[v >> 12 & 63];
        *q++ = i + 1 < n ? B64[v >> 6 & 63] : '=';
        *q++ = i + 2 < n ? B64[v & 63] : '=';
    }
    *q = 0;
    return o;
}

static unsigned char *b64_decode(const char *s, size_t *n) {
    size_t len = strlen(s);
    unsigned char *o = malloc(len / 4 * 3 + 3);
    if (!o) return NULL;
    uint32_t acc = 0;
    int bits = 0;
    *n = 0;
    for (size_t i = 0; i < len && s[i] != '='; i++) {
        const char *p = strchr(B64, s[i]);
        if (!p || !*p) continue;
        acc = acc << 6 | (uint32_t)(p - B64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[(*n)++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

static bool valid_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) { i++; continue; }
        else if (c >= 0xC2 && c <= 0xDF) k = 1;
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        else return false;
        if (i + k >= n) return false;
        for (size_t j = 1; j <= k; j++) {
            unsigned d = s[i + j];
            if (d < (j == 1 ? lo : 0x80) || d > (j == 1 ? hi : 0xBF)) return false;
        }
        i += k + 1;
    }
    return true;
}

/* ------------------------------------------------------ the text suite */

typedef struct {
    char *s;
    size_t n;
} text;

typedef struct {
    text *t;
    size_t n, cap;
} suite;

static void suite_add(suite *su, const char *s, size_t n) {
    if (su->n == su->cap) {
        su->cap = su->cap * 2 + 64;
        su->t = realloc(su->t, su->cap * sizeof *su->t);
        if (!su->t) abort();
    }
    char *c = malloc(n + 1);
    if (!c) abort();
    memcpy(c, s, n);
    c[n] = 0;
    su->t[su->n++] = (text){c, n};
}

static void suite_adds(suite *su, const char *s) { suite_add(su, s, strlen(s)); }

static void suite_free(suite *su) {
    for (size_t i = 0; i < su->n; i++) free(su->t[i].s);
    free(su->t);
    memset(su, 0, sizeof *su);
}

static uint64_t rng_state;
static uint32_t rnd(uint32_t n) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 63)); o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 63));
    o[2] = (char)(0x80 | (cp >> 6 & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

static const char *const fixed_texts[] = {
    "Hello world", " Hello world", "Hello World!", "hello, world.", "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times, it was the age of wisdom.",
    "Mistral 7B outperforms Llama 2 13B on all benchmarks we tested.",
    "Retrieval-augmented generation (RAG) answers from your own documents.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Größenordnung, Straße, Äpfel, Öl, Übermut — schön!",
    "Donaudampfschifffahrtsgesellschaftskapitän",
    "Le cœur a ses raisons que la raison ne connaît point.",
    "Où est la bibliothèque ? À côté de l'église, évidemment.",
    "« Ça va ? » — « Très bien, merci ! »",
    "int main(void) {\n\treturn 0;\n}\n",
    "def f(x):\n    return x ** 2  # square\n",
    "for (size_t i = 0; i < n; i++) { sum += a[i] * b[i]; }",
    "<div class=\"x\">&amp; &lt;tag&gt;</div>",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "{\"key\": [1, 2.5, -3e10, true, null]}",
    "3.14159265358979323846", "1234567890", "0x7fffffff", "1,000,000.00 $ 42% -17 +3",
    "2024-01-15T10:30:00Z", "192.168.0.1:8080", "v1.2.3-rc.4",
    "😀", "👍🏽 emoji 🎉🎉🎉", "👨‍👩‍👧‍👦 family", "🇫🇷🇩🇪", "I ❤ NY ☕",
    "中文分词测试", "日本語のテキストです。", "한국어 텍스트", "你好，世界！", "東京タワー",
    "Привет, мир!", "Γειά σου Κόσμε", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก",
    " ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", " \n", "\n ", " \t \n ", "a  b   c    d",
    "   leading spaces", "trailing spaces   ", "tab\tseparated\tvalues", "line1\nline2\r\nline3\r",
    "\xe2\x96\x81 already escaped", "\xe2\x96\x81\xe2\x96\x81", "\x01\x02\x03 control \x7f",
    "a", "A", ".", "?", "!!!", "...", "—", "…", "\xc2\xa0nbsp", "zero\xe2\x80\x8bwidth",
    "[INST]", "[/INST]", "</s>", "<s>", "<unk>", "<s><s>", "</s></s>", "<s> </s>",
    "[INST] What is RAG? [/INST]", "<s>[INST] Hi [/INST]Hello</s>", "<s>[INST] Q1 [/INST]A1</s>[INST] Q2 [/INST]",
    "text</s>more", "x<s>y", " <s> ", "<unk>unknown", "a</s>", "</s>\n", "\n<s>",
    "<0x0A>", "<0xFF>", "▁", "<<s>>", "</s</s>>",
};

/* Builds the deterministic suite: fixed texts, generated prose mixes,
 * whitespace runs, numbers, scripts and 10 kB words. */
static void build_suite(suite *su) {
    rng_state = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < sizeof fixed_texts / sizeof fixed_texts[0]; i++) suite_adds(su, fixed_texts[i]);
    static const char *const words[] = {
        "the", "of", "and", "document", "retrieval", "Mistral", "engine", "token", "über", "Straße", "Mädchen",
        "naïve", "café", "déjà", "élève", "garçon", "function", "return", "struct", "0.5", "42", "1e-9",
        "😀", "🚀", "中文", "日本", "Привет", "λ", "∑", "→", "€", "£", "¥", "(", ")", "{", "}", ";", "::",
        "->", "==", "!=", "//", "/*", "*/", "#include", "<stdio.h>", "don't", "it's", "U.S.A.", "e.g.",
    };
    static const char *const seps[] = {" ", " ", " ", " ", "  ", "\t", "\n", ", ", ". ", "\n\n", "   ", " - "};
    char buf[4096];
    for (int k = 0; k < 110; k++) {
        size_t o = 0;
        int nw = 1 + (int)rnd(25);
        if (rnd(5) == 0) buf[o++] = ' ';
        for (int w = 0; w < nw && o < 3500; w++) {
            const char *x = words[rnd(sizeof words / sizeof words[0])];
            size_t l = strlen(x);
            memcpy(buf + o, x, l);
            o += l;
            if (w + 1 < nw) {
                const char *s = seps[rnd(sizeof seps / sizeof seps[0])];
                memcpy(buf + o, s, strlen(s));
                o += strlen(s);
            }
        }
        if (rnd(4) == 0) buf[o++] = ' ';
        suite_add(su, buf, o);
    }
    /* Random code points from several scripts and ranges. */
    static const uint32_t ranges[][2] = {
        {0x20, 0x7e}, {0xa0, 0x24f}, {0x370, 0x3ff}, {0x400, 0x4ff}, {0x4e00, 0x9fff}, {0x3040, 0x30ff},
        {0xac00, 0xd7a3}, {0x1f300, 0x1f64f}, {0x2000, 0x206f}, {0x10000, 0x1007f}, {0xe000, 0xe0ff},
    };
    for (int k = 0; k < 40; k++) {
        size_t o = 0;
        int nc = 1 + (int)rnd(40);
        const uint32_t *r = ranges[rnd(sizeof ranges / sizeof ranges[0])];
        for (int c = 0; c < nc; c++) {
            uint32_t cp = r[0] + rnd(r[1] - r[0] + 1);
            if (rnd(6) == 0) cp = ' ';
            o += put_utf8(buf + o, cp);
        }
        suite_add(su, buf, o);
    }
    /* Whitespace runs. */
    for (int k = 0; k < 20; k++) {
        size_t o = 0;
        int n = 1 + (int)rnd(30);
        for (int c = 0; c < n; c++) buf[o++] = " \t\n\r"[rnd(k < 10 ? 1 + (uint32_t)k % 4 : 4)];
        if (k % 3 == 0) { memcpy(buf + o, "word", 4); o += 4; }
        suite_add(su, buf, o);
    }
    /* Numbers. */
    for (int k = 0; k < 15; k++) {
        int n = snprintf(buf, sizeof buf, "%u.%u %d %x", rnd(1000000), rnd(1000), (int)rnd(200000) - 100000, rnd(0xfffffff));
        suite_add(su, buf, (size_t)n);
    }
    /* A 30 kB text of prose and code: one fragment with many words. */
    {
        char *t = malloc(30000 + 64);
        if (!t) abort();
        size_t o = 0;
        while (o < 30000) {
            const char *x = fixed_texts[rnd(40)];
            size_t l = strlen(x);
            memcpy(t + o, x, l);
            o += l;
            t[o++] = " \n\t"[rnd(3)];
        }
        suite_add(su, t, o);
        free(t);
    }
    /* 10 kB words. */
    char *big = malloc(10241);
    if (!big) abort();
    memset(big, 'a', 10240);
    suite_add(su, big, 10240);
    for (int i = 0; i < 10240; i++) big[i] = (char)('a' + rnd(26));
    suite_add(su, big, 10240);
    size_t o = 0;
    while (o + 4 < 10240) o += put_utf8(big + o, 0x4e00 + rnd(0x5000));
    suite_add(su, big, o);
    o = 0;
    while (o + 16 < 10240) {
        static const char *const p[] = {"abc", "de", "f", "xyz", "Straße", "😀"};
        const char *x = p[rnd(6)];
        memcpy(big + o, x, strlen(x));
        o += strlen(x);
    }
    suite_add(su, big, o);
    free(big);
}

/* Invalid UTF-8 inputs: node gives llama.cpp these bytes with each invalid
 * subpart replaced by U+FFFD. */
static const char *const invalid_texts[] = {
    "\xff", "\xfe\xff", "a\x80" "b", "\xc3(", "\xe2\x82", "\xe2\x82(", "\xf0\x9f\x98", "abc\xf0\x9f",
    "\xed\xa0\x80 surrogate", "\xc0\xaf overlong", "\xf5\x80\x80\x80", "x\xffy\xfez", "Stra\xdf" "e latin1",
    "\x80\x80\x80", "caf\xe9 cr\xe8me",
};

/* Random strings over tricky bytes (parts of "▁", UTF-8 leads and
 * continuations, special-token characters, spaces): the oracle sees them
 * with invalid subparts replaced by U+FFFD, and they are compared on
 * exactly the bytes it saw. */
static void add_tricky(suite *su, int n) {
    static const char *const bits[] = {"a", "e", "t", " ", " ", "  ", "\n", "\t", "<", ">", "/", "s", "[",
                                       "]", "INST", "<s>", "</s>", "[INST]", "\xe2\x96\x81", "\xe2", "\x96",
                                       "\xf0\x9f\x98\x80", "\xf0", "\xc3\xa9", "\xc3", "\xe4\xb8\xad", "\xff"};
    for (int k = 0; k < n; k++) {
        char buf[200];
        size_t o = 0;
        int parts = 1 + (int)rnd(30);
        for (int p = 0; p < parts; p++) {
            const char *b = bits[rnd(sizeof bits / sizeof bits[0])];
            memcpy(buf + o, b, strlen(b));
            o += strlen(b);
        }
        suite_add(su, buf, o);
    }
}

/* Writes the batch file for the oracle: every text twice, without then with
 * special parsing ({"text": ...} or, for invalid UTF-8, {"b64": ...}). */
static char *write_batch(const suite *su) {
    const char *dir = test_tmpdir();
    static char path[400];
    snprintf(path, sizeof path, "%s/batch.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    fputc('[', f);
    for (size_t j = 0; j < 2 * su->n; j++) {
        if (j) fputc(',', f);
        const text *t = &su->t[j % su->n];
        const char *special = j < su->n ? "false" : "true";
        if (!valid_utf8((const unsigned char *)t->s, t->n)) {
            char *b = b64_encode((const unsigned char *)t->s, t->n);
            fprintf(f, "{\"special\":%s,\"b64\":\"%s\"}", special, b ? b : "");
            free(b);
            continue;
        }
        fprintf(f, "{\"special\":%s,\"text\":\"", special);
        for (size_t k = 0; k < t->n; k++) {
            unsigned char c = (unsigned char)t->s[k];
            if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
            else if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
            else fputc(c, f);
        }
        fputs("\"}", f);
    }
    fputs("]\n", f);
    return fclose(f) == 0 ? path : NULL;
}

/* Runs the oracle once over the suite (with and without special parsing)
 * and compares every result; returns the number of results checked. */
static size_t check_suite_vs_oracle(const char *rel, const llm_vocab *v, const suite *su) {
    const char *model = test_shared_path(rel);
    const char *batch = write_batch(su);
    REQUIRE(batch, "cannot write the batch file");
    char args[1200];
    snprintf(args, sizeof args, "tokenize --model %s --batch %s", test_shq(model), test_shq(batch));
    char *json = test_oracle(args);
    cJSON *root = cJSON_Parse(json);
    free(json);
    REQUIRE(root, "oracle output is not JSON");
    const cJSON *res = cJSON_GetObjectItem(root, "results");
    REQUIRE(cJSON_GetArraySize(res) == 2 * (int)su->n, "oracle returned %d results for %zu texts",
            cJSON_GetArraySize(res), su->n);
    size_t j = 0, bad = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, res) {
        size_t i = j % su->n;
        bool special = j >= su->n;
        /* Tokenize exactly the bytes llama.cpp received. */
        size_t n_sent = 0;
        const cJSON *sent = cJSON_GetObjectItem(r, "sent_b64");
        unsigned char *bytes = b64_decode(cJSON_GetStringValue(sent) ? cJSON_GetStringValue(sent) : "", &n_sent);
        REQUIRE(bytes);
        bool raw = valid_utf8((const unsigned char *)su->t[i].s, su->t[i].n);
        if (raw) CHECK(n_sent == su->t[i].n && memcmp(bytes, su->t[i].s, n_sent) == 0,
                       "text %zu reached llama.cpp altered", i);
        size_t n = 0;
        int32_t *ids = tok(v, (const char *)bytes, n_sent, false, special, &n);
        const cJSON *want = cJSON_GetObjectItem(r, "ids");
        if (!ids || !ids_eq(ids, n, want)) {
            if (bad++ < 5) {
                CHECK(false, "text %zu \"%s\" (%zu bytes, special=%d) differs from llama.cpp", i,
                      show((const char *)bytes, n_sent), n_sent, special);
                if (ids) print_ids("ours", ids, n);
                char *w = cJSON_PrintUnformatted(want);
                printf("  #   llama.cpp: %.300s\n", w ? w : "?");
                free(w);
            }
        }
        free(ids);
        free(bytes);
        j++;
    }
    CHECK(bad == 0, "%zu of %zu tokenizations differ", bad, 2 * su->n);
    cJSON_Delete(root);
    return j;
}

/* ----------------------------------------------------------- the cases */

/* llama.cpp's own vectors: 47 texts and the ids it gives (no BOS). */
TEST(vocab_llama_spm_47_vectors) {
    const char *inp_path = test_require_shared(SPM ".inp");
    char *inp = test_read_file(inp_path, NULL);
    const char *out_path = test_require_shared(SPM ".out");
    char *outs = test_read_file(out_path, NULL);
    REQUIRE(inp && outs);
    vocab_h h = open_vocab(SPM);
    const char *sep = "\n__ggml_vocab_test__\n";
    char *p = inp, *line = outs;
    int n_tests = 0, n_bad = 0;
    /* 46 separated texts, then the empty text after the last separator
     * (whose .out line is absent: no ids) makes 47. */
    for (;;) {
        char *e = strstr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        int32_t want[512];
        size_t nw = 0;
        for (char *q = line; *q;) {
            char *end;
            long x = strtol(q, &end, 10);
            if (end == q) break;
            if (nw < 512) want[nw++] = (int32_t)x;
            q = end;
        }
        size_t n = 0;
        int32_t *ids = tok(h.v, p, len, false, false, &n);
        bool same = ids && n == nw && memcmp(ids, want, n * sizeof *ids) == 0;
        if (!same) {
            n_bad++;
            CHECK(same, "test %d \"%s\" differs", n_tests, show(p, len));
            if (ids) print_ids("ours", ids, n);
            print_ids("want", want, nw);
        }
        free(ids);
        n_tests++;
        if (!e) break;
        p = e + strlen(sep);
        line = nl ? nl + 1 : line + strlen(line);
    }
    CHECK_EQ_INT(n_tests, 47);
    CHECK_EQ_INT(n_bad, 0);
    close_vocab(&h);
    free(inp);
    free(outs);
}

TEST(mistral_suite_matches_llama_cpp) {
    vocab_h h = open_vocab(MISTRAL);
    suite su = {0};
    build_suite(&su);
    for (size_t i = 0; i < sizeof invalid_texts / sizeof invalid_texts[0]; i++) suite_adds(&su, invalid_texts[i]);
    add_tricky(&su, 100);
    CHECK(su.n >= 200, "only %zu texts", su.n);
    CHECK_EQ_INT(check_suite_vs_oracle(MISTRAL, h.v, &su), 2 * su.n);
    suite_free(&su);
    close_vocab(&h);
}

TEST(stories260k_suite_matches_llama_cpp) {
    vocab_h h = open_vocab(STORIES);
    CHECK_EQ_INT(llm_vocab_n(h.v), 512);
    suite su = {0};
    build_suite(&su);
    for (size_t i = 0; i < sizeof invalid_texts / sizeof invalid_texts[0]; i++) suite_adds(&su, invalid_texts[i]);
    add_tricky(&su, 100);
    CHECK_EQ_INT(check_suite_vs_oracle(STORIES, h.v, &su), 2 * su.n);
    suite_free(&su);
    close_vocab(&h);
}

/* The vocabulary as read from the file: counts, special ids, pieces. */
TEST(mistral_vocab_facts) {
    vocab_h h = open_vocab(MISTRAL);
    const llm_vocab *v = h.v;
    CHECK_EQ_INT(llm_vocab_n(v), 32000);
    CHECK_EQ_INT(llm_vocab_bos(v), 1);
    CHECK_EQ_INT(llm_vocab_eos(v), 2);
    CHECK_EQ_INT(llm_vocab_unk(v), 0);
    CHECK(llm_vocab_add_bos(v));
    CHECK(llm_vocab_add_space_prefix(v));
    size_t len;
    CHECK_EQ_STR(llm_vocab_piece(v, 1, &len), "<s>");
    CHECK_EQ_INT(len, 3);
    CHECK_EQ_STR(llm_vocab_piece(v, 13, &len), "<0x0A>");
    CHECK_EQ_INT(llm_vocab_type(v, 13), LLM_TOKEN_BYTE);
    CHECK_EQ_INT(llm_vocab_type(v, 2), LLM_TOKEN_CONTROL);
    CHECK_EQ_INT(llm_vocab_type(v, 0), LLM_TOKEN_UNKNOWN);
    CHECK(llm_vocab_piece(v, 32000, &len) == NULL);
    CHECK(llm_vocab_piece(v, -1, &len) == NULL);
    CHECK_EQ_INT(llm_vocab_find(v, "<s>", 3), 1);
    CHECK_EQ_INT(llm_vocab_find(v, "\xe2\x96\x81", 3), 28705);    /* "▁", id from the oracle's earlier runs */
    CHECK_EQ_INT(llm_vocab_find(v, "no such piece", 13), -1);
    for (int32_t i = 0; i < 32000; i += 97) {
        const char *p = llm_vocab_piece(v, i, &len);
        int32_t j = llm_vocab_find(v, p, len);
        CHECK(j == i, "piece %d \"%s\" finds %d", i, show(p, len), j);
    }
    close_vocab(&h);
}

/* Raw invalid UTF-8 never reaches llama.cpp through node, so these ids are
 * derived by hand from llama.cpp's rules: a symbol spans as many bytes as the
 * high nibble of its first byte announces (F → 4, E → 3, C/D → 2, else 1),
 * whether or not they form a valid character; a final symbol that is not a
 * piece becomes one <0xNN> token per byte (Mistral: id = 3 + byte). */
TEST(invalid_utf8_follows_llama_cpp_grouping) {
    vocab_h h = open_vocab(MISTRAL);
    struct { const char *s; int32_t ids[8]; size_t n; } cases[] = {
        {"\xff", {28705, 3 + 0xff}, 2},
        /* \xff swallows "abc": 4 bytes, no piece → 4 byte tokens (not "abc") */
        {"\xff" "abc", {28705, 3 + 0xff, 3 + 'a', 3 + 'b', 3 + 'c'}, 5},
        /* a lone continuation byte is a 1-byte symbol: "▁a" merges, \x80 falls back */
        {"a\x80", {264, 3 + 0x80}, 2},
        /* \xc3 takes the next byte: "\xc3(" is no piece → <0xC3> <0x28> */
        {"\xc3(", {28705, 3 + 0xc3, 3 + '('}, 3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t n = 0;
        int32_t *ids = tok(h.v, cases[c].s, strlen(cases[c].s), false, false, &n);
        REQUIRE(ids);
        bool same = n == cases[c].n && memcmp(ids, cases[c].ids, n * sizeof *ids) == 0;
        CHECK(same, "case %zu \"%s\"", c, show(cases[c].s, strlen(cases[c].s)));
        if (!same) { print_ids("ours", ids, n); print_ids("want", cases[c].ids, cases[c].n); }
        free(ids);
    }
    close_vocab(&h);
}

/* ------------------------------------- a hand-made vocabulary for rules */

/* Writes a small "llama" vocabulary GGUF and opens it. */
static vocab_h tiny_vocab(const char *const *pieces, const float *scores, const int32_t *types, int n,
                          const char *model, bool space_prefix) {
    vocab_h h = {0};
    gguf_writer *w = llm_gguf_writer_new();
    REQUIRE(w);
    llm_gguf_writer_set_str(w, "general.architecture", "llama");
    if (model) llm_gguf_writer_set_str(w, "tokenizer.ggml.model", model);
    llm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", pieces, (uint64_t)n);
    llm_gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)n);
    llm_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)n);
    llm_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", space_prefix);
    char path[400], err[512] = "";
    snprintf(path, sizeof path, "%s/tiny.gguf", test_tmpdir());
    int rc = llm_gguf_writer_write(w, path, err, sizeof err);
    llm_gguf_writer_free(w);
    REQUIRE(rc == 0, "%s", err);
    REQUIRE(llm_gguf_open(path, &h.f, err, sizeof err) == 0, "%s", err);
    rc = llm_vocab_load(h.f, &h.v, err, sizeof err);
    if (rc != LLM_OK) { llm_gguf_close(h.f); h.f = NULL; }
    REQUIRE(rc == LLM_OK, "%s", err);
    return h;
}

enum { T_N = 1, T_UNK = 2, T_CTL = 3, T_USR = 4, T_BYTE = 6 };

static const char *const tiny_pieces[] = {
    "<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "c", "ab", "ba", "bc", "abc", "<ctl>", "<usr>",
    "<0x61>", "<0xC3>", "<0xA9>", "\xe2\x96\x81" "a",
};
static const float tiny_scores[] = {0, 0, 0, -5, -1, -1, -1, -2, -2, -3, -9, 0, 0, 0, 0, 0, -4};
static const int32_t tiny_types[] = {T_UNK, T_CTL, T_CTL, T_N, T_N, T_N, T_N, T_N, T_N, T_N, T_N, T_CTL, T_USR,
                                     T_BYTE, T_BYTE, T_BYTE, T_N};
#define TINY_N ((int)(sizeof tiny_pieces / sizeof tiny_pieces[0]))

static void expect_ids(const llm_vocab *v, const char *s, bool special, const int32_t *want, size_t nw) {
    size_t n = 0;
    int32_t *ids = tok(v, s, strlen(s), false, special, &n);
    REQUIRE(ids, "tokenize failed on \"%s\"", show(s, strlen(s)));
    bool same = n == nw && memcmp(ids, want, n * sizeof *ids) == 0;
    CHECK(same, "\"%s\" special=%d", show(s, strlen(s)), special);
    if (!same) { print_ids("ours", ids, n); print_ids("want", want, nw); }
    free(ids);
}

/* Merge order: highest score first, ties to the leftmost pair; merges only
 * ever join adjacent symbols; what remains unmatched falls back to bytes or
 * UNK. Expected ids follow from the scores above by hand. */
TEST(bpe_merge_order_and_fallback) {
    vocab_h h = tiny_vocab(tiny_pieces, tiny_scores, tiny_types, TINY_N, "llama", false);
    const llm_vocab *v = h.v;
    /* "aba": "ab" (left 0) and "ba" (left 1) tie at -2 → leftmost merges: ab, a */
    expect_ids(v, "aba", false, (int32_t[]){7, 4}, 2);
    /* "bab": "ba" (left 0) beats "ab" (left 1) on the tie → ba, b */
    expect_ids(v, "bab", false, (int32_t[]){8, 5}, 2);
    /* "abc": "ab" (-2) beats "bc" (-3); then "abc" (-9) joins ab+c */
    expect_ids(v, "abc", false, (int32_t[]){10}, 1);
    /* "bcab": "ab"(-2) first at the end, then "bc"(-3): bc, ab */
    expect_ids(v, "bcab", false, (int32_t[]){9, 7}, 2);
    /* no byte token for 'x' → UNK; 'é' = C3 A9 has byte tokens */
    expect_ids(v, "x\xc3\xa9", false, (int32_t[]){0, 14, 15}, 3);
    /* a space with no prefix rule is "▁" (a piece here) */
    expect_ids(v, "a a", false, (int32_t[]){4, 16}, 2);
    close_vocab(&h);
}

/* Special pieces: control ones split out only with parse_special; the
 * user-defined one always (llama.cpp pre-splits user-defined tokens). The
 * leading-space prefix comes back after every special token. */
TEST(special_tokens_and_space_prefix) {
    vocab_h h = tiny_vocab(tiny_pieces, tiny_scores, tiny_types, TINY_N, "llama", true);
    const llm_vocab *v = h.v;
    /* "a" → "▁a" (prefix) */
    expect_ids(v, "a", false, (int32_t[]){16}, 1);
    /* parse_special: "<s>" is BOS; text after it gets the prefix again */
    expect_ids(v, "<s>a", true, (int32_t[]){1, 16}, 2);
    expect_ids(v, "a<s>a", true, (int32_t[]){16, 1, 16}, 3);
    /* without parse_special "<s>" is text: "<", "s", ">" have no pieces or
     * byte tokens → UNK each; "▁" prefix first */
    expect_ids(v, "<s>", false, (int32_t[]){3, 0, 0, 0}, 4);
    /* user-defined "<usr>" splits out even without parse_special */
    expect_ids(v, "a<usr>a", false, (int32_t[]){16, 12, 16}, 3);
    expect_ids(v, "<ctl><usr>", true, (int32_t[]){11, 12}, 2);
    /* the UNK piece is special too ("<unk>" in text → id 0 with parse_special) */
    expect_ids(v, "<unk>", true, (int32_t[]){0}, 1);
    /* BOS request */
    size_t n = 0;
    int32_t *ids = tok(v, "a", 1, true, false, &n);
    REQUIRE(ids);
    CHECK(n == 2 && ids[0] == 1 && ids[1] == 16);
    free(ids);
    /* empty text: nothing, or just BOS */
    int32_t one[2];
    CHECK_EQ_INT(llm_vocab_tokenize(v, "", 0, false, false, one, 2, &n), LLM_OK);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(llm_vocab_tokenize(v, "", 0, true, false, one, 2, &n), LLM_OK);
    CHECK(n == 1 && one[0] == 1);
    close_vocab(&h);
}

/* A piece with "▁" after a letter ("a▁") may merge across a space, so the
 * tokenizer must not split the text into words for such a vocabulary. */
TEST(pieces_spanning_a_space_merge_across_it) {
    static const char *const pieces[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b",
                                         "a\xe2\x96\x81", "\xe2\x96\x81" "a", "a\xe2\x96\x81" "b"};
    static const float scores[] = {0, 0, 0, -5, -1, -1, -1, -4, -2};
    static const int32_t types[] = {T_UNK, T_CTL, T_CTL, T_N, T_N, T_N, T_N, T_N, T_N};
    vocab_h h = tiny_vocab(pieces, scores, types, 9, "llama", false);
    /* "a▁" (-1) beats "▁a" (-4): a▁, a */
    expect_ids(h.v, "a a", false, (int32_t[]){6, 4}, 2);
    /* a▁ then a▁+b → "a▁b" (-2) */
    expect_ids(h.v, "a b", false, (int32_t[]){8}, 1);
    close_vocab(&h);
}

TEST(load_errors_are_clear) {
    vocab_h h = {0};
    gguf_writer *w = llm_gguf_writer_new();
    REQUIRE(w);
    llm_gguf_writer_set_str(w, "general.architecture", "llama");
    llm_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    llm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tiny_pieces, 3);
    char path[400], err[512] = "";
    snprintf(path, sizeof path, "%s/gpt2.gguf", test_tmpdir());
    REQUIRE(llm_gguf_writer_write(w, path, err, sizeof err) == 0, "%s", err);
    llm_gguf_writer_free(w);
    REQUIRE(llm_gguf_open(path, &h.f, err, sizeof err) == 0, "%s", err);
    err[0] = 0;
    CHECK_EQ_INT(llm_vocab_load(h.f, &h.v, err, sizeof err), LLM_ERR_UNSUPPORTED);
    CHECK(h.v == NULL);
    CHECK(strstr(err, path) && strstr(err, "gpt2"), "err: %s", err);
    llm_gguf_close(h.f);

    /* Scores of the wrong length. */
    w = llm_gguf_writer_new();
    llm_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    llm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tiny_pieces, 4);
    llm_gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, tiny_scores, 3);
    snprintf(path, sizeof path, "%s/badscores.gguf", test_tmpdir());
    REQUIRE(llm_gguf_writer_write(w, path, err, sizeof err) == 0, "%s", err);
    llm_gguf_writer_free(w);
    REQUIRE(llm_gguf_open(path, &h.f, err, sizeof err) == 0, "%s", err);
    err[0] = 0;
    CHECK_EQ_INT(llm_vocab_load(h.f, &h.v, err, sizeof err), LLM_ERR_FORMAT);
    CHECK(strstr(err, path) && strstr(err, "scores"), "err: %s", err);
    llm_gguf_close(h.f);

    /* No tokenizer at all: fine, no vocabulary. */
    w = llm_gguf_writer_new();
    llm_gguf_writer_set_str(w, "general.architecture", "llama");
    snprintf(path, sizeof path, "%s/none.gguf", test_tmpdir());
    REQUIRE(llm_gguf_writer_write(w, path, err, sizeof err) == 0, "%s", err);
    llm_gguf_writer_free(w);
    REQUIRE(llm_gguf_open(path, &h.f, err, sizeof err) == 0, "%s", err);
    h.v = (llm_vocab *)1;
    CHECK_EQ_INT(llm_vocab_load(h.f, &h.v, err, sizeof err), LLM_OK);
    CHECK(h.v == NULL);
    llm_gguf_close(h.f);
}

/* ------------------------------------------------ public API, detokenizer */

static llm_model *load_vocab_model(const char *rel) {
    const char *path = test_require_shared(rel);
    llm_model_params p = llm_model_default_params();
    p.vocab_only = true;
    llm_model *m = NULL;
    char err[512] = "";
    int rc = llm_model_load(path, &p, &m, err, sizeof err);
    REQUIRE(rc == LLM_OK && m, "llm_model_load: %d %s", rc, err);
    return m;
}

TEST(public_api_tokenize) {
    llm_model *m = load_vocab_model(MISTRAL);
    CHECK_EQ_INT(llm_n_vocab(m), 32000);
    CHECK_EQ_INT(llm_token_bos(m), 1);
    CHECK_EQ_INT(llm_token_eos(m), 2);
    const char *s = "<s>[INST] Hello world [/INST]";
    size_t n = 0;
    int32_t small[2];
    CHECK_EQ_INT(llm_tokenize(m, s, strlen(s), false, true, small, 2, &n), LLM_ERR_ARG);
    size_t need = n;
    CHECK(need > 2, "need %zu", need);
    int32_t ids[64];
    CHECK_EQ_INT(llm_tokenize(m, s, strlen(s), false, true, ids, 64, &n), LLM_OK);
    CHECK_EQ_INT(n, need);
    CHECK_EQ_INT(ids[0], 1);
    CHECK(small[0] == ids[0] && small[1] == ids[1], "the first cap ids are written");
    size_t len;
    const char *p = llm_token_piece(m, ids[1], &len);
    CHECK(p && len > 0);
    CHECK(llm_token_piece(m, 32000, &len) == NULL);
    llm_model_free(m);
}

/* Detokenization through the public API equals llama.cpp's (as node
 * decodes it), on id lists chosen to cover: BOS first (the next piece keeps
 * its space), control tokens with and without rendering, byte tokens making
 * up UTF-8 characters, invalid byte runs, and plain round trips. */
TEST(detokenize_matches_llama_cpp) {
    llm_model *m = load_vocab_model(MISTRAL);
    vocab_h h = open_vocab(MISTRAL);
    suite su = {0};
    build_suite(&su);
    /* id lists: the suite's tokenizations (with BOS every third), then
     * hand-made byte sequences. */
    char path[400];
    snprintf(path, sizeof path, "%s/ids.json", test_tmpdir());
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    size_t n_lists = 0;
    int32_t *lists[400];
    size_t lens[400];
    fputc('[', f);
    for (size_t i = 0; i < su.n && n_lists < 300; i += 1) {
        size_t n = 0;
        if (su.t[i].n > 2000) continue;
        int32_t *ids = tok(h.v, su.t[i].s, su.t[i].n, i % 3 == 0, i % 2 == 0, &n);
        REQUIRE(ids);
        lists[n_lists] = ids;
        lens[n_lists++] = n;
    }
    static const int32_t extra[][8] = {
        {3 + 0xf0, 3 + 0x9f, 3 + 0x98, 3 + 0x80, -1},       /* 😀 from bytes */
        {3 + 0xf0, 3 + 0x9f, 3 + 0x98, -1},                 /* cut short */
        {3 + 0xff, 3 + 'a', -1},                            /* invalid byte */
        {3 + 0xe2, 3 + 0x82, 28705, 3 + 0xac, -1},          /* broken by a space */
        {3 + 0xed, 3 + 0xa0, 3 + 0x80, -1},                 /* surrogate encoding */
        {3 + ' ', 264, -1},                                 /* <0x20> first loses its space */
        {2, 28705, 264, -1},                                /* </s> first */
        {1, 1, 264, 2, -1},
        {0, 264, -1},                                       /* <unk> */
    };
    for (size_t e = 0; e < sizeof extra / sizeof extra[0]; e++) {
        size_t n = 0;
        while (extra[e][n] >= 0) n++;
        int32_t *ids = malloc(n * sizeof *ids);
        REQUIRE(ids);
        memcpy(ids, extra[e], n * sizeof *ids);
        lists[n_lists] = ids;
        lens[n_lists++] = n;
    }
    for (size_t j = 0; j < 2 * n_lists; j++) {
        size_t l = j % n_lists;
        fprintf(f, "%s{\"special\":%s,\"ids\":[", j ? "," : "", j < n_lists ? "false" : "true");
        for (size_t k = 0; k < lens[l]; k++) fprintf(f, k ? ",%d" : "%d", lists[l][k]);
        fputs("]}", f);
    }
    fputs("]\n", f);
    fclose(f);
    char args[1000];
    snprintf(args, sizeof args, "detokenize --model %s --batch %s", test_shq(test_shared_path(MISTRAL)),
             test_shq(path));
    char *json = test_oracle(args);
    cJSON *root = cJSON_Parse(json);
    free(json);
    REQUIRE(root);
    const cJSON *res = cJSON_GetObjectItem(root, "results");
    REQUIRE(cJSON_GetArraySize(res) == 2 * (int)n_lists);
    for (int special = 0; special < 2; special++) {
        int bad = 0;
        for (size_t l = 0; l < n_lists; l++) {
            const cJSON *r = cJSON_GetArrayItem(res, (int)(l + (size_t)special * n_lists));
            size_t nb = 0;
            unsigned char *want = b64_decode(cJSON_GetStringValue(cJSON_GetObjectItem(r, "b64")), &nb);
            REQUIRE(want);
            char out[32768];
            size_t got = llm_detokenize(m, lists[l], lens[l], special, out, sizeof out);
            if (got != nb || memcmp(out, want, nb) != 0) {
                if (bad++ < 5) {
                    CHECK(false, "list %zu special=%d", l, special);
                    print_ids("ids", lists[l], lens[l]);
                    printf("  #   ours: \"%s\"\n", show(out, got < sizeof out ? got : sizeof out - 1));
                    printf("  #   want: \"%s\"\n", show((const char *)want, nb));
                }
            }
            free(want);
        }
        CHECK_EQ_INT(bad, 0);
    }
    cJSON_Delete(root);
    for (size_t l = 0; l < n_lists; l++) free(lists[l]);
    suite_free(&su);
    close_vocab(&h);
    llm_model_free(m);
}

/* Tokenize then detokenize gives back every valid UTF-8 text of the suite
 * (no special parsing: the leading "▁" added by the prefix is the one the
 * detokenizer drops). */
TEST(round_trip_suite) {
    vocab_h h = open_vocab(MISTRAL);
    suite su = {0};
    build_suite(&su);
    int bad = 0, n_checked = 0;
    for (size_t i = 0; i < su.n; i++) {
        size_t n = 0;
        /* A literal "▁" in the text is indistinguishable from an escaped
         * space once tokenized: it comes back as " " (SentencePiece does the
         * same), so those texts are not round trips. */
        if (memmem(su.t[i].s, su.t[i].n, "\xe2\x96\x81", 3)) continue;
        n_checked++;
        int32_t *ids = tok(h.v, su.t[i].s, su.t[i].n, false, false, &n);
        REQUIRE(ids);
        size_t need = llm_vocab_detokenize_raw(h.v, ids, n, false, NULL, 0);
        char *back = malloc(need + 1);
        REQUIRE(back);
        CHECK_EQ_INT(llm_vocab_detokenize_raw(h.v, ids, n, false, back, need), need);
        if (need != su.t[i].n || memcmp(back, su.t[i].s, need) != 0) {
            if (bad++ < 5) CHECK(false, "text %zu \"%s\" comes back as \"%s\"", i, show(su.t[i].s, su.t[i].n), show(back, need));
        }
        free(back);
        free(ids);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(n_checked > 250, "only %d texts", n_checked);
    suite_free(&su);
    close_vocab(&h);
}

/* Pushes ids one at a time; returns the concatenated output. */
static size_t stream(llm_model *m, const int32_t *ids, size_t n, bool special, char *out, int *pushes) {
    llm_detok d;
    llm_detok_init(&d, m, special);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int k = llm_detok_push(&d, ids[i], out + o, 64);
        if (k < 0) return (size_t)-1;
        if (pushes) pushes[i] = k;
        o += (size_t)k;
    }
    int k = llm_detok_flush(&d, out + o, 64);
    if (k < 0) return (size_t)-1;
    o += (size_t)k;
    out[o] = 0;
    return o;
}

TEST(streaming_detok_never_splits_a_character) {
    llm_model *m = load_vocab_model(MISTRAL);
    char out[512];
    int pushes[16];
    /* 😀 = F0 9F 98 80 as four byte tokens: nothing until the last. */
    int32_t emoji[] = {3 + 0xf0, 3 + 0x9f, 3 + 0x98, 3 + 0x80};
    CHECK_EQ_INT(stream(m, emoji, 4, false, out, pushes), 4);
    CHECK(pushes[0] == 0 && pushes[1] == 0 && pushes[2] == 0 && pushes[3] == 4);
    CHECK_EQ_STR(out, "\xf0\x9f\x98\x80");
    /* Cut short: the three bytes become one U+FFFD at flush. */
    CHECK_EQ_INT(stream(m, emoji, 3, false, out, pushes), 3);
    CHECK_EQ_STR(out, "\xef\xbf\xbd");
    /* An invalid byte is replaced at once; a broken sequence as soon as it
     * can no longer complete, and the breaking byte is kept. */
    int32_t bad[] = {3 + 0xff, 3 + 0xe2, 3 + 0x82, 3 + 'A'};
    CHECK_EQ_INT(stream(m, bad, 4, false, out, pushes), 7);
    CHECK(pushes[0] == 3 && pushes[1] == 0 && pushes[2] == 0 && pushes[3] == 4);
    CHECK_EQ_STR(out, "\xef\xbf\xbd\xef\xbf\xbd" "A");
    /* E0 80 is not a valid start (overlong): replaced byte by byte. */
    int32_t ovl[] = {3 + 0xe0, 3 + 0x80};
    CHECK_EQ_INT(stream(m, ovl, 2, false, out, NULL), 6);
    /* Pieces: the first loses its space, later ones keep it; control tokens
     * are empty unless rendered, and a leading BOS keeps the next space. */
    int32_t words[] = {22557, 1526, 2};   /* "▁Hello" "▁world" "</s>" */
    CHECK_EQ_INT(stream(m, words, 3, false, out, NULL), 11);
    CHECK_EQ_STR(out, "Hello world");
    CHECK_EQ_INT(stream(m, words, 3, true, out, NULL), 15);
    CHECK_EQ_STR(out, "Hello world</s>");
    int32_t bos_first[] = {1, 22557};
    stream(m, bos_first, 2, false, out, NULL);
    CHECK_EQ_STR(out, " Hello");
    /* Too small a buffer: -1 and nothing consumed; then it goes through. */
    llm_detok d;
    llm_detok_init(&d, m, false);
    char small[4];
    CHECK_EQ_INT(llm_detok_push(&d, 22557, small, 3), -1);
    CHECK_EQ_INT(llm_detok_push(&d, 22557, out, 64), 5);
    CHECK(memcmp(out, "Hello", 5) == 0);
    CHECK_EQ_INT(llm_detok_push(&d, 32000, out, 64), -1);
    /* The whole-sequence helper truncates on a character boundary. */
    char tiny[6];
    int32_t cjk[] = {28705, 29137, 29137};  /* "▁" then two 3-byte pieces */
    size_t need = llm_detokenize(m, cjk, 3, false, tiny, sizeof tiny);
    CHECK_EQ_INT(need, 6);
    CHECK_EQ_INT(strlen(tiny), 3);
    llm_model_free(m);
}

/* Random bytes biased to the tricky ones (parts of "▁", UTF-8 leads and
 * continuations, special-token characters): ids stay in range, the raw
 * detokenization gives the bytes back exactly (Mistral has all 256 byte
 * tokens), the streamed text equals the whole-sequence text and is valid
 * UTF-8. Under MRAG_ASAN this doubles as a small fuzz run. */
TEST(random_bytes_round_trip_and_stream) {
    llm_model *m = load_vocab_model(MISTRAL);
    const llm_vocab *v = llm_model_vocab(m);
    REQUIRE(v);
    static const unsigned char alphabet[] = {
        'a', 'e', 't', ' ', ' ', '\n', '\t', '<', '>', '/', 's', '[', ']', 'I', 'N', 'S', 'T',
        0xE2, 0x96, 0x81, 0xF0, 0x9F, 0x98, 0x80, 0xC3, 0xA9, 0xE4, 0xB8, 0xAD, 0xFF, 0xC0, 0xED, 0xA0,
    };
    rng_state = 42;
    int bad_rt = 0, bad_stream = 0, n_rt = 0;
    for (int it = 0; it < 3000; it++) {
        char s[400];
        size_t len = rnd(it & 1 ? sizeof s : 48);   /* short ones round-trip more often */
        for (size_t k = 0; k < len; k++)
            s[k] = (char)(rnd(4) == 0 ? rnd(256) : alphabet[rnd(sizeof alphabet)]);
        bool special = it & 1;
        size_t n = 0;
        int32_t *ids = tok(v, s, len, it % 3 == 0, special, &n);
        REQUIRE(ids, "tokenize failed at iteration %d", it);
        for (size_t k = 0; k < n; k++) REQUIRE(ids[k] >= 0 && ids[k] < 32000);
        /* Not round trips, as in llama.cpp: a literal "▁", and a space
         * that an invalid lead byte swallows into its byte group (its "▁"
         * then comes back as byte tokens, i.e. as "▁"). */
        bool swallowed = false;
        for (size_t k = 0; k < len; k++)
            if ((unsigned char)s[k] >= 0xC0 && memchr(s + k + 1, ' ', len - k - 1 < 3 ? len - k - 1 : 3)) swallowed = true;
        if (!special && it % 3 != 0 && !swallowed && !memmem(s, len, "\xe2\x96\x81", 3)) {
            char back[1600];
            size_t nb = llm_vocab_detokenize_raw(v, ids, n, false, back, sizeof back);
            n_rt++;
            if (nb != len || memcmp(back, s, len) != 0) {
                if (bad_rt++ < 3) CHECK(false, "round trip of \"%s\"", show(s, len));
            }
        }
        char whole[1600], streamed[1600 + 64];
        size_t nw = llm_detokenize(m, ids, n, special, whole, sizeof whole);
        int pushes[400];
        size_t ns = n <= 400 ? stream(m, ids, n, special, streamed, pushes) : nw;
        if (n <= 400 && (ns != nw || memcmp(whole, streamed, nw) != 0 || !valid_utf8((unsigned char *)whole, nw))) {
            if (bad_stream++ < 3) CHECK(false, "stream/whole differ or invalid UTF-8 for \"%s\"", show(s, len));
        }
        free(ids);
    }
    CHECK_EQ_INT(bad_rt, 0);
    CHECK_EQ_INT(bad_stream, 0);
    CHECK(n_rt > 300, "%d round trips", n_rt);
    llm_model_free(m);
}

TEST_MAIN(RUN(vocab_llama_spm_47_vectors), RUN(mistral_vocab_facts), RUN(mistral_suite_matches_llama_cpp),
          RUN(stories260k_suite_matches_llama_cpp), RUN(invalid_utf8_follows_llama_cpp_grouping),
          RUN(bpe_merge_order_and_fallback), RUN(pieces_spanning_a_space_merge_across_it),
          RUN(special_tokens_and_space_prefix), RUN(load_errors_are_clear),
          RUN(public_api_tokenize), RUN(detokenize_matches_llama_cpp), RUN(round_trip_suite),
          RUN(streaming_detok_never_splits_a_character), RUN(random_bytes_round_trip_and_stream))
