// The `tessera` command: one ParsableCommand per subcommand, errors turned into one line on stderr.
import ArgumentParser
import TesseraCore

@main
struct TesseraCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Turn raw multimodal media into verified training shards, and train joint models on them.",
        version: Tessera.version,
        subcommands: [DecodeCommand.self, InspectCommand.self, BenchCommand.self]
    )
}
