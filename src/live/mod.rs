//! Live capture: streaming quotes and option computations of the underlyings and of the options
//! around the money, written to the `quotes` dataset in micro-batches.
//!
//! [`run`] checks the option prerequisites like the option-bar job (a missing prerequisite is
//! counted, alerted as CRITICAL, and the symbol is captured without its options), subscribes to
//! at most [`LiveOptions::max_lines`] market-data lines (IB's limit on simultaneous lines), turns
//! every tick into the contract's quote state after it ([`book`]), and flushes every
//! [`LiveOptions::flush_every`] (at most 5 s: the most a crash can lose).
//!
//! # Storage: micro-batches beside the day partition, compacted at the end
//! Each flush writes only its new rows, one immutable micro-batch per symbol and day
//! (`quotes/symbol=S/year=Y/quotes-<date>.part-<RUN>-<SEQ>.parquet`, see
//! [`crate::lake::micro`]): its cost is that of the flush, whatever the day already holds, so
//! the loss bound holds through a trading day. Readers merge a day's file and micro-batches on
//! the primary key (con_id, ts, seq). At the end of a run (time up, SIGINT, SIGTERM) the
//! captured symbols' micro-batches are folded into their day partitions ([`crate::Lake::compact`]:
//! an atomic replace, and the micro-batches deleted only once it is visible); a run that was
//! killed leaves them in place, and the next run compacts them at its start (or
//! `twslake compact` does). During a long run, every [`LiveOptions::rollup_every`] micro-batches
//! of a day are merged into one in the background (a cost of those rows only, never the day's),
//! so readers of a day being captured open a few hundred files, not one per flush. When a
//! flush's lag still passes the bound (a storage too slow for the rate) a WARNING says so.
//!
//! `seq` continues from the largest stored in the symbol's latest partition, so a restarted
//! capture never reuses a primary key: kill and restart duplicate no row.
//!
//! # Resilience
//! A subscription that ends or fails on connectivity is taken again with backoff (the `ibapi`
//! client reconnects by itself); from the first loss to the first tick after the last restored
//! subscription is a gap, recorded in each symbol's manifest as a `quotes` entry with outcome
//! error 1100 and the window in its message, and alerted as a WARNING. The gateway's 1100
//! notice opens a gap too; 1102 (restored, data maintained) closes it, and 1101 (restored, data
//! lost: IB dropped the subscriptions) closes it and takes every subscription again.
//!
//! # Deadlines
//! The run's end (`--for`, `--until`, a signal) holds from the start: connecting, the chain
//! snapshots and the contract selection before the capture, and the scheduled snapshots and
//! reselections during it, are all cut short by it (a run that ends before the capture began
//! says so: [`LiveReport::started`]). A gateway that goes silent during the capture does not end
//! it: ticks may resume, so the capture runs to its end; a heartbeat every
//! [`LiveOptions::heartbeat`] (`--timeout` on the command line) notices the silence, which opens
//! a gap as a lost connection does, alerted and recorded when it closes.
//!
//! # Layout
//! - [`book`]: each contract's quote state, and the row each tick makes.
//! - `plan`: which lines to subscribe ([`plan()`], the option band that follows the spot) and
//!   the chain snapshots the selection rests on.
//! - `feed`: the subscriptions and the gateway's notices, turned into events for the writer;
//!   reconnects and resubscription with backoff.
//! - `writer`: the one task that owns the book: events applied, micro-batches flushed and rolled
//!   up, compaction at the end.
//! - `gap`: capture gaps, opened and closed by losses and notices, recorded and alerted.
//! - [`metrics`], [`http`]: the live gauges and the endpoint that serves them.
//! - [`webhook`]: the webhook alert sink.

pub mod book;
mod feed;
mod gap;
pub mod http;
pub mod metrics;
mod plan;
pub mod webhook;
mod writer;

pub use plan::plan;

use crate::domain::Symbol;
use crate::error::Result;
use crate::jobs::Ingest;
use crate::source::MarketData;
use metrics::LiveMetrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// IB's default limit on simultaneous market-data lines.
pub const DEFAULT_LINES: usize = 100;
/// The loss bound: no flush interval may exceed it.
pub const MAX_FLUSH: Duration = Duration::from_secs(5);

/// How a capture runs.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Simultaneous market-data lines at most (underlyings first, then options).
    pub max_lines: usize,
    /// Micro-batch interval (clamped to [`MAX_FLUSH`]).
    pub flush_every: Duration,
    /// How often the chain snapshot is checked (a snapshot is taken when the latest is older than
    /// the ingest policy's `chain_max_age`).
    pub chain_every: Duration,
    /// First reconnect delay (doubling, at most 10 s).
    pub backoff: Duration,
    /// How often the option selection is made again around the live spot (options leaving the
    /// band are unsubscribed before those entering it are subscribed: the line limit holds).
    pub reselect_every: Duration,
    /// Once a day partition has this many of the run's micro-batches, they are merged into one
    /// in the background (fewer files for readers during a long capture; 0: never).
    pub rollup_every: usize,
    /// How often the gateway is asked whether it answers at all (a gateway that goes silent
    /// sends no notice; unanswered, a capture gap opens, and closes when it answers again).
    pub heartbeat: Duration,
    /// The live gauges (shared with the metrics endpoint).
    pub metrics: Arc<LiveMetrics>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            max_lines: DEFAULT_LINES,
            flush_every: Duration::from_secs(2),
            chain_every: Duration::from_secs(4 * 3600),
            backoff: Duration::from_millis(250),
            reselect_every: Duration::from_secs(60),
            rollup_every: 150,
            heartbeat: Duration::from_secs(30),
            metrics: Arc::new(LiveMetrics::default()),
        }
    }
}

/// What a capture did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveReport {
    /// The capture began (false: the run ended before the gateway answered what the capture
    /// needs first: the chain snapshots and the contract selection).
    pub started: bool,
    /// Lines subscribed at the start.
    pub lines: usize,
    /// Ticks received.
    pub ticks: u64,
    /// Rows written.
    pub rows: u64,
    /// Gaps recorded.
    pub gaps: u64,
    /// Symbols captured without options (prerequisites missing).
    pub without_options: Vec<String>,
    /// Options subscribed or unsubscribed because the spot moved.
    pub reselected: u64,
    /// The con_ids subscribed at the end.
    pub subscribed: Vec<i64>,
    /// Micro-batches merged into larger ones during the run (see [`LiveOptions::rollup_every`]).
    pub rolled_up: usize,
    /// Micro-batches left by an earlier (killed) run and compacted at the start.
    pub compacted_at_start: usize,
    /// Micro-batches of this run compacted at its end (fewer when compaction failed: the next
    /// run or `twslake compact` folds in the rest).
    pub compacted: usize,
}

/// Captures `symbols` until `shutdown` turns true (or its sender is dropped), then flushes and
/// returns. Chain snapshots are refreshed on [`LiveOptions::chain_every`] and at the start.
pub async fn run<S: MarketData>(
    ingest: &Ingest<S>,
    symbols: &[Symbol],
    opts: &LiveOptions,
    shutdown: watch::Receiver<bool>,
) -> Result<LiveReport> {
    let before_capture = async {
        // What a killed run left; if that fails the capture goes on (readers merge micro-batches).
        let compacted_at_start = writer::compact(ingest, symbols).await.unwrap_or_else(|e| {
            tracing::warn!("compacting micro-batches left by an earlier run: {e}");
            0
        });
        plan::prepare(ingest, symbols, &opts.metrics).await?;
        let (contracts, without_options) = plan(ingest, symbols, opts.max_lines).await?;
        Ok::<_, crate::error::Error>((compacted_at_start, contracts, without_options))
    };
    // The run's end (time up, a signal) applies before the capture too: a gateway slow to answer
    // the chain snapshot or the contract selection cannot hold the run past it. What was being
    // written is left as a kill would leave it (atomic writes; the next run settles the rest).
    let mut stop = shutdown.clone();
    let (compacted_at_start, contracts, without_options) = tokio::select! {
        r = before_capture => r?,
        _ = stop.wait_for(|s| *s) => {
            ingest.say("live: the run ended before the capture began");
            return Ok(LiveReport::default());
        }
    };
    ingest.say(format!("live: {} lines for {} symbols", contracts.len(), symbols.len()));
    let report =
        LiveReport { started: true, lines: contracts.len(), without_options, compacted_at_start, ..Default::default() };
    writer::capture(ingest, symbols, opts, contracts, report, shutdown).await
}
