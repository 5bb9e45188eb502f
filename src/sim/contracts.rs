//! Contract details and sec-def option parameters.

use chrono::NaiveDate;
use prost::Message;

use super::conn::{Conn, OpenReq};
use super::market::options::Chain;
use super::market::{Instrument, Market};
use super::proto::{self, in_id};
use super::record::{Outcome, RequestRecord};
use super::resolve::{contract_of, resolve};
use crate::calendar;
use crate::domain::codes::{NO_SECURITY_DEFINITION, NO_SECURITY_TEXT};
use crate::domain::SecType;

/// Exchanges the simulated options list on (one sec-def message each).
pub const OPTION_EXCHANGES: [&str; 6] = ["SMART", "AMEX", "BOX", "CBOE", "ISE", "PHLX"];

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
        d.under_sec_type = Some(SecType::Stock.ib().into());
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
        conn.error(id, NO_SECURITY_DEFINITION, NO_SECURITY_TEXT);
        conn.record(rec, Outcome::Error { code: NO_SECURITY_DEFINITION });
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
        conn.error(id, NO_SECURITY_DEFINITION, NO_SECURITY_TEXT);
        conn.record(rec, Outcome::Error { code: NO_SECURITY_DEFINITION });
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
            strikes: chain.all_strikes().iter().map(|k| k / market.served_factor(i)).collect(),
        };
        conn.send(in_id::SEC_DEF_OPT_PARAMETER, &msg);
        rows += 1;
    }
    conn.send(in_id::SEC_DEF_OPT_PARAMETER_END, &proto::ReqIdOnly { req_id: Some(id) });
    conn.record(rec, if rows == 0 { Outcome::Empty } else { Outcome::Ok { rows } });
    Ok(())
}
