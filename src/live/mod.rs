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

pub mod book;
pub mod http;
pub mod metrics;
pub mod webhook;

use crate::calendar;
use crate::datasets::quotes::{self, Quote};
use crate::datasets::Dataset;
use crate::domain::codes::{CONNECTIVITY_LOST, RESTORED_DATA_KEPT, RESTORED_DATA_LOST};
use crate::domain::DateWindow;
use crate::domain::SecType;
use crate::domain::Symbol;
use crate::error::{Error, Result};
use crate::jobs::Ingest;
use crate::lake::layout::{MicroBatch, Partition};
use crate::lake::manifest::{Entry, Outcome, Request};
use crate::monitor::Severity;
use crate::source::errors::ErrorClass;
use crate::source::{MarketData, StreamContract, Tick};
use book::Book;
use chrono::{DateTime, Utc};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use metrics::LiveMetrics;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

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
            metrics: Arc::new(LiveMetrics::default()),
        }
    }
}

/// What a capture did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveReport {
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

/// What the subscription tasks tell the writer.
enum Event {
    Tick(usize, Tick, DateTime<Utc>),
    Lost(usize, DateTime<Utc>),
    Gone(usize),
    /// A connectivity notice: 1100 lost, 1101 restored with data lost, 1102 restored.
    Notice(i32, DateTime<Utc>),
}

/// The contracts to subscribe to, within the line limit; symbols whose option prerequisites
/// are missing get their underlying only.
pub async fn plan<S: MarketData>(
    ingest: &Ingest<S>,
    symbols: &[Symbol],
    max_lines: usize,
) -> Result<(Vec<StreamContract>, Vec<String>)> {
    let mut out = Vec::new();
    let mut without = Vec::new();
    for s in symbols {
        let stock = ingest.stock_contract(s).await?.ok_or_else(|| Error::Prerequisite {
            symbol: s.to_string(),
            missing: vec!["contract descriptions (backfill_contracts)".into()],
        })?;
        out.push(StreamContract::stock(stock.con_id, s));
    }
    out.truncate(max_lines);
    let per_symbol = max_lines.saturating_sub(out.len()) / symbols.len().max(1);
    for s in symbols {
        let pre = match ingest.option_prerequisites(s).await {
            Ok(p) => p,
            Err(Error::Prerequisite { .. }) => {
                without.push(s.to_string());
                continue;
            }
            Err(e) => return Err(e),
        };
        let expiries: BTreeSet<_> = pre.chain.iter().map(|r| r.expiration).collect();
        let mut targets = ingest.select_options(s, &expiries, pre.spot.1).await?;
        targets.truncate(per_symbol);
        out.extend(targets.iter().map(|t| StreamContract::option(s, &t.contract)));
    }
    Ok((out, without))
}

/// One past the largest `seq` stored in the latest quotes partition of any of `symbols`.
async fn next_seq<S: MarketData>(ingest: &Ingest<S>, symbols: &[Symbol]) -> Result<i64> {
    let mut next = 0;
    for s in symbols {
        let parts = ingest.lake.partitions(Dataset::Quotes, Some(s)).await?;
        let Some(last) = parts.into_iter().max_by_key(|p| p.period) else { continue };
        if let Some(d) = ingest.lake.read_partition(&last).await? {
            let max = quotes::from_batch(&d.batch).iter().map(|q| q.seq).max();
            next = next.max(max.map_or(0, |m| m + 1));
        }
    }
    Ok(next)
}

/// Captures `symbols` until `shutdown` turns true (or its sender is dropped), then flushes and
/// returns. Chain snapshots are refreshed on [`LiveOptions::chain_every`] and at the start.
pub async fn run<S: MarketData>(
    ingest: &Ingest<S>,
    symbols: &[Symbol],
    opts: &LiveOptions,
    shutdown: watch::Receiver<bool>,
) -> Result<LiveReport> {
    let lm = &opts.metrics;
    // What a killed run left; if that fails the capture goes on (readers merge micro-batches).
    let compacted_at_start = compact(ingest, symbols).await.unwrap_or_else(|e| {
        tracing::warn!("compacting micro-batches left by an earlier run: {e}");
        0
    });
    for s in symbols {
        ingest.freshness(s).await?;
        if let Err(e) = ingest.contracts_snapshot(s).await {
            tracing::warn!("{s}: chain snapshot: {e}");
        }
    }
    chain_age(ingest, symbols, lm).await?;
    let (contracts, without_options) = plan(ingest, symbols, opts.max_lines).await?;
    ingest.say(format!("live: {} lines for {} symbols", contracts.len(), symbols.len()));
    let (tx, rx) = mpsc::unbounded_channel();
    let (resub_tx, resub) = watch::channel(0u64);
    let notices = watch_notices(ingest, tx.clone(), shutdown.clone());
    let with_options: Vec<Symbol> =
        symbols.iter().filter(|s| !without_options.contains(&s.to_string())).cloned().collect();
    let mut w = Writer {
        ingest,
        opts,
        contracts: Vec::new(),
        active: HashMap::new(),
        tx,
        resub,
        book: Book::new(next_seq(ingest, symbols).await?),
        run_id: rand::random(),
        flushes: 0,
        written: BTreeMap::new(),
        rollups: Rollups(Vec::new()),
        pending: BTreeMap::new(),
        oldest: None,
        gap: None,
        lost: HashSet::new(),
        resub_tx,
        behind: false,
        with_options,
        per_symbol: opts.max_lines.saturating_sub(symbols.len()) / symbols.len().max(1),
        report: LiveReport { lines: contracts.len(), without_options, compacted_at_start, ..Default::default() },
    };
    let feeds = FuturesUnordered::new();
    for c in contracts {
        feeds.push(w.subscribe(c));
    }
    // The notices end with the run, never the run with them (a gateway may offer none).
    let notices = async {
        notices.await;
        std::future::pending::<()>().await
    };
    tokio::select! {
        written = w.consume(rx, symbols, shutdown, feeds) => written?,
        () = notices => {}
    }
    w.report.subscribed = w.active.keys().copied().collect();
    w.report.subscribed.sort_unstable();
    // Everything is flushed: fold the run's micro-batches into the day partitions. A failure
    // leaves them readable where they are; the next run (or `twslake compact`) retries.
    match compact(ingest, symbols).await {
        Ok(n) => w.report.compacted = n,
        Err(e) => tracing::warn!(
            "compacting the capture's micro-batches: {e}; they stay readable and are compacted next time"
        ),
    }
    Ok(w.report)
}

/// Compacts the quotes micro-batches of `symbols`; the number folded in.
async fn compact<S: MarketData>(ingest: &Ingest<S>, symbols: &[Symbol]) -> Result<usize> {
    let mut n = 0;
    for s in symbols {
        for c in ingest.lake.compact_all(Dataset::Quotes, Some(s)).await? {
            tracing::info!("{}: {} micro-batches compacted ({} rows)", c.partition, c.micro_batches, c.rows);
            n += c.micro_batches;
        }
    }
    Ok(n)
}

async fn chain_age<S: MarketData>(ingest: &Ingest<S>, symbols: &[Symbol], lm: &LiveMetrics) -> Result<()> {
    let mut oldest = -1;
    for s in symbols {
        if let Some(at) = ingest.latest_chain_at(s).await? {
            oldest = oldest.max((ingest.now() - at).num_seconds());
        }
    }
    lm.chain_age_secs.store(oldest, Ordering::Relaxed);
    Ok(())
}

/// Waits until shutdown is asked for (a dropped sender counts).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// How one subscription ended.
enum Ended {
    Stop,
    Lost,
    Resubscribe,
}

/// One contract's subscription, taken again after every connectivity loss (with backoff) and
/// after a 1101 notice (IB dropped the subscriptions; at once).
async fn feed<S: MarketData>(
    ingest: &Ingest<S>,
    i: usize,
    c: StreamContract,
    tx: mpsc::UnboundedSender<Event>,
    opts: &LiveOptions,
    mut shutdown: watch::Receiver<bool>,
    mut resub: watch::Receiver<u64>,
) {
    let c = &c;
    let mut attempt = 0u32;
    loop {
        if *shutdown.borrow() {
            return;
        }
        resub.mark_unchanged();
        let sub = tokio::select! {
            s = ingest.source.stream_quotes(c) => s,
            _ = stopped(&mut shutdown) => return,
        };
        let ended = match sub {
            Ok(mut ticks) => loop {
                let item = tokio::select! {
                    t = ticks.next() => t,
                    _ = resub.changed() => break Ended::Resubscribe,
                    _ = stopped(&mut shutdown) => break Ended::Stop,
                };
                match item {
                    Some(Ok(t)) => {
                        attempt = 0;
                        opts.metrics.ticks_received.fetch_add(1, Ordering::Relaxed);
                        if tx.send(Event::Tick(i, t, ingest.now())).is_err() {
                            break Ended::Stop;
                        }
                    }
                    Some(Err(e)) if e.class != ErrorClass::Connectivity && e.class != ErrorClass::Retry => {
                        return gone(&tx, i, c, &e.to_string());
                    }
                    Some(Err(_)) | None => break Ended::Lost,
                }
            },
            Err(e) if e.class != ErrorClass::Connectivity && e.class != ErrorClass::Retry => {
                return gone(&tx, i, c, &e.to_string());
            }
            Err(_) => Ended::Lost,
        };
        match ended {
            Ended::Stop => return,
            Ended::Resubscribe => continue,
            Ended::Lost => {}
        }
        let _ = tx.send(Event::Lost(i, ingest.now()));
        let wait = opts.backoff.saturating_mul(2u32.saturating_pow(attempt.min(6))).min(Duration::from_secs(10));
        attempt += 1;
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped(&mut shutdown) => return,
        }
    }
}

/// Forwards the gateway's connectivity notices (1100, 1101, 1102) to the writer.
async fn watch_notices<S: MarketData>(
    ingest: &Ingest<S>,
    tx: mpsc::UnboundedSender<Event>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut notices = match ingest.source.notices() {
        Ok(n) => n,
        Err(e) => return tracing::warn!("no connectivity notices from the gateway: {e}"),
    };
    loop {
        let n = tokio::select! {
            n = notices.next() => n,
            _ = stopped(&mut shutdown) => return,
        };
        match n {
            Some(n) if matches!(n.code, CONNECTIVITY_LOST | RESTORED_DATA_LOST | RESTORED_DATA_KEPT) => {
                tracing::warn!("gateway notice {}: {}", n.code, n.message);
                if tx.send(Event::Notice(n.code, ingest.now())).is_err() {
                    return;
                }
            }
            Some(_) => {}
            None => return,
        }
    }
}

fn gone(tx: &mpsc::UnboundedSender<Event>, i: usize, c: &StreamContract, why: &str) {
    tracing::warn!("{} con_id {}: subscription refused: {why}", c.symbol, c.con_id);
    let _ = tx.send(Event::Gone(i));
}

/// The single writer: the book, the micro-batches, the gap bookkeeping.
struct Writer<'a, S> {
    ingest: &'a Ingest<S>,
    opts: &'a LiveOptions,
    /// Every contract ever subscribed in this run; an event's index points here.
    contracts: Vec<StreamContract>,
    /// Subscribed now: con_id → (index, the feed's stop switch).
    active: HashMap<i64, (usize, watch::Sender<bool>)>,
    tx: mpsc::UnboundedSender<Event>,
    resub: watch::Receiver<u64>,
    with_options: Vec<Symbol>,
    per_symbol: usize,
    book: Book,
    /// This run's id in its micro-batches' names.
    run_id: u64,
    /// Flushes done (the `<SEQ>` of the next micro-batches).
    flushes: u64,
    /// This run's micro-batches not merged yet, by partition.
    written: BTreeMap<Partition, Vec<MicroBatch>>,
    /// Merges of micro-batches running in the background.
    rollups: Rollups,
    pending: BTreeMap<Symbol, Vec<Quote>>,
    oldest: Option<Instant>,
    gap: Option<DateTime<Utc>>,
    lost: HashSet<usize>,
    resub_tx: watch::Sender<u64>,
    /// The lag passed the loss bound once (alerted once per run).
    behind: bool,
    report: LiveReport,
}

type Feed<'a> = futures::future::BoxFuture<'a, ()>;

/// Background merges of micro-batches; a run that is dropped (killed) stops them, like a crash.
struct Rollups(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Rollups {
    fn drop(&mut self) {
        self.0.iter().for_each(|h| h.abort());
    }
}

impl<'a, S: MarketData> Writer<'a, S> {
    /// Starts a contract's feed (the caller polls it).
    fn subscribe(&mut self, c: StreamContract) -> Feed<'a> {
        let i = self.contracts.len();
        self.contracts.push(c.clone());
        let (stop_tx, stop) = watch::channel(false);
        self.active.insert(c.con_id, (i, stop_tx));
        self.opts.metrics.subscribed_lines.store(self.active.len() as u64, Ordering::Relaxed);
        let (ingest, opts, tx, resub) = (self.ingest, self.opts, self.tx.clone(), self.resub.clone());
        Box::pin(feed(ingest, i, c, tx, opts, stop, resub))
    }

    /// Stops a contract's feed; its stream is dropped, which cancels the subscription.
    fn unsubscribe(&mut self, con_id: i64) {
        if let Some((i, stop)) = self.active.remove(&con_id) {
            let _ = stop.send(true);
            self.lost.remove(&i);
        }
        self.opts.metrics.subscribed_lines.store(self.active.len() as u64, Ordering::Relaxed);
    }

    /// The live spot of a symbol: its last trade, else the middle of its quote.
    fn spot(&self, symbol: &Symbol) -> Option<f64> {
        self.active.values().map(|(i, _)| &self.contracts[*i]).find_map(|c| {
            let q = self.book.state(c.con_id).filter(|_| c.sec_type == SecType::Stock && &c.symbol == symbol)?;
            q.last.or(q.bid.zip(q.ask).map(|(b, a)| (b + a) / 2.0))
        })
    }

    /// Makes the option selection again around the live spot: what leaves the band is
    /// unsubscribed first, then what enters it is subscribed (the line limit holds throughout).
    async fn reselect(&mut self) -> Result<Vec<Feed<'a>>> {
        let mut feeds = Vec::new();
        for s in self.with_options.clone() {
            let Some(spot) = self.spot(&s) else { continue };
            let expiries: BTreeSet<_> = self.ingest.latest_chain(&s).await?.iter().map(|r| r.expiration).collect();
            let mut targets = self.ingest.select_options(&s, &expiries, spot).await?;
            targets.truncate(self.per_symbol);
            let wanted: HashSet<i64> = targets.iter().map(|t| t.contract.con_id).collect();
            let current: Vec<i64> = self
                .active
                .iter()
                .filter(|(_, (i, _))| self.contracts[*i].symbol == s && self.contracts[*i].sec_type == SecType::Option)
                .map(|(id, _)| *id)
                .collect();
            for id in current.iter().filter(|id| !wanted.contains(id)) {
                self.unsubscribe(*id);
                self.report.reselected += 1;
            }
            let entering: Vec<_> =
                targets.into_iter().filter(|t| !self.active.contains_key(&t.contract.con_id)).collect();
            for t in entering {
                self.report.reselected += 1;
                feeds.push(self.subscribe(StreamContract::option(&s, &t.contract)));
            }
        }
        Ok(feeds)
    }

    async fn consume(
        &mut self,
        mut rx: mpsc::UnboundedReceiver<Event>,
        symbols: &[Symbol],
        mut shutdown: watch::Receiver<bool>,
        mut feeds: FuturesUnordered<Feed<'a>>,
    ) -> Result<()> {
        let mut flush = tokio::time::interval(self.opts.flush_every.min(MAX_FLUSH));
        let mut chains = tokio::time::interval(self.opts.chain_every.max(Duration::from_millis(100)));
        let mut reselect = tokio::time::interval(self.opts.reselect_every.max(Duration::from_millis(100)));
        chains.tick().await;
        reselect.tick().await;
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => self.event(ev).await?,
                    None => break,
                },
                Some(()) = feeds.next(), if !feeds.is_empty() => {}
                _ = flush.tick() => self.flush().await?,
                // A failed snapshot or selection is retried at the next tick; capture goes on.
                _ = chains.tick() => {
                    if let Err(e) = self.chains(symbols).await {
                        tracing::warn!("scheduled chain snapshots: {e}");
                    }
                }
                _ = reselect.tick() => match self.reselect().await {
                    Ok(new) => new.into_iter().for_each(|f| feeds.push(f)),
                    Err(e) => tracing::warn!("option selection around the live spot: {e}"),
                },
                _ = stopped(&mut shutdown) => break,
            }
        }
        // Dropping the feeds cancels their subscriptions.
        drop(feeds);
        // Ticks already queued when shutdown came are kept.
        while let Ok(ev) = rx.try_recv() {
            self.event(ev).await?;
        }
        self.flush().await?;
        for h in std::mem::take(&mut self.rollups.0) {
            let _ = h.await;
        }
        self.close_gap().await
    }

    async fn event(&mut self, ev: Event) -> Result<()> {
        match ev {
            Event::Tick(i, _, _) if !self.active.values().any(|(j, _)| *j == i) => {}
            Event::Tick(i, tick, at) => {
                self.report.ticks += 1;
                let c = &self.contracts[i];
                if let Some(q) = self.book.apply(c, &tick, at) {
                    self.oldest.get_or_insert_with(Instant::now);
                    self.pending.entry(c.symbol.clone()).or_default().push(q);
                }
                if self.lost.remove(&i) && self.lost.is_empty() {
                    self.close_gap().await?;
                }
            }
            Event::Lost(i, at) => {
                if self.gap.is_none() {
                    self.gap = Some(at);
                    self.opts.metrics.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                self.lost.insert(i);
            }
            Event::Notice(CONNECTIVITY_LOST, at) => {
                self.gap.get_or_insert(at);
            }
            Event::Notice(code, _) => {
                if code == RESTORED_DATA_LOST {
                    // "Data lost": IB dropped the market-data subscriptions; take them again.
                    self.resub_tx.send_modify(|n| *n += 1);
                }
                if self.lost.is_empty() {
                    self.close_gap().await?;
                }
            }
            Event::Gone(i) => {
                if let Some(id) = self.active.iter().find(|(_, (j, _))| *j == i).map(|(id, _)| *id) {
                    self.unsubscribe(id);
                }
                if self.lost.remove(&i) && self.lost.is_empty() {
                    self.close_gap().await?;
                }
            }
        }
        Ok(())
    }

    /// Writes every pending row; rows whose write fails stay pending for the next flush.
    async fn flush(&mut self) -> Result<()> {
        let now = self.ingest.now();
        let pending = std::mem::take(&mut self.pending);
        let seq = self.flushes;
        if !pending.is_empty() {
            self.flushes += 1;
        }
        for (symbol, mut rows) in pending {
            for r in &mut rows {
                r.ingested_at = now;
            }
            let batch = quotes::to_batch(&rows);
            match self.ingest.lake.append(Dataset::Quotes, &symbol, &batch, self.run_id, seq).await {
                Ok(mbs) => {
                    for mb in mbs {
                        self.written.entry(mb.partition.clone()).or_default().push(mb);
                    }
                    let n = rows.len() as u64;
                    self.report.rows += n;
                    self.opts.metrics.rows_written.fetch_add(n, Ordering::Relaxed);
                    self.ingest.metrics.rows(Dataset::Quotes.name(), n);
                }
                Err(e @ Error::BadInput { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!("{symbol}: quotes flush failed, kept for the next one: {e}");
                    self.pending.insert(symbol, rows);
                }
            }
        }
        if let Some(t) = self.oldest.take() {
            let lag = t.elapsed();
            self.opts.metrics.lag_ms.store(lag.as_millis() as u64, Ordering::Relaxed);
            if lag > MAX_FLUSH && !self.behind {
                self.behind = true;
                let msg = format!(
                    "live capture falls behind the 5 s loss bound: tick-to-disk lag {:.1} s (storage too slow for this tick rate)",
                    lag.as_secs_f64()
                );
                if let Some(s) = self.contracts.first().map(|c| c.symbol.clone()) {
                    self.ingest.alert(Severity::Warning, &s, msg);
                }
            }
            self.opts.metrics.flushes.fetch_add(1, Ordering::Relaxed);
        }
        if !self.pending.is_empty() {
            self.oldest = Some(Instant::now());
        }
        self.roll_up();
        Ok(())
    }

    /// Starts a background merge of every partition's micro-batches once there are
    /// [`LiveOptions::rollup_every`] of them; the flushes go on meanwhile.
    fn roll_up(&mut self) {
        let every = self.opts.rollup_every;
        if every < 2 {
            return;
        }
        self.rollups.0.retain(|h| !h.is_finished());
        let full: Vec<Partition> =
            self.written.iter().filter(|(_, v)| v.len() >= every).map(|(p, _)| p.clone()).collect();
        for p in full {
            let sources = self.written.remove(&p).unwrap_or_default();
            let into = match MicroBatch::new(p, self.run_id, self.flushes) {
                Ok(m) => m,
                Err(e) => return tracing::warn!("merging micro-batches: {e}"),
            };
            self.flushes += 1;
            self.report.rolled_up += sources.len();
            let lake = self.ingest.lake.clone();
            self.rollups.0.push(tokio::spawn(async move {
                if let Err(e) = lake.merge_micro_batches(&sources, &into).await {
                    tracing::warn!("merging {} micro-batches into {into}: {e}; they stay as they are", sources.len());
                }
            }));
        }
    }

    async fn chains(&mut self, symbols: &[Symbol]) -> Result<()> {
        for s in symbols {
            if let Err(e) = self.ingest.contracts_snapshot(s).await {
                tracing::warn!("{s}: scheduled chain snapshot: {e}");
            }
            self.ingest.freshness(s).await?;
        }
        chain_age(self.ingest, symbols, &self.opts.metrics).await
    }

    /// Records the open gap (if any) in the manifest of every captured symbol.
    async fn close_gap(&mut self) -> Result<()> {
        let Some(start) = self.gap.take() else { return Ok(()) };
        self.lost.clear();
        let end = self.ingest.now();
        let symbols: BTreeSet<Symbol> = self.contracts.iter().map(|c| c.symbol.clone()).collect();
        let message = format!("live capture gap from {} to {}", start.to_rfc3339(), end.to_rfc3339());
        for s in symbols {
            let entry = Entry::new(
                gap_request(&s, start, end)?,
                start,
                end,
                Outcome::Error { code: CONNECTIVITY_LOST, message: message.clone() },
            );
            self.ingest.lake.record_entry(entry, None).await?;
            self.ingest.alert(Severity::Warning, &s, message.clone());
        }
        self.report.gaps += 1;
        self.opts.metrics.gaps.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn gap_request(s: &Symbol, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Request> {
    let window = DateWindow::new(calendar::trading_date(start), calendar::trading_date(end))?;
    Ok(Request { window: Some(window), ..Request::new(Dataset::Quotes, s, SecType::Stock) })
}
