// The image pipeline: sniff, read the header, check the pixel limit, pick the DCT scale, decode, orient,
// convert colour, resize, crop or pad, lay out, normalise. `tessera decode` and ingest both call this.
import TesseraCore

/// What decoding one image found out, for the one-line summary and for ingest's statistics.
public struct ImageInfo: Sendable, Equatable {
    public var format: ImageFormat
    /// Size as stored in the file.
    public var storedWidth: Int
    public var storedHeight: Int
    /// EXIF orientation applied (1 = none).
    public var orientation: Int
    /// The libjpeg scale used, in eighths (8 = full size; always 8 for PNG).
    public var scaleNumerator: Int
    /// A short description of the colour model (`YCbCr`, `grey`, `CMYK (Adobe)`, `RGB 16-bit`, ...).
    public var colorModel: String
    /// The output tensor's shape.
    public var outputShape: [Int]
    /// When `acceptTruncated` let damaged data through: what the library complained about.
    public var acceptedDamage: String?
    /// 16-bit grey samples clipped to 255 (Pillow's behaviour) in this image.
    public var clippedSamples: Int

    /// `JPEG 512x384 YCbCr, orientation 6, DCT 2/8 -> uint8 [3, 64, 64]`.
    public func summary(dtype: ImageConfig.OutputDType) -> String {
        var text = "\(format.displayName) \(storedWidth)x\(storedHeight) \(colorModel)"
        text += ", orientation \(orientation)"
        if scaleNumerator != 8 { text += ", DCT \(scaleNumerator)/8" }
        text += " -> \(dtype.rawValue) [\(outputShape.map(String.init).joined(separator: ", "))]"
        if clippedSamples > 0 { text += " (\(clippedSamples) 16-bit grey samples clipped to 255 as Pillow does; --image-grey16 scale keeps them)" }
        if let acceptedDamage { text += " (damaged data accepted: \(acceptedDamage))" }
        return text
    }
}

/// Decodes PNG and JPEG images into tensors according to an `ImageConfig`.
public enum ImageDecoding {
    /// Reads and decodes the file at `path`. Errors name the file.
    public static func decode(path: String, config: ImageConfig, maxFileBytes: Int = 1 << 30) throws -> (tensor: Tensor, info: ImageInfo) {
        do {
            // Read, not mapped, below a few MB: unmapping a file interrupts every other core to flush its
            // TLB (measured 2% of a two-job W1 ingest, mostly its PNGs).
            let contents = try FileContents(path: path, limit: maxFileBytes, tooLargeCode: "image.too-large")
            return try decode(bytes: contents.bytes, config: config)
        } catch {
            throw error.asTesseraError(path: path, stage: .decode)
        }
    }

    /// Decodes an image held in memory (format chosen by content).
    public static func decode(bytes: UnsafeRawBufferPointer, config: ImageConfig) throws -> (tensor: Tensor, info: ImageInfo) {
        let (image, info) = try decodeRaw(bytes: bytes, config: config)
        let tensor = try assemble(image, config: config)
        var finished = info
        finished.outputShape = tensor.shape
        return (tensor, finished)
    }

    /// Decodes, orients, converts and resizes, but leaves the result as interleaved 8-bit pixels.
    public static func decodeRaw(bytes: UnsafeRawBufferPointer, config: ImageConfig) throws -> (image: RawImage, info: ImageInfo) {
        try config.validate()
        guard bytes.count > 0 else { throw TesseraError(stage: .decode, code: "image.empty", "empty file, not an image") }
        guard let format = ImageFormat.sniff(bytes) else {
            let head = bytes.prefix(8).map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) }.joined(separator: " ")
            throw TesseraError(stage: .decode, code: "image.unknown-format", "not a PNG, JPEG or WebP file (starts with \(head))")
        }
        var decoded: RawImage
        var info: ImageInfo
        var isCMYK = false, invertedCMYK = false
        switch format {
        case .jpeg:
            let decoder = try JPEGDecoder(bytes: bytes, strict: !config.acceptTruncated)
            let header = decoder.header
            try checkPixelLimit(header.width, header.height, config)
            let orientation = config.applyOrientation ? header.orientation : 1
            let scale = config.dctScaling ? dctScale(width: header.width, height: header.height, orientation: orientation, config: config) : 8
            let result = try decoder.decode(scaleNumerator: scale, greyOutput: config.channels == 1, strict: !config.acceptTruncated)
            decoded = result.image
            isCMYK = header.isCMYK
            invertedCMYK = header.adobe
            info = ImageInfo(format: .jpeg, storedWidth: header.width, storedHeight: header.height, orientation: orientation,
                             scaleNumerator: scale, colorModel: jpegColorModel(header), outputShape: [],
                             acceptedDamage: result.warnings > 0 ? result.warning : nil, clippedSamples: 0)
            decoded = decoded.oriented(orientation)
        case .png:
            let decoder = try PNGDecoder(bytes: bytes)
            let header = decoder.header
            try checkPixelLimit(header.width, header.height, config)
            let result = try decoder.decode(keepAlpha: config.alpha == .composite, grey16: config.grey16, acceptPartial: config.acceptTruncated)
            decoded = result.image
            info = ImageInfo(format: .png, storedWidth: header.width, storedHeight: header.height, orientation: 1,
                             scaleNumerator: 8, colorModel: pngColorModel(header), outputShape: [],
                             acceptedDamage: result.problem, clippedSamples: result.clipped)
        case .webp:
            let header = try WebPDecoder.header(bytes)
            try checkPixelLimit(header.width, header.height, config)
            decoded = try WebPDecoder.decode(bytes, header: header)
            let model = header.animated ? "animated (first frame)" : (header.lossless ? "lossless" : "lossy") + (header.hasAlpha ? " RGBA" : " RGB")
            info = ImageInfo(format: .webp, storedWidth: header.width, storedHeight: header.height, orientation: 1,
                             scaleNumerator: 8, colorModel: model, outputShape: [], acceptedDamage: nil, clippedSamples: 0)
        }
        let converted = decoded.converted(toChannels: config.channels, isCMYK: isCMYK, invertedCMYK: invertedCMYK,
                                          alpha: config.alpha, background: config.background)
        let oriented = orientedSize(width: info.storedWidth, height: info.storedHeight, orientation: info.orientation)
        let resized = try resize(converted, originalWidth: oriented.width, originalHeight: oriented.height, config: config)
        info.outputShape = config.layout == .chw ? [config.channels, resized.height, resized.width] : [resized.height, resized.width, config.channels]
        return (resized, info)
    }

    static func checkPixelLimit(_ width: Int, _ height: Int, _ config: ImageConfig) throws {
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels <= config.maxPixels else {
            throw TesseraError(stage: .decode, code: "image.too-large",
                               "image is \(width)x\(height) pixels, over the limit of \(config.maxPixels) (--max-pixels)")
        }
    }

    static func orientedSize(width: Int, height: Int, orientation: Int) -> (width: Int, height: Int) {
        orientation >= 5 ? (height, width) : (width, height)
    }

    /// The size the whole image is resized to (before any crop) for an oriented `width` x `height`.
    static func resizedSize(width: Int, height: Int, config: ImageConfig) -> (width: Int, height: Int) {
        switch config.resize {
        case .none:
            return (width, height)
        case .exact:
            return (config.width, config.height)
        case .shorter:
            // Shorter side to N, longer side rounded down (512x384 -> 85x64), never below N.
            let n = config.size
            if width <= height { return (n, max(n, height * n / width)) }
            return (max(n, width * n / height), n)
        case .pad:
            // Fit inside W x H: the limiting side is exact, the other rounded down, at least 1.
            let (w, h) = (config.width, config.height)
            if width * h >= height * w { return (w, max(1, height * w / width)) }
            return (max(1, width * h / height), h)
        }
    }

    /// The smallest libjpeg scale M/8 (M = 1...8) whose output is at least as large as the resize needs.
    static func dctScale(width: Int, height: Int, orientation: Int, config: ImageConfig) -> Int {
        guard config.resize != .none else { return 8 }
        let oriented = orientedSize(width: width, height: height, orientation: orientation)
        let target = resizedSize(width: oriented.width, height: oriented.height, config: config)
        let need = orientation >= 5 ? (width: target.height, height: target.width) : target
        for m in 1...8 where (width * m + 7) / 8 >= need.width && (height * m + 7) / 8 >= need.height {
            return m
        }
        return 8
    }

    /// Resizes (and crops or pads) `image` per `config`. `originalWidth/Height` are the oriented size of
    /// the full-resolution image, from which the target size is computed even after a DCT downscale.
    static func resize(_ image: RawImage, originalWidth: Int, originalHeight: Int, config: ImageConfig) throws -> RawImage {
        let target = resizedSize(width: originalWidth, height: originalHeight, config: config)
        switch config.resize {
        case .none:
            return image
        case .exact:
            return image.resampled(toWidth: target.width, height: target.height, window: (0..<target.width, 0..<target.height), filter: config.filter)
        case .shorter:
            let n = config.size
            let x0 = (target.width - n) / 2, y0 = (target.height - n) / 2
            return image.resampled(toWidth: target.width, height: target.height, window: (x0..<(x0 + n), y0..<(y0 + n)), filter: config.filter)
        case .pad:
            let fitted = image.resampled(toWidth: target.width, height: target.height, window: (0..<target.width, 0..<target.height), filter: config.filter)
            return fitted.padded(toWidth: config.width, height: config.height, background: config.background)
        }
    }

    /// Turns interleaved pixels into the configured tensor (layout, dtype, normalisation).
    public static func assemble(_ image: RawImage, config: ImageConfig) throws -> Tensor {
        let c = image.components, h = image.height, w = image.width
        let shape = config.layout == .chw ? [c, h, w] : [h, w, c]
        switch config.dtype {
        case .uint8:
            if config.layout == .hwc { return try Tensor(shape: shape, scalars: image.pixels) }
            var tensor = try Tensor(zeros: .uint8, shape: shape)
            try tensor.withMutableScalars(UInt8.self) { out in
                image.pixels.withUnsafeBufferPointer { src in
                    guard let s = src.baseAddress, let d = out.baseAddress else { return }
                    deinterleave(s, into: d, pixels: h * w, components: c)
                }
            }
            return tensor
        case .float32:
            // One table per channel: (v / 255 - mean) / std for each of the 256 values.
            let tables: [Float] = (0..<c).flatMap { k in
                let mean = config.channelMean(k), std = config.channelStd(k)
                return (0..<256).map { Float((Double($0) / 255 - mean) / std) }
            }
            var tensor = try Tensor(zeros: .float32, shape: shape)
            try tensor.withMutableScalars(Float.self) { out in
                image.pixels.withUnsafeBufferPointer { src in
                    tables.withUnsafeBufferPointer { table in
                        guard let s = src.baseAddress, let d = out.baseAddress, let t = table.baseAddress else { return }
                        let planar = config.layout == .chw
                        let count = h * w
                        for k in 0..<c {
                            let lut = t + 256 * k
                            for i in 0..<count {
                                d[planar ? k * count + i : i * c + k] = lut[Int(s[i * c + k])]
                            }
                        }
                    }
                }
            }
            return tensor
        }
    }

    static func jpegColorModel(_ header: JPEGHeader) -> String {
        var model: String
        switch header.colorSpace {
        case 1: model = "grey"
        case 2: model = "RGB"
        case 3: model = "YCbCr"
        case 4: model = header.adobe ? "CMYK (Adobe)" : "CMYK"
        case 5: model = "YCCK"
        default: model = "\(header.components)-component"
        }
        if header.progressive { model += " progressive" }
        if header.arithmetic { model += " arithmetic" }
        return model
    }

    static func pngColorModel(_ header: PNGHeader) -> String {
        let names = [0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"]
        var model = "\(names[header.colorType] ?? "type \(header.colorType)") \(header.bitDepth)-bit"
        if header.hasTransparency { model += " tRNS" }
        if header.interlaced { model += " Adam7" }
        return model
    }
}

extension RawImage {
    /// This image centred on a `width` x `height` canvas of `background` (grey images use its first value).
    func padded(toWidth outWidth: Int, height outHeight: Int, background: [Int]) -> RawImage {
        var canvas = RawImage(width: outWidth, height: outHeight, components: components)
        let fill: [UInt8] = components == 1
            ? [UInt8((19595 * background[0] + 38470 * background[1] + 7471 * background[2] + 0x8000) >> 16)]
            : background.map { UInt8($0) }
        for i in 0..<(outWidth * outHeight) {
            for k in 0..<components { canvas.pixels[i * components + k] = fill[k] }
        }
        let x0 = (outWidth - width) / 2, y0 = (outHeight - height) / 2
        for y in 0..<height {
            for x in 0..<width {
                for k in 0..<components {
                    canvas.pixels[((y + y0) * outWidth + x + x0) * components + k] = pixels[(y * width + x) * components + k]
                }
            }
        }
        return canvas
    }
}

/// Interleaved (HWC) bytes to planes (CHW).
@inline(never)
func deinterleave(_ src: UnsafePointer<UInt8>, into dst: UnsafeMutablePointer<UInt8>, pixels: Int, components c: Int) {
    if c == 3 {
        let r = dst, g = dst + pixels, b = dst + 2 * pixels
        for i in 0..<pixels {
            r[i] = src[3 * i]
            g[i] = src[3 * i + 1]
            b[i] = src[3 * i + 2]
        }
        return
    }
    for k in 0..<c {
        let plane = dst + k * pixels
        for i in 0..<pixels { plane[i] = src[i * c + k] }
    }
}
