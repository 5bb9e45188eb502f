//! Research commands: `surface` (the checked volatility surface at an instant) and `sql`
//! (polars SQL over the datasets), plus the hidden `iv` used by the Python reference test.

use super::lake_cmds::LakeArg;
use crate::lake::layout::Symbol;
use crate::lake::Lake;
use crate::query::collect;
use crate::query::iv::{self, IvColumns, Rates};
use crate::query::surface::{Surface, SurfaceOptions};
use anyhow::Context as _;
use clap::{Args, ValueEnum};
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// Arguments of `surface`.
#[derive(Debug, Args)]
pub struct SurfaceArgs {
    /// The underlying's symbol.
    symbol: String,
    /// The instant: RFC 3339 (`2024-11-22T15:30:00Z`), or a New York wall-clock time
    /// (`2024-11-22 10:30`, `2024-11-22T10:30:00`).
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
    /// Rate used where put–call parity cannot be solved (continuous, per year).
    #[arg(long, default_value_t = 0.04)]
    rate: f64,
    /// Dividend yield used with --rate (continuous, per year).
    #[arg(long, default_value_t = 0.0)]
    dividend_yield: f64,
    /// Ignore option bars that closed longer than this many minutes before --at.
    #[arg(long, default_value_t = 30)]
    max_staleness_min: i64,
    /// The option bars read: IB's bar size of MIDPOINT bars (`1 min`, `5 mins`…).
    #[arg(long, default_value = "1 min")]
    bar_size: String,
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
    /// The query; tables: equity_bars, option_bars, chains, contracts, quotes.
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

pub use crate::query::pit::parse_instant;

fn print_surface(s: &Surface) {
    println!("{} at {}  spot {:.4}", s.symbol, s.at.to_rfc3339(), s.spot);
    println!(
        "{:<10} {:>7} {:>10} {:>8} {:>8} {:>7} {:>8} {:>7} {:>7} {:>7} {:>6} {:>9} {:>8}",
        "expiry", "t", "forward", "a", "b", "rho", "m", "sigma", "points", "rmse", "atm", "butterfly", "calendar"
    );
    for e in &s.expiries {
        let ok = |b: bool| if b { "ok" } else { "ARB" };
        println!(
            "{:<10} {:>7.4} {:>10.4} {:>8.5} {:>8.5} {:>7.4} {:>8.5} {:>7.4} {:>7} {:>7.5} {:>6.4} {:>9} {:>8}",
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
            e.vol_at_strike(e.forward),
            ok(e.butterfly_ok),
            ok(e.calendar_ok)
        );
    }
    for k in &s.skipped {
        println!("{:<10} skipped: {}", k.expiry, k.reason);
    }
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
    let lake = Lake::open_existing(&a.lake.lake)?;
    let opts = SurfaceOptions {
        rates: Rates { rate: a.rate, dividend_yield: a.dividend_yield },
        max_staleness: chrono::Duration::minutes(a.max_staleness_min.max(1)),
        series: crate::lake::layout::Series {
            bar_size: a.bar_size.parse()?,
            what_to_show: crate::lake::layout::WhatToShow::Midpoint,
        },
        ..Default::default()
    };
    let s = lake.surface(&symbol, at, &opts).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print_surface(&s);
    }
    if let Some(out) = &a.out {
        write_parquet(&mut s.to_frame()?, out)?;
    }
    Ok(if s.expiries.is_empty() { 1 } else { 0 })
}

fn write_frame(df: &mut DataFrame, format: Format, out: Option<&Path>) -> anyhow::Result<()> {
    let mut sink: Box<dyn std::io::Write> = match out {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(std::io::stdout().lock()),
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
    let lake = Lake::open_existing(&a.lake.lake)?;
    let mut df = collect(lake.sql(&a.query).await?).await?;
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
