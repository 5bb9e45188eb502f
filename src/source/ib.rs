//! The market-data source on IB's TWS API through the `ibapi` crate. Every `ibapi` type stays in
//! this file: requests go in as twslake's types and answers come out as twslake's types.

use super::errors::ErrorClass;
use super::health::Health;
use super::{
    ChainParams, Computation, ComputationKind, ContractQuery, GatewayNotice, HistRequest, IbDuration, Instrument,
    MarketData, NoticeStream, RawBar, Side, SourceError, StreamContract, Tick, TickStream,
};
use crate::calendar;
use crate::datasets::contracts::Contract;
use crate::domain::{BarSize, Right, SecType, Series, Symbol, WhatToShow};
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use ibapi::contracts::tick_types::TickType;
use ibapi::contracts::{Contract as IbContract, Currency, Exchange, OptionRight, SecurityType};
use ibapi::market_data::historical as hist;
use ibapi::market_data::TradingHours;
use ibapi::subscriptions::SubscriptionItem;
use ibapi::Client;
use std::time::Duration;

/// How to reach the gateway.
#[derive(Debug, Clone)]
pub struct IbConfig {
    /// `HOST:PORT` of TWS or IB Gateway.
    pub gateway: String,
    /// The API client id (each connection needs its own).
    pub client_id: i32,
    /// Limit on every one-shot request (ibapi waits forever without one).
    pub timeout: Duration,
}

/// A connected IB source.
pub struct IbSource {
    client: Client,
    timeout: Duration,
    health: Health,
}

fn to_source_error(e: ibapi::Error) -> SourceError {
    match e {
        ibapi::Error::Notice(n) => SourceError::ib(n.code, n.message),
        ibapi::Error::Timeout => SourceError::client(ErrorClass::Retry, "the gateway did not answer in time"),
        ibapi::Error::ConnectionReset
        | ibapi::Error::ConnectionFailed
        | ibapi::Error::Shutdown
        | ibapi::Error::Io(_) => {
            SourceError::client(ErrorClass::Connectivity, format!("connection to the gateway lost: {e}"))
        }
        ibapi::Error::ClientIdInUse { client_id } => SourceError::client(
            ErrorClass::Fatal,
            format!("client id {client_id} is in use by another connection; pass another --client-id"),
        ),
        other => SourceError::client(ErrorClass::Retry, other.to_string()),
    }
}

/// The error of a connection whose handshake did not end within `timeout`.
fn handshake_timeout(gateway: &str, timeout: Duration) -> SourceError {
    SourceError::client(
        ErrorClass::Retry,
        format!(
            "the gateway at {gateway} did not complete the API handshake within {} s (the connection was accepted but not answered, \
             or not accepted at all); IB Gateway does this while it restarts or waits for a login: check that TWS or IB Gateway \
             is running and logged in with the API enabled, then run again (--timeout sets the wait)",
            timeout.as_secs_f64()
        ),
    )
}

impl IbSource {
    /// Connects to the gateway. Every step has a deadline: the TCP connection, the handshake and
    /// the start of the API session end within `cfg.timeout` together, or the connect fails with
    /// an error of class [`ErrorClass::Retry`] naming the gateway (`ibapi`'s connect is async
    /// and waits forever on a peer that accepts and never answers, so the whole future is timed
    /// and dropped).
    pub async fn connect(cfg: &IbConfig) -> Result<Self, SourceError> {
        let connecting = Client::builder()
            .address(&cfg.gateway)
            .client_id(cfg.client_id)
            .one_shot_timeout(cfg.timeout)
            .max_reconnect_attempts(5)
            .connect();
        let client = tokio::time::timeout(cfg.timeout, connecting)
            .await
            .map_err(|_| handshake_timeout(&cfg.gateway, cfg.timeout))?
            .map_err(|e| match to_source_error(e) {
                err if err.class == ErrorClass::Fatal => err,
                err => SourceError::client(
                    ErrorClass::Connectivity,
                    format!("cannot connect to the gateway at {}: {}; is TWS or IB Gateway running with the API enabled? (twslake demo runs a simulated one)", cfg.gateway, err.message),
                ),
            })?;
        Ok(IbSource { client, timeout: cfg.timeout, health: Health::new(&cfg.gateway, cfg.timeout) })
    }

    /// Resolves once the gateway is declared silent (see [`Health`]): a command races its run
    /// against it and ends at once, instead of failing every remaining request one by one.
    pub fn silenced(&self) -> impl std::future::Future<Output = SourceError> + Send + 'static {
        self.health.silenced()
    }

    /// Asks the gateway's clock: any live gateway answers at once.
    async fn probe(&self) -> bool {
        !matches!(
            self.client.server_time().await,
            Err(ibapi::Error::Timeout
                | ibapi::Error::ConnectionReset
                | ibapi::Error::ConnectionFailed
                | ibapi::Error::Shutdown
                | ibapi::Error::Io(_))
        )
    }

    /// One request with its deadline: the timeout, then (unanswered) the probe that tells a
    /// request IB left hanging from a gateway that answers nothing any more.
    async fn timed<T>(&self, f: impl std::future::Future<Output = Result<T, ibapi::Error>>) -> Result<T, SourceError> {
        self.health.check(|| self.probe()).await?;
        let sent = std::time::Instant::now();
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Err(ibapi::Error::Timeout)) | Err(_) => Err(self.health.unanswered(sent, || self.probe()).await),
            Ok(r) => {
                self.health.answered();
                r.map_err(to_source_error)
            }
        }
    }
}

fn ib_contract(symbol: &Symbol, sec_type: SecType) -> IbContract {
    IbContract {
        symbol: symbol.as_str().into(),
        security_type: match sec_type {
            SecType::Stock => SecurityType::Stock,
            SecType::Option => SecurityType::Option,
        },
        exchange: Exchange::from("SMART"),
        currency: Currency::from("USD"),
        ..Default::default()
    }
}

fn parse_ymd(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..8)?, "%Y%m%d").ok()
}

fn from_details(d: ibapi::contracts::ContractDetails, fetched_at: DateTime<Utc>) -> Contract {
    let c = d.contract;
    let opt = |s: String| Some(s).filter(|s| !s.is_empty());
    let is_option = c.security_type == SecurityType::Option;
    Contract {
        con_id: c.contract_id as i64,
        sec_type: if is_option { SecType::Option } else { SecType::Stock },
        exchange: c.exchange.to_string(),
        primary_exchange: opt(c.primary_exchange.to_string()),
        currency: c.currency.to_string(),
        local_symbol: opt(c.local_symbol),
        trading_class: opt(c.trading_class),
        multiplier: c.multiplier.parse().ok(),
        min_tick: Some(d.min_tick).filter(|t| *t > 0.0),
        expiry: if is_option { parse_ymd(&c.last_trade_date_or_contract_month) } else { None },
        strike: Some(c.strike).filter(|_| is_option),
        right: c.right.map(|r| if r == OptionRight::Call { Right::Call } else { Right::Put }),
        time_zone: opt(d.time_zone_id),
        trading_hours: opt(d.trading_hours.join(";")),
        liquid_hours: opt(d.liquid_hours.join(";")),
        fetched_at,
        exercise_style: None, // decided by the ingest job from the trading class
    }
}

fn bar_size(b: BarSize) -> hist::BarSize {
    use hist::BarSize as B;
    match b {
        BarSize::Sec1 => B::Sec,
        BarSize::Sec5 => B::Sec5,
        BarSize::Sec10 => B::Sec10,
        BarSize::Sec15 => B::Sec15,
        BarSize::Sec30 => B::Sec30,
        BarSize::Min1 => B::Min,
        BarSize::Min2 => B::Min2,
        BarSize::Min3 => B::Min3,
        BarSize::Min5 => B::Min5,
        BarSize::Min10 => B::Min10,
        BarSize::Min15 => B::Min15,
        BarSize::Min20 => B::Min20,
        BarSize::Min30 => B::Min30,
        BarSize::Hour1 => B::Hour,
        BarSize::Hour2 => B::Hour2,
        BarSize::Hour3 => B::Hour3,
        BarSize::Hour4 => B::Hour4,
        BarSize::Hour8 => B::Hour8,
        BarSize::Day1 => B::Day,
        BarSize::Week1 => B::Week,
        BarSize::Month1 => B::Month,
    }
}

fn what(w: WhatToShow) -> hist::WhatToShow {
    match w {
        WhatToShow::Trades => hist::WhatToShow::Trades,
        WhatToShow::Midpoint => hist::WhatToShow::MidPoint,
        WhatToShow::Bid => hist::WhatToShow::Bid,
        WhatToShow::Ask => hist::WhatToShow::Ask,
        WhatToShow::BidAsk => hist::WhatToShow::BidAsk,
        WhatToShow::AdjustedLast => hist::WhatToShow::AdjustedLast,
    }
}

fn duration(d: IbDuration) -> hist::Duration {
    let n = |v: u32| v.min(i32::MAX as u32) as i32;
    match d {
        IbDuration::Seconds(v) => hist::Duration::seconds(n(v)),
        IbDuration::Days(v) => hist::Duration::days(n(v)),
        IbDuration::Weeks(v) => hist::Duration::weeks(n(v)),
        IbDuration::Months(v) => hist::Duration::months(n(v)),
        IbDuration::Years(v) => hist::Duration::years(n(v)),
    }
}

fn utc(t: time::OffsetDateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond()).unwrap_or_default()
}

fn odt(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// A bar from IB: daily and longer bars carry a date and start at that session's open; intraday
/// bars carry an instant. IB sends −1 for volume, WAP and count of quote bars (MIDPOINT, BID,
/// ASK, BID_ASK); TRADES and ADJUSTED_LAST bars (trades, back-adjusted prices) carry them.
fn raw_bar(b: &hist::Bar, series: Series) -> RawBar {
    let (ts, date) = match b.date {
        hist::BarTimestamp::Date(d) => {
            let date = NaiveDate::from_ymd_opt(d.year(), d.month() as u32, d.day() as u32).unwrap_or_default();
            let ts = calendar::session(date)
                .map(|s| s.open)
                .unwrap_or_else(|| date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
            (ts, date)
        }
        hist::BarTimestamp::DateTime(t) => {
            let ts = utc(t);
            (ts, calendar::trading_date(ts))
        }
    };
    let trades = matches!(series.what_to_show, WhatToShow::Trades | WhatToShow::AdjustedLast);
    RawBar {
        ts,
        date,
        open: b.open,
        high: b.high,
        low: b.low,
        close: b.close,
        volume: Some(b.volume).filter(|v| trades && *v >= 0.0),
        wap: Some(b.wap).filter(|v| trades && *v > 0.0),
        count: Some(b.count as i64).filter(|c| trades && *c >= 0),
    }
}

fn side_of(t: &TickType) -> Option<Side> {
    use TickType as T;
    match t {
        T::Bid | T::DelayedBid => Some(Side::Bid),
        T::Ask | T::DelayedAsk => Some(Side::Ask),
        T::Last | T::DelayedLast => Some(Side::Last),
        _ => None,
    }
}

fn size_side_of(t: &TickType) -> Option<Side> {
    use TickType as T;
    match t {
        T::BidSize | T::DelayedBidSize => Some(Side::Bid),
        T::AskSize | T::DelayedAskSize => Some(Side::Ask),
        T::LastSize | T::DelayedLastSize => Some(Side::Last),
        _ => None,
    }
}

fn computation_kind(t: &TickType) -> Option<ComputationKind> {
    use TickType as T;
    match t {
        T::BidOption | T::DelayedBidOption => Some(ComputationKind::Bid),
        T::AskOption | T::DelayedAskOption => Some(ComputationKind::Ask),
        T::LastOption | T::DelayedLastOption => Some(ComputationKind::Last),
        T::ModelOption | T::DelayedModelOption => Some(ComputationKind::Model),
        _ => None,
    }
}

/// IB's "no value": −1 for prices and sizes, −2 for greeks (ibapi already maps most of them).
fn price_value(v: f64) -> Option<f64> {
    Some(v).filter(|v| *v >= 0.0 && v.is_finite())
}

fn greek(v: Option<f64>) -> Option<f64> {
    v.filter(|v| *v != -2.0 && v.is_finite())
}

/// The ticks twslake keeps of one ibapi event (a price-size pair gives two).
fn ticks_of(t: ibapi::market_data::realtime::TickTypes) -> Vec<Tick> {
    use ibapi::market_data::realtime::TickTypes as T;
    let price = |tt: &TickType, p: f64| side_of(tt).map(|side| Tick::Price { side, price: price_value(p) });
    let size = |tt: &TickType, s: f64| size_side_of(tt).map(|side| Tick::Size { side, size: price_value(s) });
    match t {
        T::Price(p) => price(&p.tick_type, p.price).into_iter().collect(),
        T::Size(s) => size(&s.tick_type, s.size).into_iter().collect(),
        T::PriceSize(p) => {
            price(&p.price_tick_type, p.price).into_iter().chain(size(&p.size_tick_type, p.size)).collect()
        }
        T::OptionComputation(c) => computation_kind(&c.field)
            .map(|kind| Tick::Computation {
                kind,
                values: Computation {
                    implied_vol: c.implied_volatility.and_then(price_value),
                    option_price: c.option_price.and_then(price_value),
                    delta: greek(c.delta),
                    gamma: greek(c.gamma),
                    vega: greek(c.vega),
                    theta: greek(c.theta),
                    underlying_price: c.underlying_price.and_then(price_value),
                },
            })
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

impl MarketData for IbSource {
    fn notices(&self) -> Result<NoticeStream, SourceError> {
        let ns = self.client.notice_stream().map_err(to_source_error)?;
        let notices = futures::stream::unfold(ns, |mut ns| async move {
            let n = ns.next().await?;
            Some((GatewayNotice { code: n.code, message: n.message }, ns))
        });
        Ok(notices.boxed())
    }

    async fn alive(&self) -> bool {
        self.health.heartbeat(|| self.probe()).await
    }

    async fn stream_quotes(&self, contract: &StreamContract) -> Result<TickStream, SourceError> {
        let mut c = ib_contract(&contract.symbol, contract.sec_type);
        c.contract_id = contract.con_id as i32;
        if let Some(e) = contract.expiry {
            c.last_trade_date_or_contract_month = e.format("%Y%m%d").to_string();
        }
        if let Some(k) = contract.strike {
            c.strike = k;
        }
        c.right = contract.right.map(|r| match r {
            Right::Call => OptionRight::Call,
            Right::Put => OptionRight::Put,
        });
        let sub = self.timed(self.client.market_data(&c).subscribe()).await?;
        let ticks = sub
            .map(|item| match item {
                Ok(SubscriptionItem::Data(t)) => Ok(ticks_of(t)),
                Ok(SubscriptionItem::Notice(_)) => Ok(Vec::new()),
                Err(e) => Err(to_source_error(e)),
            })
            .flat_map(|r| {
                futures::stream::iter(match r {
                    Ok(ts) => ts.into_iter().map(Ok).collect::<Vec<_>>(),
                    Err(e) => vec![Err(e)],
                })
            });
        Ok(ticks.boxed())
    }

    async fn contract_details(&self, q: &ContractQuery) -> Result<Vec<Contract>, SourceError> {
        let mut c = ib_contract(&q.symbol, q.sec_type);
        if let Some(e) = q.expiry {
            c.last_trade_date_or_contract_month = e.format("%Y%m%d").to_string();
        }
        let details = self.timed(self.client.contract_details(&c)).await?;
        let now = Utc::now();
        Ok(details.into_iter().map(|d| from_details(d, now)).collect())
    }

    async fn option_chain(&self, symbol: &Symbol, underlying_con_id: i64) -> Result<Vec<ChainParams>, SourceError> {
        let fetch = async {
            let mut sub = self
                .client
                .option_chain(symbol.as_str(), SecurityType::Stock, underlying_con_id as i32)
                .subscribe()
                .await?;
            let mut out = Vec::new();
            while let Some(item) = sub.next().await {
                match item? {
                    SubscriptionItem::Data(c) => out.push(c),
                    SubscriptionItem::Notice(_) => {}
                }
            }
            Ok(out)
        };
        let chains: Vec<ibapi::contracts::OptionChain> = self.timed(fetch).await?;
        Ok(chains
            .into_iter()
            .map(|c| ChainParams {
                exchange: c.exchange,
                underlying_con_id: c.underlying_contract_id as i64,
                trading_class: c.trading_class,
                multiplier: c.multiplier.parse().unwrap_or(100.0),
                expirations: c.expirations.iter().filter_map(|e| parse_ymd(e)).collect(),
                strikes: c.strikes,
            })
            .collect())
    }

    async fn head_timestamp(&self, instrument: &Instrument, series: Series) -> Result<DateTime<Utc>, SourceError> {
        let mut c = ib_contract(&instrument.symbol, instrument.sec_type);
        c.contract_id = instrument.con_id as i32;
        let t = self.timed(self.client.head_timestamp(&c, what(series.what_to_show), TradingHours::Regular)).await?;
        Ok(utc(t))
    }

    async fn historical_bars(&self, req: &HistRequest) -> Result<Vec<RawBar>, SourceError> {
        let mut c = ib_contract(&req.instrument.symbol, req.instrument.sec_type);
        c.contract_id = req.instrument.con_id as i32;
        let hours = if req.use_rth { TradingHours::Regular } else { TradingHours::Extended };
        let mut asked = self
            .client
            .historical_data(&c, bar_size(req.series.bar_size))
            .what_to_show(what(req.series.what_to_show))
            .duration(duration(req.duration))
            .trading_hours(hours);
        // IB serves ADJUSTED_LAST ending now only: sent with an empty end (the crate refuses
        // one), `req.end` being the moment asked (`source::plan::plan_to_now`).
        if req.series.what_to_show != WhatToShow::AdjustedLast {
            asked = asked.ending(odt(req.end));
        }
        let data = self.timed(asked.fetch()).await?;
        Ok(data.bars.iter().map(|b| raw_bar(b, req.series)).collect())
    }
}
