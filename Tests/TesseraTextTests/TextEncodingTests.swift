import Foundation
import Testing
import TesseraCore
@testable import TesseraText

/// A tokenizer.json built from the W1 fixture with one component replaced.
private func w1Variant(_ edit: (inout [String: Any]) -> Void) throws -> [UInt8] {
    let data = try Data(contentsOf: URL(fileURLWithPath: textFixtures + "tokenizers/w1.json"))
    var json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    edit(&json)
    return Array(try JSONSerialization.data(withJSONObject: json))
}

@Suite struct UnsupportedComponentTests {
    @Test(arguments: [
        ("normalizer", #"{"type": "NFKC2"}"#, "NFKC2"),
        ("pre_tokenizer", #"{"type": "Whitespace2"}"#, "Whitespace2"),
        ("post_processor", #"{"type": "SomeFutureProcessor"}"#, "SomeFutureProcessor"),
        ("model", #"{"type": "CharLevel", "vocab": {"a": 0}}"#, "CharLevel"),
    ])
    func unsupportedTypesAreClearErrors(_ component: String, _ valueJSON: String, _ type: String) throws {
        let value = try JSONSerialization.jsonObject(with: Data(valueJSON.utf8))
        let bytes = try w1Variant { $0[component] = value }
        let error = try #require(throws: TesseraError.self) { try Tokenizer(json: bytes, source: "variant.json") }
        #expect(error.code == "tokenizer.unsupported")
        #expect(error.path == "variant.json")
        #expect(error.message == "unsupported \(component) type \"\(type)\" in tokenizer.json (Tessera implements the types listed in docs/TEXT.md)")
    }

    @Test func nestedUnsupportedTypesAreFoundToo() throws {
        let bytes = try w1Variant { $0["normalizer"] = ["type": "Sequence", "normalizers": [["type": "NFC"], ["type": "NFKC2"]]] }
        let error = try #require(throws: TesseraError.self) { try Tokenizer(json: bytes, source: "nested.json") }
        #expect(error.message.contains("\"NFKC2\""))
    }

    /// Settings `tokenizers` would refuse or panic on are malformed, named in the message.
    @Test(arguments: [
        ("normalizer", #"{"type": "Precompiled", "precompiled_charsmap": "AAAA"}"#, "Precompiled"),
        ("pre_tokenizer", #"{"type": "CharDelimiterSplit", "delimiter": "xy"}"#, "CharDelimiterSplit"),
        ("pre_tokenizer", #"{"type": "FixedLength", "length": 0}"#, "FixedLength"),
        ("model", #"{"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "<unk>"}"#, "unk_token <unk>"),
    ])
    func impossibleSettingsAreClearErrors(_ component: String, _ valueJSON: String, _ named: String) throws {
        let value = try JSONSerialization.jsonObject(with: Data(valueJSON.utf8))
        let bytes = try w1Variant { $0[component] = value }
        let error = try #require(throws: TesseraError.self) { try Tokenizer(json: bytes, source: "variant.json") }
        #expect(error.code == "tokenizer.malformed")
        #expect(error.message.contains(named))
    }

    /// NFKC composes across the input's grapheme clusters, as Python's `unicodedata` and `tokenizers` do:
    /// halfwidth kana with their (spacing) voiced marks become one kana. Foundation's own NFKC left them apart.
    @Test func nfkcComposesHalfwidthKanaWithTheirVoicedMarks() {
        let cases: [(String, [UInt32])] = [("\u{FF76}\u{FF9E}\u{FF8A}\u{FF9F} \u{FF9E}", [0x30AC, 0x30D1, 0x20, 0x3099]),
                                           ("\u{309B}\u{309C}", [0x20, 0x3099, 0x20, 0x309A]), ("A\u{309B}", [0x41, 0x20, 0x3099])]
        for (input, expected) in cases {
            #expect(Normalizer.nfkc.apply(Array(input.unicodeScalars)).map(\.value) == expected, "\(input.debugDescription)")
        }
    }

    /// NFC, NFD, NFKC and NFKD against Python's `unicodedata` on 4,000 random strings of marks, kana, jamo and
    /// compatibility characters (tools/fixtures/make_normalization_goldens.py): composition and canonical
    /// order across characters, where Foundation's normalization was wrong in up to 68 of 20,000.
    @Test func normalizationFormsEqualPythons() throws {
        struct Goldens: Decodable { let strings: [String], NFC: [String], NFD: [String], NFKC: [String], NFKD: [String] }
        let data = try Data(contentsOf: URL(fileURLWithPath: textFixtures + "normalization-goldens.json"))
        let goldens = try JSONDecoder().decode(Goldens.self, from: data)
        #expect(goldens.strings.count == 4000)
        for (form, expected) in [(Normalizer.nfc, goldens.NFC), (.nfd, goldens.NFD), (.nfkc, goldens.NFKC), (.nfkd, goldens.NFKD)] {
            var failures = 0
            for (input, want) in zip(goldens.strings, expected) where form.apply(Array(input.unicodeScalars)) != Array(want.unicodeScalars) {
                failures += 1
                if failures <= 3 { Issue.record("\(form) of \(input.unicodeScalars.map { String($0.value, radix: 16) })") }
            }
            #expect(failures == 0, "\(form): \(failures) of \(goldens.strings.count) differ from Python's")
        }
    }

    @Test func bpeDropoutIsRefusedRatherThanIgnored() throws {
        let bytes = try w1Variant { json in
            var model = json["model"] as? [String: Any] ?? [:]
            model["dropout"] = 0.1
            json["model"] = model
        }
        #expect(throws: TesseraError.self) { try Tokenizer(json: bytes, source: "dropout.json") }
    }

    @Test func malformedFilesAreClearErrors() throws {
        #expect(throws: TesseraError.self) { try Tokenizer(json: Array("{".utf8), source: "x.json") }
        #expect(throws: TesseraError.self) { try Tokenizer(json: Array("{\"model\": null}".utf8), source: "x.json") }
        let badMerge = try w1Variant { json in
            var model = json["model"] as? [String: Any] ?? [:]
            model["merges"] = [["notinvocab", "either"]]
            json["model"] = model
        }
        let error = try #require(throws: TesseraError.self) { try Tokenizer(json: badMerge, source: "m.json") }
        #expect(error.code == "tokenizer.malformed")
    }
}

@Suite struct TextEncodingTests {
    @Test func byteFallbackIsBytesPlusThreeWithBOSAndEOS() throws {
        var config = TextConfig()
        config.length = 8
        config.addSpecial = true
        let encoded = try TextEncoder(config: config).encode(utf8: Array("hé".utf8))
        #expect(try encoded.ids.scalars(as: Int32.self) == [1, 104 + 3, 0xC3 + 3, 0xA9 + 3, 2, 0, 0, 0])
        #expect(encoded.length == 5)
        #expect(TextEncoder.byteFallbackPad == 0)
    }

    @Test func truncationKeepsSpecialsAndTheChosenEnd() throws {
        var config = TextConfig()
        config.tokenizer = textFixtures + "tokenizers/bert-wordpiece.json"
        config.length = 5
        config.addSpecial = true
        let encoder = try TextEncoder(config: config)
        let all = try Tokenizer(path: config.tokenizer ?? "").encode("one two three four five six", addSpecial: false)
        let right = try encoder.encode(utf8: Array("one two three four five six".utf8))
        #expect(try right.ids.scalars(as: Int32.self) == [2] + all.prefix(3) + [3])
        #expect(right.untruncatedLength == all.count + 2)
        config.truncate = .left
        let left = try TextEncoder(config: config).encode(utf8: Array("one two three four five six".utf8))
        #expect(try left.ids.scalars(as: Int32.self) == [2] + all.suffix(3) + [3])
    }

    @Test func paddingUsesTheTokenizersPadToken() throws {
        var config = TextConfig()
        config.tokenizer = textFixtures + "tokenizers/bert-wordpiece.json"
        config.length = 6
        let encoder = try TextEncoder(config: config)
        #expect(encoder.description.padID == 0)  // [PAD]
        let encoded = try encoder.encode(utf8: Array("hello".utf8))
        let ids = try encoded.ids.scalars(as: Int32.self)
        #expect(ids.count == 6)
        #expect(ids[encoded.length...].allSatisfy { $0 == 0 })
        config.padID = 7
        #expect(try TextEncoder(config: config).encode(utf8: Array("hello".utf8)).ids.scalars(as: Int32.self).last == 7)
    }

    @Test func invalidUTF8IsAnErrorOrReplaced() throws {
        var config = TextConfig()
        let bytes: [UInt8] = [0x61, 0xFF, 0x62, 0xE2, 0x82]
        let error = try #require(throws: TesseraError.self) { try TextEncoder(config: config).encode(utf8: bytes) }
        #expect(error.code == "text.invalid-utf8")
        #expect(error.message.contains("byte 1"))
        config.invalidUTF8 = .replace
        let encoded = try TextEncoder(config: config).encode(utf8: bytes)
        #expect(encoded.replacedInvalidBytes == 2)
        #expect(encoded.tokens == ["a", "<0xEF>", "<0xBF>", "<0xBD>", "b", "<0xEF>", "<0xBF>", "<0xBD>"])
        // UTF-16 and UTF-32 text is refused under either policy, by its byte-order mark.
        for (text, mark) in [([0xFF, 0xFE, 0x68, 0x00] as [UInt8], "FF FE"), ([0xFE, 0xFF, 0x00, 0x68], "FE FF"),
                             ([0xFF, 0xFE, 0x00, 0x00, 0x68, 0, 0, 0], "FF FE"), ([0, 0, 0xFE, 0xFF, 0, 0, 0, 0x68], "00 00 FE FF")] {
            let refused = try #require(throws: TesseraError.self) { try TextEncoder(config: config).encode(utf8: text) }
            #expect(refused.code == "text.not-utf8")
            #expect(refused.message.contains("byte-order mark \(mark))"), "\(refused.message)")
        }
    }

    @Test func preTokenisedIdsAreReadAndChecked() throws {
        var config = TextConfig()
        config.tokenizer = textFixtures + "tokenizers/w1.json"
        config.length = 4
        let encoder = try TextEncoder(config: config)
        #expect(try encoder.encode(ids: try TextEncoder.parseIDs(Array(" 5 6\t7\n".utf8))).ids.scalars(as: Int32.self) == [5, 6, 7, 0])
        #expect(try encoder.encode(ids: try TextEncoder.parseIDs(Array("[5, 6, 7, 8, 9]".utf8))).ids.scalars(as: Int32.self) == [5, 6, 7, 8])
        let tooBig = try #require(throws: TesseraError.self) { try encoder.encode(ids: [1, 483]) }
        #expect(tooBig.code == "text.id-out-of-range")
        #expect(throws: TesseraError.self) { try TextEncoder.parseIDs(Array("1 two 3".utf8)) }
        #expect(throws: TesseraError.self) { try TextEncoder.parseIDs(Array("[1, \"2\"]".utf8)) }
        #expect(throws: TesseraError.self) { try encoder.encode(ids: [-1]) }
    }

    @Test func manifestDescriptionNamesTheTokenizerAndItsHash() throws {
        var config = TextConfig()
        config.tokenizer = textFixtures + "tokenizers/w1.json"
        let description = try TextEncoder(config: config).description
        #expect(description.kind == "tokenizer.json")
        #expect(description.sha256 == (try SHA256Digest.hex(ofFile: textFixtures + "tokenizers/w1.json")))
        #expect(description.vocabularySize == 483)
    }
}
