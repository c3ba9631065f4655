// `tessera encode` and `tessera eval`: shared codes per sample (from all modalities or a chosen few),
// reconstruction errors, cross-modal retrieval and linear probes.
import TesseraCore
import TesseraEngine
import Foundation
import TesseraShards
#if canImport(Glibc)
import Glibc
#endif

/// A trained model opened from a run folder (or a checkpoint/weights file) for a dataset.
public final class TrainedModel {
    public let model: JointModel
    public let source: String

    /// `checkpoint` is a run folder (weights.safetensors, else checkpoint.safetensors) or a safetensors file
    /// that carries its model in the metadata; `datasetName` names the dataset in errors.
    public init(checkpoint: String, dataset manifest: DatasetManifest, datasetName: String, batchSize: Int) throws {
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
        try loaded.checkInputs(manifest, dataset: datasetName)
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
    /// Per sample: whether any of the modalities the codes were computed from was present. A sample without
    /// any still has a code (from the biases alone), which retrieval and probes leave out. Empty: all were.
    public var fromInput: [Bool] = []
    public var count: Int { keys.count }

    public init(codes: [Float], width: Int, labels: [Int32]?, keys: [String], fromInput: [Bool] = []) {
        (self.codes, self.width, self.labels, self.keys, self.fromInput) = (codes, width, labels, keys, fromInput)
    }

    /// Whether sample `i`'s code was computed from an input.
    public func hasInput(_ i: Int) -> Bool { fromInput.isEmpty || fromInput[i] }

    /// The samples for which `keep` holds, in their order.
    func subset(_ keep: (Int) -> Bool) -> SplitCodes {
        let rows = (0..<count).filter(keep)
        return SplitCodes(codes: rows.flatMap { codes[($0 * width)..<(($0 + 1) * width)] }, width: width,
                          labels: labels.map { all in rows.map { all[$0] } }, keys: rows.map { keys[$0] },
                          fromInput: fromInput.isEmpty ? [] : rows.map { fromInput[$0] })
    }
}

/// Per-modality losses over several batches: each batch's mean weighted by its samples that have the modality.
struct LossAverage {
    private var sums: [String: Double] = [:], weights: [String: Double] = [:]

    /// Adds `values`, the losses of the model's last pass over a batch of `count` samples.
    mutating func add(_ values: [String: Double], model: JointModel, count: Int) {
        for branch in model.branches {
            guard let value = values[branch.spec.name], value.isFinite else { continue }
            let present = Double(model.presentCount(branch, count: count))
            sums[branch.spec.name, default: 0] += value * present
            weights[branch.spec.name, default: 0] += present
        }
    }

    /// The mean loss of every modality that had a sample.
    var means: [String: Double] {
        sums.reduce(into: [:]) { out, item in
            if let weight = weights[item.key], weight > 0 { out[item.key] = item.value / weight }
        }
    }
}

/// What one pass over a split from chosen inputs measures.
public struct SplitMeasures {
    public var codes: SplitCodes
    /// Mean reconstruction loss per target modality (MSE on the model's input scale, cross-entropy for text).
    public var reconstruction: [String: Double]
    /// PSNR (dB) of the image reconstructions on pixels in [0, 1]; nil without an image branch or sample.
    public var imagePSNR: Double?
}

/// Retrieval from one modality's codes to another's.
public struct RetrievalResult {
    /// recall@k of the sample itself, per k.
    public var recall: [Int: Double]
    /// The fraction of labelled queries whose nearest gallery item has their label (nil without labels).
    public var classAtOne: Double?
    /// The samples taking part: those with both modalities.
    public var samples: Int
}

/// A linear probe's accuracy and the labelled samples it was fitted and scored on.
public struct ProbeResult {
    public var accuracy: Double
    public var trainSamples: Int
    public var testSamples: Int
}

public enum Evaluation {
    /// One pass over `split` in stored order.
    private static func loader(model: JointModel, dataset: String, split: String, verify: Bool) throws -> ShardLoader {
        var config = LoaderConfig()
        config.split = split
        config.batchSize = model.maxBatch
        config.shuffle = .none
        config.epochs = 1
        config.verifyChecksums = verify
        return try ShardLoader(folder: dataset, config: config)
    }

    /// The shared code of every sample of `split`, computed from the `visible` modalities only (nil: all
    /// present ones). Samples lacking all of them still get a code (from the biases alone), marked in
    /// `fromInput`.
    public static func codes(model: JointModel, dataset: String, split: String, visible: Set<String>?, verify: Bool = true) throws -> SplitCodes {
        try measure(model: model, dataset: dataset, split: split, visible: visible, verify: verify, scoring: false).codes
    }

    /// One pass over `split` with only the `visible` modalities as input (nil: all present ones): every
    /// sample's code, and (`scoring`) the reconstruction losses and the image PSNR over the samples that have
    /// the target and at least one visible modality.
    public static func measure(model: JointModel, dataset: String, split: String, visible: Set<String>?, verify: Bool = true,
                               scoring: Bool = true) throws -> SplitMeasures {
        let loader = try loader(model: model, dataset: dataset, split: split, verify: verify)
        defer { loader.stop() }
        var codes = SplitCodes(codes: [], width: model.codeWidth, labels: nil, keys: [])
        let hasLabels = loader.fields.contains { $0.name == "label" }
        var labels: [Int32] = []
        var losses = LossAverage()
        var image = ImageError(model: model)
        while let batch = try loader.next() {
            let input = ModelBatch(batch)
            try model.prepare(input, visibleModalities: visible, hide: nil)
            codes.fromInput += model.excludeSamplesWithoutInput(count: batch.count)
            model.forward(input)
            codes.codes.append(contentsOf: UnsafeBufferPointer(start: model.codePointer, count: batch.count * model.codeWidth))
            codes.keys.append(contentsOf: batch.keys)
            if hasLabels, let pointer = batch.int32s("label") { labels.append(contentsOf: UnsafeBufferPointer(start: pointer, count: batch.count)) }
            guard scoring else { continue }
            losses.add(model.losses(input).values, model: model, count: input.count)
            image?.add(model, input)
        }
        if hasLabels { codes.labels = labels }
        return SplitMeasures(codes: codes, reconstruction: losses.means, imagePSNR: image?.psnr)
    }

    /// Squared error of the image reconstructions on pixel values in [0, 1], summed over batches.
    private struct ImageError {
        let branch: ModalityBranch
        let normalization: Normalization
        var squared = 0.0, count = 0.0

        /// nil when the model has no image branch scored by MSE on a normalised [C, H, W] input.
        init?(model: JointModel) {
            guard let branch = model.branches.first(where: { $0.spec.name == "image" && $0.spec.loss == .mse }),
                  let normalization = branch.input.normalization, branch.input.shape.count == 3 else { return nil }
            (self.branch, self.normalization) = (branch, normalization)
        }

        mutating func add(_ model: JointModel, _ input: ModelBatch) {
            guard let target = model.normalizedInput(branch, input) else { return }
            let shape = branch.input.shape, per = shape.reduce(1, *), plane = shape[1] * shape[2]
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

        /// The peak signal-to-noise ratio in dB; nil when no sample counted.
        var psnr: Double? { count > 0 ? 10 * log10(1 / max(squared / count, 1e-12)) : nil }
    }

    /// Retrieval from query codes to gallery codes (the same samples in the same order), by cosine similarity,
    /// among the samples whose codes on both sides come from an input: recall@k of the sample itself, and the
    /// fraction whose nearest gallery item has the query's label.
    public static func retrieval(queries allQueries: SplitCodes, gallery allGallery: SplitCodes, ks: [Int] = [1, 5, 10]) -> RetrievalResult {
        let shared = min(allQueries.count, allGallery.count)
        let both = { (i: Int) in i < shared && allQueries.hasInput(i) && allGallery.hasInput(i) }
        let queries = allQueries.subset(both), gallery = allGallery.subset(both)
        let n = min(queries.count, gallery.count), d = queries.width
        guard n > 0, d > 0 else { return RetrievalResult(recall: [:], classAtOne: nil, samples: 0) }
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
        var hits = [Int: Int](), classHits = 0, labelled = 0
        // Similarities a block of queries at a time (at most ~16 MB, at least 64 rows): an n x n matrix would
        // need 40 GB for a split of 100,000 samples.
        let block = min(n, max(64, (1 << 22) / n))
        var similarity = [Float](repeating: 0, count: block * n)
        for first in stride(from: 0, to: n, by: block) {
            let rows = min(block, n - first)
            q.withUnsafeBufferPointer { qp in
                g.withUnsafeBufferPointer { gp in
                    similarity.withUnsafeMutableBufferPointer { sp in
                        Float.gemm(transA: false, transB: true, m: rows, n: n, k: d, alpha: 1, a: qp.baseAddress! + first * d, lda: d,
                                   b: gp.baseAddress!, ldb: d, beta: 0, c: sp.baseAddress!, ldc: n)
                    }
                }
            }
            for r in 0..<rows {
                let i = first + r, row = r * n
                let own = similarity[row + i]
                // Rank of the sample itself: gallery items scoring higher (ties count against it).
                var better = 0, best = 0
                for j in 0..<n {
                    if j != i && similarity[row + j] >= own { better += 1 }
                    if similarity[row + j] > similarity[row + best] { best = j }
                }
                for k in ks where better < k { hits[k, default: 0] += 1 }
                // Class-level: over the queries that have a label (-1: none), against the nearest item's label.
                if let labels = queries.labels, let galleryLabels = gallery.labels, labels[i] >= 0 {
                    labelled += 1
                    if labels[i] == galleryLabels[best] { classHits += 1 }
                }
            }
        }
        var recall: [Int: Double] = [:]
        for k in ks { recall[k] = Double(hits[k] ?? 0) / Double(n) }
        return RetrievalResult(recall: recall, classAtOne: labelled > 0 ? Double(classHits) / Double(labelled) : nil, samples: n)
    }

    /// A linear probe: multinomial logistic regression on the train codes as they are (or standardised, as
    /// scikit-learn's StandardScaler would), the objective of scikit-learn's `LogisticRegression(C=1)` (mean
    /// cross-entropy + ||W||² / (2 C N), intercepts free), minimised with L-BFGS in double precision; accuracy on
    /// the test codes. nil without labels; samples whose label is -1 (none), and those whose code came from no
    /// input, are left out of both. The codes as they are is what the quality anchor was measured with.
    public static func linearProbe(train: SplitCodes, test: SplitCodes, inverseRegularization c: Double = 1, standardize: Bool = false) -> ProbeResult? {
        guard let trainLabels = train.labels, let testLabels = test.labels else { return nil }
        // Fitted on the labelled train codes that come from an input, scored on such test codes.
        func labelled(_ codes: SplitCodes, _ labels: [Int32]) -> (features: [Double], labels: [Int]) {
            var features: [Double] = [], kept: [Int] = []
            for (i, label) in labels.enumerated() where label >= 0 && i < codes.count && codes.hasInput(i) {
                features += codes.codes[(i * codes.width)..<((i + 1) * codes.width)].map(Double.init)
                kept.append(Int(label))
            }
            return (features, kept)
        }
        let fit = labelled(train, trainLabels), scored = labelled(test, testLabels)
        // The classes are the labels the train codes have (as scikit-learn's `classes_`), not 0 up to the largest
        // label: a manifest's label may be any non-negative int32, and 2^31 classes would not fit in memory.
        let classes = Array(Set(fit.labels)).sorted()
        guard !classes.isEmpty, !scored.labels.isEmpty else { return nil }
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        let model = LogisticRegression(features: fit.features, labels: fit.labels.map { index[$0] ?? 0 }, width: train.width,
                                       classes: classes.count, inverseRegularization: c, standardize: standardize)
        let predictions = model.predict(scored.features).map { classes[$0] }
        let correct = zip(predictions, scored.labels).filter { $0 == $1 }.count
        return ProbeResult(accuracy: Double(correct) / Double(scored.labels.count), trainSamples: fit.labels.count, testSamples: scored.labels.count)
    }
}

/// Multinomial logistic regression, on the features as given or standardised, fitted by L-BFGS (as
/// scikit-learn's default solver).
struct LogisticRegression {
    let width: Int, classes: Int
    let mean: [Double], scale: [Double]
    /// [classes, width] weights then [classes] intercepts.
    private(set) var parameters: [Double]

    init(features: [Double], labels: [Int], width: Int, classes: Int, inverseRegularization c: Double, standardize: Bool = true,
         maxIterations: Int = 10000) {
        self.width = width
        self.classes = classes
        let n = labels.count
        var mean = [Double](repeating: 0, count: width), scale = [Double](repeating: 0, count: width)
        for i in 0..<n { for j in 0..<width { mean[j] += features[i * width + j] } }
        for j in 0..<width { mean[j] /= Double(n) }
        for i in 0..<n { for j in 0..<width { let d = features[i * width + j] - mean[j]; scale[j] += d * d } }
        // StandardScaler: population std, and 1 where a feature is constant.
        for j in 0..<width { let s = (scale[j] / Double(n)).squareRoot(); scale[j] = s > 0 ? s : 1 }
        if !standardize {
            mean = [Double](repeating: 0, count: width)
            scale = [Double](repeating: 1, count: width)
        }
        self.mean = mean
        self.scale = scale
        var x = features
        for i in 0..<n { for j in 0..<width { x[i * width + j] = (features[i * width + j] - mean[j]) / scale[j] } }
        let lambda = 1 / (c * Double(n))
        let count = classes * width + classes
        let standardized = x

        /// Objective and gradient at w.
        func evaluate(_ w: [Double]) -> (Double, [Double]) {
            var logits = [Double](repeating: 0, count: n * classes)
            standardized.withUnsafeBufferPointer { xp in
                w.withUnsafeBufferPointer { wp in
                    logits.withUnsafeMutableBufferPointer { lp in
                        Double.gemm(transA: false, transB: true, m: n, n: classes, k: width, alpha: 1, a: xp.baseAddress!, lda: width,
                                    b: wp.baseAddress!, ldb: width, beta: 0, c: lp.baseAddress!, ldc: classes)
                    }
                }
            }
            var loss = 0.0
            var residual = [Double](repeating: 0, count: n * classes)
            for i in 0..<n {
                var top = -Double.infinity
                for k in 0..<classes { logits[i * classes + k] += w[classes * width + k]; top = max(top, logits[i * classes + k]) }
                var sum = 0.0
                for k in 0..<classes {
                    residual[i * classes + k] = Foundation.exp(logits[i * classes + k] - top)
                    sum += residual[i * classes + k]
                }
                loss += Foundation.log(sum) + top - logits[i * classes + labels[i]]
                for k in 0..<classes { residual[i * classes + k] = residual[i * classes + k] / sum / Double(n) }
                residual[i * classes + labels[i]] -= 1 / Double(n)
            }
            var gradient = [Double](repeating: 0, count: count)
            residual.withUnsafeBufferPointer { rp in
                standardized.withUnsafeBufferPointer { xp in
                    gradient.withUnsafeMutableBufferPointer { gp in
                        Double.gemm(transA: true, transB: false, m: classes, n: width, k: n, alpha: 1, a: rp.baseAddress!, lda: classes,
                                    b: xp.baseAddress!, ldb: width, beta: 0, c: gp.baseAddress!, ldc: width)
                    }
                }
            }
            var penalty = 0.0
            for k in 0..<(classes * width) {
                penalty += w[k] * w[k]
                gradient[k] += lambda * w[k]
            }
            for i in 0..<n { for k in 0..<classes { gradient[classes * width + k] += residual[i * classes + k] } }
            return (loss / Double(n) + 0.5 * lambda * penalty, gradient)
        }

        // L-BFGS with 10 pairs and a backtracking (Armijo) line search.
        var w = [Double](repeating: 0, count: count)
        var (f, g) = evaluate(w)
        var history: [(s: [Double], y: [Double], rho: Double)] = []
        for _ in 0..<maxIterations {
            if (g.map(abs).max() ?? 0) < 1e-7 { break }
            var q = g
            var alphas: [Double] = []
            for pair in history.reversed() {
                let a = pair.rho * zip(pair.s, q).reduce(0) { $0 + $1.0 * $1.1 }
                alphas.append(a)
                for k in 0..<count { q[k] -= a * pair.y[k] }
            }
            if let last = history.last {
                let gamma = zip(last.s, last.y).reduce(0) { $0 + $1.0 * $1.1 } / max(last.y.reduce(0) { $0 + $1 * $1 }, 1e-300)
                for k in 0..<count { q[k] *= gamma }
            }
            for (pair, a) in zip(history, alphas.reversed()) {
                let b = pair.rho * zip(pair.y, q).reduce(0) { $0 + $1.0 * $1.1 }
                for k in 0..<count { q[k] += pair.s[k] * (a - b) }
            }
            var direction = q.map { -$0 }
            var slope = zip(direction, g).reduce(0) { $0 + $1.0 * $1.1 }
            if slope >= 0 {
                direction = g.map { -$0 }
                slope = -g.reduce(0) { $0 + $1 * $1 }
                history.removeAll()
            }
            var step = 1.0
            var candidate = w, next = (f, g)
            var accepted = false
            for _ in 0..<40 {
                for k in 0..<count { candidate[k] = w[k] + step * direction[k] }
                next = evaluate(candidate)
                if next.0 <= f + 1e-4 * step * slope { accepted = true; break }
                step *= 0.5
            }
            guard accepted else { break }
            let s = (0..<count).map { candidate[$0] - w[$0] }, y = (0..<count).map { next.1[$0] - g[$0] }
            let sy = zip(s, y).reduce(0) { $0 + $1.0 * $1.1 }
            let improvement = f - next.0
            w = candidate
            (f, g) = next
            if sy > 1e-12 {
                history.append((s, y, 1 / sy))
                if history.count > 10 { history.removeFirst() }
            }
            if improvement < 1e-15 * max(abs(f), 1) && (g.map(abs).max() ?? 0) < 1e-5 { break }
        }
        parameters = w
    }

    /// The most likely class of each row of `features` (unstandardised, as given to `init`).
    func predict(_ features: [Double]) -> [Int] {
        let n = features.count / max(width, 1)
        return (0..<n).map { i in
            var best = 0, bestScore = -Double.infinity
            for k in 0..<classes {
                var score = parameters[classes * width + k]
                for j in 0..<width { score += parameters[k * width + j] * (features[i * width + j] - mean[j]) / scale[j] }
                if score > bestScore { bestScore = score; best = k }
            }
            return best
        }
    }
}
