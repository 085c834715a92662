//! The pipelines behind `export` (and, on its own branch, `import`): what
//! runs between a source and a destination once the command line has become
//! a plan. `target` turns a TARGET argument into an account.

pub mod export;
pub mod target;
