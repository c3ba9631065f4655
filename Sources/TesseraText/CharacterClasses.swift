// Character classes exactly as the reference implementation uses them: Rust's `char` methods, the
// `unicode_categories` crate, and the `\s`, `\w`, `\p{L}`, `\p{N}` classes of its regex engines.

extension Unicode.Scalar {
    /// Rust `char::is_whitespace` and regex `\s`: the White_Space property.
    @inline(__always) var isWhite: Bool {
        if value < 0x80 { return value == 0x20 || (value >= 0x09 && value <= 0x0D) }
        return properties.isWhitespace
    }

    /// Regex `\p{L}`: general category Letter (Lu, Ll, Lt, Lm, Lo).
    @inline(__always) var isLetter: Bool {
        if value < 0x80 { return (value | 0x20) >= 0x61 && (value | 0x20) <= 0x7A }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// Regex `\p{N}` and Rust `char::is_numeric`: general category Number (Nd, Nl, No).
    @inline(__always) var isNumber: Bool {
        if value < 0x80 { return value >= 0x30 && value <= 0x39 }
        switch properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// Regex `\w` (Unicode): Alphabetic, marks, decimal numbers, connector punctuation, join controls.
    @inline(__always) var isWord: Bool {
        if value < 0x80 {
            return (value | 0x20) >= 0x61 && (value | 0x20) <= 0x7A || (value >= 0x30 && value <= 0x39) || value == 0x5F
        }
        let p = properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    /// `unicode_categories::is_punctuation` or ASCII punctuation: what BERT and the Punctuation
    /// pre-tokenizer split on.
    @inline(__always) var isPunctuationForSplit: Bool {
        if value < 0x80 {
            return (value >= 0x21 && value <= 0x2F) || (value >= 0x3A && value <= 0x40)
                || (value >= 0x5B && value <= 0x60) || (value >= 0x7B && value <= 0x7E)
        }
        switch properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// `unicode_categories::is_other` (Cc, Cf, Cn, Co, Cs): what BERT's clean_text removes (tab, LF, CR
    /// excepted).
    var isOtherCategory: Bool {
        if value < 0x80 { return value < 0x20 || value == 0x7F }
        switch properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// General category Mn: what BERT's accent stripping removes.
    var isNonspacingMark: Bool { value >= 0x300 && properties.generalCategory == .nonspacingMark }

    /// `unicode_normalization::char::is_combining_mark`: Mn, Mc, Me (what StripAccents removes).
    var isCombiningMark: Bool {
        if value < 0x300 { return false }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    /// The CJK ideograph ranges BERT surrounds with spaces.
    var isCJKIdeograph: Bool {
        switch value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }
}

/// Text as Unicode scalars: the unit every normalizer and pre-tokenizer works on.
typealias Scalars = [Unicode.Scalar]

extension Array where Element == Unicode.Scalar {
    init(_ string: String) { self = Array(string.unicodeScalars) }

    var string: String {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: self)
        return String(s)
    }

    /// The UTF-8 encoding.
    var utf8: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        for scalar in self { appendUTF8(scalar, to: &out) }
        return out
    }
}

@inline(__always) func appendUTF8(_ scalar: Unicode.Scalar, to out: inout [UInt8]) {
    let v = scalar.value
    switch v {
    case 0..<0x80: out.append(UInt8(v))
    case 0x80..<0x800:
        out.append(UInt8(0xC0 | (v >> 6)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    case 0x800..<0x10000:
        out.append(UInt8(0xE0 | (v >> 12)))
        out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    default:
        out.append(UInt8(0xF0 | (v >> 18)))
        out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
        out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    }
}

/// A vocabulary key compared by its exact scalars. Swift's `String` equality is canonical equivalence
/// ("é" == "e\u{301}"), which would merge distinct vocabulary entries; this key never does.
struct TokenKey: Hashable, Sendable {
    var scalars: [UInt32]

    init(_ scalars: Scalars) { self.scalars = scalars.map(\.value) }
    init(_ string: String) { scalars = string.unicodeScalars.map(\.value) }
    init(values: [UInt32]) { scalars = values }

    func hash(into hasher: inout Hasher) {
        scalars.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}
