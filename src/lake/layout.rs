//! The one place that forms (and parses) every path in a lake.
//!
//! ```text
//! <root>/
//!   contracts/symbol=<SYM>/contracts.parquet
//!   chains/symbol=<SYM>/year=<YYYY>/chains-<YYYY-MM-DD>.parquet
//!   equity_bars/symbol=<SYM>/year=<YYYY>/<bar>-<WHAT>.parquet              bars of 1 day and longer
//!   equity_bars/symbol=<SYM>/year=<YYYY>/<bar>-<WHAT>-<YYYY-MM-DD>.parquet intraday bars
//!   option_bars/…  as equity_bars, <SYM> being the underlying
//!   quotes/symbol=<SYM>/year=<YYYY>/quotes-<YYYY-MM-DD>.parquet
//!   quotes/symbol=<SYM>/year=<YYYY>/quotes-<YYYY-MM-DD>.part-<RUN>-<SEQ>.parquet   live micro-batches
//!   _manifest/symbol=<SYM>/{log-…,pending-…,snapshot-…}.json
//! ```
//! See `lake-layout/SPEC.md` for the reasoning; `tests/it/lake/layout_spec.rs` keeps the two in step.

use crate::datasets::Dataset;
use crate::error::{Error, Result};
use chrono::{Datelike, NaiveDate};
use object_store::path::Path;
use std::fmt;
use std::str::FromStr;

/// An object path from a string that is already in object-store form (our encoded names).
///
/// `Path::from` would percent-encode the `%` of `symbol=BRK%20B` a second time; `Path::parse`
/// keeps it. A string that does not parse (only a hand-edited manifest could hold one) falls back
/// to `Path::from`, which at worst names an object that does not exist.
pub fn obj(s: &str) -> Path {
    Path::parse(s).unwrap_or_else(|_| Path::from(s))
}

/// Characters a symbol may contain besides ASCII letters and digits.
const SYMBOL_EXTRA: &str = " .-_+&";
/// Longest accepted symbol (IB's longest local symbols for options are 21 characters).
pub const MAX_SYMBOL_LEN: usize = 32;

/// A validated instrument symbol (the underlying's, for options).
///
/// Folder names percent-encode everything but `A-Z`, `0-9`, `-` and `_`, so `BRK B` is
/// `symbol=BRK%20B` and `BF.B` is `symbol=BF%2EB`: every reader that decodes hive values gets the
/// symbol back, no encoded name contains `/` or `..`, and `spy` cannot collide with `SPY` on a
/// case-insensitive file system.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(String);

impl Symbol {
    /// Validates `s` as a symbol; the error names the input and the allowed characters.
    pub fn new(s: &str) -> Result<Self> {
        let refuse = |reason: String| Err(Error::bad_input("symbol", s, reason));
        if s.is_empty() {
            return refuse("a symbol cannot be empty".into());
        }
        if s.len() > MAX_SYMBOL_LEN {
            return refuse(format!("longer than {MAX_SYMBOL_LEN} characters"));
        }
        if let Some(c) = s.chars().find(|c| !c.is_ascii_alphanumeric() && !SYMBOL_EXTRA.contains(*c)) {
            return refuse(format!(
                "character {c:?} is not allowed; use ASCII letters, digits and {SYMBOL_EXTRA:?} (IB's spelling, e.g. \"BRK B\")"
            ));
        }
        if s.starts_with(' ') || s.ends_with(' ') {
            return refuse("leading or trailing space; trim it".into());
        }
        if !s.chars().any(|c| c.is_ascii_alphanumeric()) {
            return refuse("a symbol needs at least one letter or digit".into());
        }
        Ok(Symbol(s.to_string()))
    }

    /// The symbol as IB spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The folder-safe encoding used in `symbol=<…>`.
    pub fn encoded(&self) -> String {
        let mut out = String::with_capacity(self.0.len() * 3);
        for b in self.0.bytes() {
            if b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_' {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    /// Decodes a folder value written by [`Symbol::encoded`] (or by hand, unencoded).
    pub fn decode(encoded: &str) -> Result<Self> {
        let bad = || Error::bad_input("symbol folder", encoded, "not a percent-encoded symbol");
        let bytes = encoded.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = encoded.get(i + 1..i + 3).ok_or_else(bad)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        Symbol::new(&String::from_utf8(out).map_err(|_| bad())?)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Symbol {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Symbol::new(s)
    }
}

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
    fn from_slug(s: &str) -> Option<Self> {
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
}

const WHAT_TO_SHOW: [(WhatToShow, &str); 5] = [
    (WhatToShow::Trades, "TRADES"),
    (WhatToShow::Midpoint, "MIDPOINT"),
    (WhatToShow::Bid, "BID"),
    (WhatToShow::Ask, "ASK"),
    (WhatToShow::BidAsk, "BID_ASK"),
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
        WHAT_TO_SHOW
            .iter()
            .find(|r| r.1.eq_ignore_ascii_case(s.trim()))
            .map(|r| r.0)
            .ok_or_else(|| Error::bad_input("what-to-show", s, "use TRADES, MIDPOINT, BID, ASK or BID_ASK"))
    }
}

/// A series of bars: one bar size and one what-to-show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Series {
    /// The bar size.
    pub bar_size: BarSize,
    /// What the bars show.
    pub what_to_show: WhatToShow,
}

/// The stretch of time one partition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    /// Everything (contract descriptions).
    All,
    /// One calendar year (bars of a day and longer).
    Year(i32),
    /// One trading date (intraday bars, chain snapshots, quotes).
    Day(NaiveDate),
}

impl Period {
    /// The calendar year the period lies in, if any.
    pub fn year(self) -> Option<i32> {
        match self {
            Period::All => None,
            Period::Year(y) => Some(y),
            Period::Day(d) => Some(d.year()),
        }
    }
    /// Whether a trading date belongs to this period.
    pub fn contains(self, d: NaiveDate) -> bool {
        match self {
            Period::All => true,
            Period::Year(y) => d.year() == y,
            Period::Day(p) => p == d,
        }
    }
}

/// One partition: the unit that is written whole and made visible atomically (one Parquet object).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    /// The dataset.
    pub dataset: Dataset,
    /// The symbol (the underlying, for options).
    pub symbol: Symbol,
    /// The bar series, for bar datasets.
    pub series: Option<Series>,
    /// The time the partition spans.
    pub period: Period,
}

impl Partition {
    /// The partition of `dataset` holding rows of trading date `date`.
    pub fn for_date(dataset: Dataset, symbol: &Symbol, series: Option<Series>, date: NaiveDate) -> Result<Self> {
        let period = match (dataset, series) {
            (Dataset::Contracts, _) => Period::All,
            (Dataset::EquityBars | Dataset::OptionBars, Some(s)) if !s.bar_size.is_intraday() => {
                Period::Year(date.year())
            }
            (Dataset::EquityBars | Dataset::OptionBars, None) => {
                return Err(Error::bad_input(
                    "partition",
                    dataset.name(),
                    "bar datasets need a bar size and what-to-show",
                ))
            }
            _ => Period::Day(date),
        };
        let series = if dataset.is_bars() { series } else { None };
        Ok(Partition { dataset, symbol: symbol.clone(), series, period })
    }

    /// The folder of all of a symbol's partitions in a dataset.
    pub fn symbol_dir(dataset: Dataset, symbol: &Symbol) -> Path {
        obj(&format!("{}/symbol={}", dataset.name(), symbol.encoded()))
    }

    /// The object path of this partition, relative to the lake root.
    pub fn path(&self) -> Path {
        let dir = Self::symbol_dir(self.dataset, &self.symbol);
        let file = match (self.dataset, self.series, self.period) {
            (Dataset::Contracts, _, _) => return dir.clone().join("contracts.parquet"),
            (_, Some(s), Period::Year(_)) => format!("{}-{}.parquet", s.bar_size.slug(), s.what_to_show.ib()),
            (_, Some(s), Period::Day(d)) => format!("{}-{}-{d}.parquet", s.bar_size.slug(), s.what_to_show.ib()),
            (ds, _, Period::Day(d)) => format!("{}-{d}.parquet", ds.name()),
            // `for_date` and `from_path` build no other combination.
            (ds, _, p) => format!("{}-{p:?}.parquet", ds.name()),
        };
        let year = self.period.year().unwrap_or_default();
        obj(&format!("{dir}/year={year}/{file}"))
    }

    /// Parses an object path written by [`Partition::path`]; anything else is a foreign file.
    pub fn from_path(path: &Path) -> Result<Self> {
        let foreign =
            |why: &str| Error::Corrupt { path: path.to_string(), reason: format!("not a twslake partition: {why}") };
        let parts: Vec<&str> = path.as_ref().split('/').collect();
        let dataset: Dataset =
            parts.first().and_then(|d| d.parse().ok()).ok_or_else(|| foreign("unknown dataset folder"))?;
        let sym = parts.get(1).and_then(|p| p.strip_prefix("symbol=")).ok_or_else(|| foreign("no symbol= folder"))?;
        let symbol = Symbol::decode(sym).map_err(|_| foreign("undecodable symbol folder"))?;
        if dataset == Dataset::Contracts {
            return match parts.get(2..) {
                Some(["contracts.parquet"]) => Ok(Partition { dataset, symbol, series: None, period: Period::All }),
                _ => Err(foreign("expected contracts.parquet")),
            };
        }
        let year: i32 = parts
            .get(2)
            .and_then(|p| p.strip_prefix("year="))
            .and_then(|y| y.parse().ok())
            .ok_or_else(|| foreign("no year= folder"))?;
        let file = match parts.get(3..) {
            Some([f]) => f.strip_suffix(".parquet").ok_or_else(|| foreign("not a .parquet file"))?,
            _ => return Err(foreign("unexpected depth")),
        };
        let mut part = Self::parse_file(dataset, &symbol, file).ok_or_else(|| foreign("unexpected file name"))?;
        if let Period::Year(_) = part.period {
            part.period = Period::Year(year);
        }
        if part.period.year() != Some(year) {
            return Err(foreign("file's date is not in its year= folder"));
        }
        Ok(part)
    }

    fn parse_file(dataset: Dataset, symbol: &Symbol, file: &str) -> Option<Self> {
        let symbol = symbol.clone();
        if !dataset.is_bars() {
            let date = file.strip_prefix(dataset.name())?.strip_prefix('-')?.parse().ok()?;
            return Some(Partition { dataset, symbol, series: None, period: Period::Day(date) });
        }
        let mut it = file.splitn(3, '-');
        let bar_size = BarSize::from_slug(it.next()?)?;
        let what_to_show = it.next()?.parse().ok()?;
        let series = Some(Series { bar_size, what_to_show });
        let period = match (bar_size.is_intraday(), it.next()) {
            (true, Some(d)) => Period::Day(d.parse().ok()?),
            (false, None) => Period::Year(0),
            _ => return None,
        };
        Some(Partition { dataset, symbol, series, period })
    }
}

/// Datasets whose partitions may have micro-batches beside them (live capture's `quotes`).
pub fn has_micro_batches(dataset: Dataset) -> bool {
    dataset == Dataset::Quotes
}

/// One micro-batch: an immutable file of new rows written beside its day partition by a live
/// capture's flush, `quotes-<YYYY-MM-DD>.part-<RUN>-<SEQ>.parquet` in the partition's folder.
///
/// It lies in the same hive folders as its partition, so engines that glob a dataset
/// (`quotes/**/*.parquet`) read it as rows of the dataset with the same `symbol` and `year`.
/// Readers of twslake merge a partition with its micro-batches on the primary key; compaction
/// folds them into the partition file and deletes them only once that replacement is visible.
/// `<RUN>` is 16 lowercase hex digits drawn at random per writer, `<SEQ>` the writer's flush
/// counter (decimal, at least 6 digits), so two writers never name one object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MicroBatch {
    /// The partition the rows belong to.
    pub partition: Partition,
    /// The writer's random id.
    pub run: u64,
    /// The writer's flush counter.
    pub seq: u64,
}

const PART_MARK: &str = ".part-";

impl MicroBatch {
    /// A micro-batch of `partition`; refused for datasets other than `quotes`.
    pub fn new(partition: Partition, run: u64, seq: u64) -> Result<Self> {
        if !has_micro_batches(partition.dataset) {
            let why = "only quotes partitions have micro-batches";
            return Err(Error::bad_input("micro-batch", partition.path().to_string(), why));
        }
        Ok(MicroBatch { partition, run, seq })
    }

    /// The object path: the partition's, with `.part-<RUN>-<SEQ>` before `.parquet`.
    pub fn path(&self) -> Path {
        let p = self.partition.path();
        let stem = p.as_ref().strip_suffix(".parquet").unwrap_or(p.as_ref());
        obj(&format!("{stem}{PART_MARK}{:016x}-{:06}.parquet", self.run, self.seq))
    }

    /// The folder a partition's micro-batches are listed from (the partition's own folder).
    pub fn dir_of(partition: &Partition) -> Path {
        let p = partition.path();
        obj(p.as_ref().rsplit_once('/').map_or("", |(dir, _)| dir))
    }

    /// Parses a path written by [`MicroBatch::path`] (in its one canonical spelling).
    pub fn from_path(path: &Path) -> Result<Self> {
        let foreign =
            |why: &str| Error::Corrupt { path: path.to_string(), reason: format!("not a twslake micro-batch: {why}") };
        let s = path.as_ref();
        let (head, tail) = s.rsplit_once(PART_MARK).ok_or_else(|| foreign("no .part- in the name"))?;
        if tail.contains('/') {
            return Err(foreign("no .part- in the file name"));
        }
        let partition = Partition::from_path(&obj(&format!("{head}.parquet")))
            .map_err(|_| foreign("the name before .part- is not a partition's"))?;
        let id = tail.strip_suffix(".parquet").ok_or_else(|| foreign("not a .parquet file"))?;
        let (run, seq) = id.split_once('-').ok_or_else(|| foreign("expected part-<RUN>-<SEQ>"))?;
        let hex = run.len() == 16 && run.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let digits = !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit());
        let (Some(run), Some(seq)) = (
            hex.then(|| u64::from_str_radix(run, 16).ok()).flatten(),
            digits.then(|| seq.parse::<u64>().ok()).flatten(),
        ) else {
            return Err(foreign("<RUN> must be 16 lowercase hex digits and <SEQ> decimal"));
        };
        let mb = MicroBatch::new(partition, run, seq).map_err(|_| foreign("only quotes have micro-batches"))?;
        if mb.path().as_ref() != s {
            return Err(foreign("not the canonical spelling (<SEQ> has at least 6 digits, no extra zeros)"));
        }
        Ok(mb)
    }
}

impl fmt::Display for MicroBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path())
    }
}

/// A data object of the lake: a partition file or one of its micro-batches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataObject {
    /// The partition file itself.
    Partition(Partition),
    /// A micro-batch beside it.
    MicroBatch(MicroBatch),
}

impl DataObject {
    /// Parses a partition's or a micro-batch's path; anything else is a foreign file.
    pub fn from_path(path: &Path) -> Result<Self> {
        match Partition::from_path(path) {
            Ok(p) => Ok(DataObject::Partition(p)),
            Err(e) if path.as_ref().contains(PART_MARK) => {
                MicroBatch::from_path(path).map(DataObject::MicroBatch).map_err(|_| e)
            }
            Err(e) => Err(e),
        }
    }

    /// The partition whose rows the object holds.
    pub fn partition(&self) -> &Partition {
        match self {
            DataObject::Partition(p) => p,
            DataObject::MicroBatch(m) => &m.partition,
        }
    }

    /// The object's path.
    pub fn path(&self) -> Path {
        match self {
            DataObject::Partition(p) => p.path(),
            DataObject::MicroBatch(m) => m.path(),
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_symbols_are_refused_with_the_input_named() {
        for bad in ["", "../x", "a/b", "..", "a\\b", "x\ny", "tab\t", " SPY", "SPY ", "é", "a%2Fb", &"X".repeat(33)] {
            let err = Symbol::new(bad).unwrap_err().to_string();
            assert!(err.contains("symbol"), "{err}");
            assert!(err.contains(&format!("{bad:?}")), "error names the input: {err}");
        }
    }

    #[test]
    fn symbols_round_trip_through_folder_names() {
        for ok in ["SPY", "BRK B", "BF.B", "spy", "A-B_C", "M&M", "X+Y", "1"] {
            let s = Symbol::new(ok).unwrap();
            let enc = s.encoded();
            assert!(!enc.contains('/') && !enc.contains('.') && !enc.contains(' '), "{enc}");
            assert_eq!(Symbol::decode(&enc).unwrap(), s);
        }
        assert_ne!(Symbol::new("spy").unwrap().encoded().to_uppercase(), "SPY");
        assert_eq!(Symbol::new("BRK B").unwrap().encoded(), "BRK%20B");
    }

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

    #[test]
    fn partition_paths_round_trip() {
        let sym = Symbol::new("BRK B").unwrap();
        let d: NaiveDate = "2024-11-22".parse().unwrap();
        let daily = Some(Series { bar_size: BarSize::Day1, what_to_show: WhatToShow::Trades });
        let minute = Some(Series { bar_size: BarSize::Min1, what_to_show: WhatToShow::Midpoint });
        let cases = [
            (Dataset::Contracts, None, "contracts/symbol=BRK%20B/contracts.parquet"),
            (Dataset::Chains, None, "chains/symbol=BRK%20B/year=2024/chains-2024-11-22.parquet"),
            (Dataset::EquityBars, daily, "equity_bars/symbol=BRK%20B/year=2024/1d-TRADES.parquet"),
            (Dataset::OptionBars, minute, "option_bars/symbol=BRK%20B/year=2024/1min-MIDPOINT-2024-11-22.parquet"),
            (Dataset::Quotes, None, "quotes/symbol=BRK%20B/year=2024/quotes-2024-11-22.parquet"),
        ];
        for (ds, series, want) in cases {
            let p = Partition::for_date(ds, &sym, series, d).unwrap();
            assert_eq!(p.path().as_ref(), want);
            assert_eq!(Partition::from_path(&p.path()).unwrap(), p);
        }
    }

    #[test]
    fn micro_batch_paths_round_trip() {
        let sym = Symbol::new("BRK B").unwrap();
        let d: NaiveDate = "2024-11-22".parse().unwrap();
        let p = Partition::for_date(Dataset::Quotes, &sym, None, d).unwrap();
        let mb = MicroBatch::new(p.clone(), 0x00ab_cdef_0123_4567, 42).unwrap();
        let want = "quotes/symbol=BRK%20B/year=2024/quotes-2024-11-22.part-00abcdef01234567-000042.parquet";
        assert_eq!(mb.path().as_ref(), want);
        assert_eq!(MicroBatch::from_path(&mb.path()).unwrap(), mb);
        assert_eq!(DataObject::from_path(&mb.path()).unwrap(), DataObject::MicroBatch(mb.clone()));
        assert_eq!(DataObject::from_path(&p.path()).unwrap(), DataObject::Partition(p.clone()));
        assert_eq!(DataObject::from_path(&mb.path()).unwrap().partition(), &p);
        assert_eq!(MicroBatch::dir_of(&p).as_ref(), "quotes/symbol=BRK%20B/year=2024");
        let big = MicroBatch::new(p.clone(), u64::MAX, 12_345_678).unwrap();
        assert_eq!(MicroBatch::from_path(&big.path()).unwrap(), big);
        // A micro-batch is not a partition: code that knows only partitions skips it.
        assert!(Partition::from_path(&mb.path()).is_err());
        let bars = Partition::for_date(
            Dataset::OptionBars,
            &sym,
            Some(Series { bar_size: BarSize::Min1, what_to_show: WhatToShow::Trades }),
            d,
        )
        .unwrap();
        assert!(MicroBatch::new(bars, 1, 1).is_err(), "only quotes have micro-batches");
    }

    #[test]
    fn malformed_micro_batch_names_are_refused() {
        for bad in [
            "quotes/symbol=SPY/year=2024/quotes-2024-11-22.part-00abcdef01234567.parquet",
            "quotes/symbol=SPY/year=2024/quotes-2024-11-22.part-00ABCDEF01234567-000001.parquet",
            "quotes/symbol=SPY/year=2024/quotes-2024-11-22.part-abcdef01234567-000001.parquet",
            "quotes/symbol=SPY/year=2024/quotes-2024-11-22.part-00abcdef01234567-1.parquet",
            "quotes/symbol=SPY/year=2024/quotes-2024-11-22.part-00abcdef01234567-0000001.parquet",
            "quotes/symbol=SPY/year=2024/quotes-2024-11-22.part-00abcdef01234567-00000x.parquet",
            "quotes/symbol=SPY/year=2024/quotes-2024-11-22.part-00abcdef01234567-000001.csv",
            "quotes/symbol=SPY/year=2024/quotes-2024-11-22.part-00abcdef01234567--00001.parquet",
            "quotes/symbol=SPY/year=2023/quotes-2024-11-22.part-00abcdef01234567-000001.parquet",
            "quotes/symbol=SPY/year=2024/notes-2024-11-22.part-00abcdef01234567-000001.parquet",
            "quotes/symbol=SPY/year=2024/x.part-00abcdef01234567-000001.parquet/y.parquet",
            "chains/symbol=SPY/year=2024/chains-2024-11-22.part-00abcdef01234567-000001.parquet",
            "option_bars/symbol=SPY/year=2024/1min-TRADES-2024-11-22.part-00abcdef01234567-000001.parquet",
        ] {
            let err = MicroBatch::from_path(&Path::from(bad)).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
            assert!(DataObject::from_path(&Path::from(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn foreign_paths_are_named() {
        for bad in [
            "equity_bars/symbol=SPY/year=2024/notes.txt",
            "equity_bars/SPY/x.parquet",
            "other/symbol=SPY/x.parquet",
            "equity_bars/symbol=SPY/year=2023/1min-TRADES-2024-01-02.parquet",
        ] {
            let err = Partition::from_path(&Path::from(bad)).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
