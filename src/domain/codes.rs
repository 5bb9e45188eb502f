//! IB's message codes and texts that more than one part of twslake speaks of: the client
//! classifies them (`source::errors`), live capture acts on the connectivity notices, `status`
//! counts capture gaps, and the simulator sends them.

/// Historical data service error: pacing violation, no data or cancelled, told apart by its text.
pub const HISTORICAL_DATA_ERROR: i32 = 162;
/// No security definition for the request (unknown symbol, expired option).
pub const NO_SECURITY_DEFINITION: i32 = 200;
/// The client id is already connected.
pub const CLIENT_ID_IN_USE: i32 = 326;
/// Market data is not subscribed.
pub const NOT_SUBSCRIBED: i32 = 354;
/// A request failed validation (its text names the cause).
pub const REQUEST_INVALID: i32 = 321;
/// No historical data query found for the ticker id (a cancel that came too late).
pub const NO_HISTORICAL_QUERY: i32 = 366;
/// Connectivity between IB and the gateway lost.
pub const CONNECTIVITY_LOST: i32 = 1100;
/// Connectivity restored, data lost: every subscription must be made again.
pub const RESTORED_DATA_LOST: i32 = 1101;
/// Connectivity restored, data maintained.
pub const RESTORED_DATA_KEPT: i32 = 1102;
/// The gateway's socket port was reset; clients must reconnect.
pub const SOCKET_PORT_RESET: i32 = 1300;
/// Market data farm connection OK.
pub const MARKET_DATA_FARM_OK: i32 = 2104;
/// Historical data farm connection OK.
pub const HISTORICAL_FARM_OK: i32 = 2106;
/// Security-definition farm connection OK.
pub const SEC_DEF_FARM_OK: i32 = 2158;

/// The text of a pacing violation (code 162).
pub const PACING_VIOLATION_TEXT: &str =
    "Historical Market Data Service error message:Historical data request pacing violation";
/// The start of the text of a final answer with no data (code 162), followed by the contract.
pub const NO_DATA_TEXT: &str = "Historical Market Data Service error message:HMDS query returned no data";
/// The text of code 321 for an `ADJUSTED_LAST` request with an end date (IB serves it ending
/// now only).
pub const ADJUSTED_LAST_END_TEXT: &str =
    "Error validating request.-'bW' : cause - End date not supported with adjusted last";
/// The text of code 321 for an `ADJUSTED_LAST` request for bars under a day, or for a
/// non-stock (the simulator's wording).
pub const ADJUSTED_LAST_BARS_TEXT: &str =
    "Error validating request.-'bW' : cause - Adjusted last is served for stocks in daily or longer bars";
/// The text of code 200.
pub const NO_SECURITY_TEXT: &str = "No security definition has been found for the request";
/// The text of code 354.
pub const NOT_SUBSCRIBED_TEXT: &str = "Requested market data is not subscribed.";
/// The text of code 326.
pub const CLIENT_ID_IN_USE_TEXT: &str =
    "Unable to connect as the client id is already in use. Retry with a unique client id.";

/// The text IB sends with a request-less notice, as far as twslake knows it.
pub fn notice_text(code: i32) -> &'static str {
    match code {
        CONNECTIVITY_LOST => "Connectivity between IB and the TWS has been lost.",
        RESTORED_DATA_LOST => "Connectivity between IB and TWS has been restored- data lost.",
        RESTORED_DATA_KEPT => "Connectivity between IB and TWS has been restored- data maintained.",
        MARKET_DATA_FARM_OK => "Market data farm connection is OK:usfarm",
        HISTORICAL_FARM_OK => "HMDS data farm connection is OK:ushmds",
        SOCKET_PORT_RESET => {
            "TWS socket port has been reset and this connection is being dropped. Please reconnect on the new port"
        }
        SEC_DEF_FARM_OK => "Sec-def data farm connection is OK:secdefnj",
        _ => "Notice.",
    }
}
