//! The lake's scope: per symbol, what it is asked to hold (the settings `setup` was given, and
//! every later change), kept in the lake itself so that `update`, `live` and `run` act on what
//! the lake was set up for rather than on defaults.
//!
//! Records live beside the symbol's manifest, `_manifest/symbol=<SYM>/scope-<seq>.json`
//! (`<seq>` ten digits from 1), one immutable pretty-printed JSON file per change
//! (`lake-layout/scope.schema.json`). Each holds the whole scope after the change, the change
//! itself (key, old value, new value), who made it, when and through which command. The record
//! with the highest sequence number is the scope; the others are its history.
//!
//! Why sequence-claimed names rather than the manifest logs' content-hash names: a change is an
//! edit of the latest scope, so two concurrent edits must be ordered, not merely both kept. A
//! writer reads the latest record (sequence n), applies its edit and creates `scope-<n+1>.json`
//! with `PutMode::Create` (a conditional PUT on S3); when another writer took n+1 first, it reads
//! again and applies its edit to that record. No change is lost (each is applied to the scope
//! that holds all earlier ones, and each record's old values are the ones it replaced), no
//! record is overwritten, and a reader never sees a torn one. The manifest's compaction never
//! touches these files (it folds `log-…` files only) and `validate` reads them as part of the
//! manifest folder.
//!
//! The record's body (`scope`) is plain JSON here; its keys and values are typed and checked by
//! `jobs::scope`, the floor that knows what an ingest run asks for.

use super::layout::obj;
use super::read::damaged;
use super::Lake;
use crate::domain::Symbol;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

/// The `format` field of every scope record.
pub const FORMAT: &str = "twslake.scope/1";

/// How many times a writer reads again after losing a sequence number to another writer.
const ATTEMPTS: usize = 200;

/// One changed key of a scope record: its value before and after (`null`: not set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// The scope key (`equity`, `from`, `expiry_days`, …).
    pub key: String,
    /// The value it replaced (`null` for the first record of a symbol).
    pub old: serde_json::Value,
    /// The value it holds now (`null`: unset).
    pub new: serde_json::Value,
}

/// One scope record: the scope after one change, and the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeRecord {
    /// Always [`FORMAT`].
    pub format: String,
    /// The symbol, as IB spells it.
    pub symbol: String,
    /// The record's sequence number (1 for the first), as in its file name.
    pub seq: u64,
    /// When the change was made (wall clock, UTC).
    pub at: DateTime<Utc>,
    /// Who made it: `TWSLAKE_ACTOR`, else `user@host` from the environment.
    pub actor: String,
    /// The command line that made it (`twslake setup SPY --from 2026-11-18`).
    pub command: String,
    /// What changed.
    pub changes: Vec<Change>,
    /// The whole scope after the change (keys as in `lake-layout/scope.schema.json`).
    pub scope: serde_json::Value,
}

/// Who is changing the scope: `TWSLAKE_ACTOR` when set, else `$USER@<host name>`.
pub fn actor() -> String {
    if let Some(a) = std::env::var("TWSLAKE_ACTOR").ok().filter(|a| !a.trim().is_empty()) {
        return a.trim().to_string();
    }
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into());
    format!("{user}@{host}")
}

fn scope_dir(symbol: &Symbol) -> Path {
    obj(&format!("_manifest/symbol={}", symbol.encoded()))
}

/// The sequence number of a scope record's file name, `scope-<seq>.json`.
fn seq_of(path: &Path) -> Option<u64> {
    path.filename()?.strip_prefix("scope-")?.strip_suffix(".json")?.parse().ok()
}

impl Lake {
    /// The sequence numbers and paths of a symbol's scope records, oldest first.
    async fn scope_files(&self, symbol: &Symbol) -> Result<Vec<(u64, Path)>> {
        let mut out: Vec<(u64, Path)> = self
            .list(Some(&scope_dir(symbol)))
            .await?
            .into_iter()
            .filter_map(|m| Some((seq_of(&m.location)?, m.location)))
            .collect();
        out.sort_by_key(|(s, _)| *s);
        Ok(out)
    }

    async fn read_scope_file(&self, seq: u64, path: &Path) -> Result<ScopeRecord> {
        let bytes = self.store().get(path).await.map_err(|e| Error::storage(path, e))?.bytes().await;
        let bytes = bytes.map_err(|e| Error::storage(path, e))?;
        let r: ScopeRecord =
            serde_json::from_slice(&bytes).map_err(|e| damaged(path.as_ref(), format!("not a scope record: {e}")))?;
        if r.format != FORMAT {
            return Err(damaged(path.as_ref(), format!("format {:?}, expected {FORMAT:?}", r.format)));
        }
        if r.seq != seq {
            return Err(damaged(path.as_ref(), format!("holds sequence number {}, its name says {seq}", r.seq)));
        }
        Ok(r)
    }

    /// Every scope record of `symbol`, oldest first: the scope's change log.
    pub async fn scope_history(&self, symbol: &Symbol) -> Result<Vec<ScopeRecord>> {
        let mut out = Vec::new();
        for (seq, path) in self.scope_files(symbol).await? {
            out.push(self.read_scope_file(seq, &path).await?);
        }
        Ok(out)
    }

    /// The latest scope record of `symbol` (its scope), or `None` when it has none (a symbol of
    /// a lake set up before scopes were stored, or never set up).
    pub async fn latest_scope(&self, symbol: &Symbol) -> Result<Option<ScopeRecord>> {
        match self.scope_files(symbol).await?.pop() {
            Some((seq, path)) => self.read_scope_file(seq, &path).await.map(Some),
            None => Ok(None),
        }
    }

    /// Every symbol with a stored scope, sorted.
    pub async fn scoped_symbols(&self) -> Result<Vec<Symbol>> {
        let mut out = Vec::new();
        for symbol in self.manifest_symbols().await? {
            if !self.scope_files(&symbol).await?.is_empty() {
                out.push(symbol);
            }
        }
        Ok(out)
    }

    /// Changes the scope of `symbol`: `edit` gets the latest record (`None` when there is none)
    /// and returns the changes and the whole new scope, or `None` when nothing changes. The
    /// record is created under the next sequence number; when another writer took it first,
    /// `edit` is called again on that writer's record. Returns the record written, or `None`
    /// when `edit` changed nothing. An error of `edit` writes nothing.
    pub async fn change_scope<F>(
        &self,
        symbol: &Symbol,
        actor: &str,
        command: &str,
        mut edit: F,
    ) -> Result<Option<ScopeRecord>>
    where
        F: FnMut(Option<&ScopeRecord>) -> Result<Option<(Vec<Change>, serde_json::Value)>>,
    {
        for attempt in 0..ATTEMPTS {
            let latest = self.latest_scope(symbol).await?;
            let Some((changes, scope)) = edit(latest.as_ref())? else { return Ok(None) };
            let seq = latest.as_ref().map_or(1, |r| r.seq + 1);
            let record = ScopeRecord {
                format: FORMAT.into(),
                symbol: symbol.as_str().to_string(),
                seq,
                at: Utc::now(),
                actor: actor.to_string(),
                command: command.to_string(),
                changes,
                scope,
            };
            let path = scope_dir(symbol).clone().join(format!("scope-{seq:010}.json").as_str());
            self.refuse_symlinks(&path)?;
            let bytes = serde_json::to_vec_pretty(&record).expect("a scope record serializes");
            let put = self.store().put_opts(&path, PutPayload::from(bytes), PutOptions::from(PutMode::Create)).await;
            match put {
                Ok(_) => return Ok(Some(record)),
                Err(object_store::Error::AlreadyExists { .. }) => {
                    // Another writer took this number: read its record, edit again. A short
                    // random pause keeps a crowd of writers from colliding in lockstep.
                    let pause = rand::random_range(1..=(5 + 5 * attempt as u64).min(100));
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                Err(e) => return Err(Error::storage(&path, e)),
            }
        }
        Err(Error::bad_input(
            "scope change",
            symbol.as_str(),
            format!("{ATTEMPTS} other writers changed this scope meanwhile; try again"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_changes_are_all_kept_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&dir.path().join("lake").display().to_string()).unwrap();
        let spy = Symbol::new("SPY").unwrap();
        assert!(lake.latest_scope(&spy).await.unwrap().is_none());
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (lake, spy) = (lake.clone(), spy.clone());
            tasks.push(tokio::spawn(async move {
                lake.change_scope(&spy, "t@h", "test", |latest| {
                    let mut scope = latest.map_or(json!({}), |r| r.scope.clone());
                    scope[format!("k{i}")] = json!(i);
                    let change = Change { key: format!("k{i}"), old: json!(null), new: json!(i) };
                    Ok(Some((vec![change], scope)))
                })
                .await
                .unwrap()
                .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let history = lake.scope_history(&spy).await.unwrap();
        assert_eq!(history.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
        let last = lake.latest_scope(&spy).await.unwrap().unwrap();
        for i in 0..8 {
            assert_eq!(last.scope[format!("k{i}")], json!(i), "change {i} kept: {}", last.scope);
        }
        // Nothing to change: nothing written.
        assert!(lake.change_scope(&spy, "t@h", "test", |_| Ok(None)).await.unwrap().is_none());
        assert_eq!(lake.scope_history(&spy).await.unwrap().len(), 8);
        assert_eq!(lake.scoped_symbols().await.unwrap(), vec![spy.clone()]);
        // The manifest of the symbol ignores the records.
        assert!(lake.manifest(&spy).await.unwrap().entries.is_empty());
    }

    #[tokio::test]
    async fn a_damaged_record_is_an_error_naming_its_file_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&dir.path().join("lake").display().to_string()).unwrap();
        let qqq = Symbol::new("QQQ").unwrap();
        let folder = dir.path().join("lake/_manifest/symbol=QQQ");
        std::fs::create_dir_all(&folder).unwrap();
        let torn = b"{\"format\": \"twslake.scope/1\"";
        std::fs::write(folder.join("scope-0000000001.json"), torn).unwrap();
        let err = lake.latest_scope(&qqq).await.unwrap_err().to_string();
        assert!(err.contains("scope-0000000001.json"), "{err}");
        let change = lake.change_scope(&qqq, "t@h", "test", |_| Ok(Some((vec![], json!({}))))).await;
        assert!(change.is_err(), "no change on top of a record that does not read");
        assert_eq!(std::fs::read(folder.join("scope-0000000001.json")).unwrap(), torn, "left as it was");
    }
}
