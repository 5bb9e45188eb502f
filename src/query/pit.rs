//! Point-in-time reads: what was knowable at an instant `at`, and nothing stamped after it.
//!
//! The rule every function here keeps: an answer for `at` uses only bars that had **closed** by
//! `at` (`ts + bar length <= at`; `ts` is the bar's start) and the latest chain snapshot taken at
//! or before `at` (`snapshot_at <= at`). Partitions after `at`'s trading date are never opened.
//! A test deletes everything stamped after random instants and checks that no answer changes.

use crate::calendar;
use crate::datasets::Dataset;
use crate::domain::{BarSize, Series, Symbol, WhatToShow};
use crate::error::{Error, Result};
use crate::lake::Lake;
use crate::query::Scans;
use crate::query::{collect, ScanFilter};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use polars::prelude::TimeZone as PlTimeZone;
use polars::prelude::*;

/// The polars type of every lake timestamp.
pub fn ts_type() -> DataType {
    DataType::Datetime(TimeUnit::Microseconds, Some(PlTimeZone::UTC))
}

/// A literal UTC timestamp comparable with lake columns.
pub fn ts_lit(at: DateTime<Utc>) -> Expr {
    lit(at.timestamp_micros()).cast(ts_type())
}

/// The expression for a bar's end: `ts + length` for intraday bars, 16:00 New York of the
/// trading date for daily bars (the close, or later on early-close days: never too early).
fn end_expr(bar_size: BarSize) -> Result<Expr> {
    if let Some(secs) = bar_size.seconds() {
        return Ok((col("ts").cast(DataType::Int64) + lit(secs as i64 * 1_000_000)).cast(ts_type()));
    }
    if bar_size != BarSize::Day1 {
        let why =
            "point-in-time reads take intraday or daily bars; weekly and monthly bars close after dates inside them";
        return Err(Error::bad_input("bar size", bar_size.ib(), why));
    }
    // 21:00 UTC is 16:00 EST and 17:00 EDT: at or after every session's close.
    let day_us = 86_400_000_000i64;
    Ok((col("date").cast(DataType::Int64) * lit(day_us) + lit(21 * 3_600_000_000i64)).cast(ts_type()))
}

/// A point-in-time question: one symbol, one series, trading dates `from ..= trading_date(at)`.
#[derive(Debug, Clone)]
pub struct AsOf {
    /// The symbol (the underlying, for options).
    pub symbol: Symbol,
    /// The bar series.
    pub series: Series,
    /// First trading date to read.
    pub from: NaiveDate,
    /// The instant asked about.
    pub at: DateTime<Utc>,
}

impl AsOf {
    fn filter(&self) -> ScanFilter {
        ScanFilter {
            symbols: Some(vec![self.symbol.clone()]),
            series: Some(self.series),
            from: Some(self.from),
            to: Some(calendar::trading_date(self.at)),
        }
    }
}

/// The spot of an underlying at an instant.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Spot {
    /// The close of the last bar closed by the instant.
    pub price: f64,
    /// When that bar closed.
    pub as_of: DateTime<Utc>,
    /// IB's what-to-show of the bar (`MIDPOINT` or `TRADES`).
    pub what_to_show: String,
}

/// How many calendar days back [`PointInTime::spot_at`] and [`PointInTime::chain_as_of`] look.
pub const LOOKBACK_DAYS: i64 = 10;

/// The equity series a spot is read from, most preferred first.
pub const SPOT_SERIES: [Series; 2] = [
    Series { bar_size: BarSize::Min1, what_to_show: WhatToShow::Midpoint },
    Series { bar_size: BarSize::Min1, what_to_show: WhatToShow::Trades },
];

fn no_data(symbol: &Symbol, at: DateTime<Utc>, what: &str) -> Error {
    let reason = format!("no {what} at or before this instant in the last {LOOKBACK_DAYS} days");
    Error::bad_input("point in time", format!("{symbol} at {}", at.to_rfc3339()), reason)
}

/// Point-in-time reads of a lake: what was knowable at an instant.
#[derive(Clone, Copy)]
pub struct PointInTime<'a> {
    lake: &'a Lake,
}

impl<'a> PointInTime<'a> {
    /// The reader of `lake`.
    pub fn new(lake: &'a Lake) -> Self {
        PointInTime { lake }
    }
}

impl<'a> PointInTime<'a> {
    /// Bars of one series that had closed by `q.at`, with their end in an `end` column.
    pub async fn bars_as_of(&self, dataset: Dataset, q: &AsOf) -> Result<LazyFrame> {
        let end = end_expr(q.series.bar_size)?;
        let lf = Scans::new(self.lake).scan(dataset, &q.filter()).await?;
        Ok(lf.with_column(end.alias("end")).filter(col("end").lt_eq(ts_lit(q.at))))
    }

    /// The spot at `at`: the close of the latest 1-minute bar (MIDPOINT preferred to TRADES on a
    /// tie) that had closed by `at`, looking back [`LOOKBACK_DAYS`] days.
    pub async fn spot_at(&self, symbol: &Symbol, at: DateTime<Utc>) -> Result<Spot> {
        let from = calendar::trading_date(at) - Duration::days(LOOKBACK_DAYS);
        let mut best: Option<Spot> = None;
        for series in SPOT_SERIES {
            let q = AsOf { symbol: symbol.clone(), series, from, at };
            let lf = self.bars_as_of(Dataset::EquityBars, &q).await?;
            let df = collect(lf.sort(["end"], Default::default()).select([col("end"), col("close")]).last()).await?;
            if df.height() == 0 {
                continue;
            }
            // `get` panics out of bounds: only after the height check.
            let (Some(end), Some(price)) =
                (df.column("end")?.datetime()?.phys.get(0), df.column("close")?.f64()?.get(0))
            else {
                continue;
            };
            let as_of = DateTime::from_timestamp_micros(end).unwrap_or_default();
            if best.as_ref().is_none_or(|b| as_of > b.as_of) {
                best = Some(Spot { price, as_of, what_to_show: series.what_to_show.ib().into() });
            }
        }
        best.ok_or_else(|| no_data(symbol, at, "1-minute MIDPOINT or TRADES equity bars"))
    }

    /// The latest chain snapshot taken at or before `at` (every exchange and trading class it
    /// holds), looking back [`LOOKBACK_DAYS`] days.
    pub async fn chain_as_of(&self, symbol: &Symbol, at: DateTime<Utc>) -> Result<DataFrame> {
        let filter = ScanFilter {
            symbols: Some(vec![symbol.clone()]),
            series: None,
            from: Some(calendar::trading_date(at) - Duration::days(LOOKBACK_DAYS)),
            to: Some(calendar::trading_date(at)),
        };
        let lf =
            Scans::new(self.lake).scan(Dataset::Chains, &filter).await?.filter(col("snapshot_at").lt_eq(ts_lit(at)));
        let latest = lf.filter(col("snapshot_at").eq(col("snapshot_at").max()));
        let df =
            collect(latest.sort(["exchange", "trading_class", "expiration", "strike"], Default::default())).await?;
        if df.height() == 0 {
            return Err(no_data(symbol, at, "chain snapshot"));
        }
        Ok(df)
    }

    /// The option panel: option bars of `q.series` closed by `q.at`, each joined to the
    /// underlying's spot as of the bar's end (backward as-of join on 1-minute equity bars of
    /// `spot_series`), with `t`, the ACT/365 years from the bar's end to expiry.
    ///
    /// Columns: the option-bar columns, `end`, `spot`, `spot_end`, `exercise_style` (the
    /// contract's, [`super::styles::Styles`]), `expiry_at`, `t`; sorted by `end`. Rows with no spot at or before their end have a null `spot`.
    pub async fn option_panel(&self, q: &AsOf, spot_series: Series) -> Result<LazyFrame> {
        // Filters above commute with the sort (slices would not, and the as-of join stops them).
        let opts = self.bars_as_of(Dataset::OptionBars, q).await?;
        let opts = opts.map(sorted_by_end, AllowedOptimizations::default(), None, Some("sorted_by_end"));
        let spot_q = AsOf { series: spot_series, ..q.clone() };
        let spot = self
            .bars_as_of(Dataset::EquityBars, &spot_q)
            .await?
            .select([col("end"), col("end").alias("spot_end"), col("close").alias("spot")])
            .sort(["end"], Default::default());
        let asof = AsOfOptions { strategy: AsofStrategy::Backward, allow_eq: true, ..Default::default() };
        let args = JoinArgs::new(JoinType::AsOf(Box::new(asof)));
        let joined = opts.join(spot, [col("end")], [col("end")], args);
        let styles = super::styles::Styles::read(self.lake, &q.symbol).await?;
        with_time_to_expiry(styles.with_column(joined))
    }
}

/// Adds `expiry_at` (the close of the expiry date's session, as [`calendar::expiry_instant`]: 16:00 New
/// York, 13:00 on early-close days; UTC 20:00 or 21:00 by daylight saving)
/// and `t` (ACT/365 years from `end`) to frames with `expiry` and `end` columns.
pub fn with_time_to_expiry(lf: LazyFrame) -> Result<LazyFrame> {
    let expiry_at = col("expiry").map(expiry_instants, |_, f| Ok(Field::new(f.name().clone(), ts_type())));
    let t = (col("expiry_at").cast(DataType::Int64) - col("end").cast(DataType::Int64)).cast(DataType::Float64)
        / lit(1e6 * calendar::YEAR_SECONDS);
    Ok(lf.with_column(expiry_at.alias("expiry_at")).with_column(t.alias("t")))
}

/// The expiry instant of every date of a column, computed once per distinct date: a time-zone
/// conversion costs ~80 ns, a panel has millions of rows and a handful of expiries.
fn expiry_instants(expiry: Column) -> PolarsResult<Column> {
    let days = expiry.cast(&DataType::Date)?;
    let days = days.date()?.physical();
    let (lo, hi) = (days.min().unwrap_or(0), days.max().unwrap_or(0));
    // A table over the dates' range unless that range is much larger than the column.
    let span = (hi as i64 - lo as i64 + 1) as usize;
    let out: Int64Chunked = if span <= days.len().clamp(4096, 1 << 16) {
        let table: Vec<Option<i64>> = (lo..=hi).map(close_micros).collect();
        days.iter().map(|d| d.and_then(|d| table[(d - lo) as usize])).collect()
    } else {
        let mut seen = PlHashMap::new();
        days.iter().map(|d| d.and_then(|d| *seen.entry(d).or_insert_with(|| close_micros(d)))).collect()
    };
    Ok(out.into_datetime(TimeUnit::Microseconds, Some(PlTimeZone::UTC)).into_column().with_name(expiry.name().clone()))
}

/// 16:00 New York (the earlier instant if ambiguous, none if skipped) of a date given as days
/// since 1970, three hours earlier on the calendar's early-close days, in UTC microseconds.
fn close_micros(day: i32) -> Option<i64> {
    let date = calendar::date_of_days(day);
    let close = chrono_tz::America::New_York.from_local_datetime(&date.and_hms_opt(16, 0, 0)?).earliest()?;
    let early = calendar::early_close_days().binary_search(&day).is_ok();
    Some(close.timestamp_micros() - if early { 3 * 3_600_000_000 } else { 0 })
}

/// The frame sorted by `end` (stable). A scan returns each file's rows by contract, then time,
/// and the files in date order; sorting each trading date's rows on its own then usually sorts
/// the whole, in cache and without the copy of every file's chunk into one column that a whole
/// sort begins with (most of the panel's cost before). One pass checks; anything else (daily bars,
/// a year to a file; dates whose bars overlap) is sorted whole.
fn sorted_by_end(df: DataFrame) -> PolarsResult<DataFrame> {
    let stable = SortMultipleOptions::default().with_maintain_order(true);
    let mut df = match ascending_end(&df)? {
        true => df,
        false => match sort_each_date(&df, &stable)? {
            Some(by_date) if ascending_end(&by_date)? => by_date,
            _ => return df.sort(["end"], stable),
        },
    };
    df.apply("end", |c| {
        let mut c = c.clone();
        c.set_sorted_flag(polars::series::IsSorted::Ascending);
        c
    })?;
    Ok(df)
}

/// Whether `end` has no nulls and never decreases.
fn ascending_end(df: &DataFrame) -> PolarsResult<bool> {
    let end = df.column("end")?.to_physical_repr();
    let end = end.i64()?;
    let mut last = i64::MIN;
    let mut values = end.downcast_iter().flat_map(|a| a.values().iter());
    Ok(end.null_count() == 0
        && values.all(|&v| {
            let up = last <= v;
            last = v;
            up
        }))
}

/// Each run of rows of one `date` sorted by `end` on its own; none when there is no `date` or
/// the runs are too short for that to pay.
fn sort_each_date(df: &DataFrame, stable: &SortMultipleOptions) -> PolarsResult<Option<DataFrame>> {
    let Ok(date) = df.column("date") else { return Ok(None) };
    let date = date.to_physical_repr();
    let mut starts = Vec::new();
    let mut last = None;
    for (i, d) in date.i32()?.iter().enumerate() {
        if i == 0 || d != last {
            starts.push(i);
        }
        last = d;
    }
    if starts.len() * 256 > df.height() {
        return Ok(None);
    }
    starts.push(df.height());
    let mut out: Option<DataFrame> = None;
    for run in starts.windows(2) {
        let part = df.slice(run[0] as i64, run[1] - run[0]).sort(["end"], stable.clone())?;
        match out.as_mut() {
            Some(o) => {
                o.vstack_mut(&part)?;
            }
            None => out = Some(part),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{expiry_instant, time_to_expiry};

    #[test]
    fn the_polars_expiry_matches_expiry_instant() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let epoch = d("1970-01-01");
        let expiries =
            ["2024-12-20", "2024-06-21", "2026-11-27", "2025-07-03", "2026-12-24", "2026-11-26", "2035-12-24"];
        let days: Vec<i32> = expiries.iter().map(|e| (d(e) - epoch).num_days() as i32).collect();
        let end: DateTime<Utc> = "2024-01-02T15:00:00Z".parse().unwrap();
        let df = df!("expiry" => days, "end" => vec![end.timestamp_micros(); expiries.len()]).unwrap();
        let lf = df.lazy().with_columns([col("expiry").cast(DataType::Date), col("end").cast(ts_type())]);
        let out = with_time_to_expiry(lf).unwrap().collect().unwrap();
        let at = out.column("expiry_at").unwrap().cast(&DataType::Int64).unwrap();
        let t = out.column("t").unwrap().f64().unwrap().clone();
        for (i, e) in expiries.iter().enumerate() {
            let want = expiry_instant(d(e));
            assert_eq!(at.i64().unwrap().get(i), Some(want.timestamp_micros()), "{e}");
            assert!((t.get(i).unwrap() - time_to_expiry(end, d(e))).abs() < 1e-12, "{e}");
        }
    }

    #[test]
    fn expiries_far_apart_and_null_expiries_are_read_too() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let days = |e: &str| (d(e) - d("1970-01-01")).num_days() as i32;
        // Dates 300 years apart in 4 rows: the per-date map instead of the table.
        let expiry = [Some(days("1900-12-21")), None, Some(days("2026-11-27")), Some(days("2200-06-20"))];
        let df = df!("expiry" => expiry).unwrap();
        let out = df.lazy().select([col("expiry").cast(DataType::Date).map(expiry_instants, |_, f| Ok(f.clone()))]);
        let out = out.collect().unwrap();
        let at = out.column("expiry").unwrap().cast(&DataType::Int64).unwrap();
        let want = |e: &str| Some(expiry_instant(d(e)).timestamp_micros());
        let got: Vec<Option<i64>> = at.i64().unwrap().iter().collect();
        assert_eq!(got, vec![want("1900-12-21"), None, want("2026-11-27"), want("2200-06-20")]);
    }

    /// `end` and `date` as a scan returns them: each date's rows by contract, then time.
    fn bars(ends: &[(i32, i64, i64)]) -> DataFrame {
        let (date, con, end): (Vec<i32>, Vec<i64>, Vec<i64>) = (
            ends.iter().map(|r| r.0).collect(),
            ends.iter().map(|r| r.1).collect(),
            ends.iter().map(|r| r.2).collect(),
        );
        let df = df!("date" => date, "con_id" => con, "end" => end).unwrap();
        df.lazy().with_columns([col("date").cast(DataType::Date), col("end").cast(ts_type())]).collect().unwrap()
    }

    fn column(df: &DataFrame, name: &str) -> Vec<i64> {
        df.column(name)
            .unwrap()
            .to_physical_repr()
            .cast(&DataType::Int64)
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect()
    }

    #[test]
    fn bars_are_sorted_by_end_date_by_date_or_whole() {
        // Two dates of 2 contracts × 300 bars: each date is sorted on its own, ties by contract.
        let rows: Vec<(i32, i64, i64)> = (0..2)
            .flat_map(|day| (0..2).flat_map(move |c| (0..300).map(move |m| (day, c, day as i64 * 1000 + m))))
            .collect();
        let out = sorted_by_end(bars(&rows)).unwrap();
        let (end, con) = (column(&out, "end"), column(&out, "con_id"));
        assert!((1..out.height()).all(|i| (end[i - 1], con[i - 1]) < (end[i], con[i])));
        assert!(out.column("end").unwrap().is_sorted_flag() == polars::series::IsSorted::Ascending);
        // The first date's last bars end after the second date's first: sorted whole.
        let mut late = rows.clone();
        late[299].2 = 1_500;
        let out = sorted_by_end(bars(&late)).unwrap();
        let end = column(&out, "end");
        assert!(end.windows(2).all(|w| w[0] <= w[1]) && end.len() == late.len());
        // Without `date` (projected away), or with short runs (daily bars): sorted whole.
        let short: Vec<(i32, i64, i64)> = (0..600).map(|i| (i % 300, i as i64 / 300, (i % 300) as i64)).collect();
        for df in [bars(&rows).drop("date").unwrap(), bars(&short)] {
            let n = df.height();
            let end = column(&sorted_by_end(df).unwrap(), "end");
            assert!(end.windows(2).all(|w| w[0] <= w[1]) && end.len() == n);
        }
    }

    #[test]
    fn weekly_bars_are_refused() {
        assert!(end_expr(BarSize::Week1).is_err());
        assert!(end_expr(BarSize::Day1).is_ok());
    }
}
