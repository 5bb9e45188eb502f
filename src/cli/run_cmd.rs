//! `run`: keep the lake current on the NYSE calendar until SIGTERM/SIGINT (`crate::run`);
//! `run --dry-run` prints the schedule.

use super::ingest_cmds::{build_config, gateway_of, lake_of, symbols_of, GatewayArgs, IngestArgs};
use super::lake_cmds::LakeArg;
use crate::jobs::config::FileConfig;
use crate::monitor::AlertSink;
use crate::run::{self, schedule, time::Timing, Ended, RunSettings, Runner};
use crate::source::ib::IbConfig;
use anyhow::Context;
use clap::Args;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunCmdArgs {
    /// Symbols kept current, comma-separated (default: every symbol the lake holds, else
    /// `symbols` of the config file).
    #[arg(long, value_delimiter = ',')]
    pub symbols: Vec<String>,
    #[command(flatten)]
    lake: LakeArg,
    #[command(flatten)]
    gateway: GatewayArgs,
    #[command(flatten)]
    ingest: IngestArgs,
    /// Print the schedule of `--days` days from `--from` (default today; with `--dry-run`,
    /// `--from` is the schedule's first day) in New York time, and exit without touching the
    /// gateway or the lake.
    #[arg(long)]
    pub dry_run: bool,
    /// Days of schedule `--dry-run` prints.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
    /// Serve Prometheus metrics (requests, capture, slots of the schedule) on this address
    /// (`127.0.0.1:PORT`) for the run's whole life.
    #[arg(long)]
    pub metrics: Option<String>,
    /// POST every alert as JSON to this `http://` URL.
    #[arg(long)]
    pub alert_webhook: Option<String>,
    /// With `--as-of`: simulated seconds per real second (tests run a day in seconds).
    #[arg(long, hide = true, default_value_t = 1.0)]
    pub clock_speed: f64,
}

/// Turns true on SIGINT or SIGTERM.
fn stop_on_signals() -> anyhow::Result<tokio::sync::watch::Receiver<bool>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => eprintln!("SIGTERM: finishing and exiting"),
            _ = int.recv() => eprintln!("SIGINT: finishing and exiting"),
        }
        let _ = tx.send(true);
        // Kept alive: a dropped sender reads as a stop too, but says nothing of why.
        std::future::pending::<()>().await;
    });
    Ok(rx)
}

/// Prints the schedule; nothing else.
fn dry_run(a: &RunCmdArgs, cfg: &crate::jobs::config::IngestConfig) -> anyhow::Result<i32> {
    let from = a.ingest.from.unwrap_or_else(|| crate::calendar::trading_date(chrono::Utc::now()));
    let to = from + chrono::Duration::days(i64::from(a.days) - 1);
    let settings = schedule::ScheduleSettings { chain_every: cfg.policy.chain_max_age, ..Default::default() };
    for slot in schedule::schedule(from, to, &settings) {
        say!("{}", slot.line());
    }
    Ok(0)
}

/// `twslake run`.
pub async fn run(a: RunCmdArgs) -> anyhow::Result<i32> {
    let file = FileConfig::load(&a.ingest.config)?;
    let cfg = build_config(&a.ingest, &file)?;
    if a.dry_run {
        return dry_run(&a, &cfg);
    }
    if !(a.clock_speed.is_finite() && a.clock_speed > 0.0) {
        anyhow::bail!("--clock-speed {}: give a positive number", a.clock_speed);
    }
    let lake = lake_of(&a.lake, &file)?;
    let named = if a.symbols.is_empty() { file.symbols.clone().unwrap_or_default() } else { a.symbols.clone() };
    let (symbols, cfg) = run::settings(&lake, &symbols_of(&named)?, cfg).await?;
    let gateway = IbConfig {
        gateway: gateway_of(&a.gateway, &file),
        client_id: a.gateway.client_id.or(file.client_id).unwrap_or(30),
        timeout: Duration::from_secs(a.gateway.timeout),
    };
    let timing = match a.ingest.as_of {
        Some(t) => Timing::Simulated {
            clock: Arc::new(crate::clock::ManualClock::new(t)),
            speed: a.clock_speed,
            jump_idle: false,
        },
        None => Timing::Wall,
    };
    let mut settings = RunSettings::new(symbols, cfg, gateway);
    settings.live.heartbeat = Duration::from_secs(a.gateway.timeout.max(1));
    let mut runner = Runner::new(lake, settings, timing);
    runner.progress = !a.ingest.quiet;
    if let Some(url) = &a.alert_webhook {
        let sink: Arc<dyn AlertSink> =
            Arc::new(crate::live::webhook::WebhookSink::new(url).map_err(anyhow::Error::msg)?);
        runner.alerts.push(sink);
    }
    let runner = Arc::new(runner);
    let stop = stop_on_signals()?;
    let server = match &a.metrics {
        Some(addr) => {
            let slots = runner.run_metrics.clone();
            let (bound, task) = crate::live::http::serve_with(
                addr,
                runner.metrics.clone(),
                runner.settings.live.metrics.clone(),
                Arc::new(move || slots.render()),
            )
            .await
            .with_context(|| format!("--metrics {addr}"))?;
            eprintln!("metrics on http://{bound}/metrics");
            Some(task)
        }
        None => None,
    };
    eprintln!(
        "run: {} symbols on {}, the schedule in New York time (`twslake run --dry-run` prints it)",
        runner.settings.symbols.len(),
        crate::error::redact(&runner.settings.gateway.gateway)
    );
    let ended = runner.clone().run(stop).await;
    if let Some(t) = server {
        t.abort();
    }
    match ended? {
        Ended::Refused(held) => {
            eprintln!(
                "error: another `twslake run` holds this lake ({}, until {} unless renewed); one run per lake. \
                 Stop that one first, or wait for its lock to expire if it was killed on another machine",
                held.holder,
                held.expires.to_rfc3339()
            );
            Ok(run::EXIT_LOCKED)
        }
        Ended::Stopped => {
            eprintln!("run: stopped cleanly; the lock is released");
            Ok(0)
        }
    }
}
