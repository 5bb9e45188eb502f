//! Writing entries: pending files before rows, logs after, compaction into snapshots, and
//! revocations. Every file is created once under a unique name (`PutMode::Create`).

use super::{manifest_dir, to_json, Entry, ManifestFile, Outcome, Request, FORMAT};
use crate::domain::Symbol;
use crate::error::{Error, Result};
use crate::lake::Lake;
use chrono::Utc;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions};
use std::collections::BTreeMap;

impl Lake {
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
        let request = Request::revocation(symbol);
        let entry = Entry::new(request, at, at, Outcome::Revoked { ids, reason: reason.to_string() });
        self.put_log(symbol, vec![entry.clone()]).await?;
        Ok(entry)
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
}
