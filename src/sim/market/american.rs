//! American exercise in the simulated option market.
//!
//! The surface (SSVI per expiry, on the forward from the cash dividends) defines every option's
//! *volatility*; an option of an American-style class (`domain::ExerciseStyle::of_class` of its
//! trading class: every equity and ETF class, so every default symbol) is then worth
//! `pricing::American { .. }.price(vol)` — early exercise against the discrete dividends, in the
//! escrowed model the forward already uses — and a European-style one Black's price. So a client
//! inverting a simulated mid with `pricing::American::implied_vol` and the truth's inputs (spot,
//! strike, T, rate, dividends) recovers the truth's vol. No index underlying is listed yet (an
//! `SPX` with European `SPX`/`SPXW` classes would take the Black branch as it is).
//!
//! # Cost, and how bars keep it down
//! One American price is a binomial tree (tens of µs); history serves option bars aggregated
//! from one price per minute (per second below a minute). Quotes at one instant (ticks, the
//! truth) are priced exactly. Bars use a [`PremiumPath`] per contract and session: the
//! early-exercise premium (American − European) priced exactly at knots every 30 minutes (and
//! at the close), with its slope in the spot; between knots the premium is the time-weighted mix
//! of the two knots' first-order expansions at the minute's spot, added to that minute's exact
//! European price. That is 3 trees per knot (~42 a session instead of 391); bar prices at the
//! knots are exact, and between them the premium's error is second order in a half-hour's move.
//! A call with no dividend before its expiry is never exercised early and costs no tree at all.

use chrono::{DateTime, Duration, Utc};

use super::corporate;
use super::options::{european_quote, OptionId, Quote, Right};
use super::rng::Key;
use super::SymbolSpec;
use crate::domain::ExerciseStyle;
use crate::pricing::{American, Dividend};

/// Minutes between two exactly priced knots of a [`PremiumPath`].
pub const KNOT_MINUTES: usize = 30;

/// Whether options on `spec` are American-style (by their trading class).
pub fn is_american(spec: &SymbolSpec) -> bool {
    ExerciseStyle::of_class(&spec.option_root) == ExerciseStyle::American
}

/// The dividends an option of `expiry` sees at `t`, as the pricer takes them (internal basis).
pub fn dividends(spec: &SymbolSpec, t: DateTime<Utc>, o: &OptionId) -> Vec<Dividend> {
    corporate::dividends_to(spec, t, o.expiry).into_iter().map(|(t, amount)| Dividend { t, amount }).collect()
}

/// The pricer of option `o` quoted `q` (whose spot, T and rate it takes) with `dividends`.
pub fn pricer<'a>(o: &OptionId, q: &Quote, dividends: &'a [Dividend]) -> American<'a> {
    American {
        spot: q.spot,
        strike: o.strike,
        t: q.t,
        rate: q.rate,
        yield_rate: 0.0,
        dividends,
        is_call: o.right == Right::Call,
    }
}

/// Whether early exercise can pay: a put always, a call only with a dividend before expiry.
fn can_exercise_early(o: &OptionId, dividends: &[Dividend]) -> bool {
    o.right == Right::Put || !dividends.is_empty()
}

/// The price of `o` given its European quote `q` at `t`: American for American classes.
pub fn price(spec: &SymbolSpec, o: &OptionId, t: DateTime<Utc>, q: &Quote) -> f64 {
    if !is_american(spec) {
        return q.price;
    }
    let divs = dividends(spec, t, o);
    if !can_exercise_early(o, &divs) {
        return q.price;
    }
    let p = pricer(o, q, &divs).price(q.iv);
    if p.is_finite() {
        p
    } else {
        q.price
    }
}

/// `q` with the price and greeks of its exercise style: for an American class the pricer's
/// (IB's conventions: delta and gamma on the spot, vega per vol point, theta per calendar day).
pub fn with_greeks(spec: &SymbolSpec, o: &OptionId, t: DateTime<Utc>, q: Quote) -> Quote {
    if !is_american(spec) {
        return q;
    }
    let divs = dividends(spec, t, o);
    let g = pricer(o, &q, &divs).greeks(q.iv);
    if ![g.price, g.delta, g.gamma, g.vega, g.theta].iter().all(|x| x.is_finite()) {
        return q;
    }
    Quote { price: g.price, delta: g.delta, gamma: g.gamma, vega: g.vega, theta: g.theta, ..q }
}

/// The implied vol of `price` for option `o` quoted `q` at `t` (all in one basis, `scale` the
/// factor from the internal basis to it): American inversion for American classes.
pub fn implied_vol(
    spec: &SymbolSpec,
    o: &OptionId,
    t: DateTime<Utc>,
    q: &Quote,
    scale: f64,
    price: f64,
) -> Option<f64> {
    let strike = o.strike / scale;
    if !is_american(spec) {
        return super::options::implied_vol(o.right, q.forward, strike, q.t, q.rate, price);
    }
    let divs: Vec<Dividend> =
        dividends(spec, t, o).into_iter().map(|d| Dividend { amount: d.amount / scale, ..d }).collect();
    pricer(&OptionId { strike, ..*o }, q, &divs).implied_vol(price)
}

/// The early-exercise premium of one contract over one session (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct PremiumPath {
    /// (minute index, spot, premium, d premium / d spot) at each knot, in minute order.
    knots: Vec<(usize, f64, f64, f64)>,
}

impl PremiumPath {
    /// The path of `o` over the session opening at `open` whose prices at minute boundaries
    /// are `spots`; empty (no premium anywhere) for a European class or a call that is never
    /// exercised early.
    pub fn build(key: Key, spec: &SymbolSpec, o: &OptionId, open: DateTime<Utc>, spots: &[f64]) -> PremiumPath {
        if !is_american(spec) || spots.is_empty() {
            return PremiumPath::default();
        }
        if o.right == Right::Call && dividends(spec, open, o).is_empty() {
            return PremiumPath::default();
        }
        let last = spots.len() - 1;
        let mut minutes: Vec<usize> = (0..last).step_by(KNOT_MINUTES).collect();
        minutes.push(last);
        let premium = |t: DateTime<Utc>, s: f64| -> Option<f64> {
            let q = european_quote(key, spec, o, t, s)?;
            Some(price(spec, o, t, &q) - q.price)
        };
        let knots = minutes
            .into_iter()
            .map(|m| {
                let (t, s) = (open + Duration::minutes(m as i64), spots[m]);
                let h = 0.002 * s;
                match (premium(t, s), premium(t, s + h), premium(t, s - h)) {
                    (Some(p), Some(up), Some(down)) => (m, s, p, (up - down) / (2.0 * h)),
                    (p, _, _) => (m, s, p.unwrap_or(0.0), 0.0),
                }
            })
            .collect();
        PremiumPath { knots }
    }

    /// The premium at minute `m` (fractional inside a minute) with the spot at `spot`.
    pub fn at(&self, m: f64, spot: f64) -> f64 {
        let Some(j) = self.knots.iter().rposition(|k| k.0 as f64 <= m) else {
            return 0.0;
        };
        let expand = |k: &(usize, f64, f64, f64)| k.2 + k.3 * (spot - k.1);
        let a = &self.knots[j];
        let v = match self.knots.get(j + 1) {
            Some(b) => {
                let w = (m - a.0 as f64) / (b.0 - a.0).max(1) as f64;
                (1.0 - w) * expand(a) + w * expand(b)
            }
            None => expand(a),
        };
        v.max(0.0)
    }
}
