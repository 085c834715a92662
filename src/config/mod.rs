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

/// The bytes of `source` (a file, or a line of one: `where_` names it, and
/// `first_line` is the line its bytes start on) as text without a byte
/// order mark; bytes that are not UTF-8 are an error naming the line and
/// column of the first of them.
pub fn decode(bytes: Vec<u8>, where_: &str, first_line: u64) -> Result<String, Failure> {
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let bytes = e.as_bytes();
            let bad = e.utf8_error().valid_up_to();
            let before = &bytes[..bad];
            let line = first_line + memchr::memchr_iter(b'\n', before).count() as u64;
            let column = bad - memchr::memrchr(b'\n', before).map_or(0, |i| i + 1) + 1;
            return Err(usage(format!(
                "{where_} is not UTF-8 text: byte 0x{:02x} at line {line}, column {column}",
                bytes[bad]
            ))
            .hint("save the file as UTF-8 (in most editors: \"Save with encoding\" → UTF-8)"));
        }
    };
    Ok(match text.strip_prefix(BOM) {
        Some(rest) => rest.to_string(),
        None => text,
    })
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
