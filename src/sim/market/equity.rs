//! Equity prices: the close series, daily bars, and the minute and second paths inside a session.

use chrono::{Datelike, NaiveDate};

use super::rng::{mix, quick_normal, Key};
use super::{cents, first_date, last_date, SymbolSpec};
use crate::calendar::{self, Session};

const TRADING_DAYS_PER_YEAR: f64 = 252.0;
/// Mean-reversion time of the deviation from trend, in trading days (~3 years).
const REVERSION_DAYS: f64 = 756.0;
/// Share of a symbol's daily shock that is market-wide.
const MARKET_BETA: f64 = 0.7;

/// The cached closes of one symbol, one per session from 2000 to 2035.
#[derive(Debug)]
pub struct CloseSeries {
    dates: Vec<NaiveDate>,
    closes: Vec<f64>,
}

/// The market-wide volatility regime of a month (a multiplier around 1).
pub fn regime(key: Key, date: NaiveDate) -> f64 {
    let z = key.with_str("regime").with(date.year() as u64 * 12 + date.month() as u64).normal();
    (0.28 * z).exp().clamp(0.6, 2.4)
}

/// Daily return volatility of a symbol on a date.
pub fn daily_sigma(key: Key, spec: &SymbolSpec, date: NaiveDate) -> f64 {
    spec.vol / TRADING_DAYS_PER_YEAR.sqrt() * regime(key, date)
}

fn day_label(date: NaiveDate) -> u64 {
    date.num_days_from_ce() as u64
}

impl CloseSeries {
    /// Runs the recursion once over every session of the simulated range.
    pub fn build(key: Key, spec: &SymbolSpec) -> Self {
        let dates = calendar::trading_days(first_date(), last_date());
        let sym = key.with_str(&spec.symbol);
        let phi = 1.0 - 1.0 / REVERSION_DAYS;
        let ref_date = SymbolSpec::ref_date();
        let mut dev = 0.0;
        let mut closes = Vec::with_capacity(dates.len());
        for d in &dates {
            let sigma = daily_sigma(key, spec, *d);
            let zm = key.with_str("market").with(day_label(*d)).normal();
            let zi = sym.with(day_label(*d)).normal();
            let shock = sigma * (MARKET_BETA * zm + (1.0 - MARKET_BETA * MARKET_BETA).sqrt() * zi);
            dev = phi * dev + shock;
            let years = (*d - ref_date).num_days() as f64 / 365.25;
            let trend = spec.ref_price.ln() + spec.growth * years;
            closes.push(cents((trend + dev).exp()).max(0.05));
        }
        CloseSeries { dates, closes }
    }

    /// Index of `date` in the series.
    fn index(&self, date: NaiveDate) -> Option<usize> {
        self.dates.binary_search(&date).ok()
    }
}

/// One daily bar of the TRADES series, in dollars and shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayBar {
    /// The session's date.
    pub date: NaiveDate,
    /// First price of the session.
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Last price.
    pub close: f64,
    /// Shares traded.
    pub volume: u64,
    /// The previous session's close.
    pub prev_close: f64,
}

/// The daily bar of `spec` on `date`.
pub fn day_bar(key: Key, spec: &SymbolSpec, series: &CloseSeries, date: NaiveDate) -> Option<DayBar> {
    let i = series.index(date)?;
    let close = series.closes[i];
    let prev_close = if i == 0 { close } else { series.closes[i - 1] };
    let sigma = daily_sigma(key, spec, date);
    let k = key.with_str(&spec.symbol).with_str("day").with(day_label(date));
    let open = cents(prev_close * (0.25 * sigma * k.with(1).normal()).exp()).max(0.02);
    let top = open.max(close);
    let bot = open.min(close);
    let high = cents(top * (0.55 * sigma * k.with(2).normal().abs()).exp()).max(top + 0.01);
    let low = cents(bot * (-0.55 * sigma * k.with(3).normal().abs()).exp()).min(bot - 0.01).max(0.01);
    let volume = (spec.adv * regime(key, date).sqrt() * (0.3 * k.with(4).normal()).exp()).round() as u64;
    Some(DayBar { date, open, high, low, close, volume, prev_close })
}

/// A session at minute resolution: `p[m]` is the price at minute boundary `m` (0 = open,
/// `minutes()` = close); minute `m` spans `p[m]..p[m+1]` with high `hi[m]`, low `lo[m]`, volume
/// `vol[m]`, trade count `count[m]` and VWAP `wap[m]`.
#[derive(Debug, Clone)]
pub struct DayDetail {
    /// The session.
    pub session: Session,
    /// The daily bar these minutes aggregate to.
    pub bar: DayBar,
    /// Prices at minute boundaries.
    pub p: Vec<f64>,
    /// Per-minute highs.
    pub hi: Vec<f64>,
    /// Per-minute lows.
    pub lo: Vec<f64>,
    /// Per-minute volumes.
    pub vol: Vec<u64>,
    /// Per-minute trade counts.
    pub count: Vec<u64>,
    /// Per-minute VWAPs.
    pub wap: Vec<f64>,
    key: Key,
    sigma_minute: f64,
    trade_size: f64,
}

impl DayDetail {
    /// Builds the minute path of a daily bar.
    pub fn build(key: Key, spec: &SymbolSpec, bar: DayBar) -> Option<Self> {
        let session = calendar::session(bar.date)?;
        let n = ((session.close - session.open).num_seconds() / 60) as usize;
        let k = key.with_str(&spec.symbol).with_str("minutes").with(day_label(bar.date));
        let sigma_minute = bar.open * daily_sigma(key, spec, bar.date) / (390f64).sqrt();
        let p = bridge_fit(k, n, [bar.open, bar.close, bar.high, bar.low], sigma_minute);
        let mut hi = Vec::with_capacity(n);
        let mut lo = Vec::with_capacity(n);
        let mut wap = Vec::with_capacity(n);
        let mut weights = Vec::with_capacity(n);
        for m in 0..n {
            let h = mix(k.0 ^ 0xE7C0 ^ m as u64);
            let top = p[m].max(p[m + 1]);
            let bot = p[m].min(p[m + 1]);
            let h1 = cents(top + 0.4 * sigma_minute * quick_normal(h).abs()).min(bar.high);
            let l1 = cents(bot - 0.4 * sigma_minute * quick_normal(mix(h)).abs()).max(bar.low);
            hi.push(h1);
            lo.push(l1);
            wap.push((h1 + l1 + p[m] + p[m + 1]) / 4.0);
            let x = m as f64 / n as f64;
            let u = (mix(h ^ 0x55) >> 11) as f64 / (1u64 << 53) as f64;
            weights.push((0.5 + 2.5 * (1.0 - x).powi(12) + 1.5 * x.powi(8)) * (0.4 + u));
        }
        let vol = allocate(bar.volume, &weights);
        let count = vol.iter().map(|v| (*v as f64 / spec.trade_size).ceil() as u64).collect();
        Some(DayDetail { session, bar, p, hi, lo, vol, count, wap, key: k, sigma_minute, trade_size: spec.trade_size })
    }

    /// Minutes in the session (390, or 210 on an early close).
    pub fn minutes(&self) -> usize {
        self.hi.len()
    }

    /// The seconds of minute `m`: 61 prices at second boundaries, 60 volumes and counts; the
    /// prices reach the minute's high and low exactly and the volumes sum to the minute's.
    pub fn seconds(&self, m: usize) -> Seconds {
        let k = self.key.with(0x5EC0_0000 + m as u64);
        let q = bridge_fit(k, 60, [self.p[m], self.p[m + 1], self.hi[m], self.lo[m]], self.sigma_minute / 60f64.sqrt());
        let weights: Vec<f64> = (0..60).map(|s| 0.2 + k.with(s).uniform()).collect();
        let vol = allocate(self.vol[m], &weights);
        let count = vol.iter().map(|v| (*v as f64 / self.trade_size).ceil() as u64).collect();
        Seconds { q, vol, count }
    }
}

/// One minute at second resolution.
#[derive(Debug, Clone)]
pub struct Seconds {
    /// Prices at the 61 second boundaries.
    pub q: Vec<f64>,
    /// Volume per second.
    pub vol: Vec<u64>,
    /// Trade count per second.
    pub count: Vec<u64>,
}

/// A path of `n` steps from `open` to `close` whose maximum is exactly `high` and minimum exactly
/// `low` (given `high ≥ max(open, close)` and `low ≤ min(open, close)`), in cents.
///
/// A Brownian bridge is bent monotonically: values above `max(open, close)` are stretched or
/// squeezed onto `[max, high]`, values below `min(open, close)` onto `[low, min]`, so the shape
/// of the path survives and its extremes land exactly on the bar's.
pub fn bridge_fit(key: Key, n: usize, [open, close, high, low]: [f64; 4], sigma: f64) -> Vec<f64> {
    let mut w = Vec::with_capacity(n + 1);
    let mut acc = 0.0;
    w.push(0.0);
    for i in 1..=n {
        acc += quick_normal(mix(key.0 ^ (i as u64).wrapping_mul(0x9E37_79B9)));
        w.push(acc);
    }
    let nf = n.max(1) as f64;
    let mut p: Vec<f64> =
        (0..=n).map(|i| open + (close - open) * i as f64 / nf + sigma * (w[i] - acc * i as f64 / nf)).collect();
    p[0] = open;
    p[n] = close;
    if n < 3 {
        return p.into_iter().map(cents).collect();
    }
    let top = open.max(close);
    let bot = open.min(close);
    let interior = 1..n;
    let imax = interior.clone().max_by(|a, b| p[*a].total_cmp(&p[*b])).unwrap_or(1);
    let mut imin = interior.min_by(|a, b| p[*a].total_cmp(&p[*b])).unwrap_or(1);
    if imin == imax {
        imin = if imax == 1 { 2 } else { imax - 1 };
    }
    let (pmax, pmin) = (p[imax], p[imin]);
    for x in p.iter_mut() {
        if *x > top && pmax > top {
            *x = top + (*x - top) * (high - top) / (pmax - top);
        } else if *x < bot && pmin < bot {
            *x = bot - (bot - *x) * (bot - low) / (bot - pmin);
        }
        *x = cents(*x).clamp(low, high);
    }
    p[imax] = high;
    p[imin] = low;
    p
}

/// Splits `total` into integers proportional to `weights`, summing exactly to `total`
/// (cumulative rounding, so no unit is lost or invented).
pub fn allocate(total: u64, weights: &[f64]) -> Vec<u64> {
    let sum: f64 = weights.iter().sum();
    if weights.is_empty() || sum <= 0.0 {
        return vec![0; weights.len()];
    }
    let mut out = Vec::with_capacity(weights.len());
    let (mut cum, mut given) = (0.0, 0u64);
    for w in weights {
        cum += w;
        let upto = ((total as f64) * (cum / sum)).round() as u64;
        let upto = upto.min(total).max(given);
        out.push(upto - given);
        given = upto;
    }
    if let Some(last) = out.last_mut() {
        *last += total - given;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_hits_the_bar_exactly() {
        for s in 0..200u64 {
            let p = bridge_fit(Key::new(s), 390, [100.0, 101.5, 103.2, 99.1], 0.08);
            assert_eq!(p[0], 100.0);
            assert_eq!(p[390], 101.5);
            assert_eq!(p.iter().cloned().fold(f64::MIN, f64::max), 103.2);
            assert_eq!(p.iter().cloned().fold(f64::MAX, f64::min), 99.1);
        }
    }

    #[test]
    fn allocation_is_exact() {
        let w: Vec<f64> = (0..390).map(|i| 1.0 + (i % 7) as f64).collect();
        for total in [0u64, 1, 17, 1_000_003] {
            assert_eq!(allocate(total, &w).iter().sum::<u64>(), total);
        }
    }
}
