//! The prerequisites of option bars, checked before a single option request is sent: contract
//! descriptions, a chain snapshot at most 24 hours old, and a spot at most one trading day old.

use super::Ingest;
use crate::calendar;
use crate::datasets::chains::ChainRow;
use crate::datasets::contracts::Contract;
use crate::datasets::{equity_bars, Dataset};
use crate::domain::{BarSize, Series, Symbol, WhatToShow};
use crate::error::{Error, Result};
use crate::lake::layout::Partition;
use crate::monitor::Severity;
use crate::source::MarketData;
use chrono::NaiveDate;
use std::sync::atomic::Ordering;

/// What option bars stand on.
#[derive(Debug, Clone)]
pub struct Prerequisites {
    /// The underlying's description.
    pub stock: Contract,
    /// The latest chain snapshot.
    pub chain: Vec<ChainRow>,
    /// The latest daily close and its date.
    pub spot: (NaiveDate, f64),
}

const DAILY: Series = Series { bar_size: BarSize::Day1, what_to_show: WhatToShow::Trades };

impl<S: MarketData> Ingest<S> {
    /// The latest daily close stored for `symbol`.
    pub async fn latest_spot(&self, symbol: &Symbol) -> Result<Option<(NaiveDate, f64)>> {
        let mut years: Vec<Partition> = self
            .lake
            .partitions(Dataset::EquityBars, Some(symbol))
            .await?
            .into_iter()
            .filter(|p| p.series == Some(DAILY))
            .collect();
        years.sort_by_key(|p| p.period);
        let Some(last) = years.last() else { return Ok(None) };
        let rows = self.lake.read_partition(last).await?.map(|d| equity_bars::from_batch(&d.batch)).unwrap_or_default();
        Ok(rows.iter().max_by_key(|b| b.date).map(|b| (b.date, b.close)))
    }

    /// Checks the prerequisites of option bars; a failure is counted as a dependency violation,
    /// alerted as CRITICAL and returned as [`Error::Prerequisite`].
    pub async fn option_prerequisites(&self, symbol: &Symbol) -> Result<Prerequisites> {
        let mut missing = Vec::new();
        let stock = self.stock_contract(symbol).await?;
        if stock.is_none() {
            missing.push("contract descriptions (backfill_contracts)".to_string());
        }
        let chain = self.latest_chain(symbol).await?;
        match chain.first().map(|r| r.snapshot_at) {
            None => missing.push("an option-chain snapshot (contracts_snapshot)".into()),
            Some(at) if self.now() - at > self.cfg.policy.chain_prerequisite_age => {
                let hours = (self.now() - at).num_hours();
                missing.push(format!("a chain snapshot at most 24 h old (the latest is {hours} h old)"));
            }
            _ => {}
        }
        let spot = self.latest_spot(symbol).await?;
        let oldest_ok = calendar::prev_trading_day(self.last_final_session());
        match spot {
            None => missing.push("a spot price: daily equity bars (backfill_equity_bars)".into()),
            Some((d, _)) if d < oldest_ok => {
                missing.push(format!("a spot at most one trading day old (the latest daily bar is from {d})"))
            }
            _ => {}
        }
        match (stock, spot, missing.is_empty()) {
            (Some(stock), Some(spot), true) => Ok(Prerequisites { stock, chain, spot }),
            _ => {
                self.metrics.dependency_violations.fetch_add(1, Ordering::Relaxed);
                let err = Error::Prerequisite { symbol: symbol.to_string(), missing };
                self.alert(Severity::Critical, symbol, format!("option data requested without prerequisites: {err}"));
                Err(err)
            }
        }
    }
}
