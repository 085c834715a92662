//! The `ferry` binary: hand the arguments to the library and turn the outcome
//! into an exit code. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    ferry::main_entry(std::env::args_os().collect())
}
