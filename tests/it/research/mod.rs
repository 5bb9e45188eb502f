//! Research queries on a lake priced from a known volatility surface: implied vols, forwards,
//! the fitted surface against the truth, point-in-time answers, and the two commands.

mod american;
mod history;
pub mod market;
mod pit_props;
mod sim_fits;
mod styles;

use chrono::{DateTime, Duration, Utc};
use market::{Market, DIV, RATE};
use polars::prelude::*;
use twslake::calendar::time_to_expiry;
use twslake::query::collect;
use twslake::query::iv::{self, ForwardSource, IvColumns};
use twslake::query::pit::PointInTime;
use twslake::query::pit::{AsOf, SPOT_SERIES};
use twslake::query::surface::SurfaceOptions;
use twslake::query::surface::Surfaces;
use twslake::Lake;

async fn market_lake() -> (tempfile::TempDir, Lake, Market) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let m = Market::standard();
    market::write(&lake, &m, None).await;
    (dir, lake, m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surface_recovers_the_known_surface() {
    let (_dir, lake, m) = market_lake().await;
    let at = m.open() + Duration::minutes(45);
    let s = Surfaces::new(&lake).surface(&m.symbol, at, &SurfaceOptions::default()).await.unwrap();
    let spot = m.spot_at(at).unwrap();
    assert_eq!(s.spot, spot);
    assert_eq!(s.expiries.len(), 5, "skipped: {:?}", s.skipped);
    for e in &s.expiries {
        let t = time_to_expiry(at, e.expiry);
        assert!((e.t - t).abs() < 1e-15);
        // Put–call parity recovers the forward and the discount factor.
        assert_eq!(e.forward_source, ForwardSource::Parity);
        let (f, d) = (spot * ((RATE - DIV) * t).exp(), (-RATE * t).exp());
        assert!((e.forward / f - 1.0).abs() < 1e-9, "{} forward {} vs {f}", e.expiry, e.forward);
        assert!((e.discount - d).abs() < 1e-9, "{} discount {} vs {d}", e.expiry, e.discount);
        // Market vols are the true vols; the fit is within 0.15 vol points RMSE of the truth.
        let mut sq = 0.0;
        for p in &e.points {
            let truth = market::true_vol(spot, p.strike, t);
            assert!((p.iv_market - truth).abs() < 1e-8, "{} K={} {} vs {truth}", e.expiry, p.strike, p.iv_market);
            sq += (p.iv_fit - truth).powi(2);
        }
        let rmse_truth = (sq / e.points.len() as f64).sqrt();
        assert!(rmse_truth < 0.0015, "{}: RMSE to truth {rmse_truth}", e.expiry);
        assert!(e.points.len() >= 10, "{}: {} points", e.expiry, e.points.len());
        assert!(e.butterfly_ok && e.calendar_ok, "{}: min g {}", e.expiry, e.min_g);
    }
    assert!(s.arbitrage_free());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implied_vols_round_trip_on_the_option_panel() {
    let (_dir, lake, m) = market_lake().await;
    let at = m.open() + Duration::minutes(20);
    let q = AsOf { symbol: m.symbol.clone(), series: market::MIDPOINT_1M, from: m.day, at };
    let panel = collect(PointInTime::new(&lake).option_panel(&q, SPOT_SERIES[0]).await.unwrap()).await.unwrap();
    assert_eq!(panel.height(), 20 * 4 * 25 * 2);
    let rates = iv::Rates { rate: RATE, dividend_yield: DIV };
    let panel = rates.with_columns(panel.lazy()).collect().unwrap();
    let cols = IvColumns::default();
    let out = iv::with_greeks(iv::with_implied_vol(panel, &cols).unwrap(), &cols).unwrap();
    let f = |n: &str| out.column(n).unwrap().f64().unwrap().into_no_null_iter().collect::<Vec<f64>>();
    let (ivs, spot, k, t, vega) = (f("iv"), f("spot"), f("strike"), f("t"), f("vega"));
    let mut checked = 0;
    for i in 0..out.height() {
        // Where vega is tiny the price carries no information about the vol (STACK.md's bound).
        if vega[i] < 1e-2 {
            continue;
        }
        let truth = market::true_vol(spot[i], k[i], t[i]);
        assert!((ivs[i] - truth).abs() < 1e-10, "row {i}: {} vs {truth}", ivs[i]);
        checked += 1;
    }
    assert!(checked > out.height() / 2, "{checked}");
    // The as-of join saw the spot of the bar that ended with the option bar.
    let ends = out.column("end").unwrap().datetime().unwrap().phys.clone();
    let spot_ends = out.column("spot_end").unwrap().datetime().unwrap().phys.clone();
    assert!(ends.iter().zip(spot_ends.iter()).all(|(a, b)| a == b && a.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_in_time_reads() {
    let (_dir, lake, m) = market_lake().await;
    let [snap1, snap2] = m.snapshots();
    // Inside a minute: the bar that started before `at` has not closed.
    let at = m.open() + Duration::seconds(10 * 60 + 30);
    let spot = PointInTime::new(&lake).spot_at(&m.symbol, at).await.unwrap();
    assert_eq!(spot.price, m.spot(9));
    assert_eq!(spot.as_of, m.open() + Duration::minutes(10));
    let expiries = |df: &DataFrame| df.column("expiration").unwrap().n_unique().unwrap();
    assert_eq!(expiries(&PointInTime::new(&lake).chain_as_of(&m.symbol, snap1).await.unwrap()), 4);
    assert_eq!(
        expiries(&PointInTime::new(&lake).chain_as_of(&m.symbol, snap2 - Duration::seconds(1)).await.unwrap()),
        4
    );
    assert_eq!(expiries(&PointInTime::new(&lake).chain_as_of(&m.symbol, snap2).await.unwrap()), 5);
    let early =
        PointInTime::new(&lake).chain_as_of(&m.symbol, snap1 - Duration::seconds(1)).await.unwrap_err().to_string();
    assert!(early.contains("SPY at") && early.contains("chain snapshot"), "{early}");
    let none = PointInTime::new(&lake).spot_at(&m.symbol, m.open()).await.unwrap_err().to_string();
    assert!(none.contains("SPY at"), "{none}");
    // Before the second snapshot its expiry is not on the surface, even with bars for it.
    let s = Surfaces::new(&lake)
        .surface(&m.symbol, snap2 - Duration::seconds(1), &SurfaceOptions::default())
        .await
        .unwrap();
    assert_eq!(s.expiries.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_symbols_and_empty_instants_are_named() {
    let (_dir, lake, m) = market_lake().await;
    let qqq = twslake::domain::Symbol::new("QQQ").unwrap();
    let at = m.open() + Duration::minutes(45);
    let e = Surfaces::new(&lake).surface(&qqq, at, &SurfaceOptions::default()).await.unwrap_err().to_string();
    assert!(e.contains("QQQ at 2024-11-22T15:15:00"), "{e}");
    let later: DateTime<Utc> = at + Duration::days(3);
    let e = Surfaces::new(&lake).surface(&m.symbol, later, &SurfaceOptions::default()).await.unwrap_err().to_string();
    assert!(e.contains("no MIDPOINT option bar with a spot ended in the 5 bars of session time"), "{e}");
    // It names the series the lake held before that session.
    assert!(e.contains("1 min MIDPOINT (2024-11-22 .. 2024-11-22, 1 day)"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surface_and_sql_commands() {
    let (dir, _lake, m) = market_lake().await;
    let url = dir.path().join("lake").display().to_string();
    let out = dir.path().join("points.parquet").display().to_string();
    let (code, stdout, stderr) = crate::support::twslake(
        &["surface", "SPY", "--at", "2024-11-22 10:15", "--lake", &url, "--json", "--out", &out],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for key in ["symbol", "at", "spot", "expiries"] {
        assert!(doc.get(key).is_some(), "{key}");
    }
    let e = &doc["expiries"][0];
    for key in
        ["expiry", "t", "forward", "a", "b", "rho", "m", "sigma", "rmse", "butterfly_ok", "calendar_ok", "points"]
    {
        assert!(e.get(key).is_some(), "{key}");
    }
    for key in ["strike", "k", "iv_market", "iv_fit"] {
        assert!(e["points"][0].get(key).is_some(), "{key}");
    }
    assert_eq!(doc["at"], "2024-11-22T15:15:00Z");
    let points = polars::prelude::ParquetReader::new(std::fs::File::open(&out).unwrap()).finish().unwrap();
    assert!(points.height() > 50);

    // `--dividend` refuses what is not EX_DATE=AMOUNT, naming the flag, and writes nothing.
    let fresh_out = dir.path().join("refused.parquet").display().to_string();
    for bad in ["2024-12-02", "2024-13-02=1", "2024-12-02=-1", "2024-12-02=nan", "x=1", "2024-12-02=1e9"] {
        let (code, stdout, stderr) = crate::support::twslake(
            &["surface", "SPY", "--at", "2024-11-22 10:15", "--lake", &url, "--dividend", bad, "--out", &fresh_out],
            &[],
        );
        assert_ne!(code, 0, "{bad}: {stdout}");
        assert!(stderr.contains("--dividend") && stderr.contains("EX_DATE=AMOUNT"), "{bad}: {stderr}");
        assert!(!std::path::Path::new(&fresh_out).exists(), "{bad}: wrote {fresh_out}");
    }

    let (code, _, stderr) = crate::support::twslake(&["surface", "SPY", "--at", "noon", "--lake", &url], &[]);
    assert_ne!(code, 0);
    assert!(stderr.contains("timestamp \"noon\""), "{stderr}");

    let q = "SELECT expiry, count(*) AS n FROM option_bars WHERE symbol = 'SPY' GROUP BY expiry ORDER BY expiry";
    let (code, stdout, stderr) = crate::support::twslake(&["sql", q, "--lake", &url, "--format", "csv"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "expiry,n");
    assert_eq!(lines.len(), 1 + m.expiries.len() + 1);
    let (code, stdout, _) =
        crate::support::twslake(&["sql", "SELECT count(*) AS n FROM chains", "--lake", &url, "--format", "json"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("\"n\""), "{stdout}");
    let (code, _, stderr) = crate::support::twslake(&["sql", "SELECT FROM WHERE", "--lake", &url], &[]);
    assert_ne!(code, 0);
    assert!(stderr.contains("SQL query"), "{stderr}");
}
