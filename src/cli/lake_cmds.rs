//! Commands over an existing lake: status, gaps, validate (and the hidden stress writer).

use crate::calendar::last_finished_session;
use crate::datasets::Dataset;
use crate::domain::{BarSize, Series, Symbol, WhatToShow};
use crate::lake::Lake;
use crate::query::coverage::Coverage;
use crate::query::coverage::SeriesSpec;
use crate::query::status;
use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;

/// `--lake URL`, shared by every command.
#[derive(Debug, Args, Clone)]
pub struct LakeArg {
    /// The lake: a folder, file://PATH or s3://BUCKET/PREFIX.
    #[arg(long, env = "TWSLAKE_LAKE", default_value = "./lake")]
    pub lake: String,
}

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    lake: LakeArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Arguments of `gaps`.
#[derive(Debug, Args)]
pub struct GapsArgs {
    /// The symbol (the underlying, for option bars).
    symbol: String,
    #[command(flatten)]
    lake: LakeArg,
    /// equity_bars or option_bars.
    #[arg(long, default_value = "equity_bars")]
    dataset: String,
    /// IB's bar size, e.g. "1 day" or "1 min" (equity_bars default "1 day"; option_bars default:
    /// the option series the lake holds for the symbol, the finest MIDPOINT one first).
    #[arg(long)]
    bar_size: Option<String>,
    /// TRADES, MIDPOINT, BID, ASK or BID_ASK (equity_bars default TRADES; option_bars: as --bar-size).
    #[arg(long)]
    what_to_show: Option<String>,
    /// The option contract (option_bars). Without it, option_bars are answered per contract of
    /// the underlying's selection: each contract over the sessions it was asked for (selected
    /// and listed), a session missing when no final answer covers it or its stored rows' day
    /// partition is gone; then a total of missing contract-days.
    #[arg(long)]
    con_id: Option<i64>,
    /// First date (default: one year before --to).
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last date (default: the last finished session).
    #[arg(long)]
    to: Option<NaiveDate>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Arguments of `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    lake: LakeArg,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Repair what is found: move damaged, foreign and linked files to _quarantine/, revoke the
    /// manifest entries that wrote them (the next `update` fetches them again), delete `_tmp/`
    /// residue older than an hour; then validate again. Run it when no writer is running.
    #[arg(long)]
    repair: bool,
}

/// Arguments of `compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Only these symbols (all by default).
    pub symbols: Vec<String>,
    #[command(flatten)]
    lake: LakeArg,
}

/// Arguments of the hidden `synth-lake`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    #[command(flatten)]
    lake: LakeArg,
    /// Symbols.
    #[arg(long, default_value_t = 500)]
    symbols: usize,
    /// Years of daily bars per symbol, ending with 2024.
    #[arg(long, default_value_t = 10)]
    years: i32,
}

pub async fn synth_lake(a: SynthArgs) -> anyhow::Result<i32> {
    super::bounds::within("--symbols", a.symbols, 1, 100_000, " symbols")?;
    super::bounds::within("--years", a.years, 1, 50, " years")?;
    let lake = Lake::open(&a.lake.lake)?;
    let t0 = std::time::Instant::now();
    crate::lake::example::write_synthetic(&lake, a.symbols, a.years).await?;
    say!("wrote {} symbols x {} years to {} in {:.1?}", a.symbols, a.years, lake.location(), t0.elapsed());
    Ok(0)
}

/// Arguments of the hidden `stress-write`.
#[derive(Debug, Args)]
pub struct StressArgs {
    #[command(flatten)]
    lake: LakeArg,
    /// Symbol to write.
    #[arg(long, default_value = "SPY")]
    symbol: String,
    /// Seed of the choice of days.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Requests to record.
    #[arg(long, default_value_t = 50)]
    iterations: usize,
    /// Trading days to choose from (small: writers collide on partitions).
    #[arg(long, default_value_t = 5)]
    days: usize,
}

fn age(secs: i64) -> String {
    match secs {
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

pub async fn status(a: StatusArgs) -> anyhow::Result<i32> {
    let lake = Lake::builder(&a.lake.lake).existing().open()?;
    if a.json {
        let rows = status::status(&lake, Utc::now()).await?;
        let doc = serde_json::json!({ "lake": lake.location().to_string(), "datasets": rows });
        say!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    status_of(&lake).await
}

/// Prints the status table of a lake.
pub async fn status_of(lake: &Lake) -> anyhow::Result<i32> {
    let rows = status::status(lake, Utc::now()).await?;
    say!("lake {}", lake.location());
    if rows.is_empty() {
        say!("(empty: nothing ingested yet)");
        return Ok(0);
    }
    say!(
        "{:<8} {:<12} {:>10} {:<10} {:<10} {:>8} {:>8} {:>9} {:>5}",
        "symbol",
        "dataset",
        "rows",
        "first",
        "last",
        "requests",
        "missing",
        "age",
        "gaps"
    );
    let d = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
    for r in rows {
        // Chains: the latest snapshot's age; quotes: the newest live quote's (a capture's freshness).
        let chain = r.latest_snapshot_age_secs.or(r.latest_quote_age_secs).map(age).unwrap_or_else(|| "-".into());
        let gaps = if r.dataset == "quotes" { r.capture_gaps.to_string() } else { "-".into() };
        say!(
            "{:<8} {:<12} {:>10} {:<10} {:<10} {:>8} {:>8} {:>9} {:>5}",
            r.symbol,
            r.dataset,
            r.rows,
            d(r.first_date),
            d(r.last_date),
            r.requests,
            r.missing_windows,
            chain,
            gaps
        );
    }
    Ok(0)
}

pub async fn gaps(a: GapsArgs) -> anyhow::Result<i32> {
    let symbol = Symbol::new(&a.symbol)?;
    let dataset: Dataset = a.dataset.parse()?;
    if !dataset.is_bars() {
        anyhow::bail!("gaps are computed for bar datasets: use --dataset equity_bars or option_bars");
    }
    let bar_size = a.bar_size.as_deref().map(str::parse::<BarSize>).transpose()?;
    let what = a.what_to_show.as_deref().map(str::parse::<WhatToShow>).transpose()?;
    let today = super::bounds::today_at(Utc::now());
    let to = match a.to {
        Some(d) => super::bounds::date("--to", d, today)?,
        None => last_finished_session(Utc::now()),
    };
    let from = match a.from {
        Some(d) => super::bounds::date("--from", d, today)?,
        None => to - chrono::Duration::days(365),
    };
    super::bounds::ordered(from, to)?;
    let lake = Lake::builder(&a.lake.lake).existing().open()?;
    let series = if dataset == Dataset::OptionBars {
        let held = super::option_gaps::held(&lake, &symbol).await?;
        let series = super::option_gaps::choose(&symbol, &held, bar_size, what)?;
        if a.con_id.is_none() {
            let dates = held.iter().find(|h| h.series == series).map(|h| h.dates.clone()).unwrap_or_default();
            let per = super::option_gaps::per_contract(&lake, &symbol, series, &dates, from, to).await?;
            return option_gaps_out(&symbol, series, from, to, &per, a.json);
        }
        series
    } else {
        Series { bar_size: bar_size.unwrap_or(BarSize::Day1), what_to_show: what.unwrap_or(WhatToShow::Trades) }
    };
    let spec = SeriesSpec { dataset, symbol, con_id: a.con_id, series };
    let windows = Coverage::new(&lake).missing_windows(&spec, from, to).await?;
    if a.json {
        let doc = serde_json::json!({
            "symbol": spec.symbol.as_str(), "dataset": dataset.name(), "bar_size": series.bar_size.ib(),
            "what_to_show": series.what_to_show.ib(), "con_id": a.con_id, "from": from, "to": to,
            "missing_trading_days": windows.iter().map(|w| w.trading_days).sum::<usize>(), "windows": windows,
        });
        say!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    let days: usize = windows.iter().map(|w| w.trading_days).sum();
    say!(
        "{} {} {} {} from {from} to {to}: {} missing windows, {days} trading days",
        spec.symbol,
        dataset,
        series.bar_size,
        series.what_to_show,
        windows.len()
    );
    for w in &windows {
        say!("  {} .. {}  ({} trading days)", w.start, w.end, w.trading_days);
    }
    Ok(0)
}

/// Prints the per-contract option gaps: a table (or JSON) and the total of missing contract-days.
fn option_gaps_out(
    symbol: &Symbol,
    series: Series,
    from: NaiveDate,
    to: NaiveDate,
    per: &[super::option_gaps::ContractGaps],
    json: bool,
) -> anyhow::Result<i32> {
    let missing: usize = per.iter().map(|c| c.missing_trading_days).sum();
    let with_gaps = per.iter().filter(|c| c.missing_trading_days > 0).count();
    if json {
        let doc = serde_json::json!({
            "symbol": symbol.as_str(), "dataset": Dataset::OptionBars.name(), "bar_size": series.bar_size.ib(),
            "what_to_show": series.what_to_show.ib(), "from": from, "to": to, "contracts": per,
            "missing_contract_days": missing, "contracts_with_gaps": with_gaps,
        });
        say!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    say!(
        "{symbol} option_bars {} {} from {from} to {to}: {} contracts, {with_gaps} with gaps, {missing} missing contract-days",
        series.bar_size,
        series.what_to_show,
        per.len()
    );
    say!(
        "  {:>10}  {:>10}  {:>9}  {:>5}  {:>5}  {:>7}  missing windows",
        "con_id",
        "expiry",
        "strike",
        "right",
        "asked",
        "missing"
    );
    for c in per {
        let windows: Vec<String> = c.windows.iter().map(|w| format!("{} .. {}", w.start, w.end)).collect();
        say!(
            "  {:>10}  {:>10}  {:>9}  {:>5}  {:>5}  {:>7}  {}",
            c.con_id,
            c.expiry.map(|d| d.to_string()).unwrap_or_default(),
            c.strike.map(|k| format!("{k}")).unwrap_or_default(),
            c.right.as_deref().unwrap_or(""),
            c.asked_days,
            c.missing_trading_days,
            windows.join(", ")
        );
    }
    say!("total: {missing} missing contract-days");
    Ok(0)
}

/// Prints the daily-bar gaps of a symbol over the last year.
pub async fn gaps_of(lake: &Lake, symbol: &Symbol) -> anyhow::Result<()> {
    let series = Series { bar_size: BarSize::Day1, what_to_show: WhatToShow::Trades };
    let to = last_finished_session(Utc::now());
    let from = to - chrono::Duration::days(365);
    let spec = SeriesSpec { dataset: Dataset::EquityBars, symbol: symbol.clone(), con_id: None, series };
    let windows = Coverage::new(lake).missing_windows(&spec, from, to).await?;
    say!("gaps {symbol} 1 day TRADES {from}..{to}: {} missing windows", windows.len());
    for w in &windows {
        say!("  {} .. {}  ({} trading days)", w.start, w.end, w.trading_days);
    }
    Ok(())
}

/// `compact`: folds live capture's micro-batches into their day partitions (what `live` does at
/// its end and at its start; for captures that were killed and not run again).
pub async fn compact(a: CompactArgs) -> anyhow::Result<i32> {
    let lake = Lake::builder(&a.lake.lake).existing().open()?;
    let symbols: Vec<Option<Symbol>> = match a.symbols.is_empty() {
        true => vec![None],
        false => a.symbols.iter().map(|s| Symbol::new(s).map(Some)).collect::<Result<_, _>>()?,
    };
    let (mut parts, mut batches) = (0, 0);
    for s in &symbols {
        for c in lake.compact_all(Dataset::Quotes, s.as_ref()).await? {
            say!("{}: {} micro-batches folded in, {} rows", c.partition, c.micro_batches, c.rows);
            parts += 1;
            batches += c.micro_batches;
        }
    }
    say!("compacted {parts} partitions ({batches} micro-batches) in {}", lake.location());
    Ok(0)
}

pub async fn validate(a: ValidateArgs) -> anyhow::Result<i32> {
    let lake = Lake::builder(&a.lake.lake).existing().open()?;
    let mut report = lake.validate().await?;
    let mut repaired = None;
    if a.repair {
        let done = lake.repair(&report).await?;
        if !a.json {
            for (from, to) in &done.moved {
                println!("moved {from} to {to}");
            }
            println!(
                "repair: {} files moved aside, {} manifest entries revoked (the next `twslake update` fetches them \
                 again), {} temporary files deleted",
                done.moved.len(),
                done.revoked,
                done.tmp_swept
            );
        }
        report = lake.validate().await?;
        repaired = Some(done);
    }
    if a.json {
        match repaired {
            Some(r) => {
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({"repair": r, "report": report}))?)
            }
            None => println!("{}", serde_json::to_string_pretty(&report)?),
        }
    } else {
        println!(
            "checked {} partitions ({} rows) and {} manifest entries in {}",
            report.partitions,
            report.rows,
            report.entries,
            lake.location()
        );
        if report.micro_batches > 0 {
            println!(
                "note: {} live micro-batches not compacted yet (read with their partitions; `twslake compact` folds them in)",
                report.micro_batches
            );
        }
        if report.leftover_temp_files > 0 {
            println!(
                "note: {} temporary files from interrupted writes under _tmp/ (never read; writers and `--repair` \
                 delete those older than an hour)",
                report.leftover_temp_files
            );
        }
        if report.abandoned_pending > 0 {
            println!(
                "note: {} interrupted requests whose rows never became visible (they will be asked again)",
                report.abandoned_pending
            );
        }
        if report.quarantined > 0 {
            println!(
                "note: {} files moved aside under _quarantine/ (never read; inspect or delete them)",
                report.quarantined
            );
        }
        for p in &report.problems {
            println!("{:?}: {}: {}", p.kind, p.path, p.detail);
        }
        if !report.ok() && !a.repair {
            println!(
                "`twslake validate --repair` moves damaged files aside and has the next `update` fetch their rows"
            );
        }
        println!("{}", if report.ok() { "ok".to_string() } else { format!("{} problems", report.problems.len()) });
    }
    Ok(if report.ok() { 0 } else { 1 })
}

/// Deterministic bars for a day: the same (day, minute) always gets the same prices, so writers
/// that overlap disagree only in `ingested_at`.
pub fn synthetic_day(day: NaiveDate, ingested_at: DateTime<Utc>) -> Vec<crate::datasets::equity_bars::Bar> {
    let Some(session) = crate::calendar::session(day) else { return vec![] };
    let series = Series { bar_size: BarSize::Min1, what_to_show: WhatToShow::Trades };
    let minutes = (session.close - session.open).num_minutes();
    (0..minutes)
        .map(|m| {
            let p = 100.0 + (chrono::Datelike::ordinal(&day) as f64) + (m as f64 * 0.01).sin();
            crate::datasets::equity_bars::Bar {
                ts: session.open + chrono::Duration::minutes(m),
                date: day,
                series,
                open: p,
                high: p + 0.05,
                low: p - 0.05,
                close: p + 0.01,
                volume: Some(100.0 + m as f64),
                wap: Some(p),
                bar_count: Some(10),
                ingested_at,
            }
        })
        .collect()
}

pub async fn stress_write(a: StressArgs) -> anyhow::Result<i32> {
    use crate::domain::DateWindow;
    use crate::lake::manifest::{Outcome, Request};
    super::bounds::within("--days", a.days, 1, 60, " trading days")?;
    super::bounds::within("--iterations", a.iterations, 0, 1_000_000, " requests")?;
    let lake = Lake::open(&a.lake.lake)?;
    let symbol = Symbol::new(&a.symbol)?;
    let days = crate::calendar::trading_days("2024-01-02".parse()?, "2024-03-29".parse()?);
    let days = &days[..a.days.min(days.len())];
    let mut state = a.seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    for i in 0..a.iterations {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let day = days[(state >> 33) as usize % days.len()];
        let now = Utc::now();
        let bars = synthetic_day(day, now);
        let batch = crate::datasets::equity_bars::to_batch(&bars);
        let series = bars[0].series;
        let req = Request::equity_bars(&symbol, series, DateWindow::new(day, day)?);
        let entry =
            lake.record(req, now, Outcome::Ok { rows: bars.len() as u64 }, Some(&batch)).await.context("record")?;
        say!("committed {i} {} {day}", entry.id);
    }
    Ok(0)
}
