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
// then reads one phase contiguously, from output column ow at phase column ow + (j - padding - r) / s.
// Measured on W2's geometries with `tessera bench engine` (docs/PERFORMANCE.md).

extension ConvGeometry {
    /// Columns per phase of an input row (the longest phase).
    @inlinable var phaseWidth: Int { (inWidth + stride - 1) / stride }

    /// The phase kernel column `j` reads, and the offset from an output column to its column in that phase.
    @inlinable func phase(kernelColumn j: Int) -> (phase: Int, offset: Int) {
        let r = ((j - padding) % stride + stride) % stride
        return (r, (j - padding - r) / stride)
    }
}

/// Moves a plane's rows into their phases (`toPhases`: `phases[(ih * s + r) * width + t] = plane[ih][r + s t]`)
/// or back (the inverse).
@inlinable func movePhases<T>(plane: UnsafeMutablePointer<T>, phases: UnsafeMutablePointer<T>, height: Int, count: Int, stride: Int, width: Int,
                              toPhases: Bool) {
    for ih in 0..<height {
        let row = plane + ih * count
        var start = 0
        if T.self == Float.self && stride == 2 {
            // Sixteen floats at a time: their even and odd lanes are the two phases' next eight.
            let raw = UnsafeMutableRawPointer(row), even = UnsafeMutableRawPointer(phases + ih * 2 * width), odd = even + width * 4
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
            let phase = phases + (ih * stride + r) * width
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

/// `im2col` for stride > 1: each (sample, channel) plane is split into phases once; then each kernel
/// offset's rows of columns are contiguous copies from one phase, written in order.
@inlinable func im2colStrided<T: EngineScalar>(_ x: UnsafePointer<T>, _ cols: UnsafeMutablePointer<T>, _ g: ConvGeometry, batch: Int, threads: Int) {
    let outH = g.outHeight, outW = g.outWidth, positions = outH * outW
    let n = batch * positions
    let plane = g.inHeight * g.inWidth, width = g.phaseWidth, phasePlane = g.inHeight * g.stride * width
    let stride = g.stride, padding = g.padding, kernelHeight = g.kernelHeight, kernelWidth = g.kernelWidth
    nonisolated(unsafe) let (xs, cs) = (x, cols)
    parallelFor(batch * g.channels, minimumPerThread: 2, threads: threads) { planes in
        withUnsafeTemporaryAllocation(of: T.self, capacity: phasePlane) { buffer in
            guard let phases = buffer.baseAddress else { return }
            for index in planes {
                let b = index / g.channels, c = index % g.channels
                // Only read: the move goes into the phases.
                movePhases(plane: UnsafeMutablePointer(mutating: xs + index * plane), phases: phases, height: g.inHeight, count: g.inWidth, stride: stride,
                           width: width, toPhases: true)
                for i in 0..<kernelHeight {
                    for j in 0..<kernelWidth {
                        let out = cs + ((c * kernelHeight + i) * kernelWidth + j) * n + b * positions
                        let (lo, hi) = g.validColumns(kernelColumn: j)
                        let (r, offset) = g.phase(kernelColumn: j)
                        for oh in 0..<outH {
                            let ih = oh * stride - padding + i
                            let line = out + oh * outW
                            guard ih >= 0 && ih < g.inHeight else {
                                line.update(repeating: 0, count: outW)
                                continue
                            }
                            if lo > 0 { line.update(repeating: 0, count: lo) }
                            if hi < outW { (line + hi).update(repeating: 0, count: outW - hi) }
                            if hi > lo { (line + lo).update(from: phases + (ih * stride + r) * width + lo + offset, count: hi - lo) }
                        }
                    }
                }
            }
        }
    }
}

/// `col2im` for stride > 1: each (sample, channel) plane is gathered in its phases, where every kernel
/// offset's contribution is a contiguous run (added in the reference's order), then interleaved back.
@inlinable func col2imStrided<T: EngineScalar>(_ cols: UnsafePointer<T>, _ x: UnsafeMutablePointer<T>, _ g: ConvGeometry, batch: Int, accumulate: Bool,
                                               threads: Int) {
    let outH = g.outHeight, outW = g.outWidth, positions = outH * outW
    let n = batch * positions
    let plane = g.inHeight * g.inWidth, width = g.phaseWidth, phasePlane = g.inHeight * g.stride * width
    let stride = g.stride, padding = g.padding, kernelHeight = g.kernelHeight, kernelWidth = g.kernelWidth
    nonisolated(unsafe) let (cs, xs) = (cols, x)
    parallelFor(batch * g.channels, minimumPerThread: 2, threads: threads) { planes in
        withUnsafeTemporaryAllocation(of: T.self, capacity: phasePlane) { buffer in
            guard let phases = buffer.baseAddress else { return }
            for index in planes {
                let b = index / g.channels, c = index % g.channels
                let dst = xs + index * plane
                if accumulate {
                    movePhases(plane: dst, phases: phases, height: g.inHeight, count: g.inWidth, stride: stride, width: width, toPhases: true)
                } else {
                    phases.update(repeating: 0, count: phasePlane)
                }
                for i in 0..<kernelHeight {
                    for j in 0..<kernelWidth {
                        let (lo, hi) = g.validColumns(kernelColumn: j)
                        guard hi > lo else { continue }
                        let (r, offset) = g.phase(kernelColumn: j)
                        let from = cs + ((c * kernelHeight + i) * kernelWidth + j) * n + b * positions
                        for oh in 0..<outH {
                            let ih = oh * stride - padding + i
                            guard ih >= 0 && ih < g.inHeight else { continue }
                            let target = phases + (ih * stride + r) * width + lo + offset
                            let line = from + oh * outW + lo
                            for k in 0..<(hi - lo) { target[k] += line[k] }
                        }
                    }
                }
                movePhases(plane: dst, phases: phases, height: g.inHeight, count: g.inWidth, stride: stride, width: width, toPhases: false)
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

