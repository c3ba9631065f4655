// The horizontal pass of Pillow-exact resampling for 3-byte pixels (see TesseraImage/Resample.swift for
// the arithmetic and its reference). Swift compiles for x86-64's SSE2 baseline, which has no 32-bit
// vector multiply; here one pixel's three channels go through one SSE4.1 multiply-add per tap, or two
// pixels through one AVX2 multiply-add.
#include "CTesseraKernels.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { precision_bits = 22 };

#if defined(__x86_64__) && defined(__clang__)
#define TESSERA_RESAMPLE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TESSERA_RESAMPLE_CLONES
#endif

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

// Two taps per step: pixel t in lanes 0-3 and pixel t+1 in lanes 4-7 of one 8-lane multiply-add; the
// halves are added at the end. Integer sums wrap the same in any order, so the bytes equal the scalar path.
__attribute__((target("avx2")))
static void resample_row_rgb_avx2(const uint8_t *src, size_t src_pixels, uint8_t *dst, const int32_t *first,
                                  const int32_t *taps, const int32_t *weights, size_t kernel_size, size_t count) {
    const __m128i half = _mm_set1_epi32(1 << (precision_bits - 1));
    const __m128i spread = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i pair_weights = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    const size_t row_bytes = src_pixels * 3;
    for (size_t xx = 0; xx < count; xx++) {
        const size_t start = (size_t)first[xx], n = (size_t)taps[xx];
        const uint8_t *p = src + start * 3;
        const int32_t *w = weights + xx * kernel_size;
        __m256i pairs = _mm256_setzero_si256();
        size_t t = 0;
        // An 8-byte load covers two pixels and two bytes more: only while those stay inside the row.
        for (; t + 2 <= n && (start + t) * 3 + 8 <= row_bytes; t += 2, p += 6) {
            __m128i bytes = _mm_shuffle_epi8(_mm_loadl_epi64((const __m128i *)(const void *)p), spread);
            __m256i lanes = _mm256_cvtepu8_epi32(bytes);
            __m256i wv = _mm256_permutevar8x32_epi32(_mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)(const void *)(w + t))),
                                                     pair_weights);
            pairs = _mm256_add_epi32(pairs, _mm256_mullo_epi32(lanes, wv));
        }
        __m128i acc = _mm_add_epi32(half, _mm_add_epi32(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1)));
        for (; t < n; t++, p += 3) {
            acc = _mm_add_epi32(acc, _mm_mullo_epi32(pixel_lanes(p, start + t + 1 < src_pixels), _mm_set1_epi32(w[t])));
        }
        __m128i shifted = _mm_srai_epi32(acc, precision_bits);
        __m128i packed = _mm_packus_epi16(_mm_packs_epi32(shifted, shifted), _mm_setzero_si128());
        uint32_t word = (uint32_t)_mm_cvtsi128_si32(packed);
        memcpy(dst + 3 * xx, &word, 3);
    }
}
#endif

void tessera_resample_row_rgb(const uint8_t *src, size_t src_pixels, uint8_t *dst, const int32_t *first,
                              const int32_t *taps, const int32_t *weights, size_t kernel_size, size_t count,
                              int allow_simd) {
#if defined(__x86_64__)
    if (allow_simd == 1 && __builtin_cpu_supports("avx2")) {
        resample_row_rgb_avx2(src, src_pixels, dst, first, taps, weights, kernel_size, count);
        return;
    }
    if (allow_simd && __builtin_cpu_supports("sse4.1")) {
        resample_row_rgb_sse41(src, src_pixels, dst, first, taps, weights, kernel_size, count);
        return;
    }
#endif
    (void)src_pixels;
    (void)allow_simd;
    resample_row_rgb_scalar(src, dst, first, taps, weights, kernel_size, count);
}

// The vertical pass (Resample.swift's reference arithmetic): integer products and wrapping sums, the
// same bytes from every clone; Swift's SSE2 baseline has no 32-bit vector multiply.
TESSERA_RESAMPLE_CLONES
void tessera_resample_rows_u8(const uint8_t *restrict src, size_t row_samples, size_t taps, const int32_t *restrict weights,
                              int32_t *restrict acc, uint8_t *restrict out) {
    const int32_t half = 1 << (precision_bits - 1);
    for (size_t i = 0; i < row_samples; i++) acc[i] = half;
    for (size_t t = 0; t < taps; t++) {
        const uint8_t *row = src + t * row_samples;
        const uint32_t wt = (uint32_t)weights[t];
        for (size_t i = 0; i < row_samples; i++) acc[i] = (int32_t)((uint32_t)acc[i] + (uint32_t)row[i] * wt);
    }
    for (size_t i = 0; i < row_samples; i++) out[i] = clip_fixed(acc[i]);
}
