// Resampling that reproduces Pillow's `Image.resize` (Resample.c) bit for bit: the same coefficient
// computation in double precision, the same 22-bit fixed-point weights, the same two passes
// (horizontal, then vertical) with an 8-bit intermediate and the same rounding and clipping.
// Each output pixel depends only on its own coordinates, so computing just a crop window of the
// output gives exactly the pixels Pillow's full resize would have there.

internal import CTesseraKernels

/// Fixed-point resampling weights for one axis.
struct ResampleAxis {
    /// For each output index in the window: the first input index and the number of taps.
    var first: [Int32]
    var taps: [Int32]
    /// `kernelSize` weights per output index (unused taps are 0), in 1/2^22 units.
    var weights: [Int32]
    var kernelSize: Int

    static let precisionBits = 22

    /// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for an axis resized from `inSize` to
    /// `outSize`, restricted to output indices in `window`.
    init(inSize: Int, outSize: Int, filter: ImageConfig.Filter, window: Range<Int>) {
        let baseSupport: Double = filter == .bilinear ? 1.0 : 0.5
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = baseSupport * filterScale
        kernelSize = Int(support.rounded(.up)) * 2 + 1
        first = []
        taps = []
        weights = []
        first.reserveCapacity(window.count)
        taps.reserveCapacity(window.count)
        weights.reserveCapacity(window.count * kernelSize)
        let inverseScale = 1.0 / filterScale
        var row = [Double](repeating: 0, count: kernelSize)
        for xx in window {
            let center = (Double(xx) + 0.5) * scale
            var xmin = Int((center - support + 0.5).rounded(.towardZero))
            if xmin < 0 { xmin = 0 }
            var xmax = Int((center + support + 0.5).rounded(.towardZero))
            if xmax > inSize { xmax = inSize }
            xmax -= xmin
            var total = 0.0
            for x in 0..<kernelSize {
                guard x < xmax else { row[x] = 0; continue }
                let w = ResampleAxis.kernel(filter, (Double(x + xmin) - center + 0.5) * inverseScale)
                row[x] = w
                total += w
            }
            for x in 0..<kernelSize {
                var k = x < xmax && total != 0 ? row[x] / total : 0
                k *= Double(1 << ResampleAxis.precisionBits)
                weights.append(Int32((k < 0 ? k - 0.5 : k + 0.5).rounded(.towardZero)))
            }
            first.append(Int32(xmin))
            taps.append(Int32(max(xmax, 0)))
        }
    }

    static func kernel(_ filter: ImageConfig.Filter, _ x: Double) -> Double {
        switch filter {
        case .bilinear:
            let a = abs(x)
            return a < 1 ? 1 - a : 0
        case .box:
            return x > -0.5 && x <= 0.5 ? 1 : 0
        }
    }
}

/// Pillow's clip8 on a fixed-point accumulator.
@inline(__always) private func clipFixed(_ value: Int32) -> UInt8 {
    if value >= Int32(1) << (ResampleAxis.precisionBits + 8) { return 255 }
    if value <= 0 { return 0 }
    return UInt8(truncatingIfNeeded: value >> Int32(ResampleAxis.precisionBits))
}

extension RawImage {
    /// The straightforward version of `resampled` (one accumulator per sample, taps innermost), kept as
    /// the reference the optimised version is tested against.
    func resampledReference(toWidth outWidth: Int, height outHeight: Int, window: (x: Range<Int>, y: Range<Int>),
                   filter: ImageConfig.Filter) -> RawImage {
        guard !pixels.isEmpty, !window.x.isEmpty, !window.y.isEmpty else {
            return RawImage(width: window.x.count, height: window.y.count, components: components)
        }
        let needHorizontal = outWidth != width
        let needVertical = outHeight != height
        let c = components
        let vertical = ResampleAxis(inSize: height, outSize: outHeight, filter: filter, window: window.y)
        // The input rows the vertical pass reads (all rows in the window when there is no vertical pass).
        var firstRow = window.y.lowerBound, endRow = window.y.upperBound
        if needVertical, let lo = vertical.first.first {
            firstRow = Int(lo)
            endRow = Int(vertical.first.last ?? 0) + Int(vertical.taps.last ?? 0)
            endRow = max(endRow, firstRow)
        }
        // Horizontal pass into rows firstRow..<endRow, columns of the window.
        var stage: RawImage
        if needHorizontal {
            let horizontal = ResampleAxis(inSize: width, outSize: outWidth, filter: filter, window: window.x)
            stage = RawImage(width: window.x.count, height: endRow - firstRow, components: c)
            let k = horizontal.kernelSize
            pixels.withUnsafeBufferPointer { src in
                stage.pixels.withUnsafeMutableBufferPointer { dst in
                    horizontal.weights.withUnsafeBufferPointer { weights in
                        guard let srcBase = src.baseAddress, let dstBase = dst.baseAddress, let weightBase = weights.baseAddress else { return }
                        for y in firstRow..<endRow {
                            let srcRow = srcBase + y * width * c
                            let dstRow = dstBase + (y - firstRow) * window.x.count * c
                            for xx in 0..<window.x.count {
                                let start = Int(horizontal.first[xx]), count = Int(horizontal.taps[xx])
                                let w = weightBase + xx * k
                                for channel in 0..<c {
                                    var sum: Int32 = 1 << Int32(ResampleAxis.precisionBits - 1)
                                    var p = srcRow + start * c + channel
                                    for t in 0..<count {
                                        sum &+= Int32(p.pointee) &* w[t]
                                        p += c
                                    }
                                    dstRow[xx * c + channel] = clipFixed(sum)
                                }
                            }
                        }
                    }
                }
            }
        } else {
            // No horizontal resampling: take the window's columns of the needed rows as they are.
            stage = RawImage(width: window.x.count, height: endRow - firstRow, components: c)
            let rowBytes = window.x.count * c
            pixels.withUnsafeBufferPointer { src in
                stage.pixels.withUnsafeMutableBufferPointer { dst in
                    guard let srcBase = src.baseAddress, let dstBase = dst.baseAddress else { return }
                    for y in firstRow..<endRow {
                        let from = srcBase + (y * width + window.x.lowerBound) * c
                        (dstBase + (y - firstRow) * rowBytes).update(from: from, count: rowBytes)
                    }
                }
            }
        }
        guard needVertical else { return stage }
        var out = RawImage(width: window.x.count, height: window.y.count, components: c)
        let rowSamples = window.x.count * c
        let k = vertical.kernelSize
        stage.pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                vertical.weights.withUnsafeBufferPointer { weights in
                    guard let srcBase = src.baseAddress, let dstBase = dst.baseAddress, let weightBase = weights.baseAddress else { return }
                    for yy in 0..<window.y.count {
                        let start = Int(vertical.first[yy]) - firstRow, count = Int(vertical.taps[yy])
                        let w = weightBase + yy * k
                        let dstRow = dstBase + yy * rowSamples
                        for i in 0..<rowSamples {
                            var sum: Int32 = 1 << Int32(ResampleAxis.precisionBits - 1)
                            var p = srcBase + start * rowSamples + i
                            for t in 0..<count {
                                sum &+= Int32(p.pointee) &* w[t]
                                p += rowSamples
                            }
                            dstRow[i] = clipFixed(sum)
                        }
                    }
                }
            }
        }
        return out
    }
}

extension RawImage {
    /// The pixels of `window` of this image resized to `outWidth` x `outHeight`, as Pillow's
    /// `resize((outWidth, outHeight), filter)` would give them there. Same integer arithmetic as
    /// `resampledReference` (so the same bytes), arranged for speed: the horizontal pass keeps one
    /// accumulator per channel of a pixel, the vertical pass accumulates whole rows (vectorised).
    func resampled(toWidth outWidth: Int, height outHeight: Int, window: (x: Range<Int>, y: Range<Int>),
                   filter: ImageConfig.Filter) -> RawImage {
        guard !pixels.isEmpty, !window.x.isEmpty, !window.y.isEmpty else {
            return RawImage(width: window.x.count, height: window.y.count, components: components)
        }
        let c = components
        let needHorizontal = outWidth != width, needVertical = outHeight != height
        let vertical = ResampleAxis(inSize: height, outSize: outHeight, filter: filter, window: window.y)
        var firstRow = window.y.lowerBound, endRow = window.y.upperBound
        if needVertical, let lo = vertical.first.first {
            firstRow = Int(lo)
            endRow = max(firstRow, Int(vertical.first.last ?? 0) + Int(vertical.taps.last ?? 0))
        }
        let columns = window.x.count
        var stage = RawImage(width: columns, height: endRow - firstRow, components: c)
        pixels.withUnsafeBufferPointer { src in
            stage.pixels.withUnsafeMutableBufferPointer { dst in
                guard let srcBase = src.baseAddress, let dstBase = dst.baseAddress else { return }
                if needHorizontal {
                    let axis = ResampleAxis(inSize: width, outSize: outWidth, filter: filter, window: window.x)
                    axis.weights.withUnsafeBufferPointer { weights in
                        guard let weightBase = weights.baseAddress else { return }
                        for y in firstRow..<endRow {
                            horizontalPass(srcBase + y * width * c, width: width, dstBase + (y - firstRow) * columns * c,
                                           axis: axis, weights: weightBase, components: c)
                        }
                    }
                } else {
                    for y in firstRow..<endRow {
                        (dstBase + (y - firstRow) * columns * c).update(from: srcBase + (y * width + window.x.lowerBound) * c, count: columns * c)
                    }
                }
            }
        }
        guard needVertical else { return stage }
        var out = RawImage(width: columns, height: window.y.count, components: c)
        let rowSamples = columns * c
        var accumulator = [Int32](repeating: 0, count: rowSamples)
        stage.pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                vertical.weights.withUnsafeBufferPointer { weights in
                    accumulator.withUnsafeMutableBufferPointer { acc in
                        guard let srcBase = src.baseAddress, let dstBase = dst.baseAddress,
                              let weightBase = weights.baseAddress, let accBase = acc.baseAddress else { return }
                        for yy in 0..<window.y.count {
                            let start = Int(vertical.first[yy]) - firstRow
                            tessera_resample_rows_u8(srcBase + start * rowSamples, rowSamples, Int(vertical.taps[yy]),
                                                     weightBase + yy * vertical.kernelSize, accBase, dstBase + yy * rowSamples)
                        }
                    }
                }
            }
        }
        return out
    }
}

private let halfUnit: Int32 = 1 << Int32(ResampleAxis.precisionBits - 1)

/// One row of the horizontal pass: every output column of the window from one input row.
@inline(never)
private func horizontalPass(_ src: UnsafePointer<UInt8>, width: Int, _ dst: UnsafeMutablePointer<UInt8>, axis: ResampleAxis,
                            weights: UnsafePointer<Int32>, components c: Int) {
    let k = axis.kernelSize
    axis.first.withUnsafeBufferPointer { firsts in
        axis.taps.withUnsafeBufferPointer { taps in
            switch c {
            case 3:
                // RGB, the common case, in C: one SSE4.1 multiply-add per tap for all three channels (two taps per AVX2 one).
                guard let firstBase = firsts.baseAddress, let tapBase = taps.baseAddress else { return }
                tessera_resample_row_rgb(src, width, dst, firstBase, tapBase, weights, k, firsts.count, 1)
            case 1:
                for xx in 0..<firsts.count {
                    let p = src + Int(firsts[xx])
                    let w = weights + xx * k
                    var s = halfUnit
                    for t in 0..<Int(taps[xx]) { s &+= Int32(p[t]) &* w[t] }
                    dst[xx] = clipFixed(s)
                }
            default:
                for xx in 0..<firsts.count {
                    let w = weights + xx * k
                    for channel in 0..<c {
                        var p = src + Int(firsts[xx]) * c + channel
                        var s = halfUnit
                        for t in 0..<Int(taps[xx]) {
                            s &+= Int32(p.pointee) &* w[t]
                            p += c
                        }
                        dst[xx * c + channel] = clipFixed(s)
                    }
                }
            }
        }
    }
}
