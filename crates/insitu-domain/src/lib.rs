//! The platform's vocabulary as pure types and rules: validated names and
//! ids, roles, secrets that never print, the lab state machine, datalab
//! definitions, user-developed datalabs (templates, Containerfile rules,
//! build and publication states), data volume definitions and SPDX licence
//! checks.
//!
//! This crate does no I/O and depends on nothing else of ours: every other
//! crate (store, web, launchers, CLI) speaks in these types. Values are parsed
//! once at the edge (`FromStr`, `parse_*`) and trusted afterwards.

pub mod datalab;
pub mod devlab;
pub mod id;
pub mod lab;
pub mod name;
pub mod role;
pub mod secret;
pub mod spdx;
pub mod volume;

pub use datalab::{
    DatalabKind, DatalabSpec, DefinitionError, LaunchSpec, Launcher, Property, Resources, Tags,
    ToolCredential,
};
pub use devlab::{BuildState, DevlabDefinition, DevlabSource, ReleaseState, Template};
pub use id::{IdError, LabId, TokenId, UserId};
pub use lab::{LabEventKind, LabState, UnknownLabEvent, UnknownLabState};
pub use name::{Name, NameError, Username};
pub use role::Role;
pub use secret::Secret;
pub use volume::{VolumeMetadata, VolumeSpec};
