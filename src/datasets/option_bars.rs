//! Option bars: the bar columns plus the option contract they belong to.

use super::cols::{self, f, Cols};
use super::equity_bars::{bar_at, bar_columns, bar_fields, Bar};
use crate::domain::Right;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use std::sync::{Arc, LazyLock};

/// Identifies an option bar within an underlying's partition.
pub const PRIMARY_KEY: &[&str] = &["bar_size", "what_to_show", "con_id", "ts"];

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        f("con_id", DataType::Int64, false),
        f("expiry", DataType::Date32, false),
        f("strike", DataType::Float64, false),
        f("right", DataType::Utf8, false),
        f("multiplier", DataType::Float64, false),
    ];
    fields.extend(bar_fields());
    Arc::new(Schema::new(fields))
});

/// The file schema (the `symbol` folder is the underlying).
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// The option contract a bar belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionContract {
    /// IB's contract id.
    pub con_id: i64,
    /// Expiration date.
    pub expiry: NaiveDate,
    /// Strike price.
    pub strike: f64,
    /// Call or put.
    pub right: Right,
    /// Contract multiplier (usually 100).
    pub multiplier: f64,
}

/// One option bar.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionBar {
    /// The contract.
    pub contract: OptionContract,
    /// The bar.
    pub bar: Bar,
}

/// Builds a batch of the file schema.
pub fn to_batch(rows: &[OptionBar]) -> RecordBatch {
    let mut columns = vec![
        cols::i64s(rows.iter().map(|r| r.contract.con_id)),
        cols::date(rows.iter().map(|r| r.contract.expiry)),
        cols::f64s(rows.iter().map(|r| r.contract.strike)),
        cols::rights(rows.iter().map(|r| Some(r.contract.right))),
        cols::f64s(rows.iter().map(|r| r.contract.multiplier)),
    ];
    let bars: Vec<Bar> = rows.iter().map(|r| r.bar.clone()).collect();
    columns.extend(bar_columns(&bars));
    RecordBatch::try_new(schema(), columns).expect("columns match the schema")
}

/// Reads a batch of the file schema back into rows.
pub fn from_batch(batch: &RecordBatch) -> Vec<OptionBar> {
    let c = Cols(batch);
    (0..batch.num_rows())
        .map(|i| OptionBar {
            contract: OptionContract {
                con_id: c.i64("con_id", i),
                expiry: c.date("expiry", i),
                strike: c.f64("strike", i),
                // Never null and always C or P in what twslake writes (`check_rows`; `validate`
                // flags a file that says otherwise).
                right: c.opt_right("right", i).unwrap_or(Right::Call),
                multiplier: c.f64("multiplier", i),
            },
            bar: bar_at(&c, i),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let rows: Vec<OptionBar> = crate::datasets::equity_bars::tests::sample(3)
            .into_iter()
            .enumerate()
            .map(|(i, bar)| OptionBar {
                contract: OptionContract {
                    con_id: 1000 + i as i64,
                    expiry: "2024-12-20".parse().unwrap(),
                    strike: 100.0,
                    right: if i % 2 == 0 { Right::Call } else { Right::Put },
                    multiplier: 100.0,
                },
                bar,
            })
            .collect();
        assert_eq!(from_batch(&to_batch(&rows)), rows);
    }
}
