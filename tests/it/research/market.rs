//! A synthetic market priced from a KNOWN volatility surface, written into a lake: 1-minute
//! MIDPOINT spot bars, 1-minute MIDPOINT option bars (calls and puts) priced with Black's formula
//! from an SSVI surface (every slice is a raw SVI, free of butterfly and calendar arbitrage since
//! η(1 + |ρ|) ≤ 2, Gatheral & Jacquier 2014, Cor. 4.1), a rate and a dividend yield
//! (F = S·e^{(r−q)T}, D = e^{−rT}), and two chain snapshots (both in the first session). One
//! session by default, or several consecutive ones (`sessions`), each with `minutes` of bars from
//! its open. Also used by `benches/research.rs` and `benches/history.rs`.
#![allow(dead_code)]

use chrono::{DateTime, Duration, NaiveDate, Utc};
use twslake::calendar;
use twslake::calendar::time_to_expiry;
use twslake::datasets::chains::ChainRow;
use twslake::datasets::contracts::Contract;
use twslake::datasets::equity_bars::Bar;
use twslake::datasets::option_bars::{OptionBar, OptionContract};
use twslake::datasets::{chains, contracts, equity_bars, option_bars, Dataset};
use twslake::domain::{BarSize, ExerciseStyle, Right, SecType, Series, Symbol, WhatToShow};
use twslake::query::iv::black_price;
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
    /// Consecutive trading sessions from `day`.
    pub sessions: usize,
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
            sessions: 1,
        }
    }

    /// The trading dates of the sessions.
    pub fn days(&self) -> Vec<NaiveDate> {
        let mut d = vec![self.day];
        while d.len() < self.sessions {
            d.push(calendar::next_trading_day(*d.last().unwrap()));
        }
        d
    }

    /// The open of session `s` (0 = `day`).
    pub fn open_of(&self, s: usize) -> DateTime<Utc> {
        calendar::session(self.days()[s]).unwrap().open
    }

    /// Spot at the end of minute `m` of session `s`: one path through all sessions.
    pub fn spot_on(&self, s: usize, m: i64) -> f64 {
        self.spot(s as i64 * self.minutes + m)
    }

    pub fn open(&self) -> DateTime<Utc> {
        calendar::session(self.day).unwrap().open
    }

    /// The first chain snapshot (before the open) and the second (30 minutes in).
    pub fn snapshots(&self) -> [DateTime<Utc>; 2] {
        [self.open() - Duration::minutes(30), self.open() + Duration::minutes(30)]
    }

    /// Spot at the end of minute `m` (the close of the bar starting at `open + m`): a wiggle on
    /// a slow swing of ±3 %, so that many sessions stay inside the strikes.
    pub fn spot(&self, m: i64) -> f64 {
        100.0 * (1.0 + 0.002 * (m as f64 / 7.0).sin() + 0.03 * (m as f64 / 2000.0).sin())
    }

    /// The spot at an instant: the close of the last bar that ended by it.
    pub fn spot_at(&self, at: DateTime<Utc>) -> Option<f64> {
        (0..self.sessions).rev().find_map(|s| {
            let ended = (at - self.open_of(s)).num_seconds().div_euclid(60);
            (ended >= 1).then(|| self.spot_on(s, ended.min(self.minutes) - 1))
        })
    }

    /// Expiries with bars starting at `ts`.
    pub fn expiries_at(&self, ts: DateTime<Utc>) -> Vec<NaiveDate> {
        let mut e = self.expiries.clone();
        if ts >= self.snapshots()[1] {
            e.push(self.late_expiry);
        }
        e
    }

    /// Every bar start: (session, minute, start).
    fn minutes_of(&self) -> Vec<(usize, i64, DateTime<Utc>)> {
        (0..self.sessions)
            .flat_map(|s| (0..self.minutes).map(move |m| (s, m)))
            .map(|(s, m)| (s, m, self.open_of(s) + Duration::minutes(m)))
            .collect()
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
    let days = m.days();
    m.minutes_of()
        .into_iter()
        .map(|(s, i, ts)| bar(ts, days[s], m.spot_on(s, i), ts + Duration::days(1)))
        .filter(|b| kept(b.ts, cut))
        .collect()
}

pub fn con_id(expiry: NaiveDate, strike: f64, is_call: bool) -> i64 {
    let days = (expiry - NaiveDate::default()).num_days();
    days * 1_000_000 + (strike * 100.0) as i64 * 10 + is_call as i64
}

pub fn option_rows(m: &Market, cut: Option<DateTime<Utc>>) -> Vec<OptionBar> {
    let days = m.days();
    let mut rows = Vec::new();
    for (s, i, ts) in m.minutes_of() {
        if !kept(ts, cut) {
            continue;
        }
        let (end, ing) = (ts + Duration::minutes(1), ts + Duration::days(1));
        for expiry in m.expiries_at(ts) {
            let t = time_to_expiry(end, expiry);
            if t <= 0.0 {
                continue;
            }
            for &strike in &m.strikes {
                for is_call in [true, false] {
                    let p = true_price(m.spot_on(s, i), strike, t, is_call);
                    let contract = OptionContract {
                        con_id: con_id(expiry, strike, is_call),
                        expiry,
                        strike,
                        right: if is_call { twslake::domain::Right::Call } else { twslake::domain::Right::Put },
                        multiplier: 100.0,
                    };
                    rows.push(OptionBar { contract, bar: bar(ts, days[s], p, ing) });
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

/// The contract rows of the market's options: European-style (the market prices them with
/// Black's formula), whatever the symbol's own class would say, so that research inverts them
/// as they were priced.
pub fn contract_rows(m: &Market) -> Vec<Contract> {
    let mut all = m.expiries.clone();
    all.push(m.late_expiry);
    let mut rows = Vec::new();
    for expiry in all {
        for &strike in &m.strikes {
            for is_call in [true, false] {
                rows.push(Contract {
                    con_id: con_id(expiry, strike, is_call),
                    sec_type: SecType::Option,
                    exchange: "SMART".into(),
                    currency: "USD".into(),
                    trading_class: Some(m.symbol.as_str().into()),
                    multiplier: Some(100.0),
                    expiry: Some(expiry),
                    strike: Some(strike),
                    right: Some(if is_call { Right::Call } else { Right::Put }),
                    fetched_at: m.open(),
                    exercise_style: Some(ExerciseStyle::European),
                    ..Default::default()
                });
            }
        }
    }
    rows
}

/// Writes the market into `lake`, keeping only what is stamped at or before `cut` if given.
/// Rows are recorded as answers (manifest entries, request ids in the footers), one per session.
pub async fn write(lake: &Lake, m: &Market, cut: Option<DateTime<Utc>>) {
    let c = contracts::to_batch(&contract_rows(m));
    lake.write(Dataset::Contracts, &m.symbol, &c, Some("contracts")).await.unwrap();
    let chain = chain_rows(m, cut);
    if !chain.is_empty() {
        lake.write(Dataset::Chains, &m.symbol, &chains::to_batch(&chain), Some("chains")).await.unwrap();
    }
    let (spot, opts) = (spot_bars(m, cut), option_rows(m, cut));
    for day in m.days() {
        let spot: Vec<Bar> = spot.iter().filter(|b| b.date == day).cloned().collect();
        if !spot.is_empty() {
            let id = format!("spot-{day}");
            lake.write(Dataset::EquityBars, &m.symbol, &equity_bars::to_batch(&spot), Some(&id)).await.unwrap();
        }
        let opts: Vec<OptionBar> = opts.iter().filter(|b| b.bar.date == day).cloned().collect();
        if !opts.is_empty() {
            let id = format!("options-{day}");
            lake.write(Dataset::OptionBars, &m.symbol, &option_bars::to_batch(&opts), Some(&id)).await.unwrap();
        }
    }
}
