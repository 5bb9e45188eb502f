//! The simulated TWS gateway: the server side of the TWS API wire protocol on TCP, serving a
//! deterministic market with IB's refusals, pacing and faults, so the real `ibapi` client can be
//! driven without an account.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use twslake::sim::Sim;
//! let sim = Sim::builder().seed(7).pacing_scale(600.0).start().await?;
//! let client = ibapi::Client::connect(&sim.address(), 1).await.expect("connect");
//! # drop(client);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`wire`]: framing, handshake, frame limits.
//! - [`proto`]: our protobuf messages with the TWS field tags.
//! - [`market`]: the deterministic market (spot paths, sessions, options, the surface).
//! - [`history`]: historical bars and head timestamps, IB's duration/bar-size table.
//! - [`contracts`], [`mktdata`]: contract details, option chains, market data.
//! - [`pacing`]: IB's four historical pacing rules, scaled.
//! - [`faults`]: drops, stalls, notices, malformed frames, refused connections.
//! - [`server`], [`session`]: accept loop, per-client sessions and dispatch.
//! - [`record`]: the request journal and `--request-log`.
//! - [`truth`], [`cli`]: the ground truth and `twslake sim`.

//! # Behaviour, as a client sees it
//! - Handshake: server version 226 (or the client's highest in 215–226), the gateway time as
//!   `YYYYMMDD HH:MM:SS US/Eastern`, then NextValidId, ManagedAccounts (`DU1234567`) and the farm
//!   notices 2104/2106/2158. A client id already connected gets 326 and the socket closes.
//! - Historical bars: exactly one bars message then the end message, whose start/end read
//!   `YYYYMMDD HH:MM:SS US/Eastern`; daily and longer bars dated `YYYYMMDD`, intraday bars in
//!   epoch seconds; only completed minutes up to the market clock; regular hours only (`useRTH`
//!   is accepted either way). Volume/WAP/count are `-1` except for TRADES, as TWS sends.
//! - Refusals: 200 unknown or expired contract; 162 pacing, too fine a bar for the duration
//!   (IB's table), no data (no session in the window, bars ≤ 30 s older than six months);
//!   321 malformed bar size, duration, end or what-to-show; 354 market data for the
//!   unsubscribed symbol (MSFT by default) unless the client asked for delayed data; an option
//!   that did not trade answers TRADES with an empty bars message.
//! - `keepUpToDate`: after the bars and the end message, the latest bar at the market clock is
//!   sent again every second until the request is cancelled.
//! - Not simulated: extended hours, real-time bars, tick-by-tick, orders. For sub-minute option bars the VWAP does not
//!   aggregate exactly to the minute (prices, volumes and counts do).

pub mod cli;
pub mod contracts;
pub mod faults;
pub mod history;
pub mod market;
pub mod mktdata;
pub mod pacing;
pub mod proto;
pub mod record;
pub mod server;
pub mod session;
pub mod truth;
pub mod wire;

pub use faults::Fault;
pub use market::{Clock, ManualClock, WallClock};
pub use record::{Outcome, RequestRecord};
pub use server::{Sim, SimBuilder, SimHandle};
