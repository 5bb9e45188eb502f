//! The coverage heatmap: the state of every trading day of every series a symbol's manifest
//! knows.
//!
//! A day of a series is
//! - **present** when a final answer covers it and the lake holds rows of it;
//! - **answered empty** when a final answer covers it and no rows were stored (a holiday the
//!   gateway answered, an option that did not trade);
//! - **not yet final** when the latest request over it was answered before its session was over;
//! - **failed** when the latest request over it was an error;
//! - **missing** when nothing final covers it and nothing was asked.
//!
//! A series' days run from the first date any of its requests asked for to the last finished
//! session (or the last date asked, if later), as `status` counts missing windows: the days
//! that are neither present nor answered empty, from the first covered date on, merged into
//! windows of consecutive trading days, are `status`'s missing windows. Days before the first
//! covered date that hold rows (IB answers whole years for a daily series) are present. Decided: an option
//! contract's days end at its expiry (later days cannot be asked for; `status` counts them).
//! Option contracts are summed up per bar series in one row per symbol (a day takes the worst
//! state of the contracts that have it), and listed one by one in `contract_rows`.

use super::ReportOptions;
use crate::calendar;
use crate::datasets::Dataset;
use crate::domain::{BarSize, Series, Symbol, WhatToShow};
use crate::error::Result;
use crate::lake::manifest::{Entry, Outcome, SeriesKey, SymbolManifest};
use crate::lake::Lake;
use crate::query::{collect, ScanFilter, Scans};
use chrono::NaiveDate;
use polars::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The state of one trading day of one series, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellState {
    /// Covered by a final answer, with rows.
    Present,
    /// Covered by a final answer without rows.
    Empty,
    /// Asked before its session was over; not covered yet.
    NotFinal,
    /// Never asked, or its answer was revoked.
    Missing,
    /// The latest request over it failed.
    Failed,
}

impl CellState {
    /// Every state, best first.
    pub const ALL: [CellState; 5] =
        [CellState::Present, CellState::Empty, CellState::NotFinal, CellState::Missing, CellState::Failed];

    /// The machine name (the cells' `data-state`).
    pub fn name(self) -> &'static str {
        match self {
            CellState::Present => "present",
            CellState::Empty => "empty",
            CellState::NotFinal => "not_final",
            CellState::Missing => "missing",
            CellState::Failed => "failed",
        }
    }

    /// The words a person reads.
    pub fn label(self) -> &'static str {
        match self {
            CellState::Present => "present",
            CellState::Empty => "answered empty",
            CellState::NotFinal => "not yet final",
            CellState::Missing => "missing",
            CellState::Failed => "failed",
        }
    }
}

/// One trading day of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// The trading date.
    pub date: NaiveDate,
    /// Its state.
    pub state: CellState,
    /// Whether a final answer covers it (for a summed-up row: every contract's day is present
    /// or answered empty).
    pub covered: bool,
    /// Rows stored for it.
    pub rows: u64,
    /// For a summed-up row: how many contracts the day has in each state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contracts: Option<BTreeMap<CellState, usize>>,
}

/// One row of the heatmap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeatRow {
    /// The symbol (the underlying, for options).
    pub symbol: String,
    /// The dataset.
    pub dataset: Dataset,
    /// The series as a person reads it (`1 day TRADES`, `every 1800 s`, a contract).
    pub series: String,
    /// The option contract, for a contract's row.
    pub con_id: Option<i64>,
    /// Whether the row sums up several contracts.
    pub summary: bool,
    /// Its days, in date order, one per trading day of its range.
    pub cells: Vec<Cell>,
}

/// Rows per (symbol, dataset, contract, series) and date.
type RowCounts = HashMap<(String, Dataset, Option<i64>, Option<Series>), BTreeMap<NaiveDate, u64>>;

/// The heatmap rows of `manifests`: summed-up rows, then per-contract option rows.
pub(super) async fn rows(
    lake: &Lake,
    manifests: &[(Symbol, SymbolManifest)],
    last_final: NaiveDate,
    opts: &ReportOptions,
) -> Result<(Vec<HeatRow>, Vec<HeatRow>)> {
    let symbols: Vec<Symbol> = manifests.iter().map(|(s, _)| s.clone()).collect();
    let counts = row_counts(lake, &symbols, opts).await?;
    let (mut rows, mut contract_rows) = (Vec::new(), Vec::new());
    for (symbol, m) in manifests {
        let mut by_key: BTreeMap<SeriesKey, Vec<&Entry>> = BTreeMap::new();
        for e in &m.entries {
            if matches!(e.request.dataset, Dataset::EquityBars | Dataset::OptionBars | Dataset::Surfaces)
                && e.request.window.is_some()
            {
                by_key.entry(e.request.series_key()).or_default().push(e);
            }
        }
        let mut own = Vec::new();
        let mut contracts: BTreeMap<Option<Series>, Vec<HeatRow>> = BTreeMap::new();
        for (key, entries) in by_key {
            let count_key = (symbol.to_string(), key.dataset, key.con_id, key.series);
            let empty = BTreeMap::new();
            let per_day = counts.get(&count_key).unwrap_or(&empty);
            let expiry = entries.iter().find_map(|e| e.request.expiry);
            let cells = cells_of(&entries, per_day, last_final, expiry, opts);
            if cells.is_empty() {
                continue;
            }
            let row = HeatRow {
                symbol: symbol.to_string(),
                dataset: key.dataset,
                series: series_label(&key, entries[0]),
                con_id: key.con_id,
                summary: false,
                cells,
            };
            match key.con_id {
                Some(_) if key.dataset == Dataset::OptionBars => contracts.entry(key.series).or_default().push(row),
                _ => own.push(row),
            }
        }
        rows.append(&mut own);
        for (series, list) in contracts {
            rows.push(summed(symbol, series, &list));
            contract_rows.extend(list);
        }
    }
    Ok((rows, contract_rows))
}

/// What a person reads for a series.
fn series_label(key: &SeriesKey, e: &Entry) -> String {
    let series = key.series.map(|s| format!("{} {}", s.bar_size, s.what_to_show));
    match (key.dataset, key.con_id) {
        (Dataset::OptionBars, Some(c)) => {
            let r = &e.request;
            let expiry = r.expiry.map(|d| d.to_string()).unwrap_or_default();
            let strike = r.strike.map(|k| format!("{k}")).unwrap_or_default();
            let right = r.right.map(|x| format!("{x:?}")).unwrap_or_default();
            format!("{} {expiry} {strike} {right} ({c})", series.unwrap_or_default())
        }
        (Dataset::Surfaces, _) => format!("every {} s", key.step_secs.unwrap_or(0)),
        _ => series.unwrap_or_default(),
    }
}

/// The cells of one series from its entries and stored rows per day.
fn cells_of(
    entries: &[&Entry],
    per_day: &BTreeMap<NaiveDate, u64>,
    last_final: NaiveDate,
    expiry: Option<NaiveDate>,
    opts: &ReportOptions,
) -> Vec<Cell> {
    let windows: Vec<_> = entries.iter().filter_map(|e| e.request.window).collect();
    let (Some(first), Some(last)) = (windows.iter().map(|w| w.start).min(), windows.iter().map(|w| w.end).max()) else {
        return vec![];
    };
    // Rows can reach before the first window asked for (IB's durations return whole years).
    let first = per_day.keys().next().map_or(first, |d| first.min(*d));
    let mut end = last.max(last_final);
    if let Some(x) = expiry {
        end = end.min(x.max(last));
    }
    let start = opts.from.map_or(first, |f| f.max(first));
    let end = opts.to.map_or(end, |t| t.min(end));
    if start > end {
        return vec![];
    }
    let covered: Vec<_> = entries.iter().filter_map(|e| e.covered()).collect();
    let first_covered = covered.iter().map(|w| w.start).min();
    calendar::trading_days(start, end)
        .into_iter()
        .map(|date| {
            let rows = per_day.get(&date).copied().unwrap_or(0);
            let is_covered = covered.iter().any(|w| w.start <= date && date <= w.end);
            let state = if is_covered {
                if rows > 0 {
                    CellState::Present
                } else {
                    CellState::Empty
                }
            } else if rows > 0 && first_covered.is_some_and(|f| date < f) {
                // Rows that came with an answer over later dates: held, and not missing in
                // `status`'s count, which starts at the first covered date.
                CellState::Present
            } else {
                let latest = entries
                    .iter()
                    .filter(|e| e.request.window.is_some_and(|w| w.start <= date && date <= w.end))
                    .max_by_key(|e| e.requested_at);
                match latest.map(|e| &e.outcome) {
                    Some(Outcome::Error { .. }) => CellState::Failed,
                    Some(_) => CellState::NotFinal,
                    None => CellState::Missing,
                }
            };
            Cell { date, state, covered: is_covered, rows, contracts: None }
        })
        .collect()
}

/// One row summing up the contracts of one option bar series: per day the worst state.
fn summed(symbol: &Symbol, series: Option<Series>, list: &[HeatRow]) -> HeatRow {
    let mut days: BTreeMap<NaiveDate, (u64, BTreeMap<CellState, usize>)> = BTreeMap::new();
    for row in list {
        for c in &row.cells {
            let day = days.entry(c.date).or_default();
            day.0 += c.rows;
            *day.1.entry(c.state).or_default() += 1;
        }
    }
    let cells = days
        .into_iter()
        .map(|(date, (rows, states))| {
            let state = states.keys().max().copied().unwrap_or(CellState::Missing);
            let covered = state <= CellState::Empty;
            Cell { date, state, covered, rows, contracts: Some(states) }
        })
        .collect();
    let label = series.map(|s| format!("{} {}", s.bar_size, s.what_to_show)).unwrap_or_default();
    HeatRow {
        symbol: symbol.to_string(),
        dataset: Dataset::OptionBars,
        series: format!("{label} ({} contracts)", list.len()),
        con_id: None,
        summary: true,
        cells,
    }
}

/// Stored rows per series and day, for the bar datasets and the surfaces.
async fn row_counts(lake: &Lake, symbols: &[Symbol], opts: &ReportOptions) -> Result<RowCounts> {
    let mut out = RowCounts::new();
    if symbols.is_empty() {
        return Ok(out);
    }
    let filter = ScanFilter { symbols: Some(symbols.to_vec()), series: None, from: opts.from, to: opts.to };
    for ds in [Dataset::EquityBars, Dataset::OptionBars, Dataset::Surfaces] {
        let mut by = vec![col("symbol"), col("date")];
        if ds.is_bars() {
            by.extend([col("bar_size"), col("what_to_show")]);
        }
        if ds == Dataset::OptionBars {
            by.push(col("con_id"));
        }
        let lf = Scans::new(lake).scan(ds, &filter).await?;
        let df = collect(lf.group_by(by).agg([len().cast(DataType::UInt64).alias("n")])).await?;
        let sym = df.column("symbol")?.str()?.clone();
        let dates = super::super::coverage::dates_of(&df, "date")?;
        let n = df.column("n")?.u64()?.clone();
        let text =
            |name: &str, i: usize| -> Option<String> { Some(df.column(name).ok()?.str().ok()?.get(i)?.to_string()) };
        let con = df.column("con_id").ok().and_then(|c| c.i64().ok().cloned());
        for (i, date) in dates.iter().enumerate() {
            let series = match (text("bar_size", i), text("what_to_show", i)) {
                (Some(b), Some(w)) => match (b.parse::<BarSize>(), w.parse::<WhatToShow>()) {
                    (Ok(bar_size), Ok(what_to_show)) => Some(Series { bar_size, what_to_show }),
                    _ => continue,
                },
                _ => None,
            };
            let con_id = con.as_ref().and_then(|c| c.get(i));
            let key = (sym.get(i).unwrap_or_default().to_string(), ds, con_id, series);
            *out.entry(key).or_default().entry(*date).or_default() += n.get(i).unwrap_or(0);
        }
    }
    Ok(out)
}
