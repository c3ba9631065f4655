// The joint autoencoder: per-modality encoders, a fusion into one shared code, a shared decoder layer split
// into per-modality parts, per-modality decoders and losses (Ngiam et al. 2011). Absent and hidden
// modalities feed nothing into the code; absent ones are not scored.
import TesseraCore
import TesseraEngine
import TesseraShards

/// What the dataset says about one modality's input.
public struct ModalityInput: Sendable {
    public var tensor: String
    /// Per-sample shape as the model sees it ([C, H, W], [mels, frames], [length]).
    public var shape: [Int]
    /// Images stored [H, W, C] (`ingest --image-layout hwc`): the model reads a [C, H, W] copy.
    public var channelsLast = false
    /// The mask tensor (`mask_image`, ...), when the dataset has one.
    public var mask: String?
    /// Per-channel (scale / std, mean / std... as stored) normalisation, to undo for `unit` inputs; its axis
    /// is that of `shape` (channels first).
    public var normalization: Normalization?
    /// Token vocabulary size (text).
    public var vocabulary: Int

    /// Reads the input of `spec` from a manifest; `source` names the dataset in errors.
    static func from(_ manifest: DatasetManifest, spec: ModalitySpec, source: String) throws -> ModalityInput {
        guard let schema = manifest.tensor(spec.input) else {
            throw TesseraError(path: source, stage: .config, code: "model.no-input",
                               "the model's \(spec.name) reads \"\(spec.input)\", which the dataset does not have (it has \(manifest.schema.map(\.name).joined(separator: ", ")))")
        }
        let wantType: DType = spec.name == "text" ? .int32 : (schema.normalize != nil ? schema.dtype : .float32)
        guard schema.dtype == wantType || (spec.name != "text" && schema.normalize != nil) else {
            throw TesseraError(path: source, stage: .config, code: "model.input-type", "\(spec.input) is \(schema.dtype.rawValue); \(spec.name) needs \(wantType.rawValue)")
        }
        if spec.name == "text" && manifest.tensor("text_len") == nil {
            throw TesseraError(path: source, stage: .config, code: "model.no-input", "text needs text_len in the dataset")
        }
        var vocabulary = 0
        if let tokenizer = schema.extra["tokenizer"], let size = tokenizer["vocabularySize"]?.intValue { vocabulary = size }
        let mask = "mask_" + spec.name
        var normalization = schema.normalize ?? appliedNormalization(schema)
        let channelsLast = isChannelsLast(schema)
        // The loader normalises in the stored layout; the model's copy has the channels first.
        if channelsLast { normalization?.axis = 0 }
        return ModalityInput(tensor: spec.input, shape: modelShape(schema), channelsLast: channelsLast, mask: manifest.tensor(mask) != nil ? mask : nil,
                             normalization: normalization, vocabulary: vocabulary)
    }

    static func isChannelsLast(_ schema: TensorSchema) -> Bool { schema.shape.count == 3 && schema.extra["layout"]?.stringValue == "hwc" }

    /// A dataset tensor's per-sample shape as the model sees it: channels first.
    static func modelShape(_ schema: TensorSchema) -> [Int] {
        isChannelsLast(schema) ? [schema.shape[2], schema.shape[0], schema.shape[1]] : schema.shape
    }

    /// Images ingested as float32 were normalised when written; the manifest records the mean and std
    /// used (0-1 units), which is all that undoing it takes (the scale only matters for applying it).
    static func appliedNormalization(_ schema: TensorSchema) -> Normalization? {
        guard schema.extra["normalized"]?.boolValue == true, let mean = schema.extra["mean"]?.arrayValue?.compactMap(\.doubleValue),
              let std = schema.extra["std"]?.arrayValue?.compactMap(\.doubleValue), !mean.isEmpty, mean.count == std.count,
              std.allSatisfy({ $0 > 0 && $0.isFinite }), mean.allSatisfy(\.isFinite) else { return nil }
        return Normalization(scale: 1.0 / 255, mean: mean, std: std)
    }
}

/// One modality, built.
final class ModalityBranch {
    let spec: ModalitySpec
    let input: ModalityInput
    let encoder: LayerStack
    let decoder: LayerStack
    /// A channels-last image made [C, H, W] (still normalised): what the model reads instead of the batch's.
    let planarInput: ArenaSlot?
    /// The encoder input when it is not the batch itself (`unit` scale), and the MSE target.
    let unitInput: ArenaSlot?
    /// 1 where the sample has the modality / where the encoders may see it.
    let present: ArenaSlot
    let visible: ArenaSlot
    /// Decoder input (this modality's part of the shared layer) and its gradient.
    let part: ArenaSlot?
    let partGradient: ArenaSlot?
    /// Mean fusion: this modality's projection to the code.
    var projection: Linear<Float>?
    var projected: ArenaSlot?
    var projectedGradient: ArenaSlot?
    /// Alignment: this modality's code on its own [batch, code] and the term's gradient there.
    var single: ArenaSlot?
    var singleGradient: ArenaSlot?
    /// Alignment: this modality's target per sample, the mean of the sample's other modalities' codes.
    var alignTarget: ArenaSlot?
    /// Cross-entropy: which positions count.
    let validPositions: UnsafeMutablePointer<UInt8>?
    /// Cross-entropy through a per-position output layer: the positions that count, the only rows the layer
    /// computes (so the logits and their gradient are packed), and their target ids, packed alike.
    var scoredRows: OutputRows?
    let packedTargets: UnsafeMutablePointer<Int32>?
    var encoderWidth: Int { encoder.outputCount }

    init(spec: ModalitySpec, input: ModalityInput, encoder: LayerStack, decoder: LayerStack, planarInput: ArenaSlot?, unitInput: ArenaSlot?, present: ArenaSlot,
         visible: ArenaSlot, part: ArenaSlot?, partGradient: ArenaSlot?, maxBatch: Int) {
        (self.spec, self.input, self.encoder, self.decoder, self.planarInput, self.unitInput) = (spec, input, encoder, decoder, planarInput, unitInput)
        (self.present, self.visible, self.part, self.partGradient) = (present, visible, part, partGradient)
        validPositions = spec.loss == .crossEntropy ? .allocate(capacity: maxBatch * max(input.shape.first ?? 1, 1)) : nil
        packedTargets = spec.loss == .crossEntropy ? .allocate(capacity: maxBatch * max(input.shape.first ?? 1, 1)) : nil
    }

    deinit {
        validPositions?.deallocate()
        packedTargets?.deallocate()
    }
}

/// A batch as the model reads it: pointers into a loader batch (or any buffers of the same layout).
public struct ModelBatch {
    public var count: Int
    /// Model-ready floats per input tensor (image, audio_mel, ...).
    public var floats: [String: UnsafeMutablePointer<Float>]
    public var ids: UnsafePointer<Int32>?
    public var lengths: UnsafePointer<Int32>?
    /// Presence masks per modality name (nil: present).
    public var masks: [String: UnsafePointer<UInt8>]

    public init(count: Int, floats: [String: UnsafeMutablePointer<Float>], ids: UnsafePointer<Int32>?, lengths: UnsafePointer<Int32>?,
                masks: [String: UnsafePointer<UInt8>]) {
        (self.count, self.floats, self.ids, self.lengths, self.masks) = (count, floats, ids, lengths, masks)
    }

    /// The batch of a loader.
    public init(_ batch: LoaderBatch) {
        var floats: [String: UnsafeMutablePointer<Float>] = [:]
        var masks: [String: UnsafePointer<UInt8>] = [:]
        for field in batch.fields {
            if field.dtype == .float32, let pointer = batch.floats(field.name) { floats[field.name] = pointer }
            if field.name.hasPrefix("mask_"), let pointer = batch.bytes(field.name) { masks[String(field.name.dropFirst(5))] = UnsafePointer(pointer) }
        }
        self.init(count: batch.count, floats: floats, ids: batch.int32s("text_ids").map { UnsafePointer($0) },
                  lengths: batch.int32s("text_len").map { UnsafePointer($0) }, masks: masks)
    }
}

/// Per-modality losses of one forward pass (NaN where a modality had no sample present).
public struct ModalityLosses: Sendable {
    public var values: [String: Double] = [:]
    /// The alignment term (unweighted) when the model has one and the batch had a sample with two modalities.
    public var align: Double?
    /// The weighted sum (what is minimised).
    public var total: Double = 0
}

/// The joint autoencoder with its parameters, activations and losses.
public final class JointModel {
    public let spec: ModelSpec
    public let params = ParameterSet<Float>()
    let arena = Arena<Float>()
    public let maxBatch: Int
    let branches: [ModalityBranch]
    /// Concat fusion: the encoders' outputs side by side, and the projection to the code.
    let fusion: Linear<Float>?
    let fused: ArenaSlot?
    let fusedGradient: ArenaSlot?
    let code: ArenaSlot?
    let codeGradient: ArenaSlot?
    let shared: Linear<Float>?
    let sharedOut: ArenaSlot?
    let sharedGradient: ArenaSlot?
    /// Alignment: the sum of each sample's single-modality codes.
    let alignSum: ArenaSlot?
    /// Keeps the alignment target of the last pass (a test's finite differences must hold it fixed, as the
    /// gradient does).
    var holdsAlignTarget = false
    /// Computes text logits at the scored positions only (see `selectScoredRows`); a test turns it off to
    /// compare with every position computed.
    var packsScoredRows = true
    /// The width of the shared code.
    public var codeWidth: Int { spec.fusion == .none ? branches[0].encoderWidth : spec.code }
    public var modalityNames: [String] { branches.map(\.spec.name) }
    /// The dataset tensors the model reads and their per-sample shapes, recorded beside its weights.
    public var inputShapes: JSONValue {
        .object(JSONObject(branches.map { ($0.input.tensor, .array($0.input.shape.map { .int($0) })) }))
    }

    /// Where a text branch's embedding or output classes cover fewer ids than the dataset's tokenizer has:
    /// the ids beyond are read as padding and not scored, which a run should say.
    func vocabularyNotes() -> [String] {
        branches.compactMap { branch in
            guard branch.spec.name == "text", branch.input.vocabulary > 0 else { return nil }
            var rows: Int?
            if case let .embedding(vocabulary, _)? = branch.spec.encoder.first, vocabulary > 0 { rows = vocabulary }
            let classes = branch.spec.loss == .crossEntropy ? branch.decoder.outputShape.last : nil
            let covered = [rows, classes].compactMap { $0 }.min() ?? branch.input.vocabulary
            guard covered < branch.input.vocabulary else { return nil }
            return "note: the dataset's tokenizer has \(branch.input.vocabulary) ids and the text branch covers \(covered) "
                + "(embedding rows \(rows.map(String.init) ?? "from the dataset"), output classes \(classes.map(String.init) ?? "-")): "
                + "ids from \(covered) on are read as padding and not scored"
        }
    }

    /// Builds the model for a dataset's inputs; `source` names the model file in errors.
    public init(spec: ModelSpec, manifest: DatasetManifest, maxBatch: Int, source: String) throws {
        self.spec = spec
        self.maxBatch = maxBatch
        guard maxBatch > 0 else { throw TesseraError(stage: .config, code: "train.batch-size", "the batch size must be at least 1") }
        func fail(_ message: String) -> TesseraError { TesseraError(path: source, stage: .config, code: "model.shape", message) }
        let inputs = try spec.modalities.map { try ModalityInput.from(manifest, spec: $0, source: source) }

        // Encoders first (their parameters come first, in modality order), then fusion, shared, decoders.
        var encoders: [LayerStack] = []
        for (m, input) in zip(spec.modalities, inputs) {
            let encoder = try LayerStack(name: "\(m.name).encoder", specs: m.encoder, inputShape: input.shape, vocabulary: input.vocabulary,
                                         maxBatch: maxBatch, params: params, arena: arena, source: source)
            if spec.fusion != .none && encoder.outputShape.count != 1 {
                throw fail("\(m.name).encoder ends in \(encoder.outputShape); it must end in a vector (add \"flatten\")")
            }
            encoders.append(encoder)
        }
        let partWidth: Int
        var projections: [Linear<Float>?] = Array(repeating: nil, count: spec.modalities.count)
        switch spec.fusion {
        case .concat:
            let total = encoders.reduce(0) { $0 + $1.outputCount }
            fusion = Linear(params, "fusion", in: total, out: spec.code)
            fused = arena.reserve(maxBatch * total)
            fusedGradient = arena.reserve(maxBatch * total)
        case .mean:
            for (i, m) in spec.modalities.enumerated() {
                projections[i] = Linear(params, "fusion.\(m.name)", in: encoders[i].outputCount, out: spec.code)
            }
            fusion = nil
            fused = nil
            fusedGradient = nil
        case .none:
            fusion = nil
            fused = nil
            fusedGradient = nil
        }
        if spec.fusion == .none {
            code = nil
            codeGradient = nil
            shared = nil
            sharedOut = nil
            sharedGradient = nil
            partWidth = encoders[0].outputCount
        } else {
            code = arena.reserve(maxBatch * spec.code)
            codeGradient = arena.reserve(maxBatch * spec.code)
            shared = Linear(params, "shared", in: spec.code, out: spec.sharedWidth * spec.modalities.count)
            sharedOut = arena.reserve(maxBatch * spec.sharedWidth * spec.modalities.count)
            sharedGradient = arena.reserve(maxBatch * spec.sharedWidth * spec.modalities.count)
            partWidth = spec.sharedWidth
        }

        var branches: [ModalityBranch] = []
        for (i, (m, input)) in zip(spec.modalities, inputs).enumerated() {
            let decoderInput = spec.fusion == .none ? encoders[0].outputShape : [partWidth]
            let decoder = try LayerStack(name: "\(m.name).decoder", specs: m.decoder, inputShape: decoderInput, vocabulary: input.vocabulary,
                                         maxBatch: maxBatch, params: params, arena: arena, source: source)
            switch m.loss {
            case .mse:
                guard decoder.outputShape == input.shape else {
                    throw fail("\(m.name).decoder ends in \(decoder.outputShape); the reconstruction must have the input's shape \(input.shape)")
                }
            case .crossEntropy:
                guard m.name == "text", decoder.outputShape.count == 2, decoder.outputShape[0] == input.shape.first else {
                    throw fail("\(m.name).decoder ends in \(decoder.outputShape); cross-entropy needs [\(input.shape.first ?? 0), vocabulary] logits")
                }
            }
            if m.scale == .unit && (input.normalization == nil || m.name == "text") {
                throw fail("\(m.name): scale \"unit\" needs a normalised stored input (an image)")
            }
            let planar = input.channelsLast ? arena.reserve(maxBatch * input.shape.reduce(1, *)) : nil
            let unit = m.scale == .unit ? arena.reserve(maxBatch * input.shape.reduce(1, *)) : nil
            let part = spec.fusion == .none ? nil : arena.reserve(maxBatch * partWidth)
            let partGradient = spec.fusion == .none ? nil : arena.reserve(maxBatch * partWidth)
            let branch = ModalityBranch(spec: m, input: input, encoder: encoders[i], decoder: decoder, planarInput: planar, unitInput: unit,
                                        present: arena.reserve(maxBatch), visible: arena.reserve(maxBatch), part: part,
                                        partGradient: partGradient, maxBatch: maxBatch)
            if let projection = projections[i] {
                branch.projection = projection
                branch.projected = arena.reserve(maxBatch * spec.code)
                branch.projectedGradient = arena.reserve(maxBatch * spec.code)
            }
            if spec.align > 0 {
                branch.single = arena.reserve(maxBatch * spec.code)
                branch.singleGradient = arena.reserve(maxBatch * spec.code)
                branch.alignTarget = arena.reserve(maxBatch * spec.code)
            }
            if m.loss == .crossEntropy { branch.scoredRows = decoder.selectableOutputRows() }
            branches.append(branch)
        }
        self.branches = branches
        alignSum = spec.align > 0 ? arena.reserve(maxBatch * spec.code) : nil
        // Parameters, their gradients and Adam's two moments, then the activations: refused before any of it
        // is allocated when it cannot fit in the memory this process may take (the machine's, or less under
        // `ulimit` or a container's limit, where an allocation failure would crash the process instead).
        let needed = (Double(params.count) * 4 + Double(arena.count)) * Double(MemoryLayout<Float>.stride)
        if let limit = MemoryLimit.current(), needed > Double(limit.bytes) {
            throw fail("the model needs \(byteCount(needed)) (\(params.count) parameters with their gradients and Adam's moments, and the activations "
                       + "of a batch of \(maxBatch)); \(limit.description)")
        }
        params.finalize()
        arena.finalize()
    }

    /// PyTorch's default initialisation from `seed`, layer by layer in parameter order.
    public func initialize(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        for branch in branches { branch.encoder.initialize(&rng) }
        fusion?.initialize(params, &rng)
        for branch in branches { branch.projection?.initialize(params, &rng) }
        shared?.initialize(params, &rng)
        for branch in branches { branch.decoder.initialize(&rng) }
    }

    /// Bytes of activations planned for `maxBatch`.
    public var activationBytes: Int { arena.byteCount }

    // MARK: - forward and backward

    /// The encoder input of a branch for this batch. A text encoder starts with the embedding, which reads the
    /// ids itself; it gets a placeholder float input that nothing reads.
    private func input(_ branch: ModalityBranch, _ batch: ModelBatch) -> UnsafeMutablePointer<Float>? {
        if let unit = branch.unitInput { return arena.pointer(unit) }
        if branch.encoder.startsWithEmbedding { return arena.pointer(branch.present) }
        return normalizedInput(branch, batch)
    }

    /// A branch's input for this batch on the dataset's normalised scale, laid out as the model sees it
    /// (`ModalityInput.shape`): the batch's own tensor, or its [C, H, W] copy when it is stored channels-last
    /// (made by `prepare`).
    func normalizedInput(_ branch: ModalityBranch, _ batch: ModelBatch) -> UnsafeMutablePointer<Float>? {
        if let planar = branch.planarInput { return arena.pointer(planar) }
        return batch.floats[branch.input.tensor]
    }

    /// Fills presence and visibility masks, channels-first copies and unit-scaled inputs. `visibleModalities`
    /// nil: every present modality is visible; `hide(sample)` returns modalities to hide for a sample
    /// (modality dropout); `transform` may change each branch's normalised input in place (augmentation)
    /// before anything is derived from it.
    func prepare(_ batch: ModelBatch, visibleModalities: Set<String>?, hide: ((Int, [String]) -> Set<String>)?,
                 transform: ((ModalityBranch, UnsafeMutablePointer<Float>) -> Void)? = nil) throws {
        let n = batch.count
        for branch in branches {
            let present = arena.pointer(branch.present)
            let mask = batch.masks[branch.spec.name]
            for b in 0..<n { present[b] = (mask?[b] ?? 1) != 0 ? 1 : 0 }
            if branch.spec.name != "text" && batch.floats[branch.input.tensor] == nil {
                throw TesseraError(stage: .read, code: "train.missing-input", "the batch has no float tensor \(branch.input.tensor)")
            }
            if branch.spec.name == "text" && (batch.ids == nil || batch.lengths == nil) {
                throw TesseraError(stage: .read, code: "train.missing-input", "the batch has no text_ids/text_len")
            }
            if let planar = branch.planarInput, let source = batch.floats[branch.input.tensor] {
                channelsFirst(source, arena.pointer(planar), shape: branch.input.shape, count: n)
            }
            if let transform, let pixels = normalizedInput(branch, batch) { transform(branch, pixels) }
            if let unit = branch.unitInput, let source = normalizedInput(branch, batch), let normalization = branch.input.normalization {
                unitScale(source, arena.pointer(unit), shape: branch.input.shape, normalization: normalization, count: n)
            }
        }
        for b in 0..<n {
            let present = branches.filter { arena.pointer($0.present)[b] != 0 }.map(\.spec.name)
            let hidden = hide?(b, present) ?? []
            for branch in branches {
                let name = branch.spec.name
                let isPresent = arena.pointer(branch.present)[b] != 0
                let shown = isPresent && !hidden.contains(name) && (visibleModalities?.contains(name) ?? true)
                arena.pointer(branch.visible)[b] = shown ? 1 : 0
            }
        }
    }

    /// After `prepare`, for evaluation from chosen inputs: a sample none of whose visible modalities is present
    /// would be encoded from the biases alone, so it is taken out of every reconstruction target. Returns, per
    /// sample, whether it had an input.
    func excludeSamplesWithoutInput(count n: Int) -> [Bool] {
        let hasInput = (0..<n).map { b in branches.contains { arena.pointer($0.visible)[b] != 0 } }
        for branch in branches {
            let present = arena.pointer(branch.present)
            for b in 0..<n where !hasInput[b] { present[b] = 0 }
        }
        return hasInput
    }

    /// How many of the first `n` samples have `branch`'s modality as a target (after `prepare`).
    func presentCount(_ branch: ModalityBranch, count n: Int) -> Int {
        let present = arena.pointer(branch.present)
        return (0..<n).filter { present[$0] != 0 }.count
    }

    /// [H, W, C] samples to [C, H, W] (`shape` is the latter).
    private func channelsFirst(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, shape: [Int], count: Int) {
        let (channels, plane) = (shape[0], shape[1] * shape[2]), perSample = channels * plane
        for b in 0..<count {
            let from = source + b * perSample, to = target + b * perSample
            for p in 0..<plane {
                for c in 0..<channels { to[c * plane + p] = from[p * channels + c] }
            }
        }
    }

    /// The stored value times its scale (pixels in [0, 1]) from the loader's (x * scale - mean) / std.
    private func unitScale(_ source: UnsafeMutablePointer<Float>, _ target: UnsafeMutablePointer<Float>, shape: [Int], normalization: Normalization, count: Int) {
        let perSample = shape.reduce(1, *)
        let channels = normalization.mean.count
        let axis = normalization.axis
        let inner = channels > 1 && axis < shape.count ? shape[(axis + 1)...].reduce(1, *) : perSample
        for i in 0..<(count * perSample) {
            let c = channels > 1 ? (i % perSample / inner) % channels : 0
            target[i] = source[i] * Float(normalization.std[c]) + Float(normalization.mean[c])
        }
    }

    /// The forward pass: encoders, fusion, shared layer, decoders.
    func forward(_ batch: ModelBatch) {
        let n = batch.count
        for branch in branches {
            branch.encoder.ids = batch.ids
            branch.encoder.lengths = batch.lengths
            guard let x = input(branch, batch) else { continue }
            branch.encoder.forward(input: x, batch: n)
        }
        fuse(count: n)
        selectScoredRows(batch)
        decode(count: n)
    }

    /// For each cross-entropy branch whose decoder ends in a per-position layer: the positions the loss reads
    /// (below the sample's length, with an id in the vocabulary, of a sample that has the modality), so that
    /// the decoder computes logits there only. On W1's captions that is under half of the 32 positions.
    private func selectScoredRows(_ batch: ModelBatch) {
        for branch in branches {
            guard let rows = branch.scoredRows, let targets = branch.packedTargets else { continue }
            guard packsScoredRows, let ids = batch.ids, let lengths = batch.lengths else {
                rows.deactivate()
                continue
            }
            let length = branch.decoder.outputShape[0], classes = branch.decoder.outputShape[1]
            let present = arena.pointer(branch.present)
            rows.reset()
            for b in 0..<batch.count where present[b] != 0 {
                for l in 0..<max(0, min(Int(lengths[b]), length)) {
                    let id = ids[b * length + l]
                    guard id >= 0 && Int(id) < classes, rows.indices.count < rows.capacity else { continue }
                    targets[rows.indices.count] = id
                    rows.append(b * length + l)
                }
            }
        }
    }

    /// The shared code from the encoders' outputs and the visibility masks.
    func fuse(count n: Int) {
        switch spec.fusion {
        case .none:
            break
        case .concat:
            guard let fusion, let fused, let code else { return }
            let total = fusion.inFeatures
            let x = arena.pointer(fused)
            var offset = 0
            for branch in branches {
                let h = branch.encoder.output, width = branch.encoderWidth, visible = arena.pointer(branch.visible)
                for b in 0..<n {
                    let row = x + b * total + offset
                    if visible[b] != 0 { row.update(from: h + b * width, count: width) } else { row.update(repeating: 0, count: width) }
                }
                offset += width
            }
            fusion.forward(x, arena.pointer(code), batch: n, params)
        case .mean:
            guard let code else { return }
            let z = arena.pointer(code), width = spec.code
            z.update(repeating: 0, count: n * width)
            var counts = [Float](repeating: 0, count: n)
            for branch in branches {
                guard let projection = branch.projection, let projected = branch.projected else { continue }
                let p = arena.pointer(projected), visible = arena.pointer(branch.visible)
                projection.forward(branch.encoder.output, p, batch: n, params)
                for b in 0..<n where visible[b] != 0 {
                    counts[b] += 1
                    for j in 0..<width { z[b * width + j] += p[b * width + j] }
                }
            }
            for b in 0..<n where counts[b] > 1 {
                let scale = 1 / counts[b]
                for j in 0..<width { z[b * width + j] *= scale }
            }
        }
    }

    /// The code as computed: [count, codeWidth].
    public var codePointer: UnsafeMutablePointer<Float> {
        if let code { return arena.pointer(code) }
        return branches[0].encoder.output
    }

    func decode(count n: Int) {
        if spec.fusion == .none {
            branches[0].decoder.forward(input: codePointer, batch: n)
            return
        }
        guard let shared, let sharedOut else { return }
        let s = arena.pointer(sharedOut)
        shared.forward(codePointer, s, batch: n, params)
        spec.sharedActivation.forward(s, s, count: n * shared.outFeatures)
        let parts = branches.map { (arena.pointer($0.part!), spec.sharedWidth) }
        FeatureConcat.split(s, into: parts, batch: n)
        for branch in branches { branch.decoder.forward(input: arena.pointer(branch.part!), batch: n) }
    }

    /// The reconstruction losses (and their gradients in the decoders' output gradients).
    func losses(_ batch: ModelBatch) -> ModalityLosses {
        let n = batch.count
        var result = ModalityLosses()
        for branch in branches {
            let r = branch.decoder.output, dr = branch.decoder.outputGradient
            let present = arena.pointer(branch.present)
            let loss: Float
            var scaledCount = n * branch.decoder.outputCount
            switch branch.spec.loss {
            case .mse:
                guard let target = branch.unitInput.map({ arena.pointer($0) }) ?? normalizedInput(branch, batch) else { continue }
                loss = Loss.mse(r, target, dr, batch: n, perSample: branch.decoder.outputCount, sampleWeights: present)
            case .crossEntropy:
                guard let ids = batch.ids, let lengths = batch.lengths, let valid = branch.validPositions else { continue }
                let length = branch.decoder.outputShape[0], classes = branch.decoder.outputShape[1]
                if let rows = branch.scoredRows, rows.isActive, let targets = branch.packedTargets {
                    // Packed logits: every row counts.
                    let count = rows.indices.count
                    valid.update(repeating: 1, count: count)
                    loss = Loss.softmaxCrossEntropy(r, targets: targets, valid: valid, dr, rows: count, classes: classes)
                    scaledCount = count * classes
                    break
                }
                for b in 0..<n {
                    let used = present[b] != 0 ? max(0, min(Int(lengths[b]), length)) : 0
                    for l in 0..<length { valid[b * length + l] = l < used ? 1 : 0 }
                }
                loss = Loss.softmaxCrossEntropy(r, targets: ids, valid: valid, dr, rows: n * length, classes: classes)
            }
            let anyPresent = (0..<n).contains { present[$0] != 0 }
            result.values[branch.spec.name] = anyPresent ? Double(loss) : .nan
            let weight = Float(branch.spec.weight)
            if weight != 1 {
                for i in 0..<scaledCount { dr[i] *= weight }
            }
            if anyPresent { result.total += branch.spec.weight * Double(loss) }
        }
        if spec.align > 0, let term = alignment(count: n) {
            result.align = term
            result.total += spec.align * term
        }
        return result
    }

    /// The alignment term, contrastive: each present modality's own code should be nearer (in cosine) to its
    /// target, the mean of the sample's other modalities' codes (held fixed), than to the other samples'
    /// targets in the batch: softmax cross-entropy over the similarities / temperature, averaged over the
    /// present modalities of the samples with two or more. Its gradient (weighted) goes to each branch's
    /// `singleGradient`. Nil when fewer than two samples have two modalities.
    private func alignment(count n: Int) -> Double? {
        guard let alignSum else { return nil }
        let width = spec.code, codeSum = arena.pointer(alignSum)
        singleCodes(count: n)
        var presentCount = [Int](repeating: 0, count: n)
        for branch in branches {
            let present = arena.pointer(branch.present)
            for b in 0..<n where present[b] != 0 { presentCount[b] += 1 }
        }
        if !holdsAlignTarget {
            // Each modality's target: the mean of the sample's *other* modalities' codes (leave one out), so
            // that a code cannot find its own sample by itself. For a sample without this modality, the mean of
            // all its codes (a negative for the others).
            codeSum.update(repeating: 0, count: n * width)
            for branch in branches {
                guard let single = branch.single else { continue }
                let z = arena.pointer(single), present = arena.pointer(branch.present)
                for b in 0..<n where present[b] != 0 {
                    for j in 0..<width { codeSum[b * width + j] += z[b * width + j] }
                }
            }
            for branch in branches {
                guard let single = branch.single, let own = branch.alignTarget else { continue }
                let z = arena.pointer(single), t = arena.pointer(own), present = arena.pointer(branch.present)
                for b in 0..<n {
                    let mine = present[b] != 0
                    let others = presentCount[b] - (mine ? 1 : 0)
                    let scale = 1 / Float(max(others, 1))
                    for j in 0..<width { t[b * width + j] = (codeSum[b * width + j] - (mine ? z[b * width + j] : 0)) * scale }
                }
            }
        }
        // The samples with two or more modalities: each is a positive for itself and a negative for the others.
        let samples = (0..<n).filter { presentCount[$0] >= 2 }
        for branch in branches { branch.singleGradient.map { arena.pointer($0).update(repeating: 0, count: n * width) } }
        guard samples.count >= 2 else { return nil }
        var terms = 0
        for branch in branches {
            let present = arena.pointer(branch.present)
            for b in samples where present[b] != 0 { terms += 1 }
        }
        let temperature = JointModel.alignTemperature
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: samples.count * width + samples.count) { buffer -> Double in
            guard let directions = buffer.baseAddress else { return 0 }
            let logits = directions + samples.count * width
            var sum = 0.0
            let weight = Float(spec.align) / Float(terms)
            for branch in branches {
                guard let single = branch.single, let singleGradient = branch.singleGradient, let targetSlot = branch.alignTarget else { continue }
                let present = arena.pointer(branch.present), target = arena.pointer(targetSlot)
                // This modality's targets' directions.
                for (k, b) in samples.enumerated() {
                    var norm: Float = 0
                    for j in 0..<width { norm += target[b * width + j] * target[b * width + j] }
                    let inverse = 1 / max(norm.squareRoot(), 1e-12)
                    for j in 0..<width { directions[k * width + j] = target[b * width + j] * inverse }
                }
                for (own, b) in samples.enumerated() where present[b] != 0 {
                    let z = arena.pointer(single) + b * width, g = arena.pointer(singleGradient) + b * width
                    var norm: Float = 0
                    for j in 0..<width { norm += z[j] * z[j] }
                    norm = max(norm.squareRoot(), 1e-12)
                    // Cosine similarities to every target, over the temperature; softmax cross-entropy to its own.
                    var largest = -Float.infinity
                    for k in samples.indices {
                        var dot: Float = 0
                        for j in 0..<width { dot += z[j] * directions[k * width + j] }
                        logits[k] = dot / norm / temperature
                        largest = max(largest, logits[k])
                    }
                    var total: Float = 0
                    for k in samples.indices {
                        logits[k] = Float.exp(logits[k] - largest)
                        total += logits[k]
                    }
                    sum += Double(Float.log(total) - Float.log(logits[own]))
                    // d/du = sum_k (p_k - [k = own]) v_k / T, then through u = z / |z|.
                    var projection: Float = 0
                    for j in 0..<width {
                        var d: Float = 0
                        for k in samples.indices { d += (logits[k] / total - (k == own ? 1 : 0)) * directions[k * width + j] }
                        g[j] = d / temperature
                        projection += g[j] * z[j] / norm
                    }
                    for j in 0..<width { g[j] = weight * (g[j] - projection * z[j] / norm) / norm }
                }
            }
            return sum / Double(terms)
        }
    }

    /// The temperature of the alignment term's softmax over cosine similarities.
    static let alignTemperature: Float = 0.1

    /// Each modality's code on its own, for every sample: its block of the fusion product plus the bias
    /// (concat), or its projection (mean).
    private func singleCodes(count n: Int) {
        let width = spec.code
        switch spec.fusion {
        case .none:
            break
        case .concat:
            guard let fusion else { return }
            let weights = params.value(fusion.weight), total = fusion.inFeatures
            var offset = 0
            for branch in branches {
                guard let single = branch.single else { continue }
                let z = arena.pointer(single)
                Float.gemm(transA: false, transB: true, m: n, n: width, k: branch.encoderWidth, alpha: 1, a: branch.encoder.output,
                           lda: branch.encoderWidth, b: weights + offset, ldb: total, beta: 0, c: z, ldc: width)
                if let bias = fusion.bias.map({ params.value($0) }) {
                    for b in 0..<n { for j in 0..<width { z[b * width + j] += bias[j] } }
                }
                offset += branch.encoderWidth
            }
        case .mean:
            for branch in branches {
                guard let single = branch.single, let projected = branch.projected else { continue }
                arena.pointer(single).update(from: arena.pointer(projected), count: n * width)
            }
        }
    }

    /// The backward pass from the decoders' output gradients (set by `losses`); accumulates parameter gradients.
    func backward(_ batch: ModelBatch) {
        let n = batch.count
        if spec.fusion == .none {
            let branch = branches[0]
            branch.decoder.backward(input: codePointer, inputGradient: branch.encoder.outputGradient, batch: n)
            if let x = input(branch, batch) { branch.encoder.backward(input: x, inputGradient: nil, batch: n) }
            return
        }
        guard let shared, let sharedOut, let sharedGradient, let codeGradient else { return }
        for branch in branches {
            branch.decoder.backward(input: arena.pointer(branch.part!), inputGradient: arena.pointer(branch.partGradient!), batch: n)
        }
        let ds = arena.pointer(sharedGradient)
        FeatureConcat.concat(branches.map { (UnsafePointer(arena.pointer($0.partGradient!)), spec.sharedWidth) }, into: ds, batch: n)
        spec.sharedActivation.backward(output: arena.pointer(sharedOut), ds, ds, count: n * shared.outFeatures)
        let dz = arena.pointer(codeGradient)
        shared.backward(codePointer, ds, dz, batch: n, params)
        switch spec.fusion {
        case .none:
            break
        case .concat:
            guard let fusion, let fused, let fusedGradient else { return }
            let dx = arena.pointer(fusedGradient), total = fusion.inFeatures
            fusion.backward(arena.pointer(fused), dz, dx, batch: n, params)
            var offset = 0
            for branch in branches {
                let dh = branch.encoder.outputGradient, width = branch.encoderWidth, visible = arena.pointer(branch.visible)
                for b in 0..<n {
                    let row = dh + b * width
                    if visible[b] != 0 { row.update(from: dx + b * total + offset, count: width) } else { row.update(repeating: 0, count: width) }
                }
                if let singleGradient = branch.singleGradient {
                    // The alignment term through this modality's block of the fusion weights (and the bias).
                    let g = arena.pointer(singleGradient), code = spec.code
                    Float.gemm(transA: false, transB: false, m: n, n: width, k: code, alpha: 1, a: g, lda: code,
                               b: params.value(fusion.weight) + offset, ldb: total, beta: 1, c: dh, ldc: width)
                    Float.gemm(transA: true, transB: false, m: code, n: width, k: n, alpha: 1, a: g, lda: code,
                               b: branch.encoder.output, ldb: width, beta: 1, c: params.grad(fusion.weight) + offset, ldc: total)
                    if let bias = fusion.bias {
                        let db = params.grad(bias)
                        for b in 0..<n { for j in 0..<code { db[j] += g[b * code + j] } }
                    }
                }
                offset += width
            }
        case .mean:
            let width = spec.code
            var counts = [Float](repeating: 0, count: n)
            for branch in branches {
                let visible = arena.pointer(branch.visible)
                for b in 0..<n where visible[b] != 0 { counts[b] += 1 }
            }
            for branch in branches {
                guard let projection = branch.projection, let projectedGradient = branch.projectedGradient else { continue }
                let dp = arena.pointer(projectedGradient), visible = arena.pointer(branch.visible)
                for b in 0..<n {
                    let scale: Float = visible[b] != 0 ? 1 / max(counts[b], 1) : 0
                    for j in 0..<width { dp[b * width + j] = dz[b * width + j] * scale }
                }
                if let singleGradient = branch.singleGradient {
                    let g = arena.pointer(singleGradient)
                    for i in 0..<(n * width) { dp[i] += g[i] }
                }
                projection.backward(branch.encoder.output, dp, branch.encoder.outputGradient, batch: n, params)
            }
        }
        for branch in branches {
            guard let x = input(branch, batch) else { continue }
            branch.encoder.backward(input: x, inputGradient: nil, batch: n)
        }
    }

    /// The reconstruction of a modality, [count] + its output shape (not for text, whose logits are computed at
    /// the scored positions only, packed).
    func reconstruction(_ name: String) -> (pointer: UnsafeMutablePointer<Float>, perSample: Int)? {
        branches.first { $0.spec.name == name }.map { ($0.decoder.output, $0.decoder.outputCount) }
    }
}
