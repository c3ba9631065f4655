// A decoded image before the transform: interleaved 8-bit samples, row-major.

/// Interleaved 8-bit pixels: `components` samples per pixel (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA or CMYK),
/// rows of `width * components` bytes, no padding.
public struct RawImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var components: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, components: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.components = components
        self.pixels = pixels
    }

    /// An image of the given size filled with `value`.
    init(width: Int, height: Int, components: Int, filledWith value: UInt8 = 0) {
        self.init(width: width, height: height, components: components,
                  pixels: [UInt8](repeating: value, count: width * height * components))
    }
}
