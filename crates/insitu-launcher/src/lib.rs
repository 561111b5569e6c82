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
//! restart, and stops its whole process tree. [`container`] does the same
//! for labs in OCI containers (podman, runtime runc) with the same
//! workspace, volumes, network, control group and secret; [`podman`] builds,
//! saves, loads and removes the images of user-developed datalabs.
//!
//! This crate knows nothing of HTTP, the store or the catalogue: the caller
//! decides what to run and records what happened. Pipeline steps and labs
//! share it.

pub mod container;
pub mod limits;
pub mod listen;
pub mod netns;
pub mod podman;
pub mod process;
pub mod sandbox;

pub use container::{ContainerNetwork, ContainerProcess, ContainerSpec};
pub use limits::{Cgroups, Limits};
pub use netns::NetNs;
pub use podman::{BuildOutcome, BuildSpec, Podman, PodmanError};
pub use process::{ExitStatus, LaunchError, Placement, SandboxProcess};
pub use sandbox::{Bind, HOME_PATH, PrivateEnv, SandboxSpec, StepBinds, VolumeMount};
