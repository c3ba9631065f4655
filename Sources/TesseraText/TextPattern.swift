// Patterns of tokenizer.json ("String" or "Regex"), matched as the reference matches them:
// non-overlapping, leftmost first, over Unicode scalars.
import TesseraCore

/// A literal or regular-expression pattern.
struct TextPattern: @unchecked Sendable {
    // @unchecked: the compiled Regex is only read.
    private let literal: Scalars?
    private let regex: Regex<AnyRegexOutput>?
    /// A known pattern matched by a hand-written scanner instead of the (slow) general regex engine.
    private let scanner: Scanner?

    enum Scanner { case gpt2 }

    init(json: JSONValue) throws {
        if let string = json["String"]?.stringValue {
            literal = Scalars(string)
            regex = nil
            scanner = nil
        } else if let source = json["Regex"]?.stringValue {
            literal = nil
            if source == ByteLevelSplitter.gpt2Pattern {
                scanner = .gpt2
                regex = nil
            } else {
                scanner = nil
                do {
                    regex = try Regex(source).matchingSemantics(.unicodeScalar)
                } catch {
                    throw TokenizerFileError.malformed("regex \(source) does not compile: \(error)")
                }
            }
        } else {
            throw TokenizerFileError.malformed("pattern must be {\"String\": ...} or {\"Regex\": ...}")
        }
    }

    /// Scalar ranges of the non-empty matches, in order.
    func matches(in text: Scalars) -> [Range<Int>] {
        if let literal {
            guard !literal.isEmpty, literal.count <= text.count else { return [] }
            var found: [Range<Int>] = []
            var i = 0
            let first = literal[0]
            while i + literal.count <= text.count {
                if text[i] == first && text[i..<(i + literal.count)].elementsEqual(literal) {
                    found.append(i..<(i + literal.count))
                    i += literal.count
                } else {
                    i += 1
                }
            }
            return found
        }
        if scanner == .gpt2 { return ByteLevelSplitter.matches(text) }
        guard let regex, !text.isEmpty else { return [] }
        let string = text.string
        var found: [Range<Int>] = []
        var cursor = string.unicodeScalars.startIndex
        var offset = 0
        for match in string.matches(of: regex) {
            let lower = match.range.lowerBound, upper = match.range.upperBound
            guard lower < upper else { continue }
            offset += string.unicodeScalars.distance(from: cursor, to: lower)
            let length = string.unicodeScalars.distance(from: lower, to: upper)
            found.append(offset..<(offset + length))
            offset += length
            cursor = upper
        }
        return found
    }
}
