//! The time `twslake run` lives in: the wall clock, or a simulated clock it moves itself, so a
//! test runs a week in seconds.

use crate::clock::{Clock, ManualClock, WallClock};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How the runner reads and waits for time.
#[derive(Debug, Clone)]
pub enum Timing {
    /// The real clock: waits are real waits (re-reading the clock at least every minute, so a
    /// suspended machine or a clock step does not oversleep a slot).
    Wall,
    /// A simulated clock that only the runner moves: while it waits, the clock advances `speed`
    /// simulated seconds per real second; with `jump_idle`, a wait with no capture running (no
    /// one watching time pass) jumps straight to its end. While a job runs the clock stands
    /// still, so a batch job sees the instant of its slot.
    Simulated {
        /// The clock, shared with whatever else must agree on "now" (a simulated gateway).
        clock: Arc<ManualClock>,
        /// Simulated seconds per real second.
        speed: f64,
        /// Jump over waits when nothing is captured.
        jump_idle: bool,
    },
}

/// Real time between two steps of a simulated clock.
const STEP: Duration = Duration::from_millis(10);

impl Timing {
    /// The clock the jobs read.
    pub fn clock(&self) -> Arc<dyn Clock> {
        match self {
            Timing::Wall => Arc::new(WallClock),
            Timing::Simulated { clock, .. } => clock.clone(),
        }
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Timing::Wall => Utc::now(),
            Timing::Simulated { clock, .. } => clock.now(),
        }
    }

    /// Waits until `t` (or until `stop` turns true). `watched`: a capture is running.
    pub async fn sleep_until(&self, t: DateTime<Utc>, watched: bool, stop: &mut watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let now = self.now();
            if now >= t {
                return;
            }
            let step = match self {
                Timing::Wall => (t - now).to_std().unwrap_or_default().min(Duration::from_secs(60)),
                Timing::Simulated { clock, jump_idle: true, .. } if !watched => {
                    clock.set(t);
                    return;
                }
                Timing::Simulated { clock, speed, .. } => {
                    let by = chrono::Duration::from_std(STEP.mul_f64(speed.max(0.0))).unwrap_or(chrono::Duration::MAX);
                    clock.set(t.min(now.checked_add_signed(by).unwrap_or(t)));
                    STEP
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(step) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}
