//! A symbol's manifest as loaded, and what its entries cover.

use super::entry::{Entry, SeriesKey};
use crate::domain::window::union;
use crate::domain::DateWindow;
use crate::error::Result;
use crate::lake::layout::{obj, Partition};
use crate::lake::Lake;

/// The manifest of one symbol, as loaded.
#[derive(Debug, Clone, Default)]
pub struct SymbolManifest {
    /// Every entry, deduplicated by id, ordered by request time.
    pub entries: Vec<Entry>,
    /// Pending entries whose rows turned out to be visible (counted in `entries`).
    pub pending_visible: Vec<String>,
    /// Pending entries whose rows never became visible (not counted).
    pub pending_lost: Vec<String>,
    /// Number of log files read.
    pub logs: usize,
}

impl SymbolManifest {
    /// The dates of `key` covered by final answers, as sorted disjoint windows.
    pub fn covered(&self, key: &SeriesKey) -> Vec<DateWindow> {
        let spans = self.entries.iter().filter(|e| e.request.series_key() == *key).filter_map(Entry::covered);
        union(spans.collect())
    }

    /// Every series that has at least one entry.
    pub fn series(&self) -> Vec<SeriesKey> {
        let set: std::collections::BTreeSet<SeriesKey> = self.entries.iter().map(|e| e.request.series_key()).collect();
        set.into_iter().collect()
    }
}

impl Lake {
    /// Object paths of the partitions a symbol's manifest names.
    pub fn partitions_of(m: &SymbolManifest) -> Vec<Result<Partition>> {
        let set: std::collections::BTreeSet<&String> = m.entries.iter().flat_map(|e| &e.partitions).collect();
        set.into_iter().map(|p| Partition::from_path(&obj(p))).collect()
    }
}
