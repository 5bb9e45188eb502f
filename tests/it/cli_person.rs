//! The command line a person expects: shell completions, `--quiet`, progress as plain lines when
//! standard error is a pipe, and `gaps` over option bars answering for the series the lake holds.

use crate::ingest::{sim_at, AFTER_CLOSE};
use crate::support::Fixture;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_twslake");

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn completions_print_a_script_naming_the_subcommands_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = Command::new(BIN).args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for sub in ["setup", "update", "gaps", "surfaces", "completions"] {
            assert!(script.contains(sub), "{shell}'s script does not mention {sub}");
        }
        assert!(script.contains("quiet"), "{shell}'s script does not offer --quiet");
    }
    let out = Command::new(BIN).args(["completions", "tcsh"]).output().unwrap();
    assert!(!out.status.success(), "an unknown shell is refused");
    assert!(text(&out.stderr).contains("tcsh"), "the error names the input: {}", text(&out.stderr));
}

/// `twslake setup SPY` through `sim` into `lake`, small, with `extra` flags; stderr is a pipe.
fn setup(lake: &Fixture, gateway: &str, state: &std::path::Path, client_id: i32, extra: &[&str]) -> Output {
    let out = Command::new(BIN)
        .args(["setup", "SPY", "--lake", &lake.url, "--gateway", gateway, "--client-id", &client_id.to_string()])
        .args(["--equity", "1 day/TRADES/5", "--equity", "1 min/TRADES/2", "--option-series", "1 min/MIDPOINT"])
        .args(["--expiry-days", "20", "--strike-band", "0.02", "--max-contracts", "6", "--option-sessions", "2"])
        .args(["--pacing-scale", "1000", "--as-of", AFTER_CLOSE, "--config", "none.toml"])
        .args(extra)
        .env("TWSLAKE_STATE_DIR", state)
        .env_remove("TWSLAKE_GATEWAY")
        .envs(lake.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "setup {extra:?}: {}\n{}", text(&out.stdout), text(&out.stderr));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_prints_no_progress_and_a_pipe_gets_plain_lines() {
    let sim = sim_at(AFTER_CLOSE).await;
    let state = tempfile::tempdir().unwrap();
    let (loud_lake, quiet_lake) = (Fixture::local(), Fixture::local());
    let addr = sim.address();
    let (s1, s2) = (state.path().to_path_buf(), state.path().to_path_buf());
    let (loud, quiet) = tokio::task::spawn_blocking(move || {
        (setup(&loud_lake, &addr, &s1, 601, &[]), setup(&quiet_lake, &addr, &s2, 602, &["--quiet"]))
    })
    .await
    .unwrap();
    let (loud_err, quiet_err) = (text(&loud.stderr), text(&quiet.stderr));
    // Standard error is a pipe here: progress comes as today's plain lines, never a bar.
    assert!(loud_err.contains("contracts    1 request"), "plain progress lines: {loud_err}");
    assert!(!loud_err.contains('\u{1b}') && !loud_err.contains("ETA"), "no bar drawn into a pipe: {loud_err}");
    assert!(!quiet_err.contains("contracts") && !quiet_err.contains("requests"), "--quiet: {quiet_err}");
    // The summary still comes, the same in both.
    assert!(!text(&quiet.stdout).trim().is_empty(), "--quiet keeps the final summary");
}

fn gaps_json(lake: &Fixture) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["gaps", "SPY", "--lake", &lake.url, "--dataset", "option_bars", "--from", "2026-10-01"])
        .args(["--to", "2026-11-24", "--json"])
        .envs(lake.env())
        .output()
        .unwrap();
    assert!(out.status.success(), "gaps: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The files of the day partitions of option bars on `date` under a local lake.
fn option_partition_files(root: &std::path::Path, date: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let s = p.to_string_lossy();
                if s.contains("option_bars") && s.contains(date) && s.ends_with(".parquet") {
                    out.push(p);
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_of_option_bars_answer_for_the_held_series_per_contract() {
    let sim = sim_at(AFTER_CLOSE).await;
    let state = tempfile::tempdir().unwrap();
    let lake = Fixture::local();
    let (addr, st) = (sim.address(), state.path().to_path_buf());
    let lake = tokio::task::spawn_blocking(move || {
        setup(&lake, &addr, &st, 611, &["--quiet"]);
        lake
    })
    .await
    .unwrap();
    let doc = gaps_json(&lake);
    assert_eq!(doc["bar_size"], "1 min", "{doc:#}");
    assert_eq!(doc["what_to_show"], "MIDPOINT", "{doc:#}");
    let contracts = doc["contracts"].as_array().unwrap();
    assert!(!contracts.is_empty(), "the selection's contracts: {doc:#}");
    assert_eq!(doc["missing_contract_days"], 0, "a complete setup misses nothing: {doc:#}");
    // Each contract is expected only on the sessions it was asked for (2 here), not a year.
    assert!(contracts.iter().all(|c| c["asked_days"].as_u64().unwrap() <= 2), "{doc:#}");

    // One option partition gone: its contract-days are missing, nothing else.
    let day = "2026-11-24";
    let files = option_partition_files(std::path::Path::new(&lake.url), day);
    assert!(!files.is_empty(), "an option partition of {day}");
    for f in &files {
        std::fs::remove_file(f).unwrap();
    }
    let doc = gaps_json(&lake);
    let missing = doc["missing_contract_days"].as_u64().unwrap();
    let contracts = doc["contracts"].as_array().unwrap();
    assert!(missing > 0 && missing as usize <= contracts.len(), "one day per contract at most: {doc:#}");
    for c in contracts {
        for w in c["windows"].as_array().unwrap() {
            assert_eq!((w["start"].as_str(), w["end"].as_str()), (Some(day), Some(day)), "{doc:#}");
        }
    }
    // The table says the same, with its total.
    let out = Command::new(BIN)
        .args(["gaps", "SPY", "--lake", &lake.url, "--dataset", "option_bars", "--from", "2026-10-01"])
        .args(["--to", "2026-11-24"])
        .output()
        .unwrap();
    let table = text(&out.stdout);
    assert!(table.contains(&format!("total: {missing} missing contract-days")), "{table}");
    assert!(table.contains("1 min MIDPOINT"), "{table}");
}
