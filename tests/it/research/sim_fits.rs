//! Fits of the simulator's own quotes (its model mids through its bid/ask rounding), at 40 random
//! instants of two months for three underlyings: every slice within 0.15 vol points RMSE of the
//! truth with both checks passing, down to expiries a day away. Fast (no ingest), so it can
//! look at many instants; `ingest::surface` does the same through the whole pipeline.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use twslake::query::iv::Rates;
use twslake::query::surface::{fit_surface, SurfaceOptions};
use twslake::sim::market::options::bid_ask;
use twslake::sim::market::symbols::SymbolSpec;
use twslake::sim::market::Market;
use twslake::sim::truth::{truth, Truth};
use twslake::sim::ManualClock;

/// The exercise style the simulator prices these symbols' options with.
const SIM_STYLE: &str = "european";

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
    let style = vec![SIM_STYLE; e.len()];
    let df =
        df!("expiry" => e, "strike" => k, "right" => r, "close" => p, "t" => tt, "exercise_style" => style).unwrap();
    df.lazy().with_column(col("expiry").cast(DataType::Date)).collect().unwrap()
}

/// The worst slice RMSE (vol units) against the truth at `at`, with its expiry.
fn worst(market: &Market, symbol: &str, at: DateTime<Utc>) -> (f64, String) {
    let t = truth(market, symbol, at).unwrap();
    let opts = SurfaceOptions { rates: Rates { rate: t.rate, dividend_yield: t.dividend_yield }, ..Default::default() };
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
    for _ in 0..40 {
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
