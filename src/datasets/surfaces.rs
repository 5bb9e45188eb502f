//! Surface history: the volatility surface fitted at regular instants of past sessions, derived
//! from the option bars by `twslake surfaces` (never from the gateway).
//!
//! One long table with two kinds of rows per instant (`at`):
//! - `kind = "expiry"`: one fitted expiry — its SVI parameters, forward, discount, ATM vol, fit
//!   error, quote count and age, and both arbitrage checks;
//! - `kind = "grid"`: one point of the standardized surface — a maturity in calendar `days` and a
//!   forward call `delta`, with the strike, log-moneyness and implied vol there (points the quotes
//!   do not support have no row: see `query::surface::grid`).
//!
//! Columns that do not apply to a kind are null.

use super::cols::{self, f, Cols};
use arrow::array::{Array, ArrayRef, BooleanArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use std::sync::{Arc, LazyLock};

/// One row per instant and expiry, or per instant, maturity and delta.
pub const PRIMARY_KEY: &[&str] = &["at", "kind", "expiry", "days", "delta"];

/// The `kind` of an expiry row.
pub const EXPIRY: &str = "expiry";
/// The `kind` of a standardized-grid row.
pub const GRID: &str = "grid";

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let num = |name: &str| f(name, DataType::Float64, true);
    Arc::new(Schema::new(vec![
        f("at", cols::ts_type(), false),
        f("date", DataType::Date32, false),
        f("kind", DataType::Utf8, false),
        f("expiry", DataType::Date32, true),
        f("days", DataType::Int64, true),
        num("delta"),
        f("t", DataType::Float64, false),
        f("forward", DataType::Float64, false),
        f("discount", DataType::Float64, false),
        num("strike"),
        num("k"),
        num("iv"),
        num("atm_vol"),
        num("a"),
        num("b"),
        num("rho"),
        num("m"),
        num("sigma"),
        num("rmse"),
        f("points", DataType::Int64, true),
        f("butterfly_ok", DataType::Boolean, true),
        f("calendar_ok", DataType::Boolean, true),
        f("forward_source", DataType::Utf8, true),
        f("oldest_quote", cols::ts_type(), true),
        f("newest_quote", cols::ts_type(), true),
        f("spot", DataType::Float64, false),
        f("series", DataType::Utf8, false),
        f("listing", DataType::Utf8, false),
        f("computed_at", cols::ts_type(), false),
    ]))
});

/// The file schema (the `symbol` folder is the underlying).
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// The fit of one expiry at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpiryFit {
    /// Expiration date.
    pub expiry: NaiveDate,
    /// SVI `a`, `b`, `ρ`, `m`, `σ`.
    pub svi: [f64; 5],
    /// RMSE of the fit in vol.
    pub rmse: f64,
    /// Quotes fitted.
    pub points: i64,
    /// Butterfly check.
    pub butterfly_ok: bool,
    /// Calendar check.
    pub calendar_ok: bool,
    /// `parity` or `configured`.
    pub forward_source: String,
    /// The oldest quote's bar end.
    pub oldest_quote: DateTime<Utc>,
    /// The newest quote's bar end.
    pub newest_quote: DateTime<Utc>,
}

/// One point of the standardized grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridFit {
    /// Maturity in calendar days.
    pub days: i64,
    /// Forward call delta.
    pub delta: f64,
    /// Strike of the delta.
    pub strike: f64,
    /// Log-moneyness of the delta.
    pub k: f64,
    /// Implied vol.
    pub iv: f64,
}

/// What a row describes.
#[derive(Debug, Clone, PartialEq)]
pub enum RowKind {
    /// A fitted expiry.
    Expiry(ExpiryFit),
    /// A grid point.
    Grid(GridFit),
}

/// One row of the surface history.
#[derive(Debug, Clone, PartialEq)]
pub struct SurfaceRow {
    /// The instant.
    pub at: DateTime<Utc>,
    /// Its trading date.
    pub date: NaiveDate,
    /// Expiry or grid point.
    pub kind: RowKind,
    /// Years to expiry (or to the grid maturity).
    pub t: f64,
    /// Forward.
    pub forward: f64,
    /// Discount factor.
    pub discount: f64,
    /// At-the-money-forward vol (of the fit, or interpolated at the grid maturity).
    pub atm_vol: Option<f64>,
    /// Spot at the instant.
    pub spot: f64,
    /// Option series read, e.g. `1 min MIDPOINT`.
    pub series: String,
    /// `snapshot` or `bars`.
    pub listing: String,
    /// When twslake computed the row.
    pub computed_at: DateTime<Utc>,
}

fn opt_ts(v: impl Iterator<Item = Option<DateTime<Utc>>>) -> ArrayRef {
    let a: TimestampMicrosecondArray = v.map(|t| t.map(|t| t.timestamp_micros())).collect();
    Arc::new(a.with_timezone("UTC"))
}

fn bools(v: impl Iterator<Item = Option<bool>>) -> ArrayRef {
    Arc::new(v.collect::<BooleanArray>())
}

/// Builds a batch of the file schema.
pub fn to_batch(rows: &[SurfaceRow]) -> RecordBatch {
    let e = |r: &SurfaceRow| match &r.kind {
        RowKind::Expiry(e) => Some(e.clone()),
        RowKind::Grid(_) => None,
    };
    let g = |r: &SurfaceRow| match &r.kind {
        RowKind::Grid(g) => Some(*g),
        RowKind::Expiry(_) => None,
    };
    let ef = |get: fn(&ExpiryFit) -> f64| cols::opt_f64s(rows.iter().map(move |r| e(r).map(|x| get(&x))));
    let gf = |get: fn(&GridFit) -> f64| cols::opt_f64s(rows.iter().map(move |r| g(r).map(|x| get(&x))));
    let svi = |i: usize| cols::opt_f64s(rows.iter().map(move |r| e(r).map(|x| x.svi[i])));
    let expiries: Vec<Option<ExpiryFit>> = rows.iter().map(e).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            cols::ts(rows.iter().map(|r| r.at)),
            cols::date(rows.iter().map(|r| r.date)),
            cols::strs(rows.iter().map(|r| if e(r).is_some() { EXPIRY } else { GRID })),
            cols::opt_date(expiries.iter().map(|x| x.as_ref().map(|x| x.expiry))),
            cols::opt_i64s(rows.iter().map(|r| g(r).map(|x| x.days))),
            gf(|x| x.delta),
            cols::f64s(rows.iter().map(|r| r.t)),
            cols::f64s(rows.iter().map(|r| r.forward)),
            cols::f64s(rows.iter().map(|r| r.discount)),
            gf(|x| x.strike),
            gf(|x| x.k),
            gf(|x| x.iv),
            cols::opt_f64s(rows.iter().map(|r| r.atm_vol)),
            svi(0),
            svi(1),
            svi(2),
            svi(3),
            svi(4),
            ef(|x| x.rmse),
            cols::opt_i64s(expiries.iter().map(|x| x.as_ref().map(|x| x.points))),
            bools(expiries.iter().map(|x| x.as_ref().map(|x| x.butterfly_ok))),
            bools(expiries.iter().map(|x| x.as_ref().map(|x| x.calendar_ok))),
            cols::opt_strs(expiries.iter().map(|x| x.as_ref().map(|x| x.forward_source.as_str()))),
            opt_ts(expiries.iter().map(|x| x.as_ref().map(|x| x.oldest_quote))),
            opt_ts(expiries.iter().map(|x| x.as_ref().map(|x| x.newest_quote))),
            cols::f64s(rows.iter().map(|r| r.spot)),
            cols::strs(rows.iter().map(|r| r.series.as_str())),
            cols::strs(rows.iter().map(|r| r.listing.as_str())),
            cols::ts(rows.iter().map(|r| r.computed_at)),
        ],
    )
    .expect("columns match the schema")
}

/// Reads a batch of the file schema back into rows.
pub fn from_batch(batch: &RecordBatch) -> Vec<SurfaceRow> {
    let c = Cols(batch);
    let flag = |name: &str, i: usize| {
        let a = batch.column_by_name(name).and_then(|a| a.as_any().downcast_ref::<BooleanArray>());
        a.is_some_and(|a| a.is_valid(i) && a.value(i))
    };
    let opt_ts = |name: &str, i: usize| {
        let a = batch.column_by_name(name).and_then(|a| a.as_any().downcast_ref::<TimestampMicrosecondArray>());
        a.filter(|a| a.is_valid(i)).and_then(|a| DateTime::from_timestamp_micros(a.value(i))).unwrap_or_default()
    };
    let num = |name: &str, i: usize| c.opt_f64(name, i).unwrap_or(f64::NAN);
    (0..batch.num_rows())
        .map(|i| {
            let kind = if c.str("kind", i) == EXPIRY {
                RowKind::Expiry(ExpiryFit {
                    expiry: c.opt_date("expiry", i).unwrap_or_default(),
                    svi: ["a", "b", "rho", "m", "sigma"].map(|n| num(n, i)),
                    rmse: num("rmse", i),
                    points: c.opt_i64("points", i).unwrap_or(0),
                    butterfly_ok: flag("butterfly_ok", i),
                    calendar_ok: flag("calendar_ok", i),
                    forward_source: c.opt_str("forward_source", i).unwrap_or_default(),
                    oldest_quote: opt_ts("oldest_quote", i),
                    newest_quote: opt_ts("newest_quote", i),
                })
            } else {
                RowKind::Grid(GridFit {
                    days: c.opt_i64("days", i).unwrap_or(0),
                    delta: num("delta", i),
                    strike: num("strike", i),
                    k: num("k", i),
                    iv: num("iv", i),
                })
            };
            SurfaceRow {
                at: c.ts("at", i),
                date: c.date("date", i),
                kind,
                t: c.f64("t", i),
                forward: c.f64("forward", i),
                discount: c.f64("discount", i),
                atm_vol: c.opt_f64("atm_vol", i),
                spot: c.f64("spot", i),
                series: c.str("series", i),
                listing: c.str("listing", i),
                computed_at: c.ts("computed_at", i),
            }
        })
        .collect()
}

/// Refuses rows no fit produces: non-finite or non-positive forward, discount, spot or maturity,
/// and vols that are not finite and positive where present.
pub(crate) fn check_rows(batch: &RecordBatch) -> Result<(), String> {
    cols::check_non_negative(batch, &["t", "forward", "discount", "spot", "iv", "atm_vol", "strike"])?;
    for name in ["forward", "discount", "spot"] {
        let a = batch.column_by_name(name).and_then(|a| a.as_any().downcast_ref::<arrow::array::Float64Array>());
        if let Some((i, v)) =
            a.and_then(|a| a.iter().enumerate().find_map(|(i, v)| v.filter(|v| *v <= 0.0).map(|v| (i, v))))
        {
            return Err(format!("row {i}: {name} = {v} (must be positive)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Vec<SurfaceRow> {
        let at: DateTime<Utc> = "2024-11-22T15:00:00Z".parse().unwrap();
        let base = |kind: RowKind, t: f64| SurfaceRow {
            at,
            date: "2024-11-22".parse().unwrap(),
            kind,
            t,
            forward: 101.0,
            discount: 0.99,
            atm_vol: Some(0.2),
            spot: 100.0,
            series: "1 min MIDPOINT".into(),
            listing: "bars".into(),
            computed_at: at,
        };
        vec![
            base(
                RowKind::Expiry(ExpiryFit {
                    expiry: "2024-12-20".parse().unwrap(),
                    svi: [0.001, 0.02, -0.5, 0.01, 0.1],
                    rmse: 0.0004,
                    points: 17,
                    butterfly_ok: true,
                    calendar_ok: false,
                    forward_source: "parity".into(),
                    oldest_quote: at - chrono::Duration::minutes(2),
                    newest_quote: at,
                }),
                0.08,
            ),
            base(RowKind::Grid(GridFit { days: 30, delta: 0.25, strike: 104.0, k: 0.03, iv: 0.19 }), 30.0 / 365.0),
        ]
    }

    #[test]
    fn round_trip() {
        let rows = sample();
        let batch = to_batch(&rows);
        assert_eq!(from_batch(&batch), rows);
        assert!(check_rows(&batch).is_ok());
        let mut bad = rows.clone();
        bad[1].forward = f64::NAN;
        assert!(check_rows(&to_batch(&bad)).unwrap_err().contains("forward"));
    }
}
