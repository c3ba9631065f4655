import Foundation
import Testing
@testable import TesseraText

/// UnicodeScripts splits where `tokenizers` splits (tools/fixtures/make_unicode_scripts.py): over every code
/// point in order, and over 20,000 random ones.
@Suite struct UnicodeScriptsTests {
    struct Goldens: Decodable {
        let all_code_points_starts: [Int]
        let random_text: String
        let random_starts: [Int]
    }

    @Test func piecesStartWhereTokenizersStartThem() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: textFixtures + "unicode-scripts-goldens.json"))
        let goldens = try JSONDecoder().decode(Goldens.self, from: data)
        let everything = (0..<0x110000).compactMap { Unicode.Scalar(UInt32($0)) }
        #expect(UnicodeScripts.pieceStarts(everything) == goldens.all_code_points_starts)
        let random = Array(goldens.random_text.unicodeScalars)
        #expect(random.count == 20000)
        #expect(UnicodeScripts.pieceStarts(random) == goldens.random_starts)
        // Leading spaces are dropped and trailing ones kept, as tokenizers does.
        let split = PreTokenizer.unicodeScripts.apply([Piece(text: Array("  ab 世界 x".unicodeScalars), atStart: true)])
        #expect(split.map(\.text.string) == ["ab ", "世界 ", "x"])
    }
}
