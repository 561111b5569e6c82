//! Integration tests: the real server on a port-0 listener with a fresh
//! database per test (SQLite, and PostgreSQL where the test command started
//! one), driven over HTTP, through the CLI binary and in a real browser.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

mod access;
mod accounts;
mod attacks;
mod browser;
mod catalogue;
mod cli;
mod desktop;
mod devlabs;
mod discovery;
mod errors;
mod isolation;
mod jupyter;
mod lab_proxy;
mod lab_runs;
mod labs;
mod lifecycle;
mod oidc;
mod openapi;
mod quotas;
mod restart;
mod roles;
mod runs;
mod slurm_labs;
mod teams;
mod usage;
mod volumes;
