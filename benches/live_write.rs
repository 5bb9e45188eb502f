//! Live capture's writer: the cost of a micro-batch flush (a merge into the day's quotes
//! partition, rewritten atomically) as the day partition grows, and the tick rate that keeps
//! the 5-second loss bound; then an end-to-end capture on the simulator (100 lines over TCP).
//!
//! `cargo bench --bench live_write` (release profile; plain timing, no criterion: each
//! measurement is one flush of a growing partition and cannot be repeated identically).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use twslake::datasets::quotes::{self, Quote};
use twslake::datasets::Dataset;
use twslake::lake::layout::Symbol;
use twslake::Lake;

/// Rows of one flush: 2 s of ticks at `rate` ticks/s.
fn batch(start_seq: i64, n: usize, ts: DateTime<Utc>) -> Vec<Quote> {
    (0..n)
        .map(|k| {
            let seq = start_seq + k as i64;
            Quote {
                ts: ts + chrono::Duration::microseconds(seq % 2_000_000),
                date: ts.date_naive(),
                con_id: 1000 + (seq % 100),
                seq,
                sec_type: "OPT".into(),
                expiry: Some("2026-12-18".parse().unwrap()),
                strike: Some(600.0 + (seq % 100) as f64),
                right: Some("C".into()),
                bid: Some(1.0 + (seq % 7) as f64 * 0.01),
                ask: Some(1.1 + (seq % 7) as f64 * 0.01),
                bid_size: Some(10.0),
                ask_size: Some(10.0),
                implied_vol: Some(0.2),
                delta: Some(0.5),
                gamma: Some(0.01),
                vega: Some(0.3),
                theta: Some(-0.05),
                underlying_price: Some(600.0),
                ingested_at: ts,
                ..Default::default()
            }
        })
        .collect()
}

async fn flush_cost() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let spy = Symbol::new("SPY").unwrap();
    let ts: DateTime<Utc> = "2026-11-24T15:00:00Z".parse().unwrap();
    let per_flush = 10_000; // 2 s of flush interval at 5,000 rows/s
    let max: usize = std::env::var("LIVE_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let marks: Vec<usize> =
        [10_000usize, 100_000, 250_000, 500_000, 1_000_000].into_iter().filter(|m| *m <= max).collect();
    println!("flush of {per_flush} rows merged into a day partition of N rows (local disk)");
    println!("| N rows before the flush | flush time | rows/s written at that size |");
    println!("|---|---|---|");
    let mut n = 0usize;
    while n < *marks.last().unwrap() {
        let rows = batch(n as i64, per_flush, ts);
        let b = quotes::to_batch(&rows);
        let t0 = Instant::now();
        lake.write(Dataset::Quotes, &spy, &b, None).await.unwrap();
        let dt = t0.elapsed();
        if marks.contains(&(n + per_flush)) || n == 0 {
            println!("| {n} | {:.0} ms | {:.0} |", dt.as_secs_f64() * 1e3, per_flush as f64 / dt.as_secs_f64());
        }
        n += per_flush;
    }
}

async fn end_to_end() {
    use twslake::jobs::config::{parse_series, IngestConfig, OptionSelection};
    use twslake::live::{self, LiveOptions};
    use twslake::sim::{ManualClock, Sim};
    use twslake::source::ib::{IbConfig, IbSource};
    let now: DateTime<Utc> = "2026-11-24T17:00:00Z".parse().unwrap();
    let sim = Sim::builder().seed(7).pacing_scale(1e6).clock(Arc::new(ManualClock::new(now))).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let cfg = IngestConfig {
        equity: vec![parse_series("1 day/TRADES/5", 5).unwrap()],
        options: OptionSelection {
            expiry_days: 60,
            strike_band: 0.10,
            max_contracts: 200,
            series: vec![],
            ..Default::default()
        },
        pacing_scale: 1e6,
        ..Default::default()
    };
    let ib = IbConfig { gateway: sim.address(), client_id: 1, timeout: Duration::from_secs(30) };
    let source = IbSource::connect(&ib).await.unwrap();
    let run = twslake::jobs::Ingest::new(lake.clone(), source, cfg, sim.market().clock().clone());
    let symbols = vec![Symbol::new("SPY").unwrap(), Symbol::new("QQQ").unwrap()];
    assert!(run.setup(&symbols).await.complete());
    let opts = LiveOptions::default(); // 100 lines, 2 s flushes
    let secs = 20.0;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let lm = opts.metrics.clone();
    let watch_lag = async {
        let mut worst = 0u64;
        let t0 = Instant::now();
        while t0.elapsed().as_secs_f64() < secs {
            tokio::time::sleep(Duration::from_millis(100)).await;
            worst = worst.max(lm.lag_ms.load(std::sync::atomic::Ordering::Relaxed));
        }
        tx.send(true).unwrap();
        worst
    };
    let (report, worst) = tokio::join!(live::run(&run, &symbols, &opts, rx), watch_lag);
    let report = report.unwrap();
    println!(
        "end to end: {} lines, {secs} s, {:.0} ticks/s received, {:.0} rows/s written, worst tick-to-disk lag {} ms",
        report.lines,
        report.ticks as f64 / secs,
        report.rows as f64 / secs,
        worst
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if std::env::args().any(|a| a == "--e2e-only") {
        return rt.block_on(end_to_end());
    }
    rt.block_on(flush_cost());
    rt.block_on(end_to_end());
}
