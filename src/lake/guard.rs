//! What keeps writers inside the lake and the lake free of residue (local disk).
//!
//! - **Symbolic links.** A folder or file inside the lake root that is a symbolic link would let
//!   a write land outside the lake (object_store's local store follows links). Writers refuse to
//!   write through one ([`Lake::refuse_symlinks`], an error naming it); `validate` flags every
//!   link it finds ([`Lake::symlinks`]) and `validate --repair` moves the link itself (never its
//!   target) to `_quarantine/`. The lake root itself may be a link: the user chose it.
//! - **`_tmp/` residue.** A write on local disk goes through `_tmp/` and a rename; a process
//!   killed in between leaves its temporary file. A temporary file older than
//!   [`TMP_MAX_AGE`] cannot belong to a write still running (a write takes seconds), so
//!   writers delete such files once per lake handle when they settle a symbol's interrupted
//!   writes ([`Lake::recover_manifest`]), and `validate --repair` does too. The age, not the
//!   writer's start, decides: several processes may share a lake, and one's start says nothing
//!   of another's writes. The same sweep deletes the staging files (`NAME#N`, hidden from
//!   listings) that object_store's local store leaves under `_manifest/` when a manifest put is
//!   killed.

use super::{Lake, Location};
use crate::error::{Error, Result};
use chrono::Utc;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

/// Temporary files older than this are residue of killed writers.
pub const TMP_MAX_AGE: chrono::Duration = chrono::Duration::hours(1);

impl Lake {
    /// Refuses an object path (relative to the lake root) any of whose folders, or itself, is a
    /// symbolic link inside the lake root. S3 has no links: always `Ok` there.
    pub fn refuse_symlinks(&self, path: &Path) -> Result<()> {
        let Location::Local(root) = self.location() else { return Ok(()) };
        let mut at = root.clone();
        for part in path.parts() {
            at.push(part.as_ref());
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    let why = "is a symbolic link inside the lake; twslake does not write through links (the write \
                               could land outside the lake): replace it with a real folder or file";
                    return Err(Error::bad_input("lake path", at.display().to_string(), why));
                }
                Ok(_) => {}
                // Not there yet: nothing below it can be a link.
                Err(_) => return Ok(()),
            }
        }
        Ok(())
    }

    /// Every symbolic link inside a local lake (as object paths relative to the root), not
    /// followed, outside `_quarantine/`. Empty for S3.
    ///
    /// Hand-written over `std::fs` (a dozen lines) rather than adding a walking crate as a
    /// direct dependency for one loop.
    pub fn symlinks(&self) -> Result<Vec<String>> {
        let Location::Local(root) = self.location() else { return Ok(vec![]) };
        let mut out = Vec::new();
        let mut todo: Vec<PathBuf> = vec![root.clone()];
        while let Some(dir) = todo.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::Io { path: dir, source: e }),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::Io { path: dir.clone(), source: e })?;
                let kind = entry.file_type().map_err(|e| Error::Io { path: entry.path(), source: e })?;
                if kind.is_symlink() {
                    let rel = entry.path().strip_prefix(root).map(|p| p.to_path_buf()).unwrap_or(entry.path());
                    out.push(rel.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/"));
                } else if kind.is_dir() && entry.path() != root.join("_quarantine") {
                    // Links moved aside by `validate --repair` are no longer inside the lake.
                    todo.push(entry.path());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Deletes temporary files under `_tmp/` older than [`TMP_MAX_AGE`], and on local disk the
    /// staging files of manifest writes killed mid-put; returns how many.
    pub async fn sweep_tmp(&self) -> Result<usize> {
        let cutoff = Utc::now() - TMP_MAX_AGE;
        let mut n = self.sweep_staging(cutoff)?;
        for meta in self.list(Some(&Path::from("_tmp"))).await? {
            if meta.last_modified >= cutoff {
                continue;
            }
            match self.store().delete(&meta.location).await {
                Ok(()) => n += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::storage(&meta.location, e)),
            }
        }
        Ok(n)
    }

    /// object_store's local store writes a new object as `NAME#N` and then links it to `NAME`;
    /// a process killed in between leaves `NAME#N`, which its listings never show. Under
    /// `_manifest/` (the only place twslake puts objects that way) such files older than the
    /// cutoff are deleted. Hand-written over `std::fs`: object_store hides these files.
    fn sweep_staging(&self, cutoff: chrono::DateTime<Utc>) -> Result<usize> {
        let Location::Local(root) = self.location() else { return Ok(0) };
        let (mut n, mut todo) = (0, vec![root.join("_manifest")]);
        while let Some(dir) = todo.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let Ok(kind) = entry.file_type() else { continue };
                if kind.is_dir() {
                    todo.push(entry.path());
                    continue;
                }
                let staged = entry
                    .file_name()
                    .to_string_lossy()
                    .rsplit_once('#')
                    .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| chrono::DateTime::<Utc>::from(t) < cutoff);
                if kind.is_file() && staged && old {
                    match std::fs::remove_file(entry.path()) {
                        Ok(()) => n += 1,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::Io { path: entry.path(), source: e }),
                    }
                }
            }
        }
        Ok(n)
    }

    /// [`Lake::sweep_tmp`] once per lake handle (and its clones); a failure is only logged.
    pub(crate) async fn sweep_tmp_once(&self) {
        if self.tmp_swept.swap(true, Ordering::SeqCst) {
            return;
        }
        match self.sweep_tmp().await {
            Ok(0) => {}
            Ok(n) => tracing::info!("deleted {n} temporary files left under _tmp/ by interrupted writes"),
            Err(e) => tracing::warn!("could not sweep _tmp/: {e}"),
        }
    }
}
