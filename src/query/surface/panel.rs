//! What surfaces are fitted from, held in memory: a stretch of option mids each joined to the
//! spot of its own bar's end, the spot bars, and the chain snapshots. One load serves every instant
//! of the stretch — one for [`super::Surfaces::surface`], a whole session for the surface history — and
//! both pick quotes for an instant by the same code, so they give the same answer.

use super::build::Quote;
use crate::domain::Series;
use crate::error::Result;
use crate::query::styles::Styles;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use polars::prelude::*;
use std::collections::{BTreeSet, HashMap};

/// One option bar: its contract, its mid (the bar's close) and its own clock.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    con_id: i64,
    quote: Quote,
}

/// Option mids and spot bars of a stretch of time, sorted by bar end.
#[derive(Debug, Clone)]
pub struct QuotePanel {
    /// The option series the mids come from.
    pub series: Series,
    rows: Vec<Row>,
    /// Spot bars: (end in µs, close), ascending.
    spot: Vec<(i64, f64)>,
    /// Option bars left out because no spot bar had ended at or before their end.
    pub without_spot: usize,
}

fn micros(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>> {
    Ok(df.column(name)?.cast(&DataType::Int64)?.i64()?.iter().collect())
}

fn floats(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    Ok(df.column(name)?.cast(&DataType::Float64)?.f64()?.iter().collect())
}

fn days(df: &DataFrame, name: &str) -> Result<Vec<Option<i32>>> {
    Ok(df.column(name)?.cast(&DataType::Int32)?.i32()?.iter().collect())
}

/// Instant from microseconds since the epoch.
pub fn instant(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

impl QuotePanel {
    /// From option bars (columns `con_id`, `expiry`, `strike`, `right`, `close` and `end`, the
    /// bar's end) and spot points (bar end in µs, close; any order). Each option bar is valued
    /// with the spot of the last spot bar that ended at or before its own end, and left out
    /// (counted in [`QuotePanel::without_spot`]) when there is none or it ended more than
    /// `max_spot_lag` before. Each option's exercise style is its contract's in `styles`.
    pub fn new(
        series: Series,
        options: &DataFrame,
        mut spot: Vec<(i64, f64)>,
        max_spot_lag: Duration,
        styles: &Styles,
    ) -> Result<Self> {
        spot.sort_by_key(|p| p.0);
        let (con, expiry, strike, mid, end) = (
            micros(options, "con_id")?,
            days(options, "expiry")?,
            floats(options, "strike")?,
            floats(options, "close")?,
            micros(options, "end")?,
        );
        let right = options.column("right")?.str()?.clone();
        let lag = max_spot_lag.num_microseconds().unwrap_or(i64::MAX);
        let mut expiry_at: HashMap<i32, i64> = HashMap::new();
        let mut rows = Vec::with_capacity(options.height());
        let mut without_spot = 0;
        for i in 0..options.height() {
            let (Some(con_id), Some(expiry), Some(strike), Some(mid), Some(end), Some(r)) =
                (con[i], expiry[i], strike[i], mid[i], end[i], right.get(i))
            else {
                continue;
            };
            let j = spot.partition_point(|p| p.0 <= end);
            let Some(&(_, spot)) = j.checked_sub(1).map(|j| &spot[j]).filter(|p| end - p.0 <= lag) else {
                without_spot += 1;
                continue;
            };
            let expires = *expiry_at
                .entry(expiry)
                .or_insert_with(|| crate::calendar::expiry_instant(super::build::date_of(expiry)).timestamp_micros());
            let t = (expires - end) as f64 / 1e6 / crate::calendar::YEAR_SECONDS;
            let is_call = r.eq_ignore_ascii_case("C");
            let style = styles.of(con_id);
            rows.push(Row { con_id, quote: Quote { expiry, strike, is_call, mid, t, spot, end, style } });
        }
        rows.sort_by_key(|r| (r.quote.end, r.con_id));
        Ok(QuotePanel { series, rows, spot, without_spot })
    }

    /// Option bars held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no option bar is held.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The latest quote of each contract among the bars that ended in `[from, at]`.
    pub fn latest(&self, from: DateTime<Utc>, at: DateTime<Utc>) -> Vec<Quote> {
        let (lo, hi) = (from.timestamp_micros(), at.timestamp_micros());
        let start = self.rows.partition_point(|r| r.quote.end < lo);
        let mut last: HashMap<i64, Quote> = HashMap::new();
        for r in self.rows[start..].iter().take_while(|r| r.quote.end <= hi) {
            last.insert(r.con_id, r.quote);
        }
        let mut out: Vec<Quote> = last.into_values().collect();
        out.sort_by(|a, b| a.expiry.cmp(&b.expiry).then(a.strike.total_cmp(&b.strike)).then(a.is_call.cmp(&b.is_call)));
        out
    }

    /// The close of the last spot bar that ended at or before `at`, and when it ended.
    pub fn spot_at(&self, at: DateTime<Utc>) -> Option<(f64, DateTime<Utc>)> {
        let i = self.spot.partition_point(|p| p.0 <= at.timestamp_micros());
        i.checked_sub(1).map(|i| (self.spot[i].1, instant(self.spot[i].0)))
    }
}

/// Chain snapshots in memory: when each was taken and the expiries it listed.
#[derive(Debug, Clone, Default)]
pub struct Listings {
    snapshots: Vec<(DateTime<Utc>, BTreeSet<NaiveDate>)>,
}

impl Listings {
    /// From chain rows (columns `snapshot_at`, `expiration`).
    pub fn new(chains: &DataFrame) -> Result<Self> {
        let (at, exp) = (micros(chains, "snapshot_at")?, days(chains, "expiration")?);
        let mut by: std::collections::BTreeMap<i64, BTreeSet<NaiveDate>> = Default::default();
        for (a, e) in at.iter().zip(&exp) {
            if let (Some(a), Some(e)) = (a, e) {
                by.entry(*a).or_default().insert(crate::calendar::date_of_days(*e));
            }
        }
        Ok(Listings { snapshots: by.into_iter().map(|(a, e)| (instant(a), e)).collect() })
    }

    /// The latest snapshot taken at or before `at` and no earlier than `oldest`.
    pub fn as_of(&self, at: DateTime<Utc>, oldest: DateTime<Utc>) -> Option<(DateTime<Utc>, &BTreeSet<NaiveDate>)> {
        let i = self.snapshots.partition_point(|s| s.0 <= at);
        let (when, expiries) = self.snapshots.get(i.checked_sub(1)?)?;
        (*when >= oldest).then_some((*when, expiries))
    }
}
