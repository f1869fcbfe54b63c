/* generate.c — the generation loop: prefill, sample, stream text, stop. */
#include "llm/llm.h"

llm_generate_params llm_generate_default_params(void) {
    llm_generate_params p = {
        .n_predict = 128,
        .sampling = llm_sampler_default_params(),
    };
    return p;
}

/* Not wired to the engine yet. */
int llm_generate(llm_context *c, const int32_t *prompt, int n_prompt,
                 const llm_generate_params *p, llm_generate_result *res) {
    (void)c; (void)prompt; (void)n_prompt; (void)p;
    if (res) *res = (llm_generate_result){0};
    return LLM_ERR_UNSUPPORTED;
}
