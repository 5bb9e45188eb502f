//! IB's error codes, classified in one place: what the ingester does about each.

pub use crate::error::ErrorClass;

/// IB's text when historical requests come too fast.
pub const PACING_TEXT: &str = "pacing violation";

/// Classifies an IB error code (and its text, which disambiguates 162).
///
/// 162 is both "no data" (`HMDS query returned no data`) and "pacing violation"; other 162 texts
/// (e.g. `Time length exceed max`) are request errors.
pub fn classify(code: i32, message: &str) -> ErrorClass {
    let lower = message.to_ascii_lowercase();
    match code {
        162 if lower.contains("pacing violation") => ErrorClass::Pacing,
        162 if lower.contains("returned no data") => ErrorClass::NoData,
        162 if lower.contains("cancelled") => ErrorClass::Retry,
        162 | 321 | 320 | 322 => ErrorClass::Fatal,
        165 | 366 => ErrorClass::Retry,
        200 => ErrorClass::NoSecurityDefinition,
        354 | 10167 | 10168 | 10089 | 10090 => ErrorClass::NotSubscribed,
        420 => ErrorClass::Pacing,
        502 | 504 | 1100 | 1300 | 2103 | 2105 | 2110 => ErrorClass::Connectivity,
        1101 | 1102 => ErrorClass::Retry,
        _ => ErrorClass::Fatal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ib_codes_table() {
        let cases = [
            (
                162,
                "Historical Market Data Service error message:Historical data request pacing violation",
                ErrorClass::Pacing,
            ),
            (
                162,
                "Historical Market Data Service error message:HMDS query returned no data: SPY@SMART Trades",
                ErrorClass::NoData,
            ),
            (162, "Historical Market Data Service error message:Time length exceed max.", ErrorClass::Fatal),
            (
                162,
                "Historical Market Data Service error message:API historical data query cancelled: 1",
                ErrorClass::Retry,
            ),
            (200, "No security definition has been found for the request", ErrorClass::NoSecurityDefinition),
            (354, "Requested market data is not subscribed.", ErrorClass::NotSubscribed),
            (1100, "Connectivity between IB and the TWS has been lost.", ErrorClass::Connectivity),
            (504, "Not connected", ErrorClass::Connectivity),
            (1102, "Connectivity between IB and TWS has been restored - data maintained.", ErrorClass::Retry),
            (
                321,
                "Error validating request.-'bW' : cause - Historical data bar size setting is invalid.",
                ErrorClass::Fatal,
            ),
            (366, "No historical data query found for ticker id", ErrorClass::Retry),
            (10090, "Part of requested market data is not subscribed.", ErrorClass::NotSubscribed),
            (9999, "something new", ErrorClass::Fatal),
        ];
        for (code, text, want) in cases {
            assert_eq!(classify(code, text), want, "{code} {text}");
        }
    }
}
