import Foundation
import Testing
import TesseraCore
@testable import TesseraImage

/// Every image of the shared third-party corpora (present on the team's machines, not in a user's clone):
/// an image or a clear error, never a crash. Pixel agreement with Pillow over the same files is measured by
/// tools/conformance/image_corpora.py and reported in docs/IMAGE-CONFORMANCE.md.
@Suite struct CorporaSweepTests {
    static let corpora = packageRoot + "/../shared/corpora"
    static let present = FileManager.default.fileExists(atPath: corpora + "/pngsuite")

    static func imageFiles() -> [String] {
        guard present, let names = try? FileManager.default.contentsOfDirectory(atPath: corpora) else { return [] }
        var files: [String] = []
        for corpus in names.sorted() where corpus == "pngsuite" || corpus.hasPrefix("jpeg_") {
            let root = corpora + "/" + corpus
            for case let relative as String in FileManager.default.enumerator(atPath: root) ?? FileManager.DirectoryEnumerator() {
                let lower = relative.lowercased()
                if lower.hasSuffix(".png") || lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg") || lower.hasSuffix(".mpo") {
                    files.append(root + "/" + relative)
                }
            }
        }
        return files.sorted()
    }

    @Test(.enabled(if: present, "../shared/corpora is not on this machine"))
    func everyCorpusImageDecodesOrFailsClearly() throws {
        let files = CorporaSweepTests.imageFiles()
        #expect(files.count > 500)
        var decoded = 0
        for path in files {
            for accept in [false, true] {
                var config = ImageConfig()
                config.acceptTruncated = accept
                do {
                    _ = try ImageDecoding.decode(path: path, config: config)
                    decoded += 1
                } catch let error as TesseraError {
                    #expect(error.path == path)
                    #expect(error.code.hasPrefix("image."), "\(path): \(error.code)")
                }
            }
        }
        #expect(decoded > 700)
    }
}
