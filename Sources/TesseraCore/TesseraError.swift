// The one error type every Tessera module throws: which file, which stage, a stable code and the cause.
// The CLI prints `description` as its single line on stderr; ingest records the same fields in errors.jsonl.

/// An error that explains itself: the file it concerns, the stage that failed, a stable machine-readable
/// code (`safetensors.header-past-end`, `image.corrupt`, ...) and a human sentence with the cause.
public struct TesseraError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The stage of the pipeline at which the error happened.
    public enum Stage: String, Sendable, Codable, CaseIterable {
        case open, read, parse, decode, transform, tokenize, write, verify, config, train
    }

    /// The file concerned, when there is one.
    public var path: String?
    /// The stage at which the work failed.
    public var stage: Stage
    /// A stable identifier for the kind of failure, for tests, reports and scripts.
    public var code: String
    /// The cause in words, including what a C library said when one was involved.
    public var message: String

    public init(path: String? = nil, stage: Stage, code: String, _ message: String) {
        self.path = path
        self.stage = stage
        self.code = code
        self.message = message
    }

    /// `path: message` (or just the message when no file is concerned): the line users see.
    public var description: String {
        if let path { return "\(path): \(message)" }
        return message
    }

    /// The same error attributed to `path` if it had none (lower layers often work on buffers).
    public func at(_ path: String) -> TesseraError {
        var copy = self
        if copy.path == nil { copy.path = path }
        return copy
    }
}

extension Error {
    /// Any error as a `TesseraError`, keeping one if it already is one.
    public func asTesseraError(path: String? = nil, stage: TesseraError.Stage) -> TesseraError {
        if let error = self as? TesseraError { return path.map { error.at($0) } ?? error }
        return TesseraError(path: path, stage: stage, code: "unexpected", "\(self)")
    }
}
