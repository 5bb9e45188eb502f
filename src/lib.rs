//! twslake: Interactive Brokers market data, ingested in dependency order into a partitioned
//! Parquet lake (local disk or S3), and a polars query library over it.
//!
//! # Layout
//! - [`calendar`]: the NYSE trading calendar (sessions, holidays, early closes, 2000–2035).
//! - [`datasets`]: one module per dataset — contracts, chains, equity bars, option bars, quotes,
//!   and the derived surface history — each owning its Arrow schema, primary key and row type.
//! - [`lake`]: the storage: URLs (`./lake`, `file://`, `s3://`), the path layout
//!   ([`lake::layout`]), atomic merged partition writes ([`lake::write`]), the JSON request
//!   manifest ([`lake::manifest`]), validation ([`lake::validate`]), live micro-batches and
//!   their compaction ([`lake::micro`]).
//! - [`live`]: live capture: streaming quotes and option computations into the `quotes`
//!   dataset in micro-batches, reconnects and gaps, the metrics endpoint, the webhook alert sink.
//! - [`query`]: the polars reader: dataset scans, present dates, coverage and missing windows,
//!   status; point-in-time reads ([`query::pit`]), the series a query reads when not told
//!   ([`query::series`]), implied vols and greeks ([`query::iv`]), the arbitrage-checked
//!   volatility surface at any instant the bars cover ([`query::surface::Surfaces`]),
//!   its standardized grid and stored history ([`query::surface::Surfaces::surface_history`]) and SQL over the
//!   datasets ([`query::sql`]).
//! - [`jobs`]: the ingest jobs in dependency order and their orchestration (`setup`, `update`).
//! - [`monitor`]: metrics (Prometheus text) and alerts.
//! - [`sim`]: the simulated TWS gateway: the server side of the TWS API on loopback, a
//!   deterministic market with a known volatility surface, IB's pacing, refusals and faults.
//! - [`source`]: the market-data source: IB's TWS API through `ibapi` (converted at the edge),
//!   IB's error codes classified, the request planner and the pacing scheduler.
//! - [`cli`]: the `twslake` command line.
//! - [`clock`]: the clock passed in to the simulator and the jobs.
//! - [`error`]: the one public error type.
//!
//! Beside the crate: `python/`, the Python package (PyO3, maturin) over [`query`], whose frames
//! cross into Python through the Arrow C stream interface; `notebooks/` uses it.
//!
//! # Open a lake, record a request, ask what is missing
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use twslake::domain::{BarSize, Series, Symbol, WhatToShow};
//! use twslake::domain::DateWindow;
//! use twslake::lake::manifest::{Outcome, Request};
//! use twslake::query::coverage::{Coverage, SeriesSpec};
//! use twslake::{datasets::Dataset, Lake};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let lake = Lake::open(dir.path().to_str().unwrap())?; // or "s3://bucket/prefix"
//! let spy = Symbol::new("SPY")?;
//! let daily = Series { bar_size: BarSize::Day1, what_to_show: WhatToShow::Trades };
//! let d = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
//!
//! // IB answered "no data" for the first week of 2024: remembered, never asked again.
//! let week = DateWindow::new(d("2024-01-02"), d("2024-01-05"))?;
//! let asked_at = "2024-02-01T00:00:00Z".parse().unwrap();
//! lake.record(Request::equity_bars(&spy, daily, week), asked_at, Outcome::Empty, None).await?;
//!
//! let spec = SeriesSpec { dataset: Dataset::EquityBars, symbol: spy, con_id: None, series: daily };
//! let missing = Coverage::new(&lake).missing_windows(&spec, d("2024-01-01"), d("2024-01-12")).await?;
//! assert_eq!((missing[0].start, missing[0].end), (d("2024-01-08"), d("2024-01-12")));
//! # Ok::<(), twslake::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Read a dataset with polars
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use polars::prelude::*;
//! use twslake::{datasets::Dataset, query::{collect, ScanFilter, Scans}, Lake};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let lake = Lake::open(dir.path().to_str().unwrap())?;
//! twslake::lake::example::write_example(&lake).await?;
//! let spy = twslake::domain::Symbol::new("SPY")?;
//! let bars = Scans::new(&lake).scan(Dataset::EquityBars, &ScanFilter::symbol(&spy)).await?;
//! let daily = collect(bars.filter(col("bar_size").eq(lit("1 day")))).await?;
//! assert_eq!(daily.height(), 7);
//! # Ok::<(), twslake::Error>(())
//! # }).unwrap();
//! ```
#![warn(missing_docs)]

pub mod calendar;
pub mod cli;
pub mod clock;
pub mod datasets;
pub mod domain;
pub mod error;
pub mod jobs;
pub mod lake;
pub mod live;
pub mod monitor;
pub mod query;
pub mod sim;
pub mod source;

pub use error::{Error, Result};
pub use lake::Lake;
