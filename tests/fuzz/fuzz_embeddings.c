/* fuzz_embeddings.c — libFuzzer target for the answers of an embedding
 * server (rag_remote_parse_embeddings; remote ingestion and query
 * embeddings read them from a server we do not control): any bytes, for 1
 * to 4 vectors of 1 to 8 numbers (from the first byte). Never crashes; a
 * failure leaves a message; a success gives finite, unit-length (or zero)
 * vectors. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rag/rag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int n = 1 + (data[0] & 3), dim = 1 + (data[0] >> 2 & 7);
    float out[4 * 8];
    char err[300] = "";
    int rc = rag_remote_parse_embeddings((const char *)data + 1, size - 1, n, dim, out, err, sizeof err);
    if (rc != RAG_OK) {
        if (!err[0]) __builtin_trap();
        return 0;
    }
    for (int i = 0; i < n; i++) {
        double ss = 0;
        for (int d = 0; d < dim; d++) {
            if (!isfinite(out[i * dim + d])) __builtin_trap();
            ss += (double)out[i * dim + d] * out[i * dim + d];
        }
        if (ss != 0 && fabs(ss - 1) > 1e-3) __builtin_trap();
    }
    return 0;
}
