//! Running tools in sandboxes on this machine (the local sandbox datazone).
//!
//! [`sandbox`] turns a [`SandboxSpec`] into a bubblewrap command line: the
//! host root read-only, a private `/tmp` and `/var/tmp`, the user's
//! workspace read-write at a fixed home path, data volumes read-only at
//! their mount paths, the paths the caller hides (the platform's data
//! directory, its configuration, its database) covered wherever they would
//! show, no host control group tree, own pid, ipc, uts and cgroup
//! namespaces. [`limits`] gives each sandbox a control group with memory,
//! CPU and process limits; [`netns`] keeps each user's sandboxes in a
//! network namespace of their own; [`listen`] tells whether a port is
//! served by a sandbox's own processes or by someone else; [`seccomp`]
//! refuses the system calls that reach past the sandbox. [`process`]
//! starts such a sandbox under a supervisor of its own (so a restart or
//! crash of the platform leaves it running and its end recorded), finds it
//! again after a restart, reports each memory kill in it as it happens
//! ([`memory`]), and stops its whole process tree. [`home`] says what a
//! lab's home holds (`my_workspace`, `team_workspaces/<team>`,
//! `data/<volume>`) and readies a workspace for it. [`container`] does the
//! same for labs in OCI containers (podman, runtime runc) with the same
//! workspace, volumes, network, control group and secret; [`podman`] builds,
//! saves, loads and removes the images of user-developed datalabs.
//!
//! This crate knows nothing of HTTP, the store or the catalogue: the caller
//! decides what to run and records what happened. Pipeline steps and labs
//! share it.

pub mod container;
pub mod home;
pub mod limits;
pub mod listen;
pub mod memory;
pub mod netns;
pub mod podman;
pub mod process;
mod record;
pub mod sandbox;
pub mod seccomp;
pub mod slurm;
pub mod storage;

pub use container::{ContainerNetwork, ContainerProcess, ContainerSpec};
pub use limits::{Cgroups, Limits};
pub use memory::MemoryKill;
pub use netns::NetNs;
pub use podman::{BuildOutcome, BuildSpec, Podman, PodmanError};
pub use process::{ExitStatus, LaunchError, Placement, SandboxEnd, SandboxProcess};
pub use sandbox::{
    Bind, HOME_PATH, PrivateEnv, SandboxSpec, StepBinds, TeamWorkspace, VolumeMount,
};
