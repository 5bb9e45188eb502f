//! `status`: what the lake holds per symbol and dataset, and how much is still missing.

use super::collect;
use crate::calendar;
use crate::datasets::Dataset;
use crate::domain::window::missing_windows_from;
use crate::error::Result;
use crate::lake::manifest::Outcome;
use crate::lake::Lake;
use crate::query::Scans;
use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// One line of the status: one symbol in one dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatusRow {
    /// Symbol (the underlying for options).
    pub symbol: String,
    /// Dataset name.
    pub dataset: String,
    /// Rows stored.
    pub rows: u64,
    /// First trading date with rows.
    pub first_date: Option<NaiveDate>,
    /// Last trading date with rows.
    pub last_date: Option<NaiveDate>,
    /// Age in seconds of the latest chain snapshot (chains only).
    pub latest_snapshot_age_secs: Option<i64>,
    /// Missing windows between the first covered date and the last finished session, over every
    /// series of the dataset that the manifest knows.
    pub missing_windows: usize,
    /// Requests remembered for this symbol and dataset.
    pub requests: usize,
    /// Age in seconds of the newest live quote (quotes only): a live capture's freshness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_quote_age_secs: Option<i64>,
    /// Gaps of live capture (lost connection) recorded in the manifest (quotes only).
    #[serde(default)]
    pub capture_gaps: usize,
}

fn date_at(df: &DataFrame, name: &str, i: usize) -> Option<NaiveDate> {
    match df.column(name).ok()?.get(i).ok()? {
        AnyValue::Date(days) => Some(calendar::date_of_days(days)),
        _ => None,
    }
}

/// The status of every symbol and dataset of `lake`, as of `now`.
pub async fn status(lake: &Lake, now: DateTime<Utc>) -> Result<Vec<StatusRow>> {
    let mut rows: BTreeMap<(String, Dataset), StatusRow> = BTreeMap::new();
    for ds in Dataset::ALL {
        let lf = Scans::new(lake).scan(ds, &Default::default()).await?;
        let mut aggs = vec![len().alias("rows")];
        if ds != Dataset::Contracts {
            aggs.push(col("date").min().alias("first"));
            aggs.push(col("date").max().alias("last"));
        }
        if ds == Dataset::Chains {
            aggs.push(col("snapshot_at").max().dt().timestamp(TimeUnit::Microseconds).alias("latest"));
        }
        if ds == Dataset::Quotes {
            aggs.push(col("ts").max().dt().timestamp(TimeUnit::Microseconds).alias("latest"));
        }
        let df = match collect(lf.group_by([col("symbol")]).agg(aggs)).await {
            Ok(df) => df,
            Err(e) => return Err(lake.diagnose(e).await),
        };
        let symbols = df.column("symbol")?.str()?.clone();
        let counts = df.column("rows")?.cast(&DataType::UInt64)?.u64()?.clone();
        for i in 0..df.height() {
            let symbol = symbols.get(i).unwrap_or_default().to_string();
            let mut r = StatusRow {
                symbol: symbol.clone(),
                dataset: ds.name().into(),
                rows: counts.get(i).unwrap_or(0),
                first_date: date_at(&df, "first", i),
                last_date: date_at(&df, "last", i),
                ..Default::default()
            };
            if matches!(ds, Dataset::Chains | Dataset::Quotes) {
                let latest = df.column("latest")?.i64()?.get(i);
                let age = latest.map(|us| (now.timestamp_micros() - us) / 1_000_000);
                match ds {
                    Dataset::Chains => r.latest_snapshot_age_secs = age,
                    _ => r.latest_quote_age_secs = age,
                }
            }
            rows.insert((symbol, ds), r);
        }
    }
    let last_final = calendar::last_finished_session(now);
    for symbol in lake.manifest_symbols().await? {
        let m = lake.manifest(&symbol).await?;
        for key in m.series() {
            let row = rows.entry((symbol.to_string(), key.dataset)).or_insert_with(|| StatusRow {
                symbol: symbol.to_string(),
                dataset: key.dataset.name().into(),
                ..Default::default()
            });
            let covered = m.covered(&key);
            if let Some(first) = covered.first() {
                row.missing_windows += missing_windows_from(&covered, first.start, last_final).len();
            }
        }
        for e in &m.entries {
            if let Some(row) = rows.get_mut(&(symbol.to_string(), e.request.dataset)) {
                row.requests += 1;
                let gap = matches!(e.outcome, Outcome::Error { code: crate::domain::codes::CONNECTIVITY_LOST, .. });
                if e.request.dataset == Dataset::Quotes && gap {
                    row.capture_gaps += 1;
                }
            }
        }
    }
    Ok(rows.into_values().collect())
}
