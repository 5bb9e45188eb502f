//! What an ingest run asks for: bar series, option selection, update policy, pacing. The same
//! settings come from the command line or from `twslake.toml`.

use crate::domain::{BarSize, Series, WhatToShow};
use crate::error::{Error, Result};
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
    /// How long a symbol's job lease lives unless renewed (renewed every third of it while the
    /// symbol is ingested; a process killed on another machine holds it back this long at most,
    /// one killed on this machine not at all): `lake::lease`. Default 30 s.
    pub lease_ttl: std::time::Duration,
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
            lease_ttl: std::time::Duration::from_secs(30),
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
    let what = parts.next().map_or(Ok(WhatToShow::Trades), str::parse)?;
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
    // IB serves ADJUSTED_LAST for stocks in bars of a day or longer only (`super::adjusted`).
    for s in cfg.equity.iter().map(|e| e.series).filter(|s| s.what_to_show == WhatToShow::AdjustedLast) {
        if s.bar_size.is_intraday() {
            return Err(Error::bad_input(
                "--equity (or `equity` in twslake.toml)",
                format!("{}/{}", s.bar_size, s.what_to_show),
                "ADJUSTED_LAST is served in bars of 1 day, 1 week or 1 month only (IB refuses intraday ones); use e.g. \"1 day/ADJUSTED_LAST\", or TRADES for intraday bars",
            ));
        }
    }
    if let Some(s) = cfg.options.series.iter().find(|s| s.what_to_show == WhatToShow::AdjustedLast) {
        return Err(Error::bad_input(
            "--option-series (or `option_series` in twslake.toml)",
            format!("{}/{}", s.bar_size, s.what_to_show),
            "ADJUSTED_LAST is served for stocks only; use TRADES, MIDPOINT, BID, ASK or BID_ASK for options",
        ));
    }
    Ok(())
}

/// The spot rule of option bars, applied to the settings of every ingest run ([`super::Ingest::new`]):
/// `setup` and `update` never store option sessions without the underlying's bars of the same
/// session at the same or a finer resolution, so every option bar has its spot (the option
/// panel's as-of join) from its own session.
///
/// For each intraday option series of bar size B, the equity series must hold an intraday series
/// of bar size ≤ B (in seconds, any what-to-show) kept for at least `options.sessions` sessions:
/// - when one does, nothing changes;
/// - when the series of bar size ≤ B all keep fewer sessions, the coarsest of them (the fewest
///   requests to add; on a tie the one keeping the most sessions, then the first listed) is
///   extended to `options.sessions`;
/// - when none has bar size ≤ B, `B/TRADES/options.sessions` is added.
///
/// Option series are taken finest first: a series serving the finest option bars serves every
/// coarser one too, so at most one equity series is extended or added. Daily and longer option
/// series, and a selection of no contracts (`max_contracts` 0), need nothing here. Returns the
/// settings and one note per change, to be said at the start of a run.
pub fn with_spot_for_options(mut cfg: IngestConfig) -> (IngestConfig, Vec<String>) {
    let mut notes = Vec::new();
    if cfg.options.max_contracts == 0 {
        return (cfg, notes);
    }
    // `sessions_back` reads 0 sessions as 1: compare what is fetched, not what is written.
    let sessions = cfg.options.sessions.max(1);
    let mut intraday: Vec<(u32, Series)> =
        cfg.options.series.iter().filter_map(|s| Some((s.bar_size.seconds()?, *s))).collect();
    intraday.sort_by_key(|(secs, _)| *secs);
    for (secs, opt) in intraday {
        let fine_enough = |e: &EquitySeries| e.series.bar_size.seconds().is_some_and(|s| s <= secs);
        if cfg.equity.iter().any(|e| fine_enough(e) && e.sessions.max(1) >= sessions) {
            continue;
        }
        let need = format!(
            "{} {} option bars of {sessions} sessions need the spot of those sessions",
            opt.bar_size, opt.what_to_show
        );
        let coarsest = cfg
            .equity
            .iter()
            .enumerate()
            .filter(|(_, e)| fine_enough(e))
            .max_by_key(|(i, e)| (e.series.bar_size.seconds(), e.sessions, std::cmp::Reverse(*i)))
            .map(|(i, _)| i);
        match coarsest.and_then(|i| cfg.equity.get_mut(i)) {
            Some(e) => {
                notes.push(format!(
                    "{need}: {} {} extended from {} to {sessions} sessions",
                    e.series.bar_size, e.series.what_to_show, e.sessions
                ));
                e.sessions = sessions;
            }
            None => {
                let series = Series { bar_size: opt.bar_size, what_to_show: WhatToShow::Trades };
                notes.push(format!(
                    "{need}: {} {} added for {sessions} sessions (no equity series of {} or finer)",
                    series.bar_size, series.what_to_show, opt.bar_size
                ));
                cfg.equity.push(EquitySeries { series, sessions });
            }
        }
    }
    (cfg, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjusted_last_is_daily_or_coarser_and_for_stocks_only() {
        let with = |equity: &str, option: &str| {
            let mut cfg = IngestConfig { equity: vec![parse_series(equity, 5).unwrap()], ..Default::default() };
            cfg.options.series = vec![parse_series(option, 1).unwrap().series];
            check(&cfg)
        };
        assert!(with("1 day/ADJUSTED_LAST", "5 mins/MIDPOINT").is_ok());
        assert!(with("1 week/ADJUSTED_LAST", "5 mins/MIDPOINT").is_ok());
        let e = with("1 hour/ADJUSTED_LAST", "5 mins/MIDPOINT").unwrap_err().to_string();
        assert!(e.contains("--equity") && e.contains("1 day/ADJUSTED_LAST"), "{e}");
        let e = with("1 day/TRADES", "1 day/ADJUSTED_LAST").unwrap_err().to_string();
        assert!(e.contains("--option-series") && e.contains("stocks only"), "{e}");
    }

    #[test]
    fn series_and_files_parse() {
        let s = parse_series("1 min/MIDPOINT/5", 1).unwrap();
        assert_eq!((s.series.bar_size, s.series.what_to_show, s.sessions), (BarSize::Min1, WhatToShow::Midpoint, 5));
        assert!(parse_series("7 mins/TRADES", 1).is_err());
        let f: FileConfig = toml::from_str("gateway = \"127.0.0.1:4001\"\nsymbols = [\"SPY\", \"BRK B\"]\n").unwrap();
        assert_eq!(f.symbols.unwrap().len(), 2);
        assert!(toml::from_str::<FileConfig>("gatewya = 1").is_err());
    }

    fn cfg_of(equity: &[&str], option_series: &[&str], sessions: u32) -> IngestConfig {
        let options = OptionSelection {
            series: option_series.iter().map(|s| parse_series(s, 1).unwrap().series).collect(),
            sessions,
            ..Default::default()
        };
        let equity = equity.iter().map(|s| parse_series(s, 1).unwrap()).collect();
        IngestConfig { equity, options, ..Default::default() }
    }

    /// (case, equity, option series, option sessions, equity after, what the note says)
    type Case = (
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
        u32,
        &'static [&'static str],
        &'static [&'static str],
    );

    fn spelled(cfg: &IngestConfig) -> Vec<String> {
        cfg.equity.iter().map(|e| format!("{}/{}/{}", e.series.bar_size, e.series.what_to_show, e.sessions)).collect()
    }

    #[test]
    fn option_bars_get_the_spot_of_their_sessions() {
        let cases: [Case; 10] = [
            (
                "nothing to do: the defaults",
                &["1 day/TRADES/1260", "1 min/TRADES/10"],
                &["5 mins/MIDPOINT"],
                5,
                &["1 day/TRADES/1260", "1 min/TRADES/10"],
                &[],
            ),
            (
                "nothing to do: a finer series keeps exactly the option sessions",
                &["1 day/TRADES/60", "30 secs/MIDPOINT/3"],
                &["1 min/MIDPOINT"],
                3,
                &["1 day/TRADES/60", "30 secs/MIDPOINT/3"],
                &[],
            ),
            (
                "extend the coarsest series fine enough, not a finer one nor one too coarse",
                &["1 day/TRADES/1260", "1 min/TRADES/2", "5 mins/MIDPOINT/3", "10 mins/TRADES/10"],
                &["5 mins/MIDPOINT"],
                5,
                &["1 day/TRADES/1260", "1 min/TRADES/2", "5 mins/MIDPOINT/5", "10 mins/TRADES/10"],
                &["5 mins MIDPOINT option bars of 5 sessions", "5 mins MIDPOINT extended from 3 to 5 sessions"],
            ),
            (
                "the issue's case: 1-minute spot kept for 2 sessions, options for 5",
                &["1 day/TRADES/1260", "1 min/TRADES/2"],
                &["5 mins/MIDPOINT"],
                5,
                &["1 day/TRADES/1260", "1 min/TRADES/5"],
                &["need the spot of those sessions: 1 min TRADES extended from 2 to 5 sessions"],
            ),
            (
                "a tie of bar sizes: the one keeping the most sessions",
                &["1 min/TRADES/2", "1 min/MIDPOINT/3"],
                &["1 min/MIDPOINT"],
                5,
                &["1 min/TRADES/2", "1 min/MIDPOINT/5"],
                &["1 min MIDPOINT extended from 3 to 5"],
            ),
            (
                "add when no series is fine enough",
                &["1 day/TRADES/1260", "10 mins/TRADES/10"],
                &["5 mins/MIDPOINT"],
                5,
                &["1 day/TRADES/1260", "10 mins/TRADES/10", "5 mins/TRADES/5"],
                &["5 mins TRADES added for 5 sessions (no equity series of 5 mins or finer)"],
            ),
            (
                "daily-only equity",
                &["1 day/TRADES/1260"],
                &["1 min/MIDPOINT"],
                2,
                &["1 day/TRADES/1260", "1 min/TRADES/2"],
                &["1 min MIDPOINT option bars of 2 sessions", "1 min TRADES added for 2 sessions"],
            ),
            (
                "several option series: the finest decides, once",
                &["1 day/TRADES/1260", "1 min/TRADES/2", "5 mins/TRADES/2"],
                &["5 mins/MIDPOINT", "1 min/MIDPOINT", "5 mins/BID_ASK"],
                5,
                &["1 day/TRADES/1260", "1 min/TRADES/5", "5 mins/TRADES/2"],
                &["1 min MIDPOINT option bars of 5 sessions", "1 min TRADES extended from 2 to 5"],
            ),
            (
                "daily option bars need no intraday spot",
                &["1 day/TRADES/1260"],
                &["1 day/TRADES"],
                5,
                &["1 day/TRADES/1260"],
                &[],
            ),
            ("no option series at all", &["1 day/TRADES/5"], &[], 5, &["1 day/TRADES/5"], &[]),
        ];
        for (case, equity, option_series, sessions, want, said) in cases {
            let (cfg, notes) = with_spot_for_options(cfg_of(equity, option_series, sessions));
            assert_eq!(spelled(&cfg), want.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{case}");
            assert_eq!(notes.len(), usize::from(!said.is_empty()), "{case}: {notes:?}");
            for s in said {
                assert!(notes.iter().any(|n| n.contains(s)), "{case}: {notes:?} should say {s:?}");
            }
            assert_eq!(cfg.options, cfg_of(equity, option_series, sessions).options, "{case}: options untouched");
            let (again, notes) = with_spot_for_options(cfg.clone());
            assert!(again == cfg && notes.is_empty(), "{case}: a second pass changes nothing: {notes:?}");
        }
    }

    #[test]
    fn no_option_contracts_need_no_spot() {
        let mut cfg = cfg_of(&["1 day/TRADES/5"], &["1 min/MIDPOINT"], 5);
        cfg.options.max_contracts = 0;
        let (out, notes) = with_spot_for_options(cfg.clone());
        assert!(out == cfg && notes.is_empty());
        // Zero sessions are fetched as one: an equity series of 0 sessions serves options of 1.
        let cfg = cfg_of(&["1 min/TRADES/0"], &["1 min/MIDPOINT"], 1);
        let (out, notes) = with_spot_for_options(cfg.clone());
        assert!(out == cfg && notes.is_empty(), "{notes:?}");
    }
}
