//! Reading JSON from files and flags with errors that point at the spot:
//! `invalid JSON in account.json at line 3, column 14: expected ...`.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use crate::error::usage;

/// Parse `text` read from `source` (a file path or a flag name). A byte
/// order mark before the JSON is skipped, as editors on Windows write one.
pub fn parse(text: &str, source: &str) -> Result<Value> {
    serde_json::from_str(crate::config::strip_bom(text)).map_err(|e| invalid(source, &e).into())
}

/// Read and parse the JSON file at `path`.
pub fn read_file(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).map_err(|e| {
        usage(format!("could not read {}: {e}", path.display()))
            .hint("check the path, or pass another file")
    })?;
    let source = path.display().to_string();
    let text = crate::config::decode(bytes, &source)?;
    parse(&text, &source)
}

/// The one wording of a JSON syntax error, with where to look.
pub fn invalid(source: &str, err: &serde_json::Error) -> crate::error::Failure {
    let text = err.to_string();
    let what = strip_position(&text);
    usage(format!(
        "invalid JSON in {source} at line {}, column {}: {what}",
        err.line(),
        err.column()
    ))
    .hint(format!(
        "fix the JSON in {source} and run the command again"
    ))
}

/// serde_json appends " at line L column C"; we print the position ourselves.
fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_names_line_and_column() {
        let err = parse("{\n  \"a\": 1,\n  \"b\" 2\n}", "in.json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid JSON in in.json at line 3, column 7: expected `:`"
        );
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        assert_eq!(
            parse("\u{feff}{\"a\": 1}", "in.json").unwrap(),
            serde_json::json!({"a": 1})
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_name_the_line() {
        let err = crate::config::decode(b"{\n\"a\": \"\xff\"}".to_vec(), "x.json").unwrap_err();
        assert_eq!(
            err.message,
            "x.json is not UTF-8 text: byte 0xff at line 2, column 7"
        );
    }
}
