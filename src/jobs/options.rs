//! `backfill_option_bars`: bars of the options around the money, selected from the latest chain
//! snapshot and the spot, only for missing windows, never for expired contracts.

use super::{missing_days, series_key, BarJob, FetchStats, Ingest, OptionTarget};
use crate::calendar;
use crate::datasets::contracts::Contract;
use crate::datasets::option_bars::OptionContract;
use crate::datasets::Dataset;
use crate::error::Result;
use crate::lake::layout::Symbol;
use crate::source::plan::plan;
use crate::source::{Instrument, MarketData, SecType};
use chrono::NaiveDate;
use std::collections::BTreeSet;

impl<S: MarketData> Ingest<S> {
    /// The option contracts whose bars are wanted: listed in the latest snapshot, expiring
    /// within the configured days (and not expired), strikes within the band around the spot,
    /// nearest the money first, at most `max_contracts`.
    pub async fn select_options(
        &self,
        symbol: &Symbol,
        chain_expiries: &BTreeSet<NaiveDate>,
        spot: f64,
    ) -> Result<Vec<OptionTarget>> {
        let today = calendar::trading_date(self.now());
        let horizon = today + chrono::Duration::days(self.cfg.options.expiry_days);
        let stored = self.stored_contracts(symbol).await?;
        let mut picked: Vec<Contract> = Vec::new();
        for &expiry in chain_expiries.iter().filter(|e| **e >= today && **e <= horizon) {
            let fresh: Vec<Contract> = stored
                .iter()
                .filter(|c| c.sec_type == "OPT" && c.expiry == Some(expiry))
                .filter(|c| self.now() - c.fetched_at < self.cfg.policy.contracts_max_age)
                .cloned()
                .collect();
            let contracts = if fresh.is_empty() { self.option_contracts(symbol, expiry).await? } else { fresh };
            picked.extend(contracts.into_iter().filter(|c| {
                c.strike.is_some_and(|k| (k / spot - 1.0).abs() <= self.cfg.options.strike_band) && c.right.is_some()
            }));
        }
        picked.sort_by(|a, b| {
            let d = |c: &Contract| (c.strike.unwrap_or(0.0) - spot).abs();
            d(a).total_cmp(&d(b)).then(a.expiry.cmp(&b.expiry)).then(a.con_id.cmp(&b.con_id))
        });
        picked.dedup_by_key(|c| c.con_id);
        picked.truncate(self.cfg.options.max_contracts);
        Ok(picked
            .into_iter()
            .filter_map(|c| {
                Some(OptionTarget {
                    contract: OptionContract {
                        con_id: c.con_id,
                        expiry: c.expiry?,
                        strike: c.strike?,
                        right: c.right?,
                        multiplier: c.multiplier.unwrap_or(100.0),
                    },
                })
            })
            .collect())
    }

    /// Backfills the option bars of `symbol`; refuses without prerequisites.
    pub async fn backfill_option_bars(&self, symbol: &Symbol) -> Result<FetchStats> {
        let pre = self.option_prerequisites(symbol).await?;
        let expiries: BTreeSet<NaiveDate> = pre.chain.iter().map(|r| r.expiration).collect();
        let targets = self.select_options(symbol, &expiries, pre.spot.1).await?;
        let last = self.last_final_session();
        let from = super::equity::sessions_back(last, self.cfg.options.sessions);
        let m = self.lake.manifest(symbol).await?;
        let mut jobs = Vec::new();
        let mut missing_total = 0;
        for t in &targets {
            for &series in &self.cfg.options.series {
                let key = series_key(Dataset::OptionBars, Some(t.contract.con_id), series);
                let missing = missing_days(&m, &key, from, last);
                if missing.is_empty() {
                    continue;
                }
                missing_total += missing.len();
                let inst = Instrument { con_id: t.contract.con_id, symbol: symbol.clone(), sec_type: SecType::Option };
                for p in plan(&missing, series.bar_size)? {
                    jobs.push(BarJob { instrument: inst.clone(), option: Some(t.clone()), series, plan: p });
                }
            }
        }
        let planned = jobs.len();
        let t0 = std::time::Instant::now();
        let total = self.fetch_bars(symbol, jobs).await?;
        self.say(format!(
            "{symbol:<8} option_bars  {} contracts (spot {:.2}): {planned} requests for {missing_total} missing contract-days, {} rows, {} empty, {} failed ({:.1?})",
            targets.len(),
            pre.spot.1,
            total.rows,
            total.empty,
            total.failed,
            t0.elapsed()
        ));
        Ok(total)
    }
}
