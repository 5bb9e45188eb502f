//! The ground truth of the option surface at an instant: what `twslake sim truth` prints and
//! what tests compare a reconstructed surface with.
//!
//! Every price in it (spot, forwards, strikes, option prices, dividend amounts) is in the basis
//! the simulator serves at its clock's present (split-adjusted as of the clock, as history is
//! served; see [`super::market::corporate`]), so it compares directly with what a client fetched.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::market::corporate::{self, Split};
use super::market::options::{self, Svi};
use super::market::{Market, OptionId, Right};
use crate::calendar;

/// The surface of one underlying at one instant.
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    /// Symbol.
    pub symbol: String,
    /// The instant.
    pub at: DateTime<Utc>,
    /// Underlying price.
    pub spot: f64,
    /// Continuous risk-free rate.
    pub rate: f64,
    /// The yield the dividend schedule is sized from (a continuous-yield summary; prices use the
    /// cash dividends).
    pub dividend_yield: f64,
    /// Cash dividends going ex after the instant's date up to the last listed expiry.
    pub dividends: Vec<DividendTruth>,
    /// Every split of the symbol (ratios; ex-dates ≤ the clock's date are already in the basis).
    pub splits: Vec<Split>,
    /// One entry per listed, unexpired expiry.
    pub expiries: Vec<ExpiryTruth>,
}

/// One cash dividend as the options price it.
#[derive(Debug, Clone, Serialize)]
pub struct DividendTruth {
    /// Ex-date (`YYYY-MM-DD`).
    pub ex_date: chrono::NaiveDate,
    /// Dollars per share in the truth's basis.
    pub amount: f64,
    /// Years (ACT/365) from the instant to the ex-date's open: the time the pricer discounts it
    /// over and the escrowed model removes it at.
    pub t: f64,
}

/// One expiry's slice.
#[derive(Debug, Clone, Serialize)]
pub struct ExpiryTruth {
    /// `YYYYMMDD`.
    pub expiry: String,
    /// Years (ACT/365) to the expiry's close.
    pub t: f64,
    /// Forward: (spot − PV of the dividends to expiry) × e^{rT}.
    pub forward: f64,
    /// Present value of the dividends going ex up to the expiry.
    pub pv_dividend: f64,
    /// The raw SVI parameters of the slice (total variance in log-moneyness ln(K/F)).
    pub svi: Svi,
    /// At-the-money-forward volatility.
    pub atm_vol: f64,
    /// Listed strikes.
    pub strikes: Vec<StrikeTruth>,
}

/// One strike of a slice.
#[derive(Debug, Clone, Serialize)]
pub struct StrikeTruth {
    /// Strike.
    pub strike: f64,
    /// The surface's implied volatility.
    pub iv: f64,
    /// Model call price.
    pub call: f64,
    /// Model put price.
    pub put: f64,
}

/// The truth of `symbol` at `at`, or `None` for an unknown symbol or an instant before the
/// simulated history.
pub fn truth(market: &Market, symbol: &str, at: DateTime<Utc>) -> Option<Truth> {
    let i = market.symbol_index(symbol)?;
    let spec = market.spec(i);
    let f = market.served_factor(i);
    let internal_spot = market.spot_at(i, at)?;
    let chain = market.chain(i, calendar::trading_date(at));
    let mut expiries = Vec::new();
    for e in &chain.expiries {
        let t = options::years_to(e.date, at);
        if t <= 0.0 {
            continue;
        }
        let svi = options::svi(market.key(), spec, calendar::trading_date(at), t);
        let (mut forward, mut pv_dividend) = (internal_spot / f, 0.0);
        let mut strikes = Vec::with_capacity(e.strikes.len());
        for k in &e.strikes {
            let quote = |right| {
                let o = OptionId { underlying: i, expiry: e.date, strike: *k, right };
                options::quote(market.key(), spec, &o, at, internal_spot).map(|q| q.rebased(f))
            };
            let (call, put) = (quote(Right::Call)?, quote(Right::Put)?);
            (forward, pv_dividend) = (call.forward, call.pv_dividend);
            strikes.push(StrikeTruth { strike: k / f, iv: call.iv, call: call.price, put: put.price });
        }
        expiries.push(ExpiryTruth {
            expiry: e.date.format("%Y%m%d").to_string(),
            t,
            forward,
            pv_dividend,
            svi,
            atm_vol: (svi.w(0.0) / t).sqrt(),
            strikes,
        });
    }
    let last = chain.expiries.last().map_or(calendar::trading_date(at), |e| e.date);
    let dividends = corporate::dividends_to(spec, at, last)
        .into_iter()
        .zip(corporate::dividends_between(spec, at.with_timezone(&calendar::EXCHANGE_TZ).date_naive(), last))
        .map(|((t, amount), d)| DividendTruth { ex_date: d.ex_date, amount: amount / f, t })
        .collect();
    Some(Truth {
        symbol: symbol.into(),
        at,
        spot: internal_spot / f,
        rate: options::rate(calendar::trading_date(at)),
        dividend_yield: spec.dividend_yield,
        dividends,
        splits: spec.splits.clone(),
        expiries,
    })
}
