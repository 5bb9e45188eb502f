//! Bounds of the command line's numbers and dates, checked at the edge before anything runs,
//! with a message naming the flag: no value a user can type reaches chrono's or std's
//! arithmetic out of range (which panics) or asks for centuries of requests.
//!
//! Decided bounds (generous next to any real use, far inside what the arithmetic holds):
//! expiries within 0–3650 days; strike band strictly between 0 and 1; 0–100,000 contracts;
//! 0–2,520 option sessions (ten years); 1–25,200 sessions of an equity series (a century);
//! a pacing scale of 0.001–1,000,000; 1–64 requests in flight; dates from 1970-01-01 to today
//! (New York) — a date after today is refused, not planned into windows no gateway can have.

use crate::error::Error;
use chrono::NaiveDate;

/// The earliest date a command accepts.
pub const FIRST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("a valid constant date"),
};

/// Today on the exchange's calendar (New York), `now` being the run's instant.
pub fn today_at(now: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    now.with_timezone(&crate::calendar::EXCHANGE_TZ).date_naive()
}

/// `value` within `lo..=hi`, else a [`Error::BadInput`] naming `flag`.
pub fn within<T: PartialOrd + std::fmt::Display + Copy>(
    flag: &'static str,
    value: T,
    lo: T,
    hi: T,
    unit: &str,
) -> Result<T, Error> {
    // `!(a && b)` rather than `a || b` so that a NaN float is refused too.
    #[allow(clippy::nonminimal_bool)]
    if !(value >= lo && value <= hi) {
        return Err(Error::bad_input(flag, value.to_string(), format!("give {lo} to {hi}{unit}")));
    }
    Ok(value)
}

/// A date of a `--from`/`--to` flag: not before [`FIRST_DATE`], not after `today`.
pub fn date(flag: &'static str, d: NaiveDate, today: NaiveDate) -> Result<NaiveDate, Error> {
    if d > today {
        return Err(Error::bad_input(
            flag,
            d.to_string(),
            format!("after today ({today}, New York): no gateway has data from the future; give a date up to {today}"),
        ));
    }
    if d < FIRST_DATE {
        return Err(Error::bad_input(flag, d.to_string(), format!("before {FIRST_DATE}; give a later date")));
    }
    Ok(d)
}

/// `from` not after `to`.
pub fn ordered(from: NaiveDate, to: NaiveDate) -> Result<(), Error> {
    if from > to {
        return Err(Error::bad_input("--from", from.to_string(), format!("after --to ({to}); swap them")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_flag() {
        let e = within("--expiry-days", i64::MAX, 0, 3650, " days").unwrap_err().to_string();
        assert_eq!(e, "invalid --expiry-days \"9223372036854775807\": give 0 to 3650 days");
        assert!(within("--strike-band", f64::NAN, 0.0, 1.0, "").is_err());
        assert_eq!(within("--x", 5u32, 0, 9, "").unwrap(), 5);
        let today = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
        let e = date("--from", NaiveDate::from_ymd_opt(2099, 1, 1).unwrap(), today).unwrap_err().to_string();
        assert!(e.contains("--from") && e.contains("2026-05-01"), "{e}");
        assert!(date("--to", NaiveDate::from_ymd_opt(1900, 1, 1).unwrap(), today).is_err());
        assert!(date("--to", today, today).is_ok());
    }
}
