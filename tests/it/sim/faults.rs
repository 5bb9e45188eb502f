//! Each injected fault as the real client sees it.

use std::time::Duration;

use ibapi::contracts::Contract;
use ibapi::market_data::historical::{BarSize, Duration as IbDuration, WhatToShow};
use ibapi::Client;

use super::{builder, client, connect, start, AFTER_CLOSE};
use twslake::sim::Fault;

async fn details_ok(c: &Client) -> bool {
    c.contract_details(&Contract::stock("SPY").build()).await.is_ok_and(|d| d.len() == 1)
}

/// Retries `f` for up to ten seconds (the client reconnects with a backoff of a second or two).
async fn eventually(c: &Client) -> bool {
    for _ in 0..40 {
        if details_ok(c).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_is_a_reset_then_the_client_reconnects() {
    // Handshake frames: NextValidId, ManagedAccounts and three farm notices; the sixth message is
    // the first answer, after which the socket goes.
    let sim = builder(AFTER_CLOSE).fault(Fault::DropAfter(6)).start().await.expect("sim");
    let c = client(&sim, 1).await;
    let first = c.contract_details(&Contract::stock("SPY").build()).await;
    assert!(matches!(first, Ok(_) | Err(ibapi::Error::ConnectionReset)), "{first:?}");
    assert!(eventually(&c).await, "served again after the reconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_on_command_resets_and_recovers() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    assert!(details_ok(&c).await);
    sim.drop_connections();
    assert!(eventually(&c).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_request_times_out_and_is_cancelled() {
    let sim = builder(AFTER_CLOSE).fault(Fault::Stall("historical".into())).start().await.expect("sim");
    let c = Client::builder()
        .address(sim.address())
        .client_id(1)
        .one_shot_timeout(Duration::from_millis(800))
        .connect()
        .await
        .expect("client");
    let contract = Contract::stock("SPY").build();
    let r = c
        .historical_data(&contract, BarSize::Day)
        .what_to_show(WhatToShow::Trades)
        .duration(IbDuration::days(5))
        .fetch()
        .await;
    assert!(matches!(r, Err(ibapi::Error::Timeout)), "{r:?}");
    for _ in 0..100 {
        if sim.requests().iter().any(|r| r.kind == "cancel_historical_data") {
            assert_eq!(sim.open_historical(), 0, "the cancel frees the open slot");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the client cancels what timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectivity_notices_reach_the_notice_stream() {
    let sim = builder(AFTER_CLOSE).fault(Fault::Notice { code: 1100, after: 5 }).start().await.expect("sim");
    let (c, mut notices) =
        Client::builder().address(sim.address()).client_id(1).connect_with_notice_stream().await.expect("client");
    let mut codes = Vec::new();
    while !codes.contains(&1100) {
        let n = tokio::time::timeout(Duration::from_secs(5), notices.next())
            .await
            .expect("notice in time")
            .expect("stream open");
        codes.push(n.code);
    }
    assert!(codes.contains(&2104), "farm notices come first: {codes:?}");
    sim.send_notice(1102);
    loop {
        let n =
            tokio::time::timeout(Duration::from_secs(5), notices.next()).await.expect("1102 in time").expect("open");
        if n.code == 1102 {
            assert!(n.message.contains("restored"));
            break;
        }
    }
    assert!(details_ok(&c).await, "requests still served after 1100/1102");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frame_makes_the_client_reconnect() {
    let sim = builder(AFTER_CLOSE).fault(Fault::MalformedAfter(5)).start().await.expect("sim");
    let c = client(&sim, 1).await;
    assert!(eventually(&c).await, "the client resynchronises by reconnecting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_rejected() {
    let sim = builder(AFTER_CLOSE).fault(Fault::RefuseConnections).start().await.expect("sim");
    let r = connect(&sim, 1).await;
    assert!(
        matches!(
            r,
            Err(ibapi::Error::ConnectionRejected(_)) | Err(ibapi::Error::Io(_)) | Err(ibapi::Error::ConnectionReset)
        ),
        "{:?}",
        r.map(|_| ())
    );
    sim.refuse_connections(false);
    assert!(details_ok(&client(&sim, 1).await).await);
}
