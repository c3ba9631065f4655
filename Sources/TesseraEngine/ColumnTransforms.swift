// im2col and col2im: the copies between image planes and the column matrix that turns a convolution into
// one GEMM. The fast versions work out, once per kernel column, which output columns read inside the image,
// so the inner loops carry no bounds tests; the plain versions stay for the tests that hold them equal.

extension ConvGeometry {
    /// The output columns [lo, hi) whose input column `ow * stride - padding + j` lies inside the image.
    @inlinable func validColumns(kernelColumn j: Int) -> (lo: Int, hi: Int) {
        let outW = outWidth
        // iw >= 0  <=>  ow >= ceil((padding - j) / stride)
        let first = padding - j
        let lo = first <= 0 ? 0 : (first + stride - 1) / stride
        // iw <= inWidth - 1  <=>  ow <= floor((inWidth - 1 + padding - j) / stride)
        let last = inWidth - 1 + padding - j
        let hi = last < 0 ? 0 : last / stride + 1
        return (min(lo, outW), max(min(hi, outW), min(lo, outW)))
    }
}

/// cols [patch, B * outH * outW] from x [B, C, inH, inW]; column b*P + oh*outW + ow holds the patch at (oh, ow).
@inlinable public func im2col<T: EngineScalar>(_ x: UnsafePointer<T>, _ cols: UnsafeMutablePointer<T>, _ g: ConvGeometry, batch: Int,
                                        threads: Int = EngineThreads.current) {
    let outH = g.outHeight, outW = g.outWidth, positions = outH * outW
    let n = batch * positions
    let plane = g.inHeight * g.inWidth
    let stride = g.stride, padding = g.padding, inWidth = g.inWidth, inHeight = g.inHeight
    if stride > 1 {
        im2colStrided(x, cols, g, batch: batch, threads: threads)
        return
    }
    nonisolated(unsafe) let (xs, cs) = (x, cols)
    parallelFor(g.patch, minimumPerThread: 2, threads: threads) { rows in
        for row in rows {
            let c = row / (g.kernelHeight * g.kernelWidth)
            let i = (row / g.kernelWidth) % g.kernelHeight
            let j = row % g.kernelWidth
            let (lo, hi) = g.validColumns(kernelColumn: j)
            let dst = cs + row * n
            for b in 0..<batch {
                let src = xs + (b * g.channels + c) * plane
                let out = dst + b * positions
                for oh in 0..<outH {
                    let ih = oh * stride - padding + i
                    let line = out + oh * outW
                    guard ih >= 0 && ih < inHeight else {
                        line.update(repeating: 0, count: outW)
                        continue
                    }
                    if lo > 0 { line.update(repeating: 0, count: lo) }
                    if hi < outW { (line + hi).update(repeating: 0, count: outW - hi) }
                    guard hi > lo else { continue }
                    let from = src + ih * inWidth + (lo * stride - padding + j)
                    if stride == 1 {
                        (line + lo).update(from: from, count: hi - lo)
                    } else {
                        for k in 0..<(hi - lo) { line[lo + k] = from[k * stride] }
                    }
                }
            }
        }
    }
}

/// x [B, C, inH, inW] (+)= col2im(cols): the adjoint of im2col. Each (sample, channel) plane is written by
/// one thread, its kernel offsets (which overlap) in order, so the sums are the same for any thread count.
@inlinable public func col2im<T: EngineScalar>(_ cols: UnsafePointer<T>, _ x: UnsafeMutablePointer<T>, _ g: ConvGeometry, batch: Int, accumulate: Bool,
                                        threads: Int = EngineThreads.current) {
    let outH = g.outHeight, outW = g.outWidth, positions = outH * outW
    let n = batch * positions
    let plane = g.inHeight * g.inWidth
    let stride = g.stride, padding = g.padding, inWidth = g.inWidth, inHeight = g.inHeight
    if stride > 1 {
        col2imStrided(cols, x, g, batch: batch, accumulate: accumulate, threads: threads)
        return
    }
    nonisolated(unsafe) let (cs, xs) = (cols, x)
    parallelFor(batch * g.channels, minimumPerThread: 2, threads: threads) { planes in
        for index in planes {
            let b = index / g.channels, c = index % g.channels
            let dst = xs + (b * g.channels + c) * plane
            if !accumulate { dst.update(repeating: 0, count: plane) }
            for i in 0..<g.kernelHeight {
                for j in 0..<g.kernelWidth {
                    let (lo, hi) = g.validColumns(kernelColumn: j)
                    guard hi > lo else { continue }
                    let row = (c * g.kernelHeight + i) * g.kernelWidth + j
                    let from = cs + row * n + b * positions
                    for oh in 0..<outH {
                        let ih = oh * stride - padding + i
                        guard ih >= 0 && ih < inHeight else { continue }
                        let target = dst + ih * inWidth + (lo * stride - padding + j)
                        let line = from + oh * outW + lo
                        if stride == 1 {
                            for k in 0..<(hi - lo) { target[k] += line[k] }
                        } else {
                            for k in 0..<(hi - lo) { target[k * stride] += line[k] }
                        }
                    }
                }
            }
        }
    }
}

// Strided convolutions (stride s > 1) read every s-th input column, which neither copies nor vectorises. So
// each input row is first split into its s phases (columns r, r + s, r + 2s, ... for r < s): kernel column j
// then reads one phase contiguously, from output column ow at phase column ow + (j - padding - r) / s. Each
// phase row keeps a few zero columns on either side, so that every output row's window lies inside it: the
// copies and sums then run over whole output rows, with no edge cases and no short library calls (a third of
// the calls had been one-element zero fills). Measured with `tessera bench engine --only columns`
// (docs/PERFORMANCE.md).

extension ConvGeometry {
    /// Columns per phase of an input row (the longest phase).
    @inlinable var phaseWidth: Int { (inWidth + stride - 1) / stride }

    /// The phase kernel column `j` reads, and the offset from an output column to its column in that phase.
    @inlinable func phase(kernelColumn j: Int) -> (phase: Int, offset: Int) {
        let r = ((j - padding) % stride + stride) % stride
        return (r, (j - padding - r) / stride)
    }

    /// A padded phase row: zero columns before the phase's own (`left`, enough for every kernel column's
    /// window of `outWidth`), and its whole length with the zero columns after (`width`).
    @inlinable var phaseRows: (left: Int, width: Int) {
        var left = 0, right = 0
        for j in 0..<kernelWidth {
            let offset = phase(kernelColumn: j).offset
            left = max(left, -offset)
            right = max(right, outWidth - 1 + offset - (phaseWidth - 1))
        }
        return (left, left + phaseWidth + right)
    }

    /// Elements per plane of padded phase rows (`inHeight * stride` rows).
    @inlinable var phasePlaneCount: Int { inHeight * stride * phaseRows.width }
}

/// `dst[0..<count] = src[0..<count]`, or zeros when `src` is nil, or `dst += src` with `add`. Sums run inline;
/// copies and zero fills shorter than 32 elements (W2's 32-channel layers have 16) too, where a library call
/// costs more than the copy, and longer ones go to memmove and memset.
@inlinable @inline(__always) func moveRun<T: EngineScalar>(_ dst: UnsafeMutablePointer<T>, _ src: UnsafePointer<T>?, count: Int, add: Bool) {
    if add {
        guard let src else { return }
        var k = 0
        if T.self == Float.self {
            let d = UnsafeMutableRawPointer(dst), s = UnsafeRawPointer(src)
            while k &+ 8 <= count {
                let at = k &* 4
                let v = s.loadUnaligned(fromByteOffset: at, as: SIMD8<Float>.self) + d.loadUnaligned(fromByteOffset: at, as: SIMD8<Float>.self)
                d.storeBytes(of: v, toByteOffset: at, as: SIMD8<Float>.self)
                k = k &+ 8
            }
        }
        while k < count { dst[k] += src[k]; k = k &+ 1 }
        return
    }
    guard count < 32 && T.self == Float.self else {
        if let src { dst.update(from: src, count: count) } else { dst.update(repeating: 0, count: count) }
        return
    }
    let d = UnsafeMutableRawPointer(dst)
    var k = 0
    if let src {
        let s = UnsafeRawPointer(src)
        while k &+ 8 <= count {
            d.storeBytes(of: s.loadUnaligned(fromByteOffset: k &* 4, as: SIMD8<Float>.self), toByteOffset: k &* 4, as: SIMD8<Float>.self)
            k = k &+ 8
        }
        while k < count { dst[k] = src[k]; k = k &+ 1 }
    } else {
        while k &+ 8 <= count {
            d.storeBytes(of: SIMD8<Float>(), toByteOffset: k &* 4, as: SIMD8<Float>.self)
            k = k &+ 8
        }
        while k < count { dst[k] = 0; k = k &+ 1 }
    }
}

/// Splits a plane's rows into padded phases (`toPhases`: padded row `ih * s + r` holds `plane[ih][r + s t]` at
/// `left + t`, zeros elsewhere) or moves them back (the inverse, reading only the image's own columns).
@inlinable func movePhases<T: EngineScalar>(plane: UnsafeMutablePointer<T>, phases: UnsafeMutablePointer<T>, _ g: ConvGeometry, toPhases: Bool) {
    let height = g.inHeight, count = g.inWidth, stride = g.stride
    let (left, rowWidth) = g.phaseRows
    for ih in 0..<height {
        let row = plane + ih * count
        let first = phases + ih * stride * rowWidth
        if toPhases {
            // Zero every padded row of this input row; the image's columns are written over the middle.
            moveRun(first, nil, count: stride * rowWidth, add: false)
        }
        var start = 0
        if T.self == Float.self && stride == 2 {
            // Sixteen floats at a time: their even and odd lanes are the two phases' next eight.
            let raw = UnsafeMutableRawPointer(row), even = UnsafeMutableRawPointer(first + left), odd = even + rowWidth * 4
            while start + 16 <= count {
                let at = start * 4, half = start * 2
                if toPhases {
                    let v = raw.loadUnaligned(fromByteOffset: at, as: SIMD16<Float>.self)
                    even.storeBytes(of: v.evenHalf, toByteOffset: half, as: SIMD8<Float>.self)
                    odd.storeBytes(of: v.oddHalf, toByteOffset: half, as: SIMD8<Float>.self)
                } else {
                    var v = SIMD16<Float>()
                    v.evenHalf = even.loadUnaligned(fromByteOffset: half, as: SIMD8<Float>.self)
                    v.oddHalf = odd.loadUnaligned(fromByteOffset: half, as: SIMD8<Float>.self)
                    raw.storeBytes(of: v, toByteOffset: at, as: SIMD16<Float>.self)
                }
                start += 16
            }
        }
        // The rest one element at a time (unchecked arithmetic: the checked loop was most of im2col's own time).
        for r in 0..<stride {
            let phase = first + r * rowWidth + left
            var iw = start &+ r
            var t = start / stride
            while iw < count {
                if toPhases { phase[t] = row[iw] } else { row[iw] = phase[t] }
                t = t &+ 1
                iw = iw &+ stride
            }
        }
    }
}

/// `im2col` for stride > 1: each (sample, channel) plane is split into padded phases once; then every output
/// row of every kernel offset is one contiguous copy from a phase row, written in order.
@inlinable func im2colStrided<T: EngineScalar>(_ x: UnsafePointer<T>, _ cols: UnsafeMutablePointer<T>, _ g: ConvGeometry, batch: Int, threads: Int) {
    let outH = g.outHeight, outW = g.outWidth, positions = outH * outW
    let n = batch * positions
    let plane = g.inHeight * g.inWidth, (left, rowWidth) = g.phaseRows
    let stride = g.stride, padding = g.padding, kernelHeight = g.kernelHeight, kernelWidth = g.kernelWidth
    nonisolated(unsafe) let (xs, cs) = (x, cols)
    parallelFor(batch * g.channels, minimumPerThread: 2, threads: threads) { planes in
        withUnsafeTemporaryAllocation(of: T.self, capacity: g.phasePlaneCount) { buffer in
            guard let phases = buffer.baseAddress else { return }
            for index in planes {
                let b = index / g.channels, c = index % g.channels
                // Only read: the move goes into the phases.
                movePhases(plane: UnsafeMutablePointer(mutating: xs + index * plane), phases: phases, g, toPhases: true)
                for i in 0..<kernelHeight {
                    for j in 0..<kernelWidth {
                        let out = cs + ((c * kernelHeight + i) * kernelWidth + j) * n + b * positions
                        let (r, offset) = g.phase(kernelColumn: j)
                        for oh in 0..<outH {
                            let ih: Int = oh &* stride &- padding &+ i
                            var from: UnsafePointer<T>? = nil
                            if ih >= 0 && ih < g.inHeight {
                                let at: Int = (ih &* stride &+ r) &* rowWidth &+ left &+ offset
                                from = UnsafePointer(phases + at)
                            }
                            moveRun(out + oh &* outW, from, count: outW, add: false)
                        }
                    }
                }
            }
        }
    }
}

/// `col2im` for stride > 1: each (sample, channel) plane is gathered in its padded phases, where every output
/// row of every kernel offset adds as one contiguous run (in the reference's order; what lands in the padding
/// lies outside the image and is dropped), then interleaved back.
@inlinable func col2imStrided<T: EngineScalar>(_ cols: UnsafePointer<T>, _ x: UnsafeMutablePointer<T>, _ g: ConvGeometry, batch: Int, accumulate: Bool,
                                               threads: Int) {
    let outH = g.outHeight, outW = g.outWidth, positions = outH * outW
    let n = batch * positions
    let plane = g.inHeight * g.inWidth, (left, rowWidth) = g.phaseRows
    let stride = g.stride, padding = g.padding, kernelHeight = g.kernelHeight, kernelWidth = g.kernelWidth
    nonisolated(unsafe) let (cs, xs) = (cols, x)
    parallelFor(batch * g.channels, minimumPerThread: 2, threads: threads) { planes in
        withUnsafeTemporaryAllocation(of: T.self, capacity: g.phasePlaneCount) { buffer in
            guard let phases = buffer.baseAddress else { return }
            for index in planes {
                let b = index / g.channels, c = index % g.channels
                let dst = xs + index * plane
                if accumulate {
                    movePhases(plane: dst, phases: phases, g, toPhases: true)
                } else {
                    moveRun(phases, nil, count: g.phasePlaneCount, add: false)
                }
                for i in 0..<kernelHeight {
                    for j in 0..<kernelWidth {
                        let (r, offset) = g.phase(kernelColumn: j)
                        let from = cs + ((c * kernelHeight + i) * kernelWidth + j) * n + b * positions
                        for oh in 0..<outH {
                            let ih: Int = oh &* stride &- padding &+ i
                            guard ih >= 0 && ih < g.inHeight else { continue }
                            let at: Int = (ih &* stride &+ r) &* rowWidth &+ left &+ offset
                            moveRun(phases + at, from + oh &* outW, count: outW, add: true)
                        }
                    }
                }
                movePhases(plane: dst, phases: phases, g, toPhases: false)
            }
        }
    }
}

/// The plain version of `im2col` (a bounds test per element), kept for tests.
/// cols [patch, B * outH * outW] from x [B, C, inH, inW]; column b*P + oh*outW + ow holds the patch at (oh, ow).
func im2colReference<T: EngineScalar>(_ x: UnsafePointer<T>, _ cols: UnsafeMutablePointer<T>, _ g: ConvGeometry, batch: Int) {
    let outH = g.outHeight, outW = g.outWidth, positions = outH * outW
    let n = batch * positions
    let plane = g.inHeight * g.inWidth
    nonisolated(unsafe) let (xs, cs) = (x, cols)
    parallelFor(g.patch, minimumPerThread: 4) { rows in
        for row in rows {
            let c = row / (g.kernelHeight * g.kernelWidth)
            let i = (row / g.kernelWidth) % g.kernelHeight
            let j = row % g.kernelWidth
            let dst = cs + row * n
            for b in 0..<batch {
                let src = xs + (b * g.channels + c) * plane
                let out = dst + b * positions
                for oh in 0..<outH {
                    let ih = oh * g.stride - g.padding + i
                    let line = out + oh * outW
                    if ih < 0 || ih >= g.inHeight {
                        line.update(repeating: 0, count: outW)
                        continue
                    }
                    let srcRow = src + ih * g.inWidth
                    if g.stride == 1 {
                        for ow in 0..<outW {
                            let iw = ow - g.padding + j
                            line[ow] = iw >= 0 && iw < g.inWidth ? srcRow[iw] : 0
                        }
                    } else {
                        for ow in 0..<outW {
                            let iw = ow * g.stride - g.padding + j
                            line[ow] = iw >= 0 && iw < g.inWidth ? srcRow[iw] : 0
                        }
                    }
                }
            }
        }
    }
}

/// The plain version of `col2im`, kept for tests.
/// x [B, C, inH, inW] (+)= col2im(cols): the adjoint of im2col. Channels are independent, so they run in
/// parallel; the kernel offsets of one channel, which overlap, run in order.
func col2imReference<T: EngineScalar>(_ cols: UnsafePointer<T>, _ x: UnsafeMutablePointer<T>, _ g: ConvGeometry, batch: Int, accumulate: Bool) {
    let outH = g.outHeight, outW = g.outWidth, positions = outH * outW
    let n = batch * positions
    let plane = g.inHeight * g.inWidth
    nonisolated(unsafe) let (cs, xs) = (cols, x)
    parallelFor(g.channels) { channels in
        for c in channels {
            if !accumulate {
                for b in 0..<batch { (xs + (b * g.channels + c) * plane).update(repeating: 0, count: plane) }
            }
            for i in 0..<g.kernelHeight {
                for j in 0..<g.kernelWidth {
                    let row = (c * g.kernelHeight + i) * g.kernelWidth + j
                    let src = cs + row * n
                    for b in 0..<batch {
                        let dst = xs + (b * g.channels + c) * plane
                        let from = src + b * positions
                        for oh in 0..<outH {
                            let ih = oh * g.stride - g.padding + i
                            guard ih >= 0 && ih < g.inHeight else { continue }
                            let dstRow = dst + ih * g.inWidth
                            let line = from + oh * outW
                            for ow in 0..<outW {
                                let iw = ow * g.stride - g.padding + j
                                if iw >= 0 && iw < g.inWidth { dstRow[iw] += line[ow] }
                            }
                        }
                    }
                }
            }
        }
    }
}

