//! The engines behind the bulk commands: `import` (the pipeline), its
//! checkpoint, the record mapping and validation, and the TARGET syntax that
//! import and export share.

pub mod checkpoint;
pub mod import;
pub mod mapping;
pub mod target;
