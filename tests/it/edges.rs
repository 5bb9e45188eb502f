//! The command line's edges, through the binary: SQL over the lake's tables only, `--out` never
//! inside the lake, dates after today refused, a closed standard output ending quietly, secrets
//! never printed, S3's answers in one line, colours only on a terminal.

use crate::support::{twslake, Fixture};
use std::process::{Command, Stdio};

fn example_lake() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("lake").display().to_string();
    let lake = twslake::Lake::open(&url).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(twslake::lake::example::write_example(&lake)).unwrap();
    (dir, url)
}

#[test]
fn sql_reads_no_file_but_the_lakes_tables() {
    let (dir, lake) = example_lake();
    let outside = dir.path().join("outside.csv");
    std::fs::write(&outside, "secret_column\n42\n").unwrap();
    for q in [
        format!("SELECT * FROM read_csv('{}')", outside.display()),
        format!("select * from (select * from READ_CSV('{}')) t", outside.display()),
        format!("WITH x AS (SELECT * FROM read_parquet('{}/lake/**/*.parquet')) SELECT * FROM x", dir.path().display()),
    ] {
        let (code, out, err) = twslake(&["sql", &q, "--lake", &lake, "--format", "csv"], &[]);
        assert_ne!(code, 0, "{q}");
        assert!(!out.contains("secret_column") && !out.contains("42"), "{q}: {out}");
        assert!(err.contains("table function") && err.contains("equity_bars"), "{q}: {err}");
    }
    let (code, out, err) =
        twslake(&["sql", "SELECT count(*) AS n FROM equity_bars", "--lake", &lake, "--format", "csv"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("n\n"), "{out}");
}

#[test]
fn sql_out_is_refused_inside_the_lake() {
    let (dir, lake) = example_lake();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&lake, &link).unwrap();
    let q = "SELECT * FROM equity_bars";
    let before = walk(std::path::Path::new(&lake));
    for out in [
        format!("{lake}/equity_bars/x.parquet"),
        format!("{lake}/new/../y.csv"),
        format!("{}/z.csv", link.display()),
        format!("{}/../lake/w.csv", dir.path().join("nowhere").display()),
    ] {
        let (code, _, err) = twslake(&["sql", q, "--lake", &lake, "--format", "csv", "--out", &out], &[]);
        assert_eq!(code, 2, "{out}: {err}");
        assert!(err.contains("--out") && err.contains("inside the lake"), "{out}: {err}");
    }
    assert_eq!(walk(std::path::Path::new(&lake)), before, "nothing written in the lake");
    let fine = dir.path().join("result.csv");
    let (code, _, err) = twslake(&["sql", q, "--lake", &lake, "--format", "csv", "--out", fine.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read_to_string(&fine).unwrap().lines().count() > 1);
}

fn walk(p: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(p).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[test]
fn dates_after_today_and_huge_numbers_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--from", "2099-01-01"], "--from"),
        (&["--expiry-days", "9223372036854775807"], "--expiry-days"),
        (&["--option-sessions", "4294967295"], "--option-sessions"),
        (&["--pacing-scale", "1e-300"], "--pacing-scale"),
    ];
    for (flags, flag) in cases {
        let mut args = vec!["setup", "SPY", "--lake", lake, "--gateway", "127.0.0.1:1"];
        args.extend_from_slice(flags);
        let (code, _, err) = twslake(&args, &[]);
        assert_eq!(code, 2, "{flags:?}: {err}");
        assert!(err.contains(flag) && !err.contains("panicked"), "{flags:?}: {err}");
    }
    let (_, _, err) = twslake(&["setup", "SPY", "--lake", lake, "--from", "2099-01-01"], &[]);
    let today = chrono::Utc::now().with_timezone(&chrono_tz::America::New_York).date_naive();
    let yesterday = today.pred_opt().unwrap();
    assert!(err.contains(&today.to_string()) || err.contains(&yesterday.to_string()), "names today: {err}");
    assert!(!std::path::Path::new(lake).exists(), "refused before anything was created");
    let (dir2, lake2) = example_lake();
    let (code, _, err) = twslake(&["gaps", "SPY", "--lake", &lake2, "--to", "9999-12-31"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--to"), "{err}");
    drop(dir2);
}

/// The reader of standard output went away before the command printed.
fn with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_twslake"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let (_dir, lake) = example_lake();
    for args in [
        vec!["status", "--json", "--lake", lake.as_str()],
        vec!["status", "--lake", lake.as_str()],
        vec!["sql", "SELECT * FROM option_bars", "--format", "csv", "--lake", lake.as_str()],
        vec!["validate", "--lake", lake.as_str()],
        vec!["sim", "truth", "SPY", "--at", "2024-11-22 10:30"],
    ] {
        let (code, err) = with_closed_stdout(&args);
        assert_eq!(code, Some(twslake::cli::EXIT_STDOUT_CLOSED), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: nothing said on stderr: {err}");
    }
}

#[test]
fn secrets_never_printed_and_no_colour_off_a_terminal() {
    const SECRET: &str = "hunter2-Secret-Pw";
    const KEY: &str = "wJalrXUtnFEMI-example-secret-KEY";
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", format!("http://someone:{SECRET}@{closed}")),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE".into()),
        ("AWS_SECRET_ACCESS_KEY", KEY.into()),
        ("TWSLAKE_LOG", "debug".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let (code, out, err) = twslake(&["status", "--lake", "s3://bucket/lake"], &env);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("DEBUG"), "log lines are written: {err}");
    assert!(!err.contains("\x1b["), "no ANSI colour in a captured stderr: {err:?}");
    for s in [SECRET, KEY] {
        assert!(!out.contains(s) && !err.contains(s), "{s} printed: {err}");
    }
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: ") && last.contains("AWS_ENDPOINT_URL"), "one line saying what to do: {last}");
    // clap's own refusals quote the value: redacted too.
    let (_, _, err) = twslake(&["setup", "--timeout", &format!("http://u:{SECRET}@h/")], &[]);
    assert!(err.contains("--timeout") && !err.contains(SECRET), "{err}");
}

#[test]
fn s3_answers_in_one_line() {
    let Some(fx) = Fixture::s3() else { return };
    let env = fx.env();
    let (code, _, err) = twslake(&["status", "--lake", "s3://no-such-bucket-twslake/lake"], &env);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(!err.contains('<'), "no XML: {err}");
    assert!(err.contains("404") && err.contains("NoSuchBucket") && err.contains("check the bucket"), "{err}");
}
