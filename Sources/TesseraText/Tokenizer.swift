// A Hugging Face tokenizer.json, loaded and applied: added tokens, normalizer, pre-tokenizer, model,
// post-processor, in the order and with the semantics of the `tokenizers` library's `encode`.
import TesseraCore

/// Why a tokenizer file cannot be used.
enum TokenizerFileError: Error, CustomStringConvertible {
    case malformed(String)
    case unsupported(String, String)

    var description: String {
        switch self {
        case .malformed(let why): return "malformed tokenizer.json: \(why)"
        case .unsupported(let kind, let type):
            return "unsupported \(kind) type \"\(type)\" in tokenizer.json (Tessera implements the types listed in docs/TEXT.md)"
        }
    }

    func asTesseraError(_ path: String?) -> TesseraError {
        switch self {
        case .malformed: return TesseraError(path: path, stage: .parse, code: "tokenizer.malformed", description)
        case .unsupported: return TesseraError(path: path, stage: .parse, code: "tokenizer.unsupported", description)
        }
    }
}

/// Turns text into token ids. Thread-safe: the model caches are behind locks.
public final class Tokenizer: @unchecked Sendable {
    // @unchecked: immutable after init; the models' caches are Mutex-protected.
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let model: any TokenModel
    let postProcessor: PostProcessor?
    let addedTokens: [AddedToken]
    private let rawMatcher: AddedTokenMatcher
    private let normalizedMatcher: AddedTokenMatcher
    private let addedByID: [Int32: String]
    /// Where the tokenizer came from, for the manifest.
    public let source: String
    /// SHA-256 of the tokenizer file's bytes.
    public let contentHash: String

    /// Loads a tokenizer.json file. Unknown component types are an error naming the type.
    public convenience init(path: String) throws {
        let bytes = try FilePath.readAll(path, limit: 1 << 30)
        try self.init(json: bytes, source: path)
    }

    /// Parses tokenizer.json bytes.
    public init(json bytes: [UInt8], source: String) throws {
        self.source = source
        contentHash = SHA256Digest.hex(bytes)
        do {
            let json: JSONValue
            do { json = try JSONValue.parse(bytes, maxDepth: 64) } catch {
                throw TokenizerFileError.malformed("not valid JSON: \(error)")
            }
            guard json.objectValue != nil else { throw TokenizerFileError.malformed("not a JSON object") }
            normalizer = try json["normalizer"].flatMap { $0.isNull ? nil : try Normalizer(json: $0) }
            preTokenizer = try json["pre_tokenizer"].flatMap { $0.isNull ? nil : try PreTokenizer(json: $0) }
            postProcessor = try json["post_processor"].flatMap { $0.isNull ? nil : try PostProcessor(json: $0) }
            guard let modelJSON = json["model"], !modelJSON.isNull else { throw TokenizerFileError.malformed("no \"model\"") }
            let type = modelJSON["type"]?.stringValue ?? (modelJSON["merges"] != nil ? "BPE" : "")
            switch type {
            case "BPE": model = try BPEModel(json: modelJSON)
            case "WordPiece": model = try WordPieceModel(json: modelJSON)
            case "Unigram": model = try UnigramModel(json: modelJSON)
            case "WordLevel": model = try WordLevelModel(json: modelJSON)
            default: throw TokenizerFileError.unsupported("model", type.isEmpty ? "(none)" : type)
            }
            var added: [AddedToken] = []
            for item in json["added_tokens"]?.arrayValue ?? [] {
                guard let content = item["content"]?.stringValue, let id = item["id"]?.intValue else {
                    throw TokenizerFileError.malformed("added token without content and id")
                }
                let special = item["special"]?.boolValue ?? false
                added.append(AddedToken(content: Scalars(content), id: Int32(id), singleWord: item["single_word"]?.boolValue ?? false,
                                        lstrip: item["lstrip"]?.boolValue ?? false, rstrip: item["rstrip"]?.boolValue ?? false,
                                        normalized: item["normalized"]?.boolValue ?? !special, special: special))
            }
            addedTokens = added
            // The reference matches special tokens first, then the others, in file order within each kind.
            let ordered = added.filter(\.special) + added.filter { !$0.special }
            rawMatcher = AddedTokenMatcher(ordered.filter { !$0.normalized }, normalizer: nil)
            normalizedMatcher = AddedTokenMatcher(ordered.filter(\.normalized), normalizer: normalizer)
            addedByID = Dictionary(added.map { ($0.id, $0.content.string) }, uniquingKeysWith: { _, last in last })
        } catch let error as TokenizerFileError {
            throw error.asTesseraError(source)
        }
    }

    /// The number of ids the tokenizer can produce (model vocabulary plus added tokens beyond it).
    public var vocabularySize: Int {
        max(model.vocabularySize, (addedTokens.map { Int($0.id) }.max() ?? -1) + 1)
    }

    /// The id of a token string (added tokens first), if any.
    public func id(of token: String) -> Int32? {
        if let added = addedTokens.first(where: { $0.content.string == token }) { return added.id }
        return model.id(of: Scalars(token))
    }

    /// The string of an id, for display.
    public func token(of id: Int32) -> String? { addedByID[id] ?? model.token(of: id) }

    /// `Tokenizer.encode(text, add_special_tokens=addSpecial).ids`.
    public func encode(_ text: String, addSpecial: Bool = false) -> [Int32] {
        encode(scalars: Scalars(text), addSpecial: addSpecial)
    }

    func encode(scalars text: Scalars, addSpecial: Bool) -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(text.count / 3)
        for segment in rawMatcher.split(Piece(text: text, atStart: true)) {
            switch segment {
            case .token(let id): ids.append(id)
            case .text(let raw):
                let piece = normalizer?.apply(raw) ?? raw
                for inner in normalizedMatcher.split(piece) {
                    switch inner {
                    case .token(let id): ids.append(id)
                    case .text(let normalized):
                        let pieces = preTokenizer?.apply([normalized]) ?? [normalized]
                        for p in pieces { ids += model.tokenize(p.text) }
                    }
                }
            }
        }
        if addSpecial, let postProcessor { ids = postProcessor.apply(ids) }
        return ids
    }
}
