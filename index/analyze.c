/* analyze.c — text analysis shared by the FTS5 tokenizer and the query
 * builder: word splitting (SQLite's unicode61), language identification by
 * stop-word profiles, Snowball stemming (libstemmer), ß/ss and German
 * ae/oe/ue transliteration, diacritic folding, and corpus-driven compound
 * splitting against a frozen word list. Also the public idx_lang_* and
 * idx_analyzer_* API (index.h). */
#include "index/idx_internal.h"

#include <libstemmer.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ languages */

typedef struct {
    const char *code;       /* ISO 639-1 */
    const char *snowball;   /* libstemmer algorithm */
    bool compounds;         /* closed compounds: split against the word list */
    const char *stop;       /* space-separated stop-word profile ("" = by script) */
} lang_def;

/* Profiles: frequent function words, lower case with diacritics (as
 * unicode61 without diacritic removal gives them). Short chunks hold few of
 * them, so a language needs two hits and more than any other (an_detect). */
static const lang_def langs[IDX_LANG_COUNT] = {
    [IDX_LANG_NONE] = {"none", NULL, false, ""},
    [IDX_LANG_EN] = {"en", "english", false,
        "a i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her "
        "hers herself it its itself they them their theirs themselves what which who whom whose this that these "
        "those am is are was were be been being have has had having do does did doing an the and but if or "
        "because as until while of at by for with about against between into through during before after above "
        "below to from up down in out on off over under again further then once here there when where why how "
        "all any both each few more most other some such no nor not only own same so than too very can will just "
        "should now also would could may might must shall many much"},
    [IDX_LANG_DE] = {"de", "german", true,
        "aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes anders "
        "auch auf aus bei bin bis bist da damit dann der den des dem die das dass daß du dies diese diesem diesen "
        "dieser dieses doch dort durch ein eine einem einen einer eines einige einigen einiger einiges einmal er "
        "ihn ihm es etwas euer eure für gegen gewesen habe haben hat hatte hatten hier hin hinter ich mich mir "
        "ihr ihre ihrem ihren ihrer ihres euch im in indem ins ist jede jedem jeden jeder jedes jene jenem jenen "
        "jener jenes jetzt kann kein keine keinem keinen keiner keines können könnte man manche mein meine "
        "meinem meinen meiner mit muss musste nach nicht nichts noch nun nur ob oder ohne sehr sein seine "
        "seinem seinen seiner seines selbst sich sie ihnen sind so solche soll sollte sondern sonst über um und "
        "uns unsere unser unter viel viele vom von vor während war waren was weil welche welchem welchen "
        "welcher welches wenn werde werden wie wieder will wir wird wo wollen wollte würde würden zu zum zur "
        "zwar zwischen wer wann warum wieso weshalb wessen wem wen wurde wurden worden"},
    [IDX_LANG_FR] = {"fr", "french", false,
        "le la les de des du un une et est que qui dans pour pas par sur au aux avec ce cette ces il elle "
        "ils sont ont été était se ne plus ou mais son sa ses leur quel quelle quels comment pourquoi où quand lors"},
    [IDX_LANG_ES] = {"es", "spanish", false,
        "el la los las de del un una y es que por para con no se su sus al lo como más pero fue era son está "
        "han ha qué cuál cuándo dónde cómo quién también entre sobre este esta fueron"},
    [IDX_LANG_IT] = {"it", "italian", false,
        "il lo la gli le di del della dei delle un una è che per con non si su al alla sono stato era come "
        "più ma anche questo questa quale quando dove chi perché nel nella degli furono"},
    [IDX_LANG_NL] = {"nl", "dutch", true,
        "de het een en van is dat op te zijn met voor niet aan er als ook door bij werd wordt naar uit of "
        "maar hij zij wat wie waar wanneer hoe welke deze dit die"},
    [IDX_LANG_PT] = {"pt", "portuguese", false,
        "o a os as de do da dos das um uma e é em que para com não se por mais como mas foi ao à seu sua são "
        "no na nos nas qual quando onde quem também"},
    [IDX_LANG_SV] = {"sv", "swedish", true,
        "och i att det som en ett är på av för med till den har inte de om var vad hur vem när jag han hon "
        "sig från men ska kan"},
    [IDX_LANG_DA] = {"da", "danish", true,
        "og i at det som en et er på af for med til den har ikke de om var hvad hvordan hvem hvornår jeg han "
        "hun sig fra men skal kan"},
    [IDX_LANG_NO] = {"no", "norwegian", true,
        "og i at det som en et er på av for med til den har ikke de om var hva hvordan hvem når jeg han hun "
        "seg fra men skal kan"},
    [IDX_LANG_FI] = {"fi", "finnish", true,
        "ja on ei se että oli ovat hän kuin mutta myös tai joka jotka mikä mitä kuka missä milloin miten "
        "miksi sekä tämä nämä ne kun olla"},
    [IDX_LANG_RU] = {"ru", "russian", false, ""},
    [IDX_LANG_EL] = {"el", "greek", false, ""},
};

const char *idx_lang_code(int lang) {
    return lang >= 0 && lang < IDX_LANG_COUNT ? langs[lang].code : "none";
}

int idx_lang_from_code(const char *code) {
    if (!code) return -1;
    for (int i = 0; i < IDX_LANG_COUNT; i++)
        if (strcmp(code, langs[i].code) == 0) return i;
    return -1;
}

/* ------------------------------------------------------------ hashing */

static uint64_t fnv(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ? h : 1;
}

/* A string -> int32 open-addressing table; keys live in one arena. */
typedef struct {
    uint64_t *hash;
    uint32_t *off, *len;
    int32_t *val;
    size_t cap, n;
    char *arena;
    size_t alen, acap;
} strtab;

static void st_free(strtab *t) {
    free(t->hash);
    free(t->off);
    free(t->len);
    free(t->val);
    free(t->arena);
    memset(t, 0, sizeof *t);
}

static int32_t *st_find(const strtab *t, const char *k, size_t n) {
    if (!t->cap) return NULL;
    uint64_t h = fnv(k, n);
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        if (!t->hash[i]) return NULL;
        if (t->hash[i] == h && t->len[i] == n && memcmp(t->arena + t->off[i], k, n) == 0) return &t->val[i];
    }
}

static int32_t *st_put(strtab *t, const char *k, size_t n, int32_t v0);

static bool st_grow(strtab *t) {
    strtab o = *t;
    size_t nc = o.cap ? o.cap * 2 : 1024;
    t->hash = calloc(nc, sizeof *t->hash);
    t->off = malloc(nc * sizeof *t->off);
    t->len = malloc(nc * sizeof *t->len);
    t->val = malloc(nc * sizeof *t->val);
    if (!t->hash || !t->off || !t->len || !t->val) {
        free(t->hash); free(t->off); free(t->len); free(t->val);
        *t = o;
        return false;
    }
    t->cap = nc;
    t->n = 0;
    for (size_t i = 0; i < o.cap; i++) {
        if (!o.hash[i]) continue;
        uint64_t h = o.hash[i];
        size_t j = h & (nc - 1);
        while (t->hash[j]) j = (j + 1) & (nc - 1);
        t->hash[j] = h;
        t->off[j] = o.off[i];
        t->len[j] = o.len[i];
        t->val[j] = o.val[i];
        t->n++;
    }
    free(o.hash); free(o.off); free(o.len); free(o.val);
    return true;
}

/* Inserts k (value v0) unless present; returns the value slot, NULL on OOM. */
static int32_t *st_put(strtab *t, const char *k, size_t n, int32_t v0) {
    int32_t *f = st_find(t, k, n);
    if (f) return f;
    if ((t->n + 1) * 4 > t->cap * 3 && !st_grow(t)) return NULL;
    if (t->alen + n + 1 > t->acap) {
        size_t na = t->acap ? t->acap * 2 : 65536;
        while (na < t->alen + n + 1) na *= 2;
        char *a = realloc(t->arena, na);
        if (!a) return NULL;
        t->arena = a;
        t->acap = na;
    }
    memcpy(t->arena + t->alen, k, n);
    t->arena[t->alen + n] = 0;
    uint64_t h = fnv(k, n);
    size_t i = h & (t->cap - 1);
    while (t->hash[i]) i = (i + 1) & (t->cap - 1);
    t->hash[i] = h;
    t->off[i] = (uint32_t)t->alen;
    t->len[i] = (uint32_t)n;
    t->val[i] = v0;
    t->alen += n + 1;
    t->n++;
    return &t->val[i];
}

/* ------------------------------------------------------------ the analyzer */

typedef struct {
    uint32_t off, len;      /* into words buffer */
    int start, end;         /* byte span in the input */
} an_word;

#define AN_MAX_WORD 128     /* longer "words" are folded, never stemmed or split */
#define AN_MEMO_MAX 200000

struct idx_an {
    sqlite3 *own_db;            /* :memory: connection of a standalone analyzer */
    fts5_tokenizer u61;
    Fts5Tokenizer *t_keep;      /* unicode61, case folded, diacritics kept */
    Fts5Tokenizer *t_fold;      /* unicode61 remove_diacritics 2 */
    struct sb_stemmer *stem[IDX_LANG_COUNT];
    bool stem_tried[IDX_LANG_COUNT];
    strtab stops;               /* stop word -> bit mask of languages */
    /* frozen configuration (idx_an_set_config) */
    int deflang;
    uint32_t lang_mask;         /* languages with a share of the chunks */
    strtab vocab;               /* normalised word -> corpus frequency */
    strtab memo;                /* word -> offset+1 into memo_parts, 0 = no split */
    char *memo_parts;
    size_t memo_len, memo_cap;
    /* scratch */
    an_word *w;
    size_t nw, capw;
    char *wb;
    size_t wbl, wbc;
    char fold[AN_MAX_WORD * 4 + 8];
    size_t fold_len;
    bool oom;
};

static int fts5_api_of(sqlite3 *db, fts5_api **api) {
    sqlite3_stmt *st = NULL;
    *api = NULL;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK) return -1;
    sqlite3_bind_pointer(st, 1, (void *)api, "fts5_api_ptr", NULL);
    sqlite3_step(st);
    sqlite3_finalize(st);
    return *api ? 0 : -1;
}

void idx_an_free(idx_an *a) {
    if (!a) return;
    if (a->t_keep) a->u61.xDelete(a->t_keep);
    if (a->t_fold) a->u61.xDelete(a->t_fold);
    for (int i = 0; i < IDX_LANG_COUNT; i++)
        if (a->stem[i]) sb_stemmer_delete(a->stem[i]);
    st_free(&a->stops);
    st_free(&a->vocab);
    st_free(&a->memo);
    free(a->memo_parts);
    free(a->w);
    free(a->wb);
    if (a->own_db) sqlite3_close(a->own_db);
    free(a);
}

idx_an *idx_an_new(sqlite3 *db) {
    idx_an *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->deflang = IDX_LANG_EN;
    a->lang_mask = 1u << IDX_LANG_EN;
    if (!db) {
        if (sqlite3_open_v2(":memory:", &a->own_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) goto fail;
        db = a->own_db;
    }
    fts5_api *api;
    void *ud = NULL;
    if (fts5_api_of(db, &api) || api->xFindTokenizer(api, "unicode61", &ud, &a->u61) != SQLITE_OK) goto fail;
    const char *keep[] = {"remove_diacritics", "0"}, *fold[] = {"remove_diacritics", "2"};
    if (a->u61.xCreate(ud, keep, 2, &a->t_keep) != SQLITE_OK) goto fail;
    if (a->u61.xCreate(ud, fold, 2, &a->t_fold) != SQLITE_OK) goto fail;
    for (int l = 0; l < IDX_LANG_COUNT; l++) {
        const char *p = langs[l].stop;
        while (*p) {
            const char *e = strchr(p, ' ');
            if (!e) e = p + strlen(p);
            int32_t *v = st_put(&a->stops, p, (size_t)(e - p), 0);
            if (!v) goto fail;
            *v |= 1 << l;
            p = *e ? e + 1 : e;
        }
    }
    return a;
fail:
    idx_an_free(a);
    return NULL;
}

/* --- word collection through unicode61 */

static int collect_cb(void *ctx, int tflags, const char *tok, int n, int start, int end) {
    (void)tflags;
    idx_an *a = ctx;
    if (n <= 0) return SQLITE_OK;
    if (a->nw == a->capw) {
        size_t nc = a->capw ? a->capw * 2 : 256;
        an_word *w = realloc(a->w, nc * sizeof *w);
        if (!w) { a->oom = true; return SQLITE_NOMEM; }
        a->w = w;
        a->capw = nc;
    }
    if (a->wbl + (size_t)n + 1 > a->wbc) {
        size_t nc = a->wbc ? a->wbc * 2 : 4096;
        while (nc < a->wbl + (size_t)n + 1) nc *= 2;
        char *b = realloc(a->wb, nc);
        if (!b) { a->oom = true; return SQLITE_NOMEM; }
        a->wb = b;
        a->wbc = nc;
    }
    memcpy(a->wb + a->wbl, tok, (size_t)n);
    a->w[a->nw++] = (an_word){(uint32_t)a->wbl, (uint32_t)n, start, end};
    a->wbl += (size_t)n;
    a->wb[a->wbl++] = 0;
    return SQLITE_OK;
}

static int collect(idx_an *a, const char *text, int len) {
    a->nw = 0;
    a->wbl = 0;
    a->oom = false;
    if (len <= 0) return SQLITE_OK;
    int rc = a->u61.xTokenize(a->t_keep, a, FTS5_TOKENIZE_DOCUMENT, text, len, collect_cb);
    return a->oom ? SQLITE_NOMEM : rc;
}

static int fold_cb(void *ctx, int tflags, const char *tok, int n, int start, int end) {
    (void)tflags; (void)start; (void)end;
    idx_an *a = ctx;
    if (a->fold_len + (size_t)n < sizeof a->fold) {
        memcpy(a->fold + a->fold_len, tok, (size_t)n);
        a->fold_len += (size_t)n;
    }
    return SQLITE_OK;
}

/* --- language identification */

static int script_lang(const char *w, size_t n) {
    int cyr = 0, grk = 0, other = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned char c = (unsigned char)w[i];
        if (c == 0xd0 || c == 0xd1) cyr++;
        else if (c == 0xce || c == 0xcf) grk++;
        else if (c >= 0xc0) other++;
    }
    if (cyr > 0 && cyr >= grk) return IDX_LANG_RU;
    if (grk > 0) return IDX_LANG_EL;
    return -1;
}

/* The language of the collected words, or -1 when the evidence is too thin
 * (fewer than two stop words, or a tie). */
static int detect_words(idx_an *a, int *hits_out) {
    int hits[IDX_LANG_COUNT] = {0}, script[IDX_LANG_COUNT] = {0};
    for (size_t i = 0; i < a->nw; i++) {
        const char *w = a->wb + a->w[i].off;
        size_t n = a->w[i].len;
        int32_t *m = st_find(&a->stops, w, n);
        if (m)
            for (int l = 0; l < IDX_LANG_COUNT; l++)
                if (*m & (1 << l)) hits[l]++;
        if ((unsigned char)w[0] >= 0xc0) {
            int s = script_lang(w, n);
            if (s >= 0) script[s]++;
        }
    }
    int best = -1, second = 0;
    for (int l = 0; l < IDX_LANG_COUNT; l++) {
        if (best < 0 || hits[l] > hits[best]) {
            if (best >= 0) second = hits[best];
            best = l;
        } else if (hits[l] > second) {
            second = hits[l];
        }
    }
    /* words of a non-Latin script with a stemmer decide by majority */
    int sbest = script[IDX_LANG_RU] >= script[IDX_LANG_EL] ? IDX_LANG_RU : IDX_LANG_EL;
    if (script[sbest] * 2 > (int)a->nw && script[sbest] >= 1) {
        if (hits_out) *hits_out = script[sbest];
        return sbest;
    }
    if (hits_out) *hits_out = best >= 0 ? hits[best] : 0;
    if (best < 0 || hits[best] < 2 || hits[best] == second) return -1;
    return best;
}

int idx_an_detect(idx_an *a, const char *text, size_t len, int *hits) {
    if (hits) *hits = 0;
    if (len > (size_t)INT32_MAX) len = INT32_MAX;
    if (collect(a, text, (int)len) != SQLITE_OK) return -1;
    return detect_words(a, hits);
}

/* --- normalisation, stemming, folding */

/* Writes the normalised form of word w (ß -> ss everywhere; in German also
 * ae/oe -> ä/ö and ue -> ü except after q, as Snowball's german2 variant
 * reads them) into out; returns its length. out holds 2*n+1 bytes. */
static size_t normalise(const char *w, size_t n, int lang, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)w[i];
        if (c == 0xc3 && i + 1 < n && (unsigned char)w[i + 1] == 0x9f) { out[o++] = 's'; out[o++] = 's'; i++; continue; }
        if (lang == IDX_LANG_DE && i + 1 < n && w[i + 1] == 'e' && (c == 'a' || c == 'o' || (c == 'u' && !(i > 0 && w[i - 1] == 'q')))) {
            out[o++] = (char)0xc3;
            out[o++] = (char)(c == 'a' ? 0xa4 : c == 'o' ? 0xb6 : 0xbc);
            i++;
            continue;
        }
        out[o++] = (char)c;
    }
    out[o] = 0;
    return o;
}

static struct sb_stemmer *stemmer(idx_an *a, int lang) {
    if (lang <= IDX_LANG_NONE || lang >= IDX_LANG_COUNT || !langs[lang].snowball) return NULL;
    if (!a->stem_tried[lang]) {
        a->stem_tried[lang] = true;
        a->stem[lang] = sb_stemmer_new(langs[lang].snowball, "UTF_8");
    }
    return a->stem[lang];
}

/* Stem of normalised word w in lang, diacritics folded, into a->fold. */
static void stem_fold(idx_an *a, const char *w, size_t n, int lang, bool do_stem) {
    const char *s = w;
    size_t sn = n;
    struct sb_stemmer *st = do_stem && n <= AN_MAX_WORD ? stemmer(a, lang) : NULL;
    if (st) {
        const sb_symbol *r = sb_stemmer_stem(st, (const sb_symbol *)w, (int)n);
        /* a stemmer can strip a short word to nothing (Greek "αμε"): the
         * word stays as it is (found by fuzz_index_fts) */
        if (r && sb_stemmer_length(st) > 0) {
            s = (const char *)r;
            sn = (size_t)sb_stemmer_length(st);
        }
    }
    bool ascii = true;
    for (size_t i = 0; i < sn && ascii; i++) ascii = (unsigned char)s[i] < 0x80;
    a->fold_len = 0;
    if (ascii || sn > AN_MAX_WORD * 2) {
        if (sn >= sizeof a->fold) sn = sizeof a->fold - 1;
        memcpy(a->fold, s, sn);
        a->fold_len = sn;
    } else {
        char tmp[AN_MAX_WORD * 2 + 1];
        memcpy(tmp, s, sn);
        a->u61.xTokenize(a->t_fold, a, FTS5_TOKENIZE_DOCUMENT, tmp, (int)sn, fold_cb);
        if (!a->fold_len) { memcpy(a->fold, s, sn); a->fold_len = sn; }
    }
    a->fold[a->fold_len] = 0;
}

/* --- compounds */

#define CP_MIN_PART 4       /* characters (bytes; umlauts count two) */
#define CP_MIN_WORD 8
#define CP_MAX_PARTS 4

static int32_t vocab_cf(const idx_an *a, const char *w, size_t n) {
    int32_t *v = st_find(&a->vocab, w, n);
    return v ? *v : 0;
}

/* The frequency of w + suffix (a German verb's infinitive from its stem:
 * "einhäng" + "en"), 0 when not listed or too long. */
static int32_t vocab_cf_plus(const idx_an *a, const char *w, size_t n, const char *suffix) {
    char b[AN_MAX_WORD + 8];
    size_t sl = strlen(suffix);
    if (n + sl > AN_MAX_WORD) return 0;
    memcpy(b, w, n);
    memcpy(b + n, suffix, sl);
    return vocab_cf(a, b, n + sl);
}

/* The frequency of w as a compound part: listed, or (as the word lists hold
 * verbs and base forms) a verb stem whose infinitive is listed ("einhäng" /
 * "einhänge" -> "einhängen"), or an -ung noun whose verb is listed
 * ("verpflegung" -> "verpflegen"). */
static int32_t part_cf(const idx_an *a, const char *w, size_t n) {
    int32_t c = vocab_cf(a, w, n);
    if (c || n < CP_MIN_PART) return c;
    if (n > 5 && memcmp(w + n - 3, "ung", 3) == 0) {
        n -= 3;
        if ((c = vocab_cf_plus(a, w, n, "en"))) return c;
        return w[n - 1] == 'e' || w[n - 1] == 'l' || w[n - 1] == 'r' ? vocab_cf_plus(a, w, n, "n") : 0;
    }
    return vocab_cf_plus(a, w, n, w[n - 1] == 'e' ? "n" : "en");
}

/* Linking elements between German (and Dutch/Scandinavian) compound parts. */
static const char *const links[] = {"", "s", "es", "n", "en", "er", "e"};
/* Inflection endings tried on the last part when its full form is not listed. */
static const char *const endings[] = {"en", "n", "e", "s", "es", "er", "ern", "em"};

/* Best split of w into a head (vocab word + optional link) and a tail that
 * is a vocab word or itself splits. Scores by the geometric mean of the parts'
 * frequencies, which must beat the whole word's own frequency (Koehn and
 * Knight, 2003). Writes part boundaries: parts[i] = (start, len) of the bare
 * parts; returns their count (0 = no split). */
static int split_rec(const idx_an *a, const char *w, size_t n, int depth, size_t pstart[], size_t plen[], double *score) {
    if (n < CP_MIN_WORD || depth >= CP_MAX_PARTS - 1) return 0;
    int best_np = 0;
    double best = 0;
    size_t bs[CP_MAX_PARTS], bl[CP_MAX_PARTS];
    for (size_t i = CP_MIN_PART; i + CP_MIN_PART <= n; i++) {
        if (((unsigned char)w[i] & 0xc0) == 0x80) continue;     /* inside a UTF-8 sequence */
        /* the head first: it rarely matches, and only then is the tail
         * (perhaps recursively) worth looking at */
        int32_t hcf = 0;
        size_t hlen = 0;
        for (size_t k = 0; k < sizeof links / sizeof *links; k++) {
            size_t ll = strlen(links[k]);
            if (i < CP_MIN_PART + ll || memcmp(w + i - ll, links[k], ll) != 0) continue;
            int32_t c = part_cf(a, w, i - ll);
            if (c > hcf) { hcf = c; hlen = i - ll; }
        }
        if (hcf <= 0) continue;
        const char *tail = w + i;
        size_t tn = n - i;
        int32_t tcf = part_cf(a, tail, tn);
        /* an inflected last part: the word list holds base forms */
        for (size_t k = 0; !tcf && k < sizeof endings / sizeof *endings; k++) {
            size_t el = strlen(endings[k]);
            if (tn >= CP_MIN_PART + el && memcmp(tail + tn - el, endings[k], el) == 0) {
                tcf = vocab_cf(a, tail, tn - el);
                if (tcf) tn -= el;
            }
        }
        size_t ts[CP_MAX_PARTS], tl[CP_MAX_PARTS];
        int tnp = 0;
        double tscore = 0;
        if (tcf > 0) {
            ts[0] = 0; tl[0] = tn; tnp = 1; tscore = log(1.0 + tcf);
        } else {
            tnp = split_rec(a, tail, tn, depth + 1, ts, tl, &tscore);
            if (!tnp) continue;
            tscore *= tnp;  /* back to a sum of logs */
        }
        double sc = (log(1.0 + hcf) + tscore) / (1 + tnp);
        /* fewer parts first: with a word list's flat frequencies the mean
         * cannot tell "Zweifels|fall" from "Zwei|fels|fall" */
        if (!best_np || 1 + tnp < best_np || (1 + tnp == best_np && sc > best)) {
            best = sc;
            best_np = 1 + tnp;
            bs[0] = 0; bl[0] = hlen;
            for (int j = 0; j < tnp; j++) { bs[1 + j] = i + ts[j]; bl[1 + j] = tl[j]; }
        }
    }
    if (!best_np) return 0;
    for (int j = 0; j < best_np; j++) { pstart[j] = bs[j]; plen[j] = bl[j]; }
    *score = best;
    return best_np;
}

/* Parts of w (a "\0"-separated list in the memo), NULL when w does not split. */
static const char *split_word(idx_an *a, const char *w, size_t n, int *np) {
    *np = 0;
    if (!a->vocab.n || n < CP_MIN_WORD || n > AN_MAX_WORD) return NULL;
    int32_t *m = st_find(&a->memo, w, n);
    if (!m) {
        size_t ps[CP_MAX_PARTS], pl[CP_MAX_PARTS];
        double sc = 0;
        int k = split_rec(a, w, n, 0, ps, pl, &sc);
        int32_t whole = vocab_cf(a, w, n);
        if (k && whole > 0 && sc <= log(1.0 + whole)) k = 0;
        if (a->memo.n >= AN_MEMO_MAX) { st_free(&a->memo); a->memo_len = 0; }
        int32_t v = 0;
        if (k) {
            size_t need = 1 + n + (size_t)k + 1;
            if (a->memo_len + need > a->memo_cap) {
                size_t nc = a->memo_cap ? a->memo_cap * 2 : 65536;
                while (nc < a->memo_len + need) nc *= 2;
                char *p = realloc(a->memo_parts, nc);
                if (!p) return NULL;
                a->memo_parts = p;
                a->memo_cap = nc;
            }
            char *p = a->memo_parts + a->memo_len;
            *p++ = (char)k;
            for (int j = 0; j < k; j++) { memcpy(p, w + ps[j], pl[j]); p += pl[j]; *p++ = 0; }
            v = (int32_t)a->memo_len + 1;
            a->memo_len = (size_t)(p - a->memo_parts);
        }
        m = st_put(&a->memo, w, n, v);
        if (!m) return NULL;
    }
    if (!*m) return NULL;
    const char *p = a->memo_parts + *m - 1;
    *np = (unsigned char)*p;
    return p + 1;
}

/* --- derived forms (German) */

/* Separable verb prefixes that stand before the "ge" of a past participle
 * ("an|ge|zeigt", "ein|ge|stellt"). */
static const char *const sep_prefixes[] = {"", "ab", "an", "auf", "aus", "bei", "ein", "fest", "her", "hin", "los", "mit",
                                           "nach", "vor", "weg", "zu", "zurück", "zusammen", "dar", "um", "durch"};

/* Forms a German word meets besides its own stem, when the word list
 * confirms them (so "Gerät" or "Gebiet" derive nothing): a past
 * participle meets its verb ("geändert" -> "ändern", "ändert"; "angezeigt"
 * -> "anzeigen" (and so "Anzeige"), "zeigt"; "gelesen" -> "lesen"). Writes
 * up to 2 normalised words into out[] (each AN_MAX_WORD + 8 bytes); returns
 * how many. (An un- word meeting its base, "unfreie" -> "frei", was tried
 * and dropped: in technical text it also makes "Unstable" meet "Stable".) */
static int derived_forms(const idx_an *a, const char *w, size_t n, bool capital, char out[][AN_MAX_WORD + 8], size_t olen[]) {
    int k = 0;
    if (n < 4 || n > AN_MAX_WORD) return 0;
    for (size_t pi = 0; pi < sizeof sep_prefixes / sizeof *sep_prefixes && !k; pi++) {
        size_t pl = strlen(sep_prefixes[pi]);
        if (n < pl + 2 + 4 || memcmp(w, sep_prefixes[pi], pl) != 0 || memcmp(w + pl, "ge", 2) != 0) continue;
        const char *x = w + pl + 2;         /* "zeigt", "ändert", "lesen" */
        size_t xn0 = n - pl - 2;
        /* a participle used as an adjective is inflected: "angezeigten" */
        static const char *const adj[] = {"", "e", "en", "er", "es", "em"};
        for (size_t ai = 0; ai < sizeof adj / sizeof *adj && !k; ai++) {
        size_t al = strlen(adj[ai]), xn = xn0 - al;
        if (xn0 < al + 4 || memcmp(x + xn, adj[ai], al) != 0) continue;
        if (al && x[xn - 1] != 't' && !(x[xn - 2] == 'e' && x[xn - 1] == 'n')) continue;
        /* weak verbs: -t/-et (the stem is x without it); strong: -en */
        static const char *const ends[] = {"et", "t", "en"};
        for (size_t e = 0; e < 3 && !k; e++) {
            size_t el = strlen(ends[e]);
            if (xn < el + 3 || memcmp(x + xn - el, ends[e], el) != 0) continue;
            size_t sn = xn - el;            /* verb stem: "zeig", "änder", "les" */
            char inf[AN_MAX_WORD + 8];
            memcpy(inf, w, pl);
            memcpy(inf + pl, x, sn);
            const char *suf = x[sn - 1] == 'e' || (sn >= 2 && x[sn - 2] == 'e' && (x[sn - 1] == 'r' || x[sn - 1] == 'l')) ? "n" : "en";
            size_t il = pl + sn + strlen(suf);
            memcpy(inf + pl + sn, suf, strlen(suf));
            if (!vocab_cf(a, inf, il)) continue;
            memcpy(out[k], inf, il);
            olen[k++] = il;
            if (e < 2) {                    /* the present tense, without a separable prefix: "zeigt", "arbeitet" */
                memcpy(out[k], x, xn);
                olen[k++] = xn;
            }
        }
        }
    }
    /* a verb's present tense (what questions use: "Wann duzt man", "Wie
     * ändert man") meets its infinitive (what texts use: "duzen",
     * "ändern"); only when written in lower case, since German writes its
     * nouns with a capital ("Haut", "Recht", "Nacht" are no forms of
     * "hauen", "rechen", "nachen") */
    if (!k && !capital && n >= 4 && w[n - 1] == 't' && w[n - 2] != 's') {
        for (int e = 0; e < 2 && !k; e++) {
            size_t sn = n - (e == 0 ? 2 : 1);      /* "arbeit|et", "zeig|t" */
            if (e == 0 && w[n - 2] != 'e') continue;
            if (sn < 3) continue;
            const char *suf = w[sn - 1] == 'e' || (w[sn - 2] == 'e' && (w[sn - 1] == 'r' || w[sn - 1] == 'l')) ? "n" : "en";
            size_t sl = strlen(suf);
            memcpy(out[k], w, sn);
            memcpy(out[k] + sn, suf, sl);
            if (vocab_cf(a, out[k], sn + sl)) olen[k++] = sn + sl;
        }
    }
    return k;
}

/* --- the analysis */

/* Analyses the collected words in lang, calling cb for each term: the stem of
 * the word, then (colocated) the stems of its compound parts. */
static int emit_words(idx_an *a, const char *text, int lang, bool split, bool do_stem, bool no_stop, bool content_only,
                      idx_term_cb cb, void *user) {
    char norm[AN_MAX_WORD * 2 + 2];
    if (no_stop && !content_only) {
        /* only when something else is left */
        size_t content = 0;
        for (size_t i = 0; i < a->nw; i++) {
            int32_t *m = st_find(&a->stops, a->wb + a->w[i].off, a->w[i].len);
            if ((!m || !(*m & (1 << lang))) && a->w[i].len > 1) content++;
        }
        if (!content) no_stop = false;
    }
    for (size_t i = 0; i < a->nw; i++) {
        const an_word *wd = &a->w[i];
        const char *w = a->wb + wd->off;
        size_t n = wd->len;
        if (no_stop) {
            int32_t *m = st_find(&a->stops, w, n);
            if ((m && (*m & (1 << lang))) || n == 1) continue;
        }
        if (n > AN_MAX_WORD) {
            stem_fold(a, w, n > AN_MAX_WORD * 2 ? AN_MAX_WORD * 2 : n, lang, false);
            int rc = cb(user, a->fold, a->fold_len, wd->start, wd->end, false);
            if (rc) return rc;
            continue;
        }
        size_t nn = normalise(w, n, lang, norm);
        stem_fold(a, norm, nn, lang, do_stem);
        char whole[sizeof a->fold];
        size_t wl = a->fold_len;
        memcpy(whole, a->fold, wl + 1);
        int rc = cb(user, whole, wl, wd->start, wd->end, false);
        if (rc) return rc;
        if (!split || !langs[lang].compounds) continue;
        int np = 0;
        const char *p = split_word(a, norm, nn, &np);
        char seen[CP_MAX_PARTS][sizeof a->fold];
        int ns = 0;
        for (int j = 0; p && j < np; j++) {
            size_t pl = strlen(p);
            stem_fold(a, p, pl, lang, do_stem);
            p += pl + 1;
            if (a->fold_len < 3 || (a->fold_len == wl && memcmp(a->fold, whole, wl) == 0)) continue;
            bool dup = false;
            for (int k = 0; k < ns && !dup; k++) dup = strcmp(seen[k], a->fold) == 0;
            if (dup) continue;
            memcpy(seen[ns++], a->fold, a->fold_len + 1);
            if ((rc = cb(user, a->fold, a->fold_len, wd->start, wd->end, true))) return rc;
        }
        if (lang != IDX_LANG_DE || !a->vocab.n) continue;
        char der[2][AN_MAX_WORD + 8];
        size_t dl[2];
        const unsigned char *o = (const unsigned char *)text + wd->start;
        bool capital = (o[0] >= 'A' && o[0] <= 'Z') ||
                       (o[0] == 0xc3 && wd->end - wd->start >= 2 && (o[1] == 0x84 || o[1] == 0x96 || o[1] == 0x9c));
        int nd = derived_forms(a, norm, nn, capital, der, dl);
        for (int j = 0; j < nd; j++) {
            stem_fold(a, der[j], dl[j], lang, do_stem);
            if (a->fold_len < 3 || (a->fold_len == wl && memcmp(a->fold, whole, wl) == 0)) continue;
            bool dup = false;
            for (int k = 0; k < ns && !dup; k++) dup = strcmp(seen[k], a->fold) == 0;
            if (dup || ns == CP_MAX_PARTS) continue;
            memcpy(seen[ns++], a->fold, a->fold_len + 1);
            if ((rc = cb(user, a->fold, a->fold_len, wd->start, wd->end, true))) return rc;
        }
    }
    return 0;
}

int idx_an_run(idx_an *a, const char *text, size_t len, int lang, unsigned flags, idx_term_cb cb, void *user, int *lang_out) {
    if (len > (size_t)INT32_MAX) len = INT32_MAX;
    int rc = collect(a, text, (int)len);
    if (rc != SQLITE_OK) return rc;
    if (lang < 0) {
        lang = detect_words(a, NULL);
        if (lang < 0) lang = a->deflang;
    }
    if (lang_out) *lang_out = lang;
    return emit_words(a, text, lang, !(flags & IDX_AN_NO_SPLIT), !(flags & IDX_AN_NO_STEM), (flags & IDX_AN_NO_STOP) != 0,
                      (flags & IDX_AN_CONTENT) != 0, cb, user);
}

/* --- configuration */

int idx_an_deflang(const idx_an *a) { return a->deflang; }
uint32_t idx_an_lang_mask(const idx_an *a) { return a->lang_mask; }
size_t idx_an_vocab_size(const idx_an *a) { return a->vocab.n; }

void idx_an_set_langs(idx_an *a, int deflang, uint32_t mask) {
    a->deflang = deflang >= 0 && deflang < IDX_LANG_COUNT ? deflang : IDX_LANG_EN;
    a->lang_mask = mask | (1u << a->deflang);
}

void idx_an_vocab_clear(idx_an *a) {
    st_free(&a->vocab);
    st_free(&a->memo);
    a->memo_len = 0;
}

int idx_an_vocab_add(idx_an *a, const char *w, size_t n, int32_t cf) {
    if (n > AN_MAX_WORD) return 0;
    int32_t *v = st_put(&a->vocab, w, n, 0);
    if (!v) return -1;
    *v += cf;
    st_free(&a->memo);
    a->memo_len = 0;
    return 0;
}

/* Calls cb(word, cf) for every vocab entry (order of the table). */
int idx_an_vocab_each(const idx_an *a, int (*cb)(void *, const char *, size_t, int32_t), void *user) {
    return idx_an_wordtab_each(&a->vocab, cb, user);
}

/* Counts the normalised words (CP_MIN_PART bytes and more) of text in lang
 * into tab, for building a word list. */
int idx_an_count_words(idx_an *a, const char *text, size_t len, int lang, void *tabp) {
    strtab *tab = tabp;
    if (len > (size_t)INT32_MAX) len = INT32_MAX;
    int rc = collect(a, text, (int)len);
    if (rc != SQLITE_OK) return rc;
    char norm[AN_MAX_WORD * 2 + 2];
    for (size_t i = 0; i < a->nw; i++) {
        size_t n = a->w[i].len;
        if (n < CP_MIN_PART || n > AN_MAX_WORD) continue;
        const char *w = a->wb + a->w[i].off;
        if (w[0] >= '0' && w[0] <= '9') continue;
        size_t nn = normalise(w, n, lang, norm);
        int32_t *v = st_put(tab, norm, nn, 0);
        if (!v) return SQLITE_NOMEM;
        (*v)++;
    }
    return SQLITE_OK;
}

void *idx_an_wordtab_new(void) { return calloc(1, sizeof(strtab)); }
void idx_an_wordtab_free(void *t) { if (t) { st_free(t); free(t); } }
void idx_an_wordtab_clear(void *t) { if (t) st_free(t); }
size_t idx_an_wordtab_count(const void *t) { return ((const strtab *)t)->n; }

/* Adds d to the count of word w (inserting it at 0). -1 on OOM. */
int idx_an_wordtab_add(void *t, const char *w, size_t n, int32_t d) {
    int32_t *v = st_put(t, w, n, 0);
    if (!v) return -1;
    *v += d;
    return 0;
}

int idx_an_wordtab_each(const void *tp, int (*cb)(void *, const char *, size_t, int32_t), void *user) {
    const strtab *t = tp;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->hash[i]) continue;
        int rc = cb(user, t->arena + t->off[i], t->len[i], t->val[i]);
        if (rc) return rc;
    }
    return 0;
}

/* Moves the words of tab with a count >= min_cf into the analyzer's vocab. */
int idx_an_vocab_from_tab(idx_an *a, void *tabp, int32_t min_cf) {
    strtab *t = tabp;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->hash[i] || t->val[i] < min_cf) continue;
        if (idx_an_vocab_add(a, t->arena + t->off[i], t->len[i], t->val[i])) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ public API */

struct idx_analyzer {
    idx_an *an;
    idx_store *s;       /* borrowed, NULL for a standalone analyzer */
};

int idx_lang_detect(const char *text, size_t len, int *hits) {
    idx_an *a = idx_an_new(NULL);
    if (!a) return -1;
    int l = idx_an_detect(a, text ? text : "", text ? len : 0, hits);
    idx_an_free(a);
    return l;
}

int idx_analyzer_new(idx_store *s, idx_analyzer **out) {
    if (!out) return IDX_ERR_ARG;
    *out = NULL;
    idx_analyzer *z = calloc(1, sizeof *z);
    if (!z) return IDX_ERR_NOMEM;
    z->s = s;
    if (!s) {
        if (!(z->an = idx_an_new(NULL))) { free(z); return IDX_ERR_NOMEM; }
    } else {
        int rc = idx_fts_config_current(s);
        if (rc) { free(z); return rc; }
    }
    *out = z;
    return IDX_OK;
}

void idx_analyzer_free(idx_analyzer *z) {
    if (!z) return;
    idx_an_free(z->an);
    free(z);
}

static idx_an *an_of(idx_analyzer *z) { return z->s ? z->s->an : z->an; }

int idx_analyzer_detect(idx_analyzer *z, const char *text, size_t len) {
    if (!z || (!text && len)) return -1;
    idx_an *a = an_of(z);
    int l = idx_an_detect(a, text ? text : "", len, NULL);
    return l >= 0 ? l : a->deflang;
}

static int analyze(idx_analyzer *z, const char *text, size_t len, int lang, unsigned flags, idx_term_cb cb, void *user) {
    if (!z || !cb || (!text && len)) return IDX_ERR_ARG;
    if (lang >= IDX_LANG_COUNT) return IDX_ERR_ARG;
    if (z->s) {
        int rc = idx_fts_config_current(z->s);
        if (rc) return rc;
    }
    int rc = idx_an_run(an_of(z), text ? text : "", len, lang, flags, cb, user, NULL);
    if (rc == SQLITE_NOMEM) return IDX_ERR_NOMEM;
    return rc ? IDX_ERR_ARG : IDX_OK;
}

int idx_analyze(idx_analyzer *z, const char *text, size_t len, int lang, idx_term_cb cb, void *user) {
    return analyze(z, text, len, lang, 0, cb, user);
}

int idx_analyze_query(idx_analyzer *z, const char *text, size_t len, int lang, idx_term_cb cb, void *user) {
    return analyze(z, text, len, lang, IDX_AN_NO_STOP, cb, user);
}

int idx_analyze_content(idx_analyzer *z, const char *text, size_t len, int lang, idx_term_cb cb, void *user) {
    return analyze(z, text, len, lang, IDX_AN_NO_STOP | IDX_AN_CONTENT, cb, user);
}

uint32_t idx_analyzer_langs(idx_analyzer *z) {
    if (!z) return 0;
    if (z->s && idx_fts_config_current(z->s) != IDX_OK) return 0;
    idx_an *a = an_of(z);
    return idx_an_lang_mask(a) | (1u << idx_an_deflang(a));
}
