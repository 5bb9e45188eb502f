//! Ingest against the simulated gateway over TCP, with the real `ibapi` client.

mod adjusted;
mod concurrent;
mod corporate;
mod deadline;
mod expiry;
mod faults;
mod setup;
mod spot;
mod surface;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use twslake::clock::Clock;
use twslake::jobs::config::{parse_series, IngestConfig, OptionSelection};
use twslake::jobs::Ingest;
use twslake::sim::{ManualClock, Sim, SimHandle};
use twslake::source::ib::{IbConfig, IbSource};
use twslake::Lake;

/// Tuesday 2026-11-24 after the close: every bar of the day is final.
pub const AFTER_CLOSE: &str = "2026-11-24T21:30:00Z";
/// Pacing windows 1000× shorter, on both sides.
pub const SCALE: f64 = 1000.0;

pub static CLIENT_IDS: AtomicI32 = AtomicI32::new(100);

/// A simulator frozen at `now`.
pub async fn sim_at(now: &str) -> SimHandle {
    sim_at_scaled(now, SCALE).await
}

/// A simulator frozen at `now`, its pacing windows divided by `scale`.
pub async fn sim_at_scaled(now: &str, scale: f64) -> SimHandle {
    let at = chrono::DateTime::parse_from_rfc3339(now).unwrap().with_timezone(&chrono::Utc);
    Sim::builder()
        .listen("127.0.0.1:0")
        .seed(7)
        .pacing_scale(scale)
        .clock(Arc::new(ManualClock::new(at)))
        .start()
        .await
        .unwrap()
}

/// A small run: 60 sessions of daily bars, 2 of minute bars (3 once `Ingest::new` extends them to
/// the option sessions), 8 options near the money with 3 sessions of 5-minute mids.
pub fn small_config() -> IngestConfig {
    IngestConfig {
        equity: vec![parse_series("1 day/TRADES/60", 60).unwrap(), parse_series("1 min/TRADES/2", 2).unwrap()],
        options: OptionSelection {
            expiry_days: 20,
            strike_band: 0.03,
            max_contracts: 8,
            sessions: 3,
            ..Default::default()
        },
        pacing_scale: SCALE,
        ..Default::default()
    }
}

/// An ingester on `lake`, connected to `sim`, on the simulator's clock.
pub async fn ingest(sim: &SimHandle, lake: &Lake, cfg: IngestConfig) -> Ingest<IbSource> {
    let ib = IbConfig {
        gateway: sim.address(),
        client_id: CLIENT_IDS.fetch_add(1, Ordering::SeqCst),
        timeout: Duration::from_secs(5),
    };
    let source = IbSource::connect(&ib).await.unwrap();
    let clock: Arc<dyn Clock> = sim.market().clock().clone();
    Ingest::new(lake.clone(), source, cfg, clock)
}

/// Historical requests the simulator received so far.
pub fn historical(sim: &SimHandle) -> Vec<twslake::sim::RequestRecord> {
    sim.requests().into_iter().filter(|r| r.kind == "historical_data").collect()
}
