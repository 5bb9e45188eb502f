//! The standardized surface: implied vols at fixed maturities and call deltas, in the style of
//! OptionMetrics' volatility-surface file (maturities 7 … 365 days, call deltas 0.10 … 0.90),
//! interpolated from a fitted [`Surface`] without creating calendar arbitrage and without
//! extrapolating.
//!
//! # Method
//! - **Nodes**: the fitted expiries that pass the butterfly check, in maturity order.
//! - **Total variance across maturities**: at a fixed forward log-moneyness `k`, total variance is
//!   interpolated linearly in maturity between the two nodes around `τ` (Gatheral & Jacquier
//!   2014: no calendar arbitrage means `w(k, ·)` non-decreasing at every `k`). The nodes enter as
//!   their running maximum in maturity, so the interpolant is non-decreasing in `τ` by
//!   construction; a node that falls below an earlier one by more than the two fits' own error
//!   ([`arbitrage::calendar_tolerance`]) is a crossing the data assert, and no point is given
//!   there.
//! - **Forward and discount** are interpolated log-linearly in maturity (a constant carry and rate
//!   between expiries).
//! - **Delta** is the forward (undiscounted) Black call delta `N(d₁)`,
//!   `d₁ = (−k + w/2)/√w`: the strike of each delta is solved on the interpolated smile.
//! - **Left out, not extrapolated**: a maturity before the first node or after the last, and a
//!   delta whose strike lies outside the log-moneyness range both neighbouring nodes were fitted
//!   to quotes on. A left-out point has no row.

use super::arbitrage;
use super::{ExpirySlice, Surface};
#[cfg(test)]
use std::collections::BTreeSet;

/// The standard maturities, in calendar days.
pub const MATURITY_DAYS: [i64; 7] = [7, 14, 30, 60, 91, 182, 365];

/// The standard call deltas: 0.10 to 0.90 by 0.05.
pub fn deltas() -> impl Iterator<Item = f64> {
    (2..=18).map(|i| i as f64 * 0.05)
}

/// One point of the standardized surface.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct GridPoint {
    /// Maturity in calendar days.
    pub days: i64,
    /// Forward call delta `N(d₁)`.
    pub delta: f64,
    /// Maturity in ACT/365 years (`days / 365`).
    pub t: f64,
    /// Forward to that maturity.
    pub forward: f64,
    /// Discount factor to that maturity.
    pub discount: f64,
    /// Log-moneyness `ln(K/F)` of the delta.
    pub k: f64,
    /// The strike of the delta.
    pub strike: f64,
    /// Implied vol.
    pub iv: f64,
    /// At-the-money-forward vol at that maturity, when `k = 0` is inside the supported range.
    pub atm_vol: Option<f64>,
}

/// One fitted expiry as the interpolation uses it.
#[derive(Debug, Clone, Copy)]
struct Node<'a> {
    slice: &'a ExpirySlice,
    shape: arbitrage::Slice,
}

/// The interpolated smile at one maturity: two nodes and a weight.
struct Smile<'a> {
    nodes: &'a [Node<'a>],
    /// Index of the node at or before the maturity.
    i: usize,
    /// Weight of the later node.
    lambda: f64,
    t: f64,
    k_lo: f64,
    k_hi: f64,
}

impl Smile<'_> {
    /// Interpolated total variance at `k`, or `None` where two nodes fitted to quotes at `k`
    /// cross beyond their error. Only nodes whose quoted range holds `k` take part: elsewhere a
    /// fit is an extrapolation that says nothing of the market.
    fn w(&self, k: f64) -> Option<f64> {
        let last = (self.i + 1).min(self.nodes.len() - 1);
        let mut running: Option<(f64, &Node)> = None;
        let mut at = [f64::NAN; 2];
        for (j, n) in self.nodes[..=last].iter().enumerate() {
            if n.shape.k_lo <= k && k <= n.shape.k_hi {
                let w = n.shape.params.w(k);
                running = match running {
                    Some((r, prev)) if w < r - arbitrage::calendar_tolerance(&prev.shape, &n.shape) => return None,
                    Some((r, prev)) if r >= w => Some((r, prev)),
                    _ => Some((w, n)),
                };
            }
            if j == self.i {
                at[0] = running?.0;
            }
            if j == last {
                at[1] = running?.0;
            }
        }
        let w = (1.0 - self.lambda) * at[0] + self.lambda * at[1];
        (w > 0.0).then_some(w)
    }

    /// Forward call delta at `k`.
    fn delta(&self, k: f64) -> Option<f64> {
        let w = self.w(k)?;
        Some(normal_cdf((-k + w / 2.0) / w.sqrt()))
    }

    /// The `k` of a forward call delta, by bisection on the supported range; `None` when the
    /// delta's strike is outside it.
    fn k_of(&self, delta: f64) -> Option<f64> {
        let (mut lo, mut hi) = (self.k_lo, self.k_hi);
        // Delta falls as the strike rises: the range must bracket it.
        if self.delta(lo)? < delta || self.delta(hi)? > delta {
            return None;
        }
        for _ in 0..64 {
            let mid = 0.5 * (lo + hi);
            if self.delta(mid)? > delta {
                lo = mid;
            } else {
                hi = mid;
            }
            if hi - lo < 1e-12 {
                break;
            }
        }
        Some(0.5 * (lo + hi))
    }
}

/// The standard normal distribution function (Cody's, through the implied-vol crate).
fn normal_cdf(x: f64) -> f64 {
    use implied_vol::SpecialFn;
    implied_vol::DefaultSpecialFn::norm_cdf(x)
}

fn nodes(surface: &Surface) -> Vec<Node<'_>> {
    surface
        .expiries
        .iter()
        .filter(|e| e.butterfly_ok && !e.points.is_empty() && e.t > 0.0)
        .map(|e| Node { slice: e, shape: super::build::calendar_slice(e) })
        .collect()
}

fn smile<'a>(nodes: &'a [Node<'a>], t: f64) -> Option<Smile<'a>> {
    const EPS: f64 = 1e-9;
    let (first, last) = (nodes.first()?, nodes.last()?);
    if t < first.slice.t - EPS || t > last.slice.t + EPS {
        return None;
    }
    let i = nodes.iter().rposition(|n| n.slice.t <= t + EPS)?;
    let j = (i + 1).min(nodes.len() - 1);
    let (a, b) = (&nodes[i], &nodes[j]);
    let lambda = if j == i || b.slice.t - a.slice.t <= EPS {
        0.0
    } else {
        ((t - a.slice.t) / (b.slice.t - a.slice.t)).clamp(0.0, 1.0)
    };
    let (k_lo, k_hi) = if lambda == 0.0 {
        (a.shape.k_lo, a.shape.k_hi)
    } else {
        (a.shape.k_lo.max(b.shape.k_lo), a.shape.k_hi.min(b.shape.k_hi))
    };
    (k_lo < k_hi).then_some(Smile { nodes, i, lambda, t, k_lo, k_hi })
}

/// The standardized surface of a fitted surface ([`MATURITY_DAYS`] × [`deltas`]); points the
/// quotes do not support are left out (module docs).
pub fn standardize(surface: &Surface) -> Vec<GridPoint> {
    let nodes = nodes(surface);
    let mut out = Vec::new();
    for days in MATURITY_DAYS {
        let t = days as f64 / 365.0;
        let Some(s) = smile(&nodes, t) else { continue };
        let (a, b) = (nodes[s.i].slice, nodes[(s.i + 1).min(nodes.len() - 1)].slice);
        let lerp = |x: f64, y: f64| ((1.0 - s.lambda) * x.ln() + s.lambda * y.ln()).exp();
        let (forward, discount) = (lerp(a.forward, b.forward), lerp(a.discount, b.discount));
        let atm_vol = (s.k_lo <= 0.0 && 0.0 <= s.k_hi).then(|| s.w(0.0)).flatten().map(|w| (w / s.t).sqrt());
        for delta in deltas() {
            let Some(k) = s.k_of(delta) else { continue };
            let Some(w) = s.w(k) else { continue };
            out.push(GridPoint {
                days,
                delta,
                t,
                forward,
                discount,
                k,
                strike: forward * k.exp(),
                iv: (w / t).sqrt(),
                atm_vol,
            });
        }
    }
    out
}

/// Total variance of the standardized surface at log-moneyness `k` and maturity `t` (years), as
/// [`standardize`] interpolates it; `None` where it gives no point.
pub fn total_variance(surface: &Surface, k: f64, t: f64) -> Option<f64> {
    let nodes = nodes(surface);
    let s = smile(&nodes, t)?;
    (s.k_lo <= k && k <= s.k_hi).then(|| s.w(k)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::iv::ForwardSource;
    use crate::query::surface::svi::SviParams;
    use crate::query::surface::{ExpirySlice, SurfacePoint};

    /// A slice of total variance `w(k) = θ(1 + 0.5k² + skew·k)`-like SVI, quoted on [-0.2, 0.2].
    fn slice(t: f64, atm: f64, ok: bool) -> ExpirySlice {
        let theta = atm * atm * t;
        let p = SviParams { a: theta * 0.6, b: theta * 2.0, rho: -0.4, m: 0.0, sigma: 0.2 };
        let w0 = p.w(0.0);
        let scale = theta / w0;
        let p = SviParams { a: p.a * scale, b: p.b * scale, ..p };
        let points = (-8..=8)
            .map(|i| {
                let k = i as f64 * 0.025;
                let v = p.vol(k, t);
                SurfacePoint { strike: 100.0 * k.exp(), k, iv_market: v, iv_fit: v, right: crate::domain::Right::Call }
            })
            .collect();
        ExpirySlice {
            expiry: chrono::NaiveDate::default(),
            t,
            forward: 100.0,
            discount: (-0.04 * t).exp(),
            forward_source: ForwardSource::Parity,
            a: p.a,
            b: p.b,
            rho: p.rho,
            m: p.m,
            sigma: p.sigma,
            atm_vol: atm,
            rmse: 0.0,
            butterfly_ok: ok,
            calendar_ok: true,
            min_g: 0.0,
            oldest_quote: Default::default(),
            newest_quote: Default::default(),
            points,
        }
    }

    fn surface(slices: Vec<ExpirySlice>) -> Surface {
        let mut s = Surface::new("X", Default::default(), 100.0);
        s.expiries = slices;
        s
    }

    #[test]
    fn points_between_the_fitted_maturities_only() {
        let s = surface(vec![slice(20.0 / 365.0, 0.2, true), slice(100.0 / 365.0, 0.22, true)]);
        let g = standardize(&s);
        let days: BTreeSet<i64> = g.iter().map(|p| p.days).collect();
        assert_eq!(days.into_iter().collect::<Vec<_>>(), vec![30, 60, 91], "7, 14, 182 and 365 are not extrapolated");
        for p in &g {
            // Each point's strike has its delta on the interpolated smile.
            let w = p.iv * p.iv * p.t;
            assert!((normal_cdf((-p.k + w / 2.0) / w.sqrt()) - p.delta).abs() < 1e-9);
            assert!((p.strike - p.forward * p.k.exp()).abs() < 1e-9);
        }
        // The ATM vol of a maturity interpolates total variance: between the two slices' vols.
        let atm = g.iter().find(|p| p.days == 60).and_then(|p| p.atm_vol).unwrap();
        assert!(atm > 0.2 && atm < 0.22, "{atm}");
    }

    #[test]
    fn crossing_slices_give_no_point_and_failed_smiles_are_not_nodes() {
        // The later slice has far less variance: a calendar arbitrage the data assert.
        let crossing = surface(vec![slice(20.0 / 365.0, 0.4, true), slice(100.0 / 365.0, 0.1, true)]);
        assert!(standardize(&crossing).is_empty());
        assert!(total_variance(&crossing, 0.0, 60.0 / 365.0).is_none());
        // A middle slice failing the butterfly check is not a node: 60 days interpolates around it.
        let s = surface(vec![
            slice(20.0 / 365.0, 0.2, true),
            slice(50.0 / 365.0, 0.9, false),
            slice(100.0 / 365.0, 0.22, true),
        ]);
        let w = total_variance(&s, 0.0, 60.0 / 365.0).unwrap();
        assert!((w / (60.0 / 365.0)).sqrt() < 0.22);
    }

    #[test]
    fn total_variance_never_falls_with_maturity() {
        // Within their error two fits may cross slightly: the running maximum keeps the grid
        // monotone in maturity.
        let mut a = slice(20.0 / 365.0, 0.25, true);
        a.points.iter_mut().for_each(|p| p.iv_market *= 1.01);
        let s = surface(vec![a, slice(40.0 / 365.0, 0.178, true), slice(120.0 / 365.0, 0.2, true)]);
        for k in [-0.15, -0.05, 0.0, 0.1] {
            let ws: Vec<f64> = (20..=120).filter_map(|d| total_variance(&s, k, d as f64 / 365.0)).collect();
            assert!(ws.windows(2).all(|w| w[1] >= w[0] - 1e-15), "k {k}");
        }
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-15 && (normal_cdf(1.959964) - 0.975).abs() < 1e-6);
    }
}
