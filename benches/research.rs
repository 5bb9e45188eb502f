//! Research-query benchmarks (figures in BENCHMARKS.md, "Research queries"):
//! - implied vols from a polars column (100,000 options, 5–150 % vol, 1 day–2 years), one core;
//!   `benches/compare_iv.py` times py_vollib_vectorized and QuantLib on the same distribution;
//! - one 20-expiry × 50-strike surface fit from a panel in memory;
//! - a year of 1-minute option bars of one underlying read with the as-of spot join
//!   (`Lake::option_panel`), beside the same panel written by hand in polars over the same files;
//!   `benches/compare_asof_duckdb.py` runs DuckDB's ASOF join on them (the lake is built once
//!   under `$CARGO_TARGET_DIR/research-bench-lake`).

#[path = "../tests/it/research/market.rs"]
mod market;

use chrono::{Duration, NaiveDate};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use polars::prelude::TimeZone as PlTimeZone;
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use twslake::calendar::{time_to_expiry, YEAR_SECONDS};
use twslake::datasets::equity_bars::Bar;
use twslake::datasets::option_bars::{self, OptionBar, OptionContract};
use twslake::datasets::{equity_bars, Dataset};
use twslake::domain::Symbol;
use twslake::query::iv::{black_price, implied_vols, with_implied_vol, IvColumns};
use twslake::query::pit::PointInTime;
use twslake::query::pit::{AsOf, SPOT_SERIES};
use twslake::query::surface::{fit_surface, SurfaceOptions};
use twslake::{calendar, query, Lake};

const N_IV: usize = 100_000;

fn iv_frame() -> DataFrame {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut price, mut k, mut t, mut right) = (vec![], vec![], vec![], vec![]);
    for _ in 0..N_IV {
        let tt = ((1.0f64 / 365.0).ln() + rng.random::<f64>() * (2.0f64.ln() - (1.0f64 / 365.0).ln())).exp();
        let vol = 0.05 + 1.45 * rng.random::<f64>();
        let strike = 100.0 * (0.5f64.ln() + rng.random::<f64>() * 4.0f64.ln()).exp();
        let call = rng.random::<bool>();
        price.push(black_price(100.0, strike, tt, vol, call));
        k.push(strike);
        t.push(tt);
        right.push(if call { "C" } else { "P" });
    }
    df!("close" => price, "discount" => vec![1.0; N_IV], "forward" => vec![100.0; N_IV],
        "strike" => k, "t" => t, "right" => right)
    .unwrap()
}

fn bench_iv(c: &mut Criterion) {
    let df = iv_frame();
    let cols = IvColumns::default();
    let mut g = c.benchmark_group("implied_vol");
    g.throughput(Throughput::Elements(N_IV as u64));
    g.sample_size(20);
    g.bench_function("twslake_polars_column_100k", |b| b.iter(|| with_implied_vol(df.clone(), &cols).unwrap()));
    // The same inversions from plain slices: the cost of the column plumbing is the difference.
    let f = |n: &str| df.column(n).unwrap().f64().unwrap().into_no_null_iter().collect::<Vec<f64>>();
    let (p, d, fw, k, t) = (f("close"), f("discount"), f("forward"), f("strike"), f("t"));
    let calls: Vec<bool> = df.column("right").unwrap().str().unwrap().iter().map(|r| r == Some("C")).collect();
    g.bench_function("twslake_slices_100k", |b| b.iter(|| implied_vols(&p, &d, &fw, &k, &t, &calls)));
    g.finish();
}

/// 20 expiries (2 weeks to 2 years) × 50 strikes (60–150), calls and puts, from the SSVI truth:
/// European prices (an index class), or American ones (`american`: the American pricer at the
/// true vols, the forward's carry as a continuous yield).
fn surface_panel(american: bool) -> (chrono::DateTime<chrono::Utc>, DataFrame) {
    let at: chrono::DateTime<chrono::Utc> = "2024-11-22T16:00:00Z".parse().unwrap();
    let (mut e, mut k, mut r, mut p, mut t) = (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..20 {
        let expiry = at.date_naive() + Duration::days(14 + 37 * i);
        let tt = time_to_expiry(at, expiry);
        for j in 0..50 {
            let strike = 60.0 + 90.0 * j as f64 / 49.0;
            for call in [true, false] {
                e.push((expiry - NaiveDate::default()).num_days() as i32);
                k.push(strike);
                r.push(if call { "C" } else { "P" });
                t.push(tt);
                p.push(if american {
                    let (f, d) = (100.0 * ((market::RATE - market::DIV) * tt).exp(), (-market::RATE * tt).exp());
                    let terms =
                        twslake::query::iv::Terms { spot: 100.0, forward: f, discount: d, t: tt, dividends: &[] };
                    terms.american(strike, call).unwrap().price(market::true_vol(100.0, strike, tt))
                } else {
                    market::true_price(100.0, strike, tt, call)
                });
            }
        }
    }
    let style = vec![if american { "american" } else { "european" }; e.len()];
    let df =
        df!("expiry" => e, "strike" => k, "right" => r, "close" => p, "t" => t, "exercise_style" => style).unwrap();
    let df = df.lazy().with_column(col("expiry").cast(DataType::Date)).collect().unwrap();
    (at, df)
}

fn bench_surface(c: &mut Criterion) {
    let mut g = c.benchmark_group("surface");
    g.sample_size(30);
    for american in [false, true] {
        let (at, panel) = surface_panel(american);
        let opts = SurfaceOptions {
            rates: twslake::query::iv::Rates { rate: market::RATE, dividend_yield: market::DIV },
            ..Default::default()
        };
        let s = fit_surface("SPY", at, 100.0, &panel, None, &opts).unwrap();
        assert_eq!(s.expiries.len(), 20, "{:?}", s.skipped);
        assert!(s.arbitrage_free());
        let name = if american { "fit_20_expiries_x_50_strikes_american" } else { "fit_20_expiries_x_50_strikes" };
        g.bench_function(name, |b| b.iter(|| fit_surface("SPY", at, 100.0, &panel, None, &opts).unwrap()));
    }
    g.finish();
}

/// Contracts of the year lake: 10 strikes × call/put of one far expiry.
const YEAR_CONTRACTS: i64 = 20;

fn minute_bar(ts: chrono::DateTime<chrono::Utc>, day: NaiveDate, p: f64) -> Bar {
    let at = ts + Duration::days(1);
    Bar {
        ts,
        date: day,
        series: market::MIDPOINT_1M,
        open: p,
        high: p + 0.01,
        low: p - 0.01,
        close: p,
        volume: None,
        wap: None,
        bar_count: None,
        ingested_at: at,
    }
}

async fn write_day(lake: &Lake, sym: &Symbol, day: NaiveDate) {
    let open = calendar::session(day).unwrap().open;
    let spot: Vec<Bar> =
        (0..390).map(|m| minute_bar(open + Duration::minutes(m), day, 100.0 + (m as f64 * 0.01).sin())).collect();
    lake.write(Dataset::EquityBars, sym, &equity_bars::to_batch(&spot), None).await.unwrap();
    let mut rows = Vec::with_capacity(390 * YEAR_CONTRACTS as usize);
    for c in 0..YEAR_CONTRACTS {
        let contract = OptionContract {
            con_id: 800_000 + c,
            expiry: "2026-12-18".parse().unwrap(),
            strike: 80.0 + 5.0 * (c / 2) as f64,
            right: if c % 2 == 0 { twslake::domain::Right::Call } else { twslake::domain::Right::Put },
            multiplier: 100.0,
        };
        for m in 0..390 {
            let bar = minute_bar(open + Duration::minutes(m), day, 5.0 + ((c * 390 + m) as f64 * 0.37).sin());
            rows.push(OptionBar { contract: contract.clone(), bar });
        }
    }
    lake.write(Dataset::OptionBars, sym, &option_bars::to_batch(&rows), None).await.unwrap();
}

/// The year lake, built once: 2024's trading days, 390 spot bars and 7,800 option bars a day.
async fn year_lake() -> (Lake, Symbol, std::path::PathBuf) {
    let root = std::path::PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
        .join("research-bench-lake");
    let done = root.join("_complete");
    let lake = Lake::open(root.to_str().unwrap()).unwrap();
    let sym = Symbol::new("SPY").unwrap();
    if !done.exists() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        for day in calendar::trading_days(d("2024-01-01"), d("2024-12-31")) {
            write_day(&lake, &sym, day).await;
        }
        std::fs::write(&done, b"").unwrap();
    }
    println!("year lake at {}", root.display());
    (lake, sym, root)
}

/// The same panel written by hand in polars, as a user would over the lake's files: a hive scan
/// of the symbol's folders filtered to the series, the bar end `ts + 60 s`, bars closed by `at`,
/// both sides sorted by `end`, the backward as-of join (equal allowed), then the expiry instant
/// (16:00 New York, 13:00 on the calendar's early-close days) and `t`. The columns are put in the
/// panel's order so the two answers can be compared.
fn hand_written_panel(root: &std::path::Path, at: chrono::DateTime<chrono::Utc>) -> LazyFrame {
    let scan = |dataset: &str| {
        let glob = format!("{}/{dataset}/symbol=SPY/**/*.parquet", root.display());
        let series = col("bar_size").eq(lit("1 min")).and(col("what_to_show").eq(lit("MIDPOINT")));
        let end = col("ts") + lit(Duration::seconds(60));
        let at = lit(at.timestamp_micros()).cast(DataType::Datetime(TimeUnit::Microseconds, Some(PlTimeZone::UTC)));
        let lf = LazyFrame::scan_parquet(PlRefPath::new(glob), ScanArgsParquet::default()).unwrap();
        lf.filter(series).with_column(end.alias("end")).filter(col("end").lt_eq(at))
    };
    let opts = scan("option_bars").sort(["end"], Default::default());
    let spot = scan("equity_bars")
        .select([col("end"), col("end").alias("spot_end"), col("close").alias("spot")])
        .sort(["end"], Default::default());
    let asof = AsOfOptions { strategy: AsofStrategy::Backward, allow_eq: true, ..Default::default() };
    let joined = opts.join(spot, [col("end")], [col("end")], JoinArgs::new(JoinType::AsOf(Box::new(asof))));
    let new_york = PlTimeZone::opt_try_new(Some("America/New_York")).unwrap();
    let close = (col("expiry").cast(DataType::Datetime(TimeUnit::Microseconds, None)) + lit(Duration::hours(16)))
        .dt()
        .replace_time_zone(new_york, lit("earliest"), NonExistent::Null)
        .dt()
        .convert_time_zone(PlTimeZone::UTC);
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    let early: Vec<NaiveDate> = d("2000-01-01")
        .iter_days()
        .take_while(|x| *x <= d("2035-12-31"))
        .filter(|x| calendar::is_early_close(*x))
        .collect();
    let early = Series::new("early".into(), early);
    let expiry_at = when(col("expiry").is_in(lit(early).implode(false), false))
        .then(close.clone() - lit(Duration::hours(3)))
        .otherwise(close);
    let t = (col("expiry_at") - col("end")).dt().total_microseconds(false).cast(DataType::Float64)
        / lit(1e6 * YEAR_SECONDS);
    let mut cols: Vec<Expr> = query::polars_schema(Dataset::OptionBars).iter_names().map(|n| col(n.clone())).collect();
    cols.extend(["end", "spot_end", "spot", "expiry_at", "t"].map(col));
    joined.with_column(expiry_at.alias("expiry_at")).with_column(t.alias("t")).select(cols)
}

/// Both answers with ties in `end` put in one order (neither query promises one).
fn by_end_and_contract(df: DataFrame) -> DataFrame {
    df.sort(["end", "con_id"], SortMultipleOptions::default().with_maintain_order(true)).unwrap()
}

fn bench_panel(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (lake, sym, root) = rt.block_on(year_lake());
    let q = AsOf {
        symbol: sym,
        series: market::MIDPOINT_1M,
        from: "2024-01-01".parse().unwrap(),
        at: "2025-01-01T00:00:00Z".parse().unwrap(),
    };
    let run = || {
        rt.block_on(async {
            let lf = PointInTime::new(&lake).option_panel(&q, SPOT_SERIES[0]).await.unwrap();
            query::collect(lf).await.unwrap()
        })
    };
    let by_hand = || hand_written_panel(&root, q.at).collect().unwrap();
    let (panel, hand) = (run(), by_hand());
    let rows = panel.height();
    assert_eq!(rows as i64, 252 * 390 * YEAR_CONTRACTS);
    assert_eq!(panel.schema(), hand.schema());
    assert!(by_end_and_contract(panel).equals_missing(&by_end_and_contract(hand)), "the two panels differ");
    let mut g = c.benchmark_group("option_panel");
    g.throughput(Throughput::Elements(rows as u64));
    g.sample_size(10);
    g.bench_function("year_1min_20_contracts_asof_spot", |b| b.iter(run));
    g.bench_function("hand_written_polars", |b| b.iter(by_hand));
    g.finish();
}

criterion_group!(benches, bench_iv, bench_surface, bench_panel);
criterion_main!(benches);
