// The built-in models. `m1` is W2's model exactly (../shared/bench/WORKLOAD.md); `seed-conv` the image-only
// convolutional autoencoder this project grew from; `small` a quick joint model for the demo and tests.
// `tessera train --print-model NAME` writes any of them as a model file to start from.
import TesseraCore
import TesseraShards

public enum ModelPresets {
    public static let names = ["m1", "seed-conv", "small"]

    /// The preset `name`, sized for the dataset's inputs where the preset allows. `checkFixedShapes` false
    /// gives `m1` even for a dataset it does not fit (to print it as a file to edit).
    public static func spec(_ name: String, for manifest: DatasetManifest, checkFixedShapes: Bool = true) throws -> ModelSpec {
        func fail(_ message: String) -> TesseraError { TesseraError(stage: .config, code: "model.preset", "preset \(name): \(message)") }
        func imageShape() throws -> (Int, Int, Int) {
            guard let image = manifest.tensor("image"), image.shape.count == 3 else { throw fail("needs images of three axes in the dataset") }
            let shape = ModalityInput.modelShape(image)
            let (c, h, w) = (shape[0], shape[1], shape[2])
            guard h >= 4, w >= 4 else { throw fail("needs images of at least 4x4 (got \(h)x\(w))") }
            return (c, h, w)
        }
        func conv(_ out: Int, _ k: Int, _ s: Int, _ p: Int) -> LayerSpec { .conv2d(out: out, kernel: k, stride: s, padding: p) }
        func deconv(_ out: Int, _ k: Int, _ s: Int, _ p: Int, _ outputPadding: OutputPadding = .none) -> LayerSpec {
            .convTranspose2d(out: out, kernel: k, stride: s, padding: p, outputPadding: outputPadding)
        }
        // The image presets halve each side twice (rounding down) and double it twice on the way back; an odd
        // side at either stage is made up by one row or column of output padding, so any image from 4x4
        // comes back at its own size.
        func halvings(_ h: Int, _ w: Int) -> (quarter: (Int, Int), first: OutputPadding, second: OutputPadding) {
            let (h1, w1) = (h / 2, w / 2)
            return ((h1 / 2, w1 / 2), OutputPadding(height: h1 % 2, width: w1 % 2), OutputPadding(height: h % 2, width: w % 2))
        }
        let relu = LayerSpec.activation(.relu)
        switch name {
        case "m1":
            // M1 is fixed to W1's shapes; say so at once rather than through the first layer that does not fit.
            let expected: [(String, [Int])] = [("image", [3, 64, 64]), ("audio_mel", [64, 65]), ("text_ids", [32])]
            let mismatches = expected.compactMap { tensor, shape -> String? in
                guard let found = manifest.tensor(tensor) else { return "no \(tensor)" }
                let model = ModalityInput.modelShape(found)
                return model == shape ? nil : "\(tensor) \(model)"
            }
            guard mismatches.isEmpty || !checkFixedShapes else {
                throw fail("is W2's model for W1's shapes (image [3, 64, 64], audio_mel [64, 65], text_ids [32]); this dataset has "
                           + mismatches.joined(separator: ", ") + ". Use --preset small, or `--print-model m1` and edit the file")
            }
            let image = ModalitySpec(name: "image", input: "image", scale: .normalized,
                                     encoder: [conv(32, 4, 2, 1), relu, conv(64, 4, 2, 1), relu, .flatten, .linear(out: 256), relu],
                                     decoder: [.linear(out: 16384), relu, .reshape([64, 16, 16]), deconv(32, 4, 2, 1), relu, deconv(3, 4, 2, 1)],
                                     loss: .mse, weight: 1)
            let audio = ModalitySpec(name: "audio", input: "audio_mel", scale: .normalized,
                                     encoder: [.flatten, .linear(out: 512), relu, .linear(out: 256), relu],
                                     decoder: [.linear(out: 512), relu, .linear(out: 4160), .reshape([64, 65])], loss: .mse, weight: 1)
            let text = ModalitySpec(name: "text", input: "text_ids", scale: .normalized,
                                    encoder: [.embedding(vocabulary: 4096, dimension: 128), .linear(out: 256), relu],
                                    decoder: [.linear(out: 2048), relu, .reshape([32, 64]), .linear(out: 4096)], loss: .crossEntropy, weight: 1)
            return ModelSpec(name: "m1", modalities: [image, audio, text], fusion: .concat, code: 128, sharedWidth: 256, sharedActivation: .relu)
        case "seed-conv":
            let (c, h, w) = try imageShape()
            let (quarter, first, second) = halvings(h, w)
            let image = ModalitySpec(name: "image", input: "image", scale: .unit,
                                     encoder: [conv(64, 3, 1, 1), relu, .maxPool(kernel: 2, stride: 2), conv(64, 3, 1, 1), relu,
                                               .maxPool(kernel: 2, stride: 2), .flatten],
                                     decoder: [.reshape([64, quarter.0, quarter.1]), deconv(64, 2, 2, 0, first), relu, deconv(64, 2, 2, 0, second), relu,
                                               conv(c, 3, 1, 1), .activation(.sigmoid)],
                                     loss: .mse, weight: 1)
            return ModelSpec(name: "seed-conv", modalities: [image], fusion: .none, code: 0, sharedWidth: 0, sharedActivation: .relu)
        case "small":
            var modalities: [ModalitySpec] = []
            if manifest.tensor("image") != nil {
                let (c, h, w) = try imageShape()
                let (quarter, first, second) = halvings(h, w)
                modalities.append(ModalitySpec(name: "image", input: "image", scale: .normalized,
                                               encoder: [conv(16, 4, 2, 1), relu, conv(32, 4, 2, 1), relu, .flatten, .linear(out: 128), relu],
                                               decoder: [.linear(out: 32 * quarter.0 * quarter.1), relu, .reshape([32, quarter.0, quarter.1]),
                                                         deconv(16, 4, 2, 1, first), relu, deconv(c, 4, 2, 1, second)],
                                               loss: .mse, weight: 1))
            }
            if let mel = manifest.tensor("audio_mel") ?? manifest.tensor("audio") {
                let count = mel.shape.reduce(1, *)
                modalities.append(ModalitySpec(name: "audio", input: mel.name, scale: .normalized,
                                               encoder: [.flatten, .linear(out: 256), relu, .linear(out: 128), relu],
                                               decoder: [.linear(out: 256), relu, .linear(out: count), .reshape(mel.shape)], loss: .mse, weight: 1))
            }
            if let ids = manifest.tensor("text_ids"), let length = ids.shape.first {
                let vocabulary = ids.extra["tokenizer"]?["vocabularySize"]?.intValue ?? 0
                guard vocabulary > 0 else { throw fail("the dataset's text has no tokenizer size (pre-tokenised ids); write a model file") }
                modalities.append(ModalitySpec(name: "text", input: "text_ids", scale: .normalized,
                                               encoder: [.embedding(vocabulary: vocabulary, dimension: 64), .linear(out: 128), relu],
                                               decoder: [.linear(out: length * 32), relu, .reshape([length, 32]), .linear(out: vocabulary)],
                                               loss: .crossEntropy, weight: 1))
            }
            guard !modalities.isEmpty else { throw fail("the dataset has no image, audio or text tensors") }
            return ModelSpec(name: "small", modalities: modalities, fusion: modalities.count == 1 ? .none : .concat,
                             code: modalities.count == 1 ? 0 : 64, sharedWidth: modalities.count == 1 ? 0 : 128, sharedActivation: .relu)
        default:
            throw TesseraError(stage: .config, code: "model.preset", "unknown preset \"\(name)\" (\(names.joined(separator: ", ")))")
        }
    }
}
