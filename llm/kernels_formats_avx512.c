/* kernels_formats_avx512.c — AVX-512 VNNI kernels for the further GGUF
 * weight formats (see kernels_formats_avx2.c); compiled with AVX-512 flags,
 * called only after a CPUID check. Types without an entry here use the
 * AVX2 kernels. */
#include <immintrin.h>

#include "llm/kernels_internal.h"

void llm_kernels_formats_avx512_fill(llm_kernel_table *t) {
    (void)t;
}
