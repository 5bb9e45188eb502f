//! The simulator's truth, for comparing what a demo lake reconstructs with what generated it:
//! [`sim_truth`] per listed strike, [`sim_truth_grid`] through the same standardization as the
//! `surfaces` dataset's grid rows.

use crate::frames::{date_column, grid_frame, Frame};
use crate::{bad, instant, polars_err};
use polars::prelude::*;
use pyo3::prelude::*;
use twslake::domain::Right;
use twslake::query::iv::ForwardSource;
use twslake::query::surface::{grid, ExpirySlice, Listing, Surface, SurfacePoint};
use twslake::sim::market::{Market, SymbolSpec};
use twslake::sim::truth::{ExpiryTruth, StrikeTruth, Truth};

/// The truth of `sym` at `at` in the simulated market of `seed` (what `twslake demo` runs on
/// with seed 0).
fn truth_at(sym: &str, at: &str, seed: u64) -> PyResult<Truth> {
    let at = instant(at)?;
    let market = Market::new(seed, SymbolSpec::defaults(), std::sync::Arc::new(twslake::clock::WallClock));
    twslake::sim::truth::truth(&market, sym, at)
        .ok_or_else(|| bad("symbol", sym, "the simulator lists SPY, QQQ, AAPL, MSFT and BRK B, from 2000 on"))
}

fn expiry_date(e: &ExpiryTruth) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(&e.expiry, "%Y%m%d").ok()
}

/// The simulator's surface at an instant (the truth the demo lake was generated from): one row
/// per listed expiry and strike.
#[pyfunction]
#[pyo3(signature = (sym, at, seed=0))]
pub(crate) fn sim_truth(sym: &str, at: &str, seed: u64) -> PyResult<Frame> {
    let truth = truth_at(sym, at, seed)?;
    let rows: Vec<_> = truth.expiries.iter().flat_map(|e| e.strikes.iter().map(move |k| (e, k))).collect();
    let f = |get: &dyn Fn(&(&ExpiryTruth, &StrikeTruth)) -> f64| rows.iter().map(get).collect::<Vec<f64>>();
    let df = DataFrame::new_infer_height(vec![
        date_column("expiry", rows.iter().map(|(e, _)| expiry_date(e))).map_err(polars_err)?,
        Column::new("t".into(), f(&|(e, _)| e.t)),
        Column::new("forward".into(), f(&|(e, _)| e.forward)),
        Column::new("atm_vol".into(), f(&|(e, _)| e.atm_vol)),
        Column::new("strike".into(), f(&|(_, k)| k.strike)),
        Column::new("iv".into(), f(&|(_, k)| k.iv)),
        Column::new("call".into(), f(&|(_, k)| k.call)),
        Column::new("put".into(), f(&|(_, k)| k.put)),
    ])
    .map_err(polars_err)?;
    Ok(Frame::new(df))
}

/// The true surface as a fitted [`Surface`] would hold it: per expiry the true SVI, forward and
/// time, a discount from the simulator's rate, both checks passed, and a point at each listed
/// strike whose market and fitted vol are the true vol (so the grid's supported log-moneyness
/// range is the listed strikes', as a fit's is its quotes').
fn truth_surface(truth: &Truth) -> Surface {
    let mut s = Surface::new(&truth.symbol, truth.at, truth.spot);
    s.series = "truth".into();
    s.listing = Listing::Snapshot;
    s.expiries = truth
        .expiries
        .iter()
        .filter_map(|e| {
            let points = e
                .strikes
                .iter()
                .map(|k| SurfacePoint {
                    strike: k.strike,
                    k: (k.strike / e.forward).ln(),
                    iv_market: k.iv,
                    iv_fit: k.iv,
                    right: if k.strike >= e.forward { Right::Call } else { Right::Put },
                })
                .collect();
            Some(ExpirySlice {
                expiry: expiry_date(e)?,
                t: e.t,
                forward: e.forward,
                discount: (-truth.rate * e.t).exp(),
                forward_source: ForwardSource::Configured,
                a: e.svi.a,
                b: e.svi.b,
                rho: e.svi.rho,
                m: e.svi.m,
                sigma: e.svi.sigma,
                atm_vol: e.atm_vol,
                rmse: 0.0,
                butterfly_ok: true,
                calendar_ok: true,
                min_g: 0.0,
                oldest_quote: truth.at,
                newest_quote: truth.at,
                points,
            })
        })
        .collect();
    s
}

/// The simulator's true surface at an instant on the standardized grid: the same
/// [`grid::standardize`] that makes the `surfaces` dataset's grid rows, applied to the truth.
#[pyfunction]
#[pyo3(signature = (sym, at, seed=0))]
pub(crate) fn sim_truth_grid(sym: &str, at: &str, seed: u64) -> PyResult<Frame> {
    let truth = truth_at(sym, at, seed)?;
    let points = grid::standardize(&truth_surface(&truth));
    Ok(Frame::new(grid_frame(&points).map_err(polars_err)?))
}
