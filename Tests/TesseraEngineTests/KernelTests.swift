import Testing
import TesseraCore
@testable import TesseraEngine

/// The fast im2col/col2im against their plain reference versions, exactly, over many geometries; and the
/// bookkeeping the benchmark and the trainer rely on.
@Suite struct KernelTests {
    static var geometries: [ConvGeometry] {
        var out: [ConvGeometry] = []
        for kernel in 1...5 {
            for stride in 1...3 {
                for padding in 0...2 where padding < kernel {
                    for (h, w) in [(5, 7), (8, 8), (3, 4), (4, 32), (3, 37)] where h + 2 * padding >= kernel && w + 2 * padding >= kernel {
                        out.append(ConvGeometry(channels: 2, inHeight: h, inWidth: w, kernelHeight: kernel, kernelWidth: kernel,
                                                stride: stride, padding: padding))
                    }
                }
            }
        }
        return out
    }

    @Test func fastColumnTransformsEqualTheReference() {
        var rng = SeededRandom(seed: 3)
        for threads in [1, 2] {
            for g in Self.geometries {
                let batch = 3
                let inputCount = batch * g.channels * g.inHeight * g.inWidth
                let colCount = g.patch * batch * g.outHeight * g.outWidth
                let x = (0..<inputCount).map { _ in rng.nextUnitFloat() - 0.5 }
                var fast = [Float](repeating: .nan, count: colCount), plain = fast
                im2col(x, &fast, g, batch: batch, threads: threads)
                im2colReference(x, &plain, g, batch: batch)
                #expect(fast == plain, "im2col \(g)")
                let cols = (0..<colCount).map { _ in rng.nextUnitFloat() - 0.5 }
                var back = [Float](repeating: 1, count: inputCount), backPlain = back
                col2im(cols, &back, g, batch: batch, accumulate: true, threads: threads)
                col2imReference(cols, &backPlain, g, batch: batch, accumulate: true)
                #expect(back == backPlain, "col2im \(g)")
                var fresh = [Float](repeating: .nan, count: inputCount), freshPlain = [Float](repeating: 7, count: inputCount)
                col2im(cols, &fresh, g, batch: batch, accumulate: false, threads: threads)
                col2imReference(cols, &freshPlain, g, batch: batch, accumulate: false)
                #expect(fresh == freshPlain, "col2im without accumulation \(g)")
            }
        }
    }

    /// Convolutions run over the batch in blocks of samples: blocks give the whole batch's outputs and
    /// gradients within float rounding (weight gradients are summed block by block, and OpenBLAS may take
    /// another kernel for a product with fewer columns).
    @Test func convolutionsInBlocksEqualTheWholeBatch() {
        var rng = SeededRandom(seed: 11)
        let batch = 5
        func run<Layer: ConvolutionLayer>(_ make: () -> (Layer, ParameterSet<Float>), inputCount: Int, outputCount: Int, blocks: Int?,
                                          setBlocks: (Layer, Int?) -> Void, x: [Float], dy: [Float]) -> (y: [Float], dx: [Float], grads: [Float])
            where Layer.Scalar == Float {
            let (layer, params) = make()
            setBlocks(layer, blocks)
            var weights = SeededRandom(seed: 5)
            params.finalize()
            for i in 0..<params.count { params.values[i] = weights.nextUnitFloat() - 0.5 }
            params.zeroGrads()
            let arena = Arena<Float>()
            let slot = arena.reserve(layer.workspace(batch: batch))
            arena.finalize()
            var y = [Float](repeating: .nan, count: outputCount), dx = [Float](repeating: .nan, count: inputCount)
            layer.forward(x, &y, batch: batch, params, workspace: arena.pointer(slot))
            dx.withUnsafeMutableBufferPointer { d in
                layer.backward(x, dy, d.baseAddress, accumulate: false, batch: batch, params, workspace: arena.pointer(slot))
            }
            return (y, dx, Array(UnsafeBufferPointer(start: params.grads, count: params.count)))
        }
        // Conv2d(3->4, k3 s2 p1) on 9x9, and ConvTranspose2d(4->3, k4 s2 p1) from 5x5 to 10x10.
        let convIn = batch * 3 * 9 * 9, convOut = batch * 4 * 5 * 5
        let x = (0..<convIn).map { _ in rng.nextUnitFloat() - 0.5 }, dy = (0..<convOut).map { _ in rng.nextUnitFloat() - 0.5 }
        let makeConv = { () -> (Conv2d<Float>, ParameterSet<Float>) in
            let params = ParameterSet<Float>()
            return (Conv2d(params, "c", in: 3, out: 4, kernel: 3, stride: 2, padding: 1, inputHeight: 9, inputWidth: 9), params)
        }
        let whole = run(makeConv, inputCount: convIn, outputCount: convOut, blocks: nil, setBlocks: { $0.blockSamples = $1 }, x: x, dy: dy)
        for blocks in [1, 2] {
            let blocked = run(makeConv, inputCount: convIn, outputCount: convOut, blocks: blocks, setBlocks: { $0.blockSamples = $1 }, x: x, dy: dy)
            #expect(tensorRelativeError(blocked.y, whole.y) < 1e-5 && tensorRelativeError(blocked.dx, whole.dx) < 1e-5, "Conv2d in blocks of \(blocks)")
            #expect(tensorRelativeError(blocked.grads, whole.grads) < 1e-5, "Conv2d weight gradients in blocks of \(blocks)")
        }
        let deconvIn = batch * 4 * 5 * 5, deconvOut = batch * 3 * 10 * 10
        let u = (0..<deconvIn).map { _ in rng.nextUnitFloat() - 0.5 }, du = (0..<deconvOut).map { _ in rng.nextUnitFloat() - 0.5 }
        let makeDeconv = { () -> (ConvTranspose2d<Float>, ParameterSet<Float>) in
            let params = ParameterSet<Float>()
            return (ConvTranspose2d(params, "d", in: 4, out: 3, kernel: 4, stride: 2, padding: 1, inputHeight: 5, inputWidth: 5), params)
        }
        let wholeT = run(makeDeconv, inputCount: deconvIn, outputCount: deconvOut, blocks: nil, setBlocks: { $0.blockSamples = $1 }, x: u, dy: du)
        for blocks in [1, 3] {
            let blocked = run(makeDeconv, inputCount: deconvIn, outputCount: deconvOut, blocks: blocks, setBlocks: { $0.blockSamples = $1 }, x: u, dy: du)
            #expect(tensorRelativeError(blocked.y, wholeT.y) < 1e-5 && tensorRelativeError(blocked.dx, wholeT.dx) < 1e-5, "ConvTranspose2d in blocks of \(blocks)")
            #expect(tensorRelativeError(blocked.grads, wholeT.grads) < 1e-5, "ConvTranspose2d weight gradients in blocks of \(blocks)")
        }
        #expect(!whole.y.contains { $0.isNaN } && !wholeT.dx.contains { $0.isNaN })
    }

    /// The vectorised cross-entropy row (polynomial exp, 16 lanes) against the plain one (libm's expf), on
    /// widths around the lane count and logits from -1000 to 80.
    @Test func crossEntropyRowMatchesThePlainRow() {
        var rng = SeededRandom(seed: 9)
        for classes in [1, 2, 15, 16, 17, 33, 483, 4096] {
            for spread: Float in [0.01, 3, 30, 1000] {
                var x = (0..<classes).map { _ in (rng.nextUnitFloat() - 0.8) * spread }
                if classes > 3 { x[1] = 80; x[2] = -1000 }
                let target = classes / 2
                var fast = [Float](repeating: .nan, count: classes), plain = fast
                let n: Float = 7
                let a = Loss.crossEntropyRow(x, target: target, valid: true, &fast, classes: classes, n: n)
                let b = Loss.crossEntropyRowReference(x, target: target, &plain, classes: classes, n: n)
                #expect(abs(a - b) <= 2e-6 * max(1, abs(b)), "loss, \(classes) classes, spread \(spread): \(a) vs \(b)")
                let worst = zip(fast, plain).map { abs($0 - $1) }.max() ?? 0
                #expect(worst <= 1e-7, "gradient, \(classes) classes, spread \(spread): off by \(worst)")
            }
        }
        // A NaN logit comes out as a NaN loss (the trainer stops on it), not as a number.
        var g = [Float](repeating: 0, count: 20)
        var x = [Float](repeating: 0, count: 20)
        x[3] = .nan
        #expect(Loss.crossEntropyRow(x, target: 3, valid: true, &g, classes: 20, n: 1).isNaN)
    }

    @Test func gemmShapesAccountForEveryFlop() {
        let params = ParameterSet<Float>()
        let linear = Linear(params, "l", in: 30, out: 7)
        let conv = Conv2d(params, "c", in: 3, out: 5, kernel: 4, stride: 2, padding: 1, inputHeight: 16, inputWidth: 12)
        let deconv = ConvTranspose2d(params, "d", in: 4, out: 2, kernel: 3, stride: 2, padding: 1, inputHeight: 5, inputWidth: 6)
        #expect(linear.forwardGemms(batch: 9).reduce(0) { $0 + $1.flops } == linear.flops(batch: 9))
        #expect(conv.forwardGemms(batch: 9).reduce(0) { $0 + $1.flops } == conv.flops(batch: 9))
        #expect(deconv.forwardGemms(batch: 9).reduce(0) { $0 + $1.flops } == deconv.flops(batch: 9))
        for layer in [linear, conv, deconv] as [any GemmLayer] {
            let forward = layer.forwardGemms(batch: 9).reduce(0) { $0 + $1.flops }
            #expect(layer.backwardGemms(batch: 9, inputGradient: true).reduce(0) { $0 + $1.flops } == 2 * forward)
            #expect(layer.backwardGemms(batch: 9, inputGradient: false).reduce(0) { $0 + $1.flops } == forward)
        }
    }

    @Test func initializationFollowsPyTorchDefaultsAndTheSeed() {
        func make(seed: UInt64) -> ParameterSet<Float> {
            let params = ParameterSet<Float>()
            let linear = Linear(params, "l", in: 400, out: 300)
            let conv = Conv2d(params, "c", in: 8, out: 16, kernel: 3, inputHeight: 8, inputWidth: 8)
            let embedding = EmbeddingMean(params, "e", vocabulary: 1000, dimension: 64)
            params.finalize()
            var rng = SeededRandom(seed: seed)
            linear.initialize(params, &rng)
            conv.initialize(params, &rng)
            embedding.initialize(params, &rng)
            return params
        }
        let a = make(seed: 1), b = make(seed: 1), c = make(seed: 2)
        let values = { (p: ParameterSet<Float>) in Array(UnsafeBufferPointer(start: p.values, count: p.count)) }
        #expect(values(a) == values(b))
        #expect(values(a) != values(c))
        // kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)): std = bound / sqrt(3).
        for (name, fanIn) in [("l.weight", 400.0), ("c.weight", 72.0)] {
            let entry = a.entry(name)!
            let w = UnsafeBufferPointer(start: a.value(entry.ref), count: entry.ref.count)
            let bound = 1 / fanIn.squareRoot()
            #expect(w.allSatisfy { abs(Double($0)) <= bound })
            let std = (w.reduce(0) { $0 + Double($1) * Double($1) } / Double(w.count)).squareRoot()
            #expect(abs(std - bound / 3.0.squareRoot()) < 0.05 * bound)
        }
        // nn.Embedding: N(0, 1).
        let e = a.entry("e.weight")!
        let w = UnsafeBufferPointer(start: a.value(e.ref), count: e.ref.count)
        let mean = w.reduce(0) { $0 + Double($1) } / Double(w.count)
        let std = (w.reduce(0) { $0 + Double($1) * Double($1) } / Double(w.count) - mean * mean).squareRoot()
        #expect(abs(mean) < 0.02 && abs(std - 1) < 0.02)
    }

    @Test func arenaSlotsAreAlignedAndDisjoint() {
        let arena = Arena<Float>()
        let slots = [3, 17, 64, 1, 100].map { arena.reserve($0) }
        arena.finalize()
        for (i, slot) in slots.enumerated() {
            #expect(Int(bitPattern: arena.pointer(slot)) % 64 == 0)
            if i > 0 { #expect(slots[i - 1].offset + slots[i - 1].count <= slot.offset) }
        }
    }
}
