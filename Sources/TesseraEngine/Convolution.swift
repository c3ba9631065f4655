// Convolutions as im2col + GEMM (forward; weight gradient; input gradient through col2im), and transposed
// convolutions as their exact adjoint. The GEMMs put the long dimension (batch x positions) in N.
import TesseraCore

/// The geometry of a 2-D convolution from an input plane to an output plane.
public struct ConvGeometry: Sendable, Equatable {
    public var channels: Int
    public var inHeight: Int, inWidth: Int
    public var kernelHeight: Int, kernelWidth: Int
    public var stride: Int, padding: Int
    @inlinable public var outHeight: Int { (inHeight + 2 * padding - kernelHeight) / stride + 1 }
    @inlinable public var outWidth: Int { (inWidth + 2 * padding - kernelWidth) / stride + 1 }
    /// Rows of the column matrix: channels x kernel.
    @inlinable public var patch: Int { channels * kernelHeight * kernelWidth }

    public init(channels: Int, inHeight: Int, inWidth: Int, kernelHeight: Int, kernelWidth: Int, stride: Int, padding: Int) {
        (self.channels, self.inHeight, self.inWidth, self.kernelHeight, self.kernelWidth) = (channels, inHeight, inWidth, kernelHeight, kernelWidth)
        (self.stride, self.padding) = (stride, padding)
    }
}

/// Column-matrix bytes per block of samples (per lane). A convolution runs over the batch in blocks of
/// samples whose column matrix stays in cache between the copy that makes it and the product that reads it
/// (a whole batch's, 33 MB for W2's middle layers, went to memory and back). Measured on W2 with one lane
/// (`tessera train --json`, three alternating runs each): whole batch 413 samples/s, 4 MB 425, 8 MB 442; with
/// two lanes side by side (`tessera bench train --no-peers`, two runs of two rounds each, best rounds):
/// 8 MB 361/357, 4 MB 386/381, 2 MB 431/410, 1 MB 442/378.
@usableFromInline let columnBlockBytes = 2 << 20

/// Samples per block for a column matrix of `columnsPerSample` elements per sample (at least 1, at most the
/// batch): `chosen` when given (the tests' choice), else as many as fit `columnBlockBytes`.
@inlinable func samplesPerBlock<T>(_: T.Type, columnsPerSample: Int, batch: Int, chosen: Int?) -> Int {
    max(1, min(batch, chosen ?? columnBlockBytes / max(1, columnsPerSample * MemoryLayout<T>.stride)))
}

/// Calls `body(first, count)` for consecutive blocks of `perBlock` samples.
@inlinable func forEachBlock(_ samples: Range<Int>, perBlock: Int, _ body: (Int, Int) -> Void) {
    var first = samples.lowerBound
    while first < samples.upperBound {
        let count = min(perBlock, samples.upperBound - first)
        body(first, count)
        first += count
    }
}

/// Convolutions split the batch into this many lanes (contiguous parts of the batch), and on as many engine
/// threads each lane runs on its own thread from its copies to its products, with OpenBLAS on one thread:
/// two single-threaded products side by side measured 1.1-1.5x the rate of the same two products each on
/// two threads, and up to 3x for a weight gradient (docs/PERFORMANCE.md). The count is fixed rather than taken
/// from the thread count so that the results (weight gradients are summed lane by lane) do not depend on it.
@usableFromInline let convolutionLanes = 2

/// The samples of `lane` in a batch split into `lanes` contiguous parts.
@inlinable func laneSamples(_ lane: Int, of lanes: Int, batch: Int) -> Range<Int> {
    batch * lane / lanes ..< batch * (lane + 1) / lanes
}

/// Runs `body(lane, samples, threads)` for every lane of a batch: side by side, one engine thread each
/// with single-threaded products, when the engine has exactly one thread per lane; otherwise one lane after
/// the other, each with all the threads.
@inlinable func forEachLane(batch: Int, _ body: (Int, Range<Int>, Int) -> Void) {
    let lanes = min(convolutionLanes, batch), threads = EngineThreads.current
    guard lanes > 1 && threads == lanes else {
        for lane in 0..<lanes { body(lane, laneSamples(lane, of: lanes, batch: batch), threads) }
        return
    }
    sideBySide(lanes) { lane in body(lane, laneSamples(lane, of: lanes, batch: batch), 1) }
}

/// Samples per block within a lane: blocks of equal size (within one sample) whose column matrix fits
/// `columnBlockBytes`, or `chosen` (the tests' choice).
@inlinable func laneBlockSize<T>(_ type: T.Type, columnsPerSample: Int, batch: Int, chosen: Int?) -> Int {
    let lane = (batch + convolutionLanes - 1) / convolutionLanes
    let largest = samplesPerBlock(type, columnsPerSample: columnsPerSample, batch: lane, chosen: chosen)
    let blocks = (lane + largest - 1) / largest
    return max(1, (lane + blocks - 1) / blocks)
}

/// Adds the weight (and bias) gradients that lanes after the first summed into their own buffers
/// (`partials`, `count` elements per lane) to the first lane's, which went straight into the parameters'
/// gradients, in lane order.
@inlinable func addLanePartials<T: EngineScalar>(_ partials: UnsafePointer<T>, count: Int, lanes: Int, weight: UnsafeMutablePointer<T>,
                                               weightCount: Int, bias: UnsafeMutablePointer<T>?) {
    for lane in 1..<max(lanes, 1) {
        let partial = partials + (lane - 1) * count
        for i in 0..<weightCount { weight[i] += partial[i] }
        if let bias {
            for i in 0..<(count - weightCount) { bias[i] += partial[weightCount + i] }
        }
    }
}

/// Adds each channel's sum over [B, C, P] into `sums` (bias gradients), one thread per channel, in sample
/// order, so the sums do not depend on the thread count.
@inlinable func addChannelSums<T: EngineScalar>(_ x: UnsafePointer<T>, into sums: UnsafeMutablePointer<T>, channels: Int, batch: Int, positions: Int,
                                                threads: Int = EngineThreads.current) {
    nonisolated(unsafe) let (source, target) = (x, sums)
    parallelFor(channels, threads: threads) { range in
        for c in range {
            var s0: T = 0, s1: T = 0, s2: T = 0, s3: T = 0
            for b in 0..<batch {
                let from = source + (b * channels + c) * positions
                var i = 0
                while i + 4 <= positions {
                    s0 += from[i]; s1 += from[i + 1]; s2 += from[i + 2]; s3 += from[i + 3]
                    i += 4
                }
                while i < positions { s0 += from[i]; i += 1 }
            }
            target[c] += (s0 + s1) + (s2 + s3)
        }
    }
}

/// y [B, C, P] = bias[c] (add: += bias[c]).
@inlinable func applyChannelBias<T: EngineScalar>(_ y: UnsafeMutablePointer<T>, _ bias: UnsafePointer<T>, channels: Int, batch: Int, positions: Int,
                                                  add: Bool, threads: Int = EngineThreads.current) {
    nonisolated(unsafe) let (target, biases) = (y, bias)
    parallelFor(batch, threads: threads) { samples in
        for b in samples {
            for c in 0..<channels {
                let row = target + (b * channels + c) * positions
                let v = biases[c]
                if add {
                    for i in 0..<positions { row[i] += v }
                } else {
                    row.update(repeating: v, count: positions)
                }
            }
        }
    }
}

/// Conv2d: x [B, Cin, H, W] -> y [B, Cout, H', W'], W [Cout, Cin, kh, kw], b [Cout]; any kernel, stride, padding.
public final class Conv2d<T: EngineScalar> {
    public let inChannels: Int, outChannels: Int
    public let geometry: ConvGeometry
    public let weight: ParameterRef
    public let bias: ParameterRef?

    public init(_ params: ParameterSet<T>, _ name: String, in inChannels: Int, out outChannels: Int, kernel: Int, stride: Int = 1,
                padding: Int = 0, inputHeight: Int, inputWidth: Int, bias: Bool = true) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        geometry = ConvGeometry(channels: inChannels, inHeight: inputHeight, inWidth: inputWidth, kernelHeight: kernel, kernelWidth: kernel,
                                stride: stride, padding: padding)
        weight = params.add(name + ".weight", shape: [outChannels, inChannels, kernel, kernel])
        self.bias = bias ? params.add(name + ".bias", shape: [outChannels]) : nil
    }

    @inlinable public var outHeight: Int { geometry.outHeight }
    @inlinable public var outWidth: Int { geometry.outWidth }
    @inlinable public func outputCount(batch: Int) -> Int { batch * outChannels * outHeight * outWidth }

    public func initialize(_ params: ParameterSet<T>, _ rng: inout SeededRandom) {
        params.pytorchDefault(weight: weight, bias: bias, fanIn: geometry.patch, &rng)
    }

    /// Samples per block of a lane; nil: as many as fit `columnBlockBytes`. Only the tests set it (to
    /// compare blocks with the whole batch), before the workspace is sized.
    @usableFromInline var blockSamples: Int?

    @inlinable func blockSize(batch: Int) -> Int {
        laneBlockSize(T.self, columnsPerSample: geometry.patch * outHeight * outWidth, batch: batch, chosen: blockSamples)
    }

    /// Scratch for one lane: for one block of samples, the column matrix and the column gradient.
    @inlinable func laneWorkspace(batch: Int) -> Int {
        2 * geometry.patch * blockSize(batch: batch) * outHeight * outWidth
    }

    /// Weight and bias gradient elements, which every lane after the first sums on its own.
    @inlinable var gradientCount: Int { outChannels * geometry.patch + (bias == nil ? 0 : outChannels) }

    /// Scratch elements needed for a batch: every lane's, then the later lanes' gradient sums.
    public func workspace(batch: Int) -> Int {
        convolutionLanes * laneWorkspace(batch: batch) + (convolutionLanes - 1) * gradientCount
    }

    public func flops(batch: Int) -> Double { 2 * Double(outChannels * geometry.patch * batch * outHeight * outWidth) }

    /// One product per sample, from the block's columns straight into the sample's [Cout, P] output, which
    /// starts as the bias: no channel-major copy of the output to transpose afterwards.
    @inlinable public func forward(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, batch: Int, _ p: ParameterSet<T>, workspace: UnsafeMutablePointer<T>) {
        let positions = outHeight * outWidth, perBlock = blockSize(batch: batch), laneSpace = laneWorkspace(batch: batch)
        let inPlane = geometry.channels * geometry.inHeight * geometry.inWidth, outPlane = outChannels * positions
        let w = UnsafePointer(p.value(weight)), b = bias.map { UnsafePointer(p.value($0)) }
        forEachLane(batch: batch) { lane, samples, threads in
            let cols = workspace + lane * laneSpace
            forEachBlock(samples, perBlock: perBlock) { first, count in
                let n = count * positions
                im2col(x + first * inPlane, cols, geometry, batch: count, threads: threads)
                if let b { applyChannelBias(y + first * outPlane, b, channels: outChannels, batch: count, positions: positions, add: false, threads: threads) }
                for s in 0..<count {
                    // Y_s [Cout, P] (+)= W [Cout, patch] @ cols_s [patch, P]
                    T.gemm(transA: false, transB: false, m: outChannels, n: positions, k: geometry.patch, alpha: 1, a: w, lda: geometry.patch,
                           b: cols + s * positions, ldb: n, beta: b == nil ? 0 : 1, c: y + (first + s) * outPlane, ldc: positions)
                }
            }
        }
    }

    /// The columns are made again from x block by block (cheaper than keeping a whole batch's in memory).
    @inlinable public func backward(_ x: UnsafePointer<T>, _ dy: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>?, accumulate: Bool = false,
                         batch: Int, _ p: ParameterSet<T>, workspace: UnsafeMutablePointer<T>) {
        let positions = outHeight * outWidth, perBlock = blockSize(batch: batch), laneSpace = laneWorkspace(batch: batch)
        let inPlane = geometry.channels * geometry.inHeight * geometry.inWidth, outPlane = outChannels * positions
        let weightCount = outChannels * geometry.patch, gradients = gradientCount
        let partials = workspace + convolutionLanes * laneSpace
        let w = UnsafePointer(p.value(weight)), dW = p.grad(weight), dB = bias.map { p.grad($0) }
        forEachLane(batch: batch) { lane, samples, threads in
            let cols = workspace + lane * laneSpace, dCols = cols + geometry.patch * perBlock * positions
            let weightGrad = lane == 0 ? dW : partials + (lane - 1) * gradients
            let biasGrad = lane == 0 ? dB : dB.map { _ in weightGrad + weightCount }
            if lane > 0 { weightGrad.update(repeating: 0, count: gradients) }
            forEachBlock(samples, perBlock: perBlock) { first, count in
                let n = count * positions
                if let biasGrad {
                    addChannelSums(dy + first * outPlane, into: biasGrad, channels: outChannels, batch: count, positions: positions, threads: threads)
                }
                im2col(x + first * inPlane, cols, geometry, batch: count, threads: threads)
                for s in 0..<count {
                    // dW += dY_s [Cout, P] @ cols_sᵀ
                    T.gemm(transA: false, transB: true, m: outChannels, n: geometry.patch, k: positions, alpha: 1, a: dy + (first + s) * outPlane,
                           lda: positions, b: cols + s * positions, ldb: n, beta: 1, c: weightGrad, ldc: geometry.patch)
                }
                guard let dx else { return }
                for s in 0..<count {
                    // dcols_s = Wᵀ @ dY_s
                    T.gemm(transA: true, transB: false, m: geometry.patch, n: positions, k: outChannels, alpha: 1, a: w, lda: geometry.patch,
                           b: dy + (first + s) * outPlane, ldb: positions, beta: 0, c: dCols + s * positions, ldc: n)
                }
                col2im(dCols, dx + first * inPlane, geometry, batch: count, accumulate: accumulate, threads: threads)
            }
        }
        addLanePartials(partials, count: gradients, lanes: min(convolutionLanes, batch), weight: dW, weightCount: weightCount, bias: dB)
    }
}

/// ConvTranspose2d: x [B, Cin, H, W] -> y [B, Cout, H', W'] with H' = (H-1)s - 2p + k + output_padding;
/// W [Cin, Cout, kh, kw] (PyTorch layout), b [Cout]. The adjoint of a Conv2d from y-space to x-space.
public final class ConvTranspose2d<T: EngineScalar> {
    public let inChannels: Int, outChannels: Int
    public let inHeight: Int, inWidth: Int
    public let outHeight: Int, outWidth: Int
    /// The convolution this layer is the transpose of (from the output plane back to the input plane).
    @usableFromInline let geometry: ConvGeometry
    public let weight: ParameterRef
    public let bias: ParameterRef?

    public init(_ params: ParameterSet<T>, _ name: String, in inChannels: Int, out outChannels: Int, kernel: Int, stride: Int = 1,
                padding: Int = 0, outputPadding: Int = 0, inputHeight: Int, inputWidth: Int, bias: Bool = true) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        inHeight = inputHeight
        inWidth = inputWidth
        outHeight = (inputHeight - 1) * stride - 2 * padding + kernel + outputPadding
        outWidth = (inputWidth - 1) * stride - 2 * padding + kernel + outputPadding
        geometry = ConvGeometry(channels: outChannels, inHeight: outHeight, inWidth: outWidth, kernelHeight: kernel, kernelWidth: kernel,
                                stride: stride, padding: padding)
        weight = params.add(name + ".weight", shape: [inChannels, outChannels, kernel, kernel])
        self.bias = bias ? params.add(name + ".bias", shape: [outChannels]) : nil
    }

    @inlinable public func outputCount(batch: Int) -> Int { batch * outChannels * outHeight * outWidth }

    /// PyTorch computes a transposed convolution's fan-in from weight dimension 1 (out channels x kernel).
    public func initialize(_ params: ParameterSet<T>, _ rng: inout SeededRandom) {
        params.pytorchDefault(weight: weight, bias: bias, fanIn: geometry.patch, &rng)
    }

    /// Samples per block of a lane; nil: as many as fit `columnBlockBytes` (see Conv2d).
    @usableFromInline var blockSamples: Int?

    @inlinable func blockSize(batch: Int) -> Int {
        laneBlockSize(T.self, columnsPerSample: geometry.patch * inHeight * inWidth, batch: batch, chosen: blockSamples)
    }

    /// Scratch for one lane: the column matrix of one block of samples.
    @inlinable func laneWorkspace(batch: Int) -> Int {
        geometry.patch * blockSize(batch: batch) * inHeight * inWidth
    }

    /// Weight gradient elements, which every lane after the first sums on its own (the bias gradient is
    /// summed over the whole batch at once).
    @inlinable var gradientCount: Int { inChannels * geometry.patch }

    /// Scratch elements for a batch: every lane's, then the later lanes' weight gradient sums.
    public func workspace(batch: Int) -> Int {
        convolutionLanes * laneWorkspace(batch: batch) + (convolutionLanes - 1) * gradientCount
    }

    public func flops(batch: Int) -> Double { 2 * Double(inChannels * geometry.patch * batch * inHeight * inWidth) }

    /// One product per sample, from the sample's [Cin, P] input (no channel-major copy) into its columns.
    @inlinable public func forward(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, batch: Int, _ p: ParameterSet<T>, workspace: UnsafeMutablePointer<T>) {
        let positions = inHeight * inWidth, perBlock = blockSize(batch: batch), laneSpace = laneWorkspace(batch: batch)
        let outPlane = outChannels * outHeight * outWidth, inPlane = inChannels * positions
        let w = UnsafePointer(p.value(weight)), b = bias.map { UnsafePointer(p.value($0)) }
        forEachLane(batch: batch) { lane, samples, threads in
            let cols = workspace + lane * laneSpace
            forEachBlock(samples, perBlock: perBlock) { first, count in
                let n = count * positions
                for s in 0..<count {
                    // cols_s [Cout*k*k, P] = Wᵀ @ X_s (W viewed as [Cin, Cout*k*k])
                    T.gemm(transA: true, transB: false, m: geometry.patch, n: positions, k: inChannels, alpha: 1, a: w, lda: geometry.patch,
                           b: x + (first + s) * inPlane, ldb: positions, beta: 0, c: cols + s * positions, ldc: n)
                }
                col2im(cols, y + first * outPlane, geometry, batch: count, accumulate: false, threads: threads)
                if let b {
                    applyChannelBias(y + first * outPlane, b, channels: outChannels, batch: count, positions: outHeight * outWidth, add: true,
                                     threads: threads)
                }
            }
        }
    }

    /// The columns of dy are made block by block.
    @inlinable public func backward(_ x: UnsafePointer<T>, _ dy: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>?, accumulate: Bool = false,
                         batch: Int, _ p: ParameterSet<T>, workspace: UnsafeMutablePointer<T>) {
        let positions = inHeight * inWidth, perBlock = blockSize(batch: batch), laneSpace = laneWorkspace(batch: batch)
        let outPlane = outChannels * outHeight * outWidth, inPlane = inChannels * positions, gradients = gradientCount
        let partials = workspace + convolutionLanes * laneSpace
        let w = UnsafePointer(p.value(weight)), dW = p.grad(weight)
        if let bias { addChannelSums(dy, into: p.grad(bias), channels: outChannels, batch: batch, positions: outHeight * outWidth) }
        forEachLane(batch: batch) { lane, samples, threads in
            let cols = workspace + lane * laneSpace
            let weightGrad = lane == 0 ? dW : partials + (lane - 1) * gradients
            if lane > 0 { weightGrad.update(repeating: 0, count: gradients) }
            forEachBlock(samples, perBlock: perBlock) { first, count in
                let n = count * positions
                im2col(dy + first * outPlane, cols, geometry, batch: count, threads: threads)
                for s in 0..<count {
                    // dW [Cin, Cout*k*k] += X_s @ dcols_sᵀ
                    T.gemm(transA: false, transB: true, m: inChannels, n: geometry.patch, k: positions, alpha: 1, a: x + (first + s) * inPlane,
                           lda: positions, b: cols + s * positions, ldb: n, beta: 1, c: weightGrad, ldc: geometry.patch)
                }
                guard let dx else { return }
                for s in 0..<count {
                    // dX_s [Cin, P] (+)= W @ dcols_s
                    T.gemm(transA: false, transB: false, m: inChannels, n: positions, k: geometry.patch, alpha: 1, a: w, lda: geometry.patch,
                           b: cols + s * positions, ldb: n, beta: accumulate ? 1 : 0, c: dx + (first + s) * inPlane, ldc: positions)
                }
            }
        }
        addLanePartials(partials, count: gradients, lanes: min(convolutionLanes, batch), weight: dW, weightCount: gradients, bias: nil)
    }
}
