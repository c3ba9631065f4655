// Added and special tokens: found in the text before the model runs (first the non-normalized ones in
// the raw text, then the normalized ones in each normalized piece), as `AddedVocabulary` does.

/// One entry of tokenizer.json's `added_tokens`.
struct AddedToken: Sendable {
    var content: Scalars
    var id: Int32
    var singleWord: Bool
    var lstrip: Bool
    var rstrip: Bool
    var normalized: Bool
    var special: Bool
}

/// A piece of the input after added-token extraction: either an added token's id or text.
enum Segment {
    case token(Int32)
    case text(Piece)
}

/// Leftmost-longest matching of a set of added tokens, with single-word and strip rules.
struct AddedTokenMatcher: Sendable {
    /// Tokens by first scalar, longest content first.
    private var byFirst: [UInt32: [AddedToken]] = [:]
    var isEmpty: Bool { byFirst.isEmpty }

    init(_ tokens: [AddedToken], normalizer: Normalizer?) {
        for token in tokens {
            var pattern = token
            if token.normalized, let normalizer { pattern.content = normalizer.apply(token.content) }
            guard let first = pattern.content.first else { continue }
            byFirst[first.value, default: []].append(pattern)
        }
        for key in byFirst.keys { byFirst[key]?.sort { $0.content.count > $1.content.count } }
    }

    /// Splits `piece` into added tokens and the text between them.
    func split(_ piece: Piece) -> [Segment] {
        let text = piece.text
        guard !isEmpty, !text.isEmpty else { return text.isEmpty ? [] : [.text(piece)] }
        var segments: [Segment] = []
        var consumed = 0
        var i = 0
        while i < text.count {
            guard let candidates = byFirst[text[i].value],
                  let match = candidates.first(where: { i + $0.content.count <= text.count && text[i..<(i + $0.content.count)].elementsEqual($0.content) })
            else {
                i += 1
                continue
            }
            var start = i, stop = i + match.content.count
            if match.singleWord {
                let startOK = start == 0 || !text[start - 1].isWord
                let stopOK = stop == text.count || !text[stop].isWord
                if !(startOK && stopOK) {
                    i = stop  // the reference's matcher has moved past this match
                    continue
                }
            }
            if match.lstrip {
                var s = start
                while s > 0 && text[s - 1].isWhite { s -= 1 }
                start = max(s, consumed)
            }
            if match.rstrip {
                while stop < text.count && text[stop].isWhite { stop += 1 }
            }
            if consumed < start {
                segments.append(.text(piece.slice(consumed..<start)))
            }
            segments.append(.token(match.id))
            consumed = stop
            i = stop
        }
        if consumed < text.count {
            segments.append(.text(piece.slice(consumed..<text.count)))
        }
        return segments
    }
}
