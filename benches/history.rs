//! The surface history (`Lake::surface_history`, `twslake surfaces`): 20 sessions of 1-minute
//! option mids (the synthetic market of the research tests: 5 expiries × 25 strikes × calls and
//! puts, 250 contracts, 1.95 M bars), a surface every 30 minutes of every session, fitted and
//! stored. Figures in BENCHMARKS.md ("Surface history").
//!
//! The lake is built once under `$CARGO_TARGET_DIR/history-bench-lake`; each iteration deletes
//! the stored history (the `surfaces` dataset and its manifest entries) and runs it again, so
//! every iteration loads, fits and writes all 20 sessions.

#[path = "../tests/it/research/market.rs"]
mod market;

use chrono::Duration;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::PathBuf;
use twslake::query::surface::history::{instants, HistoryOptions};
use twslake::query::surface::Surfaces;
use twslake::Lake;

const SESSIONS: usize = 20;

fn lake_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    PathBuf::from(target).join("history-bench-lake")
}

fn bench_history(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let m = market::Market { sessions: SESSIONS, minutes: 390, ..market::Market::standard() };
    let dir = lake_dir();
    let ready = dir.join(".complete");
    if !ready.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let t0 = std::time::Instant::now();
        rt.block_on(market::write(&Lake::open(dir.to_str().unwrap()).unwrap(), &m, None));
        std::fs::write(&ready, b"").unwrap();
        eprintln!("built {} in {:.1?}", dir.display(), t0.elapsed());
    }
    let lake = Lake::open(dir.to_str().unwrap()).unwrap();
    let days = m.days();
    let (from, to) = (days[0], days[SESSIONS - 1]);
    let now = twslake::calendar::session(to).unwrap().close + Duration::hours(1);
    let every = Duration::minutes(30);
    let n: usize = days.iter().map(|d| instants(*d, every).len()).sum();
    let mut opts = HistoryOptions::every(every);
    opts.surface.rates = twslake::query::iv::Rates { rate: market::RATE, dividend_yield: market::DIV };
    let clear = || {
        for sub in ["surfaces", "_manifest"] {
            let _ = std::fs::remove_dir_all(dir.join(sub));
        }
    };
    // One run reported in full: how the time splits between fitting and the rest.
    clear();
    let r = rt.block_on(Surfaces::new(&lake).surface_history(&m.symbol, from, to, now, &opts)).unwrap();
    eprintln!(
        "{} sessions, {} instants, {} surfaces, {} rows: {:.2} s in all: {:.2} s loading, {:.2} s fitting on {} \
         threads, {:.2} s writing ({:.0} surfaces/s fitting, {:.0} end to end)",
        r.sessions,
        r.instants,
        r.surfaces,
        r.rows,
        r.secs,
        r.load_secs,
        r.fit_secs,
        opts.threads,
        r.write_secs,
        r.surfaces as f64 / r.fit_secs,
        r.surfaces as f64 / r.secs
    );
    let mut g = c.benchmark_group("surface_history");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.bench_function(format!("{SESSIONS}_sessions_every_30m_{}_threads", opts.threads), |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                clear();
                let t0 = std::time::Instant::now();
                let r = rt.block_on(Surfaces::new(&lake).surface_history(&m.symbol, from, to, now, &opts)).unwrap();
                total += t0.elapsed();
                assert_eq!(r.surfaces, n);
            }
            total
        })
    });
    // The same on one thread: what a core does.
    let one = HistoryOptions { threads: 1, ..opts.clone() };
    g.bench_function(format!("{SESSIONS}_sessions_every_30m_1_thread"), |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                clear();
                let t0 = std::time::Instant::now();
                rt.block_on(Surfaces::new(&lake).surface_history(&m.symbol, from, to, now, &one)).unwrap();
                total += t0.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench_history);
criterion_main!(benches);
