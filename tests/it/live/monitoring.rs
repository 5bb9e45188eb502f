//! The metrics endpoint and the webhook alert sink.

use super::*;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use twslake::live::webhook::WebhookSink;

async fn http_get(addr: std::net::SocketAddr) -> String {
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    out
}

/// Parses Prometheus' text format: `# HELP`/`# TYPE` lines, and samples `name{labels} value`.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut typed = std::collections::HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let name = it.next().unwrap();
            assert!(matches!(it.next(), Some("counter" | "gauge")), "{line}");
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("sample line: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{name}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            }
        }
        assert!(typed.contains(name), "{name} has a TYPE line before its samples");
        samples.push((series.to_string(), value.parse::<f64>().unwrap_or_else(|_| panic!("value of {line}"))));
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_speaks_prometheus_text() {
    let symbols = syms(&["SPY"]);
    let (sim, f) = prepared(MIDDAY, &symbols).await;
    let run = ingest(&sim, &f.lake(), live_config()).await;
    let opts = fast();
    let (addr, server) = live::http::serve("127.0.0.1:0", run.metrics.clone(), opts.metrics.clone()).await.unwrap();
    capture_for(&run, &symbols, &opts, 1.5).await;
    let answer = http_get(addr).await;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"));
    let samples = parse_prometheus(body);
    let value = |name: &str| samples.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    assert!(value("twslake_live_ticks_received_total").unwrap() > 0.0);
    assert!(value("twslake_live_rows_written_total").unwrap() > 0.0);
    assert_eq!(value("twslake_live_subscribed_lines"), Some(5.0));
    assert!(value("twslake_live_lag_seconds").unwrap() < 5.0);
    assert!(value("twslake_live_chain_age_seconds").unwrap() >= 0.0);
    assert!(samples.iter().any(|(n, _)| n.starts_with("twslake_rows_written_total{dataset=\"quotes\"}")));
    server.abort();
}

/// A local receiver of webhook POSTs: returns their bodies as they come.
async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = c.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            assert!(head.starts_with("POST /alerts HTTP/1.1"), "{head}");
                            let _ = tx.send(serde_json::from_str(body).unwrap());
                            let _ = c.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n").await;
                            break;
                        }
                    }
                }
            });
        }
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_gets_the_stale_chain_warning() {
    let symbols = syms(&["SPY"]);
    // The prerequisites were taken on Tuesday after the close; the capture starts on Wednesday
    // after the close: the chain snapshot is 24.5 hours old.
    let (_old, f) = prepared(crate::ingest::AFTER_CLOSE, &symbols).await;
    let sim = sim_at("2026-11-25T22:00:00Z").await;
    let (url, mut bodies) = receiver().await;
    let mut run = ingest(&sim, &f.lake(), live_config()).await;
    run.alerts.push(Arc::new(WebhookSink::new(&url).unwrap()));
    capture_for(&run, &symbols, &fast(), 1.0).await;
    let warning = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(v) = bodies.recv().await {
            if v["severity"] == "WARNING" && v["message"].as_str().unwrap().contains("chain") {
                return v;
            }
        }
        panic!("receiver closed");
    })
    .await
    .expect("the WARNING arrives");
    assert_eq!(warning["symbol"], "SPY");
    assert!(warning["message"].as_str().unwrap().contains("24 hours old"), "{warning}");
    assert!(warning["time"].as_str().unwrap().starts_with("2026-11-25T22:00:00"));
}
