// The text transform options, shared by `decode` and `ingest`; they map onto `TextConfig`.
import ArgumentParser
import TesseraCore
import TesseraText

extension TextConfig.Truncation: ExpressibleByArgument {}
extension TextConfig.InvalidUTF8: ExpressibleByArgument {}

struct TextOptions: ParsableArguments {
    @Option(name: .customLong("tokenizer"), help: "A Hugging Face tokenizer.json (default: the byte-level fallback, ids = UTF-8 bytes + 3).")
    var tokenizer: String?

    @Option(name: .customLong("text-length"), help: "Truncate or pad the ids to this length (32).")
    var length: Int?

    @Option(name: .customLong("truncate"), help: "right (keep the start; default) or left (keep the end).")
    var truncate: TextConfig.Truncation?

    @Flag(name: .customLong("add-special"), help: "Add the tokenizer's special tokens (post-processor: BOS/EOS, [CLS]/[SEP]).")
    var addSpecial = false

    @Option(name: .customLong("pad-id"), help: "Padding id (default: the tokenizer's pad token, else 0).")
    var padID: Int?

    @Option(name: .customLong("invalid-utf8"), help: "error (default) or replace (each invalid sequence becomes U+FFFD).")
    var invalidUTF8: TextConfig.InvalidUTF8?

    @Option(name: .customLong("text-vocab-size"), help: "Vocabulary size that pre-tokenised .ids/.tokens files are checked against (default: the tokenizer's).")
    var vocabularySize: Int?

    func config(base: TextConfig = TextConfig()) throws -> TextConfig {
        var config = base
        if let tokenizer { config.tokenizer = tokenizer }
        if let length { config.length = length }
        if let truncate { config.truncate = truncate }
        if addSpecial { config.addSpecial = true }
        if let padID { config.padID = padID }
        if let invalidUTF8 { config.invalidUTF8 = invalidUTF8 }
        if let vocabularySize { config.vocabularySize = vocabularySize }
        try config.validate()
        return config
    }
}
