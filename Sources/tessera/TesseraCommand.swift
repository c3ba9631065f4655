// The `tessera` command: one ParsableCommand per subcommand, errors turned into one line on stderr.
import ArgumentParser
import TesseraBLAS
import TesseraCore

@main
enum Main {
    static func main() {
        // Commands that run the engine want OpenBLAS's idle workers asleep, not spinning (see BLAS); so does
        // ingest, which never calls OpenBLAS but whose decoders lost ~0.1 s of a core to its spinning worker.
        if CommandLine.arguments.count > 1, ["train", "eval", "encode", "bench", "ingest"].contains(CommandLine.arguments[1]) {
            BLAS.restartWithEngineSettings()
        }
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
