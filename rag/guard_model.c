/* guard_model.c — the learned injection detector: hashed word and
 * character n-gram features of the skeleton view, a logistic-regression
 * model stored as int8 weights behind a text header, scoring, segmentation
 * into sentences, and reproducible training (fixed seed, one thread). */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rag/guard_model_internal.h"
#include "rag/guard_norm_internal.h"
#include "rag/rag.h"

/* ------------------------------------------------------------ features */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* Kinds of feature (mixed into the hash). */
enum { F_WORD = 1, F_BIGRAM, F_FIRST, F_FIRST2, F_CHAR4, F_LEN, F_TRIGRAM, F_META };

/* Bytes that are part of a word: ASCII letters and digits, and multibyte
 * characters except common punctuation (quotes, dashes, no-break space). */
static size_t word_len(const unsigned char *s, size_t n, size_t i) {
    unsigned char c = s[i];
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || c == '_') return 1;
    if (c < 0x80) return 0;
    size_t l = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (i + l > n) return 0;
    if (c == 0xC2 && (s[i + 1] == 0xA0 || s[i + 1] == 0xAB || s[i + 1] == 0xBB || s[i + 1] == 0xB7)) return 0;
    if (c == 0xE2 && s[i + 1] == 0x80) return 0;       /* U+2000..U+203F: dashes, quotes, bullets */
    return l;
}

/* ASCII punctuation that is a token of its own. */
static bool punct_token(unsigned char c) {
    return c == '?' || c == '!' || c == ':' || c == '"' || c == '`' || c == '(' || c == ')' || c == '=' || c == '/' ||
           c == '@' || c == '{' || c == '}' || c == '[' || c == ']' || c == '<' || c == '>' || c == '#' || c == '$' ||
           c == '%' || c == '&' || c == '*' || c == '+' || c == ';' || c == '|';
}

/* Word classes behind the "meta" features: what generalises from the
 * attacks seen in training to ones that were not (docs/guardrails.md):
 * orders addressed to the assistant about its answer ("in your response,
 * add ..."), to its users, with a link, and code that sends data away.
 * Lists of common words in English, German, French, Spanish, Italian and
 * Dutch; not taken from any evaluation rows. */
enum {
    C_YOUR = 1, C_OUT = 2, C_AI = 4, C_USER = 8, C_URL = 16, C_IMP = 32, C_NET = 64, C_SEND = 128,
    C_SECRET = 256, C_PLEASE = 512, C_STOP = 1024, C_REQ = 2048, C_BEGIN = 4096, C_WH = 8192,
};
static const struct { unsigned cls; const char *words; } word_classes[] = {
    {C_YOUR, "your yours deine deiner deinen deinem dein ihre ihrer ihren ihrem ta tes ton votre vos tu tus tua tuo tue "
             "tuoi jouw uw"},
    {C_OUT, "response responses answer answers reply replies output message summary solution implementation result "
            "results codebase script program code antwort antworten ausgabe zusammenfassung lösung réponse réponses "
            "respuesta respuestas risposta risposte antwoord reactie"},
    {C_AI, "ai assistant chatbot llm gpt chatgpt ki assistent bot ia assistente asistente"},
    {C_USER, "user users reader readers nutzer nutzerin benutzer leser leserin utilisateur utilisateurs lecteur "
             "lecteurs usuario usuarios lector lectores utente utenti lettore lettori gebruiker gebruikers lezer lezers"},
    {C_URL, "www http https"},
    {C_PLEASE, "please kindly bitte veuillez svp por favor per favore alsjeblieft"},
    {C_IMP, "write add include insert append mention translate summarize summarise explain describe list generate create "
            "compose draft tell say reply respond answer provide give show print output repeat ignore forget disregard "
            "encode decode convert replace rewrite format use make recommend suggest promote advertise claim state "
            "spread encourage ask remind urge invite modify change alter end start begin sign analyze analyse determine "
            "find search calculate compute solve classify rate rank evaluate assess review compare predict estimate "
            "identify extract reverse spell count act pretend imagine roleplay play become behave emulate simulate "
            "send post upload download visit click call share execute run implement integrate incorporate embed merge "
            "inject deploy utilize utilise leverage employ enlist adopt fuse blend weave meld absorb engage infuse "
            "interweave harmonize enhance augment enrich ensure consider keep insist praise criticize express "
            "schreibe schreib füge gib nenne erkläre beschreibe übersetze fasse antworte sage sag zeige zeig liste "
            "erstelle verfasse ignoriere vergiss ersetze formuliere empfiehl erwähne behaupte wiederhole gebe mache "
            "mach stell stelle handle agiere spiele verhalte beantworte ergänze "
            "écris ajoute donne traduis réponds dis oublie résume explique mentionne inclus insère recommande "
            "escribe añade agrega incluye responde traduce di ignora olvida menciona recomienda "
            "scrivi aggiungi includi rispondi traduci dimentica menziona "
            "schrijf voeg geef vertaal antwoord zeg negeer vergeet noem"},
    {C_NET, "requests urllib socket smtplib ftplib httplib paramiko subprocess curl wget pycurl aiohttp httpx"},
    {C_SEND, "post send sendall sendto upload storbinary connect sendmail put urlopen request publish"},
    {C_SECRET, "cookie cookies cookiejar environ password passwords passwd keyboard pynput keylogger screenshot "
               "imagegrab pyautogui psutil clipboard pyperclip getpass credentials credential wallet token tokens "
               "fernet encrypt rmtree shadow ssh history browser sqlite3 webcam microphone miner mining"},
    /* words that say nothing about a sentence's topic (the relatedness
     * test, rag_guard_content_keys): function words of the supported
     * languages and the verbs and fillers of requests */
    {C_STOP, "what which when where whom whose that this these those there their theirs them they then than with from "
             "into onto about above below after before over under again also just only very much many more most some "
             "such each every other another your yours have having been being were does doing done would could should "
             "shall will might must please kindly following here like make made using used want need tell give show "
             "explain describe write provide create generate list simple terms example examples briefly detail details "
             "short help know things thing something anything everything someone good best well really still even "
             "because while during without within between through against upon whether both either neither same "
             "thanks thank regards dear hello note also could would about across along among around cannot dont doesnt "
             "isnt arent wasnt youre its it's what's whats how's let's lets include mention add answer response reply "
             "question questions ask asked information info main based take takes first last next back work works "
             "dass eine einen einem einer eines sich nicht auch noch nach wird werden wurde wurden sind sein seine "
             "seinen seiner ihre ihrer ihren ihrem deine deinen deiner meine meinen meiner diese dieser dieses diesen "
             "welche welcher welches welchen wenn weil aber oder doch schon sehr mehr viel viele alle alles über unter "
             "durch gegen ohne beim kann können könnte muss müssen soll sollen sollte will wollen möchte möchten "
             "haben hatte hätte gibt bitte erkläre beschreibe schreibe gebe zeige nenne warum wieso weshalb wann dann "
             "denn hier dort etwas immer jetzt heute mich dich euch ihnen damit dabei dazu davon darüber einfach "
             "dans pour avec sans sous cette sont être avoir fait plus tout tous toutes votre notre leur leurs quel "
             "quelle comment pourquoi quand para como pero este esta estos todo todos puede donde cuando porque della "
             "delle sono come questo questa anche perché quando dove voor maar niet deze zijn heeft hebben wordt "
             "worden kunnen welke waarom wanneer"},
    /* where a request pasted into a sentence starts and where the text
     * around it goes on (rag_guard_task_pieces; not features of the
     * models): words that open a request, and words that open a sentence */
    {C_REQ, "write tell explain list describe summarize summarise translate give show name compose create generate "
            "draft provide recommend suggest teach "
            "schreibe schreib erkläre erklär nenne beschreibe übersetze fasse erzähle erzähl gib zeige zeig verfasse "
            "erstelle empfiehl"},
    {C_WH, "who what when where why how which wer was wann warum wieso weshalb welche welcher welches wie wo woher wohin"},
    {C_BEGIN, "the if you we our this these there please thanks it they he she my your when as in on at for and but "
              "der die das wir es wenn bitte ein eine bei im am zum zur danke unser unsere und aber"},
};

#define CLASS_SLOTS 4096
static struct { uint64_t h; unsigned cls; } class_table[CLASS_SLOTS];
static pthread_once_t class_once = PTHREAD_ONCE_INIT;

static uint64_t tok_hash(const unsigned char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t k = 0; k < n; k++) h = (h ^ s[k]) * 1099511628211ull;
    return h;
}

static void class_build(void) {
    for (size_t c = 0; c < sizeof word_classes / sizeof word_classes[0]; c++) {
        const char *w = word_classes[c].words;
        while (*w) {
            while (*w == ' ') w++;
            const char *e = w;
            while (*e && *e != ' ') e++;
            if (e > w) {
                uint64_t h = tok_hash((const unsigned char *)w, (size_t)(e - w));
                size_t i = h % CLASS_SLOTS;
                while (class_table[i].h && class_table[i].h != h) i = (i + 1) % CLASS_SLOTS;
                class_table[i].h = h;
                class_table[i].cls |= word_classes[c].cls;
            }
            w = e;
        }
    }
}

static unsigned class_of(uint64_t h) {
    for (size_t i = h % CLASS_SLOTS; class_table[i].h; i = (i + 1) % CLASS_SLOTS)
        if (class_table[i].h == h) return class_table[i].cls;
    return 0;
}

/* Meta features (one each, mixed into the hash with F_META). */
enum {
    M_YOUR_OUT = 1, M_IMP_START, M_IMP_YOUR_OUT, M_IMP_USER, M_IMP_URL, M_AI, M_USER, M_URL, M_IMP_AI, M_EXFIL,
    M_YOUR, M_QUESTION, M_IMP_QUESTION,
};

size_t rag_guard_model_features(const char *str, size_t n, int bits, void (*fn)(void *user, uint32_t b), void *user) {
    const unsigned char *s = (const unsigned char *)str;
    size_t nf = 0, ntok = 0;
    uint64_t prev = 0, prev2 = 0;
    uint32_t win = 0x20202020u;    /* last four bytes of " tok tok ..." */
    int shift = 64 - bits;
    unsigned seen = 0, first_cls = 0, second_cls = 0;
    size_t last_your = (size_t)-10;
    bool your_out = false, question = false;
    pthread_once(&class_once, class_build);
#define EMIT(key) do { fn(user, (uint32_t)(mix64(key) >> shift)); nf++; } while (0)
    for (size_t i = 0; i < n;) {
        size_t l = word_len(s, n, i);
        uint64_t h;
        size_t a = i;
        bool word = l > 0;
        if (l) {
            while (i < n && (l = word_len(s, n, i)) > 0) i += l;
            if (i - a > 40) continue;      /* long runs (hashes, base64) are noise */
            h = tok_hash(s + a, i - a);
        } else if (punct_token(s[i])) {
            h = 0x9e3779b97f4a7c15ull * (s[i] + 7u);
            if (s[i] == '?') question = true;
            i++;
        } else {
            i++;
            continue;
        }
        if (word) {
            unsigned c = class_of(h);
            seen |= c;
            if (ntok == 0) first_cls = c;
            if (ntok == 1) second_cls = c;
            if (c & C_YOUR) last_your = ntok;
            if ((c & C_OUT) && ntok - last_your <= 2) your_out = true;
        }
        /* character 4-grams over " token " */
        win = (win << 8) | ' ';
        EMIT(((uint64_t)F_CHAR4 << 56) ^ win);
        for (size_t k = a; k < i; k++) {
            win = (win << 8) | s[k];
            EMIT(((uint64_t)F_CHAR4 << 56) ^ win);
        }
        EMIT(h ^ ((uint64_t)F_WORD << 56));
        if (ntok == 0) EMIT(h ^ ((uint64_t)F_FIRST << 56));
        if (ntok >= 1) {
            uint64_t b = mix64(prev * 31 + h);
            EMIT(b ^ ((uint64_t)F_BIGRAM << 56));
            if (ntok == 1) EMIT(b ^ ((uint64_t)F_FIRST2 << 56));
        }
        if (ntok >= 2) EMIT(mix64(mix64(prev2 * 31 + prev) * 31 + h) ^ ((uint64_t)F_TRIGRAM << 56));
        prev2 = prev;
        prev = h;
        ntok++;
    }
    /* features of the whole sentence: not counted in nf, not scaled */
#define EMIT_WHOLE(key) fn(user, (uint32_t)(mix64(key) >> shift) | GUARD_FEAT_WHOLE)
    size_t lb = ntok < 3 ? ntok : ntok < 8 ? 3 : ntok < 20 ? 4 : ntok < 60 ? 5 : 6;
    EMIT_WHOLE(((uint64_t)F_LEN << 56) ^ lb);
    bool imp = (first_cls & C_IMP) || ((first_cls & C_PLEASE) && (second_cls & C_IMP));
#define META(m) EMIT_WHOLE(((uint64_t)F_META << 56) ^ (uint64_t)(m))
    if (your_out) META(M_YOUR_OUT);
    if (seen & C_YOUR) META(M_YOUR);
    if (imp) META(M_IMP_START);
    if (imp && your_out) META(M_IMP_YOUR_OUT);
    if (imp && (seen & C_USER)) META(M_IMP_USER);
    if (imp && (seen & C_URL)) META(M_IMP_URL);
    if (imp && (seen & C_AI)) META(M_IMP_AI);
    if (seen & C_AI) META(M_AI);
    if (seen & C_USER) META(M_USER);
    if (seen & C_URL) META(M_URL);
    if ((seen & (C_NET | C_SEND | C_SECRET)) == (C_NET | C_SEND | C_SECRET)) META(M_EXFIL);
    if (question) META(M_QUESTION);
    if (question && imp) META(M_IMP_QUESTION);
#undef META
#undef EMIT_WHOLE
#undef EMIT
    return nf;
}

size_t rag_guard_model_words(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t w = 0;
    bool in = false;
    for (size_t i = 0; i < n;) {
        size_t l = word_len(s, n, i);
        if (l) { if (!in) w++; in = true; i += l; }
        else { in = false; i++; }
    }
    return w;
}

size_t rag_guard_content_keys(const char *str, size_t n, uint64_t *keys, size_t cap) {
    const unsigned char *s = (const unsigned char *)str;
    size_t k = 0;
    pthread_once(&class_once, class_build);
    for (size_t i = 0; i < n && k < cap;) {
        size_t l = word_len(s, n, i), a = i;
        if (!l) { i++; continue; }
        bool digits = true;
        while (i < n && (l = word_len(s, n, i)) > 0) {
            if (s[i] < '0' || s[i] > '9') digits = false;
            i += l;
        }
        /* short words, numbers, function words, the verbs and question
         * words of requests and long runs say nothing about the topic */
        if (i - a < 4 || i - a > 40 || digits || (class_of(tok_hash(s + a, i - a)) & (C_STOP | C_REQ | C_WH))) continue;
        keys[k++] = tok_hash(s + a, i - a < 5 ? i - a : 5) | 1;   /* a crude stem: the first five bytes */
    }
    return k;
}

typedef struct {
    const int8_t *q;
    long sum, whole;       /* n-gram weights; whole-sentence weights */
    size_t n_whole;
} score_acc;

static void add_q(void *u, uint32_t b) {
    score_acc *a = u;
    if (b & GUARD_FEAT_WHOLE) { a->whole += a->q[b & ~GUARD_FEAT_WHOLE]; a->n_whole++; }
    else a->sum += a->q[b];
}

float rag_guard_model_score(const guard_model *m, const char *s, size_t n) {
    score_acc a = {m->q, 0, 0, 0};
    size_t nf = rag_guard_model_features(s, n, m->bits, add_q, &a);
    double z;
    if (m->whole) {
        z = m->bias + (double)m->scale * ((double)a.sum / sqrt((double)(nf ? nf : 1)) + (double)a.whole);
    } else {                /* format 1: all features alike */
        nf += a.n_whole;
        z = m->bias + (double)m->scale * (double)(a.sum + a.whole) / sqrt((double)(nf ? nf : 1));
    }
    return (float)(1.0 / (1.0 + exp(-z)));
}

/* ------------------------------------------------------------ segments */

#define SEG_MAX 600

static bool seg_space(char c) {
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '|';
}

/* Appends the trimmed [a, b) when it is not empty. */
static void seg_emit(const char *s, size_t a, size_t b, guard_segment *out, size_t *k) {
    while (a < b && seg_space(s[a])) a++;
    while (b > a && seg_space(s[b - 1])) b--;
    if (b > a) { out[*k] = (guard_segment){a, b, false, false}; (*k)++; }
}

static bool fence_at(const char *s, size_t n, size_t i) {
    return i + 2 < n && s[i] == '`' && s[i + 1] == '`' && s[i + 2] == '`' && (i == 0 || s[i - 1] == '\n');
}

size_t rag_guard_segments(const char *s, size_t n, guard_segment *out, size_t cap) {
    size_t k = 0, start = 0, i = 0;
    while (i < n && k + 1 < cap) {
        if (fence_at(s, n, i)) {
            /* a fenced code block is one segment, up to its closing fence */
            seg_emit(s, start, i, out, &k);
            size_t j = i + 3;
            while (j < n && !fence_at(s, n, j)) j++;
            j = j < n ? j + 3 : n;
            seg_emit(s, i, j, out, &k);
            start = i = j;
            continue;
        }
        size_t cut = 0;   /* the current segment ends before cut */
        char c = s[i];
        if ((c == '.' || c == '!' || c == '?') && (i + 1 == n || s[i + 1] == ' ' || s[i + 1] == '\n' || s[i + 1] == '\t' || s[i + 1] == '\r')) {
            cut = i + 1;
        } else if (c == '\n') {
            size_t p = i;
            while (p > start && (s[p - 1] == ' ' || s[p - 1] == '\t' || s[p - 1] == '\r')) p--;
            char last = p > start ? s[p - 1] : '\n';
            char nx = i + 1 < n ? s[i + 1] : '\n';
            /* a line break ends a segment unless the next line goes on
             * with a small letter (a sentence wrapped over lines) */
            if (nx == '\n' || last == ':' || last == ';' || last == '.' || last == '!' || last == '?' || last == '\n' ||
                !((nx >= 'a' && nx <= 'z') || (unsigned char)nx >= 0x80))
                cut = i;
        } else if (c == '|') {
            cut = i;
        } else if (i - start >= SEG_MAX && (c == ' ' || c == '\t')) {
            cut = i;
        }
        if (cut) {
            seg_emit(s, start, cut, out, &k);
            start = cut;
        }
        i++;
    }
    seg_emit(s, start, n, out, &k);
    return k;
}

/* The class of the word at s[i..] (ASCII and Latin-1 letters folded to
 * small ones), its length in *len. */
static unsigned word_class_at(const char *str, size_t n, size_t i, size_t *len) {
    const unsigned char *s = (const unsigned char *)str;
    unsigned char w[48];
    size_t k = 0, j = i, l;
    while (j < n && (l = word_len(s, n, j)) > 0) {
        for (size_t t = 0; t < l; t++) {
            unsigned char c = s[j + t];
            if (l == 1 && c >= 'A' && c <= 'Z') c += 32;
            else if (l == 2 && t == 1 && s[j] == 0xC3 && c >= 0x80 && c <= 0x9E && c != 0x97) c += 32;
            if (k < sizeof w) w[k++] = c;
        }
        j += l;
    }
    *len = j - i;
    if (k == 0 || k >= sizeof w) return 0;
    pthread_once(&class_once, class_build);
    return class_of(tok_hash(w, k));
}

static bool upper_at(const unsigned char *s, size_t n, size_t i) {
    return (s[i] >= 'A' && s[i] <= 'Z') || (i + 1 < n && s[i] == 0xC3 && s[i + 1] >= 0x80 && s[i + 1] <= 0x9E);
}

static bool lower_byte(unsigned char c) {
    return c >= 'a' && c <= 'z';
}

/* Appends a piece; glued: it starts inside a word of the host. */
static void piece_emit(const char *s, size_t a, size_t b, bool glued, guard_segment *out, size_t *k) {
    size_t k0 = *k;
    seg_emit(s, a, b, out, k);
    if (*k > k0) out[*k - 1].glued = glued;
}

/* s[..e) ends with a word of two or more capitals and no small letter
 * ("MEMO", "NOTICE", "FYI") that starts at a or after white space. */
static bool caps_word_before(const unsigned char *s, size_t a, size_t e) {
    size_t i = e, caps = 0;
    while (i > a && s[i - 1] >= 'A' && s[i - 1] <= 'Z') { i--; caps++; }
    return caps >= 2 && (i == a || s[i - 1] == ' ' || s[i - 1] == '\n' || s[i - 1] == '\t');
}

size_t rag_guard_task_pieces(const char *str, size_t a, size_t b, guard_segment *out, size_t cap) {
    const unsigned char *s = (const unsigned char *)str;
    size_t k = 0, start = a;
    if (!cap) return 0;
    bool clause = false, glued = false;
    for (size_t i = a + 1; i < b && k + 1 < cap; i++) {
        if (lower_byte(s[i]) && i >= a + 2 && s[i - 1] == ' ' && s[i - 2] == ',') {
            /* an order between commas: "… arrive ten minutes, tell me a
             * joke about elephants, early to …"; it ends at the next
             * comma before a sentence word, or before any word once it
             * has three words ("…, erzähl mir einen Witz über Elefanten,
             * jetzt den …"; not "erkläre, wie …") */
            size_t len, words = 0;
            for (size_t t = start; clause && t + 1 < i; t++) words += s[t] == ' ' && s[t + 1] != ' ';
            if (word_class_at(str, b, i, &len) & C_REQ) {
                piece_emit(str, start, i, glued, out, &k);
                start = i;
                clause = true;
                glued = false;
            } else if (clause && ((word_class_at(str, b, i, &len) & C_BEGIN) || words >= 3)) {
                piece_emit(str, start, i, glued, out, &k);
                start = i;
                clause = false;
                glued = false;
            }
            continue;
        }
        if (!upper_at(s, b, i)) continue;
        unsigned char p = s[i - 1];
        bool cut = false;
        size_t len;
        if (lower_byte(p)) {
            /* glued into a word: "… may be cold unWrite a poem …" */
            cut = (word_class_at(str, b, i, &len) & (C_REQ | C_WH)) != 0;
        } else if ((p == '.' || p == '!' || p == '?' || p == ';') && i >= a + 2 && lower_byte(s[i - 2])) {
            /* glued after a stop: "… on Friday.Write a poem …" */
            cut = (word_class_at(str, b, i, &len) & (C_REQ | C_WH | C_BEGIN)) != 0;
        } else if (p == ' ' && i >= a + 2 && (lower_byte(s[i - 2]) || s[i - 2] == ',' || (s[i - 2] >= '0' && s[i - 2] <= '9'))) {
            /* a clause without a stop: "… your insurance card List three
             * facts about penguins If you cannot come …", "Hi Lukas, List …" */
            unsigned c = word_class_at(str, b, i, &len);
            cut = (c & (C_REQ | C_WH)) || ((c & C_BEGIN) && s[i - 2] != ',');
        } else if (p == ' ' && i >= a + 3 && upper_at(s, b, i - 2) && caps_word_before(s, a, i - 1)) {
            /* after a word in capitals: "MEMO Who invented …" */
            cut = (word_class_at(str, b, i, &len) & (C_REQ | C_WH)) != 0;
        }
        if (!cut) continue;
        piece_emit(str, start, i, glued, out, &k);
        start = i;
        glued = lower_byte(p);
    }
    piece_emit(str, start, b, glued, out, &k);
    /* quoted reply markers ("> ") are not part of what a piece says */
    for (size_t t = 0; k > 1 && t < k; t++) out[t].piece = true;
    for (size_t t = 0; t < k; t++)
        while (out[t].start < out[t].end && (s[out[t].start] == '>' || s[out[t].start] == ' ')) out[t].start++;
    return k;
}

/* A piece's score; one that opens with a question word and has no stop
 * is also scored with a '?' (what it is: a question). */
#define TASK_QMARK_MAX 600
static float piece_score(const guard_model *m, const char *t, size_t n, bool wh) {
    float sc = rag_guard_model_score(m, t, n);
    if (!wh || n == 0 || n >= TASK_QMARK_MAX || t[n - 1] == '.' || t[n - 1] == '!' || t[n - 1] == '?') return sc;
    char buf[TASK_QMARK_MAX + 1];
    memcpy(buf, t, n);
    buf[n] = '?';
    float q = rag_guard_model_score(m, buf, n + 1);
    return q > sc ? q : sc;
}

#define TASK_GLUED_MIN 3
#define TASK_GLUED_MAX 12

float rag_guard_task_score(const guard_model *m, const char *sk, guard_segment *sg, float thr) {
    const char *t = sk + sg->start;
    size_t n = sg->end - sg->start, len;
    unsigned cls = word_class_at(t, n, 0, &len);
    bool wh = sg->piece && (cls & C_WH);
    float sc = sg->piece ? piece_score(m, t, n, wh) : rag_guard_model_score(m, t, n);
    if (!sg->glued || sc >= thr) return sc;
    /* glued into a word: the request ends at one of its first words */
    size_t words = 0, best_end = 0;
    float best = sc;
    for (size_t i = 0; i < n && words < TASK_GLUED_MAX; i++) {
        if (t[i] != ' ' || i == 0 || t[i - 1] == ' ') continue;
        if (++words < TASK_GLUED_MIN) continue;
        float p = piece_score(m, t, i, wh);
        if (p >= thr) { best = p; best_end = i; }
    }
    if (best_end) sg->end = sg->start + best_end;
    return best;
}

/* ------------------------------------------------------------ files */

void rag_guard_model_free(guard_model *m) {
    if (!m) return;
    free(m->q);
    free(m->info);
    free(m);
}

int rag_guard_model_load(const char *path, guard_model **out, char *err, size_t err_cap) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, err_cap, "%.300s: %s", path, strerror(errno)); return -1; }
    char *buf = malloc(GUARD_MODEL_MAX_FILE + 1);
    guard_model *m = calloc(1, sizeof *m);
    int rc = -1;
    if (!buf || !m) { snprintf(err, err_cap, "%.300s: out of memory", path); goto done; }
    size_t n = fread(buf, 1, GUARD_MODEL_MAX_FILE + 1, f);
    if (n > GUARD_MODEL_MAX_FILE) { snprintf(err, err_cap, "%.300s: larger than %u bytes", path, GUARD_MODEL_MAX_FILE); goto done; }
    buf[n] = 0;
    /* header: "mrag-guard-model 1\n", "key value" lines, "end\n" */
    char *end = NULL;
    for (size_t i = 0; i + 4 <= n; i++)
        if ((i == 0 || buf[i - 1] == '\n') && memcmp(buf + i, "end\n", 4) == 0) { end = buf + i; break; }
    int version = 0;
    if (strncmp(buf, GUARD_MODEL_MAGIC " ", sizeof GUARD_MODEL_MAGIC) != 0 || !end ||
        sscanf(buf + sizeof GUARD_MODEL_MAGIC, "%d", &version) != 1) {
        snprintf(err, err_cap, "%.300s: not an mrag guard model (no '%s N' header)", path, GUARD_MODEL_MAGIC);
        goto done;
    }
    if (version < 1 || version > GUARD_MODEL_VERSION) {
        snprintf(err, err_cap, "%.300s: model format version %d, this mrag reads version %d (retrain: make guard-model)",
                 path, version, GUARD_MODEL_VERSION);
        goto done;
    }
    m->whole = version >= 2;
    *end = 0;
    bool have_bits = false, have_scale = false, have_bias = false;
    for (char *line = strchr(buf, '\n'); line && *line;) {
        line++;
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (sscanf(line, "bits %d", &m->bits) == 1) have_bits = true;
        else if (sscanf(line, "scale %f", &m->scale) == 1) have_scale = true;
        else if (sscanf(line, "bias %f", &m->bias) == 1) have_bias = true;
        if (nl) *nl = '\n';
        line = nl;
    }
    if (!have_bits || !have_scale || !have_bias || m->bits < GUARD_MODEL_MIN_BITS || m->bits > GUARD_MODEL_MAX_BITS ||
        !isfinite(m->scale) || !isfinite(m->bias) || m->scale < 0) {
        snprintf(err, err_cap, "%.300s: header lacks a valid bits (%d..%d), scale or bias", path,
                 GUARD_MODEL_MIN_BITS, GUARD_MODEL_MAX_BITS);
        goto done;
    }
    size_t hdr = (size_t)(end - buf) + 4, dim = (size_t)1 << m->bits;
    if (n - hdr != dim) {
        snprintf(err, err_cap, "%.300s: %zu weight bytes after the header, %zu expected (truncated?)", path, n - hdr, dim);
        goto done;
    }
    m->q = malloc(dim);
    m->info = strndup(buf, (size_t)(end - buf));
    if (!m->q || !m->info) { snprintf(err, err_cap, "%.300s: out of memory", path); goto done; }
    memcpy(m->q, buf + hdr, dim);
    *out = m;
    m = NULL;
    rc = 0;
done:
    fclose(f);
    free(buf);
    rag_guard_model_free(m);
    return rc;
}

/* ------------------------------------------------------------ training */

rag_guard_train_params rag_guard_train_default_params(void) {
    rag_guard_train_params p;
    memset(&p, 0, sizeof p);
    p.bits = 18;
    p.epochs = 10;
    p.seed = 1;
    p.lr = 0.25;
    p.l2 = 1e-4;
    return p;
}

typedef struct {
    uint32_t *f;
    size_t n, cap;
    int failed;
} featvec;

static void push_feat(void *u, uint32_t b) {
    featvec *v = u;
    if (v->failed) return;
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 1024;
        uint32_t *nf = realloc(v->f, nc * sizeof *nf);
        if (!nf) { v->failed = 1; return; }
        v->f = nf;
        v->cap = nc;
    }
    v->f[v->n++] = b;
}

/* The skeleton of a text, as checks see it (NUL-terminated, owned). */
static char *skeleton_of(const char *t, size_t n, size_t *out_n) {
    char *fixed = NULL;
    size_t fl, used;
    if (rag_guard_utf8_repair(t, n, true, &fixed, &fl, &used) != 0) return NULL;
    guard_view v1, v2;
    unsigned ch;
    char *r = NULL;
    if (rag_guard_view_unicode(fixed, fl, &v1) == 0) {
        if (rag_guard_view_skeleton(&v1, &v2, &ch) == 0) {
            r = v2.s;
            *out_n = v2.n;
            v2.s = NULL;
            rag_guard_view_release(&v2);
        }
        rag_guard_view_release(&v1);
    }
    free(fixed);
    return r;
}

int rag_guard_train(const rag_guard_train_params *pp, const char *const *texts, const size_t *lens, const int *labels,
                    const float *weights, size_t n, const char *info, const char *path, char *err, size_t err_cap) {
    rag_guard_train_params p = pp ? *pp : rag_guard_train_default_params();
    int rc = RAG_ERR_NOMEM;
    size_t *off = NULL, *order = NULL, npos = 0;
    featvec fv = {0};
    float *w = NULL, *G = NULL;
    int8_t *q = NULL;
    FILE *f = NULL;
    char tmp[4200];
    if (err_cap) err[0] = 0;
    if (!texts || !labels || !path || n == 0 || p.bits < GUARD_MODEL_MIN_BITS || p.bits > GUARD_MODEL_MAX_BITS ||
        p.epochs < 1 || !(p.lr > 0)) {
        snprintf(err, err_cap, "training needs rows and sane parameters (bits %d..%d)", GUARD_MODEL_MIN_BITS, GUARD_MODEL_MAX_BITS);
        return RAG_ERR_ARG;
    }
    size_t dim = (size_t)1 << p.bits;
    off = malloc((n + 1) * sizeof *off);
    order = malloc(n * sizeof *order);
    w = calloc(dim, sizeof *w);
    G = calloc(dim, sizeof *G);
    q = malloc(dim);
    if (!off || !order || !w || !G || !q) goto done;
    /* features of every row, once */
    for (size_t i = 0; i < n; i++) {
        off[i] = fv.n;
        size_t sn = 0;
        char *sk = skeleton_of(texts[i], lens ? lens[i] : strlen(texts[i]), &sn);
        if (!sk) goto done;
        rag_guard_model_features(sk, sn, p.bits, push_feat, &fv);
        free(sk);
        if (fv.failed) goto done;
        npos += labels[i] != 0;
        order[i] = i;
    }
    off[n] = fv.n;
    if (npos == 0 || npos == n) {
        snprintf(err, err_cap, "training needs both labels (%zu injections, %zu benign rows)", npos, n - npos);
        rc = RAG_ERR_ARG;
        goto done;
    }
    /* class weights balance the two labels */
    double cw1 = (double)n / (2.0 * (double)npos), cw0 = (double)n / (2.0 * (double)(n - npos));
    double bias = 0, Gb = 0;
    uint64_t rng = p.seed ? p.seed : 1;
    for (int ep = 0; ep < p.epochs; ep++) {
        for (size_t i = n - 1; i > 0; i--) {          /* Fisher-Yates with xorshift64 */
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            size_t j = (size_t)(rng % (i + 1));
            size_t t = order[i]; order[i] = order[j]; order[j] = t;
        }
        for (size_t k = 0; k < n; k++) {
            size_t i = order[k];
            size_t nf = off[i + 1] - off[i];
            const uint32_t *fs = fv.f + off[i];
            size_t ngrams = 0;
            for (size_t j = 0; j < nf; j++) ngrams += !p.whole || !(fs[j] & GUARD_FEAT_WHOLE);
            /* n-grams scaled by 1/sqrt(their count); with p.whole the
             * whole-sentence features by 1 */
            double v = 1.0 / sqrt((double)(ngrams ? ngrams : 1));
            double z = bias;
            for (size_t j = 0; j < nf; j++) {
                bool whole = p.whole && (fs[j] & GUARD_FEAT_WHOLE);
                z += w[fs[j] & ~GUARD_FEAT_WHOLE] * (whole ? 1.0 : v);
            }
            double pr = 1.0 / (1.0 + exp(-z));
            int y = labels[i] != 0;
            double g = (pr - y) * (y ? cw1 : cw0) * (weights ? weights[i] : 1.0);
            for (size_t j = 0; j < nf; j++) {
                bool whole = p.whole && (fs[j] & GUARD_FEAT_WHOLE);
                uint32_t b = fs[j] & ~GUARD_FEAT_WHOLE;
                double gr = g * (whole ? 1.0 : v) + p.l2 * w[b];
                G[b] += (float)(gr * gr);
                w[b] -= (float)(p.lr * gr / (sqrt((double)G[b]) + 1e-6));
            }
            Gb += g * g;
            bias -= p.lr * g / (sqrt(Gb) + 1e-6);
        }
    }
    float maxw = 0;
    for (size_t i = 0; i < dim; i++) if (fabsf(w[i]) > maxw) maxw = fabsf(w[i]);
    float scale = maxw > 0 ? maxw / 127.0f : 1.0f;
    for (size_t i = 0; i < dim; i++) {
        float r = roundf(w[i] / scale);
        q[i] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
    }
    /* write next to the target, then rename: never a half-written model */
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) { snprintf(err, err_cap, "path too long"); rc = RAG_ERR_ARG; goto done; }
    if (!(f = fopen(tmp, "wb"))) { snprintf(err, err_cap, "%.300s: %s", tmp, strerror(errno)); rc = RAG_ERR_IO; goto done; }
    fprintf(f, "%s %d\n", GUARD_MODEL_MAGIC, p.whole ? 2 : 1);
    fprintf(f, "kind logistic regression over hashed features of the skeleton view\n");
    if (p.whole) fprintf(f, "features word1 word2 word3 first1 first2 char4 (scaled by 1/sqrt(count)), length meta (unscaled)\n");
    else fprintf(f, "features word1 word2 word3 first1 first2 char4 length meta\n");
    fprintf(f, "bits %d\nscale %.9g\nbias %.9g\n", p.bits, (double)scale, bias);
    fprintf(f, "rows %zu injections %zu\n", n, npos);
    fprintf(f, "train seed %llu epochs %d lr %.6g l2 %.6g\n", (unsigned long long)p.seed, p.epochs, p.lr, p.l2);
    if (info && *info) {
        fprintf(f, "data ");
        for (const char *c = info; *c; c++) fputc(*c == '\n' ? ' ' : *c, f);
        fputc('\n', f);
    }
    fprintf(f, "end\n");
    fwrite(q, 1, dim, f);
    if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
        snprintf(err, err_cap, "%.300s: write error", tmp);
        fclose(f);
        f = NULL;
        unlink(tmp);
        rc = RAG_ERR_IO;
        goto done;
    }
    fclose(f);
    f = NULL;
    if (rename(tmp, path) != 0) { snprintf(err, err_cap, "%.300s: %s", path, strerror(errno)); unlink(tmp); rc = RAG_ERR_IO; goto done; }
    rc = RAG_OK;
done:
    if (rc == RAG_ERR_NOMEM && err_cap && !err[0]) snprintf(err, err_cap, "out of memory");
    free(off);
    free(order);
    free(fv.f);
    free(w);
    free(G);
    free(q);
    return rc;
}
