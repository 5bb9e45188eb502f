//! `twslake gaps SYMBOL --dataset option_bars`: which option series to answer for, and the
//! missing sessions of every contract of the underlying's selection.
//!
//! **The series**, unless `--bar-size`/`--what-to-show` name it: the option series the lake
//! holds for the symbol (from one listing of its partitions), the finest MIDPOINT one as
//! `surface` reads, else the finest; the ones named on the command line narrow the choice.
//!
//! **Without `--con-id`**, per contract of the selection (every contract the manifest has
//! asked bars of in that series): the sessions it was asked for (the union of its requests'
//! windows, whatever the answer — the sessions it was selected and listed for), clipped to
//! `--from`/`--to`. A session of those is missing when no final answer covers it (never asked
//! successfully, failed, not yet final), or when an answer with rows covers it but the lake has no
//! partition of the series for that date any more (a deleted or quarantined file). A contract is
//! not expected on sessions it was never asked for, so a contract listed last week does not show
//! a year missing.

use crate::datasets::Dataset;
use crate::domain::{BarSize, DateWindow, MissingWindow, Series, Symbol, WhatToShow};
use crate::lake::manifest::Outcome;
use crate::lake::Lake;
use crate::query::series::{describe_all, HeldSeries, Holdings};
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet};

/// The option series `gaps` answers for: the held ones narrowed by what the command line named,
/// then the finest MIDPOINT, else the finest.
pub(super) fn choose(
    symbol: &Symbol,
    held: &[HeldSeries],
    bar_size: Option<BarSize>,
    what: Option<WhatToShow>,
) -> anyhow::Result<Series> {
    if let (Some(bar_size), Some(what_to_show)) = (bar_size, what) {
        return Ok(Series { bar_size, what_to_show });
    }
    let fits = |h: &&HeldSeries| {
        bar_size.is_none_or(|b| h.series.bar_size == b) && what.is_none_or(|w| h.series.what_to_show == w)
    };
    // `held` is finest first.
    let candidates: Vec<&HeldSeries> = held.iter().filter(fits).collect();
    candidates
        .iter()
        .find(|h| h.series.what_to_show == WhatToShow::Midpoint)
        .or(candidates.first())
        .map(|h| h.series)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "gaps {symbol} --dataset option_bars: the lake holds no option series{} for {symbol} (it holds: {}); \
                 name one with --bar-size and --what-to-show, or ingest option bars with `twslake setup {symbol}`",
                if bar_size.is_some() || what.is_some() { " matching --bar-size/--what-to-show" } else { "" },
                describe_all(held)
            )
        })
}

/// One contract's missing sessions.
#[derive(Debug, serde::Serialize)]
pub(super) struct ContractGaps {
    pub con_id: i64,
    pub expiry: Option<NaiveDate>,
    pub strike: Option<f64>,
    pub right: Option<String>,
    /// Trading days it was asked for within the range.
    pub asked_days: usize,
    /// Of those, the missing ones.
    pub missing_trading_days: usize,
    pub windows: Vec<MissingWindow>,
}

/// Per contract of `symbol`'s selection in `series`, the missing sessions in `[from, to]`.
pub(super) async fn per_contract(
    lake: &Lake,
    symbol: &Symbol,
    series: Series,
    held_dates: &BTreeSet<NaiveDate>,
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<Vec<ContractGaps>> {
    #[derive(Default)]
    struct Acc {
        asked: BTreeSet<NaiveDate>,
        covered: BTreeSet<NaiveDate>,
        with_rows: BTreeSet<NaiveDate>,
        expiry: Option<NaiveDate>,
        strike: Option<f64>,
        right: Option<String>,
    }
    let days_of = |w: DateWindow| crate::calendar::trading_days(w.start.max(from), w.end.min(to));
    let m = lake.manifest(symbol).await?;
    let mut by: BTreeMap<i64, Acc> = BTreeMap::new();
    for e in &m.entries {
        let r = &e.request;
        let (Some(con_id), Some(w)) = (r.con_id, r.window) else { continue };
        if r.dataset != Dataset::OptionBars || r.series != Some(series) || w.end < from || w.start > to {
            continue;
        }
        let acc = by.entry(con_id).or_default();
        acc.expiry = acc.expiry.or(r.expiry);
        acc.strike = acc.strike.or(r.strike);
        acc.right = acc.right.take().or_else(|| r.right.map(|x| x.to_string()));
        acc.asked.extend(days_of(w));
        if let Some(c) = e.covered() {
            acc.covered.extend(days_of(c));
            if matches!(e.outcome, Outcome::Ok { rows } if rows > 0) {
                acc.with_rows.extend(days_of(c));
            }
        }
    }
    Ok(by
        .into_iter()
        .map(|(con_id, a)| {
            let missing: Vec<NaiveDate> = a
                .asked
                .iter()
                .copied()
                .filter(|d| !a.covered.contains(d) || (a.with_rows.contains(d) && !held_dates.contains(d)))
                .collect();
            ContractGaps {
                con_id,
                expiry: a.expiry,
                strike: a.strike,
                right: a.right,
                asked_days: a.asked.len(),
                missing_trading_days: missing.len(),
                windows: crate::domain::window::windows_of_days(&missing),
            }
        })
        .collect())
}

/// Held series of `symbol`'s option bars.
pub(super) async fn held(lake: &Lake, symbol: &Symbol) -> anyhow::Result<Vec<HeldSeries>> {
    Ok(Holdings::new(lake).held_series(Dataset::OptionBars, symbol).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_finest_midpoint_is_chosen_and_flags_narrow_it() {
        let s = Symbol::new("SPY").unwrap();
        let h = |b, w| HeldSeries { series: Series { bar_size: b, what_to_show: w }, dates: BTreeSet::new() };
        let held = vec![
            h(BarSize::Min1, WhatToShow::Trades),
            h(BarSize::Min1, WhatToShow::Midpoint),
            h(BarSize::Min5, WhatToShow::Midpoint),
        ];
        assert_eq!(choose(&s, &held, None, None).unwrap().what_to_show, WhatToShow::Midpoint);
        assert_eq!(choose(&s, &held, None, None).unwrap().bar_size, BarSize::Min1);
        assert_eq!(choose(&s, &held, Some(BarSize::Min5), None).unwrap().bar_size, BarSize::Min5);
        assert_eq!(choose(&s, &held, None, Some(WhatToShow::Trades)).unwrap().what_to_show, WhatToShow::Trades);
        let e = choose(&s, &[], None, None).unwrap_err().to_string();
        assert!(e.contains("--bar-size") && e.contains("none"), "{e}");
    }
}
