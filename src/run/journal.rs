//! The journal of `twslake run`: one immutable JSON object per finished slot, in the lake
//! (`_run/journal/<YYYY-MM>/<job>@<NY date>T<HHMM>.json`), so a restarted `run` (on this machine
//! or another) knows which slots are done and never runs one twice.
//!
//! Each record is created with `PutMode::Create` under the slot's id (a file created without
//! overwriting on local disk, `If-None-Match: *` on S3), so the store itself refuses a second
//! record of one slot: of two writers, one wins. A record is written when the slot ends (done,
//! failed for good, or skipped); a job killed half-way has none and is run again on restart
//! (the jobs are idempotent on the lake: what is stored is not asked again).
//!
//! `_run/first-start.json` holds the instant of the lake's first `run`: slots that ended before
//! it are no business of `run` (a lake is filled by `setup`; `run` keeps it current).
//! `_run/` is not data: `validate` ignores it.

use super::schedule::{Job, Slot};
use crate::calendar::EXCHANGE_TZ;
use crate::error::{Error, Result};
use crate::lake::Lake;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a slot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The job ran to its end.
    Done,
    /// The job failed and its slot passed (a later slot of the job took over).
    Failed,
    /// Missed while `run` was down and not worth running any more (a later slot of the job
    /// covers it, or its session is over).
    Skipped,
}

impl Status {
    /// Its name in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

/// One finished slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The slot's id (`chain@2026-11-24T13:30`).
    pub slot: String,
    /// The job's name.
    pub job: String,
    /// The slot's start.
    pub at: DateTime<Utc>,
    /// How it ended.
    pub status: Status,
    /// When the job started (the run's clock); `None` when skipped.
    pub started: Option<DateTime<Utc>>,
    /// When the record was written (the run's clock).
    pub finished: DateTime<Utc>,
    /// Attempts made (0 when skipped).
    pub attempts: u32,
    /// What happened, in a line.
    pub detail: String,
    /// Who ran it: `<host>/<pid>/<random>`, the holder of the run lock.
    pub holder: String,
}

fn root() -> Path {
    Path::from("_run")
}

fn month_dir(at: DateTime<Utc>) -> Path {
    root().join("journal").join(at.with_timezone(&EXCHANGE_TZ).format("%Y-%m").to_string())
}

fn record_path(slot: &Slot) -> Path {
    let at = slot.at.with_timezone(&EXCHANGE_TZ);
    month_dir(slot.at).join(format!("{}@{}.json", slot.job, at.format("%Y-%m-%dT%H%M")))
}

fn json_err(path: &Path, e: serde_json::Error) -> Error {
    Error::Corrupt { path: path.to_string(), reason: format!("not a journal record: {e}") }
}

/// Creates `path` with `body` unless it exists; `false` when it did.
async fn create(lake: &Lake, path: &Path, body: Vec<u8>) -> Result<bool> {
    match lake.store().put_opts(path, PutPayload::from(body), PutOptions::from(PutMode::Create)).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(Error::storage(path, e)),
    }
}

/// The instant of the lake's first `run`, recorded as `now` if there is none yet.
pub async fn first_start(lake: &Lake, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let path = root().join("first-start.json");
    let body = serde_json::to_vec(&serde_json::json!({ "first_start": now })).map_err(|e| json_err(&path, e))?;
    create(lake, &path, body).await?;
    let bytes = lake.store().get(&path).await.map_err(|e| Error::storage(&path, e))?.bytes().await;
    let bytes = bytes.map_err(|e| Error::storage(&path, e))?;
    #[derive(Deserialize)]
    struct First {
        first_start: DateTime<Utc>,
    }
    let first: First = serde_json::from_slice(&bytes).map_err(|e| json_err(&path, e))?;
    Ok(first.first_start)
}

/// The records of the slots starting in the months of `[from, to]`, by slot id.
pub async fn load(lake: &Lake, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<BTreeMap<String, Record>> {
    let mut out = BTreeMap::new();
    let mut months: Vec<Path> = Vec::new();
    let mut at = from;
    while at <= to + chrono::Duration::days(31) {
        let m = month_dir(at);
        if !months.contains(&m) {
            months.push(m);
        }
        at += chrono::Duration::days(27);
    }
    for m in months {
        for meta in lake.list(Some(&m)).await? {
            let bytes = lake.store().get(&meta.location).await.map_err(|e| Error::storage(&meta.location, e))?;
            let bytes = bytes.bytes().await.map_err(|e| Error::storage(&meta.location, e))?;
            let r: Record = serde_json::from_slice(&bytes).map_err(|e| json_err(&meta.location, e))?;
            out.insert(r.slot.clone(), r);
        }
    }
    Ok(out)
}

/// Writes the record of `slot`; `false` when the slot already had one (nothing is changed).
pub async fn write(lake: &Lake, slot: &Slot, record: &Record) -> Result<bool> {
    let path = record_path(slot);
    let body = serde_json::to_vec_pretty(record).map_err(|e| json_err(&path, e))?;
    create(lake, &path, body).await
}

/// A record for `slot`.
pub fn record(slot: &Slot, status: Status, started: Option<DateTime<Utc>>, finished: DateTime<Utc>) -> Record {
    Record {
        slot: slot.id(),
        job: slot.job.name().to_string(),
        at: slot.at,
        status,
        started,
        finished,
        attempts: 0,
        detail: String::new(),
        holder: String::new(),
    }
}

/// The job a record is of.
pub fn job_of(r: &Record) -> Option<Job> {
    Job::of_name(&r.job)
}
