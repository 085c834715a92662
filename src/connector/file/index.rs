//! The index a store keeps of its file under its write lock, so a batch
//! of new ids can be appended instead of rewriting the file (O(batch) per
//! batch rather than O(file)): the hashes of the ids in it, its length, its
//! modification time and its columns, built by one scan on the first batch
//! and kept up to date by every write of this process (a file changed by
//! anyone else is noticed by its length or time and scanned again). A batch
//! appends when no id of it can already be in the file (a hash collision
//! only sends a batch down the rewrite path, which is always correct) and,
//! for CSV, when it brings no new column.

use std::hash::BuildHasher;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};

use super::store::Store;
use super::Format;

/// What the store knows about its file, valid while the file's length and
/// modification time are the ones recorded.
pub(super) struct Index {
    pub(super) len: u64,
    pub(super) modified: Option<SystemTime>,
    /// Hashes of every id in the file (and maybe of ids deleted since).
    pub(super) ids: IdSet,
    pub(super) columns: Vec<String>,
    /// The file ends with a newline, so appended rows start on their own line.
    pub(super) clean_end: bool,
}

impl<F: Format> Store<F> {
    pub(super) fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    /// The index, built (one scan) or rebuilt when the file changed under it.
    pub(super) fn index<'g>(&self, guard: &'g mut Option<Index>) -> Result<&'g mut Index> {
        let meta = std::fs::metadata(&self.path).ok();
        let len = meta.as_ref().map_or(0, |m| m.len());
        let modified = meta.as_ref().and_then(|m| m.modified().ok());
        let fresh = guard
            .as_ref()
            .is_some_and(|ix| ix.len == len && ix.modified == modified);
        if !fresh {
            let mut hashes = Vec::new();
            for record in self.records(0)? {
                if let Some(id) = self.id_of(&record?) {
                    hashes.push(self.hash(&id));
                }
            }
            let mut ids = IdSet::default();
            ids.extend(hashes);
            let columns = if len > 0 {
                self.format.columns(&self.path)?
            } else {
                Vec::new()
            };
            *guard = Some(Index {
                len,
                modified,
                ids,
                columns,
                clean_end: ends_with_newline(&self.path, len)?,
            });
        }
        guard
            .as_mut()
            .context("the file index is missing after it was built")
    }

    /// The id `hashes`, sorted, when their records can simply be appended:
    /// the file has content ending in a newline, and the ids are new and
    /// unique.
    pub(super) fn appendable(&self, index: &Index, hashes: &[u64]) -> Option<Vec<u64>> {
        if index.len == 0 || !index.clean_end {
            return None;
        }
        let mut sorted = hashes.to_vec();
        sorted.sort_unstable();
        let unique = sorted.windows(2).all(|w| w[0] != w[1]);
        (unique && !index.ids.contains_any(&sorted)).then_some(sorted)
    }
}

/// A set of id hashes in 4 bytes per record, which matters when a bulk
/// import appends millions of records (RSS is a benchmark target). A hash
/// keeps 48 of its bits: the top 16 pick one of 65,536 buckets, the next 32
/// are stored, sorted within their bucket, in one vector (`starts` says
/// where each bucket begins). With a million ids a lookup of a new id
/// collides with probability 1 in 280 million; a collision only sends a
/// batch down the rewrite path, which is always correct.
///
/// New ids first gather in `recent` (a hash set of at most [`RECENT_IDS`]),
/// which is merged into the buckets when full: merging every batch into the
/// buckets moved the whole set each time, an eighth of a million-record
/// import's CPU.
#[derive(Default)]
pub(super) struct IdSet {
    /// `low[starts[b]..starts[b + 1]]` is bucket `b`; empty until the first id.
    starts: Vec<usize>,
    low: Vec<u32>,
    /// The 48 kept bits of ids added since the last merge. Fx hashing is
    /// enough: the keys are already hashes.
    recent: rustc_hash::FxHashSet<u64>,
}

const RECENT_IDS: usize = 1 << 16;

const ID_BUCKETS: usize = 1 << 16;

/// A hash's bucket and stored bits.
fn id_key(hash: u64) -> (usize, u32) {
    ((hash >> 48) as usize, (hash >> 16) as u32)
}

impl IdSet {
    pub(super) fn contains(&self, hash: u64) -> bool {
        self.in_buckets(hash) || self.recent.contains(&(hash >> 16))
    }

    fn in_buckets(&self, hash: u64) -> bool {
        let (b, low) = id_key(hash);
        match (self.starts.get(b), self.starts.get(b + 1)) {
            (Some(&from), Some(&to)) => self.low[from..to].binary_search(&low).is_ok(),
            _ => false,
        }
    }

    /// Whether any of `sorted` (hashes in ascending order, so the buckets
    /// are read front to back) is in the set.
    pub(super) fn contains_any(&self, sorted: &[u64]) -> bool {
        sorted.iter().any(|&h| self.contains(h))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.low.len() + self.recent.len()
    }

    pub(super) fn extend(&mut self, hashes: impl IntoIterator<Item = u64>) {
        let new: Vec<u64> = hashes.into_iter().filter(|h| !self.contains(*h)).collect();
        self.add_new(&new);
    }

    /// Add hashes none of which is in the set (they may repeat each other).
    pub(super) fn add_new(&mut self, hashes: &[u64]) {
        self.recent.extend(hashes.iter().map(|h| h >> 16));
        if self.recent.len() >= RECENT_IDS {
            self.settle();
        }
    }

    /// Merge `recent` into the buckets.
    fn settle(&mut self) {
        let mut new: Vec<(usize, u32)> = std::mem::take(&mut self.recent)
            .into_iter()
            .map(|k| id_key(k << 16))
            .collect();
        if new.is_empty() {
            return;
        }
        new.sort_unstable();
        if self.starts.is_empty() {
            self.starts = vec![0; ID_BUCKETS + 1];
        }
        // Merge from the back into the grown vector, bucket by bucket: no
        // second copy of the set is ever allocated. `w` (where the next
        // value goes) is always the old values left (`i`) plus the new ones
        // left (`j`), so nothing unread is overwritten.
        let total = self.low.len() + new.len();
        let mut old_end = self.low.len();
        self.low.resize(total, 0);
        let (mut j, mut w) = (new.len(), total);
        for b in (0..ID_BUCKETS).rev() {
            let old_start = self.starts[b];
            let mut i = old_end;
            while j > 0 && new[j - 1].0 == b {
                w -= 1;
                if i > old_start && self.low[i - 1] > new[j - 1].1 {
                    self.low[w] = self.low[i - 1];
                    i -= 1;
                } else {
                    self.low[w] = new[j - 1].1;
                    j -= 1;
                }
            }
            // The rest of the bucket moves up by the new values still to
            // place below it.
            if j > 0 {
                self.low.copy_within(old_start..i, old_start + j);
            }
            w = old_start + j;
            self.starts[b] = w;
            old_end = old_start;
            if j == 0 {
                break;
            }
        }
        self.starts[ID_BUCKETS] = total;
    }
}

/// Whether the file of length `len` ends with a newline.
pub(super) fn ends_with_newline(path: &Path, len: u64) -> Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if len == 0 {
        return Ok(false);
    }
    let mut file =
        std::fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))
        .and_then(|_| file.read_exact(&mut last))
        .with_context(|| format!("could not read {}", path.display()))?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use std::hash::RandomState;

    use super::*;

    #[test]
    fn the_id_set_merges_sorted_without_duplicates() {
        // Hashes that differ in their stored bits, across buckets.
        let h = |bucket: u64, low: u64| (bucket << 48) | (low << 16);
        let mut set = IdSet::default();
        set.extend([h(5, 1), h(1, 7), h(9, 1), h(1, 7)]);
        set.extend([]);
        set.settle();
        set.extend([h(1, 3), h(9, 1), h(0, 0), h(65535, 9)]);
        assert_eq!(set.len(), 6);
        set.settle();
        assert_eq!(set.low.len(), 6);
        for (b, l) in [(5, 1), (1, 7), (9, 1), (1, 3), (0, 0), (65535, 9)] {
            assert!(set.contains(h(b, l)), "{b}/{l} is in the set");
        }
        assert!(!set.contains(h(1, 4)) && !set.contains(h(2, 7)));
        set.extend([h(1, 5), h(1, 1), h(5, 0)]);
        set.settle();
        assert_eq!(set.low[set.starts[1]..set.starts[2]], [1, 3, 5, 7]);
        assert_eq!(set.low[set.starts[5]..set.starts[6]], [0, 1]);
        // The 16 lowest bits are not kept: they add nothing to the set.
        set.extend([h(1, 5) | 0xffff]);
        assert_eq!(set.len(), 9);
    }

    #[test]
    fn the_id_set_agrees_with_a_btree_set_over_random_batches() {
        let hasher = RandomState::new();
        let mut set = IdSet::default();
        let mut model = std::collections::BTreeSet::new();
        for batch in 0..40u64 {
            // Batches of different sizes, some ids repeated across batches.
            let hashes: Vec<u64> = (0..(batch * 37 % 500))
                .map(|i| hasher.hash_one((batch * 131 + i) % 9_000))
                .collect();
            model.extend(hashes.iter().map(|h| h >> 16));
            set.extend(hashes);
            // Some lookups find ids merged into buckets, some recent ones.
            if batch % 3 == 0 {
                set.settle();
            }
            assert_eq!(set.len(), model.len());
        }
        // Some ids only in `recent`.
        let late: Vec<u64> = (20_000..20_300).map(|n| hasher.hash_one(n)).collect();
        model.extend(late.iter().map(|h| h >> 16));
        set.extend(late);
        assert!(!set.recent.is_empty());
        for n in 0..21_000u64 {
            let h = hasher.hash_one(n);
            assert_eq!(set.contains(h), model.contains(&(h >> 16)), "id {n}");
        }
        // The sorted walk agrees with one lookup per hash.
        for from in (0..21_000u64).step_by(700) {
            let mut sorted: Vec<u64> = (from..from + 40).map(|n| hasher.hash_one(n)).collect();
            sorted.sort_unstable();
            let any = sorted.iter().any(|h| model.contains(&(h >> 16)));
            assert_eq!(set.contains_any(&sorted), any, "ids {from}..");
        }
    }
}
