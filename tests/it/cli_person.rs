//! The command line a person expects: shell completions, `--quiet`, progress as plain lines when
//! standard error is a pipe.

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
