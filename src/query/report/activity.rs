//! The report's other sections: requests per day, chain-snapshot ages, capture gaps and the
//! latest stored surface per symbol.

use super::ReportOptions;
use crate::calendar;
use crate::datasets::{surfaces, Dataset};
use crate::domain::codes::CONNECTIVITY_LOST;
use crate::domain::Symbol;
use crate::error::Result;
use crate::lake::manifest::{Entry, Outcome, SymbolManifest};
use crate::lake::Lake;
use crate::query::{collect, ScanFilter, Scans};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use polars::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// A pause between two requests longer than this is time between runs, not a wait within one.
const RUN_BREAK: Duration = Duration::minutes(15);

/// What was asked of the gateway on one day (New York date of the request).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DayActivity {
    /// The New York date.
    pub date: NaiveDate,
    /// Requests answered with rows.
    pub ok: usize,
    /// Requests answered empty.
    pub empty: usize,
    /// Requests answered with an error.
    pub errors: usize,
    /// Seconds between one request's answer and the next request within a run (pacing waits
    /// and other pauses; see the module docs of `report`).
    pub idle_secs: f64,
}

impl DayActivity {
    /// Every request of the day.
    pub fn requests(&self) -> usize {
        self.ok + self.empty + self.errors
    }
}

/// The latest chain snapshot of a symbol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainAge {
    /// The underlying.
    pub symbol: String,
    /// When the latest snapshot was taken, if any was.
    pub latest: Option<DateTime<Utc>>,
    /// Its age in seconds at the report's time.
    pub age_secs: Option<i64>,
    /// Snapshots stored.
    pub snapshots: usize,
}

/// A stretch of live capture that was lost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaptureGap {
    /// The symbol.
    pub symbol: String,
    /// First instant lost.
    pub start: DateTime<Utc>,
    /// Capture back.
    pub end: DateTime<Utc>,
}

/// One fitted expiry of a stored surface.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurfaceSlice {
    /// Expiration date.
    pub expiry: NaiveDate,
    /// Years to expiry.
    pub t: f64,
    /// ATM implied vol.
    pub atm_vol: Option<f64>,
    /// SVI `a`, `b`, `ρ`, `m`, `σ` (total variance in log-moneyness).
    pub svi: Option<[f64; 5]>,
}

impl SurfaceSlice {
    /// The implied vol at log-moneyness `k` from the SVI fit.
    pub fn vol_at(&self, k: f64) -> Option<f64> {
        let [a, b, rho, m, sigma] = self.svi?;
        let w = a + b * (rho * (k - m) + ((k - m).powi(2) + sigma * sigma).sqrt());
        (w > 0.0 && self.t > 0.0).then(|| (w / self.t).sqrt())
    }
}

/// The latest surface stored for a symbol (the `surfaces` dataset).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurfacePicture {
    /// The underlying.
    pub symbol: String,
    /// The instant it was fitted at; `None` when none is stored.
    pub at: Option<DateTime<Utc>>,
    /// The underlying's price then.
    pub spot: Option<f64>,
    /// Its expiries, nearest first.
    pub slices: Vec<SurfaceSlice>,
    /// Not stored: fitted for the report from the latest session's option bars.
    pub computed: bool,
    /// Why there is no surface, when there is none.
    pub note: Option<String>,
}

/// Whether an entry is a request sent to the gateway (not a revocation, a capture gap or a
/// derived dataset's computation).
fn asked(e: &Entry) -> bool {
    e.request.sec_type.is_some()
        && matches!(e.request.dataset, Dataset::Contracts | Dataset::Chains | Dataset::EquityBars | Dataset::OptionBars)
}

/// Requests and idle time per New York day, over every symbol.
pub(super) fn per_day(manifests: &[(Symbol, SymbolManifest)], opts: &ReportOptions) -> Vec<DayActivity> {
    let mut entries: Vec<&Entry> = manifests.iter().flat_map(|(_, m)| m.entries.iter()).filter(|e| asked(e)).collect();
    entries.sort_by_key(|e| e.requested_at);
    let keep = |d: NaiveDate| opts.from.is_none_or(|f| d >= f) && opts.to.is_none_or(|t| d <= t);
    let mut days: BTreeMap<NaiveDate, DayActivity> = BTreeMap::new();
    let mut previous: Option<DateTime<Utc>> = None;
    for e in entries {
        let date = calendar::trading_date(e.requested_at);
        let idle = previous.map(|p| e.requested_at - p).filter(|d| *d > Duration::zero() && *d < RUN_BREAK);
        previous = Some(previous.map_or(e.completed_at, |p| p.max(e.completed_at)));
        if !keep(date) {
            continue;
        }
        let day = days.entry(date).or_insert_with(|| DayActivity { date, ..Default::default() });
        match e.outcome {
            Outcome::Ok { .. } => day.ok += 1,
            Outcome::Empty => day.empty += 1,
            _ => day.errors += 1,
        }
        if let Some(d) = idle {
            day.idle_secs += d.num_microseconds().unwrap_or(0) as f64 / 1e6;
        }
    }
    days.into_values().collect()
}

/// The capture gaps recorded in the manifests, newest first.
pub(super) fn capture_gaps(manifests: &[(Symbol, SymbolManifest)]) -> Vec<CaptureGap> {
    let mut out: Vec<CaptureGap> = manifests
        .iter()
        .flat_map(|(s, m)| m.entries.iter().map(move |e| (s, e)))
        .filter(|(_, e)| {
            e.request.dataset == Dataset::Quotes && matches!(e.outcome, Outcome::Error { code: CONNECTIVITY_LOST, .. })
        })
        .map(|(s, e)| CaptureGap { symbol: s.to_string(), start: e.requested_at, end: e.completed_at })
        .collect();
    out.sort_by(|a, b| b.start.cmp(&a.start).then(a.symbol.cmp(&b.symbol)));
    out
}

fn filter(symbols: &[Symbol]) -> ScanFilter {
    ScanFilter { symbols: Some(symbols.to_vec()), ..Default::default() }
}

fn micros(us: Option<i64>) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us?)
}

/// The latest chain snapshot per symbol (every symbol listed, with or without one).
pub(super) async fn chain_ages(lake: &Lake, symbols: &[Symbol], now: DateTime<Utc>) -> Result<Vec<ChainAge>> {
    let mut out: BTreeMap<String, ChainAge> = symbols
        .iter()
        .map(|s| (s.to_string(), ChainAge { symbol: s.to_string(), latest: None, age_secs: None, snapshots: 0 }))
        .collect();
    if symbols.is_empty() {
        return Ok(vec![]);
    }
    let lf = Scans::new(lake).scan(Dataset::Chains, &filter(symbols)).await?;
    let df = collect(lf.group_by([col("symbol")]).agg([
        col("snapshot_at").max().dt().timestamp(TimeUnit::Microseconds).alias("latest"),
        col("snapshot_at").n_unique().cast(DataType::UInt64).alias("snapshots"),
    ]))
    .await?;
    let (sym, latest, n) = (
        df.column("symbol")?.str()?.clone(),
        df.column("latest")?.i64()?.clone(),
        df.column("snapshots")?.u64()?.clone(),
    );
    for i in 0..df.height() {
        let Some(row) = sym.get(i).and_then(|s| out.get_mut(s)) else { continue };
        row.latest = micros(latest.get(i));
        row.age_secs = row.latest.map(|t| (now - t).num_seconds());
        row.snapshots = n.get(i).unwrap_or(0) as usize;
    }
    Ok(out.into_values().collect())
}

/// The latest stored surface per symbol (every symbol listed, with or without one).
pub(super) async fn surfaces(lake: &Lake, symbols: &[Symbol]) -> Result<Vec<SurfacePicture>> {
    let mut out: BTreeMap<String, SurfacePicture> = symbols
        .iter()
        .map(|s| {
            (
                s.to_string(),
                SurfacePicture {
                    symbol: s.to_string(),
                    at: None,
                    spot: None,
                    slices: vec![],
                    computed: false,
                    note: None,
                },
            )
        })
        .collect();
    if symbols.is_empty() {
        return Ok(vec![]);
    }
    let lf = Scans::new(lake).scan(Dataset::Surfaces, &filter(symbols)).await?;
    let lf = lf
        .filter(col("kind").eq(lit(surfaces::EXPIRY)))
        .filter(col("at").eq(col("at").max().over([col("symbol")])?))
        .select([
            col("symbol"),
            col("at").dt().timestamp(TimeUnit::Microseconds).alias("at"),
            col("expiry"),
            col("t"),
            col("spot"),
            col("atm_vol"),
            col("a"),
            col("b"),
            col("rho"),
            col("m"),
            col("sigma"),
        ])
        .sort(["symbol", "expiry"], Default::default());
    let df = collect(lf).await?;
    let sym = df.column("symbol")?.str()?.clone();
    let at = df.column("at")?.i64()?.clone();
    let expiries = df.column("expiry")?.date()?.physical().clone();
    let num = |name: &str| -> Result<Float64Chunked> { Ok(df.column(name)?.f64()?.clone()) };
    let (t, spot, atm) = (num("t")?, num("spot")?, num("atm_vol")?);
    let svi = [num("a")?, num("b")?, num("rho")?, num("m")?, num("sigma")?];
    for i in 0..df.height() {
        let (Some(pic), Some(expiry)) = (sym.get(i).and_then(|s| out.get_mut(s)), expiries.get(i)) else { continue };
        pic.at = micros(at.get(i));
        pic.spot = spot.get(i);
        let params: Option<Vec<f64>> = svi.iter().map(|c| c.get(i)).collect();
        pic.slices.push(SurfaceSlice {
            expiry: calendar::date_of_days(expiry),
            t: t.get(i).unwrap_or(0.0),
            atm_vol: atm.get(i),
            svi: params.and_then(|p| p.try_into().ok()),
        });
    }
    for pic in out.values_mut().filter(|p| p.at.is_none()) {
        if let Ok(symbol) = Symbol::new(&pic.symbol) {
            computed(lake, &symbol, pic).await?;
        }
    }
    Ok(out.into_values().collect())
}

/// A symbol without a stored surface: the surface fitted at the close of the last session its
/// option bars reach (`query::surface`, as `twslake surface` fits it), or why there is none.
async fn computed(lake: &Lake, symbol: &Symbol, pic: &mut SurfacePicture) -> Result<()> {
    let lf = Scans::new(lake).scan(Dataset::OptionBars, &ScanFilter::symbol(symbol)).await?;
    let df = collect(lf.select([col("date").max()])).await?;
    let Some(last) = crate::query::coverage::dates_of(&df, "date")?.first().copied() else {
        pic.note = Some("no surface stored and no option bars to fit one from".into());
        return Ok(());
    };
    let Some(session) = calendar::session(last) else { return Ok(()) };
    let opts = crate::query::surface::SurfaceOptions::default();
    match crate::query::surface::Surfaces::new(lake).surface(symbol, session.close, &opts).await {
        Ok(s) => {
            pic.at = Some(s.at);
            pic.spot = Some(s.spot);
            pic.computed = true;
            pic.slices = s
                .expiries
                .iter()
                .map(|x| SurfaceSlice {
                    expiry: x.expiry,
                    t: x.t,
                    atm_vol: Some(x.atm_vol),
                    svi: Some([x.a, x.b, x.rho, x.m, x.sigma]),
                })
                .collect();
        }
        Err(e) => pic.note = Some(format!("no surface stored, and none could be fitted at {}: {e}", session.close)),
    }
    Ok(())
}
