//! The simulated gateway driven by the real `ibapi` client over TCP.

mod american;
mod cli;
mod contracts;
mod corporate;
mod faults;
mod fuzz;
mod history;
mod market_data;
mod pacing;
mod realism;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ibapi::Client;
use twslake::sim::{ManualClock, Sim, SimBuilder, SimHandle};

/// Tuesday 2026-11-24, 16:30 New York: the session is over, so every bar of the day is final.
pub const AFTER_CLOSE: &str = "2026-11-24T21:30:00Z";
/// The same Tuesday at 12:00 New York, mid-session.
pub const MIDDAY: &str = "2026-11-24T17:00:00Z";

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("test instant").with_timezone(&Utc)
}

/// A builder with the market frozen at `now`, seed 7 and pacing 1000× faster than IB.
pub fn builder(now: &str) -> SimBuilder {
    Sim::builder().seed(7).pacing_scale(1000.0).clock(Arc::new(ManualClock::new(at(now))))
}

pub async fn start(now: &str) -> SimHandle {
    builder(now).start().await.expect("sim starts")
}

/// A real client with a short one-shot timeout (ibapi's default is 30 s).
pub async fn client(sim: &SimHandle, id: i32) -> Client {
    connect(sim, id).await.expect("client connects")
}

pub async fn connect(sim: &SimHandle, id: i32) -> Result<Client, ibapi::Error> {
    Client::builder()
        .address(sim.address())
        .client_id(id)
        .one_shot_timeout(Duration::from_secs(5))
        .max_reconnect_attempts(3)
        .connect()
        .await
}

/// The code of an `Error::Notice`, or a panic naming what came instead.
pub fn notice_code<T: std::fmt::Debug>(r: Result<T, ibapi::Error>) -> i32 {
    match r {
        Err(ibapi::Error::Notice(n)) => n.code,
        other => panic!("expected an IB error notice, got {other:?}"),
    }
}
