//! `contracts_snapshot`: the current option chain, stored as a timestamped snapshot. Older
//! snapshots stay: IB never serves a past chain, so these are the only chain history there is.

use super::ask::ChainQuery;
use super::Ingest;
use crate::datasets::chains::{self, ChainRow};
use crate::datasets::Dataset;
use crate::domain::SecType;
use crate::domain::Symbol;
use crate::error::{Error, Result};
use crate::lake::manifest::{Outcome, Request};
use crate::source::MarketData;
use chrono::{DateTime, Utc};

impl<S: MarketData> Ingest<S> {
    /// The rows of the symbol's latest snapshot (empty when none was ever taken).
    pub async fn latest_chain(&self, symbol: &Symbol) -> Result<Vec<ChainRow>> {
        let parts = self.lake.partitions(Dataset::Chains, Some(symbol)).await?;
        let Some(last) = parts.last() else { return Ok(vec![]) };
        let rows = self.lake.read_partition(last).await?.map(|d| chains::from_batch(&d.batch)).unwrap_or_default();
        let Some(at) = rows.iter().map(|r| r.snapshot_at).max() else { return Ok(vec![]) };
        Ok(rows.into_iter().filter(|r| r.snapshot_at == at).collect())
    }

    /// When the latest snapshot was taken.
    pub async fn latest_chain_at(&self, symbol: &Symbol) -> Result<Option<DateTime<Utc>>> {
        Ok(self.latest_chain(symbol).await?.first().map(|r| r.snapshot_at))
    }

    /// Takes a snapshot unless one younger than the policy's chain age exists. Returns whether a
    /// request was sent.
    pub async fn contracts_snapshot(&self, symbol: &Symbol) -> Result<bool> {
        if let Some(at) = self.latest_chain_at(symbol).await? {
            if self.now() - at < self.cfg.policy.chain_max_age {
                return Ok(false);
            }
        }
        let Some(stock) = self.stock_contract(symbol).await? else {
            return Err(Error::Prerequisite {
                symbol: symbol.to_string(),
                missing: vec!["no contract description".into()],
            });
        };
        let answered = self.ask(&ChainQuery { symbol: symbol.clone(), con_id: stock.con_id }).await;
        let params = match &answered.answer {
            Ok(p) => p,
            Err(e) => {
                let outcome = Outcome::Error { code: e.code, message: e.message.clone() };
                self.lake.record_entry(answered.entry(request(symbol, stock.con_id), outcome), None).await?;
                let (code, class, message) = (e.code, e.class, e.message.clone());
                return Err(Error::Gateway { what: format!("the option chain of {symbol}"), code, class, message });
            }
        };
        let rows = chains::snapshot_rows(params, self.now());
        let outcome = if rows.is_empty() { Outcome::Empty } else { Outcome::Ok { rows: rows.len() as u64 } };
        let entry = answered.entry(request(symbol, stock.con_id), outcome);
        self.lake.record_entry(entry, Some(&chains::to_batch(&rows))).await?;
        self.metrics.rows(Dataset::Chains.name(), rows.len() as u64);
        let expiries: std::collections::BTreeSet<_> = rows.iter().map(|r| r.expiration).collect();
        self.say(format!(
            "{symbol:<8} chain        1 request, {} exchanges, {} expiries, {} rows",
            params.len(),
            expiries.len(),
            rows.len()
        ));
        Ok(true)
    }
}

fn request(symbol: &Symbol, con_id: i64) -> Request {
    Request { con_id: Some(con_id), ..Request::new(Dataset::Chains, symbol, SecType::Option) }
}
