//! `live`: capture streaming quotes until a duration passes, a time of day comes, or SIGINT /
//! SIGTERM (each of which flushes and exits cleanly).

use super::ingest_cmds::{build_config, gateway_of, ingest_on, lake_of, symbols_of, GatewayArgs, IngestArgs};
use super::lake_cmds::LakeArg;
use crate::jobs::config::FileConfig;
use crate::live::{self, LiveOptions};
use crate::monitor::AlertSink;
use anyhow::Context;
use clap::Args;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `live`.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Symbols as IB spells them (default: every symbol with a scope stored in the lake).
    pub symbols: Vec<String>,
    #[command(flatten)]
    lake: LakeArg,
    #[command(flatten)]
    gateway: GatewayArgs,
    #[command(flatten)]
    ingest: IngestArgs,
    /// Stop after this long (`90s`, `30m`, `6h30m`).
    #[arg(long = "for", value_parser = parse_duration, conflicts_with = "until")]
    pub for_: Option<Duration>,
    /// Stop at this time of day, New York time (`HH:MM`).
    #[arg(long)]
    pub until: Option<chrono::NaiveTime>,
    /// Take a chain snapshot when the latest is older than this.
    #[arg(long, value_parser = parse_duration, default_value = "4h")]
    pub chain_every: Duration,
    /// Serve Prometheus metrics on this address (`127.0.0.1:PORT`).
    #[arg(long)]
    pub metrics: Option<String>,
    /// POST every alert as JSON to this `http://` URL.
    #[arg(long)]
    pub alert_webhook: Option<String>,
    /// Simultaneous market-data lines at most (IB's default allowance is 100).
    #[arg(long, default_value_t = live::DEFAULT_LINES, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub max_lines: usize,
    /// Seconds between micro-batch flushes (at most 5: the most a crash may lose).
    #[arg(long, default_value_t = 2.0, value_parser = parse_seconds)]
    pub flush_every: f64,
    /// How often the option selection is made again around the live spot (`30s`, `5m`).
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub reselect_every: Duration,
}

impl LiveArgs {
    /// The capture's settings from the command line.
    fn options(&self) -> LiveOptions {
        LiveOptions {
            max_lines: self.max_lines,
            flush_every: Duration::from_secs_f64(self.flush_every.clamp(0.1, live::MAX_FLUSH.as_secs_f64())),
            // Checking is a read of the lake; the snapshot itself is taken only when due.
            chain_every: self.chain_every.min(Duration::from_secs(600)),
            reselect_every: self.reselect_every,
            heartbeat: Duration::from_secs(self.gateway.timeout.max(1)),
            ..Default::default()
        }
    }
}

/// The longest duration a flag takes: a year.
const MAX_DURATION_SECS: u64 = 366 * 86_400;

/// Parses `90s`, `30m`, `4h`, `1h30m`, `2d` (a bare number is seconds), at most a year.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (e.g. 90s, 30m, 4h, 1h30m)");
    let too_long = || format!("{s:?} is longer than a year; give a shorter duration");
    let mut total = 0u64;
    let mut num = String::new();
    for ch in s.trim().chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(too_long)?;
    }
    if !num.is_empty() {
        total = total.checked_add(num.parse::<u64>().map_err(|_| bad())?).ok_or_else(too_long)?;
    }
    if total > MAX_DURATION_SECS {
        return Err(too_long());
    }
    if total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Parses a positive, finite number of seconds.
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number of seconds (e.g. 2 or 0.5)")),
    }
}

/// How long until `until` (New York time) from `now`: today's if still ahead, else tomorrow's.
fn until_from(now: chrono::DateTime<chrono::Utc>, until: chrono::NaiveTime) -> Duration {
    use chrono::TimeZone;
    let ny = chrono_tz::America::New_York;
    let local = now.with_timezone(&ny);
    let mut date = local.date_naive();
    loop {
        if let Some(t) = ny.from_local_datetime(&date.and_time(until)).earliest() {
            if t > now {
                return (t.with_timezone(&chrono::Utc) - now).to_std().unwrap_or_default();
            }
        }
        date = date.succ_opt().unwrap_or(date);
    }
}

/// Turns true on SIGINT, SIGTERM or the end of the run's time.
fn shutdown_on_signals(limit: Option<Duration>) -> anyhow::Result<tokio::sync::watch::Receiver<bool>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let limit = async {
            match limit {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = term.recv() => eprintln!("SIGTERM: flushing and exiting"),
            _ = int.recv() => eprintln!("SIGINT: flushing and exiting"),
            _ = limit => {}
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}

/// The symbols to capture (those named, else every symbol with a stored scope) and, unless
/// option flags are given, the option selection of their stored scopes when they agree (live
/// capture runs one selection for all its symbols; when they differ, the command line's,
/// `twslake.toml`'s and the defaults' stands, said once).
async fn live_scope(
    lake: &crate::lake::Lake,
    a: &LiveArgs,
    cfg: &mut crate::jobs::config::IngestConfig,
) -> anyhow::Result<Vec<crate::domain::Symbol>> {
    use super::scope_cmd::{given_keys, run_scopes};
    use crate::jobs::scope::Scope;
    let symbols = if a.symbols.is_empty() { lake.scoped_symbols().await? } else { symbols_of(&a.symbols)? };
    if symbols.is_empty() {
        anyhow::bail!("no symbols: name them (e.g. `twslake live SPY`), or `twslake setup` them first so the lake's scope lists them");
    }
    let given = given_keys(&a.ingest);
    let (scopes, _) = run_scopes(lake, &symbols, &Scope::of(cfg), &given).await?;
    let first = scopes[0].1.options.clone();
    if scopes.iter().all(|(_, s)| s.options == first) {
        cfg.options = first;
    } else {
        eprintln!("the symbols' stored scopes select options differently: capturing with one selection (the command line's, twslake.toml's and the defaults')");
    }
    Ok(symbols)
}

/// `twslake live`.
pub async fn live(a: LiveArgs) -> anyhow::Result<i32> {
    let file = FileConfig::load(&a.ingest.config)?;
    let mut cfg = build_config(&a.ingest, &file)?;
    cfg.policy.chain_max_age = chrono::Duration::from_std(a.chain_every).context("--chain-every")?;
    let lake = lake_of(&a.lake, &file)?;
    let symbols = live_scope(&lake, &a, &mut cfg).await?;
    // The run's time counts from the start: connecting (and the gateway's silence) cannot hold
    // the run past --for/--until, nor past a signal.
    let limit = a.for_.or(a.until.map(|u| until_from(chrono::Utc::now(), u)));
    let shutdown = shutdown_on_signals(limit)?;
    let mut stop = shutdown.clone();
    let mut ingest = tokio::select! {
        r = ingest_on(lake, &a.gateway, &a.ingest, &file, cfg, 18) => r?,
        _ = stop.wait_for(|s| *s) => anyhow::bail!(
            "the run ended (--for/--until or a signal) before the gateway at {} completed the API handshake; nothing was captured. \
             Check that TWS or IB Gateway is running and logged in with the API enabled",
            gateway_of(&a.gateway, &file)
        ),
    };
    if let Some(url) = &a.alert_webhook {
        let sink: Arc<dyn AlertSink> = Arc::new(live::webhook::WebhookSink::new(url).map_err(anyhow::Error::msg)?);
        ingest.alerts.push(sink);
    }
    let opts = a.options();
    let server = match &a.metrics {
        Some(addr) => {
            let (bound, task) = live::http::serve(addr, ingest.metrics.clone(), opts.metrics.clone())
                .await
                .with_context(|| format!("--metrics {addr}"))?;
            eprintln!("metrics on http://{bound}/metrics");
            Some(task)
        }
        None => None,
    };
    let report = live::run(&ingest, &symbols, &opts, shutdown).await?;
    if let Some(t) = server {
        t.abort();
    }
    if !report.started {
        eprintln!(
            "error: the run ended before the gateway at {} answered the chain snapshots and the contract selection; nothing was captured",
            gateway_of(&a.gateway, &file)
        );
        return Ok(1);
    }
    println!(
        "live: {} lines, {} ticks, {} rows written, {} gaps{}",
        report.lines,
        report.ticks,
        report.rows,
        report.gaps,
        if report.without_options.is_empty() {
            String::new()
        } else {
            format!(", without options (prerequisites missing): {}", report.without_options.join(", "))
        }
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("4h"), Ok(Duration::from_secs(4 * 3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("12"), Ok(Duration::from_secs(12)));
        assert!(parse_duration("4x").is_err() && parse_duration("").is_err() && parse_duration("h").is_err());
        for huge in ["9999999999999999999h", "18446744073709551615s5", "367d", "99999999999999999999"] {
            assert!(parse_duration(huge).is_err(), "{huge}");
        }
        assert_eq!(parse_seconds("0.5"), Ok(0.5));
        for bad in ["NaN", "inf", "-1", "0", "x"] {
            assert!(parse_seconds(bad).unwrap_err().contains(bad), "{bad}");
        }
    }

    fn parse(args: &[&str]) -> LiveArgs {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(["twslake", "live"].iter().chain(args)).unwrap();
        match cli.command {
            crate::cli::Command::Live(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reselect_every_is_a_flag() {
        let a = parse(&["SPY"]);
        assert_eq!(a.options().reselect_every, Duration::from_secs(60), "default: a minute");
        let a = parse(&["SPY", "--reselect-every", "5m", "--flush-every", "9"]);
        let o = a.options();
        assert_eq!(o.reselect_every, Duration::from_secs(300));
        assert_eq!(o.flush_every, live::MAX_FLUSH, "flushes clamped to the loss bound");
        use clap::Parser;
        let bad = crate::cli::Cli::try_parse_from(["twslake", "live", "SPY", "--reselect-every", "soon"]);
        assert!(bad.unwrap_err().to_string().contains("soon"));
    }

    #[test]
    fn until_is_new_york_time() {
        let now: chrono::DateTime<chrono::Utc> = "2026-11-24T17:00:00Z".parse().unwrap(); // 12:00 in New York
        let t = |s: &str| chrono::NaiveTime::parse_from_str(s, "%H:%M").unwrap();
        assert_eq!(until_from(now, t("16:00")), Duration::from_secs(4 * 3600));
        assert_eq!(until_from(now, t("11:00")), Duration::from_secs(23 * 3600));
    }
}
