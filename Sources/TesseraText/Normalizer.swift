// Normalizers of tokenizer.json, applied as the `tokenizers` library applies them.
internal import CTesseraUnicode
import Foundation
import TesseraCore

/// A text normalizer: one of the `normalizer` types of tokenizer.json.
indirect enum Normalizer: Sendable {
    case nfc, nfd, nfkc, nfkd
    case lowercase
    case strip(left: Bool, right: Bool)
    case stripAccents
    case replace(pattern: TextPattern, content: Scalars)
    case prepend(Scalars)
    case bert(cleanText: Bool, chineseChars: Bool, stripAccents: Bool, lowercase: Bool)
    case precompiled(PrecompiledCharsmap)
    case nmt
    case byteLevel
    case sequence([Normalizer])

    /// Builds a normalizer from its JSON; unknown types are a clear error naming the type.
    init(json: JSONValue) throws {
        guard let type = json["type"]?.stringValue else { throw TokenizerFileError.malformed("normalizer without a \"type\"") }
        switch type {
        case "NFC": self = .nfc
        case "NFD": self = .nfd
        case "NFKC": self = .nfkc
        case "NFKD": self = .nfkd
        case "Lowercase": self = .lowercase
        case "Strip":
            self = .strip(left: json["strip_left"]?.boolValue ?? true, right: json["strip_right"]?.boolValue ?? true)
        case "StripAccents": self = .stripAccents
        case "Replace":
            guard let content = json["content"]?.stringValue, let pattern = json["pattern"] else {
                throw TokenizerFileError.malformed("Replace normalizer needs a pattern and content")
            }
            self = .replace(pattern: try TextPattern(json: pattern), content: Scalars(content))
        case "Prepend":
            guard let prepend = json["prepend"]?.stringValue else { throw TokenizerFileError.malformed("Prepend needs \"prepend\"") }
            self = .prepend(Scalars(prepend))
        case "BertNormalizer":
            let lowercase = json["lowercase"]?.boolValue ?? true
            let strip = json["strip_accents"]?.boolValue ?? lowercase
            self = .bert(cleanText: json["clean_text"]?.boolValue ?? true, chineseChars: json["handle_chinese_chars"]?.boolValue ?? true,
                         stripAccents: strip, lowercase: lowercase)
        case "Precompiled":
            guard let charsmap = json["precompiled_charsmap"]?.stringValue else {
                throw TokenizerFileError.malformed("Precompiled normalizer without a \"precompiled_charsmap\"")
            }
            self = .precompiled(try PrecompiledCharsmap(base64: charsmap))
        case "Nmt": self = .nmt
        case "ByteLevel": self = .byteLevel
        case "Sequence":
            guard let items = json["normalizers"]?.arrayValue else { throw TokenizerFileError.malformed("Sequence normalizer without \"normalizers\"") }
            self = .sequence(try items.map(Normalizer.init(json:)))
        default:
            throw TokenizerFileError.unsupported("normalizer", type)
        }
    }

    /// Normalizes a piece, keeping track of how many of its leading scalars come from the first character
    /// of the original input (Metaspace's "first" scheme depends on it). Every normalizer here acts on
    /// characters locally, so that count is the length of the normalized prefix (exact for all but a
    /// composition across the prefix's end under NFC/NFKC, which keeps the composed character in it).
    func apply(_ piece: Piece) -> Piece {
        let prefix = piece.originZero > 0 ? apply(Array(piece.text[0..<min(piece.originZero, piece.text.count)])).count : 0
        return Piece(text: apply(piece.text), originZero: prefix)
    }

    func apply(_ text: Scalars) -> Scalars {
        switch self {
        case .nfc: return Normalizer.unicode(text, TESSERA_NFC)
        case .nfd: return Normalizer.unicode(text, TESSERA_NFD)
        case .nfkc: return Normalizer.unicode(text, TESSERA_NFKC)
        case .nfkd: return Normalizer.unicode(text, TESSERA_NFKD)
        case .lowercase: return Normalizer.lowercased(text)
        case .strip(let left, let right):
            var start = 0, end = text.count
            if left { while start < end && text[start].isWhite { start += 1 } }
            if right { while end > start && text[end - 1].isWhite { end -= 1 } }
            return Array(text[start..<end])
        case .stripAccents:
            return text.filter { !$0.isCombiningMark }
        case .replace(let pattern, let content):
            let matches = pattern.matches(in: text)
            guard !matches.isEmpty else { return text }
            var out = Scalars()
            out.reserveCapacity(text.count)
            var last = 0
            for m in matches {
                out += text[last..<m.lowerBound]
                out += content
                last = m.upperBound
            }
            out += text[last...]
            return out
        case .prepend(let prefix):
            return text.isEmpty ? text : prefix + text
        case .bert(let cleanText, let chineseChars, let stripAccents, let lowercase):
            var out = text
            if cleanText {
                out = out.compactMap { c in
                    if c.value == 0 || c.value == 0xFFFD { return nil }
                    let isTabLike = c == "\t" || c == "\n" || c == "\r"
                    if !isTabLike && c.isOtherCategory { return nil }
                    return isTabLike || c.isWhite ? " " : c
                }
            }
            if chineseChars {
                var spaced = Scalars()
                spaced.reserveCapacity(out.count)
                for c in out {
                    if c.isCJKIdeograph { spaced += [" ", c, " "] } else { spaced.append(c) }
                }
                out = spaced
            }
            if stripAccents {
                out = Normalizer.unicode(out, TESSERA_NFD).filter { !$0.isNonspacingMark }
            }
            if lowercase { out = Normalizer.lowercased(out) }
            return out
        case .precompiled(let charsmap):
            return charsmap.apply(text)
        case .nmt:
            // SentencePiece's NMT rules: ASCII and C1 control characters removed, other spaces made " ".
            return text.compactMap { c in
                switch c.value {
                case 0x01...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x8F, 0x9F: return nil
                case 0x09, 0x0A, 0x0C, 0x0D, 0x1680, 0x200B...0x200F, 0x2028, 0x2029, 0x2581, 0xFEFF, 0xFFFD: return " "
                default: return c
                }
            }
        case .byteLevel:
            return ByteLevelAlphabet.encode(text)
        case .sequence(let items):
            return items.reduce(text) { $1.apply($0) }
        }
    }

    /// Rust's `char::to_lowercase` applied per scalar (full mappings such as İ -> i̇, no final-sigma rule).
    static func lowercased(_ text: Scalars) -> Scalars {
        var out = Scalars()
        out.reserveCapacity(text.count)
        for c in text {
            if c.value < 0x80 {
                out.append(c.value >= 0x41 && c.value <= 0x5A ? Unicode.Scalar(UInt8(c.value + 32)) : c)
            } else {
                out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return out
    }

    /// Unicode normalization form `form` (TESSERA_NFC ...) through ICU. Foundation's own composed across and
    /// reordered marks only within the input's grapheme clusters, so "ｶﾞ" stayed カ + U+3099 (not ガ), a
    /// Hangul LV syllable kept a separate trailing jamo, and marks that two characters decompose into were left
    /// out of canonical order (68 of 20,000 random strings of marks, kana and jamo differed from Python's NFKD).
    static func unicode(_ text: Scalars, _ form: Int) -> Scalars {
        if text.allSatisfy({ $0.value < 0x80 }) { return text }
        // ICU counts in Int32; text files are at most 256 MiB (TextConfig), so only a caller of the library
        // with a larger string gets here, and gets its text back as it is rather than a trap.
        guard text.count <= 1 << 28 else { return text }
        var source: [UInt16] = []
        source.reserveCapacity(text.count + 8)
        for c in text {
            if c.value < 0x10000 {
                source.append(UInt16(c.value))
            } else {
                let v = c.value - 0x10000
                source.append(UInt16(0xD800 + (v >> 10)))
                source.append(UInt16(0xDC00 + (v & 0x3FF)))
            }
        }
        // Normalization can lengthen text (NFKD of U+FDFA is 18 characters): ICU says how much room it needs.
        var capacity = source.count * 2 + 16
        while true {
            var out = [UInt16](repeating: 0, count: capacity)
            let written = Int(tessera_normalize_utf16(Int32(form), source, Int32(source.count), &out, Int32(capacity)))
            // ICU fails only without memory; valid scalars are always valid UTF-16.
            if written < 0 { return text }
            if written > capacity {
                capacity = written
                continue
            }
            return Scalars(String(decoding: out[0..<written], as: UTF16.self).unicodeScalars)
        }
    }
}
