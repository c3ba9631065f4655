// Number formatting without Foundation (which the library targets do not import).

/// `value` with exactly `digits` decimals, rounded half away from zero: `fixed(2.0456, 3)` is "2.046".
public func fixed(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    guard scaled < 9e18 else { return "\(value)" }
    let whole = UInt64(scaled)
    let unit = UInt64(scale)
    var text = String(whole / unit)
    if digits > 0 {
        let fraction = String(whole % unit)
        text += "." + String(repeating: "0", count: digits - fraction.count) + fraction
    }
    return value < 0 && scaled > 0 ? "-" + text : text
}

/// A size in bytes for messages: "1.5 GiB", or "12.0 MiB" below a gibibyte.
public func byteCount(_ bytes: Double) -> String {
    bytes >= Double(1 << 30) ? fixed(bytes / Double(1 << 30), 1) + " GiB" : fixed(bytes / Double(1 << 20), 1) + " MiB"
}
