/* http.c — HTTP helpers shared by the wiki connector and the remote engine:
 * reading a Retry-After header in either of its two forms. */
#include "rag/http_internal.h"

#include <curl/curl.h>
#include <string.h>
#include <strings.h>

#define RETRY_AFTER_CAP_S 86400

long rag_http_retry_after(const char *line, size_t n, time_t now) {
    static const char name[] = "retry-after:";
    const size_t nl = sizeof name - 1;
    if (!line || n <= nl || strncasecmp(line, name, nl) != 0) return -1;
    const char *v = line + nl, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
    if (v == end) return -1;
    if (*v >= '0' && *v <= '9') {
        long s = 0;
        for (const char *p = v; p < end; p++) {
            if (*p < '0' || *p > '9') return -1;
            if (s < RETRY_AFTER_CAP_S) s = s * 10 + (*p - '0');
        }
        return s > RETRY_AFTER_CAP_S ? RETRY_AFTER_CAP_S : s;
    }
    char date[64];
    size_t len = (size_t)(end - v);
    if (len >= sizeof date) return -1;
    memcpy(date, v, len);
    date[len] = 0;
    time_t t = curl_getdate(date, NULL);
    if (t == (time_t)-1) return -1;
    if (t <= now) return 0;
    return t - now > RETRY_AFTER_CAP_S ? RETRY_AFTER_CAP_S : (long)(t - now);
}
