import Testing
import TesseraCore
@testable import TesseraEngine

/// Every layer and loss against PyTorch's outputs and gradients (fixtures/engine, float32). Tolerance:
/// the largest element difference is at most 1e-4 of the reference tensor's largest magnitude.
@Suite struct PyTorchParityTests {
    static let tolerance = 1e-4

    static var layerCases: [String] {
        (EngineGoldens.shared?.cases ?? [:]).filter { $0.value.kind != "embedding_mean" }.keys.sorted()
    }

    @Test func goldensArePresent() throws {
        let goldens = try #require(EngineGoldens.shared, "fixtures/engine/goldens.* missing")
        #expect(goldens.cases.count >= 17)
    }

    @Test(arguments: layerCases)
    func layerMatchesPyTorch(_ name: String) throws {
        let goldens = try #require(EngineGoldens.shared)
        let spec = try #require(goldens.cases[name])
        let layer = try makeHarness(spec, Float.self)
        var named: [String: Tensor] = [:]
        for param in goldens.parameterNames(name) {
            named["layer." + param] = try goldens.file.tensor("\(name)|param|\(param)")
        }
        try layer.params.load(named, source: "goldens")

        let x = try goldens.floats("\(name)|x"), dy = try goldens.floats("\(name)|dy")
        #expect(x.count == layer.inputCount && dy.count == layer.outputCount)
        var y = [Float](repeating: .nan, count: layer.outputCount), dx = [Float](repeating: .nan, count: layer.inputCount)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in layer.forward(xp.baseAddress!, yp.baseAddress!) }
            y.withUnsafeBufferPointer { yp in
                dy.withUnsafeBufferPointer { dyp in
                    dx.withUnsafeMutableBufferPointer { dxp in layer.backward(xp.baseAddress!, yp.baseAddress!, dyp.baseAddress!, dxp.baseAddress!) }
                }
            }
        }
        #expect(tensorRelativeError(y, try goldens.floats("\(name)|y")) <= Self.tolerance, "\(name) output")
        #expect(tensorRelativeError(dx, try goldens.floats("\(name)|dx")) <= Self.tolerance, "\(name) input gradient")
        for entry in layer.params.entries {
            let param = String(entry.name.dropFirst("layer.".count))
            let grad = Array(UnsafeBufferPointer(start: layer.params.grad(entry.ref), count: entry.ref.count))
            #expect(tensorRelativeError(grad, try goldens.floats("\(name)|grad|\(param)")) <= Self.tolerance, "\(name) \(param) gradient")
        }
    }

    @Test func embeddingMeanMatchesPyTorch() throws {
        let goldens = try #require(EngineGoldens.shared)
        let spec = try #require(goldens.cases["embedding_mean"])
        _ = spec
        let ids = try goldens.ints("embedding_mean|ids"), lengths = try goldens.ints("embedding_mean|lengths")
        let weight = try goldens.file.tensor("embedding_mean|param|weight")
        let params = ParameterSet<Float>()
        let layer = EmbeddingMean(params, "emb", vocabulary: weight.shape[0], dimension: weight.shape[1])
        params.finalize()
        try params.load(["emb.weight": weight], source: "goldens")
        let batch = lengths.count, length = ids.count / batch
        var y = [Float](repeating: .nan, count: batch * layer.dimension)
        let dy = try goldens.floats("embedding_mean|dy")
        ids.withUnsafeBufferPointer { i in
            lengths.withUnsafeBufferPointer { l in
                y.withUnsafeMutableBufferPointer { layer.forward(ids: i.baseAddress!, lengths: l.baseAddress!, length: length, $0.baseAddress!, batch: batch, params) }
                dy.withUnsafeBufferPointer { layer.backward(ids: i.baseAddress!, lengths: l.baseAddress!, length: length, $0.baseAddress!, batch: batch, params) }
            }
        }
        #expect(tensorRelativeError(y, try goldens.floats("embedding_mean|y")) <= Self.tolerance)
        let grad = Array(UnsafeBufferPointer(start: params.grad(layer.weight), count: layer.weight.count))
        #expect(tensorRelativeError(grad, try goldens.floats("embedding_mean|grad|weight")) <= Self.tolerance)
    }

    @Test func lossesMatchPyTorch() throws {
        let goldens = try #require(EngineGoldens.shared)
        func check(_ name: String, _ compute: ([Float], inout [Float]) throws -> Float) throws {
            let x = try goldens.floats("\(name)|x")
            var gradient = [Float](repeating: .nan, count: x.count)
            let loss = try compute(x, &gradient)
            let want = try goldens.floats("\(name)|loss")[0]
            #expect(relativeError(Double(loss), Double(want), floor: 1e-12) <= Self.tolerance, "\(name) loss \(loss) vs \(want)")
            #expect(tensorRelativeError(gradient, try goldens.floats("\(name)|dx")) <= Self.tolerance, "\(name) gradient")
        }
        try check("mse") { x, g in
            let t = try goldens.floats("mse|target")
            return Loss.mse(x, t, &g, batch: 4, perSample: x.count / 4)
        }
        try check("bce") { x, g in
            let t = try goldens.floats("bce|target")
            return Loss.bceWithLogits(x, t, &g, count: x.count)
        }
        try check("ce") { x, g in
            let targets = try goldens.ints("ce|targets")
            let valid = try goldens.file.tensor("ce|valid").scalars(as: UInt8.self)
            return Loss.softmaxCrossEntropy(x, targets: targets, valid: valid, &g, rows: targets.count, classes: x.count / targets.count)
        }
    }
}
