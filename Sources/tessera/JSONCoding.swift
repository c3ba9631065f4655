// Compact, key-sorted JSON of Codable configs, for metadata that must be byte-reproducible.
import Foundation
import TesseraCore

func encodeJSON<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
