//! Level-1 market data: snapshots and streams of tick prices, sizes and option computations.

use std::time::Duration;

use chrono::{DateTime, Utc};
use prost::Message;
use tokio::sync::mpsc;

use super::conn::{Conn, OpenReq, Shared};
use super::market::{american, cents, options, rng, Instrument, Market, OptionId};
use super::proto::{self, in_id};
use super::record::{Outcome, RequestRecord};
use super::resolve::resolve;
use super::wire;
use crate::calendar;
use crate::domain::codes::{NOT_SUBSCRIBED, NOT_SUBSCRIBED_TEXT, NO_SECURITY_DEFINITION, NO_SECURITY_TEXT};

/// How often a stream sends fresh quotes (real time).
const STREAM_PERIOD: Duration = Duration::from_millis(500);

/// Tick ids: live and delayed (IB offsets delayed ticks into the 66–83 range).
#[derive(Debug, Clone, Copy)]
struct Ticks {
    bid: i32,
    ask: i32,
    last: i32,
    high: i32,
    low: i32,
    close: i32,
    open: i32,
    bid_size: i32,
    ask_size: i32,
    last_size: i32,
    volume: i32,
    /// Option computations: bid, ask, last, model.
    comp: [i32; 4],
}

const LIVE: Ticks = Ticks {
    bid: 1,
    ask: 2,
    last: 4,
    high: 6,
    low: 7,
    close: 9,
    open: 14,
    bid_size: 0,
    ask_size: 3,
    last_size: 5,
    volume: 8,
    comp: [10, 11, 12, 13],
};
const DELAYED: Ticks = Ticks {
    bid: 66,
    ask: 67,
    last: 68,
    high: 72,
    low: 73,
    close: 75,
    open: 76,
    bid_size: 69,
    ask_size: 70,
    last_size: 71,
    volume: 74,
    comp: [80, 81, 82, 83],
};

/// Records the client's market data type (1 live, 2 frozen, 3 delayed, 4 delayed frozen).
pub fn set_type(conn: &mut Conn, payload: &[u8]) -> Result<(), prost::DecodeError> {
    let req = proto::MarketDataTypeRequest::decode(payload)?;
    let t = req.market_data_type.unwrap_or(1);
    let mut rec = RequestRecord::new(conn.client_id, None, "market_data_type");
    rec.what_to_show = Some(t.to_string());
    if (1..=4).contains(&t) {
        conn.market_data_type = t;
        conn.record(rec, Outcome::Accepted);
    } else {
        conn.error(-1, 321, "Error validating request.-'bN' : cause - Invalid market data type");
        conn.record(rec, Outcome::Error { code: 321 });
    }
    Ok(())
}

/// Answers a market data request: a snapshot (ticks then snapshot end) or a stream.
pub fn request(conn: &mut Conn, payload: &[u8]) -> Result<(), prost::DecodeError> {
    let req = proto::MarketDataRequest::decode(payload)?;
    let id = req.req_id.unwrap_or(0);
    let snapshot = req.snapshot.unwrap_or(false) || req.regulatory_snapshot.unwrap_or(false);
    let rec =
        RequestRecord::new(conn.client_id, Some(id), if snapshot { "market_data_snapshot" } else { "market_data" })
            .with_contract(req.contract.as_ref());
    if conn.shared.stalled("market") {
        conn.open.insert(id, OpenReq::Stalled { historical: false });
        conn.record(rec, Outcome::Stalled);
        return Ok(());
    }
    let market = &conn.shared.market;
    let found = req.contract.as_ref().map(|c| resolve(market, c)).unwrap_or_default();
    let [inst] = found[..] else {
        conn.error(id, NO_SECURITY_DEFINITION, NO_SECURITY_TEXT);
        conn.record(rec, Outcome::Error { code: NO_SECURITY_DEFINITION });
        return Ok(());
    };
    let underlying = match inst {
        Instrument::Stock(i) => i,
        Instrument::Option(o) => o.underlying,
    };
    let delayed = conn.market_data_type >= 3;
    if !market.spec(underlying).subscribed && !delayed {
        conn.error(id, NOT_SUBSCRIBED, NOT_SUBSCRIBED_TEXT);
        conn.record(rec, Outcome::Error { code: NOT_SUBSCRIBED });
        return Ok(());
    }
    let ticks = if delayed { DELAYED } else { LIVE };
    conn.send(
        in_id::MARKET_DATA_TYPE,
        &proto::MarketDataType { req_id: Some(id), market_data_type: Some(conn.market_data_type) },
    );
    conn.send(
        in_id::TICK_REQ_PARAMS,
        &proto::TickReqParams {
            req_id: Some(id),
            min_tick: Some("0.01".into()),
            bbo_exchange: Some("9c0001".into()),
            snapshot_permissions: Some(3),
        },
    );
    let frames = quote_frames(market, inst, id, ticks, market.now());
    let rows = frames.len();
    let tx = conn.sender();
    for f in frames {
        let _ = tx.send(f);
    }
    if snapshot {
        conn.send(in_id::TICK_SNAPSHOT_END, &proto::ReqIdOnly { req_id: Some(id) });
    } else {
        conn.close(id);
        let shared = conn.shared.clone();
        let handle = tokio::spawn(async move { stream(shared, inst, id, ticks, tx).await });
        conn.open.insert(id, OpenReq::Stream(handle));
    }
    conn.record(rec, Outcome::Ok { rows });
    Ok(())
}

async fn stream(
    shared: std::sync::Arc<Shared>,
    inst: Instrument,
    id: i32,
    ticks: Ticks,
    tx: mpsc::UnboundedSender<Vec<u8>>,
) {
    let mut every = tokio::time::interval(STREAM_PERIOD);
    every.tick().await;
    loop {
        every.tick().await;
        for f in quote_frames(&shared.market, inst, id, ticks, shared.market.now()) {
            if tx.send(f).is_err() {
                return;
            }
        }
    }
}

fn price(id: i32, tick: i32, price: f64, size: Option<u64>) -> Vec<u8> {
    wire::frame(
        in_id::TICK_PRICE,
        &proto::TickPrice {
            req_id: Some(id),
            tick_type: Some(tick),
            price: Some(price),
            size: size.map(|s| s.to_string()),
            attr_mask: Some(0),
        },
    )
}

fn size(id: i32, tick: i32, size: u64) -> Vec<u8> {
    wire::frame(
        in_id::TICK_SIZE,
        &proto::TickSize { req_id: Some(id), tick_type: Some(tick), size: Some(size.to_string()) },
    )
}

/// Today's session so far (or the last full session): open, high, low, volume, and the
/// previous close.
struct DaySoFar {
    open: f64,
    high: f64,
    low: f64,
    volume: u64,
    prev_close: f64,
}

fn day_so_far(market: &Market, i: usize, now: DateTime<Utc>) -> Option<DaySoFar> {
    let mut date = calendar::trading_date(now);
    if calendar::session(date).is_none_or(|s| now < s.open) {
        date = calendar::prev_trading_day(date);
    }
    let d = market.detail(i, date)?;
    let done = (((now - d.session.open).num_seconds() / 60).max(1) as usize).min(d.minutes());
    Some(DaySoFar {
        open: d.p[0],
        high: d.hi[..done].iter().cloned().fold(f64::MIN, f64::max),
        low: d.lo[..done].iter().cloned().fold(f64::MAX, f64::min),
        volume: d.vol[..done].iter().sum(),
        prev_close: d.bar.prev_close,
    })
}

/// Every tick describing `inst` at `now`.
fn quote_frames(market: &Market, inst: Instrument, id: i32, t: Ticks, now: DateTime<Utc>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    match inst {
        Instrument::Stock(i) => {
            let (Some(spot), Some(day)) = (market.spot_at(i, now), day_so_far(market, i, now)) else {
                return out;
            };
            // Internal basis to today's (see `market::corporate`).
            let f = market.served_factor(i);
            let spot = cents(spot / f);
            let day = DaySoFar {
                open: cents(day.open / f),
                high: cents(day.high / f),
                low: cents(day.low / f),
                volume: (day.volume as f64 * f).round() as u64,
                prev_close: cents(day.prev_close / f),
            };
            let key = now.timestamp() as u64;
            let sz = |salt: u64| 1 + (rng::mix(key ^ salt ^ i as u64) % 40);
            out.push(price(id, t.bid, cents(spot - 0.01), Some(sz(1) * 100)));
            out.push(price(id, t.ask, cents(spot + 0.01), Some(sz(2) * 100)));
            out.push(price(id, t.last, spot, Some(sz(3) * 100)));
            out.push(size(id, t.bid_size, sz(1) * 100));
            out.push(size(id, t.ask_size, sz(2) * 100));
            out.push(size(id, t.last_size, sz(3) * 100));
            out.push(price(id, t.high, day.high, None));
            out.push(price(id, t.low, day.low, None));
            out.push(price(id, t.open, day.open, None));
            out.push(price(id, t.close, day.prev_close, None));
            out.push(size(id, t.volume, day.volume));
        }
        Instrument::Option(o) => option_frames(market, o, id, t, now, &mut out),
    }
    out
}

fn option_frames(market: &Market, o: OptionId, id: i32, t: Ticks, now: DateTime<Utc>, out: &mut Vec<Vec<u8>>) {
    let spec = market.spec(o.underlying);
    let Some(spot) = market.spot_at(o.underlying, now) else {
        return;
    };
    let Some(q) = options::tick_quote(market.key(), spec, &o, now, spot) else {
        return;
    };
    // Internal basis to today's (see `market::corporate`): prices and the strike ÷ f, contracts × f.
    let f = market.served_factor(o.underlying);
    let q = q.rebased(f);
    let (bid, ask) = options::bid_ask(q.price);
    let volume = (traded_so_far(market, &o, now) as f64 * f).round() as u64;
    out.push(price(id, t.bid, bid, Some(10)));
    out.push(price(id, t.ask, ask, Some(10)));
    if volume > 0 {
        out.push(price(id, t.last, options::trade_price(q.price), Some(1)));
    }
    out.push(size(id, t.volume, volume));
    // Bid, ask and last inverted by the contract's exercise style (American with the dividends).
    let iv_of = |p: f64| american::implied_vol(spec, &o, now, &q, f, p);
    out.push(computation(id, t.comp[0], iv_of(bid).map(|iv| (iv, bid)), &q));
    out.push(computation(id, t.comp[1], iv_of(ask).map(|iv| (iv, ask)), &q));
    let last = (volume > 0).then(|| options::trade_price(q.price));
    out.push(computation(id, t.comp[2], last.and_then(|p| iv_of(p).map(|iv| (iv, p))), &q));
    out.push(computation(id, t.comp[3], Some((q.iv, q.price)), &q));
}

/// Contracts traded in the session at `now` so far (the last session's total outside hours).
fn traded_so_far(market: &Market, o: &OptionId, now: DateTime<Utc>) -> u64 {
    let mut date = calendar::trading_date(now);
    if calendar::session(date).is_none_or(|s| now < s.open) {
        date = calendar::prev_trading_day(date);
    }
    let Some(s) = calendar::session(date) else { return 0 };
    let total = market.option_day_volume(o, date).unwrap_or(0);
    let elapsed = (now - s.open).num_seconds() as f64 / (s.close - s.open).num_seconds() as f64;
    if elapsed >= 1.0 {
        total
    } else {
        (total as f64 * elapsed).ceil() as u64
    }
}

/// An option computation tick. When no implied volatility exists (no trade, a bid of zero) TWS
/// sends its "not computed" sentinels: −1 for volatility and prices, −2 for the greeks.
fn computation(id: i32, tick: i32, iv_price: Option<(f64, f64)>, q: &options::Quote) -> Vec<u8> {
    let msg = match iv_price {
        Some((iv, p)) => proto::TickOptionComputation {
            req_id: Some(id),
            tick_type: Some(tick),
            tick_attrib: Some(1),
            implied_vol: Some(iv),
            delta: Some(q.delta),
            opt_price: Some(p),
            pv_dividend: Some(q.pv_dividend),
            gamma: Some(q.gamma),
            vega: Some(q.vega),
            theta: Some(q.theta),
            und_price: Some(q.spot),
        },
        None => proto::TickOptionComputation {
            req_id: Some(id),
            tick_type: Some(tick),
            tick_attrib: Some(1),
            implied_vol: Some(-1.0),
            delta: Some(-2.0),
            opt_price: Some(-1.0),
            pv_dividend: Some(-1.0),
            gamma: Some(-2.0),
            vega: Some(-2.0),
            theta: Some(-2.0),
            und_price: Some(-1.0),
        },
    };
    wire::frame(in_id::TICK_OPTION_COMPUTATION, &msg)
}
