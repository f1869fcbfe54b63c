/* sampler.c — next-token sampling: repetition penalty, top-k, top-p, min-p,
 * temperature and a seeded draw, with llama.cpp's semantics and order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "llm/llm.h"

/* The history the repetition penalty can look back on is capped so a silly
 * repeat_last_n cannot allocate without bound. */
#define SAMPLER_MAX_HISTORY 65536

/* top-p pre-filter: candidates are binned by (max logit - logit) into
 * TOPP_BUCKETS bins of width TOPP_SPAN / TOPP_BUCKETS; the last bin takes
 * everything further away. Only the bin where p is crossed is sorted. */
#define TOPP_BUCKETS 256
#define TOPP_SPAN 32.0f

typedef struct {
    int32_t id;
    float logit;
    float e;            /* scratch: exp(logit - max) during top-p */
} sampler_cand;

struct llm_sampler {
    llm_sampler_params p;
    int n_vocab;
    sampler_cand *cand;         /* (n_vocab) working set, first n_cand valid */
    int n_cand;
    float *prob;                /* (n_vocab) probabilities of the last draw, aligned with cand */
    int32_t *hist;              /* (hist_cap) ring of accepted ids */
    int hist_cap, hist_n, hist_pos;
    uint32_t *stamp;            /* (n_vocab) dedup marks for the penalty pass */
    uint32_t stamp_gen;
    uint64_t seed_used;
    uint64_t rng[4];            /* xoshiro256** state */
};

llm_sampler_params llm_sampler_default_params(void) {
    llm_sampler_params p = {
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .seed = LLM_SEED_RANDOM,
    };
    return p;
}

/* ------------------------------------------------------------------ PRNG
 * splitmix64 expands the 64-bit seed into xoshiro256** state (the seeding
 * its authors recommend); xoshiro256** then gives the stream. */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Uniform double in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4]) {
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

static void rng_seed(llm_sampler *s) {
    uint64_t x = s->seed_used;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

/* ------------------------------------------------------------ lifecycle */

/* Contract (llm.h): all buffers for n_vocab are allocated here, once. */
llm_sampler *llm_sampler_new(const llm_sampler_params *p, int n_vocab) {
    if (n_vocab < 1) return NULL;
    llm_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = p ? *p : llm_sampler_default_params();
    s->n_vocab = n_vocab;
    s->hist_cap = s->p.repeat_last_n > 0 ? s->p.repeat_last_n : 0;
    if (s->hist_cap > SAMPLER_MAX_HISTORY) s->hist_cap = SAMPLER_MAX_HISTORY;
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->prob = malloc((size_t)n_vocab * sizeof *s->prob);
    s->stamp = calloc((size_t)n_vocab, sizeof *s->stamp);
    s->hist = malloc((size_t)(s->hist_cap > 0 ? s->hist_cap : 1) * sizeof *s->hist);
    if (!s->cand || !s->prob || !s->stamp || !s->hist) {
        llm_sampler_free(s);
        return NULL;
    }
    if (s->p.seed == LLM_SEED_RANDOM) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
        s->seed_used = splitmix64(&x);
    } else {
        s->seed_used = s->p.seed;
    }
    llm_sampler_reset(s);
    return s;
}

void llm_sampler_free(llm_sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s->prob);
    free(s->stamp);
    free(s->hist);
    free(s);
}

void llm_sampler_reset(llm_sampler *s) {
    if (!s) return;
    s->hist_n = 0;
    s->hist_pos = 0;
    s->n_cand = 0;
    rng_seed(s);
}

void llm_sampler_accept(llm_sampler *s, int32_t id) {
    if (!s || s->hist_cap == 0) return;
    s->hist[s->hist_pos] = id;
    s->hist_pos = (s->hist_pos + 1) % s->hist_cap;
    if (s->hist_n < s->hist_cap) s->hist_n++;
}

/* ------------------------------------------------------------- filters */

/* Candidate order: higher logit first, then the lower id (deterministic). */
static int cand_better(const sampler_cand *a, const sampler_cand *b) {
    if (a->logit != b->logit) return a->logit > b->logit;
    return a->id < b->id;
}

/* Divides positive logits and multiplies non-positive ones by the penalty,
 * once per distinct id among the last repeat_last_n accepted tokens (as
 * llama.cpp's penalties sampler does). cand must still be indexed by id. */
static void apply_repeat_penalty(llm_sampler *s) {
    float pen = s->p.repeat_penalty;
    if (s->hist_n == 0 || pen == 1.0f || !(pen > 0.0f)) return;
    if (++s->stamp_gen == 0) {  /* wrapped: clear the marks once */
        memset(s->stamp, 0, (size_t)s->n_vocab * sizeof *s->stamp);
        s->stamp_gen = 1;
    }
    for (int i = 0; i < s->hist_n; i++) {
        int32_t id = s->hist[i];
        if (id < 0 || id >= s->n_vocab || s->stamp[id] == s->stamp_gen) continue;
        s->stamp[id] = s->stamp_gen;
        float *l = &s->cand[id].logit;
        if (*l <= 0.0f) *l *= pen;
        else *l /= pen;
    }
}

static float max_logit(const sampler_cand *c, int n) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++)
        if (c[i].logit > m) m = c[i].logit;
    return m;
}

/* Sift-down for a heap whose root is the WORST candidate; heapsorting with
 * it leaves the array best first. No recursion, no allocation (qsort may
 * allocate, and this runs per token). */
static void cand_sift(sampler_cand *c, int n, int i) {
    for (;;) {
        int w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && cand_better(&c[w], &c[l])) w = l;
        if (r < n && cand_better(&c[w], &c[r])) w = r;
        if (w == i) return;
        sampler_cand t = c[i]; c[i] = c[w]; c[w] = t;
        i = w;
    }
}

static void cand_sort(sampler_cand *c, int n) {
    for (int i = n / 2 - 1; i >= 0; i--) cand_sift(c, n, i);
    for (int end = n - 1; end > 0; end--) {
        sampler_cand t = c[0]; c[0] = c[end]; c[end] = t;
        cand_sift(c, end, 0);
    }
}

/* Keeps the k best candidates (in no particular order): a heap of the k
 * best so far, rooted at the worst of them, over one pass. Most candidates
 * lose the first comparison with the root, so this is about one predictable
 * compare per vocabulary entry. */
static void filter_top_k(llm_sampler *s, int k) {
    if (k <= 0 || k >= s->n_cand) return;
    sampler_cand *c = s->cand;
    for (int i = k / 2 - 1; i >= 0; i--) cand_sift(c, k, i);
    for (int i = k; i < s->n_cand; i++) {
        if (c[i].logit < c[0].logit || !cand_better(&c[i], &c[0])) continue;
        sampler_cand t = c[0]; c[0] = c[i]; c[i] = t;
        cand_sift(c, k, 0);
    }
    s->n_cand = k;
}

static int topp_bin(float d) {
    int b = d < TOPP_SPAN ? (int)(d * (TOPP_BUCKETS / TOPP_SPAN)) : TOPP_BUCKETS - 1;
    return b < TOPP_BUCKETS - 1 ? b : TOPP_BUCKETS - 1;
}

/* Keeps the smallest best-first set whose probability (softmax of the
 * current logits, temperature not yet applied, as in llama.cpp) reaches p;
 * at least one candidate. Candidates are binned by distance to the maximum
 * logit; every bin before the one where the running mass crosses p is kept
 * whole, that boundary bin alone is sorted and cut, later bins are dropped.
 * Exact: a candidate of an earlier bin beats every one of a later bin. */
static void filter_top_p(llm_sampler *s, float p) {
    if (!(p < 1.0f) || s->n_cand <= 1) return;
    sampler_cand *c = s->cand;
    const int n = s->n_cand;
    const float m = max_logit(c, n);
    double mass[TOPP_BUCKETS] = {0};
    double z = 0.0;
    for (int i = 0; i < n; i++) {
        float e = expf(c[i].logit - m);
        c[i].e = e;
        mass[topp_bin(m - c[i].logit)] += e;
        z += e;
    }
    const double target = (double)p * z;
    int bin = TOPP_BUCKETS - 1;
    double before = 0.0;            /* mass of the bins before `bin` */
    for (int b = 0; b < TOPP_BUCKETS; b++) {
        if (before + mass[b] >= target) { bin = b; break; }
        before += mass[b];
    }
    /* front: bins < bin; then the boundary bin's candidates */
    int kept = 0;
    for (int i = 0; i < n; i++)
        if (topp_bin(m - c[i].logit) < bin) {
            sampler_cand t = c[kept]; c[kept] = c[i]; c[i] = t;
            kept++;
        }
    int nb = kept;
    for (int i = kept; i < n; i++)
        if (topp_bin(m - c[i].logit) == bin) {
            sampler_cand t = c[nb]; c[nb] = c[i]; c[i] = t;
            nb++;
        }
    cand_sort(c + kept, nb - kept);
    double acc = before;
    int keep = nb;
    for (int i = kept; i < nb; i++) {
        acc += c[i].e;
        if (acc >= target) { keep = i + 1; break; }
    }
    s->n_cand = keep > 0 ? keep : 1;
}

/* Keeps candidates whose probability is at least min_p times the largest,
 * i.e. logit >= max + ln(min_p). Order is preserved. */
static void filter_min_p(llm_sampler *s, float min_p) {
    if (!(min_p > 0.0f) || s->n_cand <= 1) return;
    sampler_cand *c = s->cand;
    float m = max_logit(c, s->n_cand);
    float thr = m + logf(min_p);
    int kept = 0;
    for (int i = 0; i < s->n_cand; i++)
        if (c[i].logit >= thr || c[i].logit == m) c[kept++] = c[i];
    s->n_cand = kept;
}

/* Contract (llm.h): copies logits into the candidate buffer (NaN becomes
 * -inf), runs penalty -> [argmax | top-k -> top-p -> min-p -> temperature
 * -> draw] and returns the id; the kept candidates and their final
 * probabilities stay in s for llm_sampler_last_probs. Never allocates. */
int32_t llm_sampler_sample(llm_sampler *s, const float *logits) {
    if (!s || !logits) return -1;
    const int nv = s->n_vocab;
    for (int i = 0; i < nv; i++) {
        float l = logits[i];
        s->cand[i].id = i;
        s->cand[i].logit = isnan(l) ? -INFINITY : l;
    }
    s->n_cand = nv;
    apply_repeat_penalty(s);

    if (s->p.temperature <= 0.0f || s->p.top_k == 1) {
        /* argmax; a strict > keeps the lowest id among equal maxima */
        int best = 0;
        float bv = s->cand[0].logit;    /* in a register: no load-after-cmov chain */
        for (int i = 1; i < nv; i++) {
            float v = s->cand[i].logit;
            if (v > bv) {
                bv = v;
                best = i;
            }
        }
        s->cand[0] = s->cand[best];
        s->n_cand = 1;
        s->prob[0] = 1.0f;
        return s->cand[0].id;
    }

    filter_top_k(s, s->p.top_k);
    filter_top_p(s, s->p.top_p);
    filter_min_p(s, s->p.min_p);

    /* temperature, softmax, draw */
    const sampler_cand *c = s->cand;
    const int n = s->n_cand;
    const float inv_t = 1.0f / s->p.temperature;
    float m = max_logit(c, n);
    double z = 0.0;
    for (int i = 0; i < n; i++) {
        float e = expf((c[i].logit - m) * inv_t);
        s->prob[i] = e;
        z += e;
    }
    if (!(z > 0.0)) {   /* every logit -inf: fall back to the first */
        s->prob[0] = 1.0f;
        for (int i = 1; i < n; i++) s->prob[i] = 0.0f;
        return c[0].id;
    }
    double u = rng_uniform(s->rng) * z;
    double acc = 0.0;
    int pick = -1;
    for (int i = 0; i < n; i++) {
        acc += s->prob[i];
        if (pick < 0 && u < acc) pick = i;
        s->prob[i] = (float)(s->prob[i] / z);
    }
    if (pick < 0) {     /* u landed on rounding at the very end */
        pick = n - 1;
        while (pick > 0 && s->prob[pick] == 0.0f) pick--;
    }
    return c[pick].id;
}

/* Heap helpers over the caller's (ids, probs) arrays: root = the worst
 * (lower probability, then higher id). */
static bool pair_better(float pa, int32_t ia, float pb, int32_t ib) {
    return pa > pb || (pa == pb && ia < ib);
}

static void pair_sift(int32_t *ids, float *pr, int n, int i) {
    for (;;) {
        int w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && pair_better(pr[w], ids[w], pr[l], ids[l])) w = l;
        if (r < n && pair_better(pr[w], ids[w], pr[r], ids[r])) w = r;
        if (w == i) return;
        int32_t ti = ids[i]; ids[i] = ids[w]; ids[w] = ti;
        float tp = pr[i]; pr[i] = pr[w]; pr[w] = tp;
        i = w;
    }
}

/* Contract (llm.h): the best min(n, cap) candidates of the last draw, most
 * likely first (ties: lower id); returns n. */
int llm_sampler_last_probs(const llm_sampler *s, int32_t *ids, float *probs, int cap) {
    if (!s) return 0;
    const int n = s->n_cand;
    if (cap <= 0 || !ids || !probs) return n;
    /* keep the best min(n, cap) in a heap built in the caller's arrays,
     * then heapsort them best first: O(n log cap), no allocation */
    int k = n < cap ? n : cap;
    for (int i = 0; i < k; i++) {
        ids[i] = s->cand[i].id;
        probs[i] = s->prob[i];
    }
    for (int i = k / 2 - 1; i >= 0; i--) pair_sift(ids, probs, k, i);
    for (int i = k; i < n; i++)
        if (pair_better(s->prob[i], s->cand[i].id, probs[0], ids[0])) {
            ids[0] = s->cand[i].id;
            probs[0] = s->prob[i];
            pair_sift(ids, probs, k, 0);
        }
    for (int end = k - 1; end > 0; end--) {
        int32_t ti = ids[0]; ids[0] = ids[end]; ids[end] = ti;
        float tp = probs[0]; probs[0] = probs[end]; probs[end] = tp;
        pair_sift(ids, probs, end, 0);
    }
    return n;
}
