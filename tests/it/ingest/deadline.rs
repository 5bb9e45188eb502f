//! Every wait on the gateway has a deadline: a gateway that accepts the connection and never
//! answers (IB Gateway restarting, or waiting for a login), or one that completes the handshake
//! and then answers nothing, ends `setup`, `update` and `live` within `--timeout` + 5 s, with an
//! error naming the gateway, a non-zero exit and the lake untouched.

use super::*;
use crate::support::Fixture;
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;
use twslake::sim::Fault;

const BIN: &str = env!("CARGO_BIN_EXE_twslake");

/// A gateway that accepts every connection and never writes a byte: it reads and discards what
/// the client sends and holds the socket open. Its address.
fn silent_gateway() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 1024];
                while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// Every file under `dir` (none if it does not exist).
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// Runs the binary; (exit code, stderr, seconds taken).
fn timed_run(args: &[&str]) -> (i32, String, f64) {
    let t0 = Instant::now();
    let out = Command::new(BIN)
        .args(args)
        .args(["--config", "/nonexistent/twslake.toml"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into(), secs)
}

fn client_id() -> String {
    CLIENT_IDS.fetch_add(1, Ordering::SeqCst).to_string()
}

#[test]
fn a_silent_gateway_ends_setup_update_and_live_within_the_timeout() {
    let gw = silent_gateway();
    let f = Fixture::local();
    let timeout = 2.0;
    let commands: [&[&str]; 3] = [&["setup", "SPY"], &["update", "SPY"], &["live", "SPY"]];
    for cmd in commands {
        let id = client_id();
        let mut args = cmd.to_vec();
        args.extend(["--lake", &f.url, "--gateway", &gw, "--client-id", &id, "--timeout", "2"]);
        let (code, stderr, secs) = timed_run(&args);
        eprintln!("{}: exit {code} after {secs:.2} s", cmd[0]);
        assert_ne!(code, 0, "{}: {stderr}", cmd[0]);
        assert!(secs < timeout + 5.0, "{} took {secs:.1} s", cmd[0]);
        assert!(secs >= timeout - 0.1, "{} waited the timeout, not less: {secs:.2} s", cmd[0]);
        assert!(stderr.contains(&gw) && stderr.contains("handshake"), "{}: {stderr}", cmd[0]);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(files_under(Path::new(&f.url)), Vec::<String>::new(), "{}: the lake is untouched", cmd[0]);
    }
}

#[test]
fn live_for_ends_on_time_while_the_gateway_is_silent() {
    let gw = silent_gateway();
    let f = Fixture::local();
    let id = client_id();
    // The timeout is far longer than the run: --for alone must end it, connection included.
    let args =
        ["live", "SPY", "--lake", &f.url, "--gateway", &gw, "--client-id", &id, "--timeout", "60", "--for", "3s"];
    let (code, stderr, secs) = timed_run(&args);
    eprintln!("live --for 3s: exit {code} after {secs:.2} s");
    assert_ne!(code, 0, "nothing was captured: {stderr}");
    assert!((2.9..5.0).contains(&secs), "live --for 3s took {secs:.1} s");
    assert!(stderr.contains(&gw) && stderr.contains("nothing was captured"), "{stderr}");
    assert_eq!(files_under(Path::new(&f.url)), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_silent_gateway_fails_in_time_with_a_retryable_error() {
    let gw = silent_gateway();
    let t0 = Instant::now();
    let cfg = IbConfig { gateway: gw.clone(), client_id: 1, timeout: Duration::from_millis(800) };
    let e = IbSource::connect(&cfg).await.err().expect("no handshake, no source");
    let secs = t0.elapsed().as_secs_f64();
    assert!((0.7..2.0).contains(&secs), "connect took {secs:.2} s");
    assert_eq!(e.class, twslake::error::ErrorClass::Retry, "{e}");
    assert!(e.message.contains(&gw), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_silent_after_the_handshake_ends_setup_within_the_timeout() {
    let sim = sim_at(AFTER_CLOSE).await;
    sim.add_fault(Fault::Silent);
    let f = Fixture::local();
    let gw = sim.address();
    let id = client_id();
    let args = [
        "setup",
        "SPY",
        "--lake",
        &f.url,
        "--gateway",
        &gw,
        "--client-id",
        &id,
        "--timeout",
        "2",
        "--as-of",
        AFTER_CLOSE,
        "--pacing-scale",
        "1000",
    ];
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (code, stderr, secs) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        timed_run(&args)
    })
    .await
    .unwrap();
    eprintln!("setup, gateway silent after the handshake: exit {code} after {secs:.2} s");
    assert_ne!(code, 0, "{stderr}");
    assert!(secs < 2.0 + 5.0, "setup took {secs:.1} s");
    assert!(stderr.contains(&gw) && stderr.contains("stopped answering"), "{stderr}");
    assert!(sim.requests().iter().any(|r| r.kind == "silenced"), "the requests reached the silent gateway");
    let data: Vec<String> = files_under(Path::new(&f.url)).into_iter().filter(|p| p.ends_with(".parquet")).collect();
    assert_eq!(data, Vec::<String>::new(), "no data written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_is_not_a_silent_gateway() {
    // Only historical requests hang; the gateway answers everything else, so the run goes on
    // (each stalled request times out and is retried) and is never cut short as silent.
    let sim = sim_at(AFTER_CLOSE).await;
    sim.add_fault(Fault::Stall("historical".into()));
    let f = Fixture::local();
    let lake = f.lake();
    let mut cfg = small_config();
    cfg.attempts = 2;
    let mut run = ingest(&sim, &lake, cfg).await;
    run.source = IbSource::connect(&IbConfig {
        gateway: sim.address(),
        client_id: CLIENT_IDS.fetch_add(1, Ordering::SeqCst),
        timeout: Duration::from_millis(500),
    })
    .await
    .unwrap();
    let silenced = run.source.silenced();
    let spy = [twslake::domain::Symbol::new("SPY").unwrap()];
    let report = tokio::select! {
        e = silenced => panic!("declared silent: {e}"),
        r = run.setup(&spy) => r,
    };
    assert!(report.symbols[0].contracts_fetched, "{report:#?}");
    assert_eq!(report.symbols[0].equity.ok, 0);
    assert!(sim.requests().iter().any(|r| r.kind == "current_time"), "the gateway was probed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_silent_during_live_capture_is_a_gap_and_the_capture_goes_on() {
    use crate::live::{fast, live_config, prepared, syms, MIDDAY};
    use twslake::lake::manifest::Outcome;
    let symbols = syms(&["SPY"]);
    let (sim, f) = prepared(MIDDAY, &symbols).await;
    let lake = f.lake();
    let mut run = ingest(&sim, &lake, live_config()).await;
    run.source = IbSource::connect(&IbConfig {
        gateway: sim.address(),
        client_id: CLIENT_IDS.fetch_add(1, Ordering::SeqCst),
        timeout: Duration::from_secs(1),
    })
    .await
    .unwrap();
    let opts = twslake::live::LiveOptions { heartbeat: Duration::from_millis(300), ..fast() };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let faults = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        sim.add_fault(Fault::Silent);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        sim.clear_faults();
        tokio::time::sleep(Duration::from_millis(2000)).await;
        tx.send(true).unwrap();
    };
    let t0 = Instant::now();
    let (report, ()) = tokio::join!(twslake::live::run(&run, &symbols, &opts, rx), faults);
    let report = report.unwrap();
    eprintln!("live with a silent spell: {:.2} s, {report:?}", t0.elapsed().as_secs_f64());
    assert!(report.started && report.rows > 0, "{report:?}");
    assert!(report.gaps >= 1, "the silent spell is a gap: {report:?}");
    let m = lake.manifest(&symbols[0]).await.unwrap();
    assert!(
        m.entries.iter().any(|e| matches!(e.outcome, Outcome::Error { code: 1100, .. })),
        "the gap is recorded in the manifest"
    );
    assert!(t0.elapsed() < Duration::from_secs(9), "the run ends on time: {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_for_ends_on_time_when_the_gateway_is_silent_after_the_handshake() {
    // A lake set up the day before: live's chain snapshot is due, and the gateway never answers it.
    let symbols = crate::live::syms(&["SPY"]);
    let (sim, f) = crate::live::prepared(crate::live::MIDDAY, &symbols).await;
    sim.add_fault(Fault::Silent);
    let (gw, id, url) = (sim.address(), client_id(), f.url.clone());
    let before = files_under(Path::new(&f.url));
    let (code, stderr, secs) = tokio::task::spawn_blocking(move || {
        // The timeout is far longer than the run: --for alone must end the snapshot's wait.
        let next_day = "2026-11-25T17:00:00Z";
        timed_run(&[
            "live",
            "SPY",
            "--lake",
            &url,
            "--gateway",
            &gw,
            "--client-id",
            &id,
            "--timeout",
            "60",
            "--for",
            "3s",
            "--as-of",
            next_day,
        ])
    })
    .await
    .unwrap();
    eprintln!("live --for 3s, gateway silent after the handshake: exit {code} after {secs:.2} s");
    assert_ne!(code, 0, "nothing was captured: {stderr}");
    assert!((2.9..5.0).contains(&secs), "live --for 3s took {secs:.1} s: {stderr}");
    assert!(stderr.contains(&sim.address()) && stderr.contains("nothing was captured"), "{stderr}");
    assert!(sim.requests().iter().any(|r| r.kind == "silenced"), "live asked the silent gateway");
    assert_eq!(files_under(Path::new(&f.url)), before, "the lake is unchanged");
}
