/* test_llm_types.c — the further GGUF weight formats (Q5_K, Q3_K, Q2_K, Q4_1,
 * Q5_0, Q5_1, IQ4_NL, IQ4_XS and llama-quantize's mixes of them) and LoRA
 * adapters, each against llama.cpp (tests/oracle) on mkmodel Mistral-shaped
 * models; the core types are in test_llm_forward.c. Split from it so that
 * each binary stays well inside the runner's time limit. */
#include <stdlib.h>
#include <string.h>

#include "tests/llm_oracle.h"
#include "tests/test.h"

/* Shapes, bounds and the near-tie rule as in test_llm_forward.c: bounds are
 * the measured maxima (docs/engine.md) with a 2-3x margin. Every type runs
 * at head_dim 64 or 128 and the mixes (several types in one file, as
 * llama-quantize writes them) at 128. */
static const ot_type_case type_cases[] = {
    {"q5_k_hd64", "--type q5_k --dim 256 --heads 4 --kv-heads 1 --ff 512 --layers 2 --seed 10", 0.1, false, false, {NULL, NULL}, {0, 0}, 0},
    {"q5_k_m_mix_hd128", "--mix q5_k_m --dim 512 --heads 4 --kv-heads 1 --ff 768 --layers 2 --seed 12", 0.1, false, false, {NULL, NULL}, {0, 0}, 0},
    {"q4_k_m_mix_hd128", "--mix q4_k_m --dim 512 --heads 4 --kv-heads 1 --ff 768 --layers 2 --seed 13", 0.15, false, false, {NULL, NULL}, {0, 0}, 0},
    {"q3_k_hd64", "--type q3_k --dim 256 --heads 4 --kv-heads 1 --ff 512 --layers 2 --seed 14", 0.1, false, false, {NULL, NULL}, {0, 0}, 0},
    {"q3_k_m_mix_hd128", "--mix q3_k_m --dim 512 --heads 4 --kv-heads 1 --ff 768 --layers 2 --seed 15", 0.15, false, false, {NULL, NULL}, {0, 0}, 0},
    {"q2_k_hd64", "--type q2_k --dim 256 --heads 4 --kv-heads 1 --ff 512 --layers 2 --seed 16", 0.1, false, false, {NULL, NULL}, {0, 0}, 0},
    {"q2_k_mix_hd128", "--mix q2_k --dim 512 --heads 4 --kv-heads 1 --ff 768 --layers 2 --seed 17", 0.15, false, false, {NULL, NULL}, {0, 0}, 0},
    {"q4_1_hd64", "--type q4_1 --dim 256 --heads 4 --kv-heads 1 --ff 512 --layers 2 --seed 18", 0.05, false, false, {NULL, NULL}, {0, 0}, 0},
    {"q5_0_hd128", "--type q5_0 --dim 512 --heads 4 --kv-heads 1 --ff 768 --layers 2 --seed 19", 0.1, false, false, {NULL, NULL}, {0, 0}, 0},
    {"q5_1_hd64", "--type q5_1 --dim 256 --heads 4 --kv-heads 1 --ff 512 --layers 2 --seed 20", 0.1, false, false, {NULL, NULL}, {0, 0}, 0},
    {"iq4_nl_hd128", "--type iq4_nl --dim 512 --heads 4 --kv-heads 1 --ff 768 --layers 2 --seed 21", 0.1, false, false, {NULL, NULL}, {0, 0}, 0},
    {"iq4_xs_hd64", "--type iq4_xs --dim 256 --heads 4 --kv-heads 1 --ff 512 --layers 2 --seed 22", 0.05, false, false, {NULL, NULL}, {0, 0}, 0},
    {"iq4_xs_mix_hd128", "--mix iq4_xs --dim 512 --heads 4 --kv-heads 1 --ff 768 --layers 2 --seed 23", 0.15, false, false, {NULL, NULL}, {0, 0}, 0},
};

/* LoRA: random adapters from mkmodel --lora-of, applied by both engines
 * (node-llama-cpp's context `lora` option). The f32 case adapts every
 * weight kind (attention, FFN, token_embd rows, the output head) with
 * alpha 16 / rank 8 at scale 0.7, so its bound is the f32 one; the second
 * stacks two adapters (F16 tensors, alpha 32 / rank 16 on attention; F32,
 * no alpha, rank 4 on the FFN and output, scale 0.5) on a Q4_K_M mix. Each
 * must move the log-probs (the adapter is really applied). */
static const ot_type_case lora_cases[] = {
    {"lora_f32_hd64", "--type f32 --dim 256 --heads 4 --kv-heads 1 --ff 512 --layers 2 --seed 24", 3e-4, true, false,
     {"--type f32 --lora-rank 8 --lora-alpha 16 --lora-targets q,k,v,o,gate,up,down,embd,output --seed 31", NULL},
     {0.7f, 0}, 0.1},
    {"lora2_q4_k_m_mix_hd128", "--mix q4_k_m --dim 512 --heads 4 --kv-heads 1 --ff 768 --layers 2 --seed 25", 0.15,
     false, false,
     {"--type f16 --lora-rank 16 --lora-alpha 32 --lora-targets q,k,v,o --seed 32",
      "--type f32 --lora-rank 4 --lora-alpha 0 --lora-targets gate,up,down,output --seed 33"},
     {1.0f, 0.5f}, 0.05},
};

static void run_cases(const ot_type_case *cases, size_t n, const char *const *asan_subset) {
    test_require_shared("models/mistral-v0.1-vocab-derived.gguf");
    const char *only = getenv("MRAG_TYPE_CASE");   /* run one case while debugging */
    bool asan = getenv("MRAG_ASAN") != NULL;
    for (size_t i = 0; i < n; i++) {
        const char *nm = cases[i].name;
        if (only && strcmp(only, nm)) continue;
        if (asan && !only) {
            bool keep = false;
            for (const char *const *a = asan_subset; *a; a++) keep |= !strcmp(*a, nm);
            if (!keep) continue;
        }
        ot_run_type_case(&cases[i]);
    }
}

TEST(further_formats_match_llama_cpp) {
    /* under the sanitizers (~3x slower) one K-quant and one 32-block type */
    static const char *const asan_subset[] = {"q5_k_hd64", "q4_1_hd64", NULL};
    run_cases(type_cases, sizeof type_cases / sizeof type_cases[0], asan_subset);
}

TEST(lora_adapters_match_llama_cpp) {
    static const char *const asan_subset[] = {"lora_f32_hd64", NULL};
    run_cases(lora_cases, sizeof lora_cases / sizeof lora_cases[0], asan_subset);
}

TEST_MAIN(RUN(further_formats_match_llama_cpp), RUN(lora_adapters_match_llama_cpp))
