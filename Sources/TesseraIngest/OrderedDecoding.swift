// Decoding on every core with bounded memory, results delivered in input order: workers take sample
// indices in order but never more than `window` ahead of the consumer, so memory does not grow with the
// corpus and the output does not depend on the number of workers.
import Foundation

final class OrderedDecoder<Input: Sendable, Output: Sendable>: @unchecked Sendable {
    // @unchecked: all shared state is guarded by `condition`.
    private let inputs: ArraySlice<Input>  // a slice: a resumed split is decoded without copying its list
    private let work: @Sendable (Input) -> Output
    private let jobs: Int
    private let window: Int
    private let condition = NSCondition()
    private var next = 0
    private var consumed = 0
    private var slots: [Output?]
    private var stop = false

    init(inputs: ArraySlice<Input>, jobs: Int, window: Int, work: @escaping @Sendable (Input) -> Output) {
        self.inputs = inputs
        self.work = work
        self.jobs = max(1, jobs)
        self.window = max(window, 1)
        slots = Array(repeating: nil, count: max(window, 1))
    }

    /// Calls `consume` with every output in input order. If `consume` throws, the workers stop and the
    /// error is rethrown.
    func run(_ consume: (Int, Output) throws -> Void) throws {
        if jobs == 1 {
            for (i, input) in inputs.enumerated() { try consume(i, work(input)) }
            return
        }
        var threads: [Thread] = []
        let finished = DispatchGroup()
        for _ in 0..<jobs {
            finished.enter()
            let thread = Thread { [self] in
                worker()
                finished.leave()
            }
            thread.stackSize = 8 << 20
            threads.append(thread)
            thread.start()
        }
        defer {
            condition.lock()
            stop = true
            condition.broadcast()
            condition.unlock()
            finished.wait()
        }
        for index in 0..<inputs.count {
            condition.lock()
            while slots[index % window] == nil { condition.wait() }
            let output = slots[index % window]
            slots[index % window] = nil
            consumed = index + 1
            condition.broadcast()
            condition.unlock()
            if let output { try consume(index, output) }
        }
    }

    private func worker() {
        while true {
            condition.lock()
            while !stop && next < inputs.count && next >= consumed + window { condition.wait() }
            if stop || next >= inputs.count {
                condition.unlock()
                return
            }
            let index = next
            next += 1
            condition.unlock()
            let output = work(inputs[inputs.startIndex + index])
            condition.lock()
            slots[index % window] = output
            condition.broadcast()
            condition.unlock()
        }
    }
}
