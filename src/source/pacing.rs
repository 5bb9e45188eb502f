//! The pacing scheduler: IB's historical-data pacing rules, modelled so that a backfill runs close
//! to the limit without ever being told off.
//!
//! IB's rules: no identical request within 15 s; no six or more requests for one contract,
//! exchange and tick type within 2 s; at most 60 requests in any 10 minutes, a BID_ASK request
//! counting twice; at most 50 requests open at once. IB states them as hard limits for bars of
//! 30 seconds or less and a softer throttle above; they are applied to every request by default.
//! `scale` shrinks every window (to pace a simulator on compressed time). A small margin on
//! each window absorbs the difference between when we send and when the gateway counts; at
//! IB's real windows it costs 3 % of the throughput (58.3 requests per 10 minutes).
//!
//! # One budget per gateway login, across processes
//! IB counts these limits per gateway login, not per connection: two `twslake` processes on one
//! gateway each pacing alone would together break them. A pacer made [`Pacer::shared`] also
//! consults a [`ledger::Ledger`]: one file per gateway address in the user's state directory
//! (`$TWSLAKE_STATE_DIR`, else `$XDG_STATE_HOME/twslake`, else `~/.local/state/twslake`; the file
//! `pacing/<host>_<port>.ledger`), locked exclusively (`std::fs::File::lock`) while a process
//! reads the recent requests of all processes, checks the rules and appends its own.
//!
//! Why there and so: the budget belongs to the gateway login, not to a lake (two lakes can share
//! one gateway, and one lake can be fed from two machines with two logins), and a file lock needs
//! no extra process to start, supervise or find. The ledger holds wall-clock times and applies
//! the same (scaled) windows as the in-process rules; processes sharing a gateway are expected
//! to use one pacing scale. What stays per process: the 50-open-requests rule (each process's
//! `concurrency`, 4 by default, is far below it; a crashed process could not give its slots back
//! to a shared count) and the client's message spacing (a per-connection rate). A penalty after a
//! pacing violation is written to the ledger and holds back every process.
//!
//! When the state directory cannot be written (read-only home, no `HOME`), or the ledger fails
//! later, the pacer warns once and paces per process, as before: a run is never refused for
//! want of a ledger, but processes sharing that gateway may then break IB's limits.

pub mod ledger;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Duration, Instant};

/// The pacing rules in force.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacingRules {
    /// No identical request within this window.
    pub identical_window: Duration,
    /// Window of the per-contract rule.
    pub contract_window: Duration,
    /// Requests allowed per contract, exchange and tick type in `contract_window`.
    pub contract_max: u32,
    /// Window of the global rule.
    pub global_window: Duration,
    /// Weighted requests allowed in `global_window`.
    pub global_max: u32,
    /// Requests open at once.
    pub max_open: u32,
    /// Least time between two requests: the `ibapi` client sends at most 50 messages a second,
    /// so requests admitted faster would reach the gateway later, bunched, and be counted in a
    /// later window than the one they were admitted in. Real time, never scaled.
    pub min_spacing: Duration,
}

impl PacingRules {
    /// IB's rules, with every window divided by `scale` (1 = IB's real windows).
    pub fn ib(scale: f64) -> Self {
        let s = if scale.is_finite() && scale > 0.0 { scale } else { 1.0 };
        // 3–10 % of the window plus 25 ms: requests admitted in order may reach the gateway a
        // few milliseconds out of order, which matters only when the windows are scaled down.
        let w = |secs: f64, margin: f64| Duration::from_secs_f64(secs * margin / s) + Duration::from_millis(25);
        PacingRules {
            identical_window: w(15.0, 1.05),
            contract_window: w(2.0, 1.10),
            contract_max: 5,
            global_window: w(600.0, 1.03),
            global_max: 60,
            max_open: 50,
            min_spacing: Duration::from_millis(21),
        }
    }

    /// IB's softer throttle for bars above 30 seconds, as `relax_large_bars` applies it: only
    /// the identical-request and open-request rules (and the client's message rate) remain.
    pub fn relaxed(scale: f64) -> Self {
        let strict = PacingRules::ib(scale);
        PacingRules { contract_max: u32::MAX, global_max: u32::MAX, ..strict }
    }

    /// No pacing at all (a source that does not pace, or a benchmark of raw throughput).
    pub fn off() -> Self {
        PacingRules {
            identical_window: Duration::ZERO,
            contract_window: Duration::ZERO,
            contract_max: u32::MAX,
            global_window: Duration::ZERO,
            global_max: u32::MAX,
            max_open: 1024,
            min_spacing: Duration::ZERO,
        }
    }
}

/// What the pacing rules look at in a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaceKey {
    /// The whole request (contract, end, duration, bar size, what-to-show, RTH).
    pub identical: String,
    /// Contract, exchange and tick type.
    pub contract: String,
    /// 2 for BID_ASK, else 1.
    pub weight: u32,
}

impl PaceKey {
    /// How IB counts a historical request: the whole request for the identical-request rule;
    /// the contract, exchange and tick type for the per-contract rule (twslake asks by con_id on
    /// SMART, so the exchange is always SMART); BID_ASK twice in the global window.
    pub fn historical(req: &super::HistRequest) -> Self {
        let (con_id, s) = (req.instrument.con_id, req.series);
        PaceKey {
            identical: format!(
                "{con_id}|{}|{}|{}|{}|{}",
                req.end_string(),
                req.duration,
                s.bar_size.ib(),
                s.what_to_show.ib(),
                u8::from(req.use_rth)
            ),
            contract: format!("{con_id}|SMART|{}", s.what_to_show.ib()),
            weight: if s.what_to_show == crate::domain::WhatToShow::BidAsk { 2 } else { 1 },
        }
    }
}

#[derive(Default)]
struct State {
    identical: HashMap<String, Instant>,
    contract: HashMap<String, VecDeque<Instant>>,
    global: VecDeque<(Instant, u32)>,
    waited: Duration,
    sent: u64,
    last: Option<Instant>,
}

/// Admits requests no faster than the rules allow.
pub struct Pacer {
    rules: PacingRules,
    state: Mutex<State>,
    open: std::sync::Arc<Semaphore>,
    shared: Option<Shared>,
}

/// The ledger a pacer shares with other processes, and whether it still works.
struct Shared {
    ledger: Arc<ledger::Ledger>,
    broken: AtomicBool,
}

/// An admitted request; dropping it closes the request (frees its open slot).
pub struct Permit {
    _open: OwnedSemaphorePermit,
}

impl Pacer {
    /// A pacer enforcing `rules`.
    pub fn new(rules: PacingRules) -> Self {
        Pacer {
            rules,
            state: Mutex::new(State::default()),
            open: std::sync::Arc::new(Semaphore::new(rules.max_open as usize)),
            shared: None,
        }
    }

    /// This pacer, also sharing its budget with every process that uses `ledger` (module docs).
    /// Pacing that is [`PacingRules::off`] shares nothing.
    pub fn shared(mut self, ledger: Arc<ledger::Ledger>) -> Self {
        if self.rules != PacingRules::off() {
            self.shared = Some(Shared { ledger, broken: AtomicBool::new(false) });
        }
        self
    }

    /// The ledger this pacer shares, unless it failed and the pacer fell back to per-process pacing.
    pub fn ledger(&self) -> Option<&ledger::Ledger> {
        self.shared.as_ref().filter(|s| !s.broken.load(Ordering::Relaxed)).map(|s| &*s.ledger)
    }

    fn ledger_failed(&self, e: std::io::Error) {
        if let Some(s) = &self.shared {
            if !s.broken.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "the pacing ledger {} failed ({e}): pacing this process alone from now on; other processes on this gateway may break IB's limits",
                    s.ledger.path().display()
                );
            }
        }
    }

    /// Asks the shared ledger: `None` when admitted (and recorded there), else how long to wait.
    async fn ledger_admit(&self, key: &PaceKey) -> Option<Duration> {
        let ledger = Arc::clone(&self.shared.as_ref().filter(|s| !s.broken.load(Ordering::Relaxed))?.ledger);
        let (rules, key) = (self.rules, key.clone());
        let strict = rules.global_max != u32::MAX;
        // The lock may be held by another process for a moment: not on a runtime thread.
        let asked = tokio::task::spawn_blocking(move || ledger.try_admit(&rules, &key, strict)).await;
        match asked {
            Ok(Ok(wait)) => wait,
            Ok(Err(e)) => {
                self.ledger_failed(e);
                None
            }
            Err(e) => {
                self.ledger_failed(std::io::Error::other(e.to_string()));
                None
            }
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &PacingRules {
        &self.rules
    }

    /// Waits until `key` may be sent, and records it as sent.
    pub async fn admit(&self, key: &PaceKey) -> Permit {
        let started = Instant::now();
        let open = self.open.clone().acquire_owned().await.expect("the semaphore is never closed");
        loop {
            let wait_until = {
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                match self.earliest(&mut st, key, now) {
                    t if t <= now && self.shared.is_none() => {
                        self.record(&mut st, key, now);
                        st.waited += now - started;
                        return Permit { _open: open };
                    }
                    t if t <= now => None,
                    t => Some(t),
                }
            };
            let wait_until = match wait_until {
                Some(t) => t,
                // This process allows it: now every process's requests, in the ledger.
                None => match self.ledger_admit(key).await {
                    Some(wait) => Instant::now() + wait,
                    None => {
                        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                        let now = Instant::now();
                        self.record(&mut st, key, now);
                        st.waited += now - started;
                        return Permit { _open: open };
                    }
                },
            };
            tokio::time::sleep_until(wait_until).await;
        }
    }

    /// After IB answered "pacing violation" anyway: nothing more is sent for a full window.
    pub fn penalize(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let filler = self.rules.global_max.min(60);
        st.global.push_back((now, filler));
        drop(st);
        if let Some(ledger) = self.ledger() {
            if let Err(e) = ledger.penalize(&self.rules) {
                self.ledger_failed(e);
            }
        }
    }

    /// Total time requests spent waiting for the rules.
    pub fn waited(&self) -> Duration {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).waited
    }

    /// Requests admitted so far.
    pub fn sent(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).sent
    }

    fn earliest(&self, st: &mut State, key: &PaceKey, now: Instant) -> Instant {
        let r = &self.rules;
        let mut t = now;
        if let Some(last) = st.last {
            t = t.max(last + r.min_spacing);
        }
        if let Some(last) = st.identical.get(&key.identical) {
            t = t.max(*last + r.identical_window);
        }
        if let Some(q) = st.contract.get_mut(&key.contract) {
            while q.front().is_some_and(|x| *x + r.contract_window <= now) {
                q.pop_front();
            }
            if q.len() as u32 >= r.contract_max {
                let idx = q.len() - r.contract_max as usize;
                t = t.max(q[idx] + r.contract_window);
            }
        }
        while st.global.front().is_some_and(|(x, _)| *x + r.global_window <= now) {
            st.global.pop_front();
        }
        let mut used: u32 = st.global.iter().map(|(_, w)| *w).sum();
        if used + key.weight > r.global_max {
            for (x, w) in st.global.iter() {
                used -= w;
                if used + key.weight <= r.global_max {
                    t = t.max(*x + r.global_window);
                    break;
                }
            }
        }
        t
    }

    fn record(&self, st: &mut State, key: &PaceKey, now: Instant) {
        if !self.rules.identical_window.is_zero() {
            st.identical.retain(|_, t| *t + self.rules.identical_window > now);
            st.identical.insert(key.identical.clone(), now);
        }
        if !self.rules.contract_window.is_zero() {
            st.contract.entry(key.contract.clone()).or_default().push_back(now);
        }
        if !self.rules.global_window.is_zero() {
            st.global.push_back((now, key.weight));
        }
        st.sent += 1;
        st.last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32, contract: &str, weight: u32) -> PaceKey {
        PaceKey { identical: format!("{contract}-{i}"), contract: contract.into(), weight }
    }

    /// Counts, over the admission times, the worst number in any window of `len`.
    fn worst(times: &[(Instant, u32)], len: Duration) -> u32 {
        times
            .iter()
            .map(|(t0, _)| times.iter().filter(|(t, _)| *t >= *t0 && *t < *t0 + len).map(|(_, w)| w).sum())
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn global_rule_holds_and_runs_near_the_limit() {
        let p = Pacer::new(PacingRules::ib(1.0));
        let mut times = Vec::new();
        let t0 = Instant::now();
        for i in 0..180 {
            drop(p.admit(&key(i, &format!("c{}", i % 40), 1)).await);
            times.push((Instant::now(), 1));
        }
        assert!(worst(&times, Duration::from_secs(600)) <= 60);
        // After the first burst of 60, 120 more take two windows: the sustained rate.
        let windows = (Instant::now() - t0).as_secs_f64() / 600.0;
        assert!(120.0 / windows >= 58.0, "{} per 10 minutes", 120.0 / windows);
    }

    #[tokio::test(start_paused = true)]
    async fn bid_ask_counts_twice() {
        let p = Pacer::new(PacingRules::ib(1.0));
        let mut times = Vec::new();
        for i in 0..90 {
            let w = if i % 3 == 0 { 2 } else { 1 };
            drop(p.admit(&key(i, &format!("c{i}"), w)).await);
            times.push((Instant::now(), w));
        }
        assert!(worst(&times, Duration::from_secs(600)) <= 60);
    }

    #[tokio::test(start_paused = true)]
    async fn per_contract_and_identical_rules_hold() {
        let p = Pacer::new(PacingRules::ib(1.0));
        let mut times = Vec::new();
        for i in 0..20 {
            drop(p.admit(&key(i, "spy", 1)).await);
            times.push((Instant::now(), 1));
        }
        assert!(worst(&times, Duration::from_secs(2)) <= 5);
        let t = Instant::now();
        drop(p.admit(&key(19, "spy", 1)).await);
        assert!(Instant::now() - t >= Duration::from_secs(14), "an identical request waits 15 s");
    }

    #[tokio::test(start_paused = true)]
    async fn scale_shrinks_the_windows() {
        // Scale 60: a 10-second window. 180 requests are three windows' worth: two waits.
        let p = Pacer::new(PacingRules::ib(60.0));
        let t0 = Instant::now();
        for i in 0..180 {
            drop(p.admit(&key(i, &format!("c{i}"), 1)).await);
        }
        let secs = (Instant::now() - t0).as_secs_f64();
        assert!((20.5..22.5).contains(&secs), "180 requests at 60 per scaled window: {secs}");
    }

    #[tokio::test(start_paused = true)]
    async fn relaxed_rules_keep_only_identical_and_open() {
        let p = Pacer::new(PacingRules::relaxed(1.0));
        let t0 = Instant::now();
        for i in 0..200 {
            drop(p.admit(&key(i, "spy", 1)).await);
        }
        // Only the client's message rate spaces them: 200 × 21 ms.
        assert!(Instant::now() - t0 < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn pacers_of_two_processes_share_one_ledger() {
        // Scale 600: a global window of about a second. 45 requests each fit one pacer alone;
        // 90 on one gateway must wait for the window to pass.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pacing").join("gw.ledger");
        let open = || Arc::new(ledger::Ledger::open(&path).unwrap());
        let (a, b) =
            (Pacer::new(PacingRules::ib(600.0)).shared(open()), Pacer::new(PacingRules::ib(600.0)).shared(open()));
        assert!(a.ledger().is_some());
        let t0 = std::time::Instant::now();
        for i in 0..45 {
            drop(a.admit(&key(i, &format!("a{i}"), 1)).await);
            drop(b.admit(&key(i, &format!("b{i}"), 1)).await);
        }
        let secs = t0.elapsed().as_secs_f64();
        assert!(secs >= 1.0, "90 requests on one gateway took {secs} s, under one global window");
        assert_eq!((a.sent(), b.sent()), (45, 45));
        // Off shares nothing.
        assert!(Pacer::new(PacingRules::off()).shared(open()).ledger().is_none());
    }

    #[tokio::test]
    async fn off_never_waits() {
        let p = Pacer::new(PacingRules::off());
        for i in 0..1000 {
            drop(p.admit(&key(i, "x", 1)).await);
        }
        assert_eq!(p.sent(), 1000);
        assert!(p.waited() < Duration::from_millis(200));
    }
}
