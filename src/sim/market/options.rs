//! Listed options and their prices.
//!
//! - **Expiries**: Fridays (the previous session when Friday is a holiday). The third Friday of a
//!   month is a monthly, listed 53 weeks ahead; the other Fridays are weeklies, listed 8 weeks
//!   ahead. An expiry trades until its session closes.
//! - **Strikes**: fixed at listing from that day's close: a grid spaced by price level
//!   (0.5 / 1 / 2.5 / 5 / 10) covering ±(15 % + 35 % √T) of it.
//! - **Surface**: SSVI, ATM total variance θ(T) = σ_atm(T)² T with σ_atm mean-reverting from a
//!   regime-driven short end to a long-run level; φ(θ) = η / (θ^½ (1+θ)^½), ρ per symbol.
//!   Written per expiry as raw SVI (a, b, ρ, m, σ). These parameters satisfy Gatheral–Jacquier's
//!   no-butterfly conditions (θφ(1+|ρ|) ≤ 4, θφ²(1+|ρ|) ≤ 4).
//! - **Prices**: Black-76 on the forward F = (S − PV(D)) e^{rT}, T in ACT/365 years to the
//!   expiry's 16:00 close; rates r from a smooth deterministic curve; D the cash dividends of the
//!   symbol's schedule going ex before the expiry (escrowed model, see [`super::corporate`]).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::equity::regime;
use super::rng::{hash_str, mix, Key};
use super::{american, cents, corporate, Market, SymbolSpec};
use crate::calendar;

pub use crate::domain::Right;

/// One option contract.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptionId {
    /// Index of the underlying in the market.
    pub underlying: usize,
    /// Expiry date (last trading day).
    pub expiry: NaiveDate,
    /// Strike in the internal (never split) basis; served ÷ the clock's split factor, as the OCC
    /// adjusts listed options for a whole-number split (strike ÷ ratio, contracts × ratio,
    /// multiplier and trading class unchanged, the same contract id).
    pub strike: f64,
    /// Put or call.
    pub right: Right,
}

/// One listed expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct Expiry {
    /// Last trading day.
    pub date: NaiveDate,
    /// Third-Friday monthly (else weekly).
    pub monthly: bool,
    /// First day it traded.
    pub listed: NaiveDate,
    /// Listed strikes, ascending.
    pub strikes: Vec<f64>,
}

/// Every expiry of an underlying listed on one trading date.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// The trading date of the snapshot.
    pub date: NaiveDate,
    /// Listed expiries, ascending.
    pub expiries: Vec<Expiry>,
}

fn friday_expiry(friday: NaiveDate) -> NaiveDate {
    if calendar::is_trading_day(friday) {
        friday
    } else {
        calendar::prev_trading_day(friday)
    }
}

fn is_third_friday(friday: NaiveDate) -> bool {
    (15..=21).contains(&friday.day())
}

/// Strike spacing for a price level.
pub fn strike_step(price: f64) -> f64 {
    match price {
        p if p < 25.0 => 0.5,
        p if p < 100.0 => 1.0,
        p if p < 250.0 => 2.5,
        p if p < 1000.0 => 5.0,
        _ => 10.0,
    }
}

impl Chain {
    /// The chain of underlying `i` as listed on `today`.
    pub fn build(market: &Market, i: usize, today: NaiveDate) -> Chain {
        let mut friday = today - Duration::days(((today.weekday().num_days_from_monday() + 7 - 4) % 7) as i64);
        let mut expiries = Vec::new();
        while friday <= today + Duration::days(380) {
            let date = friday_expiry(friday);
            let monthly = is_third_friday(friday);
            let listed = listing_date(date);
            if date >= today && listed <= today && date <= super::last_date() {
                if let Some(strikes) = listed_strikes(market, i, listed, date) {
                    expiries.push(Expiry { date, monthly, listed, strikes });
                }
            }
            friday += Duration::days(7);
        }
        Chain { date: today, expiries }
    }

    /// All strikes of all expiries, ascending and distinct (what sec-def parameters report).
    pub fn all_strikes(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.expiries.iter().flat_map(|e| e.strikes.iter().copied()).collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    }

    /// The expiry on `date`, if listed.
    pub fn expiry(&self, date: NaiveDate) -> Option<&Expiry> {
        self.expiries.iter().find(|e| e.date == date)
    }
}

/// The first session an expiry traded: 53 weeks ahead for a monthly, 8 weeks for a weekly.
pub fn listing_date(expiry: NaiveDate) -> NaiveDate {
    let to_friday = (4 + 7 - expiry.weekday().num_days_from_monday() as i64) % 7;
    let friday = expiry + Duration::days(to_friday);
    calendar_on_or_after(expiry - Duration::days(if is_third_friday(friday) { 371 } else { 56 }))
}

fn calendar_on_or_after(d: NaiveDate) -> NaiveDate {
    if calendar::is_trading_day(d) {
        d
    } else {
        calendar::next_trading_day(d)
    }
}

/// Strikes in the internal basis: a grid around the listing day's close in *that day's* basis
/// (so a listing after a split centres on the new price), taken back to the internal basis.
fn listed_strikes(market: &Market, i: usize, listed: NaiveDate, expiry: NaiveDate) -> Option<Vec<f64>> {
    let basis = market.spec(i).split_factor(listed);
    let s0 = market.day_bar(i, listed)?.close / basis;
    let t = (expiry - listed).num_days() as f64 / 365.0;
    let width = s0 * (0.15 + 0.35 * t.sqrt()).min(0.6);
    let step = strike_step(s0);
    let lo = ((s0 - width) / step).ceil().max(1.0) as i64;
    let hi = ((s0 + width) / step).floor() as i64;
    Some((lo..=hi).map(|n| (n as f64 * step * 1000.0).round() / 1000.0 * basis).collect())
}

/// The stable con_id of an option: a hash of what identifies it (the strike in the internal
/// basis, so a split keeps it), in a range no stock uses.
pub fn con_id(spec: &SymbolSpec, expiry: NaiveDate, strike: f64, right: Right) -> i32 {
    let label =
        format!("{}|{}|{}|{}", spec.symbol, expiry.format("%Y%m%d"), (strike * 1000.0).round() as i64, right.letter());
    0x4000_0000 | (mix(hash_str(&label)) & 0x3FFF_FFFF) as i32
}

/// The OCC symbol, e.g. `SPY   261218C00450000`, of a strike as served (after a whole-number
/// split the OCC restates the strike, keeping the root).
pub fn occ_symbol(spec: &SymbolSpec, expiry: NaiveDate, strike: f64, right: Right) -> String {
    format!(
        "{:<6}{}{}{:08}",
        spec.option_root,
        expiry.format("%y%m%d"),
        right.letter(),
        (strike * 1000.0).round() as i64
    )
}

/// Risk-free continuous rate on a date: a smooth curve between 0.25 % and ~5.5 %.
pub fn rate(date: NaiveDate) -> f64 {
    let y = date.year() as f64 + date.ordinal() as f64 / 366.0 - 2000.0;
    (0.027 + 0.024 * (y * std::f64::consts::TAU / 13.0 + 0.6).cos()).max(0.0025)
}

/// The expiry's settlement instant: the close of its session.
pub fn expiry_instant(expiry: NaiveDate) -> Option<DateTime<Utc>> {
    calendar::session(expiry).map(|s| s.close)
}

/// Years (ACT/365) from `t` to the expiry's close.
pub fn years_to(expiry: NaiveDate, t: DateTime<Utc>) -> f64 {
    expiry_instant(expiry).map_or(0.0, |e| (e - t).num_seconds() as f64 / (365.0 * 86400.0))
}

/// Raw SVI parameters of one expiry: w(k) = a + b(ρ(k−m) + √((k−m)² + σ²)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Svi {
    /// Level.
    pub a: f64,
    /// Slope.
    pub b: f64,
    /// Skew.
    pub rho: f64,
    /// Shift.
    pub m: f64,
    /// Curvature.
    pub sigma: f64,
}

impl Svi {
    /// Total implied variance at log-moneyness k = ln(K/F).
    pub fn w(&self, k: f64) -> f64 {
        let x = k - self.m;
        self.a + self.b * (self.rho * x + (x * x + self.sigma * self.sigma).sqrt())
    }
}

/// ATM implied volatility of underlying `spec` on `date` for maturity `t` years.
pub fn atm_vol(key: Key, spec: &SymbolSpec, date: NaiveDate, t: f64) -> f64 {
    let long = spec.vol * 1.05;
    let short = spec.vol * 1.1 * regime(key, date);
    long + (short - long) * (-t / 0.5).exp()
}

/// The SVI slice of maturity `t` on `date`.
pub fn svi(key: Key, spec: &SymbolSpec, date: NaiveDate, t: f64) -> Svi {
    let t = t.max(1.0 / (365.0 * 24.0));
    let v = atm_vol(key, spec, date, t);
    let theta = v * v * t;
    let phi = spec.wings / (theta.sqrt() * (1.0 + theta).sqrt());
    let rho = spec.skew;
    Svi {
        a: theta / 2.0 * (1.0 - rho * rho),
        b: theta * phi / 2.0,
        rho,
        m: -rho / phi,
        sigma: (1.0 - rho * rho).sqrt() / phi,
    }
}

/// Everything the surface says about one option at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quote {
    /// Underlying price.
    pub spot: f64,
    /// Forward to expiry.
    pub forward: f64,
    /// Years to expiry.
    pub t: f64,
    /// Rate.
    pub rate: f64,
    /// The surface's implied volatility.
    pub iv: f64,
    /// Model (mid) price.
    pub price: f64,
    /// Spot delta.
    pub delta: f64,
    /// Gamma.
    pub gamma: f64,
    /// Vega per volatility point (1 %).
    pub vega: f64,
    /// Theta per calendar day.
    pub theta: f64,
    /// Present value of dividends to expiry.
    pub pv_dividend: f64,
}

/// Prices option `o` at instant `t` with the underlying at `spot` (internal basis) by its
/// exercise style (see [`super::american`]): the surface's vol, the American price for an
/// American class; the greeks stay Black's (ticks take [`tick_quote`]'s). `None` once expired.
pub fn quote(key: Key, spec: &SymbolSpec, o: &OptionId, t: DateTime<Utc>, spot: f64) -> Option<Quote> {
    let q = european_quote(key, spec, o, t, spot)?;
    Some(Quote { price: american::price(spec, o, t, &q), ..q })
}

/// [`quote`] with the greeks of the exercise style, as option-computation ticks carry them.
pub fn tick_quote(key: Key, spec: &SymbolSpec, o: &OptionId, t: DateTime<Utc>, spot: f64) -> Option<Quote> {
    Some(american::with_greeks(spec, o, t, european_quote(key, spec, o, t, spot)?))
}

/// The European (Black-76) quote of option `o` at `t`, whatever its style.
pub fn european_quote(key: Key, spec: &SymbolSpec, o: &OptionId, t: DateTime<Utc>, spot: f64) -> Option<Quote> {
    let tau = years_to(o.expiry, t);
    if tau <= 0.0 {
        return None;
    }
    let date = calendar::trading_date(t);
    let r = rate(date);
    let (forward, pv) = corporate::forward(spot, r, tau, &corporate::dividends_to(spec, t, o.expiry));
    let iv = (svi(key, spec, date, tau).w((o.strike / forward).ln()) / tau).sqrt();
    let g = black(o.right, forward, o.strike, tau, r, iv);
    let s = spot_greeks(spot, r, &g);
    Some(Quote {
        spot,
        forward,
        t: tau,
        rate: r,
        iv,
        price: g.price,
        delta: s.delta,
        gamma: s.gamma,
        vega: s.vega,
        theta: s.theta,
        pv_dividend: pv,
    })
}

impl Quote {
    /// The quote in a basis `factor` times smaller (prices ÷ factor: a split's adjustment);
    /// delta and the volatility are unchanged, gamma scales the other way.
    pub fn rebased(self, factor: f64) -> Quote {
        Quote {
            spot: self.spot / factor,
            forward: self.forward / factor,
            price: self.price / factor,
            gamma: self.gamma * factor,
            vega: self.vega / factor,
            theta: self.theta / factor,
            pv_dividend: self.pv_dividend / factor,
            ..self
        }
    }
}

/// The greeks as IB's option-computation ticks state them, on the spot: the Black-76 result on
/// the forward F = (S − PV(dividends)) e^{rT} (escrowed dividends, the dividends' present value
/// fixed in dollars), taken to the spot:
/// - delta ∂V/∂S = e^{rT} ∂V/∂F (dF/dS = e^{rT});
/// - gamma e^{2rT} ∂²V/∂F²;
/// - vega per volatility point: 0.01 × ∂V/∂σ;
/// - theta per calendar day with the spot held fixed: as time passes with S fixed,
///   F = S e^{rτ} − Σ D e^{r(T − tᵢ)} moves by −r S e^{rτ} per year (the dividends' terms do
///   not move), so θ_S = θ_F − r S e^{rT} ∂V/∂F, ÷ 365.
///
/// With no dividend these are Black–Scholes' on the spot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpotGreeks {
    /// ∂V/∂S.
    pub delta: f64,
    /// ∂²V/∂S².
    pub gamma: f64,
    /// ∂V/∂σ per volatility point (σ + 0.01).
    pub vega: f64,
    /// ∂V/∂t per calendar day, the spot fixed.
    pub theta: f64,
}

/// [`SpotGreeks`] of an option on `spot` whose Black-76 result on the forward `f` (rate `r`) is
/// `g`, the forward being (S − PV) e^{rT}.
pub fn spot_greeks(spot: f64, r: f64, g: &Black) -> SpotGreeks {
    let growth = if g.t > 0.0 { (r * g.t).exp() } else { 1.0 };
    SpotGreeks {
        delta: g.delta_fwd * growth,
        gamma: g.gamma_fwd * growth * growth,
        vega: g.vega / 100.0,
        theta: (g.theta - r * spot * growth * g.delta_fwd) / 365.0,
    }
}

/// Black-76 price and sensitivities on the forward.
#[derive(Debug, Clone, Copy)]
pub struct Black {
    /// Discounted price.
    pub price: f64,
    /// dPrice/dF.
    pub delta_fwd: f64,
    /// d²Price/dF².
    pub gamma_fwd: f64,
    /// dPrice/dσ.
    pub vega: f64,
    /// dPrice/dt (calendar time passing), per year.
    pub theta: f64,
    /// Years to expiry.
    pub t: f64,
}

/// Black-76 on forward `f`, strike `k`, `t` years, rate `r`, volatility `v`.
pub fn black(right: Right, f: f64, k: f64, t: f64, r: f64, v: f64) -> Black {
    let df = (-r * t).exp();
    let sd = (v * v * t).sqrt().max(1e-12);
    let d1 = ((f / k).ln() + sd * sd / 2.0) / sd;
    let d2 = d1 - sd;
    let pdf = (-d1 * d1 / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let (price, delta_fwd) = match right {
        Right::Call => (df * (f * ncdf(d1) - k * ncdf(d2)), df * ncdf(d1)),
        Right::Put => (df * (k * ncdf(-d2) - f * ncdf(-d1)), -df * ncdf(-d1)),
    };
    let vega = df * f * pdf * t.sqrt();
    let theta = -df * f * pdf * v / (2.0 * t.sqrt()) + r * price;
    Black { price, delta_fwd, gamma_fwd: df * pdf / (f * sd), vega, theta: theta.min(f64::MAX), t }
}

/// The implied volatility that reprices `price`, by bisection on Black-76 (robust, monotone).
pub fn implied_vol(right: Right, f: f64, k: f64, t: f64, r: f64, price: f64) -> Option<f64> {
    let intrinsic = (-r * t).exp()
        * match right {
            Right::Call => (f - k).max(0.0),
            Right::Put => (k - f).max(0.0),
        };
    if price.is_nan() || price <= intrinsic || t <= 0.0 {
        return None;
    }
    let (mut lo, mut hi) = (1e-4, 5.0);
    if black(right, f, k, t, r, hi).price < price {
        return None;
    }
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if black(right, f, k, t, r, mid).price < price {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(0.5 * (lo + hi))
}

/// Standard normal CDF to machine precision (W. J. Cody's rational approximations, through the
/// `implied-vol` crate): the greeks of the option-computation ticks match a Black–Scholes
/// reference to 1e-6 only with a CDF this exact.
pub fn ncdf(x: f64) -> f64 {
    use implied_vol::SpecialFn;
    implied_vol::DefaultSpecialFn::norm_cdf(x)
}

/// Bid and ask around a mid: a spread widening with price, floored and capped, in cents.
pub fn bid_ask(mid: f64) -> (f64, f64) {
    let half = (0.02 + 0.015 * mid).min(0.5);
    let bid = ((mid - half) * 100.0).floor().max(0.0) / 100.0;
    let ask = ((mid + half) * 100.0).ceil().max(1.0) / 100.0;
    (bid, ask)
}

/// The traded price of an option whose model value is `mid`.
pub fn trade_price(mid: f64) -> f64 {
    cents(mid).max(0.01)
}

/// Daily option volume: zero on days it did not trade. Liquidity falls with distance from the
/// money and with maturity.
pub fn day_volume(key: Key, spec: &SymbolSpec, o: &OptionId, date: NaiveDate, spot: f64, t: f64) -> u64 {
    let k = key
        .with_str(&spec.symbol)
        .with_str("optvol")
        .with(con_id(spec, o.expiry, o.strike, o.right) as u64)
        .with(date.num_days_from_ce() as u64);
    let moneyness = (o.strike / spot).ln().abs() / (0.05 + spec.vol * t.max(0.0).sqrt());
    let liquidity = (-moneyness * moneyness / 2.0).exp() * (1.0 / (1.0 + 2.0 * t)) * spec.adv / 2e4;
    let p_trade = (0.15 + 0.85 * (-moneyness / 2.5).exp()).min(0.98);
    if k.with(1).uniform() > p_trade {
        return 0;
    }
    (liquidity * (0.5 + k.with(2).uniform())).ceil().max(1.0) as u64
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
