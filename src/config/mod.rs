//! The files a connector folder holds: `account.json` (which connector, with
//! which options), `in.json` (the inputs of each action) and `.env` (values
//! for `${NAME}` references). Parsing errors name the file, line and column.
//!
//! Every file ferry reads as text is UTF-8; a byte order mark at its start
//! (which some Windows editors write) is skipped, and bytes that are not
//! UTF-8 are an error naming the line, never a garbled value.

pub mod account;
pub mod env;
pub mod input;
pub mod json;

pub use account::Account;
pub use input::Inputs;

use std::path::{Path, PathBuf};

use crate::error::{usage, Failure};

/// The UTF-8 byte order mark.
pub const BOM: &str = "\u{feff}";

/// `text` without a leading byte order mark.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
}

/// The bytes of a file (`where_` names it) as text without a byte order
/// mark; bytes that are not UTF-8 are an error naming the line and column
/// of the first of them.
pub fn decode(bytes: Vec<u8>, where_: &str) -> Result<String, Failure> {
    utf8(&bytes, || where_.to_string(), Some(1)).map(str::to_string)
}

/// [`decode`] for bytes that start on line `first_line` of their file, or
/// on a line whose number is not known (`None`: a read resumed at an
/// offset), without a copy; `where_` is only called for the error.
pub fn utf8(
    bytes: &[u8],
    where_: impl FnOnce() -> String,
    first_line: Option<u64>,
) -> Result<&str, Failure> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(strip_bom(text)),
        Err(e) => {
            let bad = e.valid_up_to();
            let before = &bytes[..bad];
            let column = bad - memchr::memrchr(b'\n', before).map_or(0, |i| i + 1) + 1;
            let at = match first_line {
                Some(first) => {
                    let line = first + memchr::memchr_iter(b'\n', before).count() as u64;
                    format!("line {line}, column {column}")
                }
                None => format!("column {column}"),
            };
            Err(usage(format!(
                "{} is not UTF-8 text: byte 0x{:02x} at {at}",
                where_(),
                bytes[bad]
            ))
            .hint("save the file as UTF-8 (in most editors: \"Save with encoding\" → UTF-8)"))
        }
    }
}

/// Resolve `path` against `base` unless it is absolute.
pub fn resolve(base: &Path, path: impl AsRef<Path>) -> PathBuf {
    let path = path.as_ref();
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// The candidate closest to `word`, if any is close enough to be a typo.
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
