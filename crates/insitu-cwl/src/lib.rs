//! Insitu's CWL v1.2 engine: loads CWL documents (v1.0–v1.2, YAML or JSON,
//! `$graph`, `$import`/`$include`), validates them with clear messages and
//! runs CommandLineTools, ExpressionTools and Workflows (scatter, `when`,
//! `pickValue`, subworkflows) through a pluggable [`executor::Executor`].
//! It backs the platform's pipeline runs ([`run()`]) and the `insitu cwl`
//! command, whose whole logic is [`cli_main`]. Tools run in bubblewrap
//! sandboxes built by `insitu-launcher` (the same builder as the labs, see
//! [`sandbox`]), never unsandboxed unless asked to; runs can leave a
//! Workflow Run RO-Crate ([`provenance`]). A run made on a user's behalf is
//! confined ([`Confinement`]): it reads only under allowed roots and its
//! tools run as an unprivileged user.
//!
//! Among the platform's crates this one depends on `insitu-launcher` alone,
//! and must never depend on the web or store crates. It persists nothing
//! through them: what a run leaves is its output object (returned) and the
//! files and directories its options name (output, job cache, provenance
//! crate, event stream, job logs, kept job directories); the
//! only other file it writes outside a run's temporary directory is a
//! marker of a working bubblewrap in the temporary directory.
//!
//! Codemap, from the entry points down: [`cli`] (arguments) and [`run()`]
//! (one run) over [`options`]; [`loader`] (parse → resolve → check →
//! normalize); [`workflow`] (the dataflow scheduler) and [`tool`] (stage →
//! bind → execute → collect) over [`process`] (what a run's processes
//! share, input preparation), [`requirements`] and [`cache`]; [`relocate`]
//! (outputs into the output directory); the executors [`sandbox`],
//! [`spawner`] and [`container`] over [`executor`] (what a command is);
//! [`provenance`], [`describe`] (a process as JSON, for forms and graphs),
//! [`expr`], [`ontology`] and [`types`]; and at the base [`access`] (where
//! a run may read), [`files`] (the File/Directory view, listings, the one
//! tree copy), [`events`] (the machine-readable event stream), [`log`] and
//! [`error`].

pub mod access;
pub mod cache;
pub mod cli;
pub mod container;
pub mod describe;
pub mod error;
pub mod events;
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
pub mod slurm;
pub mod spawner;
pub mod tool;
pub mod types;
pub mod workflow;

pub use cli::cli_main;
pub use error::{CwlError, Result};
pub use options::{Confinement, ContainerMode, RunOptions, SandboxMode};
pub use run::run;
