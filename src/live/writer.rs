//! The single writer: the one task that owns the book, so every row gets its `seq` in order and
//! reaches the lake within the loss bound; it flushes micro-batches, rolls them up, and compacts.

use super::book::Book;
use super::feed::{self, Event, Feed, Subscriptions};
use super::gap::Gap;
use super::plan::{self, Selection};
use super::{LiveOptions, LiveReport, MAX_FLUSH};
use crate::datasets::quotes::{self, Quote};
use crate::datasets::Dataset;
use crate::domain::codes::{CONNECTIVITY_LOST, RESTORED_DATA_LOST};
use crate::domain::Symbol;
use crate::error::{Error, Result};
use crate::jobs::Ingest;
use crate::lake::layout::{MicroBatch, Partition};
use crate::monitor::Severity;
use crate::source::{MarketData, StreamContract};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Captures `contracts` (the plan of a run over `symbols`) until `shutdown`, then folds the
/// run's micro-batches into the day partitions; `report` comes filled with what the plan did.
pub(super) async fn capture<S: MarketData>(
    ingest: &Ingest<S>,
    symbols: &[Symbol],
    opts: &LiveOptions,
    contracts: Vec<StreamContract>,
    report: LiveReport,
    shutdown: watch::Receiver<bool>,
) -> Result<LiveReport> {
    let (tx, rx) = mpsc::unbounded_channel();
    let notices = feed::watch_notices(ingest, opts, tx.clone(), shutdown.clone());
    let mut w = Writer {
        ingest,
        opts,
        subs: Subscriptions::new(tx),
        selection: Selection::new(symbols, &report.without_options, opts.max_lines),
        book: Book::new(next_seq(ingest, symbols).await?),
        batches: Batches::new(rand::random()),
        gap: Gap::default(),
        report,
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
    w.report.subscribed = w.subs.subscribed();
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
pub(super) async fn compact<S: MarketData>(ingest: &Ingest<S>, symbols: &[Symbol]) -> Result<usize> {
    let mut n = 0;
    for s in symbols {
        for c in ingest.lake.compact_all(Dataset::Quotes, Some(s)).await? {
            tracing::info!("{}: {} micro-batches compacted ({} rows)", c.partition, c.micro_batches, c.rows);
            n += c.micro_batches;
        }
    }
    Ok(n)
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

/// The single writer: the book, the micro-batches, the gap bookkeeping.
struct Writer<'a, S> {
    ingest: &'a Ingest<S>,
    opts: &'a LiveOptions,
    subs: Subscriptions,
    selection: Selection,
    book: Book,
    batches: Batches,
    gap: Gap,
    report: LiveReport,
}

/// The flush state: rows waiting for the next flush and how late they are, and this run's
/// micro-batches (their names, those not merged yet, the merges running).
struct Batches {
    pending: BTreeMap<Symbol, Vec<Quote>>,
    /// When the oldest pending row arrived.
    oldest: Option<Instant>,
    /// The lag passed the loss bound once (alerted once per run).
    behind: bool,
    /// This run's id in its micro-batches' names.
    run_id: u64,
    /// Flushes done (the `<SEQ>` of the next micro-batches).
    flushes: u64,
    /// This run's micro-batches not merged yet, by partition.
    written: BTreeMap<Partition, Vec<MicroBatch>>,
    /// Merges of micro-batches running in the background.
    rollups: Rollups,
}

impl Batches {
    fn new(run_id: u64) -> Self {
        Batches {
            pending: BTreeMap::new(),
            oldest: None,
            behind: false,
            run_id,
            flushes: 0,
            written: BTreeMap::new(),
            rollups: Rollups(Vec::new()),
        }
    }
}

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
        self.subs.subscribe(self.ingest, self.opts, c)
    }

    /// Stops a contract's feed; a gap no longer waits for it.
    fn unsubscribe(&mut self, con_id: i64) {
        if let Some(i) = self.subs.unsubscribe(con_id, &self.opts.metrics) {
            self.gap.forget(i);
        }
    }

    /// Makes the option selection again around the live spot: what leaves the band is
    /// unsubscribed first, then what enters it is subscribed (the line limit holds throughout).
    async fn reselect(&mut self) -> Result<Vec<Feed<'a>>> {
        let mut feeds = Vec::new();
        for s in self.selection.symbols().to_vec() {
            let Some(spot) = plan::spot(&self.subs, &self.book, &s) else { continue };
            let moves = self.selection.around(self.ingest, &s, spot, &self.subs).await?;
            for id in moves.leaving {
                self.unsubscribe(id);
                self.report.reselected += 1;
            }
            for c in moves.entering {
                self.report.reselected += 1;
                feeds.push(self.subscribe(c));
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
                // Both ask the gateway: the run's end does not wait for a slow or silent one
                // (an interrupted snapshot is left as a kill would leave it; writes are atomic).
                _ = chains.tick() => tokio::select! {
                    r = plan::refresh_chains(self.ingest, symbols, &self.opts.metrics) => if let Err(e) = r {
                        tracing::warn!("scheduled chain snapshots: {e}");
                    },
                    _ = feed::stopped(&mut shutdown) => break,
                },
                _ = reselect.tick() => tokio::select! {
                    r = self.reselect() => match r {
                        Ok(new) => new.into_iter().for_each(|f| feeds.push(f)),
                        Err(e) => tracing::warn!("option selection around the live spot: {e}"),
                    },
                    _ = feed::stopped(&mut shutdown) => break,
                },
                _ = feed::stopped(&mut shutdown) => break,
            }
        }
        // Dropping the feeds cancels their subscriptions.
        drop(feeds);
        // Ticks already queued when shutdown came are kept.
        while let Ok(ev) = rx.try_recv() {
            self.event(ev).await?;
        }
        self.flush().await?;
        for h in std::mem::take(&mut self.batches.rollups.0) {
            let _ = h.await;
        }
        self.close_gap().await
    }

    async fn event(&mut self, ev: Event) -> Result<()> {
        match ev {
            Event::Tick(i, _, _) if !self.subs.is_active(i) => {}
            Event::Tick(i, tick, at) => {
                self.report.ticks += 1;
                let c = &self.subs.contracts()[i];
                if let Some(q) = self.book.apply(c, &tick, at) {
                    self.batches.oldest.get_or_insert_with(Instant::now);
                    self.batches.pending.entry(c.symbol.clone()).or_default().push(q);
                }
                if self.gap.feed_back(i) {
                    self.close_gap().await?;
                }
            }
            Event::Lost(i, at) => self.gap.feed_lost(i, at, &self.opts.metrics),
            Event::Notice(CONNECTIVITY_LOST, at) => self.gap.connection_lost(at),
            Event::Notice(code, _) => {
                if code == RESTORED_DATA_LOST {
                    // "Data lost": IB dropped the market-data subscriptions; take them again.
                    self.subs.resubscribe_all();
                }
                if self.gap.all_back() {
                    self.close_gap().await?;
                }
            }
            Event::Gone(i) => {
                if let Some(id) = self.subs.con_id_at(i) {
                    self.unsubscribe(id);
                }
                if self.gap.feed_back(i) {
                    self.close_gap().await?;
                }
            }
        }
        Ok(())
    }

    /// Writes every pending row; rows whose write fails stay pending for the next flush.
    async fn flush(&mut self) -> Result<()> {
        let now = self.ingest.now();
        let b = &mut self.batches;
        let pending = std::mem::take(&mut b.pending);
        let seq = b.flushes;
        if !pending.is_empty() {
            b.flushes += 1;
        }
        for (symbol, mut rows) in pending {
            for r in &mut rows {
                r.ingested_at = now;
            }
            let batch = quotes::to_batch(&rows);
            match self.ingest.lake.append(Dataset::Quotes, &symbol, &batch, b.run_id, seq).await {
                Ok(mbs) => {
                    for mb in mbs {
                        b.written.entry(mb.partition.clone()).or_default().push(mb);
                    }
                    let n = rows.len() as u64;
                    self.report.rows += n;
                    self.opts.metrics.rows_written.fetch_add(n, Ordering::Relaxed);
                    self.ingest.metrics.rows(Dataset::Quotes.name(), n);
                }
                Err(e @ Error::BadInput { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!("{symbol}: quotes flush failed, kept for the next one: {e}");
                    b.pending.insert(symbol, rows);
                }
            }
        }
        if let Some(t) = b.oldest.take() {
            let lag = t.elapsed();
            self.opts.metrics.lag_ms.store(lag.as_millis() as u64, Ordering::Relaxed);
            if lag > MAX_FLUSH && !b.behind {
                b.behind = true;
                let msg = format!(
                    "live capture falls behind the 5 s loss bound: tick-to-disk lag {:.1} s (storage too slow for this tick rate)",
                    lag.as_secs_f64()
                );
                if let Some(s) = self.subs.contracts().first().map(|c| c.symbol.clone()) {
                    self.ingest.alert(Severity::Warning, &s, msg);
                }
            }
            self.opts.metrics.flushes.fetch_add(1, Ordering::Relaxed);
        }
        if !b.pending.is_empty() {
            b.oldest = Some(Instant::now());
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
        let b = &mut self.batches;
        b.rollups.0.retain(|h| !h.is_finished());
        let full: Vec<Partition> = b.written.iter().filter(|(_, v)| v.len() >= every).map(|(p, _)| p.clone()).collect();
        for p in full {
            let sources = b.written.remove(&p).unwrap_or_default();
            let into = match MicroBatch::new(p, b.run_id, b.flushes) {
                Ok(m) => m,
                Err(e) => return tracing::warn!("merging micro-batches: {e}"),
            };
            b.flushes += 1;
            self.report.rolled_up += sources.len();
            let lake = self.ingest.lake.clone();
            b.rollups.0.push(tokio::spawn(async move {
                if let Err(e) = lake.merge_micro_batches(&sources, &into).await {
                    tracing::warn!("merging {} micro-batches into {into}: {e}; they stay as they are", sources.len());
                }
            }));
        }
    }

    /// Records the open gap (if any) in the manifest of every captured symbol.
    async fn close_gap(&mut self) -> Result<()> {
        if self.gap.close(self.ingest, self.subs.contracts()).await? {
            self.report.gaps += 1;
            self.opts.metrics.gaps.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
