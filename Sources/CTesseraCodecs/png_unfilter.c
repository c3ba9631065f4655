// PNG row unfiltering (PNG spec, section 9 "Filtering") for 8-bit samples.
//
// Why Tessera does this instead of libpng: Debian builds libpng without its SIMD filter code, and its
// scalar Paeth loop was a third of a W1 PNG's decode time. Paeth for 3- and 4-byte pixels runs here in
// SSE4.1 (checked at run time; scalar otherwise), one pixel per step in 16-bit lanes; the other filters
// are short loops the compiler handles well. Tests hold the result to libpng's bit for bit.
#include "png_unfilter.h"

#include <string.h>

#if defined(__x86_64__)
#include <smmintrin.h>
#endif

static inline int ctc_abs(int value) { return value < 0 ? -value : value; }

// The predictor from left (a), above (b) and upper left (c), ties going to a, then b.
static inline uint8_t ctc_paeth(int a, int b, int c) {
    int pa = ctc_abs(b - c), pb = ctc_abs(a - c), pc = ctc_abs(a + b - 2 * c);
    if (pa <= pb && pa <= pc) return (uint8_t)a;
    return (uint8_t)(pb <= pc ? b : c);
}

static void ctc_paeth_scalar(uint8_t *row, const uint8_t *prior, size_t length, size_t bpp) {
    for (size_t i = 0; i < bpp && i < length; i++) row[i] = (uint8_t)(row[i] + prior[i]);
    for (size_t i = bpp; i < length; i++) {
        row[i] = (uint8_t)(row[i] + ctc_paeth(row[i - bpp], prior[i], prior[i - bpp]));
    }
}

#if defined(__x86_64__)
#define CTC_PAETH_SIMD 1
#define CTC_SSE41 __attribute__((target("ssse3,sse4.1")))

static inline CTC_SSE41 __m128i ctc_load_pixel(const uint8_t *p, size_t bpp) {
    uint32_t word = 0;
    memcpy(&word, p, bpp);
    return _mm_cvtepu8_epi16(_mm_cvtsi32_si128((int)word));
}

static inline CTC_SSE41 void ctc_store_pixel(uint8_t *p, __m128i lanes, size_t bpp) {
    uint32_t word = (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(lanes, lanes));
    memcpy(p, &word, bpp);
}

// Paeth's choice in every lane: a where pa <= min(pb, pc), else b where pb <= pc, else c (the spec's order of
// ties). |b - c| does not depend on a, the left neighbour just decoded, which keeps the chain through a short.
static inline CTC_SSE41 __m128i ctc_paeth_nearest(__m128i a, __m128i b, __m128i c) {
    __m128i b_minus_c = _mm_sub_epi16(b, c);
    __m128i pa = _mm_abs_epi16(b_minus_c);
    __m128i a_minus_c = _mm_sub_epi16(a, c);
    __m128i pb = _mm_abs_epi16(a_minus_c);
    __m128i pc = _mm_abs_epi16(_mm_add_epi16(a_minus_c, b_minus_c));
    __m128i b_or_c = _mm_blendv_epi8(b, c, _mm_cmpgt_epi16(pb, pc));
    return _mm_blendv_epi8(a, b_or_c, _mm_cmpgt_epi16(pa, _mm_min_epi16(pb, pc)));
}

// The same predictor on every channel of a pixel at once, in 16-bit lanes; bpp is 3 or 4, a constant
// after inlining (a variable-length memcpy would be a library call per pixel).
static inline __attribute__((always_inline)) CTC_SSE41 void ctc_paeth_sse41(uint8_t *row, const uint8_t *prior,
                                                                             size_t length, size_t bpp) {
    __m128i a = _mm_setzero_si128(), c = _mm_setzero_si128();
    for (size_t i = 0; i + bpp <= length; i += bpp) {
        __m128i b = ctc_load_pixel(prior + i, bpp);
        __m128i x = ctc_load_pixel(row + i, bpp);
        __m128i nearest = ctc_paeth_nearest(a, b, c);
        a = _mm_add_epi8(x, nearest);  // bytewise: the low byte wraps as the spec says, the high stays 0
        ctc_store_pixel(row + i, a, bpp);
        c = b;
    }
}

// Two consecutive Paeth rows at once, as a wavefront: each step decodes pixel j of `row` (low lanes) and
// pixel j - 1 of `next` (high lanes), whose above and upper-left pixels are `row`'s j - 1 and j - 2, both
// done by then. Two independent chains share one chain's latency: twice the pixels per step.
static inline __attribute__((always_inline)) CTC_SSE41 void ctc_paeth_pair_sse41(uint8_t *row, uint8_t *next,
                                                                                  const uint8_t *prior, size_t length,
                                                                                  size_t bpp) {
    size_t pixels = length / bpp;
    __m128i zero = _mm_setzero_si128();
    __m128i a = zero, c = zero, decoded = zero;
    for (size_t j = 0; j <= pixels; j++) {
        __m128i above = j < pixels ? ctc_load_pixel(prior + j * bpp, bpp) : zero;
        __m128i filtered = j < pixels ? ctc_load_pixel(row + j * bpp, bpp) : zero;
        __m128i next_filtered = j > 0 ? ctc_load_pixel(next + (j - 1) * bpp, bpp) : zero;
        // The high lanes' "above" is row's pixel j - 1, decoded in the previous step (zeros at j = 0).
        __m128i b = _mm_unpacklo_epi64(above, decoded);
        __m128i x = _mm_unpacklo_epi64(filtered, next_filtered);
        __m128i nearest = ctc_paeth_nearest(a, b, c);
        decoded = _mm_add_epi8(x, nearest);
        uint64_t both = (uint64_t)_mm_cvtsi128_si64(_mm_packus_epi16(decoded, decoded));
        uint32_t low = (uint32_t)both, high = (uint32_t)(both >> 32);
        if (j < pixels) memcpy(row + j * bpp, &low, bpp);
        if (j > 0) memcpy(next + (j - 1) * bpp, &high, bpp);
        a = decoded;
        c = b;
    }
}

static CTC_SSE41 void ctc_paeth_pair3_sse41(uint8_t *row, uint8_t *next, const uint8_t *prior, size_t length) {
    ctc_paeth_pair_sse41(row, next, prior, length, 3);
}

static CTC_SSE41 void ctc_paeth_pair4_sse41(uint8_t *row, uint8_t *next, const uint8_t *prior, size_t length) {
    ctc_paeth_pair_sse41(row, next, prior, length, 4);
}

static CTC_SSE41 void ctc_paeth3_sse41(uint8_t *row, const uint8_t *prior, size_t length) {
    ctc_paeth_sse41(row, prior, length, 3);
}

static CTC_SSE41 void ctc_paeth4_sse41(uint8_t *row, const uint8_t *prior, size_t length) {
    ctc_paeth_sse41(row, prior, length, 4);
}
#endif

int ctc_png_unfilter_row(int filter, uint8_t *row, const uint8_t *prior, size_t length, size_t bpp) {
    switch (filter) {
    case 0:  // None
        return 1;
    case 1:  // Sub
        for (size_t i = bpp; i < length; i++) row[i] = (uint8_t)(row[i] + row[i - bpp]);
        return 1;
    case 2:  // Up
        for (size_t i = 0; i < length; i++) row[i] = (uint8_t)(row[i] + prior[i]);
        return 1;
    case 3:  // Average
        for (size_t i = 0; i < bpp && i < length; i++) row[i] = (uint8_t)(row[i] + (prior[i] >> 1));
        for (size_t i = bpp; i < length; i++) row[i] = (uint8_t)(row[i] + ((row[i - bpp] + prior[i]) >> 1));
        return 1;
    case 4:  // Paeth
#if defined(CTC_PAETH_SIMD)
        if ((bpp == 3 || bpp == 4) && __builtin_cpu_supports("sse4.1")) {
            if (bpp == 3) ctc_paeth3_sse41(row, prior, length);
            else ctc_paeth4_sse41(row, prior, length);
            return 1;
        }
#endif
        ctc_paeth_scalar(row, prior, length, bpp);
        return 1;
    default:
        return 0;
    }
}

int ctc_png_unfilter_paeth_pair(uint8_t *row, uint8_t *next, const uint8_t *prior, size_t length, size_t bpp) {
#if defined(CTC_PAETH_SIMD)
    if ((bpp == 3 || bpp == 4) && __builtin_cpu_supports("sse4.1")) {
        if (bpp == 3) ctc_paeth_pair3_sse41(row, next, prior, length);
        else ctc_paeth_pair4_sse41(row, next, prior, length);
        return 1;
    }
#endif
    (void)row;
    (void)next;
    (void)prior;
    (void)length;
    return 0;
}
