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
//! - **Prices**: Black–Scholes on the forward F = S e^{(r−q)T}, T in ACT/365 years to the
//!   expiry's 16:00 close; rates r from a smooth deterministic curve; dividends as a continuous
//!   yield q.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::equity::regime;
use super::rng::{hash_str, mix, Key};
use super::{cents, Market, SymbolSpec};
use crate::calendar;

pub use crate::domain::Right;

/// One option contract.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptionId {
    /// Index of the underlying in the market.
    pub underlying: usize,
    /// Expiry date (last trading day).
    pub expiry: NaiveDate,
    /// Strike.
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

fn listed_strikes(market: &Market, i: usize, listed: NaiveDate, expiry: NaiveDate) -> Option<Vec<f64>> {
    let s0 = market.day_bar(i, listed)?.close;
    let t = (expiry - listed).num_days() as f64 / 365.0;
    let width = s0 * (0.15 + 0.35 * t.sqrt()).min(0.6);
    let step = strike_step(s0);
    let lo = ((s0 - width) / step).ceil().max(1.0) as i64;
    let hi = ((s0 + width) / step).floor() as i64;
    Some((lo..=hi).map(|n| (n as f64 * step * 1000.0).round() / 1000.0).collect())
}

/// The stable con_id of an option: a hash of what identifies it, in a range no stock uses.
pub fn con_id(spec: &SymbolSpec, expiry: NaiveDate, strike: f64, right: Right) -> i32 {
    let label =
        format!("{}|{}|{}|{}", spec.symbol, expiry.format("%Y%m%d"), (strike * 1000.0).round() as i64, right.letter());
    0x4000_0000 | (mix(hash_str(&label)) & 0x3FFF_FFFF) as i32
}

/// The OCC symbol, e.g. `SPY   261218C00450000`.
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

/// Prices option `o` at instant `t` with the underlying at `spot`. `None` once expired.
pub fn quote(key: Key, spec: &SymbolSpec, o: &OptionId, t: DateTime<Utc>, spot: f64) -> Option<Quote> {
    let tau = years_to(o.expiry, t);
    if tau <= 0.0 {
        return None;
    }
    let date = calendar::trading_date(t);
    let r = rate(date);
    let q = spec.dividend_yield;
    let forward = spot * ((r - q) * tau).exp();
    let iv = (svi(key, spec, date, tau).w((o.strike / forward).ln()) / tau).sqrt();
    let g = black(o.right, forward, o.strike, tau, r, iv);
    let s = spot_greeks(spot, forward, r, q, &g);
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
        pv_dividend: spot * (1.0 - (-q * tau).exp()),
    })
}

/// The greeks as IB's option-computation ticks state them, on the spot with the dividend yield
/// q (Black–Scholes–Merton, F = S e^{(r−q)T}):
/// - delta e^{−qT} N(d1) for a call, −e^{−qT} N(−d1) for a put;
/// - gamma e^{−qT} n(d1) / (S σ √T);
/// - vega per volatility point: 0.01 × S e^{−qT} n(d1) √T;
/// - theta per calendar day with the spot held fixed: the BSM theta
///   (−S e^{−qT} n(d1) σ / (2√T) ∓ r K e^{−rT} N(±d2) ± q S e^{−qT} N(±d1)) divided by 365.
///
/// Derived from the Black-76 sensitivities on the forward: dF/dS = F/S, and holding S fixed
/// while time passes moves F by −(r−q)F per year, so θ_S = θ_F − (r−q) F ∂V/∂F.
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

/// [`SpotGreeks`] of an option on `spot` whose Black-76 result on the forward `f` (rate `r`,
/// dividend yield `q`) is `g`.
pub fn spot_greeks(spot: f64, f: f64, r: f64, q: f64, g: &Black) -> SpotGreeks {
    let ratio = f / spot;
    SpotGreeks {
        delta: g.delta_fwd * ratio,
        gamma: g.gamma_fwd * ratio * ratio,
        vega: g.vega / 100.0,
        theta: (g.theta - (r - q) * f * g.delta_fwd) / 365.0,
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
    Black { price, delta_fwd, gamma_fwd: df * pdf / (f * sd), vega, theta: theta.min(f64::MAX) }
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
mod tests {
    use super::*;

    #[test]
    fn implied_vol_inverts_black() {
        for (right, k) in [(Right::Call, 90.0), (Right::Put, 110.0), (Right::Call, 130.0)] {
            let p = black(right, 100.0, k, 0.4, 0.03, 0.27).price;
            let iv = implied_vol(right, 100.0, k, 0.4, 0.03, p).unwrap_or(0.0);
            assert!((iv - 0.27).abs() < 1e-6, "{iv}");
        }
        assert!((ncdf(1.959964) - 0.975).abs() < 1e-6);
    }

    /// Black–Scholes–Merton on the spot, written independently of `black`.
    fn bsm(right: Right, s: f64, k: f64, t: f64, r: f64, q: f64, v: f64) -> f64 {
        let d1 = ((s / k).ln() + (r - q + v * v / 2.0) * t) / (v * t.sqrt());
        let d2 = d1 - v * t.sqrt();
        match right {
            Right::Call => s * (-q * t).exp() * ncdf(d1) - k * (-r * t).exp() * ncdf(d2),
            Right::Put => k * (-r * t).exp() * ncdf(-d2) - s * (-q * t).exp() * ncdf(-d1),
        }
    }

    #[test]
    fn tick_greeks_are_ibs_spot_greeks() {
        let spec = SymbolSpec { dividend_yield: 0.018, ..SymbolSpec::for_symbol("SPY") };
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-02T15:00:00Z").map(|t| t.to_utc()).unwrap_or_default();
        let mut checked = 0;
        for expiry in ["2026-03-06", "2026-03-20", "2026-09-18", "2027-01-15"] {
            let expiry: NaiveDate = expiry.parse().unwrap_or_default();
            for strike in [420.0, 480.0, 500.0, 520.0, 600.0] {
                for right in [Right::Call, Right::Put] {
                    let o = OptionId { underlying: 0, expiry, strike, right };
                    let Some(g) = quote(Key::new(1), &spec, &o, at, 500.0) else { continue };
                    let (t, r, q, v) = (g.t, g.rate, spec.dividend_yield, g.iv);
                    let p = |s: f64, t: f64, v: f64| bsm(right, s, strike, t, r, q, v);
                    assert!((g.price - p(500.0, t, v)).abs() < 1e-9, "price {} {}", g.price, p(500.0, t, v));
                    let h = 0.01;
                    let delta = (p(500.0 + h, t, v) - p(500.0 - h, t, v)) / (2.0 * h);
                    let gamma = (p(500.0 + h, t, v) - 2.0 * p(500.0, t, v) + p(500.0 - h, t, v)) / (h * h);
                    let dv = 1e-5;
                    let vega = (p(500.0, t, v + dv) - p(500.0, t, v - dv)) / (2.0 * dv) * 0.01;
                    let dt = 1e-6;
                    let theta = -(p(500.0, t + dt, v) - p(500.0, t - dt, v)) / (2.0 * dt) / 365.0;
                    let label = format!("{right:?} {strike} {expiry}");
                    assert!((g.delta - delta).abs() < 1e-6, "delta {label}: {} vs {delta}", g.delta);
                    assert!((g.gamma - gamma).abs() < 1e-6, "gamma {label}: {} vs {gamma}", g.gamma);
                    assert!((g.vega - vega).abs() < 1e-6, "vega {label}: {} vs {vega}", g.vega);
                    assert!((g.theta - theta).abs() < 1e-6, "theta {label}: {} vs {theta}", g.theta);
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 40, "every contract priced");
    }

    #[test]
    fn ssvi_slices_are_butterfly_free() {
        let spec = SymbolSpec::for_symbol("SPY");
        let d = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default();
        for t in [0.01, 0.1, 0.5, 1.0, 2.0] {
            let s = svi(Key::new(1), &spec, d, t);
            // SSVI: θ = w(0) is the ATM total variance, and b = θφ/2.
            let theta = s.w(0.0);
            let v = atm_vol(Key::new(1), &spec, d, t);
            assert!((theta - v * v * t).abs() < 1e-12);
            let phi = 2.0 * s.b / theta;
            assert!(theta * phi * (1.0 + s.rho.abs()) <= 4.0 && theta * phi * phi * (1.0 + s.rho.abs()) <= 4.0);
        }
    }
}
