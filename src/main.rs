//! The `ferry` binary: hand the arguments to the library and turn the outcome
//! into an exit code. Everything else lives in the library.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: an import allocates and frees
/// millions of small strings and maps, and glibc's malloc spent a quarter of
/// the CPU of an import on them (README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    ferry::main_entry(std::env::args_os().collect())
}
