// The horizontal pass of Pillow-exact resampling for 3-byte pixels (see TesseraImage/Resample.swift for
// the arithmetic and its reference). Swift compiles for x86-64's SSE2 baseline, which has no 32-bit
// vector multiply; here one pixel's three channels go through one SSE4.1 multiply-add per tap.
#include "CTesseraKernels.h"

#include <string.h>

#if defined(__x86_64__)
#include <smmintrin.h>
#endif

enum { precision_bits = 22 };

static inline uint8_t clip_fixed(int32_t value) {
    if (value >= (int32_t)1 << (precision_bits + 8)) return 255;
    if (value <= 0) return 0;
    return (uint8_t)(value >> precision_bits);
}

static void resample_row_rgb_scalar(const uint8_t *src, uint8_t *dst, const int32_t *first, const int32_t *taps,
                                    const int32_t *weights, size_t kernel_size, size_t count) {
    const uint32_t half = 1u << (precision_bits - 1);
    for (size_t xx = 0; xx < count; xx++) {
        const uint8_t *p = src + (size_t)first[xx] * 3;
        const int32_t *w = weights + xx * kernel_size;
        uint32_t s0 = half, s1 = half, s2 = half;  // unsigned: wrapping, as the Swift reference
        for (int32_t t = 0; t < taps[xx]; t++, p += 3) {
            s0 += (uint32_t)p[0] * (uint32_t)w[t];
            s1 += (uint32_t)p[1] * (uint32_t)w[t];
            s2 += (uint32_t)p[2] * (uint32_t)w[t];
        }
        dst[3 * xx] = clip_fixed((int32_t)s0);
        dst[3 * xx + 1] = clip_fixed((int32_t)s1);
        dst[3 * xx + 2] = clip_fixed((int32_t)s2);
    }
}

#if defined(__x86_64__)
__attribute__((target("sse4.1")))
static inline __m128i pixel_lanes(const uint8_t *p, int whole_word) {
    uint32_t word = 0;
    if (whole_word) memcpy(&word, p, 4); else memcpy(&word, p, 3);
    return _mm_cvtepu8_epi32(_mm_cvtsi32_si128((int)word));
}

__attribute__((target("sse4.1")))
static void resample_row_rgb_sse41(const uint8_t *src, size_t src_pixels, uint8_t *dst, const int32_t *first,
                                   const int32_t *taps, const int32_t *weights, size_t kernel_size, size_t count) {
    const __m128i half = _mm_set1_epi32(1 << (precision_bits - 1));
    for (size_t xx = 0; xx < count; xx++) {
        const uint8_t *p = src + (size_t)first[xx] * 3;
        const int32_t *w = weights + xx * kernel_size;
        // A 4-byte load reads one byte past the pixel: fine except on the row's last pixel.
        size_t n = (size_t)taps[xx], last = (size_t)first[xx] + n;
        size_t whole = last < src_pixels ? n : n - 1;
        __m128i acc = half;
        size_t t = 0;
        for (; t < whole; t++, p += 3) {
            acc = _mm_add_epi32(acc, _mm_mullo_epi32(pixel_lanes(p, 1), _mm_set1_epi32(w[t])));
        }
        for (; t < n; t++, p += 3) {
            acc = _mm_add_epi32(acc, _mm_mullo_epi32(pixel_lanes(p, 0), _mm_set1_epi32(w[t])));
        }
        // Pillow's clip: >> 22, negative to 0, 256 and above to 255 (both packs saturate).
        __m128i shifted = _mm_srai_epi32(acc, precision_bits);
        __m128i bytes = _mm_packus_epi16(_mm_packs_epi32(shifted, shifted), _mm_setzero_si128());
        uint32_t word = (uint32_t)_mm_cvtsi128_si32(bytes);
        memcpy(dst + 3 * xx, &word, 3);
    }
}
#endif

void tessera_resample_row_rgb(const uint8_t *src, size_t src_pixels, uint8_t *dst, const int32_t *first,
                              const int32_t *taps, const int32_t *weights, size_t kernel_size, size_t count,
                              int allow_simd) {
#if defined(__x86_64__)
    if (allow_simd && __builtin_cpu_supports("sse4.1")) {
        resample_row_rgb_sse41(src, src_pixels, dst, first, taps, weights, kernel_size, count);
        return;
    }
#endif
    (void)src_pixels;
    (void)allow_simd;
    resample_row_rgb_scalar(src, dst, first, taps, weights, kernel_size, count);
}
