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
/// The most runs one merge reads at once (open files, read buffers):
/// beyond it, runs are first merged into longer ones, 64 at a time, so a
/// merge holds at most 64 files and 2 MiB of buffers at any size.
const MERGE_WIDTH: usize = 64;

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

/// A run written to disk, and how many marks it holds (a run cut short
/// is found out by its count).
#[derive(Debug, Clone)]
pub struct Run {
    path: PathBuf,
    marks: u64,
}

/// Marks gathered into sorted runs, written to `dir` as they fill.
pub struct Runs {
    dir: PathBuf,
    name: &'static str,
    files: Vec<Run>,
    /// Files written so far, for fresh names.
    written: usize,
    text: Vec<u8>,
    slots: Vec<Slot>,
    /// [`RUN_MARKS`] and [`MERGE_WIDTH`] (smaller in tests).
    run_marks: usize,
    width: usize,
}

impl Runs {
    /// Runs written as `dir/{name}-N.run`.
    pub fn new(dir: &Path, name: &'static str) -> Runs {
        Runs {
            dir: dir.to_path_buf(),
            name,
            files: Vec::new(),
            written: 0,
            text: Vec::new(),
            slots: Vec::new(),
            run_marks: RUN_MARKS,
            width: MERGE_WIDTH,
        }
    }

    /// A fresh file name for a run.
    fn next_path(&mut self) -> PathBuf {
        self.written += 1;
        self.dir.join(format!("{}-{}.run", self.name, self.written))
    }

    /// Add one mark.
    pub fn push(&mut self, key: &str, id: &str, pos: u64, flags: u8, hash: u128) -> Result<()> {
        if self.slots.len() >= self.run_marks || self.text.len() >= RUN_TEXT {
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
        let path = self.next_path();
        let text = &self.text;
        self.slots.sort_unstable_by(|a, b| {
            text[a.key.clone()]
                .cmp(&text[b.key.clone()])
                .then(a.pos.cmp(&b.pos))
        });
        let mut out = BufWriter::with_capacity(
            1 << 16,
            File::create(&path).context("could not create the export's scratch file")?,
        );
        for s in &self.slots {
            write_mark(
                &mut out,
                &text[s.key.clone()],
                &text[s.id.clone()],
                s.pos,
                s.flags,
                s.hash,
            )?;
        }
        out.flush()
            .context("could not write the export's scratch file")?;
        self.files.push(Run {
            path,
            marks: self.slots.len() as u64,
        });
        self.slots.clear();
        self.text.clear();
        Ok(())
    }

    /// Write what is still in memory, merge the runs down to at most
    /// [`MERGE_WIDTH`]; the runs, to merge (as often as needed).
    pub fn finish(&mut self) -> Result<&[Run]> {
        self.flush()?;
        // What the last run held is not needed again.
        self.slots = Vec::new();
        self.text = Vec::new();
        while self.files.len() > self.width {
            let first: Vec<Run> = self.files.drain(..self.width).collect();
            let path = self.next_path();
            let mut out = BufWriter::with_capacity(
                1 << 16,
                File::create(&path).context("could not create the export's scratch file")?,
            );
            let mut merge = Merge::open(&first)?;
            let mut marks = 0u64;
            while let Some(m) = merge.next_mark()? {
                write_mark(
                    &mut out,
                    m.key.as_bytes(),
                    m.id.as_bytes(),
                    m.pos,
                    m.flags,
                    m.hash,
                )?;
                marks += 1;
            }
            out.flush()
                .context("could not write the export's scratch file")?;
            drop(merge);
            for run in &first {
                let _ = std::fs::remove_file(&run.path);
            }
            self.files.push(Run { path, marks });
        }
        Ok(&self.files)
    }
}

fn write_mark(
    out: &mut impl Write,
    key: &[u8],
    id: &[u8],
    pos: u64,
    flags: u8,
    hash: u128,
) -> Result<()> {
    write_text(out, key)?;
    write_text(out, id)?;
    out.write_all(&pos.to_le_bytes())?;
    out.write_all(&[flags])?;
    out.write_all(&hash.to_le_bytes())?;
    Ok(())
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
    /// Each run's reader and the marks it still holds.
    readers: Vec<(BufReader<File>, u64)>,
    heap: BinaryHeap<Reverse<Head>>,
}

impl Merge {
    pub fn open<'a>(runs: impl IntoIterator<Item = &'a Run>) -> Result<Merge> {
        let mut merge = Merge {
            readers: Vec::new(),
            heap: BinaryHeap::new(),
        };
        for run in runs {
            let file = File::open(&run.path).context("could not read the export's scratch file")?;
            merge
                .readers
                .push((BufReader::with_capacity(READ_BUFFER, file), run.marks));
            let at = merge.readers.len() - 1;
            merge.advance(at)?;
        }
        Ok(merge)
    }

    /// Read run `run`'s next mark onto the heap; its end must come after
    /// exactly the marks it was written with.
    fn advance(&mut self, run: usize) -> Result<()> {
        let (reader, left) = &mut self.readers[run];
        let mark = read_mark(reader)?;
        match (mark, *left) {
            (Some(mark), 1..) => {
                *left -= 1;
                self.heap.push(Reverse(Head { mark, run }));
                Ok(())
            }
            (None, 0) => Ok(()),
            _ => anyhow::bail!("the export's scratch file is damaged"),
        }
    }

    /// The next mark; `None` when every run is read.
    pub fn next_mark(&mut self) -> Result<Option<Mark>> {
        let Some(Reverse(head)) = self.heap.pop() else {
            return Ok(None);
        };
        self.advance(head.run)?;
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
    let len = u64::from(u32::from_le_bytes(len));
    // Read as far as the file goes: a damaged length asks for no memory.
    let mut bytes = Vec::new();
    r.take(len).read_to_end(&mut bytes)?;
    anyhow::ensure!(bytes.len() as u64 == len, "a mark cut short");
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
    fn many_runs_are_merged_in_stages_of_a_few_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = Runs::new(dir.path(), "ids");
        runs.run_marks = 3;
        runs.width = 4;
        let n = 100u64;
        for i in 0..n {
            // Every key twice, far apart.
            runs.push(&format!("k{}", (i * 37) % 50), "", i, 0, 0)
                .unwrap();
        }
        let files = runs.finish().unwrap().to_vec();
        assert!(files.len() <= 4, "{} runs", files.len());
        let merged = all(&mut Merge::open(&files).unwrap());
        assert_eq!(merged.len(), n as usize);
        let mut sorted = merged.clone();
        sorted.sort_by(|a, b| (a.0.as_bytes(), a.1).cmp(&(b.0.as_bytes(), b.1)));
        assert_eq!(merged, sorted);
        // The merged-away runs are gone.
        let left = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(left, files.len());
    }

    #[test]
    fn a_damaged_run_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = Runs::new(dir.path(), "ids");
        runs.push("p1", "", 0, 0, 0).unwrap();
        runs.push("p2", "", 1, 0, 0).unwrap();
        let files = runs.finish().unwrap().to_vec();
        let bytes = std::fs::read(&files[0].path).unwrap();
        let one = bytes.len() / 2;
        // Cut inside a mark, exactly between two, and a length gone wild.
        let mut wild = bytes.clone();
        wild[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        for damaged in [
            bytes[..bytes.len() - 3].to_vec(),
            bytes[..one].to_vec(),
            wild,
        ] {
            std::fs::write(&files[0].path, &damaged).unwrap();
            let read = Merge::open(&files).and_then(|mut m| {
                while m.next_mark()?.is_some() {}
                Ok(())
            });
            let err = read.expect_err("a damaged run");
            assert!(err.to_string().contains("damaged"), "{err}");
        }
    }
}
