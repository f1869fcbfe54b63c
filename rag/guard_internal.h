/* guard_internal.h — guardrail internals shared by rag/guard*.c (not public). */
#ifndef MRAG_GUARD_INTERNAL_H
#define MRAG_GUARD_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>

#include "rag/rag.h"

/* Limits on rule files: they are user input. */
#define GUARD_MAX_FILE_BYTES (4u << 20)   /* one rule file */
#define GUARD_MAX_VALUE (64u << 10)       /* one value (pattern, terms...) */
#define GUARD_MAX_ID 128
#define GUARD_MAX_RULES 4096
#define GUARD_MAX_TERMS 10000
#define GUARD_MAX_TRIGGER_GROUPS 8  /* groups joined by '+' in one trigger item */

typedef enum {
    GUARD_V_NONE = 0,
    GUARD_V_LUHN,
    GUARD_V_IBAN,
    GUARD_V_STEUER_ID,
    GUARD_V_IPV4,
    GUARD_V_IPV6,
    GUARD_V_PHONE,
    GUARD_V_EMAIL,
    GUARD_V_CITATION,
} guard_validator;

enum {
    GUARD_F_STAGE = 1, GUARD_F_ACTION = 2, GUARD_F_PATTERN = 4, GUARD_F_FLAGS = 8,
    GUARD_F_MESSAGE = 16, GUARD_F_REPLACEMENT = 32, GUARD_F_VALIDATOR = 64, GUARD_F_ENABLED = 128,
    GUARD_F_SKELETON = 256, GUARD_F_MODEL = 512, GUARD_F_THRESHOLD = 1024, GUARD_F_TRIGGER = 2048,
    GUARD_F_UNRELATED = 4096,
};

typedef struct {
    char *id;
    unsigned stages;              /* 1 << rag_guard_stage */
    rag_guard_action action;
    char *pattern;                /* PCRE2 source (built from terms when given) */
    uint32_t options;             /* PCRE2 compile options from flags */
    char *message;
    char *replacement;            /* NULL: "[REDACTED:<ID>]" */
    guard_validator validator;
    bool enabled;
    bool skeleton;                /* also run on the skeleton and decoded views
                                     (default: rules without a validator) */
    bool is_default;              /* created while loading the default rules */
    char *triggers;               /* "trigger:" items, '\n'-separated (an item:
                                     groups joined by '+' of prefixes joined by
                                     '|'); NULL: the rule always runs */
    char *model_path;             /* "model:" resolved against the rule file's folder */
    struct guard_model *model;    /* loaded by rag_guard_compile */
    float threshold[3];           /* per stage (model rules); default 0.5 */
    bool unrelated;               /* model rules, context stage: a segment fires
                                     only when unrelated to the rest of the
                                     passage and to the question ("unrelated:") */
    char *origin;                 /* "file:line" of the rule's start */
    char *pattern_origin;         /* "file:line" of its pattern/terms */
    unsigned set;                 /* GUARD_F_* fields given (parse time) */
    pcre2_code *code;
    bool ascii_ok;                /* the pattern matches the same without PCRE2_UCP
                                     on pure-ASCII subjects (rag_guard_compile) */
    pcre2_code *code_ascii;       /* that variant, compiled on first use (atomic) */
} guard_rule;

struct rag_guard {
    rag_guard_params params;
    guard_rule *rules;
    size_t n_rules, cap_rules;
    bool compiled;
    pcre2_match_context *mctx;
    char err[640];
    bool loading_defaults;        /* rules created now are default rules */
    /* trigger prefilter: (hash of a word prefix, item, group bit), sorted
     * by hash; an item (of one rule) holds when all its group bits are set */
    struct guard_trigger { uint64_t h; uint32_t item, bit; } *trig;
    size_t n_trig;
    struct guard_trigger_item { uint32_t rule, full; } *trig_items;
    size_t n_trig_items;
    uint64_t trig_bloom[1024];    /* bit (h >> 48) set for every trigger hash h */
    char **warnings;              /* what user rules changed about default rules */
    size_t n_warnings;
    /* audit sink */
    pthread_mutex_t audit_mu;
    FILE *audit;
    bool audit_owned;
};

/* Validator lookup by name; GUARD_V_NONE with *ok=false when unknown. */
guard_validator rag_guard_validator_by_name(const char *name, size_t len, bool *ok);
const char *rag_guard_validator_name(guard_validator v);
/* Runs validator v on a candidate s[0..len). May shorten the accepted span
 * (*acc_len <= len), e.g. an IBAN followed by another group of digits.
 * n_sources is used by the citation validator. */
bool rag_guard_run_validator(guard_validator v, const char *s, size_t len, int n_sources, size_t *acc_len);

#define GUARD_MAX_WARNINGS 64
/* Records a warning (printf format); silently drops past GUARD_MAX_WARNINGS. */
void rag_guard_warn(rag_guard *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Rule file parsing (rag/guard_rules.c): parses text into g's rule list. */
int rag_guard_parse_rules(rag_guard *g, const char *name, const char *text, size_t len);
void rag_guard_rule_clear(guard_rule *r);

#endif
