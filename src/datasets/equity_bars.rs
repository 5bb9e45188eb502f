//! Equity bars: OHLC bars of an underlying, one row per (bar size, what-to-show, bar start).

use super::cols::{self, f, Cols};
use crate::domain::{BarSize, Series, WhatToShow};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use std::sync::{Arc, LazyLock};

/// Identifies a bar within a symbol's partition.
pub const PRIMARY_KEY: &[&str] = &["bar_size", "what_to_show", "ts"];

/// The price and size fields every bar has, shared with option bars.
pub(crate) fn bar_fields() -> Vec<arrow::datatypes::Field> {
    vec![
        f("ts", cols::ts_type(), false),
        f("date", DataType::Date32, false),
        f("bar_size", DataType::Utf8, false),
        f("what_to_show", DataType::Utf8, false),
        f("open", DataType::Float64, false),
        f("high", DataType::Float64, false),
        f("low", DataType::Float64, false),
        f("close", DataType::Float64, false),
        f("volume", DataType::Float64, true),
        f("wap", DataType::Float64, true),
        f("bar_count", DataType::Int64, true),
        f("ingested_at", cols::ts_type(), false),
    ]
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| Arc::new(Schema::new(bar_fields())));

/// The file schema.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// One bar. `ts` is the bar's start in UTC; `date` the exchange's trading date.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Bar start (UTC).
    pub ts: DateTime<Utc>,
    /// Trading date (New York).
    pub date: NaiveDate,
    /// Bar size and what-to-show.
    pub series: Series,
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
    /// Volume (absent for MIDPOINT/BID/ASK bars).
    pub volume: Option<f64>,
    /// Volume-weighted average price.
    pub wap: Option<f64>,
    /// Number of trades.
    pub bar_count: Option<i64>,
    /// When twslake received the bar.
    pub ingested_at: DateTime<Utc>,
}

/// The bar columns of `rows`, in [`bar_fields`] order.
pub(crate) fn bar_columns(rows: &[Bar]) -> Vec<arrow::array::ArrayRef> {
    vec![
        cols::ts(rows.iter().map(|r| r.ts)),
        cols::date(rows.iter().map(|r| r.date)),
        cols::strs(rows.iter().map(|r| r.series.bar_size.ib())),
        cols::strs(rows.iter().map(|r| r.series.what_to_show.ib())),
        cols::f64s(rows.iter().map(|r| r.open)),
        cols::f64s(rows.iter().map(|r| r.high)),
        cols::f64s(rows.iter().map(|r| r.low)),
        cols::f64s(rows.iter().map(|r| r.close)),
        cols::opt_f64s(rows.iter().map(|r| r.volume)),
        cols::opt_f64s(rows.iter().map(|r| r.wap)),
        cols::opt_i64s(rows.iter().map(|r| r.bar_count)),
        cols::ts(rows.iter().map(|r| r.ingested_at)),
    ]
}

/// Reads bar `i` of a batch with the bar columns.
pub(crate) fn bar_at(c: &Cols, i: usize) -> Bar {
    let bar_size: BarSize = c.str("bar_size", i).parse().unwrap_or(BarSize::Day1);
    let what_to_show: WhatToShow = c.str("what_to_show", i).parse().unwrap_or(WhatToShow::Trades);
    Bar {
        ts: c.ts("ts", i),
        date: c.date("date", i),
        series: Series { bar_size, what_to_show },
        open: c.f64("open", i),
        high: c.f64("high", i),
        low: c.f64("low", i),
        close: c.f64("close", i),
        volume: c.opt_f64("volume", i),
        wap: c.opt_f64("wap", i),
        bar_count: c.opt_i64("bar_count", i),
        ingested_at: c.ts("ingested_at", i),
    }
}

/// Builds a batch of the file schema.
pub fn to_batch(rows: &[Bar]) -> RecordBatch {
    RecordBatch::try_new(schema(), bar_columns(rows)).expect("columns match the schema")
}

/// Reads a batch of the file schema back into rows.
pub fn from_batch(batch: &RecordBatch) -> Vec<Bar> {
    let c = Cols(batch);
    (0..batch.num_rows()).map(|i| bar_at(&c, i)).collect()
}

/// One bar as received.
#[derive(Debug, Clone, PartialEq)]
pub struct RawBar {
    /// Bar start (UTC); daily and longer bars start at their session's open.
    pub ts: DateTime<Utc>,
    /// Trading date.
    pub date: NaiveDate,
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
    /// Volume (TRADES only).
    pub volume: Option<f64>,
    /// VWAP (TRADES only).
    pub wap: Option<f64>,
    /// Trade count (TRADES only).
    pub count: Option<i64>,
}

impl RawBar {
    /// The stored row of this bar of `series`, received at `ingested_at`.
    pub fn into_bar(self, series: Series, ingested_at: DateTime<Utc>) -> Bar {
        Bar {
            ts: self.ts,
            date: self.date,
            series,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
            wap: self.wap,
            bar_count: self.count,
            ingested_at,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(n: usize) -> Vec<Bar> {
        let t0: DateTime<Utc> = "2024-11-22T14:30:00Z".parse().unwrap();
        (0..n)
            .map(|i| Bar {
                ts: t0 + chrono::Duration::minutes(i as i64),
                date: "2024-11-22".parse().unwrap(),
                series: Series { bar_size: BarSize::Min1, what_to_show: WhatToShow::Trades },
                open: 100.0 + i as f64,
                high: 101.0 + i as f64,
                low: 99.0 + i as f64,
                close: 100.5 + i as f64,
                volume: (i % 2 == 0).then_some(1000.0),
                wap: Some(100.2),
                bar_count: None,
                ingested_at: "2024-11-23T00:00:00Z".parse().unwrap(),
            })
            .collect()
    }

    #[test]
    fn round_trip() {
        let rows = sample(5);
        assert_eq!(from_batch(&to_batch(&rows)), rows);
    }
}
