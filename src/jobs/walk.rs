//! No request where IB can have no data: an option's history stops at its listing.
//!
//! IB answers "HMDS query returned no data" for every session before a contract was listed, and
//! each such answer spends a paced request (at IB's 60 per 10 minutes, ten seconds of a backfill
//! for nothing). How the listing is known, by cost:
//! 1. **The head timestamp** ([`Ingest::listing_bounds`]), asked once per option series that has
//!    no manifest entry yet (a fresh range): one small request that IB answers at once and that
//!    twslake, like IB's documented rules, does not count in the historical-data budget. The
//!    sessions before it are recorded as a final empty answer, so neither a later `update` nor
//!    `gaps`/coverage sees them as missing. Chosen first because it costs no paced request at
//!    all, where the walk below spends one per contract listed inside the window (for 1-minute
//!    bars, one request per session, that alone would be 5–20 % over the lower bound).
//! 2. **Newest first, stopping at the first "no data"** ([`Ingest::fetch_walk`]): each option
//!    series is asked from its newest missing window back; IB's final "no data" for a quote
//!    series (MIDPOINT, BID, ASK, BID_ASK: an option quoted at all is quoted every session it is
//!    listed) ends the walk, and the older windows are recorded as final empty answers without
//!    being asked. This catches what the head timestamp did not (it failed, or the series was
//!    not fresh). TRADES never stops a walk: an option listed but not traded that day answers
//!    "no data" too, and older sessions may hold trades.
//!
//! Not used: the history of chain snapshots (a contract absent from an earlier snapshot was
//! listed after it). On a cold start there is no earlier snapshot, and a daily `update` asks
//! only the newest session of a contract it already holds; the head timestamp covers both.

use super::ask::HeadQuery;
use super::{what_of, BarJob, FetchStats, Fetched, Ingest, OptionTarget};
use crate::calendar;
use crate::datasets::Dataset;
use crate::domain::{DateWindow, SecType, Series, Symbol, WhatToShow};
use crate::error::Result;
use crate::lake::manifest::{Entry, Outcome, SeriesKey, SymbolManifest};
use crate::source::{Instrument, MarketData};
use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

impl<S: MarketData> Ingest<S> {
    /// The listing session of each option series in `wanted` (contract, series, first missing
    /// day) that has no manifest entry yet, from its head timestamp; for each whose listing is
    /// after its first missing day, the sessions from `from` to the day before are recorded as a
    /// final empty answer. Series whose head timestamp failed are left out (the walk stops them).
    pub async fn listing_bounds(
        &self,
        symbol: &Symbol,
        m: &SymbolManifest,
        wanted: Vec<(OptionTarget, Series)>,
        from: NaiveDate,
    ) -> Result<BTreeMap<(i64, Series), NaiveDate>> {
        use futures::{stream, StreamExt};
        let fresh: Vec<(OptionTarget, Series)> = wanted
            .into_iter()
            .filter(|(t, s)| {
                let key = SeriesKey::bars(Dataset::OptionBars, Some(t.contract.con_id), *s);
                !m.entries.iter().any(|e| e.request.series_key() == key)
            })
            .collect();
        let asked: Vec<_> = stream::iter(fresh)
            .map(|(t, series)| async move {
                let instrument =
                    Instrument { con_id: t.contract.con_id, symbol: symbol.clone(), sec_type: SecType::Option };
                let answered = self.ask(&HeadQuery { instrument, series }).await;
                (t, series, answered)
            })
            .buffer_unordered(self.cfg.concurrency.max(1))
            .collect()
            .await;
        let mut bounds = BTreeMap::new();
        let mut settled = Vec::new();
        for (t, series, answered) in asked {
            let Ok(head) = answered.answer else { continue };
            let listed = calendar::trading_date(head);
            bounds.insert((t.contract.con_id, series), listed);
            let before = calendar::prev_trading_day(listed);
            if listed > from && before >= from {
                let mut request = self.option_request(symbol, &t, series, DateWindow::new(from, before)?);
                request.duration = None;
                request.end_date_time = None;
                let entry = Entry::new(request, answered.requested_at, answered.completed_at, Outcome::Empty);
                settled.push((entry, None));
            }
        }
        if !settled.is_empty() {
            self.say(format!(
                "{symbol:<8} option_bars  {} contracts listed inside the window: their earlier sessions recorded as empty, not asked",
                settled.len()
            ));
            self.lake.record_many(symbol, settled).await?;
        }
        Ok(bounds)
    }

    /// Fetches option bar jobs contract by contract, each series newest window first, stopping
    /// a quote series at IB's first "no data" (module docs); records as [`Ingest::fetch_bars`].
    pub async fn fetch_walk(&self, symbol: &Symbol, jobs: Vec<BarJob>) -> Result<FetchStats> {
        use futures::{stream, StreamExt};
        let (planned, what) = (jobs.len(), what_of(&jobs));
        let mut groups: BTreeMap<(i64, Series), Vec<BarJob>> = BTreeMap::new();
        for j in jobs {
            groups.entry((j.instrument.con_id, j.series)).or_default().push(j);
        }
        let answers = stream::iter(groups.into_values())
            .map(|mut group| async move {
                group.sort_by_key(|j| std::cmp::Reverse(j.plan.window.end));
                self.walk(symbol, group).await
            })
            .buffer_unordered(self.cfg.concurrency.max(1))
            .flat_map(stream::iter);
        self.record_answers(symbol, what, planned, answers, None).await
    }

    /// One series of one contract, newest first: asked until the first "no data" of a quote
    /// series, the rest recorded as empty without a request.
    async fn walk(&self, symbol: &Symbol, group: Vec<BarJob>) -> Vec<Result<Fetched>> {
        let mut out = Vec::with_capacity(group.len());
        let mut unlisted = false;
        for job in group {
            if let (true, Some(target)) = (unlisted, &job.option) {
                out.push(Ok(self.not_listed(symbol, target, &job)));
                continue;
            }
            let stops = job.option.is_some() && job.series.what_to_show != WhatToShow::Trades;
            match self.fetch_one(symbol, job).await {
                Ok(f) => {
                    unlisted = f.no_data && stops;
                    out.push(Ok(f));
                }
                Err(e) => {
                    out.push(Err(e));
                    break;
                }
            }
        }
        out
    }

    /// The final empty answer of a window older than the contract's listing: not asked.
    fn not_listed(&self, symbol: &Symbol, target: &OptionTarget, job: &BarJob) -> Fetched {
        self.metrics.requests_skipped.fetch_add(1, Ordering::Relaxed);
        let mut request = self.option_request(symbol, target, job.series, job.plan.window);
        request.duration = None;
        request.end_date_time = None;
        let now = self.now();
        let stats = FetchStats { empty: 1, ..Default::default() };
        Fetched {
            no_data: false,
            request,
            requested_at: now,
            completed_at: now,
            outcome: Outcome::Empty,
            batch: None,
            stats,
        }
    }

    /// The manifest request of an option series' window.
    fn option_request(
        &self,
        symbol: &Symbol,
        t: &OptionTarget,
        series: Series,
        window: DateWindow,
    ) -> crate::lake::manifest::Request {
        let end = calendar::session(window.end).map(|s| s.close).unwrap_or_else(|| self.now());
        let sessions = calendar::trading_days(window.start, window.end).len() as u32;
        let duration = crate::source::IbDuration::Days(sessions.max(1));
        let plan = crate::source::plan::Planned { window, duration, end };
        self.request_of(symbol, Some(t), series, &plan)
    }
}
