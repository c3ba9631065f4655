// Choosing the decoder by content, never by the file name.

/// The container formats Tessera decodes.
public enum ImageFormat: String, Sendable, Codable {
    case png, jpeg, webp

    /// The name for messages and summaries.
    public var displayName: String {
        switch self {
        case .png: return "PNG"
        case .jpeg: return "JPEG"
        case .webp: return "WebP"
        }
    }

    /// Identifies the format from the first bytes. A PNG whose signature was damaged (line-ending
    /// conversion, a flipped bit) still goes to libpng when "PNG" or "IHDR" is where it belongs, so the
    /// user gets libpng's precise complaint rather than "unknown format".
    public static func sniff(_ bytes: UnsafeRawBufferPointer) -> ImageFormat? {
        if bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF { return .jpeg }
        // RIFF....WEBP
        if bytes.count >= 12 && bytes[0] == 0x52 && bytes[1] == 0x49 && bytes[2] == 0x46 && bytes[3] == 0x46
            && bytes[8] == 0x57 && bytes[9] == 0x45 && bytes[10] == 0x42 && bytes[11] == 0x50 { return .webp }
        if bytes.count >= 4 && bytes[1] == 0x50 && bytes[2] == 0x4E && bytes[3] == 0x47 { return .png }
        if bytes.count >= 16 && bytes[12] == 0x49 && bytes[13] == 0x48 && bytes[14] == 0x44 && bytes[15] == 0x52 {
            return .png
        }
        return nil
    }
}
