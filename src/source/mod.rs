//! The market-data source: the requests the ingester makes, as twslake's own types, and their
//! implementation on IB's TWS API ([`ib::IbSource`], the only place `ibapi` types appear).
//! Also the request planner ([`plan`]), the pacing scheduler ([`pacing`]) and the gateway's
//! liveness ([`health`]: what tells a request left hanging from a gateway that stopped answering).

pub mod errors;
pub mod health;
pub mod ib;
pub mod pacing;
pub mod plan;

pub use crate::datasets::chains::ChainParams;
use crate::datasets::contracts::Contract;
pub use crate::datasets::equity_bars::RawBar;
use crate::domain::{Right, SecType};
use crate::domain::{Series, Symbol};
use chrono::{DateTime, NaiveDate, Utc};
use errors::ErrorClass;
use std::fmt;
use std::future::Future;

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

/// An error from the source, classified. It reads `IB error CODE: TEXT` for IB's errors and the
/// client's description alone for client-side failures (code 0).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", describe(*.code, .message))]
pub struct SourceError {
    /// IB's code (0 for client-side failures such as a timeout or a dropped connection).
    pub code: i32,
    /// IB's text or the client's description.
    pub message: String,
    /// What to do about it.
    pub class: ErrorClass,
}

fn describe(code: i32, message: &str) -> String {
    if code == 0 {
        message.to_string()
    } else {
        format!("IB error {code}: {message}")
    }
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
    /// Subscribes to a contract's streaming quotes (level 1 and option computations); dropping
    /// the stream cancels the subscription.
    fn stream_quotes(&self, contract: &StreamContract) -> impl Future<Output = Result<TickStream, SourceError>> + Send;
    /// The gateway's request-less notices from now on (connectivity lost and restored).
    fn notices(&self) -> Result<NoticeStream, SourceError>;
    /// Whether the gateway answers at all right now, asked within a few seconds (a heartbeat;
    /// a source that cannot tell says yes).
    fn alive(&self) -> impl Future<Output = bool> + Send {
        async { true }
    }
}

/// A contract whose market data is streamed (options are addressed by `con_id`; the rest is
/// carried for the gateway's convenience and for the rows written).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamContract {
    /// IB's contract id.
    pub con_id: i64,
    /// The symbol (the underlying's, for options).
    pub symbol: Symbol,
    /// Stock or option.
    pub sec_type: SecType,
    /// Option expiry.
    pub expiry: Option<NaiveDate>,
    /// Option strike.
    pub strike: Option<f64>,
    /// Option right.
    pub right: Option<Right>,
}

impl StreamContract {
    /// The underlying's own stock contract.
    pub fn stock(con_id: i64, symbol: &Symbol) -> Self {
        StreamContract {
            con_id,
            symbol: symbol.clone(),
            sec_type: SecType::Stock,
            expiry: None,
            strike: None,
            right: None,
        }
    }

    /// An option on `underlying`, as stored with its bars.
    pub fn option(underlying: &Symbol, c: &crate::datasets::option_bars::OptionContract) -> Self {
        StreamContract {
            con_id: c.con_id,
            symbol: underlying.clone(),
            sec_type: SecType::Option,
            expiry: Some(c.expiry),
            strike: Some(c.strike),
            right: Some(c.right),
        }
    }
}

/// Which side a price or size tick is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The best bid.
    Bid,
    /// The best ask.
    Ask,
    /// The last trade.
    Last,
}

/// What an option computation was computed from (IB's tick types 10–13 and their delayed twins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComputationKind {
    /// From the bid.
    Bid,
    /// From the ask.
    Ask,
    /// From the last trade.
    Last,
    /// IB's model.
    Model,
}

/// An option computation; every field IB marks "not computed" (−1 or −2) is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Computation {
    /// Implied volatility.
    pub implied_vol: Option<f64>,
    /// Option price the computation used.
    pub option_price: Option<f64>,
    /// Delta.
    pub delta: Option<f64>,
    /// Gamma.
    pub gamma: Option<f64>,
    /// Vega.
    pub vega: Option<f64>,
    /// Theta.
    pub theta: Option<f64>,
    /// The underlying's price used.
    pub underlying_price: Option<f64>,
}

/// One streamed market-data event, as twslake's own type.
#[derive(Debug, Clone, PartialEq)]
pub enum Tick {
    /// A price of one side (`None`: IB's −1, no price).
    Price {
        /// Bid, ask or last.
        side: Side,
        /// The price.
        price: Option<f64>,
    },
    /// A size of one side.
    Size {
        /// Bid, ask or last.
        side: Side,
        /// The size.
        size: Option<f64>,
    },
    /// An option computation.
    Computation {
        /// What it was computed from.
        kind: ComputationKind,
        /// The values.
        values: Computation,
    },
}

/// A notice of the gateway not tied to a request (1100 connectivity lost, 1101/1102 restored,
/// 2104 farm OK…).
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayNotice {
    /// IB's code.
    pub code: i32,
    /// IB's text.
    pub message: String,
}

/// The gateway's request-less notices, as they come.
pub type NoticeStream = futures::stream::BoxStream<'static, GatewayNotice>;

/// A stream of ticks of one subscription; it ends (or yields an error) when the connection is lost.
pub type TickStream = futures::stream::BoxStream<'static, Result<Tick, SourceError>>;
