//! Implied vols by exercise style, and put–call parity with the early-exercise premium.
//!
//! A European option (the index classes) is inverted with Black's formula (Let's Be Rational)
//! as before. An American option is inverted with [`crate::pricing::American`] (a Leisen–Reimer
//! tree with the European price as control variate, escrowed cash dividends) on the same
//! forward and discount factor the European inversion would use:
//! - the rate is `r = −ln D / t`;
//! - **by default the carry is a continuous yield**: the lake holds no dividend data from IB,
//!   so the dividends are those the forward implies, `q = r − ln(F/S) / t`, with no discrete
//!   schedule (`dividends` empty). The forward itself comes from put–call parity with the
//!   early-exercise premium taken out ([`parity_carry_by_style`]);
//! - **with a known cash-dividend schedule** ([`CashDividend`], passed by the user, or the
//!   simulator's truth in tests) the dividends are escrowed at their ex-dates, and whatever
//!   carry the parity forward holds beyond them becomes the continuous yield: `q` solves
//!   `F = (S − PV(dividends)) e^{(r−q)t}` with PV discounted at `r − q` as the pricer's
//!   escrowed model does. The forward is the same in both cases; a schedule moves the timing of
//!   the drops, which is what early exercise of calls hinges on.

use super::{parity_carry, Carry, ForwardSource, ParityPair, Rates};
use crate::calendar;
use crate::domain::ExerciseStyle;
use crate::pricing::{American, Dividend};
use chrono::{DateTime, NaiveDate, Utc};

/// A cash dividend of the underlying: its ex-date and amount per share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CashDividend {
    /// Ex-dividend date: the stock opens without the dividend that day.
    pub ex_date: NaiveDate,
    /// Cash per share.
    pub amount: f64,
}

/// The dividends of `schedule` going ex after `from`, in years from `from` to their ex-date's
/// open (the drop happens overnight into the ex-date: the open is the first price without it;
/// 05:00 UTC, about midnight in New York, stands in on a date with no session).
pub fn dividends_from(schedule: &[CashDividend], from: DateTime<Utc>) -> Vec<Dividend> {
    schedule
        .iter()
        .filter_map(|d| {
            let at = match calendar::session(d.ex_date) {
                Some(s) => s.open,
                None => d.ex_date.and_hms_opt(5, 0, 0)?.and_utc(),
            };
            let t = (at - from).num_microseconds()? as f64 / 1e6 / calendar::YEAR_SECONDS;
            (t > 0.0).then_some(Dividend { t, amount: d.amount })
        })
        .collect()
}

/// One option's market as the inversion sees it: spot, forward and discount to expiry.
#[derive(Debug, Clone, Copy)]
pub struct Terms<'a> {
    /// Spot when the option was quoted.
    pub spot: f64,
    /// Forward to expiry.
    pub forward: f64,
    /// Discount factor to expiry.
    pub discount: f64,
    /// Years to expiry.
    pub t: f64,
    /// Known cash dividends (years from the quote); empty: the carry is a continuous yield.
    pub dividends: &'a [Dividend],
}

impl<'a> Terms<'a> {
    /// The American option of `strike` on these terms: rate from the discount, yield such that
    /// the pricer's forward is `forward` (module docs). `None` when an input is not positive and
    /// finite, or the dividends are worth the spot.
    pub fn american(&self, strike: f64, is_call: bool) -> Option<American<'a>> {
        let positive = |x: f64| x > 0.0 && x.is_finite();
        if ![self.spot, self.forward, self.discount, self.t, strike].into_iter().all(positive) {
            return None;
        }
        let rate = -self.discount.ln() / self.t;
        let live: Vec<&Dividend> = self.dividends.iter().filter(|d| d.t > 0.0 && d.t <= self.t).collect();
        let pv = |q: f64| live.iter().map(|d| d.amount * (-(rate - q) * d.t).exp()).sum::<f64>();
        // q = r − ln(F / (S − PV(q))) / t: a contraction (PV moves with q by t·PV ≪ S).
        let mut q = rate - (self.forward / self.spot).ln() / self.t;
        for _ in 0..(if live.is_empty() { 0 } else { 50 }) {
            let risky = self.spot - pv(q);
            if risky <= 0.0 {
                return None;
            }
            let next = rate - (self.forward / risky).ln() / self.t;
            let done = (next - q).abs() < 1e-15;
            q = next;
            if done {
                break;
            }
        }
        let o =
            American { spot: self.spot, strike, t: self.t, rate, yield_rate: q, dividends: self.dividends, is_call };
        o.is_valid().then_some(o)
    }

    /// The early-exercise premium of `strike` at `vol`: American price less Black's price
    /// (both discounted); 0 for a European option or where the inputs are invalid.
    pub fn premium(&self, strike: f64, is_call: bool, vol: f64) -> f64 {
        let Some(o) = self.american(strike, is_call) else { return 0.0 };
        let european = self.discount * super::black_price(self.forward, strike, self.t, vol, is_call);
        let p = o.price(vol) - european;
        if p.is_finite() {
            p.max(0.0)
        } else {
            0.0
        }
    }

    /// The implied vol of a market (discounted) price of an option of `style`: Let's Be
    /// Rational on the forward for a European, the American pricer for an American. `None`
    /// where the price has no implied vol.
    pub fn implied_vol(&self, style: ExerciseStyle, price: f64, strike: f64, is_call: bool) -> Option<f64> {
        match style {
            ExerciseStyle::European => super::implied_vol(price / self.discount, self.forward, strike, self.t, is_call),
            ExerciseStyle::American => self.american(strike, is_call)?.implied_vol(price),
        }
    }
}

/// Rounds of premium correction at most; about eight reach the tolerance.
const PARITY_ROUNDS: usize = 20;

/// Carry and discount of one expiry from put–call parity, for options of `style`.
///
/// European: [`parity_carry`], the line of `C − P` on the strike giving both.
///
/// American: `C − P = D·(F − K) + e_C − e_P`, where `e_C`, `e_P` are the early-exercise
/// premiums of the call and the put. The put's premium grows with the strike, so the slope of
/// the plain line is not `−D`, and the two cannot be told apart from the quotes: a premium
/// correction that also re-solves `D` feeds on itself (a higher rate, a dearer put premium, a
/// steeper corrected line, a higher rate…). On the simulator's 3-day SPY expiry it settles on
/// `D = 0.96`, a 475 % rate. So for American options **the discount comes from the configured
/// rate** (`rates.rate`, `D = e^{−rt}`; as the research standards take rates from a zero curve)
/// and **parity gives the carry** (the forward, so the dividends), premium taken out:
/// 1. start from the plain line's carry (the `near` pairs nearest the money, where the
///    premiums are smallest, each at its own spot);
/// 2. per pair, the vol of its out-of-the-money side: Let's Be Rational on that side's price
///    less its premium from the round before (the out-of-the-money premium is the smallest,
///    and a premium barely moves with the vol);
/// 3. both premiums priced with the American pricer at that vol and the current carry, taken
///    off the call and the put;
/// 4. the carry refitted with `D` fixed: least squares of `(C' − P')/D + K = c·S`.
///
/// The premiums move little with the carry, so the rounds converge fast (each leaves about a
/// tenth of the error; every third is extrapolated by Aitken's Δ²); it stops when the carry
/// moves by less than 1e-10 (relative), after
/// [`PARITY_ROUNDS`] rounds at most. A fallback to `rates` (too few pairs) is returned as it
/// is; so is the plain line when a round leaves fewer than 3 pairs or a carry further than 50 %
/// from 1. `t` is the expiry's time to expiry and `dividends` the known schedule from the same
/// instant (empty: continuous yield).
pub fn parity_carry_by_style(
    pairs: &[ParityPair],
    spot: f64,
    t: f64,
    near: usize,
    rates: &Rates,
    style: ExerciseStyle,
    dividends: &[Dividend],
) -> Carry {
    let plain = parity_carry(pairs, spot, t, near, rates);
    if style == ExerciseStyle::European || plain.source != ForwardSource::Parity {
        return plain;
    }
    let discount = (-rates.rate * t).exp();
    // The pairs the line uses: the `near` nearest the money, as parity_carry picks them.
    let mut near_pairs: Vec<ParityPair> = pairs
        .iter()
        .filter(|p| [p.strike, p.call, p.put, p.spot].iter().all(|x| x.is_finite()) && p.spot > 0.0)
        .copied()
        .collect();
    near_pairs.sort_by(|a, b| (a.strike / a.spot - 1.0).abs().total_cmp(&(b.strike / b.spot - 1.0).abs()));
    near_pairs.truncate(near.max(3));
    // c = Σ S·((C − P)/D + K) / Σ S²: the line with the discount fixed.
    let fit = |pairs: &[ParityPair]| -> Option<f64> {
        let (num, den) = pairs
            .iter()
            .fold((0.0, 0.0), |(n, d), p| (n + p.spot * ((p.call - p.put) / discount + p.strike), d + p.spot * p.spot));
        let c = num / den;
        (pairs.len() >= 3 && c.is_finite() && (c - 1.0).abs() < 0.5).then_some(c)
    };
    let Some(mut carry) = fit(&near_pairs) else { return plain };
    let mut otm_premium = vec![0.0; near_pairs.len()];
    // Every third carry is extrapolated (Aitken's Δ²: the rounds shrink the error by a steady
    // factor, so three of them pin where they go), within ten steps of the last.
    let mut last = [carry; 2];
    for round in 0..PARITY_ROUNDS {
        let mut corrected = Vec::with_capacity(near_pairs.len());
        for (p, prem) in near_pairs.iter().zip(otm_premium.iter_mut()) {
            let terms = Terms { spot: p.spot, forward: carry * p.spot, discount, t, dividends };
            let call_otm = p.strike >= terms.forward;
            let otm_price = if call_otm { p.call } else { p.put };
            let Some(vol) = super::implied_vol((otm_price - *prem) / discount, terms.forward, p.strike, t, call_otm)
            else {
                continue;
            };
            let (e_call, e_put) = (terms.premium(p.strike, true, vol), terms.premium(p.strike, false, vol));
            *prem = if call_otm { e_call } else { e_put };
            corrected.push(ParityPair { call: p.call - e_call, put: p.put - e_put, ..*p });
        }
        let Some(mut next) = fit(&corrected) else { return plain };
        let done = (next / carry - 1.0).abs() < 1e-10;
        if !done && round % 3 == 2 {
            let (x0, x1, x2) = (last[0], last[1], next);
            let d = x2 - 2.0 * x1 + x0;
            let x = x2 - (x2 - x1).powi(2) / d;
            if d != 0.0 && x.is_finite() && (x - x2).abs() <= 10.0 * (x2 - x1).abs() {
                next = x;
            }
        }
        (last, carry) = ([last[1], next], next);
        if done {
            break;
        }
    }
    Carry { carry, discount, source: ForwardSource::Parity }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An American market: spot 100, rate 5 %, yield 1 %, no discrete dividends.
    fn terms(t: f64) -> Terms<'static> {
        let (s, r, q) = (100.0, 0.05, 0.01);
        Terms { spot: s, forward: s * ((r - q) * t).exp(), discount: (-r * t).exp(), t, dividends: &[] }
    }

    #[test]
    fn american_prices_invert_back_through_the_research_path() {
        for &(t, k, vol, call) in
            &[(0.5, 80.0, 0.35, false), (0.5, 100.0, 0.2, false), (1.0, 130.0, 0.25, false), (0.25, 110.0, 0.3, true)]
        {
            let m = terms(t);
            let price = m.american(k, call).unwrap().price(vol);
            let iv = m.implied_vol(ExerciseStyle::American, price, k, call).unwrap();
            assert!((iv - vol).abs() < 1e-6, "t {t} K {k} {vol}: {iv}");
            // The same price read as European is a higher vol (the premium read as time value),
            // most for the in-the-money put.
            let eu = m.implied_vol(ExerciseStyle::European, price, k, call).unwrap();
            if !call {
                assert!(eu > vol + 1e-4, "t {t} K {k}: european {eu} vs {vol}");
            }
        }
    }

    #[test]
    fn european_classes_go_through_lets_be_rational_unchanged() {
        let m = terms(0.5);
        for (k, call) in [(90.0, false), (110.0, true), (100.0, false)] {
            let p = m.discount * super::super::black_price(m.forward, k, m.t, 0.22, call);
            let iv = m.implied_vol(ExerciseStyle::European, p, k, call).unwrap();
            assert_eq!(Some(iv), super::super::implied_vol(p / m.discount, m.forward, k, m.t, call));
            assert!((iv - 0.22).abs() < 1e-12);
        }
    }

    #[test]
    fn a_dividend_schedule_keeps_the_forward() {
        let divs = [Dividend { t: 0.1, amount: 1.5 }, Dividend { t: 0.35, amount: 1.5 }];
        let m = Terms { dividends: &divs, ..terms(0.5) };
        let o = m.american(100.0, true).unwrap();
        // The European piece of the pricer's price is Black's on the forward given.
        let p = o.price(0.2);
        let black = m.discount * super::super::black_price(m.forward, 100.0, m.t, 0.2, true);
        assert!(p >= black - 1e-9 && p - black < 0.5, "{p} {black}");
        let iv = m.implied_vol(ExerciseStyle::American, p, 100.0, true).unwrap();
        assert!((iv - 0.2).abs() < 1e-6, "{iv}");
        // Dividends worth the spot leave no option.
        let all = [Dividend { t: 0.1, amount: 150.0 }];
        assert!(Terms { dividends: &all, ..terms(0.5) }.american(100.0, true).is_none());
    }

    #[test]
    fn parity_with_the_premium_recovers_the_forward_of_american_quotes() {
        let t = 0.75;
        let m = terms(t);
        let smile = |k: f64| 0.22 - 0.1 * (k / 100.0f64).ln();
        let pairs: Vec<ParityPair> = (0..=16)
            .map(|i| {
                let k = 80.0 + 2.5 * i as f64;
                let price = |call| m.american(k, call).unwrap().price(smile(k));
                ParityPair { strike: k, call: price(true), put: price(false), spot: 100.0 }
            })
            .collect();
        let rates = Rates { rate: 0.05, dividend_yield: 0.0 };
        let (c, d) = (m.forward / 100.0, m.discount);
        let plain = parity_carry(&pairs, 100.0, t, 6, &rates);
        let fixed = parity_carry_by_style(&pairs, 100.0, t, 6, &rates, ExerciseStyle::American, &[]);
        assert_eq!(fixed.source, ForwardSource::Parity);
        // The premiums bias the plain line far beyond the tolerance: 0.4 % on the forward.
        assert!((plain.carry / c - 1.0).abs() > 1e-3, "{plain:?}");
        // Corrected: the quotes are the pricer's own and the rate is the true one, so the fixed
        // point is the true carry; the rounds stop when one moves it by under 1e-10, and each
        // leaves a tenth of the error: about 1e-11 is left. 1e-9 of the forward moves an
        // at-the-money vol by about 1e-9 / (σ√t): nothing.
        assert!((fixed.carry / c - 1.0).abs() < 1e-9, "carry {} vs {c}", fixed.carry);
        assert!((fixed.discount - d).abs() < 1e-15, "discount {} vs {d}", fixed.discount);
        // European quotes are left to the plain line.
        let eu = parity_carry_by_style(&pairs, 100.0, t, 6, &rates, ExerciseStyle::European, &[]);
        assert_eq!(eu, plain);
    }

    #[test]
    fn dividends_are_dated_from_the_quote() {
        let from: DateTime<Utc> = "2024-11-22T15:00:00Z".parse().unwrap();
        let s = [
            CashDividend { ex_date: "2024-11-01".parse().unwrap(), amount: 1.0 },
            CashDividend { ex_date: "2024-12-20".parse().unwrap(), amount: 2.0 },
        ];
        let d = dividends_from(&s, from);
        assert_eq!(d.len(), 1);
        // 2024-12-20 09:30 New York is 14:30 UTC: 27 days 23.5 hours on.
        assert!((d[0].t * 365.0 - (27.0 + 23.5 / 24.0)).abs() < 1e-9, "{}", d[0].t * 365.0);
        assert_eq!(d[0].amount, 2.0);
    }
}
