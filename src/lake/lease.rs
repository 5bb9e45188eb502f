//! Per-symbol job leases: two processes on one lake do not ingest the same symbol at once, so
//! they never take the same chain snapshot or ask the same window twice.
//!
//! A lease is a chain of small objects `_locks/leases/symbol=<SYM>/<generation>.json`, each
//! created once with `PutMode::Create` (a file created without overwriting on local disk,
//! `If-None-Match: *` on S3), so it works wherever the manifest does. The newest generation says
//! who holds the lease and until when. Every change of hands is the creation of the next
//! generation: to take a free, released or stale lease, to renew one's own, to release it. Of
//! two processes that read generation N and both create N+1, one wins; the other reads again.
//! Decided so rather than by overwriting one object: the local store cannot overwrite
//! conditionally, and delete-then-create lets a slow taker delete the lease a faster one just
//! took. The taker of generation N+1 deletes the older ones, so a symbol keeps one or two small
//! objects. `_locks/` is not data: `validate` and the readers skip it.
//!
//! A lease is stale when its expiry has passed (the holder renews it every third of its time to
//! live while it works), or at once when its holder ran on this machine and its process is gone
//! (read from `/proc`, where there is one; elsewhere the expiry alone decides), so a killed
//! `setup` does not hold the next run back for a whole time to live.

use super::layout::obj;
use super::Lake;
use crate::domain::Symbol;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What one generation of a lease says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseState {
    /// Who holds it: `<host>/<pid>/<random>`, unique per holder.
    pub holder: String,
    /// The holder's machine.
    pub host: String,
    /// The holder's process id.
    pub pid: u32,
    /// Until when, unless renewed.
    pub expires: DateTime<Utc>,
    /// Given back: free for anyone.
    pub released: bool,
}

/// A lease held by another process: who, and until when at the latest unless renewed.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// The holder (`<host>/<pid>/<random>`).
    pub holder: String,
    /// Its expiry.
    pub expires: DateTime<Utc>,
}

/// A lease this process holds; renewed in the background until [`Lease::release`] (or drop,
/// after which it expires).
#[derive(Debug)]
pub struct Lease {
    lake: Lake,
    dir: Path,
    holder: String,
    generation: Arc<AtomicU64>,
    lost: Arc<AtomicBool>,
    renewal: tokio::task::JoinHandle<()>,
}

fn this_host() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

/// Whether process `pid` of this machine is known to be gone (only where `/proc` tells).
fn process_gone(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    proc.join("self").exists() && !proc.join(pid.to_string()).exists()
}

fn lease_dir(symbol: &Symbol) -> Path {
    obj(&format!("_locks/leases/symbol={}", symbol.encoded()))
}

fn generation_path(dir: &Path, generation: u64) -> Path {
    dir.clone().join(format!("{generation:020}.json"))
}

fn state(holder: &str, ttl: Duration, released: bool) -> LeaseState {
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
    LeaseState {
        holder: holder.to_string(),
        host: this_host(),
        pid: std::process::id(),
        expires: Utc::now() + ttl,
        released,
    }
}

impl Lake {
    /// The newest generation of `dir`'s lease and what it says (`None` state: unreadable,
    /// treated as stale), or `None` when there is none.
    async fn newest_lease(&self, dir: &Path) -> Result<Option<(u64, Vec<u64>, Option<LeaseState>)>> {
        let mut generations: Vec<u64> = self
            .list(Some(dir))
            .await?
            .iter()
            .filter_map(|m| m.location.filename()?.strip_suffix(".json")?.parse().ok())
            .collect();
        generations.sort_unstable();
        let Some(&newest) = generations.last() else { return Ok(None) };
        let path = generation_path(dir, newest);
        match self.get_opt(&path).await? {
            Some((bytes, _, _)) => Ok(Some((newest, generations, serde_json::from_slice(&bytes).ok()))),
            // Deleted between the listing and the read: a newer one exists; the caller reads again.
            None => Err(Error::storage(
                &path,
                object_store::Error::NotFound { path: path.to_string(), source: "gone".into() },
            )),
        }
    }

    /// Creates generation `n` of `dir`'s lease; `false` when another process created it first.
    async fn create_generation(&self, dir: &Path, n: u64, s: &LeaseState) -> Result<bool> {
        let path = generation_path(dir, n);
        let body = serde_json::to_vec(s).map_err(|e| Error::Io { path: path.to_string().into(), source: e.into() })?;
        match self.store().put_opts(&path, PutPayload::from(body), PutOptions::from(PutMode::Create)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(Error::storage(&path, e)),
        }
    }

    /// Deletes the generations of `dir` older than `keep` (best effort: a leftover is harmless).
    async fn drop_older(&self, dir: &Path, older: &[u64], keep: u64) {
        for &g in older.iter().filter(|g| **g < keep) {
            let _ = self.store().delete(&generation_path(dir, g)).await;
        }
    }

    /// Takes the lease of `symbol` for `ttl` (renewed every `ttl / 3` while held) if it is free,
    /// released or stale; else says who holds it.
    pub async fn try_lease(&self, symbol: &Symbol, ttl: Duration) -> Result<std::result::Result<Lease, Held>> {
        self.try_lease_in(lease_dir(symbol), ttl).await
    }

    /// Takes the lake-wide lease `name` (`_locks/<name>/`), as [`Lake::try_lease`] takes a
    /// symbol's: one `twslake run` per lake holds `run`.
    pub async fn try_lock(&self, name: &str, ttl: Duration) -> Result<std::result::Result<Lease, Held>> {
        self.try_lease_in(obj(&format!("_locks/{name}")), ttl).await
    }

    async fn try_lease_in(&self, dir: Path, ttl: Duration) -> Result<std::result::Result<Lease, Held>> {
        let holder = format!("{}/{}/{}", this_host(), std::process::id(), uuid::Uuid::new_v4().simple());
        let mut last_err = None;
        for _ in 0..16 {
            let newest = match self.newest_lease(&dir).await {
                Ok(n) => n,
                Err(e) => {
                    last_err = Some(e);
                    continue;
                }
            };
            let (next, older) = match newest {
                None => (0, vec![]),
                Some((n, older, Some(s))) => {
                    let stale = s.released
                        || s.expires <= Utc::now()
                        || (s.host == this_host() && s.pid != std::process::id() && process_gone(s.pid));
                    if !stale {
                        return Ok(Err(Held { holder: s.holder, expires: s.expires }));
                    }
                    (n + 1, older)
                }
                Some((n, older, None)) => (n + 1, older),
            };
            if self.create_generation(&dir, next, &state(&holder, ttl, false)).await? {
                self.drop_older(&dir, &older, next).await;
                return Ok(Ok(Lease::start(self.clone(), dir, holder, next, ttl)));
            }
        }
        Err(last_err.unwrap_or_else(|| {
            let path = dir.to_string();
            Error::storage(
                &path,
                object_store::Error::Generic {
                    store: "lease",
                    source: "the lease changed hands 16 times while being taken".into(),
                },
            )
        }))
    }
}

impl Lease {
    fn start(lake: Lake, dir: Path, holder: String, generation: u64, ttl: Duration) -> Lease {
        let generation = Arc::new(AtomicU64::new(generation));
        let lost = Arc::new(AtomicBool::new(false));
        let (l, d, h, g, x) = (lake.clone(), dir.clone(), holder.clone(), generation.clone(), lost.clone());
        let renewal = tokio::spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                let n = g.load(Ordering::SeqCst);
                match l.create_generation(&d, n + 1, &state(&h, ttl, false)).await {
                    Ok(true) => {
                        g.store(n + 1, Ordering::SeqCst);
                        l.drop_older(&d, &[n], n + 1).await;
                    }
                    Ok(false) => {
                        tracing::warn!("the lease {d} was taken over by another process: it went stale while held");
                        x.store(true, Ordering::SeqCst);
                        return;
                    }
                    // A storage hiccup: try again at the next period (the lease lives 3 of them).
                    Err(e) => tracing::warn!("renewing the lease {d}: {e}"),
                }
            }
        });
        Lease { lake, dir, holder, generation, lost, renewal }
    }

    /// Who holds it (this process): `<host>/<pid>/<random>`.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Whether another process took it over (it went stale while held: renewals failed).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Gives the lease back: the next generation says "released", free for anyone at once.
    pub async fn release(mut self) -> Result<()> {
        self.renewal.abort();
        let _ = (&mut self.renewal).await;
        if self.lost() {
            return Ok(());
        }
        let n = self.generation.load(Ordering::SeqCst);
        let released = state(&self.holder, Duration::ZERO, true);
        if self.lake.create_generation(&self.dir, n + 1, &released).await? {
            self.lake.drop_older(&self.dir, &[n], n + 1).await;
        }
        Ok(())
    }
}

impl Lease {
    /// Gives the lease back and deletes every generation of it, leaving nothing behind: for a
    /// symbol that turned out not to exist (a bad input writes nothing). Two processes doing this
    /// at once with a third taking the lease could both believe they hold it: harmless for a
    /// symbol nobody can ingest, which is why [`Lease::release`] keeps a generation otherwise.
    pub async fn forget(mut self) -> Result<()> {
        self.renewal.abort();
        let _ = (&mut self.renewal).await;
        for meta in self.lake.list(Some(&self.dir)).await? {
            let _ = self.lake.store().delete(&meta.location).await;
        }
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Not released: it expires after its time to live.
        self.renewal.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lake() -> (tempfile::TempDir, Lake) {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&dir.path().join("lake").display().to_string()).unwrap();
        (dir, lake)
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_release_frees_it() {
        let (_d, lake) = lake();
        let spy = Symbol::new("SPY").unwrap();
        let ttl = Duration::from_secs(30);
        let a = lake.try_lease(&spy, ttl).await.unwrap().expect("free");
        let held = lake.try_lease(&spy, ttl).await.unwrap().expect_err("held");
        assert_eq!(held.holder, a.holder());
        assert!(lake.try_lease(&Symbol::new("QQQ").unwrap(), ttl).await.unwrap().is_ok(), "another symbol");
        a.release().await.unwrap();
        let b = lake.try_lease(&spy, ttl).await.unwrap().expect("released");
        let objects = lake.list(Some(&lease_dir(&spy))).await.unwrap();
        assert!(objects.len() <= 2, "older generations are deleted: {objects:?}");
        drop(b);
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_and_renewal_keeps_one_alive() {
        let (_d, lake) = lake();
        let spy = Symbol::new("SPY").unwrap();
        let dir = lease_dir(&spy);
        // A holder on another machine that stopped renewing.
        let mut dead = state("elsewhere/1/x", Duration::ZERO, false);
        dead.host = "elsewhere".into();
        assert!(lake.create_generation(&dir, 0, &dead).await.unwrap());
        let a = lake.try_lease(&spy, Duration::from_millis(300)).await.unwrap().expect("stale");
        // Renewed every 100 ms: still held after three times its time to live.
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(!a.lost());
        assert!(lake.try_lease(&spy, Duration::from_secs(1)).await.unwrap().is_err(), "renewed");
        drop(a);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(lake.try_lease(&spy, Duration::from_secs(1)).await.unwrap().is_ok(), "dropped: expired");
    }

    #[tokio::test]
    async fn a_gone_process_of_this_machine_holds_nothing_and_garbage_is_stale() {
        let (_d, lake) = lake();
        let spy = Symbol::new("SPY").unwrap();
        let dir = lease_dir(&spy);
        let mut gone = state("here/4000000/x", Duration::from_secs(3600), false);
        gone.pid = 4_000_000; // above Linux's pid_max
        assert!(lake.create_generation(&dir, 0, &gone).await.unwrap());
        let taken = lake.try_lease(&spy, Duration::from_secs(30)).await.unwrap();
        assert_eq!(taken.is_ok(), std::path::Path::new("/proc/self").exists());
        drop(taken);
        let qqq = Symbol::new("QQQ").unwrap();
        lake.store().put(&generation_path(&lease_dir(&qqq), 3), PutPayload::from_static(b"{not json")).await.unwrap();
        assert!(lake.try_lease(&qqq, Duration::from_secs(30)).await.unwrap().is_ok(), "unreadable: stale");
    }
}
