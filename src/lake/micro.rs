//! Micro-batches: live capture's appends beside a day partition, and their compaction.
//!
//! A flush writes only its new rows, as a new immutable object ([`MicroBatch`]) next to the
//! partition file, so its cost does not depend on how much the day already holds:
//! - local disk: written under `_tmp/`, then linked into place without overwriting (a hard
//!   link fails if the name exists) and the temporary name removed;
//! - S3: one PUT with `If-None-Match: *` (`PutMode::Create`).
//!
//! Readers ([`Lake::read_partition`], the polars scans) merge a partition with its micro-batches
//! on the primary key, exactly as a write merges, so a row present in both counts once. A polars
//! scan that races with a compaction or a roll-up may fail on a file deleted after its listing
//! (run it again); it never returns a row twice or misses one silently.
//!
//! [`Lake::compact`] folds the micro-batches into the partition file through the ordinary
//! commit (merge, atomic replace) and deletes them only after that replacement is visible. A
//! crash between the two leaves rows both in the file and in micro-batches: readers count them
//! once and the next compaction removes the copies. No step deletes a row before its
//! replacement is visible.

use super::layout::{has_micro_batches, obj, DataObject, MicroBatch, Partition};
use super::parquet_io::{decode, encode, merge, PartitionData};
use super::write::{check, split};
use super::{Lake, Location};
use crate::datasets::Dataset;
use crate::domain::Symbol;
use crate::error::{Error, Result};
use arrow::array::RecordBatch;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::collections::{BTreeMap, BTreeSet};

/// What one compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// The partition.
    pub partition: Partition,
    /// Micro-batches folded into the partition file (and deleted).
    pub micro_batches: usize,
    /// Rows in the partition after compaction.
    pub rows: usize,
}

impl Lake {
    /// Appends rows of one symbol as new micro-batches (one per partition the rows fall in),
    /// named by the writer's `run` id and its flush counter `seq`. Rows are checked first; a
    /// refused batch writes nothing. The cost is that of the rows given, whatever the day holds.
    pub async fn append(
        &self,
        dataset: Dataset,
        symbol: &Symbol,
        batch: &RecordBatch,
        run: u64,
        seq: u64,
    ) -> Result<Vec<MicroBatch>> {
        check(dataset, symbol, batch)?;
        let mut out = Vec::new();
        for (p, rows) in split(dataset, symbol, batch)? {
            let mb = MicroBatch::new(p, run, seq)?;
            let rows = merge(dataset, &[rows])?;
            let bytes = encode(dataset, &rows, &BTreeSet::new())?;
            self.put_new(&mb.path(), bytes).await?;
            out.push(mb);
        }
        Ok(out)
    }

    /// Creates an object that must not exist yet, visible whole or not at all.
    async fn put_new(&self, dest: &object_store::path::Path, bytes: Vec<u8>) -> Result<()> {
        match self.location() {
            Location::Local(_) => {
                let tmp = obj(&format!("_tmp/{}.parquet", uuid::Uuid::new_v4().simple()));
                self.refuse_symlinks(&tmp)?;
                self.refuse_symlinks(dest)?;
                self.store().put(&tmp, PutPayload::from(bytes)).await.map_err(|e| Error::storage(&tmp, e))?;
                if let Err(e) = self.store().rename_if_not_exists(&tmp, dest).await {
                    let _ = self.store().delete(&tmp).await;
                    return Err(Error::storage(dest, e));
                }
                Ok(())
            }
            Location::S3 { .. } => {
                let opts = PutOptions::from(PutMode::Create);
                self.store()
                    .put_opts(dest, PutPayload::from(bytes), opts)
                    .await
                    .map_err(|e| Error::storage(dest, e))?;
                Ok(())
            }
        }
    }

    /// The micro-batches of a partition, in name order.
    pub async fn micro_batches(&self, p: &Partition) -> Result<Vec<MicroBatch>> {
        if !has_micro_batches(p.dataset) {
            return Ok(Vec::new());
        }
        let mut out: Vec<MicroBatch> = self
            .list(Some(&MicroBatch::dir_of(p)))
            .await?
            .iter()
            .filter_map(|m| MicroBatch::from_path(&m.location).ok())
            .filter(|m| &m.partition == p)
            .collect();
        out.sort();
        Ok(out)
    }

    /// Reads the partition file alone (no micro-batches), `None` when it does not exist.
    pub async fn read_partition_file(&self, p: &Partition) -> Result<Option<PartitionData>> {
        let path = p.path();
        match self.get_opt(&path).await? {
            Some((bytes, _, _)) => Ok(Some(decode(p.dataset, path.as_ref(), bytes)?)),
            None => Ok(None),
        }
    }

    /// Reads the given micro-batches; those deleted since they were listed are skipped (their
    /// rows were made visible elsewhere first: in the partition file or a merged micro-batch).
    async fn read_micro_batches(&self, mbs: &[MicroBatch]) -> Result<(Vec<MicroBatch>, Vec<PartitionData>)> {
        let (mut read, mut data) = (Vec::new(), Vec::new());
        for mb in mbs {
            let path = mb.path();
            if let Some((bytes, _, _)) = self.get_opt(&path).await? {
                data.push(decode(mb.partition.dataset, path.as_ref(), bytes)?);
                read.push(mb.clone());
            }
        }
        Ok((read, data))
    }

    /// Reads one partition with its micro-batches, merged on the primary key; `None` when
    /// neither exists.
    ///
    /// The micro-batches are read before the partition file. One that is gone by then was
    /// merged into the file (compaction) or into a newer micro-batch (a capture's roll-up), and
    /// both become visible before the deletion: the read starts again from the listing.
    pub async fn read_partition(&self, p: &Partition) -> Result<Option<PartitionData>> {
        const ATTEMPTS: u32 = 20;
        for _ in 0..ATTEMPTS {
            let mbs = self.micro_batches(p).await?;
            if mbs.is_empty() {
                return self.read_partition_file(p).await;
            }
            let (read, parts) = self.read_micro_batches(&mbs).await?;
            if read.len() < mbs.len() {
                continue;
            }
            let file = self.read_partition_file(p).await?;
            let mut batches = Vec::new();
            let mut requests = BTreeSet::new();
            for d in file.into_iter().chain(parts) {
                batches.push(d.batch);
                requests.extend(d.requests);
            }
            return Ok(Some(PartitionData { batch: merge(p.dataset, &batches)?, requests }));
        }
        Err(Error::Contention { path: p.path().to_string(), attempts: ATTEMPTS })
    }

    /// Folds a partition's micro-batches into its file (merge, atomic replace), then deletes
    /// them. `None` when there was nothing to compact.
    pub async fn compact(&self, p: &Partition) -> Result<Option<Compacted>> {
        let mbs = self.micro_batches(p).await?;
        let (read, data) = self.read_micro_batches(&mbs).await?;
        if read.is_empty() {
            return Ok(None);
        }
        let mut requests = BTreeSet::new();
        let batches: Vec<RecordBatch> = data
            .into_iter()
            .map(|d| {
                requests.extend(d.requests);
                d.batch
            })
            .collect();
        let rows = arrow::compute::concat_batches(&p.dataset.schema(), &batches).map_err(|e| Error::parquet(p, e))?;
        // When this returns, the replacement holding every row read is visible.
        let done = self.commit(p, &rows, &requests).await?;
        for mb in &read {
            let path = mb.path();
            match self.store().delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::storage(&path, e)),
            }
        }
        Ok(Some(Compacted { partition: p.clone(), micro_batches: read.len(), rows: done.rows }))
    }

    /// Merges micro-batches of one partition into one new micro-batch `into`, then deletes them:
    /// fewer, larger files for readers during a long capture, at the cost of the rows merged
    /// (never the whole day). A crash in between leaves copies that readers merge. Returns the
    /// rows written; sources already gone are skipped.
    pub async fn merge_micro_batches(&self, sources: &[MicroBatch], into: &MicroBatch) -> Result<usize> {
        if let Some(other) = sources.iter().find(|m| m.partition != into.partition) {
            let why = format!("not a micro-batch of {}", into.partition);
            return Err(Error::bad_input("micro-batch", other.path().to_string(), why));
        }
        let (read, data) = self.read_micro_batches(sources).await?;
        if read.is_empty() {
            return Ok(0);
        }
        let dataset = into.partition.dataset;
        let batches: Vec<RecordBatch> = data.into_iter().map(|d| d.batch).collect();
        let rows = merge(dataset, &batches)?;
        self.put_new(&into.path(), encode(dataset, &rows, &BTreeSet::new())?).await?;
        for mb in &read {
            let path = mb.path();
            match self.store().delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::storage(&path, e)),
            }
        }
        Ok(rows.num_rows())
    }

    /// Compacts every partition of `dataset` (of one symbol, or all) that has micro-batches.
    pub async fn compact_all(&self, dataset: Dataset, symbol: Option<&Symbol>) -> Result<Vec<Compacted>> {
        let mut out = Vec::new();
        for (p, objects) in self.data_objects(dataset, symbol).await? {
            if objects.iter().any(|o| matches!(o, DataObject::MicroBatch(_))) {
                out.extend(self.compact(&p).await?);
            }
        }
        Ok(out)
    }

    /// The partitions of a dataset (all symbols, or one), skipping anything not in the layout;
    /// a partition that so far has only micro-batches is listed too.
    pub async fn partitions(&self, dataset: Dataset, symbol: Option<&Symbol>) -> Result<Vec<Partition>> {
        Ok(self.data_objects(dataset, symbol).await?.into_keys().collect())
    }

    /// Every data object of a dataset (of one symbol, or all), by partition, skipping anything
    /// not in the layout. A partition whose file is not written yet appears through its
    /// micro-batches.
    pub async fn data_objects(
        &self,
        dataset: Dataset,
        symbol: Option<&Symbol>,
    ) -> Result<BTreeMap<Partition, Vec<DataObject>>> {
        let prefix = match symbol {
            Some(s) => Partition::symbol_dir(dataset, s),
            None => obj(dataset.name()),
        };
        let mut out: BTreeMap<Partition, Vec<DataObject>> = BTreeMap::new();
        for m in self.list(Some(&prefix)).await? {
            if let Ok(o) = DataObject::from_path(&m.location) {
                if o.partition().dataset == dataset {
                    out.entry(o.partition().clone()).or_default().push(o);
                }
            }
        }
        for v in out.values_mut() {
            v.sort();
        }
        Ok(out)
    }
}
