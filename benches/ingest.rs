//! The ingest benchmark of issue [ingest], against the in-process simulator over loopback TCP with
//! the real `ibapi` client, in release (`cargo bench --bench ingest`). Prints two tables:
//!
//! 1. **Pacing**: simulator and client both at `pacing_scale = 60` (a 10-second window), `setup`
//!    of SPY with 150 option contracts × 2 sessions of 1-minute MIDPOINT bars (one request per
//!    contract-day): requests sent, elapsed, the sustained rate per scaled 10-minute window, and
//!    the pacing violations seen by the simulator and by the client.
//! 2. **Throughput, pacing off**: `setup` of SPY, QQQ and AAPL (1-minute TRADES over 20 sessions,
//!    100 option contracts × 5 sessions of 1-minute MIDPOINT each) into a local lake in a tempdir:
//!    rows written per second, requests per second, and the same requests replayed against the
//!    gateway alone (no lake) for the split between the gateway and the writing.
//!
//! `INGEST_BENCH_SESSIONS` overrides the option sessions of the pacing run (default 2).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::{stream, StreamExt};
use twslake::clock::Clock;
use twslake::domain::{Series, Symbol};
use twslake::jobs::config::{parse_series, IngestConfig, OptionSelection};
use twslake::jobs::orchestrator::RunReport;
use twslake::jobs::Ingest;
use twslake::sim::{ManualClock, Outcome, RequestRecord, Sim, SimHandle};
use twslake::source::ib::{IbConfig, IbSource};
use twslake::source::{
    ChainParams, ContractQuery, HistRequest, Instrument, MarketData, NoticeStream, RawBar, SourceError, StreamContract,
    TickStream,
};
use twslake::Lake;

/// Tuesday 2026-11-24 after the close: every bar of the day is final.
const AFTER_CLOSE: &str = "2026-11-24T21:30:00Z";
/// The pacing run's scale: IB's 10-minute window becomes 10 seconds.
const PACING_SCALE: f64 = 60.0;
/// IB's global window, scaled.
const WINDOW_SECS: f64 = 600.0 / PACING_SCALE;

static CLIENT_IDS: AtomicI32 = AtomicI32::new(1);

/// A source that remembers every historical request it forwards (for the gateway-only replay).
struct Recording<S> {
    inner: S,
    hist: Mutex<Vec<HistRequest>>,
}

impl<S: MarketData> MarketData for Recording<S> {
    fn contract_details(
        &self,
        q: &ContractQuery,
    ) -> impl Future<Output = Result<Vec<twslake::datasets::contracts::Contract>, SourceError>> + Send {
        self.inner.contract_details(q)
    }

    fn option_chain(
        &self,
        symbol: &Symbol,
        underlying_con_id: i64,
    ) -> impl Future<Output = Result<Vec<ChainParams>, SourceError>> + Send {
        self.inner.option_chain(symbol, underlying_con_id)
    }

    fn head_timestamp(
        &self,
        instrument: &Instrument,
        series: Series,
    ) -> impl Future<Output = Result<DateTime<Utc>, SourceError>> + Send {
        self.inner.head_timestamp(instrument, series)
    }

    fn historical_bars(&self, req: &HistRequest) -> impl Future<Output = Result<Vec<RawBar>, SourceError>> + Send {
        self.hist.lock().unwrap_or_else(|e| e.into_inner()).push(req.clone());
        self.inner.historical_bars(req)
    }

    fn stream_quotes(&self, contract: &StreamContract) -> impl Future<Output = Result<TickStream, SourceError>> + Send {
        self.inner.stream_quotes(contract)
    }

    fn notices(&self) -> Result<NoticeStream, SourceError> {
        self.inner.notices()
    }
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(AFTER_CLOSE).expect("time").with_timezone(&Utc)
}

async fn sim(scale: f64) -> SimHandle {
    Sim::builder()
        .listen("127.0.0.1:0")
        .seed(7)
        .pacing_scale(scale)
        .clock(Arc::new(ManualClock::new(now())))
        .start()
        .await
        .expect("simulator")
}

async fn source(sim: &SimHandle) -> IbSource {
    let ib = IbConfig {
        gateway: sim.address(),
        client_id: CLIENT_IDS.fetch_add(1, Ordering::SeqCst),
        timeout: Duration::from_secs(30),
    };
    IbSource::connect(&ib).await.expect("connect to the simulator")
}

async fn ingest(sim: &SimHandle, lake: &Lake, cfg: IngestConfig) -> Ingest<Recording<IbSource>> {
    let src = Recording { inner: source(sim).await, hist: Mutex::new(Vec::new()) };
    let clock: Arc<dyn Clock> = sim.market().clock().clone();
    Ingest::new(lake.clone(), src, cfg, clock)
}

fn historical(sim: &SimHandle) -> Vec<RequestRecord> {
    sim.requests().into_iter().filter(|r| r.kind == "historical_data").collect()
}

fn syms(names: &[&str]) -> Vec<Symbol> {
    names.iter().map(|s| Symbol::new(s).expect("symbol")).collect()
}

fn check(report: &RunReport) {
    if !report.complete() {
        eprintln!("warning: the run is not complete: {report:#?}");
    }
}

fn secs(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_microseconds().unwrap_or(0) as f64 / 1e6
}

async fn pacing() {
    let sessions: u32 = std::env::var("INGEST_BENCH_SESSIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    let sim = sim(PACING_SCALE).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(&dir.path().join("lake").display().to_string()).expect("lake");
    let cfg = IngestConfig {
        equity: vec![parse_series("1 day/TRADES/5", 5).expect("series")],
        options: OptionSelection {
            strike_band: 0.2,
            max_contracts: 150,
            series: vec![parse_series("1 min/MIDPOINT", 1).expect("series").series],
            sessions,
            ..Default::default()
        },
        pacing_scale: PACING_SCALE,
        concurrency: 8,
        ..Default::default()
    };
    let run = ingest(&sim, &lake, cfg).await;
    let t0 = Instant::now();
    let report = run.setup(&syms(&["SPY"])).await;
    let wall = t0.elapsed().as_secs_f64();
    check(&report);

    let log = historical(&sim);
    let n = log.len();
    let times: Vec<DateTime<Utc>> = log.iter().map(|r| r.time).collect();
    let (first, last) = (times[0], times[n - 1]);
    let span = secs(first, last);
    let sustained = (n as f64 - 60.0) / (span / WINDOW_SECS);
    // Bursts: a new one starts after a gap of more than a second.
    let starts: Vec<usize> = (0..n).filter(|&i| i == 0 || secs(times[i - 1], times[i]) > 1.0).collect();
    let last_start = *starts.last().expect("a burst");
    let full_windows =
        if starts.len() > 1 { last_start as f64 / (secs(first, times[last_start]) / WINDOW_SECS) } else { f64::NAN };
    let periods: Vec<f64> = starts.windows(2).map(|w| secs(times[w[0]], times[w[1]])).collect();
    let burst_len: Vec<f64> = starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let end = starts.get(k + 1).map_or(n - 1, |e| e - 1);
            secs(times[s], times[end])
        })
        .collect();
    // The most requests the simulator saw in any window of 10 s (its own rule: ≤ 60).
    let busiest =
        (0..n).map(|i| times[i..].iter().take_while(|t| secs(times[i], **t) < WINDOW_SECS).count()).max().unwrap_or(0);
    let refused_162 = log.iter().filter(|r| matches!(r.outcome, Outcome::Error { code: 162 })).count();
    let other_errors = log.iter().filter(|r| matches!(r.outcome, Outcome::Error { code } if code != 162)).count();
    let options = log.iter().filter(|r| r.sec_type.as_deref() == Some("OPT")).count();
    let contracts: std::collections::BTreeSet<_> =
        log.iter().filter(|r| r.sec_type.as_deref() == Some("OPT")).filter_map(|r| r.con_id).collect();

    println!("## Pacing: pacing_scale {PACING_SCALE} on both sides (window {WINDOW_SECS} s), concurrency 8");
    println!("| what | value |");
    println!("|---|---|");
    println!(
        "| historical requests (simulator log) | {n} ({options} option requests, {} contracts × {sessions} sessions; {} equity) |",
        contracts.len(),
        n - options
    );
    println!("| `setup` wall time | {wall:.2} s |");
    println!("| first → last historical request | {span:.2} s = {:.3} windows |", span / WINDOW_SECS);
    println!("| sustained, (n − 60) / (span / window) | **{sustained:.2}** per window |");
    println!("| sustained over full windows, (requests before the last burst) / (time to it) | **{full_windows:.2}** per window |");
    println!(
        "| bursts: count, period between starts (s), length (s) | {}, {}, {} |",
        starts.len(),
        fmt_list(&periods),
        fmt_list(&burst_len)
    );
    println!("| busiest 10 s window at the simulator | {busiest} requests |");
    println!("| pacing violations seen by the simulator (162) | **{refused_162}** |");
    println!("| pacing violations reported by the client | **{}** |", report.pacing_violations);
    println!("| other refusals | {other_errors} |");
    println!("| client pacing wait (sum over requests) | {:.1} s |", report.pacing_wait_secs);
    println!("| rows written | {} |", report.rows.values().sum::<u64>());
    println!();
    sim.shutdown().await;
}

fn fmt_list(v: &[f64]) -> String {
    let s: Vec<String> = v.iter().map(|x| format!("{x:.3}")).collect();
    format!("[{}]", s.join(", "))
}

async fn throughput() {
    // Scaled a billion-fold, the simulator's windows are nanoseconds: it cannot refuse for
    // pacing except for more than 50 requests open at once (the run keeps 8 open at most).
    let sim = sim(1e9).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(&dir.path().join("lake").display().to_string()).expect("lake");
    let cfg = IngestConfig {
        equity: vec![
            parse_series("1 day/TRADES/5", 5).expect("series"),
            parse_series("1 min/TRADES/20", 20).expect("series"),
        ],
        options: OptionSelection {
            strike_band: 0.2,
            max_contracts: 100,
            series: vec![parse_series("1 min/MIDPOINT", 1).expect("series").series],
            sessions: 5,
            ..Default::default()
        },
        pacing_off: true,
        concurrency: 8,
        ..Default::default()
    };
    let symbols = syms(&["SPY", "QQQ", "AAPL"]);
    let run = ingest(&sim, &lake, cfg).await;
    let t0 = Instant::now();
    let report = run.setup(&symbols).await;
    let wall = t0.elapsed().as_secs_f64();
    check(&report);
    let log = historical(&sim);
    let n = log.len();
    let refused = log.iter().filter(|r| matches!(r.outcome, Outcome::Error { .. })).count();
    let rows: u64 = report.rows.values().sum();
    let bar_rows: u64 = report.rows.iter().filter(|(k, _)| k.ends_with("bars")).map(|(_, v)| *v).sum();
    let other: BTreeMap<String, u64> = sim.requests().into_iter().fold(BTreeMap::new(), |mut m, r| {
        if r.kind != "historical_data" {
            *m.entry(r.kind).or_default() += 1;
        }
        m
    });

    // The same historical requests against the gateway alone: ibapi and the simulator, no lake.
    let replay: Vec<HistRequest> = run.source.hist.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let gateway = source(&sim).await;
    let t1 = Instant::now();
    let bars: usize = stream::iter(replay.iter())
        .map(|r| {
            let g = &gateway;
            async move { g.historical_bars(r).await.map(|b| b.len()).unwrap_or(0) }
        })
        .buffer_unordered(8)
        .fold(0, |a, b| async move { a + b })
        .await;
    let gw = t1.elapsed().as_secs_f64();

    println!("## Throughput, pacing off: `setup` of SPY, QQQ, AAPL, local lake, concurrency 8");
    println!("| what | value |");
    println!("|---|---|");
    println!("| historical requests | {n} ({refused} refused) |");
    println!("| other requests | {other:?} |");
    println!("| rows written | {rows} ({bar_rows} bar rows) by dataset {:?} |", report.rows);
    println!("| `setup` wall time | {wall:.2} s |");
    println!("| **rows written per second** | **{:.0}** |", rows as f64 / wall);
    println!("| historical requests per second | {:.0} |", n as f64 / wall);
    println!(
        "| gateway alone: the {} requests replayed, no lake | {gw:.2} s, {bars} bars, {:.0} bars/s, {:.0} req/s |",
        replay.len(),
        bars as f64 / gw,
        replay.len() as f64 / gw
    );
    println!(
        "| the rest (lake writes, manifest, planning) | {:.2} s ({:.0} % of the run) |",
        wall - gw,
        100.0 * (wall - gw) / wall
    );
    println!();
    sim.shutdown().await;
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks one part.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let want = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    if want("pacing") {
        rt.block_on(pacing());
    }
    if want("throughput") {
        rt.block_on(throughput());
    }
}
