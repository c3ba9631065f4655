// PNG decoding and encoding through libpng, with every libpng call under a setjmp in this file.
#include "CTesseraCodecs.h"
#include "message.h"

#include <setjmp.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <png.h>
#include <zlib.h>
#include <libdeflate.h>

#include "png_unfilter.h"

struct CTesseraCodecs_png {
    png_structp png;
    png_infop info;
    const uint8_t *data;
    size_t size;
    size_t offset;
    char error[256];      // libpng's message from the last error
    int failed;
    int header_read;
    int started;
    int passes;
    png_uint_32 width, height;
    int row_path;         // CTesseraCodecs_png_rows_*: tests pin one path to compare it with the others
    int rows_used;        // the path the read took
    int direct;           // rows inflated and unfiltered here (see ctc_png_read_direct)
    int channels;         // samples per pixel in the file (direct path)
    int components;       // samples per pixel delivered (direct path: channels, or channels - 1)
};

static void ctc_png_error(png_structp png, png_const_charp text) {
    struct CTesseraCodecs_png *decoder = png_get_error_ptr(png);
    if (decoder != NULL) ctc_message(decoder->error, sizeof decoder->error, text);
    png_longjmp(png, 1);
}

static void ctc_png_warning(png_structp png, png_const_charp text) {
    // Warnings concern ancillary chunks (bad iCCP, ...), which Tessera ignores as Pillow does.
    (void)png;
    (void)text;
}

// The complaint about a file that ends too soon, from libpng's reads and from the direct path's.
static const char ctc_truncated[] = "unexpected end of data (truncated PNG)";

static void ctc_png_read_data(png_structp png, png_bytep out, size_t length) {
    struct CTesseraCodecs_png *decoder = png_get_io_ptr(png);
    if (decoder->size - decoder->offset < length) {
        png_error(png, ctc_truncated);
    }
    memcpy(out, decoder->data + decoder->offset, length);
    decoder->offset += length;
}

CTesseraCodecs_png *CTesseraCodecs_png_create(const uint8_t *data, size_t size) {
    struct CTesseraCodecs_png *decoder = calloc(1, sizeof *decoder);
    if (decoder == NULL) return NULL;
    decoder->data = data;
    decoder->size = size;
    decoder->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, decoder, ctc_png_error, ctc_png_warning);
    if (decoder->png == NULL) {
        free(decoder);
        return NULL;
    }
    decoder->info = png_create_info_struct(decoder->png);
    if (decoder->info == NULL) {
        png_destroy_read_struct(&decoder->png, NULL, NULL);
        free(decoder);
        return NULL;
    }
    return decoder;
}

void CTesseraCodecs_png_destroy(CTesseraCodecs_png *decoder) {
    if (decoder == NULL) return;
    png_destroy_read_struct(&decoder->png, &decoder->info, NULL);
    free(decoder);
}

static int ctc_png_failure(struct CTesseraCodecs_png *decoder, char *message, size_t capacity) {
    decoder->failed = 1;
    ctc_message(message, capacity, decoder->error[0] ? decoder->error : "libpng failed without a message");
    return CTesseraCodecs_error;
}

int CTesseraCodecs_png_read_header(CTesseraCodecs_png *decoder, CTesseraCodecs_png_header *header,
                                   char *message, size_t capacity) {
    if (decoder == NULL || decoder->header_read || decoder->failed) {
        ctc_message(message, capacity, "internal: PNG decoder misused");
        return CTesseraCodecs_internal;
    }
    if (setjmp(png_jmpbuf(decoder->png))) return ctc_png_failure(decoder, message, capacity);
    png_set_read_fn(decoder->png, decoder, ctc_png_read_data);
#ifdef PNG_IGNORE_ADLER32
    // Every chunk's CRC-32 is still checked (a damaged IDAT is refused); zlib's Adler-32 over the same
    // bytes adds nothing but time (4% of a PNG decode).
    png_set_option(decoder->png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
    png_read_info(decoder->png, decoder->info);
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(decoder->png, decoder->info, &decoder->width, &decoder->height, &bit_depth, &color_type,
                 &interlace, NULL, NULL);
    memset(header, 0, sizeof *header);
    header->width = (int)decoder->width;
    header->height = (int)decoder->height;
    header->bit_depth = bit_depth;
    header->color_type = color_type;
    header->interlaced = interlace != PNG_INTERLACE_NONE;
    header->has_trns = png_get_valid(decoder->png, decoder->info, PNG_INFO_tRNS) != 0;
    decoder->header_read = 1;
    return CTesseraCodecs_ok;
}

int CTesseraCodecs_png_start(CTesseraCodecs_png *decoder, int keep_alpha, int grey16_native, int *components,
                             int *bytes_per_sample, char *message, size_t capacity) {
    if (decoder == NULL || !decoder->header_read || decoder->failed || decoder->started) {
        ctc_message(message, capacity, "internal: PNG decoder misused");
        return CTesseraCodecs_internal;
    }
    if (setjmp(png_jmpbuf(decoder->png))) return ctc_png_failure(decoder, message, capacity);
    png_structp png = decoder->png;
    int color_type = png_get_color_type(png, decoder->info);
    int bit_depth = png_get_bit_depth(png, decoder->info);
    int has_trns = png_get_valid(png, decoder->info, PNG_INFO_tRNS) != 0;
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (keep_alpha && has_trns) png_set_tRNS_to_alpha(png);
    if (!keep_alpha) png_set_strip_alpha(png);
    int native16 = grey16_native && !(keep_alpha && has_trns) && color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 16;
    if (bit_depth == 16) {
        if (native16) {
            png_set_swap(png);  // host (little-endian) order for the caller
        } else {
            png_set_strip_16(png);  // the high byte, as Pillow unpacks 16-bit RGB, LA and RGBA
        }
    }
    decoder->passes = png_set_interlace_handling(png);
    png_read_update_info(png, decoder->info);
    *components = png_get_channels(png, decoder->info);
    int file_channels = color_type == PNG_COLOR_TYPE_GRAY ? 1 : color_type == PNG_COLOR_TYPE_RGB ? 3
                      : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : color_type == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 0;
    decoder->direct = decoder->row_path != CTesseraCodecs_png_rows_libpng && bit_depth == 8 && decoder->passes == 1 && file_channels > 0
                      && decoder->width <= (1u << 28)
                      && !(keep_alpha && has_trns)
                      && (*components == file_channels || (!keep_alpha && *components == file_channels - 1));
    decoder->channels = file_channels;
    decoder->components = *components;
    *bytes_per_sample = native16 ? 2 : 1;
    decoder->started = 1;
    return CTesseraCodecs_ok;
}

void CTesseraCodecs_png_choose_rows(CTesseraCodecs_png *decoder, int row_path) {
    if (decoder != NULL) decoder->row_path = row_path;
}

int CTesseraCodecs_png_rows_used(const CTesseraCodecs_png *decoder) {
    return decoder != NULL ? decoder->rows_used : CTesseraCodecs_png_rows_fastest;
}

// ---- the direct path: IDAT chunks inflated here, rows unfiltered by png_unfilter.c -----------------
//
// libpng has read and checked every chunk up to the first IDAT (signature, IHDR, PLTE, tRNS, CRCs) and
// stopped just after that IDAT's length and type. For 8-bit, non-interlaced grey, grey+alpha, RGB and
// RGBA, the rest is done here: libpng inflates one row per zlib call and unfilters with scalar code;
// inflating many rows per call and unfiltering with SSE4.1 (png_unfilter.c) decodes a W1 PNG in about
// half the time. Two ways to inflate:
// - whole image: every IDAT's data in one libdeflate call (1.85x zlib's speed on W1's PNGs), taken only
//   for a file whose IDATs are complete, CRC-clean and inflate to exactly the image;
// - strips: zlib, about 256 kB of rows at a time, for everything else (very large images, damaged
//   files). Its errors mirror libpng's (a CRC error on an IDAT, zlib's complaint, a bad filter byte, too
//   little data), and with `accept_partial` it keeps the rows before the damage, as libpng does.

static uint32_t ctc_be32(const uint8_t *bytes) {
    return (uint32_t)bytes[0] << 24 | (uint32_t)bytes[1] << 16 | (uint32_t)bytes[2] << 8 | (uint32_t)bytes[3];
}

typedef struct {
    struct CTesseraCodecs_png *decoder;
    size_t chunk_start;   // offset of the current IDAT's data
    size_t chunk_length;  // its length as the file states it
    int entered;          // the first IDAT has been handed to zlib
    const char *problem;  // why the input ended, when it did
} ctc_idat_reader;

// The CRC of the IDAT being read, checked once zlib has taken all of it, as libpng does (so with
// `accept_partial` the rows before a damaged chunk's end are kept, as libpng keeps them).
static const char *ctc_idat_crc_problem(const ctc_idat_reader *reader) {
    const uint8_t *data = reader->decoder->data;
    size_t size = reader->decoder->size, start = reader->chunk_start, length = reader->chunk_length;
    if (start > size || size - start < length + 4) return ctc_truncated;
    uLong crc = crc32(crc32(0L, Z_NULL, 0), data + start - 4, (uInt)(length + 4));
    return crc == ctc_be32(data + start + length) ? NULL : "IDAT: CRC error";
}

// Hands zlib the next IDAT's data (the first IDAT's on the first call), as much of it as the file
// holds, after checking the CRC of the one before. Returns 0, with `problem` set, when none can follow.
static int ctc_idat_next(ctc_idat_reader *reader, z_stream *stream) {
    struct CTesseraCodecs_png *decoder = reader->decoder;
    const uint8_t *data = decoder->data;
    size_t size = decoder->size;
    if (reader->entered) {
        if ((reader->problem = ctc_idat_crc_problem(reader)) != NULL) return 0;
        size_t header = reader->chunk_start + reader->chunk_length + 4;
        if (size - header < 8) {
            reader->problem = ctc_truncated;
            return 0;
        }
        if (memcmp(data + header + 4, "IDAT", 4) != 0) {
            reader->problem = "Not enough image data";
            return 0;
        }
        reader->chunk_length = ctc_be32(data + header);
        reader->chunk_start = header + 8;
    }
    reader->entered = 1;
    if (reader->chunk_length > PNG_UINT_31_MAX) {
        reader->problem = "PNG unsigned integer out of range";
        return 0;
    }
    size_t start = reader->chunk_start, length = reader->chunk_length;
    if (start > size) {
        reader->problem = ctc_truncated;
        return 0;
    }
    size_t available = size - start < length ? size - start : length;
    stream->next_in = (Bytef *)(data + start);
    stream->avail_in = (uInt)available;
    return 1;
}

static void ctc_emit_row(const uint8_t *row, uint8_t *out, size_t width, int channels, int components) {
    if (components == channels) {
        memcpy(out, row, width * (size_t)channels);
    } else if (channels == 4) {  // RGBA -> RGB, as png_set_strip_alpha
        for (size_t x = 0; x < width; x++) {
            out[3 * x] = row[4 * x];
            out[3 * x + 1] = row[4 * x + 1];
            out[3 * x + 2] = row[4 * x + 2];
        }
    } else {  // grey+alpha -> grey
        for (size_t x = 0; x < width; x++) out[x] = row[2 * x];
    }
}

// Unfilters `count` filtered rows (each a filter byte, then the row) in place, the first below `*prior`,
// and writes them to `pixels` from output row `*rows_done` on, advancing `*prior` and `*rows_done`.
// Returns the number of rows done: fewer than `count` when it meets a bad filter byte.
static size_t ctc_unfilter_rows(const struct CTesseraCodecs_png *decoder, uint8_t *filtered, size_t count,
                                const uint8_t **prior, uint8_t *pixels, size_t stride, size_t *rows_done) {
    size_t width = decoder->width, bpp = (size_t)decoder->channels, row_bytes = width * bpp;
    size_t filtered_bytes = row_bytes + 1;
    size_t r = 0;
    while (r < count) {
        uint8_t *row = filtered + r * filtered_bytes;
        uint8_t *next = row + filtered_bytes;
        if (r + 1 < count && row[0] == 4 && next[0] == 4
            && ctc_png_unfilter_paeth_pair(row + 1, next + 1, *prior, row_bytes, bpp)) {
            ctc_emit_row(row + 1, pixels + *rows_done * stride, width, decoder->channels, decoder->components);
            ctc_emit_row(next + 1, pixels + (*rows_done + 1) * stride, width, decoder->channels, decoder->components);
            *prior = next + 1;
            *rows_done += 2;
            r += 2;
            continue;
        }
        if (!ctc_png_unfilter_row(row[0], row + 1, *prior, row_bytes, bpp)) break;
        ctc_emit_row(row + 1, pixels + *rows_done * stride, width, decoder->channels, decoder->components);
        *prior = row + 1;
        *rows_done += 1;
        r++;
    }
    return r;
}

// Largest image (filtered bytes) inflated whole: beyond it the strips keep memory to the output's size.
#define CTC_WHOLE_IMAGE_LIMIT ((size_t)64 << 20)

// The whole-image path. Returns 1 when it decoded the image, 0 (nothing written to `pixels`) when the
// file is not one it takes: then the strip path runs and says what is wrong, if anything.
static int ctc_png_read_whole(struct CTesseraCodecs_png *decoder, uint8_t *pixels, size_t stride) {
    const uint8_t *data = decoder->data;
    size_t size = decoder->size;
    size_t row_bytes = (size_t)decoder->width * (size_t)decoder->channels, filtered_bytes = row_bytes + 1;
    if (decoder->height > CTC_WHOLE_IMAGE_LIMIT / filtered_bytes) return 0;
    size_t filtered_size = decoder->height * filtered_bytes;
    // The run of IDAT chunks, each complete with its CRC checked.
    size_t first = decoder->offset, start = first, length = ctc_be32(data + first - 8), total = 0, chunks = 0;
    for (;;) {
        if (length > PNG_UINT_31_MAX || start > size || size - start < length + 4) return 0;
        if (libdeflate_crc32(0, data + start - 4, length + 4) != ctc_be32(data + start + length)) return 0;
        total += length;
        chunks++;
        size_t header = start + length + 4;
        if (size - header < 8 || memcmp(data + header + 4, "IDAT", 4) != 0) break;
        length = ctc_be32(data + header);
        start = header + 8;
    }
    uint8_t *joined = NULL;
    if (chunks > 1) {
        if ((joined = malloc(total)) == NULL) return 0;
        // The chunks walked above again; a next chunk's header is read only while data is still due, so
        // never past the end of the file.
        size_t at = 0;
        start = first;
        length = ctc_be32(data + first - 8);
        for (;;) {
            memcpy(joined + at, data + start, length);
            at += length;
            if (at == total) break;
            start += length + 12;
            length = ctc_be32(data + start - 8);
        }
    }
    uint8_t *filtered = malloc(filtered_size);
    struct libdeflate_decompressor *inflater = libdeflate_alloc_decompressor();
    // A NULL actual size asks for exactly `filtered_size` bytes: a stream shorter or longer is refused.
    int whole = filtered != NULL && inflater != NULL
                && libdeflate_zlib_decompress(inflater, joined != NULL ? joined : data + first, total, filtered,
                                              filtered_size, NULL) == LIBDEFLATE_SUCCESS;
    libdeflate_free_decompressor(inflater);
    free(joined);
    for (size_t y = 0; whole && y < decoder->height; y++) whole = filtered[y * filtered_bytes] <= 4;
    if (whole) {
        uint8_t *zeros = calloc(row_bytes, 1);  // the row above the first
        const uint8_t *prior = zeros;
        size_t rows_done = 0;
        whole = zeros != NULL;
        if (whole) ctc_unfilter_rows(decoder, filtered, decoder->height, &prior, pixels, stride, &rows_done);
        free(zeros);
    }
    free(filtered);
    return whole;
}

static int ctc_png_read_direct(struct CTesseraCodecs_png *decoder, uint8_t *pixels, size_t stride, int accept_partial,
                               char *message, size_t capacity) {
    if (decoder->row_path != CTesseraCodecs_png_rows_zlib_strips && ctc_png_read_whole(decoder, pixels, stride)) {
        decoder->rows_used = CTesseraCodecs_png_rows_whole_image;
        return CTesseraCodecs_ok;
    }
    decoder->rows_used = CTesseraCodecs_png_rows_zlib_strips;
    const uint8_t *data = decoder->data;
    size_t width = decoder->width, height = decoder->height, bpp = (size_t)decoder->channels;
    size_t row_bytes = width * bpp, filtered_bytes = row_bytes + 1;
    // Strips of about 256 kB: long zlib calls (its slow path runs once per call), rows still in cache.
    size_t strip_rows = (256u << 10) / filtered_bytes;
    if (strip_rows < 1) strip_rows = 1;
    if (strip_rows > height) strip_rows = height;
    uint8_t *strip = malloc(strip_rows * filtered_bytes);
    uint8_t *carried = calloc(row_bytes, 1);  // the row above the strip: zeros above the first row
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    if (strip == NULL || carried == NULL || inflateInit(&stream) != Z_OK) {
        free(strip);
        free(carried);
        ctc_message(message, capacity, "out of memory while decoding PNG");
        return CTesseraCodecs_error;
    }
    // As libpng here: zlib's Adler-32 repeats what every chunk's CRC-32 already checks.
    inflateValidate(&stream, 0);
    ctc_idat_reader reader = {decoder, decoder->offset, ctc_be32(data + decoder->offset - 8), 0, NULL};
    const char *problem = NULL;
    char zlib_problem[200];
    int stream_ended = 0;
    size_t rows_done = 0;
    if (!ctc_idat_next(&reader, &stream)) problem = reader.problem;
    while (problem == NULL && rows_done < height) {
        size_t rows = height - rows_done < strip_rows ? height - rows_done : strip_rows;
        stream.next_out = strip;
        stream.avail_out = (uInt)(rows * filtered_bytes);
        while (stream.avail_out > 0 && problem == NULL) {
            if (stream_ended) {
                problem = "Not enough image data";
                break;
            }
            if (stream.avail_in == 0 && !ctc_idat_next(&reader, &stream)) {
                problem = reader.problem;
                break;
            }
            int status = inflate(&stream, Z_NO_FLUSH);
            if (status == Z_STREAM_END) {
                stream_ended = 1;
            } else if (status != Z_OK && !(status == Z_BUF_ERROR && stream.avail_in == 0)) {
                snprintf(zlib_problem, sizeof zlib_problem, "IDAT: %s",
                         stream.msg != NULL ? stream.msg : "damaged compressed data");
                problem = zlib_problem;
            }
        }
        size_t complete = (rows * filtered_bytes - stream.avail_out) / filtered_bytes;
        const uint8_t *prior = carried;
        // A bad filter byte comes before whatever stopped zlib, so it is the complaint, as from libpng.
        if (ctc_unfilter_rows(decoder, strip, complete, &prior, pixels, stride, &rows_done) < complete)
            problem = "bad adaptive filter value";
        if (prior != carried) memcpy(carried, prior, row_bytes);
    }
    // Like libpng at the end of the image: the last chunk read must be whole and undamaged.
    if (problem == NULL) problem = ctc_idat_crc_problem(&reader);
    inflateEnd(&stream);
    free(strip);
    free(carried);
    if (problem != NULL) {
        // The caller's buffer is not initialised: the rows never reached are zeros, as from libpng's path.
        for (size_t y = rows_done; y < height; y++) memset(pixels + y * stride, 0, stride);
        decoder->failed = 1;
        ctc_message(decoder->error, sizeof decoder->error, problem);
        ctc_message(message, capacity, problem);
        return accept_partial && rows_done > 0 ? CTesseraCodecs_partial : CTesseraCodecs_error;
    }
    return CTesseraCodecs_ok;
}

int CTesseraCodecs_png_read(CTesseraCodecs_png *decoder, uint8_t *pixels, size_t stride, int accept_partial,
                            char *message, size_t capacity) {
    if (decoder == NULL || !decoder->started || decoder->failed) {
        ctc_message(message, capacity, "internal: PNG decoder misused");
        return CTesseraCodecs_internal;
    }
    // The direct path starts where libpng stopped: just after the first IDAT's length and type.
    if (decoder->direct && decoder->offset >= 8 && memcmp(decoder->data + decoder->offset - 4, "IDAT", 4) == 0)
        return ctc_png_read_direct(decoder, pixels, stride, accept_partial, message, capacity);
    decoder->rows_used = CTesseraCodecs_png_rows_libpng;
    // The caller's buffer is not initialised; interlaced passes and a damaged file's missing rows
    // leave pixels that libpng never writes.
    memset(pixels, 0, stride * decoder->height);
    volatile png_uint_32 rows_done = 0;
    if (setjmp(png_jmpbuf(decoder->png))) {
        int status = ctc_png_failure(decoder, message, capacity);
        return accept_partial && rows_done > 0 ? CTesseraCodecs_partial : status;
    }
    for (int pass = 0; pass < decoder->passes; pass++) {
        for (png_uint_32 y = 0; y < decoder->height; y++) {
            png_read_row(decoder->png, pixels + (size_t)y * stride, NULL);
            rows_done++;
        }
    }
    // The chunks after the image data are not read: Pillow ignores them too, and a damaged trailer
    // does not change the pixels.
    return CTesseraCodecs_ok;
}

// ---- encoding --------------------------------------------------------------------------------------

typedef struct {
    uint8_t *bytes;
    size_t size;
    size_t capacity;
    int out_of_memory;
} ctc_buffer;

static void ctc_png_write_data(png_structp png, png_bytep data, size_t length) {
    ctc_buffer *buffer = png_get_io_ptr(png);
    if (buffer->size + length > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 65536;
        while (capacity < buffer->size + length) capacity *= 2;
        uint8_t *grown = realloc(buffer->bytes, capacity);
        if (grown == NULL) {
            buffer->out_of_memory = 1;
            png_error(png, "out of memory while encoding PNG");
        }
        buffer->bytes = grown;
        buffer->capacity = capacity;
    }
    memcpy(buffer->bytes + buffer->size, data, length);
    buffer->size += length;
}

static void ctc_png_flush(png_structp png) { (void)png; }

int CTesseraCodecs_png_encode(const uint8_t *pixels, int width, int height, int components, size_t stride,
                              uint8_t **output, size_t *output_size, char *message, size_t capacity) {
    static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                       PNG_COLOR_TYPE_RGB_ALPHA};
    if (components < 1 || components > 4 || width <= 0 || height <= 0) {
        ctc_message(message, capacity, "internal: bad PNG encode parameters");
        return CTesseraCodecs_internal;
    }
    struct CTesseraCodecs_png context;
    memset(&context, 0, sizeof context);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &context, ctc_png_error, ctc_png_warning);
    if (png == NULL) {
        ctc_message(message, capacity, "out of memory");
        return CTesseraCodecs_internal;
    }
    png_infop info = png_create_info_struct(png);
    ctc_buffer buffer = {0};
    ctc_buffer *volatile result = &buffer;
    if (info == NULL || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(result->bytes);
        ctc_message(message, capacity, context.error[0] ? context.error : "out of memory");
        return CTesseraCodecs_error;
    }
    png_set_write_fn(png, &buffer, ctc_png_write_data, ctc_png_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, color_types[components],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, pixels + (size_t)y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *output = buffer.bytes;
    *output_size = buffer.size;
    return CTesseraCodecs_ok;
}

void CTesseraCodecs_free(void *pointer) { free(pointer); }

int CTesseraCodecs_png_plain_decode(const uint8_t *data, size_t size) {
    CTesseraCodecs_png *decoder = CTesseraCodecs_png_create(data, size);
    if (decoder == NULL) return CTesseraCodecs_internal;
    CTesseraCodecs_png_header header;
    char message[256];
    int status = CTesseraCodecs_png_read_header(decoder, &header, message, sizeof message);
    int components = 0, bytes = 0;
    if (status == CTesseraCodecs_ok) status = CTesseraCodecs_png_start(decoder, 0, 0, &components, &bytes, message, sizeof message);
    if (status == CTesseraCodecs_ok) {
        size_t stride = (size_t)header.width * (size_t)components * (size_t)bytes;
        uint8_t *pixels = malloc(stride * (size_t)header.height);
        if (pixels == NULL) {
            status = CTesseraCodecs_internal;
        } else {
            status = CTesseraCodecs_png_read(decoder, pixels, stride, 0, message, sizeof message);
            free(pixels);
        }
    }
    CTesseraCodecs_png_destroy(decoder);
    return status;
}
