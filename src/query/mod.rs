//! The polars reader: dataset scans with partition pruning, coverage / missing windows, and the
//! research queries: point-in-time reads ([`pit`]), implied vols and greeks ([`iv`]), the
//! arbitrage-checked volatility surface ([`surface`]) and SQL over the datasets ([`sql`]).

pub mod coverage;
pub mod iv;
pub mod pit;
pub mod report;
pub mod series;
pub mod sql;
pub mod status;
pub mod styles;
pub mod surface;

use crate::datasets::Dataset;
use crate::domain::{Series, Symbol};
use crate::error::{Error, Result};
use crate::lake::layout::{DataObject, Partition, Period};
use crate::lake::{Lake, Location};
use arrow::datatypes::{DataType as ArrowType, TimeUnit as ArrowUnit};
use chrono::{Datelike, NaiveDate};
use polars::prelude::*;
use std::collections::BTreeMap;

/// Which partitions a scan reads. Empty fields mean "all".
#[derive(Debug, Clone, Default)]
pub struct ScanFilter {
    /// Only these symbols.
    pub symbols: Option<Vec<Symbol>>,
    /// Only these bar series (bar datasets).
    pub series: Option<Series>,
    /// First trading date.
    pub from: Option<NaiveDate>,
    /// Last trading date (inclusive).
    pub to: Option<NaiveDate>,
}

impl ScanFilter {
    /// One symbol.
    pub fn symbol(symbol: &Symbol) -> Self {
        ScanFilter { symbols: Some(vec![symbol.clone()]), ..Default::default() }
    }

    /// Whether a scan with this filter opens partition `p`.
    pub fn keeps(&self, p: &Partition) -> bool {
        let series_ok = self.series.is_none() || p.series == self.series;
        let (lo, hi) = (self.from.unwrap_or(NaiveDate::MIN), self.to.unwrap_or(NaiveDate::MAX));
        let period_ok = match p.period {
            Period::All => true,
            Period::Year(y) => y >= lo.year() && y <= hi.year(),
            Period::Day(d) => d >= lo && d <= hi,
        };
        series_ok && period_ok
    }
}

/// The polars type of a lake column.
fn polars_type(t: &ArrowType) -> DataType {
    match t {
        ArrowType::Int64 => DataType::Int64,
        ArrowType::Float64 => DataType::Float64,
        ArrowType::Date32 => DataType::Date,
        ArrowType::Boolean => DataType::Boolean,
        ArrowType::Timestamp(ArrowUnit::Microsecond, _) => {
            DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        }
        _ => DataType::String,
    }
}

/// The columns a scan returns: `symbol`, then the file's columns.
pub fn polars_schema(dataset: Dataset) -> Schema {
    let mut s = Schema::with_capacity(dataset.schema().fields().len() + 1);
    s.insert("symbol".into(), DataType::String);
    for f in dataset.schema().fields() {
        s.insert(f.name().as_str().into(), polars_type(f.data_type()));
    }
    s
}

fn hive_schema(dataset: Dataset) -> SchemaRef {
    let mut s = Schema::with_capacity(2);
    s.insert("symbol".into(), DataType::String);
    if dataset != Dataset::Contracts {
        s.insert("year".into(), DataType::Int32);
    }
    Arc::new(s)
}

/// Lazy polars scans of a lake's datasets (partitions pruned by the layout).
#[derive(Clone, Copy)]
pub struct Scans<'a> {
    lake: &'a Lake,
}

impl<'a> Scans<'a> {
    /// The reader of `lake`.
    pub fn new(lake: &'a Lake) -> Self {
        Scans { lake }
    }
}

impl<'a> Scans<'a> {
    /// A lazy scan of a dataset: `symbol` plus the file columns, with `date` a Date and every
    /// timestamp a UTC Datetime. Partitions outside the filter are never opened; the date range
    /// is also pushed down to row groups through the files' statistics.
    pub async fn scan(&self, dataset: Dataset, filter: &ScanFilter) -> Result<LazyFrame> {
        let mut objects = BTreeMap::new();
        match &filter.symbols {
            Some(symbols) => {
                for s in symbols {
                    objects.extend(self.lake.data_objects(dataset, Some(s)).await?);
                }
            }
            None => objects = self.lake.data_objects(dataset, None).await?,
        }
        objects.retain(|p, _| filter.keeps(p));
        let lf = self.scan_objects(dataset, &objects)?;
        // A Date literal: `lit(NaiveDate)` is a Datetime, which would cast every row's date.
        let date = |d: NaiveDate| lit(Scalar::new_date(crate::calendar::days_of(d)));
        let mut pred: Option<Expr> = None;
        if let (Some(from), true) = (filter.from, dataset != Dataset::Contracts) {
            pred = Some(col("date").gt_eq(date(from)));
        }
        if let (Some(to), true) = (filter.to, dataset != Dataset::Contracts) {
            let e = col("date").lt_eq(date(to));
            pred = Some(pred.map_or(e.clone(), |p| p.and(e)));
        }
        if let Some(s) = filter.series {
            let e = col("bar_size").eq(lit(s.bar_size.ib())).and(col("what_to_show").eq(lit(s.what_to_show.ib())));
            pred = Some(pred.map_or(e.clone(), |p| p.and(e)));
        }
        Ok(match pred {
            Some(p) => lf.filter(p),
            None => lf,
        })
    }

    /// A lazy scan of exactly these data objects of one dataset (as [`Lake::data_objects`]
    /// lists them). Partitions with micro-batches are merged on the primary key as a write
    /// merges: of rows sharing a key the greater `ingested_at` wins, ties going to the greater
    /// row; the others are read as they are.
    pub fn scan_objects(&self, dataset: Dataset, objects: &BTreeMap<Partition, Vec<DataObject>>) -> Result<LazyFrame> {
        let (mut whole, mut mixed) = (Vec::new(), Vec::new());
        for list in objects.values() {
            let paths = list.iter().map(|o| o.path());
            match list.iter().any(|o| matches!(o, DataObject::MicroBatch(_))) {
                true => mixed.extend(paths),
                false => whole.extend(paths),
            }
        }
        if mixed.is_empty() {
            return self.scan_files(dataset, &whole);
        }
        let merged = dedupe(dataset, self.scan_files(dataset, &mixed)?);
        if whole.is_empty() {
            return Ok(merged);
        }
        Ok(concat([self.scan_files(dataset, &whole)?, merged], UnionArgs::default())?)
    }

    /// A lazy scan of these files of one dataset, read as they are.
    fn scan_files(&self, dataset: Dataset, files: &[object_store::path::Path]) -> Result<LazyFrame> {
        let schema = polars_schema(dataset);
        if files.is_empty() {
            return Ok(DataFrame::empty_with_schema(&schema).lazy());
        }
        let root = self.lake.location().url_of("");
        let paths: Vec<PlRefPath> =
            files.iter().map(|p| PlRefPath::new(self.lake.location().url_of(p.as_ref()))).collect();
        let hive_options = HiveOptions {
            enabled: Some(true),
            hive_start_idx: root.len(),
            schema: Some(hive_schema(dataset)),
            try_parse_dates: true,
        };
        // Files written before a nullable column was appended to the dataset's schema (the
        // contracts' `exercise_style`) lack it: it reads as null there.
        let file_schema =
            Arc::new(polars_schema(dataset).iter().skip(1).map(|(n, t)| (n.clone(), t.clone())).collect());
        let mut args = ScanArgsParquet {
            hive_options,
            allow_missing_columns: true,
            schema: Some(file_schema),
            ..Default::default()
        };
        if let Location::S3 { .. } = self.lake.location() {
            let opts = polars::io::cloud::CloudOptions::from_untyped_config(
                Some(CloudScheme::S3),
                self.lake.s3_config().iter().cloned(),
            )?;
            args.cloud_options = Some(opts);
        }
        let lf = LazyFrame::scan_parquet_files(paths.into(), args)?;
        let cols: Vec<Expr> = schema.iter_names().map(|n| col(n.clone())).collect();
        Ok(lf.select(cols))
    }
}

/// One row per (symbol, primary key), chosen as [`crate::lake::parquet_io::merge`] chooses: the
/// greatest version column, then the greatest row in the file's column order (nulls greatest).
fn dedupe(dataset: Dataset, lf: LazyFrame) -> LazyFrame {
    let mut key: Vec<PlSmallStr> = vec!["symbol".into()];
    key.extend(dataset.primary_key().iter().map(|k| PlSmallStr::from(*k)));
    let mut order = key.clone();
    order.push(dataset.version_column().into());
    // Within one key and version the rest decides; the key's columns are equal there already.
    for f in dataset.schema().fields() {
        let name = PlSmallStr::from(f.name().as_str());
        if !order.contains(&name) {
            order.push(name);
        }
    }
    let opts = SortMultipleOptions::default().with_nulls_last(true).with_maintain_order(true);
    lf.sort(order, opts).unique_stable_generic(Some(key.into_iter().map(col).collect()), UniqueKeepStrategy::Last)
}

/// Runs a polars collect off the async runtime (polars' cloud reader blocks on its own runtime).
pub async fn collect(lf: LazyFrame) -> Result<DataFrame> {
    tokio::task::spawn_blocking(move || lf.collect())
        .await
        .map_err(|e| Error::Integrity(format!("query task failed: {e}")))?
        .map_err(Error::from)
}
