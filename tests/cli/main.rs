//! ferry's integration tests: one binary that runs the real `ferry` the way a
//! user does, one module per command. `support` holds the hermetic command
//! builder and the snapshot rendering.

mod support;

mod export;
mod init;
mod local;
