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
                    for (h, w) in [(5, 7), (8, 8), (3, 4), (4, 32), (3, 37), (2, 70)] where h + 2 * padding >= kernel && w + 2 * padding >= kernel {
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
        /// The layer `make(blocks)` builds (blocks nil: the whole batch at once), run forward and backward.
        func run<Layer: ConvolutionLayer>(_ layer: Layer, _ params: ParameterSet<Float>, x: [Float], dy: [Float])
            -> (y: [Float], dx: [Float], grads: [Float]) where Layer.Scalar == Float {
            var weights = SeededRandom(seed: 5)
            params.finalize()
            for i in 0..<params.count { params.values[i] = weights.nextUnitFloat() - 0.5 }
            params.zeroGrads()
            let arena = Arena<Float>()
            let slot = arena.reserve(layer.workspace(batch: batch))
            arena.finalize()
            var y = [Float](repeating: .nan, count: dy.count), dx = [Float](repeating: .nan, count: x.count)
            layer.forward(x, &y, batch: batch, params, workspace: arena.pointer(slot))
            dx.withUnsafeMutableBufferPointer { d in
                layer.backward(x, dy, d.baseAddress, accumulate: false, batch: batch, params, workspace: arena.pointer(slot))
            }
            return (y, dx, Array(UnsafeBufferPointer(start: params.grads, count: params.count)))
        }
        /// Also on two threads, where the blocks are dealt to both: the same bits as on one.
        func check<Layer: ConvolutionLayer>(_ name: String, inputCount: Int, outputCount: Int, blocks: [Int],
                                            _ make: (Int?) -> (Layer, ParameterSet<Float>)) where Layer.Scalar == Float {
            let x = (0..<inputCount).map { _ in rng.nextUnitFloat() - 0.5 }, dy = (0..<outputCount).map { _ in rng.nextUnitFloat() - 0.5 }
            defer { EngineThreads.configure(1) }
            EngineThreads.configure(1)
            let (layer, params) = make(nil)
            let whole = run(layer, params, x: x, dy: dy)
            #expect(!whole.y.contains { $0.isNaN } && !whole.dx.contains { $0.isNaN }, "\(name)")
            EngineThreads.configure(2)
            let (twoLayer, twoParams) = make(nil)
            let two = run(twoLayer, twoParams, x: x, dy: dy)
            #expect(two.y == whole.y && two.dx == whole.dx && two.grads == whole.grads, "\(name) on two threads")
            for count in blocks {
                for threads in [1, 2] {
                    EngineThreads.configure(threads)
                    let (blockedLayer, blockedParams) = make(count)
                    let blocked = run(blockedLayer, blockedParams, x: x, dy: dy)
                    let label = "\(name) in blocks of \(count), \(threads) threads"
                    #expect(tensorRelativeError(blocked.y, whole.y) < 1e-5 && tensorRelativeError(blocked.dx, whole.dx) < 1e-5, "\(label)")
                    #expect(tensorRelativeError(blocked.grads, whole.grads) < 1e-5, "\(label): weight gradients")
                }
            }
        }
        check("Conv2d(3->4, k3 s2 p1) on 9x9", inputCount: batch * 3 * 9 * 9, outputCount: batch * 4 * 5 * 5, blocks: [1, 2]) { blocks in
            let params = ParameterSet<Float>()
            let layer = Conv2d(params, "c", in: 3, out: 4, kernel: 3, stride: 2, padding: 1, inputHeight: 9, inputWidth: 9)
            layer.blockSamples = blocks
            return (layer, params)
        }
        check("ConvTranspose2d(4->3, k4 s2 p1) from 5x5", inputCount: batch * 4 * 5 * 5, outputCount: batch * 3 * 10 * 10, blocks: [1, 3]) { blocks in
            let params = ParameterSet<Float>()
            let layer = ConvTranspose2d(params, "d", in: 4, out: 3, kernel: 4, stride: 2, padding: 1, inputHeight: 5, inputWidth: 5)
            layer.blockSamples = blocks
            return (layer, params)
        }
    }

    /// Linear layers large enough to run their products as two halves (side by side on two threads):
    /// forward and backward against a float64 computation, and the same bits on one thread and on two.
    @Test func linearProductsInHalvesMatchTheReference() {
        var rng = SeededRandom(seed: 21)
        defer { EngineThreads.configure(1) }
        // (700 in, 300 out) splits the products' columns; (300 in, 700 out) splits the weight gradient's rows.
        for (inputs, outputs) in [(700, 300), (300, 700)] {
            let batch = 6
            #expect(batch * inputs * outputs >= halvedProductMinimum)
            let x = (0..<batch * inputs).map { _ in rng.nextUnitFloat() - 0.5 }, dy = (0..<batch * outputs).map { _ in rng.nextUnitFloat() - 0.5 }
            let initial = (0..<(outputs * inputs + outputs)).map { _ in rng.nextUnitFloat() - 0.5 }
            func run(threads: Int) -> (y: [Float], dx: [Float], grads: [Float]) {
                EngineThreads.configure(threads)
                let params = ParameterSet<Float>()
                let layer = Linear(params, "l", in: inputs, out: outputs)
                params.finalize()
                for i in 0..<params.count { params.values[i] = initial[i] }
                params.zeroGrads()
                var y = [Float](repeating: .nan, count: batch * outputs), dx = [Float](repeating: .nan, count: batch * inputs)
                layer.forward(x, &y, batch: batch, params)
                dx.withUnsafeMutableBufferPointer { layer.backward(x, dy, $0.baseAddress, batch: batch, params) }
                return (y, dx, Array(UnsafeBufferPointer(start: params.grads, count: params.count)))
            }
            let one = run(threads: 1), two = run(threads: 2)
            #expect(one.y == two.y && one.dx == two.dx && one.grads == two.grads, "\(inputs)->\(outputs): one thread and two")
            // float64 reference; the weight is [out, in], then the bias.
            var y = [Float](), dx = [Float](), grads = [Float](repeating: 0, count: initial.count)
            for r in 0..<batch {
                for o in 0..<outputs {
                    var sum = Double(initial[outputs * inputs + o])
                    for i in 0..<inputs { sum += Double(x[r * inputs + i]) * Double(initial[o * inputs + i]) }
                    y.append(Float(sum))
                }
                for i in 0..<inputs {
                    var sum = 0.0
                    for o in 0..<outputs { sum += Double(dy[r * outputs + o]) * Double(initial[o * inputs + i]) }
                    dx.append(Float(sum))
                }
            }
            for o in 0..<outputs {
                for i in 0..<inputs {
                    var sum = 0.0
                    for r in 0..<batch { sum += Double(dy[r * outputs + o]) * Double(x[r * inputs + i]) }
                    grads[o * inputs + i] = Float(sum)
                }
                grads[outputs * inputs + o] = Float((0..<batch).reduce(0.0) { $0 + Double(dy[$1 * outputs + o]) })
            }
            // Float32 sums of 300-700 products: a few float32 roundings of the largest element.
            #expect(tensorRelativeError(one.y, y) < 1e-4 && tensorRelativeError(one.dx, dx) < 1e-4, "\(inputs)->\(outputs): y and dx")
            #expect(tensorRelativeError(one.grads, grads) < 1e-4, "\(inputs)->\(outputs): weight and bias gradients")
        }
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

    /// MSE over a W1-sized batch (64 images of 3x64x64: 786,432 terms) equals the double-precision mean to
    /// float precision; a float running sum read 3e-4 low, which the PyTorch comparison of M1 showed.
    @Test func meanSquaredErrorOfALargeBatchIsAccurate() {
        let batch = 64, perSample = 3 * 64 * 64, count = batch * perSample
        var random = SeededRandom(seed: 5)
        let prediction = (0..<count).map { _ in Float(random.next() % 1000) / 250 - 2 }
        let target = (0..<count).map { _ in Float(random.next() % 1000) / 500 - 1 }
        var gradient = [Float](repeating: 0, count: count)
        let loss = Loss.mse(prediction, target, &gradient, batch: batch, perSample: perSample)
        var reference = 0.0
        for i in 0..<count { let d = Double(prediction[i] - target[i]); reference += d * d }
        reference /= Double(count)
        #expect(abs(Double(loss) - reference) / reference < 1e-6, "\(loss) against \(reference)")
        #expect(gradient[7] == 2 * (prediction[7] - target[7]) / Float(count))
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
