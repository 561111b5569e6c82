//! Insitu's CWL v1.2 engine: loads CWL documents (v1.0–v1.2, YAML or JSON,
//! `$graph`, `$import`/`$include`), validates them with clear messages and
//! runs CommandLineTools, ExpressionTools and Workflows (scatter, `when`,
//! `pickValue`, subworkflows) through a pluggable [`executor::Executor`].
//! It backs the platform's pipeline runs ([`run()`]) and the `insitu cwl`
//! command, whose whole logic is [`cli_main`]. Tools run in bubblewrap
//! sandboxes built by `insitu-launcher` (the same builder as the labs, see
//! [`sandbox`]); runs can leave a Workflow Run RO-Crate ([`provenance`]).
//!
//! This crate depends on `insitu-launcher` alone among the platform's
//! crates and must never depend on the web or store crates. It keeps no
//! state of its own beyond a run: a run's results are its output object and
//! the files under the output directory, its record the provenance crate
//! and the job cache directory, all handed back to the caller.
//!
//! Codemap, from the entry points down: [`cli`] (arguments) and [`run()`]
//! (one run) over [`options`]; [`loader`] (parse → resolve → check →
//! normalize); [`workflow`] (the dataflow scheduler) and [`tool`] (bind →
//! stage → run → collect) over [`process`] (what a run's processes share,
//! input preparation) and [`requirements`]; [`relocate`] (outputs into the
//! output directory); the executors in [`executor`], [`sandbox`],
//! [`spawner`] and [`container`]; [`cache`], [`provenance`], [`expr`],
//! [`ontology`], [`files`] and [`types`] as leaves.

pub mod access;
pub mod cache;
pub mod cli;
pub mod container;
pub mod error;
pub mod executor;
pub mod expr;
pub mod files;
pub mod loader;
pub mod log;
pub mod ontology;
pub mod options;
pub mod process;
pub mod provenance;
pub mod relocate;
pub mod requirements;
pub mod run;
pub mod sandbox;
pub mod spawner;
pub mod tool;
pub mod types;
pub mod workflow;

pub use cli::cli_main;
pub use error::{CwlError, Result};
pub use options::{Confinement, ContainerMode, RunOptions, SandboxMode};
pub use run::run;
