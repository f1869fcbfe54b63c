/* base.h — what every rag/ header shares: status codes, the forward
 * declarations of the llm/ and index/ handles, the token counter and the
 * text sink. Library code: returns status codes, never prints. */
#ifndef MRAG_RAG_BASE_H
#define MRAG_RAG_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Status codes shared by rag_ functions. Values only ever grow. */
typedef enum {
    RAG_OK = 0,
    RAG_ERR_IO = -1,
    RAG_ERR_FORMAT = -2,
    RAG_ERR_UNSUPPORTED = -3,
    RAG_ERR_NOMEM = -4,
    RAG_ERR_ARG = -5,
    RAG_ERR_LIMIT = -6,
    RAG_ERR_BLOCKED = -7,
    RAG_ERR_MISMATCH = -8,      /* index built by another embedding model (pipeline) */
    RAG_ERR_CHANGED = -9,       /* a file changed between the walk and the read */
    RAG_ERR_NOTFOUND = -10,     /* nothing stored / too little to work with (tune) */
} rag_status;

typedef struct llm_model llm_model;     /* llm/llm.h */
typedef struct idx_store idx_store;     /* index/index.h */
typedef struct idx_filter idx_filter;   /* index/index.h: an access-group filter */

/* Token counter: the number of tokens text[0..len) takes (no BOS), or < 0 on
 * error. The real one wraps llm_tokenize; tests may count words. */
typedef int (*rag_count_tokens_fn)(void *user, const char *text, size_t len);

/* Text sink for the streamed answer: return non-zero to stop. */
typedef int (*rag_emit_fn)(void *user, const char *text, size_t len);

#endif
