//! `setup` (cold start) and `update` (warm start): the jobs in dependency order, each step only
//! when needed, with the seed's recovery: fulfil missing prerequisites, settle interrupted
//! writes, revoke manifest entries whose data is gone and fetch it again.
//!
//! Each symbol is ingested under its job lease in the lake ([`crate::lake::lease`]), taken before
//! anything of it is read, settled or asked. A symbol another process holds is put back in the
//! queue and the run goes on with the next; when every remaining symbol is held the run waits
//! (saying so once per symbol) and looks again. Everything a job decides is read after the lease
//! is taken, so a symbol another process just ingested costs no request: its chain snapshot is
//! fresh and its windows are in the manifest.

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

/// How often a process waiting for another's job lease looks again.
const LEASE_POLL: std::time::Duration = std::time::Duration::from_millis(250);

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
    /// The corporate action found by the overlap check ([`super::corporate`]), as recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corporate_action: Option<CorporateActionReport>,
    /// Option sessions (counted per option series) not requested because the lake held no spot
    /// for them (the underlying's intraday bars of the session): dependency violations, asked
    /// for again by a later run.
    pub option_days_refused: u64,
    /// What failed, if anything.
    pub error: Option<String>,
}

/// A corporate action found in a run, as a report says it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CorporateActionReport {
    /// The first session on the new basis.
    pub effective_date: chrono::NaiveDate,
    /// Stored ÷ fresh.
    pub ratio: f64,
    /// `split` or `other`.
    pub kind: String,
    /// Manifest entries revoked.
    pub revoked: i64,
    /// What was fetched again.
    pub refetched: FetchStats,
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
    /// Corporate actions found (and healed).
    pub corporate_actions: u64,
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
        let mut done: BTreeMap<Symbol, SymbolReport> = BTreeMap::new();
        let mut pending: std::collections::VecDeque<Symbol> = symbols.iter().cloned().collect();
        pending.retain({
            let mut seen = std::collections::BTreeSet::new();
            move |s| seen.insert(s.clone())
        });
        let mut told = std::collections::BTreeSet::new();
        let mut held_in_a_row = 0;
        while let Some(symbol) = pending.pop_front() {
            let mut r = SymbolReport { symbol: symbol.to_string(), ..Default::default() };
            let lease = match self.lake.try_lease(&symbol, self.cfg.lease_ttl).await {
                Ok(Ok(lease)) => lease,
                Ok(Err(held)) => {
                    // Another process ingests this symbol: others first, then this one again,
                    // reading what that process recorded (nothing is asked twice).
                    if told.insert(symbol.clone()) {
                        self.say(format!(
                            "{symbol:<8} waiting      another process ingests it ({}); continuing once it is done",
                            held.holder
                        ));
                    }
                    pending.push_back(symbol);
                    held_in_a_row += 1;
                    if held_in_a_row >= pending.len() {
                        held_in_a_row = 0;
                        tokio::time::sleep(LEASE_POLL.min(self.cfg.lease_ttl)).await;
                    }
                    continue;
                }
                Err(e) => {
                    self.say(format!("{symbol:<8} FAILED: cannot take its job lease: {e}"));
                    r.error = Some(format!("cannot take the job lease of {symbol}: {e}"));
                    done.insert(symbol, r);
                    continue;
                }
            };
            held_in_a_row = 0;
            let mut unknown = false;
            if let Err(e) = self.run_symbol(&symbol, check_integrity, &mut r).await {
                self.say(format!("{symbol:<8} FAILED: {e}"));
                unknown = matches!(e, Error::BadInput { .. });
                r.error = Some(e.to_string());
            }
            if lease.lost() {
                self.say(format!("{symbol:<8} warning: its job lease went stale while held (renewals failed)"));
            }
            // A symbol the gateway does not know leaves nothing in the lake, not even its lease.
            let given_back = if unknown { lease.forget().await } else { lease.release().await };
            if let Err(e) = given_back {
                // It expires on its own after `lease_ttl`.
                tracing::warn!("releasing the job lease of {symbol}: {e}");
            }
            done.insert(symbol, r);
        }
        report.symbols = symbols.iter().filter_map(|s| done.remove(s)).collect();
        for ((kind, outcome), n) in self.metrics.requests() {
            report.requests.insert(format!("{kind}/{outcome}"), n);
        }
        report.rows = self.metrics.rows_written();
        report.pacing_wait_secs = self.pacer.waited().as_secs_f64();
        report.pacing_violations = self.metrics.pacing_violations.load(std::sync::atomic::Ordering::Relaxed);
        report.dependency_violations = self.metrics.dependency_violations.load(std::sync::atomic::Ordering::Relaxed);
        report.corporate_actions = self.metrics.corporate_actions.load(std::sync::atomic::Ordering::Relaxed);
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
        // Before the daily bars are extended: the request that extends them checks their basis.
        let checked = self.check_corporate_actions(symbol).await?;
        r.corporate_action = checked.action.map(|a| CorporateActionReport {
            effective_date: a.effective_date,
            ratio: a.ratio,
            kind: a.kind,
            revoked: a.revoked,
            refetched: {
                let mut all = checked.healed.clone();
                all.add(&checked.healed_options);
                all
            },
        });
        r.equity = self.backfill_equity_bars(symbol).await?;
        r.equity.add(&checked.stats);
        r.equity.add(&checked.healed);
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
        r.options.add(&checked.healed_options);
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
