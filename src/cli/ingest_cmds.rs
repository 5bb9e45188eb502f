//! `setup`, `update` and `demo`: ingest runs against a gateway (or the built-in simulator).

use super::lake_cmds::LakeArg;
use crate::clock::{Clock, WallClock};
use crate::domain::Symbol;
use crate::jobs::config::{self, FileConfig, IngestConfig};
use crate::jobs::orchestrator::RunReport;
use crate::jobs::Ingest;
use crate::lake::Lake;
use crate::query::surface::Surfaces;
use crate::source::ib::{IbConfig, IbSource};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The longest `--timeout`: a day (longer waits are no deadline at all, and overflow clocks).
const MAX_TIMEOUT_SECS: u64 = 86_400;

/// Where the gateway is and how to talk to it.
#[derive(Debug, Args, Clone)]
pub struct GatewayArgs {
    /// TWS or IB Gateway, `HOST:PORT`.
    #[arg(long, env = "TWSLAKE_GATEWAY")]
    pub gateway: Option<String>,
    /// API client id (unique per connection).
    #[arg(long)]
    pub client_id: Option<i32>,
    /// Seconds to wait for the connection and handshake, and for any one answer; a gateway
    /// that stops answering altogether ends the run within this plus a few seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))]
    pub timeout: u64,
}

/// What to ingest and how.
#[derive(Debug, Args, Clone)]
pub struct IngestArgs {
    /// Settings file (optional; the command line overrides it).
    #[arg(long, default_value = "twslake.toml")]
    pub config: PathBuf,
    /// First date of daily bars (default: five years back).
    #[arg(long)]
    pub from: Option<chrono::NaiveDate>,
    /// Equity series `BAR SIZE/WHAT/SESSIONS`, repeatable (default "1 day/TRADES/1260" and "1 min/TRADES/10").
    #[arg(long)]
    pub equity: Vec<String>,
    /// Option series `BAR SIZE/WHAT`, repeatable (default "5 mins/MIDPOINT").
    #[arg(long)]
    pub option_series: Vec<String>,
    /// Option expiries within this many days (default 60).
    #[arg(long)]
    pub expiry_days: Option<i64>,
    /// Option strikes within this fraction of the spot (default 0.10).
    #[arg(long)]
    pub strike_band: Option<f64>,
    /// Option contracts per underlying, nearest the money first (default 200).
    #[arg(long)]
    pub max_contracts: Option<usize>,
    /// Sessions of option history (default 5).
    #[arg(long)]
    pub option_sessions: Option<u32>,
    /// Divide IB's pacing windows by this (match `twslake sim --pacing-scale`; default 1).
    #[arg(long)]
    pub pacing_scale: Option<f64>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Pace bars of a minute and longer by IB's softer throttle only (identical and open
    /// requests); bars of 30 seconds or less always get the hard limits.
    #[arg(long)]
    pub relax_pacing: bool,
    /// Quiet: no progress (no bars, no progress lines); errors and the final summary only.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Print the run's summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run as if now were this instant (RFC 3339): reproducible runs against a frozen simulator.
    #[arg(long, hide = true)]
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
}

/// Arguments of `setup` and `update`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Symbols as IB spells them (`update`: default every symbol in the lake).
    pub symbols: Vec<String>,
    #[command(flatten)]
    lake: LakeArg,
    #[command(flatten)]
    gateway: GatewayArgs,
    #[command(flatten)]
    ingest: IngestArgs,
    /// `update`: record the flags given in the lake's stored scope (without it they hold for
    /// this run only). `setup` always records what it is asked for.
    #[arg(long)]
    save_scope: bool,
}

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    lake: LakeArg,
    /// Symbols to set up on the simulator.
    #[arg(long, value_delimiter = ',', default_value = "SPY,QQQ,BRK B")]
    symbols: Vec<String>,
    /// Quiet: no progress (no bars, no progress lines); errors and the final summary only.
    #[arg(long, short = 'q')]
    quiet: bool,
}

pub(super) fn build_config(a: &IngestArgs, file: &FileConfig) -> anyhow::Result<IngestConfig> {
    let mut cfg = IngestConfig::default();
    let equity = if a.equity.is_empty() { file.equity.clone().unwrap_or_default() } else { a.equity.clone() };
    if !equity.is_empty() {
        cfg.equity = equity.iter().map(|s| config::parse_series(s, 1260)).collect::<Result<_, _>>()?;
    }
    let opt = if a.option_series.is_empty() {
        file.option_series.clone().unwrap_or_default()
    } else {
        a.option_series.clone()
    };
    if !opt.is_empty() {
        cfg.options.series =
            opt.iter().map(|s| config::parse_series(s, 1).map(|e| e.series)).collect::<Result<_, _>>()?;
    }
    cfg.from = a.from.or(file.from);
    cfg.options.expiry_days = a.expiry_days.or(file.expiry_days).unwrap_or(cfg.options.expiry_days);
    cfg.options.strike_band = a.strike_band.or(file.strike_band).unwrap_or(cfg.options.strike_band);
    cfg.options.max_contracts = a.max_contracts.or(file.max_contracts).unwrap_or(cfg.options.max_contracts);
    cfg.options.sessions = a.option_sessions.or(file.option_sessions).unwrap_or(cfg.options.sessions);
    cfg.pacing_scale = a.pacing_scale.or(file.pacing_scale).unwrap_or(1.0);
    cfg.concurrency = a.concurrency.max(1);
    cfg.relax_large_bars = a.relax_pacing;
    check_bounds(&cfg, a.as_of.unwrap_or_else(chrono::Utc::now))?;
    config::check(&cfg)?;
    Ok(cfg)
}

/// The bounds of `super::bounds` over the merged settings (flags and `twslake.toml` alike), so
/// nothing out of range reaches the planner's date arithmetic; `now` decides what "today" is.
fn check_bounds(cfg: &IngestConfig, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<()> {
    use super::bounds::{date, today_at, within};
    if let Some(from) = cfg.from {
        date("--from (or `from` in twslake.toml)", from, today_at(now))?;
    }
    let o = &cfg.options;
    within("--expiry-days (or `expiry_days` in twslake.toml)", o.expiry_days, 0, 3650, " days")?;
    within(
        "--strike-band (or `strike_band` in twslake.toml)",
        o.strike_band,
        1e-6,
        0.999_999,
        " (a fraction of spot)",
    )?;
    within("--max-contracts (or `max_contracts` in twslake.toml)", o.max_contracts, 0, 100_000, " contracts")?;
    within("--option-sessions (or `option_sessions` in twslake.toml)", o.sessions, 0, 2520, " sessions")?;
    within("--pacing-scale (or `pacing_scale` in twslake.toml)", cfg.pacing_scale, 0.001, 1e6, "")?;
    within("--concurrency", cfg.concurrency, 1, 64, " requests")?;
    for e in &cfg.equity {
        within("--equity (or `equity` in twslake.toml) sessions", e.sessions, 0, 25_200, " sessions")?;
    }
    Ok(())
}

pub(super) fn symbols_of(names: &[String]) -> anyhow::Result<Vec<Symbol>> {
    Ok(names.iter().map(|s| Symbol::new(s)).collect::<Result<_, _>>()?)
}

/// Prints the summary; the exit code is 0 only when everything asked for is present or final-empty.
fn finish(report: &RunReport, json: bool) -> anyhow::Result<i32> {
    if json {
        say!("{}", serde_json::to_string_pretty(report)?);
    } else {
        say!("\nsummary");
        for (k, n) in &report.requests {
            say!("  requests {k:<32} {n:>6}");
        }
        for (ds, n) in &report.rows {
            say!("  rows     {ds:<32} {n:>6}");
        }
        say!("  pacing   waited {:.1} s, {} violations", report.pacing_wait_secs, report.pacing_violations);
        for s in &report.symbols {
            let missing = s.equity_windows_missing;
            let failed = s.equity.failed + s.options.failed;
            let refused = s.option_days_refused;
            let refused_note = if refused > 0 {
                format!(", {refused} option sessions refused for want of their spot")
            } else {
                String::new()
            };
            let state = match &s.error {
                Some(e) => format!("FAILED: {e}"),
                None if missing == 0 && failed == 0 && refused == 0 => "complete".to_string(),
                None => format!(
                    "{missing} equity windows still missing, {failed} requests failed{refused_note} (run again)"
                ),
            };
            say!("  {:<8} {state}", s.symbol);
        }
    }
    Ok(if report.complete() { 0 } else { 1 })
}

async fn run(a: RunArgs, update: bool) -> anyhow::Result<i32> {
    use super::scope_cmd::{given_keys, run_scopes, save};
    use crate::jobs::scope::Scope;
    let file = FileConfig::load(&a.ingest.config)?;
    let cfg = build_config(&a.ingest, &file)?;
    let lake = lake_of(&a.lake, &file)?;
    let mut names = a.symbols.clone();
    if names.is_empty() {
        names = file.symbols.clone().unwrap_or_default();
    }
    let mut symbols = symbols_of(&names)?;
    if symbols.is_empty() && update {
        symbols = lake.manifest_symbols().await?;
    }
    if symbols.is_empty() {
        anyhow::bail!("no symbols: name them (e.g. `twslake setup SPY QQQ`) or list them in twslake.toml");
    }
    // Each symbol runs with its stored scope, the flags given over it (`scope_cmd`'s decisions).
    let (flags, given) = (Scope::of(&cfg), given_keys(&a.ingest));
    let (scopes, unscoped) = run_scopes(&lake, &symbols, &flags, &given).await?;
    let quiet = a.ingest.quiet || a.ingest.json;
    let note = |text: String| {
        if !quiet {
            crate::monitor::progress::line(&text);
        }
    };
    if update && !unscoped.is_empty() && !a.save_scope {
        let names: Vec<&str> = unscoped.iter().map(Symbol::as_str).collect();
        note(format!(
            "no stored scope for {} (a lake set up before scopes were kept): using the command line, twslake.toml \
             and the defaults as before; `update --save-scope` or `setup` records one",
            names.join(", ")
        ));
    }
    if update && !given.is_empty() && unscoped.len() < symbols.len() && !a.save_scope {
        note(format!("flags {} hold for this run only (`--save-scope` records them)", given.join(", ")));
    }
    // Symbols with the same settings run together.
    let groups = crate::jobs::scope::groups(scopes.into_iter().map(|(s, scope)| (s, scope.config(&cfg))));
    let mut ingest = ingest_on(lake.clone(), &a.gateway, &a.ingest, &file, cfg, 17).await?;
    let silenced = ingest.source.silenced();
    tokio::pin!(silenced);
    let mut report = RunReport::default();
    let mut done = Vec::new();
    for (c, members) in groups {
        ingest.reconfigure(c);
        let work = async {
            if update {
                ingest.update(&members).await
            } else {
                ingest.setup(&members).await
            }
        };
        // A gateway that stops answering ends the run at once (what was written stays consistent:
        // writes are atomic and the next run settles the rest); its error is retryable.
        report = tokio::select! {
            biased;
            e = &mut silenced => return Err(e.into()),
            r = work => r,
        };
        done.append(&mut report.symbols);
    }
    report.symbols = done;
    if !update || a.save_scope {
        // Recorded once the symbol is known: one the gateway does not know leaves nothing.
        let known = lake.manifest_symbols().await?;
        for s in symbols.iter().filter(|s| known.contains(s)) {
            save(&lake, s, &flags, &given, quiet).await?;
        }
    }
    finish(&report, a.ingest.json)
}

/// The lake of a command: `--lake`, else the config file's, else `./lake`.
pub(super) fn lake_of(lake: &LakeArg, file: &FileConfig) -> anyhow::Result<Lake> {
    let url = if lake.lake == "./lake" { file.lake.clone().unwrap_or(lake.lake.clone()) } else { lake.lake.clone() };
    Ok(Lake::open(&url)?)
}

/// The gateway's address: `--gateway`, else the config file's, else IB Gateway's paper port.
pub(super) fn gateway_of(gateway: &GatewayArgs, file: &FileConfig) -> String {
    gateway.gateway.clone().or(file.gateway.clone()).unwrap_or_else(|| "127.0.0.1:4002".into())
}

/// An ingester on `lake`, connected to the gateway the arguments and the config file name, on
/// the wall clock (or `--as-of`), printing progress.
pub(super) async fn ingest_on(
    lake: Lake,
    gateway: &GatewayArgs,
    args: &IngestArgs,
    file: &FileConfig,
    cfg: IngestConfig,
    default_client_id: i32,
) -> anyhow::Result<Ingest<IbSource>> {
    let ib = IbConfig {
        gateway: gateway_of(gateway, file),
        client_id: gateway.client_id.or(file.client_id).unwrap_or(default_client_id),
        timeout: Duration::from_secs(gateway.timeout.clamp(1, MAX_TIMEOUT_SECS)),
    };
    let source = IbSource::connect(&ib).await?;
    let clock: Arc<dyn Clock> = match args.as_of {
        Some(t) => Arc::new(crate::clock::ManualClock::new(t)),
        None => Arc::new(WallClock),
    };
    let mut ingest = Ingest::new(lake, source, cfg, clock);
    ingest.share_pacing(&ib.gateway);
    ingest.progress = !args.quiet;
    Ok(ingest)
}

pub async fn setup(a: RunArgs) -> anyhow::Result<i32> {
    run(a, false).await
}

pub async fn update(a: RunArgs) -> anyhow::Result<i32> {
    run(a, true).await
}

/// The demo's settings: enough history to look at, small enough to finish in seconds.
pub fn demo_config(pacing_scale: f64) -> IngestConfig {
    let equity = vec![
        config::parse_series("1 day/TRADES/504", 504).expect("valid series"),
        config::parse_series("1 min/TRADES/5", 5).expect("valid series"),
    ];
    // One-minute mids over two sessions: what `twslake surface SYMBOL --at …` reads by default.
    let options = config::OptionSelection {
        expiry_days: 35,
        strike_band: 0.07,
        max_contracts: 100,
        series: vec![config::parse_series("1 min/MIDPOINT", 1).expect("valid series").series],
        sessions: 2,
    };
    IngestConfig { equity, options, pacing_scale, ..Default::default() }
}

pub async fn demo(a: DemoArgs) -> anyhow::Result<i32> {
    const SCALE: f64 = 1200.0;
    let t0 = std::time::Instant::now();
    let sim = crate::sim::Sim::builder().listen("127.0.0.1:0").pacing_scale(SCALE).start().await?;
    say!("simulated gateway on {} (IB's pacing rules, {SCALE}× faster)", sim.address());
    let lake = Lake::open(&a.lake.lake)?;
    let ib = IbConfig { gateway: sim.address(), client_id: 1, timeout: Duration::from_secs(30) };
    let source = IbSource::connect(&ib).await?;
    let clock: Arc<dyn Clock> = sim.market().clock().clone();
    let mut ingest = Ingest::new(lake.clone(), source, demo_config(SCALE), clock);
    ingest.progress = !a.quiet;
    let symbols = symbols_of(&a.symbols)?;
    say!("setup {} into {}\n", a.symbols.join(", "), lake.location());
    let report = ingest.setup(&symbols).await;
    let code = finish(&report, false)?;
    let ingest_now = ingest.now();
    // Closing the client first: the gateway's shutdown is then not a lost connection to retry.
    drop(ingest);
    let historical = sim.requests().iter().filter(|r| r.kind == "historical_data").count();
    say!("\nhistorical requests the gateway received: {historical}   (a second run sends none)");
    say!();
    super::lake_cmds::status_of(&lake).await?;
    if let Some(first) = symbols.first() {
        say!();
        super::lake_cmds::gaps_of(&lake, first).await?;
    }
    // The surface history of the option sessions just stored, every 30 minutes: derived from the
    // lake alone (no request), so a second run finds it stored and fits nothing.
    let last = crate::calendar::last_finished_session(ingest_now);
    let first = crate::jobs::equity::sessions_back(last, demo_config(SCALE).options.sessions);
    say!();
    let history = crate::query::surface::history::HistoryOptions {
        progress: !a.quiet,
        ..crate::query::surface::history::HistoryOptions::every(chrono::Duration::minutes(30))
    };
    for s in &symbols {
        let r = Surfaces::new(&lake).surface_history(s, first, last, ingest_now, &history).await?;
        say!(
            "{:<8} surfaces     {} sessions ({} already stored): {} surfaces at {} instants, {} rows",
            s.as_str(),
            r.sessions,
            r.sessions_done,
            r.surfaces,
            r.instants,
            r.rows
        );
    }
    let at = crate::calendar::session(last).map(|s| s.close - chrono::Duration::minutes(30)).unwrap_or(ingest_now);
    let ny = at.with_timezone(&crate::calendar::EXCHANGE_TZ).format("%Y-%m-%d %H:%M");
    say!("\ndone in {:.1?}. Next: `twslake status`, `twslake gaps SPY --bar-size \"1 min\"`,", t0.elapsed());
    say!(
        "`twslake surface SPY --at \"{ny}\"` (any instant of the sessions stored, New York time), `twslake sql \"SELECT at, days, delta, iv FROM surfaces WHERE kind = 'grid' AND delta = 0.5\"`,"
    );
    say!("`twslake validate`, or read {} with DuckDB, polars or pyarrow (see README).", lake.location());
    sim.shutdown().await;
    Ok(code)
}
