// Text files into fixed-length id tensors: UTF-8 checking, the tokenizer (or the byte fallback),
// pre-tokenised `.ids`/`.tokens` files, truncation, padding and the true length.
import TesseraCore

/// What produced the ids, for the manifest.
public struct TokenizerDescription: Codable, Sendable, Equatable {
    /// "tokenizer.json" or "byte-fallback".
    public var kind: String
    public var path: String?
    public var sha256: String?
    public var vocabularySize: Int
    public var padID: Int
}

/// The result of encoding one file.
public struct EncodedText: Sendable {
    /// `text_ids` [length] int32.
    public var ids: Tensor
    /// Ids in the tensor before padding (`text_len`).
    public var length: Int
    /// Ids before truncation.
    public var untruncatedLength: Int
    /// The ids as token strings (for `--show`).
    public var tokens: [String]
    /// U+FFFD replacements made for invalid UTF-8.
    public var replacedInvalidBytes: Int
}

/// Encodes text files under one `TextConfig`. Thread-safe.
public final class TextEncoder: Sendable {
    public let config: TextConfig
    private let tokenizer: Tokenizer?
    public let description: TokenizerDescription

    /// The byte fallback's special ids; text bytes are `byte + byteOffset`.
    public static let byteFallbackPad: Int32 = 0, byteFallbackBOS: Int32 = 1, byteFallbackEOS: Int32 = 2, byteOffset: Int32 = 3

    public init(config: TextConfig) throws {
        try config.validate()
        self.config = config
        if let path = config.tokenizer {
            let tokenizer = try Tokenizer(path: path)
            self.tokenizer = tokenizer
            let pad = config.padID ?? TextEncoder.defaultPadID(tokenizer, path: path)
            description = TokenizerDescription(kind: "tokenizer.json", path: path, sha256: tokenizer.contentHash,
                                               vocabularySize: config.vocabularySize ?? tokenizer.vocabularySize, padID: pad)
        } else {
            tokenizer = nil
            description = TokenizerDescription(kind: "byte-fallback", path: nil, sha256: nil,
                                               vocabularySize: config.vocabularySize ?? 256 + Int(TextEncoder.byteOffset),
                                               padID: config.padID ?? Int(TextEncoder.byteFallbackPad))
        }
    }

    /// tokenizer.json's `padding.pad_id`, else the id of a conventional pad token, else 0.
    static func defaultPadID(_ tokenizer: Tokenizer, path: String) -> Int {
        if let bytes = try? FilePath.readAll(path, limit: 1 << 30), let json = try? JSONValue.parse(bytes, maxDepth: 64),
           let id = json["padding"]?["pad_id"]?.intValue {
            return id
        }
        for name in ["<pad>", "[PAD]", "<|padding|>", "<|pad|>"] {
            if let id = tokenizer.id(of: name) { return Int(id) }
        }
        return 0
    }

    /// Encodes the file at `path`: `.ids` and `.tokens` files hold ids, anything else is text.
    public func encode(path: String) throws -> EncodedText {
        do {
            let bytes = try FilePath.readAll(path, limit: config.maxFileBytes)
            let ext = FilePath.pathExtension(path)
            if ext == "ids" || ext == "tokens" { return try encode(ids: try TextEncoder.parseIDs(bytes)) }
            return try encode(utf8: bytes)
        } catch let error as TesseraError {
            throw error.at(path)
        }
    }

    /// Encodes UTF-8 text.
    public func encode(utf8 bytes: [UInt8]) throws -> EncodedText {
        let (scalars, replaced) = try TextEncoder.decodeUTF8(bytes, policy: config.invalidUTF8)
        var ids: [Int32]
        var specialsBefore: [Int32] = [], specialsAfter: [Int32] = []
        if let tokenizer {
            ids = tokenizer.encode(scalars: scalars, addSpecial: false)
            if config.addSpecial, let post = tokenizer.postProcessor, case .wrap(let prefix, let suffix) = post.flattened {
                (specialsBefore, specialsAfter) = (prefix, suffix)
            }
        } else {
            ids = scalars.utf8.map { Int32($0) + TextEncoder.byteOffset }
            if config.addSpecial { (specialsBefore, specialsAfter) = ([TextEncoder.byteFallbackBOS], [TextEncoder.byteFallbackEOS]) }
        }
        var result = try finish(ids, before: specialsBefore, after: specialsAfter)
        result.replacedInvalidBytes = replaced
        return result
    }

    /// Encodes ids that were tokenised elsewhere, checking each against the vocabulary size.
    public func encode(ids: [Int64]) throws -> EncodedText {
        let limit = description.vocabularySize
        for (i, id) in ids.enumerated() where id < 0 || id >= Int64(limit) {
            throw TesseraError(stage: .tokenize, code: "text.id-out-of-range",
                               "id \(id) at position \(i) is outside the vocabulary of \(limit) (--text-vocab-size)")
        }
        return try finish(ids.map { Int32($0) }, before: [], after: [])
    }

    /// Truncation leaves room for the special tokens (as the reference truncates before post-processing),
    /// then padding fills to the length.
    private func finish(_ content: [Int32], before: [Int32], after: [Int32]) throws -> EncodedText {
        let room = max(0, config.length - before.count - after.count)
        var kept = content
        if kept.count > room {
            kept = config.truncate == .right ? Array(kept.prefix(room)) : Array(kept.suffix(room))
        }
        var ids = Array((before + kept + after).prefix(config.length))
        let length = ids.count
        ids += repeatElement(Int32(description.padID), count: config.length - length)
        let tokens = ids.prefix(length).map { token(of: $0) }
        return EncodedText(ids: try Tensor(shape: [config.length], scalars: ids), length: length,
                           untruncatedLength: content.count + before.count + after.count, tokens: tokens, replacedInvalidBytes: 0)
    }

    /// The string of an id, for display.
    public func token(of id: Int32) -> String {
        if let tokenizer { return tokenizer.token(of: id) ?? "<\(id)>" }
        switch id {
        case TextEncoder.byteFallbackPad: return "<pad>"
        case TextEncoder.byteFallbackBOS: return "<s>"
        case TextEncoder.byteFallbackEOS: return "</s>"
        default:
            let byte = Int(id - TextEncoder.byteOffset)
            if byte >= 0x20 && byte < 0x7F, let s = Unicode.Scalar(byte) { return String(Character(s)) }
            let hex = String(byte, radix: 16, uppercase: true)
            return "<0x" + (byte < 16 ? "0" : "") + hex + ">"
        }
    }

    /// UTF-8 to scalars; invalid sequences are an error naming the byte offset, or U+FFFD each. Text that
    /// starts with a UTF-16 or UTF-32 byte-order mark is an error under either policy: replacing its bytes
    /// would tokenize noise.
    static func decodeUTF8(_ bytes: [UInt8], policy: TextConfig.InvalidUTF8) throws -> (Scalars, Int) {
        if bytes.starts(with: [0xFF, 0xFE]) || bytes.starts(with: [0xFE, 0xFF]) || bytes.starts(with: [0, 0, 0xFE, 0xFF]) {
            let mark = bytes.prefix(bytes[0] == 0 ? 4 : 2).map { ($0 < 16 ? "0" : "") + String($0, radix: 16, uppercase: true) }
            throw TesseraError(stage: .decode, code: "text.not-utf8",
                               "UTF-16 or UTF-32 text (byte-order mark \(mark.joined(separator: " "))); Tessera reads UTF-8: convert it, e.g. iconv -f UTF-16 -t UTF-8")
        }
        var scalars = Scalars()
        scalars.reserveCapacity(bytes.count)
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        var offset = 0
        var replaced = 0
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                scalars.append(scalar)
                offset += UTF8.width(scalar)
            case .emptyInput:
                break loop
            case .error:
                if policy == .error {
                    throw TesseraError(stage: .decode, code: "text.invalid-utf8",
                                       "invalid UTF-8 near byte \(offset) (--invalid-utf8 replace turns it into U+FFFD)")
                }
                scalars.append("\u{FFFD}")
                replaced += 1
                offset += 1
            }
        }
        return (scalars, replaced)
    }

    /// Whitespace-separated integers, or a JSON array of integers.
    static func parseIDs(_ bytes: [UInt8]) throws -> [Int64] {
        let trimmed = bytes.drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        if trimmed.first == UInt8(ascii: "[") {
            let json: JSONValue
            do { json = try JSONValue.parse(bytes) } catch {
                throw TesseraError(stage: .parse, code: "text.bad-ids", "not a JSON array of ids: \(error)")
            }
            guard let items = json.arrayValue else { throw TesseraError(stage: .parse, code: "text.bad-ids", "not a JSON array of ids") }
            return try items.enumerated().map { i, item in
                guard let id = item.int64Value else {
                    throw TesseraError(stage: .parse, code: "text.bad-ids", "item \(i) is \(item.kindName), not an integer id")
                }
                return id
            }
        }
        var ids: [Int64] = []
        for (i, word) in bytes.split(whereSeparator: { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }).enumerated() {
            guard let id = Int64(String(decoding: word, as: UTF8.self)) else {
                throw TesseraError(stage: .parse, code: "text.bad-ids",
                                   "item \(i) \"\(String(decoding: word.prefix(20), as: UTF8.self))\" is not an integer id")
            }
            ids.append(id)
        }
        return ids
    }
}

extension PostProcessor {
    /// The ids added before and after a sequence, with nested sequences folded.
    var flattened: PostProcessor {
        switch self {
        case .wrap: return self
        case .byteLevel: return .wrap(prefix: [], suffix: [])
        case .sequence(let items):
            var prefix: [Int32] = [], suffix: [Int32] = []
            for item in items {
                if case .wrap(let p, let s) = item.flattened {
                    prefix = p + prefix
                    suffix += s
                }
            }
            return .wrap(prefix: prefix, suffix: suffix)
        }
    }
}
