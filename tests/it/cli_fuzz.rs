//! A fuzz-style test over the command line: every flag and argument of every command (read from
//! clap's own description of `twslake`, so a new flag is fuzzed without editing this file) gets
//! hostile values — huge and negative numbers, NaN, empty and very long strings, unicode, paths
//! climbing out with `..`, impossible and future dates, URLs without a scheme or with secrets —
//! and the binary runs each against a small lake in a temporary folder, with the gateway on a
//! closed local port. No run may panic (exit 101, "panicked" on stderr), leak the secret of a
//! URL, or write anything outside the temporary folder.

use clap::CommandFactory;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The secret of the URLs among the hostile values: it must never be printed.
const SECRET: &str = "FUZZSECRETpw42";

/// Flags whose value is a local path the user chose: climbing out of the working folder is what
/// they ask for, so their `..` stay within the temporary folder (the working folder is deeper).
const PATH_FLAGS: [&str; 6] = ["lake", "out", "config", "request-log", "input", "output"];

/// Commands that serve, capture or generate until stopped or done: a run cut at its deadline is
/// expected (their bounds are checked at the start, within the deadline).
const LONG_RUNNING: [&str; 6] = ["sim", "demo", "live", "run", "stress-write", "synth-lake"];

fn hostile(marker: &str, path_flag: bool) -> Vec<String> {
    let climb = if path_flag { "../../../".to_string() } else { "../".repeat(12) };
    let mut v: Vec<String> = [
        "",
        " ",
        "-1",
        "0",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551616",
        "1e308",
        "-1e308",
        "NaN",
        "inf",
        "4.9e-324",
        "ünïcødé 🦀 ÆØÅ",
        "0000-00-00",
        "9999-12-31",
        "2099-01-01",
        "1900-01-01",
        "+262142-12-31",
        "localhost:9000",
        "file://",
        "s3://",
        "99999999999h",
        "1 day/TRADES/4294967295",
        "a,,b,",
        "-",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("x".repeat(10_000));
    v.push(format!("{climb}{marker}"));
    v.push(format!("http://fuzzuser:{SECRET}@127.0.0.1:1/x"));
    v
}

/// A usable value for a required argument, so that the fuzzed one is what is tested.
fn baseline(id: &str, dir: &Path) -> String {
    match id {
        "symbols" | "symbol" => "SPY".into(),
        "query" => "SELECT symbol, count(*) AS n FROM equity_bars GROUP BY symbol".into(),
        "at" => "2024-11-22 10:30".into(),
        "input" => dir.join("in.csv").display().to_string(),
        "output" => dir.join("out.csv").display().to_string(),
        _ => "1".into(),
    }
}

struct Case {
    args: Vec<String>,
    long_running: bool,
}

/// Every (command path, argument) pair with a few hostile values each, chosen by a fixed seed.
fn cases(dir: &Path, marker: &str) -> Vec<Case> {
    let mut rng = StdRng::seed_from_u64(20_261_202);
    let mut out = Vec::new();
    let root = twslake::cli::Cli::command();
    let mut stack: Vec<(Vec<String>, clap::Command)> =
        root.get_subcommands().map(|c| (vec![c.get_name().to_string()], c.clone())).collect();
    while let Some((path, cmd)) = stack.pop() {
        for sub in cmd.get_subcommands() {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            stack.push((p, sub.clone()));
        }
        let args: Vec<&clap::Arg> = cmd
            .get_arguments()
            .filter(|a| a.get_action().takes_values() && !["help", "version"].contains(&a.get_id().as_str()))
            .collect();
        let long_running = LONG_RUNNING.contains(&path[0].as_str()) && path.len() == 1;
        for target in &args {
            let id = target.get_id().as_str();
            let name = target.get_long().unwrap_or(id);
            let values = hostile(marker, PATH_FLAGS.contains(&name));
            // Always the largest integer and NaN (the panics seen so far), plus two at random.
            let mut chosen = vec![values[4].clone(), values[9].clone()];
            chosen.extend(values.choose_multiple(&mut rng, 2).cloned());
            for value in chosen {
                let mut argv = path.clone();
                let mut positionals: Vec<&&clap::Arg> = args.iter().filter(|a| a.is_positional()).collect();
                positionals.sort_by_key(|a| a.get_index());
                for a in positionals {
                    if a.get_id() == target.get_id() {
                        argv.push(value.clone());
                    } else if a.is_required_set() {
                        argv.push(baseline(a.get_id().as_str(), dir));
                    }
                }
                for a in args.iter().filter(|a| !a.is_positional() && a.is_required_set()) {
                    if a.get_id() != target.get_id() {
                        argv.push(format!("--{}", a.get_long().unwrap_or(a.get_id().as_str())));
                        argv.push(baseline(a.get_id().as_str(), dir));
                    }
                }
                if !target.is_positional() {
                    // `--flag=value`: a value starting with `-` stays a value.
                    argv.push(format!("--{name}={value}"));
                }
                if path == ["sim"] && name != "listen" {
                    argv.push("--listen=127.0.0.1:0".into());
                }
                out.push(Case { args: argv, long_running });
            }
        }
    }
    out
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    secs: f64,
}

fn run(case: &Case, cwd: &Path, env: &[(&str, String)], logs: &Path, n: usize) -> Outcome {
    let (out_path, err_path) = (logs.join(format!("{n}.out")), logs.join(format!("{n}.err")));
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_twslake"))
        .args(&case.args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = if case.long_running { Duration::from_secs(3) } else { Duration::from_secs(20) };
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if t0.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    Outcome { code, stdout: read(&out_path), stderr: read(&err_path), secs: t0.elapsed().as_secs_f64() }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_flag_value_panics_leaks_or_writes_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let lake_dir = dir.join("lake");
    let lake = twslake::Lake::open(lake_dir.to_str().unwrap()).unwrap();
    twslake::lake::example::write_example(&lake).await.unwrap();
    std::fs::write(dir.join("in.csv"), "price,forward,strike,t,right\n1.0,100,100,0.1,C\n").unwrap();
    // Five folders deep: a path flag's `../../../` stays inside the temporary folder.
    let cwd = dir.join("w/a/b/c/d");
    let logs = dir.join("logs");
    for d in [&cwd, &logs, &dir.join("home"), &dir.join("tmp")] {
        std::fs::create_dir_all(d).unwrap();
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let env = [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("HOME", dir.join("home").display().to_string()),
        ("TMPDIR", dir.join("tmp").display().to_string()),
        ("TWSLAKE_LAKE", lake_dir.display().to_string()),
        ("TWSLAKE_GATEWAY", closed.to_string()),
        // An S3 lake among the values must not reach the internet.
        ("AWS_ENDPOINT_URL", format!("http://{closed}")),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "fuzz".into()),
        ("AWS_SECRET_ACCESS_KEY", "fuzz-secret-key-value".into()),
    ];
    let marker = format!("twslake-fuzz-escape-{}", std::process::id());
    let cases = cases(&dir, &marker);
    assert!(cases.len() > 200, "every command's flags are enumerated: {}", cases.len());

    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let slowest = Mutex::new((0.0f64, String::new()));
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let o = run(case, &cwd, &env, &logs, i);
                let line = format!("twslake {:?}", case.args);
                let mut why = Vec::new();
                if o.code == Some(101) || o.stderr.contains("panicked") {
                    why.push("panicked");
                }
                if o.stdout.contains(SECRET) || o.stderr.contains(SECRET) || o.stderr.contains("fuzz-secret-key-value")
                {
                    why.push("printed a secret");
                }
                if o.code.is_none() && !case.long_running {
                    why.push("did not end within 20 s");
                }
                if !why.is_empty() {
                    let err: String = o.stderr.chars().take(600).collect();
                    failures.lock().unwrap().push(format!("{line}: {}\n{err}", why.join(", ")));
                }
                if !case.long_running {
                    let mut s = slowest.lock().unwrap();
                    if o.secs > s.0 {
                        *s = (o.secs, line);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{} of {} runs failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    let (secs, line) = slowest.into_inner().unwrap();
    eprintln!("{} runs; slowest {secs:.1} s: {line}", cases.len());

    // Nothing outside the temporary folder: no value climbed out to write its marker.
    let mut outside: Vec<PathBuf> = dir.ancestors().skip(1).map(|a| a.join(&marker)).collect();
    outside.push(std::env::current_dir().unwrap().join(&marker));
    for p in outside {
        assert!(std::fs::symlink_metadata(&p).is_err(), "written outside the temporary folder: {}", p.display());
    }
}
