//! The protobuf messages the simulator reads and writes, written by hand with the field tags the
//! TWS API uses (read from the `ibapi` 5.5 decoders and encoders). Only the fields the simulator
//! needs are declared: prost skips unknown tags when decoding, and a field we never set is simply
//! absent on the wire, exactly as TWS leaves out what it has no value for.

#![allow(missing_docs)]

/// Message ids the client sends (before the +200 protobuf offset).
pub mod out_id {
    pub const REQ_MKT_DATA: i32 = 1;
    pub const CANCEL_MKT_DATA: i32 = 2;
    pub const REQ_CONTRACT_DATA: i32 = 9;
    pub const REQ_HISTORICAL_DATA: i32 = 20;
    pub const CANCEL_HISTORICAL_DATA: i32 = 25;
    pub const REQ_CURRENT_TIME: i32 = 49;
    pub const REQ_MARKET_DATA_TYPE: i32 = 59;
    pub const START_API: i32 = 71;
    pub const REQ_SEC_DEF_OPT_PARAMS: i32 = 78;
    pub const REQ_HEAD_TIMESTAMP: i32 = 87;
    pub const CANCEL_HEAD_TIMESTAMP: i32 = 90;
    pub const CANCEL_CONTRACT_DATA: i32 = 106;
}

/// Message ids the server sends (before the +200 protobuf offset).
pub mod in_id {
    pub const TICK_PRICE: i32 = 1;
    pub const TICK_SIZE: i32 = 2;
    pub const ERROR: i32 = 4;
    pub const NEXT_VALID_ID: i32 = 9;
    pub const CONTRACT_DATA: i32 = 10;
    pub const MANAGED_ACCOUNTS: i32 = 15;
    pub const HISTORICAL_DATA: i32 = 17;
    pub const HISTORICAL_DATA_UPDATE: i32 = 90;
    pub const TICK_OPTION_COMPUTATION: i32 = 21;
    pub const TICK_STRING: i32 = 46;
    pub const CURRENT_TIME: i32 = 49;
    pub const CONTRACT_DATA_END: i32 = 52;
    pub const TICK_SNAPSHOT_END: i32 = 57;
    pub const MARKET_DATA_TYPE: i32 = 58;
    pub const SEC_DEF_OPT_PARAMETER: i32 = 75;
    pub const SEC_DEF_OPT_PARAMETER_END: i32 = 76;
    pub const TICK_REQ_PARAMS: i32 = 81;
    pub const HEAD_TIMESTAMP: i32 = 88;
    pub const HISTORICAL_DATA_END: i32 = 108;
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StartApi {
    #[prost(int32, optional, tag = "1")]
    pub client_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub optional_capabilities: Option<String>,
}

/// The contract as both sides spell it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Contract {
    #[prost(int32, optional, tag = "1")]
    pub con_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub symbol: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub sec_type: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub last_trade_date_or_contract_month: Option<String>,
    #[prost(double, optional, tag = "5")]
    pub strike: Option<f64>,
    #[prost(string, optional, tag = "6")]
    pub right: Option<String>,
    #[prost(double, optional, tag = "7")]
    pub multiplier: Option<f64>,
    #[prost(string, optional, tag = "8")]
    pub exchange: Option<String>,
    #[prost(string, optional, tag = "9")]
    pub primary_exch: Option<String>,
    #[prost(string, optional, tag = "10")]
    pub currency: Option<String>,
    #[prost(string, optional, tag = "11")]
    pub local_symbol: Option<String>,
    #[prost(string, optional, tag = "12")]
    pub trading_class: Option<String>,
    #[prost(bool, optional, tag = "18")]
    pub include_expired: Option<bool>,
    #[prost(string, optional, tag = "21")]
    pub last_trade_date: Option<String>,
}

/// Any request or end marker that carries only a request id at tag 1 (every cancel, the ends).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReqIdOnly {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContractDataRequest {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub contract: Option<Contract>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SecDefOptParamsRequest {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub underlying_symbol: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub fut_fop_exchange: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub underlying_sec_type: Option<String>,
    #[prost(int32, optional, tag = "5")]
    pub underlying_con_id: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HistoricalDataRequest {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub contract: Option<Contract>,
    #[prost(string, optional, tag = "3")]
    pub end_date_time: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub bar_size_setting: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub duration: Option<String>,
    #[prost(bool, optional, tag = "6")]
    pub use_rth: Option<bool>,
    #[prost(string, optional, tag = "7")]
    pub what_to_show: Option<String>,
    #[prost(int32, optional, tag = "8")]
    pub format_date: Option<i32>,
    #[prost(bool, optional, tag = "9")]
    pub keep_up_to_date: Option<bool>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HeadTimestampRequest {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub contract: Option<Contract>,
    #[prost(bool, optional, tag = "3")]
    pub use_rth: Option<bool>,
    #[prost(string, optional, tag = "4")]
    pub what_to_show: Option<String>,
    #[prost(int32, optional, tag = "5")]
    pub format_date: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MarketDataRequest {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub contract: Option<Contract>,
    #[prost(string, optional, tag = "3")]
    pub generic_tick_list: Option<String>,
    #[prost(bool, optional, tag = "4")]
    pub snapshot: Option<bool>,
    #[prost(bool, optional, tag = "5")]
    pub regulatory_snapshot: Option<bool>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MarketDataTypeRequest {
    #[prost(int32, optional, tag = "1")]
    pub market_data_type: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NextValidId {
    #[prost(int32, optional, tag = "1")]
    pub order_id: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ManagedAccounts {
    #[prost(string, optional, tag = "1")]
    pub accounts_list: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ErrorMessage {
    #[prost(int32, optional, tag = "1")]
    pub id: Option<i32>,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, optional, tag = "2")]
    pub error_time: Option<i64>,
    #[prost(int32, optional, tag = "3")]
    pub error_code: Option<i32>,
    #[prost(string, optional, tag = "4")]
    pub error_msg: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContractDetails {
    #[prost(string, optional, tag = "1")]
    pub market_name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub min_tick: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub order_types: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub valid_exchanges: Option<String>,
    #[prost(int32, optional, tag = "5")]
    pub price_magnifier: Option<i32>,
    #[prost(int32, optional, tag = "6")]
    pub under_con_id: Option<i32>,
    #[prost(string, optional, tag = "7")]
    pub long_name: Option<String>,
    #[prost(string, optional, tag = "8")]
    pub contract_month: Option<String>,
    #[prost(string, optional, tag = "9")]
    pub industry: Option<String>,
    #[prost(string, optional, tag = "10")]
    pub category: Option<String>,
    #[prost(string, optional, tag = "11")]
    pub subcategory: Option<String>,
    #[prost(string, optional, tag = "12")]
    pub time_zone_id: Option<String>,
    #[prost(string, optional, tag = "13")]
    pub trading_hours: Option<String>,
    #[prost(string, optional, tag = "14")]
    pub liquid_hours: Option<String>,
    #[prost(int32, optional, tag = "18")]
    pub agg_group: Option<i32>,
    #[prost(string, optional, tag = "19")]
    pub under_symbol: Option<String>,
    #[prost(string, optional, tag = "20")]
    pub under_sec_type: Option<String>,
    #[prost(string, optional, tag = "21")]
    pub market_rule_ids: Option<String>,
    #[prost(string, optional, tag = "22")]
    pub real_expiration_date: Option<String>,
    #[prost(string, optional, tag = "23")]
    pub stock_type: Option<String>,
    #[prost(string, optional, tag = "24")]
    pub min_size: Option<String>,
    #[prost(string, optional, tag = "25")]
    pub size_increment: Option<String>,
    #[prost(string, optional, tag = "26")]
    pub suggested_size_increment: Option<String>,
    #[prost(string, optional, tag = "65")]
    pub settlement_method: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContractData {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub contract: Option<Contract>,
    #[prost(message, optional, tag = "3")]
    pub contract_details: Option<ContractDetails>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SecDefOptParameter {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub exchange: Option<String>,
    #[prost(int32, optional, tag = "3")]
    pub underlying_con_id: Option<i32>,
    #[prost(string, optional, tag = "4")]
    pub trading_class: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub multiplier: Option<String>,
    #[prost(string, repeated, tag = "6")]
    pub expirations: Vec<String>,
    #[prost(double, repeated, tag = "7")]
    pub strikes: Vec<f64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HistoricalDataBar {
    /// `YYYYMMDD` for daily and longer bars, epoch seconds for intraday bars.
    #[prost(string, optional, tag = "1")]
    pub date: Option<String>,
    #[prost(double, optional, tag = "2")]
    pub open: Option<f64>,
    #[prost(double, optional, tag = "3")]
    pub high: Option<f64>,
    #[prost(double, optional, tag = "4")]
    pub low: Option<f64>,
    #[prost(double, optional, tag = "5")]
    pub close: Option<f64>,
    #[prost(string, optional, tag = "6")]
    pub volume: Option<String>,
    #[prost(string, optional, tag = "7")]
    pub wap: Option<String>,
    #[prost(int32, optional, tag = "8")]
    pub bar_count: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HistoricalData {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(message, repeated, tag = "2")]
    pub bars: Vec<HistoricalDataBar>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HistoricalDataUpdate {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub bar: Option<HistoricalDataBar>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HistoricalDataEnd {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub start_date_str: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub end_date_str: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HeadTimestamp {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub head_timestamp: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TickPrice {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub tick_type: Option<i32>,
    #[prost(double, optional, tag = "3")]
    pub price: Option<f64>,
    #[prost(string, optional, tag = "4")]
    pub size: Option<String>,
    #[prost(int32, optional, tag = "5")]
    pub attr_mask: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TickSize {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub tick_type: Option<i32>,
    #[prost(string, optional, tag = "3")]
    pub size: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TickString {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub tick_type: Option<i32>,
    #[prost(string, optional, tag = "3")]
    pub value: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TickOptionComputation {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub tick_type: Option<i32>,
    #[prost(int32, optional, tag = "3")]
    pub tick_attrib: Option<i32>,
    #[prost(double, optional, tag = "4")]
    pub implied_vol: Option<f64>,
    #[prost(double, optional, tag = "5")]
    pub delta: Option<f64>,
    #[prost(double, optional, tag = "6")]
    pub opt_price: Option<f64>,
    #[prost(double, optional, tag = "7")]
    pub pv_dividend: Option<f64>,
    #[prost(double, optional, tag = "8")]
    pub gamma: Option<f64>,
    #[prost(double, optional, tag = "9")]
    pub vega: Option<f64>,
    #[prost(double, optional, tag = "10")]
    pub theta: Option<f64>,
    #[prost(double, optional, tag = "11")]
    pub und_price: Option<f64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MarketDataType {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    pub market_data_type: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TickReqParams {
    #[prost(int32, optional, tag = "1")]
    pub req_id: Option<i32>,
    #[prost(string, optional, tag = "2")]
    pub min_tick: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub bbo_exchange: Option<String>,
    #[prost(int32, optional, tag = "4")]
    pub snapshot_permissions: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CurrentTime {
    /// Epoch seconds.
    #[prost(int64, optional, tag = "1")]
    pub current_time: Option<i64>,
}
