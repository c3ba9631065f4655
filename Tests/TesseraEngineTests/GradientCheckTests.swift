import Testing
import TesseraCore
@testable import TesseraEngine

/// Every layer and loss in float64 against central finite differences of L = Σ y·r (r fixed random):
/// relative error at most 1e-4 (floor 1e-6 for gradients near zero). Inputs keep away from ReLU's kink and
/// max-pool's ties, as the bar allows.
@Suite struct GradientCheckTests {
    static let tolerance = 1e-4
    static let step = 1e-6

    static var layerCases: [String] { PyTorchParityTests.layerCases }

    /// Random inputs; for layers with kinks, values that are distinct and at least 0.01 from zero and from
    /// each other, so a step of 1e-6 never crosses a kink.
    static func inputs(_ count: Int, kinks: Bool, _ rng: inout SeededRandom) -> [Double] {
        guard kinks else { return (0..<count).map { _ in rng.nextGaussian() } }
        var values = (0..<count).map { Double($0 - count / 2) * 0.02 + 0.01 }
        rng.shuffle(&values)
        return values
    }

    @Test(arguments: layerCases)
    func layerGradients(_ name: String) throws {
        let goldens = try #require(EngineGoldens.shared)
        let layer = try makeHarness(try #require(goldens.cases[name]), Double.self)
        var rng = SeededRandom(seed: 7, stream: UInt64(name.utf8.reduce(0) { $0 &* 31 &+ Int($1) }.magnitude))
        for i in 0..<layer.params.count { layer.params.values[i] = rng.nextGaussian() * 0.5 }
        var x = Self.inputs(layer.inputCount, kinks: layer.hasKinks, &rng)
        let r = (0..<layer.outputCount).map { _ in rng.nextGaussian() }
        var y = [Double](repeating: 0, count: layer.outputCount)

        func objective() -> Double {
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { layer.forward(xp.baseAddress!, $0.baseAddress!) } }
            return zip(y, r).reduce(0) { $0 + $1.0 * $1.1 }
        }

        _ = objective()
        var dx = [Double](repeating: 0, count: layer.inputCount)
        layer.params.zeroGrads()
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeBufferPointer { yp in
                r.withUnsafeBufferPointer { rp in
                    dx.withUnsafeMutableBufferPointer { layer.backward(xp.baseAddress!, yp.baseAddress!, rp.baseAddress!, $0.baseAddress!) }
                }
            }
        }
        let paramGrads = Array(UnsafeBufferPointer(start: layer.params.grads, count: layer.params.count))

        var worst = 0.0
        for i in 0..<layer.inputCount {
            let saved = x[i]
            x[i] = saved + Self.step
            let plus = objective()
            x[i] = saved - Self.step
            let minus = objective()
            x[i] = saved
            worst = max(worst, relativeError(dx[i], (plus - minus) / (2 * Self.step), floor: 1e-6))
        }
        #expect(worst <= Self.tolerance, "\(name) input gradient relative error \(worst)")

        worst = 0
        for i in 0..<layer.params.count {
            let saved = layer.params.values[i]
            layer.params.values[i] = saved + Self.step
            let plus = objective()
            layer.params.values[i] = saved - Self.step
            let minus = objective()
            layer.params.values[i] = saved
            worst = max(worst, relativeError(paramGrads[i], (plus - minus) / (2 * Self.step), floor: 1e-6))
        }
        #expect(worst <= Self.tolerance, "\(name) parameter gradient relative error \(worst)")
    }

    @Test func embeddingMeanGradients() {
        let params = ParameterSet<Double>()
        let layer = EmbeddingMean(params, "emb", vocabulary: 9, dimension: 5)
        params.finalize()
        var rng = SeededRandom(seed: 11)
        for i in 0..<params.count { params.values[i] = rng.nextGaussian() }
        // Row 2 is empty; row 3 holds an out-of-vocabulary id, which counts as padding.
        let ids: [Int32] = [1, 4, 4, 8, 0, 2, 3, 7, 5, 6, 1, 2, 0, 0, 0, 0, 0, 0, 3, 99, 5, 1, 1, 1]
        let lengths: [Int32] = [6, 3, 0, 4]
        let batch = 4, length = 6
        let r = (0..<batch * 5).map { _ in rng.nextGaussian() }
        var y = [Double](repeating: 0, count: batch * 5)
        func objective() -> Double {
            layer.forward(ids: ids, lengths: lengths, length: length, &y, batch: batch, params)
            return zip(y, r).reduce(0) { $0 + $1.0 * $1.1 }
        }
        _ = objective()
        params.zeroGrads()
        layer.backward(ids: ids, lengths: lengths, length: length, r, batch: batch, params)
        var worst = 0.0
        for i in 0..<params.count {
            let saved = params.values[i]
            params.values[i] = saved + Self.step
            let plus = objective()
            params.values[i] = saved - Self.step
            let minus = objective()
            params.values[i] = saved
            worst = max(worst, relativeError(params.grads[i], (plus - minus) / (2 * Self.step), floor: 1e-6))
        }
        #expect(worst <= Self.tolerance, "embedding relative error \(worst)")
        #expect(y[10..<15].allSatisfy { $0 == 0 }, "an empty sequence pools to zeros")
    }

    /// Checks d(loss)/d(input) of a loss against finite differences.
    static func checkLoss(_ label: String, count: Int, _ loss: ([Double], inout [Double]) -> Double) {
        var rng = SeededRandom(seed: 5, stream: UInt64(label.utf8.count))
        var x = (0..<count).map { _ in rng.nextGaussian() * 2 }
        var gradient = [Double](repeating: 0, count: count), scratch = gradient
        _ = loss(x, &gradient)
        var worst = 0.0
        for i in 0..<count {
            let saved = x[i]
            x[i] = saved + step
            let plus = loss(x, &scratch)
            x[i] = saved - step
            let minus = loss(x, &scratch)
            x[i] = saved
            worst = max(worst, relativeError(gradient[i], (plus - minus) / (2 * step), floor: 1e-6))
        }
        #expect(worst <= tolerance, "\(label) relative error \(worst)")
    }

    @Test func lossGradients() {
        var rng = SeededRandom(seed: 9)
        let target = (0..<24).map { _ in rng.nextGaussian() }
        Self.checkLoss("mse", count: 24) { x, g in Loss.mse(x, target, &g, batch: 4, perSample: 6) }
        let weights: [Double] = [1, 0, 1, 1]
        Self.checkLoss("mse-masked", count: 24) { x, g in Loss.mse(x, target, &g, batch: 4, perSample: 6, sampleWeights: weights) }
        let labels = (0..<24).map { _ in Double(rng.nextInt(below: 2)) }
        Self.checkLoss("bce", count: 24) { x, g in Loss.bceWithLogits(x, labels, &g, count: 24) }
        let classes: [Int32] = [3, 0, 6, 2, 5]
        let valid: [UInt8] = [1, 1, 0, 1, 1]
        Self.checkLoss("ce", count: 35) { x, g in Loss.softmaxCrossEntropy(x, targets: classes, valid: valid, &g, rows: 5, classes: 7) }
    }

    @Test func concatAndSplitAreAdjoint() {
        let a: [Double] = [1, 2, 3, 4], b: [Double] = [5, 6, 7, 8, 9, 10]
        var y = [Double](repeating: 0, count: 10)
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in FeatureConcat.concat([(ap.baseAddress!, 2), (bp.baseAddress!, 3)], into: &y, batch: 2) }
        }
        #expect(y == [1, 2, 5, 6, 7, 3, 4, 8, 9, 10])
        var da = [Double](repeating: 0, count: 4), db = [Double](repeating: 0, count: 6)
        da.withUnsafeMutableBufferPointer { ap in
            db.withUnsafeMutableBufferPointer { bp in FeatureConcat.split(y, into: [(ap.baseAddress!, 2), (bp.baseAddress!, 3)], batch: 2) }
        }
        #expect(da == a && db == b)
    }
}
