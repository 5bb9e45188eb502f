//! `twslake validate --repair`, and the check of lost data that `update` runs.
//!
//! **The repair policy.** A data file that cannot be read as what its place says (zero bytes,
//! truncated, random bytes, another program's file), or that breaks the lake's rules (rows
//! sharing a key, rows outside its partition), is moved to `_quarantine/<its path>` (a later
//! copy of the same path gets a time suffix), never deleted: a person may want it. The manifest
//! entries that wrote into it are then revoked, so their windows count as missing and the next
//! `update` fetches them again. A damaged file may not be readable, so the entries are found by
//! the partition paths the manifest records for them, not by the file's footer. A symbolic link
//! is moved aside itself (never its target); a damaged manifest file is moved aside (the windows
//! it recorded are then fetched again); an entry whose partition is gone or no longer holds its
//! rows is revoked; `_tmp/` residue is swept.
//!
//! Files are moved before entries are revoked: a crash in between leaves entries that name a
//! missing partition, which the next `validate --repair` (or `update`) revokes.
//!
//! `update` itself moves nothing: it stops on a damaged file with an error naming it and this
//! command. Quarantining is a decision about the user's files, taken when asked; and a file that
//! reads as damaged because of a passing condition (a network file system remounting) is then
//! not moved aside by an unattended run. `repair` is meant to run when no writer is running.
//!
//! **Lost data** ([`Lake::lost_entries`]): an entry counts as lost only on a confirmed verdict — its
//! partition is absent (a fresh `head` says not found) or its footer, read from one version of
//! the file, does not list it. A read that fails is an error, never "lost".

use super::layout::{obj, DataObject, Partition};
use super::manifest::Outcome;
use super::validate::{ProblemKind, Report};
use super::{Lake, Location};
use crate::domain::Symbol;
use crate::error::{Error, Result};
use chrono::Utc;
use object_store::ObjectStoreExt;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a repair did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Repaired {
    /// Files moved aside: (from, to), paths inside the lake.
    pub moved: Vec<(String, String)>,
    /// Manifest entries revoked (their windows are fetched again by the next `update`).
    pub revoked: usize,
    /// Temporary files of interrupted writes deleted.
    pub tmp_swept: usize,
}

impl Lake {
    /// Moves one object (or, on local disk, a symbolic link itself) to `_quarantine/<path>`;
    /// returns where it went. S3: a copy then a delete; local disk: one rename.
    pub async fn quarantine(&self, path: &str) -> Result<String> {
        let mut dest = format!("_quarantine/{path}");
        if self.store().head(&obj(&dest)).await.is_ok() {
            dest = format!("{dest}.{}", Utc::now().format("%Y%m%dT%H%M%S%6fZ"));
        }
        self.refuse_symlinks(&obj(&dest))?;
        match self.location() {
            Location::Local(root) => {
                let (from, to) = (root.join(path), root.join(&dest));
                let io = |e| Error::Io { path: from.clone(), source: e };
                if let Some(dir) = to.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                std::fs::rename(&from, &to).map_err(io)?;
            }
            Location::S3 { .. } => {
                let (from, to) = (obj(path), obj(&dest));
                self.store().copy(&from, &to).await.map_err(|e| Error::storage(&from, e))?;
                match self.store().delete(&from).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(Error::storage(&from, e)),
                }
            }
        }
        Ok(dest)
    }

    /// Repairs what `report` (from [`Lake::validate`]) found: see the module's policy.
    pub async fn repair(&self, report: &Report) -> Result<Repaired> {
        let mut done = Repaired { tmp_swept: self.sweep_tmp().await?, ..Default::default() };
        let mut move_aside: BTreeSet<&str> = BTreeSet::new();
        let mut damaged_partitions: BTreeSet<String> = BTreeSet::new();
        let mut revoke: BTreeMap<Symbol, BTreeSet<String>> = BTreeMap::new();
        for p in &report.problems {
            match p.kind {
                ProblemKind::Corrupt | ProblemKind::Foreign | ProblemKind::DuplicateKeys | ProblemKind::BadRows => {
                    // A damaged manifest folder (not one file) cannot be moved as a whole.
                    if !p.path.starts_with("_manifest/") || p.path.ends_with(".json") {
                        move_aside.insert(&p.path);
                    }
                    if let Ok(DataObject::Partition(part)) = DataObject::from_path(&obj(&p.path)) {
                        damaged_partitions.insert(part.path().to_string());
                    }
                }
                ProblemKind::Symlink => {
                    move_aside.insert(&p.path);
                }
                ProblemKind::MissingPartition => {
                    if let (Some(id), Ok(part)) = (&p.entry, Partition::from_path(&obj(&p.path))) {
                        revoke.entry(part.symbol).or_default().insert(id.clone());
                    }
                }
            }
        }
        for path in move_aside {
            let to = self.quarantine(path).await?;
            done.moved.push((path.to_string(), to));
        }
        // Every entry that wrote into a moved partition, found by the paths the manifest records.
        let symbols: BTreeSet<Symbol> =
            damaged_partitions.iter().filter_map(|p| Partition::from_path(&obj(p)).ok()).map(|p| p.symbol).collect();
        for symbol in symbols {
            let m = self.manifest(&symbol).await?;
            let ids = m.entries.iter().filter(|e| e.partitions.iter().any(|p| damaged_partitions.contains(p)));
            revoke.entry(symbol).or_default().extend(ids.map(|e| e.id.clone()));
        }
        for (symbol, ids) in revoke.into_iter().filter(|(_, ids)| !ids.is_empty()) {
            done.revoked += ids.len();
            let reason = "damaged, foreign or missing partition: moved aside by `twslake validate --repair`";
            self.revoke(&symbol, ids.into_iter().collect(), reason).await?;
        }
        Ok(done)
    }

    /// Entries of `symbol` with rows (outcome `ok`) whose rows are confirmed gone: a partition
    /// they name is absent or does not list them in its footer. Read errors (a damaged file,
    /// a storage failure) are returned as errors naming the file, never counted as lost.
    pub async fn lost_entries(&self, symbol: &Symbol) -> Result<Vec<String>> {
        let m = self.manifest(symbol).await?;
        let mut footers: HashMap<&str, Option<BTreeSet<String>>> = HashMap::new();
        let mut lost = Vec::new();
        for e in m.entries.iter().filter(|e| matches!(e.outcome, Outcome::Ok { .. })) {
            for p in &e.partitions {
                if !footers.contains_key(p.as_str()) {
                    footers.insert(p, self.footer_request_ids(&obj(p)).await?);
                }
                if !footers[p.as_str()].as_ref().is_some_and(|ids| ids.contains(&e.id)) {
                    lost.push(e.id.clone());
                    break;
                }
            }
        }
        Ok(lost)
    }
}
