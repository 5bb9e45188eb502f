//! The ingest jobs and their orchestration, in the only order that makes sense:
//! contracts → option-chain snapshot → equity (spot) → option bars.
//!
//! - [`contracts`]: `backfill_contracts`, descriptions of the symbol (and of the options asked for);
//! - [`chains`]: `contracts_snapshot`, the current option chain, kept as history;
//! - [`corporate`]: every run compares a few stored daily sessions with the answer that extends
//!   them; a corporate action is recorded, alerted and healed ([`heal`]);
//! - [`equity`]: `backfill_equity_bars`, only the missing windows, bounded by the head timestamp;
//!   `ADJUSTED_LAST` in one request ending now, the whole series replaced ([`adjusted`]);
//! - [`options`]: `backfill_option_bars`, refused without its prerequisites ([`prereq`]), and
//!   session by session without the spot of the session;
//! - [`orchestrator`]: `setup` (cold start) and `update` (warm start with integrity checks).
//!
//! The settings of every run are completed by [`config::with_spot_for_options`] in [`Ingest::new`]:
//! option sessions always come with the underlying's intraday bars of the same sessions.
//!
//! Every request to the gateway goes through [`Ingest::ask`] ([`ask`]): pacing, the request,
//! classification of an error, retries by its class, metrics. The jobs say what they want and
//! record what the answer means; bar requests are fetched and recorded in batches by
//! [`Ingest::fetch_bars`].

pub mod adjusted;
pub mod ask;
pub mod chains;
pub mod config;
pub mod contracts;
pub mod corporate;
pub mod equity;
pub mod heal;
pub mod options;
pub mod orchestrator;
pub mod prereq;
pub mod scope;
pub mod walk;

use crate::calendar;
use crate::clock::Clock;
use crate::datasets::{equity_bars, option_bars, Dataset};
use crate::domain::{SecType, Series, Symbol};
use crate::error::Result;
use crate::lake::manifest::{Entry, Outcome, Request, SeriesKey, SymbolManifest};
use crate::lake::Lake;
use crate::monitor::{Alert, AlertSink, Metrics, Severity};
use crate::source::pacing::{Pacer, PacingRules};
use crate::source::plan::Planned;
use crate::source::{HistRequest, Instrument, MarketData, RawBar};
use chrono::{DateTime, NaiveDate, Utc};
use config::IngestConfig;
use std::sync::Arc;
use std::time::Duration;

/// The context every job runs in.
pub struct Ingest<S> {
    /// The lake written to.
    pub lake: Lake,
    /// The gateway.
    pub source: S,
    /// The settings, as [`config::with_spot_for_options`] completed them.
    pub cfg: IngestConfig,
    /// What [`config::with_spot_for_options`] changed in the settings given to [`Ingest::new`]:
    /// said at the start of every run.
    pub config_notes: Vec<String>,
    /// The pacing scheduler.
    pub pacer: Pacer,
    /// The scheduler for bars of a minute and longer when `relax_large_bars` is set.
    pub relaxed_pacer: Option<Pacer>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Where alerts go.
    pub alerts: Vec<Arc<dyn AlertSink>>,
    /// "Now", shared with a simulated gateway in tests.
    pub clock: Arc<dyn Clock>,
    /// Print a progress line per step.
    pub progress: bool,
}

/// What a batch of bar requests did (and, in a run's report, a job's request counts).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FetchStats {
    /// Requests sent (retries included).
    pub sent: u64,
    /// Requests that ended with rows.
    pub ok: u64,
    /// Requests that ended empty (final).
    pub empty: u64,
    /// Requests that ended in an error (not covered; asked again next run).
    pub failed: u64,
    /// Rows written.
    pub rows: u64,
    /// Sessions not requested because a prerequisite of that very session is missing (option
    /// bars without the underlying's intraday bars of the session), counted once per series and
    /// session: dependency violations, asked again by a later run once the prerequisite is there.
    /// (A run's report gives them per symbol as `option_days_refused`.)
    #[serde(skip)]
    pub refused_days: u64,
}

impl FetchStats {
    fn add(&mut self, o: &FetchStats) {
        self.sent += o.sent;
        self.ok += o.ok;
        self.empty += o.empty;
        self.failed += o.failed;
        self.rows += o.rows;
        self.refused_days += o.refused_days;
    }
}

/// Answers recorded together (one pending file, one rewrite per touched partition, one log).
pub const RECORD_BATCH: usize = 64;

/// One planned request of a contract's series.
#[derive(Debug, Clone)]
pub struct BarJob {
    /// The contract.
    pub instrument: Instrument,
    /// For option bars: the option as stored with its bars.
    pub option: Option<OptionTarget>,
    /// Bar size and what-to-show.
    pub series: Series,
    /// The window, duration and end.
    pub plan: Planned,
}

/// What a batch of bar jobs is about, for progress lines.
fn what_of(jobs: &[BarJob]) -> &'static str {
    jobs.first().map(|j| if j.option.is_some() { "option_bars" } else { "equity_bars" }).unwrap_or("bars")
}

/// A request's answer, not yet recorded.
struct Fetched {
    /// IB's final "no data" answer (an error of class `NoData`), as opposed to an empty bars message.
    no_data: bool,
    request: Request,
    requested_at: DateTime<Utc>,
    completed_at: DateTime<Utc>,
    outcome: Outcome,
    batch: Option<arrow::record_batch::RecordBatch>,
    stats: FetchStats,
}

/// An option contract whose bars are fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionTarget {
    /// The contract as stored with its bars.
    pub contract: option_bars::OptionContract,
}

impl<S: MarketData> Ingest<S> {
    /// A context with IB's pacing (scaled by `cfg.pacing_scale`) and the log alert sink.
    ///
    /// The settings are completed here, for every run (`setup`, `update`, `demo`), by
    /// [`config::with_spot_for_options`]: option sessions come with the spot of the same sessions.
    pub fn new(lake: Lake, source: S, cfg: IngestConfig, clock: Arc<dyn Clock>) -> Self {
        let (cfg, config_notes) = config::with_spot_for_options(cfg);
        let rules = if cfg.pacing_off { PacingRules::off() } else { PacingRules::ib(cfg.pacing_scale) };
        let relaxed_pacer =
            (cfg.relax_large_bars && !cfg.pacing_off).then(|| Pacer::new(PacingRules::relaxed(cfg.pacing_scale)));
        Ingest {
            lake,
            source,
            cfg,
            config_notes,
            pacer: Pacer::new(rules),
            relaxed_pacer,
            metrics: Arc::new(Metrics::default()),
            alerts: vec![Arc::new(crate::monitor::LogSink)],
            clock,
            progress: false,
        }
    }

    /// Shares the pacing budget of gateway `gateway` (`HOST:PORT`) with every other process on
    /// this machine through its ledger in the state directory ([`crate::source::pacing`]). When
    /// the ledger cannot be opened, says so and keeps pacing this process alone; returns whether
    /// the budget is shared.
    pub fn share_pacing(&mut self, gateway: &str) -> bool {
        use crate::source::pacing::ledger::{ledger_path, state_dir, Ledger};
        if self.cfg.pacing_off {
            return false;
        }
        let Some(dir) = state_dir() else {
            tracing::warn!("no state directory (set TWSLAKE_STATE_DIR or HOME): pacing this process alone; other processes on {gateway} may break IB's limits");
            return false;
        };
        let path = ledger_path(&dir, gateway);
        let ledger = match Ledger::open(&path) {
            Ok(l) => Arc::new(l),
            Err(e) => {
                tracing::warn!(
                    "cannot open the pacing ledger {} ({e}): pacing this process alone; set TWSLAKE_STATE_DIR to a writable folder so processes on {gateway} share IB's limits",
                    path.display()
                );
                return false;
            }
        };
        let rules = *self.pacer.rules();
        self.pacer = Pacer::new(rules).shared(ledger.clone());
        if let Some(relaxed) = self.relaxed_pacer.take() {
            self.relaxed_pacer = Some(Pacer::new(*relaxed.rules()).shared(ledger));
        }
        true
    }

    /// "Now".
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The last session that is over now: backfills stop there; the session in progress belongs
    /// to live capture.
    pub fn last_final_session(&self) -> NaiveDate {
        crate::calendar::last_finished_session(self.now())
    }

    /// Sends an alert to every sink.
    pub fn alert(&self, severity: Severity, symbol: &Symbol, message: impl Into<String>) {
        let a = Alert { severity, symbol: symbol.to_string(), message: message.into(), time: self.now() };
        for s in &self.alerts {
            s.send(&a);
        }
    }

    /// Prints a progress line (to stderr) when progress is on.
    pub fn say(&self, line: impl AsRef<str>) {
        if self.progress {
            crate::monitor::progress::line(line.as_ref());
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = 0.25 * 2f64.powi(attempt as i32) / self.cfg.pacing_scale.max(1.0);
        Duration::from_secs_f64(base.min(30.0))
    }

    /// Fetches planned requests (any contracts of one symbol) and records the answers in batches
    /// of [`RECORD_BATCH`]: each batch rewrites a shared partition once, not once per request.
    pub async fn fetch_bars(&self, symbol: &Symbol, jobs: Vec<BarJob>) -> Result<FetchStats> {
        self.fetch_bars_because(symbol, jobs, None).await
    }

    /// [`Ingest::fetch_bars`], each manifest entry carrying `reason` (why it is asked again).
    pub async fn fetch_bars_because(
        &self,
        symbol: &Symbol,
        jobs: Vec<BarJob>,
        reason: Option<&str>,
    ) -> Result<FetchStats> {
        use futures::{stream, StreamExt};
        let (planned, what) = (jobs.len(), what_of(&jobs));
        let answers = stream::iter(jobs)
            .map(|j| async move { self.fetch_one(symbol, j).await })
            .buffer_unordered(self.cfg.concurrency.max(1));
        self.record_answers(symbol, what, planned, answers, reason).await
    }

    /// Records answers as they come, in batches of [`RECORD_BATCH`], saying how far it got.
    async fn record_answers(
        &self,
        symbol: &Symbol,
        what: &str,
        planned: usize,
        answers: impl futures::Stream<Item = Result<Fetched>>,
        reason: Option<&str>,
    ) -> Result<FetchStats> {
        use futures::StreamExt;
        let started = std::time::Instant::now();
        let mut answers = std::pin::pin!(answers.chunks(RECORD_BATCH));
        let mut total = FetchStats::default();
        // A bar on a terminal (`monitor::progress`), else a plain line per batch below.
        let bar = if self.progress {
            crate::monitor::progress::Bar::start(&format!("{symbol:<8} {what:<12}"), planned as u64)
        } else {
            crate::monitor::progress::Bar::start_hidden()
        };
        while let Some(chunk) = answers.next().await {
            let mut items = Vec::with_capacity(chunk.len());
            for f in chunk {
                let f = f?;
                total.add(&f.stats);
                bar.set(
                    total.ok + total.empty + total.failed,
                    format!("{} rows, pacing waited {:.1} s", total.rows, self.pacer.waited().as_secs_f64()),
                );
                let mut entry = Entry::new(f.request, f.requested_at, f.completed_at, f.outcome);
                entry.reason = reason.map(str::to_string);
                items.push((entry, f.batch));
            }
            for entry in self.lake.record_many(symbol, items).await? {
                let rows = match entry.outcome {
                    Outcome::Ok { rows } => rows,
                    _ => 0,
                };
                self.metrics.rows(entry.request.dataset.name(), rows);
            }
            let done = (total.ok + total.empty + total.failed) as usize;
            if done < planned && !bar.drawn() {
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                self.say(format!(
                    "{symbol:<8} {what:<12} {done}/{planned} requests, {} rows, {:.1} requests/s, pacing waited {:.1} s",
                    total.rows,
                    done as f64 / secs,
                    self.pacer.waited().as_secs_f64()
                ));
            }
        }
        Ok(total)
    }

    fn request_of(&self, symbol: &Symbol, option: Option<&OptionTarget>, series: Series, p: &Planned) -> Request {
        let mut r = Request::equity_bars(symbol, series, p.window);
        r.end_date_time = Some(p.end.format("%Y%m%d-%H:%M:%S").to_string());
        r.duration = Some(p.duration.to_string());
        if let Some(o) = option {
            r.dataset = Dataset::OptionBars;
            r.sec_type = Some(SecType::Option);
            r.con_id = Some(o.contract.con_id);
            r.expiry = Some(o.contract.expiry);
            r.strike = Some(o.contract.strike);
            r.right = Some(o.contract.right);
        }
        r
    }

    /// One request through [`Ingest::ask`]; the answer comes back unrecorded.
    async fn fetch_one(&self, symbol: &Symbol, job: BarJob) -> Result<Fetched> {
        let BarJob { instrument, option, series, plan: p } = job;
        let req = HistRequest { instrument, series, duration: p.duration, end: p.end, use_rth: true };
        let request = self.request_of(symbol, option.as_ref(), series, &p);
        let answered = self.ask(&req).await;
        let stats = FetchStats { sent: answered.sent, ..Default::default() };
        let (requested_at, completed_at) = (answered.requested_at, answered.completed_at);
        let error = match answered.answer {
            Ok(bars) => return Ok(self.answered(request, option.as_ref(), series, requested_at, bars, stats)),
            Err(e) => e,
        };
        let outcome = ask::Answered::<()>::error_outcome(&error);
        let no_data = error.class == crate::source::errors::ErrorClass::NoData;
        let mut stats = stats;
        match outcome {
            Outcome::Empty => stats.empty += 1,
            _ => {
                tracing::warn!("{symbol} {} {}: {error}", series.bar_size, series.what_to_show);
                stats.failed += 1;
            }
        }
        Ok(Fetched { no_data, request, requested_at, completed_at, outcome, batch: None, stats })
    }

    /// Turns bars into rows (or a refusal, for bars no market produces).
    fn answered(
        &self,
        request: Request,
        option: Option<&OptionTarget>,
        series: Series,
        requested_at: DateTime<Utc>,
        bars: Vec<RawBar>,
        mut stats: FetchStats,
    ) -> Fetched {
        let ingested_at = self.now();
        let rows: Vec<equity_bars::Bar> = bars.into_iter().map(|b| b.into_bar(series, ingested_at)).collect();
        let n = rows.len() as u64;
        let (dataset, batch) = match option {
            None => (Dataset::EquityBars, equity_bars::to_batch(&rows)),
            Some(o) => {
                let rows: Vec<_> =
                    rows.into_iter().map(|bar| option_bars::OptionBar { contract: o.contract.clone(), bar }).collect();
                (Dataset::OptionBars, option_bars::to_batch(&rows))
            }
        };
        let (outcome, batch) = if let Err(reason) = dataset.check_rows(&batch) {
            // A misbehaving gateway: nothing is stored, the window stays missing.
            self.metrics.request("historical_data", "refused_rows");
            stats.failed += 1;
            (Outcome::Error { code: 0, message: format!("refused rows from the gateway: {reason}") }, None)
        } else if n == 0 {
            self.metrics.request("historical_data", "empty");
            stats.empty += 1;
            (Outcome::Empty, None)
        } else {
            self.metrics.request("historical_data", "ok");
            stats.ok += 1;
            stats.rows += n;
            (Outcome::Ok { rows: n }, Some(batch))
        };
        Fetched { no_data: false, request, requested_at, completed_at: ingested_at, outcome, batch, stats }
    }
}

/// The trading days of `[from, to]` that a loaded manifest does not cover for a series.
pub fn missing_days(m: &SymbolManifest, key: &SeriesKey, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    if from > to {
        return vec![];
    }
    let covered = m.covered(key);
    let windows = crate::domain::window::missing_windows_from(&covered, from, to);
    windows.iter().flat_map(|w| calendar::trading_days(w.start, w.end)).collect()
}
