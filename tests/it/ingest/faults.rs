//! Faults of the gateway during a backfill, and a killed ingest process: the lake ends complete,
//! with no duplicated row and no lost manifest entry.

use super::*;
use crate::support::Fixture;
use std::collections::BTreeSet;
use twslake::datasets::Dataset;
use twslake::domain::Symbol;
use twslake::sim::Fault;

fn spy() -> Vec<Symbol> {
    vec![Symbol::new("SPY").unwrap()]
}

/// Every visible row's request is remembered, and nothing is stored twice.
async fn assert_whole(lake: &Lake) {
    let report = lake.validate().await.unwrap();
    assert!(report.ok(), "{:#?}", report.problems);
    let m = lake.manifest(&Symbol::new("SPY").unwrap()).await.unwrap();
    let known: BTreeSet<&str> = m.entries.iter().map(|e| e.id.as_str()).collect();
    for ds in [Dataset::EquityBars, Dataset::OptionBars, Dataset::Chains, Dataset::Contracts] {
        for p in lake.partitions(ds, None).await.unwrap() {
            let data = lake.read_partition(&p).await.unwrap().unwrap();
            let orphans: Vec<_> = data.requests.iter().filter(|id| !known.contains(id.as_str())).collect();
            assert!(orphans.is_empty(), "{p}: rows whose request is not remembered: {orphans:?}");
        }
    }
}

async fn quick(sim: &SimHandle, lake: &Lake) -> Ingest<IbSource> {
    let mut cfg = small_config();
    cfg.attempts = 3;
    let mut run = ingest(sim, lake, cfg).await;
    // Short answers keep the stalled case quick.
    run.source = IbSource::connect(&IbConfig {
        gateway: sim.address(),
        client_id: CLIENT_IDS.fetch_add(1, Ordering::SeqCst),
        timeout: Duration::from_secs(1),
    })
    .await
    .unwrap();
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_backfill_is_survived() {
    let sim = sim_at(AFTER_CLOSE).await;
    sim.add_fault(Fault::DropAfter(40));
    let f = Fixture::local();
    let lake = f.lake();
    let mut complete = false;
    for _ in 0..3 {
        if quick(&sim, &lake).await.setup(&spy()).await.complete() {
            complete = true;
            break;
        }
    }
    assert!(complete, "the lake is complete after a run or two");
    assert_whole(&lake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_gateway_then_a_healthy_one_completes_the_lake() {
    let sim = sim_at(AFTER_CLOSE).await;
    sim.add_fault(Fault::Stall("historical".into()));
    let f = Fixture::local();
    let lake = f.lake();
    let report = quick(&sim, &lake).await.setup(&spy()).await;
    assert!(!report.complete(), "nothing historical was answered");
    assert_eq!(report.symbols[0].equity.ok, 0);
    sim.clear_faults();
    let report = quick(&sim, &lake).await.setup(&spy()).await;
    assert!(report.complete(), "{report:#?}");
    assert_whole(&lake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connectivity_notice_does_not_stop_the_backfill() {
    let sim = sim_at(AFTER_CLOSE).await;
    sim.add_fault(Fault::Notice { code: 1100, after: 20 });
    let f = Fixture::local();
    let lake = f.lake();
    let report = quick(&sim, &lake).await.setup(&spy()).await;
    assert!(report.complete(), "{report:#?}");
    sim.send_notice(1102);
    assert_whole(&lake).await;
}

fn cli_setup(sim: &SimHandle, lake: &str, client_id: i32) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_twslake"));
    c.args(["setup", "SPY", "--lake", lake, "--gateway", &sim.address(), "--client-id", &client_id.to_string()])
        .args(["--pacing-scale", &SCALE.to_string(), "--as-of", AFTER_CLOSE, "--config", "/nonexistent/twslake.toml"])
        .args(["--equity", "1 day/TRADES/60", "--equity", "1 min/TRADES/2"])
        .args(["--expiry-days", "20", "--strike-band", "0.03", "--max-contracts", "8", "--option-sessions", "3"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

/// Every row of every dataset, as text, sorted: what "the same lake" means.
async fn contents(lake: &Lake) -> Vec<String> {
    let mut out = Vec::new();
    for ds in Dataset::ALL {
        for p in lake.partitions(ds, None).await.unwrap() {
            let data = lake.read_partition(&p).await.unwrap().unwrap();
            let b = &data.batch;
            let rows: Vec<String> = match ds {
                Dataset::Contracts => {
                    twslake::datasets::contracts::from_batch(b).iter().map(|r| format!("{r:?}")).collect()
                }
                Dataset::Chains => twslake::datasets::chains::from_batch(b).iter().map(|r| format!("{r:?}")).collect(),
                Dataset::EquityBars => {
                    twslake::datasets::equity_bars::from_batch(b).iter().map(|r| format!("{r:?}")).collect()
                }
                Dataset::OptionBars => {
                    twslake::datasets::option_bars::from_batch(b).iter().map(|r| format!("{r:?}")).collect()
                }
                Dataset::Quotes => twslake::datasets::quotes::from_batch(b).iter().map(|r| format!("{r:?}")).collect(),
                Dataset::Surfaces => {
                    twslake::datasets::surfaces::from_batch(b).iter().map(|r| format!("{r:?}")).collect()
                }
                Dataset::CorporateActions => {
                    twslake::datasets::corporate_actions::from_batch(b).iter().map(|r| format!("{r:?}")).collect()
                }
            };
            out.extend(rows.into_iter().map(|r| format!("{p} {r}")));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_killed_then_rerun_makes_the_lake_of_an_uninterrupted_run() {
    let sim = sim_at(AFTER_CLOSE).await;
    let (a, b) = (Fixture::local(), Fixture::local());
    let status = cli_setup(&sim, &a.url, 501).status().unwrap();
    assert!(status.success(), "the uninterrupted run completes");
    let mut interrupted = 0;
    for (k, wait_ms) in [150u64, 400, 900].into_iter().enumerate() {
        let mut child = cli_setup(&sim, &b.url, 510 + k as i32).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(wait_ms));
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(interrupted > 0, "at least one run was killed mid-way");
    let status = cli_setup(&sim, &b.url, 520).status().unwrap();
    assert!(status.success(), "the run after the kills completes");
    let (la, lb) = (a.lake(), b.lake());
    assert_whole(&lb).await;
    let (ca, cb) = (contents(&la).await, contents(&lb).await);
    assert_eq!(ca.len(), cb.len());
    assert!(ca == cb, "the lakes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_refetches_data_lost_behind_the_manifests_back() {
    use object_store::ObjectStoreExt;
    let sim = sim_at(AFTER_CLOSE).await;
    let f = Fixture::local();
    let lake = f.lake();
    assert!(ingest(&sim, &lake, small_config()).await.setup(&spy()).await.complete());
    let daily = twslake::lake::layout::obj("equity_bars/symbol=SPY/year=2026/1d-TRADES.parquet");
    let before =
        lake.read_partition(&twslake::lake::layout::Partition::from_path(&daily).unwrap()).await.unwrap().unwrap();
    lake.store().delete(&daily).await.unwrap();
    assert!(!lake.validate().await.unwrap().ok(), "validate sees the loss");
    let sent = historical(&sim).len();
    let report = ingest(&sim, &lake, small_config()).await.update(&spy()).await;
    assert!(report.complete(), "{report:#?}");
    assert!(report.symbols[0].revoked >= 1 && report.symbols[0].resynced_dates >= 1, "{report:#?}");
    assert_eq!(historical(&sim).len(), sent + 1, "one request brings the year back");
    let after =
        lake.read_partition(&twslake::lake::layout::Partition::from_path(&daily).unwrap()).await.unwrap().unwrap();
    let rows = |b: &arrow::record_batch::RecordBatch| {
        twslake::datasets::equity_bars::from_batch(b).into_iter().map(|r| (r.ts, r.close)).collect::<Vec<_>>()
    };
    assert_eq!(rows(&after.batch), rows(&before.batch));
    assert_whole(&lake).await;
}
