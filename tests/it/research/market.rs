//! A synthetic market priced from a KNOWN volatility surface, written into a lake: 1-minute
//! MIDPOINT spot bars, 1-minute MIDPOINT option bars (calls and puts) priced with Black's formula
//! from an SSVI surface (every slice is a raw SVI, free of butterfly and calendar arbitrage since
//! η(1 + |ρ|) ≤ 2, Gatheral & Jacquier 2014, Cor. 4.1), a rate and a dividend yield
//! (F = S·e^{(r−q)T}, D = e^{−rT}), and two chain snapshots. Also used by `benches/research.rs`.
#![allow(dead_code)]

use chrono::{DateTime, Duration, NaiveDate, Utc};
use twslake::calendar;
use twslake::datasets::chains::ChainRow;
use twslake::datasets::equity_bars::Bar;
use twslake::datasets::option_bars::{OptionBar, OptionContract};
use twslake::datasets::{chains, equity_bars, option_bars, Dataset};
use twslake::lake::layout::{BarSize, Series, Symbol, WhatToShow};
use twslake::query::iv::black_price;
use twslake::query::pit::time_to_expiry;
use twslake::query::surface::svi::SviParams;
use twslake::Lake;

/// Rate and dividend yield of the synthetic market.
pub const RATE: f64 = 0.045;
/// Dividend yield.
pub const DIV: f64 = 0.015;
/// SSVI skew.
pub const RHO: f64 = -0.5;
/// SSVI power-law parameters: φ(θ) = η θ^{−γ} (1 + θ)^{γ−1}.
pub const ETA: f64 = 1.0;
/// γ.
pub const GAMMA: f64 = 0.5;

pub const MIDPOINT_1M: Series = Series { bar_size: BarSize::Min1, what_to_show: WhatToShow::Midpoint };

/// The market's description.
#[derive(Debug, Clone)]
pub struct Market {
    pub symbol: Symbol,
    pub day: NaiveDate,
    pub minutes: i64,
    pub expiries: Vec<NaiveDate>,
    /// Listed from the second chain snapshot on, with bars only after it.
    pub late_expiry: NaiveDate,
    pub strikes: Vec<f64>,
}

impl Market {
    pub fn standard() -> Self {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        Market {
            symbol: Symbol::new("SPY").unwrap(),
            day: d("2024-11-22"),
            minutes: 60,
            expiries: vec![d("2024-12-20"), d("2025-01-17"), d("2025-03-21"), d("2025-06-20")],
            late_expiry: d("2025-09-19"),
            strikes: (0..=24).map(|i| 70.0 + 2.5 * i as f64).collect(),
        }
    }

    pub fn open(&self) -> DateTime<Utc> {
        calendar::session(self.day).unwrap().open
    }

    /// The first chain snapshot (before the open) and the second (30 minutes in).
    pub fn snapshots(&self) -> [DateTime<Utc>; 2] {
        [self.open() - Duration::minutes(30), self.open() + Duration::minutes(30)]
    }

    /// Spot at the end of minute `m` (the close of the bar starting at `open + m`).
    pub fn spot(&self, m: i64) -> f64 {
        100.0 * (1.0 + 0.002 * (m as f64 / 7.0).sin() + 0.0001 * m as f64)
    }

    /// The spot at an instant: the close of the last bar that ended by it.
    pub fn spot_at(&self, at: DateTime<Utc>) -> Option<f64> {
        let ended = (at - self.open()).num_seconds().div_euclid(60);
        (ended >= 1).then(|| self.spot(ended.min(self.minutes) - 1))
    }

    /// Expiries with bars at minute `m`.
    pub fn expiries_at(&self, m: i64) -> Vec<NaiveDate> {
        let mut e = self.expiries.clone();
        if self.open() + Duration::minutes(m) >= self.snapshots()[1] {
            e.push(self.late_expiry);
        }
        e
    }
}

/// ATM total variance θ(T): 20 % vol with a slight term structure.
pub fn theta(t: f64) -> f64 {
    0.04 * t + 0.005 * t * t.sqrt()
}

/// The true raw SVI slice of maturity `t` (SSVI rewritten in raw form).
pub fn true_slice(t: f64) -> SviParams {
    let th = theta(t);
    let phi = ETA * th.powf(-GAMMA) * (1.0 + th).powf(GAMMA - 1.0);
    SviParams {
        a: th / 2.0 * (1.0 - RHO * RHO),
        b: th * phi / 2.0,
        rho: RHO,
        m: -RHO / phi,
        sigma: (1.0 - RHO * RHO).sqrt() / phi,
    }
}

/// The true implied vol of strike `k` with spot `s` and `t` years to expiry.
pub fn true_vol(s: f64, strike: f64, t: f64) -> f64 {
    let f = s * ((RATE - DIV) * t).exp();
    true_slice(t).vol((strike / f).ln(), t)
}

/// The market (discounted) price of an option.
pub fn true_price(s: f64, strike: f64, t: f64, is_call: bool) -> f64 {
    let f = s * ((RATE - DIV) * t).exp();
    (-RATE * t).exp() * black_price(f, strike, t, true_vol(s, strike, t), is_call)
}

fn bar(ts: DateTime<Utc>, day: NaiveDate, p: f64, at: DateTime<Utc>) -> Bar {
    Bar {
        ts,
        date: day,
        series: MIDPOINT_1M,
        open: p,
        high: p,
        low: p,
        close: p,
        volume: None,
        wap: None,
        bar_count: None,
        ingested_at: at,
    }
}

/// Keeps what is stamped at or before `cut` (bars by start, snapshots by time), or everything.
fn kept(stamp: DateTime<Utc>, cut: Option<DateTime<Utc>>) -> bool {
    cut.is_none_or(|c| stamp <= c)
}

pub fn spot_bars(m: &Market, cut: Option<DateTime<Utc>>) -> Vec<Bar> {
    let ing = m.open() + Duration::days(1);
    (0..m.minutes)
        .map(|i| bar(m.open() + Duration::minutes(i), m.day, m.spot(i), ing))
        .filter(|b| kept(b.ts, cut))
        .collect()
}

pub fn con_id(expiry: NaiveDate, strike: f64, is_call: bool) -> i64 {
    let days = (expiry - NaiveDate::default()).num_days();
    days * 1_000_000 + (strike * 100.0) as i64 * 10 + is_call as i64
}

pub fn option_rows(m: &Market, cut: Option<DateTime<Utc>>) -> Vec<OptionBar> {
    let ing = m.open() + Duration::days(1);
    let mut rows = Vec::new();
    for i in 0..m.minutes {
        let ts = m.open() + Duration::minutes(i);
        if !kept(ts, cut) {
            continue;
        }
        let end = ts + Duration::minutes(1);
        for expiry in m.expiries_at(i) {
            let t = time_to_expiry(end, expiry);
            for &strike in &m.strikes {
                for is_call in [true, false] {
                    let p = true_price(m.spot(i), strike, t, is_call);
                    let contract = OptionContract {
                        con_id: con_id(expiry, strike, is_call),
                        expiry,
                        strike,
                        right: if is_call { "C" } else { "P" }.into(),
                        multiplier: 100.0,
                    };
                    rows.push(OptionBar { contract, bar: bar(ts, m.day, p, ing) });
                }
            }
        }
    }
    rows
}

pub fn chain_rows(m: &Market, cut: Option<DateTime<Utc>>) -> Vec<ChainRow> {
    let mut rows = Vec::new();
    for (n, snap) in m.snapshots().into_iter().enumerate() {
        if !kept(snap, cut) {
            continue;
        }
        let mut expiries = m.expiries.clone();
        if n == 1 {
            expiries.push(m.late_expiry);
        }
        for expiration in expiries {
            for &strike in &m.strikes {
                rows.push(ChainRow {
                    snapshot_at: snap,
                    date: m.day,
                    underlying_con_id: 756733,
                    exchange: "SMART".into(),
                    trading_class: "SPY".into(),
                    multiplier: 100.0,
                    expiration,
                    strike,
                    ingested_at: snap,
                });
            }
        }
    }
    rows
}

/// Writes the market into `lake`, keeping only what is stamped at or before `cut` if given.
pub async fn write(lake: &Lake, m: &Market, cut: Option<DateTime<Utc>>) {
    let spot = spot_bars(m, cut);
    if !spot.is_empty() {
        lake.write(Dataset::EquityBars, &m.symbol, &equity_bars::to_batch(&spot), None).await.unwrap();
    }
    let chain = chain_rows(m, cut);
    if !chain.is_empty() {
        lake.write(Dataset::Chains, &m.symbol, &chains::to_batch(&chain), None).await.unwrap();
    }
    let opts = option_rows(m, cut);
    if !opts.is_empty() {
        lake.write(Dataset::OptionBars, &m.symbol, &option_bars::to_batch(&opts), None).await.unwrap();
    }
}
