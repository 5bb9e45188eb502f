//! The metrics endpoint: `GET /metrics` (any path) answers the Prometheus text.
//!
//! Hand-written on tokio's `TcpListener` on purpose: one read-only GET on loopback does not
//! justify an HTTP framework in the dependency tree (and its build time on our 2-core machines).

use super::metrics::LiveMetrics;
use crate::monitor::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves the metrics on `addr` until the returned task is aborted; returns the bound address
/// (port 0 picks a free one).
pub async fn serve(
    addr: &str,
    metrics: Arc<Metrics>,
    live: Arc<LiveMetrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_with(addr, metrics, live, Arc::new(String::new)).await
}

/// [`serve`], with more Prometheus text appended to every answer (`twslake run`'s schedule).
pub async fn serve_with(
    addr: &str,
    metrics: Arc<Metrics>,
    live: Arc<LiveMetrics>,
    extra: Arc<dyn Fn() -> String + Send + Sync>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let body = format!("{}{}{}", metrics.render(), live.render(), extra());
            tokio::spawn(answer(conn, body));
        }
    });
    Ok((local, task))
}

async fn answer(mut conn: TcpStream, body: String) {
    // Reads the request head (bounded); the body of a GET is empty.
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    while n < buf.len() {
        match tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut buf[n..])).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(k)) => n += k,
        }
        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let get = buf[..n].starts_with(b"GET ");
    let (status, body) = if get { ("200 OK", body) } else { ("405 Method Not Allowed", String::new()) };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes()).await;
    let _ = conn.write_all(body.as_bytes()).await;
    let _ = conn.shutdown().await;
}
