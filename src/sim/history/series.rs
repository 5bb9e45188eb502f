//! Bars of one instrument over one window, aggregated from the market's minute (or second) paths.
//!
//! Every bar of a session, whatever its size, aggregates the same points, so a daily bar equals
//! the aggregate of that session's intraday bars: open = first point, close = last point,
//! high/low = extremes of the per-step highs/lows, volume and count = sums, WAP = volume-weighted.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use crate::calendar::{self, EXCHANGE_TZ};
use crate::domain::{BarSize, WhatToShow};
use crate::sim::market::{american, cents, options, DayDetail, Instrument, Market, OptionId, Right};

/// When a bar starts: a date for daily and longer bars, an instant for intraday ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarTime {
    /// `YYYYMMDD` on the wire.
    Date(NaiveDate),
    /// Epoch seconds on the wire.
    Instant(DateTime<Utc>),
}

/// One bar as served.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// Start of the bar.
    pub time: BarTime,
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
    /// Volume (TRADES only).
    pub volume: Option<u64>,
    /// Volume-weighted average price (TRADES only).
    pub wap: Option<f64>,
    /// Trade count (TRADES only).
    pub count: Option<u64>,
}

/// A session's path at one step (60 s or 1 s): `p` has one more point than the steps.
#[derive(Debug, Clone, Default)]
struct Fine {
    step: i64,
    origin: Option<DateTime<Utc>>,
    p: Vec<f64>,
    hi: Vec<f64>,
    lo: Vec<f64>,
    vol: Vec<u64>,
    count: Vec<u64>,
    wap: Vec<f64>,
}

impl Fine {
    fn steps(&self) -> usize {
        self.hi.len()
    }
}

/// Maps a model price to the price series asked for. Every mapping is non-decreasing, so the
/// high of the mapped series is the mapping of the high.
fn map_price(stock: bool, what: WhatToShow, side: Side, x: f64) -> f64 {
    if stock {
        match (what, side) {
            (WhatToShow::Bid, _) | (WhatToShow::BidAsk, Side::Bid) => cents(x - 0.01).max(0.01),
            (WhatToShow::Ask, _) | (WhatToShow::BidAsk, Side::Ask) => cents(x + 0.01),
            _ => x,
        }
    } else {
        let (bid, ask) = options::bid_ask(x);
        match (what, side) {
            (WhatToShow::Trades | WhatToShow::AdjustedLast, _) => options::trade_price(x),
            (WhatToShow::Midpoint, _) => (bid + ask) / 2.0,
            (WhatToShow::Bid, _) | (WhatToShow::BidAsk, Side::Bid) => bid,
            (WhatToShow::Ask, _) | (WhatToShow::BidAsk, Side::Ask) => ask,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Bid,
    Ask,
}

/// The minute path of an instrument's session, or `None` when it has no data that day.
fn minute_fine(market: &Market, inst: Instrument, date: NaiveDate) -> Option<(Fine, DayDetail)> {
    match inst {
        Instrument::Stock(i) => {
            let d = market.detail(i, date)?;
            let f = Fine {
                step: 60,
                origin: Some(d.session.open),
                p: d.p.clone(),
                hi: d.hi.clone(),
                lo: d.lo.clone(),
                vol: d.vol.clone(),
                count: d.count.clone(),
                wap: d.wap.clone(),
            };
            Some((f, (*d).clone()))
        }
        Instrument::Option(o) => {
            let d = market.detail(o.underlying, date)?;
            let spec = market.spec(o.underlying);
            // European per minute plus the early-exercise premium priced every 30 minutes
            // (`market::american`): the cost of American prices stays a fraction of a tree per minute.
            let premium = american::PremiumPath::build(market.key(), spec, &o, d.session.open, &d.p);
            let expires = options::expiry_instant(o.expiry);
            let mut p = Vec::with_capacity(d.p.len());
            for (m, s) in d.p.iter().enumerate() {
                let t = d.session.open + Duration::minutes(m as i64);
                p.push(match options::european_quote(market.key(), spec, &o, t, *s) {
                    Some(q) => q.price + premium.at(m as f64, *s),
                    // The expiry's close: the option is worth its exercise value, so its last
                    // session has bars like any other (IB serves them on the expiry day).
                    None if expires.is_some_and(|e| t >= e) => intrinsic(&o, *s),
                    None => return None,
                });
            }
            option_fine(market, o, &d, p).map(|f| (f, (*d).clone()))
        }
    }
}

/// An option's exercise value at spot `s` (both in the internal basis).
fn intrinsic(o: &OptionId, s: f64) -> f64 {
    match o.right {
        Right::Call => (s - o.strike).max(0.0),
        Right::Put => (o.strike - s).max(0.0),
    }
}

fn option_fine(market: &Market, o: OptionId, d: &DayDetail, p: Vec<f64>) -> Option<Fine> {
    let volume = market.option_day_volume(&o, d.bar.date)?;
    let n = p.len() - 1;
    let hi: Vec<f64> = (0..n).map(|m| p[m].max(p[m + 1])).collect();
    let lo: Vec<f64> = (0..n).map(|m| p[m].min(p[m + 1])).collect();
    let weights: Vec<f64> = (0..n).map(|m| (d.vol[m] as f64).powi(3)).collect();
    let vol = crate::sim::market::equity::allocate(volume, &weights);
    let count = vol.iter().map(|v| v.div_ceil(5)).collect();
    let wap = (0..n).map(|m| options::trade_price((hi[m] + lo[m] + p[m] + p[m + 1]) / 4.0)).collect();
    Some(Fine { step: 60, origin: Some(d.session.open), p, hi, lo, vol, count, wap })
}

/// The second path of minutes `[m0, m1)` of a session.
fn second_fine(market: &Market, inst: Instrument, d: &DayDetail, m0: usize, m1: usize) -> Option<Fine> {
    let mut f = Fine { step: 1, origin: Some(d.session.open + Duration::minutes(m0 as i64)), ..Fine::default() };
    let premium = match inst {
        Instrument::Option(o) => {
            american::PremiumPath::build(market.key(), market.spec(o.underlying), &o, d.session.open, &d.p)
        }
        Instrument::Stock(_) => american::PremiumPath::default(),
    };
    for m in m0..m1 {
        let s = d.seconds(m);
        let base = d.session.open + Duration::minutes(m as i64);
        let q: Vec<f64> = match inst {
            Instrument::Stock(_) => s.q.clone(),
            Instrument::Option(o) => {
                let spec = market.spec(o.underlying);
                let mut v = Vec::with_capacity(61);
                for (k, x) in s.q.iter().enumerate() {
                    let t = base + Duration::seconds(k as i64);
                    let premium = premium.at(m as f64 + k as f64 / 60.0, *x);
                    v.push(options::european_quote(market.key(), spec, &o, t, *x)?.price + premium);
                }
                v
            }
        };
        if f.p.is_empty() {
            f.p.push(q[0]);
        }
        for k in 0..60 {
            f.p.push(q[k + 1]);
            f.hi.push(q[k].max(q[k + 1]));
            f.lo.push(q[k].min(q[k + 1]));
            f.wap.push((q[k] + q[k + 1]) / 2.0);
        }
        f.vol.extend(s.vol.iter());
        f.count.extend(s.count.iter());
    }
    Some(f)
}

/// Aggregates steps `[a, b)` of a path into one bar.
fn aggregate(f: &Fine, a: usize, b: usize, stock: bool, what: WhatToShow, time: BarTime) -> Bar {
    let mp = |x: f64, side| map_price(stock, what, side, x);
    let high = f.hi[a..b].iter().cloned().fold(f64::MIN, f64::max);
    let low = f.lo[a..b].iter().cloned().fold(f64::MAX, f64::min);
    if what == WhatToShow::BidAsk {
        // IB's BID_ASK bar: open = time-average bid, high = max ask, low = min bid,
        // close = time-average ask.
        let n = (b - a) as f64;
        let avg = |side| (a..b).map(|m| (mp(f.p[m], side) + mp(f.p[m + 1], side)) / 2.0).sum::<f64>() / n;
        return Bar {
            time,
            open: avg(Side::Bid),
            high: mp(high, Side::Ask),
            low: mp(low, Side::Bid),
            close: avg(Side::Ask),
            volume: None,
            wap: None,
            count: None,
        };
    }
    let mut bar = Bar {
        time,
        open: mp(f.p[a], Side::Bid),
        high: mp(high, Side::Bid),
        low: mp(low, Side::Bid),
        close: mp(f.p[b], Side::Bid),
        volume: None,
        wap: None,
        count: None,
    };
    if has_volume(what) {
        let volume: u64 = f.vol[a..b].iter().sum();
        let notional: f64 = (a..b).map(|m| f.vol[m] as f64 * f.wap[m]).sum();
        bar.volume = Some(volume);
        bar.count = Some(f.count[a..b].iter().sum());
        bar.wap = Some(if volume > 0 { notional / volume as f64 } else { bar.close });
    }
    bar
}

/// Whether bars of `what` carry volume, WAP and count (the trades series).
fn has_volume(what: WhatToShow) -> bool {
    matches!(what, WhatToShow::Trades | WhatToShow::AdjustedLast)
}

/// Brings bars made in the internal basis to the basis served: prices × `price`, volumes ×
/// `volume` (see [`crate::sim::market::corporate`]). Split-adjusted prices are rounded to cents
/// as IB shows them; dividend-adjusted (`ADJUSTED_LAST`) ones to 1/10,000.
fn rebase(bars: &mut [Bar], what: WhatToShow, price: f64, volume: f64) {
    if price == 1.0 && volume == 1.0 {
        return;
    }
    let unit = if what == WhatToShow::AdjustedLast { 10_000.0 } else { 100.0 };
    let p = |x: f64| ((x * price * unit).round() / unit).max(if x > 0.0 { 1.0 / unit } else { 0.0 });
    for b in bars {
        (b.open, b.high, b.low, b.close) = (p(b.open), p(b.high), p(b.low), p(b.close));
        b.wap = b.wap.map(|w| w * price);
        b.volume = b.volume.map(|v| (v as f64 * volume).round() as u64);
    }
}

/// Steps of the path completed by `now` (the partial step is not served).
fn completed_steps(f: &Fine, now: DateTime<Utc>) -> usize {
    match f.origin {
        Some(o) if now > o => (((now - o).num_seconds() / f.step) as usize).min(f.steps()),
        _ => 0,
    }
}

/// Whether an option traded on a session (TRADES bars exist only on such days).
fn traded(f: &Fine) -> bool {
    f.vol.iter().any(|v| *v > 0)
}

/// The bars of `inst` over `[start, end)` at `size`, with data only up to `now`.
pub fn bars(
    market: &Market,
    inst: Instrument,
    what: WhatToShow,
    size: BarSize,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<Bar> {
    let now = market.now();
    let end = end.min(now);
    let stock = matches!(inst, Instrument::Stock(_));
    let first = calendar::trading_date(start).max(crate::sim::market::first_date());
    let last = calendar::trading_date(end).min(crate::sim::market::last_date());
    if first > last {
        return Vec::new();
    }
    let underlying = match inst {
        Instrument::Stock(i) => i,
        Instrument::Option(o) => o.underlying,
    };
    let split = market.served_factor(underlying);
    let mut out = Vec::new();
    for date in calendar::trading_days(first, last) {
        let before = out.len();
        if let Instrument::Option(o) = inst {
            if date > o.expiry || !listed_on(o, date) {
                continue;
            }
        }
        let Some((fine, detail)) = minute_fine(market, inst, date) else {
            continue;
        };
        if !stock && what == WhatToShow::Trades && !traded(&fine) {
            continue;
        }
        let done = completed_steps(&fine, now);
        if done == 0 {
            continue;
        }
        match size.seconds() {
            Some(s) if s < 60 => sub_minute(market, inst, &detail, what, s, start, end, done, &mut out),
            Some(s) => intraday(&fine, stock, what, s, start, end, done, &mut out),
            None => {
                if detail.session.open < end && detail.session.close > start {
                    out.push(aggregate(&fine, 0, done, stock, what, BarTime::Date(date)));
                }
            }
        }
        let dividends = if what == WhatToShow::AdjustedLast { market.dividend_factor(underlying, date) } else { 1.0 };
        rebase(&mut out[before..], what, dividends / split, split);
    }
    match size {
        BarSize::Week1 => group(out, what, |d| d.iso_week().week() as i64 + d.iso_week().year() as i64 * 100),
        BarSize::Month1 => group(out, what, |d| d.year() as i64 * 100 + d.month() as i64),
        _ => out,
    }
}

fn listed_on(o: OptionId, date: NaiveDate) -> bool {
    date >= options::listing_date(o.expiry)
}

/// Start offset (in steps) of each bar of `secs` seconds in a session, aligned to the clock in
/// New York (so 30-minute bars start at :00 and :30, hourly bars at 9:30 then 10:00, …).
fn bar_starts(origin: DateTime<Utc>, step: i64, steps: usize, secs: i64) -> Vec<usize> {
    let local = origin.with_timezone(&EXCHANGE_TZ);
    let since_midnight = local.time().signed_duration_since(chrono::NaiveTime::MIN).num_seconds();
    let mut starts = vec![0usize];
    let mut t = (since_midnight / secs + 1) * secs - since_midnight;
    while (t / step) < steps as i64 {
        starts.push((t / step) as usize);
        t += secs;
    }
    starts
}

#[allow(clippy::too_many_arguments)]
fn intraday(
    fine: &Fine,
    stock: bool,
    what: WhatToShow,
    secs: u32,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    done: usize,
    out: &mut Vec<Bar>,
) {
    let Some(origin) = fine.origin else { return };
    let starts = bar_starts(origin, fine.step, fine.steps(), secs as i64);
    for (j, a) in starts.iter().enumerate() {
        let b = starts.get(j + 1).copied().unwrap_or(fine.steps()).min(done);
        let t = origin + Duration::seconds(*a as i64 * fine.step);
        if *a >= b || t < start || t >= end {
            continue;
        }
        out.push(aggregate(fine, *a, b, stock, what, BarTime::Instant(t)));
    }
}

#[allow(clippy::too_many_arguments)]
fn sub_minute(
    market: &Market,
    inst: Instrument,
    d: &DayDetail,
    what: WhatToShow,
    secs: u32,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    done: usize,
    out: &mut Vec<Bar>,
) {
    let open = d.session.open;
    let m0 = ((start - open).num_seconds().max(0) / 60) as usize;
    let m1 = (((end - open).num_seconds() + 59).max(0) / 60) as usize;
    let m1 = m1.min(done);
    if m0 >= m1 {
        return;
    }
    let Some(f) = second_fine(market, inst, d, m0, m1) else {
        return;
    };
    intraday(&f, matches!(inst, Instrument::Stock(_)), what, secs, start, end, f.steps(), out);
}

/// Groups daily bars into weekly or monthly bars dated by their first session.
fn group(days: Vec<Bar>, what: WhatToShow, key: impl Fn(NaiveDate) -> i64) -> Vec<Bar> {
    let mut out: Vec<Bar> = Vec::new();
    let mut last_key = None;
    let mut members = 0usize;
    for bar in days {
        let BarTime::Date(d) = bar.time else { continue };
        let k = key(d);
        match out.last_mut() {
            Some(acc) if last_key == Some(k) => {
                if what == WhatToShow::BidAsk {
                    // Time averages: weight each session by how many it follows (equal sessions).
                    let n = members as f64;
                    acc.open = (acc.open * n + bar.open) / (n + 1.0);
                    acc.close = (acc.close * n + bar.close) / (n + 1.0);
                    acc.high = acc.high.max(bar.high);
                    acc.low = acc.low.min(bar.low);
                    members += 1;
                    continue;
                }
                acc.high = acc.high.max(bar.high);
                acc.low = acc.low.min(bar.low);
                acc.close = bar.close;
                if has_volume(what) {
                    let (v0, v1) = (acc.volume.unwrap_or(0), bar.volume.unwrap_or(0));
                    let notional = acc.wap.unwrap_or(0.0) * v0 as f64 + bar.wap.unwrap_or(0.0) * v1 as f64;
                    acc.volume = Some(v0 + v1);
                    acc.wap = Some(if v0 + v1 > 0 { notional / (v0 + v1) as f64 } else { acc.close });
                    acc.count = Some(acc.count.unwrap_or(0) + bar.count.unwrap_or(0));
                }
            }
            _ => {
                out.push(bar);
                members = 1;
            }
        }
        last_key = Some(k);
    }
    out
}
