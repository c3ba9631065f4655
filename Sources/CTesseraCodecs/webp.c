// WebP through libwebp: the header with WebPGetFeatures, pixels with the animation decoder (libwebpdemux),
// which is what Pillow uses for every WebP file. libwebp reports errors by status, never by jumping.
#include "CTesseraCodecs.h"
#include "message.h"

#include <string.h>
#include <webp/decode.h>
#include <webp/demux.h>

static const char *vp8_status_text(VP8StatusCode status) {
    switch (status) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "not a valid WebP bitstream";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "a WebP feature libwebp does not support";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated WebP data";
    default: return "unknown WebP error";
    }
}

int CTesseraCodecs_webp_read_header(const uint8_t *data, size_t size, CTesseraCodecs_webp_header *header,
                                    char *message, size_t message_capacity) {
    WebPBitstreamFeatures features;
    VP8StatusCode status = WebPGetFeatures(data, size, &features);
    if (status != VP8_STATUS_OK) {
        ctc_message(message, message_capacity, vp8_status_text(status));
        return status == VP8_STATUS_UNSUPPORTED_FEATURE ? CTesseraCodecs_unsupported : CTesseraCodecs_error;
    }
    header->width = features.width;
    header->height = features.height;
    header->has_alpha = features.has_alpha || features.has_animation;
    header->animated = features.has_animation;
    header->lossless = features.format == 2;
    return CTesseraCodecs_ok;
}

int CTesseraCodecs_webp_decode(const uint8_t *data, size_t size, int width, int height, uint8_t *rgba,
                               char *message, size_t message_capacity) {
    WebPAnimDecoderOptions options;
    if (!WebPAnimDecoderOptionsInit(&options)) {
        ctc_message(message, message_capacity, "libwebp version mismatch");
        return CTesseraCodecs_internal;
    }
    options.color_mode = MODE_RGBA;
    options.use_threads = 0;
    WebPData webp = {data, size};
    WebPAnimDecoder *decoder = WebPAnimDecoderNew(&webp, &options);
    if (decoder == NULL) {
        ctc_message(message, message_capacity, "truncated or corrupt WebP data (libwebp's demuxer refused the file)");
        return CTesseraCodecs_error;
    }
    WebPAnimInfo info;
    int result = CTesseraCodecs_ok;
    uint8_t *frame = NULL;
    int timestamp = 0;
    if (!WebPAnimDecoderGetInfo(decoder, &info)) {
        ctc_message(message, message_capacity, "cannot read the WebP canvas");
        result = CTesseraCodecs_error;
    } else if ((int)info.canvas_width != width || (int)info.canvas_height != height) {
        ctc_message(message, message_capacity, "the WebP canvas is not the size its header says");
        result = CTesseraCodecs_error;
    } else if (!WebPAnimDecoderGetNext(decoder, &frame, &timestamp) || frame == NULL) {
        ctc_message(message, message_capacity, "the WebP image data is corrupt or truncated");
        result = CTesseraCodecs_error;
    } else {
        memcpy(rgba, frame, (size_t)info.canvas_width * info.canvas_height * 4);
    }
    WebPAnimDecoderDelete(decoder);
    return result;
}
