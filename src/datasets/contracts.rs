//! Contract descriptions: the latest description of every contract (stock or option) of a symbol.
//!
//! `exercise_style` (`american` or `european`, options only) is decided by the ingest from the
//! option's trading class ([`ExerciseStyle::of_class`]: the index classes are European, every
//! other class American). It is the last column, added after lakes existed: files written
//! before it have no such column and read as null, and a null reads back as the style its
//! trading class decides ([`Contract::style`]), so an old lake answers as a new one does.

use super::cols::{self, f, Cols};
use crate::domain::{ExerciseStyle, Right, SecType};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use std::sync::{Arc, LazyLock};

/// One row per contract; a newer `fetched_at` replaces the older description.
pub const PRIMARY_KEY: &[&str] = &["con_id"];

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        f("con_id", DataType::Int64, false),
        f("sec_type", DataType::Utf8, false),
        f("exchange", DataType::Utf8, false),
        f("primary_exchange", DataType::Utf8, true),
        f("currency", DataType::Utf8, false),
        f("local_symbol", DataType::Utf8, true),
        f("trading_class", DataType::Utf8, true),
        f("multiplier", DataType::Float64, true),
        f("min_tick", DataType::Float64, true),
        f("expiry", DataType::Date32, true),
        f("strike", DataType::Float64, true),
        f("right", DataType::Utf8, true),
        f("time_zone", DataType::Utf8, true),
        f("trading_hours", DataType::Utf8, true),
        f("liquid_hours", DataType::Utf8, true),
        f("fetched_at", cols::ts_type(), false),
        f("exercise_style", DataType::Utf8, true),
    ]))
});

/// The file schema (the `symbol` folder is the underlying's symbol).
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// A contract description as IB gives it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Contract {
    /// IB's contract id.
    pub con_id: i64,
    /// Stock or option.
    pub sec_type: SecType,
    /// Routing exchange (e.g. `SMART`).
    pub exchange: String,
    /// Listing exchange.
    pub primary_exchange: Option<String>,
    /// Currency.
    pub currency: String,
    /// IB's local symbol (OSI-style for options).
    pub local_symbol: Option<String>,
    /// Trading class.
    pub trading_class: Option<String>,
    /// Multiplier (options).
    pub multiplier: Option<f64>,
    /// Minimum tick.
    pub min_tick: Option<f64>,
    /// Expiry (options).
    pub expiry: Option<NaiveDate>,
    /// Strike (options).
    pub strike: Option<f64>,
    /// Call or put (options).
    pub right: Option<Right>,
    /// IB's time-zone id of the exchange.
    pub time_zone: Option<String>,
    /// IB's trading-hours string.
    pub trading_hours: Option<String>,
    /// IB's liquid-hours string.
    pub liquid_hours: Option<String>,
    /// When the description was fetched.
    pub fetched_at: DateTime<Utc>,
    /// American or European exercise (options; `None` for a stock, or as stored before the
    /// column existed: [`Contract::style`] then decides it from the trading class).
    pub exercise_style: Option<ExerciseStyle>,
}

impl Contract {
    /// The option's exercise style: as stored, else decided from its trading class, else from
    /// its local symbol's root (OSI: the root is the text before the first space). `None` for
    /// a stock, and for an option with neither.
    pub fn style(&self) -> Option<ExerciseStyle> {
        if self.sec_type != SecType::Option {
            return None;
        }
        self.exercise_style.or_else(|| {
            let root = self.local_symbol.as_deref().and_then(|l| l.split_whitespace().next());
            self.trading_class.as_deref().or(root).map(ExerciseStyle::of_class)
        })
    }
}

/// Builds a batch of the file schema.
pub fn to_batch(rows: &[Contract]) -> RecordBatch {
    let s = |get: fn(&Contract) -> &Option<String>| cols::opt_strs(rows.iter().map(move |r| get(r).as_deref()));
    RecordBatch::try_new(
        schema(),
        vec![
            cols::i64s(rows.iter().map(|r| r.con_id)),
            cols::sec_types(rows.iter().map(|r| r.sec_type)),
            cols::strs(rows.iter().map(|r| r.exchange.as_str())),
            s(|r| &r.primary_exchange),
            cols::strs(rows.iter().map(|r| r.currency.as_str())),
            s(|r| &r.local_symbol),
            s(|r| &r.trading_class),
            cols::opt_f64s(rows.iter().map(|r| r.multiplier)),
            cols::opt_f64s(rows.iter().map(|r| r.min_tick)),
            cols::opt_date(rows.iter().map(|r| r.expiry)),
            cols::opt_f64s(rows.iter().map(|r| r.strike)),
            cols::rights(rows.iter().map(|r| r.right)),
            s(|r| &r.time_zone),
            s(|r| &r.trading_hours),
            s(|r| &r.liquid_hours),
            cols::ts(rows.iter().map(|r| r.fetched_at)),
            cols::opt_strs(rows.iter().map(|r| r.exercise_style.map(ExerciseStyle::as_str))),
        ],
    )
    .expect("columns match the schema")
}

/// Reads a batch of the file schema back into rows; a null `exercise_style` (or a batch of the
/// schema before that column) is decided from the trading class ([`Contract::style`]).
pub fn from_batch(batch: &RecordBatch) -> Vec<Contract> {
    let c = Cols(batch);
    let has_style = batch.column_by_name("exercise_style").is_some();
    (0..batch.num_rows())
        .map(|i| Contract {
            con_id: c.i64("con_id", i),
            sec_type: c.sec_type("sec_type", i),
            exchange: c.str("exchange", i),
            primary_exchange: c.opt_str("primary_exchange", i),
            currency: c.str("currency", i),
            local_symbol: c.opt_str("local_symbol", i),
            trading_class: c.opt_str("trading_class", i),
            multiplier: c.opt_f64("multiplier", i),
            min_tick: c.opt_f64("min_tick", i),
            expiry: c.opt_date("expiry", i),
            strike: c.opt_f64("strike", i),
            right: c.opt_right("right", i),
            time_zone: c.opt_str("time_zone", i),
            trading_hours: c.opt_str("trading_hours", i),
            liquid_hours: c.opt_str("liquid_hours", i),
            fetched_at: c.ts("fetched_at", i),
            exercise_style: if has_style { c.opt_str("exercise_style", i) } else { None }
                .and_then(|s| ExerciseStyle::parse(&s)),
        })
        .map(|row| Contract { exercise_style: row.style(), ..row })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let rows = vec![
            Contract {
                con_id: 756733,
                sec_type: SecType::Stock,
                exchange: "SMART".into(),
                primary_exchange: Some("ARCA".into()),
                currency: "USD".into(),
                local_symbol: Some("SPY".into()),
                time_zone: Some("US/Eastern".into()),
                fetched_at: "2024-11-22T12:00:00Z".parse().unwrap(),
                ..Default::default()
            },
            Contract {
                con_id: 9,
                sec_type: SecType::Option,
                exchange: "SMART".into(),
                currency: "USD".into(),
                multiplier: Some(100.0),
                expiry: Some("2024-12-20".parse().unwrap()),
                strike: Some(600.0),
                right: Some(Right::Call),
                trading_class: Some("SPY".into()),
                fetched_at: "2024-11-22T12:00:00Z".parse().unwrap(),
                exercise_style: Some(ExerciseStyle::American),
                ..Default::default()
            },
        ];
        assert_eq!(from_batch(&to_batch(&rows)), rows);
    }

    #[test]
    fn a_missing_style_is_decided_from_the_trading_class() {
        let option = |class: Option<&str>, local: Option<&str>| Contract {
            con_id: 1,
            sec_type: SecType::Option,
            trading_class: class.map(Into::into),
            local_symbol: local.map(Into::into),
            ..Default::default()
        };
        let stored = [
            option(Some("SPXW"), None),
            option(Some("SPY"), None),
            option(None, Some("XSP   241220C00600000")),
            option(None, None),
            Contract { sec_type: SecType::Stock, trading_class: Some("SPX".into()), ..Default::default() },
        ];
        let styles: Vec<_> = from_batch(&to_batch(&stored)).iter().map(|c| c.exercise_style).collect();
        let (a, e) = (Some(ExerciseStyle::American), Some(ExerciseStyle::European));
        assert_eq!(styles, vec![e, a, e, None, None]);
        // A stored style wins over the class (the ingest decided it with the rules of its day).
        let kept = Contract { exercise_style: a, ..option(Some("SPX"), None) };
        assert_eq!(from_batch(&to_batch(std::slice::from_ref(&kept)))[0].exercise_style, a);
        // A batch of the schema before the column existed reads the same.
        let batch = to_batch(&stored);
        let old = batch.project(&(0..batch.num_columns() - 1).collect::<Vec<_>>()).unwrap();
        assert_eq!(from_batch(&old).iter().map(|c| c.exercise_style).collect::<Vec<_>>(), styles);
    }
}
