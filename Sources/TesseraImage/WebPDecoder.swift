// WebP through the CTesseraCodecs shim: lossy and lossless, alpha, and an animation's first frame, as Pillow
// (which decodes every WebP file with libwebp's animation decoder) gives them.
internal import CTesseraCodecs
import TesseraCore

struct WebPHeader {
    var width: Int
    var height: Int
    var hasAlpha: Bool
    var animated: Bool
    var lossless: Bool
}

enum WebPDecoder {
    /// The header, read without decoding: the size is checked against the pixel limit before any allocation.
    static func header(_ bytes: UnsafeRawBufferPointer) throws -> WebPHeader {
        var raw = CTesseraCodecs_webp_header()
        var message = [CChar](repeating: 0, count: 256)
        let status = message.withUnsafeMutableBufferPointer {
            CTesseraCodecs_webp_read_header(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, &raw, $0.baseAddress, $0.count)
        }
        guard status == CodecStatus.ok.rawValue else { throw error(message, status: status) }
        return WebPHeader(width: Int(raw.width), height: Int(raw.height), hasAlpha: raw.has_alpha != 0, animated: raw.animated != 0,
                          lossless: raw.lossless != 0)
    }

    /// The first frame as RGBA, or RGB when the file has no alpha (Pillow's "RGBX" mode).
    static func decode(_ bytes: UnsafeRawBufferPointer, header: WebPHeader) throws -> RawImage {
        var rgba = [UInt8](repeating: 0, count: header.width * header.height * 4)
        var message = [CChar](repeating: 0, count: 256)
        let status = rgba.withUnsafeMutableBufferPointer { pixels in
            message.withUnsafeMutableBufferPointer {
                CTesseraCodecs_webp_decode(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, Int32(header.width),
                                           Int32(header.height), pixels.baseAddress, $0.baseAddress, $0.count)
            }
        }
        guard status == CodecStatus.ok.rawValue else { throw error(message, status: status) }
        let image = RawImage(width: header.width, height: header.height, components: 4, pixels: rgba)
        return header.hasAlpha ? image : image.droppingAlpha()
    }

    static func error(_ message: [CChar], status: Int32) -> TesseraError {
        let said = JPEGDecoder.text(message)
        if status == CodecStatus.unsupported.rawValue {
            return TesseraError(stage: .decode, code: "image.unsupported", "WebP: \(said)")
        }
        return TesseraError(stage: .decode, code: said.contains("truncated") ? "image.truncated" : "image.corrupt", "corrupt WebP: \(said)")
    }
}
