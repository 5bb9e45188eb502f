//! From option mids to a checked surface: carry and discount by parity, out-of-the-money vols
//! valued at each quote's own time, fits, checks.
//!
//! By exercise style ([`crate::query::iv::Terms`]): an expiry whose quotes are American takes
//! its carry from parity with the early-exercise premium taken out
//! ([`iv::parity_carry_by_style`]), and its quotes are inverted with the American pricer, with
//! the options' cash-dividend schedule when one is given ([`SurfaceOptions::dividends`]) and
//! the parity carry as a continuous yield otherwise. Only the quotes the fit uses are inverted
//! as American (out of the money, above the price floor and the rounding gate, which is judged
//! with the quote's European vol: a tree costs some 40 µs, Let's Be Rational 0.25 µs).

use super::svi::{self, FitPoint};
use super::{arbitrage, ExpirySlice, Skipped, Surface, SurfaceOptions, SurfacePoint};
use crate::calendar::time_to_expiry;
use crate::domain::{ExerciseStyle, Right};
use crate::error::Result;
use crate::query::iv::{self, Carry, ParityPair, Terms};
use crate::query::styles::{Styles, STYLE_COLUMN};
use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// One option's latest mid, as the fit sees it: everything it is valued with is of its own
/// bar's end, not of the instant the surface is asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quote {
    /// Expiry, days since 1970-01-01.
    pub expiry: i32,
    /// Strike.
    pub strike: f64,
    /// Call or put.
    pub is_call: bool,
    /// The mid (the MIDPOINT bar's close), discounted as quoted.
    pub mid: f64,
    /// ACT/365 years from the bar's end to expiry.
    pub t: f64,
    /// The underlying's price as of the bar's end.
    pub spot: f64,
    /// The bar's end, µs since the epoch.
    pub end: i64,
    /// American or European exercise.
    pub style: ExerciseStyle,
}

/// A day count as a date.
pub fn date_of(days: i32) -> NaiveDate {
    crate::calendar::date_of_days(days)
}

fn f64s(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    Ok(df.column(name)?.cast(&DataType::Float64)?.f64()?.iter().collect())
}

/// Quotes from a panel in memory: columns `expiry`, `strike`, `right`, `close`, `t`, and if
/// present `spot` and `end` (else every quote is taken at `spot` and `at`) and `exercise_style`
/// (`american`/`european`; else, and where null, the style of the symbol's class).
fn quotes_of(panel: &DataFrame, symbol: &str, at: DateTime<Utc>, spot: f64) -> Result<Vec<Quote>> {
    let e: Vec<Option<i32>> = panel.column("expiry")?.cast(&DataType::Int32)?.i32()?.iter().collect();
    let (k, mid, t) = (f64s(panel, "strike")?, f64s(panel, "close")?, f64s(panel, "t")?);
    let n = panel.height();
    let s = if panel.column("spot").is_ok() { f64s(panel, "spot")? } else { vec![Some(spot); n] };
    let end: Vec<Option<i64>> = match panel.column("end") {
        Ok(c) => c.cast(&DataType::Int64)?.i64()?.iter().collect(),
        Err(_) => vec![Some(at.timestamp_micros()); n],
    };
    let right = panel.column("right")?.str()?.clone();
    let otherwise = Styles::of_symbol(symbol).otherwise;
    let styles: Vec<ExerciseStyle> = match panel.column(STYLE_COLUMN) {
        Ok(c) => c
            .cast(&DataType::String)?
            .str()?
            .iter()
            .map(|v| v.and_then(ExerciseStyle::parse).unwrap_or(otherwise))
            .collect(),
        Err(_) => vec![otherwise; n],
    };
    Ok((0..n)
        .filter_map(|i| {
            let is_call = right.get(i)?.eq_ignore_ascii_case("C");
            let (expiry, strike, mid, t, spot, end) = (e[i]?, k[i]?, mid[i]?, t[i]?, s[i]?, end[i]?);
            Some(Quote { expiry, strike, is_call, mid, t, spot, end, style: styles[i] })
        })
        .collect())
}

/// Call/put pairs quoted at one instant (both bars ended together), with that instant's spot.
fn pairs(quotes: &[Quote]) -> Vec<ParityPair> {
    let mut by: BTreeMap<(u64, i64), ParityPair> = BTreeMap::new();
    for q in quotes {
        let blank = ParityPair { strike: q.strike, call: f64::NAN, put: f64::NAN, spot: q.spot };
        let e = by.entry((q.strike.to_bits(), q.end)).or_insert(blank);
        if q.is_call {
            e.call = q.mid;
        } else {
            e.put = q.mid;
        }
    }
    by.into_values().filter(|p| p.call.is_finite() && p.put.is_finite()).collect()
}

/// The quotes of one side, ordered away from the money, up to the price floor: without
/// arbitrage an out-of-the-money price falls strictly with distance from the money, so the first
/// quote that is not dearer than the next one out starts a floor (a zero bid, whose mid is half
/// the minimum ask, or the tick) whose mids say nothing about the vol. It and every quote beyond
/// it are left out. Cheap quotes above the floor are kept.
fn above_the_floor(mut away: Vec<Quote>) -> Vec<Quote> {
    if let Some(j) = away.windows(2).position(|w| w[1].mid >= w[0].mid) {
        away.truncate(j);
    }
    away
}

/// One out-of-the-money quote valued at its own time.
#[derive(Debug, Clone, Copy)]
struct Valued {
    quote: Quote,
    /// Its forward: the expiry's carry times the spot of its bar's end.
    forward: f64,
    /// Its implied vol (with its own forward and time to expiry).
    vol: f64,
}

impl Valued {
    fn k(&self) -> f64 {
        (self.quote.strike / self.forward).ln()
    }

    /// How far the half-cent rounding of its mid moves its vol, seen through its vega.
    fn rounding_vol(&self, discount: f64) -> f64 {
        let vega = black_vega(self.forward, self.quote.strike, self.quote.t, self.vol) * discount;
        if vega > 0.0 {
            MID_ROUNDING / vega
        } else {
            f64::INFINITY
        }
    }
}

/// The out-of-the-money points of one expiry with their implied vols (puts below their forward,
/// calls at and above it), each side up to its price floor ([`above_the_floor`]), whose mid's
/// rounding pins the vol within [`MAX_ROUNDING_VOL`]. Every quote is inverted with the forward,
/// discount and time to expiry of its own bar's end, by its exercise style (module docs).
fn otm_points(quotes: &[Quote], carry: &Carry, opts: &SurfaceOptions) -> Vec<Valued> {
    let otm = |q: &Quote| (q.strike >= carry.carry * q.spot) == q.is_call;
    let by_strike = |a: &Quote, b: &Quote| a.strike.total_cmp(&b.strike);
    let mut calls: Vec<Quote> = quotes.iter().filter(|q| q.is_call && otm(q)).copied().collect();
    let mut puts: Vec<Quote> = quotes.iter().filter(|q| !q.is_call && otm(q)).copied().collect();
    calls.sort_by(by_strike);
    puts.sort_by(|a, b| by_strike(b, a));
    let chosen = above_the_floor(puts).into_iter().chain(above_the_floor(calls));
    let european: Vec<Valued> = chosen
        .filter_map(|q| {
            let undiscounted = q.mid / carry.discount;
            if undiscounted < opts.min_price {
                return None;
            }
            let forward = carry.carry * q.spot;
            let vol = iv::implied_vol(undiscounted, forward, q.strike, q.t, q.is_call)?;
            // A quote whose price, rounded to half a cent, pins its vol no better than
            // MAX_ROUNDING_VOL says nothing the quotes nearer the money do not: the cheap wings
            // of short expiries. Judged with the European vol, before any tree is built.
            let european = Valued { quote: q, forward, vol };
            (european.rounding_vol(carry.discount) <= MAX_ROUNDING_VOL).then_some(european)
        })
        .collect();
    let (mut pts, american): (Vec<Valued>, Vec<Valued>) =
        european.into_iter().partition(|v| v.quote.style == ExerciseStyle::European);
    pts.extend(american_points(american, carry, opts));
    pts.sort_by(|a, b| a.quote.strike.total_cmp(&b.quote.strike));
    pts
}

/// The American implied vols of `points` (valued as European so far), all in one batch of the
/// pricer (`pricing::implied_vols`: the quotes of one bar end share a table of early-exercise
/// premiums); those without one are left out.
fn american_points(points: Vec<Valued>, carry: &Carry, opts: &SurfaceOptions) -> Vec<Valued> {
    let schedules: Vec<Vec<crate::pricing::Dividend>> = points
        .iter()
        .map(|v| {
            if opts.dividends.is_empty() {
                vec![]
            } else {
                iv::dividends_from(&opts.dividends, super::panel::instant(v.quote.end))
            }
        })
        .collect();
    let options: Vec<Option<crate::pricing::American>> = points
        .iter()
        .zip(&schedules)
        .map(|(v, dividends)| {
            let terms =
                Terms { spot: v.quote.spot, forward: v.forward, discount: carry.discount, t: v.quote.t, dividends };
            terms.american(v.quote.strike, v.quote.is_call)
        })
        .collect();
    let usable: Vec<(usize, crate::pricing::American)> =
        options.iter().enumerate().filter_map(|(i, o)| Some((i, (*o)?))).collect();
    let vols = crate::pricing::implied_vols_of(
        &usable.iter().map(|(_, o)| *o).collect::<Vec<_>>(),
        &usable.iter().map(|(i, _)| points[*i].quote.mid).collect::<Vec<f64>>(),
    );
    usable
        .iter()
        .zip(vols)
        .filter(|(_, vol)| vol.is_finite())
        .map(|((i, _), vol)| Valued { quote: points[*i].quote, forward: points[*i].forward, vol })
        .collect()
}

/// The vol error the fit expects of any quote (5 basis points of vol).
const VOL_FLOOR: f64 = 0.0005;
/// The rounding error of a mid of two cent quotes: up to half a cent.
const MID_ROUNDING: f64 = 0.005;
/// Quotes whose mid's rounding moves their vol by more than this (0.25 vol points) are left out.
const MAX_ROUNDING_VOL: f64 = 0.0025;
/// Usable quotes a smile needs on each side of the forward: with one, the fit is free to bend
/// the other wing anywhere beyond it.
const MIN_SIDE: usize = 2;

/// The undiscounted Black vega ∂C/∂σ = F·φ(d1)·√t.
fn black_vega(forward: f64, strike: f64, t: f64, vol: f64) -> f64 {
    let sd = vol * t.sqrt();
    let d1 = (forward / strike).ln() / sd + 0.5 * sd;
    forward * (-0.5 * d1 * d1).exp() / (2.0 * std::f64::consts::PI).sqrt() * t.sqrt()
}

/// Fits one expiry; `Err(reason)` when it cannot be.
fn slice(
    expiry: NaiveDate,
    quotes: &[Quote],
    at: DateTime<Utc>,
    spot: f64,
    opts: &SurfaceOptions,
) -> Result<ExpirySlice, String> {
    let t = time_to_expiry(at, expiry);
    if t < opts.min_t {
        return Err(format!("expires in {:.2} days, under the minimum", t * 365.0));
    }
    // The expiry's style is its quotes' (one class per expiry in practice; if mixed, the
    // majority's decides the parity line, and each quote is still inverted by its own).
    let american = quotes.iter().filter(|q| q.style == ExerciseStyle::American).count();
    let style = if 2 * american >= quotes.len() { ExerciseStyle::American } else { ExerciseStyle::European };
    let dividends = iv::dividends_from(&opts.dividends, at);
    let carry = iv::parity_carry_by_style(&pairs(quotes), spot, t, opts.parity_pairs, &opts.rates, style, &dividends);
    let pts: Vec<Valued> = otm_points(quotes, &carry, opts);
    let (below, above) = (pts.iter().filter(|p| p.k() < 0.0).count(), pts.iter().filter(|p| p.k() >= 0.0).count());
    if below < MIN_SIDE || above < MIN_SIDE {
        return Err(format!(
            "{below} usable quotes below the forward and {above} above; a smile needs {MIN_SIDE} on each side"
        ));
    }
    // Each quote keeps the implied vol of its own time; its total variance is stated to the
    // instant's `t` (a quote minutes or a night old moves no vol, only the time left).
    // Weights 1/(2σt)² turn total-variance residuals into vol residuals (dw = 2σt·dσ), divided by
    // each quote's own vol uncertainty: a floor for the model (VOL_FLOOR) plus the rounding of the
    // mid to half a cent, seen through the option's vega. Liquid quotes weigh alike; cheap wings
    // whose cents move the vol by points weigh by what their price can tell.
    let fit_points: Vec<FitPoint> = pts
        .iter()
        .map(|p| {
            let rounding = p.rounding_vol(carry.discount);
            let precision = VOL_FLOOR * VOL_FLOOR / (VOL_FLOOR * VOL_FLOOR + rounding * rounding);
            FitPoint { k: p.k(), w: p.vol * p.vol * t, weight: precision / (2.0 * p.vol * t).powi(2) }
        })
        .collect();
    let p =
        svi::fit(&fit_points).ok_or_else(|| format!("{} usable out-of-the-money quotes; a fit needs 5", pts.len()))?;
    let points: Vec<SurfacePoint> = pts
        .iter()
        .zip(&fit_points)
        .map(|(v, f)| SurfacePoint {
            strike: v.quote.strike,
            k: f.k,
            iv_market: v.vol,
            iv_fit: p.vol(f.k, t),
            right: if v.quote.is_call { Right::Call } else { Right::Put },
        })
        .collect();
    let rmse = (points.iter().map(|p| (p.iv_fit - p.iv_market).powi(2)).sum::<f64>() / points.len() as f64).sqrt();
    let ends = pts.iter().map(|v| v.quote.end);
    let (oldest, newest) = (ends.clone().min().unwrap_or_default(), ends.max().unwrap_or_default());
    let fd = carry.at(spot);
    Ok(ExpirySlice {
        expiry,
        t,
        forward: fd.forward,
        discount: fd.discount,
        forward_source: fd.source,
        a: p.a,
        b: p.b,
        rho: p.rho,
        m: p.m,
        sigma: p.sigma,
        atm_vol: p.vol(0.0, t),
        rmse,
        butterfly_ok: false,
        calendar_ok: false,
        min_g: f64::NAN,
        oldest_quote: super::panel::instant(oldest),
        newest_quote: super::panel::instant(newest),
        points,
    })
}

/// The calendar check's view of a slice: its fit, quoted range and total-variance error.
pub(crate) fn calendar_slice(e: &ExpirySlice) -> arbitrage::Slice {
    let (k_lo, k_hi) =
        e.points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.k), hi.max(p.k)));
    let params = e.params();
    let sq: f64 = e.points.iter().map(|p| (params.w(p.k) - p.iv_market * p.iv_market * e.t).powi(2)).sum();
    let w_rmse = (sq / e.points.len().max(1) as f64).sqrt();
    arbitrage::Slice { params, k_lo, k_hi, w_rmse }
}

/// Runs both checks: butterfly on one grid over the whole surface's quoted range widened by
/// [`SurfaceOptions::grid_margin`]; calendar between neighbouring expiries on the range both
/// quote, within the fits' own error ([`arbitrage`]'s module docs give the rule).
fn check(surface: &mut Surface, opts: &SurfaceOptions) {
    let (lo, hi) = surface.grid_bounds(opts.grid_margin);
    let grid = arbitrage::grid(lo, hi, opts.grid_points);
    let slices: Vec<_> = surface.expiries.iter().map(calendar_slice).collect();
    let calendar = arbitrage::calendar_ok(&slices, opts.grid_points);
    for (e, cal) in surface.expiries.iter_mut().zip(calendar) {
        e.min_g = arbitrage::min_g(&e.params(), &grid).0;
        e.butterfly_ok = e.min_g >= -arbitrage::TOLERANCE;
        e.calendar_ok = cal;
    }
}

/// Builds a surface from a panel of option mids in memory: columns `expiry` (date), `strike`,
/// `right` (`C`/`P`), `close` (the mid), `t` (years from the quote to expiry), and if present
/// `spot` (the underlying as of the quote) and `end` (the quote's time); without them every quote
/// is taken at `spot` and `at`. With a `chain` (columns `expiration`), its unexpired expiries that
/// have no quote, before the last quoted one, are reported as skipped. The panel should hold one quote per contract.
pub fn fit_surface(
    symbol: &str,
    at: DateTime<Utc>,
    spot: f64,
    panel: &DataFrame,
    chain: Option<&DataFrame>,
    opts: &SurfaceOptions,
) -> Result<Surface> {
    let listed = match chain {
        Some(c) => {
            let e: Vec<Option<i32>> = c.column("expiration")?.cast(&DataType::Int32)?.i32()?.iter().collect();
            Some(e.into_iter().flatten().map(date_of).collect::<BTreeSet<NaiveDate>>())
        }
        None => None,
    };
    Ok(fit_quotes(symbol, at, spot, &quotes_of(panel, symbol, at, spot)?, listed.as_ref(), opts))
}

/// Fits every expiry the quotes hold and runs the checks; `listed` expiries (a chain snapshot's)
/// that are unexpired and have no quote, before the last quoted one, are reported as skipped.
pub(crate) fn fit_quotes(
    symbol: &str,
    at: DateTime<Utc>,
    spot: f64,
    quotes: &[Quote],
    listed: Option<&BTreeSet<NaiveDate>>,
    opts: &SurfaceOptions,
) -> Surface {
    let mut by_expiry: BTreeMap<i32, Vec<Quote>> = BTreeMap::new();
    for q in quotes {
        by_expiry.entry(q.expiry).or_default().push(*q);
    }
    // American quotes without a known dividend schedule: the one the forwards imply.
    let implied;
    let american = quotes.iter().filter(|q| q.style == ExerciseStyle::American).count();
    let opts = if opts.dividends.is_empty() && 2 * american > quotes.len() {
        let terms: Vec<(f64, f64, f64)> = by_expiry
            .iter()
            .filter_map(|(days, quotes)| {
                let t = time_to_expiry(at, date_of(*days));
                let style = ExerciseStyle::American;
                let c = iv::parity_carry_by_style(&pairs(quotes), spot, t, opts.parity_pairs, &opts.rates, style, &[]);
                (t >= opts.min_t && c.source == iv::ForwardSource::Parity).then_some((t, c.carry, c.discount))
            })
            .collect();
        implied =
            SurfaceOptions { dividends: super::dividends::implied(at, spot, opts.rates.rate, &terms), ..opts.clone() };
        &implied
    } else {
        opts
    };
    let mut surface = Surface::new(symbol, at, spot);
    for (days, quotes) in by_expiry {
        let expiry = date_of(days);
        match slice(expiry, &quotes, at, spot, opts) {
            Ok(s) => surface.expiries.push(s),
            Err(reason) => surface.skipped.push(Skipped { expiry, reason }),
        }
    }
    // A listed expiry between quoted ones without a quote of its own is a hole worth naming;
    // beyond the last quoted expiry lies what the ingest never selected.
    let last_quoted = quotes.iter().map(|q| q.expiry).max().map(date_of);
    for expiry in listed.into_iter().flatten().filter(|e| Some(**e) < last_quoted) {
        let quoted =
            surface.expiries.iter().any(|e| e.expiry == *expiry) || surface.skipped.iter().any(|s| s.expiry == *expiry);
        if !quoted && crate::calendar::expiry_instant(*expiry) > at {
            let reason = "listed in the chain snapshot, but no fresh option bar".to_string();
            surface.skipped.push(Skipped { expiry: *expiry, reason });
        }
    }
    surface.skipped.sort_by_key(|s| s.expiry);
    check(&mut surface, opts);
    surface
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::iv::black_price;

    /// Two expiries (about 3 and 4 months) of calls and puts at strikes 80–120, priced with a
    /// skewed smile of at-the-money vols `v1` and `v2` and rounded to the cent like real mids.
    fn panel(at: DateTime<Utc>, v1: f64, v2: f64) -> DataFrame {
        let (mut e, mut k, mut r, mut p, mut t) = (vec![], vec![], vec![], vec![], vec![]);
        for (days, v) in [(91, v1), (119, v2)] {
            let expiry = at.date_naive() + chrono::Duration::days(days);
            let tt = time_to_expiry(at, expiry);
            for j in 0..=16 {
                let strike = 80.0 + 2.5 * j as f64;
                let x = (strike / 100.0f64).ln();
                let vol = v - 0.15 * x + 0.3 * x * x;
                for call in [true, false] {
                    e.push(crate::calendar::days_of(expiry));
                    k.push(strike);
                    r.push(if call { "C" } else { "P" });
                    t.push(tt);
                    p.push((black_price(100.0, strike, tt, vol, call) * 100.0).round() / 100.0);
                }
            }
        }
        let df = df!("expiry" => e, "strike" => k, "right" => r, "close" => p, "t" => t).unwrap();
        df.lazy().with_column(col("expiry").cast(DataType::Date)).collect().unwrap()
    }

    #[test]
    fn vega_matches_the_black_price_and_cheap_wings_weigh_less() {
        let (f, t, v) = (100.0, 0.05, 0.2);
        for k in [80.0, 95.0, 100.0, 110.0] {
            let h = 1e-6;
            let fd = (black_price(f, k, t, v + h, true) - black_price(f, k, t, v - h, true)) / (2.0 * h);
            assert!((black_vega(f, k, t, v) - fd).abs() < 1e-6, "{k}: {} vs {fd}", black_vega(f, k, t, v));
        }
        // The share of the weight a quote keeps: about half at the money (half a cent is 6 basis
        // points of vol there, against the 5 expected of any fit), almost none for a far wing
        // worth a few cents.
        let keep = |k: f64| {
            let rounding = MID_ROUNDING / black_vega(f, k, t, v);
            VOL_FLOOR * VOL_FLOOR / (VOL_FLOOR * VOL_FLOOR + rounding * rounding)
        };
        assert!(keep(100.0) > 0.4 && keep(115.0) < 1e-3 && keep(100.0) > keep(105.0) && keep(105.0) > keep(110.0));
    }

    #[test]
    fn quotes_at_the_price_floor_are_left_out() {
        let q = |strike: f64, mid: f64| {
            let style = ExerciseStyle::American;
            Quote { expiry: 0, strike, is_call: true, mid, t: 0.01, spot: 100.0, end: 0, style }
        };
        let away = vec![q(100.0, 1.2), q(105.0, 0.15), q(110.0, 0.025), q(115.0, 0.015), q(120.0, 0.015)];
        let kept: Vec<f64> = above_the_floor(away).iter().map(|q| q.strike).collect();
        // 115 is no dearer than 120: the floor starts there. 110, cheap but above it, stays.
        assert_eq!(kept, vec![100.0, 105.0, 110.0]);
        let falling = vec![q(100.0, 1.2), q(105.0, 0.15), q(110.0, 0.02)];
        assert_eq!(above_the_floor(falling.clone()), falling);
    }

    #[test]
    fn a_genuine_calendar_arbitrage_in_rounded_quotes_is_flagged() {
        let at: DateTime<Utc> = "2024-11-22T16:00:00Z".parse().unwrap();
        let opts = SurfaceOptions { rates: iv::Rates { rate: 0.0, dividend_yield: 0.0 }, ..Default::default() };
        // 25 then 20 vol points at the money, 91 then 119 days: the later expiry has about 16 %
        // less total variance across the quoted range, far beyond what cent rounding explains.
        let s = fit_surface("X", at, 100.0, &panel(at, 0.25, 0.20), None, &opts).unwrap();
        assert_eq!(s.expiries.len(), 2, "{:?}", s.skipped);
        let (w1, w2) = (s.expiries[0].params().w(0.0), s.expiries[1].params().w(0.0));
        assert!(w2 < w1, "{w1} {w2}");
        for e in &s.expiries {
            assert!(e.butterfly_ok, "{e:?}");
            assert!(!e.calendar_ok, "{}: total variance {w1} then {w2} passed the calendar check", e.expiry);
        }
        // The same quotes with the later expiry at 25 vol points: no arbitrage, none reported.
        let fine = fit_surface("X", at, 100.0, &panel(at, 0.25, 0.25), None, &opts).unwrap();
        assert!(fine.arbitrage_free(), "{:?}", fine.expiries);
    }
}
