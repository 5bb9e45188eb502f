//! `report`: the lake as one self-contained HTML page (`query::report`).

use super::lake_cmds::LakeArg;
use crate::lake::Lake;
use crate::query::report::{self, ReportOptions};
use anyhow::Context;
use chrono::{NaiveDate, Utc};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    lake: LakeArg,
    /// The HTML file to write (refused inside the lake).
    #[arg(long, default_value = "report.html")]
    out: PathBuf,
    /// Only these symbols (every symbol of the lake by default). A page holds about 0.3 KB
    /// per series and day: for hundreds of symbols over years, narrow it with --symbols or --from.
    #[arg(long, num_args = 1.., value_delimiter = ',')]
    symbols: Vec<String>,
    /// First trading date shown (default: the first date any series was asked for).
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last trading date shown (default: the last finished session, or the last date asked).
    #[arg(long)]
    to: Option<NaiveDate>,
}

/// Writes the report of a lake to `--out` (through a temporary file beside it, renamed into
/// place, so a reader never sees half a page).
pub async fn report(a: ReportArgs) -> anyhow::Result<i32> {
    let now = Utc::now();
    let today = super::bounds::today_at(now);
    let from = a.from.map(|d| super::bounds::date("--from", d, today)).transpose()?;
    let to = a.to.map(|d| super::bounds::date("--to", d, today)).transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        super::bounds::ordered(f, t)?;
    }
    let symbols = match a.symbols.is_empty() {
        true => None,
        false => Some(super::ingest_cmds::symbols_of(&a.symbols)?),
    };
    let lake = Lake::builder(&a.lake.lake).existing().open()?;
    super::research_cmds::check_out(&a.out, &lake)?;
    let t0 = std::time::Instant::now();
    let r = report::build(&lake, now, &ReportOptions { symbols, from, to }).await?;
    let page = r.html();
    let file = a.out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "report.html".into());
    let tmp = a.out.with_file_name(format!(".{file}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, page.as_bytes()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &a.out).with_context(|| format!("writing {}", a.out.display()))?;
    let cells: usize = r.rows.iter().map(|x| x.cells.len()).sum();
    say!(
        "wrote {} ({} KiB): {} series, {} day cells, {} symbols, in {:.2?}",
        a.out.display(),
        page.len() / 1024,
        r.rows.len() + r.contract_rows.len(),
        cells,
        r.chains.len(),
        t0.elapsed()
    );
    Ok(0)
}
