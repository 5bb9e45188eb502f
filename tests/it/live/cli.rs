//! `twslake live` as a process: SIGTERM flushes and exits cleanly; SIGKILL loses only what was
//! not flushed, and the restart duplicates nothing.

use super::*;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;

const BIN: &str = env!("CARGO_BIN_EXE_twslake");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn_live(sim: &SimHandle, lake: &str, flush: &str, metrics: Option<u16>, extra: &[&str]) -> Child {
    let id = crate::ingest::CLIENT_IDS.fetch_add(1, Ordering::SeqCst).to_string();
    let mut args = vec![
        "live",
        "SPY",
        "--lake",
        lake,
        "--gateway",
        &sim_addr(sim),
        "--client-id",
        &id,
        "--as-of",
        MIDDAY,
        "--flush-every",
        flush,
        "--expiry-days",
        "30",
        "--strike-band",
        "0.03",
        "--max-contracts",
        "4",
        "--config",
        "/nonexistent/twslake.toml",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    if let Some(p) = metrics {
        args.push("--metrics".into());
        args.push(format!("127.0.0.1:{p}"));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    Command::new(BIN).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

fn sim_addr(sim: &SimHandle) -> String {
    sim.address()
}

async fn scrape(port: u16) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await.ok()?;
    let mut s = String::new();
    c.read_to_string(&mut s).await.ok()?;
    Some(s)
}

fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn finish(child: Child) -> (i32, String, String) {
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn rows_reported(stdout: &str) -> u64 {
    let line = stdout.lines().find(|l| l.starts_with("live:")).unwrap_or_else(|| panic!("summary in {stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "rows").unwrap();
    words[i - 1].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_then_restart_loses_only_the_unflushed_and_duplicates_nothing() {
    let symbols = syms(&["SPY"]);
    let (sim, f) = prepared(MIDDAY, &symbols).await;
    let lake = f.lake();
    let port = free_port();
    let mut child = spawn_live(&sim, &f.url, "0.5", Some(port), &[]);
    // Scrapes until rows have been written for a while, then kills with no warning.
    let mut last = String::new();
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        if let Some(s) = scrape(port).await {
            if sample(&s, "twslake_live_flushes_total").unwrap_or(0.0) >= 4.0 {
                last = s;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap(); // SIGKILL
    let (code, _, stderr) = finish(child);
    assert_ne!(code, 0);
    let written = sample(&last, "twslake_live_rows_written_total").unwrap_or_else(|| panic!("{stderr}")) as usize;
    assert!(written > 0);
    assert!(sample(&last, "twslake_live_lag_seconds").unwrap() < 5.0, "tick-to-disk lag within the bound");
    let after_kill = stored(&lake, &symbols[0]).await;
    assert!(after_kill.len() >= written, "every row reported flushed before the kill is in the lake");
    assert!(lake.validate().await.unwrap().ok(), "nothing torn");
    assert!(micro_batch_count(&lake, &symbols[0]).await > 0, "the killed capture left micro-batches");
    assert_eq!(scanned_rows(&lake, &symbols[0]).await, after_kill.len(), "the polars scan counts the same");

    // `twslake compact` folds them in: counted before and after, nothing lost.
    let out = Command::new(BIN).args(["compact", "--lake", &f.url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("compacted 1 partitions"));
    assert_eq!(micro_batch_count(&lake, &symbols[0]).await, 0);
    let compacted = stored(&lake, &symbols[0]).await;
    assert_eq!(compacted, after_kill, "compaction loses, changes and doubles nothing");
    assert_eq!(scanned_rows(&lake, &symbols[0]).await, after_kill.len());

    let child = spawn_live(&sim, &f.url, "0.5", None, &["--for", "2s"]);
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, 0, "{stderr}");
    let rows = stored(&lake, &symbols[0]).await;
    assert_eq!(rows.len() as u64, after_kill.len() as u64 + rows_reported(&stdout), "no row lost or merged away");
    let keys: std::collections::HashSet<i64> = rows.iter().map(|q| q.seq).collect();
    assert_eq!(keys.len(), rows.len(), "no duplicated row");
    assert_eq!(micro_batch_count(&lake, &symbols[0]).await, 0, "a clean exit compacts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_and_exits_cleanly() {
    let symbols = syms(&["SPY"]);
    let (sim, f) = prepared(MIDDAY, &symbols).await;
    let child = spawn_live(&sim, &f.url, "5", None, &[]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    let reported = rows_reported(&stdout);
    assert!(reported > 0, "{stdout}");
    // The flush interval (5 s) was never reached: every row is there because SIGTERM flushed.
    assert_eq!(stored(&f.lake(), &symbols[0]).await.len() as u64, reported);
    assert_eq!(micro_batch_count(&f.lake(), &symbols[0]).await, 0, "SIGTERM compacts the micro-batches");
    let files = f.lake().list(Some(&object_store::path::Path::from("quotes"))).await.unwrap();
    assert_eq!(files.len(), 1, "one file for the day: {files:?}");
}
