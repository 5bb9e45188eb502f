//! Bar series: IB's bar sizes and what-to-show values, and the pair of them.
//!
//! Each type serializes as IB spells it (`"1 min"`, `"MIDPOINT"`): the manifest's JSON and the
//! Parquet columns hold those spellings, and every other part of twslake holds the types.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// IB's bar sizes, spelled as IB spells them (`"1 min"`, `"1 day"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BarSize {
    /// 1 second.
    Sec1,
    /// 5 seconds.
    Sec5,
    /// 10 seconds.
    Sec10,
    /// 15 seconds.
    Sec15,
    /// 30 seconds.
    Sec30,
    /// 1 minute.
    Min1,
    /// 2 minutes.
    Min2,
    /// 3 minutes.
    Min3,
    /// 5 minutes.
    Min5,
    /// 10 minutes.
    Min10,
    /// 15 minutes.
    Min15,
    /// 20 minutes.
    Min20,
    /// 30 minutes.
    Min30,
    /// 1 hour.
    Hour1,
    /// 2 hours.
    Hour2,
    /// 3 hours.
    Hour3,
    /// 4 hours.
    Hour4,
    /// 8 hours.
    Hour8,
    /// 1 day.
    Day1,
    /// 1 week.
    Week1,
    /// 1 month.
    Month1,
}

/// (variant, IB's spelling, file-name slug, length in seconds; 0 for calendar units).
const BAR_SIZES: [(BarSize, &str, &str, u32); 21] = [
    (BarSize::Sec1, "1 secs", "1s", 1),
    (BarSize::Sec5, "5 secs", "5s", 5),
    (BarSize::Sec10, "10 secs", "10s", 10),
    (BarSize::Sec15, "15 secs", "15s", 15),
    (BarSize::Sec30, "30 secs", "30s", 30),
    (BarSize::Min1, "1 min", "1min", 60),
    (BarSize::Min2, "2 mins", "2min", 120),
    (BarSize::Min3, "3 mins", "3min", 180),
    (BarSize::Min5, "5 mins", "5min", 300),
    (BarSize::Min10, "10 mins", "10min", 600),
    (BarSize::Min15, "15 mins", "15min", 900),
    (BarSize::Min20, "20 mins", "20min", 1200),
    (BarSize::Min30, "30 mins", "30min", 1800),
    (BarSize::Hour1, "1 hour", "1h", 3600),
    (BarSize::Hour2, "2 hours", "2h", 7200),
    (BarSize::Hour3, "3 hours", "3h", 10800),
    (BarSize::Hour4, "4 hours", "4h", 14400),
    (BarSize::Hour8, "8 hours", "8h", 28800),
    (BarSize::Day1, "1 day", "1d", 0),
    (BarSize::Week1, "1 week", "1w", 0),
    (BarSize::Month1, "1 month", "1mo", 0),
];

impl BarSize {
    fn row(self) -> &'static (BarSize, &'static str, &'static str, u32) {
        BAR_SIZES.iter().find(|r| r.0 == self).expect("every variant is in BAR_SIZES")
    }
    /// IB's spelling, as sent in a historical request.
    pub fn ib(self) -> &'static str {
        self.row().1
    }
    /// The short form used in file names.
    pub fn slug(self) -> &'static str {
        self.row().2
    }
    /// Length in seconds for intraday sizes, `None` for day, week and month.
    pub fn seconds(self) -> Option<u32> {
        Some(self.row().3).filter(|s| *s > 0)
    }
    /// Intraday bars are stored one file per trading day; longer bars one file per year.
    pub fn is_intraday(self) -> bool {
        self.seconds().is_some()
    }
    /// Every bar size IB offers.
    pub fn all() -> impl Iterator<Item = BarSize> {
        BAR_SIZES.iter().map(|r| r.0)
    }
    /// Parses the short form of file names (`1min`, `1d`).
    pub fn from_slug(s: &str) -> Option<Self> {
        BAR_SIZES.iter().find(|r| r.2 == s).map(|r| r.0)
    }
}

impl fmt::Display for BarSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ib())
    }
}

impl FromStr for BarSize {
    type Err = Error;
    /// Accepts IB's spelling (`"1 min"`, `"5 mins"`, `"1 day"`) or the slug (`1min`, `1d`).
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        BAR_SIZES.iter().find(|r| r.1.eq_ignore_ascii_case(t) || r.2.eq_ignore_ascii_case(t)).map(|r| r.0).ok_or_else(
            || {
                let names: Vec<&str> = BAR_SIZES.iter().map(|r| r.1).collect();
                Error::bad_input("bar size", s, format!("use one of IB's bar sizes: {}", names.join(", ")))
            },
        )
    }
}

/// What a historical bar shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WhatToShow {
    /// Trades.
    Trades,
    /// Midpoint of bid and ask.
    Midpoint,
    /// Bid.
    Bid,
    /// Ask.
    Ask,
    /// Time-averaged bid (open, low) and ask (high, close); paced as two requests by IB.
    BidAsk,
    /// Trades back-adjusted for splits and dividends as of the request (total return); daily or
    /// coarser bars only, and IB refuses it with an end date.
    AdjustedLast,
}

const WHAT_TO_SHOW: [(WhatToShow, &str); 6] = [
    (WhatToShow::Trades, "TRADES"),
    (WhatToShow::Midpoint, "MIDPOINT"),
    (WhatToShow::Bid, "BID"),
    (WhatToShow::Ask, "ASK"),
    (WhatToShow::BidAsk, "BID_ASK"),
    (WhatToShow::AdjustedLast, "ADJUSTED_LAST"),
];

impl WhatToShow {
    /// IB's spelling.
    pub fn ib(self) -> &'static str {
        WHAT_TO_SHOW.iter().find(|r| r.0 == self).expect("every variant listed").1
    }
}

impl fmt::Display for WhatToShow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ib())
    }
}

impl FromStr for WhatToShow {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        WHAT_TO_SHOW.iter().find(|r| r.1.eq_ignore_ascii_case(s.trim())).map(|r| r.0).ok_or_else(|| {
            Error::bad_input("what-to-show", s, "use TRADES, MIDPOINT, BID, ASK, BID_ASK or ADJUSTED_LAST")
        })
    }
}

/// A series of bars: one bar size and one what-to-show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Series {
    /// The bar size.
    pub bar_size: BarSize,
    /// What the bars show.
    pub what_to_show: WhatToShow,
}

macro_rules! serde_as_ib {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.ib())
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_ib!(BarSize);
serde_as_ib!(WhatToShow);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_sizes_parse_both_spellings() {
        assert_eq!("1 min".parse::<BarSize>().unwrap(), BarSize::Min1);
        assert_eq!("1d".parse::<BarSize>().unwrap(), BarSize::Day1);
        assert!("7 mins".parse::<BarSize>().unwrap_err().to_string().contains("7 mins"));
        for b in BarSize::all() {
            assert_eq!(b.ib().parse::<BarSize>().unwrap(), b);
            assert_eq!(BarSize::from_slug(b.slug()), Some(b));
        }
    }
}
