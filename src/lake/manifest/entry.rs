//! One manifest entry: what was asked, how it was answered, where its rows went, and the flat
//! JSON object it is stored as.

use crate::datasets::Dataset;
use crate::domain::window::final_through;
use crate::domain::{DateWindow, Symbol};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// What was asked of the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The dataset the answer goes to.
    pub dataset: Dataset,
    /// The symbol (the underlying, for options).
    pub symbol: String,
    /// The contract id, when the request was for one contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub con_id: Option<i64>,
    /// `STK`, `OPT`…
    pub sec_type: String,
    /// Option expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<NaiveDate>,
    /// Option strike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strike: Option<f64>,
    /// Option right (`C`/`P`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub right: Option<String>,
    /// IB's bar size, for historical bars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bar_size: Option<String>,
    /// IB's what-to-show, for historical bars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what_to_show: Option<String>,
    /// Regular trading hours only.
    #[serde(default)]
    pub use_rth: bool,
    /// The trading dates the request covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<DateWindow>,
    /// The end date-time as sent to IB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<String>,
    /// The duration as sent to IB (e.g. `"1 Y"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// For a derived dataset (`surfaces`): a digest of the request ids of the partitions it was
    /// computed from. When the inputs change, the digest does, and the window is due again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
}

impl Request {
    /// A request of `dataset` for `symbol` with nothing else set (no contract, series or window).
    pub fn new(dataset: Dataset, symbol: &Symbol, sec_type: &str) -> Self {
        Request {
            dataset,
            symbol: symbol.to_string(),
            con_id: None,
            sec_type: sec_type.into(),
            expiry: None,
            strike: None,
            right: None,
            bar_size: None,
            what_to_show: None,
            use_rth: false,
            window: None,
            end_date_time: None,
            duration: None,
            inputs: None,
        }
    }

    /// A historical-bars request for a symbol's equity series over `window`.
    pub fn equity_bars(symbol: &Symbol, series: crate::domain::Series, window: DateWindow) -> Self {
        Request {
            bar_size: Some(series.bar_size.ib().into()),
            what_to_show: Some(series.what_to_show.ib().into()),
            use_rth: true,
            window: Some(window),
            ..Request::new(Dataset::EquityBars, symbol, "STK")
        }
    }

    /// The key under which coverage is counted.
    pub fn series_key(&self) -> SeriesKey {
        SeriesKey {
            dataset: self.dataset,
            con_id: self.con_id,
            bar_size: self.bar_size.clone(),
            what_to_show: self.what_to_show.clone(),
        }
    }
}

/// Identifies one series whose coverage is tracked (symbol aside: manifests are per symbol).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SeriesKey {
    /// Dataset.
    pub dataset: Dataset,
    /// Contract id (option bars), or `None` for the symbol's own series.
    pub con_id: Option<i64>,
    /// Bar size, IB's spelling.
    pub bar_size: Option<String>,
    /// What-to-show.
    pub what_to_show: Option<String>,
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
#[serde(from = "EntryWire", into = "EntryWire")]
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
}

/// The flat JSON form of an [`Entry`].
#[derive(Serialize, Deserialize)]
struct EntryWire {
    id: String,
    dataset: Dataset,
    symbol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    con_id: Option<i64>,
    sec_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expiry: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strike: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    right: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bar_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    what_to_show: Option<String>,
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
}

impl From<EntryWire> for Entry {
    fn from(w: EntryWire) -> Self {
        let request = Request {
            dataset: w.dataset,
            symbol: w.symbol,
            con_id: w.con_id,
            sec_type: w.sec_type,
            expiry: w.expiry,
            strike: w.strike,
            right: w.right,
            bar_size: w.bar_size,
            what_to_show: w.what_to_show,
            use_rth: w.use_rth,
            window: w.window,
            end_date_time: w.end_date_time,
            duration: w.duration,
            inputs: w.inputs,
        };
        Entry {
            id: w.id,
            request,
            requested_at: w.requested_at,
            completed_at: w.completed_at,
            final_through: w.final_through,
            outcome: w.outcome,
            partitions: w.partitions,
        }
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
            sec_type: r.sec_type,
            expiry: r.expiry,
            strike: r.strike,
            right: r.right,
            bar_size: r.bar_size,
            what_to_show: r.what_to_show,
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
