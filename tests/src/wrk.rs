//! What `wrk` reports, read from its output, for the benchmarks that load a server with it.

/// One wrk run: requests/s answered 2xx, p50 and p99 as it prints them (`--latency`),
/// requests answered, and how many of them were not 2xx.
#[derive(Clone, Debug)]
pub struct WrkRun {
    /// Requests answered 2xx per second.
    pub rps: f64,
    /// The median latency, as wrk prints it.
    pub p50: String,
    /// The 99th percentile latency, as wrk prints it.
    pub p99: String,
    /// Requests answered in all.
    pub requests: u64,
    /// Of those, the ones not answered 2xx.
    pub non_2xx: u64,
}

/// Reads wrk's report (run with `--latency`); `None` when a figure is missing.
pub fn parse(text: &str) -> Option<WrkRun> {
    let field = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
    };
    // "  Non-2xx or 3xx responses: 1234"
    let non_2xx: u64 = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    // "  123456 requests in 5.00s, 12.34MB read"
    let line = text.lines().find(|l| l.contains(" requests in "))?;
    let requests: u64 = line.split_whitespace().next()?.parse().ok()?;
    let seconds: f64 = line
        .split_whitespace()
        .nth(3)?
        .trim_end_matches(',')
        .trim_end_matches('s')
        .parse()
        .ok()?;
    // Only the requests answered 2xx count towards throughput.
    let rps = requests.checked_sub(non_2xx)? as f64 / seconds;
    Some(WrkRun {
        rps,
        p50: field("50%")?,
        p99: field("99%")?,
        requests,
        non_2xx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_read_with_only_2xx_counted() {
        let report = "Running 5s test @ http://127.0.0.1:1/media/x\n  2 threads and 8 connections\n  Latency Distribution\n     50%    1.20ms\n     75%    1.50ms\n     90%    2.00ms\n     99%    4.10ms\n  10000 requests in 5.00s, 9.77GB read\n  Non-2xx or 3xx responses: 500\nRequests/sec:   2000.00\n";
        let run = parse(report).expect("a full report");
        assert_eq!(run.requests, 10_000);
        assert_eq!(run.non_2xx, 500);
        assert_eq!(run.rps, 1900.0);
        assert_eq!((run.p50.as_str(), run.p99.as_str()), ("1.20ms", "4.10ms"));
        assert!(parse("wrk: connection refused").is_none());
    }
}
