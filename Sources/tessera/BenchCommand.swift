// `tessera bench`: the benchmarks, each figure beside a peer or a physical limit from the same run.
import ArgumentParser
import TesseraBench
import TesseraCore

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks against peers and physical limits measured in the same run (use a release build).",
        subcommands: [ImagesBench.self, AudioBenchCommand.self, TextBenchCommand.self, IngestBenchCommand.self, EngineBenchCommand.self, TrainBenchCommand.self]
    )

    struct ImagesBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "images",
            abstract: "Image decode (+ resize to 64x64, with and without DCT scaling) beside libjpeg-turbo and Pillow."
        )

        @Argument(help: "A folder of .jpg/.png images (the W1 corpus: python3 ../shared/bench/make_corpus.py w1 DIR).")
        var folder: String

        @Option(name: .long, help: "Minimum seconds per measurement.")
        var seconds: Double = 1.5

        @Flag(name: .long, help: "Skip the Python peer.")
        var noPeers = false

        func run() throws {
            try reportingErrors {
                var bench = ImageBench(folder: folder)
                bench.minSeconds = seconds
                bench.runPeers = !noPeers
                let lines = try bench.run { Console.err("bench: \($0)") }
                lines.forEach(Console.out)
            }
        }
    }
}

struct AudioBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audio",
        abstract: "Audio decode, resample and log-mel throughput beside libsndfile and the Python pipeline."
    )

    @Argument(help: "A folder of audio files (the W1 corpus's WAVs).")
    var folder: String

    @Option(name: .long, help: "Minimum seconds per measurement.")
    var seconds: Double = 1.5

    @Flag(name: .long, help: "Skip the Python peer.")
    var noPeers = false

    func run() throws {
        try reportingErrors {
            var bench = AudioBench(folder: folder)
            bench.minSeconds = seconds
            bench.runPeers = !noPeers
            try bench.run { Console.err("bench: \($0)") }.forEach(Console.out)
        }
    }
}

struct TextBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text",
        abstract: "Tokens/s on one thread beside Hugging Face tokenizers (encode loop and encode_batch, RAYON_NUM_THREADS=1)."
    )

    @Option(name: .long, help: "A tokenizer.json to measure (repeatable; default: the fixtures' byte-level BPE, WordPiece, Unigram, SentencePiece Unigram (Precompiled), Metaspace BPE and W1).")
    var tokenizer: [String] = []

    @Option(name: .long, help: "A JSON array of strings, repeated to at least 10 MB.")
    var samples = "fixtures/text/samples.json"

    @Option(name: .long, help: "Minimum seconds per measurement.")
    var seconds: Double = 2

    @Flag(name: .long, help: "Skip the Python peer.")
    var noPeers = false

    func run() throws {
        try reportingErrors {
            let defaults = ["bytelevel-bpe", "bert-wordpiece", "unigram", "sentencepiece-nmt-nfkc", "metaspace-bpe-bytefallback", "w1"].map { "fixtures/text/tokenizers/\($0).json" }
            var bench = TextBench(tokenizers: tokenizer.isEmpty ? defaults : tokenizer, samples: samples)
            bench.minSeconds = seconds
            bench.runPeers = !noPeers
            try bench.run { Console.err("bench: \($0)") }.forEach(Console.out)
        }
    }
}

struct IngestBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "W1 ingest end to end (samples/s, peak RSS) beside the Python peer and the C libraries' ceiling."
    )

    @Argument(help: "The W1 corpus folder (python3 ../shared/bench/make_corpus.py w1 DIR).")
    var folder: String

    @Option(name: .long, help: "The corpus's tokenizer (make_corpus writes DIR.tokenizer.json; the default).")
    var tokenizer: String?

    @Option(name: .long, help: "A larger corpus (e.g. tools/bench/replicate-corpus DIR 10) for the peak-memory comparison.")
    var large: String?

    @Flag(name: .long, help: "Skip the Python peer.")
    var noPeers = false

    @Option(name: .long, help: "Rounds of (ceiling, tessera) per job count; the best of each is kept.")
    var rounds = 5

    func validate() throws {
        guard (1...50).contains(rounds) else { throw ValidationError("--rounds must be between 1 and 50") }
    }

    func run() throws {
        try reportingErrors {
            let trimmed = folder.hasSuffix("/") ? String(folder.dropLast()) : folder
            var bench = IngestBench(folder: folder, tokenizer: tokenizer ?? trimmed + ".tokenizer.json")
            bench.repeats = rounds
            bench.largeFolder = large
            bench.runPeers = !noPeers
            try bench.run { Console.err("bench: \($0)") }.forEach(Console.out)
        }
    }
}

struct EngineBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "W2 layers' forward/backward GFLOP/s beside sgemm at the same shapes; the shard loader beside memcpy."
    )

    @Option(name: .long, help: "A Tessera dataset for the loader (default: a W1-shaped synthetic dataset in a temporary folder).")
    var dataset: String?

    @Option(name: .long, help: "Threads for OpenBLAS and the engine.")
    var threads = 2

    @Option(name: .long, help: "Batch size.")
    var batch = 64

    @Option(name: .long, help: "Minimum seconds per measurement.")
    var seconds: Double = 0.5

    @Option(name: .long, help: "Only the layers whose name contains this text.")
    var only: String?

    func run() throws {
        try reportingErrors {
            guard threads >= 1, batch >= 1 else { throw ValidationError("--threads and --batch must be at least 1") }
            var bench = EngineBench()
            bench.dataset = dataset
            bench.threads = threads
            bench.batch = batch
            bench.minSeconds = seconds
            bench.only = only
            try bench.run { Console.err("bench: \($0)") }.forEach(Console.out)
        }
    }
}

struct TrainBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "W2: M1 training samples/s and peak RSS beside PyTorch (plain and tuned) on the same shards, and beside sgemm alone."
    )

    @Argument(help: "W1 shards (tessera ingest W1_DIR --out SHARDS --tokenizer W1_DIR.tokenizer.json).")
    var shards: String

    @Option(name: .long, help: "Threads for both trainers (2).")
    var threads = 2

    @Option(name: .long, help: "Timed steps after 5 warm-up steps (30).")
    var steps = 30

    @Flag(name: .long, help: "Skip the PyTorch peers.")
    var noPeers = false

    @Option(name: .long, help: "Rounds of every trainer, one after the other; each trainer's best is reported (3).")
    var rounds = 3

    func run() throws {
        try reportingErrors {
            guard threads >= 1, steps >= 1, rounds >= 1 else { throw ValidationError("--threads, --steps and --rounds must be at least 1") }
            var bench = TrainBench(shards: shards)
            bench.threads = threads
            bench.rounds = rounds
            bench.steps = steps
            bench.runPeers = !noPeers
            try bench.run { Console.err("bench: \($0)") }.forEach(Console.out)
        }
    }
}
