//! The request manifest: one immutable JSON entry per request sent to the gateway.
//!
//! Entries live per symbol under `_manifest/symbol=<SYM>/`:
//! - `log-<UTC time>-<id>.json`: entries, written once with `PutMode::Create` under a unique name,
//!   so concurrent writers never overwrite each other;
//! - `pending-<id>.json`: an entry whose rows are being committed (see [`Lake::record`]); it turns
//!   into a log once its partitions are visible, or is dropped if they never became visible;
//! - `snapshot-<seq>.json`: a compaction of all earlier snapshots and logs. Sequence numbers are
//!   claimed with `PutMode::Create`, so of two concurrent compactions one wins and the other
//!   changes nothing; the winner deletes the logs it absorbed only after its snapshot is visible.
//!
//! Readers take the newest snapshot plus every log, deduplicated by entry id, so a crash between
//! any two steps loses nothing and counts nothing twice.

use super::layout::obj;
use super::layout::Partition;
use super::parquet_io::request_ids;
use super::Lake;
use crate::datasets::Dataset;
use crate::domain::window::{final_through, union};
use crate::domain::DateWindow;
use crate::domain::Symbol;
use crate::error::{Error, Result};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::{stream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use parquet::file::metadata::ParquetMetaDataReader;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// The `format` field of every manifest file.
pub const FORMAT: &str = "twslake.manifest/1";
/// A writer compacts a symbol's manifest after writing this many logs for it.
pub const COMPACT_AFTER_LOGS: usize = 512;

/// What was asked of the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The dataset the answer goes to.
    pub dataset: Dataset,
    /// The symbol (the underlying, for options).
    pub symbol: String,
    /// The contract id, when the request was for one contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub con_id: Option<i64>,
    /// `STK`, `OPT`…
    pub sec_type: String,
    /// Option expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<NaiveDate>,
    /// Option strike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strike: Option<f64>,
    /// Option right (`C`/`P`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub right: Option<String>,
    /// IB's bar size, for historical bars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bar_size: Option<String>,
    /// IB's what-to-show, for historical bars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what_to_show: Option<String>,
    /// Regular trading hours only.
    #[serde(default)]
    pub use_rth: bool,
    /// The trading dates the request covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<DateWindow>,
    /// The end date-time as sent to IB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<String>,
    /// The duration as sent to IB (e.g. `"1 Y"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// For a derived dataset (`surfaces`): a digest of the request ids of the partitions it was
    /// computed from. When the inputs change, the digest does, and the window is due again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
}

impl Request {
    /// A request of `dataset` for `symbol` with nothing else set (no contract, series or window).
    pub fn new(dataset: Dataset, symbol: &Symbol, sec_type: &str) -> Self {
        Request {
            dataset,
            symbol: symbol.to_string(),
            con_id: None,
            sec_type: sec_type.into(),
            expiry: None,
            strike: None,
            right: None,
            bar_size: None,
            what_to_show: None,
            use_rth: false,
            window: None,
            end_date_time: None,
            duration: None,
            inputs: None,
        }
    }

    /// A historical-bars request for a symbol's equity series over `window`.
    pub fn equity_bars(symbol: &Symbol, series: crate::domain::Series, window: DateWindow) -> Self {
        Request {
            bar_size: Some(series.bar_size.ib().into()),
            what_to_show: Some(series.what_to_show.ib().into()),
            use_rth: true,
            window: Some(window),
            ..Request::new(Dataset::EquityBars, symbol, "STK")
        }
    }

    /// The key under which coverage is counted.
    pub fn series_key(&self) -> SeriesKey {
        SeriesKey {
            dataset: self.dataset,
            con_id: self.con_id,
            bar_size: self.bar_size.clone(),
            what_to_show: self.what_to_show.clone(),
        }
    }
}

/// Identifies one series whose coverage is tracked (symbol aside: manifests are per symbol).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SeriesKey {
    /// Dataset.
    pub dataset: Dataset,
    /// Contract id (option bars), or `None` for the symbol's own series.
    pub con_id: Option<i64>,
    /// Bar size, IB's spelling.
    pub bar_size: Option<String>,
    /// What-to-show.
    pub what_to_show: Option<String>,
}

/// How the gateway answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Rows came back.
    Ok {
        /// How many.
        rows: u64,
    },
    /// A final answer with no rows (a holiday, a contract that did not trade).
    Empty,
    /// An error; the window is not covered and may be asked again.
    Error {
        /// IB's error code.
        code: i32,
        /// IB's text.
        message: String,
    },
    /// Not an answer: earlier entries found untrue (their partitions are gone) are void, so
    /// their windows count as missing again. Entries are never edited; they are revoked.
    Revoked {
        /// The ids of the void entries.
        ids: Vec<String>,
        /// Why.
        reason: String,
    },
}

/// One request, as remembered.
///
/// In JSON the request's fields sit beside the entry's own (one flat object); the conversion goes
/// through `EntryWire` because serde's `flatten` buffers every field and made loading a
/// 100,000-entry snapshot several times slower.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "EntryWire", into = "EntryWire")]
pub struct Entry {
    /// Unique id (also stored in the footer of every partition holding the entry's rows).
    pub id: String,
    /// What was asked.
    pub request: Request,
    /// When the request was sent.
    pub requested_at: DateTime<Utc>,
    /// When the answer was complete.
    pub completed_at: DateTime<Utc>,
    /// The last date of the window whose session was over when asked: later dates stay missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_through: Option<NaiveDate>,
    /// The answer.
    pub outcome: Outcome,
    /// The partitions (object paths under the lake root) the rows went to.
    #[serde(default)]
    pub partitions: Vec<String>,
}

/// The flat JSON form of an [`Entry`].
#[derive(Serialize, Deserialize)]
struct EntryWire {
    id: String,
    dataset: Dataset,
    symbol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    con_id: Option<i64>,
    sec_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expiry: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strike: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    right: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bar_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    what_to_show: Option<String>,
    #[serde(default)]
    use_rth: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window: Option<DateWindow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inputs: Option<String>,
    requested_at: DateTime<Utc>,
    completed_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    final_through: Option<NaiveDate>,
    outcome: Outcome,
    #[serde(default)]
    partitions: Vec<String>,
}

impl From<EntryWire> for Entry {
    fn from(w: EntryWire) -> Self {
        let request = Request {
            dataset: w.dataset,
            symbol: w.symbol,
            con_id: w.con_id,
            sec_type: w.sec_type,
            expiry: w.expiry,
            strike: w.strike,
            right: w.right,
            bar_size: w.bar_size,
            what_to_show: w.what_to_show,
            use_rth: w.use_rth,
            window: w.window,
            end_date_time: w.end_date_time,
            duration: w.duration,
            inputs: w.inputs,
        };
        Entry {
            id: w.id,
            request,
            requested_at: w.requested_at,
            completed_at: w.completed_at,
            final_through: w.final_through,
            outcome: w.outcome,
            partitions: w.partitions,
        }
    }
}

impl From<Entry> for EntryWire {
    fn from(e: Entry) -> Self {
        let r = e.request;
        EntryWire {
            id: e.id,
            dataset: r.dataset,
            symbol: r.symbol,
            con_id: r.con_id,
            sec_type: r.sec_type,
            expiry: r.expiry,
            strike: r.strike,
            right: r.right,
            bar_size: r.bar_size,
            what_to_show: r.what_to_show,
            use_rth: r.use_rth,
            window: r.window,
            end_date_time: r.end_date_time,
            duration: r.duration,
            inputs: r.inputs,
            requested_at: e.requested_at,
            completed_at: e.completed_at,
            final_through: e.final_through,
            outcome: e.outcome,
            partitions: e.partitions,
        }
    }
}

impl Entry {
    /// A new entry with a fresh id; `final_through` is derived from the window and the request time.
    pub fn new(request: Request, requested_at: DateTime<Utc>, completed_at: DateTime<Utc>, outcome: Outcome) -> Self {
        let final_through = request.window.and_then(|w| final_through(w, requested_at));
        Entry {
            id: uuid::Uuid::new_v4().simple().to_string(),
            request,
            requested_at,
            completed_at,
            final_through,
            outcome,
            partitions: Vec::new(),
        }
    }

    /// The trading dates this entry covers with a final answer, if any.
    pub fn covered(&self) -> Option<DateWindow> {
        if matches!(self.outcome, Outcome::Error { .. } | Outcome::Revoked { .. }) {
            return None;
        }
        let w = self.request.window?;
        let end = self.final_through?.min(w.end);
        (end >= w.start).then_some(DateWindow { start: w.start, end })
    }
}

/// The JSON document of a log, pending or snapshot file.
#[derive(Debug, Serialize, Deserialize)]
struct ManifestFile {
    format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    entries: Vec<Entry>,
}

/// The manifest of one symbol, as loaded.
#[derive(Debug, Clone, Default)]
pub struct SymbolManifest {
    /// Every entry, deduplicated by id, ordered by request time.
    pub entries: Vec<Entry>,
    /// Pending entries whose rows turned out to be visible (counted in `entries`).
    pub pending_visible: Vec<String>,
    /// Pending entries whose rows never became visible (not counted).
    pub pending_lost: Vec<String>,
    /// Number of log files read.
    pub logs: usize,
}

impl SymbolManifest {
    /// The dates of `key` covered by final answers, as sorted disjoint windows.
    pub fn covered(&self, key: &SeriesKey) -> Vec<DateWindow> {
        let spans = self.entries.iter().filter(|e| e.request.series_key() == *key).filter_map(Entry::covered);
        union(spans.collect())
    }

    /// Every series that has at least one entry.
    pub fn series(&self) -> Vec<SeriesKey> {
        let set: std::collections::BTreeSet<SeriesKey> = self.entries.iter().map(|e| e.request.series_key()).collect();
        set.into_iter().collect()
    }
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
        let file: ManifestFile = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt { path: path.to_string(), reason: format!("not a manifest file: {e}") })?;
        if file.format != FORMAT {
            let reason = format!("format {:?}, expected {FORMAT:?}", file.format);
            return Err(Error::Corrupt { path: path.to_string(), reason });
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

    /// Those of `entry`'s partitions that carry its id in the footer (hold its rows).
    async fn visible_partitions(&self, entry: &Entry) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for p in &entry.partitions {
            if self.footer_request_ids(&obj(p)).await?.is_some_and(|ids| ids.contains(&entry.id)) {
                out.push(p.clone());
            }
        }
        Ok(out)
    }

    /// The request ids in a partition's footer, read with two ranged GETs; `None` if absent.
    pub async fn footer_request_ids(&self, path: &Path) -> Result<Option<std::collections::BTreeSet<String>>> {
        let corrupt = |reason: String| Error::Corrupt { path: path.to_string(), reason };
        let size = match self.store().head(path).await {
            Ok(m) => m.size,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(Error::storage(path, e)),
        };
        if size < 12 {
            return Err(corrupt("too short for Parquet".into()));
        }
        let tail = self.store().get_range(path, size - 8..size).await.map_err(|e| Error::storage(path, e))?;
        if &tail[4..] != b"PAR1" {
            return Err(corrupt("no Parquet footer magic".into()));
        }
        let len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
        if len + 12 > size {
            return Err(corrupt("footer length beyond the file".into()));
        }
        let footer =
            self.store().get_range(path, size - 8 - len..size - 8).await.map_err(|e| Error::storage(path, e))?;
        let meta = ParquetMetaDataReader::decode_metadata(&footer).map_err(|e| corrupt(e.to_string()))?;
        Ok(Some(request_ids(meta.file_metadata().key_value_metadata())))
    }

    /// Loads a symbol's manifest (read-only: pending entries are judged, not resolved).
    pub async fn manifest(&self, symbol: &Symbol) -> Result<SymbolManifest> {
        // A concurrent compaction may delete a log between our listing and our read: list again.
        let mut attempt = 0;
        loop {
            match self.try_load_manifest(symbol).await {
                Err(Error::Storage { source: object_store::Error::NotFound { .. }, .. }) if attempt < 5 => attempt += 1,
                other => return other,
            }
        }
    }

    async fn try_load_manifest(&self, symbol: &Symbol) -> Result<SymbolManifest> {
        let listing = self.list_manifest(symbol).await?;
        let mut files = self.read_all(&listing.logs).await?;
        if let Some((_, snap)) = &listing.snapshot {
            files.push(self.read_manifest_file(snap).await?);
        }
        let mut by_id: BTreeMap<String, Entry> = BTreeMap::new();
        for e in files.into_iter().flat_map(|f| f.entries) {
            by_id.insert(e.id.clone(), e);
        }
        let mut m = SymbolManifest { logs: listing.logs.len(), ..Default::default() };
        for file in self.read_all(&listing.pending).await? {
            for e in file.entries {
                if by_id.contains_key(&e.id) {
                    continue;
                }
                let visible = self.visible_partitions(&e).await?;
                if visible.is_empty() {
                    m.pending_lost.push(e.id.clone());
                } else if visible.len() == e.partitions.len() {
                    m.pending_visible.push(e.id.clone());
                    by_id.insert(e.id.clone(), e);
                } else {
                    // Some rows are visible, some never made it: remembered (nothing visible is
                    // unaccounted for) but as an error, so the window is asked again; it names
                    // only the partitions that really hold its rows.
                    m.pending_visible.push(e.id.clone());
                    let message = "interrupted before all its partitions were written; asked again".to_string();
                    let outcome = Outcome::Error { code: 0, message };
                    by_id.insert(e.id.clone(), Entry { outcome, partitions: visible, ..e });
                }
            }
        }
        let revoked: HashSet<String> = by_id
            .values()
            .filter_map(|e| match &e.outcome {
                Outcome::Revoked { ids, .. } => Some(ids.iter().cloned()),
                _ => None,
            })
            .flatten()
            .collect();
        m.entries = by_id.into_values().filter(|e| !revoked.contains(&e.id)).collect();
        m.entries.sort_by(|a, b| (a.requested_at, &a.id).cmp(&(b.requested_at, &b.id)));
        Ok(m)
    }

    /// Writes pending entries: the first step of [`Lake::record`] (public for crash tests).
    pub async fn put_pending(&self, symbol: &Symbol, entries: &[Entry]) -> Result<Path> {
        let first = entries.first().map(|e| e.id.as_str()).unwrap_or("none");
        let path = manifest_dir(symbol).clone().join(format!("pending-{first}.json").as_str());
        let file = ManifestFile { format: FORMAT.into(), seq: None, entries: entries.to_vec() };
        let opts = PutOptions::from(PutMode::Create);
        self.store().put_opts(&path, to_json(&file), opts).await.map_err(|e| Error::storage(&path, e))?;
        Ok(path)
    }

    /// Writes entries as one immutable log file.
    pub async fn put_log(&self, symbol: &Symbol, entries: Vec<Entry>) -> Result<Path> {
        let first = entries.first().map(|e| e.id.clone()).unwrap_or_default();
        let at = entries.iter().map(|e| e.completed_at).max().unwrap_or_else(Utc::now);
        let stamp = at.format("%Y%m%dT%H%M%S%6fZ");
        let path = manifest_dir(symbol).clone().join(format!("log-{stamp}-{first}.json").as_str());
        let file = ManifestFile { format: FORMAT.into(), seq: None, entries };
        let opts = PutOptions::from(PutMode::Create);
        self.store().put_opts(&path, to_json(&file), opts).await.map_err(|e| Error::storage(&path, e))?;
        if self.count_log(symbol.as_str()) {
            // Keeps opening a symbol's manifest cheap however many requests it remembers; a
            // failure here loses nothing (the logs stay) and is retried at the next threshold.
            if let Err(e) = self.compact_manifest(symbol).await {
                tracing::warn!("compacting the manifest of {symbol} failed: {e}");
            }
        }
        Ok(path)
    }

    /// Revokes entries (see [`Outcome::Revoked`]): their windows count as missing again.
    pub async fn revoke(&self, symbol: &Symbol, ids: Vec<String>, reason: &str) -> Result<Entry> {
        let at = Utc::now();
        let request = Request::new(Dataset::Contracts, symbol, "");
        let entry = Entry::new(request, at, at, Outcome::Revoked { ids, reason: reason.to_string() });
        self.put_log(symbol, vec![entry.clone()]).await?;
        Ok(entry)
    }

    /// Settles pending entries left by a crashed writer: visible rows get their log, the rest are
    /// dropped (their window stays missing and will be asked again). Returns (promoted, dropped).
    pub async fn recover_manifest(&self, symbol: &Symbol) -> Result<(usize, usize)> {
        let listing = self.list_manifest(symbol).await?;
        if listing.pending.is_empty() {
            return Ok((0, 0));
        }
        let loaded = self.manifest(symbol).await?;
        // Entries already in logs or snapshots (pending ones judged visible are not yet).
        let known: HashSet<&str> = loaded
            .entries
            .iter()
            .map(|e| e.id.as_str())
            .filter(|id| !loaded.pending_visible.iter().any(|p| p == id))
            .collect();
        let (mut promoted, mut dropped) = (0, 0);
        for path in &listing.pending {
            let file = match self.read_manifest_file(path).await {
                Ok(f) => f,
                Err(Error::Storage { source: object_store::Error::NotFound { .. }, .. }) => continue,
                Err(e) => return Err(e),
            };
            let judged: BTreeMap<&str, &Entry> = loaded.entries.iter().map(|e| (e.id.as_str(), e)).collect();
            let visible: Vec<Entry> = file
                .entries
                .iter()
                .filter(|e| loaded.pending_visible.contains(&e.id))
                .filter_map(|e| judged.get(e.id.as_str()).map(|j| (*j).clone()))
                .collect();
            let already: bool = file.entries.iter().all(|e| known.contains(e.id.as_str()));
            if !visible.is_empty() && !already {
                self.put_log(symbol, visible).await?;
                promoted += 1;
            } else if visible.is_empty() {
                dropped += 1;
            }
            // Deleting after the log is visible: a crash here leaves a pending file that the next
            // load dedups by id.
            match self.store().delete(path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::storage(path, e)),
            }
        }
        Ok((promoted, dropped))
    }

    /// Folds a symbol's logs into a new snapshot; returns its sequence number, or `None` when
    /// another process compacted first (nothing is changed then).
    pub async fn compact_manifest(&self, symbol: &Symbol) -> Result<Option<u64>> {
        let listing = self.list_manifest(symbol).await?;
        if listing.logs.is_empty() {
            return Ok(listing.snapshot.map(|(s, _)| s));
        }
        let next = listing.snapshot.as_ref().map_or(1, |(s, _)| s + 1);
        let mut paths = listing.logs.clone();
        paths.extend(listing.snapshot.as_ref().map(|(_, p)| p.clone()));
        let files = match self.read_all(&paths).await {
            Ok(files) => files,
            // A concurrent compaction absorbed and deleted what we listed: it has done our work.
            Err(Error::Storage { source: object_store::Error::NotFound { .. }, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut by_id: BTreeMap<String, Entry> = BTreeMap::new();
        for e in files.into_iter().flat_map(|f| f.entries) {
            by_id.insert(e.id.clone(), e);
        }
        let mut entries: Vec<Entry> = by_id.into_values().collect();
        entries.sort_by(|a, b| (a.requested_at, &a.id).cmp(&(b.requested_at, &b.id)));
        let path = manifest_dir(symbol).clone().join(format!("snapshot-{next:010}.json").as_str());
        let file = ManifestFile { format: FORMAT.into(), seq: Some(next), entries };
        match self.store().put_opts(&path, to_json(&file), PutOptions::from(PutMode::Create)).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => return Ok(None),
            Err(e) => return Err(Error::storage(&path, e)),
        }
        let mut obsolete = listing.logs.clone();
        obsolete.extend(listing.snapshot.map(|(_, p)| p));
        for p in obsolete {
            match self.store().delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::storage(&p, e)),
            }
        }
        Ok(Some(next))
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

    /// Object paths of the partitions a symbol's manifest names.
    pub fn partitions_of(m: &SymbolManifest) -> Vec<Result<Partition>> {
        let set: std::collections::BTreeSet<&String> = m.entries.iter().flat_map(|e| &e.partitions).collect();
        set.into_iter().map(|p| Partition::from_path(&obj(p))).collect()
    }

    /// Reads raw bytes of an object, `None` when absent.
    pub(crate) async fn get_opt(&self, path: &Path) -> Result<Option<(Bytes, Option<String>, Option<String>)>> {
        match self.store().get(path).await {
            Ok(r) => {
                let (etag, version) = (r.meta.e_tag.clone(), r.meta.version.clone());
                let bytes = r.bytes().await.map_err(|e| Error::storage(path, e))?;
                Ok(Some((bytes, etag, version)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::storage(path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn union_merges_overlapping_and_adjacent() {
        let w = |a: &str, b: &str| DateWindow::new(d(a), d(b)).unwrap();
        let u =
            union(vec![w("2024-01-10", "2024-01-12"), w("2024-01-01", "2024-01-05"), w("2024-01-06", "2024-01-08")]);
        assert_eq!(u, vec![w("2024-01-01", "2024-01-08"), w("2024-01-10", "2024-01-12")]);
    }

    #[test]
    fn unfinished_session_is_not_final() {
        let w = DateWindow::new(d("2024-11-18"), d("2024-11-22")).unwrap();
        let during = "2024-11-22T18:00:00Z".parse().unwrap(); // 13:00 New York, session open
        assert_eq!(final_through(w, during), Some(d("2024-11-21")));
        let after = "2024-11-22T21:01:00Z".parse().unwrap();
        assert_eq!(final_through(w, after), Some(d("2024-11-22")));
        let before = "2024-11-18T10:00:00Z".parse().unwrap();
        assert_eq!(final_through(w, before), None);
    }

    #[test]
    fn errors_cover_nothing() {
        let sym = Symbol::new("SPY").unwrap();
        let series = crate::domain::Series {
            bar_size: crate::domain::BarSize::Day1,
            what_to_show: crate::domain::WhatToShow::Trades,
        };
        let w = DateWindow::new(d("2024-01-02"), d("2024-01-31")).unwrap();
        let at = "2024-03-01T00:00:00Z".parse().unwrap();
        let req = Request::equity_bars(&sym, series, w);
        let err = Entry::new(req.clone(), at, at, Outcome::Error { code: 162, message: "x".into() });
        assert_eq!(err.covered(), None);
        assert_eq!(Entry::new(req, at, at, Outcome::Empty).covered(), Some(w));
    }
}
