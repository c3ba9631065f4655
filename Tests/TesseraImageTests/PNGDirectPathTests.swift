import Foundation
import Testing
import TesseraCore
@testable import TesseraImage

/// The direct PNG paths (whole-image libdeflate inflate, zlib inflate in strips; SSE4.1 unfiltering)
/// against libpng's own rows: the same pixels for every fixture PNG, and the same outcome for damaged ones.
@Suite struct PNGDirectPathTests {
    static let pngFixtures: [String] = {
        let suite = (try? FileManager.default.contentsOfDirectory(atPath: imageFixtures + "pngsuite")) ?? []
        return suite.filter { $0.hasSuffix(".png") }.sorted().map { "pngsuite/" + $0 } + ["photos/chelsea.png"]
    }()

    enum Outcome {
        case image(RawImage, partial: Bool)
        case failed
    }

    /// Decodes `bytes` through libpng and through each direct path (the fastest, and the zlib strips) and
    /// expects every direct outcome to agree with libpng's; returns libpng's and the direct outcomes.
    @discardableResult
    static func expectDirectPathsMatchLibpng(_ bytes: [UInt8], keepAlpha: Bool, acceptPartial: Bool,
                                             _ label: String) -> (reference: Outcome, direct: [Outcome]) {
        let reference = decode(bytes, keepAlpha: keepAlpha, acceptPartial: acceptPartial, rows: .libpng)
        let direct = [PNGRowPath.fastest, .zlibStrips].map { path in
            let outcome = decode(bytes, keepAlpha: keepAlpha, acceptPartial: acceptPartial, rows: path)
            let difference = difference(outcome, reference)
            #expect(difference == nil, "\(label), \(path): \(difference ?? "")")
            return outcome
        }
        return (reference, direct)
    }

    static func decode(_ bytes: [UInt8], keepAlpha: Bool, acceptPartial: Bool, rows: PNGRowPath) -> Outcome {
        bytes.withUnsafeBytes { raw in
            guard let decoder = try? PNGDecoder(bytes: raw),
                  let result = try? decoder.decode(keepAlpha: keepAlpha, grey16: .pillow, acceptPartial: acceptPartial,
                                                   rows: rows) else { return .failed }
            return .image(result.image, partial: result.problem != nil)
        }
    }

    /// Why `direct` differs from `reference`, or nil. A partial image's rows not reached are zeros, and the
    /// two paths read a damaged file in different pieces (libpng 8 kB at a time, the direct path all that
    /// is there), so partial images are compared on the rows both reached, and the direct path may keep
    /// rows where libpng kept none.
    static func difference(_ direct: Outcome, _ reference: Outcome) -> String? {
        switch (direct, reference) {
        case (.failed, .failed):
            return nil
        case (.image(let a, let aPartial), .image(let b, let bPartial)):
            guard a.width == b.width, a.height == b.height, a.components == b.components else {
                return "shape \(a.width)x\(a.height)x\(a.components) vs \(b.width)x\(b.height)x\(b.components)"
            }
            guard aPartial == bPartial else { return "partial \(aPartial) vs \(bPartial)" }
            if a.pixels == b.pixels { return nil }
            guard aPartial else { return "pixels differ" }
            let rowBytes = a.width * a.components
            for y in 0..<a.height {
                let rowA = a.pixels[y * rowBytes..<(y + 1) * rowBytes], rowB = b.pixels[y * rowBytes..<(y + 1) * rowBytes]
                if rowA != rowB && rowA.contains(where: { $0 != 0 }) && rowB.contains(where: { $0 != 0 }) {
                    return "row \(y) differs"
                }
            }
            return nil
        case (.failed, .image):
            return "direct failed, libpng decoded"
        case (.image(_, partial: true), .failed):
            return nil  // the direct path got rows out of a piece libpng would not start on
        case (.image, .failed):
            return "direct decoded, libpng failed"
        }
    }

    @Test func everyFixturePNGMatchesLibpng() throws {
        #expect(PNGDirectPathTests.pngFixtures.count > 150)
        for name in PNGDirectPathTests.pngFixtures {
            let bytes = try FilePath.readAll(imageFixtures + name)
            for keepAlpha in [false, true] {
                PNGDirectPathTests.expectDirectPathsMatchLibpng(bytes, keepAlpha: keepAlpha, acceptPartial: false,
                                                                "\(name), keepAlpha \(keepAlpha)")
            }
        }
    }

    /// Each path is taken where it should be: undamaged 8-bit files inflate whole, a damaged one in zlib
    /// strips, interlaced ones through libpng.
    @Test func eachRowPathIsTakenWhereItShouldBe() throws {
        func rowsUsed(_ bytes: [UInt8]) throws -> PNGRowPath {
            try bytes.withUnsafeBytes { raw in
                let decoder = try PNGDecoder(bytes: raw)
                _ = try decoder.decode(keepAlpha: false, grey16: .pillow, acceptPartial: true)
                return decoder.rowsUsed
            }
        }
        let photo = try FilePath.readAll(imageFixtures + "photos/chelsea.png")
        #expect(try rowsUsed(photo) == .wholeImage)
        #expect(try rowsUsed(FilePath.readAll(imageFixtures + "pngsuite/basn6a08.png")) == .wholeImage)
        #expect(try rowsUsed(Array(photo[..<(photo.count * 2 / 3)])) == .zlibStrips)
        #expect(try rowsUsed(FilePath.readAll(imageFixtures + "pngsuite/basi2c08.png")) == .libpng)
        // Several IDATs and the file ending right after the last one's CRC (no IEND): still whole, and
        // nothing is read past the end.
        let endless = Array(photo.dropLast(12))
        #expect(try rowsUsed(endless) == .wholeImage)
        let reference = PNGDirectPathTests.decode(photo, keepAlpha: false, acceptPartial: false, rows: .libpng)
        let cut = PNGDirectPathTests.decode(endless, keepAlpha: false, acceptPartial: true, rows: .fastest)
        #expect(PNGDirectPathTests.difference(cut, reference) == nil)
    }

    /// Images with every filter type on 1-4 samples per pixel: smooth gradients with seeded noise, written
    /// by libpng (which picks a filter per row), tall enough for several strips.
    @Test func everyFilterAndPixelSizeMatchesLibpng() throws {
        var rng = SeededRandom(seed: 99)
        for components in 1...4 {
            for (width, height) in [(1, 1), (3, 700), (257, 300), (64, 2_000)] {
                var pixels = [UInt8](repeating: 0, count: width * height * components)
                for y in 0..<height {
                    for x in 0..<width {
                        for k in 0..<components {
                            let smooth = (x * 3 + y * 2 + k * 40) & 0xFF
                            pixels[(y * width + x) * components + k] = UInt8(truncatingIfNeeded: smooth + rng.nextInt(below: 9))
                        }
                    }
                }
                let bytes = try PNGEncoder.encode(RawImage(width: width, height: height, components: components, pixels: pixels))
                for keepAlpha in [false, true] {
                    let outcomes = PNGDirectPathTests.expectDirectPathsMatchLibpng(
                        bytes, keepAlpha: keepAlpha, acceptPartial: false, "\(width)x\(height)x\(components), keepAlpha \(keepAlpha)")
                    for direct in outcomes.direct {
                        if keepAlpha, case .image(let image, _) = direct { #expect(image.pixels == pixels) }
                    }
                }
            }
        }
    }

    /// Damaged 8-bit non-interlaced files (the direct path's class): both paths decode the same pixels,
    /// including the rows kept from a truncated file, or both refuse.
    @Test func mutatedPNGsMatchLibpng() throws {
        let sources = ["pngsuite/basn0g08.png", "pngsuite/basn2c08.png", "pngsuite/basn4a08.png",
                       "pngsuite/basn6a08.png", "pngsuite/f04n2c08.png", "pngsuite/z09n2c08.png", "photos/chelsea.png"]
        let originals = try sources.map { try FilePath.readAll(imageFixtures + $0) }
        var rng = SeededRandom(seed: 7_301)
        var decoded = 0, failed = 0
        for index in 0..<1000 {
            let bytes = RobustnessTests.mutate(originals[index % originals.count], &rng)
            let keepAlpha = index % 4 == 1, acceptPartial = index % 2 == 0
            let reference = PNGDirectPathTests.expectDirectPathsMatchLibpng(
                bytes, keepAlpha: keepAlpha, acceptPartial: acceptPartial, "mutation \(index) of \(sources[index % sources.count])").reference
            if case .failed = reference { failed += 1 } else { decoded += 1 }
        }
        #expect(decoded > 100 && failed > 100, "both outcomes occur: \(decoded) decoded, \(failed) failed")
    }

    /// Every PNG of the shared corpora (photos from skimage and others among them) when present.
    @Test(.enabled(if: CorporaSweepTests.present, "../shared/corpora is not on this machine"))
    func everyCorpusPNGMatchesLibpng() throws {
        var root = packageRoot + "/../shared/corpora"
        var files: [String] = []
        for case let relative as String in FileManager.default.enumerator(atPath: root) ?? FileManager.DirectoryEnumerator()
        where relative.lowercased().hasSuffix(".png") {
            files.append(relative)
        }
        root += "/"
        #expect(files.count > 200)
        for name in files.sorted() {
            let bytes = try FilePath.readAll(root + name)
            PNGDirectPathTests.expectDirectPathsMatchLibpng(bytes, keepAlpha: false, acceptPartial: false, name)
        }
    }
}
