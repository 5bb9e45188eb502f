//! Writing rows: split by partition, merge with what is there, make visible atomically.
//!
//! The one guarantee every write relies on: **an object becomes visible whole or not at all**.
//! - Local file system: the file is written under `_tmp/` and renamed into place (`rename(2)` is
//!   atomic within a file system). A per-partition `flock` under `_locks/` serialises concurrent
//!   writers of one partition; the OS releases it when a process dies, so a crash never leaves
//!   the partition locked. Killed writers leave only unreferenced files in `_tmp/`.
//! - S3: a single PUT (or completed multipart upload) is atomic. Concurrent writers of one
//!   partition are serialised optimistically: `PutMode::Update` with the ETag that was read (or
//!   `PutMode::Create` for a new partition); the loser re-reads, re-merges and tries again.

use super::layout::obj;
use super::layout::Partition;
use super::manifest::{Entry, Outcome, Request};
use super::parquet_io::{decode, encode, merge, PartitionData};
use super::{Lake, Location};
use crate::calendar;
use crate::datasets::Dataset;
use crate::domain::{BarSize, Series, Symbol, WhatToShow};
use crate::error::{Error, Result};
use arrow::array::{Array, Date32Array, RecordBatch, StringArray, UInt32Array};
use arrow::compute::take_record_batch;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// Conditional-write attempts before giving up on a contended S3 partition.
const MAX_ATTEMPTS: u32 = 50;

/// What one partition write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The partition.
    pub partition: Partition,
    /// Rows in the partition after the write.
    pub rows: usize,
    /// Rows the write added (new keys).
    pub added: usize,
}

/// Splits a batch of `dataset` rows by partition, reading each row's series from its
/// `bar_size`/`what_to_show` columns (what `validate` and [`Lake::write`] of arbitrary rows do);
/// a job that knows its series hands it to [`split_series`] instead.
pub fn split(dataset: Dataset, symbol: &Symbol, batch: &RecordBatch) -> Result<BTreeMap<Partition, RecordBatch>> {
    let n = batch.num_rows();
    let dates = batch.column_by_name("date").and_then(|c| c.as_any().downcast_ref::<Date32Array>());
    let strs = |name: &str| batch.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<StringArray>());
    let (bar, what) = (strs("bar_size"), strs("what_to_show"));
    let key =
        |i: usize| (dates.map_or(0, |d| d.value(i)), bar.map_or("", |b| b.value(i)), what.map_or("", |w| w.value(i)));
    // Grouped on borrowed values: no allocation or parsing per row; one pass when (as usual) the
    // whole batch is one day of one series.
    let mut groups: HashMap<(i32, &str, &str), Vec<u32>> = HashMap::new();
    if n > 0 && (1..n).all(|i| key(i) == key(0)) {
        groups.insert(key(0), (0..n as u32).collect());
    } else {
        for i in 0..n {
            groups.entry(key(i)).or_default().push(i as u32);
        }
    }
    let mut out: BTreeMap<Partition, Vec<u32>> = BTreeMap::new();
    for ((date, b, w), idx) in groups {
        let series = match (bar, what) {
            (Some(_), Some(_)) => {
                Some(Series { bar_size: b.parse::<BarSize>()?, what_to_show: w.parse::<WhatToShow>()? })
            }
            _ => None,
        };
        let day = calendar::date_of_days(date);
        out.entry(Partition::for_date(dataset, symbol, series, day)?).or_default().extend(idx);
    }
    if out.len() == 1 {
        return Ok(out.into_keys().map(|p| (p, batch.clone())).collect());
    }
    out.into_iter()
        .map(|(p, mut idx)| {
            idx.sort_unstable();
            let part = take_record_batch(batch, &UInt32Array::from(idx)).map_err(|e| Error::parquet(&p, e))?;
            Ok((p, part))
        })
        .collect()
}

/// Splits a batch of one known bar series (or of a dataset without series) by partition: by
/// trading date only, the series taken as given. Rows of another series are refused.
pub fn split_series(
    dataset: Dataset,
    symbol: &Symbol,
    series: Option<Series>,
    batch: &RecordBatch,
) -> Result<BTreeMap<Partition, RecordBatch>> {
    let Some(s) = series.filter(|_| dataset.is_bars()) else { return split(dataset, symbol, batch) };
    let strs = |name: &str| batch.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<StringArray>());
    let (bar, what) = (strs("bar_size"), strs("what_to_show"));
    let (b, w) = (s.bar_size.ib(), s.what_to_show.ib());
    let other =
        (0..batch.num_rows()).find(|&i| bar.is_some_and(|c| c.value(i) != b) || what.is_some_and(|c| c.value(i) != w));
    if let Some(i) = other {
        let reason = format!("row {i} is not of the series {b} {w} the rows were given as");
        return Err(Error::BadRows { partition: format!("{dataset}/{symbol}"), reason });
    }
    let dates = batch.column_by_name("date").and_then(|c| c.as_any().downcast_ref::<Date32Array>());
    let mut by_partition: BTreeMap<Partition, Vec<u32>> = BTreeMap::new();
    let mut last: Option<(i32, Partition)> = None;
    for i in 0..batch.num_rows() {
        let day = dates.map_or(0, |d| d.value(i));
        let p = match &last {
            Some((d, p)) if *d == day => p.clone(),
            _ => Partition::for_date(dataset, symbol, Some(s), calendar::date_of_days(day))?,
        };
        by_partition.entry(p.clone()).or_default().push(i as u32);
        last = Some((day, p));
    }
    if by_partition.len() == 1 {
        return Ok(by_partition.into_keys().map(|p| (p, batch.clone())).collect());
    }
    by_partition
        .into_iter()
        .map(|(p, idx)| {
            let part = take_record_batch(batch, &UInt32Array::from(idx)).map_err(|e| Error::parquet(&p, e))?;
            Ok((p, part))
        })
        .collect()
}

pub(crate) fn check(dataset: Dataset, symbol: &Symbol, batch: &RecordBatch) -> Result<()> {
    if batch.schema().fields() != dataset.schema().fields() {
        let reason = format!("rows do not have the {dataset} schema");
        return Err(Error::BadRows { partition: format!("{dataset}/{symbol}"), reason });
    }
    dataset.check_rows(batch).map_err(|reason| Error::BadRows { partition: format!("{dataset}/{symbol}"), reason })?;
    if let Some(d) = batch.column_by_name("date").and_then(|c| c.as_any().downcast_ref::<Date32Array>()) {
        let bad = d.iter().flatten().find(|v| !(0..=40_000).contains(v));
        if let Some(v) = bad {
            let reason = format!("date {} is outside 1970–2079", calendar::date_of_days(v));
            return Err(Error::BadRows { partition: format!("{dataset}/{symbol}"), reason });
        }
    }
    Ok(())
}

impl Lake {
    /// Writes rows of one symbol: each partition is merged on the primary key and replaced
    /// atomically. Rows are checked first; a refused batch changes nothing.
    pub async fn write(
        &self,
        dataset: Dataset,
        symbol: &Symbol,
        batch: &RecordBatch,
        request: Option<&str>,
    ) -> Result<Vec<Committed>> {
        check(dataset, symbol, batch)?;
        let ids: BTreeSet<String> = request.map(|r| r.to_string()).into_iter().collect();
        let mut out = Vec::new();
        for (p, rows) in split(dataset, symbol, batch)? {
            out.push(self.commit(&p, &rows, &ids).await?);
        }
        Ok(out)
    }

    /// Records one answered request: its rows (if any) and its manifest entry, such that a crash
    /// at any point leaves either both visible or a state the next load settles (see
    /// [`super::manifest`]): pending entry → partitions → log entry → pending removed.
    pub async fn record(
        &self,
        request: Request,
        requested_at: DateTime<Utc>,
        outcome: Outcome,
        rows: Option<&RecordBatch>,
    ) -> Result<Entry> {
        let entry = Entry::new(request, requested_at, Utc::now(), outcome);
        self.record_entry(entry, rows).await
    }

    /// [`Lake::record`] for an entry built by the caller (its id and times are kept as given).
    pub async fn record_entry(&self, entry: Entry, rows: Option<&RecordBatch>) -> Result<Entry> {
        let symbol = entry.request.symbol.clone();
        let mut out = self.record_many(&symbol, vec![(entry, rows.cloned())]).await?;
        Ok(out.remove(0))
    }

    /// Records several answered requests of one symbol at once: one pending file, each touched
    /// partition merged and replaced once (with every entry's id in its footer), one log. The
    /// crash guarantees of [`Lake::record`] hold for the whole batch; writing many requests'
    /// rows to a shared day partition costs one rewrite instead of one per request.
    pub async fn record_many(&self, symbol: &Symbol, items: Vec<(Entry, Option<RecordBatch>)>) -> Result<Vec<Entry>> {
        let mut entries = Vec::with_capacity(items.len());
        let mut parts: BTreeMap<Partition, (Vec<RecordBatch>, BTreeSet<String>)> = BTreeMap::new();
        for (mut entry, rows) in items {
            if entry.request.symbol != *symbol {
                let why = format!("entries of one batch must share the symbol {symbol}");
                return Err(Error::bad_input("manifest entry", entry.request.symbol.to_string(), why));
            }
            entry.partitions.clear();
            if let Some(batch) = rows.filter(|b| b.num_rows() > 0) {
                let dataset = entry.request.dataset;
                check(dataset, symbol, &batch)?;
                for (p, part) in split_series(dataset, symbol, entry.request.series, &batch)? {
                    entry.partitions.push(p.path().to_string());
                    let slot = parts.entry(p).or_default();
                    slot.0.push(part);
                    slot.1.insert(entry.id.clone());
                }
            }
            entries.push(entry);
        }
        if parts.is_empty() {
            if !entries.is_empty() {
                self.put_log(symbol, entries.clone()).await?;
            }
            return Ok(entries);
        }
        let with_rows: Vec<Entry> = entries.iter().filter(|e| !e.partitions.is_empty()).cloned().collect();
        let pending = self.put_pending(symbol, &with_rows).await?;
        for (p, (batches, ids)) in &parts {
            let rows = if batches.len() == 1 {
                batches[0].clone()
            } else {
                arrow::compute::concat_batches(&p.dataset.schema(), batches).map_err(|e| Error::parquet(p, e))?
            };
            self.commit(p, &rows, ids).await?;
        }
        self.put_log(symbol, entries.clone()).await?;
        match self.store().delete(&pending).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(entries),
            Err(e) => Err(Error::storage(&pending, e)),
        }
    }

    /// Merges `rows` into partition `p`'s file and makes the result visible atomically (its
    /// micro-batches, if any, are left as they are: see [`Lake::compact`]).
    pub async fn commit(&self, p: &Partition, rows: &RecordBatch, ids: &BTreeSet<String>) -> Result<Committed> {
        match self.location() {
            Location::Local(root) => self.commit_local(root.clone(), p, rows, ids).await,
            Location::S3 { .. } => self.commit_conditional(p, rows, ids).await,
        }
    }

    fn merged(
        p: &Partition,
        old: Option<PartitionData>,
        rows: &RecordBatch,
        ids: &BTreeSet<String>,
    ) -> Result<(Vec<u8>, Committed)> {
        let (mut batches, mut all_ids, before) = match old {
            Some(d) => {
                let n = d.batch.num_rows();
                (vec![d.batch], d.requests, n)
            }
            None => (vec![], BTreeSet::new(), 0),
        };
        batches.push(rows.clone());
        all_ids.extend(ids.iter().cloned());
        let merged = merge(p.dataset, &batches)?;
        let bytes = encode(p.dataset, &merged, &all_ids)?;
        let rows = merged.num_rows();
        Ok((bytes, Committed { partition: p.clone(), rows, added: rows.saturating_sub(before) }))
    }

    async fn commit_local(
        &self,
        root: std::path::PathBuf,
        p: &Partition,
        rows: &RecordBatch,
        ids: &BTreeSet<String>,
    ) -> Result<Committed> {
        let stripe = format!("_locks/{:03}.lock", lock_stripe(p.path().as_ref()));
        let tmp = obj(&format!("_tmp/{}.parquet", uuid::Uuid::new_v4().simple()));
        let dest = p.path();
        for at in [&obj(&stripe), &tmp, &dest] {
            self.refuse_symlinks(at)?;
        }
        let lock_path = root.join(&stripe);
        let _lock = tokio::task::spawn_blocking(move || lock_file(&lock_path))
            .await
            .map_err(|e| Error::Integrity(format!("lock task failed: {e}")))??;
        let (bytes, done) = Self::merged(p, self.read_partition_file(p).await?, rows, ids)?;
        self.store().put(&tmp, PutPayload::from(bytes)).await.map_err(|e| Error::storage(&tmp, e))?;
        self.store().rename(&tmp, &dest).await.map_err(|e| Error::storage(&dest, e))?;
        Ok(done)
    }

    async fn commit_conditional(&self, p: &Partition, rows: &RecordBatch, ids: &BTreeSet<String>) -> Result<Committed> {
        let path = p.path();
        for attempt in 0..MAX_ATTEMPTS {
            let (old, mode) = match self.get_opt(&path).await? {
                Some((bytes, e_tag, version)) => {
                    (Some(decode(p.dataset, path.as_ref(), bytes)?), PutMode::Update(UpdateVersion { e_tag, version }))
                }
                None => (None, PutMode::Create),
            };
            let (bytes, done) = Self::merged(p, old, rows, ids)?;
            match self.store().put_opts(&path, PutPayload::from(bytes), PutOptions::from(mode)).await {
                Ok(_) => return Ok(done),
                Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => {
                    // Another writer won this round; back off a little, with jitter, and re-merge.
                    let ms = 5 * (attempt as u64 + 1) + rand::random::<u64>() % 20;
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                Err(e) => return Err(Error::storage(&path, e)),
            }
        }
        Err(Error::Contention { path: path.to_string(), attempts: MAX_ATTEMPTS })
    }
}

/// Partitions share 256 lock files (FNV-1a of the path): a bounded `_locks/` folder, at the cost
/// of rare waits between unrelated partitions whose short merge-and-rename happens at one instant.
fn lock_stripe(path: &str) -> u8 {
    let h = path.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    (h % 256) as u8
}

fn lock_file(path: &std::path::Path) -> Result<std::fs::File> {
    let io = |e| Error::Io { path: path.to_path_buf(), source: e };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(io)?;
    f.lock().map_err(io)?;
    Ok(f)
}

/// The year of a trading date, for callers that pick partitions.
pub fn year_of(d: NaiveDate) -> i32 {
    d.year()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::equity_bars::{self, tests::sample};

    #[test]
    fn a_known_series_splits_by_day_and_refuses_other_rows() {
        let spy = Symbol::new("SPY").unwrap();
        let minute = Series { bar_size: BarSize::Min1, what_to_show: WhatToShow::Trades };
        let mut bars = sample(4);
        bars[2].date = "2024-11-25".parse().unwrap();
        bars[3].date = "2024-11-25".parse().unwrap();
        let batch = equity_bars::to_batch(&bars);
        let parts = split_series(Dataset::EquityBars, &spy, Some(minute), &batch).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts, split(Dataset::EquityBars, &spy, &batch).unwrap(), "the same split as from the rows");
        let mid = Series { what_to_show: WhatToShow::Midpoint, ..minute };
        let err = split_series(Dataset::EquityBars, &spy, Some(mid), &batch).unwrap_err().to_string();
        assert!(err.contains("1 min MIDPOINT"), "{err}");
    }
}
