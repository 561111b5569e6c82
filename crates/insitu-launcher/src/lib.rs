//! Running tools in sandboxes on this machine (the local sandbox datazone).
//!
//! [`sandbox`] turns a [`SandboxSpec`] into a bubblewrap command line: the
//! host root read-only, a private `/tmp`, the user's workspace read-write at
//! a fixed home path, data volumes read-only at their mount paths, the
//! platform's data directory hidden, own pid and ipc namespaces. [`process`]
//! starts such a sandbox detached from the platform (so a platform restart
//! leaves it running), keeps its output in a log file, finds it again after a
//! restart, and stops its whole process tree.
//!
//! This crate knows nothing of HTTP, the store or the catalogue: the caller
//! decides what to run and records what happened. Pipeline steps and labs
//! share it.

pub mod process;
pub mod sandbox;

pub use process::{ExitStatus, LaunchError, SandboxProcess};
pub use sandbox::{HOME_PATH, SandboxSpec, VolumeMount};
