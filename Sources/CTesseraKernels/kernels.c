#include "CTesseraKernels.h"

#include <math.h>
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

// sqrtf would keep errno semantics (a scalar call for negative inputs) and stop vectorisation; the
// element-wise builtin is the IEEE square root on every lane.
#if defined(__clang__) && __has_builtin(__builtin_elementwise_sqrt)
#define TESSERA_SQRT(x) __builtin_elementwise_sqrt(x)
#else
#define TESSERA_SQRT(x) sqrtf(x)
#endif

TESSERA_CLONES
void tessera_adam_f32(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t count,
                      const tessera_adam_step *step) {
    const tessera_adam_step k = *step;
    // Two loops rather than a branch inside one, so that each vectorises.
    if (k.decoupled) {
        for (size_t i = 0; i < count; i++) {
            float d = g[i] * k.gradient_scale;
            float w = p[i] * k.decay;
            float mi = m[i] + k.one_minus_beta1 * (d - m[i]);
            float vi = v[i] * k.beta2 + k.one_minus_beta2 * d * d;
            m[i] = mi;
            v[i] = vi;
            p[i] = w - k.step_size * (mi / (TESSERA_SQRT(vi) / k.root_bias2 + k.epsilon));
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            float w = p[i];
            float d = g[i] * k.gradient_scale;
            if (k.l2 != 0) d += k.l2 * w;
            float mi = m[i] + k.one_minus_beta1 * (d - m[i]);
            float vi = v[i] * k.beta2 + k.one_minus_beta2 * d * d;
            m[i] = mi;
            v[i] = vi;
            p[i] = w - k.step_size * (mi / (TESSERA_SQRT(vi) / k.root_bias2 + k.epsilon));
        }
    }
}
