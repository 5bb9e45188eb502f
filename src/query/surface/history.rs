//! The surface history: the surface fitted at every step of every session of a date range and
//! stored in the `surfaces` dataset (`twslake surfaces SPY --from … --to … --every 30m`).
//!
//! - **Instants**: from each session's open, every `every`, up to its close, which is always one
//!   of them (the closing surface is the one most studies use; 13:00 on early closes). Instants
//!   after `now` are not fitted.
//! - **Same answer as [`Surfaces::surface`]**: a session's inputs are loaded once
//!   ([`Surfaces::surface_inputs`]) and each instant is fitted from them by the same code.
//! - **Each session once**: a session's rows and its manifest entry are recorded together, like a
//!   gateway's answer ([`crate::Lake::record_many`]). The entry holds the step (`step_secs`, e.g. 1800)
//!   and a digest of the request ids of every partition the session was computed from
//!   (`inputs`): a second run skips sessions whose entry is final (the session was over when it
//!   was computed) with an unchanged digest, and fits again the ones whose option bars, spot
//!   bars or chain snapshots changed since.
//! - **Parallel**: instants are fitted on every core; sessions are written in chunks, with a
//!   progress line per chunk.

use super::grid::{self, GridPoint};
use super::Surfaces;
use super::{ExpirySlice, Surface, SurfaceInputs, SurfaceOptions};
use crate::calendar;
use crate::datasets::surfaces::{ExpiryFit, GridFit, RowKind, SurfaceRow};
use crate::datasets::{surfaces, Dataset};
use crate::domain::Symbol;
use crate::domain::{DateWindow, SecType, WhatToShow};
use crate::error::{Error, Result};
use crate::lake::manifest::{Entry, Outcome, Request};
use crate::query::series::Holdings;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Sessions written per record (one pending file, one log, one rewrite of each day partition).
const CHUNK_SESSIONS: usize = 5;

/// How a surface history is built.
#[derive(Debug, Clone)]
pub struct HistoryOptions {
    /// The step between instants (at least a minute, at most a session).
    pub every: Duration,
    /// How each surface is built.
    pub surface: SurfaceOptions,
    /// Threads fitting instants (default: every core).
    pub threads: usize,
    /// Print a line per chunk of sessions.
    pub progress: bool,
}

impl HistoryOptions {
    /// Every `every`, default surface options, every core, no progress.
    pub fn every(every: Duration) -> Self {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        HistoryOptions { every, surface: SurfaceOptions::default(), threads, progress: false }
    }
}

/// What a run of [`Surfaces::surface_history`] did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct HistoryReport {
    /// Sessions in the range.
    pub sessions: usize,
    /// Sessions skipped: already written from the same inputs.
    pub sessions_done: usize,
    /// Sessions fitted and written now.
    pub sessions_written: usize,
    /// Instants fitted.
    pub instants: usize,
    /// Instants with a surface (the others had no fresh quote or no spot).
    pub surfaces: usize,
    /// Rows written.
    pub rows: usize,
    /// Seconds spent loading the sessions' inputs (bars, spot, chain snapshots).
    pub load_secs: f64,
    /// Seconds spent fitting (wall clock, all threads).
    pub fit_secs: f64,
    /// Seconds spent writing the rows and their manifest entries.
    pub write_secs: f64,
    /// Seconds in all.
    pub secs: f64,
    /// Why instants had no surface: the first few reasons.
    pub failures: Vec<String>,
}

/// Parses a step: `30m`, `30min`, `30 mins`, `1h`, `2 hours`, `90s`; at least 1 minute, at most
/// 8 hours, a whole number of seconds.
pub fn parse_step(s: &str) -> Result<Duration> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let why = "use minutes or hours, e.g. 30m, 1h, 90m (at least 1 minute, at most 8 hours)";
    let n: i64 = n.parse().map_err(|_| Error::bad_input("step", s, why))?;
    let secs = match unit.trim() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        _ => return Err(Error::bad_input("step", s, why)),
    };
    let total =
        n.checked_mul(secs).filter(|x| (60..=8 * 3600).contains(x)).ok_or_else(|| Error::bad_input("step", s, why))?;
    Ok(Duration::seconds(total))
}

/// The instants of the session of `date` at `every` (see the module docs); none on a closed day.
pub fn instants(date: NaiveDate, every: Duration) -> Vec<DateTime<Utc>> {
    let Some(s) = calendar::session(date) else { return Vec::new() };
    let every = every.max(Duration::minutes(1));
    let mut out: Vec<DateTime<Utc>> = (1..).map(|i| s.open + every * i).take_while(|t| *t <= s.close).collect();
    if out.last() != Some(&s.close) {
        out.push(s.close);
    }
    out
}

/// The rows of one surface: one per fitted expiry, one per standardized grid point.
pub fn rows_of(s: &Surface, computed_at: DateTime<Utc>) -> Vec<SurfaceRow> {
    let base = |kind: RowKind, t: f64, forward: f64, discount: f64, atm_vol: Option<f64>| SurfaceRow {
        at: s.at,
        date: calendar::trading_date(s.at),
        kind,
        t,
        forward,
        discount,
        atm_vol,
        spot: s.spot,
        series: s.series.clone(),
        listing: s.listing.name().into(),
        computed_at,
    };
    let expiry = |e: &ExpirySlice| {
        let fit = ExpiryFit {
            expiry: e.expiry,
            svi: [e.a, e.b, e.rho, e.m, e.sigma],
            rmse: e.rmse,
            points: e.points.len() as i64,
            butterfly_ok: e.butterfly_ok,
            calendar_ok: e.calendar_ok,
            forward_source: serde_json::to_value(e.forward_source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            oldest_quote: e.oldest_quote,
            newest_quote: e.newest_quote,
        };
        base(RowKind::Expiry(fit), e.t, e.forward, e.discount, Some(e.atm_vol).filter(|v| v.is_finite()))
    };
    let point = |g: &GridPoint| {
        let fit = GridFit { days: g.days, delta: g.delta, strike: g.strike, k: g.k, iv: g.iv };
        base(RowKind::Grid(fit), g.t, g.forward, g.discount, g.atm_vol)
    };
    let mut rows: Vec<SurfaceRow> = s.expiries.iter().map(expiry).collect();
    rows.extend(grid::standardize(s).iter().map(point));
    rows
}

/// One session to compute: its date, instants and inputs digest.
struct Due {
    date: NaiveDate,
    instants: Vec<DateTime<Utc>>,
    inputs: String,
}

/// The surfaces of a chunk's instants, fitted on `threads` threads; in instant order.
fn fit_all(
    symbol: &Symbol,
    work: &[(usize, DateTime<Utc>)],
    inputs: &[Option<SurfaceInputs>],
    opts: &SurfaceOptions,
    threads: usize,
) -> Vec<Result<Surface>> {
    let next = AtomicUsize::new(0);
    let mut out: Vec<(usize, Result<Surface>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((day, at)) = work.get(i) else { break };
                        let r = match &inputs[*day] {
                            Some(inp) => inp.surface(symbol, *at, opts),
                            None => Err(Error::bad_input("point in time", symbol.to_string(), "no option bars")),
                        };
                        mine.push((i, r));
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

impl<'a> Surfaces<'a> {
    /// A digest of the request ids of the partitions a session's surfaces read: the intraday
    /// option and equity bars of the session and of the one before (staleness reaches back over
    /// the night), and the chain snapshots of the lookback.
    async fn surface_inputs_digest(&self, symbol: &Symbol, date: NaiveDate) -> Result<String> {
        let from = calendar::prev_trading_day(date);
        let chains_from = date - Duration::days(super::LOOKBACK_DAYS);
        let mut ids: BTreeSet<String> = BTreeSet::new();
        for ds in [Dataset::OptionBars, Dataset::EquityBars, Dataset::Chains] {
            for p in self.lake.partitions(ds, Some(symbol)).await? {
                let crate::lake::layout::Period::Day(d) = p.period else { continue };
                let lo = if ds == Dataset::Chains { chains_from } else { from };
                if d < lo || d > date {
                    continue;
                }
                let found = self.lake.footer_request_ids(&p.path()).await?.unwrap_or_default();
                ids.extend(found.into_iter().map(|id| format!("{}:{id}", p.path())));
            }
        }
        // FNV-1a: a stable digest across runs and platforms (std's hasher is neither).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in ids.iter().flat_map(|s| s.bytes().chain([0u8])) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        Ok(format!("{:016x}-{}", h, ids.len()))
    }

    /// Fits and stores the surfaces of `symbol` at every step of the sessions of `[from, to]`
    /// that are not stored yet from the same inputs (module docs); `now` bounds the instants.
    pub async fn surface_history(
        &self,
        symbol: &Symbol,
        from: NaiveDate,
        to: NaiveDate,
        now: DateTime<Utc>,
        opts: &HistoryOptions,
    ) -> Result<HistoryReport> {
        if from > to {
            return Err(Error::bad_input("date range", format!("{from} .. {to}"), "--from is after --to"));
        }
        let t0 = std::time::Instant::now();
        // Refused before anything is written: a symbol or range without option bars to fit.
        let held = Holdings::new(self.lake).held_series(Dataset::OptionBars, symbol).await?;
        let usable = |h: &crate::query::series::HeldSeries| match opts.surface.series {
            Some(s) => h.series == s,
            None => h.series.what_to_show == crate::domain::WhatToShow::Midpoint,
        };
        if !held.iter().any(|h| usable(h) && h.days_in(from, to) > 0) {
            let wanted = opts
                .surface
                .series
                .map_or(WhatToShow::Midpoint.to_string(), |s| format!("{} {}", s.bar_size, s.what_to_show));
            let why = format!(
                "no {wanted} option bars in this range; the lake holds these intraday option series: {}",
                crate::query::series::describe_all(&held)
            );
            return Err(Error::bad_input("surface history", format!("{symbol} {from} .. {to}"), why));
        }
        let step = opts.every.num_seconds().clamp(0, u32::MAX as i64) as u32;
        // Records a killed run left half done are settled first, as `update` settles them.
        self.lake.recover_manifest(symbol).await?;
        let manifest = self.lake.manifest(symbol).await?;
        let done = |date: NaiveDate, digest: &str| {
            manifest.entries.iter().any(|e| {
                let r = &e.request;
                r.dataset == Dataset::Surfaces
                    && r.step_secs == Some(step)
                    && r.window == Some(DateWindow { start: date, end: date })
                    && r.inputs.as_deref() == Some(digest)
                    && e.covered().is_some()
            })
        };
        let mut report = HistoryReport::default();
        let mut due = Vec::new();
        for date in calendar::trading_days(from, to) {
            let instants: Vec<DateTime<Utc>> = instants(date, opts.every).into_iter().filter(|t| *t <= now).collect();
            if instants.is_empty() {
                continue;
            }
            report.sessions += 1;
            let inputs = self.surface_inputs_digest(symbol, date).await?;
            if done(date, &inputs) {
                report.sessions_done += 1;
            } else {
                due.push(Due { date, instants, inputs });
            }
        }
        use crate::monitor::progress::Bar;
        let bar = if opts.progress {
            Bar::start(&format!("{:<8} surfaces", symbol.as_str()), due.len() as u64)
        } else {
            Bar::start_hidden()
        };
        for chunk in due.chunks(CHUNK_SESSIONS) {
            self.history_chunk(symbol, chunk, now, opts, step, &mut report).await?;
            bar.set(report.sessions_written as u64, format!("{} surfaces, {} rows", report.surfaces, report.rows));
        }
        report.secs = t0.elapsed().as_secs_f64();
        Ok(report)
    }

    async fn history_chunk(
        &self,
        symbol: &Symbol,
        chunk: &[Due],
        now: DateTime<Utc>,
        opts: &HistoryOptions,
        step: u32,
        report: &mut HistoryReport,
    ) -> Result<()> {
        let t_load = std::time::Instant::now();
        // The sessions' inputs load side by side (each a few Parquet reads and a polars collect).
        let loads = chunk.iter().map(|d| {
            let (first, last) = (d.instants[0], d.instants[d.instants.len() - 1]);
            self.surface_inputs(symbol, first, last, &opts.surface)
        });
        let mut inputs = Vec::with_capacity(chunk.len());
        for (d, loaded) in chunk.iter().zip(futures::future::join_all(loads).await) {
            inputs.push(match loaded {
                Ok(i) => Some(i),
                Err(Error::BadInput { reason, .. }) => {
                    report.failures.push(format!("{}: {reason}", d.date));
                    None
                }
                Err(e) => return Err(e),
            });
        }
        report.load_secs += t_load.elapsed().as_secs_f64();
        let work: Vec<(usize, DateTime<Utc>)> =
            chunk.iter().enumerate().flat_map(|(i, d)| d.instants.iter().map(move |t| (i, *t))).collect();
        let t0 = std::time::Instant::now();
        let (sym, surface_opts, threads) = (symbol.clone(), opts.surface.clone(), opts.threads);
        let (work, fitted) = tokio::task::spawn_blocking(move || {
            let fitted = fit_all(&sym, &work, &inputs, &surface_opts, threads);
            (work, fitted)
        })
        .await
        .map_err(|e| Error::Integrity(format!("fitting surfaces failed: {e}")))?;
        let fit_secs = t0.elapsed().as_secs_f64();
        let computed_at = now;
        let mut per_day: Vec<Vec<SurfaceRow>> = vec![Vec::new(); chunk.len()];
        for ((day, _), r) in work.iter().zip(fitted) {
            report.instants += 1;
            match r {
                Ok(s) => {
                    report.surfaces += 1;
                    per_day[*day].extend(rows_of(&s, computed_at));
                }
                Err(e) if report.failures.len() < 5 => report.failures.push(e.to_string()),
                Err(_) => {}
            }
        }
        let mut items = Vec::with_capacity(chunk.len());
        for (d, rows) in chunk.iter().zip(per_day) {
            let request = Request {
                step_secs: Some(step),
                window: Some(DateWindow { start: d.date, end: d.date }),
                inputs: Some(d.inputs.clone()),
                ..Request::new(Dataset::Surfaces, symbol, SecType::Option)
            };
            report.rows += rows.len();
            let outcome = if rows.is_empty() { Outcome::Empty } else { Outcome::Ok { rows: rows.len() as u64 } };
            let batch = (!rows.is_empty()).then(|| surfaces::to_batch(&rows));
            items.push((Entry::new(request, now, now, outcome), batch));
        }
        let t_write = std::time::Instant::now();
        self.lake.record_many(symbol, items).await?;
        report.write_secs += t_write.elapsed().as_secs_f64();
        report.sessions_written += chunk.len();
        report.fit_secs += fit_secs;
        if opts.progress && crate::monitor::progress::style() == crate::monitor::progress::Style::Lines {
            let (a, b) = (chunk[0].date, chunk[chunk.len() - 1].date);
            println!(
                "{:<8} surfaces     {a} .. {b}: {} instants, {} surfaces ({:.0}/s on {} threads), {} rows",
                symbol.as_str(),
                work.len(),
                report.surfaces,
                work.len() as f64 / fit_secs.max(1e-9),
                opts.threads,
                report.rows
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_and_name() {
        assert_eq!(parse_step("30m").unwrap(), Duration::minutes(30));
        assert_eq!(parse_step("30 mins").unwrap(), Duration::minutes(30));
        assert_eq!(parse_step("1h").unwrap(), Duration::hours(1));
        assert_eq!(parse_step("90s").unwrap(), Duration::seconds(90));
        for bad in ["", "30", "0m", "30x", "59s", "9h", "99999999999999999999m", "-5m"] {
            let e = parse_step(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn instants_run_from_the_open_to_the_close() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let full = instants(d("2024-11-22"), Duration::minutes(30));
        assert_eq!(full.len(), 13);
        assert_eq!(full[0].to_rfc3339(), "2024-11-22T15:00:00+00:00");
        assert_eq!(full[12].to_rfc3339(), "2024-11-22T21:00:00+00:00");
        // 45 minutes does not divide the session: the close is added.
        let odd = instants(d("2024-11-22"), Duration::minutes(45));
        assert_eq!(odd.len(), 9);
        assert_eq!(odd[8].to_rfc3339(), "2024-11-22T21:00:00+00:00");
        // The early close of the day after Thanksgiving, and a holiday.
        assert_eq!(
            instants(d("2024-11-29"), Duration::minutes(30)).last().unwrap().to_rfc3339(),
            "2024-11-29T18:00:00+00:00"
        );
        assert!(instants(d("2024-11-28"), Duration::minutes(30)).is_empty());
    }
}
