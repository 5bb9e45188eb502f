//! Option-chain snapshots: the expiries and strikes listed at one moment, kept forever.
//!
//! IB serves only the current chain, so these snapshots are the only chain history there will be.

use super::cols::{self, f, Cols};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use std::sync::{Arc, LazyLock};

/// One row per listed (expiry, strike) per exchange and trading class per snapshot.
pub const PRIMARY_KEY: &[&str] = &["snapshot_at", "exchange", "trading_class", "expiration", "strike"];

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        f("snapshot_at", cols::ts_type(), false),
        f("date", DataType::Date32, false),
        f("underlying_con_id", DataType::Int64, false),
        f("exchange", DataType::Utf8, false),
        f("trading_class", DataType::Utf8, false),
        f("multiplier", DataType::Float64, false),
        f("expiration", DataType::Date32, false),
        f("strike", DataType::Float64, false),
        f("ingested_at", cols::ts_type(), false),
    ]))
});

/// The file schema (the `symbol` folder is the underlying).
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// One listed (expiry, strike) of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainRow {
    /// When the snapshot was taken (UTC).
    pub snapshot_at: DateTime<Utc>,
    /// Trading date of the snapshot.
    pub date: NaiveDate,
    /// The underlying's con_id.
    pub underlying_con_id: i64,
    /// Exchange the parameters are for.
    pub exchange: String,
    /// Trading class.
    pub trading_class: String,
    /// Multiplier.
    pub multiplier: f64,
    /// Expiration date.
    pub expiration: NaiveDate,
    /// Strike.
    pub strike: f64,
    /// When twslake stored the snapshot.
    pub ingested_at: DateTime<Utc>,
}

/// Builds a batch of the file schema.
pub fn to_batch(rows: &[ChainRow]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            cols::ts(rows.iter().map(|r| r.snapshot_at)),
            cols::date(rows.iter().map(|r| r.date)),
            cols::i64s(rows.iter().map(|r| r.underlying_con_id)),
            cols::strs(rows.iter().map(|r| r.exchange.as_str())),
            cols::strs(rows.iter().map(|r| r.trading_class.as_str())),
            cols::f64s(rows.iter().map(|r| r.multiplier)),
            cols::date(rows.iter().map(|r| r.expiration)),
            cols::f64s(rows.iter().map(|r| r.strike)),
            cols::ts(rows.iter().map(|r| r.ingested_at)),
        ],
    )
    .expect("columns match the schema")
}

/// Reads a batch of the file schema back into rows.
pub fn from_batch(batch: &RecordBatch) -> Vec<ChainRow> {
    let c = Cols(batch);
    (0..batch.num_rows())
        .map(|i| ChainRow {
            snapshot_at: c.ts("snapshot_at", i),
            date: c.date("date", i),
            underlying_con_id: c.i64("underlying_con_id", i),
            exchange: c.str("exchange", i),
            trading_class: c.str("trading_class", i),
            multiplier: c.f64("multiplier", i),
            expiration: c.date("expiration", i),
            strike: c.f64("strike", i),
            ingested_at: c.ts("ingested_at", i),
        })
        .collect()
}

/// One exchange's listed expiries and strikes (IB's sec-def option parameters).
#[derive(Debug, Clone, PartialEq)]
pub struct ChainParams {
    /// The exchange.
    pub exchange: String,
    /// The underlying's con_id.
    pub underlying_con_id: i64,
    /// Trading class.
    pub trading_class: String,
    /// Multiplier.
    pub multiplier: f64,
    /// Listed expiries.
    pub expirations: Vec<NaiveDate>,
    /// Listed strikes.
    pub strikes: Vec<f64>,
}

/// The rows of a snapshot taken at `at`: one per exchange, trading class, expiry and strike.
pub fn snapshot_rows(params: &[ChainParams], at: DateTime<Utc>) -> Vec<ChainRow> {
    let date = crate::calendar::trading_date(at);
    let mut rows = Vec::new();
    for p in params {
        for e in &p.expirations {
            for k in &p.strikes {
                rows.push(ChainRow {
                    snapshot_at: at,
                    date,
                    underlying_con_id: p.underlying_con_id,
                    exchange: p.exchange.clone(),
                    trading_class: p.trading_class.clone(),
                    multiplier: p.multiplier,
                    expiration: *e,
                    strike: *k,
                    ingested_at: at,
                });
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let at: DateTime<Utc> = "2024-11-22T15:00:00Z".parse().unwrap();
        let rows: Vec<ChainRow> = [590.0, 595.0, 600.0]
            .into_iter()
            .map(|strike| ChainRow {
                snapshot_at: at,
                date: "2024-11-22".parse().unwrap(),
                underlying_con_id: 756733,
                exchange: "SMART".into(),
                trading_class: "SPY".into(),
                multiplier: 100.0,
                expiration: "2024-12-20".parse().unwrap(),
                strike,
                ingested_at: at,
            })
            .collect();
        assert_eq!(from_batch(&to_batch(&rows)), rows);
    }
}
