// JPEG through the CTesseraCodecs shim: header, EXIF orientation, DCT-domain scale, decode.
internal import CTesseraCodecs
import TesseraCore

/// What the JPEG header said, with the EXIF orientation.
struct JPEGHeader {
    var width: Int
    var height: Int
    var components: Int
    /// libjpeg's colour space: 1 grey, 2 RGB, 3 YCbCr, 4 CMYK, 5 YCCK.
    var colorSpace: Int
    var adobe: Bool
    var progressive: Bool
    var arithmetic: Bool
    var orientation: Int

    var isCMYK: Bool { colorSpace == 4 || colorSpace == 5 }
    var isGrey: Bool { colorSpace == 1 }
}

/// A JPEG decode in progress over borrowed bytes.
final class JPEGDecoder {
    private let handle: OpaquePointer
    private var message = [CChar](repeating: 0, count: 256)
    let header: JPEGHeader

    init(bytes: UnsafeRawBufferPointer, strict: Bool) throws {
        guard let base = bytes.baseAddress,
              let handle = CTesseraCodecs_jpeg_create(base.assumingMemoryBound(to: UInt8.self), bytes.count) else {
            throw TesseraError(stage: .decode, code: "image.internal", "cannot create a JPEG decoder (out of memory?)")
        }
        self.handle = handle
        var raw = CTesseraCodecs_jpeg_header()
        let status = message.withUnsafeMutableBufferPointer {
            CTesseraCodecs_jpeg_read_header(handle, strict ? 1 : 0, &raw, $0.baseAddress, $0.count)
        }
        if status != CodecStatus.ok.rawValue {
            let error = JPEGDecoder.error(status: status, message: message, stage: "header")
            CTesseraCodecs_jpeg_destroy(handle)
            throw error
        }
        var orientation = 1
        if let exif = raw.exif, raw.exif_size > 0 {
            orientation = EXIF.orientation(UnsafeRawBufferPointer(start: exif, count: raw.exif_size)) ?? 1
        }
        header = JPEGHeader(width: Int(raw.width), height: Int(raw.height), components: Int(raw.components),
                            colorSpace: Int(raw.color_space), adobe: raw.saw_adobe_marker != 0,
                            progressive: raw.progressive != 0, arithmetic: raw.arithmetic != 0, orientation: orientation)
    }

    deinit { CTesseraCodecs_jpeg_destroy(handle) }

    /// Decodes at `scaleNumerator`/8 into interleaved pixels: grey sources give 1 component when
    /// `greyOutput`, CMYK/YCCK sources give 4 (CMYK as stored), everything else 3 (RGB).
    /// Returns the image and libjpeg's warning count (non-zero only when `strict` is false).
    func decode(scaleNumerator: Int, greyOutput: Bool, strict: Bool) throws -> (image: RawImage, warnings: Int, warning: String?) {
        let components = header.isCMYK ? 4 : (greyOutput && header.isGrey ? 1 : 3)
        var width: Int32 = 0, height: Int32 = 0
        var status = message.withUnsafeMutableBufferPointer {
            CTesseraCodecs_jpeg_start(handle, Int32(scaleNumerator), Int32(components), &width, &height, $0.baseAddress, $0.count)
        }
        guard status == CodecStatus.ok.rawValue else {
            throw JPEGDecoder.error(status: status, message: message, stage: "start")
        }
        let stride = Int(width) * components
        var warnings: Int32 = 0
        var pixels = [UInt8](unsafeUninitializedCapacity: stride * Int(height)) { buffer, count in
            status = message.withUnsafeMutableBufferPointer { text in
                CTesseraCodecs_jpeg_read(handle, buffer.baseAddress, stride, strict ? 1 : 0, &warnings, text.baseAddress, text.count)
            }
            // libjpeg writes every row it reaches; rows it never reached are zeroed so no byte is undefined.
            if status != CodecStatus.ok.rawValue && status != CodecStatus.partial.rawValue, let base = buffer.baseAddress {
                base.initialize(repeating: 0, count: buffer.count)
            }
            count = buffer.count
        }
        if status == CodecStatus.partial.rawValue {
            return (RawImage(width: Int(width), height: Int(height), components: components, pixels: pixels), Int(warnings), JPEGDecoder.text(message))
        }
        guard status == CodecStatus.ok.rawValue else {
            pixels = []
            throw JPEGDecoder.error(status: status, message: message, stage: "data")
        }
        return (RawImage(width: Int(width), height: Int(height), components: components, pixels: pixels), 0, nil)
    }

    static func text(_ message: [CChar]) -> String {
        message.withUnsafeBufferPointer { buffer in
            String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    static func error(status: Int32, message: [CChar], stage: String) -> TesseraError {
        let said = text(message)
        switch status {
        case CodecStatus.unsupported.rawValue:
            return TesseraError(stage: .decode, code: "image.unsupported",
                                "unsupported JPEG (libjpeg-turbo 2.1 decodes 8-bit lossy JPEG only): \(said)")
        case CodecStatus.`internal`.rawValue:
            return TesseraError(stage: .decode, code: "image.internal", "JPEG decoder failed: \(said)")
        default:
            let truncated = said.contains("Premature end")
            return TesseraError(stage: .decode, code: truncated ? "image.truncated" : "image.corrupt",
                                "corrupt JPEG (\(stage)): \(said)")
        }
    }
}

/// The C libraries' own decodes, for benchmarks: libjpeg or libpng alone, no Tessera work.
public enum JPEGBaseline {
    /// Decodes `bytes` to RGB at `scaleNumerator`/8 with nothing else around it; true on success.
    public static func plainDecode(_ bytes: UnsafeRawBufferPointer, scaleNumerator: Int = 8) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        return CTesseraCodecs_jpeg_plain_decode(base.assumingMemoryBound(to: UInt8.self), bytes.count, Int32(scaleNumerator)) == CodecStatus.ok.rawValue
    }

    /// A plain libpng decode of a whole PNG, nothing else; true on success.
    public static func plainPNGDecode(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        return CTesseraCodecs_png_plain_decode(base.assumingMemoryBound(to: UInt8.self), bytes.count) == CodecStatus.ok.rawValue
    }
}
