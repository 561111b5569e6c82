//! The one `insitu` binary: `serve` and `demo` run the platform; `login`,
//! `whoami`, `datalabs`, `volumes`, `labs`, `pipelines` and `runs` are its
//! command-line client, which also works from inside a lab through the
//! lab's API socket (`INSITU_API_SOCKET`, or `INSITU_URL=unix:…`).
//!
//! This crate is thin glue: configuration loading, argument parsing, output
//! formatting. The server's HTTP face lives in `insitu-web`, the platform's
//! services in `insitu-core`, the rules in `insitu-domain`. The CLI client
//! (`client`, over reqwest) is, with the web crate and the lab proxy, one of
//! the three places that use an HTTP library; this is the only crate that
//! uses `anyhow`.

pub mod cli;
pub mod cli_pipelines;
pub mod cli_workspace;
pub mod client;
pub mod config;
pub mod cwl;
pub mod demo;
