//! Reads tied to one version of an object.
//!
//! A Parquet footer is read in pieces (the size from a `head`, then ranged reads of the tail).
//! Another process may replace the object between the pieces; reading the new object's bytes at
//! the old object's offsets used to look like a torn file (`no Parquet footer magic`). Every
//! ranged read here therefore carries the `ETag` (and, on versioned buckets, the version) of the
//! `head` it follows (`If-Match`: object_store checks it on S3 and on the local file system,
//! whose ETag is inode, mtime and size, so a rename over the file changes it). When the object
//! changed in between, the read starts again from a fresh `head` — up to [`VERSION_RETRIES`]
//! times, since a busy writer may replace one partition several times a second — and only what
//! one version says is ever judged. An object deleted in between reads as absent.
//!
//! Whole-object reads (`get` without a range) are one request, hence one version, already.
//!
//! Errors name the object; a file that is damaged says how to deal with it ([`DAMAGED_ADVICE`]).

use super::parquet_io::request_ids;
use super::Lake;
use crate::error::{Error, Result};
use futures::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use std::collections::BTreeSet;
use std::time::Duration;

/// What to do about a damaged or foreign file, appended to every "corrupt" message.
pub const DAMAGED_ADVICE: &str =
    "run `twslake validate --repair` to move it to _quarantine/ and have the next `update` fetch its rows again";

/// Fresh starts of a read whose object changed under it before giving up (with an error that
/// says so, never "corrupt").
pub const VERSION_RETRIES: u32 = 8;

/// Bytes of a file's tail read at once: the footer of every partition twslake writes fits.
const TAIL: u64 = 64 * 1024;

/// Why one attempt at a version-pinned read did not give an answer.
enum Attempt {
    /// The object was replaced or deleted after its `head`: start again.
    Changed(object_store::Error),
    /// A real failure (storage error, or a damaged file).
    Failed(Error),
}

/// A `Corrupt` error for `path` that says what to do.
pub fn damaged(path: &str, reason: impl std::fmt::Display) -> Error {
    Error::Corrupt { path: path.to_string(), reason: format!("{reason}; {DAMAGED_ADVICE}") }
}

impl Lake {
    /// The Parquet metadata (footer) of a data file, read from one version of it; `None` when
    /// the file does not exist. A damaged file is an [`Error::Corrupt`] naming it.
    pub async fn footer(&self, path: &Path) -> Result<Option<ParquetMetaData>> {
        let mut last = None;
        for attempt in 0..=VERSION_RETRIES {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(5 * attempt as u64)).await;
            }
            let meta = match self.store().head(path).await {
                Ok(m) => m,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(Error::storage(path, e)),
            };
            match footer_of_version(self.store().as_ref(), path, &meta).await {
                Ok(m) => return Ok(Some(m)),
                Err(Attempt::Changed(e)) => last = Some(e),
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
        let e = last.expect("the loop ran");
        Err(Error::storage(
            format!(
                "{path} (replaced {} times while being read: another process is rewriting it; run again)",
                VERSION_RETRIES + 1
            ),
            e,
        ))
    }

    /// The request ids in a partition's footer (see [`Lake::footer`]); `None` if absent.
    pub async fn footer_request_ids(&self, path: &Path) -> Result<Option<BTreeSet<String>>> {
        Ok(self.footer(path).await?.map(|m| request_ids(m.file_metadata().key_value_metadata())))
    }
}

/// A ranged read of exactly the version `meta` describes (`path` as asked: a prefixed store's
/// `head` may answer with the full key).
async fn get_pinned(
    store: &dyn ObjectStore,
    path: &Path,
    meta: &ObjectMeta,
    range: std::ops::Range<u64>,
) -> Result<bytes::Bytes, Attempt> {
    let opts = GetOptions {
        if_match: meta.e_tag.clone(),
        version: meta.version.clone(),
        range: Some(GetRange::Bounded(range)),
        ..Default::default()
    };
    let got = match store.get_opts(path, opts).await {
        Ok(r) => r.bytes().await,
        Err(e) => Err(e),
    };
    got.map_err(|e| match e {
        object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. } => Attempt::Changed(e),
        e => Attempt::Failed(Error::storage(path, e)),
    })
}

async fn footer_of_version(store: &dyn ObjectStore, at: &Path, meta: &ObjectMeta) -> Result<ParquetMetaData, Attempt> {
    let path = at.as_ref();
    let size = meta.size;
    if size < 12 {
        return Err(Attempt::Failed(damaged(path, format!("{size} bytes: too short for a Parquet file"))));
    }
    let start = size.saturating_sub(TAIL);
    let tail = get_pinned(store, at, meta, start..size).await?;
    if tail.len() as u64 != size - start {
        return Err(Attempt::Failed(damaged(path, "the file ended before its stated size")));
    }
    let n = tail.len();
    if &tail[n - 4..] != b"PAR1" {
        return Err(Attempt::Failed(damaged(path, "no Parquet footer magic (truncated or not Parquet)")));
    }
    let len = u32::from_le_bytes([tail[n - 8], tail[n - 7], tail[n - 6], tail[n - 5]]) as u64;
    if len + 12 > size {
        return Err(Attempt::Failed(damaged(path, "footer length beyond the file (truncated)")));
    }
    let footer = if len + 8 <= n as u64 {
        tail.slice(n - 8 - len as usize..n - 8)
    } else {
        get_pinned(store, at, meta, size - 8 - len..size - 8).await?
    };
    ParquetMetaDataReader::decode_metadata(&footer)
        .map_err(|e| Attempt::Failed(damaged(path, format!("unreadable Parquet footer: {e}"))))
}

impl Lake {
    /// Turns an error of a query over the lake (polars reads the files itself and names none)
    /// into the error of the first damaged data file, naming it and the repair; any other error,
    /// or a query error with no damaged file behind it, is returned as it is. It reads every
    /// data file's footer, so it is for the failure path only.
    pub async fn diagnose(&self, err: Error) -> Error {
        if !matches!(err, Error::Query(_)) {
            return err;
        }
        let Ok(all) = self.list(None).await else { return err };
        let data = all.into_iter().filter(|m| super::layout::DataObject::from_path(&m.location).is_ok());
        let checks = futures::stream::iter(data.map(|m| async move { self.footer(&m.location).await }))
            .buffer_unordered(8)
            .filter_map(|r| async move { r.err().filter(|e| matches!(e, Error::Corrupt { .. })) });
        futures::pin_mut!(checks);
        match checks.next().await {
            Some(Error::Corrupt { path, reason }) => {
                Error::Corrupt { path, reason: format!("{reason} (a query failed on it: {err})") }
            }
            _ => err,
        }
    }
}
