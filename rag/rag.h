/* rag.h — mrag's ingestion and query pipelines: the one public header of rag/.
 * Library code: returns status codes, keeps error messages, never prints. */
#ifndef MRAG_RAG_H
#define MRAG_RAG_H

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
} rag_status;

/* ============================================================ ingestion
 * (sources, extractors, chunker — owned by the ingestion engineer) */

/* ============================================================ guardrails
 * (rules, validators, audit log — owned by the guardrails engineer) */

#endif
