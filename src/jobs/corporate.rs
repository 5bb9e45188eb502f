//! Corporate actions: every run notices when IB now answers a stored series on another basis
//! (a split, or `ADJUSTED_LAST` moved by a cash dividend) and heals the lake.
//!
//! **Detection piggy-backs on a request the run sends anyway.** IB answers historical bars
//! adjusted as of the day of the request. Before the daily bars of a symbol are extended, the
//! first request of the newest missing run of sessions is stretched back over up to
//! [`OVERLAP_SESSIONS`] sessions the lake already holds: bars of a day take any span in one
//! request (`source::plan`), so the overlap costs no extra request and no pacing. The fresh bars
//! of the overlap are compared with the stored ones and never written; the new sessions are
//! recorded as usual. A run that appends no daily session asks nothing and checks nothing
//! (nothing new could be mixed with the old basis). Every daily equity series configured is
//! checked this way (each on its own request); intraday series are not compared: they are
//! inferred from the daily series of the same symbol (a split found there revokes them too),
//! because stretching an intraday request by a held session would double its cost (IB serves
//! one session of 1-minute bars per request).
//!
//! **The measure.** For each overlap session with a stored and a fresh close, the ratio stored ÷
//! fresh; a session is *off* when its ratio is further from 1 than cent rounding explains
//! (`2e-4 + 0.01 / close`: two prices rounded to half a cent each, plus slack). No session off:
//! nothing happened. Otherwise the median ratio is the measure; when every session agrees with it
//! (same tolerance) and it lies within [`SPLIT_TOLERANCE`] of a simple fraction (4, 2, 3/2,
//! 1/10 …, [`corporate_actions::simple_fraction`]) it is a `split` of that fraction, else
//! `other` with the measured ratio. Fewer than [`MIN_OVERLAP`] comparable sessions: no verdict.
//!
//! **Healing** ([`Ingest::heal`]). A split revokes (never deletes) every manifest entry with rows
//! of the symbol's equity bars (and of its listed options' bars, below); `other` only those of
//! the series it was measured on. The revoked
//! windows are fetched again at once (the merge keeps the newer `ingested_at`, so the new rows
//! replace the old ones through the normal atomic write), and the row in `corporate_actions`
//! names the revocation entry (whose reason names the action) and the request that found it. A
//! row is on the basis of the day it was fetched: adjusted for every corporate action of its
//! symbol whose `effective_date` is on or before the trading date of its `ingested_at`.
//!
//! After a split the descriptions of the symbol's listed options are asked again first, so
//! `contracts` holds their new terms (the dataset keeps the latest description per `con_id`,
//! which stays the identity), and the bars of the options IB still describes are revoked and
//! fetched again with them (IB's option history is adjusted too: strikes and premiums ÷ the
//! ratio); bars of expired options, which IB no longer serves, stay as fetched, their basis told
//! by the rule above.
//!
//! `ADJUSTED_LAST` is not compared: IB serves it only ending now and refuses a request with an
//! end, so it cannot be stretched back over held sessions; it is stored whole, one answer at a
//! time, instead ([`super::adjusted`]). The `other` verdict is what a dividend would give it.
use super::{missing_days, FetchStats, Ingest};
use crate::calendar;
use crate::datasets::corporate_actions::{self, CorporateAction, OTHER, SPLIT};
use crate::datasets::{equity_bars, Dataset};
use crate::domain::{DateWindow, SecType, Series, Symbol};
use crate::error::Result;
use crate::lake::layout::Partition;
use crate::lake::manifest::{Entry, Outcome, SeriesKey};
use crate::source::plan::plan;
use crate::source::{HistRequest, Instrument, MarketData};
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};

/// Stored sessions a daily request is stretched back over.
pub const OVERLAP_SESSIONS: usize = 5;
/// Fewest comparable sessions for a verdict.
pub const MIN_OVERLAP: usize = 2;
/// How close (relative) a measured ratio must be to a simple fraction to be a split.
pub const SPLIT_TOLERANCE: f64 = 0.005;

/// What comparing stored and fresh closes found.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Same basis.
    Same,
    /// Another basis.
    Action {
        /// Stored ÷ fresh (the split's fraction for a split).
        ratio: f64,
        /// [`SPLIT`] or [`OTHER`].
        kind: &'static str,
        /// The newest session found on the old basis.
        last_old: NaiveDate,
    },
}

/// Compares closes of the same sessions (module docs); `None` without enough sessions.
pub fn compare(stored: &BTreeMap<NaiveDate, f64>, fresh: &BTreeMap<NaiveDate, f64>) -> Option<Verdict> {
    let pairs: Vec<(NaiveDate, f64, f64)> = stored
        .iter()
        .filter_map(|(d, s)| fresh.get(d).map(|f| (*d, *s, *f)))
        .filter(|(_, s, f)| s.is_finite() && f.is_finite() && *s > 0.0 && *f > 0.0)
        .collect();
    if pairs.len() < MIN_OVERLAP {
        return None;
    }
    let tol = |s: f64, f: f64| 2e-4 + 0.01 / s.min(f);
    let off: Vec<&(NaiveDate, f64, f64)> = pairs.iter().filter(|(_, s, f)| (s / f - 1.0).abs() > tol(*s, *f)).collect();
    let Some(last_old) = off.iter().map(|(d, _, _)| *d).max() else { return Some(Verdict::Same) };
    let mut ratios: Vec<f64> = pairs.iter().map(|(_, s, f)| s / f).collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    let consistent = pairs.iter().all(|(_, s, f)| ((s / f) / median - 1.0).abs() <= tol(*s, *f));
    let split = consistent.then(|| corporate_actions::simple_fraction(median, SPLIT_TOLERANCE)).flatten();
    Some(match split {
        Some(fraction) => Verdict::Action { ratio: fraction, kind: SPLIT, last_old },
        // Inconsistent: the oldest session off is adjusted for everything since.
        None if !consistent => Verdict::Action { ratio: off[0].1 / off[0].2, kind: OTHER, last_old },
        None => Verdict::Action { ratio: median, kind: OTHER, last_old },
    })
}

/// The overlap (sorted held sessions, at most [`OVERLAP_SESSIONS`]) and the missing run it
/// precedes: the newest run of consecutive missing sessions with at least [`MIN_OVERLAP`] held
/// sessions right before it.
pub fn overlap_of(covered: &[DateWindow], missing: &[NaiveDate]) -> Option<(Vec<NaiveDate>, Vec<NaiveDate>)> {
    let held = |d: NaiveDate| covered.iter().any(|w| w.start <= d && d <= w.end);
    let mut runs: Vec<Vec<NaiveDate>> = Vec::new();
    for &d in missing {
        match runs.last_mut() {
            Some(run) if run.last().is_some_and(|&p| calendar::next_trading_day(p) == d) => run.push(d),
            _ => runs.push(vec![d]),
        }
    }
    runs.into_iter().rev().find_map(|run| {
        let mut overlap = Vec::new();
        let mut d = calendar::prev_trading_day(run[0]);
        while overlap.len() < OVERLAP_SESSIONS && held(d) {
            overlap.push(d);
            d = calendar::prev_trading_day(d);
        }
        overlap.reverse();
        (overlap.len() >= MIN_OVERLAP).then_some((overlap, run))
    })
}

/// An action as found, before it is recorded.
#[derive(Debug, Clone)]
pub struct Found {
    /// The series compared.
    pub series: Series,
    /// Stored ÷ fresh.
    pub ratio: f64,
    /// [`SPLIT`] or [`OTHER`].
    pub kind: &'static str,
    /// The newest session found on the old basis.
    pub last_old: NaiveDate,
    /// The entry of the request whose answer held the fresh bars.
    pub request_id: String,
    /// The sessions compared.
    pub overlap: Vec<NaiveDate>,
}

/// What the check of one symbol did.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// The piggy-backed requests (their new sessions recorded).
    pub stats: FetchStats,
    /// The action found, as recorded.
    pub action: Option<CorporateAction>,
    /// What healing fetched again of the equity bars.
    pub healed: FetchStats,
    /// What healing fetched again of the option bars.
    pub healed_options: FetchStats,
}

impl<S: MarketData> Ingest<S> {
    /// Checks every daily equity series of `symbol` against the gateway's current basis, on the
    /// request that extends it (module docs); heals at the first action found.
    pub async fn check_corporate_actions(&self, symbol: &Symbol) -> Result<Checked> {
        let mut out = Checked::default();
        let Some(stock) = self.stock_contract(symbol).await? else { return Ok(out) };
        let inst = Instrument { con_id: stock.con_id, symbol: symbol.clone(), sec_type: SecType::Stock };
        let last = self.last_final_session();
        let mut seen = BTreeSet::new();
        for es in self.cfg.equity.clone() {
            let adjusted_last = es.series.what_to_show == crate::domain::WhatToShow::AdjustedLast;
            if es.series.bar_size.is_intraday() || adjusted_last || !seen.insert(es.series) {
                continue;
            }
            let from = self.cfg.from.unwrap_or_else(|| super::equity::sessions_back(last, es.sessions));
            let m = self.lake.manifest(symbol).await?;
            let key = SeriesKey::bars(Dataset::EquityBars, None, es.series);
            let missing = missing_days(&m, &key, from, last);
            let Some((overlap, run)) = overlap_of(&m.covered(&key), &missing) else { continue };
            let found = self.check_series(symbol, &inst, es.series, &overlap, &run, &mut out.stats).await?;
            if let Some((Verdict::Action { ratio, kind, last_old }, request_id)) = found {
                let found = Found { series: es.series, ratio, kind, last_old, request_id, overlap };
                let (action, [healed, healed_options]) = self.heal(symbol, &inst, found).await?;
                out.action = Some(action);
                out.healed = healed;
                out.healed_options = healed_options;
                break;
            }
        }
        Ok(out)
    }

    /// One stretched request: records the run's sessions, compares the overlap. Returns the
    /// action found and the id of the request's entry.
    async fn check_series(
        &self,
        symbol: &Symbol,
        inst: &Instrument,
        series: Series,
        overlap: &[NaiveDate],
        run: &[NaiveDate],
        stats: &mut FetchStats,
    ) -> Result<Option<(Verdict, String)>> {
        let (first, run_first, run_last) = (overlap[0], run[0], run[run.len() - 1]);
        let Some(p) = plan(&calendar::trading_days(first, run_last), series.bar_size)?.into_iter().next() else {
            return Ok(None);
        };
        // Bars of a day take any span in one request; a plan that would not reach the run's last
        // session (never, for daily bars) leaves the rest to the backfill.
        let run_last = run_last.min(p.window.end);
        let req = HistRequest { instrument: inst.clone(), series, duration: p.duration, end: p.end, use_rth: true };
        let mut request = self.request_of(symbol, None, series, &p);
        request.window = Some(DateWindow::new(run_first, run_last)?);
        let answered = self.ask(&req).await;
        let bars = match answered.answer {
            Ok(bars) => bars,
            Err(e) => {
                // No verdict. Remembered like any answer: an error leaves the run missing, and
                // the backfill asks for it as usual.
                tracing::warn!("{symbol} {} {}: overlap check failed: {e}", series.bar_size, series.what_to_show);
                let outcome = super::ask::Answered::<()>::error_outcome(&e);
                // Not counted as failed: the backfill asks for the run right after.
                stats.empty += u64::from(outcome == Outcome::Empty);
                stats.sent += answered.sent;
                let entry = Entry::new(request, answered.requested_at, answered.completed_at, outcome);
                self.lake.record_entry(entry, None).await?;
                return Ok(None);
            }
        };
        let (old, new): (Vec<_>, Vec<_>) = bars.into_iter().partition(|b| b.date < run_first);
        let fresh: BTreeMap<NaiveDate, f64> = old.iter().map(|b| (b.date, b.close)).collect();
        let stored = self.stored_closes(symbol, series, overlap).await?;
        let new: Vec<_> = new.into_iter().filter(|b| b.date <= run_last).collect();
        let base = FetchStats { sent: answered.sent, ..Default::default() };
        let f = self.answered(request, None, series, answered.requested_at, new, base);
        stats.add(&f.stats);
        let entry = Entry::new(f.request, f.requested_at, f.completed_at, f.outcome);
        let id = entry.id.clone();
        for e in self.lake.record_many(symbol, vec![(entry, f.batch)]).await? {
            if let Outcome::Ok { rows } = e.outcome {
                self.metrics.rows(Dataset::EquityBars.name(), rows);
            }
        }
        Ok(match compare(&stored, &fresh) {
            Some(v @ Verdict::Action { .. }) => Some((v, id)),
            _ => None,
        })
    }

    /// The stored closes of `days` of a symbol's equity series.
    async fn stored_closes(
        &self,
        symbol: &Symbol,
        series: Series,
        days: &[NaiveDate],
    ) -> Result<BTreeMap<NaiveDate, f64>> {
        let mut parts = BTreeSet::new();
        for d in days {
            parts.insert(Partition::for_date(Dataset::EquityBars, symbol, Some(series), *d)?);
        }
        let mut out = BTreeMap::new();
        for p in parts {
            let Some(data) = self.lake.read_partition(&p).await? else { continue };
            for b in equity_bars::from_batch(&data.batch) {
                if b.series == series && days.contains(&b.date) {
                    out.insert(b.date, b.close);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn closes(v: &[(&str, f64)]) -> BTreeMap<NaiveDate, f64> {
        v.iter().map(|(s, c)| (d(s), *c)).collect()
    }

    const DAYS: [&str; 5] = ["2026-06-08", "2026-06-09", "2026-06-10", "2026-06-11", "2026-06-12"];

    fn series(prices: [f64; 5], scale: f64) -> BTreeMap<NaiveDate, f64> {
        // Rounded to the cent, as IB answers.
        DAYS.iter().zip(prices).map(|(s, p)| (d(s), (p / scale * 100.0).round() / 100.0)).collect()
    }

    const AAPL: [f64; 5] = [801.37, 797.12, 805.55, 799.99, 802.03];

    #[test]
    fn the_same_basis_is_no_action_despite_cent_rounding() {
        let stored = series(AAPL, 1.0);
        let fresh: BTreeMap<_, _> = stored.iter().map(|(k, v)| (*k, v + 0.01)).collect();
        assert_eq!(compare(&stored, &fresh), Some(Verdict::Same));
    }

    #[test]
    fn a_four_for_one_split_is_found_with_its_fraction() {
        let v = compare(&series(AAPL, 1.0), &series(AAPL, 4.0)).unwrap();
        assert_eq!(v, Verdict::Action { ratio: 4.0, kind: SPLIT, last_old: d("2026-06-12") });
        let v = compare(&series(AAPL, 1.0), &series(AAPL, 0.1)).unwrap();
        assert!(matches!(v, Verdict::Action { ratio, kind: SPLIT, .. } if (ratio - 0.1).abs() < 1e-12));
    }

    #[test]
    fn a_dividend_adjustment_is_other_with_its_measured_ratio() {
        // ADJUSTED_LAST after a 0.6 % dividend: history scaled by 0.994.
        let v = compare(&series(AAPL, 1.0), &series(AAPL, 1.0 / 0.994)).unwrap();
        match v {
            Verdict::Action { ratio, kind, .. } => {
                assert_eq!(kind, OTHER);
                assert!((ratio - 1.0 / 0.994).abs() < 2e-4, "{ratio}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn too_little_overlap_gives_no_verdict() {
        assert_eq!(compare(&closes(&[("2026-06-12", 800.0)]), &closes(&[("2026-06-12", 200.0)])), None);
        assert_eq!(compare(&series(AAPL, 1.0), &BTreeMap::new()), None);
    }

    #[test]
    fn the_overlap_is_the_held_sessions_before_the_newest_missing_run() {
        let covered = vec![DateWindow::new(d("2026-05-01"), d("2026-06-12")).unwrap()];
        let missing = calendar::trading_days(d("2026-06-15"), d("2026-06-17"));
        let (overlap, run) = overlap_of(&covered, &missing).unwrap();
        assert_eq!(overlap, DAYS.iter().map(|s| d(s)).collect::<Vec<_>>());
        assert_eq!(run, missing);
        // Nothing held before the run: nothing to compare.
        assert_eq!(overlap_of(&[], &missing), None);
        // A fresh lake's run starting at the range's first session either.
        let one = vec![DateWindow::new(d("2026-06-12"), d("2026-06-12")).unwrap()];
        assert_eq!(overlap_of(&one, &missing), None);
    }
}
