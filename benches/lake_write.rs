//! Partition write throughput: `Lake::write` (split, merge on the key, zstd Parquet, atomic
//! rename) against writing the same batch with arrow-rs' `ArrowWriter` and the same writer
//! properties straight to a file. The ratio raw_time / lake_time is the figure in BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::collections::BTreeSet;
use twslake::datasets::equity_bars::Bar;
use twslake::datasets::option_bars::{self, OptionBar, OptionContract};
use twslake::datasets::Dataset;
use twslake::domain::{BarSize, Series, Symbol, WhatToShow};
use twslake::lake::parquet_io::encode;
use twslake::{calendar, Lake};

/// One day of 1-minute MIDPOINT bars for 100 option contracts of one underlying: 39,000 rows.
fn option_day(day: chrono::NaiveDate) -> arrow::record_batch::RecordBatch {
    let session = calendar::session(day).unwrap();
    let series = Series { bar_size: BarSize::Min1, what_to_show: WhatToShow::Midpoint };
    let at = session.close + chrono::Duration::hours(1);
    let mut rows = Vec::with_capacity(39_000);
    for c in 0..100i64 {
        let contract = OptionContract {
            con_id: 700_000 + c,
            expiry: "2024-12-20".parse().unwrap(),
            strike: 550.0 + (c / 2) as f64,
            right: if c % 2 == 0 { twslake::domain::Right::Call } else { twslake::domain::Right::Put },
            multiplier: 100.0,
        };
        for m in 0..390 {
            let p = 5.0 + ((c * 390 + m) as f64 * 0.37).sin();
            let bar = Bar {
                ts: session.open + chrono::Duration::minutes(m),
                date: day,
                series,
                open: p,
                high: p + 0.05,
                low: p - 0.05,
                close: p + 0.01,
                volume: None,
                wap: None,
                bar_count: None,
                ingested_at: at,
            };
            rows.push(OptionBar { contract: contract.clone(), bar });
        }
    }
    option_bars::to_batch(&rows)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let batch = option_day("2024-11-22".parse().unwrap());
    let mut g = c.benchmark_group("partition_write");
    g.throughput(Throughput::Elements(batch.num_rows() as u64));
    g.sample_size(30);
    let spy = Symbol::new("SPY").unwrap();

    g.bench_function("twslake_lake_write_new_partition", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
                (dir, lake)
            },
            |(dir, lake)| {
                rt.block_on(lake.write(Dataset::OptionBars, &spy, &batch, Some("bench"))).unwrap();
                dir
            },
            BatchSize::PerIteration,
        )
    });

    g.bench_function("arrow_rs_writer_same_properties", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let bytes = encode(Dataset::OptionBars, &batch, &BTreeSet::from(["bench".to_string()])).unwrap();
                std::fs::write(dir.path().join("part.parquet"), bytes).unwrap();
                dir
            },
            BatchSize::PerIteration,
        )
    });

    g.bench_function("arrow_rs_writer_defaults", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let file = std::fs::File::create(dir.path().join("part.parquet")).unwrap();
                let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
                w.write(&batch).unwrap();
                w.close().unwrap();
                dir
            },
            BatchSize::PerIteration,
        )
    });

    // Re-writing the same day: the merge path (read, merge 2 × 39,000 rows on the key, write).
    g.bench_function("twslake_lake_write_merge_into_existing", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
                rt.block_on(lake.write(Dataset::OptionBars, &spy, &batch, Some("first"))).unwrap();
                (dir, lake)
            },
            |(dir, lake)| {
                rt.block_on(lake.write(Dataset::OptionBars, &spy, &batch, Some("again"))).unwrap();
                dir
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
