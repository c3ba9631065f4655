// Convolutions as im2col + GEMM (forward; weight gradient; input gradient through col2im), and transposed
// convolutions as their exact adjoint. Blocks of samples are dealt to the threads (`BlockPlan`); each
// sample's products put its positions in N and read or write its batch-major tensor in place.
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

/// Column-matrix bytes per block of samples. A convolution runs over the batch in blocks of samples whose
/// column matrix stays in cache between the copy that makes it and the products that read it (a whole
/// batch's, 33 MB for W2's middle layers, went to memory and back). Measured on W2 with each block on both
/// threads (`tessera train --json`, three alternating runs each): whole batch 413 samples/s, 4 MB 425, 8 MB
/// 442; with blocks on one thread each, side by side (`tessera bench train --no-peers`, two runs of two
/// rounds, best rounds): 8 MB 361/357, 4 MB 386/381, 2 MB 431/410, 1 MB 442/378.
@usableFromInline let columnBlockBytes = 2 << 20

/// A batch is cut into at least this many blocks (when it has the samples), so that blocks dealt to two
/// threads as they come free leave little for one thread to finish alone.
@usableFromInline let minimumBlocksPerBatch = 8

/// How a convolution works through a batch: blocks of samples dealt to the engine's threads as they come
/// free (`forEachItemDealt`), every thread with its own scratch and single-threaded products (two blocks'
/// products side by side measured 1.1-1.44x the rate of the same products each on two OpenBLAS threads,
/// `tools/bench/gemm_side_by_side.c`; docs/PERFORMANCE.md), and every block summing its own
/// weight and bias gradients, added up in block order afterwards. The blocks depend only on the batch and
/// the layer, so the results depend neither on which thread took which block nor on the thread count.
@usableFromInline struct BlockPlan {
    @usableFromInline let batch: Int, perBlock: Int, blocks: Int
    /// Threads the workspace has scratch for, and scratch elements per thread.
    @usableFromInline let workers: Int, scratch: Int
    /// Weight and bias gradient elements per block.
    @usableFromInline let gradients: Int

    /// `columnsPerSample` sizes the blocks (`chosen`: the tests' block size); `scratchPerSample` elements of
    /// scratch per sample of a block.
    @inlinable init<T>(_: T.Type, batch: Int, columnsPerSample: Int, chosen: Int?, workers: Int, scratchPerSample: Int, gradients: Int) {
        let fitting = columnBlockBytes / max(1, columnsPerSample * MemoryLayout<T>.stride)
        let spread = (batch + minimumBlocksPerBatch - 1) / minimumBlocksPerBatch
        perBlock = max(1, min(batch, chosen ?? min(fitting, spread)))
        self.batch = batch
        blocks = (batch + perBlock - 1) / perBlock
        self.workers = max(1, workers)
        scratch = scratchPerSample * perBlock
        self.gradients = gradients
    }

    /// Workspace elements: every thread's scratch, then every block's gradient sums.
    @inlinable var workspace: Int { workers * scratch + blocks * gradients }

    /// The samples of a block.
    @inlinable func samples(_ block: Int) -> (first: Int, count: Int) {
        let first = block * perBlock
        return (first, min(perBlock, batch - first))
    }

    @inlinable func scratch<T>(_ workspace: UnsafeMutablePointer<T>, worker: Int) -> UnsafeMutablePointer<T> { workspace + worker * scratch }
    @inlinable func gradients<T>(_ workspace: UnsafeMutablePointer<T>, block: Int) -> UnsafeMutablePointer<T> {
        workspace + workers * scratch + block * gradients
    }

    /// Runs `body(block, scratch)` for every block, dealt to the threads (as many as the workspace holds).
    @inlinable func forEachBlock<T>(_ workspace: UnsafeMutablePointer<T>, _ body: (Int, UnsafeMutablePointer<T>) -> Void) {
        forEachItemDealt(blocks, workers: min(workers, EngineThreads.current)) { block, worker in body(block, scratch(workspace, worker: worker)) }
    }

    /// Adds the blocks' gradient sums, in block order, to the weight gradient (the first `weightCount`
    /// elements of each block's) and the bias gradient (the rest).
    @inlinable func addBlockGradients<T: EngineScalar>(_ workspace: UnsafeMutablePointer<T>, weight: UnsafeMutablePointer<T>, weightCount: Int,
                                                       bias: UnsafeMutablePointer<T>?) {
        nonisolated(unsafe) let (first, weights, biases) = (gradients(workspace, block: 0), weight, bias)
        let (stride, blockCount) = (gradients, blocks)
        parallelFor(stride, minimumPerThread: 1 << 14) { elements in
            for i in elements {
                var sum: T = 0
                for block in 0..<blockCount { sum += first[block * stride + i] }
                if i < weightCount { weights[i] += sum } else { biases?[i - weightCount] += sum }
            }
        }
    }
}

/// Sets each block's bias gradient to its channel sums over dy [B, C, P] (in sample order), after its
/// weight gradient's `weightCount` elements. One thread per block: blocks are what the threads share out.
@inlinable func startBlockBiasGradient<T: EngineScalar>(_ blockGradients: UnsafeMutablePointer<T>, weightCount: Int, dy: UnsafePointer<T>,
                                                        channels: Int, batch: Int, positions: Int) {
    let sums = blockGradients + weightCount
    for c in 0..<channels {
        // Four partial sums break the chain of dependent adds (one add per cycle becomes four).
        var s0: T = 0, s1: T = 0, s2: T = 0, s3: T = 0
        for b in 0..<batch {
            let from = dy + (b * channels + c) * positions
            var i = 0
            while i + 4 <= positions {
                s0 += from[i]; s1 += from[i + 1]; s2 += from[i + 2]; s3 += from[i + 3]
                i += 4
            }
            while i < positions { s0 += from[i]; i += 1 }
        }
        sums[c] = (s0 + s1) + (s2 + s3)
    }
}

/// y [B, C, P] = bias[c] (add: += bias[c]), on the calling thread (within a block).
@inlinable func applyChannelBias<T: EngineScalar>(_ y: UnsafeMutablePointer<T>, _ bias: UnsafePointer<T>, channels: Int, batch: Int, positions: Int,
                                                  add: Bool) {
    for b in 0..<batch {
        for c in 0..<channels {
            let row = y + (b * channels + c) * positions
            let v = bias[c]
            if add {
                for i in 0..<positions { row[i] += v }
            } else {
                row.update(repeating: v, count: positions)
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

    /// Samples per block; nil: chosen by `BlockPlan`. Only the tests set it (to compare blocks with the
    /// whole batch), before the workspace is sized.
    @usableFromInline var blockSamples: Int?
    /// The threads the workspace holds scratch for: the engine's when it was sized.
    @usableFromInline var workers = 1

    /// Weight and bias gradient elements.
    @inlinable var gradientCount: Int { outChannels * geometry.patch + (bias == nil ? 0 : outChannels) }

    /// Per block: the column matrix and the column gradient (scratch), and the block's gradient sums.
    @inlinable func plan(batch: Int) -> BlockPlan {
        let columns = geometry.patch * outHeight * outWidth
        return BlockPlan(T.self, batch: batch, columnsPerSample: columns, chosen: blockSamples, workers: workers, scratchPerSample: 2 * columns,
                         gradients: gradientCount)
    }

    /// Scratch elements needed for a batch, on the engine's current thread count.
    public func workspace(batch: Int) -> Int {
        workers = EngineThreads.current
        return plan(batch: batch).workspace
    }

    public func flops(batch: Int) -> Double { 2 * Double(outChannels * geometry.patch * batch * outHeight * outWidth) }

    /// One product per sample, from the block's columns straight into the sample's [Cout, P] output, which
    /// starts as the bias: no channel-major copy of the output to transpose afterwards.
    @inlinable public func forward(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, batch: Int, _ p: ParameterSet<T>, workspace: UnsafeMutablePointer<T>) {
        let positions = outHeight * outWidth, plan = plan(batch: batch)
        let inPlane = geometry.channels * geometry.inHeight * geometry.inWidth, outPlane = outChannels * positions
        let w = UnsafePointer(p.value(weight)), b = bias.map { UnsafePointer(p.value($0)) }
        plan.forEachBlock(workspace) { block, cols in
            let (first, count) = plan.samples(block)
            let n = count * positions
            im2col(x + first * inPlane, cols, geometry, batch: count, threads: 1)
            if let b { applyChannelBias(y + first * outPlane, b, channels: outChannels, batch: count, positions: positions, add: false) }
            for s in 0..<count {
                // Y_s [Cout, P] (+)= W [Cout, patch] @ cols_s [patch, P]
                T.gemm(transA: false, transB: false, m: outChannels, n: positions, k: geometry.patch, alpha: 1, a: w, lda: geometry.patch,
                       b: cols + s * positions, ldb: n, beta: b == nil ? 0 : 1, c: y + (first + s) * outPlane, ldc: positions)
            }
        }
    }

    /// The columns are made again from x block by block (cheaper than keeping a whole batch's in memory).
    @inlinable public func backward(_ x: UnsafePointer<T>, _ dy: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>?, accumulate: Bool = false,
                         batch: Int, _ p: ParameterSet<T>, workspace: UnsafeMutablePointer<T>) {
        let positions = outHeight * outWidth, plan = plan(batch: batch)
        let inPlane = geometry.channels * geometry.inHeight * geometry.inWidth, outPlane = outChannels * positions
        let weightCount = outChannels * geometry.patch, hasBias = bias != nil
        let w = UnsafePointer(p.value(weight))
        plan.forEachBlock(workspace) { block, cols in
            let (first, count) = plan.samples(block)
            let n = count * positions, dCols = cols + geometry.patch * n
            let weightGrad = plan.gradients(workspace, block: block)
            if hasBias {
                startBlockBiasGradient(weightGrad, weightCount: weightCount, dy: dy + first * outPlane, channels: outChannels, batch: count,
                                       positions: positions)
            }
            im2col(x + first * inPlane, cols, geometry, batch: count, threads: 1)
            for s in 0..<count {
                // dW_block (+)= dY_s [Cout, P] @ cols_sᵀ
                T.gemm(transA: false, transB: true, m: outChannels, n: geometry.patch, k: positions, alpha: 1, a: dy + (first + s) * outPlane,
                       lda: positions, b: cols + s * positions, ldb: n, beta: s == 0 ? 0 : 1, c: weightGrad, ldc: geometry.patch)
            }
            guard let dx else { return }
            for s in 0..<count {
                // dcols_s = Wᵀ @ dY_s
                T.gemm(transA: true, transB: false, m: geometry.patch, n: positions, k: outChannels, alpha: 1, a: w, lda: geometry.patch,
                       b: dy + (first + s) * outPlane, ldb: positions, beta: 0, c: dCols + s * positions, ldc: n)
            }
            col2im(dCols, dx + first * inPlane, geometry, batch: count, accumulate: accumulate, threads: 1)
        }
        plan.addBlockGradients(workspace, weight: p.grad(weight), weightCount: weightCount, bias: bias.map { p.grad($0) })
    }
}

/// ConvTranspose2d: x [B, Cin, H, W] -> y [B, Cout, H', W'] with H' = (H-1)s - 2p + k + output_padding
/// (per axis, as PyTorch's tuple); W [Cin, Cout, kh, kw] (PyTorch layout), b [Cout]. The adjoint of a Conv2d
/// from y-space to x-space.
public final class ConvTranspose2d<T: EngineScalar> {
    public let inChannels: Int, outChannels: Int
    public let inHeight: Int, inWidth: Int
    public let outHeight: Int, outWidth: Int
    /// The convolution this layer is the transpose of (from the output plane back to the input plane).
    @usableFromInline let geometry: ConvGeometry
    public let weight: ParameterRef
    public let bias: ParameterRef?

    public convenience init(_ params: ParameterSet<T>, _ name: String, in inChannels: Int, out outChannels: Int, kernel: Int, stride: Int = 1,
                            padding: Int = 0, outputPadding: Int = 0, inputHeight: Int, inputWidth: Int, bias: Bool = true) {
        self.init(params, name, in: inChannels, out: outChannels, kernel: kernel, stride: stride, padding: padding,
                  outputPadding: (outputPadding, outputPadding), inputHeight: inputHeight, inputWidth: inputWidth, bias: bias)
    }

    /// Output padding per axis: each must be smaller than the stride for the output to be the adjoint's
    /// input (the callers check).
    public init(_ params: ParameterSet<T>, _ name: String, in inChannels: Int, out outChannels: Int, kernel: Int, stride: Int = 1,
                padding: Int = 0, outputPadding: (height: Int, width: Int), inputHeight: Int, inputWidth: Int, bias: Bool = true) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        inHeight = inputHeight
        inWidth = inputWidth
        outHeight = (inputHeight - 1) * stride - 2 * padding + kernel + outputPadding.height
        outWidth = (inputWidth - 1) * stride - 2 * padding + kernel + outputPadding.width
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

    /// Samples per block; nil: chosen by `BlockPlan` (see Conv2d).
    @usableFromInline var blockSamples: Int?
    /// The threads the workspace holds scratch for: the engine's when it was sized.
    @usableFromInline var workers = 1

    /// Weight and bias gradient elements.
    @inlinable var gradientCount: Int { inChannels * geometry.patch + (bias == nil ? 0 : outChannels) }

    /// Per block: the column matrix (scratch) and the block's gradient sums.
    @inlinable func plan(batch: Int) -> BlockPlan {
        let columns = geometry.patch * inHeight * inWidth
        return BlockPlan(T.self, batch: batch, columnsPerSample: columns, chosen: blockSamples, workers: workers, scratchPerSample: columns,
                         gradients: gradientCount)
    }

    /// Scratch elements for a batch, on the engine's current thread count.
    public func workspace(batch: Int) -> Int {
        workers = EngineThreads.current
        return plan(batch: batch).workspace
    }

    public func flops(batch: Int) -> Double { 2 * Double(inChannels * geometry.patch * batch * inHeight * inWidth) }

    /// One product per sample, from the sample's [Cin, P] input (no channel-major copy) into its columns.
    @inlinable public func forward(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, batch: Int, _ p: ParameterSet<T>, workspace: UnsafeMutablePointer<T>) {
        let positions = inHeight * inWidth, plan = plan(batch: batch)
        let outPlane = outChannels * outHeight * outWidth, inPlane = inChannels * positions
        let w = UnsafePointer(p.value(weight)), b = bias.map { UnsafePointer(p.value($0)) }
        plan.forEachBlock(workspace) { block, cols in
            let (first, count) = plan.samples(block)
            let n = count * positions
            for s in 0..<count {
                // cols_s [Cout*k*k, P] = Wᵀ @ X_s (W viewed as [Cin, Cout*k*k])
                T.gemm(transA: true, transB: false, m: geometry.patch, n: positions, k: inChannels, alpha: 1, a: w, lda: geometry.patch,
                       b: x + (first + s) * inPlane, ldb: positions, beta: 0, c: cols + s * positions, ldc: n)
            }
            col2im(cols, y + first * outPlane, geometry, batch: count, accumulate: false, threads: 1)
            if let b {
                applyChannelBias(y + first * outPlane, b, channels: outChannels, batch: count, positions: outHeight * outWidth, add: true)
            }
        }
    }

    /// The columns of dy are made block by block.
    @inlinable public func backward(_ x: UnsafePointer<T>, _ dy: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>?, accumulate: Bool = false,
                         batch: Int, _ p: ParameterSet<T>, workspace: UnsafeMutablePointer<T>) {
        let positions = inHeight * inWidth, plan = plan(batch: batch)
        let outPlane = outChannels * outHeight * outWidth, inPlane = inChannels * positions
        let weightCount = inChannels * geometry.patch, hasBias = bias != nil
        let w = UnsafePointer(p.value(weight))
        plan.forEachBlock(workspace) { block, cols in
            let (first, count) = plan.samples(block)
            let n = count * positions
            let weightGrad = plan.gradients(workspace, block: block)
            if hasBias {
                startBlockBiasGradient(weightGrad, weightCount: weightCount, dy: dy + first * outPlane, channels: outChannels, batch: count,
                                       positions: outHeight * outWidth)
            }
            im2col(dy + first * outPlane, cols, geometry, batch: count, threads: 1)
            for s in 0..<count {
                // dW_block [Cin, Cout*k*k] (+)= X_s @ dcols_sᵀ
                T.gemm(transA: false, transB: true, m: inChannels, n: geometry.patch, k: positions, alpha: 1, a: x + (first + s) * inPlane,
                       lda: positions, b: cols + s * positions, ldb: n, beta: s == 0 ? 0 : 1, c: weightGrad, ldc: geometry.patch)
            }
            guard let dx else { return }
            for s in 0..<count {
                // dX_s [Cin, P] (+)= W @ dcols_s
                T.gemm(transA: false, transB: false, m: inChannels, n: positions, k: geometry.patch, alpha: 1, a: w, lda: geometry.patch,
                       b: cols + s * positions, ldb: n, beta: accumulate ? 1 : 0, c: dx + (first + s) * inPlane, ldc: positions)
            }
        }
        plan.addBlockGradients(workspace, weight: p.grad(weight), weightCount: weightCount, bias: bias.map { p.grad($0) })
    }
}
