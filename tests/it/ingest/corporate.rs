//! Corporate actions: a lake set up before a 4:1 split and updated after it ends on one basis,
//! with the action recorded, alerted and its old entries revoked; a plain update costs nothing.
//!
//! The simulator's default universe splits AAPL 4:1 on 2026-06-15 and serves every history
//! (stock and option bars, strikes) adjusted as of its clock, as IB does.

use super::*;
use chrono::{DateTime, NaiveDate, Utc};
use std::sync::Mutex;
use twslake::datasets::{corporate_actions, equity_bars, option_bars, Dataset};
use twslake::domain::{BarSize, SecType, Series, Symbol, WhatToShow};
use twslake::lake::layout::Partition;
use twslake::lake::manifest::Outcome;
use twslake::monitor::{Alert, AlertSink};
use twslake::source::{HistRequest, IbDuration, Instrument, MarketData};

use crate::support::Fixture;

/// AAPL's split in the simulator's default universe: 4 for 1, ex-date Monday 2026-06-15.
const EX_DATE: &str = "2026-06-15";
/// Saturday 2026-06-13: the lake is set up before the split (its last session Friday 06-12).
const BEFORE: &str = "2026-06-13T15:00:00Z";
/// Wednesday 2026-06-17 after the close: three sessions on the new basis.
const AFTER: &str = "2026-06-17T21:30:00Z";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn aapl() -> Symbol {
    Symbol::new("AAPL").unwrap()
}

const DAILY: Series = Series { bar_size: BarSize::Day1, what_to_show: WhatToShow::Trades };
const MINUTE: Series = Series { bar_size: BarSize::Min1, what_to_show: WhatToShow::Trades };

#[derive(Default)]
struct Alerts(Mutex<Vec<Alert>>);

impl AlertSink for Alerts {
    fn send(&self, alert: &Alert) {
        self.0.lock().unwrap().push(alert.clone());
    }
}

/// 20 daily sessions and 2 of 1-minute bars, a few options near the money.
fn config() -> IngestConfig {
    IngestConfig {
        equity: vec![parse_series("1 day/TRADES/20", 20).unwrap(), parse_series("1 min/TRADES/2", 2).unwrap()],
        options: OptionSelection {
            expiry_days: 20,
            strike_band: 0.03,
            max_contracts: 4,
            sessions: 2,
            ..Default::default()
        },
        pacing_scale: SCALE,
        ..Default::default()
    }
}

async fn sim_with(clock: Arc<ManualClock>) -> SimHandle {
    Sim::builder()
        .listen("127.0.0.1:0")
        .seed(7)
        .symbols(["AAPL"])
        .pacing_scale(SCALE)
        .clock(clock)
        .start()
        .await
        .unwrap()
}

/// The stored bars of a series of AAPL over `days`, by date (daily) or bar start (intraday).
async fn stored(lake: &Lake, series: Series, days: &[NaiveDate]) -> Vec<equity_bars::Bar> {
    let mut parts = std::collections::BTreeSet::new();
    for d in days {
        parts.insert(Partition::for_date(Dataset::EquityBars, &aapl(), Some(series), *d).unwrap());
    }
    let mut out = Vec::new();
    for p in parts {
        if let Some(data) = lake.read_partition(&p).await.unwrap() {
            out.extend(equity_bars::from_batch(&data.batch).into_iter().filter(|b| days.contains(&b.date)));
        }
    }
    out.sort_by_key(|b| b.ts);
    out
}

/// What the simulator answers now for `series` of AAPL over the sessions ending with `last`.
async fn fresh<S: MarketData>(
    ingest: &Ingest<S>,
    series: Series,
    sessions: u32,
    last: NaiveDate,
) -> Vec<(DateTime<Utc>, f64)> {
    let stock = ingest.stock_contract(&aapl()).await.unwrap().unwrap();
    let req = HistRequest {
        instrument: Instrument { con_id: stock.con_id, symbol: aapl(), sec_type: SecType::Stock },
        series,
        duration: IbDuration::Days(sessions),
        end: twslake::calendar::session(last).unwrap().close,
        use_rth: true,
    };
    ingest.source.historical_bars(&req).await.unwrap().into_iter().map(|b| (b.ts, b.close)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_across_the_clock_is_found_recorded_alerted_and_healed() {
    let clock = Arc::new(ManualClock::new(at(BEFORE)));
    let sim = sim_with(clock.clone()).await;
    let f = Fixture::local();
    let lake = f.lake();
    let setup = ingest(&sim, &lake, config()).await.setup(&[aapl()]).await;
    assert!(setup.complete(), "{setup:#?}");
    assert_eq!(setup.corporate_actions, 0);
    let option_entries_before = lake
        .manifest(&aapl())
        .await
        .unwrap()
        .entries
        .iter()
        .filter(|e| e.request.dataset == Dataset::OptionBars && matches!(e.outcome, Outcome::Ok { .. }))
        .count();
    assert!(option_entries_before > 0, "setup stored option bars");
    let strikes_before: std::collections::BTreeMap<i64, f64> = ingest(&sim, &lake, config())
        .await
        .stored_contracts(&aapl())
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.sec_type == SecType::Option)
        .filter_map(|c| Some((c.con_id, c.strike?)))
        .collect();

    clock.set(at(AFTER));
    let mut run = ingest(&sim, &lake, config()).await;
    let alerts = Arc::new(Alerts::default());
    run.alerts.push(alerts.clone());
    let report = run.update(&[aapl()]).await;
    assert!(report.complete(), "{report:#?}");
    assert_eq!(report.corporate_actions, 1, "{report:#?}");
    let said = report.symbols[0].corporate_action.as_ref().expect("the report names the action");
    assert!(said.refetched.ok > 0 && said.refetched.failed == 0, "{said:#?}");

    // One recorded corporate action: 4 for 1, effective on the ex-date.
    let parts = lake.partitions(Dataset::CorporateActions, Some(&aapl())).await.unwrap();
    let mut actions = Vec::new();
    for p in parts {
        actions.extend(corporate_actions::from_batch(&lake.read_partition(&p).await.unwrap().unwrap().batch));
    }
    assert_eq!(actions.len(), 1, "{actions:#?}");
    let a = &actions[0];
    assert_eq!((a.ratio, a.kind.as_str(), a.effective_date), (4.0, "split", day(EX_DATE)), "{a:#?}");
    assert_eq!((a.how.as_str(), a.series.as_str()), ("overlap", "1 day TRADES"));
    assert!(a.overlap_to < day(EX_DATE) && a.overlap_from < a.overlap_to, "{a:#?}");

    // An alert, naming the action.
    let said = alerts.0.lock().unwrap().clone();
    assert!(said.iter().any(|x| x.symbol == "AAPL" && x.message.contains("corporate action")), "{said:#?}");

    // Revoked, not deleted: the revocation names the action and lists the old entries.
    let m = lake.manifest(&aapl()).await.unwrap();
    let revocation = m.entries.iter().find(|e| Some(&e.id) == a.revocation_id.as_ref()).expect("revocation entry");
    let Outcome::Revoked { ids, reason } = &revocation.outcome else { panic!("{revocation:#?}") };
    assert_eq!(ids.len() as i64, a.revoked);
    assert!(a.revoked >= 2, "daily and minute bars revoked: {a:#?}");
    assert!(reason.contains("corporate action") && reason.contains(&a.request_id), "{reason}");
    assert!(m.entries.iter().all(|e| !ids.contains(&e.id)), "revoked entries no longer count");
    // The re-fetch is recorded: its entries name the revocation.
    let rev_id = a.revocation_id.as_deref().unwrap();
    let refetched = m.entries.iter().filter(|e| e.reason.as_deref().is_some_and(|r| r.contains(rev_id))).count();
    assert!(refetched >= 2, "daily and minute re-fetches carry the reason: {refetched}");

    // One consistent series: every stored bar is what the simulator answers now (its basis as of
    // the update), so the split date holds only the day's true move.
    let days = twslake::calendar::trading_days(day("2026-05-18"), day("2026-06-17"));
    let daily = stored(&lake, DAILY, &days).await;
    let now: Vec<_> = fresh(&run, DAILY, days.len() as u32, day("2026-06-17")).await;
    assert_eq!(daily.iter().map(|b| (b.ts, b.close)).collect::<Vec<_>>(), now);
    let close = |d: &str| daily.iter().find(|b| b.date == day(d)).unwrap().close;
    let mv = (close(EX_DATE) / close("2026-06-12")).ln();
    assert!(mv.abs() < 0.15, "no 4:1 jump at the split date: ln move {mv}");
    assert!(daily.iter().all(|b| b.ingested_at >= a.detected_at), "every daily row fetched on the new basis");
    let minute = stored(&lake, MINUTE, &[day("2026-06-11"), day("2026-06-12")]).await;
    assert!(!minute.is_empty());
    let now_min = fresh(&run, MINUTE, 1, day("2026-06-12")).await;
    let stored_12: Vec<_> = minute.iter().filter(|b| b.date == day("2026-06-12")).map(|b| (b.ts, b.close)).collect();
    assert_eq!(stored_12, now_min, "the minute bars before the split are on the new basis too");

    // Options keep their con_id; their new terms are stored, and their bars re-fetched with them.
    let after = run.stored_contracts(&aapl()).await.unwrap();
    let mut adjusted = 0;
    for c in after.iter().filter(|c| c.sec_type == SecType::Option && c.fetched_at >= a.detected_at) {
        if let (Some(old), Some(new)) = (strikes_before.get(&c.con_id), c.strike) {
            assert!((old / new - 4.0).abs() < 1e-9, "con_id {}: strike {old} then {new}", c.con_id);
            adjusted += 1;
        }
    }
    assert!(adjusted > 0, "option contracts described again after the split");
    let mut option_rows = Vec::new();
    for p in lake.partitions(Dataset::OptionBars, Some(&aapl())).await.unwrap() {
        option_rows.extend(option_bars::from_batch(&lake.read_partition(&p).await.unwrap().unwrap().batch));
    }
    let new_terms: std::collections::BTreeMap<i64, f64> =
        after.iter().filter(|c| c.fetched_at >= a.detected_at).filter_map(|c| Some((c.con_id, c.strike?))).collect();
    let refetched: Vec<_> = option_rows.iter().filter(|r| new_terms.contains_key(&r.contract.con_id)).collect();
    assert!(refetched.iter().any(|r| r.bar.date < day(EX_DATE)), "sessions before the split fetched again");
    for r in refetched {
        assert_eq!(Some(&r.contract.strike), new_terms.get(&r.contract.con_id), "{r:?}");
        assert!(r.bar.ingested_at >= a.detected_at, "{r:?}");
    }

    assert!(lake.validate().await.unwrap().ok());
    duckdb_reads_what_polars_reads(&lake, &f).await;

    // The healed series is on IB's basis: a later update finds nothing more.
    clock.set(at("2026-06-22T21:30:00Z"));
    let later = ingest(&sim, &lake, config()).await.update(&[aapl()]).await;
    assert!(later.complete(), "{later:#?}");
    assert_eq!(later.corporate_actions, 0, "{later:#?}");
    assert_eq!(lake.partitions(Dataset::CorporateActions, Some(&aapl())).await.unwrap().len(), 1);
    assert!(lake.validate().await.unwrap().ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_update_sends_no_extra_request_and_records_nothing() {
    let clock = Arc::new(ManualClock::new(at("2026-06-02T21:30:00Z")));
    let sim = sim_with(clock.clone()).await;
    let f = Fixture::local();
    let lake = f.lake();
    assert!(ingest(&sim, &lake, config()).await.setup(&[aapl()]).await.complete());
    let before = historical(&sim);
    clock.set(at("2026-06-04T21:30:00Z"));
    let report = ingest(&sim, &lake, config()).await.update(&[aapl()]).await;
    assert!(report.complete(), "{report:#?}");
    assert_eq!(report.corporate_actions, 0);
    let asked: Vec<_> = historical(&sim).into_iter().skip(before.len()).collect();
    let daily: Vec<_> = asked
        .iter()
        .filter(|r| r.sec_type.as_deref() == Some("STK") && r.bar_size.as_deref() == Some("1 day"))
        .collect();
    // One daily request, as without the check: the two new sessions plus the 5 held ones compared.
    assert_eq!(daily.len(), 1, "{daily:#?}");
    assert_eq!(daily[0].duration.as_deref(), Some("7 D"), "{daily:#?}");
    assert!(lake.partitions(Dataset::CorporateActions, Some(&aapl())).await.unwrap().is_empty());
    let m = lake.manifest(&aapl()).await.unwrap();
    assert!(!m.entries.iter().any(|e| matches!(e.outcome, Outcome::Revoked { .. })));
    // The new sessions are stored, the overlap is not written again.
    let days = [day("2026-06-03"), day("2026-06-04")];
    assert_eq!(stored(&lake, DAILY, &days).await.len(), 2);
    let held = stored(&lake, DAILY, &twslake::calendar::trading_days(day("2026-05-27"), day("2026-06-02"))).await;
    assert!(held.iter().all(|b| b.ingested_at <= at("2026-06-02T21:30:00Z")), "held rows untouched");
    assert!(lake.validate().await.unwrap().ok());
}

/// The test venv's Python (with DuckDB): `$TWSLAKE_VENV` as the test command sets it, else its
/// default place.
fn python() -> std::path::PathBuf {
    let venv = std::env::var_os("TWSLAKE_VENV")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache/twslake/venv")))
        .expect("TWSLAKE_VENV or HOME is set");
    let py = venv.join("bin/python");
    assert!(py.is_file(), "no Python venv with DuckDB at {}: run the README's test command", venv.display());
    py
}

/// DuckDB (in the test venv's Python) reads the same AAPL daily closes and corporate actions as
/// twslake's polars reader.
async fn duckdb_reads_what_polars_reads(lake: &Lake, f: &Fixture) {
    use polars::prelude::*;
    let scans = twslake::query::Scans::new(lake);
    let bars = scans.scan(Dataset::EquityBars, &Default::default()).await.unwrap();
    let bars = bars
        .filter(col("bar_size").eq(lit("1 day")))
        .select([col("date").cast(DataType::String), col("close")])
        .sort(["date"], Default::default());
    let bars = twslake::query::collect(bars).await.unwrap();
    let dates = bars.column("date").unwrap().str().unwrap();
    let closes = bars.column("close").unwrap().f64().unwrap();
    let polars_bars: Vec<String> =
        (0..bars.height()).map(|i| format!("{} {:.4}", dates.get(i).unwrap(), closes.get(i).unwrap())).collect();
    let ca = scans.scan(Dataset::CorporateActions, &Default::default()).await.unwrap();
    let ca =
        twslake::query::collect(ca.select([col("effective_date").cast(DataType::String), col("ratio"), col("kind")]))
            .await
            .unwrap();
    let polars_ca = format!(
        "{} {:.4} {}",
        ca.column("effective_date").unwrap().str().unwrap().get(0).unwrap(),
        ca.column("ratio").unwrap().f64().unwrap().get(0).unwrap(),
        ca.column("kind").unwrap().str().unwrap().get(0).unwrap()
    );
    let script = r#"
import duckdb, sys
root = sys.argv[1]
con = duckdb.connect()
q = lambda ds, sql: con.execute(sql.replace("@T", f"read_parquet('{root}/{ds}/**/*.parquet', hive_partitioning = true)")).fetchall()
for d, c in q("equity_bars", "SELECT CAST(date AS VARCHAR), close FROM @T WHERE bar_size = '1 day' ORDER BY date"):
    print(f"{d} {c:.4f}")
for d, r, k in q("corporate_actions", "SELECT CAST(effective_date AS VARCHAR), ratio, kind FROM @T"):
    print(f"CA {d} {r:.4f} {k}")
"#;
    let out = std::process::Command::new(python())
        .args(["-c", script, f.url.as_str()])
        .output()
        .expect("the test venv's python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let (ca, rows): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with("CA "));
    assert_eq!(rows, polars_bars.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(ca, vec![format!("CA {polars_ca}")]);
}
