//! Capture gaps: a lost stretch of quotes can never be requested again, so each is written down
//! in the manifest of every captured symbol and alerted, from the first loss to the last recovery.

use super::metrics::LiveMetrics;
use crate::calendar;
use crate::datasets::Dataset;
use crate::domain::codes::CONNECTIVITY_LOST;
use crate::domain::{DateWindow, SecType, Symbol};
use crate::error::Result;
use crate::jobs::Ingest;
use crate::lake::manifest::{Entry, Outcome, Request};
use crate::monitor::Severity;
use crate::source::{MarketData, StreamContract};
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;

/// The gap state: when the open gap began, and the feeds still waiting for their first tick
/// since they lost their subscription.
#[derive(Debug, Default)]
pub(super) struct Gap {
    start: Option<DateTime<Utc>>,
    lost: HashSet<usize>,
}

impl Gap {
    /// Feed `i` lost its subscription at `at`; the first loss opens the gap (a reconnect).
    pub(super) fn feed_lost(&mut self, i: usize, at: DateTime<Utc>, lm: &LiveMetrics) {
        if self.start.is_none() {
            self.start = Some(at);
            lm.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        self.lost.insert(i);
    }

    /// The gateway said the connection is lost (1100): the gap opens unless it is open already.
    pub(super) fn connection_lost(&mut self, at: DateTime<Utc>) {
        self.start.get_or_insert(at);
    }

    /// Feed `i` is back (or gone for good); whether it was the last one missing, so the gap
    /// can close.
    pub(super) fn feed_back(&mut self, i: usize) -> bool {
        self.lost.remove(&i) && self.lost.is_empty()
    }

    /// Feed `i` was unsubscribed: no tick will ever bring it back.
    pub(super) fn forget(&mut self, i: usize) {
        self.lost.remove(&i);
    }

    /// Whether every feed that lost its subscription has it again.
    pub(super) fn all_back(&self) -> bool {
        self.lost.is_empty()
    }

    /// Closes the open gap, if any, ending now: recorded in the manifest of every symbol of
    /// `contracts` and alerted as a WARNING. Whether a gap was closed.
    pub(super) async fn close<S: MarketData>(
        &mut self,
        ingest: &Ingest<S>,
        contracts: &[StreamContract],
    ) -> Result<bool> {
        let Some(start) = self.start.take() else { return Ok(false) };
        self.lost.clear();
        let end = ingest.now();
        let symbols: BTreeSet<Symbol> = contracts.iter().map(|c| c.symbol.clone()).collect();
        let message = format!("live capture gap from {} to {}", start.to_rfc3339(), end.to_rfc3339());
        for s in symbols {
            let entry = Entry::new(
                gap_request(&s, start, end)?,
                start,
                end,
                Outcome::Error { code: CONNECTIVITY_LOST, message: message.clone() },
            );
            ingest.lake.record_entry(entry, None).await?;
            ingest.alert(Severity::Warning, &s, message.clone());
        }
        Ok(true)
    }
}

/// The manifest request a gap is recorded under: the symbol's quotes over the trading dates
/// it spans.
fn gap_request(s: &Symbol, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Request> {
    let window = DateWindow::new(calendar::trading_date(start), calendar::trading_date(end))?;
    Ok(Request { window: Some(window), ..Request::new(Dataset::Quotes, s, SecType::Stock) })
}
