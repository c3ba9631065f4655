// JPEG decoding through libjpeg-turbo, with every libjpeg call under a setjmp in this file.
#include "CTesseraCodecs.h"
#include "message.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

/// Progressive files can hold thousands of tiny scans that take minutes to decode (a known fuzzing
/// hang); TurboJPEG stops at 500 with TJFLAG_LIMITSCANS. Real encoders emit at most a few dozen.
#define CTC_MAX_SCANS 1000

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int strict;                       // a warning is fatal
    int warned;                       // the first warning's text is in `warning`
    char warning[JMSG_LENGTH_MAX];
    char failure[JMSG_LENGTH_MAX];    // set when this module aborts on its own (not libjpeg)
} ctc_jpeg_error;

struct CTesseraCodecs_jpeg {
    struct jpeg_decompress_struct cinfo;
    ctc_jpeg_error error;
    struct jpeg_progress_mgr progress;
    const uint8_t *data;
    size_t size;
    int created;    // jpeg_create_decompress succeeded
    int failed;     // a jump happened: the object may only be destroyed
    int started;
};

static void ctc_jpeg_error_exit(j_common_ptr cinfo) {
    ctc_jpeg_error *error = (ctc_jpeg_error *)cinfo->err;
    longjmp(error->jump, 1);
}

static void ctc_jpeg_emit_message(j_common_ptr cinfo, int level) {
    ctc_jpeg_error *error = (ctc_jpeg_error *)cinfo->err;
    if (level >= 0) return;  // trace messages
    if (!error->warned) {
        (*cinfo->err->format_message)(cinfo, error->warning);
        error->warned = 1;
    }
    cinfo->err->num_warnings++;
    if (error->strict) {
        // Strict mode: corrupt data or a premature end is an error, reported with libjpeg's own words.
        snprintf(error->failure, sizeof error->failure, "%s", error->warning);
        longjmp(error->jump, 2);
    }
}

static void ctc_jpeg_output_message(j_common_ptr cinfo) {
    (void)cinfo;  // never print: messages are returned to the caller
}

static void ctc_jpeg_progress(j_common_ptr cinfo) {
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->is_decompressor && d->inputctl != NULL && d->progressive_mode && d->input_scan_number > CTC_MAX_SCANS) {
        ctc_jpeg_error *error = (ctc_jpeg_error *)cinfo->err;
        snprintf(error->failure, sizeof error->failure,
                 "progressive JPEG has more than %d scans (a corrupt or hostile file)", CTC_MAX_SCANS);
        longjmp(error->jump, 2);
    }
}

/// Turns the state after a jump into a status and a message.
static int ctc_jpeg_failure(CTesseraCodecs_jpeg *decoder, int jumped, char *message, size_t capacity) {
    decoder->failed = 1;
    if (jumped == 2) {
        ctc_message(message, capacity, decoder->error.failure);
        return CTesseraCodecs_error;
    }
    char text[JMSG_LENGTH_MAX];
    (*decoder->cinfo.err->format_message)((j_common_ptr)&decoder->cinfo, text);
    ctc_message(message, capacity, text);
    int code = decoder->cinfo.err->msg_code;
    if (code == JERR_BAD_PRECISION || code == JERR_SOF_UNSUPPORTED || code == JERR_NOT_COMPILED) {
        return CTesseraCodecs_unsupported;
    }
    if (code == JERR_OUT_OF_MEMORY) return CTesseraCodecs_internal;
    return CTesseraCodecs_error;
}

CTesseraCodecs_jpeg *CTesseraCodecs_jpeg_create(const uint8_t *data, size_t size) {
    CTesseraCodecs_jpeg *decoder = calloc(1, sizeof *decoder);
    if (decoder == NULL) return NULL;
    decoder->data = data;
    decoder->size = size;
    decoder->cinfo.err = jpeg_std_error(&decoder->error.pub);
    decoder->error.pub.error_exit = ctc_jpeg_error_exit;
    decoder->error.pub.emit_message = ctc_jpeg_emit_message;
    decoder->error.pub.output_message = ctc_jpeg_output_message;
    decoder->progress.progress_monitor = ctc_jpeg_progress;
    return decoder;
}

void CTesseraCodecs_jpeg_destroy(CTesseraCodecs_jpeg *decoder) {
    if (decoder == NULL) return;
    if (decoder->created) jpeg_destroy_decompress(&decoder->cinfo);
    free(decoder);
}

int CTesseraCodecs_jpeg_read_header(CTesseraCodecs_jpeg *decoder, int strict, CTesseraCodecs_jpeg_header *header,
                                    char *message, size_t capacity) {
    if (decoder == NULL || decoder->created) {
        ctc_message(message, capacity, "internal: JPEG decoder misused");
        return CTesseraCodecs_internal;
    }
    if (decoder->size == 0) {
        ctc_message(message, capacity, "empty JPEG data");
        return CTesseraCodecs_error;
    }
    int jumped = setjmp(decoder->error.jump);
    if (jumped) return ctc_jpeg_failure(decoder, jumped, message, capacity);

    jpeg_create_decompress(&decoder->cinfo);
    decoder->created = 1;
    decoder->cinfo.progress = &decoder->progress;
    jpeg_mem_src(&decoder->cinfo, decoder->data, (unsigned long)decoder->size);
    jpeg_save_markers(&decoder->cinfo, JPEG_APP0 + 1, 0xFFFF);
    decoder->error.strict = strict;
    jpeg_read_header(&decoder->cinfo, TRUE);

    memset(header, 0, sizeof *header);
    header->width = (int)decoder->cinfo.image_width;
    header->height = (int)decoder->cinfo.image_height;
    header->components = decoder->cinfo.num_components;
    header->color_space = (int)decoder->cinfo.jpeg_color_space;
    header->saw_adobe_marker = decoder->cinfo.saw_Adobe_marker;
    header->progressive = decoder->cinfo.progressive_mode;
    header->arithmetic = decoder->cinfo.arith_code;
    for (jpeg_saved_marker_ptr marker = decoder->cinfo.marker_list; marker != NULL; marker = marker->next) {
        if (marker->marker == JPEG_APP0 + 1 && marker->data_length >= 6 &&
            memcmp(marker->data, "Exif\0\0", 6) == 0) {
            header->exif = marker->data + 6;
            header->exif_size = marker->data_length - 6;
            break;
        }
    }
    return CTesseraCodecs_ok;
}

int CTesseraCodecs_jpeg_start(CTesseraCodecs_jpeg *decoder, int scale_num, int output_components,
                              int *output_width, int *output_height, char *message, size_t capacity) {
    if (decoder == NULL || !decoder->created || decoder->failed || decoder->started) {
        ctc_message(message, capacity, "internal: JPEG decoder misused");
        return CTesseraCodecs_internal;
    }
    if (scale_num < 1 || scale_num > 8) {
        ctc_message(message, capacity, "internal: JPEG scale must be 1/8 ... 8/8");
        return CTesseraCodecs_internal;
    }
    int jumped = setjmp(decoder->error.jump);
    if (jumped) return ctc_jpeg_failure(decoder, jumped, message, capacity);

    switch (output_components) {
    case 1: decoder->cinfo.out_color_space = JCS_GRAYSCALE; break;
    case 3: decoder->cinfo.out_color_space = JCS_RGB; break;
    case 4: decoder->cinfo.out_color_space = JCS_CMYK; break;
    default:
        ctc_message(message, capacity, "internal: JPEG output must have 1, 3 or 4 components");
        return CTesseraCodecs_internal;
    }
    decoder->cinfo.scale_num = (unsigned int)scale_num;
    decoder->cinfo.scale_denom = 8;
    decoder->cinfo.dct_method = JDCT_ISLOW;
    jpeg_calc_output_dimensions(&decoder->cinfo);
    *output_width = (int)decoder->cinfo.output_width;
    *output_height = (int)decoder->cinfo.output_height;
    decoder->started = 1;
    return CTesseraCodecs_ok;
}

int CTesseraCodecs_jpeg_read(CTesseraCodecs_jpeg *decoder, uint8_t *pixels, size_t stride, int strict,
                             int *warnings, char *message, size_t capacity) {
    if (decoder == NULL || !decoder->started || decoder->failed) {
        ctc_message(message, capacity, "internal: JPEG decoder misused");
        return CTesseraCodecs_internal;
    }
    JSAMPROW *volatile rows = NULL;
    int jumped = setjmp(decoder->error.jump);
    if (jumped) {
        free(rows);
        *warnings = decoder->cinfo.err->num_warnings;
        return ctc_jpeg_failure(decoder, jumped, message, capacity);
    }
    decoder->error.strict = strict;
    jpeg_start_decompress(&decoder->cinfo);
    JDIMENSION height = decoder->cinfo.output_height;
    rows = malloc(sizeof(JSAMPROW) * (height > 0 ? height : 1));
    if (rows == NULL) {
        ctc_message(message, capacity, "out of memory for JPEG row pointers");
        decoder->failed = 1;
        return CTesseraCodecs_internal;
    }
    for (JDIMENSION y = 0; y < height; y++) rows[y] = pixels + (size_t)y * stride;
    while (decoder->cinfo.output_scanline < height) {
        JDIMENSION done = decoder->cinfo.output_scanline;
        if (jpeg_read_scanlines(&decoder->cinfo, rows + done, height - done) == 0) break;
    }
    jpeg_finish_decompress(&decoder->cinfo);
    free(rows);
    rows = NULL;
    *warnings = decoder->cinfo.err->num_warnings;
    if (*warnings > 0) {
        ctc_message(message, capacity, decoder->error.warning);
        return CTesseraCodecs_partial;
    }
    return CTesseraCodecs_ok;
}

int CTesseraCodecs_jpeg_plain_decode(const uint8_t *data, size_t size, int scale_num) {
    CTesseraCodecs_jpeg *decoder = CTesseraCodecs_jpeg_create(data, size);
    if (decoder == NULL) return CTesseraCodecs_internal;
    CTesseraCodecs_jpeg_header header;
    char message[JMSG_LENGTH_MAX];
    int status = CTesseraCodecs_jpeg_read_header(decoder, 0, &header, message, sizeof message);
    uint8_t *volatile row = NULL;
    if (status == CTesseraCodecs_ok) {
        int jumped = setjmp(decoder->error.jump);
        if (jumped) {
            free(row);
            CTesseraCodecs_jpeg_destroy(decoder);
            return CTesseraCodecs_error;
        }
        decoder->cinfo.out_color_space = header.components == 4 ? JCS_CMYK : JCS_RGB;
        decoder->cinfo.scale_num = (unsigned int)scale_num;
        decoder->cinfo.scale_denom = 8;
        jpeg_start_decompress(&decoder->cinfo);
        row = malloc((size_t)decoder->cinfo.output_width * (size_t)decoder->cinfo.output_components);
        if (row == NULL) longjmp(decoder->error.jump, 1);
        JSAMPROW rows[1] = {row};
        while (decoder->cinfo.output_scanline < decoder->cinfo.output_height) {
            jpeg_read_scanlines(&decoder->cinfo, rows, 1);
        }
        jpeg_finish_decompress(&decoder->cinfo);
        free(row);
    }
    CTesseraCodecs_jpeg_destroy(decoder);
    return status;
}
