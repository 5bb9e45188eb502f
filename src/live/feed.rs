//! The feeds: each subscription and the gateway's notices turned into events for the one writer,
//! so that reconnects, backoff and resubscription never hold up the book or a flush.

use super::metrics::LiveMetrics;
use super::LiveOptions;
use crate::domain::codes::{CONNECTIVITY_LOST, RESTORED_DATA_KEPT, RESTORED_DATA_LOST};
use crate::jobs::Ingest;
use crate::source::errors::ErrorClass;
use crate::source::{MarketData, StreamContract, Tick};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What the subscription tasks tell the writer.
pub(super) enum Event {
    Tick(usize, Tick, DateTime<Utc>),
    Lost(usize, DateTime<Utc>),
    Gone(usize),
    /// A connectivity notice: 1100 lost, 1101 restored with data lost, 1102 restored.
    Notice(i32, DateTime<Utc>),
}

/// A running feed; the writer polls it beside its own loop.
pub(super) type Feed<'a> = futures::future::BoxFuture<'a, ()>;

/// The subscription state: what this run subscribed, what it holds now, and the switches that
/// stop one feed or make every feed subscribe again.
pub(super) struct Subscriptions {
    /// Every contract ever subscribed in this run; an event's index points here.
    contracts: Vec<StreamContract>,
    /// Subscribed now: con_id → (index, the feed's stop switch).
    active: HashMap<i64, (usize, watch::Sender<bool>)>,
    tx: mpsc::UnboundedSender<Event>,
    resub: watch::Receiver<u64>,
    resub_tx: watch::Sender<u64>,
}

impl Subscriptions {
    /// No subscription yet; the feeds will send their events on `tx`.
    pub(super) fn new(tx: mpsc::UnboundedSender<Event>) -> Self {
        let (resub_tx, resub) = watch::channel(0u64);
        Subscriptions { contracts: Vec::new(), active: HashMap::new(), tx, resub, resub_tx }
    }

    /// Starts a contract's feed (the caller polls it).
    pub(super) fn subscribe<'a, S: MarketData>(
        &mut self,
        ingest: &'a Ingest<S>,
        opts: &'a LiveOptions,
        c: StreamContract,
    ) -> Feed<'a> {
        let i = self.contracts.len();
        self.contracts.push(c.clone());
        let (stop_tx, stop) = watch::channel(false);
        self.active.insert(c.con_id, (i, stop_tx));
        opts.metrics.subscribed_lines.store(self.active.len() as u64, Ordering::Relaxed);
        let (tx, resub) = (self.tx.clone(), self.resub.clone());
        Box::pin(feed(ingest, i, c, tx, opts, stop, resub))
    }

    /// Stops a contract's feed (its stream is dropped, which cancels the subscription); the
    /// index it had, if it was subscribed.
    pub(super) fn unsubscribe(&mut self, con_id: i64, lm: &LiveMetrics) -> Option<usize> {
        let i = self.active.remove(&con_id).map(|(i, stop)| {
            let _ = stop.send(true);
            i
        });
        lm.subscribed_lines.store(self.active.len() as u64, Ordering::Relaxed);
        i
    }

    /// Makes every feed subscribe again at once (after a 1101: IB dropped the subscriptions).
    pub(super) fn resubscribe_all(&self) {
        self.resub_tx.send_modify(|n| *n += 1);
    }

    /// Every contract subscribed in this run, by index.
    pub(super) fn contracts(&self) -> &[StreamContract] {
        &self.contracts
    }

    /// Whether the feed with index `i` is still subscribed.
    pub(super) fn is_active(&self, i: usize) -> bool {
        self.active.values().any(|(j, _)| *j == i)
    }

    /// The con_id subscribed under index `i`, if it still is.
    pub(super) fn con_id_at(&self, i: usize) -> Option<i64> {
        self.active.iter().find(|(_, (j, _))| *j == i).map(|(id, _)| *id)
    }

    /// Whether `con_id` is subscribed now.
    pub(super) fn holds(&self, con_id: i64) -> bool {
        self.active.contains_key(&con_id)
    }

    /// The contracts subscribed now.
    pub(super) fn active(&self) -> impl Iterator<Item = (i64, &StreamContract)> {
        self.active.iter().map(|(id, (i, _))| (*id, &self.contracts[*i]))
    }

    /// The con_ids subscribed now, in order.
    pub(super) fn subscribed(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.active.keys().copied().collect();
        ids.sort_unstable();
        ids
    }
}

/// Waits until shutdown is asked for (a dropped sender counts).
pub(super) async fn stopped(rx: &mut watch::Receiver<bool>) {
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

/// Forwards the gateway's connectivity notices (1100, 1101, 1102) to the writer, and asks the
/// gateway every [`LiveOptions::heartbeat`] whether it still answers at all.
pub(super) async fn watch_notices<S: MarketData>(
    ingest: &Ingest<S>,
    opts: &LiveOptions,
    tx: mpsc::UnboundedSender<Event>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut notices = match ingest.source.notices() {
        Ok(n) => n,
        Err(e) => return tracing::warn!("no connectivity notices from the gateway: {e}"),
    };
    let period = opts.heartbeat.max(Duration::from_millis(100));
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut silent = false;
    loop {
        let n = tokio::select! {
            n = notices.next() => n,
            _ = beat.tick() => {
                // A gateway that stops answering sends no 1100: the heartbeat stands in for it.
                // Silent, a gap opens as on a lost connection; answering again, it closes as on
                // a 1101 (subscriptions taken again: a restarted gateway holds none).
                let at = ingest.now();
                let alive = tokio::select! {
                    a = ingest.source.alive() => a,
                    _ = stopped(&mut shutdown) => return,
                };
                let code = match (silent, alive) {
                    (false, false) => CONNECTIVITY_LOST,
                    (true, true) => RESTORED_DATA_LOST,
                    _ => continue,
                };
                silent = !alive;
                if silent {
                    tracing::warn!("the gateway stopped answering (heartbeat unanswered): capture gap open");
                }
                if tx.send(Event::Notice(code, at)).is_err() {
                    return;
                }
                continue;
            }
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
