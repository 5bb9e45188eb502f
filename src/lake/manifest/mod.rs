//! The request manifest: one immutable JSON entry per request sent to the gateway.
//!
//! Entries live per symbol under `_manifest/symbol=<SYM>/`:
//! - `log-<UTC time>-<id>-<tag>.json`: entries, written once with `PutMode::Create` under a name
//!   made unique by `<tag>` (16 hex digits of a hash of the file's bytes; see `log`), so
//!   concurrent writers never overwrite each other nor take each other's name;
//! - `pending-<id>-<tag>.json`: an entry whose rows are being committed (see [`Lake::record`]); it turns
//!   into a log once its partitions are visible, or is dropped if they never became visible;
//! - `snapshot-<seq>.json`: a compaction of all earlier snapshots and logs. Sequence numbers are
//!   claimed with `PutMode::Create`, so of two concurrent compactions one wins and the other
//!   changes nothing; the winner deletes the logs it absorbed only after its snapshot is visible.
//!
//! Readers take the newest snapshot plus every log, deduplicated by entry id, so a crash between
//! any two steps loses nothing and counts nothing twice.
//!
//! # Rooms
//! - [`entry`]: what one entry says (the request, its outcome, the partitions it wrote) and its
//!   JSON form;
//! - [`coverage`]: a symbol's manifest as loaded, and the dates each series has final answers for;
//! - `log`: writing entries (pending files, logs, compaction into snapshots, revocations);
//! - `recovery`: loading a symbol's manifest and judging pending entries by the footers of
//!   their partitions, and settling what a killed writer left.

pub mod coverage;
pub mod entry;
mod log;
mod recovery;

pub use coverage::SymbolManifest;
pub use entry::{Entry, Outcome, Request, SeriesKey};

use super::layout::obj;
use super::read::damaged;
use super::Lake;
use crate::domain::Symbol;
use crate::error::{Error, Result};
use futures::{stream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

/// The `format` field of every manifest file.
pub const FORMAT: &str = "twslake.manifest/1";
/// A writer compacts a symbol's manifest after writing this many logs for it (through one lake
/// handle). Tests set `TWSLAKE_COMPACT_AFTER_LOGS` to reach compaction within a few writes.
pub const COMPACT_AFTER_LOGS: usize = 512;

/// The JSON document of a log, pending or snapshot file.
#[derive(Debug, Serialize, Deserialize)]
struct ManifestFile {
    format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    entries: Vec<Entry>,
}

fn manifest_dir(symbol: &Symbol) -> Path {
    obj(&format!("_manifest/symbol={}", symbol.encoded()))
}

/// Logs are pretty-printed for people; snapshots (up to 100,000s of entries) are compact.
fn to_json(file: &ManifestFile) -> PutPayload {
    let bytes = if file.seq.is_some() { serde_json::to_vec(file) } else { serde_json::to_vec_pretty(file) };
    PutPayload::from(bytes.expect("manifest serializes"))
}

enum Kind {
    Log,
    Pending,
    Snapshot(u64),
    Other,
}

fn kind_of(path: &Path) -> Kind {
    let name = path.filename().unwrap_or_default();
    if name.starts_with("log-") && name.ends_with(".json") {
        Kind::Log
    } else if name.starts_with("pending-") && name.ends_with(".json") {
        Kind::Pending
    } else if let Some(seq) = name.strip_prefix("snapshot-").and_then(|s| s.strip_suffix(".json")) {
        seq.parse().map(Kind::Snapshot).unwrap_or(Kind::Other)
    } else {
        Kind::Other
    }
}

/// What a load found in one symbol's folder.
struct Listing {
    logs: Vec<Path>,
    pending: Vec<Path>,
    snapshot: Option<(u64, Path)>,
}

impl Lake {
    async fn read_manifest_file(&self, path: &Path) -> Result<ManifestFile> {
        let bytes = self.store().get(path).await.map_err(|e| Error::storage(path, e))?.bytes().await;
        let bytes = bytes.map_err(|e| Error::storage(path, e))?;
        let file: ManifestFile =
            serde_json::from_slice(&bytes).map_err(|e| damaged(path.as_ref(), format!("not a manifest file: {e}")))?;
        if file.format != FORMAT {
            return Err(damaged(path.as_ref(), format!("format {:?}, expected {FORMAT:?}", file.format)));
        }
        Ok(file)
    }

    async fn list_manifest(&self, symbol: &Symbol) -> Result<Listing> {
        let mut l = Listing { logs: vec![], pending: vec![], snapshot: None };
        for meta in self.list(Some(&manifest_dir(symbol))).await? {
            match kind_of(&meta.location) {
                Kind::Log => l.logs.push(meta.location),
                Kind::Pending => l.pending.push(meta.location),
                Kind::Snapshot(seq) if l.snapshot.as_ref().is_none_or(|(s, _)| seq > *s) => {
                    l.snapshot = Some((seq, meta.location))
                }
                _ => {}
            }
        }
        Ok(l)
    }

    async fn read_all(&self, paths: &[Path]) -> Result<Vec<ManifestFile>> {
        stream::iter(paths.iter().map(|p| self.read_manifest_file(p))).buffer_unordered(32).try_collect().await
    }

    /// Every symbol that has a manifest folder.
    pub async fn manifest_symbols(&self) -> Result<Vec<Symbol>> {
        let root = obj("_manifest");
        let listing = self.store().list_with_delimiter(Some(&root)).await.map_err(|e| Error::storage(&root, e))?;
        let mut out: Vec<Symbol> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename()?.strip_prefix("symbol=").map(Symbol::decode))
            .filter_map(|s| s.ok())
            .collect();
        out.sort();
        Ok(out)
    }
}
