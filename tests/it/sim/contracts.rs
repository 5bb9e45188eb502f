//! Handshake, client ids, contract details and option chains.

use futures::StreamExt;
use ibapi::contracts::{Contract, OptionRight, SecurityType};
use ibapi::subscriptions::SubscriptionItem;

use super::{client, connect, notice_code, start, AFTER_CLOSE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_gives_account_and_server_time() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    assert!(c.server_version() >= 215 && c.server_version() <= 226);
    let time = c.server_time().await.expect("server time");
    assert_eq!(time.unix_timestamp(), super::at(AFTER_CLOSE).timestamp());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_client_id_is_refused_and_others_served() {
    let sim = start(AFTER_CLOSE).await;
    let _first = client(&sim, 5).await;
    match connect(&sim, 5).await {
        Err(ibapi::Error::ClientIdInUse { client_id }) => assert_eq!(client_id, 5),
        other => panic!("expected ClientIdInUse, got {:?}", other.map(|_| ())),
    }
    let second = client(&sim, 6).await;
    assert_eq!(second.contract_details(&Contract::stock("SPY").build()).await.expect("details").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_details_for_every_default_symbol() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    for (symbol, con_id) in
        [("SPY", 756733), ("QQQ", 320227571), ("AAPL", 265598), ("MSFT", 272093), ("BRK B", 72063691)]
    {
        let details = c.contract_details(&Contract::stock(symbol).build()).await.expect("details");
        assert_eq!(details.len(), 1, "{symbol}");
        let d = &details[0];
        assert_eq!(d.contract.contract_id, con_id);
        assert_eq!(d.contract.symbol.to_string(), symbol);
        assert_eq!(d.time_zone_id, "US/Eastern");
        assert!(d.liquid_hours[0].starts_with("20261124:0930-20261124:1600"), "{:?}", d.liquid_hours);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_symbol_is_error_200() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    assert_eq!(notice_code(c.contract_details(&Contract::stock("NOPE").build()).await), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_chain_lists_weeklies_and_monthlies_on_every_exchange() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    let mut sub = c.option_chain("SPY", SecurityType::Stock, 756733).subscribe().await.expect("chain");
    let mut chains = Vec::new();
    while let Some(item) = sub.next().await {
        match item.expect("chain item") {
            SubscriptionItem::Data(chain) => chains.push(chain),
            SubscriptionItem::Notice(_) => {}
        }
    }
    assert_eq!(chains.len(), 6);
    let smart = chains.iter().find(|c| c.exchange == "SMART").expect("SMART");
    assert_eq!(smart.underlying_contract_id, 756733);
    assert_eq!(smart.multiplier, "100");
    assert!(smart.expirations.len() >= 15, "{:?}", smart.expirations);
    assert!(smart.expirations.iter().all(|e| e.as_str() >= "20261124" && e.as_str() <= "20271231"));
    assert!(smart.expirations.contains(&"20261218".to_string()), "December monthly");
    let market = sim.market();
    let spot = market.spot_at(0, super::at(AFTER_CLOSE)).expect("spot");
    assert!(smart.strikes.iter().any(|k| *k < spot) && smart.strikes.iter().any(|k| *k > spot));
    assert!(smart.strikes.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_contract_details_and_expired_options() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    let calls = Contract {
        symbol: "SPY".into(),
        security_type: SecurityType::Option,
        last_trade_date_or_contract_month: "20261218".into(),
        right: Some(OptionRight::Call),
        exchange: "SMART".into(),
        currency: "USD".into(),
        ..Default::default()
    };
    let all = c.contract_details(&calls).await.expect("December calls");
    assert!(all.len() > 20);
    let one = &all[all.len() / 2];
    assert_eq!(one.contract.security_type, SecurityType::Option);
    assert_eq!(one.contract.multiplier, "100");
    assert_eq!(one.under_contract_id, 756733);
    assert!(one.contract.local_symbol.starts_with("SPY   261218C"), "{}", one.contract.local_symbol);
    let by_id = c
        .contract_details(&Contract { contract_id: one.contract.contract_id, ..Default::default() })
        .await
        .expect("by con_id");
    assert_eq!(by_id[0].contract.local_symbol, one.contract.local_symbol);
    // Last Friday's weekly has expired: IB no longer knows it.
    let expired = Contract::call("SPY").strike(one.contract.strike).expires_on(2026, 11, 20).build();
    assert_eq!(notice_code(c.contract_details(&expired).await), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_clients_are_served_at_once() {
    let sim = start(AFTER_CLOSE).await;
    let mut tasks = Vec::new();
    for id in 1..=4 {
        let c = client(&sim, id).await;
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            for symbol in ["SPY", "QQQ", "AAPL", "MSFT", "BRK B"] {
                n += c.contract_details(&Contract::stock(symbol).build()).await.expect("details").len();
            }
            n
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), 5);
    }
    let ids: std::collections::BTreeSet<i32> = sim.requests().iter().map(|r| r.client_id).collect();
    assert_eq!(ids.into_iter().collect::<Vec<_>>(), [1, 2, 3, 4]);
}
