import Foundation
import Testing
import TesseraCore
@testable import TesseraText

let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

let textFixtures = packageRoot + "/fixtures/text/"

let textSamples: [String] = {
    guard let data = FileManager.default.contents(atPath: textFixtures + "samples.json"),
          let samples = try? JSONDecoder().decode([String].self, from: data) else { return [] }
    return samples
}()

/// The tokenizers of a golden set's listing (goldens.json, goldens-more.json).
func listedTokenizers(_ file: String) -> [String] {
    struct List: Decodable { let tokenizers: [String] }
    guard let data = FileManager.default.contents(atPath: textFixtures + file),
          let list = try? JSONDecoder().decode(List.self, from: data) else { return [] }
    return list.tokenizers
}

/// Every fixture tokenizer: make_text_goldens.py's, then make_more_tokenizer_goldens.py's.
let tokenizerNames = listedTokenizers("goldens.json") + listedTokenizers("goldens-more.json")

/// Exact ids against Hugging Face `tokenizers` (tools/fixtures/make_text_goldens.py and
/// make_more_tokenizer_goldens.py) on every sample.
@Suite struct TokenizerGoldenTests {
    static let mainGoldens = try? SafetensorsFile(path: textFixtures + "goldens.safetensors")
    static let moreGoldens = try? SafetensorsFile(path: textFixtures + "goldens-more.safetensors")
    static let moreNames = Set(listedTokenizers("goldens-more.json"))

    /// The golden file that holds a tokenizer's entries.
    static func goldens(_ name: String) -> SafetensorsFile? { moreNames.contains(name) ? moreGoldens : mainGoldens }

    @Test func fixturesArePresent() {
        #expect(textSamples.count >= 2000)
        #expect(tokenizerNames.count >= 5)
    }

    @Test(arguments: tokenizerNames)
    func idsEqualTokenizers(_ name: String) throws {
        let tokenizer = try Tokenizer(path: textFixtures + "tokenizers/\(name).json")
        let goldens = try #require(TokenizerGoldenTests.goldens(name))
        for mode in ["plain", "special"] {
            guard goldens.entry("\(name)|\(mode)|ids") != nil else { continue }
            let ids = try goldens.tensor("\(name)|\(mode)|ids").scalars(as: UInt16.self)
            let offsets = try goldens.tensor("\(name)|\(mode)|offsets").scalars(as: Int32.self)
            let failures = mismatches(in: textSamples, "\(name) \(mode)", expected: { ids[Int(offsets[$0])..<Int(offsets[$0 + 1])].map { Int32($0) } },
                                      got: { tokenizer.encode(textSamples[$0], addSpecial: mode == "special") })
            #expect(failures == 0, "\(name) \(mode): \(failures) of \(textSamples.count) samples differ")
        }
    }

    /// How many samples give other output than expected; the first three are recorded as issues.
    func mismatches<Output: Equatable>(in samples: [String], _ what: String, expected: (Int) -> Output, got: (Int) -> Output) -> Int {
        var failures = 0
        for i in samples.indices {
            let (want, have) = (expected(i), got(i))
            guard want != have else { continue }
            failures += 1
            if failures <= 3 {
                Issue.record("\(what) sample \(i) \(samples[i].debugDescription.prefix(100)): got \(String(describing: have).prefix(200)), expected \(String(describing: want).prefix(200))")
            }
        }
        return failures
    }

    /// The tokenizers whose goldens hold their `Precompiled` normalizer's own output
    /// (tools/fixtures/make_more_tokenizer_goldens.py).
    static let precompiledNames = tokenizerNames.filter { goldens($0)?.entry("\($0)|normalized|utf8") != nil }

    @Test func laterTokenizersAreCovered() {
        #expect(TokenizerGoldenTests.precompiledNames.count >= 2)
        #expect(TokenizerGoldenTests.extraNames.count >= 4)
    }

    /// Strings made to hit the `Precompiled` normalizer's edges (tools/fixtures/make_more_tokenizer_goldens.py).
    static let precompiledSamples: [String] = {
        guard let data = FileManager.default.contents(atPath: textFixtures + "samples-precompiled.json"),
              let samples = try? JSONDecoder().decode([String].self, from: data) else { return [] }
        return samples
    }()

    /// SentencePiece's compiled rules give `tokenizers`' string for every sample and the ids of the extra
    /// samples, quirks included (a cluster replaced whole by its shortest prefix key, clusters of 6 bytes and
    /// more taken a scalar at a time).
    @Test(arguments: precompiledNames)
    func precompiledNormalizerEqualsTokenizers(_ name: String) throws {
        let charsmap = try PrecompiledCharsmap(base64: try PrecompiledCharsmapTests.charsmapText(ofTokenizer: name))
        let goldens = try #require(TokenizerGoldenTests.goldens(name))
        let extra = TokenizerGoldenTests.precompiledSamples
        #expect(extra.count >= 40)
        let utf8 = try goldens.tensor("\(name)|normalized|utf8").scalars(as: UInt8.self)
        let offsets = try goldens.tensor("\(name)|normalized|offsets").scalars(as: Int32.self)
        let samples = textSamples + extra
        let failures = mismatches(in: samples, name, expected: { String(decoding: utf8[Int(offsets[$0])..<Int(offsets[$0 + 1])], as: UTF8.self).unicodeScalars.map { $0 } },
                                  got: { charsmap.apply(Array(samples[$0].unicodeScalars)) })
        #expect(failures == 0, "\(name): \(failures) of \(textSamples.count + extra.count) samples normalize differently")
    }

    /// The tokenizers with goldens for the extra samples.
    static let extraNames = tokenizerNames.filter { goldens($0)?.entry("\($0)|extra|ids") != nil }

    @Test(arguments: extraNames)
    func extraSamplesEqualTokenizers(_ name: String) throws {
        let goldens = try #require(TokenizerGoldenTests.goldens(name))
        let tokenizer = try Tokenizer(path: textFixtures + "tokenizers/\(name).json")
        let ids = try goldens.tensor("\(name)|extra|ids").scalars(as: UInt16.self)
        let offsets = try goldens.tensor("\(name)|extra|offsets").scalars(as: Int32.self)
        for (i, sample) in TokenizerGoldenTests.precompiledSamples.enumerated() {
            let expected = ids[Int(offsets[i])..<Int(offsets[i + 1])].map { Int32($0) }
            #expect(tokenizer.encode(sample, addSpecial: true) == expected, "\(name) extra sample \(sample.debugDescription)")
        }
    }
}
