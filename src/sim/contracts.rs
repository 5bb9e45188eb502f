//! Contract resolution, contract details and sec-def option parameters.

use chrono::NaiveDate;
use prost::Message;

use super::history::series::Instrument;
use super::market::options::{self, Chain};
use super::market::{Market, OptionId, Right};
use super::proto::{self, in_id};
use super::record::{Outcome, RequestRecord};
use super::session::{Conn, OpenReq};
use crate::calendar;

/// IB's text for error 200.
pub const NO_SECURITY: &str = "No security definition has been found for the request";

/// Exchanges the simulated options list on (one sec-def message each).
pub const OPTION_EXCHANGES: [&str; 6] = ["SMART", "AMEX", "BOX", "CBOE", "ISE", "PHLX"];

/// Every listed instrument matching a contract spec as IB matches it: by con_id, or by symbol and
/// type with blank fields (expiry, strike, right) matching anything. Expired options do not
/// match: IB no longer knows them.
pub fn resolve(market: &Market, c: &proto::Contract) -> Vec<Instrument> {
    let today = calendar::trading_date(market.now());
    let con_id = c.con_id.filter(|id| *id != 0);
    let sec_type = c.sec_type.as_deref().unwrap_or("").to_ascii_uppercase();
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
    match sec_type.as_str() {
        "STK" | "" => vec![Instrument::Stock(i)],
        "OPT" => options_matching(market, i, today, c).into_iter().map(Instrument::Option).collect(),
        _ => Vec::new(),
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
    let mut out = Vec::new();
    for e in chain.expiries.iter().filter(|e| expiry_alive(market, e.date)) {
        let tag = e.date.format("%Y%m%d").to_string();
        if !(expiry.is_empty() || tag == expiry || (expiry.len() == 6 && tag.starts_with(&expiry))) {
            continue;
        }
        for k in e.strikes.iter().filter(|k| strike == 0.0 || (**k - strike).abs() < 1e-6) {
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
                sec_type: Some("STK".into()),
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
            proto::Contract {
                con_id: Some(options::con_id(s, o.expiry, o.strike, o.right)),
                symbol: Some(s.symbol.clone()),
                sec_type: Some("OPT".into()),
                last_trade_date_or_contract_month: Some(expiry.clone()),
                strike: Some(o.strike),
                right: Some(o.right.letter().into()),
                multiplier: Some(100.0),
                exchange: Some("SMART".into()),
                currency: Some("USD".into()),
                local_symbol: Some(options::occ_symbol(s, o.expiry, o.strike, o.right)),
                trading_class: Some(s.option_root.clone()),
                last_trade_date: Some(expiry),
                ..Default::default()
            }
        }
    }
}

/// IB's hours strings for the week from `today`: `YYYYMMDD:HHMM-YYYYMMDD:HHMM;YYYYMMDD:CLOSED;…`
/// in New York time.
fn hours(today: NaiveDate, liquid: bool) -> String {
    let mut parts = Vec::new();
    for d in today.iter_days().take(7) {
        let tag = d.format("%Y%m%d");
        match calendar::session(d) {
            None => parts.push(format!("{tag}:CLOSED")),
            Some(s) => {
                let ny = |t: chrono::DateTime<chrono::Utc>| {
                    t.with_timezone(&calendar::EXCHANGE_TZ).format("%H%M").to_string()
                };
                let (open, close) = if liquid {
                    (ny(s.open), ny(s.close))
                } else {
                    ("0400".into(), if s.early_close { "1700".into() } else { "2000".into() })
                };
                parts.push(format!("{tag}:{open}-{tag}:{close}"));
            }
        }
    }
    parts.join(";")
}

fn details_of(market: &Market, inst: Instrument, today: NaiveDate) -> proto::ContractDetails {
    let (i, option) = match inst {
        Instrument::Stock(i) => (i, None),
        Instrument::Option(o) => (o.underlying, Some(o)),
    };
    let s = market.spec(i);
    let mut d = proto::ContractDetails {
        market_name: Some(option.map_or(s.symbol.clone(), |_| s.option_root.clone())),
        min_tick: Some("0.01".into()),
        order_types: Some("ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,COND,DAY,GTC,IOC,LIT,LMT,MIT,MKT,MTL,OCA,REL,STP,STPLMT,TRAIL".into()),
        valid_exchanges: Some(if option.is_some() { OPTION_EXCHANGES.join(",") } else { format!("SMART,{},ARCA,BATS,IEX", s.primary_exchange) }),
        price_magnifier: Some(1),
        long_name: Some(s.long_name.clone()),
        industry: Some(if s.stock_type == "ETF" { "Funds".into() } else { "Technology".into() }),
        time_zone_id: Some("US/Eastern".into()),
        trading_hours: Some(hours(today, false)),
        liquid_hours: Some(hours(today, true)),
        agg_group: Some(1),
        market_rule_ids: Some("26,26,26".into()),
        stock_type: Some(s.stock_type.clone()),
        min_size: Some("1".into()),
        size_increment: Some("1".into()),
        suggested_size_increment: Some("100".into()),
        ..Default::default()
    };
    if let Some(o) = option {
        d.under_con_id = Some(s.con_id);
        d.under_symbol = Some(s.symbol.clone());
        d.under_sec_type = Some("STK".into());
        d.contract_month = Some(o.expiry.format("%Y%m").to_string());
        d.real_expiration_date = Some(o.expiry.format("%Y%m%d").to_string());
        d.settlement_method = Some("Physical".into());
        d.stock_type = None;
    }
    d
}

/// Answers a contract-details request: one message per matching contract, then the end marker;
/// error 200 when nothing matches.
pub fn contract_details(conn: &mut Conn, payload: &[u8]) -> Result<(), prost::DecodeError> {
    let req = proto::ContractDataRequest::decode(payload)?;
    let id = req.req_id.unwrap_or(0);
    let rec = RequestRecord::new(conn.client_id, Some(id), "contract_details").with_contract(req.contract.as_ref());
    if conn.shared.stalled("contract") {
        conn.open.insert(id, OpenReq::Stalled { historical: false });
        conn.record(rec, Outcome::Stalled);
        return Ok(());
    }
    let market = &conn.shared.market;
    let found = req.contract.as_ref().map(|c| resolve(market, c)).unwrap_or_default();
    if found.is_empty() {
        conn.error(id, 200, NO_SECURITY);
        conn.record(rec, Outcome::Error { code: 200 });
        return Ok(());
    }
    let today = calendar::trading_date(market.now());
    for inst in &found {
        let msg = proto::ContractData {
            req_id: Some(id),
            contract: Some(contract_of(market, *inst)),
            contract_details: Some(details_of(market, *inst, today)),
        };
        conn.send(in_id::CONTRACT_DATA, &msg);
    }
    conn.send(in_id::CONTRACT_DATA_END, &proto::ReqIdOnly { req_id: Some(id) });
    let rows = found.len();
    conn.record(rec, Outcome::Ok { rows });
    Ok(())
}

/// Answers sec-def option parameters: one message per exchange with today's expiries and strikes.
pub fn option_chain(conn: &mut Conn, payload: &[u8]) -> Result<(), prost::DecodeError> {
    let req = proto::SecDefOptParamsRequest::decode(payload)?;
    let id = req.req_id.unwrap_or(0);
    let mut rec = RequestRecord::new(conn.client_id, Some(id), "option_chain");
    rec.symbol = req.underlying_symbol.clone();
    rec.sec_type = req.underlying_sec_type.clone();
    rec.con_id = req.underlying_con_id.filter(|c| *c != 0);
    if conn.shared.stalled("chain") {
        conn.open.insert(id, OpenReq::Stalled { historical: false });
        conn.record(rec, Outcome::Stalled);
        return Ok(());
    }
    let market = &conn.shared.market;
    let by_symbol = req.underlying_symbol.as_deref().and_then(|s| market.symbol_index(s));
    let by_con_id = req.underlying_con_id.filter(|c| *c != 0).and_then(|c| market.stock_by_con_id(c));
    let found = match (by_symbol, by_con_id, req.underlying_con_id.filter(|c| *c != 0)) {
        (Some(a), Some(b), _) if a == b => Some(a),
        (Some(a), None, None) => Some(a),
        (None, Some(b), _) => Some(b),
        _ => None,
    };
    let Some(i) = found else {
        conn.error(id, 200, NO_SECURITY);
        conn.record(rec, Outcome::Error { code: 200 });
        return Ok(());
    };
    let chain: std::sync::Arc<Chain> = market.chain(i, calendar::trading_date(market.now()));
    let spec = market.spec(i);
    let wanted = req.fut_fop_exchange.as_deref().unwrap_or("");
    let mut rows = 0;
    for exchange in OPTION_EXCHANGES.iter().filter(|e| wanted.is_empty() || wanted.eq_ignore_ascii_case(e)) {
        let msg = proto::SecDefOptParameter {
            req_id: Some(id),
            exchange: Some((*exchange).into()),
            underlying_con_id: Some(spec.con_id),
            trading_class: Some(spec.option_root.clone()),
            multiplier: Some("100".into()),
            expirations: chain.expiries.iter().map(|e| e.date.format("%Y%m%d").to_string()).collect(),
            strikes: chain.all_strikes(),
        };
        conn.send(in_id::SEC_DEF_OPT_PARAMETER, &msg);
        rows += 1;
    }
    conn.send(in_id::SEC_DEF_OPT_PARAMETER_END, &proto::ReqIdOnly { req_id: Some(id) });
    conn.record(rec, if rows == 0 { Outcome::Empty } else { Outcome::Ok { rows } });
    Ok(())
}

/// Whether `expiry` is still trading at the market's present (an option expires at its close).
pub fn expiry_alive(market: &Market, expiry: NaiveDate) -> bool {
    options::expiry_instant(expiry).is_some_and(|t| t > market.now())
}
