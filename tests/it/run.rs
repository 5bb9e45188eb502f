//! `twslake run`: the schedule printed by `--dry-run`; a week of Thanksgiving 2026 (a holiday and
//! an early close) run on the simulator under a simulated clock, with and without faults (the
//! gateway away mid-session, `run` itself killed and restarted); the lock; SIGTERM.
//!
//! "The lake ends equal" means: the journal holds the same slots, all done; the datasets the
//! batch jobs write (equity bars, chain snapshots, the stock's contract description) are equal
//! row for row; the simulator answered the same historical, head-timestamp and chain requests;
//! and both lakes hold live quotes of every session. Quotes themselves are not compared row for
//! row: ticks arrive in real time, so no two captures hold the same ticks, and the faulty week's
//! gateway downtime is accounted for by the gap recorded in the manifest.

use crate::ingest::{ingest, CLIENT_IDS, SCALE};
use crate::live::live_config;
use crate::support::{t, twslake, Fixture};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use twslake::clock::{Clock, ManualClock};
use twslake::datasets::Dataset;
use twslake::domain::Symbol;
use twslake::lake::manifest::Outcome;
use twslake::live::LiveOptions;
use twslake::run::journal::{self, Record, Status};
use twslake::run::schedule::{schedule, Job, ScheduleSettings};
use twslake::run::time::Timing;
use twslake::run::{Ended, RunSettings, Runner};
use twslake::sim::{Sim, SimHandle};
use twslake::source::ib::IbConfig;
use twslake::Lake;

/// Sunday 2026-11-22, 17:00 New York: the run starts before the week.
const SUNDAY: &str = "2026-11-22T22:00:00Z";
/// Saturday 2026-11-28, 12:00 New York: the week is over.
const SATURDAY: &str = "2026-11-28T17:00:00Z";
/// Simulated seconds per real second while a capture runs (a 6.5-hour session in about 2 s).
const SPEED: f64 = 10_000.0;

fn spy() -> Symbol {
    Symbol::new("SPY").unwrap()
}

fn settings(sim: &SimHandle) -> RunSettings {
    let client_id = CLIENT_IDS.fetch_add(2, Ordering::SeqCst);
    let gateway = IbConfig { gateway: sim.address(), client_id, timeout: Duration::from_secs(5) };
    let mut s = RunSettings::new(vec![spy()], live_config(), gateway);
    s.live = LiveOptions {
        flush_every: Duration::from_millis(300),
        backoff: Duration::from_millis(100),
        heartbeat: Duration::from_secs(1),
        ..Default::default()
    };
    s.lock_ttl = Duration::from_millis(1500);
    s.reconnect = Duration::from_millis(200);
    s.until = Some(t(SATURDAY));
    s
}

fn runner(lake: &Lake, sim: &SimHandle, clock: &Arc<ManualClock>) -> Arc<Runner> {
    let timing = Timing::Simulated { clock: clock.clone(), speed: SPEED, jump_idle: true };
    Arc::new(Runner::new(lake.clone(), settings(sim), timing))
}

async fn until_clock(clock: &ManualClock, at: &str) {
    let at = t(at);
    while clock.now() < at {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs until the week is over (the runner's `until`); returns how it ended.
async fn run_week(r: Arc<Runner>) -> Ended {
    let (_tx, rx) = tokio::sync::watch::channel(false);
    r.run(rx).await.unwrap()
}

/// Runs a new runner until the clock reaches `at`, dropping it there (a kill: no flush, the lock
/// left to expire).
async fn kill_at(r: Arc<Runner>, clock: &ManualClock, at: &str) {
    let (_tx, rx) = tokio::sync::watch::channel(false);
    tokio::select! {
        ended = r.run(rx) => panic!("the run ended before it was killed: {ended:?}"),
        _ = until_clock(clock, at) => {}
    }
}

struct Week {
    f: Fixture,
    sim: SimHandle,
    journal: BTreeMap<String, Record>,
}

/// The Thanksgiving week on a fresh simulator and lake set up on Sunday.
async fn week(faults: bool) -> Week {
    let clock = Arc::new(ManualClock::new(t(SUNDAY)));
    let sim =
        Sim::builder().listen("127.0.0.1:0").seed(7).pacing_scale(SCALE).clock(clock.clone()).start().await.unwrap();
    let f = Fixture::local();
    let lake = f.lake();
    let report = ingest(&sim, &lake, live_config()).await.setup(&[spy()]).await;
    assert!(report.complete(), "{report:#?}");
    if !faults {
        let ended = run_week(runner(&lake, &sim, &clock)).await;
        assert!(matches!(ended, Ended::Stopped), "{ended:?}");
    } else {
        // Tuesday 10:30–12:00 New York the gateway is away (connections dropped and refused),
        // as IB Gateway is during its daily restart; on Wednesday at 11:00 `run` is killed.
        let gateway = async {
            until_clock(&clock, "2026-11-24T15:30:00Z").await;
            sim.refuse_connections(true);
            sim.drop_connections();
            until_clock(&clock, "2026-11-24T17:00:00Z").await;
            sim.refuse_connections(false);
        };
        let first = runner(&lake, &sim, &clock);
        let second_refused = async {
            // Monday midday, while the first run captures: a second run on the lake is refused.
            until_clock(&clock, "2026-11-23T17:00:00Z").await;
            let (_tx, rx) = tokio::sync::watch::channel(false);
            runner(&lake, &sim, &clock).run(rx).await.unwrap()
        };
        let ((), (), refused) = tokio::join!(kill_at(first, &clock, "2026-11-25T16:00:00Z"), gateway, second_refused);
        match refused {
            Ended::Refused(held) => assert!(held.holder.contains(&format!("/{}/", std::process::id())), "{held:?}"),
            other => panic!("a second run was not refused: {other:?}"),
        }
        // The killed run's lock expires after its time to live (its process lives on: this one).
        let restarted = loop {
            match run_week(runner(&lake, &sim, &clock)).await {
                Ended::Refused(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                ended => break ended,
            }
        };
        assert!(matches!(restarted, Ended::Stopped));
    }
    let journal = journal::load(&lake, t(SUNDAY), t(SATURDAY)).await.unwrap();
    assert!(lake.try_lock("run", Duration::from_secs(5)).await.unwrap().is_ok(), "the lock is released");
    Week { f, sim, journal }
}

/// SPY's rows of a dataset as text, sorted.
async fn rows(lake: &Lake, dataset: Dataset) -> Vec<String> {
    use twslake::datasets::{chains, contracts, equity_bars};
    let mut out = Vec::new();
    for p in lake.partitions(dataset, Some(&spy())).await.unwrap() {
        let Some(d) = lake.read_partition(&p).await.unwrap() else { continue };
        match dataset {
            Dataset::EquityBars => out.extend(equity_bars::from_batch(&d.batch).iter().map(|r| format!("{r:?}"))),
            Dataset::Chains => out.extend(chains::from_batch(&d.batch).iter().map(|r| format!("{r:?}"))),
            Dataset::Contracts => out.extend(
                contracts::from_batch(&d.batch)
                    .iter()
                    .filter(|c| c.sec_type == twslake::domain::SecType::Stock)
                    .map(|r| format!("{r:?}")),
            ),
            other => panic!("{other:?} is not compared row for row"),
        }
    }
    out.sort();
    out
}

async fn lock_taken(lake: &Lake) -> bool {
    !lake.list(Some(&object_store::path::Path::from("_locks/run"))).await.unwrap().is_empty()
}

fn count(sim: &SimHandle, kind: &str) -> usize {
    sim.requests().iter().filter(|r| r.kind == kind).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_runs_every_slot_once_through_a_gateway_restart_and_a_kill() {
    let started = std::time::Instant::now();
    let clean = week(false).await;
    let faulty = week(true).await;
    eprintln!("two weeks run in {:.1} s", started.elapsed().as_secs_f64());

    // Every slot of the week, once, done — in both.
    let want: Vec<String> = schedule(t(SUNDAY).date_naive(), t(SATURDAY).date_naive(), &ScheduleSettings::default())
        .iter()
        .map(|s| s.id())
        .collect();
    assert_eq!(want.len(), 16, "Mon 5 (the weekly contracts), Tue 4, Wed 4, Thanksgiving 0, Fri 3 (early close)");
    for (name, w) in [("clean", &clean), ("faulty", &faulty)] {
        let ids: Vec<String> = w.journal.keys().cloned().collect();
        let mut sorted_want = want.clone();
        sorted_want.sort();
        assert_eq!(ids, sorted_want, "{name}: the journal holds the week's slots");
        for r in w.journal.values() {
            assert_eq!(r.status, Status::Done, "{name}: {r:?}");
            let started = r.started.unwrap();
            match journal::job_of(r).unwrap() {
                // A batch job runs at its slot's instant (the simulated clock stands still while it runs).
                Job::Contracts | Job::Chain | Job::Update => assert_eq!(started, r.at, "{name}: {r:?}"),
                Job::Capture => assert!(started >= r.at && r.finished > started, "{name}: {r:?}"),
            }
        }
    }
    let wed = &faulty.journal["capture@2026-11-25T09:30"];
    assert!(wed.started.unwrap() >= t("2026-11-25T16:00:00Z"), "Wednesday's capture resumed after the kill: {wed:?}");
    let first_holder = &faulty.journal["chain@2026-11-23T09:30"].holder;
    assert_ne!(&wed.holder, first_holder, "journaled by the restarted run");

    // Nothing asked twice, nothing missed: the gateway saw the same batch requests.
    for kind in ["option_chain", "historical_data", "head_timestamp"] {
        assert_eq!(count(&faulty.sim, kind), count(&clean.sim, kind), "{kind}");
    }
    assert_eq!(count(&clean.sim, "option_chain"), 1 + 7, "setup's, then one per chain slot");

    // The gateway's absence on Tuesday is a recorded gap; the capture resumed after it.
    let m = faulty.f.lake().manifest(&spy()).await.unwrap();
    let gaps: Vec<_> = m
        .entries
        .iter()
        .filter(|e| e.request.dataset == Dataset::Quotes && matches!(e.outcome, Outcome::Error { code: 1100, .. }))
        .collect();
    assert!(!gaps.is_empty(), "a gap recorded");
    assert!(
        gaps.iter().any(|g| g.requested_at >= t("2026-11-24T14:30:00Z") && g.completed_at <= t("2026-11-24T21:00:00Z")),
        "the gap lies in Tuesday's session: {gaps:?}"
    );
    let clean_m = clean.f.lake().manifest(&spy()).await.unwrap();
    assert!(
        !clean_m.entries.iter().any(|e| matches!(e.outcome, Outcome::Error { code: 1100, .. })),
        "no gap without faults"
    );

    // The lakes are equal (see the module's doc for what that means).
    let (a, b) = (clean.f.lake(), faulty.f.lake());
    for dataset in [Dataset::EquityBars, Dataset::Chains, Dataset::Contracts] {
        let (ra, rb) = (rows(&a, dataset).await, rows(&b, dataset).await);
        assert!(!ra.is_empty(), "{dataset:?}");
        assert_eq!(ra, rb, "{dataset:?}");
    }
    for lake in [&a, &b] {
        let days: std::collections::BTreeSet<String> = lake
            .partitions(Dataset::Quotes, Some(&spy()))
            .await
            .unwrap()
            .iter()
            .map(|p| format!("{:?}", p.period))
            .collect();
        for d in ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-27"] {
            assert!(days.iter().any(|p| p.contains(d)), "quotes of {d}: {days:?}");
        }
        assert!(!days.iter().any(|p| p.contains("2026-11-26")), "nothing on Thanksgiving");
        assert!(lake.validate().await.unwrap().ok(), "the journal and the lock are not foreign files");
    }
}

#[test]
fn dry_run_prints_the_schedule_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let args = ["run", "--dry-run", "--from", "2026-11-23", "--days", "7", "--lake", lake.to_str().unwrap()];
    let (code, out, err) = twslake(&args, &[]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 16, "{out}");
    assert_eq!(lines[0], "2026-11-23 Mon 09:00       NY  contracts contracts@2026-11-23T09:00");
    assert!(lines.contains(&"2026-11-27 Fri 09:30-13:00 NY  capture   capture@2026-11-27T09:30"), "{out}");
    assert!(lines.contains(&"2026-11-27 Fri 13:15       NY  update    update@2026-11-27T13:15"), "{out}");
    assert!(!out.contains("2026-11-26"), "Thanksgiving: nothing");
    assert!(!lake.exists(), "a dry run creates no lake");
    let (code, _, err) = twslake(&["run", "--dry-run", "--days", "0"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("--days"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_refuses_a_second_run_and_sigterm_exits_cleanly() {
    use std::process::{Command, Stdio};
    // Saturday: nothing is due, the run waits for Monday.
    let clock = Arc::new(ManualClock::new(t(SATURDAY)));
    let sim = Sim::builder().listen("127.0.0.1:0").seed(7).pacing_scale(SCALE).clock(clock).start().await.unwrap();
    let f = Fixture::local();
    let spawn = |extra: &[&str]| {
        let id = CLIENT_IDS.fetch_add(2, Ordering::SeqCst).to_string();
        let args = [
            "run",
            "--symbols",
            "SPY",
            "--lake",
            &f.url,
            "--gateway",
            &sim.address(),
            "--client-id",
            &id,
            "--as-of",
            SATURDAY,
            "--config",
            "/nonexistent/twslake.toml",
        ];
        Command::new(env!("CARGO_BIN_EXE_twslake"))
            .args(args)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let metrics = format!("127.0.0.1:{port}");
    let first = spawn(&["--metrics", &metrics]);
    let lake = f.lake();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !lock_taken(&lake).await {
        assert!(std::time::Instant::now() < deadline, "the run never took its lock");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let scraped = scrape(port).await;
    assert!(scraped.contains("# TYPE twslake_run_slots_total counter"), "{scraped}");
    assert!(scraped.contains("# TYPE twslake_requests_total counter"), "the requests of the jobs: {scraped}");
    assert!(scraped.contains("twslake_live_ticks_received_total"), "the capture's gauges: {scraped}");
    let second = spawn(&[]).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(twslake::run::EXIT_LOCKED), "{err}");
    assert!(
        err.contains("another `twslake run` holds this lake") && err.contains(&format!("/{}/", first.id())),
        "{err}"
    );

    let kill = Command::new("kill").args(["-TERM", &first.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = first.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("stopped cleanly"), "{err}");
    let lock = lake.try_lock("run", Duration::from_secs(5)).await.unwrap().expect("released at once");
    lock.release().await.unwrap();

    // A run killed with SIGKILL leaves its lock, stale at once on this machine (its process is
    // gone): the next run takes it.
    let mut killed = spawn(&[]);
    wait_for_holder(&lake, killed.id()).await;
    killed.kill().unwrap();
    killed.wait().unwrap();
    let next = spawn(&[]);
    wait_for_holder(&lake, next.id()).await;
    let kill = Command::new("kill").args(["-TERM", &next.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = next.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Waits until process `pid` holds the lake's run lock (its newest generation names it).
async fn wait_for_holder(lake: &Lake, pid: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut gens = lake.list(Some(&object_store::path::Path::from("_locks/run"))).await.unwrap();
        gens.sort_by(|a, b| a.location.cmp(&b.location));
        if let Some(newest) = gens.last() {
            use object_store::ObjectStoreExt;
            let bytes = lake.store().get(&newest.location).await.unwrap().bytes().await.unwrap();
            let state: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            if state["pid"] == pid && state["released"] == false {
                return;
            }
        }
        assert!(std::time::Instant::now() < deadline, "process {pid} never took the run lock");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_runs_the_latest_missed_slot_of_each_job_and_skips_the_rest() {
    // Monday 08:00 New York; no capture (the batch jobs alone), set up on Sunday.
    let clock = Arc::new(ManualClock::new(t(SUNDAY)));
    let sim =
        Sim::builder().listen("127.0.0.1:0").seed(7).pacing_scale(SCALE).clock(clock.clone()).start().await.unwrap();
    let f = Fixture::local();
    let lake = f.lake();
    assert!(ingest(&sim, &lake, live_config()).await.setup(&[spy()]).await.complete());
    let runner_until = |until: &str| {
        let mut s = settings(&sim);
        s.schedule.capture = false;
        s.until = Some(t(until));
        let timing = Timing::Simulated { clock: clock.clone(), speed: SPEED, jump_idle: true };
        Arc::new(Runner::new(lake.clone(), s, timing))
    };
    // Up until Monday 09:45: the weekly contracts and the chain at the open.
    assert!(matches!(run_week(runner_until("2026-11-23T14:45:00Z")).await, Ended::Stopped));
    let chains_before = count(&sim, "option_chain");
    // Down until Tuesday 14:00: Monday's 13:30 chain and its update, Tuesday's 09:30 and 13:30 chains missed.
    clock.set(t("2026-11-24T19:00:00Z"));
    let r = runner_until("2026-11-24T19:05:00Z");
    assert!(matches!(run_week(r.clone()).await, Ended::Stopped));
    let j = journal::load(&lake, t(SUNDAY), t(SATURDAY)).await.unwrap();
    let status =
        |id: &str| j.get(id).map(|r| (r.status, r.started)).unwrap_or_else(|| panic!("{id} not journaled: {j:?}"));
    let restart = Some(t("2026-11-24T19:00:00Z"));
    assert_eq!(status("contracts@2026-11-23T09:00").0, Status::Done);
    assert_eq!(status("chain@2026-11-23T09:30").0, Status::Done);
    assert_eq!(status("chain@2026-11-23T13:30"), (Status::Skipped, None), "an old snapshot cannot be taken late");
    assert_eq!(status("chain@2026-11-24T09:30"), (Status::Skipped, None), "nor this one");
    assert_eq!(status("chain@2026-11-24T13:30"), (Status::Done, restart), "the latest missed chain slot, at once");
    assert_eq!(status("update@2026-11-23T16:15"), (Status::Done, restart), "the missed update, at once");
    assert_eq!(j.len(), 6, "{j:?}");
    assert_eq!(count(&sim, "option_chain"), chains_before + 1, "one snapshot for the missed chain slots");
    assert_eq!(r.run_metrics.slots(Job::Chain, Status::Skipped), 2);
    assert!(r.run_metrics.render().contains("twslake_run_slots_total{job=\"update\",status=\"done\"} 1"));
    // Monday's bar came with the missed update.
    let bars = rows(&lake, Dataset::EquityBars).await;
    assert!(bars.iter().any(|b| b.contains("2026-11-23")), "{bars:?}");
}

async fn scrape(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await.unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_job_failing_on_an_absent_gateway_is_tried_again_until_it_is_back() {
    let clock = Arc::new(ManualClock::new(t(SUNDAY)));
    let sim =
        Sim::builder().listen("127.0.0.1:0").seed(7).pacing_scale(SCALE).clock(clock.clone()).start().await.unwrap();
    let f = Fixture::local();
    let lake = f.lake();
    assert!(ingest(&sim, &lake, live_config()).await.setup(&[spy()]).await.complete());
    // Monday 08:55 New York; the clock moves 1000× while the run waits (no jumps), so the
    // gateway's return at 09:40 lands between two attempts.
    clock.set(t("2026-11-23T13:55:00Z"));
    let mut s = settings(&sim);
    s.schedule.capture = false;
    s.until = Some(t("2026-11-23T15:00:00Z"));
    let timing = Timing::Simulated { clock: clock.clone(), speed: 1000.0, jump_idle: false };
    let r = Arc::new(Runner::new(lake.clone(), s, timing));
    sim.refuse_connections(true);
    let gateway_back = async {
        until_clock(&clock, "2026-11-23T14:40:00Z").await;
        sim.refuse_connections(false);
    };
    let (ended, ()) = tokio::join!(run_week(r), gateway_back);
    assert!(matches!(ended, Ended::Stopped));
    let j = journal::load(&lake, t(SUNDAY), t(SATURDAY)).await.unwrap();
    let retried_at = Some(t("2026-11-23T14:45:00Z"));
    let contracts = &j["contracts@2026-11-23T09:00"];
    assert_eq!(
        (contracts.status, contracts.attempts, contracts.started),
        (Status::Done, 4, retried_at),
        "09:00, 09:15, 09:30, 09:45"
    );
    let chain = &j["chain@2026-11-23T09:30"];
    assert_eq!((chain.status, chain.attempts, chain.started), (Status::Done, 2, retried_at), "09:30, 09:45");
    assert_eq!(j.len(), 2, "{j:?}");
}
