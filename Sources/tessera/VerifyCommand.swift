// `tessera verify`: every shard of a dataset against its manifest.
import ArgumentParser
import TesseraCore
import TesseraShards

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every shard of a dataset: size, SHA-256, header, tensors and shapes, finite values. Exit 1 on any problem."
    )

    @Argument(help: "A dataset folder written by tessera ingest.")
    var folder: String

    func run() throws {
        try reportingErrors {
            let reading = FilePath.isDirectory(folder) ? try FolderLock(folder: folder, for: .reading) : nil
            defer { withExtendedLifetime(reading) {} }
            let (problems, shards) = try DatasetVerifier.verify(folder: folder)
            for problem in problems { Console.err("tessera: \(problem)") }
            guard problems.isEmpty else {
                Console.err("tessera: \(folder): \(problems.count) problem\(problems.count == 1 ? "" : "s") in \(shards) shards")
                throw ExitCode(1)
            }
            Console.out("\(folder): \(shards) shards verified: sizes, SHA-256, headers, shapes and values all match the manifest")
        }
    }
}
