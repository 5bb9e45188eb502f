//! Research commands: `surface` (the checked volatility surface at an instant) and `sql`
//! (polars SQL over the datasets), plus the hidden `iv` used by the Python reference test.

use super::lake_cmds::LakeArg;
use crate::domain::Symbol;
use crate::lake::Lake;
use crate::query::collect;
use crate::query::iv::{self, IvColumns, Rates};
use crate::query::sql;
use crate::query::surface::Surfaces;
use crate::query::surface::{Surface, SurfaceOptions};
use anyhow::Context as _;
use clap::{Args, ValueEnum};
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// How a surface is fitted: the flags `surface` and `surfaces` share.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// Rate used where put–call parity cannot be solved (continuous, per year).
    #[arg(long, default_value_t = 0.04)]
    rate: f64,
    /// Dividend yield used with --rate (continuous, per year).
    #[arg(long, default_value_t = 0.0)]
    dividend_yield: f64,
    /// Ignore option bars that ended longer than this many minutes of session time before the
    /// instant (nights, weekends and holidays do not count). Default: five bars of the series.
    #[arg(long)]
    max_staleness_min: Option<i64>,
    /// The option bars read: IB's bar size of MIDPOINT bars (`1 min`, `5 mins`…). Default: the
    /// finest MIDPOINT series the lake holds on the dates read.
    #[arg(long)]
    bar_size: Option<String>,
}

impl FitArgs {
    fn options(&self) -> anyhow::Result<SurfaceOptions> {
        super::bounds::within("--rate", self.rate, -1.0, 1.0, " (per year, continuous)")?;
        super::bounds::within("--dividend-yield", self.dividend_yield, -1.0, 1.0, " (per year, continuous)")?;
        if let Some(m) = self.max_staleness_min.filter(|m| *m < 1 || *m > 100_000) {
            anyhow::bail!(crate::Error::bad_input("--max-staleness-min", m.to_string(), "give 1 to 100000 minutes"));
        }
        let series = match &self.bar_size {
            Some(b) => {
                Some(crate::domain::Series { bar_size: b.parse()?, what_to_show: crate::domain::WhatToShow::Midpoint })
            }
            None => None,
        };
        Ok(SurfaceOptions {
            rates: Rates { rate: self.rate, dividend_yield: self.dividend_yield },
            max_staleness: self.max_staleness_min.map(chrono::Duration::minutes),
            series,
            ..Default::default()
        })
    }
}

/// Arguments of `surface`.
#[derive(Debug, Args)]
pub struct SurfaceArgs {
    /// The underlying's symbol.
    symbol: String,
    /// The instant: RFC 3339 (`2024-11-22T15:30:00Z`), a New York wall-clock time
    /// (`2024-11-22 10:30`, `2024-11-22T10:30:00`) or a date (its close).
    #[arg(long)]
    at: String,
    #[command(flatten)]
    lake: LakeArg,
    /// Print the whole surface as JSON.
    #[arg(long)]
    json: bool,
    /// Also write the points (one row per expiry and strike) to this Parquet file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A cash dividend of the underlying as EX_DATE=AMOUNT (`2024-12-20=1.74`), once per
    /// dividend: American options are then priced with these escrowed at their ex-dates.
    /// Without any, the schedule the chain's parity forwards imply.
    #[arg(long = "dividend", value_name = "EX_DATE=AMOUNT")]
    dividends: Vec<String>,
    #[command(flatten)]
    fit: FitArgs,
}

/// `--dividend` values: `EX_DATE=AMOUNT`, the date `YYYY-MM-DD`, the amount per share positive
/// and below 10,000.
fn parse_dividends(values: &[String]) -> anyhow::Result<Vec<iv::CashDividend>> {
    const HINT: &str = "give EX_DATE=AMOUNT, the date as YYYY-MM-DD and the cash per share, e.g. 2024-12-20=1.74";
    values
        .iter()
        .map(|v| {
            let bad = || crate::Error::bad_input("--dividend", v.clone(), HINT);
            let (date, amount) = v.split_once('=').ok_or_else(bad)?;
            let ex_date = chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").map_err(|_| bad())?;
            let amount: f64 = amount.trim().parse().map_err(|_| bad())?;
            if !(amount > 0.0 && amount < 10_000.0) {
                return Err(bad().into());
            }
            Ok(iv::CashDividend { ex_date, amount })
        })
        .collect()
}

/// Arguments of `surfaces`.
#[derive(Debug, Args)]
pub struct SurfacesArgs {
    /// The underlying's symbol.
    symbol: String,
    /// First trading date (default: the last finished session).
    #[arg(long)]
    from: Option<chrono::NaiveDate>,
    /// Last trading date (default: the last finished session).
    #[arg(long)]
    to: Option<chrono::NaiveDate>,
    /// The step between instants of a session, from the open to the close: `30m`, `1h`, `15m`.
    #[arg(long, default_value = "30m")]
    every: String,
    #[command(flatten)]
    lake: LakeArg,
    #[command(flatten)]
    fit: FitArgs,
    /// Threads fitting surfaces (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the run's summary as JSON.
    #[arg(long)]
    json: bool,
    /// Quiet: no progress (no bars, no progress lines); errors and the final summary only.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// Output formats of `sql`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// A printed table.
    Table,
    /// CSV with a header.
    Csv,
    /// JSON: an array of row objects.
    Json,
    /// Parquet (needs --out).
    Parquet,
}

/// Arguments of `sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query; tables: equity_bars, option_bars, chains, contracts, quotes, surfaces.
    query: String,
    #[command(flatten)]
    lake: LakeArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Arguments of the hidden `iv`: implied vols of a CSV of options (reference tests, benchmarks).
#[derive(Debug, Args)]
pub struct IvArgs {
    /// CSV with columns `price` (undiscounted), `forward`, `strike`, `t`, `right` (C/P).
    input: PathBuf,
    /// CSV written with the input's columns plus `iv`.
    output: PathBuf,
}

pub use crate::calendar::parse_instant;

fn print_surface(s: &Surface) -> anyhow::Result<()> {
    let ny = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&crate::calendar::EXCHANGE_TZ).format("%Y-%m-%d %H:%M");
    say!("{} at {}  spot {:.4} (bar ended {} New York)", s.symbol, s.at.to_rfc3339(), s.spot, ny(s.spot_as_of));
    let listing = match s.chain_snapshot_at {
        Some(t) => format!("chain snapshot of {} New York", ny(t)),
        None => "the contracts the bars quote (no chain snapshot by then)".into(),
    };
    say!("{} mids that ended since {} New York; listing: {listing}", s.series, ny(s.quotes_from));
    say!(
        "{:<10} {:>7} {:>10} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>7} {:>6} {:>9} {:>8} {:>6}",
        "expiry",
        "t",
        "forward",
        "a",
        "b",
        "rho",
        "m",
        "sigma",
        "points",
        "rmse",
        "atm",
        "butterfly",
        "calendar",
        "oldest"
    );
    for e in &s.expiries {
        let ok = |b: bool| if b { "ok" } else { "ARB" };
        say!(
            "{:<10} {:>7.4} {:>10.4} {:>8.5} {:>8.5} {:>7.4} {:>8.5} {:>7.4} {:>7} {:>7.5} {:>6.4} {:>9} {:>8} {:>6}",
            e.expiry,
            e.t,
            e.forward,
            e.a,
            e.b,
            e.rho,
            e.m,
            e.sigma,
            e.points.len(),
            e.rmse,
            e.atm_vol,
            ok(e.butterfly_ok),
            ok(e.calendar_ok),
            e.oldest_quote.with_timezone(&crate::calendar::EXCHANGE_TZ).format("%H:%M")
        );
    }
    for k in &s.skipped {
        say!("{:<10} skipped: {}", k.expiry, k.reason);
    }
    Ok(())
}

/// Refuses an `--out` inside `lake` (decided: the lake holds only what twslake writes; a file
/// written there would replace a partition or be read as a foreign file). Local lakes compare
/// resolved paths (symlinks followed as far as the path exists, `..` resolved), so no spelling
/// of a path reaches into the lake; `--out` is always a local file, so a URL is refused too, and
/// for an S3 lake the message says when the URL named the lake itself.
pub(super) fn check_out(out: &Path, lake: &Lake) -> anyhow::Result<()> {
    let text = out.to_string_lossy();
    let refuse = |why: String| anyhow::anyhow!(crate::Error::bad_input("--out", text.to_string(), why));
    if text.trim().is_empty() {
        return Err(refuse("empty; give the path of the file to write".into()));
    }
    match lake.location() {
        crate::lake::Location::S3 { bucket, prefix } => {
            let url = text.trim_end_matches('/');
            let root = format!("s3://{bucket}/{prefix}");
            let root = root.trim_end_matches('/');
            if url == root || url.starts_with(&format!("{root}/")) {
                return Err(refuse(format!("inside the lake {root}: write the result outside the lake")));
            }
        }
        crate::lake::Location::Local(root) => {
            let (out_abs, root_abs) = (resolved(out)?, resolved(root)?);
            if out_abs.starts_with(&root_abs) {
                return Err(refuse(format!(
                    "inside the lake {}: the lake holds only what twslake writes; write the result outside it",
                    root.display()
                )));
            }
        }
    }
    if text.contains("://") {
        return Err(refuse("--out writes a local file: give a path, not a URL".into()));
    }
    Ok(())
}

/// `p` absolute, resolved component by component as the OS would: a `..` goes to the real
/// parent of what came before, and each part that exists is followed if it is a symlink.
fn resolved(p: &Path) -> anyhow::Result<PathBuf> {
    use std::path::Component;
    let abs = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) };
    let mut cur = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                cur.pop();
            }
            Component::Prefix(_) | Component::RootDir => cur.push(c.as_os_str()),
            Component::Normal(name) => {
                cur.push(name);
                if let Ok(real) = cur.canonicalize() {
                    cur = real;
                }
            }
        }
    }
    Ok(cur)
}

fn write_parquet(df: &mut DataFrame, path: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    anyhow::Context::with_context(ParquetWriter::new(file).finish(df), || format!("writing {}", path.display()))?;
    Ok(())
}

/// `twslake surface`.
pub async fn surface(a: SurfaceArgs) -> anyhow::Result<i32> {
    let symbol = Symbol::new(&a.symbol)?;
    let at = parse_instant(&a.at)?;
    let mut opts = a.fit.options()?;
    opts.dividends = parse_dividends(&a.dividends)?;
    let lake = Lake::builder(&a.lake.lake).existing().open()?;
    if let Some(out) = &a.out {
        check_out(out, &lake)?;
    }
    let s = Surfaces::new(&lake).surface(&symbol, at, &opts).await?;
    if a.json {
        say!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print_surface(&s)?;
    }
    if let Some(out) = &a.out {
        write_parquet(&mut s.to_frame()?, out)?;
    }
    Ok(if s.expiries.is_empty() { 1 } else { 0 })
}

/// `twslake surfaces`.
pub async fn surfaces(a: SurfacesArgs) -> anyhow::Result<i32> {
    let symbol = Symbol::new(&a.symbol)?;
    let every = crate::query::surface::history::parse_step(&a.every)?;
    let now = chrono::Utc::now();
    let last = crate::calendar::last_finished_session(now);
    let today = super::bounds::today_at(now);
    let to = match a.to {
        Some(d) => super::bounds::date("--to", d, today)?,
        None => last,
    };
    let from = match a.from {
        Some(d) => super::bounds::date("--from", d, today)?,
        None => to,
    };
    super::bounds::ordered(from, to)?;
    if let Some(n) = a.threads {
        super::bounds::within("--threads", n, 1, 1024, " threads")?;
    }
    let mut opts = crate::query::surface::history::HistoryOptions::every(every);
    opts.surface = a.fit.options()?;
    opts.threads = a.threads.unwrap_or(opts.threads).max(1);
    opts.progress = !a.json && !a.quiet;
    let lake = Lake::builder(&a.lake.lake).existing().open()?;
    let r = Surfaces::new(&lake).surface_history(&symbol, from, to, now, &opts).await?;
    if a.json {
        say!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        say!(
            "{symbol}: {} sessions from {from} to {to}, {} already stored, {} fitted now: {} of {} instants have a surface, {} rows ({:.1} s, fits {:.1} s)",
            r.sessions, r.sessions_done, r.sessions_written, r.surfaces, r.instants, r.rows, r.secs, r.fit_secs
        );
        for f in &r.failures {
            say!("  no surface: {f}");
        }
    }
    Ok(if r.instants > 0 && r.surfaces == 0 { 1 } else { 0 })
}

fn write_frame(df: &mut DataFrame, format: Format, out: Option<&Path>) -> anyhow::Result<()> {
    let mut sink: Box<dyn std::io::Write> = match out {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(super::Out),
    };
    match format {
        Format::Table => write_table(&mut sink, df)?,
        Format::Csv => CsvWriter::new(&mut sink).finish(df)?,
        Format::Json => JsonWriter::new(&mut sink).with_json_format(JsonFormat::Json).finish(df)?,
        Format::Parquet => {
            let Some(p) = out else {
                anyhow::bail!("--format parquet needs --out FILE.parquet");
            };
            drop(sink);
            write_parquet(df, p)?;
        }
    }
    Ok(())
}

/// `twslake sql`.
pub async fn sql(a: SqlArgs) -> anyhow::Result<i32> {
    if matches!(a.format, Format::Parquet) && a.out.is_none() {
        anyhow::bail!("--format parquet needs --out FILE.parquet");
    }
    let lake = Lake::builder(&a.lake.lake).existing().open()?;
    if let Some(out) = &a.out {
        check_out(out, &lake)?;
    }
    // polars reads the files itself and names none: a failed query names the damaged file behind it.
    let df = match sql::sql(&lake, &a.query).await {
        Ok(lf) => collect(lf).await,
        Err(e) => Err(e),
    };
    let mut df = match df {
        Ok(df) => df,
        Err(e) => return Err(lake.diagnose(e).await.into()),
    };
    write_frame(&mut df, a.format, a.out.as_deref())?;
    Ok(0)
}

/// Hidden `twslake iv INPUT.csv OUTPUT.csv`.
pub async fn iv(a: IvArgs) -> anyhow::Result<i32> {
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(a.input.clone()))?
        .finish()
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", a.input.display()))?;
    let n = df.height();
    let mut df = df.lazy().with_column(lit(1.0).alias("discount")).collect()?;
    df = iv::with_implied_vol(df, &IvColumns { price: "price".into(), ..Default::default() })?;
    let mut df = df.drop("discount")?;
    let file = std::fs::File::create(&a.output).with_context(|| format!("creating {}", a.output.display()))?;
    CsvWriter::new(file).finish(&mut df)?;
    eprintln!("{n} implied vols written to {}", a.output.display());
    Ok(0)
}

/// A plain text table. polars' own pretty printer needs its `fmt` feature, which would add
/// minutes to every clean build for one command's output.
fn write_table(sink: &mut impl std::io::Write, df: &DataFrame) -> anyhow::Result<()> {
    const MAX_ROWS: usize = 50;
    let names: Vec<String> = df.get_column_names().iter().map(|n| n.to_string()).collect();
    let shown = df.height().min(MAX_ROWS);
    let mut cells: Vec<Vec<String>> = vec![names.clone()];
    for i in 0..shown {
        let row = df.get_row(i)?;
        cells.push(
            row.0
                .iter()
                .map(|v| match v {
                    AnyValue::Null => "null".to_string(),
                    AnyValue::String(s) => s.to_string(),
                    AnyValue::StringOwned(s) => s.to_string(),
                    other => other.to_string(),
                })
                .collect(),
        );
    }
    let widths: Vec<usize> =
        (0..names.len()).map(|c| cells.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for (n, row) in cells.iter().enumerate() {
        let line: Vec<String> = row.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect();
        writeln!(sink, "{}", line.join("  ").trim_end())?;
        if n == 0 {
            writeln!(sink, "{}", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "))?;
        }
    }
    if df.height() > shown {
        writeln!(
            sink,
            "… {} more rows ({} in all; --format csv or --out for everything)",
            df.height() - shown,
            df.height()
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        let utc = |s: &str| parse_instant(s).unwrap().to_rfc3339();
        assert_eq!(utc("2024-11-22T15:30:00Z"), "2024-11-22T15:30:00+00:00");
        assert_eq!(utc("2024-11-22 10:30"), "2024-11-22T15:30:00+00:00");
        assert_eq!(utc("2024-07-01T10:30:00"), "2024-07-01T14:30:00+00:00");
        assert_eq!(utc("2024-07-01 10:30:00.250"), "2024-07-01T14:30:00.250+00:00");
        // A date alone is its close: 16:00 New York, 13:00 on an early close.
        assert_eq!(utc("2024-11-22"), "2024-11-22T21:00:00+00:00");
        assert_eq!(utc("2024-11-29"), "2024-11-29T18:00:00+00:00");
        let e = parse_instant("yesterday").unwrap_err().to_string();
        assert!(e.contains("\"yesterday\""), "{e}");
    }
}
