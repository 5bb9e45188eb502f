//! One manifest entry: what was asked, how it was answered, where its rows went, and the flat
//! JSON object it is stored as.

use crate::datasets::Dataset;
use crate::domain::window::final_through;
use crate::domain::{BarSize, DateWindow, Right, SecType, Series, Symbol, WhatToShow};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// What was asked of the gateway (or, for a derived dataset, what was computed).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The dataset the answer goes to.
    pub dataset: Dataset,
    /// The symbol (the underlying, for options).
    pub symbol: Symbol,
    /// The contract id, when the request was for one contract.
    pub con_id: Option<i64>,
    /// The security type asked about; `None` for an entry that asked nothing (a revocation).
    pub sec_type: Option<SecType>,
    /// Option expiry.
    pub expiry: Option<NaiveDate>,
    /// Option strike.
    pub strike: Option<f64>,
    /// Option right.
    pub right: Option<Right>,
    /// The bar series, for historical bars.
    pub series: Option<Series>,
    /// The step between instants in seconds, for the surface history.
    pub step_secs: Option<u32>,
    /// Regular trading hours only.
    pub use_rth: bool,
    /// The trading dates the request covers.
    pub window: Option<DateWindow>,
    /// The end date-time as sent to IB (its wire text, kept as sent).
    pub end_date_time: Option<String>,
    /// The duration as sent to IB (its wire text, e.g. `"1 Y"`).
    pub duration: Option<String>,
    /// For a derived dataset (`surfaces`): a digest of the request ids of the partitions it was
    /// computed from. When the inputs change, the digest does, and the window is due again.
    pub inputs: Option<String>,
}

impl Request {
    /// A request of `dataset` for `symbol` with nothing else set (no contract, series or window).
    pub fn new(dataset: Dataset, symbol: &Symbol, sec_type: SecType) -> Self {
        Request {
            dataset,
            symbol: symbol.clone(),
            con_id: None,
            sec_type: Some(sec_type),
            expiry: None,
            strike: None,
            right: None,
            series: None,
            step_secs: None,
            use_rth: false,
            window: None,
            end_date_time: None,
            duration: None,
            inputs: None,
        }
    }

    /// The request of an entry that asks nothing: a revocation of earlier entries of `symbol`.
    pub fn revocation(symbol: &Symbol) -> Self {
        Request { sec_type: None, ..Request::new(Dataset::Contracts, symbol, SecType::Stock) }
    }

    /// A historical-bars request for a symbol's equity series over `window`.
    pub fn equity_bars(symbol: &Symbol, series: Series, window: DateWindow) -> Self {
        Request {
            series: Some(series),
            use_rth: true,
            window: Some(window),
            ..Request::new(Dataset::EquityBars, symbol, SecType::Stock)
        }
    }

    /// The key under which coverage is counted.
    pub fn series_key(&self) -> SeriesKey {
        SeriesKey { dataset: self.dataset, con_id: self.con_id, series: self.series, step_secs: self.step_secs }
    }
}

/// Identifies one series whose coverage is tracked (symbol aside: manifests are per symbol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SeriesKey {
    /// Dataset.
    pub dataset: Dataset,
    /// Contract id (option bars), or `None` for the symbol's own series.
    pub con_id: Option<i64>,
    /// The bar series, for bar datasets.
    pub series: Option<Series>,
    /// The step between instants, for the surface history.
    pub step_secs: Option<u32>,
}

impl SeriesKey {
    /// The key of a bar series: a symbol's own (`con_id` `None`) or one option contract's.
    pub fn bars(dataset: Dataset, con_id: Option<i64>, series: Series) -> Self {
        SeriesKey { dataset, con_id, series: Some(series), step_secs: None }
    }
}

/// How the gateway answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Rows came back.
    Ok {
        /// How many.
        rows: u64,
    },
    /// A final answer with no rows (a holiday, a contract that did not trade).
    Empty,
    /// An error; the window is not covered and may be asked again.
    Error {
        /// IB's error code.
        code: i32,
        /// IB's text.
        message: String,
    },
    /// Not an answer: earlier entries found untrue (their partitions are gone) are void, so
    /// their windows count as missing again. Entries are never edited; they are revoked.
    Revoked {
        /// The ids of the void entries.
        ids: Vec<String>,
        /// Why.
        reason: String,
    },
}

/// One request, as remembered.
///
/// In JSON the request's fields sit beside the entry's own (one flat object); the conversion goes
/// through `EntryWire` because serde's `flatten` buffers every field and made loading a
/// 100,000-entry snapshot several times slower.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "EntryWire", into = "EntryWire")]
pub struct Entry {
    /// Unique id (also stored in the footer of every partition holding the entry's rows).
    pub id: String,
    /// What was asked.
    pub request: Request,
    /// When the request was sent.
    pub requested_at: DateTime<Utc>,
    /// When the answer was complete.
    pub completed_at: DateTime<Utc>,
    /// The last date of the window whose session was over when asked: later dates stay missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_through: Option<NaiveDate>,
    /// The answer.
    pub outcome: Outcome,
    /// The partitions (object paths under the lake root) the rows went to.
    #[serde(default)]
    pub partitions: Vec<String>,
    /// Why the request was sent again, when it was (a re-fetch after a corporate action).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The flat JSON form of an [`Entry`]: IB's spellings for the typed fields (`"STK"`, `"1 min"`,
/// `"MIDPOINT"`, `"C"`), and an empty `sec_type` for an entry that asked nothing.
#[derive(Serialize, Deserialize)]
struct EntryWire {
    id: String,
    dataset: Dataset,
    symbol: Symbol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    con_id: Option<i64>,
    sec_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expiry: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strike: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    right: Option<Right>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bar_size: Option<BarSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    what_to_show: Option<WhatToShow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step_secs: Option<u32>,
    #[serde(default)]
    use_rth: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window: Option<DateWindow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inputs: Option<String>,
    requested_at: DateTime<Utc>,
    completed_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    final_through: Option<NaiveDate>,
    outcome: Outcome,
    #[serde(default)]
    partitions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl TryFrom<EntryWire> for Entry {
    type Error = String;
    fn try_from(w: EntryWire) -> std::result::Result<Self, String> {
        let sec_type = match w.sec_type.as_str() {
            "" => None,
            s => Some(s.parse::<SecType>().map_err(|e| e.to_string())?),
        };
        let series = match (w.bar_size, w.what_to_show) {
            (Some(bar_size), Some(what_to_show)) => Some(Series { bar_size, what_to_show }),
            (None, None) => None,
            _ => return Err(format!("entry {}: bar_size and what_to_show come together", w.id)),
        };
        let request = Request {
            dataset: w.dataset,
            symbol: w.symbol,
            con_id: w.con_id,
            sec_type,
            expiry: w.expiry,
            strike: w.strike,
            right: w.right,
            series,
            step_secs: w.step_secs,
            use_rth: w.use_rth,
            window: w.window,
            end_date_time: w.end_date_time,
            duration: w.duration,
            inputs: w.inputs,
        };
        Ok(Entry {
            id: w.id,
            request,
            requested_at: w.requested_at,
            completed_at: w.completed_at,
            final_through: w.final_through,
            outcome: w.outcome,
            partitions: w.partitions,
            reason: w.reason,
        })
    }
}

impl From<Entry> for EntryWire {
    fn from(e: Entry) -> Self {
        let r = e.request;
        EntryWire {
            id: e.id,
            dataset: r.dataset,
            symbol: r.symbol,
            con_id: r.con_id,
            sec_type: r.sec_type.map(|t| t.ib().to_string()).unwrap_or_default(),
            expiry: r.expiry,
            strike: r.strike,
            right: r.right,
            bar_size: r.series.map(|s| s.bar_size),
            what_to_show: r.series.map(|s| s.what_to_show),
            step_secs: r.step_secs,
            use_rth: r.use_rth,
            window: r.window,
            end_date_time: r.end_date_time,
            duration: r.duration,
            inputs: r.inputs,
            requested_at: e.requested_at,
            completed_at: e.completed_at,
            final_through: e.final_through,
            outcome: e.outcome,
            partitions: e.partitions,
            reason: e.reason,
        }
    }
}

impl Entry {
    /// A new entry with a fresh id; `final_through` is derived from the window and the request time.
    pub fn new(request: Request, requested_at: DateTime<Utc>, completed_at: DateTime<Utc>, outcome: Outcome) -> Self {
        let final_through = request.window.and_then(|w| final_through(w, requested_at));
        Entry {
            id: uuid::Uuid::new_v4().simple().to_string(),
            request,
            requested_at,
            completed_at,
            final_through,
            outcome,
            partitions: Vec::new(),
            reason: None,
        }
    }

    /// The trading dates this entry covers with a final answer, if any.
    pub fn covered(&self) -> Option<DateWindow> {
        if matches!(self.outcome, Outcome::Error { .. } | Outcome::Revoked { .. }) {
            return None;
        }
        let w = self.request.window?;
        let end = self.final_through?.min(w.end);
        (end >= w.start).then_some(DateWindow { start: w.start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn errors_cover_nothing() {
        let sym = Symbol::new("SPY").unwrap();
        let series = crate::domain::Series {
            bar_size: crate::domain::BarSize::Day1,
            what_to_show: crate::domain::WhatToShow::Trades,
        };
        let w = DateWindow::new(d("2024-01-02"), d("2024-01-31")).unwrap();
        let at = "2024-03-01T00:00:00Z".parse().unwrap();
        let req = Request::equity_bars(&sym, series, w);
        let err = Entry::new(req.clone(), at, at, Outcome::Error { code: 162, message: "x".into() });
        assert_eq!(err.covered(), None);
        assert_eq!(Entry::new(req, at, at, Outcome::Empty).covered(), Some(w));
    }
}
