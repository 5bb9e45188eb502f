//! `ADJUSTED_LAST` daily bars of a stock: one request ending now, the whole series on one basis.
//!
//! IB serves `ADJUSTED_LAST` (trades back-adjusted for splits and cash dividends) only ending now:
//! the request carries no end date, so its window always reaches the present
//! ([`crate::source::plan::plan_to_now`]), and only in bars of a day or longer (intraday ones are
//! refused before anything runs, [`super::config::check`]). Its prices are re-adjusted at every
//! ex-date of a dividend, so bars fetched on different days are on different bases.
//!
//! **Policy: the stored series is always one answer.** When a session of the configured range is
//! missing (a newer session is due, or the range grew), one request reaches from the earliest
//! session wanted — the first missing one or the first held one, whichever is older — to now; its
//! sessions up to the last final one are stored, and then every earlier entry with rows of the
//! series is revoked (never deleted) with a reason naming the request that replaced it. The
//! merge keeps the newer `ingested_at`, so every stored row of the series comes from that one
//! answer, on the basis of its day: a reader can take the whole series as of its newest
//! `ingested_at`. Nothing missing: nothing asked (a series already stored is not refreshed
//! for its own sake; the next due session refreshes it). A failed answer revokes nothing: the
//! series stays whole on its older basis and the due sessions stay missing. The cost is one paced
//! request per update whatever the series' length (IB answers years of daily bars at once).
//!
//! The overlap check of [`super::corporate`] does not apply (IB refuses an `ADJUSTED_LAST`
//! request with an end); after a split found on another series its entries are revoked with the
//! rest, and this job fetches the series again on the same run.

use super::{missing_days, FetchStats, Ingest};
use crate::calendar;
use crate::datasets::Dataset;
use crate::domain::{DateWindow, Series, Symbol};
use crate::error::Result;
use crate::lake::manifest::{Entry, Outcome, SeriesKey};
use crate::source::plan::plan_to_now;
use crate::source::{HistRequest, Instrument, MarketData};
use chrono::NaiveDate;
use std::sync::atomic::Ordering;

impl<S: MarketData> Ingest<S> {
    /// Refreshes the `ADJUSTED_LAST` series of `symbol` over `[from, last]` (module docs).
    pub(super) async fn refresh_adjusted_last(
        &self,
        symbol: &Symbol,
        inst: &Instrument,
        series: Series,
        from: NaiveDate,
        last: NaiveDate,
    ) -> Result<FetchStats> {
        let key = SeriesKey::bars(Dataset::EquityBars, None, series);
        let m = self.lake.manifest(symbol).await?;
        let missing = missing_days(&m, &key, from, last);
        let Some(&first_missing) = missing.first() else {
            self.metrics.requests_skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(FetchStats::default());
        };
        let held: Vec<&Entry> = m
            .entries
            .iter()
            .filter(|e| e.request.series_key() == key && matches!(e.outcome, Outcome::Ok { .. }))
            .collect();
        let start = held.iter().filter_map(|e| e.request.window.map(|w| w.start)).fold(first_missing, NaiveDate::min);
        let window = DateWindow::new(start, last)?;
        let plan = plan_to_now(window, self.now())?;
        let mut request = self.request_of(symbol, None, series, &plan);
        // Sent without an end: the manifest says so.
        request.end_date_time = None;
        let req =
            HistRequest { instrument: inst.clone(), series, duration: plan.duration, end: plan.end, use_rth: true };
        let t0 = std::time::Instant::now();
        let answered = self.ask(&req).await;
        let base = FetchStats { sent: answered.sent, ..Default::default() };
        let f = match answered.answer {
            // Only the window's sessions: not a session still in progress, nor one before.
            Ok(bars) => {
                let bars = bars.into_iter().filter(|b| window.start <= b.date && b.date <= window.end).collect();
                self.answered(request, None, series, answered.requested_at, bars, base)
            }
            Err(e) => {
                tracing::warn!("{symbol} {} {}: {e}", series.bar_size, series.what_to_show);
                let outcome = super::ask::Answered::<()>::error_outcome(&e);
                let mut stats = base;
                match outcome {
                    Outcome::Empty => stats.empty += 1,
                    _ => stats.failed += 1,
                }
                super::Fetched {
                    no_data: false,
                    request,
                    requested_at: answered.requested_at,
                    completed_at: answered.completed_at,
                    outcome,
                    batch: None,
                    stats,
                }
            }
        };
        let ok = matches!(f.outcome, Outcome::Ok { .. });
        let entry = Entry::new(f.request, f.requested_at, f.completed_at, f.outcome);
        let id = entry.id.clone();
        for e in self.lake.record_many(symbol, vec![(entry, f.batch)]).await? {
            if let Outcome::Ok { rows } = e.outcome {
                self.metrics.rows(Dataset::EquityBars.name(), rows);
            }
        }
        let ids: Vec<String> = held.iter().map(|e| e.id.clone()).collect();
        let revoked = ids.len();
        if ok && revoked > 0 {
            let reason = format!(
                "{} {} re-adjusted as of {}: replaced by request {id}, which answered the whole series (one basis)",
                series.bar_size,
                series.what_to_show,
                calendar::trading_date(self.now())
            );
            self.lake.revoke(symbol, ids, &reason).await?;
        }
        self.say(format!(
            "{symbol:<8} equity_bars  {} {}: 1 request ending now for {} sessions ({} missing), {} rows, {} failed, {} entries replaced ({:.1?})",
            series.bar_size,
            series.what_to_show,
            calendar::trading_days(window.start, window.end).len(),
            missing.len(),
            f.stats.rows,
            f.stats.failed,
            if ok { revoked } else { 0 },
            t0.elapsed()
        ));
        Ok(f.stats)
    }
}
