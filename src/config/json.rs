//! Reading JSON from files and flags with errors that point at the spot:
//! `invalid JSON in account.json at line 3, column 14: expected ...`.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use crate::error::usage;

/// Parse `text` read from `source` (a file path or a flag name).
pub fn parse(text: &str, source: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| invalid(source, &e).into())
}

/// Read and parse the JSON file at `path`.
pub fn read_file(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        usage(format!("could not read {}: {e}", path.display()))
            .hint("check the path, or pass another file")
    })?;
    parse(&text, &path.display().to_string())
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
}
