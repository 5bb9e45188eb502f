//! What each job of the schedule does, on a fresh connection to the gateway.
//!
//! - Batch jobs (`contracts`, `chain`, `update`) connect with the run's client id + 1, do their
//!   work and disconnect: a gateway that restarted since the last job costs nothing, and one
//!   that is down fails the attempt (the runner tries again later).
//! - `contracts` and `chain` are idempotent per slot: a description fetched, or a snapshot taken,
//!   at or after the slot's start already answers it (a job killed after its request but before
//!   its journal record sends nothing on restart).
//! - `capture` connects with the run's client id and captures until the close or the run's
//!   end; connecting is retried while the session lasts, and inside the capture the feed
//!   reconnects by itself, recording the gap.

use super::{RunSettings, Runner};
use crate::domain::Symbol;
use crate::error::{Error, Result};
use crate::jobs::config::IngestConfig;
use crate::jobs::Ingest;
use crate::live::{self, LiveReport};
use crate::source::ib::{IbConfig, IbSource};
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::sync::watch;

/// An ingester on a new connection with `client_id`, sharing the run's metrics and alerts.
pub(super) async fn connect(r: &Runner, cfg: IngestConfig, client_id: i32) -> Result<Ingest<IbSource>> {
    let s: &RunSettings = &r.settings;
    let ib = IbConfig { client_id, ..s.gateway.clone() };
    let source = IbSource::connect(&ib).await.map_err(|e| Error::Gateway {
        what: format!("a connection to {}", ib.gateway),
        code: e.code,
        class: e.class,
        message: e.message.clone(),
    })?;
    let mut ingest = Ingest::new(r.lake.clone(), source, cfg, r.timing.clock());
    ingest.share_pacing(&ib.gateway);
    ingest.metrics = r.metrics.clone();
    ingest.alerts.extend(r.alerts.iter().cloned());
    ingest.progress = r.progress;
    Ok(ingest)
}

/// Runs `f` on `symbol` under its job lease (so a concurrent `update` does not ask the same).
async fn leased<T, F: std::future::Future<Output = Result<T>>>(
    ingest: &Ingest<IbSource>,
    symbol: &Symbol,
    f: F,
) -> Result<T> {
    let lease = match ingest.lake.try_lease(symbol, ingest.cfg.lease_ttl).await? {
        Ok(lease) => lease,
        Err(held) => {
            return Err(Error::Integrity(format!(
                "{symbol} is being ingested by another process ({}); tried again later",
                held.holder
            )))
        }
    };
    let out = f.await;
    if let Err(e) = lease.release().await {
        tracing::warn!("releasing the job lease of {symbol}: {e}");
    }
    out
}

/// The weekly refresh: every symbol's description, unless fetched since the slot began.
pub(super) async fn contracts(r: &Runner, slot_at: DateTime<Utc>) -> Result<String> {
    let mut cfg = r.settings.cfg.clone();
    cfg.policy.contracts_max_age = chrono::Duration::zero();
    let ingest = connect(r, cfg, r.settings.gateway.client_id + 1).await?;
    let mut fetched = 0;
    for symbol in &r.settings.symbols {
        let fresh = ingest.stock_contract(symbol).await?.is_some_and(|c| c.fetched_at >= slot_at);
        if !fresh {
            leased(&ingest, symbol, ingest.backfill_contracts(symbol)).await?;
            fetched += 1;
        }
    }
    Ok(format!("{fetched} of {} symbols' descriptions fetched", r.settings.symbols.len()))
}

/// A chain snapshot of every symbol, unless one was taken since the slot began.
pub(super) async fn chain(r: &Runner, slot_at: DateTime<Utc>) -> Result<String> {
    let mut cfg = r.settings.cfg.clone();
    cfg.policy.chain_max_age = chrono::Duration::zero();
    let ingest = connect(r, cfg, r.settings.gateway.client_id + 1).await?;
    let mut taken = 0;
    for symbol in &r.settings.symbols {
        if ingest.latest_chain_at(symbol).await?.is_some_and(|at| at >= slot_at) {
            continue;
        }
        let work = async {
            if ingest.stock_contract(symbol).await?.is_none() {
                ingest.backfill_contracts(symbol).await?;
            }
            ingest.contracts_snapshot(symbol).await
        };
        leased(&ingest, symbol, work).await?;
        taken += 1;
    }
    Ok(format!("{taken} of {} symbols' chains snapshotted", r.settings.symbols.len()))
}

/// The end-of-day update of every symbol; a symbol that failed, or a request that did, fails
/// the attempt (the next attempt asks only what is still missing).
///
/// Each symbol is updated with its scope as stored in the lake at that moment (so a `twslake
/// scope --set` between two slots acts at the next), over the run's settings; symbols without a
/// stored scope use the run's settings. Symbols with the same settings share one pass.
pub(super) async fn update(r: &Runner) -> Result<String> {
    let scopes = crate::jobs::scope::load(&r.lake).await?;
    let groups = crate::jobs::scope::groups(r.settings.symbols.iter().map(|s| {
        (s.clone(), scopes.get(s).map_or_else(|| r.settings.cfg.clone(), |scope| scope.config(&r.settings.cfg)))
    }));
    let mut ingest = connect(r, r.settings.cfg.clone(), r.settings.gateway.client_id + 1).await?;
    let mut report = crate::jobs::orchestrator::RunReport::default();
    for (c, members) in groups {
        ingest.reconfigure(c);
        report.symbols.append(&mut ingest.update(&members).await.symbols);
    }
    let failed: Vec<String> = report
        .symbols
        .iter()
        .filter(|s| s.error.is_some() || s.equity.failed > 0 || s.options.failed > 0)
        .map(|s| format!("{}: {}", s.symbol, s.error.clone().unwrap_or_else(|| "requests failed".into())))
        .collect();
    if !failed.is_empty() {
        return Err(Error::Integrity(format!("update incomplete: {}", failed.join("; "))));
    }
    let rows: u64 = report.symbols.iter().map(|s| s.equity.rows + s.options.rows).sum();
    let sent: u64 = report.symbols.iter().map(|s| s.equity.sent + s.options.sent).sum();
    Ok(format!("{} symbols, {sent} bar requests, {rows} rows", report.symbols.len()))
}

/// What one capture slot did, over all its connections.
#[derive(Debug, Default, Clone)]
pub(super) struct CaptureTotals {
    pub started: bool,
    pub ticks: u64,
    pub rows: u64,
    pub gaps: u64,
    pub attempts: u32,
    pub last_error: Option<String>,
}

impl CaptureTotals {
    fn add(&mut self, r: &LiveReport) {
        self.started |= r.started;
        self.ticks += r.ticks;
        self.rows += r.rows;
        self.gaps += r.gaps;
    }
}

/// Captures until `stop` turns true (the close, or the run's end), connecting again after
/// `reconnect` whenever the gateway cannot be reached or the capture fails.
pub(super) async fn capture(r: std::sync::Arc<Runner>, mut stop: watch::Receiver<bool>) -> CaptureTotals {
    let mut totals = CaptureTotals::default();
    let mut opts = r.settings.live.clone();
    // The schedule takes the chain snapshots; the capture's own check waits longer than a session.
    opts.chain_every = Duration::from_secs(86_400);
    let stopped = |s: &watch::Receiver<bool>| *s.borrow() || s.has_changed().is_err();
    while !stopped(&stop) {
        totals.attempts += 1;
        let connected = tokio::select! {
            c = connect(&r, r.settings.cfg.clone(), r.settings.gateway.client_id) => c,
            _ = stop.wait_for(|s| *s) => break,
        };
        // The capture watches `stop` itself, and flushes before it returns.
        let outcome = match connected {
            Ok(ingest) => live::run(&ingest, &r.settings.symbols, &opts, stop.clone()).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(report) => totals.add(&report),
            Err(e) => {
                if totals.last_error.is_none() {
                    r.say(format!("capture: {e}; connecting again every {:?} until the close", r.settings.reconnect));
                }
                totals.last_error = Some(e.to_string());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(r.settings.reconnect) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    totals
}

/// Runs [`capture`] on a thread of its own (a current-thread runtime): the capture's futures
/// are not `Send` for every lifetime, so it cannot be a task of the run's runtime. Dropping
/// `abort`'s sender ends it at once, as a kill would (no flush); `stop` ends it cleanly.
pub(super) fn spawn_capture(
    r: std::sync::Arc<Runner>,
    stop: watch::Receiver<bool>,
    abort: tokio::sync::oneshot::Receiver<()>,
    finished: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::sync::oneshot::Receiver<CaptureTotals> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                let totals = CaptureTotals {
                    last_error: Some(format!("cannot start the capture's runtime: {e}")),
                    ..Default::default()
                };
                finished.store(true, std::sync::atomic::Ordering::SeqCst);
                let _ = tx.send(totals);
                return;
            }
        };
        rt.block_on(async move {
            tokio::select! {
                totals = capture(r, stop) => {
                    finished.store(true, std::sync::atomic::Ordering::SeqCst);
                    let _ = tx.send(totals);
                }
                _ = abort => {}
            }
        });
    });
    rx
}
