//! Metrics and alerts: what the ingester counts, and where it says that something is wrong.
//!
//! Counters are plain atomics behind one [`Metrics`] value shared by the jobs; [`Metrics::render`]
//! writes them in Prometheus' text format. Alerts go through the [`AlertSink`] trait; the log
//! sink ([`LogSink`]) is always on, and other sinks (a webhook) can be added beside it.

pub mod progress;

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Something to look at.
    Warning,
    /// A rule of the pipeline was broken (e.g. option data asked for without prerequisites).
    Critical,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Severity.
    pub severity: Severity,
    /// The symbol concerned.
    pub symbol: String,
    /// What happened and what to do.
    pub message: String,
    /// When.
    pub time: DateTime<Utc>,
}

/// Somewhere alerts go.
pub trait AlertSink: Send + Sync {
    /// Delivers an alert; must not block the caller for long.
    fn send(&self, alert: &Alert);
}

/// The log: every alert is written to the log (stderr).
#[derive(Debug, Default)]
pub struct LogSink;

impl AlertSink for LogSink {
    fn send(&self, a: &Alert) {
        match a.severity {
            Severity::Critical => tracing::error!(symbol = %a.symbol, "CRITICAL: {}", a.message),
            Severity::Warning => tracing::warn!(symbol = %a.symbol, "WARNING: {}", a.message),
        }
        eprintln!("{:?}: {}: {}", a.severity, a.symbol, a.message);
    }
}

/// Counters and gauges of an ingest run.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String), u64>>,
    rows: Mutex<BTreeMap<String, u64>>,
    freshness: Mutex<BTreeMap<(String, String), i64>>,
    /// Microseconds spent waiting for the pacing rules.
    pub pacing_wait_us: AtomicU64,
    /// Pacing violations IB reported despite the scheduler.
    pub pacing_violations: AtomicU64,
    /// Option data asked for without its prerequisites.
    pub dependency_violations: AtomicU64,
    /// Requests not sent because the lake already had the answer.
    pub requests_skipped: AtomicU64,
    /// Corporate actions found (stored series on another basis than the gateway's answer).
    pub corporate_actions: AtomicU64,
}

impl Metrics {
    /// Counts a request of `kind` (e.g. `historical_data`) with `outcome` (`ok`, `empty`, `error_162`…).
    pub fn request(&self, kind: &str, outcome: &str) {
        *self.requests.lock().unwrap_or_else(|e| e.into_inner()).entry((kind.into(), outcome.into())).or_default() += 1;
    }
    /// Counts rows written to a dataset.
    pub fn rows(&self, dataset: &str, n: u64) {
        *self.rows.lock().unwrap_or_else(|e| e.into_inner()).entry(dataset.into()).or_default() += n;
    }
    /// Sets the age in seconds of a symbol's newest data in a dataset.
    pub fn freshness(&self, symbol: &str, dataset: &str, age_secs: i64) {
        self.freshness.lock().unwrap_or_else(|e| e.into_inner()).insert((symbol.into(), dataset.into()), age_secs);
    }
    /// Requests by (kind, outcome).
    pub fn requests(&self) -> BTreeMap<(String, String), u64> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// Total requests of a kind.
    pub fn requests_of(&self, kind: &str) -> u64 {
        self.requests().iter().filter(|((k, _), _)| k == kind).map(|(_, n)| n).sum()
    }
    /// Rows written per dataset.
    pub fn rows_written(&self) -> BTreeMap<String, u64> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The metrics in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP twslake_requests_total Requests sent to the gateway, by kind and outcome.\n");
        out.push_str("# TYPE twslake_requests_total counter\n");
        for ((kind, outcome), n) in self.requests() {
            out.push_str(&format!("twslake_requests_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}\n"));
        }
        out.push_str("# HELP twslake_rows_written_total Rows written, by dataset.\n");
        out.push_str("# TYPE twslake_rows_written_total counter\n");
        for (ds, n) in self.rows_written() {
            out.push_str(&format!("twslake_rows_written_total{{dataset=\"{ds}\"}} {n}\n"));
        }
        let counters = [
            (
                "twslake_pacing_wait_seconds_total",
                "Time spent waiting for IB's pacing rules.",
                self.pacing_wait_us.load(Ordering::Relaxed) as f64 / 1e6,
            ),
            (
                "twslake_pacing_violations_total",
                "Pacing violations reported by IB.",
                self.pacing_violations.load(Ordering::Relaxed) as f64,
            ),
            (
                "twslake_dependency_violations_total",
                "Option data asked for without prerequisites.",
                self.dependency_violations.load(Ordering::Relaxed) as f64,
            ),
            (
                "twslake_requests_skipped_total",
                "Requests not sent because the lake had the answer.",
                self.requests_skipped.load(Ordering::Relaxed) as f64,
            ),
            (
                "twslake_corporate_actions_total",
                "Corporate actions found by update's overlap check (series fetched again).",
                self.corporate_actions.load(Ordering::Relaxed) as f64,
            ),
        ];
        for (name, help, v) in counters {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"));
        }
        out.push_str("# HELP twslake_data_age_seconds Age of the newest data, by symbol and dataset.\n");
        out.push_str("# TYPE twslake_data_age_seconds gauge\n");
        for ((sym, ds), age) in self.freshness.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            out.push_str(&format!("twslake_data_age_seconds{{symbol=\"{sym}\",dataset=\"{ds}\"}} {age}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.request("historical_data", "ok");
        m.request("historical_data", "ok");
        m.rows("equity_bars", 252);
        m.pacing_violations.fetch_add(1, Ordering::Relaxed);
        let text = m.render();
        assert!(text.contains("twslake_requests_total{kind=\"historical_data\",outcome=\"ok\"} 2\n"));
        assert!(text.contains("twslake_rows_written_total{dataset=\"equity_bars\"} 252\n"));
        assert!(text.contains("twslake_pacing_violations_total 1\n"));
        assert_eq!(m.requests_of("historical_data"), 2);
    }
}
