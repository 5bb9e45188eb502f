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
        let file = ManifestFile { format: FORMAT.into(), seq: None, entries: entries.to_vec() };
        self.create_unique(symbol, &file, |tag| format!("pending-{first}-{tag}.json")).await
    }

    /// Creates a manifest file under a name no other writer can take: `name(tag)`, `tag` being
    /// 16 hex digits of a hash of the file's bytes. Two writers with different entries thus never
    /// share a name, and two writing the same entries (two processes settling one pending file
    /// both promote it: same first id, same time) meet on one name: the file that exists then
    /// holds exactly these bytes, and the write is done. A name taken by other bytes (a hash
    /// collision, or a file written by hand) is never overwritten (`PutMode::Create`): a random
    /// tag (uuid v4) is drawn instead. The hash rather than a random tag keeps names
    /// reproducible (the example lake is byte for byte what the code writes).
    async fn create_unique(&self, symbol: &Symbol, file: &ManifestFile, name: impl Fn(&str) -> String) -> Result<Path> {
        const ATTEMPTS: usize = 5;
        let payload = to_json(file);
        let bytes: Vec<u8> = payload.iter().flat_map(|b| b.iter().copied()).collect();
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100_0000_01b3));
        let mut tag = format!("{hash:016x}");
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let path = manifest_dir(symbol).clone().join(name(&tag).as_str());
            self.refuse_symlinks(&path)?;
            let opts = PutOptions::from(PutMode::Create);
            match self.store().put_opts(&path, payload.clone(), opts).await {
                Ok(_) => return Ok(path),
                Err(e @ object_store::Error::AlreadyExists { .. }) => {
                    if self.get_opt(&path).await?.is_some_and(|(there, _, _)| there == bytes) {
                        return Ok(path);
                    }
                    last = Some(Error::storage(&path, e));
                    tag = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
                }
                Err(e) => return Err(Error::storage(&path, e)),
            }
        }
        Err(last.expect("the loop ran"))
    }

    /// Writes entries as one immutable log file, `log-<UTC>-<first id>-<tag>.json`.
    pub async fn put_log(&self, symbol: &Symbol, entries: Vec<Entry>) -> Result<Path> {
        let first = entries.first().map(|e| e.id.clone()).unwrap_or_default();
        let at = entries.iter().map(|e| e.completed_at).max().unwrap_or_else(Utc::now);
        let stamp = at.format("%Y%m%dT%H%M%S%6fZ");
        let file = ManifestFile { format: FORMAT.into(), seq: None, entries };
        let path = self.create_unique(symbol, &file, |tag| format!("log-{stamp}-{first}-{tag}.json")).await?;
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
        // Both events are what the crash tests wait for to kill a writer inside a compaction.
        tracing::debug!("compacting the manifest of {symbol}: {} logs into snapshot {next}", listing.logs.len());
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
        self.refuse_symlinks(&path)?;
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
        tracing::debug!("compacted the manifest of {symbol} into snapshot {next}");
        Ok(Some(next))
    }
}
