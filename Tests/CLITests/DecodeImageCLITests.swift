import Foundation
import Testing
import TesseraCore
import TesseraTestSupport

@Suite struct DecodeImageCLITests {
    let images = packageRoot + "/fixtures/images/"

    @Test func summaryLineAndTensorFile() throws {
        let out = try temporaryFolder() + "/x.safetensors"
        let path = images + "jpeg/jpeg_pillow_tests/hopper_orientation_6.jpg"
        let result = try tessera(["decode", path, "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "\(path): JPEG 128x128 YCbCr, orientation 6, DCT 4/8 -> uint8 [3, 64, 64]\nwrote image to \(out)\n")
        let file = try SafetensorsFile(path: out)
        #expect(file.names == ["image"])
        #expect(try file.tensor("image").shape == [3, 64, 64])
    }

    @Test func optionsReachTheTransform() throws {
        let out = try temporaryFolder() + "/x.safetensors"
        let result = try tessera(["decode", images + "photos/chelsea.png", "--out", out, "--image-resize", "exact",
                                  "--image-width", "40", "--image-height", "30", "--image-channels", "1",
                                  "--image-layout", "hwc", "--image-dtype", "float32", "--image-mean", "0.5", "--image-std", "0.25"])
        #expect(result.status == 0, "\(result.stderr)")
        let tensor = try SafetensorsFile(path: out).tensor("image")
        #expect(tensor.dtype == .float32)
        #expect(tensor.shape == [30, 40, 1])
        let values = try tensor.scalars(as: Float.self)
        #expect(values.allSatisfy { $0 >= -2.0001 && $0 <= 2.0001 })
    }

    @Test func badInputIsOneLineOnStderr() throws {
        let folder = try temporaryFolder()
        let fake = folder + "/not-really.jpg"
        try Data("hello".utf8).write(to: URL(fileURLWithPath: fake))
        let result = try tessera(["decode", fake])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == "tessera: \(fake): not a PNG, JPEG or WebP file (starts with 68 65 6c 6c 6f)\n")
        let corrupt = try tessera(["decode", images + "pngsuite/xcsn0g01.png"])
        #expect(corrupt.status == 1)
        #expect(corrupt.stderr == "tessera: \(images)pngsuite/xcsn0g01.png: corrupt PNG: IDAT: CRC error\n")
        let twelve = try tessera(["decode", images + "jpeg/jpeg_libjpeg_turbo/monkey12.jpg"])
        #expect(twelve.status == 1)
        #expect(twelve.stderr.contains("unsupported JPEG"))
        #expect(twelve.stderr.contains("Unsupported JPEG data precision 12"))
    }

    @Test func invalidOptionsAreRefused() throws {
        let result = try tessera(["decode", images + "photos/chelsea.png", "--image-channels", "2"])
        #expect(result.status == 1)
        #expect(result.stderr == "tessera: --image-channels must be 1 or 3, not 2\n")
    }
}
