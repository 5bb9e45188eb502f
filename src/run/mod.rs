//! `twslake run`: one long-running process that keeps a lake current on the NYSE calendar.
//!
//! The [`schedule`] says which job runs when (weekly contracts, chain snapshots at the open and
//! every 4 hours, live capture from the open to the close, the end-of-day update). The
//! [`Runner`] runs each slot of it once, against a clock ([`time::Timing`]: the wall clock, or a
//! simulated one a test moves a week in seconds):
//!
//! - **Exactly once.** A slot is done when its record is in the lake's [`journal`]; the record
//!   is created once per slot id, so a restarted run (or a second machine) never runs a journaled
//!   slot again. A slot is journaled when it ends, so a run killed half-way through a job runs
//!   it again on restart (the jobs are idempotent on the lake, see [`work`]); a capture killed
//!   mid-session is resumed until the close under the same slot.
//! - **Missed slots.** Of the slots of one job that came due while `run` was down, the latest
//!   is run at once and the earlier ones are journaled `skipped` (one update catches up every
//!   missed day; an old chain snapshot cannot be taken late); a capture whose session is over is
//!   skipped. Slots that ended before the lake's first `run` are not `run`'s business.
//! - **Failures.** A batch job that fails (the gateway away: IB Gateway restarts daily) is tried
//!   again every [`RunSettings::retry_every`] of clock time until the next slot of that job is
//!   due, which journals it `failed`. The capture keeps connecting until the close; inside it,
//!   a lost gateway is a recorded gap and the feed reconnects with backoff.
//! - **One run per lake.** The run holds the lake-wide lease `_locks/run` (renewed in the
//!   background, as a symbol's job lease is: [`crate::lake::lease`]); a second run is refused
//!   with the holder's name ([`Ended::Refused`]; the command exits with [`EXIT_LOCKED`]).
//! - **Stopping.** When `stop` turns true (SIGTERM, SIGINT), a running batch job is abandoned
//!   as a kill would leave it (atomic writes; the next run settles it), the capture flushes its
//!   micro-batches and compacts, the lease is released, and [`Runner::run`] returns.
//!
//! What to ingest comes through one function, [`settings`] (today: the symbols given, else
//! the lake's; the settings of `twslake.toml` and the command line), the place to read a scope
//! stored in the lake.
//!
//! Floor 8: it drives [`crate::jobs`] and [`crate::live`]; the command line stands on it.

pub mod journal;
pub mod schedule;
pub mod time;
mod work;

use crate::domain::Symbol;
use crate::error::Result;
use crate::jobs::config::IngestConfig;
use crate::lake::lease::Held;
use crate::lake::Lake;
use crate::live::LiveOptions;
use crate::monitor::{AlertSink, Metrics};
use crate::source::ib::IbConfig;
use chrono::{DateTime, Duration, Utc};
use journal::{Record, Status};
use schedule::{Job, ScheduleSettings, Slot};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The exit code of `twslake run` when another run holds the lake (sysexits' `EX_TEMPFAIL`:
/// try again later).
pub const EXIT_LOCKED: i32 = 75;

/// How far back a restarted run looks for missed slots.
const LOOKBACK_DAYS: i64 = 35;

/// Everything a run needs besides the lake and the clock.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The symbols kept current.
    pub symbols: Vec<Symbol>,
    /// The ingest settings of the batch jobs (its policy's `chain_max_age` is the chain step).
    pub cfg: IngestConfig,
    /// When the jobs run.
    pub schedule: ScheduleSettings,
    /// The gateway; the capture connects with its client id, batch jobs with the next one.
    pub gateway: IbConfig,
    /// How the capture runs (its gauges are served with the run's metrics).
    pub live: LiveOptions,
    /// The run lock's time to live (renewed every third of it; default 60 s).
    pub lock_ttl: std::time::Duration,
    /// Clock time between attempts of a failed batch job (default 15 minutes).
    pub retry_every: Duration,
    /// Real time between attempts to connect the capture (default 5 s).
    pub reconnect: std::time::Duration,
    /// Stop when the clock reaches this instant, as if `stop` turned true (default: never).
    pub until: Option<DateTime<Utc>>,
}

impl RunSettings {
    /// The defaults for `symbols` on `gateway`, with `cfg`.
    pub fn new(symbols: Vec<Symbol>, cfg: IngestConfig, gateway: IbConfig) -> Self {
        let schedule = ScheduleSettings { chain_every: cfg.policy.chain_max_age, ..Default::default() };
        RunSettings {
            symbols,
            cfg,
            schedule,
            gateway,
            live: LiveOptions::default(),
            lock_ttl: std::time::Duration::from_secs(60),
            retry_every: Duration::minutes(15),
            reconnect: std::time::Duration::from_secs(5),
            until: None,
        }
    }
}

/// The symbols and ingest settings of a run: `symbols` when given, else every symbol the lake
/// holds (its manifests), with `cfg` (the command line over `twslake.toml` over the defaults);
/// the end-of-day update then applies each symbol's stored scope over `cfg` (`jobs::scope`).
/// The one place a run's scope is decided, so a scope stored in the lake plugs in here.
pub async fn settings(lake: &Lake, symbols: &[Symbol], cfg: IngestConfig) -> Result<(Vec<Symbol>, IngestConfig)> {
    let symbols = if symbols.is_empty() { lake.manifest_symbols().await? } else { symbols.to_vec() };
    if symbols.is_empty() {
        return Err(crate::error::Error::bad_input(
            "symbols",
            "",
            "the lake holds no symbol yet: name them (`twslake run --symbols SPY,AAPL`) or run `twslake setup SYMBOL` first",
        ));
    }
    crate::jobs::config::check(&cfg)?;
    Ok((symbols, cfg))
}

/// Counts of slots by job and status, served as Prometheus text.
#[derive(Debug, Default)]
pub struct RunMetrics {
    slots: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    running: Mutex<BTreeMap<&'static str, bool>>,
}

impl RunMetrics {
    fn count(&self, job: Job, status: Status) {
        *self.slots.lock().unwrap_or_else(|e| e.into_inner()).entry((job.name(), status.name())).or_default() += 1;
    }
    fn running(&self, job: Job, on: bool) {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).insert(job.name(), on);
    }
    /// Slots of `job` that ended with `status` in this process.
    pub fn slots(&self, job: Job, status: Status) -> u64 {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).get(&(job.name(), status.name())).copied().unwrap_or(0)
    }
    /// The Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP twslake_run_slots_total Slots of the schedule by job and how they ended.\n# TYPE twslake_run_slots_total counter\n",
        );
        for ((job, status), n) in self.slots.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            out.push_str(&format!("twslake_run_slots_total{{job=\"{job}\",status=\"{status}\"}} {n}\n"));
        }
        out.push_str("# HELP twslake_run_job_running 1 while a job of the schedule runs.\n# TYPE twslake_run_job_running gauge\n");
        for (job, on) in self.running.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            out.push_str(&format!("twslake_run_job_running{{job=\"{job}\"}} {}\n", u8::from(*on)));
        }
        out
    }
}

/// How a run ended.
#[derive(Debug)]
pub enum Ended {
    /// Another run holds the lake.
    Refused(Held),
    /// Stopped (`stop` turned true).
    Stopped,
}

/// The long-running process: the schedule, the journal, the lock.
pub struct Runner {
    /// The lake kept current.
    pub lake: Lake,
    /// What and how.
    pub settings: RunSettings,
    /// The clock and how to wait on it.
    pub timing: time::Timing,
    /// Request counters of every job (served on `--metrics`).
    pub metrics: Arc<Metrics>,
    /// Slot counters.
    pub run_metrics: Arc<RunMetrics>,
    /// Alert sinks besides the log.
    pub alerts: Vec<Arc<dyn AlertSink>>,
    /// Print the jobs' progress lines.
    pub progress: bool,
}

/// A capture in progress, on its own thread ([`work::spawn_capture`]).
struct Capturing {
    slot: Slot,
    started: DateTime<Utc>,
    stop: watch::Sender<bool>,
    /// Dropped with the runner: a killed run stops capturing at once.
    _abort: tokio::sync::oneshot::Sender<()>,
    finished: Arc<std::sync::atomic::AtomicBool>,
    totals: tokio::sync::oneshot::Receiver<work::CaptureTotals>,
}

impl Capturing {
    fn is_finished(&self) -> bool {
        self.finished.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Runner {
    /// A runner with fresh metrics and no extra alert sink.
    pub fn new(lake: Lake, settings: RunSettings, timing: time::Timing) -> Self {
        Runner {
            lake,
            settings,
            timing,
            metrics: Arc::new(Metrics::default()),
            run_metrics: Arc::new(RunMetrics::default()),
            alerts: vec![],
            progress: true,
        }
    }

    fn say(&self, line: impl AsRef<str>) {
        if self.progress {
            eprintln!(
                "{} run: {}",
                self.timing.now().with_timezone(&crate::calendar::EXCHANGE_TZ).format("%Y-%m-%d %H:%M"),
                line.as_ref()
            );
        }
    }

    /// Runs the schedule until `stop` turns true (or its sender is dropped), holding the lake's
    /// run lock; refused at once when another run holds it.
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) -> Result<Ended> {
        let lock = match self.lake.try_lock("run", self.settings.lock_ttl).await? {
            Ok(lock) => lock,
            Err(held) => return Ok(Ended::Refused(held)),
        };
        let holder = lock.holder().to_string();
        let out = self.clone().schedule_loop(&holder, stop).await;
        if lock.lost() {
            self.say("warning: the run lock went stale while held (renewals failed)");
        }
        lock.release().await?;
        out.map(|()| Ended::Stopped)
    }

    async fn schedule_loop(self: Arc<Self>, holder: &str, mut stop: watch::Receiver<bool>) -> Result<()> {
        let first = journal::first_start(&self.lake, self.timing.now()).await?;
        let now = self.timing.now();
        let mut done = journal::load(&self.lake, now - Duration::days(LOOKBACK_DAYS), now).await?;
        let mut failing: HashMap<String, (u32, DateTime<Utc>, String)> = HashMap::new();
        let mut capturing: Option<Capturing> = None;
        self.say(format!("{} symbols; {} slots in the journal", self.settings.symbols.len(), done.len()));
        let stopped = |s: &watch::Receiver<bool>| *s.borrow() || s.has_changed().is_err();
        let until = self.settings.until.unwrap_or(DateTime::<Utc>::MAX_UTC);
        while !stopped(&stop) && self.timing.now() < until {
            let now = self.timing.now();
            if let Some(c) = capturing.take_if(|c| c.is_finished() || c.slot.end() <= now) {
                self.end_capture(c, holder, &mut done).await?;
                continue;
            }
            let floor = first.max(now - Duration::days(LOOKBACK_DAYS));
            let from = crate::calendar::trading_date(floor) - Duration::days(1);
            let slots: Vec<Slot> = schedule::schedule(
                from,
                crate::calendar::trading_date(now) + Duration::days(8),
                &self.settings.schedule,
            )
            .into_iter()
            .filter(|s| s.end() >= floor && !done.contains_key(&s.id()))
            .filter(|s| capturing.as_ref().is_none_or(|c| c.slot != *s))
            .collect();
            let mut ran = false;
            for job in Job::ALL {
                let due: Vec<&Slot> = slots.iter().filter(|s| s.job == job && s.at <= now).collect();
                let Some((latest, older)) = due.split_last() else { continue };
                for s in older {
                    let failed = failing.remove(&s.id());
                    let status = if failed.is_some() { Status::Failed } else { Status::Skipped };
                    let mut r = journal::record(s, status, None, now);
                    if let Some((attempts, _, e)) = failed {
                        (r.attempts, r.detail) = (attempts, format!("gave up at the next slot: {e}"));
                    } else {
                        r.detail = format!("missed; {} covers it", latest.id());
                    }
                    self.journal(s, r, holder, &mut done).await?;
                }
                if job == Job::Capture {
                    if latest.end() <= now {
                        let mut r = journal::record(latest, Status::Skipped, None, now);
                        r.detail = "missed; the session is over".into();
                        self.journal(latest, r, holder, &mut done).await?;
                    } else if capturing.is_none() {
                        capturing = Some(self.start_capture(**latest));
                    }
                    continue;
                }
                if failing.get(&latest.id()).is_some_and(|(_, retry_at, _)| *retry_at > now) {
                    continue;
                }
                ran = true;
                let started = self.timing.now();
                self.run_metrics.running(job, true);
                let outcome = tokio::select! {
                    o = self.run_job(latest) => o,
                    _ = stop.wait_for(|s| *s) => break,
                };
                self.run_metrics.running(job, false);
                match outcome {
                    Ok(detail) => {
                        let attempts = failing.remove(&latest.id()).map_or(0, |f| f.0) + 1;
                        let mut r = journal::record(latest, Status::Done, Some(started), self.timing.now());
                        (r.attempts, r.detail) = (attempts, detail);
                        self.say(format!("{} done: {}", latest.id(), r.detail));
                        self.journal(latest, r, holder, &mut done).await?;
                    }
                    Err(e) => {
                        let entry = failing.entry(latest.id()).or_insert((0, now, String::new()));
                        entry.0 += 1;
                        entry.1 = self.timing.now() + self.settings.retry_every;
                        entry.2 = e.to_string();
                        self.say(format!(
                            "{} failed (attempt {}): {e}; trying again at the next opportunity",
                            latest.id(),
                            entry.0
                        ));
                    }
                }
                // Time passed while the job ran: look again before the next one.
                break;
            }
            if ran || stopped(&stop) {
                continue;
            }
            let next = slots
                .iter()
                .map(|s| s.at)
                .filter(|at| *at > now)
                .chain(failing.values().map(|f| f.1).filter(|t| *t > now))
                .chain(capturing.as_ref().map(|c| c.slot.end()))
                .min()
                .unwrap_or(now + Duration::days(1))
                .min(until);
            self.timing.sleep_until(next, capturing.is_some(), &mut stop).await;
        }
        if let Some(mut c) = capturing.take() {
            // Stopped mid-session: flush and compact; the slot stays open for a restart.
            let _ = c.stop.send(true);
            if let Ok(t) = (&mut c.totals).await {
                self.say(format!("capture stopped: {} ticks, {} rows, {} gaps", t.ticks, t.rows, t.gaps));
            }
            self.run_metrics.running(Job::Capture, false);
        }
        Ok(())
    }

    async fn run_job(&self, slot: &Slot) -> Result<String> {
        self.say(format!("{} starting", slot.id()));
        match slot.job {
            Job::Contracts => work::contracts(self, slot.at).await,
            Job::Chain => work::chain(self, slot.at).await,
            Job::Update => work::update(self).await,
            Job::Capture => Ok(String::new()),
        }
    }

    fn start_capture(self: &Arc<Self>, slot: Slot) -> Capturing {
        self.say(format!("{} starting (until the close)", slot.id()));
        self.run_metrics.running(Job::Capture, true);
        let (tx, rx) = watch::channel(false);
        let (abort, aborted) = tokio::sync::oneshot::channel();
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let totals = work::spawn_capture(self.clone(), rx, aborted, finished.clone());
        Capturing { slot, started: self.timing.now(), stop: tx, _abort: abort, finished, totals }
    }

    async fn end_capture(&self, mut c: Capturing, holder: &str, done: &mut BTreeMap<String, Record>) -> Result<()> {
        let _ = c.stop.send(true);
        let totals = (&mut c.totals).await.unwrap_or_default();
        self.run_metrics.running(Job::Capture, false);
        let now = self.timing.now();
        let status = if totals.started { Status::Done } else { Status::Failed };
        let mut r = journal::record(&c.slot, status, Some(c.started), now);
        r.attempts = totals.attempts;
        r.detail = format!("{} ticks, {} rows, {} gaps", totals.ticks, totals.rows, totals.gaps);
        if let Some(e) = &totals.last_error {
            r.detail.push_str(&format!("; last error: {e}"));
        }
        self.say(format!("{} {}: {}", c.slot.id(), status.name(), r.detail));
        self.journal(&c.slot, r, holder, done).await
    }

    async fn journal(
        &self,
        slot: &Slot,
        mut r: Record,
        holder: &str,
        done: &mut BTreeMap<String, Record>,
    ) -> Result<()> {
        r.holder = holder.to_string();
        match r.status {
            Status::Skipped => self.say(format!("{} skipped: {}", slot.id(), r.detail)),
            Status::Failed => {
                // A slot that never succeeded: the log and every sink hear of it.
                let alert = crate::monitor::Alert {
                    severity: crate::monitor::Severity::Warning,
                    symbol: self.settings.symbols.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
                    message: format!("`run`: slot {} failed after {} attempts: {}", slot.id(), r.attempts, r.detail),
                    time: self.timing.now(),
                };
                crate::monitor::LogSink.send(&alert);
                self.alerts.iter().for_each(|sink| sink.send(&alert));
            }
            Status::Done => {}
        }
        if journal::write(&self.lake, slot, &r).await? {
            self.run_metrics.count(slot.job, r.status);
        }
        done.insert(slot.id(), r);
        Ok(())
    }
}
