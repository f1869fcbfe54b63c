/* access.h — access control: rules mapping documents to access groups, and
 * caller groups. See docs/access.md.
 * A rules file has one rule per line, first match wins:
 *   default GROUPS | path GLOB GROUPS | namespace N GROUPS |
 *   category NAME GROUPS | prefix "TITLE PREFIX" GROUPS
 * GROUPS is comma-separated; the name `public` means no groups. A rag_access
 * is read-only after loading: any number of threads may use it. */
#ifndef MRAG_RAG_ACCESS_H
#define MRAG_RAG_ACCESS_H

#include "rag/base.h"

typedef struct rag_access rag_access;

/* Loads a rules file. On failure *out is NULL and err names file:line and the
 * problem. *out owned, free with rag_access_free. */
int rag_access_load(const char *path, rag_access **out, char *err, size_t errlen);
/* The same from memory; name is used in messages. */
int rag_access_parse(const char *name, const char *text, size_t len, rag_access **out,
                     char *err, size_t errlen);
void rag_access_free(rag_access *a);            /* NULL is a no-op */
/* SHA-256 hex of the rules' source text (to notice a changed file). Borrowed. */
const char *rag_access_hash(const rag_access *a);

/* Groups of a file by its path relative to the ingest root ('/'-separated):
 * borrowed comma-separated list, "" = public. */
const char *rag_access_for_path(const rag_access *a, const char *rel);
/* Groups of a wiki page: namespace number, title without the namespace
 * prefix, and its categories (without "Category:"). Borrowed, "" = public. */
const char *rag_access_for_page(const rag_access *a, int ns, const char *title,
                                const char *const *categories, size_t n_categories);

/* A group no caller can hold ('!' is not allowed in caller groups): a
 * document with it is visible to the index owner and `*` keys only. */
#define RAG_ACCESS_NOBODY "!denied"
/* The groups of a document that must satisfy both lists a and b (as
 * rag_access_for_path gives them, "" = public): a caller passes when they
 * hold a group of a AND a group of b. "" with x is x; two non-empty lists
 * give the names they share (the widest single list that lets no caller
 * through who fails one of them), RAG_ACCESS_NOBODY when they share none.
 * Owned (free()); NULL when memory runs out. */
char *rag_access_groups_and(const char *a, const char *b);

/* Caller groups: parses "a,b" into f (groups owned by f,
 * free with rag_groups_free). "" or "public" give a filter with no groups:
 * public documents only. "*" (all documents) is RAG_ERR_ARG: pass no
 * filter instead. Names as in the rules file; RAG_ERR_FORMAT otherwise. */
int rag_groups_parse(const char *csv, idx_filter *f);
void rag_groups_free(idx_filter *f);   /* zeroes it; NULL is a no-op */

#endif
