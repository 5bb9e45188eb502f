//! `setup` (cold start) and `update` (warm start): the jobs in dependency order, each step only
//! when needed, with the seed's recovery: fulfil missing prerequisites, settle interrupted
//! writes, revoke manifest entries whose data is gone and fetch it again.

use super::{FetchStats, Ingest};
use crate::datasets::Dataset;
use crate::domain::Symbol;
use crate::error::{Error, Result};
use crate::lake::manifest::SeriesKey;
use crate::query::coverage::Coverage;
use crate::query::coverage::SeriesSpec;
use crate::source::MarketData;
use serde::Serialize;
use std::collections::BTreeMap;

/// What happened to one symbol.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SymbolReport {
    /// The symbol.
    pub symbol: String,
    /// Contract descriptions were fetched (not fresh enough).
    pub contracts_fetched: bool,
    /// A chain snapshot was taken.
    pub chain_taken: bool,
    /// Equity bar requests.
    pub equity: FetchStats,
    /// Option bar requests.
    pub options: FetchStats,
    /// Interrupted writes settled (promoted, dropped).
    pub pending_settled: (usize, usize),
    /// Manifest entries revoked because their partitions were gone.
    pub revoked: usize,
    /// Dates with option bars but no daily equity bar, fetched again.
    pub resynced_dates: usize,
    /// Equity windows still missing after the run.
    pub equity_windows_missing: usize,
    /// Option sessions (counted per option series) not requested because the lake held no spot
    /// for them (the underlying's intraday bars of the session): dependency violations, asked
    /// for again by a later run.
    pub option_days_refused: u64,
    /// What failed, if anything.
    pub error: Option<String>,
}

/// The summary of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    /// Per symbol.
    pub symbols: Vec<SymbolReport>,
    /// Requests by kind and outcome.
    pub requests: BTreeMap<String, u64>,
    /// Rows written per dataset.
    pub rows: BTreeMap<String, u64>,
    /// Seconds spent waiting on pacing.
    pub pacing_wait_secs: f64,
    /// Pacing violations IB reported.
    pub pacing_violations: u64,
    /// Option data asked for without prerequisites (a whole symbol refused, or sessions of an
    /// option series refused for want of their spot).
    pub dependency_violations: u64,
}

impl RunReport {
    /// True when everything asked for is present or final-empty (an option session refused for
    /// want of its spot is neither).
    pub fn complete(&self) -> bool {
        self.symbols.iter().all(|s| {
            s.error.is_none()
                && s.equity.failed == 0
                && s.options.failed == 0
                && s.equity_windows_missing == 0
                && s.option_days_refused == 0
        })
    }
}

impl<S: MarketData> Ingest<S> {
    /// Cold start: for each symbol, each step only if needed, in dependency order.
    pub async fn setup(&self, symbols: &[Symbol]) -> RunReport {
        self.run(symbols, false).await
    }

    /// Warm start: settle and check the lake first, then refresh what the policy says is due.
    pub async fn update(&self, symbols: &[Symbol]) -> RunReport {
        self.run(symbols, true).await
    }

    async fn run(&self, symbols: &[Symbol], check_integrity: bool) -> RunReport {
        let mut report = RunReport::default();
        for note in &self.config_notes {
            self.say(note);
        }
        for symbol in symbols {
            let mut r = SymbolReport { symbol: symbol.to_string(), ..Default::default() };
            if let Err(e) = self.run_symbol(symbol, check_integrity, &mut r).await {
                self.say(format!("{symbol:<8} FAILED: {e}"));
                r.error = Some(e.to_string());
            }
            report.symbols.push(r);
        }
        for ((kind, outcome), n) in self.metrics.requests() {
            report.requests.insert(format!("{kind}/{outcome}"), n);
        }
        report.rows = self.metrics.rows_written();
        report.pacing_wait_secs = self.pacer.waited().as_secs_f64();
        report.pacing_violations = self.metrics.pacing_violations.load(std::sync::atomic::Ordering::Relaxed);
        report.dependency_violations = self.metrics.dependency_violations.load(std::sync::atomic::Ordering::Relaxed);
        report
    }

    async fn run_symbol(&self, symbol: &Symbol, check_integrity: bool, r: &mut SymbolReport) -> Result<()> {
        // Interrupted writes of an earlier run are settled first, whatever the command.
        r.pending_settled = self.lake.recover_manifest(symbol).await?;
        if check_integrity {
            r.revoked = self.revoke_lost(symbol).await?;
            r.resynced_dates = self.resync_spot(symbol).await?;
        }
        let (_, fetched) = self.backfill_contracts(symbol).await?;
        r.contracts_fetched = fetched;
        r.chain_taken = match self.contracts_snapshot(symbol).await {
            Ok(taken) => taken,
            Err(e @ Error::Gateway { .. }) => {
                self.say(format!("{symbol:<8} chain snapshot failed: {e}"));
                false
            }
            Err(e) => return Err(e),
        };
        r.equity = self.backfill_equity_bars(symbol).await?;
        let options = match self.backfill_option_bars(symbol).await {
            Ok(stats) => stats,
            Err(Error::Prerequisite { .. }) if !r.chain_taken => {
                // Fulfil the missing prerequisite (a chain snapshot), then try once more.
                self.contracts_snapshot(symbol).await?;
                self.backfill_option_bars(symbol).await?
            }
            Err(e) => return Err(e),
        };
        r.option_days_refused = options.refused_days;
        r.options = options;
        r.equity_windows_missing = self.equity_windows_missing(symbol).await?;
        self.freshness(symbol).await
    }

    /// Sets the freshness gauges; a chain snapshot older than 24 hours is a WARNING.
    pub async fn freshness(&self, symbol: &Symbol) -> Result<()> {
        let now = self.now();
        if let Some((d, _)) = self.latest_spot(symbol).await? {
            let close = crate::calendar::session(d).map(|s| s.close).unwrap_or(now);
            self.metrics.freshness(symbol.as_str(), Dataset::EquityBars.name(), (now - close).num_seconds());
        }
        if let Some(at) = self.latest_chain_at(symbol).await? {
            let age = now - at;
            self.metrics.freshness(symbol.as_str(), Dataset::Chains.name(), age.num_seconds());
            if age > self.cfg.policy.chain_prerequisite_age {
                let msg = format!("option chain snapshot is {} hours old", age.num_hours());
                self.alert(crate::monitor::Severity::Warning, symbol, msg);
            }
        }
        Ok(())
    }

    /// Equity windows of the configured ranges still missing (asked and failed, or not asked).
    async fn equity_windows_missing(&self, symbol: &Symbol) -> Result<usize> {
        let last = self.last_final_session();
        let mut n = 0;
        for es in &self.cfg.equity {
            let from = match (self.cfg.from, es.series.bar_size.is_intraday()) {
                (Some(f), false) => f,
                _ => super::equity::sessions_back(last, es.sessions),
            };
            let spec =
                SeriesSpec { dataset: Dataset::EquityBars, symbol: symbol.clone(), con_id: None, series: es.series };
            n += Coverage::new(&self.lake).missing_windows(&spec, from, last).await?.len();
        }
        Ok(n)
    }

    /// Finds dates with option bars but no daily equity bar (the spot those bars need) and
    /// revokes the daily-bar entries that claim them, so the equity job fetches them again.
    pub async fn resync_spot(&self, symbol: &Symbol) -> Result<usize> {
        use crate::domain::{BarSize, Series, WhatToShow};
        use crate::lake::layout::Period;
        let option_days: std::collections::BTreeSet<chrono::NaiveDate> = self
            .lake
            .partitions(Dataset::OptionBars, Some(symbol))
            .await?
            .into_iter()
            .filter_map(|p| match p.period {
                Period::Day(d) => Some(d),
                _ => None,
            })
            .collect();
        let (Some(first), Some(last)) = (option_days.first(), option_days.last()) else { return Ok(0) };
        let daily = Series { bar_size: BarSize::Day1, what_to_show: WhatToShow::Trades };
        let spec = SeriesSpec { dataset: Dataset::EquityBars, symbol: symbol.clone(), con_id: None, series: daily };
        let present: std::collections::BTreeSet<_> =
            Coverage::new(&self.lake).present_dates(&spec, *first, *last).await?.into_iter().collect();
        let orphan: Vec<chrono::NaiveDate> = option_days.difference(&present).copied().collect();
        if orphan.is_empty() {
            return Ok(0);
        }
        let m = self.lake.manifest(symbol).await?;
        let key = SeriesKey::bars(Dataset::EquityBars, None, daily);
        let claims: Vec<String> = m
            .entries
            .iter()
            .filter(|e| e.request.series_key() == key)
            .filter(|e| e.covered().is_some_and(|w| orphan.iter().any(|d| w.start <= *d && *d <= w.end)))
            .map(|e| e.id.clone())
            .collect();
        if !claims.is_empty() {
            self.lake
                .revoke(symbol, claims, "option bars without daily equity bars: found by `update`'s integrity check")
                .await?;
        }
        self.say(format!(
            "{symbol:<8} integrity    {} dates with option bars but no spot: fetching the spot again",
            orphan.len()
        ));
        Ok(orphan.len())
    }

    /// Revokes manifest entries with rows whose partitions no longer hold them, so their windows
    /// are fetched again. Returns how many were revoked.
    pub async fn revoke_lost(&self, symbol: &Symbol) -> Result<usize> {
        // Lost only on a confirmed absence; a damaged or unreadable file is an error naming it.
        let lost = self.lake.lost_entries(symbol).await?;
        let n = lost.len();
        if n > 0 {
            self.lake.revoke(symbol, lost, "partitions lost: found by `update`'s integrity check").await?;
            self.say(format!(
                "{symbol:<8} integrity    {n} manifest entries had lost their rows: revoked, fetching again"
            ));
        }
        Ok(n)
    }
}
