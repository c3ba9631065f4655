// The model file: a joint autoencoder described in JSON (modalities, their encoder and decoder layer
// lists, the fusion and the shared code), parsed strictly with errors that name the place in the file.
import TesseraCore
import TesseraEngine

/// The extra rows and columns a transposed convolution adds at the far edge (PyTorch's `output_padding`),
/// so that it can invert a strided layer's floor on an odd side.
public struct OutputPadding: Sendable, Equatable {
    public var height: Int, width: Int
    public init(height: Int, width: Int) { (self.height, self.width) = (height, width) }
    public static let none = OutputPadding(height: 0, width: 0)
    /// In a model file: one number when the axes agree, else [height, width].
    var json: JSONValue { height == width ? .int(height) : .array([.int(height), .int(width)]) }
}

/// One layer of an encoder or decoder list.
public enum LayerSpec: Sendable, Equatable {
    case conv2d(out: Int, kernel: Int, stride: Int, padding: Int)
    case convTranspose2d(out: Int, kernel: Int, stride: Int, padding: Int, outputPadding: OutputPadding)
    case maxPool(kernel: Int, stride: Int)
    case upsample(scale: Int)
    /// A linear layer on the last axis (earlier axes act as more rows: a per-position linear).
    case linear(out: Int)
    /// Token ids [L] with lengths to the mean of their embedding rows [dim]; the first layer of a text encoder.
    /// A vocabulary of 0 takes the tokenizer's size from the dataset.
    case embedding(vocabulary: Int, dimension: Int)
    case activation(Activation)
    case flatten
    case reshape([Int])

    var json: JSONValue {
        func object(_ name: String, _ members: [(String, JSONValue)]) -> JSONValue {
            .object(JSONObject([(name, .object(JSONObject(members)))]))
        }
        switch self {
        case let .conv2d(out, kernel, stride, padding):
            return object("conv2d", [("out", .int(out)), ("kernel", .int(kernel)), ("stride", .int(stride)), ("padding", .int(padding))])
        case let .convTranspose2d(out, kernel, stride, padding, outputPadding):
            return object("conv_transpose2d", [("out", .int(out)), ("kernel", .int(kernel)), ("stride", .int(stride)), ("padding", .int(padding)),
                                               ("output_padding", outputPadding.json)])
        case let .maxPool(kernel, stride): return object("maxpool", [("kernel", .int(kernel)), ("stride", .int(stride))])
        case let .upsample(scale): return object("upsample", [("scale", .int(scale))])
        case let .linear(out): return object("linear", [("out", .int(out))])
        case let .embedding(vocabulary, dimension): return object("embedding", [("vocabulary", .int(vocabulary)), ("dim", .int(dimension))])
        case let .activation(activation): return .string(activation.rawValue)
        case .flatten: return .string("flatten")
        case let .reshape(shape): return object("reshape", [("shape", .array(shape.map { .int($0) }))])
        }
    }
}

/// The loss a modality's reconstruction is scored with.
public enum ReconstructionLoss: String, Sendable, Equatable {
    /// Mean squared error against the model-ready input.
    case mse
    /// Softmax cross-entropy of per-position logits against the token ids, over the non-pad positions.
    case crossEntropy = "cross_entropy"
}

/// What the model sees of an image: the manifest's normalisation (mean 0, std 1 per channel) or values in [0, 1].
public enum InputScale: String, Sendable, Equatable {
    case normalized, unit
}

/// One modality of the model.
public struct ModalitySpec: Sendable, Equatable {
    /// `image`, `audio` or `text`.
    public var name: String
    /// The dataset tensor it reads (`image`, `audio_mel`, `audio`, `text_ids`).
    public var input: String
    public var scale: InputScale
    public var encoder: [LayerSpec]
    public var decoder: [LayerSpec]
    public var loss: ReconstructionLoss
    public var weight: Double
}

/// How the per-modality codes become the shared code.
public enum Fusion: String, Sendable, Equatable {
    /// Concatenate the encoders' outputs (absent ones as zeros) and project to the code.
    case concat
    /// Project each encoder's output to the code and average over the modalities present.
    case mean
    /// One modality, whose encoder output is the code (no shared layers).
    case none
}

/// A joint autoencoder.
public struct ModelSpec: Sendable, Equatable {
    public static let formatName = "tessera-model"
    public var name: String
    public var modalities: [ModalitySpec]
    public var fusion: Fusion
    /// Width of the shared code.
    public var code: Int
    /// Width of each modality's part of the shared decoder layer (code -> parts x width, then split).
    public var sharedWidth: Int
    public var sharedActivation: Activation
    /// Weight of the contrastive alignment term, which pulls each single-modality code towards the mean of
    /// its sample's other modalities' codes and away from the other samples' (0: off; see docs/TRAIN.md).
    public var align: Double = 0

    public func modality(_ name: String) -> ModalitySpec? { modalities.first { $0.name == name } }

    /// The model as JSON, members in a fixed order.
    public var json: JSONValue {
        .object(JSONObject([
            ("format", .string(ModelSpec.formatName)),
            ("version", .int(1)),
            ("name", .string(name)),
            ("fusion", .string(fusion.rawValue)),
            ("code", .int(code)),
            ("shared_width", .int(sharedWidth)),
            ("shared_activation", .string(sharedActivation.rawValue)),
        ] + (align != 0 ? [("align", .double(align))] : []) + [
            ("modalities", .object(JSONObject(modalities.map { m in
                (m.name, JSONValue.object(JSONObject([
                    ("input", .string(m.input)), ("scale", .string(m.scale.rawValue)),
                    ("encoder", .array(m.encoder.map(\.json))), ("decoder", .array(m.decoder.map(\.json))),
                    ("loss", .string(m.loss.rawValue)), ("weight", .double(m.weight)),
                ])))
            }))),
        ]))
    }

    /// Parses a model file's JSON; `source` names it in errors.
    public static func parse(_ json: JSONValue, source: String) throws -> ModelSpec {
        func fail(_ place: String, _ message: String) -> TesseraError {
            TesseraError(path: source, stage: .config, code: "model.bad-spec", place.isEmpty ? message : "\(place): \(message)")
        }
        guard let object = json.objectValue else { throw fail("", "a model file is a JSON object") }
        if let format = object["format"], format.stringValue != formatName { throw fail("format", "expected \"\(formatName)\"") }
        let known: Set<String> = ["format", "version", "name", "fusion", "code", "shared_width", "shared_activation", "align", "modalities"]
        for key in object.keys where !known.contains(key) { throw fail(key, "unknown key (known: \(known.sorted().joined(separator: ", ")))") }
        func positive(_ value: JSONValue?, _ place: String, default fallback: Int? = nil, allowZero: Bool = false) throws -> Int {
            guard let value else {
                if let fallback { return fallback }
                throw fail(place, "missing")
            }
            guard let number = value.intValue, number > 0 || (allowZero && number == 0), number <= 1 << 24 else {
                throw fail(place, "expected a \(allowZero ? "non-negative" : "positive") integer up to 16777216, got \(value.serialized())")
            }
            return number
        }
        func activation(_ value: JSONValue?, _ place: String, default fallback: Activation) throws -> Activation {
            guard let value else { return fallback }
            guard let text = value.stringValue, let parsed = Activation(rawValue: text) else {
                throw fail(place, "expected one of \(Activation.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return parsed
        }
        func outputPadding(_ value: JSONValue?, _ place: String) throws -> OutputPadding {
            guard let pair = value?.arrayValue else {
                let both = try positive(value, place, default: 0, allowZero: true)
                return OutputPadding(height: both, width: both)
            }
            guard pair.count == 2 else { throw fail(place, "expected a number or [height, width], got \(pair.count) numbers") }
            return OutputPadding(height: try positive(pair[0], place + "[0]", allowZero: true), width: try positive(pair[1], place + "[1]", allowZero: true))
        }
        func layer(_ value: JSONValue, _ place: String) throws -> LayerSpec {
            if let name = value.stringValue {
                if name == "flatten" { return .flatten }
                if let parsed = Activation(rawValue: name) { return .activation(parsed) }
                throw fail(place, "unknown layer \"\(name)\" (flatten, relu, leaky_relu, sigmoid, tanh, identity, or an object)")
            }
            guard let members = value.objectValue, members.count == 1, let (kind, body) = members.members.first else {
                throw fail(place, "a layer is a name or an object with one key, e.g. {\"linear\": {\"out\": 256}}")
            }
            let here = "\(place).\(kind)"
            func field(_ key: String, default fallback: Int? = nil, allowZero: Bool = false) throws -> Int {
                if let number = body.intValue, ["linear", "upsample"].contains(kind), key == "out" || key == "scale" {
                    return try positive(.int(number), here)
                }
                return try positive(body[key], "\(here).\(key)", default: fallback, allowZero: allowZero)
            }
            switch kind {
            case "conv2d":
                return .conv2d(out: try field("out"), kernel: try field("kernel"), stride: try field("stride", default: 1),
                               padding: try field("padding", default: 0, allowZero: true))
            case "conv_transpose2d":
                return .convTranspose2d(out: try field("out"), kernel: try field("kernel"), stride: try field("stride", default: 1),
                                        padding: try field("padding", default: 0, allowZero: true),
                                        outputPadding: try outputPadding(body["output_padding"], "\(here).output_padding"))
            case "maxpool":
                let kernel = try field("kernel")
                return .maxPool(kernel: kernel, stride: try field("stride", default: kernel))
            case "upsample": return .upsample(scale: try field("scale"))
            case "linear": return .linear(out: try field("out"))
            case "embedding":
                return .embedding(vocabulary: try field("vocabulary", default: 0, allowZero: true), dimension: try field("dim"))
            case "reshape":
                guard let dims = (body["shape"] ?? body).arrayValue, !dims.isEmpty else { throw fail(here, "expected {\"shape\": [..]}") }
                return .reshape(try dims.enumerated().map { try positive($1, "\(here).shape[\($0)]") })
            default:
                throw fail(place, "unknown layer \"\(kind)\" (conv2d, conv_transpose2d, maxpool, upsample, linear, embedding, reshape)")
            }
        }

        guard let modalityObject = object["modalities"]?.objectValue, modalityObject.count > 0 else {
            throw fail("modalities", "expected an object with at least one of image, audio, text")
        }
        var modalities: [ModalitySpec] = []
        for (name, body) in modalityObject.members {
            let place = "modalities.\(name)"
            guard ["image", "audio", "text"].contains(name) else { throw fail(place, "unknown modality (image, audio, text)") }
            guard let members = body.objectValue else { throw fail(place, "expected an object") }
            let knownKeys: Set<String> = ["input", "scale", "encoder", "decoder", "loss", "weight"]
            for key in members.keys where !knownKeys.contains(key) { throw fail("\(place).\(key)", "unknown key") }
            let defaultInput = ["image": "image", "audio": "audio_mel", "text": "text_ids"][name] ?? name
            let input = members["input"]?.stringValue ?? defaultInput
            guard let scale = InputScale(rawValue: members["scale"]?.stringValue ?? "normalized") else {
                throw fail("\(place).scale", "expected normalized or unit")
            }
            guard let encoderList = members["encoder"]?.arrayValue, !encoderList.isEmpty else { throw fail("\(place).encoder", "expected a list of layers") }
            guard let decoderList = members["decoder"]?.arrayValue, !decoderList.isEmpty else { throw fail("\(place).decoder", "expected a list of layers") }
            let encoder = try encoderList.enumerated().map { try layer($1, "\(place).encoder[\($0)]") }
            let decoder = try decoderList.enumerated().map { try layer($1, "\(place).decoder[\($0)]") }
            let defaultLoss: ReconstructionLoss = name == "text" ? .crossEntropy : .mse
            guard let loss = members["loss"].map({ $0.stringValue.flatMap(ReconstructionLoss.init(rawValue:)) }) ?? defaultLoss else {
                throw fail("\(place).loss", "expected mse or cross_entropy")
            }
            let weight = members["weight"].map { $0.doubleValue } ?? 1
            guard let weight, weight.isFinite, weight >= 0 else { throw fail("\(place).weight", "expected a non-negative number") }
            modalities.append(ModalitySpec(name: name, input: input, scale: scale, encoder: encoder, decoder: decoder, loss: loss, weight: weight))
        }
        // A fixed order (image, audio, text) whatever the file's order: parameter names and the concat layout follow it.
        modalities.sort { ["image", "audio", "text"].firstIndex(of: $0.name)! < ["image", "audio", "text"].firstIndex(of: $1.name)! }
        guard let fusion = Fusion(rawValue: object["fusion"]?.stringValue ?? (modalities.count == 1 ? "none" : "concat")) else {
            throw fail("fusion", "expected concat, mean or none")
        }
        if fusion == .none && modalities.count != 1 { throw fail("fusion", "none needs exactly one modality") }
        let code = fusion == .none ? 0 : try positive(object["code"], "code")
        let sharedWidth = fusion == .none ? 0 : try positive(object["shared_width"], "shared_width")
        let align = object["align"].map { $0.doubleValue } ?? 0
        guard let align, align.isFinite, align >= 0 else { throw fail("align", "expected a non-negative number") }
        if align > 0 && fusion == .none { throw fail("align", "needs two or more modalities (fusion concat or mean)") }
        var spec = ModelSpec(name: object["name"]?.stringValue ?? "model", modalities: modalities, fusion: fusion, code: code,
                             sharedWidth: sharedWidth, sharedActivation: try activation(object["shared_activation"], "shared_activation", default: .relu))
        spec.align = align
        return spec
    }

    /// Reads a model file.
    public static func load(path: String) throws -> ModelSpec {
        let bytes = try FilePath.readAll(path, limit: 1 << 24)
        let json: JSONValue
        do { json = try JSONValue.parse(bytes) } catch {
            throw TesseraError(path: path, stage: .parse, code: "model.bad-json", "not valid JSON: \(error)")
        }
        return try parse(json, source: path)
    }
}
