/* http_internal.h — HTTP helpers shared by rag/'s two libcurl clients: the
 * MediaWiki connector (wiki_http.c) and the remote engine (remote.c). */
#ifndef MRAG_RAG_HTTP_INTERNAL_H
#define MRAG_RAG_HTTP_INTERNAL_H

#include <stddef.h>
#include <time.h>

/* Seconds a Retry-After header line asks the client to wait. line[0..n) is
 * one raw header line as libcurl hands it over (not NUL-terminated, may end
 * in CRLF). Both forms of RFC 9110 are understood: delta-seconds ("120") and
 * an HTTP-date ("Fri, 27 Nov 2026 17:30:00 GMT", seconds after now; a date
 * in the past is 0). Returns -1 when the line is not a Retry-After header or
 * its value cannot be read; values are capped at 86400. */
long rag_http_retry_after(const char *line, size_t n, time_t now);

#endif
