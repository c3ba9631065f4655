// The image transform options, shared by `decode` and `ingest`; they map onto `ImageConfig` one to one.
import ArgumentParser
import TesseraCore
import TesseraImage

extension ImageConfig.ResizeMode: ExpressibleByArgument {}
extension ImageConfig.Filter: ExpressibleByArgument {}
extension ImageConfig.Layout: ExpressibleByArgument {}
extension ImageConfig.OutputDType: ExpressibleByArgument {}
extension ImageConfig.Alpha: ExpressibleByArgument {}
extension ImageConfig.Grey16: ExpressibleByArgument {}

struct ImageOptions: ParsableArguments {
    @Option(name: .customLong("image-size"), help: "Output side for --image-resize shorter (default 64).")
    var size: Int?

    @Option(name: .customLong("image-resize"), help: "shorter (side to N, centre crop N x N; default), exact (W x H), pad (fit in W x H), none.")
    var resize: ImageConfig.ResizeMode?

    @Option(name: .customLong("image-width"), help: "Output width for exact and pad.")
    var width: Int?

    @Option(name: .customLong("image-height"), help: "Output height for exact and pad.")
    var height: Int?

    @Option(name: .customLong("image-filter"), help: "bilinear (Pillow's BILINEAR, antialiased; default) or box.")
    var filter: ImageConfig.Filter?

    @Option(name: .customLong("image-channels"), help: "1 (grey, Pillow's L weights) or 3 (RGB; default).")
    var channels: Int?

    @Option(name: .customLong("image-layout"), help: "chw (default) or hwc.")
    var layout: ImageConfig.Layout?

    @Option(name: .customLong("image-dtype"), help: "uint8 (default; mean/std recorded, applied when read) or float32 ((x/255 - mean)/std).")
    var dtype: ImageConfig.OutputDType?

    @Option(name: .customLong("image-mean"), help: "Per-channel mean in 0-1 units, e.g. 0.485,0.456,0.406.")
    var mean: String?

    @Option(name: .customLong("image-std"), help: "Per-channel std in 0-1 units, e.g. 0.229,0.224,0.225.")
    var std: String?

    @Option(name: .customLong("image-alpha"), help: "drop (as Pillow's convert(\"RGB\"); default) or composite onto --image-background.")
    var alpha: ImageConfig.Alpha?

    @Option(name: .customLong("image-background"), help: "Background r,g,b (0-255) for alpha compositing and padding (default 0,0,0).")
    var background: String?

    @Option(name: .customLong("image-grey16"), help: "16-bit grey PNG to 8 bits: pillow (clip at 255, as Pillow's convert; default) or scale (high byte).")
    var grey16: ImageConfig.Grey16?

    @Flag(name: .customLong("no-dct-scaling"), help: "Always decode JPEGs at full size before resizing.")
    var noDCTScaling = false

    @Flag(name: .customLong("no-exif-orientation"), help: "Ignore the EXIF orientation of JPEGs.")
    var noOrientation = false

    @Flag(name: .customLong("accept-truncated"), help: "Keep what decoded from corrupt or truncated images instead of failing.")
    var acceptTruncated = false

    @Option(name: .customLong("max-pixels"), help: "Refuse images larger than this many pixels (default 100000000), checked before decoding.")
    var maxPixels: Int?

    /// The configuration these options describe, starting from `base` (defaults, or a saved config).
    func config(base: ImageConfig = ImageConfig()) throws -> ImageConfig {
        var config = base
        if let size { config.size = size }
        if let resize { config.resize = resize }
        if let width { config.width = width }
        if let height { config.height = height }
        if let filter { config.filter = filter }
        if let channels { config.channels = channels }
        if let layout { config.layout = layout }
        if let dtype { config.dtype = dtype }
        if let alpha { config.alpha = alpha }
        if let grey16 { config.grey16 = grey16 }
        if let maxPixels { config.maxPixels = maxPixels }
        if noDCTScaling { config.dctScaling = false }
        if noOrientation { config.applyOrientation = false }
        if acceptTruncated { config.acceptTruncated = true }
        if let mean { config.mean = try parseNumbers(mean, option: "--image-mean") }
        if let std { config.std = try parseNumbers(std, option: "--image-std") }
        if channels == 1 {
            if mean == nil { config.mean = [config.mean.first ?? 0] }
            if std == nil { config.std = [config.std.first ?? 1] }
        }
        if let background { config.background = try parseNumbers(background, option: "--image-background").map { Int($0) } }
        try config.validate()
        return config
    }
}

/// Parses `a,b,c` into numbers, with an error naming the option.
func parseNumbers(_ text: String, option: String) throws -> [Double] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false)
    let values = parts.compactMap { Double($0.trimmingCharacters()) }
    guard !parts.isEmpty, values.count == parts.count, values.allSatisfy(\.isFinite) else {
        throw TesseraError(stage: .config, code: "config.number-list", "\(option) needs comma-separated numbers, not \"\(text)\"")
    }
    return values
}

extension Substring {
    func trimmingCharacters() -> Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
