// The three model families of tokenizer.json: BPE, WordPiece and Unigram, each turning one pre-token
// into ids exactly as the `tokenizers` library does.
import Synchronization
import TesseraCore

/// A tokenization model.
protocol TokenModel: Sendable {
    /// The ids of one pre-tokenized piece.
    func tokenize(_ piece: Scalars) -> [Int32]
    /// The id of a token string, if the model has it.
    func id(of token: Scalars) -> Int32?
    /// The string of an id, for display.
    func token(of id: Int32) -> String?
    var vocabularySize: Int { get }
}

/// Parses `"vocab": {"token": id, ...}` into lookup tables both ways.
private func parseVocabulary(_ json: JSONValue?) throws -> (forward: [TokenKey: Int32], backward: [Int32: String]) {
    guard let object = json?.objectValue else { throw TokenizerFileError.malformed("model without a \"vocab\" object") }
    var forward: [TokenKey: Int32] = [:]
    var backward: [Int32: String] = [:]
    forward.reserveCapacity(object.count)
    for (token, value) in object.members {
        guard let id = value.int64Value, id >= 0, id < Int64(Int32.max) else {
            throw TokenizerFileError.malformed("vocabulary id of \"\(token)\" is not a non-negative integer")
        }
        forward[TokenKey(token)] = Int32(id)
        backward[Int32(id)] = token
    }
    return (forward, backward)
}

/// The id of a model's `unk_token` (`fallback` when the file names none), which must be in the vocabulary.
private func unknownID(_ json: JSONValue, in vocab: [TokenKey: Int32], fallback: String) throws -> Int32 {
    let unk = json["unk_token"]?.stringValue ?? fallback
    guard let id = vocab[TokenKey(unk)] else { throw TokenizerFileError.malformed("unk_token \(unk) is not in the vocabulary") }
    return id
}

// MARK: - BPE

/// Byte-pair encoding: characters of a piece are merged pairwise by merge rank, lowest rank first and,
/// among equal ranks, leftmost first (a min-heap over (rank, position), as `Word::merge_all`).
final class BPEModel: TokenModel, @unchecked Sendable {
    // @unchecked: immutable after init except the cache, which is behind a Mutex.
    let vocab: [TokenKey: Int32]
    let reverse: [Int32: String]
    /// (left id, right id) packed into 64 bits -> (rank, merged id).
    let merges: [UInt64: (rank: Int32, id: Int32)]
    let unkToken: Scalars?
    let continuingSubwordPrefix: Scalars?
    let endOfWordSuffix: Scalars?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    private let cache = Mutex<[TokenKey: [Int32]]>([:])
    private static let cacheCapacity = 10_000
    /// Ids of the byte-fallback tokens <0x00> ... <0xFF> (nil where absent).
    private let byteTokens: [Int32?]

    var vocabularySize: Int { vocab.count }

    init(json: JSONValue) throws {
        if let dropout = json["dropout"]?.doubleValue, dropout > 0 {
            throw TokenizerFileError.unsupported("BPE option", "dropout \(dropout) (random merges are not reproducible)")
        }
        (vocab, reverse) = try parseVocabulary(json["vocab"])
        unkToken = json["unk_token"]?.stringValue.map { Scalars($0) }
        continuingSubwordPrefix = json["continuing_subword_prefix"]?.stringValue.map { Scalars($0) }
        endOfWordSuffix = json["end_of_word_suffix"]?.stringValue.map { Scalars($0) }
        fuseUnk = json["fuse_unk"]?.boolValue ?? false
        byteFallback = json["byte_fallback"]?.boolValue ?? false
        ignoreMerges = json["ignore_merges"]?.boolValue ?? false
        let prefixLength = continuingSubwordPrefix?.count ?? 0
        var table: [UInt64: (rank: Int32, id: Int32)] = [:]
        let list = json["merges"]?.arrayValue ?? []
        table.reserveCapacity(list.count)
        for (rank, item) in list.enumerated() {
            let a: String, b: String
            if let text = item.stringValue {
                let parts = text.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw TokenizerFileError.malformed("merge \"\(text)\" is not two tokens") }
                (a, b) = (String(parts[0]), String(parts[1]))
            } else if let pair = item.arrayValue, pair.count == 2, let x = pair[0].stringValue, let y = pair[1].stringValue {
                (a, b) = (x, y)
            } else {
                throw TokenizerFileError.malformed("merge \(rank) is neither \"a b\" nor [\"a\", \"b\"]")
            }
            let aKey = TokenKey(a), bKey = TokenKey(b)
            guard let aID = vocab[aKey], let bID = vocab[bKey] else {
                throw TokenizerFileError.malformed("merge \(rank) (\(a) \(b)) uses a token missing from the vocabulary")
            }
            // The merged token drops the right part's prefix length, whether or not it starts with it
            // (as the reference builds it).
            let merged = TokenKey(values: aKey.scalars + bKey.scalars.dropFirst(min(prefixLength, bKey.scalars.count)))
            guard let mergedID = vocab[merged] else {
                throw TokenizerFileError.malformed("merge \(rank) (\(a) \(b)) makes a token missing from the vocabulary")
            }
            table[UInt64(UInt32(aID)) << 32 | UInt64(UInt32(bID))] = (Int32(rank), mergedID)
        }
        merges = table
        var bytes = [Int32?](repeating: nil, count: 256)
        if byteFallback {
            for b in 0..<256 {
                let hex = String(b, radix: 16, uppercase: true)
                bytes[b] = vocab[TokenKey("<0x" + (b < 16 ? "0" : "") + hex + ">")]
            }
        }
        byteTokens = bytes
        if let unkToken, vocab[TokenKey(unkToken)] == nil {
            throw TokenizerFileError.malformed("unk_token \(unkToken.string) is not in the vocabulary")
        }
    }

    func id(of token: Scalars) -> Int32? { vocab[TokenKey(token)] }
    func token(of id: Int32) -> String? { reverse[id] }

    func tokenize(_ piece: Scalars) -> [Int32] {
        if piece.isEmpty { return [] }
        let key = TokenKey(piece)
        if ignoreMerges, let id = vocab[key] { return [id] }
        if let hit = cache.withLock({ $0[key] }) { return hit }
        let ids = mergeWord(piece)
        cache.withLock { cache in
            if cache.count < BPEModel.cacheCapacity { cache[key] = ids }
        }
        return ids
    }

    /// `BPE::merge_word`: initial symbols per character (with prefix/suffix), unknowns and byte fallback,
    /// then every merge by rank.
    private func mergeWord(_ piece: Scalars) -> [Int32] {
        var symbols: [Int32] = []
        symbols.reserveCapacity(piece.count)
        var pendingUnk: Int32?
        let unkID = unkToken.flatMap { vocab[TokenKey($0)] }
        var buffer: [UInt32] = []
        for (i, c) in piece.enumerated() {
            buffer.removeAll(keepingCapacity: true)
            if i > 0, let prefix = continuingSubwordPrefix { buffer += prefix.map(\.value) }
            buffer.append(c.value)
            if i == piece.count - 1, let suffix = endOfWordSuffix { buffer += suffix.map(\.value) }
            if let id = vocab[TokenKey(values: buffer)] {
                if let unk = pendingUnk { symbols.append(unk); pendingUnk = nil }
                symbols.append(id)
                continue
            }
            if byteFallback {
                var utf8: [UInt8] = []
                for value in buffer { if let s = Unicode.Scalar(value) { appendUTF8(s, to: &utf8) } }
                let ids = utf8.map { byteTokens[Int($0)] }
                if ids.allSatisfy({ $0 != nil }) {
                    // As the reference does, a pending unknown is not flushed before byte tokens.
                    symbols += ids.compactMap { $0 }
                    continue
                }
            }
            if let unkID {
                if pendingUnk != nil && !fuseUnk { symbols.append(unkID) }
                pendingUnk = unkID
            }
        }
        if let unk = pendingUnk { symbols.append(unk) }
        return applyMerges(symbols)
    }

    /// `Word::merge_all` with a binary min-heap of (rank, position) and a doubly linked symbol list.
    private func applyMerges(_ initial: [Int32]) -> [Int32] {
        let n = initial.count
        guard n > 1 else { return initial }
        var ids = initial
        var prev = (0..<n).map { $0 - 1 }
        var next = (0..<n).map { $0 + 1 < n ? $0 + 1 : -1 }
        var alive = [Bool](repeating: true, count: n)
        _ = prev
        var heap = MergeHeap()
        for i in 0..<(n - 1) {
            if let m = merges[pairKey(ids[i], ids[i + 1])] { heap.push(rank: m.rank, position: i, id: m.id) }
        }
        while let top = heap.pop() {
            let pos = top.position
            guard alive[pos], next[pos] >= 0 else { continue }
            let right = next[pos]
            guard let m = merges[pairKey(ids[pos], ids[right])], m.id == top.id else { continue }
            ids[pos] = top.id
            alive[right] = false
            next[pos] = next[right]
            if next[right] >= 0 { prev[next[right]] = pos }
            if prev[pos] >= 0, let left = merges[pairKey(ids[prev[pos]], ids[pos])] {
                heap.push(rank: left.rank, position: prev[pos], id: left.id)
            }
            if next[pos] >= 0, let after = merges[pairKey(ids[pos], ids[next[pos]])] {
                heap.push(rank: after.rank, position: pos, id: after.id)
            }
        }
        // Position 0 is never removed (a merge removes its right symbol), so the list starts there.
        var out: [Int32] = []
        var i = 0
        while i >= 0 {
            out.append(ids[i])
            i = next[i]
        }
        return out
    }

    @inline(__always) private func pairKey(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(a)) << 32 | UInt64(UInt32(b)) }
}

/// A binary min-heap ordered by (rank, position).
struct MergeHeap {
    private var items: [(rank: Int32, position: Int, id: Int32)] = []

    @inline(__always) private func less(_ a: Int, _ b: Int) -> Bool {
        items[a].rank != items[b].rank ? items[a].rank < items[b].rank : items[a].position < items[b].position
    }

    mutating func push(rank: Int32, position: Int, id: Int32) {
        items.append((rank, position, id))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(child, parent) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (rank: Int32, position: Int, id: Int32)? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < items.count && less(left, smallest) { smallest = left }
                if right < items.count && less(right, smallest) { smallest = right }
                if smallest == parent { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}

// MARK: - WordLevel

/// WordLevel: each pre-tokenized piece is one vocabulary entry, or the unknown token.
final class WordLevelModel: TokenModel, @unchecked Sendable {
    let vocab: [TokenKey: Int32]
    let reverse: [Int32: String]
    let unkID: Int32

    var vocabularySize: Int { vocab.count }

    /// An unknown token missing from the vocabulary is refused here, as WordPiece's is; `tokenizers` only fails
    /// on the first word it cannot find.
    init(json: JSONValue) throws {
        (vocab, reverse) = try parseVocabulary(json["vocab"])
        unkID = try unknownID(json, in: vocab, fallback: "<unk>")
    }

    func id(of token: Scalars) -> Int32? { vocab[TokenKey(token)] }
    func token(of id: Int32) -> String? { reverse[id] }

    func tokenize(_ piece: Scalars) -> [Int32] {
        piece.isEmpty ? [] : [vocab[TokenKey(piece)] ?? unkID]
    }
}

// MARK: - WordPiece

/// WordPiece: greedy longest match first, continuations prefixed (`##`), the whole word unknown when any
/// part has no match or the word is longer than `max_input_chars_per_word`.
final class WordPieceModel: TokenModel, @unchecked Sendable {
    let vocab: [TokenKey: Int32]
    let reverse: [Int32: String]
    let unkID: Int32
    let prefix: Scalars
    let maxChars: Int
    /// The longest vocabulary entry, in scalars: no longer candidate can match.
    let longestToken: Int

    var vocabularySize: Int { vocab.count }

    init(json: JSONValue) throws {
        (vocab, reverse) = try parseVocabulary(json["vocab"])
        unkID = try unknownID(json, in: vocab, fallback: "[UNK]")
        prefix = Scalars(json["continuing_subword_prefix"]?.stringValue ?? "##")
        maxChars = json["max_input_chars_per_word"]?.intValue ?? 100
        longestToken = vocab.keys.map(\.scalars.count).max() ?? 0
    }

    func id(of token: Scalars) -> Int32? { vocab[TokenKey(token)] }
    func token(of id: Int32) -> String? { reverse[id] }

    func tokenize(_ piece: Scalars) -> [Int32] {
        if piece.isEmpty { return [] }
        if piece.count > maxChars { return [unkID] }
        var out: [Int32] = []
        var start = 0
        var candidate: [UInt32] = []
        while start < piece.count {
            // Candidates longer than the longest vocabulary entry cannot match: start below that length.
            var end = min(piece.count, start + max(1, longestToken - (start > 0 ? prefix.count : 0)))
            var found: Int32?
            while start < end {
                candidate.removeAll(keepingCapacity: true)
                if start > 0 { candidate += prefix.map(\.value) }
                for c in piece[start..<end] { candidate.append(c.value) }
                if let id = vocab[TokenKey(values: candidate)] { found = id; break }
                end -= 1
            }
            guard let id = found else { return [unkID] }
            out.append(id)
            start = end
        }
        return out
    }
}

// MARK: - Unigram

/// Unigram: the Viterbi best segmentation under the vocabulary's log-probabilities; characters no piece
/// covers score `min_score - 10` as unknown; consecutive unknowns fuse; byte fallback when enabled.
final class UnigramModel: TokenModel, @unchecked Sendable {
    let pieces: [(token: Scalars, score: Double)]
    let ids: [TokenKey: Int32]
    let unkID: Int32?
    let byteFallback: Bool
    let minScore: Double
    /// Piece ids by their first scalar, for the prefix search.
    private let trie: PrefixTrie
    private let cache = Mutex<[TokenKey: [Int32]]>([:])

    var vocabularySize: Int { pieces.count }

    init(json: JSONValue) throws {
        guard let list = json["vocab"]?.arrayValue else { throw TokenizerFileError.malformed("Unigram model without a \"vocab\" list") }
        var pieces: [(Scalars, Double)] = []
        var ids: [TokenKey: Int32] = [:]
        for (i, item) in list.enumerated() {
            guard let pair = item.arrayValue, pair.count == 2, let token = pair[0].stringValue, let score = pair[1].doubleValue else {
                throw TokenizerFileError.malformed("Unigram vocab entry \(i) is not [token, score]")
            }
            pieces.append((Scalars(token), score))
            ids[TokenKey(token)] = Int32(i)  // a repeated token maps to its last id, as in the reference
        }
        self.pieces = pieces
        self.ids = ids
        unkID = json["unk_id"]?.intValue.map { Int32($0) }
        byteFallback = json["byte_fallback"]?.boolValue ?? false
        minScore = pieces.map(\.1).min() ?? 0
        trie = PrefixTrie(pieces.map(\.0), ids: ids)
        if let unkID, unkID < 0 || Int(unkID) >= pieces.count { throw TokenizerFileError.malformed("unk_id \(unkID) is outside the vocabulary") }
    }

    func id(of token: Scalars) -> Int32? { ids[TokenKey(token)] }
    func token(of id: Int32) -> String? { id >= 0 && Int(id) < pieces.count ? pieces[Int(id)].token.string : nil }

    func tokenize(_ piece: Scalars) -> [Int32] {
        if piece.isEmpty { return [] }
        let key = TokenKey(piece)
        if let hit = cache.withLock({ $0[key] }) { return hit }
        var out: [Int32] = []
        for token in viterbi(piece) {
            if let id = ids[TokenKey(token)] {
                out.append(id)
                continue
            }
            if byteFallback {
                let bytes = token.utf8.map { b -> Int32? in
                    let hex = String(b, radix: 16, uppercase: true)
                    return ids[TokenKey("<0x" + (b < 16 ? "0" : "") + hex + ">")]
                }
                if bytes.allSatisfy({ $0 != nil }) {
                    out += bytes.compactMap { $0 }
                    continue
                }
            }
            if let unkID { out.append(unkID) }
        }
        cache.withLock { if $0.count < 10_000 { $0[key] = out } }
        return out
    }

    /// `Unigram::encode_optimized`: best path by score, ties kept by the first candidate (shorter pieces
    /// are offered first), unknown characters fused.
    private func viterbi(_ text: Scalars) -> [Scalars] {
        let n = text.count
        var bestScore = [Double](repeating: 0, count: n + 1)
        var startsAt = [Int](repeating: -1, count: n + 1)
        var nodeID = [Int32](repeating: -1, count: n + 1)
        let unkScore = minScore - 10
        for start in 0..<n {
            let base = bestScore[start]
            var hasSingle = false
            trie.forEachPrefix(of: text, from: start) { length, id in
                let end = start + length
                let candidate = pieces[Int(id)].score + base
                if startsAt[end] < 0 || candidate > bestScore[end] {
                    bestScore[end] = candidate
                    startsAt[end] = start
                    nodeID[end] = id
                }
                if length == 1 { hasSingle = true }
            }
            if !hasSingle {
                let end = start + 1
                let candidate = unkScore + base
                if startsAt[end] < 0 || candidate > bestScore[end] {
                    bestScore[end] = candidate
                    startsAt[end] = start
                    nodeID[end] = unkID ?? -2
                }
            }
        }
        var results: [Scalars] = []
        var unknownRun: [Scalars] = []
        var end = n
        while end > 0 {
            let start = max(startsAt[end], 0)
            if let unkID, nodeID[end] == unkID {
                unknownRun.append(Array(text[start..<end]))
            } else {
                if !unknownRun.isEmpty {
                    results.append(unknownRun.reversed().flatMap { $0 })
                    unknownRun.removeAll()
                }
                let id = nodeID[end]
                results.append(id >= 0 ? pieces[Int(id)].token : Array(text[start..<end]))
            }
            end = start
        }
        if !unknownRun.isEmpty { results.append(unknownRun.reversed().flatMap { $0 }) }
        return results.reversed()
    }
}

/// A trie over vocabulary pieces for common-prefix search.
struct PrefixTrie: Sendable {
    private var children: [[UInt32: Int32]] = [[:]]
    private var terminal: [Int32] = [-1]

    init(_ words: [Scalars], ids: [TokenKey: Int32]) {
        for word in words where !word.isEmpty {
            var node = 0
            for c in word {
                if let next = children[node][c.value] {
                    node = Int(next)
                } else {
                    children.append([:])
                    terminal.append(-1)
                    let created = Int32(children.count - 1)
                    children[node][c.value] = created
                    node = Int(created)
                }
            }
            terminal[node] = ids[TokenKey(word)] ?? -1
        }
    }

    /// Calls `body(length, id)` for every vocabulary piece that is a prefix of `text[start...]`, shortest first.
    func forEachPrefix(of text: Scalars, from start: Int, _ body: (Int, Int32) -> Void) {
        var node = 0
        var i = start
        while i < text.count, let next = children[node][text[i].value] {
            node = Int(next)
            i += 1
            if terminal[node] >= 0 { body(i - start, terminal[node]) }
        }
    }
}
