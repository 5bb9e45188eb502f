//! Exercise styles in the contracts dataset: stored by the ingest, and decided from the trading
//! class for rows written before the column existed (old lakes keep working).

use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use twslake::datasets::contracts::{self, Contract};
use twslake::datasets::Dataset;
use twslake::domain::{ExerciseStyle, Right, SecType, Symbol};
use twslake::query::styles::Styles;
use twslake::query::{collect, ScanFilter, Scans};
use twslake::Lake;

fn option(con_id: i64, class: &str) -> Contract {
    Contract {
        con_id,
        sec_type: SecType::Option,
        exchange: "SMART".into(),
        currency: "USD".into(),
        trading_class: Some(class.into()),
        expiry: Some("2024-12-20".parse().unwrap()),
        strike: Some(600.0),
        right: Some(Right::Call),
        fetched_at: "2024-11-22T12:00:00Z".parse().unwrap(),
        exercise_style: Some(ExerciseStyle::of_class(class)),
        ..Default::default()
    }
}

/// Rewrites a Parquet file without its last column, keeping its footer's key-value metadata:
/// the file as a twslake without the `exercise_style` column wrote it.
fn drop_last_column(path: &std::path::Path) {
    let bytes = bytes::Bytes::from(std::fs::read(path).unwrap());
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    let kv = builder.metadata().file_metadata().key_value_metadata().cloned();
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    let keep: Vec<usize> = (0..batches[0].num_columns() - 1).collect();
    let old: Vec<RecordBatch> = batches.iter().map(|b| b.project(&keep).unwrap()).collect();
    let props = WriterProperties::builder().set_key_value_metadata(kv).build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, old[0].schema(), Some(props)).unwrap();
    for b in &old {
        w.write(b).unwrap();
    }
    w.close().unwrap();
    std::fs::write(path, out).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contracts_written_before_the_style_column_read_with_the_style_of_their_class() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let symbol = Symbol::new("SPY").unwrap();
    let rows = vec![option(1, "SPY"), option(2, "XSP"), option(3, "SPXW")];
    let styles = |s: &Styles| [1, 2, 3, 99].map(|c| s.of(c));
    let (a, e) = (ExerciseStyle::American, ExerciseStyle::European);
    lake.write(Dataset::Contracts, &symbol, &contracts::to_batch(&rows), Some("contracts")).await.unwrap();
    let new = Styles::read(&lake, &symbol).await.unwrap();
    assert_eq!(styles(&new), [a, e, e, a]);

    // The same lake as an older twslake left it: no exercise_style column.
    let file = dir.path().join("contracts/symbol=SPY/contracts.parquet");
    drop_last_column(&file);
    let meta = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(std::fs::read(&file).unwrap())).unwrap();
    assert!(meta.schema().field_with_name("exercise_style").is_err());
    // The polars scan reads the column as null; the styles are decided from the trading class.
    let scan =
        collect(Scans::new(&lake).scan(Dataset::Contracts, &ScanFilter::symbol(&symbol)).await.unwrap()).await.unwrap();
    assert_eq!(scan.column("exercise_style").unwrap().null_count(), 3);
    assert_eq!(styles(&Styles::read(&lake, &symbol).await.unwrap()), [a, e, e, a]);
    // The row reader decides them too, and validate takes the old file as valid.
    let p =
        twslake::lake::layout::Partition::for_date(Dataset::Contracts, &symbol, None, chrono::NaiveDate::MIN).unwrap();
    let read = contracts::from_batch(&lake.read_partition(&p).await.unwrap().unwrap().batch);
    assert_eq!(read.iter().map(|c| c.exercise_style).collect::<Vec<_>>(), vec![Some(a), Some(e), Some(e)]);
    let report = lake.validate().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // A new description written over it (as the next ingest does) merges with the old file.
    lake.write(Dataset::Contracts, &symbol, &contracts::to_batch(&[option(4, "SPX")]), Some("more")).await.unwrap();
    let after = Styles::read(&lake, &symbol).await.unwrap();
    assert_eq!((after.of(4), after.of(2), after.len()), (e, e, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_stores_the_style_of_every_option_it_describes() {
    use crate::ingest::{ingest, sim_at, small_config, AFTER_CLOSE};
    let sim = sim_at(AFTER_CLOSE).await;
    let f = crate::support::Fixture::local();
    let lake = f.lake();
    let spy = Symbol::new("SPY").unwrap();
    let report = ingest(&sim, &lake, small_config()).await.setup(std::slice::from_ref(&spy)).await;
    assert!(report.complete(), "{report:#?}");
    let df =
        collect(Scans::new(&lake).scan(Dataset::Contracts, &ScanFilter::symbol(&spy)).await.unwrap()).await.unwrap();
    let (sec, style) =
        (df.column("sec_type").unwrap().str().unwrap(), df.column("exercise_style").unwrap().str().unwrap());
    let options: Vec<Option<&str>> =
        sec.iter().zip(style.iter()).filter(|(s, _)| *s == Some("OPT")).map(|(_, y)| y).collect();
    assert!(!options.is_empty());
    // Stored as written by the job (not derived on read): SPY's class is American.
    assert!(options.iter().all(|y| *y == Some("american")), "{options:?}");
    // The stock has none.
    assert!(sec.iter().zip(style.iter()).filter(|(s, _)| *s == Some("STK")).all(|(_, y)| y.is_none()));
}
