//! Live capture's writer: the cost of a flush (one micro-batch appended beside the day's quotes
//! partition) as the day grows, against the former merge into the day partition; the cost of
//! reading and compacting a day of micro-batches; the background roll-up of 150 micro-batches;
//! then an end-to-end capture on the simulator (100 lines over TCP).
//!
//! `cargo bench --bench live_write` (release profile; plain timing, no criterion: each
//! measurement is one flush into a growing day and cannot be repeated identically).
//! `LIVE_BENCH_ROWS` sets the day's size at the end of the flush series (default 1,240,000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use twslake::datasets::quotes::{self, Quote};
use twslake::datasets::Dataset;
use twslake::domain::Symbol;
use twslake::query::Scans;
use twslake::Lake;

/// `n` quote rows of 100 contracts with sequence numbers from `start_seq`.
fn batch(start_seq: i64, n: usize, ts: DateTime<Utc>) -> Vec<Quote> {
    (0..n)
        .map(|k| {
            let seq = start_seq + k as i64;
            Quote {
                ts: ts + chrono::Duration::microseconds(seq % 2_000_000),
                date: ts.date_naive(),
                con_id: 1000 + (seq % 100),
                seq,
                sec_type: twslake::domain::SecType::Option,
                expiry: Some("2026-12-18".parse().unwrap()),
                strike: Some(600.0 + (seq % 100) as f64),
                right: Some(twslake::domain::Right::Call),
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

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

async fn flush_cost() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let spy = Symbol::new("SPY").unwrap();
    let ts: DateTime<Utc> = "2026-11-24T15:00:00Z".parse().unwrap();
    let per_flush = 10_000; // 2 s of flush interval at 5,000 rows/s
    let start = 240_000usize; // the day file a capture restarted at noon finds
    let end: usize = std::env::var("LIVE_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_240_000);
    let run = 0x5eed_u64;
    let t0 = Instant::now();
    lake.write(Dataset::Quotes, &spy, &quotes::to_batch(&batch(0, start, ts)), None).await.unwrap();
    println!("day file of {start} rows written in {}", ms(t0.elapsed()));

    // Flushes as micro-batches while the day grows from `start` to `end` rows.
    let mut n = start;
    let mut times = Vec::new();
    let mut seq = 0u64;
    println!("flush of {per_flush} rows appended as a micro-batch (local disk)");
    println!("| rows of the day before the flush | micro-batches before | flush time | rows/s written |");
    println!("|---|---|---|---|");
    while n < end {
        let b = quotes::to_batch(&batch(n as i64, per_flush, ts));
        let t = Instant::now();
        lake.append(Dataset::Quotes, &spy, &b, run, seq).await.unwrap();
        let dt = t.elapsed();
        if seq == 0 || (n + per_flush) % 250_000 < per_flush || n + per_flush >= end {
            println!("| {n} | {seq} | {} | {:.0} |", ms(dt), per_flush as f64 / dt.as_secs_f64());
        }
        times.push(dt);
        n += per_flush;
        seq += 1;
    }
    times.sort();
    let q = |f: f64| times[((times.len() - 1) as f64 * f) as usize];
    println!(
        "{} flushes: min {}, median {}, p95 {}, max {}",
        times.len(),
        ms(q(0.0)),
        ms(q(0.5)),
        ms(q(0.95)),
        ms(q(1.0))
    );

    // Readers and the compaction at the end of the run.
    let p = lake.partitions(Dataset::Quotes, Some(&spy)).await.unwrap().remove(0);
    let t = Instant::now();
    let rows = lake.read_partition(&p).await.unwrap().unwrap().batch.num_rows();
    println!("read_partition of the day file + {seq} micro-batches ({rows} rows): {}", ms(t.elapsed()));
    let lf = Scans::new(&lake).scan(Dataset::Quotes, &Default::default()).await.unwrap();
    let t = Instant::now();
    let counted = twslake::query::collect(lf).await.unwrap().height();
    println!("polars scan (merged on the key) of the same: {} ({counted} rows)", ms(t.elapsed()));
    let t = Instant::now();
    let c = lake.compact(&p).await.unwrap().unwrap();
    println!("compaction of {} micro-batches into {} rows: {}", c.micro_batches, c.rows, ms(t.elapsed()));
    let t = Instant::now();
    let rows = lake.read_partition(&p).await.unwrap().unwrap().batch.num_rows();
    println!("read_partition after compaction ({rows} rows): {}", ms(t.elapsed()));

    // The background roll-up of a 100-line capture: 150 flushes of 2 s at 1,423 rows/s.
    let dir = tempfile::tempdir().unwrap();
    let other = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let (flushes, rows_per) = (150u64, 2_846usize);
    let mut mbs = Vec::new();
    for k in 0..flushes {
        let b = quotes::to_batch(&batch((k as usize * rows_per) as i64, rows_per, ts));
        mbs.extend(other.append(Dataset::Quotes, &spy, &b, run, k).await.unwrap());
    }
    let t = Instant::now();
    let rows = other.read_partition(&p).await.unwrap().unwrap().batch.num_rows();
    println!("read_partition of {flushes} micro-batches ({rows} rows): {}", ms(t.elapsed()));
    let into = twslake::lake::layout::MicroBatch::new(p.clone(), run, flushes).unwrap();
    let t = Instant::now();
    let merged = other.merge_micro_batches(&mbs, &into).await.unwrap();
    println!("roll-up of {flushes} micro-batches into one ({merged} rows): {}", ms(t.elapsed()));
    let t = Instant::now();
    let rows = other.read_partition(&p).await.unwrap().unwrap().batch.num_rows();
    println!("read_partition after the roll-up ({rows} rows): {}", ms(t.elapsed()));

    // The former scheme, for comparison: the same flush merged into (and rewriting) the day.
    println!("the same flush merged into the day partition (the former scheme)");
    println!("| rows of the day before the flush | flush time | rows/s written |");
    println!("|---|---|---|");
    for size in [start, n] {
        let dir = tempfile::tempdir().unwrap();
        let other = Lake::open(dir.path().to_str().unwrap()).unwrap();
        other.write(Dataset::Quotes, &spy, &quotes::to_batch(&batch(0, size, ts)), None).await.unwrap();
        let b = quotes::to_batch(&batch(size as i64, per_flush, ts));
        let t = Instant::now();
        other.write(Dataset::Quotes, &spy, &b, None).await.unwrap();
        let dt = t.elapsed();
        println!("| {size} | {} | {:.0} |", ms(dt), per_flush as f64 / dt.as_secs_f64());
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
        "end to end: {} lines, {secs} s, {:.0} ticks/s received, {:.0} rows/s written, worst tick-to-disk lag {} ms, {} micro-batches compacted at the end",
        report.lines,
        report.ticks as f64 / secs,
        report.rows as f64 / secs,
        worst,
        report.compacted
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
