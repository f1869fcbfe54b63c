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
 * everything further away. Only the bins needed to reach p are sorted. */
#define TOPP_BUCKETS 256
#define TOPP_SPAN 32.0f

typedef struct {
    int32_t id;
    float logit;
} sampler_cand;

struct llm_sampler {
    llm_sampler_params p;
    int n_vocab;
    sampler_cand *cand;         /* (n_vocab) working set, first n_cand valid */
    int n_cand;
    bool sorted;                /* cand[0..n_cand) is sorted best first */
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

static int cand_cmp(const void *pa, const void *pb) {
    const sampler_cand *a = pa, *b = pb;
    if (cand_better(a, b)) return -1;
    if (cand_better(b, a)) return 1;
    return 0;
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

/* Rearranges cand[lo..hi) so that its k best come first (quickselect with a
 * median-of-three pivot); expected O(n). */
static void select_top(sampler_cand *c, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        /* order c[lo], c[mid], c[hi] so the median lands in c[mid] */
        if (cand_better(&c[mid], &c[lo])) { sampler_cand t = c[mid]; c[mid] = c[lo]; c[lo] = t; }
        if (cand_better(&c[hi], &c[lo])) { sampler_cand t = c[hi]; c[hi] = c[lo]; c[lo] = t; }
        if (cand_better(&c[hi], &c[mid])) { sampler_cand t = c[hi]; c[hi] = c[mid]; c[mid] = t; }
        sampler_cand pivot = c[mid];
        int i = lo, j = hi;
        while (i <= j) {
            while (cand_better(&c[i], &pivot)) i++;
            while (cand_better(&pivot, &c[j])) j--;
            if (i <= j) {
                sampler_cand t = c[i]; c[i] = c[j]; c[j] = t;
                i++;
                j--;
            }
        }
        /* now [lo..j] >= pivot >= [i..hi] */
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

static float max_logit(const sampler_cand *c, int n) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++)
        if (c[i].logit > m) m = c[i].logit;
    return m;
}

/* Keeps the k best candidates, sorted. */
static void filter_top_k(llm_sampler *s, int k) {
    if (k <= 0 || k >= s->n_cand) return;
    select_top(s->cand, s->n_cand, k);
    s->n_cand = k;
    qsort(s->cand, (size_t)k, sizeof *s->cand, cand_cmp);
    s->sorted = true;
}

/* Keeps the smallest best-first prefix whose probability (softmax of the
 * current logits, temperature not yet applied, as in llama.cpp) reaches p;
 * at least one candidate. Sorts only the candidates that can be in it. */
static void filter_top_p(llm_sampler *s, float p) {
    if (!(p < 1.0f) || s->n_cand <= 1) return;
    sampler_cand *c = s->cand;
    int n = s->n_cand;
    float m = max_logit(c, n);
    if (!s->sorted) {
        double mass[TOPP_BUCKETS] = {0};
        double z = 0.0;
        const float scale = TOPP_BUCKETS / TOPP_SPAN;
        for (int i = 0; i < n; i++) {
            float d = m - c[i].logit;
            int b = d < TOPP_SPAN ? (int)(d * scale) : TOPP_BUCKETS - 1;
            if (b > TOPP_BUCKETS - 1) b = TOPP_BUCKETS - 1;
            double e = exp((double)(c[i].logit - m));
            mass[b] += e;
            z += e;
        }
        int last = TOPP_BUCKETS - 1;
        double cum = 0.0;
        for (int b = 0; b < TOPP_BUCKETS; b++) {
            cum += mass[b];
            if (cum >= (double)p * z) { last = b; break; }
        }
        /* every candidate of a bin <= last beats every one of a later bin */
        int kept = 0;
        for (int i = 0; i < n; i++) {
            float d = m - c[i].logit;
            int b = d < TOPP_SPAN ? (int)(d * scale) : TOPP_BUCKETS - 1;
            if (b > TOPP_BUCKETS - 1) b = TOPP_BUCKETS - 1;
            if (b <= last) c[kept++] = c[i];
        }
        qsort(c, (size_t)kept, sizeof *c, cand_cmp);
        s->sorted = true;
        /* z over the whole set is still the normaliser */
        double acc = 0.0;
        int keep = kept;
        for (int i = 0; i < kept; i++) {
            acc += exp((double)(c[i].logit - m)) / z;
            if (acc >= (double)p) { keep = i + 1; break; }
        }
        s->n_cand = keep;
        return;
    }
    double z = 0.0;
    for (int i = 0; i < n; i++) z += exp((double)(c[i].logit - m));
    double acc = 0.0;
    for (int i = 0; i < n; i++) {
        acc += exp((double)(c[i].logit - m)) / z;
        if (acc >= (double)p) { s->n_cand = i + 1; return; }
    }
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

int32_t llm_sampler_sample(llm_sampler *s, const float *logits) {
    if (!s || !logits) return -1;
    const int nv = s->n_vocab;
    for (int i = 0; i < nv; i++) {
        float l = logits[i];
        s->cand[i].id = i;
        s->cand[i].logit = isnan(l) ? -INFINITY : l;
    }
    s->n_cand = nv;
    s->sorted = false;
    apply_repeat_penalty(s);

    if (s->p.temperature <= 0.0f || s->p.top_k == 1) {
        /* argmax; a strict > keeps the lowest id among equal maxima */
        int best = 0;
        for (int i = 1; i < nv; i++)
            if (s->cand[i].logit > s->cand[best].logit) best = i;
        s->cand[0] = s->cand[best];
        s->n_cand = 1;
        s->sorted = true;
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

int llm_sampler_last_probs(const llm_sampler *s, int32_t *ids, float *probs, int cap) {
    if (!s) return 0;
    int n = s->n_cand;
    if (cap <= 0 || !ids || !probs) return n;
    if (s->sorted) {
        int k = n < cap ? n : cap;
        for (int i = 0; i < k; i++) {
            ids[i] = s->cand[i].id;
            probs[i] = s->prob[i];
        }
        return n;
    }
    /* unsorted (no filter ran): insert into the caller's top-cap list */
    int k = 0;
    for (int i = 0; i < n; i++) {
        float pr = s->prob[i];
        int32_t id = s->cand[i].id;
        if (k == cap && !(pr > probs[k - 1] || (pr == probs[k - 1] && id < ids[k - 1]))) continue;
        int j = k < cap ? k++ : cap - 1;
        while (j > 0 && (pr > probs[j - 1] || (pr == probs[j - 1] && id < ids[j - 1]))) {
            ids[j] = ids[j - 1];
            probs[j] = probs[j - 1];
            j--;
        }
        ids[j] = id;
        probs[j] = pr;
    }
    return n;
}
