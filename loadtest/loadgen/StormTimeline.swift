/// The reconnect storm over time, in bins from shortly before the drop until shortly after
/// all are back: how many stormed clients were back by each bin's end, and what the rooms the
/// storm did not touch saw meanwhile (chat latency by intended send time, the /healthz round
/// trip by send time). `loadtest/plot` draws it.
struct StormTimelineBin: Codable {
    /// The bin's start, seconds from the drop instant (negative: before it).
    var start: Double
    /// Stormed clients back (resumed with their whole replay) by the bin's end.
    var back: Int
    var unaffectedCount: Int
    var unaffectedP99Ms: Double
    var unaffectedMaxMs: Double
    var healthzCount: Int
    var healthzMaxMs: Double
}

/// Bins of 0.5 s (1 s when the storm lasts over 30 s) from 2 s before the drop to 1 s after
/// `end`. `backTimes` are monotonic ns; `unaffected` is (receipt, intended, latency µs);
/// `health` is (sent, round trip ns, lateness ns).
func stormTimeline(
    drop: UInt64, end: UInt64, backTimes: [UInt64], unaffected: [(UInt64, UInt64, UInt64)],
    health: [(UInt64, UInt64, UInt64)]
) -> [StormTimelineBin] {
    let width: UInt64 = end - drop > 30_000_000_000 ? 1_000_000_000 : 500_000_000
    let first = drop - 2_000_000_000
    let last = end + 1_000_000_000
    let count = Int((last - first + width - 1) / width)
    var chat = [[Double]](repeating: [], count: count)
    var probe = [[Double]](repeating: [], count: count)
    func bin(_ t: UInt64) -> Int? {
        guard t >= first, t < first + UInt64(count) * width else { return nil }
        return Int((t - first) / width)
    }
    for (_, intended, latency) in unaffected {
        if let i = bin(intended) { chat[i].append(Double(latency) / 1000) }
    }
    for (sent, rtt, _) in health {
        if let i = bin(sent) { probe[i].append(Double(rtt) / 1e6) }
    }
    let backs = backTimes.sorted()
    var bins: [StormTimelineBin] = []
    var backIndex = 0
    for i in 0..<count {
        let binEnd = first + UInt64(i + 1) * width
        while backIndex < backs.count && backs[backIndex] < binEnd { backIndex += 1 }
        let sorted = chat[i].sorted()
        let p99 = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
        bins.append(
            StormTimelineBin(
                start: (Double(first) + Double(i) * Double(width) - Double(drop)) / 1e9, back: backIndex,
                unaffectedCount: sorted.count, unaffectedP99Ms: p99, unaffectedMaxMs: sorted.last ?? 0,
                healthzCount: probe[i].count, healthzMaxMs: probe[i].max() ?? 0))
    }
    return bins
}
