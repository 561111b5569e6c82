//! Running tools in sandboxes on this machine (the local sandbox datazone).
//!
//! [`sandbox`] turns a [`SandboxSpec`] into a bubblewrap command line: the
//! host root read-only, a private `/tmp`, the user's workspace read-write at
//! a fixed home path, data volumes read-only at their mount paths, the
//! platform's data directory hidden, own pid and ipc namespaces. [`limits`]
//! gives each sandbox a control group with memory, CPU and process limits;
//! [`netns`] keeps each user's sandboxes in a network namespace of their
//! own; [`listen`] tells whether a port is served by a sandbox's own
//! processes or by someone else. [`process`]
//! starts such a sandbox detached from the platform (so a platform restart
//! leaves it running), keeps its output in a log file, finds it again after a
//! restart, and stops its whole process tree.
//!
//! This crate knows nothing of HTTP, the store or the catalogue: the caller
//! decides what to run and records what happened. Pipeline steps and labs
//! share it.

pub mod limits;
pub mod listen;
pub mod netns;
pub mod process;
pub mod sandbox;

pub use limits::{Cgroups, Limits};
pub use netns::NetNs;
pub use process::{ExitStatus, LaunchError, Placement, SandboxProcess};
pub use sandbox::{Bind, HOME_PATH, PrivateEnv, SandboxSpec, StepBinds, VolumeMount};
