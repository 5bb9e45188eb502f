//! Fits of the simulator's own quotes (its model mids through its bid/ask rounding; American
//! prices with cash dividends, inverted as American with the simulator's dividend schedule), at
//! 20 random instants of two months for three underlyings (40 before American inversion made each
//! fit cost ~2 s in a debug build): every slice within 0.15 vol points RMSE of the
//! truth with both checks passing, down to expiries a day away. Fast (no ingest), so it can
//! look at many instants; `ingest::surface` does the same through the whole pipeline.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use twslake::query::iv::{CashDividend, Rates};
use twslake::query::surface::{fit_surface, SurfaceOptions};
use twslake::sim::market::options::bid_ask;
use twslake::sim::market::symbols::SymbolSpec;
use twslake::sim::market::Market;
use twslake::sim::truth::{truth, Truth};
use twslake::sim::ManualClock;

/// The quotes a 1-minute MIDPOINT bar would hold at `at`: strikes within `band` of the spot,
/// expiries within `days`, mids of the rounded bid and ask.
fn quotes(t: &Truth, band: f64, days: i64) -> DataFrame {
    let (mut e, mut k, mut r, mut p, mut tt) = (vec![], vec![], vec![], vec![], vec![]);
    let at_date = t.at.date_naive();
    for x in &t.expiries {
        let expiry = NaiveDate::parse_from_str(&x.expiry, "%Y%m%d").unwrap();
        if expiry > at_date + Duration::days(days) {
            continue;
        }
        for s in x.strikes.iter().filter(|s| (s.strike / t.spot - 1.0).abs() <= band) {
            for (right, model) in [("C", s.call), ("P", s.put)] {
                let (bid, ask) = bid_ask(model);
                e.push((expiry - NaiveDate::default()).num_days() as i32);
                k.push(s.strike);
                r.push(right);
                p.push((bid + ask) / 2.0);
                tt.push(x.t);
            }
        }
    }
    let df = df!("expiry" => e, "strike" => k, "right" => r, "close" => p, "t" => tt).unwrap();
    df.lazy().with_column(col("expiry").cast(DataType::Date)).collect().unwrap()
}

/// The worst slice RMSE (vol units) against the truth at `at`, with its expiry.
fn worst(market: &Market, symbol: &str, at: DateTime<Utc>) -> (f64, String) {
    let t = truth(market, symbol, at).unwrap();
    // The simulator's cash dividends, as a user who knows the schedule passes them.
    let dividends = t.dividends.iter().map(|d| CashDividend { ex_date: d.ex_date, amount: d.amount }).collect();
    let rates = Rates { rate: t.rate, dividend_yield: t.dividend_yield };
    let opts = SurfaceOptions { rates, dividends, ..Default::default() };
    let s = fit_surface(symbol, at, t.spot, &quotes(&t, 0.08, 45), None, &opts).unwrap();
    assert!(s.expiries.len() >= 4, "{symbol} at {at}: {} slices, {:?}", s.expiries.len(), s.skipped);
    let mut out = (0.0, String::new());
    for slice in &s.expiries {
        let tag = slice.expiry.format("%Y%m%d").to_string();
        let x = t.expiries.iter().find(|e| e.expiry == tag).unwrap();
        let errs: Vec<f64> = slice
            .points
            .iter()
            .map(|p| slice.vol_at_strike(p.strike) - x.strikes.iter().find(|s| s.strike == p.strike).unwrap().iv)
            .collect();
        let rmse = (errs.iter().map(|e| e * e).sum::<f64>() / errs.len() as f64).sqrt();
        assert!(slice.butterfly_ok && slice.calendar_ok, "{symbol} at {at} {tag}: checks {slice:?}");
        if rmse > out.0 {
            out = (rmse, format!("{symbol} at {at} {tag} (t {:.3}, {} points)", slice.t, slice.points.len()));
        }
    }
    out
}

#[test]
fn simulator_quotes_fit_within_the_goal_at_random_instants() {
    let clock = Arc::new(ManualClock::new("2026-11-24T21:30:00Z".parse().unwrap()));
    let market = Market::new(7, SymbolSpec::defaults(), clock);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let days = twslake::calendar::trading_days("2026-10-01".parse().unwrap(), "2026-11-24".parse().unwrap());
    let mut all = Vec::new();
    for _ in 0..20 {
        let d = days[rng.random_range(0..days.len())];
        let s = twslake::calendar::session(d).unwrap();
        let at = s.open + Duration::minutes(rng.random_range(5..(s.close - s.open).num_minutes()));
        for symbol in ["SPY", "QQQ", "BRK B"] {
            all.push(worst(&market, symbol, at));
        }
    }
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (rmse, what) in all.iter().take(3) {
        eprintln!("{:.4} vol points: {what}", rmse * 100.0);
    }
    assert!(all[0].0 <= 0.0015, "worst slice {:.3} vol points: {}", all[0].0 * 100.0, all[0].1);
}

/// The mean absolute error of the put points' market vols against the truth's, over a surface.
fn put_error(s: &twslake::query::surface::Surface, t: &Truth) -> f64 {
    let mut errs = Vec::new();
    for slice in &s.expiries {
        let tag = slice.expiry.format("%Y%m%d").to_string();
        let x = t.expiries.iter().find(|e| e.expiry == tag).unwrap();
        for p in slice.points.iter().filter(|p| p.right == twslake::domain::Right::Put) {
            errs.push((p.iv_market - x.strikes.iter().find(|s| s.strike == p.strike).unwrap().iv).abs());
        }
    }
    errs.iter().sum::<f64>() / errs.len() as f64
}

#[test]
fn the_simulators_american_quotes_read_as_european_miss_on_the_puts() {
    let clock = Arc::new(ManualClock::new("2026-11-24T21:30:00Z".parse().unwrap()));
    let market = Market::new(7, SymbolSpec::defaults(), clock);
    let at: DateTime<Utc> = "2026-11-24T17:00:00Z".parse().unwrap();
    let t = truth(&market, "SPY", at).unwrap();
    let dividends = t.dividends.iter().map(|d| CashDividend { ex_date: d.ex_date, amount: d.amount }).collect();
    let rates = Rates { rate: t.rate, dividend_yield: t.dividend_yield };
    let opts = SurfaceOptions { rates, dividends, ..Default::default() };
    let quotes = quotes(&t, 0.08, 120);
    let american = fit_surface("SPY", at, t.spot, &quotes, None, &opts).unwrap();
    let n = quotes.height();
    let as_european = quotes.hstack(&[Column::new("exercise_style".into(), vec!["european"; n])]).unwrap();
    let european = fit_surface("SPY", at, t.spot, &as_european, None, &opts).unwrap();
    let (a, e) = (put_error(&american, &t), put_error(&european, &t));
    eprintln!("mean put vol error: american {:.4}, european {:.4} vol points", a * 100.0, e * 100.0);
    // The American reading recovers the truth's put vols to the quotes' rounding; the European
    // one takes the early-exercise premium (and the plain parity line's bias) for vol.
    assert!(a < 0.0005, "american {a}");
    assert!(e > 3.0 * a && e > 0.0005, "european {e} vs american {a}");
}
