// PNG row unfiltering for 8-bit samples (internal to CTesseraCodecs).
#ifndef CTESSERACODECS_PNG_UNFILTER_H
#define CTESSERACODECS_PNG_UNFILTER_H
#include <stddef.h>
#include <stdint.h>

/// Reverses filter type `filter` (0-4) on `row` (`length` bytes, `bpp` bytes per pixel) in place, with
/// `prior` the previous row already unfiltered (zeros for the first row). Returns 0 for an unknown filter.
int ctc_png_unfilter_row(int filter, uint8_t *row, const uint8_t *prior, size_t length, size_t bpp);
/// Reverses Paeth on two consecutive rows, `row` (below `prior`) and `next` (below `row`), both in place,
/// faster than one after the other. Returns 0, touching nothing, where it has no fast path (then unfilter
/// them one by one).
int ctc_png_unfilter_paeth_pair(uint8_t *row, uint8_t *next, const uint8_t *prior, size_t length, size_t bpp);
#endif
