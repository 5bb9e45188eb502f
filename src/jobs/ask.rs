//! The one way a job asks the gateway: [`Ingest::ask`]. A typed request ([`Ask`]) plans its own
//! pacing key; `ask` waits on the pacer, sends it, classifies an error and retries by its class
//! (a pacing violation after the pacer's penalty, a transient or connectivity error after a
//! backoff), counts every attempt in the metrics, and hands back the answer with the times the
//! job's manifest entry records ([`Answered::entry`]). Jobs state what they want and what an
//! answer means; none of them paces, retries or counts on its own.

use super::Ingest;
use crate::datasets::chains::ChainParams;
use crate::datasets::contracts::Contract;
use crate::datasets::equity_bars::RawBar;
use crate::domain::{Series, Symbol};
use crate::lake::manifest::{Entry, Outcome, Request};
use crate::source::errors::ErrorClass;
use crate::source::pacing::PaceKey;
use crate::source::{ContractQuery, HistRequest, Instrument, MarketData, SourceError};
use chrono::{DateTime, Utc};
use std::future::Future;
use std::sync::atomic::Ordering;

/// A request to the gateway, as a job states it.
pub trait Ask: Sync {
    /// What the gateway answers.
    type Answer: Send;
    /// The label of its metrics (`twslake_requests_total{kind=…}`).
    const KIND: &'static str;
    /// How IB's historical-data pacing counts it; `None` for requests it does not pace.
    fn pace_key(&self) -> Option<PaceKey>;
    /// Bars of 30 seconds or less: IB's hard limits apply even when larger bars are relaxed.
    fn small_bars(&self) -> bool {
        true
    }
    /// Whether `ask` counts an answer as `ok`; `false` where the job counts it by what it holds
    /// (historical bars: `ok`, `empty` or `refused_rows`).
    fn counted_on_answer(&self) -> bool {
        true
    }
    /// Sends it once.
    fn send<S: MarketData>(&self, source: &S) -> impl Future<Output = Result<Self::Answer, SourceError>> + Send;
}

impl Ask for ContractQuery {
    type Answer = Vec<Contract>;
    const KIND: &'static str = "contract_details";
    fn pace_key(&self) -> Option<PaceKey> {
        None
    }
    fn send<S: MarketData>(&self, source: &S) -> impl Future<Output = Result<Self::Answer, SourceError>> + Send {
        source.contract_details(self)
    }
}

/// The current option chain of an underlying.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainQuery {
    /// The underlying.
    pub symbol: Symbol,
    /// Its con_id.
    pub con_id: i64,
}

impl Ask for ChainQuery {
    type Answer = Vec<ChainParams>;
    const KIND: &'static str = "option_chain";
    fn pace_key(&self) -> Option<PaceKey> {
        None
    }
    fn send<S: MarketData>(&self, source: &S) -> impl Future<Output = Result<Self::Answer, SourceError>> + Send {
        source.option_chain(&self.symbol, self.con_id)
    }
}

/// The earliest instant IB has bars of a series of a contract.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadQuery {
    /// The contract.
    pub instrument: Instrument,
    /// The series.
    pub series: Series,
}

impl Ask for HeadQuery {
    type Answer = DateTime<Utc>;
    const KIND: &'static str = "head_timestamp";
    fn pace_key(&self) -> Option<PaceKey> {
        None
    }
    fn send<S: MarketData>(&self, source: &S) -> impl Future<Output = Result<Self::Answer, SourceError>> + Send {
        source.head_timestamp(&self.instrument, self.series)
    }
}

impl Ask for HistRequest {
    type Answer = Vec<RawBar>;
    const KIND: &'static str = "historical_data";
    fn pace_key(&self) -> Option<PaceKey> {
        Some(PaceKey::historical(self))
    }
    fn small_bars(&self) -> bool {
        self.series.bar_size.seconds().is_some_and(|s| s <= 30)
    }
    fn counted_on_answer(&self) -> bool {
        false
    }
    fn send<S: MarketData>(&self, source: &S) -> impl Future<Output = Result<Self::Answer, SourceError>> + Send {
        source.historical_bars(self)
    }
}

/// A request's final answer (after retries), with its times.
#[derive(Debug)]
pub struct Answered<A> {
    /// When the attempt that ended it was sent.
    pub requested_at: DateTime<Utc>,
    /// When its answer was complete.
    pub completed_at: DateTime<Utc>,
    /// Attempts sent (retries included).
    pub sent: u64,
    /// The answer, or the error that ended it.
    pub answer: Result<A, SourceError>,
}

impl<A> Answered<A> {
    /// The manifest entry of this answer to `request`, with `outcome` (the job decides what the
    /// answer means: rows, a final empty answer, an error).
    pub fn entry(&self, request: Request, outcome: Outcome) -> Entry {
        Entry::new(request, self.requested_at, self.completed_at, outcome)
    }

    /// The entry of an error that ended the request: `Error` with IB's code and text, or `Empty`
    /// for IB's final "no data" answer.
    pub fn error_outcome(e: &SourceError) -> Outcome {
        match e.class {
            ErrorClass::NoData => Outcome::Empty,
            _ => Outcome::Error { code: e.code, message: e.message.clone() },
        }
    }
}

impl<S: MarketData> Ingest<S> {
    /// Sends `q` through the one pipeline (module docs): paced, retried by error class up to
    /// `cfg.attempts` attempts, counted.
    pub async fn ask<Q: Ask>(&self, q: &Q) -> Answered<Q::Answer> {
        let key = q.pace_key();
        let mut sent = 0;
        loop {
            let permit = match &key {
                Some(key) => {
                    let waited = std::time::Instant::now();
                    let pacer = self.relaxed_pacer.as_ref().filter(|_| !q.small_bars()).unwrap_or(&self.pacer);
                    let permit = pacer.admit(key).await;
                    self.metrics.pacing_wait_us.fetch_add(waited.elapsed().as_micros() as u64, Ordering::Relaxed);
                    Some(permit)
                }
                None => None,
            };
            let requested_at = self.now();
            let answer = q.send(&self.source).await;
            drop(permit);
            sent += 1;
            let done = |answer| Answered { requested_at, completed_at: self.now(), sent, answer };
            let e = match answer {
                Ok(a) => {
                    if q.counted_on_answer() {
                        self.metrics.request(Q::KIND, "ok");
                    }
                    return done(Ok(a));
                }
                Err(e) => e,
            };
            self.metrics.request(Q::KIND, &format!("error_{}", e.code));
            let more = sent < u64::from(self.cfg.attempts.max(1));
            match e.class {
                ErrorClass::Pacing if more => {
                    self.metrics.pacing_violations.fetch_add(1, Ordering::Relaxed);
                    self.pacer.penalize();
                }
                ErrorClass::Retry | ErrorClass::Connectivity if more => {
                    tokio::time::sleep(self.backoff(sent as u32 - 1)).await;
                }
                _ => return done(Err(e)),
            }
        }
    }
}
