import Foundation
import Testing
import TesseraCore
@testable import TesseraText

/// A damaged `precompiled_charsmap` is refused when `tokenizers` would refuse it, and never crashes.
@Suite struct PrecompiledCharsmapTests {
    /// The base64 `precompiled_charsmap` of a fixture tokenizer's `Precompiled` normalizer (alone or in a
    /// Sequence).
    static func charsmapText(ofTokenizer name: String) throws -> String {
        let file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: textFixtures + "tokenizers/\(name).json")))
        let normalizer = try #require((file as? [String: Any])?["normalizer"] as? [String: Any])
        let parts = (normalizer["normalizers"] as? [[String: Any]]) ?? [normalizer]
        return try #require(parts.first { $0["type"] as? String == "Precompiled" }?["precompiled_charsmap"] as? String)
    }

    /// The custom-rules fixture's charsmap (tools/fixtures/make_more_tokenizer_goldens.py): a small trie.
    static func fixtureCharsmap() throws -> [UInt8] {
        [UInt8](try #require(Data(base64Encoded: try charsmapText(ofTokenizer: "sentencepiece-custom-rules"))))
    }

    static func charsmap(_ bytes: [UInt8]) throws -> PrecompiledCharsmap {
        try PrecompiledCharsmap(base64: Data(bytes).base64EncodedString())
    }

    @Test func damagedCharsmapsAreClearErrors() throws {
        let good = try Self.fixtureCharsmap()
        #expect(try Self.charsmap(good).apply(Array("e\u{301} \u{FB03}".unicodeScalars)).string == "E ffi")
        var tooLong = good
        tooLong[0...3] = [0xF0, 0xFF, 0xFF, 0x7F]
        var notUTF8 = good
        notUTF8.append(0xFF)
        for (bytes, why) in [([], "too short"), ([0, 0, 0, 0], "empty trie"), (Array(good.prefix(40)), "does not fit"), (tooLong, "does not fit"),
                             (notUTF8, "not UTF-8")] {
            #expect {
                try Self.charsmap(bytes)
            } throws: { "\($0)".contains(why) && "\($0)".contains("Precompiled") }
        }
        #expect(throws: TokenizerFileError.self) { try PrecompiledCharsmap(base64: "not base64!") }
    }

    @Test func aTokenizerFileWithoutItsCharsmapIsRefused() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-precompiled-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for charsmap in ["null", "\"\"", "\"AAAAAA==\""] {
            let path = folder.appendingPathComponent("t.json").path
            let json = """
                {"normalizer": {"type": "Precompiled", "precompiled_charsmap": \(charsmap)}, "pre_tokenizer": null, "post_processor": null,
                 "added_tokens": [], "model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.0]]}}
                """
            try json.write(toFile: path, atomically: true, encoding: .utf8)
            #expect {
                try Tokenizer(path: path)
            } throws: { "\($0)".contains("Precompiled") }
        }
    }

    /// Seeded byte mutations of a real charsmap: loading either refuses it or gives a normalizer that
    /// returns some text for every input (indices out of the trie end the search instead of trapping).
    @Test func mutatedCharsmapsNeverCrash() throws {
        let good = try Self.fixtureCharsmap()
        var rng = SeededRandom(seed: 20261128)
        let inputs = ["e\u{301}n\u{303}", "\u{FF76}\u{FF9E} \u{1F44D}\u{1F3FD}", "plain ASCII text", "\u{200B}\u{3000}\u{FB03}", "a\u{0}b"]
        var loaded = 0
        for _ in 0..<2000 {
            var bytes = good
            for _ in 0..<(1 + Int(rng.next() % 8)) {
                // Mutate the trie's units mostly (bytes 4 onwards), sometimes the size field.
                let at = rng.next() % 10 == 0 ? Int(rng.next() % 4) : 4 + Int(rng.next() % UInt64(bytes.count - 4))
                bytes[at] = UInt8(truncatingIfNeeded: rng.next())
            }
            guard let charsmap = try? Self.charsmap(bytes) else { continue }
            loaded += 1
            for input in inputs { _ = charsmap.apply(Array(input.unicodeScalars)) }
        }
        #expect(loaded > 1000)
    }
}
