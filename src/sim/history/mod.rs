//! Historical bars and head timestamps, with IB's refusals and pacing.

pub mod series;
pub mod spec;

use chrono::{DateTime, Duration, Utc};
use prost::Message;

use self::series::{Bar, BarTime};
use super::conn::{Conn, OpenReq};
use super::market::{first_date, options, Instrument, Market};
use super::pacing::PaceKey;
use super::proto::{self, in_id};
use super::record::{Outcome, RequestRecord};
use super::resolve::{contract_of, resolve};
use super::wire;
use crate::calendar;
use crate::domain::codes::{
    ADJUSTED_LAST_BARS_TEXT, ADJUSTED_LAST_END_TEXT, HISTORICAL_DATA_ERROR, NO_DATA_TEXT, NO_SECURITY_DEFINITION,
    NO_SECURITY_TEXT, PACING_VIOLATION_TEXT, REQUEST_INVALID,
};
use crate::domain::{BarSize, WhatToShow};

/// Bars of 30 seconds or less are not served further back than this (IB's rule).
const SMALL_BAR_HISTORY_DAYS: i64 = 183;

/// A refusal: IB's code and text.
type Refusal = (i32, String);

fn invalid(what: &str) -> Refusal {
    (REQUEST_INVALID, format!("Error validating request.-'bW' : cause - {what}"))
}

fn no_data(market: &Market, inst: Instrument, what: WhatToShow) -> Refusal {
    let local = contract_of(market, inst).local_symbol.unwrap_or_default();
    (HISTORICAL_DATA_ERROR, format!("{NO_DATA_TEXT}: {local}@SMART {}", spec::title(what)))
}

struct Parsed {
    inst: Instrument,
    dates: DateFormat,
    what: WhatToShow,
    size: BarSize,
    duration: spec::Duration,
    end: DateTime<Utc>,
}

fn parse(conn: &Conn, req: &proto::HistoricalDataRequest) -> Result<Parsed, Refusal> {
    let market = &conn.shared.market;
    let found = req.contract.as_ref().map(|c| resolve(market, c)).unwrap_or_default();
    let [inst] = found[..] else {
        return Err((NO_SECURITY_DEFINITION, NO_SECURITY_TEXT.into()));
    };
    let size = spec::parse_bar_size(req.bar_size_setting.as_deref().unwrap_or(""))
        .ok_or_else(|| invalid("Historical data bar size setting is invalid."))?;
    let duration = spec::Duration::parse(req.duration.as_deref().unwrap_or(""))
        .ok_or_else(|| invalid("Historical data duration format is invalid."))?;
    let what = spec::parse_what(req.what_to_show.as_deref().unwrap_or(""))
        .ok_or_else(|| invalid("Historical data request for unsupported what to show."))?;
    if what == WhatToShow::AdjustedLast {
        // IB serves ADJUSTED_LAST ending now only (the `ibapi` crate refuses an end on its
        // side too), in daily or longer bars, for stocks.
        if !req.end_date_time.as_deref().unwrap_or("").trim().is_empty() {
            return Err((REQUEST_INVALID, ADJUSTED_LAST_END_TEXT.into()));
        }
        if size.is_intraday() || !matches!(inst, Instrument::Stock(_)) {
            return Err((REQUEST_INVALID, ADJUSTED_LAST_BARS_TEXT.into()));
        }
    }
    let end = spec::parse_end(req.end_date_time.as_deref().unwrap_or(""), market.now())
        .ok_or_else(|| invalid("End date/time format is invalid."))?;
    if spec::span(size) < spec::finest_bar_for(duration) {
        return Err((HISTORICAL_DATA_ERROR, spec::TOO_MANY_BARS.into()));
    }
    Ok(Parsed { inst, what, size, duration, end, dates: DateFormat::of(req.format_date) })
}

fn pace_key(req: &proto::HistoricalDataRequest, p: &Parsed, market: &Market) -> PaceKey {
    let contract = contract_of(market, p.inst);
    let cid = format!(
        "{}|{}",
        contract.con_id.unwrap_or(0),
        req.contract.as_ref().and_then(|c| c.exchange.clone()).unwrap_or_default()
    );
    PaceKey {
        identical: format!(
            "{cid}|{:?}|{:?}|{:?}|{:?}|{:?}",
            req.end_date_time, req.duration, req.bar_size_setting, req.what_to_show, req.use_rth
        ),
        contract: format!("{cid}|{}", p.what.ib()),
        weight: if p.what == WhatToShow::BidAsk { 2 } else { 1 },
    }
}

/// Answers a historical data request: exactly one bars message, then the end message with the
/// window; or IB's refusal.
pub fn historical(conn: &mut Conn, payload: &[u8]) -> Result<(), prost::DecodeError> {
    let req = proto::HistoricalDataRequest::decode(payload)?;
    let id = req.req_id.unwrap_or(0);
    let mut rec = RequestRecord::new(conn.client_id, Some(id), "historical_data").with_contract(req.contract.as_ref());
    rec.bar_size = req.bar_size_setting.clone();
    rec.duration = req.duration.clone();
    rec.end = req.end_date_time.clone();
    rec.what_to_show = req.what_to_show.clone();
    let p = match parse(conn, &req) {
        Ok(p) => p,
        Err((code, text)) => return refuse(conn, rec, id, code, &text),
    };
    let key = pace_key(&req, &p, &conn.shared.market);
    if let Err(v) = conn.shared.pacer.lock().unwrap_or_else(|e| e.into_inner()).admit(key) {
        rec.violation = Some(format!("{v:?}"));
        return refuse(conn, rec, id, HISTORICAL_DATA_ERROR, PACING_VIOLATION_TEXT);
    }
    if conn.shared.stalled("historical") {
        conn.open.insert(id, OpenReq::Stalled { historical: true });
        conn.record(rec, Outcome::Stalled);
        return Ok(());
    }
    let outcome = serve(conn, id, &p);
    conn.shared.pacer.lock().unwrap_or_else(|e| e.into_inner()).close();
    match outcome {
        Ok(rows) => conn.record(rec, if rows == 0 { Outcome::Empty } else { Outcome::Ok { rows } }),
        Err((code, text)) => return refuse(conn, rec, id, code, &text),
    }
    if req.keep_up_to_date == Some(true) {
        keep_up_to_date(conn, id, &p);
    }
    Ok(())
}

/// How often a `keepUpToDate` request gets its in-progress bar again (IB: every few seconds).
const UPDATE_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// Streams the latest bar at the market clock until the request is cancelled.
fn keep_up_to_date(conn: &mut Conn, id: i32, p: &Parsed) {
    let (shared, tx, inst, what, size, dates) = (conn.shared.clone(), conn.sender(), p.inst, p.what, p.size, p.dates);
    let lookback = match (size.seconds(), size) {
        (Some(s), _) => Duration::seconds(2 * i64::from(s)),
        (None, BarSize::Week1) => Duration::days(21),
        (None, BarSize::Month1) => Duration::days(70),
        (None, _) => Duration::days(7),
    };
    let handle = tokio::spawn(async move {
        let mut every = tokio::time::interval(UPDATE_PERIOD);
        every.tick().await;
        loop {
            every.tick().await;
            let now = shared.market.now();
            let bars = series::bars(&shared.market, inst, what, size, now - lookback, now);
            if let Some(b) = bars.last() {
                let msg = proto::HistoricalDataUpdate { req_id: Some(id), bar: Some(encode_bar(b, dates)) };
                if tx.send(wire::frame(in_id::HISTORICAL_DATA_UPDATE, &msg)).is_err() {
                    return;
                }
            }
        }
    });
    conn.close(id);
    conn.open.insert(id, OpenReq::Stream(handle));
}

fn refuse(conn: &Conn, rec: RequestRecord, id: i32, code: i32, text: &str) -> Result<(), prost::DecodeError> {
    conn.error(id, code, text);
    conn.record(rec, Outcome::Error { code });
    Ok(())
}

fn serve(conn: &Conn, id: i32, p: &Parsed) -> Result<usize, Refusal> {
    let market = &conn.shared.market;
    let now = market.now();
    let end = p.end.min(now);
    if calendar::trading_date(end) < first_date() {
        return Err(no_data(market, p.inst, p.what));
    }
    let start = p.duration.start(end);
    if p.size.seconds().is_some_and(|s| s <= 30) && start < now - Duration::days(SMALL_BAR_HISTORY_DAYS) {
        return Err(no_data(market, p.inst, p.what));
    }
    let bars = series::bars(market, p.inst, p.what, p.size, start, end);
    if bars.is_empty() && !option_untraded(p, start, end) {
        return Err(no_data(market, p.inst, p.what));
    }
    let msg = proto::HistoricalData { req_id: Some(id), bars: bars.iter().map(|b| encode_bar(b, p.dates)).collect() };
    conn.send(in_id::HISTORICAL_DATA, &msg);
    let window = proto::HistoricalDataEnd {
        req_id: Some(id),
        start_date_str: Some(spec::format_eastern(start)),
        end_date_str: Some(spec::format_eastern(end)),
    };
    conn.send(in_id::HISTORICAL_DATA_END, &window);
    Ok(bars.len())
}

/// An option that lived in the window but did not trade answers TRADES with no bars (IB's empty
/// answer) rather than an error.
fn option_untraded(p: &Parsed, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
    match p.inst {
        Instrument::Option(o) if p.what == WhatToShow::Trades => {
            let listed = calendar::session(options::listing_date(o.expiry)).map(|s| s.open);
            listed.is_some_and(|l| end > l) && options::expiry_instant(o.expiry).is_some_and(|e| start < e)
        }
        _ => false,
    }
}

/// How a request asked for its bars' times (`formatDate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateFormat {
    /// `formatDate=1`, IB's default: intraday bars as `yyyyMMdd HH:mm:ss <zone>` text.
    Text,
    /// `formatDate=2`: intraday bars in epoch seconds (what the Rust `ibapi` crate always asks).
    Epoch,
}

impl DateFormat {
    /// The request's `formatDate`: 2 is epoch seconds; 1, absent or anything else is IB's
    /// default, text.
    pub fn of(format_date: Option<i32>) -> DateFormat {
        if format_date == Some(2) {
            DateFormat::Epoch
        } else {
            DateFormat::Text
        }
    }
}

/// One bar as TWS encodes it: daily and longer bars dated `yyyyMMdd` whatever the format;
/// intraday bars as `yyyyMMdd HH:mm:ss US/Eastern` (the bar's start in the exchange's zone, the
/// zone named as TWS names it — the same rendering as the handshake's time and the end message's
/// window) for `formatDate=1`, in epoch seconds for `formatDate=2`. Volume, WAP and count only
/// for TRADES (−1 otherwise, as TWS sends).
pub fn encode_bar(b: &Bar, dates: DateFormat) -> proto::HistoricalDataBar {
    proto::HistoricalDataBar {
        date: Some(match (b.time, dates) {
            (BarTime::Date(d), _) => d.format("%Y%m%d").to_string(),
            (BarTime::Instant(t), DateFormat::Text) => spec::format_eastern(t),
            (BarTime::Instant(t), DateFormat::Epoch) => t.timestamp().to_string(),
        }),
        open: Some(b.open),
        high: Some(b.high),
        low: Some(b.low),
        close: Some(b.close),
        volume: Some(b.volume.map_or("-1".into(), |v| v.to_string())),
        wap: Some(b.wap.map_or("-1".into(), |w| format!("{w:.4}"))),
        bar_count: Some(b.count.map_or(-1, |c| c.min(i32::MAX as u64) as i32)),
    }
}

/// Answers a head-timestamp request: the first session of the simulated history for a stock, the
/// listing session for an option; 200 for unknown or expired contracts. The instant is the
/// session's open, as `yyyyMMdd-HH:mm:ss` in UTC for `formatDate=1` (the form TWS answers head
/// timestamps in, unlike bars) and epoch seconds for `formatDate=2`.
pub fn head_timestamp(conn: &mut Conn, payload: &[u8]) -> Result<(), prost::DecodeError> {
    let req = proto::HeadTimestampRequest::decode(payload)?;
    let id = req.req_id.unwrap_or(0);
    let mut rec = RequestRecord::new(conn.client_id, Some(id), "head_timestamp").with_contract(req.contract.as_ref());
    rec.what_to_show = req.what_to_show.clone();
    if conn.shared.stalled("head") {
        conn.open.insert(id, OpenReq::Stalled { historical: false });
        conn.record(rec, Outcome::Stalled);
        return Ok(());
    }
    let market = &conn.shared.market;
    let found = req.contract.as_ref().map(|c| resolve(market, c)).unwrap_or_default();
    let [inst] = found[..] else {
        return refuse(conn, rec, id, NO_SECURITY_DEFINITION, NO_SECURITY_TEXT);
    };
    let first = match inst {
        Instrument::Stock(_) => first_date(),
        Instrument::Option(o) => options::listing_date(o.expiry),
    };
    let Some(open) = calendar::session(first).map(|s| s.open) else {
        return refuse(conn, rec, id, NO_SECURITY_DEFINITION, NO_SECURITY_TEXT);
    };
    let text = match DateFormat::of(req.format_date) {
        DateFormat::Text => open.format("%Y%m%d-%H:%M:%S").to_string(),
        DateFormat::Epoch => open.timestamp().to_string(),
    };
    conn.send(in_id::HEAD_TIMESTAMP, &proto::HeadTimestamp { req_id: Some(id), head_timestamp: Some(text) });
    conn.record(rec, Outcome::Ok { rows: 1 });
    Ok(())
}
