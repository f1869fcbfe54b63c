/* test_rag_engine.c — the generation interface (rag/engine.h): the local
 * engine gives exactly what llm_generate gives on the formatted prompt
 * (text, counts, why it stopped), honours the caller's stop strings, the
 * sink and the cancel flag, refuses messages out of the template's order,
 * embeds like llm_embed; engines of one's own through rag_engine_new. */
#include "tests/test.h"

#include <stdlib.h>
#include <string.h>

#include "llm/llm.h"
#include "rag/engine.h"

static char model_path[512];
static llm_model *model;

static void need_model(void) {
    if (model) return;
    snprintf(model_path, sizeof model_path, "%s/engine-model.gguf", test_tmpdir());
    test_mkmodel(model_path, "--dim 64 --layers 2 --heads 4 --kv-heads 1 --ff 128 --ctx 1024 --seed 5");
    llm_model_params mp = llm_model_default_params();
    char err[512];
    REQUIRE(llm_model_load(model_path, &mp, &model, err, sizeof err) == LLM_OK, "%s", err);
}

static void cleanup(void) { llm_model_free(model); }

static const rag_msg conv[] = {
    {"system", "Answer briefly."},
    {"user", "Where is the office?"},
    {"assistant", "In Hamburg."},
    {"user", "And the parking?"},
};

typedef struct {
    char buf[8192];
    size_t n;
    int calls, stop_after;
    volatile int *cancel;
} sink;

static int on_text(void *user, const char *t, size_t len) {
    sink *s = user;
    if (s->n + len < sizeof s->buf) { memcpy(s->buf + s->n, t, len); s->n += len; s->buf[s->n] = 0; }
    s->calls++;
    if (s->cancel && s->calls >= 2) *s->cancel = 1;
    return s->stop_after && s->calls >= s->stop_after;
}

/* The reference: the formatted prompt through llm_generate directly, with
 * the template's stops. */
static void reference(int n_predict, const char *const *extra, int n_extra, sink *out, llm_generate_result *res) {
    char *prompt = rag_msgs_format(conv, 4);
    REQUIRE(prompt);
    int32_t toks[2048];
    size_t n = 0;
    REQUIRE(llm_tokenize(model, prompt, strlen(prompt), false, true, toks, 2048, &n) == LLM_OK);
    free(prompt);
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = 1024;
    cp.n_threads = 1;
    llm_context *c = NULL;
    char err[256];
    REQUIRE(llm_context_new(model, &cp, &c, err, sizeof err) == LLM_OK, "%s", err);
    llm_generate_params gp = llm_generate_default_params();
    gp.n_predict = n_predict;
    gp.sampling.temperature = 0;
    gp.sampling.seed = 42;
    size_t nt = 0;
    const char *const *turn = llm_chat_stop_strings(&nt);
    const char *stops[16];
    int ns = 0;
    for (size_t i = 0; i < nt; i++) stops[ns++] = turn[i];
    for (int i = 0; i < n_extra; i++) stops[ns++] = extra[i];
    gp.stop = stops;
    gp.n_stop = ns;
    gp.on_text = on_text;
    gp.user = out;
    llm_generate(c, toks, (int)n, &gp, res);
    llm_context_free(c);
}

static rag_engine *local_engine(void) {
    rag_local_params lp = rag_local_default_params();
    lp.n_ctx = 1024;
    lp.n_threads = 1;
    rag_engine *e = NULL;
    char err[256];
    REQUIRE(rag_engine_local_new(model, &lp, &e, err, sizeof err) == RAG_OK, "%s", err);
    return e;
}

TEST(local_engine_is_llm_generate_on_the_formatted_prompt) {
    need_model();
    sink want = {0};
    llm_generate_result wr;
    reference(24, NULL, 0, &want, &wr);
    rag_engine *e = local_engine();
    rag_sampling sp = rag_sampling_default();
    sp.max_tokens = 24;
    sink got = {0};
    rag_gen_stats st;
    REQUIRE(rag_engine_generate(e, conv, 4, &sp, on_text, &got, NULL, &st) == RAG_OK, "%s", rag_engine_errmsg(e));
    CHECK_EQ_STR(got.buf, want.buf);
    CHECK_EQ_INT(st.n_prompt, wr.n_prompt);
    CHECK_EQ_INT(st.n_generated, wr.n_generated);
    CHECK(st.n_prompt > 20, "%d", st.n_prompt);
    CHECK_EQ_INT(st.stop, wr.stop_reason == LLM_STOP_LENGTH ? RAG_STOP_LENGTH : RAG_STOP_EOS);
    /* the count the answer pipeline budgets with is the engine's own */
    char *prompt = rag_msgs_format(conv, 4);
    CHECK_EQ_INT(rag_engine_count(e, prompt, strlen(prompt)), st.n_prompt);
    CHECK_EQ_INT(rag_count_prompt_tokens(model, prompt, strlen(prompt)), st.n_prompt);
    free(prompt);
    /* the same again (the context is reused): the same text */
    sink again = {0};
    REQUIRE(rag_engine_generate(e, conv, 4, &sp, on_text, &again, NULL, NULL) == RAG_OK);
    CHECK_EQ_STR(again.buf, want.buf);
    rag_engine_free(e);
}

TEST(caller_stops_sink_and_cancel) {
    need_model();
    sink full = {0};
    llm_generate_result fr;
    reference(24, NULL, 0, &full, &fr);
    if (full.n < 6) SKIP("the test model said too little to cut (%zu bytes)", full.n);
    /* a stop string from the middle of the greedy text */
    char stop[4];
    memcpy(stop, full.buf + full.n / 2, 3);
    stop[3] = 0;
    const char *stops[] = {stop};
    sink want = {0};
    llm_generate_result wr;
    reference(24, stops, 1, &want, &wr);
    rag_engine *e = local_engine();
    rag_sampling sp = rag_sampling_default();
    sp.max_tokens = 24;
    sp.stop = stops;
    sp.n_stop = 1;
    sink got = {0};
    rag_gen_stats st;
    REQUIRE(rag_engine_generate(e, conv, 4, &sp, on_text, &got, NULL, &st) == RAG_OK);
    CHECK_EQ_STR(got.buf, want.buf);
    CHECK(strstr(got.buf, stop) == NULL, "%s", got.buf);
    CHECK_EQ_INT(st.stop, RAG_STOP_STRING);
    /* the sink asks to stop: RAG_OK, cancelled */
    sp.n_stop = 0;
    sink one = {.stop_after = 1};
    REQUIRE(rag_engine_generate(e, conv, 4, &sp, on_text, &one, NULL, &st) == RAG_OK);
    CHECK_EQ_INT(one.calls, 1);
    CHECK_EQ_INT(st.stop, RAG_STOP_CANCELLED);
    /* the cancel flag, raised from the sink */
    volatile int cancel = 0;
    sink two = {.cancel = &cancel};
    REQUIRE(rag_engine_generate(e, conv, 4, &sp, on_text, &two, &cancel, &st) == RAG_OK);
    CHECK_EQ_INT(st.stop, RAG_STOP_CANCELLED);
    CHECK(two.calls <= 3, "%d", two.calls);
    rag_engine_free(e);
}

TEST(bad_messages_and_sampling_are_refused) {
    need_model();
    rag_engine *e = local_engine();
    rag_sampling sp = rag_sampling_default();
    rag_msg asst_first[] = {{"assistant", "a"}, {"user", "u"}};
    rag_gen_stats st;
    CHECK_EQ_INT(rag_engine_generate(e, asst_first, 2, &sp, NULL, NULL, NULL, &st), RAG_ERR_FORMAT);
    CHECK(strstr(rag_engine_errmsg(e), "chat template") != NULL, "%s", rag_engine_errmsg(e));
    CHECK_EQ_INT(st.n_generated, 0);
    CHECK_EQ_INT(rag_engine_generate(e, conv, 0, &sp, NULL, NULL, NULL, NULL), RAG_ERR_ARG);
    sp.max_tokens = 0;
    CHECK_EQ_INT(rag_engine_generate(e, conv, 4, &sp, NULL, NULL, NULL, NULL), RAG_ERR_ARG);
    sp = rag_sampling_default();
    const char *nine[9] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    sp.stop = nine;
    sp.n_stop = 9;
    CHECK_EQ_INT(rag_engine_generate(e, conv, 4, &sp, NULL, NULL, NULL, NULL), RAG_ERR_ARG);
    /* a prompt longer than the context: an error naming it, not a crash */
    rag_local_params lp = rag_local_default_params();
    lp.n_ctx = 16;
    lp.n_threads = 1;
    rag_engine *small = NULL;
    char err[256];
    REQUIRE(rag_engine_local_new(model, &lp, &small, err, sizeof err) == RAG_OK, "%s", err);
    sp = rag_sampling_default();
    CHECK(rag_engine_generate(small, conv, 4, &sp, NULL, NULL, NULL, NULL) != RAG_OK);
    CHECK(*rag_engine_errmsg(small), "no message");
    rag_engine_free(small);
    rag_engine_free(e);
    CHECK_EQ_INT(rag_engine_local_new(NULL, NULL, &e, err, sizeof err), RAG_ERR_ARG);
    CHECK(e == NULL);
}

TEST(embed_is_llm_embed) {
    need_model();
    rag_engine *e = local_engine();
    int dim = llm_n_embd(model);
    float *a = malloc(2 * (size_t)dim * sizeof *a), *b = malloc((size_t)dim * sizeof *b);
    const char *texts[] = {"the office is in Hamburg", "parking in the yard"};
    size_t lens[] = {strlen(texts[0]), strlen(texts[1])};
    REQUIRE(rag_engine_embed(e, texts, lens, 2, a, dim) == RAG_OK, "%s", rag_engine_errmsg(e));
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = 1024;
    cp.n_threads = 1;
    llm_context *c = NULL;
    char err[256];
    REQUIRE(llm_context_new(model, &cp, &c, err, sizeof err) == LLM_OK);
    for (int t = 0; t < 2; t++) {
        REQUIRE(llm_embed(c, texts[t], lens[t], b) == LLM_OK);
        float d = 0;
        for (int i = 0; i < dim; i++) d += (a[(size_t)t * dim + i] - b[i]) * (a[(size_t)t * dim + i] - b[i]);
        CHECK(d < 1e-8f, "text %d differs by %g", t, d);
    }
    /* one text, the retriever's signature */
    REQUIRE(rag_engine_embed_one(e, texts[1], lens[1], b, dim) == RAG_OK);
    CHECK(b[0] == a[dim] && b[dim - 1] == a[2 * dim - 1]);
    CHECK_EQ_INT(rag_engine_embed_one(e, "x", 1, b, dim + 1), RAG_ERR_MISMATCH);
    llm_context_free(c);
    free(a);
    free(b);
    rag_engine_free(e);
}

static int destroyed;
static int my_generate(void *self, const rag_msg *msgs, size_t n, const rag_sampling *s, rag_emit_fn emit,
                       void *emit_user, volatile int *cancel, rag_gen_stats *st) {
    (void)self;
    (void)s;
    (void)cancel;
    char *p = rag_msgs_format(msgs, n);
    if (!p) return RAG_ERR_FORMAT;
    emit(emit_user, "echo", 4);
    st->n_generated = 1;
    free(p);
    return RAG_OK;
}
static void my_destroy(void *self) { destroyed += self == &destroyed; }

TEST(engines_of_ones_own) {
    static const rag_engine_ops ops = {.generate = my_generate, .destroy = my_destroy};
    rag_engine *e = rag_engine_new(&ops, &destroyed);
    REQUIRE(e);
    rag_sampling sp = rag_sampling_default();
    sink s = {0};
    rag_gen_stats st;
    CHECK_EQ_INT(rag_engine_generate(e, conv, 4, &sp, on_text, &s, NULL, &st), RAG_OK);
    CHECK_EQ_STR(s.buf, "echo");
    CHECK_EQ_INT(st.n_generated, 1);
    CHECK_EQ_INT(st.n_prompt, -1);
    /* no embed: unsupported; no count: the estimate */
    float v[4];
    CHECK_EQ_INT(rag_engine_embed_one(e, "x", 1, v, 4), RAG_ERR_UNSUPPORTED);
    CHECK_EQ_INT(rag_engine_count(e, "abcde", 5), rag_count_estimate(NULL, "abcde", 5));
    CHECK(strstr(rag_engine_errmsg(e), "does not embed") != NULL, "%s", rag_engine_errmsg(e));
    rag_engine_free(e);
    CHECK_EQ_INT(destroyed, 1);
    rag_engine_free(NULL);
    CHECK_EQ_STR(rag_stop_reason_str(RAG_STOP_CONTEXT_FULL), "context_full");
}

TEST_MAIN(RUN(local_engine_is_llm_generate_on_the_formatted_prompt), RUN(caller_stops_sink_and_cancel),
          RUN(bad_messages_and_sampling_are_refused), RUN(embed_is_llm_embed), RUN(engines_of_ones_own), cleanup())
