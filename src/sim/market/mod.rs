//! The simulated market: deterministic from a seed, defined for every NYSE session from 2000 up
//! to "now", produced lazily.
//!
//! # How a day is made
//! - **Closes**: log price = trend + an Ornstein–Uhlenbeck deviation (mean reversion over ~3
//!   years) whose daily shock is a hash of (seed, symbol, date) mixed with a market-wide shock of
//!   (seed, date). Each draw is independent of every other, so the close series is one cached
//!   recursion per symbol (~9,000 steps, done once on first use); any day is then O(1).
//! - **Daily bar**: open = previous close times an overnight gap; high/low = excursions beyond
//!   open/close. All O(1) from hashes, rounded to cents.
//! - **Minutes**: a Brownian bridge from open to close, bent monotonically so its maximum is
//!   exactly the day's high and its minimum exactly the low; per-minute highs/lows, U-shaped
//!   integer volumes that sum exactly to the day's volume. Bars of a minute or more aggregate
//!   these, so intraday bars aggregate exactly to the daily bar (OHLC, volume, count, WAP).
//! - **Seconds** (only for bars under a minute): the same construction inside each minute, hitting
//!   that minute's high/low exactly and splitting its volume exactly.
//! - **Options**: see [`options`]: prices from a known SSVI/raw-SVI surface per expiry.

pub mod american;
pub mod corporate;
pub mod equity;
pub mod options;
pub mod rng;
pub mod symbols;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, NaiveDate, Utc};

pub use equity::{DayBar, DayDetail};
pub use options::{OptionId, Right};
pub use symbols::SymbolSpec;

use rng::Key;

pub use crate::clock::{Clock, ManualClock, WallClock};

/// First date of the simulated history.
pub fn first_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 3).unwrap_or_default()
}

/// Last date the market (and the calendar) is defined for.
pub fn last_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2035, 12, 31).unwrap_or_default()
}

/// What a request is about.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Instrument {
    /// A stock (index into the market's symbols).
    Stock(usize),
    /// A listed option.
    Option(OptionId),
}

/// The deterministic market behind the simulator.
#[derive(Debug)]
pub struct Market {
    key: Key,
    symbols: Vec<Arc<SymbolSpec>>,
    clock: Arc<dyn Clock>,
    closes: Vec<OnceLock<equity::CloseSeries>>,
    details: Mutex<HashMap<(usize, NaiveDate), Arc<DayDetail>>>,
    chains: Mutex<HashMap<(usize, NaiveDate), Arc<options::Chain>>>,
    option_ids: Mutex<HashMap<NaiveDate, Arc<HashMap<i32, OptionId>>>>,
}

/// Cached day details kept before the cache is emptied (each is a few tens of KiB).
const DETAIL_CACHE: usize = 2048;

impl Market {
    /// A market over `symbols`, seeded by `seed`, whose present is `clock`.
    pub fn new(seed: u64, symbols: Vec<SymbolSpec>, clock: Arc<dyn Clock>) -> Self {
        let closes = symbols.iter().map(|_| OnceLock::new()).collect();
        Market {
            key: Key::new(seed),
            symbols: symbols.into_iter().map(Arc::new).collect(),
            clock,
            closes,
            details: Mutex::new(HashMap::new()),
            chains: Mutex::new(HashMap::new()),
            option_ids: Mutex::new(HashMap::new()),
        }
    }

    /// The market's present.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The clock behind [`Self::now`].
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The symbols served.
    pub fn symbols(&self) -> &[Arc<SymbolSpec>] {
        &self.symbols
    }

    /// Index of a symbol (exact, case-sensitive as IB is).
    pub fn symbol_index(&self, symbol: &str) -> Option<usize> {
        self.symbols.iter().position(|s| s.symbol == symbol)
    }

    /// Index of the stock with this con_id.
    pub fn stock_by_con_id(&self, con_id: i32) -> Option<usize> {
        self.symbols.iter().position(|s| s.con_id == con_id)
    }

    /// The spec of symbol `i`.
    pub fn spec(&self, i: usize) -> &Arc<SymbolSpec> {
        &self.symbols[i]
    }

    fn closes(&self, i: usize) -> &equity::CloseSeries {
        self.closes[i].get_or_init(|| equity::CloseSeries::build(self.key, &self.symbols[i]))
    }

    /// The daily bar of symbol `i` on `date`, if that date is a session in the simulated range.
    pub fn day_bar(&self, i: usize, date: NaiveDate) -> Option<DayBar> {
        equity::day_bar(self.key, &self.symbols[i], self.closes(i), date)
    }

    /// The minute-level detail of symbol `i` on `date` (cached).
    pub fn detail(&self, i: usize, date: NaiveDate) -> Option<Arc<DayDetail>> {
        if let Some(d) = self.details.lock().unwrap_or_else(|e| e.into_inner()).get(&(i, date)) {
            return Some(d.clone());
        }
        let bar = self.day_bar(i, date)?;
        let detail = Arc::new(equity::DayDetail::build(self.key, &self.symbols[i], bar)?);
        let mut cache = self.details.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= DETAIL_CACHE {
            cache.clear();
        }
        cache.insert((i, date), detail.clone());
        Some(detail)
    }

    /// The listed option chain of symbol `i` as of trading date `today` (cached).
    pub fn chain(&self, i: usize, today: NaiveDate) -> Arc<options::Chain> {
        if let Some(c) = self.chains.lock().unwrap_or_else(|e| e.into_inner()).get(&(i, today)) {
            return c.clone();
        }
        let chain = Arc::new(options::Chain::build(self, i, today));
        let mut cache = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 64 {
            cache.clear();
        }
        cache.insert((i, today), chain.clone());
        chain
    }

    /// Contracts of option `o` traded on session `date` (0 on days it did not trade), decided
    /// from that session's close so bars and quotes agree on it.
    pub fn option_day_volume(&self, o: &OptionId, date: NaiveDate) -> Option<u64> {
        let close = crate::calendar::session(date)?.close;
        let spot = self.day_bar(o.underlying, date)?.close;
        let t = options::years_to(o.expiry, close);
        Some(options::day_volume(self.key, self.spec(o.underlying), o, date, spot, t))
    }

    /// The option listed on `today` with this con_id (an index built once per trading date).
    pub fn option_by_con_id(&self, today: NaiveDate, con_id: i32) -> Option<OptionId> {
        if let Some(index) = self.option_ids.lock().unwrap_or_else(|e| e.into_inner()).get(&today) {
            return index.get(&con_id).copied();
        }
        let mut index = HashMap::new();
        for i in 0..self.symbols.len() {
            let spec = self.spec(i);
            for e in &self.chain(i, today).expiries {
                for k in &e.strikes {
                    for right in [Right::Call, Right::Put] {
                        let o = OptionId { underlying: i, expiry: e.date, strike: *k, right };
                        index.insert(options::con_id(spec, e.date, *k, right), o);
                    }
                }
            }
        }
        let found = index.get(&con_id).copied();
        let mut cache = self.option_ids.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 8 {
            cache.clear();
        }
        cache.insert(today, Arc::new(index));
        found
    }

    /// The date whose basis the simulator serves prices in: the clock's calendar date in New
    /// York (a split is in effect from the midnight before its ex-date, as IB adjusts).
    pub fn basis_date(&self) -> NaiveDate {
        self.now().with_timezone(&crate::calendar::EXCHANGE_TZ).date_naive()
    }

    /// What internal prices of symbol `i` are divided by (and volumes multiplied by) when
    /// served: the split factor of [`Self::basis_date`].
    pub fn served_factor(&self, i: usize) -> f64 {
        self.spec(i).split_factor(self.basis_date())
    }

    /// The dividend back-adjustment of `ADJUSTED_LAST` for a bar of `date` as of the clock: the
    /// product, over the dividends with ex-date in (`date`, clock's date], of
    /// `1 − dividend / close of the session before the ex-date` (both in one basis).
    pub fn dividend_factor(&self, i: usize, date: NaiveDate) -> f64 {
        let spec = self.spec(i).clone();
        corporate::dividends_between(&spec, date, self.basis_date())
            .iter()
            .filter_map(|d| {
                let prev = self.day_bar(i, crate::calendar::prev_trading_day(d.ex_date))?.close;
                Some(1.0 - corporate::internal_amount(&spec, d) / prev)
            })
            .filter(|f| *f > 0.0)
            .product()
    }

    /// The root key (for sub-models).
    pub(crate) fn key(&self) -> Key {
        self.key
    }

    /// The underlying's price at instant `t`: the last completed minute in a session, else the
    /// last close at or before `t`. `None` before the simulated history starts.
    pub fn spot_at(&self, i: usize, t: DateTime<Utc>) -> Option<f64> {
        let mut date = crate::calendar::trading_date(t).min(last_date());
        if let Some(s) = crate::calendar::session(date) {
            if t >= s.open && t < s.close {
                let d = self.detail(i, date)?;
                let m = ((t - s.open).num_seconds() / 60) as usize;
                return d.p.get(m).copied();
            }
            if t < s.open {
                date = crate::calendar::prev_trading_day(date);
            }
        } else {
            date = crate::calendar::prev_trading_day(date);
        }
        if date < first_date() {
            return None;
        }
        self.day_bar(i, date).map(|b| b.close)
    }
}

/// Rounds a price to whole cents.
pub fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
