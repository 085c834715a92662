//! The `jsonl` connector: one JSON object per line in a local file. Lines
//! are decoded one by one, so an error (bytes that are not UTF-8, invalid
//! JSON, a value that is not an object) names its line; a byte order mark
//! at the start of the file is skipped.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::connector::file::{FileConnector, Format, RecordReader};
use crate::connector::options::{connector_options, Described};
use crate::connector::raw::RawRecords;
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
        Ok(Box::new(LineReader::open(path, start)?))
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
        let mut lines = LineReader::open(path, start)?;
        let mut records = RawRecords::default();
        while records.len() < limit && end.is_none_or(|end| lines.offset < end) {
            match lines.next_text() {
                None => break,
                Some(Ok(text)) if is_object(text) => records.push(text),
                // A line the parsed read must word, with its place.
                Some(_) => return Ok(None),
            }
        }
        Ok(Some((records, lines.offset)))
    }

    fn append(&self, out: &mut dyn Write, _columns: &[String], records: &[&Record]) -> Result<()> {
        for record in records {
            serde_json::to_writer(&mut *out, *record)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// A JSON lines file read line by line, from a byte offset.
struct LineReader {
    path: PathBuf,
    reader: BufReader<File>,
    /// Where the next line starts.
    offset: u64,
    /// Where the line read last starts.
    line_start: u64,
    /// Its number, known only when reading from the start.
    line: Option<u64>,
    /// Its text.
    text: String,
}

impl LineReader {
    fn open(path: &Path, start: u64) -> Result<LineReader> {
        let mut file =
            File::open(path).with_context(|| format!("could not open {}", path.display()))?;
        // Only when needed: a named pipe cannot seek.
        if start > 0 {
            file.seek(SeekFrom::Start(start))
                .with_context(|| format!("could not seek in {}", path.display()))?;
        }
        Ok(LineReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(256 * 1024, file),
            offset: start,
            line_start: start,
            line: if start == 0 { Some(0) } else { None },
            text: String::new(),
        })
    }

    /// The line read last, as messages name it.
    fn place(&self) -> String {
        match self.line {
            Some(l) => format!("{} line {l}", self.path.display()),
            None => format!("{} (byte {})", self.path.display(), self.line_start),
        }
    }

    /// The next line that is not blank, trimmed (a byte order mark too);
    /// `None` at the end. Bytes that are not UTF-8 are an error naming
    /// their line. The parsed read and the pass-through both read lines so.
    fn next_text(&mut self) -> Option<Result<&str>> {
        let span = loop {
            // The line's bytes become its text without a copy, and back.
            let mut bytes = std::mem::take(&mut self.text).into_bytes();
            bytes.clear();
            let n = match self.reader.read_until(b'\n', &mut bytes) {
                Ok(0) => return None,
                Ok(n) => n,
                Err(e) => {
                    return Some(Err(anyhow::Error::new(e)
                        .context(format!("could not read {}", self.path.display()))))
                }
            };
            self.line_start = self.offset;
            self.offset += n as u64;
            if let Some(line) = self.line.as_mut() {
                *line += 1;
            }
            self.text = match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => {
                    // Worded as every file's bad bytes are, by their line.
                    let bytes = e.into_bytes();
                    return Some(Err(
                        match crate::config::utf8(&bytes, || self.place(), None) {
                            Err(e) => e.hint("save the file as UTF-8, or fix that line").into(),
                            Ok(_) => anyhow::anyhow!("{} is not UTF-8 text", self.place()),
                        },
                    ));
                }
            };
            let text = self
                .text
                .strip_prefix('\u{feff}')
                .unwrap_or(&self.text)
                .trim();
            if !text.is_empty() {
                let start = text.as_ptr() as usize - self.text.as_ptr() as usize;
                break start..start + text.len();
            }
        };
        Some(self.text.get(span).context("a line of a jsonl file"))
    }
}

impl Iterator for LineReader {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        let parsed = match self.next_text()? {
            Ok(text) => serde_json::from_str::<Value>(text),
            Err(e) => return Some(Err(e)),
        };
        Some(match parsed {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(usage(format!("{} is not a JSON object", self.place()))
                .hint("each line of a jsonl file holds one object: {\"id\": \"...\", ...}")
                .into()),
            Err(e) => Err(usage(format!(
                "invalid JSON in {}, column {}: {}",
                self.place(),
                e.column(),
                strip(&e.to_string())
            ))
            .hint("fix that line, or point \"path\" at another file")
            .into()),
        })
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
