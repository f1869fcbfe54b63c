/* llm_oracle.h — shared by the tests that compare the engine with llama.cpp
 * (tests/oracle): oracle calls, log-softmax comparison with near-tie
 * handling, mkmodel Mistral-shaped models and the per-type case runner. */
#ifndef MRAG_TESTS_LLM_ORACLE_H
#define MRAG_TESTS_LLM_ORACLE_H

#include <stdbool.h>
#include <stdint.h>

#include <cJSON.h>

#include "llm/llm.h"
#include "llm/model.h"

/* Oracle output of `args` as JSON (the case fails when it is not). */
cJSON *ot_oracle_json(const char *args);
/* A JSON array of ints into ids (cap entries); returns the count. */
int ot_json_ids(const cJSON *arr, int32_t *ids, int cap);
/* "1,2,3" (static buffer). */
const char *ot_ids_csv(const int32_t *ids, int n);
void ot_log_softmax(const float *logits, int n, double *lp);
int ot_argmax(const float *x, int n);
int32_t ot_eos_of(const llm_model *m);
llm_model *ot_load_swa(const char *path, int swa);
llm_model *ot_load(const char *path);
/* Deterministic pseudo-random ids in [lo, hi), BOS first. */
void ot_rand_ids(int32_t *ids, int n, int lo, int hi, uint32_t seed);
llm_context *ot_new_ctx_kv(const llm_model *m, int n_ctx, int n_batch, bool kv_f32, bool all_logits);
double ot_max_abs_diff(const float *a, const float *b, int n);
/* Logits of every position, fed n_batch tokens at a time (malloc'd n x n_vocab). */
float *ot_logits_by_chunks(const llm_model *m, const int32_t *ids, int n, int n_ctx, int n_batch, bool kv_f32);
llm_context *ot_new_ctx(const llm_model *m, int n_ctx, int threads, bool all_logits);
llm_context *ot_new_ctx_lora(const llm_model *m, int n_ctx, int threads, bool all_logits, llm_lora *const *loras,
                             const float *scales, int n_lora);
int ot_greedy(llm_context *c, const int32_t *prompt, int np, int n, int32_t eos, int32_t *out);

/* LoRA adapters for a comparison: files and scales. */
typedef struct {
    int n;
    const char *path[2];
    float scale[2];
} ot_adapters;
/* Loads ad's adapters for m into loras/scales; returns how many (0 for NULL). */
int ot_load_adapters(const llm_model *m, const ot_adapters *ad, llm_lora **loras, float *scales);

/* Compares all-position log-softmax with the oracle's per-position top-K
 * and the full last-position vector. The
 * result: */
typedef struct {
    double max_diff;        /* max |Δ log-prob| over top-K ids of every position and the full last row */
    double max_diff_last;   /* full last row only */
    double max_rel;         /* the same for log-prob minus the top-1 log-prob (no normalizer) */
    int top1_mismatch;
    /* for each top-1 disagreement: the two engines' gaps between the two
     * tokens added up (ours: lp[our top] - lp[its top]; llama.cpp's: the
     * other way round), or +inf when our top-1 is not in its top-K. A sum
     * within the type's tolerance is a near-tie the rounding noise decides. */
    double tie_gap[8];
    int tie_pos[8];
    int n_pos;
} ot_eval_cmp;

/* Our log-softmax of ids (all positions) against the oracle's top-8 of every
 * position and its full last row, the adapters applied on both sides. */
ot_eval_cmp ot_compare_eval_am(const char *model_path, int swa, const ot_adapters *ad, const int32_t *ids, int n,
                               int threads, int32_t *oracle_argmax);
ot_eval_cmp ot_compare_eval(const char *model_path, int swa, const int32_t *ids, int n, int threads);

/* The lighthouse prose the type cases use as a prompt. */
extern const char *ot_prose;
/* Writes a Mistral-shaped model (Mistral vocabulary) with mkmodel. */
const char *ot_make_model(const char *name, const char *opts);
int ot_prose_ids(const char *model_path, int32_t *ids, int cap);

typedef struct {
    const char *name;
    const char *opts;
    double tol;         /* bound on max |d (log-prob - top-1 log-prob)| (top-8 at every position + full last row) */
    bool greedy32;      /* the 32-token greedy continuation must be identical */
    bool oracle_greedy; /* also ask the oracle's greedy mode (slow) */
    const char *lora[2];        /* mkmodel --lora-of arguments of up to 2 adapters (NULL: none) */
    float lora_scale[2];
    double lora_min_effect;     /* > 0: the adapters must move log-probs at least this much */
} ot_type_case;

/* At most this many near-tie top-1 flips per model (see ot_run_type_case). */
#define OT_MAX_NEAR_TIES 3
/* One weight type (and adapters) against llama.cpp: greedy 32, one eval. */
void ot_run_type_case(const ot_type_case *tc);

#endif
