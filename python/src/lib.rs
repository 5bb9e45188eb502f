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
//!
//! # Layout
//! - this file: errors, the runtime, argument parsing, the lake's methods ([`NativeLake`]);
//! - `frames`: tables across the boundary (the Arrow C stream both ways) and their layouts;
//! - `defaults`: the series read when none is given, and what a surface history checks first;
//! - `truth`: the simulator's surface, per strike and on the standardized grid.

// Python keyword arguments map one to one onto these functions' parameters.
#![allow(clippy::too_many_arguments)]

mod defaults;
mod frames;
mod truth;

use frames::{date_frame, expiries_frame, import, skipped_frame, status_frame, Frame};
use polars::prelude::*;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::OnceLock;
use twslake::datasets::Dataset;
use twslake::domain::{BarSize, Series, Symbol, WhatToShow};
use twslake::error::Error;
use twslake::lake::layout::{DataObject, Partition};
use twslake::query::coverage::Coverage;
use twslake::query::coverage::SeriesSpec;
use twslake::query::iv::{self, IvColumns, Rates};
use twslake::query::pit::AsOf;
use twslake::query::pit::PointInTime;
use twslake::query::sql;
use twslake::query::status;
use twslake::query::surface::history::{self, HistoryOptions};
use twslake::query::surface::Surfaces;
use twslake::query::Scans;
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

pub(crate) fn py_err(e: Error) -> PyErr {
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

pub(crate) fn polars_err(e: PolarsError) -> PyErr {
    py_err(Error::Query(e))
}

pub(crate) fn bad(what: &'static str, input: &str, reason: impl Into<String>) -> PyErr {
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
pub(crate) fn instant(s: &str) -> PyResult<chrono::DateTime<chrono::Utc>> {
    twslake::calendar::parse_instant(s).map_err(py_err)
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

/// A lake opened from a path, `file://` or `s3://` URL: read-only, except that
/// [`NativeLake::surface_history`] stores the `surfaces` it derives from the lake's own bars.
#[pyclass(module = "twslake._native", frozen)]
pub struct NativeLake {
    lake: Lake,
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
        Ok(NativeLake { lake: Lake::builder(url).existing().s3_options(&pairs).open().map_err(py_err)? })
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

    /// The finest intraday series of `what_to_show` that a scan of `dataset` with these symbols
    /// and dates would read (IB's bar size spelling), or `None` when there is none: what
    /// `option_bars()` reads unless given a `bar_size`. Read from one listing of the partitions.
    #[pyo3(signature = (dataset_name, symbols, what_to_show, start, end))]
    fn finest_series(
        &self,
        py: Python<'_>,
        dataset_name: &str,
        symbols: Option<Vec<String>>,
        what_to_show: &str,
        start: Option<String>,
        end: Option<String>,
    ) -> PyResult<Option<String>> {
        let what: WhatToShow = what_to_show.parse().map_err(py_err)?;
        let (ds, filter) = Scan(dataset_name.to_string(), symbols, None, None, start, end).filter()?;
        let objects = block(py, || self.objects(ds, &filter))?;
        Ok(objects
            .into_keys()
            .filter_map(|p| p.series.filter(|s| s.what_to_show == what && s.bar_size.is_intraday()))
            .min_by_key(|s| s.bar_size.seconds())
            .map(|s| s.bar_size.ib().to_string()))
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
                false => Some(collect(Scans::new(&self.lake).scan_objects(ds, &micro)?).await?),
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
        let df = block(py, || async { collect(Scans::new(&self.lake).scan(ds, &filter).await?).await })?;
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
        let windows = block(py, || async { Coverage::new(&self.lake).missing_windows(&spec, from, to).await })?;
        let df = date_frame(windows.into_iter().map(|w| (w.start, w.end, w.trading_days))).map_err(polars_err)?;
        Ok(Frame::new(df))
    }

    /// What the lake holds per symbol and dataset, as JSON rows (the Python side makes the frame).
    #[pyo3(signature = (now=None))]
    fn status(&self, py: Python<'_>, now: Option<&str>) -> PyResult<Frame> {
        let now = now.map(instant).transpose()?.unwrap_or_else(chrono::Utc::now);
        let rows = block(py, || status::status(&self.lake, now))?;
        Ok(Frame::new(status_frame(&rows).map_err(polars_err)?))
    }

    /// The spot at an instant: `(price, as_of, what_to_show)`.
    fn spot_at(&self, py: Python<'_>, sym: &str, at: &str) -> PyResult<(f64, String, String)> {
        let (s, at) = (symbol(sym)?, instant(at)?);
        let spot = block(py, || async { PointInTime::new(&self.lake).spot_at(&s, at).await })?;
        Ok((spot.price, spot.as_of.to_rfc3339(), spot.what_to_show))
    }

    /// The latest chain snapshot taken at or before an instant.
    fn chain_as_of(&self, py: Python<'_>, sym: &str, at: &str) -> PyResult<Frame> {
        let (s, at) = (symbol(sym)?, instant(at)?);
        Ok(Frame::new(block(py, || async { PointInTime::new(&self.lake).chain_as_of(&s, at).await })?))
    }

    /// The option panel at an instant, with implied vols and greeks when asked. Without a
    /// `bar_size`, the finest option series of `what_to_show` held on the dates read; without a
    /// `spot_what_to_show`, the spot series the crate pairs with those option bars.
    #[pyo3(signature = (sym, at, start, bar_size, what_to_show, spot_what_to_show, rate, dividend_yield, implied_vol, greeks))]
    fn option_panel(
        &self,
        py: Python<'_>,
        sym: &str,
        at: &str,
        start: Option<&str>,
        bar_size: Option<&str>,
        what_to_show: &str,
        spot_what_to_show: Option<&str>,
        rate: f64,
        dividend_yield: f64,
        implied_vol: bool,
        greeks: bool,
    ) -> PyResult<Frame> {
        let (s, at_str, at) = (symbol(sym)?, at, instant(at)?);
        let to = twslake::calendar::trading_date(at);
        let from = match start {
            Some(d) => date(d)?,
            None => to,
        };
        if from > to {
            return Err(bad(
                "start",
                &from.to_string(),
                format!("start must not be after the instant's trading date {to} ({at_str})"),
            ));
        }
        let what: WhatToShow = what_to_show.parse().map_err(py_err)?;
        let given = bar_size.map(|b| series(b, what_to_show)).transpose()?;
        let spot_what: Option<WhatToShow> = spot_what_to_show.map(str::parse).transpose().map_err(py_err)?;
        let rates = Rates { rate, dividend_yield };
        let df = block(py, || async {
            let option = match given {
                Some(series) => series,
                None => defaults::option_series(&self.lake, &s, what, from, to).await?,
            };
            let spot = defaults::spot_series(&self.lake, &s, option, spot_what, from, to).await?;
            let q = AsOf { symbol: s.clone(), series: option, from, at };
            let panel = PointInTime::new(&self.lake).option_panel(&q, spot).await?;
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
    /// slices and its skipped expiries. `None` options keep the crate's defaults.
    #[pyo3(signature = (sym, at, bar_size, max_staleness_min, rate, dividend_yield))]
    fn surface(
        &self,
        py: Python<'_>,
        sym: &str,
        at: &str,
        bar_size: Option<&str>,
        max_staleness_min: Option<i64>,
        rate: f64,
        dividend_yield: f64,
    ) -> PyResult<(String, Frame, Frame, Frame)> {
        let (s, at) = (symbol(sym)?, instant(at)?);
        let opts = defaults::surface_options(bar_size, max_staleness_min, rate, dividend_yield)?;
        let surface = block(py, || async { Surfaces::new(&self.lake).surface(&s, at, &opts).await })?;
        let json = serde_json::to_string(&surface).expect("surfaces serialise");
        let points = Frame::new(surface.to_frame().map_err(py_err)?);
        let expiries = Frame::new(expiries_frame(&surface).map_err(polars_err)?);
        let skipped = Frame::new(skipped_frame(&surface).map_err(polars_err)?);
        Ok((json, points, expiries, skipped))
    }

    /// Fits and stores the surface history of `[start, end]` (`twslake surfaces`), with `now`
    /// the wall clock; the run's report as JSON. Refused before anything is written when the
    /// symbol or its option bars are not in the lake ([`defaults::check_history_input`]).
    #[pyo3(signature = (sym, start, end, every, bar_size, max_staleness_min, rate, dividend_yield, threads))]
    fn surface_history(
        &self,
        py: Python<'_>,
        sym: &str,
        start: &str,
        end: &str,
        every: &str,
        bar_size: Option<&str>,
        max_staleness_min: Option<i64>,
        rate: f64,
        dividend_yield: f64,
        threads: Option<usize>,
    ) -> PyResult<String> {
        let (s, from, to) = (symbol(sym)?, date(start)?, date(end)?);
        if from > to {
            return Err(bad("date range", &format!("{start}..{end}"), "start must not be after end"));
        }
        let mut opts = HistoryOptions::every(history::parse_step(every).map_err(py_err)?);
        opts.surface = defaults::surface_options(bar_size, max_staleness_min, rate, dividend_yield)?;
        opts.threads = threads.unwrap_or(opts.threads).max(1);
        let report = block(py, || async {
            defaults::check_history_input(&self.lake, &s, from, to, opts.surface.series).await?;
            Surfaces::new(&self.lake).surface_history(&s, from, to, chrono::Utc::now(), &opts).await
        })?;
        Ok(serde_json::to_string(&report).expect("reports serialise"))
    }

    /// polars SQL over the datasets registered as tables.
    fn sql(&self, py: Python<'_>, query: &str) -> PyResult<Frame> {
        let df = block(py, || async { collect(sql::sql(&self.lake, query).await?).await })?;
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
    m.add_function(wrap_pyfunction!(truth::sim_truth, m)?)?;
    m.add_function(wrap_pyfunction!(truth::sim_truth_grid, m)?)?;
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
