// Element-wise kernels that want the machine's widest vectors. Swift compiles for the x86-64 baseline
// (SSE2) and has no per-function target attribute; these C functions are built once per instruction set
// (target_clones) and the loader picks the best the CPU supports when the program starts.
#ifndef CTESSERA_KERNELS_H
#define CTESSERA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// dst[i] = src[i] * gain + offset, for bytes (image pixels) into floats.
void tessera_affine_u8_f32(const uint8_t *src, float *dst, size_t count, float gain, float offset);

/// dst[i] = src[i] * gain + offset; src need not be aligned (rows inside a safetensors file).
void tessera_affine_f32_f32(const void *src, float *dst, size_t count, float gain, float offset);

/// The constants of one Adam or AdamW step (see tessera_adam_f32).
typedef struct {
    float gradient_scale;   // gradient clipping factor (1: none)
    float decay;            // AdamW: 1 - lr * weight_decay (1 for Adam)
    float l2;               // Adam: weight decay added to the gradient (0 for AdamW)
    float one_minus_beta1, beta2, one_minus_beta2;
    float step_size;        // lr / (1 - beta1^t)
    float root_bias2;       // sqrt(1 - beta2^t)
    float epsilon;
    int decoupled;          // 1: AdamW
} tessera_adam_step;

/// One Adam (or AdamW) step over `count` parameters, with torch.optim.Adam's single-tensor arithmetic,
/// operation for operation: d = g * scale (+ l2 * p); m += (1 - b1)(d - m); v = v b2 + (1 - b2) d d;
/// p -= step_size * (m / (sqrt(v) / root_bias2 + eps)).
void tessera_adam_f32(float *p, const float *g, float *m, float *v, size_t count, const tessera_adam_step *step);

/// One row of softmax cross-entropy: writes softmax(x) * scale into `gradient` (then subtracts `scale` at
/// `target`) and returns -log softmax(x)[target]. exp is evaluated by a polynomial (relative error below
/// 2e-7) in 16 fixed lanes, and the lanes are summed in a fixed order, so every vector width gives the same
/// bits. `target` must be in [0, classes).
float tessera_softmax_cross_entropy_row(const float *x, float *gradient, size_t classes, size_t target, float scale);

/// One row of the horizontal pass of Pillow-exact resampling, 3-byte pixels: for each of `count` outputs,
/// `taps[i]` pixels from `first[i]` weighted by `weights[i * kernel_size ...]` (22-bit fixed point), then
/// Pillow's clip. `src` holds `src_pixels` pixels. `allow_simd` 1: the widest the CPU has (AVX2, SSE4.1),
/// 2: at most SSE4.1, 0: scalar; all give the same bytes.
void tessera_resample_row_rgb(const uint8_t *src, size_t src_pixels, uint8_t *dst, const int32_t *first,
                              const int32_t *taps, const int32_t *weights, size_t kernel_size, size_t count,
                              int allow_simd);

/// One output row of the vertical pass of Pillow-exact resampling: `acc[i]` = half + sum over `taps`
/// consecutive rows of `src` (each `row_samples` bytes) of row[i] * weights[t] (22-bit fixed point,
/// wrapping), then Pillow's clip into `out`. `acc` is scratch of `row_samples` values.
void tessera_resample_rows_u8(const uint8_t *src, size_t row_samples, size_t taps, const int32_t *weights,
                              int32_t *acc, uint8_t *out);

#endif
