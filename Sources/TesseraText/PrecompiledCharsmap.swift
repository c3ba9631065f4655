// SentencePiece's compiled normalization rules, as tokenizer.json's `Precompiled` normalizer carries them
// (T5, ALBERT, XLM-R, mBART and most tokenizers converted from a SentencePiece model).
import Foundation

/// The `precompiled_charsmap` of a `Precompiled` normalizer: a little-endian UInt32 byte count, that many
/// bytes of a darts-clone double-array trie over UTF-8 keys, then the replacement strings (UTF-8, each ending
/// in NUL) that the trie's values point into.
///
/// It is applied as Hugging Face `tokenizers` applies it (its `spm_precompiled` crate), quirks included,
/// since they decide real token ids: each extended grapheme cluster shorter than 6 UTF-8 bytes is looked up
/// whole, and replaced whole by the value of the *shortest* key that is a prefix of it (so "e" + U+0301 under
/// a rule for "e" loses its accent); longer clusters, and clusters with no such key, are looked up one scalar
/// at a time.
struct PrecompiledCharsmap: Sendable {
    let units: [UInt32]
    let replacements: [UInt8]

    /// Parses the base64 text of `precompiled_charsmap`; a charsmap `tokenizers` would refuse, or that would
    /// make it panic (an empty trie), is malformed.
    init(base64: String) throws {
        guard let data = Data(base64Encoded: base64) else {
            throw TokenizerFileError.malformed("Precompiled normalizer's precompiled_charsmap is not base64")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= 4 else {
            throw TokenizerFileError.malformed("Precompiled normalizer's precompiled_charsmap is too short (\(bytes.count) bytes)")
        }
        let trieBytes = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        let unitCount = trieBytes / 4
        guard unitCount > 0 else { throw TokenizerFileError.malformed("Precompiled normalizer's precompiled_charsmap has an empty trie") }
        guard 4 + unitCount * 4 <= bytes.count else {
            throw TokenizerFileError.malformed("Precompiled normalizer's trie (\(trieBytes) bytes) does not fit its \(bytes.count)-byte charsmap")
        }
        units = (0..<unitCount).map { i in
            let at = 4 + 4 * i
            return UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        replacements = Array(bytes[(4 + unitCount * 4)...])
        guard String(validating: replacements, as: UTF8.self) != nil else {
            throw TokenizerFileError.malformed("Precompiled normalizer's replacement strings are not UTF-8")
        }
    }

    /// The replacement for the shortest key that is a prefix of `key` (darts-clone's first common-prefix
    /// result), or nil. A NUL byte ends the key. Indices outside the trie, which only a damaged charsmap
    /// holds, end the search.
    func replacement(_ key: some Sequence<UInt8>) -> Scalars? {
        var node = 0
        guard let root = units.first else { return nil }
        node ^= Self.offset(root)
        for byte in key {
            if byte == 0 { break }
            node ^= Int(byte)
            guard node < units.count else { return nil }
            let unit = units[node]
            // The label keeps the top bit so that a leaf unit never matches a byte.
            guard unit & (0x8000_0000 | 0xFF) == UInt32(byte) else { return nil }
            node ^= Self.offset(unit)
            if (unit >> 8) & 1 == 1 {
                guard node < units.count else { return nil }
                return text(at: Int(units[node] & 0x7FFF_FFFF))
            }
        }
        return nil
    }

    /// The NUL-terminated replacement starting at `start` (empty at the very end: a deletion).
    private func text(at start: Int) -> Scalars? {
        guard start <= replacements.count else { return nil }
        let end = replacements[start...].firstIndex(of: 0) ?? replacements.count
        return String(validating: replacements[start..<end], as: UTF8.self).map { Array($0.unicodeScalars) }
    }

    private static func offset(_ unit: UInt32) -> Int { Int((unit >> 10) << ((unit & (1 << 9)) >> 6)) }

    func apply(_ text: Scalars) -> Scalars {
        var out = Scalars()
        out.reserveCapacity(text.count)
        var key: [UInt8] = []
        for grapheme in text.string {
            key.removeAll(keepingCapacity: true)
            key.append(contentsOf: grapheme.utf8)
            if key.count < 6, let whole = replacement(key) {
                out += whole
                continue
            }
            for scalar in grapheme.unicodeScalars {
                if let replaced = replacement(scalar.utf8) {
                    out += replaced
                } else {
                    out.append(scalar)
                }
            }
        }
        return out
    }
}
