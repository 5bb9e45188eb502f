//! The command line: `twslake <command>`. Each command is a function over the library.
//!
//! Commands print through [`Out`] (the `say!` macro): a standard output closed by its reader
//! (`twslake status --json | head -c 10`) is an error the command returns, and `main` then ends
//! the process quietly with [`EXIT_STDOUT_CLOSED`], as a Unix tool killed by SIGPIPE does.

use std::sync::atomic::{AtomicBool, Ordering};

/// The exit code when the reader of standard output went away: 128 + SIGPIPE (13), what a shell
/// reports for a tool a closed pipe ended (so `set -o pipefail` scripts see it like any other).
pub const EXIT_STDOUT_CLOSED: i32 = 141;

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether a write to standard output found it closed.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Standard output for the commands: a broken pipe is remembered ([`stdout_closed`]) and
/// returned as an error instead of panicking as `println!` does.
pub struct Out;

impl std::io::Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = std::io::stdout().lock().write(buf);
        if let Err(e) = &r {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                STDOUT_CLOSED.store(true, Ordering::Relaxed);
            }
        }
        r
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = std::io::stdout().lock().flush();
        if let Err(e) = &r {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                STDOUT_CLOSED.store(true, Ordering::Relaxed);
            }
        }
        r
    }
}

/// `println!` through [`Out`], returning its error with `?`.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!($crate::cli::Out, $($arg)*)?
    }};
}

mod bounds;
mod ingest_cmds;
mod lake_cmds;
mod live_cmd;
mod option_gaps;
mod report_cmd;
mod research_cmds;
mod run_cmd;
mod scope_cmd;

use clap::{Parser, Subcommand};

/// Interactive Brokers market data in a partitioned Parquet lake.
#[derive(Debug, Parser)]
#[command(name = "twslake", version, about, long_about = None)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the whole pipeline on the built-in simulated gateway into ./lake (no account needed).
    Demo(ingest_cmds::DemoArgs),
    /// Cold start: contracts, chain snapshot, equity bars, option bars, each only if needed.
    Setup(ingest_cmds::RunArgs),
    /// Warm start: check the lake, then refresh what is due (every known symbol by default).
    Update(ingest_cmds::RunArgs),
    /// Shows or changes the scope stored in the lake: what `setup` was asked for, which `update` keeps.
    Scope(scope_cmd::ScopeArgs),
    /// Live capture: streaming quotes and greeks into the lake until --for/--until or SIGINT/SIGTERM.
    Live(live_cmd::LiveArgs),
    /// Keeps the lake current on the NYSE calendar (contracts, chains, capture, end-of-day update) until SIGTERM.
    Run(run_cmd::RunCmdArgs),
    /// Per symbol and dataset: rows, first/last date, chain snapshot age, missing windows.
    Status(lake_cmds::StatusArgs),
    /// The missing windows of one series of a symbol.
    Gaps(lake_cmds::GapsArgs),
    /// One self-contained HTML page of the lake: coverage heatmap, requests, chains, gaps, surfaces.
    Report(report_cmd::ReportArgs),
    /// Checks every file and manifest entry; exits non-zero when anything is wrong.
    Validate(lake_cmds::ValidateArgs),
    /// Folds live capture's micro-batches into their day partitions (`live` does it at its end).
    Compact(lake_cmds::CompactArgs),
    /// Runs the simulated TWS gateway (or prints the truth of its surface).
    Sim(crate::sim::cli::SimArgs),
    /// The arbitrage-checked implied-volatility surface of a symbol at an instant.
    Surface(research_cmds::SurfaceArgs),
    /// Fit the surface at every step of every session of a date range into the `surfaces` dataset.
    Surfaces(research_cmds::SurfacesArgs),
    /// Runs a SQL query over the datasets (tables equity_bars, option_bars, chains, contracts, quotes).
    Sql(research_cmds::SqlArgs),
    /// Prints a shell completion script (`twslake completions bash > ~/.local/share/bash-completion/completions/twslake`).
    Completions(CompletionsArgs),
    /// Internal: implied vols of a CSV of options (reference tests, benchmarks).
    #[command(hide = true)]
    Iv(research_cmds::IvArgs),
    /// Internal: writes a synthetic lake of daily bars (benchmarks).
    #[command(hide = true)]
    SynthLake(lake_cmds::SynthArgs),
    /// Internal: writes synthetic rows in a loop (crash and concurrency tests).
    #[command(hide = true)]
    StressWrite(lake_cmds::StressArgs),
}

/// Arguments of `completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Prints the completion script of `shell` for the whole command line (`clap_complete`).
fn completions(a: CompletionsArgs) -> anyhow::Result<i32> {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut Cli::command(), "twslake", &mut buf);
    std::io::Write::write_all(&mut Out, &buf)?;
    Ok(0)
}

/// Runs a parsed command line; the exit code is the returned value.
///
/// Progress is drawn as bars when standard error is a terminal, as plain lines otherwise
/// (`monitor::progress`).
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    use crate::monitor::progress;
    use std::io::IsTerminal;
    progress::set_style(progress::style_for(std::io::stderr().is_terminal()));
    match cli.command {
        Command::Completions(a) => completions(a),
        Command::Demo(a) => ingest_cmds::demo(a).await,
        Command::Setup(a) => ingest_cmds::setup(a).await,
        Command::Update(a) => ingest_cmds::update(a).await,
        Command::Scope(a) => scope_cmd::scope(a).await,
        Command::Live(a) => live_cmd::live(a).await,
        Command::Run(a) => run_cmd::run(a).await,
        Command::Status(a) => lake_cmds::status(a).await,
        Command::Gaps(a) => lake_cmds::gaps(a).await,
        Command::Validate(a) => lake_cmds::validate(a).await,
        Command::Report(a) => report_cmd::report(a).await,
        Command::Compact(a) => lake_cmds::compact(a).await,
        Command::StressWrite(a) => lake_cmds::stress_write(a).await,
        Command::Sim(a) => crate::sim::cli::run(a).await.map(|()| 0),
        Command::SynthLake(a) => lake_cmds::synth_lake(a).await,
        Command::Surface(a) => research_cmds::surface(a).await,
        Command::Surfaces(a) => research_cmds::surfaces(a).await,
        Command::Sql(a) => research_cmds::sql(a).await,
        Command::Iv(a) => research_cmds::iv(a).await,
    }
}
