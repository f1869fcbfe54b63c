/* tokenizer.h — the SentencePiece ("llama") vocabulary and tokenizer of a
 * GGUF file, as llama.cpp implements tokenizer model "llama" (internal to llm/). */
#ifndef LLM_TOKENIZER_H
#define LLM_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm/gguf.h"
#include "llm/llm.h"

/* Token types as GGUF stores them in tokenizer.ggml.token_type. */
typedef enum {
    LLM_TOKEN_UNDEFINED = 0,
    LLM_TOKEN_NORMAL = 1,
    LLM_TOKEN_UNKNOWN = 2,
    LLM_TOKEN_CONTROL = 3,
    LLM_TOKEN_USER_DEFINED = 4,
    LLM_TOKEN_UNUSED = 5,
    LLM_TOKEN_BYTE = 6,
} llm_token_type;

/* Limits on untrusted vocabularies. */
#define LLM_VOCAB_MAX_TOKENS (1 << 22)
#define LLM_VOCAB_MAX_PIECE 4096

/* A loaded vocabulary: read-only after llm_vocab_load, safe to share between
 * threads. */
typedef struct llm_vocab llm_vocab;

/* Reads the tokenizer of f: tokenizer.ggml.model must be "llama"; tokens,
 * scores, token_type, bos/eos/unk/padding ids, add_bos_token, add_eos_token
 * and add_space_prefix (defaults as llama.cpp: bos 1, eos 2, unk 0, add BOS,
 * add space prefix). When the file has no tokenizer at all, *out is NULL and
 * LLM_OK is returned. Other tokenizer models give LLM_ERR_UNSUPPORTED, bad
 * arrays LLM_ERR_FORMAT; err then names the file and the problem. The vocab
 * copies what it needs: f may be closed afterwards. Free with llm_vocab_free. */
int llm_vocab_load(const gguf_file *f, llm_vocab **out, char *err, size_t errlen);
void llm_vocab_free(llm_vocab *v);     /* NULL is a no-op */

int32_t llm_vocab_n(const llm_vocab *v);
int32_t llm_vocab_bos(const llm_vocab *v);     /* -1 when absent */
int32_t llm_vocab_eos(const llm_vocab *v);
int32_t llm_vocab_unk(const llm_vocab *v);
int32_t llm_vocab_pad(const llm_vocab *v);
bool llm_vocab_add_bos(const llm_vocab *v);    /* tokenizer.ggml.add_bos_token */
bool llm_vocab_add_space_prefix(const llm_vocab *v);

/* The stored piece of id ("▁the", "<0x0A>"), NUL-terminated, borrowed for
 * the life of v; NULL when id is out of range. */
const char *llm_vocab_piece(const llm_vocab *v, int32_t id, size_t *len);
llm_token_type llm_vocab_type(const llm_vocab *v, int32_t id);
float llm_vocab_score(const llm_vocab *v, int32_t id);
/* The id whose piece is exactly these bytes, or -1 (hash lookup). When a
 * piece occurs twice, the later id wins, as in llama.cpp. */
int32_t llm_vocab_find(const llm_vocab *v, const char *piece, size_t len);

/* Tokenizes len bytes (any bytes; invalid UTF-8 falls back to byte tokens).
 * add_bos prepends BOS. parse_special splits control and unknown-type pieces
 * written in the text out as their ids; user-defined pieces are always split
 * out (llama.cpp does the same). Writes up to cap ids and sets *n_out to the
 * number needed; returns LLM_ERR_ARG when cap was too small, LLM_ERR_NOMEM,
 * LLM_ERR_ARG for a text over 256 MiB. */
int llm_vocab_tokenize(const llm_vocab *v, const char *text, size_t len, bool add_bos,
                       bool parse_special, int32_t *out, size_t cap, size_t *n_out);

/* The bytes id contributes to text, as llama.cpp's token_to_piece: "▁" → " "
 * for normal pieces, one byte for <0xNN>, the piece for user-defined tokens,
 * the piece for control/unknown tokens only when render_special, nothing for
 * unused ones. Borrowed; *len 0 for nothing; NULL when id is out of range. */
const char *llm_vocab_token_text(const llm_vocab *v, int32_t id, bool render_special, size_t *len);

/* llama.cpp's llama_detokenize(remove_special = false): the raw bytes of the
 * ids, the first piece losing one leading space when add_space_prefix is on.
 * Writes at most cap bytes (no NUL) and returns the bytes needed; out-of-range
 * ids contribute nothing. */
size_t llm_vocab_detokenize_raw(const llm_vocab *v, const int32_t *ids, size_t n,
                                bool render_special, char *out, size_t cap);

/* The model's tokenizer (borrowed, valid while the model lives); NULL when
 * the model has none. Defined in llm/model.c. */
const llm_vocab *llm_model_vocab(const llm_model *m);

#endif
