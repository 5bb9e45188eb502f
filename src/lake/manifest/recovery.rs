//! Loading a symbol's manifest: the newest snapshot plus every log, deduplicated by entry id,
//! and pending entries judged by the footers of their partitions (counted exactly when their
//! rows are visible); settling what a killed writer left.

use super::{Entry, Outcome, SymbolManifest};
use crate::domain::Symbol;
use crate::error::{Error, Result};
use crate::lake::layout::obj;
use crate::lake::Lake;
use object_store::ObjectStoreExt;
use std::collections::{BTreeMap, HashSet};

impl Lake {
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

    /// Loads a symbol's manifest (read-only: pending entries are judged, not resolved).
    pub async fn manifest(&self, symbol: &Symbol) -> Result<SymbolManifest> {
        // A concurrent compaction may delete a log between our listing and our read: list again.
        let mut attempt = 0;
        loop {
            match self.try_load_manifest(symbol).await {
                Err(Error::Storage { source: object_store::Error::NotFound { .. }, .. }) if attempt < 20 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(2 * attempt)).await;
                }
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
        // A pending file deleted since the listing was settled by its writer (its entries are in
        // a log now, or were dropped): skipped, never an error. Its entries are then missing
        // from this load only if their log came after the listing: counted as not yet asked.
        let mut pending = Vec::new();
        for path in &listing.pending {
            match self.read_manifest_file(path).await {
                Ok(f) => pending.push(f),
                Err(Error::Storage { source: object_store::Error::NotFound { .. }, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        for file in pending {
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

    /// Settles pending entries left by a crashed writer: visible rows get their log, the rest are
    /// dropped (their window stays missing and will be asked again). Returns (promoted, dropped).
    /// Temporary files a killed writer left under `_tmp/` are swept first, once per handle
    /// (see [`crate::lake::guard`]).
    pub async fn recover_manifest(&self, symbol: &Symbol) -> Result<(usize, usize)> {
        self.sweep_tmp_once().await;
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
}
