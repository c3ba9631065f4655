// Colour conversions with Pillow's exact integer formulas, so that tensors equal Pillow's `convert`.

extension RawImage {
    /// The image with `channels` (1 or 3) components, following Pillow:
    /// - grey to RGB replicates; RGB to grey is `L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16`;
    /// - alpha is dropped (`convert("RGB")`) or composited onto `background`;
    /// - CMYK (inverted first when Adobe stored it so) to RGB is `255 - K - C (255 - K) / 255`, rounded.
    func converted(toChannels channels: Int, isCMYK: Bool, invertedCMYK: Bool, alpha: ImageConfig.Alpha, background: [Int]) -> RawImage {
        var image = self
        if isCMYK { image = image.cmykToRGB(inverted: invertedCMYK) }
        if image.components == 2 || image.components == 4 {
            image = alpha == .composite ? image.compositedOnto(background) : image.droppingAlpha()
        }
        if image.components == channels { return image }
        return channels == 1 ? image.rgbToGrey() : image.greyToRGB()
    }

    private func cmykToRGB(inverted: Bool) -> RawImage {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        let count = width * height
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<count {
                    var c = Int(src[4 * i]), m = Int(src[4 * i + 1]), y = Int(src[4 * i + 2]), k = Int(src[4 * i + 3])
                    if inverted { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k }
                    let nk = 255 - k
                    dst[3 * i] = clip8(nk - mulDiv255(c, nk))
                    dst[3 * i + 1] = clip8(nk - mulDiv255(m, nk))
                    dst[3 * i + 2] = clip8(nk - mulDiv255(y, nk))
                }
            }
        }
        return RawImage(width: width, height: height, components: 3, pixels: out)
    }

    func droppingAlpha() -> RawImage {
        let colour = components - 1
        var out = [UInt8](repeating: 0, count: width * height * colour)
        let count = width * height
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<count {
                    for k in 0..<colour { dst[colour * i + k] = src[components * i + k] }
                }
            }
        }
        return RawImage(width: width, height: height, components: colour, pixels: out)
    }

    /// out = (colour * alpha + background * (255 - alpha)) / 255, rounded. Grey+alpha composites onto
    /// the background's grey value (Pillow's L weights).
    private func compositedOnto(_ background: [Int]) -> RawImage {
        let colour = components - 1
        let backgroundGrey = (19595 * background[0] + 38470 * background[1] + 7471 * background[2] + 0x8000) >> 16
        let backdrop = colour == 1 ? [backgroundGrey] : background
        var out = [UInt8](repeating: 0, count: width * height * colour)
        let count = width * height
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<count {
                    let a = Int(src[components * i + colour])
                    for k in 0..<colour {
                        let v = Int(src[components * i + k]) * a + backdrop[k] * (255 - a)
                        dst[colour * i + k] = UInt8((v + 127) / 255)
                    }
                }
            }
        }
        return RawImage(width: width, height: height, components: colour, pixels: out)
    }

    private func rgbToGrey() -> RawImage {
        var out = [UInt8](repeating: 0, count: width * height)
        let count = width * height
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<count {
                    let r = Int(src[3 * i]), g = Int(src[3 * i + 1]), b = Int(src[3 * i + 2])
                    dst[i] = UInt8((19595 * r + 38470 * g + 7471 * b + 0x8000) >> 16)
                }
            }
        }
        return RawImage(width: width, height: height, components: 1, pixels: out)
    }

    private func greyToRGB() -> RawImage {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        let count = width * height
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<count {
                    let v = src[i]
                    dst[3 * i] = v
                    dst[3 * i + 1] = v
                    dst[3 * i + 2] = v
                }
            }
        }
        return RawImage(width: width, height: height, components: 3, pixels: out)
    }
}

/// Pillow's MULDIV255: a * b / 255 rounded, in integers.
@inline(__always) func mulDiv255(_ a: Int, _ b: Int) -> Int {
    let t = a * b + 128
    return ((t >> 8) + t) >> 8
}

@inline(__always) func clip8(_ v: Int) -> UInt8 { UInt8(max(0, min(255, v))) }
