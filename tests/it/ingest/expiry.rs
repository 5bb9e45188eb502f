//! Options that expire on the run's own date, asked after that day's close: IB still describes an
//! expiring contract until the end of its day and serves its history, so `setup` and `update` are
//! complete and hold the expiring options' bars of the day.

use super::*;
use crate::support::Fixture;
use std::process::{Command, Output, Stdio};
use twslake::datasets::{option_bars, Dataset};
use twslake::domain::Symbol;

/// Friday 2026-06-05 after the close: SPY's weekly options of that day have expired at 20:00 UTC.
const FRIDAY_EVENING: &str = "2026-06-05T21:30:00Z";
/// Thursday 2026-06-18 after the close, before the Juneteenth holiday: the week's options expire
/// on the Thursday; AAPL has split 4:1 on 2026-06-15, so its listed options carry adjusted terms.
const THURSDAY_BEFORE_HOLIDAY: &str = "2026-06-18T21:30:00Z";

fn run(lake: &Fixture, gateway: &str, cmd: &str, symbol: &str, as_of: &str) -> Output {
    let args = [
        cmd,
        symbol,
        "--gateway",
        gateway,
        "--pacing-scale",
        "1000",
        "--as-of",
        as_of,
        "--config",
        "none.toml",
        "--equity",
        "1 day/TRADES/20",
        "--equity",
        "5 mins/TRADES/2",
        "--option-series",
        "5 mins/MIDPOINT",
        "--expiry-days",
        "3",
        "--strike-band",
        "0.02",
        "--max-contracts",
        "4",
        "--option-sessions",
        "2",
        "--lake",
        &lake.url,
    ];
    let state = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_twslake"))
        .args(args)
        .env("TWSLAKE_STATE_DIR", state.path())
        .env_remove("TWSLAKE_GATEWAY")
        .envs(lake.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_expiring_on_the_run_date_are_served_after_the_close() {
    expiring_on_the_run_date("SPY", FRIDAY_EVENING).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_expiring_on_a_thursday_before_a_holiday_after_a_split_are_served_after_the_close() {
    expiring_on_the_run_date("AAPL", THURSDAY_BEFORE_HOLIDAY).await;
}

/// `setup` then `update` of `symbol` at `as_of` (after the close of a day with an expiry):
/// both complete, nothing refused for want of a definition, the expiring options' bars of the
/// day stored.
async fn expiring_on_the_run_date(symbol: &'static str, as_of: &'static str) {
    let sim = sim_at(as_of).await;
    let lake = Fixture::local();
    let gw = sim.address();
    let (lake, outs) = tokio::task::spawn_blocking(move || {
        let setup = run(&lake, &gw, "setup", symbol, as_of);
        let update = run(&lake, &gw, "update", symbol, as_of);
        (lake, [setup, update])
    })
    .await
    .unwrap();
    for (cmd, out) in ["setup", "update"].iter().zip(&outs) {
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{cmd}: {stdout}\n{stderr}");
        assert!(stdout.contains("complete") && !stdout.contains("incomplete"), "{cmd}: {stdout}");
    }
    // No request was refused for want of a definition.
    let refused: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| matches!(r.outcome, twslake::sim::Outcome::Error { code: 200 }))
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
    // The contracts expiring today are stored with their bars of today.
    let today = twslake::calendar::trading_date(crate::support::t(as_of));
    let lake = lake.lake();
    let sym = Symbol::new(symbol).unwrap();
    let mut expiring = 0;
    for p in lake.partitions(Dataset::OptionBars, Some(&sym)).await.unwrap() {
        if let Some(data) = lake.read_partition(&p).await.unwrap() {
            let rows = option_bars::from_batch(&data.batch);
            expiring += rows.iter().filter(|r| r.contract.expiry == today && r.bar.date == today).count();
        }
    }
    assert!(expiring > 0, "bars of the options expiring on the run's date");
    assert!(lake.validate().await.unwrap().ok());
}
