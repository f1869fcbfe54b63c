/* chat.c — the Mistral instruct chat template ([INST] ... [/INST], v1 spacing):
 * the one place that knows its control strings (formatting, defusing,
 * end-of-turn stops). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "llm/llm.h"

/* Messages and their total size are bounded so a hostile conversation cannot
 * make the formatter overflow a size_t or allocate without limit. */
#define CHAT_MAX_MESSAGES 100000
#define CHAT_MAX_BYTES ((size_t)1 << 30)

typedef struct {
    char *buf;
    size_t len;     /* bytes written (measuring pass: bytes needed) */
} chat_out;

static void out_put(chat_out *o, const char *s, size_t n) {
    if (o->buf) memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void out_puts(chat_out *o, const char *s) {
    out_put(o, s, strlen(s));
}

/* Writes the conversation into o (o->buf NULL = measure only). Returns 0, or
 * -1 when the roles are out of order.
 *
 * The text is the token sequence of Mistral's reference tokenizer
 * (mistral-common, v1 instruct format) spelled so that a SentencePiece
 * tokenizer with llama.cpp's special-token parsing reproduces it:
 *     <s>[INST] {system}\n\n{user} [/INST] {assistant}</s>[INST] {user} [/INST]
 * - no space after <s> or </s>: the tokenizer itself prefixes a space to
 *   text that follows a control token, giving "▁[" "INST" "]";
 * - one space before [/INST] and before the assistant's answer, so the
 *   answer starts with a "▁word" piece as the model generated it;
 * - the system prompt, if any, is folded into the first user turn. */
static int chat_write(const llm_chat_msg *msgs, size_t n, chat_out *o) {
    size_t i = 0;
    const char *system = NULL;
    if (n > 0 && msgs[0].role && strcmp(msgs[0].role, "system") == 0) {
        system = msgs[0].content;
        i = 1;
    }
    if (i >= n) return -1;  /* nothing to answer */
    out_puts(o, "<s>");
    bool want_user = true;
    for (; i < n; i++) {
        const char *role = msgs[i].role, *content = msgs[i].content;
        if (!role || !content) return -1;
        if (want_user) {
            if (strcmp(role, "user") != 0) return -1;
            out_puts(o, "[INST] ");
            if (system && *system) {
                out_puts(o, system);
                out_puts(o, "\n\n");
            }
            system = NULL;
            out_puts(o, content);
            out_puts(o, " [/INST]");
        } else {
            if (strcmp(role, "assistant") != 0) return -1;
            out_puts(o, " ");
            out_puts(o, content);
            out_puts(o, "</s>");
        }
        want_user = !want_user;
    }
    return 0;
}

char *llm_chat_format(const llm_chat_msg *msgs, size_t n) {
    if (!msgs || n == 0 || n > CHAT_MAX_MESSAGES) return NULL;
    /* bound the total before measuring so the sum cannot wrap */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].content) return NULL;
        size_t l = strlen(msgs[i].content);
        if (l > CHAT_MAX_BYTES - total) return NULL;
        total += l;
    }
    chat_out o = {NULL, 0};
    if (chat_write(msgs, n, &o) != 0) return NULL;
    char *buf = malloc(o.len + 1);
    if (!buf) return NULL;
    o.buf = buf;
    o.len = 0;
    chat_write(msgs, n, &o);
    buf[o.len] = 0;
    return buf;
}

/* Control strings with the harmless form put in their place. */
static const struct {
    const char *from, *to;
} chat_controls[] = {{"[INST]", "[ INST]"}, {"[/INST]", "[ /INST]"}, {"<s>", "< s>"}, {"</s>", "< /s>"}};
#define N_CONTROLS (sizeof chat_controls / sizeof chat_controls[0])

/* The control string starting at t[0..len), as an index, or -1; icase:
 * ignoring ASCII case. */
static int control_at(const char *t, size_t len, bool icase) {
    if (t[0] != '[' && t[0] != '<') return -1;
    for (size_t k = 0; k < N_CONTROLS; k++) {
        size_t fl = strlen(chat_controls[k].from);
        if (fl <= len && (icase ? strncasecmp(t, chat_controls[k].from, fl) : strncmp(t, chat_controls[k].from, fl)) == 0)
            return (int)k;
    }
    return -1;
}

const char *llm_chat_find_control(const char *text, size_t len) {
    for (size_t i = 0; text && i < len; i++) {
        int k = control_at(text + i, len - i, false);
        if (k >= 0) return chat_controls[k].from;
    }
    return NULL;
}

char *llm_chat_defuse(const char *text, size_t len) {
    if (!text) len = 0;
    /* each replacement adds one byte: measure, then write */
    size_t n = len;
    for (size_t i = 0; i < len; i++) {
        int k = control_at(text + i, len - i, true);
        if (k >= 0) { n++; i += strlen(chat_controls[k].from) - 1; }
    }
    if (n < len) return NULL;
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < len; i++) {
        int k = control_at(text + i, len - i, true);
        if (k < 0) { *o++ = text[i]; continue; }
        size_t tl = strlen(chat_controls[k].to);
        memcpy(o, chat_controls[k].to, tl);
        o += tl;
        i += strlen(chat_controls[k].from) - 1;
    }
    *o = 0;
    return out;
}

/* A model that starts another turn has finished its answer. */
static const char *const chat_stops[] = {"[INST]", "[/INST]", "</s>"};

const char *const *llm_chat_stop_strings(size_t *n) {
    if (n) *n = sizeof chat_stops / sizeof chat_stops[0];
    return chat_stops;
}
