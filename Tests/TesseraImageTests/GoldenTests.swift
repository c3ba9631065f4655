import Foundation
import Testing
import TesseraCore
@testable import TesseraImage

/// Every golden case: Tessera against Pillow's pixels (PngSuite exactly, JPEG within 1, resize within 1).
@Suite struct GoldenTests {
    static let goldens: SafetensorsFile? = try? SafetensorsFile(path: imageFixtures + "goldens.safetensors")

    func config(_ golden: GoldenCase, accept: Bool = false) throws -> ImageConfig {
        let data = try JSONEncoder().encode(golden.config)
        var config = try JSONDecoder().decode(ImageConfig.self, from: data)
        config.layout = .hwc
        config.acceptTruncated = accept
        return config
    }

    @Test func goldensArePresent() {
        #expect(goldenCases.count > 250)
        #expect(GoldenTests.goldens != nil)
    }

    @Test(arguments: goldenCases)
    func matchesPillow(_ golden: GoldenCase) throws {
        let path = imageFixtures + golden.file
        switch golden.expect {
        case "error", "unsupported":
            do {
                let (_, info) = try ImageDecoding.decode(path: path, config: try config(golden))
                Issue.record("\(golden.name) decoded (\(info.summary(dtype: .uint8))) but Pillow/libjpeg reject it")
            } catch let error as TesseraError {
                #expect(error.path == path)
                #expect(error.code.hasPrefix("image."))
                if golden.expect == "unsupported" { #expect(error.code == "image.unsupported", "\(error)") }
            }
        case "pixels", "pixels-when-accepted":
            if golden.expect == "pixels-when-accepted" {
                #expect(throws: TesseraError.self, "strict decoding refuses libjpeg's corrupt-data warnings") {
                    try ImageDecoding.decode(path: path, config: try config(golden))
                }
            }
            let (tensor, _) = try ImageDecoding.decode(path: path, config: try config(golden, accept: golden.expect != "pixels"))
            let expected = try #require(try GoldenTests.goldens?.tensor(golden.name))
            let shape = expected.shape.last == 1 && tensor.shape.count == 3 ? expected.shape : expected.shape
            #expect(tensor.shape == shape, "\(golden.name): shape \(tensor.shape) vs Pillow \(expected.shape)")
            guard tensor.shape == shape else { return }
            let diff = try Tensor.maxAbsDifference(tensor, expected)
            #expect(diff <= Double(golden.tolerance), "\(golden.name): max difference \(diff) > \(golden.tolerance)")
        default:
            Issue.record("unknown expectation \(golden.expect)")
        }
    }
}
