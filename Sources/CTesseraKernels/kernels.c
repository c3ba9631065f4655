#include "CTesseraKernels.h"

#include <string.h>

// No fused multiply-adds: every clone must round exactly as the scalar code does, so batches are the same
// bytes on every machine.
#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__) && defined(__clang__)
#define TESSERA_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TESSERA_CLONES
#endif

TESSERA_CLONES
void tessera_affine_u8_f32(const uint8_t *restrict src, float *restrict dst, size_t count, float gain, float offset) {
    for (size_t i = 0; i < count; i++) dst[i] = (float)src[i] * gain + offset;
}

TESSERA_CLONES
void tessera_affine_f32_f32(const void *restrict src, float *restrict dst, size_t count, float gain, float offset) {
    const unsigned char *bytes = src;
    for (size_t i = 0; i < count; i++) {
        float value;
        memcpy(&value, bytes + 4 * i, sizeof value);  // an unaligned load, vectorised like any other
        dst[i] = value * gain + offset;
    }
}
