// `tessera encode` and `tessera eval`: shared codes per sample (from all modalities or a chosen few),
// reconstruction errors, cross-modal retrieval and linear probes.
import TesseraCore
import TesseraEngine
import TesseraShards
#if canImport(Glibc)
import Glibc
#endif

/// A trained model opened from a run folder (or a checkpoint/weights file) for a dataset.
public final class TrainedModel {
    public let model: JointModel
    public let source: String

    /// `checkpoint` is a run folder (weights.safetensors, else checkpoint.safetensors) or a safetensors file
    /// that carries its model in the metadata.
    public init(checkpoint: String, dataset manifest: DatasetManifest, batchSize: Int) throws {
        var file = checkpoint
        if FilePath.isDirectory(checkpoint) {
            let weights = FilePath.join(checkpoint, Trainer.weightsFile)
            file = FilePath.exists(weights) ? weights : FilePath.join(checkpoint, Trainer.checkpointFile)
        }
        guard FilePath.exists(file) else {
            throw TesseraError(path: checkpoint, stage: .open, code: "eval.no-checkpoint", "no weights.safetensors or checkpoint.safetensors here")
        }
        let loaded = try Checkpoint.load(path: file)
        var spec = loaded.model
        if spec == nil, FilePath.isDirectory(checkpoint) { spec = try ModelSpec.load(path: FilePath.join(checkpoint, Trainer.modelFile)) }
        guard let spec else {
            throw TesseraError(path: file, stage: .read, code: "eval.no-model", "the file does not say which model it holds (no model in its metadata, no model.json beside it)")
        }
        model = try JointModel(spec: spec, manifest: manifest, maxBatch: batchSize, source: file)
        try Checkpoint.restoreWeights(loaded, into: model)
        source = file
    }
}

/// Codes of every sample of a split.
public struct SplitCodes {
    public var codes: [Float]
    public var width: Int
    public var labels: [Int32]?
    public var keys: [String]
    public var count: Int { keys.count }
}

public enum Evaluation {
    /// The shared code of every sample of `split`, computed from the `visible` modalities only (nil: all
    /// present ones). Samples lacking all of them still get a code (from the biases alone).
    public static func codes(model: JointModel, dataset: String, split: String, visible: Set<String>?, verify: Bool = true) throws -> SplitCodes {
        var config = LoaderConfig()
        config.split = split
        config.batchSize = model.maxBatch
        config.shuffle = .none
        config.epochs = 1
        config.verifyChecksums = verify
        let loader = try ShardLoader(folder: dataset, config: config)
        defer { loader.stop() }
        var result = SplitCodes(codes: [], width: model.codeWidth, labels: nil, keys: [])
        let hasLabels = loader.fields.contains { $0.name == "label" }
        var labels: [Int32] = []
        while let batch = try loader.next() {
            let input = ModelBatch(batch)
            try model.prepare(input, visibleModalities: visible, hide: nil)
            model.forward(input)
            result.codes.append(contentsOf: UnsafeBufferPointer(start: model.codePointer, count: batch.count * model.codeWidth))
            result.keys.append(contentsOf: batch.keys)
            if hasLabels, let pointer = batch.int32s("label") { labels.append(contentsOf: UnsafeBufferPointer(start: pointer, count: batch.count)) }
        }
        if hasLabels { result.labels = labels }
        return result
    }

    /// Mean reconstruction loss per target modality over a split, with only `visible` modalities as input.
    public static func reconstruction(model: JointModel, dataset: String, split: String, visible: Set<String>?, verify: Bool = true) throws -> [String: Double] {
        var config = LoaderConfig()
        config.split = split
        config.batchSize = model.maxBatch
        config.shuffle = .none
        config.epochs = 1
        config.verifyChecksums = verify
        let loader = try ShardLoader(folder: dataset, config: config)
        defer { loader.stop() }
        var sums: [String: Double] = [:], weights: [String: Double] = [:]
        while let batch = try loader.next() {
            let input = ModelBatch(batch)
            try model.prepare(input, visibleModalities: visible, hide: nil)
            model.forward(input)
            for (name, value) in model.losses(input).values where value.isFinite {
                let present = input.masks[name].map { mask in (0..<input.count).filter { mask[$0] != 0 }.count } ?? input.count
                sums[name, default: 0] += value * Double(present)
                weights[name, default: 0] += Double(present)
            }
        }
        return sums.reduce(into: [:]) { out, item in out[item.key] = item.value / max(weights[item.key] ?? 1, 1) }
    }

    /// The peak signal-to-noise ratio (dB) of the image reconstructions over a split, on pixel values in [0, 1],
    /// with only `visible` modalities as input; nil when the model has no image.
    public static func imagePSNR(model: JointModel, dataset: String, split: String, visible: Set<String>?, verify: Bool = true) throws -> Double? {
        guard let branch = model.branches.first(where: { $0.spec.name == "image" && $0.spec.loss == .mse }),
              let normalization = branch.input.normalization, branch.input.shape.count == 3 else { return nil }
        var config = LoaderConfig()
        config.split = split
        config.batchSize = model.maxBatch
        config.shuffle = .none
        config.epochs = 1
        config.verifyChecksums = verify
        let loader = try ShardLoader(folder: dataset, config: config)
        defer { loader.stop() }
        let shape = branch.input.shape, per = shape.reduce(1, *), plane = shape[1] * shape[2]
        var squared = 0.0, count = 0.0
        while let batch = try loader.next() {
            let input = ModelBatch(batch)
            try model.prepare(input, visibleModalities: visible, hide: nil)
            model.forward(input)
            guard let target = input.floats[branch.input.tensor] else { continue }
            let r = branch.decoder.output, present = model.arena.pointer(branch.present)
            for b in 0..<input.count where present[b] != 0 {
                for k in 0..<per {
                    let c = min(k / plane, normalization.std.count - 1)
                    let std = Float(normalization.std[c]), mean = Float(normalization.mean[c])
                    let truth = target[b * per + k] * std + mean
                    let guess = branch.spec.scale == .unit ? r[b * per + k] : r[b * per + k] * std + mean
                    let d = Double(min(max(guess, 0), 1) - truth)
                    squared += d * d
                }
                count += Double(per)
            }
        }
        guard count > 0 else { return nil }
        return 10 * log10(1 / max(squared / count, 1e-12))
    }

    /// Retrieval from query codes to gallery codes (the same samples in the same order), by cosine similarity:
    /// recall@k of the sample itself, and the fraction whose nearest gallery item has the query's label.
    public static func retrieval(queries: SplitCodes, gallery: SplitCodes, ks: [Int] = [1, 5, 10]) -> (recall: [Int: Double], classAtOne: Double?) {
        let n = min(queries.count, gallery.count), d = queries.width
        guard n > 0, d > 0 else { return ([:], nil) }
        func normalized(_ codes: [Float]) -> [Float] {
            var out = codes
            for i in 0..<n {
                var norm: Float = 0
                for j in 0..<d { norm += codes[i * d + j] * codes[i * d + j] }
                let scale = norm > 0 ? 1 / norm.squareRoot() : 0
                for j in 0..<d { out[i * d + j] = codes[i * d + j] * scale }
            }
            return out
        }
        let q = normalized(queries.codes), g = normalized(gallery.codes)
        var similarity = [Float](repeating: 0, count: n * n)
        q.withUnsafeBufferPointer { qp in
            g.withUnsafeBufferPointer { gp in
                similarity.withUnsafeMutableBufferPointer { sp in
                    Float.gemm(transA: false, transB: true, m: n, n: n, k: d, alpha: 1, a: qp.baseAddress!, lda: d, b: gp.baseAddress!, ldb: d,
                               beta: 0, c: sp.baseAddress!, ldc: n)
                }
            }
        }
        var hits = [Int: Int](), classHits = 0
        for i in 0..<n {
            let row = i * n
            let own = similarity[row + i]
            // Rank of the sample itself: gallery items scoring higher (ties count against it).
            var better = 0, best = 0
            for j in 0..<n {
                if j != i && similarity[row + j] >= own { better += 1 }
                if similarity[row + j] > similarity[row + best] { best = j }
            }
            for k in ks where better < k { hits[k, default: 0] += 1 }
            if let labels = queries.labels, let galleryLabels = gallery.labels, labels[i] == galleryLabels[best] { classHits += 1 }
        }
        var recall: [Int: Double] = [:]
        for k in ks { recall[k] = Double(hits[k] ?? 0) / Double(n) }
        return (recall, queries.labels != nil && gallery.labels != nil ? Double(classHits) / Double(n) : nil)
    }

    /// A linear probe: multinomial logistic regression on standardised train codes (full batch, Adam, a small
    /// L2 penalty, a fixed number of steps, so the same codes give the same probe), scored on the test codes.
    public static func linearProbe(train: SplitCodes, test: SplitCodes, steps: Int = 500, learningRate: Double = 0.05, weightDecay: Double = 1e-4) -> Double? {
        guard let trainLabels = train.labels, let testLabels = test.labels, train.count > 0, test.count > 0 else { return nil }
        let d = train.width
        let classes = Int((trainLabels.max() ?? 0) + 1)
        guard classes >= 2, trainLabels.allSatisfy({ $0 >= 0 }) else { return nil }
        // Standardise with the train statistics.
        var mean = [Float](repeating: 0, count: d), std = [Float](repeating: 0, count: d)
        for i in 0..<train.count { for j in 0..<d { mean[j] += train.codes[i * d + j] } }
        for j in 0..<d { mean[j] /= Float(train.count) }
        for i in 0..<train.count { for j in 0..<d { let v = train.codes[i * d + j] - mean[j]; std[j] += v * v } }
        for j in 0..<d { std[j] = max((std[j] / Float(train.count)).squareRoot(), 1e-6) }
        func standardized(_ codes: SplitCodes) -> [Float] {
            var out = codes.codes
            for i in 0..<codes.count { for j in 0..<d { out[i * d + j] = (codes.codes[i * d + j] - mean[j]) / std[j] } }
            return out
        }
        let x = standardized(train), xTest = standardized(test)
        let params = ParameterSet<Float>()
        let layer = Linear(params, "probe", in: d, out: classes)
        params.finalize()
        var config = OptimizerConfig()
        config.kind = .adamw
        config.learningRate = learningRate
        config.weightDecay = weightDecay
        let optimizer = Optimizer<Float>(config, parameters: params.count)
        let n = train.count
        var logits = [Float](repeating: 0, count: n * classes), gradient = logits
        let valid = [UInt8](repeating: 1, count: n)
        for _ in 0..<steps {
            params.zeroGrads()
            x.withUnsafeBufferPointer { xp in
                layer.forward(xp.baseAddress!, &logits, batch: n, params)
                _ = Loss.softmaxCrossEntropy(logits, targets: trainLabels, valid: valid, &gradient, rows: n, classes: classes)
                layer.backward(xp.baseAddress!, gradient, nil, batch: n, params)
            }
            optimizer.update(params)
        }
        var testLogits = [Float](repeating: 0, count: test.count * classes)
        xTest.withUnsafeBufferPointer { layer.forward($0.baseAddress!, &testLogits, batch: test.count, params) }
        var correct = 0
        for i in 0..<test.count {
            var best = 0
            for c in 1..<classes where testLogits[i * classes + c] > testLogits[i * classes + best] { best = c }
            if Int32(best) == testLabels[i] { correct += 1 }
        }
        return Double(correct) / Double(test.count)
    }
}
