//! Healing after a corporate action ([`super::corporate`] says why and what): revoke the entries
//! on the old basis, record the action, alert, fetch the revoked windows again, and (after a
//! split) ask the options' descriptions again for their new terms.

use super::corporate::Found;
use super::{BarJob, FetchStats, Ingest};
use crate::calendar;
use crate::datasets::corporate_actions::{self, CorporateAction, OVERLAP, SPLIT};
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
    /// Returns the recorded action and what the re-fetch did.
    pub async fn heal(
        &self,
        symbol: &Symbol,
        inst: &Instrument,
        found: Found,
    ) -> Result<(CorporateAction, FetchStats)> {
        let Found { series, ratio, kind, last_old, request_id, overlap } = found;
        let effective = calendar::next_trading_day(last_old);
        let m = self.lake.manifest(symbol).await?;
        let stale: Vec<&Entry> = m
            .entries
            .iter()
            .filter(|e| e.id != request_id && matches!(e.outcome, Outcome::Ok { .. }))
            .filter(|e| e.request.dataset == Dataset::EquityBars && e.request.con_id.is_none())
            .filter(|e| kind == SPLIT || e.request.series == Some(series))
            .collect();
        let mut windows: BTreeMap<Series, Vec<DateWindow>> = BTreeMap::new();
        for e in &stale {
            if let (Some(s), Some(w)) = (e.request.series, e.request.window) {
                windows.entry(s).or_default().push(w);
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
        let healed = self.fetch_again(symbol, inst, windows, &because).await?;
        if kind == SPLIT {
            self.reask_options(symbol).await?;
        }
        Ok((action, healed))
    }

    /// Fetches the sessions of revoked windows that no final answer covers any more.
    async fn fetch_again(
        &self,
        symbol: &Symbol,
        inst: &Instrument,
        windows: BTreeMap<Series, Vec<DateWindow>>,
        reason: &str,
    ) -> Result<FetchStats> {
        let m = self.lake.manifest(symbol).await?;
        let mut total = FetchStats::default();
        for (series, ws) in windows {
            let covered = m.covered(&SeriesKey::bars(Dataset::EquityBars, None, series));
            let held = |d: &NaiveDate| covered.iter().any(|w| w.start <= *d && *d <= w.end);
            let days: BTreeSet<NaiveDate> =
                union(ws).iter().flat_map(|w| calendar::trading_days(w.start, w.end)).filter(|d| !held(d)).collect();
            let days: Vec<NaiveDate> = days.into_iter().collect();
            let jobs: Vec<BarJob> = plan(&days, series.bar_size)?
                .into_iter()
                .map(|plan| BarJob { instrument: inst.clone(), option: None, series, plan })
                .collect();
            if jobs.is_empty() {
                continue;
            }
            let stats = self.fetch_bars_because(symbol, jobs, Some(reason)).await?;
            self.say(format!(
                "{symbol:<8} corporate    {} {}: {} sessions fetched again, {} rows, {} failed",
                series.bar_size,
                series.what_to_show,
                days.len(),
                stats.rows,
                stats.failed
            ));
            total.add(&stats);
        }
        Ok(total)
    }

    /// Asks the descriptions of the symbol's options again (every stored expiry not yet past),
    /// so `contracts` holds their terms after a split; `con_id` stays the identity.
    async fn reask_options(&self, symbol: &Symbol) -> Result<usize> {
        let today = calendar::trading_date(self.now());
        let expiries: BTreeSet<NaiveDate> = self
            .stored_contracts(symbol)
            .await?
            .into_iter()
            .filter(|c| c.sec_type == SecType::Option)
            .filter_map(|c| c.expiry)
            .filter(|e| *e >= today)
            .collect();
        let mut n = 0;
        for expiry in expiries {
            n += self.option_contracts(symbol, expiry).await?.len();
        }
        Ok(n)
    }
}
