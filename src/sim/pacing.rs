//! IB's pacing rules for historical data requests, shrunk by a scale factor for tests.
//!
//! IB's rules (its documentation on "Historical Data Limitations"):
//! 1. no identical request within 15 seconds;
//! 2. no six or more requests for the same contract, exchange and tick type within 2 seconds;
//! 3. no more than 60 requests in any 10-minute window, a BID_ASK request counting twice;
//! 4. no more than 50 requests open at once.
//!
//! A violation is answered with error 162 and is not itself counted, so a client that backs off
//! recovers. The rules apply across all clients of the gateway, as IB paces per session.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A monotonic time source for the pacing windows, replaceable in tests.
pub trait Ticker: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealTicker;

impl Ticker for RealTicker {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Which rule a request broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// Rule 1.
    Identical,
    /// Rule 2.
    SameContractBurst,
    /// Rule 3.
    TenMinuteWindow,
    /// Rule 4.
    TooManyOpen,
}

/// What identifies a request for the pacing rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaceKey {
    /// Everything in the request (rule 1).
    pub identical: String,
    /// Contract, exchange and tick type (rule 2).
    pub contract: String,
    /// 2 for BID_ASK, else 1 (rule 3).
    pub weight: u32,
}

#[derive(Debug)]
struct Entry {
    at: Instant,
    key: PaceKey,
}

/// The pacing state of one gateway.
#[derive(Debug)]
pub struct Pacer {
    scale: f64,
    ticker: Arc<dyn Ticker>,
    history: VecDeque<Entry>,
    open: usize,
}

/// IB's windows and limits.
const IDENTICAL_WINDOW: Duration = Duration::from_secs(15);
const BURST_WINDOW: Duration = Duration::from_secs(2);
const BURST_LIMIT: usize = 6;
const LONG_WINDOW: Duration = Duration::from_secs(600);
const LONG_LIMIT: u32 = 60;
const OPEN_LIMIT: usize = 50;

impl Pacer {
    /// A pacer whose windows are IB's divided by `scale` (1 = faithful; ≤ 0 or NaN counts as 1).
    pub fn new(scale: f64, ticker: Arc<dyn Ticker>) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 { scale } else { 1.0 };
        Pacer { scale, ticker, history: VecDeque::new(), open: 0 }
    }

    fn window(&self, d: Duration) -> Duration {
        d.div_f64(self.scale)
    }

    /// Admits a request (recording it and counting it open) or names the rule it breaks.
    pub fn admit(&mut self, key: PaceKey) -> Result<(), Violation> {
        let now = self.ticker.now();
        let long = self.window(LONG_WINDOW);
        while self.history.front().is_some_and(|e| now.duration_since(e.at) >= long) {
            self.history.pop_front();
        }
        let within = |e: &Entry, d: Duration| now.duration_since(e.at) < d;
        let (ident, burst) = (self.window(IDENTICAL_WINDOW), self.window(BURST_WINDOW));
        if self.open >= OPEN_LIMIT {
            return Err(Violation::TooManyOpen);
        }
        if self.history.iter().any(|e| within(e, ident) && e.key.identical == key.identical) {
            return Err(Violation::Identical);
        }
        if self.history.iter().filter(|e| within(e, burst) && e.key.contract == key.contract).count() + 1 >= BURST_LIMIT
        {
            return Err(Violation::SameContractBurst);
        }
        if self.history.iter().map(|e| e.key.weight).sum::<u32>() + key.weight > LONG_LIMIT {
            return Err(Violation::TenMinuteWindow);
        }
        self.history.push_back(Entry { at: now, key });
        self.open += 1;
        Ok(())
    }

    /// Marks one admitted request as answered (or cancelled).
    pub fn close(&mut self) {
        self.open = self.open.saturating_sub(1);
    }

    /// Requests currently open.
    pub fn open(&self) -> usize {
        self.open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Debug)]
    struct Manual(Mutex<Instant>);
    impl Ticker for Manual {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
    impl Manual {
        fn advance(&self, d: Duration) {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) += d;
        }
    }

    fn key(id: &str, contract: &str, weight: u32) -> PaceKey {
        PaceKey { identical: id.into(), contract: contract.into(), weight }
    }

    fn pacer(scale: f64) -> (Pacer, Arc<Manual>) {
        let t = Arc::new(Manual(Mutex::new(Instant::now())));
        (Pacer::new(scale, t.clone()), t)
    }

    #[test]
    fn identical_requests_wait_fifteen_seconds() {
        let (mut p, t) = pacer(1.0);
        assert_eq!(p.admit(key("a", "c", 1)), Ok(()));
        p.close();
        t.advance(Duration::from_secs(14));
        assert_eq!(p.admit(key("a", "c", 1)), Err(Violation::Identical));
        t.advance(Duration::from_secs(1));
        assert_eq!(p.admit(key("a", "c", 1)), Ok(()));
    }

    #[test]
    fn six_for_one_contract_within_two_seconds() {
        let (mut p, t) = pacer(1.0);
        for i in 0..5 {
            assert_eq!(p.admit(key(&i.to_string(), "c", 1)), Ok(()));
        }
        assert_eq!(p.admit(key("x", "c", 1)), Err(Violation::SameContractBurst));
        assert_eq!(p.admit(key("x", "other", 1)), Ok(()));
        t.advance(Duration::from_secs(2));
        assert_eq!(p.admit(key("y", "c", 1)), Ok(()));
    }

    #[test]
    fn sixty_per_ten_minutes_with_bid_ask_double() {
        let (mut p, t) = pacer(1.0);
        for i in 0..30 {
            assert_eq!(p.admit(key(&i.to_string(), &i.to_string(), 2)), Ok(()));
            p.close();
        }
        assert_eq!(p.admit(key("y", "y", 1)), Err(Violation::TenMinuteWindow));
        t.advance(Duration::from_secs(600));
        assert_eq!(p.admit(key("y", "y", 1)), Ok(()));
    }

    #[test]
    fn fifty_open_and_scale_shrinks_windows() {
        let (mut p, t) = pacer(600.0);
        for i in 0..50 {
            assert_eq!(p.admit(key(&i.to_string(), &i.to_string(), 1)), Ok(()));
        }
        assert_eq!(p.admit(key("z", "z", 1)), Err(Violation::TooManyOpen));
        p.close();
        assert_eq!(p.admit(key("0", "0", 1)), Err(Violation::Identical));
        t.advance(Duration::from_millis(25));
        assert_eq!(p.admit(key("0", "0", 1)), Ok(()));
    }
}
