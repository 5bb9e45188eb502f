//! Real processes: writers killed at random instants, and writers racing on one lake.

use crate::support::*;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use twslake::datasets::Dataset;
use twslake::domain::Symbol;

pub(crate) fn writer(f: &Fixture, seed: u64, iterations: usize, days: usize) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_twslake"))
        .args(["stress-write", "--lake", &f.url, "--seed", &seed.to_string()])
        .args(["--iterations", &iterations.to_string(), "--days", &days.to_string()])
        .envs(f.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Ids of the entries a writer reported as recorded before it stopped.
pub(crate) fn confirmed(child: &mut std::process::Child) -> Vec<String> {
    let out = BufReader::new(child.stdout.take().unwrap());
    out.lines().map_while(Result::ok).filter_map(|l| l.split_whitespace().nth(2).map(String::from)).collect()
}

/// The invariants after any number of crashes and races.
pub(crate) async fn assert_whole(f: &Fixture, must_have: &BTreeSet<String>) {
    let lake = f.lake();
    let spy = Symbol::new("SPY").unwrap();
    let report = lake.validate().await.unwrap();
    assert!(report.ok(), "torn files, duplicates or dangling entries ({}): {:#?}", f.name, report.problems);
    let m = lake.manifest(&spy).await.unwrap();
    let known: BTreeSet<String> = m.entries.iter().map(|e| e.id.clone()).collect();
    let lost: Vec<_> = must_have.difference(&known).collect();
    assert!(lost.is_empty(), "recorded entries missing from the manifest ({}): {lost:?}", f.name);
    for p in lake.partitions(Dataset::EquityBars, Some(&spy)).await.unwrap() {
        let data = lake.read_partition(&p).await.unwrap().unwrap();
        assert_eq!(data.batch.num_rows(), 390, "a partition holds one whole session ({p})");
        let orphans: Vec<_> = data.requests.difference(&known).collect();
        assert!(orphans.is_empty(), "visible rows whose manifest entry is lost ({p}): {orphans:?}");
    }
    // Settling the interrupted entries keeps every one of those properties.
    lake.recover_manifest(&spy).await.unwrap();
    let m2 = lake.manifest(&spy).await.unwrap();
    assert!(m2.pending_lost.is_empty() && m2.pending_visible.is_empty());
    assert_eq!(m2.entries.len(), m.entries.len());
    assert!(lake.validate().await.unwrap().ok());
}

fn killed_writers(f: Fixture, kills: u64) {
    let mut must_have = BTreeSet::new();
    for k in 0..kills {
        let mut child = writer(&f, k, 10_000, 4);
        // Kill anywhere from start-up to deep inside a write.
        let wait = 30 + (k * 7919) % 300;
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap();
        must_have.extend(confirmed(&mut child));
        child.wait().unwrap();
    }
    assert!(!must_have.is_empty(), "the writers got some work done before being killed");
    tokio::runtime::Runtime::new().unwrap().block_on(assert_whole(&f, &must_have));
}

#[test]
fn killed_writers_leave_the_lake_whole_local() {
    killed_writers(Fixture::local(), 30)
}

#[test]
fn killed_writers_leave_the_lake_whole_s3() {
    if let Some(f) = Fixture::s3() {
        killed_writers(f, 12)
    }
}

fn racing_writers(f: Fixture) {
    let mut a = writer(&f, 1, 25, 3);
    let mut b = writer(&f, 2, 25, 3);
    let mut ids: BTreeSet<String> = confirmed(&mut a).into_iter().collect();
    ids.extend(confirmed(&mut b));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    assert_eq!(ids.len(), 50, "both writers finished ({})", f.name);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        assert_whole(&f, &ids).await;
        let m = f.lake().manifest(&Symbol::new("SPY").unwrap()).await.unwrap();
        assert_eq!(m.entries.len(), 50);
    });
}

#[test]
fn racing_writers_lose_nothing_local() {
    racing_writers(Fixture::local())
}

#[test]
fn racing_writers_lose_nothing_s3() {
    if let Some(f) = Fixture::s3() {
        racing_writers(f)
    }
}
