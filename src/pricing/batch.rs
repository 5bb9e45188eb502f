//! American implied vols of many options at once, sharing the trees across each slice.
//!
//! Options of one slice — one spot, expiry, rate, yield and dividend schedule, a chain's
//! expiry — differ only in strike, right and vol, so the early-exercise premium
//! `P(k, σ)` (American − European, `k = ln(K/F)`) is one smooth function per slice and right.
//! [`implied_vols`] tabulates it once per slice and right on a grid of log-moneyness × vol
//! (each node one control-variate tree pricing, [`American::premium`]) and solves each
//! option's `Black(σ) + P(k, σ) = price` on the table, no tree: Newton's method from the
//! European vol of `price − P(k, σ_European)` (two or three steps), the fixed point
//! `σ = IV_European(price − P(k, σ))` with Let's Be Rational where Newton leaves the table: a
//! few µs per option once the grid is shared by enough options.
//!
//! The table is read by local bicubic (4 × 4 Lagrange) interpolation. Its vols span the
//! slice's smile as its out-of-the-money options show it (their premium is small, so their
//! European vols are close to the American ones; [`smile_range`]); its log-moneyness nodes
//! are at most [`K_SPACING_SD`] standard deviations apart. Every answer is checked:
//! - the vol must lie inside the table (else: the per-option solver);
//! - where the American vega (Black's plus the premium's slope) is at least [`LOW_VEGA`] per
//!   unit of spot, the same interpolation on a stencil shifted by one node in `k`, and one in
//!   `σ`, must agree with it to [`PREMIUM_TOLERANCE`] in vol (the premium's difference over
//!   the American vega). This catches the premium's kink where exercising at once starts to
//!   pay; the tree's own noise in the strike (about 1e-4 vol, the same the per-option solver
//!   has) passes. Where it fails, the option's own tree price is solved by regula falsi in a
//!   bracket of ±[`BRACKET`] around the table's answer (else: the per-option solver);
//! - below that vega a price pins its vol no better than the tree itself does (the issue's
//!   bar is "1e-4 where vega is not tiny"; `tests/it/pricing.rs` compares where the vega is
//!   at least 1 on a spot of 100, the same bound), and the table's answer stands.
//!
//! Slices with fewer than [`MIN_OPTIONS`] options of a right, and calls that are never
//! exercised early, get the per-option solver. Measured (`BENCHMARKS.md`, "American options"):
//! on the 10,000-option benchmark chain about 5× the per-option solver's speed; against
//! QuantLib's reference the same accuracy (116 of 118 within 1e-4, worst 1.5e-4); against the
//! per-option solver, where the vega is at least 1 on a spot of 100, median 1e-6, 90th
//! percentile 5e-5, worst 6e-4 (the tree's noise in the strike, which the table's
//! interpolation smooths).

use super::american::{American, Dividend, DEFAULT_STEPS};
use super::implied::{illinois, solve, UPPER_SLACK, VOL_TOLERANCE};
use implied_vol::{DefaultSpecialFn, ImpliedBlackVolatility};
use std::collections::HashMap;

/// The half-width, relative, of the bracket around the table's answer where the table is in
/// doubt.
const BRACKET: f64 = 0.02;
/// Newton steps on the table before the fixed point takes over.
const MAX_NEWTON_STEPS: usize = 8;
/// Prices below this fraction of the discounted forward are solved with Let's Be Rational only
/// (Black's formula as a difference of two terms loses their digits).
const MIN_NEWTON_PRICE: f64 = 1e-6;
/// Options of one slice and right below which a table does not pay for itself.
const MIN_OPTIONS: usize = 40;
/// The largest distance between log-moneyness nodes, in standard deviations (`σ̄ √t`).
const K_SPACING_SD: f64 = 0.25;
/// Log-moneyness nodes: at least this many ...
const K_NODES_MIN: usize = 8;
/// ... at most this many ...
const K_NODES_MAX: usize = 48;
/// ... and never more than one per this many options.
const OPTIONS_PER_K_NODE: usize = 4;
/// Vol nodes of the table.
const VOL_NODES: usize = 6;
/// The table's vols span from this fraction of the smile's lowest vol to its highest.
const VOL_FLOOR: f64 = 0.8;
/// The largest disagreement of two interpolations of the premium, over the American vega,
/// that an answer from the table may have (else the option's own tree decides).
const PREMIUM_TOLERANCE: f64 = 1e-3;
/// Below this American vega (price per unit of vol, per unit of spot) a price pins its vol to
/// no better than the tree does, and the table's answer stands unchecked.
const LOW_VEGA: f64 = 0.01;

/// [`implied_vols`] of options already described: `prices[i]` is option `i`'s market price.
/// The form research calls with the options it has built from its quotes.
///
/// # Panics
/// If the slices differ in length.
pub fn implied_vols_of(options: &[American], prices: &[f64]) -> Vec<f64> {
    let column = |f: fn(&American) -> f64| options.iter().map(f).collect::<Vec<f64>>();
    implied_vols(
        prices,
        &column(|o| o.spot),
        &column(|o| o.strike),
        &column(|o| o.t),
        &column(|o| o.rate),
        &column(|o| o.yield_rate),
        &options.iter().map(|o| o.dividends).collect::<Vec<_>>(),
        &options.iter().map(|o| o.is_call).collect::<Vec<bool>>(),
    )
}

/// American implied vols of many options at once, NaN where there is none (see
/// [`American::implied_vol`]). Every slice has one length; `dividends[i]` is option `i`'s
/// schedule. Rows may come in any order: they are grouped internally by slice (exact equality
/// of spot, expiry, rate, yield and dividend schedule) and right, and a group with enough
/// options shares one table of early-exercise premiums (module docs); the results come back in
/// the rows' order. Single-threaded: a caller with many cores splits the rows (by slice, for
/// the sharing to pay).
///
/// # Panics
/// If the slices differ in length.
#[allow(clippy::too_many_arguments)]
pub fn implied_vols(
    prices: &[f64],
    spots: &[f64],
    strikes: &[f64],
    ts: &[f64],
    rates: &[f64],
    yields: &[f64],
    dividends: &[&[Dividend]],
    calls: &[bool],
) -> Vec<f64> {
    let n = prices.len();
    let lengths = [spots.len(), strikes.len(), ts.len(), rates.len(), yields.len(), dividends.len(), calls.len()];
    assert!(lengths.iter().all(|l| *l == n), "implied_vols: columns of different lengths");
    let option = |i: usize| American {
        spot: spots[i],
        strike: strikes[i],
        t: ts[i],
        rate: rates[i],
        yield_rate: yields[i],
        dividends: dividends[i],
        is_call: calls[i],
    };
    let mut groups: HashMap<Vec<u64>, Vec<usize>> = HashMap::new();
    for i in 0..n {
        let mut key = vec![spots[i].to_bits(), ts[i].to_bits(), rates[i].to_bits(), yields[i].to_bits()];
        key.extend(dividends[i].iter().flat_map(|d| [d.t.to_bits(), d.amount.to_bits()]));
        groups.entry(key).or_default().push(i);
    }
    let mut out = vec![f64::NAN; n];
    for rows in groups.values() {
        let base = option(rows[0]);
        let smile = if base.is_valid() {
            smile_range(&base, rows.iter().map(|i| (strikes[*i], prices[*i], calls[*i])))
        } else {
            None
        };
        for is_call in [true, false] {
            let side: Vec<usize> = rows.iter().copied().filter(|i| calls[*i] == is_call).collect();
            let template = American { is_call, ..base };
            let solved = match smile {
                Some(smile) if side.len() >= MIN_OPTIONS && !template.never_early() => {
                    let options: Vec<(f64, f64)> = side.iter().map(|i| (strikes[*i], prices[*i])).collect();
                    slice_implied_vols(&template, &options, smile)
                }
                _ => vec![None; side.len()],
            };
            for (row, iv) in side.iter().zip(solved) {
                let iv = iv.or_else(|| option(*row).implied_vol(prices[*row]));
                out[*row] = iv.unwrap_or(f64::NAN);
            }
        }
    }
    out
}

/// The European vol of a discounted price, `None` where there is none.
fn european_iv(price: f64, forward: f64, strike: f64, t: f64, discount: f64, is_call: bool) -> Option<f64> {
    if !(price > 0.0 && price.is_finite()) {
        return None;
    }
    let iv = ImpliedBlackVolatility::builder()
        .option_price(price / discount)
        .forward(forward)
        .strike(strike)
        .expiry(t)
        .is_call(is_call)
        .build_unchecked()
        .calculate::<DefaultSpecialFn>()?;
    (iv.is_finite() && iv > 0.0).then_some(iv)
}

/// A table of the premium on a uniform grid: `values[a * vols + b]` at `k0 + a·hk`, `v0 + b·hv`.
struct Table {
    k0: f64,
    hk: f64,
    ks: usize,
    v0: f64,
    hv: f64,
    vols: usize,
    values: Vec<f64>,
}

impl Table {
    /// The first node of the 4-node stencil around `x` on `nodes` nodes from `x0` by `h`, and
    /// the one shifted by a node (to the side that stays inside).
    fn stencils(x: f64, x0: f64, h: f64, nodes: usize) -> (usize, usize) {
        let last = nodes - 4;
        let at = ((x - x0) / h).floor();
        let s = if at.is_finite() { (at - 1.0).clamp(0.0, last as f64) as usize } else { 0 };
        let centre = (x - x0) / h - s as f64;
        // The shifted stencil leans to the side x lies on within its cell.
        let alt = if (centre >= 1.5 && s < last) || s == 0 { s + 1 } else { s - 1 };
        (s, alt)
    }

    /// Lagrange weights of the four nodes `s..s+4` at `x`.
    fn weights(x: f64, x0: f64, h: f64, s: usize) -> [f64; 4] {
        let u = (x - x0) / h - s as f64;
        let (a, b, c, d) = (u, u - 1.0, u - 2.0, u - 3.0);
        [-b * c * d / 6.0, a * c * d / 2.0, -a * b * d / 2.0, a * b * c / 6.0]
    }

    /// The bicubic interpolation at `(k, vol)` on stencils starting at `sk` and `sv`.
    fn interpolate(&self, k: f64, vol: f64, sk: usize, sv: usize) -> f64 {
        let wk = Self::weights(k, self.k0, self.hk, sk);
        let wv = Self::weights(vol, self.v0, self.hv, sv);
        let mut total = 0.0;
        for (a, wa) in wk.iter().enumerate() {
            let row = &self.values[(sk + a) * self.vols + sv..][..4];
            total += wa * (wv[0] * row[0] + wv[1] * row[1] + wv[2] * row[2] + wv[3] * row[3]);
        }
        total
    }

    /// The premium at `(k, vol)`.
    fn value(&self, k: f64, vol: f64) -> f64 {
        let (sk, _) = Self::stencils(k, self.k0, self.hk, self.ks);
        let (sv, _) = Self::stencils(vol, self.v0, self.hv, self.vols);
        self.interpolate(k, vol, sk, sv)
    }

    /// The premium at `(k, vol)` and the largest change a shifted stencil makes to it.
    fn premium(&self, k: f64, vol: f64) -> (f64, f64) {
        let (sk, alt_k) = Self::stencils(k, self.k0, self.hk, self.ks);
        let (sv, alt_v) = Self::stencils(vol, self.v0, self.hv, self.vols);
        let p = self.interpolate(k, vol, sk, sv);
        let spread =
            (self.interpolate(k, vol, alt_k, sv) - p).abs().max((self.interpolate(k, vol, sk, alt_v) - p).abs());
        (p, spread)
    }

    /// The vol inside the table at which the table's American price (Black's European price
    /// plus the interpolated premium) is `price`, by regula falsi (Illinois); `None` unless the
    /// table's vols bracket it.
    fn root(&self, option: &American, k: f64, price: f64) -> Option<f64> {
        let f = |vol: f64| option.european(vol) + self.value(k, vol) - price;
        let (lo, hi) = (self.v0, self.v0 + self.hv * (self.vols - 1) as f64);
        let (f_lo, f_hi) = (f(lo), f(hi));
        if !(f_lo < 0.0 && f_hi >= 0.0 && self.covers(k, lo)) {
            return None;
        }
        let found = illinois(f, (lo, f_lo), (hi, f_hi), 100, |fx, width| fx == 0.0 || width < VOL_TOLERANCE);
        Some(found.unwrap_or_else(|middle| middle))
    }

    /// The vol at which Black's price plus the table's premium is `price`, by Newton's method
    /// from `start` (Black's vega plus the premium's slope in the vol): two or three steps
    /// where the fixed point on European vols takes four to six Let's Be Rational inversions.
    /// `None` if a step leaves the table or it does not settle; prices too small for Black's
    /// formula to carry their digits are left to Let's Be Rational.
    fn newton(&self, k: f64, price: f64, start: f64, black: (f64, f64, f64, f64, bool)) -> Option<f64> {
        let (forward, strike, t, discount, is_call) = black;
        // (NaN prices stop here too.)
        if price.partial_cmp(&(MIN_NEWTON_PRICE * forward * discount)) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        let dv = 0.25 * self.hv;
        let mut vol = start;
        for _ in 0..MAX_NEWTON_STEPS {
            if !self.covers(k, vol - dv) || !self.covers(k, vol + dv) {
                return None;
            }
            let (value, vega) = black_and_vega(forward, strike, t, discount, vol, is_call);
            let slope = (self.value(k, vol + dv) - self.value(k, vol - dv)) / (2.0 * dv);
            let excess = value + self.value(k, vol) - price;
            let step = excess / (vega + slope);
            if !(step.is_finite() && vega + slope > 0.0) {
                return None;
            }
            vol -= step;
            if step.abs() < VOL_TOLERANCE {
                return Some(vol);
            }
        }
        None
    }

    /// Whether `(k, vol)` lies inside the table.
    fn covers(&self, k: f64, vol: f64) -> bool {
        let inside = |x: f64, x0: f64, h: f64, n: usize| x >= x0 && x <= x0 + h * (n - 1) as f64;
        inside(k, self.k0, self.hk, self.ks) && inside(vol, self.v0, self.hv, self.vols)
    }
}

/// The implied vols of `(strike, price)` options of one slice and right (`template` gives the
/// rest), from a shared table; `None` where the table cannot answer to
/// [`PREMIUM_TOLERANCE`] (the caller solves those one by one).
fn slice_implied_vols(
    template: &American,
    options: &[(f64, f64)],
    (v_lo, v_hi, v_mean): (f64, f64, f64),
) -> Vec<Option<f64>> {
    let (forward, discount, t, is_call) = (template.forward(), template.discount(), template.t, template.is_call);
    let bound = |strike: f64| if is_call { template.spot } else { strike };
    // Each option's log-moneyness and European vol (an upper bound of the American one).
    let inputs: Vec<Option<(f64, f64)>> = options
        .iter()
        .map(|&(strike, price)| {
            let intrinsic = American { strike, ..*template }.intrinsic();
            if !(price.is_finite() && price > intrinsic && price < bound(strike) && strike > 0.0) {
                return None;
            }
            let upper = european_iv(price, forward, strike, t, discount, is_call)?;
            Some(((strike / forward).ln(), upper))
        })
        .collect();
    let usable: Vec<(f64, f64)> = inputs.iter().flatten().copied().collect();
    if usable.len() < MIN_OPTIONS {
        return vec![None; options.len()];
    }
    let fold = |f: fn(f64, f64) -> f64, init: f64, pick: fn(&(f64, f64)) -> f64| usable.iter().map(pick).fold(init, f);
    let (k_lo, k_hi) = (fold(f64::min, f64::INFINITY, |x| x.0), fold(f64::max, f64::NEG_INFINITY, |x| x.0));
    let sd = v_mean * t.sqrt();
    let ks = (((k_hi - k_lo) / (K_SPACING_SD * sd)).ceil() as usize)
        .saturating_add(1)
        .clamp(K_NODES_MIN, K_NODES_MAX)
        .min(usable.len() / OPTIONS_PER_K_NODE)
        .max(5);
    let hk = ((k_hi - k_lo) / (ks - 1) as f64).max(1e-9);
    let (v0, v1) = (VOL_FLOOR * v_lo, v_hi);
    let hv = ((v1 - v0) / (VOL_NODES - 1) as f64).max(1e-6);
    let mut values = Vec::with_capacity(ks * VOL_NODES);
    for a in 0..ks {
        let node = American { strike: forward * (k_lo + a as f64 * hk).exp(), ..*template };
        for b in 0..VOL_NODES {
            values.push(node.premium(v0 + b as f64 * hv, DEFAULT_STEPS));
        }
    }
    let table = Table { k0: k_lo, hk, ks, v0, hv, vols: VOL_NODES, values };
    options
        .iter()
        .zip(inputs)
        .map(|(&(strike, price), input)| {
            let (k, upper) = input?;
            let option = American { strike, ..*template };
            let g = |vol: f64| european_iv(price - table.value(k, vol), forward, strike, t, discount, is_call);
            // The fixed point on the table; where it fails (a price a hair above the exercise
            // value), the root of the table's American price.
            let iv = g(upper)
                .and_then(|start| table.newton(k, price, start, (forward, strike, t, discount, is_call)))
                .or_else(|| solve(upper, VOL_TOLERANCE, g))
                .filter(|iv| *iv <= upper * (1.0 + UPPER_SLACK) && table.covers(k, *iv))
                .or_else(|| table.root(&option, k, price));
            let iv = iv?;
            // The American vega: the European one plus the premium's slope.
            let dv = 0.25 * table.hv;
            let slope = (table.value(k, iv + dv) - table.value(k, iv - dv)) / (2.0 * dv);
            let vega = european_vega(forward, strike, t, discount, iv) + slope;
            let (_, spread) = table.premium(k, iv);
            if vega > 0.0 && (vega < LOW_VEGA * template.spot || spread <= PREMIUM_TOLERANCE * vega) {
                return Some(iv);
            }
            // Where the table is in doubt: the same root of the tree's price, bracketed around
            // the table's answer (which is close), else `None`.
            let (lo, hi) = (iv * (1.0 - BRACKET), (iv * (1.0 + BRACKET)).min(upper * (1.0 + UPPER_SLACK)));
            if !(option.price(lo) < price && option.price(hi) >= price) {
                return None;
            }
            option.bracketed(price, (lo, hi), DEFAULT_STEPS)
        })
        .collect()
}

/// Black's price and vega (per unit of vol), discounted.
fn black_and_vega(forward: f64, strike: f64, t: f64, discount: f64, vol: f64, is_call: bool) -> (f64, f64) {
    use implied_vol::SpecialFn;
    let n = DefaultSpecialFn::norm_cdf;
    let sd = vol * t.sqrt();
    let d1 = (forward / strike).ln() / sd + 0.5 * sd;
    let d2 = d1 - sd;
    let value = if is_call { forward * n(d1) - strike * n(d2) } else { strike * n(-d2) - forward * n(-d1) };
    (discount * value, european_vega(forward, strike, t, discount, vol))
}

/// The European vega (price per unit of vol, discounted).
fn european_vega(forward: f64, strike: f64, t: f64, discount: f64, vol: f64) -> f64 {
    let sd = vol * t.sqrt();
    let d1 = (forward / strike).ln() / sd + 0.5 * sd;
    discount * forward * (-0.5 * d1 * d1).exp() / (2.0 * std::f64::consts::PI).sqrt() * t.sqrt()
}

/// The vols a slice's tables span: the lowest, highest and mean European vol of its
/// out-of-the-money options (calls above the forward, puts below), whose premium is small, so
/// whose European vols are close to the American ones of the slice's smile (in the money, the
/// European vol of an American price is far above its American vol). `None` with fewer than
/// four such options.
fn smile_range(base: &American, options: impl Iterator<Item = (f64, f64, bool)>) -> Option<(f64, f64, f64)> {
    let (forward, discount) = (base.forward(), base.discount());
    let vols: Vec<f64> = options
        .filter(|&(strike, _, is_call)| (strike > forward) == is_call)
        .filter_map(|(strike, price, is_call)| {
            let bound = if is_call { base.spot } else { strike };
            // NaN prices fail here too.
            if price.partial_cmp(&bound) != Some(std::cmp::Ordering::Less) {
                return None;
            }
            european_iv(price, forward, strike, base.t, discount, is_call)
        })
        .collect();
    if vols.len() < 4 {
        return None;
    }
    let lo = vols.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = vols.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lo, hi, vols.iter().sum::<f64>() / vols.len() as f64))
}
