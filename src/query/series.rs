//! Which bar series a research query reads when it is not told: the finest MIDPOINT option
//! series the lake holds on the dates asked, and a spot series no coarser than those option bars.
//!
//! `setup` stores 5-minute mids by default, the demo 1-minute mids, a user's `twslake.toml`
//! whatever it names: a query that assumed one bar size would find nothing in the others' lakes.
//! The choice is made from the partitions themselves (one listing of the symbol's folder), so it
//! is the same for `surface`, `surfaces`, `option_panel` and the Python package.

use crate::datasets::Dataset;
use crate::domain::{Series, Symbol, WhatToShow};
use crate::error::{Error, Result};
use crate::lake::layout::Period;
use crate::lake::Lake;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};

/// One intraday bar series a symbol holds, with the trading dates of its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldSeries {
    /// The series.
    pub series: Series,
    /// The trading dates it has a partition for.
    pub dates: BTreeSet<NaiveDate>,
}

impl HeldSeries {
    /// How many of its dates fall in `[from, to]`.
    pub fn days_in(&self, from: NaiveDate, to: NaiveDate) -> usize {
        if from > to {
            return 0;
        }
        self.dates.range(from..=to).count()
    }

    fn seconds(&self) -> u32 {
        self.series.bar_size.seconds().unwrap_or(u32::MAX)
    }

    /// `1 min MIDPOINT (2024-11-20 .. 2024-11-22, 3 days)`.
    fn describe(&self) -> String {
        match (self.dates.first(), self.dates.last()) {
            (Some(a), Some(b)) => {
                let n = self.dates.len();
                let days = format!("{n} day{}", if n == 1 { "" } else { "s" });
                format!("{} {} ({a} .. {b}, {days})", self.series.bar_size, self.series.what_to_show)
            }
            _ => format!("{} {}", self.series.bar_size, self.series.what_to_show),
        }
    }
}

/// The intraday series of a listing of partitions, finest first.
fn held_of(partitions: impl IntoIterator<Item = crate::lake::layout::Partition>) -> Vec<HeldSeries> {
    let mut by: BTreeMap<Series, BTreeSet<NaiveDate>> = BTreeMap::new();
    for p in partitions {
        if let (Some(series), Period::Day(d)) = (p.series, p.period) {
            by.entry(series).or_default().insert(d);
        }
    }
    let mut out: Vec<HeldSeries> = by.into_iter().map(|(series, dates)| HeldSeries { series, dates }).collect();
    out.sort_by_key(|h| (h.seconds(), h.series.what_to_show));
    out
}

/// `5 mins MIDPOINT (2024-11-18 .. 2024-11-20, 3 days), …`, or `none`.
pub fn describe_all(held: &[HeldSeries]) -> String {
    if held.is_empty() {
        return "none".into();
    }
    held.iter().map(HeldSeries::describe).collect::<Vec<_>>().join(", ")
}

/// The option series read by default over `[from, to]`: the finest MIDPOINT intraday series with
/// a partition on one of those dates. The error names the series the symbol does hold.
pub fn choose_option_series(symbol: &Symbol, held: &[HeldSeries], from: NaiveDate, to: NaiveDate) -> Result<Series> {
    held.iter()
        .filter(|h| h.series.what_to_show == WhatToShow::Midpoint && h.days_in(from, to) > 0)
        .min_by_key(|h| h.seconds())
        .map(|h| h.series)
        .ok_or_else(|| {
            let why = format!(
                "no MIDPOINT option bars on these dates; the lake holds these intraday option series: {} \
                 (ask for an instant they cover, or ingest MIDPOINT option bars: `twslake setup {symbol}`)",
                describe_all(held)
            );
            Error::bad_input("option bars", format!("{symbol} {from} .. {to}"), why)
        })
}

/// The spot series option bars of `option` are joined to over `[from, to]`: an intraday MIDPOINT
/// or TRADES equity series no coarser than the option bars (so each option bar's end is a spot
/// bar's end). Of those, the one with partitions on most of the dates, then the coarsest (fewest
/// rows, same closes at the option bars' ends), then MIDPOINT before TRADES.
pub fn choose_spot_series(
    symbol: &Symbol,
    held: &[HeldSeries],
    option: Series,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Series> {
    let limit = option.bar_size.seconds().unwrap_or(u32::MAX);
    let kinds = [WhatToShow::Midpoint, WhatToShow::Trades];
    held.iter()
        .filter(|h| kinds.contains(&h.series.what_to_show) && h.seconds() <= limit && h.days_in(from, to) > 0)
        .max_by_key(|h| (h.days_in(from, to), h.seconds(), h.series.what_to_show == WhatToShow::Midpoint))
        .map(|h| h.series)
        .ok_or_else(|| {
            let why = format!(
                "option bars of {} need the underlying's MIDPOINT or TRADES bars of the same sessions at {} or finer; \
                 the lake holds these intraday equity series: {} (run `twslake update {symbol}`)",
                option.bar_size,
                option.bar_size,
                describe_all(held)
            );
            Error::bad_input("spot bars", format!("{symbol} {from} .. {to}"), why)
        })
}

/// Which bar series a lake holds, and which a query reads when not told.
#[derive(Clone, Copy)]
pub struct Holdings<'a> {
    lake: &'a Lake,
}

impl<'a> Holdings<'a> {
    /// The reader of `lake`.
    pub fn new(lake: &'a Lake) -> Self {
        Holdings { lake }
    }
}

impl<'a> Holdings<'a> {
    /// The intraday series of `dataset` that `symbol` holds (finest first), from one listing.
    pub async fn held_series(&self, dataset: Dataset, symbol: &Symbol) -> Result<Vec<HeldSeries>> {
        Ok(held_of(self.lake.partitions(dataset, Some(symbol)).await?))
    }

    /// The option series a query over `[from, to]` reads unless told ([`choose_option_series`]).
    pub async fn default_option_series(&self, symbol: &Symbol, from: NaiveDate, to: NaiveDate) -> Result<Series> {
        choose_option_series(symbol, &self.held_series(Dataset::OptionBars, symbol).await?, from, to)
    }

    /// The spot series for option bars of `option` over `[from, to]` ([`choose_spot_series`]).
    pub async fn spot_series_for(
        &self,
        symbol: &Symbol,
        option: Series,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Series> {
        choose_spot_series(symbol, &self.held_series(Dataset::EquityBars, symbol).await?, option, from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::BarSize;
    use crate::lake::layout::Partition;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn held(ds: Dataset, series: &[(BarSize, WhatToShow, &[&str])]) -> Vec<HeldSeries> {
        let spy = Symbol::new("SPY").unwrap();
        let parts = series.iter().flat_map(|(b, w, dates)| {
            let s = Series { bar_size: *b, what_to_show: *w };
            let spy = spy.clone();
            dates.iter().map(move |x| Partition::for_date(ds, &spy, Some(s), d(x)).unwrap())
        });
        held_of(parts)
    }

    #[test]
    fn the_finest_midpoint_series_on_the_dates_is_read() {
        let spy = Symbol::new("SPY").unwrap();
        let h = held(
            Dataset::OptionBars,
            &[
                (BarSize::Min5, WhatToShow::Midpoint, &["2024-11-18", "2024-11-19", "2024-11-20"]),
                (BarSize::Min1, WhatToShow::Midpoint, &["2024-11-20"]),
                (BarSize::Sec30, WhatToShow::Trades, &["2024-11-19"]),
            ],
        );
        let pick = |a: &str, b: &str| choose_option_series(&spy, &h, d(a), d(b)).map(|s| s.bar_size);
        assert_eq!(pick("2024-11-20", "2024-11-20").unwrap(), BarSize::Min1);
        // 1-minute mids do not cover the 19th: the 5-minute ones do.
        assert_eq!(pick("2024-11-19", "2024-11-19").unwrap(), BarSize::Min5);
        let e = pick("2024-11-21", "2024-11-22").unwrap_err().to_string();
        assert!(e.contains("SPY 2024-11-21 .. 2024-11-22"), "{e}");
        assert!(e.contains("5 mins MIDPOINT (2024-11-18 .. 2024-11-20, 3 days)"), "{e}");
        assert!(e.contains("30 secs TRADES"), "{e}");
    }

    #[test]
    fn the_spot_series_is_no_coarser_than_the_option_bars() {
        let spy = Symbol::new("SPY").unwrap();
        let five = Series { bar_size: BarSize::Min5, what_to_show: WhatToShow::Midpoint };
        let one = Series { bar_size: BarSize::Min1, what_to_show: WhatToShow::Midpoint };
        let days = ["2024-11-19", "2024-11-20"];
        let h = held(
            Dataset::EquityBars,
            &[
                (BarSize::Min1, WhatToShow::Trades, &days),
                (BarSize::Min5, WhatToShow::Trades, &days[1..]),
                (BarSize::Min30, WhatToShow::Trades, &days),
            ],
        );
        let pick = |o: Series, a: &str| choose_spot_series(&spy, &h, o, d(a), d("2024-11-20")).unwrap().bar_size;
        // Both days: only the 1-minute bars have them. The 20th alone: the coarser 5-minute bars.
        assert_eq!(pick(five, "2024-11-19"), BarSize::Min1);
        assert_eq!(pick(five, "2024-11-20"), BarSize::Min5);
        assert_eq!(pick(one, "2024-11-20"), BarSize::Min1);
        let mid = held(
            Dataset::EquityBars,
            &[(BarSize::Min1, WhatToShow::Trades, &days), (BarSize::Min1, WhatToShow::Midpoint, &days)],
        );
        let s = choose_spot_series(&spy, &mid, one, d("2024-11-19"), d("2024-11-20")).unwrap();
        assert_eq!(s.what_to_show, WhatToShow::Midpoint);
        let coarse = held(Dataset::EquityBars, &[(BarSize::Min30, WhatToShow::Trades, &days)]);
        let e = choose_spot_series(&spy, &coarse, one, d("2024-11-19"), d("2024-11-20")).unwrap_err().to_string();
        assert!(e.contains("at 1 min or finer") && e.contains("30 mins TRADES"), "{e}");
    }
}
