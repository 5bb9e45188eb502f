//! Real processes beside each other: `validate` while a writer rewrites the same partitions,
//! and writers killed inside a manifest compaction.

use super::crash::{assert_whole, confirmed};
use crate::support::*;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use twslake::domain::Symbol;

/// A `stress-write` process that compacts the manifest every `compact_after` logs and reports
/// its compactions on stderr.
fn writer(f: &Fixture, seed: u64, iterations: usize, days: usize, compact_after: usize) -> std::process::Child {
    writer_at(&f.url, &f.env(), seed, iterations, days, compact_after)
}

fn writer_at(
    url: &str,
    env: &[(String, String)],
    seed: u64,
    iterations: usize,
    days: usize,
    compact_after: usize,
) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_twslake"))
        .args(["stress-write", "--lake", url, "--seed", &seed.to_string()])
        .args(["--iterations", &iterations.to_string(), "--days", &days.to_string()])
        .envs(env.iter().cloned())
        .env("TWSLAKE_COMPACT_AFTER_LOGS", compact_after.to_string())
        .env("TWSLAKE_LOG", "twslake::lake::manifest=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// 30 validations while writers keep rewriting two days' partitions (and compacting the
/// manifest every 4 logs): none may report a problem, nor fail.
async fn validate_beside_a_writer(f: Fixture) {
    let mut first = writer(&f, 99, 4, 2, 4);
    let seeded = confirmed(&mut first);
    assert!(first.wait().unwrap().success() && seeded.len() == 4, "the lake is seeded");
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let bg = {
        let (stop, written, url, env) = (stop.clone(), written.clone(), f.url.clone(), f.env());
        std::thread::spawn(move || {
            let mut seed = 0;
            while !stop.load(Ordering::SeqCst) {
                seed += 1;
                let mut child = writer_at(&url, &env, seed, 40, 2, 4);
                let out = BufReader::new(child.stdout.take().unwrap());
                for _ in out.lines().map_while(Result::ok) {
                    written.fetch_add(1, Ordering::SeqCst);
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                }
                let _ = child.kill();
                child.wait().unwrap();
            }
        })
    };
    // Wait until the writer is under way.
    for _ in 0..400 {
        if written.load(Ordering::SeqCst) > 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let lake = f.lake();
    let before = written.load(Ordering::SeqCst);
    let mut failures = Vec::new();
    for i in 0..30 {
        match lake.validate().await {
            Ok(r) if r.ok() => {}
            Ok(r) => failures.push(format!("validate {i}: {:?}", r.problems)),
            Err(e) => failures.push(format!("validate {i} failed: {e}")),
        }
    }
    let during = written.load(Ordering::SeqCst) - before;
    stop.store(true, Ordering::SeqCst);
    bg.join().unwrap();
    eprintln!("{}: 30 validations, {during} records written meanwhile, {} false alarms", f.name, failures.len());
    assert!(failures.is_empty(), "false alarms beside a writer ({}): {failures:#?}", f.name);
    assert!(during >= 5, "the writer rewrote partitions during the validations ({during} records, {})", f.name);
    assert!(lake.validate().await.unwrap().ok());
}

super::on_both!(validate_beside_a_writer);

/// Writers killed a few milliseconds after announcing a manifest compaction (every 3 logs):
/// before its snapshot, between the snapshot and the deletion of the logs it absorbed, or just
/// after. Then the invariants of every crash test hold, and the next run recovers.
fn killed_inside_compaction(f: Fixture, kills: u64, min_inside: usize) {
    let mut must_have = BTreeSet::new();
    let mut inside = 0;
    for k in 0..kills {
        let mut child = writer(&f, 1000 + k, 10_000, 4, 3);
        let stdout = child.stdout.take().unwrap();
        let ids = std::thread::spawn(move || {
            let lines = BufReader::new(stdout).lines().map_while(Result::ok);
            lines.filter_map(|l| l.split_whitespace().nth(2).map(String::from)).collect::<Vec<_>>()
        });
        let mut err = BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok);
        // Kill inside the 1st, 2nd or 3rd compaction of this process, 0–4 ms after it starts.
        let target = 1 + (k % 3) as usize;
        let mut seen = 0;
        for line in err.by_ref() {
            if line.contains("compacting the manifest") {
                seen += 1;
                if seen == target {
                    std::thread::sleep(Duration::from_millis((k * 3) % 5));
                    child.kill().unwrap();
                    break;
                }
            }
        }
        assert_eq!(seen, target, "the writer reached compaction {target} ({})", f.name);
        if !err.any(|l| l.contains("compacted the manifest")) {
            inside += 1;
        }
        child.wait().unwrap();
        must_have.extend(ids.join().unwrap());
    }
    eprintln!("{}: {kills} writers killed after a compaction began, {inside} of them before it ended", f.name);
    assert!(inside >= min_inside, "{inside} of {kills} kills landed inside a compaction ({})", f.name);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(assert_whole(&f, &must_have));
    // The next run recovers and compacts again over what the killed ones left.
    let mut next = writer(&f, 7, 7, 4, 3);
    must_have.extend(confirmed(&mut next));
    assert!(next.wait().unwrap().success(), "the next run succeeds ({})", f.name);
    rt.block_on(async {
        assert_whole(&f, &must_have).await;
        let lake = f.lake();
        let spy = Symbol::new("SPY").unwrap();
        let snapshots = lake
            .list(Some(&"_manifest/symbol=SPY".into()))
            .await
            .unwrap()
            .iter()
            .filter(|m| m.location.filename().is_some_and(|n| n.starts_with("snapshot-")))
            .count();
        assert!(snapshots >= 1, "compaction made a snapshot ({})", f.name);
        let m = lake.manifest(&spy).await.unwrap();
        let ids: Vec<&String> = m.entries.iter().map(|e| &e.id).collect();
        let unique: BTreeSet<&String> = ids.iter().copied().collect();
        assert_eq!(ids.len(), unique.len(), "no entry counted twice ({})", f.name);
    });
}

#[test]
fn killed_inside_compaction_local() {
    // At least one kill must land before the compaction ends (6 of 15 did on a loaded machine;
    // a quiet one finishes compactions faster, so the bound is kept low to stay deterministic).
    killed_inside_compaction(Fixture::local(), 15, 1)
}

#[test]
fn killed_inside_compaction_s3() {
    if let Some(f) = Fixture::s3() {
        killed_inside_compaction(f, 8, 1)
    }
}
