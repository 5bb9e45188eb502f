//! Request planning: the missing trading days of a series become the fewest historical requests
//! IB's duration table allows.
//!
//! IB's table (the finest bar size each duration serves) gives, per bar size, the most sessions
//! one request may span: `1 min` → 1 (`1 D`), `2 mins` → 2, `3`–`20 mins` → 7, `30 mins`–`8 hours`
//! → 31; bars of a day and longer take any span (`N D` up to 365 sessions, `N Y` beyond). A
//! greedy cover — start at the earliest missing session, span as far as allowed, end on the last
//! missing session inside — is the fewest requests for fixed-length intervals. A request may span
//! sessions that are already covered (they are merged, not duplicated); it never reaches a
//! session that is not over.
//!
//! `ADJUSTED_LAST` is the exception ([`plan_to_now`]): IB serves it only ending now (an empty
//! endDateTime; the `ibapi` crate refuses an end for it), so its one request reaches from the
//! first session wanted to the clock, and the sessions after the window (a session in progress)
//! are dropped from the answer by the job. Bars under a minute are not planned: IB serves them only six months
//! back and in pieces of a few hours, which the per-day manifest cannot account for.

use super::IbDuration;
use crate::calendar;
use crate::domain::BarSize;
use crate::domain::DateWindow;
use crate::error::{Error, Result};
use chrono::{DateTime, Months, NaiveDate, Utc};

/// One planned historical request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// The trading dates the request covers.
    pub window: DateWindow,
    /// The duration to send.
    pub duration: IbDuration,
    /// The end to send: the close of the window's last session.
    pub end: DateTime<Utc>,
}

/// The most sessions one request may span for an intraday bar size; `None` for day and longer.
pub fn max_sessions(bar: BarSize) -> Result<Option<u32>> {
    let secs = match bar.seconds() {
        None => return Ok(None),
        Some(s) => s,
    };
    Ok(Some(match secs {
        0..=59 => {
            let why =
                "bars under 1 minute are not backfilled: IB serves them only 6 months back, a few hours per request";
            return Err(Error::bad_input("bar size", bar.ib(), why));
        }
        60 => 1,
        120 => 2,
        180..=1200 => 7,
        _ => 31,
    }))
}

fn close_of(d: NaiveDate) -> DateTime<Utc> {
    calendar::session(d).map(|s| s.close).unwrap_or_else(|| d.and_hms_opt(21, 0, 0).unwrap_or_default().and_utc())
}

fn open_of(d: NaiveDate) -> DateTime<Utc> {
    calendar::session(d).map(|s| s.open).unwrap_or_else(|| d.and_hms_opt(13, 30, 0).unwrap_or_default().and_utc())
}

/// The fewest requests covering `missing` (sorted trading days) for bar size `bar`.
pub fn plan(missing: &[NaiveDate], bar: BarSize) -> Result<Vec<Planned>> {
    let Some(&first) = missing.first() else { return Ok(vec![]) };
    let last = *missing.last().unwrap_or(&first);
    match max_sessions(bar)? {
        None => Ok(vec![span_request(first, last)]),
        Some(limit) => Ok(greedy(missing, limit)),
    }
}

/// One request for every session from `first` to `last`: `N D` when that is at most 365
/// sessions, else the fewest years reaching back to `first`'s open.
fn span_request(first: NaiveDate, last: NaiveDate) -> Planned {
    let sessions = calendar::trading_days(first, last).len() as u32;
    let end = close_of(last);
    let window = DateWindow { start: first, end: last };
    if sessions <= 365 {
        return Planned { window, duration: IbDuration::Days(sessions.max(1)), end };
    }
    let open = open_of(first);
    let years =
        (1..=40u32).find(|y| end.checked_sub_months(Months::new(12 * y)).is_some_and(|t| t <= open)).unwrap_or(40);
    Planned { window, duration: IbDuration::Years(years), end }
}

/// The one request of an `ADJUSTED_LAST` series ending `now` (sent without an end date; module
/// docs) whose answer holds every session of `window`: the smallest `N D` (N sessions counted
/// back from the one in progress or last closed at `now`, up to 365) or else `N Y` reaching back
/// to the open of `window.start`. `end` is `now`, the moment the answer is as of.
pub fn plan_to_now(window: DateWindow, now: DateTime<Utc>) -> Result<Planned> {
    let open = open_of(window.start);
    if open >= now {
        let why = format!("its first session has not opened at {now}; nothing to ask yet");
        return Err(Error::bad_input("ADJUSTED_LAST window", window.start.to_string(), why));
    }
    let today = calendar::trading_date(now);
    let sessions = calendar::trading_days(window.start, today).into_iter().filter(|d| open_of(*d) < now).count() as u32;
    if sessions <= 365 {
        return Ok(Planned { window, duration: IbDuration::Days(sessions.max(1)), end: now });
    }
    let years =
        (1..=40u32).find(|y| now.checked_sub_months(Months::new(12 * y)).is_some_and(|t| t <= open)).unwrap_or(40);
    Ok(Planned { window, duration: IbDuration::Years(years), end: now })
}

fn greedy(missing: &[NaiveDate], limit: u32) -> Vec<Planned> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < missing.len() {
        let start = missing[i];
        let mut reach = start;
        for _ in 1..limit {
            reach = calendar::next_trading_day(reach);
        }
        let mut j = i;
        while j + 1 < missing.len() && missing[j + 1] <= reach {
            j += 1;
        }
        let end_day = missing[j];
        let sessions = calendar::trading_days(start, end_day).len() as u32;
        out.push(Planned {
            window: DateWindow { start, end: end_day },
            duration: IbDuration::Days(sessions),
            end: close_of(end_day),
        });
        i = j + 1;
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
    fn minute_bars_take_one_request_per_session() {
        let days = calendar::trading_days(d("2024-11-18"), d("2024-11-22"));
        let p = plan(&days, BarSize::Min1).unwrap();
        assert_eq!(p.len(), 5);
        assert!(p.iter().all(|r| r.duration == IbDuration::Days(1) && r.window.start == r.window.end));
        assert_eq!(p[4].end.to_rfc3339(), "2024-11-22T21:00:00+00:00");
    }

    #[test]
    fn five_minute_bars_span_seven_sessions_and_bridge_small_holes() {
        let mut days = calendar::trading_days(d("2024-11-01"), d("2024-11-29"));
        days.retain(|x| *x != d("2024-11-06"));
        let p = plan(&days, BarSize::Min5).unwrap();
        // 19 missing sessions from Nov 1 to Nov 29 (20 trading days, one covered): ceil(20 / 7).
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].window, DateWindow { start: d("2024-11-01"), end: d("2024-11-11") });
        assert_eq!(p[0].duration, IbDuration::Days(7));
    }

    #[test]
    fn daily_bars_are_one_request() {
        let days = calendar::trading_days(d("2024-01-02"), d("2024-06-28"));
        let p = plan(&days, BarSize::Day1).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].duration, IbDuration::Days(days.len() as u32));
        let decade = [d("2015-01-02"), d("2024-12-31")];
        let p = plan(&decade, BarSize::Day1).unwrap();
        assert_eq!(p[0].duration, IbDuration::Years(10));
    }

    #[test]
    fn adjusted_last_reaches_from_the_first_session_to_now() {
        // Friday 2026-11-20 after the close: 2026-11-16..20 is five sessions.
        let now: DateTime<Utc> = "2026-11-20T21:30:00Z".parse().unwrap();
        let w = DateWindow { start: d("2026-11-16"), end: d("2026-11-20") };
        let p = plan_to_now(w, now).unwrap();
        assert_eq!((p.duration, p.end, p.window), (IbDuration::Days(5), now, w));
        // During Monday's session the one in progress counts too (its bar is dropped by the job).
        let monday: DateTime<Utc> = "2026-11-23T15:00:00Z".parse().unwrap();
        assert_eq!(plan_to_now(w, monday).unwrap().duration, IbDuration::Days(6));
        // Over 365 sessions: the fewest years reaching back to the first open.
        let long = DateWindow { start: d("2024-11-20"), end: d("2026-11-20") };
        assert_eq!(plan_to_now(long, now).unwrap().duration, IbDuration::Years(3));
        let two = DateWindow { start: d("2024-11-21"), end: d("2026-11-20") };
        assert_eq!(plan_to_now(two, now).unwrap().duration, IbDuration::Years(2));
        // A window starting after now is refused, not sent.
        assert!(plan_to_now(DateWindow { start: d("2026-11-23"), end: d("2026-11-23") }, now).is_err());
    }

    #[test]
    fn seconds_bars_are_refused() {
        assert!(plan(&[d("2024-11-22")], BarSize::Sec5).unwrap_err().to_string().contains("5 secs"));
    }
}
