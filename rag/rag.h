/* rag.h — mrag's ingestion and query pipelines: the umbrella header of rag/.
 * Each subsystem has its own header; including this one gives them all.
 * Library code: returns status codes, keeps error messages, never prints.
 *
 *   rag/base.h      status codes, handles of llm/ and index/, shared callbacks
 *   rag/engine.h    the generation interface: local (llm/) and remote engines
 *   rag/ingest.h    walk, extract, chunk; the ingestion pipeline
 *   rag/retrieve.h  dense, BM25 and hybrid retrieval
 *   rag/access.h    access rules and caller groups
 *   rag/guard.h     guardrails and the audit log
 *   rag/answer.h    the prompt builder and the answer pipeline
 *   rag/evidence.h  evidence: the answering sentences, chosen without the model
 *   rag/wiki.h      the MediaWiki connector
 *   rag/remote.h    the remote engine (OpenAI-compatible server) */
#ifndef MRAG_RAG_H
#define MRAG_RAG_H

#include "rag/access.h"
#include "rag/answer.h"
#include "rag/base.h"
#include "rag/engine.h"
#include "rag/evidence.h"
#include "rag/guard.h"
#include "rag/ingest.h"
#include "rag/remote.h"
#include "rag/retrieve.h"
#include "rag/watch.h"
#include "rag/wiki.h"

#endif
