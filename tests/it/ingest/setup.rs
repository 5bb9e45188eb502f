//! `setup` and `update` end to end: datasets, dependency order, no repeated request, the fewest
//! requests, refusals.

use super::*;
use crate::support::Fixture;
use twslake::datasets::Dataset;
use twslake::domain::{BarSize, Symbol};
use twslake::query::status;
use twslake::sim::Outcome as SimOutcome;
use twslake::Error;

fn syms(names: &[&str]) -> Vec<Symbol> {
    names.iter().map(|s| Symbol::new(s).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_writes_every_dataset_in_dependency_order() {
    let sim = sim_at(AFTER_CLOSE).await;
    let f = Fixture::local();
    let lake = f.lake();
    let run = ingest(&sim, &lake, small_config()).await;
    let symbols = syms(&["SPY", "QQQ", "BRK B"]);
    let report = run.setup(&symbols).await;
    assert!(report.complete(), "{report:#?}");
    let status = status::status(&lake, sim.market().now()).await.unwrap();
    for s in ["SPY", "QQQ", "BRK B"] {
        for ds in [Dataset::Contracts, Dataset::Chains, Dataset::EquityBars, Dataset::OptionBars] {
            let row = status.iter().find(|r| r.symbol == s && r.dataset == ds.name());
            assert!(row.is_some_and(|r| r.rows > 0), "{s} {ds}: {status:#?}");
        }
    }
    // Every option-bar request comes after its underlying's contract, chain and spot requests.
    let log = sim.requests();
    let first = |pred: &dyn Fn(&twslake::sim::RequestRecord) -> bool| log.iter().position(pred);
    for s in ["SPY", "QQQ", "BRK B"] {
        let is = |r: &twslake::sim::RequestRecord, kind: &str| r.kind == kind && r.symbol.as_deref() == Some(s);
        let contract =
            first(&|r| is(r, "contract_details") && r.sec_type.as_deref() != Some("OPT")).expect("contract request");
        let chain =
            log.iter().position(|r| r.kind == "option_chain" && r.symbol.as_deref() == Some(s)).expect("chain request");
        let spot = first(&|r| {
            is(r, "historical_data") && r.sec_type.as_deref() == Some("STK") && r.bar_size.as_deref() == Some("1 day")
        })
        .expect("daily bars");
        let options: Vec<usize> = log
            .iter()
            .enumerate()
            .filter(|(_, r)| is(r, "historical_data") && r.sec_type.as_deref() == Some("OPT"))
            .map(|(i, _)| i)
            .collect();
        assert!(!options.is_empty(), "{s} has option-bar requests");
        assert!(
            options.iter().all(|&i| i > contract && i > chain && i > spot),
            "{s}: order {contract} {chain} {spot} {options:?}"
        );
    }
    assert!(lake.validate().await.unwrap().ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_sends_no_historical_request() {
    let sim = sim_at(AFTER_CLOSE).await;
    let f = Fixture::local();
    let lake = f.lake();
    let symbols = syms(&["SPY", "BRK B"]);
    assert!(ingest(&sim, &lake, small_config()).await.setup(&symbols).await.complete());
    let after_first = historical(&sim).len();
    assert!(after_first > 0);
    let again = ingest(&sim, &lake, small_config()).await;
    assert!(again.setup(&symbols).await.complete());
    assert!(again.update(&symbols).await.complete());
    assert_eq!(historical(&sim).len(), after_first, "setup and update right after ask for nothing");
    assert!(
        sim.requests().iter().filter(|r| r.kind == "option_chain").count() == 2,
        "the chain is fresh: not taken again"
    );
}

/// The most sessions one request spans, from IB's duration table (written out independently of
/// the planner): `1 min` → `1 D`, `5 mins` → 7 sessions, `1 day` → any span.
fn table_limit(bar: &str) -> usize {
    match bar {
        "1 min" => 1,
        "5 mins" => 7,
        "1 day" => usize::MAX,
        other => panic!("no limit written for {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_equal_the_duration_table_lower_bound() {
    let sim = sim_at(AFTER_CLOSE).await;
    let f = Fixture::local();
    let lake = f.lake();
    let run = ingest(&sim, &lake, small_config()).await;
    // The settings as the run completed them: the 1-minute spot kept for the option sessions.
    let cfg = run.cfg.clone();
    let report = run.setup(&syms(&["QQQ"])).await;
    assert!(report.complete(), "{report:#?}");
    let log = historical(&sim);
    // Every series starts empty, so each needs ceil(sessions / limit) requests.
    let bound = |sessions: usize, bar: &str| sessions.div_ceil(table_limit(bar)).max(1);
    let equity_bound: usize = cfg.equity.iter().map(|e| bound(e.sessions as usize, e.series.bar_size.ib())).sum();
    let option_con_ids: std::collections::BTreeSet<i32> =
        log.iter().filter(|r| r.sec_type.as_deref() == Some("OPT")).filter_map(|r| r.con_id).collect();
    assert_eq!(option_con_ids.len(), cfg.options.max_contracts);
    let option_bound = option_con_ids.len() * bound(cfg.options.sessions as usize, BarSize::Min5.ib());
    let stock_requests = log.iter().filter(|r| r.sec_type.as_deref() != Some("OPT")).count();
    let option_requests = log.len() - stock_requests;
    assert_eq!((stock_requests, option_requests), (equity_bound, option_bound));
    assert!(log.iter().all(|r| matches!(r.outcome, SimOutcome::Ok { .. } | SimOutcome::Empty)), "{log:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_symbols_and_missing_prerequisites_are_refused() {
    let sim = sim_at(AFTER_CLOSE).await;
    let f = Fixture::local();
    let lake = f.lake();
    let run = ingest(&sim, &lake, small_config()).await;
    let report = run.setup(&syms(&["NOPE"])).await;
    let err = report.symbols[0].error.clone().expect("an error");
    assert!(err.contains("\"NOPE\"") && err.contains("200"), "{err}");
    assert!(!report.complete());
    assert!(lake.list(None).await.unwrap().is_empty(), "nothing written for an unknown symbol");

    let spy = Symbol::new("SPY").unwrap();
    match run.backfill_option_bars(&spy).await {
        Err(Error::Prerequisite { symbol, missing }) => {
            assert_eq!(symbol, "SPY");
            assert_eq!(missing.len(), 3, "{missing:?}");
        }
        other => panic!("expected a prerequisite error, got {other:?}"),
    }
    assert_eq!(run.metrics.dependency_violations.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(historical(&sim).is_empty(), "no option request was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_of_many_contracts_gets_no_pacing_violation() {
    let sim = sim_at(AFTER_CLOSE).await;
    let f = Fixture::local();
    let lake = f.lake();
    let mut cfg = small_config();
    cfg.options.max_contracts = 40;
    cfg.options.strike_band = 0.08;
    cfg.options.series = vec![parse_series("1 min/MIDPOINT", 1).unwrap().series];
    cfg.options.sessions = 3;
    cfg.concurrency = 8;
    let run = ingest(&sim, &lake, cfg).await;
    let report = run.setup(&syms(&["SPY"])).await;
    assert!(report.complete(), "{report:#?}");
    let log = historical(&sim);
    assert!(log.len() >= 120, "more than two pacing windows' worth: {}", log.len());
    let refused: Vec<_> = log.iter().filter(|r| matches!(r.outcome, SimOutcome::Error { .. })).collect();
    assert!(refused.is_empty(), "the gateway refused {refused:#?}");
    assert_eq!(report.pacing_violations, 0);
}
