//! Live capture against the simulated gateway streaming over TCP, with the real `ibapi` client.

mod capture;
mod cli;
mod micro;
mod monitoring;

use crate::ingest::{ingest, sim_at};
use crate::support::Fixture;
use std::time::Duration;
use twslake::datasets::quotes::{self, Quote};
use twslake::datasets::Dataset;
use twslake::domain::Symbol;
use twslake::jobs::config::{parse_series, IngestConfig, OptionSelection};
use twslake::jobs::Ingest;
use twslake::live::{self, LiveOptions, LiveReport};
use twslake::query::Scans;
use twslake::sim::SimHandle;
use twslake::source::ib::IbSource;
use twslake::Lake;

/// Tuesday 2026-11-24 at 12:00 New York: mid-session.
pub const MIDDAY: &str = "2026-11-24T17:00:00Z";

/// Daily bars only (the spot option quotes need), 4 options per symbol near the money.
pub fn live_config() -> IngestConfig {
    IngestConfig {
        equity: vec![parse_series("1 day/TRADES/5", 5).unwrap()],
        options: OptionSelection {
            expiry_days: 30,
            strike_band: 0.03,
            max_contracts: 4,
            series: vec![],
            ..Default::default()
        },
        pacing_scale: crate::ingest::SCALE,
        ..Default::default()
    }
}

pub fn syms(names: &[&str]) -> Vec<Symbol> {
    names.iter().map(|s| Symbol::new(s).unwrap()).collect()
}

/// A simulator frozen at `now` and a lake with the option prerequisites of `symbols`.
pub async fn prepared(now: &str, symbols: &[Symbol]) -> (SimHandle, Fixture) {
    let sim = sim_at(now).await;
    let f = Fixture::local();
    let run = ingest(&sim, &f.lake(), live_config()).await;
    let report = run.setup(symbols).await;
    assert!(report.complete(), "{report:#?}");
    (sim, f)
}

/// Fast flushes for short tests.
pub fn fast() -> LiveOptions {
    LiveOptions { flush_every: Duration::from_millis(400), backoff: Duration::from_millis(100), ..Default::default() }
}

/// Captures for `secs`, then asks for a clean shutdown.
pub async fn capture_for(run: &Ingest<IbSource>, symbols: &[Symbol], opts: &LiveOptions, secs: f64) -> LiveReport {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stop = async {
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        tx.send(true).unwrap();
    };
    let (report, ()) = tokio::join!(live::run(run, symbols, opts, rx), stop);
    report.unwrap()
}

/// Every stored quote of a symbol.
pub async fn stored(lake: &Lake, symbol: &Symbol) -> Vec<Quote> {
    let mut out = Vec::new();
    for p in lake.partitions(Dataset::Quotes, Some(symbol)).await.unwrap() {
        if let Some(d) = lake.read_partition(&p).await.unwrap() {
            out.extend(quotes::from_batch(&d.batch));
        }
    }
    out
}

/// Micro-batches of a symbol's quotes not compacted yet.
pub async fn micro_batch_count(lake: &Lake, symbol: &Symbol) -> usize {
    let objects = lake.data_objects(Dataset::Quotes, Some(symbol)).await.unwrap();
    objects.values().flatten().filter(|o| matches!(o, twslake::lake::layout::DataObject::MicroBatch(_))).count()
}

/// Rows of a symbol's quotes as the polars scan counts them.
pub async fn scanned_rows(lake: &Lake, symbol: &Symbol) -> usize {
    let lf = Scans::new(lake).scan(Dataset::Quotes, &twslake::query::ScanFilter::symbol(symbol)).await.unwrap();
    twslake::query::collect(lf).await.unwrap().height()
}
