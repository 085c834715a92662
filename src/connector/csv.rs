//! The `csv` connector: a local CSV file with a header row. Cells are read as
//! strings (an empty cell is null); objects and arrays are written as JSON.
//!
//! [`Rows`] reads every CSV file ferry reads (this connector's, and export's
//! profile files) with two checks the csv crate leaves out, both errors
//! (exit 2) rather than records silently merged or dropped: a header that
//! names a column twice, and a quote left open. The csv crate ends a quoted
//! cell left open at the end of the file, so `1,"x` followed by `2,Bob`
//! would read as one record holding both lines. A quoted cell that runs to
//! the end of the file is refused; so is one that spans lines and whose
//! closing quote is followed by more text (the sign of a quote left open
//! that paired with the opening quote of a later cell). A quoted cell
//! spanning lines and closed properly is read as usual.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::connector::file::{FileConnector, Format, RecordReader};
use crate::connector::options::{connector_options, Described};
use crate::connector::Env;
use crate::connector::{Connector, Options, Record, Spec};
use crate::error::usage;

connector_options! {
    /// The options of a `csv` account.
    pub struct CsvOptions {
        /// Path of the .csv file, relative to account.json; created on the first write
        #[option(label = "File", placeholder = "customers.csv", required)]
        pub path: String,
        /// The column that identifies a record
        #[option(label = "Id column", default = "id")]
        pub id_field: String,
        /// The one-character field separator
        #[option(label = "Delimiter", default = ",")]
        pub delimiter: String,
    }
}

/// The config [`open`] reads, for the registry.
pub type Config = CsvOptions;

pub fn spec() -> Spec {
    FileConnector::<Csv>::spec(
        "csv",
        "CSV file",
        "Records as rows of a local CSV file with a header row. Cells read as strings, an empty cell as null; objects and arrays are written as JSON text. Changes rewrite the file atomically; getupdates reads by position.",
        CsvOptions::option_specs(),
    )
}

pub fn open(env: &Env, options: Options) -> Result<Box<dyn Connector>> {
    let config: CsvOptions = options.parse()?;
    let delimiter = config.delimiter;
    let delimiter = match delimiter.as_bytes() {
        [b] => *b,
        _ if delimiter == "\\t" => b'\t',
        _ => {
            return Err(usage(format!(
                "option \"delimiter\" must be one character, got \"{delimiter}\""
            ))
            .hint(format!(
                "set \"delimiter\" to \",\", \";\" or \"\\t\" in {}",
                options.source()
            ))
            .into())
        }
    };
    Ok(Box::new(
        FileConnector::new(
            spec(),
            Csv { delimiter },
            options.resolve(&config.path),
            config.id_field,
        )
        .logging_to(env.out().clone()),
    ))
}

/// The CSV format with a given delimiter.
pub struct Csv {
    delimiter: u8,
}

impl Csv {
    /// Comma-separated, the default.
    #[cfg(test)]
    pub fn comma() -> Csv {
        Csv { delimiter: b',' }
    }

    fn reader_builder(&self) -> csv::ReaderBuilder {
        let mut b = csv::ReaderBuilder::new();
        b.delimiter(self.delimiter).flexible(false);
        b
    }
}

fn csv_error(path: &Path, err: csv::Error) -> anyhow::Error {
    let at = err
        .position()
        .map(|p| format!(" at line {}", p.line()))
        .unwrap_or_default();
    usage(format!("invalid CSV in {}{at}: {err}", path.display()))
        .hint("every row needs as many cells as the header; check the \"delimiter\" option")
        .into()
}

/// The rows of a CSV file after its header, with the checks in the module
/// doc.
pub struct Rows {
    path: PathBuf,
    reader: csv::Reader<File>,
    delimiter: u8,
    /// Reading began at the start of the file, so line numbers are known
    /// (after a seek the reader counts lines from 1 again).
    from_start: bool,
    headers: Vec<String>,
    /// The file's length when opened: a row that reaches it ends the file.
    len: u64,
    /// A second handle on the file, opened on the first row that needs
    /// its bytes read again, then kept (a file may have many such rows).
    raw: Option<File>,
}

impl Rows {
    /// Open `path` with `builder`, check its header, and start at byte
    /// `start` (0: the first row).
    pub fn open(
        path: &Path,
        builder: &csv::ReaderBuilder,
        delimiter: u8,
        start: u64,
    ) -> Result<Rows> {
        let file =
            File::open(path).with_context(|| format!("could not open {}", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("could not read {}", path.display()))?
            .len();
        let mut reader = builder.from_reader(file);
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| csv_error(path, e))?
            .iter()
            .map(str::to_string)
            .collect();
        if let Some((first, again)) = duplicate(&headers) {
            return Err(usage(format!(
                "the header of {} names column \"{}\" twice (columns {} and {})",
                path.display(),
                headers[first],
                first + 1,
                again + 1
            ))
            .hint("rename or remove one of them: each column is one field of a record")
            .into());
        }
        let mut rows = Rows {
            path: path.to_path_buf(),
            reader,
            delimiter,
            from_start: true,
            headers,
            len,
            raw: None,
        };
        // The header is a row too: a quote it leaves open swallows the
        // whole file into one column name.
        rows.check_quotes(&csv::Position::new())?;
        if start > 0 {
            let mut pos = csv::Position::new();
            pos.set_byte(start);
            rows.reader.seek(pos).map_err(|e| csv_error(path, e))?;
            rows.from_start = false;
        }
        Ok(rows)
    }

    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The byte offset where the next row starts.
    pub fn byte_offset(&self) -> u64 {
        self.reader.position().byte()
    }

    /// Read the next row into `row`: `None` at the end, `Some(Err)` for a
    /// row the csv crate refuses (the caller decides whether to go on), and
    /// an error for a quote left open, after which nothing more can be read
    /// as meant.
    pub fn next_row(
        &mut self,
        row: &mut csv::StringRecord,
    ) -> Result<Option<std::result::Result<(), csv::Error>>> {
        let start = self.reader.position().clone();
        match self.reader.read_record(row) {
            Ok(false) => Ok(None),
            Ok(true) => {
                self.check_quotes(&start)?;
                Ok(Some(Ok(())))
            }
            Err(e) => Ok(Some(Err(e))),
        }
    }

    /// Scan the bytes of the row just read, when it spans lines or ends the
    /// file (the only rows a quote left open can affect; the others are
    /// not read twice).
    fn check_quotes(&mut self, start: &csv::Position) -> Result<()> {
        let end = self.reader.position().clone();
        let lines = end.line().saturating_sub(start.line());
        if lines <= 1 && end.byte() < self.len {
            return Ok(());
        }
        let bytes = self.raw(start.byte(), end.byte())?;
        let Some((open, problem)) = quote_problem(&bytes, self.delimiter) else {
            return Ok(());
        };
        let at = if self.from_start {
            let line = start.line() + memchr::memchr_iter(b'\n', &bytes[..open]).count() as u64;
            format!("line {line}")
        } else {
            format!("byte {}", start.byte() + open as u64)
        };
        let what = match problem {
            Problem::Unclosed => {
                format!("the quoted cell opened at {at} is never closed: it runs to the end of the file")
            }
            Problem::TextAfter => format!(
                "the quoted cell opened at {at} spans lines and its closing quote is followed by text: a quote is probably left open at {at}"
            ),
        };
        Err(
            usage(format!("invalid CSV in {}: {what}", self.path.display()))
                .hint("close the quote; a quote inside a quoted cell is written twice (\"\")")
                .into(),
        )
    }

    /// The file's bytes from `start` to `end`.
    fn raw(&mut self, start: u64, end: u64) -> Result<Vec<u8>> {
        let path = &self.path;
        let read = |raw: &mut Option<File>| -> std::io::Result<Vec<u8>> {
            let file = match raw {
                Some(file) => file,
                None => raw.insert(File::open(path)?),
            };
            file.seek(SeekFrom::Start(start))?;
            let mut bytes = Vec::new();
            file.take(end.saturating_sub(start))
                .read_to_end(&mut bytes)?;
            Ok(bytes)
        };
        read(&mut self.raw).with_context(|| format!("could not read {}", self.path.display()))
    }
}

/// The first column named again, and where: `(first, again)`.
fn duplicate(headers: &[String]) -> Option<(usize, usize)> {
    let mut seen = std::collections::HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if let Some(first) = seen.insert(h.as_str(), i) {
            return Some((first, i));
        }
    }
    None
}

#[derive(Debug, PartialEq)]
enum Problem {
    Unclosed,
    TextAfter,
}

/// In the bytes of one record, a quoted cell left open at the end, or one
/// that spans lines and is followed by text after its closing quote: the
/// offset of its opening quote and which. The rules are the csv crate's
/// defaults: a quote opens a quoted cell only at the start of a cell, and a
/// doubled quote inside one is a quote.
fn quote_problem(bytes: &[u8], delimiter: u8) -> Option<(usize, Problem)> {
    let mut i = 0;
    let mut cell_start = true;
    while i < bytes.len() {
        let b = bytes[i];
        if cell_start && b == b'"' {
            let open = i;
            let mut spans_lines = false;
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Some((open, Problem::Unclosed)),
                    Some(b'"') if bytes.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => break,
                    Some(b) => {
                        spans_lines |= *b == b'\n';
                        i += 1;
                    }
                }
            }
            i += 1;
            match bytes.get(i) {
                None | Some(b'\n' | b'\r') => {}
                Some(b) if *b == delimiter => {}
                Some(_) if spans_lines => return Some((open, Problem::TextAfter)),
                Some(_) => {}
            }
            cell_start = false;
            continue;
        }
        cell_start = b == delimiter || b == b'\n' || b == b'\r';
        i += 1;
    }
    None
}

impl Format for Csv {
    fn reader(&self, path: &Path, start: u64) -> Result<Box<dyn RecordReader>> {
        let rows = Rows::open(path, &self.reader_builder(), self.delimiter, start)?;
        Ok(Box::new(RowReader {
            rows,
            row: csv::StringRecord::new(),
        }))
    }

    fn columns(&self, path: &Path) -> Result<Vec<String>> {
        let rows = Rows::open(path, &self.reader_builder(), self.delimiter, 0)?;
        Ok(rows.headers().to_vec())
    }

    fn write(
        &self,
        out: &mut dyn Write,
        columns: &[String],
        records: &mut dyn Iterator<Item = Result<Record>>,
    ) -> Result<()> {
        let mut writer = csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .from_writer(out);
        writer.write_record(columns)?;
        let mut cells: Vec<String> = Vec::with_capacity(columns.len());
        for record in records {
            let record = record?;
            cells.clear();
            cells.extend(columns.iter().map(|c| cell(record.get(c))));
            writer.write_record(&cells)?;
        }
        writer.flush()?;
        Ok(())
    }

    fn has_header(&self) -> bool {
        true
    }

    fn append(&self, out: &mut dyn Write, columns: &[String], records: &[&Record]) -> Result<()> {
        let mut writer = csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(false)
            .from_writer(out);
        let mut cells: Vec<String> = Vec::with_capacity(columns.len());
        for record in records {
            cells.clear();
            cells.extend(columns.iter().map(|c| cell(record.get(c))));
            writer.write_record(&cells)?;
        }
        writer.flush()?;
        Ok(())
    }
}

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

struct RowReader {
    rows: Rows,
    row: csv::StringRecord,
}

impl Iterator for RowReader {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        match self.rows.next_row(&mut self.row) {
            Ok(None) => None,
            Ok(Some(Ok(()))) => Some(Ok(self
                .rows
                .headers()
                .iter()
                .zip(self.row.iter())
                .map(|(h, v)| {
                    let value = if v.is_empty() {
                        Value::Null
                    } else {
                        Value::String(v.to_string())
                    };
                    (h.clone(), value)
                })
                .collect())),
            Ok(Some(Err(e))) => Some(Err(csv_error(&self.rows.path, e))),
            Err(e) => Some(Err(e)),
        }
    }
}

impl RecordReader for RowReader {
    fn byte_offset(&self) -> u64 {
        self.rows.byte_offset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_left_open_are_found() {
        let p = |s: &str| quote_problem(s.as_bytes(), b',');
        assert_eq!(p("1,\"unterminated\n2,Bob\n"), Some((2, Problem::Unclosed)));
        assert_eq!(p("1,\"a\n2,Bob\n3,\"Cy\"\n"), Some((2, Problem::TextAfter)));
        assert_eq!(p("1,\"two\nlines\"\n"), None);
        assert_eq!(p("1,\"say \"\"hi\"\"\",x\n"), None);
        assert_eq!(p("1,a\"b,\"c\"\n"), None);
        assert_eq!(
            p("1,\"a\"b\n"),
            None,
            "a sloppy one-line cell is read as before"
        );
        assert_eq!(p("\"open"), Some((0, Problem::Unclosed)));
        assert_eq!(quote_problem(b"1;\"a\";x", b';'), None);
    }

    #[test]
    fn a_column_named_twice_is_found() {
        let h = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(duplicate(&h("id,name,name")), Some((1, 2)));
        assert_eq!(duplicate(&h("id,name")), None);
    }

    #[test]
    fn no_bytes_make_the_quote_scan_or_the_utf8_check_panic() {
        use rand::{Rng, SeedableRng};
        const BYTES: &[u8] = b"a,\"\n\r;\xff\xc3";
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        for _ in 0..20_000 {
            let len = rng.random_range(0..16);
            let bytes: Vec<u8> = (0..len)
                .map(|_| BYTES[rng.random_range(0..BYTES.len())])
                .collect();
            if let Some((open, _)) = quote_problem(&bytes, b',') {
                assert_eq!(bytes[open], b'"');
            }
            match crate::config::utf8(&bytes, || "f".into(), Some(1)) {
                Ok(text) => assert!(std::str::from_utf8(&bytes).is_ok(), "{text:?}"),
                Err(e) => assert!(e.message.starts_with("f is not UTF-8 text: byte 0x")),
            }
        }
    }
}
