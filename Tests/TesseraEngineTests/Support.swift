import Foundation
import TesseraCore
@testable import TesseraEngine

let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// fixtures/engine/goldens.{json,safetensors}, made by tools/fixtures/make_engine_goldens.py with PyTorch.
struct EngineGoldens: Sendable {
    struct Case: Decodable, Sendable {
        let kind: String
        let `in`: Int?
        let out: Int?
        let kernel: Int?
        let stride: Int?
        let padding: Int?
        /// One number for both axes, or [height, width].
        let output_padding: OutputPadding?
        let scale: Int?
        let activation: String?
        let x_shape: [Int]?
        let y_shape: [Int]?
    }
    struct OutputPadding: Decodable, Sendable {
        let height: Int, width: Int
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let both = try? container.decode(Int.self) {
                (height, width) = (both, both)
            } else {
                let pair = try container.decode([Int].self)
                guard pair.count == 2 else { throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected [h, w]") }
                (height, width) = (pair[0], pair[1])
            }
        }
    }
    struct Index: Decodable { let cases: [String: Case] }

    let cases: [String: Case]
    let file: SafetensorsFile

    static let shared: EngineGoldens? = {
        let folder = packageRoot + "/fixtures/engine/"
        guard let json = FileManager.default.contents(atPath: folder + "goldens.json"),
              let index = try? JSONDecoder().decode(Index.self, from: json),
              let file = try? SafetensorsFile(path: folder + "goldens.safetensors") else { return nil }
        return EngineGoldens(cases: index.cases, file: file)
    }()

    func floats(_ name: String) throws -> [Float] { try file.tensor(name).scalars(as: Float.self) }
    func ints(_ name: String) throws -> [Int32] { try file.tensor(name).scalars(as: Int32.self) }
    func has(_ name: String) -> Bool { file.entry(name) != nil }

    /// Names of the parameters of a case, from the `CASE|param|NAME` tensors.
    func parameterNames(_ caseName: String) -> [String] {
        let prefix = caseName + "|param|"
        return file.entries.map(\.name).filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }.sorted()
    }
}

/// One layer wired to flat input/output buffers, the same for float32 (PyTorch parity) and float64
/// (gradient checks).
struct LayerHarness<T: EngineScalar> {
    let params: ParameterSet<T>
    let inputCount: Int
    let outputCount: Int
    /// y = f(x).
    let forward: (UnsafePointer<T>, UnsafeMutablePointer<T>) -> Void
    /// dx from x, y and dy; accumulates parameter gradients.
    let backward: (UnsafePointer<T>, UnsafePointer<T>, UnsafePointer<T>, UnsafeMutablePointer<T>) -> Void
    /// Does the function have kinks (ReLU, max-pool) that finite differences must stay away from?
    let hasKinks: Bool
}

enum HarnessError: Error { case unknownKind(String) }

/// Builds the layer a golden case describes. Workspaces are allocated once here, as a model would.
func makeHarness<T: EngineScalar>(_ c: EngineGoldens.Case, _: T.Type) throws -> LayerHarness<T> {
    let params = ParameterSet<T>()
    let xShape = c.x_shape ?? [], yShape = c.y_shape ?? []
    let batch = xShape.first ?? 1
    let inputCount = xShape.reduce(1, *), outputCount = yShape.reduce(1, *)
    switch c.kind {
    case "linear":
        let layer = Linear(params, "layer", in: c.in ?? 0, out: c.out ?? 0)
        params.finalize()
        return LayerHarness(params: params, inputCount: inputCount, outputCount: outputCount,
                            forward: { x, y in layer.forward(x, y, batch: batch, params) },
                            backward: { x, _, dy, dx in layer.backward(x, dy, dx, batch: batch, params) }, hasKinks: false)
    case "conv2d":
        let layer = Conv2d(params, "layer", in: c.in ?? 0, out: c.out ?? 0, kernel: c.kernel ?? 1, stride: c.stride ?? 1,
                           padding: c.padding ?? 0, inputHeight: xShape[2], inputWidth: xShape[3])
        return convolutionHarness(layer, params, batch: batch, inputCount: inputCount, outputCount: outputCount)
    case "convtranspose2d":
        let layer = ConvTranspose2d(params, "layer", in: c.in ?? 0, out: c.out ?? 0, kernel: c.kernel ?? 1, stride: c.stride ?? 1,
                                    padding: c.padding ?? 0, outputPadding: (c.output_padding?.height ?? 0, c.output_padding?.width ?? 0), inputHeight: xShape[2], inputWidth: xShape[3])
        return convolutionHarness(layer, params, batch: batch, inputCount: inputCount, outputCount: outputCount)
    case "maxpool":
        let layer = MaxPool2d<T>(channels: xShape[1], inputHeight: xShape[2], inputWidth: xShape[3], kernel: c.kernel ?? 2,
                                 stride: c.stride, maxBatch: batch)
        params.finalize()
        return LayerHarness(params: params, inputCount: inputCount, outputCount: outputCount,
                            forward: { x, y in layer.forward(x, y, batch: batch) },
                            backward: { _, _, dy, dx in layer.backward(dy, dx, batch: batch) }, hasKinks: true)
    case "upsample":
        let layer = Upsample<T>(channels: xShape[1], inputHeight: xShape[2], inputWidth: xShape[3], scale: c.scale ?? 2)
        params.finalize()
        return LayerHarness(params: params, inputCount: inputCount, outputCount: outputCount,
                            forward: { x, y in layer.forward(x, y, batch: batch) },
                            backward: { _, _, dy, dx in layer.backward(dy, dx, batch: batch) }, hasKinks: false)
    case "activation":
        guard let activation = Activation(rawValue: c.activation ?? "") else { throw HarnessError.unknownKind(c.activation ?? "") }
        params.finalize()
        return LayerHarness(params: params, inputCount: inputCount, outputCount: outputCount,
                            forward: { x, y in activation.forward(x, y, count: inputCount) },
                            backward: { _, y, dy, dx in activation.backward(output: y, dy, dx, count: inputCount) },
                            hasKinks: activation == .relu || activation == .leakyRelu)
    default:
        throw HarnessError.unknownKind(c.kind)
    }
}

/// A convolution with its workspace allocated once, as a model would.
func convolutionHarness<Layer: ConvolutionLayer>(_ layer: Layer, _ params: ParameterSet<Layer.Scalar>, batch: Int, inputCount: Int,
                                                 outputCount: Int) -> LayerHarness<Layer.Scalar> {
    params.finalize()
    let arena = Arena<Layer.Scalar>()
    let slot = arena.reserve(layer.workspace(batch: batch))
    arena.finalize()
    return LayerHarness(params: params, inputCount: inputCount, outputCount: outputCount,
                        forward: { x, y in layer.forward(x, y, batch: batch, params, workspace: arena.pointer(slot)) },
                        backward: { x, _, dy, dx in layer.backward(x, dy, dx, accumulate: false, batch: batch, params, workspace: arena.pointer(slot)) },
                        hasKinks: false)
}

/// Relative error with a floor, so that gradients near zero are compared absolutely.
func relativeError(_ a: Double, _ b: Double, floor: Double) -> Double {
    abs(a - b) / max(abs(a), abs(b), floor)
}

/// The largest element-wise relative difference, each element measured against its own magnitude with a
/// floor of 1% of the reference tensor's largest magnitude (so elements that cancel to near zero, whose
/// float32 rounding is relative to their inputs, are not held to an impossible bound).
func tensorRelativeError(_ got: [Float], _ want: [Float]) -> Double {
    guard got.count == want.count else { return .infinity }
    let floor = max(want.map { abs(Double($0)) }.max() ?? 0, 1e-12) * 1e-2
    var worst = 0.0
    for (a, b) in zip(got, want) {
        let d = abs(Double(a) - Double(b)) / max(abs(Double(b)), floor)
        if d.isNaN { return .infinity }
        worst = max(worst, d)
    }
    return worst
}
