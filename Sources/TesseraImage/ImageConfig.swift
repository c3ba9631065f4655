// The image transform, defined once: `tessera decode`, `tessera ingest` and the manifest's schema all
// use this type (the CLI's option group maps onto it field by field).
import TesseraCore

/// How an image becomes a tensor.
public struct ImageConfig: Codable, Sendable, Equatable {
    /// How the decoded image is brought to the output size.
    public enum ResizeMode: String, Codable, Sendable, CaseIterable {
        /// Shorter side to `size` (aspect kept, longer side rounded down), then a centre crop `size` x `size`.
        case shorter
        /// Exactly `width` x `height`, aspect not kept.
        case exact
        /// Fit inside `width` x `height` (aspect kept), centred on a `background` canvas.
        case pad
        /// No resize, no crop.
        case none
    }

    /// The resampling filter.
    public enum Filter: String, Codable, Sendable, CaseIterable {
        /// Pillow's BILINEAR (triangle filter whose support widens on a downscale: antialiasing).
        case bilinear
        /// Pillow's BOX (area average on a downscale).
        case box
    }

    /// Tensor layout.
    public enum Layout: String, Codable, Sendable, CaseIterable {
        case chw, hwc
    }

    /// Element type of the output tensor.
    public enum OutputDType: String, Codable, Sendable, CaseIterable {
        /// Raw 0-255 values; mean/std are recorded for the reader to apply.
        case uint8
        /// `(value / 255 - mean) / std` per channel.
        case float32
    }

    /// What happens to alpha (an alpha channel, or PNG tRNS transparency).
    public enum Alpha: String, Codable, Sendable, CaseIterable {
        /// Dropped, as Pillow's `convert("RGB")` does.
        case drop
        /// Composited onto `background`.
        case composite
    }

    /// How 16-bit greyscale PNG samples become 8-bit.
    public enum Grey16: String, Codable, Sendable, CaseIterable {
        /// As Pillow's `convert("L")`/`convert("RGB")` of its "I;16" mode: values above 255 clip to 255.
        case pillow
        /// The high byte (value >> 8), as Pillow itself reduces 16-bit RGB, grey+alpha and RGBA.
        case scale
    }

    public var resize: ResizeMode = .shorter
    /// Output side for `shorter`.
    public var size: Int = 64
    /// Output width for `exact` and `pad`.
    public var width: Int = 64
    /// Output height for `exact` and `pad`.
    public var height: Int = 64
    public var filter: Filter = .bilinear
    /// 1 (grey, Pillow's "L" weights) or 3 (RGB).
    public var channels: Int = 3
    public var layout: Layout = .chw
    public var dtype: OutputDType = .uint8
    /// Per-channel mean, in 0-1 units (one value per output channel).
    public var mean: [Double] = [0, 0, 0]
    /// Per-channel standard deviation, in 0-1 units.
    public var std: [Double] = [1, 1, 1]
    /// Decode JPEGs at a reduced DCT scale when the output is much smaller (libjpeg `scale_num`/8).
    public var dctScaling: Bool = true
    /// Accept what decoded from corrupt or truncated data instead of failing.
    public var acceptTruncated: Bool = false
    /// Largest accepted image, in pixels, checked against the header before any pixel memory exists.
    public var maxPixels: Int = 100_000_000
    public var alpha: Alpha = .drop
    /// Background (RGB 0-255) for `alpha = composite` and for `pad`.
    public var background: [Int] = [0, 0, 0]
    public var grey16: Grey16 = .pillow
    /// Apply the EXIF orientation of JPEGs (as Pillow's `ImageOps.exif_transpose`).
    public var applyOrientation: Bool = true

    public init() {}

    /// Decodes a config in which any field may be missing (it takes its default), so configs written by
    /// older versions and hand-written partial configs both load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ImageConfig()
        resize = try c.decodeIfPresent(ResizeMode.self, forKey: .resize) ?? d.resize
        size = try c.decodeIfPresent(Int.self, forKey: .size) ?? d.size
        width = try c.decodeIfPresent(Int.self, forKey: .width) ?? d.width
        height = try c.decodeIfPresent(Int.self, forKey: .height) ?? d.height
        filter = try c.decodeIfPresent(Filter.self, forKey: .filter) ?? d.filter
        channels = try c.decodeIfPresent(Int.self, forKey: .channels) ?? d.channels
        layout = try c.decodeIfPresent(Layout.self, forKey: .layout) ?? d.layout
        dtype = try c.decodeIfPresent(OutputDType.self, forKey: .dtype) ?? d.dtype
        mean = try c.decodeIfPresent([Double].self, forKey: .mean) ?? (channels == 1 ? [0] : d.mean)
        std = try c.decodeIfPresent([Double].self, forKey: .std) ?? (channels == 1 ? [1] : d.std)
        dctScaling = try c.decodeIfPresent(Bool.self, forKey: .dctScaling) ?? d.dctScaling
        acceptTruncated = try c.decodeIfPresent(Bool.self, forKey: .acceptTruncated) ?? d.acceptTruncated
        maxPixels = try c.decodeIfPresent(Int.self, forKey: .maxPixels) ?? d.maxPixels
        alpha = try c.decodeIfPresent(Alpha.self, forKey: .alpha) ?? d.alpha
        background = try c.decodeIfPresent([Int].self, forKey: .background) ?? d.background
        grey16 = try c.decodeIfPresent(Grey16.self, forKey: .grey16) ?? d.grey16
        applyOrientation = try c.decodeIfPresent(Bool.self, forKey: .applyOrientation) ?? d.applyOrientation
    }

    /// Checks the fields against each other. Throws a `TesseraError` (stage `.config`) naming the field.
    public func validate() throws {
        func fail(_ message: String) -> TesseraError { TesseraError(stage: .config, code: "config.image", message) }
        guard channels == 1 || channels == 3 else { throw fail("--image-channels must be 1 or 3, not \(channels)") }
        switch resize {
        case .shorter: guard size >= 1 && size <= 65_536 else { throw fail("--image-size must be 1...65536") }
        case .exact, .pad:
            guard width >= 1 && width <= 65_536 && height >= 1 && height <= 65_536 else {
                throw fail("--image-width and --image-height must be 1...65536")
            }
        case .none: break
        }
        guard mean.count == channels || mean.count == 1 || (mean.count == 3 && channels == 1) else {
            throw fail("--image-mean needs \(channels) values")
        }
        guard std.count == mean.count || std.count == 1 || (std.count == 3 && channels == 1) else {
            throw fail("--image-std needs \(channels) values")
        }
        guard std.allSatisfy({ $0 > 0 && $0.isFinite }), mean.allSatisfy(\.isFinite) else {
            throw fail("--image-std values must be positive and --image-mean finite")
        }
        // Normalised pixels are float32 (here for --image-dtype float32, in the loader otherwise): both ends of
        // [0, 1] must stay finite there.
        for c in 0..<max(mean.count, std.count) {
            let m = mean[min(c, mean.count - 1)], d = std[min(c, std.count - 1)]
            guard Float(-m / d).isFinite, Float((1 - m) / d).isFinite else {
                throw fail("--image-mean \(m) with --image-std \(d) puts pixels beyond float32's range")
            }
        }
        guard background.count == 3, background.allSatisfy({ (0...255).contains($0) }) else {
            throw fail("--image-background needs three values 0...255")
        }
        guard maxPixels >= 1 else { throw fail("--max-pixels must be positive") }
        // The output is held (and resampled) in memory too, so it is bounded before anything is allocated, as a
        // dataset's sample is: 2 GiB (`none` keeps the input's size, which --max-pixels bounds).
        let pixels = resize == .shorter ? size * size : (resize == .none ? 0 : width * height)
        let bytes = pixels * channels * (dtype == .float32 ? 4 : 1)
        guard bytes <= 1 << 31 else {
            let side = resize == .shorter ? "\(size) x \(size)" : "\(width) x \(height)"
            throw fail("the output image (\(side) x \(channels) channels, \(bytes >> 20) MiB) is over 2 GiB")
        }
    }

    /// The per-channel mean for `channel` (a single value applies to all channels).
    public func channelMean(_ channel: Int) -> Double { mean.count == 1 ? mean[0] : mean[min(channel, mean.count - 1)] }
    /// The per-channel std for `channel`.
    public func channelStd(_ channel: Int) -> Double { std.count == 1 ? std[0] : std[min(channel, std.count - 1)] }

    /// The output tensor shape for an image whose oriented size is `width` x `height`
    /// (only `none` depends on the image).
    public func outputShape(imageWidth: Int, imageHeight: Int) -> [Int] {
        let (w, h) = outputSize(imageWidth: imageWidth, imageHeight: imageHeight)
        return layout == .chw ? [channels, h, w] : [h, w, channels]
    }

    /// The output width and height.
    public func outputSize(imageWidth: Int, imageHeight: Int) -> (width: Int, height: Int) {
        switch resize {
        case .shorter: return (size, size)
        case .exact, .pad: return (width, height)
        case .none: return (imageWidth, imageHeight)
        }
    }

    /// Whether every image gives the same output shape (all modes but `none`).
    public var hasFixedShape: Bool { resize != .none }
}
