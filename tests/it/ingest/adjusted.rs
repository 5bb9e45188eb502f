//! `ADJUSTED_LAST` through ingest: one request ending now, the whole series replaced when a newer
//! session is due (old entries revoked), so the stored series is the simulator's answer of the
//! day; intraday `ADJUSTED_LAST` is refused before anything is written.
//!
//! The simulator's default universe pays MSFT's quarterly dividend with ex-date Thursday
//! 2026-11-19, and serves `ADJUSTED_LAST` back-adjusted as of its clock.

use super::*;
use chrono::{DateTime, NaiveDate, Utc};
use twslake::datasets::{equity_bars, Dataset};
use twslake::domain::{BarSize, SecType, Series, Symbol, WhatToShow};
use twslake::lake::layout::Partition;
use twslake::lake::manifest::{Outcome, SeriesKey};
use twslake::source::{HistRequest, IbDuration, Instrument, MarketData};

use crate::support::{twslake, Fixture};

/// Wednesday 2026-11-18 after the close: the day before MSFT's ex-date.
const BEFORE: &str = "2026-11-18T21:30:00Z";
/// Friday 2026-11-20 after the close: two sessions after it.
const AFTER: &str = "2026-11-20T21:30:00Z";
const SESSIONS: u32 = 10;

const ADJ: Series = Series { bar_size: BarSize::Day1, what_to_show: WhatToShow::AdjustedLast };

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn msft() -> Symbol {
    Symbol::new("MSFT").unwrap()
}

fn config() -> IngestConfig {
    IngestConfig {
        equity: vec![
            parse_series("1 day/TRADES/10", SESSIONS).unwrap(),
            parse_series("1 day/ADJUSTED_LAST/10", SESSIONS).unwrap(),
        ],
        options: OptionSelection { max_contracts: 0, ..Default::default() },
        pacing_scale: SCALE,
        ..Default::default()
    }
}

/// The stored `ADJUSTED_LAST` bars of MSFT: (date, close, volume, ingested_at).
async fn stored(lake: &Lake, days: &[NaiveDate]) -> Vec<(NaiveDate, f64, Option<f64>, DateTime<Utc>)> {
    stored_of(lake, &msft(), days).await
}

/// The stored `ADJUSTED_LAST` bars of `symbol`.
async fn stored_of(
    lake: &Lake,
    symbol: &Symbol,
    days: &[NaiveDate],
) -> Vec<(NaiveDate, f64, Option<f64>, DateTime<Utc>)> {
    let mut parts = std::collections::BTreeSet::new();
    for d in days {
        parts.insert(Partition::for_date(Dataset::EquityBars, symbol, Some(ADJ), *d).unwrap());
    }
    let mut out = Vec::new();
    for p in parts {
        if let Some(data) = lake.read_partition(&p).await.unwrap() {
            for b in equity_bars::from_batch(&data.batch) {
                if b.series == ADJ && days.contains(&b.date) {
                    out.push((b.date, b.close, b.volume, b.ingested_at));
                }
            }
        }
    }
    out.sort_by_key(|r| r.0);
    out
}

/// What the simulator answers now for MSFT's `ADJUSTED_LAST` over `days`.
async fn fresh<S: MarketData>(ingest: &Ingest<S>, days: &[NaiveDate]) -> Vec<(NaiveDate, f64)> {
    fresh_of(ingest, &msft(), days).await
}

/// What the simulator answers now for `symbol`'s `ADJUSTED_LAST` over `days`.
async fn fresh_of<S: MarketData>(ingest: &Ingest<S>, symbol: &Symbol, days: &[NaiveDate]) -> Vec<(NaiveDate, f64)> {
    let stock = ingest.stock_contract(symbol).await.unwrap().unwrap();
    let req = HistRequest {
        instrument: Instrument { con_id: stock.con_id, symbol: symbol.clone(), sec_type: SecType::Stock },
        series: ADJ,
        duration: IbDuration::Days(days.len() as u32 + 5),
        end: ingest.now(),
        use_rth: true,
    };
    let bars = ingest.source.historical_bars(&req).await.unwrap();
    bars.into_iter().filter(|b| days.contains(&b.date)).map(|b| (b.date, b.close)).collect()
}

fn closes(rows: &[(NaiveDate, f64, Option<f64>, DateTime<Utc>)]) -> Vec<(NaiveDate, f64)> {
    rows.iter().map(|r| (r.0, r.1)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjusted_last_is_one_answer_ending_now_and_replaced_whole_across_a_dividend() {
    let clock = Arc::new(ManualClock::new(at(BEFORE)));
    let sim = Sim::builder()
        .listen("127.0.0.1:0")
        .seed(7)
        .symbols(["MSFT"])
        .pacing_scale(SCALE)
        .clock(clock.clone())
        .start()
        .await
        .unwrap();
    let f = Fixture::local();
    let lake = f.lake();
    let ing = ingest(&sim, &lake, config()).await;
    let setup = ing.setup(&[msft()]).await;
    assert!(setup.complete(), "{setup:#?}");

    let last = twslake::calendar::trading_date(at(BEFORE));
    let first = twslake::jobs::equity::sessions_back(last, SESSIONS);
    let days = twslake::calendar::trading_days(first, last);
    let before = stored(&lake, &days).await;
    assert_eq!(before.len(), days.len(), "every session stored");
    // Sent as IB requires: no end date, one request.
    let adj: Vec<_> = historical(&sim)
        .into_iter()
        .filter(|r| r.what_to_show.as_deref() == Some(WhatToShow::AdjustedLast.ib()))
        .collect();
    assert!(adj.iter().all(|r| r.end.as_deref().unwrap_or("").is_empty()), "{adj:?}");
    assert_eq!(adj.len(), 1, "{adj:?}");
    assert!(matches!(adj[0].outcome, twslake::sim::Outcome::Ok { .. }), "{adj:?}");

    assert_eq!(closes(&before), fresh(&ing, &days).await, "the stored series is the answer of its day");
    assert!(before.iter().all(|r| r.2.is_some_and(|v| v > 0.0)), "ADJUSTED_LAST bars carry their volume");
    // Across the ex-date: the update replaces the whole series on the new basis.
    clock.set(at(AFTER));
    let old_ids: Vec<String> = lake
        .manifest(&msft())
        .await
        .unwrap()
        .entries
        .iter()
        .filter(|e| e.request.series == Some(ADJ) && matches!(e.outcome, Outcome::Ok { .. }))
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(old_ids.len(), 1);
    let ing = ingest(&sim, &lake, config()).await;
    let update = ing.update(&[msft()]).await;
    assert!(update.complete(), "{update:#?}");
    let last = twslake::calendar::trading_date(at(AFTER));
    let first = twslake::jobs::equity::sessions_back(last, SESSIONS);
    let all = twslake::calendar::trading_days(first.min(days[0]), last);
    let after = stored(&lake, &all).await;
    assert_eq!(after.len(), all.len(), "the held and the new sessions");
    assert_eq!(closes(&after), fresh(&ing, &all).await, "the stored series is the answer of the update's day");
    let replaced_at = after[0].3;
    assert!(after.iter().all(|r| r.3 == replaced_at && r.3 > before[0].3), "one answer, newer than the setup's");
    // The sessions before the ex-date moved down by the dividend's factor, all alike.
    let ex = NaiveDate::from_ymd_opt(2026, 11, 19).unwrap();
    let ratios: Vec<f64> =
        before.iter().filter(|r| r.0 < ex).map(|b| after.iter().find(|a| a.0 == b.0).unwrap().1 / b.1).collect();
    assert!(ratios.iter().all(|r| *r < 0.9999 && *r > 0.98), "{ratios:?}");
    let spread = ratios.iter().fold(0f64, |m, r| m.max((r / ratios[0] - 1.0).abs()));
    assert!(spread < 2e-4, "one factor: {ratios:?}");

    // The manifest shows the revocation, with its reason; the new entry covers the series.
    let m = lake.manifest(&msft()).await.unwrap();
    let revocation = m
        .entries
        .iter()
        .find_map(|e| match &e.outcome {
            Outcome::Revoked { ids, reason } => Some((ids.clone(), reason.clone())),
            _ => None,
        })
        .expect("a revocation");
    assert_eq!(revocation.0, old_ids);
    assert!(revocation.1.contains("ADJUSTED_LAST") && revocation.1.contains("replaced"), "{}", revocation.1);
    let key = SeriesKey::bars(Dataset::EquityBars, None, ADJ);
    assert_eq!(m.covered(&key).last().map(|w| (w.start <= first, w.end)), Some((true, last)));
    assert!(lake.validate().await.unwrap().ok());

    // Nothing due: nothing asked, nothing revoked.
    let n = historical(&sim).len();
    let again = ingest(&sim, &lake, config()).await.update(&[msft()]).await;
    assert!(again.complete(), "{again:#?}");
    assert_eq!(historical(&sim).len(), n, "no request when no session is due");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_split_found_on_trades_the_adjusted_series_is_fetched_again_ending_now() {
    // AAPL splits 4:1 with ex-date Monday 2026-06-15; set up the Friday before, updated Wednesday.
    let clock = Arc::new(ManualClock::new(at("2026-06-12T21:30:00Z")));
    let sim = Sim::builder()
        .listen("127.0.0.1:0")
        .seed(7)
        .symbols(["AAPL"])
        .pacing_scale(SCALE)
        .clock(clock.clone())
        .start()
        .await
        .unwrap();
    let f = Fixture::local();
    let lake = f.lake();
    let aapl = Symbol::new("AAPL").unwrap();
    let setup = ingest(&sim, &lake, config()).await.setup(std::slice::from_ref(&aapl)).await;
    assert!(setup.complete(), "{setup:#?}");
    clock.set(at("2026-06-17T21:30:00Z"));
    let ing = ingest(&sim, &lake, config()).await;
    let update = ing.update(std::slice::from_ref(&aapl)).await;
    assert!(update.complete(), "{update:#?}");
    assert_eq!(update.corporate_actions, 1, "{update:#?}");
    let last = twslake::calendar::trading_date(at("2026-06-17T21:30:00Z"));
    let days = twslake::calendar::trading_days(twslake::jobs::equity::sessions_back(last, SESSIONS), last);
    let after = stored_of(&lake, &aapl, &days).await;
    assert_eq!(after.len(), days.len());
    // Every ADJUSTED_LAST request went without an end (none was planned with one by the healing).
    let adj: Vec<_> = historical(&sim)
        .into_iter()
        .filter(|r| r.what_to_show.as_deref() == Some(WhatToShow::AdjustedLast.ib()))
        .collect();
    assert!(adj.iter().all(|r| r.end.as_deref().unwrap_or("").is_empty()), "{adj:?}");
    assert!(adj.iter().all(|r| matches!(r.outcome, twslake::sim::Outcome::Ok { .. })), "{adj:?}");
    assert_eq!(adj.len(), 2, "one at setup, one at the update: {adj:?}");
    assert_eq!(closes(&after), fresh_of(&ing, &aapl, &days).await, "on the split-adjusted basis of today");
    assert!(lake.validate().await.unwrap().ok());
}

#[test]
fn intraday_adjusted_last_is_refused_naming_the_flag_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    let args = ["setup", "SPY", "--lake", lake, "--gateway", "127.0.0.1:1", "--equity", "1 min/ADJUSTED_LAST/5"];
    let (code, _, err) = twslake(&args, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--equity") && err.contains("1 day/ADJUSTED_LAST"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!std::path::Path::new(lake).exists(), "refused before anything was created");
}
