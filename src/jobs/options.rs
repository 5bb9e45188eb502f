//! `backfill_option_bars`: bars of the options around the money, selected from the latest chain
//! snapshot and the spot, only for missing windows, never for expired contracts, and never for a
//! session whose spot (the underlying's intraday bars of that session) the lake does not hold,
//! and never for a session before the contract was listed ([`super::walk`]).

use super::{missing_days, BarJob, FetchStats, Ingest, OptionTarget};
use crate::calendar;
use crate::datasets::contracts::Contract;
use crate::datasets::option_bars::OptionContract;
use crate::datasets::Dataset;
use crate::domain::window::missing_windows_from;
use crate::domain::window::union;
use crate::domain::SecType;
use crate::domain::{BarSize, Series, Symbol};
use crate::error::Result;
use crate::lake::manifest::{SeriesKey, SymbolManifest};
use crate::monitor::Severity;
use crate::source::plan::plan;
use crate::source::{Instrument, MarketData};
use chrono::NaiveDate;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

/// The trading days of `[from, to]` without a spot for option bars of bar size `option_bar`:
/// days for which `m` holds no final answer (rows, or a final empty answer) of any intraday
/// equity series of bar size ≤ `option_bar`, whatever its what-to-show and whether or not the
/// run's settings list it. Empty for daily and longer option bars (their spot is the daily bar,
/// a prerequisite checked by [`Ingest::option_prerequisites`]).
pub fn spotless_days(m: &SymbolManifest, option_bar: BarSize, from: NaiveDate, to: NaiveDate) -> BTreeSet<NaiveDate> {
    let Some(limit) = option_bar.seconds() else { return BTreeSet::new() };
    let fine_enough = |series: Option<Series>| series.and_then(|s| s.bar_size.seconds()).is_some_and(|s| s <= limit);
    let spans = m
        .series()
        .into_iter()
        .filter(|k| k.dataset == Dataset::EquityBars && k.con_id.is_none() && fine_enough(k.series))
        .flat_map(|k| m.covered(&k))
        .collect();
    let covered = union(spans);
    missing_windows_from(&covered, from, to).iter().flat_map(|w| calendar::trading_days(w.start, w.end)).collect()
}

/// `days` (sorted) cut into runs that no day of `walls` falls between.
pub fn split_at(days: &[NaiveDate], walls: &BTreeSet<NaiveDate>) -> Vec<Vec<NaiveDate>> {
    let mut out: Vec<Vec<NaiveDate>> = Vec::new();
    for &d in days {
        match out.last_mut() {
            // `prev <= d` first: `range` panics on a reversed range.
            Some(run) if run.last().is_some_and(|&prev| prev <= d && walls.range(prev..d).next().is_none()) => {
                run.push(d)
            }
            _ => out.push(vec![d]),
        }
    }
    out
}

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
                .filter(|c| c.sec_type == SecType::Option && c.expiry == Some(expiry))
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
    ///
    /// Sessions are refused one by one too: a missing option session whose spot the lake does
    /// not hold ([`spotless_days`]) is not requested. That is a dependency violation, counted
    /// once per option series, alerted as CRITICAL and returned in
    /// [`FetchStats::refused_days`]; a later run asks for the session once its spot is stored.
    /// [`super::config::with_spot_for_options`] makes the settings ask for that spot, so this
    /// happens only when the spot could not be fetched.
    pub async fn backfill_option_bars(&self, symbol: &Symbol) -> Result<FetchStats> {
        let pre = self.option_prerequisites(symbol).await?;
        let expiries: BTreeSet<NaiveDate> = pre.chain.iter().map(|r| r.expiration).collect();
        let targets = self.select_options(symbol, &expiries, pre.spot.1).await?;
        let last = self.last_final_session();
        let from = super::equity::sessions_back(last, self.cfg.options.sessions);
        let m = self.lake.manifest(symbol).await?;
        let series_list = self.cfg.options.series.clone();
        let spotless: Vec<BTreeSet<NaiveDate>> =
            series_list.iter().map(|s| spotless_days(&m, s.bar_size, from, last)).collect();
        let mut refused: Vec<BTreeSet<NaiveDate>> = vec![BTreeSet::new(); series_list.len()];
        let mut jobs = Vec::new();
        let mut missing_total = 0;
        // Where IB can have no data: before each fresh series' listing (`walk`'s docs).
        let wanted: Vec<(OptionTarget, Series)> = targets
            .iter()
            .flat_map(|t| series_list.iter().map(move |s| (t.clone(), *s)))
            .filter(|(t, s)| {
                let key = SeriesKey::bars(Dataset::OptionBars, Some(t.contract.con_id), *s);
                !missing_days(&m, &key, from, last).is_empty()
            })
            .collect();
        let listed = self.listing_bounds(symbol, &m, wanted, from).await?;
        for t in &targets {
            for (i, &series) in series_list.iter().enumerate() {
                let key = SeriesKey::bars(Dataset::OptionBars, Some(t.contract.con_id), series);
                let since = listed.get(&(t.contract.con_id, series)).copied().unwrap_or(from);
                let (missing, no_spot): (Vec<NaiveDate>, Vec<NaiveDate>) = missing_days(&m, &key, from, last)
                    .into_iter()
                    .filter(|d| *d >= since)
                    .partition(|d| !spotless[i].contains(d));
                refused[i].extend(no_spot);
                if missing.is_empty() {
                    continue;
                }
                missing_total += missing.len();
                let inst = Instrument { con_id: t.contract.con_id, symbol: symbol.clone(), sec_type: SecType::Option };
                // The planner spans gaps (one request is cheaper than two): never across a
                // session refused for want of its spot, or its bars would be stored all the same.
                for days in split_at(&missing, &spotless[i]) {
                    for p in plan(&days, series.bar_size)? {
                        jobs.push(BarJob { instrument: inst.clone(), option: Some(t.clone()), series, plan: p });
                    }
                }
            }
        }
        let mut refused_days = 0;
        for (&series, days) in series_list.iter().zip(&refused) {
            if !days.is_empty() {
                refused_days += days.len() as u64;
                self.refuse_without_spot(symbol, series, days);
            }
        }
        let planned = jobs.len();
        let t0 = std::time::Instant::now();
        let mut total = self.fetch_walk(symbol, jobs).await?;
        total.refused_days = refused_days;
        let refused_note =
            if refused_days > 0 { format!(", {refused_days} sessions refused (no spot)") } else { String::new() };
        self.say(format!(
            "{symbol:<8} option_bars  {} contracts (spot {:.2}): {planned} requests for {missing_total} missing contract-days, {} rows, {} empty, {} failed{refused_note} ({:.1?})",
            targets.len(),
            pre.spot.1,
            total.rows,
            total.empty,
            total.failed,
            t0.elapsed()
        ));
        Ok(total)
    }

    /// Counts and alerts option sessions of one series refused for want of their spot.
    fn refuse_without_spot(&self, symbol: &Symbol, series: Series, days: &BTreeSet<NaiveDate>) {
        self.metrics.dependency_violations.fetch_add(1, Ordering::Relaxed);
        let dates: Vec<String> = days.iter().map(|d| d.to_string()).collect();
        let message = format!(
            "{symbol} {} {} option bars refused without their spot on {}: the lake holds no equity bars of {} or finer for those sessions; they are asked for again once the spot is stored",
            series.bar_size,
            series.what_to_show,
            dates.join(", "),
            series.bar_size,
        );
        self.alert(Severity::Critical, symbol, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DateWindow;
    use crate::domain::WhatToShow;
    use crate::lake::manifest::{Entry, Outcome, Request};

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn entry(bar: BarSize, what: WhatToShow, from: &str, to: &str, outcome: Outcome) -> Entry {
        let spy = Symbol::new("SPY").unwrap();
        let window = DateWindow::new(d(from), d(to)).unwrap();
        let req = Request::equity_bars(&spy, Series { bar_size: bar, what_to_show: what }, window);
        let at = "2026-11-24T22:00:00Z".parse().unwrap();
        Entry::new(req, at, at, outcome)
    }

    #[test]
    fn a_session_has_a_spot_when_bars_as_fine_are_answered() {
        use BarSize::*;
        use WhatToShow::*;
        let ok = || Outcome::Ok { rows: 390 };
        let mut option = entry(Min1, Midpoint, "2026-11-16", "2026-11-24", ok());
        option.request.dataset = Dataset::OptionBars;
        option.request.con_id = Some(7);
        let m = SymbolManifest {
            entries: vec![
                entry(Min1, Trades, "2026-11-23", "2026-11-24", ok()),
                entry(Sec30, Midpoint, "2026-11-19", "2026-11-19", Outcome::Empty),
                entry(Min1, Trades, "2026-11-20", "2026-11-20", Outcome::Error { code: 366, message: "x".into() }),
                entry(Min5, Trades, "2026-11-18", "2026-11-18", ok()),
                entry(Day1, Trades, "2026-11-16", "2026-11-24", ok()),
                option,
            ],
            ..Default::default()
        };
        let (from, to) = (d("2026-11-16"), d("2026-11-24"));
        let days = |v: &[&str]| v.iter().map(|s| d(s)).collect::<BTreeSet<_>>();
        // 1-minute options: the 5-minute and daily bars are too coarse, an error is no answer,
        // another option's bars are no spot; a final empty answer is one.
        assert_eq!(spotless_days(&m, Min1, from, to), days(&["2026-11-16", "2026-11-17", "2026-11-18", "2026-11-20"]));
        assert_eq!(spotless_days(&m, Min5, from, to), days(&["2026-11-16", "2026-11-17", "2026-11-20"]));
        assert_eq!(
            spotless_days(&m, Sec5, from, to),
            days(&["2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20", "2026-11-23", "2026-11-24"])
        );
        assert!(spotless_days(&m, Day1, from, to).is_empty(), "daily option bars: not this rule");
        assert!(spotless_days(&m, Min1, to, from).is_empty(), "an empty range");
        assert_eq!(spotless_days(&SymbolManifest::default(), Min1, to, to), days(&["2026-11-24"]));
    }

    #[test]
    fn requests_are_planned_around_sessions_without_spot() {
        let days = |v: &[&str]| v.iter().map(|s| d(s)).collect::<Vec<_>>();
        let walls: BTreeSet<NaiveDate> = days(&["2026-11-18", "2026-11-23"]).into_iter().collect();
        let missing = days(&["2026-11-16", "2026-11-17", "2026-11-19", "2026-11-20", "2026-11-24"]);
        let runs = split_at(&missing, &walls);
        assert_eq!(
            runs,
            vec![days(&["2026-11-16", "2026-11-17"]), days(&["2026-11-19", "2026-11-20"]), days(&["2026-11-24"])]
        );
        assert_eq!(split_at(&missing, &BTreeSet::new()), vec![missing.clone()], "no wall, one run");
        assert!(split_at(&[], &walls).is_empty());
        let unsorted = days(&["2026-11-20", "2026-11-16"]);
        assert_eq!(split_at(&unsorted, &walls).len(), 2, "unsorted days: no panic, no run backwards");
        // Five-minute bars plan seven sessions a request: one per run, none across a wall.
        let planned: Vec<_> = runs.iter().flat_map(|r| plan(r, BarSize::Min5).unwrap()).collect();
        assert_eq!(planned.len(), 3);
        assert!(planned.iter().all(|p| walls.iter().all(|w| *w < p.window.start || *w > p.window.end)));
    }
}
