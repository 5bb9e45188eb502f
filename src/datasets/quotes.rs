//! Live quotes and option computations: one row per observed state of a contract's quote.

use super::cols::{self, f, Cols};
use crate::domain::{Right, SecType};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use std::sync::{Arc, LazyLock};

/// `seq` orders states that share a microsecond.
pub const PRIMARY_KEY: &[&str] = &["con_id", "ts", "seq"];

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let num = |n: &str| f(n, DataType::Float64, true);
    Arc::new(Schema::new(vec![
        f("ts", cols::ts_type(), false),
        f("date", DataType::Date32, false),
        f("con_id", DataType::Int64, false),
        f("seq", DataType::Int64, false),
        f("sec_type", DataType::Utf8, false),
        f("expiry", DataType::Date32, true),
        num("strike"),
        f("right", DataType::Utf8, true),
        num("bid"),
        num("ask"),
        num("last"),
        num("bid_size"),
        num("ask_size"),
        num("last_size"),
        num("implied_vol"),
        num("delta"),
        num("gamma"),
        num("vega"),
        num("theta"),
        num("underlying_price"),
        f("ingested_at", cols::ts_type(), false),
    ]))
});

/// The file schema (the `symbol` folder is the underlying).
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// One quote state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Quote {
    /// When the tick arrived (UTC).
    pub ts: DateTime<Utc>,
    /// Trading date.
    pub date: NaiveDate,
    /// Contract id.
    pub con_id: i64,
    /// Sequence number within the capture.
    pub seq: i64,
    /// `STK` or `OPT`.
    pub sec_type: SecType,
    /// Expiry (options).
    pub expiry: Option<NaiveDate>,
    /// Strike (options).
    pub strike: Option<f64>,
    /// `C` or `P` (options).
    pub right: Option<Right>,
    /// Bid.
    pub bid: Option<f64>,
    /// Ask.
    pub ask: Option<f64>,
    /// Last trade.
    pub last: Option<f64>,
    /// Bid size.
    pub bid_size: Option<f64>,
    /// Ask size.
    pub ask_size: Option<f64>,
    /// Last size.
    pub last_size: Option<f64>,
    /// Implied volatility (options).
    pub implied_vol: Option<f64>,
    /// Delta.
    pub delta: Option<f64>,
    /// Gamma.
    pub gamma: Option<f64>,
    /// Vega.
    pub vega: Option<f64>,
    /// Theta.
    pub theta: Option<f64>,
    /// Underlying price used by IB's computation.
    pub underlying_price: Option<f64>,
    /// When the row was written.
    pub ingested_at: DateTime<Utc>,
}

/// Builds a batch of the file schema.
pub fn to_batch(rows: &[Quote]) -> RecordBatch {
    let n = |get: fn(&Quote) -> Option<f64>| cols::opt_f64s(rows.iter().map(get));
    RecordBatch::try_new(
        schema(),
        vec![
            cols::ts(rows.iter().map(|r| r.ts)),
            cols::date(rows.iter().map(|r| r.date)),
            cols::i64s(rows.iter().map(|r| r.con_id)),
            cols::i64s(rows.iter().map(|r| r.seq)),
            cols::sec_types(rows.iter().map(|r| r.sec_type)),
            cols::opt_date(rows.iter().map(|r| r.expiry)),
            n(|r| r.strike),
            cols::rights(rows.iter().map(|r| r.right)),
            n(|r| r.bid),
            n(|r| r.ask),
            n(|r| r.last),
            n(|r| r.bid_size),
            n(|r| r.ask_size),
            n(|r| r.last_size),
            n(|r| r.implied_vol),
            n(|r| r.delta),
            n(|r| r.gamma),
            n(|r| r.vega),
            n(|r| r.theta),
            n(|r| r.underlying_price),
            cols::ts(rows.iter().map(|r| r.ingested_at)),
        ],
    )
    .expect("columns match the schema")
}

/// Reads a batch of the file schema back into rows.
pub fn from_batch(batch: &RecordBatch) -> Vec<Quote> {
    let c = Cols(batch);
    (0..batch.num_rows())
        .map(|i| Quote {
            ts: c.ts("ts", i),
            date: c.date("date", i),
            con_id: c.i64("con_id", i),
            seq: c.i64("seq", i),
            sec_type: c.sec_type("sec_type", i),
            expiry: c.opt_date("expiry", i),
            strike: c.opt_f64("strike", i),
            right: c.opt_right("right", i),
            bid: c.opt_f64("bid", i),
            ask: c.opt_f64("ask", i),
            last: c.opt_f64("last", i),
            bid_size: c.opt_f64("bid_size", i),
            ask_size: c.opt_f64("ask_size", i),
            last_size: c.opt_f64("last_size", i),
            implied_vol: c.opt_f64("implied_vol", i),
            delta: c.opt_f64("delta", i),
            gamma: c.opt_f64("gamma", i),
            vega: c.opt_f64("vega", i),
            theta: c.opt_f64("theta", i),
            underlying_price: c.opt_f64("underlying_price", i),
            ingested_at: c.ts("ingested_at", i),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let ts: DateTime<Utc> = "2024-11-22T15:00:00.123456Z".parse().unwrap();
        let rows = vec![Quote {
            ts,
            date: "2024-11-22".parse().unwrap(),
            con_id: 42,
            seq: 7,
            sec_type: SecType::Option,
            expiry: Some("2024-12-20".parse().unwrap()),
            strike: Some(600.0),
            right: Some(Right::Put),
            bid: Some(1.25),
            ask: Some(1.30),
            implied_vol: Some(0.18),
            delta: Some(-0.4),
            ingested_at: ts,
            ..Default::default()
        }];
        assert_eq!(from_batch(&to_batch(&rows)), rows);
    }
}
