//! Garbage, truncated and oversized frames never crash or hang the simulator, and a well-behaved
//! client keeps being served meanwhile. Seeded, bounded in count and time.

use std::time::Duration;

use ibapi::contracts::Contract;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{client, start, AFTER_CLOSE};
use twslake::sim::proto::{self, out_id};
use twslake::sim::wire;

const CASES: usize = 160;

fn greeting() -> Vec<u8> {
    let mut g = b"API\0".to_vec();
    g.extend(wire::with_length(b"v213..226"));
    g
}

/// A session past the handshake, as client `id`.
async fn logged_in(addr: &str, id: i32) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(&greeting()).await?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await?;
    s.write_all(&wire::frame(out_id::START_API, &proto::StartApi { client_id: Some(id), optional_capabilities: None }))
        .await?;
    Ok(s)
}

fn garbage(rng: &mut StdRng, case: usize) -> (bool, Vec<u8>) {
    let mut random = |n: usize| (0..n).map(|_| rng.random::<u8>()).collect::<Vec<u8>>();
    match case % 8 {
        0 => (false, random(1 + case % 300)),
        1 => (false, [greeting(), random(case % 64)].concat()),
        2 => (false, [b"API\0".to_vec(), vec![0xFF, 0xFF, 0xFF, 0xFF]].concat()),
        3 => {
            // A frame with a plausible length and a random id and payload.
            let id: i32 = 200 + (case as i32 * 7) % 120;
            let mut body = id.to_be_bytes().to_vec();
            body.extend(random(case % 48));
            (true, wire::with_length(&body))
        }
        4 => (true, [vec![0, 0, 0, 100], 220i32.to_be_bytes().to_vec(), random(10)].concat()),
        5 => (true, vec![0x40, 0, 0, 0, 1, 2, 3]),
        6 => (true, wire::with_length(&[&9i32.to_be_bytes()[..], b"1\0SPY\0STK\0"].concat())),
        _ => {
            let cancels = [
                out_id::CANCEL_MKT_DATA,
                out_id::CANCEL_HISTORICAL_DATA,
                out_id::CANCEL_HEAD_TIMESTAMP,
                out_id::CANCEL_CONTRACT_DATA,
            ];
            let id = cancels[case % 4];
            (true, wire::frame(id, &proto::ReqIdOnly { req_id: Some(rng.random()) }))
        }
    }
}

async fn throw(addr: String, case: usize, bytes: Vec<u8>, login: bool) {
    let session = async {
        let mut s =
            if login { logged_in(&addr, 10_000 + case as i32).await? } else { TcpStream::connect(&addr).await? };
        s.write_all(&bytes).await?;
        let mut sink = [0u8; 4096];
        // Read whatever comes back until the gateway closes or goes quiet.
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(100), s.read(&mut sink)).await {
            if n == 0 {
                break;
            }
        }
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), session).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_never_crashes_and_others_keep_being_served() {
    let sim = start(AFTER_CLOSE).await;
    let good = client(&sim, 1).await;
    let mut rng = StdRng::seed_from_u64(42);
    let cases: Vec<(usize, bool, Vec<u8>)> = (0..CASES)
        .map(|i| {
            let (login, bytes) = garbage(&mut rng, i);
            (i, login, bytes)
        })
        .collect();
    let addr = sim.address();
    let fuzz = tokio::spawn(async move {
        for chunk in cases.chunks(16) {
            let tasks: Vec<_> = chunk
                .iter()
                .cloned()
                .map(|(i, login, bytes)| tokio::spawn(throw(addr.clone(), i, bytes, login)))
                .collect();
            for t in tasks {
                let _ = t.await;
            }
        }
    });
    let mut served = 0;
    while !fuzz.is_finished() {
        let d =
            good.contract_details(&Contract::stock("QQQ").build()).await.expect("the good client is served throughout");
        assert_eq!(d.len(), 1);
        served += 1;
    }
    tokio::time::timeout(Duration::from_secs(60), fuzz)
        .await
        .expect("fuzzing is bounded")
        .expect("no panic in the fuzzer");
    assert!(served > 0);
    // The gateway still accepts and serves new clients, and recorded the garbage it understood.
    let late = client(&sim, 2).await;
    assert_eq!(late.contract_details(&Contract::stock("SPY").build()).await.expect("served").len(), 1);
    assert!(sim.requests().iter().any(|r| r.kind.starts_with("cancel_")));
    assert!(sim.requests().iter().any(|r| r.kind == "text_frame"));
}

/// Reads frames until one answers request `id` finally: an Error, a HistoricalDataEnd, a
/// ContractDataEnd, a HeadTimestamp or a TickSnapshotEnd with that id.
async fn answer_of(s: &mut TcpStream, id: i32) -> Option<i32> {
    use prost::Message;
    loop {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await.ok()?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).await.ok()?;
        let (Some(kind), payload) = wire::split_id(&body)? else { continue };
        let rid = match kind {
            proto::in_id::ERROR => proto::ErrorMessage::decode(payload).ok()?.id,
            proto::in_id::HISTORICAL_DATA_END
            | proto::in_id::CONTRACT_DATA_END
            | proto::in_id::TICK_SNAPSHOT_END
            | proto::in_id::HEAD_TIMESTAMP => proto::ReqIdOnly::decode(payload).ok()?.req_id,
            _ => None,
        };
        if rid == Some(id) {
            return Some(kind);
        }
    }
}

fn random_contract(rng: &mut StdRng) -> proto::Contract {
    let symbols = ["SPY", "QQQ", "AAPL", "MSFT", "BRK B", "NOPE", "", "spy"];
    let opt = rng.random_bool(0.4);
    let expiry = if opt {
        let d =
            chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("d") + chrono::Duration::days(rng.random_range(0..420));
        Some(d.format(if rng.random_bool(0.1) { "%Y%m" } else { "%Y%m%d" }).to_string())
    } else {
        None
    };
    proto::Contract {
        con_id: rng.random_bool(0.1).then(|| rng.random()),
        symbol: Some(symbols[rng.random_range(0..symbols.len())].into()),
        sec_type: Some(
            if opt {
                "OPT"
            } else if rng.random_bool(0.9) {
                "STK"
            } else {
                "FUT"
            }
            .into(),
        ),
        last_trade_date_or_contract_month: expiry,
        strike: opt.then(|| (rng.random_range(100..1400) as f64) / 2.0),
        right: opt.then(|| if rng.random_bool(0.5) { "C" } else { "P" }.into()),
        exchange: Some("SMART".into()),
        currency: Some(if rng.random_bool(0.95) { "USD" } else { "EUR" }.into()),
        ..Default::default()
    }
}

fn random_historical(rng: &mut StdRng, id: i32) -> Vec<u8> {
    let sizes = [
        "1 secs", "5 secs", "30 secs", "1 min", "3 mins", "20 mins", "1 hour", "4 hours", "8 hours", "1 day", "1 week",
        "1 month", "7 mins", "",
    ];
    let durations = [
        "60 S",
        "1800 S",
        "3600 S",
        "28800 S",
        "86400 S",
        "1 D",
        "2 D",
        "1 W",
        "1 M",
        "1 Y",
        "3 Y",
        "0 D",
        "9999999 W",
        "x",
    ];
    let whats = ["TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK", "ADJUSTED_LAST"];
    let end = match rng.random_range(0..5) {
        0 => String::new(),
        1 => "garbage".into(),
        _ => {
            let t = chrono::DateTime::from_timestamp(rng.random_range(0..2_200_000_000i64), 0).expect("t");
            let zone = ["UTC", "US/Eastern", "Mars/Olympus", ""][rng.random_range(0..4)];
            format!("{} {zone}", t.format("%Y%m%d %H:%M:%S"))
        }
    };
    let req = proto::HistoricalDataRequest {
        req_id: Some(id),
        contract: Some(random_contract(rng)),
        end_date_time: Some(end),
        bar_size_setting: Some(sizes[rng.random_range(0..sizes.len())].into()),
        duration: Some(durations[rng.random_range(0..durations.len())].into()),
        use_rth: Some(rng.random_bool(0.5)),
        what_to_show: Some(whats[rng.random_range(0..whats.len())].into()),
        format_date: Some(2),
        keep_up_to_date: Some(false),
    };
    wire::frame(out_id::REQ_HISTORICAL_DATA, &req)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_well_formed_but_random_request_is_answered() {
    let sim = super::builder(AFTER_CLOSE).pacing_scale(1e9).start().await.expect("sim");
    let mut s = logged_in(&sim.address(), 77).await.expect("login");
    let mut rng = StdRng::seed_from_u64(7);
    for id in 1..=400 {
        let frame = match id % 4 {
            0 => wire::frame(
                out_id::REQ_CONTRACT_DATA,
                &proto::ContractDataRequest { req_id: Some(id), contract: Some(random_contract(&mut rng)) },
            ),
            1 => wire::frame(
                out_id::REQ_MKT_DATA,
                &proto::MarketDataRequest {
                    req_id: Some(id),
                    contract: Some(random_contract(&mut rng)),
                    snapshot: Some(true),
                    ..Default::default()
                },
            ),
            2 => wire::frame(
                out_id::REQ_HEAD_TIMESTAMP,
                &proto::HeadTimestampRequest {
                    req_id: Some(id),
                    contract: Some(random_contract(&mut rng)),
                    format_date: Some(1 + id % 2),
                    ..Default::default()
                },
            ),
            _ => random_historical(&mut rng, id),
        };
        s.write_all(&frame).await.expect("send");
        let answered =
            tokio::time::timeout(Duration::from_secs(20), answer_of(&mut s, id)).await.expect("answered in time");
        assert!(answered.is_some(), "request {id} got a final answer");
    }
}

/// The first Error frame for request `id`, as (code, text).
async fn error_of(s: &mut TcpStream, id: i32) -> Option<(i32, String)> {
    use prost::Message;
    loop {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await.ok()?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).await.ok()?;
        if let Some((Some(proto::in_id::ERROR), payload)) = wire::split_id(&body) {
            let e = proto::ErrorMessage::decode(payload).ok()?;
            if e.id == Some(id) {
                return Some((e.error_code?, e.error_msg?));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_request_fields_are_refused_with_321() {
    let sim = start(AFTER_CLOSE).await;
    let mut s = logged_in(&sim.address(), 78).await.expect("login");
    let spy = proto::Contract {
        symbol: Some("SPY".into()),
        sec_type: Some("STK".into()),
        exchange: Some("SMART".into()),
        ..Default::default()
    };
    let cases = [
        ("7 mins", "1 D", "TRADES", ""),
        ("1 min", "5 X", "TRADES", ""),
        ("1 min", "1 D", "COLOURS", ""),
        ("1 min", "1 D", "TRADES", "yesterday"),
    ];
    for (id, (size, duration, what, end)) in (1..).zip(cases) {
        let req = proto::HistoricalDataRequest {
            req_id: Some(id),
            contract: Some(spy.clone()),
            end_date_time: Some(end.into()),
            bar_size_setting: Some(size.into()),
            duration: Some(duration.into()),
            use_rth: Some(true),
            what_to_show: Some(what.into()),
            format_date: Some(2),
            keep_up_to_date: None,
        };
        s.write_all(&wire::frame(out_id::REQ_HISTORICAL_DATA, &req)).await.expect("send");
        let (code, text) = tokio::time::timeout(Duration::from_secs(10), error_of(&mut s, id))
            .await
            .expect("in time")
            .expect("an error");
        assert_eq!(code, 321, "{size} {duration} {what} {end}: {text}");
        assert!(text.starts_with("Error validating request"), "{text}");
    }
}
