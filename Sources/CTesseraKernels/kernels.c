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

// e^x for x <= 0 (softmax after subtracting the row's maximum): x = n ln2 + r with |r| <= ln2 / 2, e^r by a
// degree-6 Taylor polynomial (truncation error below 1.5e-7 relative), 2^n put into the exponent bits.
// Below -87 the result is 0 (e^-87 is under float's smallest normal).
static inline float exp_nonpositive(float input) {
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    float x = input < -87.0f ? -87.0f : input;  // a NaN stays NaN and comes out NaN
    // fmaxf drops a NaN, so the conversion below is always of a number in [-126, 0].
    float n = fmaxf(__builtin_roundevenf(x * log2e), -126.0f);
    float r = (x - n * ln2_hi) - n * ln2_lo;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { float f; int32_t i; } scale = { .i = ((int32_t)n + 127) << 23 };
    float result = p * scale.f;
    return input < -87.0f ? 0.0f : result;
}

#define TESSERA_LANES 16

TESSERA_CLONES
float tessera_softmax_cross_entropy_row(const float *restrict x, float *restrict gradient, size_t classes, size_t target, float scale) {
    float lane_max[TESSERA_LANES];
    for (size_t l = 0; l < TESSERA_LANES; l++) lane_max[l] = x[0];
    size_t body = classes - classes % TESSERA_LANES;
    for (size_t c = 0; c < body; c += TESSERA_LANES)
        for (size_t l = 0; l < TESSERA_LANES; l++) lane_max[l] = x[c + l] > lane_max[l] ? x[c + l] : lane_max[l];
    float m = x[0];
    for (size_t l = 0; l < TESSERA_LANES; l++) m = lane_max[l] > m ? lane_max[l] : m;
    for (size_t c = body; c < classes; c++) m = x[c] > m ? x[c] : m;

    float lane_sum[TESSERA_LANES] = {0};
    for (size_t c = 0; c < body; c += TESSERA_LANES)
        for (size_t l = 0; l < TESSERA_LANES; l++) {
            float e = exp_nonpositive(x[c + l] - m);
            gradient[c + l] = e;
            lane_sum[l] += e;
        }
    float sum = 0;
    for (size_t l = 0; l < TESSERA_LANES; l++) sum += lane_sum[l];
    for (size_t c = body; c < classes; c++) {
        float e = exp_nonpositive(x[c] - m);
        gradient[c] = e;
        sum += e;
    }
    float inverse = scale / sum;
    for (size_t c = 0; c < classes; c++) gradient[c] *= inverse;
    gradient[target] -= scale;
    return logf(sum) + m - x[target];
}
