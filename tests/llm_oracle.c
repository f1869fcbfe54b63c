/* llm_oracle.c — see llm_oracle.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llm/gguf.h"
#include "tests/llm_oracle.h"
#include "tests/test.h"


cJSON *ot_oracle_json(const char *args) {
    char *out = test_oracle(args);
    cJSON *j = cJSON_Parse(out);
    free(out);
    REQUIRE(j != NULL, "oracle output is not JSON");
    return j;
}

/* Reads a JSON array of ints into ids (cap entries); returns the count. */
int ot_json_ids(const cJSON *arr, int32_t *ids, int cap) {
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (n < cap) ids[n] = (int32_t)e->valuedouble;
        n++;
    }
    return n;
}

const char *ot_ids_csv(const int32_t *ids, int n) {
    static char buf[16384];
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < n && o + 16 < sizeof buf; i++) o += (size_t)snprintf(buf + o, sizeof buf - o, i ? ",%d" : "%d", ids[i]);
    return buf;
}

/* log-softmax of n logits into lp (double accumulation). */
void ot_log_softmax(const float *logits, int n, double *lp) {
    double mx = logits[0];
    for (int i = 1; i < n; i++) if (logits[i] > mx) mx = logits[i];
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)logits[i] - mx);
    double ls = log(s);
    for (int i = 0; i < n; i++) lp[i] = (double)logits[i] - mx - ls;
}

int ot_argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

/* EOS id from the file (the tokenizer's accessor may not be linked yet). */
int32_t ot_eos_of(const llm_model *m) {
    uint32_t v;
    return llm_gguf_get_u32(m->gguf, "tokenizer.ggml.eos_token_id", &v) ? (int32_t)v : -1;
}

llm_model *ot_load_swa(const char *path, int swa) {
    llm_model *m = NULL;
    char err[512];
    llm_model_params mp = llm_model_default_params();
    mp.swa_window = swa;
    int rc = llm_model_load(path, &mp, &m, err, sizeof err);
    REQUIRE(rc == LLM_OK, "load %s: %s", path, err);
    return m;
}

llm_model *ot_load(const char *path) {
    return ot_load_swa(path, -1);
}

/* Deterministic pseudo-random token ids in [lo, hi) (first = BOS 1). */
void ot_rand_ids(int32_t *ids, int n, int lo, int hi, uint32_t seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        ids[i] = i == 0 ? 1 : lo + (int32_t)((seed >> 8) % (uint32_t)(hi - lo));
    }
}

llm_context *ot_new_ctx_kv(const llm_model *m, int n_ctx, int n_batch, bool kv_f32, bool all_logits) {
    llm_context *c = NULL;
    char err[512];
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.n_threads = 2;
    cp.kv_f32 = kv_f32;
    cp.all_logits = all_logits;
    int rc = llm_context_new(m, &cp, &c, err, sizeof err);
    REQUIRE(rc == LLM_OK, "context: %s", err);
    return c;
}

/* max |a - b| over n floats */
double ot_max_abs_diff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
    return d;
}

/* Logits of every position of ids, fed n_batch tokens at a time (n_batch 1 =
 * one-token decode). Returns malloc'd n x n_vocab floats. */
float *ot_logits_by_chunks(const llm_model *m, const int32_t *ids, int n, int n_ctx, int n_batch, bool kv_f32) {
    int nv = m->hp.n_vocab;
    float *all = malloc(sizeof(float) * (size_t)n * nv);
    REQUIRE(all);
    llm_context *c = ot_new_ctx_kv(m, n_ctx, n_batch, kv_f32, true);
    for (int off = 0; off < n; off += n_batch) {
        int nb = n - off < n_batch ? n - off : n_batch;
        REQUIRE(llm_decode(c, ids + off, nb) == LLM_OK, "decode: %s", llm_context_error(c));
        for (int i = 0; i < nb; i++) {
            const float *lg = llm_get_logits(c, i);
            REQUIRE(lg);
            memcpy(all + (size_t)(off + i) * nv, lg, sizeof(float) * nv);
        }
    }
    CHECK_EQ_INT(llm_context_n_past(c), n);
    llm_context_free(c);
    return all;
}

llm_context *ot_new_ctx_lora(const llm_model *m, int n_ctx, int threads, bool all_logits, llm_lora *const *loras,
                             const float *scales, int n_lora) {
    llm_context *c = NULL;
    char err[512];
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = threads;
    cp.all_logits = all_logits;
    cp.loras = loras;
    cp.lora_scales = scales;
    cp.n_lora = n_lora;
    int rc = llm_context_new(m, &cp, &c, err, sizeof err);
    REQUIRE(rc == LLM_OK, "context: %s", err);
    return c;
}

llm_context *ot_new_ctx(const llm_model *m, int n_ctx, int threads, bool all_logits) {
    return ot_new_ctx_lora(m, n_ctx, threads, all_logits, NULL, NULL, 0);
}

int ot_load_adapters(const llm_model *m, const ot_adapters *ad, llm_lora **loras, float *scales) {
    int n = ad ? ad->n : 0;
    for (int k = 0; k < n; k++) {
        char err[512];
        REQUIRE(llm_lora_load(m, ad->path[k], &loras[k], err, sizeof err) == LLM_OK, "%s", err);
        scales[k] = ad->scale[k];
    }
    return n;
}

/* Greedy continuation of n tokens by the argmax of our logits, stopping after
 * EOS like the oracle. Returns the count. */
int ot_greedy(llm_context *c, const int32_t *prompt, int np, int n, int32_t eos, int32_t *out) {
    REQUIRE(llm_decode(c, prompt, np) == LLM_OK, "prefill: %s", llm_context_error(c));
    int k = 0;
    while (k < n) {
        const float *lg = llm_get_logits(c, -1);
        REQUIRE(lg != NULL);
        int32_t t = ot_argmax(lg, c->m->hp.n_vocab);
        out[k++] = t;
        if (t == eos || k >= n) break;
        REQUIRE(llm_decode(c, &t, 1) == LLM_OK, "decode: %s", llm_context_error(c));
    }
    return k;
}


ot_eval_cmp ot_compare_eval_am(const char *model_path, int swa, const ot_adapters *ad, const int32_t *ids, int n,
                               int threads, int32_t *oracle_argmax) {
    ot_eval_cmp r = {.n_pos = n};
    char args[20000];
    size_t o = (size_t)snprintf(args, sizeof args, "eval --model %s --ids %s --top 8 --full last --threads 2 --ctx %d",
                                test_shq(model_path), ot_ids_csv(ids, n), n + 16);
    for (int k = 0; ad && k < ad->n && o < sizeof args; k++)
        o += (size_t)snprintf(args + o, sizeof args - o, " --lora %s:%.9g", test_shq(ad->path[k]), (double)ad->scale[k]);
    cJSON *j = ot_oracle_json(args);
    llm_model *m = ot_load_swa(model_path, swa);
    llm_lora *loras[2] = {NULL, NULL};
    float scales[2];
    int nl = ot_load_adapters(m, ad, loras, scales);
    llm_context *c = ot_new_ctx_lora(m, n + 16, threads, true, loras, scales, nl);
    REQUIRE(llm_decode(c, ids, n) == LLM_OK, "decode: %s", llm_context_error(c));
    int nv = m->hp.n_vocab;
    double *lp = malloc(sizeof(double) * nv);
    REQUIRE(lp);
    const cJSON *pos = cJSON_GetObjectItem(j, "positions");
    REQUIRE(cJSON_GetArraySize(pos) == n, "oracle gave %d positions", cJSON_GetArraySize(pos));
    for (int i = 0; i < n; i++) {
        const float *lg = llm_get_logits(c, i);
        REQUIRE(lg);
        ot_log_softmax(lg, nv, lp);
        const cJSON *p = cJSON_GetArrayItem(pos, i);
        int am = cJSON_GetObjectItem(p, "argmax")->valueint;
        if (oracle_argmax) oracle_argmax[i] = am;
        const cJSON *e;
        double pd = 0;
        const cJSON *top = cJSON_GetObjectItem(p, "top");
        int ours = ot_argmax(lg, nv);
        if (ours != am) {
            double o_top = cJSON_GetArrayItem(cJSON_GetArrayItem(top, 0), 1)->valuedouble, gap = INFINITY;
            cJSON_ArrayForEach(e, top)
                if (cJSON_GetArrayItem(e, 0)->valueint == ours)
                    gap = (lp[ours] - lp[am]) + (o_top - cJSON_GetArrayItem(e, 1)->valuedouble);
            if (r.top1_mismatch < 8) {
                r.tie_gap[r.top1_mismatch] = gap;
                r.tie_pos[r.top1_mismatch] = i;
            }
            r.top1_mismatch++;
            printf("  # pos %d: top-1 %d vs oracle %d (ours lp %.6f / %.6f), gaps added up %.4f\n", i, ours, am,
                   lp[ours], lp[am], gap);
        }
        double o_top = cJSON_GetArrayItem(cJSON_GetArrayItem(top, 0), 1)->valuedouble;
        double u_top = lp[cJSON_GetArrayItem(cJSON_GetArrayItem(top, 0), 0)->valueint];
        cJSON_ArrayForEach(e, top) {
            int id = cJSON_GetArrayItem(e, 0)->valueint;
            double d = fabs(lp[id] - cJSON_GetArrayItem(e, 1)->valuedouble);
            double dr = fabs((lp[id] - u_top) - (cJSON_GetArrayItem(e, 1)->valuedouble - o_top));
            if (dr > r.max_rel) r.max_rel = dr;
            if (getenv("MRAG_TEST_VERBOSE") && atoi(getenv("MRAG_TEST_VERBOSE")) == i)
                printf("  #   id %d ours %.7f oracle %.7f\n", id, lp[id], cJSON_GetArrayItem(e, 1)->valuedouble);
            if (d > pd) pd = d;
        }
        if (getenv("MRAG_TEST_VERBOSE")) printf("  # pos %d: max |d logprob| %.3g\n", i, pd);
        if (pd > r.max_diff) r.max_diff = pd;
    }
    char key[16];
    snprintf(key, sizeof key, "%d", n - 1);
    const cJSON *full = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "full"), key);
    REQUIRE(cJSON_GetArraySize(full) == nv, "full row has %d entries, n_vocab %d", cJSON_GetArraySize(full), nv);
    ot_log_softmax(llm_get_logits(c, n - 1), nv, lp);
    int am = ot_argmax(llm_get_logits(c, n - 1), nv);
    const cJSON *oam = cJSON_GetArrayItem(full, am);
    for (int v = 0; v < nv; v++) {
        const cJSON *e = cJSON_GetArrayItem(full, v);
        if (!cJSON_IsNumber(e) || !cJSON_IsNumber(oam)) continue;   /* -inf comes back as null */
        double d = fabs(lp[v] - e->valuedouble);
        if (d > r.max_diff_last) r.max_diff_last = d;
        double dr = fabs((lp[v] - lp[am]) - (e->valuedouble - oam->valuedouble));
        if (dr > r.max_rel) r.max_rel = dr;
    }
    if (r.max_diff_last > r.max_diff) r.max_diff = r.max_diff_last;
    free(lp);
    llm_context_free(c);
    for (int k = 0; k < nl; k++) llm_lora_free(loras[k]);
    llm_model_free(m);
    cJSON_Delete(j);
    return r;
}

ot_eval_cmp ot_compare_eval(const char *model_path, int swa, const int32_t *ids, int n, int threads) {
    return ot_compare_eval_am(model_path, swa, NULL, ids, n, threads, NULL);
}

/* ------------------------------------------------- mkmodel Mistral shapes */

const char *ot_prose =
    "The old lighthouse keeper climbed the spiral stairs every evening, counting each of the one hundred "
    "and twelve steps. Ships passed in the night, their captains trusting the beam that swept across the "
    "dark water. In the morning he wrote the weather in a leather book: wind from the north-east, "
    "visibility four miles, a fishing boat named Marguerite returning with a full hold.";

/* Writes a Mistral-shaped model with mkmodel into the test folder. */
const char *ot_make_model(const char *name, const char *opts) {
    static char path[4][512];
    static int k;
    char *out = path[k++ & 3];
    snprintf(out, sizeof path[0], "%s/%s.gguf", test_tmpdir(), name);
    const char *vocab = test_require_shared("models/mistral-v0.1-vocab-derived.gguf");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/mkmodel --vocab-from %s --rope-theta 1e6 --ctx 4096 %s --out %s 2>&1",
             test_build_dir(), test_shq(vocab), opts, test_shq(out));
    int st = 0;
    char *o = test_run_capture(cmd, &st);
    REQUIRE(st == 0, "mkmodel failed (%d): %s\n%s", st, cmd, o ? o : "");
    free(o);
    return out;
}

/* Our tokenization of the prose (BOS first). */
int ot_prose_ids(const char *model_path, int32_t *ids, int cap) {
    llm_model_params mp = llm_model_default_params();
    mp.vocab_only = true;
    llm_model *m = NULL;
    char err[512];
    REQUIRE(llm_model_load(model_path, &mp, &m, err, sizeof err) == LLM_OK, "%s", err);
    size_t n = 0;
    REQUIRE(llm_tokenize(m, ot_prose, strlen(ot_prose), true, false, ids, (size_t)cap, &n) == LLM_OK);
    llm_model_free(m);
    REQUIRE(n >= 64, "prompt has only %zu tokens", n);
    return (int)n;
}


/* One weight type: our greedy continuation of 32 tokens, then one oracle
 * eval over prompt + continuation. Top-1 must agree at every position, and
 * llama.cpp's argmax after prompt + our first k tokens must be our token
 * k: by induction that is llama.cpp's own greedy continuation (checked
 * directly against the oracle's greedy mode for f32_hd64). */
void ot_run_type_case(const ot_type_case *tc) {
    const char *path = ot_make_model(tc->name, tc->opts);
    /* adapters: mkmodel --lora-of the model */
    static char lpath[2][512];
    ot_adapters ad = {0};
    for (int k = 0; k < 2 && tc->lora[k]; k++) {
        snprintf(lpath[k], sizeof lpath[k], "%s/%s.lora%d.gguf", test_tmpdir(), tc->name, k);
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "%s/mkmodel --lora-of %s %s --out %s 2>&1", test_build_dir(), test_shq(path),
                 tc->lora[k], test_shq(lpath[k]));
        int st = 0;
        char *o = test_run_capture(cmd, &st);
        REQUIRE(st == 0, "mkmodel failed (%d): %s\n%s", st, cmd, o ? o : "");
        free(o);
        ad.path[k] = lpath[k];
        ad.scale[k] = tc->lora_scale[k];
        ad.n = k + 1;
    }
    int32_t ids[256], gen[32], oam[256];
    int n = ot_prose_ids(path, ids, 200);
    llm_model *m = ot_load(path);
    llm_lora *loras[2] = {NULL, NULL};
    float scales[2];
    int nl = ot_load_adapters(m, &ad, loras, scales);
    llm_context *c = ot_new_ctx_lora(m, 512, 2, false, loras, scales, nl);
    int ng = ot_greedy(c, ids, n, 32, ot_eos_of(m), gen);
    llm_context_free(c);
    if (nl && tc->lora_min_effect > 0) {
        /* the adapters must matter: the last prompt position's log-probs
         * without them differ by at least lora_min_effect */
        llm_context *c0 = ot_new_ctx(m, 512, 2, false), *c1 = ot_new_ctx_lora(m, 512, 2, false, loras, scales, nl);
        REQUIRE(llm_decode(c0, ids, n) == LLM_OK && llm_decode(c1, ids, n) == LLM_OK);
        int nv = m->hp.n_vocab;
        double *a = malloc(sizeof(double) * nv), *b = malloc(sizeof(double) * nv), d = 0;
        REQUIRE(a && b);
        ot_log_softmax(llm_get_logits(c0, -1), nv, a);
        ot_log_softmax(llm_get_logits(c1, -1), nv, b);
        for (int v = 0; v < nv; v++) if (a[v] > -8 && fabs(a[v] - b[v]) > d) d = fabs(a[v] - b[v]);
        printf("  # %s: the adapters move the last position's log-probs by up to %.3g\n", tc->name, d);
        CHECK(d >= tc->lora_min_effect, "%s: adapters changed log-probs by only %.3g", tc->name, d);
        free(a);
        free(b);
        llm_context_free(c0);
        llm_context_free(c1);
    }
    for (int k = 0; k < nl; k++) llm_lora_free(loras[k]);
    llm_model_free(m);
    memcpy(ids + n, gen, sizeof(int32_t) * (size_t)(ng - 1));
    int nt = n + ng - 1;
    ot_eval_cmp r = ot_compare_eval_am(path, -1, &ad, ids, nt, 2, oam);
    int greedy_diff = -1;
    for (int k = 0; k < ng && greedy_diff < 0; k++)
        if (oam[n - 1 + k] != gen[k]) greedy_diff = k;
    char greedy_note[64];
    if (greedy_diff < 0) snprintf(greedy_note, sizeof greedy_note, "identical");
    else snprintf(greedy_note, sizeof greedy_note, "identical for %d steps, then a near-tie", greedy_diff);
    printf("  # %s: %d positions (%d prompt + %d generated), top-1 mismatches %d, greedy-%d %s, "
           "max |d logprob| %.3g (full last row %.3g), max |d (logprob - top-1 logprob)| %.3g, bound %.2g\n",
           tc->name, nt, n, ng - 1, r.top1_mismatch, ng, greedy_note, r.max_diff, r.max_diff_last, r.max_rel, tc->tol);
    CHECK_EQ_INT(ng, 32);
    CHECK(r.top1_mismatch <= OT_MAX_NEAR_TIES, "%s: top-1 differs at %d positions", tc->name, r.top1_mismatch);
    for (int k = 0; k < r.top1_mismatch && k < 8; k++)
        CHECK(r.tie_gap[k] <= tc->tol, "%s: position %d: top-1 differs and is no near-tie (gaps %.4g > %.3g)",
              tc->name, r.tie_pos[k], r.tie_gap[k], tc->tol);
    /* a greedy step can only differ where the top-1 does */
    if (greedy_diff >= 0) {
        bool at_tie = false;
        for (int k = 0; k < r.top1_mismatch && k < 8; k++) at_tie |= r.tie_pos[k] == n - 1 + greedy_diff;
        CHECK(at_tie, "%s: greedy step %d differs where the top-1 agrees", tc->name, greedy_diff);
    }
    if (tc->greedy32) CHECK(greedy_diff < 0, "%s: greedy continuation differs at step %d", tc->name, greedy_diff);
    CHECK(r.max_rel <= tc->tol, "%s: %.3g > %.3g", tc->name, r.max_rel, tc->tol);
    /* raw log-probs carry the oracle's float32 softmax normalizer error on top */
    CHECK(r.max_diff <= tc->tol + 5e-4, "%s: raw %.3g", tc->name, r.max_diff);
    if (!tc->oracle_greedy) return;
    int32_t ref[32];
    char args[16384];
    snprintf(args, sizeof args, "greedy --model %s --ids %s --n 32", test_shq(path), ot_ids_csv(ids, n));
    cJSON *j = ot_oracle_json(args);
    int nref = ot_json_ids(cJSON_GetObjectItem(j, "ids"), ref, 32);
    cJSON_Delete(j);
    CHECK_EQ_INT(nref, ng);
    CHECK(memcmp(gen, ref, sizeof(int32_t) * (size_t)(ng < nref ? ng : nref)) == 0,
          "%s: oracle greedy differs", tc->name);
}

