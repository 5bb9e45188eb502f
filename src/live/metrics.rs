//! The live gauges, rendered after [`crate::monitor::Metrics::render`] on the metrics endpoint.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Counters and gauges of a live capture (plain atomics: the capture never waits on a reader).
#[derive(Debug, Default)]
pub struct LiveMetrics {
    /// Ticks received from the gateway.
    pub ticks_received: AtomicU64,
    /// Quote rows made visible in the lake.
    pub rows_written: AtomicU64,
    /// Micro-batches flushed.
    pub flushes: AtomicU64,
    /// The oldest tick of the last flush to its visibility on disk, in milliseconds.
    pub lag_ms: AtomicU64,
    /// Market-data lines subscribed now.
    pub subscribed_lines: AtomicU64,
    /// Connections lost and subscriptions restored.
    pub reconnects: AtomicU64,
    /// Gaps recorded in the manifest.
    pub gaps: AtomicU64,
    /// Age in seconds of the oldest "latest chain snapshot" over the captured symbols (−1: none).
    pub chain_age_secs: AtomicI64,
}

impl LiveMetrics {
    /// The gauges in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let rows = [
            (
                "twslake_live_ticks_received_total",
                "counter",
                "Ticks received from the gateway.",
                get(&self.ticks_received),
            ),
            ("twslake_live_rows_written_total", "counter", "Quote rows visible in the lake.", get(&self.rows_written)),
            ("twslake_live_flushes_total", "counter", "Micro-batches flushed.", get(&self.flushes)),
            ("twslake_live_lag_seconds", "gauge", "Oldest tick of the last flush to disk.", get(&self.lag_ms) / 1e3),
            ("twslake_live_subscribed_lines", "gauge", "Market-data lines subscribed.", get(&self.subscribed_lines)),
            ("twslake_live_reconnects_total", "counter", "Connections lost and restored.", get(&self.reconnects)),
            ("twslake_live_gaps_total", "counter", "Capture gaps recorded in the manifest.", get(&self.gaps)),
            (
                "twslake_live_chain_age_seconds",
                "gauge",
                "Age of the oldest latest chain snapshot of the captured symbols.",
                self.chain_age_secs.load(Ordering::Relaxed) as f64,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, v) in rows {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"));
        }
        out
    }
}
