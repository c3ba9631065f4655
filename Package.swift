// swift-tools-version:6.1
// Tessera: raw multimodal media -> verified safetensors shards -> joint autoencoders on the CPU.
// The target graph is drawn and explained in docs/ARCHITECTURE.md.
import PackageDescription

/// A system-library target: a module map naming the C headers, pkg-config for flags, apt for the hint.
func systemLibrary(_ name: String, pkgConfig: String, apt: [String]) -> Target {
    .systemLibrary(name: name, path: "Sources/CSystem/\(name)", pkgConfig: pkgConfig, providers: [.apt(apt)])
}

let package = Package(
    name: "Tessera",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tessera", targets: ["tessera"]),
        .library(name: "TesseraCore", targets: ["TesseraCore"]),
        .library(name: "TesseraMedia", targets: ["TesseraImage", "TesseraAudio", "TesseraText"]),
        .library(name: "TesseraShards", targets: ["TesseraShards"]),
        .library(name: "TesseraIngest", targets: ["TesseraIngest"]),
        .library(name: "TesseraEngine", targets: ["TesseraEngine"]),
        .library(name: "TesseraTrain", targets: ["TesseraTrain"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C libraries, touched only through these module maps and the CTesseraCodecs and CTesseraUnicode shims.
        systemLibrary("CPNG", pkgConfig: "libpng", apt: ["libpng-dev"]),
        systemLibrary("CZlib", pkgConfig: "zlib", apt: ["zlib1g-dev"]),
        systemLibrary("CDeflate", pkgConfig: "libdeflate", apt: ["libdeflate-dev"]),
        systemLibrary("CJPEG", pkgConfig: "libjpeg", apt: ["libjpeg62-turbo-dev"]),
        systemLibrary("CSndFile", pkgConfig: "sndfile", apt: ["libsndfile1-dev"]),
        systemLibrary("CSoxr", pkgConfig: "soxr", apt: ["libsoxr-dev"]),
        systemLibrary("CFFTW3f", pkgConfig: "fftw3f", apt: ["libfftw3-dev"]),
        systemLibrary("COpenBLAS", pkgConfig: "openblas", apt: ["libopenblas-dev"]),
        systemLibrary("CCrypto", pkgConfig: "libcrypto", apt: ["libssl-dev"]),
        systemLibrary("CICU", pkgConfig: "icu-uc", apt: ["libicu-dev"]),
        systemLibrary("CWebP", pkgConfig: "libwebpdemux", apt: ["libwebp-dev"]),
        .systemLibrary(name: "CMalloc", path: "Sources/CSystem/CMalloc"),

        // The C targets with code: libpng/libjpeg calls under setjmp (statuses and messages out), and
        // element-wise kernels built per instruction set (target_clones), which Swift cannot do.
        .target(name: "CTesseraCodecs", dependencies: ["CPNG", "CZlib", "CDeflate", "CJPEG", "CWebP"]),
        .target(name: "CTesseraKernels"),
        // Unicode normalization through ICU, under an unversioned name.
        .target(name: "CTesseraUnicode", dependencies: ["CICU"]),

        // Pure Swift foundation: tensors, errors, JSON, durable files, safetensors.
        .target(name: "TesseraCore", dependencies: ["CCrypto", "CMalloc"]),

        .target(name: "TesseraImage", dependencies: ["TesseraCore", "CTesseraCodecs", "CTesseraKernels"]),

        .target(name: "TesseraAudio", dependencies: ["TesseraCore", "CSndFile", "CSoxr", "CFFTW3f"]),
        .target(name: "TesseraText", dependencies: ["TesseraCore", "CTesseraUnicode"]),
        .target(name: "TesseraShards", dependencies: ["TesseraCore", "CTesseraKernels"]),
        // Training: OpenBLAS behind one small module; layers, losses and optimisers with hand-written passes.
        .target(name: "TesseraBLAS", dependencies: ["COpenBLAS"]),
        .target(name: "TesseraEngine", dependencies: ["TesseraCore", "TesseraBLAS", "CTesseraKernels"]),
        .target(name: "TesseraTrain", dependencies: ["TesseraCore", "TesseraBLAS", "TesseraEngine", "TesseraShards", "TesseraImage"]),
        .target(name: "TesseraIngest", dependencies: ["TesseraCore", "TesseraImage", "TesseraAudio", "TesseraText", "TesseraShards"]),
        .target(name: "TesseraBench", dependencies: ["TesseraCore", "TesseraImage", "TesseraAudio", "TesseraText", "TesseraShards", "TesseraIngest",
                                                     "TesseraBLAS", "TesseraEngine"]),

        .executableTarget(
            name: "tessera",
            dependencies: [
                "TesseraCore", "TesseraImage", "TesseraAudio", "TesseraText", "TesseraShards", "TesseraIngest", "TesseraBLAS", "TesseraEngine", "TesseraTrain",
                "TesseraBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Shared by the test targets: temporary folders removed when the test process exits.
        .target(name: "TesseraTestSupport", path: "Tests/TesseraTestSupport"),
        .testTarget(name: "TesseraCoreTests", dependencies: ["TesseraTestSupport", "TesseraCore"]),
        .testTarget(name: "TesseraImageTests", dependencies: ["TesseraImage", "TesseraCore"]),
        .testTarget(name: "TesseraAudioTests", dependencies: ["TesseraAudio", "TesseraCore"]),
        .testTarget(name: "TesseraTextTests", dependencies: ["TesseraText", "TesseraCore"]),
        .testTarget(name: "TesseraIngestTests", dependencies: ["TesseraTestSupport", "TesseraIngest", "TesseraShards", "TesseraCore"]),
        .testTarget(name: "TesseraShardsTests", dependencies: ["TesseraTestSupport", "TesseraShards", "TesseraCore"]),
        .testTarget(name: "TesseraEngineTests", dependencies: ["TesseraEngine", "TesseraCore", "TesseraBLAS"]),
        .testTarget(name: "TesseraTrainTests", dependencies: ["TesseraTestSupport", "TesseraTrain", "TesseraIngest", "TesseraShards", "TesseraEngine", "TesseraCore"]),
        .testTarget(name: "CLITests", dependencies: ["TesseraTestSupport", "TesseraCore"]),
    ],
    swiftLanguageModes: [.v6]
)
