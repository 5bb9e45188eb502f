//! The market-data source: the requests the ingester makes, as twslake's own types, and their
//! implementation on IB's TWS API ([`ib::IbSource`], the only place `ibapi` types appear).
//! Also the request planner ([`plan`]) and the pacing scheduler ([`pacing`]).

pub mod errors;
pub mod ib;
pub mod pacing;
pub mod plan;

use crate::datasets::contracts::Contract;
use crate::lake::layout::{Series, Symbol};
use chrono::{DateTime, NaiveDate, Utc};
use errors::ErrorClass;
use std::fmt;
use std::future::Future;

/// Stock or option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum SecType {
    /// A stock or ETF (`STK`).
    Stock,
    /// An equity option (`OPT`).
    Option,
}

impl SecType {
    /// IB's spelling.
    pub fn ib(self) -> &'static str {
        match self {
            SecType::Stock => "STK",
            SecType::Option => "OPT",
        }
    }
}

/// A contract-details query.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractQuery {
    /// Symbol (the underlying's, for options).
    pub symbol: Symbol,
    /// Stock or option.
    pub sec_type: SecType,
    /// For options: one expiry (all strikes and rights of it are returned).
    pub expiry: Option<NaiveDate>,
}

/// The contract a historical request is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Instrument {
    /// IB's contract id (requests go by id, on SMART).
    pub con_id: i64,
    /// The symbol (the underlying's, for options).
    pub symbol: Symbol,
    /// Stock or option.
    pub sec_type: SecType,
}

/// One exchange's listed expiries and strikes (IB's sec-def option parameters).
#[derive(Debug, Clone, PartialEq)]
pub struct ChainParams {
    /// The exchange.
    pub exchange: String,
    /// The underlying's con_id.
    pub underlying_con_id: i64,
    /// Trading class.
    pub trading_class: String,
    /// Multiplier.
    pub multiplier: f64,
    /// Listed expiries.
    pub expirations: Vec<NaiveDate>,
    /// Listed strikes.
    pub strikes: Vec<f64>,
}

/// An IB duration (`N S`, `N D`, `N W`, `N M`, `N Y`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IbDuration {
    /// Seconds.
    Seconds(u32),
    /// Sessions.
    Days(u32),
    /// Weeks.
    Weeks(u32),
    /// Months.
    Months(u32),
    /// Years.
    Years(u32),
}

impl fmt::Display for IbDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IbDuration::Seconds(n) => write!(f, "{n} S"),
            IbDuration::Days(n) => write!(f, "{n} D"),
            IbDuration::Weeks(n) => write!(f, "{n} W"),
            IbDuration::Months(n) => write!(f, "{n} M"),
            IbDuration::Years(n) => write!(f, "{n} Y"),
        }
    }
}

/// A historical-bars request.
#[derive(Debug, Clone, PartialEq)]
pub struct HistRequest {
    /// The contract.
    pub instrument: Instrument,
    /// Bar size and what-to-show.
    pub series: Series,
    /// How far back from `end`.
    pub duration: IbDuration,
    /// The end of the window (a session's close).
    pub end: DateTime<Utc>,
    /// Regular trading hours only.
    pub use_rth: bool,
}

impl HistRequest {
    /// The end as sent to IB: `YYYYMMDD-HH:MM:SS` in UTC.
    pub fn end_string(&self) -> String {
        self.end.format("%Y%m%d-%H:%M:%S").to_string()
    }
}

/// One bar as received.
#[derive(Debug, Clone, PartialEq)]
pub struct RawBar {
    /// Bar start (UTC); daily and longer bars start at their session's open.
    pub ts: DateTime<Utc>,
    /// Trading date.
    pub date: NaiveDate,
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
    /// Volume (TRADES only).
    pub volume: Option<f64>,
    /// VWAP (TRADES only).
    pub wap: Option<f64>,
    /// Trade count (TRADES only).
    pub count: Option<i64>,
}

/// An error from the source, classified.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("IB error {code}: {message}")]
pub struct SourceError {
    /// IB's code (0 for client-side failures such as a timeout or a dropped connection).
    pub code: i32,
    /// IB's text or the client's description.
    pub message: String,
    /// What to do about it.
    pub class: ErrorClass,
}

impl SourceError {
    /// An error from IB's code and text.
    pub fn ib(code: i32, message: impl Into<String>) -> Self {
        let message = message.into();
        SourceError { class: errors::classify(code, &message), code, message }
    }

    /// A client-side failure of the given class.
    pub fn client(class: ErrorClass, message: impl Into<String>) -> Self {
        SourceError { code: 0, message: message.into(), class }
    }
}

/// What the ingester asks of a market-data source. Implemented on IB by [`ib::IbSource`].
pub trait MarketData: Send + Sync {
    /// Contract descriptions matching a query (all strikes and rights of an option expiry).
    fn contract_details(&self, q: &ContractQuery) -> impl Future<Output = Result<Vec<Contract>, SourceError>> + Send;
    /// The current option chain: one entry per exchange.
    fn option_chain(
        &self,
        symbol: &Symbol,
        underlying_con_id: i64,
    ) -> impl Future<Output = Result<Vec<ChainParams>, SourceError>> + Send;
    /// The earliest instant IB has data for.
    fn head_timestamp(
        &self,
        instrument: &Instrument,
        series: Series,
    ) -> impl Future<Output = Result<DateTime<Utc>, SourceError>> + Send;
    /// Historical bars.
    fn historical_bars(&self, req: &HistRequest) -> impl Future<Output = Result<Vec<RawBar>, SourceError>> + Send;
}
