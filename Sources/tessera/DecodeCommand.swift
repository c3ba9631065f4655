// `tessera decode`: one file through exactly the code path ingest uses, with a one-line summary.
import ArgumentParser
import TesseraCore
import TesseraImage

struct DecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode one media file into tensors exactly as ingest would, and describe it."
    )

    @Argument(help: "An image (PNG or JPEG, recognised by content).")
    var path: String

    @Option(name: .long, help: "Write the tensors to this safetensors file.")
    var out: String?

    @OptionGroup(title: "Image options")
    var image: ImageOptions

    func run() throws {
        try reportingErrors {
            let config = try image.config()
            let (tensor, info) = try ImageDecoding.decode(path: path, config: config)
            Console.out("\(path): \(info.summary(dtype: config.dtype))")
            if let out {
                try SafetensorsWriter.write([("image", tensor)], metadata: ["source": path, "image_config": try encodeJSON(config)], to: out)
                Console.out("wrote image to \(out)")
            }
        }
    }
}
