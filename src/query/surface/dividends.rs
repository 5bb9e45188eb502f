//! Cash dividends implied by the term structure of parity forwards, for American options when
//! the caller gives no schedule ([`super::SurfaceOptions::dividends`] empty).
//!
//! An American option's early exercise depends on *when* dividends fall, not only on how much
//! they take off the forward: a put is not exercised just before an ex-date, a call may be. A
//! continuous yield spreads the dividends over the year and misprices the premium of an expiry
//! that lies just past an ex-date (by about 0.3 vol points on the simulator's SPY). The lake holds
//! no dividend data, but the chain does: with cash dividends `D_j` going ex at `τ_j`, parity's
//! forward of expiry `T` is `F(T) = (S − PV(T)) e^{rT}` with `PV(T) = Σ_{τ_j ≤ T} D_j e^{−r τ_j}`,
//! a step function of `T` that rises at each ex-date. So from each quoted expiry's forward (read
//! first with a continuous yield, premium-corrected as [`crate::query::iv::parity_carry_by_style`]
//! does) `PV(T_i) = S − F_i D_i`; a rise between two consecutive expiries beyond the quotes' noise
//! is one dividend, placed halfway between them (weekly expiries pin it within days). The schedule
//! only has to say when the premium appears: each expiry's forward is then fitted again from its
//! own quotes with this schedule, so the amounts' errors do not reach the forward.
//!
//! A term structure that rises between *every* two expiries looks like a continuous yield (an
//! index's many small dividends, or expiries too sparse to tell): it implies no schedule, and the
//! carry stays a continuous yield. Only a structure with flat stretches — expiries with no
//! ex-date between them — says where its dividends fall.

use crate::calendar;
use crate::query::iv::CashDividend;
use chrono::{DateTime, Duration, Utc};

/// A rise of `PV` smaller than this fraction of the spot (or a cent) is noise, not a dividend.
const NOISE: f64 = 2e-4;

/// The dividends implied at `at` by `terms` — `(t, F/S, discount)` of each expiry whose forward
/// came from parity — on a spot of `spot` with continuous rate `rate`.
pub fn implied(at: DateTime<Utc>, spot: f64, rate: f64, terms: &[(f64, f64, f64)]) -> Vec<CashDividend> {
    let mut terms: Vec<(f64, f64, f64)> =
        terms.iter().copied().filter(|(t, c, d)| t.is_finite() && *t > 0.0 && c.is_finite() && d.is_finite()).collect();
    terms.sort_by(|a, b| a.0.total_cmp(&b.0));
    let threshold = (NOISE * spot).max(0.01);
    let today = calendar::trading_date(at);
    let (mut t_prev, mut pv_prev) = (0.0, 0.0);
    let (mut out, mut flat) = (Vec::new(), false);
    for (t, carry, discount) in terms {
        let pv = spot * (1.0 - carry * discount);
        if pv - pv_prev <= threshold {
            flat = true;
        } else {
            let tau = 0.5 * (t_prev + t);
            let when = at + Duration::milliseconds((tau * calendar::YEAR_SECONDS * 1e3) as i64);
            // An ex-date is a day after today's (the price of today already is what it is).
            let ex_date = calendar::trading_date(when).max(today + Duration::days(1));
            out.push(CashDividend { ex_date, amount: (pv - pv_prev) * (rate * tau).exp() });
            pv_prev = pv;
        }
        t_prev = t;
    }
    if flat {
        out
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn steps_of_the_forward_become_dividends_between_expiries() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 17, 0, 0).single().unwrap_or_default();
        let (spot, r) = (600.0, 0.04);
        // A dividend of 1.8 going ex at 0.05 years, another at 0.30: expiries around them.
        let pv = |t: f64| {
            [(0.05, 1.8), (0.30, 1.9)].iter().filter(|(x, _)| *x <= t).map(|(x, d)| d * (-r * x).exp()).sum::<f64>()
        };
        let terms: Vec<(f64, f64, f64)> = [0.02, 0.04, 0.06, 0.10, 0.25, 0.35, 0.5]
            .iter()
            .map(|&t| {
                let d = (-r * t).exp();
                (t, (spot - pv(t)) / (spot * d), d)
            })
            .collect();
        let divs = implied(at, spot, r, &terms);
        assert_eq!(divs.len(), 2, "{divs:?}");
        // Placed halfway between the expiries around the true ex-dates: 0.05 and 0.30 years.
        let years = |d: &CashDividend| (d.ex_date - calendar::trading_date(at)).num_days() as f64 / 365.0;
        assert!((years(&divs[0]) - 0.05).abs() < 0.01 && (years(&divs[1]) - 0.30).abs() < 0.03, "{divs:?}");
        assert!((divs[0].amount - 1.8).abs() < 0.01 && (divs[1].amount - 1.9).abs() < 0.01, "{divs:?}");
        // A flat forward term structure (no dividend) implies none; noise below a cent neither.
        let flat: Vec<_> = terms.iter().map(|(t, _, d)| (*t, 1.0 / d + 1e-6, *d)).collect();
        assert!(implied(at, spot, r, &flat).is_empty());
        // A continuous yield rises between every two expiries: no schedule, the yield stays.
        let q = 0.015;
        let smooth: Vec<_> = [0.04, 0.1, 0.25, 0.5, 1.0]
            .iter()
            .map(|&t: &f64| {
                let d = (-r * t).exp();
                (t, (-q * t).exp() / d, d)
            })
            .collect();
        assert!(implied(at, spot, r, &smooth).is_empty());
    }
}
