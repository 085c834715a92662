//! The `jsonl` connector: one JSON object per line in a local file. Lines
//! are decoded one by one, so an error (bytes that are not UTF-8, invalid
//! JSON, a value that is not an object) names its line; a byte order mark
//! at the start of the file is skipped.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::connector::file::{FileConnector, Format, RecordReader};
use crate::connector::raw::RawRecords;
use crate::connector::options::{connector_options, Described};
use crate::connector::Env;
use crate::connector::{Connector, Options, Record, Spec};
use crate::error::usage;

connector_options! {
    /// The options of a `jsonl` account.
    pub struct JsonlOptions {
        /// Path of the .jsonl file, relative to account.json; created on the first write
        #[option(label = "File", placeholder = "customers.jsonl", required)]
        pub path: String,
        /// The field that identifies a record
        #[option(label = "Id field", default = "id")]
        pub id_field: String,
    }
}

/// The config [`open`] reads, for the registry.
pub type Config = JsonlOptions;

pub fn spec() -> Spec {
    FileConnector::<Jsonl>::spec(
        "jsonl",
        "JSON lines file",
        "Records as one JSON object per line in a local file. Changes rewrite the file atomically; getupdates reads by position (records after the last sync's line), so edits to earlier lines are not reported.",
        JsonlOptions::option_specs(),
    )
}

pub fn open(env: &Env, options: Options) -> Result<Box<dyn Connector>> {
    let config: JsonlOptions = options.parse()?;
    let path = options.resolve(&config.path);
    Ok(Box::new(
        FileConnector::new(spec(), Jsonl, path, config.id_field).logging_to(env.out().clone()),
    ))
}

/// The JSON lines format.
pub struct Jsonl;

impl Format for Jsonl {
    fn reader(&self, path: &Path, start: u64) -> Result<Box<dyn RecordReader>> {
        let mut file =
            File::open(path).with_context(|| format!("could not open {}", path.display()))?;
        if start > 0 {
            file.seek(SeekFrom::Start(start))
                .with_context(|| format!("could not seek in {}", path.display()))?;
        }
        Ok(Box::new(LineReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(256 * 1024, file),
            offset: start,
            // Line numbers are only known when reading from the start.
            line: if start == 0 { Some(0) } else { None },
            buf: Vec::new(),
        }))
    }

    fn columns(&self, _path: &Path) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn write(
        &self,
        out: &mut dyn Write,
        _columns: &[String],
        records: &mut dyn Iterator<Item = Result<Record>>,
    ) -> Result<()> {
        for record in records {
            serde_json::to_writer(&mut *out, &record?)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    fn json_rows(&self) -> bool {
        true
    }

    fn raw_rows(
        &self,
        path: &Path,
        start: u64,
        end: Option<u64>,
        limit: usize,
    ) -> Result<Option<(RawRecords, u64)>> {
        let mut file =
            File::open(path).with_context(|| format!("could not open {}", path.display()))?;
        // Only when needed: a named pipe cannot seek.
        if start > 0 {
            file.seek(SeekFrom::Start(start))
                .with_context(|| format!("could not seek in {}", path.display()))?;
        }
        let mut reader = BufReader::with_capacity(256 * 1024, file).take(match end {
            Some(end) => end.saturating_sub(start),
            None => u64::MAX,
        });
        let mut records = RawRecords::default();
        let mut offset = start;
        let mut buf = Vec::new();
        while records.len() < limit {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .with_context(|| format!("could not read {}", path.display()))?;
            if n == 0 {
                break;
            }
            let at_start = offset == 0;
            offset += n as u64;
            let Ok(line) = std::str::from_utf8(&buf) else {
                return Ok(None);
            };
            // Trimmed as the parsed read trims it, byte order mark included.
            let line = if at_start {
                line.strip_prefix('\u{feff}').unwrap_or(line)
            } else {
                line
            };
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if !is_object(line) {
                return Ok(None);
            }
            records.push(line);
        }
        Ok(Some((records, offset)))
    }

    fn append(&self, out: &mut dyn Write, _columns: &[String], records: &[&Record]) -> Result<()> {
        for record in records {
            serde_json::to_writer(&mut *out, *record)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

struct LineReader {
    path: PathBuf,
    reader: BufReader<File>,
    offset: u64,
    line: Option<u64>,
    buf: Vec<u8>,
}

impl Iterator for LineReader {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        loop {
            self.buf.clear();
            let n = match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(n) => n,
                Err(e) => {
                    return Some(Err(anyhow::Error::new(e)
                        .context(format!("could not read {}", self.path.display()))))
                }
            };
            self.offset += n as u64;
            if let Some(line) = self.line.as_mut() {
                *line += 1;
            }
            let where_ = || match self.line {
                Some(l) => format!("{} line {l}", self.path.display()),
                None => format!("{} (byte {})", self.path.display(), self.offset - n as u64),
            };
            // Decoded per line, so bytes that are not UTF-8 are named by
            // their line (and a byte order mark is skipped).
            let text = match crate::config::utf8(&self.buf, where_, None) {
                Ok(text) => text.trim(),
                Err(e) => {
                    return Some(Err(e
                        .hint("save the file as UTF-8, or fix that line")
                        .into()))
                }
            };
            if text.is_empty() {
                continue;
            }
            return Some(match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => Ok(map),
                Ok(_) => Err(usage(format!("{} is not a JSON object", where_()))
                    .hint("each line of a jsonl file holds one object: {\"id\": \"...\", ...}")
                    .into()),
                Err(e) => Err(usage(format!(
                    "invalid JSON in {}, column {}: {}",
                    where_(),
                    e.column(),
                    strip(&e.to_string())
                ))
                .hint("fix that line, or point \"path\" at another file")
                .into()),
            });
        }
    }
}

/// Whether `text` is one valid JSON object, checked without building it.
fn is_object(text: &str) -> bool {
    text.starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

fn strip(msg: &str) -> &str {
    msg.rfind(" at line ").map_or(msg, |i| &msg[..i])
}

impl RecordReader for LineReader {
    fn byte_offset(&self) -> u64 {
        self.offset
    }
}
