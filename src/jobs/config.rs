//! What an ingest run asks for: bar series, option selection, update policy, pacing. The same
//! settings come from the command line or from `twslake.toml`.

use crate::error::{Error, Result};
use crate::lake::layout::{BarSize, Series, WhatToShow};
use chrono::NaiveDate;
use serde::Deserialize;

/// One equity bar series and how far back it is kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EquitySeries {
    /// Bar size and what-to-show.
    pub series: Series,
    /// Sessions back from the last finished session (ignored when `--from` is given for daily bars).
    pub sessions: u32,
}

/// How fresh each dataset must be before `update` refreshes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdatePolicy {
    /// Contract descriptions older than this are fetched again (default 7 days).
    pub contracts_max_age: chrono::Duration,
    /// A chain snapshot older than this is taken again (default 4 hours).
    pub chain_max_age: chrono::Duration,
    /// Option bars need a chain snapshot at most this old (default 24 hours).
    pub chain_prerequisite_age: chrono::Duration,
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        UpdatePolicy {
            contracts_max_age: chrono::Duration::days(7),
            chain_max_age: chrono::Duration::hours(4),
            chain_prerequisite_age: chrono::Duration::hours(24),
        }
    }
}

/// Which option contracts get bars.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionSelection {
    /// Expiries at most this many calendar days away (default 60).
    pub expiry_days: i64,
    /// Strikes within this fraction of the spot (default 0.10: ±10 %).
    pub strike_band: f64,
    /// At most this many contracts per underlying, nearest the money first (default 200).
    pub max_contracts: usize,
    /// Bar series (default 5-minute MIDPOINT: the mids a surface needs, seven sessions per request).
    pub series: Vec<Series>,
    /// Sessions of history per contract (default 5).
    pub sessions: u32,
}

impl Default for OptionSelection {
    fn default() -> Self {
        OptionSelection {
            expiry_days: 60,
            strike_band: 0.10,
            max_contracts: 200,
            series: vec![Series { bar_size: BarSize::Min5, what_to_show: WhatToShow::Midpoint }],
            sessions: 5,
        }
    }
}

/// Everything an ingest run needs besides the lake and the gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestConfig {
    /// Equity series (default: 1-day TRADES over 5 years, 1-minute TRADES over 10 sessions).
    pub equity: Vec<EquitySeries>,
    /// First date for daily bars (overrides their `sessions`).
    pub from: Option<NaiveDate>,
    /// Option selection.
    pub options: OptionSelection,
    /// Update policy.
    pub policy: UpdatePolicy,
    /// Pacing windows are divided by this (1 = IB's real windows; match the simulator's scale).
    pub pacing_scale: f64,
    /// Turn pacing off (a source that does not pace; never against IB).
    pub pacing_off: bool,
    /// IB states its pacing limits as hard for bars of 30 seconds or less and as a softer
    /// throttle above. By default every request is paced by the hard rules; with this set,
    /// bars of a minute and longer keep only the identical-request and open-request rules.
    pub relax_large_bars: bool,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Attempts per request on transient errors.
    pub attempts: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            equity: vec![
                EquitySeries {
                    series: Series { bar_size: BarSize::Day1, what_to_show: WhatToShow::Trades },
                    sessions: 5 * 252,
                },
                EquitySeries {
                    series: Series { bar_size: BarSize::Min1, what_to_show: WhatToShow::Trades },
                    sessions: 10,
                },
            ],
            from: None,
            options: OptionSelection::default(),
            policy: UpdatePolicy::default(),
            pacing_scale: 1.0,
            pacing_off: false,
            relax_large_bars: false,
            concurrency: 4,
            attempts: 5,
        }
    }
}

/// `twslake.toml`: every field optional; the command line overrides it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The lake URL.
    pub lake: Option<String>,
    /// `HOST:PORT` of the gateway.
    pub gateway: Option<String>,
    /// API client id.
    pub client_id: Option<i32>,
    /// Symbols for `update` when none are named.
    pub symbols: Option<Vec<String>>,
    /// Equity series as `"BAR SIZE/WHAT/SESSIONS"`, e.g. `"1 day/TRADES/1260"`.
    pub equity: Option<Vec<String>>,
    /// First date of daily bars.
    pub from: Option<NaiveDate>,
    /// Option expiries within this many days.
    pub expiry_days: Option<i64>,
    /// Option strikes within this fraction of spot.
    pub strike_band: Option<f64>,
    /// Contracts per underlying.
    pub max_contracts: Option<usize>,
    /// Option series as `"BAR SIZE/WHAT"`.
    pub option_series: Option<Vec<String>>,
    /// Sessions of option history.
    pub option_sessions: Option<u32>,
    /// Pacing scale.
    pub pacing_scale: Option<f64>,
}

impl FileConfig {
    /// Reads `path`; a missing file is an empty config, a malformed one an error naming it.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| Error::bad_input("config file", path.display().to_string(), e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
            Err(e) => Err(Error::Io { path: path.to_path_buf(), source: e }),
        }
    }
}

/// Parses `"1 day/TRADES/1260"` (the sessions part optional, default `default_sessions`).
pub fn parse_series(s: &str, default_sessions: u32) -> Result<EquitySeries> {
    let mut parts = s.split('/');
    let bar: BarSize = parts.next().unwrap_or("").parse()?;
    let what: WhatToShow = parts.next().unwrap_or("TRADES").parse()?;
    let sessions = match parts.next() {
        Some(n) => n.trim().parse().map_err(|_| Error::bad_input("series", s, "sessions must be a whole number"))?,
        None => default_sessions,
    };
    Ok(EquitySeries { series: Series { bar_size: bar, what_to_show: what }, sessions })
}

/// Validates a configuration before anything is asked of the gateway.
pub fn check(cfg: &IngestConfig) -> Result<()> {
    if !(cfg.pacing_scale.is_finite() && cfg.pacing_scale > 0.0) {
        return Err(Error::bad_input("pacing scale", cfg.pacing_scale.to_string(), "must be a positive number"));
    }
    if !(cfg.options.strike_band > 0.0 && cfg.options.strike_band < 1.0) {
        return Err(Error::bad_input(
            "strike band",
            cfg.options.strike_band.to_string(),
            "use a fraction of spot between 0 and 1, e.g. 0.1",
        ));
    }
    for s in cfg.equity.iter().map(|e| e.series).chain(cfg.options.series.iter().copied()) {
        crate::source::plan::max_sessions(s.bar_size)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_and_files_parse() {
        let s = parse_series("1 min/MIDPOINT/5", 1).unwrap();
        assert_eq!((s.series.bar_size, s.series.what_to_show, s.sessions), (BarSize::Min1, WhatToShow::Midpoint, 5));
        assert!(parse_series("7 mins/TRADES", 1).is_err());
        let f: FileConfig = toml::from_str("gateway = \"127.0.0.1:4001\"\nsymbols = [\"SPY\", \"BRK B\"]\n").unwrap();
        assert_eq!(f.symbols.unwrap().len(), 2);
        assert!(toml::from_str::<FileConfig>("gatewya = 1").is_err());
    }
}
