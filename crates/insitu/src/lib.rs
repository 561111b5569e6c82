//! The one `insitu` binary: `serve` and `demo` run the platform; `login`,
//! `whoami`, `datalabs` and `volumes` are its command-line client.
//!
//! This crate is thin glue: configuration loading, argument parsing, output
//! formatting. The server lives in `insitu-web`, the rules in
//! `insitu-domain`.

pub mod cli;
pub mod client;
pub mod config;
pub mod cwl;
pub mod demo;
