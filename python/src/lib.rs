//! `twslake._native`: the Rust half of twslake's Python package.
//!
//! The Python module `twslake` (in `python/twslake/`) is the public face; this extension does the
//! work with the same code as the `twslake` binary and hands results over as [`Frame`]s: objects
//! that speak the Arrow PyCapsule interface (`__arrow_c_stream__`), so `polars.DataFrame(frame)`
//! (or pyarrow, DuckDB) takes the columns' buffers as they are, with no copy through text.
//! Frames coming *from* Python (implied vols of a user's table) cross the same way.
//!
//! Errors become the exception classes below, named for what the user can do about them; every
//! message is the crate's own (it names the input and what to do).

// Python keyword arguments map one to one onto these functions' parameters.
#![allow(clippy::too_many_arguments)]

use polars::prelude::*;
use polars_arrow::array::{Array, StructArray};
use polars_arrow::datatypes::{ArrowDataType, Field as ArrowField};
use polars_arrow::ffi;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::OnceLock;
use twslake::datasets::Dataset;
use twslake::error::Error;
use twslake::lake::layout::{BarSize, DataObject, Partition, Series, Symbol, WhatToShow};
use twslake::query::coverage::SeriesSpec;
use twslake::query::iv::{self, IvColumns, Rates};
use twslake::query::pit::AsOf;
use twslake::query::surface::SurfaceOptions;
use twslake::query::{collect, ScanFilter};
use twslake::Lake;

pyo3::create_exception!(twslake, TwslakeError, PyException, "Base class of every twslake error.");
pyo3::create_exception!(
    twslake,
    BadInputError,
    TwslakeError,
    "An argument (symbol, instant, bar size, URL, SQL, rows) is unusable; the message says what to give instead. Nothing was changed."
);
pyo3::create_exception!(
    twslake,
    StorageError,
    TwslakeError,
    "The file system or S3 failed (missing lake folder, credentials, network); fix access and retry."
);
pyo3::create_exception!(
    twslake,
    CorruptError,
    TwslakeError,
    "A file in the lake is not what its place in the layout says; run `twslake validate`."
);
pyo3::create_exception!(
    twslake,
    IntegrityError,
    TwslakeError,
    "The lake contradicts itself; `twslake update` repairs what it can."
);
pyo3::create_exception!(twslake, QueryError, TwslakeError, "A polars query failed.");
pyo3::create_exception!(
    twslake,
    PrerequisiteError,
    TwslakeError,
    "Option data asked for before contracts, a fresh chain or a recent spot exist; run `twslake setup SYMBOL`."
);
pyo3::create_exception!(twslake, GatewayError, TwslakeError, "The TWS gateway failed a request.");

fn py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::BadInput { .. } | Error::BadRows { .. } => BadInputError::new_err(msg),
        Error::Storage { .. } | Error::Io { .. } | Error::Contention { .. } => StorageError::new_err(msg),
        Error::Corrupt { .. } | Error::Parquet { .. } => CorruptError::new_err(msg),
        Error::Integrity(_) => IntegrityError::new_err(msg),
        Error::Query(_) => QueryError::new_err(msg),
        Error::Prerequisite { .. } => PrerequisiteError::new_err(msg),
        Error::Gateway { .. } => GatewayError::new_err(msg),
    }
}

fn polars_err(e: PolarsError) -> PyErr {
    py_err(Error::Query(e))
}

fn bad(what: &'static str, input: &str, reason: impl Into<String>) -> PyErr {
    py_err(Error::bad_input(what, input, reason))
}

/// The runtime the lake's async calls run on (object_store and the manifest reads are async).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("twslake-py")
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Runs the future `make` returns to completion without holding the GIL (other Python threads
/// go on meanwhile). The future is made and polled on this thread, so it need not be `Send`.
fn block<T: Send, Fut: Future<Output = twslake::Result<T>>, F: FnOnce() -> Fut + Send>(
    py: Python<'_>,
    make: F,
) -> PyResult<T> {
    py.detach(|| runtime().block_on(make())).map_err(py_err)
}

/// Instants as the CLI's `--at` reads them (RFC 3339, New York wall-clock time, or a date's close).
fn instant(s: &str) -> PyResult<chrono::DateTime<chrono::Utc>> {
    twslake::query::pit::parse_instant(s).map_err(py_err)
}

fn date(s: &str) -> PyResult<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad("date", s, "use YYYY-MM-DD"))
}

fn symbol(s: &str) -> PyResult<Symbol> {
    Symbol::new(s).map_err(py_err)
}

fn dataset(name: &str) -> PyResult<Dataset> {
    Dataset::ALL.into_iter().find(|d| d.name() == name).ok_or_else(|| {
        let names: Vec<&str> = Dataset::ALL.iter().map(|d| d.name()).collect();
        bad("dataset", name, format!("use one of {}", names.join(", ")))
    })
}

fn series(bar_size: &str, what_to_show: &str) -> PyResult<Series> {
    let bar_size: BarSize = bar_size.parse().map_err(py_err)?;
    let what_to_show: WhatToShow = what_to_show.parse().map_err(py_err)?;
    Ok(Series { bar_size, what_to_show })
}

/// A file of a scan: `(symbol, url)`.
type SymbolUrl = (String, String);

/// What a scan reads, as Python passes it: `(dataset, symbols, bar_size, what_to_show, start,
/// end)`, each filter `None` for "all" (see `twslake.Lake.scan`).
#[derive(FromPyObject)]
struct Scan(String, Option<Vec<String>>, Option<String>, Option<String>, Option<String>, Option<String>);

impl Scan {
    fn filter(&self) -> PyResult<(Dataset, ScanFilter)> {
        let Scan(name, symbols, bar_size, what_to_show, start, end) = self;
        let filter = ScanFilter {
            symbols: symbols.as_ref().map(|v| v.iter().map(|s| symbol(s)).collect::<PyResult<Vec<_>>>()).transpose()?,
            series: match (bar_size, what_to_show) {
                (Some(b), Some(w)) => Some(series(b, w)?),
                (None, None) => None,
                _ => return Err(bad("series", name, "give both bar_size and what_to_show, or neither")),
            },
            from: start.as_deref().map(date).transpose()?,
            to: end.as_deref().map(date).transpose()?,
        };
        Ok((dataset(name)?, filter))
    }
}

/// The 1-minute equity series of a spot's what-to-show.
fn series_of(what_to_show: &str) -> Series {
    twslake::query::pit::SPOT_SERIES
        .into_iter()
        .find(|s| s.what_to_show.ib() == what_to_show)
        .unwrap_or(twslake::query::pit::SPOT_SERIES[0])
}

/// A table on its way to Python: exported through the Arrow C stream interface on demand.
#[pyclass(module = "twslake._native", frozen)]
pub struct Frame {
    df: DataFrame,
}

impl Frame {
    /// Prepares the frame once for any number of hand-overs: chunks aligned across columns (a
    /// copy only when they are not), constant columns materialised (kept inside the column).
    fn new(mut df: DataFrame) -> Self {
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
fn import(obj: &Bound<'_, PyAny>) -> PyResult<DataFrame> {
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

/// A lake opened read-only from a path, `file://` or `s3://` URL.
#[pyclass(module = "twslake._native", frozen)]
pub struct NativeLake {
    lake: Lake,
}

/// A Date column from dates (days since 1970, the Arrow and polars representation).
fn date_column(name: &str, dates: impl IntoIterator<Item = Option<chrono::NaiveDate>>) -> PolarsResult<Column> {
    let epoch = chrono::NaiveDate::default();
    let days: Vec<Option<i32>> = dates.into_iter().map(|d| d.map(|d| (d - epoch).num_days() as i32)).collect();
    Column::new(name.into(), days).cast(&DataType::Date)
}

fn date_frame(rows: impl Iterator<Item = (chrono::NaiveDate, chrono::NaiveDate, usize)>) -> PolarsResult<DataFrame> {
    let rows: Vec<_> = rows.collect();
    DataFrame::new_infer_height(vec![
        date_column("start", rows.iter().map(|r| Some(r.0)))?,
        date_column("end", rows.iter().map(|r| Some(r.1)))?,
        Column::new("trading_days".into(), rows.iter().map(|r| r.2 as u32).collect::<Vec<u32>>()),
    ])
}

/// `status` as a table (column types as the Python stub documents).
fn status_frame(rows: &[twslake::query::status::StatusRow]) -> PolarsResult<DataFrame> {
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

/// A surface's slices, one row each (the fit and its checks; the points are [`Surface::to_frame`]).
fn expiries_frame(s: &twslake::query::surface::Surface) -> PolarsResult<DataFrame> {
    let e = &s.expiries;
    let f = |get: fn(&twslake::query::surface::ExpirySlice) -> f64| e.iter().map(get).collect::<Vec<f64>>();
    DataFrame::new_infer_height(vec![
        date_column("expiry", e.iter().map(|x| Some(x.expiry)))?,
        Column::new("t".into(), f(|x| x.t)),
        Column::new("forward".into(), f(|x| x.forward)),
        Column::new("discount".into(), f(|x| x.discount)),
        Column::new("a".into(), f(|x| x.a)),
        Column::new("b".into(), f(|x| x.b)),
        Column::new("rho".into(), f(|x| x.rho)),
        Column::new("m".into(), f(|x| x.m)),
        Column::new("sigma".into(), f(|x| x.sigma)),
        Column::new("rmse".into(), f(|x| x.rmse)),
        Column::new("butterfly_ok".into(), e.iter().map(|x| x.butterfly_ok).collect::<Vec<bool>>()),
        Column::new("calendar_ok".into(), e.iter().map(|x| x.calendar_ok).collect::<Vec<bool>>()),
        Column::new("min_g".into(), f(|x| x.min_g)),
    ])
}

/// The listed expiries a surface has no slice for, and why.
fn skipped_frame(s: &twslake::query::surface::Surface) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        date_column("expiry", s.skipped.iter().map(|x| Some(x.expiry)))?,
        Column::new("reason".into(), s.skipped.iter().map(|x| x.reason.as_str()).collect::<Vec<&str>>()),
    ])
}

impl NativeLake {
    async fn objects(&self, ds: Dataset, filter: &ScanFilter) -> twslake::Result<BTreeMap<Partition, Vec<DataObject>>> {
        let mut objects = BTreeMap::new();
        match &filter.symbols {
            Some(list) => {
                for s in list {
                    objects.extend(self.lake.data_objects(ds, Some(s)).await?);
                }
            }
            None => objects = self.lake.data_objects(ds, None).await?,
        }
        objects.retain(|p, _| filter.keeps(p));
        Ok(objects)
    }
}

#[pymethods]
impl NativeLake {
    #[new]
    #[pyo3(signature = (url, storage_options=None))]
    fn new(url: &str, storage_options: Option<Vec<(String, String)>>) -> PyResult<Self> {
        let options = storage_options.unwrap_or_default();
        let pairs: Vec<(&str, &str)> = options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Ok(NativeLake { lake: Lake::open_existing_with(url, &pairs).map_err(py_err)? })
    }

    /// The lake's location as a URL.
    #[getter]
    fn url(&self) -> String {
        self.lake.location().url_of("")
    }

    /// polars' storage options for this lake's files (empty on local disk).
    fn storage_options(&self) -> Vec<(String, String)> {
        self.lake.s3_config().to_vec()
    }

    /// The symbols with a manifest (anything ever requested for them).
    fn symbols(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let syms = block(py, || self.lake.manifest_symbols())?;
        Ok(syms.into_iter().map(|s| s.as_str().to_string()).collect())
    }

    /// How to read a scan, from one listing: the files polars can read as they are, as
    /// `(symbol, url)` pairs, and the partitions a live capture is still writing (a day file and
    /// micro-batches) read here and merged on the key as every twslake reader does, or `None`.
    fn files(&self, py: Python<'_>, scan: Scan) -> PyResult<(Vec<SymbolUrl>, Option<Frame>)> {
        let (ds, filter) = scan.filter()?;
        let (whole, micro) = block(py, || async {
            let (micro, whole): (BTreeMap<_, _>, BTreeMap<_, _>) = self
                .objects(ds, &filter)
                .await?
                .into_iter()
                .partition(|(_, list)| list.iter().any(|o| matches!(o, DataObject::MicroBatch(_))));
            let micro = match micro.is_empty() {
                true => None,
                false => Some(collect(self.lake.scan_objects(ds, &micro)?).await?),
            };
            Ok((whole, micro))
        })?;
        let urls = whole
            .into_iter()
            .flat_map(|(p, list)| {
                let sym = p.symbol.as_str().to_string();
                list.into_iter().map(move |o| (sym.clone(), o.path()))
            })
            .map(|(sym, path)| (sym, self.lake.location().url_of(path.as_ref())))
            .collect();
        Ok((urls, micro.map(Frame::new)))
    }

    /// A dataset read through the Rust scan (pruned partitions, then collected).
    fn read(&self, py: Python<'_>, scan: Scan) -> PyResult<Frame> {
        let (ds, filter) = scan.filter()?;
        let df = block(py, || async { collect(self.lake.scan(ds, &filter).await?).await })?;
        Ok(Frame::new(df))
    }

    /// Trading-day windows of `[start, end]` that no final answer covers.
    #[pyo3(signature = (dataset_name, sym, bar_size, what_to_show, start, end, con_id=None))]
    fn missing_windows(
        &self,
        py: Python<'_>,
        dataset_name: &str,
        sym: &str,
        bar_size: &str,
        what_to_show: &str,
        start: &str,
        end: &str,
        con_id: Option<i64>,
    ) -> PyResult<Frame> {
        let spec = SeriesSpec {
            dataset: dataset(dataset_name)?,
            symbol: symbol(sym)?,
            con_id,
            series: series(bar_size, what_to_show)?,
        };
        let (from, to) = (date(start)?, date(end)?);
        if from > to {
            return Err(bad("date range", &format!("{start}..{end}"), "start must not be after end"));
        }
        let windows = block(py, || self.lake.missing_windows(&spec, from, to))?;
        let df = date_frame(windows.into_iter().map(|w| (w.start, w.end, w.trading_days))).map_err(polars_err)?;
        Ok(Frame::new(df))
    }

    /// What the lake holds per symbol and dataset, as JSON rows (the Python side makes the frame).
    #[pyo3(signature = (now=None))]
    fn status(&self, py: Python<'_>, now: Option<&str>) -> PyResult<Frame> {
        let now = now.map(instant).transpose()?.unwrap_or_else(chrono::Utc::now);
        let rows = block(py, || self.lake.status(now))?;
        Ok(Frame::new(status_frame(&rows).map_err(polars_err)?))
    }

    /// The spot at an instant: `(price, as_of, what_to_show)`.
    fn spot_at(&self, py: Python<'_>, sym: &str, at: &str) -> PyResult<(f64, String, String)> {
        let (s, at) = (symbol(sym)?, instant(at)?);
        let spot = block(py, || self.lake.spot_at(&s, at))?;
        Ok((spot.price, spot.as_of.to_rfc3339(), spot.what_to_show))
    }

    /// The latest chain snapshot taken at or before an instant.
    fn chain_as_of(&self, py: Python<'_>, sym: &str, at: &str) -> PyResult<Frame> {
        let (s, at) = (symbol(sym)?, instant(at)?);
        Ok(Frame::new(block(py, || self.lake.chain_as_of(&s, at))?))
    }

    /// The option panel at an instant, with implied vols and greeks when asked.
    #[pyo3(signature = (sym, at, start, bar_size, what_to_show, spot_what_to_show, rate, dividend_yield, implied_vol, greeks))]
    fn option_panel(
        &self,
        py: Python<'_>,
        sym: &str,
        at: &str,
        start: Option<&str>,
        bar_size: &str,
        what_to_show: &str,
        spot_what_to_show: Option<&str>,
        rate: f64,
        dividend_yield: f64,
        implied_vol: bool,
        greeks: bool,
    ) -> PyResult<Frame> {
        let (s, at) = (symbol(sym)?, instant(at)?);
        let from = match start {
            Some(d) => date(d)?,
            None => twslake::calendar::trading_date(at),
        };
        let q = AsOf { symbol: s, series: series(bar_size, what_to_show)?, from, at };
        let chosen = spot_what_to_show.map(|w| series("1 min", w)).transpose()?;
        let rates = Rates { rate, dividend_yield };
        let df = block(py, || async {
            // By default the series `spot_at` reads (MIDPOINT preferred to TRADES), like `surface`.
            let spot_series = match chosen {
                Some(s) => s,
                None => {
                    let spot = self.lake.spot_at(&q.symbol, q.at).await?;
                    series_of(&spot.what_to_show)
                }
            };
            let panel = self.lake.option_panel(&q, spot_series).await?;
            let lf = if implied_vol || greeks { rates.with_columns(panel) } else { panel };
            let mut df = collect(lf).await?;
            if implied_vol || greeks {
                df = iv::with_implied_vol(df, &IvColumns::default())?;
            }
            if greeks {
                df = iv::with_greeks(df, &IvColumns::default())?;
            }
            Ok(df)
        })?;
        Ok(Frame::new(df))
    }

    /// The volatility surface: its JSON (as `twslake surface --json` prints it), its points, its
    /// slices and its skipped expiries.
    #[pyo3(signature = (sym, at, bar_size, max_staleness_min, rate, dividend_yield))]
    fn surface(
        &self,
        py: Python<'_>,
        sym: &str,
        at: &str,
        bar_size: &str,
        max_staleness_min: i64,
        rate: f64,
        dividend_yield: f64,
    ) -> PyResult<(String, Frame, Frame, Frame)> {
        let (s, at) = (symbol(sym)?, instant(at)?);
        if max_staleness_min < 1 {
            return Err(bad("max_staleness_min", &max_staleness_min.to_string(), "give at least 1 minute"));
        }
        let opts = SurfaceOptions {
            series: series(bar_size, "MIDPOINT")?,
            max_staleness: chrono::Duration::minutes(max_staleness_min),
            rates: Rates { rate, dividend_yield },
            ..Default::default()
        };
        let surface = block(py, || self.lake.surface(&s, at, &opts))?;
        let json = serde_json::to_string(&surface).expect("surfaces serialise");
        let points = Frame::new(surface.to_frame().map_err(py_err)?);
        let expiries = Frame::new(expiries_frame(&surface).map_err(polars_err)?);
        let skipped = Frame::new(skipped_frame(&surface).map_err(polars_err)?);
        Ok((json, points, expiries, skipped))
    }

    /// polars SQL over the datasets registered as tables.
    fn sql(&self, py: Python<'_>, query: &str) -> PyResult<Frame> {
        let df = block(py, || async { collect(self.lake.sql(query).await?).await })?;
        Ok(Frame::new(df))
    }
}

fn iv_columns(names: (String, String, String, String, String, String, String, String)) -> IvColumns {
    let (price, discount, forward, strike, t, right, spot, iv) = names;
    IvColumns { price, discount, forward, strike, t, right, spot, iv }
}

/// Adds implied vols (Let's Be Rational) to a table from Python.
#[pyfunction]
#[pyo3(signature = (table, price, discount, forward, strike, t, right, spot, out, greeks))]
fn implied_vols(
    py: Python<'_>,
    table: &Bound<'_, PyAny>,
    price: String,
    discount: String,
    forward: String,
    strike: String,
    t: String,
    right: String,
    spot: String,
    out: String,
    greeks: bool,
) -> PyResult<Frame> {
    let df = import(table)?;
    let cols = iv_columns((price, discount, forward, strike, t, right, spot, out));
    for name in [&cols.price, &cols.discount, &cols.forward, &cols.strike, &cols.t, &cols.right] {
        if df.column(name).is_err() {
            let have = df.get_column_names().iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ");
            return Err(bad("column", name, format!("the table has no such column (it has: {have})")));
        }
    }
    if greeks && df.column(&cols.spot).is_err() {
        return Err(bad("column", &cols.spot, "greeks need the underlying's spot"));
    }
    let df = py
        .detach(|| {
            let df = iv::with_implied_vol(df, &cols)?;
            if greeks {
                iv::with_greeks(df, &cols)
            } else {
                Ok(df)
            }
        })
        .map_err(py_err)?;
    Ok(Frame::new(df))
}

/// The simulator's surface at an instant (the truth the demo lake was generated from): one row
/// per listed expiry and strike.
#[pyfunction]
#[pyo3(signature = (sym, at, seed=0))]
fn sim_truth(sym: &str, at: &str, seed: u64) -> PyResult<Frame> {
    use twslake::sim::market::{Market, SymbolSpec};
    let at = instant(at)?;
    let market = Market::new(seed, SymbolSpec::defaults(), std::sync::Arc::new(twslake::clock::WallClock));
    let truth = twslake::sim::truth::truth(&market, sym, at)
        .ok_or_else(|| bad("symbol", sym, "the simulator lists SPY, QQQ, AAPL, MSFT and BRK B, from 2000 on"))?;
    let rows: Vec<_> = truth.expiries.iter().flat_map(|e| e.strikes.iter().map(move |k| (e, k))).collect();
    let expiry = |e: &twslake::sim::truth::ExpiryTruth| chrono::NaiveDate::parse_from_str(&e.expiry, "%Y%m%d").ok();
    let f = |get: &dyn Fn(&(&twslake::sim::truth::ExpiryTruth, &twslake::sim::truth::StrikeTruth)) -> f64| {
        rows.iter().map(get).collect::<Vec<f64>>()
    };
    let df = DataFrame::new_infer_height(vec![
        date_column("expiry", rows.iter().map(|(e, _)| expiry(e))).map_err(polars_err)?,
        Column::new("t".into(), f(&|(e, _)| e.t)),
        Column::new("forward".into(), f(&|(e, _)| e.forward)),
        Column::new("atm_vol".into(), f(&|(e, _)| e.atm_vol)),
        Column::new("strike".into(), f(&|(_, k)| k.strike)),
        Column::new("iv".into(), f(&|(_, k)| k.iv)),
        Column::new("call".into(), f(&|(_, k)| k.call)),
        Column::new("put".into(), f(&|(_, k)| k.put)),
    ])
    .map_err(polars_err)?;
    Ok(Frame::new(df))
}

/// The version of the Rust crate the extension was built from.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Frame>()?;
    m.add_class::<NativeLake>()?;
    m.add_function(wrap_pyfunction!(implied_vols, m)?)?;
    m.add_function(wrap_pyfunction!(sim_truth, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add("TwslakeError", py.get_type::<TwslakeError>())?;
    m.add("BadInputError", py.get_type::<BadInputError>())?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    m.add("CorruptError", py.get_type::<CorruptError>())?;
    m.add("IntegrityError", py.get_type::<IntegrityError>())?;
    m.add("QueryError", py.get_type::<QueryError>())?;
    m.add("PrerequisiteError", py.get_type::<PrerequisiteError>())?;
    m.add("GatewayError", py.get_type::<GatewayError>())?;
    Ok(())
}
