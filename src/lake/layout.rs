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
//!   surfaces/…, corporate_actions/…  as quotes: one file per symbol and trading date
//!     (for corporate_actions, the date the action was found on)
//!   _manifest/symbol=<SYM>/{log-…,pending-…,snapshot-…}.json
//! ```
//! See `lake-layout/SPEC.md` for the reasoning; `tests/it/lake/interop.rs` keeps the two in step
//! (every file of the example lake has a shape the SPEC lists).

use crate::datasets::Dataset;
use crate::domain::{BarSize, Series, Symbol};
use crate::error::{Error, Result};
use chrono::{Datelike, NaiveDate};
use object_store::path::Path;
use std::fmt;

/// An object path from a string that is already in object-store form (our encoded names).
///
/// `Path::from` would percent-encode the `%` of `symbol=BRK%20B` a second time; `Path::parse`
/// keeps it. A string that does not parse (only a hand-edited manifest could hold one) falls back
/// to `Path::from`, which at worst names an object that does not exist.
pub fn obj(s: &str) -> Path {
    Path::parse(s).unwrap_or_else(|_| Path::from(s))
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
    use crate::domain::WhatToShow;

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
