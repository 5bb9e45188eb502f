//! The NYSE trading calendar, computed by rule (correct for 2000–2035).
//!
//! A trading day is a weekday that is not a full holiday. Holidays follow NYSE Rule 7.2:
//! a holiday on a Saturday is observed the Friday before, one on a Sunday the Monday after —
//! except New Year's Day on a Saturday, which is not observed at all (the Friday is the last
//! trading day of the old year). Early closes (13:00 ET) fall on the day after Thanksgiving,
//! on Christmas Eve and on July 3 when those are weekdays that are not themselves holidays.
//! The one-off closures of the period (9/11, state funerals, Hurricane Sandy) are listed.

use crate::error::{Error, Result};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};

/// The exchange's time zone: every `date` partition is a trading date in this zone.
pub const EXCHANGE_TZ: chrono_tz::Tz = chrono_tz::America::New_York;

/// One regular trading session, with its bounds in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// The trading date (New York).
    pub date: NaiveDate,
    /// 09:30 New York time, in UTC.
    pub open: DateTime<Utc>,
    /// 16:00 New York time (13:00 on an early close), in UTC.
    pub close: DateTime<Utc>,
    /// True when the exchange closes at 13:00.
    pub early_close: bool,
}

/// Closures that no rule predicts.
const SPECIAL_CLOSURES: [(i32, u32, u32); 10] = [
    (2001, 9, 11), // September 11 attacks, four days
    (2001, 9, 12),
    (2001, 9, 13),
    (2001, 9, 14),
    (2004, 6, 11),  // President Reagan's funeral
    (2007, 1, 2),   // President Ford's funeral
    (2012, 10, 29), // Hurricane Sandy, two days
    (2012, 10, 30),
    (2018, 12, 5), // President G. H. W. Bush's funeral
    (2025, 1, 9),  // President Carter's funeral
];

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    // Callers pass only valid calendar dates built from rules below.
    NaiveDate::from_ymd_opt(y, m, d).expect("valid calendar date")
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The n-th (1-based) `wd` of a month.
fn nth_weekday(y: i32, m: u32, wd: Weekday, n: u32) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(y, m, wd, n as u8).expect("n-th weekday exists")
}

fn last_weekday(y: i32, m: u32, wd: Weekday) -> NaiveDate {
    let first_next = if m == 12 { ymd(y + 1, 1, 1) } else { ymd(y, m + 1, 1) };
    let mut d = first_next - Duration::days(1);
    while d.weekday() != wd {
        d -= Duration::days(1);
    }
    d
}

/// Easter Sunday (anonymous Gregorian algorithm).
fn easter(y: i32) -> NaiveDate {
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    ymd(y, month as u32, day as u32)
}

/// Rule 7.2 observance: Saturday → Friday, Sunday → Monday.
fn observed(d: NaiveDate) -> NaiveDate {
    match d.weekday() {
        Weekday::Sat => d - Duration::days(1),
        Weekday::Sun => d + Duration::days(1),
        _ => d,
    }
}

/// The full holidays observed in calendar year `y` (each a weekday of year `y`).
fn holidays(y: i32) -> Vec<NaiveDate> {
    let mut out = Vec::with_capacity(10);
    let new_year = ymd(y, 1, 1);
    // A Saturday New Year's Day is not observed on the Friday before.
    if new_year.weekday() != Weekday::Sat {
        out.push(observed(new_year));
    }
    if y >= 1998 {
        out.push(nth_weekday(y, 1, Weekday::Mon, 3)); // Martin Luther King Jr. Day
    }
    out.push(nth_weekday(y, 2, Weekday::Mon, 3)); // Washington's Birthday
    out.push(easter(y) - Duration::days(2)); // Good Friday
    out.push(last_weekday(y, 5, Weekday::Mon)); // Memorial Day
    if y >= 2022 {
        out.push(observed(ymd(y, 6, 19))); // Juneteenth
    }
    out.push(observed(ymd(y, 7, 4)));
    out.push(nth_weekday(y, 9, Weekday::Mon, 1)); // Labor Day
    out.push(nth_weekday(y, 11, Weekday::Thu, 4)); // Thanksgiving
    out.push(observed(ymd(y, 12, 25)));
    out
}

/// True when the exchange is closed all day on a weekday `d`.
pub fn is_holiday(d: NaiveDate) -> bool {
    let special = SPECIAL_CLOSURES.iter().any(|&(y, m, dd)| d.year() == y && d.month() == m && d.day() == dd);
    special || holidays(d.year()).contains(&d)
}

/// True when NYSE holds a regular session on `d`.
pub fn is_trading_day(d: NaiveDate) -> bool {
    !is_weekend(d) && !is_holiday(d)
}

/// True when `d` is a trading day on which the exchange closes at 13:00 New York time.
pub fn is_early_close(d: NaiveDate) -> bool {
    if !is_trading_day(d) {
        return false;
    }
    let y = d.year();
    let day_after_thanksgiving = nth_weekday(y, 11, Weekday::Thu, 4) + Duration::days(1);
    let christmas_eve = ymd(y, 12, 24);
    let july_3 = ymd(y, 7, 3);
    // July 3 closes early only when Independence Day itself is a weekday after it;
    // with July 4 on a Monday (2011, 2016, 2022) the Friday before is a full session.
    let july_3_early = d == july_3 && d.weekday() != Weekday::Fri;
    // 2002 is the one year of the period with an early close on July 5 instead.
    let july_5_2002 = d == ymd(2002, 7, 5);
    d == day_after_thanksgiving || d == christmas_eve || july_3_early || july_5_2002
}

fn new_york(d: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    let local = d.and_time(NaiveTime::from_hms_opt(h, m, 0).expect("valid time"));
    // 09:30, 13:00 and 16:00 are never inside a DST gap or overlap (those fall at 02:00).
    EXCHANGE_TZ.from_local_datetime(&local).single().expect("unambiguous market hour").with_timezone(&Utc)
}

/// The regular session of `d`, or `None` when the exchange is closed.
pub fn session(d: NaiveDate) -> Option<Session> {
    if !is_trading_day(d) {
        return None;
    }
    let early_close = is_early_close(d);
    let close = if early_close { new_york(d, 13, 0) } else { new_york(d, 16, 0) };
    Some(Session { date: d, open: new_york(d, 9, 30), close, early_close })
}

/// The trading days in `[from, to]`, in order.
pub fn trading_days(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    from.iter_days().take_while(|d| *d <= to).filter(|d| is_trading_day(*d)).collect()
}

/// The first trading day strictly after `d`.
pub fn next_trading_day(d: NaiveDate) -> NaiveDate {
    let mut n = d + Duration::days(1);
    while !is_trading_day(n) {
        n += Duration::days(1);
    }
    n
}

/// The last trading day strictly before `d`.
pub fn prev_trading_day(d: NaiveDate) -> NaiveDate {
    let mut p = d - Duration::days(1);
    while !is_trading_day(p) {
        p -= Duration::days(1);
    }
    p
}

/// The New York calendar date of an instant: the `date` partition of a bar stamped `ts`.
pub fn trading_date(ts: DateTime<Utc>) -> NaiveDate {
    ts.with_timezone(&EXCHANGE_TZ).date_naive()
}

/// True when the session of `d` is over at `now` (its answer is final).
pub fn session_over(d: NaiveDate, now: DateTime<Utc>) -> bool {
    match session(d) {
        Some(s) => now >= s.close,
        // A closed day is final once the day has begun in New York.
        None => trading_date(now) >= d,
    }
}

/// 1970-01-01: day 0 of Arrow's and polars' `date32`.
pub const EPOCH_DATE: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a date");

/// The date `days` after 1970-01-01, as Arrow and polars store dates (`date32`); beyond chrono's
/// range (±262,000 years, a corrupt file's values) the first or last date it has.
pub fn date_of_days(days: i32) -> NaiveDate {
    let far = if days < 0 { NaiveDate::MIN } else { NaiveDate::MAX };
    EPOCH_DATE.checked_add_signed(Duration::days(days as i64)).unwrap_or(far)
}

/// Days since 1970-01-01 of a date (`date32`).
pub fn days_of(d: NaiveDate) -> i32 {
    (d - EPOCH_DATE).num_days() as i32
}

// --- Instants: when options expire, how users write a moment, which session is the last over.

/// Seconds in the ACT/365 year used for every time to expiry.
pub const YEAR_SECONDS: f64 = 365.0 * 86_400.0;

/// The instant an option expiring on `expiry` is taken to expire: the close of its NYSE session,
/// 16:00 New York, or 13:00 on an early-close day (the day after Thanksgiving, Christmas Eve,
/// July 3); 16:00 New York on a date with no session. Times to expiry are measured to this
/// instant, in ACT/365 years; `query::pit::with_time_to_expiry` computes the same in polars.
pub fn expiry_instant(expiry: NaiveDate) -> DateTime<Utc> {
    if let Some(s) = session(expiry) {
        return s.close;
    }
    let local = expiry.and_hms_opt(16, 0, 0).unwrap_or_default();
    chrono_tz::America::New_York
        .from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&local))
}

/// The early-close trading dates of the calendar's years (2000–2035), as days since 1970.
pub fn early_close_days() -> &'static [i32] {
    static DAYS: std::sync::OnceLock<Vec<i32>> = std::sync::OnceLock::new();
    DAYS.get_or_init(|| {
        let (first, last) = (NaiveDate::from_ymd_opt(2000, 1, 1), NaiveDate::from_ymd_opt(2035, 12, 31));
        first
            .into_iter()
            .flat_map(|f| f.iter_days())
            .take_while(|d| Some(*d) <= last)
            .filter(|d| is_early_close(*d))
            .map(days_of)
            .collect()
    })
}

/// Reads an instant as users write it: RFC 3339 (`2024-11-22T15:30:00Z`, any offset), a New York
/// wall-clock time (`2024-11-22 10:30`, `2024-11-22T10:30:00`: the exchange's clock, which is how
/// quants speak of a moment), or a date alone, meaning that date's close (16:00 New York, 13:00
/// on an early close). The CLI's `--at` and the Python package read instants with this.
pub fn parse_instant(s: &str) -> Result<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(expiry_instant(d));
    }
    let formats = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"];
    let naive = formats.iter().find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok());
    let why = "use RFC 3339 (2024-11-22T15:30:00Z), New York time (2024-11-22 10:30) or a date (its close)";
    let naive = naive.ok_or_else(|| Error::bad_input("timestamp", s, why))?;
    chrono_tz::America::New_York.from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc)).ok_or_else(|| {
        Error::bad_input("timestamp", s, "ambiguous or skipped at a daylight-saving change; give an offset")
    })
}

/// Years from `from` to the expiry instant of `expiry` (negative once expired).
pub fn time_to_expiry(from: DateTime<Utc>, expiry: NaiveDate) -> f64 {
    (expiry_instant(expiry) - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6 / YEAR_SECONDS
}

/// The last trading date whose session is over at `now`.
pub fn last_finished_session(now: DateTime<Utc>) -> NaiveDate {
    let today = trading_date(now);
    if session_over(today, now) && is_trading_day(today) {
        today
    } else {
        prev_trading_day(today)
    }
}

/// How far back [`session_time_before`] looks, in calendar days.
const SESSION_TIME_LOOKBACK_DAYS: i64 = 120;

/// The instant `dur` of regular-session time before `at`: nights, weekends and holidays do not
/// count, so a quote's age is the market time it has missed. From inside a session it counts
/// back from `at`; from outside, from the last close before `at`. Looks back at most
/// 120 calendar days (then answers the earliest open it reached).
pub fn session_time_before(at: DateTime<Utc>, dur: Duration) -> DateTime<Utc> {
    if dur <= Duration::zero() {
        return at;
    }
    let mut remaining = dur;
    let mut earliest = at;
    let first = trading_date(at);
    for back in 0..=SESSION_TIME_LOOKBACK_DAYS {
        let Some(s) = session(first - Duration::days(back)) else { continue };
        if s.open >= at {
            continue;
        }
        let end = s.close.min(at);
        if end - s.open >= remaining {
            return end - remaining;
        }
        remaining -= end - s.open;
        earliest = s.open;
    }
    earliest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn trading_day_counts_match_published_nyse_years() {
        // NYSE published trading-day counts.
        for (year, days) in [(2001, 248), (2012, 250), (2016, 252), (2020, 253), (2022, 251), (2023, 250), (2024, 252)]
        {
            let n = trading_days(ymd(year, 1, 1), ymd(year, 12, 31)).len();
            assert_eq!(n, days, "trading days in {year}");
        }
    }

    #[test]
    fn known_holidays_and_observances() {
        for h in [
            "2021-12-24",
            "2022-01-17",
            "2022-06-20",
            "2023-04-07",
            "2026-07-03",
            "2027-12-24",
            "2012-10-29",
            "2025-01-09",
            "2021-07-05",
            "2022-12-26",
        ] {
            assert!(!is_trading_day(d(h)), "{h} is a holiday");
        }
        // New Year's Day 2022 fell on a Saturday: Friday 2021-12-31 traded.
        assert!(is_trading_day(d("2021-12-31")));
        assert!(is_trading_day(d("2021-06-18")), "Juneteenth began in 2022");
    }

    #[test]
    fn early_closes() {
        for e in ["2024-07-03", "2024-11-29", "2024-12-24", "2019-07-03", "2002-07-05", "2026-11-27"] {
            assert!(is_early_close(d(e)), "{e} closes early");
        }
        for f in ["2022-07-01", "2021-12-23", "2020-07-02"] {
            assert!(!is_early_close(d(f)), "{f} is a full session");
        }
        let s = session(d("2024-11-29")).unwrap();
        assert_eq!(s.close.to_rfc3339(), "2024-11-29T18:00:00+00:00");
    }

    #[test]
    fn sessions_follow_daylight_saving() {
        let winter = session(d("2024-01-02")).unwrap();
        assert_eq!(winter.open.to_rfc3339(), "2024-01-02T14:30:00+00:00");
        let summer = session(d("2024-07-01")).unwrap();
        assert_eq!(summer.open.to_rfc3339(), "2024-07-01T13:30:00+00:00");
        assert_eq!(summer.close.to_rfc3339(), "2024-07-01T20:00:00+00:00");
    }

    #[test]
    fn neighbours_skip_closed_days() {
        assert_eq!(next_trading_day(d("2024-12-24")), d("2024-12-26"));
        assert_eq!(prev_trading_day(d("2024-01-02")), d("2023-12-29"));
        assert_eq!(trading_date("2024-03-01T02:00:00Z".parse().unwrap()), d("2024-02-29"));
    }

    #[test]
    fn expiry_is_the_new_york_close() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(expiry_instant(d("2024-12-20")).to_rfc3339(), "2024-12-20T21:00:00+00:00");
        assert_eq!(expiry_instant(d("2024-06-21")).to_rfc3339(), "2024-06-21T20:00:00+00:00");
        let from: DateTime<Utc> = "2024-12-19T21:00:00Z".parse().unwrap();
        assert!((time_to_expiry(from, d("2024-12-20")) - 1.0 / 365.0).abs() < 1e-15);
        // Early closes: 13:00 New York (the day after Thanksgiving in EST, July 3 in EDT).
        assert_eq!(expiry_instant(d("2026-11-27")).to_rfc3339(), "2026-11-27T18:00:00+00:00");
        assert_eq!(expiry_instant(d("2025-07-03")).to_rfc3339(), "2025-07-03T17:00:00+00:00");
        // No session (a holiday): 16:00 New York.
        assert_eq!(expiry_instant(d("2026-11-26")).to_rfc3339(), "2026-11-26T21:00:00+00:00");
    }

    #[test]
    fn session_time_skips_nights_weekends_and_holidays() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let min = Duration::minutes;
        // Inside a session: plain subtraction.
        assert_eq!(session_time_before(t("2024-11-22T15:30:00Z"), min(5)), t("2024-11-22T15:25:00Z"));
        // Overnight (03:20 New York the next Monday): five minutes before Friday's 16:00 close.
        assert_eq!(session_time_before(t("2024-11-25T08:20:00Z"), min(5)), t("2024-11-22T20:55:00Z"));
        // Across an open: 10 minutes after Monday's open, 15 minutes back reach Friday's close.
        assert_eq!(session_time_before(t("2024-11-25T14:40:00Z"), min(15)), t("2024-11-22T20:55:00Z"));
        // Across Thanksgiving to Wednesday, and the early close of the day after (13:00).
        assert_eq!(session_time_before(t("2024-11-29T14:35:00Z"), min(10)), t("2024-11-27T20:55:00Z"));
        assert_eq!(session_time_before(t("2024-12-02T14:30:00Z"), min(1)), t("2024-11-29T17:59:00Z"));
        assert_eq!(session_time_before(t("2024-11-22T15:30:00Z"), Duration::zero()), t("2024-11-22T15:30:00Z"));
    }
}
