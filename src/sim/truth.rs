//! The ground truth of the option surface at an instant: what `twslake sim truth` prints and
//! what tests compare a reconstructed surface with.

use chrono::{DateTime, Utc};
use serde::Serialize;

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
    /// Continuous dividend yield.
    pub dividend_yield: f64,
    /// One entry per listed, unexpired expiry.
    pub expiries: Vec<ExpiryTruth>,
}

/// One expiry's slice.
#[derive(Debug, Clone, Serialize)]
pub struct ExpiryTruth {
    /// `YYYYMMDD`.
    pub expiry: String,
    /// Years (ACT/365) to the expiry's close.
    pub t: f64,
    /// Forward.
    pub forward: f64,
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
    let spot = market.spot_at(i, at)?;
    let chain = market.chain(i, calendar::trading_date(at));
    let mut expiries = Vec::new();
    for e in &chain.expiries {
        let t = options::years_to(e.date, at);
        if t <= 0.0 {
            continue;
        }
        let svi = options::svi(market.key(), spec, calendar::trading_date(at), t);
        let mut forward = spot;
        let mut strikes = Vec::with_capacity(e.strikes.len());
        for k in &e.strikes {
            let call = options::quote(
                market.key(),
                spec,
                &OptionId { underlying: i, expiry: e.date, strike: *k, right: Right::Call },
                at,
                spot,
            )?;
            let put = options::quote(
                market.key(),
                spec,
                &OptionId { underlying: i, expiry: e.date, strike: *k, right: Right::Put },
                at,
                spot,
            )?;
            forward = call.forward;
            strikes.push(StrikeTruth { strike: *k, iv: call.iv, call: call.price, put: put.price });
        }
        expiries.push(ExpiryTruth {
            expiry: e.date.format("%Y%m%d").to_string(),
            t,
            forward,
            svi,
            atm_vol: (svi.w(0.0) / t).sqrt(),
            strikes,
        });
    }
    Some(Truth {
        symbol: symbol.into(),
        at,
        spot,
        rate: options::rate(calendar::trading_date(at)),
        dividend_yield: spec.dividend_yield,
        expiries,
    })
}
