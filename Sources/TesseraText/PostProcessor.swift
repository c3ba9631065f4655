// Post-processors of tokenizer.json: the special tokens added around a sequence (single sequences only).
import TesseraCore

indirect enum PostProcessor: Sendable {
    /// Ids before and after the sequence.
    case wrap(prefix: [Int32], suffix: [Int32])
    /// Offsets only; ids unchanged.
    case byteLevel
    case sequence([PostProcessor])

    init(json: JSONValue) throws {
        guard let type = json["type"]?.stringValue else { throw TokenizerFileError.malformed("post_processor without a \"type\"") }
        func pair(_ key: String) throws -> Int32 {
            guard let item = json[key]?.arrayValue, item.count == 2, let id = item[1].intValue else {
                throw TokenizerFileError.malformed("\(type) needs \"\(key)\": [token, id]")
            }
            return Int32(id)
        }
        switch type {
        case "BertProcessing", "RobertaProcessing":
            self = .wrap(prefix: [try pair("cls")], suffix: [try pair("sep")])
        case "ByteLevel":
            self = .byteLevel
        case "TemplateProcessing":
            guard let single = json["single"]?.arrayValue else { throw TokenizerFileError.malformed("TemplateProcessing without \"single\"") }
            let specials = json["special_tokens"]?.objectValue ?? JSONObject()
            var prefix: [Int32] = [], suffix: [Int32] = []
            var seenSequence = false
            for item in single {
                if item["Sequence"] != nil {
                    seenSequence = true
                    continue
                }
                guard let name = item["SpecialToken"]?["id"]?.stringValue else {
                    throw TokenizerFileError.malformed("template piece is neither Sequence nor SpecialToken")
                }
                guard let ids = specials[name]?["ids"]?.arrayValue?.compactMap({ $0.intValue }) else {
                    throw TokenizerFileError.malformed("template special token \(name) has no ids")
                }
                if seenSequence { suffix += ids.map { Int32($0) } } else { prefix += ids.map { Int32($0) } }
            }
            self = .wrap(prefix: prefix, suffix: suffix)
        case "Sequence":
            guard let items = json["processors"]?.arrayValue else { throw TokenizerFileError.malformed("Sequence without \"processors\"") }
            self = .sequence(try items.map(PostProcessor.init(json:)))
        default:
            throw TokenizerFileError.unsupported("post_processor", type)
        }
    }

    func apply(_ ids: [Int32]) -> [Int32] {
        switch self {
        case .wrap(let prefix, let suffix): return prefix + ids + suffix
        case .byteLevel: return ids
        case .sequence(let items): return items.reduce(ids) { $1.apply($0) }
        }
    }
}
