//! From a panel of option mids to a checked surface: forwards, out-of-the-money vols, fits, checks.

use super::svi::{self, FitPoint};
use super::{arbitrage, ExpirySlice, Skipped, Surface, SurfaceOptions, SurfacePoint};
use crate::error::Result;
use crate::query::iv::{self, ForwardDiscount};
use crate::query::pit::time_to_expiry;
use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;
use std::collections::{BTreeMap, HashSet};

/// One option's mid, as the fit sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Quote {
    strike: f64,
    is_call: bool,
    mid: f64,
    /// Years from the quote's bar end to expiry (each quote's own clock).
    t: f64,
}

fn date_days(c: &Column) -> Result<Vec<Option<i32>>> {
    Ok(c.cast(&DataType::Int32)?.i32()?.iter().collect())
}

fn f64s(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    Ok(df.column(name)?.cast(&DataType::Float64)?.f64()?.iter().collect())
}

/// The listed (expiry, strike) pairs of a chain snapshot, strikes as bit patterns.
fn listed(chain: &DataFrame) -> Result<HashSet<(i32, u64)>> {
    let e = date_days(chain.column("expiration")?)?;
    let k = f64s(chain, "strike")?;
    Ok(e.iter().zip(&k).filter_map(|(e, k)| Some((((*e)?), k.map(f64::to_bits)?))).collect())
}

/// The panel's quotes by expiry (days since the epoch), keeping listed contracts only.
fn quotes_by_expiry(panel: &DataFrame, chain: Option<&DataFrame>) -> Result<BTreeMap<i32, Vec<Quote>>> {
    let listed = chain.map(listed).transpose()?;
    let (e, k, mid, t) =
        (date_days(panel.column("expiry")?)?, f64s(panel, "strike")?, f64s(panel, "close")?, f64s(panel, "t")?);
    let right = panel.column("right")?.str()?.clone();
    let mut out: BTreeMap<i32, Vec<Quote>> = BTreeMap::new();
    for i in 0..panel.height() {
        let (Some(e), Some(strike), Some(mid), Some(t), Some(r)) = (e[i], k[i], mid[i], t[i], right.get(i)) else {
            continue;
        };
        if listed.as_ref().is_some_and(|l| !l.contains(&(e, strike.to_bits()))) {
            continue;
        }
        out.entry(e).or_default().push(Quote { strike, is_call: r.eq_ignore_ascii_case("C"), mid, t });
    }
    Ok(out)
}

/// Call/put pairs `(K, C, P)` at the strikes quoted on both sides.
fn pairs(quotes: &[Quote]) -> Vec<(f64, f64, f64)> {
    let mut by_strike: BTreeMap<u64, (Option<f64>, Option<f64>, f64)> = BTreeMap::new();
    for q in quotes {
        let e = by_strike.entry(q.strike.to_bits()).or_insert((None, None, q.strike));
        if q.is_call {
            e.0 = Some(q.mid);
        } else {
            e.1 = Some(q.mid);
        }
    }
    by_strike.values().filter_map(|(c, p, k)| Some((*k, (*c)?, (*p)?))).collect()
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

/// The out-of-the-money points of one expiry with their implied vols (puts below the forward),
/// each side up to its price floor ([`above_the_floor`]).
fn otm_points(quotes: &[Quote], fd: &ForwardDiscount, t: f64, opts: &SurfaceOptions) -> Vec<(Quote, f64)> {
    let by_strike = |a: &Quote, b: &Quote| a.strike.total_cmp(&b.strike);
    let mut calls: Vec<Quote> = quotes.iter().filter(|q| q.is_call && q.strike >= fd.forward).copied().collect();
    let mut puts: Vec<Quote> = quotes.iter().filter(|q| !q.is_call && q.strike < fd.forward).copied().collect();
    calls.sort_by(by_strike);
    puts.sort_by(|a, b| by_strike(b, a));
    let otm = above_the_floor(puts).into_iter().chain(above_the_floor(calls));
    let mut pts: Vec<(Quote, f64)> = otm
        .filter_map(|q| {
            let undiscounted = q.mid / fd.discount;
            if undiscounted < opts.min_price {
                return None;
            }
            // The quote's own clock for the inversion, re-stated as variance to the slice's t.
            let vol = iv::implied_vol(undiscounted, fd.forward, q.strike, q.t, q.is_call)?;
            Some((q, vol * (q.t / t).sqrt()))
        })
        .collect();
    pts.sort_by(|a, b| a.0.strike.total_cmp(&b.0.strike));
    pts
}

/// The vol error the fit expects of any quote (5 basis points of vol).
const VOL_FLOOR: f64 = 0.0005;
/// The rounding error of a mid of two cent quotes: up to half a cent.
const MID_ROUNDING: f64 = 0.005;

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
    let fd = iv::parity_forward(&pairs(quotes), spot, t, opts.parity_pairs, &opts.rates);
    let pts = otm_points(quotes, &fd, t, opts);
    // Weights 1/(2σt)² turn total-variance residuals into vol residuals (dw = 2σt·dσ), divided by
    // each quote's own vol uncertainty: a floor for the model (VOL_FLOOR) plus the rounding of the
    // mid to half a cent, seen through the option's vega. Liquid quotes weigh alike; cheap wings
    // whose cents move the vol by points weigh by what their price can tell.
    let fit_points: Vec<FitPoint> = pts
        .iter()
        .map(|(q, v)| {
            let k = (q.strike / fd.forward).ln();
            let vega = black_vega(fd.forward, q.strike, t, *v) * fd.discount;
            let rounding = if vega > 0.0 { MID_ROUNDING / vega } else { f64::INFINITY };
            let precision = VOL_FLOOR * VOL_FLOOR / (VOL_FLOOR * VOL_FLOOR + rounding * rounding);
            FitPoint { k, w: v * v * t, weight: precision / (2.0 * v * t).powi(2) }
        })
        .collect();
    let p =
        svi::fit(&fit_points).ok_or_else(|| format!("{} usable out-of-the-money quotes; a fit needs 5", pts.len()))?;
    let points: Vec<SurfacePoint> = pts
        .iter()
        .zip(&fit_points)
        .map(|((q, v), f)| SurfacePoint {
            strike: q.strike,
            k: f.k,
            iv_market: *v,
            iv_fit: p.vol(f.k, t),
            right: if q.is_call { "C" } else { "P" }.into(),
        })
        .collect();
    let rmse = (points.iter().map(|p| (p.iv_fit - p.iv_market).powi(2)).sum::<f64>() / points.len() as f64).sqrt();
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
        rmse,
        butterfly_ok: false,
        calendar_ok: false,
        min_g: f64::NAN,
        points,
    })
}

/// The calendar check's view of a slice: its fit, quoted range and total-variance error.
fn calendar_slice(e: &ExpirySlice) -> arbitrage::Slice {
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

/// Builds a surface from a panel of option mids: columns `expiry` (date), `strike`, `right`
/// (`C`/`P`), `close` (the mid) and `t` (years from the quote to expiry). With a `chain`
/// (columns `expiration`, `strike`), contracts it does not list are ignored.
pub fn fit_surface(
    symbol: &str,
    at: DateTime<Utc>,
    spot: f64,
    panel: &DataFrame,
    chain: Option<&DataFrame>,
    opts: &SurfaceOptions,
) -> Result<Surface> {
    let mut surface = Surface { symbol: symbol.into(), at, spot, expiries: Vec::new(), skipped: Vec::new() };
    for (days, quotes) in quotes_by_expiry(panel, chain)? {
        let expiry = NaiveDate::default() + chrono::Duration::days(days as i64);
        match slice(expiry, &quotes, at, spot, opts) {
            Ok(s) => surface.expiries.push(s),
            Err(reason) => surface.skipped.push(Skipped { expiry, reason }),
        }
    }
    check(&mut surface, opts);
    Ok(surface)
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
                    e.push((expiry - NaiveDate::default()).num_days() as i32);
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
        let q = |strike: f64, mid: f64| Quote { strike, is_call: true, mid, t: 0.01 };
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
