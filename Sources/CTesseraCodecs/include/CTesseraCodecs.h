// CTesseraCodecs: the only code in Tessera that calls libpng, libjpeg and libwebp, and the only code that uses
// setjmp/longjmp. Both libraries report fatal errors by jumping (libjpeg's default handler even calls
// exit()); no jump may cross a Swift frame, so every library call sits inside one C function per
// operation that sets its own jump target, and returns a status plus the library's own message.
// Every exported name carries the CTesseraCodecs_ prefix.
#ifndef CTESSERACODECS_H
#define CTESSERACODECS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Status of every codec call.
typedef enum {
    CTesseraCodecs_ok = 0,
    /// The data is corrupt or not of the expected format; the message says why.
    CTesseraCodecs_error = 1,
    /// Valid data the linked library cannot decode (12-bit or lossless JPEG in libjpeg-turbo 2.1).
    CTesseraCodecs_unsupported = 2,
    /// Decoding stopped early (truncated or corrupt data) but the rows decoded so far are in the buffer.
    CTesseraCodecs_partial = 3,
    /// Out of memory or a misuse of the API.
    CTesseraCodecs_internal = 4,
} CTesseraCodecs_status;

// ---- JPEG -----------------------------------------------------------------------------------------

/// What a JPEG header says.
typedef struct {
    int width, height;            ///< stored size in pixels
    int components;               ///< components in the file (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK)
    int color_space;              ///< 1 grey, 2 RGB, 3 YCbCr, 4 CMYK, 5 YCCK (libjpeg's J_COLOR_SPACE)
    int saw_adobe_marker;         ///< an APP14 Adobe marker was present (Adobe CMYK is stored inverted)
    int progressive;              ///< progressive (SOF2/SOF6/SOF10) rather than sequential
    int arithmetic;               ///< arithmetic rather than Huffman entropy coding
    const uint8_t *exif;          ///< the first APP1 "Exif\0\0" payload (after those 6 bytes), or NULL
    size_t exif_size;
} CTesseraCodecs_jpeg_header;

/// An open JPEG decoder (opaque). Create one per decode; it is not thread-safe.
typedef struct CTesseraCodecs_jpeg CTesseraCodecs_jpeg;

/// Creates a decoder over `size` bytes at `data` (not copied: they must outlive the decoder).
CTesseraCodecs_jpeg *CTesseraCodecs_jpeg_create(const uint8_t *data, size_t size);
/// Frees the decoder and everything libjpeg allocated.
void CTesseraCodecs_jpeg_destroy(CTesseraCodecs_jpeg *decoder);
/// Reads the header (and saves APP1 markers for EXIF). With `strict`, a libjpeg warning is an error.
int CTesseraCodecs_jpeg_read_header(CTesseraCodecs_jpeg *decoder, int strict, CTesseraCodecs_jpeg_header *header,
                                    char *message, size_t message_capacity);
/// Starts decompression at scale `scale_num`/8 (1...8), producing `output_components` per pixel:
/// 1 (grey sources only), 3 (RGB) or 4 (CMYK/YCCK sources, as stored). Reports the output size.
int CTesseraCodecs_jpeg_start(CTesseraCodecs_jpeg *decoder, int scale_num, int output_components,
                              int *output_width, int *output_height, char *message, size_t message_capacity);
/// Decodes every scanline into `pixels` (rows `stride` bytes apart) and finishes. With `strict`, a
/// libjpeg warning (corrupt data, premature end of data) is an error; otherwise the status is
/// `partial` and the pixels are what libjpeg produced (it fills missing data with grey).
/// `warnings` receives libjpeg's warning count.
int CTesseraCodecs_jpeg_read(CTesseraCodecs_jpeg *decoder, uint8_t *pixels, size_t stride, int strict,
                             int *warnings, char *message, size_t message_capacity);

/// Baseline for benchmarks: a plain full-size libjpeg decode to RGB (create, header, scanlines into one
/// row buffer, finish, destroy), with no Tessera work around it. Returns a status.
int CTesseraCodecs_jpeg_plain_decode(const uint8_t *data, size_t size, int scale_num);

// ---- PNG ------------------------------------------------------------------------------------------

/// What a PNG header says.
typedef struct {
    int width, height;
    int bit_depth;                ///< 1, 2, 4, 8 or 16
    int color_type;               ///< 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA
    int interlaced;               ///< Adam7
    int has_trns;                 ///< a tRNS chunk (palette or single-colour transparency)
} CTesseraCodecs_png_header;

typedef struct CTesseraCodecs_png CTesseraCodecs_png;

/// Creates a decoder over `size` bytes at `data` (not copied).
CTesseraCodecs_png *CTesseraCodecs_png_create(const uint8_t *data, size_t size);
void CTesseraCodecs_png_destroy(CTesseraCodecs_png *decoder);
/// Checks the signature and reads every chunk up to the image data.
int CTesseraCodecs_png_read_header(CTesseraCodecs_png *decoder, CTesseraCodecs_png_header *header,
                                   char *message, size_t message_capacity);
/// Sets up the output: palette expanded to RGB, 1/2/4-bit grey scaled to 8 bits; alpha (from an alpha
/// channel, or from tRNS when `keep_alpha`) kept only when `keep_alpha`; 16-bit samples reduced to their
/// high byte, except 16-bit grey (without tRNS-made alpha) when `grey16_native`: 16-bit, host order.
/// Reports components per pixel (1-4) and bytes per sample (1 or 2).
int CTesseraCodecs_png_start(CTesseraCodecs_png *decoder, int keep_alpha, int grey16_native,
                             int *components, int *bytes_per_sample, char *message, size_t message_capacity);
/// Where `CTesseraCodecs_png_read` takes rows from. By default (`fastest`), 8-bit non-interlaced grey,
/// grey+alpha, RGB and RGBA rows are inflated (whole with libdeflate, or in strips with zlib) and
/// unfiltered by Tessera's own faster path; tests pin `zlib_strips` or `libpng` (every row from libpng,
/// the reference) to hold the paths to one another. Choose before start.
enum {
    CTesseraCodecs_png_rows_fastest = 0,
    CTesseraCodecs_png_rows_whole_image = 1,
    CTesseraCodecs_png_rows_zlib_strips = 2,
    CTesseraCodecs_png_rows_libpng = 3,
};
void CTesseraCodecs_png_choose_rows(CTesseraCodecs_png *decoder, int row_path);
/// The path the last read took rows from (whole_image, zlib_strips or libpng; fastest before a read).
int CTesseraCodecs_png_rows_used(const CTesseraCodecs_png *decoder);
/// Decodes all rows (every Adam7 pass) into `pixels`, rows `stride` bytes apart. On corrupt or truncated
/// data: an error, or with `accept_partial` the status `partial` (rows not reached stay as they were).
int CTesseraCodecs_png_read(CTesseraCodecs_png *decoder, uint8_t *pixels, size_t stride, int accept_partial,
                            char *message, size_t message_capacity);

/// Baseline for benchmarks: a plain libpng decode of the whole image (8-bit, alpha stripped), nothing else.
int CTesseraCodecs_png_plain_decode(const uint8_t *data, size_t size);

/// Encodes 8-bit pixels (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) as a PNG in memory. On success `*output`
/// is a malloc'd buffer of `*output_size` bytes that the caller frees with CTesseraCodecs_free.
int CTesseraCodecs_png_encode(const uint8_t *pixels, int width, int height, int components, size_t stride,
                              uint8_t **output, size_t *output_size, char *message, size_t message_capacity);

// ---- WebP -----------------------------------------------------------------------------------------

/// What a WebP file's header says.
typedef struct {
    int width, height;            ///< canvas size in pixels
    int has_alpha;                ///< an alpha channel (or an animation, whose canvas may be transparent)
    int animated;                 ///< an animation: the first frame is what decoding gives, as Pillow does
    int lossless;                 ///< VP8L rather than VP8 (for a still image)
} CTesseraCodecs_webp_header;

/// Reads the header without decoding (libwebp's WebPGetFeatures): the size to check before allocating.
int CTesseraCodecs_webp_read_header(const uint8_t *data, size_t size, CTesseraCodecs_webp_header *header,
                                    char *message, size_t message_capacity);

/// Decodes the first frame onto an RGBA canvas of `width * height * 4` bytes (the header's size; another
/// canvas size is an error), through libwebp's animation decoder for every file (still or animated), as
/// Pillow decodes WebP.
int CTesseraCodecs_webp_decode(const uint8_t *data, size_t size, int width, int height, uint8_t *rgba,
                               char *message, size_t message_capacity);

/// Frees memory returned by this module.
void CTesseraCodecs_free(void *pointer);

#ifdef __cplusplus
}
#endif

#endif
