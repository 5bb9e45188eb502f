//! Historical bars and head timestamps, checked against the market model.

use chrono::{Datelike, NaiveDate};
use ibapi::contracts::{Contract, OptionRight, SecurityType};
use ibapi::market_data::historical::{Bar, BarSize, BarTimestamp, Duration, HistoricalData, WhatToShow};
use ibapi::Client;
use time::OffsetDateTime;

use super::{at, client, notice_code, start, AFTER_CLOSE};
use twslake::calendar;

fn odt(s: &str) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(at(s).timestamp()).expect("instant")
}

fn date_of(b: &Bar) -> NaiveDate {
    match b.date {
        BarTimestamp::Date(d) => NaiveDate::from_ymd_opt(d.year(), d.month() as u32, d.day() as u32).expect("date"),
        other => panic!("expected a daily bar, got {other:?}"),
    }
}

fn epoch_of(b: &Bar) -> i64 {
    match b.date {
        BarTimestamp::DateTime(t) => t.unix_timestamp(),
        other => panic!("expected an intraday bar, got {other:?}"),
    }
}

async fn fetch(
    c: &Client,
    contract: &Contract,
    size: BarSize,
    d: Duration,
    what: WhatToShow,
    end: &str,
) -> Result<HistoricalData, ibapi::Error> {
    c.historical_data(contract, size).what_to_show(what).duration(d).ending(odt(end)).fetch().await
}

fn spy() -> Contract {
    Contract::stock("SPY").build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_bars_are_the_market_model() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    let data =
        fetch(&c, &spy(), BarSize::Day, Duration::months(1), WhatToShow::Trades, AFTER_CLOSE).await.expect("bars");
    let days = calendar::trading_days(
        NaiveDate::from_ymd_opt(2026, 10, 24).expect("d"),
        NaiveDate::from_ymd_opt(2026, 11, 24).expect("d"),
    );
    assert_eq!(data.bars.iter().map(date_of).collect::<Vec<_>>(), days);
    for b in &data.bars {
        let m = sim.market().day_bar(0, date_of(b)).expect("model bar");
        assert_eq!((b.open, b.high, b.low, b.close, b.volume), (m.open, m.high, m.low, m.close, m.volume as f64));
        assert!(b.low <= b.open.min(b.close) && b.high >= b.open.max(b.close) && b.count > 0);
    }
    assert_eq!(data.end.unix_timestamp(), at(AFTER_CLOSE).timestamp());
    assert!(data.start < data.end);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intraday_bars_aggregate_exactly_to_the_daily_bar() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    for contract in [spy(), Contract::stock("BRK B").build()] {
        let daily = fetch(&c, &contract, BarSize::Day, Duration::days(1), WhatToShow::Trades, AFTER_CLOSE)
            .await
            .expect("daily");
        let five = fetch(&c, &contract, BarSize::Min5, Duration::days(1), WhatToShow::Trades, AFTER_CLOSE)
            .await
            .expect("5 min");
        let day = daily.bars.last().expect("one day");
        assert_eq!(five.bars.len(), 78);
        // 09:30 New York on 2026-11-24 is 14:30 UTC.
        assert_eq!(epoch_of(&five.bars[0]), at("2026-11-24T14:30:00Z").timestamp());
        assert_eq!(epoch_of(&five.bars[77]), at("2026-11-24T20:55:00Z").timestamp());
        assert_eq!(five.bars[0].open, day.open);
        assert_eq!(five.bars[77].close, day.close);
        assert_eq!(five.bars.iter().map(|b| b.high).fold(f64::MIN, f64::max), day.high);
        assert_eq!(five.bars.iter().map(|b| b.low).fold(f64::MAX, f64::min), day.low);
        assert_eq!(five.bars.iter().map(|b| b.volume).sum::<f64>(), day.volume);
        assert_eq!(five.bars.iter().map(|b| b.count).sum::<i32>(), day.count);
        let wap = five.bars.iter().map(|b| b.wap * b.volume).sum::<f64>() / day.volume;
        assert!((wap - day.wap).abs() < 1e-3, "{wap} vs {}", day.wap);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_bars_aggregate_to_their_minute() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    let minutes =
        fetch(&c, &spy(), BarSize::Min, Duration::days(1), WhatToShow::Trades, AFTER_CLOSE).await.expect("minutes");
    assert_eq!(minutes.bars.len(), 390);
    let secs = fetch(&c, &spy(), BarSize::Sec, Duration::seconds(60), WhatToShow::Trades, "2026-11-24T15:31:00Z")
        .await
        .expect("seconds");
    assert_eq!(secs.bars.len(), 60);
    let minute =
        minutes.bars.iter().find(|b| epoch_of(b) == at("2026-11-24T15:30:00Z").timestamp()).expect("10:30 bar");
    assert_eq!(secs.bars[0].open, minute.open);
    assert_eq!(secs.bars[59].close, minute.close);
    assert_eq!(secs.bars.iter().map(|b| b.high).fold(f64::MIN, f64::max), minute.high);
    assert_eq!(secs.bars.iter().map(|b| b.low).fold(f64::MAX, f64::min), minute.low);
    assert_eq!(secs.bars.iter().map(|b| b.volume).sum::<f64>(), minute.volume);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holidays_and_early_closes_follow_the_nyse() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    // Thanksgiving 2025 is a holiday; the Friday after closes at 13:00.
    let week = fetch(&c, &spy(), BarSize::Day, Duration::weeks(1), WhatToShow::Trades, "2025-11-29T00:00:00Z")
        .await
        .expect("week");
    let dates: Vec<String> = week.bars.iter().map(|b| date_of(b).format("%m%d").to_string()).collect();
    assert_eq!(dates, ["1124", "1125", "1126", "1128"]);
    let friday = fetch(&c, &spy(), BarSize::Min, Duration::days(1), WhatToShow::Trades, "2025-11-29T00:00:00Z")
        .await
        .expect("early close");
    assert_eq!(friday.bars.len(), 210);
    assert_eq!(epoch_of(friday.bars.last().expect("bar")), at("2025-11-28T17:59:00Z").timestamp());
    let weekend =
        fetch(&c, &spy(), BarSize::Hour, Duration::seconds(3600), WhatToShow::Trades, "2025-11-30T12:00:00Z").await;
    assert_eq!(notice_code(weekend), 162);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_series_are_consistent_with_trades() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    let contract = spy();
    let get = |w| fetch(&c, &contract, BarSize::Min30, Duration::days(1), w, AFTER_CLOSE);
    let (trades, mid, bid, ask, bid_ask) = (
        get(WhatToShow::Trades).await,
        get(WhatToShow::MidPoint).await,
        get(WhatToShow::Bid).await,
        get(WhatToShow::Ask).await,
        get(WhatToShow::BidAsk).await,
    );
    let (trades, mid, bid, ask, bid_ask) = (
        trades.expect("t").bars,
        mid.expect("m").bars,
        bid.expect("b").bars,
        ask.expect("a").bars,
        bid_ask.expect("ba").bars,
    );
    assert_eq!(trades.len(), 13);
    for i in 0..trades.len() {
        assert_eq!(mid[i].close, trades[i].close);
        assert!((bid[i].high - (trades[i].high - 0.01)).abs() < 1e-9);
        assert!((ask[i].low - (trades[i].low + 0.01)).abs() < 1e-9);
        assert_eq!(bid_ask[i].high, ask[i].high);
        assert_eq!(bid_ask[i].low, bid[i].low);
        assert!(bid_ask[i].open < bid_ask[i].close, "average bid below average ask");
        assert_eq!(mid[i].volume, -1.0);
    }
}

fn option(expiry: &str, strike: f64, right: OptionRight) -> Contract {
    Contract {
        symbol: "SPY".into(),
        security_type: SecurityType::Option,
        last_trade_date_or_contract_month: expiry.into(),
        strike,
        right: Some(right),
        exchange: "SMART".into(),
        currency: "USD".into(),
        multiplier: "100".into(),
        ..Default::default()
    }
}

/// A listed strike near the money for the 2026-12-18 expiry.
fn atm_strike(sim: &twslake::sim::SimHandle) -> f64 {
    let spot = sim.market().spot_at(0, at(AFTER_CLOSE)).expect("spot");
    let chain = sim.market().chain(0, NaiveDate::from_ymd_opt(2026, 11, 24).expect("d"));
    let e = chain.expiry(NaiveDate::from_ymd_opt(2026, 12, 18).expect("d")).expect("listed");
    e.strikes.iter().copied().min_by(|a, b| (a - spot).abs().total_cmp(&(b - spot).abs())).expect("strike")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn option_bars_price_off_the_known_surface() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    let k = atm_strike(&sim);
    let contract = option("20261218", k, OptionRight::Call);
    let mid = fetch(&c, &contract, BarSize::Day, Duration::days(5), WhatToShow::MidPoint, AFTER_CLOSE)
        .await
        .expect("option bars");
    assert_eq!(mid.bars.len(), 5);
    let con_id = c.contract_details(&contract).await.expect("details")[0].contract.contract_id;
    let by_id = Contract { contract_id: con_id, exchange: "SMART".into(), ..Default::default() };
    let same =
        fetch(&c, &by_id, BarSize::Day, Duration::days(5), WhatToShow::MidPoint, AFTER_CLOSE).await.expect("by con_id");
    assert_eq!(same.bars, mid.bars, "a con_id alone names the option");
    let minutes = fetch(&c, &contract, BarSize::Min, Duration::days(1), WhatToShow::MidPoint, AFTER_CLOSE)
        .await
        .expect("minutes");
    let last = mid.bars.last().expect("bar");
    assert_eq!(minutes.bars.len(), 390);
    assert_eq!(minutes.bars[389].close, last.close);
    assert_eq!(minutes.bars.iter().map(|b| b.high).fold(f64::MIN, f64::max), last.high);
    // The close's mid sits within a cent or two of the surface's price at the close.
    let truth = twslake::sim::truth::truth(sim.market(), "SPY", at("2026-11-24T21:00:00Z")).expect("truth");
    let slice = truth.expiries.iter().find(|e| e.expiry == "20261218").expect("slice");
    let model = slice.strikes.iter().find(|s| s.strike == k).expect("strike").call;
    assert!((last.close - model).abs() < 0.03, "{} vs {model}", last.close);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untraded_options_answer_empty_and_expired_ones_are_refused() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    let chain = sim.market().chain(0, NaiveDate::from_ymd_opt(2026, 11, 24).expect("d"));
    let far = chain.expiries.last().expect("far expiry");
    let expiry = far.date.format("%Y%m%d").to_string();
    let mut empty = 0;
    for k in far.strikes.iter().take(12) {
        let data = fetch(
            &c,
            &option(&expiry, *k, OptionRight::Put),
            BarSize::Day,
            Duration::days(1),
            WhatToShow::Trades,
            AFTER_CLOSE,
        )
        .await;
        if data.expect("untraded is not an error").bars.is_empty() {
            empty += 1;
        }
    }
    assert!(empty > 0, "deep out-of-the-money puts sometimes do not trade");
    let expired = option("20261120", atm_strike(&sim), OptionRight::Call);
    assert_eq!(
        notice_code(fetch(&c, &expired, BarSize::Day, Duration::days(5), WhatToShow::Trades, AFTER_CLOSE).await),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_follow_ibs_table_and_rules() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    let refused = [
        (BarSize::Min, Duration::years(1)),
        (BarSize::Sec, Duration::days(2)),
        (BarSize::Sec5, Duration::seconds(7200)),
        (BarSize::Min, Duration::months(1)),
    ];
    for (size, d) in refused {
        assert_eq!(
            notice_code(fetch(&c, &spy(), size, d, WhatToShow::Trades, AFTER_CLOSE).await),
            162,
            "{size:?} {d:?}"
        );
    }
    assert!(fetch(&c, &spy(), BarSize::Min30, Duration::months(1), WhatToShow::Trades, AFTER_CLOSE).await.is_ok());
    // Bars of 30 s or less are not kept beyond six months.
    let old =
        fetch(&c, &spy(), BarSize::Sec30, Duration::seconds(3600), WhatToShow::Trades, "2025-01-06T16:00:00Z").await;
    assert_eq!(notice_code(old), 162);
    let unknown =
        fetch(&c, &Contract::stock("NOPE").build(), BarSize::Day, Duration::days(1), WhatToShow::Trades, AFTER_CLOSE)
            .await;
    assert_eq!(notice_code(unknown), 200);
    let before = fetch(&c, &spy(), BarSize::Day, Duration::days(5), WhatToShow::Trades, "1999-06-01T00:00:00Z").await;
    assert_eq!(notice_code(before), 162);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_timestamps() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    let head =
        c.head_timestamp(&spy(), WhatToShow::Trades, ibapi::market_data::TradingHours::Regular).await.expect("head");
    assert_eq!(head.unix_timestamp(), at("2000-01-03T14:30:00Z").timestamp());
    let k = atm_strike(&sim);
    let opt = c
        .head_timestamp(
            &option("20261218", k, OptionRight::Put),
            WhatToShow::Trades,
            ibapi::market_data::TradingHours::Regular,
        )
        .await;
    let listed = opt.expect("option head").unix_timestamp();
    assert!(listed < at("2026-01-01T00:00:00Z").timestamp() && listed > at("2025-11-01T00:00:00Z").timestamp());
    let unknown = c
        .head_timestamp(&Contract::stock("NOPE").build(), WhatToShow::Trades, ibapi::market_data::TradingHours::Regular)
        .await;
    assert_eq!(notice_code(unknown), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weekly_and_monthly_bars_aggregate_daily_bars() {
    let sim = start(AFTER_CLOSE).await;
    let c = client(&sim, 1).await;
    let days =
        fetch(&c, &spy(), BarSize::Day, Duration::years(1), WhatToShow::Trades, AFTER_CLOSE).await.expect("days").bars;
    let weeks = fetch(&c, &spy(), BarSize::Week, Duration::years(1), WhatToShow::Trades, AFTER_CLOSE)
        .await
        .expect("weeks")
        .bars;
    let months = fetch(&c, &spy(), BarSize::Month, Duration::years(1), WhatToShow::Trades, AFTER_CLOSE)
        .await
        .expect("months")
        .bars;
    assert!((52..=54).contains(&weeks.len()), "{}", weeks.len());
    assert!((12..=13).contains(&months.len()), "{}", months.len());
    for (bars, key) in [(&weeks, 0u8), (&months, 1u8)] {
        let group = |d: NaiveDate| {
            if key == 0 {
                d.iso_week().week() + 100 * d.iso_week().year() as u32
            } else {
                d.month() + 100 * d.year() as u32
            }
        };
        for b in bars.iter() {
            let members: Vec<&Bar> = days.iter().filter(|d| group(date_of(d)) == group(date_of(b))).collect();
            assert_eq!(date_of(members[0]), date_of(b), "dated by the first session");
            assert_eq!(b.open, members[0].open);
            assert_eq!(b.close, members[members.len() - 1].close);
            assert_eq!(b.high, members.iter().map(|d| d.high).fold(f64::MIN, f64::max));
            assert_eq!(b.volume, members.iter().map(|d| d.volume).sum::<f64>());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_market_is_a_function_of_the_seed() {
    let bars = |seed: u64| async move {
        let sim = super::builder(AFTER_CLOSE).seed(seed).start().await.expect("sim");
        let c = client(&sim, 1).await;
        fetch(&c, &spy(), BarSize::Min15, Duration::days(2), WhatToShow::Trades, AFTER_CLOSE).await.expect("bars").bars
    };
    let (a, b, other) = (bars(7).await, bars(7).await, bars(8).await);
    assert_eq!(a.len(), 52);
    assert_eq!(a, b);
    assert_ne!(a, other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_up_to_date_streams_the_latest_bar_until_cancelled() {
    use futures::StreamExt;
    use ibapi::market_data::historical::HistoricalBarUpdate;
    use ibapi::subscriptions::SubscriptionItem;
    let sim = start(super::MIDDAY).await;
    let c = client(&sim, 1).await;
    let contract = spy();
    let mut sub = c
        .historical_data(&contract, BarSize::Min5)
        .what_to_show(WhatToShow::Trades)
        .duration(Duration::days(1))
        .stream()
        .await
        .expect("stream");
    let (mut initial, mut ended, mut update) = (None, false, None);
    while update.is_none() {
        let item =
            tokio::time::timeout(std::time::Duration::from_secs(10), sub.next()).await.expect("in time").expect("open");
        match item.expect("item") {
            SubscriptionItem::Data(HistoricalBarUpdate::Historical(d)) => initial = Some(d.bars),
            SubscriptionItem::Data(HistoricalBarUpdate::End { .. }) => ended = true,
            SubscriptionItem::Data(HistoricalBarUpdate::Update(b)) => update = Some(b),
            _ => {}
        }
    }
    let initial = initial.expect("the bars came first");
    assert!(ended, "then the end message");
    // At 12:00 New York the last completed 5-minute bar starts at 11:55.
    assert_eq!(initial.len(), 30);
    assert_eq!(update.expect("update"), *initial.last().expect("bar"));
    drop(sub);
    for _ in 0..100 {
        if sim.requests().iter().any(|r| r.kind == "cancel_historical_data") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("dropping the stream cancels it");
}
