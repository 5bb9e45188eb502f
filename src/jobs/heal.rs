//! Healing after a corporate action ([`super::corporate`] says why and what): (after a split) ask
//! the options' descriptions again for their new terms, revoke the entries on the old basis,
//! record the action, alert, and fetch the revoked windows again.

use super::corporate::Found;
use super::{BarJob, FetchStats, Ingest, OptionTarget};
use crate::calendar;
use crate::datasets::corporate_actions::{self, CorporateAction, OVERLAP, SPLIT};
use crate::datasets::option_bars::OptionContract;
use crate::datasets::Dataset;
use crate::domain::window::union;
use crate::domain::{DateWindow, SecType, Series, Symbol};
use crate::error::Result;
use crate::lake::manifest::{Entry, Outcome, Request, SeriesKey};
use crate::monitor::Severity;
use crate::source::plan::plan;
use crate::source::{Instrument, MarketData};
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

impl<S: MarketData> Ingest<S> {
    /// Records `found`, revokes the entries on the old basis and fetches their windows again.
    /// Returns the recorded action and what the re-fetch did: equity bars, option bars.
    pub async fn heal(
        &self,
        symbol: &Symbol,
        inst: &Instrument,
        found: Found,
    ) -> Result<(CorporateAction, [FetchStats; 2])> {
        let Found { series, ratio, kind, last_old, request_id, overlap } = found;
        let effective = calendar::next_trading_day(last_old);
        // After a split, the options' new terms first: the option bars re-fetched below carry them.
        let options = if kind == SPLIT { self.reask_options(symbol).await? } else { BTreeMap::new() };
        let m = self.lake.manifest(symbol).await?;
        let stale: Vec<&Entry> = m
            .entries
            .iter()
            .filter(|e| e.id != request_id && matches!(e.outcome, Outcome::Ok { .. }))
            .filter(|e| match (e.request.dataset, e.request.con_id) {
                (Dataset::EquityBars, None) => kind == SPLIT || e.request.series == Some(series),
                // Options still listed (those IB still describes); expired ones stay as fetched.
                (Dataset::OptionBars, Some(id)) => options.contains_key(&id),
                _ => false,
            })
            .collect();
        let mut windows: BTreeMap<(Option<i64>, Series), Vec<DateWindow>> = BTreeMap::new();
        for e in &stale {
            if let (Some(s), Some(w)) = (e.request.series, e.request.window) {
                windows.entry((e.request.con_id, s)).or_default().push(w);
            }
        }
        let ids: Vec<String> = stale.iter().map(|e| e.id.clone()).collect();
        let n = ids.len();
        let what = format!("{} {}", series.bar_size, series.what_to_show);
        let reason = format!(
            "corporate action ({kind}, ratio {ratio}, effective {effective}) found on {what} by the overlap of request {request_id}: fetched again on the new basis"
        );
        let revocation_id = if ids.is_empty() { None } else { Some(self.lake.revoke(symbol, ids, &reason).await?.id) };
        let now = self.now();
        let action = CorporateAction {
            date: calendar::trading_date(now),
            effective_date: effective,
            ratio,
            kind: kind.to_string(),
            series: what.clone(),
            how: OVERLAP.to_string(),
            request_id,
            overlap_from: overlap.first().copied().unwrap_or(last_old),
            overlap_to: overlap.last().copied().unwrap_or(last_old),
            revoked: n as i64,
            revocation_id,
            detected_at: now,
        };
        let entry = Entry::new(
            Request::new(Dataset::CorporateActions, symbol, SecType::Stock),
            now,
            now,
            Outcome::Ok { rows: 1 },
        );
        self.lake.record_entry(entry, Some(&corporate_actions::to_batch(std::slice::from_ref(&action)))).await?;
        self.metrics.rows(Dataset::CorporateActions.name(), 1);
        self.metrics.corporate_actions.fetch_add(1, Ordering::Relaxed);
        let msg = format!(
            "corporate action: {kind} ratio {ratio:.4} effective {effective}, found on {what} (stored ÷ fresh over {} sessions); {n} manifest entries revoked, fetching them again on the new basis",
            overlap.len()
        );
        tracing::warn!("{symbol} {msg}");
        self.say(format!("{symbol:<8} corporate    {msg}"));
        self.alert(Severity::Warning, symbol, msg);
        let because = format!(
            "re-fetch after the corporate action {kind} {ratio} effective {effective} of corporate_actions (revocation {})",
            action.revocation_id.as_deref().unwrap_or("none")
        );
        let healed = self.fetch_again(symbol, inst, &options, windows, &because).await?;
        Ok((action, healed))
    }

    /// Fetches the sessions of revoked windows that no final answer covers any more: the
    /// symbol's own series first (the spot of the option sessions), then its options' with the
    /// terms in `options`.
    async fn fetch_again(
        &self,
        symbol: &Symbol,
        inst: &Instrument,
        options: &BTreeMap<i64, OptionContract>,
        windows: BTreeMap<(Option<i64>, Series), Vec<DateWindow>>,
        reason: &str,
    ) -> Result<[FetchStats; 2]> {
        let m = self.lake.manifest(symbol).await?;
        let mut total = [FetchStats::default(), FetchStats::default()];
        for pass_options in [false, true] {
            let mut jobs = Vec::new();
            // ADJUSTED_LAST ends now only: fetched again whole by `backfill_equity_bars` (`adjusted`).
            let planned = |s: &Series| s.what_to_show != crate::domain::WhatToShow::AdjustedLast;
            for ((con_id, series), ws) in windows.iter().filter(|((c, s), _)| c.is_some() == pass_options && planned(s))
            {
                let dataset = if con_id.is_some() { Dataset::OptionBars } else { Dataset::EquityBars };
                let covered = m.covered(&SeriesKey::bars(dataset, *con_id, *series));
                let held = |d: &NaiveDate| covered.iter().any(|w| w.start <= *d && *d <= w.end);
                let days: BTreeSet<NaiveDate> = union(ws.clone())
                    .iter()
                    .flat_map(|w| calendar::trading_days(w.start, w.end))
                    .filter(|d| !held(d))
                    .collect();
                let days: Vec<NaiveDate> = days.into_iter().collect();
                let (instrument, option) = match con_id.and_then(|id| options.get(&id)) {
                    Some(c) => (
                        Instrument { con_id: c.con_id, symbol: symbol.clone(), sec_type: SecType::Option },
                        Some(OptionTarget { contract: c.clone() }),
                    ),
                    None if con_id.is_some() => continue,
                    None => (inst.clone(), None),
                };
                for plan in plan(&days, series.bar_size)? {
                    jobs.push(BarJob { instrument: instrument.clone(), option: option.clone(), series: *series, plan });
                }
            }
            if jobs.is_empty() {
                continue;
            }
            let n = jobs.len();
            let stats = self.fetch_bars_because(symbol, jobs, Some(reason)).await?;
            let what = if pass_options { "option_bars" } else { "equity_bars" };
            self.say(format!(
                "{symbol:<8} corporate    {what}: {n} requests sent again, {} rows, {} failed",
                stats.rows, stats.failed
            ));
            total[usize::from(pass_options)].add(&stats);
        }
        Ok(total)
    }

    /// Asks the descriptions of the symbol's options again (every stored expiry not yet past),
    /// so `contracts` holds their terms after a split; `con_id` stays the identity. Returns the
    /// options IB still describes, by `con_id`, as their bars are stored.
    async fn reask_options(&self, symbol: &Symbol) -> Result<BTreeMap<i64, OptionContract>> {
        let today = calendar::trading_date(self.now());
        let expiries: BTreeSet<NaiveDate> = self
            .stored_contracts(symbol)
            .await?
            .into_iter()
            .filter(|c| c.sec_type == SecType::Option)
            .filter_map(|c| c.expiry)
            .filter(|e| *e >= today)
            .collect();
        let mut out = BTreeMap::new();
        for expiry in expiries {
            for c in self.option_contracts(symbol, expiry).await? {
                if let (Some(expiry), Some(strike), Some(right)) = (c.expiry, c.strike, c.right) {
                    let multiplier = c.multiplier.unwrap_or(100.0);
                    out.insert(c.con_id, OptionContract { con_id: c.con_id, expiry, strike, right, multiplier });
                }
            }
        }
        Ok(out)
    }
}
