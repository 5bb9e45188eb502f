//! Parquet encoding of partitions, and the merge on the primary key.

use crate::datasets::Dataset;
use crate::error::{Error, Result};
use arrow::array::{make_comparator, new_null_array};
use arrow::array::{ArrayRef, RecordBatch, TimestampMicrosecondArray, UInt32Array};
use arrow::compute::SortOptions;
use arrow::compute::{concat_batches, take_record_batch};
use arrow::row::{RowConverter, SortField};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use std::collections::BTreeSet;

/// Key-value metadata: the dataset a file belongs to.
pub const META_DATASET: &str = "twslake.dataset";
/// Key-value metadata: JSON array of the ids of the manifest entries whose rows the file holds.
pub const META_REQUESTS: &str = "twslake.requests";
/// Rows per row group: large enough for scans to stream, small enough to prune by statistics.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// A decoded partition: its rows and the manifest entries that wrote them.
#[derive(Debug, Clone)]
pub struct PartitionData {
    /// The rows, in the dataset's file schema.
    pub batch: RecordBatch,
    /// Ids of the manifest entries whose rows are in the file.
    pub requests: BTreeSet<String>,
}

/// Encodes a partition: sorted rows, zstd, page statistics, request ids in the footer.
pub fn encode(dataset: Dataset, batch: &RecordBatch, requests: &BTreeSet<String>) -> Result<Vec<u8>> {
    let schema = dataset.schema();
    let sorting: Vec<SortingColumn> = dataset
        .primary_key()
        .iter()
        .filter_map(|k| schema.index_of(k).ok())
        .map(|i| SortingColumn { column_idx: i as i32, descending: false, nulls_first: false })
        .collect();
    let ids = serde_json::to_string(requests).expect("strings serialize");
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid zstd level")))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_sorting_columns(Some(sorting))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(META_DATASET.into(), dataset.name().to_string()),
            KeyValue::new(META_REQUESTS.into(), ids),
        ]))
        .build();
    let mut buf = Vec::with_capacity(batch.get_array_memory_size() / 4 + 1024);
    let mut w = ArrowWriter::try_new(&mut buf, schema, Some(props)).map_err(|e| Error::parquet(dataset, e))?;
    w.write(batch).map_err(|e| Error::parquet(dataset, e))?;
    w.close().map_err(|e| Error::parquet(dataset, e))?;
    Ok(buf)
}

/// Decodes a partition written by [`encode`]; any other file is reported as corrupt or foreign.
pub fn decode(dataset: Dataset, path: &str, bytes: Bytes) -> Result<PartitionData> {
    let corrupt = |reason: String| super::read::damaged(path, reason);
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| corrupt(format!("not readable as Parquet: {e}")))?;
    let requests = request_ids(builder.metadata().file_metadata().key_value_metadata());
    let want = dataset.schema();
    let got = builder.schema().clone();
    // A file written before nullable columns were appended to the schema (e.g. the contracts'
    // `exercise_style`) holds a prefix of it: the missing columns read as null.
    let same = got.fields().len() <= want.fields().len()
        && got.fields().iter().zip(want.fields()).all(|(g, w)| g.name() == w.name() && g.data_type() == w.data_type())
        && want.fields()[got.fields().len()..].iter().all(|w| w.is_nullable());
    if !same {
        return Err(corrupt(format!("schema is not the {dataset} schema: {got}")));
    }
    let reader = builder.with_batch_size(64 * 1024).build().map_err(|e| corrupt(e.to_string()))?;
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| corrupt(e.to_string()))?;
    let batch = concat_batches(&got, &batches).map_err(|e| corrupt(e.to_string()))?;
    let mut columns = batch.columns().to_vec();
    columns.extend(want.fields()[got.fields().len()..].iter().map(|w| new_null_array(w.data_type(), batch.num_rows())));
    // Nullability is the schema's, whatever the file's fields say.
    let batch = RecordBatch::try_new(want, columns).map_err(|e| corrupt(e.to_string()))?;
    Ok(PartitionData { batch, requests })
}

/// The request ids in a file's key-value metadata.
pub fn request_ids(kv: Option<&Vec<KeyValue>>) -> BTreeSet<String> {
    kv.into_iter()
        .flatten()
        .find(|kv| kv.key == META_REQUESTS)
        .and_then(|kv| kv.value.as_deref())
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

fn row_converter(batch: &RecordBatch, cols: &[usize]) -> Result<(RowConverter, Vec<ArrayRef>)> {
    let fields = cols
        .iter()
        .map(|&i| {
            let opts = SortOptions { descending: false, nulls_first: false };
            SortField::new_with_options(batch.schema().field(i).data_type().clone(), opts)
        })
        .collect();
    let conv = RowConverter::new(fields).map_err(|e| Error::parquet("merge", e))?;
    Ok((conv, cols.iter().map(|&i| batch.column(i).clone()).collect()))
}

fn rows_of(batch: &RecordBatch, cols: &[usize]) -> Result<arrow::row::Rows> {
    let (conv, arrays) = row_converter(batch, cols)?;
    conv.convert_columns(&arrays).map_err(|e| Error::parquet("merge", e))
}

/// Merges batches of one partition: one row per primary key, sorted by key.
///
/// Of two rows with one key the one with the greater version column wins (a newer answer
/// replaces an older one); equal versions fall to the greater row, so the result depends only on
/// the set of rows given — merging is idempotent and independent of order.
pub fn merge(dataset: Dataset, batches: &[RecordBatch]) -> Result<RecordBatch> {
    let schema = dataset.schema();
    let all = match batches {
        [one] => one.clone(),
        _ => concat_batches(&schema, batches).map_err(|e| Error::parquet(dataset, e))?,
    };
    let n = all.num_rows();
    if n == 0 {
        return Ok(all);
    }
    let pk: Vec<usize> = dataset.primary_key().iter().map(|k| schema.index_of(k).expect("key in schema")).collect();
    // Rows that arrive sorted and unique (the common case for a new partition) need no work;
    // typed comparators check that without building row keys.
    let comparators = pk
        .iter()
        .map(|&i| make_comparator(all.column(i), all.column(i), SortOptions::default()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::parquet(dataset, e))?;
    let less =
        |a: usize, b: usize| comparators.iter().map(|c| c(a, b)).find(|o| o.is_ne()) == Some(std::cmp::Ordering::Less);
    if (1..n).all(|i| less(i - 1, i)) {
        return Ok(all);
    }
    let keys = rows_of(&all, &pk)?;
    let mut idx: Vec<u32> = (0..n as u32).collect();
    idx.sort_by(|&a, &b| keys.row(a as usize).cmp(&keys.row(b as usize)));
    let version = all
        .column(schema.index_of(dataset.version_column()).expect("version in schema"))
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .expect("version columns are UTC timestamps")
        .clone();
    let mut full: Option<arrow::row::Rows> = None;
    let mut keep: Vec<u32> = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && keys.row(idx[j] as usize) == keys.row(idx[i] as usize) {
            j += 1;
        }
        let mut best = idx[i];
        for &c in &idx[i + 1..j] {
            let (vb, vc) = (version.value(best as usize), version.value(c as usize));
            let better = match vc.cmp(&vb) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Equal => {
                    if full.is_none() {
                        full = Some(rows_of(&all, &(0..schema.fields().len()).collect::<Vec<_>>())?);
                    }
                    let f = full.as_ref().expect("computed above");
                    f.row(c as usize) > f.row(best as usize)
                }
            };
            if better {
                best = c;
            }
        }
        keep.push(best);
        i = j;
    }
    take_record_batch(&all, &UInt32Array::from(keep)).map_err(|e| Error::parquet(dataset, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::equity_bars::{self, tests::sample};

    #[test]
    fn encode_decode_keeps_rows_and_request_ids() {
        let batch = equity_bars::to_batch(&sample(10));
        let ids: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
        let bytes = encode(Dataset::EquityBars, &batch, &ids).unwrap();
        let back = decode(Dataset::EquityBars, "x", Bytes::from(bytes)).unwrap();
        assert_eq!(back.batch, batch);
        assert_eq!(back.requests, ids);
    }

    #[test]
    fn foreign_schema_is_reported() {
        let batch = equity_bars::to_batch(&sample(2));
        let bytes = encode(Dataset::EquityBars, &batch, &BTreeSet::new()).unwrap();
        let err = decode(Dataset::Quotes, "quotes/x.parquet", Bytes::from(bytes)).unwrap_err();
        assert!(err.to_string().contains("quotes/x.parquet"), "{err}");
        let err = decode(Dataset::Quotes, "q", Bytes::from_static(b"not parquet")).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }));
    }

    #[test]
    fn newer_version_wins() {
        let old = sample(3);
        let mut new = sample(3);
        new[1].close = 7.0;
        new[1].ingested_at += chrono::Duration::hours(1);
        let merged = merge(Dataset::EquityBars, &[equity_bars::to_batch(&new), equity_bars::to_batch(&old)]).unwrap();
        let rows = equity_bars::from_batch(&merged);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].close, 7.0);
        assert_eq!(rows[0], old[0]);
    }
}
