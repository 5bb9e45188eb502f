//! The NYSE trading calendar.
//!
//! STUB on the `sim` branch so the simulator compiles before the lead's calendar lands in main:
//! weekends only, no holidays. Merging main replaces this file wholesale.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};

/// The exchange's time zone (New York).
pub const EXCHANGE_TZ: chrono_tz::Tz = chrono_tz::America::New_York;

/// One regular trading session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// The trading date.
    pub date: NaiveDate,
    /// Session open.
    pub open: DateTime<Utc>,
    /// Session close.
    pub close: DateTime<Utc>,
    /// Whether the session closes early (13:00).
    pub early_close: bool,
}

/// Whether `d` is a trading day.
pub fn is_trading_day(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The regular session of `d`, if it trades.
pub fn session(d: NaiveDate) -> Option<Session> {
    if !is_trading_day(d) {
        return None;
    }
    let at = |h, m| {
        EXCHANGE_TZ
            .from_local_datetime(&d.and_hms_opt(h, m, 0)?)
            .single()
            .map(|t| t.with_timezone(&Utc))
    };
    Some(Session {
        date: d,
        open: at(9, 30)?,
        close: at(16, 0)?,
        early_close: false,
    })
}

/// Trading days in `[from, to]`.
pub fn trading_days(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    from.iter_days()
        .take_while(|d| *d <= to)
        .filter(|d| is_trading_day(*d))
        .collect()
}

/// The first trading day strictly after `d`.
pub fn next_trading_day(d: NaiveDate) -> NaiveDate {
    let mut x = d + Duration::days(1);
    while !is_trading_day(x) {
        x += Duration::days(1);
    }
    x
}

/// The last trading day strictly before `d`.
pub fn prev_trading_day(d: NaiveDate) -> NaiveDate {
    let mut x = d - Duration::days(1);
    while !is_trading_day(x) {
        x -= Duration::days(1);
    }
    x
}

/// The New York date of an instant.
pub fn trading_date(ts: DateTime<Utc>) -> NaiveDate {
    ts.with_timezone(&EXCHANGE_TZ).date_naive()
}
