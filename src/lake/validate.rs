//! `twslake validate`: every file checked against the layout, the schemas and the manifest.

use super::layout::obj;
use super::layout::DataObject;
use super::parquet_io::{decode, merge};
use super::Lake;
use crate::error::{Error, Result};
use futures::{stream, StreamExt};
use object_store::{ObjectMeta, ObjectStoreExt};
use serde::Serialize;

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
    Problem { kind, path: path.to_string(), detail: detail.to_string() }
}

impl Lake {
    async fn check_partition(&self, meta: ObjectMeta) -> (usize, Vec<Problem>) {
        let path = meta.location;
        // A micro-batch is checked like a partition file; rows it shares with its partition's
        // file (a compaction interrupted before its deletes) are expected, and readers merge them.
        let part = match DataObject::from_path(&path) {
            Ok(o) => o.partition().clone(),
            Err(e) => return (0, vec![problem(ProblemKind::Foreign, &path, format!("{e}; move it out of the lake"))]),
        };
        let bytes = match self.store().get(&path).await {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        let data =
            match bytes.map_err(|e| Error::storage(&path, e)).and_then(|b| decode(part.dataset, path.as_ref(), b)) {
                Ok(d) => d,
                Err(e) => return (0, vec![problem(ProblemKind::Corrupt, &path, e)]),
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
        (rows, out)
    }

    /// Checks every file and every manifest entry; never changes anything.
    pub async fn validate(&self) -> Result<Report> {
        let mut report = Report::default();
        let mut data_files = Vec::new();
        for meta in self.list(None).await? {
            let top = meta.location.parts().next().map(|p| p.as_ref().to_string()).unwrap_or_default();
            match top.as_str() {
                "_locks" => {}
                "_tmp" => report.leftover_temp_files += 1,
                "_manifest" => {}
                _ => {
                    if matches!(DataObject::from_path(&meta.location), Ok(DataObject::MicroBatch(_))) {
                        report.micro_batches += 1;
                    }
                    data_files.push(meta)
                }
            }
        }
        report.partitions = data_files.len();
        let results: Vec<(usize, Vec<Problem>)> =
            stream::iter(data_files.into_iter().map(|m| self.check_partition(m))).buffer_unordered(4).collect().await;
        for (rows, problems) in results {
            report.rows += rows;
            report.problems.extend(problems);
        }
        self.validate_manifests(&mut report).await?;
        report.partitions -= report.problems.iter().filter(|p| p.kind == ProblemKind::Foreign).count();
        Ok(report)
    }

    async fn validate_manifests(&self, report: &mut Report) -> Result<()> {
        for symbol in self.manifest_symbols().await? {
            let m = match self.manifest(&symbol).await {
                Ok(m) => m,
                Err(e @ Error::Corrupt { .. }) => {
                    report.problems.push(problem(
                        ProblemKind::Corrupt,
                        format!("_manifest/symbol={}", symbol.encoded()),
                        e,
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            report.entries += m.entries.len();
            report.abandoned_pending += m.pending_lost.len();
            for e in &m.entries {
                for p in &e.partitions {
                    match self.footer_request_ids(&obj(p)).await {
                        Ok(Some(ids)) if ids.contains(&e.id) => {}
                        Ok(Some(_)) => report.problems.push(problem(
                            ProblemKind::MissingPartition,
                            p,
                            format!(
                                "manifest entry {} is not in this partition; the file was replaced outside twslake",
                                e.id
                            ),
                        )),
                        Ok(None) => report.problems.push(problem(
                            ProblemKind::MissingPartition,
                            p,
                            format!("manifest entry {} names this partition but it does not exist", e.id),
                        )),
                        Err(err) => report.problems.push(problem(ProblemKind::Corrupt, p, err)),
                    }
                }
            }
        }
        Ok(())
    }
}
