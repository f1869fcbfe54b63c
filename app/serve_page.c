/* serve_page.c — the web page served at GET / (app/web/index.html embedded at build time) and its CSP. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "rag/rag.h"
#include "llm/llm.h"

/* The page's bytes followed by one NUL (so it is also a C string) and its
 * length without that NUL. The assembler reads app/web/index.html relative to
 * the directory make runs in (the repo root); the Makefile lists the HTML as a
 * prerequisite of this object so editing the page rebuilds it. */
extern const char app_serve_page[];
extern const size_t app_serve_page_len;
const char *app_serve_page_csp(void);

__asm__(".pushsection .rodata.app_serve_page,\"a\",@progbits\n"
        ".globl app_serve_page\n"
        ".type app_serve_page, @object\n"
        ".balign 16\n"
        "app_serve_page:\n"
        ".incbin \"app/web/index.html\"\n"
        ".byte 0\n"
        ".Lapp_serve_page_end:\n"
        ".size app_serve_page, .Lapp_serve_page_end - app_serve_page\n"
        ".balign 8\n"
        ".globl app_serve_page_len\n"
        ".type app_serve_page_len, @object\n"
        "app_serve_page_len:\n"
        ".quad .Lapp_serve_page_end - app_serve_page - 1\n"
        ".size app_serve_page_len, 8\n"
        ".popsection\n");

/* Writes 'sha256-BASE64' of the n bytes at p into out (at least 52 bytes). */
static void csp_hash(const char *p, size_t n, char out[52]) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char hex[65];
    unsigned char d[33] = {0};
    llm_sha256_hex(p, n, hex);
    for (int i = 0; i < 32; i++) {
        unsigned hi = (unsigned)(hex[2 * i] <= '9' ? hex[2 * i] - '0' : (hex[2 * i] | 0x20) - 'a' + 10);
        unsigned lo = (unsigned)(hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0' : (hex[2 * i + 1] | 0x20) - 'a' + 10);
        d[i] = (unsigned char)(hi << 4 | lo);
    }
    char *o = out + sprintf(out, "sha256-");
    for (int i = 0; i < 33; i += 3) {   /* 32 bytes: 10 full groups, then 2 bytes + '=' */
        unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 | (i + 2 < 32 ? d[i + 2] : 0);
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        *o++ = b64[v >> 6 & 63];
        *o++ = i + 2 < 32 ? b64[v & 63] : '=';
    }
    *o = 0;
}

/* The text between the first `open` tag and the next `close` tag of the
 * page: *n bytes at the returned pointer, or NULL when absent. */
static const char *page_block(const char *open, const char *close, size_t *n) {
    const char *a = strstr(app_serve_page, open);
    if (!a) return NULL;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (!b) return NULL;
    *n = (size_t)(b - a);
    return a;
}

static char page_csp[512];
static pthread_once_t page_csp_once = PTHREAD_ONCE_INIT;

static void page_csp_init(void) {
    size_t ns = 0, nc = 0;
    const char *script = page_block("<script>", "</script>", &ns);
    const char *style = page_block("<style>", "</style>", &nc);
    char hs[52], hc[52];
    if (!script || !style) {   /* not the page this code expects: the permissive policy */
        snprintf(page_csp, sizeof page_csp,
                 "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
                 "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
        return;
    }
    csp_hash(script, ns, hs);
    csp_hash(style, nc, hc);
    snprintf(page_csp, sizeof page_csp,
             "default-src 'none'; script-src '%s'; style-src '%s'; img-src data:; connect-src 'self'; "
             "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
             hs, hc);
}

/* The Content-Security-Policy header value for the page: its one inline
 * script and one style element are allowed by their sha256 (no
 * 'unsafe-inline'), so even markup that slipped into the DOM could not run
 * an event handler or a script; fetch goes to the same origin only; no
 * frames, forms, bases or outside assets. Computed once (thread-safe);
 * returns a borrowed static string. */
const char *app_serve_page_csp(void) {
    pthread_once(&page_csp_once, page_csp_init);
    return page_csp;
}
