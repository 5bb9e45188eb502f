//! Corporate actions of the simulated underlyings: cash dividends and splits.
//!
//! # Bases
//! The market's model (closes, minute paths, option values) lives in one **internal basis**: the
//! economic path as if no split had happened (the basis of the first simulated day). A split
//! therefore never changes the path; it changes how prices are *shown*:
//! - the **unadjusted** price on date `d` is the internal price ÷ the cumulative ratio of the
//!   splits whose ex-date is ≤ `d` (so it drops by the ratio at the ex-date's open);
//! - what the simulator **serves** (bars, ticks, strikes, the truth) is adjusted as of its
//!   clock, as IB does: every split whose ex-date is ≤ the clock's date divides prices and
//!   multiplies volumes, splits still ahead of the clock do not. Since bars are only served for
//!   dates up to the clock, a served price is simply internal ÷ [`SymbolSpec::split_factor`] of
//!   the clock's date.
//!
//! # Dividends
//! A quarterly schedule for every symbol with a yield: each calendar year's four payments are
//! equal, sized from the trend price at the year's start so that a year's sum ≈ yield × price
//! (annual raises, as companies do). Amounts are stated unadjusted (in the basis of their
//! ex-date); [`internal_amount`] converts. The price path itself does not drop on ex-dates (the
//! drop of a quarterly payment is well inside a day's move); the options' forwards, the
//! American early-exercise premium and `ADJUSTED_LAST` use the schedule.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;

use super::symbols::SymbolSpec;
use crate::calendar;

/// A stock split (or reverse split).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Split {
    /// First session traded on the new basis.
    pub ex_date: NaiveDate,
    /// New shares per old share (4.0 for a 4:1 split).
    pub ratio: f64,
}

/// A cash dividend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CashDividend {
    /// First session the stock trades without it.
    pub ex_date: NaiveDate,
    /// Dollars per share, in the basis of the ex-date (unadjusted).
    pub amount: f64,
}

/// In which months a payer's ex-dates fall and on which day of the month (moved to the next
/// session when not one).
#[derive(Debug, Clone, Copy)]
pub struct Calendar {
    /// First month of the quarterly cycle (1, 2 or 3).
    pub first_month: u32,
    /// Day of the month.
    pub day: u32,
}

/// The quarterly schedule of `spec` from `from` to `to`, given its splits; empty for a symbol
/// without a yield.
pub fn quarterly(spec: &SymbolSpec, cal: Calendar, from: NaiveDate, to: NaiveDate) -> Vec<CashDividend> {
    if spec.dividend_yield <= 0.0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for year in from.year()..=to.year() {
        let start = NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(from);
        let years = (start - SymbolSpec::ref_date()).num_days() as f64 / 365.25;
        let trend = spec.ref_price * (spec.growth * years).exp();
        let quarter = (spec.dividend_yield * trend / 4.0 * 100.0).round().max(1.0) / 100.0;
        for q in 0..4 {
            let Some(d) = NaiveDate::from_ymd_opt(year, cal.first_month + 3 * q, cal.day) else { continue };
            let ex = if calendar::is_trading_day(d) { d } else { calendar::next_trading_day(d) };
            if ex < from || ex > to {
                continue;
            }
            let amount = (quarter / spec.split_factor(ex) * 10_000.0).round() / 10_000.0;
            out.push(CashDividend { ex_date: ex, amount });
        }
    }
    out
}

/// A dividend's amount in the internal (never split) basis.
pub fn internal_amount(spec: &SymbolSpec, d: &CashDividend) -> f64 {
    d.amount * spec.split_factor(d.ex_date)
}

/// The dividends of `spec` whose ex-date is in `(after, upto]`, in date order.
pub fn dividends_between(spec: &SymbolSpec, after: NaiveDate, upto: NaiveDate) -> &[CashDividend] {
    let a = spec.dividends.partition_point(|d| d.ex_date <= after);
    let b = spec.dividends.partition_point(|d| d.ex_date <= upto).max(a);
    &spec.dividends[a..b]
}

/// The dividends of `spec` an option alive at `t` and expiring on `expiry` sees: ex-date after
/// `t`'s date and on or before the expiry (the expiry's own ex-date counts: the option expires at
/// that day's close), as (years from `t` to the ex-date's open, amount in the internal basis).
pub fn dividends_to(spec: &SymbolSpec, t: DateTime<Utc>, expiry: NaiveDate) -> Vec<(f64, f64)> {
    let today = t.with_timezone(&calendar::EXCHANGE_TZ).date_naive();
    dividends_between(spec, today, expiry)
        .iter()
        .filter_map(|d| {
            let open = calendar::session(d.ex_date)?.open;
            Some(((open - t).num_seconds() as f64 / (365.0 * 86400.0), internal_amount(spec, d)))
        })
        .collect()
}

/// The forward to `tau` years of a spot paying `dividends` (from [`dividends_to`]): the spot less
/// the present value of the dividends, grown at the rate. Returns (forward, present value).
pub fn forward(spot: f64, r: f64, tau: f64, dividends: &[(f64, f64)]) -> (f64, f64) {
    let pv: f64 = dividends.iter().map(|(t, d)| d * (-r * t.max(0.0)).exp()).sum();
    ((spot - pv).max(spot * 1e-6) * (r * tau).exp(), pv)
}
