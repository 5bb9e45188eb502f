//! `missing_windows` for one symbol on a synthetic lake of 500 symbols × 10 years of daily bars
//! (5,000 partitions, 5,000 manifest entries), and opening a symbol manifest of 100,000 requests.
//! The lake is built once under `$CARGO_TARGET_DIR/bench-lake` (reused across runs);
//! `benches/compare_duckdb.py` times DuckDB's distinct dates over the same files.

use criterion::{criterion_group, criterion_main, Criterion};
use std::path::PathBuf;
use twslake::datasets::Dataset;
use twslake::domain::DateWindow;
use twslake::domain::{BarSize, Series, Symbol, WhatToShow};
use twslake::lake::example::{synthetic_symbol, write_synthetic};
use twslake::lake::manifest::{Entry, Outcome, Request};
use twslake::query::coverage::Coverage;
use twslake::query::coverage::SeriesSpec;
use twslake::Lake;

const SYMBOLS: usize = 500;
const YEARS: i32 = 10;

fn bench_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("target"));
    target.join("bench-lake")
}

fn d(s: &str) -> chrono::NaiveDate {
    s.parse().unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let root = bench_dir();
    let marker = root.join(format!("complete-{SYMBOLS}x{YEARS}"));
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&root);
        let lake = Lake::open(root.to_str().unwrap()).unwrap();
        let t0 = std::time::Instant::now();
        rt.block_on(write_synthetic(&lake, SYMBOLS, YEARS)).unwrap();
        eprintln!("built the synthetic lake in {:.1?}", t0.elapsed());
        std::fs::write(&marker, b"").unwrap();
    }
    let url = root.to_str().unwrap().to_string();
    let daily = Series { bar_size: BarSize::Day1, what_to_show: WhatToShow::Trades };
    let spec = SeriesSpec { dataset: Dataset::EquityBars, symbol: synthetic_symbol(250), con_id: None, series: daily };
    let (from, to) = (d("2015-01-01"), d("2025-06-30"));

    let mut g = c.benchmark_group("missing_windows_500x10y");
    let lake = Lake::open(&url).unwrap();
    let found = rt.block_on(Coverage::new(&lake).missing_windows(&spec, from, to)).unwrap();
    assert_eq!(found.len(), 1, "only 2025 is missing: {found:?}");
    g.bench_function("open_lake_and_missing_windows", |b| {
        b.iter(|| {
            let lake = Lake::open(&url).unwrap();
            rt.block_on(Coverage::new(&lake).missing_windows(&spec, from, to)).unwrap()
        })
    });
    g.bench_function("missing_windows_open_lake", |b| {
        b.iter(|| rt.block_on(Coverage::new(&lake).missing_windows(&spec, from, to)).unwrap())
    });
    g.bench_function("present_dates_from_the_data", |b| {
        b.iter(|| rt.block_on(Coverage::new(&lake).present_dates(&spec, from, to)).unwrap())
    });
    g.finish();

    // One symbol remembering 100,000 requests (one per day and contract, say), compacted.
    let big = Symbol::new("BIG").unwrap();
    let big_marker = root.join("complete-big-100k");
    if !big_marker.exists() {
        rt.block_on(async {
            let at = "2025-01-02T00:00:00Z".parse().unwrap();
            for chunk in 0..100 {
                let entries: Vec<Entry> = (0..1000)
                    .map(|i| {
                        let day = d("2015-01-01") + chrono::Duration::days(((chunk * 1000 + i) % 3650) as i64);
                        let mut req = Request::equity_bars(&big, daily, DateWindow::new(day, day).unwrap());
                        req.dataset = Dataset::OptionBars;
                        req.con_id = Some((chunk * 1000 + i) as i64 / 3650);
                        Entry::new(req, at, at, Outcome::Empty)
                    })
                    .collect();
                lake.put_log(&big, entries).await.unwrap();
            }
            lake.compact_manifest(&big).await.unwrap();
        });
        std::fs::write(&big_marker, b"").unwrap();
    }
    let mut g = c.benchmark_group("manifest_100k_requests");
    g.sample_size(20);
    g.bench_function("load_compacted_manifest", |b| b.iter(|| rt.block_on(lake.manifest(&big)).unwrap().entries.len()));
    let big_spec = SeriesSpec { dataset: Dataset::OptionBars, symbol: big.clone(), con_id: Some(7), series: daily };
    g.bench_function("missing_windows_one_contract", |b| {
        b.iter(|| rt.block_on(Coverage::new(&lake).missing_windows(&big_spec, from, to)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
