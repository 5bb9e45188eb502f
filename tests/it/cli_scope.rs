//! The lake's scope (issue 14): `setup` records what it was asked for, a plain `update` keeps to
//! it (no request when nothing is due), `twslake scope --set` changes it with a recorded change
//! that the next `update` acts on, concurrent changes are all kept, bad keys and values change
//! nothing, and a lake without a scope still updates as before.

use crate::ingest::{historical, sim_at, AFTER_CLOSE};
use crate::support::Fixture;
use serde_json::Value;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_twslake");
/// Four sessions back from Tuesday 2026-11-24: Thu 19, Fri 20, Mon 23, Tue 24.
const FROM: &str = "2026-11-19";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `twslake ARGS --lake …` with the test's actor, the state folder and the lake's environment.
fn twslake(lake: &Fixture, state: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .args(["--lake", &lake.url])
        .env("TWSLAKE_STATE_DIR", state)
        .env("TWSLAKE_ACTOR", "tester@ci")
        .env_remove("TWSLAKE_GATEWAY")
        .envs(lake.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what}: {}\n{}", text(&out.stdout), text(&out.stderr));
    out
}

/// `setup` or `update` of SPY through the simulator, frozen after Tuesday's close, with `extra`.
fn ingest(lake: &Fixture, state: &std::path::Path, gateway: &str, cmd: &str, extra: &[&str]) -> Output {
    let mut args = vec![cmd, "SPY", "--gateway", gateway, "--pacing-scale", "1000", "--as-of", AFTER_CLOSE];
    args.extend(["--config", "none.toml"]);
    args.extend(extra);
    ok(twslake(lake, state, &args), &format!("{cmd} {extra:?}"))
}

/// The small setup: daily bars from [`FROM`], one-minute bars of 2 sessions, 6 options of 2 sessions.
const SETUP: [&str; 14] = [
    "--from",
    FROM,
    "--equity",
    "1 day/TRADES/1260",
    "--equity",
    "1 min/TRADES/2",
    "--option-series",
    "1 min/MIDPOINT",
    "--expiry-days",
    "20",
    "--strike-band",
    "0.02",
    "--max-contracts",
    "6",
];

fn scope_json(lake: &Fixture, state: &std::path::Path) -> Value {
    let out = ok(twslake(lake, state, &["scope", "SPY", "--json", "--config", "none.toml"]), "scope --json");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn history(lake: &Fixture, state: &std::path::Path) -> Vec<Value> {
    let out = ok(twslake(lake, state, &["scope", "SPY", "--history", "--json"]), "scope --history");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every file under a local lake, with its bytes.
fn files(root: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.to_string_lossy().contains("_locks") {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_keeps_to_the_scope_setup_recorded_and_acts_on_its_changes() {
    let sim = std::sync::Arc::new(sim_at(AFTER_CLOSE).await);
    let (lake, state) = (Fixture::local(), tempfile::tempdir().unwrap());
    let (gw, sim2) = (sim.address(), sim.clone());
    let lake = tokio::task::spawn_blocking(move || {
        let (sim, state) = (sim2, state.path());
        ingest(&lake, state, &gw, "setup", &SETUP);
        let after_setup = historical(&sim).len();
        assert!(after_setup > 0, "setup fetched bars");

        // What setup was asked for is stored, who and through which command.
        let s = scope_json(&lake, state);
        assert_eq!(s["scope"]["from"], FROM, "{s}");
        assert_eq!(s["scope"]["equity"], serde_json::json!(["1 day/TRADES/1260", "1 min/TRADES/2"]));
        assert_eq!(s["scope"]["max_contracts"], 6);
        assert_eq!(s["actor"], "tester@ci");
        assert!(s["command"].as_str().unwrap().contains("setup SPY"), "{s}");

        // A plain update with nothing due asks for no bars (without the scope: five years of
        // daily bars, ten sessions of minute bars and 200 option contracts).
        let out = ingest(&lake, state, &gw, "update", &[]);
        let asked: Vec<_> = historical(&sim).into_iter().skip(after_setup).collect();
        assert!(asked.is_empty(), "a plain update asked {} bar requests: {asked:?}", asked.len());
        assert!(!text(&out.stderr).contains("no stored scope"), "{}", text(&out.stderr));

        // A series added to the scope: the next update fetches exactly it.
        let set = ["scope", "SPY", "--set", "equity+=5 mins/TRADES/3"];
        ok(twslake(&lake, state, &set), "scope --set equity");
        let s = scope_json(&lake, state);
        assert_eq!(s["scope"]["equity"][2], "5 mins/TRADES/3", "{s}");
        assert_eq!(s["scope"]["from"], FROM, "other keys kept");
        let before = historical(&sim).len();
        ingest(&lake, state, &gw, "update", &[]);
        let asked: Vec<_> = historical(&sim).into_iter().skip(before).collect();
        assert!(!asked.is_empty(), "the added series is fetched");
        for r in &asked {
            assert_eq!(
                (r.bar_size.as_deref(), r.what_to_show.as_deref(), r.sec_type.as_deref()),
                (Some("5 mins"), Some("TRADES"), Some("STK")),
                "only the added series: {r:?}"
            );
        }

        // The history start widened by two sessions: the next update fetches daily bars only.
        ok(twslake(&lake, state, &["scope", "SPY", "--set", "from=2026-11-17"]), "scope --set from");
        let before = historical(&sim).len();
        ingest(&lake, state, &gw, "update", &[]);
        let asked: Vec<_> = historical(&sim).into_iter().skip(before).collect();
        assert!(!asked.is_empty(), "the widened daily window is fetched");
        assert!(asked.iter().all(|r| r.bar_size.as_deref() == Some("1 day")), "only daily bars: {asked:?}");
        let before = historical(&sim).len();
        ingest(&lake, state, &gw, "update", &[]);
        assert_eq!(historical(&sim).len(), before, "and then nothing again");

        // Flags override the scope for one run only, unless --save-scope.
        let out = ingest(&lake, state, &gw, "update", &["--expiry-days", "10"]);
        assert!(text(&out.stderr).contains("this run only"), "{}", text(&out.stderr));
        assert_eq!(scope_json(&lake, state)["scope"]["expiry_days"], 20);
        ingest(&lake, state, &gw, "update", &["--expiry-days", "10", "--save-scope"]);
        assert_eq!(scope_json(&lake, state)["scope"]["expiry_days"], 10);

        // Every change is in the log: who, what (old -> new), through which command.
        let h = history(&lake, state);
        assert_eq!(h.len(), 4, "setup, two --set, one --save-scope: {h:?}");
        let widened = &h[2];
        assert_eq!(widened["changes"], serde_json::json!([{ "key": "from", "old": FROM, "new": "2026-11-17" }]));
        assert_eq!(widened["actor"], "tester@ci");
        assert!(widened["command"].as_str().unwrap().contains("--set from=2026-11-17"), "{widened}");
        let plain = ok(twslake(&lake, state, &["scope", "SPY", "--history"]), "history table");
        assert!(text(&plain.stdout).contains("from") && text(&plain.stdout).contains("2026-11-19 -> 2026-11-17"));

        // Bad keys and values are refused, naming them and what is allowed; nothing is written.
        let root = std::path::PathBuf::from(&lake.url);
        let before = files(&root);
        for (set, names, allowed) in [
            ("colour=blue", "colour", "known keys"),
            ("expiry_days=-5", "expiry_days", "0 to 3650"),
            ("strike_band=2", "strike_band", "between 0 and 1"),
            ("option_series=7 mins/MIDPOINT", "option_series", "7 mins"),
            ("from=2999-01-01", "from", "1970-01-01"),
            ("max_contracts", "max_contracts", "KEY=VALUE"),
        ] {
            let out = twslake(&lake, state, &["scope", "SPY", "--set", "option_sessions=4", "--set", set]);
            let err = text(&out.stderr);
            assert!(!out.status.success(), "{set} refused");
            assert!(err.contains(names) && err.contains(allowed), "{set}: {err}");
        }
        let out = twslake(&lake, state, &["scope", "SPY", "--unset", "nope"]);
        assert!(!out.status.success() && text(&out.stderr).contains("nope"));
        assert!(files(&root) == before, "a refused change writes nothing");
        assert_eq!(scope_json(&lake, state)["scope"]["option_sessions"], 5);
        lake
    })
    .await
    .unwrap();
    drop(lake);
}

/// Several processes change one symbol's scope at once: every change is kept, in the log and in
/// the scope, on the local file system and (when the test command started one) on S3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scope_changes_lose_nothing() {
    let lakes: Vec<Fixture> = std::iter::once(Fixture::local()).chain(Fixture::s3()).collect();
    let state = tempfile::tempdir().unwrap();
    let sets = [
        "expiry_days=33",
        "max_contracts=77",
        "option_sessions=3",
        "strike_band=0.04",
        "chain_max_age_minutes=90",
        "contracts_max_age_hours=48",
        "chain_prerequisite_age_hours=12",
    ];
    for lake in &lakes {
        let st = state.path();
        std::thread::scope(|s| {
            let runs: Vec<_> = sets
                .iter()
                .map(|set| s.spawn(move || ok(twslake(lake, st, &["scope", "SPY", "--set", set]), set)))
                .collect();
            for r in runs {
                r.join().unwrap();
            }
        });
        let h = history(lake, st);
        assert_eq!(h.len(), sets.len(), "{}: one record per change: {h:?}", lake.name);
        let seqs: Vec<u64> = h.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (1..=sets.len() as u64).collect::<Vec<_>>(), "{}", lake.name);
        let scope = &scope_json(lake, st)["scope"];
        for set in sets {
            let (k, v) = set.split_once('=').unwrap();
            assert_eq!(scope[k].to_string(), v, "{}: {k} kept in {scope}", lake.name);
            let logged = |r: &Value| {
                r["changes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["key"] == k && c["new"] == serde_json::from_str::<Value>(v).unwrap())
            };
            assert!(h.iter().any(logged), "{}: {k} in the log", lake.name);
        }
    }
}

/// A lake set up before scopes were stored (no scope record) updates as before, says so once,
/// and records nothing unless asked to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_without_a_scope_still_updates() {
    let sim = std::sync::Arc::new(sim_at(AFTER_CLOSE).await);
    let (lake, state) = (Fixture::local(), tempfile::tempdir().unwrap());
    let (gw, s2) = (sim.address(), sim.clone());
    let lake = tokio::task::spawn_blocking(move || {
        let st = state.path();
        ingest(&lake, st, &gw, "setup", &SETUP);
        // An older lake: no scope records.
        let dir = std::path::Path::new(&lake.url).join("_manifest/symbol=SPY");
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("scope-") {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        let out = twslake(&lake, st, &["scope", "SPY"]);
        assert_eq!(out.status.code(), Some(1), "no scope to show");
        assert!(text(&out.stderr).contains("no stored scope"));
        let before = historical(&s2).len();
        let out = ingest(&lake, st, &gw, "update", &SETUP);
        let err = text(&out.stderr);
        assert_eq!(err.matches("no stored scope for SPY").count(), 1, "said once: {err}");
        assert_eq!(historical(&s2).len(), before, "the same settings as before: nothing due");
        assert!(history(&lake, st).is_empty(), "a plain update records no scope");
        ingest(&lake, st, &gw, "update", &[&SETUP[..], &["--save-scope"]].concat());
        let s = scope_json(&lake, st);
        assert_eq!(s["scope"]["from"], FROM, "--save-scope records the run's settings: {s}");
        lake
    })
    .await
    .unwrap();
    drop(lake);
}

/// `live` without symbols captures the symbols with a stored scope, with their option
/// selection; without any scope it asks for symbols.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_captures_the_scoped_symbols_with_their_selection() {
    use crate::live::{prepared, syms, MIDDAY};
    let (sim, f) = prepared(MIDDAY, &syms(&["SPY"])).await;
    let state = tempfile::tempdir().unwrap();
    let gw = sim.address();
    let f = tokio::task::spawn_blocking(move || {
        let st = state.path();
        let live = |f: &Fixture| {
            let id = crate::ingest::CLIENT_IDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst).to_string();
            let args = ["live", "--gateway", &gw, "--client-id", &id, "--as-of", MIDDAY, "--for", "3s"];
            twslake(f, st, &[&args[..], &["--config", "none.toml", "--flush-every", "0.5"]].concat())
        };
        let out = live(&f);
        assert!(!out.status.success(), "no scope, no symbols named");
        assert!(text(&out.stderr).contains("no symbols"), "{}", text(&out.stderr));
        let set = ["--set", "max_contracts=2", "--set", "expiry_days=30", "--set", "strike_band=0.03"];
        ok(twslake(&f, st, &[&["scope", "SPY"][..], &set].concat()), "scope --set");
        let out = ok(live(&f), "live over the scoped symbols");
        let stdout = text(&out.stdout);
        let lines: u64 = stdout
            .split("live: ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a summary: {stdout}"));
        // SPY itself and its two options nearest the money (the default would be up to 200).
        assert!((2..=3).contains(&lines), "lines {lines}: {stdout}\n{}", text(&out.stderr));
        f
    })
    .await
    .unwrap();
    drop((f, sim));
}
