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

#endif
