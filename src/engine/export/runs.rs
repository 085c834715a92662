//! Sorted runs on disk and their k-way merge: how the first pass of an
//! export joins its input with itself (a profile listed twice, two profiles
//! with one key) and with the export state, in order, without a random
//! lookup per profile and with memory bounded by one run whatever the
//! input's size. A [`Mark`] is a profile as the joins need it; a run is up
//! to [`RUN_MARKS`] marks sorted by (key, position) in a file of the run's
//! scratch folder; [`Merge`] yields the marks of several runs in that
//! order, holding one mark and one read buffer per run.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Marks a run holds before it is sorted and written: with their text
/// (below) a few MiB, so a run's memory is the same at 100,000 profiles as
/// at 10 million; 10 million profiles make about 150 runs.
const RUN_MARKS: usize = 1 << 16;
/// Bytes of keys and ids a run holds before it is written, whatever their
/// count (long ids fill it first).
const RUN_TEXT: usize = 4 << 20;
/// The read buffer of each run during a merge.
const READ_BUFFER: usize = 32 << 10;

/// One profile as the first pass's joins see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// What the run is sorted by: the profile id, or its destination key.
    pub key: String,
    /// The profile's place in the input (0 for the first entry).
    pub pos: u64,
    /// What the first pass noted of the profile (its `FLAG_` bits).
    pub flags: u8,
    /// The hash of what the profile would send (`state::hash_of`).
    pub hash: u128,
    /// The profile id, in a mark sorted by key (empty otherwise).
    pub id: String,
}

/// A mark while its run is in memory: its texts are ranges of one buffer.
struct Slot {
    key: Range<usize>,
    id: Range<usize>,
    pos: u64,
    flags: u8,
    hash: u128,
}

/// Marks gathered into sorted runs, written to `dir` as they fill.
pub struct Runs {
    dir: PathBuf,
    name: &'static str,
    files: Vec<PathBuf>,
    text: Vec<u8>,
    slots: Vec<Slot>,
}

impl Runs {
    /// Runs written as `dir/{name}-N.run`.
    pub fn new(dir: &Path, name: &'static str) -> Runs {
        Runs {
            dir: dir.to_path_buf(),
            name,
            files: Vec::new(),
            text: Vec::new(),
            slots: Vec::new(),
        }
    }

    /// Add one mark.
    pub fn push(&mut self, key: &str, id: &str, pos: u64, flags: u8, hash: u128) -> Result<()> {
        if self.slots.len() >= RUN_MARKS || self.text.len() >= RUN_TEXT {
            self.flush()?;
        }
        let key = self.store(key);
        let id = self.store(id);
        self.slots.push(Slot {
            key,
            id,
            pos,
            flags,
            hash,
        });
        Ok(())
    }

    fn store(&mut self, s: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.extend_from_slice(s.as_bytes());
        start..self.text.len()
    }

    /// Sort the marks in memory and write them out as one run.
    fn flush(&mut self) -> Result<()> {
        if self.slots.is_empty() {
            return Ok(());
        }
        let text = &self.text;
        self.slots.sort_unstable_by(|a, b| {
            text[a.key.clone()]
                .cmp(&text[b.key.clone()])
                .then(a.pos.cmp(&b.pos))
        });
        let path = self
            .dir
            .join(format!("{}-{}.run", self.name, self.files.len()));
        let mut out = BufWriter::with_capacity(
            1 << 16,
            File::create(&path).context("could not create the export's scratch file")?,
        );
        for s in &self.slots {
            write_text(&mut out, &text[s.key.clone()])?;
            write_text(&mut out, &text[s.id.clone()])?;
            out.write_all(&s.pos.to_le_bytes())?;
            out.write_all(&[s.flags])?;
            out.write_all(&s.hash.to_le_bytes())?;
        }
        out.flush()
            .context("could not write the export's scratch file")?;
        self.files.push(path);
        self.slots.clear();
        self.text.clear();
        Ok(())
    }

    /// Write what is still in memory; the runs' files, to merge (as often
    /// as needed).
    pub fn finish(&mut self) -> Result<&[PathBuf]> {
        self.flush()?;
        // What the last run held is not needed again.
        self.slots = Vec::new();
        self.text = Vec::new();
        Ok(&self.files)
    }
}

fn write_text(out: &mut impl Write, text: &[u8]) -> Result<()> {
    let len = u32::try_from(text.len()).context("an id or key is longer than 4 GiB")?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(text)?;
    Ok(())
}

/// The head of one run in a merge.
struct Head {
    mark: Mark,
    run: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.mark.key.as_bytes(), self.mark.pos).cmp(&(other.mark.key.as_bytes(), other.mark.pos))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

/// The marks of several runs, in (key, position) order.
pub struct Merge {
    readers: Vec<BufReader<File>>,
    heap: BinaryHeap<Reverse<Head>>,
}

impl Merge {
    pub fn open<'a>(files: impl IntoIterator<Item = &'a PathBuf>) -> Result<Merge> {
        let mut merge = Merge {
            readers: Vec::new(),
            heap: BinaryHeap::new(),
        };
        for path in files {
            let file = File::open(path).context("could not read the export's scratch file")?;
            let mut reader = BufReader::with_capacity(READ_BUFFER, file);
            if let Some(mark) = read_mark(&mut reader)? {
                merge.heap.push(Reverse(Head {
                    mark,
                    run: merge.readers.len(),
                }));
            }
            merge.readers.push(reader);
        }
        Ok(merge)
    }

    /// The next mark; `None` when every run is read.
    pub fn next_mark(&mut self) -> Result<Option<Mark>> {
        let Some(Reverse(head)) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some(mark) = read_mark(&mut self.readers[head.run])? {
            self.heap.push(Reverse(Head {
                mark,
                run: head.run,
            }));
        }
        Ok(Some(head.mark))
    }
}

/// The next mark of a run; `None` at its end.
fn read_mark(r: &mut BufReader<File>) -> Result<Option<Mark>> {
    let damaged = "the export's scratch file is damaged";
    if r.fill_buf().context(damaged)?.is_empty() {
        return Ok(None);
    }
    let key = read_text(r).context(damaged)?;
    let id = read_text(r).context(damaged)?;
    let mut pos = [0u8; 8];
    let mut flags = [0u8; 1];
    let mut hash = [0u8; 16];
    r.read_exact(&mut pos).context(damaged)?;
    r.read_exact(&mut flags).context(damaged)?;
    r.read_exact(&mut hash).context(damaged)?;
    Ok(Some(Mark {
        key,
        pos: u64::from_le_bytes(pos),
        flags: flags[0],
        hash: u128::from_le_bytes(hash),
        id,
    }))
}

fn read_text(r: &mut impl Read) -> Result<String> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut bytes)?;
    Ok(String::from_utf8(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(merge: &mut Merge) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        while let Some(m) = merge.next_mark().unwrap() {
            out.push((m.key, m.pos));
        }
        out
    }

    #[test]
    fn runs_merge_in_key_then_position_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = Runs::new(dir.path(), "ids");
        // More than one run, keys repeated across runs, bytes not chars.
        let keys = ["b", "a", "é", "a", "B", "", "ab"];
        for n in 0..(RUN_MARKS as u64 * 2 + 5) {
            let key = keys[(n % keys.len() as u64) as usize];
            runs.push(key, "id", n, 3, u128::from(n) << 64).unwrap();
        }
        let files = runs.finish().unwrap().to_vec();
        assert_eq!(files.len(), 3);
        let merged = all(&mut Merge::open(&files).unwrap());
        assert_eq!(merged.len(), RUN_MARKS * 2 + 5);
        let mut sorted = merged.clone();
        sorted.sort_by(|a, b| (a.0.as_bytes(), a.1).cmp(&(b.0.as_bytes(), b.1)));
        assert_eq!(merged, sorted);
        assert_eq!(merged[0], (String::new(), 5));
        // A merge can be read again, and every field comes back.
        let mut again = Merge::open(&files).unwrap();
        let first = again.next_mark().unwrap().unwrap();
        assert_eq!(
            (first.id.as_str(), first.flags, first.hash),
            ("id", 3, 5u128 << 64)
        );
    }

    #[test]
    fn a_truncated_run_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = Runs::new(dir.path(), "ids");
        runs.push("p1", "", 0, 0, 0).unwrap();
        let files = runs.finish().unwrap().to_vec();
        let bytes = std::fs::read(&files[0]).unwrap();
        std::fs::write(&files[0], &bytes[..bytes.len() - 3]).unwrap();
        let err = Merge::open(&files).err().expect("a damaged run");
        assert!(err.to_string().contains("damaged"), "{err}");
    }
}
