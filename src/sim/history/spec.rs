//! How the gateway reads a historical request: its bar size and what-to-show (into the ground
//! floor's types, in IB's spellings only), duration and end; and IB's table of which duration may
//! be asked with which bar size.

use chrono::{DateTime, Months, NaiveDateTime, TimeZone, Utc};

use crate::calendar::{self, EXCHANGE_TZ};
use crate::domain::{BarSize, WhatToShow};

/// Reads a client's bar size as IB's gateway does: one of IB's spellings (`1 secs`, `5 mins`,
/// `1 hour`, `1 day`, …) in any case. twslake's file-name slugs (`5min`) are not IB's, so a client
/// sending one is refused like any other invalid bar size.
pub fn parse_bar_size(s: &str) -> Option<BarSize> {
    s.parse::<BarSize>().ok().filter(|b| b.ib().eq_ignore_ascii_case(s.trim()))
}

/// Reads a client's what-to-show: IB's spelling in any case, without padding.
pub fn parse_what(s: &str) -> Option<WhatToShow> {
    s.parse::<WhatToShow>().ok().filter(|w| w.ib().eq_ignore_ascii_case(s))
}

/// IB's text for a what-to-show in the "no data" message (`… SPY@SMART Bid_Ask`): each word of
/// IB's spelling capitalised.
pub fn title(what: WhatToShow) -> String {
    let word = |w: &str| {
        let (head, tail) = w.split_at(w.len().min(1));
        head.to_owned() + &tail.to_ascii_lowercase()
    };
    what.ib().split('_').map(word).collect::<Vec<_>>().join("_")
}

/// A bar size's length in seconds, for IB's table (a session counts as a day, a month as 31).
pub fn span(size: BarSize) -> u64 {
    match (size.seconds(), size) {
        (Some(s), _) => u64::from(s),
        (None, BarSize::Week1) => 7 * 86_400,
        (None, BarSize::Month1) => 31 * 86_400,
        (None, _) => 86_400,
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
        assert_eq!(Duration::parse("0 D"), None);
        assert_eq!(Duration::parse("366 D"), None);
        assert_eq!(Duration::parse("86401 S"), None);
        assert_eq!(Duration::parse("4294967295 W"), None);
    }

    #[test]
    fn bar_sizes_are_read_as_ib_spells_them() {
        assert_eq!(parse_bar_size("5 mins"), Some(BarSize::Min5));
        assert_eq!(parse_bar_size(" 1 DAY "), Some(BarSize::Day1));
        for refused in ["7 mins", "4 mins", "5min", "1d", "1 sec", "5 min", "1 hours", "1  min", ""] {
            assert_eq!(parse_bar_size(refused), None, "{refused:?}");
        }
        assert_eq!(span(BarSize::Min5), 300);
        assert_eq!(span(BarSize::Day1), 86_400);
        assert_eq!(span(BarSize::Month1), 31 * 86_400);
    }

    #[test]
    fn what_to_show_reads_ib_spellings_and_titles_as_the_no_data_text() {
        assert_eq!(parse_what("bid_ask"), Some(WhatToShow::BidAsk));
        assert_eq!(parse_what(" TRADES"), None);
        assert_eq!(parse_what("COLOURS"), None);
        let titles = [
            (WhatToShow::Trades, "Trades"),
            (WhatToShow::Midpoint, "Midpoint"),
            (WhatToShow::Bid, "Bid"),
            (WhatToShow::Ask, "Ask"),
            (WhatToShow::BidAsk, "Bid_Ask"),
        ];
        for (what, text) in titles {
            assert_eq!(title(what), text);
        }
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
