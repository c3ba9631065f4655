import Foundation
import Testing
import TesseraCore
@testable import TesseraImage

/// Damaged and hostile inputs: each gives an image or a clear error, never a crash or a hang.
@Suite struct RobustnessTests {
    static let sources = [
        "pngsuite/basn2c08.png", "pngsuite/basi3p02.png", "pngsuite/basn6a16.png", "pngsuite/basi0g04.png",
        "pngsuite/tbbn3p08.png", "photos/chelsea.png",
        "jpeg/jpeg_libjpeg_turbo/testorig.jpg", "jpeg/jpeg_libjpeg_turbo/testimgp.jpg",
        "jpeg/jpeg_libjpeg_turbo/testimgari.jpg", "jpeg/jpeg_pillow_tests/pil_sample_cmyk.jpg",
        "jpeg/jpeg_pillow_tests/hopper_orientation_6.jpg", "jpeg/jpeg_libjpeg_turbo/testimggray.jpg",
        "webp/chelsea-lossy.webp", "webp/alpha-lossless.webp", "webp/animated.webp",
    ]

    /// One seeded mutation: truncation, flipped bytes, a random run, an insertion or a deletion.
    static func mutate(_ bytes: [UInt8], _ rng: inout SeededRandom) -> [UInt8] {
        var data = bytes
        switch rng.nextInt(below: 5) {
        case 0:
            data = Array(data.prefix(rng.nextInt(below: data.count)))
        case 1:
            for _ in 0..<(1 + rng.nextInt(below: 8)) {
                data[rng.nextInt(below: data.count)] ^= UInt8(1 << rng.nextInt(below: 8))
            }
        case 2:
            let start = rng.nextInt(below: data.count), length = min(1 + rng.nextInt(below: 64), data.count - start)
            for i in start..<(start + length) { data[i] = UInt8(truncatingIfNeeded: rng.next()) }
        case 3:
            let at = rng.nextInt(below: data.count)
            data.insert(contentsOf: (0..<(1 + rng.nextInt(below: 16))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
        default:
            let start = rng.nextInt(below: data.count), length = min(1 + rng.nextInt(below: 32), data.count - start)
            data.removeSubrange(start..<(start + length))
        }
        return data
    }

    @Test func thousandMutationsDecodeOrFailClearly() throws {
        let originals = try RobustnessTests.sources.map { try FilePath.readAll(imageFixtures + $0) }
        var rng = SeededRandom(seed: 20261127)
        var decoded = 0, refused = 0
        var codes: [String: Int] = [:]
        for index in 0..<1000 {
            let source = index % originals.count
            let data = RobustnessTests.mutate(originals[source], &rng)
            var config = ImageConfig()
            config.acceptTruncated = index % 3 == 0
            config.dctScaling = index % 2 == 0
            do {
                let (tensor, _) = try data.withUnsafeBytes { try ImageDecoding.decode(bytes: $0, config: config) }
                #expect(tensor.shape == [3, 64, 64])
                decoded += 1
            } catch let error as TesseraError {
                #expect(error.code.hasPrefix("image."), "mutation \(index) of \(RobustnessTests.sources[source]): \(error.code)")
                #expect(!error.message.isEmpty)
                codes[error.code, default: 0] += 1
                refused += 1
            }
        }
        #expect(decoded + refused == 1000)
        #expect(decoded > 100 && refused > 100, "both outcomes occur: \(decoded) decoded, \(refused) refused \(codes)")
    }

    /// A PNG whose header claims `width` x `height`, with correct CRCs and one tiny IDAT.
    static func pngClaiming(width: UInt32, height: UInt32) -> [UInt8] {
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let typed = Array(type.utf8) + body
            return be32(UInt32(body.count)) + typed + be32(crc32(typed))
        }
        let ihdr = be32(width) + be32(height) + [8, 2, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr)
            + chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]) + chunk("IEND", [])
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    @Test func hugePNGHeaderIsRefusedBeforeAllocation() throws {
        let data = RobustnessTests.pngClaiming(width: 100_000, height: 100_000)
        let error = try #require(throws: TesseraError.self) {
            try data.withUnsafeBytes { try ImageDecoding.decode(bytes: $0, config: ImageConfig()) }
        }
        #expect(error.code == "image.too-large")
        #expect(error.message.contains("100000x100000"))
    }

    @Test func hugeJPEGHeaderIsRefusedBeforeAllocation() throws {
        // testorig.jpg with its SOF0 frame size patched to 65500 x 65500 (libjpeg's own maximum).
        var data = try FilePath.readAll(imageFixtures + "jpeg/jpeg_libjpeg_turbo/testorig.jpg")
        let sof = try #require((0..<(data.count - 1)).first { data[$0] == 0xFF && data[$0 + 1] == 0xC0 })
        for (offset, byte) in [(5, 0xFF), (6, 0xDC), (7, 0xFF), (8, 0xDC)] as [(Int, UInt8)] { data[sof + offset] = byte }
        let error = try #require(throws: TesseraError.self) {
            try data.withUnsafeBytes { try ImageDecoding.decode(bytes: $0, config: ImageConfig()) }
        }
        #expect(error.code == "image.too-large")
        #expect(error.message.contains("65500x65500"))
    }

    @Test func fileSizeLimitIsCheckedBeforeReading() throws {
        let path = imageFixtures + "pngsuite/basn2c08.png"
        let error = try #require(throws: TesseraError.self) {
            try ImageDecoding.decode(path: path, config: ImageConfig(), maxFileBytes: 100)
        }
        #expect(error.code == "image.too-large")
        #expect(error.message.contains("over the limit of 100"))
        #expect(throws: Never.self) { try ImageDecoding.decode(path: path, config: ImageConfig(), maxFileBytes: 1 << 20) }
    }

    @Test func pixelLimitIsConfigurable() throws {
        var config = ImageConfig()
        config.maxPixels = 1000
        let error = try #require(throws: TesseraError.self) {
            try ImageDecoding.decode(path: imageFixtures + "pngsuite/basn2c08.png", config: config)
        }
        #expect(error.code == "image.too-large")
        config.maxPixels = 1024
        #expect(throws: Never.self) { try ImageDecoding.decode(path: imageFixtures + "pngsuite/basn2c08.png", config: config) }
    }

    @Test func emptyAndForeignDataAreClearErrors() throws {
        let empty = try #require(throws: TesseraError.self) {
            try [UInt8]().withUnsafeBytes { try ImageDecoding.decode(bytes: $0, config: ImageConfig()) }
        }
        #expect(empty.code == "image.empty")
        let text = Array("just some text, not an image".utf8)
        let foreign = try #require(throws: TesseraError.self) {
            try text.withUnsafeBytes { try ImageDecoding.decode(bytes: $0, config: ImageConfig()) }
        }
        #expect(foreign.code == "image.unknown-format")
    }

    @Test func formatIsChosenByContentNotExtension() throws {
        // jpg-size-6x6.jpg in the image-rs suite is really a PNG.
        let (_, info) = try ImageDecoding.decode(path: imageFixtures + "jpeg/jpeg_image_rs_decoder/jpg-size-6x6.jpg", config: ImageConfig())
        #expect(info.format == .png)
    }
}
