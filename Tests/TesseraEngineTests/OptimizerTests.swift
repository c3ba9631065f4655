import Testing
import TesseraCore
@testable import TesseraEngine

/// SGD with momentum, Adam, AdamW and gradient-norm clipping against torch.optim: three steps on one tensor
/// with fixed gradients (fixtures/engine, `optim|*`). Adam and AdamW follow torch operation for operation and
/// agree to the bit here; SGD differs by an ulp, as torch fuses `p + (-lr) d` into one FMA.
@Suite struct OptimizerTests {
    static let settings: [(String, OptimizerConfig)] = {
        var sgd = OptimizerConfig()
        (sgd.kind, sgd.learningRate, sgd.momentum, sgd.weightDecay) = (.sgd, 0.1, 0.9, 0.01)
        var adam = OptimizerConfig()
        (adam.kind, adam.learningRate, adam.weightDecay) = (.adam, 1e-2, 0.01)
        var adamw = OptimizerConfig()
        (adamw.kind, adamw.learningRate, adamw.weightDecay) = (.adamw, 1e-2, 0.1)
        var clipped = OptimizerConfig()
        (clipped.kind, clipped.learningRate, clipped.clipNorm) = (.adam, 1e-2, 0.5)
        return [("sgd", sgd), ("adam", adam), ("adamw", adamw), ("adam_clip", clipped)]
    }()

    @Test(arguments: settings.map(\.0))
    func matchesTorchOptim(_ name: String) throws {
        let goldens = try #require(EngineGoldens.shared)
        let config = try #require(Self.settings.first { $0.0 == name }?.1)
        let start = try goldens.floats("optim|start"), grads = try goldens.floats("optim|grads")
        let params = ParameterSet<Float>()
        let ref = params.add("p", shape: [start.count])
        params.finalize()
        for i in 0..<start.count { params.value(ref)[i] = start[i] }
        let optimizer = Optimizer<Float>(config, parameters: params.count)
        for step in 0..<3 {
            for i in 0..<start.count { params.grad(ref)[i] = grads[step * start.count + i] }
            optimizer.update(params)
        }
        let got = Array(UnsafeBufferPointer(start: params.value(ref), count: start.count))
        let error = tensorRelativeError(got, try goldens.floats("optim|\(name)"))
        #expect(error <= 1e-6, "\(name): relative error \(error)")
    }
}

/// Loading weights: every value comes through (float32 as its bytes, other types converted), and a NaN or an
/// infinity is refused by name rather than surfacing later as a non-finite loss.
@Suite struct ParameterLoadingTests {
    @Test func loadsValuesAndRefusesNonFiniteOnes() throws {
        let params = ParameterSet<Float>()
        let weight = params.add("layer.weight", shape: [2, 3]), bias = params.add("layer.bias", shape: [3])
        params.finalize()
        let values: [Float] = [1, -2, 3.5, 0, 1e-30, 7]
        try params.load(["layer.weight": try Tensor(shape: [2, 3], scalars: values),
                         "layer.bias": try Tensor(shape: [3], scalars: [Double](arrayLiteral: 0.5, 1.5, 2.5))], source: "test")
        #expect(Array(UnsafeBufferPointer(start: params.value(weight), count: 6)) == values)
        #expect(Array(UnsafeBufferPointer(start: params.value(bias), count: 3)) == [0.5, 1.5, 2.5])
        for bad in [Float.nan, .infinity, -.infinity] {
            var poisoned = values
            poisoned[4] = bad
            #expect(throws: TesseraError.self) {
                try params.load(["layer.weight": try Tensor(shape: [2, 3], scalars: poisoned),
                                 "layer.bias": try Tensor(shape: [3], scalars: [Float](repeating: 0, count: 3))], source: "test")
            }
        }
    }
}
