//! ferry's integration tests: one binary that runs the real `ferry` the way a
//! user does, one module per command or area. `support` holds the hermetic
//! command builder and the snapshot rendering.

mod support;

mod cassette;
mod code;
mod completions;
mod config;
mod connectors;
mod dry_reads;
mod errors;
mod examples;
mod export;
mod export_http;
mod fields;
mod fuzz;
mod http_connector;
mod http_engine;
mod http_paths;
mod hubspot;
mod import;
mod init;
mod intercom;
mod klaviyo;
mod local;
mod mailchimp;
mod manifest;
mod numbers;
mod output;
mod parsing;
mod postgres;
mod redaction;
mod sandbox;
mod segment;
mod terminal_runs;
mod testcases;
mod voucherify;
mod writers;
mod zendesk;
