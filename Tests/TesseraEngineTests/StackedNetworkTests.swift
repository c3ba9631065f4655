import Testing
import TesseraCore
@testable import TesseraEngine

/// The small stacked network of tools/fixtures/make_engine_goldens.py (conv, max-pool, linear, embedding,
/// upsample, transposed conv; MSE + BCE + cross-entropy), trained for three Adam steps from PyTorch's
/// initial weights: losses, last gradients and final weights must match PyTorch within 1e-4 relative.
@Suite struct StackedNetworkTests {
    final class Net {
        let batch = 4, length = 5, vocabulary = 20
        let params = ParameterSet<Float>()
        let arena = Arena<Float>()
        let conv: Conv2d<Float>, pool: MaxPool2d<Float>, img: Linear<Float>
        let emb: EmbeddingMean<Float>, txt: Linear<Float>
        let mix: Linear<Float>, up: Upsample<Float>, deconv: ConvTranspose2d<Float>
        let tags: Linear<Float>, words: Linear<Float>
        // Activations and their gradients, planned once.
        let convOut, pooled, hImg, embOut, hTxt, z, mixOut, upOut, recon, tagLogits, wordLogits: ArenaSlot
        let dConvOut, dPooled, dHImg, dEmbOut, dHTxt, dZ, dMixOut, dUpOut, dRecon, dTagLogits, dWordLogits: ArenaSlot
        let convWork, deconvWork: ArenaSlot

        init() {
            conv = Conv2d(params, "conv", in: 3, out: 4, kernel: 3, stride: 1, padding: 1, inputHeight: 8, inputWidth: 8)
            pool = MaxPool2d(channels: 4, inputHeight: 8, inputWidth: 8, kernel: 2, maxBatch: batch)
            img = Linear(params, "img", in: 64, out: 16)
            emb = EmbeddingMean(params, "emb", vocabulary: vocabulary, dimension: 8)
            txt = Linear(params, "txt", in: 8, out: 16)
            mix = Linear(params, "mix", in: 32, out: 64)
            up = Upsample(channels: 4, inputHeight: 4, inputWidth: 4, scale: 2)
            deconv = ConvTranspose2d(params, "deconv", in: 4, out: 3, kernel: 3, stride: 1, padding: 1, inputHeight: 8, inputWidth: 8)
            tags = Linear(params, "tags", in: 32, out: 6)
            words = Linear(params, "words", in: 32, out: length * vocabulary)
            params.finalize()
            let b = batch
            (convOut, dConvOut) = (arena.reserve(conv.outputCount(batch: b)), arena.reserve(conv.outputCount(batch: b)))
            (pooled, dPooled) = (arena.reserve(pool.outputCount(batch: b)), arena.reserve(pool.outputCount(batch: b)))
            (hImg, dHImg) = (arena.reserve(b * 16), arena.reserve(b * 16))
            (embOut, dEmbOut) = (arena.reserve(b * 8), arena.reserve(b * 8))
            (hTxt, dHTxt) = (arena.reserve(b * 16), arena.reserve(b * 16))
            (z, dZ) = (arena.reserve(b * 32), arena.reserve(b * 32))
            (mixOut, dMixOut) = (arena.reserve(b * 64), arena.reserve(b * 64))
            (upOut, dUpOut) = (arena.reserve(up.outputCount(batch: b)), arena.reserve(up.outputCount(batch: b)))
            (recon, dRecon) = (arena.reserve(deconv.outputCount(batch: b)), arena.reserve(deconv.outputCount(batch: b)))
            (tagLogits, dTagLogits) = (arena.reserve(b * 6), arena.reserve(b * 6))
            (wordLogits, dWordLogits) = (arena.reserve(b * length * vocabulary), arena.reserve(b * length * vocabulary))
            convWork = arena.reserve(conv.workspace(batch: b))
            deconvWork = arena.reserve(deconv.workspace(batch: b))
            arena.finalize()
        }

        func p(_ slot: ArenaSlot) -> UnsafeMutablePointer<Float> { arena.pointer(slot) }

        /// One forward and backward pass; returns the three losses.
        func step(image: [Float], ids: [Int32], lengths: [Int32], tagTargets: [Float]) -> [Float] {
            let b = batch
            params.zeroGrads()
            // Forward.
            conv.forward(image, p(convOut), batch: b, params, workspace: p(convWork))
            Activation.relu.forward(p(convOut), p(convOut), count: conv.outputCount(batch: b))
            pool.forward(p(convOut), p(pooled), batch: b)
            img.forward(p(pooled), p(hImg), batch: b, params)
            Activation.tanh.forward(p(hImg), p(hImg), count: b * 16)
            emb.forward(ids: ids, lengths: lengths, length: length, p(embOut), batch: b, params)
            txt.forward(p(embOut), p(hTxt), batch: b, params)
            Activation.sigmoid.forward(p(hTxt), p(hTxt), count: b * 16)
            FeatureConcat.concat([(UnsafePointer(p(hImg)), 16), (UnsafePointer(p(hTxt)), 16)], into: p(z), batch: b)
            mix.forward(p(z), p(mixOut), batch: b, params)
            Activation.leakyRelu.forward(p(mixOut), p(mixOut), count: b * 64)
            up.forward(p(mixOut), p(upOut), batch: b)   // [B, 64] is [B, 4, 4, 4]: reshape is free
            deconv.forward(p(upOut), p(recon), batch: b, params, workspace: p(deconvWork))
            tags.forward(p(z), p(tagLogits), batch: b, params)
            words.forward(p(z), p(wordLogits), batch: b, params)

            // Losses.
            let mse = Loss.mse(p(recon), image, p(dRecon), batch: b, perSample: 3 * 64)
            let bce = Loss.bceWithLogits(p(tagLogits), tagTargets, p(dTagLogits), count: b * 6)
            let valid: [UInt8] = (0..<b * length).map { UInt8(Int32($0 % length) < lengths[$0 / length] ? 1 : 0) }
            let ce = Loss.softmaxCrossEntropy(p(wordLogits), targets: ids, valid: valid, p(dWordLogits), rows: b * length, classes: vocabulary)

            // Backward.
            deconv.backward(p(upOut), p(dRecon), p(dUpOut), batch: b, params, workspace: p(deconvWork))
            up.backward(p(dUpOut), p(dMixOut), batch: b)
            Activation.leakyRelu.backward(output: p(mixOut), p(dMixOut), p(dMixOut), count: b * 64)
            mix.backward(p(z), p(dMixOut), p(dZ), batch: b, params)
            tags.backward(p(z), p(dTagLogits), p(dZ), accumulate: true, batch: b, params)
            words.backward(p(z), p(dWordLogits), p(dZ), accumulate: true, batch: b, params)
            FeatureConcat.split(p(dZ), into: [(p(dHImg), 16), (p(dHTxt), 16)], batch: b)
            Activation.sigmoid.backward(output: p(hTxt), p(dHTxt), p(dHTxt), count: b * 16)
            txt.backward(p(embOut), p(dHTxt), p(dEmbOut), batch: b, params)
            emb.backward(ids: ids, lengths: lengths, length: length, p(dEmbOut), batch: b, params)
            Activation.tanh.backward(output: p(hImg), p(dHImg), p(dHImg), count: b * 16)
            img.backward(p(pooled), p(dHImg), p(dPooled), batch: b, params)
            pool.backward(p(dPooled), p(dConvOut), batch: b)
            Activation.relu.backward(output: p(convOut), p(dConvOut), p(dConvOut), count: conv.outputCount(batch: b))
            conv.backward(image, p(dConvOut), nil, batch: b, params, workspace: p(convWork))
            return [mse, bce, ce]
        }
    }

    @Test func threeAdamStepsMatchPyTorch() throws {
        let goldens = try #require(EngineGoldens.shared)
        let net = Net()
        var initial: [String: Tensor] = [:]
        for entry in net.params.entries { initial[entry.name] = try goldens.file.tensor("net|init|\(entry.name)") }
        try net.params.load(initial, source: "goldens")
        let image = try goldens.floats("net|image"), ids = try goldens.ints("net|ids"), lengths = try goldens.ints("net|lengths")
        let tagTargets = try goldens.floats("net|tags")
        var config = OptimizerConfig()
        config.kind = .adam
        config.learningRate = 1e-2
        let optimizer = Optimizer<Float>(config, parameters: net.params.count)
        let wantLosses = try goldens.floats("net|losses")
        for step in 0..<3 {
            let losses = net.step(image: image, ids: ids, lengths: lengths, tagTargets: tagTargets)
            for (k, loss) in losses.enumerated() {
                let want = wantLosses[step * 3 + k]
                #expect(relativeError(Double(loss), Double(want), floor: 1e-12) <= 1e-4, "step \(step) loss \(k): \(loss) vs \(want)")
            }
            if step == 2 {
                for entry in net.params.entries {
                    let grad = Array(UnsafeBufferPointer(start: net.params.grad(entry.ref), count: entry.ref.count))
                    let error = tensorRelativeError(grad, try goldens.floats("net|grad|\(entry.name)"))
                    #expect(error <= 1e-4, "gradient of \(entry.name): relative error \(error)")
                }
            }
            optimizer.update(net.params)
        }
        for entry in net.params.entries {
            let value = Array(UnsafeBufferPointer(start: net.params.value(entry.ref), count: entry.ref.count))
            let error = tensorRelativeError(value, try goldens.floats("net|final|\(entry.name)"))
            #expect(error <= 1e-4, "\(entry.name) after 3 Adam steps: relative error \(error)")
        }
    }
}
