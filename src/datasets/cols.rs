//! Column helpers shared by the dataset modules: builders, readers and row checks.

use crate::calendar::{date_of_days, days_of};
use crate::domain::{ExerciseStyle, Right, SecType};
use arrow::array::{
    Array, ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, TimeUnit};
use chrono::{DateTime, NaiveDate, Utc};
use std::sync::Arc;

/// UTC timestamps in microseconds: the one time type of the lake.
pub(crate) fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub(crate) fn f(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}

pub(crate) fn ts(v: impl Iterator<Item = DateTime<Utc>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(v.map(|t| t.timestamp_micros())).with_timezone("UTC"))
}

pub(crate) fn date(v: impl Iterator<Item = NaiveDate>) -> ArrayRef {
    Arc::new(Date32Array::from_iter_values(v.map(days_of)))
}

pub(crate) fn opt_date(v: impl Iterator<Item = Option<NaiveDate>>) -> ArrayRef {
    Arc::new(v.map(|d| d.map(days_of)).collect::<Date32Array>())
}

pub(crate) fn f64s(v: impl Iterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(v))
}

pub(crate) fn opt_f64s(v: impl Iterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(v.collect::<Float64Array>())
}

pub(crate) fn i64s(v: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(v))
}

pub(crate) fn opt_i64s(v: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(v.collect::<Int64Array>())
}

pub(crate) fn strs<'a>(v: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(v.map(Some).collect::<StringArray>())
}

pub(crate) fn opt_strs<'a>(v: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(v.collect::<StringArray>())
}

pub(crate) fn sec_types(v: impl Iterator<Item = SecType>) -> ArrayRef {
    strs(v.map(SecType::ib))
}

pub(crate) fn rights(v: impl Iterator<Item = Option<Right>>) -> ArrayRef {
    opt_strs(v.map(|r| r.map(Right::letter)))
}

/// Typed access to a batch's columns by name, for reading rows back.
pub(crate) struct Cols<'a>(pub &'a RecordBatch);

impl<'a> Cols<'a> {
    fn col<T: 'static>(&self, name: &str) -> &'a T {
        self.0
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .unwrap_or_else(|| panic!("column {name} of the dataset schema"))
    }
    pub fn ts(&self, name: &str, i: usize) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.col::<TimestampMicrosecondArray>(name).value(i)).unwrap_or_default()
    }
    pub fn date(&self, name: &str, i: usize) -> NaiveDate {
        date_of_days(self.col::<Date32Array>(name).value(i))
    }
    pub fn opt_date(&self, name: &str, i: usize) -> Option<NaiveDate> {
        let a = self.col::<Date32Array>(name);
        a.is_valid(i).then(|| date_of_days(a.value(i)))
    }
    pub fn f64(&self, name: &str, i: usize) -> f64 {
        self.col::<Float64Array>(name).value(i)
    }
    pub fn opt_f64(&self, name: &str, i: usize) -> Option<f64> {
        let a = self.col::<Float64Array>(name);
        a.is_valid(i).then(|| a.value(i))
    }
    pub fn i64(&self, name: &str, i: usize) -> i64 {
        self.col::<Int64Array>(name).value(i)
    }
    pub fn opt_i64(&self, name: &str, i: usize) -> Option<i64> {
        let a = self.col::<Int64Array>(name);
        a.is_valid(i).then(|| a.value(i))
    }
    pub fn str(&self, name: &str, i: usize) -> String {
        self.col::<StringArray>(name).value(i).to_string()
    }
    pub fn opt_str(&self, name: &str, i: usize) -> Option<String> {
        let a = self.col::<StringArray>(name);
        a.is_valid(i).then(|| a.value(i).to_string())
    }
    /// A security type; twslake writes only `STK` and `OPT` ([`check_codes`] on every write, and
    /// `validate` flags a file holding others), read as a stock otherwise.
    pub fn sec_type(&self, name: &str, i: usize) -> SecType {
        self.col::<StringArray>(name).value(i).parse().unwrap_or(SecType::Stock)
    }
    /// An option right, `None` where null (checked like [`Cols::sec_type`]).
    pub fn opt_right(&self, name: &str, i: usize) -> Option<Right> {
        let a = self.col::<StringArray>(name);
        a.is_valid(i).then(|| Right::parse(a.value(i))).flatten()
    }
}

/// Text codes must be among `allowed` where present (security types, option rights).
pub(crate) fn check_codes(batch: &RecordBatch, name: &str, allowed: &[&str]) -> Result<(), String> {
    let Some(a) = batch.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<StringArray>()) else {
        return Ok(());
    };
    match a.iter().enumerate().find_map(|(i, v)| v.filter(|v| !allowed.contains(v)).map(|v| (i, v))) {
        Some((i, v)) => Err(format!("row {i}: {name} = {v:?} (expected one of {})", allowed.join(", "))),
        None => Ok(()),
    }
}

/// Security types, option rights and exercise styles twslake stores.
pub(crate) fn check_contract_codes(batch: &RecordBatch) -> Result<(), String> {
    check_codes(batch, "sec_type", &[SecType::Stock.ib(), SecType::Option.ib()])?;
    check_codes(batch, "right", &[Right::Call.letter(), Right::Put.letter()])?;
    let styles = [ExerciseStyle::American.as_str(), ExerciseStyle::European.as_str()];
    check_codes(batch, "exercise_style", &styles)
}

fn floats<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a Float64Array> {
    batch.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<Float64Array>())
}

/// Prices must be finite and non-negative where present.
pub(crate) fn check_non_negative(batch: &RecordBatch, names: &[&str]) -> Result<(), String> {
    for name in names {
        let Some(a) = floats(batch, name) else { continue };
        if let Some((i, v)) =
            a.iter().enumerate().find_map(|(i, v)| v.filter(|v| !v.is_finite() || *v < 0.0).map(|v| (i, v)))
        {
            return Err(format!("row {i}: {name} = {v} (prices must be finite and non-negative)"));
        }
    }
    Ok(())
}

/// Bars: finite non-negative prices and high ≥ low.
pub(crate) fn check_ohlc(batch: &RecordBatch) -> Result<(), String> {
    check_non_negative(batch, &["open", "high", "low", "close"])?;
    let (Some(h), Some(l)) = (floats(batch, "high"), floats(batch, "low")) else { return Ok(()) };
    for i in 0..batch.num_rows() {
        if h.is_valid(i) && l.is_valid(i) && h.value(i) < l.value(i) {
            return Err(format!("row {i}: high {} < low {}", h.value(i), l.value(i)));
        }
    }
    Ok(())
}
