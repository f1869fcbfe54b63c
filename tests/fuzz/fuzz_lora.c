/* fuzz_lora.c — libFuzzer target for LoRA adapter files: bytes through the
 * GGUF reader and llm_lora's checks against a tiny model; an adapter that
 * passes is then applied by a context over a few tokens. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm/ggml.h"
#include "llm/gguf.h"
#include "llm/llm.h"
#include "llm/model.h"

/* The tiny model: dim 32, 1 layer, 2 heads (1 KV), ff 64, a 300-token
 * byte-fallback vocabulary, F32 weights. */
enum { DIM = 32, FF = 64, NV = 300 };

static void add_f32(gguf_writer *w, const char *name, uint64_t ne0, uint64_t ne1, float scale) {
    static float buf[NV * DIM];
    for (uint64_t i = 0; i < ne0 * ne1; i++) buf[i] = scale * (float)((int)(i * 2654435761u % 1001) - 500) / 500.0f;
    uint64_t ne[2] = {ne0, ne1};
    llm_gguf_writer_add_tensor(w, name, GGML_TYPE_F32, ne1 > 1 ? 2 : 1, ne, buf);
}

static int write_model(const char *path) {
    gguf_writer *w = llm_gguf_writer_new();
    if (!w) return -1;
    llm_gguf_writer_set_str(w, "general.architecture", "llama");
    llm_gguf_writer_set_u32(w, "llama.context_length", 64);
    llm_gguf_writer_set_u32(w, "llama.embedding_length", DIM);
    llm_gguf_writer_set_u32(w, "llama.block_count", 1);
    llm_gguf_writer_set_u32(w, "llama.feed_forward_length", FF);
    llm_gguf_writer_set_u32(w, "llama.attention.head_count", 2);
    llm_gguf_writer_set_u32(w, "llama.attention.head_count_kv", 1);
    llm_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    const char *toks[NV];
    static char buf[NV][12];
    int32_t types[NV];
    float scores[NV];
    for (int i = 0; i < NV; i++) {
        if (i == 0) snprintf(buf[i], sizeof buf[i], "<unk>");
        else if (i == 1) snprintf(buf[i], sizeof buf[i], "<s>");
        else if (i == 2) snprintf(buf[i], sizeof buf[i], "</s>");
        else if (i < 259) snprintf(buf[i], sizeof buf[i], "<0x%02X>", i - 3);
        else snprintf(buf[i], sizeof buf[i], "t%d", i);
        toks[i] = buf[i];
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
        scores[i] = -(float)i;
    }
    llm_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    llm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NV);
    llm_gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, NV);
    llm_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, NV);
    llm_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    llm_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    add_f32(w, "token_embd.weight", DIM, NV, 1.0f);
    add_f32(w, "output_norm.weight", DIM, 1, 1.0f);
    add_f32(w, "output.weight", DIM, NV, 0.2f);
    add_f32(w, "blk.0.attn_norm.weight", DIM, 1, 1.0f);
    add_f32(w, "blk.0.attn_q.weight", DIM, DIM, 0.1f);
    add_f32(w, "blk.0.attn_k.weight", DIM, DIM / 2, 0.1f);
    add_f32(w, "blk.0.attn_v.weight", DIM, DIM / 2, 0.1f);
    add_f32(w, "blk.0.attn_output.weight", DIM, DIM, 0.1f);
    add_f32(w, "blk.0.ffn_norm.weight", DIM, 1, 1.0f);
    add_f32(w, "blk.0.ffn_gate.weight", DIM, FF, 0.1f);
    add_f32(w, "blk.0.ffn_up.weight", DIM, FF, 0.1f);
    add_f32(w, "blk.0.ffn_down.weight", FF, DIM, 0.1f);
    char err[512];
    int rc = llm_gguf_writer_write(w, path, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    llm_gguf_writer_free(w);
    return rc;
}

static llm_model *model;

static llm_model *get_model(void) {
    if (model) return model;
    char path[] = "/tmp/fuzz_lora_model.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) abort();
    close(fd);
    char err[512];
    if (write_model(path) != 0 || llm_model_load(path, NULL, &model, err, sizeof err) != LLM_OK) {
        fprintf(stderr, "fuzz_lora: %s\n", err);
        abort();
    }
    unlink(path);   /* the mapping stays valid */
    return model;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    llm_model *m = get_model();
    gguf_file *f = NULL;
    char err[512];
    if (llm_gguf_open_memory(data, size, "fuzz.gguf", &f, err, sizeof err) != 0) return 0;
    llm_lora *l = NULL;
    int rc = llm_lora_from_gguf(m, f, "fuzz.gguf", &l, err, sizeof err);
    if (rc != LLM_OK) {
        /* one line naming the input */
        if (l || strncmp(err, "fuzz.gguf", 9) != 0 || strchr(err, '\n')) abort();
        return 0;
    }
    /* an accepted adapter must be usable: a forward pass over a few tokens */
    llm_context_params cp = llm_context_default_params();
    cp.n_ctx = 16;
    cp.n_batch = 8;
    cp.n_threads = 1;
    cp.loras = &l;
    cp.n_lora = 1;
    llm_context *c = NULL;
    if (llm_context_new(m, &cp, &c, err, sizeof err) == LLM_OK) {
        int32_t ids[4] = {1, 100, 299, 3};
        if (llm_decode(c, ids, 4) != LLM_OK) abort();
        llm_context_free(c);
    }
    llm_lora_free(l);
    return 0;
}

/* ---------------------------------------------------------------- seeds
 * `fuzz_lora -mrag_seeds=DIR` writes valid adapters for the tiny model. */
static int write_seeds(const char *dir) {
    char path[4096], err[512];
    static float buf[NV * 8];
    for (size_t i = 0; i < sizeof buf / sizeof buf[0]; i++) buf[i] = (float)((int)(i % 17) - 8) / 64.0f;
    int rc = 0;
    for (int k = 0; k < 2; k++) {
        gguf_writer *w = llm_gguf_writer_new();
        llm_gguf_writer_set_str(w, "general.architecture", "llama");
        llm_gguf_writer_set_str(w, "general.type", "adapter");
        llm_gguf_writer_set_str(w, "adapter.type", "lora");
        if (k == 0) llm_gguf_writer_set_f32(w, "adapter.lora.alpha", 8.0f);
        uint64_t a[2] = {DIM, 4}, bq[2] = {4, DIM}, bv[2] = {4, DIM / 2}, ae[2] = {4, NV}, be[2] = {4, DIM};
        uint32_t t = k == 0 ? GGML_TYPE_F32 : GGML_TYPE_F16;
        llm_gguf_writer_add_tensor(w, "blk.0.attn_q.weight.lora_a", t, 2, a, buf);
        llm_gguf_writer_add_tensor(w, "blk.0.attn_q.weight.lora_b", t, 2, bq, buf);
        llm_gguf_writer_add_tensor(w, "blk.0.attn_v.weight.lora_a", t, 2, a, buf);
        llm_gguf_writer_add_tensor(w, "blk.0.attn_v.weight.lora_b", t, 2, bv, buf);
        if (k == 1) {
            llm_gguf_writer_add_tensor(w, "token_embd.weight.lora_a", t, 2, ae, buf);
            llm_gguf_writer_add_tensor(w, "token_embd.weight.lora_b", t, 2, be, buf);
        }
        snprintf(path, sizeof path, "%s/seed-lora%d.gguf", dir, k);
        if (llm_gguf_writer_write(w, path, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); rc = 1; }
        llm_gguf_writer_free(w);
    }
    return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    for (int i = 1; i < *argc; i++)
        if (strncmp((*argv)[i], "-mrag_seeds=", 12) == 0) exit(write_seeds((*argv)[i] + 12));
    return 0;
}
