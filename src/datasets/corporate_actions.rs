//! Corporate actions found by `update`: a stored price series that IB now answers on another
//! basis (a split, or an adjusted series moved by a dividend), one row per action found.
//!
//! The row says what was measured (the ratio stored ÷ fresh over the overlap sessions, and the
//! series and request it came from), what it was taken for (`split` when the ratio is a simple
//! fraction, `other` otherwise), and what the lake did about it (the manifest entries revoked,
//! and the revocation entry that names the reason). Partition: one file per symbol and trading
//! date of detection (`date`), like the other per-day datasets.

use super::cols::{self, f, Cols};
use arrow::array::{Array, Float64Array, StringArray};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use std::sync::{Arc, LazyLock};

/// One row per action per measured series per detection.
pub const PRIMARY_KEY: &[&str] = &["effective_date", "series", "detected_at"];

/// `kind` of an action whose ratio is a simple fraction (4, 2, 3/2, 1/10, …).
pub const SPLIT: &str = "split";
/// `kind` of any other consistent ratio (e.g. `ADJUSTED_LAST` moved by a cash dividend).
pub const OTHER: &str = "other";
/// `how` of an action found by comparing stored bars with a fresh answer over sessions held.
pub const OVERLAP: &str = "overlap";

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        f("date", DataType::Date32, false),
        f("effective_date", DataType::Date32, false),
        f("ratio", DataType::Float64, false),
        f("kind", DataType::Utf8, false),
        f("series", DataType::Utf8, false),
        f("how", DataType::Utf8, false),
        f("request_id", DataType::Utf8, false),
        f("overlap_from", DataType::Date32, false),
        f("overlap_to", DataType::Date32, false),
        f("revoked", DataType::Int64, false),
        f("revocation_id", DataType::Utf8, true),
        f("detected_at", cols::ts_type(), false),
    ]))
});

/// The file schema (the `symbol` folder is the symbol).
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// One corporate action, as found.
#[derive(Debug, Clone, PartialEq)]
pub struct CorporateAction {
    /// Trading date of the detection (the partition's date).
    pub date: NaiveDate,
    /// The first session on the new basis: the first session after the newest stored one, since
    /// every stored session was found on the old basis.
    pub effective_date: NaiveDate,
    /// Stored price ÷ fresh price (median over the overlap): 4 for a 4:1 split, 0.1 for 1:10.
    pub ratio: f64,
    /// [`SPLIT`] or [`OTHER`].
    pub kind: String,
    /// The series compared, as IB spells it (`"1 day TRADES"`).
    pub series: String,
    /// How it was found: [`OVERLAP`].
    pub how: String,
    /// The manifest entry of the request whose answer held the fresh bars.
    pub request_id: String,
    /// First overlap session compared.
    pub overlap_from: NaiveDate,
    /// Last overlap session compared.
    pub overlap_to: NaiveDate,
    /// Manifest entries revoked (their series fetched again on the new basis).
    pub revoked: i64,
    /// The revocation entry (its reason names this action), if anything was revoked.
    pub revocation_id: Option<String>,
    /// When it was found.
    pub detected_at: DateTime<Utc>,
}

/// Builds a batch of the file schema.
pub fn to_batch(rows: &[CorporateAction]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            cols::date(rows.iter().map(|r| r.date)),
            cols::date(rows.iter().map(|r| r.effective_date)),
            cols::f64s(rows.iter().map(|r| r.ratio)),
            cols::strs(rows.iter().map(|r| r.kind.as_str())),
            cols::strs(rows.iter().map(|r| r.series.as_str())),
            cols::strs(rows.iter().map(|r| r.how.as_str())),
            cols::strs(rows.iter().map(|r| r.request_id.as_str())),
            cols::date(rows.iter().map(|r| r.overlap_from)),
            cols::date(rows.iter().map(|r| r.overlap_to)),
            cols::i64s(rows.iter().map(|r| r.revoked)),
            cols::opt_strs(rows.iter().map(|r| r.revocation_id.as_deref())),
            cols::ts(rows.iter().map(|r| r.detected_at)),
        ],
    )
    .expect("columns match the schema")
}

/// Reads a batch of the file schema back into rows.
pub fn from_batch(batch: &RecordBatch) -> Vec<CorporateAction> {
    let c = Cols(batch);
    (0..batch.num_rows())
        .map(|i| CorporateAction {
            date: c.date("date", i),
            effective_date: c.date("effective_date", i),
            ratio: c.f64("ratio", i),
            kind: c.str("kind", i),
            series: c.str("series", i),
            how: c.str("how", i),
            request_id: c.str("request_id", i),
            overlap_from: c.date("overlap_from", i),
            overlap_to: c.date("overlap_to", i),
            revoked: c.i64("revoked", i),
            revocation_id: c.opt_str("revocation_id", i),
            detected_at: c.ts("detected_at", i),
        })
        .collect()
}

/// Refuses a ratio that is not a positive finite number and a kind twslake never writes.
pub fn check_rows(batch: &RecordBatch) -> Result<(), String> {
    cols::check_codes(batch, "kind", &[SPLIT, OTHER])?;
    let ratio = batch.column_by_name("ratio").and_then(|c| c.as_any().downcast_ref::<Float64Array>());
    if let Some(bad) = ratio.and_then(|r| r.iter().flatten().find(|v| !(v.is_finite() && *v > 0.0))) {
        return Err(format!("ratio {bad} is not a positive number"));
    }
    let how = batch.column_by_name("how").and_then(|c| c.as_any().downcast_ref::<StringArray>());
    if let Some(h) = how.and_then(|h| (0..h.len()).map(|i| h.value(i)).find(|v| *v != OVERLAP)) {
        return Err(format!("how {h:?} is not one twslake writes ({OVERLAP:?})"));
    }
    Ok(())
}

/// The simple fraction `p/q` (p, q ≤ 10, or an integer up to 50, or its inverse) within
/// `rel` (relative) of `ratio`, if any: what a split's ratio is.
pub fn simple_fraction(ratio: f64, rel: f64) -> Option<f64> {
    if !(ratio.is_finite() && ratio > 0.0) {
        return None;
    }
    let mut candidates: Vec<f64> = Vec::new();
    for p in 1..=10u32 {
        for q in 1..=10u32 {
            if p != q {
                candidates.push(f64::from(p) / f64::from(q));
            }
        }
    }
    for n in [15.0, 20.0, 25.0, 30.0, 40.0, 50.0] {
        candidates.extend([n, 1.0 / n]);
    }
    candidates
        .into_iter()
        .filter(|c| (ratio / c - 1.0).abs() <= rel)
        .min_by(|a, b| (ratio / a - 1.0).abs().total_cmp(&(ratio / b - 1.0).abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> CorporateAction {
        CorporateAction {
            date: "2026-06-17".parse().unwrap(),
            effective_date: "2026-06-15".parse().unwrap(),
            ratio: 4.0,
            kind: SPLIT.into(),
            series: "1 day TRADES".into(),
            how: OVERLAP.into(),
            request_id: "abc".into(),
            overlap_from: "2026-06-08".parse().unwrap(),
            overlap_to: "2026-06-12".parse().unwrap(),
            revoked: 12,
            revocation_id: Some("def".into()),
            detected_at: "2026-06-17T21:30:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn round_trip() {
        let rows = vec![row(), CorporateAction { revocation_id: None, kind: OTHER.into(), ratio: 1.004, ..row() }];
        let batch = to_batch(&rows);
        assert_eq!(from_batch(&batch), rows);
        assert!(check_rows(&batch).is_ok());
    }

    #[test]
    fn refuses_rows_twslake_never_writes() {
        let bad = to_batch(&[CorporateAction { ratio: -4.0, ..row() }]);
        assert!(check_rows(&bad).unwrap_err().contains("ratio"));
        let bad = to_batch(&[CorporateAction { kind: "merger".into(), ..row() }]);
        assert!(check_rows(&bad).is_err());
    }

    #[test]
    fn splits_are_simple_fractions() {
        assert_eq!(simple_fraction(4.0007, 0.005), Some(4.0));
        assert_eq!(simple_fraction(0.1, 0.005), Some(0.1));
        assert_eq!(simple_fraction(1.5003, 0.005), Some(1.5));
        assert_eq!(simple_fraction(20.01, 0.005), Some(20.0));
        // A dividend's adjustment is no split.
        assert_eq!(simple_fraction(1.0042, 0.001), None);
        assert_eq!(simple_fraction(f64::NAN, 0.005), None);
    }
}
