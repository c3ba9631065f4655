// PNG through the CTesseraCodecs shim: every colour type and bit depth, tRNS, Adam7.
internal import CTesseraCodecs
import TesseraCore

struct PNGHeader {
    var width: Int
    var height: Int
    var bitDepth: Int
    var colorType: Int
    var interlaced: Bool
    var hasTransparency: Bool

    var isGrey: Bool { colorType == 0 || colorType == 4 }
}

/// Where a PNG's rows come from; tests pin each to hold the faster ones to libpng's.
enum PNGRowPath: Int32 {
    /// Tessera's direct path where it applies (whole-image libdeflate, else zlib strips), libpng elsewhere.
    case fastest = 0
    /// The direct path inflating all image data in one libdeflate call (undamaged files up to 64 MB).
    case wholeImage = 1
    /// The direct path inflating strips with zlib: what damaged and very large files get.
    case zlibStrips = 2
    /// Every row from libpng: the reference.
    case libpng = 3
}

final class PNGDecoder {
    private let handle: OpaquePointer
    private var message = [CChar](repeating: 0, count: 256)
    let header: PNGHeader

    init(bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress,
              let handle = CTesseraCodecs_png_create(base.assumingMemoryBound(to: UInt8.self), bytes.count) else {
            throw TesseraError(stage: .decode, code: "image.internal", "cannot create a PNG decoder (out of memory?)")
        }
        self.handle = handle
        var raw = CTesseraCodecs_png_header()
        let status = message.withUnsafeMutableBufferPointer {
            CTesseraCodecs_png_read_header(handle, &raw, $0.baseAddress, $0.count)
        }
        if status != CodecStatus.ok.rawValue {
            let error = PNGDecoder.error(message)
            CTesseraCodecs_png_destroy(handle)
            throw error
        }
        header = PNGHeader(width: Int(raw.width), height: Int(raw.height), bitDepth: Int(raw.bit_depth),
                           colorType: Int(raw.color_type), interlaced: raw.interlaced != 0, hasTransparency: raw.has_trns != 0)
    }

    deinit { CTesseraCodecs_png_destroy(handle) }

    /// The path the last decode took its rows from.
    var rowsUsed: PNGRowPath { PNGRowPath(rawValue: CTesseraCodecs_png_rows_used(handle)) ?? .fastest }

    /// Decodes to 8-bit interleaved pixels (1-4 components). With `keepAlpha` the alpha channel (or tRNS
    /// transparency) is the last component. 16-bit grey samples become 8-bit by `grey16`.
    /// Returns the image and, when `acceptPartial` let a damaged file through, libpng's complaint.
    /// `rows` pins where rows come from (tests).
    func decode(keepAlpha: Bool, grey16: ImageConfig.Grey16, acceptPartial: Bool,
                rows: PNGRowPath = .fastest) throws -> (image: RawImage, problem: String?, clipped: Int) {
        var components: Int32 = 0, bytesPerSample: Int32 = 0
        CTesseraCodecs_png_choose_rows(handle, rows.rawValue)
        var status = message.withUnsafeMutableBufferPointer {
            CTesseraCodecs_png_start(handle, keepAlpha ? 1 : 0, 1, &components, &bytesPerSample, $0.baseAddress, $0.count)
        }
        guard status == CodecStatus.ok.rawValue else { throw PNGDecoder.error(message) }
        let width = header.width, height = header.height
        let stride = width * Int(components) * Int(bytesPerSample)
        // Not zeroed first (a page-faulting memset of every decoded image): the C side writes every byte
        // it returns with ok or partial, and the rest is zeroed here.
        var samples = [UInt8](unsafeUninitializedCapacity: stride * height) { buffer, count in
            status = message.withUnsafeMutableBufferPointer { text in
                CTesseraCodecs_png_read(handle, buffer.baseAddress, stride, acceptPartial ? 1 : 0, text.baseAddress, text.count)
            }
            if status != CodecStatus.ok.rawValue && status != CodecStatus.partial.rawValue, let base = buffer.baseAddress {
                base.initialize(repeating: 0, count: buffer.count)
            }
            count = buffer.count
        }
        var problem: String?
        if status == CodecStatus.partial.rawValue {
            problem = JPEGDecoder.text(message)
        } else if status != CodecStatus.ok.rawValue {
            throw PNGDecoder.error(message)
        }
        var clipped = 0
        if bytesPerSample == 2 {
            samples = PNGDecoder.reduceGrey16(samples, mode: grey16, clipped: &clipped)
        }
        return (RawImage(width: width, height: height, components: Int(components), pixels: samples), problem, clipped)
    }

    /// 16-bit host-order grey to 8 bits, counting the samples that clipping changed.
    static func reduceGrey16(_ samples: [UInt8], mode: ImageConfig.Grey16, clipped: inout Int) -> [UInt8] {
        let count = samples.count / 2
        var out = [UInt8](repeating: 0, count: count)
        var over = 0
        samples.withUnsafeBytes { raw in
            for i in 0..<count {
                let value = raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                switch mode {
                case .pillow:
                    if value > 255 { over += 1 }
                    out[i] = UInt8(min(value, 255))
                case .scale:
                    out[i] = UInt8(value >> 8)
                }
            }
        }
        clipped = over
        return out
    }

    static func error(_ message: [CChar]) -> TesseraError {
        let said = JPEGDecoder.text(message)
        let truncated = said.contains("truncated") || said.contains("Not enough image data")
        return TesseraError(stage: .decode, code: truncated ? "image.truncated" : "image.corrupt", "corrupt PNG: \(said)")
    }
}

/// PNG encoding for pictures Tessera draws (plots, reconstructions).
public enum PNGEncoder {
    /// Encodes 8-bit interleaved pixels (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) as PNG bytes.
    public static func encode(_ image: RawImage) throws -> [UInt8] {
        var output: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = image.pixels.withUnsafeBufferPointer { pixels in
            message.withUnsafeMutableBufferPointer { text in
                CTesseraCodecs_png_encode(pixels.baseAddress, Int32(image.width), Int32(image.height), Int32(image.components),
                                          image.width * image.components, &output, &size, text.baseAddress, text.count)
            }
        }
        guard status == CodecStatus.ok.rawValue, let output else {
            throw TesseraError(stage: .write, code: "image.encode", "cannot encode PNG: \(JPEGDecoder.text(message))")
        }
        defer { CTesseraCodecs_free(output) }
        return Array(UnsafeBufferPointer(start: output, count: size))
    }
}
