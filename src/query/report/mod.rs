//! `twslake report`: one self-contained HTML page of what a lake holds.
//!
//! [`build`] reads the lake into a [`Report`] (plain data, serializable), [`Report::html`] draws
//! it: inline CSS and SVG only, no script, no font or picture from elsewhere, so the file opens
//! anywhere without a network. Every string that comes from the lake is escaped.
//!
//! # Rooms
//! - [`heatmap`]: the state of every trading day of every series (present, answered empty,
//!   missing, failed, not yet final), from the manifest and the rows;
//! - `activity`: requests per day and the idle time between them, chain-snapshot ages, capture
//!   gaps, the latest surface per symbol;
//! - `html`, `svg`: the page.
//!
//! Decided: pacing waits are not stored anywhere lasting (they are a counter of a running
//! process's metrics), so the page shows, per day, the idle time between consecutive requests
//! as the manifest's timestamps tell it (pacing waits and any other pause within a run; pauses
//! of over 15 minutes count as time between runs and are left out), and says so.

mod activity;
pub mod heatmap;
mod html;
mod svg;

pub use activity::{CaptureGap, ChainAge, DayActivity, SurfacePicture, SurfaceSlice};
pub use heatmap::{Cell, CellState, HeatRow};

use crate::domain::Symbol;
use crate::error::{Error, Result};
use crate::lake::manifest::SymbolManifest;
use crate::lake::Lake;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// What a report covers. Empty fields mean everything.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Only these symbols.
    pub symbols: Option<Vec<Symbol>>,
    /// First trading date of the heatmap and the request chart.
    pub from: Option<NaiveDate>,
    /// Last trading date of the heatmap and the request chart.
    pub to: Option<NaiveDate>,
}

/// Everything the page shows, as data.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The lake's location.
    pub lake: String,
    /// When the report was made.
    pub generated_at: DateTime<Utc>,
    /// The last trading date whose session was over at `generated_at`.
    pub last_final: NaiveDate,
    /// Heatmap rows: per symbol, one per series (option contracts summed up per bar series).
    pub rows: Vec<HeatRow>,
    /// Per-contract heatmap rows of the option bars (shown folded under each symbol).
    pub contract_rows: Vec<HeatRow>,
    /// Requests per day.
    pub activity: Vec<DayActivity>,
    /// The latest chain snapshot per symbol.
    pub chains: Vec<ChainAge>,
    /// Live capture gaps, newest first.
    pub gaps: Vec<CaptureGap>,
    /// The latest stored surface per symbol (fitted from the option bars when none is stored).
    pub surfaces: Vec<SurfacePicture>,
}

impl Report {
    /// The page: one HTML document with inline CSS and SVG.
    pub fn html(&self) -> String {
        html::page(self)
    }
}

/// The report of `lake` as of `now`.
pub async fn build(lake: &Lake, now: DateTime<Utc>, opts: &ReportOptions) -> Result<Report> {
    if let (Some(from), Some(to)) = (opts.from, opts.to) {
        if from > to {
            return Err(Error::bad_input("date range", format!("{from}..{to}"), "--from is after --to"));
        }
    }
    let mut symbols = lake.manifest_symbols().await?;
    if let Some(only) = &opts.symbols {
        for s in only {
            if !symbols.contains(s) {
                return Err(Error::bad_input(
                    "--symbols",
                    s.as_str(),
                    "the lake holds nothing of this symbol; `twslake status` lists those it holds",
                ));
            }
        }
        symbols.retain(|s| only.contains(s));
    }
    let mut manifests: Vec<(Symbol, SymbolManifest)> = Vec::with_capacity(symbols.len());
    for s in symbols {
        let m = lake.manifest(&s).await?;
        manifests.push((s, m));
    }
    let last_final = crate::calendar::last_finished_session(now);
    let (rows, contract_rows) = heatmap::rows(lake, &manifests, last_final, opts).await?;
    let symbols: Vec<Symbol> = manifests.iter().map(|(s, _)| s.clone()).collect();
    Ok(Report {
        lake: lake.location().to_string(),
        generated_at: now,
        last_final,
        rows,
        contract_rows,
        activity: activity::per_day(&manifests, opts),
        chains: activity::chain_ages(lake, &symbols, now).await?,
        gaps: activity::capture_gaps(&manifests),
        surfaces: activity::surfaces(lake, &symbols).await?,
    })
}
