/* test_app_lora.c — `--lora FILE[:SCALE]` through the real mrag program:
 * embed (the embedding and the fingerprint change), generate, ingest and
 * search (the index records the adapters; a query embedded differently is
 * refused with a message), and bad --lora values. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/test.h"

static char mrag[512], model[600], adapter[600], dir[400];

static void setup(void) {
    snprintf(mrag, sizeof mrag, "%s/mrag", test_build_dir());
    if (access(mrag, X_OK) != 0) SKIP("%s is missing (run make)", mrag);
    if (model[0]) return;
    snprintf(dir, sizeof dir, "%.390s", test_tmpdir());
    snprintf(model, sizeof model, "%s/m.gguf", dir);
    test_mkmodel(model, "--dim 64 --layers 1 --heads 4 --kv-heads 1 --ff 128 --seed 3");
    snprintf(adapter, sizeof adapter, "%s/a.gguf", dir);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/mkmodel --lora-of %s --lora-rank 4 --lora-targets q,k,v,o,gate,up,down,embd "
             "--seed 7 --out %s 2>/dev/null", test_build_dir(), test_shq(model), test_shq(adapter));
    REQUIRE(system(cmd) == 0, "%s", cmd);
}

/* Runs mrag with args; stdout returned (malloc'd), stderr into *err. */
static char *run(const char *args, int *status, char **err) {
    char errp[600], cmd[4096];
    snprintf(errp, sizeof errp, "%s/err.txt", dir);
    snprintf(cmd, sizeof cmd, "env -u MRAG_MODEL -u MRAG_INDEX %s %s 2>%s", mrag, args, test_shq(errp));
    char *out = test_run_capture(cmd, status);
    REQUIRE(out, "cannot run %s", cmd);
    if (err) *err = test_read_file(errp, NULL);
    return out;
}

/* The "fingerprint" value of embed --fingerprint output (static buffer). */
static const char *fp_of(const char *json) {
    static char fp[65];
    const char *p = json ? strstr(json, "\"fingerprint\": \"") : NULL;
    REQUIRE(p, "no fingerprint in %s", json ? json : "(null)");
    snprintf(fp, sizeof fp, "%.64s", p + 16);
    return fp;
}

TEST(embed_with_an_adapter_changes_vector_and_fingerprint) {
    setup();
    char args[2048];
    int st;
    snprintf(args, sizeof args, "embed -m %s --fingerprint the lighthouse keeper", test_shq(model));
    char *base = run(args, &st, NULL);
    CHECK(st == 0, "%s", base);
    char base_fp[65];
    snprintf(base_fp, sizeof base_fp, "%s", fp_of(base));
    snprintf(args, sizeof args, "embed -m %s --lora %s --fingerprint the lighthouse keeper", test_shq(model),
             test_shq(adapter));
    char *with = run(args, &st, NULL);
    CHECK(st == 0, "%s", with);
    CHECK(strcmp(fp_of(with), base_fp) != 0, "the adapter did not change the fingerprint");
    /* the vectors differ (the JSON arrays after the fingerprint) */
    CHECK(strcmp(strstr(with, "\"embedding\""), strstr(base, "\"embedding\"")) != 0, "the adapter did not change the embedding");
    /* scale 0: the same vector as the base model, but not the same fingerprint */
    char s0[700];
    snprintf(s0, sizeof s0, "%s:0", adapter);
    snprintf(args, sizeof args, "embed -m %s --lora %s --fingerprint the lighthouse keeper", test_shq(model), test_shq(s0));
    char *zero = run(args, &st, NULL);
    CHECK(st == 0, "%s", zero);
    CHECK(strcmp(strstr(zero, "\"embedding\""), strstr(base, "\"embedding\"")) == 0, "scale 0 changed the embedding");
    char with_fp[65];
    snprintf(with_fp, sizeof with_fp, "%s", fp_of(with));
    CHECK(strcmp(fp_of(zero), base_fp) != 0 && strcmp(fp_of(zero), with_fp) != 0, "scale is not in the fingerprint");
    /* without --fingerprint: a plain array, as before */
    snprintf(args, sizeof args, "embed -m %s --lora %s hello", test_shq(model), test_shq(adapter));
    char *plain = run(args, &st, NULL);
    CHECK(st == 0 && plain[0] == '[', "%s", plain);
    free(base); free(with); free(zero); free(plain);
}

TEST(generate_runs_with_adapters_and_refuses_bad_ones) {
    setup();
    char args[2048], *err = NULL;
    int st;
    snprintf(args, sizeof args, "generate -m %s --lora %s --lora %s:0.5 -p 'Once upon' -n 8 --temp 0", test_shq(model),
             test_shq(adapter), test_shq(adapter));
    char *out = run(args, &st, &err);
    CHECK(st == 0, "exit %d: %s", st, err ? err : "");
    free(out);
    free(err);
    /* a missing adapter: the file named, exit 1 */
    snprintf(args, sizeof args, "generate -m %s --lora %s/none.gguf -p x -n 1", test_shq(model), test_shq(dir));
    out = run(args, &st, &err);
    CHECK(st == 1 && err && strstr(err, "none.gguf"), "exit %d: %s", st, err ? err : "");
    free(out);
    free(err);
    /* the model itself is no adapter */
    snprintf(args, sizeof args, "generate -m %s --lora %s -p x -n 1", test_shq(model), test_shq(model));
    out = run(args, &st, &err);
    CHECK(st == 1 && err && strstr(err, "not a LoRA adapter"), "exit %d: %s", st, err ? err : "");
    free(out);
    free(err);
}

TEST(index_records_the_adapter_and_search_must_match) {
    setup();
    char docs[600], idx[600], args[4096], *err = NULL;
    snprintf(docs, sizeof docs, "%s/docs", dir);
    snprintf(idx, sizeof idx, "%s/idx", dir);
    char mk[700];
    snprintf(mk, sizeof mk, "mkdir -p %s", test_shq(docs));
    REQUIRE(system(mk) == 0);
    test_put_file(docs, "a.md", "# Lighthouse\n\nThe keeper climbed the stairs every evening.\n");
    test_put_file(docs, "b.md", "# Harbour\n\nFishing boats return with a full hold in the morning.\n");
    int st;
    snprintf(args, sizeof args, "ingest %s --index %s -m %s --lora %s -q", test_shq(docs), test_shq(idx),
             test_shq(model), test_shq(adapter));
    char *out = run(args, &st, &err);
    CHECK(st == 0, "ingest exit %d: %s", st, err ? err : "");
    free(out);
    free(err);
    /* the same adapter: dense search works */
    snprintf(args, sizeof args, "search --index %s -m %s --lora %s --mode dense keeper stairs", test_shq(idx),
             test_shq(model), test_shq(adapter));
    out = run(args, &st, &err);
    CHECK(st == 0 && strstr(out, "a.md"), "exit %d: %s / %s", st, out, err ? err : "");
    free(out);
    free(err);
    /* without it the query would be embedded by another model: refused */
    snprintf(args, sizeof args, "search --index %s -m %s --mode dense keeper stairs", test_shq(idx), test_shq(model));
    out = run(args, &st, &err);
    CHECK(st != 0 && err && strstr(err, "sha256"), "exit %d: %s", st, err ? err : "");
    free(out);
    free(err);
    /* another scale is another fingerprint */
    snprintf(args, sizeof args, "search --index %s -m %s --lora %s:0.5 --mode dense keeper", test_shq(idx),
             test_shq(model), test_shq(adapter));
    out = run(args, &st, &err);
    CHECK(st != 0, "scale 0.5 was accepted against an index built at scale 1");
    free(out);
    free(err);
    /* and a re-ingest without the adapter refuses to mix vectors */
    snprintf(args, sizeof args, "ingest %s --index %s -m %s -q", test_shq(docs), test_shq(idx), test_shq(model));
    out = run(args, &st, &err);
    CHECK(st != 0 && err && strstr(err, "--reindex"), "exit %d: %s", st, err ? err : "");
    free(out);
    free(err);
}

TEST(bad_lora_values_are_usage_errors) {
    setup();
    char args[2048], *err = NULL;
    int st;
    snprintf(args, sizeof args, "embed -m %s --lora '' hello", test_shq(model));
    char *out = run(args, &st, &err);
    CHECK(st == 2 && err && strstr(err, "--lora needs a file"), "exit %d: %s", st, err ? err : "");
    free(out);
    free(err);
    /* a path with a colon and no number stays a path */
    snprintf(args, sizeof args, "embed -m %s --lora %s/x:y.gguf hello", test_shq(model), test_shq(dir));
    out = run(args, &st, &err);
    CHECK(st == 1 && err && strstr(err, "x:y.gguf"), "exit %d: %s", st, err ? err : "");
    free(out);
    free(err);
}

TEST_MAIN(RUN(embed_with_an_adapter_changes_vector_and_fingerprint), RUN(generate_runs_with_adapters_and_refuses_bad_ones),
          RUN(index_records_the_adapter_and_search_must_match), RUN(bad_lora_values_are_usage_errors))
