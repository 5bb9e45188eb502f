//! IB's pacing rules as the real client meets them, and the pacing scale.

use std::time::Duration;

use ibapi::contracts::Contract;
use ibapi::market_data::historical::{BarSize, Duration as IbDuration, WhatToShow};
use ibapi::Client;
use time::OffsetDateTime;

use super::{at, builder, client, notice_code, AFTER_CLOSE};
use twslake::sim::pacing::Ticker;
use twslake::sim::{Fault, SimHandle};

/// A pacing clock that moves only when told, so no test depends on how fast the machine is.
#[derive(Debug)]
struct Frozen(std::sync::Mutex<std::time::Instant>);

impl Ticker for Frozen {
    fn now(&self) -> std::time::Instant {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Frozen {
    fn advance(&self, d: Duration) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += d;
    }
}

async fn paced(scale: f64) -> (SimHandle, std::sync::Arc<Frozen>) {
    let ticker = std::sync::Arc::new(Frozen(std::sync::Mutex::new(std::time::Instant::now())));
    let sim = builder(AFTER_CLOSE).pacing_scale(scale).ticker(ticker.clone()).start().await.expect("sim");
    (sim, ticker)
}

const SYMBOLS: [&str; 5] = ["SPY", "QQQ", "AAPL", "MSFT", "BRK B"];
const WHATS: [WhatToShow; 4] = [WhatToShow::Trades, WhatToShow::MidPoint, WhatToShow::Bid, WhatToShow::Ask];

/// A one-day daily-bar request for `symbol` ending `days_back` days before the frozen now.
async fn daily(c: &Client, symbol: &str, what: WhatToShow, days_back: i64) -> Result<usize, ibapi::Error> {
    let end = OffsetDateTime::from_unix_timestamp(at(AFTER_CLOSE).timestamp() - days_back * 86_400).expect("end");
    let contract = Contract::stock(symbol).build();
    c.historical_data(&contract, BarSize::Day)
        .what_to_show(what)
        .duration(IbDuration::days(1))
        .ending(end)
        .fetch()
        .await
        .map(|d| d.bars.len())
}

fn is_pacing(r: Result<usize, ibapi::Error>) -> bool {
    match r {
        Err(ibapi::Error::Notice(n)) => n.code == 162 && n.message.contains("pacing violation"),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_request_waits_fifteen_seconds_scaled() {
    // Scale 10: IB's 15 s becomes 1.5 s.
    let (sim, ticker) = paced(10.0).await;
    let c = client(&sim, 1).await;
    assert!(daily(&c, "SPY", WhatToShow::Trades, 0).await.is_ok());
    assert!(is_pacing(daily(&c, "SPY", WhatToShow::Trades, 0).await));
    ticker.advance(Duration::from_millis(1490));
    assert!(is_pacing(daily(&c, "SPY", WhatToShow::Trades, 0).await));
    ticker.advance(Duration::from_millis(10));
    assert!(daily(&c, "SPY", WhatToShow::Trades, 0).await.is_ok());
    // Faithful pacing keeps the full 15 s.
    let (sim, ticker) = paced(1.0).await;
    let c = client(&sim, 1).await;
    assert!(daily(&c, "SPY", WhatToShow::Trades, 0).await.is_ok());
    ticker.advance(Duration::from_secs(14));
    assert!(is_pacing(daily(&c, "SPY", WhatToShow::Trades, 0).await));
    ticker.advance(Duration::from_secs(1));
    assert!(daily(&c, "SPY", WhatToShow::Trades, 0).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_requests_for_one_contract_within_two_seconds() {
    let (sim, ticker) = paced(1.0).await;
    let c = client(&sim, 1).await;
    for back in 0..5 {
        assert!(daily(&c, "SPY", WhatToShow::Trades, back).await.is_ok());
    }
    assert!(is_pacing(daily(&c, "SPY", WhatToShow::Trades, 9).await));
    // Another tick type, or another contract, is another budget.
    assert!(daily(&c, "SPY", WhatToShow::MidPoint, 9).await.is_ok());
    assert!(daily(&c, "QQQ", WhatToShow::Trades, 9).await.is_ok());
    ticker.advance(Duration::from_secs(2));
    assert!(daily(&c, "SPY", WhatToShow::Trades, 9).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_per_ten_minutes_with_bid_ask_counting_twice() {
    let (sim, ticker) = paced(1.0).await;
    let c = client(&sim, 1).await;
    // 15 BID_ASK requests (weight 30) and 30 others (weight 30) fill IB's 60.
    for s in SYMBOLS {
        for back in 0..3 {
            assert!(daily(&c, s, WhatToShow::BidAsk, back).await.is_ok(), "{s} BID_ASK {back}");
            for what in [WhatToShow::Trades, WhatToShow::MidPoint] {
                assert!(daily(&c, s, what, back).await.is_ok(), "{s} {what:?} {back}");
            }
        }
    }
    assert!(is_pacing(daily(&c, "SPY", WhatToShow::Bid, 20).await), "45 requests weigh 60");
    ticker.advance(Duration::from_secs(599));
    assert!(is_pacing(daily(&c, "SPY", WhatToShow::Bid, 20).await));
    ticker.advance(Duration::from_secs(1));
    assert!(daily(&c, "SPY", WhatToShow::Bid, 20).await.is_ok(), "the window has passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_fifty_open_requests() {
    let sim =
        builder(AFTER_CLOSE).pacing_scale(1.0).fault(Fault::Stall("historical".into())).start().await.expect("sim");
    let c = std::sync::Arc::new(client(&sim, 1).await);
    let mut hung = Vec::new();
    for i in 0..50usize {
        let c = c.clone();
        let (s, what, back) = (SYMBOLS[i % 5], WHATS[(i / 5) % 4], (i / 20) as i64);
        hung.push(tokio::spawn(async move { daily(&c, s, what, back).await }));
    }
    for _ in 0..200 {
        if sim.open_historical() == 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(sim.open_historical(), 50);
    // The fifty-first is refused at once, although its contract and the 10-minute budget allow it.
    let refused = tokio::time::timeout(Duration::from_secs(3), daily(&c, "QQQ", WhatToShow::Bid, 30))
        .await
        .expect("refused at once");
    assert!(is_pacing(refused));
    for h in hung {
        h.abort();
    }
    sim.clear_faults();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_text_and_code_are_ibs() {
    let (sim, _ticker) = paced(1.0).await;
    let c = client(&sim, 1).await;
    assert!(daily(&c, "AAPL", WhatToShow::Trades, 0).await.is_ok());
    let r = daily(&c, "AAPL", WhatToShow::Trades, 0).await;
    match r {
        Err(ibapi::Error::Notice(n)) => {
            assert_eq!(n.code, 162);
            assert_eq!(
                n.message,
                "Historical Market Data Service error message:Historical data request pacing violation"
            );
        }
        other => panic!("expected 162, got {other:?}"),
    }
    assert_eq!(notice_code(daily(&c, "AAPL", WhatToShow::Trades, 0).await), 162);
}
