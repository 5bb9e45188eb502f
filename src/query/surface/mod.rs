//! The implied-volatility surface at an instant: per expiry a raw SVI fit in log-moneyness and
//! total variance to out-of-the-money mid prices, checked for butterfly and calendar arbitrage.
//!
//! [`Lake::surface`] reads only what was knowable at the instant (see [`super::pit`]): the spot
//! from [`Lake::spot_at`], the listed contracts from [`Lake::chain_as_of`], and for each listed
//! option its latest MIDPOINT bar that had closed by then (and not longer than
//! [`SurfaceOptions::max_staleness`] before). Per expiry: forward and discount from put–call
//! parity ([`super::iv::parity_forward`]), implied vols of the out-of-the-money side (puts below the
//! forward, calls at and above: US equity options are American, and out-of-the-money options
//! carry the least early-exercise premium) walking away from the money up to the price floor
//! (the first quote no dearer than the next one out: a zero bid or the tick), a fit
//! ([`svi::fit`]) weighing each quote by what its price can tell (a mid rounded to the cent moves
//! a cheap wing's vol by points: the rounding is seen through the quote's vega), and the checks ([`arbitrage`]: butterfly on the whole quoted range and a
//! margin beyond it; calendar only where neighbouring expiries both have quotes, beyond the
//! fits' own error). [`fit_surface`] does the same from a panel already in memory.

pub mod arbitrage;
mod build;
pub mod svi;

pub use build::fit_surface;

use super::iv::{ForwardSource, Rates};
use super::pit::{AsOf, SPOT_SERIES};
use crate::error::{Error, Result};
use crate::lake::layout::{BarSize, Series, Symbol, WhatToShow};
use crate::lake::Lake;
use crate::query::collect;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use polars::prelude::*;
use serde::Serialize;
use svi::SviParams;

/// How a surface is built.
#[derive(Debug, Clone)]
pub struct SurfaceOptions {
    /// The option bar series read (mid prices).
    pub series: Series,
    /// Option bars that closed longer than this before the instant are not used.
    pub max_staleness: Duration,
    /// Rates used where put–call parity cannot be solved.
    pub rates: Rates,
    /// Call/put pairs nearest the spot used in the parity regression.
    pub parity_pairs: usize,
    /// Expiries closer than this (years) are left out: their smiles are all noise.
    pub min_t: f64,
    /// Undiscounted prices below this are left out (no information in a quote of nothing).
    pub min_price: f64,
    /// Points of the check grids: the butterfly grid (over the quoted log-moneyness range,
    /// widened by [`SurfaceOptions::grid_margin`] on each side) and each calendar grid (over the
    /// range two neighbouring expiries both quote).
    pub grid_points: usize,
    /// How far beyond the quoted log-moneyness the butterfly check looks.
    pub grid_margin: f64,
}

impl Default for SurfaceOptions {
    fn default() -> Self {
        SurfaceOptions {
            series: Series { bar_size: BarSize::Min1, what_to_show: WhatToShow::Midpoint },
            max_staleness: Duration::minutes(30),
            rates: Rates { rate: 0.04, dividend_yield: 0.0 },
            parity_pairs: 6,
            min_t: 1.0 / 365.0,
            min_price: 1e-4,
            grid_points: 201,
            grid_margin: 0.1,
        }
    }
}

/// One quoted point of a slice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurfacePoint {
    /// Strike.
    pub strike: f64,
    /// Log-moneyness ln(K/F).
    pub k: f64,
    /// Implied vol of the out-of-the-money mid.
    pub iv_market: f64,
    /// Implied vol of the fit at `k`.
    pub iv_fit: f64,
    /// `C` or `P`: which side was used.
    pub right: String,
}

/// One expiry of a surface.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpirySlice {
    /// Expiration date.
    pub expiry: NaiveDate,
    /// ACT/365 years from the instant to the close of the expiry date's session (16:00 New York,
    /// 13:00 on early-close days).
    pub t: f64,
    /// Forward to expiry.
    pub forward: f64,
    /// Discount factor to expiry.
    pub discount: f64,
    /// Whether forward and discount came from parity or the configured rates.
    pub forward_source: ForwardSource,
    /// SVI level `a`.
    pub a: f64,
    /// SVI wing slope `b`.
    pub b: f64,
    /// SVI skew `ρ`.
    pub rho: f64,
    /// SVI shift `m`.
    pub m: f64,
    /// SVI curvature `σ`.
    pub sigma: f64,
    /// Root mean square of `iv_fit − iv_market` over the points (vol units: 0.01 = 1 vol point).
    pub rmse: f64,
    /// No butterfly arbitrage (`g(k) ≥ 0`, `w(k) > 0`) on the check grid.
    pub butterfly_ok: bool,
    /// No calendar arbitrage with the neighbouring expiries: on the log-moneyness range quoted
    /// by both, this slice's total variance is nowhere below the previous expiry's nor above the
    /// next one's by more than twice the two fits' combined total-variance error
    /// ([`arbitrage`]'s module docs). Wings beyond either slice's quotes are not judged.
    pub calendar_ok: bool,
    /// The smallest `g(k)` on the grid.
    pub min_g: f64,
    /// The quoted points.
    pub points: Vec<SurfacePoint>,
}

impl ExpirySlice {
    /// The slice's SVI parameters.
    pub fn params(&self) -> SviParams {
        SviParams { a: self.a, b: self.b, rho: self.rho, m: self.m, sigma: self.sigma }
    }

    /// The fitted implied vol at strike `strike`.
    pub fn vol_at_strike(&self, strike: f64) -> f64 {
        self.params().vol((strike / self.forward).ln(), self.t)
    }
}

/// An expiry that could not be fitted, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    /// Expiration date.
    pub expiry: NaiveDate,
    /// Why it has no slice.
    pub reason: String,
}

/// A volatility surface at an instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Surface {
    /// The underlying.
    pub symbol: String,
    /// The instant.
    pub at: DateTime<Utc>,
    /// The spot at the instant.
    pub spot: f64,
    /// The fitted expiries, nearest first.
    pub expiries: Vec<ExpirySlice>,
    /// Listed expiries with no slice.
    pub skipped: Vec<Skipped>,
}

impl Surface {
    /// The check grid's bounds: the quoted log-moneyness range widened by `margin`.
    pub fn grid_bounds(&self, margin: f64) -> (f64, f64) {
        let ks = self.expiries.iter().flat_map(|e| e.points.iter().map(|p| p.k));
        let (lo, hi) = ks.fold((f64::MAX, f64::MIN), |(lo, hi), k| (lo.min(k), hi.max(k)));
        (lo - margin, hi + margin)
    }

    /// True when every slice passes both checks.
    pub fn arbitrage_free(&self) -> bool {
        self.expiries.iter().all(|e| e.butterfly_ok && e.calendar_ok)
    }

    /// The points as a table: one row per (expiry, point) with the slice's fields.
    pub fn to_frame(&self) -> Result<DataFrame> {
        let rows = || self.expiries.iter().flat_map(|e| e.points.iter().map(move |p| (e, p)));
        let f = |get: fn(&ExpirySlice, &SurfacePoint) -> f64| rows().map(|(e, p)| get(e, p)).collect::<Vec<f64>>();
        let expiry: Vec<i32> = rows().map(|(e, _)| (e.expiry - NaiveDate::default()).num_days() as i32).collect();
        let df = DataFrame::new_infer_height(vec![
            Column::new("symbol".into(), vec![self.symbol.clone(); expiry.len()]),
            Column::new("expiry".into(), expiry).cast(&DataType::Date)?,
            Column::new("t".into(), f(|e, _| e.t)),
            Column::new("forward".into(), f(|e, _| e.forward)),
            Column::new("discount".into(), f(|e, _| e.discount)),
            Column::new("strike".into(), f(|_, p| p.strike)),
            Column::new("right".into(), rows().map(|(_, p)| p.right.clone()).collect::<Vec<String>>()),
            Column::new("k".into(), f(|_, p| p.k)),
            Column::new("iv_market".into(), f(|_, p| p.iv_market)),
            Column::new("iv_fit".into(), f(|_, p| p.iv_fit)),
            Column::new("a".into(), f(|e, _| e.a)),
            Column::new("b".into(), f(|e, _| e.b)),
            Column::new("rho".into(), f(|e, _| e.rho)),
            Column::new("m".into(), f(|e, _| e.m)),
            Column::new("sigma".into(), f(|e, _| e.sigma)),
            Column::new("rmse".into(), f(|e, _| e.rmse)),
            Column::new("butterfly_ok".into(), rows().map(|(e, _)| e.butterfly_ok).collect::<Vec<bool>>()),
            Column::new("calendar_ok".into(), rows().map(|(e, _)| e.calendar_ok).collect::<Vec<bool>>()),
        ])?;
        Ok(df)
    }
}

impl Lake {
    /// The volatility surface of `symbol` at `at`, from what the lake knew at `at`.
    ///
    /// Errors name the input when there is no spot, no chain snapshot or no option bar in the
    /// staleness window before `at`.
    pub async fn surface(&self, symbol: &Symbol, at: DateTime<Utc>, opts: &SurfaceOptions) -> Result<Surface> {
        let spot = self.spot_at(symbol, at).await?;
        let chain = self.chain_as_of(symbol, at).await?;
        let spot_series = SPOT_SERIES.into_iter().find(|s| s.what_to_show.ib() == spot.what_to_show);
        let from = crate::calendar::trading_date(at - opts.max_staleness);
        let q = AsOf { symbol: symbol.clone(), series: opts.series, from, at };
        let panel = self.option_panel(&q, spot_series.unwrap_or(SPOT_SERIES[0])).await?;
        let fresh = panel.filter(col("end").gt_eq(super::pit::ts_lit(at - opts.max_staleness)));
        let latest = fresh.filter(col("end").eq(col("end").max().over([col("con_id")])?));
        let latest = collect(latest).await?;
        if latest.height() == 0 {
            let why = format!(
                "no {} option bar closed in the {} minutes before this instant",
                opts.series.what_to_show,
                opts.max_staleness.num_minutes()
            );
            return Err(Error::bad_input("point in time", format!("{symbol} at {}", at.to_rfc3339()), why));
        }
        fit_surface(symbol.as_str(), at, spot.price, &latest, Some(&chain), opts)
    }
}
