//! A symbol's scope, typed: the part of [`IngestConfig`] that says what the lake holds of it
//! (equity series and their history start, option selection, update policy), stored in the lake
//! by [`crate::lake::scope`] and read back by `setup`, `update`, `live` and `run`.
//!
//! A scope is a flat set of keys, the same names as `twslake.toml`'s and the command line's:
//!
//! | key | value | default |
//! |---|---|---|
//! | `equity` | equity series `BAR SIZE/WHAT/SESSIONS`, comma-separated | `1 day/TRADES/1260,1 min/TRADES/10` |
//! | `from` | first date of daily bars (`YYYY-MM-DD`; overrides their sessions) | not set |
//! | `option_series` | option series `BAR SIZE/WHAT`, comma-separated | `5 mins/MIDPOINT` |
//! | `expiry_days` | option expiries within this many calendar days (0–3650) | 60 |
//! | `strike_band` | option strikes within this fraction of the spot (0–1, exclusive) | 0.1 |
//! | `max_contracts` | option contracts, nearest the money first (0–100000) | 200 |
//! | `option_sessions` | sessions of option history (0–2520) | 5 |
//! | `contracts_max_age_hours` | contract descriptions refreshed when older (1–8784) | 168 |
//! | `chain_max_age_minutes` | chain snapshot taken again when older (1–527040) | 240 |
//! | `chain_prerequisite_age_hours` | option bars need a chain snapshot this fresh (1–8784) | 24 |
//!
//! Decisions: `twslake.toml` only seeds a symbol's first scope (and runs over symbols without
//! one); once stored, the scope wins over the file, and flags given on the command line win over
//! the scope for that run only (`update --save-scope` records them).

use super::config::{self, EquitySeries, IngestConfig, OptionSelection, UpdatePolicy};
use super::Ingest;
use crate::domain::Symbol;
use crate::error::{Error, Result};
use crate::lake::scope::{Change, ScopeRecord};
use crate::lake::Lake;
use crate::source::MarketData;
use chrono::NaiveDate;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Every scope key, in the order they are shown, with what it takes.
pub const KEYS: &[(&str, &str)] = &[
    ("equity", "equity series BAR SIZE/WHAT/SESSIONS, comma-separated (e.g. \"1 day/TRADES/1260,1 min/TRADES/10\")"),
    ("from", "first date of daily bars, YYYY-MM-DD (unset: their sessions count)"),
    ("option_series", "option series BAR SIZE/WHAT, comma-separated (e.g. \"5 mins/MIDPOINT\")"),
    ("expiry_days", "option expiries within this many calendar days, 0 to 3650"),
    ("strike_band", "option strikes within this fraction of the spot, between 0 and 1 (e.g. 0.1)"),
    ("max_contracts", "option contracts per underlying, nearest the money first, 0 to 100000"),
    ("option_sessions", "sessions of option history, 0 to 2520"),
    ("contracts_max_age_hours", "contract descriptions older than this are fetched again, 1 to 8784 hours"),
    ("chain_max_age_minutes", "a chain snapshot older than this is taken again, 1 to 527040 minutes"),
    ("chain_prerequisite_age_hours", "option bars need a chain snapshot at most this old, 1 to 8784 hours"),
];

/// What the lake holds of one symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// Equity series and how many sessions each keeps.
    pub equity: Vec<EquitySeries>,
    /// First date of daily bars (overrides their sessions).
    pub from: Option<NaiveDate>,
    /// Option selection.
    pub options: OptionSelection,
    /// Update policy.
    pub policy: UpdatePolicy,
}

/// The stored scope of every symbol that has one.
pub type Scopes = BTreeMap<Symbol, Scope>;

impl Default for Scope {
    fn default() -> Self {
        Scope::of(&IngestConfig::default())
    }
}

fn bad(key: &str, value: &str, allowed: impl std::fmt::Display) -> Error {
    let what: &'static str = KEYS.iter().find(|(k, _)| *k == key).map_or("scope key", |(k, _)| k);
    Error::bad_input(what, value, format!("allowed: {allowed}"))
}

fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(key: &str, v: &str, lo: T, hi: T) -> Result<T> {
    let help = KEYS.iter().find(|(k, _)| *k == key).map_or("", |(_, h)| *h);
    match v.trim().parse::<T>() {
        // NaN compares false both ways: refused.
        Ok(n) if n >= lo && n <= hi => Ok(n),
        _ => Err(bad(key, v, help)),
    }
}

fn list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// A listed series without its sessions (`1 day/TRADES/1260` → `1 day/TRADES`): an equity
/// series is named with or without them.
fn series_base<'a>(key: &str, s: &'a str) -> &'a str {
    match (key, s.rsplit_once('/')) {
        ("equity", Some((base, _))) => base,
        _ => s,
    }
}

impl Scope {
    /// The scope part of a run's settings.
    pub fn of(cfg: &IngestConfig) -> Scope {
        Scope { equity: cfg.equity.clone(), from: cfg.from, options: cfg.options.clone(), policy: cfg.policy }
    }

    /// `base` (the run-level settings: pacing, concurrency, …) with this scope's settings.
    pub fn config(&self, base: &IngestConfig) -> IngestConfig {
        IngestConfig {
            equity: self.equity.clone(),
            from: self.from,
            options: self.options.clone(),
            policy: self.policy,
            ..base.clone()
        }
    }

    /// The value of `key` as stored (`null` when not set).
    pub fn get(&self, key: &str) -> Value {
        let series = |s: &crate::domain::Series| format!("{}/{}", s.bar_size, s.what_to_show);
        let o = &self.options;
        match key {
            "equity" => {
                json!(self.equity.iter().map(|e| format!("{}/{}", series(&e.series), e.sessions)).collect::<Vec<_>>())
            }
            "from" => self.from.map_or(Value::Null, |d| json!(d.to_string())),
            "option_series" => json!(o.series.iter().map(series).collect::<Vec<_>>()),
            "expiry_days" => json!(o.expiry_days),
            "strike_band" => json!(o.strike_band),
            "max_contracts" => json!(o.max_contracts),
            "option_sessions" => json!(o.sessions),
            "contracts_max_age_hours" => json!(self.policy.contracts_max_age.num_hours()),
            "chain_max_age_minutes" => json!(self.policy.chain_max_age.num_minutes()),
            "chain_prerequisite_age_hours" => json!(self.policy.chain_prerequisite_age.num_hours()),
            _ => Value::Null,
        }
    }

    /// Sets `key` from its text (a flag's or `--set`'s); an unknown key or a bad value is an
    /// error naming it and what is allowed, and changes nothing.
    pub fn set(&mut self, key: &str, v: &str) -> Result<()> {
        let mut next = self.clone();
        let o = &mut next.options;
        match key {
            "equity" => {
                let series: Vec<EquitySeries> = list(v)
                    .map(|s| config::parse_series(s, 1260).map_err(|e| bad(key, s, e)))
                    .collect::<Result<_>>()?;
                if series.is_empty() || series.iter().any(|s| s.sessions > 25_200) {
                    return Err(bad(key, v, "one or more series, each of at most 25200 sessions"));
                }
                next.equity = series;
            }
            "from" => {
                let d: NaiveDate = v.trim().parse().map_err(|_| bad(key, v, "a date YYYY-MM-DD"))?;
                let today = chrono::Utc::now().with_timezone(&crate::calendar::EXCHANGE_TZ).date_naive();
                if chrono::Datelike::year(&d) < 1970 || d > today {
                    return Err(bad(key, v, format!("a date from 1970-01-01 to {today}")));
                }
                next.from = Some(d);
            }
            "option_series" => {
                let series: Vec<_> = list(v)
                    .map(|s| config::parse_series(s, 1).map(|e| e.series).map_err(|e| bad(key, s, e)))
                    .collect::<Result<_>>()?;
                if series.is_empty() {
                    return Err(bad(key, v, "one or more series BAR SIZE/WHAT"));
                }
                o.series = series;
            }
            "expiry_days" => o.expiry_days = number(key, v, 0, 3650)?,
            "strike_band" => {
                o.strike_band = number(key, v, 1e-6, 0.999_999)?;
            }
            "max_contracts" => o.max_contracts = number(key, v, 0, 100_000)?,
            "option_sessions" => o.sessions = number(key, v, 0, 2520)?,
            "contracts_max_age_hours" => {
                next.policy.contracts_max_age = chrono::Duration::hours(number(key, v, 1, 8784)?)
            }
            "chain_max_age_minutes" => {
                next.policy.chain_max_age = chrono::Duration::minutes(number(key, v, 1, 527_040)?)
            }
            "chain_prerequisite_age_hours" => {
                next.policy.chain_prerequisite_age = chrono::Duration::hours(number(key, v, 1, 8784)?)
            }
            _ => {
                let keys: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
                return Err(Error::bad_input("scope key", key, format!("known keys: {}", keys.join(", "))));
            }
        }
        config::check(&next.config(&IngestConfig::default()))?;
        *self = next;
        Ok(())
    }

    /// Adds series to a list key (`equity`, `option_series`); a series already listed with
    /// the same bar size and what-to-show is replaced (its sessions updated).
    pub fn add(&mut self, key: &str, v: &str) -> Result<()> {
        let mut items = self.items(key, v)?;
        let mut added = Scope::default();
        added.set(key, v)?;
        for new in added.get(key).as_array().into_iter().flatten().filter_map(Value::as_str) {
            items.retain(|old| series_base(key, old) != series_base(key, new));
            items.push(new.to_string());
        }
        self.set(key, &items.join(","))
    }

    /// Removes series from a list key; a series not listed is an error naming it.
    pub fn remove(&mut self, key: &str, v: &str) -> Result<()> {
        let mut items = self.items(key, v)?;
        for old in list(v) {
            let e = config::parse_series(old, 1).map_err(|e| bad(key, old, e))?;
            let old = format!("{}/{}", e.series.bar_size, e.series.what_to_show);
            let n = items.len();
            items.retain(|i| series_base(key, i) != old);
            if items.len() == n {
                return Err(bad(key, v, format!("a series the scope lists: {}", self.items(key, v)?.join(", "))));
            }
        }
        self.set(key, &items.join(","))
    }

    /// The series of a list key, as stored.
    fn items(&self, key: &str, v: &str) -> Result<Vec<String>> {
        if key != "equity" && key != "option_series" {
            return Err(bad(key, v, "+= and -= for the list keys equity and option_series; KEY=VALUE for the others"));
        }
        Ok(self.get(key).as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect())
    }

    /// Sets `key` back to its default (`from`: not set).
    pub fn unset(&mut self, key: &str) -> Result<()> {
        if !KEYS.iter().any(|(k, _)| *k == key) {
            return self.set(key, "");
        }
        self.copy(key, &Scope::default());
        Ok(())
    }

    /// Copies `key`'s value from `other` (a known key; others are ignored).
    pub fn copy(&mut self, key: &str, other: &Scope) {
        match key {
            "equity" => self.equity = other.equity.clone(),
            "from" => self.from = other.from,
            "option_series" => self.options.series = other.options.series.clone(),
            "expiry_days" => self.options.expiry_days = other.options.expiry_days,
            "strike_band" => self.options.strike_band = other.options.strike_band,
            "max_contracts" => self.options.max_contracts = other.options.max_contracts,
            "option_sessions" => self.options.sessions = other.options.sessions,
            "contracts_max_age_hours" => self.policy.contracts_max_age = other.policy.contracts_max_age,
            "chain_max_age_minutes" => self.policy.chain_max_age = other.policy.chain_max_age,
            "chain_prerequisite_age_hours" => self.policy.chain_prerequisite_age = other.policy.chain_prerequisite_age,
            _ => {}
        }
    }

    /// The stored JSON object: every key.
    pub fn to_json(&self) -> Value {
        Value::Object(KEYS.iter().map(|(k, _)| (k.to_string(), self.get(k))).collect())
    }

    /// Reads a stored JSON object (a key it lacks keeps its default, so older records read).
    pub fn from_json(v: &Value) -> Result<Scope> {
        let mut s = Scope::default();
        let Some(obj) = v.as_object() else {
            return Err(Error::bad_input("scope", v.to_string(), "a JSON object of scope keys"));
        };
        for (k, val) in obj {
            let text = match val {
                Value::Null => {
                    s.unset(k)?;
                    continue;
                }
                Value::String(t) => t.clone(),
                Value::Array(items) => {
                    items.iter().map(|i| i.as_str().unwrap_or_default()).collect::<Vec<_>>().join(",")
                }
                other => other.to_string(),
            };
            if k == "from" {
                // Stored once checked: not judged again against today's date (a lake written
                // under a simulated clock ahead of this machine's still reads).
                let d = text.trim().parse().map_err(|_| bad(k, &text, "a date YYYY-MM-DD"))?;
                s.from = Some(d);
                continue;
            }
            s.set(k, &text)?;
        }
        Ok(s)
    }

    /// What differs from `old` (every key when there is no `old`).
    pub fn changes_from(&self, old: Option<&Scope>) -> Vec<Change> {
        KEYS.iter()
            .filter_map(|(k, _)| {
                let new = self.get(k);
                let was = old.map_or(Value::Null, |o| o.get(k));
                (old.is_none() || was != new).then(|| Change { key: k.to_string(), old: was, new })
            })
            .collect()
    }
}

/// The scope of a stored record; a record that does not read is an error naming its symbol.
pub fn of_record(r: &ScopeRecord) -> Result<Scope> {
    Scope::from_json(&r.scope).map_err(|e| {
        Error::bad_input(
            "stored scope",
            format!("{} (record {})", r.symbol, r.seq),
            format!("{e}; fix it with `twslake scope {} --set KEY=VALUE`", r.symbol),
        )
    })
}

/// Symbols with equal settings together, in the order they first appear: one ingest pass per
/// group (`setup`/`update` and `run`'s end-of-day update share this).
pub fn groups(configs: impl IntoIterator<Item = (Symbol, IngestConfig)>) -> Vec<(IngestConfig, Vec<Symbol>)> {
    let mut groups: Vec<(IngestConfig, Vec<Symbol>)> = Vec::new();
    for (symbol, c) in configs {
        match groups.iter_mut().find(|(g, _)| *g == c) {
            Some((_, members)) => members.push(symbol),
            None => groups.push((c, vec![symbol])),
        }
    }
    groups
}

/// The stored scope of every symbol that has one: what `update`, `live` and `run` act on.
pub async fn load(lake: &Lake) -> Result<Scopes> {
    let mut out = Scopes::new();
    for symbol in lake.scoped_symbols().await? {
        if let Some(r) = lake.latest_scope(&symbol).await? {
            out.insert(symbol, of_record(&r)?);
        }
    }
    Ok(out)
}

/// The stored scope of one symbol, if any.
pub async fn load_one(lake: &Lake, symbol: &Symbol) -> Result<Option<Scope>> {
    lake.latest_scope(symbol).await?.as_ref().map(of_record).transpose()
}

/// Records `edit` of `symbol`'s scope (applied to the stored scope, or to `start` when there is
/// none) as a change by `actor` through `command`; returns the record, or `None` when nothing
/// changed. Concurrent writers are ordered by [`Lake::change_scope`]: no change is lost.
pub async fn record(
    lake: &Lake,
    symbol: &Symbol,
    start: &Scope,
    actor: &str,
    command: &str,
    mut edit: impl FnMut(&mut Scope) -> Result<()>,
) -> Result<Option<ScopeRecord>> {
    lake.change_scope(symbol, actor, command, |latest| {
        let old = latest.map(of_record).transpose()?;
        let mut new = old.clone().unwrap_or_else(|| start.clone());
        edit(&mut new)?;
        if old.as_ref() == Some(&new) {
            return Ok(None);
        }
        Ok(Some((new.changes_from(old.as_ref()), new.to_json())))
    })
    .await
}

impl<S: MarketData> Ingest<S> {
    /// Runs the next jobs with other settings (another symbol's scope), completed as
    /// [`Ingest::new`] completes them; pacing and metrics carry on.
    pub fn reconfigure(&mut self, cfg: IngestConfig) {
        let (cfg, notes) = config::with_spot_for_options(cfg);
        self.cfg = cfg;
        self.config_notes = notes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_bad_values_change_nothing() {
        let mut s = Scope::default();
        assert_eq!(Scope::from_json(&s.to_json()).unwrap(), s);
        s.set("equity", "1 day/TRADES/4, 5 mins/MIDPOINT/3").unwrap();
        s.set("from", "2026-11-18").unwrap();
        s.set("strike_band", "0.05").unwrap();
        s.set("chain_max_age_minutes", "30").unwrap();
        let back = Scope::from_json(&s.to_json()).unwrap();
        assert_eq!(back, s);
        assert_eq!(s.get("equity"), json!(["1 day/TRADES/4", "5 mins/MIDPOINT/3"]));
        let before = s.clone();
        for (k, v) in [
            ("strike_band", "2"),
            ("strike_band", "NaN"),
            ("expiry_days", "-1"),
            ("equity", "7 mins/TRADES/3"),
            ("equity", ""),
            ("from", "yesterday"),
            ("from", "2999-01-01"),
            ("option_series", "1 min/NOPE"),
            ("colour", "blue"),
        ] {
            let e = s.set(k, v).unwrap_err().to_string();
            assert!(e.contains(k) || e.contains(v), "{k}={v}: {e}");
            assert_eq!(s, before, "{k}={v} changed nothing");
        }
        let changes = s.changes_from(Some(&Scope::default()));
        let keys: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["equity", "from", "strike_band", "chain_max_age_minutes"]);
        // A stored date is not judged again against this machine's today; a stored bad value
        // or an unknown key is an error.
        let ahead = Scope::from_json(&json!({ "from": "2999-01-01" })).unwrap();
        assert_eq!(ahead.from, "2999-01-01".parse().ok());
        assert!(Scope::from_json(&json!({ "expiry_days": -3 })).is_err());
        assert!(Scope::from_json(&json!({ "colour": "blue" })).is_err());
        s.unset("from").unwrap();
        assert_eq!(s.from, None);
        // Lists grow and shrink by series; an equity series is named with or without sessions.
        s.add("equity", "1 min/TRADES/2").unwrap();
        s.add("equity", "5 mins/MIDPOINT/7").unwrap();
        assert_eq!(s.get("equity"), json!(["1 day/TRADES/4", "1 min/TRADES/2", "5 mins/MIDPOINT/7"]));
        s.remove("equity", "5 mins/MIDPOINT").unwrap();
        assert_eq!(s.get("equity"), json!(["1 day/TRADES/4", "1 min/TRADES/2"]));
        let before = s.clone();
        assert!(s.remove("equity", "30 secs/TRADES").unwrap_err().to_string().contains("1 day/TRADES/4"));
        assert!(s.remove("equity", "1 day/TRADES,1 min/TRADES").is_err(), "the list cannot end empty");
        assert!(s.add("expiry_days", "3").is_err());
        assert_eq!(s, before);
        s.add("option_series", "1 min/MIDPOINT").unwrap();
        assert_eq!(s.get("option_series"), json!(["5 mins/MIDPOINT", "1 min/MIDPOINT"]));
        assert!(s.unset("colour").is_err());
    }
}
