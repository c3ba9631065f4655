// PNG decoding and encoding through libpng, with every libpng call under a setjmp in this file.
#include "CTesseraCodecs.h"
#include "message.h"

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <png.h>

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

static void ctc_png_read_data(png_structp png, png_bytep out, size_t length) {
    struct CTesseraCodecs_png *decoder = png_get_io_ptr(png);
    if (decoder->size - decoder->offset < length) {
        png_error(png, "unexpected end of data (truncated PNG)");
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
    *bytes_per_sample = native16 ? 2 : 1;
    decoder->started = 1;
    return CTesseraCodecs_ok;
}

int CTesseraCodecs_png_read(CTesseraCodecs_png *decoder, uint8_t *pixels, size_t stride, int accept_partial,
                            char *message, size_t capacity) {
    if (decoder == NULL || !decoder->started || decoder->failed) {
        ctc_message(message, capacity, "internal: PNG decoder misused");
        return CTesseraCodecs_internal;
    }
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
