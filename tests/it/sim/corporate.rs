//! Corporate actions: AAPL's 4:1 split (ex-date 2026-06-15) served as of the simulator's clock,
//! `ADJUSTED_LAST` back-adjusted for dividends, and the schedule in the truth.

use std::sync::Arc;

use chrono::NaiveDate;
use ibapi::contracts::Contract;
use ibapi::market_data::historical::{Bar, BarSize, BarTimestamp, Duration, WhatToShow};
use time::OffsetDateTime;

use super::{at, client, notice_code};
use twslake::calendar;
use twslake::sim::market::corporate::internal_amount;
use twslake::sim::{ManualClock, Sim, SimHandle};

/// AAPL's index among the default symbols.
const AAPL: usize = 2;

fn d(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn date_of(b: &Bar) -> NaiveDate {
    match b.date {
        BarTimestamp::Date(x) => NaiveDate::from_ymd_opt(x.year(), x.month() as u32, x.day() as u32).expect("date"),
        other => panic!("expected a daily bar, got {other:?}"),
    }
}

async fn sim_at(now: &str) -> (SimHandle, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(at(now)));
    let sim = Sim::builder().seed(7).pacing_scale(1000.0).clock(clock.clone()).start().await.expect("sim starts");
    (sim, clock)
}

fn odt(s: &str) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(at(s).timestamp()).expect("instant")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_split_adjusted_as_of_the_clock() {
    // Wednesday 2026-06-10 after the close: the split is five days ahead.
    let (sim, clock) = sim_at("2026-06-10T21:00:00Z").await;
    let c = client(&sim, 1).await;
    let aapl = Contract::stock("AAPL").build();
    let ask = |size, dur, what| {
        let c = &c;
        let aapl = &aapl;
        async move {
            c.historical_data(aapl, size)
                .what_to_show(what)
                .duration(dur)
                .ending(odt("2026-06-05T20:00:00Z"))
                .fetch()
                .await
        }
    };
    let daily_before = ask(BarSize::Day, Duration::days(5), WhatToShow::Trades).await.expect("daily bars");
    let minutes_before = ask(BarSize::Min5, Duration::days(1), WhatToShow::Trades).await.expect("5-minute bars");
    let mid_before = ask(BarSize::Day, Duration::days(5), WhatToShow::MidPoint).await.expect("midpoint bars");
    // Before the split the bars are the model's own (unadjusted) prices.
    for b in &daily_before.bars {
        let m = sim.market().day_bar(AAPL, date_of(b)).expect("model bar");
        assert_eq!((b.open, b.close, b.volume), (m.open, m.close, m.volume as f64), "{b:?}");
    }
    // The same requests on Saturday 2026-06-20, after the ex-date.
    clock.set(at("2026-06-20T15:00:00Z"));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let daily_after = ask(BarSize::Day, Duration::days(5), WhatToShow::Trades).await.expect("daily bars");
    let minutes_after = ask(BarSize::Min5, Duration::days(1), WhatToShow::Trades).await.expect("5-minute bars");
    let mid_after = ask(BarSize::Day, Duration::days(5), WhatToShow::MidPoint).await.expect("midpoint bars");
    for (before, after) in [(&daily_before, &daily_after), (&minutes_before, &minutes_after), (&mid_before, &mid_after)]
    {
        assert_eq!(before.bars.len(), after.bars.len());
        assert!(!before.bars.is_empty());
        for (b, a) in before.bars.iter().zip(&after.bars) {
            assert_eq!(b.date, a.date);
            for (x, y) in [(b.open, a.open), (b.high, a.high), (b.low, a.low), (b.close, a.close)] {
                // Adjusted prices are rounded to cents: ×4 within 2 cents of the original.
                assert!((x - 4.0 * y).abs() <= 0.0201, "{x} against 4 × {y}");
                assert!(x > 100.0 && y < x / 3.0, "the adjustment happened: {x} → {y}");
            }
            assert_eq!(a.volume, if b.volume < 0.0 { b.volume } else { 4.0 * b.volume }, "volumes × 4");
            assert_eq!(a.count, b.count, "trade counts stay");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adjusted_series_has_no_jump_at_the_ex_date() {
    let (sim, _clock) = sim_at("2026-06-20T15:00:00Z").await;
    let c = client(&sim, 1).await;
    let aapl = Contract::stock("AAPL").build();
    let data = c
        .historical_data(&aapl, BarSize::Day)
        .what_to_show(WhatToShow::Trades)
        .duration(Duration::days(10))
        .ending(odt("2026-06-19T20:00:00Z"))
        .fetch()
        .await
        .expect("bars");
    let days: Vec<_> = data.bars.iter().map(date_of).collect();
    assert!(days.contains(&d("2026-06-12")) && days.contains(&d("2026-06-15")), "{days:?}");
    for w in data.bars.windows(2) {
        let (prev, bar) = (&w[0], &w[1]);
        let model = sim.market().day_bar(AAPL, date_of(bar)).expect("model bar");
        // The served overnight move is the model's own (within the adjustment's rounding).
        let served = (bar.open / prev.close).ln();
        let true_move = (model.open / model.prev_close).ln();
        assert!((served - true_move).abs() < 2e-4, "{}: {served} against {true_move}", date_of(bar));
        assert!(served.abs() < 0.1, "{}: a jump of {served}", date_of(bar));
    }
    // The live market after the split trades on the new basis too.
    let (sim2, _clock2) = sim_at("2026-06-16T17:00:00Z").await;
    let spot = sim2.market().spot_at(AAPL, at("2026-06-16T17:00:00Z")).expect("model spot");
    let truth = twslake::sim::truth::truth(sim2.market(), "AAPL", at("2026-06-16T17:00:00Z")).expect("truth");
    assert!((truth.spot - spot / 4.0).abs() < 1e-9, "truth spot {} against {spot} / 4", truth.spot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjusted_last_is_back_adjusted_for_dividends_and_splits() {
    let now = "2026-11-24T21:30:00Z";
    let (sim, _clock) = sim_at(now).await;
    let c = client(&sim, 1).await;
    let market = sim.market();
    for (symbol, i) in [("SPY", 0usize), ("AAPL", AAPL)] {
        let contract = Contract::stock(symbol).build();
        let year = |what| {
            let (c, contract) = (&c, &contract);
            async move {
                c.historical_data(contract, BarSize::Day).what_to_show(what).duration(Duration::years(1)).fetch().await
            }
        };
        let trades = year(WhatToShow::Trades).await.expect("trades");
        let adjusted = year(WhatToShow::AdjustedLast).await.expect("adjusted last");
        assert_eq!(trades.bars.len(), adjusted.bars.len());
        let spec = market.spec(i);
        let split_now = spec.split_factor(d("2026-11-24"));
        let mut differing = 0;
        for (t, a) in trades.bars.iter().zip(&adjusted.bars) {
            let day = date_of(t);
            assert_eq!(day, date_of(a));
            // Independently of the simulator: every dividend going ex after the bar, as a
            // fraction of the close before its ex-date, both in the never-split basis.
            let factor: f64 = spec
                .dividends
                .iter()
                .filter(|x| x.ex_date > day && x.ex_date <= d("2026-11-24"))
                .map(|x| {
                    let prev = market.day_bar(i, calendar::prev_trading_day(x.ex_date)).expect("close").close;
                    1.0 - internal_amount(spec, x) / prev
                })
                .product();
            let model = market.day_bar(i, day).expect("model bar");
            let want = model.close / split_now * factor;
            assert!((a.close - want).abs() < 6e-5, "{symbol} {day}: {} against {want}", a.close);
            assert!((a.close / t.close - factor).abs() < 1e-4 * factor.max(1.0) + 0.006 / t.close, "{symbol} {day}");
            assert_eq!(a.volume, t.volume, "volumes are split-adjusted only");
            differing += usize::from(factor < 1.0 - 1e-4);
        }
        assert!(differing > 150, "{symbol}: {differing} bars carry a dividend adjustment");
        // The last bar is after the last ex-date: nothing to adjust beyond the rounding (cents
        // for TRADES, 1/10,000 for ADJUSTED_LAST).
        let (t, a) = (trades.bars.last().expect("bar"), adjusted.bars.last().expect("bar"));
        assert!((t.close - a.close).abs() <= 0.00501, "{} against {}", t.close, a.close);
    }
    // IB serves ADJUSTED_LAST in daily or longer bars only.
    let spy = Contract::stock("SPY").build();
    let minutes = c
        .historical_data(&spy, BarSize::Min5)
        .what_to_show(WhatToShow::AdjustedLast)
        .duration(Duration::days(1))
        .fetch()
        .await;
    assert_eq!(notice_code(minutes), twslake::domain::codes::REQUEST_INVALID);
}

#[test]
fn the_truth_lists_the_schedule() {
    let clock = Arc::new(ManualClock::new(at("2026-03-02T15:00:00Z")));
    let market = twslake::sim::market::Market::new(7, twslake::sim::market::SymbolSpec::defaults(), clock);
    let t = twslake::sim::truth::truth(&market, "AAPL", at("2026-03-02T15:00:00Z")).expect("truth");
    assert_eq!(t.splits.len(), 1);
    assert_eq!((t.splits[0].ex_date, t.splits[0].ratio), (d("2026-06-15"), 4.0));
    // A year of listed expiries sees four quarterly payments, each on a session. The truth is
    // in the basis of its clock (before the split): a payment after the split shows the cash per
    // old share, 4 × what the schedule states per new share.
    let year: Vec<_> = t.dividends.iter().filter(|x| x.ex_date < d("2027-03-01")).collect();
    assert_eq!(year.len(), 4, "{:?}", t.dividends);
    assert!(year.iter().all(|x| calendar::is_trading_day(x.ex_date) && x.t > 0.0));
    let spec = market.spec(AAPL);
    for x in &year {
        let stated = spec.dividends.iter().find(|s| s.ex_date == x.ex_date).expect("in the schedule").amount;
        let ratio = if x.ex_date >= d("2026-06-15") { 4.0 } else { 1.0 };
        assert!((x.amount - stated * ratio).abs() < 1e-9, "{}: {} against {stated} × {ratio}", x.ex_date, x.amount);
    }
    // Sized from the trend price (the path wanders around it): a year ≈ yield × price.
    let annual: f64 = year.iter().map(|x| x.amount).sum();
    let trend = spec.ref_price * spec.growth.exp();
    assert!((annual / trend / spec.dividend_yield - 1.0).abs() < 0.1, "annual {annual} at trend {trend}");
    // Each forward is the spot less the dividends to its expiry, grown at the rate.
    for e in &t.expiries {
        let expiry = NaiveDate::parse_from_str(&e.expiry, "%Y%m%d").expect("expiry");
        let pv: f64 =
            t.dividends.iter().filter(|x| x.ex_date <= expiry).map(|x| x.amount * (-t.rate * x.t).exp()).sum();
        let want = (t.spot - pv) * (t.rate * e.t).exp();
        assert!((e.forward - want).abs() < 1e-9, "{}: {} against {want}", e.expiry, e.forward);
    }
    // BRK B pays no dividend.
    let brk = twslake::sim::truth::truth(&market, "BRK B", at("2026-03-02T15:00:00Z")).expect("truth");
    assert!(brk.dividends.is_empty() && brk.splits.is_empty());
}
