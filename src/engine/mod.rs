//! The engines behind the bulk commands: `import` (the pipeline, its
//! checkpoint, the record mapping and validation) and `export` (read, diff,
//! preview, send, state, report), and the TARGET syntax they share.

pub mod checkpoint;
pub mod export;
pub mod import;
pub mod mapping;
pub mod read_ahead;
pub mod target;
