//! The surface history (`surfaces`): equal to `surface` at every instant, close to the known
//! surface, its standardized grid, written once per inputs, and whole after a killed run.

use super::market::{self, Market};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;
use twslake::datasets::surfaces::{self, RowKind, SurfaceRow};
use twslake::datasets::Dataset;
use twslake::query::surface::history::{instants, rows_of, HistoryOptions};
use twslake::query::surface::SurfaceOptions;
use twslake::query::surface::Surfaces;
use twslake::Lake;

/// Three full sessions of the synthetic market, its rates in the options.
fn sessions(n: usize) -> Market {
    Market { sessions: n, minutes: 390, ..Market::standard() }
}

fn opts() -> HistoryOptions {
    let mut o = HistoryOptions::every(Duration::minutes(30));
    o.surface = SurfaceOptions {
        rates: twslake::query::iv::Rates { rate: market::RATE, dividend_yield: market::DIV },
        ..Default::default()
    };
    o.threads = 2;
    o
}

/// The stored rows of `lake`, by instant, as text without `computed_at`.
async fn stored(lake: &Lake, m: &Market) -> BTreeMap<DateTime<Utc>, Vec<String>> {
    let mut out: BTreeMap<DateTime<Utc>, Vec<String>> = BTreeMap::new();
    for p in lake.partitions(Dataset::Surfaces, Some(&m.symbol)).await.unwrap() {
        let data = lake.read_partition(&p).await.unwrap().unwrap();
        for r in surfaces::from_batch(&data.batch) {
            out.entry(r.at).or_default().push(text(r));
        }
    }
    for rows in out.values_mut() {
        rows.sort();
    }
    out
}

fn text(mut r: SurfaceRow) -> String {
    r.computed_at = DateTime::<Utc>::default();
    format!("{r:?}")
}

/// Every file of the lake with its bytes.
fn files(root: &std::path::Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.to_string_lossy().contains("/_locks/") {
                out.insert(p.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_is_the_surface_at_every_instant_and_is_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let lake = Lake::open(root.to_str().unwrap()).unwrap();
    let m = sessions(3);
    market::write(&lake, &m, None).await;
    let days = m.days();
    let now = twslake::calendar::session(days[2]).unwrap().close + Duration::hours(1);
    let o = opts();
    let r = Surfaces::new(&lake).surface_history(&m.symbol, days[0], days[2], now, &o).await.unwrap();
    assert_eq!((r.sessions, r.sessions_done, r.sessions_written), (3, 0, 3), "{r:?}");
    assert_eq!((r.instants, r.surfaces), (39, 39), "{r:?}");
    let rows = stored(&lake, &m).await;
    assert_eq!(rows.len(), 39);
    for (at, rows) in &rows {
        // The stored rows are exactly the rows of the surface asked for at that instant.
        let s = Surfaces::new(&lake).surface(&m.symbol, *at, &o.surface).await.unwrap();
        let mut want: Vec<String> = rows_of(&s, now).into_iter().map(text).collect();
        want.sort();
        assert_eq!(rows, &want, "at {at}");
        // The quotes are the synthetic market's, priced from the known surface.
        assert_eq!(s.listing.name(), if *at >= m.snapshots()[0] { "snapshot" } else { "bars" });
        for e in &s.expiries {
            assert!(e.butterfly_ok && e.calendar_ok, "{at} {}", e.expiry);
            for p in &e.points {
                let truth = market::true_vol(s.spot, p.strike, e.t);
                assert!((e.vol_at_strike(p.strike) - truth).abs() < 0.0015, "{at} {} K={}", e.expiry, p.strike);
            }
        }
    }
    // A second run finds every session written from the same inputs: it writes nothing.
    let before = files(&root);
    let r = Surfaces::new(&lake).surface_history(&m.symbol, days[0], days[2], now, &o).await.unwrap();
    assert_eq!((r.sessions_done, r.sessions_written, r.rows), (3, 0, 0), "{r:?}");
    assert_eq!(files(&root), before, "a second run changed the lake");
    // New option bars on the second day (a strike added): that day is fitted again, and so is
    // the next, whose first quotes may reach back into it.
    let extra = Market { strikes: vec![131.5], ..m.clone() };
    let added: Vec<_> = market::option_rows(&extra, None).into_iter().filter(|b| b.bar.date == days[1]).collect();
    let batch = twslake::datasets::option_bars::to_batch(&added);
    lake.write(Dataset::OptionBars, &m.symbol, &batch, Some("added-strike")).await.unwrap();
    let r = Surfaces::new(&lake).surface_history(&m.symbol, days[0], days[2], now, &o).await.unwrap();
    assert_eq!((r.sessions_done, r.sessions_written), (1, 2), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grid_follows_the_known_surface_without_calendar_arbitrage() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    // Expiries of 4 weeks to 7 months: the grid's 30, 60, 91 and 182 days lie between them.
    let m = Market { minutes: 60, ..Market::standard() };
    market::write(&lake, &m, None).await;
    let at = m.open() + Duration::minutes(45);
    let s = Surfaces::new(&lake).surface(&m.symbol, at, &opts().surface).await.unwrap();
    let grid = twslake::query::surface::grid::standardize(&s);
    let days: std::collections::BTreeSet<i64> = grid.iter().map(|g| g.days).collect();
    assert_eq!(days.into_iter().collect::<Vec<_>>(), vec![30, 60, 91, 182], "maturities inside the fitted ones only");
    for g in &grid {
        // The known surface at the grid point's own strike and maturity (linear interpolation of
        // total variance in maturity is all the error there is).
        let truth = market::true_vol(s.spot, g.strike, g.t);
        assert!((g.iv - truth).abs() < 0.002, "{} days, delta {}: {} vs {truth}", g.days, g.delta, g.iv);
        let d1 = (-g.k + g.iv * g.iv * g.t / 2.0) / (g.iv * g.t.sqrt());
        assert!((normal_cdf(d1) - g.delta).abs() < 1e-6, "the strike has the delta");
    }
    // Total variance never falls with maturity at any log-moneyness the grid covers.
    for k in [-0.2, -0.1, -0.05, 0.0, 0.05, 0.1] {
        let ws: Vec<f64> =
            (20..=200).filter_map(|d| twslake::query::surface::grid::total_variance(&s, k, d as f64 / 365.0)).collect();
        assert!(ws.len() > 10, "k {k}: {} maturities", ws.len());
        assert!(ws.windows(2).all(|w| w[1] >= w[0]), "k {k}: total variance falls with maturity");
    }
    // Wings the quotes do not reach are left out: nothing at 10-delta for the 30 days (strikes
    // 70–130 reach about 2.2 standard deviations there).
    let ten = grid.iter().filter(|g| g.days == 182 && (g.delta - 0.9).abs() < 1e-9).count();
    assert_eq!(ten, 1);
}

fn normal_cdf(x: f64) -> f64 {
    // Abramowitz–Stegun 7.1.26 through erf; enough for a 1e-6 check of a 1e-7 implementation.
    0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

fn erf(x: f64) -> f64 {
    // Numerical Recipes' erfc Chebyshev fit (|error| < 1.2e-7).
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        1.0 - r
    } else {
        r - 1.0
    }
}

/// `twslake surfaces` over the market's sessions into `url`.
fn cli(m: &Market, url: &str) -> std::process::Command {
    let days = m.days();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_twslake"));
    c.args(["surfaces", "SPY", "--lake", url, "--every", "30m", "--threads", "1", "--json"])
        .args(["--from", &days[0].to_string(), "--to", &days[days.len() - 1].to_string()])
        .args(["--rate", &market::RATE.to_string(), "--dividend-yield", &market::DIV.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

/// Runs `cmd` and kills it as soon as `ready` holds (or lets it finish); true if it was killed.
fn kill_when(cmd: &mut std::process::Command, ready: impl Fn() -> bool) -> bool {
    let mut child = cmd.spawn().unwrap();
    let t0 = std::time::Instant::now();
    while t0.elapsed() < std::time::Duration::from_secs(120) {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if ready() {
            let _ = child.kill();
            let _ = child.wait();
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the run neither finished nor reached the point to kill it in 120 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_then_a_rerun_equals_an_uninterrupted_run() {
    // Eleven sessions: three records of five, five and one session.
    let m = sessions(11);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (url_a, url_b) = (a.path().join("lake").display().to_string(), b.path().join("lake").display().to_string());
    let (lake_a, lake_b) = (Lake::open(&url_a).unwrap(), Lake::open(&url_b).unwrap());
    market::write(&lake_a, &m, None).await;
    market::write(&lake_b, &m, None).await;
    assert!(cli(&m, &url_a).status().unwrap().success(), "the uninterrupted run");
    let whole = stored(&lake_a, &m).await;
    // Thirteen instants a session, seven on the early close of the day after Thanksgiving.
    let instants: usize = m.days().iter().map(|d| instants(*d, Duration::minutes(30)).len()).sum();
    assert_eq!((whole.len(), instants), (10 * 13 + 7, 10 * 13 + 7));
    let manifest = b.path().join("lake/_manifest/symbol=SPY");
    let count = |prefix: &str| {
        std::fs::read_dir(&manifest)
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        // Manifest files only: a put killed mid-write leaves object_store's staging
                        // file (`pending-….json#N`), residue for the sweep, not a pending entry.
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.starts_with(prefix) && name.ends_with(".json")
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    // Killed while the first record is being written (its pending entry is out, its rows may be
    // half visible), then while the second is (one record visible), then between records.
    let logs = count("log-");
    assert!(kill_when(&mut cli(&m, &url_b), || count("pending-") > 0), "killed mid-record");
    let mut partial = 0;
    for _ in 0..2 {
        let before = count("log-").max(logs);
        if kill_when(&mut cli(&m, &url_b), || count("log-") > before) {
            let n = stored(&lake_b, &m).await.len();
            partial += usize::from(n > 0 && n < whole.len());
        }
        // Whatever a kill left is readable, and what is stored is what the whole run stores.
        for (at, rows) in stored(&lake_b, &m).await {
            assert_eq!(Some(&rows), whole.get(&at), "at {at}");
        }
    }
    assert!(partial >= 1, "no kill left a partly written history: the test proves nothing");
    assert!(cli(&m, &url_b).status().unwrap().success(), "the rerun");
    assert_eq!(stored(&lake_b, &m).await, whole);
    let report = lake_b.validate().await.unwrap();
    assert!(report.ok(), "{report:?}");
    // Every session is recorded once as done: a further run fits nothing.
    let days = m.days();
    let r = Surfaces::new(&lake_b).surface_history(&m.symbol, days[0], days[10], Utc::now(), &opts()).await.unwrap();
    assert_eq!((r.sessions_done, r.sessions_written), (11, 0), "{r:?}");
    assert_eq!(count("pending-"), 0, "pending entries were settled");
}

#[test]
fn expiry_rows_carry_the_fit_and_grid_rows_the_points() {
    let row = |kind| SurfaceRow {
        at: DateTime::<Utc>::default(),
        date: Default::default(),
        kind,
        t: 0.1,
        forward: 1.0,
        discount: 1.0,
        atm_vol: None,
        spot: 1.0,
        series: String::new(),
        listing: "bars".into(),
        computed_at: DateTime::<Utc>::default(),
    };
    let g = row(RowKind::Grid(surfaces::GridFit { days: 7, delta: 0.5, strike: 1.0, k: 0.0, iv: 0.2 }));
    let batch = surfaces::to_batch(std::slice::from_ref(&g));
    assert!(batch.column_by_name("expiry").unwrap().is_null(0));
    assert_eq!(surfaces::from_batch(&batch), vec![g]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_without_option_bars_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let lake = Lake::open(root.to_str().unwrap()).unwrap();
    let m = Market { minutes: 30, ..Market::standard() };
    market::write(&lake, &m, None).await;
    let before = files(&root);
    let now = m.open() + Duration::days(1);
    let qqq = twslake::domain::Symbol::new("QQQ").unwrap();
    let e = Surfaces::new(&lake).surface_history(&qqq, m.day, m.day, now, &opts()).await.unwrap_err().to_string();
    assert!(e.contains("QQQ 2024-11-22 .. 2024-11-22") && e.contains("series: none"), "{e}");
    let (a, b) = ("2023-01-03".parse().unwrap(), "2023-01-31".parse().unwrap());
    let e = Surfaces::new(&lake).surface_history(&m.symbol, a, b, now, &opts()).await.unwrap_err().to_string();
    assert!(e.contains("1 min MIDPOINT (2024-11-22 .. 2024-11-22, 1 day)"), "{e}");
    let e = Surfaces::new(&lake).surface_history(&m.symbol, b, a, now, &opts()).await.unwrap_err().to_string();
    assert!(e.contains("--from is after --to"), "{e}");
    assert_eq!(files(&root), before, "a refused history wrote something");
}
