//! `backfill_contracts`: the symbol's contract description (and, for the option job, those of the
//! options it will ask for), refreshed when older than the policy allows.

use super::Ingest;
use crate::datasets::contracts::{self, Contract};
use crate::datasets::Dataset;
use crate::domain::SecType;
use crate::domain::Symbol;
use crate::error::{Error, Result};
use crate::lake::layout::Partition;
use crate::lake::manifest::{Outcome, Request};
use crate::source::errors::ErrorClass;
use crate::source::{ContractQuery, MarketData};
use chrono::NaiveDate;

fn request(symbol: &Symbol, sec_type: SecType, expiry: Option<NaiveDate>) -> Request {
    Request { expiry, ..Request::new(Dataset::Contracts, symbol, sec_type) }
}

impl<S: MarketData> Ingest<S> {
    /// The stored contract descriptions of a symbol (stock and options).
    pub async fn stored_contracts(&self, symbol: &Symbol) -> Result<Vec<Contract>> {
        let p = Partition::for_date(Dataset::Contracts, symbol, None, NaiveDate::MIN)?;
        Ok(self.lake.read_partition(&p).await?.map(|d| contracts::from_batch(&d.batch)).unwrap_or_default())
    }

    /// The stored description of the symbol's own stock, if any.
    pub async fn stock_contract(&self, symbol: &Symbol) -> Result<Option<Contract>> {
        Ok(self
            .stored_contracts(symbol)
            .await?
            .into_iter()
            .filter(|c| c.sec_type == SecType::Stock)
            .max_by_key(|c| c.fetched_at))
    }

    /// Fetches the stock's description unless a fresh one is stored. Returns it and whether a
    /// request was sent. An unknown symbol is a [`Error::BadInput`] and writes nothing.
    pub async fn backfill_contracts(&self, symbol: &Symbol) -> Result<(Contract, bool)> {
        if let Some(c) = self.stock_contract(symbol).await? {
            if self.now() - c.fetched_at < self.cfg.policy.contracts_max_age {
                return Ok((c, false));
            }
        }
        let q = ContractQuery { symbol: symbol.clone(), sec_type: SecType::Stock, expiry: None };
        let answered = self.ask(&q).await;
        let found = match &answered.answer {
            Ok(found) => found,
            Err(e) if e.class == ErrorClass::NoSecurityDefinition => {
                let why =
                    "the gateway has no stock by that name (IB error 200); check the spelling IB uses, e.g. \"BRK B\"";
                return Err(Error::bad_input("symbol", symbol.as_str(), why));
            }
            Err(e) => {
                let (code, class, message) = (e.code, e.class, e.message.clone());
                return Err(Error::Gateway { what: format!("contract details of {symbol}"), code, class, message });
            }
        };
        let Some(stock) = pick_listing(found) else {
            return Err(Error::bad_input("symbol", symbol.as_str(), "the gateway returned no stock contract for it"));
        };
        let mut stock = stock.clone();
        stock.fetched_at = self.now();
        let batch = contracts::to_batch(std::slice::from_ref(&stock));
        let entry = answered.entry(request(symbol, SecType::Stock, None), Outcome::Ok { rows: 1 });
        self.lake.record_entry(entry, Some(&batch)).await?;
        self.metrics.rows(Dataset::Contracts.name(), 1);
        self.say(format!("{symbol:<8} contracts    1 request, con_id {}", stock.con_id));
        Ok((stock, true))
    }

    /// Fetches the descriptions of every option of one expiry and stores them.
    pub async fn option_contracts(&self, symbol: &Symbol, expiry: NaiveDate) -> Result<Vec<Contract>> {
        let q = ContractQuery { symbol: symbol.clone(), sec_type: SecType::Option, expiry: Some(expiry) };
        let answered = self.ask(&q).await;
        let req = request(symbol, SecType::Option, Some(expiry));
        let found = match &answered.answer {
            Ok(found) => found,
            Err(e) => {
                let entry = answered.entry(req, Outcome::Error { code: e.code, message: e.message.clone() });
                self.lake.record_entry(entry, None).await?;
                return Ok(vec![]);
            }
        };
        let now = self.now();
        // The exercise style from the trading class (index classes European, the rest American).
        let found: Vec<Contract> =
            found.iter().map(|c| Contract { fetched_at: now, exercise_style: c.style(), ..c.clone() }).collect();
        let outcome = if found.is_empty() { Outcome::Empty } else { Outcome::Ok { rows: found.len() as u64 } };
        let batch = contracts::to_batch(&found);
        self.lake.record_entry(answered.entry(req, outcome), Some(&batch)).await?;
        self.metrics.rows(Dataset::Contracts.name(), found.len() as u64);
        Ok(found)
    }
}

/// Of several matches, the SMART-routed listing (IB returns one per exchange for some queries).
fn pick_listing(found: &[Contract]) -> Option<&Contract> {
    found
        .iter()
        .filter(|c| c.sec_type == SecType::Stock)
        .find(|c| c.exchange == "SMART")
        .or_else(|| found.iter().find(|c| c.sec_type == SecType::Stock))
}
