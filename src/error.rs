//! The crate's one public error type: every variant is something a user can act on.
//!
//! Every message is fit to show: the texts that come from outside (user input, the storage
//! backend, polars, the gateway) are shown with their secrets redacted ([`redact`]), and an S3
//! answer is said in one line (status, S3's code, the request, what to do), never as S3's XML.

mod text;

use std::path::PathBuf;
pub use text::{describe, redact};

/// A text from outside shown with its secrets redacted.
struct Shown<'a>(&'a str);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(self.0))
    }
}

impl std::fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", redact(self.0))
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with the context needed to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument from the user (symbol, URL, bar size, date range…) is unusable. Nothing was changed.
    #[error("invalid {what} {:?}: {}", Shown(.input), Shown(.reason))]
    BadInput {
        /// What kind of input (e.g. "symbol", "lake URL").
        what: &'static str,
        /// The input as given.
        input: String,
        /// Why it was refused and what to do instead.
        reason: String,
    },
    /// The storage backend failed (file system or S3).
    #[error("storage error at {}: {}", Shown(.path), text::store_error(.source))]
    Storage {
        /// The object path inside the lake.
        path: String,
        /// The backend's error.
        #[source]
        source: object_store::Error,
    },
    /// A file in the lake cannot be read as what its place in the layout says it is.
    #[error("corrupt or foreign file {path}: {}", Shown(.reason))]
    Corrupt {
        /// The object path inside the lake.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The lake's contents contradict each other (e.g. a manifest entry whose partition is gone).
    #[error("integrity error: {}", Shown(.0))]
    Integrity(String),
    /// Rows refused before writing (e.g. high < low, NaN prices, duplicate keys in one batch).
    #[error("refused rows for {partition}: {reason}")]
    BadRows {
        /// The partition the rows were meant for.
        partition: String,
        /// What is wrong with them.
        reason: String,
    },
    /// A polars query failed.
    #[error("query failed: {}", text::summarize_store_text(&.0.to_string()))]
    Query(#[from] polars::error::PolarsError),
    /// Arrow or Parquet encoding failed.
    #[error("parquet error in {path}: {}", Shown(.reason))]
    Parquet {
        /// The object path inside the lake.
        path: String,
        /// The encoder's message.
        reason: String,
    },
    /// A local I/O failure outside the object store (lock files, temporary files).
    #[error("I/O error at {path}: {source}")]
    Io {
        /// The local path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Option data was asked for before what it depends on exists (contracts, a fresh chain
    /// snapshot, a recent spot). Counted as a dependency violation and alerted as CRITICAL.
    #[error("prerequisites missing for option bars of {symbol}: {}; run `twslake setup {symbol}` (it fulfils them in order)", missing.join("; "))]
    Prerequisite {
        /// The underlying.
        symbol: String,
        /// What is missing, one item each.
        missing: Vec<String>,
    },
    /// The gateway failed a request in a way retries did not fix.
    #[error("the gateway failed {what}: IB error {code}: {}", Shown(.message))]
    Gateway {
        /// What was asked.
        what: String,
        /// IB's code (0 for a client-side failure: a timeout, a dropped connection).
        code: i32,
        /// What the error means ([`ErrorClass`]).
        class: ErrorClass,
        /// IB's text, or the client's description.
        message: String,
    },
    /// Another writer kept winning a conditional write for too long.
    #[error("gave up writing {path} after {attempts} conflicting attempts; retry the run")]
    Contention {
        /// The object path inside the lake.
        path: String,
        /// How many times the write was tried.
        attempts: u32,
    },
}

impl Error {
    /// A [`Error::BadInput`] for `what`.
    pub fn bad_input(what: &'static str, input: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::BadInput { what, input: input.into(), reason: reason.into() }
    }

    pub(crate) fn storage(path: impl ToString, source: object_store::Error) -> Self {
        Error::Storage { path: path.to_string(), source }
    }

    pub(crate) fn parquet(path: impl ToString, e: impl std::fmt::Display) -> Self {
        Error::Parquet { path: path.to_string(), reason: e.to_string() }
    }
}

/// What to do about an error from the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Transient: retry the same request after a backoff.
    Retry,
    /// A pacing violation: wait for the pacing window, then retry.
    Pacing,
    /// A final answer with no data: record it as empty, never ask again.
    NoData,
    /// No market-data subscription for this instrument: nothing to retry until the account changes.
    NotSubscribed,
    /// The contract does not exist (unknown symbol, expired option): fail the instrument.
    NoSecurityDefinition,
    /// The connection to IB is lost: reconnect, then retry.
    Connectivity,
    /// The request is wrong (bad parameters): fail it, do not retry.
    Fatal,
}
