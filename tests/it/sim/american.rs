//! American exercise: the simulator's mids of American-style classes invert, with the American
//! pricer and the truth's inputs, to the truth's vols; early exercise is worth something.

use futures::StreamExt;
use ibapi::contracts::tick_types::TickType;
use ibapi::contracts::{Contract, OptionRight, SecurityType};
use ibapi::market_data::realtime::TickTypes;
use ibapi::subscriptions::SubscriptionItem;

use super::{at, client, start, MIDDAY};
use twslake::pricing::{American, Dividend};
use twslake::sim::truth::{truth, ExpiryTruth, Truth};

fn dividends(t: &Truth, slice: &ExpiryTruth) -> Vec<Dividend> {
    let expiry = chrono::NaiveDate::parse_from_str(&slice.expiry, "%Y%m%d").expect("expiry");
    t.dividends.iter().filter(|d| d.ex_date <= expiry).map(|d| Dividend { t: d.t, amount: d.amount }).collect()
}

fn pricer<'a>(t: &Truth, slice: &ExpiryTruth, strike: f64, call: bool, divs: &'a [Dividend]) -> American<'a> {
    American { spot: t.spot, strike, t: slice.t, rate: t.rate, yield_rate: 0.0, dividends: divs, is_call: call }
}

/// Black-76 on the truth's forward (the European price of the same vol), written out here.
fn european(t: &Truth, slice: &ExpiryTruth, strike: f64, call: bool, vol: f64) -> f64 {
    use implied_vol::SpecialFn;
    let n = |x: f64| implied_vol::DefaultSpecialFn::norm_cdf(x);
    let (f, sd) = (slice.forward, vol * slice.t.sqrt());
    let d1 = ((f / strike).ln() + sd * sd / 2.0) / sd;
    let df = (-t.rate * slice.t).exp();
    if call {
        df * (f * n(d1) - strike * n(d1 - sd))
    } else {
        df * (strike * n(sd - d1) - f * n(-d1))
    }
}

#[test]
fn truth_mids_invert_to_the_truths_vols_with_the_american_pricer() {
    let clock = std::sync::Arc::new(twslake::sim::ManualClock::new(at(MIDDAY)));
    let market = twslake::sim::market::Market::new(7, twslake::sim::market::SymbolSpec::defaults(), clock);
    let mut checked = 0;
    let mut premium_seen = false;
    for symbol in ["SPY", "AAPL"] {
        let t = truth(&market, symbol, at(MIDDAY)).expect("truth");
        for slice in t.expiries.iter().filter(|e| ["20261127", "20261218", "20270319"].contains(&e.expiry.as_str())) {
            let divs = dividends(&t, slice);
            for k in slice.strikes.iter().filter(|k| (k.strike / t.spot - 1.0).abs() < 0.12) {
                for (call, mid) in [(true, k.call), (false, k.put)] {
                    let p = pricer(&t, slice, k.strike, call, &divs);
                    // Where vega is not tiny (a cent per vol point), the vol is pinned.
                    if p.greeks(k.iv).vega < 0.01 {
                        continue;
                    }
                    let iv = p.implied_vol(mid).expect("an implied vol");
                    assert!(
                        (iv - k.iv).abs() < 1e-6,
                        "{symbol} {} {} call={call}: {iv} against {}",
                        slice.expiry,
                        k.strike,
                        k.iv
                    );
                    premium_seen |= mid - european(&t, slice, k.strike, call, k.iv) > 1e-3;
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100, "{checked} contracts checked");
    assert!(premium_seen, "some mids carry an early-exercise premium");
}

#[test]
fn a_deep_in_the_money_american_put_is_worth_more_than_the_european() {
    let clock = std::sync::Arc::new(twslake::sim::ManualClock::new(at(MIDDAY)));
    let market = twslake::sim::market::Market::new(7, twslake::sim::market::SymbolSpec::defaults(), clock);
    let t = truth(&market, "SPY", at(MIDDAY)).expect("truth");
    let slice = t.expiries.iter().find(|e| e.t > 0.5).expect("a long expiry");
    let k = slice.strikes.last().expect("the highest strike");
    assert!(k.strike > t.spot * 1.1, "deep in the money: {} against {}", k.strike, t.spot);
    let eu = european(&t, slice, k.strike, false, k.iv);
    assert!(k.put > eu + 0.05, "American {} against European {eu}", k.put);
    // And above the value of exercising now, which the European falls short of here.
    assert!(k.put > k.strike - t.spot, "{} against intrinsic {}", k.put, k.strike - t.spot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_ticks_are_american_prices_of_the_truths_vol() {
    let sim = start(MIDDAY).await;
    let c = client(&sim, 1).await;
    let t = truth(sim.market(), "SPY", at(MIDDAY)).expect("truth");
    let slice = t.expiries.iter().find(|e| e.expiry == "20261218").expect("expiry");
    let divs = dividends(&t, slice);
    let k = slice
        .strikes
        .iter()
        .min_by(|a, b| (a.strike / t.spot - 1.05).abs().total_cmp(&(b.strike / t.spot - 1.05).abs()));
    let k = k.expect("a strike");
    let contract = Contract {
        symbol: "SPY".into(),
        security_type: SecurityType::Option,
        last_trade_date_or_contract_month: slice.expiry.clone(),
        strike: k.strike,
        right: Some(OptionRight::Put),
        exchange: "SMART".into(),
        currency: "USD".into(),
        ..Default::default()
    };
    let mut sub = c.market_data(&contract).snapshot().subscribe().await.expect("snapshot");
    let model = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), sub.next()).await.expect("ticks in time") {
            Some(Ok(SubscriptionItem::Data(TickTypes::OptionComputation(o)))) if o.field == TickType::ModelOption => {
                break o
            }
            Some(Ok(_)) => {}
            other => panic!("no model tick: {other:?}"),
        }
    };
    let price = model.option_price.expect("model price");
    assert!((price - k.put).abs() < 1e-9, "tick {price} against the truth's {}", k.put);
    let iv = pricer(&t, slice, k.strike, false, &divs).implied_vol(price).expect("iv");
    assert!((iv - k.iv).abs() < 1e-6, "{iv} against {}", k.iv);
    assert!((model.implied_volatility.expect("iv") - k.iv).abs() < 1e-12);
}
