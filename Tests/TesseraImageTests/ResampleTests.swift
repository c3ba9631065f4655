import CTesseraKernels
import Testing
import TesseraCore
@testable import TesseraImage

/// The optimised resampler gives exactly the bytes of the straightforward reference one.
@Suite struct ResampleTests {
    @Test func fastEqualsReferenceOverManyShapes() {
        var rng = SeededRandom(seed: 5)
        for trial in 0..<200 {
            let components = [1, 2, 3, 4][trial % 4]
            let width = 1 + rng.nextInt(below: 70), height = 1 + rng.nextInt(below: 70)
            let image = RawImage(width: width, height: height, components: components,
                                 pixels: (0..<(width * height * components)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            let outWidth = 1 + rng.nextInt(below: 90), outHeight = 1 + rng.nextInt(below: 90)
            let x0 = rng.nextInt(below: outWidth), y0 = rng.nextInt(below: outHeight)
            let window = (x: x0..<(x0 + 1 + rng.nextInt(below: outWidth - x0)), y: y0..<(y0 + 1 + rng.nextInt(below: outHeight - y0)))
            let filter: ImageConfig.Filter = trial % 2 == 0 ? .bilinear : .box
            let fast = image.resampled(toWidth: outWidth, height: outHeight, window: window, filter: filter)
            let reference = image.resampledReference(toWidth: outWidth, height: outHeight, window: window, filter: filter)
            #expect(fast.pixels == reference.pixels, "trial \(trial): \(width)x\(height)x\(components) -> \(outWidth)x\(outHeight) \(window)")
            #expect(fast.width == window.x.count && fast.height == window.y.count)
        }
    }

    /// The C row kernel's scalar fallback (for CPUs without SSE4.1) and its SSE4.1 path give the bytes of
    /// its widest path (AVX2 where the CPU has it), over widths that end rows on every byte alignment.
    @Test func rgbRowKernelScalarEqualsSIMD() {
        var rng = SeededRandom(seed: 11)
        for trial in 0..<600 {
            let width = 1 + rng.nextInt(below: trial < 300 ? 300 : 700), outWidth = 1 + rng.nextInt(below: 120)
            let axis = ResampleAxis(inSize: width, outSize: outWidth, filter: trial % 3 == 0 ? .box : .bilinear, window: 0..<outWidth)
            let row = (0..<(width * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            func run(allowSIMD: Int32) -> [UInt8] {
                var result = [UInt8](repeating: 0, count: outWidth * 3)
                tessera_resample_row_rgb(row, width, &result, axis.first, axis.taps, axis.weights, axis.kernelSize, outWidth, allowSIMD)
                return result
            }
            let widest = run(allowSIMD: 1), sse41 = run(allowSIMD: 2), scalar = run(allowSIMD: 0)
            #expect(widest == scalar, "trial \(trial): \(width) -> \(outWidth)")
            #expect(sse41 == scalar, "trial \(trial): \(width) -> \(outWidth)")
        }
    }

    @Test func windowOfAResizeEqualsCropOfTheFullResize() {
        var rng = SeededRandom(seed: 9)
        let image = RawImage(width: 51, height: 37, components: 3, pixels: (0..<(51 * 37 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        let full = image.resampled(toWidth: 23, height: 17, window: (0..<23, 0..<17), filter: .bilinear)
        let part = image.resampled(toWidth: 23, height: 17, window: (5..<12, 3..<9), filter: .bilinear)
        var crop: [UInt8] = []
        for y in 3..<9 { crop += full.pixels[(y * 23 + 5) * 3..<(y * 23 + 12) * 3] }
        #expect(part.pixels == crop)
    }
}
