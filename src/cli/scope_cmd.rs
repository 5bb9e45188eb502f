//! `twslake scope [SYMBOL] [--set KEY=VALUE …] [--unset KEY …] [--json] [--history]`: shows and
//! changes the scope stored in the lake (`jobs::scope`), and the scope each `setup`/`update`
//! runs with.
//!
//! Decisions:
//! - `setup` records what it was asked for once the symbol is known (the lake holds something of
//!   it after the run): a symbol the gateway does not know leaves no scope behind. A second
//!   `setup` records the flags it was given as a change of the stored scope; keys not given keep
//!   their stored values.
//! - `update` runs each symbol with its stored scope; flags given on its command line override
//!   the scope for that run only, unless `--save-scope` records them. A symbol without a scope
//!   (a lake set up before scopes were stored) runs as before (flags, `twslake.toml`, defaults),
//!   said once.
//! - `scope SYMBOL --set` on a symbol without a scope starts from `twslake.toml` and the defaults
//!   (what `update` would use for it).

use super::ingest_cmds::{lake_of, symbols_of, IngestArgs};
use super::lake_cmds::LakeArg;
use crate::domain::Symbol;
use crate::jobs::config::FileConfig;
use crate::jobs::scope::{self, Scope, KEYS};
use crate::lake::scope::{actor, ScopeRecord};
use crate::lake::Lake;
use clap::Args;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Arguments of `scope`.
#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// The symbol (default: every symbol with a stored scope).
    pub symbol: Option<String>,
    #[command(flatten)]
    lake: LakeArg,
    /// Settings file: seeds the scope of a symbol that has none.
    #[arg(long, default_value = "twslake.toml")]
    config: PathBuf,
    /// Changes a key (repeatable): `equity`, `from`, `option_series`, `expiry_days`,
    /// `strike_band`, `max_contracts`, `option_sessions`, `contracts_max_age_hours`,
    /// `chain_max_age_minutes`, `chain_prerequisite_age_hours`. `KEY+=SERIES` and
    /// `KEY-=SERIES` add a series to or remove one from `equity` or `option_series`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Sets a key back to its default (repeatable; `from`: not set).
    #[arg(long = "unset", value_name = "KEY")]
    unset: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Show the change log (who changed what when, through which command).
    #[arg(long, conflicts_with_all = ["set", "unset"])]
    history: bool,
}

/// The command line as typed, for the change log (arguments with spaces in quotes; secrets of
/// URLs redacted as in every message, `error::redact`).
pub(super) fn command_line() -> String {
    let mut args = std::env::args();
    let _ = args.next();
    let words: Vec<String> =
        args.map(|a| if a.contains(char::is_whitespace) || a.is_empty() { format!("{a:?}") } else { a }).collect();
    crate::error::redact(&format!("twslake {}", words.join(" ")))
}

/// The scope keys whose flags were given on the command line.
pub(super) fn given_keys(a: &IngestArgs) -> Vec<&'static str> {
    let given = [
        ("equity", !a.equity.is_empty()),
        ("from", a.from.is_some()),
        ("option_series", !a.option_series.is_empty()),
        ("expiry_days", a.expiry_days.is_some()),
        ("strike_band", a.strike_band.is_some()),
        ("max_contracts", a.max_contracts.is_some()),
        ("option_sessions", a.option_sessions.is_some()),
    ];
    given.iter().filter(|(_, g)| *g).map(|(k, _)| *k).collect()
}

/// The scope `twslake.toml` describes (over the defaults); a bad value names its key.
pub(super) fn file_scope(file: &FileConfig) -> anyhow::Result<Scope> {
    let mut s = Scope::default();
    let pairs = [
        ("equity", file.equity.as_ref().map(|v| v.join(","))),
        ("from", file.from.map(|d| d.to_string())),
        ("option_series", file.option_series.as_ref().map(|v| v.join(","))),
        ("expiry_days", file.expiry_days.map(|v| v.to_string())),
        ("strike_band", file.strike_band.map(|v| v.to_string())),
        ("max_contracts", file.max_contracts.map(|v| v.to_string())),
        ("option_sessions", file.option_sessions.map(|v| v.to_string())),
    ];
    for (k, v) in pairs {
        if let Some(v) = v {
            s.set(k, &v).map_err(|e| anyhow::anyhow!("twslake.toml: {e}"))?;
        }
    }
    Ok(s)
}

/// The scope each symbol runs with: its stored scope with the flags given (`given`, their values
/// in `flags`) over it, or `flags` itself for a symbol without one. Returns the scopes and the
/// symbols without a stored one.
pub(super) async fn run_scopes(
    lake: &Lake,
    symbols: &[Symbol],
    flags: &Scope,
    given: &[&str],
) -> anyhow::Result<(Vec<(Symbol, Scope)>, Vec<Symbol>)> {
    let (mut out, mut unscoped) = (Vec::new(), Vec::new());
    for s in symbols {
        let scope = match scope::load_one(lake, s).await? {
            Some(mut stored) => {
                for k in given {
                    stored.copy(k, flags);
                }
                stored
            }
            None => {
                unscoped.push(s.clone());
                flags.clone()
            }
        };
        out.push((s.clone(), scope));
    }
    Ok((out, unscoped))
}

/// Records the flags given (`given`, values in `flags`) into `symbol`'s scope, starting from
/// `flags` when it has none; says what changed unless `quiet`.
pub(super) async fn save(
    lake: &Lake,
    symbol: &Symbol,
    flags: &Scope,
    given: &[&str],
    quiet: bool,
) -> anyhow::Result<()> {
    let edit = |s: &mut Scope| {
        for k in given {
            s.copy(k, flags);
        }
        Ok(())
    };
    if let Some(r) = scope::record(lake, symbol, flags, &actor(), &command_line(), edit).await? {
        if !quiet {
            let what: Vec<String> = r.changes.iter().map(|c| c.key.clone()).collect();
            let verb = if r.seq == 1 { "recorded" } else { "changed" };
            crate::monitor::progress::line(&format!("{symbol:<8} scope        {verb} ({})", what.join(", ")));
        }
    }
    Ok(())
}

fn show_value(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(show_value).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn summary(r: &ScopeRecord) -> Value {
    json!({ "symbol": r.symbol, "seq": r.seq, "changed_at": r.at, "actor": r.actor, "command": r.command, "scope": r.scope })
}

fn print_scope(r: &ScopeRecord) -> anyhow::Result<()> {
    say!("{}  (change {} by {} at {})", r.symbol, r.seq, r.actor, r.at.format("%Y-%m-%d %H:%M:%S UTC"));
    for (k, _) in KEYS {
        say!("  {k:<30} {}", show_value(&r.scope[*k]));
    }
    Ok(())
}

fn print_history(records: &[ScopeRecord]) -> anyhow::Result<()> {
    for r in records {
        say!("{} #{} {} {}  {}", r.symbol, r.seq, r.at.format("%Y-%m-%d %H:%M:%S UTC"), r.actor, r.command);
        for c in &r.changes {
            say!("    {:<30} {} -> {}", c.key, show_value(&c.old), show_value(&c.new));
        }
    }
    Ok(())
}

/// One change asked on the command line.
#[derive(Debug, Clone)]
enum Edit {
    Set(String, String),
    Add(String, String),
    Remove(String, String),
    Unset(String),
}

/// Parses `--set`/`--unset` into edits of a scope, checked on `start` before anything is
/// written: a bad key or value names it and what is allowed.
fn edits(a: &ScopeArgs, start: &Scope) -> anyhow::Result<Vec<Edit>> {
    let mut out = Vec::new();
    for s in &a.set {
        let Some((k, v)) = s.split_once('=') else {
            anyhow::bail!(
                "--set {s:?}: give KEY=VALUE (e.g. --set expiry_days=30), or KEY+=SERIES / KEY-=SERIES for a list"
            );
        };
        let (k, v) = (k.trim().to_string(), v.to_string());
        out.push(match (k.strip_suffix('+'), k.strip_suffix('-')) {
            (Some(k), _) => Edit::Add(k.trim().to_string(), v),
            (_, Some(k)) => Edit::Remove(k.trim().to_string(), v),
            _ => Edit::Set(k, v),
        });
    }
    out.extend(a.unset.iter().map(|k| Edit::Unset(k.trim().to_string())));
    let mut probe = start.clone();
    apply(&mut probe, &out)?;
    Ok(out)
}

fn apply(s: &mut Scope, edits: &[Edit]) -> crate::Result<()> {
    for e in edits {
        match e {
            Edit::Set(k, v) => s.set(k, v)?,
            Edit::Add(k, v) => s.add(k, v)?,
            Edit::Remove(k, v) => s.remove(k, v)?,
            Edit::Unset(k) => s.unset(k)?,
        }
    }
    Ok(())
}

/// `twslake scope`.
pub async fn scope(a: ScopeArgs) -> anyhow::Result<i32> {
    let file = FileConfig::load(&a.config)?;
    let lake = lake_of(&a.lake, &file)?;
    let Some(name) = &a.symbol else {
        if !a.set.is_empty() || !a.unset.is_empty() {
            anyhow::bail!(
                "--set/--unset change one symbol's scope: name it (e.g. `twslake scope SPY --set expiry_days=30`)"
            );
        }
        let mut records = Vec::new();
        for s in lake.scoped_symbols().await? {
            if a.history {
                records.extend(lake.scope_history(&s).await?);
            } else {
                records.extend(lake.latest_scope(&s).await?);
            }
        }
        return show(&a, &records, None);
    };
    let symbol = symbols_of(std::slice::from_ref(name))?.remove(0);
    if a.history {
        return show(&a, &lake.scope_history(&symbol).await?, Some(&symbol));
    }
    if !a.set.is_empty() || !a.unset.is_empty() {
        let start = file_scope(&file)?;
        let stored = scope::load_one(&lake, &symbol).await?;
        let todo = edits(&a, stored.as_ref().unwrap_or(&start))?;
        let written = scope::record(&lake, &symbol, &start, &actor(), &command_line(), |s| apply(s, &todo)).await?;
        match &written {
            Some(r) if r.seq == 1 => {
                eprintln!("{symbol}: scope recorded (twslake.toml and the defaults, with the change)")
            }
            Some(r) => {
                for c in &r.changes {
                    eprintln!("{symbol}: {} {} -> {}", c.key, show_value(&c.old), show_value(&c.new));
                }
            }
            None => eprintln!("{symbol}: nothing changed (the scope already says so)"),
        }
    }
    let latest: Vec<ScopeRecord> = lake.latest_scope(&symbol).await?.into_iter().collect();
    show(&a, &latest, Some(&symbol))
}

fn show(a: &ScopeArgs, records: &[ScopeRecord], symbol: Option<&Symbol>) -> anyhow::Result<i32> {
    if records.is_empty() {
        let whom = symbol.map_or("the lake".to_string(), |s| s.to_string());
        eprintln!(
            "{whom} has no stored scope: `update` uses the command line, twslake.toml and the defaults; \
             `twslake setup` or `twslake scope SYMBOL --set KEY=VALUE` records one"
        );
        if a.json {
            say!("{}", if symbol.is_some() && !a.history { "null" } else { "[]" });
        }
        // A symbol's scope asked for and absent is a failure; an empty list or log is an answer.
        return Ok(if symbol.is_some() && !a.history { 1 } else { 0 });
    }
    match (a.json, a.history, symbol) {
        (true, true, _) => say!("{}", serde_json::to_string_pretty(records)?),
        (true, false, Some(_)) => say!("{}", serde_json::to_string_pretty(&summary(&records[0]))?),
        (true, false, None) => {
            say!("{}", serde_json::to_string_pretty(&records.iter().map(summary).collect::<Vec<_>>())?)
        }
        (false, true, _) => print_history(records)?,
        (false, false, _) => {
            for r in records {
                print_scope(r)?;
            }
        }
    }
    Ok(0)
}
