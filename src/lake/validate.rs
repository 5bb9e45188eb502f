//! `twslake validate`: every file checked against the layout, the schemas and the manifest.

use super::layout::obj;
use super::layout::DataObject;
use super::parquet_io::{decode, merge};
use super::Lake;
use crate::error::{Error, Result};
use futures::{stream, StreamExt};
use object_store::{ObjectMeta, ObjectStoreExt};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// The kind of a problem found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A file that has no place in the layout.
    Foreign,
    /// A file that cannot be read as what its place says.
    Corrupt,
    /// Two rows with one primary key in a partition.
    DuplicateKeys,
    /// Bars with high < low, negative or NaN prices; rows outside their partition's period.
    BadRows,
    /// A manifest entry naming a partition that does not exist or does not hold its rows.
    MissingPartition,
    /// A symbolic link inside a local lake: writers refuse to write through it.
    Symlink,
}

/// One problem.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// The object path inside the lake.
    pub path: String,
    /// What is wrong, and what to do.
    pub detail: String,
    /// The manifest entry concerned (`MissingPartition`), which `--repair` revokes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
}

/// The result of a validation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Data files read: partition files and live capture's micro-batches.
    pub partitions: usize,
    /// Of those, micro-batches not compacted yet (`twslake compact` folds them in).
    pub micro_batches: usize,
    /// Rows read.
    pub rows: usize,
    /// Manifest entries checked.
    pub entries: usize,
    /// Temporary files left by interrupted writes (harmless; never read).
    pub leftover_temp_files: usize,
    /// Pending manifest entries whose rows never became visible (harmless; asked again).
    pub abandoned_pending: usize,
    /// Files moved aside by `validate --repair` (under `_quarantine/`; never read).
    pub quarantined: usize,
    /// Everything wrong.
    pub problems: Vec<Problem>,
}

impl Report {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn problem(kind: ProblemKind, path: impl ToString, detail: impl ToString) -> Problem {
    Problem { kind, path: path.to_string(), detail: detail.to_string(), entry: None }
}

impl Lake {
    /// Checks one data file; `None` when it was deleted since it was listed (a compacted
    /// micro-batch): one `get` reads one version, so a file replaced meanwhile reads whole.
    async fn check_partition(&self, meta: ObjectMeta) -> Option<(usize, Vec<Problem>)> {
        let path = meta.location;
        // A micro-batch is checked like a partition file; rows it shares with its partition's
        // file (a compaction interrupted before its deletes) are expected, and readers merge them.
        let part = match DataObject::from_path(&path) {
            Ok(o) => o.partition().clone(),
            Err(e) => {
                let detail =
                    format!("{e}; move it out of the lake (`twslake validate --repair` moves it to _quarantine/)");
                return Some((0, vec![problem(ProblemKind::Foreign, &path, detail)]));
            }
        };
        let bytes = match self.store().get(&path).await {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        let bytes = match bytes {
            Err(object_store::Error::NotFound { .. }) => return None,
            other => other,
        };
        let data =
            match bytes.map_err(|e| Error::storage(&path, e)).and_then(|b| decode(part.dataset, path.as_ref(), b)) {
                Ok(d) => d,
                Err(e) => return Some((0, vec![problem(ProblemKind::Corrupt, &path, e)])),
            };
        let rows = data.batch.num_rows();
        let mut out = Vec::new();
        match merge(part.dataset, std::slice::from_ref(&data.batch)) {
            Ok(m) if m.num_rows() != rows => {
                let detail =
                    format!("{} rows share a primary key {:?}", rows - m.num_rows(), part.dataset.primary_key());
                out.push(problem(ProblemKind::DuplicateKeys, &path, detail));
            }
            Ok(_) => {}
            Err(e) => out.push(problem(ProblemKind::Corrupt, &path, e)),
        }
        if let Err(e) = part.dataset.check_rows(&data.batch) {
            out.push(problem(ProblemKind::BadRows, &path, e));
        }
        if let Some(bad) = crate::lake::write::split(part.dataset, &part.symbol, &data.batch)
            .map(|groups| groups.into_keys().find(|p| *p != part))
            .unwrap_or(None)
        {
            out.push(problem(ProblemKind::BadRows, &path, format!("holds rows of {bad}")));
        }
        Some((rows, out))
    }

    /// Checks every file and every manifest entry; never changes anything.
    pub async fn validate(&self) -> Result<Report> {
        let mut report = Report::default();
        let mut data_files = Vec::new();
        for meta in self.list(None).await? {
            let top = meta.location.parts().next().map(|p| p.as_ref().to_string()).unwrap_or_default();
            match top.as_str() {
                "_locks" | "_run" => {}
                "_tmp" => report.leftover_temp_files += 1,
                "_quarantine" => report.quarantined += 1,
                "_manifest" => {}
                _ => {
                    if matches!(DataObject::from_path(&meta.location), Ok(DataObject::MicroBatch(_))) {
                        report.micro_batches += 1;
                    }
                    data_files.push(meta)
                }
            }
        }
        let results: Vec<Option<(usize, Vec<Problem>)>> =
            stream::iter(data_files.into_iter().map(|m| self.check_partition(m))).buffer_unordered(4).collect().await;
        for (rows, problems) in results.into_iter().flatten() {
            report.partitions += 1;
            report.rows += rows;
            report.problems.extend(problems);
        }
        self.validate_manifests(&mut report).await?;
        for link in self.symlinks()? {
            let detail = "a symbolic link inside the lake: writers refuse to write through it; replace it with a real \
                          folder or file (`twslake validate --repair` moves the link, not its target, to _quarantine/)";
            report.problems.push(problem(ProblemKind::Symlink, link, detail));
        }
        report.partitions -= report.problems.iter().filter(|p| p.kind == ProblemKind::Foreign).count();
        Ok(report)
    }

    async fn validate_manifests(&self, report: &mut Report) -> Result<()> {
        for symbol in self.manifest_symbols().await? {
            let m = match self.manifest(&symbol).await {
                Ok(m) => m,
                Err(Error::Corrupt { path, reason }) => {
                    report.problems.push(problem(ProblemKind::Corrupt, path, reason));
                    continue;
                }
                Err(e) => return Err(e),
            };
            report.entries += m.entries.len();
            report.abandoned_pending += m.pending_lost.len();
            // One footer read per partition (ids are only ever added to a footer, so a read
            // after the manifest's load holds every id the load can name). A damaged file
            // (`None` here) is reported once, by the check of data files; a storage failure is
            // no verdict on the lake: the validation fails.
            let mut footers: HashMap<&str, Option<Option<BTreeSet<String>>>> = HashMap::new();
            for e in &m.entries {
                for p in &e.partitions {
                    if !footers.contains_key(p.as_str()) {
                        let read = match self.footer_request_ids(&obj(p)).await {
                            Ok(ids) => Some(ids),
                            Err(Error::Corrupt { .. }) => None,
                            Err(err) => return Err(err),
                        };
                        footers.insert(p, read);
                    }
                    let what = match &footers[p.as_str()] {
                        None => continue,
                        Some(Some(ids)) if ids.contains(&e.id) => continue,
                        Some(Some(_)) => "is not in this partition; the file was replaced outside twslake",
                        Some(None) => "names this partition but it does not exist",
                    };
                    let detail = format!(
                        "manifest entry {} {what}; `twslake validate --repair` revokes the entry so the next \
                         `update` fetches its window again",
                        e.id
                    );
                    let mut pb = problem(ProblemKind::MissingPartition, p, detail);
                    pb.entry = Some(e.id.clone());
                    report.problems.push(pb);
                }
            }
        }
        Ok(())
    }
}
