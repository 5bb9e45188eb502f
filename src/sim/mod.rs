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
