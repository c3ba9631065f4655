// SHA-256 through OpenSSL's EVP interface: shard checksums and tokenizer content hashes.
// SHA-256 rather than XXH3 so that anyone can check a shard with `sha256sum` or Python's hashlib,
// with no extra package; at ~2 GB/s (SHA-NI) it costs milliseconds per shard.
internal import CCrypto

/// An incremental SHA-256 digest.
public struct SHA256Digest: ~Copyable {
    private let context: OpaquePointer?

    public init() {
        context = EVP_MD_CTX_new()
        if let context { EVP_DigestInit_ex(context, EVP_sha256(), nil) }
    }

    deinit { EVP_MD_CTX_free(context) }

    /// Feeds more bytes.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let context, let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    /// Feeds more bytes.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest as 64 lower-case hex digits.
    public consuming func hexDigest() -> String { takeHexDigest() }

    /// The digest of the bytes fed so far, as 64 lower-case hex digits; the digest then starts over (for
    /// a digest held where it cannot be consumed, such as a class's property).
    public mutating func takeHexDigest() -> String {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        if let context {
            _ = out.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(context, $0.baseAddress, &length) }
            EVP_DigestInit_ex(context, EVP_sha256(), nil)
        }
        return SHA256Digest.hexDigits(out)
    }

    /// Bytes as lower-case hex digits, two per byte.
    static func hexDigits(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 15)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The SHA-256 of `bytes` (32 bytes), in one call.
    public static func digest(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = out.withUnsafeMutableBufferPointer { EVP_Digest(bytes.baseAddress, bytes.count, $0.baseAddress, &length, EVP_sha256(), nil) }
        return out
    }

    /// The first 8 bytes of the SHA-256 of `text` (UTF-8) as a big-endian number: the value its first
    /// 16 hex digits spell. For stable per-key numbers (splits, crop seeds).
    public static func leadingWord(of text: String) -> UInt64 {
        var text = text
        let bytes = text.withUTF8 { digest(UnsafeRawBufferPointer($0)) }
        return bytes.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The SHA-256 of a buffer as hex.
    public static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        var digest = SHA256Digest()
        digest.update(bytes)
        return digest.hexDigest()
    }

    /// The SHA-256 of a byte array as hex.
    public static func hex(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { hex($0) }
    }

    /// The SHA-256 of a file's contents as hex (memory-mapped, not read into memory).
    public static func hex(ofFile path: String) throws -> String {
        let mapping = try MappedFile(path: path)
        return hex(mapping.bytes)
    }
}
