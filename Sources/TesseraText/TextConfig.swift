// The text transform, defined once: `tessera decode`, `tessera ingest` and the manifest's schema use it.
import TesseraCore

/// How a text (or pre-tokenised ids) file becomes `text_ids` [length] and `text_len`.
public struct TextConfig: Codable, Sendable, Equatable {
    public enum Truncation: String, Codable, Sendable, CaseIterable {
        /// Keep the start.
        case right
        /// Keep the end.
        case left
    }

    public enum InvalidUTF8: String, Codable, Sendable, CaseIterable {
        /// A clear error naming the byte offset.
        case error
        /// Each invalid sequence becomes U+FFFD.
        case replace
    }

    /// A Hugging Face tokenizer.json; nil means the byte-level fallback.
    public var tokenizer: String?
    /// Output length: ids are truncated or padded to it.
    public var length: Int = 32
    public var truncate: Truncation = .right
    /// Add the post-processor's special tokens (BOS/EOS, [CLS]/[SEP], ...); the byte fallback adds BOS/EOS.
    public var addSpecial: Bool = false
    /// Padding id; nil means the tokenizer's own (`padding.pad_id`, or the id of <pad>/[PAD]), else 0.
    public var padID: Int?
    public var invalidUTF8: InvalidUTF8 = .error
    /// Largest id a pre-tokenised file may hold plus one; nil means the tokenizer's vocabulary size.
    public var vocabularySize: Int?
    /// Refuse larger text files.
    public var maxFileBytes: Int = 16 << 20

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TextConfig()
        tokenizer = try c.decodeIfPresent(String.self, forKey: .tokenizer)
        length = try c.decodeIfPresent(Int.self, forKey: .length) ?? d.length
        truncate = try c.decodeIfPresent(Truncation.self, forKey: .truncate) ?? d.truncate
        addSpecial = try c.decodeIfPresent(Bool.self, forKey: .addSpecial) ?? d.addSpecial
        padID = try c.decodeIfPresent(Int.self, forKey: .padID)
        invalidUTF8 = try c.decodeIfPresent(InvalidUTF8.self, forKey: .invalidUTF8) ?? d.invalidUTF8
        vocabularySize = try c.decodeIfPresent(Int.self, forKey: .vocabularySize)
        maxFileBytes = try c.decodeIfPresent(Int.self, forKey: .maxFileBytes) ?? d.maxFileBytes
    }

    public func validate() throws {
        func fail(_ message: String) -> TesseraError { TesseraError(stage: .config, code: "config.text", message) }
        guard length >= 1 && length <= 1 << 20 else { throw fail("--text-length must be 1...1048576") }
        if let padID, padID < 0 || padID > Int(Int32.max) { throw fail("--pad-id must be a non-negative 32-bit id") }
        if let vocabularySize, vocabularySize < 1 { throw fail("--text-vocab-size must be positive") }
        // ICU's normalization counts in Int32 UTF-16 units, and an output may be several times its input.
        guard maxFileBytes > 0 && maxFileBytes <= 1 << 28 else { throw fail("the text size limit must be 1 byte to 256 MiB") }
    }
}
