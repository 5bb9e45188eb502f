//! The small example lake of `lake-layout/example/`: every dataset, two symbols (one with a
//! space), daily bars across a year boundary, intraday equity and option bars, a chain snapshot,
//! quotes, surfaces and a corporate action. Fully deterministic (fixed ids and times), so the
//! committed copy is byte-for-byte what this code writes; a test holds the two together.

use super::manifest::{Entry, Outcome, Request};
use super::Lake;
use crate::calendar;
use crate::datasets::corporate_actions::{self, CorporateAction};
use crate::datasets::surfaces::{ExpiryFit, GridFit, RowKind, SurfaceRow};
use crate::datasets::{chains, contracts, equity_bars, option_bars, quotes, surfaces, Dataset};
use crate::domain::DateWindow;
use crate::domain::{BarSize, Right, SecType, Series, Symbol, WhatToShow};
use crate::error::Result;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Duration, NaiveDate, Utc};

fn d(s: &str) -> NaiveDate {
    s.parse().expect("literal date")
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("literal time")
}

fn request(
    dataset: Dataset,
    symbol: &Symbol,
    sec_type: SecType,
    series: Option<Series>,
    window: Option<DateWindow>,
) -> Request {
    Request { series, use_rth: series.is_some(), window, ..Request::new(dataset, symbol, sec_type) }
}

struct Ids(u32);

impl Ids {
    fn entry(&mut self, request: Request, at: DateTime<Utc>, rows: usize) -> Entry {
        self.0 += 1;
        let outcome = if rows == 0 { Outcome::Empty } else { Outcome::Ok { rows: rows as u64 } };
        let mut e = Entry::new(request, at, at + Duration::seconds(2), outcome);
        e.id = format!("example{:04}", self.0);
        e
    }
}

fn daily_bars(days: &[NaiveDate], base: f64, at: DateTime<Utc>) -> Vec<equity_bars::Bar> {
    let series = Series { bar_size: BarSize::Day1, what_to_show: WhatToShow::Trades };
    days.iter()
        .enumerate()
        .map(|(i, day)| {
            let p = base + i as f64;
            let open = calendar::session(*day).expect("trading day").open;
            equity_bars::Bar {
                ts: open,
                date: *day,
                series,
                open: p,
                high: p + 2.0,
                low: p - 1.5,
                close: p + 0.5,
                volume: Some(1_000_000.0 + i as f64),
                wap: Some(p + 0.2),
                bar_count: Some(5000 + i as i64),
                ingested_at: at,
            }
        })
        .collect()
}

fn minute_bars(day: NaiveDate, series: Series, n: i64, base: f64, at: DateTime<Utc>) -> Vec<equity_bars::Bar> {
    let open = calendar::session(day).expect("trading day").open;
    (0..n)
        .map(|m| {
            let p = base + m as f64 * 0.05;
            equity_bars::Bar {
                ts: open + Duration::minutes(m),
                date: day,
                series,
                open: p,
                high: p + 0.1,
                low: p - 0.1,
                close: p + 0.02,
                volume: (series.what_to_show == WhatToShow::Trades).then_some(100.0 * (m + 1) as f64),
                wap: (series.what_to_show == WhatToShow::Trades).then_some(p),
                bar_count: (series.what_to_show == WhatToShow::Trades).then_some(m + 1),
                ingested_at: at,
            }
        })
        .collect()
}

/// Writes the example lake into `lake` (which should be empty).
pub async fn write_example(lake: &Lake) -> Result<()> {
    let mut ids = Ids(0);
    let at = t("2024-01-05T22:00:00Z");
    for (sym, con_id, base) in [("SPY", 756733, 470.0), ("BRK B", 72063691, 360.0)] {
        let symbol = Symbol::new(sym)?;
        let stock = contracts::Contract {
            con_id,
            sec_type: SecType::Stock,
            exchange: "SMART".into(),
            primary_exchange: Some(if sym == "SPY" { "ARCA" } else { "NYSE" }.into()),
            currency: "USD".into(),
            local_symbol: Some(sym.into()),
            trading_class: Some(sym.replace(' ', "")),
            min_tick: Some(0.01),
            time_zone: Some("US/Eastern".into()),
            trading_hours: Some("20240105:0930-20240105:1600".into()),
            liquid_hours: Some("20240105:0930-20240105:1600".into()),
            fetched_at: at,
            ..Default::default()
        };
        let mut all = vec![stock];
        let expiry = d("2024-01-19");
        let option_contracts: Vec<option_bars::OptionContract> = [(Right::Call, base), (Right::Put, base)]
            .iter()
            .enumerate()
            .map(|(i, (right, strike))| option_bars::OptionContract {
                con_id: con_id * 10 + i as i64,
                expiry,
                strike: *strike,
                right: *right,
                multiplier: 100.0,
            })
            .collect();
        for c in &option_contracts {
            all.push(contracts::Contract {
                con_id: c.con_id,
                sec_type: SecType::Option,
                exchange: "SMART".into(),
                currency: "USD".into(),
                multiplier: Some(100.0),
                expiry: Some(c.expiry),
                strike: Some(c.strike),
                right: Some(c.right),
                trading_class: Some(sym.replace(' ', "")),
                fetched_at: at,
                exercise_style: Some(crate::domain::ExerciseStyle::of_class(sym)),
                ..Default::default()
            });
        }
        let rec = |ds, sec: SecType, series, window| request(ds, &symbol, sec, series, window);
        let batch = contracts::to_batch(&all);
        lake.record_entry(ids.entry(rec(Dataset::Contracts, SecType::Stock, None, None), at, all.len()), Some(&batch))
            .await?;

        let snap = t("2024-01-05T15:00:00Z");
        let chain: Vec<chains::ChainRow> = [expiry, d("2024-02-16")]
            .into_iter()
            .flat_map(|e| [base - 5.0, base, base + 5.0].map(|k| (e, k)))
            .map(|(expiration, strike)| chains::ChainRow {
                snapshot_at: snap,
                date: d("2024-01-05"),
                underlying_con_id: con_id,
                exchange: "SMART".into(),
                trading_class: sym.replace(' ', ""),
                multiplier: 100.0,
                expiration,
                strike,
                ingested_at: snap,
            })
            .collect();
        let batch = chains::to_batch(&chain);
        lake.record_entry(
            ids.entry(rec(Dataset::Chains, SecType::Option, None, None), snap, chain.len()),
            Some(&batch),
        )
        .await?;

        let daily = Series { bar_size: BarSize::Day1, what_to_show: WhatToShow::Trades };
        let window = DateWindow::new(d("2023-12-27"), d("2024-01-05"))?;
        let bars = daily_bars(&window.trading_days(), base, at);
        let batch = equity_bars::to_batch(&bars);
        let e = ids.entry(rec(Dataset::EquityBars, SecType::Stock, Some(daily), Some(window)), at, bars.len());
        let daily_id = e.id.clone();
        lake.record_entry(e, Some(&batch)).await?;
        // A holiday asked on its own: answered empty, remembered, never asked again.
        let holiday = DateWindow::new(d("2024-01-01"), d("2024-01-01"))?;
        let e = ids.entry(rec(Dataset::EquityBars, SecType::Stock, Some(daily), Some(holiday)), at, 0);
        lake.record_entry(e, None).await?;

        let minute = Series { bar_size: BarSize::Min1, what_to_show: WhatToShow::Trades };
        let day = d("2024-01-05");
        let bars = minute_bars(day, minute, 30, base, at);
        let batch = equity_bars::to_batch(&bars);
        let w = Some(DateWindow::new(day, day)?);
        lake.record_entry(
            ids.entry(rec(Dataset::EquityBars, SecType::Stock, Some(minute), w), at, bars.len()),
            Some(&batch),
        )
        .await?;

        let mid = Series { bar_size: BarSize::Min1, what_to_show: WhatToShow::Midpoint };
        for c in &option_contracts {
            let rows: Vec<option_bars::OptionBar> = minute_bars(day, mid, 10, 4.0, at)
                .into_iter()
                .map(|bar| option_bars::OptionBar { contract: c.clone(), bar })
                .collect();
            let mut r = rec(Dataset::OptionBars, SecType::Option, Some(mid), w);
            (r.con_id, r.expiry, r.strike, r.right) = (Some(c.con_id), Some(c.expiry), Some(c.strike), Some(c.right));
            let batch = option_bars::to_batch(&rows);
            lake.record_entry(ids.entry(r, at, rows.len()), Some(&batch)).await?;
        }

        let q: Vec<quotes::Quote> = (0..5)
            .map(|i| quotes::Quote {
                ts: snap + Duration::seconds(i),
                date: day,
                con_id: option_contracts[0].con_id,
                seq: i,
                sec_type: SecType::Option,
                expiry: Some(expiry),
                strike: Some(base),
                right: Some(Right::Call),
                bid: Some(4.0 + i as f64 * 0.01),
                ask: Some(4.1 + i as f64 * 0.01),
                implied_vol: Some(0.14),
                delta: Some(0.52),
                gamma: Some(0.03),
                vega: Some(0.25),
                theta: Some(-0.2),
                underlying_price: Some(base + 0.3),
                ingested_at: snap + Duration::seconds(i),
                ..Default::default()
            })
            .collect();
        let batch: RecordBatch = quotes::to_batch(&q);
        lake.write(Dataset::Quotes, &symbol, &batch, None).await?;

        // The surface history of the day's close: one fitted expiry and two grid points, as
        // `twslake surfaces` writes them (the two option contracts here are too few to fit).
        let close = calendar::session(day).expect("trading day").close;
        let row = |kind, t: f64, forward: f64, atm_vol| SurfaceRow {
            at: close,
            date: day,
            kind,
            t,
            forward,
            discount: 0.998,
            atm_vol,
            spot: base + 1.47,
            series: "1 min MIDPOINT".into(),
            listing: "snapshot".into(),
            computed_at: at,
        };
        let fit = ExpiryFit {
            expiry,
            svi: [0.0004, 0.012, -0.62, 0.004, 0.03],
            rmse: 0.0011,
            points: 9,
            butterfly_ok: true,
            calendar_ok: true,
            forward_source: "parity".into(),
            oldest_quote: close - Duration::minutes(3),
            newest_quote: close,
        };
        let rows = vec![
            row(RowKind::Expiry(fit), 14.0 / 365.0, base + 1.6, Some(0.131)),
            row(
                RowKind::Grid(GridFit { days: 7, delta: 0.25, strike: base + 6.5, k: 0.0135, iv: 0.118 }),
                7.0 / 365.0,
                base + 1.55,
                Some(0.129),
            ),
            row(
                RowKind::Grid(GridFit { days: 7, delta: 0.5, strike: base + 1.9, k: 0.0007, iv: 0.128 }),
                7.0 / 365.0,
                base + 1.55,
                Some(0.129),
            ),
        ];
        let w = DateWindow::new(day, day)?;
        let r = Request {
            step_secs: Some(30 * 60),
            window: Some(w),
            inputs: Some("example".into()),
            ..Request::new(Dataset::Surfaces, &symbol, SecType::Option)
        };
        let batch = surfaces::to_batch(&rows);
        lake.record_entry(ids.entry(r, at, rows.len()), Some(&batch)).await?;

        // A corporate action as `update`'s overlap check records it (here: nothing to revoke).
        let (ratio, kind) =
            if sym == "SPY" { (1.0061, corporate_actions::OTHER) } else { (2.0, corporate_actions::SPLIT) };
        let action = CorporateAction {
            date: d("2024-01-05"),
            effective_date: d("2024-01-05"),
            ratio,
            kind: kind.into(),
            series: format!("{} {}", daily.bar_size, daily.what_to_show),
            how: corporate_actions::OVERLAP.into(),
            request_id: daily_id,
            overlap_from: d("2023-12-28"),
            overlap_to: d("2024-01-04"),
            revoked: 0,
            revocation_id: None,
            detected_at: at,
        };
        let batch = corporate_actions::to_batch(&[action]);
        // Its own ids, so the other entries keep theirs.
        let mut e =
            Entry::new(rec(Dataset::CorporateActions, SecType::Stock, None, None), at, at, Outcome::Ok { rows: 1 });
        e.id = format!("example-corporate-{}", if sym == "SPY" { 1 } else { 2 });
        lake.record_entry(e, Some(&batch)).await?;
    }
    Ok(())
}

/// The name of synthetic symbol `i`: `S0000`, `S0001`, …
pub fn synthetic_symbol(i: usize) -> Symbol {
    Symbol::new(&format!("S{i:04}")).expect("valid synthetic symbol")
}

/// A synthetic lake for benchmarks: `symbols` symbols with daily bars for the `years` calendar
/// years ending with 2024, one request per symbol and year, as an ingest would leave it.
pub async fn write_synthetic(lake: &Lake, symbols: usize, years: i32) -> Result<()> {
    use futures::{stream, StreamExt, TryStreamExt};
    let daily = Series { bar_size: BarSize::Day1, what_to_show: WhatToShow::Trades };
    let at = t("2025-01-02T00:00:00Z");
    let jobs = (0..symbols).flat_map(|i| (2025 - years..2025).map(move |y| (i, y)));
    stream::iter(jobs)
        .map(|(i, year)| async move {
            let symbol = synthetic_symbol(i);
            let window = DateWindow::new(d(&format!("{year}-01-01")), d(&format!("{year}-12-31")))?;
            let bars = daily_bars(&window.trading_days(), 20.0 + (i % 300) as f64, at);
            let req = request(Dataset::EquityBars, &symbol, SecType::Stock, Some(daily), Some(window));
            let outcome = Outcome::Ok { rows: bars.len() as u64 };
            lake.record(req, at, outcome, Some(&equity_bars::to_batch(&bars))).await.map(|_| ())
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}
