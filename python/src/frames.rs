//! Tables crossing the boundary: [`Frame`] hands a polars frame to Python through the Arrow C
//! stream interface, [`import`] takes one from Python the same way, and the `*_frame` functions
//! lay out the crate's answers (status rows, surfaces, grid points) as the Python stubs document.

use crate::{bad, polars_err};
use polars::prelude::*;
use polars_arrow::array::{Array, StructArray};
use polars_arrow::datatypes::{ArrowDataType, Field as ArrowField};
use polars_arrow::ffi;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use twslake::query::surface::grid::GridPoint;
use twslake::query::surface::{ExpirySlice, Surface};

/// A table on its way to Python: exported through the Arrow C stream interface on demand.
#[pyclass(module = "twslake._native", frozen)]
pub struct Frame {
    df: DataFrame,
}

impl Frame {
    /// Prepares the frame once for any number of hand-overs: chunks aligned across columns (a
    /// copy only when they are not), constant columns materialised (kept inside the column).
    pub(crate) fn new(mut df: DataFrame) -> Self {
        for c in df.columns() {
            let _ = c.as_materialized_series();
        }
        df.align_chunks_par();
        Frame { df }
    }
}

/// The frame (chunks aligned, see [`Frame::new`]) as an Arrow C stream of struct arrays, one per
/// chunk, sharing the columns' buffers.
fn export(df: DataFrame) -> PolarsResult<ffi::ArrowArrayStream> {
    let compat = CompatLevel::newest();
    let fields: Vec<ArrowField> = df.columns().iter().map(|c| c.field().to_arrow(compat)).collect();
    let dtype = ArrowDataType::Struct(fields);
    let mut chunks: Vec<PolarsResult<Box<dyn Array>>> = Vec::new();
    for batch in df.iter_chunks(compat, false) {
        let height = batch.height();
        let arrays = batch.into_arrays();
        chunks.push(StructArray::try_new(dtype.clone(), height, arrays, None).map(|a| a.boxed()));
    }
    Ok(ffi::export_iterator(Box::new(chunks.into_iter()), ArrowField::new("".into(), dtype, false)))
}

/// A table coming from Python: anything with `__arrow_c_stream__` (polars, pyarrow, pandas ≥ 2.2).
pub(crate) fn import(obj: &Bound<'_, PyAny>) -> PyResult<DataFrame> {
    let what = "table";
    if !obj.hasattr("__arrow_c_stream__")? {
        return Err(bad(what, &obj.get_type().name()?.to_string(), "pass a polars or pyarrow table"));
    }
    let capsule = obj.call_method1("__arrow_c_stream__", (obj.py().None(),))?;
    let capsule = capsule.cast_into::<PyCapsule>().map_err(PyErr::from)?;
    let ptr = capsule.pointer_checked(Some(c"arrow_array_stream"))?.as_ptr() as *mut ffi::ArrowArrayStream;
    // SAFETY: the capsule holds an Arrow C stream (checked by name); moving it out and leaving
    // a released (empty) stream behind is how the protocol hands over ownership.
    let stream = unsafe { std::ptr::replace(ptr, ffi::ArrowArrayStream::empty()) };
    let mut reader = unsafe { ffi::ArrowArrayStreamReader::try_new(Box::new(stream)) }.map_err(polars_err)?;
    let mut out: Option<DataFrame> = None;
    // SAFETY: the reader reads arrays the producer keeps valid until released.
    while let Some(array) = unsafe { reader.next() } {
        let array = array.map_err(polars_err)?;
        let Some(st) = array.as_any().downcast_ref::<StructArray>() else {
            return Err(bad(what, "arrow stream", "the stream must carry a table (struct arrays)"));
        };
        let df = DataFrame::try_from(st.clone()).map_err(polars_err)?;
        match &mut out {
            Some(acc) => {
                acc.vstack_mut(&df).map_err(polars_err)?;
            }
            None => out = Some(df),
        }
    }
    match out {
        Some(df) => Ok(df),
        None => {
            let ArrowDataType::Struct(fields) = reader.field().dtype() else {
                return Err(bad(what, "arrow stream", "the stream must carry a table (struct arrays)"));
            };
            let schema: Schema = fields.iter().map(Field::from).collect();
            Ok(DataFrame::empty_with_schema(&schema))
        }
    }
}

#[pymethods]
impl Frame {
    /// The Arrow PyCapsule interface: an `ArrowArrayStream` of the table (the requested schema,
    /// if any, is ignored: the producer's own schema is always offered, as the protocol allows).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let stream = export(self.df.clone()).map_err(polars_err)?;
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }

    fn __len__(&self) -> usize {
        self.df.height()
    }

    /// The column names.
    #[getter]
    fn columns(&self) -> Vec<String> {
        self.df.get_column_names().iter().map(|n| n.to_string()).collect()
    }
}

/// A Date column from dates (days since 1970, the Arrow and polars representation).
pub(crate) fn date_column(
    name: &str,
    dates: impl IntoIterator<Item = Option<chrono::NaiveDate>>,
) -> PolarsResult<Column> {
    let days: Vec<Option<i32>> = dates.into_iter().map(|d| d.map(twslake::calendar::days_of)).collect();
    Column::new(name.into(), days).cast(&DataType::Date)
}

pub(crate) fn date_frame(
    rows: impl Iterator<Item = (chrono::NaiveDate, chrono::NaiveDate, usize)>,
) -> PolarsResult<DataFrame> {
    let rows: Vec<_> = rows.collect();
    DataFrame::new_infer_height(vec![
        date_column("start", rows.iter().map(|r| Some(r.0)))?,
        date_column("end", rows.iter().map(|r| Some(r.1)))?,
        Column::new("trading_days".into(), rows.iter().map(|r| r.2 as u32).collect::<Vec<u32>>()),
    ])
}

/// `status` as a table (column types as the Python stub documents).
pub(crate) fn status_frame(rows: &[twslake::query::status::StatusRow]) -> PolarsResult<DataFrame> {
    let strs = |f: fn(&twslake::query::status::StatusRow) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
    let u32s =
        |f: fn(&twslake::query::status::StatusRow) -> usize| rows.iter().map(|r| f(r) as u32).collect::<Vec<u32>>();
    DataFrame::new_infer_height(vec![
        Column::new("symbol".into(), strs(|r| &r.symbol)),
        Column::new("dataset".into(), strs(|r| &r.dataset)),
        Column::new("rows".into(), rows.iter().map(|r| r.rows).collect::<Vec<u64>>()),
        date_column("first_date", rows.iter().map(|r| r.first_date))?,
        date_column("last_date", rows.iter().map(|r| r.last_date))?,
        Column::new(
            "latest_snapshot_age_secs".into(),
            rows.iter().map(|r| r.latest_snapshot_age_secs).collect::<Vec<_>>(),
        ),
        Column::new("missing_windows".into(), u32s(|r| r.missing_windows)),
        Column::new("requests".into(), u32s(|r| r.requests)),
        Column::new("latest_quote_age_secs".into(), rows.iter().map(|r| r.latest_quote_age_secs).collect::<Vec<_>>()),
        Column::new("capture_gaps".into(), u32s(|r| r.capture_gaps)),
    ])
}

/// A UTC timestamp column (µs, the lake's own timestamp type).
pub(crate) fn ts_column(
    name: &str,
    times: impl IntoIterator<Item = Option<chrono::DateTime<chrono::Utc>>>,
) -> PolarsResult<Column> {
    let micros: Vec<Option<i64>> = times.into_iter().map(|t| t.map(|t| t.timestamp_micros())).collect();
    Column::new(name.into(), micros).cast(&DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)))
}

/// A surface's slices, one row each (the fit, its checks and the age of its quotes; the points
/// are [`Surface::to_frame`]).
pub(crate) fn expiries_frame(s: &Surface) -> PolarsResult<DataFrame> {
    let e = &s.expiries;
    let f = |get: fn(&ExpirySlice) -> f64| e.iter().map(get).collect::<Vec<f64>>();
    let source = |x: &ExpirySlice| match x.forward_source {
        twslake::query::iv::ForwardSource::Parity => "parity",
        twslake::query::iv::ForwardSource::Configured => "configured",
    };
    DataFrame::new_infer_height(vec![
        date_column("expiry", e.iter().map(|x| Some(x.expiry)))?,
        Column::new("t".into(), f(|x| x.t)),
        Column::new("forward".into(), f(|x| x.forward)),
        Column::new("discount".into(), f(|x| x.discount)),
        Column::new("forward_source".into(), e.iter().map(source).collect::<Vec<&str>>()),
        Column::new("a".into(), f(|x| x.a)),
        Column::new("b".into(), f(|x| x.b)),
        Column::new("rho".into(), f(|x| x.rho)),
        Column::new("m".into(), f(|x| x.m)),
        Column::new("sigma".into(), f(|x| x.sigma)),
        Column::new("atm_vol".into(), f(|x| x.atm_vol)),
        Column::new("rmse".into(), f(|x| x.rmse)),
        Column::new("points".into(), e.iter().map(|x| x.points.len() as u32).collect::<Vec<u32>>()),
        Column::new("butterfly_ok".into(), e.iter().map(|x| x.butterfly_ok).collect::<Vec<bool>>()),
        Column::new("calendar_ok".into(), e.iter().map(|x| x.calendar_ok).collect::<Vec<bool>>()),
        Column::new("min_g".into(), f(|x| x.min_g)),
        ts_column("oldest_quote", e.iter().map(|x| Some(x.oldest_quote)))?,
        ts_column("newest_quote", e.iter().map(|x| Some(x.newest_quote)))?,
    ])
}

/// Points of the standardized grid ([`twslake::query::surface::grid`]), one row each.
pub(crate) fn grid_frame(points: &[GridPoint]) -> PolarsResult<DataFrame> {
    let f = |get: fn(&GridPoint) -> f64| points.iter().map(get).collect::<Vec<f64>>();
    DataFrame::new_infer_height(vec![
        Column::new("days".into(), points.iter().map(|p| p.days).collect::<Vec<i64>>()),
        Column::new("delta".into(), f(|p| p.delta)),
        Column::new("t".into(), f(|p| p.t)),
        Column::new("forward".into(), f(|p| p.forward)),
        Column::new("discount".into(), f(|p| p.discount)),
        Column::new("k".into(), f(|p| p.k)),
        Column::new("strike".into(), f(|p| p.strike)),
        Column::new("iv".into(), f(|p| p.iv)),
        Column::new("atm_vol".into(), points.iter().map(|p| p.atm_vol).collect::<Vec<Option<f64>>>()),
    ])
}

/// The listed expiries a surface has no slice for, and why.
pub(crate) fn skipped_frame(s: &Surface) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        date_column("expiry", s.skipped.iter().map(|x| Some(x.expiry)))?,
        Column::new("reason".into(), s.skipped.iter().map(|x| x.reason.as_str()).collect::<Vec<&str>>()),
    ])
}
