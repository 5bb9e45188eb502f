//! The webhook alert sink: each alert is POSTed as JSON `{severity, symbol, message, time}`.
//!
//! [`AlertSink::send`] only puts the alert in a bounded channel (a full channel drops the alert
//! and counts it: capture must never wait on a slow receiver); a background task delivers with
//! retries and backoff. Plain `http://` only, written by hand on tokio: one POST does not need an
//! HTTP client stack.

use crate::monitor::{Alert, AlertSink};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Alerts waiting for delivery at most.
const QUEUE: usize = 256;
/// Attempts per alert.
const ATTEMPTS: u32 = 5;

/// Sends alerts to an HTTP endpoint in the background.
pub struct WebhookSink {
    tx: mpsc::Sender<Alert>,
    /// Alerts dropped because the queue was full.
    pub dropped: Arc<AtomicU64>,
    /// Alerts delivered (2xx).
    pub delivered: Arc<AtomicU64>,
}

/// Where to POST: host, port and path of an `http://` URL.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    host: String,
    port: u16,
    path: String,
}

fn target(url: &str) -> Result<Target, String> {
    let u = url::Url::parse(url).map_err(|e| format!("bad webhook URL {url}: {e}"))?;
    if u.scheme() != "http" {
        return Err(format!("webhook URL {url}: only http:// is supported"));
    }
    let host = u.host_str().ok_or_else(|| format!("webhook URL {url} has no host"))?.to_string();
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    Ok(Target { host, port: u.port().unwrap_or(80), path })
}

impl WebhookSink {
    /// A sink posting to `url`; spawns its delivery task on the current tokio runtime.
    pub fn new(url: &str) -> Result<Self, String> {
        let t = target(url)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let delivered = Arc::new(AtomicU64::new(0));
        tokio::spawn(deliver(t, rx, delivered.clone()));
        Ok(WebhookSink { tx, dropped: Arc::new(AtomicU64::new(0)), delivered })
    }
}

impl AlertSink for WebhookSink {
    fn send(&self, alert: &Alert) {
        if self.tx.try_send(alert.clone()).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn deliver(t: Target, mut rx: mpsc::Receiver<Alert>, delivered: Arc<AtomicU64>) {
    while let Some(a) = rx.recv().await {
        let body = serde_json::to_string(&a).unwrap_or_default();
        for attempt in 0..ATTEMPTS {
            match tokio::time::timeout(Duration::from_secs(10), post(&t, &body)).await {
                Ok(Ok(status)) if (200..300).contains(&status) => {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                other => {
                    tracing::warn!("webhook {}:{}{} attempt {}: {other:?}", t.host, t.port, t.path, attempt + 1);
                    tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
                }
            }
        }
    }
}

/// One POST; returns the HTTP status.
async fn post(t: &Target, body: &str) -> std::io::Result<u16> {
    let mut conn = tokio::net::TcpStream::connect((t.host.as_str(), t.port)).await?;
    let req = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        t.path,
        t.host,
        t.port,
        body.len()
    );
    conn.write_all(req.as_bytes()).await?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {line:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = target("http://127.0.0.1:9000/hook?x=1").unwrap();
        assert_eq!(t, Target { host: "127.0.0.1".into(), port: 9000, path: "/hook?x=1".into() });
        assert!(target("https://example.com/").is_err());
        assert!(target("nope").is_err());
    }
}
