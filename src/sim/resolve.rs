//! Contract resolution as IB does it, shared by every handler that takes a contract: a contract
//! spec to the instruments it names, and an instrument back to its contract message.

use chrono::NaiveDate;

use super::market::options;
use super::market::{Instrument, Market, OptionId, Right};
use super::proto;
use crate::calendar;
use crate::domain::SecType;

/// Every listed instrument matching a contract spec as IB matches it: by con_id, or by symbol and
/// type with blank fields (expiry, strike, right) matching anything. Expired options do not
/// match: IB no longer knows them.
pub fn resolve(market: &Market, c: &proto::Contract) -> Vec<Instrument> {
    let today = calendar::trading_date(market.now());
    let con_id = c.con_id.filter(|id| *id != 0);
    if let Some(i) = con_id.and_then(|id| market.stock_by_con_id(id)) {
        return vec![Instrument::Stock(i)];
    }
    if let Some(id) = con_id {
        return find_option_by_con_id(market, today, id).into_iter().map(Instrument::Option).collect();
    }
    let Some(i) = c.symbol.as_deref().and_then(|s| market.symbol_index(s)) else {
        return Vec::new();
    };
    if !c.currency.as_deref().is_none_or(|cur| cur.is_empty() || cur == "USD") {
        return Vec::new();
    }
    match sec_type(c) {
        Some(SecType::Stock) => vec![Instrument::Stock(i)],
        Some(SecType::Option) => options_matching(market, i, today, c).into_iter().map(Instrument::Option).collect(),
        None => Vec::new(),
    }
}

/// The security type a contract spec names, read as IB reads it: IB's spelling in any case, a
/// blank one meaning a stock; `None` for a type the simulator does not list.
fn sec_type(c: &proto::Contract) -> Option<SecType> {
    match c.sec_type.as_deref().unwrap_or_default() {
        "" => Some(SecType::Stock),
        s => [SecType::Stock, SecType::Option].into_iter().find(|t| t.ib().eq_ignore_ascii_case(s)),
    }
}

fn options_matching(market: &Market, i: usize, today: NaiveDate, c: &proto::Contract) -> Vec<OptionId> {
    let chain = market.chain(i, today);
    let expiry = c.last_trade_date_or_contract_month.as_deref().unwrap_or("").trim().to_string();
    let strike = c.strike.unwrap_or(0.0);
    let right = c.right.as_deref().filter(|r| !r.is_empty() && *r != "?");
    let right = match right {
        Some(r) => match Right::parse(r) {
            Some(r) => Some(r),
            None => return Vec::new(),
        },
        None => None,
    };
    // Strikes are asked as served: in the basis of the clock (see `market::corporate`).
    let f = market.served_factor(i);
    let mut out = Vec::new();
    for e in chain.expiries.iter().filter(|e| expiry_alive(market, e.date)) {
        let tag = e.date.format("%Y%m%d").to_string();
        if !(expiry.is_empty() || tag == expiry || (expiry.len() == 6 && tag.starts_with(&expiry))) {
            continue;
        }
        for k in e.strikes.iter().filter(|k| strike == 0.0 || (**k / f - strike).abs() < 1e-6) {
            for r in [Right::Call, Right::Put].into_iter().filter(|r| right.is_none_or(|x| x == *r)) {
                out.push(OptionId { underlying: i, expiry: e.date, strike: *k, right: r });
            }
        }
    }
    out
}

fn find_option_by_con_id(market: &Market, today: NaiveDate, id: i32) -> Option<OptionId> {
    market.option_by_con_id(today, id).filter(|o| expiry_alive(market, o.expiry))
}

/// The contract message for an instrument.
pub fn contract_of(market: &Market, inst: Instrument) -> proto::Contract {
    match inst {
        Instrument::Stock(i) => {
            let s = market.spec(i);
            proto::Contract {
                con_id: Some(s.con_id),
                symbol: Some(s.symbol.clone()),
                sec_type: Some(SecType::Stock.ib().into()),
                exchange: Some("SMART".into()),
                primary_exch: Some(s.primary_exchange.clone()),
                currency: Some("USD".into()),
                local_symbol: Some(s.symbol.clone()),
                trading_class: Some(if s.primary_exchange == "NASDAQ" { "NMS".into() } else { s.symbol.clone() }),
                ..Default::default()
            }
        }
        Instrument::Option(o) => {
            let s = market.spec(o.underlying);
            let expiry = o.expiry.format("%Y%m%d").to_string();
            let strike = o.strike / market.served_factor(o.underlying);
            proto::Contract {
                con_id: Some(options::con_id(s, o.expiry, o.strike, o.right)),
                symbol: Some(s.symbol.clone()),
                sec_type: Some(SecType::Option.ib().into()),
                last_trade_date_or_contract_month: Some(expiry.clone()),
                strike: Some(strike),
                right: Some(o.right.letter().into()),
                multiplier: Some(100.0),
                exchange: Some("SMART".into()),
                currency: Some("USD".into()),
                local_symbol: Some(options::occ_symbol(s, o.expiry, strike, o.right)),
                trading_class: Some(s.option_root.clone()),
                last_trade_date: Some(expiry),
                ..Default::default()
            }
        }
    }
}

/// Whether IB still knows options of `expiry` at the market's present: until the end of the
/// expiry's day in New York. An option stops trading at its close, but IB keeps describing it
/// (contract details) and serving its history for the rest of that day; from the next day on
/// it is expired and unknown (error 200).
pub fn expiry_alive(market: &Market, expiry: NaiveDate) -> bool {
    market.now().with_timezone(&calendar::EXCHANGE_TZ).date_naive() <= expiry
}
