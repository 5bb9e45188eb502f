//! `twslake sim`: run the simulated gateway, or print the truth of its surface.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::io::AsyncWriteExt;

use super::faults::Fault;
use super::market::{Clock, ManualClock, Market, SymbolSpec, WallClock};
use super::{truth, Sim};

/// Arguments of `twslake sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Print the truth instead of serving.
    #[command(subcommand)]
    pub command: Option<SimCommand>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:4002")]
    pub listen: String,
    /// The market's definition.
    #[command(flatten)]
    pub market: MarketArgs,
    /// Shrink every pacing window by this factor (1 = IB's rules).
    #[arg(long, default_value_t = 1.0, value_parser = parse_scale)]
    pub pacing_scale: f64,
    /// Append one JSON line per request to this file.
    #[arg(long)]
    pub request_log: Option<PathBuf>,
    /// Inject a fault: drop-after=N, stall=historical|contract|chain|head|market,
    /// `notice=CODE[@N]`, malformed-after=N, refuse, silent. Repeatable.
    #[arg(long)]
    pub fault: Vec<Fault>,
}

/// What defines the market.
#[derive(Debug, Clone, clap::Args)]
pub struct MarketArgs {
    /// Seed of the market.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Symbols to list (comma-separated; default SPY,QQQ,AAPL,MSFT,BRK B).
    #[arg(long, value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// Freeze the market's clock at this instant (RFC 3339, or New York time `YYYY-MM-DD HH:MM`).
    #[arg(long, value_parser = parse_instant)]
    pub now: Option<DateTime<Utc>>,
}

impl MarketArgs {
    fn specs(&self) -> Vec<SymbolSpec> {
        if self.symbols.is_empty() {
            return SymbolSpec::defaults();
        }
        self.symbols
            .iter()
            .map(|s| {
                let mut spec = SymbolSpec::for_symbol(s.trim());
                spec.subscribed = spec.symbol != "MSFT";
                spec
            })
            .collect()
    }

    fn clock(&self) -> Arc<dyn Clock> {
        match self.now {
            Some(t) => Arc::new(ManualClock::new(t)),
            None => Arc::new(WallClock),
        }
    }
}

/// Subcommands of `twslake sim`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SimCommand {
    /// Print spot, forward and true implied volatility per (expiry, strike) at an instant.
    Truth(TruthArgs),
}

/// Arguments of `twslake sim truth`.
#[derive(Debug, Clone, clap::Args)]
pub struct TruthArgs {
    /// The underlying.
    pub symbol: String,
    /// The instant (RFC 3339, or New York time `YYYY-MM-DD HH:MM`).
    #[arg(long, value_parser = parse_instant)]
    pub at: DateTime<Utc>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// The market's definition.
    #[command(flatten)]
    pub market: MarketArgs,
}

/// Parses an instant given on the command line, as every `twslake` command does (see
/// [`crate::calendar::parse_instant`]: RFC 3339, New York wall-clock time, or a date's close).
pub fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    crate::calendar::parse_instant(s).map_err(|e| e.to_string())
}

/// A pacing scale: a finite factor from 0.001 (windows 1000× longer) to 1e6.
fn parse_scale(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && (0.001..=1e6).contains(&x) => Ok(x),
        _ => Err(format!("{s:?} is not a pacing scale: give a number from 0.001 to 1000000 (1 = IB's rules)")),
    }
}

/// Runs `twslake sim`: serves until Ctrl-C, or prints the truth.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    if let Some(SimCommand::Truth(t)) = args.command {
        return print_truth(&t);
    }
    let mut b = Sim::builder()
        .listen(args.listen)
        .seed(args.market.seed)
        .symbol_specs(args.market.specs())
        .pacing_scale(args.pacing_scale)
        .clock(args.market.clock());
    for f in args.fault {
        b = b.fault(f);
    }
    if let Some(p) = args.request_log {
        b = b.request_log(p);
    }
    let handle = b.start().await?;
    let mut out = tokio::io::stdout();
    out.write_all(format!("listening on {}\n", handle.addr).as_bytes()).await?;
    out.flush().await?;
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}

fn print_truth(t: &TruthArgs) -> anyhow::Result<()> {
    let market = Market::new(t.market.seed, t.market.specs(), t.market.clock());
    let truth = truth::truth(&market, &t.symbol, t.at)
        .ok_or_else(|| anyhow::anyhow!("no truth for {:?} at {}: unknown symbol or before 2000", t.symbol, t.at))?;
    if t.json {
        println!("{}", serde_json::to_string(&truth)?);
        return Ok(());
    }
    println!(
        "{} at {}: spot {:.2}, rate {:.4}, dividend yield {:.4}",
        truth.symbol, truth.at, truth.spot, truth.rate, truth.dividend_yield
    );
    for s in &truth.splits {
        println!("split {} {}:1", s.ex_date, s.ratio);
    }
    for d in &truth.dividends {
        println!("dividend ex {} {:.4} (T={:.4})", d.ex_date, d.amount, d.t);
    }
    for e in &truth.expiries {
        println!(
            "{}  T={:.4}  F={:.2}  ATM vol {:.4}  strikes {}",
            e.expiry,
            e.t,
            e.forward,
            e.atm_vol,
            e.strikes.len()
        );
    }
    Ok(())
}
