/* serve_page.c — the web page served at GET / (app/web/index.html embedded at build time). */
#include <stddef.h>

/* The page's bytes followed by one NUL (so it is also a C string) and its
 * length without that NUL. The assembler reads app/web/index.html relative to
 * the directory make runs in (the repo root); the Makefile lists the HTML as a
 * prerequisite of this object so editing the page rebuilds it. */
extern const char app_serve_page[];
extern const size_t app_serve_page_len;

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
