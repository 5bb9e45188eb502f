//! The simulator answers as a real TWS does where a client can tell: `formatDate=1` bar times as
//! text in the exchange's zone, IB's greek conventions in the option-computation ticks, and an
//! immediate, decodable refusal for a client speaking only the older text protocol.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use futures::StreamExt;
use ibapi::contracts::tick_types::TickType;
use ibapi::contracts::{Contract, OptionRight, SecurityType};
use ibapi::market_data::realtime::TickTypes;
use ibapi::subscriptions::SubscriptionItem;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{at, client, AFTER_CLOSE, MIDDAY};
use twslake::pricing::{American, Dividend};
use twslake::sim::proto::{self, in_id, out_id};
use twslake::sim::{wire, Outcome};

/// A raw session past the handshake, as client `id`.
async fn logged_in(addr: &str, id: i32) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&[&b"API\0"[..], &wire::with_length(b"v215..226")].concat()).await.expect("greet");
    read_frame(&mut s).await.expect("handshake reply");
    let start = proto::StartApi { client_id: Some(id), optional_capabilities: None };
    s.write_all(&wire::frame(out_id::START_API, &start)).await.expect("start api");
    s
}

async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await.ok()?;
    Some(body)
}

/// The payload of the next frame with message id `want`.
async fn next_of(s: &mut TcpStream, want: i32) -> Vec<u8> {
    let read = async {
        loop {
            let body = read_frame(s).await.expect("the gateway keeps the session");
            if let Some((Some(id), payload)) = wire::split_id(&body) {
                if id == in_id::ERROR {
                    let e = proto::ErrorMessage::decode(payload).expect("error message");
                    assert_eq!(e.id, Some(-1), "refused: {e:?}");
                }
                if id == want {
                    return payload.to_vec();
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("answered in time")
}

fn spy() -> proto::Contract {
    proto::Contract {
        symbol: Some("SPY".into()),
        sec_type: Some("STK".into()),
        exchange: Some("SMART".into()),
        currency: Some("USD".into()),
        ..Default::default()
    }
}

fn bars_request(id: i32, size: &str, duration: &str, format_date: i32, keep: bool) -> Vec<u8> {
    let req = proto::HistoricalDataRequest {
        req_id: Some(id),
        contract: Some(spy()),
        end_date_time: Some(String::new()),
        bar_size_setting: Some(size.into()),
        duration: Some(duration.into()),
        use_rth: Some(true),
        what_to_show: Some("TRADES".into()),
        format_date: Some(format_date),
        keep_up_to_date: Some(keep),
    };
    wire::frame(out_id::REQ_HISTORICAL_DATA, &req)
}

async fn bar_dates(s: &mut TcpStream, id: i32, size: &str, duration: &str, format_date: i32) -> Vec<String> {
    s.write_all(&bars_request(id, size, duration, format_date, false)).await.expect("send");
    let bars = proto::HistoricalData::decode(&next_of(s, in_id::HISTORICAL_DATA).await[..]).expect("bars");
    assert_eq!(bars.req_id, Some(id));
    bars.bars.into_iter().map(|b| b.date.unwrap_or_default()).collect()
}

/// `yyyyMMdd HH:mm:ss US/Eastern`, as TWS writes a bar's time for `formatDate=1`.
fn parse_text(s: &str) -> i64 {
    let local = s.strip_suffix(" US/Eastern").unwrap_or_else(|| panic!("{s:?} names the exchange's zone"));
    let naive = NaiveDateTime::parse_from_str(local, "%Y%m%d %H:%M:%S").unwrap_or_else(|e| panic!("{s:?}: {e}"));
    chrono_tz::America::New_York.from_local_datetime(&naive).single().expect("one instant").timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_date_1_sends_bar_times_as_text_and_2_as_epoch_seconds() {
    let sim = super::builder(AFTER_CLOSE).pacing_scale(1e9).start().await.expect("sim");
    let mut s = logged_in(&sim.address(), 90).await;
    let text = bar_dates(&mut s, 1, "5 mins", "1 D", 1).await;
    let epoch = bar_dates(&mut s, 2, "5 mins", "1 D", 2).await;
    assert_eq!(text.len(), 78, "a full session of 5-minute bars");
    assert_eq!(text.len(), epoch.len());
    assert_eq!(text[0], "20261124 09:30:00 US/Eastern", "the first bar starts at the open, New York time");
    for (t, e) in text.iter().zip(&epoch) {
        assert_eq!(parse_text(t), e.parse::<i64>().unwrap_or_else(|_| panic!("{e:?} is epoch seconds")));
    }
    // Daily bars are dated yyyyMMdd whatever the format.
    let daily_text = bar_dates(&mut s, 3, "1 day", "1 M", 1).await;
    let daily_epoch = bar_dates(&mut s, 4, "1 day", "1 M", 2).await;
    assert_eq!(daily_text, daily_epoch);
    assert_eq!(daily_text.last().map(String::as_str), Some("20261124"));
    assert!(daily_text.iter().all(|d| NaiveDate::parse_from_str(d, "%Y%m%d").is_ok()), "{daily_text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_up_to_date_updates_follow_the_requests_format() {
    let sim = super::builder(MIDDAY).pacing_scale(1e9).start().await.expect("sim");
    for (id, format_date) in [(1, 1), (2, 2)] {
        let mut s = logged_in(&sim.address(), 90 + id).await;
        s.write_all(&bars_request(id, "1 min", "3600 S", format_date, true)).await.expect("send");
        let update = proto::HistoricalDataUpdate::decode(&next_of(&mut s, in_id::HISTORICAL_DATA_UPDATE).await[..])
            .expect("update");
        let date = update.bar.and_then(|b| b.date).expect("a dated bar");
        let t = if format_date == 1 { parse_text(&date) } else { date.parse().expect("epoch seconds") };
        // MIDDAY is 12:00 New York: the latest completed minute started at 11:59.
        assert_eq!(t, at(MIDDAY).timestamp() - 60, "{date}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_timestamps_follow_format_date() {
    let sim = super::builder(AFTER_CLOSE).pacing_scale(1e9).start().await.expect("sim");
    let mut s = logged_in(&sim.address(), 95).await;
    let mut answers = Vec::new();
    for (id, format_date) in [(1, 1), (2, 2)] {
        let req = proto::HeadTimestampRequest {
            req_id: Some(id),
            contract: Some(spy()),
            what_to_show: Some("TRADES".into()),
            format_date: Some(format_date),
            ..Default::default()
        };
        s.write_all(&wire::frame(out_id::REQ_HEAD_TIMESTAMP, &req)).await.expect("send");
        let head = proto::HeadTimestamp::decode(&next_of(&mut s, in_id::HEAD_TIMESTAMP).await[..]).expect("head");
        answers.push(head.head_timestamp.expect("a timestamp"));
    }
    let text = NaiveDateTime::parse_from_str(&answers[0], "%Y%m%d-%H:%M:%S").expect("yyyyMMdd-HH:mm:ss (UTC)");
    assert_eq!(Some(text.and_utc().timestamp()), answers[1].parse().ok(), "{answers:?}");
}

async fn model_tick(c: &ibapi::Client, contract: &Contract) -> ibapi::contracts::OptionComputation {
    let mut sub = c.market_data(contract).snapshot().subscribe().await.expect("snapshot");
    loop {
        match tokio::time::timeout(Duration::from_secs(10), sub.next()).await.expect("ticks in time") {
            Some(Ok(SubscriptionItem::Data(TickTypes::OptionComputation(o)))) if o.field == TickType::ModelOption => {
                return o
            }
            Some(Ok(_)) => {}
            other => panic!("snapshot ended without a model tick: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_computation_greeks_are_ibs_on_the_truths_inputs() {
    let sim = super::start(MIDDAY).await;
    let c = client(&sim, 1).await;
    let truth = twslake::sim::truth::truth(sim.market(), "SPY", at(MIDDAY)).expect("truth");
    assert!(!truth.dividends.is_empty() && truth.rate > 0.0, "dividends and r both matter to the check");
    let mut checked = 0;
    for expiry in ["20261127", "20261218", "20270617"] {
        let slice = truth.expiries.iter().find(|e| e.expiry == expiry);
        let slice = slice.unwrap_or_else(|| {
            panic!("{expiry} not in {:?}", truth.expiries.iter().map(|e| &e.expiry).collect::<Vec<_>>())
        });
        let step = (slice.strikes.len() / 4).max(1);
        for k in slice.strikes.iter().step_by(step) {
            for right in [OptionRight::Call, OptionRight::Put] {
                let contract = Contract {
                    symbol: "SPY".into(),
                    security_type: SecurityType::Option,
                    last_trade_date_or_contract_month: expiry.into(),
                    strike: k.strike,
                    right: Some(right),
                    exchange: "SMART".into(),
                    currency: "USD".into(),
                    ..Default::default()
                };
                let got = model_tick(&c, &contract).await;
                let call = right == OptionRight::Call;
                // SPY's options are American: the greeks are the American pricer's on the
                // truth's inputs (escrowed cash dividends), in IB's conventions.
                let expiry_date = chrono::NaiveDate::parse_from_str(expiry, "%Y%m%d").expect("expiry");
                let dividends: Vec<Dividend> = truth
                    .dividends
                    .iter()
                    .filter(|d| d.ex_date <= expiry_date)
                    .map(|d| Dividend { t: d.t, amount: d.amount })
                    .collect();
                let pv: f64 = dividends.iter().map(|d| d.amount * (-truth.rate * d.t).exp()).sum();
                assert!((pv - slice.pv_dividend).abs() < 1e-9, "{expiry}: PV {pv} against {}", slice.pv_dividend);
                let pricer = American {
                    spot: truth.spot,
                    strike: k.strike,
                    t: slice.t,
                    rate: truth.rate,
                    yield_rate: 0.0,
                    dividends: &dividends,
                    is_call: call,
                };
                let g = pricer.greeks(k.iv);
                let want = [g.delta, g.gamma, g.vega, g.theta];
                assert!((got.option_price.expect("price") - g.price).abs() < 1e-9, "{expiry} {} {right:?}", k.strike);
                let got = [got.delta, got.gamma, got.vega, got.theta].map(|g| g.expect("greek computed"));
                for (name, (g, w)) in ["delta", "gamma", "vega", "theta"].iter().zip(got.iter().zip(want)) {
                    assert!((g - w).abs() < 1e-6, "{name} {expiry} {} {right:?}: {g} vs {w}", k.strike);
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 24, "{checked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_protocol_client_is_refused_at_once_in_its_framing() {
    let sim = super::start(AFTER_CLOSE).await;
    let began = Instant::now();
    let mut s = TcpStream::connect(sim.address()).await.expect("connect");
    // ib_async's and ib_insync's greeting.
    s.write_all(&[&b"API\0"[..], &wire::with_length(b"v157..178")].concat()).await.expect("greet");
    let body = tokio::time::timeout(Duration::from_secs(1), read_frame(&mut s))
        .await
        .expect("answered within a second")
        .expect("a length-prefixed message");
    let text = String::from_utf8(body).expect("text framing");
    let fields: Vec<&str> = text.strip_suffix('\0').expect("NUL-terminated fields").split('\0').collect();
    assert_eq!(fields[..4], ["4", "2", "-1", "506"], "an error message, version 2, no request id, code 506");
    assert!(fields[4].starts_with("Unsupported version") && fields[4].contains("v157..178"), "{}", fields[4]);
    assert_eq!(fields.len(), 5);
    let mut rest = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(1), s.read(&mut rest)).await.expect("closed at once");
    assert!(matches!(closed, Ok(0) | Err(_)), "the socket closes after the refusal");
    assert!(began.elapsed() < Duration::from_secs(1), "{:?}", began.elapsed());
    let refused = sim.requests().into_iter().find(|r| r.kind == "handshake_refused").expect("journalled");
    assert_eq!(refused.outcome, Outcome::Error { code: 506 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_newer_than_the_simulator_is_answered_its_highest_version() {
    let sim = super::start(AFTER_CLOSE).await;
    let mut s = TcpStream::connect(sim.address()).await.expect("connect");
    s.write_all(&[&b"API\0"[..], &wire::with_length(b"v227..240")].concat()).await.expect("greet");
    let body = tokio::time::timeout(Duration::from_secs(1), read_frame(&mut s)).await.expect("in time").expect("reply");
    let text = String::from_utf8(body).expect("text");
    assert!(text.starts_with("226\0") && text.ends_with(" US/Eastern\0"), "{text:?}");
}
