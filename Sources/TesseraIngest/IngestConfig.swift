// The ingest configuration: everything that decides the output bytes (and so goes into the manifest),
// plus `jobs`, which does not.
import TesseraAudio
import TesseraCore
import TesseraImage
import TesseraText

/// A modality of a sample.
public enum Modality: String, Codable, Sendable, CaseIterable, Comparable {
    case image, audio, text

    var ordinal: Int {
        switch self {
        case .image: return 0
        case .audio: return 1
        case .text: return 2
        }
    }

    public static func < (a: Modality, b: Modality) -> Bool { a.ordinal < b.ordinal }

    /// File extensions (lower case, no dot) that belong to each modality.
    public static func of(extension ext: String) -> Modality? {
        switch ext {
        case "png", "jpg", "jpeg", "webp": return .image
        case "wav", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "au", "caf", "w64": return .audio
        case "txt", "ids", "tokens": return .text
        default: return nil
        }
    }
}

/// What to do with a sample when one of its files fails.
public enum OnError: String, Codable, Sendable, CaseIterable {
    /// Leave the whole sample out.
    case skip
    /// Keep the sample without that modality (mask 0), if anything required is left.
    case dropModality = "drop-modality"
}

public struct IngestConfig: Codable, Sendable, Equatable {
    /// Input folders (walked recursively), unless `manifestFile` is given.
    public var inputs: [String] = []
    /// A CSV or JSONL list of samples instead of folders.
    public var manifestFile: String?
    public var allowOutsidePaths = false
    public var labelFromFolder = false
    /// Modalities to keep; nil means every modality found.
    public var modalities: [Modality]?
    /// Modalities a sample must have to be kept.
    public var require: [Modality] = []
    public var image = ImageConfig()
    public var audio = AudioConfig()
    public var text = TextConfig()
    public var valFraction = 0.0
    public var testFraction = 0.0
    public var seed: UInt64 = 0
    public var shardSize = 256
    public var onError: OnError = .skip
    /// Stop when more samples than this fail (a count, or a fraction of the samples when below 1).
    public var maxErrors: Double?
    /// Normalise images in the schema by the dataset's own per-channel statistics (unless a mean and std
    /// were given, or images are stored as float32 already normalised).
    public var imageStatisticsNormalization = true

    public init() {}

    public func validate() throws {
        func fail(_ message: String) -> TesseraError { TesseraError(stage: .config, code: "config.ingest", message) }
        guard !inputs.isEmpty || manifestFile != nil else { throw fail("give input folders or --manifest") }
        guard inputs.isEmpty || manifestFile == nil else { throw fail("give input folders or --manifest, not both") }
        guard valFraction >= 0, testFraction >= 0, valFraction + testFraction < 1 else {
            throw fail("--val-fraction and --test-fraction must be >= 0 and sum to less than 1")
        }
        guard shardSize >= 1 && shardSize <= 1 << 20 else { throw fail("--shard-size must be 1...1048576") }
        if let maxErrors, !(maxErrors >= 0) { throw fail("--max-errors must be >= 0") }
        guard image.resize != .none else { throw fail("ingest batches images: --image-resize none gives varying shapes; use shorter, exact or pad") }
        guard audio.samples > 0, audio.rate > 0 else { throw fail("ingest batches audio: give a fixed --audio-rate and --audio-seconds/--audio-samples") }
        guard audio.channels == .mono else { throw fail("ingest batches audio: --audio-channels keep gives varying shapes; use mono") }
        try image.validate()
        try audio.validate()
        try text.validate()
    }

    /// The configuration as JSON for the manifest (jobs excluded: it never changes the output).
    public var json: JSONValue {
        get throws {
            let bytes = try JSONCoding.encode(self)
            return try JSONValue.parse(bytes)
        }
    }
}
