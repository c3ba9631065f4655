// `tessera decode`: one file through exactly the code path ingest uses, with a one-line summary.
import ArgumentParser
import TesseraAudio
import TesseraCore
import TesseraImage
import TesseraText

struct DecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode one media file into tensors exactly as ingest would, and describe it."
    )

    @Argument(help: "An image (PNG, JPEG, WebP) or audio file (anything libsndfile reads), recognised by content, or text (.txt) or token ids (.ids, .tokens).")
    var path: String

    @Option(name: .long, help: "Write the tensors to this safetensors file.")
    var out: String?

    @Option(name: .long, help: "Seed for --audio-crop random.")
    var seed: UInt64 = 0

    @OptionGroup(title: "Image options")
    var image: ImageOptions

    @OptionGroup(title: "Audio options")
    var audio: AudioOptions

    @OptionGroup(title: "Text options")
    var text: TextOptions

    @Flag(name: .long, help: "Print the text's tokens as strings.")
    var show = false

    func run() throws {
        try reportingErrors {
            let modality = try MediaKind.detect(path: path)
            var tensors: [(name: String, tensor: Tensor)] = []
            var metadata = ["source": path]
            switch modality {
            case .image:
                let config = try image.config()
                let (tensor, info) = try ImageDecoding.decode(path: path, config: config)
                Console.out("\(path): \(info.summary(dtype: config.dtype))")
                tensors.append(("image", tensor))
                metadata["image_config"] = try encodeJSON(config)
            case .audio:
                let config = try audio.config()
                let decoded = try AudioDecoding.decode(path: path, config: config, cropSeed: seed)
                var line = "\(path): \(decoded.info.summary)"
                if let waveform = decoded.waveform {
                    tensors.append(("audio", waveform))
                    line += " -> audio \(shapeText(waveform.shape))"
                }
                if let mel = decoded.mel {
                    tensors.append(("audio_mel", mel))
                    line += " -> audio_mel \(shapeText(mel.shape))"
                }
                Console.out(line)
                metadata["audio_config"] = try encodeJSON(config)
            case .text:
                let config = try text.config()
                let encoder = try TextEncoder(config: config)
                let encoded = try encoder.encode(path: path)
                var line = "\(path): \(encoded.untruncatedLength) tokens (\(encoder.description.kind)"
                line += encoder.description.path.map { " \($0)" } ?? ""
                line += ") -> text_ids [\(config.length)], text_len \(encoded.length)"
                if encoded.replacedInvalidBytes > 0 { line += " (\(encoded.replacedInvalidBytes) invalid UTF-8 sequences replaced by U+FFFD)" }
                Console.out(line)
                if show { Console.out(encoded.tokens.map { $0.debugDescription }.joined(separator: " ")) }
                tensors.append(("text_ids", encoded.ids))
                tensors.append(("text_len", try Tensor(shape: [], scalars: [Int32(encoded.length)])))
                metadata["text_config"] = try encodeJSON(config)
                metadata["tokenizer"] = try encodeJSON(encoder.description)
            }
            if let out {
                try SafetensorsWriter.write(tensors, metadata: metadata, to: out)
                Console.out("wrote \(tensors.map(\.name).joined(separator: ", ")) to \(out)")
            }
        }
    }
}

func shapeText(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

/// The modality of a file: text by its extension (text has no signature); images by content (PNG/JPEG/WebP
/// signatures) or extension; anything else is offered to libsndfile, which recognises audio by content.
enum MediaKind {
    case image, audio, text

    static let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]
    static let textExtensions: Set<String> = ["txt", "ids", "tokens"]

    static func detect(path: String) throws -> MediaKind {
        if textExtensions.contains(FilePath.pathExtension(path)) { return .text }
        let head = try FilePath.readPrefix(path, count: 16)
        if head.withUnsafeBytes({ ImageFormat.sniff($0) }) != nil { return .image }
        return imageExtensions.contains(FilePath.pathExtension(path)) ? .image : .audio
    }
}
