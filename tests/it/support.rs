//! Fixtures shared by the integration tests: lakes on the local file system and on S3.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use twslake::calendar;
use twslake::datasets::equity_bars::Bar;
use twslake::domain::{BarSize, Series, WhatToShow};
use twslake::Lake;

/// The S3 server the test command started (moto on loopback), or `None` with a message when
/// none is set: `cargo test` run by hand skips the S3 half (as object_store's suites do), while
/// the README's test command always starts one and sets `TWSLAKE_TEST_S3_ENDPOINT`.
pub fn s3_endpoint() -> Option<String> {
    let endpoint = std::env::var("TWSLAKE_TEST_S3_ENDPOINT").ok();
    if endpoint.is_none() {
        eprintln!(
            "skipped: the S3 half of the storage suite needs an S3 server; run the README's test command \
             (`bash scripts/test.sh`, which starts moto on loopback), or set TWSLAKE_TEST_S3_ENDPOINT"
        );
    }
    endpoint
}

fn create_bucket(endpoint: &str, bucket: &str) {
    let hostport = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(hostport).expect("connect to the S3 server");
    let req = format!("PUT /{bucket} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200") || resp.starts_with("HTTP/1.0 200"), "bucket creation: {resp}");
}

/// A fresh, empty lake.
pub struct Fixture {
    pub url: String,
    pub s3: Vec<(String, String)>,
    pub name: &'static str,
    _dir: Option<tempfile::TempDir>,
}

static BUCKETS: AtomicU32 = AtomicU32::new(0);

impl Fixture {
    pub fn local() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("lake").display().to_string();
        Fixture { url, s3: vec![], name: "local", _dir: Some(dir) }
    }

    /// A fresh bucket on the test S3 server, or `None` when none is set ([`s3_endpoint`]).
    pub fn s3() -> Option<Self> {
        let endpoint = s3_endpoint()?;
        let n = BUCKETS.fetch_add(1, Ordering::SeqCst);
        let bucket = format!("t{}-{}-{n}", std::process::id(), Utc::now().timestamp_micros() % 1_000_000_000);
        create_bucket(&endpoint, &bucket);
        let s3 = [
            ("aws_endpoint_url", endpoint.as_str()),
            ("aws_region", "us-east-1"),
            ("aws_access_key_id", "test"),
            ("aws_secret_access_key", "test"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Some(Fixture { url: format!("s3://{bucket}/lake"), s3, name: "s3", _dir: None })
    }

    pub fn lake(&self) -> Lake {
        let pairs: Vec<(&str, &str)> = self.s3.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Lake::builder(&self.url).s3_options(&pairs).open().unwrap()
    }

    /// Environment for a child `twslake` process to reach the same lake.
    pub fn env(&self) -> Vec<(String, String)> {
        self.s3.iter().map(|(k, v)| (k.to_uppercase(), v.clone())).collect()
    }
}

pub fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub const DAILY: Series = Series { bar_size: BarSize::Day1, what_to_show: WhatToShow::Trades };

/// One daily bar per trading day of `days`, priced from the date.
pub fn daily_bars(days: &[NaiveDate], ingested_at: DateTime<Utc>) -> Vec<Bar> {
    days.iter()
        .map(|day| {
            let p = 100.0 + (day.num_days_from_ce() % 97) as f64;
            Bar {
                ts: calendar::session(*day).unwrap().open,
                date: *day,
                series: DAILY,
                open: p,
                high: p + 1.0,
                low: p - 1.0,
                close: p + 0.25,
                volume: Some(1000.0),
                wap: Some(p),
                bar_count: Some(10),
                ingested_at,
            }
        })
        .collect()
}

/// Minute bars of one session.
pub fn minute_bars(day: NaiveDate, n: i64, ingested_at: DateTime<Utc>) -> Vec<Bar> {
    let open = calendar::session(day).unwrap().open;
    (0..n)
        .map(|m| Bar {
            ts: open + Duration::minutes(m),
            date: day,
            series: Series { bar_size: BarSize::Min1, what_to_show: WhatToShow::Trades },
            open: 10.0,
            high: 11.0,
            low: 9.0,
            close: 10.5,
            volume: None,
            wap: None,
            bar_count: None,
            ingested_at,
        })
        .collect()
}

use chrono::Datelike;

/// Runs the `twslake` binary with `args`, returning (exit code, stdout, stderr).
pub fn twslake(args: &[&str], env: &[(String, String)]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_twslake"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}
