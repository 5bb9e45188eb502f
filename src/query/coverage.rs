//! What the lake holds and what it still lacks: present dates, coverage, missing windows.
//!
//! Coverage comes from the manifest, not from the rows: a window answered empty (a holiday, an
//! option that never traded) is covered, a session that was not over when asked is not, and an
//! error covers nothing. Missing windows are the trading days of the range left uncovered, with
//! consecutive trading days (Friday and the next Monday included) merged into one window.

use super::{collect, ScanFilter};
use crate::datasets::Dataset;
use crate::domain::window::missing_windows_from;
use crate::domain::{DateWindow, MissingWindow};
use crate::domain::{Series, Symbol};
use crate::error::{Error, Result};
use crate::lake::manifest::SeriesKey;
use crate::lake::Lake;
use crate::query::Scans;
use chrono::NaiveDate;
use polars::prelude::*;

/// A series of one symbol whose coverage is asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesSpec {
    /// Dataset (a bar dataset).
    pub dataset: Dataset,
    /// The symbol (the underlying, for options).
    pub symbol: Symbol,
    /// The option contract, for option bars.
    pub con_id: Option<i64>,
    /// Bar size and what-to-show.
    pub series: Series,
}

impl SeriesSpec {
    /// The manifest key of this series.
    pub fn key(&self) -> SeriesKey {
        SeriesKey { dataset: self.dataset, con_id: self.con_id, series: Some(self.series), step_secs: None }
    }
}

fn check_range(from: NaiveDate, to: NaiveDate) -> Result<()> {
    if from > to {
        return Err(Error::bad_input("date range", format!("{from}..{to}"), "--from is after --to"));
    }
    Ok(())
}

/// What a lake holds and lacks of a series: coverage, missing windows, present dates.
#[derive(Clone, Copy)]
pub struct Coverage<'a> {
    lake: &'a Lake,
}

impl<'a> Coverage<'a> {
    /// The reader of `lake`.
    pub fn new(lake: &'a Lake) -> Self {
        Coverage { lake }
    }
}

impl<'a> Coverage<'a> {
    /// Covered windows of a series (from the manifest), clipped to `[from, to]`.
    pub async fn coverage(&self, spec: &SeriesSpec, from: NaiveDate, to: NaiveDate) -> Result<Vec<DateWindow>> {
        check_range(from, to)?;
        let m = self.lake.manifest(&spec.symbol).await?;
        Ok(m.covered(&spec.key())
            .into_iter()
            .filter(|w| w.end >= from && w.start <= to)
            .map(|w| DateWindow { start: w.start.max(from), end: w.end.min(to) })
            .collect())
    }

    /// The trading days of `[from, to]` not covered by a final answer, as merged windows.
    pub async fn missing_windows(
        &self,
        spec: &SeriesSpec,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<MissingWindow>> {
        let covered = self.coverage(spec, from, to).await?;
        Ok(missing_windows_from(&covered, from, to))
    }

    /// The trading dates in `[from, to]` that have at least one row of the series (from the data).
    pub async fn present_dates(&self, spec: &SeriesSpec, from: NaiveDate, to: NaiveDate) -> Result<Vec<NaiveDate>> {
        check_range(from, to)?;
        let filter = ScanFilter {
            symbols: Some(vec![spec.symbol.clone()]),
            series: Some(spec.series),
            from: Some(from),
            to: Some(to),
        };
        let mut lf = Scans::new(self.lake).scan(spec.dataset, &filter).await?;
        if let Some(c) = spec.con_id {
            lf = lf.filter(col("con_id").eq(lit(c)));
        }
        let df =
            collect(lf.select([col("date")]).unique(None, UniqueKeepStrategy::Any).sort(["date"], Default::default()))
                .await?;
        dates_of(&df, "date")
    }
}

/// The values of a Date column.
pub fn dates_of(df: &DataFrame, name: &str) -> Result<Vec<NaiveDate>> {
    let ca = df.column(name)?.date()?.clone();
    Ok(ca.physical().iter().flatten().map(crate::calendar::date_of_days).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn weekends_and_holidays_do_not_split_windows() {
        let covered = [DateWindow::new(d("2024-12-02"), d("2024-12-20")).unwrap()];
        let miss = missing_windows_from(&covered, d("2024-11-25"), d("2025-01-03"));
        assert_eq!(
            miss,
            vec![
                MissingWindow { start: d("2024-11-25"), end: d("2024-11-29"), trading_days: 4 },
                MissingWindow { start: d("2024-12-23"), end: d("2025-01-03"), trading_days: 8 },
            ]
        );
    }
}
