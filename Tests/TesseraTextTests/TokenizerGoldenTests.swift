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

let tokenizerNames: [String] = {
    struct List: Decodable { let tokenizers: [String] }
    guard let data = FileManager.default.contents(atPath: textFixtures + "goldens.json"),
          let list = try? JSONDecoder().decode(List.self, from: data) else { return [] }
    return list.tokenizers
}()

/// Exact ids against Hugging Face `tokenizers` (tools/fixtures/make_text_goldens.py) on every sample.
@Suite struct TokenizerGoldenTests {
    static let goldens = try? SafetensorsFile(path: textFixtures + "goldens.safetensors")

    @Test func fixturesArePresent() {
        #expect(textSamples.count >= 2000)
        #expect(tokenizerNames.count >= 5)
    }

    @Test(arguments: tokenizerNames)
    func idsEqualTokenizers(_ name: String) throws {
        let tokenizer = try Tokenizer(path: textFixtures + "tokenizers/\(name).json")
        let goldens = try #require(TokenizerGoldenTests.goldens)
        for mode in ["plain", "special"] {
            guard goldens.entry("\(name)|\(mode)|ids") != nil else { continue }
            let ids = try goldens.tensor("\(name)|\(mode)|ids").scalars(as: UInt16.self)
            let offsets = try goldens.tensor("\(name)|\(mode)|offsets").scalars(as: Int32.self)
            var failures = 0
            for (i, sample) in textSamples.enumerated() {
                let expected = ids[Int(offsets[i])..<Int(offsets[i + 1])].map { Int32($0) }
                let got = tokenizer.encode(sample, addSpecial: mode == "special")
                if got != expected {
                    failures += 1
                    if failures <= 3 {
                        Issue.record("\(name) \(mode) sample \(i) \(sample.debugDescription.prefix(120)): got \(got.prefix(40)), expected \(expected.prefix(40))")
                    }
                }
            }
            #expect(failures == 0, "\(name) \(mode): \(failures) of \(textSamples.count) samples differ")
        }
    }
}
