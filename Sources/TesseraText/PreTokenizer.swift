// Pre-tokenizers of tokenizer.json: how normalized text is cut into the pieces the model sees.
import TesseraCore

/// A piece of text on its way to the model.
struct Piece {
    var text: Scalars
    /// How many leading scalars come from the original input's first character: the piece "starts at
    /// offset 0 of the original" when this is positive (Metaspace's "first" scheme). A normalizer can turn
    /// that one character into several ("½" becomes "1⁄2" under NFKD), and each split of them starts there.
    var originZero: Int

    init(text: Scalars, originZero: Int) {
        self.text = text
        self.originZero = originZero
    }

    /// A piece that is, or is not, the start of the original input.
    init(text: Scalars, atStart: Bool) {
        self.init(text: text, originZero: atStart && !text.isEmpty ? 1 : 0)
    }

    var atStart: Bool { originZero > 0 }

    /// The sub-piece `range`, keeping its share of the origin-zero prefix.
    func slice(_ range: Range<Int>) -> Piece {
        Piece(text: Array(text[range]), originZero: max(0, min(originZero, range.upperBound) - range.lowerBound))
    }
}

/// How a split treats the delimiters it finds (`SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed, isolated, mergedWithPrevious = "merged_with_previous", mergedWithNext = "merged_with_next", contiguous

    init(json: JSONValue?) throws {
        let name = json?.stringValue ?? "isolated"
        guard let behavior = SplitBehavior(rawValue: name.lowercased()) ?? SplitBehavior(camel: name) else {
            throw TokenizerFileError.malformed("unknown split behavior \(name)")
        }
        self = behavior
    }

    private init?(camel: String) {
        switch camel {
        case "Removed": self = .removed
        case "Isolated": self = .isolated
        case "MergedWithPrevious": self = .mergedWithPrevious
        case "MergedWithNext": self = .mergedWithNext
        case "Contiguous": self = .contiguous
        default: return nil
        }
    }
}

/// Splits `piece` at `matches` (sorted, non-overlapping scalar ranges) as `NormalizedString::split`
/// does; empty pieces are dropped.
func splitPiece(_ piece: Piece, matches: [Range<Int>], behavior: SplitBehavior, invert: Bool = false) -> [Piece] {
    let text = piece.text
    // Every scalar of the piece lands in exactly one segment, flagged as a match or not.
    var segments: [(range: Range<Int>, isMatch: Bool)] = []
    var last = 0
    for m in matches {
        if last < m.lowerBound { segments.append((last..<m.lowerBound, invert)) }
        segments.append((m, !invert))
        last = m.upperBound
    }
    if last < text.count || segments.isEmpty { segments.append((last..<text.count, invert)) }
    var kept: [Range<Int>] = []
    switch behavior {
    case .removed:
        kept = segments.filter { !$0.isMatch }.map(\.range)
    case .isolated:
        kept = segments.map(\.range)
    case .mergedWithPrevious:
        var previousMatch = false
        for s in segments {
            if s.isMatch && !previousMatch, let end = kept.indices.last {
                kept[end] = kept[end].lowerBound..<s.range.upperBound
            } else {
                kept.append(s.range)
            }
            previousMatch = s.isMatch
        }
    case .mergedWithNext:
        var previousMatch = false
        var reversed: [Range<Int>] = []
        for s in segments.reversed() {
            if s.isMatch && !previousMatch, let end = reversed.indices.last {
                reversed[end] = s.range.lowerBound..<reversed[end].upperBound
            } else {
                reversed.append(s.range)
            }
            previousMatch = s.isMatch
        }
        kept = reversed.reversed()
    case .contiguous:
        var previousMatch = false
        for (i, s) in segments.enumerated() {
            if i > 0 && s.isMatch == previousMatch, let end = kept.indices.last {
                kept[end] = kept[end].lowerBound..<s.range.upperBound
            } else {
                kept.append(s.range)
            }
            previousMatch = s.isMatch
        }
    }
    return kept.compactMap { range in range.isEmpty ? nil : piece.slice(range) }
}

/// Ranges of maximal runs... of single scalars satisfying `predicate`: each matching scalar is its own match,
/// as the reference's `char` patterns are.
func scalarMatches(_ text: Scalars, _ predicate: (Unicode.Scalar) -> Bool) -> [Range<Int>] {
    var found: [Range<Int>] = []
    for (i, c) in text.enumerated() where predicate(c) { found.append(i..<(i + 1)) }
    return found
}

/// A pre-tokenizer: one of the `pre_tokenizer` types of tokenizer.json.
indirect enum PreTokenizer: Sendable {
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case whitespace
    case whitespaceSplit
    case metaspace(replacement: Unicode.Scalar, prepend: PrependScheme, split: Bool)
    case punctuation(SplitBehavior)
    case digits(individual: Bool)
    case split(pattern: TextPattern, behavior: SplitBehavior, invert: Bool)
    case bert
    case charDelimiter(Unicode.Scalar)
    case fixedLength(Int)
    case unicodeScripts
    case sequence([PreTokenizer])

    enum PrependScheme: String, Sendable { case always, first, never }

    init(json: JSONValue) throws {
        guard let type = json["type"]?.stringValue else { throw TokenizerFileError.malformed("pre_tokenizer without a \"type\"") }
        switch type {
        case "ByteLevel":
            self = .byteLevel(addPrefixSpace: json["add_prefix_space"]?.boolValue ?? true, useRegex: json["use_regex"]?.boolValue ?? true)
        case "Whitespace": self = .whitespace
        case "WhitespaceSplit": self = .whitespaceSplit
        case "Metaspace":
            guard let replacement = json["replacement"]?.stringValue?.unicodeScalars, replacement.count == 1, let scalar = replacement.first else {
                throw TokenizerFileError.malformed("Metaspace replacement must be one character")
            }
            var scheme = PrependScheme.always
            if let name = json["prepend_scheme"]?.stringValue {
                guard let parsed = PrependScheme(rawValue: name) else { throw TokenizerFileError.malformed("unknown prepend_scheme \(name)") }
                scheme = parsed
            } else if json["add_prefix_space"]?.boolValue == false {
                scheme = .never
            }
            self = .metaspace(replacement: scalar, prepend: scheme, split: json["split"]?.boolValue ?? true)
        case "Punctuation": self = .punctuation(try SplitBehavior(json: json["behavior"]))
        case "Digits": self = .digits(individual: json["individual_digits"]?.boolValue ?? false)
        case "Split":
            guard let pattern = json["pattern"] else { throw TokenizerFileError.malformed("Split without a pattern") }
            self = .split(pattern: try TextPattern(json: pattern), behavior: try SplitBehavior(json: json["behavior"]),
                          invert: json["invert"]?.boolValue ?? false)
        case "BertPreTokenizer": self = .bert
        case "CharDelimiterSplit":
            guard let delimiter = json["delimiter"]?.stringValue?.unicodeScalars, delimiter.count == 1, let scalar = delimiter.first else {
                throw TokenizerFileError.malformed("CharDelimiterSplit delimiter must be one character")
            }
            self = .charDelimiter(scalar)
        case "UnicodeScripts": self = .unicodeScripts
        case "FixedLength":
            let length = json["length"]?.intValue ?? 5
            // tokenizers panics on 0 (chunks of no characters).
            guard length > 0 else { throw TokenizerFileError.malformed("FixedLength length must be at least 1, not \(length)") }
            self = .fixedLength(length)
        case "Sequence":
            guard let items = json["pretokenizers"]?.arrayValue else { throw TokenizerFileError.malformed("Sequence without \"pretokenizers\"") }
            self = .sequence(try items.map(PreTokenizer.init(json:)))
        default:
            throw TokenizerFileError.unsupported("pre_tokenizer", type)
        }
    }

    /// Whether the pieces are byte-level text (model vocabulary in the byte-to-unicode alphabet).
    var isByteLevel: Bool {
        switch self {
        case .byteLevel: return true
        case .sequence(let items): return items.contains { $0.isByteLevel }
        default: return false
        }
    }

    func apply(_ pieces: [Piece]) -> [Piece] {
        switch self {
        case .sequence(let items):
            return items.reduce(pieces) { $1.apply($0) }
        default:
            var out: [Piece] = []
            out.reserveCapacity(pieces.count * 2)
            for piece in pieces { out += apply(piece) }
            return out
        }
    }

    private func apply(_ piece: Piece) -> [Piece] {
        switch self {
        case .byteLevel(let addPrefixSpace, let useRegex):
            var p = piece
            if addPrefixSpace && p.text.first != " " {
                p.text.insert(" ", at: 0)
                if p.originZero > 0 { p.originZero += 1 }
            }
            let parts = useRegex ? splitPiece(p, matches: ByteLevelSplitter.matches(p.text), behavior: .isolated) : (p.text.isEmpty ? [] : [p])
            return parts.map { part in
                Piece(text: ByteLevelAlphabet.encode(part.text), originZero: ByteLevelAlphabet.encode(Array(part.text.prefix(part.originZero))).count)
            }
        case .whitespace:
            return splitPiece(piece, matches: WordSplitter.matches(piece.text), behavior: .removed, invert: true)
        case .whitespaceSplit:
            return splitPiece(piece, matches: scalarMatches(piece.text) { $0.isWhite }, behavior: .removed)
        case .metaspace(let replacement, let scheme, let splitting):
            var p = piece
            p.text = p.text.map { $0 == " " ? replacement : $0 }
            switch scheme {
            case .always:
                if p.text.first != replacement {
                    p.text.insert(replacement, at: 0)
                    if p.originZero > 0 { p.originZero += 1 }
                }
            case .first:
                if p.text.first != replacement && p.atStart {
                    p.text.insert(replacement, at: 0)
                    p.originZero += 1
                }
            case .never: break
            }
            if !splitting { return p.text.isEmpty ? [] : [p] }
            return splitPiece(p, matches: scalarMatches(p.text) { $0 == replacement }, behavior: .mergedWithNext)
        case .punctuation(let behavior):
            return splitPiece(piece, matches: scalarMatches(piece.text) { $0.isPunctuationForSplit }, behavior: behavior)
        case .digits(let individual):
            return splitPiece(piece, matches: scalarMatches(piece.text) { $0.isNumber }, behavior: individual ? .isolated : .contiguous)
        case .split(let pattern, let behavior, let invert):
            return splitPiece(piece, matches: pattern.matches(in: piece.text), behavior: behavior, invert: invert)
        case .bert:
            let words = splitPiece(piece, matches: scalarMatches(piece.text) { $0.isWhite }, behavior: .removed)
            return words.flatMap { splitPiece($0, matches: scalarMatches($0.text) { $0.isPunctuationForSplit }, behavior: .isolated) }
        case .charDelimiter(let delimiter):
            return splitPiece(piece, matches: scalarMatches(piece.text) { $0 == delimiter }, behavior: .removed)
        case .fixedLength(let length):
            return stride(from: 0, to: piece.text.count, by: length).map { piece.slice($0..<min(piece.text.count, $0 + length)) }
        case .unicodeScripts:
            let starts = UnicodeScripts.pieceStarts(piece.text)
            return starts.indices.map { i in piece.slice(starts[i]..<(i + 1 < starts.count ? starts[i + 1] : piece.text.count)) }
        case .sequence:
            return apply([piece])
        }
    }
}

/// The GPT-2 pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` as a
/// hand-written scanner (the general regex engine is an order of magnitude slower on this hot path).
enum ByteLevelSplitter {
    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    static func matches(_ t: Scalars) -> [Range<Int>] {
        var found: [Range<Int>] = []
        found.reserveCapacity(t.count / 3 + 1)
        let n = t.count
        var i = 0
        @inline(__always) func isOther(_ c: Unicode.Scalar) -> Bool { !c.isWhite && !c.isLetter && !c.isNumber }
        while i < n {
            let c = t[i]
            // Contractions: 's 't 're 've 'm 'll 'd (case-sensitive).
            if c == "'" && i + 1 < n {
                let a = t[i + 1]
                if a == "s" || a == "t" || a == "m" || a == "d" {
                    found.append(i..<(i + 2)); i += 2; continue
                }
                if i + 2 < n {
                    let b = t[i + 2]
                    if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") {
                        found.append(i..<(i + 3)); i += 3; continue
                    }
                }
            }
            // An optional space, then a run of one class.
            let start = i
            var j = i
            if c == " " && i + 1 < n { j = i + 1 }
            let head = t[j]
            if j < n && (j == i || c == " ") {
                if head.isLetter {
                    var k = j + 1
                    while k < n && t[k].isLetter { k += 1 }
                    found.append(start..<k); i = k; continue
                }
                if head.isNumber {
                    var k = j + 1
                    while k < n && t[k].isNumber { k += 1 }
                    found.append(start..<k); i = k; continue
                }
                if isOther(head) {
                    var k = j + 1
                    while k < n && isOther(t[k]) { k += 1 }
                    found.append(start..<k); i = k; continue
                }
            }
            // Whitespace: \s+(?!\S) leaves the last space to the next token when one follows; else \s+.
            if c.isWhite {
                var k = i + 1
                while k < n && t[k].isWhite { k += 1 }
                if k < n && k - i > 1 { k -= 1 }
                found.append(i..<k); i = k; continue
            }
            // Unreachable in practice (every scalar is whitespace, letter, number or other).
            found.append(i..<(i + 1)); i += 1
        }
        return found
    }
}

/// The Whitespace pre-tokenizer's `\w+|[^\w\s]+`.
enum WordSplitter {
    static func matches(_ t: Scalars) -> [Range<Int>] {
        var found: [Range<Int>] = []
        let n = t.count
        var i = 0
        while i < n {
            let c = t[i]
            if c.isWord {
                var k = i + 1
                while k < n && t[k].isWord { k += 1 }
                found.append(i..<k); i = k
            } else if !c.isWhite {
                var k = i + 1
                while k < n && !t[k].isWord && !t[k].isWhite { k += 1 }
                found.append(i..<k); i = k
            } else {
                i += 1
            }
        }
        return found
    }
}

/// GPT-2's reversible byte-to-unicode alphabet: printable bytes map to themselves, the rest to
/// U+0100 and up, so that any byte string becomes printable text.
enum ByteLevelAlphabet {
    static let table: [Unicode.Scalar] = {
        var printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var codes = printable
        var next = 0
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            codes.append(256 + next)
            next += 1
        }
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        for (b, code) in zip(printable, codes) { table[b] = Unicode.Scalar(UInt32(code)) ?? " " }
        return table
    }()

    static func encode(_ text: Scalars) -> Scalars {
        var out = Scalars()
        out.reserveCapacity(text.count)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4)
        for c in text {
            if c.value < 0x80 {
                out.append(table[Int(c.value)])
            } else {
                bytes.removeAll(keepingCapacity: true)
                appendUTF8(c, to: &bytes)
                for b in bytes { out.append(table[Int(b)]) }
            }
        }
        return out
    }
}

/// The UnicodeScripts pre-tokenizer's rule: a piece starts wherever a character's script differs from the last
/// script seen. Characters of no script ("any": the space, unassigned code points) never start a piece, and
/// those before the first scripted character are dropped, as `tokenizers` drops them. The scripts are those of
/// `tokenizers`' own table (`UnicodeScriptTable`, generated from it), Hiragana and Katakana counting as Han.
enum UnicodeScripts {
    /// Range starts and their classes, from the packed table.
    static let table: (starts: [UInt32], classes: [UInt8]) = {
        var starts: [UInt32] = [], classes: [UInt8] = []
        for entry in UnicodeScriptTable.packed.split(separator: ",") {
            let parts = entry.split(separator: ":")
            guard parts.count == 2, let start = UInt32(parts[0], radix: 16), let kind = UInt8(parts[1], radix: 16) else { continue }
            starts.append(start)
            classes.append(kind)
        }
        return (starts, classes)
    }()

    /// The script class of a scalar; 0 is "any".
    static func scriptClass(_ c: Unicode.Scalar) -> UInt8 {
        let (starts, classes) = table
        // The last range starting at or before c.
        var low = 0, high = starts.count
        while low < high {
            let mid = (low + high) / 2
            if starts[mid] <= c.value { low = mid + 1 } else { high = mid }
        }
        return low > 0 ? classes[low - 1] : 0
    }

    static func pieceStarts(_ text: Scalars) -> [Int] {
        var starts: [Int] = []
        var last: UInt8 = 0
        for (i, c) in text.enumerated() {
            let kind = scriptClass(c)
            guard kind != 0 else { continue }
            if kind != last { starts.append(i) }
            last = kind
        }
        return starts
    }
}
