//! Market data snapshots and streams, option computations, 354 and market data types.

use std::time::Duration;

use chrono::NaiveDate;
use futures::StreamExt;
use ibapi::contracts::tick_types::TickType;
use ibapi::contracts::{Contract, OptionComputation, OptionRight, SecurityType};
use ibapi::market_data::realtime::TickTypes;
use ibapi::market_data::MarketDataType;
use ibapi::subscriptions::SubscriptionItem;
use ibapi::Client;

use super::{at, client, start, AFTER_CLOSE, MIDDAY};

/// Every tick of a snapshot, up to its end marker.
async fn snapshot(c: &Client, contract: &Contract) -> Result<Vec<TickTypes>, ibapi::Error> {
    let mut sub = c.market_data(contract).snapshot().subscribe().await?;
    let mut ticks = Vec::new();
    loop {
        let item = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.expect("snapshot in time");
        match item {
            Some(Ok(SubscriptionItem::Data(TickTypes::SnapshotEnd))) | None => return Ok(ticks),
            Some(Ok(SubscriptionItem::Data(t))) => ticks.push(t),
            Some(Ok(SubscriptionItem::Notice(_))) => {}
            Some(Err(e)) => return Err(e),
        }
    }
}

fn price_of(ticks: &[TickTypes], tick: TickType) -> Option<f64> {
    ticks.iter().find_map(|t| match t {
        TickTypes::Price(p) if p.tick_type == tick => Some(p.price),
        TickTypes::PriceSize(p) if p.price_tick_type == tick => Some(p.price),
        _ => None,
    })
}

fn computation(ticks: &[TickTypes], tick: TickType) -> Option<&OptionComputation> {
    ticks.iter().find_map(|t| match t {
        TickTypes::OptionComputation(c) if c.field == tick => Some(c),
        _ => None,
    })
}

fn spy_option(expiry: &str, strike: f64, right: OptionRight) -> Contract {
    Contract {
        symbol: "SPY".into(),
        security_type: SecurityType::Option,
        last_trade_date_or_contract_month: expiry.into(),
        strike,
        right: Some(right),
        exchange: "SMART".into(),
        currency: "USD".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_snapshot_matches_the_market() {
    let sim = start(MIDDAY).await;
    let c = client(&sim, 1).await;
    let ticks = snapshot(&c, &Contract::stock("SPY").build()).await.expect("snapshot");
    let spot = sim.market().spot_at(0, at(MIDDAY)).expect("spot");
    assert_eq!(price_of(&ticks, TickType::Last), Some(spot));
    let (bid, ask) = (price_of(&ticks, TickType::Bid).expect("bid"), price_of(&ticks, TickType::Ask).expect("ask"));
    assert!(bid < spot && spot < ask);
    let day = sim.market().day_bar(0, NaiveDate::from_ymd_opt(2026, 11, 24).expect("d")).expect("day");
    assert_eq!(price_of(&ticks, TickType::Open), Some(day.open));
    assert_eq!(price_of(&ticks, TickType::Close), Some(day.prev_close));
    assert!(ticks.iter().any(|t| matches!(t, TickTypes::MarketDataType(MarketDataType::Realtime))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_computations_agree_with_the_surface() {
    let sim = start(MIDDAY).await;
    let c = client(&sim, 1).await;
    let truth = twslake::sim::truth::truth(sim.market(), "SPY", at(MIDDAY)).expect("truth");
    let slice = truth.expiries.iter().find(|e| e.expiry == "20261218").expect("slice");
    let atm = slice
        .strikes
        .iter()
        .min_by(|a, b| (a.strike - truth.spot).abs().total_cmp(&(b.strike - truth.spot).abs()))
        .expect("atm");
    let ticks = snapshot(&c, &spy_option("20261218", atm.strike, OptionRight::Call)).await.expect("option snapshot");
    let model = computation(&ticks, TickType::ModelOption).expect("model computation");
    assert!((model.implied_volatility.expect("iv") - atm.iv).abs() < 1e-9);
    assert!((model.option_price.expect("price") - atm.call).abs() < 1e-9);
    assert_eq!(model.underlying_price, Some(truth.spot));
    let delta = model.delta.expect("delta");
    assert!(delta > 0.3 && delta < 0.7, "{delta}");
    assert!(model.gamma.expect("gamma") > 0.0 && model.vega.expect("vega") > 0.0 && model.theta.expect("theta") < 0.0);
    let bid_iv = computation(&ticks, TickType::BidOption).and_then(|c| c.implied_volatility).expect("bid iv");
    let ask_iv = computation(&ticks, TickType::AskOption).and_then(|c| c.implied_volatility).expect("ask iv");
    assert!(bid_iv < atm.iv && atm.iv < ask_iv);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untraded_options_send_the_not_computed_sentinels() {
    let sim = start(MIDDAY).await;
    let c = client(&sim, 1).await;
    let chain = sim.market().chain(0, NaiveDate::from_ymd_opt(2026, 11, 24).expect("d"));
    let far = chain.expiries.last().expect("far");
    let expiry = far.date.format("%Y%m%d").to_string();
    let mut seen = false;
    for k in far.strikes.iter().take(15) {
        let ticks = snapshot(&c, &spy_option(&expiry, *k, OptionRight::Put)).await.expect("snapshot");
        if price_of(&ticks, TickType::Last).is_none() {
            let last = computation(&ticks, TickType::LastOption).expect("last computation");
            assert_eq!(
                (last.implied_volatility, last.delta, last.option_price, last.gamma, last.underlying_price),
                (None, None, None, None, None)
            );
            seen = true;
            break;
        }
    }
    assert!(seen, "some deep out-of-the-money put has not traded today");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_update_until_cancelled() {
    let sim = start(MIDDAY).await;
    let c = client(&sim, 1).await;
    let mut sub = c.market_data(&Contract::stock("QQQ").build()).subscribe().await.expect("stream");
    let mut prices = 0;
    while prices < 10 {
        match tokio::time::timeout(Duration::from_secs(10), sub.next()).await.expect("ticks keep coming") {
            Some(Ok(SubscriptionItem::Data(TickTypes::PriceSize(_)))) => prices += 1,
            Some(Ok(_)) => {}
            other => panic!("stream ended: {other:?}"),
        }
    }
    drop(sub);
    for _ in 0..100 {
        if sim.requests().iter().any(|r| r.kind == "cancel_market_data") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("dropping the subscription sends a cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribed_symbol_is_354_unless_delayed() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    match snapshot(&c, &Contract::stock("MSFT").build()).await {
        Err(ibapi::Error::Notice(n)) => assert_eq!(n.code, 354),
        other => panic!("expected 354, got {other:?}"),
    }
    c.switch_market_data_type(MarketDataType::Delayed).await.expect("switch");
    let ticks = snapshot(&c, &Contract::stock("MSFT").build()).await.expect("delayed data");
    assert!(price_of(&ticks, TickType::DelayedLast).is_some());
    assert!(ticks.iter().any(|t| matches!(t, TickTypes::MarketDataType(MarketDataType::Delayed))));
    match snapshot(&c, &Contract::stock("NOPE").build()).await {
        Err(ibapi::Error::Notice(n)) => assert_eq!(n.code, 200),
        other => panic!("expected 200, got {other:?}"),
    }
}
