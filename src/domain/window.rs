//! Windows of trading dates: what a request covers, what a series still lacks.

use crate::calendar;
use crate::error::{Error, Result};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// An inclusive range of trading dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DateWindow {
    /// First date.
    pub start: NaiveDate,
    /// Last date (inclusive).
    pub end: NaiveDate,
}

impl DateWindow {
    /// A window; `start` must not be after `end`.
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<Self> {
        if start > end {
            return Err(Error::bad_input("date window", format!("{start}..{end}"), "start is after end"));
        }
        Ok(DateWindow { start, end })
    }

    /// The trading days in the window.
    pub fn trading_days(&self) -> Vec<NaiveDate> {
        calendar::trading_days(self.start, self.end)
    }
}

/// The last date of `w` whose session was over at `at`.
pub fn final_through(w: DateWindow, at: DateTime<Utc>) -> Option<NaiveDate> {
    let mut d = w.end.min(calendar::trading_date(at));
    while d >= w.start {
        if calendar::session_over(d, at) {
            return Some(d);
        }
        d = d.pred_opt()?;
    }
    None
}

/// Sorted, disjoint, merged windows: windows with no trading day between them merge.
pub fn union(mut spans: Vec<DateWindow>) -> Vec<DateWindow> {
    spans.sort();
    let mut out: Vec<DateWindow> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(last) if s.start <= calendar::next_trading_day(last.end) => last.end = last.end.max(s.end),
            _ => out.push(s),
        }
    }
    out
}

/// A run of consecutive trading days that no final answer covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MissingWindow {
    /// First missing trading day.
    pub start: NaiveDate,
    /// Last missing trading day (inclusive).
    pub end: NaiveDate,
    /// Trading days in the window.
    pub trading_days: usize,
}

/// Trading days (ascending) merged into windows of consecutive trading days.
pub fn windows_of_days(days: &[NaiveDate]) -> Vec<MissingWindow> {
    let mut out: Vec<MissingWindow> = Vec::new();
    for &d in days {
        match out.last_mut() {
            Some(w) if calendar::next_trading_day(w.end) == d => {
                w.end = d;
                w.trading_days += 1;
            }
            _ => out.push(MissingWindow { start: d, end: d, trading_days: 1 }),
        }
    }
    out
}

/// The trading days of `[from, to]` outside `covered`, merged into windows.
pub fn missing_windows_from(covered: &[DateWindow], from: NaiveDate, to: NaiveDate) -> Vec<MissingWindow> {
    let mut out: Vec<MissingWindow> = Vec::new();
    let mut cov = covered.iter().peekable();
    let mut prev_missing: Option<NaiveDate> = None;
    for d in calendar::trading_days(from, to) {
        while cov.peek().is_some_and(|w| w.end < d) {
            cov.next();
        }
        let is_covered = cov.peek().is_some_and(|w| w.start <= d && d <= w.end);
        if is_covered {
            prev_missing = None;
            continue;
        }
        match (out.last_mut(), prev_missing) {
            (Some(w), Some(_)) => {
                w.end = d;
                w.trading_days += 1;
            }
            _ => out.push(MissingWindow { start: d, end: d, trading_days: 1 }),
        }
        prev_missing = Some(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn consecutive_trading_days_merge_across_a_weekend() {
        let w = windows_of_days(&[d("2026-11-20"), d("2026-11-23"), d("2026-11-25")]);
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].start, w[0].end, w[0].trading_days), (d("2026-11-20"), d("2026-11-23"), 2));
        assert_eq!((w[1].start, w[1].trading_days), (d("2026-11-25"), 1));
    }

    #[test]
    fn union_merges_overlapping_and_adjacent() {
        let w = |a: &str, b: &str| DateWindow::new(d(a), d(b)).unwrap();
        let u =
            union(vec![w("2024-01-10", "2024-01-12"), w("2024-01-01", "2024-01-05"), w("2024-01-06", "2024-01-08")]);
        assert_eq!(u, vec![w("2024-01-01", "2024-01-08"), w("2024-01-10", "2024-01-12")]);
    }

    #[test]
    fn unfinished_session_is_not_final() {
        let w = DateWindow::new(d("2024-11-18"), d("2024-11-22")).unwrap();
        let during = "2024-11-22T18:00:00Z".parse().unwrap(); // 13:00 New York, session open
        assert_eq!(final_through(w, during), Some(d("2024-11-21")));
        let after = "2024-11-22T21:01:00Z".parse().unwrap();
        assert_eq!(final_through(w, after), Some(d("2024-11-22")));
        let before = "2024-11-18T10:00:00Z".parse().unwrap();
        assert_eq!(final_through(w, before), None);
    }
}
