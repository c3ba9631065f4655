// A small RGB raster for the run's pictures: lines, rectangles, images, heatmaps and a 5x7 bitmap font,
// written as PNG with libpng. Enough for a readable loss plot without a plotting library.
import TesseraCore
import TesseraImage

public struct RGB: Sendable, Equatable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { (self.r, self.g, self.b) = (r, g, b) }
    static let white = RGB(255, 255, 255), black = RGB(0, 0, 0), grey = RGB(150, 150, 150), light = RGB(225, 225, 225)
}

struct Canvas {
    let width: Int, height: Int
    private(set) var pixels: [UInt8]

    init(width: Int, height: Int, background: RGB = .white) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        fill(x: 0, y: 0, w: width, h: height, background)
    }

    mutating func set(_ x: Int, _ y: Int, _ c: RGB) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        pixels[i] = c.r
        pixels[i + 1] = c.g
        pixels[i + 2] = c.b
    }

    /// Fills a rectangle, clipped to the canvas (anything outside it, even entirely, is fine).
    mutating func fill(x: Int, y: Int, w: Int, h: Int, _ c: RGB) {
        let x0 = max(0, x), x1 = min(width, x.addingReportingOverflow(max(w, 0)).partialValue)
        let y0 = max(0, y), y1 = min(height, y.addingReportingOverflow(max(h, 0)).partialValue)
        guard x0 < x1, y0 < y1 else { return }
        for yy in y0..<y1 {
            for xx in x0..<x1 { set(xx, yy, c) }
        }
    }

    mutating func rectangle(x: Int, y: Int, w: Int, h: Int, _ c: RGB) {
        line(x, y, x + w, y, c)
        line(x, y + h, x + w, y + h, c)
        line(x, y, x, y + h, c)
        line(x + w, y, x + w, y + h, c)
    }

    /// A line (Bresenham), `thickness` pixels wide.
    mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: RGB, thickness: Int = 1) {
        var x = x0, y = y0
        let dx = abs(x1 - x0), dy = -abs(y1 - y0)
        let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var error = dx + dy
        let half = thickness / 2
        while true {
            if thickness <= 1 { set(x, y, c) } else { fill(x: x - half, y: y - half, w: thickness, h: thickness, c) }
            if x == x1 && y == y1 { break }
            let e2 = 2 * error
            if e2 >= dy { error += dy; x += sx }
            if e2 <= dx { error += dx; y += sy }
        }
    }

    /// Text in the 5x7 font, `scale` pixels per font pixel; returns the width drawn.
    @discardableResult
    mutating func text(_ string: String, x: Int, y: Int, _ c: RGB, scale: Int = 2) -> Int {
        var cursor = x
        for character in string.uppercased() {
            let rows = Canvas.glyphs[character] ?? Canvas.glyphs["?"] ?? []
            for (row, bits) in rows.enumerated() {
                for column in 0..<5 where bits & (1 << (4 - column)) != 0 {
                    fill(x: cursor + column * scale, y: y + row * scale, w: scale, h: scale, c)
                }
            }
            cursor += 6 * scale
        }
        return cursor - x
    }

    static func textWidth(_ string: String, scale: Int = 2) -> Int { string.count * 6 * scale }

    /// An RGB image [3, h, w] with values in [0, 1], magnified by `zoom`.
    mutating func image(_ values: UnsafePointer<Float>, width w: Int, height h: Int, channels: Int, x: Int, y: Int, zoom: Int) {
        for yy in 0..<h {
            for xx in 0..<w {
                func channel(_ k: Int) -> UInt8 {
                    let v = values[min(k, channels - 1) * w * h + yy * w + xx]
                    return UInt8(max(0, min(255, (v * 255).rounded())))
                }
                fill(x: x + xx * zoom, y: y + yy * zoom, w: zoom, h: zoom, RGB(channel(0), channel(1), channel(2)))
            }
        }
    }

    /// A heatmap of [rows, columns] values (row 0 drawn at the bottom), `low...high` mapped to a
    /// perceptually ordered purple-blue-green-yellow ramp; at most `shown` columns, evenly picked.
    mutating func heatmap(_ values: UnsafePointer<Float>, rows: Int, columns: Int, shown: Int? = nil, low: Float, high: Float, x: Int, y: Int,
                          zoom: Int) {
        let drawn = min(columns, max(1, shown ?? columns))
        for r in 0..<rows {
            for col in 0..<drawn {
                let t = (values[r * columns + col * columns / drawn] - low) / max(high - low, 1e-6)
                fill(x: x + col * zoom, y: y + (rows - 1 - r) * zoom, w: zoom, h: zoom, Canvas.ramp(t))
            }
        }
    }

    /// A waveform of `count` samples in a w x h box: each pixel column spans its samples' minimum to
    /// maximum, `scale` mapping to the box's half height; a grey zero line.
    mutating func waveform(_ values: UnsafePointer<Float>, count: Int, scale: Float, x: Int, y: Int, w: Int, h: Int, _ c: RGB) {
        guard count > 0, w > 0, h > 1 else { return }
        let middle = y + h / 2, half = Float(h / 2 - 1)
        line(x, middle, x + w - 1, middle, .light)
        func row(_ v: Float) -> Int { middle - Int((max(-1, min(1, v / max(scale, 1e-12))) * half).rounded()) }
        for column in 0..<w {
            let first = column * count / w, end = max(first + 1, (column + 1) * count / w)
            var low = Float.infinity, high = -Float.infinity
            for i in first..<min(end, count) where values[i].isFinite {
                low = min(low, values[i])
                high = max(high, values[i])
            }
            guard low <= high else { continue }
            line(x + column, row(high), x + column, row(low), c)
        }
    }

    static func ramp(_ t: Float) -> RGB {
        let stops: [(Float, Float, Float)] = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
        let clamped = t.isFinite ? max(0, min(1, t)) : 0
        let position = clamped * Float(stops.count - 1)
        let i = min(Int(position), stops.count - 2)
        let f = position - Float(i)
        let a = stops[i], b = stops[i + 1]
        func mix(_ u: Float, _ v: Float) -> UInt8 { UInt8((u + (v - u) * f).rounded()) }
        return RGB(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// Writes the canvas as a PNG file (temporary name, fsync, rename).
    func write(to path: String) throws {
        let bytes = try PNGEncoder.encode(RawImage(width: width, height: height, components: 3, pixels: pixels))
        try DurableFile.write(bytes, to: path)
    }

    /// A 5x7 font: seven rows of five bits, most significant bit on the left.
    static let glyphs: [Character: [UInt8]] = [
        "0": [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], "1": [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        "2": [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], "3": [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        "4": [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], "5": [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        "6": [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], "7": [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        "8": [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], "9": [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        "A": [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11], "B": [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        "C": [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E], "D": [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        "E": [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F], "F": [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        "G": [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F], "H": [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        "I": [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E], "J": [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        "K": [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], "L": [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        "M": [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11], "N": [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        "O": [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], "P": [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        "Q": [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D], "R": [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        "S": [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E], "T": [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        "U": [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], "V": [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        "W": [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A], "X": [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        "Y": [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04], "Z": [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        ".": [0, 0, 0, 0, 0, 0x0C, 0x0C], ",": [0, 0, 0, 0, 0x0C, 0x04, 0x08], "-": [0, 0, 0, 0x1F, 0, 0, 0],
        ":": [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0], "/": [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        "(": [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02], ")": [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        "%": [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03], "=": [0, 0, 0x1F, 0, 0x1F, 0, 0], "+": [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        "_": [0, 0, 0, 0, 0, 0, 0x1F], ">": [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08], "<": [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
        "?": [0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04], " ": [0, 0, 0, 0, 0, 0, 0],
    ]
}
