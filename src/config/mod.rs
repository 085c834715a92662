//! The files a connector folder holds: `account.json` (which connector, with
//! which options), `in.json` (the inputs of each action) and `.env` (values
//! for `${NAME}` references). Parsing errors name the file, line and column.

pub mod account;
pub mod env;
pub mod input;
pub mod json;

pub use account::Account;
pub use input::Inputs;

use std::path::{Path, PathBuf};

/// Resolve `path` against `base` unless it is absolute.
pub fn resolve(base: &Path, path: impl AsRef<Path>) -> PathBuf {
    let path = path.as_ref();
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}
