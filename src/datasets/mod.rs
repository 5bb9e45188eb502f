//! The datasets of a lake, one module each: Arrow schema, primary key, partition key, row type.
//!
//! Every file holds its dataset's columns except the partition keys (`symbol`, `year`), which
//! live in the folder names as Hive partitions: readers add them back, and no column is stored
//! twice with a chance to disagree.

pub mod chains;
mod cols;
pub mod contracts;
pub mod corporate_actions;
pub mod equity_bars;
pub mod option_bars;
pub mod quotes;
pub mod surfaces;

use crate::error::{Error, Result};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use std::fmt;
use std::str::FromStr;

/// A dataset of the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dataset {
    /// Contract descriptions (stocks and options), latest description per con_id.
    Contracts,
    /// Option-chain snapshots, kept as history.
    Chains,
    /// Equity (underlying) bars.
    EquityBars,
    /// Option bars.
    OptionBars,
    /// Live quotes and option computations.
    Quotes,
    /// Surface history: fitted surfaces at regular instants, derived from the option bars.
    Surfaces,
    /// Corporate actions found by `update` (a stored series on another basis than IB's answer).
    CorporateActions,
}

impl Dataset {
    /// Every dataset, in dependency order.
    pub const ALL: [Dataset; 7] = [
        Dataset::Contracts,
        Dataset::Chains,
        Dataset::EquityBars,
        Dataset::OptionBars,
        Dataset::Quotes,
        Dataset::Surfaces,
        Dataset::CorporateActions,
    ];

    /// The folder name (and table name in SQL).
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Contracts => "contracts",
            Dataset::Chains => "chains",
            Dataset::EquityBars => "equity_bars",
            Dataset::OptionBars => "option_bars",
            Dataset::Quotes => "quotes",
            Dataset::Surfaces => "surfaces",
            Dataset::CorporateActions => "corporate_actions",
        }
    }

    /// True for the bar datasets, whose partitions are per bar series.
    pub fn is_bars(self) -> bool {
        matches!(self, Dataset::EquityBars | Dataset::OptionBars)
    }

    /// The Arrow schema of the files (partition keys excluded).
    pub fn schema(self) -> SchemaRef {
        match self {
            Dataset::Contracts => contracts::schema(),
            Dataset::Chains => chains::schema(),
            Dataset::EquityBars => equity_bars::schema(),
            Dataset::OptionBars => option_bars::schema(),
            Dataset::Quotes => quotes::schema(),
            Dataset::Surfaces => surfaces::schema(),
            Dataset::CorporateActions => corporate_actions::schema(),
        }
    }

    /// The columns that identify a row within a partition; files are sorted by them.
    pub fn primary_key(self) -> &'static [&'static str] {
        match self {
            Dataset::Contracts => contracts::PRIMARY_KEY,
            Dataset::Chains => chains::PRIMARY_KEY,
            Dataset::EquityBars => equity_bars::PRIMARY_KEY,
            Dataset::OptionBars => option_bars::PRIMARY_KEY,
            Dataset::Quotes => quotes::PRIMARY_KEY,
            Dataset::Surfaces => surfaces::PRIMARY_KEY,
            Dataset::CorporateActions => corporate_actions::PRIMARY_KEY,
        }
    }

    /// The column that decides which of two rows with one key is kept: the greater one.
    pub fn version_column(self) -> &'static str {
        match self {
            Dataset::Contracts => "fetched_at",
            Dataset::Surfaces => "computed_at",
            Dataset::CorporateActions => "detected_at",
            _ => "ingested_at",
        }
    }

    /// The column holding each row's trading date, for datasets partitioned by time.
    pub fn date_column(self) -> Option<&'static str> {
        (self != Dataset::Contracts).then_some("date")
    }

    /// Refuses rows that no market produces (NaN or negative prices, high below low) and codes
    /// twslake never writes (a security type or option right other than its own). Writes refuse
    /// such rows; `validate` reports a file holding them.
    pub fn check_rows(self, batch: &RecordBatch) -> std::result::Result<(), String> {
        match self {
            Dataset::EquityBars => cols::check_ohlc(batch),
            Dataset::OptionBars => cols::check_ohlc(batch).and_then(|()| cols::check_contract_codes(batch)),
            Dataset::Quotes => cols::check_non_negative(batch, &["bid", "ask", "last"])
                .and_then(|()| cols::check_contract_codes(batch)),
            Dataset::Chains => cols::check_non_negative(batch, &["strike"]),
            Dataset::Surfaces => surfaces::check_rows(batch),
            Dataset::Contracts => cols::check_contract_codes(batch),
            Dataset::CorporateActions => corporate_actions::check_rows(batch),
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dataset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Dataset::ALL.into_iter().find(|d| d.name() == s.trim()).ok_or_else(|| {
            Error::bad_input(
                "dataset",
                s,
                "use contracts, chains, equity_bars, option_bars, quotes, surfaces or corporate_actions",
            )
        })
    }
}
