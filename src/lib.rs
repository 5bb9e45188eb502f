//! twslake: Interactive Brokers market data, ingested in dependency order into a partitioned
//! Parquet lake (local disk or S3), and a polars query library over it.
//!
//! # Layout
//! Modules stand on floors (`ARCHITECTURE.md`): each uses only the floors below it, and a test
//! (`tests/it/house.rs`) holds it to that.
//! - Floor 0–2, the ground: [`error`] (the one public error type); [`calendar`] (NYSE sessions,
//!   holidays and early closes, 2000–2035; expiries and instants) and [`clock`] (the clock passed
//!   in); [`domain`] (symbols, bar series, security types and rights, windows of trading dates,
//!   IB's message codes).
//! - Floor 3: [`datasets`], one module per dataset — contracts, chains, equity bars, option bars,
//!   quotes, and the derived surface history — each owning its Arrow schema, primary key, row
//!   type and conversion from the gateway's answers; [`monitor`], metrics and alerts;
//!   [`pricing`], American options with discrete dividends: price, implied vol, greeks.
//! - Floor 4: [`lake`], the storage: URLs (`./lake`, `file://`, `s3://`, [`Lake::builder`]), the
//!   path layout ([`lake::layout`]), atomic merged partition writes ([`lake::write`]), the JSON
//!   request manifest ([`lake::manifest`]: entries, coverage, logs, recovery), validation
//!   ([`lake::validate`]), live micro-batches and their compaction ([`lake::micro`]).
//! - Floor 5, three siblings that never use each other: [`query`], readers over a lake —
//!   [`query::Scans`], [`query::coverage::Coverage`], [`query::pit::PointInTime`],
//!   [`query::series::Holdings`], [`query::surface::Surfaces`] (the arbitrage-checked surface
//!   at any instant the bars cover, its standardized grid and stored history), implied vols and
//!   greeks ([`query::iv`]), [`query::status`] and [`query::sql`]; [`source`], the market-data
//!   source (IB's TWS API through `ibapi`, converted at the edge; IB's error codes classified;
//!   the request planner and the pacing scheduler); [`sim`], the simulated TWS gateway (the
//!   server side of the TWS API on loopback, a deterministic market with a known volatility
//!   surface, IB's pacing, refusals and faults).
//! - Floor 6: [`jobs`], the ingest jobs in dependency order and their orchestration (`setup`,
//!   `update`); every request goes through one pipeline, [`jobs::Ingest::ask`].
//! - Floor 7: [`live`], live capture: streaming quotes and option computations into the
//!   `quotes` dataset in micro-batches, reconnects and gaps, metrics endpoint, webhook alerts.
//! - Floor 8: [`run`], `twslake run`: the schedule on the NYSE calendar driving `jobs` and `live`.
//! - Floor 9: [`cli`], the `twslake` command line.
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
//!
//! # Ingest from a gateway, then ask for the surface of a moment it fetched
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use twslake::domain::Symbol;
//! use twslake::jobs::{config, Ingest};
//! use twslake::query::surface::{Surfaces, SurfaceOptions};
//! use twslake::sim::{ManualClock, Sim};
//! use twslake::source::ib::{IbConfig, IbSource};
//! use twslake::Lake;
//!
//! // The built-in simulator, frozen on a Tuesday evening, pacing 1000× faster (a real gateway:
//! // IB Gateway or TWS at its address, and pacing_scale 1).
//! let evening = "2026-11-24T21:30:00Z".parse().unwrap();
//! let sim = Sim::builder().listen("127.0.0.1:0").pacing_scale(1000.0)
//!     .clock(Arc::new(ManualClock::new(evening))).start().await?;
//! let ib = IbConfig { gateway: sim.address(), client_id: 7, timeout: std::time::Duration::from_secs(10) };
//! let source = IbSource::connect(&ib).await?;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let lake = Lake::open(dir.path().to_str().unwrap())?;
//! let cfg = config::IngestConfig {
//!     equity: vec![config::parse_series("1 day/TRADES/5", 5)?],
//!     options: config::OptionSelection {
//!         expiry_days: 20, strike_band: 0.04, max_contracts: 40, sessions: 1,
//!         series: vec![config::parse_series("1 min/MIDPOINT", 1)?.series],
//!     },
//!     pacing_scale: 1000.0,
//!     ..Default::default()
//! };
//! // Contracts, the chain snapshot, the spot (its 1-minute bars are added for the option
//! // session), then the options: in that order, each only if missing.
//! let spy = Symbol::new("SPY")?;
//! let report = Ingest::new(lake.clone(), source, cfg, sim.market().clock().clone()).setup(&[spy.clone()]).await;
//! assert!(report.complete());
//!
//! // Half an hour before Tuesday's close: a moment the backfill fetched.
//! let at = twslake::calendar::parse_instant("2026-11-24 15:30")?;
//! let surface = Surfaces::new(&lake).surface(&spy, at, &SurfaceOptions::default()).await?;
//! assert_eq!(surface.listing.name(), "bars"); // the chain was snapshotted after the close
//! assert!(surface.expiries.iter().all(|e| e.butterfly_ok));
//! # sim.shutdown().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
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
pub mod pricing;
pub mod query;
pub mod run;
pub mod sim;
pub mod source;

pub use error::{Error, Result};
pub use lake::Lake;
