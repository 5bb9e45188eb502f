//! The implied-volatility surface at an instant: per expiry a raw SVI fit in log-moneyness and
//! total variance to out-of-the-money mid prices, checked for butterfly and calendar arbitrage.
//!
//! [`Surfaces::surface`] reads only what was knowable at the instant (see [`super::pit`]), and works
//! at any instant the option bars cover, the backfilled past included:
//! - **Quotes**: for each option, its latest MIDPOINT bar that had closed by the instant and not
//!   longer before it than [`SurfaceOptions::max_staleness`] of *session time* (nights, weekends
//!   and holidays do not age a quote, so an overnight surface uses the last session's closing
//!   bars); by default five bars of the series read, which is the finest MIDPOINT series the lake
//!   holds on those dates ([`super::series`]).
//! - **Listing**: a bar at `t` proves its contract was listed at `t`, so the bars themselves say
//!   what was quoted. The latest chain snapshot at or before the instant (within
//!   [`super::pit::LOOKBACK_DAYS`]), when there is one, adds its unquoted expiries to `skipped`;
//!   [`Surface::listing`] says which was the case. A backfill snapshots the chain *now* and fetches
//!   earlier sessions, so the backfilled past is answered from the bars.
//! - **Each quote valued at its own time**: its implied vol comes from the bar's close with the
//!   spot, time to expiry and forward *as of the bar's end* (the spot from the as-of join of the
//!   option panel; the forward is the expiry's carry from put–call parity times that spot,
//!   [`super::iv::parity_carry`]). The slice is then fitted to those vols at the instant's time
//!   to expiry; [`ExpirySlice::oldest_quote`] tells how old its quotes are.
//!
//! Per expiry: implied vols of the out-of-the-money side (puts below the forward, calls at and
//! above: the most liquid, and for American options the ones with the least early-exercise
//! premium), each inverted by its contract's exercise style ([`super::styles`]: American with the
//! American pricer and a parity forward with the premium taken out, European with Let's Be
//! Rational; `build`'s module docs), walking away from the money up to the price floor (the first quote no
//! dearer than the next one out: a zero bid or the tick), a fit ([`svi::fit`]) weighing each quote
//! by what its price can tell (a mid rounded to the cent moves a cheap wing's vol by points: the
//! rounding is seen through the quote's vega), and the checks ([`arbitrage`]: butterfly on the
//! whole quoted range and a margin beyond it; calendar only where neighbouring expiries both have
//! quotes, beyond the fits' own error). [`fit_surface`] does the same from a panel already in
//! memory; [`grid`] interpolates a fitted surface onto standard maturities and deltas, and
//! [`history`] fits and stores surfaces at every step of many sessions (`twslake surfaces`).

pub mod arbitrage;
mod build;
mod dividends;
pub mod grid;
pub mod history;
pub mod panel;
pub mod svi;

pub use build::{fit_surface, Quote};
pub use panel::{Listings, QuotePanel};

use super::iv::{ForwardSource, Rates};
use super::pit::{AsOf, LOOKBACK_DAYS};
use crate::calendar;
use crate::datasets::Dataset;
use crate::domain::{Right, Series, Symbol};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::query::pit::PointInTime;
use crate::query::series::Holdings;
use crate::query::Scans;
use crate::query::{collect, ScanFilter};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use polars::prelude::*;
use serde::Serialize;
use svi::SviParams;

/// Bars of the series read that a quote may be behind the instant by default (session time).
pub const DEFAULT_STALE_BARS: i64 = 5;

/// How a surface is built.
#[derive(Debug, Clone)]
pub struct SurfaceOptions {
    /// The option bar series read (mid prices); `None`: the finest MIDPOINT series the lake
    /// holds on the dates read ([`super::series::choose_option_series`]).
    pub series: Option<Series>,
    /// Quotes whose bar ended longer than this before the instant, counted in session time
    /// ([`calendar::session_time_before`]), are not used; `None`: [`DEFAULT_STALE_BARS`] bars
    /// of the series read.
    pub max_staleness: Option<Duration>,
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
    /// The underlying's cash dividends, for American options: empty (the default) prices them
    /// with the carry put–call parity implies as a continuous yield, since the lake holds no
    /// dividend data ([`super::iv::Terms`] says how either is used).
    pub dividends: Vec<super::iv::CashDividend>,
}

impl Default for SurfaceOptions {
    fn default() -> Self {
        SurfaceOptions {
            series: None,
            max_staleness: None,
            rates: Rates { rate: 0.04, dividend_yield: 0.0 },
            parity_pairs: 6,
            min_t: 1.0 / 365.0,
            min_price: 1e-4,
            grid_points: 201,
            grid_margin: 0.1,
            dividends: Vec::new(),
        }
    }
}

impl SurfaceOptions {
    /// The staleness bound for bars of `series`.
    pub fn staleness(&self, series: Series) -> Duration {
        let bar = series.bar_size.seconds().unwrap_or(60) as i64;
        self.max_staleness.unwrap_or(Duration::seconds(bar * DEFAULT_STALE_BARS))
    }

    /// The earliest bar end a surface at `at` reads with bars of `series`.
    pub fn quotes_from(&self, series: Series, at: DateTime<Utc>) -> DateTime<Utc> {
        calendar::session_time_before(at, self.staleness(series))
    }
}

/// Where a surface's list of contracts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Listing {
    /// A chain snapshot taken at or before the instant (its unquoted expiries are in `skipped`).
    Snapshot,
    /// No snapshot was taken by then (a backfilled past): the contracts the bars quote.
    Bars,
}

impl Listing {
    /// `snapshot` or `bars`.
    pub fn name(self) -> &'static str {
        match self {
            Listing::Snapshot => "snapshot",
            Listing::Bars => "bars",
        }
    }
}

/// One quoted point of a slice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurfacePoint {
    /// Strike.
    pub strike: f64,
    /// Log-moneyness ln(K/F), with the forward as of the quote's bar end.
    pub k: f64,
    /// Implied vol of the out-of-the-money mid, valued at its own bar's end.
    pub iv_market: f64,
    /// Implied vol of the fit at `k`.
    pub iv_fit: f64,
    /// Which side was used (`C` or `P` in JSON).
    pub right: Right,
}

/// One expiry of a surface.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpirySlice {
    /// Expiration date.
    pub expiry: NaiveDate,
    /// ACT/365 years from the instant to the close of the expiry date's session (16:00 New York,
    /// 13:00 on early-close days).
    pub t: f64,
    /// Forward to expiry at the instant: the carry from parity times the instant's spot.
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
    /// The fit's at-the-money-forward vol (`k = 0`).
    pub atm_vol: f64,
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
    /// The end of the oldest bar among the slice's quotes.
    pub oldest_quote: DateTime<Utc>,
    /// The end of the newest bar among the slice's quotes.
    pub newest_quote: DateTime<Utc>,
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
    /// When the bar the spot comes from ended.
    pub spot_as_of: DateTime<Utc>,
    /// The option series read (`1 min MIDPOINT`); empty for a panel given in memory.
    pub series: String,
    /// Where the list of contracts came from.
    pub listing: Listing,
    /// When the chain snapshot used was taken (`listing` = `snapshot`).
    pub chain_snapshot_at: Option<DateTime<Utc>>,
    /// The earliest bar end read: quotes older than this (in session time) were stale.
    pub quotes_from: DateTime<Utc>,
    /// The fitted expiries, nearest first.
    pub expiries: Vec<ExpirySlice>,
    /// Quoted or listed expiries with no slice.
    pub skipped: Vec<Skipped>,
}

impl Surface {
    /// An empty surface at `at` (what [`fit_surface`] starts from).
    pub fn new(symbol: &str, at: DateTime<Utc>, spot: f64) -> Self {
        Surface {
            symbol: symbol.into(),
            at,
            spot,
            spot_as_of: at,
            series: String::new(),
            listing: Listing::Bars,
            chain_snapshot_at: None,
            quotes_from: at,
            expiries: Vec::new(),
            skipped: Vec::new(),
        }
    }

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
        let expiry: Vec<i32> = rows().map(|(e, _)| calendar::days_of(e.expiry)).collect();
        let df = DataFrame::new_infer_height(vec![
            Column::new("symbol".into(), vec![self.symbol.clone(); expiry.len()]),
            Column::new("expiry".into(), expiry).cast(&DataType::Date)?,
            Column::new("t".into(), f(|e, _| e.t)),
            Column::new("forward".into(), f(|e, _| e.forward)),
            Column::new("discount".into(), f(|e, _| e.discount)),
            Column::new("strike".into(), f(|_, p| p.strike)),
            Column::new("right".into(), rows().map(|(_, p)| p.right.letter()).collect::<Vec<&str>>()),
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

/// What surfaces are fitted from: for each MIDPOINT option series that may serve (finest first),
/// its quotes in memory; and the chain snapshots.
#[derive(Debug, Clone)]
pub struct SurfaceInputs {
    /// The option mids of each candidate series, finest first.
    pub panels: Vec<QuotePanel>,
    /// The chain snapshots.
    pub listings: Listings,
    /// For errors: the intraday option series held on dates before the stretch loaded.
    held_before: String,
}

impl SurfaceInputs {
    /// The surface at `at` from these inputs: the finest series with a fresh quote, and of it the
    /// latest quote of each contract that ended in `[quotes_from, at]`, valued at its own time.
    ///
    /// Which series serves depends only on bars that ended by `at`, and so does every error:
    /// a series whose bars all come later is as good as absent.
    pub fn surface(&self, symbol: &Symbol, at: DateTime<Utc>, opts: &SurfaceOptions) -> Result<Surface> {
        let fresh = self.panels.iter().find_map(|p| {
            let from = opts.quotes_from(p.series, at);
            let quotes = p.latest(from, at);
            (!quotes.is_empty()).then_some((p, from, quotes))
        });
        let Some((panel, from, quotes)) = fresh else {
            let window = match opts.max_staleness {
                Some(d) => format!("{} minutes of session time", d.num_minutes()),
                None => format!("{DEFAULT_STALE_BARS} bars of session time"),
            };
            let why = format!(
                "no MIDPOINT option bar with a spot ended in the {window} before this instant; \
                 intraday option series held before this session: {}",
                self.held_before
            );
            return Err(Error::bad_input("point in time", format!("{symbol} at {}", at.to_rfc3339()), why));
        };
        // A quote has a spot no older than itself, so the spot at `at` exists.
        let (spot, spot_as_of) = panel.spot_at(at).unwrap_or((f64::NAN, at));
        let snapshot = self.listings.as_of(at, at - Duration::days(LOOKBACK_DAYS));
        let mut s = build::fit_quotes(symbol.as_str(), at, spot, &quotes, snapshot.map(|s| s.1), opts);
        s.spot_as_of = spot_as_of;
        s.series = format!("{} {}", panel.series.bar_size, panel.series.what_to_show);
        s.listing = if snapshot.is_some() { Listing::Snapshot } else { Listing::Bars };
        s.chain_snapshot_at = snapshot.map(|s| s.0);
        s.quotes_from = from;
        Ok(s)
    }
}

/// Volatility surfaces from a lake: at an instant, and the stored surface history.
#[derive(Clone, Copy)]
pub struct Surfaces<'a> {
    lake: &'a Lake,
}

impl<'a> Surfaces<'a> {
    /// The reader of `lake`.
    pub fn new(lake: &'a Lake) -> Self {
        Surfaces { lake }
    }
}

impl<'a> Surfaces<'a> {
    /// The volatility surface of `symbol` at `at`, from what the lake knew at `at` (see the
    /// module docs for the rules).
    ///
    /// The error names the input when no option bar with a spot ended in the staleness window
    /// before `at`, and lists the option series the lake held before that session.
    pub async fn surface(&self, symbol: &Symbol, at: DateTime<Utc>, opts: &SurfaceOptions) -> Result<Surface> {
        self.surface_inputs(symbol, at, at, opts).await?.surface(symbol, at, opts)
    }

    /// Loads what surfaces of `symbol` at instants in `[first, last]` are fitted from: for
    /// `opts.series`, or else for every MIDPOINT intraday option series with bars on the dates
    /// read (finest first), its bars that ended in `[quotes_from(first), last]` each joined to the
    /// spot of its end ([`Surfaces::spot_points`]); and the chain snapshots of the
    /// [`LOOKBACK_DAYS`] before, taken by `last`.
    pub async fn surface_inputs(
        &self,
        symbol: &Symbol,
        first: DateTime<Utc>,
        last: DateTime<Utc>,
        opts: &SurfaceOptions,
    ) -> Result<SurfaceInputs> {
        let to = calendar::trading_date(last);
        let held = Holdings::new(self.lake).held_series(Dataset::OptionBars, symbol).await?;
        let candidates: Vec<Series> = match opts.series {
            Some(s) => vec![s],
            None => held
                .iter()
                .filter(|h| h.series.what_to_show == crate::domain::WhatToShow::Midpoint)
                .filter(|h| h.days_in(calendar::trading_date(opts.quotes_from(h.series, first)), to) > 0)
                .map(|h| h.series)
                .collect(),
        };
        let mut panels = Vec::with_capacity(candidates.len());
        let styles = super::styles::Styles::read(self.lake, symbol).await?;
        for series in candidates {
            let quotes_from = opts.quotes_from(series, first);
            let from = calendar::trading_date(quotes_from);
            let q = AsOf { symbol: symbol.clone(), series, from, at: last };
            let cols = ["con_id", "expiry", "strike", "right", "close", "end"].map(col);
            let bars = PointInTime::new(self.lake).bars_as_of(Dataset::OptionBars, &q).await?;
            let options = collect(bars.filter(col("end").gt_eq(super::pit::ts_lit(quotes_from))).select(cols)).await?;
            let spot = self.spot_points(symbol, series, from, last).await?;
            panels.push(QuotePanel::new(series, &options, spot, opts.staleness(series), &styles)?);
        }
        let filter = ScanFilter {
            symbols: Some(vec![symbol.clone()]),
            series: None,
            from: Some(calendar::trading_date(first) - Duration::days(LOOKBACK_DAYS)),
            to: Some(to),
        };
        let chains =
            Scans::new(self.lake).scan(Dataset::Chains, &filter).await?.select([col("snapshot_at"), col("expiration")]);
        let chains = collect(chains.filter(col("snapshot_at").lt_eq(super::pit::ts_lit(last)))).await?;
        // Series held on earlier dates only: every bar of them ended before `first`.
        let before = calendar::trading_date(first);
        let held_before: Vec<super::series::HeldSeries> = held
            .into_iter()
            .map(|h| super::series::HeldSeries { dates: h.dates.range(..before).copied().collect(), ..h })
            .filter(|h| !h.dates.is_empty())
            .collect();
        Ok(SurfaceInputs {
            panels,
            listings: Listings::new(&chains)?,
            held_before: super::series::describe_all(&held_before),
        })
    }

    /// The spot at the end of every bar of the underlying's intraday MIDPOINT and TRADES series no
    /// coarser than `option` bars, that ended in `[from, at]`, merged: at one bar end MIDPOINT
    /// wins over TRADES (the mid is what options are quoted against), then the finer series.
    /// Coarser spot bars would value an option bar with a spot up to a bar old.
    pub async fn spot_points(
        &self,
        symbol: &Symbol,
        option: Series,
        from: NaiveDate,
        at: DateTime<Utc>,
    ) -> Result<Vec<(i64, f64)>> {
        let limit = option.bar_size.seconds().unwrap_or(u32::MAX);
        let kinds = [crate::domain::WhatToShow::Midpoint, crate::domain::WhatToShow::Trades];
        let mut points: Vec<(i64, u8, u32, f64)> = Vec::new();
        for h in Holdings::new(self.lake).held_series(Dataset::EquityBars, symbol).await? {
            let secs = h.series.bar_size.seconds().unwrap_or(u32::MAX);
            let Some(rank) = kinds.iter().position(|k| *k == h.series.what_to_show) else { continue };
            if secs > limit || h.days_in(from, calendar::trading_date(at)) == 0 {
                continue;
            }
            let q = AsOf { symbol: symbol.clone(), series: h.series, from, at };
            let df = collect(
                PointInTime::new(self.lake)
                    .bars_as_of(Dataset::EquityBars, &q)
                    .await?
                    .select([col("end"), col("close")]),
            )
            .await?;
            let ends = df.column("end")?.cast(&DataType::Int64)?;
            let closes = df.column("close")?.cast(&DataType::Float64)?;
            for (e, c) in ends.i64()?.iter().zip(closes.f64()?.iter()) {
                if let (Some(e), Some(c)) = (e, c) {
                    points.push((e, rank as u8, secs, c));
                }
            }
        }
        points.sort_by_key(|p| (p.0, p.1, p.2));
        points.dedup_by_key(|p| p.0);
        Ok(points.into_iter().map(|p| (p.0, p.3)).collect())
    }
}
