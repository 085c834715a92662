//! The `csv` connector: a local CSV file with a header row. Cells are read as
//! strings (an empty cell is null); objects and arrays are written as JSON.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::connector::file::{FileConnector, Format, RecordReader};
use crate::connector::{
    Action, Connector, FieldSpec, FieldType, OptionSpec, Options, Record, Role, Spec,
};
use crate::ctx::Ctx;
use crate::error::usage;

pub fn spec() -> Spec {
    Spec {
        code: "csv",
        label: "CSV file",
        description: "Records as rows of a local CSV file with a header row. Cells read as strings, an empty cell as null; objects and arrays are written as JSON text. Changes rewrite the file atomically; getupdates reads by position.",
        roles: vec![Role::Source, Role::Destination],
        options: vec![
            OptionSpec::required("path", "File", "Path of the .csv file, relative to account.json; created on the first write")
                .placeholder("customers.csv"),
            OptionSpec::optional("idField", "Id column", "The column that identifies a record")
                .default("id"),
            OptionSpec::optional("delimiter", "Delimiter", "The one-character field separator")
                .default(","),
        ],
        fields: vec![FieldSpec::new("id", FieldType::String, "The record's identifier (the idField option names it)").required()],
        extra_fields: true,
        actions: Action::records_and(&[Action::ExportProfiles]),
        max_batch_size: 5_000,
        parallelism: 1,
    }
}

pub fn open(ctx: &Ctx, options: Options) -> Result<Box<dyn Connector>> {
    let path = options.require_path("path")?;
    let id_field = options.require("idField")?;
    let delimiter = options.require("delimiter")?;
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
        FileConnector::new(spec(), Csv { delimiter }, path, id_field).logging_to(ctx.out.clone()),
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

impl Format for Csv {
    fn reader(&self, path: &Path, start: u64) -> Result<Box<dyn RecordReader>> {
        let file =
            File::open(path).with_context(|| format!("could not open {}", path.display()))?;
        let mut reader = self.reader_builder().from_reader(file);
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| csv_error(path, e))?
            .iter()
            .map(str::to_string)
            .collect();
        if start > 0 {
            let mut pos = csv::Position::new();
            pos.set_byte(start);
            reader.seek(pos).map_err(|e| csv_error(path, e))?;
        }
        Ok(Box::new(RowReader {
            path: path.to_path_buf(),
            reader,
            headers,
            row: csv::StringRecord::new(),
        }))
    }

    fn columns(&self, path: &Path) -> Result<Vec<String>> {
        let file =
            File::open(path).with_context(|| format!("could not open {}", path.display()))?;
        let mut reader = self.reader_builder().from_reader(file);
        Ok(reader
            .headers()
            .map_err(|e| csv_error(path, e))?
            .iter()
            .map(str::to_string)
            .collect())
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
    path: PathBuf,
    reader: csv::Reader<File>,
    headers: Vec<String>,
    row: csv::StringRecord,
}

impl Iterator for RowReader {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        match self.reader.read_record(&mut self.row) {
            Ok(false) => None,
            Ok(true) => Some(Ok(self
                .headers
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
            Err(e) => Some(Err(csv_error(&self.path, e))),
        }
    }
}

impl RecordReader for RowReader {
    fn byte_offset(&self) -> u64 {
        self.reader.position().byte()
    }
}
