// The shim's status codes as a Swift enum (the C enum imports with an unsigned raw type).

enum CodecStatus: Int32 {
    case ok = 0, error = 1, unsupported = 2, partial = 3, `internal` = 4

    init(_ raw: Int32) { self = CodecStatus(rawValue: raw) ?? .internal }
}
