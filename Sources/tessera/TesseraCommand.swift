// The `tessera` command: one ParsableCommand per subcommand, errors turned into one line on stderr.
import ArgumentParser
import TesseraCore

@main
enum Main {
    static func main() {
        useSteadyAllocator()
        TesseraCommand.main()
    }
}

struct TesseraCommand: ParsableCommand {
    static func main() {
        useSteadyAllocator()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Turn raw multimodal media into verified training shards, and train joint models on them.",
        version: Tessera.version,
        subcommands: [DecodeCommand.self, IngestCommand.self, InspectCommand.self, VerifyCommand.self, TrainCommand.self, EncodeCommand.self, EvalCommand.self, BenchCommand.self]
    )
}
