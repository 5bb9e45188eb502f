//! `backfill_equity_bars`: only the missing windows of each configured series, bounded below by
//! the head timestamp, in the fewest requests IB's duration table allows; an `ADJUSTED_LAST`
//! series in one request ending now, the whole series replaced ([`super::adjusted`]).

use super::ask::HeadQuery;
use super::{missing_days, BarJob, FetchStats, Ingest};
use crate::calendar;
use crate::datasets::Dataset;
use crate::domain::DateWindow;
use crate::domain::SecType;
use crate::domain::{Series, Symbol, WhatToShow};
use crate::error::{Error, Result};
use crate::lake::manifest::{Entry, Outcome, Request, SeriesKey};
use crate::source::plan::plan;
use crate::source::{Instrument, MarketData};
use chrono::NaiveDate;

/// The first of `sessions` trading days ending with `last`.
pub fn sessions_back(last: NaiveDate, sessions: u32) -> NaiveDate {
    let mut d = last;
    for _ in 1..sessions.max(1) {
        d = calendar::prev_trading_day(d);
    }
    d
}

impl<S: MarketData> Ingest<S> {
    /// Backfills every configured equity series of `symbol`; returns what was fetched.
    pub async fn backfill_equity_bars(&self, symbol: &Symbol) -> Result<FetchStats> {
        let Some(stock) = self.stock_contract(symbol).await? else {
            return Err(Error::Prerequisite {
                symbol: symbol.to_string(),
                missing: vec!["no contract description".into()],
            });
        };
        let inst = Instrument { con_id: stock.con_id, symbol: symbol.clone(), sec_type: SecType::Stock };
        let last = self.last_final_session();
        let mut total = FetchStats::default();
        for es in self.cfg.equity.clone() {
            let from = match (self.cfg.from, es.series.bar_size.is_intraday()) {
                (Some(f), false) => f,
                _ => sessions_back(last, es.sessions),
            };
            if es.series.what_to_show == WhatToShow::AdjustedLast {
                total.add(&self.refresh_adjusted_last(symbol, &inst, es.series, from, last).await?);
                continue;
            }
            let key = SeriesKey::bars(Dataset::EquityBars, None, es.series);
            let m = self.lake.manifest(symbol).await?;
            let mut missing = missing_days(&m, &key, from, last);
            if missing.first() == Some(&calendar::trading_days(from, last).first().copied().unwrap_or(from)) {
                // A fresh range: IB has nothing before the head timestamp, remembered as empty.
                if let Some(head) = self.head_bound(symbol, &inst, es.series, from).await? {
                    missing.retain(|d| *d >= head);
                }
            }
            if missing.is_empty() {
                self.metrics.requests_skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                continue;
            }
            let plans = plan(&missing, es.series.bar_size)?;
            let n = plans.len();
            let t0 = std::time::Instant::now();
            let jobs = plans
                .into_iter()
                .map(|plan| BarJob { instrument: inst.clone(), option: None, series: es.series, plan })
                .collect();
            let stats = self.fetch_bars(symbol, jobs).await?;
            self.say(format!(
                "{symbol:<8} equity_bars  {} {}: {n} requests for {} missing days, {} rows, {} failed ({:.1?})",
                es.series.bar_size,
                es.series.what_to_show,
                missing.len(),
                stats.rows,
                stats.failed,
                t0.elapsed()
            ));
            total.add(&stats);
        }
        Ok(total)
    }

    /// Asks the head timestamp; if it is after `from`, records `[from, head)` as answered empty
    /// and returns the head's date.
    async fn head_bound(
        &self,
        symbol: &Symbol,
        inst: &Instrument,
        series: Series,
        from: NaiveDate,
    ) -> Result<Option<NaiveDate>> {
        let answered = self.ask(&HeadQuery { instrument: inst.clone(), series }).await;
        let Ok(head) = answered.answer else { return Ok(None) };
        let head_date = calendar::trading_date(head);
        if head_date <= from {
            return Ok(Some(head_date));
        }
        let before = calendar::prev_trading_day(head_date);
        if before >= from {
            // The window before the head timestamp is a final empty answer (IB has nothing there).
            let req = Request::equity_bars(symbol, series, DateWindow::new(from, before)?);
            self.lake
                .record_entry(Entry::new(req, answered.requested_at, answered.completed_at, Outcome::Empty), None)
                .await?;
        }
        Ok(Some(head_date))
    }
}
