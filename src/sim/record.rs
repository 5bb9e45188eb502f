//! The record of every request the simulator receives, kept in memory and optionally appended to
//! a JSON-lines file (`--request-log`).

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::proto::Contract;

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Answered with this many rows (bars, contracts, chain messages, ticks).
    Ok {
        /// Rows sent.
        rows: usize,
    },
    /// Answered with no rows.
    Empty,
    /// Refused with this IB error code.
    Error {
        /// IB's code.
        code: i32,
    },
    /// Left unanswered by a stall fault.
    Stalled,
    /// A cancel, or a message that needs no answer.
    Accepted,
}

/// One request as received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    /// When the simulator received it (wall clock).
    pub time: DateTime<Utc>,
    /// The client's id.
    pub client_id: i32,
    /// The request id, if the message has one.
    pub request_id: Option<i32>,
    /// `contract_details`, `option_chain`, `historical_data`, `head_timestamp`, `market_data`,
    /// `market_data_type`, `cancel_…`, `current_time` or `unsupported`.
    pub kind: String,
    /// Symbol.
    pub symbol: Option<String>,
    /// Security type.
    pub sec_type: Option<String>,
    /// Expiry (`YYYYMMDD`).
    pub expiry: Option<String>,
    /// Strike.
    pub strike: Option<f64>,
    /// `C` or `P`.
    pub right: Option<String>,
    /// Contract id.
    pub con_id: Option<i32>,
    /// Bar size.
    pub bar_size: Option<String>,
    /// Duration.
    pub duration: Option<String>,
    /// End date/time as sent.
    pub end: Option<String>,
    /// What to show.
    pub what_to_show: Option<String>,
    /// The outcome.
    pub outcome: Outcome,
    /// The pacing rule the request broke, when it was refused for pacing (IB answers 162 for
    /// this and for "no data" alike; tests and the request log tell them apart by this).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation: Option<String>,
}

impl RequestRecord {
    /// A record of `kind` from `client_id` with no contract yet and outcome `Accepted`.
    pub fn new(client_id: i32, request_id: Option<i32>, kind: &str) -> Self {
        RequestRecord {
            time: Utc::now(),
            client_id,
            request_id,
            kind: kind.into(),
            symbol: None,
            sec_type: None,
            expiry: None,
            strike: None,
            right: None,
            con_id: None,
            bar_size: None,
            duration: None,
            end: None,
            what_to_show: None,
            outcome: Outcome::Accepted,
            violation: None,
        }
    }

    /// Copies the contract's identifying fields.
    pub fn with_contract(mut self, c: Option<&Contract>) -> Self {
        if let Some(c) = c {
            self.symbol = c.symbol.clone();
            self.sec_type = c.sec_type.clone();
            self.expiry = c.last_trade_date_or_contract_month.clone().filter(|s| !s.is_empty());
            self.strike = c.strike.filter(|s| *s != 0.0);
            self.right = c.right.clone().filter(|s| !s.is_empty());
            self.con_id = c.con_id.filter(|c| *c != 0);
        }
        self
    }
}

/// Records kept in memory; older ones remain only in the `--request-log` file, so a gateway
/// left running for days does not grow without bound.
pub const MEMORY_RECORDS: usize = 100_000;

/// The request journal.
#[derive(Debug, Default)]
pub struct Journal {
    records: Mutex<std::collections::VecDeque<RequestRecord>>,
    total: std::sync::atomic::AtomicUsize,
    file: Mutex<Option<std::fs::File>>,
}

impl Journal {
    /// A journal that also appends to `path`.
    pub fn with_file(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Journal { file: Mutex::new(Some(file)), ..Journal::default() })
    }

    /// Appends one record.
    pub fn push(&self, record: RequestRecord) {
        if let Some(f) = self.file.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            if let Ok(line) = serde_json::to_string(&record) {
                // The log is best effort: a full disk must not take the gateway down.
                let _ = writeln!(f, "{line}");
            }
        }
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() == MEMORY_RECORDS {
            records.pop_front();
        }
        records.push_back(record);
        self.total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Number of requests received since start.
    pub fn len(&self) -> usize {
        self.total.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether no request was received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the records in memory (the last [`MEMORY_RECORDS`]).
    pub fn all(&self) -> Vec<RequestRecord> {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }
}
