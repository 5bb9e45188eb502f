//! Which lines to subscribe: the first plan within IB's line limit, the option band that follows
//! the live spot, and the chain snapshots both rest on.

use super::book::Book;
use super::feed::Subscriptions;
use super::metrics::LiveMetrics;
use crate::domain::{SecType, Symbol};
use crate::error::{Error, Result};
use crate::jobs::Ingest;
use crate::source::{MarketData, StreamContract};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;

/// The contracts to subscribe to, within the line limit; symbols whose option prerequisites
/// are missing get their underlying only.
pub async fn plan<S: MarketData>(
    ingest: &Ingest<S>,
    symbols: &[Symbol],
    max_lines: usize,
) -> Result<(Vec<StreamContract>, Vec<String>)> {
    let mut out = Vec::new();
    let mut without = Vec::new();
    for s in symbols {
        let stock = ingest.stock_contract(s).await?.ok_or_else(|| Error::Prerequisite {
            symbol: s.to_string(),
            missing: vec!["contract descriptions (backfill_contracts)".into()],
        })?;
        out.push(StreamContract::stock(stock.con_id, s));
    }
    out.truncate(max_lines);
    let per_symbol = max_lines.saturating_sub(out.len()) / symbols.len().max(1);
    for s in symbols {
        let pre = match ingest.option_prerequisites(s).await {
            Ok(p) => p,
            Err(Error::Prerequisite { .. }) => {
                without.push(s.to_string());
                continue;
            }
            Err(e) => return Err(e),
        };
        let expiries: BTreeSet<_> = pre.chain.iter().map(|r| r.expiration).collect();
        let mut targets = ingest.select_options(s, &expiries, pre.spot.1).await?;
        targets.truncate(per_symbol);
        out.extend(targets.iter().map(|t| StreamContract::option(s, &t.contract)));
    }
    Ok((out, without))
}

/// The re-selection state: the symbols that have options, and the option lines each may hold.
pub(super) struct Selection {
    with_options: Vec<Symbol>,
    per_symbol: usize,
}

/// What a re-selection changes for one symbol.
pub(super) struct Moves {
    /// Options that left the band (unsubscribed first: the line limit holds throughout).
    pub(super) leaving: Vec<i64>,
    /// Options that entered it.
    pub(super) entering: Vec<StreamContract>,
}

impl Selection {
    /// The selection of a run over `symbols`, of which `without_options` lack the prerequisites.
    pub(super) fn new(symbols: &[Symbol], without_options: &[String], max_lines: usize) -> Self {
        let with_options = symbols.iter().filter(|s| !without_options.contains(&s.to_string())).cloned().collect();
        let per_symbol = max_lines.saturating_sub(symbols.len()) / symbols.len().max(1);
        Selection { with_options, per_symbol }
    }

    /// The symbols whose options follow the spot.
    pub(super) fn symbols(&self) -> &[Symbol] {
        &self.with_options
    }

    /// The option selection made again around `spot`, against what `subs` holds now.
    pub(super) async fn around<S: MarketData>(
        &self,
        ingest: &Ingest<S>,
        s: &Symbol,
        spot: f64,
        subs: &Subscriptions,
    ) -> Result<Moves> {
        let expiries: BTreeSet<_> = ingest.latest_chain(s).await?.iter().map(|r| r.expiration).collect();
        let mut targets = ingest.select_options(s, &expiries, spot).await?;
        targets.truncate(self.per_symbol);
        let wanted: HashSet<i64> = targets.iter().map(|t| t.contract.con_id).collect();
        let leaving = subs
            .active()
            .filter(|(id, c)| &c.symbol == s && c.sec_type == SecType::Option && !wanted.contains(id))
            .map(|(id, _)| id)
            .collect();
        let entering = targets
            .iter()
            .filter(|t| !subs.holds(t.contract.con_id))
            .map(|t| StreamContract::option(s, &t.contract))
            .collect();
        Ok(Moves { leaving, entering })
    }
}

/// The live spot of a symbol: its last trade, else the middle of its quote.
pub(super) fn spot(subs: &Subscriptions, book: &Book, symbol: &Symbol) -> Option<f64> {
    subs.active().find_map(|(_, c)| {
        let q = book.state(c.con_id).filter(|_| c.sec_type == SecType::Stock && &c.symbol == symbol)?;
        q.last.or(q.bid.zip(q.ask).map(|(b, a)| (b + a) / 2.0))
    })
}

/// Before the first plan: each symbol's freshness checked and its chain snapshotted (a failed
/// snapshot leaves the latest one in use).
pub(super) async fn prepare<S: MarketData>(ingest: &Ingest<S>, symbols: &[Symbol], lm: &LiveMetrics) -> Result<()> {
    for s in symbols {
        ingest.freshness(s).await?;
        if let Err(e) = ingest.contracts_snapshot(s).await {
            tracing::warn!("{s}: chain snapshot: {e}");
        }
    }
    chain_age(ingest, symbols, lm).await
}

/// The scheduled chain snapshots (taken when the latest is older than the policy's
/// `chain_max_age`), and the freshness of each symbol.
pub(super) async fn refresh_chains<S: MarketData>(
    ingest: &Ingest<S>,
    symbols: &[Symbol],
    lm: &LiveMetrics,
) -> Result<()> {
    for s in symbols {
        if let Err(e) = ingest.contracts_snapshot(s).await {
            tracing::warn!("{s}: scheduled chain snapshot: {e}");
        }
        ingest.freshness(s).await?;
    }
    chain_age(ingest, symbols, lm).await
}

/// The chain-age gauge: the age of the oldest symbol's latest snapshot (-1 when none has one).
async fn chain_age<S: MarketData>(ingest: &Ingest<S>, symbols: &[Symbol], lm: &LiveMetrics) -> Result<()> {
    let mut oldest = -1;
    for s in symbols {
        if let Some(at) = ingest.latest_chain_at(s).await? {
            oldest = oldest.max((ingest.now() - at).num_seconds());
        }
    }
    lm.chain_age_secs.store(oldest, Ordering::Relaxed);
    Ok(())
}
