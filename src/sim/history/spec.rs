//! What a historical request asks for: bar size, duration, what-to-show, end; and IB's table of
//! which duration may be asked with which bar size.

use chrono::{DateTime, Months, NaiveDateTime, TimeZone, Utc};

use crate::calendar::{self, EXCHANGE_TZ};

/// The price series a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum What {
    /// Trades (with volume, VWAP and count).
    Trades,
    /// Bid/ask midpoint.
    Midpoint,
    /// Bid.
    Bid,
    /// Ask.
    Ask,
    /// IB's BID_ASK: time-average bid, max ask, min bid, time-average ask. Paced as two requests.
    BidAsk,
}

impl What {
    /// Parses IB's spelling.
    pub fn parse(s: &str) -> Option<What> {
        Some(match s.to_ascii_uppercase().as_str() {
            "TRADES" => What::Trades,
            "MIDPOINT" => What::Midpoint,
            "BID" => What::Bid,
            "ASK" => What::Ask,
            "BID_ASK" => What::BidAsk,
            _ => return None,
        })
    }
    /// IB's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            What::Trades => "TRADES",
            What::Midpoint => "MIDPOINT",
            What::Bid => "BID",
            What::Ask => "ASK",
            What::BidAsk => "BID_ASK",
        }
    }
    /// IB's text in the "no data" message (`… SPY@SMART Trades`).
    pub fn title(self) -> &'static str {
        match self {
            What::Trades => "Trades",
            What::Midpoint => "Midpoint",
            What::Bid => "Bid",
            What::Ask => "Ask",
            What::BidAsk => "Bid_Ask",
        }
    }
}

/// A bar size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarSize {
    /// Bars of this many seconds (1 s to 8 hours).
    Seconds(u32),
    /// One session.
    Day,
    /// One calendar week.
    Week,
    /// One calendar month.
    Month,
}

impl BarSize {
    /// Parses IB's spellings (`1 secs`, `5 mins`, `1 hour`, `1 day`, `1 week`, `1 month`).
    pub fn parse(s: &str) -> Option<BarSize> {
        let (n, unit) = s.trim().split_once(' ')?;
        let n: u32 = n.parse().ok()?;
        let size = match unit.trim().to_ascii_lowercase().as_str() {
            "sec" | "secs" if [1, 5, 10, 15, 30].contains(&n) => BarSize::Seconds(n),
            "min" | "mins" if [1, 2, 3, 4, 5, 10, 15, 20, 30].contains(&n) => BarSize::Seconds(n * 60),
            "hour" | "hours" if [1, 2, 3, 4, 8].contains(&n) => BarSize::Seconds(n * 3600),
            "day" | "days" if n == 1 => BarSize::Day,
            "week" | "weeks" if n == 1 => BarSize::Week,
            "month" | "months" if n == 1 => BarSize::Month,
            _ => return None,
        };
        Some(size)
    }

    /// Length in seconds for comparisons (a session counts as a day).
    pub fn span(self) -> u64 {
        match self {
            BarSize::Seconds(s) => s as u64,
            BarSize::Day => 86_400,
            BarSize::Week => 7 * 86_400,
            BarSize::Month => 31 * 86_400,
        }
    }
}

/// A duration unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds of wall time.
    S,
    /// Sessions.
    D,
    /// Weeks.
    W,
    /// Months.
    M,
    /// Years.
    Y,
}

/// A duration such as `3600 S` or `1 Y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration {
    /// How many units.
    pub n: u32,
    /// Which unit.
    pub unit: Unit,
}

impl Duration {
    /// Parses IB's spelling.
    pub fn parse(s: &str) -> Option<Duration> {
        let (n, unit) = s.trim().split_once(' ')?;
        let n: u32 = n.trim().parse().ok().filter(|n| *n > 0)?;
        // IB's limits: S up to one day, D up to 365; W, M and Y kept within the simulated
        // history (2000 onwards), which also bounds the work a request can ask for.
        let (unit, max) = match unit.trim().to_ascii_uppercase().as_str() {
            "S" => (Unit::S, 86_400),
            "D" => (Unit::D, 365),
            "W" => (Unit::W, 52 * 40),
            "M" => (Unit::M, 12 * 40),
            "Y" => (Unit::Y, 40),
            _ => return None,
        };
        (n <= max).then_some(Duration { n, unit })
    }

    /// Wall-clock seconds it spans, for the bar-size table.
    fn span(self) -> u64 {
        let n = self.n as u64;
        match self.unit {
            Unit::S => n,
            Unit::D => n * 86_400,
            Unit::W => n * 7 * 86_400,
            Unit::M => n * 31 * 86_400,
            Unit::Y => n * 366 * 86_400,
        }
    }

    /// The window's start for a request ending at `end`.
    pub fn start(self, end: DateTime<Utc>) -> DateTime<Utc> {
        let n = self.n as i64;
        match self.unit {
            Unit::S => end.checked_sub_signed(chrono::Duration::seconds(n)).unwrap_or(end),
            Unit::D => sessions_back(end, self.n),
            Unit::W => end.checked_sub_signed(chrono::Duration::days(7 * n)).unwrap_or(end),
            Unit::M => end.checked_sub_months(Months::new(self.n)).unwrap_or(end),
            Unit::Y => end.checked_sub_months(Months::new(12 * self.n)).unwrap_or(end),
        }
    }
}

/// The open of the `n`-th session back counting the one in progress or last closed at `end`.
fn sessions_back(end: DateTime<Utc>, n: u32) -> DateTime<Utc> {
    let mut d = calendar::trading_date(end);
    if calendar::session(d).is_none_or(|s| s.open >= end) {
        d = calendar::prev_trading_day(d);
    }
    for _ in 1..n {
        d = calendar::prev_trading_day(d);
    }
    calendar::session(d).map_or(end, |s| s.open)
}

/// Why IB refuses a bar size for a duration, as IB words it.
pub const TOO_MANY_BARS: &str = "Historical Market Data Service error message:Time length exceed max.";

/// IB's table: for each duration, the finest bar size it serves. Too fine a bar for the duration
/// is refused (error 162); too coarse is served (IB returns what fits).
///
/// | duration  | bar sizes        |
/// |-----------|------------------|
/// | ≤ 60 S    | 1 secs – 1 min   |
/// | ≤ 120 S   | 1 secs – 2 mins  |
/// | ≤ 1800 S  | 1 secs – 30 mins |
/// | ≤ 3600 S  | 5 secs – 1 hour  |
/// | ≤ 14400 S | 10 secs – 3 hours|
/// | ≤ 28800 S | 30 secs – 8 hours|
/// | ≤ 1 D     | 1 min – 1 day    |
/// | ≤ 2 D     | 2 mins – 1 day   |
/// | ≤ 1 W     | 3 mins – 1 week  |
/// | ≤ 1 M     | 30 mins – 1 month|
/// | ≤ 1 Y     | 1 day – 1 month  |
/// | longer    | 1 day – 1 month  |
pub fn finest_bar_for(duration: Duration) -> u64 {
    let span = match duration.unit {
        Unit::S => duration.span(),
        Unit::D if duration.n == 1 => 86_400,
        Unit::D if duration.n == 2 => 2 * 86_400,
        Unit::D if duration.n <= 7 => 7 * 86_400,
        Unit::W if duration.n == 1 => 7 * 86_400,
        Unit::D if duration.n <= 31 => 31 * 86_400,
        Unit::W if duration.n <= 4 => 31 * 86_400,
        Unit::M if duration.n == 1 => 31 * 86_400,
        _ => duration.span().max(32 * 86_400),
    };
    match span {
        0..=60 => 1,
        61..=120 => 1,
        121..=1800 => 1,
        1801..=3600 => 5,
        3601..=14400 => 10,
        14401..=28800 => 30,
        28801..=86_400 => 60,
        86_401..=172_800 => 120,
        172_801..=604_800 => 180,
        604_801..=2_678_400 => 1800,
        _ => 86_400,
    }
}

/// Parses a request's end: empty (now), `YYYYMMDD HH:MM:SS <zone>` or `YYYYMMDD-HH:MM:SS` (UTC).
pub fn parse_end(s: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() {
        return Some(now);
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y%m%d-%H:%M:%S") {
        return Some(t.and_utc());
    }
    let mut parts = s.splitn(3, ' ');
    let (date, time) = (parts.next()?, parts.next()?);
    let local = NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y%m%d %H:%M:%S").ok()?;
    match parts.next().map(str::trim) {
        None | Some("") => EXCHANGE_TZ.from_local_datetime(&local).earliest().map(|t| t.with_timezone(&Utc)),
        Some("UTC") | Some("GMT") | Some("Etc/UTC") => Some(local.and_utc()),
        Some(zone) => {
            let tz: chrono_tz::Tz = zone.parse().ok()?;
            tz.from_local_datetime(&local).earliest().map(|t| t.with_timezone(&Utc))
        }
    }
}

/// IB's rendering of an instant in the instrument's zone: `YYYYMMDD HH:MM:SS US/Eastern`.
pub fn format_eastern(t: DateTime<Utc>) -> String {
    format!("{} US/Eastern", t.with_timezone(&EXCHANGE_TZ).format("%Y%m%d %H:%M:%S"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_refuses_too_fine_bars() {
        let d = |s| Duration::parse(s).unwrap_or(Duration { n: 1, unit: Unit::S });
        assert_eq!(finest_bar_for(d("60 S")), 1);
        assert_eq!(finest_bar_for(d("3600 S")), 5);
        assert_eq!(finest_bar_for(d("1 D")), 60);
        assert_eq!(finest_bar_for(d("2 D")), 120);
        assert_eq!(finest_bar_for(d("1 W")), 180);
        assert_eq!(finest_bar_for(d("1 M")), 1800);
        assert_eq!(finest_bar_for(d("1 Y")), 86_400);
        assert_eq!(BarSize::parse("5 mins"), Some(BarSize::Seconds(300)));
        assert_eq!(BarSize::parse("7 mins"), None);
        assert_eq!(Duration::parse("0 D"), None);
        assert_eq!(Duration::parse("366 D"), None);
        assert_eq!(Duration::parse("86401 S"), None);
        assert_eq!(Duration::parse("4294967295 W"), None);
    }

    #[test]
    fn ends_parse_in_every_spelling() {
        let now = Utc::now();
        let utc = parse_end("20260102 15:00:00 UTC", now);
        assert_eq!(utc, parse_end("20260102-15:00:00", now));
        assert_eq!(utc, parse_end("20260102 10:00:00 US/Eastern", now));
        assert_eq!(parse_end("", now), Some(now));
        assert_eq!(parse_end("garbage", now), None);
    }
}
