//! Processes sharing one gateway and one lake: one pacing budget (the ledger), one job per
//! symbol at a time (the lease), and a backfill that asks nothing before a contract's listing.

use super::{historical, ingest, AFTER_CLOSE};
use crate::support::Fixture;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Instant;
use twslake::calendar;
use twslake::domain::Symbol;
use twslake::jobs::config::parse_series;
use twslake::sim::market::options::listing_date;
use twslake::sim::{RequestRecord, SimHandle};

/// Pacing windows 100× shorter on both sides: IB's 60 requests per 10 minutes become 60 per 6 s,
/// so the three symbols' requests (about 80) overfill a window and the processes must share it.
/// Not shorter: the pacer's margin (3 % of the window + 25 ms, 205 ms here) must cover the time
/// between a request's admission and its arrival at the gateway, which on a loaded 2-core
/// machine with four debug processes was seen past 200 ms (a 500× scale left 61 ms and failed).
const SCALE: f64 = 100.0;

async fn paced_sim() -> SimHandle {
    super::sim_at_scaled(AFTER_CLOSE, SCALE).await
}

/// `twslake setup SYMBOLS…` as its own process on `lake`, through `sim`, with the ledger in `state`.
fn setup(symbols: &[&str], lake: &Fixture, sim: &SimHandle, state: &std::path::Path, client_id: i32) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_twslake"));
    c.arg("setup")
        .args(symbols)
        .args(["--lake", &lake.url, "--gateway", &sim.address(), "--client-id", &client_id.to_string()])
        .args(["--equity", "1 day/TRADES/20", "--equity", "1 min/TRADES/2", "--option-series", "1 min/MIDPOINT"])
        .args(["--expiry-days", "20", "--strike-band", "0.03", "--max-contracts", "12", "--option-sessions", "2"])
        .args(["--pacing-scale", &SCALE.to_string(), "--as-of", AFTER_CLOSE, "--config", "none.toml"])
        .env("TWSLAKE_STATE_DIR", state)
        .env_remove("TWSLAKE_GATEWAY")
        .envs(lake.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// The identity of a historical request as IB's identical-request rule sees it.
fn window_of(r: &RequestRecord) -> String {
    format!("{:?}|{:?}|{:?}|{:?}|{:?}|{:?}", r.con_id, r.symbol, r.end, r.duration, r.bar_size, r.what_to_show)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_concurrent_setups_share_the_gateway_and_the_symbols() {
    four_concurrent_setups(5, || Some(Fixture::local())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_concurrent_setups_share_the_gateway_and_the_symbols_s3() {
    // The lease and the manifest on S3's conditional puts; fewer rounds (each costs more there).
    if Fixture::s3().is_some() {
        four_concurrent_setups(2, Fixture::s3).await;
    }
}

async fn four_concurrent_setups(rounds: i32, fixture: impl Fn() -> Option<Fixture>) {
    let groups: [&[&str]; 4] = [&["SPY", "QQQ"], &["QQQ", "AAPL"], &["SPY", "AAPL"], &["SPY"]];
    let t0 = Instant::now();
    let mut figures = Vec::new();
    for round in 0..rounds {
        let sim = paced_sim().await;
        let lake = fixture().expect("a lake");
        let state = tempfile::tempdir().unwrap();
        let children: Vec<_> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| setup(g, &lake, &sim, state.path(), 300 + 10 * round + i as i32).spawn().unwrap())
            .collect();
        let outputs: Vec<_> =
            tokio::task::spawn_blocking(move || children.into_iter().map(|c| c.wait_with_output().unwrap()).collect())
                .await
                .unwrap();
        for (g, out) in groups.iter().zip(&outputs) {
            assert!(
                out.status.success(),
                "round {round}: setup {g:?} exited {:?}\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let log = sim.requests();
        let violations: Vec<_> = log.iter().filter(|r| r.violation.is_some()).collect();
        if let Some(v) = violations.first() {
            let t: Vec<String> = historical(&sim)
                .iter()
                .filter(|r| r.time <= v.time && r.time > v.time - chrono::Duration::milliseconds(1300))
                .map(|r| format!("{} {} {:?}", r.time.format("%S%.3f"), r.client_id, r.violation))
                .collect();
            eprintln!("round {round}: {} requests in the window before the first violation: {t:#?}", t.len());
        }
        assert!(violations.is_empty(), "round {round}: pacing violations at the gateway: {violations:#?}");
        let hist = historical(&sim);
        let mut asked: BTreeMap<String, usize> = BTreeMap::new();
        for r in &hist {
            *asked.entry(window_of(r)).or_default() += 1;
        }
        let twice: Vec<_> = asked.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "round {round}: windows asked more than once: {twice:#?}");
        let mut chains: BTreeMap<String, usize> = BTreeMap::new();
        for r in log.iter().filter(|r| r.kind == "option_chain") {
            *chains.entry(r.symbol.clone().unwrap_or_default()).or_default() += 1;
        }
        let one_each: BTreeMap<String, usize> = ["AAPL", "QQQ", "SPY"].iter().map(|s| (s.to_string(), 1)).collect();
        assert_eq!(chains, one_each, "round {round}: one chain snapshot per symbol");
        // Every symbol's data is there, whichever process fetched it.
        let l = lake.lake();
        for s in ["SPY", "QQQ", "AAPL"] {
            let m = l.manifest(&Symbol::new(s).unwrap()).await.unwrap();
            assert!(m.entries.len() > 10, "round {round}: {s} has {} entries", m.entries.len());
        }
        assert!(l.validate().await.unwrap().ok(), "round {round}: the lake validates");
        figures.push(hist.len());
    }
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "4 concurrent setups × {rounds} rounds: historical requests per round {figures:?}, 0 violations, {secs:.1} s"
    );
    assert!(figures.iter().all(|n| *n > 60), "each round spends more than one pacing window: {figures:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_option_backfill_asks_nothing_before_a_listing() {
    let sim = super::sim_at(AFTER_CLOSE).await;
    let f = Fixture::local();
    let lake = f.lake();
    let mut cfg = super::small_config();
    // 20 sessions of 1-minute mids (one request per session), expiries up to 7 weeks out:
    // weeklies are listed 8 weeks before they expire, so the later ones were listed inside the
    // 20 sessions.
    cfg.equity = vec![parse_series("1 day/TRADES/30", 30).unwrap(), parse_series("1 min/TRADES/20", 20).unwrap()];
    cfg.options.series = vec![parse_series("1 min/MIDPOINT", 1).unwrap().series];
    cfg.options.sessions = 20;
    cfg.options.expiry_days = 50;
    cfg.options.strike_band = 0.008;
    cfg.options.max_contracts = 24;
    cfg.concurrency = 8;
    let run = ingest(&sim, &lake, cfg).await;
    let t0 = Instant::now();
    let report = run.setup(&[Symbol::new("SPY").unwrap()]).await;
    let secs = t0.elapsed().as_secs_f64();
    assert!(report.complete(), "{report:#?}");
    let last = calendar::last_finished_session(sim.market().now());
    let from = twslake::jobs::equity::sessions_back(last, 20);
    let options: Vec<RequestRecord> =
        historical(&sim).into_iter().filter(|r| r.sec_type.as_deref() == Some("OPT")).collect();
    // Requests name contracts by con_id: their expiries are in the stored descriptions.
    let expiries: BTreeMap<i64, chrono::NaiveDate> = run
        .stored_contracts(&Symbol::new("SPY").unwrap())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|c| Some((c.con_id, c.expiry?)))
        .collect();
    let mut contracts: BTreeMap<i64, chrono::NaiveDate> = BTreeMap::new();
    for r in &options {
        let con_id = i64::from(r.con_id.unwrap());
        contracts.insert(con_id, expiries[&con_id]);
    }
    // IB's duration table: 1-minute bars, one session per request, from the later of the
    // window's start and the contract's listing.
    let listed_inside = contracts.values().filter(|e| listing_date(**e) > from).count();
    let lower_bound: usize =
        contracts.values().map(|e| calendar::trading_days(from.max(listing_date(*e)), last).len()).sum();
    let no_data = options.iter().filter(|r| matches!(r.outcome, twslake::sim::Outcome::Error { .. })).count();
    let heads = sim.requests().iter().filter(|r| r.kind == "head_timestamp").count();
    eprintln!(
        "option backfill: {} contracts ({listed_inside} listed inside the window), {} requests, lower bound {lower_bound}, {no_data} refused, {heads} head timestamps, {secs:.1} s",
        contracts.len(),
        options.len()
    );
    assert!(contracts.len() >= 12 && listed_inside * 3 >= contracts.len(), "{listed_inside} of {}", contracts.len());
    assert!(
        options.len() as f64 <= 1.05 * lower_bound as f64,
        "{} requests for a lower bound of {lower_bound}",
        options.len()
    );
    // The sessions before a listing are settled: a second run asks nothing.
    let before = historical(&sim).len();
    let again = run.update(&[Symbol::new("SPY").unwrap()]).await;
    assert!(again.complete(), "{again:#?}");
    assert_eq!(historical(&sim).len(), before, "an update right after asks no window again");
}
